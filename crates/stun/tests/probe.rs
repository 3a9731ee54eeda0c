//! RFC 5780 NAT behaviour discovery against this crate's own server through simulated NATs:
//! every classic kind, UDP blocked, and the ambiguous cases the brief wants reported.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::SeedableRng;
use stun::{
    Ambiguity, DeviceAtHome, Filtering, Mapping, NatKind, NatProbe, NatReport, ProbeConfig,
    ServerConfig, StunServer,
};

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("literal address")
}

const LOCAL: &str = "192.168.1.10:5000";
const PUBLIC_IP: &str = "203.0.113.10";
const P: &str = "198.51.100.10:3478";
const A: &str = "198.51.100.11:3479";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Map {
    Independent,
    Address,
    AddressPort,
}
#[derive(Clone, Copy, PartialEq, Eq)]
enum Filter {
    Independent,
    Address,
    AddressPort,
}

/// A NAT (or none) between the probe's socket and the Internet.
struct Nat {
    enabled: bool,
    map: Map,
    filter: Filter,
    /// Outbound packets to these destinations are dropped (an egress filter on the router).
    blocked: HashSet<IpAddr>,
    /// All UDP dropped.
    udp_blocked: bool,
    mappings: HashMap<(IpAddr, u16), u16>,
    next_port: u16,
    sent_to: HashSet<SocketAddr>,
}

impl Nat {
    fn new(map: Map, filter: Filter) -> Self {
        Self {
            enabled: true,
            map,
            filter,
            blocked: HashSet::new(),
            udp_blocked: false,
            mappings: HashMap::new(),
            next_port: 61000,
            sent_to: HashSet::new(),
        }
    }
    fn none() -> Self {
        let mut n = Self::new(Map::Independent, Filter::Independent);
        n.enabled = false;
        n
    }

    fn outbound(&mut self, to: SocketAddr) -> Option<SocketAddr> {
        if self.udp_blocked || self.blocked.contains(&to.ip()) {
            return None;
        }
        self.sent_to.insert(to);
        if !self.enabled {
            return Some(addr(LOCAL));
        }
        let key = match self.map {
            Map::Independent => (IpAddr::from([0, 0, 0, 0]), 0),
            Map::Address => (to.ip(), 0),
            Map::AddressPort => (to.ip(), to.port()),
        };
        let next = &mut self.next_port;
        let port = *self.mappings.entry(key).or_insert_with(|| {
            *next += 1;
            *next
        });
        Some(SocketAddr::new(PUBLIC_IP.parse().expect("ip"), port))
    }

    fn inbound(&self, from: SocketAddr) -> bool {
        if self.udp_blocked {
            return false;
        }
        match self.filter {
            Filter::Independent => true,
            Filter::Address => self.sent_to.iter().any(|s| s.ip() == from.ip()),
            Filter::AddressPort => self.sent_to.contains(&from),
        }
    }
}

/// Runs the probe to its report; returns it and the virtual time it took.
fn run(nat: &mut Nat, servers: &mut [StunServer], addrs: &[&str]) -> (NatReport, Duration) {
    let t0 = Instant::now();
    let mut now = t0;
    let config = ProbeConfig::new(addrs.iter().map(|a| addr(a)).collect());
    let mut probe = NatProbe::new(config, addr(LOCAL), StdRng::seed_from_u64(1), now);
    for _ in 0..1000 {
        while let Some(t) = probe.poll_transmit() {
            assert_eq!(t.from, addr(LOCAL));
            let Some(public_src) = nat.outbound(t.to) else {
                continue;
            };
            for server in servers.iter_mut() {
                server.handle_input(t.to, public_src, &t.bytes);
                while let Some(answer) = server.poll_transmit() {
                    if nat.inbound(answer.from) {
                        probe.handle_input(now, answer.from, &answer.bytes);
                    }
                }
            }
        }
        if let Some(report) = probe.report() {
            return (report.clone(), now - t0);
        }
        now = probe.poll_timeout().expect("a running probe has a timer");
        probe.handle_timeout(now);
    }
    panic!("the probe never finished");
}

fn rfc5780_server() -> Vec<StunServer> {
    vec![StunServer::new(ServerConfig::new(addr(P), Some(addr(A)))).expect("cfg")]
}

#[test]
fn rfc5780_4_3_4_4_no_nat_is_open() {
    let (r, _) = run(&mut Nat::none(), &mut rfc5780_server(), &[P]);
    assert_eq!(r.kind, NatKind::Open);
    assert_eq!(r.mapping, Mapping::NoNat);
    assert_eq!(r.filtering, Filtering::EndpointIndependent);
    assert_eq!(r.public, Some(addr(LOCAL)));
    assert_eq!(r.other_address, Some(addr(A)));
    assert_eq!(r.alg_rewrote_address, Some(false));
    assert!(matches!(r.device_at_home(), DeviceAtHome::Supported { .. }));
}

