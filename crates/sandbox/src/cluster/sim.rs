//! The cluster's single task: it follows the store through watches, keeps what it learns in
//! the [`Cache`], and reconciles what changed, one [`Work`] at a time, plus whatever timers
//! of the virtual clock fall due.
//!
//! One task keeps everything deterministic: the same objects and the same clock give the
//! same names, placements and timings. Reconciling is level-based, like the real
//! components: each look at an object does what is missing, so a spurious look is harmless.

use std::{
    collections::{HashMap, HashSet},
    future::poll_fn,
    sync::Arc,
    task::Poll,
};

use jiff::Timestamp;
use serde_json::Value;
use tokio::sync::mpsc::UnboundedReceiver;

use super::{
    ClusterFaults, Timings,
    informer::{Cache, Change, Kind},
    kubelet::PodRun,
    meta::{self, Key},
    node::NodeRun,
    work::{Queue, Timers, Work},
};
use crate::json::Json;
use crate::{
    resources::ResourceType,
    store::{Store, WatchFrom, WatchItem},
};

/// How many works run between two yields to the other tasks of the runtime.
const BATCH: usize = 128;

/// One watch the cluster follows.
struct Watch {
    kind: Kind,
    rx: UnboundedReceiver<WatchItem>,
    closed: bool,
}

/// The state of the simulated cluster: what it knows, what it has to do, and what its
/// kubelets hold in memory.
pub(super) struct Sim {
    pub store: Arc<Store>,
    resources: Vec<Arc<ResourceType>>,
    pub cache: Cache,
    pub queue: Queue,
    pub timers: Timers,
    pub timings: Timings,
    pub faults: ClusterFaults,
    /// Targets of `faults.unhealthy_after_patch`.
    pub unhealthy: HashSet<String>,
    /// The work being reconciled: changes it makes itself do not queue it again.
    current: Option<Work>,
    /// The kubelets' view of their nodes.
    pub nodes: HashMap<String, NodeRun>,
    /// The kubelets' view of the pods they run.
    pub pods: HashMap<Key, PodRun>,
    /// The container images of faulty workloads' templates when the cluster first saw them.
    pub originals: HashMap<(Kind, Key), Vec<(String, String)>>,
    /// StatefulSet pod templates by revision (`<set>-<hash>`), to recreate pods of the
    /// current revision below a partition.
    pub revisions: HashMap<(Key, String), Value>,
    /// Pods bound to a node that does not exist, and since when.
    pub orphans: HashMap<Key, Timestamp>,
    /// Pods of unfinished Jobs deleted before they finished, by Job UID.
    pub lost_job_pods: HashMap<String, i64>,
    /// Deleted pods whose containers are stopping, and since when.
    pub stopping: HashMap<Key, Timestamp>,
    /// How many nodes were seen, to give each its addresses.
    pub nodes_seen: u32,
}

