//! Non-INVITE server transaction, RFC 3261 §17.2.2, and what every new request gets.

use sip::HeaderName;

use super::*;

fn ok(req: &Request) -> Response {
    Response::for_request(req, StatusCode::OK, Some("srv"))
}

#[test]
fn rfc3261_17_2_2_trying_absorbs_retransmissions() {
    let mut sim = Sim::new();
    let req = request("OPTIONS", ";branch=z9hG4bKnist1", 1, None);
    sim.receive_request(udp(), &req);
    let (tx, _) = sim.take_new_request();
    sim.run_until(ms(500));
    sim.receive_request(udp(), &req);
    assert!(sim.take_events().is_empty());
    assert!(sim.take_sent().is_empty());
    assert!(sim.layer.is_live(tx));
}

#[test]
fn rfc3261_17_2_2_proceeding_resends_the_provisional() {
    let mut sim = Sim::new();
    let req = request("REGISTER", ";branch=z9hG4bKnist2", 1, None);
    sim.receive_request(udp(), &req);
    let (tx, seen) = sim.take_new_request();
    sim.respond(tx, Response::for_request(&seen, StatusCode::TRYING, None));
    sim.receive_request(udp(), &req);
    assert_eq!(statuses(&sim.take_sent()), [100, 100]);
    assert!(sim.take_events().is_empty());
}

#[test]
fn rfc3261_17_2_2_completed_resends_the_final_until_timer_j_over_udp() {
    let mut sim = Sim::new();
    let req = request("REGISTER", ";branch=z9hG4bKnist3", 1, None);
    sim.receive_request(udp(), &req);
    let (tx, seen) = sim.take_new_request();
    sim.respond(tx, ok(&seen));
    sim.run_until(secs(1));
    sim.receive_request(udp(), &req);
    sim.run_until(ms(31_999));
    assert!(sim.layer.is_live(tx));
    let sent = sim.take_sent();
    assert_eq!(
        sent.iter().map(|(t, _)| t.as_millis()).collect::<Vec<_>>(),
        [0, 1000]
    );
    assert_eq!(sent[0].1.bytes, sent[1].1.bytes);
    assert!(sent.iter().all(|(_, t)| t.path == udp()));
    assert!(sim.take_events().is_empty());
    // Timer J = 64*T1.
    sim.run_until(secs(32));
    assert!(sim.layer.is_empty());
    // After J a retransmission is a new request again.
    sim.receive_request(udp(), &req);
    assert_eq!(sim.take_events().len(), 1);
}

#[test]
fn rfc3261_17_2_2_timer_j_is_zero_over_tcp() {
    let mut sim = Sim::new();
    let req = request("REGISTER", ";branch=z9hG4bKnist4", 1, None);
    sim.receive_request(tcp(), &req);
    let (tx, seen) = sim.take_new_request();
    sim.respond(tx, ok(&seen));
    assert!(sim.layer.is_empty());
    assert_eq!(sim.layer.poll_timeout(), None);
    let sent = sim.take_sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].1.path, tcp(), "same listener, peer and connection");
}

#[test]
fn rfc3261_17_2_2_only_the_first_final_response_is_sent() {
    let mut sim = Sim::new();
    let req = request("OPTIONS", ";branch=z9hG4bKnist5", 1, None);
    sim.receive_request(udp(), &req);
    let (tx, seen) = sim.take_new_request();
    sim.respond(tx, ok(&seen));
    sim.respond(
        tx,
        Response::for_request(&seen, StatusCode::NOT_FOUND, Some("srv")),
    );
    sim.respond(tx, Response::for_request(&seen, StatusCode::TRYING, None));
    assert_eq!(statuses(&sim.take_sent()), [200]);
}

#[test]
fn rfc3581_4_received_and_rport_stamped_on_a_new_request() {
    let mut sim = Sim::new();
    let req = request("REGISTER", ";branch=z9hG4bKnist6;rport", 1, None);
    sim.receive_request(udp(), &req);
    let (tx, seen) = sim.take_new_request();
    let via = seen.top_via().unwrap();
    assert_eq!(via.params.value("rport").as_deref(), Some("40000"));
    assert_eq!(via.received(), Some("198.51.100.20".parse().unwrap()));
    sim.respond(tx, ok(&seen));
    let sent = sim.take_sent();
    let Message::Response(resp) = parse_bytes(&sent[0].1) else {
        panic!()
    };
    assert_eq!(
        resp.headers.get(&HeaderName::Via),
        Some("SIP/2.0/UDP 10.0.0.20:5060;branch=z9hG4bKnist6;rport=40000;received=198.51.100.20")
    );
    assert_eq!(sent[0].1.path, udp());
}

#[test]
fn rfc3261_18_2_1_received_added_when_sent_by_differs() {
    let mut sim = Sim::new();
    sim.receive_request(udp(), &request("OPTIONS", ";branch=z9hG4bKnist7", 1, None));
    let (_, seen) = sim.take_new_request();
    assert_eq!(
        seen.headers.get(&HeaderName::Via),
        Some("SIP/2.0/UDP 10.0.0.20:5060;branch=z9hG4bKnist7;received=198.51.100.20")
    );
    // Sent-by already names the source: the Via stays as it was.
    let lan = Path {
        remote: "10.0.0.20:5060".parse().unwrap(),
        zone: policy::Zone::Internal,
        ..udp()
    };
    let req = request("OPTIONS", ";branch=z9hG4bKnist8", 1, None);
    sim.receive_request(lan, &req);
    let (_, seen) = sim.take_new_request();
    assert_eq!(seen, req);
}
