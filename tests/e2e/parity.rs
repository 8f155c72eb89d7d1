//! The same rollouts on the sandbox and on the real control plane: the built-in scenario's
//! policies, and those of `tests/fixtures/parity/` (canaries that fail and are rolled back),
//! their soaks scaled from minutes to seconds, run on both, and compared from the two audit
//! logs (`patchpilot_testkit::trace`): on each target, the operator's requests must come in
//! the same order, and the rollouts must end the same way.
//!
//! What is adapted, the same on both unless said:
//!
//! - the nodes are those of the real cluster (`tests/cluster/up` names and labels them as the
//!   sandbox's generator does), and the sandbox's timings are kwok's stages';
//! - the maintenance window goes: it is real time on one side, virtual on the other, and
//!   the windows have scenario tests of their own;
//! - soaks go from minutes to seconds; timeouts to one minute, since a timeout that fires on
//!   one side only would be another rollout, not a difference of the API;
//! - the updater's container passes the restricted Pod Security Standard of the chart's
//!   namespace, and asks both simulated kubelets for its reboot;
//! - on the real cluster, the frontend's pods take the patched image as one they never
//!   become Ready with (kwok's `never-ready-image`), as the sandbox's `unhealthyAfterPatch`
//!   fault does.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
    sync::{Arc, Mutex},
};

use k8s_openapi::api::{
    apps::v1::{DaemonSet, Deployment, StatefulSet},
    core::v1::Node,
};
use kube::{
    Api, ResourceExt,
    api::{ListParams, Patch, PatchParams},
};
use patchpilot::{
    api::{PatchRollout, keys},
    engine::rollout::Phase,
    sandbox::{
        Sandbox,
        apiserver::{Audit as AuditSink, MemoryLog},
        run::{RunOptions, run},
        scenario::{BUILT_IN, Scenario},
        store::{Filter, Store, WatchFrom, WatchItem},
    },
};
use patchpilot_testkit::{
    audit::{Audit, NoObjects, Rules},
    trace::{self, Traces},
};
use serde_json::{Value, json};

use crate::support::{Cluster, OPERATOR_USER, mins, wait_until};

/// The second case's scenario.
const HALTED: &str = "tests/fixtures/parity/halted-canaries.yaml";
/// The third case's scenario.
const FAILURE_BUDGET: &str = "tests/fixtures/parity/failure-budget.yaml";

/// The pod annotation kwok's stages read: pods running this image never become Ready.
const NEVER_READY: &str = "cluster.patchpilot.dev/never-ready-image";

/// A scenario, adapted to run alike on both.
struct Parity {
    /// The sandbox's scenario file.
    scenario: String,
    /// The policies, as both get them.
    policies: Vec<Value>,
    /// The generated objects and the file's own, as the real cluster gets them.
    objects: Vec<Value>,
}

/// `10m` becomes `10s`: a duration scaled from minutes to seconds.
fn scaled(duration: &Value) -> Value {
    let text = duration.as_str().unwrap_or_default();
    let seconds = text
        .parse::<jiff::SignedDuration>()
        .map_or(1, |d| (d.as_secs() / 60).max(1));
    json!(format!("{seconds}s"))
}

/// Scales every `soak` and `after` of `value`, and sets every timeout to a minute.
fn scale_durations(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, field) in map.iter_mut() {
                match key.as_str() {
                    "soak" | "after" if field.is_string() => *field = scaled(field),
                    "timeout" | "rebootTimeout" if field.is_string() => *field = json!("1m"),
                    _ => scale_durations(field),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(scale_durations),
        _ => {}
    }
}

/// An updater the chart's restricted namespace admits, rebooting its node in both clusters
/// if asked, with the environment of the scenario's own (where kwok's stages read E2E_FAIL).
fn updater_template(reboot: bool, env: &Value) -> Value {
    let annotations = if reboot {
        json!({"sandbox.patchpilot.dev/reboot": "true", "cluster.patchpilot.dev/reboot": "true"})
    } else {
        json!({})
    };
    json!({
        "metadata": {"annotations": annotations},
        "spec": {
            "securityContext": {"runAsNonRoot": true, "runAsUser": 65534, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "upgrade",
                "image": "busybox:1.36",
                "command": ["sh", "-c", "echo $PATCHPILOT_ACTION $PATCHPILOT_VERSION on $PATCHPILOT_NODE"],
                "env": if env.is_array() { env.clone() } else { json!([]) },
                "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}},
            }],
        },
    })
}

