//! The PatchPolicy controller: one PatchRollout per patch version, the history kept to
//! `historyLimit`, and compliance reported against the current version.

use std::sync::Arc;

use jiff::Timestamp;
use kube::{
    Api, Resource, ResourceExt,
    api::DeleteParams,
    runtime::{
        controller::Action as Requeue,
        events::{Event, EventType},
        reflector::ObjectRef,
    },
};
use patchpilot_engine::{
    compliance::{self, Compliance},
    keys,
    machine::{
        Condition, ConditionType as CT, CurrentRollout, Record, compute_conditions,
        deleted_rollout_conditions, policy_conditions, stalled_conditions,
    },
    plan::{self, Query, Scope},
    policy::Policy as EnginePolicy,
    rollout::Phase,
    units::Duration,
};
use serde_json::json;

use super::{
    context::{Context, create_once},
    error::{Error, Result},
    finalizer, history, orphans,
    rollout::{name_for, observe},
};
use patchpilot_api::{
    NotifierHealth, PatchPolicy, PatchPolicyStatus, PatchRollout,
    convert::{condition_from_api, condition_to_api, image_patches, one_line},
};

/// The name of the rollout of a policy's current patch: `<policy>-<8 hex>`.
pub fn rollout_name(policy: &PatchPolicy) -> String {
    name_for(&policy.name_any(), &policy.spec.patch)
}

