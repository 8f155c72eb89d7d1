//! Workloads and what keeps them available: Deployments, ReplicaSets, StatefulSets and
//! DaemonSets (replica counts from their status; containers, images and selector with `-o
//! wide`), ControllerRevisions, Jobs (state, completions, duration) and
//! PodDisruptionBudgets (the budget and the disruptions it allows now).

use jiff::Timestamp;
use serde_json::{Value, json};

use super::{
    Column, Row, age, containers_and_images, containers_images_selector, format_labels,
    format_selector, human_duration, int, name, text,
};

pub(super) fn deployment_columns() -> Vec<Column> {
    let mut columns = vec![
        Column::name(),
        Column::new("Ready", "string", 0, "Number of the pod with ready state"),
        Column::new(
            "Up-to-date",
            "integer",
            0,
            "Total number of non-terminated pods targeted by this deployment that have the \
             desired template spec.",
        ),
        Column::new(
            "Available",
            "integer",
            0,
            "Total number of available pods (ready for at least minReadySeconds) targeted by \
             this deployment.",
        ),
        Column::age(),
    ];
    columns.extend(containers_images_selector(1));
    columns
}

/// Replicas a workload wants; 1 when unset, as the API server defaults it.
fn replicas(spec: &Value) -> i64 {
    spec["replicas"].as_i64().unwrap_or(1)
}

pub(super) fn deployment(object: &Value, now: Timestamp) -> Row {
    let status = &object["status"];
    let [containers, images] = containers_and_images(&object["spec"]["template"]);
    vec![
        name(object),
        json!(format!(
            "{}/{}",
            int(&status["readyReplicas"]),
            replicas(&object["spec"])
        )),
        json!(int(&status["updatedReplicas"])),
        json!(int(&status["availableReplicas"])),
        age(object, now),
        containers,
        images,
        json!(format_selector(&object["spec"]["selector"])),
    ]
    .into()
}

pub(super) fn replica_set_columns() -> Vec<Column> {
    let mut columns = vec![
        Column::name(),
        Column::new(
            "Desired",
            "integer",
            0,
            "Replicas is the number of desired pods.",
        ),
        Column::new(
            "Current",
            "integer",
            0,
            "Replicas is the most recently observed number of replicas.",
        ),
        Column::new(
            "Ready",
            "integer",
            0,
            "The number of pods targeted by this ReplicaSet with a Ready Condition.",
        ),
        Column::age(),
    ];
    columns.extend(containers_images_selector(1));
    columns
}

pub(super) fn replica_set(object: &Value, now: Timestamp) -> Row {
    let status = &object["status"];
    let [containers, images] = containers_and_images(&object["spec"]["template"]);
    vec![
        name(object),
        json!(replicas(&object["spec"])),
        json!(int(&status["replicas"])),
        json!(int(&status["readyReplicas"])),
        age(object, now),
        containers,
        images,
        json!(format_selector(&object["spec"]["selector"])),
    ]
    .into()
}

pub(super) fn stateful_set_columns() -> Vec<Column> {
    let [containers, images, _] = containers_images_selector(1);
    vec![
        Column::name(),
        Column::new("Ready", "string", 0, "Number of the pod with ready state"),
        Column::age(),
        containers,
        images,
    ]
}

pub(super) fn stateful_set(object: &Value, now: Timestamp) -> Row {
    let [containers, images] = containers_and_images(&object["spec"]["template"]);
    let ready = int(&object["status"]["readyReplicas"]);
    vec![
        name(object),
        json!(format!("{ready}/{}", replicas(&object["spec"]))),
        age(object, now),
        containers,
        images,
    ]
    .into()
}

