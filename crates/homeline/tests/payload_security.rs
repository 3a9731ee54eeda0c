//! A station's payload-security flag on the wire: TLS and SRTP are mandatory for it, so a
//! REGISTER over UDP or TCP is refused with 403 and a Warning saying why, while a station
//! without the flag registers as usual. The refusal comes only after digest: before it, the
//! station is challenged like any other number (no user enumeration).
#![allow(clippy::unwrap_used)] // test helpers: a panic is a failed test

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{cli, Server, TempDir, Ua};
use sip::HeaderName;

const PW: &str = "Hq#rtpSecure7Z";

#[test]
fn payload_security_station_register_without_tls_is_refused_with_a_warning() {
    let data = TempDir::new("payload-security");
    cli(&data.0, &["station", "add", "2401", "--password", PW]);
    cli(&data.0, &["station", "add", "2402", "--password", PW]);
    cli(
        &data.0,
        &["station", "set", "2401", "--payload-security", "on"],
    );
    assert!(cli(&data.0, &["station", "show", "2401"]).contains("payload security:  on"));
    let server = Server::start(&data.0);

    // UDP.
    let mut ua = Ua::new(server.internal);
    let contact = format!("<sip:2401@{}>", ua.local());
    let r = ua.register("2401", Some(&contact), Some(60), None);
    assert_eq!(r.status.as_u16(), 401, "challenged like any number");
    assert!(r.headers.get(&HeaderName::Warning).is_none());
    let r = ua.register_with_digest("2401", PW, Some(&contact), Some(60));
    assert_eq!(r.status.as_u16(), 403);
    let w = r.headers.get(&HeaderName::Warning).unwrap().to_string();
    assert!(w.contains("payload security requires TLS"), "{w}");
    // The station without the flag is challenged as usual.
    let mut other = Ua::new(server.internal);
    let contact = format!("<sip:2402@{}>", other.local());
    assert_eq!(
        other
            .register("2402", Some(&contact), Some(60), None)
            .status
            .as_u16(),
        401
    );

    // TCP.
    let mut s = TcpStream::connect(server.internal).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let local = s.local_addr().unwrap();
    let mut exchange = |cseq: u32, auth: Option<&str>| -> String {
        let auth = auth.map_or(String::new(), |a| format!("Authorization: {a}\r\n"));
        let req = format!("REGISTER sip:{srv} SIP/2.0\r\nVia: SIP/2.0/TCP {local};branch=z9hG4bKps{cseq}\r\nMax-Forwards: 70\r\nFrom: <sip:2401@{srv}>;tag=ps\r\nTo: <sip:2401@{srv}>\r\nCall-ID: ps-tcp\r\nCSeq: {cseq} REGISTER\r\nContact: <sip:2401@{local};transport=tcp>\r\nExpires: 60\r\n{auth}Content-Length: 0\r\n\r\n", srv = server.internal);
        s.write_all(req.as_bytes()).unwrap();
        let mut buf = [0u8; 4096];
        let mut text = String::new();
        while !text.contains("\r\n\r\n") {
            let n = s.read(&mut buf).unwrap();
            assert!(n > 0, "connection closed: {text}");
            text.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        text
    };
    let text = exchange(1, None);
    assert!(text.starts_with("SIP/2.0 401"), "{text}");
    let Ok(sip::Message::Response(challenge)) = sip::parse_datagram(text.as_bytes(), 65_535) else {
        panic!("unparsable {text}")
    };
    let auth = common::authorization(&challenge, "2401", PW, &format!("sip:{}", server.internal));
    let text = exchange(2, Some(&auth));
    assert!(text.starts_with("SIP/2.0 403"), "{text}");
    assert!(text.contains("payload security requires TLS"), "{text}");
}
