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
            "Deployment/shop/frontend",
            "Deployment/shop/web",
            "StatefulSet/shop/store"
        ],
        "every selected workload with an nginx container is a target"
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
    // A workload with no container of the patched repository is not a target: it keeps its
    // images and gets no record (see `a_workload_without_the_patched_image_is_not_applicable`).
    assert_eq!(
        image(&outcome, "deployments", "cache"),
        "docker.io/library/redis:7.4.1"
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
        .scenario(
            "
workloads:
  - {namespace: shop, namespaceLabels: {team: shop}, name: api, replicas: 1, image: docker.io/library/nginx:1.27.3}
  - {namespace: shop, name: frontend, replicas: 3, image: docker.io/library/nginx:1.27.3, pdb: {minAvailable: 2}}
  - {namespace: shop, name: web, replicas: 2, image: docker.io/library/nginx:1.27.3}
  - {namespace: shop, name: cache, replicas: 1, image: docker.io/library/redis:7.4.1}
faults: {unhealthyAfterPatch: [Deployment/shop/frontend]}
",
        )
        .workload_policy(
            "nginx",
            "spec: {targets: {workloads: {kinds: [Deployment]}}}",
        )
        .run()
        .await;
    let replay = outcome.check(&[Rules::new("nginx", 1)]);
    assert_eq!(outcome.phase("nginx"), "RolledBack");
    // By name, api is the canary and passes (cache, with no nginx container, is not a
    // target); frontend, first of the next wave, turns unhealthy, web is never started, and
    // both patched targets are rolled back, most recent first.
    assert_eq!(
        replay.applied.keys().collect::<Vec<_>>(),
        ["Deployment/shop/api", "Deployment/shop/frontend"]
    );
    assert_eq!(
        replay.rolled_back,
        ["Deployment/shop/frontend", "Deployment/shop/api"]
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

/// A workload none of whose containers runs a patched image is not a target of the patch: it
/// is never locked or touched, counts as not applicable in the rollout's status and apart in
/// the policy's compliance, which is over the workloads the patch applies to.
#[tokio::test(start_paused = true)]
async fn a_workload_without_the_patched_image_is_not_applicable() {
    let outcome = shop()
        .scenario(
            "
workloads:
  - {namespace: shop, namespaceLabels: {team: shop}, name: frontend, replicas: 2, image: docker.io/library/nginx:1.27.3}
  - {namespace: shop, kind: StatefulSet, name: cache, replicas: 1, image: docker.io/library/redis:7.4.1}
  - {namespace: shop, name: web, replicas: 1, image: docker.io/library/nginx:1.27.3}
",
        )
        .workload_policy("nginx", "{}")
        .run()
        .await;
    let replay = outcome.check(&[Rules::new("nginx", 1)]);
    assert_eq!(outcome.phase("nginx"), "Succeeded");
    assert_eq!(
        replay.applied.keys().collect::<Vec<_>>(),
        ["Deployment/shop/frontend", "Deployment/shop/web"]
    );
    assert!(
        outcome
            .locks()
            .iter()
            .all(|lock| lock.target != "StatefulSet/shop/cache"),
        "the redis-only StatefulSet was locked"
    );
    assert!(
        outcome.operator_writes().all(|write| !write["requestURI"]
            .as_str()
            .unwrap()
            .contains("/statefulsets/cache")),
        "the operator wrote to the redis-only StatefulSet"
    );
    let cache = outcome.object("apps", "v1", "statefulsets", "shop", "cache");
    assert_eq!(
        cache["spec"]["template"]["spec"]["containers"][0]["image"],
        "docker.io/library/redis:7.4.1"
    );
    assert!(
        cache["metadata"]["annotations"]
            .get("patch.patchpilot.dev/nginx")
            .is_none()
    );
    let counts = outcome.counts("nginx");
    assert_eq!(counts["total"], 3, "{counts}");
    assert_eq!(counts["notApplicable"], 1, "{counts}");
    assert_eq!(counts["updated"], 2, "{counts}");
    assert_eq!(counts["pending"], 0, "{counts}");
    assert_eq!(outcome.rollout("nginx")["status"]["progress"], "2/2");
    let policy = outcome.object("patchpilot.dev", "v1alpha1", "patchpolicies", "", "nginx");
    let compliance = &policy["status"]["compliance"];
    assert_eq!(compliance["total"], 3, "{compliance}");
    assert_eq!(compliance["notApplicable"], 1, "{compliance}");
    assert_eq!(compliance["upToDate"], 2, "{compliance}");
    assert_eq!(compliance["pending"], 0, "{compliance}");
    assert_eq!(compliance["summary"], "2/2", "{compliance}");
    let compliant = policy["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Compliant")
        .unwrap();
    assert_eq!(compliant["status"], "True", "{compliant}");
    assert!(
        compliant["message"].as_str().unwrap().contains(
            "2 of 2 targets carry nginx-1.27.4; 0 pending, 0 failed, 0 overdue; 1 not applicable"
        ),
        "{compliant}"
    );
}
