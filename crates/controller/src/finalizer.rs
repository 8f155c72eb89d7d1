//! The finalizers that keep a PatchRollout or a PatchPolicy until no target is left in
//! progress (SPEC 3.2: deleting a rollout or its policy never abandons a target).
//!
//! Both are added and removed with JSON patches that test what they change (the resource
//! version, or the finalizer at its index), so a finalizer of someone else's is never lost
//! and nothing is written on an object that changed since it was read.

use kube::{
    Api, Resource, ResourceExt,
    api::{Patch, PatchParams},
};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::{
    context::MANAGER,
    error::{Error, Result},
};

/// The finalizer of every PatchRollout.
pub const ROLLOUT: &str = "patchpilot.dev/rollout";
/// The finalizer of every PatchPolicy.
pub const POLICY: &str = "patchpilot.dev/policy";

/// A JSON pointer's escaping of one path segment.
fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

/// Adds `finalizer` to `object`, and the `labels` it lacks, in one request; nothing when
/// both are there.
pub async fn ensure<K>(
    api: &Api<K>,
    object: &K,
    finalizer: &str,
    labels: &[(&str, &str)],
) -> Result<()>
where
    K: Resource<DynamicType = ()> + Clone + std::fmt::Debug + DeserializeOwned,
{
    let mut ops: Vec<Value> = Vec::new();
    if !object.finalizers().iter().any(|f| f == finalizer) {
        ops.push(if object.meta().finalizers.is_none() {
            json!({"op": "add", "path": "/metadata/finalizers", "value": [finalizer]})
        } else {
            json!({"op": "add", "path": "/metadata/finalizers/-", "value": finalizer})
        });
    }
    let present = object.meta().labels.as_ref();
    let missing: Vec<&(&str, &str)> = labels
        .iter()
        .filter(|(k, v)| present.and_then(|l| l.get(*k)).is_none_or(|have| have != v))
        .collect();
    if !missing.is_empty() {
        if present.is_none() {
            let all: serde_json::Map<String, Value> = missing
                .iter()
                .map(|(k, v)| ((*k).to_owned(), json!(v)))
                .collect();
            ops.push(json!({"op": "add", "path": "/metadata/labels", "value": all}));
        } else {
            for (key, value) in missing {
                let path = format!("/metadata/labels/{}", escape(key));
                ops.push(json!({"op": "add", "path": path, "value": value}));
            }
        }
    }
    if ops.is_empty() {
        return Ok(());
    }
    ops.insert(
        0,
        json!({"op": "test", "path": "/metadata/resourceVersion", "value": object.resource_version()}),
    );
    send(api, object, ops, "add the finalizer to").await
}

/// Removes `finalizer` from `object`; nothing when it is not there.
pub async fn remove<K>(api: &Api<K>, object: &K, finalizer: &str) -> Result<()>
where
    K: Resource<DynamicType = ()> + Clone + std::fmt::Debug + DeserializeOwned,
{
    let Some(index) = object.finalizers().iter().position(|f| f == finalizer) else {
        return Ok(());
    };
    let path = format!("/metadata/finalizers/{index}");
    let ops = vec![
        json!({"op": "test", "path": path, "value": finalizer}),
        json!({"op": "remove", "path": path}),
    ];
    match send(api, object, ops, "remove the finalizer from").await {
        // Gone already: nothing to hold.
        Err(Error::Api {
            source: kube::Error::Api(status),
            ..
        }) if status.code == 404 => Ok(()),
        other => other,
    }
}

async fn send<K>(api: &Api<K>, object: &K, ops: Vec<Value>, what: &str) -> Result<()>
where
    K: Resource<DynamicType = ()> + Clone + std::fmt::Debug + DeserializeOwned,
{
    let name = object.name_any();
    let patch: json_patch::Patch = serde_json::from_value(Value::Array(ops))
        .map_err(|e| Error::Conflict(format!("a finalizer patch of {name}: {e}")))?;
    let params = PatchParams {
        field_manager: Some(MANAGER.into()),
        ..PatchParams::default()
    };
    api.patch(&name, &params, &Patch::Json::<()>(patch))
        .await
        .map(|_| ())
        .map_err(|e| {
            let action = format!("{what} {} {name}", K::kind(&()));
            match &e {
                // A failed test is a change since the object was read: look again.
                kube::Error::Api(status) if status.code == 422 => Error::Conflict(action),
                _ => Error::api(action, e),
            }
        })
}
