//! Station (extension) records and their validation.

use std::fmt;
use std::str::FromStr;

use policy::StationAuth;
use sip::digest::Algorithm;

use crate::error::FieldError;
use crate::secret::Secret;

/// Longest call number, in digits.
pub const MAX_NUMBER_DIGITS: usize = 20;
/// Longest display name, in characters.
pub const MAX_DISPLAY_NAME: usize = 100;
/// Longest password, in characters.
pub const MAX_PASSWORD: usize = 128;
/// Longest realm, in characters.
pub const MAX_REALM: usize = 255;
/// Most digits of a forwarding target (the dial plan's limit).
pub const MAX_FORWARD_DIGITS: usize = 32;
/// Seconds a call rings before "forward on no answer", unless the station says otherwise:
/// four to five rings, long enough to reach the desk, short enough for the caller.
pub const DEFAULT_NO_ANSWER_SECS: u32 = 20;
/// Range of the no-answer delay, seconds.
pub const NO_ANSWER_SECS: std::ops::RangeInclusive<u32> = 1..=600;

/// A station as stored, with its digest credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Station {
    /// Call number: 1 to 20 digits; also the SIP user name and digest user name.
    pub number: String,
    /// Name shown to called parties.
    pub display_name: String,
    /// Kind of device.
    pub device_type: DeviceType,
    /// The station must authenticate with digest (on the internal zone too).
    pub auth_enabled: bool,
    /// "Internet registration via SBC": may register on the external zone.
    pub sbc_allowed: bool,
    /// Class of service while registered on the internal zone, by name; `None`: the zone's
    /// default (see [`policy::CosClasses`]).
    pub cos_internal: Option<String>,
    /// Class of service while registered on the external zone, by name; `None`: the zone's
    /// default.
    pub cos_external: Option<String>,
    /// Call forwarding.
    pub forwarding: Forwarding,
    /// TLS signalling and SRTP media required.
    pub payload_security: bool,
    /// The stored password passed the strong-password policy when it was set.
    pub password_strong: bool,
    /// HA1 values, one per realm and algorithm (the password itself is never stored).
    pub ha1: Vec<Ha1>,
}

impl Station {
    /// The HA1 in hex for `realm` and `algorithm`, if a password was set for that realm.
    pub fn ha1_for(&self, realm: &str, algorithm: Algorithm) -> Option<&str> {
        self.ha1
            .iter()
            .find(|h| h.algorithm == algorithm && h.realm == realm)
            .map(|h| h.hex.as_str())
    }

    /// True if a password has been set (for any realm).
    pub fn has_password(&self) -> bool {
        !self.ha1.is_empty()
    }

    /// What the registrar's admission decision needs.
    pub fn auth(&self) -> StationAuth {
        StationAuth {
            auth_enabled: self.auth_enabled,
            sbc_allowed: self.sbc_allowed,
        }
    }
}

/// A station's call forwarding. Targets are numbers as dialled (digits, a leading `+` for
/// E.164), checked against the station's classes of service when set and when used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forwarding {
    /// Every call goes to this number instead; `None`: off.
    pub always: Option<String>,
    /// A call every device of the station answers busy goes here; `None`: off.
    pub busy: Option<String>,
    /// A call nobody answers within `no_answer_secs` goes here; `None`: off.
    pub no_answer: Option<String>,
    /// Seconds of ringing before forwarding on no answer, 1 to 600. Default 20.
    pub no_answer_secs: u32,
}

impl Default for Forwarding {
    fn default() -> Self {
        Self {
            always: None,
            busy: None,
            no_answer: None,
            no_answer_secs: DEFAULT_NO_ANSWER_SECS,
        }
    }
}

impl Forwarding {
    /// The targets that are set, with the field each comes from.
    pub fn targets(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [
            ("forward always", &self.always),
            ("forward busy", &self.busy),
            ("forward no answer", &self.no_answer),
        ]
        .into_iter()
        .filter_map(|(field, t)| t.as_deref().map(|t| (field, t)))
    }
}

/// One stored digest credential: `HA1 = H(number ":" realm ":" password)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ha1 {
    /// The realm it was computed for.
    pub realm: String,
    /// MD5 or SHA-256.
    pub algorithm: Algorithm,
    /// Lowercase hex.
    pub hex: String,
}

/// Kind of device registering as a station.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeviceType {
    /// A desk phone speaking SIP.
    SipPhone,
    /// A softphone on a computer or mobile.
    Softphone,
    /// homeline's browser softphone (WSS + DTLS-SRTP).
    Browser,
}

impl DeviceType {
    /// `"sip-phone"`, `"softphone"` or `"browser"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SipPhone => "sip-phone",
            Self::Softphone => "softphone",
            Self::Browser => "browser",
        }
    }
}

