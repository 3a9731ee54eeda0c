//! Attended (consultative) transfer: REFER whose Refer-To carries `Replaces` (RFC 5589 §7,
//! RFC 3891).
//!
//! The referrer holds two calls through homeline: the one it transfers (with the transferee)
//! and a consultation call (with the target), and asks the transferee to "replace" the
//! consultation dialog. As a B2BUA homeline does that itself, without a new INVITE to anyone:
//! the target's dialog of the consultation call is re-INVITEd without an offer, its offer goes
//! to the transferee in a re-INVITE and the transferee's answer back in our ACK (the same path
//! as a blind transfer's answered fork, [`super::transfer`]); then the target's dialog takes the
//! referrer's place, the referrer hears NOTIFY 200 and gets a BYE on both calls, and the
//! consultation call ends without a BYE to the target. A failure leaves both calls as they
//! were (unless the target had already answered our re-INVITE) and tells the referrer why.

use std::time::Instant;

use policy::Zone;
use sip::{HeaderName, Method, Request, StatusCode, Uri};
use sip_proto::tx::{TxId, TxLayer};

use super::in_dialog::{Pending, ALLOW};
use super::leg::{BranchState, CalleeBranch};
use super::media::MediaLeg;
use super::transfer::{accept_refer, hung_up, refer_reply, send_bye, Stage, Transfer};
use super::{B2bua, CallRef};

/// The dialog a `Replaces` names (RFC 3891 §6.1): Call-ID and both tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Replaces {
    call_id: String,
    to_tag: String,
    from_tag: String,
}

impl Replaces {
    /// The `Replaces` header embedded in a Refer-To URI (`?Replaces=<escaped value>`, RFC 3891
    /// §6.1 and RFC 3261 §19.1.1 headers), if any. `Err` when it is there but unreadable.
    pub(super) fn from_refer_to(uri: &Uri) -> Option<Result<Replaces, &'static str>> {
        let headers = uri.as_sip()?.headers.as_deref()?;
        let value = headers.split('&').find_map(|h| {
            let (name, value) = h.split_once('=')?;
            name.trim()
                .eq_ignore_ascii_case("replaces")
                .then(|| String::from_utf8_lossy(&sip::text::percent_decode(value)).into_owned())
        })?;
        Some(Replaces::parse(&value))
    }

    fn parse(value: &str) -> Result<Replaces, &'static str> {
        let mut parts = value.split(';');
        let call_id = parts.next().map(str::trim).filter(|c| !c.is_empty());
        let (mut to_tag, mut from_tag) = (None, None);
        for p in parts {
            match p.split_once('=') {
                Some((n, v)) if n.trim().eq_ignore_ascii_case("to-tag") => {
                    to_tag = Some(v.trim().to_owned())
                }
                Some((n, v)) if n.trim().eq_ignore_ascii_case("from-tag") => {
                    from_tag = Some(v.trim().to_owned())
                }
                _ => {}
            }
        }
        match (call_id, to_tag, from_tag) {
            (Some(c), Some(t), Some(f)) => Ok(Replaces {
                call_id: c.to_owned(),
                to_tag: t,
                from_tag: f,
            }),
            _ => Err("Replaces needs a Call-ID, to-tag and from-tag"),
        }
    }
}

/// The consultation call of an attended transfer.
#[derive(Debug, Clone, Copy)]
pub(super) struct Consult {
    /// The consultation call.
    pub(super) call: CallRef,
    /// The referrer's leg in it (the target is on the other one).
    pub(super) referrer: MediaLeg,
}

