//! Class of service and call forwarding options of `homeline station add|set`: class names
//! resolved against the configuration, forwarding targets checked against the station's
//! classes before anything is stored.

use anyhow::{bail, Result};
use policy::cos_classes::DEFAULT_KEYWORD;
use policy::{check_forward_target, CosClasses, NumberingPlan, StationClasses};
use store::Forwarding;

use crate::cli::StationFields;

/// The class and forwarding changes asked on the command line: `None` keeps, `Some(None)`
/// goes back to the default (classes) or turns off (forwarding).
#[derive(Debug, Default)]
pub(crate) struct Requested {
    pub(crate) class_internal: Option<Option<String>>,
    pub(crate) class_external: Option<Option<String>>,
    pub(crate) forward_always: Option<Option<String>>,
    pub(crate) forward_busy: Option<Option<String>>,
    pub(crate) forward_no_answer: Option<Option<String>>,
    pub(crate) no_answer_secs: Option<u32>,
}

impl Requested {
    /// Reads the options; an unknown class name is an error naming the option and listing
    /// the classes that exist.
    pub(crate) fn parse(fields: &StationFields, classes: &CosClasses) -> Result<Requested> {
        let class = |flag: &str, value: &Option<String>| -> Result<Option<Option<String>>> {
            let Some(name) = value else { return Ok(None) };
            if name == DEFAULT_KEYWORD {
                return Ok(Some(None));
            }
            if let Err(e) = classes.resolve(name) {
                bail!("{flag}: {e}");
            }
            Ok(Some(Some(name.clone())))
        };
        Ok(Requested {
            class_internal: class("--class-internal", &fields.class_internal)?,
            class_external: class("--class-external", &fields.class_external)?,
            forward_always: fields.forward_always.as_deref().map(target),
            forward_busy: fields.forward_busy.as_deref().map(target),
            forward_no_answer: fields.forward_no_answer.as_deref().map(target),
            no_answer_secs: fields.no_answer_secs,
        })
    }

    /// True when a class or forwarding option was given (only then is the station's
    /// forwarding checked again, so other changes never trip over a class removed from the
    /// configuration).
    pub(crate) fn any(&self) -> bool {
        self.class_internal.is_some()
            || self.class_external.is_some()
            || self.forward_always.is_some()
            || self.forward_busy.is_some()
            || self.forward_no_answer.is_some()
            || self.no_answer_secs.is_some()
    }

    /// `forwarding` with the requested changes applied.
    pub(crate) fn apply(&self, mut forwarding: Forwarding) -> Forwarding {
        if let Some(t) = &self.forward_always {
            forwarding.always = t.clone();
        }
        if let Some(t) = &self.forward_busy {
            forwarding.busy = t.clone();
        }
        if let Some(t) = &self.forward_no_answer {
            forwarding.no_answer = t.clone();
        }
        if let Some(s) = self.no_answer_secs {
            forwarding.no_answer_secs = s;
        }
        forwarding
    }
}

/// `off` turns a forwarding off; a number loses the spaces and separators people write in it
/// (`0 089 / 123-45`), which the dial plan ignores too.
fn target(value: &str) -> Option<String> {
    if value.eq_ignore_ascii_case("off") {
        return None;
    }
    Some(
        value
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '/' | '.' | '(' | ')'))
            .collect(),
    )
}

/// Checks every forwarding target of a station against its classes. A target the internal
/// class refuses is an error naming the option and the rule. One only the external class
/// refuses is accepted with a note: it is then followed only while the station is registered
/// on the internal zone (the server judges each call by the zone the station registered
/// from). Returns the notes to print.
pub(crate) fn check_forwarding(
    classes: &StationClasses,
    forwarding: &Forwarding,
    plan: &NumberingPlan,
) -> Result<Vec<String>> {
    let mut notes = Vec::new();
    for (field, target) in forwarding.targets() {
        let flag = format!("--{}", field.replace(' ', "-"));
        if let Err(refusal) = check_forward_target(&classes.internal, target, plan) {
            bail!("{flag}: {refusal}");
        }
        if let Err(refusal) = check_forward_target(&classes.external, target, plan) {
            notes.push(format!(
                "note: {flag}: {refusal} on the external zone; this forwarding is followed \
                 only while the station is registered on the internal zone"
            ));
        }
    }
    Ok(notes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_lose_separators_and_off_clears() {
        assert_eq!(target("0 089 / 123-45"), Some("008912345".into()));
        assert_eq!(target("OFF"), None);
        assert_eq!(target("+49 (89) 1"), Some("+49891".into()));
    }
}
