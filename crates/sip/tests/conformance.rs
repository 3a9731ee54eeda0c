//! RFC 4475 §3 and RFC 5118 §4 torture messages, one test per message, named after its section.
//!
//! The messages live in `shared/conformance/` beside the repository; a missing file fails the test.
#![allow(clippy::unwrap_used)] // test helpers: a panic is a failed test

use sip::header::{Contact, NameAddr};
use sip::{
    parse_datagram, validate_request, HeaderAccess, HeaderName, Host, Message, Method, Request,
    Uri, DEFAULT_MAX_MESSAGE,
};

fn vector(path: &str) -> Vec<u8> {
    let full = format!(
        "{}/../../../shared/conformance/{path}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&full).unwrap_or_else(|e| panic!("conformance vector {full}: {e}"))
}

fn request(path: &str) -> Request {
    match parse_datagram(&vector(path), DEFAULT_MAX_MESSAGE) {
        Ok(Message::Request(r)) => r,
        other => panic!("{path}: expected a request, got {other:?}"),
    }
}

/// Parses, validates, and checks the printed form parses back to the same message.
fn valid_request(path: &str) -> Request {
    let r = request(path);
    validate_request(&r).unwrap_or_else(|e| panic!("{path}: {e}"));
    let again = parse_datagram(&r.to_bytes(), DEFAULT_MAX_MESSAGE).expect("printed form parses");
    assert_eq!(again, Message::Request(r.clone()), "{path}: round trip");
    r
}

fn sip_uri(u: &Uri) -> &sip::SipUri {
    u.as_sip().expect("sip URI")
}

#[test]
fn rfc4475_3_1_1_1_short_tortuous_invite() {
    let r = valid_request("rfc4475/valid/wsinv.dat");
    assert_eq!(r.method, Method::Invite);
    assert_eq!(r.max_forwards(), Some(68));
    assert_eq!(r.cseq().unwrap().seq, 9);
    assert_eq!(r.to().unwrap().tag().as_deref(), Some("1918181833n"));
    assert_eq!(r.from().unwrap().tag().as_deref(), Some("98asjd8"));
    assert_eq!(
        r.from().unwrap().display_name().as_deref(),
        Some("J Rosenberg \\\"")
    );
    assert_eq!(r.headers.get(&HeaderName::Subject), Some(""));
    let vias: Vec<_> = r.headers.values(&HeaderName::Via).collect();
    assert_eq!(vias.len(), 3);
    assert_eq!(r.top_via().unwrap().branch().as_deref(), Some("390skdjuw"));
    let other = HeaderName::Other("NewFangledHeader".into());
    assert_eq!(
        r.headers.get(&other),
        Some("newfangled value continued newfangled value")
    );
    let odd = HeaderName::Other("UnknownHeaderWithUnusualValue".into());
    assert_eq!(r.headers.get(&odd), Some(";;,,;;,;"));
    let Contact::Addr(m) = Contact::parse(r.headers.get(&HeaderName::Contact).unwrap()).unwrap()
    else {
        panic!()
    };
    assert_eq!(m.params.value("newparam").as_deref(), Some("newvalue"));
    assert_eq!(r.body.len(), 150);
}

#[test]
fn rfc4475_3_1_1_2_wide_range_of_valid_characters() {
    let r = valid_request("rfc4475/valid/intmeth.dat");
    assert_eq!(
        r.method,
        Method::Extension("!interesting-Method0123456789_*+`.%indeed'~".into())
    );
    let u = sip_uri(&r.uri);
    assert_eq!(
        u.user.as_deref(),
        Some("1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*")
    );
    assert_eq!(u.host, Host::Domain("example.com".into()));
    assert_eq!(
        r.top_via().unwrap().branch().as_deref(),
        Some("z9hG4bK-.!%66*_+`'~")
    );
    assert_eq!(
        r.to().unwrap().display_name().as_deref(),
        Some("BEL:\x07 NUL:\0 DEL:\x7f")
    );
    assert_eq!(r.from().unwrap().tag().as_deref(), Some("_token~1'+`*%!-."));
}

#[test]
fn rfc4475_3_1_1_3_valid_percent_escaping() {
    let r = valid_request("rfc4475/valid/esc01.dat");
    let u = sip_uri(&r.uri);
    assert_eq!(u.user_unescaped().unwrap(), b"sips:user@example.com");
    let to = r.to().unwrap();
    assert_eq!(sip_uri(&to.uri).user_unescaped().unwrap(), b"user");
}

#[test]
fn rfc4475_3_1_1_4_escaped_nulls() {
    let r = valid_request("rfc4475/valid/escnull.dat");
    let users: Vec<Vec<u8>> = r
        .headers
        .values(&HeaderName::Contact)
        .map(|c| {
            sip_uri(&NameAddr::parse(c).unwrap().uri)
                .user_unescaped()
                .unwrap()
        })
        .collect();
    assert_eq!(users, vec![b"\0".to_vec(), b"\0\0".to_vec()]);
    assert_eq!(
        sip_uri(&r.to().unwrap().uri).user_unescaped().unwrap(),
        b"null-\0-null"
    );
}

#[test]
fn rfc4475_3_1_1_5_percent_not_an_escape() {
    let r = valid_request("rfc4475/valid/esc02.dat");
    assert_eq!(r.method, Method::Extension("RE%47IST%45R".into()));
    assert_eq!(r.headers.values(&HeaderName::Contact).count(), 2);
    assert!(r
        .headers
        .get(&HeaderName::Other("C%6Fntact".into()))
        .is_some());
}

#[test]
fn rfc4475_3_1_1_6_no_lws_before_angle() {
    let r = valid_request("rfc4475/valid/lwsdisp.dat");
    assert_eq!(r.from().unwrap().display.as_deref(), Some("caller"));
}

#[test]
fn rfc4475_3_1_1_7_long_values() {
    let r = valid_request("rfc4475/valid/longreq.dat");
    assert!(r.headers.values(&HeaderName::Via).count() >= 30);
    assert!(r.to().unwrap().display_name().unwrap().len() > 90);
    assert!(r.call_id().unwrap().len() > 100);
}

#[test]
fn rfc4475_3_1_1_8_extra_trailing_octets() {
    let r = valid_request("rfc4475/valid/dblreq.dat");
    assert_eq!(r.method, Method::Register);
    assert!(r.body.is_empty(), "the trailing INVITE is ignored");
}

#[test]
fn rfc4475_3_1_1_9_semicolon_in_user_part() {
    let r = valid_request("rfc4475/valid/semiuri.dat");
    assert_eq!(
        sip_uri(&r.uri).user_unescaped().unwrap(),
        b"user;par=u@example.net"
    );
}

#[test]
fn rfc4475_3_1_1_10_varied_transports() {
    let r = valid_request("rfc4475/valid/transports.dat");
    let t: Vec<String> = r
        .headers
        .values(&HeaderName::Via)
        .map(|v| sip::header::Via::parse(v).unwrap().transport)
        .collect();
    assert_eq!(t, ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]);
}

