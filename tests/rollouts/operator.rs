//! The operator as a deployment runs it: two replicas electing a leader on a Lease, a new
//! leader carrying on, and the chart's RBAC rules allowing exactly the calls it makes.

use std::collections::BTreeSet;

use jiff::{SignedDuration, Timestamp};
use patchpilot_testkit::chart::{chart_file, static_part};
use serde_json::Value;

use crate::{
    case::Case,
    drain::blocked,
    harness::Act,
    harness::{Outcome, Rules, timestamp},
    resilience::{eventful, rolled_back_cleanly},
    windows::DAILY,
    workloads::shop,
};

/// Two replicas, both restarted twice during the rollout.
fn two_replicas() -> Case {
    eventful().scenario(
        "
operator: {replicas: 2}
faults: {operatorRestarts: {at: ['2026-11-28T00:03:00Z', '2026-11-28T00:21:00Z']}}
",
    )
}

/// The Lease writes that succeeded, in order: (when, holder, renewTime).
fn lease_writes(outcome: &Outcome) -> Vec<(Timestamp, String, Timestamp)> {
    outcome
        .operator_requests()
        .filter(|e| {
            e["objectRef"]["resource"] == "leases"
                && matches!(e["verb"].as_str(), Some("create" | "update"))
                && matches!(e["responseStatus"]["code"].as_u64(), Some(200 | 201))
        })
        .map(|e| {
            let spec = &e["requestObject"]["spec"];
            (
                timestamp(e),
                spec["holderIdentity"].as_str().unwrap().to_owned(),
                spec["renewTime"].as_str().unwrap().parse().unwrap(),
            )
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn one_leader_at_a_time_and_a_new_leader_carries_on() {
    let outcome = two_replicas().run().await;
    rolled_back_cleanly(&outcome, "two replicas");
    let writes = lease_writes(&outcome);
    let mut holders: Vec<&str> = writes.iter().map(|(_, h, _)| h.as_str()).collect();
    holders.dedup();
    // One leader per generation of replicas: the two restarts make three.
    assert_eq!(holders.len(), 3, "{holders:?}");
    assert!(
        holders
            .iter()
            .zip(1..)
            .all(|(h, g)| h.starts_with(&format!("patchpilot-sandbox-{g}-"))),
        "{holders:?}"
    );
    // A new holder takes the Lease only once the last renewal of the old one has expired
    // (15 s), so two leaders never act at once.
    for pair in writes.windows(2) {
        let ((_, old, renewed), (at, new, _)) = (&pair[0], &pair[1]);
        if old != new {
            assert!(
                *at >= *renewed + SignedDuration::from_secs(15),
                "{new} took the lease at {at}; {old} renewed it at {renewed}"
            );
        }
    }
    // Only the leader acts: between two Lease writes of a generation, every other write
    // is after that generation's first Lease write.
    let first_lease = writes.first().map(|(at, _, _)| *at).unwrap();
    let early: Vec<&str> = outcome
        .operator_writes()
        .filter(|e| e["objectRef"]["resource"] != "leases" && timestamp(e) < first_lease)
        .filter_map(|e| e["requestURI"].as_str())
        .collect();
    assert!(early.is_empty(), "writes before any leader: {early:?}");
}

/// One rule of a Role or ClusterRole.
struct Rule {
    groups: Vec<String>,
    resources: Vec<String>,
    verbs: Vec<String>,
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

/// The rules of the chart's ClusterRole and of its leader-election Role.
fn chart_rules() -> Vec<Rule> {
    let cluster = static_part(&chart_file("templates/clusterrole.yaml"));
    let leader = chart_file("templates/leader-election-role.yaml");
    let role = static_part(leader.split("\n---\n").next().unwrap());
    let secrets = chart_file("templates/notifier-secrets-role.yaml");
    let secrets = static_part(secrets.split("\n---\n").next().unwrap());
    [cluster, role, secrets]
        .iter()
        .flat_map(|r| r["rules"].as_array().unwrap().clone())
        .map(|r| Rule {
            groups: strings(&r["apiGroups"]),
            resources: strings(&r["resources"]),
            verbs: strings(&r["verbs"]),
        })
        .collect()
}

/// A call as RBAC sees it: (API group, resource or resource/subresource, verb).
type Call = (String, String, String);

fn calls(outcome: &Outcome) -> BTreeSet<Call> {
    outcome
        .operator_requests()
        .filter_map(|e| {
            let object = &e["objectRef"];
            let resource = object["resource"].as_str()?;
            let resource = match object["subresource"].as_str() {
                Some(sub) if !sub.is_empty() => format!("{resource}/{sub}"),
                _ => resource.to_owned(),
            };
            let group = object["apiGroup"].as_str().unwrap_or("").to_owned();
            Some((group, resource, e["verb"].as_str()?.to_owned()))
        })
        .collect()
}

/// Scenarios that between them make every kind of call the operator makes: leader
/// election and restarts, a node rollout rolled back, a forced drain without streaming
/// lists, workloads of every kind with a Job health check, a maintenance window closing
/// twice, a superseded rollout deleted beyond the history, and a policy deleted mid-flight
/// over an orphaned lock.
async fn every_kind_of_call() -> BTreeSet<Call> {
    let job_check = "
spec:
  health:
    checks:
      - job: {template: {spec: {containers: [{name: check, image: docker.io/library/busybox:1.36, command: [sh, -c, 'exit 0']}]}}}
";
    let cases = [
        two_replicas(),
        blocked()
            .node_policy("os", "spec: {drain: {force: true}}")
            .scenario("operator: {streamingLists: false}"),
        shop().workload_policy("nginx", job_check),
        // A window open two minutes in every four: it closes again within six minutes, and
        // the second WindowClosed event is a patch of the first one's series.
        Case::new()
            .object(
                "
apiVersion: patchpilot.dev/v1alpha1
kind: MaintenanceWindow
metadata: {name: flicker}
spec:
  recurrences: [{cron: '*/4 * * * *', duration: 2m}]
",
            )
            .node_policy("os", "spec: {maintenanceWindow: flicker}"),
        // Across two nights: the window closes twice, a day apart (two events).
        Case::new()
            .object(DAILY)
            .scenario("timings: {updater: 6m}")
            .node_policy("os", "spec: {maintenanceWindow: nightly, historyLimit: 0}")
            .scenario(
                "
steps:
  - name: a newer patch
    after: 20m
    when: {apiVersion: patchpilot.dev/v1alpha1, kind: PatchPolicy}
    patch: {spec: {patch: {version: v3}}}
",
            ),
    ];
    // A lock its rollout took (with its record) and left behind when it went.
    let record = serde_json::json!({"rollout": "os-gone", "attempt": 0, "state": "Applying",
        "started": "2026-11-27T10:00:00Z", "since": "2026-11-27T10:00:00Z"});
    let orphan = serde_json::json!({"metadata": {"annotations": {
        "patchpilot.dev/lock": "os-gone",
        "patch.patchpilot.dev/os.rollout": record.to_string(),
    }}});
    // A notifier: its Secret read, its status written.
    let cases = cases
        .into_iter()
        .chain([crate::notifications::case("{mode: Automatic}")]);
    let cases = cases.chain([Case::new()
        .node_policy("os", "")
        .at(
            "0s",
            Act::Patch("v1", "nodes", None, "general-4".into(), orphan),
        )
        .at(
            "1m",
            Act::Delete(
                "patchpilot.dev/v1alpha1",
                "patchpolicies",
                None,
                "os".into(),
            ),
        )
        .scenario("end: {after: 1h}")]);
    let mut all = BTreeSet::new();
    for case in cases {
        let outcome = case.run().await;
        all.extend(calls(&outcome));
    }
    all
}

#[tokio::test(start_paused = true)]
async fn the_chart_allows_every_call_the_operator_makes_and_nothing_more() {
    let made = every_kind_of_call().await;
    let rules = chart_rules();
    let allowed = |(group, resource, verb): &Call| {
        rules.iter().any(|r| {
            r.groups.contains(group) && r.resources.contains(resource) && r.verbs.contains(verb)
        })
    };
    let refused: Vec<&Call> = made.iter().filter(|c| !allowed(c)).collect();
    assert!(
        refused.is_empty(),
        "calls the chart does not allow: {refused:?}"
    );
    let granted: BTreeSet<Call> = rules
        .iter()
        .flat_map(|r| {
            r.groups.iter().flat_map(move |g| {
                r.resources.iter().flat_map(move |res| {
                    r.verbs
                        .iter()
                        .map(move |v| (g.clone(), res.clone(), v.clone()))
                })
            })
        })
        .collect();
    let unused: Vec<&Call> = granted.difference(&made).collect();
    assert!(
        unused.is_empty(),
        "the chart grants calls the operator never makes: {unused:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_job_health_check_runs_once_per_target_and_gates_it() {
    let outcome = shop()
        .workload_policy(
            "nginx",
            "
spec:
  targets: {workloads: {kinds: [Deployment]}}
  health:
    checks:
      - job: {template: {spec: {containers: [{name: check, image: docker.io/library/busybox:1.36, command: [sh, -c, 'exit 0']}]}}}
",
        )
        .run()
        .await;
    outcome.check(&[Rules::new("nginx", 1)]);
    assert_eq!(outcome.phase("nginx"), "Succeeded");
    let checks: Vec<Value> = outcome
        .objects("batch", "v1", "jobs")
        .into_iter()
        .filter(|j| crate::harness::job_env(j, "PATCHPILOT_TARGET").is_some())
        .filter(|j| j["spec"]["template"]["spec"]["containers"][0]["name"] == "check")
        .collect();
    let mut targets: Vec<&str> = checks
        .iter()
        .map(|j| crate::harness::job_env(j, "PATCHPILOT_TARGET").unwrap())
        .collect();
    targets.sort_unstable();
    // The redis-only Deployment shop/cache is not a target of the nginx patch: no check.
    assert_eq!(targets, ["Deployment/shop/frontend", "Deployment/shop/web"]);
}

#[tokio::test(start_paused = true)]
async fn without_streaming_lists_on_the_server_the_pod_watches_list_instead() {
    let outcome = Case::new()
        .scenario("apiServer: {watchList: false}")
        .node_policy("os", "")
        .run()
        .await;
    outcome.check(&[Rules::new("os", 1)]);
    assert_eq!(outcome.phase("os"), "Succeeded");
    let pods: Vec<(&str, u64)> = outcome
        .operator_requests()
        .filter(|e| e["objectRef"]["resource"] == "pods" && e["objectRef"]["subresource"].is_null())
        .map(|e| {
            (
                e["verb"].as_str().unwrap(),
                e["responseStatus"]["code"].as_u64().unwrap(),
            )
        })
        .collect();
    // One refused streaming watch, then lists and watches.
    let refused = pods.iter().filter(|(_, code)| *code == 422).count();
    assert_eq!(refused, 1, "{pods:?}");
    assert!(
        pods.iter()
            .any(|(verb, code)| *verb == "list" && *code == 200),
        "{pods:?}"
    );
}
