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

/// Issue 10, item 3: the sandbox restarts an operator replica that exited, as a Deployment's
/// kubelet would. Both replicas lose the Lease in turn (a step hands it to an intruder that
/// never renews); without restarts, the second loss leaves no operator and the rollout
/// stalls for ever.
#[tokio::test(start_paused = true)]
async fn an_operator_replica_that_exits_is_restarted() {
    let take_the_lease = |name: &str, after: &str| {
        format!(
            "
  - name: {name}
    after: {after}
    when: {{apiVersion: coordination.k8s.io/v1, kind: Lease, namespace: patchpilot-system}}
    patch: {{spec: {{holderIdentity: intruder}}}}"
        )
    };
    let outcome = Case::new()
        .node_policy("os", "")
        .scenario(&format!(
            "
end: {{after: 6h}}
operator: {{replicas: 2}}
steps:{}{}
",
            take_the_lease("the first takeover", "5m"),
            take_the_lease("the second takeover", "20m"),
        ))
        .run()
        .await;
    outcome.check(&[Rules::new("os", 1)]);
    assert_eq!(outcome.phase("os"), "Succeeded");
    // Who held the Lease, in order of the changes of holder: the operator's writes and the
    // steps'.
    let mut holders: Vec<(Timestamp, String)> = Vec::new();
    for write in outcome.operator_writes().chain(outcome.step_writes()) {
        if write["objectRef"]["resource"] != "leases" {
            continue;
        }
        let holder = write["requestObject"]["spec"]["holderIdentity"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        holders.push((crate::harness::timestamp(write), holder));
    }
    holders.sort();
    holders.dedup_by(|b, a| a.1 == b.1);
    let names: Vec<&str> = holders.iter().map(|(_, h)| h.as_str()).collect();
    assert_eq!(names.len(), 5, "{holders:?}");
    assert_eq!(
        (names[1], names[3]),
        ("intruder", "intruder"),
        "{holders:?}"
    );
    // The other replica took over from the first once the intruder's lease expired; the
    // second time, both replicas had exited, and one of them, restarted, took over.
    assert_ne!(names[0], names[2], "{holders:?}");
    let second_takeover: Timestamp = "2026-11-28T00:20:00Z".parse().unwrap();
    assert!(
        names[4].starts_with("patchpilot-sandbox-")
            && holders[4].0 > second_takeover
            && holders[4].0 < second_takeover + jiff::SignedDuration::from_secs(30),
        "{holders:?}"
    );
}