#[test]
fn rfc4475_3_1_1_11_multipart_with_nul() {
    let r = valid_request("rfc4475/valid/mpart01.dat");
    assert!(r.body.contains(&0));
    let declared: usize = r
        .headers
        .get(&HeaderName::ContentLength)
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(r.body.len(), declared);
}

fn response(path: &str) -> sip::Response {
    let Ok(Message::Response(r)) = parse_datagram(&vector(path), DEFAULT_MAX_MESSAGE) else {
        panic!("{path}")
    };
    sip::validate_response(&r).unwrap_or_else(|e| panic!("{path}: {e}"));
    let again = parse_datagram(&r.to_bytes(), DEFAULT_MAX_MESSAGE).unwrap();
    assert_eq!(again, Message::Response(r.clone()));
    r
}

#[test]
fn rfc4475_3_1_1_12_unusual_reason_phrase() {
    let r = response("rfc4475/valid/unreason.dat");
    assert_eq!(r.status.as_u16(), 200);
    assert!(!r.reason.is_ascii());
}

#[test]
fn rfc4475_3_1_1_13_empty_reason_phrase() {
    let r = response("rfc4475/valid/noreason.dat");
    assert_eq!(r.status.as_u16(), 100);
    assert_eq!(r.reason, "");
}

#[test]
fn rfc4475_3_2_1_missing_transaction_identifier() {
    let r = valid_request("rfc4475/valid/badbranch.dat");
    assert!(!r.top_via().unwrap().has_rfc3261_branch());
}

