//! The disruption controller: keeps each PodDisruptionBudget's status current —
//! `expectedPods`, `currentHealthy`, `desiredHealthy`, `disruptionsAllowed`,
//! `observedGeneration`, the `DisruptionAllowed` condition — and drops `disruptedPods`
//! entries (written by the eviction subresource) once their pods are going or gone, or after
//! two minutes.
//!
//! The eviction subresource judges evictions on the spot; this status is what clients read.

use std::{collections::HashSet, sync::Arc};

use crate::json::{Json, Read};
use crate::selector::{labels_of, written};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Map, Value, json};

use super::{
    informer::{Change, Kind},
    meta::{self, Key},
    sim::Sim,
    work::Work,
    write::{CONTROLLERS, Part},
};

/// How long an eviction's entry in `disruptedPods` holds if its pod is not deleted.
const DISRUPTION_TIMEOUT: SignedDuration = SignedDuration::from_mins(2);

/// How many pods a budget wants healthy out of `expected`: `minAvailable` (percent rounded
/// up), or `expected` less `maxUnavailable` (percent rounded up), or all.
pub(super) fn desired_healthy(spec: &(impl Read + ?Sized), expected: i64) -> i64 {
    if let Some(min) = meta::scaled(spec.at("minAvailable"), expected, true) {
        return min;
    }
    if let Some(max) = meta::scaled(spec.at("maxUnavailable"), expected, true) {
        return (expected - max).max(0);
    }
    expected
}

/// A budget's status from the pods it selects; `expected` as the controllers' scale gives it.
pub(super) fn budget_status(
    budget: &Value,
    pods: &[Arc<Json>],
    expected: i64,
    now: Timestamp,
) -> (Value, Option<Timestamp>) {
    let mut next = None::<Timestamp>;
    let present: HashSet<&str> = pods
        .iter()
        .filter(|p| !meta::terminating(p))
        .map(meta::name)
        .collect();
    let mut disrupted = Map::new();
    if let Some(entries) = budget["status"]["disruptedPods"].as_object() {
        for (pod, at) in entries {
            let since = meta::parse_time(at).unwrap_or(now);
            let until = since.saturating_add(DISRUPTION_TIMEOUT).unwrap_or(since);
            if present.contains(pod.as_str()) && until > now {
                disrupted.insert(pod.clone(), at.clone());
                next = Some(next.map_or(until, |n| n.min(until)));
            }
        }
    }
    let healthy = pods
        .iter()
        .filter(|p| {
            !meta::terminating(p) && meta::pod_ready(p) && !disrupted.contains_key(meta::name(p))
        })
        .count() as i64;
    let desired = desired_healthy(&budget["spec"], expected);
    let allowed = if expected <= 0 {
        0
    } else {
        (healthy - desired).max(0)
    };
    let mut status = budget["status"].as_object().cloned().unwrap_or_default();
    let generation = meta::generation(budget);
    status.insert("observedGeneration".into(), json!(generation));
    status.insert("expectedPods".into(), json!(expected));
    status.insert("currentHealthy".into(), json!(healthy));
    status.insert("desiredHealthy".into(), json!(desired));
    status.insert("disruptionsAllowed".into(), json!(allowed));
    if disrupted.is_empty() {
        status.remove("disruptedPods");
    } else {
        status.insert("disruptedPods".into(), Value::Object(disrupted));
    }
    let (state, reason) = if allowed > 0 {
        ("True", "SufficientPods")
    } else {
        ("False", "InsufficientPods")
    };
    let mut conditions = meta::conditions_of(budget);
    meta::set_condition(
        &mut conditions,
        json!({
            "type": "DisruptionAllowed",
            "status": state,
            "reason": reason,
            "message": "",
            "observedGeneration": generation,
            "lastTransitionTime": meta::time(now),
        }),
    );
    status.insert("conditions".into(), Value::Array(conditions));
    (Value::Object(status), next)
}

impl Sim {
    /// The budgets a pod change concerns: those of its namespace selecting the pod before or
    /// after.
    pub fn budgets_for(&self, namespace: &str, change: &Change) -> Vec<Work> {
        let mut works = Vec::new();
        for budget in self.cache.budgets_in(namespace) {
            let Some(selector) = written(&budget["spec"]["selector"]) else {
                continue;
            };
            let selects = |pod: &Option<Arc<Json>>| {
                pod.as_ref()
                    .is_some_and(|p| selector.matches(&labels_of(p)))
            };
            if selects(&change.old) || selects(&change.new) {
                works.push(Work::Budget(meta::key_of(budget)));
            }
        }
        works
    }

