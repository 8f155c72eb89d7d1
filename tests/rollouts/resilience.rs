//! SPEC 3.2 and issue 5: everything needed to resume lives in the API. Restarted at any
//! point, or facing API errors and conflicts, the operator finishes the job without
//! breaking an invariant.

use crate::{
    case::Case,
    harness::{Outcome, Replay, Rules},
};

/// A rollout with a failure in its last wave, so that a restart can land in any step of
/// applying and of rolling back.
pub(crate) fn eventful() -> Case {
    Case::new()
        .scenario(
            "
nodes:
  - {pool: general, count: 6, zones: [zone-a, zone-b, zone-c]}
workloads:
  - {namespace: shop, name: web, replicas: 4, image: docker.io/library/nginx:1.27.3, pdb: {minAvailable: 3}}
faults: {unhealthyAfterPatch: [Node/general-5]}
",
        )
        .node_policy(
            "os",
            "
spec:
  targets: {nodes: {poolLabel: pool}}
  strategy: {groupBy: topology.kubernetes.io/zone, maxUnavailable: 2, failureBudget: 0}
  patch: {updater: {expectReboot: true, template: {metadata: {annotations: {sandbox.patchpilot.dev/reboot: 'true'}}}}}
",
        )
}

/// The outcome every run of [`eventful`] must reach, restarts or not: rolled back, every
/// target applied once and rolled back once, no version annotation left behind.
pub(crate) fn rolled_back_cleanly(outcome: &Outcome, label: &str) -> Replay {
    let replay = outcome.check(&[Rules::new("os", 2).per_pool("pool")]);
    assert_eq!(outcome.phase("os"), "RolledBack", "{label}");
    assert!(
        replay.applied.values().all(|n| *n == 1),
        "{label}: a target applied twice: {:?}",
        replay.applied
    );
    let mut rolled_back = replay.rolled_back.clone();
    rolled_back.dedup();
    let applied: Vec<&String> = replay.applied.keys().collect();
    assert_eq!(
        rolled_back.len(),
        applied.len(),
        "{label}: rolled back {rolled_back:?}, applied {applied:?}"
    );
    assert!(
        outcome.node_versions("os").values().all(Option::is_none),
        "{label}"
    );
    replay
}

async fn restarted_every(writes: u64) {
    let outcome = eventful()
        .scenario(&format!(
            "faults: {{operatorRestarts: {{everyWrites: {writes}}}}}"
        ))
        .run()
        .await;
    rolled_back_cleanly(&outcome, &format!("restarts every {writes} writes"));
}

#[tokio::test(start_paused = true)]
async fn restarts_without_a_fault_change_nothing() {
    let outcome = eventful().run().await;
    let replay = rolled_back_cleanly(&outcome, "no restart");
    // general-5 is in the last wave with another node, both patched at once: all six
    // nodes were patched, and all six are rolled back.
    assert_eq!(replay.applied.len(), 6, "{:?}", replay.applied);
}

#[tokio::test(start_paused = true)]
async fn restarted_every_3_writes() {
    restarted_every(3).await;
}

#[tokio::test(start_paused = true)]
async fn restarted_every_5_writes() {
    restarted_every(5).await;
}

#[tokio::test(start_paused = true)]
async fn restarted_every_7_writes() {
    restarted_every(7).await;
}

#[tokio::test(start_paused = true)]
async fn restarted_every_11_writes() {
    restarted_every(11).await;
}

#[tokio::test(start_paused = true)]
async fn restarted_at_given_instants() {
    let at: Vec<String> = (1..40)
        .map(|m| format!("'2026-11-28T00:{:02}:{:02}Z'", m + 2, (m * 7) % 60))
        .collect();
    let outcome = eventful()
        .scenario(&format!(
            "faults: {{operatorRestarts: {{at: [{}]}}}}",
            at.join(", ")
        ))
        .run()
        .await;
    outcome.check(&[Rules::new("os", 2).per_pool("pool")]);
    assert_eq!(outcome.phase("os"), "RolledBack");
}

async fn with_api_faults(rate: f64, seed: u64) {
    let outcome = eventful()
        .scenario(&format!("seed: {seed}\nfaults: {{api: [{{user: patchpilot, errorRate: {rate}, conflictRate: {rate}}}]}}"))
        .run()
        .await;
    let replay = outcome.check(&[Rules::new("os", 2).per_pool("pool")]);
    assert_eq!(outcome.phase("os"), "RolledBack", "seed {seed}");
    assert!(
        replay.applied.values().all(|n| *n == 1),
        "{:?}",
        replay.applied
    );
    let failed = outcome
        .operator_requests()
        .filter(|e| matches!(e["responseStatus"]["code"].as_u64(), Some(500 | 409)))
        .count();
    assert!(failed > 0, "no fault was injected");
}

#[tokio::test(start_paused = true)]
async fn api_errors_and_conflicts_at_5_percent() {
    with_api_faults(0.05, 11).await;
}

#[tokio::test(start_paused = true)]
async fn api_errors_and_conflicts_at_10_percent() {
    with_api_faults(0.10, 12).await;
}

#[tokio::test(start_paused = true)]
async fn conflicts_on_the_lease_do_not_cost_the_leadership() {
    // Two replicas electing a leader, and one write in five of the operator's answered
    // 409 Conflict, Lease renewals included: a conflict is read again, not taken for
    // another holder, so a leader keeps leading and the rollout ends as without faults.
    let outcome = eventful()
        .scenario(
            "
operator: {replicas: 2}
seed: 7
faults: {api: [{user: patchpilot, conflictRate: 0.2}]}
",
        )
        .run()
        .await;
    let replay = rolled_back_cleanly(&outcome, "lease conflicts");
    assert_eq!(replay.applied.len(), 6);
    let refused = outcome
        .operator_requests()
        .filter(|e| e["objectRef"]["resource"] == "leases" && e["responseStatus"]["code"] == 409)
        .count();
    assert!(refused > 0, "no conflict on the lease was injected");
}
