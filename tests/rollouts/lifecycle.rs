//! A rollout among others: a newer version superseding it, a suspended policy, two policies
//! wanting the same node, exclusions.

use std::collections::BTreeMap;

use jiff::Timestamp;

use crate::{case::Case, harness::Rules};

#[tokio::test(start_paused = true)]
async fn a_new_version_supersedes_the_rollout() {
    let outcome = Case::new()
        .node_policy("os", "")
        .scenario(
            "
steps:
  - name: a newer patch
    after: 20m
    when: {apiVersion: patchpilot.dev/v1alpha1, kind: PatchPolicy}
    patch: {spec: {patch: {version: v3}}}
",
        )
        .run()
        .await;
    outcome.check(&[Rules::new("os", 1)]);
    let rollouts = outcome.rollouts("os");
    let phases: Vec<&str> = rollouts
        .iter()
        .map(|r| r["status"]["phase"].as_str().unwrap())
        .collect();
    assert_eq!(phases, ["Superseded", "Succeeded"]);
    let old = rollouts[0]["metadata"]["name"].as_str().unwrap();
    let superseded = outcome.step_time("os");
    // The old rollout started nothing after the new version came.
    let late: Vec<_> = outcome
        .locks()
        .into_iter()
        .filter(|l| l.holder.as_deref() == Some(old) && l.at > superseded)
        .collect();
    assert!(
        late.iter().all(|l| l.state.as_deref() != Some("Applying")),
        "{late:?}"
    );
    assert!(
        outcome.every_node_carries("os", "v3"),
        "{:?}",
        outcome.node_versions("os")
    );
    // Both are owned by the policy.
    for rollout in &rollouts {
        assert_eq!(
            rollout["metadata"]["ownerReferences"][0]["kind"],
            "PatchPolicy"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_suspended_policy_starts_no_new_targets() {
    let outcome = Case::new()
        .node_policy("os", "")
        .scenario(
            "
steps:
  - name: suspend
    after: 5m
    when: {apiVersion: patchpilot.dev/v1alpha1, kind: PatchPolicy}
    patch: {spec: {suspend: true}}
  - name: resume
    after: 10h
    when: {apiVersion: patchpilot.dev/v1alpha1, kind: PatchPolicy}
    patch: {spec: {suspend: false}}
",
        )
        .run()
        .await;
    let replay = outcome.check(&[Rules::new("os", 1)]);
    assert_eq!(outcome.phase("os"), "Succeeded");
    assert_eq!(replay.applied.len(), 4);
    let suspended: Timestamp = "2026-11-28T00:05:00Z".parse().unwrap();
    let resumed: Timestamp = "2026-11-28T10:00:00Z".parse().unwrap();
    let starts: Vec<Timestamp> = outcome
        .locks()
        .iter()
        .filter(|l| l.state.as_deref() == Some("Applying"))
        .map(|l| l.at)
        .collect();
    assert!(
        starts.iter().all(|s| *s < suspended || *s >= resumed),
        "{starts:?}"
    );
    assert!(starts.iter().any(|s| *s >= resumed), "{starts:?}");
}

#[tokio::test(start_paused = true)]
async fn two_policies_never_hold_one_node_at_once() {
    let outcome = Case::new()
        .node_policy("os", "spec: {strategy: {canary: {targets: 0}, stages: [], maxUnavailable: 2}}")
        .node_policy("firmware", "spec: {patch: {version: fw-7}, strategy: {canary: {targets: 0}, stages: [], maxUnavailable: 2}}")
        .run()
        .await;
    // `check` fails if a node is locked by one rollout while another holds it.
    let replay = outcome.check(&[Rules::new("os", 2), Rules::new("firmware", 2)]);
    assert_eq!(outcome.phase("os"), "Succeeded");
    assert_eq!(outcome.phase("firmware"), "Succeeded");
    assert_eq!(replay.applied.values().sum::<usize>(), 8);
    assert!(outcome.every_node_carries("firmware", "fw-7"));
    assert!(outcome.every_node_carries("os", "v2"));
}

#[tokio::test(start_paused = true)]
async fn exclusions_hold_until_their_instant() {
    let outcome = Case::new()
        .scenario(
            "
nodes:
  - {pool: general, count: 2, zones: [zone-a]}
  - pool: legacy
    count: 1
    annotations: {patchpilot.dev/exclude: 'vendor kernel, CHG-88', patchpilot.dev/exclude-until: '2027-03-01T00:00:00Z'}
  - pool: expired
    count: 1
    annotations: {patchpilot.dev/exclude: 'waited for a fix', patchpilot.dev/exclude-until: '2026-11-01T00:00:00Z'}
  - pool: hold
    count: 1
    labels: {patchpilot.dev/hold: 'true'}
",
        )
        .node_policy("os", "spec: {targets: {exclude: {matchLabels: {patchpilot.dev/hold: 'true'}}}}")
        .run()
        .await;
    let replay = outcome.check(&[Rules::new("os", 1)]);
    assert_eq!(outcome.phase("os"), "Succeeded");
    let applied: Vec<&str> = replay.applied.keys().map(String::as_str).collect();
    assert_eq!(
        applied,
        ["Node/expired-1", "Node/general-1", "Node/general-2"]
    );
    let counts = outcome.counts("os");
    assert_eq!(
        (
            counts["total"].as_u64(),
            counts["excluded"].as_u64(),
            counts["updated"].as_u64()
        ),
        (Some(5), Some(2), Some(3)),
        "{counts}"
    );
    // The policy's compliance counts them apart.
    let policy = outcome.object("patchpilot.dev", "v1alpha1", "patchpolicies", "", "os");
    let compliance = &policy["status"]["compliance"];
    assert_eq!(
        (
            compliance["upToDate"].as_u64(),
            compliance["excluded"].as_u64(),
            compliance["pending"].as_u64()
        ),
        (Some(3), Some(2), Some(0)),
        "{compliance}"
    );
}

#[tokio::test(start_paused = true)]
async fn finished_rollouts_beyond_the_history_limit_are_deleted() {
    let outcome = Case::new()
        .node_policy("os", "spec: {historyLimit: 0}")
        .scenario(
            "
steps:
  - name: a newer patch
    after: 1m
    when: {apiVersion: patchpilot.dev/v1alpha1, kind: PatchPolicy}
    patch: {spec: {patch: {version: v3}}}
",
        )
        .run()
        .await;
    outcome.check(&[Rules::new("os", 1)]);
    // The newer patch comes while the canary is in flight. Only the current rollout is
    // left at the end; the superseded one was deleted once its in-flight target had
    // finished, not before (deleting it earlier left that node cordoned).
    let rollouts = outcome.rollouts("os");
    assert_eq!(rollouts.len(), 1, "{rollouts:#?}");
    assert_eq!(rollouts[0]["status"]["phase"], "Succeeded");
    let deleted: Vec<&serde_json::Value> = outcome
        .operator_requests()
        .filter(|e| e["verb"] == "delete" && e["objectRef"]["resource"] == "patchrollouts")
        .collect();
    assert_eq!(deleted.len(), 1, "{deleted:#?}");
    let old = deleted[0]["objectRef"]["name"].as_str().unwrap();
    let at = super::harness::timestamp(deleted[0]);
    let mut holders: BTreeMap<String, Option<String>> = BTreeMap::new();
    for lock in outcome.locks().into_iter().filter(|l| l.at <= at) {
        holders.insert(lock.target, lock.holder);
    }
    let held: Vec<&String> = holders
        .iter()
        .filter(|(_, holder)| holder.as_deref() == Some(old))
        .map(|(target, _)| target)
        .collect();
    assert!(
        held.is_empty(),
        "{old} deleted at {at} while it held {held:?}"
    );
}
