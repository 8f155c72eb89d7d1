//! The arithmetic of a Deployment's rollout, as the Deployment controller does it: how far
//! the new ReplicaSet may grow (`maxSurge`), how far old ones may shrink (`maxUnavailable`),
//! and the status with its `Available` and `Progressing` conditions. Pure functions.

use jiff::{SignedDuration, Timestamp};
use serde_json::{Map, Value, json};

use super::meta;
use crate::json::Json;

/// Reasons of the `Progressing` condition.
pub(super) mod reason {
    /// A new ReplicaSet was created.
    pub const CREATED: &str = "NewReplicaSetCreated";
    /// The rollout made progress.
    pub const UPDATED: &str = "ReplicaSetUpdated";
    /// The rollout is complete.
    pub const AVAILABLE: &str = "NewReplicaSetAvailable";
    /// No progress for `progressDeadlineSeconds`.
    pub const TIMED_OUT: &str = "ProgressDeadlineExceeded";
    /// The Deployment is paused.
    pub const PAUSED: &str = "DeploymentPaused";
    /// The Deployment was resumed.
    pub const RESUMED: &str = "DeploymentResumed";
}

/// How a Deployment replaces its pods.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Strategy {
    /// All old pods go before new ones come.
    Recreate,
    /// New pods come and old ones go within bounds, both counts of pods.
    Rolling {
        /// `maxSurge`: pods above `replicas` allowed.
        surge: i64,
        /// `maxUnavailable`: pods below `replicas` allowed.
        unavailable: i64,
    },
}

impl Strategy {
    /// The strategy of a Deployment spec, with the API's defaults (25% and 25%; never both
    /// zero).
    pub fn of(spec: &Json, replicas: i64) -> Self {
        if spec["strategy"]["type"] == "Recreate" {
            return Strategy::Recreate;
        }
        let rolling = &spec["strategy"]["rollingUpdate"];
        let value = |field: &str, round_up: bool| {
            meta::scaled(&rolling[field], replicas, round_up)
                .unwrap_or_else(|| meta::percent_of(25, replicas, round_up))
        };
        let surge = value("maxSurge", true);
        let mut unavailable = value("maxUnavailable", false);
        if surge == 0 && unavailable == 0 {
            unavailable = 1;
        }
        Strategy::Rolling { surge, unavailable }
    }

    /// Pods above `replicas` allowed.
    pub fn surge(self) -> i64 {
        match self {
            Strategy::Recreate => 0,
            Strategy::Rolling { surge, .. } => surge,
        }
    }

    /// Pods below `replicas` allowed (`MaxUnavailable` of the controller).
    pub fn max_unavailable(self, replicas: i64) -> i64 {
        match self {
            Strategy::Recreate => 0,
            Strategy::Rolling { .. } if replicas == 0 => 0,
            Strategy::Rolling { unavailable, .. } => unavailable.min(replicas),
        }
    }
}

/// The replicas the new ReplicaSet may have: up to `replicas`, within `replicas + maxSurge`
/// pods in all (`spec_total` counts every set's `spec.replicas`).
pub(super) fn new_set_replicas(
    strategy: Strategy,
    replicas: i64,
    spec_total: i64,
    new_spec: i64,
) -> i64 {
    match strategy {
        Strategy::Recreate => replicas,
        Strategy::Rolling { surge, .. } => {
            let max_total = replicas + surge;
            if spec_total >= max_total {
                return new_spec;
            }
            new_spec + (max_total - spec_total).min(replicas - new_spec).max(0)
        }
    }
}

/// One old ReplicaSet: its `spec.replicas` and `status.availableReplicas`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct OldSet {
    /// `spec.replicas`.
    pub spec: i64,
    /// `status.availableReplicas`.
    pub available: i64,
}

