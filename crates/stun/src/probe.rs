//! NAT behaviour discovery (RFC 5780 §4.3 mapping, §4.4 filtering) from one local socket.
//!
//! The order of the tests matters: the filtering tests run right after test I, before the
//! mapping tests send anything to the server's other address, because a request to that
//! address would open an address-dependent filter for it and make the router look more
//! permissive than it is (the order RFC 3489 §10.1 used for the same reason).
//!
//! A silent test is an answer, not a failure, but it is also where a NAT test lies: a router
//! that drops outbound packets to destinations it does not know looks exactly like a
//! symmetric NAT to a probe that only sees a missing response. The report keeps that
//! ambiguity ([`Ambiguity`]) instead of guessing.

use std::collections::VecDeque;
use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::RngCore;
use stun_types::message::TransactionId;

use crate::attr::ChangeRequest;
use crate::wire::{
    binding_request, new_transaction_id, parse_binding_response, BindingResponse, Retransmit,
    RetransmitConfig, RetransmitStep, Transmit,
};

/// Probe settings.
#[derive(Debug, Clone)]
pub struct ProbeConfig {
    /// STUN servers; the first that answers is used. Without RFC 5780 support on it, a second
    /// server with another IP address stands in for its other address in the mapping test.
    pub servers: Vec<SocketAddr>,
    /// Retransmission schedule per test.
    pub retransmit: RetransmitConfig,
}

impl ProbeConfig {
    /// RFC 8489's 500 ms initial RTO but Rc = 4 and Rm = 4 (a silent test ends after 5.5 s
    /// instead of 39.5 s): silence is an expected outcome of the filtering tests and the probe
    /// runs while an administrator waits; four lost datagrams in a row on a working line are
    /// rare enough.
    pub fn new(servers: Vec<SocketAddr>) -> Self {
        Self {
            servers,
            retransmit: RetransmitConfig {
                rto: Duration::from_millis(500),
                rc: 4,
                rm: 4,
            },
        }
    }
}

/// How the NAT maps one local socket toward different destinations (RFC 4787 §4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mapping {
    /// No NAT: the server sees the local address itself.
    NoNat,
    /// The same public address and port toward every destination.
    EndpointIndependent,
    /// A new mapping per destination IP address.
    AddressDependent,
    /// A new mapping per destination IP address and port.
    AddressAndPortDependent,
    /// A new mapping for another destination; whether the port alone matters was not tested.
    NotEndpointIndependent,
    /// Not determined (see the report's kind for why).
    Unknown,
}

impl fmt::Display for Mapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NoNat => "none (no NAT)",
            Self::EndpointIndependent => "endpoint-independent",
            Self::AddressDependent => "address-dependent",
            Self::AddressAndPortDependent => "address- and port-dependent",
            Self::NotEndpointIndependent => "not endpoint-independent",
            Self::Unknown => "unknown",
        })
    }
}

/// Which inbound packets reach the local socket (RFC 4787 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filtering {
    /// From anyone.
    EndpointIndependent,
    /// Only from IP addresses the socket has sent to.
    AddressDependent,
    /// Only from IP addresses and ports the socket has sent to.
    AddressAndPortDependent,
    /// Not tested: the server cannot answer from another address, or ignored CHANGE-REQUEST.
    Unknown,
}

impl fmt::Display for Filtering {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::EndpointIndependent => "endpoint-independent",
            Self::AddressDependent => "address-dependent",
            Self::AddressAndPortDependent => "address- and port-dependent",
            Self::Unknown => "unknown",
        })
    }
}

/// Why the probe cannot name the NAT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ambiguity {
    /// The server has no second address (no OTHER-ADDRESS) and no second server was given: the
    /// mapping was seen toward one destination only.
    NoOtherAddress,
    /// The server's other address (or the second server) never answered while the first did:
    /// a symmetric NAT and a router that blocks outbound traffic to that destination look alike.
    SecondAddressSilent {
        /// The silent address.
        to: SocketAddr,
    },
    /// The mapping is endpoint-independent (a cone NAT), but the server cannot answer from
    /// another address, so which cone cannot be told.
    FilteringUntested,
}

