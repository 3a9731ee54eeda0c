//! Inputs the fuzzer found (`fuzz/`), kept as named regression tests: each must parse, print and
//! parse back to the same message, as the `parse_message` target demands.
#![allow(clippy::unwrap_used)] // test helpers: a panic is a failed test

use sip::{parse_datagram, DEFAULT_MAX_MESSAGE};

fn round_trip(name: &str) {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    let bytes = std::fs::read(&path).unwrap();
    let Ok(msg) = parse_datagram(&bytes, DEFAULT_MAX_MESSAGE) else {
        return;
    };
    let again = parse_datagram(&msg.to_bytes(), usize::MAX).unwrap();
    assert_eq!(msg, again, "{name}");
}

/// A folded continuation line holding only whitespace added a trailing space to the value,
/// which printing then lost (RFC 3261 §7.3.1: folding is equivalent to one SP, around nothing).
#[test]
fn folded_blank_continuation_line() {
    round_trip("fuzz-folded-blank-continuation.bin");
}

/// A start line whose fourth byte falls inside a multi-byte character made the `SIP/` prefix
/// check slice a `str` off a char boundary and panic.
#[test]
fn multibyte_character_in_start_line() {
    round_trip("fuzz-multibyte-start-line.bin");
    for text in [
        "ab\u{32b}c sip:a SIP/2.0\r\n\r\n",
        "OPTIONS sip:a ab\u{32b}c\r\n\r\n",
        "S\u{32b}/2.0 200 OK\r\n\r\n",
    ] {
        let _ = parse_datagram(text.as_bytes(), DEFAULT_MAX_MESSAGE);
    }
}
