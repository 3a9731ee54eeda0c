//! `a=crypto:<tag> <crypto-suite> <key-params> [<session-params>]` (RFC 4568 §9.1, SDES-SRTP).
//!
//! Homeline terminates SRTP per leg: a device's `a=crypto` is read into a key for the relay
//! ([`Crypto::master_key`]) and never passed on; homeline writes its own ([`crypto_value`]).
//! Key material must never reach a log: [`CryptoRefusal`] names what was refused, not the key.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use relay::{MasterKey, SrtpSuite};

/// A borrowed `a=crypto` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Crypto<'a> {
    /// The tag that the answer echoes for the chosen line.
    pub tag: u32,
    /// The suite, e.g. `AES_CM_128_HMAC_SHA1_80`.
    pub suite: &'a str,
    /// The key parameters, e.g. `inline:<base64 key||salt>|2^20|1:4`.
    pub key_params: &'a str,
    /// Session parameters (`KDR=`, `UNENCRYPTED_SRTP`, ...), as written.
    pub session_params: Option<&'a str>,
}

impl<'a> Crypto<'a> {
    /// Parses an `a=crypto` value; `None` when malformed.
    pub(crate) fn parse(value: &'a str) -> Option<Crypto<'a>> {
        let mut fields = value.splitn(4, ' ');
        Some(Crypto {
            tag: fields.next()?.parse().ok()?,
            suite: fields.next().filter(|s| !s.is_empty())?,
            key_params: fields.next().filter(|s| !s.is_empty())?,
            session_params: fields.next(),
        })
    }
}

/// Why an `a=crypto` line cannot be used; the text goes into a Warning header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoRefusal {
    /// A suite homeline does not implement.
    #[error("crypto suite {0} is not supported")]
    Suite(String),
    /// Several keys (RFC 4568 §9.2 allows a list): homeline takes exactly one.
    #[error("more than one key in a=crypto is not supported")]
    SeveralKeys,
    /// Not an `inline:` key.
    #[error("only inline: keys are supported")]
    NotInline,
    /// The key is not base64, or of the wrong length for the suite.
    #[error("the inline key is malformed")]
    BadKey,
    /// A key lifetime below 2^31 packets: the key would need replacing mid-call.
    #[error("key lifetimes below 2^31 are not supported")]
    Lifetime,
    /// A master key identifier (RFC 3711 §3.1).
    #[error("MKI is not supported")]
    Mki,
    /// A session parameter (RFC 4568 §6.3: KDR, UNENCRYPTED_SRTP, ...).
    #[error("crypto session parameter {0} is not supported")]
    SessionParameter(String),
}

impl Crypto<'_> {
    /// The master key of this line, or why homeline cannot use it.
    pub fn master_key(&self) -> Result<MasterKey, CryptoRefusal> {
        let suite = SrtpSuite::from_name(self.suite)
            .ok_or_else(|| CryptoRefusal::Suite(self.suite.into()))?;
        if let Some(p) = self
            .session_params
            .and_then(|p| p.split_whitespace().next())
        {
            let name = p.split('=').next().unwrap_or(p);
            return Err(CryptoRefusal::SessionParameter(
                name.chars().take(32).collect(),
            ));
        }
        if self.key_params.contains(';') {
            return Err(CryptoRefusal::SeveralKeys);
        }
        let inline = self
            .key_params
            .strip_prefix("inline:")
            .ok_or(CryptoRefusal::NotInline)?;
        let mut fields = inline.split('|');
        let key = fields.next().unwrap_or_default();
        for f in fields {
            if f.contains(':') {
                return Err(CryptoRefusal::Mki);
            }
            if lifetime(f).is_none_or(|l| l < 1 << 31) {
                return Err(CryptoRefusal::Lifetime);
            }
        }
        let bytes = STANDARD.decode(key).map_err(|_| CryptoRefusal::BadKey)?;
        MasterKey::new(suite, &bytes).map_err(|_| CryptoRefusal::BadKey)
    }
}

/// A key lifetime, `2^n` or decimal (RFC 4568 §6.1); `None` when malformed.
fn lifetime(field: &str) -> Option<u64> {
    match field.strip_prefix("2^") {
        Some(exp) => exp.parse::<u32>().ok().and_then(|e| 1u64.checked_shl(e)),
        None => field.parse().ok(),
    }
}

/// The `a=crypto` value homeline writes: `<tag> <suite> inline:<base64 key||salt>`.
pub fn crypto_value(tag: u32, key: &MasterKey) -> String {
    format!(
        "{tag} {} inline:{}",
        key.suite().name(),
        STANDARD.encode(key.key_and_salt())
    )
}

