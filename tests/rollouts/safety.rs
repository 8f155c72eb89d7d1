//! Issue 10, safety: deleting a policy or a rollout mid-flight, orphaned locks, several
//! rollouts of one policy at once, rollbacks under one lock, writes sent once. Each test is
//! judged from the audit log by `check` (maxUnavailable across the policy's rollouts, no
//! target started twice, no Job counted that did not run for its lock, nothing left
//! cordoned or locked, terminal statuses frozen) and by what it asserts itself.

use jiff::Timestamp;
use serde_json::{Value, json};

use crate::{
    case::Case,
    harness::{Act, Outcome, Rules, condition, timestamp},
};

/// Six nodes, a policy `os` that reboots them, two at a time after a canary.
fn six_nodes() -> Case {
    Case::new()
        .scenario("nodes: [{pool: general, count: 6, zones: [zone-a, zone-b, zone-c]}]")
        .node_policy(
            "os",
            "
spec:
  strategy: {canary: {targets: 1, soak: 5m}, stages: [{percent: 50, soak: 5m}], maxUnavailable: 2}
  patch: {updater: {expectReboot: true, template: {metadata: {annotations: {sandbox.patchpilot.dev/reboot: 'true'}}}}}
",
        )
}

/// A hand-made emergency rollout for the policy `os`.
fn emergency(name: &str, version: &str) -> Value {
    json!({
        "apiVersion": "patchpilot.dev/v1alpha1",
        "kind": "PatchRollout",
        "metadata": {"name": name},
        "spec": {
            "policy": "os",
            "approved": true,
            "changeRef": "CHG-1",
            "patch": {
                "version": version,
                "classification": "Critical",
                "emergency": true,
                "updater": {"template": {"spec": {"containers": [{"name": "fix", "image": "busybox"}]}}},
            },
        },
    })
}

/// When the operator first wrote something matching `pick`.
fn first(outcome: &Outcome, pick: impl Fn(&Value) -> bool) -> Option<Timestamp> {
    outcome.operator_writes().find(|e| pick(e)).map(timestamp)
}

#[tokio::test(start_paused = true)]
async fn deleting_a_policy_mid_rollout_lets_go_of_its_targets_first() {
    // The canary (general-1) locks at once, drains, updates for 2 minutes and reboots for
    // one: at 2m30s it is rebooting when the policy is deleted.
    let outcome = six_nodes()
        .at(
            "2m30s",
            Act::Delete(
                "patchpilot.dev/v1alpha1",
                "patchpolicies",
                None,
                "os".into(),
            ),
        )
        .run()
        .await;
    outcome.check(&[Rules::new("os", 2)]);
    // The policy and its rollout are gone, but only after the canary was finished and
    // released: the finalizers went last.
    assert!(outcome.rollouts("os").is_empty());
    let released = outcome
        .locks()
        .into_iter()
        .filter(|l| l.target == "Node/general-1" && l.holder.is_none())
        .map(|l| l.at)
        .next_back()
        .expect("the canary was released");
    let unfinalized = first(&outcome, |e| {
        e["objectRef"]["resource"] == "patchpolicies"
            && e["verb"] == "patch"
            && e["requestObject"]
                .as_array()
                .is_some_and(|ops| ops.iter().any(|op| op["op"] == "remove"))
    })
    .expect("the policy's finalizer was removed");
    assert!(
        released <= unfinalized,
        "the policy went at {unfinalized}, before its canary was released at {released}"
    );
    // Nothing new started after the deletion.
    let deleted: Timestamp = "2026-11-28T00:02:30Z".parse().unwrap();
    let late: Vec<_> = outcome
        .locks()
        .into_iter()
        .filter(|l| l.at > deleted && l.state.as_deref() == Some("Applying"))
        .collect();
    assert!(late.is_empty(), "{late:?}");
    // The canary's update had run: it finished, healthy, and keeps its patch.
    assert_eq!(
        outcome.node_versions("os")["general-1"].as_deref(),
        Some("v2")
    );
}

#[tokio::test(start_paused = true)]
async fn a_new_policy_over_the_nodes_of_a_deleted_one_goes_ahead() {
    let outcome = six_nodes()
        .at(
            "2m30s",
            Act::Delete("patchpilot.dev/v1alpha1", "patchpolicies", None, "os".into()),
        )
        .at(
            "3m",
            Act::Create(json!({
                "apiVersion": "patchpilot.dev/v1alpha1",
                "kind": "PatchPolicy",
                "metadata": {"name": "os2"},
                "spec": {
                    "targets": {"nodes": {"selector": {}}},
                    "patch": {"version": "v3", "updater": {"template": {"spec": {"containers": [{"name": "u", "image": "busybox"}]}}}},
                    "strategy": {"canary": {"targets": 1, "soak": "1m"}, "maxUnavailable": 2},
                    "health": {"timeout": "10m", "soak": "1m", "checks": [{"nodeReady": {}}]},
                    "approval": {"mode": "Automatic"},
                },
            })),
        )
        .run()
        .await;
    outcome.check(&[Rules::new("os", 2), Rules::new("os2", 2)]);
    assert_eq!(outcome.phase("os2"), "Succeeded");
    assert!(outcome.every_node_carries("os2", "v3"));
}

