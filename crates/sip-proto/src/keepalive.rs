//! Server-side keepalives for external-zone bindings, sans-IO.
//!
//! A phone at home is reachable only while its home router keeps the NAT mapping its
//! REGISTER created; home routers drop idle UDP mappings after 30–180 s, long before a
//! registration expires. So homeline probes every external binding on its own schedule: over
//! UDP an OPTIONS request (RFC 3261 §11), whose answer — any answer — proves the phone is
//! still there and refreshes the mapping; over TCP/TLS a CRLF CRLF ping (RFC 5626 §4.4.1),
//! since a broken connection is already noticed by the flow itself. A binding whose probes go
//! unanswered `misses` times in a row is declared dead, so calls stop ringing a phone that is
//! gone. Anything the phone sends in between (a re-REGISTER, a call) counts as a sign of life.
//!
//! The core hands out [`Probe`]s; the driver sends them (an OPTIONS through the transaction
//! layer, or the CRLF ping on the flow) and reports back with [`KeepAlive::answered`] or
//! [`KeepAlive::unanswered`].

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::path::{Path, Transport};
use crate::registrar::Aor;

/// Keepalive settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeepAliveConfig {
    /// Probe interval over UDP. Default 25 s: below the shortest common home-router UDP
    /// timeout (30 s).
    pub udp_interval: Duration,
    /// Ping interval over TCP/TLS. Default 90 s (RFC 5626 §4.4.1 suggests 95–120 s for
    /// connection-oriented flows; NAT TCP timeouts are much longer than UDP's).
    pub stream_interval: Duration,
    /// Unanswered probes in a row before a binding is declared dead. Default 3.
    pub misses: u32,
}

impl Default for KeepAliveConfig {
    fn default() -> Self {
        KeepAliveConfig {
            udp_interval: Duration::from_secs(25),
            stream_interval: Duration::from_secs(90),
            misses: 3,
        }
    }
}

/// Identifies one binding: its AOR and [`crate::registrar::Binding::key`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BindingRef {
    /// The station.
    pub aor: Aor,
    /// The binding's key within the AOR.
    pub key: String,
}

/// What to send now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// The binding probed.
    pub binding: BindingRef,
    /// Where it is reached.
    pub path: Path,
    /// How: an OPTIONS request (UDP) or a CRLF CRLF ping (stream).
    pub kind: ProbeKind,
    /// Which probe of the binding this is: hand it back to [`KeepAlive::unanswered`].
    pub seq: u64,
}

/// How a binding is probed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeKind {
    /// OPTIONS, answered by any response.
    Options,
    /// CRLF CRLF on the connection (keeps NAT state; the flow reports breakage itself).
    Ping,
}

/// What the keepalive core found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeepAliveEvent {
    /// `misses` probes in a row went unanswered: remove the binding.
    Dead(BindingRef),
}

/// Health of one binding, for status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    /// When the phone was last heard from (REGISTER, request, or probe answer).
    pub last_seen: Instant,
    /// Probes unanswered in a row.
    pub misses: u32,
    /// When the next probe goes out.
    pub next_probe: Instant,
}

#[derive(Debug)]
struct Entry {
    path: Path,
    health: Health,
    /// The probe that is out and not answered yet.
    outstanding: Option<u64>,
}

/// The keepalive core: one schedule per tracked binding.
#[derive(Debug)]
pub struct KeepAlive {
    config: KeepAliveConfig,
    entries: HashMap<BindingRef, Entry>,
    timers: BTreeSet<(Instant, BindingRef)>,
    probes: VecDeque<Probe>,
    events: VecDeque<KeepAliveEvent>,
    seq: u64,
}

impl KeepAlive {
    /// An empty schedule.
    pub fn new(config: KeepAliveConfig) -> KeepAlive {
        KeepAlive {
            config,
            entries: HashMap::new(),
            timers: BTreeSet::new(),
            probes: VecDeque::new(),
            events: VecDeque::new(),
            seq: 0,
        }
    }

    fn interval(&self, path: &Path) -> Duration {
        match path.transport {
            Transport::Udp => self.config.udp_interval,
            _ => self.config.stream_interval,
        }
    }

    /// Starts (or restarts) probing a binding reached over `path`; the phone was heard now.
    pub fn track(&mut self, now: Instant, binding: BindingRef, path: Path) {
        self.untrack(&binding);
        let next = now + self.interval(&path);
        self.timers.insert((next, binding.clone()));
        self.entries.insert(
            binding,
            Entry {
                path,
                health: Health {
                    last_seen: now,
                    misses: 0,
                    next_probe: next,
                },
                outstanding: None,
            },
        );
    }

