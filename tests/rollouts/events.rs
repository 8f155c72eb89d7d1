//! SPEC 2.3 and issue 5: Kubernetes Events on the rollout for approvals, waves, targets,
//! windows closing and opening, rollback and completion, each carrying the `changeRef`.

use serde_json::Value;

use crate::{case::Case, harness::Rules, windows::DAILY};

/// The events recorded on the rollout `name`, oldest first: (reason, note). The sandbox
/// stores events as core `v1` Events (`involvedObject`, `message`), as the API server does,
/// whichever version they were written in.
fn events_of(outcome: &crate::harness::Outcome, name: &str) -> Vec<(String, String)> {
    let events = outcome
        .objects("events.k8s.io", "v1", "events")
        .into_iter()
        .filter(|e| {
            e["involvedObject"]["kind"] == "PatchRollout" && e["involvedObject"]["name"] == name
        })
        .collect();
    reasons_and_notes(events)
}

/// Events as (reason, note), oldest first: their names end with the hex nanoseconds of
/// their time.
fn reasons_and_notes(mut events: Vec<Value>) -> Vec<(String, String)> {
    events.sort_by_key(|e| e["metadata"]["name"].as_str().unwrap_or("").to_owned());
    events
        .iter()
        .map(|e| {
            (
                e["reason"].as_str().unwrap_or("").to_owned(),
                e["message"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

/// A canary that fails its health checks and is rolled back, with a change reference: the
/// outcome and the rollout's name.
async fn failed_canary() -> (crate::harness::Outcome, String) {
    let outcome = Case::new()
        .scenario("faults: {unhealthyAfterPatch: [Node/general-1]}")
        .scenario(CHANGE_REF)
        .node_policy("os", "")
        .run()
        .await;
    outcome.check(&[Rules::new("os", 1)]);
    assert_eq!(outcome.phase("os"), "RolledBack");
    let name = outcome.rollout("os")["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    (outcome, name)
}

/// A change reference set on the rollout as soon as it exists.
const CHANGE_REF: &str = "
steps:
  - name: the change request
    when: {apiVersion: patchpilot.dev/v1alpha1, kind: PatchRollout}
    patch: {spec: {changeRef: CHG-1234}}
";

#[tokio::test(start_paused = true)]
async fn a_rollout_across_two_nights_tells_its_story_in_events() {
    // As in the cutoff test: the rollout stops at the first night's cutoff and finishes
    // the next night.
    let outcome = Case::new()
        .object(DAILY)
        .scenario("timings: {updater: 6m}")
        .scenario(CHANGE_REF)
        .node_policy("os", "spec: {maintenanceWindow: nightly}")
        .run()
        .await;
    outcome.check(&[Rules::new("os", 1)]);
    assert_eq!(outcome.phase("os"), "Succeeded");
    let name = outcome.rollout("os")["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    let events = events_of(&outcome, &name);
    let reasons: Vec<&str> = events.iter().map(|(r, _)| r.as_str()).collect();
    for wanted in [
        "Approved",
        "WaveStarted",
        "TargetUpdated",
        "WindowClosed",
        "WindowOpened",
        "Succeeded",
    ] {
        assert!(
            reasons.contains(&wanted),
            "no {wanted} event in {reasons:?}"
        );
    }
    let waves = events.iter().filter(|(r, _)| r == "WaveStarted").count();
    assert_eq!(waves, 3, "canary, stage-1, full: {reasons:?}");
    let updated = events.iter().filter(|(r, _)| r == "TargetUpdated").count();
    assert_eq!(updated, 4, "{reasons:?}");
    // Every event after the change reference was set carries it.
    let first_ref = events
        .iter()
        .position(|(_, note)| note.starts_with("[CHG-1234] "))
        .unwrap();
    let without: Vec<&(String, String)> = events[first_ref..]
        .iter()
        .filter(|(_, note)| !note.starts_with("[CHG-1234] "))
        .collect();
    assert!(
        without.is_empty(),
        "events without the changeRef: {without:?}"
    );
    assert!(
        events
            .iter()
            .any(|(r, note)| r == "Succeeded" && note.starts_with("[CHG-1234] "))
    );
}

#[tokio::test(start_paused = true)]
async fn a_failure_and_its_rollback_are_warnings() {
    let (outcome, name) = failed_canary().await;
    let warnings: Vec<String> = outcome
        .objects("events.k8s.io", "v1", "events")
        .into_iter()
        .filter(|e| e["involvedObject"]["name"] == name.as_str() && e["type"] == "Warning")
        .map(|e| e["reason"].as_str().unwrap().to_owned())
        .collect();
    for wanted in ["TargetFailed", "RollbackStarted", "RolledBack"] {
        assert!(
            warnings.iter().any(|r| r == wanted),
            "no {wanted} warning in {warnings:?}"
        );
    }
    let rolled_back = outcome
        .objects("events.k8s.io", "v1", "events")
        .into_iter()
        .find(|e| e["involvedObject"]["name"] == name.as_str() && e["reason"] == "TargetRolledBack")
        .expect("a TargetRolledBack event");
    let note = rolled_back["message"].as_str().unwrap();
    assert!(
        note.starts_with("[CHG-1234] Node/general-1 rolled back"),
        "{note}"
    );
}

/// Issue 14: the events on the Node itself, oldest first: (reason, note), each regarding the
/// node by its UID (so `kubectl describe node` lists them) with the rollout as related object.
pub(crate) fn node_story(
    outcome: &crate::harness::Outcome,
    node: &str,
    rollout: &str,
) -> Vec<(String, String)> {
    let uid = outcome
        .nodes()
        .into_iter()
        .find(|n| n["metadata"]["name"] == node)
        .map(|n| n["metadata"]["uid"].clone())
        .unwrap();
    let events: Vec<Value> = outcome
        .objects("events.k8s.io", "v1", "events")
        .into_iter()
        .filter(|e| e["involvedObject"]["kind"] == "Node" && e["involvedObject"]["name"] == node)
        .filter(|e| e["reportingComponent"] == "patchpilot")
        .collect();
    for event in &events {
        assert_eq!(event["involvedObject"]["uid"], uid, "{event:#}");
        assert_eq!(event["related"]["kind"], "PatchRollout", "{event:#}");
        assert_eq!(event["related"]["name"], rollout, "{event:#}");
    }
    reasons_and_notes(events)
}

#[tokio::test(start_paused = true)]
async fn a_node_tells_its_own_story_and_its_rollback() {
    let (outcome, name) = failed_canary().await;
    let story = node_story(&outcome, "general-1", &name);
    let reasons: Vec<&str> = story.iter().map(|(r, _)| r.as_str()).collect();
    // Applied (nothing to drain, no reboot asked for), then failed, then rolled back under
    // the same lock.
    let applied = [
        "Locked",
        "UpdaterStarted",
        "UpdaterFinished",
        "Uncordoned",
        "Verifying",
        "TargetFailed",
        "RollingBack",
    ];
    assert_eq!(&reasons[..applied.len()], applied, "{story:#?}");
    assert!(reasons.ends_with(&["TargetRolledBack"]), "{story:#?}");
    assert!(
        reasons[applied.len()..].contains(&"UpdaterStarted"),
        "the rollback's updater: {story:#?}"
    );
    for (reason, note) in &story {
        assert!(
            note.starts_with(&format!("[CHG-1234] PatchRollout {name}: ")),
            "{reason}: {note}"
        );
    }
    let rollback = story
        .iter()
        .find(|(r, note)| r == "UpdaterStarted" && note.contains("rollback: "));
    assert!(rollback.is_some(), "{story:#?}");
}
