//! The Deployment controller: one ReplicaSet per pod template, named
//! `<deployment>-<pod-template-hash>`, revisions in `deployment.kubernetes.io/revision`,
//! rolling updates within `maxSurge`/`maxUnavailable` (or Recreate), old sets trimmed to
//! `revisionHistoryLimit`, and the status `kubectl rollout status` reads. The arithmetic is in
//! [`super::rollout`].
//!
//! Not simulated: proportional scaling of several sets during a rollout (a scale change then
//! converges through the rolling update instead), `ReplicaFailure` conditions.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::{
    informer::Kind,
    meta::{self, Key},
    rolling_update::{
        Counts, OldSet, Strategy, deployment_status, new_set_replicas, reason, set_condition,
        shrink_old,
    },
    sim::Sim,
    template::without_label,
    work::Work,
    write::{CONTROLLERS, Part},
};
use crate::json::Json;

/// The label that tells a Deployment's ReplicaSets (and their pods) apart.
pub(super) const HASH: &str = "pod-template-hash";
const REVISION: &str = "deployment.kubernetes.io/revision";
const HISTORY: &str = "deployment.kubernetes.io/revision-history";
const DESIRED: &str = "deployment.kubernetes.io/desired-replicas";
const MAX: &str = "deployment.kubernetes.io/max-replicas";

/// Annotations of the Deployment that its ReplicaSets do not copy.
const NOT_COPIED: [&str; 6] = [
    REVISION,
    HISTORY,
    DESIRED,
    MAX,
    "kubectl.kubernetes.io/last-applied-configuration",
    "deprecated.deployment.rollback.to",
];

