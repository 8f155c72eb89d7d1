//! What the operator keeps in memory: one watch per kind, shared by the controllers, with
//! full objects only where needed.
//!
//! Nodes and namespaces are watched metadata-only (labels and annotations are all the engine
//! needs to select and order them); workloads are watched whole but kept as little more
//! (their containers' names and images too, to tell whether an image patch applies to
//! them: see [`TargetMeta`]); the few targets in progress, which
//! carry the `patchpilot.dev/locked` label, are watched in full; so are patchpilot's own
//! objects and the Jobs it creates. Pods are never cached cluster-wide: see `podwatch`.

use std::{fmt::Debug, sync::Arc};

use futures::{Stream, StreamExt};
use k8s_openapi::api::{
    apps::v1::{DaemonSet, Deployment, StatefulSet},
    batch::v1::Job,
    core::v1::{Namespace, Node},
    policy::v1::PodDisruptionBudget,
};
use kube::{
    Api, Client, Resource,
    runtime::{
        WatchStreamExt,
        reflector::{self, ReflectHandle, Store},
        watcher::{self, Config},
    },
};
use patchpilot_engine::keys;
use serde::de::DeserializeOwned;

use super::{candidates::TargetMeta, rollout::budgets::Spent};
use crate::api::{MaintenanceWindow, PatchPolicy, PatchRollout};

/// A shared cache: the store, and handles for the controllers that react to it.
pub struct Shared<K: Resource + Clone + 'static>
where
    K::DynamicType: std::hash::Hash + Eq + Clone,
{
    /// The objects.
    pub store: Store<K>,
    handles: Vec<ReflectHandle<K>>,
}

impl<K> Shared<K>
where
    K: Resource + Clone + 'static,
    K::DynamicType: std::hash::Hash + Eq + Clone,
{
    /// A subscription to the cache's changes, for one controller.
    pub fn subscribe(&mut self) -> ReflectHandle<K> {
        self.handles
            .pop()
            .expect("each cache is made with a handle per subscriber")
    }
}

/// How many controllers subscribe to a cache at most (rollouts, policies, windows).
const SUBSCRIBERS: usize = 3;

/// How many changes a cache holds for its slowest subscriber before the watch waits.
const BUFFER: usize = 256;

/// Starts the shared watch of `api`, returning the cache and the stream that feeds it (to
/// be polled by a task).
fn full<K>(api: Api<K>, config: Config) -> (Shared<K>, impl Stream<Item = ()> + Send)
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    observed(api, config, |_: &K| {})
}

/// Like [`full`], showing `observe` every version of every object, in order, once the
/// cache has taken it (subscribers only see the cache's latest version when they look).
fn observed<K>(
    api: Api<K>,
    config: Config,
    observe: impl Fn(&K) + Send + 'static,
) -> (Shared<K>, impl Stream<Item = ()> + Send)
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    // Nothing reads managedFields; on a big cluster they are most of an object's metadata.
    cache_of(
        watcher::watcher(api, config)
            .default_backoff()
            .modify(|object| object.meta_mut().managed_fields = None),
        observe,
    )
}

/// Like [`full`], for what [`TargetMeta`] keeps of each object: its requests are
/// metadata-only, except for workloads, read whole for their containers.
fn metadata<K>(
    api: Api<TargetMeta<K>>,
    config: Config,
) -> (Shared<TargetMeta<K>>, impl Stream<Item = ()> + Send)
where
    K: Resource<DynamicType = ()> + Clone + Debug + Send + Sync + 'static,
    K::Scope: Send + Sync,
{
    cache_of(
        watcher::watcher(api, config).default_backoff(),
        |_: &TargetMeta<K>| {},
    )
}

/// The cache of what `events` brings, with a handle per subscriber, and the stream that
/// fills it, showing `observe` each object the cache has just taken.
fn cache_of<K>(
    events: impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send,
    observe: impl Fn(&K) + Send + 'static,
) -> (Shared<K>, impl Stream<Item = ()> + Send)
where
    K: Resource<DynamicType = ()> + Clone + Debug + Send + Sync + 'static,
{
    let (store, writer) = reflector::store_shared(BUFFER);
    let handles = (0..SUBSCRIBERS)
        .filter_map(|_| writer.subscribe())
        .collect();
    let driver = events
        .reflect_shared(writer)
        .inspect(move |event| {
            if let Ok(watcher::Event::Apply(object) | watcher::Event::InitApply(object)) = event {
                observe(object);
            }
        })
        .map(log_errors::<K>);
    (Shared { store, handles }, driver)
}

fn log_errors<K: Resource>(event: Result<watcher::Event<K>, watcher::Error>)
where
    K::DynamicType: Default,
{
    if let Err(error) = event {
        tracing::warn!(kind = %K::kind(&Default::default()), %error, "watch failed; retrying");
    }
}

