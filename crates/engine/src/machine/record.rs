//! What a rollout remembers on each target it touches.
//!
//! Everything needed to resume lives in the API. On a target, a rollout keeps the lock
//! annotation (`patchpilot.dev/lock: <rollout>`) while it works on it, and one record per
//! policy (`patch.patchpilot.dev/<policy>.rollout`) that outlives the lock: which rollout,
//! what it did, when, and what to restore on rollback. Both are written in the same request
//! as the change they describe, so they are never out of step with the target.

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
}

impl Record {
    /// The record `policy` keeps in a target's annotations, if there is a readable one.
    pub fn read(annotations: &BTreeMap<String, String>, policy: &str) -> Option<Record> {
        serde_json::from_str(annotations.get(&keys::record(policy))?).ok()
    }

    /// The record as the annotation's value.
    pub fn to_annotation(&self) -> String {
        serde_json::to_string(self).expect("a record always serializes")
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