impl fmt::Display for DeviceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A device type name other than `sip-phone`, `softphone` or `browser`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown device type {0:?} (expected sip-phone, softphone or browser)")]
pub struct DeviceTypeParseError(pub String);

impl FromStr for DeviceType {
    type Err = DeviceTypeParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "sip-phone" => Ok(Self::SipPhone),
            "softphone" => Ok(Self::Softphone),
            "browser" => Ok(Self::Browser),
            _ => Err(DeviceTypeParseError(s.to_owned())),
        }
    }
}

/// A station to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewStation {
    /// Call number: 1 to 20 digits.
    pub number: String,
    /// Name shown to called parties.
    pub display_name: String,
    /// Kind of device.
    pub device_type: DeviceType,
    /// The station must authenticate with digest.
    pub auth_enabled: bool,
    /// "Internet registration via SBC"; needs `auth_enabled` and a strong `password`.
    pub sbc_allowed: bool,
    /// Class of service on the internal zone by name; `None`: the zone's default.
    pub cos_internal: Option<String>,
    /// Class of service on the external zone by name; `None`: the zone's default.
    pub cos_external: Option<String>,
    /// Call forwarding.
    pub forwarding: Forwarding,
    /// TLS signalling and SRTP media required.
    pub payload_security: bool,
    /// SIP password; hashed into HA1 values for the realm, never stored.
    pub password: Option<Secret>,
}

impl NewStation {
    /// A SIP phone with authentication on, no SBC flag, the default classes of service, no
    /// forwarding, no password yet.
    pub fn new(number: impl Into<String>, display_name: impl Into<String>) -> Self {
        Self {
            number: number.into(),
            display_name: display_name.into(),
            device_type: DeviceType::SipPhone,
            auth_enabled: true,
            sbc_allowed: false,
            cos_internal: None,
            cos_external: None,
            forwarding: Forwarding::default(),
            payload_security: false,
            password: None,
        }
    }
}

/// Changes to a station; `None` fields stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StationChanges {
    /// New display name.
    pub display_name: Option<String>,
    /// New device type.
    pub device_type: Option<DeviceType>,
    /// Turn authentication on or off.
    pub auth_enabled: Option<bool>,
    /// Set or clear the SBC flag (checked against the resulting station).
    pub sbc_allowed: Option<bool>,
    /// New class of service on the internal zone: `Some(None)` goes back to the default.
    pub cos_internal: Option<Option<String>>,
    /// New class of service on the external zone: `Some(None)` goes back to the default.
    pub cos_external: Option<Option<String>>,
    /// New unconditional forwarding target: `Some(None)` turns it off.
    pub forward_always: Option<Option<String>>,
    /// New forwarding target on busy: `Some(None)` turns it off.
    pub forward_busy: Option<Option<String>>,
    /// New forwarding target on no answer: `Some(None)` turns it off.
    pub forward_no_answer: Option<Option<String>>,
    /// New delay before forwarding on no answer, seconds.
    pub no_answer_secs: Option<u32>,
    /// Require TLS + SRTP or not.
    pub payload_security: Option<bool>,
    /// What happens to the password.
    pub password: PasswordChange,
}

/// What an update does with the station's password.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum PasswordChange {
    /// Keep the stored HA1 values.
    #[default]
    Keep,
    /// Replace every stored HA1 with ones computed from this password for the realm.
    Set(Secret),
    /// Remove the password (the station then cannot authenticate).
    Clear,
}

/// Checks that `value` is a call number (1 to 20 ASCII digits); `field` names it in the error.
pub fn validate_number(field: &'static str, value: &str) -> Result<(), FieldError> {
    let ok =
        (1..=MAX_NUMBER_DIGITS).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(FieldError::NotACallNumber {
            field,
            value: value.to_owned(),
        })
    }
}

/// Checks a class of service name's form (whether a class has it is the caller's business:
/// classes live in the configuration file).
pub(crate) fn validate_class_name(field: &'static str, value: &str) -> Result<(), FieldError> {
    policy::cos_classes::check_name(value).map_err(|_| FieldError::NotAClassName {
        field,
        value: value.to_owned(),
    })
}

