//! Learning and following the office's public address while the server runs: resolved from a
//! DynDNS name (`nat.public_name`) or learned with the `stun` crate's binding client
//! (`nat.stun_servers`), applied to the core ([`net::PublicIpSetter`]) and shown in status
//! ([`net::PublicAddress`]). The NAT-type probe (RFC 5780) runs once at start and again when
//! the address changes.
//!
//! The STUN socket is bound on the external listener's IP with a port of the system's choice:
//! a cone NAT (the only kind Device@Home supports) maps the IP the same for every port, and
//! the listener's own port is taken by the SIP listener.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::SeedableRng;
use stun::{BindingClient, ClientConfig, ClientEvent, DeviceAtHome, NatReport};
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::config::NatSettings;
use crate::stun_cmd::{bind_local, exchange, resolve, MAX_DATAGRAM};

/// Shortest wait before a failed start (unresolvable servers, no socket) is tried again.
const RETRY: Duration = Duration::from_secs(30);

/// Retransmissions of the server's binding client: the NAT probe's 500 ms, Rc = 4, Rm = 4 (a
/// silent server is given up after 5.5 s, not RFC 8489's 39.5 s), so the next server is asked,
/// and a missing address is reported, while someone may be waiting on the first call; the
/// periodic refresh asks again anyway.
const SHORT_RETRANSMIT: stun::RetransmitConfig = stun::RetransmitConfig {
    rto: Duration::from_millis(500),
    rc: 4,
    rm: 4,
};

/// Everything the task touches.
struct Follower {
    settings: NatSettings,
    /// The external listener's IP (a wildcard is replaced by the routed source address).
    listener_ip: IpAddr,
    setter: net::PublicIpSetter,
    stats: Arc<net::Stats>,
    current: Option<IpAddr>,
    probe: Option<JoinHandle<()>>,
}

/// Starts following the public address; returns at once. Does nothing without `[nat]`
/// settings; with a fixed `media.public_ip` only the NAT probe runs.
pub(crate) fn spawn(
    settings: NatSettings,
    listener_ip: IpAddr,
    setter: net::PublicIpSetter,
    stats: Arc<net::Stats>,
) {
    let mut f = Follower {
        current: settings.fixed,
        settings,
        listener_ip,
        setter,
        stats,
        probe: None,
    };
    tokio::spawn(async move {
        // The NAT type once at start, whatever gives the address (and again on a change).
        f.start_probe();
        if f.settings.fixed.is_some() {
            return;
        }
        if let Some(name) = f.settings.public_name.clone() {
            f.follow_dns(&name).await;
        } else if !f.settings.stun_servers.is_empty() {
            f.follow_stun().await;
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

    async fn follow_stun(&mut self) {
        let (socket, servers) = loop {
            match self.stun_socket().await {
                Ok(s) => break s,
                Err(e) => {
                    self.failed(format!("{e:#}"));
                    tokio::time::sleep(RETRY.min(self.settings.refresh)).await;
                }
            }
        };
        let local = match socket.local_addr() {
            Ok(a) => a,
            Err(e) => return self.failed(format!("STUN socket: {e}")),
        };
        info!(%local, servers = ?servers, "learning the public address by STUN");
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
                Err(e) => return self.failed(e.to_string()),
            };
        let mut failures = 0usize;
        let mut buf = vec![0u8; MAX_DATAGRAM];
        loop {
            exchange(&mut client, &socket, &mut buf).await;
            while let Some(ev) = client.poll_event() {
                match ev {
                    ClientEvent::Mapped { server, mapped, .. } => {
                        failures = 0;
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
                        if failures >= count {
                            msg.push_str(match self.current {
                                Some(_) => "; every server failed, the last known address stays",
                                None => "; every server failed, no public address: calls needing the relay are refused",
                            });
                            failures = 0;
                        }
                        self.failed(msg);
                    }
                    ClientEvent::MappedAddressChanged { old, new } => {
                        info!(%old, %new, "STUN mapping changed");
                    }
                    _ => {}
                }
            }
        }
    }

    /// The resolved servers and a socket on the listener's IP toward them.
    async fn stun_socket(&self) -> anyhow::Result<(UdpSocket, Vec<SocketAddr>)> {
        let servers = resolve(&self.settings.stun_servers).await?;
        let first = servers[0];
        let socket = bind_local(Some(SocketAddr::new(self.listener_ip, 0)), first).await?;
        Ok((socket, servers))
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
