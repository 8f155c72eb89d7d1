//! Jobs: completion, retries, deadlines and the time to live after finishing.

use serde_json::{Value, json};

use super::{Harness, condition};
use crate::cluster::{ClusterFaults, Timings};

fn check(name: &str, extra: Value) -> Value {
    let mut job = json!({
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
        "spec": {"template": {"spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "check", "image": "check:1"}],
        }}},
    });
    if let (Some(spec), Some(extra)) = (job["spec"].as_object_mut(), extra.as_object()) {
        spec.extend(extra.clone());
    }
    job
}

#[tokio::test(start_paused = true)]
async fn a_finished_job_goes_after_its_time_to_live_with_its_pods() {
    let h = Harness::start();
    h.nodes(&["n1"]);
    h.create(
        "jobs",
        check("health", json!({"ttlSecondsAfterFinished": 30})),
    );
    h.wait(2).await;
    assert_eq!(h.get("jobs", "health").unwrap()["status"]["active"], 1);
    h.wait(8).await;
    let job = h.get("jobs", "health").unwrap();
    assert_eq!(job["status"]["succeeded"], 1);
    assert_eq!(
        condition(&job, "SuccessCriteriaMet").unwrap()["reason"],
        "CompletionsReached"
    );
    assert_eq!(condition(&job, "Complete").unwrap()["status"], "True");
    assert_eq!(h.pods_of("health-").len(), 1);
    h.wait(20).await;
    assert!(h.get("jobs", "health").is_some());
    h.wait(7).await;
    assert!(h.get("jobs", "health").is_none());
    assert!(h.pods_of("health-").is_empty(), "pods go with their Job");
}

#[tokio::test(start_paused = true)]
async fn failing_pods_are_retried_until_the_backoff_limit() {
    let faults = ClusterFaults {
        updater_failures: vec![("n1".into(), None)],
        ..ClusterFaults::default()
    };
    let timings = Timings {
        updater: patchpilot_engine::units::Duration::from_secs(5),
        ..Timings::default()
    };
    let h = Harness::with(timings, faults);
    h.nodes(&["n1"]);
    let mut job = check("update", json!({"backoffLimit": 2}));
    job["spec"]["template"]["spec"]["nodeName"] = json!("n1");
    job["spec"]["template"]["spec"]["containers"][0]["env"] =
        json!([{"name": "PATCHPILOT_ACTION", "value": "apply"}]);
    h.create("jobs", job);
    h.wait(8).await;
    assert_eq!(
        h.pods_of("update-").len(),
        1,
        "the retry waits for its backoff"
    );
    h.wait(120).await;
    let job = h.get("jobs", "update").unwrap();
    assert_eq!(job["status"]["failed"], 3);
    assert_eq!(h.pods_of("update-").len(), 3);
    assert_eq!(
        condition(&job, "Failed").unwrap()["reason"],
        "BackoffLimitExceeded"
    );
}

#[tokio::test(start_paused = true)]
async fn a_job_stops_at_its_deadline() {
    let timings = Timings {
        updater: patchpilot_engine::units::Duration::from_mins(10),
        ..Timings::default()
    };
    let h = Harness::with(timings, ClusterFaults::default());
    h.nodes(&["n1"]);
    let mut job = check("slow", json!({"activeDeadlineSeconds": 60}));
    job["spec"]["template"]["spec"]["containers"][0]["env"] =
        json!([{"name": "PATCHPILOT_ACTION", "value": "apply"}]);
    h.create("jobs", job);
    h.wait(70).await;
    let job = h.get("jobs", "slow").unwrap();
    assert_eq!(
        condition(&job, "Failed").unwrap()["reason"],
        "DeadlineExceeded"
    );
    assert!(job["status"].get("active").is_none());
    assert!(
        h.pods_of("slow-").is_empty(),
        "the running pod was stopped and removed"
    );
}

#[tokio::test(start_paused = true)]
async fn a_deleted_job_pod_counts_as_failed_and_is_replaced() {
    let h = Harness::start();
    h.nodes(&["n1"]);
    let mut job = check("update", json!({"backoffLimit": 1}));
    job["spec"]["template"]["spec"]["containers"][0]["env"] =
        json!([{"name": "PATCHPILOT_ACTION", "value": "apply"}]);
    h.create("jobs", job);
    h.wait(10).await;
    let first = h.pods_of("update-").pop().unwrap();
    h.delete("pods", super::name(&first));
    h.wait(20).await;
    let job = h.get("jobs", "update").unwrap();
    assert_eq!(job["status"]["failed"], 1);
    assert_eq!(job["status"]["active"], 1, "{job:#}");
    h.wait(150).await;
    let job = h.get("jobs", "update").unwrap();
    assert_eq!(condition(&job, "Complete").unwrap()["status"], "True");
}
