//! SPEC 3.2: new targets start only while the window is open with at least the cutoff left;
//! targets in progress finish; emergency patches ignore windows.

use jiff::{SignedDuration, Timestamp};

use crate::{case::Case, harness::Rules};

pub(crate) const DAILY: &str = "
apiVersion: patchpilot.dev/v1alpha1
kind: MaintenanceWindow
metadata: {name: nightly}
spec:
  recurrences: [{start: '01:00', duration: 1h}]
  cutoff: 20m
";

#[tokio::test(start_paused = true)]
async fn a_wave_stops_at_the_cutoff_and_goes_on_in_the_next_window() {
    // Eight minutes a node: canary 01:00, stage-1 01:18, the full wave's first node at 01:36
    // runs past the cutoff (01:40) and finishes; its second waits for the next night.
    let outcome = Case::new()
        .object(DAILY)
        .scenario("timings: {updater: 6m}")
        .node_policy("os", "spec: {maintenanceWindow: nightly}")
        .run()
        .await;
    let rules = Rules::new("os", 1).windows(
        &[
            ("2026-11-28T01:00:00Z", "2026-11-28T02:00:00Z"),
            ("2026-11-29T01:00:00Z", "2026-11-29T02:00:00Z"),
        ],
        SignedDuration::from_mins(20),
    );
    let replay = outcome.check(&[rules]);
    assert_eq!(outcome.phase("os"), "Succeeded");
    assert_eq!(replay.applied.len(), 4);
    let starts: Vec<Timestamp> = outcome
        .locks()
        .iter()
        .filter(|l| l.state.as_deref() == Some("Applying"))
        .map(|l| l.at)
        .collect();
    let second_night: Timestamp = "2026-11-29T01:00:00Z".parse().unwrap();
    assert!(
        starts.iter().any(|s| *s < second_night),
        "nothing started in the first window: {starts:?}"
    );
    assert!(
        starts.iter().any(|s| *s >= second_night),
        "the rollout fit in one window; the test wants it cut: {starts:?}"
    );
    let cutoff: Timestamp = "2026-11-28T01:40:00Z".parse().unwrap();
    let finished_late = outcome
        .locks()
        .iter()
        .any(|l| l.holder.is_none() && l.at > cutoff && l.at < second_night);
    assert!(
        finished_late,
        "the target in progress at the cutoff did not finish"
    );
    // The window's own status follows it.
    let window = outcome.object(
        "patchpilot.dev",
        "v1alpha1",
        "maintenancewindows",
        "",
        "nightly",
    );
    assert_eq!(
        window["status"]["nextWindow"]["start"], "2026-11-30T01:00:00Z",
        "{:#}",
        window["status"]
    );
}

#[tokio::test(start_paused = true)]
async fn an_emergency_patch_ignores_the_window() {
    let outcome = Case::new()
        .object(DAILY)
        .scenario("start: '2026-11-28T05:00:00Z'")
        .node_policy(
            "os",
            "spec: {maintenanceWindow: nightly, patch: {emergency: true}}",
        )
        .run()
        .await;
    outcome.check(&[Rules::new("os", 1)]);
    assert_eq!(outcome.phase("os"), "Succeeded");
    let last = outcome.locks().last().unwrap().at;
    assert!(
        last < "2026-11-29T01:00:00Z".parse::<Timestamp>().unwrap(),
        "the rollout waited for the window: {last}"
    );
}

/// A time zone the schema cannot judge (any IANA-shaped name passes admission) is refused by
/// the operator: the window is Stalled with reason InvalidSpec, naming the field.
#[tokio::test(start_paused = true)]
async fn an_unknown_time_zone_stalls_the_window_naming_the_field() {
    let outcome = Case::new()
        .scenario("end: {after: 1h}")
        .object(
            "
apiVersion: patchpilot.dev/v1alpha1
kind: MaintenanceWindow
metadata: {name: typo}
spec:
  timeZone: Europe/Berlinn
  recurrences: [{cron: '@daily', duration: 1h}]
",
        )
        .node_policy("os", "spec: {maintenanceWindow: typo}")
        .run()
        .await;
    let window = outcome.object(
        "patchpilot.dev",
        "v1alpha1",
        "maintenancewindows",
        "",
        "typo",
    );
    let conditions = window["status"]["conditions"].as_array().unwrap();
    let stalled = conditions
        .iter()
        .find(|c| c["type"] == "Stalled")
        .unwrap_or_else(|| panic!("{:#}", window["status"]));
    assert_eq!(stalled["status"], "True");
    assert_eq!(stalled["reason"], "InvalidSpec");
    assert!(
        stalled["message"]
            .as_str()
            .unwrap()
            .contains("spec.timeZone: unknown time zone \"Europe/Berlinn\""),
        "{stalled}"
    );
    // The policy that uses it can roll nothing out: Stalled too, saying why.
    let policy = outcome.object("patchpilot.dev", "v1alpha1", "patchpolicies", "", "os");
    let stalled = policy["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == "Stalled"))
        .unwrap_or_else(|| panic!("{:#}", policy["status"]));
    assert_eq!(stalled["status"], "True", "{stalled}");
    assert_eq!(stalled["reason"], "InvalidSpec");
    let message = stalled["message"].as_str().unwrap();
    assert!(
        message.contains("MaintenanceWindow typo: spec.timeZone")
            && message.contains("Europe/Berlinn"),
        "{message}"
    );
}
