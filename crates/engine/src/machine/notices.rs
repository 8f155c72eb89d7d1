//! The notices of a decision (see [`crate::notify`]): what changed between the status
//! written last time and the new one, told in a sentence each, numbered in the rollout's
//! outbox when the policy asks for that kind; and the Kubernetes Events of the facts that no
//! transition event records yet, whether or not anyone is notified.

use jiff::{Timestamp, tz::TimeZone};

use super::{ConditionType, Event, Input, Status};
use crate::{
    notify::{Announced, NoticeKind},
    plan::Wave,
    rollout::Phase,
    target::TargetId,
    window::Interval,
};

/// What the decision found that the statuses alone do not say.
pub(super) struct Facts<'a> {
    /// The waves of the rollout, over its eligible targets.
    pub waves: &'a [Wave],
    /// The rollout is approved.
    pub approved: bool,
    /// When automatic approval comes, if it is delayed.
    pub approval_at: Option<Timestamp>,
}

/// One fact to tell.
struct Told {
    kind: NoticeKind,
    message: String,
    target: Option<TargetId>,
    opening: Option<Interval>,
}

impl Told {
    fn new(kind: NoticeKind, message: impl Into<String>) -> Self {
        Told {
            kind,
            message: message.into(),
            target: None,
            opening: None,
        }
    }
}

/// Records in `next.outbox` the notices of the change from `previous` to `next` that the
/// policy asks for, and returns the events of those facts that `events` (the decision's
/// events so far) does not record already, and when to look again: for an announcement
/// due, or the compliance deadline.
pub(super) fn record(
    input: &Input<'_>,
    previous: &Status,
    next: &mut Status,
    events: &[Event],
    facts: &Facts<'_>,
) -> (Vec<Event>, Option<Timestamp>) {
    let now = input.now;
    let mut told = Vec::new();
    let mut wake = announcement(input, previous, next, facts, &mut told);
    // Overdue is watched for only when someone is to be told: it is no transition of the
    // rollout, and a rollout waiting for a person must not wake for nothing.
    let watch_overdue = input.policy.notices.wants(NoticeKind::ComplianceOverdue);
    if watch_overdue && !previous.outbox.overdue_told && !next.phase.is_finished() {
        wake = wake.into_iter().chain(overdue_at(input)).min();
    }
    told.extend(transitions(input, previous, next, events, facts));
    next.outbox = previous.outbox.clone();
    let mut new_events = Vec::new();
    for fact in told {
        if fact.kind == NoticeKind::Announcement || fact.kind == NoticeKind::AnnouncementChanged {
            next.outbox.announced = fact.opening.map(|opening| Announced {
                opening,
                approval_needed: !facts.approved,
            });
        }
        if fact.kind == NoticeKind::ComplianceOverdue {
            next.outbox.overdue_told = true;
        }
        let reason = fact.kind.event_reason();
        let recorded = events
            .iter()
            .any(|e| e.reason == reason && (fact.target.is_none() || e.target == fact.target));
        if !recorded {
            new_events.push(Event {
                warning: fact.kind.warning(),
                reason: reason.to_owned(),
                action: reason.to_owned(),
                message: fact.message.clone(),
                target: fact.target.clone(),
                on_target: false,
            });
        }
        if input.policy.notices.wants(fact.kind) {
            next.outbox
                .push(fact.kind, now, fact.message, fact.target, fact.opening);
        }
    }
    (new_events, wake)
}

