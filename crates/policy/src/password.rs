//! Strong-password policy for stations allowed to register from the Internet (SBC flag).
//!
//! [`check_password`] reports every rule a password breaks, so the CLI and admin UI can show them
//! all at once; [`all_rules`] lists the policy for display; [`generate_password`] makes a
//! password that passes.

use std::collections::HashSet;
use std::fmt;
use std::sync::OnceLock;

use rand::seq::SliceRandom;
use rand::Rng;

/// Minimum length in characters.
pub const MIN_LENGTH: usize = 10;
/// Length of generated passwords.
pub const GENERATED_LENGTH: usize = 16;
/// Length of a forbidden ascending, descending or repeated digit run.
const DIGIT_RUN: usize = 4;

/// One rule of the strong-password policy. `Display` states the rule as a user reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PasswordRule {
    /// At least [`MIN_LENGTH`] characters.
    MinLength,
    /// At least three of the four classes: lower case, upper case, digits, other characters.
    CharacterClasses,
    /// The station's own call number must not appear in the password.
    NoCallNumber,
    /// No 4 ascending (1234), descending (4321) or repeated (0000) digits in a row.
    NoDigitRun,
    /// Not a well-known password, nor a common word with digits or symbols around it.
    NotCommon,
}

impl PasswordRule {
    /// The rule in words, as shown to users.
    pub fn description(self) -> &'static str {
        match self {
            Self::MinLength => "at least 10 characters",
            Self::CharacterClasses => {
                "at least three of: lower-case letters, upper-case letters, digits, other characters"
            }
            Self::NoCallNumber => "must not contain the station's call number",
            Self::NoDigitRun => {
                "no 4 ascending, descending or repeated digits in a row (like 1234, 4321 or 0000)"
            }
            Self::NotCommon => {
                "not a common password, nor a common word with digits or symbols added (like Password123!)"
            }
        }
    }
}

impl fmt::Display for PasswordRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.description())
    }
}

/// Every rule of the policy, in the order they are checked and shown.
pub fn all_rules() -> &'static [PasswordRule] {
    &[
        PasswordRule::MinLength,
        PasswordRule::CharacterClasses,
        PasswordRule::NoCallNumber,
        PasswordRule::NoDigitRun,
        PasswordRule::NotCommon,
    ]
}

/// A password broke one or more rules; `broken` lists every one, in [`all_rules`] order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("password is not strong enough: {}", join(.broken))]
pub struct PasswordRejected {
    /// Every rule broken (never empty).
    pub broken: Vec<PasswordRule>,
}

/// Checks `password` against every rule for the station numbered `call_number`.
pub fn check_password(call_number: &str, password: &str) -> Result<(), PasswordRejected> {
    let broken: Vec<PasswordRule> = all_rules()
        .iter()
        .copied()
        .filter(|&rule| !passes(rule, call_number, password))
        .collect();
    if broken.is_empty() {
        Ok(())
    } else {
        Err(PasswordRejected { broken })
    }
}

/// Makes a [`GENERATED_LENGTH`]-character password with all four character classes and no
/// easily confused characters (0/O/o, 1/l/I, ...), that passes [`check_password`].
pub fn generate_password(call_number: &str, rng: &mut impl Rng) -> String {
    const LOWER: &[u8] = b"abcdefghijkmnpqrstuvwxyz";
    const UPPER: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
    const DIGITS: &[u8] = b"23456789";
    // Symbols that phone web UIs and provisioning files accept without escaping trouble.
    const OTHER: &[u8] = b"!#%*+-=?@_";
    const CLASSES: [&[u8]; 4] = [LOWER, UPPER, DIGITS, OTHER];
    loop {
        let mut chars: Vec<u8> = CLASSES.iter().map(|c| pick(c, rng)).collect();
        while chars.len() < GENERATED_LENGTH {
            // Weight letters up so the result is easier to type than a uniform draw.
            let class = match rng.gen_range(0..10) {
                0..=3 => LOWER,
                4..=6 => UPPER,
                7..=8 => DIGITS,
                _ => OTHER,
            };
            chars.push(pick(class, rng));
        }
        chars.shuffle(rng);
        let candidate: String = chars.into_iter().map(char::from).collect();
        if check_password(call_number, &candidate).is_ok() {
            return candidate;
        }
    }
}

fn pick(set: &[u8], rng: &mut impl Rng) -> u8 {
    set[rng.gen_range(0..set.len())]
}

fn passes(rule: PasswordRule, call_number: &str, password: &str) -> bool {
    match rule {
        PasswordRule::MinLength => password.chars().count() >= MIN_LENGTH,
        PasswordRule::CharacterClasses => character_classes(password) >= 3,
        PasswordRule::NoCallNumber => call_number.is_empty() || !password.contains(call_number),
        PasswordRule::NoDigitRun => !has_digit_run(password),
        PasswordRule::NotCommon => !is_common(password),
    }
}

fn character_classes(password: &str) -> usize {
    let mut seen = [false; 4];
    for c in password.chars() {
        let class = if c.is_lowercase() {
            0
        } else if c.is_uppercase() {
            1
        } else if c.is_ascii_digit() {
            2
        } else {
            3
        };
        seen[class] = true;
    }
    seen.iter().filter(|&&s| s).count()
}

