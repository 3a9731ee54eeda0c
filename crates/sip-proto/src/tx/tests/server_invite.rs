//! INVITE server transaction, RFC 3261 §17.2.1, RFC 6026 §7.1 and the 2xx retransmission of
//! §13.3.1.4 that the layer does for the TU.

use sip::header::Via;
use sip::HeaderName;

use super::*;

fn invite(branch: &str) -> Request {
    request("INVITE", &format!(";branch={branch};rport"), 1, None)
}

/// An ACK carrying the To tag of our response. For a non-2xx it has the INVITE's branch
/// (§17.1.1.3), for a 2xx a new one (§13.2.2.4).
fn ack(branch: &str) -> Request {
    request("ACK", &format!(";branch={branch};rport"), 1, Some("srv"))
}

fn answer_with(sim: &mut Sim, tx: TxId, seen: &Request, code: u16) {
    sim.respond(
        tx,
        Response::for_request(seen, parse_status(code), Some("srv")),
    );
}

/// Receives an INVITE and returns its transaction and the request as the TU saw it.
fn start(sim: &mut Sim, path: Path, branch: &str) -> (TxId, Request) {
    sim.receive_request(path, &invite(branch));
    sim.take_new_request()
}

#[test]
fn rfc3261_17_2_1_100_trying_after_200ms() {
    let mut sim = Sim::new();
    let (tx, _) = start(&mut sim, udp(), "z9hG4bKist1");
    sim.run_until(ms(500));
    sim.receive_request(udp(), &invite("z9hG4bKist1"));
    sim.run_until(secs(10));
    let sent = sim.take_sent();
    assert_eq!(
        sent.iter().map(|(t, _)| t.as_millis()).collect::<Vec<_>>(),
        [200, 500]
    );
    assert_eq!(statuses(&sent), [100, 100]);
    assert!(sent.iter().all(|(_, t)| t.path == udp()));
    let Message::Response(trying) = parse_bytes(&sent[0].1) else {
        panic!()
    };
    assert_eq!(
        trying.to().and_then(|t| t.tag()),
        None,
        "no To tag on 100 (§8.2.6.2)"
    );
    assert!(
        sim.take_events().is_empty(),
        "the retransmission is absorbed"
    );
    assert!(
        sim.layer.is_live(tx),
        "Proceeding has no timeout: the TU decides"
    );
}

#[test]
fn rfc3261_8_2_6_1_trying_copies_timestamp() {
    let mut sim = Sim::new();
    let mut req = invite("z9hG4bKist2");
    req.headers.push(HeaderName::Timestamp, "54");
    sim.receive_request(udp(), &req);
    sim.run_until(secs(1));
    let Message::Response(trying) = parse_bytes(&sim.take_sent()[0].1) else {
        panic!()
    };
    assert_eq!(trying.headers.get(&HeaderName::Timestamp), Some("54"));
}

#[test]
fn rfc3261_17_2_1_no_100_when_the_tu_answers_within_200ms() {
    let mut sim = Sim::new();
    let (tx, seen) = start(&mut sim, udp(), "z9hG4bKist3");
    sim.run_until(ms(50));
    answer_with(&mut sim, tx, &seen, 180);
    sim.run_until(secs(10));
    let sent = sim.take_sent();
    assert_eq!(statuses(&sent), [180]);
    assert_eq!(sent[0].0, ms(50));
}

#[test]
fn rfc3261_17_2_1_timer_g_and_h_over_udp() {
    let mut sim = Sim::new();
    let (tx, seen) = start(&mut sim, udp(), "z9hG4bKist4");
    answer_with(&mut sim, tx, &seen, 486);
    sim.run_until(secs(40));
    let sent = sim.take_sent();
    let times: Vec<u128> = sent.iter().map(|(t, _)| t.as_millis()).collect();
    assert_eq!(
        times,
        [0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]
    );
    assert!(statuses(&sent).iter().all(|s| *s == 486));
    assert_eq!(sim.take_events(), [(secs(32), TxEvent::TimedOut { tx })]);
    assert!(sim.layer.is_empty());
}

