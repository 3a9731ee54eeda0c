//! Learning and following the office's public address while the server runs: resolved from a
//! DynDNS name (`nat.public_name`) or learned with the `stun` crate's binding client
//! (`nat.stun_servers`), applied to the core ([`net::PublicIpSetter`]) and shown in status
//! ([`net::PublicAddress`]). The NAT-type probe (RFC 5780) runs once at start and again when
//! the address changes.
//!
//! With STUN servers, the public mapping of homeline's own ports is learned too and checked
//! against what homeline advertises ([`crate::port_map`]), refreshed every `nat.refresh_secs`:
//! * the external SIP listener: its Binding requests leave from the listener's own socket
//!   ([`net::ListenerStun`]; the listener tells STUN from SIP by the first byte, RFC 7983 §7),
//!   so the mapping is the listener's, and the public address learned is that mapping's;
//! * the relay range, by samples. The relay binds a port only while a channel holds it, so a
//!   free port of the range is bound here for the length of one Binding exchange
//!   (milliseconds; at most [`SHORT_RETRANSMIT`]'s 5.5 s per silent server) and closed again.
//!   That is cheaper and simpler than a command path into a relay worker's thread, and just as
//!   correct: the router maps by source address and port, not by the socket that sent. The
//!   sample socket does not set `SO_REUSEPORT`, so it never shares a port with a relay socket:
//!   a port a call holds fails to bind here and the next candidate is taken, and a channel
//!   handed out while its port is being sampled fails to bind in the worker, which takes the
//!   next channel. Two samples, one from each end of the range, are enough: port preservation
//!   is a property of the NAT's mapping behaviour (RFC 4787 §4.1), so a NAT that keeps one
//!   port of a 1:1 forward keeps the others; the two ends catch a rule covering only part of
//!   the range.
//!
//! The NAT probe keeps a fresh socket of its own on the listener's IP: its CHANGE-REQUEST
//! answers come from other addresses and ports than the server asked.

use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::SeedableRng;
use stun::{BindingClient, ClientConfig, ClientEvent, DeviceAtHome, NatReport};
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::config::NatSettings;
use crate::port_map::{self, unix_now, Change, Role, Tracked};
use crate::stun_cmd::{exchange_listener, first_mapping, resolve, same_family};

/// Shortest wait before a failed start (unresolvable servers, no socket) is tried again.
const RETRY: Duration = Duration::from_secs(30);

/// Retransmissions of the server's binding client: the NAT probe's 500 ms, Rc = 4, Rm = 4 (a
/// silent server is given up after 5.5 s, not RFC 8489's 39.5 s), so the next server is asked,
/// and a missing address is reported, while someone may be waiting on the first call; the
/// periodic refresh asks again anyway. Relay samples use it too: they hold a relay port.
const SHORT_RETRANSMIT: stun::RetransmitConfig = stun::RetransmitConfig {
    rto: Duration::from_millis(500),
    rc: 4,
    rm: 4,
};

/// Candidate ports tried from each end of the relay range when the first is in a call's use.
const SAMPLE_CANDIDATES: usize = 4;

/// homeline's ports whose public mapping is checked.
#[derive(Debug)]
pub(crate) struct Ports {
    /// STUN through the external UDP listener; `None`: no external UDP listener.
    pub(crate) listener: Option<net::ListenerStun>,
    /// The relay's bind address (`media.bind_ip`).
    pub(crate) relay_ip: IpAddr,
    /// The relay's port range.
    pub(crate) relay_ports: RangeInclusive<u16>,
    /// The public SIP port homeline writes in Via and Contact (the router's forward).
    pub(crate) public_sip_port: u16,
}

/// Everything the task touches.
struct Follower {
    settings: NatSettings,
    /// The external listener's IP (a wildcard is replaced by the routed source address).
    listener_ip: IpAddr,
    setter: net::PublicIpSetter,
    stats: Arc<net::Stats>,
    current: Option<IpAddr>,
    probe: Option<JoinHandle<()>>,
    /// The public address comes from the listener's STUN mapping (neither fixed nor DNS).
    learn_from_stun: bool,
}

