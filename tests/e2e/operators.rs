//! Operator processes that die: two replicas with `--leader-elect`, the leader killed
//! mid-rollout; one operator killed mid-drain and started again.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::{Api, ResourceExt};
use patchpilot::engine::rollout::{Phase, Step};

use patchpilot_testkit::audit::Rules;

use crate::{
    nodes::{NodePolicy, assert_released, budget, shop},
    support::{Cluster, NAMESPACE, kubectl, mins, wait_until},
};

/// The holder of the operator's Lease.
async fn leader(cluster: &Cluster) -> Option<String> {
    let leases: Api<Lease> = Api::namespaced(cluster.client.clone(), NAMESPACE);
    leases
        .get_opt("patchpilot-leader")
        .await
        .ok()??
        .spec?
        .holder_identity
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a cluster: KUBECONFIG=... cargo test --test e2e -- --ignored"]
async fn the_leader_killed_mid_rollout_the_other_replica_finishes_it() {
    let mut cluster = Cluster::connect().await;
    let first = cluster.start_operator("replica-a", true);
    let second = cluster.start_operator("replica-b", true);
    let nodes = cluster.label_nodes(&["general"]).await;
    let policy = format!("e2e-os-leader-{}", cluster.suffix);
    let spec = NodePolicy {
        reboot: true,
        ..NodePolicy::default()
    };
    cluster.create_policy(&spec.yaml(&policy)).await;
    // Mid-rollout: the canary is done, the next node in progress.
    cluster
        .wait_for_rollout_where(&policy, "past its canary", mins(2), |r| {
            r.status.as_ref().is_some_and(|s| {
                s.targets.updated >= 1 && s.phase == Phase::Progressing && !s.in_progress.is_empty()
            })
        })
        .await;
    let holder = leader(&cluster).await.expect("a leader");
    let (killed, survivor) = if holder == cluster.operator(first).name {
        (first, second)
    } else {
        (second, first)
    };
    eprintln!("killing the leader {holder}");
    cluster.operator(killed).kill();
    let rollout = cluster
        .wait_for_rollout(&policy, Phase::Succeeded, budget(nodes.len()) + mins(1))
        .await;
    let status = rollout.status.clone().unwrap_or_default();
    assert_eq!(
        (status.targets.updated, status.targets.failed),
        (u32::try_from(nodes.len()).unwrap(), 0),
        "{status:?}"
    );
    let survivor_name = cluster.operator(survivor).name.clone();
    assert_eq!(leader(&cluster).await, Some(survivor_name));
    for node in cluster.nodes(&nodes).await {
        assert_released(&node);
    }
    cluster
        .finish(&[Rules::new(policy.clone(), 1).per_pool("pool")])
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a cluster: KUBECONFIG=... cargo test --test e2e -- --ignored"]
async fn an_operator_killed_mid_drain_and_restarted_finishes_the_drain() {
    let mut cluster = Cluster::connect().await;
    let first = cluster.start_operator("operator", false);
    let nodes = cluster.label_nodes(&["gpu"]).await;
    // A budget that holds every pod: the drain waits, mid-way, until it is relaxed.
    let namespace = shop(&mut cluster, 2, "minAvailable: 2").await;
    let policy = format!("e2e-os-restart-{}", cluster.suffix);
    let spec = NodePolicy {
        strategy: Some("canary: {targets: 0}\n    maxUnavailable: 1".into()),
        drain: Some("timeout: 3m\n    ignoreDaemonSets: true".into()),
        ..NodePolicy::default()
    };
    cluster.create_policy(&spec.yaml(&policy)).await;
    cluster
        .wait_for_rollout_where(&policy, "draining", mins(1), |r| {
            r.status
                .as_ref()
                .is_some_and(|s| s.in_progress.iter().any(|p| p.step == Step::Draining))
        })
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    cluster.operator(first).kill();
    tokio::time::sleep(Duration::from_secs(2)).await;
    cluster.start_operator("operator", false);
    // The budget lets one pod go; the restarted operator carries on with the same drain.
    kubectl(&[
        "patch",
        "poddisruptionbudget",
        "web",
        "--namespace",
        &namespace,
        "--type",
        "merge",
        "-p",
        r#"{"spec": {"minAvailable": 1}}"#,
    ]);
    let rollout = cluster
        .wait_for_rollout(&policy, Phase::Succeeded, budget(nodes.len()) + mins(1))
        .await;
    let status = rollout.status.clone().unwrap_or_default();
    assert_eq!(
        (status.targets.updated, status.targets.failed),
        (u32::try_from(nodes.len()).unwrap(), 0),
        "{status:?}"
    );
    for node in cluster.nodes(&nodes).await {
        assert_released(&node);
    }
    // Nothing was started twice, and the cordon made before the kill was undone once.
    let replay = cluster
        .check_audit(&[Rules::new(policy.clone(), 1).per_pool("pool")])
        .await;
    if let Some(replay) = replay {
        assert!(
            replay.applied.values().all(|n| *n == 1),
            "{:?}",
            replay.applied
        );
    }
    let (c, name) = (&cluster, rollout.name_any());
    wait_until("the rollout's Jobs listed", mins(1), || {
        let name = name.clone();
        async move { (!c.jobs_of(&name).await.is_empty()).then_some(()) }
    })
    .await;
    cluster.stop_operator().await;
}
