//! Conformance vectors, anchoring and topology hiding, hold detection, round-trip properties.

use std::net::IpAddr;

use proptest::prelude::*;

use super::*;

fn vector(path: &str) -> Vec<u8> {
    let full = format!(
        "{}/../../../shared/conformance/{path}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&full).unwrap_or_else(|e| panic!("conformance vector {full}: {e}"))
}

/// The body of a SIP message (after the first empty line, CRLF or LF).
fn body_of(message: &[u8]) -> Vec<u8> {
    let crlf = message
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 4);
    let lf = message.windows(2).position(|w| w == b"\n\n").map(|p| p + 2);
    let start = [crlf, lf].into_iter().flatten().min().expect("a body");
    message[start..].to_vec()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn parse(text: &str) -> Sdp {
    Sdp::parse(text.as_bytes()).unwrap()
}

fn print(sdp: &Sdp) -> String {
    String::from_utf8(sdp.to_bytes()).unwrap()
}

/// Parses and prints `bytes`, which must come back identical.
fn assert_round_trip(name: &str, bytes: &[u8]) -> Sdp {
    let sdp = Sdp::parse(bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(
        String::from_utf8_lossy(&sdp.to_bytes()),
        String::from_utf8_lossy(bytes),
        "{name}"
    );
    sdp
}

// ---- conformance vectors -------------------------------------------------------------------

#[test]
fn rfc4566_5_example_round_trips_and_reads() {
    let sdp = assert_round_trip("rfc4566", &vector("sdp/rfc4566-section5-example.sdp"));
    assert_eq!(sdp.origin().session_version, "2890842807");
    assert_eq!(sdp.origin().ip(), Some(ip("10.47.16.5")));
    let c = sdp.connection().unwrap();
    assert_eq!(
        (c.address.as_str(), c.ip()),
        ("224.2.17.12/127", Some(ip("224.2.17.12")))
    );
    assert_eq!(sdp.direction(), Some(Direction::RecvOnly));
    let [audio, video] = sdp.media() else {
        panic!("two m= lines")
    };
    assert_eq!(
        sdp.direction_of(audio),
        Direction::RecvOnly,
        "session-level default"
    );
    assert_eq!(
        audio.codecs(),
        [(PayloadType::new(0).unwrap(), Some(Codec::PCMU))]
    );
    assert_eq!(
        video.rtpmaps().next().unwrap().codec.to_string(),
        "h263-1998/90000"
    );
}

#[test]
fn rfc8866_5_example_round_trips_and_reads() {
    let sdp = assert_round_trip("rfc8866", &vector("sdp/rfc8866-section5-example.sdp"));
    let kinds: Vec<&str> = sdp.media().iter().map(MediaSection::media).collect();
    assert_eq!(kinds, ["audio", "audio", "video"]);
    assert_eq!(
        sdp.audio().unwrap().port(),
        49170,
        "the first enabled audio stream"
    );
    let video = &sdp.media()[2];
    assert_eq!(
        sdp.connection_of(video).unwrap().ip(),
        Some(ip("2001:db8::2"))
    );
    assert_eq!(
        sdp.connection_of(&sdp.media()[0]).unwrap().ip(),
        Some(ip("198.51.100.1"))
    );
    assert_eq!(
        media_endpoint(&sdp),
        Some(MediaEndpoint {
            addr: ip("198.51.100.1"),
            rtp_port: 49170,
            rtcp_port: 49171,
            rtcp_mux: false
        })
    );
}

#[test]
fn rfc5118_4_6_ipv6_in_sdp_round_trips_with_lf() {
    let sdp = assert_round_trip(
        "ipv6-in-sdp",
        &body_of(&vector("rfc5118/valid/ipv6-in-sdp")),
    );
    assert_eq!(sdp.origin().session_id, "971731711378798081");
    assert_eq!(sdp.origin().ip(), Some(ip("2001:db8::20")));
    assert_eq!(media_endpoint(&sdp).unwrap().addr, ip("2001:db8::20"));
    let audio = sdp.audio().unwrap();
    let g726 = audio.codec(PayloadType::new(2).unwrap()).unwrap();
    assert_eq!(
        g726.to_string(),
        "G726-32/8000",
        "rtpmap beats the reserved static number"
    );
}

#[test]
fn rfc5118_4_8_mult_ip_in_sdp_round_trips_with_lf() {
    let sdp = assert_round_trip(
        "mult-ip-in-sdp",
        &body_of(&vector("rfc5118/valid/mult-ip-in-sdp")),
    );
    assert_eq!(sdp.origin().ip(), None, "host.example.com is a name");
    assert_eq!(sdp.connection(), None);
    let [audio, video] = sdp.media() else {
        panic!("two m= lines")
    };
    assert_eq!(
        sdp.connection_of(audio).unwrap().ip(),
        Some(ip("192.0.2.1"))
    );
    assert_eq!(
        sdp.connection_of(video).unwrap().ip(),
        Some(ip("2001:db8::1"))
    );
    assert_eq!(media_endpoint(&sdp).unwrap().addr, ip("192.0.2.1"));
}

#[test]
fn rfc5118_4_9_ipv4_mapped_ipv6_in_sdp() {
    let sdp = assert_round_trip(
        "ipv4-mapped",
        &body_of(&vector("rfc5118/valid/ipv4-mapped-ipv6")),
    );
    assert_eq!(sdp.connection().unwrap().ip(), Some(ip("::ffff:192.0.2.2")));
    assert!(!contains_private_address(&sdp));
}

#[test]
fn rfc4475_sdp_bodies_round_trip() {
    for name in ["wsinv", "esc01", "sdp01", "inv2543"] {
        let body = body_of(&vector(&format!("rfc4475/valid/{name}.dat")));
        let sdp = assert_round_trip(name, &body);
        assert_eq!(sdp.origin().username, "mhandley", "{name}");
    }
}

#[test]
fn rfc4475_3_3_15_malformed_rtpmap_is_kept_and_ignored() {
    let sdp = assert_round_trip("sdp01", &body_of(&vector("rfc4475/valid/sdp01.dat")));
    let video = &sdp.media()[1];
    assert_eq!(
        video.rtpmaps().count(),
        0,
        "`a=rtpmap:31 LPC` has no clock rate"
    );
    assert_eq!(video.attribute("rtpmap"), Some(Some("31 LPC")));
    assert_eq!(
        video.codec(PayloadType::new(31).unwrap()).unwrap().name,
        "H261",
        "static assignment"
    );
}

// ---- parser edges ---------------------------------------------------------------------------

#[test]
fn rfc8866_5_structure_errors() {
    assert_eq!(Sdp::parse(b""), Err(SdpError::Empty));
    assert_eq!(
        Sdp::parse(b"o=- 1 1 IN IP4 h\r\n"),
        Err(SdpError::NoVersion)
    );
    assert_eq!(Sdp::parse(b"v=1\r\n"), Err(SdpError::NoVersion));
    assert_eq!(Sdp::parse(b"v=0\r\ns=x\r\n"), Err(SdpError::NoOrigin));
    assert_eq!(
        Sdp::parse(b"v=0\r\no=- 1 x IN IP4 h\r\n"),
        Err(SdpError::BadOrigin { line: 2 })
    );
    assert_eq!(
        Sdp::parse(b"v=0\r\no=- 1 1 IN IP4 h\r\nHello\r\n"),
        Err(SdpError::MalformedLine { line: 3 })
    );
    assert_eq!(
        Sdp::parse(b"v=0\r\no=- 1 1 IN IP4 h\r\nc=IN IP4\r\n"),
        Err(SdpError::BadConnection { line: 3 })
    );
    assert_eq!(
        Sdp::parse(b"v=0\r\no=- 1 1 IN IP4 h\r\nm=audio 99999 RTP/AVP 0\r\n"),
        Err(SdpError::BadMedia { line: 3 })
    );
    assert_eq!(
        Sdp::parse(b"v=0\r\nm=audio 4000 RTP/AVP 0\r\no=- 1 1 IN IP4 h\r\n"),
        Err(SdpError::NoOrigin),
        "o= belongs to the session part"
    );
    assert_eq!(SdpError::Empty.status(), sip::StatusCode::BAD_REQUEST);
}

#[test]
fn unknown_lines_empty_lines_and_other_charsets_pass_through() {
    let body = b"v=0\r\no=- 1 1 IN IP4 h\r\ns=Caf\xe9\r\na=charset:ISO-8859-1\r\n\
                 t=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=x-unknown\r\nx=unknown type\r\n\r\n";
    let sdp = assert_round_trip("latin-1", body);
    assert_eq!(sdp.attribute("charset"), Some(Some("ISO-8859-1")));
    assert_eq!(sdp.media()[0].attribute("x-unknown"), Some(None));
}

// ---- anchoring ------------------------------------------------------------------------------

/// An offer from a phone at home, 10.0.0.20 behind NAT 198.51.100.20 (the brief's picture).
const HOME_PHONE: &str = "v=0\r\n\
o=2001 3829 3829 IN IP4 10.0.0.20\r\n\
s=Talk\r\n\
c=IN IP4 10.0.0.20\r\n\
b=AS:84\r\n\
t=0 0\r\n\
a=ice-ufrag:8hhY\r\n\
a=ice-pwd:asd88fgpdd777uzjYhagZg\r\n\
m=audio 4000 RTP/AVP 9 0 8 101\r\n\
a=rtpmap:9 G722/8000\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\n\
a=ptime:20\r\n\
a=rtcp:4001 IN IP4 10.0.0.20\r\n\
a=candidate:1 1 UDP 2130706431 10.0.0.20 4000 typ host\r\n\
a=candidate:2 1 UDP 1694498815 198.51.100.20 61000 typ srflx raddr 10.0.0.20 rport 4000\r\n\
a=x-nat:0\r\n\
a=sendrecv\r\n\
m=video 4002 RTP/AVP 96\r\n\
c=IN IP4 10.0.0.20\r\n\
a=rtpmap:96 H264/90000\r\n\
a=rtcp:4003\r\n";

#[test]
fn home_phone_offer_reads() {
    let sdp = parse(HOME_PHONE);
    let audio = sdp.audio().unwrap();
    assert_eq!(audio.ptime(), Some(20));
    assert_eq!(audio.fmtp(PayloadType::new(101).unwrap()), Some("0-16"));
    assert_eq!(audio.rtcp().unwrap().port, 4001);
    assert_eq!(sdp.direction_of(audio), Direction::SendRecv);
    assert_eq!(
        media_endpoint(&sdp),
        Some(MediaEndpoint {
            addr: ip("10.0.0.20"),
            rtp_port: 4000,
            rtcp_port: 4001,
            rtcp_mux: false
        })
    );
}

#[test]
fn anchor_rewrites_exactly_addresses_ports_ice_and_version() {
    let sdp = parse(HOME_PHONE);
    let anchored = anchor(&sdp, ip("203.0.113.10"), 30000, false);
    assert_eq!(
        print(&anchored),
        "v=0\r\n\
o=2001 3829 3830 IN IP4 203.0.113.10\r\n\
s=Talk\r\n\
c=IN IP4 203.0.113.10\r\n\
b=AS:84\r\n\
t=0 0\r\n\
m=audio 30000 RTP/AVP 9 0 8 101\r\n\
a=rtpmap:9 G722/8000\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\n\
a=ptime:20\r\n\
a=rtcp:30001 IN IP4 203.0.113.10\r\n\
a=x-nat:0\r\n\
a=sendrecv\r\n\
m=video 0 RTP/AVP 96\r\n\
c=IN IP4 203.0.113.10\r\n\
a=rtpmap:96 H264/90000\r\n"
    );
    assert_eq!(
        sdp.to_bytes(),
        HOME_PHONE.as_bytes(),
        "the original is untouched"
    );
    assert!(Sdp::parse(&anchored.to_bytes()).is_ok());
}

#[test]
fn topology_hiding_private_addresses_before_and_after_anchoring() {
    let sdp = parse(HOME_PHONE);
    assert!(contains_private_address(&sdp));
    let anchored = anchor(&sdp, ip("203.0.113.10"), 30000, false);
    assert!(!contains_private_address(&anchored));
    let text = print(&anchored);
    assert!(!text.contains("10.0.0.20") && !text.contains("198.51.100.20"));
}

#[test]
fn each_place_a_private_address_can_hide() {
    let base = "v=0\r\no=- 1 1 IN IP4 203.0.113.10\r\ns=-\r\nc=IN IP4 203.0.113.10\r\nt=0 0\r\n\
                m=audio 30000 RTP/AVP 0\r\n";
    assert!(!contains_private_address(&parse(base)));
    for extra in [
        "c=IN IP4 192.168.1.30\r\n",
        "a=rtcp:30001 IN IP4 172.16.5.5\r\n",
        "a=candidate:1 1 UDP 1 100.64.1.2 4000 typ host\r\n",
        "a=candidate:2 1 UDP 1 198.51.100.20 4000 typ srflx raddr 169.254.3.3 rport 4000\r\n",
        "a=remote-candidates:1 fd00::1 4000\r\n",
        "c=IN IP6 fe80::1\r\n",
        "c=IN IP4 127.0.0.1\r\n",
    ] {
        assert!(
            contains_private_address(&parse(&format!("{base}{extra}"))),
            "{extra}"
        );
    }
    let origin = base.replace("o=- 1 1 IN IP4 203.0.113.10", "o=- 1 1 IN IP4 10.0.0.20");
    assert!(contains_private_address(&parse(&origin)));
}

#[test]
fn anchor_to_ipv6_with_rtcp_mux() {
    // A WebRTC-style offer: rtcp-mux, a=rtcp naming the RTP port (RFC 5761 §5.1.3).
    let sdp = parse(
        "v=0\r\no=- 7 2 IN IP4 192.168.1.30\r\ns=-\r\nt=0 0\r\n\
         m=audio 5004 RTP/SAVPF 111\r\nc=IN IP4 192.168.1.30\r\n\
         a=rtcp:5004 IN IP4 192.168.1.30\r\na=rtpmap:111 opus/48000/2\r\n\
         a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR\r\n\
         a=rtcp-mux\r\na=end-of-candidates\r\n",
    );
    assert!(media_endpoint(&sdp).unwrap().rtcp_mux);
    assert_eq!(sdp.audio().unwrap().crypto().next().unwrap().tag, 1);
    let anchored = anchor(&sdp, ip("2001:db8::10"), 30010, true);
    assert_eq!(
        print(&anchored),
        "v=0\r\no=- 7 3 IN IP6 2001:db8::10\r\ns=-\r\nt=0 0\r\n\
         m=audio 30010 RTP/SAVPF 111\r\nc=IN IP6 2001:db8::10\r\n\
         a=rtcp:30010 IN IP6 2001:db8::10\r\na=rtpmap:111 opus/48000/2\r\n\
         a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR\r\n\
         a=rtcp-mux\r\n"
    );
    let unmuxed = anchor(&sdp, ip("203.0.113.10"), 30010, false);
    let text = print(&unmuxed);
    assert!(
        text.contains("a=rtcp:30011 IN IP4 203.0.113.10\r\n"),
        "{text}"
    );
    assert!(!text.contains("rtcp-mux"));
}

#[test]
fn rfc5118_anchor_keeps_lf_endings_and_disables_video() {
    let sdp = Sdp::parse(&body_of(&vector("rfc5118/valid/ipv6-in-sdp"))).unwrap();
    let anchored = anchor(&sdp, ip("203.0.113.10"), 30020, false);
    assert_eq!(
        print(&anchored),
        "v=0\n\
o=assistant 971731711378798081 1 IN IP4 203.0.113.10\n\
s=Live video feed for today's meeting\n\
c=IN IP4 203.0.113.10\n\
t=3338481189 3370017201\n\
m=audio 30020 RTP/AVP 2\n\
a=rtpmap:2 G726-32/8000\n\
m=video 0 RTP/AVP 107\n\
a=rtpmap:107 H263-1998/90000\n"
    );
}

#[test]
fn rfc3264_8_4_anchoring_keeps_an_rfc2543_hold_a_hold() {
    let sdp = parse(
        "v=0\r\no=- 1 5 IN IP4 10.0.0.20\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n\
         m=audio 4000 RTP/AVP 0\r\n",
    );
    assert!(sdp.is_hold());
    let anchored = anchor(&sdp, ip("2001:db8::10"), 30000, false);
    assert!(print(&anchored).contains("c=IN IP6 ::\r\n"));
    assert!(anchored.is_hold());
    assert_eq!(media_endpoint(&sdp).unwrap().addr, ip("0.0.0.0"));
}

#[test]
fn rfc3264_8_reanchoring_a_reoffer_keeps_versions_increasing() {
    let first = parse(HOME_PHONE);
    let mut reoffer = first.clone();
    reoffer.bump_version();
    let a = anchor(&first, ip("203.0.113.10"), 30000, false);
    let b = anchor(&reoffer, ip("203.0.113.10"), 30000, false);
    assert_eq!(a.origin().session_version, "3830");
    assert_eq!(b.origin().session_version, "3831");
}

// ---- hold and resume ------------------------------------------------------------------------

fn reoffer(session_extra: &str, media_extra: &str, c: &str) -> Sdp {
    parse(&format!(
        "v=0\r\no=- 1 2 IN IP4 198.51.100.20\r\ns=-\r\nc=IN IP4 {c}\r\nt=0 0\r\n{session_extra}\
         m=audio 4000 RTP/AVP 0\r\n{media_extra}"
    ))
}

#[test]
fn rfc3264_8_4_hold_and_resume_detection() {
    let public = "198.51.100.20";
    assert!(reoffer("", "a=sendonly\r\n", public).is_hold());
    assert!(reoffer("", "a=inactive\r\n", public).is_hold());
    assert!(
        reoffer("a=inactive\r\n", "", public).is_hold(),
        "session level"
    );
    assert!(reoffer("", "", "0.0.0.0").is_hold(), "RFC 2543 style");
    assert!(!reoffer("", "a=sendrecv\r\n", public).is_hold(), "resume");
    assert!(
        !reoffer("", "", public).is_hold(),
        "no attribute is sendrecv"
    );
    assert!(!reoffer("", "a=recvonly\r\n", public).is_hold());
    assert!(
        !reoffer("a=sendonly\r\n", "a=sendrecv\r\n", public).is_hold(),
        "media level wins"
    );
    let disabled = parse("v=0\r\no=- 1 2 IN IP4 h\r\ns=-\r\nt=0 0\r\nm=audio 0 RTP/AVP 0\r\n");
    assert!(!disabled.is_hold(), "no enabled stream: not a hold");
    let held = reoffer("", "a=sendonly\r\n", public);
    let answer = held.direction_of(held.audio().unwrap()).answer();
    assert_eq!(answer, Direction::RecvOnly);
}

// ---- properties -----------------------------------------------------------------------------

fn eol() -> impl Strategy<Value = &'static str> {
    prop_oneof![Just("\r\n"), Just("\n")]
}

fn any_ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(IpAddr::from),
        any::<[u8; 16]>().prop_map(IpAddr::from),
        prop::sample::select(vec![
            ip("10.0.0.20"),
            ip("192.168.1.30"),
            ip("100.64.0.1"),
            ip("fd00::5"),
            ip("0.0.0.0"),
        ]),
    ]
}