#[tokio::test(start_paused = true)]
async fn deleting_a_rollout_while_it_drains_uncordons_and_lets_go_at_once() {
    // A budget that never allows an eviction holds the canary in its drain.
    let case = Case::new()
        .scenario(
            "
nodes: [{pool: general, count: 2, zones: [zone-a]}]
workloads:
  - {namespace: shop, name: web, replicas: 2, image: docker.io/library/nginx:1.27.3, pdb: {maxUnavailable: 0}}
",
        )
        .node_policy("os", "spec: {drain: {timeout: 1h}}");
    let rollout = case.rollout_name("os");
    let outcome = case
        .at(
            "5m",
            Act::Delete(
                "patchpilot.dev/v1alpha1",
                "patchrollouts",
                None,
                rollout.clone(),
            ),
        )
        // A person changes the policy: its patch is rolled out again, by a new rollout.
        .at(
            "30m",
            Act::Patch(
                "patchpilot.dev/v1alpha1",
                "patchpolicies",
                None,
                "os".into(),
                json!({"spec": {"drain": {"timeout": "10m"}}}),
            ),
        )
        .run()
        .await;
    outcome.check(&[Rules::new("os", 1)]);
    // The canary was never updated: let go and uncordoned right after the deletion.
    assert!(outcome.updater_jobs().is_empty());
    let deleted: Timestamp = "2026-11-28T00:05:00Z".parse().unwrap();
    let released = outcome
        .locks()
        .into_iter()
        .find(|l| l.holder.is_none())
        .expect("the canary was let go");
    assert!(
        released.at.duration_since(deleted) < jiff::SignedDuration::from_secs(5),
        "let go at {}",
        released.at
    );
    for node in outcome.nodes() {
        assert_ne!(
            node["spec"]["unschedulable"], true,
            "{}",
            node["metadata"]["name"]
        );
    }
    // Deleting the rollout stopped it: the policy does not make it again by itself, and
    // says why nothing rolls out ...
    let policy = outcome.status_at("patchpolicies", "os", "2026-11-28T00:29:00Z");
    assert_eq!(
        condition(&policy, "Stalled"),
        ("True".into(), "RolloutDeleted".into())
    );
    assert_eq!(condition(&policy, "Ready").0, "False");
    // Found gone once; from then on the policy's own status says so.
    let asked = outcome
        .operator_requests()
        .filter(|e| {
            e["verb"] == "get"
                && e["objectRef"]["resource"] == "patchrollouts"
                && e["objectRef"]["name"] == rollout.as_str()
        })
        .count();
    assert_eq!(asked, 1, "GETs of the deleted rollout");
    // Said once, as a Warning on the policy.
    let told: Vec<Value> = outcome
        .objects("", "v1", "events")
        .into_iter()
        .filter(|e| e["reason"] == "RolloutDeleted" && e["involvedObject"]["name"] == "os")
        .collect();
    assert_eq!(told.len(), 1, "{told:?}");
    assert_eq!(told[0]["type"], "Warning");
    assert_eq!(told[0]["count"].as_u64().unwrap_or(1), 1, "{:?}", told[0]);
    // ... until its spec changes: then a new rollout (same name, another UID) starts over.
    let started: Vec<_> = outcome
        .locks()
        .into_iter()
        .filter(|l| l.state.as_deref() == Some("Applying"))
        .collect();
    assert_eq!(started.len(), 2, "{started:?}");
    assert_ne!(started[0].uid, started[1].uid);
    assert!(started[1].at >= "2026-11-28T00:30:00Z".parse().unwrap());
}

