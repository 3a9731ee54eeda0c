//! One direction of one leg: session keys and per-SSRC state, protect and unprotect in place.

use std::fmt;

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_128_GCM};
use aws_lc_rs::cipher::{EncryptingKey, EncryptionContext, UnboundCipherKey, AES_128};
use aws_lc_rs::hmac;
use aws_lc_rs::iv::FixedLength;

use crate::error::SrtpError;
use crate::kdf::{derive, Label};
use crate::replay::{estimate_index, Stream, Streams, Window};
use crate::rtp::{rtcp_ssrc, rtp_header};
use crate::suite::{MasterKey, Suite};

/// The E flag of the SRTCP index word: the packet is encrypted (RFC 3711 §3.4).
const E_FLAG: u32 = 0x8000_0000;

/// An SRTP/SRTCP cryptographic context for one direction (RFC 3711 §3.2): the session keys
/// derived from one master key and the state of every SSRC sent under it. Use one context per
/// direction: protecting and unprotecting share the replay state.
pub struct Context {
    suite: Suite,
    rtp: SessionKeys,
    rtcp: SessionKeys,
    streams: Streams,
}

/// The session keys of SRTP or of SRTCP.
struct SessionKeys {
    cipher: Cipher,
    /// Session salt, left-aligned (14 octets used for AES-CM, 12 for GCM).
    salt: [u8; 14],
}

// Two per context and read on every packet: kept inline, no indirection.
#[allow(clippy::large_enum_variant)]
enum Cipher {
    Cm { key: EncryptingKey, auth: hmac::Key },
    Gcm(LessSafeKey),
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("suite", &self.suite)
            .finish_non_exhaustive()
    }
}

impl Context {
    /// Derives the session keys of `master` (RFC 3711 §4.3, key derivation rate 0).
    pub fn new(master: &MasterKey) -> Result<Context, SrtpError> {
        let suite = master.suite();
        Ok(Context {
            suite,
            rtp: SessionKeys::derive(
                master,
                Label::RtpEncryption,
                Label::RtpAuthentication,
                Label::RtpSalt,
            )?,
            rtcp: SessionKeys::derive(
                master,
                Label::RtcpEncryption,
                Label::RtcpAuthentication,
                Label::RtcpSalt,
            )?,
            streams: Streams::default(),
        })
    }

    /// The suite.
    pub fn suite(&self) -> Suite {
        self.suite
    }