/// The announcement of a rollout that will start in a window opening, once the opening is
/// `announceBefore` away, and its follow-up when the opening moves or approval is given
/// before it. Returns when the announcement is due, while it is not yet.
fn announcement(
    input: &Input<'_>,
    previous: &Status,
    next: &Status,
    facts: &Facts<'_>,
    told: &mut Vec<Told>,
) -> Option<Timestamp> {
    let before = input.policy.notices.announce_before?;
    let window = input.window?;
    if input.rollout.patch.emergency || next.started_at.is_some() || next.phase.is_finished() {
        return None;
    }
    let opening = next.next_window?;
    let due = opening
        .start
        .checked_sub(before.signed())
        .unwrap_or(opening.start);
    if input.now < due {
        return Some(due);
    }
    let approval_needed = !facts.approved;
    let changed = match previous.outbox.announced {
        None => None,
        Some(said) if said.opening == opening && said.approval_needed == approval_needed => {
            return None;
        }
        Some(said) => Some(said),
    };
    let zone = window.time_zone();
    let when = at_opening(opening, zone);
    let plan = plan(input, facts);
    let (kind, message) = match changed {
        None => (
            NoticeKind::Announcement,
            format!(
                "{} {} will start {when}: {plan}{}",
                input.rollout.name,
                input.rollout.patch.version,
                approval(input, facts)
            ),
        ),
        Some(said) if said.opening != opening => (
            NoticeKind::AnnouncementChanged,
            format!(
                "{} moved from {} to {when}{}",
                input.rollout.name,
                at_opening(said.opening, zone),
                approval(input, facts)
            ),
        ),
        Some(_) => (
            NoticeKind::AnnouncementChanged,
            format!(
                "{} is approved: it starts {when} without waiting for anyone",
                input.rollout.name
            ),
        ),
    };
    told.push(Told {
        opening: Some(opening),
        ..Told::new(kind, message)
    });
    None
}

/// An opening in the window's zone, and in UTC when that is another:
/// `at 01:00 CET on Sat 2026-11-28 (00:00 UTC), until 05:00 CET`.
fn at_opening(opening: Interval, zone: &TimeZone) -> String {
    let start = opening.start.to_zoned(zone.clone());
    let end = opening.end.to_zoned(zone.clone());
    let utc = if zone.iana_name() == Some("UTC") {
        String::new()
    } else {
        format!(
            " ({} UTC)",
            opening.start.to_zoned(TimeZone::UTC).strftime("%H:%M")
        )
    };
    let until = if end.date() == start.date() {
        end.strftime("%H:%M %Z").to_string()
    } else {
        end.strftime("%a %Y-%m-%d %H:%M %Z").to_string()
    };
    format!(
        "at {} on {}{utc}, until {until}",
        start.strftime("%H:%M %Z"),
        start.strftime("%a %Y-%m-%d"),
    )
}

/// `12 targets in 3 waves: canary 1, stage-1 5, full 6`.
fn plan(input: &Input<'_>, facts: &Facts<'_>) -> String {
    let total: usize = facts.waves.iter().map(|w| w.end - w.start).sum();
    let waves: Vec<String> = facts
        .waves
        .iter()
        .map(|w| format!("{} {}", w.name, w.end - w.start))
        .collect();
    let targets = if total == 1 { "target" } else { "targets" };
    let class = format!("{:?}", input.rollout.patch.classification);
    match facts.waves.len() {
        0 => format!("{class}, no target to patch"),
        1 => format!("{class}, {total} {targets} in one wave"),
        n => format!(
            "{class}, {total} {targets} in {n} waves: {}",
            waves.join(", ")
        ),
    }
}

/// `; needs approval: kubectl patchpilot approve X`, or when it approves itself.
fn approval(input: &Input<'_>, facts: &Facts<'_>) -> String {
    match (facts.approved, facts.approval_at) {
        (true, _) => String::new(),
        (false, Some(at)) => format!("; approved automatically at {at}"),
        (false, None) => format!(
            "; needs approval: kubectl patchpilot approve {}",
            input.rollout.name
        ),
    }
}

