//! Node OS policies (SPEC 3.3) on the nodes of the cluster: canary, stages and full across
//! pools and zones, drains through the Eviction API past PodDisruptionBudgets, updaters that
//! reboot their node or fail, and rollbacks.

use k8s_openapi::api::{batch::v1::Job, core::v1::Node, policy::v1::PodDisruptionBudget};
use kube::{Api, ResourceExt};
use patchpilot::{api::keys, engine::rollout::Phase};

use patchpilot_testkit::audit::Rules;

use crate::support::{
    Cluster, POOL, POOL_LABEL, kstatus, kubectl, mins, unschedulable, wait_until,
};

/// The patch version the node tests roll out.
pub const VERSION: &str = "e2e-1";

/// How a node policy of the tests differs from the plainest one.
#[derive(Clone, Debug, Default)]
pub struct NodePolicy {
    /// `E2E_FAIL` for the updater (`apply`: the patch fails, its rollback works).
    pub fail: Option<&'static str>,
    /// The updater asks for a reboot, and the policy expects one.
    pub reboot: bool,
    /// YAML of `strategy` (default: a canary of one, then the rest, one at a time).
    pub strategy: Option<String>,
    /// YAML of `drain`.
    pub drain: Option<String>,
    /// YAML of `approval` (default: automatic).
    pub approval: Option<String>,
    /// Extra lines of `spec` (indented by two spaces), such as `maintenanceWindow: w`.
    pub extra: String,
    /// Extra lines of `spec.patch` (indented by four spaces), such as `emergency: true`.
    pub patch_extra: String,
}

impl NodePolicy {
    /// The policy `name` over the labelled nodes, as YAML.
    pub fn yaml(&self, name: &str) -> String {
        let env = self.fail.map_or(String::new(), |f| {
            format!("\n              env: [{{name: E2E_FAIL, value: {f}}}]")
        });
        let annotations = if self.reboot {
            "\n        metadata:\n          annotations: {cluster.patchpilot.dev/reboot: \"true\"}"
        } else {
            ""
        };
        let strategy = self.strategy.clone().unwrap_or_else(|| {
            "canary: {targets: 1, soak: 5s}\n    maxUnavailable: 1\n    onFailure: Rollback".into()
        });
        let drain = self.drain.clone().unwrap_or_else(|| {
            "timeout: 1m\n    ignoreDaemonSets: true\n    deleteEmptyDirData: true".into()
        });
        let approval = self
            .approval
            .clone()
            .unwrap_or_else(|| "mode: Automatic".into());
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
      poolLabel: pool
  patch:
    version: {VERSION}
    description: patchpilot end-to-end test{patch_extra}
    updater:
      timeout: 2m
      expectReboot: {reboot}
      rebootTimeout: 2m
      template:{annotations}
        spec:
          securityContext:
            runAsNonRoot: true
            runAsUser: 65534
            seccompProfile: {{type: RuntimeDefault}}
          containers:
            - name: updater
              image: busybox:1.36
              command: [sh, -c, 'echo $PATCHPILOT_ACTION $PATCHPILOT_VERSION on $PATCHPILOT_NODE']{env}
              securityContext:
                allowPrivilegeEscalation: false
                capabilities: {{drop: [ALL]}}
  strategy:
    {strategy}
  drain:
    {drain}
  health:
    timeout: 2m
    soak: 3s
  approval:
    {approval}
{extra}"#,
            reboot = self.reboot,
            patch_extra = self.patch_extra,
            extra = self.extra,
        )
    }
}

/// How long a node rollout may take: well under a minute per node here, with a margin.
pub fn budget(nodes: usize) -> std::time::Duration {
    mins(2) + std::time::Duration::from_secs(45) * u32::try_from(nodes).unwrap_or(u32::MAX)
}

/// A node the rollout has let go: uncordoned and unlocked.
pub fn assert_released(node: &Node) {
    let name = node.name_any();
    assert!(!unschedulable(node), "node {name} is left cordoned");
    assert!(
        !node.annotations().contains_key(keys::LOCK),
        "node {name} is still locked"
    );
}

/// The boot ID of a node.
pub fn boot_id(node: &Node) -> String {
    node.status
        .as_ref()
        .and_then(|s| s.node_info.as_ref())
        .map(|i| i.boot_id.clone())
        .unwrap_or_default()
}

