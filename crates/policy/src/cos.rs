//! Class of service: what a station may dial and where it may forward or transfer calls.
//!
//! A [`CosClass`] is a named set of allowed [`DestinationClass`]es and a list of blocked
//! prefixes. The number is understood by the [`NumberingPlan`](crate::dialplan) first; then:
//!
//! 1. a number that is not dialable is refused ([`CosRule::NotDialable`]);
//! 2. an emergency number is allowed, whatever the class says (never as a forwarding target);
//! 3. a destination class the class does not allow is refused ([`CosRule::DestinationNotAllowed`]);
//! 4. an outside number starting with a blocked prefix is refused ([`CosRule::BlockedPrefix`]).
//!
//! Each station has one class for the internal zone and one for the external zone, and the
//! class of the zone it registered on applies (toll fraud through a stolen remote phone is the
//! threat). Forwarding and transfer targets are checked with the same rules against the class
//! of the station that set them ([`check_forward_target`], [`check_transfer_target`]).
//!
//! # Defaults
//!
//! | class | allowed | blocked prefixes |
//! |---|---|---|
//! | `remote`, [`CosClass::default_external`] | internal, national | [`EXAMPLE_PREMIUM_PREFIXES`] |
//! | `office`, [`CosClass::default_internal`] | internal, local, national, international | [`EXAMPLE_PREMIUM_PREFIXES`] |
//!
//! These and the other built-in classes, and classes from the configuration file, are looked
//! up by name in [`CosClasses`](crate::cos_classes::CosClasses).
//!
//! The external default leaves out local numbers on purpose: a remote user dialling a number
//! without area code means their own area, but the trunk would reach the office's. With the
//! area code (national) the call goes where the user meant.

use std::collections::BTreeSet;
use std::fmt;

use crate::dialplan::{Destination, DestinationClass, NotDialable, NumberingPlan};

/// Premium-rate and similar prefixes blocked by the default classes. **Examples, German
/// numbering** (0900 premium rate, 0190 its predecessor, 0137 televoting, 118xx directory
/// enquiries; +881 and +882 satellite and international networks, frequent targets of
/// international revenue-share fraud): adjust per country.
pub const EXAMPLE_PREMIUM_PREFIXES: &[&str] = &["0900", "0190", "0137", "118", "+881", "+882"];

/// Name of the default class of the internal zone ([`CosClass::default_internal`]).
pub const OFFICE: &str = "office";
/// Name of the default class of the external zone ([`CosClass::default_external`]).
pub const REMOTE: &str = "remote";

/// A named class of service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CosClass {
    /// Name shown in logs and the admin portal.
    pub name: String,
    /// Destination classes a station with this class may reach.
    pub allowed: BTreeSet<DestinationClass>,
    /// Outside numbers starting with one of these are refused even if their destination class
    /// is allowed. Written as dialled after the trunk access code (`0900`, `118`) or in E.164
    /// (`+881`); see [`NumberingPlan::canonical_prefix`]. Check them with [`CosClass::validate`].
    pub blocked_prefixes: Vec<String>,
}

impl CosClass {
    /// A class allowing `allowed` and blocking `blocked_prefixes`.
    pub fn new(
        name: impl Into<String>,
        allowed: impl IntoIterator<Item = DestinationClass>,
        blocked_prefixes: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        Self {
            name: name.into(),
            allowed: allowed.into_iter().collect(),
            blocked_prefixes: blocked_prefixes.into_iter().map(Into::into).collect(),
        }
    }

    /// The default class for the external zone, `"remote"`: internal and national numbers,
    /// premium rate blocked.
    pub fn default_external() -> Self {
        use DestinationClass::*;
        Self::new(
            REMOTE,
            [Internal, National],
            EXAMPLE_PREMIUM_PREFIXES.iter().copied(),
        )
    }

    /// The default class for the internal zone, `"office"`: everything but premium rate.
    pub fn default_internal() -> Self {
        Self::new(
            OFFICE,
            DestinationClass::ALL,
            EXAMPLE_PREMIUM_PREFIXES.iter().copied(),
        )
    }

    /// Checks that every blocked prefix is a number under `plan`, for loading a configuration
    /// (a malformed prefix blocks nothing).
    pub fn validate(&self, plan: &NumberingPlan) -> Result<(), BadPrefix> {
        for p in &self.blocked_prefixes {
            plan.canonical_prefix(p).map_err(|reason| BadPrefix {
                class: self.name.clone(),
                prefix: p.clone(),
                reason,
            })?;
        }
        Ok(())
    }

