//! Call forwarding: unconditional, on busy, on no answer.
//!
//! The I/O layer resolves the called station's forwarding for each call into a [`Forwarding`]:
//! each target already checked against the class of service of that station for the zone it
//! is registered from (the station that set the forwarding answers for it, not the caller),
//! and turned into the contacts to ring. The B2BUA then:
//!
//! - **always**: rings the target's contacts instead of the callee's;
//! - **busy**: when every fork of the callee answered 486 Busy Here or 600 Busy Everywhere,
//!   rings the target instead of relaying the busy status;
//! - **no answer**: when no fork answered within `no_answer_after`, cancels the ringing forks
//!   and rings the target ([`B2bua::poll_timeout`], [`B2bua::handle_timeout`]).
//!
//! The caller keeps its one dialog and INVITE transaction: the target's contacts are new forks
//! of the same call, set up (SDP through the relay included) like the first ones. A call is
//! forwarded at most once, and the target's own forwarding is not followed, so two stations
//! forwarding to each other cannot loop. A forwarding that cannot be followed (refused by
//! class of service, target unreachable, relay full) is reported as
//! [`CallEvent::ForwardNotFollowed`] and the call goes on as if there were none.

use super::sdes::SdpRole;
use std::fmt;
use std::time::{Duration, Instant};

use policy::{CosRefusal, Zone};
use sip::{HeaderName, StatusCode};
use sip_proto::tx::TxLayer;

use super::leg::{body_of, BranchState, Target};
use super::media::{self, MediaError, MediaLeg};
use super::{better_failure, B2bua, Call, CallEvent, CallRef};

/// Which forwarding of a station.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ForwardKind {
    /// Unconditional: the station's devices do not ring.
    Always,
    /// Every device answered busy.
    Busy,
    /// Nobody answered in time.
    NoAnswer,
}

impl ForwardKind {
    /// `"always"`, `"busy"` or `"no-answer"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Always => "always",
            Self::Busy => "busy",
            Self::NoAnswer => "no-answer",
        }
    }
}

impl ForwardKind {
    /// The `reason` of a Diversion header (RFC 5806 §4): `unconditional`, `user-busy`,
    /// `no-answer`.
    fn diversion_reason(self) -> &'static str {
        match self {
            Self::Always => "unconditional",
            Self::Busy => "user-busy",
            Self::NoAnswer => "no-answer",
        }
    }
}

/// The Diversion header (RFC 5806) a forwarded INVITE carries, so the phone that rings shows
/// whose call it is taking. Only the station number and homeline's domain: no address.
pub(super) fn diversion(station: &str, domain: &str, kind: ForwardKind) -> (HeaderName, String) {
    (
        HeaderName::Other("Diversion".into()),
        format!(
            "<sip:{station}@{domain}>;reason={};counter=1",
            kind.diversion_reason()
        ),
    )
}

impl fmt::Display for ForwardKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One forwarding of the called station, as the I/O layer resolved it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Forward {
    /// Ring `targets` instead.
    To {
        /// The number forwarded to: To and Request-URI user of the new forks.
        number: String,
        /// Its contacts (a station's bindings). Empty: nothing can be rung, the forwarding is
        /// not followed ([`NotFollowed::NoContact`]).
        targets: Vec<Target>,
    },
    /// The class of service of the called station refuses the target in the zone the station
    /// is registered from: the forwarding is not followed ([`NotFollowed::ClassOfService`]).
    Refused {
        /// The zone whose class refused.
        zone: Zone,
        /// The class and rule.
        refusal: CosRefusal,
    },
}

/// The called station's forwarding for one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forwarding {
    /// Unconditional forwarding; when set, busy and no answer do not apply.
    pub always: Option<Forward>,
    /// Forwarding when every device answers busy.
    pub busy: Option<Forward>,
    /// Forwarding when nobody answers within `no_answer_after`.
    pub no_answer: Option<Forward>,
    /// How long the station's devices ring before forwarding on no answer.
    pub no_answer_after: Duration,
}

impl Default for Forwarding {
    /// No forwarding; 20 s before a no-answer forwarding once one is set.
    fn default() -> Self {
        Self {
            always: None,
            busy: None,
            no_answer: None,
            no_answer_after: Duration::from_secs(20),
        }
    }
}

/// Why a forwarding that applied was not followed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NotFollowed {
    /// The called station's class of service for `zone` refuses the target.
    ClassOfService {
        /// The zone the station is registered from.
        zone: Zone,
        /// Class and rule.
        refusal: CosRefusal,
    },
    /// The target has no contact to ring (not registered, or an outside number and no trunk).
    NoContact,
    /// The relay cannot carry the new forks.
    Media(MediaError),
}

impl fmt::Display for NotFollowed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ClassOfService { zone, refusal } => write!(f, "zone {zone}: {refusal}"),
            Self::NoContact => f.write_str("the target has no contact to ring"),
            Self::Media(e) => write!(f, "relay: {e}"),
        }
    }
}

