//! Digest authentication computation: RFC 7616 (HTTP Digest), RFC 8760 (SIP Digest with
//! SHA-256) and RFC 2617 §3.2.2.1 (the qop-less MD5 form still sent by old phones).
//!
//! Only the arithmetic lives here: `HA1 = H(username ":" realm ":" password)`,
//! `HA2 = H(method ":" digest-uri)` (qop=auth or no qop; auth-int is not offered), and
//! `response = H(HA1 ":" nonce ":" nc ":" cnonce ":" qop ":" HA2)`, or
//! `H(HA1 ":" nonce ":" HA2)` without qop. Parsing of the `Authorization` header, nonce
//! management and replay protection belong to the registrar.
//!
//! Stored credentials are HA1 values (one per realm and algorithm), never passwords, so
//! [`response`] takes the HA1 in hex.

use std::fmt;
use std::str::FromStr;

use md5::Md5;
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Hash algorithm of a digest challenge (RFC 7616 §3.3 `algorithm` parameter).
///
/// The `-sess` variants and SHA-512-256 are not offered by homeline; they parse to
/// [`AlgorithmError::Unsupported`] so a client offering them can be answered precisely.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    /// MD5 (RFC 2617, RFC 7616 §3.9.1 second example); the default when `algorithm` is absent.
    Md5,
    /// SHA-256 (RFC 7616, RFC 8760 §2.1).
    Sha256,
}

/// An `algorithm` token that homeline does not support.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AlgorithmError {
    /// A token registered for digest (a `-sess` variant or SHA-512-256) that homeline does not offer.
    #[error("digest algorithm {0:?} is not supported")]
    Unsupported(String),
    /// A token that is not a digest algorithm at all.
    #[error("unknown digest algorithm {0:?}")]
    Unknown(String),
}

impl Algorithm {
    /// Every supported algorithm, most preferred first (RFC 8760 §2.4: offer SHA-256 before MD5).
    pub const ALL: [Algorithm; 2] = [Algorithm::Sha256, Algorithm::Md5];

    /// The wire token: `"MD5"` or `"SHA-256"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Md5 => "MD5",
            Self::Sha256 => "SHA-256",
        }
    }

    /// Length of a hex digest of this algorithm, in characters.
    pub fn hex_len(self) -> usize {
        match self {
            Self::Md5 => 32,
            Self::Sha256 => 64,
        }
    }

    /// Lowercase hex of the hash of `parts` joined by `:`.
    fn hash_hex(self, parts: &[&[u8]]) -> String {
        match self {
            Self::Md5 => hash_joined::<Md5>(parts),
            Self::Sha256 => hash_joined::<Sha256>(parts),
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Algorithm {
    type Err = AlgorithmError;

    /// Parses the wire token case-insensitively (RFC 7616 §3.3 tokens are case-insensitive).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        const KNOWN_UNSUPPORTED: [&str; 4] = [
            "MD5-sess",
            "SHA-256-sess",
            "SHA-512-256",
            "SHA-512-256-sess",
        ];
        if s.eq_ignore_ascii_case("MD5") {
            Ok(Self::Md5)
        } else if s.eq_ignore_ascii_case("SHA-256") {
            Ok(Self::Sha256)
        } else if KNOWN_UNSUPPORTED.iter().any(|k| s.eq_ignore_ascii_case(k)) {
            Err(AlgorithmError::Unsupported(s.to_owned()))
        } else {
            Err(AlgorithmError::Unknown(s.to_owned()))
        }
    }
}

/// `HA1 = H(username ":" realm ":" password)` in lowercase hex (RFC 7616 §3.4.2).
pub fn ha1(alg: Algorithm, username: &str, realm: &str, password: &str) -> String {
    alg.hash_hex(&[username.as_bytes(), realm.as_bytes(), password.as_bytes()])
}

/// The expected `response` value in lowercase hex (RFC 7616 §3.4.1, RFC 2617 §3.2.2.1).
///
/// `ha1_hex` is the stored HA1 (see [`ha1`]). With `qop` = `Some("auth")`, `nc` and `cnonce`
/// take part; with `qop` = `None` the RFC 2069-compatible form `H(HA1:nonce:HA2)` is used and
/// `nc`/`cnonce` are ignored. `HA2 = H(method ":" digest_uri)`; `auth-int` is not offered by
/// homeline, so its entity-body hash is not computed here.
#[allow(clippy::too_many_arguments)] // mirrors the RFC's parameter list one to one
pub fn response(
    alg: Algorithm,
    ha1_hex: &str,
    nonce: &str,
    nc: Option<&str>,
    cnonce: Option<&str>,
    qop: Option<&str>,
    method: &str,
    digest_uri: &str,
) -> String {
    let ha2 = alg.hash_hex(&[method.as_bytes(), digest_uri.as_bytes()]);
    match qop {
        Some(qop) => alg.hash_hex(&[
            ha1_hex.as_bytes(),
            nonce.as_bytes(),
            nc.unwrap_or_default().as_bytes(),
            cnonce.unwrap_or_default().as_bytes(),
            qop.as_bytes(),
            ha2.as_bytes(),
        ]),
        None => alg.hash_hex(&[ha1_hex.as_bytes(), nonce.as_bytes(), ha2.as_bytes()]),
    }
}