    /// The first blocked prefix (as written) that `destination` starts with.
    fn blocked_prefix(&self, destination: &Destination, plan: &NumberingPlan) -> Option<&str> {
        self.blocked_prefixes
            .iter()
            .find(|p| {
                plan.canonical_prefix(p)
                    .is_ok_and(|c| destination.canonical.starts_with(&c))
            })
            .map(String::as_str)
    }

    /// The rules alone, shared by the three checks.
    fn judge(
        &self,
        dialled: &str,
        plan: &NumberingPlan,
        emergency_allowed: bool,
    ) -> Result<Destination, CosRule> {
        let destination = Destination::parse(dialled, plan).map_err(CosRule::NotDialable)?;
        if destination.emergency {
            return if emergency_allowed {
                Ok(destination)
            } else {
                Err(CosRule::EmergencyTarget)
            };
        }
        if !self.allowed.contains(&destination.class) {
            return Err(CosRule::DestinationNotAllowed {
                destination: destination.class,
            });
        }
        if destination.class != DestinationClass::Internal {
            if let Some(prefix) = self.blocked_prefix(&destination, plan) {
                return Err(CosRule::BlockedPrefix {
                    prefix: prefix.to_owned(),
                });
            }
        }
        Ok(destination)
    }
}

/// A blocked prefix that is not a number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("class of service {class:?}: blocked prefix {prefix:?}: {reason}")]
pub struct BadPrefix {
    /// The class's name.
    pub class: String,
    /// The prefix as written.
    pub prefix: String,
    /// What is wrong with it.
    pub reason: NotDialable,
}

/// Decides whether a station with `class` may call `dialled`. On success, the
/// [`Destination`] is what routing must dial (its `canonical` number), so that what was
/// checked is what is dialled.
pub fn check_call(
    class: &CosClass,
    dialled: &str,
    plan: &NumberingPlan,
) -> Result<Destination, CosRefusal> {
    class
        .judge(dialled, plan, true)
        .map_err(|rule| CosRefusal::Call {
            class: class.name.clone(),
            rule,
        })
}

/// Decides whether a station with `class` may forward its calls to `target` (checked when the
/// forwarding is set and again when it is used). Emergency numbers are refused as targets:
/// a forwarding would send every caller, spam included, to the emergency service.
pub fn check_forward_target(
    class: &CosClass,
    target: &str,
    plan: &NumberingPlan,
) -> Result<Destination, CosRefusal> {
    class
        .judge(target, plan, false)
        .map_err(|rule| CosRefusal::ForwardTarget {
            class: class.name.clone(),
            rule,
        })
}

/// Decides whether a station with `class` may transfer a call to `target` (REFER).
pub fn check_transfer_target(
    class: &CosClass,
    target: &str,
    plan: &NumberingPlan,
) -> Result<Destination, CosRefusal> {
    class
        .judge(target, plan, true)
        .map_err(|rule| CosRefusal::TransferTarget {
            class: class.name.clone(),
            rule,
        })
}

/// The rule that refused a number. `Display` never shows the dialled number, so it can go on
/// the wire (reason phrase, Warning) and in logs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CosRule {
    /// The dialled string is not a number.
    NotDialable(NotDialable),
    /// The destination class is not allowed by the class of service.
    DestinationNotAllowed {
        /// Where the number leads.
        destination: DestinationClass,
    },
    /// The number starts with a blocked prefix.
    BlockedPrefix {
        /// The prefix as written in the class.
        prefix: String,
    },
    /// An emergency number as a forwarding target.
    EmergencyTarget,
}

impl fmt::Display for CosRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotDialable(e) => write!(f, "not a dialable number: {e}"),
            Self::DestinationNotAllowed { destination } => {
                write!(f, "{destination} calls not allowed")
            }
            Self::BlockedPrefix { prefix } => write!(f, "blocked prefix {prefix}"),
            Self::EmergencyTarget => f.write_str("emergency numbers cannot be forwarding targets"),
        }
    }
}

/// A refusal by class of service: what was refused, under which class, by which rule.
/// `Display` is the log line (the caller adds station and zone); it never shows the number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CosRefusal {
    /// A call.
    #[error("call refused by class of service {class:?}: {rule}")]
    Call {
        /// Name of the class applied.
        class: String,
        /// The rule.
        rule: CosRule,
    },
    /// A forwarding target.
    #[error("forwarding target refused by class of service {class:?}: {rule}")]
    ForwardTarget {
        /// Name of the class applied (the class of the station that set the forwarding).
        class: String,
        /// The rule.
        rule: CosRule,
    },
    /// A transfer target.
    #[error("transfer target refused by class of service {class:?}: {rule}")]
    TransferTarget {
        /// Name of the class applied (the class of the transferring station).
        class: String,
        /// The rule.
        rule: CosRule,
    },
}

