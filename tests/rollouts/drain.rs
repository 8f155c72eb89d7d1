//! SPEC 3.3: drain through the Eviction API; a PodDisruptionBudget refusal is retried with
//! backoff until `drain.timeout`, then the target fails, unless `force`.

use crate::{case::Case, harness::Rules};

/// One replica pinned to `general-1` behind a budget that never lets it go.
pub(crate) fn blocked() -> Case {
    Case::new().scenario(
        "
workloads:
  - namespace: shop
    namespaceLabels: {team: shop}
    name: ledger
    replicas: 1
    image: docker.io/library/postgres:17
    pdb: {minAvailable: 1}
    nodeSelector: {kubernetes.io/hostname: general-1}
",
    )
}

fn evictions(outcome: &crate::harness::Outcome) -> Vec<u64> {
    outcome
        .operator_requests()
        .filter(|e| {
            e["objectRef"]["subresource"] == "eviction"
                && e["objectRef"]["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("ledger"))
        })
        .map(|e| e["responseStatus"]["code"].as_u64().unwrap())
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_drain_a_budget_blocks_times_out_and_fails_the_target() {
    let outcome = blocked().node_policy("os", "").run().await;
    let replay = outcome.check(&[Rules::new("os", 1)]);
    // The canary failed, so the rollout rolled back what it changed.
    assert_eq!(outcome.phase("os"), "RolledBack");
    assert_eq!(
        replay.applied.keys().collect::<Vec<_>>(),
        ["Node/general-1"]
    );
    let rollout = outcome.rollout("os");
    let failure = &rollout["status"]["failures"][0];
    assert_eq!(
        failure["target"], "Node/general-1",
        "{:#}",
        rollout["status"]
    );
    let message = failure["message"].as_str().unwrap_or("");
    assert!(
        message.contains("ledger"),
        "the failure names the pod that blocked: {failure}"
    );
    assert!(
        message.contains("PodDisruptionBudget shop/ledger"),
        "the failure names the budget: {failure}"
    );
    // The budget's status says it allows no disruption: once the API server has refused,
    // the operator does not ask again what would be refused, over the whole 10 minutes.
    let codes = evictions(&outcome);
    assert!(codes.iter().all(|c| *c == 429), "{codes:?}");
    assert!(codes.len() <= 2, "{} evictions: {codes:?}", codes.len());
    // The pod stayed.
    assert!(
        outcome
            .operator_writes()
            .all(|e| !(e["verb"] == "delete" && e["objectRef"]["resource"] == "pods"))
    );
}

#[tokio::test(start_paused = true)]
async fn with_force_the_drain_deletes_what_the_budget_protects() {
    let outcome = blocked()
        .node_policy("os", "spec: {drain: {force: true}}")
        .run()
        .await;
    let replay = outcome.check(&[Rules::new("os", 1)]);
    assert_eq!(outcome.phase("os"), "Succeeded");
    assert_eq!(replay.applied.len(), 4);
    let deleted: Vec<&str> = outcome
        .operator_writes()
        .filter(|e| e["verb"] == "delete" && e["objectRef"]["resource"] == "pods")
        .filter_map(|e| e["objectRef"]["name"].as_str())
        .collect();
    assert_eq!(deleted.len(), 1, "{deleted:?}");
    assert!(deleted[0].starts_with("ledger"));
    // It was deleted only after the timeout: the drain began (the node was locked and
    // cordoned) ten minutes before.
    let locked = outcome
        .operator_writes()
        .find(|e| e["verb"] == "patch" && e["objectRef"]["name"] == "general-1")
        .map(crate::harness::timestamp)
        .unwrap();
    let delete = outcome
        .operator_writes()
        .find(|e| e["verb"] == "delete" && e["objectRef"]["resource"] == "pods")
        .map(crate::harness::timestamp)
        .unwrap();
    assert!(
        delete.duration_since(locked) >= jiff::SignedDuration::from_mins(10),
        "deleted at {delete}, locked at {locked}"
    );
}

/// A budget that allows one disruption at a time: the drain asks for each eviction when the
/// budget allows it (its status changes trigger the rollout), so the API server refuses
/// none, and no eviction waits for a back-off once the budget allows it.
#[tokio::test(start_paused = true)]
async fn a_drain_asks_only_what_the_budget_allows() {
    let outcome = Case::new()
        .scenario(
            "
timings: {podStart: 30s}
workloads:
  - {namespace: shop, name: web, replicas: 8, image: docker.io/library/nginx:1.27.3, pdb: {maxUnavailable: 1}}
",
        )
        .node_policy("os", "")
        .run()
        .await;
    outcome.check(&[Rules::new("os", 1)]);
    assert_eq!(outcome.phase("os"), "Succeeded");
    let evictions: Vec<(jiff::Timestamp, u64)> = outcome
        .operator_requests()
        .filter(|e| e["objectRef"]["subresource"] == "eviction")
        .map(|e| {
            (
                crate::harness::timestamp(e),
                e["responseStatus"]["code"].as_u64().unwrap(),
            )
        })
        .collect();
    assert!(evictions.len() >= 8, "{evictions:?}");
    assert!(
        evictions.iter().all(|(_, code)| *code == 201),
        "refused evictions: {evictions:?}"
    );
    // Each eviction after the first of a node's waits for the replacement of the one before
    // to start (30 s), not for a back-off (5 s, then 15 s, then 35 s from the first try).
    for pair in evictions.windows(2) {
        let gap = pair[1].0.duration_since(pair[0].0);
        assert!(
            gap < jiff::SignedDuration::from_secs(31) || gap > jiff::SignedDuration::from_mins(2),
            "an eviction waited {gap:#} after the one before: {evictions:?}"
        );
    }
}

/// A pod no controller manages is not evicted without `force`: the drain waits, says why in
/// the status, and fails the target at the timeout, naming the pod and the reason.
#[tokio::test(start_paused = true)]
async fn a_bare_pod_holds_the_drain_and_the_status_says_why() {
    let outcome = Case::new()
        .object(
            "
apiVersion: v1
kind: Pod
metadata: {name: scratch, namespace: default}
spec:
  nodeName: general-1
  containers: [{name: sh, image: busybox}]
",
        )
        .node_policy("os", "")
        .run()
        .await;
    outcome.check(&[Rules::new("os", 1)]);
    let rollout = outcome.rollout("os");
    let failure = &rollout["status"]["failures"][0];
    let message = failure["message"].as_str().unwrap_or("");
    assert!(
        message.contains("default/scratch (not managed by a controller (set drain.force))"),
        "{failure}"
    );
    assert_eq!(
        outcome
            .operator_requests()
            .filter(|e| e["objectRef"]["subresource"] == "eviction")
            .count(),
        0,
        "a bare pod is never asked to go"
    );
}
