//! The B2BUA core, sans-IO: each call is two dialogs, the caller's and the callee's, joined
//! here; nothing from one side's Via, Contact, Record-Route or Call-ID reaches the other
//! (topology hiding, RFC 3261 §12 / RFC 5853 §3.1).
//!
//! Driven by the `net` crate with transaction events (RFC 3261 §17); it sends through the
//! [`TxLayer`] it is handed on each call, so both stay plain structs without I/O. This first cut
//! carries basic calls: INVITE with forking to every contact of the callee (first 2xx wins, the
//! other forks are cancelled, a late 2xx is acknowledged and hung up), provisional responses
//! with their SDP, CANCEL (200 + 487), BYE from either side, failures and timeouts mapped to the
//! caller. Call forwarding (always, busy, no answer) keeps the caller's dialog and rings the
//! target as new forks (`forward`). Mid-call requests (re-INVITE, UPDATE, INFO, MESSAGE,
//! OPTIONS) are carried between the sides in `in_dialog`, reliable provisionals in `prack`,
//! session timers in `session_timer` and blind transfer in `transfer`.

mod attended;
mod forward;
mod in_dialog;
mod leg;
mod local_relay;
mod media;
mod prack;
mod sdes;
use sdes::SdpRole;
mod session_timer;
mod transfer;

pub use forward::{Forward, ForwardKind, Forwarding, NotFollowed};
pub(crate) use leg::body_of;
pub use leg::Target;
pub use local_relay::LocalRelay;
pub use media::caller_sdes as caller_offers_srtp;
pub use media::{MediaAddresses, MediaControl, MediaError, MediaLeg, NoRelay};

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};

use policy::Zone;
use std::time::Instant;

use rand::{Rng, SeedableRng};
use sip::{HeaderAccess, HeaderName, Method, Request, Response, StatusCode};
use sip_proto::path::Path;
use sip_proto::tx::{TxId, TxLayer};

use leg::{remote_target, BranchState, CalleeBranch, CallerLeg, Dialog};

/// Identifies one call for the I/O layer and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallRef(pub u64);

/// Settings of the call core.
#[derive(Debug, Clone)]
pub struct B2buaConfig {
    /// Host part of the From/To URIs homeline writes on the callee's side.
    pub domain: String,
    /// Where devices of each zone send relayed media.
    pub media: MediaAddresses,
    /// The office's public SIP address (public IP and the port the router forwards, 5060 in
    /// the brief), written in Via and Contact towards external-zone devices. `None`: the
    /// public media address with the listener's port, else the listener's own address.
    pub public_sip: Option<SocketAddr>,
    /// Session-Expires offered to callees, in seconds (RFC 4028; 1800 by default).
    pub session_expires: u32,
    /// Our Min-SE, in seconds (RFC 4028 §5; never below 90).
    pub min_se: u32,
}

impl Default for B2buaConfig {
    fn default() -> Self {
        B2buaConfig {
            domain: "homeline".into(),
            media: MediaAddresses::default(),
            public_sip: None,
            session_expires: 1800,
            min_se: 90,
        }
    }
}

impl B2buaConfig {
    /// The address homeline names in Via and Contact on a leg reached over `path`: on the
    /// external zone the public SIP address (a LAN address there would leak the office's
    /// addressing and be unreachable from home), on the internal zone the listener's address,
    /// or the configured internal address when the listener is bound to every address. While a
    /// learned public address is unknown, the external zone is given the listener's address:
    /// no call reaches that point, since every call there needs the relay and is refused
    /// first; requests of homeline's own (keepalive probes) ask [`Self::advertised_known`].
    pub fn advertised(&self, path: &Path) -> SocketAddr {
        let fill = |ip: Option<IpAddr>| match ip {
            Some(ip) if path.local.ip().is_unspecified() || path.zone == Zone::External => {
                SocketAddr::new(ip, path.local.port())
            }
            _ => path.local,
        };
        match path.zone {
            Zone::External => match self.public_sip {
                // SIP over TLS is reached on the public SIP port + 1 (5061 for 5060): the
                // forward `homeline router-rules` prints to the external TLS listener. A remote
                // phone opens a new connection to a Contact it is given, so the port must be
                // the one that reaches TLS.
                Some(sip) if path.transport == sip_proto::path::Transport::Tls => {
                    SocketAddr::new(sip.ip(), sip.port().saturating_add(1))
                }
                Some(sip) => sip,
                None => fill(self.media.public),
            },
            Zone::Internal => fill(self.media.internal),
        }
    }

