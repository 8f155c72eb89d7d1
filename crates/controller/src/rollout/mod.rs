//! The PatchRollout controller: feeds the engine what the cluster looks like and carries out
//! its decisions.

pub mod act;
pub mod budgets;
pub mod health;
pub mod observe;
pub mod read;

use std::{collections::BTreeMap, sync::Arc};

use jiff::Timestamp;
use k8s_openapi::api::batch::v1::Job;
use kube::{
    Api, Resource, ResourceExt,
    runtime::{
        controller::Action as Requeue,
        events::{Event as KubeEvent, EventType},
    },
};
use patchpilot_engine::{
    InvalidSpec, keys,
    machine::{self, Input, Status},
    naming,
    rollout::{Phase, Step},
    target::{TargetId, TargetKind},
};
use serde_json::{Value, json};

use super::{
    candidates::{TargetMeta, object_reference},
    context::{Context, create_once},
    error::{Error, Result},
    finalizer,
};
use act::Scene;
use observe::Observation;
use patchpilot_api::{
    HealthCheck, PatchPolicy, PatchRollout,
    convert::{Fits, condition_to_api, rollout_status_to_api},
};

/// Reconciles one PatchRollout.
#[tracing::instrument(skip_all, fields(rollout = %rollout.name_any()))]
pub async fn reconcile(rollout: Arc<PatchRollout>, ctx: Arc<Context>) -> Result<Requeue> {
    ctx.until_ready().await;
    let rollout = ctx.own_view(rollout);
    let _timer = ctx.metrics.reconcile("rollout");
    let deleting = rollout.metadata.deletion_timestamp.is_some();
    let api: Api<PatchRollout> = Api::all(ctx.client.clone());
    if !deleting {
        // Every rollout is held by the finalizer until its targets are let go, and labelled
        // with its policy, hand-made ones included.
        finalizer::ensure(
            &api,
            rollout.as_ref(),
            finalizer::ROLLOUT,
            &[(keys::POLICY_LABEL, rollout.spec.policy.as_str())],
        )
        .await?;
    }
    let policy = ctx
        .stores
        .policies
        .get(&kube::runtime::reflector::ObjectRef::new(
            &rollout.spec.policy,
        ));
    // The rollouts of one policy decide one at a time: what one starts counts against the
    // policy's `maxUnavailable` in the next one's decision.
    let guard = ctx.policy_guard(&rollout.spec.policy);
    let _decides = guard.lock().await;
    let outcome = match &policy {
        Some(policy) => decide_and_act(&ctx, &rollout, policy).await,
        None => Err(Error::NotFound {
            kind: "PatchPolicy",
            name: rollout.spec.policy.clone(),
        }),
    };
    match outcome {
        Ok(Decided { requeue, idle }) => {
            if deleting && idle {
                let_go(&ctx, &api, &rollout).await?;
            }
            Ok(requeue)
        }
        // Without valid rules nothing can be finished: the locks the rollout still holds
        // are cleared, as a rollout that no longer exists would leave them.
        Err(error @ (Error::InvalidSpec(_) | Error::NotFound { .. })) if deleting => {
            let cleared = clear_own_locks(&ctx, &rollout).await?;
            if cleared.is_empty() {
                tracing::info!(%error, "deleted without rules; it held no target");
            } else {
                tracing::warn!(%error, ?cleared, "deleted without rules to finish its targets; cleared their locks");
            }
            let_go(&ctx, &api, &rollout).await?;
            Ok(Requeue::await_change())
        }
        Err(Error::InvalidSpec(invalid)) => {
            write_blocked(&ctx, &rollout, "InvalidSpec", &invalid.to_string(), true).await?;
            Ok(Requeue::await_change())
        }
        // A reference that does not exist yet is a wait, not a failure: the rollout goes
        // on by itself once it appears (the watches bring it).
        Err(Error::NotFound {
            kind,
            name: missing,
        }) => {
            let message = format!("waiting for {kind} {missing:?}, which does not exist yet");
            let reason = match kind {
                "PatchPolicy" => "PolicyNotFound",
                "MaintenanceWindow" => "WindowNotFound",
                _ => "NotFound",
            };
            write_blocked(&ctx, &rollout, reason, &message, false).await?;
            Ok(Requeue::await_change())
        }
        Err(other) => Err(other),
    }
}

