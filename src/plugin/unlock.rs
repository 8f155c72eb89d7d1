//! `unlock TARGET`: breaks a lock whose rollout is gone, after saying what it will do.
//!
//! It clears the lock exactly as the operator clears an orphaned one
//! (`controller::orphans::Release`): the lock annotation and label go, the gone rollout's
//! record is marked `Failed` (`Abandoned`), and a node is uncordoned only if that rollout
//! cordoned it. A lock held by a rollout that exists is refused: the rollout releases it
//! when it finishes, and `abort` stops it.

use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use kube::{
    Api, Client,
    api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams},
    runtime::events::{Event, EventType, Reporter},
};

use super::{Outcome, PluginError, UnlockArgs};
use crate::{
    api::PatchRollout,
    clock::Clock,
    controller::{
        candidates::object_reference,
        events::Recorder,
        orphans::{self, Release},
    },
    engine::{
        keys, naming,
        policy::WorkloadKind,
        target::{TargetId, TargetKind},
        untrusted,
    },
};

/// Unlocks the target named, or says why not.
pub async fn run(client: &Client, args: &UnlockArgs) -> Outcome {
    let target = target_id(&args.target, args.namespace.as_deref())?;
    let (meta, unschedulable) = orphans::read(client, &target)
        .await
        .map_err(|e| PluginError::Cluster(e.to_string()))?
        .ok_or_else(|| PluginError::Refused(format!("{target} not found")))?;
    let Some(holder) = meta
        .annotations
        .as_ref()
        .and_then(|a| a.get(keys::LOCK))
        .cloned()
    else {
        println!("{target} is not locked by patchpilot: nothing to do");
        return Ok(0);
    };
    // A lock that is no rollout's name was written by someone else; no rollout to ask about.
    let rollout = match naming::is_object_name(&holder) {
        true => Api::<PatchRollout>::all(client.clone())
            .get_opt(&holder)
            .await
            .map_err(|e| PluginError::api(format!("PatchRollout {holder}"), e))?,
        false => None,
    };
    if let Some(rollout) = rollout {
        let phase = rollout.status.map(|s| s.phase).unwrap_or_default();
        return Err(PluginError::Refused(format!(
            "{target} is locked by PatchRollout {holder}, which exists ({phase:?}): it releases \
             the lock when it is done with the target; to stop it: kubectl patchpilot abort {holder}"
        )));
    }
    let now = super::server_now(client).await;
    let Some(release) = Release::of(&meta, unschedulable, &holder, now) else {
        return Err(PluginError::Cluster(format!(
            "{target} changed while it was read; run the command again"
        )));
    };
    print!("{}", plan(&target, &holder, &release, unschedulable));
    if args.dry_run {
        println!("Dry run: nothing changed.");
        return Ok(0);
    }
    patch(client, &target, &release.body).await?;
    println!(
        "{target} unlocked{}",
        if release.uncordon {
            " and uncordoned"
        } else {
            ""
        }
    );
    record(client, &target, meta.uid.as_deref(), &holder, &release, now).await;
    Ok(0)
}

/// What unlocking will do, a line each.
fn plan(target: &TargetId, holder: &str, release: &Release, unschedulable: bool) -> String {
    let whose = match naming::is_object_name(holder) {
        true => format!("is locked by PatchRollout {holder}, which no longer exists"),
        false => format!(
            "carries the lock {}, which is no rollout's name",
            untrusted::shown(holder)
        ),
    };
    let mut out = format!(
        "{target} {whose}. Unlocking it will:\n  \
         - remove the lock ({} and the label {})\n",
        keys::LOCK,
        keys::LOCKED_LABEL
    );
    for policy in &release.abandoned {
        out.push_str(&format!(
            "  - record the work of {holder} for PatchPolicy {policy} as failed (Abandoned): \
             the policy's next rollout takes the target again\n"
        ));
    }
    if target.as_str().starts_with("Node/") {
        out.push_str(if release.uncordon {
            "  - uncordon the node, which the rollout cordoned\n"
        } else if unschedulable {
            "  - leave the node cordoned: patchpilot did not cordon it\n"
        } else {
            "  - leave the node schedulable, as it is\n"
        });
    }
    out
}

/// Applies the release's merge patch (it carries the resource version it was made from: a
/// target changed in between is refused with 409).
async fn patch(
    client: &Client,
    target: &TargetId,
    body: &serde_json::Value,
) -> Result<(), PluginError> {
    let (kind, namespace, name) = TargetId::parse(target.as_str())
        .ok_or_else(|| PluginError::Refused(format!("{target}: not a target")))?;
    let (group, version, kind_name) = match kind {
        TargetKind::Node => ("", "v1", "Node"),
        TargetKind::Workload(kind) => ("apps", "v1", kind.as_str()),
    };
    let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind_name));
    let api: Api<DynamicObject> = match namespace {
        Some(namespace) => Api::namespaced_with(client.clone(), namespace, &resource),
        None => Api::all_with(client.clone(), &resource),
    };
    let params = PatchParams {
        field_manager: Some(super::steer::MANAGER.into()),
        ..Default::default()
    };
    match api.patch(name, &params, &Patch::Merge(body)).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 409 => Err(PluginError::Cluster(format!(
            "{target} changed while it was being unlocked; run the command again"
        ))),
        Err(e) => Err(PluginError::api(format!("unlocking {target}"), e)),
    }
}

