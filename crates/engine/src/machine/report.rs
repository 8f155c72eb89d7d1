//! What a decision tells people: the status (counts, failures, wave, message, conditions)
//! and the events for what changed.

use jiff::Timestamp;

use super::{
    Action, AnnotationProblem, ConditionStatus as CS, ConditionType as CT, Counts, Event, Failure,
    Halt, HaltReason, InProgress, Input, MAX_ANNOTATION_PROBLEMS, MAX_FAILURES, RecordState,
    Status, WaveStatus, compute_conditions,
    situation::{Situation, State, WavePosition, counts},
};
use crate::{rollout::Phase, target::TargetId, untrusted, window::Interval};

/// What the decision found, for the status to report.
pub(super) struct Findings<'a> {
    pub phase: Phase,
    pub approved: bool,
    pub approval_at: Option<Timestamp>,
    pub window_open: bool,
    pub window_allows: bool,
    pub halt: Option<Halt>,
    pub acknowledged: u32,
    pub rolling_back: bool,
    pub position: &'a WavePosition,
    pub started: bool,
    /// The hand-made rollout this one waits for.
    pub gives_way_to: Option<&'a str>,
    /// The rollout or its policy is being deleted.
    pub stopping: bool,
}

/// The status to write.
pub(super) fn status(
    input: &Input<'_>,
    situation: &Situation<'_>,
    mut in_progress: Vec<InProgress>,
    findings: Findings<'_>,
) -> Status {
    let now = input.now;
    let rollout = input.rollout;
    let previous = input.status;
    let Findings {
        phase,
        approved,
        approval_at,
        window_open,
        window_allows,
        halt,
        acknowledged,
        rolling_back,
        position,
        started,
        gives_way_to,
        stopping,
    } = findings;
    let counts = counts(situation, &in_progress);
    in_progress.sort_by(|a, b| a.target.cmp(&b.target));
    let wave = match situation.waves.get(position.index) {
        Some(w) if !rolling_back => Some(WaveStatus {
            index: position.index as u32 + 1,
            name: w.name.clone(),
            total: situation.waves.len() as u32,
        }),
        _ => previous.wave.clone().filter(|_| rolling_back),
    };
    // The window in which targets may start next: the current interval while open (from
    // when it opened, or from the rollout's creation for a window that has been open since
    // before), else the next one. None once the rollout has ended: it starts nothing more.
    let next_window = match input.window {
        Some(window) if !rollout.patch.emergency && !phase.is_finished() => {
            let evaluation = window.evaluate(now, 1);
            match evaluation.current {
                Some(current) => Some(Interval {
                    start: current.start.max(rollout.created.min(now)),
                    ..current
                }),
                None => evaluation.next.into_iter().next(),
            }
        }
        _ => None,
    };
    let eligible = situation.entries.len() as u32;
    let failures = failures(situation);
    let wait = Wait {
        approval_at,
        halt: halt.as_ref(),
        position,
        window_allows,
        next_window: next_window.as_ref(),
        counts: &counts,
        rollout_paused: rollout.paused,
        suspended: input.policy.suspend,
        gives_way_to,
        budget: input.policy.strategy.failure_budget.floor_of(eligible),
        first_failure: failures.last(),
    };
    let (annotation_problems, unusable) = annotation_problems(input, situation);
    let message = match message(phase, &wait) {
        message if stopping => {
            format!("being deleted: finishing the targets in progress; {message}")
        }
        message => message,
    };
    let message = match unusable {
        0 => message,
        1 => format!(
            "{message}; 1 annotation patchpilot cannot use on its targets (status.annotationProblems)"
        ),
        n => format!(
            "{message}; {n} annotations patchpilot cannot use on its targets (status.annotationProblems)"
        ),
    };
    let desired = conditions(
        phase,
        &wait,
        approved,
        window_open,
        window_allows,
        rollout.patch.emergency,
        &message,
    );
    Status {
        phase,
        wave,
        counts,
        in_progress,
        failures,
        next_window,
        started_at: previous.started_at.or(started.then_some(now)),
        completed_at: phase
            .is_finished()
            .then(|| previous.completed_at.unwrap_or(now)),
        conditions: compute_conditions(&previous.conditions, desired, rollout.generation, now),
        message,
        observed_retry: rollout.retry.max(previous.observed_retry),
        acknowledged_failures: acknowledged,
        halt,
        // Recorded once the status is complete (`history::record`).
        health: Default::default(),
        // Likewise (`notices::record`).
        outbox: Default::default(),
        annotation_problems,
    }
}

