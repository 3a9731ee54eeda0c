//! SDES-SRTP through the B2BUA (RFC 4568): each leg has its own keys, only over TLS, the relay
//! translates, and homeline's key survives re-INVITEs.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use policy::Zone;
use relay::{DirectPeer, LimitHit, MasterKey, Peer, SrtpKeys};
use sip::{parse_datagram, HeaderName, Message, Method, Request, StatusCode};
use sip_proto::path::{Path, Transport};

use super::{path, reply, request_to, statuses_to, Rig};
use crate::b2bua::{
    B2bua, B2buaConfig, CallRef, LocalRelay, MediaAddresses, MediaControl, MediaLeg,
};
use crate::sdp::{Crypto, Sdp};

/// The relay shared between the call core and the test, which plays the phones' packets.
#[derive(Debug, Clone)]
struct Shared(Arc<Mutex<LocalRelay>>);

impl MediaControl for Shared {
    fn allocate(&mut self, now: Instant, call: CallRef, leg: MediaLeg) -> Result<u16, LimitHit> {
        self.0.lock().unwrap().allocate(now, call, leg)
    }
    fn set_peer(&mut self, now: Instant, call: CallRef, leg: MediaLeg, peer: Peer, r: bool) {
        self.0.lock().unwrap().set_peer(now, call, leg, peer, r)
    }
    fn set_srtp(&mut self, now: Instant, call: CallRef, leg: MediaLeg, keys: SrtpKeys) {
        self.0.lock().unwrap().set_srtp(now, call, leg, keys)
    }
    fn pair(&mut self, now: Instant, call: CallRef) {
        self.0.lock().unwrap().pair(now, call)
    }
    fn pair_direct(&mut self, now: Instant, call: CallRef, leg: MediaLeg, peer: DirectPeer) {
        self.0.lock().unwrap().pair_direct(now, call, leg, peer)
    }
    fn release(&mut self, now: Instant, call: CallRef, leg: MediaLeg) {
        self.0.lock().unwrap().release(now, call, leg)
    }
    fn release_call(&mut self, now: Instant, call: CallRef) {
        self.0.lock().unwrap().release_call(now, call)
    }
}

/// An office phone over TLS calling an office phone over UDP.
fn srtp_rig(callee_transport: Transport) -> (Rig, Shared) {
    let shared = Shared(Arc::new(Mutex::new(LocalRelay::new(
        relay::Relay::new(relay::Config::default(), &mut rand::thread_rng()).unwrap(),
    ))));
    let mut rig = Rig::new(1);
    rig.b2b = B2bua::new(
        B2buaConfig {
            media: MediaAddresses {
                public: Some("203.0.113.10".parse().unwrap()),
                internal: None,
                learned: false,
            },
            ..B2buaConfig::default()
        },
        2,
        Box::new(shared.clone()),
    );
    rig.a = Path {
        transport: Transport::Tls,
        ..path("192.168.1.20:40000", Zone::Internal)
    };
    rig.b[0].transport = callee_transport;
    (rig, shared)
}

const PHONE_KEY: &str = "PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR";
const PHONE_KEY_2: &str = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNk";

fn srtp_sdp(proto: &str, key: &str, version: u32) -> String {
    format!("v=0\r\no=alice 1 {version} IN IP4 192.168.1.20\r\ns=-\r\nc=IN IP4 192.168.1.20\r\nt=0 0\r\nm=audio 4000 {proto} 0 101\r\na=rtpmap:101 telephone-event/8000\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{key}\r\na=sendrecv\r\n")
}

fn invite_with(sdp: &str, transport: &str) -> Request {
    let text = format!("INVITE sip:2002@192.168.1.10 SIP/2.0\r\nVia: SIP/2.0/{transport} 192.168.1.20:5061;branch=z9hG4bKsrtp1;rport\r\nMax-Forwards: 70\r\nFrom: <sip:2001@192.168.1.10>;tag=alice\r\nTo: <sip:2002@192.168.1.10>\r\nCall-ID: srtp-call@192.168.1.20\r\nCSeq: 1 INVITE\r\nContact: <sip:2001@192.168.1.20:5061;transport=tls>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}", sdp.len());
    let Ok(Message::Request(r)) = parse_datagram(text.as_bytes(), 65535) else {
        panic!()
    };
    r
}

