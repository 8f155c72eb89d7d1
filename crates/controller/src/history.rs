//! A policy's history of rollouts (`status.history`): each finished rollout summed up in a
//! line — version, change reference, who approved it, start, end, outcome and counts — kept
//! after `historyLimit` prunes the rollout itself. Pure: the policy controller passes the
//! entries it had and the rollouts that exist, and writes what this returns.

use std::collections::BTreeMap;

use patchpilot_api::{APPROVED_BY, HISTORY_KEPT, PatchRollout, RolloutHistory};

/// The entries of `previous` with every finished rollout in `rollouts` written (again) from
/// the rollout itself, newest first (by end, then start, then name), at most
/// [`HISTORY_KEPT`].
pub fn merge<'a>(
    previous: &[RolloutHistory],
    rollouts: impl IntoIterator<Item = &'a PatchRollout>,
) -> Vec<RolloutHistory> {
    let mut by_name: BTreeMap<String, RolloutHistory> = previous
        .iter()
        .map(|entry| (entry.rollout.clone(), entry.clone()))
        .collect();
    for entry in rollouts.into_iter().filter_map(entry) {
        by_name.insert(entry.rollout.clone(), entry);
    }
    let mut history: Vec<RolloutHistory> = by_name.into_values().collect();
    history.sort_by(|a, b| {
        let key = |e: &RolloutHistory| {
            (
                e.completed_at.as_ref().map(|t| t.0),
                e.started_at.as_ref().map(|t| t.0),
            )
        };
        key(b).cmp(&key(a)).then_with(|| a.rollout.cmp(&b.rollout))
    });
    history.truncate(HISTORY_KEPT);
    history
}

/// A finished rollout summed up; `None` while it has not finished.
pub fn entry(rollout: &PatchRollout) -> Option<RolloutHistory> {
    let status = rollout.status.as_ref()?;
    if !status.phase.is_finished() {
        return None;
    }
    Some(RolloutHistory {
        rollout: rollout.metadata.name.clone().unwrap_or_default(),
        version: rollout.spec.patch.version.clone(),
        change_ref: rollout.spec.change_ref.clone(),
        approved_by: approved_by(rollout),
        started_at: status.started_at.clone(),
        completed_at: status.completed_at.clone(),
        outcome: status.phase,
        updated: status.targets.updated,
        failed: status.targets.failed,
        rolled_back: status.targets.rolled_back,
    })
}