/// The `spec.replicas` old sets (oldest first) shrink to: unavailable pods first, then
/// available ones while `replicas - maxUnavailable` stay available.
pub(super) fn shrink_old(
    old: &[OldSet],
    new: OldSet,
    replicas: i64,
    max_unavailable: i64,
) -> Vec<i64> {
    let mut specs: Vec<i64> = old.iter().map(|o| o.spec).collect();
    let old_total: i64 = specs.iter().sum();
    if old_total == 0 {
        return specs;
    }
    let min_available = replicas - max_unavailable;
    let new_unavailable = new.spec - new.available;
    let max_down = old_total + new.spec - min_available - new_unavailable;
    if max_down <= 0 {
        return specs;
    }
    let mut down = 0;
    for (spec, set) in specs.iter_mut().zip(old) {
        if down >= max_down {
            break;
        }
        if *spec == 0 || *spec <= set.available {
            continue;
        }
        let by = (max_down - down).min(*spec - set.available);
        *spec -= by;
        down += by;
    }
    let available: i64 = old.iter().map(|o| o.available).sum::<i64>() + new.available;
    if available <= min_available {
        return specs;
    }
    let wanted = available - min_available;
    let mut down = 0;
    for spec in specs.iter_mut() {
        if down >= wanted {
            break;
        }
        let by = (*spec).min(wanted - down);
        *spec -= by;
        down += by;
    }
    specs
}

/// The counts of a Deployment's ReplicaSets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Counts {
    /// Sum of `status.replicas`.
    pub replicas: i64,
    /// The new set's `status.replicas`.
    pub updated: i64,
    /// Sum of `status.readyReplicas`.
    pub ready: i64,
    /// Sum of `status.availableReplicas`.
    pub available: i64,
    /// Sum of `spec.replicas`.
    pub spec_total: i64,
}

/// A Deployment condition, with the controller's rule: unchanged when status and reason
/// are; the transition time kept when the status is. New conditions go last.
pub(super) fn set_condition(
    conditions: &mut Vec<Value>,
    kind: &str,
    status: &str,
    reason: &str,
    message: &str,
    now: &str,
) {
    let current = conditions.iter().position(|c| c["type"] == kind);
    let mut transition = now.to_owned();
    if let Some(i) = current {
        let old = &conditions[i];
        if old["status"] == status && old["reason"] == reason {
            return;
        }
        if old["status"] == status {
            transition = old["lastTransitionTime"].as_str().unwrap_or(now).to_owned();
        }
        conditions.remove(i);
    }
    conditions.push(condition(kind, status, reason, message, now, &transition));
}

fn condition(
    kind: &str,
    status: &str,
    reason: &str,
    message: &str,
    updated: &str,
    transition: &str,
) -> Value {
    json!({
        "type": kind,
        "status": status,
        "lastUpdateTime": updated,
        "lastTransitionTime": transition,
        "reason": reason,
        "message": message,
    })
}