/// Removes the finalizer of a deleted rollout that holds no target any more.
async fn let_go(ctx: &Context, api: &Api<PatchRollout>, rollout: &PatchRollout) -> Result<()> {
    let name = rollout.name_any();
    finalizer::remove(api, rollout, finalizer::ROLLOUT).await?;
    ctx.pods.forget(&name);
    ctx.metrics.rollout_phase(&name, None);
    Ok(())
}

/// Clears every lock the rollout holds, as for a rollout that no longer exists; returns
/// the targets it released.
async fn clear_own_locks(ctx: &Context, rollout: &PatchRollout) -> Result<Vec<String>> {
    let name = rollout.name_any();
    let reporter = rollout.object_ref(&());
    let mut cleared = Vec::new();
    for candidate in observe::every_target(ctx) {
        if candidate.annotations.get(keys::LOCK) == Some(&name) {
            super::orphans::release(ctx, &candidate.id, &name, &reporter).await?;
            cleared.push(candidate.id.to_string());
        }
    }
    Ok(cleared)
}

/// What a reconcile decided: when to look again, and whether the rollout holds no target.
struct Decided {
    requeue: Requeue,
    idle: bool,
}

/// What the engine needs that only the policy says.
struct Rules {
    engine: patchpilot_engine::policy::Policy,
    window: Option<patchpilot_engine::window::Window>,
    /// The policy names a window that does not exist (yet): `window` never opens.
    missing_window: Option<String>,
    checks: Vec<HealthCheck>,
    drain: patchpilot_api::DrainSpec,
}

fn rules(ctx: &Context, rollout: &PatchRollout, policy: &PatchPolicy) -> Result<Rules> {
    let policy_name = policy.name_any();
    let in_policy = |e: InvalidSpec| {
        InvalidSpec::new(format!("PatchPolicy {policy_name}: {}", e.field), e.message)
    };
    let engine = policy.spec.to_engine(&policy_name).map_err(in_policy)?;
    let patch = rollout.spec.patch.to_engine("spec.patch")?;
    patch.fits(&engine.targets, "spec.patch")?;
    let mut missing_window = None;
    let window = match &engine.window {
        // An emergency patch ignores the window: whether it exists does not matter.
        Some(_) if rollout.spec.patch.emergency => None,
        Some(window_name) => {
            match ctx
                .stores
                .windows
                .get(&kube::runtime::reflector::ObjectRef::new(window_name))
            {
                Some(object) => Some(object.spec.to_engine().map_err(|e| {
                    InvalidSpec::new(
                        format!("MaintenanceWindow {window_name}: {}", e.field),
                        e.message,
                    )
                })?),
                None => {
                    missing_window = Some(window_name.clone());
                    Some(patchpilot_engine::window::Window::new(
                        jiff::tz::TimeZone::UTC,
                        Vec::new(),
                        Vec::new(),
                        patchpilot_engine::units::Duration::ZERO,
                    ))
                }
            }
        }
        None => None,
    };
    let health = policy.spec.health.clone().unwrap_or_default();
    Ok(Rules {
        engine,
        window,
        missing_window,
        checks: health.checks,
        drain: policy.spec.drain.clone().unwrap_or_default(),
    })
}

/// Whether a newer patch of the policy has taken over this (policy-owned) rollout.
pub fn superseded(rollout: &PatchRollout, policy: &PatchPolicy) -> bool {
    let owned = rollout
        .owner_references()
        .iter()
        .any(|o| o.kind == "PatchPolicy" && Some(&o.uid) == policy.meta().uid.as_ref());
    owned && rollout.name_any() != super::policy::rollout_name(policy)
}

