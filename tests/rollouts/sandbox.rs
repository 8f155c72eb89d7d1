//! The sandbox itself, as scenarios use it: steps, operator replicas that exit, events on the
//! virtual clock, and the health checks the simulated network answers.

use jiff::Timestamp;

use crate::{case::Case, harness::Rules};

/// Issue 10, item 18: a step runs once, on what it matched when it ran. Approving "the
/// November patch" must not also approve the next version's rollout.
#[tokio::test(start_paused = true)]
async fn a_step_runs_once_on_what_it_matched() {
    let outcome = Case::new()
        .node_policy("os", "spec: {approval: {mode: Manual}}")
        .scenario(
            "
end: {after: 8h, rolloutsFinished: false}
steps:
  - name: approve the v2 patch
    after: 10m
    when: {apiVersion: patchpilot.dev/v1alpha1, kind: PatchRollout, field: status.phase, equals: AwaitingApproval}
    patch: {spec: {approved: true}}
  - name: a newer patch
    after: 4h
    when: {apiVersion: patchpilot.dev/v1alpha1, kind: PatchPolicy}
    patch: {spec: {patch: {version: v3}}}
",
        )
        .run()
        .await;
    outcome.check(&[Rules::new("os", 1)]);
    let rollouts = outcome.rollouts("os");
    let phases: Vec<(&str, &str)> = rollouts
        .iter()
        .map(|r| {
            (
                r["spec"]["patch"]["version"].as_str().unwrap(),
                r["status"]["phase"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        phases,
        [("v2", "Succeeded"), ("v3", "AwaitingApproval")],
        "the approval step ran again on the v3 rollout"
    );
    let approvals: Vec<Timestamp> = outcome
        .step_writes()
        .filter(|e| e["objectRef"]["resource"] == "patchrollouts")
        .map(crate::harness::timestamp)
        .collect();
    assert_eq!(approvals.len(), 1, "{approvals:?}");
}