impl Sim {
    /// The cluster of `store`, or `None` if the store does not serve a kind it needs.
    pub fn new(store: Arc<Store>, timings: Timings, faults: ClusterFaults) -> Option<Self> {
        let resources = Kind::ALL
            .iter()
            .map(|kind| {
                let (group, version, plural) = kind.resource();
                store.resource(group, version, plural)
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Sim {
            store,
            resources,
            cache: Cache::default(),
            queue: Queue::default(),
            timers: Timers::default(),
            timings,
            unhealthy: faults.unhealthy_after_patch.iter().cloned().collect(),
            faults,
            current: None,
            nodes: HashMap::new(),
            pods: HashMap::new(),
            originals: HashMap::new(),
            revisions: HashMap::new(),
            orphans: HashMap::new(),
            stopping: HashMap::new(),
            lost_job_pods: HashMap::new(),
            nodes_seen: 0,
        })
    }

    /// The resource of a kind.
    pub fn resource(&self, kind: Kind) -> Arc<ResourceType> {
        self.resources[kind as usize].clone()
    }

    /// The current instant of the virtual clock.
    pub fn now(&self) -> Timestamp {
        self.store.clock().now()
    }

    /// Runs the cluster until the future is dropped.
    pub async fn run(mut self) {
        let mut watches = Vec::new();
        for kind in Kind::ALL {
            let resource = self.resource(kind);
            let stream = match self
                .store
                .watch(&resource, Default::default(), WatchFrom::Current)
            {
                Ok(stream) => stream,
                Err(error) => {
                    tracing::error!(%error, ?kind, "the simulated cluster cannot watch");
                    return std::future::pending().await;
                }
            };
            for item in stream.initial {
                self.take(kind, item);
            }
            watches.push(Watch {
                kind,
                rx: stream.rx,
                closed: false,
            });
        }
        let mut done = 0usize;
        loop {
            self.drain(&mut watches);
            for work in self.timers.take_due(self.now()) {
                self.queue.push(work);
            }
            if let Some(work) = self.queue.pop() {
                self.reconcile(work);
                done += 1;
                if done.is_multiple_of(BATCH) {
                    tokio::task::yield_now().await;
                }
                continue;
            }
            let sleep = self
                .timers
                .next()
                .map(|at| self.store.clock().sleep_for(at));
            if let Some((kind, item)) = next_item(&mut watches, sleep).await {
                self.take(kind, item);
            }
        }
    }

    /// Takes in every watch event already delivered.
    fn drain(&mut self, watches: &mut [Watch]) {
        for watch in watches.iter_mut() {
            while let Ok(item) = watch.rx.try_recv() {
                self.take(watch.kind, item);
            }
        }
    }

    /// Takes in one watch event.
    fn take(&mut self, kind: Kind, item: WatchItem) {
        if let WatchItem::Event(event, object) = item {
            self.observe(kind, object, event == "DELETED", false);
        }
    }

    /// Takes in an object's new state or deletion, and queues what must look at it.
    pub fn observe(&mut self, kind: Kind, object: Arc<Json>, deleted: bool, own: bool) {
        if let Some(change) = self.cache.observe(kind, object, deleted) {
            for work in self.triggers(&change) {
                if !(own && self.current.as_ref() == Some(&work)) {
                    self.queue.push(work);
                }
            }
        }
    }

    /// Reconciles one work.
    fn reconcile(&mut self, work: Work) {
        self.current = Some(work.clone());
        match &work {
            Work::Node(name) => self.sync_node(name),
            Work::Pod(key) => self.sync_pod(key),
            Work::Schedule => self.schedule(),
            Work::Deployment(key) => self.sync_deployment(key),
            Work::ReplicaSet(key) => self.sync_replica_set(key),
            Work::StatefulSet(key) => self.sync_stateful_set(key),
            Work::DaemonSet(key) => self.sync_daemon_set(key),
            Work::Job(key) => self.sync_job(key),
            Work::Budget(key) => self.sync_budget(key),
        }
        self.current = None;
    }

    /// What has to look at a change.
    fn triggers(&mut self, change: &Change) -> Vec<Work> {
        let object = change.new.as_ref().or(change.old.as_ref());
        let Some(object) = object else {
            return Vec::new();
        };
        let key = change.key.clone();
        let mut works = Vec::new();
        match change.kind {
            Kind::Node => {
                works.push(Work::Node(key.1.clone()));
                if !self.cache.unbound().is_empty() {
                    works.push(Work::Schedule);
                }
                works.extend(
                    self.cache
                        .all(Kind::DaemonSet)
                        .map(|(key, _)| Work::DaemonSet(key.clone())),
                );
                if change.new.is_none() {
                    works.extend(self.cache.pods_on(&key.1).cloned().map(Work::Pod));
                }
            }
            Kind::Pod => {
                let bound = |p: &Option<Arc<Json>>| {
                    p.as_ref()
                        .is_some_and(|p| p["spec"]["nodeName"].as_str().is_some())
                };
                if bound(&change.old) || bound(&change.new) {
                    works.push(Work::Pod(key.clone()));
                }
                let waiting = change
                    .new
                    .as_ref()
                    .is_some_and(|p| self.cache.unbound().contains(&meta::key_of(p)));
                let occupied = |p: &Option<Arc<Json>>| {
                    p.as_ref()
                        .is_some_and(|p| p["spec"]["nodeName"].is_string() && !meta::finished(p))
                };
                let freed = occupied(&change.old) && !occupied(&change.new);
                if waiting || (freed && !self.cache.unbound().is_empty()) {
                    works.push(Work::Schedule);
                }
                if let Some(owner) = meta::controller_of(object)
                    && let Some(kind) = Kind::of_owner(owner.kind)
                {
                    works.push(owner_work(kind, (key.0.clone(), owner.name.to_owned())));
                }
                self.note_lost_job_pod(change);
                works.extend(self.budgets_for(&key.0, change));
            }
            Kind::ReplicaSet => {
                works.push(Work::ReplicaSet(key.clone()));
                if let Some(owner) = meta::controller_of(object)
                    && owner.kind == "Deployment"
                {
                    works.push(Work::Deployment((key.0.clone(), owner.name.to_owned())));
                }
                works.extend(
                    self.cache
                        .budgets_in(&key.0)
                        .map(|b| Work::Budget(meta::key_of(b))),
                );
            }
            Kind::Deployment | Kind::StatefulSet | Kind::DaemonSet => {
                self.remember_original(change.kind, &key, change.new.as_deref());
                works.push(owner_work(change.kind, key.clone()));
                works.extend(
                    self.cache
                        .budgets_in(&key.0)
                        .map(|b| Work::Budget(meta::key_of(b))),
                );
            }
            Kind::Job => {
                if change.new.is_none() {
                    self.lost_job_pods.remove(meta::uid(object));
                }
                works.push(Work::Job(key));
            }
            Kind::Budget => works.push(Work::Budget(key)),
        }
        works
    }

    /// Takes in an object the cluster itself just wrote.
    pub fn own(&mut self, kind: Kind, object: Arc<Json>, deleted: bool) {
        self.observe(kind, object, deleted, true);
    }

    /// Queues work even if it is the work being reconciled (it wants another look).
    pub fn requeue(&mut self, work: Work) {
        self.queue.push(work);
    }
}

/// The work of a workload controller for an object of `kind`.
fn owner_work(kind: Kind, key: Key) -> Work {
    match kind {
        Kind::Deployment => Work::Deployment(key),
        Kind::ReplicaSet => Work::ReplicaSet(key),
        Kind::StatefulSet => Work::StatefulSet(key),
        Kind::DaemonSet => Work::DaemonSet(key),
        Kind::Job => Work::Job(key),
        Kind::Budget => Work::Budget(key),
        Kind::Node => Work::Node(key.1),
        Kind::Pod => Work::Pod(key),
    }
}

/// The next watch item, or `None` once `sleep` has passed first.
async fn next_item(
    watches: &mut [Watch],
    sleep: Option<std::time::Duration>,
) -> Option<(Kind, WatchItem)> {
    let received = poll_fn(|cx| {
        for watch in watches.iter_mut().filter(|w| !w.closed) {
            match watch.rx.poll_recv(cx) {
                Poll::Ready(Some(item)) => return Poll::Ready((watch.kind, item)),
                Poll::Ready(None) => watch.closed = true,
                Poll::Pending => {}
            }
        }
        Poll::Pending
    });
    match sleep {
        Some(sleep) => tokio::select! {
            item = received => Some(item),
            () = tokio::time::sleep(sleep) => None,
        },
        None => Some(received.await),
    }
}