/// Checks the forwarding of station `number`: targets are numbers (not its own), the delay
/// is in range.
pub(crate) fn validate_forwarding(number: &str, f: &Forwarding) -> Result<(), FieldError> {
    for (field, target) in f.targets() {
        let digits = target.strip_prefix('+').unwrap_or(target);
        let ok = (1..=MAX_FORWARD_DIGITS).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit());
        if !ok {
            return Err(FieldError::NotADialString {
                field,
                value: target.to_owned(),
            });
        }
        if target == number {
            return Err(FieldError::ForwardToSelf { field });
        }
    }
    if !NO_ANSWER_SECS.contains(&f.no_answer_secs) {
        return Err(FieldError::OutOfRange {
            field: "no-answer seconds",
            min: *NO_ANSWER_SECS.start(),
            max: *NO_ANSWER_SECS.end(),
            value: f.no_answer_secs,
        });
    }
    Ok(())
}

/// Checks a free text: at most `max` characters, no control characters.
pub(crate) fn validate_text(
    field: &'static str,
    value: &str,
    max: usize,
) -> Result<(), FieldError> {
    if value.chars().count() > max {
        return Err(FieldError::TooLong { field, max });
    }
    if value.chars().any(char::is_control) {
        return Err(FieldError::ControlCharacter { field });
    }
    Ok(())
}

/// Checks a password's form (the strength policy is separate): not empty, bounded length.
pub(crate) fn validate_password(password: &Secret) -> Result<(), FieldError> {
    if password.expose().is_empty() {
        return Err(FieldError::Empty { field: "password" });
    }
    if password.expose().chars().count() > MAX_PASSWORD {
        return Err(FieldError::TooLong {
            field: "password",
            max: MAX_PASSWORD,
        });
    }
    Ok(())
}

/// Checks a realm: not empty, printable.
pub(crate) fn validate_realm(realm: &str) -> Result<(), FieldError> {
    if realm.is_empty() {
        return Err(FieldError::Empty { field: "realm" });
    }
    validate_text("realm", realm, MAX_REALM)
}

/// HA1 values for every supported algorithm (user name = call number).
pub(crate) fn compute_ha1(number: &str, realm: &str, password: &Secret) -> Vec<Ha1> {
    [Algorithm::Md5, Algorithm::Sha256]
        .into_iter()
        .map(|algorithm| Ha1 {
            realm: realm.to_owned(),
            algorithm,
            hex: sip::digest::ha1(algorithm, number, realm, password.expose()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(validate_number("number", "2001"), Ok(()));
        assert_eq!(validate_number("number", "0"), Ok(()));
        assert_eq!(validate_number("number", &"9".repeat(20)), Ok(()));
        for bad in ["", "20a1", "+492001", " 2001", "２００１", &"9".repeat(21)] {
            assert_eq!(
                validate_number("number", bad),
                Err(FieldError::NotACallNumber {
                    field: "number",
                    value: bad.to_owned()
                }),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn forwarding_targets() {
        let f = |always: &str| Forwarding {
            always: Some(always.into()),
            ..Forwarding::default()
        };
        assert_eq!(validate_forwarding("2001", &f("2002")), Ok(()));
        assert_eq!(validate_forwarding("2001", &f("+4989123")), Ok(()));
        assert_eq!(
            validate_forwarding("2001", &f("2001")),
            Err(FieldError::ForwardToSelf {
                field: "forward always"
            })
        );
        for bad in ["", "+", "0 89", "2002a", "++49", &"1".repeat(33)] {
            assert!(
                matches!(
                    validate_forwarding("2001", &f(bad)),
                    Err(FieldError::NotADialString { .. })
                ),
                "{bad:?}"
            );
        }
        let slow = Forwarding {
            no_answer_secs: 0,
            ..Forwarding::default()
        };
        assert!(matches!(
            validate_forwarding("2001", &slow),
            Err(FieldError::OutOfRange { value: 0, .. })
        ));
        assert_eq!(validate_class_name("class", "remote"), Ok(()));
        assert!(validate_class_name("class", "Remote X").is_err());
    }

    #[test]
    fn device_types_round_trip() {
        for d in [
            DeviceType::SipPhone,
            DeviceType::Softphone,
            DeviceType::Browser,
        ] {
            assert_eq!(d.to_string().parse::<DeviceType>(), Ok(d));
        }
        assert!("fax".parse::<DeviceType>().is_err());
    }

    #[test]
    fn texts() {
        assert_eq!(validate_text("display name", "Anna Müller", 100), Ok(()));
        assert_eq!(
            validate_text("display name", "a\nb", 100),
            Err(FieldError::ControlCharacter {
                field: "display name"
            })
        );
        assert_eq!(
            validate_text("display name", "abc", 2),
            Err(FieldError::TooLong {
                field: "display name",
                max: 2
            })
        );
        assert_eq!(
            validate_realm(""),
            Err(FieldError::Empty { field: "realm" })
        );
        assert_eq!(
            validate_password(&Secret::new("")),
            Err(FieldError::Empty { field: "password" })
        );
    }
}