/// The facts of the transition from `previous` to `next`.
fn transitions(
    input: &Input<'_>,
    previous: &Status,
    next: &Status,
    events: &[Event],
    facts: &Facts<'_>,
) -> Vec<Told> {
    let name = &input.rollout.name;
    let mut told = Vec::new();
    let entered = |phase: Phase| previous.phase != phase && next.phase == phase;
    if entered(Phase::AwaitingApproval) {
        let how = match facts.approval_at {
            Some(at) => format!(
                "approved automatically at {at}, or now with: kubectl patchpilot approve {name}"
            ),
            None => format!("kubectl patchpilot approve {name}"),
        };
        told.push(Told::new(
            NoticeKind::ApprovalNeeded,
            format!("{name} waits for approval: {how}"),
        ));
    }
    if previous.started_at.is_none() && next.started_at.is_some() {
        let emergency = if input.rollout.patch.emergency {
            "emergency patch, outside any window: "
        } else {
            ""
        };
        told.push(Told::new(
            NoticeKind::Started,
            format!(
                "{name} started: {emergency}{} {}",
                input.rollout.patch.version,
                plan(input, facts)
            ),
        ));
    }
    // A wave finished when the rollout moved past it, or succeeded with it.
    if let Some(wave) = &previous.wave
        && previous.started_at.is_some()
        && next.phase != Phase::RollingBack
        && (next.wave.as_ref().is_some_and(|w| w.index > wave.index) || entered(Phase::Succeeded))
    {
        told.push(Told::new(
            NoticeKind::WaveFinished,
            format!(
                "{name}: wave {} ({} of {}) finished",
                wave.name, wave.index, wave.total
            ),
        ));
    }
    for event in events {
        match event.reason.as_str() {
            "WaveStarted" => told.push(Told::new(
                NoticeKind::WaveStarted,
                format!("{name}: {}", event.message),
            )),
            "TargetFailed" => told.push(Told {
                target: event.target.clone(),
                ..Told::new(
                    NoticeKind::TargetFailed,
                    format!("{name}: {}", event.message),
                )
            }),
            _ => {}
        }
    }
    let promotion = |s: &Status| {
        s.phase == Phase::Paused
            && s.conditions
                .iter()
                .any(|c| c.kind == ConditionType::Reconciling && c.reason == "AwaitingPromotion")
    };
    if promotion(next) && !promotion(previous) {
        told.push(Told::new(
            NoticeKind::PromotionAwaited,
            format!("{name}: the canary is healthy; go on with: kubectl patchpilot promote {name}"),
        ));
    } else if entered(Phase::Paused) && !promotion(next) {
        told.push(Told::new(
            NoticeKind::Paused,
            format!("{name} paused: {}", next.message),
        ));
    }
    let aborted = |s: &Status| {
        s.halt
            .as_ref()
            .is_some_and(|h| h.reason == super::HaltReason::Aborted)
    };
    if aborted(next) && !aborted(previous) {
        told.push(Told::new(
            NoticeKind::Aborted,
            format!("{name} aborted: {}", next.message),
        ));
    }
    for (phase, kind) in [
        (Phase::RollingBack, NoticeKind::RollbackStarted),
        (Phase::RolledBack, NoticeKind::RollbackFinished),
        (Phase::Succeeded, NoticeKind::Succeeded),
        (Phase::Failed, NoticeKind::Failed),
        (Phase::Superseded, NoticeKind::Superseded),
    ] {
        if entered(phase) {
            let mut message = format!("{name}: {}", next.message);
            // A newer version replaces a rollout that was announced and has not started:
            // the announcement no longer holds (the newer rollout announces itself).
            if let (Phase::Superseded, Some(said), None) =
                (phase, previous.outbox.announced, next.started_at)
            {
                let zone = input
                    .window
                    .map_or(TimeZone::UTC, |w| w.time_zone().clone());
                message.push_str(&format!(
                    "; its announcement of {} {} no longer holds",
                    input.rollout.patch.version,
                    at_opening(said.opening, &zone)
                ));
            }
            told.push(Told::new(kind, message));
        }
    }
    if let Some(due) = overdue_at(input)
        && input.policy.notices.wants(NoticeKind::ComplianceOverdue)
        && input.now >= due
        && !previous.outbox.overdue_told
        && next.phase != Phase::Succeeded
        && next.counts.pending + next.counts.in_progress + next.counts.failed > 0
    {
        let behind = next.counts.pending + next.counts.in_progress + next.counts.failed;
        let class = input.rollout.patch.classification;
        let deadline = input.policy.deadline_for(class);
        told.push(Told::new(
            NoticeKind::ComplianceOverdue,
            format!(
                "{} {} was due by {due} ({class:?} patches within {deadline}): \
                 {behind} target(s) still without it",
                input.policy.name, input.rollout.patch.version,
            ),
        ));
    }
    told
}

/// When the rollout's patch is due by its policy's compliance deadline: its release plus
/// the deadline (the classification's default when the policy sets none); from the
/// rollout's creation when the release instant is not given.
pub(super) fn overdue_at(input: &Input<'_>) -> Option<Timestamp> {
    let released = input
        .rollout
        .patch
        .released_at
        .unwrap_or(input.rollout.created);
    let deadline = input
        .policy
        .deadline_for(input.rollout.patch.classification);
    released.checked_add(deadline.signed()).ok()
}
