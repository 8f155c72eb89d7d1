//! Nodes: their status, cordons and taints, scheduling constraints, updater Jobs, reboots
//! and the node faults.

use serde_json::{Value, json};

use super::{Harness, condition, deployment, name, node_of, running_ready};
use crate::cluster::{ClusterFaults, Timings};

fn taint_keys(node: &crate::json::Json) -> Vec<String> {
    node["spec"]["taints"]
        .as_array()
        .map(|t| {
            t.iter()
                .filter_map(|t| t["key"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// An updater Job pinned to `node`, as the operator makes it.
fn updater(
    name: &str,
    node: &str,
    action: &str,
    version: &str,
    previous: &str,
    reboot: bool,
) -> Value {
    let env = json!([
        {"name": "PATCHPILOT_ACTION", "value": action},
        {"name": "PATCHPILOT_VERSION", "value": version},
        {"name": "PATCHPILOT_PREVIOUS_VERSION", "value": previous},
        {"name": "PATCHPILOT_NODE", "value": node},
    ]);
    let annotations = if reboot {
        json!({"sandbox.patchpilot.dev/reboot": "true"})
    } else {
        json!({})
    };
    json!({
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
        "spec": {"backoffLimit": 0, "template": {
            "metadata": {"annotations": annotations},
            "spec": {
                "nodeName": node,
                "restartPolicy": "Never",
                "tolerations": [{
                    "key": "node.kubernetes.io/unschedulable",
                    "operator": "Exists",
                    "effect": "NoSchedule",
                }],
                "containers": [{"name": "updater", "image": "updater:1", "env": env}],
            },
        }},
    })
}

#[tokio::test(start_paused = true)]
async fn nodes_get_a_status_and_cordons_get_a_taint() {
    let h = Harness::start();
    h.nodes(&["n1", "n2"]);
    h.wait(1).await;
    let node = h.get("nodes", "n1").unwrap();
    assert_eq!(condition(&node, "Ready").unwrap()["reason"], "KubeletReady");
    for kind in ["MemoryPressure", "DiskPressure", "PIDPressure"] {
        assert_eq!(condition(&node, kind).unwrap()["status"], "False", "{kind}");
    }
    let info = &node["status"]["nodeInfo"];
    assert_eq!(
        (
            info["osImage"].to_value(),
            info["kubeletVersion"].to_value()
        ),
        (json!("Sandbox Linux"), json!("v1.32.0"))
    );
    assert!(info["bootID"].is_string() && node["status"]["allocatable"]["pods"].is_string());
    assert!(taint_keys(&node).is_empty());
    h.edit("nodes", "n1", |n| n["spec"]["unschedulable"] = json!(true));
    h.wait(1).await;
    assert_eq!(
        taint_keys(&h.get("nodes", "n1").unwrap()),
        ["node.kubernetes.io/unschedulable"]
    );
    h.create("deployments", deployment("web", 4, "web:1"));
    h.wait(20).await;
    let pods = h.pods_of("web-");
    assert!(pods.iter().all(|p| node_of(p) == "n2" && running_ready(p)));
    h.edit("nodes", "n1", |n| n["spec"]["unschedulable"] = json!(false));
    h.wait(1).await;
    assert!(taint_keys(&h.get("nodes", "n1").unwrap()).is_empty());
}

#[tokio::test(start_paused = true)]
async fn pods_no_node_fits_wait_and_are_placed_when_one_does() {
    let h = Harness::start();
    h.node("n1", json!({"zone": "a"}));
    let mut web = deployment("web", 1, "web:1");
    web["spec"]["template"]["spec"]["nodeSelector"] = json!({"zone": "b"});
    h.create("deployments", web);
    h.wait(10).await;
    let pod = h.pods_of("web-").pop().unwrap();
    let scheduled = condition(&pod, "PodScheduled").unwrap();
    assert_eq!(
        (
            scheduled["status"].to_value(),
            scheduled["reason"].to_value()
        ),
        (json!("False"), json!("Unschedulable"))
    );
    assert!(scheduled["message"].as_str().unwrap().starts_with(
        "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector."
    ));
    assert_eq!(pod["status"]["phase"], "Pending");
    h.node("n2", json!({"zone": "b"}));
    h.wait(10).await;
    let pod = h.pods_of("web-").pop().unwrap();
    assert_eq!(node_of(&pod), "n2");
    assert!(running_ready(&pod));
}

#[tokio::test(start_paused = true)]
async fn an_updater_records_the_patch_and_reboots_the_node() {
    let h = Harness::start();
    h.nodes(&["n1"]);
    h.create("deployments", deployment("web", 1, "web:1"));
    h.wait(10).await;
    let boot = h.get("nodes", "n1").unwrap()["status"]["nodeInfo"]["bootID"].to_value();
    h.edit("nodes", "n1", |n| n["spec"]["unschedulable"] = json!(true));
    h.create(
        "jobs",
        updater("patch-n1", "n1", "apply", "2026-11", "", true),
    );
    h.wait(30).await;
    let pod = h.pods_of("patch-n1-").pop().unwrap();
    assert_eq!(
        (node_of(&pod), pod["status"]["phase"].to_value()),
        ("n1", json!("Running"))
    );
    assert_eq!(
        pod["metadata"]["labels"]["batch.kubernetes.io/job-name"],
        "patch-n1"
    );
    assert_eq!(pod["metadata"]["labels"]["job-name"], "patch-n1");
    h.wait(100).await;
    let job = h.get("jobs", "patch-n1").unwrap();
    assert_eq!(job["status"]["succeeded"], 1);
    assert_eq!(condition(&job, "Complete").unwrap()["status"], "True");
    assert!(job["status"]["completionTime"].is_string() && job["status"]["startTime"].is_string());
    let node = h.get("nodes", "n1").unwrap();
    assert_eq!(
        node["status"]["nodeInfo"]["osImage"],
        "Sandbox Linux (2026-11)"
    );
    assert_eq!(condition(&node, "Ready").unwrap()["status"], "False");
    assert_eq!(
        condition(&node, "Ready").unwrap()["reason"],
        "KubeletNotReady"
    );
    assert!(!running_ready(&h.pods_of("web-")[0]));
    h.wait(90).await;
    let node = h.get("nodes", "n1").unwrap();
    assert_eq!(condition(&node, "Ready").unwrap()["status"], "True");
    assert_ne!(node["status"]["nodeInfo"]["bootID"], boot);
    let web = h.pods_of("web-").pop().unwrap();
    assert_eq!(web["status"]["containerStatuses"][0]["restartCount"], 1);
    assert!(running_ready(&web));
}

#[tokio::test(start_paused = true)]
async fn updaters_fail_where_the_faults_say_and_nodes_can_turn_unhealthy() {
    let faults = ClusterFaults {
        updater_failures: vec![("Node/n1".into(), Some("apply".into()))],
        unhealthy_after_patch: vec!["Node/n2".into()],
        ..ClusterFaults::default()
    };
    let h = Harness::with(Timings::default(), faults);
    h.nodes(&["n1", "n2"]);
    h.create("jobs", updater("apply-n1", "n1", "apply", "v2", "", false));
    h.create("jobs", updater("apply-n2", "n2", "apply", "v2", "", false));
    h.wait(130).await;
    let failed = h.get("jobs", "apply-n1").unwrap();
    assert_eq!(failed["status"]["failed"], 1);
    assert_eq!(
        condition(&failed, "Failed").unwrap()["reason"],
        "BackoffLimitExceeded"
    );
    assert_eq!(
        condition(&failed, "FailureTarget").unwrap()["status"],
        "True"
    );
    let pod = h.pods_of("apply-n1-").pop().unwrap();
    assert_eq!(pod["status"]["phase"], "Failed");
    assert_eq!(
        pod["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"],
        1
    );
    assert_eq!(
        h.get("nodes", "n1").unwrap()["status"]["nodeInfo"]["osImage"],
        "Sandbox Linux"
    );
    let n2 = h.get("nodes", "n2").unwrap();
    assert_eq!(n2["status"]["nodeInfo"]["osImage"], "Sandbox Linux (v2)");
    assert_eq!(condition(&n2, "MemoryPressure").unwrap()["status"], "True");
    assert!(taint_keys(&n2).contains(&"node.kubernetes.io/memory-pressure".to_owned()));
    h.create(
        "jobs",
        updater("rollback-n1", "n1", "rollback", "v2", "v1", false),
    );
    h.create(
        "jobs",
        updater("rollback-n2", "n2", "rollback", "v2", "", false),
    );
    h.wait(130).await;
    assert_eq!(
        condition(&h.get("jobs", "rollback-n1").unwrap(), "Complete").unwrap()["status"],
        "True"
    );
    assert_eq!(
        h.get("nodes", "n1").unwrap()["status"]["nodeInfo"]["osImage"],
        "Sandbox Linux (v1)"
    );
    let n2 = h.get("nodes", "n2").unwrap();
    assert_eq!(n2["status"]["nodeInfo"]["osImage"], "Sandbox Linux");
    assert_eq!(condition(&n2, "MemoryPressure").unwrap()["status"], "False");
    assert!(taint_keys(&n2).is_empty());
    assert_eq!(name(&n2), "n2");
}

#[tokio::test(start_paused = true)]
async fn with_updaters_reboot_every_updater_reboots_its_node() {
    let faults = ClusterFaults {
        updaters_reboot: true,
        ..ClusterFaults::default()
    };
    let h = Harness::with(Timings::default(), faults);
    h.nodes(&["n1"]);
    h.wait(10).await;
    let boot = h.get("nodes", "n1").unwrap()["status"]["nodeInfo"]["bootID"].to_value();
    h.create(
        "jobs",
        updater("patch-n1", "n1", "apply", "2026-11", "", false),
    );
    h.wait(130).await;
    let node = h.get("nodes", "n1").unwrap();
    assert_eq!(condition(&node, "Ready").unwrap()["status"], "False");
    h.wait(90).await;
    let node = h.get("nodes", "n1").unwrap();
    assert_eq!(condition(&node, "Ready").unwrap()["status"], "True");
    assert_ne!(node["status"]["nodeInfo"]["bootID"], boot);
}
