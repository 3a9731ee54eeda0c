//! The SIPS URI scheme end to end (RFC 3261 §26.2.2, §12.1.1; RFC 5630 §5.2, §5.3): baresip
//! phones with `sips:` AORs registering over TLS and calling `sips:NUMBER` with audio both ways;
//! a SIPS call to a station reachable only over UDP refused with 480 and warn-code 380; `sips:`
//! Request-URIs and `sips:` Contacts over UDP and TCP refused the same way (raw sockets: the
//! Debian SIPp has no TLS and would not add anything here).
#![allow(clippy::unwrap_used)] // test helpers: a panic is a failed test

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use common::baresip::{assert_flowing, flow, start_server, Phone, PW, SAMPLE};
use common::tls::{phone_files, self_signed, tls_pbx};
use common::TempDir;

/// One request over UDP to `to`; the first final response (provisionals skipped).
fn udp_exchange(to: SocketAddr, request: &str) -> String {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let text = request.replace("LOCAL", &sock.local_addr().unwrap().to_string());
    sock.send_to(text.as_bytes(), to).unwrap();
    let mut buf = [0u8; 65535];
    loop {
        let (n, _) = sock.recv_from(&mut buf).expect("no answer over UDP");
        let r = String::from_utf8_lossy(&buf[..n]).into_owned();
        if !r.starts_with("SIP/2.0 1") {
            return r;
        }
    }
}

/// One request over a new TCP connection to `to`; the first final response.
fn tcp_exchange(to: SocketAddr, request: &str) -> String {
    let mut s = TcpStream::connect(to).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let text = request
        .replace("LOCAL", &s.local_addr().unwrap().to_string())
        .replace("SIP/2.0/UDP", "SIP/2.0/TCP");
    s.write_all(text.as_bytes()).unwrap();
    let mut got = String::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let n = s.read(&mut buf).expect("no answer over TCP");
        assert!(n > 0, "connection closed: {got}");
        got.push_str(&String::from_utf8_lossy(&buf[..n]));
        // Each response ends with an empty line (no bodies here).
        if let Some(last) = got
            .split("\r\n\r\n")
            .filter(|m| m.starts_with("SIP/2.0 "))
            .find(|m| !m.starts_with("SIP/2.0 1"))
        {
            return last.to_string();
        }
        assert!(Instant::now() < deadline, "no final response: {got}");
    }
}

fn request(method: &str, uri: &str, contact: &str) -> String {
    format!(
        "{method} {uri} SIP/2.0\r\nVia: SIP/2.0/UDP LOCAL;branch=z9hG4bK-sips-{method}-{n};rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:2001@127.0.0.1>;tag=t1\r\nTo: <sip:2001@127.0.0.1>\r\n\
         Call-ID: sips-{method}-{n}@test\r\nCSeq: 1 {method}\r\nContact: {contact}\r\n\
         Content-Length: 0\r\n\r\n",
        n = common::free_port()
    )
}

/// A 480 with warn-code 380 (RFC 5630 §9 "SIPS Not Allowed").
fn assert_sips_not_allowed(resp: &str, what: &str) {
    assert!(
        resp.starts_with("SIP/2.0 480 "),
        "{what}: want 480, got:\n{resp}"
    );
    let warning = resp
        .lines()
        .find(|l| l.starts_with("Warning:"))
        .unwrap_or_else(|| panic!("{what}: no Warning:\n{resp}"));
    assert!(
        warning.contains(" 380 homeline \"SIPS Not Allowed"),
        "{what}: {warning}"
    );
}

