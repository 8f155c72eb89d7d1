//! The `eviction` subresource of pods: `POST pods/<name>/eviction` deletes the pod unless a
//! PodDisruptionBudget forbids it, as `kubectl drain` and the operator's drains use it.

use std::sync::Arc;

use http::StatusCode;
use serde_json::{Value, json};

use super::{Reply, Request, route::Target, verbs::body};
use crate::json::Json;
use crate::{
    selector,
    status::ApiError,
    store::{DeleteOptions, Store, Write},
};

/// `POST pods/<name>/eviction`: deletes the pod unless a PodDisruptionBudget forbids it,
/// then answers 429 naming the budget.
pub(super) fn evict(store: &Store, target: &Target, request: &Request) -> Result<Reply, ApiError> {
    let pods = &target.resource;
    let namespace = target.namespace.as_deref().unwrap_or("");
    let name = target.name.as_deref().unwrap_or("");
    let eviction: Value = if request.body.is_empty() {
        json!({})
    } else {
        body(request, "Eviction")?
    };
    if eviction["metadata"]["name"]
        .as_str()
        .is_some_and(|n| n != name)
    {
        return Err(ApiError::bad_request(
            "name in URL does not match name in Eviction object",
        ));
    }
    let pod = store.get(pods, namespace, name)?;
    if !pod["metadata"]["deletionTimestamp"].is_null() {
        return Ok(Reply::Json(
            StatusCode::CREATED,
            status_success(),
            Vec::new(),
        ));
    }
    let budgets_resource = store
        .resource("policy", "v1", "poddisruptionbudgets")
        .ok_or_else(|| ApiError::internal("PodDisruptionBudgets are not served"))?;
    let pod_labels = selector::labels_of(&pod);
    let budgets: Vec<Arc<Json>> = store
        .all(&budgets_resource.storage)
        .into_iter()
        .filter(|b| b["metadata"]["namespace"].as_str() == Some(namespace))
        .filter(|b| {
            selector::written(&b["spec"]["selector"])
                .is_some_and(|s| !s.is_everything() && s.matches(&pod_labels))
        })
        .collect();
    if budgets.len() > 1 {
        return Err(ApiError::internal(
            "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
        ));
    }
    let terminal = matches!(
        pod["status"]["phase"].as_str(),
        Some("Succeeded" | "Failed")
    );
    let budget = budgets.first().filter(|_| !terminal);
    let takes_a_disruption = match budget {
        Some(budget) => judge(budget, &pod).map_err(|message| {
            ApiError::too_many_requests(
                "Cannot evict pod as it would violate the pod's disruption budget.",
                vec![json!({"reason": "DisruptionBudget", "message": message})],
            )
        })?,
        None => false,
    };
    if let Some(budget) = budget
        && takes_a_disruption
    {
        let budget_name = budget["metadata"]["name"].as_str().unwrap_or("").to_owned();
        let at = store.now_text();
        let pod_name = name.to_owned();
        let _ = store.modify(
            &budgets_resource,
            namespace,
            &budget_name,
            &Write::internal("kube-controller-manager").status(),
            |old| {
                let mut budget = old.cloned().unwrap_or_default();
                let allowed = budget["status"]["disruptionsAllowed"].as_i64().unwrap_or(1);
                budget["status"]["disruptionsAllowed"] = json!((allowed - 1).max(0));
                budget["status"]["disruptedPods"][pod_name.as_str()] = json!(at);
                Ok(budget)
            },
        );
    }
    let options = DeleteOptions {
        grace_period: eviction["deleteOptions"]["gracePeriodSeconds"].as_i64(),
        ..DeleteOptions::default()
    };
    store.delete(pods, namespace, name, &options)?;
    Ok(Reply::Json(
        StatusCode::CREATED,
        status_success(),
        Vec::new(),
    ))
}

fn status_success() -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"})
}

/// Whether a budget allows evicting `pod` now, judged as the API server does: from the
/// budget's status, as the disruption controller last wrote it. A pod that is not Ready may
/// go without using up a disruption under `unhealthyPodEvictionPolicy: AlwaysAllow`, or
/// while the budget has its desired healthy pods; any other eviction needs a status that
/// has observed the budget's generation and a disruption allowed. `Ok` says whether the
/// eviction takes one of the budget's disruptions; `Err` says why not, in the API server's
/// words.
fn judge(budget: &Json, pod: &Json) -> Result<bool, String> {
    let name = budget["metadata"]["name"].as_str().unwrap_or("");
    let status = &budget["status"];
    let number = |field: &str| status[field].as_i64().unwrap_or(0);
    let (desired, healthy) = (number("desiredHealthy"), number("currentHealthy"));
    if !ready(pod) {
        let always = budget["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow";
        if always || (desired > 0 && healthy >= desired) {
            return Ok(false);
        }
    }
    let generation = budget["metadata"]["generation"].as_i64().unwrap_or(0);
    if number("observedGeneration") < generation {
        return Err(format!(
            "The disruption budget {name} is still being processed by the server."
        ));
    }
    if number("disruptionsAllowed") <= 0 {
        return Err(format!(
            "The disruption budget {name} needs {desired} healthy pods and has {healthy} currently"
        ));
    }
    Ok(true)
}

/// Whether a pod's `Ready` condition is `True`.
fn ready(pod: &Json) -> bool {
    pod["status"]["conditions"]
        .as_array()
        .is_some_and(|conditions| {
            conditions
                .iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}