/// The annotations on the rollout's targets patchpilot cannot use (the first
/// [`MAX_ANNOTATION_PROBLEMS`] by target), and how many there are in all. Only the targets
/// left out for them can carry one, and those the rollout works on under a lock that is not
/// its own.
fn annotation_problems(
    input: &Input<'_>,
    situation: &Situation<'_>,
) -> (Vec<AnnotationProblem>, usize) {
    let name = input.rollout.name.as_str();
    let mut problems: Vec<AnnotationProblem> = situation
        .inventory
        .excluded
        .iter()
        .map(|(candidate, _)| *candidate)
        .chain(
            situation
                .entries
                .iter()
                .filter(|e| e.lock.is_some_and(|holder| holder != name))
                .map(|e| e.candidate),
        )
        .flat_map(|c| untrusted::problems(&c.id, &c.annotations))
        .collect();
    let all = problems.len();
    problems.sort();
    problems.truncate(MAX_ANNOTATION_PROBLEMS);
    (problems, all)
}

/// A Warning Event on the target for each annotation problem the status lists that the
/// previous one did not: each is told once, however often the rollout is decided again.
pub(super) fn annotation_events(previous: &Status, next: &Status) -> Vec<Event> {
    next.annotation_problems
        .iter()
        .filter(|p| !previous.annotation_problems.contains(p))
        .map(|p| bad_annotation(&p.target, &p.problem))
        .collect()
}

/// The Event telling an annotation problem of a target.
pub(super) fn bad_annotation(target: &TargetId, problem: &str) -> Event {
    Event {
        target: Some(target.clone()),
        on_target: true,
        warning: true,
        reason: "BadAnnotation".into(),
        action: "BadAnnotation".into(),
        message: format!("{target}: {problem}"),
    }
}

/// The most recent failures, newest first: failed targets, and targets being or having been
/// rolled back after they failed (their record still carries the reason).
fn failures(situation: &Situation<'_>) -> Vec<Failure> {
    let mut failed: Vec<_> = situation
        .entries
        .iter()
        .filter_map(|e| e.record.as_ref().map(|r| (e, r)))
        .filter(|(e, r)| match e.state {
            State::Failed | State::RollbackFailed | State::Held { failed: true } => true,
            State::RolledBack | State::InProgress(Action::Rollback) => r.reason.is_some(),
            State::Pending
            | State::LockedElsewhere
            | State::InProgress(Action::Apply)
            | State::Held { failed: false }
            | State::Updated => false,
        })
        .collect();
    failed.sort_by(|a, b| {
        b.1.since
            .cmp(&a.1.since)
            .then_with(|| a.0.candidate.id.cmp(&b.0.candidate.id))
    });
    failed
        .into_iter()
        .take(MAX_FAILURES)
        .map(|(e, r)| Failure {
            target: e.candidate.id.clone(),
            reason: r.reason.clone().unwrap_or_else(|| "Failed".into()),
            message: r.message.clone().unwrap_or_default(),
        })
        .collect()
}

/// What the rollout waits for, to explain it in the status message.
struct Wait<'a> {
    approval_at: Option<Timestamp>,
    halt: Option<&'a Halt>,
    position: &'a WavePosition,
    window_allows: bool,
    next_window: Option<&'a Interval>,
    counts: &'a Counts,
    rollout_paused: bool,
    suspended: bool,
    gives_way_to: Option<&'a str>,
    /// How many failures the failure budget allows.
    budget: u32,
    /// The earliest of the failures kept: the one that halted the rollout, when it halted.
    first_failure: Option<&'a Failure>,
}

