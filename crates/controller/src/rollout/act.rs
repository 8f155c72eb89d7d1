//! Carrying out the engine's actions as API calls: locks, drains, updater Jobs, images,
//! uncordons and releases. Each touches a target in one request, as SPEC 3.3's write budget
//! wants: the lock with the record and the cordon; the release with the record, the version
//! and (if due) the uncordon.
//!
//! Every write to a target is remembered (`TargetWrites`) until the caches have seen it, so
//! the next decision reads it back; the records of the policy's other rollouts are carried
//! over in each write of the records annotation (`Records`).
//!
//! Kept in one file (about 630 lines): every action writes through the same `TargetWrites`
//! and `Records` bookkeeping, and reading them side by side is how one checks that each
//! touches its target in one request.

use std::collections::BTreeMap;

use futures::StreamExt;
use jiff::SignedDuration;
use k8s_openapi::{
    api::{
        apps::v1::{DaemonSet, Deployment, StatefulSet},
        batch::v1::Job,
        core::v1::{Node, Pod},
    },
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};
use kube::{
    Api, Resource,
    api::{DeleteParams, EvictParams, Patch, PatchParams},
};
use patchpilot_engine::{
    image::ContainerImage,
    keys,
    machine::{Action, Record, RecordState, Records, Sibling, TargetAction},
    policy::WorkloadKind,
    target::{Candidate, TargetId, TargetKind},
};
use serde_json::{Value, json};

use super::{
    super::{
        context::{Context, EvictionState, MANAGER, TargetWrite, create_once},
        error::{Error, Result},
    },
    budgets, observe,
    read::{eviction_obstacle, must_leave},
};
use crate::podwatch::PodScope;
use patchpilot_api::{DrainSpec, PatchRollout, PatchSpec};

/// What an action needs besides itself.
pub struct Scene<'a> {
    /// The rollout.
    pub rollout: &'a PatchRollout,
    /// The policy's name.
    pub policy: &'a str,
    /// The patch.
    pub patch: &'a PatchSpec,
    /// The drain rules.
    pub drain: &'a DrainSpec,
    /// The policy's other rollouts: their records on a target are kept when this one writes.
    pub siblings: &'a [Sibling],
    /// The targets as the decision saw them (with the operator's own writes).
    pub candidates: &'a [Candidate],
}

impl Scene<'_> {
    fn name(&self) -> &str {
        self.rollout.metadata.name.as_deref().unwrap_or_default()
    }

    fn uid(&self) -> &str {
        self.rollout.metadata.uid.as_deref().unwrap_or_default()
    }

    /// Whether a record belongs to a rollout of the policy that still exists.
    fn keeps(&self, record: &Record) -> bool {
        record.belongs_to(self.name(), self.uid())
            || self
                .siblings
                .iter()
                .any(|s| record.belongs_to(&s.name, &s.uid))
    }

    /// The policy's records on a target, as the decision saw them.
    fn records(&self, target: &TargetId) -> Option<Records> {
        let candidate = self.candidates.iter().find(|c| &c.id == target)?;
        Records::read(&candidate.annotations, self.policy)
    }

    /// The records annotation once `record` is written over `previous`.
    fn with(&self, previous: Option<Records>, record: &Record) -> String {
        Records::with(previous, record.clone(), |r| self.keeps(r)).to_annotation()
    }
}

fn params() -> PatchParams {
    PatchParams {
        field_manager: Some(MANAGER.into()),
        ..PatchParams::default()
    }
}