#[test]
fn rfc8489_14_2_an_alg_rewriting_mapped_address_is_reported() {
    // The ALG rewrites the plain MAPPED-ADDRESS (public -> private, as SIP ALGs do); the
    // XOR-ed copy survives.
    let mut server = StunServer::new(ServerConfig::new(addr(P), Some(addr(A)))).expect("cfg");
    let t0 = Instant::now();
    let mut probe = NatProbe::new(
        ProbeConfig::new(vec![addr(P)]),
        addr(LOCAL),
        StdRng::seed_from_u64(3),
        t0,
    );
    let mut nat = Nat::new(Map::Independent, Filter::Independent);
    let mut now = t0;
    while probe.report().is_none() {
        while let Some(t) = probe.poll_transmit() {
            let src = nat.outbound(t.to).expect("not blocked");
            server.handle_input(t.to, src, &t.bytes);
            while let Some(mut a) = server.poll_transmit() {
                // MAPPED-ADDRESS value: 0, family, port, 4 address bytes; find and rewrite it.
                let needle = [203u8, 0, 113, 10];
                if let Some(i) = a.bytes.windows(4).position(|w| w == needle) {
                    a.bytes[i..i + 4].copy_from_slice(&[192, 168, 1, 10]);
                }
                // FINGERPRINT no longer matches; this ALG strips it (one that left it would
                // get its answers dropped, which the probe reports as silence).
                let fp_at = a.bytes.len() - 8;
                a.bytes.truncate(fp_at);
                let len = u16::try_from(fp_at - 20).expect("small");
                a.bytes[2..4].copy_from_slice(&len.to_be_bytes());
                probe.handle_input(now, a.from, &a.bytes);
            }
        }
        if probe.report().is_none() {
            now = probe.poll_timeout().expect("timer");
            probe.handle_timeout(now);
        }
    }
    let r = probe.report().expect("done");
    assert_eq!(r.alg_rewrote_address, Some(true));
    assert_eq!(
        r.public.map(|p| p.ip().to_string()),
        Some("203.0.113.10".into())
    );
    assert!(r.to_string().contains("SIP ALG"), "{r}");
}

#[test]
fn rfc5780_4_3_4_4_full_cone() {
    let (r, t) = run(
        &mut Nat::new(Map::Independent, Filter::Independent),
        &mut rfc5780_server(),
        &[P],
    );
    assert_eq!(r.kind, NatKind::FullCone);
    assert_eq!(r.mapping, Mapping::EndpointIndependent);
    assert_eq!(r.filtering, Filtering::EndpointIndependent);
    assert_eq!(
        r.public.map(|p| p.ip()),
        Some(PUBLIC_IP.parse().expect("ip"))
    );
    assert!(t < Duration::from_secs(1), "nothing timed out: {t:?}");
}

#[test]
fn rfc5780_4_4_address_dependent_filtering_is_restricted_cone() {
    let (r, _) = run(
        &mut Nat::new(Map::Independent, Filter::Address),
        &mut rfc5780_server(),
        &[P],
    );
    assert_eq!(r.kind, NatKind::RestrictedCone);
    assert_eq!(r.filtering, Filtering::AddressDependent);
}

#[test]
fn rfc5780_4_4_address_and_port_dependent_filtering_is_port_restricted_cone() {
    let (r, t) = run(
        &mut Nat::new(Map::Independent, Filter::AddressPort),
        &mut rfc5780_server(),
        &[P],
    );
    assert_eq!(r.kind, NatKind::PortRestrictedCone);
    assert_eq!(r.filtering, Filtering::AddressAndPortDependent);
    // Two silent filtering tests of 5.5 s each.
    assert_eq!(t, Duration::from_millis(11_000));
}

#[test]
fn rfc5780_4_3_address_dependent_mapping_is_symmetric_and_unsupported() {
    let (r, _) = run(
        &mut Nat::new(Map::Address, Filter::AddressPort),
        &mut rfc5780_server(),
        &[P],
    );
    assert_eq!(r.kind, NatKind::Symmetric);
    assert_eq!(r.mapping, Mapping::AddressDependent);
    let DeviceAtHome::Unsupported { fix, .. } = r.device_at_home() else {
        panic!("symmetric NAT must be unsupported: {r}");
    };
    assert!(
        fix.contains("1:1") && fix.contains("static public address"),
        "{fix}"
    );
    let text = r.to_string();
    assert!(text.contains("NAT type:        symmetric"), "{text}");
    assert!(text.contains("NOT supported"), "{text}");
}

