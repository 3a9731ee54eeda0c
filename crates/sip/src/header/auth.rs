//! Authorization / WWW-Authenticate and their Proxy- forms (RFC 3261 §20.7, RFC 7616, RFC 8760).

use std::fmt;

use crate::text::{split_top_level, unquote};

/// A scheme and its comma-separated `name=value` parameters, values unquoted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthParams {
    /// Scheme token (`Digest`, or an unknown one, RFC 4475 §3.3.7).
    pub scheme: String,
    /// Parameters in order; quoted values unquoted.
    pub params: Vec<(String, String)>,
}

impl AuthParams {
    /// Parses `Scheme a=b, c="d"`. Returns `None` without a scheme.
    pub fn parse(s: &str) -> Option<AuthParams> {
        let s = s.trim();
        let (scheme, rest) = match s.find(|c: char| c.is_ascii_whitespace()) {
            Some(i) => (&s[..i], s[i..].trim()),
            None => (s, ""),
        };
        if scheme.is_empty() {
            return None;
        }
        let mut params = Vec::new();
        for p in split_top_level(rest, b',') {
            if p.is_empty() {
                continue;
            }
            let (n, v) = p.split_once('=')?;
            let v = v.trim();
            let v = unquote(v).unwrap_or_else(|| v.to_string());
            params.push((n.trim().to_ascii_lowercase(), v));
        }
        Some(AuthParams {
            scheme: scheme.to_string(),
            params,
        })
    }

    /// The value of parameter `name` (lower-case).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// True for the Digest scheme.
    pub fn is_digest(&self) -> bool {
        self.scheme.eq_ignore_ascii_case("Digest")
    }
}

/// Digest credentials from an Authorization header (RFC 7616 §3.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// `username`.
    pub username: String,
    /// `realm`.
    pub realm: String,
    /// `nonce`.
    pub nonce: String,
    /// `uri` (digest-uri).
    pub uri: String,
    /// `response`, hex.
    pub response: String,
    /// `algorithm`, default MD5.
    pub algorithm: Option<String>,
    /// `cnonce`.
    pub cnonce: Option<String>,
    /// `qop`.
    pub qop: Option<String>,
    /// `nc`.
    pub nc: Option<String>,
    /// `opaque`.
    pub opaque: Option<String>,
}

impl Credentials {
    /// Extracts Digest credentials; `None` for another scheme or a missing mandatory field.
    pub fn from_params(p: &AuthParams) -> Option<Credentials> {
        if !p.is_digest() {
            return None;
        }
        let s = |n: &str| p.get(n).map(str::to_string);
        Some(Credentials {
            username: s("username")?,
            realm: s("realm")?,
            nonce: s("nonce")?,
            uri: s("uri")?,
            response: s("response")?,
            algorithm: s("algorithm"),
            cnonce: s("cnonce"),
            qop: s("qop"),
            nc: s("nc"),
            opaque: s("opaque"),
        })
    }
}

/// A Digest challenge to put in WWW-Authenticate / Proxy-Authenticate (RFC 7616 §3.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// `realm`.
    pub realm: String,
    /// `nonce`.
    pub nonce: String,
    /// `opaque`, if used.
    pub opaque: Option<String>,
    /// `algorithm` token (`MD5`, `SHA-256`).
    pub algorithm: &'static str,
    /// `stale=true` when the nonce expired but the credentials were right.
    pub stale: bool,
}

impl fmt::Display for Challenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Digest realm=\"{}\", nonce=\"{}\", qop=\"auth\", algorithm={}",
            self.realm, self.nonce, self.algorithm
        )?;
        if let Some(o) = &self.opaque {
            write!(f, ", opaque=\"{o}\"")?;
        }
        if self.stale {
            f.write_str(", stale=true")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_credentials() {
        let p = AuthParams::parse(
            r#"Digest username="bob", realm="biloxi.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="sip:biloxi.com", qop=auth, nc=00000001, cnonce="0a4f113b", response="6629fae49393a05397450978507c4ef1", opaque="5ccc069c403ebaf9f0171e9517f40e41""#,
        )
        .unwrap();
        let c = Credentials::from_params(&p).unwrap();
        assert_eq!(c.username, "bob");
        assert_eq!(c.qop.as_deref(), Some("auth"));
        assert_eq!(c.nc.as_deref(), Some("00000001"));
    }

    #[test]
    fn rfc4475_3_3_7_unknown_scheme() {
        let p = AuthParams::parse("NoOneKnowsThisScheme opaque-data=here").unwrap();
        assert!(!p.is_digest());
        assert!(Credentials::from_params(&p).is_none());
    }
}