fn revision(set: &Json) -> i64 {
    meta::annotation(set, REVISION)
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

fn replicas_of(set: &Json) -> i64 {
    meta::count(&set["spec"]["replicas"], 1)
}

fn status_count(set: &Json, field: &str) -> i64 {
    set["status"][field].as_i64().unwrap_or(0)
}

impl Sim {
    /// A Deployment's ReplicaSets that are not being deleted, oldest first.
    fn sets_of(&self, deployment: &Json) -> Vec<Arc<Json>> {
        let mut sets: Vec<Arc<Json>> = self
            .cache
            .sets_of(meta::uid(deployment))
            .filter(|s| !meta::terminating(s))
            .cloned()
            .collect();
        sets.sort_by(|a, b| {
            let created = |s: &Json| {
                s["metadata"]["creationTimestamp"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned()
            };
            (created(a), meta::name(a)).cmp(&(created(b), meta::name(b)))
        });
        sets
    }

    /// Reconciles a Deployment.
    pub fn sync_deployment(&mut self, key: &Key) {
        let Some(deployment) = self.cache.get(Kind::Deployment, key).cloned() else {
            return;
        };
        if meta::terminating(&deployment) {
            return;
        }
        let spec = &deployment["spec"];
        let replicas = meta::count(&spec["replicas"], 1);
        let strategy = Strategy::of(spec, replicas);
        let template = without_label(&spec["template"], HASH);
        let is_new = |set: &Json| without_label(&set["spec"]["template"], HASH) == template;
        let sets = self.sets_of(&deployment);
        let mut new_key = sets.iter().find(|s| is_new(s)).map(meta::key_of);
        let mut conditions = meta::conditions_of(&deployment);
        let stamp = meta::time(self.now());
        if spec["paused"] == true {
            set_condition(
                &mut conditions,
                "Progressing",
                "Unknown",
                reason::PAUSED,
                "Deployment is paused",
                &stamp,
            );
        } else {
            if meta::condition(&deployment, "Progressing")
                .is_some_and(|c| c["reason"] == reason::PAUSED)
            {
                set_condition(
                    &mut conditions,
                    "Progressing",
                    "Unknown",
                    reason::RESUMED,
                    "Deployment is resumed",
                    &stamp,
                );
            }
            let max_old = sets
                .iter()
                .filter(|s| !is_new(s))
                .map(|s| revision(s))
                .max()
                .unwrap_or(0);
            match strategy {
                Strategy::Rolling { .. } => {
                    new_key = match new_key {
                        Some(new) => {
                            self.sync_revision(&new, max_old + 1);
                            Some(new)
                        }
                        None => {
                            self.create_new_set(&deployment, strategy, max_old + 1, &mut conditions)
                        }
                    };
                    if let Some(new) = &new_key
                        && !self.grow_new_set(&deployment, new, strategy)
                    {
                        self.shrink_old_sets(&deployment, new, strategy);
                    }
                }
                Strategy::Recreate => {
                    new_key = self.recreate(&deployment, new_key, max_old + 1, &mut conditions);
                }
            }
            self.clean_up_history(&deployment, new_key.as_ref());
        }
        self.write_deployment_status(key, &deployment, new_key.as_ref(), strategy, conditions);
    }

    /// Creates the ReplicaSet of the Deployment's current template, or bumps the
    /// collision count if another object holds its name.
    fn create_new_set(
        &mut self,
        deployment: &Json,
        strategy: Strategy,
        revision: i64,
        conditions: &mut Vec<Value>,
    ) -> Option<Key> {
        let spec = &deployment["spec"];
        let replicas = meta::count(&spec["replicas"], 1);
        let mut template = without_label(&spec["template"], HASH);
        let hash = meta::template_hash(&template, deployment["status"]["collisionCount"].as_i64());
        let name = format!("{}-{hash}", meta::name(deployment));
        meta::set_path(&mut template, &["metadata", "labels", HASH], json!(hash));
        let mut selector = if spec["selector"].is_object() {
            spec["selector"].to_value()
        } else {
            json!({})
        };
        meta::set_path(&mut selector, &["matchLabels", HASH], json!(hash));
        let old_total: i64 = self
            .sets_of(deployment)
            .iter()
            .map(|s| replicas_of(s))
            .sum();
        let count = new_set_replicas(strategy, replicas, old_total, 0);
        let mut annotations: Map<String, Value> = deployment["metadata"]["annotations"]
            .as_object()
            .map(|a| {
                a.iter()
                    .filter(|(k, _)| !NOT_COPIED.contains(k))
                    .map(|(k, v)| (k.to_owned(), v.to_value()))
                    .collect()
            })
            .unwrap_or_default();
        annotations.insert(REVISION.into(), json!(revision.to_string()));
        annotations.insert(DESIRED.into(), json!(replicas.to_string()));
        annotations.insert(MAX.into(), json!((replicas + strategy.surge()).to_string()));
        let mut set_spec = json!({"replicas": count, "selector": selector, "template": template});
        if let Some(min_ready) = spec["minReadySeconds"].as_i64() {
            set_spec["minReadySeconds"] = json!(min_ready);
        }
        let set = json!({
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": name,
                "namespace": meta::namespace(deployment),
                "labels": template["metadata"]["labels"],
                "annotations": annotations,
                "ownerReferences": [meta::controller_ref(deployment)],
            },
            "spec": set_spec,
            "status": {"replicas": 0},
        });
        let key = meta::key_of(deployment);
        match self.create(Kind::ReplicaSet, &key.0, set, CONTROLLERS) {
            Ok(set) => {
                let message = format!("Created new replica set \"{name}\"");
                let stamp = meta::time(self.now());
                set_condition(
                    conditions,
                    "Progressing",
                    "True",
                    reason::CREATED,
                    &message,
                    &stamp,
                );
                Some(meta::key_of(&set))
            }
            Err(error) if error.reason == "AlreadyExists" => {
                let collisions = deployment["status"]["collisionCount"].as_i64().unwrap_or(0) + 1;
                self.update(Kind::Deployment, &key, CONTROLLERS, Part::Status, |d| {
                    meta::set_path(d, &["status", "collisionCount"], json!(collisions));
                });
                self.requeue(Work::Deployment(key));
                None
            }
            Err(_) => None,
        }
    }

    /// Gives the new set a revision above every old one (a rollback to an old template).
    fn sync_revision(&mut self, set: &Key, wanted: i64) {
        let Some(current) = self.cache.get(Kind::ReplicaSet, set).map(|s| revision(s)) else {
            return;
        };
        if current >= wanted {
            return;
        }
        self.update(Kind::ReplicaSet, set, CONTROLLERS, Part::Main, |set| {
            let history = meta::annotation(set, HISTORY).filter(|h| !h.is_empty());
            let history = match history {
                Some(history) => format!("{history},{current}"),
                None => current.to_string(),
            };
            meta::set_path(
                set,
                &["metadata", "annotations", REVISION],
                json!(wanted.to_string()),
            );
            if current > 0 {
                meta::set_path(set, &["metadata", "annotations", HISTORY], json!(history));
            }
        });
    }

    /// Sets a ReplicaSet's `spec.replicas`, with the Deployment's replica annotations.
    fn scale_set(&mut self, set: &Key, to: i64, deployment: &Json, strategy: Strategy) {
        let replicas = meta::count(&deployment["spec"]["replicas"], 1);
        self.update(Kind::ReplicaSet, set, CONTROLLERS, Part::Main, |set| {
            meta::set_path(set, &["spec", "replicas"], json!(to));
            meta::set_path(
                set,
                &["metadata", "annotations", DESIRED],
                json!(replicas.to_string()),
            );
            meta::set_path(
                set,
                &["metadata", "annotations", MAX],
                json!((replicas + strategy.surge()).to_string()),
            );
        });
    }

    /// Grows (or trims) the new set towards `replicas`; whether it changed.
    fn grow_new_set(&mut self, deployment: &Json, new: &Key, strategy: Strategy) -> bool {
        let replicas = meta::count(&deployment["spec"]["replicas"], 1);
        let Some(set) = self.cache.get(Kind::ReplicaSet, new) else {
            return false;
        };
        let current = replicas_of(set);
        let target = if current > replicas {
            replicas
        } else {
            let total: i64 = self
                .sets_of(deployment)
                .iter()
                .map(|s| replicas_of(s))
                .sum();
            new_set_replicas(strategy, replicas, total, current)
        };
        if target == current {
            return false;
        }
        self.scale_set(new, target, deployment, strategy);
        true
    }

    /// Shrinks the old sets as far as `maxUnavailable` allows.
    fn shrink_old_sets(&mut self, deployment: &Json, new: &Key, strategy: Strategy) {
        let replicas = meta::count(&deployment["spec"]["replicas"], 1);
        let sets = self.sets_of(deployment);
        let (new_sets, old_sets): (Vec<_>, Vec<_>) =
            sets.iter().partition(|s| meta::key_of(s) == *new);
        let as_old = |s: &Json| OldSet {
            spec: replicas_of(s),
            available: status_count(s, "availableReplicas"),
        };
        let new_set = new_sets.first().map_or(
            OldSet {
                spec: 0,
                available: 0,
            },
            |s| as_old(s),
        );
        let old: Vec<OldSet> = old_sets.iter().map(|s| as_old(s)).collect();
        let targets = shrink_old(&old, new_set, replicas, strategy.max_unavailable(replicas));
        for (set, target) in old_sets.iter().zip(targets) {
            if target != replicas_of(set) {
                self.scale_set(&meta::key_of(set), target, deployment, strategy);
            }
        }
    }

    /// The Recreate strategy: every old pod gone before the new set grows.
    fn recreate(
        &mut self,
        deployment: &Json,
        new: Option<Key>,
        revision: i64,
        conditions: &mut Vec<Value>,
    ) -> Option<Key> {
        let strategy = Strategy::Recreate;
        let old: Vec<Arc<Json>> = self
            .sets_of(deployment)
            .into_iter()
            .filter(|s| new.as_ref() != Some(&meta::key_of(s)))
            .collect();
        let mut scaled = false;
        for set in old.iter().filter(|s| replicas_of(s) > 0) {
            self.scale_set(&meta::key_of(set), 0, deployment, strategy);
            scaled = true;
        }
        let running = old.iter().any(|s| {
            status_count(s, "replicas") > 0
                || self
                    .cache
                    .pods_of(meta::uid(s))
                    .any(|(_, p)| !meta::finished(p))
        });
        if scaled || running {
            return new;
        }
        let new = match new {
            Some(new) => {
                self.sync_revision(&new, revision);
                new
            }
            None => self.create_new_set(deployment, strategy, revision, conditions)?,
        };
        self.grow_new_set(deployment, &new, strategy);
        Some(new)
    }

    /// Deletes old, empty sets beyond `revisionHistoryLimit` (10) once the rollout is done.
    fn clean_up_history(&mut self, deployment: &Json, new: Option<&Key>) {
        let status = &deployment["status"];
        let replicas = meta::count(&deployment["spec"]["replicas"], 1);
        let complete = ["updatedReplicas", "replicas", "availableReplicas"]
            .iter()
            .all(|f| status[*f].as_i64().unwrap_or(0) == replicas)
            && status["observedGeneration"].as_i64().unwrap_or(0) >= meta::generation(deployment);
        if !complete {
            return;
        }
        let limit = meta::count(&deployment["spec"]["revisionHistoryLimit"], 10);
        let mut old: Vec<Arc<Json>> = self
            .sets_of(deployment)
            .into_iter()
            .filter(|s| new != Some(&meta::key_of(s)))
            .collect();
        let surplus = old.len() as i64 - limit;
        if surplus <= 0 {
            return;
        }
        old.sort_by_key(|s| revision(s));
        for set in old.iter().take(surplus as usize) {
            let idle = replicas_of(set) == 0
                && status_count(set, "replicas") == 0
                && status_count(set, "observedGeneration") >= meta::generation(set);
            if idle {
                self.delete(Kind::ReplicaSet, &meta::key_of(set), None);
            }
        }
    }

    /// Writes the Deployment's revision annotation and status, if they changed.
    fn write_deployment_status(
        &mut self,
        key: &Key,
        deployment: &Json,
        new: Option<&Key>,
        strategy: Strategy,
        conditions: Vec<Value>,
    ) {
        // The sync may have written the Deployment (revision, collision count): use that.
        let latest = self.cache.get(Kind::Deployment, key).cloned();
        let deployment = latest.as_deref().unwrap_or(deployment);
        let sets = self.sets_of(deployment);
        let new_set = new.and_then(|k| sets.iter().find(|s| meta::key_of(s) == *k));
        if let Some(set) = new_set {
            let wanted = revision(set).to_string();
            if meta::annotation(deployment, REVISION) != Some(wanted.as_str()) {
                self.update(Kind::Deployment, key, CONTROLLERS, Part::Main, |d| {
                    meta::set_path(d, &["metadata", "annotations", REVISION], json!(wanted));
                });
            }
        }
        let counts = Counts {
            replicas: sets.iter().map(|s| status_count(s, "replicas")).sum(),
            updated: new_set.map_or(0, |s| status_count(s, "replicas")),
            ready: sets.iter().map(|s| status_count(s, "readyReplicas")).sum(),
            available: sets
                .iter()
                .map(|s| status_count(s, "availableReplicas"))
                .sum(),
            spec_total: sets.iter().map(|s| replicas_of(s)).sum(),
        };
        let now = self.now();
        let name = new_set.map(|s| meta::name(s).to_owned());
        let status = deployment_status(
            deployment,
            name.as_deref(),
            counts,
            strategy,
            conditions,
            now,
        );
        if let Some(at) = super::rolling_update::deadline_check(deployment, &status) {
            self.timers.schedule(Work::Deployment(key.clone()), at);
        }
        if status != deployment["status"] {
            self.update(Kind::Deployment, key, CONTROLLERS, Part::Status, |d| {
                d["status"] = status
            });
        }
    }
}
