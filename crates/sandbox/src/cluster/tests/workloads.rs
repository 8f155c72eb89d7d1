//! Deployments, StatefulSets, DaemonSets and PodDisruptionBudgets.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{
    Harness, condition, deployment, deployment_rolled_out, image_of, name, node_of, running_ready,
    template,
};
use crate::cluster::{ClusterFaults, Timings};

#[tokio::test(start_paused = true)]
async fn pods_are_scheduled_spread_and_ready() {
    let h = Harness::start();
    h.nodes(&["n1", "n2", "n3"]);
    h.create("deployments", deployment("web", 6, "web:1"));
    h.wait(20).await;
    let pods = h.pods_of("web-");
    assert_eq!(pods.len(), 6);
    assert!(pods.iter().all(|p| running_ready(p)), "{pods:#?}");
    let mut per_node: BTreeMap<&str, usize> = BTreeMap::new();
    for pod in &pods {
        *per_node.entry(node_of(pod)).or_default() += 1;
        let set = &pod["metadata"]["ownerReferences"][0];
        assert_eq!(
            (
                set["kind"].to_value(),
                set["controller"].to_value(),
                set["blockOwnerDeletion"].to_value()
            ),
            (json!("ReplicaSet"), json!(true), json!(true))
        );
        let hash = pod["metadata"]["labels"]["pod-template-hash"]
            .as_str()
            .unwrap();
        assert!(name(pod).starts_with(&format!("web-{hash}-")));
        assert_eq!(name(pod).len(), format!("web-{hash}-").len() + 5);
        let status = &pod["status"];
        assert!(
            status["podIP"].is_string()
                && status["hostIP"].is_string()
                && status["startTime"].is_string()
        );
        assert!(status["containerStatuses"][0]["state"]["running"]["startedAt"].is_string());
        for kind in ["PodScheduled", "Initialized", "ContainersReady", "Ready"] {
            assert_eq!(condition(pod, kind).unwrap()["status"], "True", "{kind}");
        }
    }
    assert_eq!(
        per_node.values().copied().collect::<Vec<_>>(),
        vec![2, 2, 2]
    );
    let d = h.get("deployments", "web").unwrap();
    assert_eq!(deployment_rolled_out(&d), Ok(()));
    assert_eq!(
        d["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "1"
    );
    assert_eq!(condition(&d, "Available").unwrap()["status"], "True");
    assert_eq!(
        condition(&d, "Progressing").unwrap()["reason"],
        "NewReplicaSetAvailable"
    );
    let set = h
        .get(
            "replicasets",
            &format!(
                "web-{}",
                pods[0]["metadata"]["labels"]["pod-template-hash"]
                    .as_str()
                    .unwrap()
            ),
        )
        .unwrap();
    assert_eq!(
        set["status"],
        json!({
            "replicas": 6,
            "fullyLabeledReplicas": 6,
            "readyReplicas": 6,
            "availableReplicas": 6,
            "observedGeneration": 1,
        })
    );
}

#[tokio::test(start_paused = true)]
async fn a_deployment_rolls_to_a_new_image_within_its_bounds() {
    let h = Harness::start();
    h.nodes(&["n1", "n2", "n3"]);
    let mut web = deployment("web", 4, "web:1");
    web["spec"]["strategy"] =
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 1}});
    h.create("deployments", web);
    h.wait(20).await;
    h.edit("deployments", "web", |d| {
        d["spec"]["template"]["spec"]["containers"][0]["image"] = json!("web:2")
    });
    let mut seen_progress = false;
    for _ in 0..60 {
        h.wait(1).await;
        let pods: Vec<_> = h
            .pods_of("web-")
            .into_iter()
            .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
            .collect();
        let ready = pods.iter().filter(|p| running_ready(p)).count();
        assert!(ready >= 3, "maxUnavailable broken: {ready} ready");
        assert!(pods.len() <= 5, "maxSurge broken: {} pods", pods.len());
        let d = h.get("deployments", "web").unwrap();
        if let Err(message) = deployment_rolled_out(&d) {
            seen_progress = true;
            assert!(!message.contains("deadline"), "{message}");
        }
    }
    assert!(seen_progress);
    let d = h.get("deployments", "web").unwrap();
    assert_eq!(deployment_rolled_out(&d), Ok(()));
    assert_eq!(
        d["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "2"
    );
    assert_eq!(d["status"]["observedGeneration"], 2);
    let pods = h.pods_of("web-");
    assert_eq!(pods.len(), 4);
    assert!(
        pods.iter()
            .all(|p| image_of(p) == "web:2" && running_ready(p))
    );
    let sets: Vec<Value> = h
        .store
        .all(&h.resource("replicasets").storage)
        .iter()
        .map(|s| s.to_value())
        .collect();
    assert_eq!(sets.len(), 2);
    let replicas: Vec<i64> = sets
        .iter()
        .map(|s| s["spec"]["replicas"].as_i64().unwrap())
        .collect();
    assert!(
        replicas.contains(&0) && replicas.contains(&4),
        "{replicas:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn deleted_pods_come_back_on_other_nodes() {
    let h = Harness::start();
    h.nodes(&["n1", "n2", "n3"]);
    h.create("deployments", deployment("web", 3, "web:1"));
    h.wait(20).await;
    h.edit("nodes", "n1", |n| n["spec"]["unschedulable"] = json!(true));
    h.wait(1).await;
    let drained: Vec<String> = h
        .pods_of("web-")
        .iter()
        .filter(|p| node_of(p) == "n1")
        .map(|p| name(p).to_owned())
        .collect();
    assert_eq!(drained.len(), 1);
    for pod in &drained {
        h.delete("pods", pod);
    }
    let terminating = h.get("pods", &drained[0]).unwrap();
    assert!(terminating["metadata"]["deletionTimestamp"].is_string());
    h.wait(20).await;
    assert!(
        h.get("pods", &drained[0]).is_none(),
        "the kubelet removes stopped pods"
    );
    let pods = h.pods_of("web-");
    assert_eq!(pods.len(), 3);
    assert!(
        pods.iter().all(|p| running_ready(p) && node_of(p) != "n1"),
        "{pods:#?}"
    );
    assert_eq!(
        deployment_rolled_out(&h.get("deployments", "web").unwrap()),
        Ok(())
    );
}

#[tokio::test(start_paused = true)]
async fn a_stateful_set_rolls_down_to_its_partition() {
    let h = Harness::start();
    h.nodes(&["n1", "n2"]);
    h.create(
        "statefulsets",
        json!({
            "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"},
            "spec": {
                "replicas": 3,
                "serviceName": "db",
                "selector": {"matchLabels": {"app": "db"}},
                "template": template("db", "db:1"),
                "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 1}},
            },
        }),
    );
    h.wait(4).await;
    assert_eq!(h.pods_of("db-").len(), 1, "ordered: one pod at a time");
    h.wait(30).await;
    let set = h.get("statefulsets", "db").unwrap();
    assert_eq!(
        h.pods_of("db-")
            .iter()
            .map(|p| name(p).to_owned())
            .collect::<Vec<_>>(),
        ["db-0", "db-1", "db-2"]
    );
    assert_eq!(set["status"]["readyReplicas"], 3);
    let first = set["status"]["currentRevision"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(set["status"]["updateRevision"], first.as_str());
    assert_eq!(
        h.get("pods", "db-0").unwrap()["metadata"]["labels"]["controller-revision-hash"],
        first.as_str()
    );
    h.edit("statefulsets", "db", |s| {
        s["spec"]["template"]["spec"]["containers"][0]["image"] = json!("db:2")
    });
    h.wait(3).await;
    let top = h.get("pods", "db-2");
    let replaced = |p: &crate::json::Json| {
        image_of(p) == "db:2" || p["metadata"]["deletionTimestamp"].is_string()
    };
    assert!(
        top.is_none_or(|p| replaced(&p)),
        "the highest ordinal goes first"
    );
    assert_eq!(
        image_of(&h.get("pods", "db-1").unwrap()),
        "db:1",
        "one at a time"
    );
    h.wait(40).await;
    let images: Vec<String> = h
        .pods_of("db-")
        .iter()
        .map(|p| image_of(p).to_owned())
        .collect();
    assert_eq!(images, ["db:1", "db:2", "db:2"]);
    let set = h.get("statefulsets", "db").unwrap();
    let status = &set["status"];
    assert_eq!(
        (
            status["updatedReplicas"].to_value(),
            status["currentReplicas"].to_value(),
            status["readyReplicas"].to_value()
        ),
        (json!(2), json!(1), json!(3))
    );
    assert_eq!(status["currentRevision"], first.as_str());
    assert_ne!(status["updateRevision"], first.as_str());
    assert_eq!(status["observedGeneration"], 2);
    h.edit("statefulsets", "db", |s| {
        s["spec"]["updateStrategy"]["rollingUpdate"]["partition"] = json!(0)
    });
    h.wait(30).await;
    let set = h.get("statefulsets", "db").unwrap();
    assert_eq!(
        set["status"]["currentRevision"],
        set["status"]["updateRevision"]
    );
    assert_eq!(set["status"]["updatedReplicas"], 3);
    assert!(
        h.pods_of("db-")
            .iter()
            .all(|p| image_of(p) == "db:2" && running_ready(p))
    );
}

#[tokio::test(start_paused = true)]
async fn a_daemon_set_runs_on_every_node_cordoned_ones_included() {
    let h = Harness::start();
    h.nodes(&["n1", "n2", "n3"]);
    h.edit("nodes", "n2", |n| n["spec"]["unschedulable"] = json!(true));
    h.create(
        "daemonsets",
        json!({
            "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent"},
            "spec": {
                "selector": {"matchLabels": {"app": "agent"}},
                "template": template("agent", "agent:1"),
            },
        }),
    );
    h.wait(20).await;
    let pods = h.pods_of("agent-");
    let mut nodes: Vec<&str> = pods.iter().map(|p| node_of(p)).collect();
    nodes.sort();
    assert_eq!(nodes, ["n1", "n2", "n3"]);
    assert!(pods.iter().all(|p| running_ready(p)));
    let status = h.get("daemonsets", "agent").unwrap()["status"].to_value();
    assert_eq!(status["desiredNumberScheduled"], 3);
    assert_eq!(status["numberAvailable"], 3);
    h.edit("daemonsets", "agent", |d| {
        d["spec"]["template"]["spec"]["containers"][0]["image"] = json!("agent:2")
    });
    for _ in 0..40 {
        h.wait(1).await;
        let available = h
            .pods_of("agent-")
            .iter()
            .filter(|p| running_ready(p) && p["metadata"]["deletionTimestamp"].is_null())
            .count();
        assert!(available >= 2, "maxUnavailable 1 broken");
    }
    let set = h.get("daemonsets", "agent").unwrap();
    let status = &set["status"];
    assert_eq!(
        (
            status["updatedNumberScheduled"].to_value(),
            status["numberAvailable"].to_value()
        ),
        (json!(3), json!(3))
    );
    assert_eq!(status["observedGeneration"], 2);
    assert!(status.get("numberUnavailable").is_none());
    assert!(h.pods_of("agent-").iter().all(|p| image_of(p) == "agent:2"));
}

