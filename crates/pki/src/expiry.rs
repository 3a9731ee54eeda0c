//! Expiry warnings: `now` comes from the caller.

use time::{Duration, OffsetDateTime};

use crate::spec::rfc3339;

/// How far ahead an expiry is warned about, days.
pub const EXPIRY_WARNING_DAYS: i64 = 30;

/// Where a certificate stands on its validity period at a given moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpiryState {
    /// Not valid before its notBefore.
    NotYetValid,
    /// Valid, with more than [`EXPIRY_WARNING_DAYS`] left.
    Valid,
    /// Valid, expiring within [`EXPIRY_WARNING_DAYS`]; whole days left (0 = within a day).
    ExpiresSoon {
        /// Whole days left.
        days_left: i64,
    },
    /// Past its notAfter.
    Expired,
}

/// The state of a certificate valid from `not_before` to `not_after`, at `now`.
pub fn expiry_state(
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    now: OffsetDateTime,
) -> ExpiryState {
    if now < not_before {
        ExpiryState::NotYetValid
    } else if now > not_after {
        ExpiryState::Expired
    } else if not_after - now <= Duration::days(EXPIRY_WARNING_DAYS) {
        ExpiryState::ExpiresSoon {
            days_left: (not_after - now).whole_days(),
        }
    } else {
        ExpiryState::Valid
    }
}

/// A warning for the log when the certificate `name` expires within
/// [`EXPIRY_WARNING_DAYS`], has expired, or is not valid yet; `None` when it is fine.
pub fn expiry_warning(
    name: &str,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    now: OffsetDateTime,
) -> Option<String> {
    match expiry_state(not_before, not_after, now) {
        ExpiryState::Valid => None,
        ExpiryState::NotYetValid => Some(format!(
            "certificate {name} is not valid before {}",
            rfc3339(not_before)
        )),
        ExpiryState::ExpiresSoon { days_left } => Some(format!(
            "certificate {name} expires in {days_left} days ({}); issue or import a new one",
            rfc3339(not_after)
        )),
        ExpiryState::Expired => Some(format!(
            "certificate {name} expired on {}; issue or import a new one",
            rfc3339(not_after)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::parse_time;

    fn t(s: &str) -> OffsetDateTime {
        parse_time("t", s).expect("time")
    }

    #[test]
    fn warns_thirty_days_ahead() {
        let (start, end) = (t("2026-01-01"), t("2026-12-31"));
        assert_eq!(
            expiry_state(start, end, t("2026-06-01")),
            ExpiryState::Valid
        );
        assert_eq!(expiry_warning("x", start, end, t("2026-11-30")), None);
        assert_eq!(
            expiry_state(start, end, t("2026-12-01")),
            ExpiryState::ExpiresSoon { days_left: 30 }
        );
        let w = expiry_warning("srv", start, end, t("2026-12-21")).expect("warning");
        assert!(w.contains("srv expires in 10 days"), "{w}");
        assert_eq!(
            expiry_state(start, end, t("2027-01-01")),
            ExpiryState::Expired
        );
        assert_eq!(
            expiry_state(start, end, t("2025-12-31")),
            ExpiryState::NotYetValid
        );
    }
}
