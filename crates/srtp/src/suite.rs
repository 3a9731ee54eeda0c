//! The crypto suites homeline speaks and their master keys.

use std::fmt;

use crate::error::SrtpError;

/// Room a caller leaves after a packet for [`crate::Context::protect_rtp`] and
/// [`crate::Context::protect_rtcp`]: the largest tag (16, GCM) plus the SRTCP index word.
pub const MAX_TRAILER: usize = 16 + 4;

/// An SRTP crypto suite as named in SDES (RFC 4568 §6.2, RFC 7714 §14.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Suite {
    /// AES-128 counter mode, HMAC-SHA1 with an 80-bit tag.
    AesCm128HmacSha1_80,
    /// The same with a 32-bit SRTP tag (SRTCP keeps 80 bits, RFC 4568 §6.2.2).
    AesCm128HmacSha1_32,
    /// AES-128-GCM, 128-bit tag, 96-bit salt (RFC 7714).
    AeadAes128Gcm,
}

impl Suite {
    /// Every suite, in homeline's order of preference when it offers.
    pub const ALL: [Suite; 3] = [
        Suite::AesCm128HmacSha1_80,
        Suite::AeadAes128Gcm,
        Suite::AesCm128HmacSha1_32,
    ];

    /// The SDES name.
    pub fn name(self) -> &'static str {
        match self {
            Suite::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            Suite::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
            Suite::AeadAes128Gcm => "AEAD_AES_128_GCM",
        }
    }

    /// The suite an SDES name stands for, `None` for any other (case-sensitive, RFC 4568
    /// §9.2 registers the names as written).
    pub fn from_name(name: &str) -> Option<Suite> {
        Suite::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Octets of master key.
    pub fn key_len(self) -> usize {
        16
    }

    /// Octets of master salt: 112 bits for AES-CM, 96 for GCM (RFC 7714 §11).
    pub fn salt_len(self) -> usize {
        match self {
            Suite::AeadAes128Gcm => 12,
            _ => 14,
        }
    }

    /// Octets of SRTP authentication tag.
    pub fn srtp_tag_len(self) -> usize {
        match self {
            Suite::AesCm128HmacSha1_80 => 10,
            Suite::AesCm128HmacSha1_32 => 4,
            Suite::AeadAes128Gcm => 16,
        }
    }

    /// Octets of SRTCP authentication tag (80 bits for both AES-CM suites).
    pub fn srtcp_tag_len(self) -> usize {
        match self {
            Suite::AeadAes128Gcm => 16,
            _ => 10,
        }
    }

    pub(crate) fn is_aead(self) -> bool {
        self == Suite::AeadAes128Gcm
    }
}

impl fmt::Display for Suite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A master key and salt for one suite (the SDES `inline:` value decoded). Its `Debug` output
/// names the suite only.
#[derive(Clone, PartialEq, Eq)]
pub struct MasterKey {
    suite: Suite,
    /// Key then salt, `suite.key_len() + suite.salt_len()` octets used.
    material: [u8; 30],
}

impl MasterKey {
    /// A master key from `key || salt` as carried in SDES; the length must be the suite's.
    pub fn new(suite: Suite, key_and_salt: &[u8]) -> Result<MasterKey, SrtpError> {
        if key_and_salt.len() != suite.key_len() + suite.salt_len() {
            return Err(SrtpError::KeyLength);
        }
        let mut material = [0u8; 30];
        material[..key_and_salt.len()].copy_from_slice(key_and_salt);
        Ok(MasterKey { suite, material })
    }

    /// The suite.
    pub fn suite(&self) -> Suite {
        self.suite
    }

    /// `key || salt`, for the SDES `inline:` parameter.
    pub fn key_and_salt(&self) -> &[u8] {
        &self.material[..self.suite.key_len() + self.suite.salt_len()]
    }

    pub(crate) fn key(&self) -> &[u8] {
        &self.material[..self.suite.key_len()]
    }

    pub(crate) fn salt(&self) -> &[u8] {
        let k = self.suite.key_len();
        &self.material[k..k + self.suite.salt_len()]
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MasterKey")
            .field("suite", &self.suite)
            .finish_non_exhaustive()
    }
}