/// Compares an expected and a received hex digest in constant time, ignoring hex case.
///
/// The time taken depends only on the lengths, never on where the values differ. Values of
/// different length are unequal.
pub fn verify(expected_hex: &str, given_hex: &str) -> bool {
    let (a, b) = (expected_hex.as_bytes(), given_hex.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    // Fold ASCII upper case to lower without branching on the data: only 'A'..='F' matter for
    // valid hex, and folding every letter keeps mismatches in non-hex input mismatches.
    let fold = |c: u8| c | (((c.wrapping_sub(b'A') < 26) as u8) << 5);
    let mut acc = subtle::Choice::from(1u8);
    for (&x, &y) in a.iter().zip(b) {
        acc &= fold(x).ct_eq(&fold(y));
    }
    acc.into()
}

/// Lowercase hex of `H(parts[0] ":" parts[1] ":" ...)`.
fn hash_joined<D: sha2::Digest>(parts: &[&[u8]]) -> String {
    let mut h = D::new();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            h.update(b":");
        }
        h.update(part);
    }
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Vector {
        id: String,
        algorithm: String,
        username: String,
        realm: String,
        password: String,
        method: String,
        uri: String,
        nonce: String,
        nc: String,
        cnonce: String,
        qop: String,
        response_printed_in_rfc: String,
        ha1: String,
        ha2: String,
        verifies: bool,
    }

    const VECTORS: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/conformance/digest/digest-vectors.json"
    );

    /// Loads the shared vector file; a missing or malformed file fails the test (never skips).
    fn vectors() -> Vec<Vector> {
        let text = std::fs::read_to_string(VECTORS)
            .unwrap_or_else(|e| panic!("digest vectors missing at {VECTORS}: {e}"));
        let json: serde_json::Value = serde_json::from_str(&text).expect("vector file is JSON");
        let s = |v: &serde_json::Value, k: &str| -> String {
            v[k].as_str()
                .unwrap_or_else(|| panic!("field {k} missing in {}", v["id"]))
                .to_owned()
        };
        json.as_array()
            .expect("vector file is an array")
            .iter()
            .map(|v| Vector {
                id: s(v, "id"),
                algorithm: s(v, "algorithm"),
                username: s(v, "username"),
                realm: s(v, "realm"),
                password: s(v, "password"),
                method: s(v, "method"),
                uri: s(v, "uri"),
                nonce: s(v, "nonce"),
                nc: s(v, "nc"),
                cnonce: s(v, "cnonce"),
                qop: s(v, "qop"),
                response_printed_in_rfc: s(v, "response_printed_in_rfc"),
                ha1: s(&v["computed_here"], "HA1"),
                ha2: s(&v["computed_here"], "HA2"),
                verifies: v["verifies"].as_bool().expect("verifies is a bool"),
            })
            .collect()
    }

    fn vector(id: &str) -> Vector {
        vectors()
            .into_iter()
            .find(|v| v.id == id)
            .unwrap_or_else(|| panic!("vector {id} not in {VECTORS}"))
    }

    /// Checks HA1, HA2 and the response printed in the RFC for one vector.
    fn check(id: &str) {
        let v = vector(id);
        assert!(v.verifies, "{id}: vector is marked as not verifying");
        let alg: Algorithm = v.algorithm.parse().expect("supported algorithm");
        let h1 = ha1(alg, &v.username, &v.realm, &v.password);
        assert_eq!(h1, v.ha1, "{id}: HA1");
        assert_eq!(
            alg.hash_hex(&[v.method.as_bytes(), v.uri.as_bytes()]),
            v.ha2,
            "{id}: HA2"
        );
        let got = response(
            alg,
            &h1,
            &v.nonce,
            Some(&v.nc),
            Some(&v.cnonce),
            Some(&v.qop),
            &v.method,
            &v.uri,
        );
        assert_eq!(got, v.response_printed_in_rfc, "{id}: response");
        assert_eq!(got.len(), alg.hex_len(), "{id}: length");
        assert!(verify(&v.response_printed_in_rfc, &got), "{id}: verify");
    }

    #[test]
    fn rfc7616_3_9_1_md5() {
        check("rfc7616-3.9.1-MD5");
    }

    #[test]
    fn rfc7616_3_9_1_sha256() {
        check("rfc7616-3.9.1-SHA-256");
    }

    #[test]
    fn rfc2617_3_5_md5() {
        check("rfc2617-3.5-MD5");
    }

    #[test]
    fn rfc7616_3_9_2_sha512_256_is_refused_not_computed() {
        // Errata 4897: the printed values do not verify, and homeline does not offer this
        // algorithm; parsing must say so with a typed error.
        let v = vector("rfc7616-3.9.2-SHA-512-256-userhash");
        assert!(!v.verifies);
        assert_eq!(
            v.algorithm.parse::<Algorithm>(),
            Err(AlgorithmError::Unsupported("SHA-512-256".into()))
        );
    }

    #[test]
    fn every_verifying_vector_passes() {
        let all = vectors();
        assert!(
            all.len() >= 3,
            "expected the shared vectors, got {}",
            all.len()
        );
        for v in all.iter().filter(|v| v.verifies) {
            check(&v.id);
        }
    }

    #[test]
    fn rfc2617_3_2_2_1_no_qop() {
        // RFC 2069 form: response = MD5(HA1:nonce:HA2). Expected value computed independently
        // (Python hashlib) from the RFC 2617 §3.5 inputs without qop.
        let h1 = ha1(
            Algorithm::Md5,
            "Mufasa",
            "testrealm@host.com",
            "Circle Of Life",
        );
        assert_eq!(h1, "939e7578ed9e3c518a452acee763bce9");
        let r = response(
            Algorithm::Md5,
            &h1,
            "dcd98b7102dd2f0e8b11d0f600bfb0c093",
            Some("ignored"),
            Some("ignored"),
            None,
            "GET",
            "/dir/index.html",
        );
        assert_eq!(r, "670fd8c2df070c60b045671b8b24ff02");
    }

    #[test]
    fn rfc8760_2_1_sip_register_sha256() {
        // RFC 8760 has no worked example; A2 = Method ":" digest-uri as in RFC 3261 §22.4.
        // Expected values computed independently (Python hashlib).
        let h1 = ha1(Algorithm::Sha256, "2001", "homeline", "s3cret-Pass!");
        assert_eq!(
            h1,
            "2e5a4dad43362b85ce98155b4f5e0ab940f22d9d519c93b8de934ae3aa4849bc"
        );
        let r = response(
            Algorithm::Sha256,
            &h1,
            "abc",
            Some("00000001"),
            Some("xyz"),
            Some("auth"),
            "REGISTER",
            "sip:homeline",
        );
        assert_eq!(
            r,
            "0d799243f01a2544c274e2d3dba579bd88cf14b19e6ec045225b7346b0eb1d01"
        );
    }

    #[test]
    fn algorithm_tokens_parse_case_insensitively() {
        assert_eq!("md5".parse::<Algorithm>(), Ok(Algorithm::Md5));
        assert_eq!("MD5".parse::<Algorithm>(), Ok(Algorithm::Md5));
        assert_eq!("sha-256".parse::<Algorithm>(), Ok(Algorithm::Sha256));
        assert_eq!("SHA-256".parse::<Algorithm>(), Ok(Algorithm::Sha256));
        assert_eq!(
            "MD5-sess".parse::<Algorithm>(),
            Err(AlgorithmError::Unsupported("MD5-sess".into()))
        );
        assert_eq!(
            "sha-256-SESS".parse::<Algorithm>(),
            Err(AlgorithmError::Unsupported("sha-256-SESS".into()))
        );
        assert_eq!(
            "SHA1".parse::<Algorithm>(),
            Err(AlgorithmError::Unknown("SHA1".into()))
        );
        for alg in Algorithm::ALL {
            assert_eq!(alg.as_str().parse::<Algorithm>(), Ok(alg));
            assert_eq!(alg.to_string(), alg.as_str());
        }
    }

    #[test]
    fn verify_ignores_hex_case_and_rejects_differences() {
        let x = "8ca523f5e9506fed4657c9700eebdbec";
        assert!(verify(x, x));
        assert!(verify(x, &x.to_ascii_uppercase()));
        assert!(verify(&x.to_ascii_uppercase(), x));
        assert!(!verify(x, "8ca523f5e9506fed4657c9700eebdbed"));
        assert!(!verify(x, &x[..31]));
        assert!(!verify(x, ""));
        assert!(verify("", ""));
        // Folding must not make distinct non-hex bytes equal.
        assert!(!verify("@", "`"));
        assert!(!verify("[", "{"));
    }
}