/// True if `DIGIT_RUN` consecutive characters are digits that ascend, descend or repeat by one.
fn has_digit_run(password: &str) -> bool {
    let digits: Vec<Option<i8>> = password
        .chars()
        .map(|c| c.to_digit(10).and_then(|d| i8::try_from(d).ok()))
        .collect();
    digits.windows(DIGIT_RUN).any(|w| {
        let Some(w) = w.iter().copied().collect::<Option<Vec<i8>>>() else {
            return false;
        };
        [-1, 0, 1]
            .iter()
            .any(|step| w.windows(2).all(|p| p[1] - p[0] == *step))
    })
}

fn is_common(password: &str) -> bool {
    let list = common_passwords();
    let lower = password.to_lowercase();
    if list.contains(lower.as_str()) {
        return true;
    }
    // The base word: the password without leading/trailing digits and symbols.
    let base = lower.trim_matches(|c: char| !c.is_alphabetic());
    if base.is_empty() {
        return false;
    }
    list.contains(base) || list.contains(unleet(base).as_str())
}

/// Undoes the common letter substitutions (p@ssw0rd → password).
fn unleet(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '@' | '4' => 'a',
            '0' => 'o',
            '1' | '!' => 'i',
            '3' => 'e',
            '$' | '5' => 's',
            '7' => 't',
            other => other,
        })
        .collect()
}

fn common_passwords() -> &'static HashSet<&'static str> {
    static LIST: OnceLock<HashSet<&'static str>> = OnceLock::new();
    LIST.get_or_init(|| {
        include_str!("common_passwords.txt")
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect()
    })
}

fn join(rules: &[PasswordRule]) -> String {
    rules
        .iter()
        .map(|r| r.description())
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::*;
    use PasswordRule::*;

    fn broken(number: &str, pw: &str) -> Vec<PasswordRule> {
        match check_password(number, pw) {
            Ok(()) => vec![],
            Err(e) => e.broken,
        }
    }

    #[test]
    fn strong_password_passes() {
        assert_eq!(broken("2001", "Tr4m-Gelb-Ofen"), vec![]);
        assert_eq!(broken("2001", "kx9#Lm2qWz"), vec![]);
    }

    #[test]
    fn every_broken_rule_is_reported() {
        assert_eq!(
            broken("1234", "1234"),
            vec![
                MinLength,
                CharacterClasses,
                NoCallNumber,
                NoDigitRun,
                NotCommon
            ]
        );
    }

    #[test]
    fn length_counts_characters_not_bytes() {
        assert!(broken("1", "Äöü-Ñé9xY").contains(&MinLength)); // 9 chars, more bytes
        assert!(!broken("1", "Äöü-Ñé9xYz").contains(&MinLength));
    }

    #[test]
    fn three_of_four_classes() {
        assert!(broken("1", "abcdefghXY").contains(&CharacterClasses));
        assert!(!broken("1", "abcdefghX9").contains(&CharacterClasses));
        assert!(!broken("1", "abcdefgh#9").contains(&CharacterClasses));
    }

    #[test]
    fn call_number_is_refused_anywhere() {
        assert!(broken("2001", "Xy#2001abcQ").contains(&NoCallNumber));
        assert!(!broken("2002", "Xy#2001abcQ").contains(&NoCallNumber));
        assert!(!broken("", "Xy#2001abcQ").contains(&NoCallNumber));
    }

    #[test]
    fn digit_runs() {
        for run in ["1234", "6789", "0000", "9876", "3210"] {
            let pw = format!("Kx#q{run}Zw");
            assert!(broken("1", &pw).contains(&NoDigitRun), "{pw}");
        }
        for ok in ["1357", "7890", "1231", "9#8#7#6"] {
            let pw = format!("Kx#q{ok}Zw");
            assert!(!broken("1", &pw).contains(&NoDigitRun), "{pw}");
        }
    }

    #[test]
    fn common_passwords_and_decorated_words() {
        for pw in [
            "password",
            "PASSWORD",
            "Password123!",
            "!!Welcome2024",
            "P@ssw0rd",
            "P@ssw0rd2024#",
            "Qwertz!987",
            "Summer2025?",
            "123456789",
        ] {
            assert!(broken("1", pw).contains(&NotCommon), "{pw}");
        }
        assert!(!broken("1", "Tr4m-Gelb-Ofen").contains(&NotCommon));
    }

    #[test]
    fn common_list_is_lowercase_and_large_enough() {
        let list = common_passwords();
        assert!(list.len() >= 150, "{}", list.len());
        for w in list {
            assert_eq!(*w, w.to_lowercase(), "list entries are lower case");
        }
    }

    #[test]
    fn rules_read_like_sentences() {
        assert_eq!(MinLength.to_string(), "at least 10 characters");
        assert_eq!(all_rules().len(), 5);
        let e = check_password("1", "short").expect_err("weak");
        assert!(e.to_string().contains("at least 10 characters"), "{e}");
    }

    #[test]
    fn generated_passwords_pass_and_avoid_ambiguous_characters() {
        let mut rng = StdRng::seed_from_u64(7);
        for _ in 0..500 {
            let pw = generate_password("2001", &mut rng);
            assert_eq!(pw.chars().count(), GENERATED_LENGTH);
            assert_eq!(check_password("2001", &pw), Ok(()), "{pw}");
            assert_eq!(character_classes(&pw), 4, "{pw}");
            assert!(!pw.contains(['0', 'O', 'o', '1', 'l', 'I']), "{pw}");
        }
    }

    #[test]
    fn generated_passwords_differ() {
        let mut rng = StdRng::seed_from_u64(1);
        let a = generate_password("2", &mut rng);
        let b = generate_password("2", &mut rng);
        assert_ne!(a, b);
    }
}
