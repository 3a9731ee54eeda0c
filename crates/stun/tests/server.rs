//! The binding server core: RFC 8489 §6.3 answers, RFC 5780 §6-7 with four sockets, RFC 3489
//! clients, and robustness against arbitrary input.

use std::net::SocketAddr;

use proptest::prelude::*;
use stun::attr::{ChangeRequest, MappedAddress, OtherAddress, ResponseOrigin};
use stun::{ServerConfig, ServerConfigError, StunServer};
use stun_types::attribute::{
    ErrorCode, Fingerprint, Software, UnknownAttributes, XorMappedAddress,
};
use stun_types::message::{
    Message, MessageClass, MessageType, MessageWrite, MessageWriteExt, MessageWriteVec,
    TransactionId, BINDING,
};

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("literal address")
}

const P: &str = "198.51.100.10:3478";
const A: &str = "198.51.100.11:3479";
const CLIENT: &str = "203.0.113.10:40000";

fn rfc5780_server() -> StunServer {
    StunServer::new(ServerConfig::new(addr(P), Some(addr(A)))).expect("valid config")
}

fn plain_server() -> StunServer {
    StunServer::new(ServerConfig::new(addr(P), None)).expect("valid config")
}

fn request(tid: u128, change: Option<ChangeRequest>, fingerprint: bool) -> Vec<u8> {
    let mut w = Message::builder(
        MessageType::from_class_method(MessageClass::Request, BINDING),
        TransactionId::from(tid),
        MessageWriteVec::new(),
    );
    if let Some(c) = change {
        w.add_attribute(&c).expect("vec");
    }
    if fingerprint {
        w.add_fingerprint().expect("vec");
    }
    w.finish()
}

fn change(ip: bool, port: bool) -> Option<ChangeRequest> {
    Some(ChangeRequest {
        change_ip: ip,
        change_port: port,
    })
}

#[test]
fn rfc8489_6_3_binding_success_has_xor_mapped_mapped_software_fingerprint() {
    let mut s = plain_server();
    assert!(s.handle_input(addr(P), addr(CLIENT), &request(42, None, true)));
    let t = s.poll_transmit().expect("an answer");
    assert_eq!((t.from, t.to), (addr(P), addr(CLIENT)));
    let msg = Message::from_bytes(&t.bytes).expect("valid STUN, fingerprint checked");
    assert!(msg.has_class(MessageClass::Success));
    assert_eq!(msg.transaction_id(), TransactionId::from(42));
    let tid = msg.transaction_id();
    assert_eq!(
        msg.attribute::<XorMappedAddress>().expect("xor").addr(tid),
        addr(CLIENT)
    );
    assert_eq!(
        msg.attribute::<MappedAddress>().expect("mapped").addr(),
        addr(CLIENT)
    );
    assert!(msg
        .attribute::<Software>()
        .expect("SOFTWARE")
        .software()
        .starts_with("homeline"));
    assert!(msg.has_attribute(stun_types::attribute::AttributeType::new(0x8028)));
    let _ = Fingerprint::new([0; 4]); // the type is what from_bytes checked above
                                      // A single-address server does not name addresses (RFC 5780 attributes absent).
    assert!(msg.attribute::<OtherAddress>().is_err());
    assert!(msg.attribute::<ResponseOrigin>().is_err());
    assert_eq!(s.stats().answered, 1);
}

#[test]
fn rfc8489_6_3_ipv6_client_gets_its_ipv6_address() {
    let mut s = StunServer::new(ServerConfig::new(addr("[2001:db8::1]:3478"), None)).expect("cfg");
    let client = addr("[2001:db8::99]:5000");
    assert!(s.handle_input(addr("[2001:db8::1]:3478"), client, &request(7, None, false)));
    let t = s.poll_transmit().expect("answer");
    let msg = Message::from_bytes(&t.bytes).expect("valid");
    let tid = msg.transaction_id();
    assert_eq!(
        msg.attribute::<XorMappedAddress>().expect("xor").addr(tid),
        client
    );
}

