//! Services (type, cluster and external addresses, ports), ConfigMaps, Secrets and
//! ServiceAccounts (how many entries they hold).

use jiff::Timestamp;
use serde_json::{Value, json};

use super::{Column, Row, age, count, format_labels, int, name, or_none, text};

pub(super) fn config_map_columns() -> Vec<Column> {
    vec![
        Column::name(),
        Column::new(
            "Data",
            "integer",
            0,
            "The number of keys of data and binaryData.",
        ),
        Column::age(),
    ]
}

pub(super) fn config_map(object: &Value, now: Timestamp) -> Row {
    let data = count(&object["data"]) + count(&object["binaryData"]);
    vec![name(object), json!(data), age(object, now)].into()
}

pub(super) fn secret_columns() -> Vec<Column> {
    vec![
        Column::name(),
        Column::new(
            "Type",
            "string",
            0,
            "Used to facilitate programmatic handling of secret data.",
        ),
        Column::new("Data", "integer", 0, "The number of keys of data."),
        Column::age(),
    ]
}

pub(super) fn secret(object: &Value, now: Timestamp) -> Row {
    // `Opaque` is what the API server defaults the type to.
    let kind = match text(&object["type"]) {
        "" => "Opaque",
        kind => kind,
    };
    let data = count(&object["data"]) + count(&object["stringData"]);
    vec![name(object), json!(kind), json!(data), age(object, now)].into()
}

pub(super) fn service_account_columns() -> Vec<Column> {
    vec![
        Column::name(),
        Column::new(
            "Secrets",
            "integer",
            0,
            "The number of secrets of the service account.",
        ),
        Column::age(),
    ]
}

pub(super) fn service_account(object: &Value, now: Timestamp) -> Row {
    vec![
        name(object),
        json!(count(&object["secrets"])),
        age(object, now),
    ]
    .into()
}

pub(super) fn service_columns() -> Vec<Column> {
    vec![
        Column::name(),
        Column::new(
            "Type",
            "string",
            0,
            "How the Service is exposed: ClusterIP, NodePort, LoadBalancer or ExternalName.",
        ),
        Column::new(
            "Cluster-IP",
            "string",
            0,
            "The IP address of the service inside the cluster.",
        ),
        Column::new(
            "External-IP",
            "string",
            0,
            "The IP addresses the service is reachable at from outside the cluster.",
        ),
        Column::new("Port(s)", "string", 0, "The ports the service exposes."),
        Column::age(),
        Column::new(
            "Selector",
            "string",
            1,
            "The labels of the pods the service routes to.",
        ),
    ]
}

pub(super) fn service(object: &Value, now: Timestamp) -> Row {
    let spec = &object["spec"];
    // `ClusterIP` is what the API server defaults the type to.
    let kind = match text(&spec["type"]) {
        "" => "ClusterIP",
        kind => kind,
    };
    let cluster_ip = spec["clusterIPs"][0]
        .as_str()
        .or_else(|| spec["clusterIP"].as_str())
        .unwrap_or("<none>");
    let external: Vec<&str> = spec["externalIPs"]
        .as_array()
        .into_iter()
        .flatten()
        .map(text)
        .collect();
    let external = match kind {
        "ExternalName" => text(&spec["externalName"]).to_owned(),
        "LoadBalancer" => {
            let ingress = object["status"]["loadBalancer"]["ingress"]
                .as_array()
                .into_iter()
                .flatten();
            let mut all: Vec<&str> = ingress
                .map(|i| {
                    i["ip"]
                        .as_str()
                        .or_else(|| i["hostname"].as_str())
                        .unwrap_or("")
                })
                .collect();
            all.extend(&external);
            if all.is_empty() {
                "<pending>".to_owned()
            } else {
                all.join(",")
            }
        }
        _ => or_none(&external.join(",")),
    };
    let ports: Vec<String> = spec["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let protocol = match text(&p["protocol"]) {
                "" => "TCP",
                protocol => protocol,
            };
            match int(&p["nodePort"]) {
                0 => format!("{}/{protocol}", int(&p["port"])),
                node_port => format!("{}:{node_port}/{protocol}", int(&p["port"])),
            }
        })
        .collect();
    vec![
        name(object),
        json!(kind),
        json!(cluster_ip),
        json!(external),
        json!(or_none(&ports.join(","))),
        age(object, now),
        json!(format_labels(&spec["selector"])),
    ]
    .into()
}