/// The classic name of the NAT (RFC 3489 §5), from the RFC 5780 behaviours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NatKind {
    /// No NAT: the local address is public.
    Open,
    /// Endpoint-independent mapping and filtering.
    FullCone,
    /// Endpoint-independent mapping, address-dependent filtering.
    RestrictedCone,
    /// Endpoint-independent mapping, address- and port-dependent filtering.
    PortRestrictedCone,
    /// The mapping changes with the destination.
    Symmetric,
    /// No server answered over UDP.
    UdpBlocked,
    /// The tests cannot tell; the ambiguity says why.
    CannotTell(Ambiguity),
}

impl fmt::Display for NatKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Open => "open (no NAT)",
            Self::FullCone => "full cone",
            Self::RestrictedCone => "restricted cone",
            Self::PortRestrictedCone => "port-restricted cone",
            Self::Symmetric => "symmetric",
            Self::UdpBlocked => "UDP blocked",
            Self::CannotTell(Ambiguity::FilteringUntested) => "cone NAT (which cone: cannot tell)",
            Self::CannotTell(_) => "cannot tell",
        })
    }
}

/// What the NAT means for remote phones (Device@Home).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceAtHome {
    /// Works, given the port forwarding the setup asks for.
    Supported {
        /// What to keep in mind.
        note: &'static str,
    },
    /// Does not work until fixed.
    Unsupported {
        /// Why.
        why: &'static str,
        /// The fix.
        fix: &'static str,
    },
    /// The test could not decide.
    Unknown {
        /// How to decide.
        what_to_do: &'static str,
    },
}

/// The probe's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatReport {
    /// The classic name.
    pub kind: NatKind,
    /// Mapping behaviour (RFC 5780 §4.3).
    pub mapping: Mapping,
    /// Filtering behaviour (RFC 5780 §4.4).
    pub filtering: Filtering,
    /// The public address and port of the local socket; `None` when no server answered.
    pub public: Option<SocketAddr>,
    /// The local socket tested.
    pub local: SocketAddr,
    /// The server that answered test I.
    pub server: Option<SocketAddr>,
    /// Its OTHER-ADDRESS, when it has one.
    pub other_address: Option<SocketAddr>,
    /// Whether something on the path rewrote the plain MAPPED-ADDRESS of test I's answer (it
    /// then differs from XOR-MAPPED-ADDRESS): an application-level gateway (ALG) on the
    /// router. `None` when the server did not send both.
    pub alg_rewrote_address: Option<bool>,
}

const FIX_SYMMETRIC: &str = "change the office router's NAT to endpoint-independent mapping \
(often called full cone, EIM, consistent or static-port NAT), or forward the relay port range \
1:1 (same outside and inside ports) to homeline with a static public address";

impl NatReport {
    /// What this NAT means for Device@Home, with the fix when it does not work.
    pub fn device_at_home(&self) -> DeviceAtHome {
        match self.kind {
            NatKind::Open => DeviceAtHome::Supported {
                note:
                    "no NAT in front of homeline; open SIP and the relay port range in any firewall",
            },
            NatKind::FullCone
            | NatKind::RestrictedCone
            | NatKind::PortRestrictedCone
            | NatKind::CannotTell(Ambiguity::FilteringUntested) => DeviceAtHome::Supported {
                note: "cone NAT: forward the SIP port and the relay port range to homeline",
            },
            NatKind::Symmetric => DeviceAtHome::Unsupported {
                why: "a symmetric NAT gives every destination another public port, so remote \
phones and the ITSP cannot reach the address homeline advertises",
                fix: FIX_SYMMETRIC,
            },
            NatKind::UdpBlocked => DeviceAtHome::Unsupported {
                why: "no STUN server answered over UDP: outbound UDP is blocked, or every \
server is down or mistyped",
                fix: "allow outbound UDP from homeline (SIP, the relay port range, STUN 3478) \
in the office firewall, and check the STUN server addresses",
            },
            NatKind::CannotTell(Ambiguity::NoOtherAddress) => DeviceAtHome::Unknown {
                what_to_do: "test again against an RFC 5780 server (homeline stun-server \
--alternate, or coturn with two listening addresses), or give a second --server with another \
IP address",
            },
            NatKind::CannotTell(Ambiguity::SecondAddressSilent { .. }) => DeviceAtHome::Unknown {
                what_to_do: "a symmetric NAT and a router that blocks outbound UDP to unknown \
destinations look the same here, so this is not proof of a symmetric NAT: allow outbound UDP \
from homeline to any destination and test again; if it is still silent, treat the NAT as \
symmetric and change the router or forward the relay range 1:1 with a static public address",
            },
        }
    }
}