/// Carries out one action.
pub async fn carry_out(ctx: &Context, scene: &Scene<'_>, action: &TargetAction) -> Result<()> {
    let record_key = keys::record(scene.policy);
    match action {
        TargetAction::Lock { target, record } => lock(ctx, scene, target, record).await,
        TargetAction::Drain { target } => drain(ctx, scene, target, false).await,
        TargetAction::ForceDrain { target } => drain(ctx, scene, target, true).await,
        TargetAction::RunUpdater {
            target,
            job,
            action,
            version,
            previous_version,
        } => {
            run_updater(
                ctx,
                scene,
                target,
                job,
                *action,
                version,
                previous_version.as_deref(),
            )
            .await
        }
        TargetAction::SetImages { target, images } => {
            let containers: Vec<Value> = images
                .iter()
                .map(|i| json!({"name": i.container, "image": i.image}))
                .collect();
            let body = json!({"spec": {"template": {"spec": {"containers": containers}}}});
            patch_target(ctx, target, Patch::Strategic(body), None).await
        }
        TargetAction::Uncordon { target, record } => {
            let records = scene.with(scene.records(target), record);
            let body = json!({"metadata": {"annotations": {record_key: records}}, "spec": {"unschedulable": false}});
            patch_target(ctx, target, Patch::Merge(body), None).await
        }
        TargetAction::Release {
            target,
            record,
            version,
            uncordon,
        } => release(ctx, scene, target, record, version.as_deref(), *uncordon).await,
        TargetAction::Hold { target, record } => {
            // The lock is written again with the record: one a person overwrote while the
            // work went on is the rollout's once more, so the record beside it says the
            // rollout still holds the target (and what it cordoned) until its rollback.
            let records = scene.with(scene.records(target), record);
            let body = json!({"metadata": {"annotations": {record_key: records, keys::LOCK: scene.name()}}});
            patch_target(ctx, target, Patch::Merge(body), None).await
        }
        TargetAction::MarkFailed { target, record } => {
            let records = scene.with(scene.records(target), record);
            let body = json!({"metadata": {"annotations": {record_key: records}}});
            patch_target(ctx, target, Patch::Merge(body), None).await
        }
        TargetAction::Abandon { target, uncordon } => {
            let records = Records::without(scene.records(target), scene.name(), scene.uid())
                .map(|r| r.to_annotation());
            let mut body = json!({"metadata": {
                "annotations": {keys::LOCK: null, record_key: records},
                "labels": {keys::LOCKED_LABEL: null},
            }});
            if *uncordon {
                body["spec"] = json!({"unschedulable": false});
            }
            patch_target(ctx, target, Patch::Merge(body), None).await
        }
        TargetAction::Unlock { target } => {
            let body = json!({"metadata": {"annotations": {keys::LOCK: null}, "labels": {keys::LOCKED_LABEL: null}}});
            patch_target(ctx, target, Patch::Merge(body), None).await
        }
        TargetAction::PauseRollout => {
            let rollouts: Api<PatchRollout> = Api::all(ctx.client.clone());
            let name = scene.name();
            rollouts
                .patch(
                    name,
                    &params(),
                    &Patch::Merge(json!({"spec": {"paused": true}})),
                )
                .await
                .map(|_| ())
                .map_err(|e| Error::api(format!("pause rollout {name}"), e))
        }
    }
}

fn node_name(target: &TargetId) -> &str {
    target.as_str().trim_start_matches("Node/")
}

