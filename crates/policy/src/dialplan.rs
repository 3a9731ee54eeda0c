//! The numbering plan: what a dialled string means, before class of service judges it.
//!
//! [`Destination::parse`] turns what a station dialled (bare digits, a `tel:` URI or a `sip:`/
//! `sips:` URI with a number as user part) into a [`Destination`]: its [`DestinationClass`], and
//! the canonical number that routing dials and blocked prefixes are matched against. [`classify`]
//! is the short form that returns the class alone.
//!
//! # The default plan (European style)
//!
//! [`NumberingPlan::default`] follows the convention of European PBXs: a trunk access code
//! seizes an outside line, then the number is dialled as from any phone in the country.
//!
//! | dialled | meaning | class | canonical form |
//! |---|---|---|---|
//! | `112`, `0112`, `110`, `0110` | emergency (always allowed by class of service) | local | `112` |
//! | `2001` (2–6 digits, not starting with `0`) | station number | internal | `2001` |
//! | `0` `1234567` | trunk access code + subscriber number | local | `1234567` |
//! | `0` `089 1234567` | trunk access code + national prefix + area code + number | national | `0891234567` |
//! | `0` `00 44 20 7946 0000` | trunk access code + international prefix + country code … | international | `+442079460000` |
//! | `+44 20 7946 0000`, `tel:+44-20-7946-0000` | E.164, no trunk access code needed | international | `+442079460000` |
//! | `+49 89 1234567` with `country_code = "49"` | E.164 in the office's own country | national | `0891234567` |
//! | `0044…` | trunk access code + `044…`: a national number, because that is what the trunk dials | national | `044…` |
//! | `9876543` (no trunk access code, too long for a station) | not in the plan | refused | — |
//!
//! Every figure is a setting: no trunk access code (numbers outside the station range go out
//! directly), another national or international prefix (`011` in North America), the office's
//! country code, the station range as lengths or as a list, and the emergency numbers. The
//! defaults are German-shaped (`110` is the German police); adjust them per country. The
//! country code is unset by default, so `+<own country>…` counts as international: a wrong
//! country code would make a foreign country "national", while an unset one only errs on the
//! strict side.
//!
//! # Normalisation
//!
//! Visual separators (space, `-`, `.`, `(`, `)`, `/`) are dropped; `%XX` escapes are decoded;
//! `+` is accepted only in front. Anything else — letters, `*`, `#`, pauses, a `;phone-context`
//! or any other parameter on the number, a URI scheme other than `sip`, `sips` and `tel` — is
//! [`NotDialable`]: class of service judges only numbers whose meaning is certain.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

/// Longest E.164 number in digits (ITU-T E.164 §6.1), country code included.
pub const MAX_E164_DIGITS: usize = 15;
/// Longest dialled string in digits, prefixes included.
pub const MAX_DIALLED_DIGITS: usize = 32;

/// Where a call goes, for class of service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DestinationClass {
    /// A station of this PBX.
    Internal,
    /// An outside number dialled without the national prefix (the office's own area, short
    /// numbers such as directory enquiries and emergency numbers).
    Local,
    /// An outside number in the office's country, dialled with the national prefix (or in E.164
    /// with the office's country code).
    National,
    /// An outside number in another country.
    International,
}

impl DestinationClass {
    /// All classes, from the cheapest to the most expensive.
    pub const ALL: [Self; 4] = [
        Self::Internal,
        Self::Local,
        Self::National,
        Self::International,
    ];

    /// `"internal"`, `"local"`, `"national"` or `"international"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Internal => "internal",
            Self::Local => "local",
            Self::National => "national",
            Self::International => "international",
        }
    }
}

impl fmt::Display for DestinationClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A destination class name other than `internal`, `local`, `national` or `international`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown destination class {0:?} (expected internal, local, national or international)")]
pub struct DestinationClassParseError(pub String);

impl FromStr for DestinationClass {
    type Err = DestinationClassParseError;

