//! Requests inside an established call (RFC 3261 §14 re-INVITE, RFC 3311 UPDATE, RFC 6086
//! INFO, RFC 3428 MESSAGE, OPTIONS): each one from one side becomes a new client transaction in
//! the other side's dialog, and the answers come back on the server transaction. SDP goes
//! through [`media::pass`] both ways, so a hold or a codec change never shows one side's
//! addresses to the other and the relay re-latches.

use super::sdes::SdpRole;
use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

use rand::Rng;
use sip::{HeaderAccess, HeaderName, Headers, Method, Request, Response, StatusCode};
use sip_proto::path::Path;
use sip_proto::tx::{TxId, TxLayer};

use super::leg::{body_of, remote_target, Dialog};
use super::media::{self, MediaLeg};
use super::{
    prack, session_timer, transfer, warning, with, B2bua, B2buaConfig, Call, CallRef, Side,
};

/// Methods homeline carries inside a call, as listed in `Allow`.
pub(super) const ALLOW: &str =
    "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, PRACK, REFER, MESSAGE, NOTIFY";

/// Request headers that mean something end to end and so cross the B2BUA; everything else
/// (Via, Route, Contact, Call-ID, tags) is rebuilt per side for topology hiding.
const REQUEST_HEADERS: &[&str] = &[
    "Supported",
    "Require",
    "Session-Expires",
    "Min-SE",
    "Accept",
    "Allow",
    "Content-Disposition",
    "Info-Package",
    "Recv-Info",
    "Subject",
    "Reason",
];

/// Response headers relayed back for the same reason.
const RESPONSE_HEADERS: &[&str] = &[
    "Supported",
    "Require",
    "Session-Expires",
    "Min-SE",
    "Accept",
    "Allow",
    "Unsupported",
    "Retry-After",
    "Warning",
    "Reason",
    "Recv-Info",
];

/// 491 Request Pending (RFC 3261 §14.2: an offer crossed ours).
pub(super) fn request_pending() -> StatusCode {
    StatusCode::new(491).unwrap_or(StatusCode::SERVER_INTERNAL_ERROR)
}

/// State of the in-dialog machinery kept by [`B2bua`] beside its calls.
#[derive(Debug, Default)]
pub(super) struct Ext {
    /// Client transactions opened by this module, and what their answers are for.
    pub(super) pending: HashMap<TxId, Pending>,
    /// When some call needs [`B2bua::handle_timeout`]; stale entries are skipped when due.
    pub(super) timers: BTreeSet<(Instant, CallRef)>,
}

/// What a client transaction of ours is for.
#[derive(Debug)]
pub(super) enum Pending {
    /// A request relayed from one side; its answers go back on the server transaction.
    Relayed(Relayed),
    /// A re-INVITE whose 2xx we acknowledged: retransmitted 2xx get the same ACK (§13.2.2.4).
    Acked {
        call: CallRef,
        ack: Request,
        path: Path,
    },
    /// A PRACK to the callee (RFC 3262); `server` is the caller's PRACK it answers, if any.
    Prack {
        call: CallRef,
        server: Option<(TxId, Request)>,
    },
    /// An INVITE to a transfer target (RFC 3515): one fork, with its dialog as sent.
    TransferFork {
        call: CallRef,
        fork: usize,
        dialog: Box<Dialog>,
    },
    /// The re-INVITE that connects the transferee to the transfer target.
    TransferReinvite { call: CallRef },
    /// A NOTIFY or BYE whose answer changes nothing.
    Ignore,
}

/// A request from `near` relayed to the other side.
#[derive(Debug, Clone)]
pub(super) struct Relayed {
    call: CallRef,
    near: MediaLeg,
    server: TxId,
    request: Request,
    /// The request as sent to the far side (a CANCEL copies it, §9.1).
    sent: Request,
}

/// The far side's 2xx to an offerless re-INVITE carried the offer: its ACK waits for the
/// near side's ACK, which carries the answer (RFC 3261 §14.1, RFC 3264 §5).
#[derive(Debug, Clone, Copy)]
pub(super) struct HeldAck {
    pub(super) near: MediaLeg,
    pub(super) near_cseq: u32,
    pub(super) far_cseq: u32,
}

