//! Errors of the certificate authority, each naming the field or the input at fault.

/// A certificate request, a file to import or a passphrase was not acceptable, or a key or
/// certificate could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PkiError {
    /// A field of a request has a value that is not allowed.
    #[error("{field}: {reason}")]
    Invalid {
        /// The field, as the command line names it (`name`, `serial`, `not-after`, ...).
        field: &'static str,
        /// What is wrong, with the value when it helps.
        reason: String,
    },
    /// An RSA key is shorter than the configured minimum (`[tls] min_rsa_bits`).
    #[error("key: RSA {bits} bits is below the minimum of {min} bits")]
    KeyTooShort {
        /// The key's length.
        bits: u32,
        /// The smallest length allowed.
        min: u32,
    },
    /// The validity period ends at or before its start.
    #[error("not-after: the end of validity ({not_after}) must be after its start ({not_before})")]
    EndNotAfterStart {
        /// Start of validity (RFC 3339, UTC).
        not_before: String,
        /// End of validity (RFC 3339, UTC).
        not_after: String,
    },
    /// The passphrase does not open the PKCS#12 file (its MAC does not verify).
    #[error("passphrase: wrong passphrase for the PKCS#12 file (its integrity check fails)")]
    WrongPassphrase,
    /// The input is not a well-formed PKCS#12 file.
    #[error("file: not a readable PKCS#12 file: {0}")]
    CorruptPkcs12(String),
    /// The input holds no PEM certificate, or a block does not decode.
    #[error("file: {0}")]
    CorruptPem(String),
    /// A certificate does not parse as X.509.
    #[error("{field}: not a readable X.509 certificate: {reason}")]
    CorruptCertificate {
        /// Which certificate (`certificate`, `chain certificate 2`, ...).
        field: &'static str,
        /// The parser's message.
        reason: String,
    },
    /// A private key does not parse, or is of a kind homeline cannot use.
    #[error("key: {0}")]
    BadKey(String),
    /// The private key does not belong to the certificate.
    #[error("key: the private key does not match the certificate's public key")]
    KeyMismatch,
    /// The PKCS#12 file or PEM input has no private key.
    #[error("key: the input holds no private key")]
    NoPrivateKey,
    /// The issuing certificate is not a CA or has no private key.
    #[error("ca: {0}")]
    NotACa(String),
    /// The key or certificate could not be generated or signed.
    #[error("cannot generate the certificate: {0}")]
    Generate(String),
    /// The PKCS#12 file could not be written.
    #[error("cannot write the PKCS#12 file: {0}")]
    Pkcs12Write(String),
}

impl PkiError {
    /// Shorthand for [`PkiError::Invalid`].
    pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            reason: reason.into(),
        }
    }
}
