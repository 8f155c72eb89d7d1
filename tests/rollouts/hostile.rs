//! Issue 16: the annotations patchpilot reads on targets are written by anyone with
//! `kubectl annotate`. Set to garbage, they make the operator neither panic nor act on them:
//! it says what it found, once, in a Warning Event on the target and in the rollout's status,
//! and goes on with the other targets.

use serde_json::{Value, json};

use crate::{
    case::Case,
    harness::{Act, Outcome, Rules},
};

/// Six nodes, the base policy `os`: a canary, then half, then the rest, one at a time.
fn six_nodes() -> Case {
    Case::new().scenario("nodes: [{pool: general, count: 6, zones: [zone-a, zone-b]}]")
}

/// A person annotates `node` with `annotations` (null removes one) `after` the start.
fn annotate(case: Case, after: &str, node: &str, annotations: Value) -> Case {
    case.at(
        after,
        Act::Patch(
            "v1",
            "nodes",
            None,
            node.into(),
            json!({"metadata": {"annotations": annotations}}),
        ),
    )
}

/// The `BadAnnotation` Events recorded on the node `node`.
fn told(outcome: &Outcome, node: &str) -> Vec<String> {
    outcome
        .objects("", "v1", "events")
        .iter()
        .filter(|e| {
            e["reason"] == "BadAnnotation"
                && e["involvedObject"]["kind"] == "Node"
                && e["involvedObject"]["name"] == node
        })
        .map(|e| {
            assert_eq!(e["type"], "Warning");
            // Told once: a series would count more.
            assert!(e["count"].as_u64().unwrap_or(1) <= 1, "{e}");
            e["message"].as_str().unwrap().to_owned()
        })
        .collect()
}

/// Whether the operator wrote to the node `node` at all.
fn touched(outcome: &Outcome, node: &str) -> bool {
    outcome
        .operator_writes()
        .any(|w| w["objectRef"]["resource"] == "nodes" && w["objectRef"]["name"] == node)
}

fn annotation(outcome: &Outcome, node: &str, key: &str) -> Value {
    outcome.object("", "v1", "nodes", "", node)["metadata"]["annotations"][key].clone()
}