    /// [`Self::advertised`], or `None` on the external zone while the public address is to be
    /// learned (STUN, DynDNS) and is not known yet: the listener's own address is then the
    /// office's private one, which must not go out there.
    pub fn advertised_known(&self, path: &Path) -> Option<SocketAddr> {
        let unknown = path.zone == Zone::External
            && self.media.learned
            && self.public_sip.is_none()
            && self.media.public.is_none();
        (!unknown).then(|| self.advertised(path))
    }
}

/// Why a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// The caller hung up (BYE) or cancelled.
    CallerHungUp,
    /// The callee hung up.
    CalleeHungUp,
    /// The call never connected; the caller got this status.
    Failed(StatusCode),
    /// The relay saw no media for too long (or the session timer expired): both sides got a
    /// BYE with a Reason header.
    MediaTimeout,
    /// The session timer ran out without a refresh (RFC 4028 §10): both sides got a BYE with
    /// a Reason header.
    SessionExpired,
}

/// What the call core reports (logs, counters, later the relay).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallEvent {
    /// A call was placed towards `forks` contacts.
    Started {
        /// The call.
        call: CallRef,
        /// Calling station.
        caller: String,
        /// Called number.
        callee: String,
        /// Contacts rung.
        forks: usize,
    },
    /// A call was refused before anything rang (relay limits, unusable SDP).
    Refused {
        /// The call.
        call: CallRef,
        /// The status the caller got.
        status: StatusCode,
        /// Why, as the Warning said.
        why: String,
    },
    /// A contact answered.
    Answered {
        /// The call.
        call: CallRef,
    },
    /// The callee's forwarding was followed: `forks` contacts of the target ring now (for
    /// busy and no answer, instead of the callee's, which were cancelled or failed).
    Forwarded {
        /// The call.
        call: CallRef,
        /// Which forwarding.
        kind: ForwardKind,
        /// Contacts rung.
        forks: usize,
    },
    /// The callee's forwarding applied but was not followed; the call went on as if there
    /// were none.
    ForwardNotFollowed {
        /// The call.
        call: CallRef,
        /// The station whose forwarding it is (the called one).
        station: String,
        /// Which forwarding.
        kind: ForwardKind,
        /// Why not.
        why: NotFollowed,
    },
    /// The call is over.
    Ended {
        /// The call.
        call: CallRef,
        /// Why.
        reason: EndReason,
    },
    /// A party asked to transfer the call (REFER). The driver looks `target` up, applies
    /// `by`'s class of service and answers with [`B2bua::handle_transfer_targets`].
    TransferRequested {
        /// The call.
        call: CallRef,
        /// The station that sent REFER.
        by: String,
        /// The zone the REFER came from: the referrer's class of service for it applies to
        /// the target.
        zone: policy::Zone,
        /// The number in Refer-To.
        target: String,
        /// Refer-To is a `sips:` URI: the target may only be rung over TLS (RFC 5630 §5.3).
        sips: bool,
    },
    /// The transfer target answered and took the referrer's place.
    Transferred {
        /// The call.
        call: CallRef,
        /// The number now in the call.
        target: String,
    },
    /// The transfer failed; the call stays as it was (unless the referrer had hung up).
    TransferFailed {
        /// The call.
        call: CallRef,
        /// What the referrer was told.
        status: StatusCode,
    },
}

/// Which side of a call a transaction or dialog belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Caller,
    Callee(usize),
}

#[derive(Debug)]
struct Call {
    caller: CallerLeg,
    branches: Vec<CalleeBranch>,
    winner: Option<usize>,
    /// Best failure seen so far from a fork, for when every fork has failed.
    failure: Option<StatusCode>,
    /// Relay channels and the devices' media endpoints.
    media: media::CallMedia,
    /// Why the best failure happened, when homeline decided it (Warning text).
    failure_warning: Option<String>,
    /// Mid-call requests, reliable provisionals, session timer, transfer.
    ext: in_dialog::CallExt,
    /// The callee's forwarding on busy and no answer, while it may still apply.
    forward: Option<forward::ForwardState>,
}