/// The first line of `lines` homeline supports (RFC 4568 §7.1.1: the answerer picks one it
/// supports, the offerer's order being its preference), with its tag; else the reason the
/// last one was refused (`None` when there were no lines).
pub fn choose_crypto<'a>(
    lines: impl IntoIterator<Item = Crypto<'a>>,
) -> Result<(u32, MasterKey), Option<CryptoRefusal>> {
    let mut why = None;
    for c in lines {
        match c.master_key() {
            Ok(k) => return Ok((c.tag, k)),
            Err(e) => why = Some(e),
        }
    }
    Err(why)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4568_9_1_crypto_fields() {
        let c = Crypto::parse(
            "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:32",
        )
        .unwrap();
        assert_eq!(c.tag, 1);
        assert_eq!(c.suite, "AES_CM_128_HMAC_SHA1_80");
        assert!(c.key_params.starts_with("inline:PS1u"));
        assert_eq!(c.session_params, None);
        let s =
            Crypto::parse("2 AES_CM_128_HMAC_SHA1_32 inline:abc KDR=23 UNENCRYPTED_SRTP").unwrap();
        assert_eq!(s.session_params, Some("KDR=23 UNENCRYPTED_SRTP"));
        assert_eq!(Crypto::parse("x AES inline:a"), None);
    }

    const KEY: &str = "PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR";

    #[test]
    fn rfc4568_6_1_inline_key_lifetime_and_mki() {
        let c = |v: &str| Crypto::parse(v).unwrap().master_key();
        let k = c(&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}")).unwrap();
        assert_eq!(k.suite(), SrtpSuite::AesCm128HmacSha1_80);
        assert_eq!(
            crypto_value(1, &k),
            format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}")
        );
        assert!(c(&format!("1 AES_CM_128_HMAC_SHA1_32 inline:{KEY}|2^31")).is_ok());
        assert_eq!(
            c(&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}|2^20")),
            Err(CryptoRefusal::Lifetime)
        );
        assert_eq!(
            c(&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}|2^20|1:32")),
            Err(CryptoRefusal::Lifetime)
        );
        assert_eq!(
            c(&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}|1:4")),
            Err(CryptoRefusal::Mki)
        );
        assert_eq!(
            c(&format!("1 F8_128_HMAC_SHA1_80 inline:{KEY}")),
            Err(CryptoRefusal::Suite("F8_128_HMAC_SHA1_80".into()))
        );
        assert_eq!(
            c(&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY} KDR=1")),
            Err(CryptoRefusal::SessionParameter("KDR".into()))
        );
        assert_eq!(
            c(&format!(
                "1 AES_CM_128_HMAC_SHA1_80 inline:{KEY};inline:{KEY}"
            )),
            Err(CryptoRefusal::SeveralKeys)
        );
        // 30 octets is an AES-CM key; GCM takes 28.
        assert_eq!(
            c(&format!("1 AEAD_AES_128_GCM inline:{KEY}")),
            Err(CryptoRefusal::BadKey)
        );
        assert_eq!(
            c("1 AES_CM_128_HMAC_SHA1_80 inline:!!!"),
            Err(CryptoRefusal::BadKey)
        );
        // Refusals never carry the key.
        let e = c(&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}|1:4")).unwrap_err();
        assert!(!e.to_string().contains(KEY));
    }

    #[test]
    fn rfc4568_7_1_1_first_supported_line_is_chosen() {
        let lines = [
            format!("1 AES_256_CM_HMAC_SHA1_80 inline:{KEY}{KEY}"),
            format!("2 AES_CM_128_HMAC_SHA1_32 inline:{KEY}"),
            format!("3 AES_CM_128_HMAC_SHA1_80 inline:{KEY}"),
        ];
        let (tag, k) = choose_crypto(lines.iter().filter_map(|l| Crypto::parse(l))).unwrap();
        assert_eq!((tag, k.suite()), (2, SrtpSuite::AesCm128HmacSha1_32));
        let only = [format!("1 AES_256_CM_HMAC_SHA1_80 inline:{KEY}")];
        assert_eq!(
            choose_crypto(only.iter().filter_map(|l| Crypto::parse(l))).unwrap_err(),
            Some(CryptoRefusal::Suite("AES_256_CM_HMAC_SHA1_80".into()))
        );
        assert_eq!(choose_crypto(std::iter::empty()).unwrap_err(), None);
    }
}