/// Who approved a rollout: the user `kubectl patchpilot approve` recorded in the
/// [`APPROVED_BY`] annotation, `automatic` when its policy approved it on its own, else the
/// field manager that set `spec.approved` when the object still says (the operator's caches
/// drop managed fields; the plugin reads whole objects).
pub fn approved_by(rollout: &PatchRollout) -> Option<String> {
    if let Some(user) = rollout
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(APPROVED_BY))
        .filter(|user| !user.is_empty())
    {
        return Some(user.clone());
    }
    let approved = rollout
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == "Approved" && c.status == "True")?;
    if approved.reason == "AutomaticApproval" {
        return Some("automatic".into());
    }
    rollout
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .filter(|entry| {
            entry
                .fields_v1
                .as_ref()
                .and_then(|f| f.0.pointer("/f:spec/f:approved"))
                .is_some()
        })
        .find_map(|entry| entry.manager.clone())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{approved_by, merge};
    use patchpilot_api::{HISTORY_KEPT, PatchRollout};

    fn rollout(
        name: &str,
        phase: &str,
        completed: Option<&str>,
        extra: serde_json::Value,
    ) -> PatchRollout {
        let mut object = json!({
            "apiVersion": "patchpilot.dev/v1alpha1",
            "kind": "PatchRollout",
            "metadata": {"name": name},
            "spec": {"policy": "os", "patch": {"version": format!("v-{name}"), "classification": "Important"}},
            "status": {
                "phase": phase,
                "startedAt": "2026-11-01T00:00:00Z",
                "targets": {"total": 3, "updated": 2, "failed": 1},
                "conditions": [{"type": "Approved", "status": "True", "reason": "Approved", "message": "approved", "lastTransitionTime": "2026-11-01T00:00:00Z"}],
            },
        });
        if let Some(completed) = completed {
            object["status"]["completedAt"] = json!(completed);
        }
        json_patch_merge(&mut object, extra);
        serde_json::from_value(object).unwrap()
    }

    fn json_patch_merge(object: &mut serde_json::Value, extra: serde_json::Value) {
        if let (Some(object), serde_json::Value::Object(extra)) = (object.as_object_mut(), extra) {
            for (key, value) in extra {
                match (object.get_mut(&key), value) {
                    (
                        Some(existing @ serde_json::Value::Object(_)),
                        value @ serde_json::Value::Object(_),
                    ) => {
                        json_patch_merge(existing, value);
                    }
                    (_, value) => {
                        object.insert(key, value);
                    }
                }
            }
        }
    }

    #[test]
    fn finished_rollouts_are_remembered_newest_first_and_kept_after_pruning() {
        let old = rollout("os-1", "Succeeded", Some("2026-11-02T00:00:00Z"), json!({}));
        let new = rollout(
            "os-2",
            "RolledBack",
            Some("2026-11-05T00:00:00Z"),
            json!({}),
        );
        let running = rollout("os-3", "Progressing", None, json!({}));
        let history = merge(&[], [&old, &new, &running]);
        let names: Vec<&str> = history.iter().map(|e| e.rollout.as_str()).collect();
        assert_eq!(
            names,
            ["os-2", "os-1"],
            "the running one is not history yet"
        );
        assert_eq!(history[1].version, "v-os-1");
        assert_eq!((history[1].updated, history[1].failed), (2, 1));
        // os-1 pruned: still remembered; os-3 finished: added on top.
        let done = rollout("os-3", "Succeeded", Some("2026-11-09T00:00:00Z"), json!({}));
        let history = merge(&history, [&new, &done]);
        let names: Vec<&str> = history.iter().map(|e| e.rollout.as_str()).collect();
        assert_eq!(names, ["os-3", "os-2", "os-1"]);
    }

    #[test]
    fn the_history_is_bounded() {
        let many: Vec<PatchRollout> = (0..HISTORY_KEPT + 5)
            .map(|i| {
                let day = format!("2026-10-01T00:00:{:02}Z", i % 60);
                rollout(&format!("os-{i:03}"), "Succeeded", Some(&day), json!({}))
            })
            .collect();
        let history = merge(&[], &many);
        assert_eq!(history.len(), HISTORY_KEPT);
        assert_eq!(history[0].rollout, format!("os-{:03}", HISTORY_KEPT + 4));
    }

    #[test]
    fn the_approver_is_the_recorded_user_automatic_or_the_field_manager() {
        let recorded = rollout(
            "a",
            "Succeeded",
            None,
            json!({"metadata": {"annotations": {"patchpilot.dev/approved-by": "alice"}}}),
        );
        assert_eq!(approved_by(&recorded).as_deref(), Some("alice"));
        let automatic = rollout(
            "b",
            "Succeeded",
            None,
            json!({"status": {"conditions": [{"type": "Approved", "status": "True", "reason": "AutomaticApproval", "message": "approved", "lastTransitionTime": "2026-11-01T00:00:00Z"}]}}),
        );
        assert_eq!(approved_by(&automatic).as_deref(), Some("automatic"));
        let managed = rollout(
            "c",
            "Succeeded",
            None,
            json!({"metadata": {"managedFields": [
                {"manager": "kube-controller-manager", "operation": "Update", "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {}}},
                {"manager": "kustomize-controller", "operation": "Apply", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:approved": {}}}},
            ]}}),
        );
        assert_eq!(
            approved_by(&managed).as_deref(),
            Some("kustomize-controller")
        );
        let unknown = rollout("d", "Succeeded", None, json!({}));
        assert_eq!(approved_by(&unknown), None);
    }
}
