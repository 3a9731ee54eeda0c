//! What the running server answers on the wire: RFC 4475 §3.3 application-layer torture tests,
//! malformed requests (400 with a Warning, 505, 513), dropped garbage, TCP keepalives (RFC 5626
//! §3.5.1), OPTIONS, and `homeline sip check` on the same material.
#![allow(clippy::unwrap_used)] // test helpers: a panic is a failed test

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use common::{Server, TempDir, Ua, BIN};
use sip::{HeaderName, Response};

fn torture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../../../shared/conformance/rfc4475/valid/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn answer(ua: &Ua, bytes: &[u8]) -> Response {
    ua.request(bytes)
}

fn request(method: &str, uri: &str, extra: &str) -> Vec<u8> {
    format!(
        "{method} {uri} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK{method}{}\r\nMax-Forwards: 70\r\nFrom: <sip:a@example.com>;tag=1\r\nTo: <sip:b@example.com>\r\nCall-ID: wire-{method}\r\nCSeq: 1 {method}\r\n{extra}Content-Length: 0\r\n\r\n",
        extra.len()
    )
    .into_bytes()
}

#[test]
fn rfc4475_3_3_behaviour_on_the_wire() {
    let data = TempDir::new("wire");
    let server = Server::start(&data.0);
    let ua = Ua::new(server.internal);
    let cases: [(&str, u16); 8] = [
        ("unkscm.dat", 416),   // §3.3.2
        ("novelsc.dat", 416),  // §3.3.3
        ("unksm2.dat", 400),   // §3.3.4: a registrar needs a SIP AOR in To
        ("bext01.dat", 420),   // §3.3.5
        ("regaut01.dat", 401), // §3.3.7: we authenticate, with a scheme we understand
        ("zeromf.dat", 483),   // §3.3.11
        ("intmeth.dat", 501),  // §3.1.1.2: unknown method at an endpoint
        ("esc02.dat", 501),    // §3.1.1.5: RE%47IST%45R is not REGISTER
    ];
    for (file, status) in cases {
        let resp = answer(&ua, &torture(file));
        assert_eq!(resp.status.as_u16(), status, "{file}: {resp:?}");
        if status == 420 {
            let unsupported = resp.headers.get(&HeaderName::Unsupported).unwrap();
            assert!(unsupported.contains("nothingSupportsThis"), "{unsupported}");
        }
        if status == 501 {
            assert!(resp.headers.get(&HeaderName::Allow).is_some());
        }
        if status == 401 {
            assert!(resp
                .headers
                .get(&HeaderName::WwwAuthenticate)
                .unwrap()
                .starts_with("Digest "));
        }
    }
}