/// Why a halted rollout halted, in words: `canary failed: Node/general-1 DrainTimeout: …`
/// (an abort has no failure to name).
fn halt_cause(wait: &Wait<'_>) -> String {
    let Some(halt) = wait.halt else {
        return "halted".into();
    };
    match (halt.reason, wait.first_failure) {
        (HaltReason::Aborted, _) | (_, None) => halt.reason.as_words().into(),
        (reason, Some(failure)) => format!(
            "{}: {} {}: {}",
            reason.as_words(),
            failure.target,
            failure.reason,
            failure.message
        ),
    }
}

fn message(phase: Phase, wait: &Wait<'_>) -> String {
    let c = wait.counts;
    let done = format!(
        "{} of {} eligible targets updated",
        c.updated,
        c.pending + c.in_progress + c.updated + c.failed + c.rolled_back
    );
    match phase {
        Phase::Pending => "waiting for the operator".into(),
        Phase::AwaitingApproval => match wait.approval_at {
            Some(at) => format!("approved automatically at {at}"),
            None => "waiting for approval: set spec.approved to true".into(),
        },
        Phase::Scheduled => match wait.next_window {
            Some(window) => format!(
                "waiting for the maintenance window at {}; {done}",
                window.start
            ),
            None => format!("waiting for the maintenance window; {done}"),
        },
        Phase::Progressing => match (wait.position.soaking_until, wait.window_allows) {
            (Some(until), _) => format!("wave soaking until {until}; {done}"),
            (None, false) if c.in_progress > 0 => {
                format!("window closing: finishing targets in progress; {done}")
            }
            _ => done,
        },
        Phase::Paused => {
            let why = if wait.halt.is_some() {
                format!(
                    "halted, {}; resume by clearing spec.paused, or set spec.abort",
                    halt_cause(wait)
                )
            } else if wait.position.awaiting_promotion {
                "the canary is healthy: set spec.promoted to true to continue".into()
            } else if let Some(first) = wait.gives_way_to {
                format!("waiting for rollout {first}, made by hand for this policy, to finish")
            } else if wait.suspended {
                "the policy is suspended".into()
            } else if wait.rollout_paused {
                "paused: clear spec.paused to resume".into()
            } else {
                "paused".into()
            };
            format!("{why}; {done}")
        }
        Phase::Succeeded if c.failed > 0 && c.failed <= wait.budget => {
            format!("{done}; {} failed within the failure budget", c.failed)
        }
        Phase::Succeeded if c.failed > 0 => format!(
            "{done}; {} failed, over the failure budget of {}: accepted when the rollout was resumed",
            c.failed, wait.budget
        ),
        Phase::Succeeded => done,
        Phase::RollingBack => format!(
            "rolling back, {}; {} rolled back",
            halt_cause(wait),
            targets(c.rolled_back)
        ),
        Phase::RolledBack => format!(
            "{}; {} rolled back",
            halt_cause(wait),
            targets(c.rolled_back)
        ),
        Phase::Failed => format!("{} failed to roll back; needs a person", targets(c.failed)),
        Phase::Superseded => "a newer patch of the policy took over".into(),
    }
}

/// "1 target", "3 targets".
fn targets(n: u32) -> String {
    if n == 1 {
        "1 target".into()
    } else {
        format!("{n} targets")
    }
}

/// Why a rollout waits, as a CamelCase reason for its `Reconciling` condition.
fn waiting_reason(phase: Phase, wait: &Wait<'_>) -> String {
    match phase {
        Phase::Paused if wait.position.awaiting_promotion => "AwaitingPromotion".into(),
        Phase::Paused if wait.gives_way_to.is_some() => "WaitingForRollout".into(),
        Phase::Paused if wait.suspended => "Suspended".into(),
        other => format!("{other:?}"),
    }
}

