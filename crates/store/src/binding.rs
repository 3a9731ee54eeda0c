//! Registrar bindings (RFC 3261 §10.3): one row per address-of-record and Contact.

use std::collections::HashMap;
use std::net::SocketAddr;

use policy::Zone;
use sqlx::sqlite::{SqliteArguments, SqliteRow};
use sqlx::{Row, Sqlite, SqliteConnection};

use crate::error::StoreError;
use crate::Store;

/// One registered contact of a station, as the registrar keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct BindingRow {
    /// Address-of-record: the station's number.
    pub aor: String,
    /// The Contact URI, raw as received.
    pub contact: String,
    /// `+sip.instance` (RFC 5626), if given.
    pub instance: Option<String>,
    /// `reg-id` (RFC 5626), if given.
    pub reg_id: Option<u32>,
    /// Call-ID of the REGISTER that created or refreshed it.
    pub call_id: String,
    /// Its CSeq number.
    pub cseq: u32,
    /// Expiry time, seconds since the Unix epoch.
    pub expires_at_unix: i64,
    /// Zone of the listener it came in on.
    pub zone: Zone,
    /// Transport name: `udp`, `tcp`, `tls`, `ws`, `wss`.
    pub transport: String,
    /// Address the REGISTER was actually received from (after any NAT).
    pub source: SocketAddr,
    /// The local listener it came in on (replies and requests leave from there).
    pub local: SocketAddr,
    /// Connection/flow id for connection reuse (RFC 5626), if any.
    pub flow: Option<u64>,
    /// Contact `q` preference, if given.
    pub q: Option<f32>,
    /// User-Agent header, if given.
    pub user_agent: Option<String>,
    /// The Contact's host/port differ from `source` (device behind NAT without help).
    pub contact_mismatch: bool,
}

impl BindingRow {
    /// The primary key: (aor, contact).
    pub fn key(&self) -> (&str, &str) {
        (&self.aor, &self.contact)
    }
}

/// One change to the bindings table.
#[derive(Debug, Clone, PartialEq)]
// Upserts are nearly all of the traffic; boxing them would add an allocation per REGISTER.
#[allow(clippy::large_enum_variant)]
pub enum BindingOp {
    /// Insert, or replace the row with the same (aor, contact).
    Upsert(BindingRow),
    /// Delete the row with this (aor, contact), if any.
    Remove {
        /// Address-of-record.
        aor: String,
        /// Contact URI.
        contact: String,
    },
}

impl Store {
    /// Inserts or replaces bindings, in one transaction.
    pub async fn upsert_bindings(&self, rows: &[BindingRow]) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        // Later rows win over earlier ones with the same key, as with one statement per row.
        let mut last: HashMap<(&str, &str), &BindingRow> = HashMap::new();
        for row in rows {
            last.insert(row.key(), row);
        }
        upsert_many(&mut tx, &last.into_values().collect::<Vec<_>>()).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Deletes bindings by (aor, contact), in one transaction; unknown keys are ignored.
    pub async fn delete_bindings(&self, keys: &[(String, String)]) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        for (aor, contact) in keys {
            delete_binding(&mut tx, aor, contact).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Applies upserts and deletes in order, in one transaction.
    pub async fn apply_bindings(&self, ops: &[BindingOp]) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        for op in ops {
            apply(&mut tx, op).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Deletes bindings expired at `now_unix` (`expires_at_unix <= now_unix`) or whose station
    /// no longer exists, and returns the others ordered by (aor, contact).
    pub async fn load_bindings(&self, now_unix: i64) -> Result<Vec<BindingRow>, StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "DELETE FROM bindings WHERE expires_at <= ? \
             OR aor NOT IN (SELECT number FROM stations)",
        )
        .bind(now_unix)
        .execute(&mut *tx)
        .await?;
        let rows = sqlx::query(
            "SELECT aor, contact, instance, reg_id, call_id, cseq, expires_at, zone, transport, \
             source, local, flow, q, user_agent, contact_mismatch FROM bindings \
             ORDER BY aor, contact",
        )
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.iter().map(decode).collect()
    }
}

/// Applies one op inside the caller's transaction.
pub(crate) async fn apply(conn: &mut SqliteConnection, op: &BindingOp) -> Result<(), StoreError> {
    match op {
        BindingOp::Upsert(row) => upsert_binding(conn, row).await,
        BindingOp::Remove { aor, contact } => delete_binding(conn, aor, contact).await,
    }
}

/// Rows per multi-row INSERT (15 parameters each, far below SQLite's 32,766 limit). One
/// statement per chunk instead of per row cuts the round trips to sqlx's SQLite thread.
const CHUNK: usize = 64;
const COLUMNS: &str = "aor, contact, instance, reg_id, call_id, cseq, expires_at, zone, \
                       transport, source, local, flow, q, user_agent, contact_mismatch";

