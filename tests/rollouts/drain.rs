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
    // Refused with 429 and retried with backoff over the 10 minutes, not in a loop.
    let codes = evictions(&outcome);
    assert!(codes.iter().all(|c| *c == 429), "{codes:?}");
    assert!(
        (5..=20).contains(&codes.len()),
        "{} evictions in 10 minutes: {codes:?}",
        codes.len()
    );
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
    // It was deleted only after the timeout: the first refusal came ten minutes before.
    let refused = outcome
        .operator_requests()
        .find(|e| e["responseStatus"]["code"] == 429)
        .map(crate::harness::timestamp)
        .unwrap();
    let delete = outcome
        .operator_writes()
        .find(|e| e["verb"] == "delete" && e["objectRef"]["resource"] == "pods")
        .map(crate::harness::timestamp)
        .unwrap();
    assert!(
        delete.duration_since(refused) >= jiff::SignedDuration::from_mins(10),
        "deleted at {delete}, first refused at {refused}"
    );
}
