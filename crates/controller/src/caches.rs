//! What the operator keeps in memory: one watch per kind, shared by the controllers, with
//! full objects only where needed.
//!
//! Nodes and namespaces are watched metadata-only (labels and annotations are all the engine
//! needs to select and order them); workloads are watched whole but kept as little more
//! (their containers' names and images too, to tell whether an image patch applies to
//! them: see [`TargetMeta`]); the few targets in progress, which
//! carry the `patchpilot.dev/locked` label, are watched in full; so are patchpilot's own
//! objects and the Jobs it creates. Pods are never cached cluster-wide: see `podwatch`.

use std::{
    fmt::Debug,
    pin::pin,
    sync::{Arc, Mutex},
};

use futures::{Stream, StreamExt, future::BoxFuture};
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
        reflector::{self, ObjectRef, Store},
        watcher::{self, Config},
    },
};
use patchpilot_engine::keys;
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;

use super::{candidates::TargetMeta, rollout::budgets::Spent};
use patchpilot_api::{MaintenanceWindow, Notifier, PatchPolicy, PatchRollout};

/// A shared cache: the store, and the controllers told of its changes.
///
/// Subscribers are sent the key of each object the cache took, and look it up when they read
/// it (so the channel keeps no old versions alive), and the last version of each object that
/// left the cache, so that a controller watching related objects hears of deletions. A key
/// whose object is gone by the time it is read is skipped: its deletion follows. (kube-runtime's
/// `ReflectHandle` sends keys too, but stops waking its controller for good on a key whose
/// object was deleted before it was read, and sends no deletions.)
pub struct Shared<K: Resource + Clone + 'static>
where
    K::DynamicType: std::hash::Hash + Eq + Clone,
{
    /// The objects.
    pub store: Store<K>,
    subscribers: Subscribers<K>,
}

/// A change of a cache, as sent to its subscribers.
enum Change<K: Resource>
where
    K::DynamicType: std::hash::Hash + Eq + Clone,
{
    /// The object of this key is in the cache, in a new version.
    Applied(ObjectRef<K>),
    /// The object's last version, gone from the cache (deleted, or no longer selected).
    Deleted(Arc<K>),
}

impl<K: Resource> Clone for Change<K>
where
    K::DynamicType: std::hash::Hash + Eq + Clone,
{
    fn clone(&self) -> Self {
        match self {
            Change::Applied(key) => Change::Applied(key.clone()),
            Change::Deleted(object) => Change::Deleted(object.clone()),
        }
    }
}

type Subscribers<K> = Arc<Mutex<Vec<mpsc::Sender<Change<K>>>>>;

impl<K> Shared<K>
where
    K: Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
{
    /// Every change of the cache from now on, deletions included: the trigger of a
    /// controller watching related objects.
    pub fn changes(&self) -> impl Stream<Item = Arc<K>> + Send + 'static {
        self.objects(true)
    }

    /// The objects the cache takes from now on, without deletions: the trigger of the
    /// controller of this kind (a deleted object has nothing left to reconcile).
    pub fn applied(&self) -> impl Stream<Item = Arc<K>> + Send + 'static {
        self.objects(false)
    }

    /// The objects of the changes from now on: those in the cache, looked up by key when
    /// read, and, with `deletions`, the last versions of those that left it.
    fn objects(&self, deletions: bool) -> impl Stream<Item = Arc<K>> + Send + 'static {
        let store = self.store.clone();
        self.subscribe().filter_map(move |change| {
            let object = match change {
                Change::Applied(key) => store.get(&key),
                Change::Deleted(object) => deletions.then_some(object),
            };
            async move { object }
        })
    }

    fn subscribe(&self) -> impl Stream<Item = Change<K>> + Send + 'static {
        let (sender, receiver) = mpsc::channel(BUFFER);
        self.subscribers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(sender);
        futures::stream::unfold(receiver, |mut receiver| async move {
            receiver.recv().await.map(|change| (change, receiver))
        })
    }
}

/// How many changes a cache holds for its slowest subscriber before the watch waits.
const BUFFER: usize = 256;

/// Starts the shared watch of `api`, returning the cache and the future that fills it
/// (to be run by a task once its subscribers have subscribed).
fn full<K>(api: Api<K>, config: Config) -> (Shared<K>, Driver)
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    observed(api, config, |_: &K| {})
}