/// Patches a target, and remembers what the write left on it until the caches have seen
/// it. `fresh` is the version a read just before gave, if there was one.
pub(crate) async fn patch_target(
    ctx: &Context,
    target: &TargetId,
    patch: Patch<Value>,
    fresh: Option<&str>,
) -> Result<()> {
    let cached = observe::cached_versions(ctx, target);
    let fail = |e| Error::api(format!("patch {target}"), e);
    let client = ctx.client.clone();
    let (meta, unschedulable) = match TargetId::parse(target.as_str()) {
        Some((TargetKind::Node, _, name)) => {
            let node = Api::<Node>::all(client)
                .patch(name, &params(), &patch)
                .await
                .map_err(fail)?;
            let unschedulable = node.spec.as_ref().and_then(|s| s.unschedulable);
            (node.metadata, unschedulable.unwrap_or(false))
        }
        Some((TargetKind::Workload(kind), Some(namespace), name)) => {
            let meta = match kind {
                WorkloadKind::Deployment => Api::<Deployment>::namespaced(client, namespace)
                    .patch(name, &params(), &patch)
                    .await
                    .map(|w| w.metadata),
                WorkloadKind::StatefulSet => Api::<StatefulSet>::namespaced(client, namespace)
                    .patch(name, &params(), &patch)
                    .await
                    .map(|w| w.metadata),
                WorkloadKind::DaemonSet => Api::<DaemonSet>::namespaced(client, namespace)
                    .patch(name, &params(), &patch)
                    .await
                    .map(|w| w.metadata),
            }
            .map_err(fail)?;
            (meta, false)
        }
        _ => return Err(Error::Conflict(format!("{target} is not a target"))),
    };
    let annotations: BTreeMap<String, String> = meta
        .annotations
        .unwrap_or_default()
        .into_iter()
        .filter(|(key, _)| keys::is_ours(key))
        .collect();
    let versions: Vec<&str> = cached.iter().map(String::as_str).chain(fresh).collect();
    ctx.target_writes.remember(
        target.as_str(),
        &versions,
        meta.resource_version.as_deref(),
        TargetWrite {
            annotations: annotations.into(),
            unschedulable,
        },
        ctx.clock.now(),
    );
    Ok(())
}

/// Takes the lock: one read of the target (its current state), one write carrying the read's
/// resource version, so that the lock is only taken on the state that was seen. A target
/// this rollout holds already (a held target starting its rollback) moves on under the same
/// lock; one another rollout holds is never taken.
async fn lock(ctx: &Context, scene: &Scene<'_>, target: &TargetId, record: &Record) -> Result<()> {
    let rollout = scene.name().to_owned();
    let mut record = record.clone();
    let version_key = keys::version(scene.policy);
    let (meta, body) = match TargetId::parse(target.as_str()) {
        Some((TargetKind::Node, _, name)) => {
            let nodes: Api<Node> = Api::all(ctx.client.clone());
            let node = nodes
                .get(name)
                .await
                .map_err(|e| Error::api(format!("read {target}"), e))?;
            let in_place = held_by(&node.metadata, target, &rollout, scene.policy)?;
            let unschedulable = node
                .spec
                .as_ref()
                .and_then(|s| s.unschedulable)
                .unwrap_or(false);
            // Cordon only a schedulable node; one this rollout cordoned and still holds
            // stays its to uncordon.
            record.cordoned = !unschedulable || (in_place && record.cordoned);
            record.boot_id = node
                .status
                .as_ref()
                .and_then(|s| s.node_info.as_ref())
                .map(|i| i.boot_id.clone());
            if record.state == RecordState::Applying {
                record.previous_version = node
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(&version_key))
                    .cloned();
            }
            let records = scene.with(records_of(&node.metadata, scene.policy), &record);
            let mut body = json!({"metadata": {
                "resourceVersion": node.metadata.resource_version,
                "annotations": {keys::LOCK: rollout, keys::record(scene.policy): records},
                "labels": {keys::LOCKED_LABEL: "true"},
            }});
            if !unschedulable {
                body["spec"] = json!({"unschedulable": true});
            }
            (node.metadata, Patch::Merge(body))
        }
        Some((TargetKind::Workload(kind), Some(namespace), name)) => {
            let client = &ctx.client;
            let (meta, images) = match kind {
                WorkloadKind::Deployment => {
                    read_workload::<Deployment>(client, namespace, name, target, |w| {
                        observe::Workload::Deployment(w.into())
                    })
                    .await?
                }
                WorkloadKind::StatefulSet => {
                    read_workload::<StatefulSet>(client, namespace, name, target, |w| {
                        observe::Workload::StatefulSet(w.into())
                    })
                    .await?
                }
                WorkloadKind::DaemonSet => {
                    read_workload::<DaemonSet>(client, namespace, name, target, |w| {
                        observe::Workload::DaemonSet(w.into())
                    })
                    .await?
                }
            };
            held_by(&meta, target, &rollout, scene.policy)?;
            let desired = match record.state {
                RecordState::Applying => {
                    record.previous_version = meta
                        .annotations
                        .as_ref()
                        .and_then(|a| a.get(&version_key))
                        .cloned();
                    record.images = images.clone();
                    let patches = patchpilot_api::convert::image_patches(scene.patch);
                    patchpilot_engine::image::patched(&images, &patches)
                }
                _ => record.images.clone(),
            };
            let containers: Vec<Value> = desired
                .iter()
                .map(|i| json!({"name": i.container, "image": i.image}))
                .collect();
            let records = scene.with(records_of(&meta, scene.policy), &record);
            let body = json!({
                "metadata": {
                    "resourceVersion": meta.resource_version,
                    "annotations": {keys::LOCK: rollout, keys::record(scene.policy): records},
                    "labels": {keys::LOCKED_LABEL: "true"},
                },
                "spec": {"template": {"spec": {"containers": containers}}},
            });
            (meta, Patch::Strategic(body))
        }
        _ => return Err(Error::Conflict(format!("{target} is not a target"))),
    };
    patch_target(ctx, target, body, meta.resource_version.as_deref()).await
}