    /// Parses the names printed by `Display`, ignoring ASCII case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|c| c.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| DestinationClassParseError(s.to_owned()))
    }
}

/// Which digit strings are station numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InternalNumbers {
    /// Any digit string of `min..=max` digits that does not start with the trunk access code
    /// (or, in a plan without one, with the national or international prefix).
    Lengths {
        /// Fewest digits of a station number.
        min: usize,
        /// Most digits of a station number.
        max: usize,
    },
    /// Exactly these numbers (for instance the station list from the store).
    Listed(BTreeSet<String>),
}

/// How numbers are dialled at this office. See the module documentation for the default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberingPlan {
    /// Station numbers. Default: 2 to 6 digits.
    pub internal: InternalNumbers,
    /// Dialled before every outside number to seize a line. Default `"0"`; `None`: outside
    /// numbers are dialled directly.
    pub trunk_access_code: Option<String>,
    /// Prefix of national numbers. Default `"0"`; `None` for countries without one (then
    /// every outside number without the international prefix is national).
    pub national_prefix: Option<String>,
    /// Prefix of international numbers. Default `"00"`; a leading `+` always means E.164.
    pub international_prefix: String,
    /// The office's country code (`"49"`), so that E.164 numbers in the own country count as
    /// national. Default unset: every `+` number is international.
    pub country_code: Option<String>,
    /// Emergency numbers, reached with or without the trunk access code and never refused by
    /// class of service. Default `112` and `110`.
    pub emergency_numbers: Vec<String>,
}

impl Default for NumberingPlan {
    fn default() -> Self {
        Self {
            internal: InternalNumbers::Lengths { min: 2, max: 6 },
            trunk_access_code: Some("0".into()),
            national_prefix: Some("0".into()),
            international_prefix: "00".into(),
            country_code: None,
            emergency_numbers: vec!["112".into(), "110".into()],
        }
    }
}

/// A setting of [`NumberingPlan`] that makes the plan ambiguous.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// A prefix or number setting is empty or not made of digits only.
    #[error("{setting} must be one or more digits")]
    NotDigits {
        /// The setting's name.
        setting: &'static str,
    },
    /// The national and international prefixes are the same.
    #[error("the national and international prefixes must differ")]
    SamePrefixes,
    /// The station number lengths are empty or out of range.
    #[error("station numbers must have between 1 and {MAX_DIALLED_DIGITS} digits, min <= max")]
    BadLengths,
}

impl NumberingPlan {
    /// Checks the settings, for loading a configuration. [`Destination::parse`] does not need a
    /// valid plan to stay safe (an empty prefix matches nothing), only to be useful.
    pub fn validate(&self) -> Result<(), PlanError> {
        let digits = |setting, s: &str| {
            if is_digits(s) {
                Ok(())
            } else {
                Err(PlanError::NotDigits { setting })
            }
        };
        if let Some(t) = &self.trunk_access_code {
            digits("trunk_access_code", t)?;
        }
        if let Some(n) = &self.national_prefix {
            digits("national_prefix", n)?;
            if *n == self.international_prefix {
                return Err(PlanError::SamePrefixes);
            }
        }
        digits("international_prefix", &self.international_prefix)?;
        if let Some(c) = &self.country_code {
            digits("country_code", c)?;
        }
        for e in &self.emergency_numbers {
            digits("emergency_numbers", e)?;
        }
        match &self.internal {
            InternalNumbers::Lengths { min, max } => {
                if *min == 0 || min > max || *max > MAX_DIALLED_DIGITS {
                    return Err(PlanError::BadLengths);
                }
            }
            InternalNumbers::Listed(set) => {
                for n in set {
                    digits("internal numbers", n)?;
                }
            }
        }
        Ok(())
    }

