//! The cluster as the engine needs to see it: candidates from the metadata caches, and the
//! live state and health of the targets in progress, from the full caches and pod watches.
//!
//! Kept in one file (about 600 lines): it only fetches; what it fetches is judged by the pure
//! readers of `read.rs`.

use std::{collections::BTreeMap, sync::Arc};

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::{
    apps::v1::{DaemonSet, Deployment, StatefulSet},
    batch::v1::Job,
};
use kube::runtime::reflector::ObjectRef;
use patchpilot_engine::{
    image::ContainerImage,
    machine::{
        Action, JobFacts, JobState, Live, NodeFacts, Observed, Record, RecordState, WorkloadFacts,
        WorkloadRollout,
    },
    naming,
    plan::{Namespaces, Scope, TargetRules},
    policy::WorkloadKind,
    rollout::Step,
    target::{Candidate, TargetId, TargetKind},
};

use super::{
    super::{
        candidates::{self, ObjectKind},
        context::Context,
        podwatch::PodScope,
    },
    health::{self, Changed, Subject},
    read::{
        daemonset_rollout, deployment_rollout, eviction_obstacle, job_facts, must_leave,
        node_ready_since, statefulset_rollout,
    },
};
use patchpilot_api::{DrainSpec, HealthCheck};

use crate::pod::PodFacts;

/// The candidates and namespaces a policy's rules look at.
pub fn candidates(ctx: &Context, rules: &TargetRules) -> (Vec<Candidate>, Namespaces) {
    let mut namespaces = Namespaces::new();
    let candidates = match &rules.scope {
        Scope::Nodes { .. } => ctx
            .stores
            .nodes
            .state()
            .iter()
            .filter_map(|n| candidate(ctx, ObjectKind::Node, n))
            .collect(),
        Scope::Workloads { kinds, .. } => {
            for namespace in ctx.stores.namespaces.state() {
                candidates::add_namespace(&mut namespaces, &namespace);
            }
            let stores = &ctx.stores;
            let mut found = Vec::new();
            for kind in kinds {
                found.extend(match kind {
                    WorkloadKind::Deployment => of_kind(ctx, &stores.deployments, *kind),
                    WorkloadKind::StatefulSet => of_kind(ctx, &stores.statefulsets, *kind),
                    WorkloadKind::DaemonSet => of_kind(ctx, &stores.daemonsets, *kind),
                });
            }
            found
        }
    };
    (candidates, namespaces)
}

/// Every node and workload, as candidates.
pub fn every_target(ctx: &Context) -> Vec<Candidate> {
    let nodes = TargetRules {
        scope: Scope::Nodes {
            selector: patchpilot_engine::selector::Selector::everything(),
            pool_label: None,
        },
        exclude: None,
    };
    let workloads = TargetRules {
        scope: Scope::Workloads {
            namespaces: None,
            selector: patchpilot_engine::selector::Selector::everything(),
            kinds: [
                WorkloadKind::Deployment,
                WorkloadKind::StatefulSet,
                WorkloadKind::DaemonSet,
            ]
            .into(),
        },
        exclude: None,
    };
    let (mut all, _) = candidates(ctx, &nodes);
    all.extend(candidates(ctx, &workloads).0);
    all
}

/// The candidates of one workload kind.
fn of_kind<K>(
    ctx: &Context,
    store: &kube::runtime::reflector::Store<candidates::TargetMeta<K>>,
    kind: WorkloadKind,
) -> Vec<Candidate>
where
    K: kube::Resource<DynamicType = ()> + 'static,
{
    store
        .state()
        .iter()
        .filter_map(|meta| candidate(ctx, ObjectKind::Workload(kind), meta))
        .collect()
}

/// A cached object as a candidate, with the operator's own last write to it where the
/// cache has not caught up with it yet.
fn candidate<K>(
    ctx: &Context,
    kind: ObjectKind,
    meta: &candidates::TargetMeta<K>,
) -> Option<Candidate>
where
    K: kube::Resource<DynamicType = ()> + 'static,
{
    let mut candidate = candidates::candidate(kind, meta)?;
    let version = kube::Resource::meta(meta).resource_version.as_deref();
    if let Some(write) = ctx.target_writes.get(candidate.id.as_str(), version) {
        candidate.annotations = write.annotations;
    }
    Some(candidate)
}

/// A workload in progress, in full.
pub enum Workload {
    /// A Deployment.
    Deployment(Arc<Deployment>),
    /// A StatefulSet.
    StatefulSet(Arc<StatefulSet>),
    /// A DaemonSet.
    DaemonSet(Arc<DaemonSet>),
}

