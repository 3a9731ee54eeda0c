//! Media timeouts per call and the aggregated reports of rejected sources.
//!
//! A call's timer is armed once every channel of the call knows both of its sides (its own
//! device's SDP and a partner: the answer, or early media); ringing never times out here. From
//! then on, the deadline is the last packet from the most silent remote device of the call
//! (each channel's own device) plus [`Config::media_timeout`], or, while some device has sent
//! nothing since the arming (or the last renegotiation), the arming time plus
//! [`Config::media_start_timeout`]; while any leg is on hold, [`Config::held_timeout`]
//! replaces both.
//!
//! Packets never touch the timer queue: they only store their arrival time in their channel.
//! A scheduled check is therefore a lower bound of the real deadline; when it comes due the
//! deadline is recomputed and either fires or the check moves to it. A call whose media
//! flows is looked at about once per `media_timeout`.

use std::time::{Duration, Instant};

use crate::channel::Pairing;
use crate::ids::CallRef;
use crate::relay::{Relay, RelayEvent, TimeoutKind};

#[cfg(doc)]
use crate::config::Config;

/// Timeout state of one call.
#[derive(Debug, Clone)]
pub(crate) struct CallMedia {
    /// Slots of the call's channels (one or two, a few while forking).
    pub(crate) channels: Vec<u32>,
    /// Arming time or last renegotiation: media "started" means a packet since then.
    since: Instant,
    armed: bool,
    fired: bool,
    /// The queued check, to find it in [`Relay::timers`].
    pub(crate) scheduled: Option<Instant>,
}

impl CallMedia {
    pub(crate) fn new(now: Instant) -> Self {
        Self {
            channels: Vec::with_capacity(2),
            since: now,
            armed: false,
            fired: false,
            scheduled: None,
        }
    }
}

impl Relay {
    /// When [`Relay::handle_timeout`] should be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let timer = self.timers.first().map(|&(t, _)| t);
        match (timer, self.next_reject_report) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Fires due media timeouts and rejected-source reports.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(&(at, call)) = self.timers.first() {
            if at > now {
                break;
            }
            self.timers.pop_first();
            let Some(c) = self.calls.get_mut(&call) else {
                continue;
            };
            c.scheduled = None;
            let Some((deadline, next, kind)) = self.deadline(now, call) else {
                continue;
            };
            if now >= deadline {
                if let Some(c) = self.calls.get_mut(&call) {
                    c.fired = true;
                }
                self.events
                    .push_back(RelayEvent::MediaTimeout { call, kind });
            } else {
                self.schedule(call, next);
            }
        }
        if self.next_reject_report.is_some_and(|t| t <= now) {
            self.report_rejections(now);
        }
    }

    /// Re-evaluates a call's timer after a signalling change. `renegotiated` restarts the
    /// wait for media.
    pub(crate) fn reschedule(&mut self, now: Instant, call: CallRef, renegotiated: bool) {
        let Some(c) = self.calls.get(&call) else {
            return;
        };
        let armed = !c.channels.is_empty() && c.channels.iter().all(|&i| self.ready(i as usize));
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        if renegotiated || (armed && !c.armed) {
            c.since = now;
            c.fired = false;
        }
        c.armed = armed;
        if let Some(t) = c.scheduled.take() {
            self.timers.remove(&(t, call));
        }
        if !armed || c.fired {
            return;
        }
        if let Some((_, next, _)) = self.deadline(now, call) {
            self.schedule(call, next);
        }
    }

    /// Whether a channel knows both its sides.
    fn ready(&self, index: usize) -> bool {
        let ch = &self.channels[index];
        ch.peer.is_some()
            && match ch.pairing {
                Pairing::Unpaired => false,
                Pairing::Direct(_) => true,
                Pairing::Channel(o) => self.channels[o as usize].peer.is_some(),
            }
    }

    /// The call's real deadline, the time to look again (never after the deadline can have
    /// moved to), and which timeout it is. `None` for an unarmed or unknown call.
    fn deadline(&self, now: Instant, call: CallRef) -> Option<(Instant, Instant, TimeoutKind)> {
        let c = self.calls.get(&call)?;
        if !c.armed {
            return None;
        }
        let chans = || c.channels.iter().map(|&i| &self.channels[i as usize]);
        let cfg = &self.config;
        let held = chans().any(|ch| ch.held());
        // Every remote device must be heard: the call's media is as old as its most silent
        // device (a leg whose device never sent since `since` means media has not started).
        let mut last: Option<Instant> = None;
        let mut every_device_heard = true;
        for ch in chans() {
            match ch.last_from_device.filter(|&t| t >= c.since) {
                Some(t) => last = Some(last.map_or(t, |l| l.min(t))),
                None => every_device_heard = false,
            }
        }
        let last = last.filter(|_| every_device_heard);
        let (after_start, never) = if held {
            (cfg.held_timeout, cfg.held_timeout)
        } else {
            (cfg.media_timeout, cfg.media_start_timeout)
        };
        match last {
            Some(t) => {
                let kind = if held {
                    TimeoutKind::Held
                } else {
                    TimeoutKind::Stopped
                };
                let at = later(t, after_start)?;
                Some((at, at, kind))
            }
            None => {
                let kind = if held {
                    TimeoutKind::Held
                } else {
                    TimeoutKind::NeverStarted
                };
                let at = later(c.since, never)?;
                // A first packet right now would move the deadline to now + after_start.
                let next = later(now, after_start).map_or(at, |n| n.min(at));
                Some((at, next, kind))
            }
        }
    }

    fn schedule(&mut self, call: CallRef, at: Instant) {
        if let Some(c) = self.calls.get_mut(&call) {
            c.scheduled = Some(at);
            self.timers.insert((at, call));
        }
    }

    /// Called on the per-packet path for a rejected packet: queues the channel for the next
    /// aggregated report without allocating (the queue holds one entry per channel).
    #[inline]
    pub(crate) fn queue_rejection_report(&mut self, now: Instant, index: usize) {
        let ch = &mut self.channels[index];
        if ch.reject_queued {
            return;
        }
        ch.reject_queued = true;
        self.reject_queue.push(index as u32);
        if self.next_reject_report.is_none() {
            let interval = self.config.reject_report_interval;
            let at = self
                .last_reject_report
                .and_then(|t| later(t, interval))
                .map_or(now, |t| t.max(now));
            self.next_reject_report = Some(at);
        }
    }

    fn report_rejections(&mut self, now: Instant) {
        let mut queue = std::mem::take(&mut self.reject_queue);
        for index in queue.drain(..) {
            let index = index as usize;
            let ch = &mut self.channels[index];
            ch.reject_queued = false;
            if !ch.in_use || ch.rejected_unreported == 0 {
                continue;
            }
            let packets = std::mem::take(&mut ch.rejected_unreported);
            let (call, leg, last) = (ch.call, ch.leg, ch.last_rejected);
            if let Some(last_source) = last {
                let channel = self.channel_id(index);
                self.events.push_back(RelayEvent::SourceRejected {
                    call,
                    leg,
                    channel,
                    last_source,
                    packets,
                });
            }
        }
        self.reject_queue = queue;
        self.last_reject_report = Some(now);
        self.next_reject_report = None;
    }
}

/// `t + d`, or `None` past the end of time.
fn later(t: Instant, d: Duration) -> Option<Instant> {
    t.checked_add(d)
}