/// The B2BUA: every call in progress.
#[derive(Debug)]
pub struct B2bua {
    config: B2buaConfig,
    calls: HashMap<CallRef, Call>,
    by_tx: HashMap<TxId, (CallRef, Side)>,
    /// (Call-ID, our tag) of each side's dialog.
    by_dialog: HashMap<(String, String), (CallRef, Side)>,
    next: u64,
    rng: rand::rngs::StdRng,
    events: VecDeque<CallEvent>,
    relay: Box<dyn MediaControl>,
    ext: in_dialog::Ext,
    /// When each call ringing with "forward on no answer" is due to be forwarded.
    forward_timers: BTreeSet<(Instant, CallRef)>,
}

impl B2bua {
    /// An empty call core; `seed` feeds tags and Call-IDs; `relay` anchors legs that cross
    /// the Internet.
    pub fn new(config: B2buaConfig, seed: u64, relay: Box<dyn MediaControl>) -> B2bua {
        B2bua {
            relay,
            config,
            calls: HashMap::new(),
            by_tx: HashMap::new(),
            by_dialog: HashMap::new(),
            next: 0,
            rng: rand::rngs::StdRng::seed_from_u64(seed),
            events: VecDeque::new(),
            ext: in_dialog::Ext::default(),
            forward_timers: BTreeSet::new(),
        }
    }

    /// The settings in force.
    pub fn config(&self) -> &B2buaConfig {
        &self.config
    }

    /// Sets the office's public address (learned by STUN or DynDNS, or lost): the relay
    /// address given to external-zone devices in SDP and, with `sip_port`, the SIP address in
    /// Via and Contact towards them. Calls set up from now on use it; calls already up keep
    /// what they were given. Returns the previous public media address.
    pub fn set_public(&mut self, public: Option<IpAddr>, sip_port: u16) -> Option<IpAddr> {
        let old = self.config.media.public;
        self.config.media.public = public;
        self.config.public_sip = public.map(|ip| SocketAddr::new(ip, sip_port));
        old
    }

    /// Calls in progress.
    pub fn len(&self) -> usize {
        self.calls.len()
    }

    /// True when no call is in progress.
    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<CallEvent> {
        self.events.pop_front()
    }

