//! Workload image policies (SPEC 3.4): nginx 1.27.3 to 1.27.4 in a test namespace.

use k8s_openapi::api::{apps::v1::Deployment, core::v1::Pod};
use kube::{Api, ResourceExt, api::ListParams};
use patchpilot::{api::keys, engine::rollout::Phase};

use crate::support::{Cluster, SUITE_LABEL, mins, wait_until};

const VERSION: &str = "nginx-1.27.4";
const NEW_IMAGE: &str = "docker.io/library/nginx:1.27.4";

/// Whether the Deployment's own rollout is complete, as `kubectl rollout status` judges it.
fn rolled_out(deployment: &Deployment) -> bool {
    let wanted = deployment
        .spec
        .as_ref()
        .and_then(|s| s.replicas)
        .unwrap_or(1);
    let Some(status) = &deployment.status else {
        return false;
    };
    status.observed_generation >= deployment.metadata.generation
        && status.updated_replicas.unwrap_or(0) == wanted
        && status.available_replicas.unwrap_or(0) == wanted
        && status.replicas.unwrap_or(0) == wanted
}

fn images(deployment: &Deployment) -> Vec<String> {
    deployment
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .map(|s| {
            s.containers
                .iter()
                .filter_map(|c| c.image.clone())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a cluster: KUBECONFIG=... cargo test --test e2e -- --ignored"]
async fn a_workload_image_patch_updates_a_deployment() {
    let mut cluster = Cluster::start().await;
    let suite = format!("workloads-{}", cluster.suffix);
    let namespace = format!("e2e-{suite}");
    cluster
        .create_namespace(&namespace, &[(SUITE_LABEL, &suite)])
        .await;
    cluster
        .create_deployment(&format!(
            r#"
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, namespace: {namespace}, labels: {{app: web}}}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers:
        - name: nginx
          image: nginx:1.27.3
          ports: [{{containerPort: 80}}]
          readinessProbe:
            httpGet: {{path: /, port: 80}}
            periodSeconds: 2
"#
        ))
        .await;
    let deployments: Api<Deployment> = Api::namespaced(cluster.client.clone(), &namespace);
    let api = &deployments;
    wait_until("nginx 1.27.3 available", mins(5), || async move {
        api.get("web").await.ok().filter(rolled_out)
    })
    .await;

    let policy = format!("e2e-nginx-{}", cluster.suffix);
    cluster
        .create_policy(&format!(
            r#"
apiVersion: patchpilot.dev/v1alpha1
kind: PatchPolicy
metadata:
  name: {policy}
spec:
  targets:
    workloads:
      namespaceSelector: {{matchLabels: {{{SUITE_LABEL}: {suite}}}}}
      kinds: [Deployment]
  patch:
    version: {VERSION}
    description: patchpilot end-to-end test
    images:
      - image: {NEW_IMAGE}
  strategy:
    canary: {{targets: 1, soak: 10s}}
    maxUnavailable: 1
  health:
    timeout: 5m
    soak: 10s
    checks: [{{podsReady: {{}}}}]
  approval:
    mode: Automatic
"#
        ))
        .await;

    let rollout = cluster
        .wait_for_rollout(&policy, Phase::Succeeded, mins(10))
        .await;
    let status = rollout.status.clone().unwrap_or_default();
    assert_eq!(
        (status.targets.updated, status.targets.failed),
        (1, 0),
        "{status:?}"
    );

    let web: Deployment = cluster.get(&namespace, "web").await;
    assert_eq!(images(&web), [NEW_IMAGE]);
    assert!(rolled_out(&web), "{:?}", web.status);
    assert_eq!(
        web.annotations()
            .get(&keys::version(&policy))
            .map(String::as_str),
        Some(VERSION)
    );
    assert!(!web.annotations().contains_key(keys::LOCK), "still locked");
    // The running pods are the new ones.
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), &namespace);
    let running: Vec<Pod> = pods
        .list(&ListParams::default().labels("app=web"))
        .await
        .expect("list pods")
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect();
    assert_eq!(running.len(), 2);
    for pod in &running {
        let spec = pod.spec.as_ref().expect("a pod spec");
        assert_eq!(
            spec.containers[0].image.as_deref(),
            Some(NEW_IMAGE),
            "{}",
            pod.name_any()
        );
    }
    cluster.stop_operator().await;
}
