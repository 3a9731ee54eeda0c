//! Counters shared between the core task and status readers (the control socket,
//! [`crate::control`]). Every counter is a relaxed atomic: readers want a recent figure, not a
//! consistent snapshot across counters, and the packet path must never wait for a reader.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// Message, registration, call and relay counters.
///
/// "Gauges" go up and down (`bindings`, `flows`, `calls_active`, `relay_in_use`,
/// `internet_in_use`); the others only grow while the server runs.
#[derive(Debug, Default)]
pub struct Stats {
    /// Messages received (datagrams and framed stream messages).
    pub received: AtomicU64,
    /// Messages dropped because they could not be parsed or answered.
    pub dropped: AtomicU64,
    /// Requests answered 400/505/513 before reaching a transaction.
    pub rejected: AtomicU64,
    /// REGISTERs answered 200.
    pub registered: AtomicU64,
    /// REGISTERs answered 403.
    pub auth_failed: AtomicU64,
    /// Bindings currently held.
    pub bindings: AtomicU64,
    /// Stream connections currently open (TCP and TLS).
    pub flows: AtomicU64,
    /// TLS connections currently open (handshake done).
    pub tls_flows: AtomicU64,
    /// TLS handshakes that failed or timed out (old protocol versions, weak suites, refused
    /// client certificates, scanners).
    pub tls_handshake_failed: AtomicU64,
    /// The certificate TLS listeners present, `None` without TLS.
    pub tls_certificate: Mutex<Option<crate::tls::CertificateInfo>>,
    /// Calls in progress (gauge): from the INVITE the B2BUA accepted until the call is gone,
    /// whether ringing or answered.
    pub calls_active: AtomicU64,
    /// Channels (RTP/RTCP port pairs) in the relay's pool. 0: no relay runs. Filled from the
    /// configuration at start by [`crate::control::spawn`] unless the core set it first.
    pub relay_capacity: AtomicU64,
    /// Relay channels allocated to calls right now (gauge).
    pub relay_in_use: AtomicU64,
    /// The simultaneous-Internet-calls limit in force (from the upstream bandwidth, lowered to
    /// the channel pool). 0: no limit beyond the channel pool (the relay refuses a limit of 0,
    /// so the value is free to mean "unset"). Filled like `relay_capacity`.
    pub internet_limit: AtomicU64,
    /// Internet calls in progress (gauge): relayed legs whose media crosses the office's
    /// Internet line, the unit `internet_limit` counts.
    pub internet_in_use: AtomicU64,
    /// Calls refused before ringing (503 + Warning) because every relay channel was in use.
    pub refused_pool: AtomicU64,
    /// Calls refused before ringing (503 + Warning) because the Internet-call limit was reached.
    pub refused_internet: AtomicU64,
    /// RTP and RTCP packets the relay forwarded.
    pub relay_packets: AtomicU64,
    /// Octets (UDP payload) the relay forwarded.
    pub relay_bytes: AtomicU64,
    /// SRTP/SRTCP packets that failed authentication at the relay.
    pub relay_srtp_auth_failures: AtomicU64,
    /// SRTP/SRTCP replays dropped at the relay.
    pub relay_srtp_replays: AtomicU64,
    /// Health of every external-zone (remote) binding, refreshed by the core about once a
    /// second for status; never read on a call's path.
    pub remote_bindings: Mutex<Vec<RemoteBinding>>,
    /// The office's public address, where it comes from, and the NAT in front of homeline.
    /// Set at start from the configuration, then by whoever learns it (the binary's STUN and
    /// DynDNS task).
    pub public_address: Mutex<PublicAddress>,
}

/// The office's public address as status shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicAddress {
    /// The address advertised to remote devices; `None`: none known, calls that need the relay
    /// are refused.
    pub address: Option<std::net::IpAddr>,
    /// Where it comes from: "config" (`media.public_ip`), "dns" (`nat.public_name`), "stun",
    /// "listener" (the external listener's own address) or "none".
    pub source: String,
    /// The last failure to learn it (STUN gave no answer, the name did not resolve); cleared by
    /// the next success.
    pub last_error: Option<String>,
    /// The NAT in front of homeline, from an RFC 5780 probe; `None`: not probed.
    pub nat: Option<NatStatus>,
    /// The public mapping of the external SIP listener and of sample relay ports, learned by
    /// STUN; empty without STUN servers. Missing in a document of an older server.
    #[serde(default)]
    pub mappings: Vec<PortMapping>,
}