pub(super) fn daemon_set_columns() -> Vec<Column> {
    let mut columns = vec![
        Column::name(),
        Column::new(
            "Desired",
            "integer",
            0,
            "The total number of nodes that should be running the daemon pod.",
        ),
        Column::new(
            "Current",
            "integer",
            0,
            "The number of nodes that are running at least 1 daemon pod and are supposed to run \
             the daemon pod.",
        ),
        Column::new(
            "Ready",
            "integer",
            0,
            "The number of nodes that should be running the daemon pod and have one or more of \
             the daemon pod running and ready.",
        ),
        Column::new(
            "Up-to-date",
            "integer",
            0,
            "The total number of nodes that are running updated daemon pod.",
        ),
        Column::new(
            "Available",
            "integer",
            0,
            "The number of nodes that should be running the daemon pod and have one or more of \
             the daemon pod running and available.",
        ),
        Column::new(
            "Node Selector",
            "string",
            0,
            "The node labels the pods must match to run on a node.",
        ),
        Column::age(),
    ];
    columns.extend(containers_images_selector(1));
    columns
}

pub(super) fn daemon_set(object: &Value, now: Timestamp) -> Row {
    let status = &object["status"];
    let template = &object["spec"]["template"];
    let [containers, images] = containers_and_images(template);
    vec![
        name(object),
        json!(int(&status["desiredNumberScheduled"])),
        json!(int(&status["currentNumberScheduled"])),
        json!(int(&status["numberReady"])),
        json!(int(&status["updatedNumberScheduled"])),
        json!(int(&status["numberAvailable"])),
        json!(format_labels(&template["spec"]["nodeSelector"])),
        age(object, now),
        containers,
        images,
        json!(format_selector(&object["spec"]["selector"])),
    ]
    .into()
}

pub(super) fn controller_revision_columns() -> Vec<Column> {
    vec![
        Column::name(),
        Column::new("Controller", "string", 0, "Controller of the object"),
        Column::new(
            "Revision",
            "integer",
            0,
            "Revision indicates the revision of the state represented by Data.",
        ),
        Column::age(),
    ]
}

pub(super) fn controller_revision(object: &Value, now: Timestamp) -> Row {
    let owners = object["metadata"]["ownerReferences"]
        .as_array()
        .into_iter()
        .flatten();
    let controller = owners.filter(|o| o["controller"] == true).map(|o| {
        let group = text(&o["apiVersion"])
            .rsplit_once('/')
            .map(|(g, _)| g)
            .unwrap_or("");
        let kind = if group.is_empty() {
            text(&o["kind"]).to_owned()
        } else {
            format!("{}.{group}", text(&o["kind"]))
        };
        format!("{}/{}", kind.to_lowercase(), text(&o["name"]))
    });
    let controller = controller
        .into_iter()
        .next()
        .unwrap_or_else(|| "<none>".to_owned());
    vec![
        name(object),
        json!(controller),
        json!(int(&object["revision"])),
        age(object, now),
    ]
    .into()
}

pub(super) fn job_columns() -> Vec<Column> {
    let mut columns = vec![
        Column::name(),
        Column::new("Status", "string", 0, "Status of the job."),
        Column::new(
            "Completions",
            "string",
            0,
            "The number of pods which reached phase Succeeded.",
        ),
        Column::new(
            "Duration",
            "string",
            0,
            "Time required to complete the job.",
        ),
        Column::age(),
    ];
    columns.extend(containers_images_selector(1));
    columns
}