    /// Brings a blocked prefix written as an administrator would (`0900`, `118`, `+881`,
    /// `00881`, `+49900`; never with the trunk access code) into the canonical form that
    /// [`Destination::canonical`] is matched against.
    pub fn canonical_prefix(&self, prefix: &str) -> Result<String, NotDialable> {
        let Number { plus, digits } = normalise(prefix)?;
        if plus {
            return Ok(self.global(&digits)?.canonical);
        }
        if let Some(rest) = strip(&digits, &self.international_prefix) {
            return Ok(self.global(rest)?.canonical);
        }
        Ok(digits)
    }

    fn is_emergency(&self, digits: &str) -> bool {
        self.emergency_numbers.iter().any(|e| e == digits)
    }

    fn is_internal(&self, digits: &str) -> bool {
        match &self.internal {
            InternalNumbers::Listed(set) => set.contains(digits),
            InternalNumbers::Lengths { min, max } => {
                let outside_prefix = match &self.trunk_access_code {
                    Some(t) => strip(digits, t).is_some(),
                    None => {
                        strip(digits, &self.international_prefix).is_some()
                            || self
                                .national_prefix
                                .as_deref()
                                .is_some_and(|n| strip(digits, n).is_some())
                    }
                };
                (*min..=*max).contains(&digits.len()) && !outside_prefix
            }
        }
    }

    /// An outside number after the trunk access code.
    fn outside(&self, digits: &str) -> Result<Destination, NotDialable> {
        if digits.is_empty() {
            return Err(NotDialable::Incomplete);
        }
        if let Some(rest) = strip(digits, &self.international_prefix) {
            return self.global(rest);
        }
        let class = match &self.national_prefix {
            Some(n) => match strip(digits, n) {
                Some("") => return Err(NotDialable::Incomplete),
                Some(_) => DestinationClass::National,
                None => DestinationClass::Local,
            },
            None => DestinationClass::National,
        };
        Ok(Destination::new(class, digits.to_owned()))
    }

    /// An E.164 number: country code and subscriber number, no prefix.
    fn global(&self, e164: &str) -> Result<Destination, NotDialable> {
        if e164.is_empty() {
            return Err(NotDialable::Incomplete);
        }
        if e164.len() > MAX_E164_DIGITS {
            return Err(NotDialable::TooLong);
        }
        let own = self.country_code.as_deref().and_then(|cc| strip(e164, cc));
        match own {
            Some("") => Err(NotDialable::Incomplete),
            Some(nsn) => {
                let national = self.national_prefix.as_deref().unwrap_or_default();
                Ok(Destination::new(
                    DestinationClass::National,
                    format!("{national}{nsn}"),
                ))
            }
            None => Ok(Destination::new(
                DestinationClass::International,
                format!("+{e164}"),
            )),
        }
    }
}

/// A dialled string, understood.
///
/// `Debug` shows the number: log it only at DEBUG or below, or wrapped as personal data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// Where the call goes.
    pub class: DestinationClass,
    /// One of the plan's emergency numbers. Class of service never refuses these calls.
    pub emergency: bool,
    /// The number without trunk access code in the form routing dials: the station number,
    /// the local number, the national number with its national prefix (`0891234567`), or
    /// `+` and the E.164 digits for another country (`+442079460000`).
    pub canonical: String,
}

impl Destination {
    fn new(class: DestinationClass, canonical: String) -> Self {
        Self {
            class,
            emergency: false,
            canonical,
        }
    }

    /// Normalises and classifies `dialled` (digits, `tel:` URI or `sip:`/`sips:` URI).
    pub fn parse(dialled: &str, plan: &NumberingPlan) -> Result<Self, NotDialable> {
        let Number { plus, digits } = normalise(dialled)?;
        if plus {
            return plan.global(&digits);
        }
        let after_trunk = plan
            .trunk_access_code
            .as_deref()
            .and_then(|t| strip(&digits, t));
        let emergency = [Some(digits.as_str()), after_trunk]
            .into_iter()
            .flatten()
            .find(|d| plan.is_emergency(d));
        if let Some(number) = emergency {
            return Ok(Self {
                class: DestinationClass::Local,
                emergency: true,
                canonical: number.to_owned(),
            });
        }
        if plan.is_internal(&digits) {
            return Ok(Self::new(DestinationClass::Internal, digits));
        }
        match (&plan.trunk_access_code, after_trunk) {
            (None, _) => plan.outside(&digits),
            (Some(_), Some(rest)) => plan.outside(rest),
            (Some(_), None) => Err(NotDialable::NotInPlan),
        }
    }
}

