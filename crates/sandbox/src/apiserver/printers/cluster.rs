//! Cluster-scoped kinds and leases: Namespaces (STATUS is the phase), Nodes (STATUS from
//! the `Ready` condition and the cordon, ROLES from `node-role.kubernetes.io/*` labels,
//! VERSION from the kubelet) and Leases (their holder).

use jiff::Timestamp;
use serde_json::{Value, json};

use super::{Column, Row, age, name, or_none, text};

pub(super) fn namespace_columns() -> Vec<Column> {
    vec![
        Column::name(),
        Column::new("Status", "string", 0, "The status of the namespace"),
        Column::age(),
    ]
}

pub(super) fn namespace(object: &Value, now: Timestamp) -> Row {
    vec![
        name(object),
        object["status"]["phase"].clone(),
        age(object, now),
    ]
    .into()
}

pub(super) fn node_columns() -> Vec<Column> {
    vec![
        Column::name(),
        Column::new("Status", "string", 0, "The status of the node"),
        Column::new("Roles", "string", 0, "The roles of the node"),
        Column::age(),
        Column::new(
            "Version",
            "string",
            0,
            "Kubelet Version reported by the node.",
        ),
        Column::new(
            "Internal-IP",
            "string",
            1,
            "List of addresses reachable to the node.",
        ),
        Column::new(
            "External-IP",
            "string",
            1,
            "List of addresses reachable to the node.",
        ),
        Column::new(
            "OS-Image",
            "string",
            1,
            "OS Image reported by the node from /etc/os-release.",
        ),
        Column::new(
            "Kernel-Version",
            "string",
            1,
            "Kernel Version reported by the node from 'uname -r'.",
        ),
        Column::new(
            "Container-Runtime",
            "string",
            1,
            "ContainerRuntime Version reported by the node.",
        ),
    ]
}

/// A node: `Ready` or `NotReady` from its condition (`Unknown` without one), then
/// `SchedulingDisabled` when cordoned.
pub(super) fn node(object: &Value, now: Timestamp) -> Row {
    let ready = object["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "Ready");
    let mut status = vec![match ready {
        Some(c) if c["status"] == "True" => "Ready",
        Some(_) => "NotReady",
        None => "Unknown",
    }];
    if object["spec"]["unschedulable"] == true {
        status.push("SchedulingDisabled");
    }
    let mut roles: Vec<&str> = Vec::new();
    for (key, value) in object["metadata"]["labels"]
        .as_object()
        .into_iter()
        .flatten()
    {
        match key.strip_prefix("node-role.kubernetes.io/") {
            Some(role) if !role.is_empty() => roles.push(role),
            _ if key == "kubernetes.io/role" && !text(value).is_empty() => roles.push(text(value)),
            _ => {}
        }
    }
    roles.sort_unstable();
    roles.dedup();
    let info = &object["status"]["nodeInfo"];
    let address = |kind: &str| {
        let addresses = object["status"]["addresses"]
            .as_array()
            .into_iter()
            .flatten();
        addresses
            .filter(|a| a["type"] == kind)
            .map(|a| text(&a["address"]))
            .next()
            .unwrap_or("<none>")
            .to_owned()
    };
    let unknown = |value: &Value| {
        if text(value).is_empty() {
            "<unknown>".to_owned()
        } else {
            text(value).to_owned()
        }
    };
    vec![
        name(object),
        json!(status.join(",")),
        json!(or_none(&roles.join(","))),
        age(object, now),
        json!(text(&info["kubeletVersion"])),
        json!(address("InternalIP")),
        json!(address("ExternalIP")),
        json!(unknown(&info["osImage"])),
        json!(unknown(&info["kernelVersion"])),
        json!(unknown(&info["containerRuntimeVersion"])),
    ]
    .into()
}

pub(super) fn lease_columns() -> Vec<Column> {
    vec![
        Column::name(),
        Column::new("Holder", "string", 0, "The holder of the lease."),
        Column::age(),
    ]
}

pub(super) fn lease(object: &Value, now: Timestamp) -> Row {
    vec![
        name(object),
        json!(text(&object["spec"]["holderIdentity"])),
        age(object, now),
    ]
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apiserver::printers::{cells, now};

    #[test]
    fn nodes_show_readiness_cordon_roles_and_version() {
        let node = json!({
            "metadata": {
                "name": "general-1",
                "creationTimestamp": "2026-01-01T00:00:00Z",
                "labels": {
                    "node-role.kubernetes.io/worker": "",
                    "node-role.kubernetes.io/infra": "",
                    "pool": "general",
                },
            },
            "spec": {"unschedulable": true},
            "status": {
                "conditions": [{"type": "Ready", "status": "True"}],
                "nodeInfo": {"kubeletVersion": "v1.33.0"},
                "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}],
            },
        });
        let cells = cells("", "Node", &node);
        assert_eq!(
            cells[..5],
            [
                json!("general-1"),
                json!("Ready,SchedulingDisabled"),
                json!("infra,worker"),
                json!("60m"),
                json!("v1.33.0")
            ]
        );
        assert_eq!(
            cells[5..8],
            [json!("10.0.0.1"), json!("<none>"), json!("<unknown>")]
        );
        let conditions = json!([{"type": "Ready", "status": "False"}]);
        let bare = json!({"metadata": {"name": "n"}, "status": {"conditions": conditions}});
        let cells = super::node(&bare, now()).cells;
        assert_eq!(
            cells[1..4],
            [json!("NotReady"), json!("<none>"), json!("<unknown>")]
        );
    }
}
