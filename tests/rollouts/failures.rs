//! SPEC 3.5: failures, the failure budget, rollback in reverse order, `onFailure: Pause`
//! with abort, resume and retry.

use crate::{
    case::Case,
    harness::{Rules, job_env},
};

#[tokio::test(start_paused = true)]
async fn an_updater_failing_in_the_canary_rolls_the_canary_back() {
    let outcome = Case::new()
        .scenario("faults: {updaterFailures: [{node: general-1, action: apply}]}")
        .node_policy("os", "")
        .run()
        .await;
    let replay = outcome.check(&[Rules::new("os", 1)]);
    assert_eq!(outcome.phase("os"), "RolledBack");
    assert_eq!(
        replay.applied.keys().collect::<Vec<_>>(),
        ["Node/general-1"]
    );
    assert_eq!(replay.rolled_back, ["Node/general-1"]);
    let jobs = outcome.updater_jobs();
    let actions: Vec<_> = jobs
        .iter()
        .map(|j| {
            (
                j["spec"]["template"]["spec"]["nodeName"].as_str().unwrap(),
                job_env(j, "PATCHPILOT_ACTION").unwrap(),
            )
        })
        .collect();
    assert_eq!(actions, [("general-1", "apply"), ("general-1", "rollback")]);
    let rollback = jobs[1];
    assert_eq!(job_env(rollback, "PATCHPILOT_VERSION"), Some("v2"));
    assert_eq!(job_env(rollback, "PATCHPILOT_PREVIOUS_VERSION"), Some(""));
    assert_eq!(job_env(rollback, "PATCHPILOT_NODE"), Some("general-1"));
    assert!(
        outcome.node_versions("os").values().all(Option::is_none),
        "{:?}",
        outcome.node_versions("os")
    );
}

#[tokio::test(start_paused = true)]
async fn a_failure_within_the_budget_lets_the_rollout_finish() {
    let outcome = Case::new()
        .scenario("faults: {unhealthyAfterPatch: [Node/general-3]}")
        .node_policy("os", "spec: {strategy: {failureBudget: 1}}")
        .run()
        .await;
    let replay = outcome.check(&[Rules::new("os", 1)]);
    assert_eq!(replay.applied.len(), 4);
    assert!(replay.rolled_back.is_empty());
    let counts = outcome.counts("os");
    assert_eq!(
        (counts["updated"].as_u64(), counts["failed"].as_u64()),
        (Some(3), Some(1)),
        "{counts}"
    );
    let rollout = outcome.rollout("os");
    assert_eq!(rollout["status"]["failures"][0]["target"], "Node/general-3");
    assert_eq!(outcome.phase("os"), "Succeeded", "{:#}", rollout["status"]);
    // The report `patchpilot sandbox --report` writes says the same.
    let reported = &outcome.report["rollouts"][0];
    assert_eq!(reported["name"], rollout["metadata"]["name"]);
    assert_eq!(reported["policy"], "os");
    assert_eq!(reported["phase"], "Succeeded");
    assert_eq!(reported["targets"], counts);
}

#[tokio::test(start_paused = true)]
async fn a_failure_beyond_the_budget_rolls_back_most_recent_first() {
    let outcome = Case::new()
        .scenario("faults: {unhealthyAfterPatch: [Node/general-3]}")
        .node_policy("os", "")
        .run()
        .await;
    let replay = outcome.check(&[Rules::new("os", 1)]);
    assert_eq!(outcome.phase("os"), "RolledBack");
    assert_eq!(
        replay.applied.len(),
        3,
        "general-4 never starts: {:?}",
        replay.applied
    );
    assert_eq!(
        replay.rolled_back,
        ["Node/general-3", "Node/general-2", "Node/general-1"]
    );
    let nodes = outcome.nodes();
    assert!(nodes.iter().all(|n| {
        n["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["type"] != "MemoryPressure" || c["status"] == "False")
    }));
}

fn paused_on_general_2() -> Case {
    Case::new()
        .scenario("faults: {updaterFailures: [{node: general-2, action: apply}]}")
        .node_policy("os", "spec: {strategy: {onFailure: Pause}}")
}

#[tokio::test(start_paused = true)]
async fn on_failure_pause_waits_for_a_person_who_aborts() {
    let outcome = paused_on_general_2()
        .scenario(
            "
steps:
  - name: abort
    after: 6h
    when: {apiVersion: patchpilot.dev/v1alpha1, kind: PatchRollout, field: status.phase, equals: Paused}
    patch: {spec: {abort: true}}
",
        )
        .run()
        .await;
    let replay = outcome.check(&[Rules::new("os", 1)]);
    assert_eq!(outcome.phase("os"), "RolledBack");
    // Nothing happened between the failure and the abort.
    let aborted = outcome.step_time("os-");
    let before: Vec<_> = outcome
        .locks()
        .into_iter()
        .filter(|l| l.at < aborted)
        .collect();
    let last_before = before.last().unwrap();
    assert!(
        aborted.duration_since(last_before.at) > jiff::SignedDuration::from_hours(5),
        "{before:?}"
    );
    assert_eq!(replay.rolled_back, ["Node/general-2", "Node/general-1"]);
}

#[tokio::test(start_paused = true)]
async fn on_failure_pause_then_resume_accepts_the_failure() {
    let outcome = paused_on_general_2()
        .scenario(
            "
steps:
  - name: resume
    after: 6h
    when: {apiVersion: patchpilot.dev/v1alpha1, kind: PatchRollout, field: status.phase, equals: Paused}
    patch: {spec: {paused: false}}
",
        )
        .run()
        .await;
    let replay = outcome.check(&[Rules::new("os", 1)]);
    assert_eq!(outcome.phase("os"), "Succeeded");
    assert_eq!(replay.applied.len(), 4);
    let counts = outcome.counts("os");
    assert_eq!(
        (counts["updated"].as_u64(), counts["failed"].as_u64()),
        (Some(3), Some(1)),
        "{counts}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_retry_sends_failed_targets_back_to_pending() {
    // The drain of general-1 is blocked until a person relaxes the budget, then retries.
    let outcome = Case::new()
        .scenario(
            "
workloads:
  - namespace: shop
    namespaceLabels: {team: shop}
    name: ledger
    replicas: 1
    image: docker.io/library/postgres:17
    pdb: {minAvailable: 1}
    nodeSelector: {kubernetes.io/hostname: general-1}
steps:
  - name: relax the budget
    after: 2h
    when: {apiVersion: policy/v1, kind: PodDisruptionBudget, namespace: shop}
    patch: {spec: {minAvailable: 0}}
  - name: retry
    after: 2h1m
    when: {apiVersion: patchpilot.dev/v1alpha1, kind: PatchRollout, field: status.phase, equals: Paused}
    patch: {spec: {retry: 1, paused: false}}
",
        )
        .node_policy("os", "spec: {strategy: {onFailure: Pause}}")
        .run()
        .await;
    let replay = outcome.check(&[Rules::new("os", 1)]);
    assert_eq!(outcome.phase("os"), "Succeeded");
    assert_eq!(
        replay.applied.get("Node/general-1"),
        Some(&2),
        "{:?}",
        replay.applied
    );
    assert_eq!(replay.applied.len(), 4);
    let counts = outcome.counts("os");
    assert_eq!(
        (counts["updated"].as_u64(), counts["failed"].as_u64()),
        (Some(4), Some(0)),
        "{counts}"
    );
}