/// The conditions, by one mapping from the phase (docs/rollouts.md has the table):
///
/// - `Ready` is True only when `Succeeded`;
/// - `Stalled` is True when the change did not land and a person must decide what next:
///   `RolledBack`, `Failed`, and `Paused` by a halt (`onFailure: Pause`); its reason is the
///   cause (`CanaryFailed`, `FailureBudgetExceeded`, `Aborted`, `RollbackFailed`);
/// - `Reconciling` is True while the rollout has work left that needs no person: waiting
///   for approval, a window, a promotion or another rollout, paused, progressing, rolling
///   back, or (superseded) finishing its targets in progress;
///
/// so that `Ready` and `Stalled` are never both True, and `Reconciling` turns False exactly
/// when the rollout has ended or needs a person: `kubectl wait
/// --for=condition=Reconciling=False` ends on either outcome.
fn conditions(
    phase: Phase,
    wait: &Wait<'_>,
    approved: bool,
    window_open: bool,
    window_allows: bool,
    emergency: bool,
    message: &str,
) -> Vec<(CT, CS, String, String)> {
    let (halt, counts) = (wait.halt, wait.counts);
    let phase_name = format!("{phase:?}");
    let stalled_reason = match phase {
        Phase::Failed => Some("RollbackFailed".to_owned()),
        Phase::RolledBack | Phase::Paused => halt.map(|h| h.reason.as_str().to_owned()),
        Phase::Pending
        | Phase::AwaitingApproval
        | Phase::Scheduled
        | Phase::Progressing
        | Phase::Succeeded
        | Phase::RollingBack
        | Phase::Superseded => None,
    };
    let stalled = stalled_reason.is_some();
    let reconciling = !stalled
        && match phase {
            Phase::Succeeded => false,
            Phase::Superseded => counts.in_progress > 0,
            _ => true,
        };
    let approval = match (approved, wait.approval_at) {
        (true, Some(_)) => ("AutomaticApproval", "approved".to_owned()),
        (true, None) => ("Approved", "approved".to_owned()),
        (false, Some(at)) => ("AwaitingDelay", format!("approved automatically at {at}")),
        (false, None) => ("AwaitingApproval", "set spec.approved to true".to_owned()),
    };
    let window = match (emergency, window_open, window_allows) {
        (true, _, _) => (
            "Emergency",
            "an emergency patch ignores maintenance windows",
        ),
        (false, true, true) => ("Open", "the maintenance window is open"),
        (false, true, false) => (
            "Cutoff",
            "too little of the window remains to start a target",
        ),
        (false, false, _) => ("Closed", "the maintenance window is closed"),
    };
    // A rollout halted by failures is not healthy, even once its failed targets are
    // rolled back.
    let halted_by_failure = halt.map(|h| h.reason).and_then(|reason| match reason {
        HaltReason::CanaryFailed | HaltReason::FailureBudgetExceeded => Some(reason),
        HaltReason::Aborted => None,
    });
    let healthy = counts.failed == 0 && halted_by_failure.is_none();
    vec![
        (
            CT::Ready,
            CS::from_bool(phase == Phase::Succeeded),
            phase_name.clone(),
            message.to_owned(),
        ),
        (
            CT::Reconciling,
            CS::from_bool(reconciling),
            if reconciling {
                waiting_reason(phase, wait)
            } else {
                phase_name.clone()
            },
            if reconciling {
                message.to_owned()
            } else {
                String::new()
            },
        ),
        (
            CT::Stalled,
            CS::from_bool(stalled),
            stalled_reason.unwrap_or(phase_name),
            if stalled {
                message.to_owned()
            } else {
                String::new()
            },
        ),
        (
            CT::Approved,
            CS::from_bool(approved),
            approval.0.to_owned(),
            approval.1,
        ),
        (
            CT::WindowOpen,
            CS::from_bool(window_allows),
            window.0.to_owned(),
            window.1.to_owned(),
        ),
        (
            CT::Healthy,
            CS::from_bool(healthy),
            match (counts.failed, halted_by_failure) {
                (0, None) => "NoFailures",
                (_, Some(reason)) => reason.as_str(),
                (_, None) => "TargetsFailed",
            }
            .to_owned(),
            match (counts.failed, halted_by_failure) {
                (0, None) => "no target has failed".to_owned(),
                (0, Some(_)) => "targets failed and were rolled back".to_owned(),
                (n, _) => format!("{} failed", targets(n)),
            },
        ),
    ]
}

