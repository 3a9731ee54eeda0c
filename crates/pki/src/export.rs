//! Writing certificates out: PEM, DER (as is) and passphrase-protected PKCS#12.

use p12_keystore::{Certificate, KeyStore, KeyStoreEntry, PrivateKeyChain};
use sha1::{Digest, Sha1};

use crate::error::PkiError;

/// Shortest passphrase accepted for a PKCS#12 export, characters.
pub const MIN_PASSPHRASE: usize = 4;

/// PEM text of DER certificates, one `CERTIFICATE` block each.
pub fn certificates_pem<'a>(ders: impl IntoIterator<Item = &'a [u8]>) -> String {
    ders.into_iter()
        .map(|der| pem::encode(&pem::Pem::new("CERTIFICATE", der.to_vec())))
        .collect()
}

/// PEM text of a PKCS#8 private key (`PRIVATE KEY`).
pub fn private_key_pem(pkcs8: &[u8]) -> String {
    pem::encode(&pem::Pem::new("PRIVATE KEY", pkcs8.to_vec()))
}

/// A PKCS#12 file holding the key, its certificate and the chain above it, encrypted with
/// `passphrase` (PBES2: PBKDF2-HMAC-SHA256 + AES-256-CBC, MAC HMAC-SHA256, as OpenSSL 3 writes
/// by default). `friendly_name` is the alias shown by importers.
pub fn pkcs12(
    friendly_name: &str,
    cert_der: &[u8],
    chain_der: &[Vec<u8>],
    key_pkcs8_der: &[u8],
    passphrase: &str,
) -> Result<Vec<u8>, PkiError> {
    if passphrase.chars().count() < MIN_PASSPHRASE {
        return Err(PkiError::invalid(
            "passphrase",
            format!("must be at least {MIN_PASSPHRASE} characters"),
        ));
    }
    let mut certs = Vec::with_capacity(1 + chain_der.len());
    for der in std::iter::once(cert_der).chain(chain_der.iter().map(Vec::as_slice)) {
        certs.push(Certificate::from_der(der).map_err(|e| PkiError::Pkcs12Write(e.to_string()))?);
    }
    // localKeyId ties the key bag to its certificate bag; the certificate's SHA-1 is
    // what OpenSSL and Java use too.
    let local_key_id = Sha1::digest(cert_der);
    let mut store = KeyStore::new();
    store.add_entry(
        friendly_name,
        KeyStoreEntry::PrivateKeyChain(PrivateKeyChain::new(key_pkcs8_der, local_key_id, certs)),
    );
    store
        .writer(passphrase)
        .write()
        .map_err(|e| PkiError::Pkcs12Write(e.to_string()))
}
