//! The columns of the built-in kinds, computed from the objects as the API server's
//! printers compute them: a node's STATUS from its `Ready` condition and cordon, its
//! ROLES from `node-role.kubernetes.io/*` labels; a pod's READY, STATUS and RESTARTS from
//! its container statuses; workloads' replica counts from their status; and so on. The
//! columns of priority 1 are those kubectl adds with `-o wide`.

mod cluster;
mod event;
mod pod;
mod services;
mod workloads;

use jiff::Timestamp;
use serde_json::{Value, json};

use super::{
    events,
    table::{Column, Printer, Row, human_duration, since},
};

/// The cells of one object of a kind at an instant.
type Cells = fn(&Value, Timestamp) -> Row;

/// The printer of a built-in kind, if it has one of its own.
pub fn builtin(group: &str, kind: &str) -> Option<Printer> {
    let (columns, row): (Vec<Column>, Cells) = match (group, kind) {
        ("", "Namespace") => (cluster::namespace_columns(), cluster::namespace),
        ("", "Node") => (cluster::node_columns(), cluster::node),
        ("", "Pod") => (pod::columns(), pod::row),
        ("", "Event") => (event::columns(), event::row),
        ("events.k8s.io", "Event") => (event::columns(), |e, now| {
            event::row(&events::to_core(e), now)
        }),
        ("", "ConfigMap") => (services::config_map_columns(), services::config_map),
        ("", "Secret") => (services::secret_columns(), services::secret),
        ("", "ServiceAccount") => (
            services::service_account_columns(),
            services::service_account,
        ),
        ("", "Service") => (services::service_columns(), services::service),
        ("apps", "Deployment") => (workloads::deployment_columns(), workloads::deployment),
        ("apps", "ReplicaSet") => (workloads::replica_set_columns(), workloads::replica_set),
        ("apps", "StatefulSet") => (workloads::stateful_set_columns(), workloads::stateful_set),
        ("apps", "DaemonSet") => (workloads::daemon_set_columns(), workloads::daemon_set),
        ("apps", "ControllerRevision") => (
            workloads::controller_revision_columns(),
            workloads::controller_revision,
        ),
        ("batch", "Job") => (workloads::job_columns(), workloads::job),
        ("policy", "PodDisruptionBudget") => (workloads::budget_columns(), workloads::budget),
        ("coordination.k8s.io", "Lease") => (cluster::lease_columns(), cluster::lease),
        ("apiextensions.k8s.io", "CustomResourceDefinition") => {
            (cluster::crd_columns(), cluster::crd)
        }
        _ => return None,
    };
    Some(Printer {
        columns,
        row: Box::new(row),
    })
}

fn name(object: &Value) -> Value {
    object["metadata"]["name"].clone()
}

fn age(object: &Value, now: Timestamp) -> Value {
    json!(since(&object["metadata"]["creationTimestamp"], now))
}

fn int(value: &Value) -> i64 {
    value.as_i64().unwrap_or(0)
}

fn text(value: &Value) -> &str {
    value.as_str().unwrap_or("")
}

/// `<none>` for an empty cell, as the printers write it.
fn or_none(text: &str) -> String {
    if text.is_empty() {
        "<none>".to_owned()
    } else {
        text.to_owned()
    }
}

fn count(value: &Value) -> usize {
    match value {
        Value::Object(map) => map.len(),
        Value::Array(items) => items.len(),
        _ => 0,
    }
}

/// Labels as `a=b,c=d` in key order, or `<none>`.
fn format_labels(labels: &Value) -> String {
    let Some(map) = labels.as_object().filter(|m| !m.is_empty()) else {
        return "<none>".to_owned();
    };
    let mut pairs: Vec<String> = map
        .iter()
        .map(|(k, v)| format!("{k}={}", text(v)))
        .collect();
    pairs.sort();
    pairs.join(",")
}

/// A label selector (`matchLabels`, `matchExpressions`) as text, requirements in key
/// order: `app=web,tier in (a,b),!legacy`.
pub(super) fn format_selector(selector: &Value) -> String {
    let mut requirements: Vec<(String, String)> = Vec::new();
    if let Some(labels) = selector["matchLabels"].as_object() {
        requirements.extend(
            labels
                .iter()
                .map(|(k, v)| (k.clone(), format!("{k}={}", text(v)))),
        );
    }
    for expression in selector["matchExpressions"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let key = text(&expression["key"]);
        let mut values: Vec<&str> = expression["values"]
            .as_array()
            .into_iter()
            .flatten()
            .map(text)
            .collect();
        values.sort_unstable();
        let requirement = match text(&expression["operator"]) {
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" => key.to_owned(),
            "DoesNotExist" => format!("!{key}"),
            _ => return "<invalid>".to_owned(),
        };
        requirements.push((key.to_owned(), requirement));
    }
    requirements.sort();
    requirements
        .into_iter()
        .map(|(_, r)| r)
        .collect::<Vec<_>>()
        .join(",")
}

/// The CONTAINERS and IMAGES cells of a pod template.
fn containers_and_images(template: &Value) -> [Value; 2] {
    let containers = template["spec"]["containers"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let names: Vec<&str> = containers.iter().map(|c| text(&c["name"])).collect();
    let images: Vec<&str> = containers.iter().map(|c| text(&c["image"])).collect();
    [json!(names.join(",")), json!(images.join(","))]
}

fn containers_images_selector(priority: i32) -> [Column; 3] {
    [
        Column::new(
            "Containers",
            "string",
            priority,
            "Names of each container in the template.",
        ),
        Column::new(
            "Images",
            "string",
            priority,
            "Images referenced by each container in the template.",
        ),
        Column::new(
            "Selector",
            "string",
            priority,
            "The label selector of the pods.",
        ),
    ]
}

#[cfg(test)]
fn now() -> Timestamp {
    "2026-01-01T01:00:00Z".parse().unwrap()
}

/// The cells of an object of a built-in kind, one per column.
#[cfg(test)]
fn cells(group: &str, kind: &str, object: &Value) -> Vec<Value> {
    let printer = builtin(group, kind).unwrap();
    let row = (printer.row)(object, now());
    assert_eq!(
        row.cells.len(),
        printer.columns.len(),
        "{kind}: one cell per column"
    );
    row.cells
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_print_requirements_in_key_order() {
        let selector = json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["b", "a"]},
                {"key": "legacy", "operator": "DoesNotExist"},
            ],
        });
        assert_eq!(format_selector(&selector), "app=web,!legacy,tier in (a,b)");
        assert_eq!(format_selector(&json!({})), "");
        assert_eq!(format_labels(&json!({"b": "2", "a": "1"})), "a=1,b=2");
        assert_eq!(format_labels(&json!({})), "<none>");
    }
}
