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

pub(super) fn crd_columns() -> Vec<Column> {
    vec![
        Column::name(),
        Column::new("Scope", "string", 0, "Cluster/Namespaced"),
        Column::new("Versions", "string", 0, "Served versions"),
        Column::new(
            "Created At",
            "date",
            0,
            "CreationTimestamp is when the server created the object.",
        ),
        Column::new("Group", "string", 1, "API group"),
        Column::new("Kind", "string", 1, "CustomResource kind"),
        Column::new("ShortNames", "string", 1, "Short names"),
        Column::new("Established", "boolean", 1, "Established status"),
    ]
}

/// A CustomResourceDefinition as the API server of v1.37 prints it: its served versions, the
/// stored one marked `(storage)`.
pub(super) fn crd(object: &Value, _now: Timestamp) -> Row {
    let spec = &object["spec"];
    let versions: Vec<String> = spec["versions"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter(|v| v["served"] == true)
        .map(|v| {
            let name = text(&v["name"]);
            if v["storage"] == true {
                format!("{name}(storage)")
            } else {
                name.to_owned()
            }
        })
        .collect();
    let short_names: Vec<&str> = spec["names"]["shortNames"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(text)
        .collect();
    let established = object["status"]["conditions"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .any(|c| c["type"] == "Established" && c["status"] == "True");
    vec![
        name(object),
        json!(text(&spec["scope"])),
        json!(versions.join(",")),
        object["metadata"]["creationTimestamp"].clone(),
        json!(text(&spec["group"])),
        json!(text(&spec["names"]["kind"])),
        json!(short_names.join(",")),
        json!(established),
    ]
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apiserver::printers::{cells, now};

    #[test]
    fn crds_show_scope_and_served_versions() {
        let crd = json!({
            "metadata": {"name": "widgets.example.com", "creationTimestamp": "2026-11-27T23:00:00Z"},
            "spec": {"group": "example.com", "scope": "Namespaced",
                "names": {"kind": "Widget", "shortNames": ["wdg", "wd"]},
                "versions": [{"name": "v1", "served": true, "storage": true},
                    {"name": "v1beta1", "served": true, "storage": false},
                    {"name": "v1alpha1", "served": false, "storage": false}]},
            "status": {"conditions": [{"type": "Established", "status": "True"}]},
        });
        assert_eq!(
            cells("apiextensions.k8s.io", "CustomResourceDefinition", &crd),
            [
                json!("widgets.example.com"),
                json!("Namespaced"),
                json!("v1(storage),v1beta1"),
                json!("2026-11-27T23:00:00Z"),
                json!("example.com"),
                json!("Widget"),
                json!("wdg,wd"),
                json!(true)
            ]
        );
    }

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