/// Starts following the public address and the port mappings; returns at once. Does nothing
/// without `[nat]` settings; with a fixed `media.public_ip` or a DynDNS name, STUN (when
/// configured) only probes the NAT and checks the port mappings.
pub(crate) fn spawn(
    settings: NatSettings,
    listener_ip: IpAddr,
    ports: Ports,
    setter: net::PublicIpSetter,
    stats: Arc<net::Stats>,
) {
    let stun = !settings.stun_servers.is_empty();
    let learn_from_stun = stun && settings.fixed.is_none() && settings.public_name.is_none();
    if stun {
        tokio::spawn(follow_relay(
            settings.stun_servers.clone(),
            settings.refresh,
            ports.relay_ip,
            ports.relay_ports.clone(),
            stats.clone(),
        ));
    }
    let listener = ports.listener.filter(|_| stun);
    let sip_fix = listener.as_ref().map(|l| {
        port_map::fix(
            Role::Sip,
            &ports.relay_ports,
            ports.public_sip_port,
            l.local_addr().port(),
        )
    });
    let mut f = Follower {
        current: settings.fixed,
        settings,
        listener_ip,
        setter,
        stats,
        probe: None,
        learn_from_stun,
    };
    tokio::spawn(async move {
        // The NAT type once at start, whatever gives the address (and again on a change).
        f.start_probe();
        let public_name = f
            .settings
            .public_name
            .clone()
            .filter(|_| f.settings.fixed.is_none());
        match (listener.zip(sip_fix), public_name) {
            (Some((l, fix)), None) => f.follow_stun(l, fix).await,
            (Some((l, fix)), Some(name)) => {
                // The name gives the address; the listener's mapping is only checked.
                let mut mapping_only = Follower {
                    settings: f.settings.clone(),
                    listener_ip: f.listener_ip,
                    setter: f.setter.clone(),
                    stats: f.stats.clone(),
                    current: None,
                    probe: None,
                    learn_from_stun: false,
                };
                tokio::spawn(async move { mapping_only.follow_stun(l, fix).await });
                f.follow_dns(&name).await;
            }
            (None, Some(name)) => f.follow_dns(&name).await,
            (None, None) if f.learn_from_stun => f.failed(
                "no external UDP listener to ask the STUN servers through: the public address is not learned"
                    .to_owned(),
            ),
            (None, None) => {}
        }
    });
}

impl Follower {
    fn status(&self, edit: impl FnOnce(&mut net::PublicAddress)) {
        edit(
            &mut self
                .stats
                .public_address
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        );
    }

    /// A learned address: applied and shown; a change is logged by the core and re-probed.
    async fn learned(&mut self, ip: IpAddr, source: &str) {
        self.status(|p| {
            p.address = Some(ip);
            p.source = source.to_owned();
            p.last_error = None;
        });
        if self.current == Some(ip) {
            return;
        }
        let changed = self.current.is_some();
        if !changed {
            info!(%ip, source, "public address learned");
        }
        self.current = Some(ip);
        self.setter.set(Some(ip)).await;
        if changed {
            self.start_probe();
        }
    }

    /// A failure: logged and shown; the last known address stays in force.
    fn failed(&self, error: String) {
        warn!(error = %error, "public address not learned");
        self.status(|p| p.last_error = Some(error));
    }

