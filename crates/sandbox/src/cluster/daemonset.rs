//! The DaemonSet controller: one pod (`<set>-<5 chars>`) on every node the template fits,
//! cordoned ones included (its pods tolerate `unschedulable`, `not-ready`, `unreachable` and
//! the pressure taints), bound by node affinity on the node's name so the scheduler places
//! it. Rolling updates replace old pods node by node within `maxUnavailable` (default 1);
//! `OnDelete` waits for someone to delete them.
//!
//! Not simulated: `maxSurge`, the backoff before replacing failed pods.

use std::{collections::BTreeMap, sync::Arc};

use serde_json::{Value, json};

use super::{
    informer::Kind,
    meta::{self, Key},
    placement::{Needs, daemon_fit, daemon_tolerations},
    sim::Sim,
    template::{PodName, pod_from_template, set_counts},
    work::Work,
    write::{CONTROLLERS, Part},
};
use crate::json::{Json, Object};

/// The node a DaemonSet pod is for: where it runs, or the node its affinity names.
fn target_node(pod: &Json) -> Option<&str> {
    if let Some(node) = pod["spec"]["nodeName"].as_str().filter(|n| !n.is_empty()) {
        return Some(node);
    }
    Needs::of(&pod["spec"]).node_names()?.first().copied()
}

/// The template's spec with the DaemonSet's tolerations added.
fn daemon_spec(template: &Value) -> Value {
    let mut spec = if template["spec"].is_object() {
        template["spec"].clone()
    } else {
        json!({})
    };
    let mut tolerations = spec["tolerations"].as_array().cloned().unwrap_or_default();
    for extra in daemon_tolerations() {
        if !tolerations.contains(&extra) {
            tolerations.push(extra);
        }
    }
    spec["tolerations"] = Value::Array(tolerations);
    spec
}

/// How the pods of one node stand.
#[derive(Debug, Default)]
struct NodePods {
    /// Neither finished nor being deleted.
    active: Vec<Arc<Json>>,
    /// Failed or succeeded, not yet deleted.
    finished: Vec<Arc<Json>>,
    /// Being deleted.
    terminating: usize,
}

impl Sim {
    /// Reconciles a DaemonSet.
    pub fn sync_daemon_set(&mut self, key: &Key) {
        let Some(set) = self.cache.get(Kind::DaemonSet, key).cloned() else {
            return;
        };
        if meta::terminating(&set) {
            return;
        }
        let template = if set["spec"]["template"].is_object() {
            set["spec"]["template"].to_value()
        } else {
            json!({})
        };
        let hash = meta::template_hash(
            &template,
            Some(set["status"]["collisionCount"].as_i64().unwrap_or(0)),
        );
        let spec = daemon_spec(&template);
        let read_spec = Json::from(&spec);
        let needs = Needs::of(&read_spec);
        let mut by_node: BTreeMap<String, NodePods> = BTreeMap::new();
        let mut strays = Vec::new();
        for (pod_key, pod) in self.cache.pods_of(meta::uid(&set)) {
            let Some(node) = target_node(pod) else {
                strays.push(pod_key.clone());
                continue;
            };
            let entry = by_node.entry(node.to_owned()).or_default();
            if meta::terminating(pod) {
                entry.terminating += 1;
            } else if meta::finished(pod) {
                entry.finished.push(pod.clone());
            } else {
                entry.active.push(pod.clone());
            }
        }
        let mut create = Vec::new();
        let mut delete: Vec<Key> = strays;
        let mut eligible: Vec<(String, Arc<Json>)> = Vec::new();
        for (node_key, node) in self.cache.all(Kind::Node) {
            let name = &node_key.1;
            let (run, stay) = daemon_fit(&needs, node);
            let pods = by_node.remove(name).unwrap_or_default();
            delete.extend(pods.finished.iter().map(meta::key_of));
            if run {
                // One pod per node: the updated, Ready one stays, others go.
                let mut active = pods.active;
                active.sort_by_key(|p| {
                    (
                        meta::label(p, "controller-revision-hash") != Some(hash.as_str()),
                        !meta::pod_ready(p),
                    )
                });
                match active.split_first() {
                    None => create.push(name.clone()),
                    Some((kept, extra)) => {
                        delete.extend(extra.iter().map(meta::key_of));
                        eligible.push((name.clone(), kept.clone()));
                    }
                }
            } else if !stay {
                delete.extend(pods.active.iter().map(meta::key_of));
            }
        }
        for pods in by_node.values() {
            delete.extend(pods.active.iter().chain(&pods.finished).map(meta::key_of));
        }
        if set["spec"]["updateStrategy"]["type"] != "OnDelete" {
            let desired = (eligible.len() + create.len()) as i64;
            delete.extend(self.replaceable(&set, &eligible, create.len(), &hash, desired));
        }
        for node in create {
            self.create_daemon_pod(&set, &template, &spec, &node, &hash);
        }
        for pod in delete {
            self.delete(Kind::Pod, &pod, None);
        }
        self.write_daemon_status(key, &hash);
    }

