//! What the cluster's objects say, read without any request: how a workload's own rollout
//! is doing, where a Job stands, since when a node is Ready, which pods a drain must move and
//! which it cannot evict. Pure functions of the objects, table-tested here; `observe`
//! fetches the objects and hands them to these.

use jiff::Timestamp;
use k8s_openapi::{
    api::{
        apps::v1::{DaemonSet, Deployment, StatefulSet},
        batch::v1::Job,
        core::v1::Node,
    },
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};
use patchpilot_engine::machine::{JobFacts, JobState, WorkloadRollout};

use patchpilot_api::DrainSpec;

use crate::pod::PodFacts;

/// Whether a controller has seen the object's latest spec.
fn observed(meta: &ObjectMeta, observed: Option<i64>) -> bool {
    observed.unwrap_or(0) >= meta.generation.unwrap_or(0)
}

/// How a Deployment's own rollout is doing, as `kubectl rollout status` judges it.
pub fn deployment_rollout(d: &Deployment) -> WorkloadRollout {
    let (spec, status) = (d.spec.as_ref(), d.status.clone().unwrap_or_default());
    if !observed(&d.metadata, status.observed_generation) {
        return WorkloadRollout::Progressing(
            "waiting for the deployment spec update to be observed".into(),
        );
    }
    let deadline = status.conditions.iter().flatten().find(|c| {
        c.type_ == "Progressing" && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
    });
    if let Some(condition) = deadline {
        return WorkloadRollout::Failed(
            condition
                .message
                .clone()
                .unwrap_or_else(|| "progress deadline exceeded".into()),
        );
    }
    let replicas = spec.and_then(|s| s.replicas).unwrap_or(1);
    let updated = status.updated_replicas.unwrap_or(0);
    if updated < replicas {
        return WorkloadRollout::Progressing(format!(
            "{updated} out of {replicas} new replicas have been updated"
        ));
    }
    if status.replicas.unwrap_or(0) > updated {
        return WorkloadRollout::Progressing(format!(
            "{} old replicas are pending termination",
            status.replicas.unwrap_or(0) - updated
        ));
    }
    if status.available_replicas.unwrap_or(0) < updated {
        return WorkloadRollout::Progressing(format!(
            "{} of {updated} updated replicas are available",
            status.available_replicas.unwrap_or(0)
        ));
    }
    WorkloadRollout::Complete
}

/// How a StatefulSet's own rollout is doing, as `kubectl rollout status` judges it.
pub fn statefulset_rollout(s: &StatefulSet) -> WorkloadRollout {
    let (spec, status) = (s.spec.as_ref(), s.status.clone().unwrap_or_default());
    if !observed(&s.metadata, status.observed_generation) {
        return WorkloadRollout::Progressing(
            "waiting for the statefulset spec update to be observed".into(),
        );
    }
    let replicas = spec.and_then(|s| s.replicas).unwrap_or(1);
    if status.ready_replicas.unwrap_or(0) < replicas {
        return WorkloadRollout::Progressing(format!(
            "{} of {replicas} pods are ready",
            status.ready_replicas.unwrap_or(0)
        ));
    }
    let partition = spec
        .and_then(|s| s.update_strategy.as_ref())
        .and_then(|u| u.rolling_update.as_ref())
        .and_then(|r| r.partition)
        .unwrap_or(0);
    if partition > 0 {
        let wanted = replicas - partition;
        if status.updated_replicas.unwrap_or(0) < wanted {
            return WorkloadRollout::Progressing(format!(
                "{} of {wanted} pods updated past partition {partition}",
                status.updated_replicas.unwrap_or(0)
            ));
        }
        return WorkloadRollout::Complete;
    }
    if status.update_revision.is_some() && status.update_revision != status.current_revision {
        return WorkloadRollout::Progressing(format!(
            "{} of {replicas} pods at the new revision",
            status.updated_replicas.unwrap_or(0)
        ));
    }
    WorkloadRollout::Complete
}

/// How a DaemonSet's own rollout is doing, as `kubectl rollout status` judges it.
pub fn daemonset_rollout(d: &DaemonSet) -> WorkloadRollout {
    let status = d.status.clone().unwrap_or_default();
    if !observed(&d.metadata, status.observed_generation) {
        return WorkloadRollout::Progressing(
            "waiting for the daemon set spec update to be observed".into(),
        );
    }
    let desired = status.desired_number_scheduled;
    if status.updated_number_scheduled.unwrap_or(0) < desired {
        return WorkloadRollout::Progressing(format!(
            "{} out of {desired} new pods have been updated",
            status.updated_number_scheduled.unwrap_or(0)
        ));
    }
    if status.number_available.unwrap_or(0) < desired {
        return WorkloadRollout::Progressing(format!(
            "{} of {desired} updated pods are available",
            status.number_available.unwrap_or(0)
        ));
    }
    WorkloadRollout::Complete
}