/// Classifies `dialled` under `plan`; see [`Destination::parse`] for the whole verdict.
pub fn classify(dialled: &str, plan: &NumberingPlan) -> Result<DestinationClass, NotDialable> {
    Destination::parse(dialled, plan).map(|d| d.class)
}

/// Why a dialled string is not a number class of service can judge. `Display` never shows
/// the number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NotDialable {
    /// Nothing but separators.
    #[error("empty number")]
    Empty,
    /// Only a prefix: trunk access code, national or international prefix, `+`.
    #[error("incomplete number")]
    Incomplete,
    /// More than [`MAX_E164_DIGITS`] digits after `+`, or [`MAX_DIALLED_DIGITS`] in all.
    #[error("number too long")]
    TooLong,
    /// A character that is neither a digit, a leading `+` nor a visual separator.
    #[error("character {} is not dialable", CharName(*.0))]
    InvalidCharacter(char),
    /// A `+` after the first digit.
    #[error("'+' is only allowed in front")]
    MisplacedPlus,
    /// A `;phone-context=` on the number: local numbers in another context are not supported.
    #[error("numbers with a phone-context are not supported")]
    PhoneContext,
    /// Another parameter on the number (`;ext=`, `;postd=`, `;isub=` …).
    #[error("parameter {0:?} on the number is not supported")]
    Parameter(String),
    /// A URI scheme other than `sip`, `sips` or `tel`.
    #[error("unsupported URI scheme")]
    UnsupportedScheme,
    /// A `sip:`/`sips:` URI without a user part.
    #[error("SIP URI without a user part")]
    NoUserPart,
    /// A `%` not followed by two hexadecimal digits.
    #[error("malformed %-escape")]
    BadEscape,
    /// Not a station number, and outside numbers need the trunk access code first.
    #[error("not in the numbering plan (outside numbers start with the trunk access code)")]
    NotInPlan,
}

/// A character for logs and SIP reason phrases: printable ASCII as is, the rest as `U+XXXX`.
struct CharName(char);

impl fmt::Display for CharName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            c @ ('!'..='~') if c != '"' && c != '\\' => write!(f, "'{c}'"),
            c => write!(f, "U+{:04X}", u32::from(c)),
        }
    }
}

/// The digits of a number, and whether it was written with a leading `+`.
struct Number {
    plus: bool,
    digits: String,
}

/// Visual separators of RFC 3966 §5.1.1 plus space and `/`, common in written numbers.
const SEPARATORS: &[char] = &[' ', '-', '.', '(', ')', '/'];

fn normalise(dialled: &str) -> Result<Number, NotDialable> {
    let number = number_part(dialled.trim())?;
    let (number, params) = match number.split_once(';') {
        Some((n, p)) => (n, Some(p)),
        None => (number.as_str(), None),
    };
    if let Some(params) = params {
        let first = params.split(';').next().unwrap_or_default();
        let name = first.split('=').next().unwrap_or_default();
        return Err(if name.eq_ignore_ascii_case("phone-context") {
            NotDialable::PhoneContext
        } else {
            NotDialable::Parameter(name.chars().take(32).collect())
        });
    }
    let mut plus = false;
    let mut digits = String::with_capacity(number.len());
    for c in number.chars() {
        match c {
            '0'..='9' => digits.push(c),
            '+' if digits.is_empty() && !plus => plus = true,
            '+' => return Err(NotDialable::MisplacedPlus),
            c if SEPARATORS.contains(&c) => {}
            c => return Err(NotDialable::InvalidCharacter(c)),
        }
        if digits.len() > MAX_DIALLED_DIGITS {
            return Err(NotDialable::TooLong);
        }
    }
    match (plus, digits.is_empty()) {
        (false, true) => Err(NotDialable::Empty),
        (true, true) => Err(NotDialable::Incomplete),
        _ => Ok(Number { plus, digits }),
    }
}