fn public_ip() -> impl Strategy<Value = IpAddr> {
    prop::sample::select(vec![
        ip("203.0.113.10"),
        ip("198.51.100.1"),
        ip("2001:db8::10"),
        ip("::ffff:203.0.113.10"),
    ])
}

fn addr_line(ip: IpAddr) -> String {
    Connection::from_ip(ip).to_string()
}

/// Free text of a line value: printable ASCII and some UTF-8, no CR or LF.
fn text() -> impl Strategy<Value = String> {
    "[ -~é€]{0,30}"
}

fn session_line() -> impl Strategy<Value = String> {
    prop_oneof![
        text().prop_map(|t| format!("s={t}")),
        text().prop_map(|t| format!("i={t}")),
        any_ip().prop_map(|ip| format!("c={}", addr_line(ip))),
        (0u32..100_000).prop_map(|n| format!("b=AS:{n}")),
        (any::<u32>(), any::<u32>()).prop_map(|(a, b)| format!("t={a} {b}")),
        "[a-z][a-z0-9-]{0,12}".prop_map(|n| format!("a={n}")),
        ("[a-z][a-z0-9-]{0,12}", text()).prop_map(|(n, v)| format!("a={n}:{v}")),
        Just("a=ice-ufrag:F7gI".to_owned()),
        Just(String::new()),
    ]
}