    /// Encrypts and authenticates the RTP packet `buf[..len]` in place, appending the tag;
    /// returns the SRTP packet's length. `buf` must have room for the tag after `len`. A
    /// packet index already protected under this key is refused ([`SrtpError::Replayed`]):
    /// the same keystream must never encrypt two different payloads.
    pub fn protect_rtp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        let h = rtp_header(buf, len)?;
        let tag_len = self.suite.srtp_tag_len();
        if buf.len() < len + tag_len {
            return Err(SrtpError::BufferTooSmall);
        }
        let slot = self.streams.find_or_insert(h.ssrc)?;
        let window = self.streams.get(slot).rtp;
        let index = estimate_index(window.highest(), h.seq).ok_or(SrtpError::Replayed)?;
        window.check(index)?;
        match &self.rtp.cipher {
            Cipher::Cm { key, auth } => {
                let iv = cm_iv(&self.rtp.salt, h.ssrc, index);
                ctr(key, &mut buf[h.len..len], iv)?;
                let roc = (index >> 16) as u32;
                let tag = hmac_sha1(auth, &buf[..len], &roc.to_be_bytes());
                buf[len..len + tag_len].copy_from_slice(&tag.as_ref()[..tag_len]);
            }
            Cipher::Gcm(key) => {
                let nonce = gcm_rtp_iv(&self.rtp.salt, h.ssrc, index);
                let (header, rest) = buf.split_at_mut(h.len);
                let payload_len = len - h.len;
                let tag = key
                    .seal_in_place_separate_tag(
                        Nonce::assume_unique_for_key(nonce),
                        Aad::from(&header[..]),
                        &mut rest[..payload_len],
                    )
                    .map_err(|_| SrtpError::Cipher)?;
                rest[payload_len..payload_len + tag_len].copy_from_slice(tag.as_ref());
            }
        }
        self.streams.get_mut(slot).rtp.accept(index);
        Ok(len + tag_len)
    }

    /// Authenticates, replay-checks and decrypts the SRTP packet `buf` in place; returns the
    /// length of the RTP packet at its start. Nothing is remembered of a packet that fails.
    pub fn unprotect_rtp(&mut self, buf: &mut [u8]) -> Result<usize, SrtpError> {
        let tag_len = self.suite.srtp_tag_len();
        let body = buf.len().checked_sub(tag_len).ok_or(SrtpError::TooShort)?;
        let h = rtp_header(buf, body)?;
        let slot = self.existing_or_room(h.ssrc)?;
        let window = slot.map(|i| self.streams.get(i).rtp).unwrap_or_default();
        let index = estimate_index(window.highest(), h.seq).ok_or(SrtpError::Replayed)?;
        window.check(index)?;
        match &self.rtp.cipher {
            Cipher::Cm { key, auth } => {
                let roc = (index >> 16) as u32;
                let tag = hmac_sha1(auth, &buf[..body], &roc.to_be_bytes());
                if !equal(&tag.as_ref()[..tag_len], &buf[body..]) {
                    return Err(SrtpError::AuthFailed);
                }
                let iv = cm_iv(&self.rtp.salt, h.ssrc, index);
                ctr(key, &mut buf[h.len..body], iv)?;
            }
            Cipher::Gcm(key) => {
                let nonce = gcm_rtp_iv(&self.rtp.salt, h.ssrc, index);
                let (header, rest) = buf.split_at_mut(h.len);
                key.open_in_place(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(&header[..]),
                    rest,
                )
                .map_err(|_| SrtpError::AuthFailed)?;
            }
        }
        self.stream_for(slot, h.ssrc)?.rtp.accept(index);
        Ok(body)
    }

    /// Encrypts and authenticates the compound RTCP packet `buf[..len]` in place, appending
    /// the E flag, the SRTCP index and the tag; returns the SRTCP packet's length. `buf` must
    /// have room for [`crate::MAX_TRAILER`] octets after `len`.
    pub fn protect_rtcp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        let ssrc = rtcp_ssrc(buf.get(..len).ok_or(SrtpError::TooShort)?)?;
        let tag_len = self.suite.srtcp_tag_len();
        let total = len + 4 + tag_len;
        if buf.len() < total {
            return Err(SrtpError::BufferTooSmall);
        }
        let slot = self.streams.find_or_insert(ssrc)?;
        let index = self.streams.get(slot).rtcp_next;
        if index & E_FLAG != 0 {
            return Err(SrtpError::IndexExhausted);
        }
        let word = (index | E_FLAG).to_be_bytes();
        match &self.rtcp.cipher {
            Cipher::Cm { key, auth } => {
                ctr(
                    key,
                    &mut buf[8..len],
                    cm_rtcp_iv(&self.rtcp.salt, ssrc, index),
                )?;
                buf[len..len + 4].copy_from_slice(&word);
                let tag = hmac_sha1(auth, &buf[..len + 4], &[]);
                buf[len + 4..total].copy_from_slice(&tag.as_ref()[..tag_len]);
            }
            Cipher::Gcm(key) => {
                let aad = gcm_rtcp_aad(&buf[..8], word);
                let nonce = gcm_rtcp_iv(&self.rtcp.salt, ssrc, index);
                let tag = key
                    .seal_in_place_separate_tag(
                        Nonce::assume_unique_for_key(nonce),
                        Aad::from(&aad[..]),
                        &mut buf[8..len],
                    )
                    .map_err(|_| SrtpError::Cipher)?;
                // RFC 7714 §9.1: the tag precedes the E flag and index.
                buf[len..len + tag_len].copy_from_slice(tag.as_ref());
                buf[len + tag_len..total].copy_from_slice(&word);
            }
        }
        self.streams.get_mut(slot).rtcp_next = index + 1;
        Ok(total)
    }

    /// Authenticates, replay-checks and decrypts the SRTCP packet `buf` in place; returns the
    /// length of the RTCP packet at its start.
    pub fn unprotect_rtcp(&mut self, buf: &mut [u8]) -> Result<usize, SrtpError> {
        let tag_len = self.suite.srtcp_tag_len();
        let body = buf
            .len()
            .checked_sub(4 + tag_len)
            .filter(|&b| b >= 8)
            .ok_or(SrtpError::TooShort)?;
        let ssrc = rtcp_ssrc(&buf[..body])?;
        let slot = self.existing_or_room(ssrc)?;
        let window = slot.map(|i| self.streams.get(i).rtcp).unwrap_or_default();
        let word_at = match self.rtcp.cipher {
            Cipher::Cm { .. } => body,
            Cipher::Gcm(_) => body + tag_len,
        };
        let word = [
            buf[word_at],
            buf[word_at + 1],
            buf[word_at + 2],
            buf[word_at + 3],
        ];
        let word_value = u32::from_be_bytes(word);
        let index = word_value & !E_FLAG;
        window.check(u64::from(index))?;
        match &self.rtcp.cipher {
            Cipher::Cm { key, auth } => {
                let tag = hmac_sha1(auth, &buf[..body + 4], &[]);
                if !equal(&tag.as_ref()[..tag_len], &buf[body + 4..]) {
                    return Err(SrtpError::AuthFailed);
                }
                if word_value & E_FLAG == 0 {
                    return Err(SrtpError::Unencrypted);
                }
                ctr(
                    key,
                    &mut buf[8..body],
                    cm_rtcp_iv(&self.rtcp.salt, ssrc, index),
                )?;
            }
            Cipher::Gcm(key) => {
                if word_value & E_FLAG == 0 {
                    return Err(SrtpError::Unencrypted);
                }
                let aad = gcm_rtcp_aad(&buf[..8], word);
                let nonce = gcm_rtcp_iv(&self.rtcp.salt, ssrc, index);
                key.open_in_place(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(&aad[..]),
                    &mut buf[8..body + tag_len],
                )
                .map_err(|_| SrtpError::AuthFailed)?;
            }
        }
        self.stream_for(slot, ssrc)?.rtcp.accept(u64::from(index));
        Ok(body)
    }

    /// The rollover counter of `ssrc`'s RTP stream (its highest index's upper 32 bits).
    pub fn roc(&self, ssrc: u32) -> Option<u32> {
        let i = self.streams.find(ssrc)?;
        self.streams.get(i).rtp.highest().map(|h| (h >> 16) as u32)
    }

    /// Starts `ssrc`'s RTP stream at rollover counter `roc` and sequence number `seq`, as if
    /// a packet with that index had been handled (for tests and for a sender that must
    /// continue a known stream).
    pub fn set_index(&mut self, ssrc: u32, roc: u32, seq: u16) -> Result<(), SrtpError> {
        let i = self.streams.find_or_insert(ssrc)?;
        let mut w = Window::default();
        w.accept((u64::from(roc) << 16) | u64::from(seq));
        self.streams.get_mut(i).rtp = w;
        Ok(())
    }

    /// Sets the next SRTCP index sent for `ssrc`.
    pub fn set_rtcp_index(&mut self, ssrc: u32, index: u32) -> Result<(), SrtpError> {
        let i = self.streams.find_or_insert(ssrc)?;
        self.streams.get_mut(i).rtcp_next = index & !E_FLAG;
        Ok(())
    }

    /// A context over session keys given directly (the RFC 7714 vectors), the same for SRTP
    /// and SRTCP.
    #[cfg(test)]
    pub(crate) fn with_session_keys(suite: Suite, key: &[u8; 16], salt: &[u8]) -> Context {
        let mut s = [0u8; 14];
        s[..salt.len()].copy_from_slice(salt);
        let keys = || SessionKeys {
            cipher: match suite.is_aead() {
                true => Cipher::Gcm(LessSafeKey::new(
                    UnboundKey::new(&AES_128_GCM, key).expect("16 octets"),
                )),
                false => Cipher::Cm {
                    key: EncryptingKey::ctr(
                        UnboundCipherKey::new(&AES_128, key).expect("16 octets"),
                    )
                    .expect("AES-CTR"),
                    auth: hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &[0; 20]),
                },
            },
            salt: s,
        };
        Context {
            suite,
            rtp: keys(),
            rtcp: keys(),
            streams: Streams::default(),
        }
    }

    /// The slot of a known SSRC, `None` for a new one there is room for.
    fn existing_or_room(&self, ssrc: u32) -> Result<Option<usize>, SrtpError> {
        match self.streams.find(ssrc) {
            Some(i) => Ok(Some(i)),
            None if self.streams.has_room() => Ok(None),
            None => Err(SrtpError::TooManyStreams),
        }
    }

    /// The stream of an authenticated packet, created now if it is new.
    fn stream_for(&mut self, slot: Option<usize>, ssrc: u32) -> Result<&mut Stream, SrtpError> {
        let i = match slot {
            Some(i) => i,
            None => self.streams.find_or_insert(ssrc)?,
        };
        Ok(self.streams.get_mut(i))
    }
}

