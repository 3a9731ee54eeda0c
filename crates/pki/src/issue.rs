//! Making keys and certificates: a self-signed root CA, and server certificates signed by it.

use std::collections::HashSet;

use rcgen::{
    BasicConstraints, CertificateParams, CrlDistributionPoint, DistinguishedName, DnType, DnValue,
    ExtendedKeyUsagePurpose, IsCa, KeyIdMethod, KeyPair, KeyUsagePurpose, RsaKeySize, SanType,
    SerialNumber, SignatureAlgorithm,
};
use rustls_pki_types::PrivatePkcs8KeyDer;
use x509_parser::der_parser::asn1_rs::Tag;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::error::PkiError;
use crate::spec::{AltName, CaSpec, KeySpec, ServerCertSpec, SignatureHash, Subject, Validity};

/// A certificate with its private key, as made.
#[derive(Clone, PartialEq, Eq)]
pub struct Issued {
    /// The certificate, DER.
    pub cert_der: Vec<u8>,
    /// Its private key, PKCS#8 DER.
    pub key_pkcs8_der: Vec<u8>,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key never reaches a log.
        f.debug_struct("Issued")
            .field("cert_der", &self.cert_der.len())
            .field("key_pkcs8_der", &"***")
            .finish()
    }
}

/// The CA that signs: its certificate and private key.
#[derive(Clone, Copy)]
pub struct CaMaterial<'a> {
    /// The CA certificate, DER.
    pub cert_der: &'a [u8],
    /// The CA's private key, PKCS#8 DER.
    pub key_pkcs8_der: &'a [u8],
}

/// Makes a key pair and a self-signed root CA certificate (RFC 5280 §4.2.1.9: cA, no path
/// length limit; key usage keyCertSign + cRLSign).
pub fn create_ca(spec: &CaSpec, min_rsa_bits: u32) -> Result<Issued, PkiError> {
    spec.check(min_rsa_bits)?;
    let key = generate_key(spec.key, spec.hash)?;
    let mut params = base_params(&spec.subject, &spec.validity, &spec.alt_names)?;
    params.serial_number = Some(SerialNumber::from_slice(spec.serial.as_bytes()));
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    if let Some(uri) = &spec.crl_distribution_point {
        params.crl_distribution_points = vec![CrlDistributionPoint {
            uris: vec![uri.clone()],
        }];
    }
    let cert = params.self_signed(&key).map_err(generate_error)?;
    Ok(Issued {
        cert_der: cert.der().to_vec(),
        key_pkcs8_der: key.serialize_der(),
    })
}

/// Makes a key pair and a server certificate (TLS server and client authentication, for
/// SIP over TLS both ways) signed by `ca` with `spec.hash`.
pub fn issue_server(
    spec: &ServerCertSpec,
    min_rsa_bits: u32,
    ca: CaMaterial<'_>,
) -> Result<Issued, PkiError> {
    spec.check(min_rsa_bits)?;
    let (_, ca_cert) = X509Certificate::from_der(ca.cert_der)
        .map_err(|e| PkiError::NotACa(format!("the CA certificate does not parse: {e}")))?;
    if !ca_cert.is_ca() {
        return Err(PkiError::NotACa(
            "the certificate is not a CA (no basicConstraints cA=TRUE)".into(),
        ));
    }
    let ca_key = ca_key_pair(ca.key_pkcs8_der, spec.hash)?;
    if ca_key.public_key_raw() != ca_cert.public_key().subject_public_key.data.as_ref() {
        return Err(PkiError::NotACa(
            "the CA's private key does not match its certificate".into(),
        ));
    }
    let issuer = issuer_certificate(&ca_cert, &ca_key)?;

    let key = generate_key(spec.key, SignatureHash::Sha256)?;
    let mut params = base_params(&spec.subject, &spec.validity, &spec.alt_names)?;
    params.serial_number = Some(SerialNumber::from_slice(spec.serial.as_bytes()));
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = match spec.key {
        // RFC 5246 RSA key exchange needs keyEncipherment; TLS 1.3 / ECDHE only signs.
        KeySpec::Rsa { .. } => vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ],
        KeySpec::EcdsaP256 => vec![KeyUsagePurpose::DigitalSignature],
    };
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.use_authority_key_identifier_extension = true;
    let cert = params
        .signed_by(&key, &issuer, &ca_key)
        .map_err(generate_error)?;
    // The chain only verifies if our issuer name is the CA's subject byte for byte.
    let (_, made) = X509Certificate::from_der(cert.der())
        .map_err(|e| PkiError::Generate(format!("the new certificate does not parse: {e}")))?;
    if made.issuer().as_raw() != ca_cert.subject().as_raw() {
        return Err(PkiError::NotACa(
            "the CA's subject cannot be reproduced exactly (unusual string types)".into(),
        ));
    }
    Ok(Issued {
        cert_der: cert.der().to_vec(),
        key_pkcs8_der: key.serialize_der(),
    })
}

/// The fields both kinds share.
fn base_params(
    subject: &Subject,
    validity: &Validity,
    alt_names: &[AltName],
) -> Result<CertificateParams, PkiError> {
    let mut params = CertificateParams::default();
    params.not_before = validity.not_before;
    params.not_after = validity.not_after;
    params.distinguished_name = distinguished_name(subject)?;
    params.subject_alt_names = alt_names
        .iter()
        .map(|name| match name {
            AltName::Dns(dns) => dns
                .clone()
                .try_into()
                .map(SanType::DnsName)
                .map_err(|_| PkiError::invalid("san", format!("{dns:?} is not IA5 text"))),
            AltName::Ip(ip) => Ok(SanType::IpAddress(*ip)),
        })
        .collect::<Result<_, _>>()?;
    Ok(params)
}