pub(super) fn target_event(target: &TargetId, state: RecordState, message: Option<&str>) -> Event {
    let (warning, reason, verb) = match state {
        RecordState::Updated => (false, "TargetUpdated", "updated"),
        RecordState::Failed => (true, "TargetFailed", "failed"),
        RecordState::RolledBack => (false, "TargetRolledBack", "rolled back"),
        RecordState::RollbackFailed => (true, "RollbackFailed", "failed to roll back"),
        RecordState::Applying | RecordState::RollingBack => (false, "TargetStarted", "started"),
    };
    let message = match message {
        Some(detail) => format!("{target} {verb}: {detail}"),
        None => format!("{target} {verb}"),
    };
    Event {
        target: Some(target.clone()),
        on_target: false,
        warning,
        reason: reason.into(),
        action: reason.into(),
        message,
    }
}

/// Events for what changed between two statuses: approval, waves, phase, window.
pub(super) fn transition_events(previous: &Status, next: &Status) -> Vec<Event> {
    let mut events = Vec::new();
    let flipped = |kind: CT| {
        let status = |s: &Status| {
            s.conditions
                .iter()
                .find(|c| c.kind == kind)
                .map(|c| c.status)
        };
        let (before, after) = (status(previous), status(next));
        (before != after).then_some(after).flatten()
    };
    if flipped(CT::Approved) == Some(CS::True) {
        events.push(Event {
            target: None,
            on_target: false,
            warning: false,
            reason: "Approved".into(),
            action: "Approved".into(),
            message: "the rollout is approved".into(),
        });
    }
    match flipped(CT::WindowOpen) {
        Some(CS::True) if previous.conditions.iter().any(|c| c.kind == CT::WindowOpen) => {
            events.push(Event {
                target: None,
                on_target: false,
                warning: false,
                reason: "WindowOpened".into(),
                action: "WindowOpened".into(),
                message: "targets may start".into(),
            });
        }
        Some(CS::False) => {
            events.push(Event {
                target: None,
                on_target: false,
                warning: false,
                reason: "WindowClosed".into(),
                action: "WindowClosed".into(),
                message: "no new target starts until the window opens".into(),
            });
        }
        Some(CS::True) | Some(CS::Unknown) | None => {}
    }
    // A wave starts when the rollout moves to it, or when the rollout starts at all (the
    // canary is the current wave already while the rollout waits for approval or a window).
    if let Some(wave) = &next.wave
        && (previous.wave.as_ref().is_none_or(|w| w.index != wave.index)
            || previous.started_at.is_none())
        && next.phase != Phase::RollingBack
        && next.started_at.is_some()
    {
        let message = format!(
            "wave {} ({} of {}) started",
            wave.name, wave.index, wave.total
        );
        events.push(Event {
            target: None,
            on_target: false,
            warning: false,
            reason: "WaveStarted".into(),
            action: format!("StartWave-{}", wave.name),
            message,
        });
    }
    if previous.phase != next.phase {
        let warning = matches!(
            next.phase,
            Phase::RollingBack | Phase::RolledBack | Phase::Failed
        ) || (next.phase == Phase::Paused && next.halt.is_some());
        let reason = match next.phase {
            Phase::RollingBack => "RollbackStarted".to_owned(),
            Phase::Succeeded | Phase::RolledBack | Phase::Failed | Phase::Superseded => {
                format!("{:?}", next.phase)
            }
            other => format!("Phase{other:?}"),
        };
        events.push(Event {
            target: None,
            on_target: false,
            warning,
            action: reason.clone(),
            reason,
            message: next.message.clone(),
        });
    }
    events
}

#[cfg(test)]
mod tests {
    //! The mapping from a rollout's phase to its conditions and its policy's, for every
    //! phase (docs/rollouts.md has the same table).

    use super::*;
    use crate::machine::{
        Condition, CurrentRollout, compute_conditions, deleted_rollout_conditions,
        policy_conditions,
    };

    /// How a rollout stands, for the table: its phase and what it waits for.
    #[derive(Clone, Copy, Debug)]
    enum Case {
        Plain(Phase),
        Halted(Phase, HaltReason),
        Suspended,
        AwaitingPromotion,
        GivesWay,
        SupersededFinishing,
    }