/// Where a Job stands, from its conditions.
pub fn job_facts(job: &Job) -> JobFacts {
    let conditions = job
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let holds = |kind: &str| {
        conditions
            .iter()
            .find(|c| c.type_ == kind && c.status == "True")
    };
    if let Some(failed) = holds("Failed") {
        let reason = failed.reason.clone().unwrap_or_default();
        let message = failed.message.clone().unwrap_or_default();
        return JobFacts {
            state: JobState::Failed,
            finished: failed.last_transition_time.as_ref().map(|t| t.0),
            message: Some(format!("{reason}: {message}")),
        };
    }
    if holds("Complete").is_some() {
        let finished = job
            .status
            .as_ref()
            .and_then(|s| s.completion_time.as_ref())
            .map(|t| t.0);
        return JobFacts {
            state: JobState::Succeeded,
            finished,
            message: None,
        };
    }
    JobFacts {
        state: JobState::Running,
        finished: None,
        message: None,
    }
}

/// Whether a pod is one of patchpilot's own (an updater or check Job's).
fn is_patchpilot_pod(pod: &PodFacts) -> bool {
    pod.metadata
        .labels
        .as_ref()
        .is_some_and(|l| l.contains_key(patchpilot_engine::keys::ROLLOUT_LABEL))
}

/// Why a pod on a node being drained cannot simply be evicted, if it cannot.
pub fn eviction_obstacle(pod: &PodFacts, drain: &DrainSpec) -> Option<String> {
    let uses_empty_dir = pod
        .spec
        .as_ref()
        .and_then(|s| s.volumes.as_ref())
        .is_some_and(|v| v.iter().any(|v| v.empty_dir.is_some()));
    if uses_empty_dir && !drain.delete_empty_dir_data {
        return Some("uses emptyDir (set drain.deleteEmptyDirData)".into());
    }
    let managed = pod
        .metadata
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.controller == Some(true));
    if !managed && !drain.force {
        return Some("not managed by a controller (set drain.force)".into());
    }
    None
}

/// Whether a pod must leave a node before its updater runs: not finished, not a mirror pod,
/// not one of patchpilot's own, and not a DaemonSet pod when those are ignored.
pub fn must_leave(pod: &PodFacts, drain: &DrainSpec) -> bool {
    let finished = matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    );
    let mirror = pod
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(crate::podwatch::MIRROR));
    let daemon = pod
        .metadata
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.kind == "DaemonSet");
    !(finished || mirror || is_patchpilot_pod(pod) || (daemon && drain.ignore_daemon_sets))
}

/// Since when a node's `Ready` condition has had its status.
pub fn node_ready_since(node: &Node) -> Option<Timestamp> {
    node.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")
        .and_then(|c| c.last_transition_time.as_ref())
        .map(|t| t.0)
}

#[cfg(test)]
mod tests {
    use patchpilot_engine::units::Duration;
    use serde_json::{Value, json};

    use super::*;

    fn from<T: serde::de::DeserializeOwned>(value: Value) -> T {
        serde_json::from_value(value).unwrap()
    }

    fn progressing(message: &str) -> WorkloadRollout {
        WorkloadRollout::Progressing(message.into())
    }

    #[test]
    fn a_deployment_rollout_is_judged_as_kubectl_rollout_status_does() {
        // (generation, status, expected)
        let table = [
            (
                2,
                json!({"observedGeneration": 1}),
                progressing("waiting for the deployment spec update to be observed"),
            ),
            (
                2,
                json!({"observedGeneration": 2, "conditions": [{"type": "Progressing", "status": "False",
                    "reason": "ProgressDeadlineExceeded", "message": "ReplicaSet \"web-2\" has timed out progressing."}]}),
                WorkloadRollout::Failed("ReplicaSet \"web-2\" has timed out progressing.".into()),
            ),
            (
                2,
                json!({"observedGeneration": 2, "updatedReplicas": 1, "replicas": 3}),
                progressing("1 out of 3 new replicas have been updated"),
            ),
            (
                2,
                json!({"observedGeneration": 2, "updatedReplicas": 3, "replicas": 4}),
                progressing("1 old replicas are pending termination"),
            ),
            (
                2,
                json!({"observedGeneration": 2, "updatedReplicas": 3, "replicas": 3, "availableReplicas": 2}),
                progressing("2 of 3 updated replicas are available"),
            ),
            (
                2,
                json!({"observedGeneration": 2, "updatedReplicas": 3, "replicas": 3, "availableReplicas": 3}),
                WorkloadRollout::Complete,
            ),
        ];
        for (generation, status, expected) in table {
            let deployment: Deployment = from(json!({
                "metadata": {"name": "web", "generation": generation},
                "spec": {"replicas": 3, "selector": {}, "template": {}},
                "status": status,
            }));
            assert_eq!(deployment_rollout(&deployment), expected, "{status}");
        }
    }