/// What a call keeps of the callee's forwarding while it may still apply.
#[derive(Debug)]
pub(super) struct ForwardState {
    /// Calling station: the From user of the new forks.
    caller: String,
    /// The called station, whose forwarding this is.
    station: String,
    busy: Option<Forward>,
    no_answer: Option<Forward>,
    /// When the no-answer forwarding is due (also the key in `forward_timers`).
    pub(super) no_answer_at: Option<Instant>,
    /// First fork still counting: earlier ones were cancelled by the forwarding, and what they
    /// answer (487, a timeout) is not the caller's business.
    first_fork: usize,
    /// Every fork from `first_fork` that failed answered 486 or 600.
    all_busy: bool,
    /// Forwarded once already.
    used: bool,
}

impl Call {
    /// Fork `i` failed with `status`: it counts for the caller's answer and for "busy"
    /// unless a forwarding cancelled it.
    pub(super) fn fork_failed(&mut self, i: usize, status: StatusCode) {
        if let Some(f) = &mut self.forward {
            if i < f.first_fork {
                return;
            }
            if !matches!(status.as_u16(), 486 | 600) {
                f.all_busy = false;
            }
        }
        self.failure = Some(better_failure(self.failure, status));
    }
}

impl B2bua {
    /// The earliest no-answer forwarding due.
    pub(super) fn poll_forward_timeout(&self) -> Option<Instant> {
        self.forward_timers.first().map(|(at, _)| *at)
    }

    /// Forwards every call whose no-answer delay has passed without an answer: its ringing
    /// forks are cancelled and the target rings instead.
    pub(super) fn handle_forward_timeouts(&mut self, txl: &mut TxLayer, now: Instant) {
        while let Some(&(at, call_ref)) = self.forward_timers.first() {
            if at > now {
                break;
            }
            self.forward_timers.pop_first();
            let Some(call) = self.calls.get_mut(&call_ref) else {
                continue;
            };
            let Some(f) = call.forward.as_mut() else {
                continue;
            };
            f.no_answer_at = None;
            if call.winner.is_some() || call.caller.answered || f.used {
                continue;
            }
            let Some(fwd) = f.no_answer.take() else {
                continue;
            };
            self.follow(txl, now, call_ref, ForwardKind::NoAnswer, fwd);
        }
    }

    /// Unconditional forwarding, before anything rings: the targets to ring and the number
    /// they answer to. When it is followed, busy and no answer no longer apply (a call is
    /// forwarded once).
    pub(super) fn forward_always(
        &mut self,
        call: CallRef,
        callee: &str,
        targets: Result<Vec<Target>, StatusCode>,
        forwarding: &mut Forwarding,
    ) -> (Result<Vec<Target>, StatusCode>, String) {
        let kind = ForwardKind::Always;
        match forwarding.always.take() {
            None => (targets, callee.to_owned()),
            Some(Forward::Refused { zone, refusal }) => {
                self.not_followed(
                    call,
                    callee,
                    kind,
                    NotFollowed::ClassOfService { zone, refusal },
                );
                (targets, callee.to_owned())
            }
            Some(Forward::To { targets: t, .. }) if t.is_empty() => {
                self.not_followed(call, callee, kind, NotFollowed::NoContact);
                (targets, callee.to_owned())
            }
            Some(Forward::To { number, targets: t }) => {
                forwarding.busy = None;
                forwarding.no_answer = None;
                self.events.push_back(CallEvent::Forwarded {
                    call,
                    kind,
                    forks: t.len(),
                });
                (Ok(t), number)
            }
        }
    }

    /// Keeps the busy and no-answer forwarding of a call that now rings, and arms its timer.
    pub(super) fn arm_forwarding(
        &mut self,
        now: Instant,
        call_ref: CallRef,
        caller: &str,
        station: &str,
        forwarding: Forwarding,
    ) {
        if forwarding.busy.is_none() && forwarding.no_answer.is_none() {
            return;
        }
        let Some(call) = self.calls.get_mut(&call_ref) else {
            return;
        };
        let no_answer_at = forwarding
            .no_answer
            .as_ref()
            .map(|_| now + forwarding.no_answer_after);
        if let Some(at) = no_answer_at {
            self.forward_timers.insert((at, call_ref));
        }
        call.forward = Some(ForwardState {
            caller: caller.to_owned(),
            station: station.to_owned(),
            busy: forwarding.busy,
            no_answer: forwarding.no_answer,
            no_answer_at,
            first_fork: 0,
            all_busy: true,
            used: false,
        });
    }

