//! A target's own story: the events recorded on the Node or workload itself (with the
//! rollout as related object), so that `kubectl describe node general-1` tells what
//! patchpilot did to it — draining and what holds the drain, the updater started and
//! finished, the reboot, back Ready, uncordoned, updated, failed or rolled back — without
//! reading the rollout.
//!
//! They follow from two statuses (what the targets in progress did between them) and the
//! events the decision made of targets that finished, so the step machine stays as it is.

use super::{Action, Event, InProgress, Status};
use crate::{rollout::Step, target::TargetId};

/// The reasons of the rollout's events about a target that finished, told on the target too.
const FINISHED: [&str; 4] = [
    "TargetUpdated",
    "TargetFailed",
    "TargetRolledBack",
    "RollbackFailed",
];

/// The events to record on targets for a decision of rollout `rollout` that went from
/// `previous` to `next` and made `events` on the rollout.
pub(super) fn target_story(
    rollout: &str,
    previous: &Status,
    next: &Status,
    events: &[Event],
) -> Vec<Event> {
    let mut story = Vec::new();
    for event in events {
        if let Some(target) = &event.target
            && !event.on_target
            && FINISHED.contains(&event.reason.as_str())
        {
            story.push(Event {
                target: Some(target.clone()),
                on_target: true,
                message: format!("PatchRollout {rollout}: {}", event.message),
                ..event.clone()
            });
        }
    }
    for now in &next.in_progress {
        let before = previous
            .in_progress
            .iter()
            .find(|p| p.target == now.target && p.action == now.action);
        let told = |reason: &str, what: String| told(rollout, now, reason, what);
        if before.is_none() {
            // Taken: locked (and, a node, cordoned); or a rollback under the lock it kept.
            let other_action = previous.in_progress.iter().any(|p| p.target == now.target);
            let (reason, what) = match (other_action, now.target.as_str().starts_with("Node/")) {
                (true, _) => ("RollingBack", "rolling back under the lock it kept"),
                (false, true) => ("Locked", "locked and cordoned"),
                (false, false) => ("Locked", "locked"),
            };
            story.push(told(reason, what.into()));
        }
        // A drain that now waits on something (a budget) says on what, once.
        let newly_waiting = waits(now) && !before.is_some_and(waits);
        match before.map(|p| p.step) {
            Some(step) if step == now.step => {
                if newly_waiting {
                    story.push(told("DrainWaiting", message(now)));
                }
                continue;
            }
            Some(Step::Updating) => {
                story.push(told("UpdaterFinished", "the updater finished".into()))
            }
            Some(Step::Rebooting) => {
                story.push(told("NodeReady", "back Ready after its reboot".into()));
            }
            Some(Step::Uncordoning) => story.push(told("Uncordoned", "uncordoned".into())),
            _ => {}
        }
        let entered = match now.step {
            Step::Draining => Some(("Draining", "cordoned, draining".to_owned())),
            Step::Updating => Some(("UpdaterStarted", message(now))),
            Step::Rebooting => Some(("Rebooting", message(now))),
            Step::RollingOut => Some(("RollingOut", message(now))),
            Step::Verifying => Some(("Verifying", message(now))),
            Step::Locked
            | Step::Cordoning
            | Step::Uncordoning
            | Step::Soaking
            | Step::Releasing
            | Step::AwaitingRollback => None,
        };
        if let Some((reason, what)) = entered {
            story.push(told(reason, what));
        }
        if newly_waiting {
            story.push(told("DrainWaiting", message(now)));
        }
    }
    story
}

/// Whether a target is draining and waits on something (a PodDisruptionBudget).
fn waits(progress: &InProgress) -> bool {
    progress.step == Step::Draining
        && progress
            .message
            .as_deref()
            .is_some_and(|m| m.starts_with("waiting: "))
}

fn message(progress: &InProgress) -> String {
    progress
        .message
        .clone()
        .unwrap_or_else(|| format!("{:?}", progress.step).to_lowercase())
}

/// An event on the target of `progress`, saying which rollout did it and whether it is a
/// rollback.
fn told(rollout: &str, progress: &InProgress, reason: &str, what: String) -> Event {
    let rollback = match progress.action {
        Action::Apply => "",
        Action::Rollback => "rollback: ",
    };
    Event {
        warning: false,
        reason: reason.into(),
        action: reason.into(),
        message: format!("PatchRollout {rollout}: {rollback}{what}"),
        target: Some(TargetId::clone(&progress.target)),
        on_target: true,
    }
}

#[cfg(test)]
mod tests {
    use jiff::Timestamp;

    use super::target_story;
    use crate::{
        machine::{Action, Event, InProgress, Status},
        rollout::Step,
        target::TargetId,
    };

