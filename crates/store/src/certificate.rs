//! Certificates of [`Store`]: the built-in CA's, the server certificates it issued and
//! imported ones, with the one active for SIP over TLS.
//!
//! The store does not parse certificates (crate `pki` does, before calling it); it keeps what
//! it is given and enforces what must hold across rows: unique names, serials never reused
//! by this installation (even after a removal), at most one active certificate, and a
//! refused write leaving nothing behind (each write is one transaction).

use std::fmt;

use sqlx::sqlite::SqliteRow;
use sqlx::Row;

use crate::error::StoreError;
use crate::Store;

/// Where a certificate came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertKind {
    /// A root CA made by this installation.
    Ca,
    /// A server certificate issued by one of our CAs.
    Server,
    /// Brought in from a PKCS#12 or PEM file.
    Imported,
}

impl CertKind {
    /// How the table (and listings) write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ca => "ca",
            Self::Server => "server",
            Self::Imported => "imported",
        }
    }

    fn parse(s: &str) -> Result<Self, StoreError> {
        match s {
            "ca" => Ok(Self::Ca),
            "server" => Ok(Self::Server),
            "imported" => Ok(Self::Imported),
            other => Err(StoreError::Corrupt {
                column: "certificates.kind",
                value: other.to_owned(),
            }),
        }
    }
}

impl fmt::Display for CertKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A certificate to store, as checked by crate `pki`.
#[derive(Clone)]
pub struct NewCertificate {
    /// Unique name (1 to 64 characters, no blanks: `pki::CertName`).
    pub name: String,
    /// Where it came from. `Ca` and `Server` serials are recorded for good.
    pub kind: CertKind,
    /// Serial, lower-case hex of the magnitude.
    pub serial: String,
    /// Subject DN as text.
    pub subject: String,
    /// Issuer DN as text.
    pub issuer: String,
    /// notBefore, Unix seconds.
    pub not_before: i64,
    /// notAfter, Unix seconds.
    pub not_after: i64,
    /// SHA-256 fingerprint (the same certificate is never stored twice).
    pub sha256: String,
    /// basicConstraints cA.
    pub is_ca: bool,
    /// The certificate, DER.
    pub cert_der: Vec<u8>,
    /// The certificates above it, issuer first, DER.
    pub chain_der: Vec<Vec<u8>>,
    /// Its private key, PKCS#8 DER, if we have it.
    pub key_pkcs8: Option<Vec<u8>>,
    /// Name of the stored CA that issued it (required for `Server`).
    pub issuer_name: Option<String>,
    /// Make it the active SIP-TLS certificate (the previous one stops being active).
    pub active: bool,
    /// When it was stored, Unix seconds.
    pub created_at: i64,
}

impl fmt::Debug for NewCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewCertificate")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("serial", &self.serial)
            .field("subject", &self.subject)
            .field("key_pkcs8", &self.key_pkcs8.as_ref().map(|_| "***"))
            .finish_non_exhaustive()
    }
}

/// A stored certificate's facts, without its DER or key (listings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateRow {
    /// Row id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Where it came from.
    pub kind: CertKind,
    /// Serial, lower-case hex.
    pub serial: String,
    /// Subject DN.
    pub subject: String,
    /// Issuer DN.
    pub issuer: String,
    /// notBefore, Unix seconds.
    pub not_before: i64,
    /// notAfter, Unix seconds.
    pub not_after: i64,
    /// SHA-256 fingerprint.
    pub sha256: String,
    /// basicConstraints cA.
    pub is_ca: bool,
    /// Whether the private key is stored.
    pub has_key: bool,
    /// Name of the stored CA that issued it.
    pub issuer_name: Option<String>,
    /// The active SIP-TLS certificate.
    pub active: bool,
    /// When it was stored, Unix seconds.
    pub created_at: i64,
}

/// A stored certificate with its DER, chain and key.
#[derive(Clone)]
pub struct StoredCertificate {
    /// The facts.
    pub row: CertificateRow,
    /// The certificate, DER.
    pub cert_der: Vec<u8>,
    /// The certificates above it, issuer first, DER.
    pub chain_der: Vec<Vec<u8>>,
    /// Its private key, PKCS#8 DER.
    pub key_pkcs8: Option<Vec<u8>>,
}

impl fmt::Debug for StoredCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredCertificate")
            .field("row", &self.row)
            .field("key_pkcs8", &self.key_pkcs8.as_ref().map(|_| "***"))
            .finish_non_exhaustive()
    }
}

const ROW_COLUMNS: &str = "c.id, c.name, c.kind, c.serial, c.subject, c.issuer, c.not_before, \
     c.not_after, c.sha256, c.is_ca, c.key_pkcs8 IS NOT NULL AS has_key, i.name AS issuer_name, \
     c.active, c.created_at";

