//! Runs a scenario with the operator in the sandbox and judges the outcome from what an
//! outsider can see: the objects in the API at the end, and the audit log of every request.
//!
//! The invariants of SPEC 3 are checked from the audit log alone, by replaying the
//! operator's successful writes in order:
//!
//! - a target is *in progress* from the write that sets its `patchpilot.dev/lock`
//!   annotation to the write that removes it; at no point may more than `maxUnavailable`
//!   targets of one policy (of one pool, with `poolLabel`) be in progress, across all the
//!   policy's rollouts, and no target is locked by a rollout while another holds it;
//! - a rollout starts applying its patch to a target (a lock whose record says
//!   `Applying`) at most once, and only inside a window interval with at least the cutoff
//!   left;
//! - a node is released as updated only after an updater Job ran for that very lock;
//! - the operator uncordons only nodes it cordoned, and no node it cordoned stays cordoned;
//!   no target is left locked once its rollouts have ended or are gone;
//! - a rollout's status, once it has ended, never changes.

use std::{
    collections::{BTreeMap, BTreeSet},
    io::Write,
    path::Path,
    sync::{Arc, Mutex},
};

use jiff::{SignedDuration, Timestamp};
use patchpilot::sandbox::{
    Options, Sandbox,
    apiserver::Audit,
    run::{RunOptions, run},
    scenario::Scenario,
    store::{Filter, Store, WatchFrom, WatchItem},
};
use serde_json::Value;

/// An audit log kept in memory.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What a scenario run left behind.
pub struct Outcome {
    /// The report `patchpilot sandbox --report` writes.
    pub report: Value,
    /// The audit log, one event per request.
    pub log: Vec<Value>,
    /// Every version of every pod the simulated cluster wrote, with the virtual instant it
    /// was written: what the kubelets reported, which the audit log does not show.
    pub pod_history: Vec<(Timestamp, Arc<Value>)>,
    store: Arc<Store>,
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
    let buffer = Buffer::default();
    let options = Options {
        audit: Some(Audit::to_writer(Box::new(buffer.clone()))),
        speed: None,
    };
    let sandbox = Sandbox::new(scenario, options).unwrap();
    let store = sandbox.store().clone();
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
        operator: true,
    };
    let report = run(sandbox, options).await.unwrap();
    recorder.abort();
    let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    let log = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let pod_history = std::mem::take(&mut *history.lock().unwrap());
    Outcome {
        report,
        log,
        pod_history,
        store,
    }
}

/// The limits one policy's rollouts must keep.
#[derive(Clone, Debug)]
pub struct Rules {
    /// The policy.
    pub policy: &'static str,
    /// At most this many targets of one rollout in progress at once…
    pub max_unavailable: usize,
    /// …per value of this node label, when set.
    pub pool_label: Option<&'static str>,
    /// New targets start only inside these intervals (`None`: any time).
    pub windows: Option<Vec<(Timestamp, Timestamp)>>,
    /// …and only with this much of the interval left.
    pub cutoff: SignedDuration,
}

impl Rules {
    /// A policy with a count limit and no window.
    pub fn new(policy: &'static str, max_unavailable: usize) -> Self {
        Rules {
            policy,
            max_unavailable,
            pool_label: None,
            windows: None,
            cutoff: SignedDuration::ZERO,
        }
    }

    /// The limit applies per pool.
    pub fn per_pool(mut self, label: &'static str) -> Self {
        self.pool_label = Some(label);
        self
    }

    /// New targets only inside these intervals, with `cutoff` left.
    pub fn windows(mut self, intervals: &[(&str, &str)], cutoff: SignedDuration) -> Self {
        self.windows = Some(
            intervals
                .iter()
                .map(|(s, e)| (s.parse().unwrap(), e.parse().unwrap()))
                .collect(),
        );
        self.cutoff = cutoff;
        self
    }
}