fn media_line() -> impl Strategy<Value = String> {
    prop_oneof![
        any_ip().prop_map(|ip| format!("c={}", addr_line(ip))),
        (0u8..128, text()).prop_map(|(pt, t)| format!("a=rtpmap:{pt} {t}")),
        (0u8..128, text()).prop_map(|(pt, t)| format!("a=fmtp:{pt} {t}")),
        (any::<u16>(), prop::option::of(any_ip())).prop_map(|(p, ip)| match ip {
            Some(ip) => format!("a=rtcp:{p} {}", addr_line(ip)),
            None => format!("a=rtcp:{p}"),
        }),
        (any_ip(), any::<u16>())
            .prop_map(|(ip, p)| format!("a=candidate:1 1 UDP 2130706431 {ip} {p} typ host")),
        (any_ip(), any_ip()).prop_map(|(a, r)| {
            format!("a=candidate:2 1 UDP 1694498815 {a} 61000 typ srflx raddr {r} rport 4000")
        }),
        prop::sample::select(vec![
            "sendrecv", "sendonly", "recvonly", "inactive", "rtcp-mux"
        ])
        .prop_map(|d| format!("a={d}")),
        ("[a-z][a-z0-9-]{0,12}", text()).prop_map(|(n, v)| format!("a={n}:{v}")),
    ]
}

