//! `a=crypto:<tag> <crypto-suite> <key-params> [<session-params>]` (RFC 4568 §9.1, SDES-SRTP).
//!
//! Read-only for now: the relay forwards SRTP unchanged, so crypto lines pass through verbatim.

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
}