impl Store {
    /// Whether this installation ever issued a certificate with this serial (lower-case hex).
    pub async fn serial_taken(&self, serial: &str) -> Result<Option<String>, StoreError> {
        let name: Option<String> =
            sqlx::query_scalar("SELECT first_name FROM issued_serials WHERE serial = ?")
                .bind(serial)
                .fetch_optional(&self.pool)
                .await?;
        Ok(name)
    }

    /// Stores a certificate in one transaction: a refusal (name taken, serial used before,
    /// same certificate already stored, unknown issuer) changes nothing.
    pub async fn add_certificate(
        &self,
        new: &NewCertificate,
    ) -> Result<CertificateRow, StoreError> {
        let mut tx = self.begin_write().await?;
        let taken: Option<i64> = sqlx::query_scalar("SELECT id FROM certificates WHERE name = ?")
            .bind(&new.name)
            .fetch_optional(&mut *tx)
            .await?;
        if taken.is_some() {
            return Err(StoreError::DuplicateCertificateName(new.name.clone()));
        }
        if matches!(new.kind, CertKind::Ca | CertKind::Server) {
            let first: Option<String> =
                sqlx::query_scalar("SELECT first_name FROM issued_serials WHERE serial = ?")
                    .bind(&new.serial)
                    .fetch_optional(&mut *tx)
                    .await?;
            if let Some(first_name) = first {
                return Err(StoreError::SerialTaken {
                    serial: new.serial.clone(),
                    first_name,
                });
            }
        }
        let same: Option<String> =
            sqlx::query_scalar("SELECT name FROM certificates WHERE sha256 = ?")
                .bind(&new.sha256)
                .fetch_optional(&mut *tx)
                .await?;
        if let Some(existing) = same {
            return Err(StoreError::DuplicateCertificate { existing });
        }
        let issuer_id = match &new.issuer_name {
            Some(name) => {
                let id: Option<i64> =
                    sqlx::query_scalar("SELECT id FROM certificates WHERE name = ?")
                        .bind(name)
                        .fetch_optional(&mut *tx)
                        .await?;
                Some(id.ok_or_else(|| StoreError::NoSuchCertificate(name.clone()))?)
            }
            None => None,
        };
        if new.active {
            check_usable(&new.name, new.is_ca, new.key_pkcs8.is_some())?;
            sqlx::query("UPDATE certificates SET active = 0 WHERE active = 1")
                .execute(&mut *tx)
                .await?;
        }
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO certificates (name, kind, serial, subject, issuer, not_before, \
             not_after, sha256, cert_der, chain_der, key_pkcs8, issuer_id, is_ca, active, \
             created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(&new.name)
        .bind(new.kind.as_str())
        .bind(&new.serial)
        .bind(&new.subject)
        .bind(&new.issuer)
        .bind(new.not_before)
        .bind(new.not_after)
        .bind(&new.sha256)
        .bind(&new.cert_der)
        .bind(new.chain_der.concat())
        .bind(&new.key_pkcs8)
        .bind(issuer_id)
        .bind(new.is_ca)
        .bind(new.active)
        .bind(new.created_at)
        .fetch_one(&mut *tx)
        .await?;
        let row = fetch_row(&mut *tx, Lookup::Id(id)).await?;
        tx.commit().await?;
        row.ok_or_else(|| StoreError::NoSuchCertificate(new.name.clone()))
    }

    /// Every stored certificate, oldest first.
    pub async fn certificates(&self) -> Result<Vec<CertificateRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {ROW_COLUMNS} FROM certificates c LEFT JOIN certificates i \
             ON i.id = c.issuer_id ORDER BY c.id"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(row_from).collect()
    }

    /// One certificate by name, with its DER, chain and key.
    pub async fn certificate(&self, name: &str) -> Result<Option<StoredCertificate>, StoreError> {
        self.stored_where(Lookup::Name(name)).await
    }

    /// The active SIP-TLS certificate, if one is chosen.
    pub async fn active_certificate(&self) -> Result<Option<StoredCertificate>, StoreError> {
        self.stored_where(Lookup::Active).await
    }

