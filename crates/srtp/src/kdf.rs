//! The SRTP key derivation (RFC 3711 §4.3) with AES-CM as PRF and key derivation rate 0.

use aws_lc_rs::cipher::{EncryptingKey, EncryptionContext, UnboundCipherKey, AES_128};
use aws_lc_rs::iv::FixedLength;

use crate::error::SrtpError;

/// Key derivation labels (RFC 3711 §4.3.1, §4.3.2).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Label {
    RtpEncryption = 0,
    RtpAuthentication = 1,
    RtpSalt = 2,
    RtcpEncryption = 3,
    RtcpAuthentication = 4,
    RtcpSalt = 5,
}

/// Fills `out` with the PRF output for `label`. With kdr = 0, r = 0 and
/// x = (label || 0^48) XOR master_salt; the keystream starts at IV = x · 2^16. A 96-bit GCM
/// master salt is used as its leading 96 bits, the rest zero (RFC 7714 §11).
pub(crate) fn derive(
    master_key: &[u8],
    master_salt: &[u8],
    label: Label,
    out: &mut [u8],
) -> Result<(), SrtpError> {
    let mut iv = [0u8; 16];
    iv[..master_salt.len()].copy_from_slice(master_salt);
    // key_id = label || r is 56 bits, aligned to the salt's low end: the label lands on octet 7.
    iv[7] ^= label as u8;
    let key = UnboundCipherKey::new(&AES_128, master_key).map_err(|_| SrtpError::KeyLength)?;
    let key = EncryptingKey::ctr(key).map_err(|_| SrtpError::Cipher)?;
    out.fill(0);
    key.less_safe_encrypt(out, EncryptionContext::Iv128(FixedLength::from(iv)))
        .map_err(|_| SrtpError::Cipher)?;
    Ok(())
}
