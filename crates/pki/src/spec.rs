//! What a certificate request says, checked field by field before any key is made.
//!
//! Every check names the field (as the command line does) so a refusal says what to fix.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use time::format_description::well_known::Rfc3339;
use time::{Date, Month, OffsetDateTime, UtcOffset};

use crate::error::PkiError;

/// Longest certificate name in the store, characters.
pub const MAX_NAME: usize = 64;
/// Longest subject attribute (RFC 5280 Appendix A: ub-common-name and ub-organization-name).
pub const MAX_SUBJECT_ATTRIBUTE: usize = 64;
/// Longest serial number, octets (RFC 5280 §4.1.2.2).
pub const MAX_SERIAL_OCTETS: usize = 20;
/// Length of a serial chosen at random, octets (RFC 5280 §4.1.2.2 allows up to 20; 16 gives
/// 127 random bits with the sign bit cleared).
pub const RANDOM_SERIAL_OCTETS: usize = 16;
/// The default and the floor of `[tls] min_rsa_bits`.
pub const DEFAULT_MIN_RSA_BITS: u32 = 2048;

/// A certificate's name in homeline's store: 1 to [`MAX_NAME`] printable characters, no blanks.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CertName(String);

impl CertName {
    /// Checks a name given on the command line.
    pub fn parse(s: &str) -> Result<Self, PkiError> {
        if s.is_empty() {
            return Err(PkiError::invalid("name", "must not be empty"));
        }
        if s.chars().count() > MAX_NAME {
            return Err(PkiError::invalid(
                "name",
                format!("must be at most {MAX_NAME} characters"),
            ));
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(PkiError::invalid(
                "name",
                format!("{s:?} must not contain blanks or control characters"),
            ));
        }
        Ok(Self(s.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CertName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A certificate serial number: a positive integer of at most 20 octets (RFC 5280 §4.1.2.2),
/// kept as its minimal big-endian magnitude.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Serial(Vec<u8>);

impl Serial {
    /// Parses `0x`-prefixed hex, colon-separated hex (`01:a3:ff`, as OpenSSL prints) or decimal.
    pub fn parse(s: &str) -> Result<Self, PkiError> {
        let s = s.trim();
        let bytes = if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
            parse_hex(hex)?
        } else if s.contains(':') {
            parse_hex(&s.replace(':', ""))?
        } else {
            parse_decimal(s)?
        };
        Self::from_magnitude(&bytes)
    }

    /// A serial from the big-endian magnitude of a positive integer (leading zeros dropped).
    pub fn from_magnitude(bytes: &[u8]) -> Result<Self, PkiError> {
        let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
        let magnitude = &bytes[start..];
        if magnitude.is_empty() {
            return Err(PkiError::invalid(
                "serial",
                "must be a positive number (RFC 5280 §4.1.2.2), got 0",
            ));
        }
        // DER adds a zero octet in front of a magnitude whose top bit is set; 20 octets is
        // the limit of the encoded value.
        let encoded = magnitude.len() + usize::from(magnitude[0] & 0x80 != 0);
        if encoded > MAX_SERIAL_OCTETS {
            return Err(PkiError::invalid(
                "serial",
                format!("must fit in {MAX_SERIAL_OCTETS} octets (RFC 5280 §4.1.2.2)"),
            ));
        }
        Ok(Self(magnitude.to_vec()))
    }

    /// A random serial of [`RANDOM_SERIAL_OCTETS`] octets, positive and with a non-zero first
    /// octet (so it always has that length).
    pub fn random() -> Result<Self, PkiError> {
        let mut bytes = [0u8; RANDOM_SERIAL_OCTETS];
        aws_lc_rs::rand::fill(&mut bytes)
            .map_err(|_| PkiError::Generate("no random numbers from the system".into()))?;
        bytes[0] = (bytes[0] & 0x7f) | 0x40;
        Ok(Self(bytes.to_vec()))
    }

    /// The magnitude, big-endian, without leading zeros.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Lower-case hex of the magnitude, no separators: the store's key for uniqueness.
    pub fn to_hex(&self) -> String {
        hex::encode(&self.0)
    }
}

impl fmt::Display for Serial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

fn parse_hex(s: &str) -> Result<Vec<u8>, PkiError> {
    if s.is_empty() || !s.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(PkiError::invalid(
            "serial",
            format!("{s:?} is not a hexadecimal number"),
        ));
    }
    let padded = if s.len() % 2 == 1 {
        format!("0{s}")
    } else {
        s.to_owned()
    };
    hex::decode(padded).map_err(|e| PkiError::invalid("serial", e.to_string()))
}

/// Decimal digits to a big-endian magnitude (schoolbook: multiply by ten, add the digit).
fn parse_decimal(s: &str) -> Result<Vec<u8>, PkiError> {
    if s.is_empty() || !s.chars().all(|c| c.is_ascii_digit()) {
        return Err(PkiError::invalid(
            "serial",
            format!("{s:?} is not a number (decimal, or hex with a 0x prefix)"),
        ));
    }
    if s.len() > 3 * MAX_SERIAL_OCTETS {
        return Err(PkiError::invalid(
            "serial",
            format!("must fit in {MAX_SERIAL_OCTETS} octets (RFC 5280 §4.1.2.2)"),
        ));
    }
    let mut out: Vec<u8> = Vec::new();
    for digit in s.bytes().map(|b| u32::from(b - b'0')) {
        let mut carry = digit;
        for byte in out.iter_mut().rev() {
            let v = u32::from(*byte) * 10 + carry;
            *byte = (v & 0xff) as u8;
            carry = v >> 8;
        }
        while carry > 0 {
            out.insert(0, (carry & 0xff) as u8);
            carry >>= 8;
        }
    }
    Ok(out)
}

/// The hash of the certificate's signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureHash {
    /// SHA-256.
    Sha256,
    /// SHA-512 (RSA only).
    Sha512,
}

impl FromStr for SignatureHash {
    type Err = PkiError;
    fn from_str(s: &str) -> Result<Self, PkiError> {
        match s.to_ascii_lowercase().replace('-', "").as_str() {
            "sha256" => Ok(Self::Sha256),
            "sha512" => Ok(Self::Sha512),
            _ => Err(PkiError::invalid(
                "hash",
                format!("{s:?}: expected sha256 or sha512"),
            )),
        }
    }
}

/// The key to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySpec {
    /// RSA with a modulus of this many bits (2048, 3072 or 4096).
    Rsa {
        /// Modulus length.
        bits: u32,
    },
    /// ECDSA on NIST P-256 (signs with SHA-256).
    EcdsaP256,
}