/// Reconciles one PatchPolicy.
#[tracing::instrument(skip_all, fields(policy = %policy.name_any()))]
pub async fn reconcile(policy: Arc<PatchPolicy>, ctx: Arc<Context>) -> Result<Requeue> {
    ctx.until_ready().await;
    let policy = ctx.own_view(policy);
    let _timer = ctx.metrics.reconcile("policy");
    let name = policy.name_any();
    let api: Api<PatchPolicy> = Api::all(ctx.client.clone());
    if policy.metadata.deletion_timestamp.is_some() {
        return delete(&ctx, &api, &policy).await;
    }
    finalizer::ensure(&api, policy.as_ref(), finalizer::POLICY, &[]).await?;
    let now = ctx.clock.now();
    let generation = policy.metadata.generation.unwrap_or(0);
    let previous: Vec<Condition> = policy
        .status
        .iter()
        .flat_map(|s| s.conditions.iter())
        .filter_map(condition_from_api)
        .collect();
    let engine = match policy.spec.to_engine_reporting_all(&name) {
        Ok(engine) => engine,
        Err(problems) => {
            let conditions = compute_conditions(
                &previous,
                stalled_conditions("InvalidSpec", one_line(&problems)),
                generation,
                now,
            );
            let status = PatchPolicyStatus {
                observed_generation: Some(generation),
                conditions: conditions.iter().map(condition_to_api).collect(),
                ..policy.status.clone().unwrap_or_default()
            };
            ctx.write_status(policy.as_ref(), &status).await?;
            return Ok(Requeue::await_change());
        }
    };
    let current = rollout_name(&policy);
    let rollouts: Vec<Arc<PatchRollout>> = ctx
        .stores
        .rollouts
        .state()
        .into_iter()
        .filter(|r| owned_by(r, &policy))
        .collect();
    // Said already, for this spec: no need to ask the API server again.
    let known_deleted = previous.iter().any(|c| {
        c.kind == CT::Stalled && c.reason == "RolloutDeleted" && c.observed_generation == generation
    });
    let mut deleted = false;
    let rollout = match rollouts.iter().find(|r| r.name_any() == current) {
        Some(rollout) => Some(rollout.clone()),
        None if known_deleted || rollout_deleted(&ctx, &policy, &current).await? => {
            deleted = true;
            None
        }
        None => {
            create_rollout(&ctx, &policy, &current).await?;
            None
        }
    };
    prune_history(&ctx, &policy, &rollouts, &current).await?;

    // Compliance of the targets against the current version.
    let (candidates, namespaces) = observe::candidates(&ctx, &engine.targets);
    clear_orphaned_locks(&ctx, &policy, &candidates).await?;
    let images = image_patches(&policy.spec.patch);
    let query = Query {
        policy: &name,
        version: &policy.spec.patch.version,
        images: policy
            .spec
            .patch
            .images
            .is_some()
            .then_some(images.as_slice()),
        group_by: engine.strategy.group_by.as_deref(),
        now,
    };
    let inventory = plan::inventory(&engine.targets, &query, &candidates, &namespaces, |_| false);
    let released = released(&policy, rollout.as_deref());
    let compliance = Compliance::of(
        &inventory,
        &compliance::Question {
            policy: &name,
            version: &policy.spec.patch.version,
            rollout: &current,
            released,
            deadline: compliance_deadline(&policy, &engine),
            now,
        },
    );
    let rollout = rollout.map(|r| ctx.own_view(r));
    let rollout_conditions: Vec<Condition> = rollout
        .iter()
        .filter_map(|r| r.status.as_ref())
        .flat_map(|s| s.conditions.iter())
        .filter_map(condition_from_api)
        .collect();
    let shown = rollout.as_ref().map(|r| {
        let status = r.status.as_ref();
        CurrentRollout {
            name: r.metadata.name.as_deref().unwrap_or_default(),
            phase: status.map_or(Phase::Pending, |s| s.phase),
            conditions: &rollout_conditions,
            message: status
                .and_then(|s| s.message.as_deref())
                .unwrap_or("the rollout has not started"),
        }
    });
    let mut desired = if deleted {
        if !known_deleted {
            report_deleted_rollout(&ctx, &policy, &current).await;
        }
        deleted_rollout_conditions(&current)
    } else {
        policy_conditions(&current, shown.as_ref())
    };
    desired.push(compliance.condition(&policy.spec.patch.version));
    let conditions = compute_conditions(&previous, desired, generation, now);
    let status = PatchPolicyStatus {
        observed_generation: Some(generation),
        target_kind: Some(match engine.targets.scope {
            Scope::Nodes { .. } => "Node".into(),
            Scope::Workloads { .. } => "Workload".into(),
        }),
        current_rollout: Some(current),
        compliance: Some((&compliance).into()),
        conditions: conditions.iter().map(condition_to_api).collect(),
        history: history::merge(
            policy
                .status
                .as_ref()
                .map_or(&[][..], |s| s.history.as_slice()),
            ctx.stores
                .rollouts
                .state()
                .iter()
                .filter(|r| r.spec.policy == name)
                .map(AsRef::as_ref),
        ),
        notifiers: notifiers(&ctx, &policy),
    };
    ctx.write_status(policy.as_ref(), &status).await?;
    Ok(ctx.requeue_at(compliance.due))
}

/// The Notifiers `policy` names, and whether each delivers: one that does not exist, is
/// suspended or fails to deliver shows here, beside the policy whose notices wait.
fn notifiers(ctx: &Context, policy: &PatchPolicy) -> Vec<NotifierHealth> {
    policy
        .spec
        .notifiers()
        .iter()
        .map(|name| {
            let found = ctx.stores.notifiers.get(&ObjectRef::new(name));
            let ready = found
                .as_ref()
                .and_then(|n| n.status.as_ref())
                .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"));
            match (found.as_ref(), ready) {
                (None, _) => NotifierHealth {
                    name: name.clone(),
                    ready: false,
                    message: format!("Notifier {name} does not exist: notices wait for it"),
                },
                (Some(_), Some(ready)) => NotifierHealth {
                    name: name.clone(),
                    ready: ready.status == "True",
                    message: ready.message.clone(),
                },
                (Some(_), None) => NotifierHealth {
                    name: name.clone(),
                    ready: true,
                    message: String::new(),
                },
            }
        })
        .collect()
}

/// When a policy's patch was released, for its compliance deadline: its `releasedAt`, else
/// the creation of its current rollout; `None` while neither is known (nothing is overdue).
pub fn released(policy: &PatchPolicy, rollout: Option<&PatchRollout>) -> Option<Timestamp> {
    policy
        .spec
        .patch
        .released_at
        .as_ref()
        .map(|t| t.0)
        .or_else(|| rollout.and_then(|r| r.metadata.creation_timestamp.as_ref().map(|t| t.0)))
}

