//! The B2BUA against a real transaction layer, messages in and out as bytes.

use std::time::{Duration, Instant};

use policy::Zone;
use sip::{parse_datagram, HeaderAccess, HeaderName, Message, Request, Response, StatusCode, Uri};
use sip_proto::path::{Path, Transmit, Transport};
use sip_proto::tx::{TxConfig, TxEvent, TxLayer};

use super::*;

mod attended;
mod dialog;
mod srtp;

const CALLER: &str = "2001";
const CALLEE: &str = "2002";

fn path(remote: &str, zone: Zone) -> Path {
    Path {
        local: "192.168.1.10:5060".parse().unwrap(),
        remote: remote.parse().unwrap(),
        transport: Transport::Udp,
        zone,
        flow: None,
    }
}

struct Rig {
    txl: TxLayer,
    b2b: B2bua,
    now: Instant,
    a: Path,
    b: Vec<Path>,
    /// The callee's forwarding, handed over with every new INVITE.
    forwarding: Forwarding,
    /// The callee station requires payload security.
    secure_callee: bool,
}

impl Rig {
    fn new(forks: usize) -> Rig {
        Rig {
            txl: TxLayer::new(TxConfig::default(), 1),
            b2b: B2bua::new(
                B2buaConfig {
                    media: MediaAddresses {
                        public: Some("203.0.113.10".parse().unwrap()),
                        internal: None,
                        learned: false,
                    },
                    ..B2buaConfig::default()
                },
                2,
                Box::new(LocalRelay::new(
                    relay::Relay::new(relay::Config::default(), &mut rand::thread_rng()).unwrap(),
                )),
            ),
            now: Instant::now(),
            a: path("198.51.100.20:40000", Zone::External),
            b: (0..forks)
                .map(|i| path(&format!("192.168.1.{}:5060", 30 + i), Zone::Internal))
                .collect(),
            forwarding: Forwarding::default(),
            secure_callee: false,
        }
    }

