//! Session timers through the B2BUA (RFC 4028), and the core's own timers.
//!
//! homeline refreshes nothing itself: the refresher is one of the devices, its re-INVITE or
//! UPDATE is carried to the other side like any mid-call request, and each successful one
//! restarts the call's clock. When the clock runs out both sides get a BYE, so a call whose
//! device vanished does not hold a relay channel and a licence forever.

use std::time::{Duration, Instant};

use sip::{HeaderName, Method, Request, Response, StatusCode};
use sip_proto::tx::TxLayer;

use super::in_dialog::{has_option, header, Pending, ALLOW};
use super::media::MediaLeg;
use super::{B2bua, B2buaConfig, Call, CallRef, EndReason};

/// The RFC 4028 §4 floor of Min-SE.
const MIN_SE_FLOOR: u32 = 90;

/// The session timer of one call.
#[derive(Debug, Default)]
pub(super) struct SessionTimer {
    /// The caller's INVITE had `Supported: timer`.
    caller_supports: bool,
    /// Session-Expires put on the callee's INVITE.
    offered: u32,
    /// Min-SE put on the callee's INVITE.
    min_se: u32,
    /// The refresher parameter put on the callee's INVITE.
    refresher_param: Option<&'static str>,
    /// The negotiated interval, while the timer runs.
    pub(super) interval: Option<u32>,
    /// Which side refreshes.
    pub(super) refresher: Option<MediaLeg>,
    /// When the session ends unless refreshed.
    pub(super) expires: Option<Instant>,
}

/// Session-Expires: `delta-seconds *(;param)` with the refresher parameter (RFC 4028 §4).
fn parse_se(v: &str) -> Option<(u32, Option<String>)> {
    let mut parts = v.split(';');
    let delta = parts.next()?.trim().parse().ok()?;
    let refresher = parts.find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("refresher")
            .then(|| v.trim().to_ascii_lowercase())
    });
    Some((delta, refresher))
}

fn session_expires(h: &sip::Headers) -> Option<(u32, Option<String>)> {
    h.get(&HeaderName::SessionExpires).and_then(parse_se)
}

fn min_se(h: &sip::Headers) -> Option<u32> {
    header(h, "Min-SE").and_then(|v| v.split(';').next()?.trim().parse().ok())
}

/// When a session refreshed now must be given up: RFC 4028 §10 has the side that does not
/// refresh send BYE at SE − min(32, SE/3).
fn deadline(now: Instant, interval: u32) -> Instant {
    now + Duration::from_secs(u64::from(interval - (interval / 3).min(32)))
}

impl SessionTimer {
    pub(super) fn from_invite(invite: &Request, config: &B2buaConfig) -> SessionTimer {
        let caller_supports = has_option(&invite.headers, HeaderName::Supported, "timer")
            || has_option(&invite.headers, HeaderName::Require, "timer");
        let min = config
            .min_se
            .max(MIN_SE_FLOOR)
            .max(min_se(&invite.headers).unwrap_or(0));
        let asked = session_expires(&invite.headers);
        let offered = asked
            .as_ref()
            .map_or(config.session_expires, |(d, _)| *d)
            .min(config.session_expires)
            .max(min);
        let refresher_param = match asked.as_ref().and_then(|(_, r)| r.as_deref()) {
            Some("uac") => Some("uac"),
            Some("uas") => Some("uas"),
            // A caller without timers cannot refresh: the callee must (§7.4, §9).
            _ if !caller_supports => Some("uas"),
            _ => None,
        };
        SessionTimer {
            caller_supports,
            offered,
            min_se: min,
            refresher_param,
            ..SessionTimer::default()
        }
    }

    /// Session-Expires and Min-SE for the callee's INVITE (RFC 4028 §7.1).
    pub(super) fn invite_headers(&self) -> Vec<(HeaderName, String)> {
        let se = match self.refresher_param {
            Some(r) => format!("{};refresher={r}", self.offered),
            None => self.offered.to_string(),
        };
        vec![
            (HeaderName::SessionExpires, se),
            (HeaderName::Other("Min-SE".into()), self.min_se.to_string()),
        ]
    }
}