impl Workload {
    /// The locked workload a target names, from the full caches.
    pub fn of(ctx: &Context, kind: WorkloadKind, namespace: &str, name: &str) -> Option<Self> {
        match kind {
            WorkloadKind::Deployment => ctx
                .stores
                .locked_deployments
                .get(&ObjectRef::new(name).within(namespace))
                .map(Workload::Deployment),
            WorkloadKind::StatefulSet => ctx
                .stores
                .locked_statefulsets
                .get(&ObjectRef::new(name).within(namespace))
                .map(Workload::StatefulSet),
            WorkloadKind::DaemonSet => ctx
                .stores
                .locked_daemonsets
                .get(&ObjectRef::new(name).within(namespace))
                .map(Workload::DaemonSet),
        }
    }

    fn template(&self) -> Option<&k8s_openapi::api::core::v1::PodTemplateSpec> {
        match self {
            Workload::Deployment(d) => d.spec.as_ref().map(|s| &s.template),
            Workload::StatefulSet(s) => s.spec.as_ref().map(|s| &s.template),
            Workload::DaemonSet(d) => d.spec.as_ref().map(|s| &s.template),
        }
    }

    /// The containers' images.
    pub fn images(&self) -> Vec<ContainerImage> {
        self.template()
            .and_then(|t| t.spec.as_ref())
            .map(|s| {
                s.containers
                    .iter()
                    .map(|c| ContainerImage {
                        container: c.name.clone(),
                        image: c.image.clone().unwrap_or_default(),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The label selector of the workload's pods, in query syntax.
    pub fn selector(&self) -> Option<String> {
        let selector = match self {
            Workload::Deployment(d) => d.spec.as_ref().map(|s| &s.selector),
            Workload::StatefulSet(s) => s.spec.as_ref().map(|s| &s.selector),
            Workload::DaemonSet(d) => d.spec.as_ref().map(|s| &s.selector),
        }?;
        let labels = selector.match_labels.as_ref()?;
        (!labels.is_empty()).then(|| {
            labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",")
        })
    }

    /// How the workload's own rollout is doing, judged as `kubectl rollout status` does.
    pub fn rollout(&self) -> WorkloadRollout {
        match self {
            Workload::Deployment(d) => deployment_rollout(d),
            Workload::StatefulSet(s) => statefulset_rollout(s),
            Workload::DaemonSet(d) => daemonset_rollout(d),
        }
    }
}

/// The versions of a target the caches hold now: its metadata's, and its whole object's
/// while it is locked.
pub fn cached_versions(ctx: &Context, target: &TargetId) -> Vec<String> {
    let stores = &ctx.stores;
    match TargetId::parse(target.as_str()) {
        Some((TargetKind::Node, _, name)) => {
            versions(&stores.nodes, &stores.locked_nodes, name, None)
        }
        Some((TargetKind::Workload(kind), Some(namespace), name)) => match kind {
            WorkloadKind::Deployment => versions(
                &stores.deployments,
                &stores.locked_deployments,
                name,
                Some(namespace),
            ),
            WorkloadKind::StatefulSet => versions(
                &stores.statefulsets,
                &stores.locked_statefulsets,
                name,
                Some(namespace),
            ),
            WorkloadKind::DaemonSet => versions(
                &stores.daemonsets,
                &stores.locked_daemonsets,
                name,
                Some(namespace),
            ),
        },
        _ => Vec::new(),
    }
}

/// The versions of one object in its metadata cache and its full cache.
fn versions<K>(
    metadata: &kube::runtime::reflector::Store<candidates::TargetMeta<K>>,
    full: &kube::runtime::reflector::Store<K>,
    name: &str,
    namespace: Option<&str>,
) -> Vec<String>
where
    K: kube::Resource<DynamicType = ()> + Clone + 'static,
{
    fn key<K: kube::Resource<DynamicType = ()>>(
        name: &str,
        namespace: Option<&str>,
    ) -> ObjectRef<K> {
        match namespace {
            Some(ns) => ObjectRef::new(name).within(ns),
            None => ObjectRef::new(name),
        }
    }
    let meta = metadata
        .get(&key(name, namespace))
        .and_then(|m| version(m.as_ref()));
    let whole = full
        .get(&key(name, namespace))
        .and_then(|o| version(o.as_ref()));
    meta.into_iter().chain(whole).collect()
}

fn version<K: kube::Resource>(object: &K) -> Option<String> {
    object.meta().resource_version.clone()
}

/// The pod watches the targets in progress need.
pub fn pod_scopes(ctx: &Context, targets: &[TargetId]) -> Vec<PodScope> {
    targets
        .iter()
        .filter_map(|target| match TargetId::parse(target.as_str())? {
            (TargetKind::Node, _, name) => Some(PodScope::Node(name.to_owned())),
            (TargetKind::Workload(kind), Some(namespace), name) => {
                let selector = Workload::of(ctx, kind, namespace, name)?.selector()?;
                Some(PodScope::Workload {
                    namespace: namespace.to_owned(),
                    selector,
                })
            }
            (TargetKind::Workload(_), None, _) => None,
        })
        .collect()
}

/// The Job of a name in the Jobs namespace, from the cache.
pub fn job(ctx: &Context, name: &str) -> Option<Arc<Job>> {
    ctx.stores
        .jobs
        .get(&ObjectRef::new(name).within(&crate::context::operator_namespace()))
}

/// Everything needed to observe the targets of one rollout.
pub struct Observation<'a> {
    /// The rollout's name.
    pub rollout: &'a str,
    /// The policy's name (it keys the records).
    pub policy: &'a str,
    /// The drain rules.
    pub drain: &'a DrainSpec,
    /// The health checks.
    pub checks: &'a [HealthCheck],
    /// The candidates (with their annotations).
    pub candidates: &'a [Candidate],
    /// Each target's step and its start, from the last status.
    pub steps: &'a BTreeMap<TargetId, (Step, Timestamp)>,
    /// How long a pod may take to turn Ready after it was scheduled (`health.timeout`).
    pub startup: SignedDuration,
}

impl Observation<'_> {
    /// A target's record of this policy, as its annotations show it.
    pub fn record(&self, target: &TargetId) -> Option<Record> {
        let candidate = self.candidates.iter().find(|c| &c.id == target)?;
        Record::read(&candidate.annotations, self.policy)
    }
}

/// The live state and health of `targets`; targets not observable yet are left out (the
/// engine waits for them).
pub async fn facts(
    ctx: &Context,
    observation: &Observation<'_>,
    targets: &[TargetId],
) -> BTreeMap<TargetId, Observed> {
    let mut facts = BTreeMap::new();
    for target in targets {
        let record = observation.record(target);
        let soaking_since = observation
            .steps
            .get(target)
            .filter(|(step, _)| *step == Step::Soaking)
            .map(|(_, since)| *since);
        let observed = match TargetId::parse(target.as_str()) {
            Some((TargetKind::Node, _, name)) => {
                node(
                    ctx,
                    observation,
                    target,
                    name,
                    record.as_ref(),
                    soaking_since,
                )
                .await
            }
            Some((TargetKind::Workload(kind), Some(namespace), name)) => {
                workload(
                    ctx,
                    observation,
                    target,
                    kind,
                    namespace,
                    name,
                    soaking_since,
                )
                .await
            }
            _ => None,
        };
        if let Some(observed) = observed {
            facts.insert(target.clone(), observed);
        }
    }
    facts
}

async fn node(
    ctx: &Context,
    observation: &Observation<'_>,
    target: &TargetId,
    name: &str,
    record: Option<&Record>,
    soaking_since: Option<Timestamp>,
) -> Option<Observed> {
    let node = ctx.stores.locked_nodes.get(&ObjectRef::new(name))?;
    let pods = ctx.pods.pods(&PodScope::Node(name.to_owned()))?;
    let leaving: Vec<&Arc<PodFacts>> = pods
        .iter()
        .filter(|p| must_leave(p, observation.drain))
        .collect();
    let pod_key = |p: &PodFacts| {
        format!(
            "{}/{}",
            p.metadata.namespace.as_deref().unwrap_or(""),
            p.metadata.name.as_deref().unwrap_or("")
        )
    };
    let blocked = leaving
        .iter()
        .filter_map(|p| {
            let key = pod_key(p);
            let why = ctx
                .eviction(&key)
                .and_then(|e| e.blocked_by)
                .map(|budget| format!("PodDisruptionBudget {budget} allows 0 disruptions"))
                .or_else(|| eviction_obstacle(p, observation.drain))?;
            Some((key, why))
        })
        .collect();
    let updater = record.and_then(|r| {
        let action = r.state.in_progress()?;
        let (rollout, attempt, lock) = (observation.rollout, r.attempt, r.lock_token());
        let job = naming::updater_job_name(rollout, name, action.as_str(), attempt, lock);
        let legacy = naming::legacy_updater_job_name(rollout, name, action.as_str(), attempt, lock);
        job_facts_of(ctx, &job).or_else(|| job_facts_of(ctx, &legacy))
    });
    let status = node.status.clone().unwrap_or_default();
    let written = ctx
        .target_writes
        .get(target.as_str(), node.metadata.resource_version.as_deref());
    let live = Live::Node(NodeFacts {
        unschedulable: written.map_or_else(
            || {
                node.spec
                    .as_ref()
                    .and_then(|s| s.unschedulable)
                    .unwrap_or(false)
            },
            |w| w.unschedulable,
        ),
        ready: health::node_ready(Some(&node)).is_ok()
            || status
                .conditions
                .iter()
                .flatten()
                .any(|c| c.type_ == "Ready" && c.status == "True"),
        ready_since: node_ready_since(&node),
        boot_id: status
            .node_info
            .as_ref()
            .map(|i| i.boot_id.clone())
            .unwrap_or_default(),
        pods_to_evict: leaving.iter().map(|p| pod_key(p)).collect(),
        blocked,
        updater,
    });
    // The updater's change took effect when its Job succeeded, or when the node was Ready
    // again after the reboot that followed.
    let changed_at = match &live {
        Live::Node(NodeFacts {
            updater:
                Some(JobFacts {
                    state: JobState::Succeeded,
                    finished,
                    ..
                }),
            ready_since,
            ..
        }) => finished.map(|at| ready_since.map_or(at, |ready| ready.max(at))),
        _ => None,
    };
    let jobs = check_jobs(ctx, observation, target, record);
    let subject = Subject {
        target,
        node: Some(&node),
        pods: &pods,
        rollout: Ok(()),
        soaking_since,
        jobs: &jobs,
        now: ctx.clock.now(),
        startup: observation.startup,
        changed: Changed::Since(changed_at),
    };
    let health = health::run(&ctx.http, observation.checks, &subject).await;
    Some(Observed {
        live,
        health: Some(health),
    })
}

/// What the Job `name` has done, from the cache; a Job the operator created that the cache
/// does not show yet is running.
fn job_facts_of(ctx: &Context, name: &str) -> Option<JobFacts> {
    match job(ctx, name) {
        Some(job) => {
            ctx.note_job(name, false);
            Some(job_facts(&job))
        }
        None => ctx.created_job(name).then_some(JobFacts {
            state: JobState::Running,
            finished: None,
            message: None,
        }),
    }
}

#[allow(clippy::too_many_arguments)]
async fn workload(
    ctx: &Context,
    observation: &Observation<'_>,
    target: &TargetId,
    kind: WorkloadKind,
    namespace: &str,
    name: &str,
    soaking_since: Option<Timestamp>,
) -> Option<Observed> {
    let workload = Workload::of(ctx, kind, namespace, name)?;
    let selector = workload.selector()?;
    let pods = ctx.pods.pods(&PodScope::Workload {
        namespace: namespace.to_owned(),
        selector,
    })?;
    let rollout = workload.rollout();
    let judged = match &rollout {
        WorkloadRollout::Complete => Ok(()),
        WorkloadRollout::Progressing(why) | WorkloadRollout::Failed(why) => Err(why.clone()),
    };
    let images = workload.images();
    let record = observation.record(target);
    let jobs = check_jobs(ctx, observation, target, record.as_ref());
    let subject = Subject {
        target,
        node: None,
        pods: &pods,
        rollout: judged,
        soaking_since,
        jobs: &jobs,
        now: ctx.clock.now(),
        startup: observation.startup,
        changed: Changed::Revision(&images),
    };
    let health = health::run(&ctx.http, observation.checks, &subject).await;
    let live = Live::Workload(WorkloadFacts { images, rollout });
    Some(Observed {
        live,
        health: Some(health),
    })
}

/// The name of the Job running health check `index` for a target: one per rollout,
/// target, action (apply or rollback), attempt (`spec.retry`) and lock, so that a rollback,
/// a retry or a later lock checks afresh, never with a Job of an earlier one.
pub fn check_job_name(
    rollout: &str,
    target: &TargetId,
    record: Option<&Record>,
    index: usize,
) -> String {
    let action = match record.map(|r| r.state) {
        Some(RecordState::RollingBack | RecordState::RolledBack | RecordState::RollbackFailed) => {
            Action::Rollback
        }
        _ => Action::Apply,
    };
    let attempt = record.map_or(0, |r| r.attempt);
    let lock = record.map_or(0, Record::lock_token);
    let key = format!(
        "{rollout}\n{target}\n{}\n{attempt}\n{lock}\ncheck-{index}",
        action.as_str()
    );
    format!(
        "patchpilot-check-{:012x}",
        naming::fnv1a(key.as_bytes()) & 0xffff_ffff_ffff
    )
}

/// The outcomes of a target's `job` checks so far.
fn check_jobs(
    ctx: &Context,
    observation: &Observation<'_>,
    target: &TargetId,
    record: Option<&Record>,
) -> Vec<(usize, Option<Result<(), String>>)> {
    observation
        .checks
        .iter()
        .enumerate()
        .filter(|(_, c)| c.job.is_some())
        .map(|(index, _)| {
            let outcome = job_facts_of(
                ctx,
                &check_job_name(observation.rollout, target, record, index),
            )
            .and_then(|f| match f.state {
                JobState::Running => None,
                JobState::Succeeded => Some(Ok(())),
                JobState::Failed => Some(Err(f
                    .message
                    .unwrap_or_else(|| "the check's Job failed".into()))),
            });
            (index, outcome)
        })
        .collect()
}
