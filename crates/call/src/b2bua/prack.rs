//! Reliable provisional responses through the B2BUA (RFC 3262).
//!
//! Each side keeps its own RSeq space, so a reliable 18x from the callee reaches a caller that
//! announced 100rel as our own reliable 18x, and the caller's PRACK is carried to the callee
//! with the RAck mapped back; the caller's PRACK is answered with the callee's answer. A caller
//! that did not announce 100rel gets the 18x unreliably and we acknowledge the callee ourselves.

use super::sdes::SdpRole;
use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::Rng;
use sip::{HeaderAccess, HeaderName, Method, Request, Response, StatusCode};
use sip_proto::tx::{TxId, TxLayer};

use super::in_dialog::{has_option, header, Pending};
use super::leg::body_of;
use super::media::{self, MediaLeg};
use super::{with, B2bua, CallRef, Side};

/// RFC 3261 T1: the first retransmission interval of a reliable provisional (RFC 3262 §3).
const T1: Duration = Duration::from_millis(500);

/// The 100rel state of one call.
#[derive(Debug, Default)]
pub(super) struct Rel {
    /// The caller's INVITE had 100rel in Supported or Require.
    pub(super) caller_supports: bool,
    /// ... in Require: every provisional it gets must be reliable.
    caller_requires: bool,
    /// The last RSeq we used towards the caller; 0 before the first.
    rseq: u32,
    /// Our reliable provisional still waiting for the caller's PRACK.
    pub(super) outstanding: Option<Outstanding>,
    /// The highest RSeq seen from each callee fork; lower or equal ones are retransmissions.
    seen: HashMap<usize, u32>,
    /// A reliable provisional carrying SDP reached the caller: on an offerless INVITE that
    /// was the offer, answered in the PRACK, so a 2xx body is no new offer (RFC 3262 §5).
    pub(super) early_offer: bool,
}

/// A reliable provisional response sent to the caller and not yet acknowledged.
#[derive(Debug, Clone)]
pub(super) struct Outstanding {
    rseq: u32,
    response: Response,
    pub(super) next: Instant,
    interval: Duration,
    give_up: Instant,
    /// The callee's reliable 18x it carries: fork, its RSeq, its INVITE's CSeq number.
    upstream: Option<(usize, u32, u32)>,
}

impl Rel {
    pub(super) fn from_invite(invite: &Request) -> Rel {
        let requires = has_option(&invite.headers, HeaderName::Require, "100rel");
        Rel {
            caller_supports: requires
                || has_option(&invite.headers, HeaderName::Supported, "100rel"),
            caller_requires: requires,
            ..Rel::default()
        }
    }
}

/// RAck: `response-num CSeq-num Method` (RFC 3262 §7.2).
fn parse_rack(v: &str) -> Option<(u32, u32, Method)> {
    let mut it = v.split_whitespace();
    let rseq = it.next()?.parse().ok()?;
    let cseq = it.next()?.parse().ok()?;
    let method = Method::from_token(it.next()?);
    Some((rseq, cseq, method))
}

impl B2bua {
    /// A provisional response (not 100) from callee fork `i`, its body already passed through
    /// the relay. Returns true (the response is ours).
    pub(super) fn relay_provisional(
        &mut self,
        txl: &mut TxLayer,
        now: Instant,
        call_ref: CallRef,
        i: usize,
        resp: &Response,
        body: Option<(String, Bytes)>,
    ) -> bool {
        let Some(call) = self.calls.get_mut(&call_ref) else {
            return true;
        };
        let to_caller = !call.caller.answered && call.winner.is_none();
        let reliable = has_option(&resp.headers, HeaderName::Require, "100rel");
        let rseq = header(&resp.headers, "RSeq").and_then(|v| v.trim().parse::<u32>().ok());
        let mut upstream = None;
        if let (true, Some(rs)) = (reliable, rseq) {
            if call.ext.rel.seen.get(&i).is_some_and(|&last| rs <= last) {
                // A retransmission: its PRACK is on its way (or the caller's is awaited).
                return true;
            }
            call.ext.rel.seen.insert(i, rs);
            let cseq = call.branches[i].invite.cseq().map(|c| c.seq).unwrap_or(1);
            if to_caller && call.ext.rel.caller_supports && call.ext.rel.outstanding.is_none() {
                upstream = Some((i, rs, cseq));
            } else {
                // Nobody behind us will PRACK this one: we do, or the callee stops ringing.
                let dialog = &mut call.branches[i].dialog;
                let branch = txl.new_branch();
                let mut prack = dialog.request(Method::Prack, &branch, None);
                prack.headers.push(
                    HeaderName::Other("RAck".into()),
                    format!("{rs} {cseq} INVITE"),
                );
                let ptx = txl.send_request(now, prack, dialog.path);
                self.ext.pending.insert(
                    ptx,
                    Pending::Prack {
                        call: call_ref,
                        server: None,
                    },
                );
            }
        }
        if !to_caller {
            return true;
        }
        let mut r = call.caller.response(resp.status, with(&body));
        r.reason = resp.reason.clone();
        if body.is_some() && (upstream.is_some() || call.ext.rel.caller_requires) {
            call.ext.rel.early_offer = true;
        }
        if upstream.is_none() && !call.ext.rel.caller_requires {
            txl.respond(now, call.caller.invite_tx, r);
            return true;
        }
        if call.ext.rel.outstanding.is_some() {
            // §3: one reliable provisional at a time; this unreliable one may be lost anyway.
            return true;
        }
        if call.ext.rel.rseq == 0 {
            call.ext.rel.rseq = self.rng.gen_range(1..1u32 << 30);
        } else {
            call.ext.rel.rseq += 1;
        }
        let rseq = call.ext.rel.rseq;
        r.headers.push(HeaderName::Require, "100rel");
        r.headers
            .push(HeaderName::Other("RSeq".into()), rseq.to_string());
        txl.respond(now, call.caller.invite_tx, r.clone());
        let next = now + T1;
        call.ext.rel.outstanding = Some(Outstanding {
            rseq,
            response: r,
            next,
            interval: T1,
            give_up: now + 64 * T1,
            upstream,
        });
        self.ext.timers.insert((next, call_ref));
        true
    }