    /// Stops probing a binding (removed, expired, or no longer external).
    pub fn untrack(&mut self, binding: &BindingRef) {
        if let Some(e) = self.entries.remove(binding) {
            self.timers.remove(&(e.health.next_probe, binding.clone()));
        }
    }

    /// The phone answered a probe, even a late one (or sent anything): alive, misses cleared.
    pub fn answered(&mut self, now: Instant, binding: &BindingRef) {
        if let Some(e) = self.entries.get_mut(binding) {
            e.health.last_seen = now;
            e.health.misses = 0;
            e.outstanding = None;
        }
    }

    /// Probe `seq` failed (the send failed, or its transaction timed out before the next
    /// probe was due).
    pub fn unanswered(&mut self, binding: &BindingRef, seq: u64) {
        let Some(e) = self.entries.get_mut(binding) else {
            return;
        };
        if e.outstanding != Some(seq) {
            return;
        }
        e.outstanding = None;
        self.miss(binding);
    }

    /// Probe `seq` went out as something no phone answers (the driver could not send an
    /// OPTIONS and sent a CRLF ping instead, to keep the NAT mapping open): neither a miss nor
    /// a sign of life.
    pub fn sent_unanswerable(&mut self, binding: &BindingRef, seq: u64) {
        if let Some(e) = self.entries.get_mut(binding) {
            if e.outstanding == Some(seq) {
                e.outstanding = None;
            }
        }
    }

    fn miss(&mut self, binding: &BindingRef) {
        let Some(e) = self.entries.get_mut(binding) else {
            return;
        };
        e.health.misses += 1;
        if e.health.misses >= self.config.misses {
            self.untrack(binding);
            self.events.push_back(KeepAliveEvent::Dead(binding.clone()));
        }
    }