/// 422 for a caller whose Session-Expires is below our Min-SE (RFC 4028 §8.1); a caller
/// without timer support is not refused, its interval is raised instead.
pub(super) fn too_brief(req: &Request, config: &B2buaConfig, tag: &str) -> Option<Response> {
    let (asked, _) = session_expires(&req.headers)?;
    let floor = config.min_se.max(MIN_SE_FLOOR);
    let supports = has_option(&req.headers, HeaderName::Supported, "timer");
    if asked >= floor || !supports {
        return None;
    }
    let mut r = Response::for_request(req, StatusCode::new(422)?, Some(tag));
    r.reason = "Session Interval Too Small".into();
    r.headers
        .push(HeaderName::Other("Min-SE".into()), floor.to_string());
    Some(r)
}

/// Writes the session-timer headers of the caller's 2xx from the callee's, and starts the
/// call's clock. Returns when the call must next be looked at, if the timer runs.
pub(super) fn on_answer(
    call: &mut Call,
    resp: &Response,
    out: &mut Response,
    now: Instant,
) -> Option<Instant> {
    call.ext.rel.outstanding = None;
    out.headers.push(HeaderName::Allow, ALLOW);
    out.headers.push(HeaderName::Supported, "timer");
    let t = &mut call.ext.timer;
    let (interval, refresher) = match session_expires(&resp.headers) {
        Some((delta, param)) => {
            // uac: we refresh towards the callee, i.e. we carry the caller's refreshes.
            let refresher = match param.as_deref() {
                Some("uac") => MediaLeg::Caller,
                _ => MediaLeg::Callee,
            };
            if t.caller_supports {
                let param = if refresher == MediaLeg::Caller {
                    "uac"
                } else {
                    "uas"
                };
                out.headers.push(
                    HeaderName::SessionExpires,
                    format!("{delta};refresher={param}"),
                );
                out.headers.push(HeaderName::Require, "timer");
            } else if refresher == MediaLeg::Caller {
                // Nobody would refresh: no timer rather than a call cut after SE.
                return None;
            }
            (delta, refresher)
        }
        None if t.caller_supports => {
            // The callee does no timers; the caller refreshes and we carry it (§7.2).
            out.headers.push(
                HeaderName::SessionExpires,
                format!("{};refresher=uac", t.offered),
            );
            out.headers.push(HeaderName::Require, "timer");
            (t.offered, MediaLeg::Caller)
        }
        None => return None,
    };
    t.interval = Some(interval);
    t.refresher = Some(refresher);
    let at = deadline(now, interval);
    t.expires = Some(at);
    Some(at)
}

/// A refresh answered by a side without timers: the side that asked for one refreshes
/// (RFC 4028 §7.2: the UAC may use a timer the UAS did not take up).
pub(super) fn mark_refresher(out: &mut Response, request: &Request, resp: &Response) {
    if session_expires(&resp.headers).is_some() {
        return;
    }
    if let Some((delta, _)) = session_expires(&request.headers) {
        out.headers
            .push(HeaderName::SessionExpires, format!("{delta};refresher=uac"));
        out.headers.push(HeaderName::Require, "timer");
    }
}

