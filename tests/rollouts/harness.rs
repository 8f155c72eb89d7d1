//! Runs a scenario with the operator in the sandbox and judges the outcome from what an
//! outsider can see: the objects in the API at the end, and the audit log of every request.
//!
//! The invariants of SPEC 3 are checked from the audit log alone, by the replay of
//! `crates/testkit/src/audit.rs`, which the end-to-end suite runs on a real API server's log.

use std::{
    collections::BTreeMap,
    path::Path,
    sync::{Arc, Mutex},
};

use jiff::{SignedDuration, Timestamp};
use patchpilot::sandbox::{
    Options, Sandbox,
    apiserver::{Audit as AuditSink, MemoryLog},
    json::Json,
    network::receiver::Receivers,
    run::{RunOptions, run},
    scenario::Scenario,
    store::{Filter, Store, WatchFrom, WatchItem},
};
use patchpilot_testkit::audit::Objects;
pub use patchpilot_testkit::audit::{Audit, LockEvent, Replay, Rules, timestamp};
use serde_json::Value;

/// What a scenario run left behind.
pub struct Outcome {
    /// The report `patchpilot sandbox --report` writes.
    pub report: Value,
    /// The audit log, one event per request.
    pub log: Vec<Value>,
    /// Every version of every pod the simulated cluster wrote, with the virtual instant it
    /// was written: what the kubelets reported, which the audit log does not show.
    pub pod_history: Vec<(Timestamp, Arc<Json>)>,
    store: Arc<Store>,
    receivers: Arc<Receivers>,
}