impl fmt::Display for NatReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "NAT type:        {}", self.kind)?;
        match self.public {
            Some(p) => writeln!(f, "public address:  {p}")?,
            None => writeln!(f, "public address:  unknown")?,
        }
        writeln!(f, "local address:   {}", self.local)?;
        if let Some(s) = self.server {
            writeln!(f, "STUN server:     {s}")?;
        }
        match self.other_address {
            Some(o) => writeln!(f, "other address:   {o} (RFC 5780)")?,
            None if self.server.is_some() => writeln!(f, "other address:   none (no RFC 5780)")?,
            None => {}
        }
        if self.alg_rewrote_address == Some(true) {
            writeln!(
                f,
                "ALG:             the router rewrote the address inside the STUN answer: an \
application-level gateway is active; turn off its SIP ALG, which rewrites SIP the same way"
            )?;
        }
        writeln!(f, "mapping:         {}", self.mapping)?;
        writeln!(f, "filtering:       {}", self.filtering)?;
        match self.kind {
            NatKind::CannotTell(Ambiguity::NoOtherAddress) => writeln!(
                f,
                "why unknown:     the server has no second address (no OTHER-ADDRESS), so the \
mapping was seen toward one destination only; a symmetric NAT cannot be told from a cone NAT"
            )?,
            NatKind::CannotTell(Ambiguity::SecondAddressSilent { to }) => writeln!(
                f,
                "why unknown:     {to} never answered although the first address did: a \
symmetric NAT and an outbound filter on the router look alike"
            )?,
            NatKind::CannotTell(Ambiguity::FilteringUntested) => writeln!(
                f,
                "why unknown:     the server cannot answer from another address \
(CHANGE-REQUEST), so the filtering was not tested"
            )?,
            _ => {}
        }
        match self.device_at_home() {
            DeviceAtHome::Supported { note } => writeln!(f, "Device@Home:     supported ({note})"),
            DeviceAtHome::Unsupported { why, fix } => {
                writeln!(f, "Device@Home:     NOT supported: {why}")?;
                writeln!(f, "fix:             {fix}")
            }
            DeviceAtHome::Unknown { what_to_do } => {
                writeln!(f, "Device@Home:     cannot tell yet")?;
                writeln!(f, "what to do:      {what_to_do}")
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Test {
    /// §4.3 test I to `servers[server]`.
    Basic { server: usize },
    /// §4.4 test II: CHANGE-REQUEST for another IP and port.
    FilterBoth,
    /// §4.4 test III: CHANGE-REQUEST for another port.
    FilterPort,
    /// §4.3 test II: to the other IP, primary port.
    MapOtherIp,
    /// §4.3 test III: to the other IP and port.
    MapOtherBoth,
    /// No OTHER-ADDRESS: a second server (another IP) compares the mapping.
    SecondServer { server: usize },
}

#[derive(Debug)]
struct Pending {
    test: Test,
    to: SocketAddr,
    tid: TransactionId,
    request: Vec<u8>,
    rtx: Retransmit,
}

/// The probe. Drive it like every core: `handle_timeout` at `poll_timeout`, feed datagrams to
/// `handle_input`, send `poll_transmit`; [`Self::report`] is set when it is done.
#[derive(Debug)]
pub struct NatProbe<R> {
    config: ProbeConfig,
    local: SocketAddr,
    rng: R,
    pending: Option<Pending>,
    transmits: VecDeque<Transmit>,
    primary: Option<SocketAddr>,
    m1: Option<SocketAddr>,
    m2: Option<SocketAddr>,
    other: Option<SocketAddr>,
    rewritten: Option<bool>,
    mapping: Mapping,
    filtering: Filtering,
    ambiguity: Option<Ambiguity>,
    report: Option<NatReport>,
}

impl<R: RngCore> NatProbe<R> {
    /// A probe of `local` (the socket the driver sends from; its IP must be the real interface
    /// address, not 0.0.0.0, or "no NAT" cannot be recognised). Test I starts at `now`.
    pub fn new(config: ProbeConfig, local: SocketAddr, rng: R, now: Instant) -> Self {
        let mut probe = Self {
            config,
            local,
            rng,
            pending: None,
            transmits: VecDeque::new(),
            primary: None,
            m1: None,
            m2: None,
            other: None,
            rewritten: None,
            mapping: Mapping::Unknown,
            filtering: Filtering::Unknown,
            ambiguity: None,
            report: None,
        };
        if probe.config.servers.is_empty() {
            probe.finish();
        } else {
            let to = probe.config.servers[0];
            probe.send(now, Test::Basic { server: 0 }, to, None);
        }
        probe
    }

    /// The result, once every test has run.
    pub fn report(&self) -> Option<&NatReport> {
        self.report.as_ref()
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// When to call [`Self::handle_timeout`]; `None` when done.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.pending.as_ref().map(|p| p.rtx.next)
    }

    /// Time passed: resend, or take the silence as the test's outcome.
    pub fn handle_timeout(&mut self, now: Instant) {
        let Some(p) = &mut self.pending else { return };
        match p.rtx.on_timeout(now) {
            RetransmitStep::Wait => {}
            RetransmitStep::Resend => self.transmits.push_back(Transmit {
                from: self.local,
                to: p.to,
                bytes: p.request.clone(),
            }),
            RetransmitStep::GiveUp => {
                let test = p.test;
                self.pending = None;
                self.outcome(now, test, None);
            }
        }
    }

    /// A datagram arrived on the local socket; returns whether it answered the running test.
    /// The source is not checked against the destination: answers to CHANGE-REQUEST come from
    /// the server's other addresses by design; the transaction id ties them to the test.
    pub fn handle_input(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) -> bool {
        let Some(p) = &self.pending else { return false };
        let Some(resp) = parse_binding_response(bytes) else {
            return false;
        };
        if resp.tid != p.tid {
            return false;
        }
        let test = p.test;
        self.pending = None;
        self.outcome(now, test, Some((from, resp)));
        true
    }

    fn send(&mut self, now: Instant, test: Test, to: SocketAddr, change: Option<ChangeRequest>) {
        let tid = new_transaction_id(&mut self.rng);
        let request = binding_request(tid, change);
        self.transmits.push_back(Transmit {
            from: self.local,
            to,
            bytes: request.clone(),
        });
        self.pending = Some(Pending {
            test,
            to,
            tid,
            request,
            rtx: Retransmit::start(now, self.config.retransmit),
        });
    }

    fn outcome(&mut self, now: Instant, test: Test, answer: Option<(SocketAddr, BindingResponse)>) {
        // A success with a mapped address; an error response counts as no answer for the
        // mapping tests and as "cannot test" for the filtering tests.
        let mapped = answer
            .as_ref()
            .filter(|(_, r)| r.error.is_none())
            .and_then(|(_, r)| r.mapped);
        match test {
            Test::Basic { server } => match (answer, mapped) {
                (Some((_, resp)), Some(m1)) => {
                    let primary = self.config.servers[server];
                    self.primary = Some(primary);
                    self.m1 = Some(m1);
                    self.rewritten = resp.rewritten;
                    // An other address that shares the IP or port cannot change both.
                    self.other = resp
                        .other
                        .filter(|o| o.ip() != primary.ip() && o.port() != primary.port());
                    if self.other.is_some() {
                        let change = ChangeRequest {
                            change_ip: true,
                            change_port: true,
                        };
                        self.send(now, Test::FilterBoth, primary, Some(change));
                    } else {
                        self.other = resp.other;
                        self.mapping_tests(now);
                    }
                }
                _ => {
                    let next = server + 1;
                    if next < self.config.servers.len() {
                        let to = self.config.servers[next];
                        self.send(now, Test::Basic { server: next }, to, None);
                    } else {
                        self.finish();
                    }
                }
            },
            Test::FilterBoth => match answer {
                Some((from, resp)) if resp.error.is_none() => {
                    // A server that ignored CHANGE-REQUEST answers from the primary IP: then
                    // this proves nothing about the filter.
                    self.filtering = if self.primary.map(|p| p.ip()) == Some(from.ip()) {
                        Filtering::Unknown
                    } else {
                        Filtering::EndpointIndependent
                    };
                    self.mapping_tests(now);
                }
                Some(_) => self.mapping_tests(now),
                None => {
                    let primary = self.primary.unwrap_or(self.local);
                    let change = ChangeRequest {
                        change_ip: false,
                        change_port: true,
                    };
                    self.send(now, Test::FilterPort, primary, Some(change));
                }
            },
            Test::FilterPort => {
                self.filtering = match answer {
                    Some((from, resp)) if resp.error.is_none() => {
                        if self.primary == Some(from) {
                            Filtering::Unknown
                        } else {
                            Filtering::AddressDependent
                        }
                    }
                    Some(_) => Filtering::Unknown,
                    None => Filtering::AddressAndPortDependent,
                };
                self.mapping_tests(now);
            }
            Test::MapOtherIp => match mapped {
                Some(m2) if Some(m2) == self.m1 => {
                    self.mapping = Mapping::EndpointIndependent;
                    self.finish();
                }
                Some(m2) => {
                    self.m2 = Some(m2);
                    match self.other {
                        Some(other) => self.send(now, Test::MapOtherBoth, other, None),
                        None => {
                            self.mapping = Mapping::NotEndpointIndependent;
                            self.finish();
                        }
                    }
                }
                None => {
                    let to = self.other_ip_primary_port().unwrap_or(self.local);
                    self.ambiguity = Some(Ambiguity::SecondAddressSilent { to });
                    self.finish();
                }
            },
            Test::MapOtherBoth => {
                self.mapping = match mapped {
                    Some(m3) if Some(m3) == self.m2 => Mapping::AddressDependent,
                    Some(_) => Mapping::AddressAndPortDependent,
                    // Test II already saw a second mapping: not endpoint-independent either way.
                    None => Mapping::NotEndpointIndependent,
                };
                self.finish();
            }
            Test::SecondServer { server } => {
                match mapped {
                    Some(m2) if Some(m2) == self.m1 => {
                        self.mapping = Mapping::EndpointIndependent;
                        self.ambiguity = Some(Ambiguity::FilteringUntested);
                    }
                    Some(_) => self.mapping = Mapping::NotEndpointIndependent,
                    None => {
                        self.ambiguity = Some(Ambiguity::SecondAddressSilent {
                            to: self.config.servers[server],
                        });
                    }
                }
                self.finish();
            }
        }
    }

    /// (other IP, primary port): where §4.3 test II goes.
    fn other_ip_primary_port(&self) -> Option<SocketAddr> {
        let (other, primary) = (self.other?, self.primary?);
        Some(SocketAddr::new(other.ip(), primary.port()))
    }

    fn nat(&self) -> bool {
        self.m1.is_some_and(|m1| m1 != self.local)
    }

    /// After test I and the filtering tests.
    fn mapping_tests(&mut self, now: Instant) {
        if !self.nat() {
            self.mapping = Mapping::NoNat;
            return self.finish();
        }
        let other_ip_differs = match (self.other, self.primary) {
            (Some(o), Some(p)) => o.ip() != p.ip(),
            _ => false,
        };
        if other_ip_differs {
            if let Some(to) = self.other_ip_primary_port() {
                return self.send(now, Test::MapOtherIp, to, None);
            }
        }
        // No RFC 5780 on the server: a second server with another IP stands in.
        let primary_ip = self.primary.map(|p| p.ip());
        let second = self
            .config
            .servers
            .iter()
            .position(|s| Some(s.ip()) != primary_ip);
        match second {
            Some(server) => {
                let to = self.config.servers[server];
                self.send(now, Test::SecondServer { server }, to, None);
            }
            None => {
                self.ambiguity = Some(Ambiguity::NoOtherAddress);
                self.finish();
            }
        }
    }

    fn finish(&mut self) {
        self.pending = None;
        let kind = match (self.m1, self.nat()) {
            (None, _) => NatKind::UdpBlocked,
            (Some(_), false) => NatKind::Open,
            (Some(_), true) => match (self.mapping, self.ambiguity) {
                (
                    Mapping::AddressDependent
                    | Mapping::AddressAndPortDependent
                    | Mapping::NotEndpointIndependent,
                    _,
                ) => NatKind::Symmetric,
                (Mapping::EndpointIndependent, _) => match self.filtering {
                    Filtering::EndpointIndependent => NatKind::FullCone,
                    Filtering::AddressDependent => NatKind::RestrictedCone,
                    Filtering::AddressAndPortDependent => NatKind::PortRestrictedCone,
                    Filtering::Unknown => NatKind::CannotTell(Ambiguity::FilteringUntested),
                },
                (_, Some(a)) => NatKind::CannotTell(a),
                (_, None) => NatKind::CannotTell(Ambiguity::NoOtherAddress),
            },
        };
        self.report = Some(NatReport {
            kind,
            mapping: self.mapping,
            filtering: self.filtering,
            public: self.m1,
            local: self.local,
            server: self.primary,
            other_address: self.other,
            alg_rewrote_address: self.rewritten,
        });
    }
}
