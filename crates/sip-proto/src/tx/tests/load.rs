//! Load: the registrar's 10,000 transactions per second, and what they leave behind.

use super::*;

/// The registrar's load: 10,000 REGISTER transactions, answered at once. Every table must be
/// back to empty once Timer J has run, and the deadline queue must not hoard stale entries.
#[test]
fn ten_thousand_transactions_are_reaped() {
    let mut sim = Sim::new();
    for i in 0..10_000u32 {
        let path = Path {
            remote: std::net::SocketAddr::from((
                [198, 51, 100, (i % 200) as u8],
                40_000 + (i / 200) as u16,
            )),
            ..udp()
        };
        let req = request(
            "REGISTER",
            &format!(";branch=z9hG4bKreg{i};rport"),
            i + 1,
            None,
        );
        sim.layer
            .handle_message(sim.now, path, Message::Request(req));
        let Some(TxEvent::Request { tx, request, .. }) = sim.layer.poll_event() else {
            panic!()
        };
        sim.layer.respond(
            sim.now,
            tx,
            Response::for_request(&request, StatusCode::OK, Some("t")),
        );
        while sim.layer.poll_transmit().is_some() {}
    }
    assert_eq!(sim.layer.len(), 10_000);
    assert_eq!(sim.layer.table_sizes(), [10_000, 10_000, 0, 0]);
    sim.run_until(secs(33));
    assert!(sim.layer.is_empty());
    assert_eq!(sim.layer.table_sizes(), [0, 0, 0, 0]);

    // Client side: each request answered quickly leaves its E and F entries stale; the
    // queue is compacted instead of holding them for 32 s.
    for i in 0..10_000u32 {
        let req = outgoing("OPTIONS", &format!("z9hG4bKopt{i}"));
        sim.layer.send_request(sim.now, req.clone(), udp());
        let Message::Response(resp) = answer(&req, 200) else {
            panic!()
        };
        sim.layer
            .handle_message(sim.now, udp(), Message::Response(resp));
    }
    while sim.layer.poll_transmit().is_some() {}
    while sim.layer.poll_event().is_some() {}
    let [queue, servers, clients, acks] = sim.layer.table_sizes();
    assert_eq!((servers, clients, acks), (0, 10_000, 0));
    assert!(
        queue < 10_000 * 2,
        "stale deadlines compacted: {queue} entries for 10,000 live"
    );
    sim.run_until(secs(40));
    assert_eq!(sim.layer.table_sizes(), [0, 0, 0, 0]);
}

/// Wall-clock rate of server transactions through the layer alone (messages pre-parsed).
/// Run with `cargo test -p sip-proto --release -- --ignored --nocapture throughput`.
#[test]
#[ignore = "measurement, not a check"]
fn throughput_of_register_transactions() {
    const N: u32 = 400_000;
    let requests: Vec<Request> = (0..N)
        .map(|i| request("REGISTER", &format!(";branch=z9hG4bKtp{i};rport"), 1, None))
        .collect();
    let mut layer = TxLayer::new(TxConfig::default(), 3);
    let t0 = Instant::now();
    let mut now = t0;
    let wall = Instant::now();
    for (i, req) in requests.into_iter().enumerate() {
        // 10,000 per virtual second, so Timer J reaps while new ones arrive.
        now = t0 + Duration::from_micros(100 * i as u64);
        layer.handle_timeout(now);
        layer.handle_message(now, udp(), Message::Request(req));
        let Some(TxEvent::Request { tx, request, .. }) = layer.poll_event() else {
            panic!()
        };
        layer.respond(
            now,
            tx,
            Response::for_request(&request, StatusCode::OK, Some("t")),
        );
        while layer.poll_transmit().is_some() {}
    }
    let spent = wall.elapsed();
    eprintln!(
        "{N} REGISTER transactions in {spent:?}: {:.0}/s, {} live at the end ({:?} virtual)",
        f64::from(N) / spent.as_secs_f64(),
        layer.len(),
        now - t0
    );
}