/// Every cache of the operator.
pub struct Caches {
    /// PatchPolicies.
    pub policies: Shared<PatchPolicy>,
    /// PatchRollouts.
    pub rollouts: Shared<PatchRollout>,
    /// MaintenanceWindows.
    pub windows: Shared<MaintenanceWindow>,
    /// Every node's metadata.
    pub nodes: Shared<TargetMeta<Node>>,
    /// Every namespace's metadata.
    pub namespaces: Shared<TargetMeta<Namespace>>,
    /// Every Deployment's metadata and containers' images.
    pub deployments: Shared<TargetMeta<Deployment>>,
    /// Every StatefulSet's metadata and containers' images.
    pub statefulsets: Shared<TargetMeta<StatefulSet>>,
    /// Every DaemonSet's metadata and containers' images.
    pub daemonsets: Shared<TargetMeta<DaemonSet>>,
    /// Nodes in progress, in full.
    pub locked_nodes: Shared<Node>,
    /// Deployments in progress, in full.
    pub locked_deployments: Shared<Deployment>,
    /// StatefulSets in progress, in full.
    pub locked_statefulsets: Shared<StatefulSet>,
    /// DaemonSets in progress, in full.
    pub locked_daemonsets: Shared<DaemonSet>,
    /// The Jobs patchpilot created.
    pub jobs: Shared<Job>,
    /// Every PodDisruptionBudget, in full (they are few and small): drains ask for an
    /// eviction only when the budget allows it.
    pub budgets: Shared<PodDisruptionBudget>,
}

/// A stream that keeps one cache filled while it is polled.
pub type Driver = std::pin::Pin<Box<dyn Stream<Item = ()> + Send>>;

impl Caches {
    /// Starts every watch; the returned streams must be polled (each by a task) for the
    /// caches to fill. `spent` sees every version of every PodDisruptionBudget.
    pub fn start(client: &Client, spent: Arc<Spent>) -> (Self, Vec<Driver>) {
        let mut drivers: Vec<Driver> = Vec::new();
        let all = Config::default().timeout(super::podwatch::WATCH_TIMEOUT);
        let locked = all.clone().labels(keys::LOCKED_LABEL);
        let ours = all.clone().labels(keys::ROLLOUT_LABEL);
        macro_rules! cache {
            ($make:ident, $api:expr, $config:expr) => {{
                let (shared, driver) = $make($api, $config);
                drivers.push(Box::pin(driver));
                shared
            }};
        }
        let caches = Caches {
            policies: cache!(full, Api::all(client.clone()), all.clone()),
            rollouts: cache!(full, Api::all(client.clone()), all.clone()),
            windows: cache!(full, Api::all(client.clone()), all.clone()),
            nodes: cache!(
                metadata,
                Api::<TargetMeta<Node>>::all(client.clone()),
                all.clone()
            ),
            namespaces: cache!(
                metadata,
                Api::<TargetMeta<Namespace>>::all(client.clone()),
                all.clone()
            ),
            deployments: cache!(
                metadata,
                Api::<TargetMeta<Deployment>>::all(client.clone()),
                all.clone()
            ),
            statefulsets: cache!(
                metadata,
                Api::<TargetMeta<StatefulSet>>::all(client.clone()),
                all.clone()
            ),
            daemonsets: cache!(
                metadata,
                Api::<TargetMeta<DaemonSet>>::all(client.clone()),
                all.clone()
            ),
            locked_nodes: cache!(full, Api::all(client.clone()), locked.clone()),
            locked_deployments: cache!(full, Api::all(client.clone()), locked.clone()),
            locked_statefulsets: cache!(full, Api::all(client.clone()), locked.clone()),
            locked_daemonsets: cache!(full, Api::all(client.clone()), locked),
            jobs: cache!(full, Api::all(client.clone()), ours),
            budgets: {
                let (shared, driver) = observed(
                    Api::all(client.clone()),
                    all.clone(),
                    move |budget: &PodDisruptionBudget| spent.seen(budget),
                );
                drivers.push(Box::pin(driver));
                shared
            },
        };
        (caches, drivers)
    }

    /// Waits until every cache has its first full list.
    pub async fn ready(&self) {
        let _ = tokio::join!(
            self.policies.store.wait_until_ready(),
            self.rollouts.store.wait_until_ready(),
            self.windows.store.wait_until_ready(),
            self.nodes.store.wait_until_ready(),
            self.namespaces.store.wait_until_ready(),
            self.deployments.store.wait_until_ready(),
            self.statefulsets.store.wait_until_ready(),
            self.daemonsets.store.wait_until_ready(),
            self.locked_nodes.store.wait_until_ready(),
            self.locked_deployments.store.wait_until_ready(),
            self.locked_statefulsets.store.wait_until_ready(),
            self.locked_daemonsets.store.wait_until_ready(),
            self.jobs.store.wait_until_ready(),
            self.budgets.store.wait_until_ready(),
        );
    }
}