    /// Retransmits the caller's reliable provisional when due (RFC 3262 §3: from T1, doubling,
    /// for 64·T1).
    pub(super) fn retransmit_reliable(
        &mut self,
        txl: &mut TxLayer,
        now: Instant,
        call_ref: CallRef,
    ) {
        let Some(call) = self.calls.get_mut(&call_ref) else {
            return;
        };
        let invite_tx = call.caller.invite_tx;
        let answered = call.caller.answered;
        let Some(out) = call.ext.rel.outstanding.as_mut() else {
            return;
        };
        if out.next > now {
            return;
        }
        if answered || now >= out.give_up {
            // Never acknowledged: the caller hears the final response in due course.
            call.ext.rel.outstanding = None;
            return;
        }
        txl.respond(now, invite_tx, out.response.clone());
        out.interval *= 2;
        out.next = now + out.interval;
        self.ext.timers.insert((out.next, call_ref));
    }

    /// The caller's PRACK: answered at once when the provisional was ours, else carried to
    /// the callee with the callee's RSeq and answered with the callee's answer.
    pub(super) fn handle_prack(
        &mut self,
        txl: &mut TxLayer,
        now: Instant,
        tx: TxId,
        req: &Request,
        call_ref: CallRef,
        side: Side,
    ) {
        let Some(call) = self.calls.get_mut(&call_ref) else {
            return;
        };
        let tag = call.tag_of(side);
        let invite_cseq = call.caller.invite.cseq().map(|c| c.seq);
        let rack = header(&req.headers, "RAck").and_then(parse_rack);
        let matches = side == Side::Caller
            && match (&call.ext.rel.outstanding, rack) {
                (Some(o), Some((rseq, cseq, m))) => {
                    o.rseq == rseq && Some(cseq) == invite_cseq && m == Method::Invite
                }
                _ => false,
            };
        if !matches {
            // §3: a PRACK that matches no unacknowledged reliable provisional.
            txl.respond(
                now,
                tx,
                Response::for_request(req, StatusCode::CALL_DOES_NOT_EXIST, Some(&tag)),
            );
            return;
        }
        let Some(out) = call.ext.rel.outstanding.take() else {
            return;
        };
        let Some((fork, their_rseq, their_cseq)) = out.upstream else {
            txl.respond(
                now,
                tx,
                Response::for_request(req, StatusCode::OK, Some(&tag)),
            );
            return;
        };
        let caller_path = call.caller.dialog.path;
        let fork_path = call.branches[fork].dialog.path;
        let body = media::pass(
            &mut *self.relay,
            &self.config.media,
            now,
            call_ref,
            &mut call.media,
            MediaLeg::Caller,
            &caller_path,
            &fork_path,
            body_of(&req.headers, &req.body),
            false,
            SdpRole::Answer,
        )
        .unwrap_or(None);
        let dialog = &mut call.branches[fork].dialog;
        let branch = txl.new_branch();
        let mut prack = dialog.request(Method::Prack, &branch, with(&body));
        prack.headers.push(
            HeaderName::Other("RAck".into()),
            format!("{their_rseq} {their_cseq} INVITE"),
        );
        let ptx = txl.send_request(now, prack, fork_path);
        self.ext.pending.insert(
            ptx,
            Pending::Prack {
                call: call_ref,
                server: Some((tx, req.clone())),
            },
        );
    }

    /// The callee's answer to a PRACK we sent; the caller's PRACK, if it stands behind it, gets
    /// the same status.
    pub(super) fn prack_response(
        &mut self,
        txl: &mut TxLayer,
        now: Instant,
        tx: TxId,
        call_ref: CallRef,
        server: Option<(TxId, Request)>,
        resp: Response,
    ) {
        if resp.status.is_provisional() {
            self.ext.pending.insert(
                tx,
                Pending::Prack {
                    call: call_ref,
                    server,
                },
            );
            return;
        }
        let Some((stx, req)) = server else {
            return;
        };
        let Some(call) = self.calls.get_mut(&call_ref) else {
            txl.respond(
                now,
                stx,
                Response::for_request(&req, StatusCode::CALL_DOES_NOT_EXIST, None),
            );
            return;
        };
        let caller_path = call.caller.dialog.path;
        let from_path = call
            .branches
            .iter()
            .find(|b| Some(b.dialog.call_id.as_str()) == resp.call_id())
            .map(|b| b.dialog.path)
            .unwrap_or(caller_path);
        let body = media::pass(
            &mut *self.relay,
            &self.config.media,
            now,
            call_ref,
            &mut call.media,
            MediaLeg::Callee,
            &from_path,
            &caller_path,
            body_of(&resp.headers, &resp.body),
            false,
            SdpRole::Answer,
        )
        .unwrap_or(None);
        let mut out = Response::for_request(&req, resp.status, Some(&call.caller.dialog.local_tag));
        out.reason = resp.reason.clone();
        if let Some((ct, b)) = body {
            out = out.with_body(&ct, b);
        }
        txl.respond(now, stx, out);
    }
}