#[test]
fn rfc5780_7_3_7_4_response_origin_and_other_address_per_socket() {
    let mut s = rfc5780_server();
    assert_eq!(
        s.sockets(),
        [
            addr(P),
            addr("198.51.100.10:3479"),
            addr("198.51.100.11:3478"),
            addr(A)
        ]
    );
    for (local, other) in [
        (P, A),
        ("198.51.100.10:3479", "198.51.100.11:3478"),
        ("198.51.100.11:3478", "198.51.100.10:3479"),
        (A, P),
    ] {
        assert!(s.handle_input(addr(local), addr(CLIENT), &request(1, None, true)));
        let t = s.poll_transmit().expect("answer");
        assert_eq!(t.from, addr(local));
        let msg = Message::from_bytes(&t.bytes).expect("valid");
        assert_eq!(
            msg.attribute::<ResponseOrigin>().expect("origin").addr(),
            addr(local)
        );
        assert_eq!(
            msg.attribute::<OtherAddress>().expect("other").addr(),
            addr(other)
        );
    }
}

#[test]
fn rfc5780_7_2_change_request_picks_the_answering_socket() {
    let mut s = rfc5780_server();
    for (flags, expect_from) in [
        (change(false, false), P),
        (change(true, false), "198.51.100.11:3478"),
        (change(false, true), "198.51.100.10:3479"),
        (change(true, true), A),
    ] {
        assert!(s.handle_input(addr(P), addr(CLIENT), &request(9, flags, true)));
        let t = s.poll_transmit().expect("answer");
        assert_eq!(t.from, addr(expect_from), "{flags:?}");
        assert_eq!(t.to, addr(CLIENT));
        let msg = Message::from_bytes(&t.bytes).expect("valid");
        assert_eq!(
            msg.attribute::<ResponseOrigin>().expect("origin").addr(),
            addr(expect_from)
        );
    }
    // From the alternate socket, "change both" goes back to the primary.
    assert!(s.handle_input(addr(A), addr(CLIENT), &request(9, change(true, true), true)));
    assert_eq!(s.poll_transmit().expect("answer").from, addr(P));
}

#[test]
fn rfc5780_7_5_response_port_redirects_the_port_only() {
    let mut s = rfc5780_server();
    let mut bytes = request(11, None, false);
    bytes[3] = 8;
    bytes.extend([0x00, 0x27, 0x00, 0x04, 0xc3, 0x51, 0x00, 0x00]); // port 50001 + padding
    assert!(s.handle_input(addr(P), addr(CLIENT), &bytes));
    let t = s.poll_transmit().expect("answer");
    assert_eq!(t.to, addr("203.0.113.10:50001"));
    let msg = Message::from_bytes(&t.bytes).expect("valid");
    let tid = msg.transaction_id();
    // The mapping reported is still the request's source.
    assert_eq!(
        msg.attribute::<XorMappedAddress>().expect("xor").addr(tid),
        addr(CLIENT)
    );
    // Port 0 is refused.
    let last = bytes.len() - 4;
    bytes[last..last + 2].copy_from_slice(&[0, 0]);
    assert!(s.handle_input(addr(P), addr(CLIENT), &bytes));
    let msg_bytes = s.poll_transmit().expect("answer").bytes;
    let msg = Message::from_bytes(&msg_bytes).expect("valid");
    assert_eq!(msg.attribute::<ErrorCode>().expect("code").code(), 400);
}

#[test]
fn rfc5780_7_2_change_request_without_alternate_is_420() {
    let mut s = plain_server();
    assert!(s.handle_input(addr(P), addr(CLIENT), &request(5, change(true, true), true)));
    let t = s.poll_transmit().expect("answer");
    let msg = Message::from_bytes(&t.bytes).expect("valid");
    assert!(msg.has_class(MessageClass::Error));
    assert_eq!(msg.attribute::<ErrorCode>().expect("code").code(), 420);
    let unknown = msg
        .attribute::<UnknownAttributes>()
        .expect("UNKNOWN-ATTRIBUTES");
    assert!(unknown.has_attribute(stun::attr::CHANGE_REQUEST));
    // Asking for no change is fine.
    assert!(s.handle_input(
        addr(P),
        addr(CLIENT),
        &request(5, change(false, false), true)
    ));
    let msg_bytes = s.poll_transmit().expect("answer").bytes;
    assert!(Message::from_bytes(&msg_bytes)
        .expect("valid")
        .has_class(MessageClass::Success));
}

