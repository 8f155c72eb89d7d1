//! What kubectl does to nodes and workloads through the API: cordon (and the taint the node
//! lifecycle controller adds for it), drain through the Eviction API under a budget,
//! `rollout status` and `wait` on a Deployment's conditions, `set image`, the scale
//! subresource, and deletion with the garbage collector taking the pods.

use serde_json::Value;

use super::{Kubectl, Table, text};

/// `kubectl cordon` marks the node unschedulable and the cluster adds the unschedulable
/// taint; `kubectl get` shows `SchedulingDisabled`; `uncordon` undoes both.
pub fn cordon_and_uncordon_a_node(k: &impl Kubectl) {
    let node = "general-2";
    k.restore_node_at_end(node);
    assert!(
        k.ok(&["cordon", node])
            .contains(&format!("node/{node} cordoned"))
    );
    let cordoned = k.eventually(20, "the unschedulable taint", || {
        let node = k.json(&["get", "node", node]);
        unschedulable_taint(&node).then_some(node)
    });
    assert_eq!(cordoned["spec"]["unschedulable"], true);
    let nodes = Table::parse(&k.ok(&["get", "node", node]));
    assert_eq!(nodes.row(node)["STATUS"], "Ready,SchedulingDisabled");
    let again = k.ok(&["cordon", node]);
    assert!(
        again.contains(&format!("node/{node} already cordoned")),
        "{again}"
    );
    assert!(
        k.ok(&["uncordon", node])
            .contains(&format!("node/{node} uncordoned"))
    );
    k.eventually(20, "the taint removed", || {
        let node = k.json(&["get", "node", node]);
        (node["spec"]["unschedulable"] != true && !unschedulable_taint(&node)).then_some(())
    });
    assert_eq!(
        Table::parse(&k.ok(&["get", "node", node])).row(node)["STATUS"],
        "Ready"
    );
}

/// `kubectl drain` evicts through the Eviction API: a budget that allows no disruption makes
/// it fail after its timeout with the API server's refusal, leaving the node cordoned; once
/// a third replica runs elsewhere, the drain goes through and the pods run on other nodes.
pub fn drain_waits_for_the_disruption_budget(k: &impl Kubectl) {
    k.apply_fixture("web.yaml");
    k.wait_ready("web", 3);
    // Two replicas and a budget of two: no web pod may go.
    k.ok_here(&["scale", "deployment/web", "--replicas=2"]);
    let pods = k.wait_ready("web", 2);
    k.eventually(30, "the budget allowing no disruption", || {
        let budget = k.json(&["get", "pdb", "web-pdb", "-n", k.namespace()]);
        (budget["status"]["currentHealthy"] == 2 && budget["status"]["disruptionsAllowed"] == 0)
            .then_some(())
    });
    let node = pods[0]["spec"]["nodeName"].as_str().unwrap().to_owned();
    k.restore_node_at_end(&node);
    let output = k.run(&["drain", &node, "--ignore-daemonsets", "--timeout=3s"]);
    let stderr = text(&output.stderr);
    assert!(!output.status.success(), "{}", text(&output.stdout));
    assert!(
        stderr.contains("Cannot evict pod as it would violate the pod's disruption budget."),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(r#"unable to drain node "{node}""#)),
        "{stderr}"
    );
    assert_eq!(
        Table::parse(&k.ok(&["get", "node", &node])).row(&node)["STATUS"],
        "Ready,SchedulingDisabled"
    );

    // A third replica (elsewhere: the node is cordoned) lets one go.
    k.ok_here(&["scale", "deployment/web", "--replicas=3"]);
    k.rolled_out("web", 60);
    let drained = k.ok(&["drain", &node, "--ignore-daemonsets", "--timeout=60s"]);
    assert!(
        drained.contains(&format!("node/{node} drained")),
        "{drained}"
    );
    let pods = k.wait_ready("web", 3);
    assert!(
        pods.iter().all(|p| p["spec"]["nodeName"] != node.as_str()),
        "a web pod is still on {node}"
    );
    k.ok_here(&[
        "wait",
        "--for=condition=Available",
        "deployment/web",
        "--timeout=30s",
    ]);
    k.ok(&["uncordon", &node]);
}

/// `kubectl set image` rolls the Deployment to new pods, which `rollout status` follows to
/// the end; `-o wide` shows the images and selector; the scale subresource answers; deleting
/// the Deployment takes its pods with it.
pub fn set_image_rolls_the_deployment(k: &impl Kubectl) {
    let ns = k.namespace();
    k.apply_fixture("web.yaml");
    k.wait_ready("web", 3);
    k.ok_here(&[
        "set",
        "image",
        "deployment/web",
        "web=docker.io/library/nginx:1.27.4",
    ]);
    k.rolled_out("web", 90);
    let wide = Table::parse(&k.ok_here(&["get", "deployment", "web", "-o", "wide"]));
    assert_eq!(
        wide.headers,
        [
            "NAME",
            "READY",
            "UP-TO-DATE",
            "AVAILABLE",
            "AGE",
            "CONTAINERS",
            "IMAGES",
            "SELECTOR"
        ]
    );
    let web = wide.row("web");
    assert_eq!(
        (
            web["READY"].as_str(),
            web["IMAGES"].as_str(),
            web["SELECTOR"].as_str()
        ),
        ("3/3", "docker.io/library/nginx:1.27.4", "app=web")
    );
    let pods = k.wait_ready("web", 3);
    assert!(
        pods.iter()
            .all(|p| p["spec"]["containers"][0]["image"] == "docker.io/library/nginx:1.27.4")
    );
    let history = k.ok_here(&["rollout", "history", "deployment/web"]);
    assert!(
        history.contains("REVISION") && history.contains("1 ") && history.contains("2 "),
        "{history}"
    );
    let replica_sets = k.json(&["get", "rs", "-n", ns, "-l", "app=web"]);
    let replica_sets = replica_sets["items"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        replica_sets.len(),
        2,
        "the old ReplicaSet is kept, scaled to 0"
    );

    let scale: Value = serde_json::from_str(&k.ok(&[
        "get",
        "--raw",
        &format!("/apis/apps/v1/namespaces/{ns}/deployments/web/scale"),
    ]))
    .unwrap();
    assert_eq!(
        (
            scale["kind"].as_str(),
            scale["spec"]["replicas"].as_i64(),
            scale["status"]["selector"].as_str()
        ),
        (Some("Scale"), Some(3), Some("app=web"))
    );
    assert!(
        k.ok_here(&["delete", "deployment", "web"])
            .contains(r#"deployment.apps "web" deleted"#)
    );
    k.eventually(60, "the web pods gone", || {
        k.ok_here(&["get", "pods", "-l", "app=web", "-o", "name"])
            .is_empty()
            .then_some(())
    });
}

/// Whether the node carries the taint the cluster adds to a cordoned node.
fn unschedulable_taint(node: &Value) -> bool {
    node["spec"]["taints"].as_array().is_some_and(|taints| {
        taints
            .iter()
            .any(|t| t["key"] == "node.kubernetes.io/unschedulable" && t["effect"] == "NoSchedule")
    })
}