fn media_section() -> impl Strategy<Value = Vec<String>> {
    (
        prop::sample::select(vec!["audio", "video", "application"]),
        any::<u16>(),
        prop::sample::select(vec!["RTP/AVP", "RTP/SAVP", "UDP/TLS/RTP/SAVPF"]),
        prop::collection::vec(0u8..128, 0..5),
        prop::collection::vec(media_line(), 0..8),
    )
        .prop_map(|(media, port, proto, pts, lines)| {
            let fmts: String = pts.iter().map(|pt| format!(" {pt}")).collect();
            let mut all = vec![format!("m={media} {port} {proto}{fmts}")];
            all.extend(lines);
            all
        })
}

/// A session description as text, with mixed line endings and maybe no final one.
fn sdp_text() -> impl Strategy<Value = String> {
    (
        any_ip(),
        any::<u64>(),
        prop::collection::vec(session_line(), 0..6),
        prop::collection::vec(media_section(), 0..4),
        prop::collection::vec(eol(), 64),
        any::<bool>(),
    )
        .prop_map(|(origin, version, session, media, eols, last_eol)| {
            let mut lines = vec![
                "v=0".to_owned(),
                format!("o=- 42 {version} {}", addr_line(origin)),
            ];
            lines.extend(session);
            lines.extend(media.into_iter().flatten());
            let mut out = String::new();
            let count = lines.len();
            for (i, line) in lines.into_iter().enumerate() {
                out.push_str(&line);
                if i + 1 < count || last_eol {
                    out.push_str(eols[i % eols.len()]);
                }
            }
            out
        })
}