    /// Sends the probes that are due.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some((at, b)) = self.timers.first().cloned() {
            if at > now {
                break;
            }
            self.timers.pop_first();
            let interval = match self.entries.get(&b) {
                Some(e) => self.interval(&e.path),
                None => continue,
            };
            let Some(e) = self.entries.get_mut(&b) else {
                continue;
            };
            let kind = match e.path.transport {
                Transport::Udp => ProbeKind::Options,
                _ => ProbeKind::Ping,
            };
            // A probe still unanswered when the next is due is a miss: the phone had a whole
            // interval (longer than any round trip) to answer.
            let missed = e.outstanding.take().is_some();
            self.seq += 1;
            let seq = self.seq;
            if kind == ProbeKind::Options {
                e.outstanding = Some(seq);
            }
            e.health.next_probe = now + interval;
            self.timers.insert((e.health.next_probe, b.clone()));
            self.probes.push_back(Probe {
                binding: b.clone(),
                path: e.path,
                kind,
                seq,
            });
            if missed {
                self.miss(&b);
            }
        }
    }

    /// When [`KeepAlive::handle_timeout`] is due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.first().map(|(t, _)| *t)
    }

    /// The next probe to send.
    pub fn poll_probe(&mut self) -> Option<Probe> {
        self.probes.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<KeepAliveEvent> {
        self.events.pop_front()
    }

    /// Health of a binding, when tracked.
    pub fn health(&self, binding: &BindingRef) -> Option<&Health> {
        self.entries.get(binding).map(|e| &e.health)
    }

    /// Bindings tracked.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing is tracked.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods, clippy::unwrap_used)]
mod tests {
    use super::*;
    use policy::Zone;

    fn path(t: Transport) -> Path {
        Path {
            local: "192.168.1.10:5062".parse().unwrap(),
            remote: "198.51.100.20:40000".parse().unwrap(),
            transport: t,
            zone: Zone::External,
            flow: None,
        }
    }

    fn b(n: &str) -> BindingRef {
        BindingRef {
            aor: Aor(n.into()),
            key: format!("<sip:{n}@10.0.0.20>"),
        }
    }

    #[test]
    fn rfc3261_11_udp_bindings_get_options_every_interval_and_answers_keep_them() {
        let t0 = Instant::now();
        let mut k = KeepAlive::new(KeepAliveConfig::default());
        k.track(t0, b("2001"), path(Transport::Udp));
        assert_eq!(k.poll_timeout(), Some(t0 + Duration::from_secs(25)));
        k.handle_timeout(t0 + Duration::from_secs(24));
        assert!(k.poll_probe().is_none());
        for round in 1..=5u64 {
            let t = t0 + Duration::from_secs(25 * round);
            k.handle_timeout(t);
            let p = k.poll_probe().unwrap();
            assert_eq!(p.kind, ProbeKind::Options);
            k.answered(t + Duration::from_millis(30), &b("2001"));
        }
        assert!(k.poll_event().is_none());
        assert_eq!(k.health(&b("2001")).unwrap().misses, 0);
    }

    #[test]
    fn a_binding_is_dead_after_the_configured_misses_in_a_row() {
        let t0 = Instant::now();
        let mut k = KeepAlive::new(KeepAliveConfig::default());
        k.track(t0, b("2001"), path(Transport::Udp));
        for round in 1..=3u64 {
            k.handle_timeout(t0 + Duration::from_secs(25 * round));
            let p = k.poll_probe().unwrap();
            assert!(k.poll_event().is_none(), "not dead before the third miss");
            k.unanswered(&b("2001"), p.seq);
        }
        assert_eq!(k.poll_event(), Some(KeepAliveEvent::Dead(b("2001"))));
        assert!(k.is_empty() && k.poll_timeout().is_none());
    }

    #[test]
    fn an_answer_between_misses_resets_the_count() {
        let t0 = Instant::now();
        let mut k = KeepAlive::new(KeepAliveConfig::default());
        k.track(t0, b("2001"), path(Transport::Udp));
        for round in 1..=6u64 {
            let t = t0 + Duration::from_secs(25 * round);
            k.handle_timeout(t);
            let p = k.poll_probe().unwrap();
            if round % 2 == 0 {
                k.answered(t, &b("2001"));
            } else {
                k.unanswered(&b("2001"), p.seq);
            }
        }
        assert!(k.poll_event().is_none());
    }

    #[test]
    fn a_probe_still_unanswered_at_the_next_one_is_a_miss_and_late_timeouts_are_ignored() {
        let t0 = Instant::now();
        let mut k = KeepAlive::new(KeepAliveConfig {
            udp_interval: Duration::from_secs(2),
            misses: 2,
            ..KeepAliveConfig::default()
        });
        k.track(t0, b("2001"), path(Transport::Udp));
        k.handle_timeout(t0 + Duration::from_secs(2));
        let first = k.poll_probe().unwrap();
        k.handle_timeout(t0 + Duration::from_secs(4));
        let second = k.poll_probe().unwrap();
        assert_eq!(k.health(&b("2001")).unwrap().misses, 1);
        // The first OPTIONS' Timer F fires much later: it is not counted twice.
        k.unanswered(&b("2001"), first.seq);
        assert_eq!(k.health(&b("2001")).unwrap().misses, 1);
        k.unanswered(&b("2001"), second.seq);
        assert_eq!(k.poll_event(), Some(KeepAliveEvent::Dead(b("2001"))));
    }

    #[test]
    fn probes_sent_as_unanswerable_pings_are_never_misses() {
        let t0 = Instant::now();
        let mut k = KeepAlive::new(KeepAliveConfig::default());
        k.track(t0, b("2001"), path(Transport::Udp));
        for round in 1..=5u64 {
            k.handle_timeout(t0 + Duration::from_secs(25 * round));
            let p = k.poll_probe().unwrap();
            k.sent_unanswerable(&b("2001"), p.seq);
        }
        assert!(k.poll_event().is_none());
        let h = k.health(&b("2001")).unwrap();
        assert_eq!((h.misses, h.last_seen), (0, t0));
    }

    #[test]
    fn rfc5626_4_4_1_stream_bindings_get_crlf_pings_and_untrack_stops_them() {
        let t0 = Instant::now();
        let mut k = KeepAlive::new(KeepAliveConfig::default());
        k.track(t0, b("2002"), path(Transport::Tcp));
        k.handle_timeout(t0 + Duration::from_secs(90));
        assert_eq!(k.poll_probe().unwrap().kind, ProbeKind::Ping);
        k.untrack(&b("2002"));
        k.handle_timeout(t0 + Duration::from_secs(500));
        assert!(k.poll_probe().is_none());
        assert!(k.is_empty());
    }

    #[test]
    fn re_registration_restarts_the_schedule() {
        let t0 = Instant::now();
        let mut k = KeepAlive::new(KeepAliveConfig::default());
        k.track(t0, b("2001"), path(Transport::Udp));
        k.track(
            t0 + Duration::from_secs(20),
            b("2001"),
            path(Transport::Udp),
        );
        assert_eq!(k.len(), 1);
        k.handle_timeout(t0 + Duration::from_secs(26));
        assert!(k.poll_probe().is_none(), "schedule moved by the refresh");
        k.handle_timeout(t0 + Duration::from_secs(45));
        assert!(k.poll_probe().is_some());
    }
}