    async fn follow_dns(&mut self, name: &str) {
        loop {
            match tokio::net::lookup_host((name, 0)).await {
                Ok(addrs) => {
                    let mut addrs: Vec<SocketAddr> = addrs.collect();
                    addrs.sort_by_key(|a| !a.is_ipv4());
                    match addrs.first().map(|a| (a.ip(), refuse_mapped(a.ip()))) {
                        Some((ip, None)) => self.learned(ip, "dns").await,
                        // Split-horizon DNS in the office can give the LAN address.
                        Some((ip, Some(why))) => self.failed(format!(
                            "nat.public_name {name} resolves to {ip}: {why}; not advertised"
                        )),
                        None => self.failed(format!("nat.public_name {name} has no address")),
                    }
                }
                Err(e) => self.failed(format!("cannot resolve nat.public_name {name}: {e}")),
            }
            tokio::time::sleep(self.settings.refresh).await;
        }
    }

    /// Follows the external listener's public mapping through its own socket: the public
    /// address when STUN gives it, and in every case whether the router keeps the listener's
    /// port. Returns when the listener stops.
    async fn follow_stun(&mut self, mut listener: net::ListenerStun, fix: String) {
        let local = listener.local_addr();
        let mut tracked = Tracked::new(Role::Sip, local, fix);
        let servers = loop {
            let found = resolve(&self.settings.stun_servers)
                .await
                .and_then(|all| same_family(&all, local.ip()));
            match found {
                Ok(s) => break s,
                Err(e) => {
                    let e = format!("{e:#}");
                    tracked.failed(e.clone());
                    publish(&self.stats, Role::Sip, [tracked.status.clone()]);
                    self.stun_failed(e);
                    tokio::time::sleep(RETRY.min(self.settings.refresh)).await;
                }
            }
        };
        info!(%local, servers = ?servers, "learning the SIP listener's public mapping by STUN");
        let count = servers.len();
        let config = ClientConfig {
            retransmit: SHORT_RETRANSMIT,
            refresh: self.settings.refresh,
            retry: RETRY.min(self.settings.refresh),
            ..ClientConfig::new(servers)
        };
        let mut client =
            match BindingClient::new(config, local, StdRng::from_entropy(), Instant::now()) {
                Ok(c) => c,
                Err(e) => return self.stun_failed(e.to_string()),
            };
        let mut failures = 0usize;
        while exchange_listener(&mut client, &mut listener).await {
            while let Some(ev) = client.poll_event() {
                match ev {
                    ClientEvent::Mapped { server, mapped, .. } => {
                        failures = 0;
                        let change = tracked.answered(server, local, mapped, unix_now());
                        log_change(&tracked, change);
                        publish(&self.stats, Role::Sip, [tracked.status.clone()]);
                        if !self.learn_from_stun {
                            continue;
                        }
                        match refuse_mapped(mapped.ip()) {
                            None => self.learned(mapped.ip(), "stun").await,
                            Some(why) => self.failed(format!(
                                "STUN server {server} sees homeline as {}: {why}; not advertised",
                                mapped.ip()
                            )),
                        }
                    }
                    ClientEvent::Failed { server, why } => {
                        failures += 1;
                        let mut msg = format!("STUN server {server}: {why}");
                        tracked.failed(msg.clone());
                        publish(&self.stats, Role::Sip, [tracked.status.clone()]);
                        if failures >= count {
                            msg.push_str(match (self.learn_from_stun, self.current) {
                                (false, _) => "; every server failed",
                                (true, Some(_)) => "; every server failed, the last known address stays",
                                (true, None) => "; every server failed, no public address: calls needing the relay are refused",
                            });
                            failures = 0;
                        }
                        self.stun_failed(msg);
                    }
                    ClientEvent::MappedAddressChanged { old, new } => {
                        info!(%old, %new, "STUN mapping of the SIP listener changed");
                    }
                    _ => {}
                }
            }
        }
    }

    /// A STUN failure: the public address's error when STUN gives the address, else only the
    /// log (the mapping's entry in status has it already).
    fn stun_failed(&self, error: String) {
        if self.learn_from_stun {
            self.failed(error);
        } else {
            warn!(error = %error, "SIP listener's port mapping not learned");
        }
    }