/// Inserts or replaces `rows` (keys must be distinct within a chunk) in the caller's transaction.
pub(crate) async fn upsert_many(
    conn: &mut SqliteConnection,
    rows: &[&BindingRow],
) -> Result<(), StoreError> {
    let chunks = rows.chunks_exact(CHUNK);
    let rest = chunks.remainder();
    if rows.len() >= CHUNK {
        let sql = upsert_sql(CHUNK);
        for chunk in chunks {
            let mut q = sqlx::query(&sql);
            for row in chunk {
                q = bind_row(q, row);
            }
            q.execute(&mut *conn).await?;
        }
    }
    if !rest.is_empty() {
        let sql = upsert_sql(1);
        for row in rest {
            bind_row(sqlx::query(&sql), row).execute(&mut *conn).await?;
        }
    }
    Ok(())
}

async fn upsert_binding(conn: &mut SqliteConnection, row: &BindingRow) -> Result<(), StoreError> {
    upsert_many(conn, &[row]).await
}

fn upsert_sql(rows: usize) -> String {
    let one = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
    format!(
        "INSERT INTO bindings ({COLUMNS}) VALUES {} \
         ON CONFLICT (aor, contact) DO UPDATE SET instance = excluded.instance, \
         reg_id = excluded.reg_id, call_id = excluded.call_id, cseq = excluded.cseq, \
         expires_at = excluded.expires_at, zone = excluded.zone, \
         transport = excluded.transport, source = excluded.source, local = excluded.local, \
         flow = excluded.flow, q = excluded.q, user_agent = excluded.user_agent, \
         contact_mismatch = excluded.contact_mismatch",
        vec![one; rows].join(", ")
    )
}

fn bind_row<'q>(
    q: sqlx::query::Query<'q, Sqlite, SqliteArguments<'q>>,
    row: &'q BindingRow,
) -> sqlx::query::Query<'q, Sqlite, SqliteArguments<'q>> {
    q.bind(&row.aor)
        .bind(&row.contact)
        .bind(&row.instance)
        .bind(row.reg_id.map(i64::from))
        .bind(&row.call_id)
        .bind(i64::from(row.cseq))
        .bind(row.expires_at_unix)
        .bind(row.zone.as_str())
        .bind(&row.transport)
        .bind(row.source.to_string())
        .bind(row.local.to_string())
        // Flow ids are opaque 64-bit values; stored bit for bit in SQLite's signed INTEGER.
        .bind(row.flow.map(|f| i64::from_ne_bytes(f.to_ne_bytes())))
        .bind(row.q.map(f64::from))
        .bind(&row.user_agent)
        .bind(row.contact_mismatch)
}

async fn delete_binding(
    conn: &mut SqliteConnection,
    aor: &str,
    contact: &str,
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM bindings WHERE aor = ? AND contact = ?")
        .bind(aor)
        .bind(contact)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

fn decode(row: &SqliteRow) -> Result<BindingRow, StoreError> {
    let zone: String = row.try_get("zone")?;
    let reg_id: Option<i64> = row.try_get("reg_id")?;
    let cseq: i64 = row.try_get("cseq")?;
    let flow: Option<i64> = row.try_get("flow")?;
    let q: Option<f64> = row.try_get("q")?;
    Ok(BindingRow {
        aor: row.try_get("aor")?,
        contact: row.try_get("contact")?,
        instance: row.try_get("instance")?,
        reg_id: reg_id
            .map(|r| u32::try_from(r).map_err(|_| corrupt("bindings.reg_id", r)))
            .transpose()?,
        call_id: row.try_get("call_id")?,
        cseq: u32::try_from(cseq).map_err(|_| corrupt("bindings.cseq", cseq))?,
        expires_at_unix: row.try_get("expires_at")?,
        zone: zone.parse().map_err(|_| corrupt("bindings.zone", &zone))?,
        transport: row.try_get("transport")?,
        source: socket_addr(row, "source")?,
        local: socket_addr(row, "local")?,
        flow: flow.map(|f| u64::from_ne_bytes(f.to_ne_bytes())),
        // Written from an f32, so narrowing back is exact.
        #[allow(clippy::cast_possible_truncation)]
        q: q.map(|q| q as f32),
        user_agent: row.try_get("user_agent")?,
        contact_mismatch: row.try_get("contact_mismatch")?,
    })
}

fn socket_addr(row: &SqliteRow, column: &'static str) -> Result<SocketAddr, StoreError> {
    let text: String = row.try_get(column)?;
    text.parse().map_err(|_| StoreError::Corrupt {
        column: if column == "source" {
            "bindings.source"
        } else {
            "bindings.local"
        },
        value: text,
    })
}

fn corrupt(column: &'static str, value: impl ToString) -> StoreError {
    StoreError::Corrupt {
        column,
        value: value.to_string(),
    }
}