    /// Feeds a message from `from` and lets the B2BUA handle what the layer reports.
    fn feed(&mut self, from: Path, msg: Message) {
        self.txl.handle_message(self.now, from, msg);
        while let Some(ev) = self.txl.poll_event() {
            match ev {
                TxEvent::Request { tx, request, path }
                    if request.method == sip::Method::Invite
                        && request.to().and_then(|t| t.tag()).is_none() =>
                {
                    let targets = self
                        .b
                        .iter()
                        .map(|p| Target {
                            uri: Uri::parse(&format!("sip:{CALLEE}@{}", p.remote)).unwrap(),
                            path: *p,
                            payload_security: self.secure_callee,
                            registered_sips: false,
                        })
                        .collect();
                    self.b2b.handle_invite(
                        &mut self.txl,
                        self.now,
                        tx,
                        request,
                        path,
                        CALLER,
                        CALLEE,
                        Ok(targets),
                        self.forwarding.clone(),
                    );
                }
                TxEvent::Request { tx, request, .. } => {
                    assert!(
                        self.b2b
                            .handle_in_dialog(&mut self.txl, self.now, tx, &request),
                        "in-dialog {request:?}"
                    );
                }
                TxEvent::Response { tx, response } => {
                    assert!(self
                        .b2b
                        .handle_response(&mut self.txl, self.now, tx, response));
                }
                TxEvent::Cancel {
                    tx,
                    invite,
                    request,
                    ..
                } => self
                    .b2b
                    .handle_cancel(&mut self.txl, self.now, tx, invite, &request),
                TxEvent::Ack { request, .. } => {
                    assert!(self.b2b.handle_ack(&mut self.txl, self.now, &request))
                }
                TxEvent::TimedOut { tx } => {
                    self.b2b.handle_timed_out(&mut self.txl, self.now, tx);
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    fn advance(&mut self, d: Duration) {
        self.now += d;
        self.txl.handle_timeout(self.now);
        self.b2b.handle_timeout(&mut self.txl, self.now);
        self.feed_none();
    }

    /// Bob, the callee at `b`, answers `invite` with `status`, with his SDP when `sdp`.
    fn bob_answers(&mut self, b: Path, invite: &Request, status: u16, sdp: bool) {
        let r = reply(invite, status, "bob", "<sip:2002@192.168.1.30>", sdp);
        self.feed(b, Message::Response(r));
    }

    fn feed_none(&mut self) {
        while let Some(ev) = self.txl.poll_event() {
            if let TxEvent::TimedOut { tx } = ev {
                self.b2b.handle_timed_out(&mut self.txl, self.now, tx);
            }
        }
    }

    /// Everything sent since the last call, parsed, with where it went.
    fn sent(&mut self) -> Vec<(Path, Message)> {
        std::iter::from_fn(|| self.txl.poll_transmit())
            .map(|Transmit { path, bytes }| (path, parse_datagram(&bytes, 65535).unwrap()))
            .collect()
    }
}

const CALLER_SDP: &str = "v=0\r\no=alice 1 1 IN IP4 10.0.0.20\r\ns=-\r\nc=IN IP4 10.0.0.20\r\nt=0 0\r\nm=audio 4000 RTP/AVP 8 0 101\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n";
const CALLEE_SDP: &str = "v=0\r\no=bob 7 7 IN IP4 192.168.1.30\r\ns=-\r\nc=IN IP4 192.168.1.30\r\nt=0 0\r\nm=audio 6000 RTP/AVP 8 101\r\na=rtpmap:101 telephone-event/8000\r\n";

fn invite() -> Request {
    let text = format!("INVITE sip:2002@203.0.113.10 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.20:5060;branch=z9hG4bKcaller1;rport\r\nMax-Forwards: 70\r\nFrom: \"Alice\" <sip:2001@203.0.113.10>;tag=alice\r\nTo: <sip:2002@203.0.113.10>\r\nCall-ID: secret-call-id@10.0.0.20\r\nCSeq: 1 INVITE\r\nContact: <sip:2001@10.0.0.20:5060>\r\nRecord-Route: <sip:10.0.0.1;lr>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{CALLER_SDP}", CALLER_SDP.len());
    let Ok(Message::Request(r)) = parse_datagram(text.as_bytes(), 65535) else {
        panic!()
    };
    r
}

fn reply(req: &Request, status: u16, tag: &str, contact: &str, sdp: bool) -> Response {
    let mut r = Response::for_request(req, StatusCode::new(status).unwrap(), Some(tag));
    r.headers.push(HeaderName::Contact, contact.to_string());
    if sdp {
        r = r.with_body(
            "application/sdp",
            bytes::Bytes::from_static(CALLEE_SDP.as_bytes()),
        );
    }
    r
}

fn request_to(sent: &[(Path, Message)], p: Path, method: sip::Method) -> Request {
    sent.iter()
        .find_map(|(to, m)| match m {
            Message::Request(r) if *to == p && r.method == method => Some(r.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no {method} to {p:?} in {sent:#?}"))
}

fn statuses_to(sent: &[(Path, Message)], p: Path) -> Vec<u16> {
    sent.iter()
        .filter_map(|(to, m)| match m {
            Message::Response(r) if *to == p => Some(r.status.as_u16()),
            _ => None,
        })
        .collect()
}

#[test]
fn rfc3261_13_basic_call_with_topology_hiding() {
    let mut rig = Rig::new(1);
    let (a, b) = (rig.a, rig.b[0]);
    rig.feed(a, Message::Request(invite()));
    let out = rig.sent();
    assert_eq!(statuses_to(&out, a), [100]);
    let b_invite = request_to(&out, b, sip::Method::Invite);
    let text = String::from_utf8(b_invite.to_bytes()).unwrap();
    for secret in [
        "secret-call-id",
        "10.0.0.20",
        "10.0.0.1",
        "z9hG4bKcaller1",
        "Record-Route",
    ] {
        assert!(
            !text.contains(secret),
            "{secret} leaked to the callee:\n{text}"
        );
    }
    // The remote caller is anchored: the internal phone is told to send to the caller's relay
    // channel on homeline's internal address.
    let offer = crate::sdp::Sdp::parse(&b_invite.body).unwrap();
    let ep = crate::sdp::media_endpoint(&offer).unwrap();
    assert_eq!(ep.addr.to_string(), "192.168.1.10");
    assert!((30000..31000).contains(&ep.rtp_port) && ep.rtp_port & 1 == 0);
    assert!(text.contains("\"Alice\""), "display name kept");

    rig.bob_answers(b, &b_invite, 180, false);
    assert_eq!(statuses_to(&rig.sent(), a), [180]);
    rig.bob_answers(b, &b_invite, 200, true);
    let out = rig.sent();
    assert_eq!(statuses_to(&out, a), [200]);
    let ack = request_to(&out, b, sip::Method::Ack);
    assert_eq!(ack.cseq().unwrap().seq, b_invite.cseq().unwrap().seq);
    assert_eq!(ack.to().unwrap().tag().as_deref(), Some("bob"));
    let ok = out
        .iter()
        .find_map(|(_, m)| match m {
            Message::Response(r) if r.status.as_u16() == 200 => Some(r.clone()),
            _ => None,
        })
        .unwrap();
    assert!(
        !String::from_utf8(ok.to_bytes())
            .unwrap()
            .contains("192.168.1.30"),
        "callee's address leaked to the caller"
    );
    let answer = crate::sdp::Sdp::parse(&ok.body).unwrap();
    let a_ep = crate::sdp::media_endpoint(&answer).unwrap();
    assert_eq!(a_ep.addr.to_string(), "203.0.113.10", "public address");
    assert_eq!(
        a_ep.rtp_port, ep.rtp_port,
        "one channel, seen from both zones"
    );
    // The remote caller is told to reach homeline at the public address, never at the LAN
    // address of the listener (RFC 5853 §3.1).
    let contact = ok.headers.get(&HeaderName::Contact).unwrap();
    assert!(
        contact.contains("203.0.113.10") && !contact.contains("192.168.1.10"),
        "{contact}"
    );
    let a_tag = ok.to().unwrap().tag().unwrap();

    // The caller acknowledges and hangs up: 200 to the caller, BYE to the callee.
    let mut a_ack = invite();
    a_ack.method = sip::Method::Ack;
    a_ack.headers.set(HeaderName::CSeq, "1 ACK");
    a_ack.headers.set(
        HeaderName::To,
        format!("<sip:2002@203.0.113.10>;tag={a_tag}"),
    );
    a_ack.headers.set(
        HeaderName::Via,
        "SIP/2.0/UDP 10.0.0.20:5060;branch=z9hG4bKcaller2;rport",
    );
    rig.feed(a, Message::Request(a_ack.clone()));
    let mut bye = a_ack;
    bye.method = sip::Method::Bye;
    bye.headers.set(HeaderName::CSeq, "2 BYE");
    bye.headers.set(
        HeaderName::Via,
        "SIP/2.0/UDP 10.0.0.20:5060;branch=z9hG4bKcaller3;rport",
    );
    rig.feed(a, Message::Request(bye));
    let out = rig.sent();
    assert_eq!(statuses_to(&out, a), [200]);
    let b_bye = request_to(&out, b, sip::Method::Bye);
    assert_eq!(
        b_bye.uri.to_string(),
        "sip:2002@192.168.1.30",
        "to the callee's Contact"
    );
    assert!(rig.b2b.is_empty());
}

#[test]
fn rfc3261_16_7_forking_first_answer_wins_others_cancelled() {
    let mut rig = Rig::new(2);
    let (a, b0, b1) = (rig.a, rig.b[0], rig.b[1]);
    rig.feed(a, Message::Request(invite()));
    let out = rig.sent();
    let (i0, i1) = (
        request_to(&out, b0, sip::Method::Invite),
        request_to(&out, b1, sip::Method::Invite),
    );
    assert_ne!(i0.call_id(), i1.call_id());
    rig.feed(
        b0,
        Message::Response(reply(&i0, 180, "b0", "<sip:2002@192.168.1.30>", false)),
    );
    rig.feed(
        b1,
        Message::Response(reply(&i1, 180, "b1", "<sip:2002@192.168.1.31>", false)),
    );
    rig.sent();
    rig.feed(
        b1,
        Message::Response(reply(&i1, 200, "b1", "<sip:2002@192.168.1.31>", true)),
    );
    let out = rig.sent();
    assert_eq!(statuses_to(&out, a), [200]);
    let cancel = request_to(&out, b0, sip::Method::Cancel);
    assert_eq!(
        cancel.top_via().unwrap().branch(),
        i0.top_via().unwrap().branch(),
        "§9.1: same branch as the INVITE"
    );
    request_to(&out, b1, sip::Method::Ack);
    // The cancelled fork answers 487; the caller hears nothing more.
    rig.feed(
        b0,
        Message::Response(reply(&i0, 487, "b0", "<sip:2002@192.168.1.30>", false)),
    );
    assert!(statuses_to(&rig.sent(), a).is_empty());
}

#[test]
fn rfc3261_9_2_cancel_before_answer() {
    let mut rig = Rig::new(1);
    let (a, b) = (rig.a, rig.b[0]);
    rig.feed(a, Message::Request(invite()));
    let b_invite = request_to(&rig.sent(), b, sip::Method::Invite);
    rig.bob_answers(b, &b_invite, 180, false);
    rig.sent();
    let mut cancel = invite();
    cancel.method = sip::Method::Cancel;
    cancel.headers.set(HeaderName::CSeq, "1 CANCEL");
    cancel.body = bytes::Bytes::new();
    cancel.headers.set(HeaderName::ContentLength, "0");
    rig.feed(a, Message::Request(cancel));
    let out = rig.sent();
    let mut codes = statuses_to(&out, a);
    codes.sort();
    assert_eq!(codes, [200, 487]);
    request_to(&out, b, sip::Method::Cancel);
    assert!(matches!(
        rig.b2b.poll_event(),
        Some(CallEvent::Started { .. })
    ));
    assert!(matches!(
        rig.b2b.poll_event(),
        Some(CallEvent::Ended {
            reason: EndReason::CallerHungUp,
            ..
        })
    ));
}

#[test]
fn busy_callee_is_relayed_and_unreachable_one_times_out_with_408() {
    let mut rig = Rig::new(1);
    let (a, b) = (rig.a, rig.b[0]);
    rig.feed(a, Message::Request(invite()));
    let b_invite = request_to(&rig.sent(), b, sip::Method::Invite);
    rig.bob_answers(b, &b_invite, 486, false);
    let out = rig.sent();
    assert_eq!(statuses_to(&out, a), [486]);
    request_to(&out, b, sip::Method::Ack); // the transaction acknowledges a non-2xx itself

    let mut rig = Rig::new(1);
    let a = rig.a;
    rig.feed(a, Message::Request(invite()));
    rig.sent();
    for _ in 0..70 {
        rig.advance(Duration::from_millis(500));
    }
    assert!(statuses_to(&rig.sent(), a).contains(&408));
    assert!(rig.b2b.is_empty());
}

#[test]
fn refused_targets_answer_at_once() {
    let mut rig = Rig::new(0);
    let a = rig.a;
    rig.feed(a, Message::Request(invite()));
    assert_eq!(
        statuses_to(&rig.sent(), a),
        [480],
        "callee known but not registered"
    );
}

mod forwarding;

#[test]
fn better_failure_prefers_busy_over_timeout() {
    assert_eq!(
        better_failure(Some(StatusCode::REQUEST_TIMEOUT), StatusCode::BUSY_HERE),
        StatusCode::BUSY_HERE
    );
    assert_eq!(
        better_failure(Some(StatusCode::BUSY_HERE), StatusCode::REQUEST_TIMEOUT),
        StatusCode::BUSY_HERE
    );
    assert_eq!(
        better_failure(Some(StatusCode::BUSY_HERE), StatusCode::new(603).unwrap()).as_u16(),
        603
    );
}

#[test]
fn learned_public_address_unknown_refuses_relay_calls_and_follows_changes() {
    let mut rig = Rig::new(1);
    let (a, b) = (rig.a, rig.b[0]);
    rig.b2b.config.media.learned = true;
    assert_eq!(
        rig.b2b.set_public(None, 5060),
        Some("203.0.113.10".parse().unwrap())
    );
    // Nothing known: the external listener's LAN address (192.168.1.10) must not stand in.
    rig.feed(a, Message::Request(invite()));
    let out = rig.sent();
    assert!(statuses_to(&out, a).contains(&503), "{out:?}");
    assert!(out.iter().all(|(p, _)| *p != b), "nothing rings");
    let refusal = out
        .iter()
        .find_map(|(_, m)| match m {
            Message::Response(r) if r.status.as_u16() == 503 => Some(r.clone()),
            _ => None,
        })
        .unwrap();
    assert!(refusal.headers.get(&HeaderName::Warning).is_some());
    assert!(!String::from_utf8(refusal.to_bytes())
        .unwrap()
        .contains("192.168.1.10"));
    // homeline's own requests (keepalive probes) are told there is no address to name yet.
    assert_eq!(rig.b2b.config().advertised_known(&a), None);
    // Learned: SDP and Via/Contact towards external devices name it at once.
    assert_eq!(
        rig.b2b
            .set_public(Some("203.0.113.11".parse().unwrap()), 5060),
        None
    );
    assert_eq!(
        rig.b2b.config().advertised(&a).to_string(),
        "203.0.113.11:5060"
    );
    assert_eq!(
        rig.b2b.config().advertised_known(&a),
        Some("203.0.113.11:5060".parse().unwrap())
    );
    assert_eq!(
        rig.b2b.config().media.for_path(&a).unwrap().to_string(),
        "203.0.113.11"
    );
}

#[test]
fn rfc3261_13_2_1_offerless_invite_answer_travels_in_the_ack() {
    let mut rig = Rig::new(1);
    let (a, b) = (rig.a, rig.b[0]);
    let mut offerless = invite();
    offerless.headers.remove(&HeaderName::ContentType);
    offerless.body = bytes::Bytes::new();
    offerless.headers.set(HeaderName::ContentLength, "0");
    rig.feed(a, Message::Request(offerless.clone()));
    let b_invite = request_to(&rig.sent(), b, sip::Method::Invite);
    assert!(b_invite.body.is_empty(), "the callee makes the offer");
    let ok = reply(&b_invite, 200, "bob", "<sip:2002@192.168.1.30>", true);
    rig.feed(b, Message::Response(ok.clone()));
    let out = rig.sent();
    assert!(
        out.iter().all(|(to, _)| *to != b),
        "the callee's ACK waits for the caller's answer: {out:#?}"
    );
    let to_caller = out
        .iter()
        .find_map(|(to, m)| match m {
            Message::Response(r) if *to == a && r.status.as_u16() == 200 => Some(r.clone()),
            _ => None,
        })
        .expect("200 to the caller");
    let offer = crate::sdp::Sdp::parse(&to_caller.body).unwrap();
    assert_eq!(
        crate::sdp::media_endpoint(&offer).unwrap().addr.to_string(),
        "203.0.113.10",
        "the remote caller is offered the relay's public address"
    );
    // A retransmitted 2xx is not acknowledged without the answer either.
    rig.feed(b, Message::Response(ok));
    assert!(rig.sent().iter().all(
        |(to, m)| *to != b || !matches!(m, Message::Request(r) if r.method == sip::Method::Ack)
    ));

    let a_tag = to_caller.to().unwrap().tag().unwrap();
    let mut a_ack = offerless;
    a_ack.method = sip::Method::Ack;
    a_ack.headers.set(HeaderName::CSeq, "1 ACK");
    a_ack.headers.set(
        HeaderName::To,
        format!("<sip:2002@203.0.113.10>;tag={a_tag}"),
    );
    a_ack.headers.set(
        HeaderName::Via,
        "SIP/2.0/UDP 10.0.0.20:5060;branch=z9hG4bKcaller2;rport",
    );
    a_ack
        .headers
        .set(HeaderName::ContentType, "application/sdp");
    a_ack
        .headers
        .set(HeaderName::ContentLength, CALLER_SDP.len().to_string());
    a_ack.body = bytes::Bytes::from_static(CALLER_SDP.as_bytes());
    rig.feed(a, Message::Request(a_ack));
    let b_ack = request_to(&rig.sent(), b, sip::Method::Ack);
    assert_eq!(b_ack.cseq().unwrap().seq, b_invite.cseq().unwrap().seq);
    let answer = crate::sdp::Sdp::parse(&b_ack.body).unwrap();
    let ep = crate::sdp::media_endpoint(&answer).unwrap();
    assert_eq!(
        ep.addr.to_string(),
        "192.168.1.10",
        "the internal callee is answered with the relay's internal address"
    );
    assert!((30000..31000).contains(&ep.rtp_port));
    assert!(!String::from_utf8(b_ack.to_bytes())
        .unwrap()
        .contains("10.0.0.20"));
}

/// A remote phone over TLS is given the public TLS port (public SIP port + 1, the router's
/// forward to the external TLS listener) in Via/Contact: it opens a new connection to a Contact
/// it is given (RFC 5630 §3), and the plain SIP port would reach no TLS listener.
#[test]
fn rfc5630_external_tls_contact_names_the_public_tls_port() {
    let config = B2buaConfig {
        public_sip: Some("203.0.113.10:5060".parse().unwrap()),
        ..B2buaConfig::default()
    };
    let mut p = path("198.51.100.20:40000", Zone::External);
    assert_eq!(config.advertised(&p).to_string(), "203.0.113.10:5060");
    p.transport = Transport::Tls;
    assert_eq!(config.advertised(&p).to_string(), "203.0.113.10:5061");
    p.transport = Transport::Tcp;
    assert_eq!(config.advertised(&p).to_string(), "203.0.113.10:5060");
}
