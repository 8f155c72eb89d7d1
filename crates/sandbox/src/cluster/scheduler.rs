//! kube-scheduler: binds every pod without a node to one that fits it, spreading the pods of
//! one owner over nodes (fewest pods of that owner, then fewest pods, then name). A pod no
//! node fits stays Pending with `PodScheduled=False`, reason `Unschedulable`, and is tried
//! again whenever nodes change or pods leave them.
//!
//! Like the real scheduler at scale, it scores a bounded number of feasible nodes per pod
//! (the least loaded ones), so one pass over many pods and nodes stays fast.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Value, json};

use super::{
    informer::Kind,
    meta::{self, Key},
    placement::{Misfit, Needs},
    sim::Sim,
    write::{Part, SCHEDULER},
};
use crate::json::Json;

/// How many feasible nodes are scored for one pod before the best of them is taken.
const SCORED: usize = 100;

/// Pods of one owner per node, within a pass.
type Spread = HashMap<String, usize>;

impl Sim {
    /// One scheduling pass over every pod waiting for a node.
    pub fn schedule(&mut self) {
        let waiting: Vec<Key> = self.cache.unbound().iter().cloned().collect();
        let mut hopeless: HashMap<u32, String> = HashMap::new();
        let mut spreads: HashMap<String, Spread> = HashMap::new();
        for key in waiting {
            let Some(pod) = self.cache.get(Kind::Pod, &key).cloned() else {
                continue;
            };
            let scheduler = pod["spec"]["schedulerName"]
                .as_str()
                .unwrap_or("default-scheduler");
            if scheduler != "default-scheduler" {
                continue;
            }
            let needs = Needs::of(&pod["spec"]);
            let class = needs.class();
            if let Some(message) = hopeless.get(&class).cloned() {
                self.unschedulable(&key, &pod, &message);
                continue;
            }
            let owner = meta::controller_of(&pod).map(|c| c.uid.to_owned());
            if let Some(owner) = &owner
                && !spreads.contains_key(owner)
            {
                let spread = self.spread_of(owner);
                spreads.insert(owner.clone(), spread);
            }
            let spread = owner.as_ref().and_then(|o| spreads.get(o));
            match self.choose(&needs, spread) {
                Some(node) => {
                    if self.bind(&key, &node)
                        && let Some(spread) = owner.as_ref().and_then(|o| spreads.get_mut(o))
                    {
                        *spread.entry(node).or_default() += 1;
                    }
                }
                None => {
                    let message = self.why_not(&needs);
                    self.unschedulable(&key, &pod, &message);
                    hopeless.insert(class, message);
                }
            }
        }
    }

    /// How many pods of an owner each node holds.
    fn spread_of(&self, owner: &str) -> Spread {
        let mut spread = Spread::new();
        for (_, pod) in self.cache.pods_of(owner) {
            if let Some(node) = pod["spec"]["nodeName"].as_str()
                && !meta::finished(pod)
            {
                *spread.entry(node.to_owned()).or_default() += 1;
            }
        }
        spread
    }

    /// The best node for a pod: fewest pods of its owner, then fewest pods, then name.
    fn choose(&self, needs: &Needs<'_>, spread: Option<&Spread>) -> Option<String> {
        let same_owner = |node: &str| spread.and_then(|s| s.get(node)).copied().unwrap_or(0);
        let mut best: Option<(usize, usize, String)> = None;
        if let Some(names) = needs.node_names() {
            for name in names {
                let load = self.cache.load(name);
                if let Some(node) = self.cache.node(name)
                    && needs.fit(node, load).is_ok()
                {
                    better(&mut best, (same_owner(name), load), name);
                }
            }
        } else {
            let mut scored = 0;
            for (load, name) in self.cache.by_load() {
                let Some(node) = self.cache.node(name) else {
                    continue;
                };
                if needs.fit(node, *load).is_err() {
                    continue;
                }
                better(&mut best, (same_owner(name), *load), name);
                scored += 1;
                // Nodes come least loaded first: one without pods of the owner is the best.
                if same_owner(name) == 0 || scored >= SCORED {
                    break;
                }
            }
        }
        best.map(|(_, _, name)| name)
    }

