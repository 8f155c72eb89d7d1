//! The invariants of SPEC 3, judged from an audit log alone: the sandbox's (in the
//! scenario tests of `tests/rollouts`) and a real API server's (in the end-to-end suite of
//! `tests/e2e`), by replaying the operator's successful writes in order:
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

use std::collections::{BTreeMap, BTreeSet};

use jiff::{SignedDuration, Timestamp};
use serde_json::Value;

/// The objects of the cluster at the end, by kind: what the checks compare the log with.
pub trait Objects {
    /// Every object of a kind (`group` empty for the core group; `plural` as in URLs).
    fn objects(&self, group: &str, version: &str, plural: &str) -> Vec<Value>;
}

/// No objects: for what reads the log alone, such as [`Audit::traces`](crate::trace).
pub struct NoObjects;

impl Objects for NoObjects {
    fn objects(&self, _: &str, _: &str, _: &str) -> Vec<Value> {
        Vec::new()
    }
}

/// An audit log (one `audit.k8s.io/v1` event per request, in order) and the objects it left.
#[derive(Clone, Copy)]
pub struct Audit<'a> {
    /// The events.
    pub log: &'a [Value],
    /// The objects at the end.
    pub state: &'a dyn Objects,
    /// The operator's requests are those of the users whose name contains this.
    pub operator: &'a str,
}

/// The limits one policy's rollouts must keep.
#[derive(Clone, Debug)]
pub struct Rules {
    /// The policy.
    pub policy: String,
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
    pub fn new(policy: impl Into<String>, max_unavailable: usize) -> Self {
        Rules {
            policy: policy.into(),
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

impl<'a> Audit<'a> {
    /// The requests of the operator.
    pub fn operator_requests(self) -> impl Iterator<Item = &'a Value> + 'a {
        let operator = self.operator;
        self.log.iter().filter(move |e| {
            e["user"]["username"]
                .as_str()
                .is_some_and(|u| u.contains(operator))
        })
    }

    /// The operator's successful writes, in order.
    pub fn operator_writes(self) -> impl Iterator<Item = &'a Value> + 'a {
        self.operator_requests().filter(|e| {
            matches!(
                e["verb"].as_str(),
                Some("create" | "update" | "patch" | "delete" | "deletecollection")
            ) && e["responseStatus"]["code"]
                .as_u64()
                .is_some_and(|c| (200..300).contains(&c))
        })
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
        self.state
            .objects("patchpilot.dev", "v1alpha1", "patchrollouts")
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
            .state
            .objects("", "v1", "nodes")
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
        let rollouts = self
            .state
            .objects("patchpilot.dev", "v1alpha1", "patchrollouts");
        let running = |name: &str| {
            rollouts.iter().any(|r| {
                r["metadata"]["name"] == name
                    && !matches!(
                        r["status"]["phase"].as_str(),
                        Some("Succeeded" | "RolledBack" | "Failed" | "Superseded")
                    )
            })
        };
        // Locks a person wrote (garbage the operator must leave alone) are not the
        // operator's to release: only those it took count.
        let taken: BTreeSet<(&str, &str)> = self
            .operator_writes()
            .filter_map(|w| {
                let holder = w["requestObject"]["metadata"]["annotations"]["patchpilot.dev/lock"]
                    .as_str()?;
                Some((w["objectRef"]["name"].as_str()?, holder))
            })
            .collect();
        let kinds = [
            ("", "v1", "nodes"),
            ("apps", "v1", "deployments"),
            ("apps", "v1", "statefulsets"),
            ("apps", "v1", "daemonsets"),
        ];
        for (group, version, plural) in kinds {
            for object in self.state.objects(group, version, plural) {
                let name = object["metadata"]["name"].as_str().unwrap_or("");
                if let Some(holder) =
                    object["metadata"]["annotations"]["patchpilot.dev/lock"].as_str()
                    && taken.contains(&(name, holder))
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
        for node in self.state.objects("", "v1", "nodes") {
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
pub fn target_of(event: &Value) -> Option<String> {
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
