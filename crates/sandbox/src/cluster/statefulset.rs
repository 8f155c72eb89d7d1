//! The StatefulSet controller: pods `<set>-<ordinal>` created in order (each waiting for the
//! previous to be Running and Ready, unless `podManagementPolicy: Parallel`), removed from
//! the highest ordinal down, and rolled from the highest ordinal down to `partition`, one at
//! a time, each replacement waiting for the previous to turn Ready. Revisions are
//! `<set>-<hash of the template>`, in the pods' `controller-revision-hash` label and in
//! `status.currentRevision`/`updateRevision`.
//!
//! Templates of past revisions are kept in memory rather than in ControllerRevision objects;
//! volume claim templates and `maxUnavailable` are not simulated.

use std::{collections::BTreeMap, sync::Arc};

use serde_json::{Value, json};

use super::{
    informer::Kind,
    meta::{self, Key},
    sim::Sim,
    template::{PodName, pod_from_template, set_counts},
    work::Work,
    write::{CONTROLLERS, Part},
};
use crate::json::{Json, Object};

/// The label holding a pod's revision.
pub(super) const REVISION_LABEL: &str = "controller-revision-hash";

/// The ordinal of a pod of set `set`, from its name.
pub(super) fn ordinal(set: &str, pod: &str) -> Option<i64> {
    let digits = pod.strip_prefix(set)?.strip_prefix('-')?;
    if digits.is_empty()
        || !digits.bytes().all(|b| b.is_ascii_digit())
        || (digits.len() > 1 && digits.starts_with('0'))
    {
        return None;
    }
    digits.parse().ok()
}

/// Whether a pod is Running and Ready.
fn healthy(pod: &Json) -> bool {
    meta::phase(pod) == "Running" && meta::pod_ready(pod) && !meta::terminating(pod)
}

/// What the StatefulSet controller does next with a set's pods, in its order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Step {
    /// Create the pod of this ordinal.
    Create(i64),
    /// Delete this pod (failed, beyond `replicas`, or of an old revision).
    Delete(i64),
    /// Wait for a pod to change.
    Wait,
}

/// The steps for the pods of a set (by ordinal) with `replicas` wanted, rolling to `update`
/// down to `partition` when `rolling`; `parallel` does not wait between pods.
pub(super) fn plan(
    pods: &BTreeMap<i64, Arc<Json>>,
    replicas: i64,
    update: &str,
    rolling: Option<i64>,
    parallel: bool,
) -> Vec<Step> {
    let mut steps = Vec::new();
    let ordered = !parallel;
    for ordinal in 0..replicas {
        match pods.get(&ordinal) {
            None => steps.push(Step::Create(ordinal)),
            Some(pod) if meta::finished(pod) && !meta::terminating(pod) => {
                steps.push(Step::Delete(ordinal))
            }
            Some(pod) if healthy(pod) => continue,
            Some(_) => steps.push(Step::Wait),
        }
        if ordered {
            return steps;
        }
    }
    for (ordinal, pod) in pods.range(replicas..).rev() {
        if meta::terminating(pod) {
            steps.push(Step::Wait);
        } else {
            steps.push(Step::Delete(*ordinal));
        }
        if ordered {
            return steps;
        }
    }
    if !steps.is_empty() && ordered {
        return steps;
    }
    let Some(partition) = rolling else {
        return steps;
    };
    for ordinal in (partition.max(0)..replicas).rev() {
        let Some(pod) = pods.get(&ordinal) else {
            continue;
        };
        if meta::label(pod, REVISION_LABEL) != Some(update) && !meta::terminating(pod) {
            steps.push(Step::Delete(ordinal));
            return steps;
        }
        if !healthy(pod) {
            steps.push(Step::Wait);
            return steps;
        }
    }
    steps
}