    /// A new INVITE (no To tag) on server transaction `tx`. `caller` is the calling station;
    /// `targets` are the callee's contacts, or the status to refuse with (404 unknown number,
    /// 480 not registered, 403 by policy) as the I/O layer decided; `forwarding` is the
    /// callee's, its targets resolved and checked by the I/O layer.
    #[allow(clippy::too_many_arguments)] // the facts of one incoming call, gathered by the driver
    pub fn handle_invite(
        &mut self,
        txl: &mut TxLayer,
        now: Instant,
        tx: TxId,
        req: Request,
        path: Path,
        caller: &str,
        callee: &str,
        targets: Result<Vec<Target>, StatusCode>,
        mut forwarding: Forwarding,
    ) {
        let local_tag = self.token();
        let call = CallRef(self.next);
        self.next += 1;
        let (targets, rung) = self.forward_always(call, callee, targets, &mut forwarding);
        let targets = match targets {
            Ok(t) if t.is_empty() => Err(StatusCode::TEMPORARILY_UNAVAILABLE),
            other => other,
        };
        let targets = match targets {
            Ok(t) => t,
            Err(status) => {
                txl.respond(
                    now,
                    tx,
                    Response::for_request(&req, status, Some(&local_tag)),
                );
                return;
            }
        };
        if let Some(r) = session_timer::too_brief(&req, &self.config, &local_tag) {
            txl.respond(now, tx, r);
            return;
        }
        // Admission and anchoring before anything rings: a refused call is refused whole.
        let body = body_of(&req.headers, &req.body);
        let callee_paths: Vec<&Path> = targets.iter().map(|t| &t.path).collect();
        let caller_srtp = media::caller_sdes(body.as_ref(), &path);
        let callee_secure = targets.iter().any(|t| t.payload_security);
        let prepared = media::admit(
            &mut *self.relay,
            &self.config.media,
            now,
            call,
            &path,
            caller_srtp,
            &callee_paths,
            callee_secure,
        )
        .and_then(|mut m| {
            let bodies = targets
                .iter()
                .map(|t| {
                    media::pass(
                        &mut *self.relay,
                        &self.config.media,
                        now,
                        call,
                        &mut m,
                        MediaLeg::Caller,
                        &path,
                        &t.path,
                        body.clone(),
                        false,
                        SdpRole::Offer,
                    )
                })
                .collect::<Result<Vec<_>, _>>();
            bodies.map(|b| (m, b))
        });
        let (call_media, bodies) = match prepared {
            Ok(p) => p,
            Err(e) => {
                self.relay.release_call(now, call);
                let mut r = Response::for_request(&req, e.status(), Some(&local_tag));
                r.headers.push(HeaderName::Warning, warning(&e.to_string()));
                txl.respond(now, tx, r);
                self.events.push_back(CallEvent::Refused {
                    call,
                    status: e.status(),
                    why: e.to_string(),
                });
                return;
            }
        };
        let caller_dialog = Dialog {
            call_id: req.call_id().unwrap_or_default().to_string(),
            local_tag: local_tag.clone(),
            remote_tag: req.from().and_then(|f| f.tag()),
            local_uri: req.to().map(|t| t.uri.to_string()).unwrap_or_default(),
            remote_uri: req.from().map(|f| f.uri.to_string()).unwrap_or_default(),
            remote_target: remote_target(&req.headers),
            local_cseq: 0,
            advertised: self.config.advertised(&path),
            // A sips: Contact is of use only to a caller that reached us over TLS.
            sips: sip_proto::sips::answer_with_sips_contact(&req)
                && sip_proto::sips::is_secure(path.transport),
            path,
        };
        let caller_leg = CallerLeg {
            invite_tx: tx,
            invite: req,
            dialog: caller_dialog,
            answered: false,
        };
        txl.respond(now, tx, caller_leg.response(StatusCode::TRYING, None));
        let ext = in_dialog::CallExt::new(caller, callee, &caller_leg.invite, &self.config);
        let mut extra = ext.callee_invite_headers();
        if rung != callee {
            extra.push(forward::diversion(
                callee,
                &self.config.domain,
                forward::ForwardKind::Always,
            ));
        }
        let branches = self.fork(
            txl,
            now,
            call,
            &caller_leg,
            (caller, &rung),
            0,
            targets.into_iter().zip(bodies),
            &extra,
        );
        self.by_tx.insert(tx, (call, Side::Caller));
        self.by_dialog.insert(
            (
                caller_leg.dialog.call_id.clone(),
                caller_leg.dialog.local_tag.clone(),
            ),
            (call, Side::Caller),
        );
        self.events.push_back(CallEvent::Started {
            call,
            caller: caller.to_string(),
            callee: callee.to_string(),
            forks: branches.len(),
        });
        self.calls.insert(
            call,
            Call {
                caller: caller_leg,
                branches,
                winner: None,
                failure: None,
                media: call_media,
                failure_warning: None,
                ext,
                forward: None,
            },
        );
        self.arm_forwarding(now, call, caller, callee, forwarding);
    }

