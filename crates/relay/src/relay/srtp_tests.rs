//! SRTP on channels: translation between an SRTP device and plain RTP or another key, counters,
//! and contexts that survive a renegotiation with the same key.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::SeedableRng;
use srtp::{Context, MasterKey, Suite};

use crate::SRTP_TRAILER;
use crate::{CallRef, ChannelId, Config, DirectPeer, LegRef, Peer, Relay, RelayPort, SrtpKeys};

fn a(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn key(suite: Suite, fill: u8) -> MasterKey {
    let m: Vec<u8> = (0..suite.key_len() + suite.salt_len())
        .map(|i| fill ^ (i as u8).wrapping_mul(37))
        .collect();
    MasterKey::new(suite, &m).unwrap()
}

fn rtp(seq: u16, ssrc: u32) -> Vec<u8> {
    let mut p = vec![0x80, 0];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(&[0xd5; 160]);
    p
}

fn rtcp_sr(ssrc: u32) -> Vec<u8> {
    let mut p = vec![0x80, 200, 0, 6];
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(&[7; 20]);
    p
}

/// Sends `pkt` into the relay; the bytes that leave and where.
fn send(
    r: &mut Relay,
    now: Instant,
    port: RelayPort,
    from: SocketAddr,
    pkt: &[u8],
) -> Option<(RelayPort, SocketAddr, Vec<u8>)> {
    let mut buf = pkt.to_vec();
    buf.resize(pkt.len() + SRTP_TRAILER, 0);
    let (f, n) = r.handle_packet(now, port, from, &mut buf, pkt.len())?;
    Some((f.from_port, f.to, buf[..n].to_vec()))
}

fn protect(ctx: &mut Context, pkt: &[u8]) -> Vec<u8> {
    let mut buf = pkt.to_vec();
    buf.resize(pkt.len() + SRTP_TRAILER, 0);
    let n = if pkt[1] == 200 {
        ctx.protect_rtcp(&mut buf, pkt.len()).unwrap()
    } else {
        ctx.protect_rtp(&mut buf, pkt.len()).unwrap()
    };
    buf.truncate(n);
    buf
}

fn unprotect(ctx: &mut Context, wire: &[u8]) -> Result<Vec<u8>, srtp::SrtpError> {
    let mut buf = wire.to_vec();
    let n = if wire[1] == 200 {
        ctx.unprotect_rtcp(&mut buf)?
    } else {
        ctx.unprotect_rtp(&mut buf)?
    };
    buf.truncate(n);
    Ok(buf)
}

const PHONE_SIP: &str = "192.168.1.50";
const PHONE_MEDIA: &str = "192.168.1.50:4000";
const DESK: &str = "192.168.1.60:5000";

struct Leg {
    relay: Relay,
    t0: Instant,
    ch: ChannelId,
    port: RelayPort,
}

/// An SRTP phone on a channel paired directly with a plain-RTP desk phone.
fn srtp_phone_with_plain_desk(device: &MasterKey, ours: &MasterKey) -> Leg {
    let t0 = Instant::now();
    let mut relay = Relay::new(
        Config {
            ports: 30000..=30009,
            ..Config::default()
        },
        &mut StdRng::seed_from_u64(1),
    )
    .unwrap();
    let ch = relay.allocate(t0, CallRef(1), LegRef(0)).unwrap();
    let peer = Peer {
        signalling_ip: Some(PHONE_SIP.parse().unwrap()),
        ..Peer::new(a(PHONE_MEDIA))
    };
    relay.set_peer(t0, ch, peer).unwrap();
    relay
        .set_srtp(
            ch,
            &SrtpKeys {
                inbound: Some(device.clone()),
                outbound: Some(ours.clone()),
            },
        )
        .unwrap();
    let desk = DirectPeer {
        rtp: a(DESK),
        rtcp: Some(a("192.168.1.60:5001")),
    };
    relay.pair_direct(t0, ch, desk).unwrap();
    let port = relay.rtp_port(ch).unwrap();
    Leg {
        relay,
        t0,
        ch,
        port,
    }
}

#[test]
fn rfc3711_srtp_phone_and_plain_rtp_desk_phone_hear_each_other() {
    for suite in Suite::ALL {
        let (device, ours) = (key(suite, 1), key(suite, 2));
        let mut l = srtp_phone_with_plain_desk(&device, &ours);
        let mut phone_tx = Context::new(&device).unwrap();
        let mut phone_rx = Context::new(&ours).unwrap();
        let t = l.t0 + Duration::from_millis(20);
        // Phone → desk: decrypted, the plain packet exactly as the phone built it.
        let plain = rtp(1, 0xaaaa);
        let (_, to, out) = send(
            &mut l.relay,
            t,
            l.port,
            a(PHONE_MEDIA),
            &protect(&mut phone_tx, &plain),
        )
        .expect("forwarded to the desk");
        assert_eq!((to, out), (a(DESK), plain), "{suite}");
        // Desk → phone: encrypted with homeline's key, which the phone decrypts.
        let plain = rtp(500, 0xbbbb);
        let (from_port, to, out) = send(&mut l.relay, t, l.port, a(DESK), &plain).unwrap();
        assert_eq!((from_port, to), (l.port, a(PHONE_MEDIA)));
        assert_eq!(out.len(), plain.len() + suite.srtp_tag_len());
        assert_eq!(unprotect(&mut phone_rx, &out).unwrap(), plain, "{suite}");
        // RTCP both ways on the RTCP ports.
        let rtcp = RelayPort::new(l.port.get() + 1);
        let sr = rtcp_sr(0xaaaa);
        let (_, to, out) = send(
            &mut l.relay,
            t,
            rtcp,
            a("192.168.1.50:4001"),
            &protect(&mut phone_tx, &sr),
        )
        .unwrap();
        assert_eq!((to, out), (a("192.168.1.60:5001"), sr));
        let sr = rtcp_sr(0xbbbb);
        let (_, _, out) = send(&mut l.relay, t, rtcp, a("192.168.1.60:5001"), &sr).unwrap();
        assert_eq!(unprotect(&mut phone_rx, &out).unwrap(), sr, "{suite}");
        let s = l.relay.snapshot(l.ch).unwrap();
        assert!(s.srtp_inbound && s.srtp_outbound);
        assert_eq!((s.srtp_auth_failures, s.srtp_replays), (0, 0));
    }
}

#[test]
fn rfc3711_3_3_forged_and_replayed_packets_are_counted_and_never_latch() {
    let (device, ours) = (
        key(Suite::AesCm128HmacSha1_80, 3),
        key(Suite::AesCm128HmacSha1_80, 4),
    );
    let mut l = srtp_phone_with_plain_desk(&device, &ours);
    let t = l.t0 + Duration::from_millis(20);
    // Plain RTP, or SRTP under another key, from the phone's own address: dropped, counted.
    assert!(send(&mut l.relay, t, l.port, a(PHONE_MEDIA), &rtp(1, 1)).is_none());
    let mut wrong = Context::new(&key(Suite::AesCm128HmacSha1_80, 9)).unwrap();
    assert!(send(
        &mut l.relay,
        t,
        l.port,
        a(PHONE_MEDIA),
        &protect(&mut wrong, &rtp(2, 1))
    )
    .is_none());
    let s = l.relay.snapshot(l.ch).unwrap();
    assert_eq!(s.srtp_auth_failures, 2);
    assert_eq!(s.latched_rtp, None, "a forged packet does not latch");
    // An authentic packet passes once; its replay is dropped and counted.
    let mut phone = Context::new(&device).unwrap();
    let wire = protect(&mut phone, &rtp(3, 1));
    assert!(send(&mut l.relay, t, l.port, a(PHONE_MEDIA), &wire).is_some());
    assert!(send(&mut l.relay, t, l.port, a(PHONE_MEDIA), &wire).is_none());
    let s = l.relay.snapshot(l.ch).unwrap();
    assert_eq!((s.srtp_auth_failures, s.srtp_replays), (2, 1));
    assert_eq!(s.latched_rtp, Some(a(PHONE_MEDIA)));
}

/// Two SRTP devices with their own keys: each hears the other under homeline's key for it.
#[test]
fn rfc3711_two_srtp_legs_with_their_own_keys_are_translated() {
    let t0 = Instant::now();
    let mut r = Relay::new(
        Config {
            ports: 30000..=30009,
            ..Config::default()
        },
        &mut StdRng::seed_from_u64(2),
    )
    .unwrap();
    let (ka, kb) = (
        key(Suite::AeadAes128Gcm, 1),
        key(Suite::AesCm128HmacSha1_32, 2),
    );
    let (oa, ob) = (
        key(Suite::AeadAes128Gcm, 3),
        key(Suite::AesCm128HmacSha1_32, 4),
    );
    let ca = r.allocate(t0, CallRef(1), LegRef(0)).unwrap();
    let cb = r.allocate(t0, CallRef(1), LegRef(1)).unwrap();
    let (ma, mb) = (a("198.51.100.20:4000"), a("203.0.113.9:6000"));
    for (ch, m, inb, out) in [(ca, ma, &ka, &oa), (cb, mb, &kb, &ob)] {
        r.set_peer(
            t0,
            ch,
            Peer {
                signalling_ip: Some(m.ip()),
                ..Peer::new(m)
            },
        )
        .unwrap();
        r.set_srtp(
            ch,
            &SrtpKeys {
                inbound: Some(inb.clone()),
                outbound: Some(out.clone()),
            },
        )
        .unwrap();
    }
    r.pair(t0, ca, cb).unwrap();
    let (pa, pb) = (r.rtp_port(ca).unwrap(), r.rtp_port(cb).unwrap());
    let (mut a_tx, mut a_rx) = (Context::new(&ka).unwrap(), Context::new(&oa).unwrap());
    let (mut b_tx, mut b_rx) = (Context::new(&kb).unwrap(), Context::new(&ob).unwrap());
    let t = t0 + Duration::from_millis(20);
    // B speaks first (A is not latched yet, but its SDP address is its signalling address).
    let plain = rtp(10, 0xb);
    let (from, to, out) = send(&mut r, t, pb, mb, &protect(&mut b_tx, &plain)).unwrap();
    assert_eq!((from, to), (pa, ma));
    assert_eq!(unprotect(&mut a_rx, &out).unwrap(), plain);
    // B's key never reaches A: A cannot read B's wire packets.
    assert!(unprotect(
        &mut Context::new(&oa).unwrap(),
        &protect(&mut Context::new(&kb).unwrap(), &plain)
    )
    .is_err());
    let plain = rtp(20, 0xa);
    let (from, to, out) = send(&mut r, t, pa, ma, &protect(&mut a_tx, &plain)).unwrap();
    assert_eq!((from, to), (pb, mb));
    assert_eq!(unprotect(&mut b_rx, &out).unwrap(), plain);
}

/// A re-INVITE repeating the same keys keeps both contexts, rollover counters included; a
/// new device key starts a new inbound context while homeline's own stays.
#[test]
fn rfc3711_3_2_contexts_survive_a_renegotiation_with_the_same_keys() {
    let suite = Suite::AesCm128HmacSha1_80;
    let (device, ours) = (key(suite, 5), key(suite, 6));
    let mut l = srtp_phone_with_plain_desk(&device, &ours);
    let mut phone_tx = Context::new(&device).unwrap();
    let mut phone_rx = Context::new(&ours).unwrap();
    let mut t = l.t0;
    let both_ways =
        |l: &mut Leg, t: Instant, seq: u16, phone_tx: &mut Context, phone_rx: &mut Context| {
            let up = send(
                &mut l.relay,
                t,
                l.port,
                a(PHONE_MEDIA),
                &protect(phone_tx, &rtp(seq, 1)),
            );
            let down = send(&mut l.relay, t, l.port, a(DESK), &rtp(seq, 2));
            (up.map(|x| x.2), down.map(|x| unprotect(phone_rx, &x.2)))
        };
    for seq in [65534u16, 65535, 0, 1] {
        t += Duration::from_millis(20);
        let (up, down) = both_ways(&mut l, t, seq, &mut phone_tx, &mut phone_rx);
        assert_eq!(up, Some(rtp(seq, 1)));
        assert_eq!(down, Some(Ok(rtp(seq, 2))));
    }
    assert_eq!(phone_tx.roc(1), Some(1));
    // The re-INVITE: same a=crypto both ways.
    let peer = Peer {
        signalling_ip: Some(PHONE_SIP.parse().unwrap()),
        ..Peer::new(a(PHONE_MEDIA))
    };
    l.relay.renegotiate(t, l.ch, peer).unwrap();
    l.relay
        .set_srtp(
            l.ch,
            &SrtpKeys {
                inbound: Some(device.clone()),
                outbound: Some(ours.clone()),
            },
        )
        .unwrap();
    for seq in 2..5u16 {
        t += Duration::from_millis(20);
        let (up, down) = both_ways(&mut l, t, seq, &mut phone_tx, &mut phone_rx);
        assert_eq!(up, Some(rtp(seq, 1)), "ROC 1 kept inbound");
        assert_eq!(down, Some(Ok(rtp(seq, 2))), "ROC 1 kept outbound");
    }
    // A packet from before the re-INVITE is still a replay: the window was kept.
    let old = {
        let mut c = Context::new(&device).unwrap();
        c.set_index(1, 1, 1).unwrap();
        protect(&mut c, &rtp(3, 1))
    };
    assert!(send(&mut l.relay, t, l.port, a(PHONE_MEDIA), &old).is_none());
    assert_eq!(l.relay.snapshot(l.ch).unwrap().srtp_replays, 1);
    // The phone re-keys: its new key is accepted from seq 0 of a new context, homeline's own
    // outbound stream goes on at ROC 1.
    let device2 = key(suite, 7);
    l.relay
        .set_srtp(
            l.ch,
            &SrtpKeys {
                inbound: Some(device2.clone()),
                outbound: Some(ours.clone()),
            },
        )
        .unwrap();
    let mut phone_tx2 = Context::new(&device2).unwrap();
    t += Duration::from_millis(20);
    let (up, down) = both_ways(&mut l, t, 5, &mut phone_tx2, &mut phone_rx);
    assert_eq!(up, Some(rtp(5, 1)));
    assert_eq!(down, Some(Ok(rtp(5, 2))));
    assert_eq!(phone_rx.roc(2), Some(1));
    // Back to plain RTP both ways.
    l.relay.set_srtp(l.ch, &SrtpKeys::default()).unwrap();
    let s = l.relay.snapshot(l.ch).unwrap();
    assert!(!s.srtp_inbound && !s.srtp_outbound);
    let down = send(&mut l.relay, t, l.port, a(DESK), &rtp(6, 2)).unwrap();
    assert_eq!(down.2, rtp(6, 2));
}