impl Sim {
    /// Reconciles a StatefulSet.
    pub fn sync_stateful_set(&mut self, key: &Key) {
        let Some(set) = self.cache.get(Kind::StatefulSet, key).cloned() else {
            self.revisions.retain(|(k, _), _| k != key);
            return;
        };
        if meta::terminating(&set) {
            return;
        }
        let name = meta::name(&set).to_owned();
        let spec = &set["spec"];
        let replicas = meta::count(&spec["replicas"], 1);
        let template = if spec["template"].is_object() {
            spec["template"].to_value()
        } else {
            json!({})
        };
        let update = format!(
            "{name}-{}",
            meta::template_hash(
                &template,
                Some(set["status"]["collisionCount"].as_i64().unwrap_or(0))
            )
        );
        self.revisions
            .insert((key.clone(), update.clone()), template);
        let current = set["status"]["currentRevision"]
            .as_str()
            .filter(|r| !r.is_empty())
            .unwrap_or(&update)
            .to_owned();
        let rolling = (spec["updateStrategy"]["type"] != "OnDelete")
            .then(|| meta::count(&spec["updateStrategy"]["rollingUpdate"]["partition"], 0));
        let parallel = spec["podManagementPolicy"] == "Parallel";
        let pods = self.set_pods(&set);
        for step in plan(&pods, replicas, &update, rolling, parallel) {
            match step {
                Step::Create(ordinal) => {
                    let below_partition = rolling.is_some_and(|p| ordinal < p);
                    let revision = if below_partition { &current } else { &update };
                    self.create_set_pod(&set, ordinal, revision, &update);
                }
                Step::Delete(ordinal) => {
                    if let Some(pod) = pods.get(&ordinal) {
                        self.delete(Kind::Pod, &meta::key_of(pod), None);
                    }
                }
                Step::Wait => {}
            }
        }
        self.write_set_status(key, &update, &current, rolling.is_some());
    }

    /// A set's pods by ordinal; pods whose names carry no ordinal are deleted.
    fn set_pods(&mut self, set: &Json) -> BTreeMap<i64, Arc<Json>> {
        let name = meta::name(set);
        let mut pods = BTreeMap::new();
        let mut strays = Vec::new();
        for (key, pod) in self.cache.pods_of(meta::uid(set)) {
            match ordinal(name, &key.1) {
                Some(ordinal) => {
                    pods.insert(ordinal, pod.clone());
                }
                None if !meta::terminating(pod) => strays.push(key.clone()),
                None => {}
            }
        }
        for stray in strays {
            self.delete(Kind::Pod, &stray, None);
        }
        pods
    }

    /// Creates the pod of an ordinal at a revision (the update revision's template if the
    /// other one is not known).
    fn create_set_pod(&mut self, set: &Json, ordinal: i64, revision: &str, update: &str) {
        let key = meta::key_of(set);
        let (revision, template) = match self.revisions.get(&(key.clone(), revision.to_owned())) {
            Some(template) => (revision, template.clone()),
            None => match self.revisions.get(&(key.clone(), update.to_owned())) {
                Some(template) => (update, template.clone()),
                None => return,
            },
        };
        let name = format!("{}-{ordinal}", meta::name(set));
        let index = ordinal.to_string();
        let labels = [
            (REVISION_LABEL, revision),
            ("statefulset.kubernetes.io/pod-name", name.as_str()),
            ("apps.kubernetes.io/pod-index", index.as_str()),
        ];
        let mut pod = pod_from_template(set, &template, PodName::Fixed(&name), &labels, "Always");
        meta::set_path(&mut pod, &["spec", "hostname"], json!(name));
        if let Some(service) = set["spec"]["serviceName"]
            .as_str()
            .filter(|s| !s.is_empty())
        {
            meta::set_path(&mut pod, &["spec", "subdomain"], json!(service));
        }
        let _ = self.create(Kind::Pod, &key.0, pod, CONTROLLERS);
    }