    /// Sends an INVITE to each target with its body, as forks `first..` of `call`, and
    /// returns the new branches. `(caller, callee)` are the numbers on the callee's side.
    #[allow(clippy::too_many_arguments)] // the call, its caller leg, who to whom, what to ring
    fn fork(
        &mut self,
        txl: &mut TxLayer,
        now: Instant,
        call: CallRef,
        caller_leg: &CallerLeg,
        (caller, callee): (&str, &str),
        first: usize,
        forks: impl Iterator<Item = (Target, Option<(String, bytes::Bytes)>)>,
        extra: &[(HeaderName, String)],
    ) -> Vec<CalleeBranch> {
        let hops = caller_leg
            .invite
            .max_forwards()
            .unwrap_or(70)
            .saturating_sub(1)
            .max(1);
        let mut branches = Vec::new();
        for (i, (target, body)) in forks.enumerate() {
            let i = first + i;
            let mut dialog = Dialog {
                call_id: format!("{}@homeline", self.token()),
                local_tag: self.token(),
                remote_tag: None,
                local_uri: format!("sip:{caller}@{}", self.config.domain),
                remote_uri: format!("sip:{callee}@{}", self.config.domain),
                remote_target: Some(target.uri.clone()),
                local_cseq: 0,
                advertised: self.config.advertised(&target.path),
                sips: sip_proto::sips::is_sips(&target.uri) && target.registered_sips,
                path: target.path,
            };
            let branch = txl.new_branch();
            let mut invite = dialog.request(
                Method::Invite,
                &branch,
                body.as_ref().map(|(ct, b)| (ct.as_str(), b.clone())),
            );
            invite
                .headers
                .set(HeaderName::MaxForwards, hops.to_string());
            if let Some(name) = caller_leg.invite.from().and_then(|f| f.display) {
                let from = invite
                    .headers
                    .get(&HeaderName::From)
                    .unwrap_or_default()
                    .to_string();
                invite
                    .headers
                    .set(HeaderName::From, format!("{name} {from}"));
            }
            for (name, value) in extra {
                invite.headers.push(name.clone(), value.clone());
            }
            let btx = txl.send_request(now, invite.clone(), target.path);
            self.by_tx.insert(btx, (call, Side::Callee(i)));
            self.by_dialog.insert(
                (dialog.call_id.clone(), dialog.local_tag.clone()),
                (call, Side::Callee(i)),
            );
            branches.push(CalleeBranch {
                invite_tx: btx,
                invite,
                dialog,
                state: BranchState::Calling,
            });
        }
        branches
    }