    /// The old pods a rolling update may delete now: unavailable ones, then available ones
    /// while fewer than `maxUnavailable` nodes lack an available pod.
    fn replaceable(
        &self,
        set: &Json,
        eligible: &[(String, Arc<Json>)],
        missing: usize,
        hash: &str,
        desired: i64,
    ) -> Vec<Key> {
        let now = self.now();
        let min_ready = meta::count(&set["spec"]["minReadySeconds"], 0);
        let max_unavailable = meta::scaled(
            &set["spec"]["updateStrategy"]["rollingUpdate"]["maxUnavailable"],
            desired,
            true,
        )
        .unwrap_or(1)
        .max(1);
        let mut unavailable = missing as i64;
        let (mut free, mut candidates) = (Vec::new(), Vec::new());
        for (_, pod) in eligible {
            let current = meta::label(pod, "controller-revision-hash") == Some(hash);
            let ok = meta::available(pod, min_ready, now);
            match (current, ok) {
                (true, true) => {}
                (true, false) => unavailable += 1,
                (false, false) => free.push(meta::key_of(pod)),
                (false, true) => candidates.push(meta::key_of(pod)),
            }
        }
        let room = (max_unavailable - unavailable).max(0) as usize;
        free.extend(candidates.into_iter().take(room));
        free
    }

    /// Creates the pod of a node.
    fn create_daemon_pod(
        &mut self,
        set: &Json,
        template: &Value,
        spec: &Value,
        node: &str,
        hash: &str,
    ) {
        let generation = meta::generation(set).to_string();
        let labels = [
            ("controller-revision-hash", hash),
            ("pod-template-generation", generation.as_str()),
        ];
        let mut template = template.clone();
        template["spec"] = spec.clone();
        let prefix = format!("{}-", meta::name(set));
        let mut pod = pod_from_template(
            set,
            &template,
            PodName::Generated(&prefix),
            &labels,
            "Always",
        );
        let affinity = json!({"nodeSelectorTerms": [{"matchFields": [
            {"key": "metadata.name", "operator": "In", "values": [node]}
        ]}]});
        meta::set_path(
            &mut pod,
            &[
                "spec",
                "affinity",
                "nodeAffinity",
                "requiredDuringSchedulingIgnoredDuringExecution",
            ],
            affinity,
        );
        let _ = self.create(Kind::Pod, meta::namespace(set), pod, CONTROLLERS);
    }

