//! Matching (RFC 3261 §17.1.3, §17.2.3, §9.2, RFC 2543 fallback), transport errors, and the
//! layer's housekeeping.

use sip::header::BRANCH_COOKIE;
use sip::{HeaderName, Method};

use super::*;

fn vector(path: &str) -> Request {
    let full = format!(
        "{}/../../../shared/conformance/{path}",
        env!("CARGO_MANIFEST_DIR")
    );
    let bytes = std::fs::read(&full).unwrap_or_else(|e| panic!("conformance vector {full}: {e}"));
    match sip::parse_datagram(&bytes, usize::MAX).unwrap() {
        Message::Request(r) => r,
        Message::Response(_) => panic!("{path} is not a request"),
    }
}

fn new_tx(sim: &mut Sim) -> TxId {
    sim.take_new_request().0
}

#[test]
fn rfc3261_17_2_3_same_branch_other_sent_by_is_another_transaction() {
    let mut sim = Sim::new();
    let a = request("OPTIONS", ";branch=z9hG4bKsame", 1, None);
    let mut b = a.clone();
    b.headers.set(
        HeaderName::Via,
        "SIP/2.0/UDP 10.0.0.21:5060;branch=z9hG4bKsame",
    );
    sim.receive_request(udp(), &a);
    let ta = new_tx(&mut sim);
    sim.receive_request(udp(), &b);
    let tb = new_tx(&mut sim);
    assert_ne!(ta, tb);
    assert_eq!(sim.layer.len(), 2);
}

#[test]
fn rfc3261_17_2_3_same_branch_other_method_is_another_transaction() {
    let mut sim = Sim::new();
    sim.receive_request(udp(), &request("OPTIONS", ";branch=z9hG4bKm", 1, None));
    let ta = new_tx(&mut sim);
    sim.receive_request(udp(), &request("INFO", ";branch=z9hG4bKm", 1, None));
    let tb = new_tx(&mut sim);
    assert_ne!(ta, tb);
}

#[test]
fn rfc3261_9_2_cancel_reports_the_invite_it_targets() {
    let mut sim = Sim::new();
    sim.receive_request(udp(), &request("INVITE", ";branch=z9hG4bKc1", 1, None));
    let (invite_tx, invite) = sim.take_new_request();
    sim.receive_request(udp(), &request("CANCEL", ";branch=z9hG4bKc1", 1, None));
    let events = sim.take_events();
    let [(
        _,
        TxEvent::Cancel {
            tx,
            invite: target,
            request: cancel,
            path,
        },
    )] = &events[..]
    else {
        panic!("expected a CANCEL event, got {events:?}");
    };
    assert_ne!(*tx, invite_tx, "a CANCEL is its own transaction");
    assert_eq!(*target, Some(invite_tx));
    assert_eq!(*path, udp());
    // The TU answers both.
    sim.respond(
        *tx,
        Response::for_request(cancel, StatusCode::OK, Some("srv")),
    );
    sim.respond(
        invite_tx,
        Response::for_request(&invite, StatusCode::REQUEST_TERMINATED, Some("srv")),
    );
    assert_eq!(statuses(&sim.take_sent()), [200, 487]);
    // A retransmitted CANCEL gets its 200 again; the ACK for the 487 is absorbed.
    sim.receive_request(udp(), &request("CANCEL", ";branch=z9hG4bKc1", 1, None));
    sim.receive_request(udp(), &request("ACK", ";branch=z9hG4bKc1", 1, Some("srv")));
    assert_eq!(statuses(&sim.take_sent()), [200]);
    assert!(sim.take_events().is_empty());
}

#[test]
fn rfc3261_9_2_cancel_without_invite_reports_none() {
    let mut sim = Sim::new();
    sim.receive_request(udp(), &request("CANCEL", ";branch=z9hG4bKc2", 1, None));
    let events = sim.take_events();
    assert!(matches!(
        &events[..],
        [(_, TxEvent::Cancel { invite: None, .. })]
    ));
}