#[test]
fn malformed_requests_get_clear_errors_and_garbage_is_dropped() {
    let data = TempDir::new("malformed");
    let server = Server::start(&data.0);
    let ua = Ua::new(server.internal);

    let ok = answer(&ua, &request("OPTIONS", "sip:pbx.example", ""));
    assert_eq!(ok.status.as_u16(), 200);
    assert!(ok
        .headers
        .get(&HeaderName::Allow)
        .unwrap()
        .contains("REGISTER"));

    let wrong_cseq = String::from_utf8(request("OPTIONS", "sip:pbx.example", ""))
        .unwrap()
        .replace("CSeq: 1 OPTIONS", "CSeq: 1 INVITE");
    let resp = answer(&ua, wrong_cseq.as_bytes());
    assert_eq!(resp.status.as_u16(), 400);
    assert!(
        resp.headers
            .get(&HeaderName::Warning)
            .unwrap()
            .contains("CSeq method"),
        "{resp:?}"
    );

    let twice =
        String::from_utf8(request("OPTIONS", "sip:pbx.example", "Call-ID: again\r\n")).unwrap();
    let resp = answer(&ua, twice.replace("wire-OPTIONS", "wire-twice").as_bytes());
    assert_eq!(resp.status.as_u16(), 400);
    assert!(
        resp.headers
            .get(&HeaderName::Warning)
            .unwrap()
            .contains("Call-ID"),
        "{resp:?}"
    );

    let v3 = String::from_utf8(request("OPTIONS", "sip:pbx.example", ""))
        .unwrap()
        .replacen("SIP/2.0\r\n", "SIP/3.0\r\n", 1);
    assert_eq!(
        answer(&ua, v3.replace("wire-OPTIONS", "wire-v3").as_bytes())
            .status
            .as_u16(),
        505
    );

    let bad_uri = String::from_utf8(request("OPTIONS", "sip:host:99999", "")).unwrap();
    let resp = answer(&ua, bad_uri.replace("wire-OPTIONS", "wire-uri").as_bytes());
    assert_eq!(resp.status.as_u16(), 400);

    // Garbage and a request too broken to answer are dropped; the server carries on.
    ua.sock
        .send_to(b"\x00\x01\x02 not SIP at all", server.internal)
        .unwrap();
    ua.sock
        .send_to(
            b"OPTIONS sip:x SIP/2.0\r\nno colon here\r\n\r\n",
            server.internal,
        )
        .unwrap();
    ua.sock
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut buf = [0u8; 2048];
    assert!(ua.sock.recv_from(&mut buf).is_err(), "no answer to garbage");
    ua.sock
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let again = String::from_utf8(request("OPTIONS", "sip:pbx.example", ""))
        .unwrap()
        .replace("wire-OPTIONS", "wire-after");
    assert_eq!(answer(&ua, again.as_bytes()).status.as_u16(), 200);
}

#[test]
fn tcp_framing_keepalive_and_oversized_message() {
    let data = TempDir::new("tcp");
    let server = Server::start(&data.0);
    let mut s = TcpStream::connect(server.internal).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    // RFC 5626 §3.5.1: a CRLFCRLF ping gets a CRLF pong.
    s.write_all(b"\r\n\r\n").unwrap();
    let mut pong = [0u8; 2];
    s.read_exact(&mut pong).unwrap();
    assert_eq!(&pong, b"\r\n");
    // A request split across writes is framed by Content-Length and answered on the same connection.
    let req = String::from_utf8(request("OPTIONS", "sip:pbx.example", ""))
        .unwrap()
        .replace("SIP/2.0/UDP", "SIP/2.0/TCP");
    let (a, b) = req.as_bytes().split_at(40);
    s.write_all(a).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    s.write_all(b).unwrap();
    let resp = read_response(&mut s);
    assert!(resp.starts_with("SIP/2.0 200 OK\r\n"), "{resp}");
    // 513 for a message announcing more than the maximum, then the stream is closed.
    let big = req
        .replace("Content-Length: 0", "Content-Length: 900000")
        .replace("wire-OPTIONS", "wire-big");
    s.write_all(big.as_bytes()).unwrap();
    let resp = read_response(&mut s);
    assert!(resp.starts_with("SIP/2.0 513 "), "{resp}");
}

fn read_response(s: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).unwrap();
        buf.push(byte[0]);
    }
    String::from_utf8(buf).unwrap()
}

#[test]
fn sip_check_accepts_every_torture_message_and_rejects_broken_ones() {
    let dir = format!(
        "{}/../../../shared/conformance/rfc4475/valid",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path().display().to_string())
        .filter(|p| p.ends_with(".dat"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 27);
    let out = Command::new(BIN)
        .args(["sip", "check"])
        .args(&files)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("unkscm.dat: valid") && text.contains("416"),
        "{text}"
    );

    let tmp = TempDir::new("check");
    let broken = tmp.0.join("broken.sip");
    std::fs::write(&broken, "OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n").unwrap();
    let out = Command::new(BIN)
        .args(["sip", "check"])
        .arg(&broken)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("CSeq method INVITE does not match request method OPTIONS")
            && text.contains("400"),
        "{text}"
    );
}
