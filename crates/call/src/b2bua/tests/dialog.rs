//! Mid-call requests, reliable provisionals, session timers and blind transfer, bytes in and
//! out through a real transaction layer. The caller is a remote phone (anchored in the relay),
//! the callee an office phone.

use std::time::Duration;

use policy::Zone;
use sip::{
    parse_datagram, HeaderAccess, HeaderName, Message, Method, Request, Response, StatusCode,
};
use sip_proto::path::Path;

use super::{invite, path, reply, request_to, statuses_to, Rig, CALLEE_SDP, CALLER_SDP};
use crate::b2bua::{CallEvent, EndReason, Target};

/// A request as a device writes it.
pub(super) fn parse_req(text: &str) -> Request {
    let Ok(Message::Request(r)) = parse_datagram(text.as_bytes(), 65535) else {
        panic!("unparsable {text}")
    };
    r
}

/// One side's view of its dialog with homeline.
#[derive(Clone)]
pub(super) struct Peer {
    pub(super) path: Path,
    pub(super) call_id: String,
    /// The device's From (its URI and tag).
    pub(super) me: String,
    /// The device's To (homeline's URI and tag).
    pub(super) them: String,
    /// Where in-dialog requests go: homeline's Contact.
    pub(super) uri: String,
    pub(super) host: String,
    pub(super) cseq: u32,
}

impl Peer {
    pub(super) fn request(
        &mut self,
        method: &str,
        extra: &str,
        body: Option<(&str, &str)>,
    ) -> Request {
        self.cseq += 1;
        let (ct, body) = match body {
            Some((ct, b)) => (format!("Content-Type: {ct}\r\n"), b.to_string()),
            None => (String::new(), String::new()),
        };
        parse_req(&format!(
            "{method} {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {host};branch=z9hG4bK{m}{cseq}{tag};rport\r\nMax-Forwards: 70\r\nFrom: {me}\r\nTo: {them}\r\nCall-ID: {cid}\r\nCSeq: {cseq} {method}\r\nContact: <sip:dev@{host}>\r\n{extra}{ct}Content-Length: {len}\r\n\r\n{body}",
            uri = self.uri,
            host = self.host,
            m = method.to_lowercase(),
            cseq = self.cseq,
            tag = self.path.remote.port(),
            me = self.me,
            them = self.them,
            cid = self.call_id,
            len = body.len(),
        ))
    }

    /// The ACK for our INVITE with CSeq `cseq`, carrying `body` if any.
    pub(super) fn ack(&self, cseq: u32, body: Option<&str>) -> Request {
        let (ct, body) = match body {
            Some(b) => (
                "Content-Type: application/sdp\r\n".to_string(),
                b.to_string(),
            ),
            None => (String::new(), String::new()),
        };
        parse_req(&format!(
            "ACK {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {host};branch=z9hG4bKack{cseq}x{port};rport\r\nMax-Forwards: 70\r\nFrom: {me}\r\nTo: {them}\r\nCall-ID: {cid}\r\nCSeq: {cseq} ACK\r\n{ct}Content-Length: {len}\r\n\r\n{body}",
            uri = self.uri,
            host = self.host,
            port = self.path.remote.port(),
            me = self.me,
            them = self.them,
            cid = self.call_id,
            len = body.len(),
        ))
    }
}

pub(super) fn sdp_reply(req: &Request, status: u16, tag: &str, sdp: &str) -> Response {
    let contact = if tag == "carol" {
        "<sip:2003@192.168.1.40>"
    } else {
        "<sip:2002@192.168.1.30>"
    };
    reply(req, status, tag, contact, false)
        .with_body("application/sdp", bytes::Bytes::from(sdp.to_string()))
}

