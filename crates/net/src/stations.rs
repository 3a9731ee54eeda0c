//! The station cache: the registrar reads credentials from memory, refreshed from the store when
//! its generation counter moves (the CLI may change stations while the server runs). Each
//! entry also carries the station's classes of service, resolved by name once per load, and
//! its call forwarding, which [`forwarding_for`] turns into what the B2BUA rings.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use call::b2bua::{Forward, Forwarding, Target};
use policy::cos_classes::INTERNAL_ONLY;
use policy::{CosClass, CosClasses, DestinationClass, NumberingPlan, StationClasses, Zone};
use sip::digest::Algorithm;
use sip_proto::registrar::{Aor, Registrar, StationCredentials};
use store::Store;
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::Inbound;

/// Stations by number, shared read-only.
pub(crate) type StationCache = Arc<HashMap<String, StationEntry>>;

/// What the core knows of one station.
#[derive(Debug, Clone)]
pub(crate) struct StationEntry {
    /// What the registrar checks.
    pub(crate) credentials: StationCredentials,
    /// Its class of service per zone.
    pub(crate) classes: StationClasses,
    /// Its call forwarding, targets as dialled.
    pub(crate) forwarding: store::Forwarding,
    /// TLS and SRTP are mandatory for it.
    pub(crate) payload_security: bool,
}

/// Loads every station's credentials for `realm`, its classes from `classes` and its
/// forwarding.
pub(crate) async fn load(
    store: &Store,
    realm: &str,
    classes: &CosClasses,
) -> Result<StationCache, store::StoreError> {
    let stations = store.load_station_cache().await?;
    let map: HashMap<String, StationEntry> = stations
        .into_iter()
        .map(|s| {
            let credentials = StationCredentials {
                auth: s.auth(),
                ha1_md5: s.ha1_for(realm, Algorithm::Md5).map(str::to_string),
                ha1_sha256: s.ha1_for(realm, Algorithm::Sha256).map(str::to_string),
            };
            let classes = StationClasses {
                internal: class_of(
                    classes,
                    &s.number,
                    Zone::Internal,
                    s.cos_internal.as_deref(),
                ),
                external: class_of(
                    classes,
                    &s.number,
                    Zone::External,
                    s.cos_external.as_deref(),
                ),
            };
            let entry = StationEntry {
                credentials,
                classes,
                forwarding: s.forwarding,
                payload_security: s.payload_security,
            };
            (s.number, entry)
        })
        .collect();
    let locked_out: Vec<&str> = map
        .iter()
        .map(|(n, e)| (n, &e.credentials))
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

/// The class a station has in `zone`. A name no class has (the configuration file lost a
/// class the CLI accepted) falls back to `internal-only`: a class of service that is gone must
/// not open outside lines, and the warning says how to repair it.
fn class_of(classes: &CosClasses, station: &str, zone: Zone, named: Option<&str>) -> CosClass {
    match classes.for_zone(zone, named) {
        Ok(class) => class.clone(),
        Err(e) => {
            warn!(%station, %zone, class = %e.name, fallback = INTERNAL_ONLY, "unknown class of service: define it in the configuration file or set the station's class again");
            CosClass::new(
                INTERNAL_ONLY,
                [DestinationClass::Internal],
                Vec::<String>::new(),
            )
        }
    }
}

/// Why none of a station's contacts may be rung although it has some.
#[derive(Debug, Clone, Copy, thiserror::Error)]
pub(crate) enum Unreachable {
    /// A payload-security station with no contact registered over TLS.
    #[error(transparent)]
    PayloadSecurity(#[from] call::payload_security::Refusal),
    /// A `sips:` call or transfer to a station with no contact reached over TLS.
    #[error(transparent)]
    Sips(#[from] sip_proto::sips::SipsRefusal),
}

impl Unreachable {
    /// The status the refusal is answered with.
    pub(crate) fn status(self) -> sip::StatusCode {
        match self {
            Unreachable::PayloadSecurity(r) => r.status(),
            Unreachable::Sips(r) => r.status(),
        }
    }
}

/// The contacts of `number` that a call or a transfer may ring: for a payload-security
/// station only those registered over TLS, for a `sips:` request only those reached over TLS
/// and with a `sips:` Request-URI (RFC 5630 §5.3).
pub(crate) fn reachable_contacts(
    registrar: &Registrar,
    number: &str,
    station: &StationEntry,
    sips: bool,
) -> Result<Vec<Target>, Unreachable> {
    let mut targets = contacts(registrar, number);
    if station.payload_security {
        targets = call::payload_security::secure_targets(targets)?;
    }
    Ok(call::sips::targets(targets, sips)?)
}

/// The contacts of station `number`: where the B2BUA rings it.
pub(crate) fn contacts(registrar: &Registrar, number: &str) -> Vec<Target> {
    registrar
        .bindings(&Aor(number.to_owned()))
        .iter()
        .filter_map(|b| {
            let uri = sip::Uri::parse(&b.contact).ok()?;
            Some(Target {
                registered_sips: sip_proto::sips::is_sips(&uri),
                uri,
                path: b.path(),
                payload_security: false,
            })
        })
        .collect()
}

/// The forwarding of station `number` for one call to it, every target checked against the
/// station's own class of service (it set the forwarding; the caller's class does not
/// matter) for each zone the station is registered from. A station registered nowhere is
/// judged for every zone it may register on, so the forwarding of a remote phone is never
/// judged by the office's class alone. A target that is a station is resolved to its
/// contacts (its own forwarding is not followed); an outside number has none until trunks
/// exist.
pub(crate) fn forwarding_for(
    number: &str,
    entry: &StationEntry,
    stations: &HashMap<String, StationEntry>,
    registrar: &Registrar,
    plan: &NumberingPlan,
) -> Forwarding {
    let f = &entry.forwarding;
    if f.always.is_none() && f.busy.is_none() && f.no_answer.is_none() {
        return Forwarding::default();
    }
    let mut zones: Vec<Zone> = Vec::with_capacity(2);
    for b in registrar.bindings(&Aor(number.to_owned())) {
        if !zones.contains(&b.zone) {
            zones.push(b.zone);
        }
    }
    if zones.is_empty() {
        zones.push(Zone::Internal);
        if entry.credentials.auth.sbc_allowed {
            zones.push(Zone::External);
        }
    }
    let resolve = |target: &Option<String>| -> Option<Forward> {
        let target = target.as_deref()?;
        let mut destination = None;
        for zone in &zones {
            let class = entry.classes.for_zone(*zone);
            match policy::check_forward_target(class, target, plan) {
                Ok(d) => destination = Some(d),
                Err(refusal) => {
                    return Some(Forward::Refused {
                        zone: *zone,
                        refusal,
                    })
                }
            }
        }
        let d = destination?;
        let targets =
            if d.class == DestinationClass::Internal && stations.contains_key(&d.canonical) {
                contacts(registrar, &d.canonical)
            } else {
                Vec::new()
            };
        Some(Forward::To {
            number: d.canonical,
            targets,
        })
    };
    Forwarding {
        always: resolve(&f.always),
        busy: resolve(&f.busy),
        no_answer: resolve(&f.no_answer),
        no_answer_after: Duration::from_secs(u64::from(f.no_answer_secs)),
    }
}

/// Polls the store's generation and sends a fresh cache to the core when it changed.
pub(crate) async fn refresh_loop(
    store: Store,
    realm: String,
    classes: CosClasses,
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
        match load(&store, &realm, &classes).await {
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