/// How long after the release a policy's targets must carry its version: its own
/// `compliance.deadline`, else the default of the patch's classification.
pub fn compliance_deadline(policy: &PatchPolicy, engine: &EnginePolicy) -> Duration {
    engine.deadline_for(policy.spec.patch.classification)
}

/// A policy being deleted: its rollouts let go of their targets (they start nothing and
/// finish or undo what is in flight); the finalizer goes once none holds a target.
async fn delete(ctx: &Context, api: &Api<PatchPolicy>, policy: &PatchPolicy) -> Result<Requeue> {
    let name = policy.name_any();
    let rollouts: Vec<String> = ctx
        .stores
        .rollouts
        .state()
        .iter()
        .filter(|r| r.spec.policy == name)
        .map(|r| r.name_any())
        .collect();
    let held: Vec<String> = observe::every_target(ctx)
        .into_iter()
        .filter(|c| {
            c.annotations.get(keys::LOCK).is_some_and(|holder| {
                rollouts.contains(holder)
                    || Record::read(&c.annotations, &name).is_some_and(|r| &r.rollout == holder)
            })
        })
        .map(|c| c.id.to_string())
        .collect();
    if held.is_empty() {
        finalizer::remove(api, policy, finalizer::POLICY).await?;
        return Ok(Requeue::await_change());
    }
    tracing::info!(policy = %name, targets = ?held, "deleted; waiting for its rollouts to let go of their targets");
    // Target changes trigger this reconcile; the requeue is a safety net.
    Ok(Requeue::requeue(std::time::Duration::from_secs(30)))
}