    /// Makes `name` the active SIP-TLS certificate (it needs its private key and must not be a
    /// CA). Bumps [`Store::generation`] when the choice changes, so a running server notices.
    pub async fn use_certificate(&self, name: &str) -> Result<CertificateRow, StoreError> {
        let mut tx = self.begin_write().await?;
        let Some(row) = fetch_row(&mut *tx, Lookup::Name(name)).await? else {
            return Err(StoreError::NoSuchCertificate(name.to_owned()));
        };
        check_usable(name, row.is_ca, row.has_key)?;
        if !row.active {
            sqlx::query("UPDATE certificates SET active = 0 WHERE active = 1")
                .execute(&mut *tx)
                .await?;
            sqlx::query("UPDATE certificates SET active = 1 WHERE id = ?")
                .bind(row.id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(CertificateRow {
            active: true,
            ..row
        })
    }

    /// Removes a certificate. The active one and a CA that issued stored certificates are
    /// refused. Its serial stays recorded: it is never issued again.
    pub async fn remove_certificate(&self, name: &str) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        let Some(row) = fetch_row(&mut *tx, Lookup::Name(name)).await? else {
            return Err(StoreError::NoSuchCertificate(name.to_owned()));
        };
        if row.active {
            return Err(StoreError::CertificateInUse {
                name: name.to_owned(),
                reason: "it is the active SIP-TLS certificate; choose another first",
            });
        }
        let issued: i64 =
            sqlx::query_scalar("SELECT count(*) FROM certificates WHERE issuer_id = ?")
                .bind(row.id)
                .fetch_one(&mut *tx)
                .await?;
        if issued > 0 {
            return Err(StoreError::CertificateInUse {
                name: name.to_owned(),
                reason: "stored certificates were issued by it; remove them first",
            });
        }
        sqlx::query("DELETE FROM certificates WHERE id = ?")
            .bind(row.id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn stored_where(
        &self,
        lookup: Lookup<'_>,
    ) -> Result<Option<StoredCertificate>, StoreError> {
        let sql = format!(
            "SELECT {ROW_COLUMNS}, c.cert_der, c.chain_der, c.key_pkcs8 FROM certificates c \
             LEFT JOIN certificates i ON i.id = c.issuer_id WHERE {}",
            lookup.condition()
        );
        let row = lookup
            .bind(sqlx::query(&sql))
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let chain: Vec<u8> = row.try_get("chain_der")?;
        Ok(Some(StoredCertificate {
            row: row_from(&row)?,
            cert_der: row.try_get("cert_der")?,
            chain_der: split_der(&chain)?,
            key_pkcs8: row.try_get("key_pkcs8")?,
        }))
    }
}

fn check_usable(name: &str, is_ca: bool, has_key: bool) -> Result<(), StoreError> {
    if is_ca {
        return Err(StoreError::CertificateNotUsable {
            name: name.to_owned(),
            reason: "it is a CA certificate; issue a server certificate with it",
        });
    }
    if !has_key {
        return Err(StoreError::CertificateNotUsable {
            name: name.to_owned(),
            reason: "its private key is not stored",
        });
    }
    Ok(())
}

/// Which certificate a query is about.
#[derive(Debug, Clone, Copy)]
enum Lookup<'a> {
    Id(i64),
    Name(&'a str),
    Active,
}

impl<'a> Lookup<'a> {
    fn condition(self) -> &'static str {
        match self {
            Self::Id(_) => "c.id = ?",
            Self::Name(_) => "c.name = ?",
            Self::Active => "c.active = 1",
        }
    }

    fn bind<'q>(
        self,
        query: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>,
    ) -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>
    where
        'a: 'q,
    {
        match self {
            Self::Id(id) => query.bind(id),
            Self::Name(name) => query.bind(name),
            Self::Active => query,
        }
    }
}

async fn fetch_row<'c>(
    conn: impl sqlx::Executor<'c, Database = sqlx::Sqlite>,
    lookup: Lookup<'_>,
) -> Result<Option<CertificateRow>, StoreError> {
    let sql = format!(
        "SELECT {ROW_COLUMNS} FROM certificates c LEFT JOIN certificates i \
         ON i.id = c.issuer_id WHERE {}",
        lookup.condition()
    );
    let row = lookup.bind(sqlx::query(&sql)).fetch_optional(conn).await?;
    row.as_ref().map(row_from).transpose()
}

fn row_from(row: &SqliteRow) -> Result<CertificateRow, StoreError> {
    Ok(CertificateRow {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        kind: CertKind::parse(&row.try_get::<String, _>("kind")?)?,
        serial: row.try_get("serial")?,
        subject: row.try_get("subject")?,
        issuer: row.try_get("issuer")?,
        not_before: row.try_get("not_before")?,
        not_after: row.try_get("not_after")?,
        sha256: row.try_get("sha256")?,
        is_ca: row.try_get("is_ca")?,
        has_key: row.try_get("has_key")?,
        issuer_name: row.try_get("issuer_name")?,
        active: row.try_get("active")?,
        created_at: row.try_get("created_at")?,
    })
}

/// DER values back to back, split by their length headers (X.690 §8.1.3).
fn split_der(mut bytes: &[u8]) -> Result<Vec<Vec<u8>>, StoreError> {
    let corrupt = || StoreError::Corrupt {
        column: "certificates.chain_der",
        value: "a truncated DER value".to_owned(),
    };
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let first = *bytes.get(1).ok_or_else(corrupt)?;
        let (header, len) = if first < 0x80 {
            (2, usize::from(first))
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 {
                return Err(corrupt());
            }
            let len_bytes = bytes.get(2..2 + n).ok_or_else(corrupt)?;
            let len = len_bytes
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
            (2 + n, len)
        };
        let end = header.checked_add(len).ok_or_else(corrupt)?;
        let value = bytes.get(..end).ok_or_else(corrupt)?;
        out.push(value.to_vec());
        bytes = &bytes[end..];
    }
    Ok(out)
}