/// The number inside a `tel:` or `sip:` URI (parameters kept), or the bare string; `%XX`
/// escapes decoded.
fn number_part(s: &str) -> Result<String, NotDialable> {
    let Some((scheme, rest)) = s.split_once(':') else {
        return percent_decode(s);
    };
    if scheme.eq_ignore_ascii_case("tel") {
        return percent_decode(rest);
    }
    if scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips") {
        // RFC 3261 §19.1.1: the user part ends at the first '@' ('@' inside it is escaped).
        let Some((user, _host)) = rest.split_once('@') else {
            return Err(NotDialable::NoUserPart);
        };
        if user.is_empty() {
            return Err(NotDialable::NoUserPart);
        }
        return percent_decode(user);
    }
    if !scheme.is_empty() && scheme.chars().all(|c| c.is_ascii_alphabetic()) {
        return Err(NotDialable::UnsupportedScheme);
    }
    Err(NotDialable::InvalidCharacter(':'))
}

fn percent_decode(s: &str) -> Result<String, NotDialable> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let hex = |c: Option<char>| c.and_then(|c| c.to_digit(16));
        let (Some(hi), Some(lo)) = (hex(chars.next()), hex(chars.next())) else {
            return Err(NotDialable::BadEscape);
        };
        // A byte above 0x7F cannot be a digit, separator or '+': keep it so it is refused.
        out.push(char::from_u32(hi * 16 + lo).unwrap_or(char::REPLACEMENT_CHARACTER));
    }
    Ok(out)
}