/// Clears the locks of rollouts that no longer exist on the policy's targets.
async fn clear_orphaned_locks(
    ctx: &Context,
    policy: &PatchPolicy,
    candidates: &[patchpilot_engine::target::Candidate],
) -> Result<()> {
    let known: std::collections::BTreeSet<String> = ctx
        .stores
        .rollouts
        .state()
        .iter()
        .map(|r| r.name_any())
        .collect();
    let suspects = orphans::suspects(candidates, |holder| known.contains(holder));
    if suspects.is_empty() {
        return Ok(());
    }
    let reporter = policy.object_ref(&());
    // One target the API server will not answer for holds up none of the others.
    let mut first_error = None;
    for (candidate, holder) in suspects {
        if let Err(error) = orphans::clear(ctx, &candidate.id, holder, &reporter).await {
            tracing::warn!(target = %candidate.id, %holder, %error, "could not clear an orphaned lock");
            first_error.get_or_insert(error);
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// Whether the policy's current rollout `current`, missing from the cache, was made and
/// then deleted by someone (the garbage collector deletes a policy's rollouts only with the
/// policy): the policy's status already names it, for the same generation of the policy,
/// and the API server confirms that it is gone (the cache may not have it yet). Such a
/// rollout is not made again until the policy's spec changes: deleting a rollout stops it.
async fn rollout_deleted(ctx: &Context, policy: &PatchPolicy, current: &str) -> Result<bool> {
    let status = policy.status.as_ref();
    let named = status.and_then(|s| s.current_rollout.as_deref()) == Some(current);
    let same_spec = status.and_then(|s| s.observed_generation) == policy.metadata.generation;
    if !(named && same_spec) {
        return Ok(false);
    }
    let api: Api<PatchRollout> = Api::all(ctx.client.clone());
    let found = api
        .get_opt(current)
        .await
        .map_err(|e| Error::api(format!("read rollout {current}"), e))?;
    Ok(found.is_none())
}

/// A Warning event on the policy: its current rollout was deleted, and nothing rolls its
/// patch out until the policy changes.
async fn report_deleted_rollout(ctx: &Context, policy: &PatchPolicy, rollout: &str) {
    let event = Event {
        type_: EventType::Warning,
        reason: "RolloutDeleted".into(),
        note: Some(format!(
            "rollout {rollout} was deleted; change the policy's spec to roll its patch out again"
        )),
        action: "StopRollout".into(),
        secondary: None,
    };
    if let Err(error) = ctx.recorder.publish(&event, &policy.object_ref(&())).await {
        tracing::warn!(%error, "could not record an event");
    }
}

/// Whether a rollout is owned by the policy.
pub fn owned_by(rollout: &PatchRollout, policy: &PatchPolicy) -> bool {
    rollout
        .owner_references()
        .iter()
        .any(|o| o.kind == "PatchPolicy" && Some(&o.uid) == policy.meta().uid.as_ref())
}

async fn create_rollout(ctx: &Context, policy: &PatchPolicy, name: &str) -> Result<()> {
    let policy_name = policy.name_any();
    let owner = policy
        .controller_owner_ref(&())
        .ok_or_else(|| Error::Conflict(format!("PatchPolicy {policy_name} has no UID yet")))?;
    let version_label: String = policy.spec.patch.version.chars().take(63).collect();
    let rollout: PatchRollout = serde_json::from_value(json!({
        "apiVersion": PatchRollout::api_version(&()),
        "kind": PatchRollout::kind(&()),
        "metadata": {
            "name": name,
            "labels": {keys::POLICY_LABEL: policy_name, "patchpilot.dev/version": version_label},
            "ownerReferences": [owner],
            "finalizers": [finalizer::ROLLOUT],
        },
        "spec": {"policy": policy_name, "patch": policy.spec.patch},
    }))
    .map_err(|e| Error::Conflict(format!("cannot build rollout {name}: {e}")))?;
    let api: Api<PatchRollout> = Api::all(ctx.client.clone());
    create_once(&api, &rollout, &format!("rollout {name}"))
        .await
        .map(|_| ())
}

/// Deletes the oldest finished rollouts beyond `historyLimit` (never the current one, nor
/// one with targets still in progress).
async fn prune_history(
    ctx: &Context,
    policy: &PatchPolicy,
    rollouts: &[Arc<PatchRollout>],
    current: &str,
) -> Result<()> {
    let mut finished: Vec<&Arc<PatchRollout>> = rollouts
        .iter()
        .filter(|r| {
            r.name_any() != current
                // Finished, and with nothing in flight: a superseded rollout still
                // finishing its targets keeps the records it needs.
                && r.status
                    .as_ref()
                    .is_some_and(|s| s.phase.is_finished() && s.in_progress.is_empty())
                && r.metadata.deletion_timestamp.is_none()
        })
        .collect();
    let limit = policy.spec.history_limit as usize;
    if finished.len() <= limit {
        return Ok(());
    }
    finished.sort_by_key(|r| {
        std::cmp::Reverse(
            r.status
                .as_ref()
                .and_then(|s| s.completed_at.clone())
                .map(|t| t.0)
                .or(r.metadata.creation_timestamp.as_ref().map(|t| t.0)),
        )
    });
    let api: Api<PatchRollout> = Api::all(ctx.client.clone());
    for old in &finished[limit..] {
        let name = old.name_any();
        match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(e) => return Err(Error::api(format!("delete old rollout {name}"), e)),
        }
    }
    Ok(())
}

/// How soon to retry after an error.
pub fn error_policy(policy: Arc<PatchPolicy>, error: &Error, ctx: Arc<Context>) -> Requeue {
    ctx.metrics.reconcile_error("policy", error.metric_label());
    tracing::warn!(policy = %policy.name_any(), %error, "reconcile failed");
    Requeue::requeue(error.retry_after())
}

/// The rollouts of a policy, for triggers.
pub fn rollouts_of(ctx: &Context, policy: &str) -> Vec<ObjectRef<PatchRollout>> {
    ctx.stores
        .rollouts
        .state()
        .iter()
        .filter(|r| r.spec.policy == policy)
        .map(|r| ObjectRef::from_obj(r.as_ref()))
        .collect()
}