#[test]
fn rfc5630_5_3_sips_request_uri_and_sips_contact_over_udp_and_tcp_are_refused_480_warning_380() {
    let data = TempDir::new("sips-insecure");
    common::cli(
        &data.0,
        &["station", "add", "2001", "--password", PW, "--sbc", "off"],
    );
    let server = start_server(&data.0, "");
    let to = server.internal;
    for (what, req) in [
        (
            "INVITE to a sips: Request-URI",
            request(
                "INVITE",
                "sips:2002@127.0.0.1",
                "<sips:2001@127.0.0.1:5061>",
            ),
        ),
        (
            "REGISTER to sips:",
            request("REGISTER", "sips:127.0.0.1", "<sips:2001@127.0.0.1:5061>"),
        ),
        (
            "REGISTER of a sips: Contact",
            request("REGISTER", "sip:127.0.0.1", "<sips:2001@127.0.0.1:5061>"),
        ),
        (
            "OPTIONS to sips:",
            request("OPTIONS", "sips:127.0.0.1", "<sip:2001@LOCAL>"),
        ),
    ] {
        assert_sips_not_allowed(&udp_exchange(to, &req), &format!("{what} over UDP"));
        assert_sips_not_allowed(&tcp_exchange(to, &req), &format!("{what} over TCP"));
    }
    // The same requests with sip: are served as usual: the REGISTER is challenged.
    let plain = udp_exchange(
        to,
        &request("REGISTER", "sip:127.0.0.1", "<sip:2001@LOCAL>"),
    );
    assert!(plain.starts_with("SIP/2.0 401 "), "{plain}");
    // transport=tls (deprecated) on a sip: Request-URI over UDP is only a parameter.
    let tls_param = udp_exchange(
        to,
        &request("OPTIONS", "sip:127.0.0.1;transport=tls", "<sip:2001@LOCAL>"),
    );
    assert!(tls_param.starts_with("SIP/2.0 200 "), "{tls_param}");
}

/// `p` calls `sips:number@127.0.0.1`. baresip 1.0 puts `sip:` in front of any dial string
/// without "sip:" in it (so `sips:2002@...` would become `sip:sips:2002@...`): a display name
/// holding "sip:" keeps the `sips:` URI as dialled.
fn dial_sips(p: &mut Phone, number: &str) {
    p.dial(&format!("\"sip:\" <sips:{number}@127.0.0.1>"));
}

/// Two sips: phones on the internal TLS listener and a plain UDP phone.
struct Office {
    _certs: TempDir,
    pbx: common::tls::TlsPbx,
    a: Phone,
    b: Phone,
}

fn office(tag: &str) -> Office {
    let certs = TempDir::new(&format!("{tag}-certs"));
    let (crt, key) = self_signed(&certs.0, "server", "127.0.0.1");
    let pbx = tls_pbx(
        tag,
        &[("2001", false), ("2002", false), ("2003", false)],
        &crt,
        &key,
        "",
        "",
    );
    let mut a = Phone::start_sips(
        "SIPS-2001",
        pbx.internal,
        "2001",
        PW,
        &phone_files(&certs.0, "a", &[&crt]),
    );
    let mut b = Phone::start_sips(
        "SIPS-2002",
        pbx.internal,
        "2002",
        PW,
        &phone_files(&certs.0, "b", &[&crt]),
    );
    a.wait_registered();
    b.wait_registered();
    Office {
        _certs: certs,
        pbx,
        a,
        b,
    }
}