#[tokio::test(start_paused = true)]
async fn an_orphaned_lock_is_cleared_reported_and_only_our_cordon_undone() {
    // general-1 carries the lock of a rollout that no longer exists, which had cordoned
    // it; general-2 the same lock, but a person had cordoned it before.
    let record = |cordoned: bool| {
        json!({
            "rollout": "os-deadbeef", "attempt": 0, "state": "Applying",
            "started": "2026-11-27T10:00:00Z", "since": "2026-11-27T10:00:00Z",
            "cordoned": cordoned,
        })
        .to_string()
    };
    let lock = |cordoned: bool| {
        json!({"metadata": {"annotations": {
            "patchpilot.dev/lock": "os-deadbeef",
            "patch.patchpilot.dev/os.rollout": record(cordoned),
        }}, "spec": {"unschedulable": true}})
    };
    let outcome = Case::new()
        .node_policy("os", "spec: {suspend: true}")
        .at(
            "0s",
            Act::Patch("v1", "nodes", None, "general-1".into(), lock(true)),
        )
        .at(
            "0s",
            Act::Patch("v1", "nodes", None, "general-2".into(), lock(false)),
        )
        .scenario("end: {after: 1h}")
        .run()
        .await;
    let node = |name: &str| outcome.object("", "v1", "nodes", "", name);
    for name in ["general-1", "general-2"] {
        assert_eq!(
            node(name)["metadata"]["annotations"]["patchpilot.dev/lock"],
            Value::Null,
            "{name}"
        );
    }
    assert_ne!(node("general-1")["spec"]["unschedulable"], true);
    assert_eq!(node("general-2")["spec"]["unschedulable"], true);
    let record = node("general-1")["metadata"]["annotations"]["patch.patchpilot.dev/os.rollout"]
        .as_str()
        .map(|r| serde_json::from_str::<Value>(r).unwrap())
        .unwrap();
    assert_eq!(record["reason"], "Abandoned");
    // Reported on each node and on the policy that found it.
    let events = outcome.objects("", "v1", "events");
    let reported = |kind: &str, name: &str| {
        events.iter().any(|e| {
            e["reason"] == "OrphanedLockCleared"
                && e["involvedObject"]["kind"] == kind
                && e["involvedObject"]["name"] == name
        })
    };
    assert!(reported("Node", "general-1") && reported("Node", "general-2"));
    assert!(reported("PatchPolicy", "os"));
    // The operator asked the API server whether the rollout was gone before clearing.
    assert!(outcome.operator_requests().any(|e| {
        e["verb"] == "get"
            && e["objectRef"]["resource"] == "patchrollouts"
            && e["objectRef"]["name"] == "os-deadbeef"
    }));
}

#[tokio::test(start_paused = true)]
async fn a_hand_made_rollout_goes_first_and_both_share_max_unavailable() {
    let outcome = six_nodes()
        .at("9m", Act::Create(emergency("os-zero-day", "zero-day")))
        .run()
        .await;
    outcome.check(&[Rules::new("os", 2)]);
    let rollouts = outcome.rollouts("os");
    let phase = |name: &str| {
        rollouts
            .iter()
            .find(|r| r["metadata"]["name"] == name)
            .map(|r| r["status"]["phase"].clone())
    };
    assert_eq!(phase("os-zero-day"), Some(json!("Succeeded")));
    let own = rollouts
        .iter()
        .find(|r| r["metadata"]["name"] != "os-zero-day")
        .unwrap();
    let own_name = own["metadata"]["name"].as_str().unwrap();
    assert_eq!(own["status"]["phase"], "Succeeded");
    // The hand-made rollout is labelled with its policy, like the policy's own.
    let hand_made = rollouts
        .iter()
        .find(|r| r["metadata"]["name"] == "os-zero-day")
        .unwrap();
    assert_eq!(
        hand_made["metadata"]["labels"]["patchpilot.dev/policy"],
        "os"
    );
    // While the hand-made rollout ran, the policy's own started nothing.
    let locks = outcome.locks();
    let ran: Vec<Timestamp> = locks
        .iter()
        .filter(|l| l.holder.as_deref() == Some("os-zero-day"))
        .map(|l| l.at)
        .collect();
    let (from, to) = (ran[0], *ran.last().unwrap());
    let interleaved: Vec<_> = locks
        .iter()
        .filter(|l| {
            l.holder.as_deref() == Some(own_name)
                && l.state.as_deref() == Some("Applying")
                && l.at > from
                && l.at < to
        })
        .collect();
    assert!(interleaved.is_empty(), "{interleaved:?}");
    // Each rollout counts its own work: the policy's own updated all six nodes, the
    // hand-made one too, and neither counts the other's.
    assert_eq!(own["status"]["targets"]["updated"], 6, "{}", own["status"]);
    assert_eq!(hand_made["status"]["targets"]["updated"], 6);
}

