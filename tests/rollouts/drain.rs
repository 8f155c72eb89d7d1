//! SPEC 3.3: drain through the Eviction API; a PodDisruptionBudget refusal is retried with
//! backoff until `drain.timeout`, then the target fails, unless `force`.

use jiff::{SignedDuration, Timestamp};
use serde_json::json;

use crate::{case::Case, harness::Rules};

/// One replica pinned to `general-1` behind a budget that never lets it go.
pub(crate) fn blocked() -> Case {
    Case::new().scenario(
        "
workloads:
  - namespace: shop
    namespaceLabels: {team: shop}
    name: ledger
    replicas: 1
    image: docker.io/library/postgres:17
    pdb: {minAvailable: 1}
    nodeSelector: {kubernetes.io/hostname: general-1}
",
    )
}

fn evictions(outcome: &crate::harness::Outcome) -> Vec<u64> {
    outcome
        .operator_requests()
        .filter(|e| {
            e["objectRef"]["subresource"] == "eviction"
                && e["objectRef"]["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("ledger"))
        })
        .map(|e| e["responseStatus"]["code"].as_u64().unwrap())
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_drain_a_budget_blocks_times_out_and_fails_the_target() {
    let outcome = blocked().node_policy("os", "").run().await;
    let replay = outcome.check(&[Rules::new("os", 1)]);
    // The canary failed, so the rollout rolled back what it changed.
    assert_eq!(outcome.phase("os"), "RolledBack");
    assert_eq!(
        replay.applied.keys().collect::<Vec<_>>(),
        ["Node/general-1"]
    );
    let rollout = outcome.rollout("os");
    let failure = &rollout["status"]["failures"][0];
    assert_eq!(
        failure["target"], "Node/general-1",
        "{:#}",
        rollout["status"]
    );
    let message = failure["message"].as_str().unwrap_or("");
    assert!(
        message.contains("ledger"),
        "the failure names the pod that blocked: {failure}"
    );
    assert!(
        message.contains("PodDisruptionBudget shop/ledger"),
        "the failure names the budget: {failure}"
    );
    // The rollout's own message names the cause, not only the count rolled back.
    let said = rollout["status"]["message"].as_str().unwrap_or("");
    assert!(
        said.starts_with("canary failed: Node/general-1 DrainTimeout: pods still on the node after 10m: 1 pod(s): shop/ledger-")
            && said.contains("(PodDisruptionBudget shop/ledger-pdb allows 0 disruptions)"),
        "{said}"
    );
    // While it waited, the target in progress said on what.
    let waiting: Vec<String> = outcome
        .operator_writes()
        .filter(|e| e["objectRef"]["subresource"] == "status")
        .filter_map(|e| e["requestObject"]["status"]["inProgress"][0]["message"].as_str())
        .filter(|m| m.starts_with("waiting: "))
        .map(str::to_owned)
        .collect();
    assert!(
        waiting.first().is_some_and(|m| m.starts_with(
            "waiting: PodDisruptionBudget shop/ledger-pdb allows 0 disruptions; 1 pod(s): shop/ledger-"
        )),
        "{waiting:?}"
    );
    // The node's own events say it is cordoned, draining, and on what the drain waits.
    let story = crate::events::node_story(
        &outcome,
        "general-1",
        rollout["metadata"]["name"].as_str().unwrap(),
    );
    let reasons: Vec<&str> = story.iter().map(|(r, _)| r.as_str()).collect();
    assert_eq!(
        reasons[..3],
        ["Locked", "Draining", "DrainWaiting"],
        "{story:#?}"
    );
    assert!(
        story[2]
            .1
            .contains("waiting: PodDisruptionBudget shop/ledger-pdb allows 0 disruptions"),
        "{story:#?}"
    );
    assert_eq!(reasons.last(), Some(&"TargetFailed"), "{story:#?}");
    // The budget's status says it allows no disruption: once the API server has refused,
    // the operator does not ask again what would be refused, over the whole 10 minutes.
    let codes = evictions(&outcome);
    assert!(codes.iter().all(|c| *c == 429), "{codes:?}");
    assert!(codes.len() <= 2, "{} evictions: {codes:?}", codes.len());
    // The pod stayed.
    assert!(
        outcome
            .operator_writes()
            .all(|e| !(e["verb"] == "delete" && e["objectRef"]["resource"] == "pods"))
    );
}

#[tokio::test(start_paused = true)]
async fn with_force_the_drain_deletes_what_the_budget_protects() {
    let outcome = blocked()
        .node_policy("os", "spec: {drain: {force: true}}")
        .run()
        .await;
    let replay = outcome.check(&[Rules::new("os", 1)]);
    assert_eq!(outcome.phase("os"), "Succeeded");
    assert_eq!(replay.applied.len(), 4);
    let deleted: Vec<&str> = outcome
        .operator_writes()
        .filter(|e| e["verb"] == "delete" && e["objectRef"]["resource"] == "pods")
        .filter_map(|e| e["objectRef"]["name"].as_str())
        .collect();
    assert_eq!(deleted.len(), 1, "{deleted:?}");
    assert!(deleted[0].starts_with("ledger"));
    // It was deleted only after the timeout: the drain began (the node was locked and
    // cordoned) ten minutes before.
    let locked = outcome
        .operator_writes()
        .find(|e| e["verb"] == "patch" && e["objectRef"]["name"] == "general-1")
        .map(crate::harness::timestamp)
        .unwrap();
    let delete = outcome
        .operator_writes()
        .find(|e| e["verb"] == "delete" && e["objectRef"]["resource"] == "pods")
        .map(crate::harness::timestamp)
        .unwrap();
    assert!(
        delete.duration_since(locked) >= jiff::SignedDuration::from_mins(10),
        "deleted at {delete}, locked at {locked}"
    );
}

/// A budget that allows one disruption at a time: the drain asks for each eviction when the
/// budget allows it (its status changes trigger the rollout), so the API server refuses
/// none, and no eviction waits for a back-off once the budget allows it.
#[tokio::test(start_paused = true)]
async fn a_drain_asks_only_what_the_budget_allows() {
    let outcome = Case::new()
        .scenario(
            "
timings: {podStart: 30s}
workloads:
  - {namespace: shop, name: web, replicas: 8, image: docker.io/library/nginx:1.27.3, pdb: {maxUnavailable: 1}}
",
        )
        .node_policy("os", "")
        .run()
        .await;
    outcome.check(&[Rules::new("os", 1)]);
    assert_eq!(outcome.phase("os"), "Succeeded");
    let evictions: Vec<(jiff::Timestamp, u64)> = outcome
        .operator_requests()
        .filter(|e| e["objectRef"]["subresource"] == "eviction")
        .map(|e| {
            (
                crate::harness::timestamp(e),
                e["responseStatus"]["code"].as_u64().unwrap(),
            )
        })
        .collect();
    assert!(evictions.len() >= 8, "{evictions:?}");
    assert!(
        evictions.iter().all(|(_, code)| *code == 201),
        "refused evictions: {evictions:?}"
    );
    // Each eviction after the first of a node's waits for the replacement of the one before
    // to start (30 s), not for a back-off (5 s, then 15 s, then 35 s from the first try).
    for pair in evictions.windows(2) {
        let gap = pair[1].0.duration_since(pair[0].0);
        assert!(
            gap < jiff::SignedDuration::from_secs(31) || gap > jiff::SignedDuration::from_mins(2),
            "an eviction waited {gap:#} after the one before: {evictions:?}"
        );
    }
}

/// A pod no controller manages is not evicted without `force`: the drain waits, says why in
/// the status, and fails the target at the timeout, naming the pod and the reason.
#[tokio::test(start_paused = true)]
async fn a_bare_pod_holds_the_drain_and_the_status_says_why() {
    let outcome = Case::new()
        .object(
            "
apiVersion: v1
kind: Pod
metadata: {name: scratch, namespace: default}
spec:
  nodeName: general-1
  containers: [{name: sh, image: busybox}]
",
        )
        .node_policy("os", "")
        .run()
        .await;
    outcome.check(&[Rules::new("os", 1)]);
    let rollout = outcome.rollout("os");
    let failure = &rollout["status"]["failures"][0];
    let message = failure["message"].as_str().unwrap_or("");
    assert!(
        message.contains("default/scratch (not managed by a controller (set drain.force))"),
        "{failure}"
    );
    assert_eq!(
        outcome
            .operator_requests()
            .filter(|e| e["objectRef"]["subresource"] == "eviction")
            .count(),
        0,
        "a bare pod is never asked to go"
    );
}

/// Issue 10, item 5: twenty pods on `general-1`, from ten Deployments of two replicas behind
/// budgets of `maxUnavailable: 1` (both pods of each budget on the node). Three spare nodes
/// stay tainted for the first minute, so that every pod starts on `general-1`; the rollout is
/// approved at two minutes. Responses take 20 ms to reach their clients, as over a real
/// cluster's network, while watch events do not wait: the budget version that counts an
/// eviction can come before the eviction's answer.
fn packed() -> Case {
    Case::new().scenario(
        "
apiServer: {responseLatency: 20ms}
nodes:
  - {pool: general, count: 1, zones: [zone-a]}
  - {pool: spare, count: 3, zones: [zone-a, zone-b], taints: [{key: spare, value: 'true', effect: NoSchedule}]}
workloads:
  - {namespace: shop, name: web, count: 10, replicas: 2, image: docker.io/library/nginx:1.27.3, pdb: {maxUnavailable: 1}}
steps:
  - name: spare nodes
    after: 1m
    when: {apiVersion: v1, kind: Node, labels: {pool: spare}}
    patch: {spec: {taints: null}}
  - name: approve
    after: 2m
    when: {apiVersion: patchpilot.dev/v1alpha1, kind: PatchRollout, field: status.phase, equals: AwaitingApproval}
    patch: {spec: {approved: true}}
",
    )
}

/// What `kubectl drain general-1` does (k8s.io/kubectl/pkg/drain), on the same cluster at
/// the same moment (two minutes in, spares untainted at one): cordon, list the node's pods,
/// check that the Eviction API is served; then for every pod at once, ask for its eviction
/// until granted, sleeping 5 s after each `429`, then poll every second until the pod is
/// gone. Returns how long it took from the cordon to the last eviction and to the node
/// drained, and how many evictions it asked for.
async fn kubectl_drain(case: &Case) -> (SignedDuration, SignedDuration, usize) {
    use k8s_openapi::api::core::v1::{Node, Pod};
    use kube::api::{Api, EvictParams, ListParams, Patch, PatchParams};
    use patchpilot::sandbox::{Options, Sandbox, run::ADMIN_USER, scenario::Scenario};

    let scenario = Scenario::parse(std::path::Path::new("kubectl.yaml"), &case.yaml()).unwrap();
    let sandbox = Sandbox::new(
        scenario,
        Options {
            audit: None,
            speed: None,
            ..patchpilot::sandboxed::options()
        },
    )
    .unwrap();
    let cluster = tokio::spawn(sandbox.cluster().run());
    let clock = sandbox.store().clock().clone();
    let client = sandbox.client(ADMIN_USER);
    let nodes: Api<Node> = Api::all(client.clone());
    let merge = |body| Patch::Merge(body);
    let start: Timestamp = crate::case::START.parse().unwrap();
    tokio::time::sleep(clock.sleep_for(start + SignedDuration::from_mins(1))).await;
    for spare in ["spare-1", "spare-2", "spare-3"] {
        nodes
            .patch(
                spare,
                &PatchParams::default(),
                &merge(json!({"spec": {"taints": null}})),
            )
            .await
            .unwrap();
    }
    tokio::time::sleep(clock.sleep_for(start + SignedDuration::from_mins(2))).await;
    let cordoned = clock.now();
    nodes
        .patch(
            "general-1",
            &PatchParams::default(),
            &merge(json!({"spec": {"unschedulable": true}})),
        )
        .await
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "shop");
    let on_node = pods
        .list(&ListParams::default().fields("spec.nodeName=general-1"))
        .await
        .unwrap()
        .items;
    assert_eq!(on_node.len(), 20, "every pod starts on general-1");
    // `CheckEvictionSupport`: the API groups, then the core group's resources.
    client.list_api_groups().await.unwrap();
    client.list_core_api_resources("v1").await.unwrap();
    let asked = std::sync::atomic::AtomicUsize::new(0);
    let drains = on_node.iter().map(|pod| {
        let (pods, clock, asked) = (pods.clone(), clock.clone(), &asked);
        async move {
            let name = pod.metadata.name.clone().unwrap();
            loop {
                asked.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                match pods.evict(&name, &EvictParams::default()).await {
                    Ok(_) => break,
                    Err(kube::Error::Api(s)) if s.code == 429 => {
                        tokio::time::sleep(std::time::Duration::from_secs(5)).await;
                    }
                    Err(e) => panic!("evict {name}: {e}"),
                }
            }
            let evicted = clock.now();
            while pods
                .get_opt(&name)
                .await
                .unwrap()
                .is_some_and(|p| p.metadata.uid == pod.metadata.uid)
            {
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
            evicted
        }
    });
    let evicted = futures::future::join_all(drains).await;
    let drained = clock.now();
    cluster.abort();
    let last = evicted.into_iter().max().unwrap();
    (
        last.duration_since(cordoned),
        drained.duration_since(cordoned),
        asked.into_inner(),
    )
}

/// The drain is never slower than `kubectl drain` on the same cluster: each eviction is
/// asked for as soon as its budget allows it, whichever comes first of the eviction's
/// response and the budget version that counts it, and none is refused.
#[tokio::test(start_paused = true)]
async fn a_drain_of_pods_two_a_budget_is_not_slower_than_kubectl_drain() {
    let case = packed().node_policy(
        "os",
        "spec: {targets: {nodes: {selector: {matchLabels: {pool: general}}}}, approval: {mode: Manual}}",
    );
    let outcome = case.run().await;
    outcome.check(&[Rules::new("os", 1)]);
    assert_eq!(outcome.phase("os"), "Succeeded");
    let locked = outcome
        .operator_writes()
        .find(|e| e["verb"] == "patch" && e["objectRef"]["name"] == "general-1")
        .map(crate::harness::timestamp)
        .unwrap();
    let evictions: Vec<(Timestamp, u64)> = outcome
        .operator_requests()
        .filter(|e| e["objectRef"]["subresource"] == "eviction")
        .map(|e| {
            (
                crate::harness::timestamp(e),
                e["responseStatus"]["code"].as_u64().unwrap(),
            )
        })
        .collect();
    let job = outcome
        .operator_writes()
        .find(|e| e["verb"] == "create" && e["objectRef"]["resource"] == "jobs")
        .map(crate::harness::timestamp)
        .unwrap();
    let last = evictions.iter().map(|(at, _)| *at).max().unwrap();
    let (ours_last, ours_drained) = (last.duration_since(locked), job.duration_since(locked));
    let (kubectl_last, kubectl_drained, kubectl_asked) = kubectl_drain(&case).await;
    eprintln!(
        "drain of 20 pods, two a budget: ours {ours_drained:#} (last eviction {ours_last:#}, \
         {} evictions asked), kubectl drain's logic {kubectl_drained:#} (last eviction \
         {kubectl_last:#}, {kubectl_asked} asked)",
        evictions.len()
    );
    assert!(
        evictions.iter().all(|(_, code)| *code == 201) && evictions.len() == 20,
        "evictions: {evictions:?}"
    );
    assert!(
        ours_drained <= kubectl_drained,
        "our drain took {ours_drained:#} (last eviction {ours_last:#}), kubectl drain's logic \
         {kubectl_drained:#} (last eviction {kubectl_last:#}): {evictions:?}"
    );
}

/// Eight of ten nodes drained at once (`maxUnavailable: 8`; after a canary of one), about two
/// pods each, while every response takes half a second to reach the operator, as from a
/// busy API server: the drains go together. When each drain waited for the answers of the
/// one before, the real API server at 5,000 nodes held a reconcile (and the status) for
/// over a minute; here, no more than a node's pods and the next's were asked for within
/// a second.
#[tokio::test(start_paused = true)]
async fn the_drains_of_the_nodes_in_progress_go_together() {
    let outcome = Case::new()
        .scenario(
            "
apiServer: {responseLatency: 500ms}
nodes:
  - {pool: general, count: 10, zones: [zone-a, zone-b]}
workloads:
  - {namespace: shop, name: web, replicas: 20, image: docker.io/library/nginx:1.27.3}
steps:
  - name: approve once every pod runs
    after: 1m
    when: {apiVersion: patchpilot.dev/v1alpha1, kind: PatchRollout, field: status.phase, equals: AwaitingApproval}
    patch: {spec: {approved: true}}
",
        )
        .node_policy(
            "os",
            "spec: {strategy: {canary: null, stages: null, maxUnavailable: 8}, approval: {mode: Manual}}",
        )
        .run()
        .await;
    outcome.check(&[Rules::new("os", 8)]);
    assert_eq!(outcome.phase("os"), "Succeeded");
    // Where each pod ran, from the pods the simulated cluster wrote.
    let nodes: std::collections::BTreeMap<String, String> = outcome
        .pod_history
        .iter()
        .filter_map(|(_, pod)| {
            Some((
                pod["metadata"]["name"].as_str()?.to_owned(),
                pod["spec"]["nodeName"].as_str()?.to_owned(),
            ))
        })
        .collect();
    let mut asked: Vec<(Timestamp, &str)> = outcome
        .operator_requests()
        .filter(|e| {
            e["objectRef"]["subresource"] == "eviction" && e["responseStatus"]["code"] == 201
        })
        .map(|e| {
            let pod = e["objectRef"]["name"].as_str().unwrap_or_default();
            let node = nodes.get(pod).map_or("?", String::as_str);
            (crate::harness::timestamp(e), node)
        })
        .collect();
    asked.sort();
    // The most nodes whose pods were asked to go within one second: the wave after the
    // canary drains eight.
    let together = (0..asked.len())
        .map(|i| {
            asked[i..]
                .iter()
                .take_while(|(t, _)| t.duration_since(asked[i].0) < SignedDuration::from_secs(1))
                .map(|(_, node)| *node)
                .collect::<std::collections::BTreeSet<_>>()
                .len()
        })
        .max()
        .unwrap_or(0);
    assert!(
        together >= 6,
        "at most {together} nodes drained within a second: {asked:?}"
    );
}
