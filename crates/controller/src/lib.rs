//! The Kubernetes adapter: controllers for PatchPolicy, PatchRollout and MaintenanceWindow.
//!
//! It turns cluster objects into engine inputs (explicit conversions) and engine decisions
//! into API calls; it holds no rollout logic of its own. Reconciles are triggered by watch
//! events; time-driven work is requeued for the instant the engine names.

pub mod caches;
pub mod calendar;
pub mod candidates;
pub mod client;
pub mod context;
pub mod error;
pub mod events;
pub mod finalizer;
pub mod history;
pub mod leader;
pub mod metrics;
pub mod notify;
pub mod orphans;
pub mod pod;
pub mod podwatch;
pub mod policy;
pub mod rollout;
pub mod window;

use std::{future::Future, net::SocketAddr, sync::Arc};

use futures::{StreamExt, future::BoxFuture};
use kube::{
    Client, ResourceExt,
    runtime::{
        Controller,
        reflector::{ObjectRef, Store},
    },
};
use patchpilot_engine::keys;
use tokio::sync::mpsc;

use caches::Caches;
use context::{Context, Stores};
use events::{Recorder, Reporter};
use metrics::Metrics;
use patchpilot_api::{MaintenanceWindow, Notifier, PatchPolicy, PatchRollout};
use patchpilot_clock::SharedClock;
use podwatch::PodWatches;

/// What patchpilot's API clients send as `User-Agent`: `patchpilot/<version>`, the way kube
/// clients name themselves (`kubectl/v1.32.0 …`), so that audit logs and API server metrics
/// tell its requests apart.
pub const USER_AGENT: &str = concat!("patchpilot/", env!("CARGO_PKG_VERSION"));

/// How the operator runs.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Serve metrics, `/healthz`, `/readyz` and `/calendar.ics` here.
    pub metrics_addr: Option<SocketAddr>,
    /// Take part in leader election.
    pub leader_election: Option<LeaderElection>,
    /// Watch the pods of nodes in progress with streaming lists.
    pub streaming_lists: bool,
    /// The instance name in events.
    pub instance: String,
    /// Where `http` and `prometheus` health checks send their requests; `None`: the
    /// network. The sandbox answers them from its simulated cluster.
    pub health_http: Option<rollout::health::HttpClient>,
}

/// Which Lease the replicas of the operator take turns on, and as whom.
#[derive(Clone, Debug)]
pub struct LeaderElection {
    /// The Lease's namespace.
    pub namespace: String,
    /// The Lease's name.
    pub lease: String,
    /// This replica's identity, written as the Lease's holder.
    pub identity: String,
}

