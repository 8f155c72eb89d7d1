//! SPEC 3.4: workloads get their new images, are judged the way `kubectl rollout status`
//! judges them, and get their recorded images back on rollback.

use crate::{case::Case, harness::Rules};

pub(crate) fn shop() -> Case {
    Case::new().scenario(
        "
workloads:
  - {namespace: shop, namespaceLabels: {team: shop}, name: frontend, replicas: 3, image: docker.io/library/nginx:1.27.3, pdb: {minAvailable: 2}}
  - {namespace: shop, name: web, replicas: 2, image: docker.io/library/nginx:1.27.3}
  - {namespace: shop, kind: StatefulSet, name: store, replicas: 2, image: docker.io/library/nginx:1.27.3}
  - {namespace: shop, kind: DaemonSet, name: proxy, image: docker.io/library/nginx:1.27.3}
  - {namespace: shop, name: cache, replicas: 1, image: docker.io/library/redis:7.4.1}
",
    )
}

fn image(outcome: &crate::harness::Outcome, plural: &str, name: &str) -> String {
    let object = outcome.object("apps", "v1", plural, "shop", name);
    object["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test(start_paused = true)]
async fn every_kind_of_workload_gets_the_new_image() {
    let outcome = shop()
        .workload_policy(
            "nginx",
            "spec: {strategy: {stages: [{percent: 50, soak: 5m}]}}",
        )
        .run()
        .await;
    let replay = outcome.check(&[Rules::new("nginx", 1)]);
    assert_eq!(outcome.phase("nginx"), "Succeeded");
    assert_eq!(
        replay.applied.keys().collect::<Vec<_>>(),
        [
            "DaemonSet/shop/proxy",
            "Deployment/shop/cache",
            "Deployment/shop/frontend",
            "Deployment/shop/web",
            "StatefulSet/shop/store"
        ],
        "every selected workload is a target (SPEC 3.1), whatever its images"
    );
    for (plural, name) in [
        ("deployments", "frontend"),
        ("deployments", "web"),
        ("statefulsets", "store"),
        ("daemonsets", "proxy"),
    ] {
        assert_eq!(
            image(&outcome, plural, name),
            "docker.io/library/nginx:1.27.4",
            "{name}"
        );
        let object = outcome.object("apps", "v1", plural, "shop", name);
        assert_eq!(
            object["metadata"]["annotations"]["patch.patchpilot.dev/nginx"],
            "nginx-1.27.4"
        );
    }
    // A workload with no container of the patched repository is a target too: its images
    // stay as they are and it is recorded as up to date.
    assert_eq!(
        image(&outcome, "deployments", "cache"),
        "docker.io/library/redis:7.4.1"
    );
    let cache = outcome.object("apps", "v1", "deployments", "shop", "cache");
    assert_eq!(
        cache["metadata"]["annotations"]["patch.patchpilot.dev/nginx"],
        "nginx-1.27.4"
    );
    // Every pod of the patched workloads runs the new image.
    let pods = outcome.objects("", "v1", "pods");
    let old: Vec<&str> = pods
        .iter()
        .filter(|p| p["spec"]["containers"][0]["image"] == "docker.io/library/nginx:1.27.3")
        .filter_map(|p| p["metadata"]["name"].as_str())
        .collect();
    assert!(old.is_empty(), "{old:?}");
}

#[tokio::test(start_paused = true)]
async fn an_unhealthy_workload_beyond_the_budget_rolls_back_with_its_images() {
    let outcome = shop()
        .scenario("faults: {unhealthyAfterPatch: [Deployment/shop/frontend]}")
        .workload_policy(
            "nginx",
            "spec: {targets: {workloads: {kinds: [Deployment]}}}",
        )
        .run()
        .await;
    let replay = outcome.check(&[Rules::new("nginx", 1)]);
    assert_eq!(outcome.phase("nginx"), "RolledBack");
    // By name, cache is the canary and passes; frontend, first of the next wave, turns
    // unhealthy, web is never started, and both patched targets are rolled back, most
    // recent first.
    assert_eq!(
        replay.applied.keys().collect::<Vec<_>>(),
        ["Deployment/shop/cache", "Deployment/shop/frontend"]
    );
    assert_eq!(
        replay.rolled_back,
        ["Deployment/shop/frontend", "Deployment/shop/cache"]
    );
    assert_eq!(
        image(&outcome, "deployments", "frontend"),
        "docker.io/library/nginx:1.27.3"
    );
    assert_eq!(
        image(&outcome, "deployments", "web"),
        "docker.io/library/nginx:1.27.3"
    );
    let rollout = outcome.rollout("nginx");
    let failure = &rollout["status"]["failures"][0];
    assert_eq!(
        failure["target"], "Deployment/shop/frontend",
        "{:#}",
        rollout["status"]
    );
}