impl KeySpec {
    /// Checks the key against the minimum RSA length and the sizes homeline makes.
    pub fn check(self, min_rsa_bits: u32) -> Result<(), PkiError> {
        match self {
            Self::Rsa { bits } if bits < min_rsa_bits => Err(PkiError::KeyTooShort {
                bits,
                min: min_rsa_bits,
            }),
            Self::Rsa { bits } if ![2048, 3072, 4096].contains(&bits) => Err(PkiError::invalid(
                "key",
                format!("RSA keys are made with 2048, 3072 or 4096 bits, not {bits}"),
            )),
            Self::Rsa { .. } | Self::EcdsaP256 => Ok(()),
        }
    }
}

impl FromStr for KeySpec {
    type Err = PkiError;
    /// `rsa:2048`, `rsa2048`, `ecdsa-p256` (also `ec-p256`, `p256`).
    fn from_str(s: &str) -> Result<Self, PkiError> {
        let lower = s.to_ascii_lowercase();
        if let Some(bits) = lower
            .strip_prefix("rsa:")
            .or_else(|| lower.strip_prefix("rsa"))
        {
            let bits = bits.parse::<u32>().map_err(|_| {
                PkiError::invalid("key", format!("{s:?}: expected rsa:BITS, e.g. rsa:2048"))
            })?;
            return Ok(Self::Rsa { bits });
        }
        match lower.as_str() {
            "ecdsa-p256" | "ec-p256" | "p256" | "ecdsa" => Ok(Self::EcdsaP256),
            _ => Err(PkiError::invalid(
                "key",
                format!("{s:?}: expected rsa:2048, rsa:3072, rsa:4096 or ecdsa-p256"),
            )),
        }
    }
}

impl fmt::Display for KeySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Rsa { bits } => write!(f, "rsa:{bits}"),
            Self::EcdsaP256 => f.write_str("ecdsa-p256"),
        }
    }
}

/// The subject's distinguished name: country, organization, organizational unit, common name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subject {
    /// C: two capital letters (ISO 3166).
    pub country: Option<String>,
    /// O.
    pub organization: Option<String>,
    /// OU.
    pub organizational_unit: Option<String>,
    /// CN (required).
    pub common_name: String,
}

