//! Station operations of [`Store`].

use std::collections::HashMap;

use policy::{check_password, check_sbc_flag, PasswordState};
use sip::digest::Algorithm;
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection};

use crate::error::StoreError;
use crate::station::{
    compute_ha1, validate_class_name, validate_forwarding, validate_number, validate_password,
    validate_realm, validate_text, Forwarding, Ha1, NewStation, PasswordChange, Station,
    StationChanges, MAX_DISPLAY_NAME,
};
use crate::Store;

const STATION_COLUMNS: &str = "number, display_name, device_type, auth_enabled, sbc_allowed, \
                               cos_internal, cos_external, forward_always, forward_busy, \
                               forward_no_answer, no_answer_secs, payload_security, \
                               password_strong";
/// Numeric order for digit strings: shorter first, then lexical.
const BY_NUMBER: &str = "ORDER BY length(number), number";

impl Store {
    /// Creates a station; its password (if any) is stored as HA1 values for `realm`.
    ///
    /// Fails with [`StoreError::SbcRefused`] (listing every broken rule) if `sbc_allowed` is
    /// set without authentication or without a strong password.
    pub async fn add_station(&self, new: NewStation, realm: &str) -> Result<Station, StoreError> {
        validate_realm(realm)?;
        let mut tx = self.begin_write().await?;
        insert_station(&mut tx, &new, realm).await?;
        let station = select_station(&mut tx, &new.number).await?;
        tx.commit().await?;
        station.ok_or(StoreError::NoSuchStation(new.number))
    }

    /// Creates many stations in one transaction: all or none. Returns how many were added.
    ///
    /// A failing entry is reported as [`StoreError::BulkEntry`] with its position.
    pub async fn bulk_add(&self, new: Vec<NewStation>, realm: &str) -> Result<usize, StoreError> {
        validate_realm(realm)?;
        let mut tx = self.begin_write().await?;
        for (index, station) in new.iter().enumerate() {
            insert_station(&mut tx, station, realm)
                .await
                .map_err(|e| StoreError::BulkEntry {
                    index,
                    number: station.number.clone(),
                    source: Box::new(e),
                })?;
        }
        tx.commit().await?;
        Ok(new.len())
    }

    /// Applies `changes` to the station `number`; a new password is hashed for `realm` and
    /// replaces every stored HA1. The SBC rule is checked against the resulting station.
    pub async fn update_station(
        &self,
        number: &str,
        changes: StationChanges,
        realm: &str,
    ) -> Result<Station, StoreError> {
        validate_realm(realm)?;
        if let Some(name) = &changes.display_name {
            validate_text("display name", name, MAX_DISPLAY_NAME)?;
        }
        if let PasswordChange::Set(pw) = &changes.password {
            validate_password(pw)?;
        }
        let mut tx = self.begin_write().await?;
        let Some(current) = select_station(&mut tx, number).await? else {
            return Err(StoreError::NoSuchStation(number.to_owned()));
        };
        let cos_internal = changes
            .cos_internal
            .clone()
            .unwrap_or(current.cos_internal.clone());
        let cos_external = changes
            .cos_external
            .clone()
            .unwrap_or(current.cos_external.clone());
        validate_classes(&cos_internal, &cos_external)?;
        let old = current.forwarding.clone();
        let forwarding = Forwarding {
            always: changes.forward_always.clone().unwrap_or(old.always),
            busy: changes.forward_busy.clone().unwrap_or(old.busy),
            no_answer: changes.forward_no_answer.clone().unwrap_or(old.no_answer),
            no_answer_secs: changes.no_answer_secs.unwrap_or(old.no_answer_secs),
        };
        validate_forwarding(number, &forwarding)?;
        let auth_enabled = changes.auth_enabled.unwrap_or(current.auth_enabled);
        let sbc_allowed = changes.sbc_allowed.unwrap_or(current.sbc_allowed);
        let (password_state, password_strong) = match &changes.password {
            PasswordChange::Keep if current.has_password() => (
                PasswordState::Stored {
                    strong: current.password_strong,
                },
                current.password_strong,
            ),
            PasswordChange::Keep | PasswordChange::Clear => (PasswordState::Missing, false),
            PasswordChange::Set(pw) => (
                PasswordState::New(pw.expose()),
                check_password(number, pw.expose()).is_ok(),
            ),
        };
        if sbc_allowed {
            check_sbc_flag(number, auth_enabled, password_state).map_err(|source| {
                StoreError::SbcRefused {
                    number: number.to_owned(),
                    source,
                }
            })?;
        }
        sqlx::query(
            "UPDATE stations SET display_name = ?, device_type = ?, auth_enabled = ?, \
             sbc_allowed = ?, cos_internal = ?, cos_external = ?, forward_always = ?, \
             forward_busy = ?, forward_no_answer = ?, no_answer_secs = ?, payload_security = ?, \
             password_strong = ? WHERE number = ?",
        )
        .bind(
            changes
                .display_name
                .as_ref()
                .unwrap_or(&current.display_name),
        )
        .bind(changes.device_type.unwrap_or(current.device_type).as_str())
        .bind(auth_enabled)
        .bind(sbc_allowed)
        .bind(&cos_internal)
        .bind(&cos_external)
        .bind(&forwarding.always)
        .bind(&forwarding.busy)
        .bind(&forwarding.no_answer)
        .bind(i64::from(forwarding.no_answer_secs))
        .bind(changes.payload_security.unwrap_or(current.payload_security))
        .bind(password_strong)
        .bind(number)
        .execute(&mut *tx)
        .await?;
        match &changes.password {
            PasswordChange::Keep => {}
            PasswordChange::Clear => delete_credentials(&mut tx, number).await?,
            PasswordChange::Set(pw) => {
                delete_credentials(&mut tx, number).await?;
                insert_credentials(&mut tx, &compute_ha1(number, realm, pw), number).await?;
            }
        }
        let station = select_station(&mut tx, number).await?;
        tx.commit().await?;
        station.ok_or_else(|| StoreError::NoSuchStation(number.to_owned()))
    }

