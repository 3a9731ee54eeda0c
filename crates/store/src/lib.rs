//! Persistence of homeline in SQLite (via sqlx, runtime queries only).
//!
//! - **Stations** with their digest credentials: only HA1 values per realm and algorithm
//!   (MD5, SHA-256) are stored, never a password. The SBC-flag rule of the policy crate is
//!   enforced here, so no caller can store a station that breaks it.
//! - **Classes of service** per station and zone, by name (the classes themselves live in the
//!   configuration file and the policy crate), and **call forwarding** (always, busy, no
//!   answer) with its targets as dialled.
//! - **A change counter** (`stations_generation`, bumped by triggers on every change to stations
//!   or credentials): the server polls [`Store::generation`] cheaply and reloads its station
//!   cache with [`Store::load_station_cache`] when another process (the CLI) changed something.
//! - **Settings** (a key/value table with typed helpers such as [`Store::upstream_kbps`]): a
//!   change bumps the same counter, so the server notices it with the poll it already does.
//! - **Certificates** of the built-in CA and imported ones, with the one active for SIP over
//!   TLS (at most one, enforced by the schema; choosing it bumps the change counter). Serials
//!   this installation issued are recorded for good. Private keys are PKCS#8 in the clear:
//!   the database files are kept owner-only (mode 0600).
//! - **Registrar bindings**, written behind the registrar's back by a [`BindingWriter`] that
//!   batches and coalesces changes, so registering never waits for the disk.
//!
//! The database is one file, `homeline.sqlite`, in the data folder, in WAL mode with
//! `synchronous=NORMAL`: a committed transaction survives the process being killed (not
//! necessarily a power cut).

mod binding;
mod certificate;
mod error;
mod secret;
mod settings;
mod station;
mod stations;
mod writer;

use std::path::Path;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

pub use binding::{BindingOp, BindingRow};
pub use certificate::{CertKind, CertificateRow, NewCertificate, StoredCertificate};
pub use error::{FieldError, StoreError};
pub use secret::Secret;
pub use settings::{MAX_SETTING_KEY, MAX_SETTING_VALUE, UPSTREAM_CODEC, UPSTREAM_KBPS};
pub use station::{
    validate_number, DeviceType, DeviceTypeParseError, Forwarding, Ha1, NewStation, PasswordChange,
    Station, StationChanges, DEFAULT_NO_ANSWER_SECS, MAX_DISPLAY_NAME, MAX_FORWARD_DIGITS,
    MAX_NUMBER_DIGITS, MAX_PASSWORD, MAX_REALM, NO_ANSWER_SECS,
};
pub use writer::BindingWriter;

/// Name of the database file inside the data folder.
pub const DB_FILE: &str = "homeline.sqlite";
/// How long a statement waits for another writer (another process, e.g. the CLI) to finish.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Pool size: SQLite has one writer at a time; the rest serve concurrent reads.
const MAX_CONNECTIONS: u32 = 4;

/// Handle on the database; cheap to clone (a connection pool).
#[derive(Debug, Clone)]
pub struct Store {
    pool: SqlitePool,
}

impl Store {
    /// Opens (creating if needed) `data_dir/homeline.sqlite` and brings its schema up to date.
    pub async fn open(data_dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|source| StoreError::DataDir {
            path: data_dir.to_owned(),
            source,
        })?;
        restrict_permissions(data_dir)?;
        let options = SqliteConnectOptions::new()
            .filename(data_dir.join(DB_FILE))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .connect_with(options)
            .await?;
        sqlx::migrate!().run(&pool).await?;
        Ok(Store { pool })
    }

    /// The change counter: differs from the last value seen iff stations, their credentials or
    /// settings changed since (in this process or another). One indexed row read.
    pub async fn generation(&self) -> Result<u64, StoreError> {
        let value: i64 = sqlx::query_scalar("SELECT value FROM stations_generation WHERE id = 1")
            .fetch_one(&self.pool)
            .await?;
        u64::try_from(value).map_err(|_| StoreError::Corrupt {
            column: "stations_generation.value",
            value: value.to_string(),
        })
    }

    /// Closes every connection, waiting for running statements. Flush writers first.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Starts a write transaction that takes the write lock at once (`BEGIN IMMEDIATE`), so it
    /// waits on `busy_timeout` instead of failing when it upgrades from reading to writing.
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, StoreError> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }
}

/// Private keys live in the database: create it owner-only (SQLite gives the -wal and -shm
/// files the database file's mode) and tighten an existing one.
#[cfg(unix)]
fn restrict_permissions(data_dir: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let io = |source| StoreError::DataDir {
        path: data_dir.to_owned(),
        source,
    };
    let db = data_dir.join(DB_FILE);
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&db)
        .map_err(io)?;
    for suffix in ["", "-wal", "-shm"] {
        let path = data_dir.join(format!("{DB_FILE}{suffix}"));
        if path.exists() {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
        }
    }
    Ok(())
}

#[cfg(not(unix))]
fn restrict_permissions(_data_dir: &Path) -> Result<(), StoreError> {
    Ok(())
}

#[cfg(test)]
mod tests;
