//! System settings of [`Store`]: a key/value table with typed helpers for the known keys.
//!
//! Values are text so a new setting needs no migration; each typed helper parses and checks its
//! own value, and reports a value it cannot read back as [`StoreError::Corrupt`].

use sqlx::Row;

use crate::error::{FieldError, StoreError};
use crate::Store;

/// Key of the office's upstream bandwidth, kbit/s (1 kbit = 1,000 bit): the input of the
/// simultaneous-Internet-calls figure (`policy::capacity`).
pub const UPSTREAM_KBPS: &str = "upstream_kbps";
/// Key of the codec the Internet-call figure is sized for ("g711", "g722" or "opus").
pub const UPSTREAM_CODEC: &str = "upstream_codec";
/// Longest setting key, characters (the table's CHECK says the same).
pub const MAX_SETTING_KEY: usize = 64;
/// Longest setting value, characters.
pub const MAX_SETTING_VALUE: usize = 4096;

impl Store {
    /// The value of setting `key`, `None` when it was never set (or was removed).
    pub async fn setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT value FROM settings WHERE key = ?")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(row) => Some(row.try_get("value")?),
            None => None,
        })
    }

    /// Sets `key` to `value`. A real change bumps [`Store::generation`], so a running server
    /// notices it with the poll it already does for stations.
    pub async fn set_setting(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.set_settings(&[(key, Some(value))]).await
    }

    /// Removes `key` (back to its default). Removing a key that is not set is not an error.
    pub async fn remove_setting(&self, key: &str) -> Result<(), StoreError> {
        self.set_settings(&[(key, None)]).await
    }

    /// Sets (`Some`) or removes (`None`) several settings in one transaction: a reader never
    /// sees half of a change that belongs together (a bandwidth and the codec it is sized for).
    pub async fn set_settings(&self, changes: &[(&str, Option<&str>)]) -> Result<(), StoreError> {
        for (key, value) in changes {
            validate_key(key)?;
            if let Some(value) = value {
                validate_value(value)?;
            }
        }
        let mut tx = self.begin_write().await?;
        for (key, value) in changes {
            match value {
                Some(value) => {
                    sqlx::query(
                        "INSERT INTO settings (key, value) VALUES (?, ?) \
                         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    )
                    .bind(key)
                    .bind(value)
                    .execute(&mut *tx)
                    .await?;
                }
                None => {
                    sqlx::query("DELETE FROM settings WHERE key = ?")
                        .bind(key)
                        .execute(&mut *tx)
                        .await?;
                }
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// The office's upstream bandwidth in kbit/s, `None` when not set up yet.
    pub async fn upstream_kbps(&self) -> Result<Option<u32>, StoreError> {
        let Some(text) = self.setting(UPSTREAM_KBPS).await? else {
            return Ok(None);
        };
        match text.parse::<u32>() {
            Ok(kbps) if kbps > 0 => Ok(Some(kbps)),
            _ => Err(StoreError::Corrupt {
                column: "settings.upstream_kbps",
                value: text,
            }),
        }
    }

    /// Stores the upstream bandwidth in kbit/s (`None` removes it: no Internet-call limit
    /// beyond the relay's channel pool). Zero is refused: a line that carries nothing is a typo,
    /// and the relay has no way to express "no Internet calls".
    pub async fn set_upstream_kbps(&self, kbps: Option<u32>) -> Result<(), StoreError> {
        match kbps {
            Some(0) => Err(FieldError::TooSmall {
                field: UPSTREAM_KBPS,
                min: 1,
                value: 0,
            }
            .into()),
            Some(kbps) => self.set_setting(UPSTREAM_KBPS, &kbps.to_string()).await,
            None => self.remove_setting(UPSTREAM_KBPS).await,
        }
    }
}

fn validate_key(key: &str) -> Result<(), StoreError> {
    if key.is_empty() {
        return Err(FieldError::Empty {
            field: "setting key",
        }
        .into());
    }
    if key.chars().count() > MAX_SETTING_KEY {
        return Err(FieldError::TooLong {
            field: "setting key",
            max: MAX_SETTING_KEY,
        }
        .into());
    }
    if key.chars().any(char::is_control) {
        return Err(FieldError::ControlCharacter {
            field: "setting key",
        }
        .into());
    }
    Ok(())
}

fn validate_value(value: &str) -> Result<(), StoreError> {
    if value.chars().count() > MAX_SETTING_VALUE {
        return Err(FieldError::TooLong {
            field: "setting value",
            max: MAX_SETTING_VALUE,
        }
        .into());
    }
    Ok(())
}
