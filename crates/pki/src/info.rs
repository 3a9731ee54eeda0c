//! What a certificate says, for listings and `cert show`, and its fingerprints.

use sha1::Sha1;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use x509_parser::extensions::GeneralName;
use x509_parser::oid_registry::OID_EC_P256;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::public_key::PublicKey;

use crate::error::PkiError;

/// The facts of one certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// Subject DN, RFC 4514 order as OpenSSL prints it (`C=DE, O=..., CN=...`).
    pub subject: String,
    /// Issuer DN.
    pub issuer: String,
    /// Serial number, lower-case hex of the magnitude.
    pub serial_hex: String,
    /// notBefore.
    pub not_before: OffsetDateTime,
    /// notAfter.
    pub not_after: OffsetDateTime,
    /// basicConstraints cA.
    pub is_ca: bool,
    /// Subject and issuer are the same name.
    pub self_issued: bool,
    /// The public key: "RSA 2048 bits", "ECDSA P-256", ...
    pub key: String,
    /// RSA modulus length, when the key is RSA.
    pub rsa_bits: Option<u32>,
    /// Signature algorithm (OpenSSL's short name where known, else the OID).
    pub signature: String,
    /// Subject alternative names as `DNS:name` / `IP:address`.
    pub alt_names: Vec<String>,
    /// CRL distribution point URIs.
    pub crl_distribution_points: Vec<String>,
    /// SHA-1 fingerprint of the DER, `AA:BB:...` as `openssl x509 -fingerprint -sha1` prints it.
    pub sha1: String,
    /// SHA-256 fingerprint of the DER, same form.
    pub sha256: String,
}

impl CertInfo {
    /// Reads a DER certificate.
    pub fn from_der(der: &[u8]) -> Result<Self, PkiError> {
        Self::from_der_named("certificate", der)
    }

    /// Reads a DER certificate; `field` names it in errors.
    pub(crate) fn from_der_named(field: &'static str, der: &[u8]) -> Result<Self, PkiError> {
        let (rest, cert) =
            X509Certificate::from_der(der).map_err(|e| PkiError::CorruptCertificate {
                field,
                reason: e.to_string(),
            })?;
        if !rest.is_empty() {
            return Err(PkiError::CorruptCertificate {
                field,
                reason: format!("{} bytes after the certificate", rest.len()),
            });
        }
        let (key, rsa_bits) = describe_key(&cert);
        let mut alt_names = Vec::new();
        let mut crl_distribution_points = Vec::new();
        for ext in cert.extensions() {
            use x509_parser::extensions::ParsedExtension;
            match ext.parsed_extension() {
                ParsedExtension::SubjectAlternativeName(san) => {
                    alt_names.extend(san.general_names.iter().map(general_name))
                }
                ParsedExtension::CRLDistributionPoints(points) => {
                    for point in points.iter() {
                        if let Some(x509_parser::extensions::DistributionPointName::FullName(
                            names,
                        )) = &point.distribution_point
                        {
                            crl_distribution_points.extend(names.iter().filter_map(|n| match n {
                                GeneralName::URI(uri) => Some((*uri).to_owned()),
                                _ => None,
                            }));
                        }
                    }
                }
                _ => {}
            }
        }
        let signature_oid = &cert.signature_algorithm.algorithm;
        let signature =
            x509_parser::objects::oid2sn(signature_oid, x509_parser::objects::oid_registry())
                .map(str::to_owned)
                .unwrap_or_else(|_| signature_oid.to_id_string());
        Ok(Self {
            subject: cert.subject().to_string(),
            issuer: cert.issuer().to_string(),
            serial_hex: serial_hex(cert.raw_serial()),
            not_before: cert.validity().not_before.to_datetime(),
            not_after: cert.validity().not_after.to_datetime(),
            is_ca: cert.is_ca(),
            self_issued: cert.subject().as_raw() == cert.issuer().as_raw(),
            key,
            rsa_bits,
            signature,
            alt_names,
            crl_distribution_points,
            sha1: fingerprint_sha1(der),
            sha256: fingerprint_sha256(der),
        })
    }
}

/// SHA-1 over the DER, colon-separated upper-case hex.
pub fn fingerprint_sha1(der: &[u8]) -> String {
    colon_hex(&Sha1::digest(der))
}

/// SHA-256 over the DER, colon-separated upper-case hex.
pub fn fingerprint_sha256(der: &[u8]) -> String {
    colon_hex(&Sha256::digest(der))
}

fn colon_hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The serial's magnitude (a DER INTEGER may carry a leading zero octet) in lower-case hex.
fn serial_hex(raw: &[u8]) -> String {
    let start = raw.iter().position(|&b| b != 0).unwrap_or(raw.len());
    let magnitude = &raw[start..];
    if magnitude.is_empty() {
        "00".to_owned()
    } else {
        hex::encode(magnitude)
    }
}

fn describe_key(cert: &X509Certificate<'_>) -> (String, Option<u32>) {
    let spki = cert.public_key();
    match spki.parsed() {
        Ok(PublicKey::RSA(rsa)) => {
            let bits = u32::try_from(rsa.key_size()).unwrap_or(u32::MAX);
            (format!("RSA {bits} bits"), Some(bits))
        }
        Ok(PublicKey::EC(_)) => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok());
            match curve {
                Some(oid) if oid == OID_EC_P256 => ("ECDSA P-256".to_owned(), None),
                Some(oid) => (format!("EC, curve {}", oid.to_id_string()), None),
                None => ("EC".to_owned(), None),
            }
        }
        _ => (
            format!("key algorithm {}", spki.algorithm.algorithm.to_id_string()),
            None,
        ),
    }
}

fn general_name(name: &GeneralName<'_>) -> String {
    match name {
        GeneralName::DNSName(dns) => format!("DNS:{dns}"),
        GeneralName::IPAddress(bytes) => match bytes.len() {
            4 => {
                let a: [u8; 4] = [bytes[0], bytes[1], bytes[2], bytes[3]];
                format!("IP:{}", std::net::Ipv4Addr::from(a))
            }
            16 => {
                let mut a = [0u8; 16];
                a.copy_from_slice(bytes);
                format!("IP:{}", std::net::Ipv6Addr::from(a))
            }
            _ => format!("IP:{}", hex::encode(bytes)),
        },
        GeneralName::URI(uri) => format!("URI:{uri}"),
        GeneralName::RFC822Name(mail) => format!("email:{mail}"),
        other => format!("{other:?}"),
    }
}
