//! Carrying out the engine's actions as API calls: locks, drains, updater Jobs, images,
//! uncordons and releases. Each touches a target in one request, as SPEC 3.3's write budget
//! wants: the lock with the record and the cordon; the release with the record, the version
//! and (if due) the uncordon.

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
    Api,
    api::{DeleteParams, EvictParams, Patch, PatchParams, PostParams},
};
use patchpilot_engine::{
    image::ContainerImage,
    keys,
    machine::{Action, Record, RecordState, TargetAction},
    policy::WorkloadKind,
    target::{TargetId, TargetKind},
};
use serde_json::{Value, json};

use super::{
    super::{
        context::{Context, EvictionState, MANAGER},
        error::{Error, Result},
    },
    budgets,
    observe::{self, eviction_obstacle, job_namespace, must_leave},
};
use crate::{
    api::{DrainSpec, PatchRollout, PatchSpec},
    controller::podwatch::PodScope,
};

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
}

fn params() -> PatchParams {
    PatchParams {
        field_manager: Some(MANAGER.into()),
        ..PatchParams::default()
    }
}

/// Carries out one action.
pub async fn carry_out(ctx: &Context, scene: &Scene<'_>, action: &TargetAction) -> Result<()> {
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
            patch_workload(
                ctx,
                target,
                Patch::Strategic(
                    json!({"spec": {"template": {"spec": {"containers": containers}}}}),
                ),
            )
            .await
        }
        TargetAction::Uncordon { target, record } => {
            let body = json!({"metadata": {"annotations": {keys::record(scene.policy): record.to_annotation()}}, "spec": {"unschedulable": false}});
            patch_node(ctx, target, body).await
        }
        TargetAction::Release {
            target,
            record,
            version,
            uncordon,
        } => release(ctx, scene, target, record, version.as_deref(), *uncordon).await,
        TargetAction::MarkFailed { target, record } => {
            let body = json!({"metadata": {"annotations": {keys::record(scene.policy): record.to_annotation()}}});
            patch_target(ctx, target, body).await
        }
        TargetAction::Unlock { target } => {
            let body = json!({"metadata": {"annotations": {keys::LOCK: null}, "labels": {keys::LOCKED_LABEL: null}}});
            patch_target(ctx, target, body).await
        }
        TargetAction::PauseRollout => {
            let rollouts: Api<PatchRollout> = Api::all(ctx.client.clone());
            let name = scene.rollout.metadata.name.as_deref().unwrap_or("");
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

async fn patch_node(ctx: &Context, target: &TargetId, body: Value) -> Result<()> {
    let nodes: Api<Node> = Api::all(ctx.client.clone());
    nodes
        .patch(node_name(target), &params(), &Patch::Merge(body))
        .await
        .map(|_| ())
        .map_err(|e| Error::api(format!("patch {target}"), e))
}

/// Patches any target's metadata (merge patch).
async fn patch_target(ctx: &Context, target: &TargetId, body: Value) -> Result<()> {
    match TargetId::parse(target.as_str()) {
        Some((TargetKind::Node, _, _)) => patch_node(ctx, target, body).await,
        _ => patch_workload(ctx, target, Patch::Merge(body)).await,
    }
}

async fn patch_workload(ctx: &Context, target: &TargetId, patch: Patch<Value>) -> Result<()> {
    let Some((TargetKind::Workload(kind), Some(namespace), name)) =
        TargetId::parse(target.as_str())
    else {
        return Err(Error::Conflict(format!("{target} is not a workload")));
    };
    let client = ctx.client.clone();
    let outcome = match kind {
        WorkloadKind::Deployment => Api::<Deployment>::namespaced(client, namespace)
            .patch(name, &params(), &patch)
            .await
            .map(|_| ()),
        WorkloadKind::StatefulSet => Api::<StatefulSet>::namespaced(client, namespace)
            .patch(name, &params(), &patch)
            .await
            .map(|_| ()),
        WorkloadKind::DaemonSet => Api::<DaemonSet>::namespaced(client, namespace)
            .patch(name, &params(), &patch)
            .await
            .map(|_| ()),
    };
    outcome.map_err(|e| Error::api(format!("patch {target}"), e))
}

/// Takes the lock: one read of the target (its current state), one write carrying the read's
/// resource version, so that the lock is only taken on the state that was seen.
async fn lock(ctx: &Context, scene: &Scene<'_>, target: &TargetId, record: &Record) -> Result<()> {
    let rollout = scene.rollout.metadata.name.clone().unwrap_or_default();
    let mut record = record.clone();
    let version_key = keys::version(scene.policy);
    match TargetId::parse(target.as_str()) {
        Some((TargetKind::Node, _, name)) => {
            let nodes: Api<Node> = Api::all(ctx.client.clone());
            let node = nodes
                .get(name)
                .await
                .map_err(|e| Error::api(format!("read {target}"), e))?;
            if node
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(keys::LOCK))
                .is_some_and(|holder| *holder != rollout)
            {
                return Err(Error::Conflict(format!(
                    "{target} is locked by another rollout"
                )));
            }
            let schedulable = !node
                .spec
                .as_ref()
                .and_then(|s| s.unschedulable)
                .unwrap_or(false);
            record.cordoned = schedulable;
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
            let mut body = json!({"metadata": {
                "resourceVersion": node.metadata.resource_version,
                "annotations": {keys::LOCK: rollout, keys::record(scene.policy): record.to_annotation()},
                "labels": {keys::LOCKED_LABEL: "true"},
            }});
            if schedulable {
                body["spec"] = json!({"unschedulable": true});
            }
            nodes
                .patch(name, &params(), &Patch::Merge(body))
                .await
                .map(|_| ())
                .map_err(|e| Error::api(format!("lock {target}"), e))
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
            if meta
                .annotations
                .as_ref()
                .and_then(|a| a.get(keys::LOCK))
                .is_some_and(|holder| *holder != rollout)
            {
                return Err(Error::Conflict(format!(
                    "{target} is locked by another rollout"
                )));
            }
            let desired = match record.state {
                RecordState::Applying => {
                    record.previous_version = meta
                        .annotations
                        .as_ref()
                        .and_then(|a| a.get(&version_key))
                        .cloned();
                    record.images = images.clone();
                    let patches = crate::api::convert::image_patches(scene.patch);
                    patchpilot_engine::image::patched(&images, &patches)
                }
                _ => record.images.clone(),
            };
            let containers: Vec<Value> = desired
                .iter()
                .map(|i| json!({"name": i.container, "image": i.image}))
                .collect();
            let body = json!({
                "metadata": {
                    "resourceVersion": meta.resource_version,
                    "annotations": {keys::LOCK: rollout, keys::record(scene.policy): record.to_annotation()},
                    "labels": {keys::LOCKED_LABEL: "true"},
                },
                "spec": {"template": {"spec": {"containers": containers}}},
            });
            patch_workload(ctx, target, Patch::Strategic(body)).await
        }
        _ => Err(Error::Conflict(format!("{target} is not a target"))),
    }
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
    verdict: budgets::Verdict,
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
            budgets::Verdict::Refused { budget } => {
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
            budgets::Verdict::Allowed { .. } => {}
            budgets::Verdict::Ask => {
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
            async move { api.evict(&name, &EvictParams::default()).await }
        })
        .collect();
    let answers: Vec<_> = futures::stream::iter(requests)
        .buffered(EVICTIONS_AT_ONCE)
        .collect()
        .await;
    let mut failure = None;
    for (ask, answer) in asks.iter().zip(answers) {
        if answer.is_err()
            && let budgets::Verdict::Allowed {
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
    job: &str,
    action: Action,
    version: &str,
    previous_version: Option<&str>,
) -> Result<()> {
    let Some(updater) = &scene.patch.updater else {
        return Err(Error::Conflict("the patch has no updater".into()));
    };
    let node = node_name(target);
    let rollout = scene.rollout.metadata.name.clone().unwrap_or_default();
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
            "namespace": job_namespace(),
            "labels": {keys::ROLLOUT_LABEL: rollout, "app.kubernetes.io/managed-by": "patchpilot", "app.kubernetes.io/component": "updater"},
            "annotations": {"patchpilot.dev/target": target.to_string(), "patchpilot.dev/action": action.as_str()},
        },
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": updater.timeout.as_millis().div_ceil(1000).max(1),
            "ttlSecondsAfterFinished": 86_400,
            "template": template,
        },
    });
    let job: Job = serde_json::from_value(body)
        .map_err(|e| Error::Conflict(format!("the updater template is not a pod template: {e}")))?;
    let jobs: Api<Job> = Api::namespaced(ctx.client.clone(), &job_namespace());
    match jobs
        .create(
            &PostParams {
                field_manager: Some(MANAGER.into()),
                ..PostParams::default()
            },
            &job,
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
        Err(e) => Err(Error::api(format!("create the updater Job of {target}"), e)),
    }
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
    let mut body = json!({"metadata": {
        "annotations": {keys::LOCK: null, keys::record(scene.policy): record.to_annotation(), keys::version(scene.policy): version},
        "labels": {keys::LOCKED_LABEL: null},
    }});
    if uncordon {
        body["spec"] = json!({"unschedulable": false});
    }
    let outcome = format!("{:?}", record.state);
    let seconds = ctx.clock.now().duration_since(record.started).as_secs_f64();
    patch_target(ctx, target, body).await?;
    let kind = target.as_str().split('/').next().unwrap_or("");
    ctx.metrics.target_finished(kind, &outcome, seconds);
    Ok(())
}