#[test]
fn rfc4475_3_3_2_unknown_scheme() {
    let r = valid_request("rfc4475/valid/unkscm.dat");
    assert_eq!(r.uri.scheme(), "nobodyknowsthisscheme");
}

#[test]
fn rfc4475_3_3_3_atypical_scheme() {
    let r = valid_request("rfc4475/valid/novelsc.dat");
    assert_eq!(r.uri.scheme(), "soap.beep");
}

#[test]
fn rfc4475_3_3_4_unknown_schemes_in_headers() {
    let r = valid_request("rfc4475/valid/unksm2.dat");
    assert_eq!(r.to().unwrap().uri.scheme(), "isbn");
}

#[test]
fn rfc4475_3_3_5_require_and_proxy_require() {
    let r = valid_request("rfc4475/valid/bext01.dat");
    assert!(r.headers.values(&HeaderName::Require).count() >= 1);
    assert!(r.headers.values(&HeaderName::ProxyRequire).count() >= 1);
}

#[test]
fn rfc4475_3_3_6_unknown_content_type() {
    let r = valid_request("rfc4475/valid/invut.dat");
    assert_eq!(
        r.headers.get(&HeaderName::ContentType),
        Some("application/unknownformat")
    );
}

#[test]
fn rfc4475_3_3_7_unknown_authorization_scheme() {
    let r = valid_request("rfc4475/valid/regaut01.dat");
    let a =
        sip::header::AuthParams::parse(r.headers.get(&HeaderName::Authorization).unwrap()).unwrap();
    assert!(!a.is_digest());
}

#[test]
fn rfc4475_3_3_10_broadcast_via() {
    let r = response("rfc4475/valid/bcast.dat");
    let broadcast = Host::V4("255.255.255.255".parse().unwrap());
    assert!(r
        .headers
        .values(&HeaderName::Via)
        .any(|v| sip::header::Via::parse(v).unwrap().host == broadcast));
}

#[test]
fn rfc4475_3_3_11_max_forwards_zero() {
    let r = valid_request("rfc4475/valid/zeromf.dat");
    assert_eq!(r.max_forwards(), Some(0));
}

#[test]
fn rfc4475_3_3_12_contact_header_parameter() {
    let r = valid_request("rfc4475/valid/cparam01.dat");
    let n = NameAddr::parse(r.headers.get(&HeaderName::Contact).unwrap()).unwrap();
    assert!(n.params.has("unknownparam"));
    assert!(sip_uri(&n.uri).params.is_empty());
}

#[test]
fn rfc4475_3_3_13_contact_url_parameter() {
    let r = valid_request("rfc4475/valid/cparam02.dat");
    let n = NameAddr::parse(r.headers.get(&HeaderName::Contact).unwrap()).unwrap();
    assert!(sip_uri(&n.uri).params.has("unknownparam"));
}

#[test]
fn rfc4475_3_3_14_escaped_header_in_contact() {
    let r = valid_request("rfc4475/valid/regescrt.dat");
    let n = NameAddr::parse(r.headers.get(&HeaderName::Contact).unwrap()).unwrap();
    assert_eq!(
        sip_uri(&n.uri).headers.as_deref(),
        Some("Route=%3Csip:sip.example.com%3E")
    );
    assert!(n.to_string().contains("?Route=%3Csip:sip.example.com%3E>"));
}

#[test]
fn rfc4475_3_3_15_unacceptable_accept() {
    let r = valid_request("rfc4475/valid/sdp01.dat");
    assert!(!r
        .headers
        .get(&HeaderName::Accept)
        .unwrap()
        .contains("application/sdp"));
}

#[test]
fn rfc4475_3_4_1_rfc2543_syntax() {
    let r = valid_request("rfc4475/valid/inv2543.dat");
    assert!(r.top_via().unwrap().branch().is_none());
    assert!(r.from().unwrap().tag().is_none());
    assert!(r.max_forwards().is_none());
    assert!(
        !r.body.is_empty(),
        "no Content-Length: body runs to the end of the datagram"
    );
}

