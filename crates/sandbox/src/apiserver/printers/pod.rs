//! Pods: READY as ready out of all containers; STATUS the phase, or why a container waits
//! or ended, `Init:…` while init containers run, `Terminating` once deleted; RESTARTS with
//! how long ago the last one was; IP, NODE and readiness gates with `-o wide`.

use jiff::Timestamp;
use serde_json::{Value, json};

use super::{Column, Row, age, count, human_duration, int, name, or_none, text};

pub(super) fn columns() -> Vec<Column> {
    vec![
        Column::name(),
        Column::new(
            "Ready",
            "string",
            0,
            "The aggregate readiness state of this pod for accepting traffic.",
        ),
        Column::new(
            "Status",
            "string",
            0,
            "The aggregate status of the containers in this pod.",
        ),
        Column::new(
            "Restarts",
            "string",
            0,
            "The number of times the containers in this pod have been restarted and when the \
             last container in this pod has restarted.",
        ),
        Column::age(),
        Column::new(
            "IP",
            "string",
            1,
            "IP address allocated to the pod. Routable at least within the cluster.",
        ),
        Column::new(
            "Node",
            "string",
            1,
            "NodeName is the name of the node the pod is bound to.",
        ),
        Column::new(
            "Nominated Node",
            "string",
            1,
            "The node the scheduler nominated for the pod when it preempted others.",
        ),
        Column::new(
            "Readiness Gates",
            "string",
            1,
            "Conditions of other components the pod's readiness waits for.",
        ),
    ]
}