    /// Every fork failed: when all said busy and the callee forwards on busy, the target rings
    /// instead. Returns true when it does (the caller hears nothing yet).
    pub(super) fn forward_on_busy(
        &mut self,
        txl: &mut TxLayer,
        now: Instant,
        call_ref: CallRef,
    ) -> bool {
        let Some(f) = self
            .calls
            .get_mut(&call_ref)
            .and_then(|c| c.forward.as_mut())
        else {
            return false;
        };
        if f.used || !f.all_busy {
            return false;
        }
        let Some(fwd) = f.busy.take() else {
            return false;
        };
        self.follow(txl, now, call_ref, ForwardKind::Busy, fwd)
    }

    /// Rings `fwd`'s target as new forks of `call_ref`; for no answer, the forks still
    /// ringing are cancelled first. Returns false (and says why) when it cannot.
    fn follow(
        &mut self,
        txl: &mut TxLayer,
        now: Instant,
        call_ref: CallRef,
        kind: ForwardKind,
        fwd: Forward,
    ) -> bool {
        // Out of the map while forking: the fork helper needs the B2BUA and the caller leg.
        let Some(mut call) = self.calls.remove(&call_ref) else {
            return false;
        };
        let followed = self.follow_with(txl, now, call_ref, &mut call, kind, fwd);
        self.calls.insert(call_ref, call);
        followed
    }

    fn follow_with(
        &mut self,
        txl: &mut TxLayer,
        now: Instant,
        call_ref: CallRef,
        call: &mut Call,
        kind: ForwardKind,
        fwd: Forward,
    ) -> bool {
        let Some(f) = call.forward.as_mut() else {
            return false;
        };
        let (caller, station) = (f.caller.clone(), f.station.clone());
        let (number, targets) = match fwd {
            Forward::Refused { zone, refusal } => {
                let why = NotFollowed::ClassOfService { zone, refusal };
                self.not_followed(call_ref, &station, kind, why);
                return false;
            }
            Forward::To { targets, .. } if targets.is_empty() => {
                self.not_followed(call_ref, &station, kind, NotFollowed::NoContact);
                return false;
            }
            Forward::To { number, targets } => (number, targets),
        };
        // The caller's offer goes to the new forks exactly as to the first ones: through the
        // relay when a leg crosses the Internet.
        let offer = body_of(&call.caller.invite.headers, &call.caller.invite.body);
        let caller_path = call.caller.dialog.path;
        let paths: Vec<&sip_proto::path::Path> = targets.iter().map(|t| &t.path).collect();
        let bodies = media::admit_more(
            &mut *self.relay,
            &self.config.media,
            now,
            call_ref,
            &mut call.media,
            &caller_path,
            &paths,
        )
        .and_then(|()| {
            targets
                .iter()
                .map(|t| {
                    media::pass(
                        &mut *self.relay,
                        &self.config.media,
                        now,
                        call_ref,
                        &mut call.media,
                        MediaLeg::Caller,
                        &caller_path,
                        &t.path,
                        offer.clone(),
                        false,
                        SdpRole::Offer,
                    )
                })
                .collect::<Result<Vec<_>, _>>()
        });
        let bodies = match bodies {
            Ok(b) => b,
            Err(e) => {
                self.not_followed(call_ref, &station, kind, NotFollowed::Media(e));
                return false;
            }
        };
        if kind == ForwardKind::NoAnswer {
            for b in call.branches.iter_mut() {
                if matches!(b.state, BranchState::Calling | BranchState::Proceeding) {
                    b.state = BranchState::Done;
                    txl.send_request(now, b.cancel(), b.dialog.path);
                }
            }
        }
        let first = call.branches.len();
        if let Some(f) = call.forward.as_mut() {
            f.used = true;
            f.first_fork = first;
            if let Some(at) = f.no_answer_at.take() {
                self.forward_timers.remove(&(at, call_ref));
            }
        }
        // What the cancelled or busy forks answered is not what the caller will hear.
        call.failure = None;
        let forks = targets.len();
        let mut extra = call.ext.callee_invite_headers();
        extra.push(diversion(&station, &self.config.domain, kind));
        let branches = self.fork(
            txl,
            now,
            call_ref,
            &call.caller,
            (&caller, &number),
            first,
            targets.into_iter().zip(bodies),
            &extra,
        );
        call.branches.extend(branches);
        self.events.push_back(CallEvent::Forwarded {
            call: call_ref,
            kind,
            forks,
        });
        true
    }

    fn not_followed(&mut self, call: CallRef, station: &str, kind: ForwardKind, why: NotFollowed) {
        self.events.push_back(CallEvent::ForwardNotFollowed {
            call,
            station: station.to_owned(),
            kind,
            why,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_reasons_display() {
        assert_eq!(ForwardKind::NoAnswer.to_string(), "no-answer");
        assert_eq!(
            NotFollowed::NoContact.to_string(),
            "the target has no contact to ring"
        );
        assert_eq!(
            Forwarding::default().no_answer_after,
            Duration::from_secs(20)
        );
    }
}