/// Like [`full`], showing `observe` every version of every object, in order, once the
/// cache has taken it.
fn observed<K>(
    api: Api<K>,
    config: Config,
    observe: impl Fn(&K) + Send + 'static,
) -> (Shared<K>, Driver)
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
fn metadata<K>(api: Api<TargetMeta<K>>, config: Config) -> (Shared<TargetMeta<K>>, Driver)
where
    K: Resource<DynamicType = ()> + Clone + Debug + Send + Sync + 'static,
    K::Scope: Send + Sync,
{
    cache_of(
        watcher::watcher(api, config).default_backoff(),
        |_: &TargetMeta<K>| {},
    )
}

/// The cache of what `events` brings and the future that fills it, showing `observe`
/// each object the cache has just taken and sending every change to the subscribers.
fn cache_of<K>(
    events: impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static,
    observe: impl Fn(&K) + Send + 'static,
) -> (Shared<K>, Driver)
where
    K: Resource<DynamicType = ()> + Clone + Debug + Send + Sync + 'static,
{
    let (store, mut writer) = reflector::store();
    let subscribers: Subscribers<K> = Default::default();
    let shared = Shared {
        store: store.clone(),
        subscribers: subscribers.clone(),
    };
    let driver = async move {
        let mut events = pin!(events);
        while let Some(event) = events.next().await {
            let event = match event {
                Ok(event) => event,
                Err(error) => {
                    let kind = K::kind(&());
                    tracing::warn!(%kind, %error, "watch failed; retrying");
                    continue;
                }
            };
            // On a relist, what the new list lacks was deleted while the watch was away.
            let before = matches!(event, watcher::Event::InitDone).then(|| store.state());
            writer.apply_watcher_event(&event);
            let changes = match &event {
                watcher::Event::Apply(object) => {
                    observe(object);
                    vec![Change::Applied(ObjectRef::from_obj(object))]
                }
                // Told to the subscribers with the whole list, at its end.
                watcher::Event::InitApply(object) => {
                    observe(object);
                    Vec::new()
                }
                watcher::Event::Delete(object) => vec![Change::Deleted(Arc::new(object.clone()))],
                watcher::Event::InitDone => {
                    let now = store.state();
                    let gone = before
                        .unwrap_or_default()
                        .into_iter()
                        .filter(|old| store.get(&ObjectRef::from_obj(old.as_ref())).is_none());
                    now.iter()
                        .map(|object| Change::Applied(ObjectRef::from_obj(object.as_ref())))
                        .chain(gone.map(Change::Deleted))
                        .collect()
                }
                watcher::Event::Init => Vec::new(),
            };
            dispatch(&subscribers, changes).await;
        }
    };
    (shared, Box::pin(driver))
}

