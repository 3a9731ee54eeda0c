//! Any datagram to the STUN server (RFC 8489, RFC 5780 change-request): never a panic, and an
//! answer only ever goes back to the sender or, asked by CHANGE-REQUEST, from the other address.
#![no_main]

use std::net::SocketAddr;

use libfuzzer_sys::fuzz_target;
use stun::{ServerConfig, StunServer};

fuzz_target!(|data: &[u8]| {
    let primary: SocketAddr = "198.51.100.10:3478".parse().expect("literal");
    let alternate: SocketAddr = "198.51.100.11:3479".parse().expect("literal");
    let from: SocketAddr = "192.0.2.7:40000".parse().expect("literal");
    let Ok(mut server) = StunServer::new(ServerConfig::new(primary, Some(alternate))) else {
        return;
    };
    server.handle_input(primary, from, data);
    while let Some(t) = server.poll_transmit() {
        assert_eq!(t.to, from, "answers go to the sender only");
    }
});