proptest! {
    #[test]
    fn print_of_parse_is_identity(text in sdp_text()) {
        let sdp = Sdp::parse(text.as_bytes()).unwrap();
        prop_assert_eq!(String::from_utf8(sdp.to_bytes()).unwrap(), text);
    }

    #[test]
    fn anchoring_leaves_no_private_address(text in sdp_text(), public in public_ip(), port in 0u16..32768) {
        let sdp = Sdp::parse(text.as_bytes()).unwrap();
        let anchored = anchor(&sdp, public, port * 2, false);
        prop_assert!(!contains_private_address(&anchored));
        let reparsed = Sdp::parse(&anchored.to_bytes()).unwrap();
        prop_assert_eq!(reparsed.to_bytes(), anchored.to_bytes());
        prop_assert_ne!(&anchored.origin().session_version, &sdp.origin().session_version);
        prop_assert!(anchored.media().iter().filter(|m| m.is_active()).count() <= 1);
    }

    #[test]
    fn parsing_arbitrary_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let mut body = b"v=0\r\no=- 1 1 IN IP4 h\r\n".to_vec();
        body.extend_from_slice(&bytes);
        if let Ok(sdp) = Sdp::parse(&body) {
            prop_assert_eq!(sdp.to_bytes(), body);
        }
    }
}

