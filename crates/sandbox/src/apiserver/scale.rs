//! The `scale` subresource of Deployments, ReplicaSets and StatefulSets: an
//! `autoscaling/v1` `Scale` that reads and writes the workload's replicas, as `kubectl
//! scale` and autoscalers use it.

use http::{StatusCode, header};
use serde_json::{Value, json};

use super::{Reply, Request, printers::format_selector, route::Target, verbs};
use crate::{patch, resources::ResourceType, status::ApiError, store::Store};

/// Whether a resource has the `scale` subresource.
pub fn served(resource: &ResourceType) -> bool {
    resource.group == "apps"
        && matches!(
            resource.kind.as_str(),
            "Deployment" | "ReplicaSet" | "StatefulSet"
        )
}

/// Answers a request for the `scale` subresource: `get`, `update` (`PUT` of a `Scale`) and
/// `patch` (JSON, merge or strategic merge patches of the `Scale`).
pub(super) fn handle(
    store: &Store,
    target: &Target,
    request: &Request,
    verb: &str,
) -> Result<Reply, ApiError> {
    let resource = &target.resource;
    let namespace = target.namespace.as_deref().unwrap_or("");
    let name = target.name.as_deref().unwrap_or("");
    match verb {
        "get" => Ok(Reply::ok(scale_of(
            &store.get(resource, namespace, name)?.to_value(),
        ))),
        "update" => {
            let sent = verbs::body(request, "Scale")?;
            let precondition = sent["metadata"]["resourceVersion"]
                .as_str()
                .filter(|rv| !rv.is_empty())
                .map(str::to_owned);
            write(store, target, request, |current| {
                if precondition
                    .as_ref()
                    .is_some_and(|rv| current["metadata"]["resourceVersion"].as_str() != Some(rv))
                {
                    return Err(ApiError::conflict(resource, name));
                }
                Ok(sent.clone())
            })
        }
        "patch" => {
            let content_type = request
                .headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let content_type = content_type
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_owned();
            let document: Value = serde_json::from_slice(&request.body)
                .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
            write(store, target, request, |current| {
                let scale = scale_of(current);
                let patched = match content_type.as_str() {
                    "application/json-patch+json" => patch::json_patch(&scale, &document),
                    "application/merge-patch+json" => patch::merge_patch(&scale, &document),
                    "application/strategic-merge-patch+json" => {
                        let types = patch::builtin("autoscaling", "Scale");
                        patch::strategic_merge_patch(&scale, &document, types.as_ref())
                    }
                    other => return Err(ApiError::unsupported_media_type(other)),
                };
                patched.map_err(|e| verbs::patch_error(resource, name, e))
            })
        }
        other => Err(ApiError::method_not_allowed(format!(
            "the verb {other} is not supported on scale"
        ))),
    }
}

/// Sets the workload's replicas to those of the `Scale` that `change` makes of the stored
/// object, and answers the new `Scale`.
fn write(
    store: &Store,
    target: &Target,
    request: &Request,
    change: impl FnOnce(&Value) -> Result<Value, ApiError>,
) -> Result<Reply, ApiError> {
    let resource = &target.resource;
    let namespace = target.namespace.as_deref().unwrap_or("");
    let name = target.name.as_deref().unwrap_or("");
    let manager = verbs::manager(request);
    let mut options = verbs::write(request, target, &manager);
    options.subresource = Some("scale");
    let written = store.modify(resource, namespace, name, &options, |old| {
        let old = old.ok_or_else(|| ApiError::not_found(resource, name))?;
        let scale = change(old)?;
        let replicas = replicas(&scale, name)?;
        let mut object = old.clone();
        object["spec"]["replicas"] = json!(replicas);
        Ok(object)
    })?;
    Ok(Reply::Json(
        StatusCode::OK,
        scale_of(&written.object.to_value()),
        written.warnings,
    ))
}

/// The replicas a `Scale` asks for: a count of at least 0.
fn replicas(scale: &Value, name: &str) -> Result<i64, ApiError> {
    let invalid = |value: String| {
        let message = format!("Invalid value: {value}: must be greater than or equal to 0");
        ApiError {
            code: 422,
            reason: "Invalid",
            message: format!("Scale.autoscaling \"{name}\" is invalid: spec.replicas: {message}"),
            details: Some(json!({
                "name": name,
                "group": "autoscaling",
                "kind": "Scale",
                "causes": [
                    {"reason": "FieldValueInvalid", "message": message, "field": "spec.replicas"},
                ],
            })),
        }
    };
    match &scale["spec"]["replicas"] {
        Value::Null => Ok(0),
        Value::Number(n) => match n.as_i64() {
            Some(replicas) if replicas >= 0 => Ok(replicas),
            _ => Err(invalid(n.to_string())),
        },
        other => Err(invalid(other.to_string())),
    }
}

/// The `Scale` of a workload: its wanted replicas, and those it has with their selector.
fn scale_of(object: &Value) -> Value {
    let meta = &object["metadata"];
    let mut metadata = json!({});
    for field in [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "creationTimestamp",
    ] {
        if !meta[field].is_null() {
            metadata[field] = meta[field].clone();
        }
    }
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": metadata,
        "spec": {"replicas": object["spec"]["replicas"].as_i64().unwrap_or(1)},
        "status": {
            "replicas": object["status"]["replicas"].as_i64().unwrap_or(0),
            "selector": format_selector(&object["spec"]["selector"]),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scale_shows_wanted_and_current_replicas() {
        let deployment = json!({
            "metadata": {"name": "web", "namespace": "shop", "resourceVersion": "7", "uid": "u"},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}},
            "status": {"replicas": 2},
        });
        let scale = scale_of(&deployment);
        assert_eq!(scale["spec"]["replicas"], 3);
        assert_eq!(
            scale["status"],
            json!({"replicas": 2, "selector": "app=web"})
        );
        assert_eq!(
            scale["metadata"],
            json!({"name": "web", "namespace": "shop", "resourceVersion": "7", "uid": "u"})
        );
    }

    #[test]
    fn replicas_are_counts() {
        assert_eq!(replicas(&json!({"spec": {"replicas": 4}}), "web"), Ok(4));
        assert_eq!(
            replicas(&json!({"spec": {"replicas": -1}}), "web").map_err(|e| e.code),
            Err(422)
        );
        assert_eq!(
            replicas(&json!({"spec": {"replicas": "2"}}), "web").map_err(|e| e.code),
            Err(422)
        );
    }
}
