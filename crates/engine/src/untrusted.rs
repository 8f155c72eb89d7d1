//! The annotations patchpilot reads on targets are written by anyone with
//! `kubectl annotate`: each value is judged before it is used. A value patchpilot cannot use
//! is never acted on, and is told: the rollout lists it in its status and records an Event on
//! the target (`machine`), `plan` shows it as the reason a target is left out.
//!
//! - A lock (`patchpilot.dev/lock`) that is not a rollout's name, or that names a rollout
//!   which left no record of taking it, is not one patchpilot took: the target is left alone
//!   (excluded, with the problem as the reason) until a person removes it. A rollout's own
//!   target whose lock was overwritten stays its own: its record says so.
//! - An `exclude-until` that is not an RFC 3339 instant lifts nothing: the exclusion holds.
//! - A record (`patch.patchpilot.dev/<policy>.rollout`) patchpilot cannot read is no record:
//!   the target is worked on as if it had none, and the record written then replaces it.
//!
//! Values are quoted and cut to [`SHOWN`] characters when told, so that a huge annotation
//! does not make a huge status or Event.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::Deserialize;

use crate::{keys, naming, target::TargetId};

/// At most this many characters of an annotation's value are shown.
pub const SHOWN: usize = 64;

/// An annotation patchpilot cannot use, and what it makes of it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct AnnotationProblem {
    /// The target carrying it.
    pub target: TargetId,
    /// The annotation's key.
    pub annotation: String,
    /// What is wrong and what patchpilot does about it, in one line.
    pub problem: String,
}

/// Why a target's lock is not one patchpilot took, if it carries such a lock: its value is
/// not a rollout's name, or no record on the target says that rollout took it (a rollout
/// writes its lock and its record in one request). `None` without a lock.
pub fn lock_problem(annotations: &BTreeMap<String, String>) -> Option<String> {
    let holder = annotations.get(keys::LOCK)?;
    if !naming::is_object_name(holder) {
        return Some(format!(
            "{} {} is not a rollout's name: the target is left alone until the annotation is removed",
            keys::LOCK,
            shown(holder)
        ));
    }
    let mut unreadable = false;
    for record in records(annotations) {
        match record {
            Some(rollout) if &rollout == holder => return None,
            Some(_) => {}
            None => unreadable = true,
        }
    }
    Some(if unreadable {
        // Its record may have been overwritten: what the rollout did to the target (a
        // cordon) is not known, and it is for a person to see to.
        format!(
            "{} names rollout {holder}, and no record beside it can be read: the target is left alone until the annotation is removed (what the rollout did to it, such as a cordon, is not known)",
            keys::LOCK
        )
    } else {
        format!(
            "{} names rollout {holder}, which left no record of taking it: the target is left alone until the annotation is removed",
            keys::LOCK
        )
    })
}

/// Whether `rollout` of `policy` holds the target's lock already (`Ok(true)`), may take it
/// (`Ok(false)`), or another holds it (`Err` with the holder). A lock a person removed, or
/// overwrote with one patchpilot did not take, is still the rollout's while the policy's
/// current record says it is at work there. How the operator and the test kit's world take
/// a lock alike.
pub fn lock_holder<'a>(
    annotations: &'a BTreeMap<String, String>,
    policy: &str,
    rollout: &str,
) -> Result<bool, &'a str> {
    let at_work = || {
        crate::machine::Record::read(annotations, policy)
            .is_some_and(|r| r.rollout == rollout && r.state.in_progress().is_some())
    };
    match annotations.get(keys::LOCK) {
        Some(holder) if holder == rollout => Ok(true),
        Some(_) if lock_problem(annotations).is_some() && at_work() => Ok(true),
        Some(holder) => Err(holder),
        None => Ok(at_work()),
    }
}

/// Why a target's `exclude-until` lifts nothing, if it carries one that is not an RFC 3339
/// instant beside an exclusion.
pub fn exclude_until_problem(annotations: &BTreeMap<String, String>) -> Option<String> {
    annotations.get(keys::EXCLUDE)?;
    let until = annotations.get(keys::EXCLUDE_UNTIL)?;
    until.parse::<Timestamp>().err().map(|_| {
        format!(
            "{} {} is not an RFC 3339 instant (such as 2026-12-24T00:00:00Z): the exclusion holds",
            keys::EXCLUDE_UNTIL,
            shown(until)
        )
    })
}

/// Why the record `policy` keeps on a target cannot be read, if it carries one patchpilot
/// cannot read.
pub fn record_problem(annotations: &BTreeMap<String, String>, policy: &str) -> Option<String> {
    let key = keys::record(policy);
    let value = annotations.get(&key)?;
    let error = serde_json::from_str::<crate::machine::Records>(value).err()?;
    Some(format!(
        "{key} is not a record patchpilot wrote ({}): the target is worked on as if it had none, and its record replaces this one",
        cut(&error.to_string(), 2 * SHOWN)
    ))
}