    /// How many pods a budget expects: the scale of the pods' controllers for
    /// `maxUnavailable` and percentages, the pods themselves for a count of `minAvailable`.
    fn expected_pods(&self, budget: &Json, pods: &[Arc<Json>]) -> i64 {
        let spec = &budget["spec"];
        if spec["maxUnavailable"].is_null() && spec["minAvailable"].as_i64().is_some() {
            return pods.len() as i64;
        }
        let mut seen = HashSet::new();
        let mut expected = 0;
        for pod in pods {
            let namespace = meta::namespace(pod).to_owned();
            let scale = meta::controller_of(pod).and_then(|owner| {
                let (kind, key) = match owner.kind {
                    "ReplicaSet" => {
                        let set = self.cache.get(
                            Kind::ReplicaSet,
                            &(namespace.clone(), owner.name.to_owned()),
                        )?;
                        match meta::controller_of(set).filter(|d| d.kind == "Deployment") {
                            Some(d) => (Kind::Deployment, (namespace, d.name.to_owned())),
                            None => (Kind::ReplicaSet, meta::key_of(set)),
                        }
                    }
                    "StatefulSet" => (Kind::StatefulSet, (namespace, owner.name.to_owned())),
                    _ => return None,
                };
                let controller = self.cache.get(kind, &key)?;
                Some((
                    meta::uid(controller).to_owned(),
                    meta::count(&controller["spec"]["replicas"], 1),
                ))
            });
            match scale {
                Some((uid, replicas)) => {
                    if seen.insert(uid) {
                        expected += replicas;
                    }
                }
                None => expected += 1,
            }
        }
        expected
    }

    /// Reconciles a PodDisruptionBudget's status.
    pub fn sync_budget(&mut self, key: &Key) {
        let Some(budget) = self.cache.get(Kind::Budget, key).cloned() else {
            return;
        };
        let selector = written(&budget["spec"]["selector"]);
        let pods: Vec<Arc<Json>> = match &selector {
            Some(selector) => self
                .cache
                .pods_in(&key.0)
                .filter(|p| selector.matches(&labels_of(p)))
                .cloned()
                .collect(),
            None => Vec::new(),
        };
        let expected = self.expected_pods(&budget, &pods);
        let now = self.now();
        let mut next = None;
        let written = self.update(Kind::Budget, key, CONTROLLERS, Part::Status, |latest| {
            let (status, expiry) = budget_status(latest, &pods, expected, now);
            if status != latest["status"] {
                latest["status"] = status;
            }
            next = expiry;
        });
        if written.is_some()
            && let Some(at) = next
        {
            self.timers.schedule(Work::Budget(key.clone()), at);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, ready: bool) -> Arc<Json> {
        let status = if ready { "True" } else { "False" };
        Arc::new(Json::from(json!({
            "metadata": {"name": name, "labels": {"app": "web"}},
            "status": {"conditions": [{"type": "Ready", "status": status}]},
        })))
    }

    #[test]
    fn desired_healthy_follows_min_available_or_max_unavailable() {
        assert_eq!(desired_healthy(&json!({"minAvailable": 2}), 5), 2);
        assert_eq!(desired_healthy(&json!({"minAvailable": "50%"}), 5), 3);
        assert_eq!(desired_healthy(&json!({"maxUnavailable": 1}), 5), 4);
        assert_eq!(desired_healthy(&json!({"maxUnavailable": "50%"}), 5), 2);
        assert_eq!(desired_healthy(&json!({}), 5), 5);
    }

    #[test]
    fn status_counts_healthy_pods_and_forgets_finished_disruptions() {
        let now: Timestamp = "2026-01-01T00:10:00Z".parse().unwrap();
        let budget = json!({
            "metadata": {"generation": 3},
            "spec": {"minAvailable": 2},
            "status": {"disruptedPods": {
                "a": "2026-01-01T00:09:30Z",
                "gone": "2026-01-01T00:09:30Z",
                "b": "2026-01-01T00:01:00Z",
        }}});
        let pods = [
            pod("a", true),
            pod("b", true),
            pod("c", true),
            pod("d", false),
        ];
        let (status, next) = budget_status(&budget, &pods, 4, now);
        assert_eq!(
            status["disruptedPods"],
            json!({"a": "2026-01-01T00:09:30Z"})
        );
        assert_eq!(
            (
                status["currentHealthy"].clone(),
                status["desiredHealthy"].clone()
            ),
            (json!(2), json!(2))
        );
        assert_eq!(
            (
                status["disruptionsAllowed"].clone(),
                status["expectedPods"].clone()
            ),
            (json!(0), json!(4))
        );
        assert_eq!(status["observedGeneration"], 3);
        assert_eq!(status["conditions"][0]["reason"], "InsufficientPods");
        assert_eq!(next, Some("2026-01-01T00:11:30Z".parse().unwrap()));
        let (status, _) = budget_status(&json!({"spec": {"maxUnavailable": 1}}), &pods, 4, now);
        assert_eq!(status["disruptionsAllowed"], 0);
        let (status, _) = budget_status(&json!({"spec": {"maxUnavailable": 2}}), &pods, 4, now);
        assert_eq!(status["disruptionsAllowed"], 1);
        assert_eq!(status["conditions"][0]["status"], "True");
    }
}