impl SessionKeys {
    fn derive(
        master: &MasterKey,
        enc: Label,
        auth: Label,
        salt_label: Label,
    ) -> Result<SessionKeys, SrtpError> {
        let suite = master.suite();
        let mut key = [0u8; 16];
        derive(master.key(), master.salt(), enc, &mut key)?;
        let mut salt = [0u8; 14];
        derive(
            master.key(),
            master.salt(),
            salt_label,
            &mut salt[..suite.salt_len()],
        )?;
        let cipher = if suite.is_aead() {
            let k = UnboundKey::new(&AES_128_GCM, &key).map_err(|_| SrtpError::KeyLength)?;
            Cipher::Gcm(LessSafeKey::new(k))
        } else {
            // RFC 3711 §4.2.1: the HMAC-SHA1 key is 160 bits.
            let mut a = [0u8; 20];
            derive(master.key(), master.salt(), auth, &mut a)?;
            let k = UnboundCipherKey::new(&AES_128, &key).map_err(|_| SrtpError::KeyLength)?;
            Cipher::Cm {
                key: EncryptingKey::ctr(k).map_err(|_| SrtpError::Cipher)?,
                auth: hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &a),
            }
        };
        Ok(SessionKeys { cipher, salt })
    }
}

/// AES-CM IV for SRTP (RFC 3711 §4.1.1): (k_s · 2^16) XOR (SSRC · 2^64) XOR (i · 2^16).
pub(crate) fn cm_iv(salt: &[u8; 14], ssrc: u32, index: u64) -> [u8; 16] {
    let mut iv = [0u8; 16];
    iv[..14].copy_from_slice(salt);
    xor(&mut iv[4..8], &ssrc.to_be_bytes());
    xor(&mut iv[8..14], &index.to_be_bytes()[2..]);
    iv
}