#[test]
fn rfc8489_6_3_1_unknown_comprehension_required_attribute_is_420() {
    // RFC 5769 §2.1 carries PRIORITY (0x0024), an ICE attribute a binding server does not know.
    let bytes = std::fs::read(format!(
        "{}/../../../shared/conformance/rfc5769/2.1-sample-request.bin",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("conformance vector");
    let mut s = plain_server();
    assert!(s.handle_input(addr(P), addr(CLIENT), &bytes));
    let msg_bytes = s.poll_transmit().expect("answer").bytes;
    let msg = Message::from_bytes(&msg_bytes).expect("valid");
    assert_eq!(msg.attribute::<ErrorCode>().expect("code").code(), 420);
    let unknown = msg.attribute::<UnknownAttributes>().expect("list");
    assert!(unknown.has_attribute(0x0024.into()));
    assert_eq!(u128::from(msg.transaction_id()), 0xb7e7a701bc34d686fa87dfae);
}

#[test]
fn rfc8489_6_3_1_other_method_request_is_400_and_indications_responses_are_ignored() {
    let mut s = plain_server();
    let allocate = Message::builder(
        MessageType::from_class_method(MessageClass::Request, stun_types::message::Method::new(3)),
        TransactionId::from(3),
        MessageWriteVec::new(),
    )
    .finish();
    assert!(s.handle_input(addr(P), addr(CLIENT), &allocate));
    let msg_bytes = s.poll_transmit().expect("answer").bytes;
    let msg = Message::from_bytes(&msg_bytes).expect("valid");
    assert_eq!(msg.attribute::<ErrorCode>().expect("code").code(), 400);

    for class in [
        MessageClass::Indication,
        MessageClass::Success,
        MessageClass::Error,
    ] {
        let m = Message::builder(
            MessageType::from_class_method(class, BINDING),
            TransactionId::from(4),
            MessageWriteVec::new(),
        )
        .finish();
        assert!(!s.handle_input(addr(P), addr(CLIENT), &m), "{class:?}");
    }
    assert!(s.poll_transmit().is_none());
}

#[test]
fn rfc8489_6_3_1_malformed_attributes_in_a_sound_header_are_400() {
    let mut s = plain_server();
    // Header says 8 bytes of attributes; the attribute claims 200 bytes of value.
    let mut bytes = request(77, None, false);
    bytes[3] = 8;
    bytes.extend([0x80, 0x22, 0x00, 0xc8, b'a', b'b', b'c', b'd']);
    assert!(s.handle_input(addr(P), addr(CLIENT), &bytes));
    let msg_bytes = s.poll_transmit().expect("answer").bytes;
    let msg = Message::from_bytes(&msg_bytes).expect("valid");
    assert_eq!(msg.attribute::<ErrorCode>().expect("code").code(), 400);
    assert_eq!(msg.transaction_id(), TransactionId::from(77));
}

#[test]
fn rfc8489_7_3_wrong_fingerprint_or_not_stun_gets_no_answer() {
    let mut s = plain_server();
    let mut bytes = request(8, None, true);
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    assert!(!s.handle_input(addr(P), addr(CLIENT), &bytes));
    // An RTP packet (version 2: top bits 10).
    assert!(!s.handle_input(addr(P), addr(CLIENT), &[0x80; 40]));
    // Truncated, and a length field that disagrees with the datagram.
    assert!(!s.handle_input(addr(P), addr(CLIENT), &request(8, None, false)[..12]));
    let mut long = request(8, None, false);
    long.extend([0, 0, 0, 0]);
    assert!(!s.handle_input(addr(P), addr(CLIENT), &long));
    // A socket the server does not own.
    assert!(!s.handle_input(
        addr("198.51.100.99:3478"),
        addr(CLIENT),
        &request(8, None, false)
    ));
    assert!(s.poll_transmit().is_none());
    assert_eq!(s.stats().dropped, 5);
}

/// An RFC 3489 request: no magic cookie, a 128-bit transaction id.
fn classic_request(change_flags: Option<u8>) -> Vec<u8> {
    let mut b = vec![0x00, 0x01, 0x00, 0x00];
    b.extend((1..=16u8).collect::<Vec<_>>());
    if let Some(flags) = change_flags {
        b[3] = 8;
        b.extend([0x00, 0x03, 0x00, 0x04, 0, 0, 0, flags]);
    }
    b
}

/// (type, value) pairs of a classic response.
fn classic_attributes(bytes: &[u8]) -> Vec<(u16, Vec<u8>)> {
    let mut out = Vec::new();
    let mut rest = &bytes[20..];
    while rest.len() >= 4 {
        let t = u16::from_be_bytes([rest[0], rest[1]]);
        let l = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
        out.push((t, rest[4..4 + l].to_vec()));
        rest = &rest[4 + l..];
    }
    out
}

#[test]
fn rfc3489_11_classic_client_gets_mapped_source_and_changed_address() {
    let mut s = rfc5780_server();
    assert!(s.handle_input(addr(P), addr(CLIENT), &classic_request(Some(0x06))));
    let t = s.poll_transmit().expect("answer");
    assert_eq!(t.from, addr(A), "change IP and port");
    assert_eq!(&t.bytes[0..2], &[0x01, 0x01]);
    assert_eq!(
        &t.bytes[4..20],
        &classic_request(None)[4..20],
        "128-bit id echoed"
    );
    assert_eq!(
        usize::from(u16::from_be_bytes([t.bytes[2], t.bytes[3]])),
        t.bytes.len() - 20
    );
    let attrs = classic_attributes(&t.bytes);
    let types: Vec<u16> = attrs.iter().map(|(t, _)| *t).collect();
    assert_eq!(types, [0x0001, 0x0004, 0x0005]);
    // MAPPED-ADDRESS 203.0.113.10:40000, family 1.
    assert_eq!(attrs[0].1, [0, 1, 0x9c, 0x40, 203, 0, 113, 10]);
    // SOURCE-ADDRESS is where it came from (A), CHANGED-ADDRESS the other one (also A seen
    // from P).
    assert_eq!(attrs[1].1, [0, 1, 0x0d, 0x97, 198, 51, 100, 11]);
    assert_eq!(attrs[2].1, [0, 1, 0x0d, 0x97, 198, 51, 100, 11]);
    assert_eq!(s.stats().rfc3489, 1);
}

#[test]
fn rfc3489_classic_change_request_without_alternate_is_not_answered() {
    let mut s = plain_server();
    assert!(!s.handle_input(addr(P), addr(CLIENT), &classic_request(Some(0x04))));
    assert!(s.handle_input(addr(P), addr(CLIENT), &classic_request(None)));
}

#[test]
fn rfc5780_6_alternate_must_differ_in_ip_and_port() {
    let bad = [
        ("198.51.100.10:3479", "AlternateSameIp"),
        ("198.51.100.11:3478", "AlternateSamePort"),
        ("[2001:db8::1]:3479", "FamilyMismatch"),
    ];
    for (alt, what) in bad {
        let err = StunServer::new(ServerConfig::new(addr(P), Some(addr(alt)))).expect_err(what);
        assert!(format!("{err:?}").starts_with(what), "{err:?}");
    }
    assert!(matches!(
        StunServer::new(ServerConfig::new(addr("0.0.0.0:3478"), Some(addr(A)))),
        Err(ServerConfigError::Wildcard(_))
    ));
    assert!(matches!(
        StunServer::new(ServerConfig::new(addr("198.51.100.10:0"), Some(addr(A)))),
        Err(ServerConfigError::Wildcard(_))
    ));
    assert!(StunServer::new(ServerConfig::new(addr("0.0.0.0:3478"), None)).is_ok());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn never_panics_on_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let mut s = rfc5780_server();
        s.handle_input(addr(P), addr(CLIENT), &bytes);
        while s.poll_transmit().is_some() {}
    }

    #[test]
    fn never_panics_on_random_attributes_behind_a_valid_header(
        cookie in any::<bool>(),
        class in 0u16..4,
        body in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        // A header that passes the first checks, so the attribute walk gets the random part.
        let padded = body.len().next_multiple_of(4);
        let mut bytes = Vec::new();
        let mtype = MessageType::from_class_method(
            [MessageClass::Request, MessageClass::Indication, MessageClass::Success, MessageClass::Error][usize::from(class)],
            BINDING,
        );
        bytes.extend(mtype.to_bytes());
        bytes.extend(u16::try_from(padded).expect("small").to_be_bytes());
        if cookie {
            bytes.extend(0x2112_a442u32.to_be_bytes());
        } else {
            bytes.extend([1, 2, 3, 4]);
        }
        bytes.extend([7u8; 12]);
        bytes.extend(&body);
        bytes.resize(20 + padded, 0);
        let mut s = rfc5780_server();
        s.handle_input(addr(P), addr(CLIENT), &bytes);
        s.handle_input(addr(A), addr(CLIENT), &bytes);
        while let Some(t) = s.poll_transmit() {
            // Whatever it answers is itself well-formed.
            if cookie {
                prop_assert!(Message::from_bytes(&t.bytes).is_ok());
            }
        }
    }
}
