//! Non-INVITE client transaction, RFC 3261 §17.1.2.

use super::*;

#[test]
fn rfc3261_17_1_2_2_timer_e_and_f_over_udp() {
    let mut sim = Sim::new();
    let req = outgoing("OPTIONS", "z9hG4bKnict1");
    let tx = sim.send(&req, udp());
    sim.run_until(secs(40));
    let sent = sim.take_sent();
    let times: Vec<u128> = sent.iter().map(|(t, _)| t.as_millis()).collect();
    assert_eq!(
        times,
        [0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]
    );
    assert_eq!(times, doubling_series(500, Some(4000), 32_000));
    for (_, t) in &sent {
        assert_eq!(t.path, udp());
        assert_eq!(t.bytes, sent[0].1.bytes, "retransmissions are identical");
    }
    assert_eq!(sim.take_events(), [(secs(32), TxEvent::TimedOut { tx })]);
    assert!(sim.layer.is_empty());
    assert_eq!(sim.layer.poll_timeout(), None);
}

#[test]
fn rfc3261_17_1_2_2_no_retransmission_over_tcp_timer_f_still_fires() {
    let mut sim = Sim::new();
    let tx = sim.send(&outgoing("OPTIONS", "z9hG4bKnict2"), tcp());
    sim.run_until(secs(40));
    assert_eq!(sim.take_sent_ms(), [0]);
    assert_eq!(sim.take_events(), [(secs(32), TxEvent::TimedOut { tx })]);
    assert!(sim.layer.is_empty());
}

#[test]
fn rfc3261_17_1_2_2_proceeding_retransmits_every_t2() {
    let mut sim = Sim::new();
    let req = outgoing("REGISTER", "z9hG4bKnict3");
    let tx = sim.send(&req, udp());
    sim.run_until(ms(600));
    sim.receive(udp(), answer(&req, 100));
    sim.run_until(secs(40));
    // E in Trying at 0.5 s set the next at 1.5 s; from then on T2 (§17.1.2.2).
    assert_eq!(
        sim.take_sent_ms(),
        [0, 500, 1500, 5500, 9500, 13500, 17500, 21500, 25500, 29500]
    );
    let events = sim.take_events();
    assert!(
        matches!(&events[0], (t, TxEvent::Response { tx: id, response })
        if *t == ms(600) && *id == tx && response.status.as_u16() == 100)
    );
    assert_eq!(events[1], (secs(32), TxEvent::TimedOut { tx }));
    assert_eq!(events.len(), 2);
}

#[test]
fn rfc3261_17_1_2_2_timer_k_absorbs_retransmitted_finals_over_udp() {
    let mut sim = Sim::new();
    let req = outgoing("OPTIONS", "z9hG4bKnict4");
    let tx = sim.send(&req, udp());
    sim.run_until(ms(100));
    sim.receive(udp(), answer(&req, 200));
    let events = sim.take_events();
    assert!(
        matches!(&events[..], [(_, TxEvent::Response { tx: id, response })]
        if *id == tx && response.status.as_u16() == 200)
    );
    sim.run_until(secs(1));
    sim.receive(udp(), answer(&req, 200));
    assert!(sim.take_events().is_empty(), "retransmitted final absorbed");
    // Timer K = T4 = 5 s after the final response at 100 ms.
    sim.run_until(ms(5099));
    assert!(sim.layer.is_live(tx));
    sim.run_until(ms(5100));
    assert!(!sim.layer.is_live(tx));
    assert_eq!(sim.take_sent_ms(), [0], "no retransmission once answered");
    assert!(sim.take_events().is_empty());
}

#[test]
fn rfc3261_17_1_2_2_timer_k_is_zero_over_tcp() {
    let mut sim = Sim::new();
    let req = outgoing("OPTIONS", "z9hG4bKnict5");
    let tx = sim.send(&req, tcp());
    sim.receive(tcp(), answer(&req, 404));
    assert_eq!(sim.take_events().len(), 1);
    assert!(!sim.layer.is_live(tx));
    assert!(sim.layer.is_empty());
    assert_eq!(sim.layer.poll_timeout(), None);
}