    /// Removes a station, its credentials and its bindings.
    pub async fn remove_station(&self, number: &str) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM bindings WHERE aor = ?")
            .bind(number)
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query("DELETE FROM stations WHERE number = ?")
            .bind(number)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NoSuchStation(number.to_owned()));
        }
        tx.commit().await?;
        Ok(())
    }

    /// The station `number` with its credentials, if it exists.
    pub async fn station(&self, number: &str) -> Result<Option<Station>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let station = select_station(&mut tx, number).await?;
        tx.commit().await?;
        Ok(station)
    }

    /// Every station with its credentials, in numeric order.
    pub async fn list_stations(&self) -> Result<Vec<Station>, StoreError> {
        self.load_station_cache().await
    }

    /// Every station with its HA1 values, read in one consistent snapshot with two queries
    /// (what the server reloads when [`Store::generation`] changes).
    pub async fn load_station_cache(&self) -> Result<Vec<Station>, StoreError> {
        // One read transaction: both queries see the same snapshot.
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query(&format!(
            "SELECT {STATION_COLUMNS} FROM stations {BY_NUMBER}"
        ))
        .fetch_all(&mut *tx)
        .await?;
        let creds = sqlx::query(
            "SELECT number, realm, algorithm, ha1 FROM station_credentials \
             ORDER BY number, realm, algorithm",
        )
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let mut by_number: HashMap<String, Vec<Ha1>> = HashMap::new();
        for row in &creds {
            let number: String = row.try_get("number")?;
            by_number.entry(number).or_default().push(decode_ha1(row)?);
        }
        rows.iter()
            .map(|row| {
                let mut station = decode_station(row)?;
                station.ha1 = by_number.remove(&station.number).unwrap_or_default();
                Ok(station)
            })
            .collect()
    }
}