#[test]
fn rfc3261_17_2_1_timer_h_over_tcp_without_timer_g() {
    let mut sim = Sim::new();
    let (tx, seen) = start(&mut sim, tcp(), "z9hG4bKist5");
    answer_with(&mut sim, tx, &seen, 486);
    sim.run_until(secs(40));
    let sent = sim.take_sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].1.path, tcp());
    assert_eq!(sim.take_events(), [(secs(32), TxEvent::TimedOut { tx })]);
}

#[test]
fn rfc3261_17_2_1_ack_confirms_and_timer_i_absorbs_over_udp() {
    let mut sim = Sim::new();
    let (tx, seen) = start(&mut sim, udp(), "z9hG4bKist6");
    answer_with(&mut sim, tx, &seen, 486);
    sim.run_until(secs(1));
    sim.receive_request(udp(), &ack("z9hG4bKist6"));
    sim.run_until(secs(2));
    sim.receive_request(udp(), &ack("z9hG4bKist6"));
    sim.receive_request(udp(), &invite("z9hG4bKist6"));
    assert_eq!(
        sim.take_sent_ms(),
        [0, 500],
        "Timer G stopped by the ACK; Confirmed re-sends nothing"
    );
    assert!(
        sim.take_events().is_empty(),
        "ACKs for a non-2xx never reach the TU"
    );
    // Timer I = T4 after the ACK at 1 s.
    sim.run_until(ms(5999));
    assert!(sim.layer.is_live(tx));
    sim.run_until(secs(6));
    assert!(sim.layer.is_empty());
    assert!(sim.take_events().is_empty());
}

#[test]
fn rfc3261_17_2_1_timer_i_is_zero_over_tcp() {
    let mut sim = Sim::new();
    let (tx, seen) = start(&mut sim, tcp(), "z9hG4bKist7");
    answer_with(&mut sim, tx, &seen, 404);
    sim.receive_request(tcp(), &ack("z9hG4bKist7"));
    assert!(!sim.layer.is_live(tx));
    assert!(sim.take_events().is_empty());
    assert_eq!(sim.layer.poll_timeout(), None);
}

#[test]
fn rfc3261_17_2_1_retransmitted_invite_gets_the_last_response() {
    let mut sim = Sim::new();
    let (tx, seen) = start(&mut sim, udp(), "z9hG4bKist8");
    answer_with(&mut sim, tx, &seen, 180);
    sim.receive_request(udp(), &invite("z9hG4bKist8"));
    answer_with(&mut sim, tx, &seen, 183);
    sim.receive_request(udp(), &invite("z9hG4bKist8"));
    answer_with(&mut sim, tx, &seen, 486);
    sim.receive_request(udp(), &invite("z9hG4bKist8"));
    assert_eq!(statuses(&sim.take_sent()), [180, 180, 183, 183, 486, 486]);
    assert!(sim.take_events().is_empty());
}

#[test]
fn rfc3261_17_2_1_ack_before_a_final_response_is_ignored() {
    let mut sim = Sim::new();
    let (tx, seen) = start(&mut sim, udp(), "z9hG4bKist9");
    sim.receive_request(udp(), &ack("z9hG4bKist9"));
    assert!(sim.take_events().is_empty());
    answer_with(&mut sim, tx, &seen, 486);
    sim.run_until(ms(600));
    assert_eq!(
        statuses(&sim.take_sent()),
        [486, 486],
        "still Completed, Timer G running"
    );
}

