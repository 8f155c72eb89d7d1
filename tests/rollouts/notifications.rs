//! Issue 15, notifications on the virtual clock: a rollout announced a day ahead and told
//! through to its outcome, a follow-up when the version changes before the opening, the same
//! notices through operator restarts and API faults, and a destination down for an hour —
//! judged by what the sandbox's receiver got (count, order, ids) and the audit log.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde_json::{Value, json};

use crate::{
    case::Case,
    harness::{Act, Outcome, Rules},
};

/// Open on Mondays 01:00-03:00 UTC: the first opening, Mon 2026-11-30 01:00, is 49 hours
/// after the scenario's start (Sat 00:00).
const MONDAYS: &str = "
apiVersion: patchpilot.dev/v1alpha1
kind: MaintenanceWindow
metadata: {name: mondays}
spec:
  recurrences: [{days: [Mon], start: '01:00', duration: 2h}]
";

/// The Notifier `chat`, a webhook whose address is the sandbox's receiver `chat`.
const CHAT: &str = "
apiVersion: v1
kind: Secret
metadata: {name: chat-webhook, namespace: patchpilot-system}
stringData: {address: 'http://chat.receiver.sandbox/hooks/T000/B000'}
---
apiVersion: patchpilot.dev/v1alpha1
kind: Notifier
metadata: {name: chat}
spec: {type: Webhook, secretRef: {name: chat-webhook}}
";

/// The base node policy in the Monday window, announced a day ahead to `chat`.
pub(crate) fn case(approval: &str) -> Case {
    case_to(approval, "[chat]")
}

/// The same, told to `notifiers`.
fn case_to(approval: &str, notifiers: &str) -> Case {
    let mut case = Case::new()
        .scenario("receivers: [{name: chat}]")
        .object(MONDAYS);
    for object in CHAT.split("---") {
        case = case.object(object);
    }
    case.node_policy(
        "os",
        &format!(
            "
spec:
  maintenanceWindow: mondays
  approval: {approval}
  notifications: {{notifiers: {notifiers}, announceBefore: 24h}}
"
        ),
    )
}

/// The notices the receiver accepted, in the order it got them: (time, id, kind, message).
fn accepted(outcome: &Outcome) -> Vec<(Timestamp, String, String, String)> {
    outcome
        .received("chat")
        .iter()
        .filter(|r| {
            r["status"]
                .as_u64()
                .is_some_and(|s| (200..300).contains(&s))
        })
        .map(|r| {
            let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
            (
                r["time"].as_str().unwrap().parse().unwrap(),
                text(&r["body"]["id"]),
                text(&r["body"]["kind"]),
                text(&r["body"]["message"]),
            )
        })
        .collect()
}

/// Each id once, in the order first received; a repeat may only be the notice just sent
/// again (at least once, never out of order).
fn each_once(notices: &[(Timestamp, String, String, String)]) -> Vec<(String, String)> {
    let mut seen: Vec<(String, String)> = Vec::new();
    for (_, id, kind, _) in notices {
        match seen.iter().position(|(s, _)| s == id) {
            None => seen.push((id.clone(), kind.clone())),
            Some(at) => assert!(
                at + 1 == seen.len() || at + 2 == seen.len(),
                "{id} repeated out of order: {notices:#?}"
            ),
        }
    }
    seen
}

fn kinds(notices: &[(String, String)]) -> Vec<&str> {
    notices.iter().map(|(_, k)| k.as_str()).collect()
}

fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