/// RFC 5576 `a=ssrc` cname (and any other attribute) naming a LAN address does not cross the
/// relay; attributes naming no private address stay.
#[test]
fn anchor_drops_attributes_naming_a_private_address() {
    let sdp = parse(
        "v=0\r\no=- 1 1 IN IP4 192.168.1.20\r\ns=-\r\nc=IN IP4 192.168.1.20\r\nt=0 0\r\n\
m=audio 4000 RTP/AVP 0\r\na=ssrc:1234 cname:user@192.168.1.20\r\na=ssrc:1234 msid:abc def\r\n\
a=ssrc:99 cname:sip:2010@192.168.1.10:5060\r\n\
a=x-note:fe80::1%eth0\r\na=ptime:20\r\n",
    );
    let text = print(&anchor(&sdp, ip("203.0.113.10"), 30000, false));
    assert!(!text.contains("192.168.1.20"), "{text}");
    assert!(!text.contains("cname:user@"), "{text}");
    assert!(!text.contains("fe80::1"), "{text}");
    assert!(text.contains("a=ssrc:1234 msid:abc def\r\n"), "{text}");
    assert!(text.contains("a=ptime:20\r\n"), "{text}");
}

/// Found by the `sdp_anchor` fuzz target: a session-level `a=rtcp` (valid only per medium,
/// RFC 3605 §2.1) and an attribute that is not UTF-8 went through anchoring with a LAN address.
#[test]
fn rfc3605_2_1_session_level_rtcp_and_non_utf8_lines_never_leak_an_address() {
    let mut data =
        b"v=0\r\no=alice 1 1 IN IP4 10.0.0.20\r\ns=-\r\na=rtcp:4001 IN IP4 10.0.0.20\r\n".to_vec();
    data.extend_from_slice(
        b"a=candsdate:1 1 UDP 1 10.0.0.20 400\xff typ host\r\ni=from 192.168.1.20\r\n",
    );
    data.extend_from_slice(b"t=0 0\r\nm=audio 4000 RTP/AVP 0\r\nc=IN IP4 10.0.0.20\r\n");
    data.extend_from_slice(b"a=x-lan:\xfe 172.16.4.4\r\n");
    let sdp = Sdp::parse(&data).unwrap();
    let out = anchor(&sdp, "203.0.113.10".parse().unwrap(), 30000, false);
    let text = String::from_utf8_lossy(&out.to_bytes()).into_owned();
    assert!(!contains_private_address(&out), "{text}");
    for lan in ["10.0.0.20", "192.168.1.20", "172.16.4.4"] {
        assert!(!text.contains(lan), "{lan} leaked:\n{text}");
    }
    assert!(text.contains("m=audio 30000 RTP/AVP 0"), "{text}");
}