#[test]
fn rfc3261_17_2_3_rfc2543_retransmission_and_ack_matching() {
    let mut sim = Sim::new();
    let inv = vector("rfc4475/valid/inv2543.dat");
    assert!(!inv.top_via().unwrap().has_rfc3261_branch());
    sim.receive_request(udp(), &inv);
    let (tx, seen) = sim.take_new_request();
    sim.receive_request(udp(), &inv);
    assert!(
        sim.take_events().is_empty(),
        "RFC 2543 retransmission absorbed"
    );
    sim.respond(
        tx,
        Response::for_request(&seen, StatusCode::BUSY_HERE, Some("b2543")),
    );
    // The ACK: same Request-URI, From, Call-ID, CSeq number and top Via; To with our tag.
    let mut ack = inv.clone();
    ack.method = Method::Ack;
    ack.body = bytes::Bytes::new();
    ack.headers.set(HeaderName::CSeq, "56 ACK");
    ack.headers.set(
        HeaderName::To,
        "sip:+16505552222@ss1.example.net;user=phone;tag=b2543",
    );
    let mut wrong_tag = ack.clone();
    wrong_tag.headers.set(
        HeaderName::To,
        "sip:+16505552222@ss1.example.net;user=phone;tag=other",
    );
    sim.receive_request(udp(), &wrong_tag);
    assert_eq!(
        sim.take_events().len(),
        1,
        "To tag differs: not this transaction's ACK"
    );
    sim.receive_request(udp(), &ack);
    assert!(sim.take_events().is_empty(), "ACK absorbed");
    sim.run_until(ms(600));
    assert_eq!(
        statuses(&sim.take_sent()),
        [486],
        "Confirmed: Timer G stopped"
    );
    sim.run_until(secs(10));
    assert!(sim.layer.is_empty());
}

#[test]
fn rfc3261_17_2_3_rfc2543_cancel_finds_its_invite() {
    let mut sim = Sim::new();
    let inv = vector("rfc4475/valid/inv2543.dat");
    sim.receive_request(udp(), &inv);
    let (invite_tx, _) = sim.take_new_request();
    let mut cancel = inv.clone();
    cancel.method = Method::Cancel;
    cancel.body = bytes::Bytes::new();
    cancel.headers.set(HeaderName::CSeq, "56 CANCEL");
    sim.receive_request(udp(), &cancel);
    let events = sim.take_events();
    assert!(
        matches!(&events[..], [(_, TxEvent::Cancel { tx, invite: Some(i), .. })] if *i == invite_tx && *tx != invite_tx)
    );
}

#[test]
fn rfc4475_3_2_1_badbranch_is_matched_as_rfc2543() {
    let mut sim = Sim::new();
    let req = vector("rfc4475/valid/badbranch.dat");
    assert_eq!(branch_of(&req), BRANCH_COOKIE);
    sim.receive_request(udp(), &req);
    let (tx, seen) = sim.take_new_request();
    sim.respond(tx, Response::for_request(&seen, StatusCode::OK, Some("bb")));
    sim.receive_request(udp(), &req);
    assert!(sim.take_events().is_empty());
    assert_eq!(statuses(&sim.take_sent()), [200, 200]);
    // Another request with the bare cookie but another Call-ID is another transaction.
    let mut other = req.clone();
    other.headers.set(HeaderName::CallId, "badbranch.other");
    sim.receive_request(udp(), &other);
    assert_eq!(sim.take_events().len(), 1);
}

