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
    policy::v1::PodDisruptionBudget,
};
use kube::{Client, runtime::reflector::Store};

use super::{
    caches::Caches, candidates::TargetMeta, events::Recorder, metrics::Metrics,
    podwatch::PodWatches,
};
use patchpilot_api::{MaintenanceWindow, Notifier, PatchPolicy, PatchRollout};
use patchpilot_clock::SharedClock;

/// The operator's own namespace (`POD_NAMESPACE`): where updater and health-check Jobs run
/// and where Notifiers' Secrets are read.
pub fn operator_namespace() -> String {
    std::env::var("POD_NAMESPACE").unwrap_or_else(|_| "patchpilot-system".into())
}

/// The field manager of every write the operator makes.
pub const MANAGER: &str = "patchpilot";

/// Creates `object` as the field manager [`MANAGER`]; one that exists already (the API
/// server says `AlreadyExists`) is no error: `Ok(false)`. Any other conflict is.
pub async fn create_once<K>(
    api: &kube::Api<K>,
    object: &K,
    what: &str,
) -> super::error::Result<bool>
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::Serialize + serde::de::DeserializeOwned,
{
    let params = kube::api::PostParams {
        field_manager: Some(MANAGER.into()),
        ..Default::default()
    };
    create_if_absent(api, &params, object)
        .await
        .map_err(|e| super::error::Error::api(format!("create {what}"), e))
}

/// Creates `object`: `Ok(true)`; one that exists already (the API server says
/// `AlreadyExists`) is no error: `Ok(false)`. Any other error, another conflict included, is
/// the client's.
pub async fn create_if_absent<K>(
    api: &kube::Api<K>,
    params: &kube::api::PostParams,
    object: &K,
) -> Result<bool, kube::Error>
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::Serialize + serde::de::DeserializeOwned,
{
    match api.create(params, object).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(status)) if status.reason == "AlreadyExists" => Ok(false),
        Err(e) => Err(e),
    }
}

/// Writes the status of the cluster-scoped object `name` with server-side apply, as the
/// field manager [`MANAGER`], taking over any field another manager held.
async fn apply_status<K>(
    client: &Client,
    name: &str,
    status: &serde_json::Value,
) -> super::error::Result<Option<String>>
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
        .map(|written| written.meta().resource_version.clone())
        .map_err(|e| {
            super::error::Error::api(format!("write the status of {} {name}", K::kind(&())), e)
        })
}

/// An object whose status the operator writes.
pub trait WithStatus:
    kube::Resource<Scope = k8s_openapi::ClusterResourceScope, DynamicType = ()>
    + Clone
    + std::fmt::Debug
    + serde::de::DeserializeOwned
{
    /// The status.
    type Status: serde::Serialize + PartialEq + Clone + Send + Sync + 'static;
    /// The status, if any.
    fn status(&self) -> Option<&Self::Status>;
    /// Replaces the status.
    fn set_status(&mut self, status: Self::Status);
}

macro_rules! with_status {
    ($($kind:ty => $status:ty),* $(,)?) => {$(
        impl WithStatus for $kind {
            type Status = $status;
            fn status(&self) -> Option<&$status> {
                self.status.as_ref()
            }
            fn set_status(&mut self, status: $status) {
                self.status = Some(status);
            }
        }
    )*};
}

with_status!(
    PatchPolicy => patchpilot_api::PatchPolicyStatus,
    PatchRollout => patchpilot_api::PatchRolloutStatus,
    MaintenanceWindow => patchpilot_api::MaintenanceWindowStatus,
    Notifier => patchpilot_api::NotifierStatus,
);

/// What the operator did to objects that its caches have not seen yet: a value per object,
/// with the resource versions a cache may still show that come before the operator's
/// action: the versions it acted on and, after several actions in a row, the versions its own
/// earlier writes produced. Resource versions are opaque, so "before" is only ever known
/// this way. A cache holding any other version reflects the action (or something newer).
///
/// Reading never forgets: a reconcile may run on a snapshot older than what another one
/// has already seen, and must still find the action. Entries are replaced by the next
/// action on the object, and dropped once older than [`Unseen::KEEP`], far longer than a
/// watch takes to bring a change.
struct Unseen<V>(Mutex<HashMap<String, Acted<V>>>);

struct Acted<V> {
    /// Versions of the object from before the action.
    before: Vec<String>,
    /// The version the action produced, when the server said.
    after: Option<String>,
    value: V,
    /// When the action was taken.
    at: Timestamp,
}