pub(super) fn response_to(sent: &[(Path, Message)], p: Path, status: u16) -> Response {
    sent.iter()
        .find_map(|(to, m)| match m {
            Message::Response(r) if *to == p && r.status.as_u16() == status => Some(r.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no {status} to {p:?} in {sent:#?}"))
}

pub(super) fn text(m: &impl ToBytes) -> String {
    String::from_utf8(m.bytes()).unwrap()
}

pub(super) trait ToBytes {
    fn bytes(&self) -> Vec<u8>;
}
impl ToBytes for Request {
    fn bytes(&self) -> Vec<u8> {
        self.to_bytes()
    }
}
impl ToBytes for Response {
    fn bytes(&self) -> Vec<u8> {
        self.to_bytes()
    }
}

/// A call set up through the rig: caller (remote) and callee (office) dialogs.
pub(super) struct Up {
    pub(super) a: Peer,
    pub(super) b: Peer,
}

/// INVITE (with `extra` headers) → 200 with `answer_extra` → ACK.
fn establish_with(rig: &mut Rig, extra: &str, answer_extra: &[(&str, &str)]) -> Up {
    let (a, b) = (rig.a, rig.b[0]);
    let mut inv = invite();
    for line in extra.split("\r\n").filter(|l| !l.is_empty()) {
        let (n, v) = line.split_once(": ").unwrap();
        inv.headers.push(HeaderName::from_wire(n), v.to_string());
    }
    rig.feed(a, Message::Request(inv));
    let b_invite = request_to(&rig.sent(), b, Method::Invite);
    let mut ok = reply(&b_invite, 200, "bob", "<sip:2002@192.168.1.30>", true);
    for (n, v) in answer_extra {
        ok.headers.push(HeaderName::from_wire(n), v.to_string());
    }
    rig.feed(b, Message::Response(ok));
    let out = rig.sent();
    let a_ok = response_to(&out, a, 200);
    let a_tag = a_ok.to().unwrap().tag().unwrap();
    let a_peer = Peer {
        path: a,
        call_id: "secret-call-id@10.0.0.20".into(),
        me: "\"Alice\" <sip:2001@203.0.113.10>;tag=alice".into(),
        them: format!("<sip:2002@203.0.113.10>;tag={a_tag}"),
        uri: "sip:homeline@192.168.1.10:5060".into(),
        host: "10.0.0.20:5060".into(),
        cseq: 1,
    };
    rig.feed(a, Message::Request(a_peer.ack(1, None)));
    rig.sent();
    let b_peer = Peer {
        path: b,
        call_id: b_invite.call_id().unwrap().to_string(),
        me: format!("{};tag=bob", b_invite.headers.get(&HeaderName::To).unwrap()),
        them: b_invite.headers.get(&HeaderName::From).unwrap().to_string(),
        uri: "sip:homeline@192.168.1.10:5060".into(),
        host: "192.168.1.30:5060".into(),
        cseq: 0,
    };
    while rig.b2b.poll_event().is_some() {}
    Up {
        a: a_peer,
        b: b_peer,
    }
}

pub(super) fn establish(rig: &mut Rig) -> Up {
    establish_with(rig, "", &[])
}

const HELD_SDP: &str = "v=0\r\no=alice 1 2 IN IP4 10.0.0.20\r\ns=-\r\nc=IN IP4 10.0.0.20\r\nt=0 0\r\nm=audio 4000 RTP/AVP 8 0 101\r\na=rtpmap:101 telephone-event/8000\r\na=sendonly\r\n";
const HELD_ANSWER: &str = "v=0\r\no=bob 7 8 IN IP4 192.168.1.30\r\ns=-\r\nc=IN IP4 192.168.1.30\r\nt=0 0\r\nm=audio 6000 RTP/AVP 8 101\r\na=rtpmap:101 telephone-event/8000\r\na=recvonly\r\n";

#[test]
fn rfc3261_14_hold_and_resume_by_reinvite_with_topology_hiding() {
    let mut rig = Rig::new(1);
    let Up { mut a, b: bp } = establish(&mut rig);
    let b = bp.path;

    // Hold: the remote caller sends sendonly.
    let hold = a.request("INVITE", "", Some(("application/sdp", HELD_SDP)));
    rig.feed(a.path, Message::Request(hold));
    let out = rig.sent();
    let b_reinvite = request_to(&out, b, Method::Invite);
    let t = text(&b_reinvite);
    assert!(t.contains("a=sendonly"), "{t}");
    assert!(!t.contains("10.0.0.20"), "caller's address leaked:\n{t}");
    assert!(!t.contains("secret-call-id"), "caller's Call-ID leaked");
    assert_eq!(b_reinvite.call_id(), Some(bp.call_id.as_str()));
    assert_eq!(b_reinvite.uri.to_string(), "sip:2002@192.168.1.30");
    assert_eq!(
        b_reinvite.cseq().unwrap().seq,
        2,
        "second request of our dialog"
    );

    rig.feed(
        b,
        Message::Response(sdp_reply(&b_reinvite, 200, "bob", HELD_ANSWER)),
    );
    let out = rig.sent();
    let ack = request_to(&out, b, Method::Ack);
    assert_eq!(
        ack.cseq().unwrap().seq,
        2,
        "§13.2.2.4: ACK has the INVITE's CSeq"
    );
    let ok = response_to(&out, a.path, 200);
    let t = text(&ok);
    assert!(t.contains("a=recvonly"), "{t}");
    assert!(
        !t.contains("192.168.1.30"),
        "callee's address leaked to the remote caller:\n{t}"
    );
    let ep = crate::sdp::media_endpoint(&crate::sdp::Sdp::parse(&ok.body).unwrap()).unwrap();
    assert_eq!(ep.addr.to_string(), "203.0.113.10");
    assert!(ok.headers.get(&HeaderName::Contact).is_some());
    // The caller's ACK is absorbed: nothing goes to the callee.
    rig.feed(a.path, Message::Request(a.ack(a.cseq, None)));
    assert!(rig.sent().is_empty());

    // Resume.
    let resume = a.request("INVITE", "", Some(("application/sdp", CALLER_SDP)));
    rig.feed(a.path, Message::Request(resume));
    let b_reinvite = request_to(&rig.sent(), b, Method::Invite);
    assert!(text(&b_reinvite).contains("a=sendrecv"));
    rig.feed(
        b,
        Message::Response(sdp_reply(&b_reinvite, 200, "bob", CALLEE_SDP)),
    );
    let out = rig.sent();
    request_to(&out, b, Method::Ack);
    assert!(!text(&response_to(&out, a.path, 200)).contains("192.168.1.30"));
    assert_eq!(rig.b2b.len(), 1);
}

#[test]
fn rfc3261_14_hold_from_office_phone_shows_remote_only_the_relay() {
    let mut rig = Rig::new(1);
    let Up { a, b: mut bp } = establish(&mut rig);
    let held = CALLEE_SDP.replace("o=bob 7 7", "o=bob 7 9") + "a=sendonly\r\n";
    let hold = bp.request("INVITE", "", Some(("application/sdp", &held)));
    rig.feed(bp.path, Message::Request(hold));
    let a_reinvite = request_to(&rig.sent(), a.path, Method::Invite);
    let t = text(&a_reinvite);
    assert!(
        t.contains("a=sendonly") && t.contains("203.0.113.10"),
        "{t}"
    );
    // (The rig's listener is 192.168.1.10 for both zones, so only the SDP is checked for it.)
    let body = String::from_utf8(a_reinvite.body.to_vec()).unwrap();
    assert!(!body.contains("192.168.1.10"), "{body}");
    for secret in ["192.168.1.30", &bp.call_id] {
        assert!(
            !t.contains(secret),
            "{secret} leaked to the remote caller:\n{t}"
        );
    }
    // The remote caller answers from its private address; the office phone sees the relay.
    let answer = CALLER_SDP.replace("a=sendrecv", "a=recvonly");
    let mut ok = Response::for_request(&a_reinvite, StatusCode::OK, None)
        .with_body("application/sdp", bytes::Bytes::from(answer));
    ok.headers
        .push(HeaderName::Contact, "<sip:2001@10.0.0.20:5060>");
    rig.feed(a.path, Message::Response(ok));
    let out = rig.sent();
    request_to(&out, a.path, Method::Ack);
    let t = text(&response_to(&out, bp.path, 200));
    assert!(t.contains("a=recvonly") && !t.contains("10.0.0.20"), "{t}");
}

#[test]
fn rfc3261_14_2_glare_gets_491_and_second_offer_500_with_retry_after() {
    let mut rig = Rig::new(1);
    let Up { mut a, b: mut bp } = establish(&mut rig);
    let first = a.request("INVITE", "", Some(("application/sdp", HELD_SDP)));
    rig.feed(a.path, Message::Request(first));
    let b_reinvite = request_to(&rig.sent(), bp.path, Method::Invite);
    // The office phone's own re-INVITE crosses ours: 491.
    let crossing = bp.request("INVITE", "", Some(("application/sdp", CALLEE_SDP)));
    rig.feed(bp.path, Message::Request(crossing));
    assert_eq!(statuses_to(&rig.sent(), bp.path), [491]);
    // The caller's second offer before its first got an answer: 500 + Retry-After.
    let second = a.request("UPDATE", "", Some(("application/sdp", CALLER_SDP)));
    rig.feed(a.path, Message::Request(second));
    let out = rig.sent();
    let r = response_to(&out, a.path, 500);
    let after: u32 = r
        .headers
        .iter()
        .find(|h| h.name.as_str() == "Retry-After")
        .unwrap()
        .value
        .parse()
        .unwrap();
    assert!(after <= 10);
    // The callee's own 491 travels back to the caller unchanged.
    rig.feed(
        bp.path,
        Message::Response(reply(
            &b_reinvite,
            491,
            "bob",
            "<sip:2002@192.168.1.30>",
            false,
        )),
    );
    assert_eq!(statuses_to(&rig.sent(), a.path), [491]);
    // Once that exchange is over, an offer passes again.
    let again = a.request("INVITE", "", Some(("application/sdp", HELD_SDP)));
    rig.feed(a.path, Message::Request(again));
    request_to(&rig.sent(), bp.path, Method::Invite);
}

#[test]
fn rfc3261_14_2_reinvite_before_other_side_answers_gets_500_retry_after() {
    let mut rig = Rig::new(1);
    let (a, b) = (rig.a, rig.b[0]);
    rig.feed(a, Message::Request(invite()));
    let b_invite = request_to(&rig.sent(), b, Method::Invite);
    rig.bob_answers(b, &b_invite, 180, false);
    rig.sent();
    // The ringing callee sends UPDATE in its early dialog.
    let mut bp = Peer {
        path: b,
        call_id: b_invite.call_id().unwrap().to_string(),
        me: format!("{};tag=bob", b_invite.headers.get(&HeaderName::To).unwrap()),
        them: b_invite.headers.get(&HeaderName::From).unwrap().to_string(),
        uri: "sip:homeline@192.168.1.10:5060".into(),
        host: "192.168.1.30:5060".into(),
        cseq: 0,
    };
    rig.feed(
        b,
        Message::Request(bp.request("UPDATE", "", Some(("application/sdp", CALLEE_SDP)))),
    );
    let r = response_to(&rig.sent(), b, 500);
    assert!(r.headers.iter().any(|h| h.name.as_str() == "Retry-After"));
}

#[test]
fn rfc3261_14_1_offerless_reinvite_carries_answer_in_ack() {
    let mut rig = Rig::new(1);
    let Up { mut a, b: bp } = establish(&mut rig);
    rig.feed(a.path, Message::Request(a.request("INVITE", "", None)));
    let b_reinvite = request_to(&rig.sent(), bp.path, Method::Invite);
    assert!(b_reinvite.body.is_empty());
    rig.feed(
        bp.path,
        Message::Response(sdp_reply(&b_reinvite, 200, "bob", CALLEE_SDP)),
    );
    let out = rig.sent();
    assert!(
        out.iter().all(|(to, _)| *to != bp.path),
        "ACK waits for the answer"
    );
    let ok = response_to(&out, a.path, 200);
    assert!(!text(&ok).contains("192.168.1.30"));
    rig.feed(a.path, Message::Request(a.ack(a.cseq, Some(CALLER_SDP))));
    let ack = request_to(&rig.sent(), bp.path, Method::Ack);
    assert_eq!(ack.cseq().unwrap().seq, b_reinvite.cseq().unwrap().seq);
    let t = text(&ack);
    assert!(t.contains("m=audio") && !t.contains("10.0.0.20"), "{t}");
}

#[test]
fn rfc3311_update_and_rfc6086_info_dtmf_pass_through() {
    let mut rig = Rig::new(1);
    let Up { mut a, b: bp } = establish(&mut rig);
    let dtmf = "Signal=5\r\nDuration=160\r\n";
    rig.feed(
        a.path,
        Message::Request(a.request("INFO", "", Some(("application/dtmf-relay", dtmf)))),
    );
    let info = request_to(&rig.sent(), bp.path, Method::Info);
    assert_eq!(
        info.headers.get(&HeaderName::ContentType),
        Some("application/dtmf-relay")
    );
    assert_eq!(&info.body[..], dtmf.as_bytes());
    rig.feed(
        bp.path,
        Message::Response(reply(&info, 200, "bob", "<sip:2002@192.168.1.30>", false)),
    );
    assert_eq!(statuses_to(&rig.sent(), a.path), [200]);

    rig.feed(
        a.path,
        Message::Request(a.request("UPDATE", "", Some(("application/sdp", HELD_SDP)))),
    );
    let update = request_to(&rig.sent(), bp.path, Method::Update);
    assert!(!text(&update).contains("10.0.0.20"));
    rig.feed(
        bp.path,
        Message::Response(sdp_reply(&update, 200, "bob", HELD_ANSWER)),
    );
    let out = rig.sent();
    assert!(!text(&response_to(&out, a.path, 200)).contains("192.168.1.30"));
    assert!(
        out.iter().all(|(to, _)| *to != bp.path),
        "no ACK for UPDATE"
    );

    rig.feed(
        a.path,
        Message::Request(a.request("SUBSCRIBE", "Event: dialog\r\n", None)),
    );
    assert_eq!(statuses_to(&rig.sent(), a.path), [501]);
}

#[test]
fn rfc3262_reliable_provisional_relayed_with_own_rseq_and_prack_mapped() {
    let mut rig = Rig::new(1);
    let (a, b) = (rig.a, rig.b[0]);
    let mut inv = invite();
    inv.headers.push(HeaderName::Supported, "100rel");
    rig.feed(a, Message::Request(inv));
    let b_invite = request_to(&rig.sent(), b, Method::Invite);
    assert!(b_invite
        .headers
        .values(&HeaderName::Supported)
        .any(|v| v == "100rel"));
    let mut ringing = sdp_reply(&b_invite, 183, "bob", CALLEE_SDP);
    ringing.headers.push(HeaderName::Require, "100rel");
    ringing.headers.push(HeaderName::Other("RSeq".into()), "7");
    rig.feed(b, Message::Response(ringing.clone()));
    let out = rig.sent();
    assert!(
        out.iter().all(|(to, _)| *to != b),
        "no PRACK before the caller's"
    );
    let r183 = response_to(&out, a, 183);
    assert_eq!(r183.headers.get(&HeaderName::Require), Some("100rel"));
    let our_rseq: u32 = r183
        .headers
        .iter()
        .find(|h| h.name.as_str() == "RSeq")
        .unwrap()
        .value
        .parse()
        .unwrap();
    assert!(
        !text(&r183).contains("192.168.1.30"),
        "early media SDP anchored"
    );
    // §3: retransmitted from T1 until PRACKed; the callee's own retransmission is absorbed.
    rig.feed(b, Message::Response(ringing));
    assert!(rig.sent().is_empty());
    rig.advance(Duration::from_millis(500));
    assert_eq!(statuses_to(&rig.sent(), a), [183]);

    let a_tag = r183.to().unwrap().tag().unwrap();
    let mut ap = Peer {
        path: a,
        call_id: "secret-call-id@10.0.0.20".into(),
        me: "\"Alice\" <sip:2001@203.0.113.10>;tag=alice".into(),
        them: format!("<sip:2002@203.0.113.10>;tag={a_tag}"),
        uri: "sip:homeline@192.168.1.10:5060".into(),
        host: "10.0.0.20:5060".into(),
        cseq: 1,
    };
    let prack = ap.request("PRACK", &format!("RAck: {our_rseq} 1 INVITE\r\n"), None);
    rig.feed(a, Message::Request(prack));
    let out = rig.sent();
    let b_prack = request_to(&out, b, Method::Prack);
    let rack = b_prack
        .headers
        .iter()
        .find(|h| h.name.as_str() == "RAck")
        .unwrap()
        .value
        .clone();
    assert_eq!(
        rack, "7 1 INVITE",
        "RAck mapped to the callee's RSeq and CSeq"
    );
    assert!(
        statuses_to(&out, a).is_empty(),
        "answered when the callee answers"
    );
    rig.bob_answers(b, &b_prack, 200, false);
    assert_eq!(statuses_to(&rig.sent(), a), [200]);
    // Acknowledged: no more retransmissions.
    rig.advance(Duration::from_secs(2));
    assert!(statuses_to(&rig.sent(), a).is_empty());
    // A PRACK for an RSeq never sent: 481.
    let stray = ap.request(
        "PRACK",
        &format!("RAck: {} 1 INVITE\r\n", our_rseq + 5),
        None,
    );
    rig.feed(a, Message::Request(stray));
    assert_eq!(statuses_to(&rig.sent(), a), [481]);
}

#[test]
fn rfc3262_caller_without_100rel_gets_unreliable_18x_and_we_prack() {
    let mut rig = Rig::new(1);
    let (a, b) = (rig.a, rig.b[0]);
    rig.feed(a, Message::Request(invite()));
    let b_invite = request_to(&rig.sent(), b, Method::Invite);
    assert!(!b_invite
        .headers
        .values(&HeaderName::Supported)
        .any(|v| v == "100rel"));
    let mut ringing = reply(&b_invite, 180, "bob", "<sip:2002@192.168.1.30>", false);
    ringing.headers.push(HeaderName::Require, "100rel");
    ringing.headers.push(HeaderName::Other("RSeq".into()), "42");
    rig.feed(b, Message::Response(ringing));
    let out = rig.sent();
    let prack = request_to(&out, b, Method::Prack);
    let rack = prack
        .headers
        .iter()
        .find(|h| h.name.as_str() == "RAck")
        .unwrap();
    assert_eq!(rack.value, "42 1 INVITE");
    assert_eq!(
        prack.to().unwrap().tag().as_deref(),
        Some("bob"),
        "in the early dialog"
    );
    let r180 = response_to(&out, a, 180);
    assert!(r180.headers.get(&HeaderName::Require).is_none());
    assert!(!r180.headers.iter().any(|h| h.name.as_str() == "RSeq"));
    rig.feed(
        b,
        Message::Response(reply(&prack, 200, "bob", "<sip:2002@192.168.1.30>", false)),
    );
    assert!(rig.sent().is_empty());
}

#[test]
fn rfc4028_session_timer_negotiated_refreshed_and_expired() {
    let mut rig = Rig::new(1);
    let (a, b) = (rig.a, rig.b[0]);
    rig.feed(
        a,
        Message::Request({
            let mut i = invite();
            i.headers.push(HeaderName::Supported, "timer");
            i.headers.push(HeaderName::SessionExpires, "1800");
            i
        }),
    );
    let b_invite = request_to(&rig.sent(), b, Method::Invite);
    assert_eq!(
        b_invite.headers.get(&HeaderName::SessionExpires),
        Some("1800")
    );
    assert!(b_invite
        .headers
        .values(&HeaderName::Supported)
        .any(|v| v == "timer"));
    assert_eq!(
        b_invite
            .headers
            .iter()
            .find(|h| h.name.as_str() == "Min-SE")
            .unwrap()
            .value,
        "90"
    );
    rig.sent();
    let mut ok = reply(&b_invite, 200, "bob", "<sip:2002@192.168.1.30>", true);
    ok.headers
        .push(HeaderName::SessionExpires, "1800;refresher=uac");
    ok.headers.push(HeaderName::Require, "timer");
    rig.feed(b, Message::Response(ok));
    let out = rig.sent();
    let a_ok = response_to(&out, a, 200);
    assert_eq!(
        a_ok.headers.get(&HeaderName::SessionExpires),
        Some("1800;refresher=uac")
    );
    assert!(a_ok
        .headers
        .values(&HeaderName::Require)
        .any(|v| v == "timer"));
    let a_tag = a_ok.to().unwrap().tag().unwrap();
    let mut ap = Peer {
        path: a,
        call_id: "secret-call-id@10.0.0.20".into(),
        me: "\"Alice\" <sip:2001@203.0.113.10>;tag=alice".into(),
        them: format!("<sip:2002@203.0.113.10>;tag={a_tag}"),
        uri: "sip:homeline@192.168.1.10:5060".into(),
        host: "10.0.0.20:5060".into(),
        cseq: 1,
    };
    rig.feed(a, Message::Request(ap.ack(1, None)));
    rig.sent();
    assert!(rig.b2b.poll_timeout().is_some());

    // The caller refreshes at half time; the refresh is carried and restarts the clock.
    rig.advance(Duration::from_secs(900));
    rig.sent();
    let refresh = ap.request(
        "INVITE",
        "Supported: timer\r\nSession-Expires: 1800;refresher=uac\r\n",
        Some(("application/sdp", CALLER_SDP)),
    );
    rig.feed(a, Message::Request(refresh));
    let b_refresh = request_to(&rig.sent(), b, Method::Invite);
    assert_eq!(
        b_refresh.headers.get(&HeaderName::SessionExpires),
        Some("1800;refresher=uac")
    );
    let mut ok = sdp_reply(&b_refresh, 200, "bob", CALLEE_SDP);
    ok.headers
        .push(HeaderName::SessionExpires, "1800;refresher=uac");
    rig.feed(b, Message::Response(ok));
    rig.sent();
    rig.feed(a, Message::Request(ap.ack(ap.cseq, None)));
    // Without the refresh the call would end at 1768 s; with it, it is still up.
    rig.advance(Duration::from_secs(1700));
    assert_eq!(rig.b2b.len(), 1);
    rig.sent();
    // No second refresh: at 900 + 1768 s both sides get a BYE with a Reason.
    rig.advance(Duration::from_secs(100));
    let out = rig.sent();
    for p in [a, b] {
        let bye = request_to(&out, p, Method::Bye);
        let reason = bye
            .headers
            .iter()
            .find(|h| h.name.as_str() == "Reason")
            .unwrap();
        assert_eq!(reason.value, "SIP;cause=408;text=\"session timer expired\"");
    }
    assert!(rig.b2b.is_empty());
    let mut reasons = std::iter::from_fn(|| rig.b2b.poll_event()).filter_map(|e| match e {
        CallEvent::Ended { reason, .. } => Some(reason),
        _ => None,
    });
    assert_eq!(reasons.next(), Some(EndReason::SessionExpired));
}

#[test]
fn rfc4028_callee_without_timers_makes_caller_refresher() {
    let mut rig = Rig::new(1);
    let up = establish_with(
        &mut rig,
        "Supported: timer\r\nSession-Expires: 600\r\n",
        &[],
    );
    let _ = up;
    // establish_with swallowed the 200; the call is armed for 600 − 32 s.
    let at = rig.b2b.poll_timeout().unwrap();
    assert_eq!(at - rig.now, Duration::from_secs(568));
}

#[test]
fn rfc4028_7_4_422_from_callee_retries_with_its_min_se() {
    let mut rig = Rig::new(1);
    let (a, b) = (rig.a, rig.b[0]);
    rig.feed(a, Message::Request(invite()));
    let b_invite = request_to(&rig.sent(), b, Method::Invite);
    assert_eq!(
        b_invite.headers.get(&HeaderName::SessionExpires),
        Some("1800;refresher=uas"),
        "a caller without timers: the callee refreshes"
    );
    let mut too_small = reply(&b_invite, 422, "bob", "<sip:2002@192.168.1.30>", false);
    too_small
        .headers
        .push(HeaderName::Other("Min-SE".into()), "3600");
    rig.feed(b, Message::Response(too_small));
    let out = rig.sent();
    assert!(
        statuses_to(&out, a).is_empty(),
        "the caller hears nothing of it"
    );
    let retry = out
        .iter()
        .filter_map(|(to, m)| match m {
            Message::Request(r) if *to == b && r.method == Method::Invite => Some(r.clone()),
            _ => None,
        })
        .last()
        .unwrap();
    assert_eq!(
        retry.headers.get(&HeaderName::SessionExpires),
        Some("3600;refresher=uas")
    );
    assert_eq!(retry.cseq().unwrap().seq, 2);
    assert_ne!(
        retry.top_via().unwrap().branch(),
        b_invite.top_via().unwrap().branch()
    );
    rig.feed(
        b,
        Message::Response(reply(&retry, 200, "bob", "<sip:2002@192.168.1.30>", true)),
    );
    assert_eq!(statuses_to(&rig.sent(), a), [200]);
}

#[test]
fn rfc4028_caller_interval_below_min_se_gets_422() {
    let mut rig = Rig::new(1);
    let a = rig.a;
    let mut i = invite();
    i.headers.push(HeaderName::Supported, "timer");
    i.headers.push(HeaderName::SessionExpires, "60");
    rig.feed(a, Message::Request(i));
    let out = rig.sent();
    let r = response_to(&out, a, 422);
    assert_eq!(
        r.headers
            .iter()
            .find(|h| h.name.as_str() == "Min-SE")
            .unwrap()
            .value,
        "90"
    );
    assert!(rig.b2b.is_empty());
}

/// The transfer rig: a remote caller talking to office phone 2002, which transfers it.
fn refer_from_callee(rig: &mut Rig) -> Up {
    refer_to_from_callee(rig, "sip:2003@192.168.1.10")
}

fn refer_to_from_callee(rig: &mut Rig, refer_to: &str) -> Up {
    let mut up = establish(rig);
    let refer =
        up.b.request("REFER", &format!("Refer-To: <{refer_to}>\r\n"), None);
    rig.feed(up.b.path, Message::Request(refer));
    let out = rig.sent();
    assert_eq!(statuses_to(&out, up.b.path), [202]);
    let n = request_to(&out, up.b.path, Method::Notify);
    assert_eq!(&n.body[..], b"SIP/2.0 100 Trying\r\n");
    assert_eq!(n.headers.get(&HeaderName::Event), Some("refer"));
    assert_eq!(
        n.headers.get(&HeaderName::ContentType),
        Some("message/sipfrag;version=2.0")
    );
    rig.feed(
        up.b.path,
        Message::Response(reply(&n, 200, "bob", "<sip:2002@192.168.1.30>", false)),
    );
    up
}

fn transfer_requested(rig: &mut Rig) -> crate::b2bua::CallRef {
    std::iter::from_fn(|| rig.b2b.poll_event())
        .find_map(|e| match e {
            CallEvent::TransferRequested {
                call, by, target, ..
            } => {
                assert_eq!((by.as_str(), target.as_str()), ("2002", "2003"));
                Some(call)
            }
            _ => None,
        })
        .expect("TransferRequested")
}

#[test]
fn rfc5630_5_3_a_sips_refer_to_asks_for_tls_only_targets() {
    for (refer_to, sips) in [
        ("sip:2003@192.168.1.10", false),
        ("sips:2003@192.168.1.10", true),
    ] {
        let mut rig = Rig::new(1);
        refer_to_from_callee(&mut rig, refer_to);
        let asked = std::iter::from_fn(|| rig.b2b.poll_event()).find_map(|e| match e {
            CallEvent::TransferRequested { target, sips, .. } => Some((target, sips)),
            _ => None,
        });
        assert_eq!(asked, Some(("2003".to_string(), sips)), "{refer_to}");
    }
}

/// Station 2003 as a transfer target at `addr` (its registered contact) in `zone`: its path
/// and the [`Target`] the driver hands over.
fn target_at(addr: &str, zone: Zone) -> (Path, Target) {
    let p = path(addr, zone);
    let host = addr.split(':').next().unwrap();
    let target = Target {
        uri: sip::Uri::parse(&format!("sip:2003@{host}")).unwrap(),
        path: p,
        payload_security: false,
        registered_sips: false,
    };
    (p, target)
}

pub(super) const TARGET_SDP: &str = "v=0\r\no=carol 3 3 IN IP4 192.168.1.40\r\ns=-\r\nc=IN IP4 192.168.1.40\r\nt=0 0\r\nm=audio 7000 RTP/AVP 8 101\r\na=rtpmap:101 telephone-event/8000\r\n";

#[test]
fn rfc3515_blind_transfer_to_target_that_answers() {
    let mut rig = Rig::new(1);
    let mut up = refer_from_callee(&mut rig);
    let call = transfer_requested(&mut rig);
    let (c, target) = target_at("192.168.1.40:5060", Zone::Internal);
    assert!(rig
        .b2b
        .handle_transfer_targets(&mut rig.txl, rig.now, call, Ok(vec![target])));
    let c_invite = request_to(&rig.sent(), c, Method::Invite);
    assert!(c_invite.body.is_empty(), "offerless: the target offers");
    assert!(
        c_invite
            .headers
            .get(&HeaderName::From)
            .unwrap()
            .contains("sip:2001@"),
        "from the transferee"
    );
    rig.feed(
        c,
        Message::Response(reply(
            &c_invite,
            180,
            "carol",
            "<sip:2003@192.168.1.40>",
            false,
        )),
    );
    rig.feed(
        c,
        Message::Response(sdp_reply(&c_invite, 200, "carol", TARGET_SDP)),
    );
    let out = rig.sent();
    // The remote transferee gets the target's offer through the relay.
    let a_reinvite = request_to(&out, up.a.path, Method::Invite);
    let t = text(&a_reinvite);
    assert!(
        t.contains("203.0.113.10") && !t.contains("192.168.1.40"),
        "{t}"
    );
    assert!(
        out.iter().all(|(to, _)| *to != c),
        "the target's ACK waits for the answer"
    );
    let mut ok = Response::for_request(&a_reinvite, StatusCode::OK, None).with_body(
        "application/sdp",
        bytes::Bytes::from_static(CALLER_SDP.as_bytes()),
    );
    ok.headers
        .push(HeaderName::Contact, "<sip:2001@10.0.0.20:5060>");
    rig.feed(up.a.path, Message::Response(ok));
    let out = rig.sent();
    request_to(&out, up.a.path, Method::Ack);
    let c_ack = request_to(&out, c, Method::Ack);
    let t = text(&c_ack);
    assert!(
        t.contains("m=audio") && !t.contains("10.0.0.20"),
        "answer anchored: {t}"
    );
    let n = request_to(&out, up.b.path, Method::Notify);
    assert_eq!(&n.body[..], b"SIP/2.0 200 OK\r\n");
    assert!(n
        .headers
        .iter()
        .any(|h| h.name.as_str() == "Subscription-State" && h.value.starts_with("terminated")));
    request_to(&out, up.b.path, Method::Bye);
    assert!(std::iter::from_fn(|| rig.b2b.poll_event())
        .any(|e| matches!(e, CallEvent::Transferred { .. })));

    // The target is now the callee: the caller's hold reaches it, and its BYE ends the call.
    let hold =
        up.a.request("INVITE", "", Some(("application/sdp", HELD_SDP)));
    rig.feed(up.a.path, Message::Request(hold));
    let c_reinvite = request_to(&rig.sent(), c, Method::Invite);
    assert_eq!(c_reinvite.call_id(), c_invite.call_id());
    rig.feed(
        c,
        Message::Response(sdp_reply(&c_reinvite, 200, "carol", TARGET_SDP)),
    );
    rig.sent();
    let mut cp = Peer {
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
    rig.feed(c, Message::Request(cp.request("BYE", "", None)));
    let out = rig.sent();
    assert_eq!(statuses_to(&out, c), [200]);
    request_to(&out, up.a.path, Method::Bye);
    assert!(rig.b2b.is_empty());
}

/// The transferee refuses the re-INVITE carrying the target's offer: the target, which had
/// answered, gets one ACK and one BYE (not one per failure path it went through), and the
/// referrer a NOTIFY with the refusal.
#[test]
fn rfc3515_transferee_refusing_the_target_offer_hangs_the_target_up_once() {
    let mut rig = Rig::new(1);
    let up = refer_from_callee(&mut rig);
    let call = transfer_requested(&mut rig);
    let (c, target) = target_at("192.168.1.40:5060", Zone::Internal);
    assert!(rig
        .b2b
        .handle_transfer_targets(&mut rig.txl, rig.now, call, Ok(vec![target])));
    let c_invite = request_to(&rig.sent(), c, Method::Invite);
    rig.feed(
        c,
        Message::Response(sdp_reply(&c_invite, 200, "carol", TARGET_SDP)),
    );
    let a_reinvite = request_to(&rig.sent(), up.a.path, Method::Invite);
    let refused = Response::for_request(&a_reinvite, StatusCode::NOT_ACCEPTABLE_HERE, None);
    rig.feed(up.a.path, Message::Response(refused));
    let out = rig.sent();
    let to_target = |method: Method| {
        out.iter()
            .filter(|(to, m)| *to == c && matches!(m, Message::Request(r) if r.method == method))
            .count()
    };
    assert_eq!(
        (to_target(Method::Ack), to_target(Method::Bye)),
        (1, 1),
        "{out:#?}"
    );
    let n = request_to(&out, up.b.path, Method::Notify);
    assert!(n.body.starts_with(b"SIP/2.0 488"), "{n:?}");
}

#[test]
fn rfc3515_transfer_target_busy_keeps_the_call() {
    let mut rig = Rig::new(1);
    let mut up = refer_from_callee(&mut rig);
    let call = transfer_requested(&mut rig);
    let (c, target) = target_at("192.168.1.40:5060", Zone::Internal);
    rig.b2b
        .handle_transfer_targets(&mut rig.txl, rig.now, call, Ok(vec![target]));
    let c_invite = request_to(&rig.sent(), c, Method::Invite);
    rig.feed(
        c,
        Message::Response(reply(
            &c_invite,
            486,
            "carol",
            "<sip:2003@192.168.1.40>",
            false,
        )),
    );
    let out = rig.sent();
    let n = request_to(&out, up.b.path, Method::Notify);
    assert_eq!(&n.body[..], b"SIP/2.0 486 Busy Here\r\n");
    assert!(out
        .iter()
        .all(|(to, m)| !(*to == up.a.path && matches!(m, Message::Request(_)))));
    assert!(std::iter::from_fn(|| rig.b2b.poll_event()).any(
        |e| matches!(e, CallEvent::TransferFailed { status, .. } if status == StatusCode::BUSY_HERE)
    ));
    // The original call stands: the caller's hold still reaches 2002.
    let hold =
        up.a.request("INVITE", "", Some(("application/sdp", HELD_SDP)));
    rig.feed(up.a.path, Message::Request(hold));
    request_to(&rig.sent(), up.b.path, Method::Invite);
    assert_eq!(rig.b2b.len(), 1);
}

#[test]
fn rfc3515_refused_target_gets_notify_403_with_reason() {
    let mut rig = Rig::new(1);
    let mut up = refer_from_callee(&mut rig);
    let call = transfer_requested(&mut rig);
    let refused = Err((
        StatusCode::FORBIDDEN,
        "Premium numbers are barred".to_string(),
    ));
    assert!(rig
        .b2b
        .handle_transfer_targets(&mut rig.txl, rig.now, call, refused));
    let out = rig.sent();
    let n = request_to(&out, up.b.path, Method::Notify);
    assert_eq!(&n.body[..], b"SIP/2.0 403 Premium numbers are barred\r\n");
    assert_eq!(
        out.iter()
            .filter(|(_, m)| matches!(m, Message::Request(r) if r.method == Method::Invite))
            .count(),
        0
    );
    // Nothing pending any more: a second answer is refused, the call goes on.
    assert!(!rig
        .b2b
        .handle_transfer_targets(&mut rig.txl, rig.now, call, Ok(vec![])));
    let bye = up.a.request("BYE", "", None);
    rig.feed(up.a.path, Message::Request(bye));
    request_to(&rig.sent(), up.b.path, Method::Bye);
}

#[test]
fn rfc3515_referrer_hanging_up_early_leaves_transferee_waiting() {
    let mut rig = Rig::new(1);
    let mut up = refer_from_callee(&mut rig);
    let call = transfer_requested(&mut rig);
    // The office phone hangs up right after the 202, as phones do.
    rig.feed(up.b.path, Message::Request(up.b.request("BYE", "", None)));
    let out = rig.sent();
    assert_eq!(statuses_to(&out, up.b.path), [200]);
    assert!(
        out.iter().all(|(to, _)| *to != up.a.path),
        "the caller stays"
    );
    assert_eq!(rig.b2b.len(), 1);
    // The target fails: the transferee, now alone, is hung up.
    let refused = Err((StatusCode::NOT_FOUND, "Not Found".to_string()));
    rig.b2b
        .handle_transfer_targets(&mut rig.txl, rig.now, call, refused);
    let out = rig.sent();
    request_to(&out, up.a.path, Method::Bye);
    assert!(out.iter().all(|(to, _)| *to != up.b.path));
    assert!(rig.b2b.is_empty());
}

#[test]
fn rfc3515_transfer_to_remote_target_anchors_both_legs() {
    let mut rig = Rig::new(1);
    let up = refer_from_callee(&mut rig);
    let call = transfer_requested(&mut rig);
    let (d, target) = target_at("198.51.100.50:5060", Zone::External);
    rig.b2b
        .handle_transfer_targets(&mut rig.txl, rig.now, call, Ok(vec![target]));
    let d_invite = request_to(&rig.sent(), d, Method::Invite);
    let remote_sdp = TARGET_SDP.replace("192.168.1.40", "198.51.100.50");
    rig.feed(
        d,
        Message::Response(sdp_reply(&d_invite, 200, "carol", &remote_sdp)),
    );
    let a_reinvite = request_to(&rig.sent(), up.a.path, Method::Invite);
    let offer = String::from_utf8(a_reinvite.body.to_vec()).unwrap();
    assert!(
        offer.contains("203.0.113.10") && !offer.contains("198.51.100.50"),
        "{offer}"
    );
    let mut ok = Response::for_request(&a_reinvite, StatusCode::OK, None).with_body(
        "application/sdp",
        bytes::Bytes::from_static(CALLER_SDP.as_bytes()),
    );
    ok.headers
        .push(HeaderName::Contact, "<sip:2001@10.0.0.20:5060>");
    rig.feed(up.a.path, Message::Response(ok));
    let ack = request_to(&rig.sent(), d, Method::Ack);
    let answer = crate::sdp::Sdp::parse(&ack.body).unwrap();
    let to_d = crate::sdp::media_endpoint(&answer).unwrap();
    let to_a =
        crate::sdp::media_endpoint(&crate::sdp::Sdp::parse(&a_reinvite.body).unwrap()).unwrap();
    assert_eq!(to_d.addr.to_string(), "203.0.113.10");
    assert_ne!(to_d.rtp_port, to_a.rtp_port, "one channel per remote leg");
    assert!(!String::from_utf8(ack.to_bytes())
        .unwrap()
        .contains("10.0.0.20"));
}

#[test]
fn rfc3515_remote_caller_transfers_office_phone() {
    let mut rig = Rig::new(1);
    let mut up = establish(&mut rig);
    let refer =
        up.a.request("REFER", "Refer-To: <sip:2003@203.0.113.10>\r\n", None);
    rig.feed(up.a.path, Message::Request(refer));
    let out = rig.sent();
    assert_eq!(statuses_to(&out, up.a.path), [202]);
    request_to(&out, up.a.path, Method::Notify);
    let call = std::iter::from_fn(|| rig.b2b.poll_event())
        .find_map(|e| match e {
            CallEvent::TransferRequested {
                call, by, target, ..
            } => {
                assert_eq!((by.as_str(), target.as_str()), ("2001", "2003"));
                Some(call)
            }
            _ => None,
        })
        .unwrap();
    let (c, target) = target_at("192.168.1.40:5060", Zone::Internal);
    rig.b2b
        .handle_transfer_targets(&mut rig.txl, rig.now, call, Ok(vec![target]));
    let c_invite = request_to(&rig.sent(), c, Method::Invite);
    assert!(c_invite
        .headers
        .get(&HeaderName::From)
        .unwrap()
        .contains("sip:2002@"));
    rig.feed(
        c,
        Message::Response(sdp_reply(&c_invite, 200, "carol", TARGET_SDP)),
    );
    let b_reinvite = request_to(&rig.sent(), up.b.path, Method::Invite);
    rig.feed(
        up.b.path,
        Message::Response(sdp_reply(&b_reinvite, 200, "bob", CALLEE_SDP)),
    );
    let out = rig.sent();
    request_to(&out, c, Method::Ack);
    request_to(&out, up.b.path, Method::Ack);
    let n = request_to(&out, up.a.path, Method::Notify);
    assert_eq!(&n.body[..], b"SIP/2.0 200 OK\r\n");
    request_to(&out, up.a.path, Method::Bye);
    // 2002's BYE now reaches the target, which took the caller's place.
    rig.feed(up.b.path, Message::Request(up.b.request("BYE", "", None)));
    let out = rig.sent();
    assert_eq!(statuses_to(&out, up.b.path), [200]);
    let bye = request_to(&out, c, Method::Bye);
    assert_eq!(bye.call_id(), c_invite.call_id());
    assert!(rig.b2b.is_empty());
}

#[test]
fn rfc3261_9_2_cancel_of_reinvite_is_carried() {
    let mut rig = Rig::new(1);
    let Up { mut a, b: bp } = establish(&mut rig);
    let reinvite = a.request("INVITE", "", Some(("application/sdp", HELD_SDP)));
    rig.feed(a.path, Message::Request(reinvite.clone()));
    let b_reinvite = request_to(&rig.sent(), bp.path, Method::Invite);
    let mut cancel = reinvite;
    cancel.method = Method::Cancel;
    cancel
        .headers
        .set(HeaderName::CSeq, format!("{} CANCEL", a.cseq));
    cancel.headers.remove(&HeaderName::ContentType);
    cancel.body = bytes::Bytes::new();
    cancel.headers.set(HeaderName::ContentLength, "0");
    rig.feed(a.path, Message::Request(cancel));
    let out = rig.sent();
    assert_eq!(statuses_to(&out, a.path), [200]);
    let b_cancel = request_to(&out, bp.path, Method::Cancel);
    assert_eq!(
        b_cancel.top_via().unwrap().branch(),
        b_reinvite.top_via().unwrap().branch()
    );
    rig.feed(
        bp.path,
        Message::Response(reply(
            &b_reinvite,
            487,
            "bob",
            "<sip:2002@192.168.1.30>",
            false,
        )),
    );
    assert_eq!(statuses_to(&rig.sent(), a.path), [487]);
    assert_eq!(rig.b2b.len(), 1, "the call itself stays");
}

#[test]
fn rfc3262_caller_requiring_100rel_gets_reliable_18x_from_an_unreliable_callee() {
    let mut rig = Rig::new(1);
    let (a, b) = (rig.a, rig.b[0]);
    let mut inv = invite();
    inv.headers.push(HeaderName::Require, "100rel");
    rig.feed(a, Message::Request(inv));
    let b_invite = request_to(&rig.sent(), b, Method::Invite);
    assert!(
        b_invite.headers.get(&HeaderName::Require).is_none(),
        "only offered to the callee"
    );
    rig.bob_answers(b, &b_invite, 180, false);
    let r180 = response_to(&rig.sent(), a, 180);
    assert_eq!(r180.headers.get(&HeaderName::Require), Some("100rel"));
    let rseq = &r180
        .headers
        .iter()
        .find(|h| h.name.as_str() == "RSeq")
        .unwrap()
        .value;
    let mut ap = Peer {
        path: a,
        call_id: "secret-call-id@10.0.0.20".into(),
        me: "\"Alice\" <sip:2001@203.0.113.10>;tag=alice".into(),
        them: format!(
            "<sip:2002@203.0.113.10>;tag={}",
            r180.to().unwrap().tag().unwrap()
        ),
        uri: "sip:homeline@192.168.1.10:5060".into(),
        host: "10.0.0.20:5060".into(),
        cseq: 1,
    };
    rig.feed(
        a,
        Message::Request(ap.request("PRACK", &format!("RAck: {rseq} 1 INVITE\r\n"), None)),
    );
    let out = rig.sent();
    assert_eq!(statuses_to(&out, a), [200], "answered by homeline");
    assert!(out.iter().all(|(to, _)| *to != b));
}

#[test]
fn rfc3515_transferee_hanging_up_cancels_the_target() {
    let mut rig = Rig::new(1);
    let mut up = refer_from_callee(&mut rig);
    let call = transfer_requested(&mut rig);
    let (c, target) = target_at("192.168.1.40:5060", Zone::Internal);
    rig.b2b
        .handle_transfer_targets(&mut rig.txl, rig.now, call, Ok(vec![target]));
    let c_invite = request_to(&rig.sent(), c, Method::Invite);
    rig.feed(
        c,
        Message::Response(reply(
            &c_invite,
            180,
            "carol",
            "<sip:2003@192.168.1.40>",
            false,
        )),
    );
    rig.feed(up.a.path, Message::Request(up.a.request("BYE", "", None)));
    let out = rig.sent();
    assert_eq!(statuses_to(&out, up.a.path), [200]);
    request_to(&out, c, Method::Cancel);
    request_to(&out, up.b.path, Method::Bye);
    assert!(rig.b2b.is_empty());
    // The target answers anyway: acknowledged and hung up.
    rig.feed(
        c,
        Message::Response(sdp_reply(&c_invite, 200, "carol", TARGET_SDP)),
    );
    let out = rig.sent();
    request_to(&out, c, Method::Ack);
    request_to(&out, c, Method::Bye);
}

/// A caller over UDP whose Contact is `sips:` is not answered with a `sips:` Contact: it could
/// not reach it (TLS to a UDP port), and its ACK and BYE would be lost.
#[test]
fn rfc5630_3_1_3_sips_contact_is_answered_with_sips_only_over_tls() {
    let mut rig = Rig::new(1);
    let (a, b) = (rig.a, rig.b[0]);
    let text = String::from_utf8(invite().to_bytes())
        .unwrap()
        .replace("Contact: <sip:2001@", "Contact: <sips:2001@")
        .replace("Record-Route: <sip:10.0.0.1;lr>\r\n", "");
    assert!(!text.contains("Record-Route"), "the Contact decides");
    let inv = parse_req(&text);
    rig.feed(a, Message::Request(inv));
    let b_invite = request_to(&rig.sent(), b, Method::Invite);
    rig.feed(
        b,
        Message::Response(sdp_reply(&b_invite, 200, "bob", CALLEE_SDP)),
    );
    let ok = response_to(&rig.sent(), a, 200);
    let contact = ok.headers.get(&HeaderName::Contact).unwrap().to_string();
    assert!(contact.starts_with("<sip:"), "{contact}");
}