    /// Writes a StatefulSet's status, completing the rollout when every pod is updated and
    /// Ready.
    fn write_set_status(&mut self, key: &Key, update: &str, current: &str, rolling: bool) {
        let Some(set) = self.cache.get(Kind::StatefulSet, key).cloned() else {
            return;
        };
        let now = self.now();
        let min_ready = meta::count(&set["spec"]["minReadySeconds"], 0);
        let (mut replicas, mut ready, mut available, mut at_current, mut at_update) =
            (0, 0, 0, 0, 0);
        for (_, pod) in self.cache.pods_of(meta::uid(&set)) {
            replicas += 1;
            if healthy(pod) {
                ready += 1;
                match meta::available_at(pod, min_ready) {
                    Some(at) if at <= now => available += 1,
                    Some(at) => self.timers.schedule(Work::StatefulSet(key.clone()), at),
                    None => {}
                }
            }
            if !meta::terminating(pod) {
                let revision = meta::label(pod, REVISION_LABEL);
                at_current += i64::from(revision == Some(current));
                at_update += i64::from(revision == Some(update));
            }
        }
        let (mut current, mut at_current) = (current.to_owned(), at_current);
        if rolling && at_update == replicas && ready == replicas {
            current = update.to_owned();
            at_current = at_update;
        }
        let mut status = set["status"]
            .as_object()
            .map(Object::to_map)
            .unwrap_or_default();
        status.insert("observedGeneration".into(), json!(meta::generation(&set)));
        set_counts(
            &mut status,
            &[
                ("replicas", replicas, true),
                ("readyReplicas", ready, false),
                ("currentReplicas", at_current, false),
                ("updatedReplicas", at_update, false),
                ("availableReplicas", available, true),
            ],
        );
        status.insert("currentRevision".into(), json!(current));
        status.insert("updateRevision".into(), json!(update));
        status.entry("collisionCount").or_insert(json!(0));
        let status = Value::Object(status);
        if status != set["status"] {
            self.update(Kind::StatefulSet, key, CONTROLLERS, Part::Status, |set| {
                set["status"] = status
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Test objects as the cluster follows them.
    macro_rules! json {
        ($($t:tt)+) => {
            crate::json::Json::from(serde_json::json!($($t)+))
        };
    }

    fn pod(ordinal: i64, revision: &str, ready: bool) -> (i64, Arc<Json>) {
        let status = if ready { "True" } else { "False" };
        (
            ordinal,
            Arc::new(json!({
                "metadata": {"name": format!("db-{ordinal}"), "labels": {REVISION_LABEL: revision}},
                "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": status}]},
            })),
        )
    }

    #[test]
    fn ordinals_come_from_names() {
        assert_eq!(ordinal("db", "db-0"), Some(0));
        assert_eq!(ordinal("db", "db-12"), Some(12));
        assert_eq!(ordinal("db", "db-01"), None);
        assert_eq!(ordinal("db", "dbx-1"), None);
        assert_eq!(ordinal("db", "db-"), None);
    }

    #[test]
    fn pods_come_in_order_each_waiting_for_the_previous() {
        let none = BTreeMap::new();
        assert_eq!(plan(&none, 3, "r2", Some(0), false), vec![Step::Create(0)]);
        assert_eq!(
            plan(&none, 3, "r2", Some(0), true),
            vec![Step::Create(0), Step::Create(1), Step::Create(2)]
        );
        let starting: BTreeMap<_, _> = [pod(0, "r2", false)].into();
        assert_eq!(plan(&starting, 3, "r2", Some(0), false), vec![Step::Wait]);
        let one: BTreeMap<_, _> = [pod(0, "r2", true)].into();
        assert_eq!(plan(&one, 3, "r2", Some(0), false), vec![Step::Create(1)]);
    }

    #[test]
    fn rolling_goes_from_the_top_down_to_the_partition() {
        let all_old: BTreeMap<_, _> =
            [pod(0, "r1", true), pod(1, "r1", true), pod(2, "r1", true)].into();
        assert_eq!(
            plan(&all_old, 3, "r2", Some(0), false),
            vec![Step::Delete(2)]
        );
        let top_new: BTreeMap<_, _> =
            [pod(0, "r1", true), pod(1, "r1", true), pod(2, "r2", false)].into();
        assert_eq!(plan(&top_new, 3, "r2", Some(0), false), vec![Step::Wait]);
        let top_ready: BTreeMap<_, _> =
            [pod(0, "r1", true), pod(1, "r1", true), pod(2, "r2", true)].into();
        assert_eq!(
            plan(&top_ready, 3, "r2", Some(0), false),
            vec![Step::Delete(1)]
        );
        assert_eq!(
            plan(&top_ready, 3, "r2", Some(2), false),
            Vec::<Step>::new()
        );
        assert_eq!(plan(&all_old, 3, "r2", None, false), Vec::<Step>::new());
        assert_eq!(
            plan(&all_old, 2, "r1", Some(0), false),
            vec![Step::Delete(2)]
        );
    }
}