    /// The scheduler's message for a pod no node fits.
    fn why_not(&self, needs: &Needs<'_>) -> String {
        let mut reasons: BTreeMap<Misfit, usize> = BTreeMap::new();
        let names = needs.node_names();
        for (key, node) in self.cache.all(Kind::Node) {
            let misfit = match &names {
                Some(names) if !names.contains(&key.1.as_str()) => Misfit::Affinity,
                _ => match needs.fit(node, self.cache.load(&key.1)) {
                    Ok(()) => continue,
                    Err(misfit) => misfit,
                },
            };
            *reasons.entry(misfit).or_default() += 1;
        }
        let mut parts: Vec<String> = reasons
            .iter()
            .map(|(misfit, n)| format!("{n} {}", misfit.reason()))
            .collect();
        parts.sort();
        let total = self.cache.count(Kind::Node);
        let mut message = format!("0/{total} nodes are available");
        if !parts.is_empty() {
            message.push_str(": ");
            message.push_str(&parts.join(", "));
        }
        message.push_str(&format!(
            ". preemption: 0/{total} nodes are available: \
             {total} Preemption is not helpful for scheduling."
        ));
        message
    }

    /// Binds a pod to a node, as the scheduler's binding does: `spec.nodeName` and
    /// `PodScheduled=True`. Whether it bound.
    fn bind(&mut self, key: &Key, node: &str) -> bool {
        let now = meta::time(self.now());
        let mut bound = false;
        self.update(Kind::Pod, key, SCHEDULER, Part::Main, |pod| {
            if pod["spec"]["nodeName"]
                .as_str()
                .is_some_and(|n| !n.is_empty())
                || meta::terminating(pod)
            {
                return;
            }
            meta::set_path(pod, &["spec", "nodeName"], json!(node));
            let mut conditions = meta::conditions_of(pod);
            meta::set_condition(&mut conditions, scheduled("True", None, &now));
            meta::merge_status(
                pod,
                [("conditions".to_owned(), Value::Array(conditions))]
                    .into_iter()
                    .collect(),
            );
            bound = true;
        });
        bound
    }

    /// Records why a pod waits, unless it already says so.
    fn unschedulable(&mut self, key: &Key, pod: &Json, message: &str) {
        let current = meta::condition(pod, "PodScheduled");
        if current.is_some_and(|c| {
            c["status"] == "False" && c["reason"] == "Unschedulable" && c["message"] == message
        }) {
            return;
        }
        let now = meta::time(self.now());
        self.update(Kind::Pod, key, SCHEDULER, Part::Status, |pod| {
            let mut conditions = meta::conditions_of(pod);
            meta::set_condition(&mut conditions, scheduled("False", Some(message), &now));
            let mut status = serde_json::Map::new();
            status.insert("conditions".into(), Value::Array(conditions));
            if pod["status"]["phase"].is_null() {
                status.insert("phase".into(), json!("Pending"));
            }
            meta::merge_status(pod, status);
        });
    }
}

/// Keeps the better of the best node so far and `name` with its score.
fn better(best: &mut Option<(usize, usize, String)>, score: (usize, usize), name: &str) {
    if best
        .as_ref()
        .is_none_or(|(o, l, n)| (score.0, score.1, name) < (*o, *l, n.as_str()))
    {
        *best = Some((score.0, score.1, name.to_owned()));
    }
}

/// A `PodScheduled` condition: `True`, or `False` with the scheduler's message.
fn scheduled(status: &str, message: Option<&str>, now: &str) -> Value {
    let mut condition = json!({
        "type": "PodScheduled",
        "status": status,
        "lastProbeTime": null,
        "lastTransitionTime": now,
    });
    if let Some(message) = message {
        condition["reason"] = json!("Unschedulable");
        condition["message"] = json!(message);
    }
    condition
}