impl Subject {
    /// Checks each attribute.
    pub fn check(&self) -> Result<(), PkiError> {
        if let Some(c) = &self.country {
            if c.len() != 2 || !c.chars().all(|ch| ch.is_ascii_uppercase()) {
                return Err(PkiError::invalid(
                    "c",
                    format!("{c:?}: the country is two capital letters (ISO 3166), e.g. DE"),
                ));
            }
        }
        check_attribute("o", self.organization.as_deref())?;
        check_attribute("ou", self.organizational_unit.as_deref())?;
        if self.common_name.is_empty() {
            return Err(PkiError::invalid("cn", "the common name must not be empty"));
        }
        check_attribute("cn", Some(&self.common_name))
    }
}

fn check_attribute(field: &'static str, value: Option<&str>) -> Result<(), PkiError> {
    let Some(value) = value else { return Ok(()) };
    if value.is_empty() {
        return Err(PkiError::invalid(field, "must not be empty when given"));
    }
    if value.chars().count() > MAX_SUBJECT_ATTRIBUTE {
        return Err(PkiError::invalid(
            field,
            format!("must be at most {MAX_SUBJECT_ATTRIBUTE} characters"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(PkiError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// A subject alternative name (RFC 5280 §4.2.1.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AltName {
    /// dNSName (a `*.` wildcard only as the whole first label).
    Dns(String),
    /// iPAddress.
    Ip(IpAddr),
}

impl FromStr for AltName {
    type Err = PkiError;
    /// `DNS:name`, `IP:address`, or a bare address or name.
    fn from_str(s: &str) -> Result<Self, PkiError> {
        let (kind, value) = match s.split_once(':') {
            Some((k, v)) if k.eq_ignore_ascii_case("dns") => (Some("dns"), v),
            Some((k, v)) if k.eq_ignore_ascii_case("ip") => (Some("ip"), v),
            _ => (None, s),
        };
        match (kind, value.parse::<IpAddr>()) {
            (Some("ip") | None, Ok(ip)) => return Ok(Self::Ip(ip)),
            (Some("ip"), Err(_)) => {
                return Err(PkiError::invalid(
                    "san",
                    format!("{value:?} is not an IP address"),
                ))
            }
            _ => {}
        }
        check_dns_name(value)?;
        Ok(Self::Dns(value.to_ascii_lowercase()))
    }
}

impl fmt::Display for AltName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Dns(name) => write!(f, "DNS:{name}"),
            Self::Ip(ip) => write!(f, "IP:{ip}"),
        }
    }
}

fn check_dns_name(name: &str) -> Result<(), PkiError> {
    let bad = |why: &str| PkiError::invalid("san", format!("{name:?} is not a DNS name: {why}"));
    if name.is_empty() || name.len() > 253 {
        return Err(bad("1 to 253 characters"));
    }
    for (i, label) in name.split('.').enumerate() {
        if label == "*" && i == 0 {
            continue;
        }
        if label.is_empty() || label.len() > 63 {
            return Err(bad("each label has 1 to 63 characters"));
        }
        if !label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            || label.starts_with('-')
            || label.ends_with('-')
        {
            return Err(bad("letters, digits and inner hyphens only"));
        }
    }
    Ok(())
}

/// The validity period, GMT (RFC 5280 §4.1.2.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    /// notBefore.
    pub not_before: OffsetDateTime,
    /// notAfter.
    pub not_after: OffsetDateTime,
}

impl Validity {
    /// `days` whole days from `start` (seconds dropped: certificates carry whole seconds).
    pub fn days_from(start: OffsetDateTime, days: i64) -> Self {
        let not_before = whole_seconds(start);
        Self {
            not_before,
            not_after: not_before + time::Duration::days(days),
        }
    }

    /// Refuses an end at or before the start.
    pub fn check(&self) -> Result<(), PkiError> {
        if self.not_after <= self.not_before {
            return Err(PkiError::EndNotAfterStart {
                not_before: rfc3339(self.not_before),
                not_after: rfc3339(self.not_after),
            });
        }
        Ok(())
    }
}

/// Parses a time given as RFC 3339 (any offset, turned into GMT) or a date `YYYY-MM-DD`
/// (midnight GMT). `field` names the option in errors.
pub fn parse_time(field: &'static str, s: &str) -> Result<OffsetDateTime, PkiError> {
    let s = s.trim();
    let t = if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        t.to_offset(UtcOffset::UTC)
    } else {
        parse_date(s).ok_or_else(|| {
            PkiError::invalid(
                field,
                format!("{s:?}: expected YYYY-MM-DD or RFC 3339 (2026-05-01T12:00:00Z)"),
            )
        })?
    };
    if !(1950..=9999).contains(&t.year()) {
        return Err(PkiError::invalid(
            field,
            format!("{s:?}: the year must be between 1950 and 9999 (RFC 5280 §4.1.2.5)"),
        ));
    }
    Ok(whole_seconds(t))
}