/// The policy's other rollouts, as the engine knows them.
fn siblings(ctx: &Context, rollout: &PatchRollout) -> Vec<machine::Sibling> {
    let name = rollout.name_any();
    ctx.stores
        .rollouts
        .state()
        .into_iter()
        .filter(|r| r.spec.policy == rollout.spec.policy && r.name_any() != name)
        .map(|r| {
            let r = ctx.own_view(r);
            machine::Sibling {
                name: r.name_any(),
                uid: r.metadata.uid.clone().unwrap_or_default(),
                hand_made: !r.owned_by_a_policy(),
                created: r
                    .metadata
                    .creation_timestamp
                    .as_ref()
                    .map_or(Timestamp::UNIX_EPOCH, |t| t.0),
                phase: r.status.as_ref().map_or(Phase::Pending, |s| s.phase),
            }
        })
        .collect()
}

async fn decide_and_act(
    ctx: &Context,
    rollout: &PatchRollout,
    policy: &PatchPolicy,
) -> Result<Decided> {
    let name = rollout.name_any();
    let rules = rules(ctx, rollout, policy)?;
    let engine_rollout = rollout.to_engine()?;
    let (candidates, namespaces) = observe::candidates(ctx, &rules.engine.targets);
    let holding = candidates
        .iter()
        .any(|c| c.annotations.get(keys::LOCK) == Some(&name));
    // Without its window a rollout starts nothing, but finishes what it holds.
    if let Some(missing) = &rules.missing_window
        && !holding
    {
        return Err(Error::NotFound {
            kind: "MaintenanceWindow",
            name: missing.clone(),
        });
    }
    let siblings = siblings(ctx, rollout);
    let stopping = rollout.metadata.deletion_timestamp.is_some()
        || policy.metadata.deletion_timestamp.is_some();
    let status: Status = rollout
        .status
        .as_ref()
        .map(Status::from)
        .unwrap_or_default();
    let now = ctx.clock.now();
    let nothing = BTreeMap::new();
    let mut input = Input {
        now,
        rollout: &engine_rollout,
        policy: &rules.engine,
        window: rules.window.as_ref(),
        superseded: superseded(rollout, policy),
        stopping,
        siblings: &siblings,
        status: &status,
        candidates: &candidates,
        namespaces: &namespaces,
        observed: &nothing,
    };
    let wanted: Vec<TargetId> = machine::wanted(&input).into_iter().collect();
    ctx.pods.keep(&name, &observe::pod_scopes(ctx, &wanted));
    let steps: BTreeMap<TargetId, (Step, Timestamp)> = status
        .in_progress
        .iter()
        .map(|p| (p.target.clone(), (p.step, p.since)))
        .collect();
    let observation = Observation {
        rollout: &name,
        policy: &rules.engine.name,
        drain: &rules.drain,
        checks: &rules.checks,
        candidates: &candidates,
        steps: &steps,
        startup: rules.engine.health.timeout.signed(),
    };
    let observed = observe::facts(ctx, &observation, &wanted).await;
    input.observed = &observed;
    let mut decision = machine::decide(&input);

    let scene = Scene {
        rollout,
        policy: &rules.engine.name,
        patch: &rollout.spec.patch,
        drain: &rules.drain,
        siblings: &siblings,
        candidates: &candidates,
    };
    // In the engine's order (a rollback's locks in reverse order), except that drains in a
    // row go together: each waits for the answers to its evictions, and on a busy API server
    // (half a second an eviction) one node's drain after another held this reconcile, and
    // the status, for over a minute with 100 nodes in progress.
    let is_drain = |a: &&machine::TargetAction| {
        matches!(
            a,
            machine::TargetAction::Drain { .. } | machine::TargetAction::ForceDrain { .. }
        )
    };
    let drained = decision.actions.iter().any(|a| is_drain(&a));
    let mut actions = decision.actions.iter().peekable();
    while let Some(action) = actions.next() {
        if !is_drain(&action) {
            act::carry_out(ctx, &scene, action).await?;
            continue;
        }
        let mut drains = vec![action];
        while let Some(next) = actions.next_if(is_drain) {
            drains.push(next);
        }
        futures::future::join_all(drains.iter().map(|a| act::carry_out(ctx, &scene, a)))
            .await
            .into_iter()
            .collect::<Result<Vec<()>>>()?;
    }
    // A drain learns which budgets refuse which pods; say so in this status write rather
    // than in the next one. The second decision only lends its status when it describes the
    // same steps, so the status never claims a step whose action was not carried out.
    if drained {
        let observed = observe::facts(ctx, &observation, &wanted).await;
        input.observed = &observed;
        let again = machine::decide(&input);
        let steps = |s: &Status| -> Vec<(TargetId, Step)> {
            s.in_progress
                .iter()
                .map(|p| (p.target.clone(), p.step))
                .collect()
        };
        if steps(&again.status) == steps(&decision.status)
            && again.status.phase == decision.status.phase
        {
            decision.status = again.status;
            // The targets' own story follows the status written: what the second decision
            // adds to it (a drain now waiting on a budget) is told too.
            for event in again.events.into_iter().filter(|e| e.on_target) {
                let told = decision
                    .events
                    .iter()
                    .any(|e| e.reason == event.reason && e.target == event.target);
                if !told {
                    decision.events.push(event);
                }
            }
        }
    }
    let verifying: Vec<&TargetId> = decision
        .status
        .in_progress
        .iter()
        .filter(|p| matches!(p.step, Step::Verifying | Step::Soaking))
        .map(|p| &p.target)
        .collect();
    start_check_jobs(ctx, &observation, &rules.checks, &verifying).await?;

    write_status(ctx, rollout, &decision.status).await?;
    publish(ctx, rollout, &decision.events).await;
    record_metrics(ctx, &name, &decision.status);
    Ok(Decided {
        requeue: ctx.requeue_at(decision.wake_at),
        idle: decision.status.in_progress.is_empty(),
    })
}

