use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::SeedableRng;

use super::*;
use crate::channel::{Direction, ReceiveStats};
use crate::config::LatchPolicy;
use crate::SRTP_TRAILER;

/// Plain-RTP tests hand in a packet and look only at where it goes.
trait OnPacket {
    fn on_packet(
        &mut self,
        now: Instant,
        port: RelayPort,
        from: SocketAddr,
        pkt: &[u8],
    ) -> Option<Forward>;
}

impl OnPacket for Relay {
    fn on_packet(
        &mut self,
        now: Instant,
        port: RelayPort,
        from: SocketAddr,
        pkt: &[u8],
    ) -> Option<Forward> {
        let mut buf = pkt.to_vec();
        buf.resize(pkt.len() + SRTP_TRAILER, 0);
        let (f, len) = self.handle_packet(now, port, from, &mut buf, pkt.len())?;
        // Plain RTP leaves the relay exactly as it came.
        assert_eq!(&buf[..len], pkt);
        Some(f)
    }
}

fn a(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn config(ports: std::ops::RangeInclusive<u16>) -> Config {
    Config {
        ports,
        ..Config::default()
    }
}

fn relay(config: Config) -> Relay {
    Relay::new(config, &mut StdRng::seed_from_u64(7)).unwrap()
}

/// A 172-byte G.711 packet (12-byte header + 160 bytes), as the benchmark sends.
fn rtp(seq: u16, ts: u32) -> Vec<u8> {
    rtp_pt(0, seq, ts)
}

fn rtp_pt(pt: u8, seq: u16, ts: u32) -> Vec<u8> {
    let mut p = vec![0xd5u8; 172];
    p[0] = 0x80;
    p[1] = pt;
    p[2..4].copy_from_slice(&seq.to_be_bytes());
    p[4..8].copy_from_slice(&ts.to_be_bytes());
    p[8..12].copy_from_slice(&0x1234_5678u32.to_be_bytes());
    p
}

/// An RTCP receiver report (PT 201) without report blocks.
fn rtcp_rr() -> Vec<u8> {
    vec![0x80, 201, 0, 1, 0x12, 0x34, 0x56, 0x78]
}

const HOME: &str = "198.51.100.20"; // the home router's public address (the brief)
const ITSP: &str = "198.51.100.30";

/// A remote phone at home: SDP says 10.0.0.20:4000, its SIP came from the home router.
fn home_phone() -> Peer {
    Peer {
        signalling_ip: Some(HOME.parse().unwrap()),
        ..Peer::new(a("10.0.0.20:4000"))
    }
}

/// An ITSP whose media servers are not its signalling server (common): its SDP address is
/// not where its SIP came from, so nothing is sent to it before it has sent.
fn itsp() -> Peer {
    Peer {
        signalling_ip: Some(ITSP.parse().unwrap()),
        ..Peer::new(a("198.51.100.31:20000"))
    }
}

struct Call {
    relay: Relay,
    t0: Instant,
    a: ChannelId,
    b: ChannelId,
    pa: RelayPort,
    pb: RelayPort,
}

/// Remote phone (A) ↔ ITSP (B), both relayed, both SDPs known, paired.
fn two_leg_call() -> Call {
    let t0 = Instant::now();
    let mut relay = relay(config(30000..=30009));
    let ca = relay.allocate(t0, CallRef(1), LegRef(1)).unwrap();
    let cb = relay.allocate(t0, CallRef(1), LegRef(2)).unwrap();
    relay.set_peer(t0, ca, home_phone()).unwrap();
    relay.set_peer(t0, cb, itsp()).unwrap();
    relay.pair(t0, ca, cb).unwrap();
    let (pa, pb) = (relay.rtp_port(ca).unwrap(), relay.rtp_port(cb).unwrap());
    while relay.poll_command().is_some() {}
    Call {
        relay,
        t0,
        a: ca,
        b: cb,
        pa,
        pb,
    }
}

fn rtcp_port(p: RelayPort) -> RelayPort {
    RelayPort::new(p.get() + 1)
}

fn drain(relay: &mut Relay) -> Vec<RelayEvent> {
    std::iter::from_fn(|| relay.poll_event()).collect()
}

#[test]
fn pool_allocates_to_exhaustion_then_refuses_and_reuses_released_ports() {
    let t = Instant::now();
    let mut r = relay(config(40000..=40005)); // 3 channels
    assert_eq!(r.pool_stats().capacity, 3);
    let ids: Vec<_> = (0..3)
        .map(|i| r.allocate(t, CallRef(i), LegRef(i)).unwrap())
        .collect();
    let mut ports: Vec<u16> = ids.iter().map(|&c| r.rtp_port(c).unwrap().get()).collect();
    ports.sort_unstable();
    assert_eq!(ports, [40000, 40002, 40004]);
    let binds: Vec<_> = std::iter::from_fn(|| r.poll_command()).collect();
    assert_eq!(binds.len(), 6);
    assert!(binds.contains(&RelayCommand::Bind(RelayPort::new(40005))));

    let refused = r.allocate(t, CallRef(9), LegRef(9)).unwrap_err();
    assert_eq!(refused, LimitHit::PoolExhausted { capacity: 3 });
    assert_eq!(refused.to_string(), "all 3 relay channels are in use");
    let s = r.pool_stats();
    assert_eq!((s.in_use, s.refused_pool, s.calls), (3, 1, 3));

    let port = r.rtp_port(ids[1]).unwrap();
    r.release(t, ids[1]).unwrap();
    assert_eq!(
        std::iter::from_fn(|| r.poll_command()).collect::<Vec<_>>(),
        [
            RelayCommand::Release(port),
            RelayCommand::Release(rtcp_port(port))
        ]
    );
    assert_eq!(r.release(t, ids[1]), Err(ChannelError::Unknown(ids[1])));
    let again = r.allocate(t, CallRef(9), LegRef(9)).unwrap();
    assert_eq!(r.rtp_port(again).unwrap(), port, "the only free pair");
    // The old id does not address the new channel.
    assert_eq!(r.snapshot(ids[1]), Err(ChannelError::Unknown(ids[1])));
    assert_eq!(r.pool_stats().in_use, 3);
    assert_eq!(r.release_call(t, CallRef(9)), 1);
    assert_eq!(r.pool_stats().in_use, 2);
}

#[test]
fn internet_call_limit_refuses_before_the_pool_runs_out() {
    let t = Instant::now();
    let mut r = relay(Config {
        internet_calls: Some(2),
        ..config(40000..=40009)
    });
    r.allocate(t, CallRef(1), LegRef(1)).unwrap();
    r.allocate(t, CallRef(1), LegRef(2)).unwrap();
    let e = r.allocate(t, CallRef(2), LegRef(3)).unwrap_err();
    assert_eq!(e, LimitHit::InternetCalls { limit: 2 });
    assert_eq!(r.pool_stats().refused_internet_calls, 1);
    r.set_internet_call_limit(None);
    r.allocate(t, CallRef(2), LegRef(3)).unwrap();
}

#[test]
fn rfc4961_latches_onto_the_nated_source_not_the_sdp_address() {
    let mut c = two_leg_call();
    let t = c.t0 + ms(20);
    // The phone's SDP says 10.0.0.20:4000; its packets come from the home router's mapping.
    let phone = a("198.51.100.20:61000");
    assert_eq!(
        c.relay.on_packet(t, c.pa, phone, &rtp(1, 160)),
        None,
        "B not latched yet"
    );
    let events = drain(&mut c.relay);
    assert_eq!(
        events,
        [RelayEvent::Latched {
            call: CallRef(1),
            leg: LegRef(1),
            channel: c.a,
            port: c.pa,
            source: phone,
            relatch: None
        }]
    );
    let itsp_media = a("198.51.100.30:20000");
    // The ITSP's packet goes out of A's port to the phone's real address.
    assert_eq!(
        c.relay.on_packet(t, c.pb, itsp_media, &rtp(7, 0)),
        Some(Forward {
            from_port: c.pa,
            to: phone
        })
    );
    // And now the phone's packets reach the ITSP from B's port.
    assert_eq!(
        c.relay.on_packet(t, c.pa, phone, &rtp(2, 320)),
        Some(Forward {
            from_port: c.pb,
            to: itsp_media
        })
    );
    let sa = c.relay.snapshot(c.a).unwrap();
    assert_eq!(sa.latched_rtp, Some(phone));
    assert_eq!((sa.received.packets, sa.sent_packets), (2, 1));
    assert_eq!(sa.no_destination, 1);
    assert_eq!(sa.received.bytes, 344);
    assert_eq!(c.relay.snapshot(c.b).unwrap().sent_packets, 1);
}

#[test]
fn rfc4961_third_address_packets_are_dropped_counted_and_reported_in_aggregate() {
    let mut c = two_leg_call();
    let t = c.t0;
    let phone = a("198.51.100.20:61000");
    let itsp_media = a("198.51.100.30:20000");
    c.relay.on_packet(t, c.pa, phone, &rtp(1, 0));
    c.relay.on_packet(t, c.pb, itsp_media, &rtp(1, 0));
    drain(&mut c.relay);
    // Another device behind the same home router, then a scanner: neither gets anywhere.
    let neighbour = a("198.51.100.20:5004");
    for i in 0..500 {
        assert_eq!(
            c.relay.on_packet(t + ms(i), c.pa, neighbour, &rtp(9, 9)),
            None
        );
    }
    assert_eq!(c.relay.snapshot(c.a).unwrap().rejected, 500);
    assert_eq!(c.relay.poll_timeout(), Some(t), "first report at once");
    c.relay.handle_timeout(t + ms(500));
    assert_eq!(
        drain(&mut c.relay),
        [RelayEvent::SourceRejected {
            call: CallRef(1),
            leg: LegRef(1),
            channel: c.a,
            last_source: neighbour,
            packets: 500
        }]
    );
    // More within the interval: one report, when the interval is over.
    for i in 0..300 {
        c.relay
            .on_packet(t + secs(1) + ms(i), c.pa, neighbour, &rtp(9, 9));
    }
    assert_eq!(c.relay.poll_timeout(), Some(t + ms(500) + secs(10)));
    c.relay.handle_timeout(t + secs(5));
    assert!(drain(&mut c.relay).is_empty());
    c.relay.handle_timeout(t + ms(500) + secs(10));
    let ev = drain(&mut c.relay);
    assert!(matches!(
        ev[..],
        [RelayEvent::SourceRejected { packets: 300, .. }]
    ));
    // The latched phone was never disturbed.
    assert_eq!(
        c.relay
            .on_packet(t + secs(11), c.pa, phone, &rtp(2, 160))
            .map(|f| f.to),
        Some(itsp_media)
    );
}

#[test]
fn known_ips_policy_keeps_a_port_scanner_from_latching_first() {
    let mut c = two_leg_call();
    let t = c.t0;
    let scanner = a("203.0.113.66:40000");
    assert_eq!(c.relay.on_packet(t, c.pa, scanner, &rtp(1, 0)), None);
    assert_eq!(c.relay.snapshot(c.a).unwrap().latched_rtp, None);
    c.relay
        .on_packet(t, c.pa, a("198.51.100.20:61000"), &rtp(1, 0));
    assert_eq!(
        c.relay.snapshot(c.a).unwrap().latched_rtp,
        Some(a("198.51.100.20:61000"))
    );

    // With the classic policy the first sender wins, whoever it is.
    let mut r = relay(Config {
        latching: LatchPolicy::AnySource,
        ..config(40000..=40003)
    });
    let ch = r.allocate(t, CallRef(1), LegRef(1)).unwrap();
    r.set_peer(t, ch, home_phone()).unwrap();
    let desk = DirectPeer {
        rtp: a("192.168.1.30:5004"),
        rtcp: None,
    };
    r.pair_direct(t, ch, desk).unwrap();
    let p = r.rtp_port(ch).unwrap();
    r.on_packet(t, p, scanner, &rtp(1, 0));
    assert_eq!(r.snapshot(ch).unwrap().latched_rtp, Some(scanner));
}

#[test]
fn a_stranger_latched_before_the_sdp_arrived_is_dropped_when_it_does() {
    // The callee's channel is offered before its answer says who it is; a scanner hits it.
    let t = Instant::now();
    let mut r = relay(config(40000..=40009));
    let caller = r.allocate(t, CallRef(1), LegRef(1)).unwrap();
    r.set_peer(t, caller, home_phone()).unwrap();
    let ch = r.allocate(t, CallRef(1), LegRef(2)).unwrap();
    r.pair(t, caller, ch).unwrap();
    let p = r.rtp_port(ch).unwrap();
    let scanner = a("203.0.113.66:40000");
    r.on_packet(t, p, scanner, &rtp(1, 0));
    assert_eq!(
        r.snapshot(ch).unwrap().latched_rtp,
        Some(scanner),
        "no hints yet"
    );
    r.set_peer(t + ms(10), ch, itsp()).unwrap();
    assert_eq!(r.snapshot(ch).unwrap().latched_rtp, None);
    assert_eq!(r.on_packet(t + ms(20), p, scanner, &rtp(2, 160)), None);
    r.on_packet(t + ms(30), p, a("198.51.100.30:20000"), &rtp(1, 0));
    assert_eq!(
        r.snapshot(ch).unwrap().latched_rtp,
        Some(a("198.51.100.30:20000"))
    );
}

#[test]
fn relatches_after_the_latched_source_was_silent_long_enough() {
    let mut c = two_leg_call();
    let t = c.t0;
    let (old, new) = (a("198.51.100.20:61000"), a("198.51.100.20:62000"));
    let itsp_media = a("198.51.100.30:20000");
    c.relay.on_packet(t, c.pb, itsp_media, &rtp(1, 0));
    c.relay.on_packet(t, c.pa, old, &rtp(1, 0));
    drain(&mut c.relay);
    // The home NAT rebinds: the new port is refused while the old one spoke < 2 s ago.
    assert_eq!(
        c.relay.on_packet(t + ms(1999), c.pa, new, &rtp(2, 160)),
        None
    );
    let f = c.relay.on_packet(t + ms(2000), c.pa, new, &rtp(3, 320));
    assert_eq!(f.map(|f| f.to), Some(itsp_media));
    assert!(matches!(
        drain(&mut c.relay)[..],
        [RelayEvent::Latched {
            source,
            relatch: Some(RelatchReason::Silence),
            ..
        }] if source == new
    ));
    // Replies now go to the new mapping; the old one is a third address.
    assert_eq!(
        c.relay
            .on_packet(t + ms(2001), c.pb, itsp_media, &rtp(2, 160))
            .map(|f| f.to),
        Some(new)
    );
    assert_eq!(
        c.relay.on_packet(t + ms(2002), c.pa, old, &rtp(4, 480)),
        None
    );
}

#[test]
fn relatches_at_once_after_renegotiation_and_keeps_the_old_destination_until_then() {
    let mut c = two_leg_call();
    let t = c.t0;
    let (wifi, lte) = (a("198.51.100.20:61000"), a("198.51.100.77:7078"));
    let itsp_media = a("198.51.100.30:20000");
    c.relay.on_packet(t, c.pa, wifi, &rtp(1, 0));
    c.relay.on_packet(t, c.pb, itsp_media, &rtp(1, 0));
    drain(&mut c.relay);
    // The phone moved to another network and sent a re-INVITE from there.
    let moved = Peer {
        signalling_ip: Some("198.51.100.77".parse().unwrap()),
        ..Peer::new(a("10.20.0.5:7078"))
    };
    c.relay.renegotiate(t + ms(100), c.a, moved).unwrap();
    assert_eq!(
        c.relay
            .on_packet(t + ms(110), c.pb, itsp_media, &rtp(2, 160))
            .map(|f| f.to),
        Some(wifi),
        "until the phone sends, the old source stays the destination"
    );
    let f = c.relay.on_packet(t + ms(120), c.pa, lte, &rtp(2, 160));
    assert_eq!(f.map(|f| f.to), Some(itsp_media));
    assert!(matches!(
        drain(&mut c.relay)[..],
        [RelayEvent::Latched {
            relatch: Some(RelatchReason::Renegotiated),
            ..
        }]
    ));
    assert_eq!(
        c.relay
            .on_packet(t + ms(130), c.pb, itsp_media, &rtp(3, 320))
            .map(|f| f.to),
        Some(lte)
    );
    // Pinned again: the old network is a third address now, even with no silence.
    assert_eq!(
        c.relay.on_packet(t + ms(140), c.pa, wifi, &rtp(3, 320)),
        None
    );
}

#[test]
fn nothing_is_forwarded_before_the_other_side_has_a_destination() {
    let t = Instant::now();
    let mut r = relay(config(40000..=40009));
    let ca = r.allocate(t, CallRef(1), LegRef(1)).unwrap();
    let pa = r.rtp_port(ca).unwrap();
    let phone = a("198.51.100.20:61000");
    // Unpaired: nowhere to send to, and the source does not latch.
    assert_eq!(r.on_packet(t, pa, phone, &rtp(1, 0)), None);
    assert_eq!(r.snapshot(ca).unwrap().latched_rtp, None);
    let cb = r.allocate(t, CallRef(1), LegRef(2)).unwrap();
    r.set_peer(t, cb, itsp()).unwrap();
    r.pair(t, ca, cb).unwrap();
    // Paired, but B's device has not sent: its SDP address is never used as a destination.
    assert_eq!(r.on_packet(t, pa, phone, &rtp(2, 160)), None);
    assert_eq!(r.snapshot(ca).unwrap().no_destination, 2);
    // A port of no channel.
    let pb = r.rtp_port(cb).unwrap();
    let free = (40000..40010)
        .step_by(2)
        .find(|&p| p != pa.get() && p != pb.get())
        .unwrap();
    assert_eq!(
        r.on_packet(t, RelayPort::new(free), phone, &rtp(1, 0)),
        None
    );
    assert_eq!(
        r.on_packet(t, RelayPort::new(39998), phone, &rtp(1, 0)),
        None
    );
    assert_eq!(r.pool_stats().stray_packets, 2);
    // Malformed datagrams never latch.
    assert_eq!(
        r.on_packet(t, pb, a("198.51.100.30:20000"), b"\x00\x01junk"),
        None
    );
    assert_eq!(r.snapshot(cb).unwrap().latched_rtp, None);
    assert_eq!(r.snapshot(cb).unwrap().malformed, 1);
}

/// The office phone answering a remote caller sends at once, often before its 200 OK (and so
/// its address) has reached the relay. Sharing the remote device's IP (one host, a hairpin NAT),
/// its packets must not latch as the device's, or the device becomes a third address.
#[test]
fn rfc4961_office_phone_sending_before_its_answer_is_known_does_not_latch_as_the_device() {
    let t = Instant::now();
    let mut r = relay(config(40000..=40009));
    let ch = r.allocate(t, CallRef(1), LegRef(1)).unwrap();
    let phone = a("127.0.0.1:27694");
    r.set_peer(
        t,
        ch,
        Peer {
            signalling_ip: Some(phone.ip()),
            ..Peer::new(phone)
        },
    )
    .unwrap();
    let p = r.rtp_port(ch).unwrap();
    let desk = DirectPeer {
        rtp: a("127.0.0.1:30100"),
        rtcp: None,
    };
    assert_eq!(r.on_packet(t, p, desk.rtp, &rtp(1, 0)), None);
    assert_eq!(r.on_packet(t + ms(20), p, desk.rtp, &rtp(2, 160)), None);
    r.pair_direct(t + ms(30), ch, desk).unwrap();
    assert_eq!(
        r.on_packet(t + ms(40), p, phone, &rtp(1, 0)),
        Some(Forward {
            from_port: p,
            to: desk.rtp
        })
    );
    assert_eq!(
        r.on_packet(t + ms(41), p, desk.rtp, &rtp(3, 320)),
        Some(Forward {
            from_port: p,
            to: phone
        })
    );
    let s = r.snapshot(ch).unwrap();
    assert_eq!(
        (s.latched_rtp, s.rejected, s.no_destination),
        (Some(phone), 0, 2)
    );
}

#[test]
fn direct_peer_internal_phone_is_reached_from_the_channels_own_port() {
    let t = Instant::now();
    let mut r = relay(config(40000..=40009));
    let ch = r.allocate(t, CallRef(1), LegRef(1)).unwrap();
    r.set_peer(t, ch, home_phone()).unwrap();
    let desk = DirectPeer {
        rtp: a("192.168.1.30:5004"),
        rtcp: Some(a("192.168.1.30:5005")),
    };
    r.pair_direct(t, ch, desk).unwrap();
    let p = r.rtp_port(ch).unwrap();
    let phone = a("198.51.100.20:61000");
    // The desk phone speaks first: the remote phone has not latched, nowhere to go.
    assert_eq!(r.on_packet(t, p, desk.rtp, &rtp(1, 0)), None);
    // The remote phone's packet goes to the desk phone, from this same port.
    assert_eq!(
        r.on_packet(t, p, phone, &rtp(1, 0)),
        Some(Forward {
            from_port: p,
            to: desk.rtp
        })
    );
    assert_eq!(
        r.on_packet(t, p, desk.rtp, &rtp(2, 160)),
        Some(Forward {
            from_port: p,
            to: phone
        })
    );
    // RTCP both ways over the RTCP port.
    let phone_rtcp = a("198.51.100.20:61001");
    assert_eq!(
        r.on_packet(t, rtcp_port(p), phone_rtcp, &rtcp_rr()),
        Some(Forward {
            from_port: rtcp_port(p),
            to: desk.rtcp.unwrap()
        })
    );
    assert_eq!(
        r.on_packet(t, rtcp_port(p), desk.rtcp.unwrap(), &rtcp_rr()),
        Some(Forward {
            from_port: rtcp_port(p),
            to: phone_rtcp
        })
    );
    // Another LAN address is not the desk phone, and not allowed to latch either.
    assert_eq!(r.on_packet(t, p, a("192.168.1.31:5004"), &rtp(1, 0)), None);
    let s = r.snapshot(ch).unwrap();
    assert_eq!((s.sent_packets, s.received.packets, s.rejected), (2, 2, 1));
}

#[test]
fn rfc5761_rtcp_mux_on_one_side_separate_rtcp_port_on_the_other() {
    let mut c = two_leg_call();
    let t = c.t0;
    // A (the home phone) agreed rtcp-mux; B (the ITSP) did not.
    let muxed = Peer {
        rtcp_mux: true,
        rtcp: None,
        ..home_phone()
    };
    c.relay.set_peer(t, c.a, muxed).unwrap();
    let phone = a("198.51.100.20:61000");
    let (itsp_rtp, itsp_rtcp) = (a("198.51.100.30:20000"), a("198.51.100.30:20001"));
    c.relay.on_packet(t, c.pa, phone, &rtp(1, 0));
    c.relay.on_packet(t, c.pb, itsp_rtp, &rtp(1, 0));
    // A's RTCP rides on its RTP port and is told apart by packet type (RFC 5761 §4); B has not
    // sent RTCP yet, so there is no RTCP destination.
    assert_eq!(c.relay.on_packet(t, c.pa, phone, &rtcp_rr()), None);
    // B's RTCP latches B's RTCP port and goes to A's RTP source, from A's RTP port.
    assert_eq!(
        c.relay.on_packet(t, rtcp_port(c.pb), itsp_rtcp, &rtcp_rr()),
        Some(Forward {
            from_port: c.pa,
            to: phone
        })
    );
    // Now A's muxed RTCP goes to B's RTCP source, from B's RTCP port.
    assert_eq!(
        c.relay.on_packet(t, c.pa, phone, &rtcp_rr()),
        Some(Forward {
            from_port: rtcp_port(c.pb),
            to: itsp_rtcp
        })
    );
    let s = c.relay.snapshot(c.a).unwrap();
    assert_eq!((s.received.packets, s.received.rtcp_packets), (3, 2));
    assert_eq!(s.received.expected, 1, "RTCP is not counted as RTP");
}

#[test]
fn rfc3550_separate_rtcp_ports_are_latched_and_forwarded_on_both_sides() {
    let mut c = two_leg_call();
    let t = c.t0;
    let (phone_rtp, phone_rtcp) = (a("198.51.100.20:61000"), a("198.51.100.20:61001"));
    let (itsp_rtp, itsp_rtcp) = (a("198.51.100.30:20000"), a("198.51.100.30:20001"));
    c.relay.on_packet(t, c.pa, phone_rtp, &rtp(1, 0));
    c.relay.on_packet(t, c.pb, itsp_rtp, &rtp(1, 0));
    assert_eq!(
        c.relay
            .on_packet(t, rtcp_port(c.pa), phone_rtcp, &rtcp_rr()),
        None
    );
    assert_eq!(
        c.relay.on_packet(t, rtcp_port(c.pb), itsp_rtcp, &rtcp_rr()),
        Some(Forward {
            from_port: rtcp_port(c.pa),
            to: phone_rtcp
        })
    );
    assert_eq!(
        c.relay
            .on_packet(t, rtcp_port(c.pa), phone_rtcp, &rtcp_rr()),
        Some(Forward {
            from_port: rtcp_port(c.pb),
            to: itsp_rtcp
        })
    );
    let s = c.relay.snapshot(c.a).unwrap();
    assert_eq!(s.latched_rtcp, Some(phone_rtcp));
    assert_eq!(s.received.rtcp_packets, 2);
}

#[test]
fn rfc3550_a3_a8_loss_and_jitter_of_a_relayed_stream_and_rfc4733_events_pass_through() {
    let mut c = two_leg_call();
    let t0 = c.t0;
    let phone = a("198.51.100.20:61000");
    c.relay
        .on_packet(t0, c.pb, a("198.51.100.30:20000"), &rtp(1, 0));
    let mut forwarded = 0;
    // 500 packets of 20 ms; every 50th is lost; odd packets arrive 4 ms late.
    for i in 0..500u16 {
        if i % 50 == 49 {
            continue;
        }
        let late = if i % 2 == 1 { 4 } else { 0 };
        let at = t0 + ms(u64::from(i) * 20 + late);
        forwarded += c
            .relay
            .on_packet(at, c.pa, phone, &rtp(1000 + i, u32::from(i) * 160))
            .is_some() as u32;
    }
    assert_eq!(forwarded, 490);
    let s = c.relay.snapshot(c.a).unwrap().received;
    assert_eq!(
        (s.expected, s.lost),
        (499, 9),
        "expected runs to the highest sequence number"
    );
    // |D| = 4 ms = 32 units at 8 kHz on every packet: J converges to 32 units = 4 ms.
    assert!((30..=32).contains(&s.jitter_units), "{s:?}");
    assert!(s.jitter >= ms(3) && s.jitter <= ms(4), "{s:?}");

    // RFC 4733: an event's packets share the timestamp of its start; they are forwarded,
    // counted for loss, and kept out of the jitter estimate.
    let te = Peer {
        telephone_event: Some(101),
        ..home_phone()
    };
    c.relay.set_peer(t0, c.a, te).unwrap();
    for k in 0..10u16 {
        let at = t0 + ms(10_000 + u64::from(k) * 50);
        let f = c
            .relay
            .on_packet(at, c.pa, phone, &rtp_pt(101, 1500 + k, 80_000));
        assert!(f.is_some());
    }
    let after: ReceiveStats = c.relay.snapshot(c.a).unwrap().received;
    assert_eq!(after.jitter_units, s.jitter_units);
    assert_eq!(after.expected, 510, "1000..=1509");
    assert_eq!(after.lost, 10, "every 50th, and 1499");
}

/// One call, both SDPs known and paired at `t0` (the answer); returns the relay and ports.
fn answered_call() -> Call {
    two_leg_call()
}

#[test]
fn media_timeout_fires_when_media_never_starts() {
    let mut c = answered_call();
    let t0 = c.t0;
    let start = c.relay.config().media_start_timeout;
    // Nothing ever arrives; the driver sleeps until each wake-up it is given.
    let mut now = t0;
    let mut fired = None;
    for _ in 0..10 {
        let Some(wake) = c.relay.poll_timeout() else {
            break;
        };
        now = wake;
        c.relay.handle_timeout(now);
        if let Some(ev) = c.relay.poll_event() {
            fired = Some(ev);
            break;
        }
    }
    assert_eq!(
        fired,
        Some(RelayEvent::MediaTimeout {
            call: CallRef(1),
            kind: TimeoutKind::NeverStarted
        })
    );
    assert_eq!(now, t0 + start);
    assert_eq!(c.relay.poll_timeout(), None, "fires once");
}

#[test]
fn media_timeout_fires_after_media_stops_and_never_while_it_flows() {
    let mut c = answered_call();
    let t0 = c.t0;
    let phone = a("198.51.100.20:61000");
    let itsp_media = a("198.51.100.30:20000");
    // Ten minutes of media, one direction or the other every 100 ms.
    let mut now = t0;
    for i in 0..6000u32 {
        now = t0 + ms(u64::from(i) * 100);
        let (port, from) = if i % 2 == 0 {
            (c.pa, phone)
        } else {
            (c.pb, itsp_media)
        };
        c.relay.on_packet(now, port, from, &rtp(i as u16, i * 800));
        if c.relay.poll_timeout().is_some_and(|w| w <= now) {
            c.relay.handle_timeout(now);
        }
    }
    assert!(drain(&mut c.relay)
        .iter()
        .all(|e| !matches!(e, RelayEvent::MediaTimeout { .. })));
    // The phone sent last 100 ms before the ITSP did: the call is as alive as its most
    // silent device.
    let last = now - ms(100);
    // Then silence: the timeout fires 30 s after that device's last packet, not before.
    let mut wakes = 0;
    while let Some(wake) = c.relay.poll_timeout() {
        wakes += 1;
        c.relay.handle_timeout(wake);
        if let Some(RelayEvent::MediaTimeout { kind, .. }) = c.relay.poll_event() {
            assert_eq!(kind, TimeoutKind::Stopped);
            assert_eq!(wake, last + secs(30));
            break;
        }
        assert!(wake < last + secs(30));
    }
    assert!(wakes <= 3, "checks are rare: {wakes}");
}

/// One device going silent ends the call even while the other keeps sending (a remote phone
/// that lost power must not stay "in a call" because the office phone still talks).
#[test]
fn media_timeout_fires_when_one_device_stops_while_the_other_sends() {
    let mut c = answered_call();
    let t0 = c.t0;
    let phone = a("198.51.100.20:61000");
    let itsp_media = a("198.51.100.30:20000");
    c.relay.on_packet(t0, c.pa, phone, &rtp(1, 0));
    let mut fired = None;
    for i in 1..1000u32 {
        let now = t0 + ms(u64::from(i) * 100);
        c.relay
            .on_packet(now, c.pb, itsp_media, &rtp(i as u16, i * 800));
        if c.relay.poll_timeout().is_some_and(|w| w <= now) {
            c.relay.handle_timeout(now);
        }
        if let Some(RelayEvent::MediaTimeout { kind, .. }) = c.relay.poll_event() {
            assert_eq!(kind, TimeoutKind::Stopped);
            fired = Some(now);
            break;
        }
    }
    let at = fired.expect("the silent phone's leg timed out");
    assert!(at >= t0 + secs(30) && at <= t0 + secs(31), "{:?}", at - t0);
}

#[test]
fn a_ringing_call_does_not_time_out_and_hold_gets_the_long_timeout() {
    let t0 = Instant::now();
    let mut r = relay(config(40000..=40009));
    // Caller at home; the callee's leg is offered but has not answered.
    let ca = r.allocate(t0, CallRef(1), LegRef(1)).unwrap();
    let cb = r.allocate(t0, CallRef(1), LegRef(2)).unwrap();
    r.set_peer(t0, ca, home_phone()).unwrap();
    r.pair(t0, ca, cb).unwrap();
    assert_eq!(r.poll_timeout(), None, "ringing: no media expected yet");
    // Answered three minutes later.
    let answer = t0 + secs(180);
    r.set_peer(answer, cb, itsp()).unwrap();
    assert!(r.poll_timeout().is_some());
    // Put on hold at once (the phone sends sendonly and then nothing).
    let hold = Peer {
        direction: Direction::SendOnly,
        ..home_phone()
    };
    r.renegotiate(answer, ca, hold).unwrap();
    r.handle_timeout(answer + secs(600));
    assert_eq!(r.poll_event(), None, "ten minutes on hold is fine");
    let wake = r.poll_timeout().unwrap();
    assert_eq!(wake, answer + secs(3600));
    r.handle_timeout(wake);
    assert_eq!(
        r.poll_event(),
        Some(RelayEvent::MediaTimeout {
            call: CallRef(1),
            kind: TimeoutKind::Held
        })
    );
}

#[test]
fn releasing_a_call_clears_its_timer() {
    let mut c = answered_call();
    assert!(c.relay.poll_timeout().is_some());
    assert_eq!(c.relay.release_call(c.t0, CallRef(1)), 2);
    assert_eq!(c.relay.poll_timeout(), None);
    assert_eq!(c.relay.pool_stats().calls, 0);
}

#[test]
fn api_misuse_is_a_typed_error() {
    let mut c = two_leg_call();
    assert_eq!(
        c.relay.pair(c.t0, c.a, c.a),
        Err(ChannelError::SelfPairing(c.a))
    );
    let zero = Peer {
        clock_rate: 0,
        ..home_phone()
    };
    assert_eq!(
        c.relay.set_peer(c.t0, c.b, zero),
        Err(ChannelError::ZeroClockRate(c.b))
    );
    // Re-pairing A elsewhere leaves B unpaired.
    let d = DirectPeer {
        rtp: a("192.168.1.30:5004"),
        rtcp: None,
    };
    c.relay.pair_direct(c.t0, c.a, d).unwrap();
    c.relay
        .on_packet(c.t0, c.pa, a("198.51.100.20:61000"), &rtp(1, 0));
    assert_eq!(
        c.relay
            .on_packet(c.t0, c.pb, a("198.51.100.30:20000"), &rtp(1, 0)),
        None
    );
}

mod property {
    use std::collections::HashSet;

    use proptest::prelude::*;

    use super::*;

    /// Sources that may send: devices, neighbours and scanners. SDP addresses (10.x, and
    /// the announced ports) are never among the ones that send from the Internet side.
    const SOURCES: [&str; 6] = [
        "198.51.100.20:61000",
        "198.51.100.20:61001",
        "198.51.100.30:20000",
        "198.51.100.30:20001",
        "203.0.113.66:4444",
        "192.168.1.30:5004",
    ];
    const DIRECT: [&str; 2] = ["192.168.1.30:5004", "192.168.1.31:6000"];

    #[derive(Debug, Clone)]
    enum Op {
        Allocate(u64),
        Release(usize),
        Pair(usize, usize),
        PairDirect(usize, usize, bool),
        SetPeer(usize, bool, bool),
        Renegotiate(usize, bool),
        Packet { port: u16, src: usize, rtcp: bool },
        Advance(u64),
        Timeout,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            1 => (0u64..3).prop_map(Op::Allocate),
            1 => (0usize..8).prop_map(Op::Release),
            1 => (0usize..8, 0usize..8).prop_map(|(a, b)| Op::Pair(a, b)),
            1 => (0usize..8, 0usize..2, any::<bool>()).prop_map(|(a, d, m)| Op::PairDirect(a, d, m)),
            1 => (0usize..8, any::<bool>(), any::<bool>()).prop_map(|(a, s, m)| Op::SetPeer(a, s, m)),
            1 => (0usize..8, any::<bool>()).prop_map(|(a, s)| Op::Renegotiate(a, s)),
            6 => (0u16..10, 0usize..SOURCES.len(), any::<bool>())
                .prop_map(|(port, src, rtcp)| Op::Packet { port, src, rtcp }),
            1 => (0u64..5000).prop_map(Op::Advance),
            1 => Just(Op::Timeout),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// The relay never sends to an address that is neither latched (by a packet that
        /// address sent) nor configured as a direct peer, whatever the order of events.
        #[test]
        fn never_forwards_to_an_address_neither_latched_nor_configured(
            ops in proptest::collection::vec(op(), 1..200),
            any_source in any::<bool>(),
        ) {
            let policy = if any_source { LatchPolicy::AnySource } else { LatchPolicy::KnownIps };
            let mut r = relay(Config { latching: policy, ..config(50000..=50009) });
            let t0 = Instant::now();
            let mut now = t0;
            let mut ids: Vec<ChannelId> = Vec::new();
            let mut direct: HashSet<SocketAddr> = HashSet::new();
            let mut has_sent: HashSet<SocketAddr> = HashSet::new();
            let pick = |ids: &[ChannelId], i: usize| ids.get(i % ids.len().max(1)).copied();
            for op in ops {
                match op {
                    Op::Allocate(call) => {
                        if let Ok(id) = r.allocate(now, CallRef(call), LegRef(ids.len() as u64)) {
                            ids.push(id);
                        }
                    }
                    Op::Release(i) => if let Some(id) = pick(&ids, i) { let _ = r.release(now, id); },
                    Op::Pair(i, j) => if let (Some(x), Some(y)) = (pick(&ids, i), pick(&ids, j)) {
                        let _ = r.pair(now, x, y);
                    },
                    Op::PairDirect(i, d, mux) => if let Some(x) = pick(&ids, i) {
                        let rtp = a(DIRECT[d]);
                        let rtcp = (!mux).then(|| SocketAddr::new(rtp.ip(), rtp.port() + 1));
                        direct.insert(rtp);
                        direct.extend(rtcp);
                        let _ = r.pair_direct(now, x, DirectPeer { rtp, rtcp });
                    },
                    Op::SetPeer(i, home, mux) => if let Some(x) = pick(&ids, i) {
                        let _ = r.set_peer(now, x, peer(home, mux));
                    },
                    Op::Renegotiate(i, home) => if let Some(x) = pick(&ids, i) {
                        let _ = r.renegotiate(now, x, peer(home, false));
                    },
                    Op::Packet { port, src, rtcp } => {
                        let from = a(SOURCES[src]);
                        let port = RelayPort::new(50000 + port);
                        let pkt = if rtcp { rtcp_rr() } else { rtp(1, 1) };
                        has_sent.insert(from);
                        if let Some(f) = r.on_packet(now, port, from, &pkt) {
                            let latched: HashSet<SocketAddr> = ids
                                .iter()
                                .filter_map(|&id| r.snapshot(id).ok())
                                .flat_map(|s| [s.latched_rtp, s.latched_rtcp])
                                .flatten()
                                .collect();
                            prop_assert!(
                                latched.contains(&f.to) || direct.contains(&f.to),
                                "forwarded to {} which is neither latched nor a direct peer", f.to
                            );
                            prop_assert!(has_sent.contains(&f.to) || direct.contains(&f.to));
                            prop_assert!((50000..=50009).contains(&f.from_port.get()));
                        }
                    }
                    Op::Advance(n) => now += ms(n),
                    Op::Timeout => r.handle_timeout(now),
                }
                while r.poll_event().is_some() {}
                while r.poll_command().is_some() {}
            }
        }
    }

    fn peer(home: bool, rtcp_mux: bool) -> Peer {
        let p = if home { home_phone() } else { itsp() };
        Peer { rtcp_mux, ..p }
    }
}

/// `cargo test -p relay --release -- --ignored --nocapture`: ns per `on_packet` for 1M
/// packets across 1,000 channels (500 calls, both directions, 172-byte G.711 packets).
#[test]
#[ignore = "micro-benchmark; run in release with --ignored --nocapture"]
fn bench_on_packet_1m_packets_1000_channels() {
    let t0 = Instant::now();
    let mut r = relay(config(30000..=31999)); // exactly 1,000 channels
    let mut legs = Vec::new();
    for call in 0..500u64 {
        let ca = r.allocate(t0, CallRef(call), LegRef(2 * call)).unwrap();
        let cb = r.allocate(t0, CallRef(call), LegRef(2 * call + 1)).unwrap();
        let (ip_a, ip_b) = (
            format!("198.51.100.{}", call % 250 + 1),
            format!("203.0.113.{}", call % 250 + 1),
        );
        let src_a = a(&format!("{ip_a}:{}", 10000 + call * 2));
        let src_b = a(&format!("{ip_b}:{}", 20000 + call * 2));
        r.set_peer(t0, ca, Peer::new(src_a)).unwrap();
        r.set_peer(t0, cb, Peer::new(src_b)).unwrap();
        r.pair(t0, ca, cb).unwrap();
        let (pa, pb) = (r.rtp_port(ca).unwrap(), r.rtp_port(cb).unwrap());
        r.on_packet(t0, pa, src_a, &rtp(0, 0));
        r.on_packet(t0, pb, src_b, &rtp(0, 0));
        legs.push((pa, src_a));
        legs.push((pb, src_b));
    }
    while r.poll_event().is_some() {}
    let mut pkt = rtp(1, 160);
    pkt.resize(pkt.len() + SRTP_TRAILER, 0);
    let len = pkt.len() - SRTP_TRAILER;
    let n = 1_000_000u32;
    let mut runs = Vec::new();
    // Five runs of 1M packets; the machine is shared, so the best and the median are shown.
    for run in 0..5u32 {
        let mut forwarded = 0u32;
        let start = std::time::Instant::now();
        for i in 0..n {
            let (port, from) = legs[(i % 1000) as usize];
            let round = run * (n / 1000) + i / 1000 + 1;
            pkt[2..4].copy_from_slice(&(round as u16).to_be_bytes());
            pkt[4..8].copy_from_slice(&(round * 160).to_be_bytes());
            let now = t0 + Duration::from_micros(u64::from(round) * 20_000);
            forwarded += std::hint::black_box(r.handle_packet(now, port, from, &mut pkt, len))
                .is_some() as u32;
        }
        runs.push(start.elapsed().as_nanos() as f64 / f64::from(n));
        assert_eq!(forwarded, n);
    }
    runs.sort_by(f64::total_cmp);
    let s = r
        .snapshot(r.channels_of(CallRef(0)).next().unwrap())
        .unwrap();
    assert_eq!(s.received.lost, 0);
    println!(
        "on_packet: best {:.1} ns/packet, median {:.1} ({} runs of {} packets over 1000 channels; {} B per channel slot)",
        runs[0],
        runs[2],
        runs.len(),
        n,
        std::mem::size_of::<crate::channel::Channel>()
    );
}

/// A device whose SDP names the IP its signalling came from (a phone with a public address, an
/// ITSP whose media and signalling share an address) is sent to before it sends anything; a
/// NATed one (private SDP address) only once it has been latched.
#[test]
fn rfc4961_sdp_address_used_before_latching_only_when_it_is_the_signalling_ip() {
    let t = Instant::now();
    let mut r = relay(config(40000..=40009));
    let ca = r.allocate(t, CallRef(1), LegRef(1)).unwrap();
    let cb = r.allocate(t, CallRef(1), LegRef(2)).unwrap();
    let (pa, pb) = (r.rtp_port(ca).unwrap(), r.rtp_port(cb).unwrap());
    let public_phone = Peer {
        signalling_ip: Some("203.0.113.50".parse().unwrap()),
        ..Peer::new(a("203.0.113.50:7000"))
    };
    r.set_peer(t, ca, home_phone()).unwrap();
    r.set_peer(t, cb, public_phone).unwrap();
    r.pair(t, ca, cb).unwrap();
    // The home phone (SDP 10.0.0.20, SIP from 198.51.100.20) sends first: its packets reach
    // the public phone at its SDP address at once, RTP and RTCP.
    let home = a("198.51.100.20:61000");
    assert_eq!(
        r.on_packet(t, pa, home, &rtp(1, 0)),
        Some(Forward {
            from_port: pb,
            to: a("203.0.113.50:7000")
        })
    );
    assert_eq!(
        r.on_packet(
            t,
            RelayPort::new(pa.get() + 1),
            a("198.51.100.20:61001"),
            &rtcp_rr()
        ),
        Some(Forward {
            from_port: RelayPort::new(pb.get() + 1),
            to: a("203.0.113.50:7001")
        })
    );
    // The other way, the home phone is reached at its latched NAT address, never at 10.0.0.20.
    let public = a("203.0.113.50:7000");
    assert_eq!(
        r.on_packet(t, pb, public, &rtp(1, 0)),
        Some(Forward {
            from_port: pa,
            to: home
        })
    );
    // Once the public phone sends from another port of its IP, that source is latched and used.
    let mut r2 = relay(config(40000..=40009));
    let c = r2.allocate(t, CallRef(2), LegRef(1)).unwrap();
    let d = r2.allocate(t, CallRef(2), LegRef(2)).unwrap();
    r2.set_peer(t, c, public_phone).unwrap();
    r2.pair(t, c, d).unwrap();
    let (pc, pd) = (r2.rtp_port(c).unwrap(), r2.rtp_port(d).unwrap());
    assert_eq!(
        r2.on_packet(t, pc, a("203.0.113.50:7100"), &rtp(1, 0)),
        None,
        "no destination yet on d"
    );
    r2.set_peer(t, d, home_phone()).unwrap();
    assert_eq!(
        r2.on_packet(t, pd, home, &rtp(1, 0)),
        Some(Forward {
            from_port: pc,
            to: a("203.0.113.50:7100")
        }),
        "the latched source wins over the SDP address"
    );
}

/// A hold or resume re-INVITE that keeps the device's address does not reopen its latch: a
/// second source on an allowed IP (another phone behind the same home NAT) cannot take the
/// stream over.
#[test]
fn rfc4961_renegotiation_without_a_new_address_keeps_the_latch() {
    let mut c = two_leg_call();
    let t = c.t0;
    let phone = a("198.51.100.20:61000");
    let same_nat_other_phone = a("198.51.100.20:62000");
    let itsp_media = a("198.51.100.30:20000");
    c.relay.on_packet(t, c.pa, phone, &rtp(1, 0));
    c.relay.on_packet(t, c.pb, itsp_media, &rtp(1, 0));
    let held = Peer {
        direction: Direction::SendOnly,
        ..home_phone()
    };
    c.relay.renegotiate(t + ms(10), c.a, held).unwrap();
    assert_eq!(
        c.relay
            .on_packet(t + ms(20), c.pa, same_nat_other_phone, &rtp(2, 160)),
        None,
        "third source rejected after a hold with the same address"
    );
    assert!(c.relay.snapshot(c.a).unwrap().rejected >= 1);
    assert_eq!(c.relay.snapshot(c.a).unwrap().latched_rtp, Some(phone));
}