#[test]
fn rfc5780_4_3_address_and_port_dependent_mapping_is_symmetric() {
    let (r, _) = run(
        &mut Nat::new(Map::AddressPort, Filter::Independent),
        &mut rfc5780_server(),
        &[P],
    );
    assert_eq!(r.kind, NatKind::Symmetric);
    assert_eq!(r.mapping, Mapping::AddressAndPortDependent);
    assert_eq!(r.filtering, Filtering::EndpointIndependent);
}

#[test]
fn no_answer_at_all_is_udp_blocked_after_trying_every_server() {
    let mut nat = Nat::new(Map::Independent, Filter::Independent);
    nat.udp_blocked = true;
    let (r, t) = run(&mut nat, &mut rfc5780_server(), &[P, "198.51.100.20:3478"]);
    assert_eq!(r.kind, NatKind::UdpBlocked);
    assert_eq!(r.public, None);
    assert_eq!(t, Duration::from_millis(11_000), "two servers, 5.5 s each");
    assert!(matches!(
        r.device_at_home(),
        DeviceAtHome::Unsupported { .. }
    ));
}

#[test]
fn first_server_down_falls_back_to_the_next() {
    let mut servers = rfc5780_server();
    let (r, _) = run(
        &mut Nat::new(Map::Independent, Filter::Independent),
        &mut servers,
        &["198.51.100.99:3478", P],
    );
    assert_eq!(r.kind, NatKind::FullCone);
    assert_eq!(r.server, Some(addr(P)));
}

#[test]
fn brief_outbound_filter_to_the_other_address_is_not_called_symmetric() {
    // A cone NAT, but the router drops outbound packets to the server's second IP: test II
    // of the mapping is silent, which a naive test reports as symmetric.
    let mut nat = Nat::new(Map::Independent, Filter::AddressPort);
    nat.blocked.insert(addr(A).ip());
    let (r, _) = run(&mut nat, &mut rfc5780_server(), &[P]);
    assert_eq!(
        r.kind,
        NatKind::CannotTell(Ambiguity::SecondAddressSilent {
            to: addr("198.51.100.11:3478")
        })
    );
    assert_eq!(r.mapping, Mapping::Unknown);
    let text = r.to_string();
    assert!(text.contains("outbound filter"), "{text}");
    assert!(matches!(r.device_at_home(), DeviceAtHome::Unknown { .. }));
}

#[test]
fn brief_server_without_other_address_cannot_tell() {
    let mut servers = vec![StunServer::new(ServerConfig::new(addr(P), None)).expect("cfg")];
    let (r, _) = run(
        &mut Nat::new(Map::AddressPort, Filter::AddressPort),
        &mut servers,
        &[P],
    );
    assert_eq!(r.kind, NatKind::CannotTell(Ambiguity::NoOtherAddress));
    assert_eq!(r.other_address, None);
    let text = r.to_string();
    assert!(text.contains("no OTHER-ADDRESS"), "{text}");
}

#[test]
fn without_rfc5780_a_second_server_tells_symmetric_mapping() {
    let second = "198.51.100.20:3478";
    let mut servers = vec![
        StunServer::new(ServerConfig::new(addr(P), None)).expect("cfg"),
        StunServer::new(ServerConfig::new(addr(second), None)).expect("cfg"),
    ];
    let (r, _) = run(
        &mut Nat::new(Map::Address, Filter::AddressPort),
        &mut servers,
        &[P, second],
    );
    assert_eq!(r.kind, NatKind::Symmetric);
    assert_eq!(r.mapping, Mapping::NotEndpointIndependent);

    let (r, _) = run(
        &mut Nat::new(Map::Independent, Filter::AddressPort),
        &mut servers,
        &[P, second],
    );
    assert_eq!(r.kind, NatKind::CannotTell(Ambiguity::FilteringUntested));
    assert!(matches!(r.device_at_home(), DeviceAtHome::Supported { .. }));
}

#[test]
fn without_rfc5780_a_silent_second_server_cannot_tell_symmetric_from_outbound_filter() {
    let second = "198.51.100.20:3478";
    let mut servers = vec![
        StunServer::new(ServerConfig::new(addr(P), None)).expect("cfg"),
        StunServer::new(ServerConfig::new(addr(second), None)).expect("cfg"),
    ];
    let mut nat = Nat::new(Map::Independent, Filter::AddressPort);
    nat.blocked.insert(addr(second).ip());
    let (r, _) = run(&mut nat, &mut servers, &[P, second]);
    assert_eq!(
        r.kind,
        NatKind::CannotTell(Ambiguity::SecondAddressSilent { to: addr(second) })
    );
}