impl B2bua {
    /// REFER with Replaces from `referrer`'s side of `call_ref` (already checked to be
    /// settled by [`B2bua::handle_refer`], whose dialog tag `tag` is).
    #[allow(clippy::too_many_arguments)] // one request and where it belongs
    pub(super) fn attended_transfer(
        &mut self,
        txl: &mut TxLayer,
        now: Instant,
        tx: TxId,
        req: &Request,
        tag: &str,
        call_ref: CallRef,
        referrer: MediaLeg,
        replaces: Result<Replaces, &'static str>,
    ) {
        let Some(call) = self.calls.get(&call_ref) else {
            return;
        };
        let reply = |status: StatusCode, why: Option<&str>| refer_reply(req, tag, status, why);
        let replaces = match replaces {
            Ok(r) => r,
            Err(why) => {
                txl.respond(now, tx, reply(StatusCode::BAD_REQUEST, Some(why)));
                return;
            }
        };
        let station = call.ext.station(referrer).to_owned();
        // The dialog is the referrer's own with homeline: our tag is one of the two, whichever
        // way round the phone wrote them.
        let found = [&replaces.to_tag, &replaces.from_tag]
            .into_iter()
            .find_map(|t| {
                self.by_dialog
                    .get(&(replaces.call_id.clone(), t.clone()))
                    .copied()
            })
            .filter(|(c, _)| *c != call_ref);
        // Only a call the referring station is in can be joined: a guessed Call-ID and tags
        // of somebody else's call get the same answer as a call that does not exist.
        let consult = found.and_then(|(c, s)| {
            let call = self.calls.get(&c)?;
            let leg = call.leg_of(s)?;
            (call.ext.station(leg) == station).then_some((c, leg))
        });
        let Some((consult_ref, consult_referrer)) = consult else {
            let why = "Replaces names no call of this station";
            txl.respond(now, tx, reply(StatusCode::CALL_DOES_NOT_EXIST, Some(why)));
            return;
        };
        let target_leg = consult_referrer.other();
        let Some(consult_call) = self.calls.get_mut(&consult_ref) else {
            return;
        };
        if !consult_call.settled() {
            let why = "the consultation call is changing; try again";
            txl.respond(
                now,
                tx,
                reply(super::in_dialog::request_pending(), Some(why)),
            );
            return;
        }
        let Some(mut dialog) = consult_call.dialog(target_leg).cloned() else {
            return;
        };
        let target = consult_call.ext.station(target_leg).to_owned();
        // The consultation call stays as it is until the transfer is done or has failed.
        consult_call.ext.offer = Some(target_leg);

        let Some(call) = self.calls.get_mut(&call_ref) else {
            return;
        };
        let leg_media = match referrer {
            MediaLeg::Caller => &mut call.media.caller,
            MediaLeg::Callee => &mut call.media.callee,
        };
        let mut allocated = false;
        if leg_media.port.is_none() && dialog.path.zone == Zone::External {
            // The target crosses the Internet where the referrer did not.
            match self.relay.allocate(now, call_ref, referrer) {
                Ok(port) => {
                    leg_media.port = Some(port);
                    allocated = true;
                }
                Err(hit) => {
                    if let Some(c) = self.calls.get_mut(&consult_ref) {
                        c.ext.offer = None;
                    }
                    let why = hit.to_string();
                    txl.respond(now, tx, reply(StatusCode::SERVICE_UNAVAILABLE, Some(&why)));
                    return;
                }
            }
        }
        let Some(referrer_dialog) = call.dialog_mut(referrer) else {
            return;
        };
        let ok = reply(StatusCode::ACCEPTED, None);
        accept_refer(txl, now, tx, ok, referrer_dialog, &mut self.ext.pending);

        // An offerless re-INVITE: the target offers, the transferee answers (RFC 3261 §14.1).
        let branch = txl.new_branch();
        let mut invite = dialog.request(Method::Invite, &branch, None);
        invite.headers.push(HeaderName::Allow, ALLOW);
        let itx = txl.send_request(now, invite.clone(), dialog.path);
        self.ext.pending.insert(
            itx,
            Pending::TransferFork {
                call: call_ref,
                fork: 0,
                dialog: Box::new(dialog.clone()),
            },
        );
        let mut transfer = Transfer::new(referrer, target);
        transfer.forks.push(CalleeBranch {
            invite_tx: itx,
            invite,
            dialog,
            state: BranchState::Calling,
        });
        transfer.stage = Stage::Ringing;
        transfer.allocated = allocated;
        transfer.consult = Some(Consult {
            call: consult_ref,
            referrer: consult_referrer,
        });
        if let Some(call) = self.calls.get_mut(&call_ref) {
            call.ext.transfer = Some(transfer);
        }
    }

    /// The transfer is done: the referrer's leg of the consultation call gets a BYE and the
    /// call ends, without a BYE to the target, whose dialog now belongs to `joined`.
    pub(super) fn finish_consult(
        &mut self,
        txl: &mut TxLayer,
        now: Instant,
        consult: Consult,
        joined: CallRef,
    ) {
        let Some(call) = self.calls.get_mut(&consult.call) else {
            return;
        };
        let target_key = call
            .dialog(consult.referrer.other())
            .map(|d| (d.call_id.clone(), d.local_tag.clone()));
        let target_side = target_key
            .as_ref()
            .and_then(|k| self.by_dialog.get(k).copied())
            .filter(|(j, _)| *j == joined);
        let Some(call) = self.calls.get_mut(&consult.call) else {
            return;
        };
        if let Some(d) = call.dialog_mut(consult.referrer) {
            send_bye(txl, now, d, &mut self.ext.pending);
        }
        self.end(now, consult.call, hung_up(consult.referrer));
        // end() forgets both dialogs of the consultation call; the target's lives on.
        if let (Some(k), Some(v)) = (target_key, target_side) {
            self.by_dialog.insert(k, v);
        }
    }

    /// The transfer failed: the consultation call carries on, its dialog with the target one
    /// CSeq further (our re-INVITE used one) — or, when the target had answered our re-INVITE
    /// and was hung up, it ends for the referrer too.
    pub(super) fn release_consult(
        &mut self,
        txl: &mut TxLayer,
        now: Instant,
        consult: Consult,
        fork: Option<&CalleeBranch>,
        target_hung_up: bool,
    ) {
        let Some(call) = self.calls.get_mut(&consult.call) else {
            return;
        };
        call.ext.offer = None;
        if let (Some(d), Some(f)) = (call.dialog_mut(consult.referrer.other()), fork) {
            d.local_cseq = d.local_cseq.max(f.dialog.local_cseq);
        }
        if !target_hung_up {
            return;
        }
        if let Some(d) = call.dialog_mut(consult.referrer) {
            send_bye(txl, now, d, &mut self.ext.pending);
        }
        self.end(now, consult.call, hung_up(consult.referrer.other()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3891_6_1_replaces_in_a_refer_to_uri() {
        let uri = Uri::parse(
            "sip:2003@203.0.113.10?Replaces=abc%40h%3Bto-tag%3D7%3Bfrom-tag%3D9&Require=replaces",
        )
        .unwrap();
        let r = Replaces::from_refer_to(&uri).unwrap().unwrap();
        assert_eq!(
            r,
            Replaces {
                call_id: "abc@h".into(),
                to_tag: "7".into(),
                from_tag: "9".into()
            }
        );
        let plain = Uri::parse("sip:2003@203.0.113.10").unwrap();
        assert!(Replaces::from_refer_to(&plain).is_none());
        let broken = Uri::parse("sip:2003@h?Replaces=abc%3Bto-tag%3D7").unwrap();
        assert!(Replaces::from_refer_to(&broken).unwrap().is_err());
    }
}
