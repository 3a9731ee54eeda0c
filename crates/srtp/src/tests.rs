//! RFC vectors, round trips and failure modes.

use aws_lc_rs::cipher::{EncryptingKey, UnboundCipherKey, AES_128};

use crate::context::{cm_iv, ctr};
use crate::kdf::{derive, Label};
use crate::replay::{estimate_index, MAX_STREAMS};
use crate::{Context, MasterKey, SrtpError, Suite, MAX_TRAILER};

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn key16(s: &str) -> [u8; 16] {
    hex(s).try_into().unwrap()
}

fn master(suite: Suite, fill: u8) -> MasterKey {
    let material: Vec<u8> = (0..suite.key_len() + suite.salt_len())
        .map(|i| fill.wrapping_add(i as u8))
        .collect();
    MasterKey::new(suite, &material).unwrap()
}

fn rtp(seq: u16, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, 0];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// Protects `pkt` and returns the wire bytes.
fn protect(ctx: &mut Context, pkt: &[u8]) -> Result<Vec<u8>, SrtpError> {
    let mut buf = [0u8; 1500];
    buf[..pkt.len()].copy_from_slice(pkt);
    let n = ctx.protect_rtp(&mut buf, pkt.len())?;
    Ok(buf[..n].to_vec())
}

fn unprotect(ctx: &mut Context, wire: &[u8]) -> Result<Vec<u8>, SrtpError> {
    let mut buf = wire.to_vec();
    let n = ctx.unprotect_rtp(&mut buf)?;
    Ok(buf[..n].to_vec())
}

const RFC3711_MASTER: &str = "E1F97A0D3E018BE0D64FA32C06DE4139 0EC675AD498AFEEBB6960B3AABE6";