/// The problems of the annotations that decide whether a target may be worked on: its lock
/// and its exclusion.
pub fn problems(
    target: &TargetId,
    annotations: &BTreeMap<String, String>,
) -> Vec<AnnotationProblem> {
    [
        (keys::LOCK, lock_problem(annotations)),
        (keys::EXCLUDE_UNTIL, exclude_until_problem(annotations)),
    ]
    .into_iter()
    .filter_map(|(annotation, problem)| {
        Some(AnnotationProblem {
            target: target.clone(),
            annotation: annotation.to_owned(),
            problem: problem?,
        })
    })
    .collect()
}

/// The rollout each record on a target says last took its lock, one per policy; `None` for
/// a record that cannot be read.
fn records(annotations: &BTreeMap<String, String>) -> impl Iterator<Item = Option<String>> + '_ {
    /// The one field of a record needed here.
    #[derive(Deserialize)]
    struct Holder {
        rollout: String,
    }
    annotations
        .iter()
        .filter(|(key, _)| key.starts_with(keys::POLICY_PREFIX) && key.ends_with(".rollout"))
        .map(|(_, value)| {
            serde_json::from_str::<Holder>(value)
                .ok()
                .map(|h| h.rollout)
        })
}

/// A value as told: quoted, at most [`SHOWN`] characters.
pub fn shown(value: &str) -> String {
    format!("{:?}", cut(value, SHOWN))
}

/// `text` cut to `max` characters, with `…` when cut.
fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn annotations(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn a_lock_is_ours_only_with_a_record_of_its_holder() {
        let record = r#"{"rollout":"os-1","attempt":0,"state":"Applying","started":"2026-11-22T01:00:00Z","since":"2026-11-22T01:00:00Z"}"#;
        let genuine = annotations(&[
            (keys::LOCK, "os-1"),
            ("patch.patchpilot.dev/os.rollout", record),
        ]);
        assert_eq!(lock_problem(&genuine), None);
        // Another policy's record names the holder just as well.
        let other = annotations(&[
            (keys::LOCK, "os-1"),
            ("patch.patchpilot.dev/gpu.rollout", record),
        ]);
        assert_eq!(lock_problem(&other), None);
        assert_eq!(lock_problem(&annotations(&[])), None);

        let forged = annotations(&[
            (keys::LOCK, "db-9"),
            ("patch.patchpilot.dev/os.rollout", record),
        ]);
        assert_eq!(
            lock_problem(&forged).unwrap(),
            "patchpilot.dev/lock names rollout db-9, which left no record of taking it: the target is left alone until the annotation is removed"
        );
        let overwritten = annotations(&[
            (keys::LOCK, "os-1"),
            ("patch.patchpilot.dev/os.rollout", "{oops"),
        ]);
        assert!(
            lock_problem(&overwritten)
                .unwrap()
                .contains("no record beside it can be read")
        );
        for garbage in ["", "Not A Name!", &"x".repeat(3000)] {
            let problem = lock_problem(&annotations(&[(keys::LOCK, garbage)])).unwrap();
            assert!(problem.contains("is not a rollout's name"), "{problem}");
            assert!(problem.len() < 200, "{problem}");
        }
        assert!(
            lock_problem(&annotations(&[(keys::LOCK, "")]))
                .unwrap()
                .starts_with(r#"patchpilot.dev/lock "" is not"#)
        );
    }

    #[test]
    fn an_unreadable_exclude_until_keeps_the_exclusion_and_is_told() {
        let until = |value: &str| {
            exclude_until_problem(&annotations(&[
                (keys::EXCLUDE, "frozen"),
                (keys::EXCLUDE_UNTIL, value),
            ]))
        };
        assert_eq!(until("2026-12-24T00:00:00Z"), None);
        assert_eq!(
            until("next tuesday").unwrap(),
            r#"patchpilot.dev/exclude-until "next tuesday" is not an RFC 3339 instant (such as 2026-12-24T00:00:00Z): the exclusion holds"#
        );
        // Without an exclusion there is nothing for it to lift.
        assert_eq!(
            exclude_until_problem(&annotations(&[(keys::EXCLUDE_UNTIL, "soon")])),
            None
        );
    }

    #[test]
    fn an_unreadable_record_is_told_with_what_is_wrong() {
        let problem = record_problem(
            &annotations(&[(
                "patch.patchpilot.dev/os.rollout",
                r#"{"rollout":"os-1","attempt":0,"state":"Exploding","started":"2026-11-22T01:00:00Z","since":"2026-11-22T01:00:00Z"}"#,
            )]),
            "os",
        )
        .unwrap();
        assert!(problem.starts_with("patch.patchpilot.dev/os.rollout is not a record patchpilot wrote (unknown variant `Exploding`"), "{problem}");
        assert_eq!(record_problem(&annotations(&[]), "os"), None);
    }

    #[test]
    fn values_are_cut_on_character_boundaries() {
        assert_eq!(cut("abc", 2), "ab…");
        assert_eq!(cut("été", 2), "ét…");
        assert_eq!(cut("ab", 2), "ab");
        assert_eq!(shown(&"é".repeat(100)).chars().count(), SHOWN + 3);
    }
}