fn record_metrics(ctx: &Context, name: &str, status: &Status) {
    ctx.metrics
        .rollout_phase(name, Some(&format!("{:?}", status.phase)));
    let c = status.counts;
    ctx.metrics.targets(
        name,
        &[
            ("pending", c.pending),
            ("in_progress", c.in_progress),
            ("updated", c.updated),
            ("failed", c.failed),
            ("rolled_back", c.rolled_back),
            ("excluded", c.excluded),
            ("up_to_date", c.up_to_date),
        ],
    );
}

/// Writes the status with server-side apply, only when it changed.
pub async fn write_status(ctx: &Context, rollout: &PatchRollout, status: &Status) -> Result<()> {
    let generation = rollout.metadata.generation.unwrap_or(0);
    let new = rollout_status_to_api(status, generation);
    ctx.write_status(rollout, &new).await
}

/// A status for a rollout the engine cannot work on: its policy or window does not exist
/// yet (`Pending`, `Reconciling`: a wait), or its spec is invalid (`Pending`,
/// `Stalled`/`InvalidSpec`, naming the field). A rollout that has ended keeps its status.
async fn write_blocked(
    ctx: &Context,
    rollout: &PatchRollout,
    reason: &str,
    message: &str,
    stalled: bool,
) -> Result<()> {
    use patchpilot_engine::machine::{
        ConditionStatus as CS, ConditionType as CT, compute_conditions, stalled_conditions,
    };
    let previous: Status = rollout
        .status
        .as_ref()
        .map(Status::from)
        .unwrap_or_default();
    let generation = rollout.metadata.generation.unwrap_or(0);
    let now = ctx.clock.now();
    let mut status = rollout.status.clone().unwrap_or_default();
    if previous.phase.is_finished() && previous.in_progress.is_empty() {
        // Frozen: only the generation it describes moves on.
        status.observed_generation = Some(generation);
        for condition in &mut status.conditions {
            condition.observed_generation = Some(generation);
        }
        return ctx.write_status(rollout, &status).await;
    }
    let wanted = if stalled {
        stalled_conditions(reason, message.into())
    } else {
        vec![
            (CT::Ready, CS::False, reason.into(), message.into()),
            (CT::Reconciling, CS::True, reason.into(), message.into()),
            (CT::Stalled, CS::False, reason.into(), String::new()),
        ]
    };
    let conditions = compute_conditions(&previous.conditions, wanted, generation, now);
    status.phase = Phase::Pending;
    status.message = Some(message.to_owned());
    status.observed_generation = Some(generation);
    status.conditions = conditions.iter().map(condition_to_api).collect();
    if rollout.status.as_ref() == Some(&status) {
        return Ok(());
    }
    if rollout.status.as_ref().map(|s| &s.message) != Some(&status.message) {
        let note = format!("{}{message}", change_ref(rollout));
        let event = KubeEvent {
            type_: if stalled {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: reason.into(),
            note: Some(note),
            action: "Validate".into(),
            secondary: None,
        };
        let _ = ctx.recorder.publish(&event, &rollout.object_ref(&())).await;
    }
    ctx.write_status(rollout, &status).await
}

fn change_ref(rollout: &PatchRollout) -> String {
    rollout
        .spec
        .change_ref
        .as_ref()
        .map(|c| format!("[{c}] "))
        .unwrap_or_default()
}

/// Records the decision's events, each carrying the change reference: on the rollout with
/// the target as related object, or (a target's own story) on the target with the rollout
/// as related object.
async fn publish(ctx: &Context, rollout: &PatchRollout, events: &[machine::Event]) {
    let reference = rollout.object_ref(&());
    for event in events {
        let (regarding, related) = if event.on_target {
            match event.target.as_ref().and_then(|t| target_reference(ctx, t)) {
                Some(target) => (target, Some(reference.clone())),
                None => continue,
            }
        } else {
            (
                reference.clone(),
                event.target.as_ref().and_then(object_reference),
            )
        };
        if event.reason == "RollbackStarted" {
            ctx.metrics.rollback();
        }
        let note: String = format!("{}{}", change_ref(rollout), event.message)
            .chars()
            .take(1000)
            .collect();
        let kube_event = KubeEvent {
            type_: if event.warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: event.reason.clone(),
            note: Some(note),
            action: event.action.clone(),
            secondary: related,
        };
        if let Err(error) = ctx.recorder.publish(&kube_event, &regarding).await {
            tracing::warn!(%error, reason = %event.reason, "could not record an event");
        }
    }
}

/// A reference to a target, with its UID from the caches of every target's metadata
/// (`kubectl describe` finds an object's events by it); `None` when the target is not in
/// them (deleted meanwhile).
fn target_reference(
    ctx: &Context,
    target: &TargetId,
) -> Option<k8s_openapi::api::core::v1::ObjectReference> {
    use patchpilot_engine::policy::WorkloadKind;
    let (kind, namespace, name) = TargetId::parse(target.as_str())?;
    let stores = &ctx.stores;
    let uid = match kind {
        TargetKind::Node => uid_in(&stores.nodes, None, name),
        TargetKind::Workload(WorkloadKind::Deployment) => {
            uid_in(&stores.deployments, Some(namespace?), name)
        }
        TargetKind::Workload(WorkloadKind::StatefulSet) => {
            uid_in(&stores.statefulsets, Some(namespace?), name)
        }
        TargetKind::Workload(WorkloadKind::DaemonSet) => {
            uid_in(&stores.daemonsets, Some(namespace?), name)
        }
    }?;
    let mut reference = object_reference(target)?;
    reference.uid = uid;
    Some(reference)
}

/// The UID of the object `namespace/name` in a cache of targets' metadata; `None` when it
/// is not in the cache.
fn uid_in<K>(
    store: &kube::runtime::reflector::Store<TargetMeta<K>>,
    namespace: Option<&str>,
    name: &str,
) -> Option<Option<String>>
where
    TargetMeta<K>: kube::Resource<DynamicType = ()> + Clone,
{
    let mut key = kube::runtime::reflector::ObjectRef::new(name);
    if let Some(namespace) = namespace {
        key = key.within(namespace);
    }
    Some(store.get(&key)?.uid().map(str::to_owned))
}

/// Starts the `job` health checks of targets being verified that have none yet.
async fn start_check_jobs(
    ctx: &Context,
    observation: &Observation<'_>,
    checks: &[HealthCheck],
    targets: &[&TargetId],
) -> Result<()> {
    let name = observation.rollout;
    for target in targets {
        let record = observation.record(target);
        let health_timeout = observation.startup.unsigned_abs();
        for (index, check) in checks.iter().enumerate() {
            let Some(job_check) = &check.job else {
                continue;
            };
            let job_name = observe::check_job_name(name, target, record.as_ref(), index);
            if observe::job(ctx, &job_name).is_some() || ctx.created_job(&job_name) {
                continue;
            }
            let mut template = serde_json::to_value(&job_check.template.0).unwrap_or_default();
            template["spec"]["restartPolicy"] = json!("Never");
            let mut env = vec![json!({"name": "PATCHPILOT_TARGET", "value": target.to_string()})];
            if let Some((TargetKind::Node, _, node)) = TargetId::parse(target.as_str()) {
                env.push(json!({"name": "PATCHPILOT_NODE", "value": node}));
            }
            if let Some(containers) = template["spec"]["containers"].as_array_mut() {
                for container in containers {
                    let mut merged = container["env"].as_array().cloned().unwrap_or_default();
                    merged.extend(env.iter().cloned());
                    container["env"] = Value::Array(merged);
                }
            }
            template["metadata"]["labels"][keys::ROLLOUT_LABEL] = json!(name);
            let body = json!({
                "apiVersion": "batch/v1", "kind": "Job",
                "metadata": {"name": job_name, "namespace": crate::context::operator_namespace(), "labels": {keys::ROLLOUT_LABEL: name, "app.kubernetes.io/managed-by": "patchpilot", "app.kubernetes.io/component": "health-check"}},
                "spec": {
                    "backoffLimit": 0,
                    "activeDeadlineSeconds": health_timeout.as_millis().div_ceil(1000).max(1),
                    "ttlSecondsAfterFinished": 86_400,
                    "template": template,
                },
            });
            let job: Job = serde_json::from_value(body).map_err(|e| {
                InvalidSpec::new(format!("spec.health.checks[{index}].job.template"), e)
            })?;
            let jobs: Api<Job> =
                Api::namespaced(ctx.client.clone(), &crate::context::operator_namespace());
            let what = format!("a health-check Job for {target}");
            if create_once(&jobs, &job, &what).await? {
                ctx.note_job(&job_name, true);
            }
        }
    }
    Ok(())
}

/// How soon to retry after an error.
pub fn error_policy(rollout: Arc<PatchRollout>, error: &Error, ctx: Arc<Context>) -> Requeue {
    ctx.metrics.reconcile_error("rollout", error.metric_label());
    tracing::warn!(rollout = %rollout.name_any(), %error, "reconcile failed");
    Requeue::requeue(error.retry_after())
}

/// The name of a rollout a policy makes for its current patch.
pub fn name_for(policy: &str, patch: &patchpilot_api::PatchSpec) -> String {
    naming::rollout_name(policy, &serde_json::to_string(patch).unwrap_or_default())
}
