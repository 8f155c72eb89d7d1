//! What every reconcile shares: the client, the clock, the caches, the pod watches, the
//! metrics, the event recorder, and the eviction back-off of pods being drained.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use jiff::Timestamp;
use k8s_openapi::api::{
    apps::v1::{DaemonSet, Deployment, StatefulSet},
    batch::v1::Job,
    core::v1::{Namespace, Node},
};
use kube::{
    Client,
    core::PartialObjectMeta,
    runtime::{events::Recorder, reflector::Store},
};

use super::{caches::Caches, metrics::Metrics, podwatch::PodWatches};
use crate::{
    api::{MaintenanceWindow, PatchPolicy, PatchRollout},
    clock::SharedClock,
};

/// The field manager of every write the operator makes.
pub const MANAGER: &str = "patchpilot";

/// Writes the status of the cluster-scoped object `name` with server-side apply, as the
/// field manager [`MANAGER`], taking over any field another manager held.
pub async fn apply_status<K>(
    client: &Client,
    name: &str,
    status: &impl serde::Serialize,
) -> super::error::Result<()>
where
    K: kube::Resource<Scope = k8s_openapi::ClusterResourceScope, DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned,
{
    let body = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "metadata": {"name": name},
        "status": status,
    });
    kube::Api::<K>::all(client.clone())
        .patch_status(
            name,
            &kube::api::PatchParams::apply(MANAGER).force(),
            &kube::api::Patch::Apply(body),
        )
        .await
        .map(|_| ())
        .map_err(|e| {
            super::error::Error::api(format!("write the status of {} {name}", K::kind(&())), e)
        })
}

/// Read handles of every cache.
#[derive(Clone)]
pub struct Stores {
    /// PatchPolicies.
    pub policies: Store<PatchPolicy>,
    /// PatchRollouts.
    pub rollouts: Store<PatchRollout>,
    /// MaintenanceWindows.
    pub windows: Store<MaintenanceWindow>,
    /// Every node's metadata.
    pub nodes: Store<PartialObjectMeta<Node>>,
    /// Every namespace's metadata.
    pub namespaces: Store<PartialObjectMeta<Namespace>>,
    /// Every Deployment's metadata.
    pub deployments: Store<PartialObjectMeta<Deployment>>,
    /// Every StatefulSet's metadata.
    pub statefulsets: Store<PartialObjectMeta<StatefulSet>>,
    /// Every DaemonSet's metadata.
    pub daemonsets: Store<PartialObjectMeta<DaemonSet>>,
    /// Nodes in progress.
    pub locked_nodes: Store<Node>,
    /// Deployments in progress.
    pub locked_deployments: Store<Deployment>,
    /// StatefulSets in progress.
    pub locked_statefulsets: Store<StatefulSet>,
    /// DaemonSets in progress.
    pub locked_daemonsets: Store<DaemonSet>,
    /// patchpilot's Jobs.
    pub jobs: Store<Job>,
}

impl Stores {
    /// The read handles of `caches`.
    pub fn of(caches: &Caches) -> Self {
        Stores {
            policies: caches.policies.store.clone(),
            rollouts: caches.rollouts.store.clone(),
            windows: caches.windows.store.clone(),
            nodes: caches.nodes.store.clone(),
            namespaces: caches.namespaces.store.clone(),
            deployments: caches.deployments.store.clone(),
            statefulsets: caches.statefulsets.store.clone(),
            daemonsets: caches.daemonsets.store.clone(),
            locked_nodes: caches.locked_nodes.store.clone(),
            locked_deployments: caches.locked_deployments.store.clone(),
            locked_statefulsets: caches.locked_statefulsets.store.clone(),
            locked_daemonsets: caches.locked_daemonsets.store.clone(),
            jobs: caches.jobs.store.clone(),
        }
    }
}

/// How a pod's evictions have gone.
#[derive(Clone, Debug)]
pub struct EvictionState {
    /// Do not try again before this instant.
    pub next_try: Timestamp,
    /// The current back-off.
    pub interval: jiff::SignedDuration,
    /// The PodDisruptionBudget that refused the last eviction.
    pub blocked_by: Option<String>,
}

/// What every reconcile shares.
pub struct Context {
    /// The Kubernetes client.
    pub client: Client,
    /// Where "now" comes from.
    pub clock: SharedClock,
    /// The caches.
    pub stores: Stores,
    /// Pods of targets in progress.
    pub pods: PodWatches,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Events.
    pub recorder: Recorder,
    /// Eviction back-off by `namespace/pod`.
    pub evictions: Mutex<HashMap<String, EvictionState>>,
    /// The HTTP client of health checks.
    pub http: super::rollout::health::HttpClient,
    /// Becomes true once every cache has its first full list.
    pub ready: tokio::sync::watch::Receiver<bool>,
}

impl Context {
    /// Reconcile again at `at` (by this context's clock), or only when something changes.
    pub fn requeue_at(&self, at: Option<Timestamp>) -> kube::runtime::controller::Action {
        use kube::runtime::controller::Action;
        match at {
            Some(at) => Action::requeue(
                self.clock
                    .sleep_for(at)
                    .max(std::time::Duration::from_millis(1)),
            ),
            None => Action::await_change(),
        }
    }

    /// Waits until every cache has its first full list. A reconcile must not judge from
    /// half-filled caches: a rollout deciding before the nodes are listed would see no
    /// targets and call itself done.
    pub async fn until_ready(&self) {
        let mut ready = self.ready.clone();
        let _ = ready.wait_for(|ready| *ready).await;
    }

    /// The eviction state of a pod.
    pub fn eviction(&self, pod: &str) -> Option<EvictionState> {
        self.evictions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(pod)
            .cloned()
    }

    /// Records the outcome of an eviction attempt.
    pub fn set_eviction(&self, pod: &str, state: Option<EvictionState>) {
        let mut evictions = self.evictions.lock().unwrap_or_else(|p| p.into_inner());
        match state {
            Some(state) => evictions.insert(pod.to_owned(), state),
            None => evictions.remove(pod),
        };
    }
}