    /// A response on a client transaction. Returns false when it is not one of ours.
    pub fn handle_response(
        &mut self,
        txl: &mut TxLayer,
        now: Instant,
        tx: TxId,
        resp: Response,
    ) -> bool {
        if self.ext.pending.contains_key(&tx) {
            return self.handle_ext_response(txl, now, tx, resp);
        }
        let Some(&(call_ref, Side::Callee(i))) = self.by_tx.get(&tx) else {
            return false;
        };
        if resp.status.as_u16() == 422 && self.retry_after_422(txl, now, call_ref, i, &resp) {
            return true;
        }
        let Some(call) = self.calls.get_mut(&call_ref) else {
            return false;
        };
        let status = resp.status;
        if status.as_u16() == 100 {
            return true;
        }
        let branch = &mut call.branches[i];
        if let Some(tag) = resp.to().and_then(|t| t.tag()) {
            branch.dialog.remote_tag = Some(tag);
        }
        if let Some(target) = remote_target(&resp.headers) {
            branch.dialog.remote_target = Some(target);
        }
        let body = body_of(&resp.headers, &resp.body);
        let relayed = media::pass(
            &mut *self.relay,
            &self.config.media,
            now,
            call_ref,
            &mut call.media,
            MediaLeg::Callee,
            &branch.dialog.path,
            &call.caller.dialog.path,
            body,
            false,
            SdpRole::Answer,
        );
        if status.is_provisional() {
            if branch.state == BranchState::Calling {
                branch.state = BranchState::Proceeding;
            }
            // Early media the relay cannot carry is left out; the ringing is not.
            return self.relay_provisional(txl, now, call_ref, i, &resp, relayed.unwrap_or(None));
        }
        let (status, body) = match relayed {
            Ok(b) => (status, b),
            // An answer the relay cannot carry: the callee is hung up below, the caller hears
            // why (no fork that answered like this can win).
            Err(e) if status.is_success() => {
                let ack_branch = txl.new_branch();
                let ack = branch.dialog.request(Method::Ack, &ack_branch, None);
                txl.send_request(now, ack, branch.dialog.path);
                let bye_branch = txl.new_branch();
                let bye = branch.dialog.request(Method::Bye, &bye_branch, None);
                txl.send_request(now, bye, branch.dialog.path);
                branch.state = BranchState::Done;
                call.fork_failed(i, e.status());
                call.failure_warning = Some(format!("answer not relayed: {e}"));
                self.finish_if_all_failed(txl, now, call_ref);
                return true;
            }
            Err(_) => (status, None),
        };
        if status.is_success() {
            // An offerless INVITE answered with an offer: the callee's ACK must carry the
            // caller's answer, so it waits for the caller's ACK (RFC 3261 §13.2.1, §14.1).
            let wins = call.winner.is_none() && !call.caller.answered;
            let late_offer = wins
                && call.caller.invite.body.is_empty()
                && body.is_some()
                && !call.ext.rel.early_offer;
            let held = call
                .ext
                .held_ack
                .is_some_and(|h| h.near == MediaLeg::Caller && call.winner == Some(i));
            if late_offer {
                call.ext.held_ack = Some(in_dialog::HeldAck {
                    near: MediaLeg::Caller,
                    near_cseq: call.caller.invite.cseq().map_or(1, |c| c.seq),
                    far_cseq: branch.invite.cseq().map_or(1, |c| c.seq),
                });
            } else if !held {
                // Every 2xx is acknowledged, including retransmissions and late forks
                // (§13.2.2.4).
                let ack_branch = txl.new_branch();
                let ack = branch.dialog.request(Method::Ack, &ack_branch, None);
                txl.send_request(now, ack, branch.dialog.path);
            }
            match call.winner {
                Some(w) if w == i => {}
                Some(_) => {
                    // A second fork answered too late: hang it up.
                    branch.state = BranchState::Done;
                    let bye_branch = txl.new_branch();
                    let bye = branch.dialog.request(Method::Bye, &bye_branch, None);
                    txl.send_request(now, bye, branch.dialog.path);
                }
                None if call.caller.answered => {
                    // The caller cancelled meanwhile: this answer is hung up at once.
                    branch.state = BranchState::Done;
                    let bye_branch = txl.new_branch();
                    let bye = branch.dialog.request(Method::Bye, &bye_branch, None);
                    txl.send_request(now, bye, branch.dialog.path);
                }
                None => {
                    branch.state = BranchState::Answered;
                    call.winner = Some(i);
                    call.caller.answered = true;
                    let mut r = call.caller.response(status, with(&body));
                    if let Some(at) = session_timer::on_answer(call, &resp, &mut r, now) {
                        self.ext.timers.insert((at, call_ref));
                    }
                    txl.respond(now, call.caller.invite_tx, r);
                    for (j, other) in call.branches.iter_mut().enumerate() {
                        if j != i
                            && matches!(other.state, BranchState::Calling | BranchState::Proceeding)
                        {
                            other.state = BranchState::Done;
                            txl.send_request(now, other.cancel(), other.dialog.path);
                        }
                    }
                    self.events
                        .push_back(CallEvent::Answered { call: call_ref });
                }
            }
            return true;
        }
        branch.state = BranchState::Done;
        call.fork_failed(i, status);
        self.finish_if_all_failed(txl, now, call_ref);
        true
    }

    /// A client transaction timed out (Timer B/F): that fork failed with 408.
    pub fn handle_timed_out(&mut self, txl: &mut TxLayer, now: Instant, tx: TxId) -> bool {
        if self.ext_timed_out(txl, now, tx) {
            return true;
        }
        let Some(&(call_ref, Side::Callee(i))) = self.by_tx.get(&tx) else {
            return false;
        };
        let Some(call) = self.calls.get_mut(&call_ref) else {
            return false;
        };
        if call.branches[i].state == BranchState::Answered {
            return true;
        }
        call.branches[i].state = BranchState::Done;
        call.fork_failed(i, StatusCode::REQUEST_TIMEOUT);
        self.finish_if_all_failed(txl, now, call_ref);
        true
    }