/// The notices of one rollout are numbered 1, 2, 3, … in the order received.
fn numbered_in_order(notices: &[(String, String)]) {
    let mut last: BTreeMap<&str, u32> = BTreeMap::new();
    for (id, _) in notices {
        let (rollout, seq) = id.rsplit_once('/').unwrap();
        let seq: u32 = seq.parse().unwrap();
        let previous = last.insert(rollout, seq).unwrap_or(0);
        assert_eq!(seq, previous + 1, "{id} after {previous}: {notices:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_rollout_is_announced_a_day_ahead_and_told_through_to_its_outcome() {
    let case = case("{mode: Manual}");
    let rollout = case.rollout_name("os");
    let outcome = case
        .at(
            "30h",
            Act::Patch(
                "patchpilot.dev/v1alpha1",
                "patchrollouts",
                None,
                rollout.clone(),
                json!({"spec": {"approved": true}}),
            ),
        )
        .run()
        .await;
    outcome.check(&[Rules::new("os", 1)]);
    assert_eq!(outcome.phase("os"), "Succeeded");
    let got = accepted(&outcome);
    let notices = each_once(&got);
    numbered_in_order(&notices);
    assert_eq!(
        kinds(&notices),
        [
            "ApprovalNeeded",
            "Announcement",
            "AnnouncementChanged",
            "Started",
            "WaveStarted",
            "WaveFinished",
            "WaveStarted",
            "WaveFinished",
            "WaveStarted",
            "WaveFinished",
            "Succeeded",
        ]
    );
    assert_eq!(got.len(), notices.len(), "no repeats without faults");
    // The approval is asked for at once; the announcement goes out 24h before Monday 01:00,
    // within seconds; the follow-up when it is approved, 30h after the start.
    assert!(got[0].0 < at("2026-11-28T00:01:00Z"), "{:?}", got[0]);
    let announced = &got[1];
    assert!(
        announced.0 >= at("2026-11-29T01:00:00Z") && announced.0 < at("2026-11-29T01:01:00Z"),
        "{announced:?}"
    );
    assert!(
        announced
            .3
            .contains("will start at 01:00 UTC on Mon 2026-11-30")
            && announced
                .3
                .contains("4 targets in 3 waves: canary 1, stage-1 1, full 2")
            && announced
                .3
                .contains("needs approval: kubectl patchpilot approve"),
        "{announced:?}"
    );
    assert!(got[2].0 >= at("2026-11-29T06:00:00Z"), "{:?}", got[2]);
    assert!(got[2].3.contains("is approved: it starts"), "{:?}", got[2]);
    assert!(got[3].0 >= at("2026-11-30T01:00:00Z"), "{:?}", got[3]);
    // Each notice is also an Event on the rollout.
    let reasons: Vec<String> = outcome
        .objects("events.k8s.io", "v1", "events")
        .iter()
        .filter(|e| e["involvedObject"]["name"] == rollout.as_str())
        .filter_map(|e| e["reason"].as_str().map(str::to_owned))
        .collect();
    for reason in [
        "Announcement",
        "AnnouncementChanged",
        "RolloutStarted",
        "WaveFinished",
    ] {
        assert!(reasons.iter().any(|r| r == reason), "{reason}: {reasons:?}");
    }
    // The Notifier remembers how far it delivered.
    let notifier = outcome.object("patchpilot.dev", "v1alpha1", "notifiers", "", "chat");
    assert_eq!(
        notifier["status"]["delivered"],
        json!([{"rollout": rollout, "through": notices.len()}]),
        "{notifier}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_version_changed_after_the_announcement_is_told_before_the_opening() {
    let case = case("{mode: Automatic}");
    let first = case.rollout_name("os");
    let outcome = case
        .at(
            "30h",
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
    let got = accepted(&outcome);
    let notices = each_once(&got);
    numbered_in_order(&notices);
    let of = |rollout: &str| -> Vec<&str> {
        notices
            .iter()
            .filter(|(id, _)| id.starts_with(&format!("{rollout}/")))
            .map(|(_, k)| k.as_str())
            .collect()
    };
    assert_eq!(of(&first), ["Announcement", "Superseded"], "{notices:?}");
    let withdrawn = got.iter().find(|n| n.2 == "Superseded").unwrap();
    assert!(
        withdrawn
            .3
            .contains("its announcement of v2 at 01:00 UTC on Mon 2026-11-30")
            && withdrawn.3.contains("no longer holds"),
        "{withdrawn:?}"
    );
    let second = notices
        .iter()
        .map(|(id, _)| id.rsplit_once('/').unwrap().0)
        .find(|r| *r != first)
        .unwrap()
        .to_owned();
    let told = of(&second);
    assert_eq!(told[0], "Announcement", "{told:?}");
    assert_eq!(told.last(), Some(&"Succeeded"), "{told:?}");
    // The new announcement follows the withdrawal at once, before the opening.
    let renewed = got.iter().find(|n| n.1 == format!("{second}/1")).unwrap();
    assert!(renewed.0 >= withdrawn.0 && renewed.0 < at("2026-11-30T01:00:00Z"));
    assert!(
        renewed
            .3
            .contains("v3 will start at 01:00 UTC on Mon 2026-11-30"),
        "{renewed:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn restarts_and_api_faults_neither_lose_nor_reorder_a_notice() {
    let clean = case("{mode: Automatic}").run().await;
    let expected = each_once(&accepted(&clean));
    assert!(expected.len() >= 9, "{expected:?}");
    for (seed, faults) in [
        (1, "operatorRestarts: {everyWrites: 7}"),
        (
            2,
            "api: [{user: patchpilot, errorRate: 0.1, conflictRate: 0.1}]",
        ),
    ] {
        let outcome = case("{mode: Automatic}")
            .scenario(&format!("seed: {seed}\nfaults: {{{faults}}}"))
            .run()
            .await;
        outcome.check(&[Rules::new("os", 1)]);
        let got = accepted(&outcome);
        let notices = each_once(&got);
        numbered_in_order(&notices);
        assert_eq!(notices, expected, "{faults}");
        // Repeats are allowed, as the at-least-once rule says, but few.
        assert!(got.len() <= notices.len() + 3, "{faults}: {got:#?}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_destination_down_for_an_hour_costs_the_rollout_nothing() {
    let up = case("{mode: Automatic}").run().await;
    // Down from Monday 01:00 to 02:00, while the rollout runs; the run goes on past it.
    let down = case("{mode: Automatic}")
        .scenario(
            "
receivers: [{name: chat, down: [{status: 503, after: 49h, before: 50h}]}]
end: {after: 51h, rolloutsFinished: false}
",
        )
        .run()
        .await;
    down.check(&[Rules::new("os", 1)]);
    let finished = |outcome: &Outcome| outcome.rollout("os")["status"]["completedAt"].clone();
    assert_eq!(finished(&down), finished(&up), "the rollout did not wait");
    let notices = each_once(&accepted(&down));
    assert_eq!(notices, each_once(&accepted(&up)));
    // What the hour held back was delivered once it came back, in order.
    let got = accepted(&down);
    let back: Vec<_> = got
        .iter()
        .filter(|n| n.0 >= at("2026-11-30T02:00:00Z"))
        .collect();
    assert!(back.len() >= 5, "{got:#?}");
    assert!(
        back[0].0 < at("2026-11-30T02:06:00Z"),
        "delivered within the back-off after it came back: {:?}",
        back[0]
    );
    let refused = down
        .received("chat")
        .iter()
        .filter(|r| r["status"] == 503)
        .count();
    assert!(refused >= 3, "retried while down: {refused}");
    // Meanwhile the Notifier said it was failing.
    let failing = down
        .operator_writes()
        .filter(|e| e["objectRef"]["resource"] == "notifiers")
        .any(|e| e["requestObject"]["status"]["failing"].is_object());
    assert!(failing, "the Notifier's status said it was failing");
}

#[tokio::test(start_paused = true)]
async fn a_destination_that_keeps_failing_holds_up_no_other() {
    let alone = case("{mode: Automatic}").run().await;
    let pager = "
apiVersion: v1
kind: Secret
metadata: {name: pager-webhook, namespace: patchpilot-system}
stringData: {address: 'http://pager.receiver.sandbox/alert'}
---
apiVersion: patchpilot.dev/v1alpha1
kind: Notifier
metadata: {name: pager}
spec: {type: CloudEvents, secretRef: {name: pager-webhook}}
";
    let mut both = case_to("{mode: Automatic}", "[chat, pager]").scenario(
        "receivers: [{name: chat}, {name: pager, down: [{status: 500, after: 0s, before: 100h}]}]",
    );
    for object in pager.split("---") {
        both = both.object(object);
    }
    let outcome = both.run().await;
    outcome.check(&[Rules::new("os", 1)]);
    // The chat got the same notices at the same instants as when it was alone.
    let times = |o: &Outcome| -> Vec<(Timestamp, String)> {
        accepted(o).into_iter().map(|(t, id, ..)| (t, id)).collect()
    };
    assert_eq!(times(&outcome), times(&alone));
    let paged = outcome.received("pager");
    assert!(
        paged.len() >= 3 && paged.iter().all(|r| r["status"] == 500),
        "the pager was tried, and never up: {paged:?}"
    );
    // The policy says which of its Notifiers fails.
    let policy = outcome.object("patchpilot.dev", "v1alpha1", "patchpolicies", "", "os");
    let notifiers = &policy["status"]["notifiers"];
    assert_eq!(notifiers[0]["name"], "chat");
    assert_eq!(notifiers[0]["ready"], true, "{notifiers}");
    assert_eq!(notifiers[1]["name"], "pager");
    assert_eq!(notifiers[1]["ready"], false, "{notifiers}");
    assert!(
        notifiers[1]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("failing since ") && m.contains("answered 500")),
        "{notifiers}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_notifier_without_its_secret_says_so_and_the_rollout_goes_on() {
    let outcome = Case::new()
        .scenario("receivers: [{name: chat}]\nend: {after: 3d}")
        .object(MONDAYS)
        .object(CHAT.split("---").nth(1).unwrap())
        .node_policy(
            "os",
            "spec: {maintenanceWindow: mondays, notifications: {notifiers: [chat]}}",
        )
        .run()
        .await;
    assert_eq!(outcome.phase("os"), "Succeeded");
    assert!(outcome.received("chat").is_empty());
    let notifier = outcome.object("patchpilot.dev", "v1alpha1", "notifiers", "", "chat");
    let ready = notifier["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == "Ready"))
        .cloned()
        .unwrap_or_else(|| panic!("{notifier}"));
    assert_eq!(ready["status"], "False", "{ready}");
    assert_eq!(ready["reason"], "SecretMissing", "{ready}");
    assert!(
        ready["message"]
            .as_str()
            .unwrap()
            .contains("Secret patchpilot-system/chat-webhook does not exist"),
        "{ready}"
    );
    let policy = outcome.object("patchpilot.dev", "v1alpha1", "patchpolicies", "", "os");
    assert_eq!(policy["status"]["notifiers"][0]["ready"], false, "{policy}");
}