/// Why the operator stopped.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The metrics address could not be served.
    #[error("--metrics-addr {address}: {source}")]
    Metrics {
        /// The address.
        address: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

type Refs<K> = Vec<ObjectRef<K>>;

/// The rollouts not finished yet whose policy targets nodes (`nodes`) or workloads.
fn active_rollouts(stores: &Stores, nodes: bool) -> Refs<PatchRollout> {
    let policies = stores.policies.state();
    stores
        .rollouts
        .state()
        .iter()
        .filter(|r| {
            r.status
                .as_ref()
                .is_none_or(|s| !s.phase.is_finished() || !s.in_progress.is_empty())
        })
        .filter(|r| {
            policies
                .iter()
                .find(|p| p.name_any() == r.spec.policy)
                .is_some_and(|p| p.spec.targets.nodes.is_some() == nodes)
        })
        .map(|r| ObjectRef::from_obj(r.as_ref()))
        .collect()
}

fn policies_of_scope(stores: &Stores, nodes: bool) -> Refs<PatchPolicy> {
    stores
        .policies
        .state()
        .iter()
        .filter(|p| p.spec.targets.nodes.is_some() == nodes)
        .map(|p| ObjectRef::from_obj(p.as_ref()))
        .collect()
}

/// The rollout whose lock a target carries.
fn lock_holder<K: kube::Resource>(object: &K) -> Refs<PatchRollout> {
    object
        .meta()
        .annotations
        .as_ref()
        .and_then(|a| a.get(keys::LOCK))
        .map(|r| ObjectRef::new(r))
        .into_iter()
        .collect()
}

fn labelled<K: kube::Resource>(object: &K) -> Refs<PatchRollout> {
    object
        .meta()
        .labels
        .as_ref()
        .and_then(|l| l.get(keys::ROLLOUT_LABEL))
        .map(|r| ObjectRef::new(r))
        .into_iter()
        .collect()
}

/// Runs the operator until `shutdown` completes.
pub async fn run(
    client: Client,
    clock: SharedClock,
    options: Options,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    let metrics = Arc::new(Metrics::new());
    if let Some(address) = options.metrics_addr {
        let listener_check = tokio::net::TcpListener::bind(address)
            .await
            .map_err(|source| RunError::Metrics { address, source })?;
        drop(listener_check);
        let metrics = metrics.clone();
        tokio::spawn(async move {
            if let Err(error) = metrics::serve(metrics, address).await {
                tracing::error!(%error, "the metrics endpoint stopped");
            }
        });
    }
    let shutdown = futures::FutureExt::shared(Box::pin(shutdown) as BoxFuture<'static, ()>);
    if let Some(LeaderElection {
        namespace,
        lease: name,
        identity,
    }) = &options.leader_election
    {
        // The controllers write through a client fenced by the lease: once the leadership's
        // deadline has passed, nothing they send is a write (see `leader`).
        let fence = Arc::new(leader::Fence::elected());
        let fenced = leader::fenced_client(client.clone(), fence.clone(), clock.clone());
        let elector = leader::Elector::new(client, namespace, name, identity, clock.clone(), fence);
        tracing::info!(%identity, lease = %name, "waiting to become the leader");
        tokio::select! {
            () = elector.acquire() => tracing::info!("became the leader"),
            () = shutdown.clone() => return Ok(()),
        }
        let lost = async move {
            elector.keep().await;
            tracing::warn!("lost the lease; stopping");
        };
        let stop = futures::future::select(Box::pin(lost), shutdown.clone());
        return controllers(fenced, clock, options, metrics, async move {
            stop.await;
        })
        .await;
    }
    controllers(client, clock, options, metrics, shutdown).await
}

async fn controllers(
    client: Client,
    clock: SharedClock,
    options: Options,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    let shutdown = futures::FutureExt::shared(Box::pin(shutdown) as BoxFuture<'static, ()>);
    let spent = Arc::new(rollout::budgets::Spent::default());
    let (caches, drivers) = Caches::start(&client, spent.clone());
    let (triggers, triggered) = mpsc::unbounded_channel();
    let (set_ready, ready) = tokio::sync::watch::channel(false);
    let stores = Stores::of(&caches);
    let calendar = calendar::feed(stores.clone(), clock.clone());
    let reporter = Reporter {
        controller: "patchpilot".into(),
        instance: Some(options.instance.clone()),
    };
    let ctx = Arc::new(Context {
        client: client.clone(),
        recorder: Recorder::new(client.clone(), reporter, clock.clone()),
        clock,
        stores: stores.clone(),
        pods: PodWatches::new(client.clone(), options.streaming_lists, triggers),
        metrics: metrics.clone(),
        evictions: Default::default(),
        evictions_in_flight: tokio::sync::Semaphore::new(context::EVICTIONS_IN_FLIGHT),
        written: Default::default(),
        budgets_spent: spent,
        target_writes: Default::default(),
        jobs_created: Default::default(),
        policy_guards: Default::default(),
        http: options
            .health_http
            .clone()
            .unwrap_or_else(rollout::health::http_client),
        ready,
    });

    let rollouts = {
        let (s1, s2, s3, s4, s5, s6) = (
            stores.clone(),
            stores.clone(),
            stores.clone(),
            stores.clone(),
            stores.clone(),
            stores.clone(),
        );
        Controller::for_shared_stream(caches.rollouts.applied(), stores.rollouts.clone())
            .watches_shared_stream(caches.policies.changes(), move |p: Arc<PatchPolicy>| {
                rollouts_of_policy(&s1.rollouts, &p.name_any())
            })
            .watches_shared_stream(
                caches.windows.changes(),
                move |w: Arc<MaintenanceWindow>| rollouts_of_window(&s2, &w.name_any()),
            )
            .watches_shared_stream(caches.nodes.changes(), move |_| active_rollouts(&s3, true))
            .watches_shared_stream(caches.namespaces.changes(), move |_| {
                active_rollouts(&s4, false)
            })
            .watches_shared_stream(caches.deployments.changes(), move |_| {
                active_rollouts(&s5, false)
            })
            .watches_shared_stream(caches.statefulsets.changes(), move |_| {
                active_rollouts(&s6, false)
            })
            .watches_shared_stream(caches.daemonsets.changes(), {
                let s = stores.clone();
                move |_| active_rollouts(&s, false)
            })
            .watches_shared_stream(caches.locked_nodes.changes(), |n| lock_holder(n.as_ref()))
            .watches_shared_stream(caches.locked_deployments.changes(), |d| {
                lock_holder(d.as_ref())
            })
            .watches_shared_stream(caches.locked_statefulsets.changes(), |d| {
                lock_holder(d.as_ref())
            })
            .watches_shared_stream(caches.locked_daemonsets.changes(), |d| {
                lock_holder(d.as_ref())
            })
            .watches_shared_stream(caches.jobs.changes(), |j| labelled(j.as_ref()))
            .watches_shared_stream(caches.budgets.changes(), {
                let ctx = ctx.clone();
                move |b| {
                    ctx.rollouts_blocked_by(&rollout::budgets::key(&b))
                        .iter()
                        .map(|r| ObjectRef::new(r))
                        .collect::<Vec<_>>()
                }
            })
            .reconcile_on(futures::stream::unfold(triggered, |mut rx| async move {
                rx.recv().await.map(|r| (r, rx))
            }))
            .graceful_shutdown_on(shutdown.clone())
            .run(rollout::reconcile, rollout::error_policy, ctx.clone())
            .for_each(|_| async {})
    };
    let policies = {
        let (s1, s2, s3) = (stores.clone(), stores.clone(), stores.clone());
        Controller::for_shared_stream(caches.policies.applied(), stores.policies.clone())
            .watches_shared_stream(caches.rollouts.changes(), |r: Arc<PatchRollout>| {
                vec![ObjectRef::<PatchPolicy>::new(&r.spec.policy)]
            })
            .watches_shared_stream(caches.nodes.changes(), move |_| {
                policies_of_scope(&s1, true)
            })
            .watches_shared_stream(caches.namespaces.changes(), move |_| {
                policies_of_scope(&s2, false)
            })
            .watches_shared_stream(caches.deployments.changes(), move |_| {
                policies_of_scope(&s3, false)
            })
            .watches_shared_stream(caches.notifiers.changes(), {
                let s = stores.clone();
                move |n: Arc<Notifier>| policies_naming(&s, &n.name_any())
            })
            .graceful_shutdown_on(shutdown.clone())
            .run(policy::reconcile, policy::error_policy, ctx.clone())
            .for_each(|_| async {})
    };
    let notifiers = {
        let s = stores.clone();
        Controller::for_shared_stream(caches.notifiers.applied(), stores.notifiers.clone())
            .watches_shared_stream(caches.rollouts.changes(), move |r: Arc<PatchRollout>| {
                notifiers_of_policy(&s, &r.spec.policy)
            })
            .watches_shared_stream(caches.policies.changes(), |p: Arc<PatchPolicy>| {
                p.spec
                    .notifiers()
                    .iter()
                    .map(|name| ObjectRef::<Notifier>::new(name))
                    .collect::<Vec<_>>()
            })
            .graceful_shutdown_on(shutdown.clone())
            .run(
                notify::deliver::reconcile,
                notify::deliver::error_policy,
                ctx.clone(),
            )
            .for_each(|_| async {})
    };
    let windows = Controller::for_shared_stream(caches.windows.applied(), stores.windows.clone())
        .graceful_shutdown_on(shutdown.clone())
        .run(window::reconcile, window::error_policy, ctx.clone())
        .for_each(|_| async {});
    // The controllers have subscribed: the caches may fill.
    let driver_tasks: Vec<_> = drivers.into_iter().map(tokio::spawn).collect();
    let ready = async move {
        caches.ready().await;
        let _ = set_ready.send(true);
        metrics.serve_calendar(calendar);
        metrics.set_ready();
        tracing::info!("caches filled; reconciling");
    };
    let _ = tokio::join!(ready, rollouts, policies, windows, notifiers);
    for task in driver_tasks {
        task.abort();
    }
    Ok(())
}

/// The Notifiers that `policy` sends its notices to.
fn notifiers_of_policy(stores: &Stores, policy: &str) -> Refs<Notifier> {
    stores
        .policies
        .get(&ObjectRef::new(policy))
        .iter()
        .flat_map(|p| p.spec.notifiers().iter())
        .map(|name| ObjectRef::new(name))
        .collect()
}

/// The policies that send their notices to `notifier`.
fn policies_naming(stores: &Stores, notifier: &str) -> Refs<PatchPolicy> {
    stores
        .policies
        .state()
        .iter()
        .filter(|p| notify::ledger::names(p, notifier))
        .map(|p| ObjectRef::from_obj(p.as_ref()))
        .collect()
}

fn rollouts_of_policy(rollouts: &Store<PatchRollout>, policy: &str) -> Refs<PatchRollout> {
    rollouts
        .state()
        .iter()
        .filter(|r| r.spec.policy == policy)
        .map(|r| ObjectRef::from_obj(r.as_ref()))
        .collect()
}

fn rollouts_of_window(stores: &Stores, window: &str) -> Refs<PatchRollout> {
    let policies: Vec<String> = stores
        .policies
        .state()
        .iter()
        .filter(|p| p.spec.maintenance_window.as_deref() == Some(window))
        .map(|p| p.name_any())
        .collect();
    policies
        .iter()
        .flat_map(|p| rollouts_of_policy(&stores.rollouts, p))
        .collect()
}