    /// A CANCEL for server INVITE transaction `invite` (RFC 3261 §9.2): 200 to the CANCEL,
    /// 487 to the INVITE, CANCEL to every fork still ringing. 481 when there is no such INVITE.
    pub fn handle_cancel(
        &mut self,
        txl: &mut TxLayer,
        now: Instant,
        tx: TxId,
        invite: Option<TxId>,
        req: &Request,
    ) {
        if self.cancel_relayed(txl, now, tx, invite, req) {
            return;
        }
        let found = invite.and_then(|inv| self.by_tx.get(&inv).copied());
        let Some((call_ref, Side::Caller)) = found else {
            txl.respond(
                now,
                tx,
                Response::for_request(req, StatusCode::CALL_DOES_NOT_EXIST, None),
            );
            return;
        };
        let Some(call) = self.calls.get_mut(&call_ref) else {
            return;
        };
        txl.respond(
            now,
            tx,
            Response::for_request(req, StatusCode::OK, Some(&call.caller.dialog.local_tag)),
        );
        if call.caller.answered {
            return; // too late: the call stands (§9.2); the caller will send BYE
        }
        call.caller.answered = true;
        txl.respond(
            now,
            call.caller.invite_tx,
            call.caller.response(StatusCode::REQUEST_TERMINATED, None),
        );
        for b in call.branches.iter_mut() {
            if matches!(b.state, BranchState::Calling | BranchState::Proceeding) {
                b.state = BranchState::Done;
                txl.send_request(now, b.cancel(), b.dialog.path);
            }
        }
        self.end(now, call_ref, EndReason::CallerHungUp);
    }

    /// An ACK for a 2xx we sent: that side is confirmed. The other side was acknowledged
    /// when it answered, so nothing is forwarded, except the answer an ACK carries to an offer
    /// made in a 2xx (offerless re-INVITE, RFC 3261 §14.1).
    pub fn handle_ack(&mut self, txl: &mut TxLayer, now: Instant, req: &Request) -> bool {
        let Some((call_ref, side)) = self.dialog_of(req) else {
            return false;
        };
        self.ack_received(txl, now, call_ref, side, req);
        true
    }

    /// A request inside a dialog (To tag present). Returns false when no call has the dialog,
    /// so the driver can answer 481.
    pub fn handle_in_dialog(
        &mut self,
        txl: &mut TxLayer,
        now: Instant,
        tx: TxId,
        req: &Request,
    ) -> bool {
        let Some((call_ref, side)) = self.dialog_of(req) else {
            return false;
        };
        match req.method {
            Method::Bye => {
                if self.bye_during_transfer(txl, now, tx, req, call_ref, side) {
                    return true;
                }
                let Some(call) = self.calls.get_mut(&call_ref) else {
                    return false;
                };
                let tag = match side {
                    Side::Caller => call.caller.dialog.local_tag.clone(),
                    Side::Callee(i) => call.branches[i].dialog.local_tag.clone(),
                };
                txl.respond(
                    now,
                    tx,
                    Response::for_request(req, StatusCode::OK, Some(&tag)),
                );
                let other = match side {
                    Side::Caller => call.winner.map(|w| &mut call.branches[w].dialog),
                    Side::Callee(_) => Some(&mut call.caller.dialog),
                };
                if let Some(dialog) = other {
                    let branch = txl.new_branch();
                    let bye = dialog.request(Method::Bye, &branch, None);
                    txl.send_request(now, bye, dialog.path);
                }
                let reason = if side == Side::Caller {
                    EndReason::CallerHungUp
                } else {
                    EndReason::CalleeHungUp
                };
                self.end(now, call_ref, reason);
            }
            _ => self.pass_in_dialog(txl, now, tx, req, call_ref, side),
        }
        true
    }

    /// The relay saw no media on `call` for too long: both sides get a BYE with a Reason
    /// header (RFC 3326) saying so, a call still ringing is cancelled and refused, and the
    /// channels go back to the pool. Returns false for an unknown call.
    pub fn handle_media_timeout(
        &mut self,
        txl: &mut TxLayer,
        now: Instant,
        call_ref: CallRef,
        why: &str,
    ) -> bool {
        self.abort_transfer(txl, now, call_ref);
        let Some(call) = self.calls.get_mut(&call_ref) else {
            return false;
        };
        let reason = format!("SIP;cause=408;text=\"{}\"", why.replace(['"', '\\'], "'"));
        match call.winner {
            Some(w) => {
                for dialog in [&mut call.caller.dialog, &mut call.branches[w].dialog] {
                    let branch = txl.new_branch();
                    let mut bye = dialog.request(Method::Bye, &branch, None);
                    bye.headers
                        .push(HeaderName::Other("Reason".into()), reason.clone());
                    txl.send_request(now, bye, dialog.path);
                }
            }
            None => {
                if !call.caller.answered {
                    call.caller.answered = true;
                    let mut r = call.caller.response(StatusCode::SERVICE_UNAVAILABLE, None);
                    r.headers.push(HeaderName::Other("Reason".into()), reason);
                    txl.respond(now, call.caller.invite_tx, r);
                }
                for b in call.branches.iter_mut() {
                    if matches!(b.state, BranchState::Calling | BranchState::Proceeding) {
                        b.state = BranchState::Done;
                        txl.send_request(now, b.cancel(), b.dialog.path);
                    }
                }
            }
        }
        self.end(now, call_ref, EndReason::MediaTimeout);
        true
    }