    /// (rollout Ready, Reconciling, Stalled, Stalled's reason) and (policy Ready,
    /// Reconciling, Stalled, reason) for each case.
    fn row(case: Case) -> ([bool; 3], &'static str, [bool; 3], &'static str) {
        use Case::*;
        match case {
            Plain(Phase::Pending) => (
                [false, true, false],
                "Pending",
                [false, true, false],
                "Pending",
            ),
            Plain(Phase::AwaitingApproval) => (
                [false, true, false],
                "AwaitingApproval",
                [true, false, false],
                "AwaitingApproval",
            ),
            Plain(Phase::Scheduled) => (
                [false, true, false],
                "Scheduled",
                [true, false, false],
                "Scheduled",
            ),
            Plain(Phase::Progressing) => (
                [false, true, false],
                "Progressing",
                [false, true, false],
                "Progressing",
            ),
            Plain(Phase::Paused) => (
                [false, true, false],
                "Paused",
                [true, false, false],
                "Paused",
            ),
            Suspended => (
                [false, true, false],
                "Suspended",
                [true, false, false],
                "Suspended",
            ),
            AwaitingPromotion => (
                [false, true, false],
                "AwaitingPromotion",
                [true, false, false],
                "AwaitingPromotion",
            ),
            GivesWay => (
                [false, true, false],
                "WaitingForRollout",
                [true, false, false],
                "WaitingForRollout",
            ),
            Plain(Phase::Succeeded) => (
                [true, false, false],
                "Succeeded",
                [true, false, false],
                "Succeeded",
            ),
            Plain(Phase::RollingBack) => (
                [false, true, false],
                "RollingBack",
                [false, true, false],
                "RollingBack",
            ),
            Halted(Phase::RolledBack, _) => (
                [false, false, true],
                "CanaryFailed",
                [false, false, true],
                "CanaryFailed",
            ),
            Halted(Phase::Paused, _) => (
                [false, false, true],
                "FailureBudgetExceeded",
                [false, false, true],
                "FailureBudgetExceeded",
            ),
            Plain(Phase::Failed) => (
                [false, false, true],
                "RollbackFailed",
                [false, false, true],
                "RollbackFailed",
            ),
            Plain(Phase::Superseded) => (
                [false, false, false],
                "Superseded",
                [true, false, false],
                "Superseded",
            ),
            SupersededFinishing => (
                [false, true, false],
                "Superseded",
                [true, false, false],
                "Superseded",
            ),
            other => panic!("no row for {other:?}"),
        }
    }

    fn conditions_of(case: Case) -> Vec<Condition> {
        let now: Timestamp = "2026-11-28T00:00:00Z".parse().unwrap();
        let (phase, halt) = match case {
            Case::Plain(phase) => (phase, None),
            Case::Halted(phase, reason) => (
                phase,
                Some(Halt {
                    reason,
                    since: now,
                    pause_seen: true,
                }),
            ),
            Case::Suspended | Case::AwaitingPromotion | Case::GivesWay => (Phase::Paused, None),
            Case::SupersededFinishing => (Phase::Superseded, None),
        };
        let position = WavePosition {
            index: 0,
            soaking_until: None,
            awaiting_promotion: matches!(case, Case::AwaitingPromotion),
            done: false,
        };
        let counts = Counts {
            in_progress: u32::from(matches!(case, Case::SupersededFinishing)),
            ..Counts::default()
        };
        let wait = Wait {
            approval_at: None,
            halt: halt.as_ref(),
            position: &position,
            window_allows: true,
            next_window: None,
            counts: &counts,
            rollout_paused: matches!(case, Case::Plain(Phase::Paused)),
            suspended: matches!(case, Case::Suspended),
            gives_way_to: matches!(case, Case::GivesWay).then_some("os-zero-day"),
            budget: 0,
            first_failure: None,
        };
        let message = message(phase, &wait);
        let desired = conditions(phase, &wait, true, true, true, false, &message);
        compute_conditions(&[], desired, 1, now)
    }

