//! Locks whose rollout no longer exists (SPEC 3.2): found on the targets a policy selects,
//! confirmed gone with the API server, cleared — uncordoning only a node patchpilot
//! cordoned — and reported by an event on the target and on the policy that found it.
//!
//! With the finalizers a rollout cannot go while it holds a lock; an orphaned lock is left
//! by a finalizer removed by hand, an operator older than the finalizers, or a rollout
//! whose policy is gone and cannot finish its work.

use k8s_openapi::{
    api::{
        apps::v1::{DaemonSet, Deployment, StatefulSet},
        core::v1::{Node, ObjectReference},
    },
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};
use kube::{
    Api,
    api::Patch,
    runtime::events::{Event, EventType},
};
use patchpilot_engine::{
    keys,
    machine::{RecordState, Records},
    policy::WorkloadKind,
    target::{Candidate, TargetId, TargetKind},
    untrusted,
};
use serde_json::json;

use super::{
    candidates::object_reference,
    context::Context,
    error::{Error, Result},
};
use patchpilot_api::PatchRollout;

/// The targets among `candidates` locked by a rollout the cache does not know, with the
/// holder's name: candidates for [`clear`], which asks the API server before acting. Only
/// locks patchpilot took are: one that is not a rollout's name, or that no record on the
/// target says its rollout took, was written by someone else and is not patchpilot's to
/// clear (the rollouts leave such a target alone and say so, [`untrusted`]).
pub fn suspects(
    candidates: &[Candidate],
    exists: impl Fn(&str) -> bool,
) -> Vec<(&Candidate, &str)> {
    candidates
        .iter()
        .filter_map(|c| {
            let holder = c.annotations.get(keys::LOCK)?;
            let taken = untrusted::lock_problem(&c.annotations).is_none();
            (taken && !exists(holder)).then_some((c, holder.as_str()))
        })
        .collect()
}

/// Clears the lock `holder` left on `target` if the rollout `holder` does not exist (asked
/// of the API server, not of a cache that may lag behind a new rollout), and says so on the
/// target and on `reporter` (the policy that found it). Returns whether it cleared the lock.
pub async fn clear(
    ctx: &Context,
    target: &TargetId,
    holder: &str,
    reporter: &ObjectReference,
) -> Result<bool> {
    let rollouts: Api<PatchRollout> = Api::all(ctx.client.clone());
    let gone = rollouts
        .get_opt(holder)
        .await
        .map_err(|e| Error::api(format!("read rollout {holder}"), e))?
        .is_none();
    if !gone {
        return Ok(false);
    }
    release(ctx, target, holder, reporter).await
}

/// Clears the lock `holder` holds on `target`: the lock goes, the holder's record says it
/// was abandoned, and a node it cordoned is uncordoned. Reported on the target and on
/// `reporter`. Returns whether the target still carried that lock.
pub async fn release(
    ctx: &Context,
    target: &TargetId,
    holder: &str,
    reporter: &ObjectReference,
) -> Result<bool> {
    let Some((meta, unschedulable)) = read(&ctx.client, target).await? else {
        return Ok(false);
    };
    let Some(release) = Release::of(&meta, unschedulable, holder, ctx.clock.now()) else {
        return Ok(false);
    };
    super::rollout::act::patch_target(
        ctx,
        target,
        Patch::Merge(release.body),
        meta.resource_version.as_deref(),
    )
    .await?;
    let note = format!(
        "cleared the lock of rollout {holder}, which cannot finish its work{}",
        if release.uncordon {
            "; uncordoned the node it had cordoned"
        } else {
            ""
        }
    );
    tracing::warn!(%target, %holder, "{note}");
    for regarding in [object_reference(target), Some(reporter.clone())]
        .into_iter()
        .flatten()
    {
        let event = Event {
            type_: EventType::Warning,
            reason: "OrphanedLockCleared".into(),
            note: Some(format!("{target}: {note}")),
            action: "ClearLock".into(),
            secondary: None,
        };
        if let Err(error) = ctx.recorder.publish(&event, &regarding).await {
            tracing::warn!(%error, "could not record an event");
        }
    }
    Ok(true)
}