    fn dialog_of(&self, req: &Request) -> Option<(CallRef, Side)> {
        let call_id = req.call_id()?.to_string();
        let our_tag = req.to()?.tag()?;
        self.by_dialog.get(&(call_id, our_tag)).copied()
    }

    fn finish_if_all_failed(&mut self, txl: &mut TxLayer, now: Instant, call_ref: CallRef) {
        let Some(call) = self.calls.get_mut(&call_ref) else {
            return;
        };
        if call.winner.is_some() || call.branches.iter().any(|b| b.state != BranchState::Done) {
            return;
        }
        if !call.caller.answered && self.forward_on_busy(txl, now, call_ref) {
            return;
        }
        let Some(call) = self.calls.get_mut(&call_ref) else {
            return;
        };
        let status = call.failure.unwrap_or(StatusCode::TEMPORARILY_UNAVAILABLE);
        if !call.caller.answered {
            call.caller.answered = true;
            let mut r = call.caller.response(status, None);
            if let Some(w) = &call.failure_warning {
                r.headers.push(HeaderName::Warning, warning(w));
            }
            txl.respond(now, call.caller.invite_tx, r);
        }
        self.end(now, call_ref, EndReason::Failed(status));
    }

    fn end(&mut self, now: Instant, call_ref: CallRef, reason: EndReason) {
        let Some(call) = self.calls.remove(&call_ref) else {
            return;
        };
        if call.media.anchored() {
            self.relay.release_call(now, call_ref);
        }
        if let Some(at) = call.forward.as_ref().and_then(|f| f.no_answer_at) {
            self.forward_timers.remove(&(at, call_ref));
        }
        self.by_tx.remove(&call.caller.invite_tx);
        self.by_dialog.remove(&(
            call.caller.dialog.call_id.clone(),
            call.caller.dialog.local_tag.clone(),
        ));
        for b in &call.branches {
            self.by_tx.remove(&b.invite_tx);
            self.by_dialog
                .remove(&(b.dialog.call_id.clone(), b.dialog.local_tag.clone()));
        }
        self.forget_call(call_ref);
        self.events.push_back(CallEvent::Ended {
            call: call_ref,
            reason,
        });
    }

    fn token(&mut self) -> String {
        format!("{:016x}", self.rng.gen::<u64>())
    }
}

/// A Warning header value (RFC 3261 §20.43) with homeline as the agent.
fn warning(why: &str) -> String {
    format!("399 homeline \"{}\"", why.replace(['"', '\\'], "'"))
}

/// Which failure the caller hears when every fork failed (RFC 3261 §16.7 step 6, simplified):
/// a 6xx wins, then 486 Busy Here, then any other 4xx except 408, then 5xx, then 408.
fn better_failure(current: Option<StatusCode>, new: StatusCode) -> StatusCode {
    let rank = |s: StatusCode| match s.as_u16() {
        600..=699 => 0,
        486 => 1,
        408 => 4,
        400..=499 => 2,
        500..=599 => 3,
        _ => 5,
    };
    match current {
        Some(c) if rank(c) <= rank(new) => c,
        _ => new,
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests pick an arbitrary origin for virtual time
mod tests;

/// A borrowed view of an owned body, as the response builders take it.
fn with(b: &Option<(String, bytes::Bytes)>) -> Option<(&str, bytes::Bytes)> {
    b.as_ref().map(|(ct, b)| (ct.as_str(), b.clone()))
}
