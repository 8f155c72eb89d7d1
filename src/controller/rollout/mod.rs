//! The PatchRollout controller: feeds the engine what the cluster looks like and carries out
//! its decisions.

pub mod act;
pub mod budgets;
pub mod health;
pub mod observe;

use std::{collections::BTreeMap, sync::Arc};

use jiff::Timestamp;
use k8s_openapi::api::{batch::v1::Job, core::v1::ObjectReference};
use kube::{
    Api, Resource, ResourceExt,
    api::PostParams,
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
    context::{Context, MANAGER},
    error::{Error, Result},
};
use crate::api::{
    HealthCheck, PatchPolicy, PatchRollout,
    convert::{Fits, condition_to_api, rollout_status_to_api},
};
use act::Scene;
use observe::{Observation, job_namespace};

/// Reconciles one PatchRollout.
#[tracing::instrument(skip_all, fields(rollout = %rollout.name_any()))]
pub async fn reconcile(rollout: Arc<PatchRollout>, ctx: Arc<Context>) -> Result<Requeue> {
    ctx.until_ready().await;
    let rollout = ctx.own_view(rollout);
    let _timer = ctx.metrics.reconcile("rollout");
    let name = rollout.name_any();
    if rollout.metadata.deletion_timestamp.is_some() {
        ctx.pods.forget(&name);
        ctx.metrics.rollout_phase(&name, None);
        return Ok(Requeue::await_change());
    }
    let Some(policy) = ctx
        .stores
        .policies
        .get(&kube::runtime::reflector::ObjectRef::new(
            &rollout.spec.policy,
        ))
    else {
        let message = format!("waiting for PatchPolicy {:?}", rollout.spec.policy);
        write_blocked(
            &ctx,
            &rollout,
            Phase::Pending,
            "PolicyNotFound",
            &message,
            false,
        )
        .await?;
        return Ok(Requeue::await_change());
    };
    match decide_and_act(&ctx, &rollout, &policy).await {
        Ok(requeue) => Ok(requeue),
        Err(Error::InvalidSpec(invalid)) => {
            write_blocked(
                &ctx,
                &rollout,
                Phase::Failed,
                "InvalidSpec",
                &invalid.to_string(),
                true,
            )
            .await?;
            Ok(Requeue::await_change())
        }
        Err(other) => Err(other),
    }
}

/// What the engine needs that only the policy says.
struct Rules {
    engine: patchpilot_engine::policy::Policy,
    window: Option<patchpilot_engine::window::Window>,
    checks: Vec<HealthCheck>,
    drain: crate::api::DrainSpec,
}