/// The rollout's updater Jobs, and the (node, action) each ran, sorted.
pub async fn updaters(cluster: &Cluster, rollout: &str) -> (Vec<Job>, Vec<(String, String)>) {
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

/// A namespace with a Deployment of `replicas` pods behind a PodDisruptionBudget with
/// `budget` (`minAvailable: 3`, say), spread over the labelled nodes.
pub async fn shop(cluster: &mut Cluster, replicas: u32, budget: &str) -> String {
    let namespace = format!("e2e-shop-{}", cluster.suffix);
    cluster.create_namespace(&namespace, &[]).await;
    cluster.apply(&format!(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, namespace: {namespace}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      nodeSelector: {{{POOL_LABEL}: {POOL}}}
      topologySpreadConstraints:
        - {{maxSkew: 1, topologyKey: kubernetes.io/hostname, whenUnsatisfiable: ScheduleAnyway, labelSelector: {{matchLabels: {{app: web}}}}}}
      containers: [{{name: web, image: nginx:1.27.3}}]
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {{name: web, namespace: {namespace}}}
spec:
  {budget}
  selector: {{matchLabels: {{app: web}}}}
"#
    ));
    // The disruption controller has counted the pods.
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(cluster.client.clone(), &namespace);
    let api = &pdbs;
    wait_until("the budget counts every pod", mins(1), || async move {
        let status = api.get("web").await.ok()?.status?;
        (status.current_healthy == i32::try_from(replicas).ok()?).then_some(())
    })
    .await;
    namespace
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a cluster: KUBECONFIG=... cargo test --test e2e -- --ignored"]
async fn a_node_os_patch_goes_canary_stages_and_full_across_pools_and_zones() {
    let mut cluster = Cluster::start().await;
    let nodes = cluster.label_worker_nodes().await;
    let boot_before: Vec<String> = cluster.nodes(&nodes).await.iter().map(boot_id).collect();
    let namespace = shop(&mut cluster, 4, "minAvailable: 3").await;
    let policy = format!("e2e-os-{}", cluster.suffix);
    let spec = NodePolicy {
        reboot: true,
        strategy: Some(
            "canary: {targets: 1, soak: 3s}\n    stages: [{percent: 50, soak: 3s}]\n    groupBy: topology.kubernetes.io/zone\n    maxUnavailable: 1\n    onFailure: Rollback".into(),
        ),
        ..NodePolicy::default()
    };
    cluster.create_policy(&spec.yaml(&policy)).await;

    // In progress, kstatus says so.
    let progressing = cluster
        .wait_for_rollout(&policy, Phase::Progressing, mins(1))
        .await;
    let (status, _) = kstatus(&format!("patchrollout/{}", progressing.name_any()));
    assert_eq!(status, "InProgress");

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
    // What Flux and Argo CD see.
    let name = rollout.name_any();
    assert_eq!(kstatus(&format!("patchrollout/{name}")).0, "Current");
    assert_eq!(kstatus(&format!("patchpolicy/{policy}")).0, "Current");

    for (node, before) in cluster.nodes(&nodes).await.iter().zip(&boot_before) {
        let name = node.name_any();
        assert_eq!(
            node.annotations()
                .get(&keys::version(&policy))
                .map(String::as_str),
            Some(VERSION),
            "node {name} carries the version"
        );
        assert_released(node);
        assert_ne!(&boot_id(node), before, "node {name} rebooted");
    }
    // One successful updater Job on each node, and nothing else.
    let (jobs, ran) = updaters(&cluster, &name).await;
    let expected: Vec<(String, String)> = nodes
        .iter()
        .map(|n| (n.clone(), "apply".to_owned()))
        .collect();
    assert_eq!(ran, expected);
    assert!(jobs.iter().all(succeeded), "every updater succeeded");

    // The audit log: per pool one node at a time, drained through the Eviction API.
    let replay = cluster
        .finish(&[Rules::new(policy.clone(), 1).per_pool("pool")])
        .await;
    if let Some(replay) = replay {
        assert!(replay.peak.values().all(|p| *p == 1), "{:?}", replay.peak);
        let log = cluster.audit_log().unwrap_or_default();
        let evictions = log
            .iter()
            .filter(|e| {
                e["user"]["username"] == crate::support::OPERATOR_USER
                    && e["objectRef"]["subresource"] == "eviction"
                    && e["objectRef"]["namespace"] == namespace.as_str()
                    && e["responseStatus"]["code"] == 201
            })
            .count();
        assert!(evictions >= 4, "{evictions} evictions of the shop's pods");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a cluster: KUBECONFIG=... cargo test --test e2e -- --ignored"]
async fn an_updater_failing_in_the_canary_rolls_it_back() {
    let mut cluster = Cluster::start().await;
    let nodes = cluster.label_nodes(&["general"]).await;
    let policy = format!("e2e-os-fail-{}", cluster.suffix);
    // The patch fails; undoing it works (a rollback that failed too would end `Failed`).
    let spec = NodePolicy {
        fail: Some("apply"),
        ..NodePolicy::default()
    };
    cluster.create_policy(&spec.yaml(&policy)).await;

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
    assert_eq!(
        kstatus(&format!("patchrollout/{}", rollout.name_any())).0,
        "Failed"
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
    cluster
        .finish(&[Rules::new(policy.clone(), 1).per_pool("pool")])
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a cluster: KUBECONFIG=... cargo test --test e2e -- --ignored"]
async fn a_budget_that_never_allows_an_eviction_fails_the_drain_unless_forced() {
    let mut cluster = Cluster::start().await;
    let nodes = cluster.label_nodes(&["gpu"]).await;
    // Every pod is needed: the disruption controller allows no eviction, ever.
    let namespace = shop(&mut cluster, 2, "minAvailable: 2").await;
    let policy = format!("e2e-os-pdb-{}", cluster.suffix);
    let spec = NodePolicy {
        strategy: Some(
            "canary: {targets: 0}\n    maxUnavailable: 1\n    failureBudget: 100%\n    onFailure: Rollback".into(),
        ),
        drain: Some("timeout: 10s\n    ignoreDaemonSets: true".into()),
        ..NodePolicy::default()
    };
    cluster.create_policy(&spec.yaml(&policy)).await;
    let rollout = cluster
        .wait_for_rollout(&policy, Phase::Succeeded, budget(nodes.len()))
        .await;
    let status = rollout.status.clone().unwrap_or_default();
    // The nodes with a shop pod could not be drained; they failed, nothing was changed.
    let blocked: Vec<&str> = status
        .failures
        .iter()
        .filter(|f| f.reason == "DrainTimeout")
        .map(|f| f.target.as_str())
        .collect();
    assert!(!blocked.is_empty(), "no drain failed: {status:?}");
    for node in cluster.nodes(&nodes).await {
        assert_released(&node);
    }
    cluster
        .check_audit(&[Rules::new(policy.clone(), 1).per_pool("pool")])
        .await;

    // With `drain.force`, the budget's pods are deleted after the timeout and the patch
    // goes through.
    let forced = format!("e2e-os-force-{}", cluster.suffix);
    let spec = NodePolicy {
        strategy: Some("canary: {targets: 0}\n    maxUnavailable: 1".into()),
        drain: Some("timeout: 5s\n    ignoreDaemonSets: true\n    force: true".into()),
        ..NodePolicy::default()
    };
    cluster.create_policy(&spec.yaml(&forced)).await;
    let rollout = cluster
        .wait_for_rollout(&forced, Phase::Succeeded, budget(nodes.len()))
        .await;
    let status = rollout.status.clone().unwrap_or_default();
    assert_eq!(
        (status.targets.updated, status.targets.failed),
        (u32::try_from(nodes.len()).unwrap(), 0),
        "{status:?}"
    );
    let log = cluster.audit_log().unwrap_or_default();
    let deleted = log
        .iter()
        .filter(|e| {
            e["user"]["username"] == crate::support::OPERATOR_USER
                && e["verb"] == "delete"
                && e["objectRef"]["resource"] == "pods"
                && e["objectRef"]["namespace"] == namespace.as_str()
        })
        .count();
    assert!(
        deleted > 0 || log.is_empty(),
        "the forced drain deleted no pod"
    );
    for node in cluster.nodes(&nodes).await {
        assert_released(&node);
    }
    cluster
        .finish(&[
            Rules::new(policy.clone(), 1).per_pool("pool"),
            Rules::new(forced.clone(), 1).per_pool("pool"),
        ])
        .await;
}

/// Issue 16: annotations anyone can write, set to garbage on the real cluster. The rollout
/// leaves the garbage-locked node alone, keeps the exclusion it cannot lift, replaces the
/// record it cannot read, says each once in a `BadAnnotation` Event on the node and in its
/// status, and finishes the other nodes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a cluster: KUBECONFIG=... cargo test --test e2e -- --ignored"]
async fn garbage_annotations_are_told_and_the_other_nodes_are_patched() {
    let mut cluster = Cluster::start().await;
    let nodes = cluster.label_worker_nodes().await;
    assert!(nodes.len() >= 4, "{nodes:?}");
    let policy = format!("e2e-garbage-{}", cluster.suffix);
    let (locked, frozen, garbled) = (&nodes[1], &nodes[2], &nodes[3]);
    let annotate = |node: &str, pairs: &[String]| {
        let mut args = vec!["annotate", "node", node, "--overwrite"];
        args.extend(pairs.iter().map(String::as_str));
        kubectl(&args);
    };
    annotate(locked, &[format!("{}=Not A Name!", keys::LOCK)]);
    annotate(
        frozen,
        &[
            format!("{}=frozen", keys::EXCLUDE),
            format!("{}=next tuesday", keys::EXCLUDE_UNTIL),
        ],
    );
    annotate(
        garbled,
        &[format!(
            "{}={{\"rollout\":\"x\",\"state\":\"Exploding\"}}",
            keys::record(&policy)
        )],
    );
    cluster
        .create_policy(&NodePolicy::default().yaml(&policy))
        .await;
    let rollout = cluster
        .wait_for_rollout(&policy, Phase::Succeeded, budget(nodes.len()))
        .await;
    let status = rollout.status.clone().unwrap_or_default();
    let patched = u32::try_from(nodes.len()).unwrap() - 2;
    assert_eq!(
        (status.targets.updated, status.targets.excluded),
        (patched, 2),
        "{status:?}"
    );
    let listed: Vec<(String, String)> = status
        .annotation_problems
        .iter()
        .map(|p| (p.target.clone(), p.annotation.clone()))
        .collect();
    let mut expected = vec![
        (format!("Node/{locked}"), keys::LOCK.to_owned()),
        (format!("Node/{frozen}"), keys::EXCLUDE_UNTIL.to_owned()),
    ];
    expected.sort();
    assert_eq!(listed, expected, "{status:?}");

    // Told once each, on the node, with the rollout as related object (events of earlier
    // runs name other rollouts).
    let events: serde_json::Value = serde_json::from_str(&kubectl(&[
        "get",
        "events",
        "-A",
        "--field-selector",
        "reason=BadAnnotation,involvedObject.kind=Node",
        "-o",
        "json",
    ]))
    .unwrap();
    let rollout_name = rollout.name_any();
    let mut told: Vec<String> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["related"]["name"] == rollout_name.as_str())
        .map(|e| {
            format!(
                "{}\t{}",
                e["involvedObject"]["name"].as_str().unwrap(),
                e["type"].as_str().unwrap()
            )
        })
        .collect();
    told.sort();
    let mut expected: Vec<String> = [locked, frozen, garbled]
        .iter()
        .map(|n| format!("{n}\tWarning"))
        .collect();
    expected.sort();
    assert_eq!(told, expected, "{events}");

    let after = cluster.nodes(&nodes).await;
    for node in &after {
        let name = node.name_any();
        let version = node.annotations().get(&keys::version(&policy)).cloned();
        if &name == locked || &name == frozen {
            assert_eq!(version, None, "{name} was left alone");
            assert!(!unschedulable(node), "{name} was left alone");
        } else {
            assert_eq!(version.as_deref(), Some(VERSION), "{name}");
            assert_released(node);
        }
    }
    let garbled_node = after.iter().find(|n| &n.name_any() == garbled).unwrap();
    let record = &garbled_node.annotations()[&keys::record(&policy)];
    assert!(record.contains("\"state\":\"Updated\""), "{record}");
    // Left as the person wrote it, for them to remove.
    let locked_node = after.iter().find(|n| &n.name_any() == locked).unwrap();
    assert_eq!(locked_node.annotations()[keys::LOCK], "Not A Name!");
    annotate(locked, &[format!("{}-", keys::LOCK)]);
    annotate(
        frozen,
        &[
            format!("{}-", keys::EXCLUDE),
            format!("{}-", keys::EXCLUDE_UNTIL),
        ],
    );
    cluster
        .finish(&[Rules::new(policy.clone(), 1).per_pool("pool")])
        .await;
}