#[tokio::test(start_paused = true)]
async fn locks_that_are_not_rollout_names_are_told_and_left_alone() {
    let huge = "x".repeat(3000);
    let mut case = six_nodes().node_policy("os", "spec: {}");
    for (node, lock) in [
        ("general-2", ""),
        ("general-3", huge.as_str()),
        ("general-4", "Not A Name!"),
    ] {
        case = annotate(case, "0s", node, json!({"patchpilot.dev/lock": lock}));
    }
    let outcome = case.run().await;
    outcome.check(&[Rules::new("os", 1)]);
    assert_eq!(outcome.phase("os"), "Succeeded");
    let status = &outcome.rollout("os")["status"];
    assert_eq!(status["targets"]["excluded"], 3, "{status}");
    assert_eq!(status["targets"]["updated"], 3, "{status}");
    let problems = status["annotationProblems"].as_array().unwrap();
    let listed: Vec<(&str, &str)> = problems
        .iter()
        .map(|p| {
            (
                p["target"].as_str().unwrap(),
                p["annotation"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            ("Node/general-2", "patchpilot.dev/lock"),
            ("Node/general-3", "patchpilot.dev/lock"),
            ("Node/general-4", "patchpilot.dev/lock"),
        ]
    );
    assert!(
        status["message"].as_str().unwrap().ends_with(
            "; 3 annotations patchpilot cannot use on its targets (status.annotationProblems)"
        ),
        "{status}"
    );
    for (node, lock) in [
        ("general-2", ""),
        ("general-3", huge.as_str()),
        ("general-4", "Not A Name!"),
    ] {
        // Not acted on: neither worked on nor cleared.
        assert!(!touched(&outcome, node), "{node}");
        assert_eq!(annotation(&outcome, node, "patchpilot.dev/lock"), lock);
        let told = told(&outcome, node);
        assert_eq!(told.len(), 1, "{node}: {told:?}");
        assert!(told[0].contains("is not a rollout's name"), "{}", told[0]);
        // A huge value is cut when told.
        assert!(told[0].len() < 250, "{}", told[0]);
    }
    for node in ["general-1", "general-5", "general-6"] {
        assert_eq!(annotation(&outcome, node, "patch.patchpilot.dev/os"), "v2");
    }
    // The policy did not take them for orphaned locks either.
    assert!(
        !outcome
            .objects("", "v1", "events")
            .iter()
            .any(|e| e["reason"] == "OrphanedLockCleared")
    );
}

#[tokio::test(start_paused = true)]
async fn a_lock_no_rollout_took_is_told_and_never_makes_a_rollout_work_outside_its_policy() {
    // Two policies: `os` over the general pool, `gpu` over the gpu pool (held for approval,
    // so its rollout exists and works on nothing). A person writes each one's rollout name
    // as the lock of a node of the other.
    let case = Case::new()
        .scenario(
            "{nodes: [{pool: general, count: 4, zones: [zone-a]}, {pool: gpu, count: 2, zones: [zone-a]}], end: {after: 3h, rolloutsFinished: false}}",
        )
        .node_policy(
            "os",
            "spec: {targets: {nodes: {selector: {matchLabels: {pool: general}}}}}",
        )
        .node_policy(
            "gpu",
            "spec: {targets: {nodes: {selector: {matchLabels: {pool: gpu}}}}, approval: {mode: Manual}}",
        );
    let (os, gpu) = (case.rollout_name("os"), case.rollout_name("gpu"));
    let case = annotate(case, "0s", "general-2", json!({"patchpilot.dev/lock": gpu}));
    let case = annotate(case, "0s", "gpu-1", json!({"patchpilot.dev/lock": os}));
    let outcome = case.run().await;
    outcome.check(&[Rules::new("os", 1), Rules::new("gpu", 1)]);
    assert_eq!(outcome.phase("os"), "Succeeded");
    assert_eq!(outcome.phase("gpu"), "AwaitingApproval");
    // The os rollout worked on none of gpu's nodes, though one bore its name.
    assert!(!touched(&outcome, "gpu-1"));
    assert!(!touched(&outcome, "general-2"));
    for (node, holder) in [("general-2", &gpu), ("gpu-1", &os)] {
        assert_eq!(annotation(&outcome, node, "patchpilot.dev/lock"), **holder);
        let told = told(&outcome, node);
        assert_eq!(
            told,
            [format!(
                "Node/{node}: patchpilot.dev/lock names rollout {holder}, which left no record of taking it: the target is left alone until the annotation is removed"
            )],
        );
    }
    let status = &outcome.rollout("os")["status"];
    assert_eq!(status["targets"]["updated"], 3, "{status}");
    assert_eq!(status["targets"]["excluded"], 1, "{status}");
}

#[tokio::test(start_paused = true)]
async fn unreadable_exclusions_records_and_versions_are_told_and_the_work_goes_on() {
    let mut case = six_nodes().node_policy("os", "spec: {}");
    case = annotate(
        case,
        "0s",
        "general-2",
        json!({"patchpilot.dev/exclude": "frozen", "patchpilot.dev/exclude-until": "next tuesday"}),
    );
    let record = json!({"rollout": "os-0", "attempt": 0, "state": "Exploding",
        "started": "2026-11-20T00:00:00Z", "since": "2026-11-20T00:00:00Z"});
    case = annotate(
        case,
        "0s",
        "general-3",
        json!({"patch.patchpilot.dev/os.rollout": record.to_string()}),
    );
    case = annotate(
        case,
        "0s",
        "general-4",
        json!({"patch.patchpilot.dev/os": "{\"json\": true}", "patchpilot.dev/exclude": ""}),
    );
    case = annotate(
        case,
        "0s",
        "general-5",
        json!({"patch.patchpilot.dev/os": "é".repeat(2000)}),
    );
    let outcome = case.run().await;
    outcome.check(&[Rules::new("os", 1)]);
    assert_eq!(outcome.phase("os"), "Succeeded");
    let status = &outcome.rollout("os")["status"];
    // general-2 stays excluded, and so does general-4 (an empty justification is one).
    assert_eq!(status["targets"]["excluded"], 2, "{status}");
    assert_eq!(status["targets"]["updated"], 4, "{status}");
    assert!(!touched(&outcome, "general-2"));
    assert_eq!(
        told(&outcome, "general-2"),
        [
            "Node/general-2: patchpilot.dev/exclude-until \"next tuesday\" is not an RFC 3339 instant (such as 2026-12-24T00:00:00Z): the exclusion holds"
        ]
    );
    assert_eq!(
        status["annotationProblems"][0]["annotation"], "patchpilot.dev/exclude-until",
        "{status}"
    );
    // The unreadable record is told when the rollout takes the target, and replaced.
    let told3 = told(&outcome, "general-3");
    assert_eq!(told3.len(), 1, "{told3:?}");
    assert!(
        told3[0].starts_with("Node/general-3: patch.patchpilot.dev/os.rollout is not a record patchpilot wrote (unknown variant `Exploding`"),
        "{}",
        told3[0]
    );
    let record: Value = serde_json::from_str(
        annotation(&outcome, "general-3", "patch.patchpilot.dev/os.rollout")
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(record["state"], "Updated");
    // A version that is not one is only not the rollout's: the node is updated, and the
    // version it carried is kept as it was.
    for node in ["general-3", "general-5"] {
        assert_eq!(annotation(&outcome, node, "patch.patchpilot.dev/os"), "v2");
    }
    let record5: Value = serde_json::from_str(
        annotation(&outcome, "general-5", "patch.patchpilot.dev/os.rollout")
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(record5["previousVersion"], "é".repeat(2000));
}

#[tokio::test(start_paused = true)]
async fn a_lock_overwritten_mid_update_leaves_the_work_its_own_and_nothing_behind() {
    // The canary, general-1, runs its updater from about 0s to 2m; a person overwrites its
    // lock with garbage meanwhile.
    let case = six_nodes().node_policy("os", "spec: {}");
    let outcome = annotate(
        case,
        "1m",
        "general-1",
        json!({"patchpilot.dev/lock": "oops"}),
    )
    .run()
    .await;
    outcome.check(&[Rules::new("os", 1)]);
    assert_eq!(outcome.phase("os"), "Succeeded");
    let node = outcome.object("", "v1", "nodes", "", "general-1");
    assert_eq!(
        node["metadata"]["annotations"]["patchpilot.dev/lock"],
        Value::Null
    );
    assert_ne!(node["spec"]["unschedulable"], true);
    assert_eq!(
        annotation(&outcome, "general-1", "patch.patchpilot.dev/os"),
        "v2"
    );
    assert_eq!(outcome.rollout("os")["status"]["targets"]["updated"], 6);
    let told = told(&outcome, "general-1");
    assert_eq!(told.len(), 1, "{told:?}");
    assert!(
        told[0].contains("names rollout oops, which left no record"),
        "{}",
        told[0]
    );
}