/// What one call keeps for mid-call requests, reliable provisionals, session timers and
/// transfers.
#[derive(Debug, Default)]
pub(super) struct CallExt {
    /// The station (number) on each side: caller, callee.
    stations: [String; 2],
    /// The side whose offer (re-INVITE, UPDATE with SDP) is being carried, for glare (§14.2).
    pub(super) offer: Option<MediaLeg>,
    pub(super) held_ack: Option<HeldAck>,
    pub(super) rel: prack::Rel,
    pub(super) timer: session_timer::SessionTimer,
    pub(super) transfer: Option<transfer::Transfer>,
}

impl CallExt {
    /// The state of a new call from the caller's INVITE.
    pub(super) fn new(caller: &str, callee: &str, invite: &Request, config: &B2buaConfig) -> Self {
        CallExt {
            stations: [caller.to_string(), callee.to_string()],
            rel: prack::Rel::from_invite(invite),
            timer: session_timer::SessionTimer::from_invite(invite, config),
            ..CallExt::default()
        }
    }

    /// Headers the callee's INVITE carries for the extensions the caller announced.
    pub(super) fn callee_invite_headers(&self) -> Vec<(HeaderName, String)> {
        let mut supported = Vec::new();
        if self.rel.caller_supports {
            supported.push("100rel");
        }
        supported.push("timer");
        let mut h = vec![
            (HeaderName::Supported, supported.join(", ")),
            (HeaderName::Allow, ALLOW.to_string()),
        ];
        h.extend(self.timer.invite_headers());
        h
    }

    /// The station on `leg`'s side.
    pub(super) fn station(&self, leg: MediaLeg) -> &str {
        &self.stations[leg_index(leg)]
    }

    pub(super) fn set_station(&mut self, leg: MediaLeg, station: &str) {
        self.stations[leg_index(leg)] = station.to_string();
    }
}

fn leg_index(leg: MediaLeg) -> usize {
    match leg {
        MediaLeg::Caller => 0,
        MediaLeg::Callee => 1,
    }
}

impl Call {
    /// Established, and no transfer, offer or held ACK in flight: a REFER may start here, or
    /// the call may be joined by one.
    pub(super) fn settled(&self) -> bool {
        self.established()
            && self.ext.transfer.is_none()
            && self.ext.offer.is_none()
            && self.ext.held_ack.is_none()
    }

    /// Both dialogs are confirmed: the caller got its 2xx.
    pub(super) fn established(&self) -> bool {
        self.winner.is_some() && self.caller.answered
    }

    /// Which end of the call `side` is; `None` for a fork that lost.
    pub(super) fn leg_of(&self, side: Side) -> Option<MediaLeg> {
        match side {
            Side::Caller => Some(MediaLeg::Caller),
            Side::Callee(i) if self.winner.is_none_or(|w| w == i) => Some(MediaLeg::Callee),
            Side::Callee(_) => None,
        }
    }

    /// The side of the call `leg` is, for the dialog index.
    pub(super) fn side_of(&self, leg: MediaLeg) -> Option<Side> {
        match leg {
            MediaLeg::Caller => Some(Side::Caller),
            MediaLeg::Callee => self.winner.map(Side::Callee),
        }
    }

    /// The dialog of `leg` (the winning fork's for the callee).
    pub(super) fn dialog(&self, leg: MediaLeg) -> Option<&Dialog> {
        match leg {
            MediaLeg::Caller => Some(&self.caller.dialog),
            MediaLeg::Callee => self.winner.map(|w| &self.branches[w].dialog),
        }
    }

    pub(super) fn dialog_mut(&mut self, leg: MediaLeg) -> Option<&mut Dialog> {
        match leg {
            MediaLeg::Caller => Some(&mut self.caller.dialog),
            MediaLeg::Callee => self.winner.map(|w| &mut self.branches[w].dialog),
        }
    }

    /// Our tag in the dialog `side` belongs to, for answering its requests.
    pub(super) fn tag_of(&self, side: Side) -> String {
        match side {
            Side::Caller => self.caller.dialog.local_tag.clone(),
            Side::Callee(i) => self.branches[i].dialog.local_tag.clone(),
        }
    }
}

/// The first value of header `name`, compared without case (extension headers such as RSeq
/// are kept under their wire spelling).
pub(super) fn header<'a>(h: &'a Headers, name: &str) -> Option<&'a str> {
    h.iter()
        .find(|l| l.name.as_str().eq_ignore_ascii_case(name))
        .map(|l| l.value.as_str())
}

