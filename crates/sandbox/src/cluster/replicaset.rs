//! The ReplicaSet controller: keeps `spec.replicas` pods (named `<set>-<5 chars>`) of the
//! set's template, replacing pods that are deleted, evicted or fail, and reports how many are
//! ready and available.
//!
//! It owns pods by owner reference only: it neither adopts orphans that match its selector
//! nor releases pods that stop matching.

use std::{cmp::Reverse, sync::Arc};

use jiff::Timestamp;
use serde_json::{Value, json};

use super::{
    informer::Kind,
    meta::{self, Key},
    sim::Sim,
    template::{PodName, pod_from_template, set_counts},
    work::Work,
    write::{CONTROLLERS, Part},
};
use crate::json::{Json, Object};

/// The counts a ReplicaSet reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct SetCounts {
    /// Active pods.
    pub replicas: i64,
    /// Active pods whose labels carry every label of the template.
    pub fully_labeled: i64,
    /// Active Ready pods.
    pub ready: i64,
    /// Active pods Ready for `minReadySeconds`.
    pub available: i64,
}

/// Counts the active pods of a set, and tells when the next Ready one becomes available.
pub(super) fn count_pods<'a>(
    pods: impl Iterator<Item = &'a Json>,
    template_labels: Option<Object<'_>>,
    min_ready: i64,
    now: Timestamp,
) -> (SetCounts, Option<Timestamp>) {
    let mut counts = SetCounts::default();
    let mut next = None::<Timestamp>;
    for pod in pods.filter(meta::active) {
        counts.replicas += 1;
        let labelled = template_labels.is_none_or(|labels| {
            labels
                .iter()
                .all(|(k, v)| pod["metadata"]["labels"][k] == *v)
        });
        counts.fully_labeled += i64::from(labelled);
        if let Some(at) = meta::available_at(pod, min_ready) {
            counts.ready += 1;
            if at <= now {
                counts.available += 1;
            } else {
                next = Some(next.map_or(at, |n| n.min(at)));
            }
        }
    }
    (counts, next)
}

/// The order in which surplus pods go: unscheduled before scheduled, pending before running,
/// not Ready before Ready, more restarts first, newer first.
fn deletion_rank(pod: &Json) -> impl Ord + use<> {
    let scheduled = pod["spec"]["nodeName"]
        .as_str()
        .is_some_and(|n| !n.is_empty());
    let phase = match meta::phase(pod) {
        "Pending" => 0,
        "Running" => 2,
        _ => 1,
    };
    let restarts: i64 = pod["status"]["containerStatuses"]
        .as_array()
        .map(|s| s.iter().filter_map(|c| c["restartCount"].as_i64()).sum())
        .unwrap_or(0);
    let created = pod["metadata"]["creationTimestamp"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    (
        scheduled,
        phase,
        meta::pod_ready(pod),
        Reverse(restarts),
        Reverse(created),
        meta::name(pod).to_owned(),
    )
}

impl Sim {
    /// Reconciles a ReplicaSet.
    pub fn sync_replica_set(&mut self, key: &Key) {
        let Some(set) = self.cache.get(Kind::ReplicaSet, key).cloned() else {
            return;
        };
        if meta::terminating(&set) {
            return;
        }
        let wanted = meta::count(&set["spec"]["replicas"], 1);
        let active: Vec<(Key, Arc<Json>)> = self
            .cache
            .pods_of(meta::uid(&set))
            .filter(|(_, p)| meta::active(p))
            .map(|(k, p)| (k.clone(), p.clone()))
            .collect();
        let have = active.len() as i64;
        if have < wanted {
            let template = set["spec"]["template"].to_value();
            let prefix = format!("{}-", meta::name(&set));
            for _ in have..wanted {
                let pod =
                    pod_from_template(&set, &template, PodName::Generated(&prefix), &[], "Always");
                if self.create(Kind::Pod, &key.0, pod, CONTROLLERS).is_err() {
                    break;
                }
            }
        } else if have > wanted {
            let mut surplus = active;
            surplus.sort_by_cached_key(|(_, pod)| deletion_rank(pod));
            for (pod, _) in surplus.iter().take((have - wanted) as usize) {
                self.delete(Kind::Pod, pod, None);
            }
        }
        self.set_status(key, &set);
    }

    /// Writes a ReplicaSet's status from its pods, if it changed.
    fn set_status(&mut self, key: &Key, set: &Json) {
        let now = self.now();
        let min_ready = meta::count(&set["spec"]["minReadySeconds"], 0);
        let (counts, next) = count_pods(
            self.cache.pods_of(meta::uid(set)).map(|(_, p)| p.as_ref()),
            set["spec"]["template"]["metadata"]["labels"].as_object(),
            min_ready,
            now,
        );
        if let Some(at) = next {
            self.timers.schedule(Work::ReplicaSet(key.clone()), at);
        }
        let mut status = set["status"]
            .as_object()
            .map(Object::to_map)
            .unwrap_or_default();
        set_counts(
            &mut status,
            &[
                ("replicas", counts.replicas, true),
                ("fullyLabeledReplicas", counts.fully_labeled, false),
                ("readyReplicas", counts.ready, false),
                ("availableReplicas", counts.available, false),
            ],
        );
        status.insert("observedGeneration".into(), json!(meta::generation(set)));
        let status = Value::Object(status);
        if status != set["status"] {
            self.update(Kind::ReplicaSet, key, CONTROLLERS, Part::Status, |set| {
                set["status"] = status
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, node: Option<&str>, phase: &str, ready: bool) -> Value {
        json!({
            "metadata": {
                "name": name,
                "labels": {"app": "web"},
                "creationTimestamp": "2026-01-01T00:00:00Z",
            },
            "spec": {"nodeName": node},
            "status": {"phase": phase, "conditions": [{
                "type": "Ready",
                "status": if ready { "True" } else { "False" },
                "lastTransitionTime": "2026-01-01T00:00:10Z",
            }]},
        })
    }

    #[test]
    fn surplus_pods_go_least_useful_first() {
        let mut pods = [
            pod("ready", Some("n"), "Running", true),
            pod("unready", Some("n"), "Running", false),
            pod("pending", Some("n"), "Pending", false),
            pod("unscheduled", None, "Pending", false),
        ]
        .map(Json::from);
        pods.sort_by_cached_key(deletion_rank);
        let names: Vec<&str> = pods.iter().map(meta::name).collect();
        assert_eq!(names, ["unscheduled", "pending", "unready", "ready"]);
    }

    #[test]
    fn counts_follow_readiness_and_min_ready_seconds() {
        let mut terminating = pod("gone", Some("n"), "Running", true);
        terminating["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:20Z");
        let pods = [
            pod("a", Some("n"), "Running", true),
            pod("b", Some("n"), "Running", false),
            terminating,
        ]
        .map(Json::from);
        let labels = Json::from(json!({"app": "web", "tier": "x"}));
        let now: Timestamp = "2026-01-01T00:00:15Z".parse().unwrap();
        let (counts, next) = count_pods(pods.iter(), labels.as_object(), 10, now);
        assert_eq!(
            counts,
            SetCounts {
                replicas: 2,
                fully_labeled: 0,
                ready: 1,
                available: 0
            }
        );
        assert_eq!(next, Some("2026-01-01T00:00:20Z".parse().unwrap()));
        let (counts, _) = count_pods(pods.iter(), None, 0, now);
        assert_eq!(
            counts,
            SetCounts {
                replicas: 2,
                fully_labeled: 2,
                ready: 1,
                available: 1
            }
        );
    }
}
