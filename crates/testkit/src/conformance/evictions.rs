//! Evictions under PodDisruptionBudgets, and events written as `events.k8s.io` read as core
//! events.

use std::time::Duration;

use k8s_openapi::api::{
    core::v1::{Event, Pod},
    events::v1::Event as NewEvent,
    policy::v1::PodDisruptionBudget,
};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

use super::{Backend, BudgetStatus, api_error, code, eventually};

/// A pod labelled `app: web` that never leaves its namespace's API objects: a scheduling
/// gate keeps the scheduler (and so a real cluster's kubelets) away from it, and its status
/// is written here, Running and Ready or not.
async fn pod(pods: &Api<Pod>, name: &str, ready: bool) {
    let pod: Pod = serde_json::from_value(
        json!({"metadata": {"name": name, "labels": {"app": "web"}}, "spec": {
        "schedulingGates": [{"name": "conformance.patchpilot.dev/never"}],
        "containers": [{"name": "c", "image": "nginx"}]}}),
    )
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let status = json!({"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}});
    pods.patch_status(name, &PatchParams::default(), &Patch::Merge(status))
        .await
        .unwrap();
}

/// Evictions are judged as the API server judges them: from the budget's status, as the
/// disruption controller last wrote it (a real cluster's controller; in the sandbox, which
/// runs none, the backend writes it), taking one of its disruptions for a Ready pod.
pub async fn evictions_respect_pod_disruption_budgets(backend: &impl Backend) {
    let client = backend.client();
    let pods: Api<Pod> = Api::namespaced(client.clone(), backend.namespace());
    for name in ["web-1", "web-2", "web-3"] {
        pod(&pods, name, true).await;
    }
    pod(&pods, "web-0", false).await;
    let budgets: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), backend.namespace());
    let budget: PodDisruptionBudget = serde_json::from_value(json!({"metadata": {"name": "web-pdb"}, "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}}})).unwrap();
    budgets
        .create(&PostParams::default(), &budget)
        .await
        .unwrap();
    let refused = |error| {
        let status = api_error(error);
        assert_eq!(status.code, 429);
        assert_eq!(status.reason, "TooManyRequests");
        assert_eq!(
            status.message,
            "Cannot evict pod as it would violate the pod's disruption budget."
        );
        let cause = &status.details.unwrap().causes[0];
        assert_eq!(cause.reason, "DisruptionBudget");
        cause.message.clone()
    };
    // No status yet: the budget has not been processed. (A real cluster's controller may
    // have processed it already.)
    if !backend.runs_controllers() {
        assert_eq!(
            refused(pods.evict("web-1", &Default::default()).await.unwrap_err()),
            "The disruption budget web-pdb is still being processed by the server."
        );
    }
    let four_one_allowed = BudgetStatus {
        expected: 4,
        healthy: 3,
        desired: 2,
        allowed: 1,
    };
    backend
        .disruption_controller("web-pdb", four_one_allowed)
        .await;
    // A pod that is not Ready goes while the budget has its healthy pods, taking nothing.
    pods.evict("web-0", &Default::default()).await.unwrap();
    let allowed = |b: PodDisruptionBudget| b.status.unwrap().disruptions_allowed;
    if !backend.runs_controllers() {
        assert_eq!(allowed(budgets.get("web-pdb").await.unwrap()), 1);
    }
    // A Ready pod takes the one disruption allowed; the next is refused until the
    // controller allows another.
    if backend.runs_controllers() {
        // The controller has seen web-0 go: three pods, three healthy.
        let three = BudgetStatus {
            expected: 3,
            ..four_one_allowed
        };
        backend.disruption_controller("web-pdb", three).await;
    }
    pods.evict("web-1", &Default::default()).await.unwrap();
    // A pod bound to no node goes at once.
    assert_eq!(code(pods.get("web-1").await.unwrap_err()), 404);
    let after = budgets.get("web-pdb").await.unwrap();
    let status = after.status.unwrap();
    if !backend.runs_controllers() {
        assert_eq!(status.disruptions_allowed, 0);
        assert!(status.disrupted_pods.unwrap().contains_key("web-1"));
    }
    let message = refused(pods.evict("web-2", &Default::default()).await.unwrap_err());
    // The counts are the status's: the controller's latest (a real one may already have
    // seen web-1 go).
    let healthy = budgets
        .get("web-pdb")
        .await
        .unwrap()
        .status
        .unwrap()
        .current_healthy;
    assert!(
        [
            "The disruption budget web-pdb needs 2 healthy pods and has 3 currently".to_owned(),
            format!(
                "The disruption budget web-pdb needs 2 healthy pods and has {healthy} currently"
            )
        ]
        .contains(&message),
        "{message}"
    );
    if !backend.runs_controllers() {
        assert_eq!(
            message,
            "The disruption budget web-pdb needs 2 healthy pods and has 3 currently"
        );
    }
    // Another Ready pod: the controller allows one disruption again.
    pod(&pods, "web-4", true).await;
    backend
        .disruption_controller(
            "web-pdb",
            BudgetStatus {
                expected: 3,
                ..four_one_allowed
            },
        )
        .await;
    pods.evict("web-2", &Default::default()).await.unwrap();
}

/// The budget's status as its controller has written it, once it has the counts `wanted`.
pub async fn wait_for_budget(budgets: &Api<PodDisruptionBudget>, name: &str, wanted: BudgetStatus) {
    eventually(
        &format!("the disruption controller's status {wanted:?} of {name}"),
        Duration::from_secs(30),
        || async {
            let budget = budgets.get(name).await.ok()?;
            let generation = budget.metadata.generation;
            let status = budget.status?;
            let seen = BudgetStatus {
                expected: status.expected_pods,
                healthy: status.current_healthy,
                desired: status.desired_healthy,
                allowed: status.disruptions_allowed,
            };
            (status.observed_generation == generation && seen == wanted).then_some(())
        },
    )
    .await;
}

/// An event written as `events.k8s.io/v1` is read as a core event, by field selector. An
/// event about a cluster-scoped object lives in `default`, as the operator writes them
/// (elsewhere it is refused, naming `involvedObject.namespace`). An event without `eventTime`
/// must live in the namespace it names, on every write.
pub async fn events_written_as_events_k8s_io_are_read_as_core_events(backend: &impl Backend) {
    let client = backend.client();
    let rollout = backend.cluster_object("patchpilot.dev/v1alpha1", "patchrollouts", "r1");
    let event: NewEvent = serde_json::from_value(json!({
        "metadata": {"name": format!("{rollout}.1")},
        "eventTime": "2026-11-28T01:00:00.000000Z",
        "regarding": {"apiVersion": "patchpilot.dev/v1alpha1", "kind": "PatchRollout", "name": rollout},
        "reason": "WaveStarted", "note": "wave canary started", "type": "Normal", "action": "Progress",
        "reportingController": "patchpilot.dev/operator", "reportingInstance": "patchpilot-0",
    }))
    .unwrap();
    let elsewhere: Api<NewEvent> = Api::namespaced(client.clone(), backend.namespace());
    let refused = api_error(
        elsewhere
            .create(&PostParams::default(), &event)
            .await
            .unwrap_err(),
    );
    assert_eq!((refused.code, refused.reason.as_str()), (422, "Invalid"));
    assert_eq!(
        refused.message,
        format!(
            "Event \"{rollout}.1\" is invalid: involvedObject.namespace: Invalid value: \"\": does not match event.namespace"
        )
    );
    let cause = &refused.details.unwrap().causes[0];
    assert_eq!(
        (cause.reason.as_str(), cause.field.as_str()),
        ("FieldValueInvalid", "involvedObject.namespace")
    );

    let events: Api<NewEvent> = Api::namespaced(client.clone(), "default");
    events.create(&PostParams::default(), &event).await.unwrap();
    let core: Api<Event> = Api::namespaced(client, "default");
    let listed = core
        .list(&ListParams::default().fields(&format!("involvedObject.name={rollout}")))
        .await
        .unwrap();
    // An event with an `eventTime` names the namespace of what it is about freely, when it
    // names one, on create and on update.
    let elsewhere = json!({"involvedObject": {"namespace": backend.namespace()}});
    core.patch(
        &format!("{rollout}.1"),
        &PatchParams::default(),
        &Patch::Merge(&elsewhere),
    )
    .await
    .unwrap();
    // One without (as `kubectl` and client-go's old recorder write them) lives in that
    // namespace, checked on every write.
    let here: Api<Event> = Api::namespaced(backend.client(), backend.namespace());
    let old_style: Event = serde_json::from_value(json!({
        "metadata": {"name": "web-0.1"},
        "involvedObject": {"kind": "Pod", "name": "web-0", "namespace": backend.namespace()},
        "reason": "Evicted", "message": "evicted", "type": "Normal",
    }))
    .unwrap();
    here.create(&PostParams::default(), &old_style)
        .await
        .unwrap();
    let moved = json!({"involvedObject": {"namespace": "default"}});
    let refused = api_error(
        here.patch("web-0.1", &PatchParams::default(), &Patch::Merge(&moved))
            .await
            .unwrap_err(),
    );
    assert_eq!((refused.code, refused.reason.as_str()), (422, "Invalid"));
    assert_eq!(
        refused.message,
        "Event \"web-0.1\" is invalid: involvedObject.namespace: Invalid value: \"default\": does not match event.namespace"
    );
    let mut replaced = here.get("web-0.1").await.unwrap();
    replaced.involved_object.namespace = Some("default".into());
    let refused = api_error(
        here.replace("web-0.1", &PostParams::default(), &replaced)
            .await
            .unwrap_err(),
    );
    assert_eq!((refused.code, refused.reason.as_str()), (422, "Invalid"));
    events
        .delete(&format!("{rollout}.1"), &Default::default())
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1);
    assert_eq!(
        listed.items[0].message.as_deref(),
        Some("wave canary started")
    );
    assert_eq!(
        listed.items[0].involved_object.kind.as_deref(),
        Some("PatchRollout")
    );
}