/// `s` without `prefix`; an empty prefix matches nothing (an unset setting never matches).
fn strip<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    if prefix.is_empty() {
        None
    } else {
        s.strip_prefix(prefix)
    }
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use DestinationClass::*;

    fn plan() -> NumberingPlan {
        NumberingPlan::default()
    }

    /// A plan without trunk access code, for offices that dial out directly.
    fn direct_plan() -> NumberingPlan {
        NumberingPlan {
            trunk_access_code: None,
            ..NumberingPlan::default()
        }
    }

    fn parse(s: &str, plan: &NumberingPlan) -> Destination {
        Destination::parse(s, plan).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    #[test]
    fn default_plan_table() {
        // (dialled, class, canonical), the module documentation's table.
        let table = [
            ("2001", Internal, "2001"),
            ("10", Internal, "10"),
            ("999999", Internal, "999999"),
            ("01234567", Local, "1234567"),
            ("011833", Local, "11833"),
            ("0 089 1234567", National, "0891234567"),
            ("00900123456", National, "0900123456"),
            ("0 00 44 20 7946 0000", International, "+442079460000"),
            ("+44 20 7946 0000", International, "+442079460000"),
            ("0044207946", National, "044207946"),
            ("+49 89 1234567", International, "+49891234567"),
        ];
        for (dialled, class, canonical) in table {
            let d = parse(dialled, &plan());
            assert_eq!(
                (d.class, d.canonical.as_str()),
                (class, canonical),
                "{dialled}"
            );
            assert!(!d.emergency, "{dialled}");
        }
    }

    #[test]
    fn emergency_numbers_with_and_without_trunk_access_code() {
        for dialled in ["112", "0112", "110", "0 110"] {
            let d = parse(dialled, &plan());
            assert!(d.emergency, "{dialled}");
            assert_eq!(d.class, Local);
        }
        assert_eq!(parse("0112", &plan()).canonical, "112");
        // Not an emergency number: national prefix in front.
        assert!(!parse("00112", &plan()).emergency);
    }

    #[test]
    fn own_country_code_makes_e164_national() {
        let p = NumberingPlan {
            country_code: Some("49".into()),
            ..plan()
        };
        let d = parse("+49 89 1234567", &p);
        assert_eq!((d.class, d.canonical.as_str()), (National, "0891234567"));
        let d = parse("0 0049 900 123456", &p);
        assert_eq!((d.class, d.canonical.as_str()), (National, "0900123456"));
        assert_eq!(classify("+44 1234", &p), Ok(International));
        assert_eq!(classify("+49", &p), Err(NotDialable::Incomplete));
    }

    #[test]
    fn direct_plan_without_trunk_access_code() {
        let p = direct_plan();
        assert_eq!(classify("2001", &p), Ok(Internal));
        assert_eq!(classify("0891234567", &p), Ok(National));
        assert_eq!(classify("0044 20 7946 0000", &p), Ok(International));
        assert_eq!(classify("1234567", &p), Ok(Local));
        // Short numbers starting with a prefix are outside numbers, not stations.
        assert_eq!(classify("0891", &p), Ok(National));
        assert_eq!(classify("0", &p), Err(NotDialable::Incomplete));
        assert_eq!(classify("00", &p), Err(NotDialable::Incomplete));
    }

    #[test]
    fn listed_station_numbers() {
        let p = NumberingPlan {
            internal: InternalNumbers::Listed(["2001".to_owned(), "0815".to_owned()].into()),
            ..plan()
        };
        assert_eq!(classify("2001", &p), Ok(Internal));
        assert_eq!(classify("0815", &p), Ok(Internal));
        assert_eq!(classify("2002", &p), Err(NotDialable::NotInPlan));
    }

    #[test]
    fn no_national_prefix_means_every_outside_number_is_national() {
        let p = NumberingPlan {
            national_prefix: None,
            ..plan()
        };
        assert_eq!(classify("0912345678", &p), Ok(National));
        assert_eq!(classify("0 00 34 912345678", &p), Ok(International));
    }

    #[test]
    fn uri_forms() {
        let p = plan();
        for (uri, class, canonical) in [
            ("tel:+44-20-7946-0000", International, "+442079460000"),
            ("TEL:+44.20.7946.0000", International, "+442079460000"),
            (
                "sip:+442079460000@pbx.example;user=phone",
                International,
                "+442079460000",
            ),
            (
                "sips:000442079460000@pbx.example",
                International,
                "+442079460000",
            ),
            ("sip:2001@192.168.1.10:5060", Internal, "2001"),
            ("sip:%2B44%20207946@pbx", International, "+44207946"),
            ("sip:%30%30%30%34%34@pbx", International, "+44"),
            ("  (0) 089/123-456  ", National, "089123456"),
        ] {
            let d = parse(uri, &p);
            assert_eq!((d.class, d.canonical.as_str()), (class, canonical), "{uri}");
        }
    }

    #[test]
    fn junk_is_not_dialable() {
        let p = plan();
        let cases = [
            ("", NotDialable::Empty),
            (" - ", NotDialable::Empty),
            ("0", NotDialable::Incomplete),
            ("00", NotDialable::Incomplete),
            ("000", NotDialable::Incomplete),
            ("+", NotDialable::Incomplete),
            ("0800-FLOWERS", NotDialable::InvalidCharacter('F')),
            ("*21*0900123", NotDialable::InvalidCharacter('*')),
            ("2001#", NotDialable::InvalidCharacter('#')),
            ("0089\n123", NotDialable::InvalidCharacter('\n')),
            ("0089\u{a0}123", NotDialable::InvalidCharacter('\u{a0}')),
            ("0089\u{661}", NotDialable::InvalidCharacter('\u{661}')),
            ("0+44123", NotDialable::MisplacedPlus),
            ("++44", NotDialable::MisplacedPlus),
            (
                "tel:7946;phone-context=example.com",
                NotDialable::PhoneContext,
            ),
            ("sip:7946;Phone-Context=+44@pbx", NotDialable::PhoneContext),
            (
                "tel:+441234;postd=pp00",
                NotDialable::Parameter("postd".into()),
            ),
            ("mailto:someone@example.com", NotDialable::UnsupportedScheme),
            ("sip:pbx.example", NotDialable::NoUserPart),
            ("sip:@pbx.example", NotDialable::NoUserPart),
            ("sip:alice@pbx.example", NotDialable::InvalidCharacter('a')),
            ("sip:2001:secret@pbx", NotDialable::InvalidCharacter(':')),
            ("sip:%3@pbx", NotDialable::BadEscape),
            ("sip:%C3%A9@pbx", NotDialable::InvalidCharacter('\u{c3}')),
            ("+1234567890123456", NotDialable::TooLong),
            (&"1".repeat(40), NotDialable::TooLong),
            ("9876543", NotDialable::NotInPlan),
            ("1", NotDialable::NotInPlan),
        ];
        for (dialled, err) in cases {
            assert_eq!(Destination::parse(dialled, &p), Err(err), "{dialled:?}");
        }
    }

    #[test]
    fn not_dialable_display_escapes_characters() {
        assert_eq!(
            NotDialable::InvalidCharacter('\n').to_string(),
            "character U+000A is not dialable"
        );
        assert_eq!(
            NotDialable::InvalidCharacter('"').to_string(),
            "character U+0022 is not dialable"
        );
        assert_eq!(
            NotDialable::InvalidCharacter('*').to_string(),
            "character '*' is not dialable"
        );
    }

    #[test]
    fn blocked_prefixes_are_canonicalised() {
        let p = NumberingPlan {
            country_code: Some("49".into()),
            ..plan()
        };
        for (written, canonical) in [
            ("0900", "0900"),
            ("118", "118"),
            ("+881", "+881"),
            ("00881", "+881"),
            ("+49 900", "0900"),
            ("0049900", "0900"),
        ] {
            assert_eq!(
                p.canonical_prefix(written).as_deref(),
                Ok(canonical),
                "{written}"
            );
        }
    }

    #[test]
    fn plan_validation() {
        assert_eq!(plan().validate(), Ok(()));
        assert_eq!(direct_plan().validate(), Ok(()));
        let bad = |f: fn(&mut NumberingPlan)| {
            let mut p = plan();
            f(&mut p);
            p.validate()
        };
        assert_eq!(
            bad(|p| p.international_prefix = String::new()),
            Err(PlanError::NotDigits {
                setting: "international_prefix"
            })
        );
        assert_eq!(
            bad(|p| p.national_prefix = Some("00".into())),
            Err(PlanError::SamePrefixes)
        );
        assert_eq!(
            bad(|p| p.internal = InternalNumbers::Lengths { min: 5, max: 3 }),
            Err(PlanError::BadLengths)
        );
        assert_eq!(
            bad(|p| p.emergency_numbers.push("11 2".into())),
            Err(PlanError::NotDigits {
                setting: "emergency_numbers"
            })
        );
    }

    #[test]
    fn empty_settings_match_nothing() {
        // An invalid plan must not turn everything into one class.
        let p = NumberingPlan {
            trunk_access_code: Some(String::new()),
            international_prefix: String::new(),
            ..plan()
        };
        assert_eq!(classify("2001", &p), Ok(Internal));
        assert_eq!(classify("0891234", &p), Err(NotDialable::NotInPlan));
    }

    #[test]
    fn destination_class_names_round_trip() {
        for c in DestinationClass::ALL {
            assert_eq!(c.to_string().parse::<DestinationClass>(), Ok(c));
        }
        assert_eq!("NATIONAL".parse::<DestinationClass>(), Ok(National));
        assert!("premium".parse::<DestinationClass>().is_err());
    }
}
