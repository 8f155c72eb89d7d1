//! Issue 10, history and GitOps health: a rollout that ended keeps its status; a missing
//! window is a wait; a rolled-back rollout and its policy are Stalled; a policy waiting for
//! its window or an approval is Ready, not "in progress" for weeks.

use serde_json::{Value, json};

use crate::{
    case::Case,
    harness::{Act, Rules, condition},
    windows::DAILY,
};

fn yaml(text: &str) -> Value {
    serde_yaml_ng::from_str(text).unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_policy_applied_before_its_window_waits_and_goes_on_once_it_appears() {
    // The GitOps ordering race: the policy arrives first, its window half an hour later.
    let case = Case::new().node_policy("os", "spec: {maintenanceWindow: nightly}");
    let rollout = case.rollout_name("os");
    let outcome = case.at("30m", Act::Create(yaml(DAILY))).run().await;
    outcome.check(&[Rules::new("os", 1)]);
    assert_eq!(outcome.phase("os"), "Succeeded");
    let waiting = outcome.status_at("patchrollouts", &rollout, "2026-11-28T00:20:00Z");
    assert_eq!(waiting["phase"], "Pending", "{waiting}");
    assert_eq!(
        condition(&waiting, "Reconciling"),
        ("True".into(), "WindowNotFound".into())
    );
    assert_eq!(condition(&waiting, "Stalled").0, "False");
    assert!(
        waiting["message"].as_str().unwrap().contains("nightly"),
        "{waiting}"
    );
    // Never failed on the way.
    let failed = outcome.operator_writes().any(|e| {
        e["objectRef"]["subresource"] == "status"
            && e["requestObject"]["status"]["phase"] == "Failed"
    });
    assert!(!failed);
    let policy = outcome.status_at("patchpolicies", "os", "2026-11-28T00:20:00Z");
    assert_eq!(
        condition(&policy, "Reconciling"),
        ("True".into(), "WindowNotFound".into())
    );
}

#[tokio::test(start_paused = true)]
async fn a_rolled_back_rollout_and_its_policy_are_stalled() {
    let outcome = Case::new()
        .scenario("faults: {updaterFailures: [{node: general-1, action: apply}]}")
        .node_policy("os", "")
        .run()
        .await;
    outcome.check(&[Rules::new("os", 1)]);
    let rollout = outcome.rollout("os");
    let status = &rollout["status"];
    assert_eq!(status["phase"], "RolledBack");
    assert_eq!(
        condition(status, "Stalled"),
        ("True".into(), "CanaryFailed".into())
    );
    assert_eq!(condition(status, "Ready").0, "False");
    assert_eq!(condition(status, "Reconciling").0, "False");
    let policy = outcome.object("patchpilot.dev", "v1alpha1", "patchpolicies", "", "os");
    let status = &policy["status"];
    assert_eq!(
        condition(status, "Stalled"),
        ("True".into(), "CanaryFailed".into())
    );
    assert_eq!(condition(status, "Ready").0, "False");
    assert_eq!(condition(status, "Reconciling").0, "False");
}

#[tokio::test(start_paused = true)]
async fn a_policy_waiting_for_its_window_is_ready_and_its_rollout_in_progress() {
    // The window opens at 01:00; at 00:30 everything is accepted and scheduled.
    let case = Case::new()
        .object(DAILY)
        .node_policy("os", "spec: {maintenanceWindow: nightly}");
    let rollout = case.rollout_name("os");
    let outcome = case.run().await;
    let policy = outcome.status_at("patchpolicies", "os", "2026-11-28T00:30:00Z");
    assert_eq!(
        condition(&policy, "Ready"),
        ("True".into(), "Scheduled".into())
    );
    assert_eq!(condition(&policy, "Reconciling").0, "False");
    assert_eq!(condition(&policy, "Stalled").0, "False");
    let waiting = outcome.status_at("patchrollouts", &rollout, "2026-11-28T00:30:00Z");
    assert_eq!(waiting["phase"], "Scheduled");
    assert_eq!(
        condition(&waiting, "Reconciling"),
        ("True".into(), "Scheduled".into())
    );
    assert_eq!(outcome.phase("os"), "Succeeded");
    let done = &outcome.rollout("os")["status"];
    assert_eq!(condition(done, "Ready").0, "True");
    assert_eq!(condition(done, "Reconciling").0, "False");
    assert!(done.get("nextWindow").is_none(), "{done}");
}

#[tokio::test(start_paused = true)]
async fn a_halted_rollout_keeps_its_counts_when_an_emergency_goes_over_its_nodes() {
    let case = Case::new()
        .scenario("faults: {updaterFailures: [{node: general-2, action: apply}]}")
        .node_policy(
            "os",
            "spec: {strategy: {canary: {targets: 0}, stages: [], onFailure: Pause}}",
        );
    let own = case.rollout_name("os");
    let emergency = json!({
        "apiVersion": "patchpilot.dev/v1alpha1",
        "kind": "PatchRollout",
        "metadata": {"name": "os-zero-day"},
        "spec": {
            "policy": "os",
            "approved": true,
            "patch": {
                "version": "zero-day",
                "emergency": true,
                "updater": {"template": {"spec": {"containers": [{"name": "fix", "image": "busybox"}]}}},
            },
        },
    });
    // The node that failed is held out of the emergency (it would fail it too).
    let hold = json!({"metadata": {"annotations": {"patchpilot.dev/exclude": "broken updater"}}});
    let outcome = case
        .at(
            "50m",
            Act::Patch("v1", "nodes", None, "general-2".into(), hold),
        )
        .at("1h", Act::Create(emergency))
        .scenario("end: {after: 1d}")
        .run()
        .await;
    outcome.check(&[Rules::new("os", 1)]);
    let halted = outcome.status_at("patchrollouts", &own, "2026-11-28T00:59:00Z");
    assert_eq!(halted["phase"], "Paused", "{halted}");
    let rollouts = outcome.rollouts("os");
    let status = |name: &str| {
        rollouts
            .iter()
            .find(|r| r["metadata"]["name"] == name)
            .unwrap()["status"]
            .clone()
    };
    assert_eq!(status("os-zero-day")["phase"], "Succeeded");
    let after = status(&own);
    assert_eq!(after["phase"], "Paused");
    assert_eq!(after["targets"], halted["targets"], "{after}");
    assert_eq!(after["failures"], halted["failures"]);
}

/// Going into the soak is one status write, not two: the end of the soak is said from the
/// instant as the API keeps it (whole seconds), so reading it back changes nothing.
#[tokio::test(start_paused = true)]
async fn a_target_going_into_its_soak_is_written_once() {
    let outcome = Case::new().node_policy("os", "").run().await;
    outcome.check(&[Rules::new("os", 1)]);
    assert_eq!(outcome.phase("os"), "Succeeded");
    let mut soaking: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for write in outcome
        .operator_writes()
        .filter(|e| e["objectRef"]["resource"] == "patchrollouts")
        .filter(|e| e["objectRef"]["subresource"] == "status")
    {
        for entry in write["requestObject"]["status"]["inProgress"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["step"] == "Soaking")
        {
            let target = entry["target"].as_str().unwrap_or_default().to_owned();
            let message = entry["message"].as_str().unwrap_or_default().to_owned();
            soaking.entry(target).or_default().push(message);
        }
    }
    assert!(!soaking.is_empty(), "no target soaked");
    for (target, messages) in &soaking {
        assert_eq!(messages.len(), 1, "{target}: {messages:#?}");
        assert!(!messages[0].contains('.'), "{target}: {messages:?}");
    }
}