    /// Runs the NAT probe on a task of its own (it takes seconds), replacing one in flight.
    fn start_probe(&mut self) {
        if self.settings.stun_servers.is_empty() {
            return;
        }
        if let Some(old) = self.probe.take() {
            old.abort();
        }
        let (names, ip, stats) = (
            self.settings.stun_servers.clone(),
            self.listener_ip,
            self.stats.clone(),
        );
        self.probe = Some(tokio::spawn(async move {
            match probe(&names, ip).await {
                Ok(report) => {
                    let nat = nat_status(&report);
                    info!(kind = %nat.kind, verdict = %nat.verdict, "NAT type");
                    if nat.verdict == "unsupported" {
                        warn!(
                            why = %nat.detail,
                            fix = %nat.fix.clone().unwrap_or_default(),
                            "the office NAT does not support Device@Home"
                        );
                    }
                    stats
                        .public_address
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .nat = Some(nat);
                }
                Err(e) => warn!(error = %format!("{e:#}"), "NAT probe not run"),
            }
        }));
    }
}

/// Samples the relay range's mapping every `refresh`: from each end of the range the first
/// free port of [`SAMPLE_CANDIDATES`], asked through the server list in order.
async fn follow_relay(
    names: Vec<String>,
    refresh: Duration,
    ip: IpAddr,
    range: RangeInclusive<u16>,
    stats: Arc<net::Stats>,
) {
    let fix = port_map::fix(Role::Relay, &range, 0, 0);
    let mut slots: Vec<(Vec<u16>, Tracked)> = port_map::relay_candidates(&range, SAMPLE_CANDIDATES)
        .into_iter()
        .filter(|c| !c.is_empty())
        .map(|c| {
            let first = SocketAddr::new(ip, c[0]);
            (c, Tracked::new(Role::Relay, first, fix.clone()))
        })
        .collect();
    loop {
        let servers = resolve(&names)
            .await
            .and_then(|all| same_family(&all, ip))
            .map_err(|e| format!("{e:#}"));
        for (candidates, tracked) in &mut slots {
            let result = match &servers {
                Ok(servers) => sample(servers, ip, candidates).await,
                Err(e) => Err(e.clone()),
            };
            match result {
                Ok((server, local, public)) => {
                    let change = tracked.answered(server, local, public, unix_now());
                    log_change(tracked, change);
                }
                Err(e) => {
                    warn!(local = %tracked.status.local, error = %e, "relay port mapping not learned");
                    tracked.failed(e);
                }
            }
        }
        publish(
            &stats,
            Role::Relay,
            slots.iter().map(|(_, t)| t.status.clone()),
        );
        tokio::time::sleep(refresh).await;
    }
}

/// One Binding exchange from the first of `candidates` (ports on `ip`) that is free: the
/// server that answered, the socket asked from and its public mapping. The socket is closed
/// when this returns.
async fn sample(
    servers: &[SocketAddr],
    ip: IpAddr,
    candidates: &[u16],
) -> Result<(SocketAddr, SocketAddr, SocketAddr), String> {
    let mut busy = Vec::new();
    for &port in candidates {
        // No SO_REUSEPORT: a port a relay channel holds must fail here, not be shared.
        match UdpSocket::bind(SocketAddr::new(ip, port)).await {
            Ok(socket) => {
                let config = ClientConfig {
                    retransmit: SHORT_RETRANSMIT,
                    ..ClientConfig::new(servers.to_vec())
                };
                return first_mapping(&socket, config)
                    .await
                    .map_err(|failures| failures.join("; "));
            }
            Err(e) => busy.push(format!("{port}: {e}")),
        }
    }
    Err(format!(
        "no relay port free to sample ({})",
        busy.join(", ")
    ))
}

