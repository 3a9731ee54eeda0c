//! Call forwarding through a real transaction layer, in virtual time.

use policy::{check_forward_target, CosClass, NumberingPlan};

use super::*;

const TARGET: &str = "2003";

/// A contact of the forwarding target.
fn target_at(p: Path) -> Forward {
    Forward::To {
        number: TARGET.into(),
        targets: vec![Target {
            uri: Uri::parse(&format!("sip:{TARGET}@{}", p.remote)).unwrap(),
            path: p,
            payload_security: false,
            registered_sips: false,
        }],
    }
}

fn events(rig: &mut Rig) -> Vec<CallEvent> {
    std::iter::from_fn(|| rig.b2b.poll_event()).collect()
}

fn to_user(r: &Request) -> String {
    r.to().unwrap().uri.to_string()
}

/// The Diversion header (RFC 5806 §4) of a forwarded INVITE.
fn diversion(r: &Request) -> String {
    r.headers
        .get(&HeaderName::Other("Diversion".into()))
        .unwrap_or_else(|| panic!("no Diversion in {r:?}"))
        .to_owned()
}

#[test]
fn unconditional_rings_the_target_instead() {
    let mut rig = Rig::new(1);
    let fwd = path("192.168.1.40:5060", Zone::Internal);
    rig.forwarding.always = Some(target_at(fwd));
    // Busy and no answer do not apply once a call is forwarded unconditionally.
    rig.forwarding.no_answer = Some(target_at(rig.b[0]));
    let (a, b) = (rig.a, rig.b[0]);
    rig.feed(a, Message::Request(invite()));
    let out = rig.sent();
    assert!(
        !out.iter().any(|(to, _)| *to == b),
        "the callee's phone does not ring"
    );
    let i = request_to(&out, fwd, sip::Method::Invite);
    assert!(to_user(&i).contains(TARGET), "{}", to_user(&i));
    assert_eq!(
        diversion(&i),
        "<sip:2002@homeline>;reason=unconditional;counter=1"
    );
    assert_eq!(rig.b2b.poll_timeout(), None, "no no-answer timer");
    rig.feed(
        fwd,
        Message::Response(reply(&i, 200, "t", "<sip:2003@192.168.1.40>", true)),
    );
    assert_eq!(statuses_to(&rig.sent(), a), [200]);
    let ev = events(&mut rig);
    assert!(ev.contains(&CallEvent::Forwarded {
        call: CallRef(0),
        kind: ForwardKind::Always,
        forks: 1
    }));
}

