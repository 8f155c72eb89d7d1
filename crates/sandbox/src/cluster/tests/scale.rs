//! A cluster the size of a big real one: 5,000 nodes and 50,000 pods.

use std::time::Instant;

use super::{Harness, deployment, node_of, running_ready};

/// Loads 5,000 nodes and 5,000 Deployments of 10 replicas, and waits for every pod to be
/// Running and Ready, printing how long that took in real time.
///
/// It takes about 200,000 store writes (every pod is created, bound and started), and each
/// write's `managedFields` bookkeeping dominates: about 75 s in a debug build and 20 s in a
/// release build, so it only runs when asked for:
/// `cargo test --release --lib five_thousand -- --ignored --nocapture`.
#[tokio::test(start_paused = true)]
#[ignore = "slow: about 200,000 store writes (75 s in debug, 20 s in release)"]
async fn five_thousand_nodes_and_fifty_thousand_pods_settle() {
    let h = Harness::start();
    h.store.set_retention(10_000);
    let began = Instant::now();
    let names: Vec<String> = (0..5_000).map(|i| format!("node-{i:04}")).collect();
    for name in &names {
        h.node(name, serde_json::json!({}));
    }
    for i in 0..5_000 {
        h.create(
            "deployments",
            deployment(&format!("app-{i:04}"), 10, "app:1"),
        );
    }
    let loaded = began.elapsed();
    h.wait(30).await;
    let pods = h.pods();
    let settled = began.elapsed();
    assert_eq!(pods.len(), 50_000);
    assert!(pods.iter().all(|p| running_ready(p)));
    let mut load = std::collections::HashMap::<&str, usize>::new();
    for pod in &pods {
        *load.entry(node_of(pod)).or_default() += 1;
    }
    let busiest = load.values().copied().max().unwrap_or(0);
    assert_eq!(load.len(), names.len(), "every node holds pods");
    println!(
        "5,000 nodes and 50,000 pods: loaded in {:.2?}, all Running and Ready after {:.2?} \
         and {} writes; at most {busiest} pods on a node",
        loaded,
        settled,
        h.store.resource_version()
    );
    assert!(busiest <= 11, "pods spread over nodes");
}