#[test]
fn rfc6026_7_1_accepted_absorbs_invites_and_passes_the_ack_once() {
    let mut sim = Sim::new();
    let (tx, seen) = start(&mut sim, tcp(), "z9hG4bKist10");
    answer_with(&mut sim, tx, &seen, 200);
    sim.receive_request(tcp(), &invite("z9hG4bKist10"));
    assert!(
        sim.take_events().is_empty(),
        "retransmitted INVITE absorbed"
    );
    sim.run_until(secs(1));
    let ack = ack("z9hG4bKack10");
    sim.receive_request(tcp(), &ack);
    sim.receive_request(tcp(), &ack);
    let events = sim.take_events();
    assert_eq!(
        events.len(),
        1,
        "one ACK to the TU, its retransmission absorbed: {events:?}"
    );
    assert!(
        matches!(&events[0].1, TxEvent::Ack { request, path } if *request == ack && *path == tcp())
    );
    sim.take_sent();
    sim.receive_request(tcp(), &invite("z9hG4bKist10"));
    assert!(
        sim.take_sent().is_empty(),
        "once ACKed, INVITE retransmissions get nothing"
    );
    // Timer L = 64*T1 after the 2xx; no AckTimedOut since the ACK came.
    sim.run_until(ms(31_999));
    assert!(sim.layer.is_live(tx));
    sim.run_until(secs(40));
    assert!(sim.layer.is_empty());
    assert!(sim.take_events().is_empty());
    // After the transaction, an ACK retransmission goes to the TU (the dialog absorbs it).
    sim.receive_request(tcp(), &ack);
    assert_eq!(sim.take_events().len(), 1);
}

#[test]
fn rfc3261_13_3_1_4_layer_retransmits_2xx_over_udp_until_the_ack() {
    let mut sim = Sim::new();
    let (tx, seen) = start(&mut sim, udp(), "z9hG4bKist11");
    answer_with(&mut sim, tx, &seen, 200);
    sim.run_until(secs(8));
    sim.receive_request(udp(), &ack("z9hG4bKack11"));
    sim.run_until(secs(40));
    let sent = sim.take_sent();
    assert_eq!(
        sent.iter().map(|(t, _)| t.as_millis()).collect::<Vec<_>>(),
        [0, 500, 1500, 3500, 7500]
    );
    assert!(statuses(&sent).iter().all(|s| *s == 200));
    let events = sim.take_events();
    assert!(matches!(&events[..], [(t, TxEvent::Ack { .. })] if *t == secs(8)));
    assert!(sim.layer.is_empty());
}

#[test]
fn rfc3261_13_3_1_4_retransmitted_invite_gets_the_unacked_2xx() {
    let mut sim = Sim::new();
    let (tx, seen) = start(&mut sim, udp(), "z9hG4bKist12");
    answer_with(&mut sim, tx, &seen, 200);
    sim.run_until(ms(100));
    sim.receive_request(udp(), &invite("z9hG4bKist12"));
    assert_eq!(sim.take_sent_ms(), [0, 100]);
    assert!(sim.take_events().is_empty());
}

#[test]
fn rfc3261_13_3_1_4_no_ack_within_64_t1_raises_ack_timed_out() {
    let mut sim = Sim::new();
    let (tx, seen) = start(&mut sim, udp(), "z9hG4bKist13");
    answer_with(&mut sim, tx, &seen, 200);
    sim.run_until(secs(40));
    assert_eq!(sim.take_sent_ms(), doubling_series(500, Some(4000), 32_000));
    assert_eq!(sim.take_events(), [(secs(32), TxEvent::AckTimedOut { tx })]);
    assert!(sim.layer.is_empty());
}

#[test]
fn rfc3261_13_3_1_4_no_2xx_retransmission_over_tcp() {
    let mut sim = Sim::new();
    let (tx, seen) = start(&mut sim, tcp(), "z9hG4bKist14");
    answer_with(&mut sim, tx, &seen, 200);
    sim.run_until(secs(40));
    assert_eq!(sim.take_sent_ms(), [0]);
    assert_eq!(sim.take_events(), [(secs(32), TxEvent::AckTimedOut { tx })]);
}