    #[test]
    fn a_statefulset_rollout_respects_its_partition_and_revisions() {
        // (partition, status, expected)
        let table = [
            (
                0,
                json!({"observedGeneration": 1, "replicas": 3, "readyReplicas": 2}),
                progressing("2 of 3 pods are ready"),
            ),
            (
                2,
                json!({"observedGeneration": 1, "replicas": 3, "readyReplicas": 3, "updatedReplicas": 0}),
                progressing("0 of 1 pods updated past partition 2"),
            ),
            (
                2,
                json!({"observedGeneration": 1, "replicas": 3, "readyReplicas": 3, "updatedReplicas": 1,
                       "updateRevision": "b", "currentRevision": "a"}),
                WorkloadRollout::Complete,
            ),
            (
                0,
                json!({"observedGeneration": 1, "replicas": 3, "readyReplicas": 3, "updatedReplicas": 2,
                       "updateRevision": "b", "currentRevision": "a"}),
                progressing("2 of 3 pods at the new revision"),
            ),
            (
                0,
                json!({"observedGeneration": 1, "replicas": 3, "readyReplicas": 3, "updatedReplicas": 3,
                       "updateRevision": "b", "currentRevision": "b"}),
                WorkloadRollout::Complete,
            ),
        ];
        for (partition, status, expected) in table {
            let set: StatefulSet = from(json!({
                "metadata": {"name": "cache", "generation": 1},
                "spec": {"replicas": 3, "selector": {}, "serviceName": "cache", "template": {},
                         "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": partition}}},
                "status": status,
            }));
            assert_eq!(statefulset_rollout(&set), expected, "{status}");
        }
    }

    #[test]
    fn a_daemonset_rollout_waits_for_updated_and_available_pods() {
        let table = [
            (
                json!({"observedGeneration": 0, "desiredNumberScheduled": 3, "currentNumberScheduled": 3,
                       "numberMisscheduled": 0, "numberReady": 3}),
                progressing("waiting for the daemon set spec update to be observed"),
            ),
            (
                json!({"observedGeneration": 1, "desiredNumberScheduled": 3, "currentNumberScheduled": 3,
                       "numberMisscheduled": 0, "numberReady": 3, "updatedNumberScheduled": 2}),
                progressing("2 out of 3 new pods have been updated"),
            ),
            (
                json!({"observedGeneration": 1, "desiredNumberScheduled": 3, "currentNumberScheduled": 3,
                       "numberMisscheduled": 0, "numberReady": 3, "updatedNumberScheduled": 3,
                       "numberAvailable": 1}),
                progressing("1 of 3 updated pods are available"),
            ),
            (
                json!({"observedGeneration": 1, "desiredNumberScheduled": 3, "currentNumberScheduled": 3,
                       "numberMisscheduled": 0, "numberReady": 3, "updatedNumberScheduled": 3,
                       "numberAvailable": 3}),
                WorkloadRollout::Complete,
            ),
        ];
        for (status, expected) in table {
            let set: DaemonSet = from(json!({
                "metadata": {"name": "agent", "generation": 1},
                "spec": {"selector": {}, "template": {}},
                "status": status,
            }));
            assert_eq!(daemonset_rollout(&set), expected, "{status}");
        }
    }

    #[test]
    fn a_job_is_failed_succeeded_or_running_by_its_conditions() {
        let job =
            |status: Value| -> Job { from(json!({"metadata": {"name": "u"}, "status": status})) };
        let at = |s: &str| -> Timestamp { s.parse().unwrap() };
        let failed = job_facts(&job(json!({"conditions": [
            {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
             "message": "Job has reached the specified backoff limit",
             "lastTransitionTime": "2026-11-28T00:03:00Z"}
        ]})));
        assert_eq!(failed.state, JobState::Failed);
        assert_eq!(failed.finished, Some(at("2026-11-28T00:03:00Z")));
        assert_eq!(
            failed.message.as_deref(),
            Some("BackoffLimitExceeded: Job has reached the specified backoff limit")
        );
        let done = job_facts(&job(json!({
            "conditions": [{"type": "Complete", "status": "True"}],
            "completionTime": "2026-11-28T00:02:00Z"
        })));
        assert_eq!(
            (done.state, done.finished),
            (JobState::Succeeded, Some(at("2026-11-28T00:02:00Z")))
        );
        // A condition not True, or none at all: still running.
        for status in [
            json!({"conditions": [{"type": "Failed", "status": "False"}]}),
            json!({}),
        ] {
            assert_eq!(job_facts(&job(status)).state, JobState::Running);
        }
    }

    fn drain(force: bool, empty_dir: bool, ignore_daemon_sets: bool) -> DrainSpec {
        DrainSpec {
            timeout: Duration::from_mins(10),
            ignore_daemon_sets,
            delete_empty_dir_data: empty_dir,
            force,
        }
    }

    fn pod(owner: Option<&str>, extra: Value) -> PodFacts {
        let mut pod = json!({
            "metadata": {"name": "p", "namespace": "shop"},
            "spec": {"containers": [{"name": "c"}]},
        });
        if let Some(kind) = owner {
            pod["metadata"]["ownerReferences"] = json!([{
                "apiVersion": "apps/v1", "kind": kind, "name": "o", "uid": "u", "controller": true
            }]);
        }
        json_patch::merge(&mut pod, &extra);
        from(pod)
    }

    #[test]
    fn which_pods_a_drain_moves_and_which_it_cannot_evict() {
        let strict = drain(false, false, true);
        // (pod, must leave, obstacle under strict rules)
        let table: [(PodFacts, bool, Option<&str>); 8] = [
            (pod(Some("ReplicaSet"), json!({})), true, None),
            (
                pod(None, json!({})),
                true,
                Some("not managed by a controller (set drain.force)"),
            ),
            (
                pod(
                    Some("ReplicaSet"),
                    json!({"spec": {"volumes": [{"name": "v", "emptyDir": {}}]}}),
                ),
                true,
                Some("uses emptyDir (set drain.deleteEmptyDirData)"),
            ),
            (pod(Some("DaemonSet"), json!({})), false, None),
            (
                pod(
                    Some("ReplicaSet"),
                    json!({"status": {"phase": "Succeeded"}}),
                ),
                false,
                None,
            ),
            (
                pod(
                    None,
                    json!({"metadata": {"annotations": {"kubernetes.io/config.mirror": "x"}}}),
                ),
                false,
                Some("not managed by a controller (set drain.force)"),
            ),
            (
                pod(
                    Some("Job"),
                    json!({"metadata": {"labels": {"patchpilot.dev/rollout": "os-1"}}}),
                ),
                false,
                None,
            ),
            (
                pod(Some("ReplicaSet"), json!({"status": {"phase": "Failed"}})),
                false,
                None,
            ),
        ];
        for (pod, leaves, obstacle) in &table {
            let what = format!("{pod:?}");
            assert_eq!(must_leave(pod, &strict), *leaves, "{what}");
            assert_eq!(
                eviction_obstacle(pod, &strict).as_deref(),
                *obstacle,
                "{what}"
            );
        }
        // The rules that lift each obstacle.
        let lenient = drain(true, true, false);
        for (pod, _, _) in &table {
            assert_eq!(eviction_obstacle(pod, &lenient), None);
        }
        // DaemonSet pods leave too when they are not ignored.
        assert!(must_leave(&table[3].0, &lenient));
    }

    #[test]
    fn a_node_is_ready_since_its_ready_condition_last_changed() {
        let node: Node = from(json!({
            "metadata": {"name": "n"},
            "status": {"conditions": [
                {"type": "MemoryPressure", "status": "False", "lastTransitionTime": "2026-11-28T00:00:00Z"},
                {"type": "Ready", "status": "True", "lastTransitionTime": "2026-11-28T00:07:00Z"}
            ]}
        }));
        assert_eq!(
            node_ready_since(&node),
            Some("2026-11-28T00:07:00Z".parse().unwrap())
        );
        assert_eq!(
            node_ready_since(&from(json!({"metadata": {"name": "n"}}))),
            None
        );
    }
}
