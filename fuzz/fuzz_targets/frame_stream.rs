//! A TCP byte stream: framing never panics, never reports a length beyond the buffer, and every
//! framed message is handled by the datagram parser without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sip::{frame, parse_framed, Frame};

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    while !rest.is_empty() {
        match frame(rest, 65_535) {
            Ok(Frame::Incomplete) | Err(_) => return,
            Ok(Frame::Keepalive { len, .. }) | Ok(Frame::Message(len)) => {
                assert!(len > 0 && len <= rest.len());
                let _ = parse_framed(&rest[..len]);
                rest = &rest[len..];
            }
        }
    }
});
