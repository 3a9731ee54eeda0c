//! Blind transfer (RFC 3515 REFER, without Replaces); attended transfer ([`super::attended`])
//! shares its second half.
//!
//! The referrer's REFER is accepted (202) and followed by NOTIFYs in its dialog (RFC 3515
//! §2.4.4, sipfrag bodies); the I/O driver looks the target up and applies class of service
//! ([`CallEvent::TransferRequested`] → [`B2bua::handle_transfer_targets`]). The target is
//! called without an offer; its 2xx offer goes to the transferee in a re-INVITE and the
//! transferee's answer comes back in our ACK to the target. Only then does the target's dialog
//! take the referrer's place, the referrer hears 200 and gets a BYE. A failure leaves the call
//! as it was and tells the referrer why.

use super::sdes::SdpRole;
use std::time::Instant;

use bytes::Bytes;
use sip::header::NameAddr;
use sip::{HeaderAccess, HeaderName, Method, Request, Response, StatusCode, Uri};
use sip_proto::tx::{TxId, TxLayer};

use super::attended::{Consult, Replaces};
use super::in_dialog::{ack_for, request_pending, Pending, ALLOW};
use super::leg::{body_of, remote_target, BranchState, CalleeBranch, Dialog};
use super::media::{self, MediaLeg};
use super::sdes::LegSdes;
use super::{better_failure, warning, with, B2bua, CallEvent, CallRef, EndReason, Side, Target};

/// A transfer in progress.
#[derive(Debug)]
pub(super) struct Transfer {
    /// The side that sent REFER and leaves the call.
    referrer: MediaLeg,
    /// The referrer hung up after the 202, as phones do: no NOTIFY or BYE is owed to it.
    referrer_gone: bool,
    /// The number dialled (the target's station for an attended transfer).
    target: String,
    /// INVITEs to the target's contacts; for an attended transfer, the one re-INVITE in the
    /// consultation call's dialog with the target.
    pub(super) forks: Vec<CalleeBranch>,
    pub(super) stage: Stage,
    failure: Option<StatusCode>,
    /// A relay channel was taken for the referrer's leg: the target is external, or its
    /// media is SRTP, which only the relay can translate.
    pub(super) allocated: bool,
    /// The target's station requires payload security (SRTP over TLS).
    secure: bool,
    /// The referrer's SRTP state, put back if the transfer fails after the target answered:
    /// the target's leg starts with a state (and a key of homeline's) of its own.
    referrer_sdes: Option<LegSdes>,
    /// Attended transfer: the consultation call whose target dialog is taken over.
    pub(super) consult: Option<Consult>,
    /// The target had answered and was hung up when the transfer failed.
    target_hung_up: bool,
}