/// How the office NAT maps one of homeline's UDP ports, as a STUN server saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMapping {
    /// "sip" (the external listener) or "relay" (a sample port of the relay's range).
    pub role: String,
    /// homeline's socket (a wildcard address stays a wildcard).
    pub local: std::net::SocketAddr,
    /// The public address and port the STUN server saw; `None`: not learned yet.
    pub public: Option<std::net::SocketAddr>,
    /// The public port is the local one (`None`: not learned yet). homeline advertises its
    /// local relay ports in SDP and needs the router to keep them; a rewritten port sends
    /// remote phones to the wrong public port.
    pub preserved: Option<bool>,
    /// The STUN server that answered last.
    pub server: Option<std::net::SocketAddr>,
    /// Unix time (seconds) of the last answer.
    pub refreshed_unix: Option<u64>,
    /// Failed attempts (a server did not answer or refused) since the last answer.
    pub failures: u32,
    /// The last failure; cleared by the next answer.
    pub last_error: Option<String>,
    /// What to change on the office router when the port is rewritten.
    pub fix: Option<String>,
}

/// The RFC 5780 probe's verdict as status shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NatStatus {
    /// The classic name ("open (no NAT)", "full cone", "symmetric", ...).
    pub kind: String,
    /// Device@Home: "supported", "unsupported" or "unknown".
    pub verdict: String,
    /// What to keep in mind, why it does not work, or how to decide.
    pub detail: String,
    /// The fix, when unsupported.
    pub fix: Option<String>,
}

impl PublicAddress {
    /// What is known before anything is learned: the configured address, else (when it is not
    /// learned) the external listener's own address when it is specific.
    pub(crate) fn at_start(
        config: &crate::NetConfig,
        listeners: &[(
            policy::Zone,
            sip_proto::path::Transport,
            std::net::SocketAddr,
        )],
    ) -> PublicAddress {
        let (address, source) = if let Some(ip) = config.media.public_ip {
            (Some(ip), "config")
        } else if config.media.learn_public {
            (None, "none")
        } else {
            match listeners
                .iter()
                .find(|(z, _, a)| *z == policy::Zone::External && !a.ip().is_unspecified())
            {
                Some((_, _, a)) => (Some(a.ip()), "listener"),
                None => (None, "none"),
            }
        };
        PublicAddress {
            address,
            source: source.to_owned(),
            last_error: None,
            nat: None,
            mappings: Vec::new(),
        }
    }
}

/// One remote phone's registration as status shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteBinding {
    /// Station number.
    pub station: String,
    /// Where its packets come from (its home NAT's public side).
    pub source: std::net::SocketAddr,
    /// "udp", "tcp", ...
    pub transport: String,
    /// "none", "nat" or "alg" (a SIP ALG rewrote the Contact).
    pub nat: String,
    /// Seconds since the phone was last heard from (REGISTER or keepalive answer).
    pub last_seen_secs: u64,
    /// Keepalive probes unanswered in a row.
    pub missed_probes: u32,
    /// Seconds until the registration expires.
    pub expires_in_secs: u64,
}

impl Stats {
    /// Adds one to a counter.
    pub(crate) fn bump(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// Sets a figure only if nobody has set it yet (it is still 0): lets start-up fill in a
    /// configured value without overwriting one the core already measured.
    pub(crate) fn fill_if_unset(c: &AtomicU64, value: u64) {
        let _ = c.compare_exchange(0, value, Ordering::Relaxed, Ordering::Relaxed);
    }

    /// Reads a counter.
    pub fn read(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use policy::Zone;
    use sip_proto::path::Transport;

    use super::*;

    #[test]
    fn public_address_at_start_names_its_source() {
        let ext = |a: &str| vec![(Zone::External, Transport::Udp, a.parse().unwrap())];
        let mut config = crate::NetConfig::default();
        let p = PublicAddress::at_start(&config, &ext("192.168.1.10:5062"));
        assert_eq!(
            (p.address, p.source.as_str()),
            (Some("192.168.1.10".parse().unwrap()), "listener")
        );
        assert_eq!(
            PublicAddress::at_start(&config, &ext("0.0.0.0:5062")).source,
            "none"
        );
        config.media.learn_public = true;
        let p = PublicAddress::at_start(&config, &ext("192.168.1.10:5062"));
        assert_eq!(
            (p.address, p.source.as_str()),
            (None, "none"),
            "learned: never the LAN address"
        );
        config.media.public_ip = Some("203.0.113.10".parse().unwrap());
        let p = PublicAddress::at_start(&config, &ext("192.168.1.10:5062"));
        assert_eq!(
            (p.address, p.source.as_str()),
            (Some("203.0.113.10".parse().unwrap()), "config")
        );
    }
}