/// A Job: its state from its conditions, completions out of those wanted, and how long it
/// ran (or has been running).
pub(super) fn job(object: &Value, now: Timestamp) -> Row {
    let spec = &object["spec"];
    let status = &object["status"];
    let succeeded = int(&status["succeeded"]);
    let completions = match (spec["completions"].as_i64(), spec["parallelism"].as_i64()) {
        (Some(completions), _) => format!("{succeeded}/{completions}"),
        (None, Some(parallelism)) if parallelism > 1 => format!("{succeeded}/1 of {parallelism}"),
        _ => format!("{succeeded}/1"),
    };
    let time = |field: &str| {
        status[field]
            .as_str()
            .and_then(|t| t.parse::<Timestamp>().ok())
    };
    let duration = match (time("startTime"), time("completionTime")) {
        (None, _) => String::new(),
        (Some(start), None) => human_duration(now.duration_since(start)),
        (Some(start), Some(end)) => human_duration(end.duration_since(start)),
    };
    let conditions = status["conditions"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let has = |kind: &str| {
        conditions
            .iter()
            .any(|c| c["type"] == kind && c["status"] == "True")
    };
    let state = if has("Complete") {
        "Complete"
    } else if has("Failed") {
        "Failed"
    } else if !object["metadata"]["deletionTimestamp"].is_null() {
        "Terminating"
    } else if has("Suspended") {
        "Suspended"
    } else if has("FailureTarget") {
        "FailureTarget"
    } else if has("SuccessCriteriaMet") {
        "SuccessCriteriaMet"
    } else {
        "Running"
    };
    let [containers, images] = containers_and_images(&spec["template"]);
    vec![
        name(object),
        json!(state),
        json!(completions),
        json!(duration),
        age(object, now),
        containers,
        images,
        json!(format_selector(&spec["selector"])),
    ]
    .into()
}

pub(super) fn budget_columns() -> Vec<Column> {
    vec![
        Column::name(),
        Column::new(
            "Min Available",
            "string",
            0,
            "The minimum number of pods that must be available.",
        ),
        Column::new(
            "Max Unavailable",
            "string",
            0,
            "The maximum number of pods that may be unavailable.",
        ),
        Column::new(
            "Allowed Disruptions",
            "integer",
            0,
            "Calculated number of pods that may be disrupted at this time.",
        ),
        Column::age(),
    ]
}

pub(super) fn budget(object: &Value, now: Timestamp) -> Row {
    let amount = |value: &Value| match value {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        _ => "N/A".to_owned(),
    };
    let spec = &object["spec"];
    vec![
        name(object),
        json!(amount(&spec["minAvailable"])),
        json!(amount(&spec["maxUnavailable"])),
        json!(int(&object["status"]["disruptionsAllowed"])),
        age(object, now),
    ]
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apiserver::printers::cells;

    #[test]
    fn workloads_show_replica_counts() {
        let selector = json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["b", "a"]}],
        });
        let deployment = json!({
            "metadata": {"name": "web"},
            "spec": {
                "replicas": 3,
                "selector": selector,
                "template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}},
            },
            "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2},
        });
        let shown = cells("apps", "Deployment", &deployment);
        assert_eq!(shown[1..4], [json!("2/3"), json!(3), json!(2)]);
        let wide = [
            json!("web"),
            json!("nginx:1.27"),
            json!("app=web,tier in (a,b)"),
        ];
        assert_eq!(shown[5..], wide);

        let daemon_set = json!({
            "metadata": {"name": "exporter"},
            "spec": {"template": {"spec": {}}},
            "status": {"desiredNumberScheduled": 5, "numberReady": 4},
        });
        let counts = [
            json!(5),
            json!(0),
            json!(4),
            json!(0),
            json!(0),
            json!("<none>"),
        ];
        assert_eq!(cells("apps", "DaemonSet", &daemon_set)[1..7], counts);

        let budget = json!({
            "metadata": {"name": "web-pdb"},
            "spec": {"minAvailable": 2},
            "status": {"disruptionsAllowed": 1},
        });
        let budget = cells("policy", "PodDisruptionBudget", &budget);
        assert_eq!(budget[1..4], [json!("2"), json!("N/A"), json!(1)]);

        let job = json!({
            "metadata": {"name": "update"},
            "spec": {},
            "status": {
                "succeeded": 1,
                "startTime": "2026-01-01T00:00:00Z",
                "completionTime": "2026-01-01T00:02:00Z",
                "conditions": [{"type": "Complete", "status": "True"}],
            },
        });
        let job = cells("batch", "Job", &job);
        assert_eq!(job[1..4], [json!("Complete"), json!("1/1"), json!("2m")]);
    }
}
