//! What a run prints as it goes, and the summary it ends with.
//!
//! Every line starts with the sandbox's time in one format, `[2026-11-28 00:05:37 UTC]`, and
//! every instant inside a line is written the same way. A line is said only when it says
//! something new: a rollout's phase, wave or counts changed, or its cause when that changed
//! (a rollback that ends does not repeat why it started); a window opened or closed.
//!
//! With `verbose`, each target's own story follows: the Events the operator records on a Node
//! or workload with the rollout as related object (locked and cordoned, draining and what
//! holds it, the updater started and finished, rebooting, back Ready, uncordoned, verified,
//! updated, failed, rolled back). A repeated occurrence of an event (its series growing) is
//! not said again.
//!
//! Every notice sent to one of the scenario's receivers is said too, verbose or not, stamped
//! with the instant it arrived: it is what would have been sent to a chat or a webhook
//! (`notice to chat: WaveStarted os-1234/3: os-1234: wave canary (1 of 3) started`), a few
//! lines a rollout; a retry is said again, with how the receiver answered when it was down.
//! Other requests to a receiver (a health check pointed at one, every few seconds) are said
//! only with `verbose`.

use std::{collections::BTreeMap, sync::Arc};

use jiff::Timestamp;
use patchpilot_engine::rollout::Phase;
use serde_json::Value;
use tokio::sync::broadcast::error::RecvError;

use super::{say, say_at};
use crate::{
    network::receiver::Received,
    resources::ResourceType,
    store::{Filter, Store, WatchFrom, WatchItem},
};