#[test]
fn rfc3711_b2_aes_cm_keystream() {
    let key = UnboundCipherKey::new(&AES_128, &key16("2B7E151628AED2A6ABF7158809CF4F3C")).unwrap();
    let key = EncryptingKey::ctr(key).unwrap();
    let salt: [u8; 14] = hex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD").try_into().unwrap();
    // SSRC 0, ROC 0, SEQ 0: the IV is the salt shifted by 16 bits.
    let iv = cm_iv(&salt, 0, 0);
    assert_eq!(iv.to_vec(), hex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD0000"));
    // Keystream segment of 65282 blocks: the first three and the last three.
    let mut stream = vec![0u8; 65282 * 16];
    ctr(&key, &mut stream, iv).unwrap();
    assert_eq!(
        stream[..48].to_vec(),
        hex(
            "E03EAD0935C95E80E166B16DD92B4EB4 D23513162B02D0F72A43A2FE4A5F97AB
             41E95B3BB0A2E8DD477901E4FCA894C0"
        )
    );
    assert_eq!(
        stream[stream.len() - 48..].to_vec(),
        hex(
            "EC8CDF7398607CB0F2D21675EA9EA1E4 362B7C3C6773516318A077D7FC5073AE
             6A2CC3787889374FBEB4C81B17BA6C44"
        )
    );
}

#[test]
fn rfc3711_b3_key_derivation() {
    let m = hex(RFC3711_MASTER);
    let (key, salt) = m.split_at(16);
    let mut out = [0u8; 16];
    derive(key, salt, Label::RtpEncryption, &mut out).unwrap();
    assert_eq!(out.to_vec(), hex("C61E7A93744F39EE10734AFE3FF7A087"));
    let mut out = [0u8; 14];
    derive(key, salt, Label::RtpSalt, &mut out).unwrap();
    assert_eq!(out.to_vec(), hex("30CBBC08863D8C85D49DB34A9AE1"));
    // The RFC lists 94 octets of authentication keystream; HMAC-SHA1 uses the first 20.
    let mut out = [0u8; 94];
    derive(key, salt, Label::RtpAuthentication, &mut out).unwrap();
    assert_eq!(
        out.to_vec(),
        hex(
            "CEBE321F6FF7716B6FD4AB49AF256A156D38BAA48F0A0ACF3C34E2359E6CDBCE
             E049646C43D9327AD175578EF72270986371C10C9A369AC2F94A8C5FBCDDDC25
             6D6E919A48B610EF17C2041E474035766B68642C59BBFC2F34DB60DBDFB2"
        )
    );
}

/// RFC 7714 §11 with the session keys RFC 9335 appendix A.2 lists for its AES-GCM example:
/// the 96-bit master salt is the leading part of the PRF input.
#[test]
fn rfc7714_11_key_derivation_with_96_bit_salt() {
    let key = hex("000102030405060708090a0b0c0d0e0f");
    let salt = hex("a0a1a2a3a4a5a6a7a8a9aaab");
    let mut out = [0u8; 16];
    derive(&key, &salt, Label::RtpEncryption, &mut out).unwrap();
    assert_eq!(out.to_vec(), hex("077c6143cb221bc355ff23d5f984a16e"));
    let mut out = [0u8; 12];
    derive(&key, &salt, Label::RtpSalt, &mut out).unwrap();
    assert_eq!(out.to_vec(), hex("9af3e95364ebac9c99c5a7c4"));
}

const RFC7714_KEY: &str = "000102030405060708090a0b0c0d0e0f";
const RFC7714_SALT: &str = "517569642070726f2071756f";
const RFC7714_RTP: &str = "8040f17b 8041f8d3 5501a0b2 47616c6c 69612065 7374206f 6d6e6973
                           20646976 69736120 696e2070 61727465 73207472 6573";
const RFC7714_RTCP: &str = "81c8000d 4d617273 4e545031 4e545032 52545020 0000042a 0000e930
                            4c756e61 deadbeef deadbeef deadbeef deadbeef deadbeef";

fn rfc7714_context() -> Context {
    Context::with_session_keys(
        Suite::AeadAes128Gcm,
        &key16(RFC7714_KEY),
        &hex(RFC7714_SALT),
    )
}

#[test]
fn rfc7714_16_1_srtp_aead_aes_128_gcm() {
    let want = hex(
        "8040f17b 8041f8d3 5501a0b2 f24de3a3 fb34de6c acba861c 9d7e4bca be633bd5 0d294e6f
         42a5f47a 51c7d19b 36de3adf 8833899d 7f27beb1 6a9152cf 765ee439 0cce",
    );
    let plain = hex(RFC7714_RTP);
    assert_eq!(protect(&mut rfc7714_context(), &plain).unwrap(), want);
    assert_eq!(unprotect(&mut rfc7714_context(), &want).unwrap(), plain);
}

#[test]
fn rfc7714_17_1_srtcp_aead_aes_128_gcm() {
    let want = hex(
        "81c8000d 4d617273 63e94885 dcdab67c a727d766 2f6b7e99 7ff5c0f7 6c06f32d c676a5f1
         730d6fda 4ce09b46 86303ded 0bb9275b c84aa458 96cf4d2f c5abf872 45d9eade 800005d4",
    );
    let plain = hex(RFC7714_RTCP);
    let mut tx = rfc7714_context();
    tx.set_rtcp_index(0x4d617273, 0x5d4).unwrap();
    let mut buf = [0u8; 256];
    buf[..plain.len()].copy_from_slice(&plain);
    let n = tx.protect_rtcp(&mut buf, plain.len()).unwrap();
    assert_eq!(buf[..n].to_vec(), want);
    let mut rx = rfc7714_context();
    let mut wire = want.clone();
    let n = rx.unprotect_rtcp(&mut wire).unwrap();
    assert_eq!(wire[..n].to_vec(), plain);
    // The same index again is a replay.
    let mut wire = want;
    assert_eq!(rx.unprotect_rtcp(&mut wire), Err(SrtpError::Replayed));
}

/// RFC 7714 §17.3 is an SRTCP packet with the E flag clear: homeline never negotiates
/// UNENCRYPTED_SRTCP, so the authentic packet is still refused.
#[test]
fn rfc7714_17_3_unencrypted_srtcp_is_refused() {
    let mut wire = hex(
        "81c8000d 4d617273 4e545031 4e545032 52545020 0000042a 0000e930 4c756e61 deadbeef
         deadbeef deadbeef deadbeef deadbeef 841dd968 3dd78ec9 2ae58790 125f62b3 000005d4",
    );
    assert_eq!(
        rfc7714_context().unprotect_rtcp(&mut wire),
        Err(SrtpError::Unencrypted)
    );
}

/// The known answer libsrtp's self-test uses for AES_CM_128_HMAC_SHA1_80 with the RFC 3711
/// B.3 master key: encryption and the truncated HMAC-SHA1 tag end to end.
#[test]
fn rfc3711_4_aes_cm_hmac_sha1_80_known_answer() {
    let m = MasterKey::new(Suite::AesCm128HmacSha1_80, &hex(RFC3711_MASTER)).unwrap();
    let plain = hex("800f1234 decafbad cafebabe abababab abababab abababab abababab");
    let want = hex(
        "800f1234 decafbad cafebabe 4e55dc4c e79978d8 8ca4d215 949d2402 b78d6acc 99ea179b 8dbb",
    );
    assert_eq!(
        protect(&mut Context::new(&m).unwrap(), &plain).unwrap(),
        want
    );
    assert_eq!(
        unprotect(&mut Context::new(&m).unwrap(), &want).unwrap(),
        plain
    );

    let plain = hex("81c8000b cafebabe abababab abababab abababab abababab");
    let want = hex(
        "81c8000b cafebabe 7128035b e487b9bd bef89041 f977a5a8 80000001 993e08cd 54d6c123 0798",
    );
    let mut tx = Context::new(&m).unwrap();
    tx.set_rtcp_index(0xcafebabe, 1).unwrap();
    let mut buf = [0u8; 128];
    buf[..plain.len()].copy_from_slice(&plain);
    let n = tx.protect_rtcp(&mut buf, plain.len()).unwrap();
    assert_eq!(buf[..n].to_vec(), want);
    let mut wire = want;
    let n = Context::new(&m).unwrap().unprotect_rtcp(&mut wire).unwrap();
    assert_eq!(wire[..n].to_vec(), plain);
}

#[test]
fn rfc3711_round_trip_every_suite_rtp_and_rtcp() {
    for suite in Suite::ALL {
        let m = master(suite, 7);
        let (mut tx, mut rx) = (Context::new(&m).unwrap(), Context::new(&m).unwrap());
        for seq in 100..110u16 {
            let plain = rtp(seq, 0x1234_5678, &[seq as u8; 160]);
            let wire = protect(&mut tx, &plain).unwrap();
            assert_eq!(wire.len(), plain.len() + suite.srtp_tag_len(), "{suite}");
            assert_ne!(wire[12..172], plain[12..], "{suite}: payload encrypted");
            assert_eq!(unprotect(&mut rx, &wire).unwrap(), plain, "{suite}");
        }
        let plain = hex(RFC7714_RTCP);
        for _ in 0..3 {
            let mut buf = [0u8; 256];
            buf[..plain.len()].copy_from_slice(&plain);
            let n = tx.protect_rtcp(&mut buf, plain.len()).unwrap();
            // RFC 4568 §6.2: SRTCP keeps an 80-bit tag with the 32-bit SRTP suite.
            assert_eq!(n, plain.len() + 4 + suite.srtcp_tag_len(), "{suite}");
            let m = rx.unprotect_rtcp(&mut buf[..n]).unwrap();
            assert_eq!(buf[..m].to_vec(), plain, "{suite}");
        }
        // A context with another key authenticates nothing.
        let mut other = Context::new(&master(suite, 8)).unwrap();
        let wire = protect(&mut tx, &rtp(200, 1, &[1; 20])).unwrap();
        assert_eq!(unprotect(&mut other, &wire), Err(SrtpError::AuthFailed));
    }
}

#[test]
fn rfc3711_3_3_tampered_packet_rejected_without_state_change() {
    for suite in Suite::ALL {
        let m = master(suite, 1);
        let (mut tx, mut rx) = (Context::new(&m).unwrap(), Context::new(&m).unwrap());
        let wire = protect(&mut tx, &rtp(5, 9, &[0x55; 40])).unwrap();
        for at in [1, 3, 20, wire.len() - 1] {
            let mut bad = wire.clone();
            bad[at] ^= 0x01;
            assert_eq!(
                unprotect(&mut rx, &bad),
                Err(SrtpError::AuthFailed),
                "{suite} {at}"
            );
        }
        // The authentic packet still passes: a forgery left no trace in the replay window.
        assert!(unprotect(&mut rx, &wire).is_ok(), "{suite}");
    }
}

#[test]
fn rfc3711_3_3_2_replay_rejected() {
    let m = master(Suite::AesCm128HmacSha1_80, 3);
    let (mut tx, mut rx) = (Context::new(&m).unwrap(), Context::new(&m).unwrap());
    let wires: Vec<Vec<u8>> = (0..100u16)
        .map(|s| protect(&mut tx, &rtp(s, 42, &[1; 10])).unwrap())
        .collect();
    assert!(unprotect(&mut rx, &wires[50]).is_ok());
    assert!(unprotect(&mut rx, &wires[99]).is_ok());
    // Seen, and older than the 64-packet window.
    assert_eq!(unprotect(&mut rx, &wires[99]), Err(SrtpError::Replayed));
    assert_eq!(unprotect(&mut rx, &wires[30]), Err(SrtpError::Replayed));
    // In the window and not seen: late but fine, once.
    assert!(unprotect(&mut rx, &wires[60]).is_ok());
    assert_eq!(unprotect(&mut rx, &wires[60]), Err(SrtpError::Replayed));
}

#[test]
fn rfc3711_3_3_1_roc_rolls_over_at_seq_65535_to_0() {
    for suite in Suite::ALL {
        let m = master(suite, 9);
        let (mut tx, mut rx) = (Context::new(&m).unwrap(), Context::new(&m).unwrap());
        for seq in [65533u16, 65534, 65535, 0, 1, 2] {
            let plain = rtp(seq, 77, &[seq as u8; 20]);
            let wire = protect(&mut tx, &plain).unwrap();
            assert_eq!(unprotect(&mut rx, &wire).unwrap(), plain, "{suite} {seq}");
        }
        assert_eq!(tx.roc(77), Some(1));
        assert_eq!(rx.roc(77), Some(1));
        // A receiver that wrongly stayed on ROC 0 could not authenticate (the ROC is in the
        // tag or the nonce): start one at seq 1, ROC 0 and feed it the ROC-1 packet seq 3.
        let wire = protect(&mut tx, &rtp(3, 77, &[3; 20])).unwrap();
        let mut wrong = Context::new(&m).unwrap();
        wrong.set_index(77, 0, 1).unwrap();
        assert_eq!(
            unprotect(&mut wrong, &wire),
            Err(SrtpError::AuthFailed),
            "{suite}"
        );
    }
}

#[test]
fn rfc3711_appendix_a_index_estimation_across_reordering() {
    // Around the wrap: after 65535 (ROC 0) a 1 is ROC 1; after 2 (ROC 1) a late 65534 is ROC 0.
    let h = Some(0xffff);
    assert_eq!(estimate_index(h, 1), Some(0x1_0001));
    let h = Some(0x1_0002);
    assert_eq!(estimate_index(h, 65534), Some(0xfffe));
    // Less than half the sequence space ahead is this cycle; more is the previous one.
    assert_eq!(estimate_index(h, 30000), Some(0x1_7530));
    assert_eq!(estimate_index(h, 40000), Some(0x9c40));
    // Before the first packet of the stream: refused, not wrapped to ROC 2^32-1.
    assert_eq!(estimate_index(Some(10), 40000), None);

    let m = master(Suite::AeadAes128Gcm, 4);
    let (mut tx, mut rx) = (Context::new(&m).unwrap(), Context::new(&m).unwrap());
    let seqs = [65530u16, 65531, 65532, 65533, 65534, 65535, 0, 1, 2, 3];
    let wires: Vec<Vec<u8>> = seqs
        .iter()
        .map(|&s| protect(&mut tx, &rtp(s, 5, &[s as u8; 8])).unwrap())
        .collect();
    // Delivered out of order across the wrap.
    for i in [0usize, 2, 1, 6, 3, 8, 5, 4, 7, 9] {
        assert_eq!(
            unprotect(&mut rx, &wires[i]).unwrap(),
            rtp(seqs[i], 5, &[seqs[i] as u8; 8]),
            "seq {}",
            seqs[i]
        );
    }
    assert_eq!(rx.roc(5), Some(1));
}

#[test]
fn rfc3711_9_2_protect_refuses_to_reuse_an_index() {
    let mut tx = Context::new(&master(Suite::AesCm128HmacSha1_80, 2)).unwrap();
    protect(&mut tx, &rtp(10, 1, &[1; 10])).unwrap();
    // Same SSRC and index, another payload: that would reuse the keystream.
    assert_eq!(
        protect(&mut tx, &rtp(10, 1, &[2; 10])),
        Err(SrtpError::Replayed)
    );
}

#[test]
fn bad_input_is_refused_without_panic() {
    for suite in Suite::ALL {
        let m = master(suite, 6);
        let (mut tx, mut rx) = (Context::new(&m).unwrap(), Context::new(&m).unwrap());
        let wire = protect(&mut tx, &rtp(1, 2, &[0; 30])).unwrap();
        for cut in 0..wire.len() {
            let mut b = wire[..cut].to_vec();
            assert!(rx.unprotect_rtp(&mut b).is_err());
            assert!(rx.unprotect_rtcp(&mut b).is_err());
        }
        // No room for the tag.
        let plain = rtp(2, 2, &[0; 30]);
        let mut tight = plain.clone();
        assert_eq!(
            tx.protect_rtp(&mut tight, plain.len()),
            Err(SrtpError::BufferTooSmall)
        );
        // An extension header running past the packet.
        let mut lie = plain.clone();
        lie[0] |= 0x10;
        lie[14] = 0xff;
        lie.resize(lie.len() + MAX_TRAILER, 0);
        assert_eq!(
            tx.protect_rtp(&mut lie, plain.len()),
            Err(SrtpError::Malformed)
        );
    }
}

#[test]
fn ssrc_table_is_bounded() {
    let m = master(Suite::AesCm128HmacSha1_32, 5);
    let mut tx = Context::new(&m).unwrap();
    for ssrc in 0..MAX_STREAMS as u32 {
        protect(&mut tx, &rtp(1, ssrc, &[0; 4])).unwrap();
    }
    assert_eq!(
        protect(&mut tx, &rtp(1, 999, &[0; 4])),
        Err(SrtpError::TooManyStreams)
    );
}

#[test]
fn master_key_checks_length_and_hides_material() {
    assert_eq!(
        MasterKey::new(Suite::AeadAes128Gcm, &[0; 30]),
        Err(SrtpError::KeyLength)
    );
    let m = MasterKey::new(Suite::AesCm128HmacSha1_80, &[0xab; 30]).unwrap();
    let shown = format!("{m:?} {:?}", Context::new(&m).unwrap());
    assert!(
        !shown.contains("171") && !shown.to_lowercase().contains("ab, "),
        "{shown}"
    );
    assert_eq!(
        Suite::from_name("AEAD_AES_128_GCM"),
        Some(Suite::AeadAes128Gcm)
    );
    assert_eq!(Suite::from_name("AES_256_CM_HMAC_SHA1_80"), None);
}