/// Something a person does to the cluster during a run, with kubectl's requests (as the
/// user `sandbox-admin`).
#[derive(Clone, Debug)]
pub enum Act {
    /// `kubectl create -f` of an object.
    Create(Value),
    /// `kubectl delete` of an object: (apiVersion, plural, namespace, name).
    Delete(&'static str, &'static str, Option<&'static str>, String),
    /// `kubectl patch --type merge`: (apiVersion, plural, namespace, name, patch).
    Patch(
        &'static str,
        &'static str,
        Option<&'static str>,
        String,
        Value,
    ),
}

/// The API resource of `api_version` and `plural`, for a dynamic client.
fn resource(api_version: &str, plural: &str, kind: &str) -> kube::api::ApiResource {
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    kube::api::ApiResource {
        group: group.to_owned(),
        version: version.to_owned(),
        api_version: api_version.to_owned(),
        kind: kind.to_owned(),
        plural: plural.to_owned(),
    }
}

/// Carries out `act` with `client`.
async fn perform(client: kube::Client, act: &Act) {
    use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
    let api = |api_version: &str, plural: &str, kind: &str, ns: Option<&str>| {
        let resource = resource(api_version, plural, kind);
        match ns {
            Some(ns) => Api::<DynamicObject>::namespaced_with(client.clone(), ns, &resource),
            None => Api::<DynamicObject>::all_with(client.clone(), &resource),
        }
    };
    match act {
        Act::Create(object) => {
            let kind = object["kind"].as_str().unwrap();
            let lower = kind.to_lowercase();
            let plural = match lower.strip_suffix('y') {
                Some(stem) => format!("{stem}ies"),
                None => format!("{lower}s"),
            };
            let ns = object["metadata"]["namespace"].as_str();
            let dynamic: DynamicObject = serde_json::from_value(object.clone()).unwrap();
            api(object["apiVersion"].as_str().unwrap(), &plural, kind, ns)
                .create(&PostParams::default(), &dynamic)
                .await
                .unwrap();
        }
        Act::Delete(api_version, plural, ns, name) => {
            api(api_version, plural, "", *ns)
                .delete(name, &DeleteParams::default())
                .await
                .unwrap();
        }
        Act::Patch(api_version, plural, ns, name, patch) => {
            api(api_version, plural, "", *ns)
                .patch(name, &PatchParams::default(), &Patch::Merge(patch))
                .await
                .unwrap();
        }
    }
}

/// Runs a scenario to its end with the operator, a person doing `acts`, each that long
/// after the start.
pub async fn run_scenario_with(yaml: &str, acts: &[(SignedDuration, Act)]) -> Outcome {
    run_to_end(
        Scenario::parse(Path::new("scenario.yaml"), yaml).unwrap(),
        acts,
    )
    .await
}

/// Runs a scenario file (its `include`s relative to it) to its end with the operator.
pub async fn run_scenario_file(file: &Path) -> Outcome {
    run_to_end(Scenario::read(file).unwrap_or_else(|e| panic!("{e}")), &[]).await
}

async fn run_to_end(scenario: Scenario, acts: &[(SignedDuration, Act)]) -> Outcome {
    let memory = MemoryLog::default();
    let options = Options {
        audit: Some(AuditSink::in_memory(&memory)),
        speed: None,
        ..patchpilot::sandboxed::options()
    };
    let sandbox = Sandbox::new(scenario, options).unwrap();
    let store = sandbox.store().clone();
    let receivers = sandbox.receivers().clone();
    let admin = sandbox.client(patchpilot::sandbox::run::ADMIN_USER);
    let start = store.clock().now();
    for (after, act) in acts.iter().cloned() {
        let (client, clock) = (admin.clone(), store.clock().clone());
        tokio::spawn(async move {
            tokio::time::sleep(clock.sleep_for(start.saturating_add(after).unwrap())).await;
            perform(client, &act).await;
        });
    }
    let history = Arc::new(Mutex::new(Vec::new()));
    let recorder = {
        let pods = store.resource("", "v1", "pods").unwrap();
        let mut watch = store
            .watch(&pods, Filter::default(), WatchFrom::Current)
            .unwrap();
        let (history, clock) = (history.clone(), store.clock().clone());
        tokio::spawn(async move {
            while let Some(item) = watch.rx.recv().await {
                if let WatchItem::Event(_, pod) = item {
                    history.lock().unwrap().push((clock.now(), pod));
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
    let report = run(sandbox, options).await.unwrap();
    recorder.abort();
    let log = memory.events();
    let pod_history = std::mem::take(&mut *history.lock().unwrap());
    Outcome {
        report,
        log,
        pod_history,
        store,
        receivers,
    }
}

impl Outcome {
    /// The final objects of a kind.
    pub fn objects(&self, group: &str, version: &str, plural: &str) -> Vec<Value> {
        let resource = self.store.resource(group, version, plural).unwrap();
        self.store
            .list(&resource, &Filter::default(), 0, None)
            .items
            .iter()
            .map(|o| o.to_value())
            .collect()
    }

    /// The final object `name` of a kind (`namespace` empty for cluster-scoped ones).
    pub fn object(
        &self,
        group: &str,
        version: &str,
        plural: &str,
        namespace: &str,
        name: &str,
    ) -> Value {
        let resource = self.store.resource(group, version, plural).unwrap();
        self.store
            .get(&resource, namespace, name)
            .unwrap()
            .to_value()
    }

    /// Every request sent to the scenario's receiver `name`, in order, as JSON: `time`
    /// (virtual), `method`, `path`, `headers` (lower-case names), `body` (parsed when JSON),
    /// `bytes`, and how it was answered: `status` (`null` when it was not), `error`
    /// (`Refused` or `Timeout` while the receiver was down that way).
    pub fn received(&self, name: &str) -> Vec<Value> {
        self.receivers
            .received(name)
            .iter()
            .map(|r| r.to_json())
            .collect()
    }

    /// The final nodes.
    pub fn nodes(&self) -> Vec<Value> {
        self.objects("", "v1", "nodes")
    }

    /// The final rollouts of a policy, oldest first.
    pub fn rollouts(&self, policy: &str) -> Vec<Value> {
        let mut rollouts: Vec<Value> = self
            .objects("patchpilot.dev", "v1alpha1", "patchrollouts")
            .into_iter()
            .filter(|r| r["spec"]["policy"] == policy)
            .collect();
        rollouts.sort_by_key(|r| {
            r["metadata"]["creationTimestamp"]
                .as_str()
                .unwrap_or("")
                .to_owned()
        });
        rollouts
    }

    /// The only rollout of a policy.
    #[track_caller]
    pub fn rollout(&self, policy: &str) -> Value {
        let mut rollouts = self.rollouts(policy);
        assert_eq!(rollouts.len(), 1, "rollouts of {policy}: {rollouts:#?}");
        rollouts.remove(0)
    }

    /// The phase of a policy's only rollout.
    #[track_caller]
    pub fn phase(&self, policy: &str) -> String {
        self.rollout(policy)["status"]["phase"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    }

    /// The audit log, with the final objects, for the checks of `crates/testkit/src/audit.rs`.
    pub fn audit(&self) -> Audit<'_> {
        Audit {
            log: &self.log,
            state: self,
            operator: "patchpilot",
        }
    }

    /// The requests of the operator.
    pub fn operator_requests(&self) -> impl Iterator<Item = &Value> {
        self.audit().operator_requests()
    }

    /// The operator's successful writes, in order.
    pub fn operator_writes(&self) -> impl Iterator<Item = &Value> {
        self.audit().operator_writes()
    }
    /// The successful writes of the scenario's steps, in order.
    pub fn step_writes(&self) -> impl Iterator<Item = &Value> {
        self.log
            .iter()
            .filter(|e| e["user"]["username"] == "sandbox-scenario" && e["verb"] == "patch")
    }

    /// When a step first wrote to the named object.
    #[track_caller]
    pub fn step_time(&self, name_prefix: &str) -> Timestamp {
        let write = self
            .step_writes()
            .find(|e| {
                e["objectRef"]["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with(name_prefix))
            })
            .unwrap_or_else(|| panic!("no step wrote to {name_prefix}"));
        timestamp(write)
    }
    /// Every lock and release the operator wrote, in order.
    pub fn locks(&self) -> Vec<LockEvent> {
        self.audit().locks()
    }

    /// Replays the audit log against the rules of each policy, panicking on the first
    /// broken invariant.
    #[track_caller]
    pub fn check(&self, rules: &[Rules]) -> Replay {
        self.audit().check(rules)
    }
    /// Every request of the operator to the node `name`, one line each, for failure
    /// The last status the operator wrote to the object `name` of `resource` (plural) at or
    /// before `at`, from the audit log.
    pub fn status_at(&self, resource: &str, name: &str, at: &str) -> Value {
        let at: Timestamp = at.parse().unwrap();
        self.operator_writes()
            .filter(|e| {
                e["objectRef"]["resource"] == resource
                    && e["objectRef"]["name"] == name
                    && e["objectRef"]["subresource"] == "status"
                    && timestamp(e) <= at
            })
            .last()
            .map(|e| e["requestObject"]["status"].clone())
            .unwrap_or_else(|| panic!("no status of {resource} {name} written by {at}"))
    }

    /// The number of targets of each state in a policy's only rollout.
    #[track_caller]
    pub fn counts(&self, policy: &str) -> Value {
        self.rollout(policy)["status"]["targets"].clone()
    }

    /// The version annotation of a policy on every node; the label beside it must say the
    /// same (as a label value), so that `kubectl get nodes -l` finds them.
    #[track_caller]
    pub fn node_versions(&self, policy: &str) -> BTreeMap<String, Option<String>> {
        let key = format!("patch.patchpilot.dev/{policy}");
        let label = patchpilot::engine::keys::version_label(policy);
        self.nodes()
            .into_iter()
            .map(|n| {
                let name = n["metadata"]["name"].as_str().unwrap().to_owned();
                let version = n["metadata"]["annotations"][&key]
                    .as_str()
                    .map(str::to_owned);
                let labelled = n["metadata"]["labels"][&label].as_str().map(str::to_owned);
                assert_eq!(
                    labelled,
                    version
                        .as_deref()
                        .and_then(patchpilot::engine::keys::version_label_value),
                    "the version label of {name} against its annotation"
                );
                (name, version)
            })
            .collect()
    }

    /// Whether every node carries `version` of `policy`.
    pub fn every_node_carries(&self, policy: &str, version: &str) -> bool {
        self.node_versions(policy)
            .values()
            .all(|v| v.as_deref() == Some(version))
    }

    /// The updater Jobs the operator created, as their request bodies.
    pub fn updater_jobs(&self) -> Vec<&Value> {
        self.operator_writes()
            .filter(|e| e["verb"] == "create" && e["objectRef"]["resource"] == "jobs")
            .map(|e| &e["requestObject"])
            .collect()
    }
}

impl Objects for Outcome {
    fn objects(&self, group: &str, version: &str, plural: &str) -> Vec<Value> {
        Outcome::objects(self, group, version, plural)
    }
}

/// The condition `kind` of a status: (status, reason).
pub fn condition(status: &Value, kind: &str) -> (String, String) {
    let found = status["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == kind))
        .unwrap_or_else(|| panic!("no condition {kind} in {status}"));
    (
        found["status"].as_str().unwrap_or("").to_owned(),
        found["reason"].as_str().unwrap_or("").to_owned(),
    )
}

/// The environment variable `name` of an updater Job's first container.
pub fn job_env<'a>(job: &'a Value, name: &str) -> Option<&'a str> {
    job["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == name)?["value"]
        .as_str()
}