fn crypto_lines(sdp: &Sdp) -> Vec<String> {
    sdp.audio()
        .unwrap()
        .crypto()
        .map(|c| format!("{} {} {}", c.tag, c.suite, c.key_params))
        .collect()
}

fn key_of(sdp: &Sdp) -> MasterKey {
    let audio = sdp.audio().unwrap();
    let c: Crypto<'_> = audio.crypto().next().expect("a=crypto");
    c.master_key().unwrap()
}

fn phone_key(b64: &str) -> MasterKey {
    Crypto::parse(&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{b64}"))
        .unwrap()
        .master_key()
        .unwrap()
}

fn rtp(seq: u16, ssrc: u32) -> Vec<u8> {
    let mut p = vec![0x80, 0];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(&[0x55; 160]);
    p
}

/// Sends `pkt` to relay port `port` from `from`; where it went and the bytes.
fn relay_packet(
    shared: &Shared,
    now: Instant,
    port: u16,
    from: &str,
    pkt: &[u8],
) -> Option<(SocketAddr, Vec<u8>)> {
    let mut buf = pkt.to_vec();
    buf.resize(pkt.len() + relay::SRTP_TRAILER, 0);
    let mut r = shared.0.lock().unwrap();
    let (f, n) = r.relay.handle_packet(
        now,
        relay::RelayPort::new(port),
        from.parse().unwrap(),
        &mut buf,
        pkt.len(),
    )?;
    Some((f.to, buf[..n].to_vec()))
}

struct Established {
    rig: Rig,
    shared: Shared,
    /// Homeline's a=crypto to the caller.
    answer_crypto: Vec<String>,
    ours: MasterKey,
    caller_port: u16,
}

/// The SRTP phone calls the plain phone; the answer reaches the caller.
fn establish(proto: &str) -> Established {
    let (mut rig, shared) = srtp_rig(Transport::Udp);
    let (a, b) = (rig.a, rig.b[0]);
    rig.feed(
        a,
        Message::Request(invite_with(&srtp_sdp(proto, PHONE_KEY, 1), "TLS")),
    );
    let b_invite = request_to(&rig.sent(), b, Method::Invite);
    let offer = Sdp::parse(&b_invite.body).unwrap();
    let text = String::from_utf8_lossy(&b_invite.body).to_string();
    assert!(
        !text.contains(PHONE_KEY),
        "the phone's key never leaves its leg:\n{text}"
    );
    assert!(
        crypto_lines(&offer).is_empty(),
        "no SDES to a UDP leg:\n{text}"
    );
    assert_eq!(offer.audio().unwrap().media_line().proto, "RTP/AVP");
    let ep = crate::sdp::media_endpoint(&offer).unwrap();
    assert_eq!(
        ep.addr.to_string(),
        "192.168.1.10",
        "anchored: the relay translates"
    );
    rig.bob_answers(b, &b_invite, 200, true);
    let out = rig.sent();
    assert_eq!(statuses_to(&out, a), [200]);
    let ok = out
        .iter()
        .find_map(|(to, m)| match m {
            Message::Response(r) if *to == a && r.status == StatusCode::OK => Some(r.clone()),
            _ => None,
        })
        .unwrap();
    let answer = Sdp::parse(&ok.body).unwrap();
    assert_eq!(answer.audio().unwrap().media_line().proto, proto);
    let lines = crypto_lines(&answer);
    assert_eq!(lines.len(), 1);
    assert!(
        lines[0].starts_with("1 AES_CM_128_HMAC_SHA1_80 inline:"),
        "{lines:?}"
    );
    let ours = key_of(&answer);
    assert_ne!(
        ours,
        phone_key(PHONE_KEY),
        "homeline answers with its own key"
    );
    let caller_port = crate::sdp::media_endpoint(&answer).unwrap().rtp_port;
    Established {
        rig,
        shared,
        answer_crypto: lines,
        ours,
        caller_port,
    }
}

#[test]
fn rfc4568_srtp_phone_over_tls_talks_to_plain_rtp_phone_through_the_relay() {
    let e = establish("RTP/SAVP");
    let now = e.rig.now + Duration::from_millis(20);
    let mut phone_tx = srtp::Context::new(&phone_key(PHONE_KEY)).unwrap();
    let mut phone_rx = srtp::Context::new(&e.ours).unwrap();
    // Phone → relay → plain phone (its SDP address, 192.168.1.30:6000).
    let plain = rtp(1, 0xa);
    let mut buf = plain.clone();
    buf.resize(plain.len() + 20, 0);
    let n = phone_tx.protect_rtp(&mut buf, plain.len()).unwrap();
    let (to, out) = relay_packet(
        &e.shared,
        now,
        e.caller_port,
        "192.168.1.20:4000",
        &buf[..n],
    )
    .expect("decrypted and forwarded");
    assert_eq!((to.to_string().as_str(), out), ("192.168.1.30:6000", plain));
    // Plain phone → relay → SRTP phone, under homeline's key.
    let plain = rtp(100, 0xb);
    let (to, mut out) =
        relay_packet(&e.shared, now, e.caller_port, "192.168.1.30:6000", &plain).unwrap();
    assert_eq!(to.to_string(), "192.168.1.20:4000");
    let n = phone_rx.unprotect_rtp(&mut out).unwrap();
    assert_eq!(out[..n], plain[..]);
}

#[test]
fn rfc4568_reinvite_keeps_homeline_key_and_takes_a_new_device_key() {
    let mut e = establish("RTP/SAVP");
    let a = e.rig.a;
    let b = e.rig.b[0];
    let reinvite = |sdp: &str, cseq: u32, tag: &str| {
        let text = format!("INVITE sip:homeline@192.168.1.10:5060 SIP/2.0\r\nVia: SIP/2.0/TLS 192.168.1.20:5061;branch=z9hG4bKre{cseq};rport\r\nMax-Forwards: 70\r\nFrom: <sip:2001@192.168.1.10>;tag=alice\r\nTo: <sip:2002@192.168.1.10>;tag={tag}\r\nCall-ID: srtp-call@192.168.1.20\r\nCSeq: {cseq} INVITE\r\nContact: <sip:2001@192.168.1.20:5061;transport=tls>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}", sdp.len());
        let Ok(Message::Request(r)) = parse_datagram(text.as_bytes(), 65535) else {
            panic!()
        };
        r
    };
    // Homeline's tag on the caller's dialog, from the 200 of the INVITE.
    let tag = {
        let calls = &e.rig.b2b.calls;
        calls
            .values()
            .next()
            .unwrap()
            .caller
            .dialog
            .local_tag
            .clone()
    };
    let ack = format!("ACK sip:homeline@192.168.1.10:5060 SIP/2.0\r\nVia: SIP/2.0/TLS 192.168.1.20:5061;branch=z9hG4bKack1;rport\r\nMax-Forwards: 70\r\nFrom: <sip:2001@192.168.1.10>;tag=alice\r\nTo: <sip:2002@192.168.1.10>;tag={tag}\r\nCall-ID: srtp-call@192.168.1.20\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n");
    e.rig
        .feed(a, parse_datagram(ack.as_bytes(), 65535).unwrap());
    e.rig.sent();
    for (cseq, key, version) in [(2, PHONE_KEY, 2), (3, PHONE_KEY_2, 3)] {
        e.rig.feed(
            a,
            Message::Request(reinvite(&srtp_sdp("RTP/SAVP", key, version), cseq, &tag)),
        );
        let b_re = request_to(&e.rig.sent(), b, Method::Invite);
        assert!(crypto_lines(&Sdp::parse(&b_re.body).unwrap()).is_empty());
        let ok = reply(&b_re, 200, "bob", "<sip:2002@192.168.1.30>", true);
        e.rig.feed(b, Message::Response(ok));
        let out = e.rig.sent();
        let ok = out
            .iter()
            .find_map(|(to, m)| match m {
                Message::Response(r) if *to == a && r.status == StatusCode::OK => Some(r.clone()),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no 200 for re-INVITE {cseq}: {out:#?}"));
        let answer = Sdp::parse(&ok.body).unwrap();
        assert_eq!(
            crypto_lines(&answer),
            e.answer_crypto,
            "same homeline key, re-INVITE {cseq}"
        );
    }
    // The relay now takes the phone's new key, and still encrypts with homeline's.
    let now = e.rig.now + Duration::from_millis(40);
    let mut phone_tx = srtp::Context::new(&phone_key(PHONE_KEY_2)).unwrap();
    let plain = rtp(7, 0xa);
    let mut buf = plain.clone();
    buf.resize(plain.len() + 20, 0);
    let n = phone_tx.protect_rtp(&mut buf, plain.len()).unwrap();
    let fwd = relay_packet(
        &e.shared,
        now,
        e.caller_port,
        "192.168.1.20:4000",
        &buf[..n],
    );
    assert_eq!(fwd.map(|f| f.1), Some(plain));
}

#[test]
fn rfc4568_sdes_over_udp_savp_is_refused_avp_is_answered_plain() {
    // RTP/SAVP with keys over UDP: 488 with a Warning naming the reason.
    let (mut rig, _) = srtp_rig(Transport::Udp);
    rig.a.transport = Transport::Udp;
    let a = rig.a;
    rig.feed(
        a,
        Message::Request(invite_with(&srtp_sdp("RTP/SAVP", PHONE_KEY, 1), "UDP")),
    );
    let out = rig.sent();
    assert_eq!(statuses_to(&out, a), [488]);
    let r = out
        .iter()
        .find_map(|(_, m)| match m {
            Message::Response(r) => Some(r.clone()),
            _ => None,
        })
        .unwrap();
    let w = r.headers.get(&HeaderName::Warning).unwrap().to_string();
    assert!(w.contains("only accepted over TLS"), "{w}");
    assert!(!w.contains(PHONE_KEY));

    // RTP/AVP with keys over UDP (optional SRTP): plain, keys dropped, direct media.
    let (mut rig, _) = srtp_rig(Transport::Udp);
    rig.a.transport = Transport::Udp;
    let (a, b) = (rig.a, rig.b[0]);
    rig.feed(
        a,
        Message::Request(invite_with(&srtp_sdp("RTP/AVP", PHONE_KEY, 1), "UDP")),
    );
    let b_invite = request_to(&rig.sent(), b, Method::Invite);
    let offer = Sdp::parse(&b_invite.body).unwrap();
    assert!(crypto_lines(&offer).is_empty());
    assert_eq!(
        crate::sdp::media_endpoint(&offer).unwrap().addr.to_string(),
        "192.168.1.20",
        "two plain internal phones keep direct media"
    );
    rig.bob_answers(b, &b_invite, 200, true);
    let out = rig.sent();
    assert_eq!(statuses_to(&out, a), [200]);
}

#[test]
fn rfc4568_srtp_to_srtp_over_tls_each_leg_gets_its_own_key() {
    let (mut rig, _) = srtp_rig(Transport::Tls);
    let (a, b) = (rig.a, rig.b[0]);
    rig.feed(
        a,
        Message::Request(invite_with(&srtp_sdp("RTP/SAVP", PHONE_KEY, 1), "TLS")),
    );
    let b_invite = request_to(&rig.sent(), b, Method::Invite);
    let offer = Sdp::parse(&b_invite.body).unwrap();
    assert_eq!(offer.audio().unwrap().media_line().proto, "RTP/SAVP");
    let to_callee = key_of(&offer);
    assert_ne!(to_callee, phone_key(PHONE_KEY));
    // The callee answers with its own key; the caller gets a third one.
    let callee_sdp = format!(
        "v=0\r\no=bob 7 7 IN IP4 192.168.1.30\r\ns=-\r\nc=IN IP4 192.168.1.30\r\nt=0 0\r\nm=audio 6000 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{PHONE_KEY_2}\r\n"
    );
    let ok = reply(
        &b_invite,
        200,
        "bob",
        "<sip:2002@192.168.1.30;transport=tls>",
        false,
    )
    .with_body("application/sdp", bytes::Bytes::from(callee_sdp));
    rig.feed(b, Message::Response(ok));
    let out = rig.sent();
    let ok = out
        .iter()
        .find_map(|(to, m)| match m {
            Message::Response(r) if *to == a && r.status == StatusCode::OK => Some(r.clone()),
            _ => None,
        })
        .unwrap();
    let to_caller = key_of(&Sdp::parse(&ok.body).unwrap());
    assert_ne!(to_caller, to_callee);
    assert_ne!(
        to_caller,
        phone_key(PHONE_KEY_2),
        "the callee's key is not passed on"
    );
}

#[test]
fn payload_security_callee_is_offered_rtp_savp_and_an_answer_without_keys_fails() {
    let (mut rig, _) = srtp_rig(Transport::Tls);
    rig.a.transport = Transport::Udp;
    let (a, b) = (rig.a, rig.b[0]);
    let plain = "v=0\r\no=alice 1 1 IN IP4 192.168.1.20\r\ns=-\r\nc=IN IP4 192.168.1.20\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";
    rig.secure_callee = true;
    rig.feed(a, Message::Request(invite_with(plain, "UDP")));
    let b_invite = request_to(&rig.sent(), b, Method::Invite);
    let offer = Sdp::parse(&b_invite.body).unwrap();
    assert_eq!(offer.audio().unwrap().media_line().proto, "RTP/SAVP");
    assert_eq!(crypto_lines(&offer).len(), 1);
    // The callee answers plain: the fork fails, the caller hears 488.
    rig.bob_answers(b, &b_invite, 200, true);
    let out = rig.sent();
    assert_eq!(statuses_to(&out, a), [488]);
}

/// RFC 4568 (an answerer may send SRTP before its answer reaches the offerer): while
/// homeline's SRTP offer to the callee awaits its answer, what reaches the callee's relay
/// port is dropped, not passed to the caller as plain RTP under homeline's key; once the
/// answer names the callee's key, its SRTP goes through.
#[test]
fn rfc4568_packets_from_the_callee_before_its_answer_are_dropped() {
    let (mut rig, shared) = srtp_rig(Transport::Tls);
    let (a, b) = (rig.a, rig.b[0]);
    rig.feed(
        a,
        Message::Request(invite_with(&srtp_sdp("RTP/SAVP", PHONE_KEY, 1), "TLS")),
    );
    let b_invite = request_to(&rig.sent(), b, Method::Invite);
    let offer = Sdp::parse(&b_invite.body).unwrap();
    let callee_port = crate::sdp::media_endpoint(&offer).unwrap().rtp_port;
    let now = rig.now + Duration::from_millis(20);
    // The callee's first packets, already SRTP under its key, and a stranger's plain RTP.
    let mut callee_tx = srtp::Context::new(&phone_key(PHONE_KEY_2)).unwrap();
    let plain = rtp(1, 0xb);
    let mut early = plain.clone();
    early.resize(plain.len() + 20, 0);
    let n = callee_tx.protect_rtp(&mut early, plain.len()).unwrap();
    early.truncate(n);
    for (from, pkt) in [("192.168.1.30:6000", &early), ("198.51.100.7:9", &plain)] {
        assert_eq!(
            relay_packet(&shared, now, callee_port, from, pkt),
            None,
            "forwarded before the callee's key is known (from {from})"
        );
    }
    let callee_sdp = format!(
        "v=0\r\no=bob 7 7 IN IP4 192.168.1.30\r\ns=-\r\nc=IN IP4 192.168.1.30\r\nt=0 0\r\nm=audio 6000 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{PHONE_KEY_2}\r\n"
    );
    let ok = reply(
        &b_invite,
        200,
        "bob",
        "<sip:2002@192.168.1.30;transport=tls>",
        false,
    )
    .with_body("application/sdp", bytes::Bytes::from(callee_sdp));
    rig.feed(b, Message::Response(ok));
    let out = rig.sent();
    let ok = out
        .iter()
        .find_map(|(to, m)| match m {
            Message::Response(r) if *to == a && r.status == StatusCode::OK => Some(r.clone()),
            _ => None,
        })
        .unwrap();
    let mut caller_rx = srtp::Context::new(&key_of(&Sdp::parse(&ok.body).unwrap())).unwrap();
    let plain = rtp(2, 0xb);
    let mut pkt = plain.clone();
    pkt.resize(plain.len() + 20, 0);
    let n = callee_tx.protect_rtp(&mut pkt, plain.len()).unwrap();
    let (to, mut fwd) = relay_packet(&shared, now, callee_port, "192.168.1.30:6000", &pkt[..n])
        .expect("the callee's SRTP is forwarded once its key is known");
    assert_eq!(to.to_string(), "192.168.1.20:4000");
    let n = caller_rx.unprotect_rtp(&mut fwd).unwrap();
    assert_eq!(fwd[..n], plain[..]);
}