#[test]
fn rfc6026_7_1_further_2xx_from_the_tu_are_sent() {
    let mut sim = Sim::new();
    let (tx, seen) = start(&mut sim, tcp(), "z9hG4bKist15");
    answer_with(&mut sim, tx, &seen, 200);
    answer_with(&mut sim, tx, &seen, 200);
    answer_with(&mut sim, tx, &seen, 486);
    assert_eq!(statuses(&sim.take_sent()), [200, 200]);
}

#[test]
fn rfc3261_17_2_3_stray_ack_goes_to_the_tu() {
    let mut sim = Sim::new();
    let ack = ack("z9hG4bKstray");
    sim.receive_request(udp(), &ack);
    let events = sim.take_events();
    assert!(
        matches!(&events[..], [(_, TxEvent::Ack { request, path })] if *request == ack && *path == udp())
    );
    assert!(sim.layer.is_empty(), "an ACK opens no transaction");
}

fn vector(path: &str) -> Vec<u8> {
    let full = format!(
        "{}/../../../shared/conformance/{path}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&full).unwrap_or_else(|e| panic!("conformance vector {full}: {e}"))
}

fn vector_request(path: &str) -> Request {
    match sip::parse_datagram(&vector(path), usize::MAX).unwrap() {
        Message::Request(r) => r,
        Message::Response(_) => panic!("{path} is not a request"),
    }
}

/// Bob's side of the RFC 3261 §24.2 call: F5 INVITE from the biloxi proxy, F6 180, F9 200,
/// F12 ACK straight from Alice.
#[test]
fn rfc3261_24_2_bob_answers_and_alice_acks() {
    let mut sim = Sim::new();
    let from_proxy = Path {
        local: "192.0.2.4:5060".parse().unwrap(),
        remote: "192.0.2.3:5060".parse().unwrap(),
        ..udp()
    };
    let f5 =
        vector_request("rfc3261/section24/24.2-F5-INVITE-biloxi-com-proxy-Bob.headers-only.sip");
    sim.receive_request(from_proxy, &f5);
    let (tx, seen) = sim.take_new_request();
    // §18.2.1: the proxy's sent-by is a name, so received is added, as F6/F9 show.
    assert_eq!(
        seen.headers.values(&HeaderName::Via).next(),
        Some("SIP/2.0/UDP server10.biloxi.com;branch=z9hG4bK4b43c2ff8.1;received=192.0.2.3")
    );
    sim.respond(
        tx,
        Response::for_request(&seen, StatusCode::RINGING, Some("a6c85cf")),
    );
    sim.respond(
        tx,
        Response::for_request(&seen, StatusCode::OK, Some("a6c85cf")),
    );
    let sent = sim.take_sent();
    assert_eq!(statuses(&sent), [180, 200]);
    let Message::Response(f9) = parse_bytes(&sent[1].1) else {
        panic!()
    };
    let expected = vector("rfc3261/section24/24.2-F9-200-OK-Bob-biloxi-com-proxy.headers-only.sip");
    let Message::Response(expected) = sip::parse_datagram(&expected, usize::MAX).unwrap() else {
        panic!()
    };
    for name in [
        HeaderName::To,
        HeaderName::From,
        HeaderName::CallId,
        HeaderName::CSeq,
    ] {
        assert_eq!(f9.headers.get(&name), expected.headers.get(&name), "{name}");
    }
    let vias = |r: &Response| {
        r.headers
            .values(&HeaderName::Via)
            .map(Via::parse)
            .collect::<Vec<_>>()
    };
    assert_eq!(vias(&f9), vias(&expected));
    let from_alice = Path {
        remote: "192.0.2.1:5060".parse().unwrap(),
        ..from_proxy
    };
    let f12 = vector_request("rfc3261/section24/24.2-F12-ACK-Alice-Bob.sip");
    sim.receive_request(from_alice, &f12);
    let events = sim.take_events();
    assert!(matches!(&events[..], [(_, TxEvent::Ack { request, .. })] if *request == f12));
    sim.run_until(secs(5));
    assert!(
        sim.take_sent().is_empty(),
        "the ACK stopped the 2xx retransmissions"
    );
}
