//! The binding client: RFC 8489 §6.2.1 retransmissions, server fallback, refresh and a changed
//! mapping, against this crate's server core.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::SeedableRng;
use stun::{
    BindingClient, ClientConfig, ClientEvent, ConfigError, FailReason, ServerConfig, StunServer,
};
use stun_types::message::Message;

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("literal address")
}

const LOCAL: &str = "192.168.1.10:5060";
const S1: &str = "198.51.100.10:3478";
const S2: &str = "198.51.100.20:3478";

fn client(servers: &[&str], t0: Instant) -> BindingClient<StdRng> {
    let mut config = ClientConfig::new(servers.iter().map(|s| addr(s)).collect());
    config.refresh = Duration::from_secs(30);
    BindingClient::new(config, addr(LOCAL), StdRng::seed_from_u64(9), t0).expect("config")
}

fn events(c: &mut BindingClient<StdRng>) -> Vec<ClientEvent> {
    std::iter::from_fn(|| c.poll_event()).collect()
}

#[test]
fn rfc8489_6_2_1_first_server_silent_then_fallback_to_second() {
    let t0 = Instant::now();
    let mut c = client(&[S1, S2], t0);
    let mut s2 = StunServer::new(ServerConfig::new(addr(S2), None)).expect("cfg");
    let mut sends = Vec::new();
    let mut now = t0;
    c.handle_timeout(now);
    loop {
        while let Some(t) = c.poll_transmit() {
            sends.push(((now - t0).as_millis(), t.to));
            if t.to == addr(S2) {
                // The NAT maps LOCAL to 203.0.113.10:40000.
                s2.handle_input(addr(S2), addr("203.0.113.10:40000"), &t.bytes);
                let answer = s2.poll_transmit().expect("answer");
                assert!(c.handle_input(now, answer.from, &answer.bytes));
            }
        }
        let ev = events(&mut c);
        if ev.iter().any(|e| matches!(e, ClientEvent::Mapped { .. })) {
            assert_eq!(
                ev,
                [
                    ClientEvent::Failed {
                        server: addr(S1),
                        why: FailReason::Timeout
                    },
                    ClientEvent::Mapped {
                        server: addr(S2),
                        local: addr(LOCAL),
                        mapped: addr("203.0.113.10:40000")
                    }
                ]
            );
            break;
        }
        now = c.poll_timeout().expect("timer");
        c.handle_timeout(now);
    }
    let to_s1: Vec<u128> = sends
        .iter()
        .filter(|s| s.1 == addr(S1))
        .map(|s| s.0)
        .collect();
    assert_eq!(to_s1, [0, 500, 1500, 3500, 7500, 15500, 31500]);
    assert_eq!(
        sends.last().map(|s| s.0),
        Some(39_500),
        "S2 asked when S1 gave up"
    );
    assert_eq!(c.mapped(), Some(addr("203.0.113.10:40000")));
}

#[test]
fn refresh_reports_a_changed_mapping() {
    let t0 = Instant::now();
    let mut c = client(&[S1], t0);
    let mut s1 = StunServer::new(ServerConfig::new(addr(S1), None)).expect("cfg");
    let mut exchange = |c: &mut BindingClient<StdRng>, now: Instant, public: &str| {
        c.handle_timeout(now);
        let t = c.poll_transmit().expect("a request is due");
        s1.handle_input(t.to, addr(public), &t.bytes);
        let a = s1.poll_transmit().expect("answer");
        assert!(c.handle_input(now, a.from, &a.bytes));
        events(c)
    };
    let ev = exchange(&mut c, t0, "203.0.113.10:40000");
    assert_eq!(ev.len(), 1);
    assert_eq!(c.poll_timeout(), Some(t0 + Duration::from_secs(30)));
    // Not due yet: nothing is sent early.
    c.handle_timeout(t0 + Duration::from_secs(29));
    assert!(c.poll_transmit().is_none());
    let ev = exchange(&mut c, t0 + Duration::from_secs(30), "203.0.113.10:40000");
    assert_eq!(ev.len(), 1, "same mapping: no change reported");
    let ev = exchange(&mut c, t0 + Duration::from_secs(60), "203.0.113.77:41000");
    assert_eq!(
        ev[1],
        ClientEvent::MappedAddressChanged {
            old: addr("203.0.113.10:40000"),
            new: addr("203.0.113.77:41000")
        }
    );
}