impl<V> Default for Unseen<V> {
    fn default() -> Self {
        Unseen(Mutex::default())
    }
}

impl<V: Clone> Unseen<V> {
    const KEEP: jiff::SignedDuration = jiff::SignedDuration::from_secs(120);

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Acted<V>>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The value of `key` while a cache holds `version`, one from before the action.
    fn get(&self, key: &str, version: Option<&str>) -> Option<V> {
        let map = self.lock();
        let acted = map.get(key)?;
        version
            .is_some_and(|v| acted.before.iter().any(|b| b == v))
            .then(|| acted.value.clone())
    }

    /// Records `value` for an action on `key` at `now`, taken while it was known at
    /// `versions` (the cached one, and one a fresh read gave), which produced the version
    /// `after` (if known); `None` forgets the key.
    fn set(
        &self,
        key: &str,
        versions: &[&str],
        after: Option<&str>,
        value: Option<V>,
        now: Timestamp,
    ) {
        let mut map = self.lock();
        let horizon = now.saturating_sub(Self::KEEP).unwrap_or(now);
        map.retain(|_, acted| acted.at >= horizon);
        let last = map.remove(key);
        let Some(value) = value.filter(|_| !versions.is_empty()) else {
            return;
        };
        let mut before = match last {
            // Acting again on a version from before the last action: the last action's
            // own version is now from before too.
            Some(last) if versions.iter().any(|v| last.before.iter().any(|b| b == v)) => {
                let mut before = last.before;
                before.extend(last.after);
                before
            }
            _ => Vec::new(),
        };
        for version in versions {
            if !before.iter().any(|b| b == version) {
                before.push((*version).to_owned());
            }
        }
        map.insert(
            key.to_owned(),
            Acted {
                before,
                after: after.map(str::to_owned),
                value,
                at: now,
            },
        );
    }
}

/// The last status the operator wrote to each object whose cached copy has not caught up
/// yet. Reconciles read their own writes through it: one that runs again before the cache has
/// seen the operator's write works from the status written, not from the one before it, so
/// it neither writes the same status twice nor undoes what it has just decided (such as a
/// target's pod watch).
#[derive(Default)]
pub struct WrittenStatuses(Unseen<Arc<dyn std::any::Any + Send + Sync>>);

impl WrittenStatuses {
    fn key<K: WithStatus>(object: &K) -> String {
        format!(
            "{}/{}",
            K::kind(&()),
            object.meta().uid.as_deref().unwrap_or_default()
        )
    }

    /// The status last written to `object`, while the cached `object` is still the version
    /// the write was based on.
    fn pending<K: WithStatus>(&self, object: &K) -> Option<K::Status> {
        let status = self.0.get(
            &Self::key(object),
            object.meta().resource_version.as_deref(),
        )?;
        status.downcast_ref::<K::Status>().cloned()
    }

    /// Remembers `status`, written at `now` to `object` as cached, which made version
    /// `written`; `None` forgets.
    fn remember<K: WithStatus>(
        &self,
        object: &K,
        written: Option<&str>,
        status: Option<K::Status>,
        now: Timestamp,
    ) {
        let versions: Vec<&str> = object
            .meta()
            .resource_version
            .as_deref()
            .into_iter()
            .collect();
        self.0.set(
            &Self::key(object),
            &versions,
            written,
            status.map(|s| Arc::new(s) as Arc<dyn std::any::Any + Send + Sync>),
            now,
        );
    }
}

/// What the operator last wrote to a target: patchpilot's annotations and, for a node,
/// `spec.unschedulable`, as the API server answered the write.
#[derive(Clone, Debug)]
pub struct TargetWrite {
    /// patchpilot's annotations after the write.
    pub annotations: Arc<std::collections::BTreeMap<String, String>>,
    /// The node's `spec.unschedulable` after the write.
    pub unschedulable: bool,
}

/// The operator's writes to targets that its caches have not seen yet, so that a reconcile
/// running right after a write (another rollout's, or the same one's again) decides from
/// the target as written: it does not lock a target twice, count a finished target as in
/// progress, or send the same write again. Two caches watch a target in progress (its
/// metadata, and the whole object), each at its own pace; both read the write back.
#[derive(Default)]
pub struct TargetWrites(Unseen<TargetWrite>);

impl TargetWrites {
    /// The last write to `target`, while a cache holds `version`, one from before it.
    pub fn get(&self, target: &str, version: Option<&str>) -> Option<TargetWrite> {
        self.0.get(target, version)
    }