impl Parity {
    /// The scenario `text` with `pools` (pool to node count) as its nodes.
    fn new(text: &str, pools: &BTreeMap<String, usize>) -> Parity {
        let documents: Vec<Value> = serde_yaml_ng::Deserializer::from_str(text)
            .map(|d| serde::Deserialize::deserialize(d).expect("the scenario parses"))
            .collect();
        let mut scenario = Value::Null;
        let mut policies = Vec::new();
        let mut own = Vec::new();
        for mut document in documents {
            match document["kind"].as_str() {
                Some("Scenario") => scenario = document,
                Some("MaintenanceWindow") => {}
                Some("PatchPolicy") => {
                    let spec = document["spec"].as_object_mut().expect("a spec");
                    spec.remove("maintenanceWindow");
                    if let Some(updater) = spec
                        .get_mut("patch")
                        .and_then(|p| p.get_mut("updater"))
                        .filter(|u| u.is_object())
                    {
                        let reboot = updater["expectReboot"] == true;
                        let env = updater["template"]["spec"]["containers"][0]["env"].clone();
                        updater["template"] = updater_template(reboot, &env);
                    }
                    scale_durations(&mut document["spec"]);
                    policies.push(document);
                }
                _ => own.push(document),
            }
        }
        let spec = &mut scenario["spec"];
        let groups = spec["nodes"].as_array_mut().expect("node groups");
        for group in groups.iter_mut() {
            let pool = group["pool"].as_str().unwrap_or_default();
            group["count"] = json!(pools.get(pool).copied().unwrap_or(0));
        }
        groups.retain(|g| g["count"] != 0);
        // kwok's stages: a pod Ready a second after it starts, an updater done two seconds
        // after it runs, a node back 4.5 s after its reboot began.
        spec["timings"] = json!({"podStart": "1s", "updater": "2s", "reboot": "5s"});
        if let Some(steps) = spec.get_mut("steps") {
            scale_durations(steps);
        }
        let scenario_text = std::iter::once(&scenario)
            .chain(&policies)
            .chain(&own)
            .map(|o| serde_json::to_string(o).expect("JSON"))
            .collect::<Vec<_>>()
            .join("\n---\n");
        let read = Scenario::parse(Path::new("parity.yaml"), &scenario_text)
            .unwrap_or_else(|e| panic!("the adapted scenario: {e}"));

        // What the sandbox's faults do, kwok's stages do from an annotation.
        let unhealthy: BTreeSet<String> = scenario["spec"]["faults"]["unhealthyAfterPatch"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t.as_str().map(str::to_owned))
            .collect();
        let patched_image = policies
            .iter()
            .find_map(|p| p["spec"]["patch"]["images"][0]["image"].as_str())
            .map(str::to_owned);
        let mut objects: Vec<Value> = read
            .generated()
            .into_iter()
            .filter(|o| o["kind"] != "Node")
            .collect();
        for object in &mut objects {
            let id = format!(
                "{}/{}/{}",
                object["kind"].as_str().unwrap_or(""),
                object["metadata"]["namespace"].as_str().unwrap_or(""),
                object["metadata"]["name"].as_str().unwrap_or("")
            );
            if let (true, Some(image)) = (unhealthy.contains(&id), &patched_image) {
                object["spec"]["template"]["metadata"]["annotations"][NEVER_READY] = json!(image);
            }
        }
        objects.extend(own);
        Parity {
            scenario: scenario_text,
            policies,
            objects,
        }
    }

    fn policy_names(&self) -> Vec<String> {
        self.policies
            .iter()
            .filter_map(|p| p["metadata"]["name"].as_str().map(str::to_owned))
            .collect()
    }
}

/// What one backend's run left: its audit log, where its pods were bound, and the end state.
struct Run {
    log: Vec<Value>,
    bindings: trace::Bindings,
    /// Each policy's newest rollout: phase and target counts.
    outcomes: BTreeMap<String, String>,
    /// Each node's version annotation of each policy.
    versions: BTreeMap<String, String>,
}