/// The pod printer: READY as ready/total containers; STATUS the phase, or the reason a
/// container waits or ended, `Init:…` while init containers run, `Terminating` once
/// deleted; RESTARTS with how long ago the last one was.
pub(super) fn row(object: &Value, now: Timestamp) -> Row {
    let spec = &object["spec"];
    let status = &object["status"];
    let phase = text(&status["phase"]);
    let mut reason = match text(&status["reason"]) {
        "" => phase.to_owned(),
        reason => reason.to_owned(),
    };
    let conditions = status["conditions"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    if conditions
        .iter()
        .any(|c| c["type"] == "PodScheduled" && c["reason"] == "SchedulingGated")
    {
        reason = "SchedulingGated".to_owned();
    }
    let init_specs = spec["initContainers"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let sidecar = |name: &str| {
        init_specs
            .iter()
            .any(|c| c["name"] == name && c["restartPolicy"] == "Always")
    };
    let total = count(&spec["containers"])
        + init_specs
            .iter()
            .filter(|c| c["restartPolicy"] == "Always")
            .count();
    let mut ready = 0;
    let mut restarts = 0;
    let mut last_restart: Option<Timestamp> = None;
    let mut sidecar_restarts = 0;
    let mut last_sidecar_restart: Option<Timestamp> = None;
    let terminated_at = |c: &Value| {
        c["lastState"]["terminated"]["finishedAt"]
            .as_str()
            .and_then(|t| t.parse::<Timestamp>().ok())
    };
    let mut initializing = false;
    let init_statuses = status["initContainerStatuses"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    for (i, container) in init_statuses.iter().enumerate() {
        restarts += int(&container["restartCount"]);
        last_restart = last_restart.max(terminated_at(container));
        let is_sidecar = sidecar(text(&container["name"]));
        if is_sidecar {
            sidecar_restarts += int(&container["restartCount"]);
            last_sidecar_restart = last_sidecar_restart.max(terminated_at(container));
        }
        let state = &container["state"];
        let terminated = &state["terminated"];
        let waiting_reason = text(&state["waiting"]["reason"]);
        if terminated.is_object() && int(&terminated["exitCode"]) == 0 {
            continue;
        }
        if is_sidecar && container["started"] == true {
            if container["ready"] == true {
                ready += 1;
            }
            continue;
        }
        reason = if terminated.is_object() {
            match text(&terminated["reason"]) {
                "" if int(&terminated["signal"]) != 0 => {
                    format!("Init:Signal:{}", int(&terminated["signal"]))
                }
                "" => format!("Init:ExitCode:{}", int(&terminated["exitCode"])),
                why => format!("Init:{why}"),
            }
        } else if !waiting_reason.is_empty() && waiting_reason != "PodInitializing" {
            format!("Init:{waiting_reason}")
        } else {
            format!("Init:{i}/{}", init_specs.len())
        };
        initializing = true;
        break;
    }
    let initialized = conditions
        .iter()
        .any(|c| c["type"] == "Initialized" && c["status"] == "True");
    if !initializing || initialized {
        restarts = sidecar_restarts;
        last_restart = last_sidecar_restart;
        let mut running = false;
        let statuses = status["containerStatuses"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        for container in statuses.iter().rev() {
            restarts += int(&container["restartCount"]);
            last_restart = last_restart.max(terminated_at(container));
            let state = &container["state"];
            let waiting = text(&state["waiting"]["reason"]);
            let terminated = &state["terminated"];
            if !waiting.is_empty() {
                reason = waiting.to_owned();
            } else if terminated.is_object() && !text(&terminated["reason"]).is_empty() {
                reason = text(&terminated["reason"]).to_owned();
            } else if terminated.is_object() {
                reason = match int(&terminated["signal"]) {
                    0 => format!("ExitCode:{}", int(&terminated["exitCode"])),
                    signal => format!("Signal:{signal}"),
                };
            } else if container["ready"] == true && state["running"].is_object() {
                running = true;
                ready += 1;
            }
        }
        if reason == "Completed" && running {
            let pod_ready = conditions
                .iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True");
            reason = if pod_ready { "Running" } else { "NotReady" }.to_owned();
        }
    }
    let deleted = !object["metadata"]["deletionTimestamp"].is_null();
    if deleted && text(&status["reason"]) == "NodeLost" {
        reason = "Unknown".to_owned();
    } else if deleted && !matches!(phase, "Succeeded" | "Failed") {
        reason = "Terminating".to_owned();
    }
    let restarts = match last_restart {
        Some(at) if restarts != 0 => format!(
            "{restarts} ({} ago)",
            human_duration(now.duration_since(at))
        ),
        _ => restarts.to_string(),
    };
    let ip = status["podIPs"][0]["ip"]
        .as_str()
        .or_else(|| status["podIP"].as_str())
        .unwrap_or("");
    let gates = spec["readinessGates"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let gates = if gates.is_empty() {
        "<none>".to_owned()
    } else {
        let passed = gates
            .iter()
            .filter(|g| {
                let wanted = &g["conditionType"];
                conditions
                    .iter()
                    .find(|c| c["type"] == *wanted)
                    .is_some_and(|c| c["status"] == "True")
            })
            .count();
        format!("{passed}/{}", gates.len())
    };
    let cells = vec![
        name(object),
        json!(format!("{ready}/{total}")),
        json!(reason),
        json!(restarts),
        age(object, now),
        json!(or_none(ip)),
        json!(or_none(text(&spec["nodeName"]))),
        json!(or_none(text(&status["nominatedNodeName"]))),
        json!(gates),
    ];
    let completed = |reason: &str, message: &str| {
        vec![json!({"type": "Completed", "status": "True", "reason": reason, "message": message})]
    };
    let conditions = match phase {
        "Succeeded" => completed("Succeeded", "The pod has completed successfully."),
        "Failed" => completed("Failed", "The pod failed."),
        _ => Vec::new(),
    };
    Row { cells, conditions }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apiserver::printers::{cells, now};

    #[test]
    fn pods_show_ready_containers_status_and_restarts() {
        let pod = json!({
            "metadata": {"name": "web-1", "creationTimestamp": "2026-01-01T00:55:00Z"},
            "spec": {"nodeName": "general-1", "containers": [{"name": "a"}, {"name": "b"}]},
            "status": {
                "phase": "Running",
                "podIP": "10.1.0.5",
                "containerStatuses": [
                    {"name": "a", "ready": true, "restartCount": 2, "state": {"running": {}},
                     "lastState": {"terminated": {"finishedAt": "2026-01-01T00:58:00Z"}}},
                    {"name": "b", "ready": false, "restartCount": 0,
                     "state": {"waiting": {"reason": "CrashLoopBackOff"}}},
                ],
            },
        });
        let cells = cells("", "Pod", &pod);
        assert_eq!(
            cells[..7],
            [
                json!("web-1"),
                json!("1/2"),
                json!("CrashLoopBackOff"),
                json!("2 (2m ago)"),
                json!("5m"),
                json!("10.1.0.5"),
                json!("general-1")
            ]
        );
        let mut deleted = pod;
        deleted["metadata"]["deletionTimestamp"] = json!("2026-01-01T01:00:30Z");
        assert_eq!(row(&deleted, now()).cells[2], json!("Terminating"));
        let pending = json!({
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "a"}]},
            "status": {"phase": "Pending"},
        });
        assert_eq!(
            row(&pending, now()).cells[1..4],
            [json!("0/1"), json!("Pending"), json!("0")]
        );
        let done = json!({"metadata": {"name": "p"}, "spec": {}, "status": {"phase": "Succeeded"}});
        assert_eq!(row(&done, now()).conditions[0]["type"], "Completed");
    }
}