/// One lock or unlock the operator wrote.
#[derive(Clone, Debug)]
pub struct LockEvent {
    /// When (virtual time).
    pub at: Timestamp,
    /// The policy whose record the write carried.
    pub policy: Option<String>,
    /// The record's attempt (`spec.retry` when the work began).
    pub attempt: u64,
    /// The UID of the rollout the record names (a rollout made again under the same name
    /// is another rollout).
    pub uid: Option<String>,
    /// The target, as `Node/<name>` or `<Kind>/<namespace>/<name>`.
    pub target: String,
    /// The rollout taking the lock, or `None` for a release.
    pub holder: Option<String>,
    /// The record's state written with it (`Applying`, `RollingBack`, `Updated`, …).
    pub state: Option<String>,
}

/// What the replay of the audit log found.
#[derive(Debug, Default)]
pub struct Replay {
    /// The most targets one rollout had in progress at once (per pool, with a pool label).
    pub peak: BTreeMap<String, usize>,
    /// How many times each target was locked to apply the patch.
    pub applied: BTreeMap<String, usize>,
    /// Targets locked to roll back, in the order they were locked.
    pub rolled_back: Vec<String>,
}

impl Outcome {
    /// The final objects of a kind.
    pub fn objects(&self, group: &str, version: &str, plural: &str) -> Vec<Value> {
        let resource = self.store.resource(group, version, plural).unwrap();
        self.store
            .list(&resource, &Filter::default(), 0, None)
            .items
            .iter()
            .map(|o| (**o).clone())
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
        (*self.store.get(&resource, namespace, name).unwrap()).clone()
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

    /// The requests of the operator.
    pub fn operator_requests(&self) -> impl Iterator<Item = &Value> {
        self.log.iter().filter(|e| {
            e["user"]["username"]
                .as_str()
                .is_some_and(|u| u.contains("patchpilot"))
        })
    }

    /// The operator's successful writes, in order.
    pub fn operator_writes(&self) -> impl Iterator<Item = &Value> {
        self.operator_requests().filter(|e| {
            matches!(
                e["verb"].as_str(),
                Some("create" | "update" | "patch" | "delete" | "deletecollection")
            ) && e["responseStatus"]["code"]
                .as_u64()
                .is_some_and(|c| (200..300).contains(&c))
        })
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
        self.operator_writes()
            .filter_map(|e| {
                let annotations = &e["requestObject"]["metadata"]["annotations"];
                let lock = annotations.get("patchpilot.dev/lock")?;
                let record = annotations.as_object()?.iter().find(|(k, _)| {
                    k.starts_with("patch.patchpilot.dev/") && k.ends_with(".rollout")
                });
                let policy = record.map(|(k, _)| {
                    k.trim_start_matches("patch.patchpilot.dev/")
                        .trim_end_matches(".rollout")
                        .to_owned()
                });
                let record =
                    record.and_then(|(_, v)| serde_json::from_str::<Value>(v.as_str()?).ok());
                let state = record
                    .as_ref()
                    .and_then(|record| record["state"].as_str().map(str::to_owned));
                Some(LockEvent {
                    at: timestamp(e),
                    policy,
                    attempt: record
                        .as_ref()
                        .and_then(|r| r["attempt"].as_u64())
                        .unwrap_or(0),
                    uid: record
                        .as_ref()
                        .and_then(|r| r["uid"].as_str().map(str::to_owned)),
                    target: target_of(e)?,
                    holder: lock.as_str().map(str::to_owned),
                    state,
                })
            })
            .collect()
    }

    /// The policy a rollout belongs to.
    fn policy_of(&self, rollout: &str) -> String {
        self.objects("patchpilot.dev", "v1alpha1", "patchrollouts")
            .iter()
            .find(|r| r["metadata"]["name"] == rollout)
            .and_then(|r| r["spec"]["policy"].as_str().map(str::to_owned))
            .unwrap_or_else(|| {
                rollout
                    .rsplit_once('-')
                    .map_or(rollout, |(p, _)| p)
                    .to_owned()
            })
    }

    /// Replays the audit log against the rules of each policy, panicking on the first
    /// broken invariant.
    #[track_caller]
    pub fn check(&self, rules: &[Rules]) -> Replay {
        let labels: BTreeMap<String, Value> = self
            .nodes()
            .into_iter()
            .map(|n| {
                (
                    format!("Node/{}", n["metadata"]["name"].as_str().unwrap()),
                    n["metadata"]["labels"].clone(),
                )
            })
            .collect();
        // Target → (holder, policy).
        let mut held: BTreeMap<String, (String, String)> = BTreeMap::new();
        let mut started: BTreeMap<(String, Option<String>, u64, String), usize> = BTreeMap::new();
        let mut replay = Replay::default();
        for event in self.locks() {
            match &event.holder {
                Some(holder) => {
                    let policy = event
                        .policy
                        .clone()
                        .unwrap_or_else(|| self.policy_of(holder));
                    if let Some((other, _)) = held.get(&event.target) {
                        assert_eq!(
                            other, holder,
                            "{} locked by {holder} while {other} held it (at {})",
                            event.target, event.at
                        );
                    }
                    let again = held.get(&event.target).is_some_and(|(h, _)| h == holder);
                    held.insert(event.target.clone(), (holder.clone(), policy.clone()));
                    match event.state.as_deref() {
                        Some("Applying") => {
                            // A retry (a new attempt) starts failed targets again.
                            let count = started
                                .entry((
                                    holder.clone(),
                                    event.uid.clone(),
                                    event.attempt,
                                    event.target.clone(),
                                ))
                                .or_default();
                            *count += 1;
                            assert_eq!(
                                *count, 1,
                                "{holder} started {} twice in attempt {} (at {})",
                                event.target, event.attempt, event.at
                            );
                            *replay.applied.entry(event.target.clone()).or_default() += 1;
                        }
                        Some("RollingBack")
                            if !again || replay.rolled_back.last() != Some(&event.target) =>
                        {
                            replay.rolled_back.push(event.target.clone());
                        }
                        _ => {}
                    }
                    let Some(rule) = rules.iter().find(|r| r.policy == policy) else {
                        continue;
                    };
                    let pool = |target: &str| {
                        rule.pool_label
                            .and_then(|l| labels.get(target).and_then(|ls| ls[l].as_str()))
                            .unwrap_or("")
                            .to_owned()
                    };
                    let group = format!("{policy}/{}", pool(&event.target));
                    let in_progress: Vec<&String> = held
                        .iter()
                        .filter(|(t, (_, p))| *p == policy && pool(t) == pool(&event.target))
                        .map(|(t, _)| t)
                        .collect();
                    assert!(
                        in_progress.len() <= rule.max_unavailable,
                        "{} targets of {group} in progress at {} (maxUnavailable {}): {in_progress:?}",
                        in_progress.len(),
                        event.at,
                        rule.max_unavailable,
                    );
                    let peak = replay.peak.entry(group).or_default();
                    *peak = (*peak).max(in_progress.len());
                    if event.state.as_deref() == Some("Applying")
                        && let Some(windows) = &rule.windows
                    {
                        assert!(
                            windows.iter().any(|(s, e)| *s <= event.at
                                && event.at.saturating_add(rule.cutoff).unwrap() <= *e),
                            "{} started at {}, outside the windows {windows:?} (cutoff {})",
                            event.target,
                            event.at,
                            rule.cutoff
                        );
                    }
                }
                None => {
                    held.remove(&event.target);
                }
            }
        }
        self.check_cordons();
        self.check_updater_jobs();
        self.check_locks_left();
        self.check_frozen_statuses();
        replay
    }

    /// A node is released as updated only after an updater Job was created for that very
    /// lock: by its holder, for the node, after the lock was taken.
    #[track_caller]
    fn check_updater_jobs(&self) {
        let mut locked_at: BTreeMap<(String, String), Timestamp> = BTreeMap::new();
        let mut jobs: Vec<(Timestamp, String, String)> = Vec::new();
        for write in self.operator_writes() {
            let object = &write["requestObject"];
            if write["verb"] == "create" && write["objectRef"]["resource"] == "jobs" {
                if object["metadata"]["annotations"]["patchpilot.dev/action"] == "apply" {
                    jobs.push((
                        timestamp(write),
                        object["metadata"]["labels"]["patchpilot.dev/rollout"]
                            .as_str()
                            .unwrap_or("")
                            .to_owned(),
                        object["metadata"]["annotations"]["patchpilot.dev/target"]
                            .as_str()
                            .unwrap_or("")
                            .to_owned(),
                    ));
                }
                continue;
            }
            if write["objectRef"]["resource"] != "nodes" {
                continue;
            }
            let target = format!("Node/{}", write["objectRef"]["name"].as_str().unwrap_or(""));
            let annotations = &object["metadata"]["annotations"];
            let Some((_, value)) = annotations
                .as_object()
                .into_iter()
                .flatten()
                .find(|(k, _)| k.starts_with("patch.patchpilot.dev/") && k.ends_with(".rollout"))
            else {
                continue;
            };
            let Some(record) = value
                .as_str()
                .and_then(|v| serde_json::from_str::<Value>(v).ok())
            else {
                continue;
            };
            let rollout = record["rollout"].as_str().unwrap_or("").to_owned();
            match (
                record["state"].as_str(),
                annotations.get("patchpilot.dev/lock"),
            ) {
                (Some("Applying"), Some(Value::String(_))) => {
                    locked_at.insert((rollout, target), timestamp(write));
                }
                (Some("Updated"), Some(Value::Null)) => {
                    let since = locked_at
                        .get(&(rollout.clone(), target.clone()))
                        .copied()
                        .unwrap_or_else(|| {
                            panic!(
                                "{target} released as updated by {rollout}, which never locked it"
                            )
                        });
                    assert!(
                        jobs.iter()
                            .any(|(at, r, t)| *r == rollout && *t == target && *at >= since),
                        "{target} released as updated by {rollout} with no updater Job created for its lock of {since}"
                    );
                }
                _ => {}
            }
        }
    }

    /// No target is left locked but by a rollout that exists and has not ended.
    #[track_caller]
    fn check_locks_left(&self) {
        let rollouts = self.objects("patchpilot.dev", "v1alpha1", "patchrollouts");
        let running = |name: &str| {
            rollouts.iter().any(|r| {
                r["metadata"]["name"] == name
                    && !matches!(
                        r["status"]["phase"].as_str(),
                        Some("Succeeded" | "RolledBack" | "Failed" | "Superseded")
                    )
            })
        };
        let kinds = [
            ("", "v1", "nodes"),
            ("apps", "v1", "deployments"),
            ("apps", "v1", "statefulsets"),
            ("apps", "v1", "daemonsets"),
        ];
        for (group, version, plural) in kinds {
            for object in self.objects(group, version, plural) {
                if let Some(holder) =
                    object["metadata"]["annotations"]["patchpilot.dev/lock"].as_str()
                {
                    assert!(
                        running(holder),
                        "{plural} {} is still locked by {holder}, which has ended or is gone",
                        object["metadata"]["name"]
                    );
                }
            }
        }
    }

    /// A rollout's status, once it has ended with nothing in progress, never changes (but
    /// for the generation it describes).
    #[track_caller]
    fn check_frozen_statuses(&self) {
        let mut ended: BTreeMap<String, Value> = BTreeMap::new();
        for write in self.operator_writes() {
            if write["objectRef"]["resource"] != "patchrollouts" {
                continue;
            }
            let name = write["objectRef"]["name"].as_str().unwrap_or("").to_owned();
            if write["verb"] == "create" || write["verb"] == "delete" {
                ended.remove(&name);
                continue;
            }
            if write["objectRef"]["subresource"] != "status" {
                continue;
            }
            let status = &write["requestObject"]["status"];
            let shown = serde_json::json!({
                "phase": status["phase"],
                "targets": status["targets"],
                "failures": status["failures"],
                "message": status["message"],
                "wave": status["wave"],
                "completedAt": status["completedAt"],
            });
            if let Some(frozen) = ended.get(&name) {
                assert_eq!(
                    &shown, frozen,
                    "the status of {name} changed after it ended (at {})",
                    write["requestReceivedTimestamp"]
                );
                continue;
            }
            let terminal = matches!(
                status["phase"].as_str(),
                Some("Succeeded" | "RolledBack" | "Failed" | "Superseded")
            );
            let idle = status["inProgress"].as_array().is_none_or(Vec::is_empty);
            if terminal && idle {
                ended.insert(name, shown);
            }
        }
    }

    /// The operator uncordons only what it cordoned, and leaves nothing cordoned.
    #[track_caller]
    fn check_cordons(&self) {
        let mut cordoned: BTreeSet<String> = BTreeSet::new();
        for write in self.operator_writes() {
            let Some(unschedulable) = write["requestObject"]["spec"]["unschedulable"].as_bool()
            else {
                continue;
            };
            let node = write["objectRef"]["name"].as_str().unwrap_or("").to_owned();
            if unschedulable {
                cordoned.insert(node);
            } else {
                assert!(
                    cordoned.remove(&node),
                    "the operator uncordoned {node}, which it had not cordoned"
                );
            }
        }
        assert!(
            cordoned.is_empty(),
            "the operator left cordoned: {cordoned:?}\n{}",
            self.history(cordoned.iter().next().map_or("", String::as_str))
        );
        for node in self.nodes() {
            let name = node["metadata"]["name"].as_str().unwrap_or("");
            let mine = node["metadata"]["annotations"]
                .as_object()
                .into_iter()
                .flatten()
                .any(|(k, v)| {
                    k.ends_with(".rollout")
                        && v.as_str()
                            .and_then(|v| serde_json::from_str::<Value>(v).ok())
                            .is_some_and(|r| r["cordoned"] == true)
                });
            assert!(
                !(mine && node["spec"]["unschedulable"] == true),
                "{name} is still cordoned by the operator"
            );
        }
    }

    /// Every request of the operator to the node `name`, one line each, for failure
    /// messages.
    pub fn history(&self, name: &str) -> String {
        self.operator_requests()
            .filter(|e| e["objectRef"]["name"] == name)
            .map(|e| {
                let annotations = &e["requestObject"]["metadata"]["annotations"];
                let record = annotations
                    .as_object()
                    .into_iter()
                    .flatten()
                    .find(|(k, _)| k.ends_with(".rollout"))
                    .and_then(|(_, v)| serde_json::from_str::<Value>(v.as_str()?).ok());
                format!(
                    "{} {} {} {} lock={} state={} unschedulable={}",
                    e["requestReceivedTimestamp"].as_str().unwrap_or(""),
                    e["verb"].as_str().unwrap_or(""),
                    e["objectRef"]["subresource"].as_str().unwrap_or(""),
                    e["responseStatus"]["code"],
                    annotations["patchpilot.dev/lock"],
                    record.as_ref().map_or(Value::Null, |r| r["state"].clone()),
                    e["requestObject"]["spec"]["unschedulable"],
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

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

    /// The version annotation of a policy on every node.
    pub fn node_versions(&self, policy: &str) -> BTreeMap<String, Option<String>> {
        let key = format!("patch.patchpilot.dev/{policy}");
        self.nodes()
            .into_iter()
            .map(|n| {
                (
                    n["metadata"]["name"].as_str().unwrap().to_owned(),
                    n["metadata"]["annotations"][&key]
                        .as_str()
                        .map(str::to_owned),
                )
            })
            .collect()
    }

    /// The updater Jobs the operator created, as their request bodies.
    pub fn updater_jobs(&self) -> Vec<&Value> {
        self.operator_writes()
            .filter(|e| e["verb"] == "create" && e["objectRef"]["resource"] == "jobs")
            .map(|e| &e["requestObject"])
            .collect()
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

/// When an audit event's request arrived.
pub fn timestamp(event: &Value) -> Timestamp {
    event["requestReceivedTimestamp"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// The target an audit event wrote to.
fn target_of(event: &Value) -> Option<String> {
    let r = &event["objectRef"];
    let name = r["name"].as_str()?;
    let kind = match r["resource"].as_str()? {
        "nodes" => return Some(format!("Node/{name}")),
        "deployments" => "Deployment",
        "statefulsets" => "StatefulSet",
        "daemonsets" => "DaemonSet",
        _ => return None,
    };
    Some(format!("{kind}/{}/{name}", r["namespace"].as_str()?))
}

/// The environment variable `name` of an updater Job's first container.
pub fn job_env<'a>(job: &'a Value, name: &str) -> Option<&'a str> {
    job["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == name)?["value"]
        .as_str()
}