fn distinguished_name(subject: &Subject) -> Result<DistinguishedName, PkiError> {
    let mut dn = DistinguishedName::new();
    if let Some(c) = &subject.country {
        // RFC 5280 Appendix A: countryName is a PrintableString.
        let value = c
            .as_str()
            .try_into()
            .map_err(|_| PkiError::invalid("c", format!("{c:?} is not printable")))?;
        dn.push(DnType::CountryName, DnValue::PrintableString(value));
    }
    if let Some(o) = &subject.organization {
        dn.push(DnType::OrganizationName, o.as_str());
    }
    if let Some(ou) = &subject.organizational_unit {
        dn.push(DnType::OrganizationalUnitName, ou.as_str());
    }
    dn.push(DnType::CommonName, subject.common_name.as_str());
    Ok(dn)
}

fn generate_key(key: KeySpec, hash: SignatureHash) -> Result<KeyPair, PkiError> {
    match key {
        KeySpec::Rsa { bits } => {
            let size = match bits {
                2048 => RsaKeySize::_2048,
                3072 => RsaKeySize::_3072,
                4096 => RsaKeySize::_4096,
                _ => {
                    return Err(PkiError::invalid(
                        "key",
                        format!("RSA keys are made with 2048, 3072 or 4096 bits, not {bits}"),
                    ))
                }
            };
            KeyPair::generate_rsa_for(rsa_algorithm(hash), size).map_err(generate_error)
        }
        KeySpec::EcdsaP256 => {
            KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(generate_error)
        }
    }
}

fn rsa_algorithm(hash: SignatureHash) -> &'static SignatureAlgorithm {
    match hash {
        SignatureHash::Sha256 => &rcgen::PKCS_RSA_SHA256,
        SignatureHash::Sha512 => &rcgen::PKCS_RSA_SHA512,
    }
}

/// The CA's key, set to sign with `hash`.
fn ca_key_pair(pkcs8: &[u8], hash: SignatureHash) -> Result<KeyPair, PkiError> {
    let der = PrivatePkcs8KeyDer::from(pkcs8);
    let probe = KeyPair::try_from(&der)
        .map_err(|e| PkiError::NotACa(format!("the CA's private key does not load: {e}")))?;
    if probe.is_compatible(&rcgen::PKCS_RSA_SHA256) {
        return KeyPair::from_pkcs8_der_and_sign_algo(&der, rsa_algorithm(hash))
            .map_err(|e| PkiError::NotACa(format!("the CA's RSA key does not load: {e}")));
    }
    if hash == SignatureHash::Sha512 {
        return Err(PkiError::invalid(
            "hash",
            "this CA has an ECDSA key, which signs with sha256 only",
        ));
    }
    Ok(probe)
}

/// An rcgen certificate standing for the CA: only its subject, key identifier and key usages
/// are used when signing, so they are taken from the real CA certificate.
fn issuer_certificate(
    ca_cert: &X509Certificate<'_>,
    ca_key: &KeyPair,
) -> Result<rcgen::Certificate, PkiError> {
    let mut params = CertificateParams::default();
    params.distinguished_name = parse_name(ca_cert)?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    // RFC 5280 §4.2.1.1: the authority key identifier repeats the CA's subject key identifier.
    for ext in ca_cert.extensions() {
        if let x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(id) =
            ext.parsed_extension()
        {
            params.key_identifier_method = KeyIdMethod::PreSpecified(id.0.to_vec());
        }
    }
    params.self_signed(ca_key).map_err(generate_error)
}

/// The CA's subject as rcgen values, string types kept, one attribute per RDN.
fn parse_name(cert: &X509Certificate<'_>) -> Result<DistinguishedName, PkiError> {
    let mut dn = DistinguishedName::new();
    let mut seen = HashSet::new();
    let unsupported = |why: &str| PkiError::NotACa(format!("the CA's subject {why}"));
    for rdn in cert.subject().iter_rdn() {
        let mut attrs = rdn.iter();
        let (Some(attr), None) = (attrs.next(), attrs.next()) else {
            return Err(unsupported("has a multi-valued RDN"));
        };
        let oid: Vec<u64> = attr
            .attr_type()
            .iter()
            .ok_or_else(|| unsupported("has an attribute type out of range"))?
            .collect();
        let ty = DnType::from_oid(&oid);
        if !seen.insert(oid) {
            return Err(unsupported("repeats an attribute"));
        }
        let text = attr
            .as_str()
            .map_err(|_| unsupported("has a value that is not text"))?;
        let value = match attr.attr_value().tag() {
            Tag::PrintableString => DnValue::PrintableString(
                text.try_into()
                    .map_err(|_| unsupported("has a bad PrintableString"))?,
            ),
            Tag::Ia5String => DnValue::Ia5String(
                text.try_into()
                    .map_err(|_| unsupported("has a bad IA5String"))?,
            ),
            Tag::Utf8String => DnValue::Utf8String(text.to_owned()),
            _ => return Err(unsupported("uses a string type homeline cannot repeat")),
        };
        dn.push(ty, value);
    }
    Ok(dn)
}

fn generate_error(e: rcgen::Error) -> PkiError {
    PkiError::Generate(e.to_string())
}
