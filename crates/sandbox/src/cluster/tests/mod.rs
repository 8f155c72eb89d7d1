//! The simulated cluster against a store, on tokio's paused clock: objects go in through
//! the store, virtual time passes, and the results are read back the way kubectl and the
//! operator read them.

mod jobs;
mod nodes;
mod scale;
mod workloads;

use std::{sync::Arc, time::Duration};

use jiff::Timestamp;
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use super::{Cluster, ClusterFaults, Timings};
use crate::json::Json;
use crate::{
    resources::{Registry, ResourceType},
    store::{DeleteOptions, FieldValidation, Filter, Store, Write},
};
use patchpilot_clock::{SharedClock, VirtualClock};

/// A store with the cluster running on it.
pub(super) struct Harness {
    pub store: Arc<Store>,
    task: JoinHandle<()>,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A user's write, as kubectl or the operator makes them.
fn user() -> Write<'static> {
    Write {
        manager: "kubectl",
        subresource: None,
        dry_run: false,
        validation: FieldValidation::Ignore,
        internal: false,
        applied: false,
    }
}

impl Harness {
    /// A cluster with default timings and no faults.
    pub fn start() -> Self {
        Self::with(Timings::default(), ClusterFaults::default())
    }

    /// A cluster with these timings and faults, and the namespace `shop`.
    pub fn with(timings: Timings, faults: ClusterFaults) -> Self {
        let start: Timestamp = "2026-11-28T00:00:00Z".parse().unwrap();
        let clock: SharedClock = Arc::new(VirtualClock::new(start, 1.0));
        let store = Arc::new(Store::new(Registry::builtin(), clock));
        let namespaces = store.resource("", "v1", "namespaces").unwrap();
        let namespace =
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}});
        store
            .create(&namespaces, "", namespace, &Write::internal("test"))
            .unwrap();
        let task = tokio::spawn(Cluster::new(store.clone(), timings, faults).run());
        Harness { store, task }
    }

    /// The resource of a kind (`pods`, `deployments`, …).
    pub fn resource(&self, plural: &str) -> Arc<ResourceType> {
        let group = match plural {
            "deployments" | "replicasets" | "statefulsets" | "daemonsets" => "apps",
            "jobs" => "batch",
            "poddisruptionbudgets" => "policy",
            _ => "",
        };
        self.store.resource(group, "v1", plural).unwrap()
    }

    /// Adds nodes, as their kubelets register them.
    pub fn nodes(&self, names: &[&str]) {
        for name in names {
            self.node(name, json!({}));
        }
    }

    /// Adds a node with labels.
    pub fn node(&self, name: &str, labels: Value) {
        let metadata = json!({"name": name, "labels": labels});
        let node = json!({"apiVersion": "v1", "kind": "Node", "metadata": metadata});
        self.store
            .create(
                &self.resource("nodes"),
                "",
                node,
                &Write::internal("kubelet"),
            )
            .unwrap();
    }

    /// Creates an object in `shop` as a user.
    pub fn create(&self, plural: &str, object: Value) -> Arc<Json> {
        self.store
            .create(&self.resource(plural), "shop", object, &user())
            .unwrap()
            .object
    }

    /// An object of `shop` (or a node).
    pub fn get(&self, plural: &str, name: &str) -> Option<Arc<Json>> {
        let namespace = if plural == "nodes" { "" } else { "shop" };
        self.store.get(&self.resource(plural), namespace, name).ok()
    }

    /// Changes an object as a user.
    pub fn edit(&self, plural: &str, name: &str, change: impl FnOnce(&mut Value)) {
        let namespace = if plural == "nodes" { "" } else { "shop" };
        self.store
            .modify(&self.resource(plural), namespace, name, &user(), |old| {
                let mut object = old.cloned().unwrap();
                change(&mut object);
                Ok(object)
            })
            .unwrap();
    }

    /// Deletes an object as a user, with default options.
    pub fn delete(&self, plural: &str, name: &str) {
        let namespace = if plural == "nodes" { "" } else { "shop" };
        self.store
            .delete(
                &self.resource(plural),
                namespace,
                name,
                &DeleteOptions::default(),
            )
            .unwrap();
    }

    /// Every pod.
    pub fn pods(&self) -> Vec<Arc<Json>> {
        self.store
            .list(&self.resource("pods"), &Filter::default(), 0, None)
            .items
    }

    /// The pods whose name starts with `prefix`.
    pub fn pods_of(&self, prefix: &str) -> Vec<Arc<Json>> {
        self.pods()
            .into_iter()
            .filter(|p| name(p).starts_with(prefix))
            .collect()
    }

    /// Lets virtual time pass.
    pub async fn wait(&self, seconds: u64) {
        tokio::time::sleep(Duration::from_secs(seconds)).await;
    }
}

/// An object's name.
pub(super) fn name(object: &Json) -> &str {
    object["metadata"]["name"].as_str().unwrap_or("")
}

/// Whether a pod is Running and Ready.
pub(super) fn running_ready(pod: &Json) -> bool {
    pod["status"]["phase"] == "Running" && super::meta::pod_ready(pod)
}

/// The node a pod is bound to.
pub(super) fn node_of(pod: &Json) -> &str {
    pod["spec"]["nodeName"].as_str().unwrap_or("")
}

/// The image of a pod's first container.
pub(super) fn image_of(pod: &Json) -> &str {
    pod["spec"]["containers"][0]["image"].as_str().unwrap_or("")
}

/// A pod template with one container.
pub(super) fn template(app: &str, image: &str) -> Value {
    json!({
        "metadata": {"labels": {"app": app}},
        "spec": {"containers": [{"name": app, "image": image}]},
    })
}

/// A Deployment.
pub(super) fn deployment(name: &str, replicas: i64, image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": template(name, image),
        },
    })
}

/// How `kubectl rollout status` judges a Deployment: `Ok` when rolled out, else its message.
pub(super) fn deployment_rolled_out(d: &Json) -> Result<(), String> {
    let status = &d["status"];
    let count = |f: &str| status[f].as_i64().unwrap_or(0);
    if d["metadata"]["generation"].as_i64().unwrap_or(0) > count("observedGeneration") {
        return Err("waiting for the spec update to be observed".into());
    }
    let progressing = status["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == "Progressing"));
    if progressing.is_some_and(|c| c["reason"] == "ProgressDeadlineExceeded") {
        return Err("exceeded its progress deadline".into());
    }
    let replicas = d["spec"]["replicas"].as_i64().unwrap_or(1);
    if count("updatedReplicas") < replicas {
        return Err(format!(
            "{} out of {replicas} new replicas have been updated",
            count("updatedReplicas")
        ));
    }
    if count("replicas") > count("updatedReplicas") {
        return Err(format!(
            "{} old replicas are pending termination",
            count("replicas") - count("updatedReplicas")
        ));
    }
    if count("availableReplicas") < count("updatedReplicas") {
        return Err(format!(
            "{} of {} updated replicas are available",
            count("availableReplicas"),
            count("updatedReplicas")
        ));
    }
    Ok(())
}

/// A condition of an object by type.
pub(super) fn condition<'a>(object: &'a Json, kind: &str) -> Option<&'a Json> {
    super::meta::condition(object, kind)
}