/// Whether list header `name` (Supported, Require) names option tag `tag`.
pub(super) fn has_option(h: &Headers, name: HeaderName, tag: &str) -> bool {
    h.values(&name).any(|v| v.trim().eq_ignore_ascii_case(tag))
}

/// Copies the end-to-end headers in `names` from one message to the other. `100rel` is
/// left out of Supported/Require: reliable provisionals of a mid-call INVITE are not carried.
fn copy_headers(from: &Headers, to: &mut Headers, names: &[&str]) {
    for line in from.iter() {
        let name = line.name.as_str();
        if !names.iter().any(|n| n.eq_ignore_ascii_case(name)) || to.get(&line.name).is_some() {
            continue;
        }
        let value = if matches!(line.name, HeaderName::Supported | HeaderName::Require) {
            let tags: Vec<&str> = from
                .values(&line.name)
                .map(str::trim)
                .filter(|t| !t.eq_ignore_ascii_case("100rel"))
                .collect();
            if tags.is_empty() {
                continue;
            }
            tags.join(", ")
        } else {
            // Every line of a repeated header is copied, not just the first.
            from.get_all(&line.name).collect::<Vec<_>>().join(", ")
        };
        to.push(line.name.clone(), value);
    }
}

/// The ACK for a 2xx in `dialog` to the INVITE with CSeq number `cseq` (§13.2.2.4: same
/// CSeq number, method ACK).
pub(super) fn ack_for(
    txl: &mut TxLayer,
    dialog: &mut Dialog,
    cseq: u32,
    body: Option<(&str, bytes::Bytes)>,
) -> Request {
    let branch = txl.new_branch();
    let mut ack = dialog.request(Method::Ack, &branch, body);
    ack.headers.set(HeaderName::CSeq, format!("{cseq} ACK"));
    ack
}

impl B2bua {
    /// A request other than BYE in the dialog of `side`.
    pub(super) fn pass_in_dialog(
        &mut self,
        txl: &mut TxLayer,
        now: Instant,
        tx: TxId,
        req: &Request,
        call_ref: CallRef,
        side: Side,
    ) {
        match req.method {
            Method::Prack => return self.handle_prack(txl, now, tx, req, call_ref, side),
            Method::Refer => return self.handle_refer(txl, now, tx, req, call_ref, side),
            _ => {}
        }
        let retry_after = self.rng.gen_range(0..=10u32);
        let Some(call) = self.calls.get_mut(&call_ref) else {
            txl.respond(
                now,
                tx,
                Response::for_request(req, StatusCode::CALL_DOES_NOT_EXIST, None),
            );
            return;
        };
        let tag = call.tag_of(side);
        let reply = |status: StatusCode| Response::for_request(req, status, Some(&tag));
        if !matches!(
            req.method,
            Method::Invite | Method::Update | Method::Info | Method::Message | Method::Options
        ) {
            // SUBSCRIBE, NOTIFY, PUBLISH and extensions have no meaning across the two sides.
            let mut r = reply(StatusCode::NOT_IMPLEMENTED);
            r.headers.push(HeaderName::Allow, ALLOW);
            txl.respond(now, tx, r);
            return;
        }
        let Some(near) = call.leg_of(side) else {
            txl.respond(now, tx, reply(StatusCode::CALL_DOES_NOT_EXIST));
            return;
        };
        if !call.established() {
            // §14.2: the other side is not up yet; the request may be repeated shortly.
            txl.respond(now, tx, retry_later(reply, retry_after));
            return;
        }
        let sdp_method = matches!(req.method, Method::Invite | Method::Update);
        let offers = req.method == Method::Invite || (sdp_method && !req.body.is_empty());
        if offers {
            let busy_with = call.ext.offer.or(call.ext.held_ack.map(|h| h.near));
            match busy_with {
                // §14.2: our own offer towards this side crossed this one (glare).
                Some(l) if l != near => {
                    txl.respond(now, tx, reply(request_pending()));
                    return;
                }
                // §14.2: a second offer before the first got its final response.
                Some(_) => {
                    txl.respond(now, tx, retry_later(reply, retry_after));
                    return;
                }
                None if call.ext.transfer.is_some() => {
                    // The transfer is about to renegotiate this very session.
                    txl.respond(now, tx, reply(request_pending()));
                    return;
                }
                None => {}
            }
        }
        let far = near.other();
        let (Some(near_path), Some(far_path)) = (
            call.dialog(near).map(|d| d.path),
            call.dialog(far).map(|d| d.path),
        ) else {
            txl.respond(now, tx, reply(StatusCode::CALL_DOES_NOT_EXIST));
            return;
        };
        let body = body_of(&req.headers, &req.body);
        let body = if sdp_method {
            match media::pass(
                &mut *self.relay,
                &self.config.media,
                now,
                call_ref,
                &mut call.media,
                near,
                &near_path,
                &far_path,
                body,
                true,
                SdpRole::Offer,
            ) {
                Ok(b) => b,
                Err(e) => {
                    let mut r = reply(e.status());
                    r.headers.push(HeaderName::Warning, warning(&e.to_string()));
                    txl.respond(now, tx, r);
                    return;
                }
            }
        } else {
            body
        };
        if sdp_method {
            // A target refresh (§12.2.2): the device may have moved.
            if let (Some(t), Some(d)) = (remote_target(&req.headers), call.dialog_mut(near)) {
                d.remote_target = Some(t);
            }
        }
        let Some(far_dialog) = call.dialog_mut(far) else {
            return;
        };
        let branch = txl.new_branch();
        let mut out = far_dialog.request(req.method.clone(), &branch, with(&body));
        copy_headers(&req.headers, &mut out.headers, REQUEST_HEADERS);
        if offers {
            call.ext.offer = Some(near);
        }
        let ctx = txl.send_request(now, out.clone(), far_path);
        self.ext.pending.insert(
            ctx,
            Pending::Relayed(Relayed {
                call: call_ref,
                near,
                server: tx,
                request: req.clone(),
                sent: out,
            }),
        );
    }