/// The status a Deployment reports: counts, `Available`, and (unless paused) `Progressing`
/// with its deadline. `conditions` are the current ones, with any the sync already set.
pub(super) fn deployment_status(
    deployment: &Json,
    new_set: Option<&str>,
    counts: Counts,
    strategy: Strategy,
    mut conditions: Vec<Value>,
    now: Timestamp,
) -> Value {
    let spec = &deployment["spec"];
    let replicas = meta::count(&spec["replicas"], 1);
    let old = &deployment["status"];
    let stamp = meta::time(now);
    let mut status = Map::new();
    status.insert(
        "observedGeneration".into(),
        json!(meta::generation(deployment)),
    );
    super::template::set_counts(
        &mut status,
        &[
            ("replicas", counts.replicas, false),
            ("updatedReplicas", counts.updated, false),
            ("readyReplicas", counts.ready, false),
            ("availableReplicas", counts.available, false),
            (
                "unavailableReplicas",
                (counts.spec_total - counts.available).max(0),
                false,
            ),
        ],
    );
    if let Some(collisions) = old["collisionCount"].as_i64() {
        status.insert("collisionCount".into(), json!(collisions));
    }
    if counts.available >= replicas - strategy.max_unavailable(replicas) {
        set_condition(
            &mut conditions,
            "Available",
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.",
            &stamp,
        );
    } else {
        set_condition(
            &mut conditions,
            "Available",
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.",
            &stamp,
        );
    }
    let paused = spec["paused"] == true;
    let current = conditions
        .iter()
        .find(|c| c["type"] == "Progressing")
        .cloned();
    let done = current
        .as_ref()
        .is_some_and(|c| c["reason"] == reason::AVAILABLE)
        && counts.replicas == counts.updated;
    if !paused && !done {
        let set = new_set.unwrap_or("");
        let old_count = |field: &str| old[field].as_i64().unwrap_or(0);
        let complete = counts.updated == replicas
            && counts.replicas == replicas
            && counts.available == replicas;
        let progressing = counts.updated > old_count("updatedReplicas")
            || counts.replicas - counts.updated
                < old_count("replicas") - old_count("updatedReplicas")
            || counts.ready > old_count("readyReplicas")
            || counts.available > old_count("availableReplicas");
        if complete {
            let message = format!("ReplicaSet \"{set}\" has successfully progressed.");
            set_condition(
                &mut conditions,
                "Progressing",
                "True",
                reason::AVAILABLE,
                &message,
                &stamp,
            );
        } else if progressing {
            let transition = current
                .as_ref()
                .filter(|c| c["status"] == "True")
                .and_then(|c| c["lastTransitionTime"].as_str())
                .unwrap_or(&stamp)
                .to_owned();
            conditions.retain(|c| c["type"] != "Progressing");
            let message = format!("ReplicaSet \"{set}\" is progressing.");
            conditions.push(condition(
                "Progressing",
                "True",
                reason::UPDATED,
                &message,
                &stamp,
                &transition,
            ));
        } else if timed_out(spec, current.as_ref(), now) {
            let message = format!("ReplicaSet \"{set}\" has timed out progressing.");
            set_condition(
                &mut conditions,
                "Progressing",
                "False",
                reason::TIMED_OUT,
                &message,
                &stamp,
            );
        }
    }
    status.insert("conditions".into(), Value::Array(conditions));
    Value::Object(status)
}

/// `progressDeadlineSeconds`, 600 by default.
fn deadline(spec: &Json) -> SignedDuration {
    SignedDuration::from_secs(meta::count(&spec["progressDeadlineSeconds"], 600))
}

/// Whether the rollout made no progress for longer than its deadline.
fn timed_out(spec: &Json, progressing: Option<&Value>, now: Timestamp) -> bool {
    let Some(condition) = progressing else {
        return false;
    };
    if condition["reason"] == reason::AVAILABLE {
        return false;
    }
    if condition["reason"] == reason::TIMED_OUT {
        return true;
    }
    meta::parse_time(&condition["lastUpdateTime"])
        .and_then(|at| at.checked_add(deadline(spec)).ok())
        .is_some_and(|due| due < now)
}