#[tokio::test(start_paused = true)]
async fn a_new_version_mid_wave_shares_max_unavailable_with_the_one_it_supersedes() {
    // At 9m the first stage has two nodes in flight: the new version must not add more
    // while they finish.
    let outcome = six_nodes()
        .at(
            "9m",
            Act::Patch(
                "patchpilot.dev/v1alpha1",
                "patchpolicies",
                None,
                "os".into(),
                json!({"spec": {"patch": {"version": "v3"}}}),
            ),
        )
        .run()
        .await;
    outcome.check(&[Rules::new("os", 2)]);
    let phases: Vec<Value> = outcome
        .rollouts("os")
        .iter()
        .map(|r| r["status"]["phase"].clone())
        .collect();
    assert_eq!(phases, [json!("Superseded"), json!("Succeeded")]);
    assert!(outcome.every_node_carries("os", "v3"));
}

#[tokio::test(start_paused = true)]
async fn a_failed_target_goes_to_its_rollback_under_the_same_lock() {
    let outcome = Case::new()
        .scenario("faults: {updaterFailures: [{node: general-1, action: apply}]}")
        .node_policy("os", "")
        .run()
        .await;
    let replay = outcome.check(&[Rules::new("os", 1)]);
    assert_eq!(outcome.phase("os"), "RolledBack");
    assert_eq!(replay.rolled_back, ["Node/general-1"]);
    // From its lock to its final release the canary's lock is never let go.
    let locks: Vec<_> = outcome
        .locks()
        .into_iter()
        .filter(|l| l.target == "Node/general-1")
        .collect();
    let releases = locks.iter().filter(|l| l.holder.is_none()).count();
    assert_eq!(releases, 1, "{locks:#?}");
    assert_eq!(locks.last().unwrap().holder, None);
    assert_eq!(locks.last().unwrap().state.as_deref(), Some("RolledBack"));
}

#[tokio::test(start_paused = true)]
async fn every_write_is_sent_once() {
    // Faults, failures and rollbacks: the busiest run the operator has.
    let outcome = crate::resilience::eventful().run().await;
    outcome.check(&[Rules::new("os", 2).per_pool("pool")]);
    // No Job is created twice, and no write repeats the one before it on the same object.
    let refused: Vec<&Value> = outcome
        .operator_requests()
        .filter(|e| e["verb"] == "create" && e["responseStatus"]["code"] == 409)
        .collect();
    assert!(refused.is_empty(), "{refused:#?}");
    let mut last: std::collections::BTreeMap<String, Value> = Default::default();
    for write in outcome.operator_writes() {
        let key = format!(
            "{}/{}/{}/{}",
            write["objectRef"]["resource"].as_str().unwrap_or(""),
            write["objectRef"]["namespace"].as_str().unwrap_or(""),
            write["objectRef"]["name"].as_str().unwrap_or(""),
            write["objectRef"]["subresource"].as_str().unwrap_or("")
        );
        if key.starts_with("events/") {
            continue;
        }
        let mut body = write["requestObject"].clone();
        if let Some(meta) = body.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.remove("resourceVersion");
        }
        assert_ne!(
            last.get(&key),
            Some(&body),
            "{key} written twice in a row (at {})",
            write["requestReceivedTimestamp"]
        );
        last.insert(key, body);
    }
}

#[tokio::test(start_paused = true)]
async fn two_rollouts_of_one_policy_keep_the_rules_under_restarts_and_api_faults() {
    let outcome = six_nodes()
        .scenario(
            "
seed: 5
faults:
  api: [{user: patchpilot, errorRate: 0.05, conflictRate: 0.05}]
  operatorRestarts: {everyWrites: 9}
",
        )
        .at("9m", Act::Create(emergency("os-zero-day", "zero-day")))
        .run()
        .await;
    outcome.check(&[Rules::new("os", 2)]);
    let phases: Vec<Value> = outcome
        .rollouts("os")
        .iter()
        .map(|r| r["status"]["phase"].clone())
        .collect();
    assert_eq!(phases, [json!("Succeeded"), json!("Succeeded")]);
}

#[tokio::test(start_paused = true)]
async fn a_policy_deleted_mid_rollout_under_restarts_and_api_faults_leaves_nothing_behind() {
    let outcome = six_nodes()
        .scenario(
            "
seed: 9
faults:
  api: [{user: patchpilot, errorRate: 0.05, conflictRate: 0.05}]
  operatorRestarts: {everyWrites: 7}
",
        )
        .at(
            "2m30s",
            Act::Delete(
                "patchpilot.dev/v1alpha1",
                "patchpolicies",
                None,
                "os".into(),
            ),
        )
        .scenario("end: {after: 6h}")
        .run()
        .await;
    outcome.check(&[Rules::new("os", 2)]);
    assert!(outcome.rollouts("os").is_empty());
    assert!(
        outcome
            .objects("patchpilot.dev", "v1alpha1", "patchpolicies")
            .is_empty()
    );
}