/// What clearing a lock takes: one merge patch of the target.
#[derive(Clone, Debug, PartialEq)]
pub struct Release {
    /// The merge patch: the lock and the locked label go, the holder's records in progress
    /// become `Failed` (`Abandoned`), and a node the holder cordoned is uncordoned. It
    /// carries the resource version it was made from.
    pub body: serde_json::Value,
    /// Whether the patch uncordons the node (only one the holder cordoned).
    pub uncordon: bool,
    /// The policies whose record of the holder was in progress and is marked abandoned.
    pub abandoned: Vec<String>,
}

impl Release {
    /// How to clear the lock `holder` holds on a target with `meta` (`unschedulable`: a
    /// node cordoned now), at `now`; `None` when the target does not carry that lock.
    pub fn of(
        meta: &ObjectMeta,
        unschedulable: bool,
        holder: &str,
        now: jiff::Timestamp,
    ) -> Option<Release> {
        let annotations = meta.annotations.clone().unwrap_or_default();
        if annotations.get(keys::LOCK).map(String::as_str) != Some(holder) {
            return None;
        }
        // The holder's record, whichever policy's it is: it says whether the holder
        // cordoned the node, and is marked abandoned.
        let mut patched_annotations = json!({keys::LOCK: null});
        let mut uncordon = false;
        let mut abandoned = Vec::new();
        for (key, value) in &annotations {
            let Some(policy) = key
                .strip_prefix(keys::POLICY_PREFIX)
                .and_then(|rest| rest.strip_suffix(".rollout"))
            else {
                continue;
            };
            let Some(mut records) = Records::parse(value) else {
                continue;
            };
            if records.current.rollout != holder {
                continue;
            }
            if records.current.state.in_progress().is_some() {
                uncordon |= records.current.cordoned && unschedulable;
                records.current.state = RecordState::Failed;
                records.current.since = now;
                records.current.reason = Some("Abandoned".into());
                records.current.message = Some(format!(
                    "rollout {holder} could not finish its work here; its lock was cleared"
                ));
                abandoned.push(policy.to_owned());
            }
            patched_annotations[key] = json!(records.to_annotation());
        }
        let mut body = json!({"metadata": {
            "resourceVersion": meta.resource_version,
            "annotations": patched_annotations,
            "labels": {keys::LOCKED_LABEL: null},
        }});
        if uncordon {
            body["spec"] = json!({"unschedulable": false});
        }
        Some(Release {
            body,
            uncordon,
            abandoned,
        })
    }
}

/// The target's metadata, fresh from the API server, and whether it is unschedulable.
pub async fn read(client: &kube::Client, target: &TargetId) -> Result<Option<(ObjectMeta, bool)>> {
    let client = client.clone();
    let fail = |e| Error::api(format!("read {target}"), e);
    Ok(match TargetId::parse(target.as_str()) {
        Some((TargetKind::Node, _, name)) => Api::<Node>::all(client)
            .get_opt(name)
            .await
            .map_err(fail)?
            .map(|n| {
                let unschedulable = n.spec.as_ref().and_then(|s| s.unschedulable) == Some(true);
                (n.metadata, unschedulable)
            }),
        Some((TargetKind::Workload(kind), Some(ns), name)) => match kind {
            WorkloadKind::Deployment => Api::<Deployment>::namespaced(client, ns)
                .get_opt(name)
                .await
                .map_err(fail)?
                .map(|w| (w.metadata, false)),
            WorkloadKind::StatefulSet => Api::<StatefulSet>::namespaced(client, ns)
                .get_opt(name)
                .await
                .map_err(fail)?
                .map(|w| (w.metadata, false)),
            WorkloadKind::DaemonSet => Api::<DaemonSet>::namespaced(client, ns)
                .get_opt(name)
                .await
                .map_err(fail)?
                .map(|w| (w.metadata, false)),
        },
        _ => None,
    })
}