/// Whether the rollout `rollout` holds the target's lock already; an error if another does
/// ([`untrusted::lock_holder`](patchpilot_engine::untrusted::lock_holder)).
fn held_by(meta: &ObjectMeta, target: &TargetId, rollout: &str, policy: &str) -> Result<bool> {
    let none = BTreeMap::new();
    let annotations = meta.annotations.as_ref().unwrap_or(&none);
    patchpilot_engine::untrusted::lock_holder(annotations, policy, rollout)
        .map_err(|holder| Error::Conflict(format!("{target} is locked by rollout {holder}")))
}

/// A policy's records in an object's metadata.
fn records_of(meta: &ObjectMeta, policy: &str) -> Option<Records> {
    Records::parse(meta.annotations.as_ref()?.get(&keys::record(policy))?)
}

/// Reads a workload about to be locked: its metadata and its container images.
async fn read_workload<K>(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    target: &TargetId,
    wrap: impl FnOnce(K) -> observe::Workload,
) -> Result<(ObjectMeta, Vec<ContainerImage>)>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned,
{
    let workload = Api::<K>::namespaced(client.clone(), namespace)
        .get(name)
        .await
        .map_err(|e| Error::api(format!("read {target}"), e))?;
    let meta = workload.meta().clone();
    Ok((meta, wrap(workload).images()))
}

/// The first interval of an eviction's back-off after the API server refused it.
const FIRST_RETRY: SignedDuration = SignedDuration::from_secs(5);
/// The longest.
const LAST_RETRY: SignedDuration = SignedDuration::from_secs(60);

/// How many evictions of one drain are in flight at once.
const EVICTIONS_AT_ONCE: usize = 16;

/// An eviction about to be asked for.
struct Eviction {
    namespace: String,
    name: String,
    /// `namespace/name`.
    key: String,
    /// What the budgets said (and claimed).
    verdict: budgets::BudgetVerdict,
    /// The back-off so far.
    interval: Option<SignedDuration>,
}