#[test]
fn rfc3261_17_1_3_response_matched_by_branch_and_cseq_method() {
    let mut sim = Sim::new();
    let invite = outgoing("INVITE", "z9hG4bKc3");
    let cancel = outgoing("CANCEL", "z9hG4bKc3");
    let invite_tx = sim.send(&invite, udp());
    sim.run_until(ms(100));
    sim.receive(udp(), answer(&invite, 180));
    let cancel_tx = sim.send(&cancel, udp());
    sim.receive(udp(), answer(&cancel, 200));
    sim.receive(udp(), answer(&invite, 487));
    let events: Vec<(TxId, u16)> = sim
        .take_events()
        .into_iter()
        .map(|(_, e)| match e {
            TxEvent::Response { tx, response } => (tx, response.status.as_u16()),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(
        events,
        [(invite_tx, 180), (cancel_tx, 200), (invite_tx, 487)]
    );
}

#[test]
fn rfc6026_stray_response_dropped_not_passed_to_the_core() {
    let mut sim = Sim::new();
    sim.receive(udp(), answer(&outgoing("OPTIONS", "z9hG4bKnobody"), 200));
    assert!(sim.take_events().is_empty());
    assert!(sim.take_sent().is_empty());
}

#[test]
fn rfc3261_17_1_4_transport_error_ends_client_and_server_transactions() {
    let mut sim = Sim::new();
    let client = sim.send(&outgoing("INVITE", "z9hG4bKte"), tcp());
    sim.receive_request(tcp(), &request("OPTIONS", ";branch=z9hG4bKte2", 1, None));
    let server = new_tx(&mut sim);
    sim.layer.handle_transport_error(sim.now, client);
    sim.layer.handle_transport_error(sim.now, server);
    sim.layer.handle_transport_error(sim.now, server);
    sim.drain();
    let events: Vec<TxEvent> = sim.take_events().into_iter().map(|(_, e)| e).collect();
    assert_eq!(
        events,
        [
            TxEvent::TransportError { tx: client },
            TxEvent::TransportError { tx: server }
        ]
    );
    assert!(sim.layer.is_empty());
    assert_eq!(sim.layer.poll_timeout(), None);
}

#[test]
fn rfc3261_8_1_1_7_branches_carry_the_cookie_and_are_unique() {
    let mut a = TxLayer::new(TxConfig::default(), 42);
    let mut b = TxLayer::new(TxConfig::default(), 42);
    let mut seen = std::collections::HashSet::new();
    for _ in 0..1000 {
        let branch = a.new_branch();
        assert!(branch.starts_with(BRANCH_COOKIE) && branch.len() > BRANCH_COOKIE.len() + 16);
        assert_eq!(branch, b.new_branch(), "same seed, same branches");
        assert!(seen.insert(branch));
    }
    assert_ne!(
        TxLayer::new(TxConfig::default(), 43).new_branch(),
        a.new_branch()
    );
}

#[test]
fn send_request_adds_a_missing_branch_or_via() {
    let mut sim = Sim::new();
    let mut no_branch = outgoing("OPTIONS", "x");
    no_branch
        .headers
        .set(HeaderName::Via, "SIP/2.0/UDP 192.0.2.10:5060;rport");
    sim.send(&no_branch, udp());
    let mut no_via = outgoing("OPTIONS", "x");
    no_via.headers.remove(&HeaderName::Via);
    sim.send(&no_via, tcp());
    let sent = sim.take_sent();
    let Message::Request(first) = parse_bytes(&sent[0].1) else {
        panic!()
    };
    assert!(first.top_via().unwrap().has_rfc3261_branch());
    assert!(first.top_via().unwrap().wants_rport());
    let Message::Request(second) = parse_bytes(&sent[1].1) else {
        panic!()
    };
    let via = second.top_via().unwrap();
    assert!(via.has_rfc3261_branch());
    assert_eq!((via.transport.as_str(), via.port), ("TCP", Some(5060)));
    // Responses find them.
    sim.receive(
        udp(),
        Message::Response(Response::for_request(&first, StatusCode::OK, Some("t"))),
    );
    sim.receive(
        tcp(),
        Message::Response(Response::for_request(&second, StatusCode::OK, Some("t"))),
    );
    assert_eq!(sim.take_events().len(), 2);
}

#[test]
fn rfc3261_17_1_1_3_an_ack_given_to_send_request_is_sent_once() {
    let mut sim = Sim::new();
    let tx = sim.send(&outgoing("ACK", "z9hG4bKack"), udp());
    sim.run_until(secs(60));
    assert_eq!(sim.take_sent_ms(), [0]);
    assert!(!sim.layer.is_live(tx));
    assert!(sim.layer.is_empty());
    assert!(sim.take_events().is_empty());
}

#[test]
fn send_stateless_sends_once_over_the_given_path() {
    let mut sim = Sim::new();
    let ack = outgoing("ACK", "z9hG4bKsl");
    sim.layer
        .send_stateless(tcp(), &Message::Request(ack.clone()));
    sim.drain();
    let sent = sim.take_sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].1.path, tcp());
    assert_eq!(parse_bytes(&sent[0].1), Message::Request(ack));
    assert_eq!(sim.layer.poll_timeout(), None);
}

#[test]
fn a_finished_transaction_id_never_reaches_a_newer_one() {
    let mut sim = Sim::new();
    sim.receive_request(tcp(), &request("OPTIONS", ";branch=z9hG4bKold", 1, None));
    let (old, seen) = sim.take_new_request();
    sim.respond(old, Response::for_request(&seen, StatusCode::OK, Some("t")));
    sim.receive_request(tcp(), &request("OPTIONS", ";branch=z9hG4bKnew", 2, None));
    let (new, seen) = sim.take_new_request();
    assert_ne!(old, new);
    sim.take_sent();
    sim.respond(
        old,
        Response::for_request(&seen, StatusCode::NOT_FOUND, Some("t")),
    );
    assert!(sim.take_sent().is_empty());
    assert!(sim.layer.is_live(new));
}
