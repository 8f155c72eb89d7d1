//! What people do, with the real kubectl: follow, approve and promote a rollout with the
//! `kubectl patchpilot` plugin, keep patches out of a closed window, and push an emergency
//! patch through it.

use kube::ResourceExt;
use patchpilot::{api::keys, engine::rollout::Phase};

use patchpilot_testkit::audit::Rules;

use crate::{
    nodes::{NodePolicy, VERSION, assert_released, budget},
    support::{Cluster, kstatus, kubectl, mins, plugin},
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a cluster: KUBECONFIG=... cargo test --test e2e -- --ignored"]
async fn a_person_approves_and_promotes_with_kubectl() {
    let mut cluster = Cluster::start().await;
    let nodes = cluster.label_nodes(&["general"]).await;
    let policy = format!("e2e-os-manual-{}", cluster.suffix);
    let spec = NodePolicy {
        approval: Some("mode: Manual\n    afterCanary: true".into()),
        ..NodePolicy::default()
    };
    cluster.create_policy(&spec.yaml(&policy)).await;

    let waiting = cluster
        .wait_for_rollout(&policy, Phase::AwaitingApproval, mins(1))
        .await;
    let name = waiting.name_any();
    // The policy is accepted and waits for a person: Ready, so kstatus says Current.
    assert_eq!(kstatus(&format!("patchpolicy/{policy}")).0, "Current");
    assert_eq!(kstatus(&format!("patchrollout/{name}")).0, "InProgress");
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    for node in cluster.nodes(&nodes).await {
        assert!(
            !node.annotations().contains_key(keys::LOCK),
            "started before approval"
        );
    }

    // Followed and steered with `kubectl patchpilot`: what makes no sense yet is refused.
    let (code, tree, err) = plugin(&["status", "--policy", &policy]);
    assert_eq!(code, 0, "{tree}{err}");
    assert!(tree.contains("Approval:   awaited: "), "{tree}");
    let (code, _, err) = plugin(&["promote", &name]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("is not waiting for promotion"), "{err}");
    let (code, plan, err) = plugin(&["plan", &policy]);
    assert_eq!(code, 0, "{plan}{err}");
    assert!(
        plan.contains(&format!("{} eligible target", nodes.len())),
        "{plan}"
    );
    let (code, out, err) = plugin(&["approve", &name]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("approved: spec.approved is now true"), "{out}");
    let held = cluster
        .wait_for_rollout_where(&policy, "awaiting promotion", mins(2), |r| {
            let status = r.status.clone().unwrap_or_default();
            status.phase == Phase::Paused && status.targets.updated == 1
        })
        .await;
    let status = held.status.clone().unwrap_or_default();
    assert_eq!(status.targets.updated, 1, "{status:?}");
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let updated = cluster
        .nodes(&nodes)
        .await
        .iter()
        .filter(|n| n.annotations().get(&keys::version(&policy)).is_some())
        .count();
    assert_eq!(updated, 1, "only the canary before promotion");
    let (code, tree, err) = plugin(&["status", &name]);
    assert_eq!(code, 0, "{tree}{err}");
    assert!(
        tree.contains("Phase:      Paused (AwaitingPromotion)"),
        "{tree}"
    );
    assert!(
        tree.contains(&format!("kubectl patchpilot promote {name}")),
        "{tree}"
    );

    let (code, out, err) = plugin(&["promote", &name]);
    assert_eq!(code, 0, "{out}{err}");
    // Followed to its end: exit status 0 once it succeeded.
    let (code, out, err) = plugin(&["status", &name, "--watch", "--timeout", "5m"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("Succeeded"), "{out}");
    let done = cluster
        .wait_for_rollout(&policy, Phase::Succeeded, budget(nodes.len()))
        .await;
    let status = done.status.clone().unwrap_or_default();
    assert_eq!(
        status.targets.updated,
        u32::try_from(nodes.len()).unwrap(),
        "{status:?}"
    );
    // Who approved, as the API server knows the user; the compliance report agrees.
    let approver = done
        .annotations()
        .get(patchpilot::api::APPROVED_BY)
        .cloned()
        .unwrap_or_default();
    assert!(!approver.is_empty(), "{:?}", done.metadata.annotations);
    let (code, out, err) = plugin(&["report", &policy, "-o", "json"]);
    assert_eq!(code, 0, "{out}{err}");
    let report: serde_json::Value = serde_json::from_str(&out).expect("report JSON");
    assert_eq!(
        report["policies"][0]["counts"]["upToDate"].as_u64(),
        Some(nodes.len() as u64),
        "{report}"
    );
    // The policy's history names the rollout, its version, who approved it and how it ended.
    let (code, out, err) = plugin(&["history", &policy, "-o", "json"]);
    assert_eq!(code, 0, "{out}{err}");
    let history: serde_json::Value = serde_json::from_str(&out).expect("history JSON");
    let entry = history
        .as_array()
        .and_then(|r| r.iter().find(|r| r["rollout"] == name.as_str()))
        .unwrap_or_else(|| panic!("{history}"));
    assert_eq!(entry["version"], VERSION, "{entry}");
    assert_eq!(entry["approvedBy"], approver.as_str(), "{entry}");
    assert_eq!(entry["outcome"], "Succeeded", "{entry}");
    assert_eq!(entry["kept"], true, "{entry}");
    cluster
        .finish(&[Rules::new(policy.clone(), 1).per_pool("pool")])
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a cluster: KUBECONFIG=... cargo test --test e2e -- --ignored"]
async fn a_closed_window_starts_nothing_and_an_emergency_patch_bypasses_it() {
    let mut cluster = Cluster::start().await;
    let nodes = cluster.label_nodes(&["gpu"]).await;
    // A window open every day all day but frozen from an hour ago for a day: closed now.
    let window = format!("e2e-freeze-{}", cluster.suffix);
    let now = jiff::Timestamp::now();
    let (from, to) = (
        now - jiff::SignedDuration::from_hours(1),
        now + jiff::SignedDuration::from_hours(24),
    );
    cluster.apply(&format!(
        r#"
apiVersion: patchpilot.dev/v1alpha1
kind: MaintenanceWindow
metadata: {{name: {window}}}
spec:
  recurrences: [{{start: "00:00", duration: 24h}}]
  exclusions: [{{start: "{from}", end: "{to}", reason: e2e freeze}}]
"#
    ));
    cluster.forget_at_end("patchpilot.dev/v1alpha1", "maintenancewindows", &window);
    let policy = format!("e2e-os-window-{}", cluster.suffix);
    let spec = NodePolicy {
        extra: format!("  maintenanceWindow: {window}\n"),
        ..NodePolicy::default()
    };
    cluster.create_policy(&spec.yaml(&policy)).await;

    let scheduled = cluster
        .wait_for_rollout(&policy, Phase::Scheduled, mins(1))
        .await;
    // Waiting for its window is not stuck: the policy is Ready (kstatus: Current), and so
    // is the window; the rollout is InProgress until it has run.
    assert_eq!(kstatus(&format!("patchpolicy/{policy}")).0, "Current");
    assert_eq!(kstatus(&format!("maintenancewindow/{window}")).0, "Current");
    assert_eq!(
        kstatus(&format!("patchrollout/{}", scheduled.name_any())).0,
        "InProgress"
    );
    tokio::time::sleep(std::time::Duration::from_secs(8)).await;
    for node in cluster.nodes(&nodes).await {
        assert!(
            !node.annotations().contains_key(keys::LOCK),
            "started in a freeze"
        );
    }
    if let Some(replay) = cluster
        .check_audit(&[Rules::new(policy.clone(), 1)
            .per_pool("pool")
            .windows(&[], jiff::SignedDuration::ZERO)])
        .await
    {
        assert!(replay.applied.is_empty(), "{:?}", replay.applied);
    }

    // An emergency patch, by hand, goes through the freeze (never past health checks).
    let emergency = format!("e2e-zero-day-{}", cluster.suffix);
    let mut patch: serde_json::Value =
        serde_yaml_ng::from_str::<serde_json::Value>(&spec.yaml(&policy))
            .expect("the policy as JSON")["spec"]["patch"]
            .clone();
    patch["version"] = "e2e-zero-day".into();
    patch["emergency"] = true.into();
    patch["classification"] = "Critical".into();
    let rollout = serde_json::json!({
        "apiVersion": "patchpilot.dev/v1alpha1",
        "kind": "PatchRollout",
        "metadata": {"name": emergency},
        "spec": {"policy": policy, "approved": true, "changeRef": "CHG-E2E", "patch": patch},
    });
    cluster.forget_rollout_at_end(&emergency);
    cluster.apply(&serde_json::to_string(&rollout).unwrap());
    let done = cluster
        .wait_for_rollout_where(
            &policy,
            "the emergency Succeeded",
            budget(nodes.len()),
            |r| {
                r.name_any() == emergency
                    && r.status
                        .as_ref()
                        .is_some_and(|s| s.phase == Phase::Succeeded)
            },
        )
        .await;
    let status = done.status.clone().unwrap_or_default();
    assert_eq!(
        status.targets.updated,
        u32::try_from(nodes.len()).unwrap(),
        "{status:?}"
    );
    for node in cluster.nodes(&nodes).await {
        assert_eq!(
            node.annotations()
                .get(&keys::version(&policy))
                .map(String::as_str),
            Some("e2e-zero-day")
        );
        assert_released(&node);
    }
    let _ = VERSION;
    cluster
        .finish(&[Rules::new(policy.clone(), 1).per_pool("pool")])
        .await;
}

/// A lock left by a rollout that is gone (its finalizer removed by hand, say) is broken with
/// `kubectl patchpilot unlock`, against the real API server: said first, a dry run changes
/// nothing, then the lock goes in one patch, the node is uncordoned because that rollout
/// cordoned it, and an Event on the node says so. The node is selected by no policy, so the
/// operator's own orphan clearing leaves it to the person.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a cluster: KUBECONFIG=... cargo test --test e2e -- --ignored"]
async fn a_person_breaks_a_lock_whose_rollout_is_gone() {
    let mut cluster = Cluster::start().await;
    let node = format!("e2e-stranded-{}", cluster.suffix);
    let gone = format!("e2e-gone-{}", cluster.suffix);
    cluster.forget_at_end("v1", "nodes", &node);
    let record = format!(
        r#"{{"rollout":"{gone}-1","attempt":0,"state":"Applying","started":"2026-11-27T22:00:00Z","since":"2026-11-27T22:00:00Z","cordoned":true}}"#
    );
    cluster.apply(&format!(
        "apiVersion: v1
kind: Node
metadata:
  name: {node}
  labels: {{patchpilot.dev/locked: \"true\"}}
  annotations:
    patchpilot.dev/lock: {gone}-1
    patch.patchpilot.dev/{gone}.rollout: '{record}'
spec: {{unschedulable: true}}
"
    ));

    let (code, said, err) = plugin(&["unlock", &format!("node/{node}"), "--dry-run"]);
    assert_eq!(code, 0, "{said}{err}");
    assert!(
        said.starts_with(&format!(
            "Node/{node} is locked by PatchRollout {gone}-1, which no longer exists."
        )),
        "{said}"
    );
    assert!(said.ends_with("Dry run: nothing changed.\n"), "{said}");
    let cordoned = kubectl(&["get", "node", &node, "-o", "jsonpath={.spec.unschedulable}"]);
    assert_eq!(cordoned, "true");

    let (code, done, err) = plugin(&["unlock", &node]);
    assert_eq!(code, 0, "{done}{err}");
    assert!(
        done.ends_with(&format!("Node/{node} unlocked and uncordoned\n")),
        "{done}"
    );
    let after: serde_json::Value =
        serde_json::from_str(&kubectl(&["get", "node", &node, "-o", "json"])).unwrap();
    assert_ne!(after["spec"]["unschedulable"], true, "{after}");
    assert!(
        after["metadata"]["annotations"].get(keys::LOCK).is_none(),
        "{after}"
    );
    assert!(
        after["metadata"]["labels"]
            .get("patchpilot.dev/locked")
            .is_none(),
        "{after}"
    );
    let record = after["metadata"]["annotations"][format!("patch.patchpilot.dev/{gone}.rollout")]
        .as_str()
        .unwrap_or_default();
    assert!(record.contains("\"reason\":\"Abandoned\""), "{record}");
    let events = kubectl(&[
        "get",
        "events",
        "--field-selector",
        &format!("involvedObject.name={node}"),
        "-o",
        "jsonpath={.items[*].reason}",
    ]);
    assert!(events.split(' ').any(|r| r == "LockCleared"), "{events}");
    let (code, again, err) = plugin(&["unlock", &node]);
    assert_eq!(code, 0, "{again}{err}");
    assert_eq!(
        again.trim(),
        format!("Node/{node} is not locked by patchpilot: nothing to do")
    );
}