fn rules(ctx: &Context, rollout: &PatchRollout, policy: &PatchPolicy) -> Result<Rules> {
    let policy_name = policy.name_any();
    let in_policy = |e: InvalidSpec| {
        InvalidSpec::new(format!("PatchPolicy {policy_name}: {}", e.field), e.message)
    };
    let engine = policy.spec.to_engine(&policy_name).map_err(in_policy)?;
    let patch = rollout.spec.patch.to_engine("spec.patch")?;
    patch.fits(&engine.targets, "spec.patch")?;
    let window = match &engine.window {
        Some(window_name) => {
            let object = ctx
                .stores
                .windows
                .get(&kube::runtime::reflector::ObjectRef::new(window_name))
                .ok_or_else(|| {
                    InvalidSpec::new(
                        format!("PatchPolicy {policy_name}: spec.maintenanceWindow"),
                        format!("MaintenanceWindow {window_name:?} does not exist"),
                    )
                })?;
            let window = object.spec.to_engine().map_err(|e| {
                InvalidSpec::new(
                    format!("MaintenanceWindow {window_name}: {}", e.field),
                    e.message,
                )
            })?;
            Some(window)
        }
        None => None,
    };
    let health = policy.spec.health.clone().unwrap_or_default();
    Ok(Rules {
        engine,
        window,
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

async fn decide_and_act(
    ctx: &Context,
    rollout: &PatchRollout,
    policy: &PatchPolicy,
) -> Result<Requeue> {
    let name = rollout.name_any();
    let rules = rules(ctx, rollout, policy)?;
    let engine_rollout = rollout.to_engine()?;
    let (candidates, namespaces) = observe::candidates(ctx, &rules.engine.targets);
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
    };
    for action in &decision.actions {
        act::carry_out(ctx, &scene, action).await?;
    }
    // A drain learns which budgets refuse which pods; say so in this status write rather
    // than in the next one. The second decision only lends its status when it describes the
    // same steps, so the status never claims a step whose action was not carried out.
    let drained = decision.actions.iter().any(|a| {
        matches!(
            a,
            machine::TargetAction::Drain { .. } | machine::TargetAction::ForceDrain { .. }
        )
    });
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
    Ok(ctx.requeue_at(decision.wake_at))
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

/// A status for a rollout the engine cannot work on: no policy yet, or an invalid spec
/// (`Stalled`/`InvalidSpec`, naming the field).
async fn write_blocked(
    ctx: &Context,
    rollout: &PatchRollout,
    phase: Phase,
    reason: &str,
    message: &str,
    stalled: bool,
) -> Result<()> {
    use patchpilot_engine::machine::{
        ConditionStatus as CS, ConditionType as CT, compute_conditions,
    };
    let previous: Status = rollout
        .status
        .as_ref()
        .map(Status::from)
        .unwrap_or_default();
    let generation = rollout.metadata.generation.unwrap_or(0);
    let conditions = compute_conditions(
        &previous.conditions,
        vec![
            (CT::Ready, CS::False, reason.into(), message.into()),
            (CT::Reconciling, CS::False, reason.into(), message.into()),
            (
                CT::Stalled,
                CS::from_bool(stalled),
                reason.into(),
                if stalled {
                    message.into()
                } else {
                    String::new()
                },
            ),
        ],
        generation,
        ctx.clock.now(),
    );
    let mut status = rollout.status.clone().unwrap_or_default();
    status.phase = phase;
    status.message = Some(message.to_owned());
    status.observed_generation = Some(generation);
    status.conditions = conditions.iter().map(condition_to_api).collect();
    if rollout.status.as_ref() == Some(&status) {
        return Ok(());
    }
    if stalled && rollout.status.as_ref().map(|s| &s.message) != Some(&status.message) {
        let note = format!("{}{message}", change_ref(rollout));
        let _ = ctx
            .recorder
            .publish(
                &KubeEvent {
                    type_: EventType::Warning,
                    reason: reason.into(),
                    note: Some(note),
                    action: "Validate".into(),
                    secondary: None,
                },
                &rollout.object_ref(&()),
            )
            .await;
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

/// Records the decision's events on the rollout, each carrying the change reference.
async fn publish(ctx: &Context, rollout: &PatchRollout, events: &[machine::Event]) {
    let reference = rollout.object_ref(&());
    for event in events {
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
            secondary: event.target.as_ref().and_then(related),
        };
        if let Err(error) = ctx.recorder.publish(&kube_event, &reference).await {
            tracing::warn!(%error, reason = %event.reason, "could not record an event");
        }
    }
}

/// The object an event about `target` relates to.
fn related(target: &TargetId) -> Option<ObjectReference> {
    let (kind, namespace, name) = TargetId::parse(target.as_str())?;
    let api_version = match kind {
        TargetKind::Node => "v1",
        TargetKind::Workload(_) => "apps/v1",
    };
    Some(ObjectReference {
        api_version: Some(api_version.to_owned()),
        kind: Some(kind.as_str().to_owned()),
        namespace: namespace.map(str::to_owned),
        name: Some(name.to_owned()),
        ..ObjectReference::default()
    })
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
            if observe::job(ctx, &job_name).is_some() {
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
                "metadata": {"name": job_name, "namespace": job_namespace(), "labels": {keys::ROLLOUT_LABEL: name, "app.kubernetes.io/managed-by": "patchpilot", "app.kubernetes.io/component": "health-check"}},
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
                Ok(_) => {}
                Err(kube::Error::Api(status)) if status.code == 409 => {}
                Err(e) => {
                    return Err(Error::api(
                        format!("create a health-check Job for {target}"),
                        e,
                    ));
                }
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
pub fn name_for(policy: &str, patch: &crate::api::PatchSpec) -> String {
    naming::rollout_name(policy, &serde_json::to_string(patch).unwrap_or_default())
}
