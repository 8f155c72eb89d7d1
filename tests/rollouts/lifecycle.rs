//! A rollout among others: a newer version superseding it, a suspended policy, two policies
//! wanting the same node, exclusions.

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
        outcome
            .node_versions("os")
            .values()
            .all(|v| v.as_deref() == Some("v3")),
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
    assert!(
        outcome
            .node_versions("firmware")
            .values()
            .all(|v| v.as_deref() == Some("fw-7"))
    );
    assert!(
        outcome
            .node_versions("os")
            .values()
            .all(|v| v.as_deref() == Some("v2"))
    );
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