#[tokio::test(start_paused = true)]
async fn an_image_the_registry_does_not_have_keeps_new_pods_pulling() {
    let faults = ClusterFaults {
        unpullable_images: vec!["web:9".into()],
        ..ClusterFaults::default()
    };
    let h = Harness::with(Timings::default(), faults);
    h.nodes(&["n1", "n2"]);
    h.create("deployments", deployment("web", 2, "web:1"));
    h.wait(20).await;
    h.edit("deployments", "web", |d| {
        d["spec"]["template"]["spec"]["containers"][0]["image"] = json!("web:9")
    });
    let reasons = |h: &Harness| -> Vec<String> {
        h.pods_of("web-")
            .into_iter()
            .filter(|p| image_of(p) == "web:9")
            .map(|p| {
                assert_eq!(p["status"]["phase"], "Pending", "{p:#}");
                p["status"]["containerStatuses"][0]["state"]["waiting"]["reason"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned()
            })
            .collect()
    };
    // Pulled 5 s after binding, and failed: ErrImagePull, then ImagePullBackOff.
    h.wait(6).await;
    assert_eq!(reasons(&h), ["ErrImagePull"]);
    h.wait(5).await;
    assert_eq!(reasons(&h), ["ImagePullBackOff"]);
    // The old pods stay: the rollout never gets further.
    h.wait(60).await;
    assert_eq!(reasons(&h), ["ImagePullBackOff"]);
    assert!(deployment_rolled_out(&h.get("deployments", "web").unwrap()).is_err());
}

#[tokio::test(start_paused = true)]
async fn a_faulty_workload_never_completes_and_its_deployment_times_out() {
    let faults = ClusterFaults {
        unhealthy_after_patch: vec!["Deployment/shop/web".into()],
        ..ClusterFaults::default()
    };
    let h = Harness::with(Timings::default(), faults);
    h.nodes(&["n1", "n2"]);
    h.create("deployments", deployment("web", 2, "web:1"));
    h.wait(20).await;
    assert_eq!(
        deployment_rolled_out(&h.get("deployments", "web").unwrap()),
        Ok(())
    );
    h.edit("deployments", "web", |d| {
        d["spec"]["template"]["spec"]["containers"][0]["image"] = json!("web:2")
    });
    h.wait(60).await;
    let new: Vec<_> = h
        .pods_of("web-")
        .into_iter()
        .filter(|p| image_of(p) == "web:2")
        .collect();
    assert!(!new.is_empty());
    assert!(
        new.iter()
            .all(|p| !running_ready(p) && p["status"]["phase"] == "Running")
    );
    // Started 5 s after the edit, exited at 10 and restarted at once, exited at 15 and
    // backed off 10 s, exited at 30 and backed off 20 s: waiting at 60.
    let container = &new[0]["status"]["containerStatuses"][0];
    let restarts = container["restartCount"].as_i64().unwrap();
    assert!(
        restarts >= 3,
        "restarts with the kubelet's back-off: {restarts}"
    );
    assert_eq!(
        container["state"]["waiting"]["reason"], "CrashLoopBackOff",
        "{container:#}"
    );
    assert_eq!(container["lastState"]["terminated"]["reason"], "Error");
    let d = h.get("deployments", "web").unwrap();
    assert!(deployment_rolled_out(&d).is_err_and(|m| !m.contains("deadline")));
    h.wait(600).await;
    let d = h.get("deployments", "web").unwrap();
    let progressing = condition(&d, "Progressing").unwrap();
    assert_eq!(
        (
            progressing["status"].to_value(),
            progressing["reason"].to_value()
        ),
        (json!("False"), json!("ProgressDeadlineExceeded"))
    );
    assert_eq!(
        deployment_rolled_out(&d),
        Err("exceeded its progress deadline".into())
    );
    h.edit("deployments", "web", |d| {
        d["spec"]["template"]["spec"]["containers"][0]["image"] = json!("web:1")
    });
    h.wait(60).await;
    let d = h.get("deployments", "web").unwrap();
    assert_eq!(deployment_rolled_out(&d), Ok(()));
    assert_eq!(
        d["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "3"
    );
    assert!(
        h.pods_of("web-")
            .iter()
            .all(|p| image_of(p) == "web:1" && running_ready(p))
    );
}

#[tokio::test(start_paused = true)]
async fn disruption_budgets_report_their_pods() {
    let h = Harness::start();
    h.nodes(&["n1", "n2", "n3"]);
    h.create("deployments", deployment("web", 3, "web:1"));
    h.create(
        "poddisruptionbudgets",
        json!({
            "apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "web"},
            "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}},
        }),
    );
    h.wait(20).await;
    let budget = h.get("poddisruptionbudgets", "web").unwrap();
    let status = &budget["status"];
    assert_eq!(
        [
            &status["expectedPods"],
            &status["currentHealthy"],
            &status["desiredHealthy"],
            &status["disruptionsAllowed"],
            &status["observedGeneration"]
        ],
        [&json!(3), &json!(3), &json!(2), &json!(1), &json!(1)]
    );
    assert_eq!(
        condition(&budget, "DisruptionAllowed").unwrap()["reason"],
        "SufficientPods"
    );
    // An eviction records the pod, then deletes it: the entry goes once the pod is going.
    let victim = name(&h.pods_of("web-")[0]).to_owned();
    let budgets = h.resource("poddisruptionbudgets");
    h.store
        .modify(
            &budgets,
            "shop",
            "web",
            &crate::store::Write::internal("kube-controller-manager").status(),
            |b| {
                let mut b = b.cloned().unwrap();
                b["status"]["disruptedPods"] = json!({victim.clone(): "2026-11-28T00:00:20Z"});
                b["status"]["disruptionsAllowed"] = json!(0);
                Ok(b)
            },
        )
        .unwrap();
    h.delete("pods", &victim);
    h.wait(1).await;
    let budget = h.get("poddisruptionbudgets", "web").unwrap();
    assert!(
        budget["status"].get("disruptedPods").is_none(),
        "{budget:#}"
    );
    assert_eq!(budget["status"]["currentHealthy"], 2);
    assert_eq!(budget["status"]["disruptionsAllowed"], 0);
    assert_eq!(
        condition(&budget, "DisruptionAllowed").unwrap()["status"],
        "False"
    );
    h.wait(20).await;
    let budget = h.get("poddisruptionbudgets", "web").unwrap();
    assert_eq!(budget["status"]["currentHealthy"], 3);
    assert_eq!(budget["status"]["disruptionsAllowed"], 1);
}
