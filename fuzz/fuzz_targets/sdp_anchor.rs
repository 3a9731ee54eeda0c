//! Any SDP body from a device: parsing never panics; a parsed body prints to bytes that parse
//! back to the same body; anchoring it in the relay never panics and never lets a private
//! address through on the public side.
#![no_main]

use std::net::IpAddr;

use call::sdp::{anchor, answer_codecs, contains_private_address, media_endpoint, Codec, Sdp};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(sdp) = Sdp::parse(data) else { return };
    let again = Sdp::parse(&sdp.to_bytes()).expect("printed SDP re-parses");
    assert_eq!(sdp.to_bytes(), again.to_bytes(), "print/parse round trip");
    let _ = media_endpoint(&sdp);
    if let Some(audio) = sdp.audio() {
        let _ = answer_codecs(audio, &[Codec::PCMA, Codec::PCMU, Codec::G722, Codec::OPUS, Codec::TELEPHONE_EVENT]);
    }
    let public: IpAddr = "203.0.113.10".parse().expect("literal");
    for mux in [false, true] {
        let out = anchor(&sdp, public, 30_000, mux);
        assert!(
            !contains_private_address(&out),
            "anchored SDP names a private address"
        );
    }
});