    /// A response on a client transaction of this module. Returns false when it is not ours.
    pub(super) fn handle_ext_response(
        &mut self,
        txl: &mut TxLayer,
        now: Instant,
        tx: TxId,
        resp: Response,
    ) -> bool {
        let Some(p) = self.ext.pending.remove(&tx) else {
            return false;
        };
        let provisional = resp.status.is_provisional();
        match p {
            Pending::Ignore => {
                if provisional {
                    self.ext.pending.insert(tx, Pending::Ignore);
                }
            }
            Pending::Acked { call, ack, path } => {
                if resp.status.is_success() {
                    txl.send_request(now, ack.clone(), path);
                }
                self.ext
                    .pending
                    .insert(tx, Pending::Acked { call, ack, path });
            }
            Pending::Relayed(r) => self.relay_response(txl, now, tx, r, resp),
            Pending::Prack { call, server } => {
                self.prack_response(txl, now, tx, call, server, resp)
            }
            Pending::TransferFork { call, fork, dialog } => {
                self.transfer_fork_response(txl, now, tx, call, fork, dialog, resp)
            }
            Pending::TransferReinvite { call } => {
                self.transfer_reinvite_response(txl, now, tx, call, resp)
            }
        }
        true
    }

    fn relay_response(
        &mut self,
        txl: &mut TxLayer,
        now: Instant,
        tx: TxId,
        r: Relayed,
        resp: Response,
    ) {
        let status = resp.status;
        if status.as_u16() == 100 {
            self.ext.pending.insert(tx, Pending::Relayed(r));
            return;
        }
        let Some(call) = self.calls.get_mut(&r.call) else {
            if status.is_final() {
                let out = Response::for_request(&r.request, StatusCode::CALL_DOES_NOT_EXIST, None);
                txl.respond(now, r.server, out);
            }
            return;
        };
        let near = r.near;
        let far = near.other();
        let (Some(near_d), Some(far_d)) = (call.dialog(near), call.dialog(far)) else {
            return;
        };
        let (near_path, far_path, near_tag) = (near_d.path, far_d.path, near_d.local_tag.clone());
        let near_contact = near_d.contact();
        let method = r.request.method.clone();
        let sdp_method = matches!(method, Method::Invite | Method::Update);
        let mut out = Response::for_request(&r.request, status, Some(&near_tag));
        out.reason = resp.reason.clone();
        copy_headers(&resp.headers, &mut out.headers, RESPONSE_HEADERS);
        let body = body_of(&resp.headers, &resp.body);
        let body = if sdp_method {
            match media::pass(
                &mut *self.relay,
                &self.config.media,
                now,
                r.call,
                &mut call.media,
                far,
                &far_path,
                &near_path,
                body,
                true,
                SdpRole::Answer,
            ) {
                Ok(b) => b,
                Err(e) if status.is_success() => {
                    // The far side took the offer but its answer cannot be carried: the near
                    // side keeps its old session and hears why.
                    out = Response::for_request(&r.request, e.status(), Some(&near_tag));
                    out.headers
                        .push(HeaderName::Warning, warning(&e.to_string()));
                    None
                }
                Err(_) => None,
            }
        } else {
            body
        };
        let status = out.status;
        if sdp_method && status.is_success() {
            if let (Some(t), Some(d)) = (remote_target(&resp.headers), call.dialog_mut(far)) {
                d.remote_target = Some(t);
            }
        }
        if sdp_method && status.as_u16() > 100 && status.as_u16() < 300 {
            out.headers.push(HeaderName::Contact, near_contact);
        }
        if status.is_success() && sdp_method {
            session_timer::mark_refresher(&mut out, &r.request, &resp);
        }
        if let Some((ct, b)) = body.as_ref() {
            out = out.with_body(ct, b.clone());
        }
        let mut held = false;
        if method == Method::Invite && resp.status.is_success() {
            let far_cseq = resp.cseq().map(|c| c.seq).unwrap_or(0);
            if r.request.body.is_empty() && !resp.body.is_empty() && status.is_success() {
                held = true;
                call.ext.held_ack = Some(HeldAck {
                    near,
                    near_cseq: r.request.cseq().map(|c| c.seq).unwrap_or(0),
                    far_cseq,
                });
            } else if let Some(d) = call.dialog_mut(far) {
                let ack = ack_for(txl, d, far_cseq, None);
                txl.send_request(now, ack.clone(), far_path);
                self.ext.pending.insert(
                    tx,
                    Pending::Acked {
                        call: r.call,
                        ack,
                        path: far_path,
                    },
                );
            }
        }
        txl.respond(now, r.server, out.clone());
        if !status.is_final() {
            self.ext.pending.insert(tx, Pending::Relayed(r));
            return;
        }
        if call.ext.offer == Some(near) && !held {
            call.ext.offer = None;
        }
        if status.is_success() && sdp_method {
            self.session_refreshed(now, r.call, near, &out);
        }
    }

