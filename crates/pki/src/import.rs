//! Bringing an outside certificate and key in: PKCS#12 (any scheme OpenSSL 3 writes, modern
//! AES-256/PBKDF2 and `-legacy` RC2/3DES) or PEM, checked before anything is stored.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{
    EcdsaKeyPair, ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P384_SHA384_ASN1_SIGNING,
};
use p12_keystore::KeyStore;
use rcgen::KeyPair;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::error::PkiError;
use crate::info::CertInfo;

/// A certificate, the certificates above it and its private key, checked to belong together.
#[derive(Clone, PartialEq, Eq)]
pub struct Identity {
    /// The end-entity (or CA) certificate, DER.
    pub cert_der: Vec<u8>,
    /// The certificates above it, issuer first, DER (may be empty).
    pub chain_der: Vec<Vec<u8>>,
    /// The private key, PKCS#8 DER.
    pub key_pkcs8_der: Vec<u8>,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("cert_der", &self.cert_der.len())
            .field("chain_der", &self.chain_der.len())
            .field("key_pkcs8_der", &"***")
            .finish()
    }
}

/// Whether `data` looks like PEM text rather than DER (PKCS#12 files are DER).
pub fn looks_like_pem(data: &[u8]) -> bool {
    data.windows(11).any(|w| w == b"-----BEGIN ")
}

/// Opens a PKCS#12 file with `passphrase` and checks its key and certificate (see
/// [`check_identity`]). A wrong passphrase is [`PkiError::WrongPassphrase`].
pub fn import_pkcs12(
    data: &[u8],
    passphrase: &str,
    min_rsa_bits: u32,
) -> Result<Identity, PkiError> {
    let store = KeyStore::from_pkcs12(data, passphrase).map_err(pkcs12_error)?;
    let Some((_, chain)) = store.private_key_chain() else {
        return Err(PkiError::NoPrivateKey);
    };
    let mut certs = chain.chain().iter().map(|c| c.as_der().to_vec());
    let cert_der = certs.next().ok_or(PkiError::NoPrivateKey)?;
    let identity = Identity {
        cert_der,
        chain_der: certs.collect(),
        key_pkcs8_der: to_pkcs8(&PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            chain.key().to_vec(),
        )))?,
    };
    check_identity(&identity, min_rsa_bits)?;
    Ok(identity)
}

fn pkcs12_error(e: p12_keystore::error::Error) -> PkiError {
    use p12_keystore::error::Error;
    match e {
        Error::MacError(_) => PkiError::WrongPassphrase,
        // Without a MAC (or with a right MAC and a wrong bag password) the decryption
        // fails on the padding instead.
        Error::UnpadError => PkiError::WrongPassphrase,
        other => PkiError::CorruptPkcs12(other.to_string()),
    }
}

/// Reads PEM: certificates (the first is the one to import, the rest its chain) and a private
/// key, from `certs` or, when given, from `key` (PKCS#8, PKCS#1 RSA or SEC1 EC; not encrypted).
pub fn import_pem(
    certs: &[u8],
    key: Option<&[u8]>,
    min_rsa_bits: u32,
) -> Result<Identity, PkiError> {
    let mut ders = Vec::new();
    for item in CertificateDer::pem_slice_iter(certs) {
        let cert = item.map_err(|e| PkiError::CorruptPem(format!("bad PEM certificate: {e}")))?;
        ders.push(cert.as_ref().to_vec());
    }
    let mut ders = ders.into_iter();
    let Some(cert_der) = ders.next() else {
        return Err(PkiError::CorruptPem(
            "no PEM certificate (-----BEGIN CERTIFICATE-----) found".into(),
        ));
    };
    let key_text = key.unwrap_or(certs);
    if key_text
        .windows(29)
        .any(|w| w == b"-----BEGIN ENCRYPTED PRIVATE ")
    {
        return Err(PkiError::BadKey(
            "encrypted PEM keys are not read; decrypt it first (openssl pkey -in KEY -out PLAIN) \
             or import a PKCS#12 file"
                .into(),
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(key_text).map_err(|e| match e {
        rustls_pki_types::pem::Error::NoItemsFound => PkiError::NoPrivateKey,
        other => PkiError::BadKey(format!("bad PEM private key: {other}")),
    })?;
    let identity = Identity {
        cert_der,
        chain_der: ders.collect(),
        key_pkcs8_der: to_pkcs8(&key)?,
    };
    check_identity(&identity, min_rsa_bits)?;
    Ok(identity)
}

/// Checks that every certificate parses, that the key is one homeline can sign with, that it
/// belongs to the certificate, and that an RSA key is at least `min_rsa_bits` long.
pub fn check_identity(identity: &Identity, min_rsa_bits: u32) -> Result<CertInfo, PkiError> {
    let info = CertInfo::from_der(&identity.cert_der)?;
    for der in &identity.chain_der {
        CertInfo::from_der_named("chain certificate", der)?;
    }
    if let Some(bits) = info.rsa_bits {
        if bits < min_rsa_bits {
            return Err(PkiError::KeyTooShort {
                bits,
                min: min_rsa_bits,
            });
        }
    }
    let key = KeyPair::try_from(&PrivatePkcs8KeyDer::from(identity.key_pkcs8_der.as_slice()))
        .map_err(|e| PkiError::BadKey(format!("unusable private key: {e}")))?;
    let (_, cert) = X509Certificate::from_der(&identity.cert_der).map_err(|e| {
        PkiError::CorruptCertificate {
            field: "certificate",
            reason: e.to_string(),
        }
    })?;
    if key.public_key_raw() != cert.public_key().subject_public_key.data.as_ref() {
        return Err(PkiError::KeyMismatch);
    }
    Ok(info)
}

/// Any private key form to PKCS#8 (the form the store and rustls keep).
fn to_pkcs8(key: &PrivateKeyDer<'_>) -> Result<Vec<u8>, PkiError> {
    match key {
        PrivateKeyDer::Pkcs8(k) => Ok(k.secret_pkcs8_der().to_vec()),
        PrivateKeyDer::Pkcs1(k) => {
            let rsa = aws_lc_rs::rsa::KeyPair::from_der(k.secret_pkcs1_der())
                .map_err(|e| PkiError::BadKey(format!("bad RSA private key: {e}")))?;
            let der: aws_lc_rs::encoding::Pkcs8V1Der<'_> = rsa
                .as_der()
                .map_err(|_| PkiError::BadKey("cannot re-encode the RSA key".into()))?;
            Ok(der.as_ref().to_vec())
        }
        PrivateKeyDer::Sec1(k) => {
            for alg in [
                &ECDSA_P256_SHA256_ASN1_SIGNING,
                &ECDSA_P384_SHA384_ASN1_SIGNING,
            ] {
                if let Ok(ec) = EcdsaKeyPair::from_private_key_der(alg, k.secret_sec1_der()) {
                    let doc = ec
                        .to_pkcs8v1()
                        .map_err(|_| PkiError::BadKey("cannot re-encode the EC key".into()))?;
                    return Ok(doc.as_ref().to_vec());
                }
            }
            Err(PkiError::BadKey(
                "EC private key on a curve other than P-256 or P-384".into(),
            ))
        }
        _ => Err(PkiError::BadKey("unknown private key format".into())),
    }
}