fn parse_date(s: &str) -> Option<OffsetDateTime> {
    let mut parts = s.splitn(3, '-');
    let year = parts.next()?.parse::<i32>().ok()?;
    let month = parts.next()?.parse::<u8>().ok()?;
    let day = parts.next()?.parse::<u8>().ok()?;
    let date = Date::from_calendar_date(year, Month::try_from(month).ok()?, day).ok()?;
    Some(date.midnight().assume_utc())
}

/// RFC 3339 in GMT, for messages and listings.
pub fn rfc3339(t: OffsetDateTime) -> String {
    t.to_offset(UtcOffset::UTC)
        .format(&Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

fn whole_seconds(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_nanosecond(0).unwrap_or(t)
}

/// A request for a self-signed root CA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaSpec {
    /// Name in the store.
    pub name: CertName,
    /// Serial number (unique among every certificate this installation issued: the store checks).
    pub serial: Serial,
    /// Key to generate.
    pub key: KeySpec,
    /// Signature hash.
    pub hash: SignatureHash,
    /// Validity, GMT.
    pub validity: Validity,
    /// Subject (also the issuer: self-signed).
    pub subject: Subject,
    /// Subject alternative names (optional).
    pub alt_names: Vec<AltName>,
    /// CRL distribution point URI (RFC 5280 §4.2.1.13), optional.
    pub crl_distribution_point: Option<String>,
}

impl CaSpec {
    /// Checks every field; `min_rsa_bits` is `[tls] min_rsa_bits`.
    pub fn check(&self, min_rsa_bits: u32) -> Result<(), PkiError> {
        self.key.check(min_rsa_bits)?;
        if self.key == KeySpec::EcdsaP256 && self.hash == SignatureHash::Sha512 {
            return Err(PkiError::invalid(
                "hash",
                "ECDSA P-256 signs with sha256 only",
            ));
        }
        self.validity.check()?;
        self.subject.check()?;
        if let Some(uri) = &self.crl_distribution_point {
            check_crl_uri(uri)?;
        }
        Ok(())
    }
}

/// A request for a server certificate signed by one of our CAs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerCertSpec {
    /// Name in the store.
    pub name: CertName,
    /// Serial number.
    pub serial: Serial,
    /// Key to generate.
    pub key: KeySpec,
    /// Signature hash the CA signs with (an ECDSA CA: sha256 only).
    pub hash: SignatureHash,
    /// Validity, GMT.
    pub validity: Validity,
    /// Subject.
    pub subject: Subject,
    /// Subject alternative names: the names and addresses phones connect to. At least one
    /// (RFC 6125 §6.4.4: clients match the SAN, not the CN).
    pub alt_names: Vec<AltName>,
}

impl ServerCertSpec {
    /// Checks every field; `min_rsa_bits` is `[tls] min_rsa_bits`.
    pub fn check(&self, min_rsa_bits: u32) -> Result<(), PkiError> {
        self.key.check(min_rsa_bits)?;
        self.validity.check()?;
        self.subject.check()?;
        if self.alt_names.is_empty() {
            return Err(PkiError::invalid(
                "san",
                "a server certificate needs at least one DNS name or IP address \
                 (clients match these, RFC 6125 §6.4.4)",
            ));
        }
        Ok(())
    }
}