    /// Remembers a write to `target` at `now`, made while it was known at `versions` (the
    /// cached ones, and the one a fresh read gave), which produced version `after`.
    pub fn remember(
        &self,
        target: &str,
        versions: &[&str],
        after: Option<&str>,
        write: TargetWrite,
        now: Timestamp,
    ) {
        self.0.set(target, versions, after, Some(write), now);
    }
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
    /// Notifiers.
    pub notifiers: Store<Notifier>,
    /// Every node's metadata.
    pub nodes: Store<TargetMeta<Node>>,
    /// Every namespace's metadata.
    pub namespaces: Store<TargetMeta<Namespace>>,
    /// Every Deployment's metadata.
    pub deployments: Store<TargetMeta<Deployment>>,
    /// Every StatefulSet's metadata.
    pub statefulsets: Store<TargetMeta<StatefulSet>>,
    /// Every DaemonSet's metadata.
    pub daemonsets: Store<TargetMeta<DaemonSet>>,
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
    /// Every PodDisruptionBudget.
    pub budgets: Store<PodDisruptionBudget>,
}

impl Stores {
    /// The read handles of `caches`.
    pub fn of(caches: &Caches) -> Self {
        Stores {
            policies: caches.policies.store.clone(),
            rollouts: caches.rollouts.store.clone(),
            windows: caches.windows.store.clone(),
            notifiers: caches.notifiers.store.clone(),
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
            budgets: caches.budgets.store.clone(),
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
    /// The PodDisruptionBudget (`namespace/name`) that refused the last eviction, or that
    /// would have.
    pub blocked_by: Option<String>,
    /// The rollout draining the pod's node.
    pub rollout: String,
}

/// How many evictions the operator asks for at once, all drains together: drains of
/// different nodes go together, and a slow API server must see a bounded number of them.
pub const EVICTIONS_IN_FLIGHT: usize = 32;

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
    /// Events, stamped by [`Context::clock`].
    pub recorder: Recorder,
    /// Eviction back-off by `namespace/pod`.
    pub evictions: Mutex<HashMap<String, EvictionState>>,
    /// Evictions in flight, across every drain of every rollout: at most
    /// [`EVICTIONS_IN_FLIGHT`] at once.
    pub evictions_in_flight: tokio::sync::Semaphore,
    /// The HTTP client of health checks.
    pub http: super::rollout::health::HttpClient,
    /// Becomes true once every cache has its first full list.
    pub ready: tokio::sync::watch::Receiver<bool>,
    /// The statuses last written, so that none is written twice.
    pub written: WrittenStatuses,
    /// Evictions made against each PodDisruptionBudget that the cached budget does not
    /// show yet.
    pub budgets_spent: Arc<super::rollout::budgets::Spent>,
    /// Writes to targets the caches have not seen yet.
    pub target_writes: TargetWrites,
    /// Jobs the operator created that the Job cache has not seen yet.
    pub jobs_created: Mutex<std::collections::HashSet<String>>,
    /// One guard per policy: the rollouts of a policy decide one at a time, so that what
    /// one starts counts against `maxUnavailable` in the next one's decision.
    pub policy_guards: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
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

    /// `object` as the operator last left it: with the status it wrote, if the cache has
    /// not caught up with that write yet.
    pub fn own_view<K: WithStatus>(&self, object: Arc<K>) -> Arc<K> {
        match self.written.pending(object.as_ref()) {
            Some(status) => {
                let mut object = K::clone(&object);
                object.set_status(status);
                Arc::new(object)
            }
            None => object,
        }
    }

    /// Writes `status` to `object` with server-side apply, unless `object` (as seen through
    /// [`Context::own_view`]) already has it.
    pub async fn write_status<K: WithStatus>(
        &self,
        object: &K,
        status: &K::Status,
    ) -> super::error::Result<()> {
        if object.status() == Some(status) {
            return Ok(());
        }

        let value = serde_json::to_value(status).map_err(|e| {
            super::error::Error::api(
                format!("serialize a {} status", K::kind(&())),
                kube::Error::SerdeError(e),
            )
        })?;
        let name = object.meta().name.as_deref().unwrap_or_default();
        match apply_status::<K>(&self.client, name, &value).await {
            Ok(version) => {
                self.written.remember(
                    object,
                    version.as_deref(),
                    Some(status.clone()),
                    self.clock.now(),
                );
                Ok(())
            }
            Err(e) => {
                self.written.remember(object, None, None, self.clock.now());
                Err(e)
            }
        }
    }

    /// Waits until every cache has its first full list. A reconcile must not judge from
    /// half-filled caches: a rollout deciding before the nodes are listed would see no
    /// targets and call itself done.
    pub async fn until_ready(&self) {
        let mut ready = self.ready.clone();
        let _ = ready.wait_for(|ready| *ready).await;
    }

    /// The guard of the rollouts of `policy`.
    pub fn policy_guard(&self, policy: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.policy_guards
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(policy.to_owned())
            .or_default()
            .clone()
    }

    /// Whether the operator created the Job `name` (and the cache may not show it yet).
    pub fn created_job(&self, name: &str) -> bool {
        self.jobs_created
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(name)
    }

    /// Notes that the Job `name` exists (created, or seen); `false` once the cache has it.
    pub fn note_job(&self, name: &str, created: bool) {
        let mut jobs = self.jobs_created.lock().unwrap_or_else(|p| p.into_inner());
        if created {
            jobs.insert(name.to_owned());
        } else {
            jobs.remove(name);
        }
    }

    /// The eviction state of a pod.
    pub fn eviction(&self, pod: &str) -> Option<EvictionState> {
        self.evictions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(pod)
            .cloned()
    }

    /// The rollouts draining pods that the budget `budget` (`namespace/name`) holds back.
    pub fn rollouts_blocked_by(&self, budget: &str) -> Vec<String> {
        let evictions = self.evictions.lock().unwrap_or_else(|p| p.into_inner());
        let mut rollouts: Vec<String> = evictions
            .values()
            .filter(|e| e.blocked_by.as_deref() == Some(budget))
            .map(|e| e.rollout.clone())
            .collect();
        rollouts.sort();
        rollouts.dedup();
        rollouts
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

#[cfg(test)]
mod tests {
    use super::*;
    use patchpilot_api::MaintenanceWindowStatus;

    fn window(version: &str) -> MaintenanceWindow {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "patchpilot.dev/v1alpha1",
            "kind": "MaintenanceWindow",
            "metadata": {"name": "weekend", "uid": "u-1", "resourceVersion": version},
            "spec": {"timeZone": "UTC", "recurrences": [{"days": ["Sat"], "start": "01:00", "duration": "4h"}]},
            "status": {"open": false},
        }))
        .unwrap()
    }

