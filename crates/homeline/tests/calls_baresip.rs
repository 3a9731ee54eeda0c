//! Calls through the B2BUA between real softphones: two or three baresip instances (Debian
//! package `baresip-core`) registering with digest, talking PCMU with a tone, and the RTP
//! counters baresip prints at the end of each call. Internal calls keep direct media (the
//! brief: "calls whose legs are all internal keep direct media"); every leg on the external
//! zone is anchored in the relay (SDP rewritten to a relay port; each server here has a range
//! of its own, the tests run at the same time).
#![allow(clippy::unwrap_used)] // test helpers: a panic is a failed test

mod common;

use std::ops::RangeInclusive;

use common::baresip::{
    assert_audio_both_ways, connect_call, pbx, pbx_with, registered, talk_and_hang_up, MediaAddr,
};

/// `[media]` with the relay on `ports` only.
fn media(ports: &RangeInclusive<u16>) -> String {
    format!("[media]\nports = \"{}-{}\"\n", ports.start(), ports.end())
}
/// Packets each way after [`common::baresip::TALK`]: PCMU/20 ms sends 50 per second.
const MIN_PACKETS: u64 = 50;

#[test]
fn rfc3264_internal_call_audio_both_ways_with_direct_media() {
    let (_data, server) = pbx("bs-internal", &[("2001", false), ("2002", false)]);
    let mut a = registered("A-2001", server.internal, "2001");
    let mut b = registered("B-2002", server.internal, "2002");

    connect_call(&mut a, &mut b);
    let (sa, sb) = talk_and_hang_up(&mut a, &mut b, 1);

    assert_audio_both_ways((&a, sa), (&b, sb), MIN_PACKETS);
    // Direct media: each phone's offer/answer reaches the other unchanged in address and port.
    assert_eq!(b.received_media().first(), a.sent_media().first(), "offer");
    assert_eq!(a.received_media().last(), b.sent_media().last(), "answer");
}

#[test]
fn external_to_internal_call_is_anchored_in_the_relay() {
    let ports = 30000..=30099;
    let (_data, server) = pbx_with(
        "bs-ext-int",
        &[("2101", true), ("2002", false)],
        &media(&ports),
    );
    let mut ext = registered("EXT-2101", server.external, "2101");
    let mut int = registered("INT-2002", server.internal, "2002");

    connect_call(&mut ext, &mut int);
    let (se, si) = talk_and_hang_up(&mut ext, &mut int, 1);

    assert_audio_both_ways((&ext, se), (&int, si), MIN_PACKETS);
    assert_relay_port(
        &ext.received_media(),
        &int.sent_media(),
        &ports,
        "external phone",
    );
}

#[test]
fn external_to_external_call_is_anchored_in_the_relay_on_both_legs() {
    let ports = 30100..=30199;
    let (_data, server) = pbx_with(
        "bs-ext-ext",
        &[("2101", true), ("2102", true)],
        &media(&ports),
    );
    let mut a = registered("EXT-2101", server.external, "2101");
    let mut b = registered("EXT-2102", server.external, "2102");

    connect_call(&mut a, &mut b);
    let (sa, sb) = talk_and_hang_up(&mut a, &mut b, 1);

    assert_audio_both_ways((&a, sa), (&b, sb), MIN_PACKETS);
    assert_relay_port(&a.received_media(), &b.sent_media(), &ports, "caller");
    assert_relay_port(&b.received_media(), &a.sent_media(), &ports, "callee");
}

#[test]
fn rfc3261_9_cancel_before_answer_gives_487_and_stops_the_ringing() {
    let (_data, server) = pbx("bs-cancel", &[("2001", false), ("2002", false)]);
    let mut a = registered("A-2001", server.internal, "2001");
    let mut b = registered("B-2002", server.internal, "2002");

    a.dial("2002");
    b.wait_incoming();
    a.hangup(); // CANCEL
    a.wait_closed();
    b.wait_closed();
    let statuses = a.wait_invite_status(487);
    assert_eq!(statuses.last(), Some(&487), "{statuses:?}");
}

#[test]
fn rfc3261_21_4_7_callee_busy_486_reaches_the_caller() {
    let (_data, server) = pbx("bs-busy", &[("2001", false), ("2002", false)]);
    let mut a = registered("A-2001", server.internal, "2001");
    let mut b = registered("B-2002", server.internal, "2002");

    a.dial("2002");
    b.wait_incoming();
    b.hangup(); // rejects the ringing call
    let reason = a.wait_closed();
    b.wait_closed();
    assert!(reason.contains("486"), "caller's close reason: {reason}");
    let statuses = a.wait_invite_status(486);
    assert_eq!(statuses.last(), Some(&486), "{statuses:?}");
}

/// Every SDP the phone received names a relay port, never the other phone's own socket.
fn assert_relay_port(
    received: &[MediaAddr],
    peer_own: &[MediaAddr],
    ports: &RangeInclusive<u16>,
    who: &str,
) {
    assert!(!received.is_empty(), "{who}: no SDP received");
    for m in received {
        assert!(
            ports.contains(&m.port),
            "{who} was told to send RTP to {m:?}, not a relay port {ports:?}"
        );
        assert!(
            !peer_own.contains(m),
            "{who} got the other phone's own address {m:?}"
        );
    }
}
