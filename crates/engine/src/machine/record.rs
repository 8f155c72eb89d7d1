//! What a rollout remembers on each target it touches.
//!
//! Everything needed to resume lives in the API. On a target, a rollout keeps the lock
//! annotation (`patchpilot.dev/lock: <rollout>`) while it works on it, and a record that
//! outlives the lock: which rollout, what it did, when, and what to restore on rollback. Both
//! are written in the same request as the change they describe, so they are never out of
//! step with the target.
//!
//! A policy keeps one annotation per target, `patch.patchpilot.dev/<policy>.rollout`, holding
//! the record of the rollout that last took the target's lock and, under `earlier`, the
//! records of the policy's other rollouts that still exist. A rollout writing its record
//! moves the previous holder's record there rather than over it, so two rollouts of one
//! policy never overwrite the meaning of each other's records: each reads its own.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::{image::ContainerImage, keys};

/// The work being done to a target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Applying the patch.
    Apply,
    /// Undoing it.
    Rollback,
}

impl Action {
    /// `apply` or `rollback`, as the updater's `PATCHPILOT_ACTION` says it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Action::Apply => "apply",
            Action::Rollback => "rollback",
        }
    }
}

/// Where a target stands with the rollout that last touched it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RecordState {
    /// Locked; the patch is being applied.
    Applying,
    /// The patch is applied and the target was healthy.
    Updated,
    /// Applying the patch failed.
    Failed,
    /// Locked; the patch is being rolled back.
    RollingBack,
    /// The patch was rolled back.
    RolledBack,
    /// Rolling back failed.
    RollbackFailed,
}

impl RecordState {
    /// Whether the rollout holds the target's lock in this state.
    pub const fn in_progress(self) -> Option<Action> {
        match self {
            RecordState::Applying => Some(Action::Apply),
            RecordState::RollingBack => Some(Action::Rollback),
            RecordState::Updated
            | RecordState::Failed
            | RecordState::RolledBack
            | RecordState::RollbackFailed => None,
        }
    }
}

/// What a policy's rollout remembers on a target.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    /// The rollout.
    pub rollout: String,
    /// The rollout's `spec.retry` when the work began: a higher `retry` sends failed
    /// targets of earlier attempts back to pending.
    pub attempt: u32,
    /// Where the target stands.
    pub state: RecordState,
    /// When the rollout first locked the target to apply the patch (rollbacks go most
    /// recent first by this).
    pub started: Timestamp,
    /// When the current state began: the lock of the current action, or its end.
    pub since: Timestamp,
    /// Nodes: this rollout cordoned the node and must uncordon it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cordoned: bool,
    /// Nodes: the boot ID before the updater ran, to see the reboot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_id: Option<String>,
    /// The version the target carried before the patch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_version: Option<String>,
    /// Workloads: the container images before the patch, restored by a rollback.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<ContainerImage>,
    /// The change itself was made (the updater ran, or the images were set), so a rollback
    /// has something to undo.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub applied: bool,
    /// Why the target failed, as a CamelCase word.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// What happened, in a sentence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The rollout's UID: a rollout made again under the same name (its policy deleted and
    /// applied again) does not take the records of the one before for its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
}

impl Record {
    /// The record of the rollout that last took the target's lock for `policy`, if there
    /// is a readable one.
    pub fn read(annotations: &BTreeMap<String, String>, policy: &str) -> Option<Record> {
        Records::read(annotations, policy).map(|r| r.current)
    }

    /// The record as the annotation's value, with no earlier records.
    pub fn to_annotation(&self) -> String {
        Records {
            current: self.clone(),
            earlier: Vec::new(),
        }
        .to_annotation()
    }

    /// Whether this record is the rollout's `name` with UID `uid` (an empty `uid`, or a
    /// record written before records carried one, matches by name alone).
    pub fn belongs_to(&self, name: &str, uid: &str) -> bool {
        self.rollout == name
            && (uid.is_empty() || self.uid.as_deref().is_none_or(|mine| mine == uid))
    }

    /// The token of the lock (or step under one lock) this record describes: the instant
    /// its state began. A Job named after it ran for this very lock.
    pub fn lock_token(&self) -> i64 {
        self.since.as_millisecond()
    }
}

/// Every record one policy keeps on a target: see the [module](self) documentation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Records {
    /// The record of the rollout that last took the target's lock.
    #[serde(flatten)]
    pub current: Record,
    /// The records of the policy's other rollouts that still exist, most recent first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub earlier: Vec<Record>,
}

impl Records {
    /// The records `policy` keeps in a target's annotations, if readable.
    pub fn read(annotations: &BTreeMap<String, String>, policy: &str) -> Option<Records> {
        Self::parse(annotations.get(&keys::record(policy))?)
    }

    /// The records of an annotation's value, if readable.
    pub fn parse(value: &str) -> Option<Records> {
        serde_json::from_str(value).ok()
    }

    /// The record of the rollout `name` (UID `uid`), current or earlier.
    pub fn of(&self, name: &str, uid: &str) -> Option<&Record> {
        std::iter::once(&self.current)
            .chain(&self.earlier)
            .find(|r| r.belongs_to(name, uid))
    }