impl B2bua {
    /// When [`B2bua::handle_timeout`] must next be called: a session timer, a reliable
    /// provisional's retransmission or a no-answer forwarding.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let own = self.ext.timers.first().map(|(at, _)| *at);
        [own, self.poll_forward_timeout()]
            .into_iter()
            .flatten()
            .min()
    }

    /// Fires what is due at `now`: forwards calls nobody answered in time, retransmits
    /// reliable provisionals and ends calls whose session expired (RFC 4028 §10) with a BYE
    /// to both sides.
    pub fn handle_timeout(&mut self, txl: &mut TxLayer, now: Instant) {
        self.handle_forward_timeouts(txl, now);
        while let Some(&(at, call_ref)) = self.ext.timers.first() {
            if at > now {
                break;
            }
            self.ext.timers.pop_first();
            self.retransmit_reliable(txl, now, call_ref);
            let expired = self
                .calls
                .get(&call_ref)
                .and_then(|c| c.ext.timer.expires)
                .is_some_and(|e| e <= now);
            if expired {
                self.expire_session(txl, now, call_ref);
            }
        }
    }

    /// A re-INVITE or UPDATE from `near` succeeded with `answer` (as sent to `near`): the
    /// session is refreshed, with the interval and refresher it names.
    pub(super) fn session_refreshed(
        &mut self,
        now: Instant,
        call_ref: CallRef,
        near: MediaLeg,
        answer: &Response,
    ) {
        let Some(call) = self.calls.get_mut(&call_ref) else {
            return;
        };
        let t = &mut call.ext.timer;
        if let Some((delta, param)) = session_expires(&answer.headers) {
            t.interval = Some(delta);
            t.refresher = Some(match param.as_deref() {
                Some("uas") => near.other(),
                _ => near,
            });
        }
        self.restart_session_timer(now, call_ref);
    }

    /// The session was refreshed now: its clock starts again, if it runs.
    pub(super) fn restart_session_timer(&mut self, now: Instant, call_ref: CallRef) {
        let Some(t) = self.calls.get_mut(&call_ref).map(|c| &mut c.ext.timer) else {
            return;
        };
        if let Some(interval) = t.interval {
            let at = deadline(now, interval);
            t.expires = Some(at);
            self.ext.timers.insert((at, call_ref));
        }
    }

    /// A 422 from callee fork `i` (RFC 4028 §7.4): the INVITE is sent again with the fork's
    /// Min-SE. Returns false when there is nothing to retry with.
    pub(super) fn retry_after_422(
        &mut self,
        txl: &mut TxLayer,
        now: Instant,
        call_ref: CallRef,
        i: usize,
        resp: &Response,
    ) -> bool {
        let Some(call) = self.calls.get_mut(&call_ref) else {
            return false;
        };
        let Some(wanted) = min_se(&resp.headers) else {
            return false;
        };
        let branch = &mut call.branches[i];
        let current = session_expires(&branch.invite.headers).map_or(0, |(d, _)| d);
        if wanted <= current || wanted > 86_400 {
            return false;
        }
        let t = &mut call.ext.timer;
        t.offered = t.offered.max(wanted);
        t.min_se = t.min_se.max(wanted);
        let mut invite = branch.invite.clone();
        for (name, value) in t.invite_headers() {
            invite.headers.set(name, value);
        }
        branch.dialog.local_cseq += 1;
        branch.dialog.remote_tag = None;
        let via_branch = txl.new_branch();
        invite.headers.set(
            HeaderName::Via,
            super::leg::via(&branch.dialog.path, branch.dialog.advertised, &via_branch),
        );
        invite.headers.set(
            HeaderName::CSeq,
            format!("{} {}", branch.dialog.local_cseq, Method::Invite),
        );
        let old = branch.invite_tx;
        branch.invite_tx = txl.send_request(now, invite.clone(), branch.dialog.path);
        branch.invite = invite;
        let new = branch.invite_tx;
        self.by_tx.remove(&old);
        self.by_tx.insert(new, (call_ref, super::Side::Callee(i)));
        true
    }

    /// The session ran out without a refresh: BYE with a Reason to both sides.
    fn expire_session(&mut self, txl: &mut TxLayer, now: Instant, call_ref: CallRef) {
        self.abort_transfer(txl, now, call_ref);
        let Some(call) = self.calls.get_mut(&call_ref) else {
            return;
        };
        for leg in [MediaLeg::Caller, MediaLeg::Callee] {
            if let Some(dialog) = call.dialog_mut(leg) {
                let branch = txl.new_branch();
                let mut bye = dialog.request(Method::Bye, &branch, None);
                bye.headers.push(
                    HeaderName::Other("Reason".into()),
                    "SIP;cause=408;text=\"session timer expired\"",
                );
                let btx = txl.send_request(now, bye, dialog.path);
                self.ext.pending.insert(btx, Pending::Ignore);
            }
        }
        self.end(now, call_ref, EndReason::SessionExpired);
    }
}