    fn status_of(conditions: &[Condition], kind: CT) -> (bool, String) {
        let c = conditions.iter().find(|c| c.kind == kind).unwrap();
        (c.status == CS::True, c.reason.clone())
    }

    #[test]
    fn every_phase_maps_to_one_set_of_conditions_for_the_rollout_and_its_policy() {
        use Case::*;
        let cases = [
            Plain(Phase::Pending),
            Plain(Phase::AwaitingApproval),
            Plain(Phase::Scheduled),
            Plain(Phase::Progressing),
            Plain(Phase::Paused),
            Suspended,
            AwaitingPromotion,
            GivesWay,
            Plain(Phase::Succeeded),
            Plain(Phase::RollingBack),
            Halted(Phase::RolledBack, HaltReason::CanaryFailed),
            Halted(Phase::Paused, HaltReason::FailureBudgetExceeded),
            Plain(Phase::Failed),
            Plain(Phase::Superseded),
            SupersededFinishing,
        ];
        for case in cases {
            let (rollout_flags, rollout_reason, policy_flags, policy_reason) = row(case);
            let conditions = conditions_of(case);
            let flags =
                [CT::Ready, CT::Reconciling, CT::Stalled].map(|k| status_of(&conditions, k).0);
            assert_eq!(
                flags, rollout_flags,
                "{case:?}: rollout Ready, Reconciling, Stalled"
            );
            // The reason of the condition that holds says why; a False Stalled never
            // carries a halt's reason.
            let holding = [CT::Ready, CT::Reconciling, CT::Stalled]
                .into_iter()
                .find(|k| status_of(&conditions, *k).0)
                .unwrap_or(CT::Stalled);
            assert_eq!(
                status_of(&conditions, holding).1,
                rollout_reason,
                "{case:?}"
            );
            if !flags[2] {
                let reason = status_of(&conditions, CT::Stalled).1;
                assert!(
                    !["CanaryFailed", "FailureBudgetExceeded", "Aborted"]
                        .contains(&reason.as_str()),
                    "{case:?}: Stalled=False with reason {reason}"
                );
            }
            let phase = match case {
                Plain(p) | Halted(p, _) => p,
                Suspended | AwaitingPromotion | GivesWay => Phase::Paused,
                SupersededFinishing => Phase::Superseded,
            };
            let current = CurrentRollout {
                name: "os-1",
                phase,
                conditions: &conditions,
                message: "m",
            };
            let policy = policy_conditions("os-1", Some(&current));
            let find = |k: CT| policy.iter().find(|c| c.0 == k).unwrap();
            let policy_now =
                [CT::Ready, CT::Reconciling, CT::Stalled].map(|k| find(k).1 == CS::True);
            assert_eq!(
                policy_now, policy_flags,
                "{case:?}: policy Ready, Reconciling, Stalled"
            );
            assert_eq!(find(CT::Ready).2, policy_reason, "{case:?}: policy reason");
            // Never both Ready and Stalled; the policy is Stalled exactly when its rollout
            // is, and Reconciling only while its rollout is.
            assert!(
                !(flags[0] && flags[2] || policy_now[0] && policy_now[2]),
                "{case:?}"
            );
            assert_eq!(policy_now[2], flags[2], "{case:?}");
            assert!(!policy_now[1] || flags[1], "{case:?}");
        }
    }

    #[test]
    fn a_policy_whose_rollout_was_deleted_is_stalled_until_changed() {
        let policy = deleted_rollout_conditions("os-1");
        let flags = [CT::Ready, CT::Reconciling, CT::Stalled]
            .map(|k| policy.iter().find(|c| c.0 == k).unwrap().1 == CS::True);
        assert_eq!(flags, [false, false, true]);
        assert!(policy.iter().all(|c| c.2 == "RolloutDeleted"));
        assert!(policy[2].3.contains("os-1 was deleted"), "{}", policy[2].3);
    }

    #[test]
    fn a_policy_whose_rollout_is_being_made_is_reconciling() {
        let policy = policy_conditions("os-1", None);
        assert_eq!(policy[1].0, CT::Reconciling);
        assert_eq!(policy[1].1, CS::True);
    }
}