/// AES-CM IV for SRTCP: the same with the 31-bit SRTCP index (RFC 3711 §4.1.1, §3.4).
fn cm_rtcp_iv(salt: &[u8; 14], ssrc: u32, index: u32) -> [u8; 16] {
    let mut iv = [0u8; 16];
    iv[..14].copy_from_slice(salt);
    xor(&mut iv[4..8], &ssrc.to_be_bytes());
    xor(&mut iv[10..14], &index.to_be_bytes());
    iv
}

/// GCM IV for SRTP (RFC 7714 §8.1): (0x0000 || SSRC || ROC || SEQ) XOR salt.
fn gcm_rtp_iv(salt: &[u8; 14], ssrc: u32, index: u64) -> [u8; 12] {
    let mut iv = [0u8; 12];
    iv[2..6].copy_from_slice(&ssrc.to_be_bytes());
    iv[6..12].copy_from_slice(&index.to_be_bytes()[2..]);
    xor(&mut iv, &salt[..12]);
    iv
}

/// GCM IV for SRTCP (RFC 7714 §9.1): (0x0000 || SSRC || 0x0000 || 0 || index) XOR salt.
fn gcm_rtcp_iv(salt: &[u8; 14], ssrc: u32, index: u32) -> [u8; 12] {
    let mut iv = [0u8; 12];
    iv[2..6].copy_from_slice(&ssrc.to_be_bytes());
    iv[8..12].copy_from_slice(&index.to_be_bytes());
    xor(&mut iv, &salt[..12]);
    iv
}

/// GCM AAD for encrypted SRTCP (RFC 7714 §9.3): the first 8 octets, then E || index.
fn gcm_rtcp_aad(first8: &[u8], word: [u8; 4]) -> [u8; 12] {
    let mut aad = [0u8; 12];
    aad[..8].copy_from_slice(first8);
    aad[8..].copy_from_slice(&word);
    aad
}

pub(crate) fn ctr(key: &EncryptingKey, data: &mut [u8], iv: [u8; 16]) -> Result<(), SrtpError> {
    key.less_safe_encrypt(data, EncryptionContext::Iv128(FixedLength::from(iv)))
        .map(|_| ())
        .map_err(|_| SrtpError::Cipher)
}

fn hmac_sha1(key: &hmac::Key, data: &[u8], trailer: &[u8]) -> hmac::Tag {
    let mut ctx = hmac::Context::with_key(key);
    ctx.update(data);
    ctx.update(trailer);
    ctx.sign()
}

/// Constant-time comparison of two tags.
fn equal(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn xor(dst: &mut [u8], src: &[u8]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d ^= s;
    }
}
