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

/// When the kubelets first reported a container of a pod named `prefix…` waiting for a
/// reason that means it will never turn Ready, and the reason.
fn first_fatal_signal(
    outcome: &crate::harness::Outcome,
    prefix: &str,
) -> Option<(jiff::Timestamp, String)> {
    const FATAL: [&str; 5] = [
        "CrashLoopBackOff",
        "ErrImagePull",
        "ImagePullBackOff",
        "InvalidImageName",
        "CreateContainerConfigError",
    ];
    outcome.pod_history.iter().find_map(|(at, pod)| {
        let name = pod["metadata"]["name"].as_str()?;
        if !name.starts_with(prefix) {
            return None;
        }
        pod["status"]["containerStatuses"]
            .as_array()?
            .iter()
            .filter_map(|c| c["state"]["waiting"]["reason"].as_str())
            .find(|reason| FATAL.contains(reason))
            .map(|reason| (*at, reason.to_owned()))
    })
}

/// The operator's first write rolling `Deployment/<namespace>/<name>` back: its record says
/// `RollingBack`, or it puts `image` back.
fn first_rollback_write(
    outcome: &crate::harness::Outcome,
    namespace: &str,
    name: &str,
    image: &str,
) -> Option<jiff::Timestamp> {
    outcome
        .operator_writes()
        .filter(|e| {
            e["objectRef"]["resource"] == "deployments"
                && e["objectRef"]["namespace"] == namespace
                && e["objectRef"]["name"] == name
        })
        .find(|e| {
            let restores = e["requestObject"]["spec"]["template"]["spec"]["containers"]
                .as_array()
                .is_some_and(|c| c.iter().any(|c| c["image"] == image));
            let record = e["requestObject"]["metadata"]["annotations"]
                .as_object()
                .into_iter()
                .flatten()
                .find(|(k, _)| k.ends_with(".rollout"))
                .and_then(|(_, v)| serde_json::from_str::<serde_json::Value>(v.as_str()?).ok());
            restores || record.is_some_and(|r| r["state"] == "RollingBack")
        })
        .map(crate::harness::timestamp)
}

/// Issue 10, item 6: the canary's new pods crash-loop (from 10 s after the patch; the
/// kubelet backs off from the second exit). The first `CrashLoopBackOff` ends the wait: the
/// canary fails with that reason, naming the pod and container, and the rollback starts,
/// without waiting for `health.timeout` (5m) or the progress deadline.
#[tokio::test(start_paused = true)]
async fn a_canary_whose_pods_crash_loop_fails_at_the_first_crash_loop() {
    let outcome = shop()
        .scenario("faults: {unhealthyAfterPatch: [Deployment/shop/frontend]}")
        .workload_policy(
            "nginx",
            "spec: {targets: {workloads: {kinds: [Deployment], selector: {matchLabels: {app: frontend}}}}}",
        )
        .run()
        .await;
    let replay = outcome.check(&[Rules::new("nginx", 1)]);
    assert_eq!(outcome.phase("nginx"), "RolledBack");
    assert_eq!(replay.rolled_back, ["Deployment/shop/frontend"]);
    let rollout = outcome.rollout("nginx");
    let failure = &rollout["status"]["failures"][0];
    assert_eq!(failure["reason"], "CrashLoopBackOff", "{failure}");
    let message = failure["message"].as_str().unwrap_or("");
    assert!(
        message.contains("shop/frontend-") && message.contains("container frontend"),
        "the message names the pod and the container: {message}"
    );
    let patched = outcome.locks()[0].at;
    let (signal, reason) = first_fatal_signal(&outcome, "frontend-").expect("a crash loop");
    assert_eq!(reason, "CrashLoopBackOff");
    let rollback = first_rollback_write(
        &outcome,
        "shop",
        "frontend",
        "docker.io/library/nginx:1.27.3",
    )
    .expect("a rollback write");
    let reaction = rollback.duration_since(signal);
    eprintln!(
        "crash loop: patched at {patched}, first CrashLoopBackOff {:#} later, first rollback \
         write {reaction:#} after it",
        signal.duration_since(patched)
    );
    assert!(
        reaction >= jiff::SignedDuration::ZERO && reaction < jiff::SignedDuration::from_secs(15),
        "from the first CrashLoopBackOff at {signal} to the first rollback write at {rollback}: \
         {reaction:#}"
    );
    assert_eq!(
        image(&outcome, "deployments", "frontend"),
        "docker.io/library/nginx:1.27.3"
    );
}

/// An image the registry does not have: the first `ErrImagePull` fails the canary at once.
#[tokio::test(start_paused = true)]
async fn a_canary_whose_image_cannot_be_pulled_fails_at_once() {
    let outcome = shop()
        .scenario("faults: {unpullableImages: [docker.io/library/nginx:1.27.4]}")
        .workload_policy(
            "nginx",
            "spec: {targets: {workloads: {kinds: [Deployment], selector: {matchLabels: {app: frontend}}}}}",
        )
        .run()
        .await;
    outcome.check(&[Rules::new("nginx", 1)]);
    assert_eq!(outcome.phase("nginx"), "RolledBack");
    let rollout = outcome.rollout("nginx");
    let failure = &rollout["status"]["failures"][0];
    assert_eq!(failure["reason"], "ErrImagePull", "{failure}");
    let (signal, _) = first_fatal_signal(&outcome, "frontend-").expect("a pull error");
    let rollback = first_rollback_write(
        &outcome,
        "shop",
        "frontend",
        "docker.io/library/nginx:1.27.3",
    )
    .expect("a rollback write");
    let reaction = rollback.duration_since(signal);
    eprintln!("image pull: first ErrImagePull to the first rollback write: {reaction:#}");
    assert!(
        reaction < jiff::SignedDuration::from_secs(15),
        "{signal} → {rollback}"
    );
}

/// The same in the built-in scenario (`patchpilot sandbox` without a file): the canary of
/// `shop-nginx`, `Deployment/shop/frontend`, crash-loops once patched. Issue 10 saw its
/// first rollback write 4 min 55 s after the patch, when `health.timeout` ran out.
#[tokio::test(start_paused = true)]
async fn the_built_in_scenarios_crash_looping_canary_is_rolled_back_at_once() {
    let outcome =
        crate::harness::run_scenario_with(patchpilot::sandbox::scenario::BUILT_IN, &[]).await;
    outcome.check(&[
        Rules::new("workers-os", 1).per_pool("pool"),
        Rules::new("shop-nginx", 1),
    ]);
    assert_eq!(outcome.phase("shop-nginx"), "RolledBack");
    let rollout = outcome.rollout("shop-nginx");
    assert_eq!(
        rollout["status"]["failures"][0]["reason"],
        "CrashLoopBackOff"
    );
    let patched = outcome
        .locks()
        .iter()
        .find(|l| l.target == "Deployment/shop/frontend")
        .map(|l| l.at)
        .unwrap();
    let (signal, _) = first_fatal_signal(&outcome, "frontend-").expect("a crash loop");
    let rollback = first_rollback_write(
        &outcome,
        "shop",
        "frontend",
        "docker.io/library/nginx:1.27.3",
    )
    .expect("a rollback write");
    eprintln!(
        "built-in scenario: patched at {patched}; first CrashLoopBackOff {:#} later; first \
         rollback write {:#} after the signal, {:#} after the patch",
        signal.duration_since(patched),
        rollback.duration_since(signal),
        rollback.duration_since(patched),
    );
    assert!(rollback.duration_since(signal) < jiff::SignedDuration::from_secs(15));
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
