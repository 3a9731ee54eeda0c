//! homeline's certificate authority, without I/O: the caller passes the time and stores the
//! results (crate `store`); nothing here reads a clock or touches a file.
//!
//! - [`create_ca`]: a self-signed root CA (RSA 2048/3072/4096 with SHA-256 or SHA-512, or
//!   ECDSA P-256), subject C/O/OU/CN, optional subject alternative names and CRL distribution
//!   point (RFC 5280 §4.2.1.6, §4.2.1.13).
//! - [`issue_server`]: a server certificate for SIP over TLS signed by one of those CAs.
//! - [`import_pkcs12`], [`import_pem`]: an outside certificate and key, checked (parses, key
//!   matches, RSA not below the configured minimum) before anything is stored.
//! - [`pkcs12`], [`certificates_pem`]: export; [`CertInfo`]: the details and SHA-1/SHA-256
//!   fingerprints; [`expiry_warning`]: 30 days' notice.
//!
//! Every refusal is a [`PkiError`] naming the field (as the command line calls it).
//! Keys are generated with aws-lc-rs (the provider rustls uses too).

mod error;
mod expiry;
mod export;
mod import;
mod info;
mod issue;
mod spec;

pub use error::PkiError;
pub use expiry::{expiry_state, expiry_warning, ExpiryState, EXPIRY_WARNING_DAYS};
pub use export::{certificates_pem, pkcs12, private_key_pem, MIN_PASSPHRASE};
pub use import::{check_identity, import_pem, import_pkcs12, looks_like_pem, Identity};
pub use info::{fingerprint_sha1, fingerprint_sha256, CertInfo};
pub use issue::{create_ca, issue_server, CaMaterial, Issued};
pub use spec::{
    parse_time, rfc3339, AltName, CaSpec, CertName, KeySpec, Serial, ServerCertSpec, SignatureHash,
    Subject, Validity, DEFAULT_MIN_RSA_BITS, MAX_NAME, MAX_SERIAL_OCTETS, MAX_SUBJECT_ATTRIBUTE,
    RANDOM_SERIAL_OCTETS,
};
pub use time::OffsetDateTime;

#[cfg(test)]
mod tests;
