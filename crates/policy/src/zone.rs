//! Zones and REGISTER admission.
//!
//! Which listener a packet arrives on decides its zone: the office LAN listeners are
//! [`Zone::Internal`], the listeners the office router forwards from the Internet are
//! [`Zone::External`].
//!
//! # No user enumeration
//!
//! Seen on the wire, an unknown number, a station without the SBC flag and a wrong password must
//! be indistinguishable. So [`admit_register`] never refuses outright: every request that is
//! not admitted without authentication gets the same 401 challenge (same realm, algorithms and
//! nonce format as a real one), and the registrar answers the credentials that come back with
//! the same 403 whether the password was wrong or the request was doomed from the start
//! ([`AfterChallenge::Deny`]). The [`DenyReason`] is for logs only, never for the wire.

use std::fmt;
use std::str::FromStr;

/// The zone a request came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Zone {
    /// Office LAN listeners.
    Internal,
    /// Listeners reached from the Internet through the office router's port forwarding.
    External,
}

impl Zone {
    /// `"internal"` or `"external"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Internal => "internal",
            Self::External => "external",
        }
    }
}

impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A zone name other than `internal` or `external`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown zone {0:?} (expected \"internal\" or \"external\")")]
pub struct ZoneParseError(pub String);

impl FromStr for Zone {
    type Err = ZoneParseError;

    /// Parses `internal` / `external`, ignoring ASCII case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("internal") {
            Ok(Self::Internal)
        } else if s.eq_ignore_ascii_case("external") {
            Ok(Self::External)
        } else {
            Err(ZoneParseError(s.to_owned()))
        }
    }
}

/// What the registrar knows about the station named in a REGISTER's To header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StationAuth {
    /// The station must authenticate with digest.
    pub auth_enabled: bool,
    /// The station may register on the external zone ("Internet registration via SBC").
    pub sbc_allowed: bool,
}

/// How the registrar must treat a REGISTER.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Accept without authentication (internal zone, known station with authentication off).
    NoAuthNeeded,
    /// Answer 401 with a normal digest challenge, then act on the credentials as `then` says.
    /// A request without credentials, or with a stale nonce, is challenged again either way.
    Challenge {
        /// What to do with the credentials once they come.
        then: AfterChallenge,
    },
}

impl Admission {
    /// True if the request can never be admitted (it is still challenged first).
    pub fn then_deny(self) -> bool {
        matches!(
            self,
            Self::Challenge {
                then: AfterChallenge::Deny(_)
            }
        )
    }
}

/// What the registrar does with credentials sent in answer to the challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterChallenge {
    /// Verify the digest response against the station's HA1: 200 if right, 403 if wrong.
    Verify,
    /// Answer 403, exactly as for a wrong password, whatever the credentials.
    Deny(DenyReason),
}

/// Why a REGISTER is denied after its challenge. For logs only: the wire shows a plain 403.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DenyReason {
    /// No station has this number.
    UnknownStation,
    /// External zone, and the station lacks the "Internet registration via SBC" flag.
    SbcNotAllowed,
    /// External zone, and the station has authentication off (never registers from outside).
    AuthDisabled,
}

impl fmt::Display for DenyReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::UnknownStation => "unknown station",
            Self::SbcNotAllowed => "station not allowed to register via SBC",
            Self::AuthDisabled => "station without authentication on the external zone",
        })
    }
}

/// Decides how to treat a REGISTER arriving on `zone` for `station` (`None`: unknown number).
///
/// | zone | station | admission |
/// |---|---|---|
/// | internal | unknown | challenge, then deny |
/// | internal | auth off | no authentication needed |
/// | internal | auth on | challenge, then verify |
/// | external | unknown | challenge, then deny |
/// | external | no SBC flag | challenge, then deny |
/// | external | SBC flag, auth off | challenge, then deny (the store forbids this state) |
/// | external | SBC flag, auth on | challenge, then verify |
pub fn admit_register(zone: Zone, station: Option<&StationAuth>) -> Admission {
    let deny = |reason| Admission::Challenge {
        then: AfterChallenge::Deny(reason),
    };
    let verify = Admission::Challenge {
        then: AfterChallenge::Verify,
    };
    let Some(station) = station else {
        return deny(DenyReason::UnknownStation);
    };
    match zone {
        Zone::Internal if station.auth_enabled => verify,
        Zone::Internal => Admission::NoAuthNeeded,
        Zone::External if !station.sbc_allowed => deny(DenyReason::SbcNotAllowed),
        Zone::External if !station.auth_enabled => deny(DenyReason::AuthDisabled),
        Zone::External => verify,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(auth_enabled: bool, sbc_allowed: bool) -> Option<StationAuth> {
        Some(StationAuth {
            auth_enabled,
            sbc_allowed,
        })
    }

    fn deny(r: DenyReason) -> Admission {
        Admission::Challenge {
            then: AfterChallenge::Deny(r),
        }
    }

    const VERIFY: Admission = Admission::Challenge {
        then: AfterChallenge::Verify,
    };

    #[test]
    fn zone_names_round_trip() {
        for z in [Zone::Internal, Zone::External] {
            assert_eq!(z.to_string().parse::<Zone>(), Ok(z));
        }
        assert_eq!("EXTERNAL".parse::<Zone>(), Ok(Zone::External));
        assert_eq!("dmz".parse::<Zone>(), Err(ZoneParseError("dmz".into())));
    }

    #[test]
    fn internal_zone() {
        use Zone::Internal;
        assert_eq!(
            admit_register(Internal, None),
            deny(DenyReason::UnknownStation)
        );
        assert_eq!(
            admit_register(Internal, st(false, false).as_ref()),
            Admission::NoAuthNeeded
        );
        assert_eq!(admit_register(Internal, st(true, false).as_ref()), VERIFY);
        assert_eq!(admit_register(Internal, st(true, true).as_ref()), VERIFY);
    }

    #[test]
    fn external_zone() {
        use Zone::External;
        assert_eq!(
            admit_register(External, None),
            deny(DenyReason::UnknownStation)
        );
        assert_eq!(
            admit_register(External, st(true, false).as_ref()),
            deny(DenyReason::SbcNotAllowed)
        );
        assert_eq!(
            admit_register(External, st(false, false).as_ref()),
            deny(DenyReason::SbcNotAllowed)
        );
        assert_eq!(
            admit_register(External, st(false, true).as_ref()),
            deny(DenyReason::AuthDisabled)
        );
        assert_eq!(admit_register(External, st(true, true).as_ref()), VERIFY);
    }

    #[test]
    fn external_zone_never_skips_the_challenge() {
        // No user enumeration: every external request sees the same 401 first.
        for station in [
            None,
            st(false, false),
            st(false, true),
            st(true, false),
            st(true, true),
        ] {
            let a = admit_register(Zone::External, station.as_ref());
            assert!(
                matches!(a, Admission::Challenge { .. }),
                "{station:?} -> {a:?}"
            );
        }
        assert!(admit_register(Zone::External, None).then_deny());
        assert!(!admit_register(Zone::External, st(true, true).as_ref()).then_deny());
    }
}