/// Evicts the node's pods that may go, each with its own back-off after refusals. Every
/// eviction is decided first (the budgets' verdicts, claiming what they allow), then they
/// are asked for together, as `kubectl drain` does, so that one answer's latency does not
/// hold the next.
async fn drain(ctx: &Context, scene: &Scene<'_>, target: &TargetId, force: bool) -> Result<()> {
    let Some(pods) = ctx.pods.pods(&PodScope::Node(node_name(target).to_owned())) else {
        return Ok(());
    };
    let now = ctx.clock.now();
    let rollout = scene.rollout.metadata.name.clone().unwrap_or_default();
    let mut asks = Vec::new();
    for pod in pods
        .iter()
        .filter(|p| must_leave(p, scene.drain) && p.metadata.deletion_timestamp.is_none())
    {
        let namespace = pod.metadata.namespace.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        let key = format!("{namespace}/{name}");
        if force {
            let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &namespace);
            match api.delete(&name, &DeleteParams::default()).await {
                Ok(_) => ctx.set_eviction(&key, None),
                Err(kube::Error::Api(status)) if status.code == 404 => ctx.set_eviction(&key, None),
                Err(e) => return Err(Error::api(format!("delete pod {key}"), e)),
            }
            continue;
        }
        if eviction_obstacle(pod, scene.drain).is_some() {
            continue;
        }
        let previous = ctx.eviction(&key);
        // The back-off after refusals: 5 s, doubling up to a minute.
        let interval = previous.as_ref().map(|p| p.interval);
        // An eviction the budget allows counts against it from here, before it is asked
        // for: the budget version that lists it may come before the answer.
        let verdict = budgets::claim(ctx, pod);
        match &verdict {
            // The budget would refuse: do not ask; its next change triggers this rollout.
            budgets::BudgetVerdict::Refused { budget } => {
                ctx.set_eviction(
                    &key,
                    Some(EvictionState {
                        next_try: now,
                        interval: interval.unwrap_or(FIRST_RETRY),
                        blocked_by: Some(budget.clone()),
                        rollout: rollout.clone(),
                    }),
                );
                continue;
            }
            // The budget allows it now, whatever the back-off said.
            budgets::BudgetVerdict::Allowed { .. } => {}
            budgets::BudgetVerdict::Ask => {
                if previous.as_ref().is_some_and(|p| p.next_try > now) {
                    continue;
                }
            }
        }
        asks.push(Eviction {
            namespace,
            name,
            key,
            verdict,
            interval,
        });
    }
    let requests: Vec<_> = asks
        .iter()
        .map(|ask| {
            let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ask.namespace);
            let name = ask.name.clone();
            async move {
                // Closed only when the context goes, with nothing left to drain for.
                let _permit = ctx.evictions_in_flight.acquire().await;
                api.evict(&name, &EvictParams::default()).await
            }
        })
        .collect();
    let answers: Vec<_> = futures::stream::iter(requests)
        .buffered(EVICTIONS_AT_ONCE)
        .collect()
        .await;
    let mut failure = None;
    for (ask, answer) in asks.iter().zip(answers) {
        if answer.is_err()
            && let budgets::BudgetVerdict::Allowed {
                budget,
                takes: true,
            } = &ask.verdict
        {
            // Refused or failed: it took nothing from the budget.
            ctx.budgets_spent.forget(budget, &ask.name);
        }
        match answer {
            Ok(_) => ctx.set_eviction(&ask.key, None),
            Err(kube::Error::Api(status)) if status.code == 404 => ctx.set_eviction(&ask.key, None),
            Err(kube::Error::Api(status)) if status.code == 429 => {
                let interval = ask
                    .interval
                    .map_or(FIRST_RETRY, |i| (i * 2).min(LAST_RETRY));
                let budget = status
                    .details
                    .as_ref()
                    .and_then(|d| d.causes.iter().find(|c| c.reason == "DisruptionBudget"))
                    .and_then(|c| c.message.split_whitespace().nth(3).map(str::to_owned))
                    .map(|budget| format!("{}/{budget}", ask.namespace));
                let next_try = now.saturating_add(interval).unwrap_or(now);
                ctx.set_eviction(
                    &ask.key,
                    Some(EvictionState {
                        next_try,
                        interval,
                        blocked_by: budget,
                        rollout: rollout.clone(),
                    }),
                );
            }
            Err(e) => {
                failure.get_or_insert(Error::api(format!("evict pod {}", ask.key), e));
            }
        }
    }
    failure.map_or(Ok(()), Err)
}

