//! Attended transfer (RFC 5589 §7: REFER with Replaces, RFC 3891) through a real transaction
//! layer. The remote phone 2001 talks to office phone B (call 1), consults office phone C
//! (call 2), then transfers B to C.

use policy::Zone;
use sip::{HeaderAccess, HeaderName, Message, Method, Response, StatusCode};

use super::dialog::{establish, parse_req, response_to, sdp_reply, text, Peer, Up, TARGET_SDP};
use super::{path, request_to, statuses_to, Rig, CALLEE_SDP, CALLER_SDP};
use crate::b2bua::CallEvent;

/// Call 1 up, then the consultation call from the same remote phone to C, answered.
/// Returns call 1's peers, the referrer's and C's view of call 2.
fn consult(rig: &mut Rig) -> (Up, Peer, Peer) {
    let up = establish(rig);
    let c = path("192.168.1.40:5060", Zone::Internal);
    rig.b = vec![c];
    let sdp = CALLER_SDP;
    let inv = parse_req(&format!(
        "INVITE sip:2002@203.0.113.10 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.20:5060;branch=z9hG4bKconsult1;rport\r\nMax-Forwards: 70\r\nFrom: <sip:2001@203.0.113.10>;tag=alice2\r\nTo: <sip:2002@203.0.113.10>\r\nCall-ID: consult@10.0.0.20\r\nCSeq: 1 INVITE\r\nContact: <sip:2001@10.0.0.20:5060>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    ));
    rig.feed(up.a.path, Message::Request(inv));
    let c_invite = request_to(&rig.sent(), c, Method::Invite);
    rig.feed(
        c,
        Message::Response(sdp_reply(&c_invite, 200, "carol", TARGET_SDP)),
    );
    let out = rig.sent();
    let ok = response_to(&out, up.a.path, 200);
    request_to(&out, c, Method::Ack);
    let a2 = Peer {
        path: up.a.path,
        call_id: "consult@10.0.0.20".into(),
        me: "<sip:2001@203.0.113.10>;tag=alice2".into(),
        them: format!(
            "<sip:2002@203.0.113.10>;tag={}",
            ok.to().unwrap().tag().unwrap()
        ),
        uri: "sip:homeline@192.168.1.10:5060".into(),
        host: "10.0.0.20:5060".into(),
        cseq: 1,
    };
    rig.feed(up.a.path, Message::Request(a2.ack(1, None)));
    rig.sent();
    let cp = Peer {
        path: c,
        call_id: c_invite.call_id().unwrap().to_string(),
        me: format!(
            "{};tag=carol",
            c_invite.headers.get(&HeaderName::To).unwrap()
        ),
        them: c_invite.headers.get(&HeaderName::From).unwrap().to_string(),
        uri: "sip:homeline@192.168.1.10:5060".into(),
        host: "192.168.1.40:5060".into(),
        cseq: 0,
    };
    while rig.b2b.poll_event().is_some() {}
    (up, a2, cp)
}

/// The Refer-To of an attended transfer naming the referrer's dialog `d` (RFC 3891 §6.1:
/// to-tag and from-tag as the target of an INVITE with Replaces would see them).
fn refer_to(d: &Peer) -> String {
    let tag = |v: &str| v.rsplit_once("tag=").unwrap().1.to_string();
    format!(
        "Refer-To: <sip:2002@203.0.113.10?Replaces={}%3Bto-tag%3D{}%3Bfrom-tag%3D{}>\r\n",
        d.call_id.replace('@', "%40"),
        tag(&d.them),
        tag(&d.me)
    )
}

#[test]
fn rfc5589_7_attended_transfer_joins_transferee_and_target() {
    let mut rig = Rig::new(1);
    let (mut up, a2, mut cp) = consult(&mut rig);
    let refer = up.a.request("REFER", &refer_to(&a2), None);
    rig.feed(up.a.path, Message::Request(refer));
    let out = rig.sent();
    assert_eq!(statuses_to(&out, up.a.path), [202]);
    let n = request_to(&out, up.a.path, Method::Notify);
    assert_eq!(&n.body[..], b"SIP/2.0 100 Trying\r\n");
    // No new call to the target: its dialog of the consultation call is re-INVITEd, offerless.
    let c_reinvite = request_to(&out, cp.path, Method::Invite);
    assert_eq!(c_reinvite.call_id().unwrap().to_string(), cp.call_id);
    assert!(c_reinvite.body.is_empty(), "the target offers");
    assert_eq!(c_reinvite.cseq().unwrap().seq, 2);

    rig.feed(
        cp.path,
        Message::Response(sdp_reply(&c_reinvite, 200, "carol", TARGET_SDP)),
    );
    let out = rig.sent();
    let b_reinvite = request_to(&out, up.b.path, Method::Invite);
    assert_eq!(b_reinvite.call_id().unwrap().to_string(), up.b.call_id);
    let offer = text(&b_reinvite);
    assert!(offer.contains("m=audio"), "{offer}");
    assert!(
        out.iter().all(|(to, _)| *to != cp.path),
        "the target's ACK waits for the transferee's answer"
    );
    let mut ok = Response::for_request(&b_reinvite, StatusCode::OK, Some("bob")).with_body(
        "application/sdp",
        bytes::Bytes::from_static(CALLEE_SDP.as_bytes()),
    );
    ok.headers
        .push(HeaderName::Contact, "<sip:2002@192.168.1.30>");
    rig.feed(up.b.path, Message::Response(ok));
    let out = rig.sent();
    request_to(&out, up.b.path, Method::Ack);
    let c_ack = request_to(&out, cp.path, Method::Ack);
    assert_eq!(c_ack.cseq().unwrap().seq, 2);
    assert!(
        text(&c_ack).contains("m=audio"),
        "the answer travels in the ACK"
    );
    // The referrer hears 200 and leaves both calls; the target gets no BYE.
    let notifies: Vec<_> = out
        .iter()
        .filter_map(|(to, m)| match m {
            Message::Request(r) if *to == up.a.path && r.method == Method::Notify => Some(r),
            _ => None,
        })
        .collect();
    assert_eq!(notifies.len(), 1);
    assert_eq!(&notifies[0].body[..], b"SIP/2.0 200 OK\r\n");
    let byes: Vec<String> = out
        .iter()
        .filter_map(|(to, m)| match m {
            Message::Request(r) if r.method == Method::Bye => {
                assert_eq!(*to, up.a.path, "only the referrer is hung up");
                Some(r.call_id().unwrap().to_string())
            }
            _ => None,
        })
        .collect();
    assert_eq!(byes.len(), 2, "{byes:?}");
    assert!(byes.contains(&up.a.call_id) && byes.contains(&a2.call_id));
    assert!(std::iter::from_fn(|| rig.b2b.poll_event())
        .any(|e| matches!(e, CallEvent::Transferred { .. })));

    // B and C now talk to each other: C's BYE reaches B and ends the one call left.
    rig.feed(cp.path, Message::Request(cp.request("BYE", "", None)));
    let out = rig.sent();
    assert_eq!(statuses_to(&out, cp.path), [200]);
    let b_bye = request_to(&out, up.b.path, Method::Bye);
    assert_eq!(b_bye.call_id().unwrap().to_string(), up.b.call_id);
    assert!(rig.b2b.is_empty());
}

#[test]
fn rfc3891_3_replaces_naming_no_dialog_of_the_referrer_gets_481() {
    let mut rig = Rig::new(1);
    let (mut up, mut a2, _cp) = consult(&mut rig);
    let mut wrong = a2.clone();
    wrong.call_id = "someone-else@10.0.0.99".into();
    let refer = up.a.request("REFER", &refer_to(&wrong), None);
    rig.feed(up.a.path, Message::Request(refer));
    let out = rig.sent();
    assert_eq!(statuses_to(&out, up.a.path), [481]);
    assert!(out
        .iter()
        .all(|(_, m)| !matches!(m, Message::Request(r) if r.method == Method::Invite)));
    // Both calls are untouched: the consultation call still hangs up normally.
    rig.feed(a2.path, Message::Request(a2.request("BYE", "", None)));
    assert_eq!(statuses_to(&rig.sent(), a2.path), [200]);
}

#[test]
fn rfc5589_7_target_refusing_keeps_both_calls_with_the_next_cseq() {
    let mut rig = Rig::new(1);
    let (mut up, mut a2, cp) = consult(&mut rig);
    let refer = up.a.request("REFER", &refer_to(&a2), None);
    rig.feed(up.a.path, Message::Request(refer));
    let c_reinvite = request_to(&rig.sent(), cp.path, Method::Invite);
    let refusal = Response::for_request(&c_reinvite, StatusCode::new(488).unwrap(), Some("carol"));
    rig.feed(cp.path, Message::Response(refusal));
    let out = rig.sent();
    request_to(&out, cp.path, Method::Ack);
    let n = request_to(&out, up.a.path, Method::Notify);
    assert!(text(&n).contains("SIP/2.0 488"), "{}", text(&n));
    assert!(out
        .iter()
        .all(|(_, m)| !matches!(m, Message::Request(r) if r.method == Method::Bye)));
    // The consultation call goes on; our next request to C uses a CSeq above the re-INVITE's.
    rig.feed(a2.path, Message::Request(a2.request("BYE", "", None)));
    let out = rig.sent();
    let c_bye = request_to(&out, cp.path, Method::Bye);
    assert!(c_bye.cseq().unwrap().seq > c_reinvite.cseq().unwrap().seq);
}

#[test]
fn rfc5589_7_late_answer_after_an_aborted_transfer_ends_the_consultation_call_for_both() {
    let mut rig = Rig::new(1);
    let (mut up, a2, cp) = consult(&mut rig);
    let refer = up.a.request("REFER", &refer_to(&a2), None);
    rig.feed(up.a.path, Message::Request(refer));
    let c_reinvite = request_to(&rig.sent(), cp.path, Method::Invite);
    // The transferee hangs up while the target is still deciding: the transfer is over.
    rig.feed(up.b.path, Message::Request(up.b.request("BYE", "", None)));
    rig.sent();
    while rig.b2b.poll_event().is_some() {}
    // The target's answer crossed the CANCEL: it is hung up, and so is the referrer's side of
    // the consultation call, which would otherwise be left with nobody on the line.
    rig.feed(
        cp.path,
        Message::Response(sdp_reply(&c_reinvite, 200, "carol", TARGET_SDP)),
    );
    let out = rig.sent();
    request_to(&out, cp.path, Method::Ack);
    let c_bye = request_to(&out, cp.path, Method::Bye);
    assert_eq!(c_bye.call_id(), c_reinvite.call_id());
    let a2_bye = out.iter().find_map(|(p, m)| match m {
        Message::Request(r)
            if *p == a2.path && r.method == Method::Bye && r.call_id() == Some(&a2.call_id) =>
        {
            Some(r)
        }
        _ => None,
    });
    assert!(
        a2_bye.is_some(),
        "the referrer's consultation leg got no BYE"
    );
    let ended = std::iter::from_fn(|| rig.b2b.poll_event())
        .filter(|e| matches!(e, CallEvent::Ended { .. }))
        .count();
    assert_eq!(ended, 1, "the consultation call ends");
}