    /// Writes a DaemonSet's status, if it changed.
    fn write_daemon_status(&mut self, key: &Key, hash: &str) {
        let Some(set) = self.cache.get(Kind::DaemonSet, key).cloned() else {
            return;
        };
        let now = self.now();
        let min_ready = meta::count(&set["spec"]["minReadySeconds"], 0);
        let template = if set["spec"]["template"].is_object() {
            set["spec"]["template"].to_value()
        } else {
            json!({})
        };
        let spec = daemon_spec(&template);
        let read_spec = Json::from(&spec);
        let needs = Needs::of(&read_spec);
        let mut by_node: BTreeMap<&str, Vec<&Arc<Json>>> = BTreeMap::new();
        let pods: Vec<Arc<Json>> = self
            .cache
            .pods_of(meta::uid(&set))
            .map(|(_, p)| p.clone())
            .collect();
        for pod in &pods {
            if let Some(node) = target_node(pod) {
                by_node.entry(node).or_default().push(pod);
            }
        }
        let (mut desired, mut current, mut misscheduled, mut ready, mut available, mut updated) =
            (0, 0, 0, 0, 0, 0);
        let mut next = None;
        for (node_key, node) in self.cache.all(Kind::Node) {
            let (run, _) = daemon_fit(&needs, node);
            let pods = by_node
                .get(node_key.1.as_str())
                .map_or(&[][..], Vec::as_slice);
            if !run {
                misscheduled += i64::from(!pods.is_empty());
                continue;
            }
            desired += 1;
            current += i64::from(!pods.is_empty());
            for pod in pods {
                if meta::pod_ready(pod) {
                    ready += 1;
                    match meta::available_at(pod, min_ready) {
                        Some(at) if at <= now => available += 1,
                        Some(at) => next = Some(at),
                        None => {}
                    }
                }
                updated += i64::from(meta::label(pod, "controller-revision-hash") == Some(hash));
            }
        }
        if let Some(at) = next {
            self.timers.schedule(Work::DaemonSet(key.clone()), at);
        }
        let mut status = set["status"]
            .as_object()
            .map(Object::to_map)
            .unwrap_or_default();
        status.insert("observedGeneration".into(), json!(meta::generation(&set)));
        set_counts(
            &mut status,
            &[
                ("currentNumberScheduled", current, true),
                ("numberMisscheduled", misscheduled, true),
                ("desiredNumberScheduled", desired, true),
                ("numberReady", ready, true),
                ("updatedNumberScheduled", updated, false),
                ("numberAvailable", available, false),
                ("numberUnavailable", (desired - available).max(0), false),
            ],
        );
        let status = Value::Object(status);
        if status != set["status"] {
            self.update(Kind::DaemonSet, key, CONTROLLERS, Part::Status, |set| {
                set["status"] = status
            });
        }
    }
}

/// Whether a pod tolerates the cordon taint (DaemonSet pods do).
#[cfg(test)]
fn tolerates_cordon(pod_spec: &Json) -> bool {
    pod_spec["tolerations"].as_array().is_some_and(|ts| {
        ts.iter()
            .any(|t| super::placement::tolerates(t, &super::placement::CORDON))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::placement::REQUIRED;
    use serde_json::json;

    #[test]
    fn daemon_pods_tolerate_cordons_and_target_their_node() {
        let spec =
            daemon_spec(&json!({"spec": {"tolerations": [{"key": "own", "operator": "Exists"}]}}));
        assert!(tolerates_cordon(&Json::from(&spec)));
        assert_eq!(spec["tolerations"][0]["key"], "own");
        let again = daemon_spec(&json!({"spec": spec.clone()}));
        assert_eq!(
            again["tolerations"].as_array().map(Vec::len),
            spec["tolerations"].as_array().map(Vec::len)
        );
        let terms = json!({"nodeSelectorTerms": [{"matchFields": [
            {"key": "metadata.name", "operator": "In", "values": ["n3"]}
        ]}]});
        let pod = Json::from(json!({"spec": {"affinity": {"nodeAffinity": {REQUIRED: terms}}}}));
        assert_eq!(target_node(&pod), Some("n3"));
        let bound = Json::from(json!({"spec": {"nodeName": "n1"}}));
        assert_eq!(target_node(&bound), Some("n1"));
        assert_eq!(target_node(&Json::from(json!({}))), None);
    }
}
