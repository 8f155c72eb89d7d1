//! SPEC 3.2: a rollout starts only when approved; with `afterCanary`, the waves after the
//! canary start only once promoted.

use jiff::{SignedDuration, Timestamp};

use crate::{case::Case, harness::Rules};

#[tokio::test(start_paused = true)]
async fn a_manual_rollout_waits_for_its_approval() {
    let outcome = Case::new()
        .node_policy("os", "spec: {approval: {mode: Manual}}")
        .scenario(
            "
steps:
  - name: approve
    after: 3h
    when: {apiVersion: patchpilot.dev/v1alpha1, kind: PatchRollout, field: status.phase, equals: AwaitingApproval}
    patch: {spec: {approved: true}}
",
        )
        .run()
        .await;
    let replay = outcome.check(&[Rules::new("os", 1)]);
    assert_eq!(outcome.phase("os"), "Succeeded");
    let approved = outcome.step_time("os-");
    let first = outcome.locks().first().map(|l| l.at).unwrap();
    assert!(
        first >= approved,
        "the first target started at {first}, before the approval at {approved}"
    );
    let due: Timestamp = "2026-11-28T03:00:00Z".parse().unwrap();
    assert!(
        approved >= due && approved < due + SignedDuration::from_secs(1),
        "approved at {approved}"
    );
    assert_eq!(replay.applied.len(), 4);
    assert!(
        replay.applied.values().all(|n| *n == 1),
        "{:?}",
        replay.applied
    );
    assert!(outcome.every_node_carries("os", "v2"));
}

#[tokio::test(start_paused = true)]
async fn an_automatic_rollout_starts_its_delay_after_the_release() {
    let outcome = Case::new()
        .node_policy("os", "spec: {patch: {releasedAt: '2026-11-27T12:00:00Z'}, approval: {mode: Automatic, delay: 18h}}")
        .run()
        .await;
    outcome.check(&[Rules::new("os", 1)]);
    assert_eq!(outcome.phase("os"), "Succeeded");
    let first = outcome.locks().first().map(|l| l.at).unwrap();
    let approved: Timestamp = "2026-11-28T06:00:00Z".parse().unwrap();
    assert!(
        first >= approved && first < approved + SignedDuration::from_mins(1),
        "first target at {first}, approval due at {approved}"
    );
}

#[tokio::test(start_paused = true)]
async fn after_the_canary_the_rollout_waits_to_be_promoted() {
    let outcome = Case::new()
        .node_policy(
            "os",
            "spec: {approval: {mode: Automatic, afterCanary: true}}",
        )
        .scenario(
            "
steps:
  - name: promote
    after: 2h
    when: {apiVersion: patchpilot.dev/v1alpha1, kind: PatchRollout}
    patch: {spec: {promoted: true}}
",
        )
        .run()
        .await;
    outcome.check(&[Rules::new("os", 1)]);
    assert_eq!(outcome.phase("os"), "Succeeded");
    let promoted = outcome.step_time("os-");
    let starts: Vec<_> = outcome
        .locks()
        .into_iter()
        .filter(|l| l.state.as_deref() == Some("Applying"))
        .collect();
    assert_eq!(starts.len(), 4);
    assert!(starts[0].at < promoted, "the canary waits for nothing");
    assert!(
        starts[1..].iter().all(|l| l.at >= promoted),
        "a later wave started before the promotion at {promoted}: {starts:?}"
    );
}