impl Transfer {
    /// A transfer by `referrer` to `target`, nothing sent yet.
    pub(super) fn new(referrer: MediaLeg, target: String) -> Transfer {
        Transfer {
            referrer,
            referrer_gone: false,
            target,
            forks: Vec::new(),
            stage: Stage::Lookup,
            failure: None,
            allocated: false,
            secure: false,
            referrer_sdes: None,
            consult: None,
            target_hung_up: false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stage {
    /// Waiting for the driver's target lookup.
    Lookup,
    /// The target's contacts are ringing.
    Ringing,
    /// Fork `fork` answered; the transferee's re-INVITE is out. `cseq` is the fork's INVITE.
    Connecting { fork: usize, cseq: u32 },
}

/// A NOTIFY for the implicit refer subscription (RFC 3515 §2.4.4) with a sipfrag status line.
pub(super) fn notify(
    txl: &mut TxLayer,
    now: Instant,
    dialog: &mut Dialog,
    status: StatusCode,
    reason: &str,
    terminated: bool,
) -> TxId {
    let branch = txl.new_branch();
    let frag = format!(
        "SIP/2.0 {} {}\r\n",
        status.as_u16(),
        reason.replace(['\r', '\n'], " ")
    );
    let mut n = dialog.request(
        Method::Notify,
        &branch,
        Some(("message/sipfrag;version=2.0", Bytes::from(frag))),
    );
    n.headers.push(HeaderName::Event, "refer");
    n.headers.push(
        HeaderName::Other("Subscription-State".into()),
        if terminated {
            "terminated;reason=noresource"
        } else {
            "active;expires=60"
        },
    );
    txl.send_request(now, n, dialog.path)
}

/// A BYE in `dialog`, whose answer changes nothing.
pub(super) fn send_bye(
    txl: &mut TxLayer,
    now: Instant,
    dialog: &mut Dialog,
    pending: &mut std::collections::HashMap<TxId, Pending>,
) {
    let branch = txl.new_branch();
    let bye = dialog.request(Method::Bye, &branch, None);
    let btx = txl.send_request(now, bye, dialog.path);
    pending.insert(btx, Pending::Ignore);
}

/// Accepts a REFER (RFC 3515 §2.4.2: 202 with our Contact) and opens its implicit
/// subscription with NOTIFY 100 Trying (§2.4.4); `ok` is the 202 to send.
pub(super) fn accept_refer(
    txl: &mut TxLayer,
    now: Instant,
    tx: TxId,
    mut ok: Response,
    dialog: &mut Dialog,
    pending: &mut std::collections::HashMap<TxId, Pending>,
) {
    ok.headers.push(HeaderName::Contact, dialog.contact());
    txl.respond(now, tx, ok);
    let ntx = notify(txl, now, dialog, StatusCode::TRYING, "Trying", false);
    pending.insert(ntx, Pending::Ignore);
}

/// The number a Refer-To URI names.
fn refer_number(uri: &Uri) -> Option<String> {
    match uri {
        Uri::Sip(u) => u
            .user_unescaped()
            .and_then(|u| String::from_utf8(u).ok())
            .filter(|u| !u.is_empty()),
        Uri::Tel(t) => Some(t.digits()),
        _ => None,
    }
}

pub(super) fn hung_up(leg: MediaLeg) -> EndReason {
    match leg {
        MediaLeg::Caller => EndReason::CallerHungUp,
        MediaLeg::Callee => EndReason::CalleeHungUp,
    }
}

/// The answer to a REFER, with a Warning saying why when there is a reason to give.
pub(super) fn refer_reply(
    req: &Request,
    tag: &str,
    status: StatusCode,
    why: Option<&str>,
) -> Response {
    let mut r = Response::for_request(req, status, Some(tag));
    if let Some(why) = why {
        r.headers.push(HeaderName::Warning, warning(why));
    }
    r
}

impl B2bua {
    /// REFER in the dialog of `side`.
    pub(super) fn handle_refer(
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
        let reply = |status: StatusCode, why: Option<&str>| refer_reply(req, &tag, status, why);
        let Some(referrer) = call.leg_of(side) else {
            txl.respond(now, tx, reply(StatusCode::CALL_DOES_NOT_EXIST, None));
            return;
        };
        if !call.settled() {
            let status = request_pending();
            txl.respond(
                now,
                tx,
                reply(status, Some("the call is changing; try again")),
            );
            return;
        }
        let refer_to = req
            .headers
            .get(&HeaderName::ReferTo)
            .and_then(|v| NameAddr::parse(v).ok());
        let Some(refer_to) = refer_to else {
            txl.respond(
                now,
                tx,
                reply(StatusCode::BAD_REQUEST, Some("Refer-To missing")),
            );
            return;
        };
        if let Some(replaces) = Replaces::from_refer_to(&refer_to.uri) {
            return self.attended_transfer(txl, now, tx, req, &tag, call_ref, referrer, replaces);
        }
        let Some(target) = refer_number(&refer_to.uri) else {
            let r = reply(StatusCode::BAD_REQUEST, Some("Refer-To names no number"));
            txl.respond(now, tx, r);
            return;
        };
        let Some(dialog) = call.dialog_mut(referrer) else {
            return;
        };
        let referrer_zone = dialog.path.zone;
        let ok = reply(StatusCode::ACCEPTED, None);
        accept_refer(txl, now, tx, ok, dialog, &mut self.ext.pending);
        call.ext.transfer = Some(Transfer::new(referrer, target.clone()));
        self.events.push_back(CallEvent::TransferRequested {
            call: call_ref,
            by: call.ext.station(referrer).to_string(),
            zone: referrer_zone,
            target,
            sips: sip_proto::sips::is_sips(&refer_to.uri),
        });
    }

    /// The driver's answer to [`CallEvent::TransferRequested`]: the target's contacts, or the
    /// status and reason it is refused with (unknown number, class of service). A refusal is
    /// reported to the referrer in a NOTIFY and the call stays as it was. Returns false when
    /// `call` has no transfer waiting for its targets.
    pub fn handle_transfer_targets(
        &mut self,
        txl: &mut TxLayer,
        now: Instant,
        call_ref: CallRef,
        targets: Result<Vec<Target>, (StatusCode, String)>,
    ) -> bool {
        let Some(call) = self.calls.get_mut(&call_ref) else {
            return false;
        };
        let Some(t) = call
            .ext
            .transfer
            .as_mut()
            .filter(|t| t.stage == Stage::Lookup)
        else {
            return false;
        };
        let targets = match targets {
            Ok(v) if !v.is_empty() => v,
            Ok(_) => {
                let s = StatusCode::TEMPORARILY_UNAVAILABLE;
                self.fail_transfer(txl, now, call_ref, s, s.reason());
                return true;
            }
            Err((status, why)) => {
                self.fail_transfer(txl, now, call_ref, status, &why);
                return true;
            }
        };
        let leg = t.referrer;
        let number = t.target.clone();
        t.secure = targets.iter().any(|x| x.payload_security);
        // As for a call's callee: SRTP when the target requires it or the transferee's leg is.
        let srtp = t.secure || call.media.leg_ref(leg.other()).sdes.is_srtp();
        let transferee = call.ext.station(leg.other()).to_string();
        if targets.iter().any(|x| media::needs_channel(&x.path, srtp)) {
            if let Err(why) = self.take_target_channel(now, call_ref) {
                self.fail_transfer(txl, now, call_ref, StatusCode::SERVICE_UNAVAILABLE, &why);
                return true;
            }
        }
        for target in targets {
            let mut dialog = Dialog {
                call_id: format!("{}@homeline", self.token()),
                local_tag: self.token(),
                remote_tag: None,
                local_uri: format!("sip:{transferee}@{}", self.config.domain),
                remote_uri: format!("sip:{number}@{}", self.config.domain),
                remote_target: Some(target.uri.clone()),
                local_cseq: 0,
                advertised: self.config.advertised(&target.path),
                sips: sip_proto::sips::is_sips(&target.uri) && target.registered_sips,
                path: target.path,
            };
            let branch = txl.new_branch();
            let mut invite = dialog.request(Method::Invite, &branch, None);
            invite.headers.push(HeaderName::Allow, ALLOW);
            let itx = txl.send_request(now, invite.clone(), target.path);
            let Some(t) = self
                .calls
                .get_mut(&call_ref)
                .and_then(|c| c.ext.transfer.as_mut())
            else {
                return true;
            };
            self.ext.pending.insert(
                itx,
                Pending::TransferFork {
                    call: call_ref,
                    fork: t.forks.len(),
                    dialog: Box::new(dialog.clone()),
                },
            );
            t.forks.push(CalleeBranch {
                invite_tx: itx,
                invite,
                dialog,
                state: BranchState::Calling,
            });
        }
        if let Some(t) = self
            .calls
            .get_mut(&call_ref)
            .and_then(|c| c.ext.transfer.as_mut())
        {
            t.stage = Stage::Ringing;
        }
        true
    }

    /// Gives the transfer's target leg (the referrer's) a relay channel unless it has one,
    /// noting that the transfer took it; the refusal's reason otherwise.
    fn take_target_channel(&mut self, now: Instant, call_ref: CallRef) -> Result<(), String> {
        let Some(call) = self.calls.get_mut(&call_ref) else {
            return Ok(());
        };
        let Some(t) = call.ext.transfer.as_mut() else {
            return Ok(());
        };
        let leg = call.media.leg_mut(t.referrer);
        if leg.port.is_none() {
            let port = self
                .relay
                .allocate(now, call_ref, t.referrer)
                .map_err(|hit| hit.to_string())?;
            leg.port = Some(port);
            t.allocated = true;
        }
        Ok(())
    }

    /// A response from transfer fork `fork`.
    #[allow(clippy::too_many_arguments)] // one response and where it belongs
    pub(super) fn transfer_fork_response(
        &mut self,
        txl: &mut TxLayer,
        now: Instant,
        tx: TxId,
        call_ref: CallRef,
        fork: usize,
        mut sent: Box<Dialog>,
        resp: Response,
    ) {
        let status = resp.status;
        let keep = |s: &mut Self, dialog: Box<Dialog>| {
            s.ext.pending.insert(
                tx,
                Pending::TransferFork {
                    call: call_ref,
                    fork,
                    dialog,
                },
            );
        };
        let live = self
            .calls
            .get_mut(&call_ref)
            .and_then(|c| c.ext.transfer.as_mut())
            .filter(|t| fork < t.forks.len());
        let Some(t) = live else {
            // The transfer is over (abandoned, or the call ended): a late answer is hung up.
            if status.is_success() {
                sent.remote_tag = resp.to().and_then(|n| n.tag());
                sent.remote_target = remote_target(&resp.headers).or(sent.remote_target.take());
                let cseq = resp.cseq().map(|c| c.seq).unwrap_or(1);
                let ack = ack_for(txl, &mut sent, cseq, None);
                txl.send_request(now, ack, sent.path);
                send_bye(txl, now, &mut sent, &mut self.ext.pending);
                self.end_call_of_dialog(txl, now, &sent);
            }
            return;
        };
        let b = &mut t.forks[fork];
        if let Some(tag) = resp.to().and_then(|n| n.tag()) {
            b.dialog.remote_tag = Some(tag);
        }
        if let Some(target) = remote_target(&resp.headers) {
            b.dialog.remote_target = Some(target);
        }
        if status.is_provisional() {
            if b.state == BranchState::Calling {
                b.state = BranchState::Proceeding;
            }
            keep(self, sent);
            return;
        }
        if !status.is_success() {
            if b.state != BranchState::Answered {
                self.transfer_fork_failed(txl, now, call_ref, fork, status);
            }
            return;
        }
        let cseq = resp.cseq().map(|c| c.seq).unwrap_or(1);
        match t.stage {
            Stage::Ringing => {}
            Stage::Connecting { fork: f, .. } if f == fork => {
                // A retransmitted 2xx: it is acknowledged once the transferee has answered.
                keep(self, sent);
                return;
            }
            _ => {
                // Another fork won: hang this one up.
                b.state = BranchState::Done;
                let ack = ack_for(txl, &mut b.dialog, cseq, None);
                txl.send_request(now, ack, b.dialog.path);
                send_bye(txl, now, &mut b.dialog, &mut self.ext.pending);
                return;
            }
        }
        b.state = BranchState::Answered;
        let fork_path = b.dialog.path;
        t.stage = Stage::Connecting { fork, cseq };
        for (j, other) in t.forks.iter_mut().enumerate() {
            if j != fork && matches!(other.state, BranchState::Calling | BranchState::Proceeding) {
                other.state = BranchState::Done;
                txl.send_request(now, other.cancel(), other.dialog.path);
            }
        }
        let referrer = t.referrer;
        let secure = t.secure;
        keep(self, sent);
        let body = body_of(&resp.headers, &resp.body);
        // An SRTP offer from a target that needed no channel when it was rung: only the relay
        // can give the transferee plain RTP (or other keys) for it.
        if media::caller_sdes(body.as_ref(), &fork_path) {
            if let Err(why) = self.take_target_channel(now, call_ref) {
                self.fail_transfer(txl, now, call_ref, StatusCode::SERVICE_UNAVAILABLE, &why);
                return;
            }
        }
        let Some(call) = self.calls.get_mut(&call_ref) else {
            return;
        };
        let Some(transferee_path) = call.dialog(referrer.other()).map(|d| d.path) else {
            return;
        };
        // The target's leg is a new device: SRTP state and homeline's key of its own.
        let mut fresh = LegSdes::default();
        fresh.required = secure;
        let old = std::mem::replace(&mut call.media.leg_mut(referrer).sdes, fresh);
        if let Some(t) = call.ext.transfer.as_mut() {
            t.referrer_sdes = Some(old);
        }
        // The target's offer, seen by the transferee as coming from the referrer's leg.
        let offer = match body {
            None => Err((
                StatusCode::NOT_ACCEPTABLE_HERE,
                "the target sent no SDP offer".into(),
            )),
            body => media::pass(
                &mut *self.relay,
                &self.config.media,
                now,
                call_ref,
                &mut call.media,
                referrer,
                &fork_path,
                &transferee_path,
                body,
                true,
                SdpRole::Offer,
            )
            .map_err(|e| (e.status(), e.to_string())),
        };
        let offer = match offer {
            Ok(Some(b)) => b,
            Ok(None) => {
                let s = StatusCode::NOT_ACCEPTABLE_HERE;
                self.fail_transfer(txl, now, call_ref, s, s.reason());
                return;
            }
            Err((status, why)) => {
                self.fail_transfer(txl, now, call_ref, status, &why);
                return;
            }
        };
        let Some(dialog) = call.dialog_mut(referrer.other()) else {
            return;
        };
        let branch = txl.new_branch();
        let mut reinvite = dialog.request(Method::Invite, &branch, Some((&offer.0, offer.1)));
        reinvite.headers.push(HeaderName::Allow, ALLOW);
        let rtx = txl.send_request(now, reinvite, transferee_path);
        call.ext.offer = Some(referrer);
        self.ext
            .pending
            .insert(rtx, Pending::TransferReinvite { call: call_ref });
    }

    /// Fork `fork` of the transfer failed with `status`; when all have, the transfer has.
    pub(super) fn transfer_fork_failed(
        &mut self,
        txl: &mut TxLayer,
        now: Instant,
        call_ref: CallRef,
        fork: usize,
        status: StatusCode,
    ) {
        let Some(t) = self
            .calls
            .get_mut(&call_ref)
            .and_then(|c| c.ext.transfer.as_mut())
        else {
            return;
        };
        let Some(b) = t.forks.get_mut(fork) else {
            return;
        };
        b.state = BranchState::Done;
        t.failure = Some(better_failure(t.failure, status));
        if t.stage == Stage::Ringing && t.forks.iter().all(|b| b.state == BranchState::Done) {
            let s = t.failure.unwrap_or(status);
            self.fail_transfer(txl, now, call_ref, s, s.reason());
        }
    }

    /// The transferee's answer to the re-INVITE that connects it to the target.
    pub(super) fn transfer_reinvite_response(
        &mut self,
        txl: &mut TxLayer,
        now: Instant,
        tx: TxId,
        call_ref: CallRef,
        resp: Response,
    ) {
        let status = resp.status;
        if status.is_provisional() {
            self.ext
                .pending
                .insert(tx, Pending::TransferReinvite { call: call_ref });
            return;
        }
        if !status.is_success() {
            self.transfer_reinvite_failed(txl, now, call_ref, status);
            return;
        }
        let Some(call) = self.calls.get_mut(&call_ref) else {
            return;
        };
        let Some(t) = call.ext.transfer.take() else {
            return;
        };
        let Stage::Connecting { fork, cseq } = t.stage else {
            call.ext.transfer = Some(t);
            return;
        };
        call.ext.offer = None;
        let referrer = t.referrer;
        let transferee = referrer.other();
        let mut target = t.forks[fork].clone();
        let target_tx = target.invite_tx;
        let Some(dialog) = call.dialog_mut(transferee) else {
            return;
        };
        let transferee_path = dialog.path;
        let reinvite_cseq = resp.cseq().map(|c| c.seq).unwrap_or(dialog.local_cseq);
        if let Some(rt) = remote_target(&resp.headers) {
            dialog.remote_target = Some(rt);
        }
        let ack = ack_for(txl, dialog, reinvite_cseq, None);
        txl.send_request(now, ack, transferee_path);
        let answer = media::pass(
            &mut *self.relay,
            &self.config.media,
            now,
            call_ref,
            &mut call.media,
            transferee,
            &transferee_path,
            &target.dialog.path,
            body_of(&resp.headers, &resp.body),
            true,
            SdpRole::Answer,
        )
        .unwrap_or(None);
        let ack = ack_for(txl, &mut target.dialog, cseq, with(&answer));
        txl.send_request(now, ack.clone(), target.dialog.path);
        self.ext.pending.insert(
            target_tx,
            Pending::Acked {
                call: call_ref,
                ack,
                path: target.dialog.path,
            },
        );
        // The target's dialog takes the referrer's place.
        let Some(side) = call.side_of(referrer) else {
            return;
        };
        let Some(slot) = call.dialog_mut(referrer) else {
            return;
        };
        let mut old = std::mem::replace(slot, target.dialog);
        let new_key = (slot.call_id.clone(), slot.local_tag.clone());
        self.by_dialog
            .remove(&(old.call_id.clone(), old.local_tag.clone()));
        self.by_dialog.insert(new_key, (call_ref, side));
        if !t.referrer_gone {
            let ntx = notify(txl, now, &mut old, StatusCode::OK, "OK", true);
            self.ext.pending.insert(ntx, Pending::Ignore);
            send_bye(txl, now, &mut old, &mut self.ext.pending);
        }
        call.ext.set_station(referrer, &t.target);
        if call.ext.timer.refresher == Some(referrer) {
            // The refresher left and the target never agreed to refresh: no timer rather
            // than a call cut at the old interval.
            call.ext.timer.interval = None;
            call.ext.timer.expires = None;
            call.ext.timer.refresher = None;
        }
        self.events.push_back(CallEvent::Transferred {
            call: call_ref,
            target: t.target,
        });
        self.restart_session_timer(now, call_ref);
        if let Some(consult) = t.consult {
            self.finish_consult(txl, now, consult, call_ref);
        }
    }

    /// The transferee refused (or never answered) the re-INVITE: the target is hung up and
    /// the referrer told.
    pub(super) fn transfer_reinvite_failed(
        &mut self,
        txl: &mut TxLayer,
        now: Instant,
        call_ref: CallRef,
        status: StatusCode,
    ) {
        if let Some(c) = self.calls.get_mut(&call_ref) {
            c.ext.offer = None;
        }
        self.fail_transfer(txl, now, call_ref, status, status.reason());
    }

    /// ACK and BYE for the fork that answered while the transfer was being connected; once.
    fn hang_up_connecting_fork(&mut self, txl: &mut TxLayer, now: Instant, call_ref: CallRef) {
        let Some(t) = self
            .calls
            .get_mut(&call_ref)
            .and_then(|c| c.ext.transfer.as_mut())
            .filter(|t| !t.target_hung_up)
        else {
            return;
        };
        let Stage::Connecting { fork, cseq } = t.stage else {
            return;
        };
        t.target_hung_up = true;
        let b = &mut t.forks[fork];
        b.state = BranchState::Done;
        let ack = ack_for(txl, &mut b.dialog, cseq, None);
        txl.send_request(now, ack.clone(), b.dialog.path);
        let branch = txl.new_branch();
        let bye = b.dialog.request(Method::Bye, &branch, None);
        let path = b.dialog.path;
        let itx = b.invite_tx;
        let btx = txl.send_request(now, bye, path);
        self.ext.pending.insert(btx, Pending::Ignore);
        self.ext.pending.insert(
            itx,
            Pending::Acked {
                call: call_ref,
                ack,
                path,
            },
        );
    }

    /// Ends the transfer with `status`: the referrer gets a final NOTIFY and the call stays,
    /// unless the referrer already hung up, in which case the transferee is hung up too.
    fn fail_transfer(
        &mut self,
        txl: &mut TxLayer,
        now: Instant,
        call_ref: CallRef,
        status: StatusCode,
        why: &str,
    ) {
        let Some(t) = self.abort_transfer(txl, now, call_ref) else {
            return;
        };
        self.events.push_back(CallEvent::TransferFailed {
            call: call_ref,
            status,
        });
        let Some(call) = self.calls.get_mut(&call_ref) else {
            return;
        };
        if !t.referrer_gone {
            if let Some(d) = call.dialog_mut(t.referrer) {
                let ntx = notify(txl, now, d, status, why, true);
                self.ext.pending.insert(ntx, Pending::Ignore);
            }
            return;
        }
        if let Some(d) = call.dialog_mut(t.referrer.other()) {
            send_bye(txl, now, d, &mut self.ext.pending);
        }
        self.end(now, call_ref, hung_up(t.referrer));
    }

    /// An attended transfer's re-INVITE went into the consultation call's own dialog with the
    /// target, so a late 2xx to it, hung up above, hangs up that call's target: the call ends
    /// for the referrer too, as when the target hangs up during a transfer, rather than leave
    /// the referrer on a call with nobody. A blind transfer's fork has a dialog of its own and
    /// belongs to no call: nothing happens.
    fn end_call_of_dialog(&mut self, txl: &mut TxLayer, now: Instant, hung_up_dialog: &Dialog) {
        let key = (
            hung_up_dialog.call_id.clone(),
            hung_up_dialog.local_tag.clone(),
        );
        let Some(&(call_ref, side)) = self.by_dialog.get(&key) else {
            return;
        };
        let Some(call) = self.calls.get_mut(&call_ref) else {
            return;
        };
        let Some(target) = call.leg_of(side) else {
            return;
        };
        call.ext.offer = None;
        if let Some(d) = call.dialog_mut(target.other()) {
            send_bye(txl, now, d, &mut self.ext.pending);
        }
        self.end(now, call_ref, hung_up(target));
    }

    /// Stops a transfer: ringing forks are cancelled, an answered one hung up, a channel taken
    /// for it given back. Returns what the transfer was.
    pub(super) fn abort_transfer(
        &mut self,
        txl: &mut TxLayer,
        now: Instant,
        call_ref: CallRef,
    ) -> Option<Transfer> {
        self.hang_up_connecting_fork(txl, now, call_ref);
        let call = self.calls.get_mut(&call_ref)?;
        let mut t = call.ext.transfer.take()?;
        for b in &t.forks {
            if matches!(b.state, BranchState::Calling | BranchState::Proceeding) {
                txl.send_request(now, b.cancel(), b.dialog.path);
            }
        }
        if t.allocated {
            self.relay.release(now, call_ref, t.referrer);
            call.media.leg_mut(t.referrer).port = None;
        }
        if let Some(old) = t.referrer_sdes.take() {
            let leg = call.media.leg_mut(t.referrer);
            leg.sdes = old;
            if leg.port.is_some() {
                // The channel stays the referrer's: its keys again.
                self.relay
                    .set_srtp(now, call_ref, t.referrer, leg.sdes.keys());
            }
        }
        if let Some(consult) = t.consult {
            self.release_consult(txl, now, consult, t.forks.first(), t.target_hung_up);
        }
        Some(t)
    }

    /// A BYE while a transfer is in progress. Returns false when there is none (the plain BYE
    /// handling applies).
    pub(super) fn bye_during_transfer(
        &mut self,
        txl: &mut TxLayer,
        now: Instant,
        tx: TxId,
        req: &Request,
        call_ref: CallRef,
        side: Side,
    ) -> bool {
        let Some(call) = self.calls.get_mut(&call_ref) else {
            return false;
        };
        let Some(leg) = call.leg_of(side) else {
            return false;
        };
        let tag = call.tag_of(side);
        let Some(t) = call.ext.transfer.as_mut() else {
            return false;
        };
        txl.respond(
            now,
            tx,
            Response::for_request(req, StatusCode::OK, Some(&tag)),
        );
        if leg == t.referrer {
            // The usual blind transfer: the referrer leaves at once, the transferee waits.
            t.referrer_gone = true;
            return true;
        }
        let Some(t) = self.abort_transfer(txl, now, call_ref) else {
            return true;
        };
        if !t.referrer_gone {
            if let Some(d) = self
                .calls
                .get_mut(&call_ref)
                .and_then(|c| c.dialog_mut(t.referrer))
            {
                send_bye(txl, now, d, &mut self.ext.pending);
            }
        }
        self.end(now, call_ref, hung_up(leg));
        true
    }
}
