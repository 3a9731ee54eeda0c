//! RFC 5769 test vectors (shared/conformance/rfc5769), read through `stun-types` and this
//! crate's response reader. The files live beside the repository; a missing file fails the test.

use std::net::SocketAddr;

use stun_types::attribute::{Software, XorMappedAddress};
use stun_types::message::{
    LongTermCredentials, Message, MessageClass, MessageIntegrityCredentials, ShortTermCredentials,
    BINDING,
};

fn vector(name: &str) -> Vec<u8> {
    let full = format!(
        "{}/../../../shared/conformance/rfc5769/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&full).unwrap_or_else(|e| panic!("conformance vector {full}: {e}"))
}

const SHORT_TERM_PASSWORD: &str = "VOkJxbRl1RmTxUk/WvJxBt";

fn short_term() -> MessageIntegrityCredentials {
    ShortTermCredentials::new(SHORT_TERM_PASSWORD.to_owned()).into()
}

#[test]
fn rfc5769_2_1_sample_request_parses_with_fingerprint_and_integrity() {
    let bytes = vector("2.1-sample-request.bin");
    assert_eq!(bytes.len(), 108);
    // `from_bytes` recomputes FINGERPRINT and refuses a mismatch.
    let msg = Message::from_bytes(&bytes).expect("parses, fingerprint matches");
    assert!(msg.has_class(MessageClass::Request));
    assert!(msg.has_method(BINDING));
    assert_eq!(u128::from(msg.transaction_id()), 0xb7e7a701bc34d686fa87dfae);
    assert_eq!(
        msg.attribute::<Software>().expect("SOFTWARE").software(),
        "STUN test client"
    );
    msg.validate_integrity(&short_term())
        .expect("MESSAGE-INTEGRITY with the RFC's short-term password");
    let wrong: MessageIntegrityCredentials =
        ShortTermCredentials::new("not the password".to_owned()).into();
    assert!(msg.validate_integrity(&wrong).is_err());
}

#[test]
fn rfc5769_2_1_a_flipped_bit_fails_the_fingerprint() {
    let mut bytes = vector("2.1-sample-request.bin");
    bytes[30] ^= 0x01; // inside SOFTWARE
    assert!(Message::from_bytes(&bytes).is_err());
}

#[test]
fn rfc5769_2_2_ipv4_response_xor_mapped_address() {
    let bytes = vector("2.2-sample-ipv4-response.bin");
    let msg = Message::from_bytes(&bytes).expect("parses, fingerprint matches");
    assert!(msg.has_class(MessageClass::Success));
    let mapped = msg
        .attribute::<XorMappedAddress>()
        .expect("XOR-MAPPED-ADDRESS")
        .addr(msg.transaction_id());
    assert_eq!(
        mapped,
        "192.0.2.1:32853".parse::<SocketAddr>().expect("literal")
    );
    assert_eq!(
        msg.attribute::<Software>().expect("SOFTWARE").software(),
        "test vector"
    );
    msg.validate_integrity(&short_term())
        .expect("MESSAGE-INTEGRITY");
}

#[test]
fn rfc5769_2_3_ipv6_response_xor_mapped_address() {
    let bytes = vector("2.3-sample-ipv6-response.bin");
    let msg = Message::from_bytes(&bytes).expect("parses, fingerprint matches");
    let mapped = msg
        .attribute::<XorMappedAddress>()
        .expect("XOR-MAPPED-ADDRESS")
        .addr(msg.transaction_id());
    assert_eq!(
        mapped,
        "[2001:db8:1234:5678:11:2233:4455:6677]:32853"
            .parse::<SocketAddr>()
            .expect("literal")
    );
    msg.validate_integrity(&short_term())
        .expect("MESSAGE-INTEGRITY");
}

#[test]
fn rfc5769_2_4_long_term_request_integrity() {
    let bytes = vector("2.4-sample-request-long-term-auth.bin");
    let msg = Message::from_bytes(&bytes).expect("parses");
    assert!(msg.has_class(MessageClass::Request));
    // Username and password from RFC 5769 §2.4 (the username is U+30DE U+30C8 U+30EA U+30C3
    // U+30AF U+30B9, the password "TheMatrIX", SASLprep of "The<U+00AD>M<U+00AA>tr<U+2168>").
    let creds = LongTermCredentials::new(
        "\u{30de}\u{30c8}\u{30ea}\u{30c3}\u{30af}\u{30b9}".to_owned(),
        "TheMatrIX".to_owned(),
    )
    .to_key("example.org".to_owned());
    msg.validate_integrity(&creds.into())
        .expect("MESSAGE-INTEGRITY with the RFC's long-term credentials");
}