    /// An ACK in the dialog of `side`: the answer to an offer made in our 2xx goes on to the
    /// side that made it.
    pub(super) fn ack_received(
        &mut self,
        txl: &mut TxLayer,
        now: Instant,
        call_ref: CallRef,
        side: Side,
        req: &Request,
    ) {
        let Some(call) = self.calls.get_mut(&call_ref) else {
            return;
        };
        let (Some(near), Some(held)) = (call.leg_of(side), call.ext.held_ack) else {
            return;
        };
        if held.near != near || req.cseq().map(|c| c.seq) != Some(held.near_cseq) {
            return;
        }
        call.ext.held_ack = None;
        call.ext.offer = None;
        let far = near.other();
        let (Some(near_path), Some(far_path)) = (
            call.dialog(near).map(|d| d.path),
            call.dialog(far).map(|d| d.path),
        ) else {
            return;
        };
        let body = media::pass(
            &mut *self.relay,
            &self.config.media,
            now,
            call_ref,
            &mut call.media,
            near,
            &near_path,
            &far_path,
            body_of(&req.headers, &req.body),
            true,
            SdpRole::Answer,
        )
        .unwrap_or(None);
        if let Some(d) = call.dialog_mut(far) {
            let ack = ack_for(txl, d, held.far_cseq, with(&body));
            txl.send_request(now, ack, far_path);
        }
    }

