//! The classes of service known by name: built-in ones and those of the configuration file.
//!
//! # Built-in classes
//!
//! Every built-in class blocks [`EXAMPLE_PREMIUM_PREFIXES`]; they differ in the destination
//! classes they allow.
//!
//! | name | allowed | meant for |
//! |---|---|---|
//! | `internal-only` | internal | lobby and lift phones, stations that must never cost money |
//! | `local` | internal, local | |
//! | `national` | internal, local, national | |
//! | `international` | internal, local, national, international | |
//! | `office` | internal, local, national, international | **default of the internal zone** |
//! | `remote` | internal, national | **default of the external zone** |
//!
//! `office` and `international` allow the same today; they are two names so that tightening
//! the default of the internal zone (a `[cos.office]` section) does not change stations that
//! were given `international` on purpose. `remote` leaves out local numbers: see
//! [`crate::cos`].
//!
//! A class defined in the configuration file with the name of a built-in one replaces it,
//! defaults included: `[cos.remote]` changes what every station without its own external
//! class may dial from home.
//!
//! A station names at most one class per zone; no name means the zone's default
//! ([`CosClasses::for_station`]).

use std::collections::BTreeMap;

use crate::cos::{BadPrefix, CosClass, EXAMPLE_PREMIUM_PREFIXES, OFFICE, REMOTE};
use crate::dialplan::{DestinationClass, NumberingPlan};
use crate::zone::Zone;

/// Name of the built-in class allowing station numbers only.
pub const INTERNAL_ONLY: &str = "internal-only";
/// Longest class name, in characters.
pub const MAX_CLASS_NAME: usize = 32;
/// A name reserved by the CLI for "back to the zone's default"; no class may have it.
pub const DEFAULT_KEYWORD: &str = "default";

/// Every class of service known by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CosClasses {
    by_name: BTreeMap<String, CosClass>,
}

impl Default for CosClasses {
    fn default() -> Self {
        Self::builtin()
    }
}

impl CosClasses {
    /// The built-in classes (see the module documentation).
    pub fn builtin() -> Self {
        use DestinationClass::*;
        let premium = || EXAMPLE_PREMIUM_PREFIXES.iter().copied();
        let classes = [
            CosClass::new(INTERNAL_ONLY, [Internal], premium()),
            CosClass::new("local", [Internal, Local], premium()),
            CosClass::new("national", [Internal, Local, National], premium()),
            CosClass::new("international", DestinationClass::ALL, premium()),
            CosClass::default_internal(),
            CosClass::default_external(),
        ];
        Self {
            by_name: classes.into_iter().map(|c| (c.name.clone(), c)).collect(),
        }
    }

    /// Adds `class`, replacing a class of the same name (built-in ones included). The name
    /// and the blocked prefixes are checked first.
    pub fn insert(&mut self, class: CosClass, plan: &NumberingPlan) -> Result<(), ClassError> {
        check_name(&class.name)?;
        class.validate(plan).map_err(ClassError::BadPrefix)?;
        self.by_name.insert(class.name.clone(), class);
        Ok(())
    }

    /// The class called `name`.
    pub fn resolve(&self, name: &str) -> Result<&CosClass, UnknownClass> {
        self.by_name.get(name).ok_or_else(|| UnknownClass {
            name: name.to_owned(),
            known: self.names().map(str::to_owned).collect(),
        })
    }

    /// The default class of `zone`: `office` for the internal zone, `remote` for the external.
    pub fn default_for(&self, zone: Zone) -> &CosClass {
        let name = match zone {
            Zone::Internal => OFFICE,
            Zone::External => REMOTE,
        };
        // Both defaults are built in and can be replaced but never removed.
        self.by_name
            .get(name)
            .unwrap_or_else(|| unreachable!("{name} is built in"))
    }

    /// The class a station has in `zone`: the one it names, else the zone's default.
    pub fn for_zone(&self, zone: Zone, named: Option<&str>) -> Result<&CosClass, UnknownClass> {
        match named {
            Some(name) => self.resolve(name),
            None => Ok(self.default_for(zone)),
        }
    }

    /// Both classes of a station from the names it stores (`None`: the zone's default).
    pub fn for_station(
        &self,
        internal: Option<&str>,
        external: Option<&str>,
    ) -> Result<StationClasses, UnknownClass> {
        Ok(StationClasses {
            internal: self.for_zone(Zone::Internal, internal)?.clone(),
            external: self.for_zone(Zone::External, external)?.clone(),
        })
    }

    /// Every class name, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(String::as_str)
    }
}

/// The classes of one station, one per zone; the zone the station registered on picks one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StationClasses {
    /// Applies while the station is registered on the internal zone.
    pub internal: CosClass,
    /// Applies while the station is registered on the external zone (Device@Home).
    pub external: CosClass,
}