/// Creates the updater Job: the policy's pod template pinned to the node, tolerating its
/// cordon, with the `PATCHPILOT_*` environment.
#[allow(clippy::too_many_arguments)]
async fn run_updater(
    ctx: &Context,
    scene: &Scene<'_>,
    target: &TargetId,
    job_name: &str,
    action: Action,
    version: &str,
    previous_version: Option<&str>,
) -> Result<()> {
    let job = job_name;
    let Some(updater) = &scene.patch.updater else {
        return Err(Error::Conflict("the patch has no updater".into()));
    };
    // A Job this operator created for this very lock, not in the cache yet, is not sent
    // twice (its name carries the lock).
    if ctx.created_job(job) {
        return Ok(());
    }
    let node = node_name(target);
    let rollout = scene.name().to_owned();
    let mut template = serde_json::to_value(&updater.template.0).unwrap_or_default();
    template["spec"]["nodeName"] = json!(node);
    template["spec"]["restartPolicy"] = json!("Never");
    let tolerations = template["spec"]["tolerations"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut tolerations = tolerations;
    tolerations.push(json!({"operator": "Exists"}));
    template["spec"]["tolerations"] = json!(tolerations);
    let env = json!([
        {"name": "PATCHPILOT_ACTION", "value": action.as_str()},
        {"name": "PATCHPILOT_VERSION", "value": version},
        {"name": "PATCHPILOT_PREVIOUS_VERSION", "value": previous_version.unwrap_or("")},
        {"name": "PATCHPILOT_NODE", "value": node},
    ]);
    if let Some(containers) = template["spec"]["containers"].as_array_mut() {
        for container in containers {
            let mut merged = container["env"].as_array().cloned().unwrap_or_default();
            merged.extend(env.as_array().cloned().unwrap_or_default());
            container["env"] = json!(merged);
        }
    }
    template["metadata"]["labels"][keys::ROLLOUT_LABEL] = json!(rollout);
    let body = json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job,
            "namespace": crate::context::operator_namespace(),
            "labels": {keys::ROLLOUT_LABEL: rollout, "app.kubernetes.io/managed-by": "patchpilot", "app.kubernetes.io/component": "updater"},
            "annotations": {"patchpilot.dev/target": target.to_string(), "patchpilot.dev/action": action.as_str()},
            // Owned by the rollout, so that deleting it (once it has let go of its targets)
            // deletes its Jobs too.
            "ownerReferences": [{
                "apiVersion": PatchRollout::api_version(&()),
                "kind": PatchRollout::kind(&()),
                "name": rollout,
                "uid": scene.uid(),
            }],
        },
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": updater.timeout.as_millis().div_ceil(1000).max(1),
            "ttlSecondsAfterFinished": 86_400,
            "template": template,
        },
    });
    let job_object: Job = serde_json::from_value(body)
        .map_err(|e| Error::Conflict(format!("the updater template is not a pod template: {e}")))?;
    let jobs: Api<Job> = Api::namespaced(ctx.client.clone(), &crate::context::operator_namespace());
    // A Job of this name that exists already was made for this very lock (its name says
    // so); the cache will show it.
    if create_once(&jobs, &job_object, &format!("the updater Job of {target}")).await? {
        ctx.note_job(job_name, true);
    }
    Ok(())
}

/// Writes the final record and version and releases the lock, in one request.
async fn release(
    ctx: &Context,
    scene: &Scene<'_>,
    target: &TargetId,
    record: &Record,
    version: Option<&str>,
    uncordon: bool,
) -> Result<()> {
    let records = scene.with(scene.records(target), record);
    let mut body = json!({"metadata": {
        "annotations": {keys::LOCK: null, keys::record(scene.policy): records, keys::version(scene.policy): version},
        "labels": {
            keys::LOCKED_LABEL: null,
            keys::version_label(scene.policy): version.and_then(keys::version_label_value),
        },
    }});
    if uncordon {
        body["spec"] = json!({"unschedulable": false});
    }
    let outcome = format!("{:?}", record.state);
    let seconds = ctx.clock.now().duration_since(record.started).as_secs_f64();
    patch_target(ctx, target, Patch::Merge(body), None).await?;
    let kind = target.as_str().split('/').next().unwrap_or("");
    ctx.metrics.target_finished(kind, &outcome, seconds);
    Ok(())
}
