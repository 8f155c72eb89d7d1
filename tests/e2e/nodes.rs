//! Node OS policies (SPEC 3.3): a busybox updater run on each worker node, canary first.

use k8s_openapi::api::batch::v1::Job;
use kube::ResourceExt;
use patchpilot::{api::keys, engine::rollout::Phase};

use crate::support::{Cluster, POOL, POOL_LABEL, mins, unschedulable};

/// The patch version the node tests roll out.
const VERSION: &str = "e2e-1";

/// A node policy over the labelled nodes: a canary of one soaked briefly, then the rest one
/// at a time, approved automatically, with the default health checks (`nodeReady`,
/// `podsReady`). The updater runs `script` in busybox.
fn node_policy(name: &str, script: &str) -> String {
    format!(
        r#"
apiVersion: patchpilot.dev/v1alpha1
kind: PatchPolicy
metadata:
  name: {name}
spec:
  targets:
    nodes:
      selector:
        matchLabels: {{{POOL_LABEL}: {POOL}}}
  patch:
    version: {VERSION}
    description: patchpilot end-to-end test
    updater:
      timeout: 5m
      template:
        spec:
          containers:
            - name: updater
              image: busybox:1.36
              command: [sh, -c, '{script}']
  strategy:
    canary: {{targets: 1, soak: 10s}}
    maxUnavailable: 1
    onFailure: Rollback
  drain:
    timeout: 3m
    ignoreDaemonSets: true
    deleteEmptyDirData: true
  health:
    timeout: 5m
    soak: 10s
  approval:
    mode: Automatic
"#
    )
}

/// How long a node rollout may take: a few minutes per node (image pull, drain, pods
/// coming back), plus a margin.
fn budget(nodes: usize) -> std::time::Duration {
    mins(5) + mins(3) * u32::try_from(nodes).unwrap_or(u32::MAX)
}

/// A node the rollout has let go: uncordoned and unlocked.
fn assert_released(node: &k8s_openapi::api::core::v1::Node) {
    let name = node.name_any();
    assert!(!unschedulable(node), "node {name} is left cordoned");
    assert!(
        !node.annotations().contains_key(keys::LOCK),
        "node {name} is still locked"
    );
}

/// The rollout's updater Jobs, and the (node, action) each ran, sorted.
async fn updaters(cluster: &Cluster, rollout: &str) -> (Vec<Job>, Vec<(String, String)>) {
    let jobs = cluster.jobs_of(rollout).await;
    let mut ran: Vec<(String, String)> = jobs.iter().map(updater_of).collect();
    ran.sort();
    (jobs, ran)
}

fn succeeded(job: &Job) -> bool {
    job.status.as_ref().and_then(|s| s.succeeded).unwrap_or(0) > 0
}

fn failed(job: &Job) -> bool {
    job.status.as_ref().and_then(|s| s.failed).unwrap_or(0) > 0
}

/// The node and action of an updater Job.
fn updater_of(job: &Job) -> (String, String) {
    let spec = job
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .expect("a pod template");
    let env = spec.containers[0].env.clone().unwrap_or_default();
    let action = env
        .iter()
        .find(|e| e.name == "PATCHPILOT_ACTION")
        .and_then(|e| e.value.clone())
        .unwrap_or_default();
    (spec.node_name.clone().unwrap_or_default(), action)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a cluster: KUBECONFIG=... cargo test --test e2e -- --ignored"]
async fn a_node_os_patch_rolls_through_the_workers() {
    let mut cluster = Cluster::start().await;
    let nodes = cluster.label_worker_nodes().await;
    let policy = format!("e2e-os-{}", cluster.suffix);
    cluster
        .create_policy(&node_policy(
            &policy,
            "echo patched $PATCHPILOT_NODE to $PATCHPILOT_VERSION; exit 0",
        ))
        .await;

    let rollout = cluster
        .wait_for_rollout(&policy, Phase::Succeeded, budget(nodes.len()))
        .await;
    let status = rollout.status.clone().unwrap_or_default();
    let eligible = u32::try_from(nodes.len()).unwrap();
    assert_eq!(
        (status.targets.updated, status.targets.failed),
        (eligible, 0),
        "{status:?}"
    );

    for node in cluster.nodes(&nodes).await {
        let name = node.name_any();
        assert_eq!(
            node.annotations()
                .get(&keys::version(&policy))
                .map(String::as_str),
            Some(VERSION),
            "node {name} carries the version"
        );
        assert_released(&node);
    }
    // One successful updater Job on each node, and nothing else.
    let (jobs, ran) = updaters(&cluster, &rollout.name_any()).await;
    let expected: Vec<(String, String)> = nodes
        .iter()
        .map(|n| (n.clone(), "apply".to_owned()))
        .collect();
    assert_eq!(ran, expected);
    assert!(jobs.iter().all(succeeded), "every updater succeeded");
    cluster.stop_operator().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a cluster: KUBECONFIG=... cargo test --test e2e -- --ignored"]
async fn an_updater_failing_in_the_canary_rolls_it_back() {
    let mut cluster = Cluster::start().await;
    let nodes = cluster.label_worker_nodes().await;
    let policy = format!("e2e-os-fail-{}", cluster.suffix);
    // The patch fails; undoing it works (a rollback that failed too would end `Failed`).
    cluster
        .create_policy(&node_policy(
            &policy,
            r#"echo $PATCHPILOT_ACTION $PATCHPILOT_VERSION on $PATCHPILOT_NODE; [ "$PATCHPILOT_ACTION" = rollback ]"#,
        ))
        .await;

    let rollout = cluster
        .wait_for_rollout(&policy, Phase::RolledBack, budget(1))
        .await;
    let status = rollout.status.clone().unwrap_or_default();
    // Targets go in name order: the canary is the first node.
    let canary = &nodes[0];
    let failure = status
        .failures
        .iter()
        .find(|f| f.target == format!("Node/{canary}"))
        .unwrap_or_else(|| panic!("no failure of the canary {canary}: {status:?}"));
    assert_eq!(failure.reason, "UpdaterFailed", "{failure:?}");
    assert_eq!(
        (status.targets.updated, status.targets.rolled_back),
        (0, 1),
        "{status:?}"
    );

    for node in cluster.nodes(&nodes).await {
        let name = node.name_any();
        assert_eq!(
            node.annotations().get(&keys::version(&policy)),
            None,
            "node {name} carries no version"
        );
        assert_released(&node);
    }
    // The canary's updater ran twice: the apply failed, the rollback succeeded; no other
    // node was touched.
    let (jobs, ran) = updaters(&cluster, &rollout.name_any()).await;
    assert_eq!(
        ran,
        [
            (canary.clone(), "apply".to_owned()),
            (canary.clone(), "rollback".to_owned())
        ]
    );
    for job in &jobs {
        let (_, action) = updater_of(job);
        let outcome = (failed(job), succeeded(job));
        let expected = if action == "apply" {
            (true, false)
        } else {
            (false, true)
        };
        assert_eq!(outcome, expected, "(failed, succeeded) of the {action} Job");
    }
    cluster.stop_operator().await;
}