impl Run {
    fn traces(&self) -> Traces {
        Audit {
            log: &self.log,
            state: &NoObjects,
            operator: OPERATOR_USER,
        }
        .traces(&self.bindings)
    }
}

/// How a rollout ended, in a line both backends can be compared on.
fn outcome(rollout: &Value) -> String {
    let status = &rollout["status"];
    format!(
        "{} updated {} failed {} rolled back {}",
        status["phase"].as_str().unwrap_or("-"),
        status["targets"]["updated"],
        status["targets"]["failed"],
        status["targets"]["rolledBack"],
    )
}

/// The version annotations of `policies` on `nodes`.
fn versions(nodes: &[Value], policies: &[String]) -> BTreeMap<String, String> {
    let mut found = BTreeMap::new();
    for node in nodes {
        let name = node["metadata"]["name"].as_str().unwrap_or_default();
        for policy in policies {
            if let Some(version) = node["metadata"]["annotations"][keys::version(policy)].as_str() {
                found.insert(format!("{name} {policy}"), version.to_owned());
            }
        }
    }
    found
}

fn listed(store: &Store, group: &str, version: &str, plural: &str) -> Vec<Value> {
    let resource = store.resource(group, version, plural).expect("a resource");
    store
        .list(&resource, &Filter::default(), 0, None)
        .items
        .iter()
        .map(|o| o.to_value())
        .collect()
}

/// The scenario on the sandbox, on its virtual clock, to the end of its rollouts.
async fn on_sandbox(parity: &Parity) -> Run {
    let scenario = Scenario::parse(Path::new("parity.yaml"), &parity.scenario)
        .unwrap_or_else(|e| panic!("{e}"));
    let memory = MemoryLog::default();
    let options = patchpilot::sandbox::Options {
        audit: Some(AuditSink::in_memory(&memory)),
        speed: None,
        ..patchpilot::sandboxed::options()
    };
    let sandbox = Sandbox::new(scenario, options).expect("the sandbox starts");
    let store = sandbox.store().clone();
    // The sandbox's scheduler binds pods without a request: the bindings come from its pods.
    let bindings = Arc::new(Mutex::new(trace::Bindings::new()));
    let recorder = {
        let pods = store.resource("", "v1", "pods").expect("pods");
        let mut watch = store
            .watch(&pods, Filter::default(), WatchFrom::Current)
            .expect("a watch of pods");
        let (bindings, clock) = (bindings.clone(), store.clock().clone());
        tokio::spawn(async move {
            while let Some(item) = watch.rx.recv().await {
                if let WatchItem::Event(_, pod) = item
                    && let (Some(ns), Some(name), Some(node)) = (
                        pod["metadata"]["namespace"].as_str(),
                        pod["metadata"]["name"].as_str(),
                        pod["spec"]["nodeName"].as_str(),
                    )
                {
                    let mut bindings = bindings.lock().expect("bindings");
                    let history = bindings.entry(format!("{ns}/{name}")).or_default();
                    if history.last().is_none_or(|(_, last)| last != node) {
                        history.push((clock.now(), node.to_owned()));
                    }
                }
            }
        })
    };
    let options = RunOptions {
        serve: None,
        kubeconfig_out: None,
        report: None,
        operator: Some(patchpilot::sandboxed::operator()),
        verbose: false,
    };
    run(sandbox, options).await.expect("the sandbox runs");
    recorder.abort();
    let log = memory.events();
    let policies = parity.policy_names();
    let rollouts = listed(&store, "patchpilot.dev", "v1alpha1", "patchrollouts");
    let outcomes = policies
        .iter()
        .map(|p| {
            let newest = rollouts
                .iter()
                .filter(|r| r["spec"]["policy"] == p.as_str())
                .max_by_key(|r| {
                    r["metadata"]["creationTimestamp"]
                        .as_str()
                        .map(str::to_owned)
                });
            (p.clone(), newest.map_or("no rollout".into(), outcome))
        })
        .collect();
    let bindings = std::mem::take(&mut *bindings.lock().expect("bindings"));
    Run {
        log,
        bindings,
        outcomes,
        versions: versions(&listed(&store, "", "v1", "nodes"), &policies),
    }
}