    /// The records after `record` is written: it replaces its rollout's record and becomes
    /// the current one; the record it displaces moves to `earlier`. Earlier records are
    /// kept only while `keep` says their rollout still exists.
    pub fn with(
        previous: Option<Records>,
        record: Record,
        keep: impl Fn(&Record) -> bool,
    ) -> Records {
        let uid = record.uid.clone().unwrap_or_default();
        let earlier = previous
            .into_iter()
            .flat_map(|p| std::iter::once(p.current).chain(p.earlier))
            .filter(|r| !r.belongs_to(&record.rollout, &uid) && keep(r))
            .collect();
        Records {
            current: record,
            earlier,
        }
    }

    /// The records once the rollout `name` (UID `uid`) forgets its own: the most recent
    /// earlier record becomes current again. `None` when nothing is left.
    pub fn without(previous: Option<Records>, name: &str, uid: &str) -> Option<Records> {
        let mut left = previous
            .into_iter()
            .flat_map(|p| std::iter::once(p.current).chain(p.earlier))
            .filter(|r| !r.belongs_to(name, uid));
        let current = left.next()?;
        Some(Records {
            current,
            earlier: left.collect(),
        })
    }

    /// The annotation's value.
    pub fn to_annotation(&self) -> String {
        serde_json::to_string(self).expect("records always serialize")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_through_annotations() {
        let record = Record {
            rollout: "os-1a2b3c4d".into(),
            attempt: 0,
            state: RecordState::Applying,
            started: "2026-11-22T01:00:00Z".parse().unwrap(),
            since: "2026-11-22T01:00:00Z".parse().unwrap(),
            cordoned: true,
            boot_id: Some("b1".into()),
            previous_version: None,
            images: vec![],
            applied: false,
            reason: None,
            message: None,
            uid: None,
        };
        let annotations = BTreeMap::from([(keys::record("os"), record.to_annotation())]);
        assert_eq!(Record::read(&annotations, "os"), Some(record.clone()));
        assert_eq!(Record::read(&annotations, "other"), None);
        assert!(
            record.to_annotation().len() < 200,
            "{}",
            record.to_annotation()
        );
        let garbage = BTreeMap::from([(keys::record("os"), "{not json".to_owned())]);
        assert_eq!(Record::read(&garbage, "os"), None);
    }
}

#[cfg(test)]
mod records {
    use super::*;

    fn record(rollout: &str, uid: &str, state: RecordState) -> Record {
        let at: jiff::Timestamp = "2026-11-22T01:00:00Z".parse().unwrap();
        Record {
            rollout: rollout.into(),
            attempt: 0,
            state,
            started: at,
            since: at,
            cordoned: false,
            boot_id: None,
            previous_version: None,
            images: vec![],
            applied: false,
            reason: None,
            message: None,
            uid: Some(uid.into()),
        }
    }

    #[test]
    fn a_second_rollout_keeps_the_first_ones_record() {
        let a = record("os-a", "u-a", RecordState::Updated);
        let b = record("os-b", "u-b", RecordState::Applying);
        let first = Records::with(None, a.clone(), |_| true);
        let both = Records::with(Some(first), b.clone(), |_| true);
        assert_eq!(both.current, b);
        assert_eq!(both.of("os-a", "u-a"), Some(&a));
        assert_eq!(both.of("os-b", "u-b"), Some(&b));
        // Read back from the annotation.
        let annotations = BTreeMap::from([(keys::record("os"), both.to_annotation())]);
        assert_eq!(Records::read(&annotations, "os"), Some(both.clone()));
        assert_eq!(Record::read(&annotations, "os"), Some(b.clone()));
        // The first rollout writes again: its record is current, the other's kept.
        let a2 = record("os-a", "u-a", RecordState::RollingBack);
        let again = Records::with(Some(both.clone()), a2.clone(), |_| true);
        assert_eq!(again.current, a2);
        assert_eq!(again.earlier, vec![b.clone()]);
        // Records of rollouts that are gone are dropped.
        let pruned = Records::with(Some(both), a2.clone(), |r| r.rollout != "os-b");
        assert!(pruned.earlier.is_empty());
    }

    #[test]
    fn a_rollout_made_again_under_the_same_name_has_no_record() {
        let old = record("os-a", "u-old", RecordState::Failed);
        let records = Records::with(None, old, |_| true);
        assert_eq!(records.of("os-a", "u-new"), None);
        assert!(records.of("os-a", "").is_some());
        // Records written before UIDs were kept match by name.
        let mut legacy = record("os-a", "", RecordState::Failed);
        legacy.uid = None;
        let legacy = Records::with(None, legacy, |_| true);
        assert!(legacy.of("os-a", "u-new").is_some());
    }

    #[test]
    fn forgetting_a_record_brings_back_the_one_before() {
        let a = record("os-a", "u-a", RecordState::Updated);
        let b = record("os-b", "u-b", RecordState::Applying);
        let both = Records::with(Some(Records::with(None, a.clone(), |_| true)), b, |_| true);
        let back = Records::without(Some(both), "os-b", "u-b").unwrap();
        assert_eq!(back.current, a);
        assert!(back.earlier.is_empty());
        assert_eq!(Records::without(Some(back), "os-a", "u-a"), None);
    }
}