/// An instant as every progress line writes it: `2026-11-28 00:05:37 UTC`.
pub fn stamp(at: Timestamp) -> String {
    at.strftime("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// An instant as a status writes it (RFC 3339), as [`stamp`] writes it; the text as it is
/// when it is not an instant.
fn instant(value: &Value) -> Option<String> {
    let text = value.as_str()?;
    Some(
        text.parse::<Timestamp>()
            .map(stamp)
            .unwrap_or_else(|_| text.to_owned()),
    )
}

/// What has been said so far, so that nothing is said twice.
#[derive(Debug, Default)]
pub struct Lines {
    verbose: bool,
    /// The last line said about each object (`Kind/name`), or about each target in the story
    /// of a rollout (`rollout target`).
    last: BTreeMap<String, String>,
    /// The last cause said for each rollout (why it halted).
    causes: BTreeMap<String, String>,
}

impl Lines {
    /// Nothing said yet; with `verbose`, the targets' stories are told too.
    pub fn new(verbose: bool) -> Self {
        Lines {
            verbose,
            ..Lines::default()
        }
    }

    /// The line to say, if any, for a watch event (`ADDED`, `MODIFIED`, `DELETED`) of a
    /// PatchRollout, a MaintenanceWindow or a core Event.
    pub fn on(&mut self, change: &str, object: &Value) -> Option<String> {
        let kind = object["kind"].as_str().unwrap_or("");
        let name = object["metadata"]["name"].as_str().unwrap_or("");
        let key = format!("{kind}/{name}");
        if change == "DELETED" {
            self.last.remove(&key);
            self.causes.remove(&key);
            return None;
        }
        match kind {
            "Event" => {
                // A series growing (MODIFIED) is the same thing again.
                if !self.verbose || change != "ADDED" {
                    return None;
                }
                let (key, line) = story_line(object)?;
                self.say_new(key, line)
            }
            "MaintenanceWindow" => self.say_new(key, window_line(object)?),
            "PatchRollout" => self.rollout(key, object),
            _ => None,
        }
    }

    /// `line`, unless it is the last one said under `key`.
    fn say_new(&mut self, key: String, line: String) -> Option<String> {
        if self.last.get(&key) == Some(&line) {
            return None;
        }
        self.last.insert(key, line.clone());
        Some(line)
    }

    /// A rollout's line: its state, and its cause when the cause is new.
    fn rollout(&mut self, key: String, rollout: &Value) -> Option<String> {
        let (state, cause) = rollout_line(rollout);
        let said_cause = self.causes.get(&key).cloned().unwrap_or_default();
        let new_cause = !cause.is_empty() && cause != said_cause;
        if self.last.get(&key) == Some(&state) && !new_cause {
            return None;
        }
        self.last.insert(key.clone(), state.clone());
        if new_cause {
            self.causes.insert(key, cause.clone());
            Some(format!("{state} ({cause})"))
        } else {
            Some(state)
        }
    }
}

/// A rollout's state in one line (phase, wave, progress, failures), and why it halted
/// (empty when it has not). A rollout the operator has not looked at yet is said to exist,
/// with the version it carries.
fn rollout_line(rollout: &Value) -> (String, String) {
    let name = rollout["metadata"]["name"].as_str().unwrap_or("");
    let policy = rollout["spec"]["policy"].as_str().unwrap_or("");
    let status = &rollout["status"];
    let Some(phase) = status["phase"].as_str() else {
        let version = rollout["spec"]["patch"]["version"].as_str().unwrap_or("?");
        return (
            format!("rollout {name} ({policy}): created for version {version}"),
            String::new(),
        );
    };
    let wave = match status["wave"]["name"].as_str() {
        Some(w) => format!(
            ", wave {w} ({}/{})",
            status["wave"]["index"], status["wave"]["total"]
        ),
        None => String::new(),
    };
    let failed = match status["targets"]["failed"].as_u64() {
        Some(failed) if failed > 0 => format!(", {failed} failed"),
        _ => String::new(),
    };
    let cause = match (status["halt"]["reason"].as_str(), status["failures"].get(0)) {
        (Some(halt), Some(failure)) => format!(
            "{halt}: {} {}: {}",
            failure["target"].as_str().unwrap_or(""),
            failure["reason"].as_str().unwrap_or(""),
            failure["message"].as_str().unwrap_or("")
        ),
        (Some(halt), None) => halt.to_owned(),
        (None, _) => String::new(),
    };
    let state = format!(
        "rollout {name} ({policy}): {phase}{wave}, {} updated{failed}",
        status["progress"].as_str().unwrap_or("0/0"),
    );
    (state, cause)
}

/// One line on a maintenance window, once the operator has said whether it is open.
fn window_line(window: &Value) -> Option<String> {
    let status = &window["status"];
    let name = window["metadata"]["name"].as_str().unwrap_or("");
    match status["open"].as_bool()? {
        true => Some(format!(
            "maintenance window {name} opens, until {}",
            instant(&status["currentWindow"]["end"]).unwrap_or_else(|| "?".into())
        )),
        false => Some(format!(
            "maintenance window {name} is closed; next opening {}",
            instant(&status["nextWindow"]["start"])
                .unwrap_or_else(|| "none within 400 days".into())
        )),
    }
}

/// A line of a target's story, from an Event the operator recorded on the target with a
/// rollout as related object, and the key under which it is said: `  Node/general-1:
/// cordoned, draining (workers-os-e74c7179)`. Any other event is no part of it.
fn story_line(event: &Value) -> Option<(String, String)> {
    let related = &event["related"];
    if related["kind"].as_str() != Some("PatchRollout") {
        return None;
    }
    let rollout = related["name"].as_str()?;
    let regarding = &event["involvedObject"];
    let kind = regarding["kind"].as_str()?;
    let name = regarding["name"].as_str()?;
    let target = match regarding["namespace"].as_str() {
        Some(namespace) if kind != "Node" && !namespace.is_empty() => {
            format!("{kind}/{namespace}/{name}")
        }
        _ => format!("{kind}/{name}"),
    };
    // The note names the rollout after the change reference, if any, and sometimes the
    // target again; the line names each once.
    let note = event["message"].as_str().unwrap_or("");
    let (change_ref, rest) = match note.split_once("] ") {
        Some((reference, rest)) if note.starts_with('[') => (&note[..reference.len() + 2], rest),
        _ => ("", note),
    };
    let rest = rest
        .strip_prefix(&format!("PatchRollout {rollout}: "))
        .unwrap_or(rest);
    let rest = rest.strip_prefix(&format!("{target} ")).unwrap_or(rest);
    let note = format!("{change_ref}{rest}");
    let warning = match event["type"].as_str() {
        Some("Warning") => "warning: ",
        _ => "",
    };
    Some((
        format!("{rollout} {target}"),
        format!("  {target}: {warning}{note} ({rollout})"),
    ))
}

/// The closing line: how many rollouts there are and how each ended, every terminal phase
/// counted (`3 rollouts: 2 succeeded, 1 rolled back, 0 failed, 0 superseded`), then those
/// that have not ended, by phase.
pub fn summary(report: &Value) -> String {
    let rollouts = report["rollouts"].as_array().cloned().unwrap_or_default();
    let (mut succeeded, mut rolled_back, mut failed, mut superseded) = (0, 0, 0, 0);
    let mut unfinished: BTreeMap<String, usize> = BTreeMap::new();
    for rollout in &rollouts {
        let phase = serde_json::from_value::<Phase>(rollout["phase"].clone());
        match phase {
            Ok(Phase::Succeeded) => succeeded += 1,
            Ok(Phase::RolledBack) => rolled_back += 1,
            Ok(Phase::Failed) => failed += 1,
            Ok(Phase::Superseded) => superseded += 1,
            Ok(
                phase @ (Phase::Pending
                | Phase::AwaitingApproval
                | Phase::Scheduled
                | Phase::Progressing
                | Phase::Paused
                | Phase::RollingBack),
            ) => *unfinished.entry(format!("{phase:?}")).or_default() += 1,
            Err(_) => {
                let shown = rollout["phase"].as_str().unwrap_or("unknown").to_owned();
                *unfinished.entry(shown).or_default() += 1;
            }
        }
    }
    let count = rollouts.len();
    let noun = if count == 1 { "rollout" } else { "rollouts" };
    let mut line = format!(
        "{count} {noun}: {succeeded} succeeded, {rolled_back} rolled back, {failed} failed, \
         {superseded} superseded"
    );
    if !unfinished.is_empty() {
        let total: usize = unfinished.values().sum();
        let phases: Vec<String> = unfinished
            .iter()
            .map(|(phase, n)| format!("{n} {phase}"))
            .collect();
        line.push_str(&format!("; {total} not finished ({})", phases.join(", ")));
    }
    line
}

/// Says the changes of rollouts and windows and the requests to receivers as they happen,
/// and with `verbose` the targets' stories, until the store goes.
pub(super) async fn follow(
    store: Arc<Store>,
    received: tokio::sync::broadcast::Receiver<Received>,
    verbose: bool,
) {
    let mut received = Some(received);
    let watch = |resource: Option<Arc<ResourceType>>| {
        resource.and_then(|r| store.watch(&r, Filter::default(), WatchFrom::Current).ok())
    };
    let (Some(mut rollouts), Some(mut windows)) = (
        watch(super::rollouts_resource(&store)),
        watch(store.resource("patchpilot.dev", "v1alpha1", "maintenancewindows")),
    ) else {
        return;
    };
    // Events are watched only when they are told.
    let mut events = if verbose {
        watch(store.resource("", "v1", "events"))
    } else {
        None
    };
    let mut lines = Lines::new(verbose);
    let mut pending: Vec<WatchItem> = std::mem::take(&mut rollouts.initial);
    pending.append(&mut windows.initial);
    loop {
        for item in pending.drain(..) {
            if let WatchItem::Event(change, object) = item
                && let Some(line) = lines.on(change, &object.to_value())
            {
                say(&store, &line);
            }
        }
        let from_events = async {
            match &mut events {
                Some(events) => events.rx.recv().await,
                None => std::future::pending().await,
            }
        };
        let to_receivers = async {
            match &mut received {
                Some(received) => received.recv().await,
                None => std::future::pending().await,
            }
        };
        let next = tokio::select! {
            item = rollouts.rx.recv() => item,
            item = windows.rx.recv() => item,
            item = from_events => item,
            request = to_receivers => {
                match request {
                    Ok(request) if verbose || request.is_notice() => {
                        say_at(request.time, &request.line());
                    }
                    Ok(_) => {}
                    Err(RecvError::Lagged(missed)) => {
                        say(&store, &format!("({missed} requests to receivers not said)"));
                    }
                    // The sandbox is going, and its receivers with it.
                    Err(RecvError::Closed) => received = None,
                }
                continue;
            }
        };
        match next {
            Some(item) => pending.push(item),
            None => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::{Lines, stamp, summary};

    fn rollout(phase: Option<&str>, progress: &str, halt: Option<&str>) -> Value {
        let mut status = json!({
            "wave": {"name": "canary", "index": 1, "total": 2},
            "progress": progress,
            "targets": {"failed": 0},
        });
        if let Some(phase) = phase {
            status["phase"] = json!(phase);
        }
        if let Some(halt) = halt {
            status["halt"] = json!({"reason": halt});
            status["failures"] = json!([{
                "target": "Deployment/shop/web", "reason": "CrashLoopBackOff", "message": "exit 1"
            }]);
            status["targets"]["failed"] = json!(1);
        }
        json!({
            "kind": "PatchRollout",
            "metadata": {"name": "web-1"},
            "spec": {"policy": "web", "patch": {"version": "1.2"}},
            "status": if phase.is_some() { status } else { json!({}) },
        })
    }

    fn event(message: &str, kind: &str, series: bool) -> Value {
        let mut event = json!({
            "kind": "Event",
            "metadata": {"name": "general-1.1", "namespace": "default"},
            "involvedObject": {"kind": "Node", "name": "general-1"},
            "related": {"kind": "PatchRollout", "name": "os-1"},
            "reason": "Draining",
            "message": message,
            "type": kind,
        });
        if series {
            event["series"] = json!({"count": 2});
        }
        event
    }

    #[test]
    fn instants_are_written_one_way_with_their_zone() {
        let at = "2026-11-28T00:05:37.250Z".parse().unwrap();
        assert_eq!(stamp(at), "2026-11-28 00:05:37 UTC");
    }

    #[test]
    fn a_rollout_is_said_when_it_changes_and_its_cause_once() {
        let mut lines = Lines::new(false);
        assert_eq!(
            lines.on("ADDED", &rollout(None, "0/0", None)).as_deref(),
            Some("rollout web-1 (web): created for version 1.2")
        );
        let progressing = rollout(Some("Progressing"), "0/2", None);
        assert_eq!(
            lines.on("MODIFIED", &progressing).as_deref(),
            Some("rollout web-1 (web): Progressing, wave canary (1/2), 0/2 updated")
        );
        // A change of something the line does not show says nothing new.
        assert_eq!(lines.on("MODIFIED", &progressing), None);
        assert_eq!(
            lines
                .on(
                    "MODIFIED",
                    &rollout(Some("RollingBack"), "0/2", Some("CanaryFailed"))
                )
                .as_deref(),
            Some(
                "rollout web-1 (web): RollingBack, wave canary (1/2), 0/2 updated, 1 failed \
                 (CanaryFailed: Deployment/shop/web CrashLoopBackOff: exit 1)"
            )
        );
        // The rollback ends: the phase is new, the cause is not.
        assert_eq!(
            lines
                .on(
                    "MODIFIED",
                    &rollout(Some("RolledBack"), "0/2", Some("CanaryFailed"))
                )
                .as_deref(),
            Some("rollout web-1 (web): RolledBack, wave canary (1/2), 0/2 updated, 1 failed")
        );
    }

    #[test]
    fn a_window_says_its_instants_as_every_line_does() {
        let mut lines = Lines::new(false);
        let window = json!({
            "kind": "MaintenanceWindow",
            "metadata": {"name": "nights"},
            "status": {"open": false, "nextWindow": {"start": "2026-11-28T00:00:00Z"}},
        });
        assert_eq!(
            lines.on("ADDED", &window).as_deref(),
            Some("maintenance window nights is closed; next opening 2026-11-28 00:00:00 UTC")
        );
        assert_eq!(lines.on("MODIFIED", &window), None);
        let open = json!({
            "kind": "MaintenanceWindow",
            "metadata": {"name": "nights"},
            "status": {"open": true, "currentWindow": {"end": "2026-11-28T04:00:00Z"}},
        });
        assert_eq!(
            lines.on("MODIFIED", &open).as_deref(),
            Some("maintenance window nights opens, until 2026-11-28 04:00:00 UTC")
        );
    }

    #[test]
    fn the_story_of_a_target_is_told_only_when_verbose_and_once() {
        let draining = event(
            "[CHG-7] PatchRollout os-1: cordoned, draining",
            "Normal",
            false,
        );
        assert_eq!(Lines::new(false).on("ADDED", &draining), None);
        let mut lines = Lines::new(true);
        assert_eq!(
            lines.on("ADDED", &draining).as_deref(),
            Some("  Node/general-1: [CHG-7] cordoned, draining (os-1)")
        );
        // The series growing, or the same note again, is nothing new.
        assert_eq!(lines.on("MODIFIED", &event("x", "Normal", true)), None);
        assert_eq!(lines.on("ADDED", &draining), None);
        let failed = event(
            "PatchRollout os-1: Node/general-1 failed: the updater failed",
            "Warning",
            false,
        );
        assert_eq!(
            lines.on("ADDED", &failed).as_deref(),
            Some("  Node/general-1: warning: failed: the updater failed (os-1)")
        );
        // An event of the rollout itself, or of anything else, is no part of a story.
        let mut other = draining.clone();
        other["related"] = json!({"kind": "Node", "name": "general-1"});
        other["message"] = json!("something else");
        assert_eq!(lines.on("ADDED", &other), None);
    }

    #[test]
    fn a_workload_is_named_with_its_namespace() {
        let mut event = event("PatchRollout os-1: locked", "Normal", false);
        event["involvedObject"] = json!({"kind": "Deployment", "namespace": "shop", "name": "web"});
        assert_eq!(
            Lines::new(true).on("ADDED", &event).as_deref(),
            Some("  Deployment/shop/web: locked (os-1)")
        );
    }

    #[test]
    fn the_summary_counts_every_outcome() {
        let report = |phases: &[&str]| json!({"rollouts": phases.iter().map(|p| json!({"phase": p})).collect::<Vec<_>>()});
        assert_eq!(
            summary(&report(&["Succeeded", "RolledBack", "Succeeded"])),
            "3 rollouts: 2 succeeded, 1 rolled back, 0 failed, 0 superseded"
        );
        assert_eq!(
            summary(&report(&["Failed"])),
            "1 rollout: 0 succeeded, 0 rolled back, 1 failed, 0 superseded"
        );
        assert_eq!(
            summary(&report(&["Superseded", "Scheduled", "Paused", "Scheduled"])),
            "4 rollouts: 0 succeeded, 0 rolled back, 0 failed, 1 superseded; \
             3 not finished (1 Paused, 2 Scheduled)"
        );
        assert_eq!(
            summary(&report(&[])),
            "0 rollouts: 0 succeeded, 0 rolled back, 0 failed, 0 superseded"
        );
    }
}