#[test]
fn rfc5630_5_3_sips_call_between_tls_phones_audio_both_ways_callee_leg_sips_request_uri() {
    let Office {
        pbx, mut a, mut b, ..
    } = office("sips-call");
    // Both registered with a sips: AOR over TLS.
    for p in [&a, &b] {
        let reg = p
            .trace()
            .into_iter()
            .find(|m| m.sent && m.start.starts_with("REGISTER "))
            .unwrap();
        assert!(reg.start.starts_with("REGISTER sips:"), "{}", reg.text);
        assert!(p.output().contains("{0/TLS/v4} 200 OK"), "{}", p.name);
    }

    dial_sips(&mut a, "2002");
    let deadline = Instant::now() + Duration::from_secs(10);
    while b
        .try_wait_any(&["CALL_INCOMING"], Duration::from_millis(100))
        .is_none()
    {
        assert!(
            a.closed_reason().is_none(),
            "sips call closed before it rang: {:?}",
            a.invite_statuses()
        );
        assert!(Instant::now() < deadline, "2002 never rang");
    }
    b.answer();
    b.wait_established();
    a.wait_established();
    b.wait_rtp();
    a.wait_rtp();
    let (sa, sb) = flow(&mut a, &mut b, SAMPLE);
    assert_flowing((&a, sa), (&b, sb), "sips call");

    // The callee leg: a sips: Request-URI (its registered contact, scheme replaced, no
    // transport=tls) over TLS, and homeline's Contact is sips: (RFC 3261 §12.1.1).
    let invite = b
        .trace()
        .into_iter()
        .find(|m| !m.sent && m.start.starts_with("INVITE "))
        .unwrap();
    assert!(
        invite.start.starts_with("INVITE sips:2002"),
        "{}",
        invite.text
    );
    assert!(!invite.start.contains("transport=tls"), "{}", invite.text);
    assert!(
        invite
            .text
            .lines()
            .any(|l| l.starts_with("Via: SIP/2.0/TLS ")),
        "{}",
        invite.text
    );
    let contact = |text: &str| {
        text.lines()
            .find(|l| l.starts_with("Contact:"))
            .unwrap_or_default()
            .to_string()
    };
    // baresip registered a sip: Contact (its stack cannot send to sips: URIs): homeline's
    // Contact towards it stays sip: on TLS, so it can answer and hang up over TLS.
    assert!(
        contact(&invite.text).starts_with("Contact: <sip:homeline@")
            && contact(&invite.text).contains(";transport=tls>"),
        "{}",
        invite.text
    );
    // Nothing of the caller's leg reaches the callee (topology hiding).
    let caller_port = a.sip_port.to_string();
    assert!(
        !invite.text.contains(&caller_port),
        "caller's port in the callee's INVITE:\n{}",
        invite.text
    );
    // The caller's 200 OK: the caller sent a sip: Contact with its sips: Request-URI, so
    // homeline's Contact is sip: on TLS (a sips: one would leave baresip unable to ACK).
    let ok = a
        .trace()
        .into_iter()
        .find(|m| {
            !m.sent
                && m.status() == Some(200)
                && m.text
                    .lines()
                    .any(|l| l.starts_with("CSeq:") && l.ends_with(" INVITE"))
        })
        .unwrap();
    assert!(
        contact(&ok.text).starts_with("Contact: <sip:homeline@")
            && contact(&ok.text).contains(";transport=tls>"),
        "{}",
        ok.text
    );

    // The callee hangs up: its BYE reaches homeline over TLS and the caller is released.
    b.hangup();
    b.wait_closed();
    a.wait_closed();
    drop(pbx.server);
}

#[test]
fn rfc5630_5_3_sips_call_to_a_udp_only_station_is_refused_480_warning_380() {
    let Office { pbx, mut a, .. } = office("sips-to-udp");
    let mut c = Phone::start("UDP-2003", pbx.server.internal, "2003", PW);
    c.wait_registered();

    dial_sips(&mut a, "2003");
    a.wait_invite_status(480);
    let refusal = a
        .trace()
        .into_iter()
        .find(|m| !m.sent && m.status() == Some(480))
        .unwrap();
    assert!(
        refusal
            .text
            .lines()
            .any(|l| l.starts_with("Warning: 380 homeline \"SIPS Not Allowed")),
        "{}",
        refusal.text
    );
    assert!(
        c.try_wait_any(&["CALL_INCOMING"], Duration::from_secs(1))
            .is_none(),
        "the UDP phone rang for a sips: call"
    );
    // The same station is reachable with sip: (RFC 5630 §3.1.3: SIP over TLS is best effort).
    a.dial("sip:2003@127.0.0.1");
    c.wait_event("CALL_INCOMING");
}