#[test]
fn busy_rings_the_busy_target_in_the_same_caller_dialog() {
    let mut rig = Rig::new(2);
    let fwd = path("192.168.1.40:5060", Zone::Internal);
    rig.forwarding.busy = Some(target_at(fwd));
    let (a, b0, b1) = (rig.a, rig.b[0], rig.b[1]);
    rig.feed(a, Message::Request(invite()));
    let out = rig.sent();
    let (i0, i1) = (
        request_to(&out, b0, sip::Method::Invite),
        request_to(&out, b1, sip::Method::Invite),
    );
    rig.feed(
        b0,
        Message::Response(reply(&i0, 486, "b0", "<sip:2002@192.168.1.30>", false)),
    );
    assert!(
        !rig.sent().iter().any(|(to, _)| *to == fwd),
        "one fork still rings"
    );
    rig.feed(
        b1,
        Message::Response(reply(&i1, 600, "b1", "<sip:2002@192.168.1.31>", false)),
    );
    let out = rig.sent();
    assert!(statuses_to(&out, a).is_empty(), "the caller hears no busy");
    let i = request_to(&out, fwd, sip::Method::Invite);
    assert!(to_user(&i).contains(TARGET));
    assert_eq!(
        diversion(&i),
        "<sip:2002@homeline>;reason=user-busy;counter=1"
    );
    assert!(
        i0.headers
            .get(&HeaderName::Other("Diversion".into()))
            .is_none(),
        "the first forks are no diversion"
    );
    // The remote caller's offer reaches the target through the relay, like the first forks.
    let offer = crate::sdp::Sdp::parse(&i.body).unwrap();
    let first = crate::sdp::Sdp::parse(&i0.body).unwrap();
    assert_eq!(
        crate::sdp::media_endpoint(&offer),
        crate::sdp::media_endpoint(&first)
    );
    rig.feed(
        fwd,
        Message::Response(reply(&i, 180, "t", "<sip:2003@192.168.1.40>", false)),
    );
    assert_eq!(statuses_to(&rig.sent(), a), [180]);
    rig.feed(
        fwd,
        Message::Response(reply(&i, 200, "t", "<sip:2003@192.168.1.40>", true)),
    );
    let out = rig.sent();
    let ok = out
        .iter()
        .find_map(|(to, m)| match m {
            Message::Response(r) if *to == a && r.status.as_u16() == 200 => Some(r.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        ok.call_id().unwrap().to_string(),
        "secret-call-id@10.0.0.20",
        "the caller's one dialog"
    );
    request_to(&out, fwd, sip::Method::Ack);
    assert!(events(&mut rig).contains(&CallEvent::Forwarded {
        call: CallRef(0),
        kind: ForwardKind::Busy,
        forks: 1
    }));
}

#[test]
fn busy_is_relayed_when_one_fork_failed_otherwise() {
    let mut rig = Rig::new(2);
    let fwd = path("192.168.1.40:5060", Zone::Internal);
    rig.forwarding.busy = Some(target_at(fwd));
    let (a, b0, b1) = (rig.a, rig.b[0], rig.b[1]);
    rig.feed(a, Message::Request(invite()));
    let out = rig.sent();
    let (i0, i1) = (
        request_to(&out, b0, sip::Method::Invite),
        request_to(&out, b1, sip::Method::Invite),
    );
    rig.feed(
        b0,
        Message::Response(reply(&i0, 486, "b0", "<sip:2002@192.168.1.30>", false)),
    );
    rig.feed(
        b1,
        Message::Response(reply(&i1, 603, "b1", "<sip:2002@192.168.1.31>", false)),
    );
    let out = rig.sent();
    assert!(
        !out.iter().any(|(to, _)| *to == fwd),
        "a decline is no busy"
    );
    assert_eq!(statuses_to(&out, a), [603]);
}

#[test]
fn no_answer_after_the_delay_cancels_and_rings_the_target() {
    let mut rig = Rig::new(1);
    // The target is a remote phone: the new fork is anchored in the relay although the
    // first one was not.
    let fwd = path("198.51.100.30:5062", Zone::External);
    rig.forwarding.no_answer = Some(target_at(fwd));
    rig.forwarding.no_answer_after = Duration::from_secs(15);
    let (a, b) = (rig.a, rig.b[0]);
    let start = rig.now;
    rig.feed(a, Message::Request(invite()));
    let i0 = request_to(&rig.sent(), b, sip::Method::Invite);
    assert_eq!(
        rig.b2b.poll_timeout(),
        Some(start + Duration::from_secs(15))
    );
    rig.feed(
        b,
        Message::Response(reply(&i0, 180, "b0", "<sip:2002@192.168.1.30>", false)),
    );
    assert_eq!(statuses_to(&rig.sent(), a), [180]);
    rig.advance(Duration::from_secs(14));
    assert!(
        !rig.sent().iter().any(|(to, _)| *to == fwd),
        "still within the delay"
    );
    rig.advance(Duration::from_secs(1));
    let out = rig.sent();
    let cancel = request_to(&out, b, sip::Method::Cancel);
    assert_eq!(
        cancel.top_via().unwrap().branch(),
        i0.top_via().unwrap().branch()
    );
    let i = request_to(&out, fwd, sip::Method::Invite);
    assert_eq!(
        diversion(&i),
        "<sip:2002@homeline>;reason=no-answer;counter=1"
    );
    let text = String::from_utf8(i.to_bytes()).unwrap();
    assert!(
        !text.contains("10.0.0.20") && !text.contains("192.168.1.30"),
        "no private address reaches the remote target:\n{text}"
    );
    let ep = crate::sdp::media_endpoint(&crate::sdp::Sdp::parse(&i.body).unwrap()).unwrap();
    assert_eq!(ep.addr.to_string(), "203.0.113.10", "public relay address");
    assert_eq!(rig.b2b.poll_timeout(), None, "forwarded once");
    // The cancelled fork's 487 is not the caller's business.
    rig.feed(
        b,
        Message::Response(reply(&i0, 487, "b0", "<sip:2002@192.168.1.30>", false)),
    );
    assert!(statuses_to(&rig.sent(), a).is_empty());
    // The target is busy: no second forwarding, the caller hears the target's answer.
    rig.feed(
        fwd,
        Message::Response(reply(&i, 486, "t", "<sip:2003@198.51.100.30>", false)),
    );
    assert_eq!(statuses_to(&rig.sent(), a), [486]);
    assert!(rig.b2b.is_empty());
    let ev = events(&mut rig);
    assert!(ev.contains(&CallEvent::Forwarded {
        call: CallRef(0),
        kind: ForwardKind::NoAnswer,
        forks: 1
    }));
}

#[test]
fn answer_before_the_delay_disarms_no_answer() {
    let mut rig = Rig::new(1);
    let fwd = path("192.168.1.40:5060", Zone::Internal);
    rig.forwarding.no_answer = Some(target_at(fwd));
    let (a, b) = (rig.a, rig.b[0]);
    rig.feed(a, Message::Request(invite()));
    let i0 = request_to(&rig.sent(), b, sip::Method::Invite);
    rig.feed(
        b,
        Message::Response(reply(&i0, 200, "b0", "<sip:2002@192.168.1.30>", true)),
    );
    assert_eq!(statuses_to(&rig.sent(), a), [200]);
    rig.advance(Duration::from_secs(30));
    assert!(!rig.sent().iter().any(|(to, _)| *to == fwd));
}

#[test]
fn target_refused_by_class_of_service_is_not_followed() {
    let plan = NumberingPlan::default();
    // The callee registered from home forwards to an international number: its external
    // class refuses it, so the caller hears the busy status, and the reason is reported.
    let refusal =
        check_forward_target(&CosClass::default_external(), "0 00 44 20 7946 0000", &plan)
            .unwrap_err();
    let mut rig = Rig::new(1);
    rig.forwarding.busy = Some(Forward::Refused {
        zone: Zone::External,
        refusal: refusal.clone(),
    });
    let (a, b) = (rig.a, rig.b[0]);
    rig.feed(a, Message::Request(invite()));
    let i0 = request_to(&rig.sent(), b, sip::Method::Invite);
    rig.feed(
        b,
        Message::Response(reply(&i0, 486, "b0", "<sip:2002@192.168.1.30>", false)),
    );
    assert_eq!(statuses_to(&rig.sent(), a), [486]);
    let ev = events(&mut rig);
    let why = NotFollowed::ClassOfService {
        zone: Zone::External,
        refusal,
    };
    assert!(
        ev.contains(&CallEvent::ForwardNotFollowed {
            call: CallRef(0),
            station: CALLEE.into(),
            kind: ForwardKind::Busy,
            why: why.clone(),
        }),
        "{ev:?}"
    );
    assert!(why.to_string().contains("remote") && why.to_string().contains("international"));

    // Refused unconditionally: the callee's phone rings as if there were no forwarding.
    let mut rig = Rig::new(1);
    rig.forwarding.always = Some(Forward::Refused {
        zone: Zone::Internal,
        refusal: check_forward_target(&CosClass::default_internal(), "0112", &plan).unwrap_err(),
    });
    let (a, b) = (rig.a, rig.b[0]);
    rig.feed(a, Message::Request(invite()));
    request_to(&rig.sent(), b, sip::Method::Invite);
}

#[test]
fn unreachable_target_leaves_the_call_ringing() {
    let mut rig = Rig::new(1);
    rig.forwarding.no_answer = Some(Forward::To {
        number: TARGET.into(),
        targets: Vec::new(),
    });
    let (a, b) = (rig.a, rig.b[0]);
    rig.feed(a, Message::Request(invite()));
    rig.sent();
    rig.advance(Duration::from_secs(20));
    let out = rig.sent();
    assert!(
        !out.iter().any(|(to, m)| *to == b
            && matches!(m, Message::Request(r) if r.method == sip::Method::Cancel)),
        "the callee keeps ringing"
    );
    assert!(statuses_to(&out, a).is_empty());
    assert!(events(&mut rig).iter().any(|e| matches!(
        e,
        CallEvent::ForwardNotFollowed {
            why: NotFollowed::NoContact,
            ..
        }
    )));
}
