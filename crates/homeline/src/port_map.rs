//! Whether the office router keeps homeline's UDP ports: the pure half of the port-mapping
//! check (the STUN exchanges are in [`crate::public_addr`]).
//!
//! homeline advertises its *local* relay ports in SDP (the router forwards the relay range
//! 1:1), and remote phones send their media there. A router that rewrites source ports on the
//! way out (a symmetric NAT, Linux `MASQUERADE --random-fully`, carrier port randomisation)
//! sends homeline's media from another public port than the one advertised: a phone behind
//! its own NAT then filters it out, and latching on the phone's side aims at the wrong port.
//! The SIP listener is the same: requests homeline starts toward a remote phone on a new flow
//! leave through the router's outbound mapping, not the forward.
//!
//! So the question asked of STUN is "is the public port the local port?", per port.

use std::net::SocketAddr;
use std::ops::RangeInclusive;

/// Which of homeline's ports a mapping is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// The external SIP listener.
    Sip,
    /// A sample port of the relay range.
    Relay,
}

impl Role {
    /// The name in status.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Role::Sip => "sip",
            Role::Relay => "relay",
        }
    }
}

/// What a new answer changes, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Change {
    /// The same public address and port as the last answer.
    Same,
    /// First answer, or a new public address or port: the port is kept.
    Preserved,
    /// First answer, or a new public address or port: the router rewrote the port.
    Rewritten,
}

/// The port is kept when the public port is the local one. The address is the router's and is
/// learned (and advertised) separately; only the port is homeline's to keep.
pub(crate) fn preserved(local: SocketAddr, public: SocketAddr) -> bool {
    local.port() == public.port()
}

/// The router setting that makes a rewritten port work: forward the port (or the relay range)
/// 1:1 and keep source ports on the way out.
pub(crate) fn fix(
    role: Role,
    relay: &RangeInclusive<u16>,
    public_sip_port: u16,
    local: u16,
) -> String {
    let keep = "and keep source ports (no port randomisation such as MASQUERADE --random-fully; \
                endpoint-independent mapping)";
    match role {
        Role::Relay => format!(
            "forward UDP {}-{} 1:1 {keep}: homeline advertises its local relay ports in SDP",
            relay.start(),
            relay.end()
        ),
        Role::Sip if public_sip_port == local => format!("forward UDP {local} 1:1 {keep}"),
        Role::Sip => format!("forward UDP {public_sip_port} to {local} {keep}"),
    }
}

/// One checked port: what status shows about it, kept up to date.
#[derive(Debug, Clone)]
pub(crate) struct Tracked {
    /// The status entry.
    pub(crate) status: net::PortMapping,
    fix: String,
}

impl Tracked {
    /// A port not asked about yet.
    pub(crate) fn new(role: Role, local: SocketAddr, fix: String) -> Self {
        Self {
            status: net::PortMapping {
                role: role.name().to_owned(),
                local,
                public: None,
                preserved: None,
                server: None,
                refreshed_unix: None,
                failures: 0,
                last_error: None,
                fix: None,
            },
            fix,
        }
    }

    /// `server` saw `local` (the socket asked from, which for a relay sample may be another port
    /// of the range than last time) as `public` at Unix time `now`.
    pub(crate) fn answered(
        &mut self,
        server: SocketAddr,
        local: SocketAddr,
        public: SocketAddr,
        now: u64,
    ) -> Change {
        let s = &mut self.status;
        let kept = preserved(local, public);
        let same = s.local == local && s.public == Some(public) && s.preserved == Some(kept);
        s.local = local;
        s.public = Some(public);
        s.preserved = Some(kept);
        s.server = Some(server);
        s.refreshed_unix = Some(now);
        s.failures = 0;
        s.last_error = None;
        s.fix = (!kept).then(|| self.fix.clone());
        match (same, kept) {
            (true, _) => Change::Same,
            (false, true) => Change::Preserved,
            (false, false) => Change::Rewritten,
        }
    }

    /// An attempt failed; the last answer stays in force (and shown) until the next one.
    pub(crate) fn failed(&mut self, error: String) {
        self.status.failures = self.status.failures.saturating_add(1);
        self.status.last_error = Some(error);
    }

    /// What to change on the router, when the port is rewritten.
    pub(crate) fn fix(&self) -> &str {
        &self.fix
    }
}