#[test]
fn error_response_moves_on_and_spoofed_or_stale_answers_are_ignored() {
    let t0 = Instant::now();
    let mut c = client(&[S1, S2], t0);
    c.handle_timeout(t0);
    let req = c.poll_transmit().expect("request");
    let msg = Message::from_bytes(&req.bytes).expect("our request is valid STUN");
    assert!(
        msg.has_attribute(0x8028.into()),
        "requests carry FINGERPRINT"
    );
    // A real answer with the right transaction id, then variations of it.
    let mut s = StunServer::new(ServerConfig::new(addr(S1), None)).expect("cfg");
    s.handle_input(addr(S1), addr("203.0.113.10:40000"), &req.bytes);
    let good = s.poll_transmit().expect("answer").bytes;
    // From a third party: ignored.
    assert!(!c.handle_input(t0, addr("198.51.100.66:3478"), &good));
    // Garbage from the server: ignored.
    assert!(!c.handle_input(t0, addr(S1), b"not stun at all, just bytes"));
    // An error response with our transaction id.
    let mut err = good.clone();
    err[0] = 0x01;
    err[1] = 0x11;
    // The changed type breaks FINGERPRINT; strip it and fix the length so it parses.
    err.truncate(err.len() - 8);
    let len = u16::from_be_bytes([err[2], err[3]]) - 8;
    err[2..4].copy_from_slice(&len.to_be_bytes());
    assert!(c.handle_input(t0, addr(S1), &err));
    let ev = events(&mut c);
    assert!(
        matches!(ev[0], ClientEvent::Failed { server, why: FailReason::ErrorResponse { .. } } if server == addr(S1)),
        "{ev:?}"
    );
    let next = c.poll_transmit().expect("S2 asked at once");
    assert_eq!(next.to, addr(S2));
    // The stale answer from S1 no longer counts.
    assert!(!c.handle_input(t0, addr(S1), &good));
}

#[test]
fn every_server_failing_waits_then_starts_over() {
    let t0 = Instant::now();
    let mut c = client(&[S1], t0);
    let mut now = t0;
    c.handle_timeout(now);
    while c.poll_transmit().is_some() || events(&mut c).is_empty() {
        now = c.poll_timeout().expect("timer");
        c.handle_timeout(now);
    }
    assert_eq!(now - t0, Duration::from_millis(39_500));
    assert_eq!(c.poll_timeout(), Some(now + Duration::from_secs(60)));
}

#[test]
fn transaction_ids_come_from_the_injected_rng() {
    let t0 = Instant::now();
    let first_request = |seed| {
        let mut c = BindingClient::new(
            ClientConfig::new(vec![addr(S1)]),
            addr(LOCAL),
            StdRng::seed_from_u64(seed),
            t0,
        )
        .expect("cfg");
        c.handle_timeout(t0);
        c.poll_transmit().expect("request").bytes
    };
    assert_eq!(first_request(1), first_request(1));
    assert_ne!(first_request(1), first_request(2));
    assert_eq!(
        BindingClient::new(
            ClientConfig::new(vec![]),
            addr(LOCAL),
            StdRng::seed_from_u64(1),
            t0
        )
        .err(),
        Some(ConfigError::NoServer)
    );
}

mod robustness {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn client_and_probe_never_panic_on_random_datagrams(
            bytes in proptest::collection::vec(any::<u8>(), 0..300),
            from_server in any::<bool>(),
        ) {
            let t0 = Instant::now();
            let mut c = client(&[S1, S2], t0);
            c.handle_timeout(t0);
            let from = if from_server { addr(S1) } else { addr("198.51.100.66:9") };
            c.handle_input(t0, from, &bytes);
            while c.poll_transmit().is_some() || c.poll_event().is_some() {}

            let mut p = stun::NatProbe::new(
                stun::ProbeConfig::new(vec![addr(S1)]),
                addr(LOCAL),
                StdRng::seed_from_u64(5),
                t0,
            );
            p.handle_input(t0, from, &bytes);
            while p.poll_transmit().is_some() {}
        }
    }
}