/// The scenario on the real control plane, with the operator as its own process.
async fn on_real_cluster(cluster: &mut Cluster, parity: &Parity) -> Run {
    for namespace in parity.objects.iter().filter(|o| o["kind"] == "Namespace") {
        let labels: Vec<(String, String)> = namespace["metadata"]["labels"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
            .collect();
        let labels: Vec<(&str, &str)> = labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let name = namespace["metadata"]["name"].as_str().expect("a name");
        cluster.create_namespace(name, &labels).await;
    }
    let rest: Vec<String> = parity
        .objects
        .iter()
        .filter(|o| o["kind"] != "Namespace")
        .map(|o| serde_json::to_string(o).expect("JSON"))
        .collect();
    cluster.apply(&rest.join("\n---\n"));
    let namespaces: BTreeSet<String> = parity
        .objects
        .iter()
        .filter_map(|o| o["metadata"]["namespace"].as_str().map(str::to_owned))
        .collect();
    for namespace in &namespaces {
        let client = cluster.client.clone();
        wait_until(
            &format!("every workload of {namespace} Ready"),
            mins(3),
            || {
                let client = client.clone();
                async move {
                    let params = ListParams::default();
                    let deployments = Api::<Deployment>::namespaced(client.clone(), namespace)
                        .list(&params)
                        .await
                        .ok()?;
                    let sets = Api::<StatefulSet>::namespaced(client.clone(), namespace)
                        .list(&params)
                        .await
                        .ok()?;
                    let daemons = Api::<DaemonSet>::namespaced(client, namespace)
                        .list(&params)
                        .await
                        .ok()?;
                    let ready = deployments.items.iter().all(|d| {
                        let status = d.status.clone().unwrap_or_default();
                        status.ready_replicas == d.spec.as_ref().and_then(|s| s.replicas)
                    }) && sets.items.iter().all(|s| {
                        let status = s.status.clone().unwrap_or_default();
                        status.ready_replicas == s.spec.as_ref().and_then(|s| s.replicas)
                    }) && daemons.items.iter().all(|d| {
                        let status = d.status.clone().unwrap_or_default();
                        status.desired_number_scheduled > 0
                            && status.number_ready == status.desired_number_scheduled
                    });
                    ready.then_some(())
                }
            },
        )
        .await;
    }

    let names = parity.policy_names();
    for policy in &parity.policies {
        cluster
            .create_policy(&serde_json::to_string(policy).expect("JSON"))
            .await;
    }
    // The scenario's steps: a person approves each rollout that waits for approval.
    let rollouts: Api<PatchRollout> = Api::all(cluster.client.clone());
    let mut approved = BTreeSet::new();
    let mut outcomes = BTreeMap::new();
    let started = std::time::Instant::now();
    while outcomes.len() < names.len() {
        assert!(
            started.elapsed() < mins(10),
            "the rollouts did not finish in 10 minutes: {outcomes:?}"
        );
        for policy in &names {
            let Some(rollout) = cluster.newest_rollout(policy).await else {
                continue;
            };
            let status = rollout.status.clone().unwrap_or_default();
            if status.phase == Phase::AwaitingApproval && approved.insert(rollout.name_any()) {
                rollouts
                    .patch(
                        &rollout.name_any(),
                        &PatchParams::default(),
                        &Patch::Merge(json!({"spec": {"approved": true}})),
                    )
                    .await
                    .expect("approve");
            }
            if status.phase.is_finished() && status.in_progress.is_empty() {
                let value = serde_json::to_value(&rollout).expect("JSON");
                outcomes
                    .entry(policy.clone())
                    .or_insert_with(|| outcome(&value));
            }
        }
        tokio::time::sleep(crate::support::POLL).await;
    }
    let rules: Vec<Rules> = names
        .iter()
        .map(|p| Rules::new(p.clone(), 1).per_pool("pool"))
        .collect();
    let log = match cluster.finish(&rules).await {
        Some(_) => cluster.audit_log().unwrap_or_default(),
        None => Vec::new(),
    };
    let nodes = Api::<Node>::all(cluster.client.clone())
        .list(&ListParams::default())
        .await
        .expect("nodes");
    let nodes: Vec<Value> = nodes
        .items
        .iter()
        .map(|n| serde_json::to_value(n).expect("JSON"))
        .collect();
    // Bindings from the whole log: the chart's own pods were bound before this test began,
    // and the drains evict them too.
    let whole: Vec<Value> = crate::support::audit_log_path()
        .and_then(|path| std::fs::read_to_string(path).ok())
        .unwrap_or_default()
        .lines()
        .filter(|line| line.contains("\"binding\""))
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect();
    Run {
        bindings: trace::bindings(&whole),
        log,
        outcomes,
        versions: versions(&nodes, &names),
    }
}

/// The comparison, as a table a person reads: each target's steps on both, then the
/// figures per target and the rollouts' own requests.
fn report(sandbox: &Traces, real: &Traces) -> (String, Vec<String>) {
    let mut out = String::new();
    let mut differences = Vec::new();
    let targets: BTreeSet<&String> = sandbox.targets.keys().chain(real.targets.keys()).collect();
    for target in &targets {
        let (ours, theirs) = (sandbox.shape(target), real.shape(target));
        let verdict = if ours == theirs { "same" } else { "DIFFERENT" };
        out += &format!("{target}: {verdict}\n");
        for (side, traces) in [("sandbox", sandbox), ("real", real)] {
            let steps: Vec<String> = traces
                .targets
                .get(*target)
                .into_iter()
                .flatten()
                .map(ToString::to_string)
                .collect();
            out += &format!("  {side:>7}: {}\n", steps.join(" → "));
        }
        if ours != theirs {
            differences.push(format!("{target}: sandbox {ours:?}, real {theirs:?}"));
        }
    }
    out += "\n| Target | Writes (sandbox, real) | Pods removed | Single-object reads |\n| --- | --- | --- | --- |\n";
    for target in &targets {
        out += &format!(
            "| {target} | {}, {} | {}, {} | {}, {} |\n",
            sandbox.writes(target),
            real.writes(target),
            sandbox.pods_removed(target),
            real.pods_removed(target),
            sandbox.reads(target),
            real.reads(target),
        );
    }
    out += "\nThe rollouts' own requests (sandbox, real):\n";
    let requests: BTreeSet<&String> = sandbox
        .overhead
        .keys()
        .chain(real.overhead.keys())
        .collect();
    for request in requests {
        out += &format!(
            "  {request}: {}, {}\n",
            sandbox.overhead.get(request).unwrap_or(&0),
            real.overhead.get(request).unwrap_or(&0)
        );
    }
    (out, differences)
}

/// Runs the scenario `text` on both and compares them; the table goes to
/// `target/tmp/parity-<name>.txt`.
async fn compare(name: &str, text: &str) {
    let mut cluster = Cluster::start().await;
    cluster.label_worker_nodes().await;
    let mut pools = BTreeMap::new();
    for node in Api::<Node>::all(cluster.client.clone())
        .list(&ListParams::default())
        .await
        .expect("nodes")
        .items
    {
        if let Some(pool) = node.labels().get("pool") {
            *pools.entry(pool.clone()).or_insert(0) += 1;
        }
    }
    let parity = Parity::new(text, &pools);

    let sandbox = on_sandbox(&parity).await;
    let real = on_real_cluster(&mut cluster, &parity).await;
    if real.log.is_empty() {
        eprintln!("no audit log of the real API server: nothing to compare");
        return;
    }
    let (table, differences) = report(&sandbox.traces(), &real.traces());
    eprintln!("{table}");
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("parity-{name}.txt"));
    let _ = std::fs::write(&out, &table);
    eprintln!("(also in {})", out.display());

    assert_eq!(sandbox.outcomes, real.outcomes, "the rollouts ended alike");
    assert_eq!(
        sandbox.versions, real.versions,
        "the nodes carry the same versions"
    );
    assert!(
        differences.is_empty(),
        "the operator did not do the same on both:\n  {}",
        differences.join("\n  ")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a cluster: KUBECONFIG=... cargo test --test e2e -- --ignored"]
async fn the_built_in_scenario_rolls_out_alike_on_the_sandbox_and_the_real_api_server() {
    compare("built-in", BUILT_IN).await;
}

/// An updater that fails its apply, and a drain a budget never lets through: both canaries
/// fail and are rolled back alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a cluster: KUBECONFIG=... cargo test --test e2e -- --ignored"]
async fn halted_canaries_are_rolled_back_alike_on_the_sandbox_and_the_real_api_server() {
    let text = std::fs::read_to_string(patchpilot_testkit::repo::path(HALTED))
        .unwrap_or_else(|e| panic!("{HALTED}: {e}"));
    compare("halted-canaries", &text).await;
}

/// A target that fails past the canary, within the failure budget: the rollout goes on to
/// the end alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a cluster: KUBECONFIG=... cargo test --test e2e -- --ignored"]
async fn a_failure_within_the_budget_finishes_alike_on_the_sandbox_and_the_real_api_server() {
    let text = std::fs::read_to_string(patchpilot_testkit::repo::path(FAILURE_BUDGET))
        .unwrap_or_else(|e| panic!("{FAILURE_BUDGET}: {e}"));
    compare("failure-budget", &text).await;
}

#[test]
fn the_adapted_scenario_keeps_the_policies_and_scales_their_soaks() {
    let pools = BTreeMap::from([("general".to_owned(), 4), ("gpu".to_owned(), 2)]);
    let parity = Parity::new(BUILT_IN, &pools);
    let scenario = Scenario::parse(Path::new("parity.yaml"), &parity.scenario).unwrap();
    let nodes = scenario
        .generated()
        .into_iter()
        .filter(|o| o["kind"] == "Node")
        .count();
    assert_eq!(nodes, 6);
    assert_eq!(parity.policy_names(), ["workers-os", "shop-nginx"]);
    let os = &parity.policies[0]["spec"];
    assert_eq!(os["strategy"]["canary"]["soak"], "10s");
    assert_eq!(os["health"]["soak"], "2s");
    assert_eq!(os["drain"]["timeout"], "1m");
    assert!(os.get("maintenanceWindow").is_none());
    assert_eq!(
        os["patch"]["updater"]["template"]["metadata"]["annotations"]["cluster.patchpilot.dev/reboot"],
        "true"
    );
    let frontend = parity
        .objects
        .iter()
        .find(|o| o["kind"] == "Deployment" && o["metadata"]["name"] == "frontend")
        .unwrap();
    assert_eq!(
        frontend["spec"]["template"]["metadata"]["annotations"][NEVER_READY],
        "docker.io/library/nginx:1.27.4"
    );
    assert!(parity.objects.iter().any(|o| o["kind"] == "ConfigMap"));
    assert!(parity.policies[1]["spec"]["patch"].get("updater").is_none());
}

#[test]
fn the_halted_canaries_fail_every_updater_of_pool_general_on_both() {
    let pools = BTreeMap::from([("general".to_owned(), 4), ("gpu".to_owned(), 2)]);
    let text = std::fs::read_to_string(patchpilot_testkit::repo::path(HALTED)).unwrap();
    let parity = Parity::new(&text, &pools);
    let scenario = Scenario::parse(Path::new("parity.yaml"), &parity.scenario).unwrap();
    let general: Vec<String> = scenario
        .generated()
        .into_iter()
        .filter(|o| o["kind"] == "Node" && o["metadata"]["labels"]["pool"] == "general")
        .filter_map(|o| o["metadata"]["name"].as_str().map(str::to_owned))
        .collect();
    let first = serde_yaml_ng::Deserializer::from_str(&parity.scenario)
        .next()
        .unwrap();
    let adapted: Value = serde::Deserialize::deserialize(first).unwrap();
    let failing: Vec<&str> = adapted["spec"]["faults"]["updaterFailures"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["node"].as_str())
        .collect();
    assert_eq!(
        general, failing,
        "the sandbox fails every general node's apply"
    );
    let general_os = &parity.policies[0]["spec"]["patch"]["updater"]["template"];
    assert_eq!(
        general_os["spec"]["containers"][0]["env"],
        json!([{"name": "E2E_FAIL", "value": "apply"}]),
        "and kwok's stage every updater of general-os"
    );
    assert_eq!(parity.policies[1]["spec"]["drain"]["timeout"], "1m");
}