    fn at(minutes: i64) -> Timestamp {
        Timestamp::UNIX_EPOCH + jiff::SignedDuration::from_mins(minutes)
    }

    #[test]
    fn a_written_status_is_read_back_while_a_cache_shows_the_version_before() {
        let written = WrittenStatuses::default();
        let cached = window("10");
        assert_eq!(written.pending(&cached), None);
        let open = MaintenanceWindowStatus {
            open: true,
            ..Default::default()
        };
        written.remember(&cached, Some("11"), Some(open.clone()), at(0));
        // The cache still holds version 10: the write is what the object has now.
        assert_eq!(written.pending(&cached), Some(open.clone()));
        // The cache has caught up (or someone else wrote): the cached object rules.
        assert_eq!(written.pending(&window("11")), None);
        // A reconcile on a snapshot taken before still reads the write back, whoever saw
        // the newer version first (it used to be forgotten then, and written twice).
        assert_eq!(written.pending(&cached), Some(open.clone()));
        // A failed write forgets.
        written.remember(&cached, None, None, at(1));
        assert_eq!(written.pending(&cached), None);
        // Entries age out once far older than any watch delay.
        written.remember(&cached, Some("11"), Some(open.clone()), at(2));
        written.remember(&window("20"), Some("21"), Some(open.clone()), at(30));
        assert_eq!(written.pending(&cached), None);
    }

    #[test]
    fn writes_in_a_row_are_read_back_while_the_cache_shows_any_earlier_one() {
        let written = WrittenStatuses::default();
        let status = |open| MaintenanceWindowStatus {
            open,
            ..Default::default()
        };
        // Written at version 10 (making 11), then again while the cache still showed 10
        // (making 12).
        written.remember(&window("10"), Some("11"), Some(status(true)), at(0));
        written.remember(&window("10"), Some("12"), Some(status(false)), at(0));
        // The cache catching up with the first write still shows an old status.
        assert_eq!(written.pending(&window("11")), Some(status(false)));
        assert_eq!(written.pending(&window("10")), Some(status(false)));
        // It has caught up with the second.
        assert_eq!(written.pending(&window("12")), None);
    }
}