/// Validates and inserts one station with its credentials, inside the caller's transaction.
async fn insert_station(
    conn: &mut SqliteConnection,
    new: &NewStation,
    realm: &str,
) -> Result<(), StoreError> {
    validate_number("number", &new.number)?;
    validate_text("display name", &new.display_name, MAX_DISPLAY_NAME)?;
    if let Some(pw) = &new.password {
        validate_password(pw)?;
    }
    validate_classes(&new.cos_internal, &new.cos_external)?;
    validate_forwarding(&new.number, &new.forwarding)?;
    if new.sbc_allowed {
        let state = match &new.password {
            Some(pw) => PasswordState::New(pw.expose()),
            None => PasswordState::Missing,
        };
        check_sbc_flag(&new.number, new.auth_enabled, state).map_err(|source| {
            StoreError::SbcRefused {
                number: new.number.clone(),
                source,
            }
        })?;
    }
    let strong = new
        .password
        .as_ref()
        .is_some_and(|pw| check_password(&new.number, pw.expose()).is_ok());
    let inserted = sqlx::query(&format!(
        "INSERT INTO stations ({STATION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    ))
    .bind(&new.number)
    .bind(&new.display_name)
    .bind(new.device_type.as_str())
    .bind(new.auth_enabled)
    .bind(new.sbc_allowed)
    .bind(&new.cos_internal)
    .bind(&new.cos_external)
    .bind(&new.forwarding.always)
    .bind(&new.forwarding.busy)
    .bind(&new.forwarding.no_answer)
    .bind(i64::from(new.forwarding.no_answer_secs))
    .bind(new.payload_security)
    .bind(strong)
    .execute(&mut *conn)
    .await;
    match inserted {
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
            return Err(StoreError::DuplicateStation(new.number.clone()))
        }
        other => other?,
    };
    if let Some(pw) = &new.password {
        insert_credentials(conn, &compute_ha1(&new.number, realm, pw), &new.number).await?;
    }
    Ok(())
}

fn validate_classes(
    internal: &Option<String>,
    external: &Option<String>,
) -> Result<(), StoreError> {
    if let Some(name) = internal {
        validate_class_name("class of service (internal zone)", name)?;
    }
    if let Some(name) = external {
        validate_class_name("class of service (external zone)", name)?;
    }
    Ok(())
}

async fn insert_credentials(
    conn: &mut SqliteConnection,
    ha1: &[Ha1],
    number: &str,
) -> Result<(), StoreError> {
    for h in ha1 {
        sqlx::query(
            "INSERT INTO station_credentials (number, realm, algorithm, ha1) VALUES (?, ?, ?, ?)",
        )
        .bind(number)
        .bind(&h.realm)
        .bind(h.algorithm.as_str())
        .bind(&h.hex)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

async fn delete_credentials(conn: &mut SqliteConnection, number: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM station_credentials WHERE number = ?")
        .bind(number)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

async fn select_station(
    conn: &mut SqliteConnection,
    number: &str,
) -> Result<Option<Station>, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {STATION_COLUMNS} FROM stations WHERE number = ?"
    ))
    .bind(number)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let mut station = decode_station(&row)?;
    let creds = sqlx::query(
        "SELECT realm, algorithm, ha1 FROM station_credentials WHERE number = ? \
         ORDER BY realm, algorithm",
    )
    .bind(number)
    .fetch_all(&mut *conn)
    .await?;
    station.ha1 = creds.iter().map(decode_ha1).collect::<Result<_, _>>()?;
    Ok(Some(station))
}

fn decode_station(row: &SqliteRow) -> Result<Station, StoreError> {
    let device_type: String = row.try_get("device_type")?;
    let secs: i64 = row.try_get("no_answer_secs")?;
    Ok(Station {
        number: row.try_get("number")?,
        display_name: row.try_get("display_name")?,
        device_type: device_type.parse().map_err(|_| StoreError::Corrupt {
            column: "stations.device_type",
            value: device_type,
        })?,
        auth_enabled: row.try_get("auth_enabled")?,
        sbc_allowed: row.try_get("sbc_allowed")?,
        cos_internal: row.try_get("cos_internal")?,
        cos_external: row.try_get("cos_external")?,
        forwarding: Forwarding {
            always: row.try_get("forward_always")?,
            busy: row.try_get("forward_busy")?,
            no_answer: row.try_get("forward_no_answer")?,
            no_answer_secs: u32::try_from(secs).map_err(|_| StoreError::Corrupt {
                column: "stations.no_answer_secs",
                value: secs.to_string(),
            })?,
        },
        payload_security: row.try_get("payload_security")?,
        password_strong: row.try_get("password_strong")?,
        ha1: Vec::new(),
    })
}

fn decode_ha1(row: &SqliteRow) -> Result<Ha1, StoreError> {
    let algorithm: String = row.try_get("algorithm")?;
    Ok(Ha1 {
        realm: row.try_get("realm")?,
        algorithm: algorithm
            .parse::<Algorithm>()
            .map_err(|_| StoreError::Corrupt {
                column: "station_credentials.algorithm",
                value: algorithm,
            })?,
        hex: row.try_get("ha1")?,
    })
}