    fn at(step: Step, message: Option<&str>) -> Status {
        Status {
            in_progress: vec![InProgress {
                target: TargetId::node("general-1"),
                action: Action::Apply,
                step,
                since: Timestamp::UNIX_EPOCH,
                message: message.map(str::to_owned),
            }],
            ..Status::default()
        }
    }

    fn reasons(events: &[Event]) -> Vec<(&str, &str)> {
        events
            .iter()
            .map(|e| (e.reason.as_str(), e.message.as_str()))
            .collect()
    }

    #[test]
    fn a_node_tells_each_step_once() {
        let none = Status::default();
        let locked = at(Step::Locked, None);
        let draining = at(Step::Draining, Some("evicting 1 pod(s): shop/web-1"));
        let held = at(
            Step::Draining,
            Some(
                "waiting: PodDisruptionBudget shop/web allows 0 disruptions; 1 pod(s): shop/web-1",
            ),
        );
        let updating = at(Step::Updating, Some("the updater is running"));
        let rebooting = at(Step::Rebooting, Some("waiting for a new boot ID"));
        let uncordoning = at(Step::Uncordoning, None);
        let verifying = at(Step::Verifying, Some("health checks"));
        assert_eq!(
            reasons(&target_story("os-1", &none, &locked, &[])),
            [("Locked", "PatchRollout os-1: locked and cordoned")]
        );
        assert_eq!(
            reasons(&target_story("os-1", &locked, &draining, &[])),
            [("Draining", "PatchRollout os-1: cordoned, draining")]
        );
        assert_eq!(
            reasons(&target_story("os-1", &draining, &held, &[])),
            [(
                "DrainWaiting",
                "PatchRollout os-1: waiting: PodDisruptionBudget shop/web allows 0 disruptions; 1 pod(s): shop/web-1"
            )]
        );
        assert_eq!(target_story("os-1", &held, &held, &[]), [], "said once");
        assert_eq!(
            reasons(&target_story("os-1", &held, &updating, &[])),
            [(
                "UpdaterStarted",
                "PatchRollout os-1: the updater is running"
            )]
        );
        assert_eq!(
            reasons(&target_story("os-1", &updating, &rebooting, &[])),
            [
                ("UpdaterFinished", "PatchRollout os-1: the updater finished"),
                ("Rebooting", "PatchRollout os-1: waiting for a new boot ID")
            ]
        );
        assert_eq!(
            reasons(&target_story("os-1", &rebooting, &uncordoning, &[])),
            [(
                "NodeReady",
                "PatchRollout os-1: back Ready after its reboot"
            )]
        );
        assert_eq!(
            reasons(&target_story("os-1", &uncordoning, &verifying, &[])),
            [
                ("Uncordoned", "PatchRollout os-1: uncordoned"),
                ("Verifying", "PatchRollout os-1: health checks")
            ]
        );
        let story = target_story("os-1", &uncordoning, &verifying, &[]);
        assert!(
            story
                .iter()
                .all(|e| e.on_target && e.target == Some(TargetId::node("general-1")))
        );
    }

    #[test]
    fn a_finished_target_is_told_on_itself_too() {
        let updated = Event {
            warning: false,
            reason: "TargetUpdated".into(),
            action: "TargetUpdated".into(),
            message: "Node/general-1 updated".into(),
            target: Some(TargetId::node("general-1")),
            on_target: false,
        };
        let wave = Event {
            reason: "WaveStarted".into(),
            target: None,
            ..updated.clone()
        };
        let story = target_story(
            "os-1",
            &Status::default(),
            &Status::default(),
            &[updated, wave],
        );
        assert_eq!(
            reasons(&story),
            [("TargetUpdated", "PatchRollout os-1: Node/general-1 updated")]
        );
        assert!(story[0].on_target);
    }

    #[test]
    fn a_rollback_says_so() {
        let applied = at(Step::Verifying, None);
        let mut rebooting = at(Step::Rebooting, Some("waiting for a new boot ID"));
        rebooting.in_progress[0].action = Action::Rollback;
        let story = target_story("os-1", &applied, &rebooting, &[]);
        assert_eq!(
            reasons(&story),
            [
                (
                    "RollingBack",
                    "PatchRollout os-1: rollback: rolling back under the lock it kept"
                ),
                (
                    "Rebooting",
                    "PatchRollout os-1: rollback: waiting for a new boot ID"
                )
            ]
        );
        let fresh = target_story("os-1", &Status::default(), &rebooting, &[]);
        assert_eq!(
            reasons(&fresh)[0],
            ("Locked", "PatchRollout os-1: rollback: locked and cordoned")
        );
    }
}