/// Sends `changes` to every subscriber, waiting for room in a slow one's buffer (so that
/// nothing is lost); subscribers that went away are forgotten.
async fn dispatch<K: Resource>(subscribers: &Subscribers<K>, changes: Vec<Change<K>>)
where
    K::DynamicType: std::hash::Hash + Eq + Clone,
{
    if changes.is_empty() {
        return;
    }
    let senders = {
        let mut subscribers = subscribers.lock().unwrap_or_else(|p| p.into_inner());
        subscribers.retain(|sender| !sender.is_closed());
        subscribers.clone()
    };
    for change in changes {
        for sender in &senders {
            let _ = sender.send(change.clone()).await;
        }
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
    /// Notifiers.
    pub notifiers: Shared<Notifier>,
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

/// A future that keeps one cache filled while it runs.
pub type Driver = BoxFuture<'static, ()>;

impl Caches {
    /// Makes every cache; the returned futures are their watches, to be run (each by a
    /// task) once the controllers have subscribed. `spent` sees every version of every PodDisruptionBudget.
    pub fn start(client: &Client, spent: Arc<Spent>) -> (Self, Vec<Driver>) {
        let mut drivers: Vec<Driver> = Vec::new();
        let all = Config::default().timeout(super::podwatch::WATCH_TIMEOUT);
        let locked = all.clone().labels(keys::LOCKED_LABEL);
        let ours = all.clone().labels(keys::ROLLOUT_LABEL);
        macro_rules! cache {
            ($make:ident, $api:expr, $config:expr) => {{
                let (shared, driver) = $make($api, $config);
                drivers.push(driver);
                shared
            }};
        }
        let caches = Caches {
            policies: cache!(full, Api::all(client.clone()), all.clone()),
            rollouts: cache!(full, Api::all(client.clone()), all.clone()),
            windows: cache!(full, Api::all(client.clone()), all.clone()),
            notifiers: cache!(full, Api::all(client.clone()), all.clone()),
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
                drivers.push(driver);
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
            self.notifiers.store.wait_until_ready(),
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::ObjectMeta;

    use super::*;

    fn map(name: &str, version: &str) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("default".into()),
                resource_version: Some(version.into()),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    /// The next item of `stream`, or a panic naming what was awaited.
    async fn next<T>(
        stream: &mut (impl Stream<Item = Arc<T>> + Unpin),
        what: &str,
    ) -> (String, String)
    where
        T: Resource,
    {
        let object = tokio::time::timeout(Duration::from_secs(5), stream.next())
            .await
            .unwrap_or_else(|_| panic!("no {what} within 5s: the subscriber is stuck"))
            .expect("the cache's stream ended");
        let meta = object.meta();
        (
            meta.name.clone().unwrap_or_default(),
            meta.resource_version.clone().unwrap_or_default(),
        )
    }

    fn pair(name: &str, version: &str) -> (String, String) {
        (name.into(), version.into())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn subscribers_hear_of_objects_deleted_before_they_looked_and_go_on_hearing() {
        let (events, received) = mpsc::unbounded_channel();
        let stream = futures::stream::unfold(received, |mut received| async move {
            received.recv().await.map(|event| (Ok(event), received))
        });
        let (shared, driver) = cache_of::<ConfigMap>(stream, |_| {});
        let mut changes = Box::pin(shared.changes());
        let mut applied = Box::pin(shared.applied());
        let task = tokio::spawn(driver);

        for event in [
            watcher::Event::Init,
            watcher::Event::InitApply(map("a", "1")),
            watcher::Event::InitApply(map("b", "2")),
            watcher::Event::InitDone,
        ] {
            events.send(event).unwrap();
        }
        let mut listed = vec![
            next(&mut changes, "listed object").await,
            next(&mut changes, "listed object").await,
        ];
        listed.sort();
        assert_eq!(listed, [pair("a", "1"), pair("b", "2")]);
        next(&mut applied, "listed object").await;
        next(&mut applied, "listed object").await;

        // `b`'s last update and its deletion reach the cache before anyone looks.
        events.send(watcher::Event::Apply(map("b", "3"))).unwrap();
        events.send(watcher::Event::Delete(map("b", "3"))).unwrap();
        while shared.store.state().len() != 1 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        // The update's key finds nothing any more and is skipped; the deletion is told.
        assert_eq!(next(&mut changes, "deletion").await, pair("b", "3"));

        // And they go on hearing: the deletion left no subscriber waiting for nothing.
        events.send(watcher::Event::Apply(map("c", "4"))).unwrap();
        assert_eq!(next(&mut changes, "creation").await, pair("c", "4"));
        assert_eq!(next(&mut applied, "creation").await, pair("c", "4"));

        // A relist that lacks `c`: it was deleted while the watch was away.
        for event in [
            watcher::Event::Init,
            watcher::Event::InitApply(map("a", "5")),
            watcher::Event::InitDone,
        ] {
            events.send(event).unwrap();
        }
        assert_eq!(next(&mut changes, "relisted object").await, pair("a", "5"));
        assert_eq!(
            next(&mut changes, "deletion seen by a relist").await,
            pair("c", "4")
        );
        assert_eq!(next(&mut applied, "relisted object").await, pair("a", "5"));
        task.abort();
    }

    #[tokio::test]
    async fn a_subscriber_gone_away_holds_nothing_back() {
        let (events, received) = mpsc::unbounded_channel();
        let stream = futures::stream::unfold(received, |mut received| async move {
            received.recv().await.map(|event| (Ok(event), received))
        });
        let (shared, driver) = cache_of::<ConfigMap>(stream, |_| {});
        drop(shared.changes());
        let mut applied = Box::pin(shared.applied());
        let task = tokio::spawn(driver);
        events.send(watcher::Event::Init).unwrap();
        events.send(watcher::Event::InitDone).unwrap();
        for version in 0..2 * BUFFER {
            events
                .send(watcher::Event::Apply(map("a", &version.to_string())))
                .unwrap();
            assert_eq!(
                next(&mut applied, "update").await,
                pair("a", &version.to_string())
            );
        }
        task.abort();
    }
}
