//! Sans-IO SRTP and SRTCP for homeline's media relay: a relayed leg whose device speaks SRTP
//! (SDES keys, RFC 4568) is decrypted on the way in and encrypted with homeline's own key on
//! the way out, so either side of a call can be SRTP or plain RTP with its own keys.
//!
//! A [`Context`] is one direction of one leg: an inbound context checks and decrypts what a
//! device sends with the device's key; an outbound context encrypts what goes to the device
//! with the key homeline gave it. Everything works in place in the caller's packet buffer,
//! which has room for the trailer ([`MAX_TRAILER`]); nothing is allocated per packet. The
//! context keeps per-SSRC state (rollover counter, highest index, replay window) in a
//! fixed table, so it survives a re-INVITE that keeps the key.
//!
//! ```text
//! let mut inbound = Context::new(&device_key);     // a=crypto the device sent
//! let mut outbound = Context::new(&homeline_key);  // a=crypto homeline sent
//! let n = inbound.unprotect_rtp(&mut buf[..len])?; // authenticated, replay-checked, plain
//! let m = outbound.protect_rtp(&mut buf, n)?;      // encrypted, tag appended
//! ```
//!
//! # RFCs
//!
//! - RFC 3711: SRTP/SRTCP, AES-CM (§4.1.1), HMAC-SHA1 (§4.2.1), the key derivation with
//!   AES-CM as PRF and key derivation rate 0 (§4.3), index estimation (§3.3.1, appendix A),
//!   replay protection (§3.3.2). SRTCP always carries an 80-bit tag (RFC 4568 §6.2).
//! - RFC 4568 §6.2: the suites `AES_CM_128_HMAC_SHA1_80` and `AES_CM_128_HMAC_SHA1_32`.
//! - RFC 7714: `AEAD_AES_128_GCM` for SRTP (§8) and SRTCP (§9), 96-bit master salt (§11).
//!
//! Key material never appears in `Debug` output.

mod context;
mod error;
mod kdf;
mod replay;
mod rtp;
mod suite;
#[cfg(test)]
mod tests;

pub use context::Context;
pub use error::SrtpError;
pub use suite::{MasterKey, Suite, MAX_TRAILER};
