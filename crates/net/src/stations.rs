//! The station cache: the registrar reads credentials from memory, refreshed from the store when
//! its generation counter moves (the CLI may change stations while the server runs).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use sip::digest::Algorithm;
use sip_proto::registrar::StationCredentials;
use store::Store;
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::Inbound;

/// Credentials by station number, shared read-only.
pub(crate) type StationCache = Arc<HashMap<String, StationCredentials>>;

/// Loads every station's credentials for `realm`.
pub(crate) async fn load(store: &Store, realm: &str) -> Result<StationCache, store::StoreError> {
    let stations = store.load_station_cache().await?;
    let map: HashMap<String, StationCredentials> = stations
        .into_iter()
        .map(|s| {
            let creds = StationCredentials {
                auth: s.auth(),
                ha1_md5: s.ha1_for(realm, Algorithm::Md5).map(str::to_string),
                ha1_sha256: s.ha1_for(realm, Algorithm::Sha256).map(str::to_string),
            };
            (s.number, creds)
        })
        .collect();
    let locked_out: Vec<&str> = map
        .iter()
        .filter(|(_, c)| c.auth.auth_enabled && c.ha1_md5.is_none() && c.ha1_sha256.is_none())
        .map(|(n, _)| n.as_str())
        .collect();
    if !locked_out.is_empty() {
        // HA1 is per realm: after a realm change (or before a password is set) these stations
        // cannot authenticate until their password is set again.
        warn!(
            stations = locked_out.len(),
            realm,
            "stations without a password for this realm cannot register: set their passwords again"
        );
    }
    Ok(Arc::new(map))
}

/// Polls the store's generation and sends a fresh cache to the core when it changed.
pub(crate) async fn refresh_loop(
    store: Store,
    realm: String,
    mut generation: u64,
    every: Duration,
    to_core: mpsc::Sender<Inbound>,
) {
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        let now = match store.generation().await {
            Ok(g) => g,
            Err(e) => {
                warn!(error = %e, "cannot read station generation");
                continue;
            }
        };
        if now == generation {
            continue;
        }
        match load(&store, &realm).await {
            Ok(cache) => {
                info!(stations = cache.len(), "station list reloaded");
                generation = now;
                if to_core.send(Inbound::Stations(cache)).await.is_err() {
                    return;
                }
            }
            Err(e) => warn!(error = %e, "cannot reload stations"),
        }
    }
}
