//! SPEC 3.2: at most `maxUnavailable` targets in progress at once, per pool with
//! `poolLabel`, a percent being of the pool's (or the rollout's) eligible targets.

use crate::{case::Case, harness::Rules};

fn two_pools() -> Case {
    Case::new().scenario(
        "
nodes:
  - {pool: general, count: 4, zones: [zone-a, zone-b]}
  - {pool: gpu, count: 4, zones: [zone-a, zone-b]}
",
    )
}

#[tokio::test(start_paused = true)]
async fn max_unavailable_applies_per_pool() {
    let outcome = two_pools()
        .node_policy("os", "spec: {targets: {nodes: {poolLabel: pool}}, strategy: {canary: {targets: 0}, stages: [], maxUnavailable: 2}}")
        .run()
        .await;
    let replay = outcome.check(&[Rules::new("os", 2).per_pool("pool")]);
    assert_eq!(outcome.phase("os"), "Succeeded");
    assert_eq!(replay.applied.len(), 8);
    // Both pools used their full allowance: the limit is per pool, not for the rollout.
    assert_eq!(
        replay.peak.values().copied().collect::<Vec<_>>(),
        [2, 2],
        "{:?}",
        replay.peak
    );
}

#[tokio::test(start_paused = true)]
async fn a_percent_is_of_the_pool_rounded_down() {
    let outcome = two_pools()
        .node_policy("os", "spec: {targets: {nodes: {poolLabel: pool}}, strategy: {canary: {targets: 0}, stages: [], maxUnavailable: '60%'}}")
        .run()
        .await;
    // 60% of 4 is 2.4: two at once in each pool.
    let replay = outcome.check(&[Rules::new("os", 2).per_pool("pool")]);
    assert_eq!(outcome.phase("os"), "Succeeded");
    assert_eq!(
        replay.peak.values().copied().collect::<Vec<_>>(),
        [2, 2],
        "{:?}",
        replay.peak
    );
}

#[tokio::test(start_paused = true)]
async fn a_percent_without_pools_is_of_the_rollout() {
    let outcome = two_pools()
        .node_policy(
            "os",
            "spec: {strategy: {canary: {targets: 0}, stages: [], maxUnavailable: '40%'}}",
        )
        .run()
        .await;
    // 40% of 8 is 3.2: three at once.
    let replay = outcome.check(&[Rules::new("os", 3)]);
    assert_eq!(outcome.phase("os"), "Succeeded");
    assert_eq!(
        replay.peak.values().copied().max(),
        Some(3),
        "{:?}",
        replay.peak
    );
}