/// Logs a port mapping that is new or changed: kept (info) or rewritten (warn, with the fix).
fn log_change(t: &Tracked, change: Change) {
    let s = &t.status;
    let public = s.public.map(|p| p.to_string()).unwrap_or_default();
    match change {
        Change::Same => {}
        Change::Preserved => info!(
            role = %s.role,
            local = %s.local,
            %public,
            "the office router keeps the port: {} is {} from outside",
            s.local,
            public
        ),
        Change::Rewritten => warn!(
            role = %s.role,
            local = %s.local,
            %public,
            "the office router rewrites the port: {} is {} from outside, but homeline \
             advertises port {}, so remote phones would be sent to the wrong public port; fix: {}",
            s.local,
            public,
            s.local.port(),
            t.fix()
        ),
    }
}

/// Replaces `role`'s entries in status.
fn publish(stats: &net::Stats, role: Role, entries: impl IntoIterator<Item = net::PortMapping>) {
    let mut p = stats
        .public_address
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    p.mappings.retain(|m| m.role != role.name());
    p.mappings.extend(entries);
    // The SIP listener first, then the relay samples by port.
    p.mappings
        .sort_by_key(|m| (m.role != Role::Sip.name(), m.local.port()));
}

/// Why a learned address must not be advertised to remote devices, if it must not: a private or
/// shared (CGNAT) address from STUN means another NAT sits between homeline and the STUN
/// server, or the server is on the LAN; from DNS, a name resolved to the LAN address.
fn refuse_mapped(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) if v4.is_private() => Some("a private address (RFC 1918)"),
        IpAddr::V4(v4) if v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64 => {
            Some("a carrier-grade NAT address (RFC 6598): the line has no public IPv4 address")
        }
        IpAddr::V4(v4) if v4.is_unspecified() || v4.is_multicast() || v4.is_link_local() => {
            Some("not a unicast address")
        }
        IpAddr::V6(v6) if v6.is_unspecified() || v6.is_multicast() => Some("not a unicast address"),
        _ => None,
    }
}

/// One RFC 5780 probe from a fresh socket on the listener's IP.
async fn probe(names: &[String], listener_ip: IpAddr) -> anyhow::Result<NatReport> {
    crate::stun_cmd::probe(names, Some(SocketAddr::new(listener_ip, 0))).await
}

/// The probe's report as status shows it.
fn nat_status(report: &NatReport) -> net::NatStatus {
    let (verdict, detail, fix) = match report.device_at_home() {
        DeviceAtHome::Supported { note } => ("supported", note, None),
        DeviceAtHome::Unsupported { why, fix } => ("unsupported", why, Some(fix.to_owned())),
        DeviceAtHome::Unknown { what_to_do } => ("unknown", what_to_do, None),
    };
    net::NatStatus {
        kind: report.kind.to_string(),
        verdict: verdict.to_owned(),
        detail: detail.to_owned(),
        fix,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_cgnat_mappings_are_not_advertised() {
        for ip in [
            "10.1.2.3",
            "192.168.1.10",
            "172.16.0.1",
            "100.64.0.1",
            "0.0.0.0",
        ] {
            assert!(refuse_mapped(ip.parse().unwrap()).is_some(), "{ip}");
        }
        for ip in [
            "203.0.113.10",
            "198.51.100.7",
            "127.0.0.1",
            "100.128.0.1",
            "2001:db8::1",
        ] {
            assert_eq!(refuse_mapped(ip.parse().unwrap()), None, "{ip}");
        }
    }

    #[test]
    fn symmetric_nat_is_unsupported_with_the_fix() {
        let report = NatReport {
            kind: stun::NatKind::Symmetric,
            mapping: stun::Mapping::AddressAndPortDependent,
            filtering: stun::Filtering::AddressAndPortDependent,
            public: Some("203.0.113.10:40001".parse().unwrap()),
            local: "192.168.1.10:40000".parse().unwrap(),
            server: Some("198.51.100.10:3478".parse().unwrap()),
            other_address: None,
            alg_rewrote_address: None,
        };
        let s = nat_status(&report);
        assert_eq!(
            (s.kind.as_str(), s.verdict.as_str()),
            ("symmetric", "unsupported")
        );
        assert!(s.fix.unwrap().contains("endpoint-independent mapping"));
    }
}