/// An Event on the target, as the operator writes when it clears an orphaned lock, so that
/// `kubectl describe` shows who broke the lock. Not being able to write it is only a
/// warning: the lock is gone.
async fn record(
    client: &Client,
    target: &TargetId,
    uid: Option<&str>,
    holder: &str,
    release: &Release,
    now: Timestamp,
) {
    let Some(mut regarding) = object_reference(target) else {
        return;
    };
    // `kubectl describe` finds an object's events by its UID.
    regarding.uid = uid.map(str::to_owned);
    let reporter = Reporter {
        controller: super::steer::MANAGER.into(),
        instance: None,
    };
    let recorder = Recorder::new(client.clone(), reporter, Arc::new(At(now)));
    let event = Event {
        type_: EventType::Warning,
        reason: "LockCleared".into(),
        note: Some(format!(
            "{target}: cleared the lock of rollout {holder}, which no longer exists, with kubectl patchpilot unlock{}",
            if release.uncordon {
                "; uncordoned the node it had cordoned"
            } else {
                ""
            }
        )),
        action: "ClearLock".into(),
        secondary: None,
    };
    if let Err(error) = recorder.publish(&event, &regarding).await {
        eprintln!("warning: could not record an Event on {target}: {error}");
    }
}

/// The server's clock at one instant, for the Event's time.
struct At(Timestamp);

impl Clock for At {
    fn now(&self) -> Timestamp {
        self.0
    }

    fn sleep_for(&self, at: Timestamp) -> std::time::Duration {
        at.duration_since(self.0)
            .max(SignedDuration::ZERO)
            .unsigned_abs()
    }
}

/// The target a person names, as kubectl names objects: `NAME` (a node), `node/NAME`,
/// `deployment/NAME` with `-n NAMESPACE`, or as patchpilot prints targets
/// (`Node/NAME`, `Deployment/NAMESPACE/NAME`).
fn target_id(text: &str, namespace: Option<&str>) -> Result<TargetId, PluginError> {
    match TargetId::parse(text) {
        Some((TargetKind::Node, _, name)) => return Ok(TargetId::node(name)),
        Some((TargetKind::Workload(kind), Some(namespace), name)) => {
            return Ok(TargetId::workload(kind, namespace, name));
        }
        _ => {}
    }
    let unknown = || {
        PluginError::Refused(format!(
            "{text}: name a node (NAME or node/NAME) or a workload (deployment/NAME -n NAMESPACE, \
             or Deployment/NAMESPACE/NAME)"
        ))
    };
    let Some((kind, name)) = text.split_once('/') else {
        return if text.is_empty() {
            Err(unknown())
        } else {
            Ok(TargetId::node(text))
        };
    };
    if name.is_empty() || name.contains('/') {
        return Err(unknown());
    }
    let workload = match kind.to_ascii_lowercase().as_str() {
        "node" | "nodes" | "no" => return Ok(TargetId::node(name)),
        "deployment" | "deployments" | "deploy" => WorkloadKind::Deployment,
        "statefulset" | "statefulsets" | "sts" => WorkloadKind::StatefulSet,
        "daemonset" | "daemonsets" | "ds" => WorkloadKind::DaemonSet,
        _ => return Err(unknown()),
    };
    let namespace = namespace.unwrap_or("default");
    Ok(TargetId::workload(workload, namespace, name))
}

#[cfg(test)]
mod tests {
    use super::target_id;

    #[test]
    fn targets_are_named_as_kubectl_names_objects() {
        let id = |text: &str, ns: Option<&str>| target_id(text, ns).map(|t| t.to_string());
        assert_eq!(id("general-1", None).unwrap(), "Node/general-1");
        assert_eq!(id("node/general-1", None).unwrap(), "Node/general-1");
        assert_eq!(id("Node/general-1", None).unwrap(), "Node/general-1");
        assert_eq!(
            id("deploy/web", Some("shop")).unwrap(),
            "Deployment/shop/web"
        );
        assert_eq!(
            id("statefulset/db", None).unwrap(),
            "StatefulSet/default/db"
        );
        assert_eq!(
            id("DaemonSet/kube-system/agent", None).unwrap(),
            "DaemonSet/kube-system/agent"
        );
        assert!(id("pod/x", None).is_err());
        assert!(id("node/", None).is_err());
        assert!(id("", None).is_err());
    }
}