impl Default for StationClasses {
    fn default() -> Self {
        Self {
            internal: CosClass::default_internal(),
            external: CosClass::default_external(),
        }
    }
}

impl StationClasses {
    /// The class for `zone`.
    pub fn for_zone(&self, zone: Zone) -> &CosClass {
        match zone {
            Zone::Internal => &self.internal,
            Zone::External => &self.external,
        }
    }
}

/// Checks a class name: 1 to [`MAX_CLASS_NAME`] characters of `a-z`, `0-9`, `-` and `_`,
/// and not [`DEFAULT_KEYWORD`]. The names go into logs and reason phrases unquoted.
pub fn check_name(name: &str) -> Result<(), ClassError> {
    let ok = (1..=MAX_CLASS_NAME).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if !ok || name == DEFAULT_KEYWORD {
        return Err(ClassError::BadName(name.to_owned()));
    }
    Ok(())
}

/// A class name that no class has.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown class of service {name:?} (known: {})", known.join(", "))]
pub struct UnknownClass {
    /// The name asked for.
    pub name: String,
    /// Every name that exists.
    pub known: Vec<String>,
}

/// A class that cannot be added.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClassError {
    /// The name is empty, too long, not `a-z0-9-_` or reserved.
    #[error("class name {0:?}: use 1 to 32 of a-z, 0-9, '-' and '_' (and not \"default\")")]
    BadName(String),
    /// A blocked prefix is no number.
    #[error(transparent)]
    BadPrefix(BadPrefix),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cos::{check_call, check_forward_target};

    fn plan() -> NumberingPlan {
        NumberingPlan::default()
    }

    #[test]
    fn builtin_classes_by_name() {
        let c = CosClasses::builtin();
        let names: Vec<&str> = c.names().collect();
        assert_eq!(
            names,
            [
                "internal-only",
                "international",
                "local",
                "national",
                "office",
                "remote"
            ]
        );
        assert!(check_call(
            c.resolve("internal-only").unwrap(),
            "0 089 1234567",
            &plan()
        )
        .is_err());
        assert!(check_call(c.resolve("local").unwrap(), "01234567", &plan()).is_ok());
        assert!(check_call(c.resolve("national").unwrap(), "0 089 1", &plan()).is_ok());
        assert!(check_call(c.resolve("national").unwrap(), "+44 20 7946 0000", &plan()).is_err());
        let intl = c.resolve("international").unwrap();
        assert!(check_call(intl, "+44 20 7946 0000", &plan()).is_ok());
        assert!(
            check_call(intl, "0 0900 123", &plan()).is_err(),
            "premium blocked"
        );
        assert_eq!(c.default_for(Zone::Internal), &CosClass::default_internal());
        assert_eq!(c.default_for(Zone::External), &CosClass::default_external());
    }

    #[test]
    fn unknown_name_lists_the_known_ones() {
        let e = CosClasses::builtin().resolve("vip").unwrap_err();
        assert_eq!(e.name, "vip");
        assert!(e.to_string().contains("\"vip\"") && e.to_string().contains("remote"));
    }

    #[test]
    fn configured_class_replaces_a_builtin_default() {
        let mut c = CosClasses::builtin();
        c.insert(
            CosClass::new("remote", [DestinationClass::Internal], ["0900"]),
            &plan(),
        )
        .unwrap();
        let s = c.for_station(None, None).unwrap();
        assert!(check_forward_target(&s.external, "0 089 1234567", &plan()).is_err());
        assert!(check_forward_target(&s.internal, "0 089 1234567", &plan()).is_ok());
    }

    #[test]
    fn station_names_pick_classes_per_zone() {
        let mut c = CosClasses::builtin();
        c.insert(
            CosClass::new("sales", DestinationClass::ALL, Vec::<String>::new()),
            &plan(),
        )
        .unwrap();
        let s = c.for_station(Some("internal-only"), Some("sales")).unwrap();
        assert_eq!(s.for_zone(Zone::Internal).name, "internal-only");
        assert_eq!(s.for_zone(Zone::External).name, "sales");
        assert!(c.for_station(Some("nope"), None).is_err());
    }

    #[test]
    fn bad_names_and_prefixes_refused() {
        let mut c = CosClasses::builtin();
        for bad in ["", "Sales", "a b", "default", &"x".repeat(33)] {
            let class = CosClass::new(bad, [DestinationClass::Internal], ["0900"]);
            assert_eq!(
                c.insert(class, &plan()),
                Err(ClassError::BadName(bad.to_owned())),
                "{bad:?}"
            );
        }
        let class = CosClass::new("x", [DestinationClass::Internal], ["09x0"]);
        assert!(matches!(
            c.insert(class, &plan()),
            Err(ClassError::BadPrefix(_))
        ));
    }
}
