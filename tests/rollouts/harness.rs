//! Runs a scenario with the operator in the sandbox and judges the outcome from what an
//! outsider can see: the objects in the API at the end, and the audit log of every request.
//!
//! The invariants of SPEC 3 are checked from the audit log alone, by replaying the
//! operator's successful writes in order:
//!
//! - a target is *in progress* from the write that sets its `patchpilot.dev/lock`
//!   annotation to the write that removes it; at no point may more than `maxUnavailable`
//!   targets of one rollout (of one pool, with `poolLabel`) be in progress;
//! - a lock that starts applying the patch (its record says `Applying`) must fall inside a
//!   window interval with at least the cutoff left;
//! - the operator uncordons only nodes it cordoned, and no node it cordoned stays cordoned.

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
    store::{Filter, Store},
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
    store: Arc<Store>,
}

/// Runs a scenario (multi-document YAML) to its end with the operator.
pub async fn run_scenario(yaml: &str) -> Outcome {
    run_to_end(Scenario::parse(Path::new("scenario.yaml"), yaml).unwrap()).await
}

/// Runs a scenario file (its `include`s relative to it) to its end with the operator.
pub async fn run_scenario_file(file: &Path) -> Outcome {
    run_to_end(Scenario::read(file).unwrap_or_else(|e| panic!("{e}"))).await
}

async fn run_to_end(scenario: Scenario) -> Outcome {
    let buffer = Buffer::default();
    let options = Options {
        audit: Some(Audit::to_writer(Box::new(buffer.clone()))),
        speed: None,
    };
    let sandbox = Sandbox::new(scenario, options).unwrap();
    let store = sandbox.store().clone();
    let options = RunOptions {
        serve: None,
        kubeconfig_out: None,
        report: None,
        operator: true,
    };
    let report = run(sandbox, options).await.unwrap();
    let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    let log = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    Outcome { report, log, store }
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
                let state = annotations
                    .as_object()?
                    .iter()
                    .find(|(k, _)| {
                        k.starts_with("patch.patchpilot.dev/") && k.ends_with(".rollout")
                    })
                    .and_then(|(_, v)| serde_json::from_str::<Value>(v.as_str()?).ok())
                    .and_then(|record| record["state"].as_str().map(str::to_owned));
                Some(LockEvent {
                    at: timestamp(e),
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
        let mut held: BTreeMap<String, String> = BTreeMap::new();
        let mut replay = Replay::default();
        for event in self.locks() {
            match &event.holder {
                Some(holder) => {
                    if let Some(other) = held.get(&event.target) {
                        assert_eq!(
                            other, holder,
                            "{} locked by {holder} while {other} held it (at {})",
                            event.target, event.at
                        );
                    }
                    held.insert(event.target.clone(), holder.clone());
                    let policy = self.policy_of(holder);
                    let Some(rule) = rules.iter().find(|r| r.policy == policy) else {
                        continue;
                    };
                    let pool = |target: &str| {
                        rule.pool_label
                            .and_then(|l| labels.get(target).and_then(|ls| ls[l].as_str()))
                            .unwrap_or("")
                            .to_owned()
                    };
                    let group = format!("{holder}/{}", pool(&event.target));
                    let count = held
                        .iter()
                        .filter(|(t, h)| *h == holder && pool(t) == pool(&event.target))
                        .count();
                    assert!(
                        count <= rule.max_unavailable,
                        "{count} targets of {group} in progress at {} (maxUnavailable {}): {:?}",
                        event.at,
                        rule.max_unavailable,
                        held.iter()
                            .filter(|(_, h)| *h == holder)
                            .map(|(t, _)| t)
                            .collect::<Vec<_>>()
                    );
                    let peak = replay.peak.entry(group).or_default();
                    *peak = (*peak).max(count);
                    match event.state.as_deref() {
                        Some("Applying") => {
                            *replay.applied.entry(event.target.clone()).or_default() += 1;
                            if let Some(windows) = &rule.windows {
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
                        Some("RollingBack") => replay.rolled_back.push(event.target.clone()),
                        _ => {}
                    }
                }
                None => {
                    held.remove(&event.target);
                }
            }
        }
        self.check_cordons();
        replay
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
            "the operator left cordoned: {cordoned:?}"
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
