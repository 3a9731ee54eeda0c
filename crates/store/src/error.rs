//! Errors of the store, split by who is at fault: the caller's input, the policy, or the
//! database underneath.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use policy::SbcFlagRefused;

/// Something the store could not do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A field of the request has a value that is not allowed.
    #[error(transparent)]
    Invalid(#[from] FieldError),
    /// A station with this number already exists.
    #[error("station {0} already exists")]
    DuplicateStation(String),
    /// No station has this number.
    #[error("no station {0}")]
    NoSuchStation(String),
    /// The "Internet registration via SBC" flag cannot be set; the source lists every reason.
    #[error("station {number}: {source}")]
    SbcRefused {
        /// The station's number.
        number: String,
        /// The policy's reasons (with the broken password rules).
        #[source]
        source: SbcFlagRefused,
    },
    /// One entry of a bulk import failed; nothing of the import was stored.
    #[error("entry {index} (station {number:?}): {source}")]
    BulkEntry {
        /// Position of the entry in the import, from 0.
        index: usize,
        /// The entry's number as given.
        number: String,
        /// What was wrong with it.
        #[source]
        source: Box<StoreError>,
    },
    /// A certificate with this name already exists.
    #[error("name: a certificate named {0} already exists")]
    DuplicateCertificateName(String),
    /// This installation already issued a certificate with this serial (serials are never
    /// reused, even after the certificate was removed).
    #[error(
        "serial: {serial} was already used (certificate {first_name}); serials are never reused"
    )]
    SerialTaken {
        /// The serial, lower-case hex.
        serial: String,
        /// The certificate that first had it.
        first_name: String,
    },
    /// The same certificate (same SHA-256 fingerprint) is already stored.
    #[error("this certificate is already stored as {existing}")]
    DuplicateCertificate {
        /// The stored one's name.
        existing: String,
    },
    /// No certificate has this name.
    #[error("no certificate named {0}")]
    NoSuchCertificate(String),
    /// The certificate cannot be the SIP-TLS server's.
    #[error("certificate {name} cannot be used for SIP-TLS: {reason}")]
    CertificateNotUsable {
        /// Its name.
        name: String,
        /// Why.
        reason: &'static str,
    },
    /// The certificate cannot be removed.
    #[error("certificate {name} cannot be removed: {reason}")]
    CertificateInUse {
        /// Its name.
        name: String,
        /// Why.
        reason: &'static str,
    },
    /// The data folder could not be created.
    #[error("cannot create data folder {}: {source}", path.display())]
    DataDir {
        /// The folder.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The database failed (I/O, locking, constraint outside the cases above).
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The schema could not be brought up to date.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A value read back from the database does not parse (file edited by hand or damaged).
    #[error("corrupt {column} value {value:?} in the database")]
    Corrupt {
        /// Table and column.
        column: &'static str,
        /// The value found.
        value: String,
    },
    /// The binding writer's task has stopped (runtime shutting down).
    #[error("the binding writer has stopped")]
    WriterStopped,
    /// The binding writer could not commit; it keeps the pending changes and retries.
    #[error("the binding writer could not commit; it keeps the changes and retries")]
    WriterCommit(#[source] Arc<StoreError>),
}

/// A field of a station or a setting has a value that is not allowed; names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FieldError {
    /// A call number is not 1 to 20 decimal digits.
    #[error("{field} must be 1 to 20 digits, got {value:?}")]
    NotACallNumber {
        /// The field's name.
        field: &'static str,
        /// The value given.
        value: String,
    },
    /// A text is longer than allowed.
    #[error("{field} must be at most {max} characters")]
    TooLong {
        /// The field's name.
        field: &'static str,
        /// The limit, in characters.
        max: usize,
    },
    /// A text contains control characters.
    #[error("{field} must not contain control characters")]
    ControlCharacter {
        /// The field's name.
        field: &'static str,
    },
    /// A text that must have a value is empty.
    #[error("{field} must not be empty")]
    Empty {
        /// The field's name.
        field: &'static str,
    },
    /// A class of service name is not one a class can have.
    #[error("{field}: {value:?} is not a class name (1 to 32 of a-z, 0-9, '-', '_')")]
    NotAClassName {
        /// The field's name.
        field: &'static str,
        /// The value given.
        value: String,
    },
    /// A forwarding target is not a number (digits, optionally a leading `+`).
    #[error("{field} must be 1 to 32 digits, optionally after a '+', got {value:?}")]
    NotADialString {
        /// The field's name.
        field: &'static str,
        /// The value given.
        value: String,
    },
    /// A station forwards to its own number (every call would loop back to it).
    #[error("{field}: a station cannot forward to its own number")]
    ForwardToSelf {
        /// The field's name.
        field: &'static str,
    },
    /// A number is outside its range.
    #[error("{field} must be between {min} and {max}, got {value}")]
    OutOfRange {
        /// The field's name.
        field: &'static str,
        /// Smallest allowed.
        min: u32,
        /// Largest allowed.
        max: u32,
        /// The value given.
        value: u32,
    },
    /// A number is below its smallest allowed value.
    #[error("{field} must be at least {min}, got {value}")]
    TooSmall {
        /// The field's name.
        field: &'static str,
        /// The smallest value allowed.
        min: u64,
        /// The value given.
        value: u64,
    },
}
