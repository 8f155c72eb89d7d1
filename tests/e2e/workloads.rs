//! Workload image policies (SPEC 3.4): nginx 1.27.3 to 1.27.4 through a real Deployment
//! rollout, and a patched image that never becomes Ready, rolled back.

use k8s_openapi::api::{apps::v1::Deployment, core::v1::Pod};
use kube::{Api, ResourceExt, api::ListParams};
use patchpilot::{api::keys, engine::rollout::Phase};

use patchpilot_testkit::audit::Rules;

use crate::support::{Cluster, SUITE_LABEL, kstatus, mins, wait_until};

const VERSION: &str = "nginx-1.27.4";
const OLD_IMAGE: &str = "docker.io/library/nginx:1.27.3";
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

/// A namespace of the suite with a Deployment `web` of two nginx 1.27.3 pods, rolled out.
async fn web(cluster: &mut Cluster) -> (String, String) {
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
  progressDeadlineSeconds: 30
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers:
        - name: nginx
          image: {OLD_IMAGE}
          ports: [{{containerPort: 80}}]
          readinessProbe:
            httpGet: {{path: /, port: 80}}
            periodSeconds: 2
"#
        ))
        .await;
    let deployments: Api<Deployment> = Api::namespaced(cluster.client.clone(), &namespace);
    let api = &deployments;
    wait_until("nginx 1.27.3 available", mins(2), || async move {
        api.get("web").await.ok().filter(rolled_out)
    })
    .await;
    (suite, namespace)
}

/// A workload policy over the suite's namespace, replacing nginx with `image`.
fn policy(name: &str, suite: &str, image: &str) -> String {
    format!(
        r#"
apiVersion: patchpilot.dev/v1alpha1
kind: PatchPolicy
metadata:
  name: {name}
spec:
  targets:
    workloads:
      namespaceSelector: {{matchLabels: {{{SUITE_LABEL}: {suite}}}}}
      kinds: [Deployment]
  patch:
    version: {VERSION}
    description: patchpilot end-to-end test
    images:
      - image: {image}
  strategy:
    canary: {{targets: 1, soak: 3s}}
    maxUnavailable: 1
  health:
    timeout: 1m
    soak: 3s
    checks: [{{podsReady: {{}}}}]
  approval:
    mode: Automatic
"#
    )
}

/// The images of the Deployment's pods that are not being deleted.
async fn pod_images(cluster: &Cluster, namespace: &str) -> Vec<String> {
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), namespace);
    let mut images: Vec<String> = pods
        .list(&ListParams::default().labels("app=web"))
        .await
        .expect("list pods")
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter_map(|p| p.spec?.containers.first()?.image.clone())
        .collect();
    images.sort();
    images
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a cluster: KUBECONFIG=... cargo test --test e2e -- --ignored"]
async fn a_workload_image_patch_updates_a_deployment() {
    let mut cluster = Cluster::start().await;
    let (suite, namespace) = web(&mut cluster).await;
    let policy = format!("e2e-nginx-{}", cluster.suffix);
    cluster
        .create_policy(&self::policy(&policy, &suite, NEW_IMAGE))
        .await;

    let rollout = cluster
        .wait_for_rollout(&policy, Phase::Succeeded, mins(3))
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
    // The running pods are the new ones, once the old ones have gone.
    let (c, ns) = (&cluster, namespace.as_str());
    wait_until("only new pods", mins(1), || async move {
        (pod_images(c, ns).await == [NEW_IMAGE, NEW_IMAGE]).then_some(())
    })
    .await;
    assert_eq!(
        kstatus(&format!("patchrollout/{}", rollout.name_any())).0,
        "Current"
    );
    cluster.finish(&[Rules::new(policy.clone(), 1)]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a cluster: KUBECONFIG=... cargo test --test e2e -- --ignored"]
async fn a_patched_image_that_never_becomes_ready_is_rolled_back() {
    let mut cluster = Cluster::start().await;
    let (suite, namespace) = web(&mut cluster).await;
    let policy = format!("e2e-nginx-bad-{}", cluster.suffix);
    let bad = "docker.io/library/nginx:1.27.4-never-ready";
    cluster
        .create_policy(&self::policy(&policy, &suite, bad))
        .await;

    let rollout = cluster
        .wait_for_rollout(&policy, Phase::RolledBack, mins(4))
        .await;
    let status = rollout.status.clone().unwrap_or_default();
    assert_eq!(
        (status.targets.updated, status.targets.rolled_back),
        (0, 1),
        "{status:?}"
    );
    let failure = status
        .failures
        .first()
        .unwrap_or_else(|| panic!("no failure: {status:?}"));
    eprintln!("the canary failed: {} {}", failure.reason, failure.message);
    // The recorded images are back, rolled out again, and no version is recorded.
    let web: Deployment = cluster.get(&namespace, "web").await;
    assert_eq!(images(&web), [OLD_IMAGE]);
    assert_eq!(web.annotations().get(&keys::version(&policy)), None);
    assert!(!web.annotations().contains_key(keys::LOCK), "still locked");
    let deployments: Api<Deployment> = Api::namespaced(cluster.client.clone(), &namespace);
    let api = &deployments;
    wait_until("nginx 1.27.3 available again", mins(2), || async move {
        api.get("web").await.ok().filter(rolled_out)
    })
    .await;
    let (state, message) = kstatus(&format!("patchrollout/{}", rollout.name_any()));
    assert_eq!(state, "Failed", "{message}");
    cluster.finish(&[Rules::new(policy.clone(), 1)]).await;
}
