//! Symmetric RTP (RFC 4961): learning a device's real source address and pinning it.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use crate::config::LatchPolicy;

/// Why a latched source was replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelatchReason {
    /// The stream was renegotiated ([`crate::Relay::renegotiate`]).
    Renegotiated,
    /// The old source had been silent for [`crate::Config::relatch_after_silence`].
    Silence,
}

/// The pinned source of one port of a leg (its RTP port or its RTCP port).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Latch {
    addr: Option<SocketAddr>,
    last_seen: Option<Instant>,
    /// After a renegotiation the next acceptable source takes over, even a new one.
    open: bool,
}

/// What a latch says about one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// From the pinned source.
    Accept,
    /// The packet's source is now pinned (`None`: the first time).
    Latched(Option<RelatchReason>),
    /// A third address: drop.
    Reject,
}

/// Addresses the signalling knows for a leg, for [`LatchPolicy::KnownIps`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct KnownIps([Option<IpAddr>; 3]);

impl KnownIps {
    pub(crate) fn new(ips: [Option<IpAddr>; 3]) -> Self {
        Self(ips.map(|ip| ip.map(|ip| ip.to_canonical())))
    }

    /// Whether `from` may latch under `policy`.
    pub(crate) fn allow(&self, policy: LatchPolicy, from: SocketAddr) -> bool {
        match policy {
            LatchPolicy::AnySource => true,
            LatchPolicy::KnownIps => {
                // A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d.
                let ip = from.ip().to_canonical();
                self.0.iter().all(Option::is_none) || self.0.contains(&Some(ip))
            }
        }
    }
}

impl Latch {
    /// Judges a packet from `from` at `now`; latches or re-latches when allowed.
    #[inline]
    pub(crate) fn check(
        &mut self,
        now: Instant,
        from: SocketAddr,
        relatch_after_silence: Duration,
        allowed: impl FnOnce(SocketAddr) -> bool,
    ) -> Verdict {
        let verdict = match self.addr {
            Some(addr) if addr == from => {
                self.open = false;
                Verdict::Accept
            }
            None => {
                if !allowed(from) {
                    return Verdict::Reject;
                }
                Verdict::Latched(None)
            }
            Some(_) => {
                let silent = self
                    .last_seen
                    .is_none_or(|t| now.saturating_duration_since(t) >= relatch_after_silence);
                let reason = if self.open {
                    RelatchReason::Renegotiated
                } else if silent {
                    RelatchReason::Silence
                } else {
                    return Verdict::Reject;
                };
                if !allowed(from) {
                    return Verdict::Reject;
                }
                Verdict::Latched(Some(reason))
            }
        };
        if let Verdict::Latched(_) = verdict {
            self.addr = Some(from);
            self.open = false;
        }
        self.last_seen = Some(now);
        verdict
    }

    /// Lets the next acceptable source take over (the stream was renegotiated). The current
    /// source stays the destination until then.
    pub(crate) fn open(&mut self) {
        self.open = true;
    }

    /// Forgets the pinned source if `allowed` refuses it (the SDP arrived after a stranger
    /// latched under the no-hints fallback).
    pub(crate) fn retain(&mut self, allowed: impl FnOnce(SocketAddr) -> bool) {
        if self.addr.is_some_and(|a| !allowed(a)) {
            *self = Latch::default();
        }
    }

    /// The pinned source.
    #[inline]
    pub(crate) fn addr(&self) -> Option<SocketAddr> {
        self.addr
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests pick an arbitrary origin for virtual time
mod tests {
    use super::*;

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn rfc4961_first_source_pins_then_third_addresses_are_rejected() {
        let t = Instant::now();
        let mut l = Latch::default();
        let gap = Duration::from_secs(2);
        assert_eq!(
            l.check(t, a("198.51.100.20:61000"), gap, |_| true),
            Verdict::Latched(None)
        );
        assert_eq!(
            l.check(t, a("198.51.100.20:61000"), gap, |_| true),
            Verdict::Accept
        );
        assert_eq!(
            l.check(t, a("198.51.100.99:4000"), gap, |_| true),
            Verdict::Reject
        );
        // Silence from the pinned source lets a newcomer take over.
        let later = t + gap;
        assert_eq!(
            l.check(later, a("198.51.100.20:61002"), gap, |_| true),
            Verdict::Latched(Some(RelatchReason::Silence))
        );
        assert_eq!(l.addr(), Some(a("198.51.100.20:61002")));
        // ... but never one the policy refuses.
        let mut l2 = Latch::default();
        assert_eq!(
            l2.check(t, a("203.0.113.66:1"), gap, |_| false),
            Verdict::Reject
        );
        assert_eq!(l2.addr(), None);
    }

    #[test]
    fn known_ips_match_ipv4_mapped_sources() {
        let known = KnownIps::new([Some("198.51.100.20".parse().unwrap()), None, None]);
        assert!(known.allow(LatchPolicy::KnownIps, a("[::ffff:198.51.100.20]:5000")));
        assert!(!known.allow(LatchPolicy::KnownIps, a("198.51.100.21:5000")));
        assert!(known.allow(LatchPolicy::AnySource, a("198.51.100.21:5000")));
        assert!(KnownIps::default().allow(LatchPolicy::KnownIps, a("203.0.113.1:9")));
    }
}