fn check_crl_uri(uri: &str) -> Result<(), PkiError> {
    let lower = uri.to_ascii_lowercase();
    let scheme_ok = ["http://", "https://", "ldap://"]
        .iter()
        .any(|p| lower.starts_with(p) && lower.len() > p.len());
    if !scheme_ok || uri.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(PkiError::invalid(
            "crl-url",
            format!("{uri:?}: expected an http://, https:// or ldap:// URI without blanks"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_forms() {
        assert_eq!(Serial::parse("4660").expect("dec").to_hex(), "1234");
        assert_eq!(Serial::parse("0x1234").expect("hex").to_hex(), "1234");
        assert_eq!(Serial::parse("00:12:34").expect("colon").to_hex(), "1234");
        assert_eq!(
            Serial::parse("340282366920938463463374607431768211455")
                .expect("u128 max")
                .to_hex(),
            "f".repeat(32)
        );
        assert!(matches!(
            Serial::parse("0"),
            Err(PkiError::Invalid {
                field: "serial",
                ..
            })
        ));
        assert!(Serial::parse("12ab").is_err());
        assert!(Serial::parse("-5").is_err());
        // 20 octets with the top bit clear fit; with it set the DER value needs 21.
        assert!(Serial::parse(&format!("0x7f{}", "ff".repeat(19))).is_ok());
        assert!(Serial::parse(&format!("0x80{}", "00".repeat(19))).is_err());
    }

    #[test]
    fn random_serial_is_positive_and_full_length() {
        for _ in 0..32 {
            let s = Serial::random().expect("random");
            assert_eq!(s.as_bytes().len(), RANDOM_SERIAL_OCTETS);
            assert_eq!(s.as_bytes()[0] & 0x80, 0);
        }
        assert_ne!(Serial::random().ok(), Serial::random().ok());
    }

    #[test]
    fn key_checks_name_the_field() {
        let rsa1024: KeySpec = "rsa:1024".parse().expect("parse");
        assert!(matches!(
            rsa1024.check(2048),
            Err(PkiError::KeyTooShort {
                bits: 1024,
                min: 2048
            })
        ));
        let rsa2048: KeySpec = "rsa2048".parse().expect("parse");
        assert!(matches!(
            rsa2048.check(3072),
            Err(PkiError::KeyTooShort { .. })
        ));
        assert!(rsa2048.check(2048).is_ok());
        assert!(matches!(
            "rsa:2500".parse::<KeySpec>().expect("parse").check(2048),
            Err(PkiError::Invalid { field: "key", .. })
        ));
        assert!(KeySpec::EcdsaP256.check(4096).is_ok());
        assert!("dsa".parse::<KeySpec>().is_err());
    }

    #[test]
    fn rfc5280_4_1_2_5_validity_end_after_start() {
        let start = parse_time("not-before", "2026-01-01").expect("date");
        let end = parse_time("not-after", "2025-12-31T23:00:00+01:00").expect("rfc3339");
        assert_eq!(rfc3339(end), "2025-12-31T22:00:00Z");
        let v = Validity {
            not_before: start,
            not_after: end,
        };
        let err = v.check().expect_err("end before start");
        assert!(err.to_string().starts_with("not-after:"), "{err}");
        let same = Validity {
            not_before: start,
            not_after: start,
        };
        assert!(same.check().is_err());
        assert!(matches!(
            parse_time("not-before", "yesterday"),
            Err(PkiError::Invalid {
                field: "not-before",
                ..
            })
        ));
        assert!(parse_time("not-after", "2026-02-30").is_err());
    }

    #[test]
    fn names_and_subjects() {
        assert!(CertName::parse("homeline-root").is_ok());
        assert!(matches!(
            CertName::parse("my ca"),
            Err(PkiError::Invalid { field: "name", .. })
        ));
        assert!(CertName::parse("").is_err());
        let mut s = Subject {
            country: Some("de".into()),
            common_name: "x".into(),
            ..Subject::default()
        };
        assert!(matches!(
            s.check(),
            Err(PkiError::Invalid { field: "c", .. })
        ));
        s.country = Some("DE".into());
        assert!(s.check().is_ok());
        s.common_name.clear();
        assert!(matches!(
            s.check(),
            Err(PkiError::Invalid { field: "cn", .. })
        ));
    }

    #[test]
    fn rfc5280_4_2_1_6_alt_names() {
        assert_eq!(
            "DNS:PBX.example.test".parse::<AltName>().expect("dns"),
            AltName::Dns("pbx.example.test".into())
        );
        assert_eq!(
            "IP:192.0.2.1".parse::<AltName>().expect("ip"),
            AltName::Ip("192.0.2.1".parse().expect("ip"))
        );
        assert_eq!(
            "::1".parse::<AltName>().expect("bare ip"),
            AltName::Ip("::1".parse().expect("ip"))
        );
        assert!("*.example.test".parse::<AltName>().is_ok());
        assert!("IP:pbx".parse::<AltName>().is_err());
        assert!("bad_name".parse::<AltName>().is_err());
        assert!("a..b".parse::<AltName>().is_err());
    }
}