    /// A client transaction of this module timed out. Returns false when it is not ours.
    pub(super) fn ext_timed_out(&mut self, txl: &mut TxLayer, now: Instant, tx: TxId) -> bool {
        let Some(p) = self.ext.pending.remove(&tx) else {
            return false;
        };
        match p {
            Pending::Relayed(r) => {
                let tag = self
                    .calls
                    .get(&r.call)
                    .and_then(|c| c.dialog(r.near))
                    .map(|d| d.local_tag.clone());
                let out =
                    Response::for_request(&r.request, StatusCode::REQUEST_TIMEOUT, tag.as_deref());
                txl.respond(now, r.server, out);
                if let Some(call) = self.calls.get_mut(&r.call) {
                    if call.ext.offer == Some(r.near) {
                        call.ext.offer = None;
                    }
                }
            }
            Pending::Prack {
                server: Some((stx, req)),
                ..
            } => {
                let out = Response::for_request(&req, StatusCode::REQUEST_TIMEOUT, None);
                txl.respond(now, stx, out);
            }
            Pending::TransferFork { call, fork, .. } => {
                self.transfer_fork_failed(txl, now, call, fork, StatusCode::REQUEST_TIMEOUT)
            }
            Pending::TransferReinvite { call } => {
                self.transfer_reinvite_failed(txl, now, call, StatusCode::REQUEST_TIMEOUT)
            }
            Pending::Prack { server: None, .. } | Pending::Acked { .. } | Pending::Ignore => {}
        }
        true
    }

    /// A CANCEL for a relayed re-INVITE (§9.2): 200 to the CANCEL, and the far side's INVITE
    /// is cancelled; its 487 comes back to the near side as the INVITE's answer. Returns false
    /// when `invite` is no relayed request.
    pub(super) fn cancel_relayed(
        &mut self,
        txl: &mut TxLayer,
        now: Instant,
        tx: TxId,
        invite: Option<TxId>,
        req: &Request,
    ) -> bool {
        let Some(invite) = invite else {
            return false;
        };
        let found = self.ext.pending.iter().find_map(|(ctx, p)| match p {
            Pending::Relayed(r) if r.server == invite => Some((*ctx, r.sent.clone())),
            _ => None,
        });
        let Some((ctx, sent)) = found else {
            return false;
        };
        // The CANCEL's To already carries our tag on the near side.
        txl.respond(now, tx, Response::for_request(req, StatusCode::OK, None));
        if let Some(path) = txl_path(self, ctx) {
            txl.send_request(now, cancel_of(&sent), path);
        }
        true
    }

    /// Forgets what this module kept for a call that ended. Transactions still waiting for
    /// an answer stay: a relayed request's answer (or its timeout) still closes the near
    /// side's server transaction, and a transfer target answering late is hung up.
    pub(super) fn forget_call(&mut self, call_ref: CallRef) {
        self.ext
            .pending
            .retain(|_, p| !matches!(p, Pending::Acked { call, .. } if *call == call_ref));
    }
}

/// Where the far side of relayed request `ctx` is.
fn txl_path(b2b: &B2bua, ctx: TxId) -> Option<Path> {
    let Some(Pending::Relayed(r)) = b2b.ext.pending.get(&ctx) else {
        return None;
    };
    let call = b2b.calls.get(&r.call)?;
    call.dialog(r.near.other()).map(|d| d.path)
}

/// The CANCEL for a request we sent (RFC 3261 §9.1: same Request-URI, Call-ID, From, To,
/// CSeq number and top Via).
fn cancel_of(sent: &Request) -> Request {
    let mut h = Headers::new();
    for name in [
        HeaderName::Via,
        HeaderName::From,
        HeaderName::To,
        HeaderName::CallId,
    ] {
        if let Some(v) = sent.headers.get(&name) {
            h.push(name, v);
        }
    }
    h.push(HeaderName::MaxForwards, "70");
    let seq = sent.cseq().map(|c| c.seq).unwrap_or(1);
    h.push(HeaderName::CSeq, format!("{seq} CANCEL"));
    h.push(HeaderName::ContentLength, "0");
    Request {
        method: Method::Cancel,
        uri: sent.uri.clone(),
        version: sip::SIP_2_0.into(),
        headers: h,
        body: bytes::Bytes::new(),
    }
}

/// 500 with Retry-After (RFC 3261 §14.2): the request crossed one still in progress.
fn retry_later(reply: impl Fn(StatusCode) -> Response, secs: u32) -> Response {
    let mut r = reply(StatusCode::SERVER_INTERNAL_ERROR);
    r.headers
        .push(HeaderName::Other("Retry-After".into()), secs.to_string());
    r
}