// RFC 5118: the archive uses bare LF; it is parsed as shipped.

fn v6(s: &str) -> Host {
    Host::V6(s.parse().unwrap())
}

#[test]
fn rfc5118_4_1_ipv6_reference() {
    let r = valid_request("rfc5118/valid/ipv6-good");
    assert_eq!(sip_uri(&r.uri).host, v6("2001:db8::10"));
    assert_eq!(r.top_via().unwrap().host, v6("2001:db8::9:1"));
}

#[test]
fn rfc5118_4_3_port_ambiguous() {
    let r = valid_request("rfc5118/valid/port-ambiguous");
    assert_eq!(sip_uri(&r.uri).host, v6("2001:db8::10:5070"));
    assert_eq!(sip_uri(&r.uri).port, None);
}

#[test]
fn rfc5118_4_4_port_unambiguous() {
    let r = valid_request("rfc5118/valid/port-unambiguous");
    assert_eq!(sip_uri(&r.uri).host, v6("2001:db8::10"));
    assert_eq!(sip_uri(&r.uri).port, Some(5070));
}

#[test]
fn rfc5118_4_5_via_received_with_delimiters() {
    let r = valid_request("rfc5118/valid/via-received-param-with-delim");
    assert_eq!(
        r.top_via().unwrap().received(),
        Some("2001:db8::9:255".parse().unwrap())
    );
}

#[test]
fn rfc5118_4_5_via_received_without_delimiters() {
    let r = valid_request("rfc5118/valid/via-received-param-no-delim");
    assert_eq!(
        r.top_via().unwrap().received(),
        Some("2001:db8::9:255".parse().unwrap())
    );
}

/// The archive's Content-Length (268) exceeds the body; the headers and SDP parse, and the
/// server would answer 400 to these exact bytes (RFC 3261 §18.3), which the test records.
#[test]
fn rfc5118_4_6_ipv6_in_sdp() {
    let r = request("rfc5118/valid/ipv6-in-sdp");
    assert!(std::str::from_utf8(&r.body)
        .unwrap()
        .contains("c=IN IP6 2001:db8::20"));
    assert!(matches!(
        validate_request(&r),
        Err(sip::InvalidMessage::ShortBody { declared: 268, .. })
    ));
}

#[test]
fn rfc5118_4_7_multiple_ips_in_headers() {
    let r = valid_request("rfc5118/valid/mult-ip-in-header");
    let vias: Vec<_> = r
        .headers
        .values(&HeaderName::Via)
        .map(|v| sip::header::Via::parse(v).unwrap())
        .collect();
    assert_eq!(vias.len(), 3);
    assert_eq!(vias[0].host, v6("2001:db8::9:1"));
    assert_eq!(vias[2].host, v6("2001:db8::9:255"));
    assert_eq!(vias[2].received(), Some("192.0.2.200".parse().unwrap()));
}

#[test]
fn rfc5118_4_8_multiple_ips_in_sdp() {
    let r = request("rfc5118/valid/mult-ip-in-sdp");
    let sdp = String::from_utf8_lossy(&r.body);
    assert!(sdp.contains("c=IN IP4") && sdp.contains("c=IN IP6"));
    assert!(matches!(
        validate_request(&r),
        Err(sip::InvalidMessage::ShortBody { declared: 181, .. })
    ));
}

#[test]
fn rfc5118_4_9_ipv4_mapped_ipv6() {
    let r = valid_request("rfc5118/valid/ipv4-mapped-ipv6");
    assert_eq!(r.top_via().unwrap().host, v6("::ffff:192.0.2.10"));
}

#[test]
fn rfc5118_4_10_abnf_bug_three_colons() {
    let r = valid_request("rfc5118/valid/ipv6-bug-abnf-3-colons");
    assert_eq!(sip_uri(&r.uri).host, v6("2001:db8::192.0.2.1"));
}

#[test]
fn rfc5118_4_10_correct_two_colons() {
    let r = valid_request("rfc5118/valid/ipv6-correct-abnf-2-colons");
    assert_eq!(sip_uri(&r.uri).host, v6("2001:db8::192.0.2.1"));
}
