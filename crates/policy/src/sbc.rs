//! When a station may carry the "Internet registration via SBC" flag (may register on the
//! external zone): authentication on, and a password that passes the strong-password policy.

use std::fmt;

use crate::password::{check_password, PasswordRejected};

/// What is known about the station's password when the flag is checked.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum PasswordState<'a> {
    /// A password is being set in the same change: it is checked against the policy now.
    New(&'a str),
    /// The stored password is kept; only whether it passed the policy when set is known
    /// (the plain password is never stored).
    Stored {
        /// The stored password passed [`check_password`] when it was set.
        strong: bool,
    },
    /// The station has no password.
    Missing,
}

impl fmt::Debug for PasswordState<'_> {
    // Never print a password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::New(_) => f.write_str("New(***)"),
            Self::Stored { strong } => f.debug_struct("Stored").field("strong", strong).finish(),
            Self::Missing => f.write_str("Missing"),
        }
    }
}

/// One reason the SBC flag was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SbcRefusal {
    /// Authentication is off for the station.
    AuthDisabled,
    /// The station has no password.
    NoPassword,
    /// The stored password did not pass the policy when it was set; a new one is needed.
    StoredPasswordWeak,
    /// The new password breaks these rules.
    WeakPassword(PasswordRejected),
}

impl fmt::Display for SbcRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AuthDisabled => f.write_str("authentication must be on"),
            Self::NoPassword => f.write_str("the station needs a password"),
            Self::StoredPasswordWeak => f.write_str(
                "the current password does not pass the strong-password policy; set a new one",
            ),
            Self::WeakPassword(e) => e.fmt(f),
        }
    }
}

/// The SBC flag cannot be set; `reasons` lists every problem (never empty).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Internet registration via SBC refused: {}", join(.reasons))]
pub struct SbcFlagRefused {
    /// Every reason, authentication first.
    pub reasons: Vec<SbcRefusal>,
}

impl SbcFlagRefused {
    /// The password rules broken by a new password, if that is one of the reasons.
    pub fn broken_rules(&self) -> &[crate::PasswordRule] {
        self.reasons
            .iter()
            .find_map(|r| match r {
                SbcRefusal::WeakPassword(e) => Some(e.broken.as_slice()),
                _ => None,
            })
            .unwrap_or_default()
    }
}

/// Decides whether the station numbered `call_number` may carry the SBC flag.
pub fn check_sbc_flag(
    call_number: &str,
    auth_enabled: bool,
    password: PasswordState<'_>,
) -> Result<(), SbcFlagRefused> {
    let mut reasons = Vec::new();
    if !auth_enabled {
        reasons.push(SbcRefusal::AuthDisabled);
    }
    match password {
        PasswordState::New(pw) => {
            if let Err(e) = check_password(call_number, pw) {
                reasons.push(SbcRefusal::WeakPassword(e));
            }
        }
        PasswordState::Stored { strong: true } => {}
        PasswordState::Stored { strong: false } => reasons.push(SbcRefusal::StoredPasswordWeak),
        PasswordState::Missing => reasons.push(SbcRefusal::NoPassword),
    }
    if reasons.is_empty() {
        Ok(())
    } else {
        Err(SbcFlagRefused { reasons })
    }
}

fn join(reasons: &[SbcRefusal]) -> String {
    reasons
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PasswordRule;

    const STRONG: &str = "Tr4m-Gelb-Ofen";

    #[test]
    fn allowed_with_auth_and_strong_password() {
        assert_eq!(
            check_sbc_flag("2001", true, PasswordState::New(STRONG)),
            Ok(())
        );
        assert_eq!(
            check_sbc_flag("2001", true, PasswordState::Stored { strong: true }),
            Ok(())
        );
    }

    #[test]
    fn refused_with_auth_off_even_with_strong_password() {
        let e = check_sbc_flag("2001", false, PasswordState::New(STRONG)).expect_err("auth off");
        assert_eq!(e.reasons, vec![SbcRefusal::AuthDisabled]);
        assert!(e.to_string().contains("authentication must be on"), "{e}");
    }

    #[test]
    fn refused_without_password_or_with_weak_stored_one() {
        let e = check_sbc_flag("2001", true, PasswordState::Missing).expect_err("no password");
        assert_eq!(e.reasons, vec![SbcRefusal::NoPassword]);
        let e = check_sbc_flag("2001", true, PasswordState::Stored { strong: false })
            .expect_err("weak stored");
        assert_eq!(e.reasons, vec![SbcRefusal::StoredPasswordWeak]);
    }

    #[test]
    fn weak_new_password_carries_every_broken_rule() {
        let e = check_sbc_flag("2001", false, PasswordState::New("x2001")).expect_err("weak");
        assert_eq!(e.reasons[0], SbcRefusal::AuthDisabled);
        assert_eq!(
            e.broken_rules(),
            &[
                PasswordRule::MinLength,
                PasswordRule::CharacterClasses,
                PasswordRule::NoCallNumber
            ]
        );
        let text = e.to_string();
        assert!(text.contains("at least 10 characters"), "{text}");
        assert!(
            !text.contains("x2001"),
            "the password never appears in messages: {text}"
        );
    }

    #[test]
    fn debug_hides_new_password() {
        assert_eq!(format!("{:?}", PasswordState::New(STRONG)), "New(***)");
    }
}
