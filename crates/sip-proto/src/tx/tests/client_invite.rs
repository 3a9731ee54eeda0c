//! INVITE client transaction, RFC 3261 §17.1.1 and RFC 6026 §7.2.

use sip::{HeaderName, Method};

use super::*;

#[test]
fn rfc3261_17_1_1_2_timer_a_and_b_over_udp() {
    let mut sim = Sim::new();
    let tx = sim.send(&outgoing("INVITE", "z9hG4bKict1"), udp());
    sim.run_until(secs(70));
    assert_eq!(sim.take_sent_ms(), [0, 500, 1500, 3500, 7500, 15500, 31500]);
    assert_eq!(sim.take_events(), [(secs(32), TxEvent::TimedOut { tx })]);
    assert!(sim.layer.is_empty());
}

#[test]
fn rfc3261_17_1_1_2_timer_b_over_tcp_without_timer_a() {
    let mut sim = Sim::new();
    let tx = sim.send(&outgoing("INVITE", "z9hG4bKict2"), tcp());
    sim.run_until(secs(70));
    assert_eq!(sim.take_sent_ms(), [0]);
    assert_eq!(sim.take_events(), [(secs(32), TxEvent::TimedOut { tx })]);
}

#[test]
fn rfc3261_17_1_1_2_provisional_stops_timers_a_and_b() {
    let mut sim = Sim::new();
    let req = outgoing("INVITE", "z9hG4bKict3");
    let tx = sim.send(&req, udp());
    sim.run_until(secs(1));
    sim.receive(udp(), answer(&req, 180));
    sim.run_until(secs(100));
    assert_eq!(sim.take_sent_ms(), [0, 500]);
    let events = sim.take_events();
    assert!(
        matches!(&events[..], [(_, TxEvent::Response { response, .. })] if response.status.as_u16() == 180)
    );
    assert!(
        sim.layer.is_live(tx),
        "Proceeding waits for the TU (no timer)"
    );
}

#[test]
fn rfc3261_17_1_1_3_ack_for_non_2xx_over_udp() {
    let mut sim = Sim::new();
    let req = outgoing("INVITE", "z9hG4bKict4");
    let tx = sim.send(&req, udp());
    sim.run_until(ms(200));
    sim.receive(udp(), answer(&req, 486));
    let sent = sim.take_sent();
    assert_eq!(sent.len(), 2);
    let (at, ack) = &sent[1];
    assert_eq!(*at, ms(200));
    assert_eq!(ack.path, udp());
    let Message::Request(ack) = parse_bytes(ack) else {
        panic!("not a request")
    };
    assert_eq!(ack.method, Method::Ack);
    assert_eq!(ack.uri, req.uri);
    assert_eq!(ack.headers.get_all(&HeaderName::Via).count(), 1);
    assert_eq!(branch_of(&ack), "z9hG4bKict4", "same branch as the INVITE");
    assert_eq!(
        ack.headers.get(&HeaderName::Route),
        req.headers.get(&HeaderName::Route)
    );
    assert_eq!(
        ack.headers.get(&HeaderName::From),
        req.headers.get(&HeaderName::From)
    );
    assert_eq!(ack.to().and_then(|t| t.tag()).as_deref(), Some("theirs"));
    assert_eq!(ack.call_id(), req.call_id());
    assert_eq!(
        ack.cseq().map(|c| (c.seq, c.method)),
        Some((5, Method::Ack))
    );
    let events = sim.take_events();
    assert!(
        matches!(&events[..], [(_, TxEvent::Response { tx: id, response })]
        if *id == tx && response.status.as_u16() == 486)
    );

    // A retransmitted 486 is ACKed again and not reported.
    sim.run_until(secs(2));
    sim.receive(udp(), answer(&req, 486));
    let again = sim.take_sent();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].1.bytes, sent[1].1.bytes);
    assert!(sim.take_events().is_empty());

    // Timer D = 32 s after the final response.
    sim.run_until(ms(32_199));
    assert!(sim.layer.is_live(tx));
    sim.run_until(ms(32_200));
    assert!(sim.layer.is_empty());
    assert!(sim.take_events().is_empty());
}

#[test]
fn rfc3261_17_1_1_2_timer_d_is_zero_over_tcp() {
    let mut sim = Sim::new();
    let req = outgoing("INVITE", "z9hG4bKict5");
    let tx = sim.send(&req, tcp());
    sim.receive(tcp(), answer(&req, 603));
    assert_eq!(sim.take_sent().len(), 2, "INVITE and ACK");
    assert!(!sim.layer.is_live(tx));
    assert_eq!(sim.layer.poll_timeout(), None);
}

#[test]
fn rfc6026_7_2_accepted_passes_every_2xx_to_the_tu() {
    let mut sim = Sim::new();
    let req = outgoing("INVITE", "z9hG4bKict6");
    let tx = sim.send(&req, udp());
    sim.run_until(ms(100));
    sim.receive(udp(), answer(&req, 200));
    sim.run_until(secs(1));
    sim.receive(udp(), answer(&req, 200));
    // A 2xx from another fork (other To tag) also reaches the TU.
    let Message::Response(mut forked) = answer(&req, 200) else {
        panic!()
    };
    forked
        .headers
        .set(HeaderName::To, "<sip:2002@192.0.2.10>;tag=fork2");
    sim.receive(udp(), Message::Response(forked));
    // A non-2xx in Accepted is absorbed.
    sim.receive(udp(), answer(&req, 486));
    let events = sim.take_events();
    let codes: Vec<u16> = events
        .iter()
        .map(|(_, e)| match e {
            TxEvent::Response { tx: id, response } if *id == tx => response.status.as_u16(),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(codes, [200, 200, 200]);
    assert_eq!(
        sim.take_sent_ms(),
        [0],
        "the ACK for a 2xx is the TU's (§13.2.2.4)"
    );
    // Timer M = 64*T1 after the first 2xx.
    sim.run_until(ms(32_099));
    assert!(sim.layer.is_live(tx));
    sim.run_until(ms(32_100));
    assert!(sim.layer.is_empty());
}

#[test]
fn rfc6026_7_2_timer_m_applies_over_tcp_too() {
    let mut sim = Sim::new();
    let req = outgoing("INVITE", "z9hG4bKict7");
    let tx = sim.send(&req, tcp());
    sim.receive(tcp(), answer(&req, 200));
    sim.run_until(ms(31_999));
    assert!(sim.layer.is_live(tx));
    sim.run_until(secs(32));
    assert!(sim.layer.is_empty());
}