/// The relay ports to sample: RTP ports (even, a channel's first) from each end of the range,
/// `per_end` from each, the low end's first; a range of one channel gives one port. The sampler
/// takes the first free one from each end (a port in a call's use is bound by the relay).
pub(crate) fn relay_candidates(range: &RangeInclusive<u16>, per_end: usize) -> [Vec<u16>; 2] {
    let (start, end) = (u32::from(*range.start()), u32::from(*range.end()));
    let channels = (end + 1).saturating_sub(start) / 2;
    let rtp = |i: u32| u16::try_from(start + 2 * i).ok();
    let n = (per_end as u32).min(channels);
    let low: Vec<u16> = (0..n).filter_map(rtp).collect();
    let high: Vec<u16> = (0..n)
        .map(|i| channels - 1 - i)
        // The two ends share nothing: a small range is sampled from the low end only.
        .filter(|i| *i >= n)
        .filter_map(rtp)
        .collect();
    [low, high]
}

/// Seconds since the Unix epoch now: when a mapping was refreshed, and the age status shows.
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn rfc4787_4_1_a_kept_port_is_preserved_a_new_one_is_rewritten() {
        assert!(preserved(
            addr("192.168.1.10:30000"),
            addr("203.0.113.10:30000")
        ));
        assert!(preserved(addr("0.0.0.0:30000"), addr("203.0.113.10:30000")));
        assert!(!preserved(
            addr("192.168.1.10:30000"),
            addr("203.0.113.10:41234")
        ));
    }

    #[test]
    fn rfc8489_answers_and_failures_update_the_status_entry() {
        let range = 30000..=30099;
        let mut t = Tracked::new(
            Role::Relay,
            addr("0.0.0.0:30000"),
            fix(Role::Relay, &range, 5060, 30000),
        );
        assert_eq!(
            (t.status.role.as_str(), t.status.preserved),
            ("relay", None)
        );
        let server = addr("198.51.100.12:3478");
        let c = t.answered(
            server,
            addr("0.0.0.0:30000"),
            addr("203.0.113.10:30000"),
            100,
        );
        assert_eq!(c, Change::Preserved);
        assert_eq!(t.status.preserved, Some(true));
        assert_eq!(t.status.fix, None);
        // A refresh with the same answer: nothing to log.
        let c = t.answered(
            server,
            addr("0.0.0.0:30000"),
            addr("203.0.113.10:30000"),
            400,
        );
        assert_eq!((c, t.status.refreshed_unix), (Change::Same, Some(400)));
        // Failures count up and keep the last answer.
        t.failed("STUN server 198.51.100.12:3478: no answer".into());
        t.failed("STUN server 198.51.100.12:3478: no answer".into());
        assert_eq!(t.status.failures, 2);
        assert_eq!(t.status.public, Some(addr("203.0.113.10:30000")));
        // The router starts rewriting (a new router, randomisation switched on).
        let c = t.answered(
            server,
            addr("0.0.0.0:30000"),
            addr("203.0.113.10:51515"),
            700,
        );
        assert_eq!(c, Change::Rewritten);
        assert_eq!(
            (
                t.status.preserved,
                t.status.failures,
                t.status.last_error.as_deref()
            ),
            (Some(false), 0, None)
        );
        let f = t.status.fix.as_deref().unwrap();
        assert!(
            f.starts_with("forward UDP 30000-30099 1:1 and keep source ports"),
            "{f}"
        );
        // Another sample port of the range, kept: a change worth logging.
        let c = t.answered(
            server,
            addr("0.0.0.0:30002"),
            addr("203.0.113.10:30002"),
            900,
        );
        assert_eq!((c, t.status.fix.as_deref()), (Change::Preserved, None));
    }

    #[test]
    fn the_fix_names_the_sip_forward_or_the_relay_range() {
        let range = 40000..=40199;
        assert!(fix(Role::Sip, &range, 5060, 5062)
            .starts_with("forward UDP 5060 to 5062 and keep source ports"));
        assert!(fix(Role::Sip, &range, 5062, 5062)
            .starts_with("forward UDP 5062 1:1 and keep source ports"));
        assert!(fix(Role::Relay, &range, 5060, 40000).starts_with("forward UDP 40000-40199 1:1"));
    }

    #[test]
    fn relay_samples_come_from_both_ends_of_the_range() {
        assert_eq!(
            relay_candidates(&(30000..=30099), 3),
            [vec![30000, 30002, 30004], vec![30098, 30096, 30094]]
        );
        // One channel: one port, from the low end.
        assert_eq!(relay_candidates(&(30000..=30001), 3), [vec![30000], vec![]]);
        // Three channels, two per end: the ends would overlap, the high end gets what is left.
        assert_eq!(
            relay_candidates(&(30000..=30005), 2),
            [vec![30000, 30002], vec![30004]]
        );
        assert_eq!(relay_candidates(&(65534..=65535), 2), [vec![65534], vec![]]);
    }
}