/// When a rollout still under way runs out of time, to look again then.
pub(super) fn deadline_check(deployment: &Json, status: &Value) -> Option<Timestamp> {
    if deployment["spec"]["paused"] == true {
        return None;
    }
    let condition = status["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Progressing")?;
    if condition["reason"] == reason::AVAILABLE || condition["reason"] == reason::TIMED_OUT {
        return None;
    }
    let at = meta::parse_time(&condition["lastUpdateTime"])?;
    at.checked_add(deadline(&deployment["spec"]) + SignedDuration::from_secs(1))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Test objects as the cluster follows them.
    macro_rules! json {
        ($($t:tt)+) => {
            crate::json::Json::from(serde_json::json!($($t)+))
        };
    }

    #[test]
    fn strategies_default_to_a_quarter_and_never_stall() {
        assert_eq!(
            Strategy::of(&json!({}), 10),
            Strategy::Rolling {
                surge: 3,
                unavailable: 2
            }
        );
        let zero = json!({"strategy": {"rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}}});
        assert_eq!(
            Strategy::of(&zero, 10),
            Strategy::Rolling {
                surge: 0,
                unavailable: 1
            }
        );
        assert_eq!(
            Strategy::of(&json!({"strategy": {"type": "Recreate"}}), 3),
            Strategy::Recreate
        );
        assert_eq!(Strategy::of(&json!({}), 1).max_unavailable(1), 0);
        assert_eq!(
            Strategy::Rolling {
                surge: 0,
                unavailable: 5
            }
            .max_unavailable(2),
            2
        );
    }

    #[test]
    fn the_new_set_grows_within_the_surge() {
        let rolling = Strategy::Rolling {
            surge: 1,
            unavailable: 1,
        };
        assert_eq!(new_set_replicas(rolling, 4, 4, 0), 1);
        assert_eq!(new_set_replicas(rolling, 4, 5, 1), 1);
        assert_eq!(new_set_replicas(rolling, 4, 3, 1), 3);
        assert_eq!(new_set_replicas(rolling, 4, 0, 0), 4);
        assert_eq!(new_set_replicas(Strategy::Recreate, 4, 9, 0), 4);
    }

    #[test]
    fn old_sets_shrink_within_max_unavailable() {
        let old = |spec, available| OldSet { spec, available };
        // 4 replicas, maxUnavailable 1: one old pod may go while the new one starts.
        assert_eq!(shrink_old(&[old(4, 4)], old(1, 0), 4, 1), vec![3]);
        // Nothing more until new pods turn available.
        assert_eq!(shrink_old(&[old(3, 3)], old(2, 0), 4, 1), vec![3]);
        assert_eq!(shrink_old(&[old(3, 3)], old(2, 2), 4, 1), vec![1]);
        // Unavailable old pods go first, whatever the budget.
        assert_eq!(
            shrink_old(&[old(2, 0), old(2, 2)], old(0, 0), 4, 1),
            vec![1, 2]
        );
        assert_eq!(shrink_old(&[old(0, 0)], old(4, 4), 4, 1), vec![0]);
    }

    #[test]
    fn progress_and_its_deadline_show_in_the_conditions() {
        let t0: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let rolling = Strategy::Rolling {
            surge: 1,
            unavailable: 1,
        };
        let deployment = json!({
            "metadata": {"generation": 2},
            "spec": {"replicas": 2},
            "status": {"updatedReplicas": 0},
        });
        let counts = Counts {
            replicas: 3,
            updated: 1,
            ready: 2,
            available: 2,
            spec_total: 3,
        };
        let status = deployment_status(&deployment, Some("web-1"), counts, rolling, Vec::new(), t0);
        let holder = json!({"status": status.clone()});
        let progressing = meta::condition(&holder, "Progressing").unwrap();
        assert_eq!(progressing["reason"], reason::UPDATED);
        assert_eq!(status["observedGeneration"], 2);
        assert_eq!(status["unavailableReplicas"], 1);
        assert_eq!(
            deadline_check(&deployment, &status),
            Some(t0 + SignedDuration::from_secs(601))
        );
        let stuck =
            json!({"metadata": {"generation": 2}, "spec": {"replicas": 2}, "status": status});
        let later = t0 + SignedDuration::from_secs(601);
        let conditions = meta::conditions_of(&stuck);
        let status = deployment_status(&stuck, Some("web-1"), counts, rolling, conditions, later);
        let holder = json!({"status": status.clone()});
        assert_eq!(
            meta::condition(&holder, "Progressing").unwrap()["reason"],
            reason::TIMED_OUT
        );
        assert_eq!(deadline_check(&stuck, &status), None);
        let complete = Counts {
            replicas: 2,
            updated: 2,
            ready: 2,
            available: 2,
            spec_total: 2,
        };
        let conditions = meta::conditions_of(&json!({"status": status}));
        let status = deployment_status(&stuck, Some("web-1"), complete, rolling, conditions, later);
        let holder = json!({"status": status});
        assert_eq!(
            meta::condition(&holder, "Progressing").unwrap()["reason"],
            reason::AVAILABLE
        );
        assert_eq!(
            meta::condition(&holder, "Available").unwrap()["status"],
            "True"
        );
    }
}