impl CosRefusal {
    /// The rule that refused.
    pub fn rule(&self) -> &CosRule {
        match self {
            Self::Call { rule, .. }
            | Self::ForwardTarget { rule, .. }
            | Self::TransferTarget { rule, .. } => rule,
        }
    }

    /// Name of the class that refused.
    pub fn class_name(&self) -> &str {
        match self {
            Self::Call { class, .. }
            | Self::ForwardTarget { class, .. }
            | Self::TransferTarget { class, .. } => class,
        }
    }

    /// The SIP status: 484 Address Incomplete for a number that is only a prefix, 403
    /// Forbidden otherwise.
    pub fn status(&self) -> u16 {
        match self.rule() {
            CosRule::NotDialable(NotDialable::Incomplete) => 484,
            _ => 403,
        }
    }

    /// The reason phrase for the SIP response (no number in it).
    pub fn reason_phrase(&self) -> String {
        match self.rule() {
            CosRule::NotDialable(NotDialable::Incomplete) => "Address Incomplete".to_owned(),
            rule => format!("Forbidden by class of service: {rule}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use DestinationClass::*;

    fn plan() -> NumberingPlan {
        NumberingPlan::default()
    }

    fn external() -> CosClass {
        CosClass::default_external()
    }

    fn internal() -> CosClass {
        CosClass::default_internal()
    }

    fn rule_of(r: Result<Destination, CosRefusal>) -> Option<CosRule> {
        r.err().map(|e| e.rule().clone())
    }

    fn not_allowed(destination: DestinationClass) -> Option<CosRule> {
        Some(CosRule::DestinationNotAllowed { destination })
    }

    fn blocked(prefix: &str) -> Option<CosRule> {
        Some(CosRule::BlockedPrefix {
            prefix: prefix.into(),
        })
    }

    #[test]
    fn destination_class_not_allowed() {
        // (class, dialled, refusal), default plan: trunk access code 0.
        let table = [
            (
                external(),
                "0 00 44 20 7946 0000",
                not_allowed(International),
            ),
            (external(), "+44 20 7946 0000", not_allowed(International)),
            (
                external(),
                "tel:+1-212-555-0100",
                not_allowed(International),
            ),
            (
                external(),
                "sip:000390612345678@pbx",
                not_allowed(International),
            ),
            (external(), "01234567", not_allowed(Local)),
            (
                CosClass::new("internal only", [Internal], ["0900"]),
                "0 089 1234567",
                not_allowed(National),
            ),
        ];
        for (class, dialled, rule) in table {
            assert_eq!(
                rule_of(check_call(&class, dialled, &plan())),
                rule,
                "{dialled}"
            );
        }
    }

    #[test]
    fn blocked_prefix_premium_rate() {
        let table = [
            (external(), "0 0900 123456", blocked("0900")),
            (external(), "00190123456", blocked("0190")),
            (external(), "0 0137 1234", blocked("0137")),
            (internal(), "0 0900 123456", blocked("0900")),
            (internal(), "0 11833", blocked("118")),
            (internal(), "+881 6 1234 5678", blocked("+881")),
            (internal(), "0 00 882 1234 5678", blocked("+882")),
        ];
        for (class, dialled, rule) in table {
            assert_eq!(
                rule_of(check_call(&class, dialled, &plan())),
                rule,
                "{dialled}"
            );
        }
    }

    #[test]
    fn blocked_prefix_matches_e164_of_own_country() {
        let p = NumberingPlan {
            country_code: Some("49".into()),
            ..plan()
        };
        let r = check_call(&external(), "+49 900 123456", &p);
        assert_eq!(rule_of(r), blocked("0900"));
        let r = check_call(&external(), "+49 89 1234567", &p).unwrap();
        assert_eq!(r.canonical, "0891234567");
    }

    #[test]
    fn toll_fraud_without_trunk_access_code() {
        // Offices dialling out directly: 00… is international.
        let p = NumberingPlan {
            trunk_access_code: None,
            ..plan()
        };
        assert_eq!(
            rule_of(check_call(&external(), "0044 20 7946 0000", &p)),
            not_allowed(International)
        );
        assert_eq!(
            rule_of(check_call(&external(), "0900 123456", &p)),
            blocked("0900")
        );
        assert_eq!(
            rule_of(check_forward_target(&external(), "0190 123456", &p)),
            blocked("0190")
        );
        assert!(check_call(&external(), "089 1234567", &p).is_ok());
    }

    #[test]
    fn internal_and_national_allowed() {
        for class in [external(), internal()] {
            for dialled in [
                "2001",
                "0 089 1234567",
                "sip:2002@192.168.1.10",
                "tel:00301234567",
            ] {
                let r = check_call(&class, dialled, &plan());
                assert!(r.is_ok(), "{} {dialled}: {r:?}", class.name);
            }
        }
        let d = check_call(&internal(), "0 00 44 20 7946 0000", &plan()).unwrap();
        assert_eq!(
            (d.class, d.canonical.as_str()),
            (International, "+442079460000")
        );
        assert!(check_call(&internal(), "01234567", &plan()).is_ok());
    }

    #[test]
    fn blocked_prefixes_do_not_apply_to_stations() {
        let class = CosClass::new("odd", DestinationClass::ALL, ["118"]);
        assert!(check_call(&class, "1180", &plan()).is_ok());
    }

    #[test]
    fn emergency_always_allowed_for_calls_and_transfers() {
        let nothing = CosClass::new("nothing", [], EXAMPLE_PREMIUM_PREFIXES.iter().copied());
        for dialled in ["112", "0112", "110"] {
            assert!(check_call(&nothing, dialled, &plan()).is_ok(), "{dialled}");
            assert!(
                check_call(&external(), dialled, &plan()).is_ok(),
                "{dialled}"
            );
            assert!(check_transfer_target(&external(), dialled, &plan()).is_ok());
        }
    }

    #[test]
    fn emergency_forward_target_refused() {
        assert_eq!(
            check_forward_target(&internal(), "0112", &plan()),
            Err(CosRefusal::ForwardTarget {
                class: "office".into(),
                rule: CosRule::EmergencyTarget
            })
        );
    }

    #[test]
    fn forward_target_checked_like_a_call() {
        assert_eq!(
            check_forward_target(&external(), "0 0190 123456", &plan()),
            Err(CosRefusal::ForwardTarget {
                class: "remote".into(),
                rule: CosRule::BlockedPrefix {
                    prefix: "0190".into()
                }
            })
        );
        assert_eq!(
            rule_of(check_forward_target(
                &external(),
                "+44 20 7946 0000",
                &plan()
            )),
            not_allowed(International)
        );
        assert!(check_forward_target(&external(), "0 089 1234567", &plan()).is_ok());
        assert!(check_forward_target(&external(), "2001", &plan()).is_ok());
    }

    #[test]
    fn transfer_target_checked_like_a_call() {
        let r = check_transfer_target(&external(), "0 00 44 20 7946 0000", &plan());
        assert_eq!(
            r,
            Err(CosRefusal::TransferTarget {
                class: "remote".into(),
                rule: CosRule::DestinationNotAllowed {
                    destination: International
                }
            })
        );
        assert_eq!(
            rule_of(check_transfer_target(&external(), "0 0900 1", &plan())),
            blocked("0900")
        );
        assert!(check_transfer_target(&external(), "2001", &plan()).is_ok());
    }

    #[test]
    fn not_dialable_refused_as_its_own_rule() {
        let r = check_call(&internal(), "0800-FLOWERS", &plan());
        assert_eq!(
            rule_of(r),
            Some(CosRule::NotDialable(NotDialable::InvalidCharacter('F')))
        );
        let r = check_call(&internal(), "*21*00900", &plan());
        assert_eq!(
            rule_of(r),
            Some(CosRule::NotDialable(NotDialable::InvalidCharacter('*')))
        );
    }

    #[test]
    fn refusal_texts_for_log_and_wire() {
        let e = check_call(&external(), "+44 20 7946 0000", &plan()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "call refused by class of service \"remote\": international calls not allowed"
        );
        assert_eq!(e.status(), 403);
        assert_eq!(
            e.reason_phrase(),
            "Forbidden by class of service: international calls not allowed"
        );
        assert_eq!(e.class_name(), "remote");
        let e = check_forward_target(&external(), "0 0190 5", &plan()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "forwarding target refused by class of service \"remote\": blocked prefix 0190"
        );
        let e = check_call(&external(), "0", &plan()).unwrap_err();
        assert_eq!(
            (e.status(), e.reason_phrase().as_str()),
            (484, "Address Incomplete")
        );
        // The number never appears.
        let e = check_call(&external(), "0 0900 987654", &plan()).unwrap_err();
        assert!(!e.to_string().contains("987654"));
        assert!(!e.reason_phrase().contains("987654"));
    }

    #[test]
    fn validate_blocked_prefixes() {
        assert_eq!(internal().validate(&plan()), Ok(()));
        assert_eq!(external().validate(&plan()), Ok(()));
        let bad = CosClass::new("bad", [Internal], ["09x0"]);
        assert_eq!(
            bad.validate(&plan()),
            Err(BadPrefix {
                class: "bad".into(),
                prefix: "09x0".into(),
                reason: NotDialable::InvalidCharacter('x')
            })
        );
    }
}
