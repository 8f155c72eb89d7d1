//! The rollout as a whole: which targets start, which wave runs, when it halts, how it
//! rolls back, and what phase it is in. SPEC 3.2 and 3.5.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;

use super::{
    Action, Decision, Event, Halt, HaltReason, InProgress, Input, Record, RecordState,
    TargetAction,
    report::{self, Findings, target_event, transition_events},
    situation::{
        Capacity, Entry, Situation, State, WavePosition, exclusion_expiries, situation,
        wave_position,
    },
    step::{self, Context},
};
use crate::{
    keys,
    policy::{ApprovalMode, OnFailure},
    rollout::{Phase, Step},
    target::TargetId,
};

/// The targets whose live state and health [`decide`] needs: those in progress, and the
/// updated targets of a wave that is soaking.
pub fn wanted(input: &Input<'_>) -> BTreeSet<TargetId> {
    let situation = situation(input);
    let position = wave_position(input, &situation);
    let mut wanted: BTreeSet<TargetId> = situation
        .entries
        .iter()
        .filter(|e| matches!(e.state, State::InProgress(_)))
        .map(|e| e.candidate.id.clone())
        .collect();
    if position.soaking_until.is_some()
        && let Some(wave) = situation.waves.get(position.index)
    {
        let soaking = situation.entries[wave.start..wave.end]
            .iter()
            .filter(|e| e.state == State::Updated);
        wanted.extend(soaking.map(|e| e.candidate.id.clone()));
    }
    wanted
}

/// What a decision has found so far.
#[derive(Default)]
struct Draft {
    actions: Vec<TargetAction>,
    events: Vec<Event>,
    wakes: Vec<Timestamp>,
    in_progress: Vec<InProgress>,
}

impl Draft {
    /// Takes a target's lock, writing `record`; the target is in progress from now on.
    fn lock(&mut self, target: &TargetId, record: Record) {
        let action = record.state.in_progress().unwrap_or(Action::Apply);
        self.in_progress.push(InProgress {
            target: target.clone(),
            action,
            step: Step::Locked,
            since: record.since,
            message: None,
        });
        self.actions.push(TargetAction::Lock {
            target: target.clone(),
            record,
        });
    }
}

/// Decides what to do next. See the [module](super) documentation.
pub fn decide(input: &Input<'_>) -> Decision {
    let now = input.now;
    let mut situation = situation(input);
    let mut draft = Draft::default();

    // Targets in progress take their next step whatever else happens; then the waves.
    advance_in_progress(input, &mut situation, &mut draft);
    release_orphaned_locks(input, &situation, &mut draft);
    let position = wave_position(input, &situation);
    fail_unhealthy_while_soaking(input, &mut situation, &position, &mut draft);
    draft.wakes.extend(position.soaking_until);

    let halts = halts(input, &situation, &mut draft);
    let gates = Gates::new(input, &situation);
    let (started, rollback_left) = if halts.rolling_back {
        start_rollbacks(input, &situation, &mut draft)
    } else {
        let may_start = gates.approved
            && !gates.finished_before
            && !input.rollout.paused
            && !input.policy.suspend
            && !input.superseded
            && !halts.paused
            && gates.window_allows
            && !position.done
            && position.soaking_until.is_none()
            && !position.awaiting_promotion;
        let started = if may_start {
            start_targets(input, &situation, &position, &mut draft)
        } else {
            0
        };
        (started, 0)
    };
    let phase = phase(
        input,
        &situation,
        &position,
        &halts,
        &gates,
        &draft,
        started,
        rollback_left,
    );

    let findings = Findings {
        phase,
        approved: gates.approved,
        approval_at: gates.approval_at,
        window_open: gates.window_open,
        window_allows: gates.window_allows,
        halt: halts.halt,
        acknowledged: halts.acknowledged,
        rolling_back: halts.rolling_back,
        position: &position,
        started: started > 0,
    };
    let Draft {
        actions,
        mut events,
        mut wakes,
        in_progress,
    } = draft;
    let status = report::status(input, &situation, in_progress, findings);
    events.splice(0..0, transition_events(input.status, &status));
    if !status.phase.is_finished() || !status.in_progress.is_empty() {
        if !gates.approved {
            wakes.extend(gates.approval_at);
        }
        if let Some(window) = input.window.filter(|_| !input.rollout.patch.emergency) {
            wakes.extend(window.next_boundary(now));
        }
        wakes.extend(exclusion_expiries(input));
    }
    let wake_at = wakes.into_iter().filter(|at| *at > now).min();
    Decision {
        actions,
        status,
        events,
        wake_at,
    }
}

/// Each target in progress takes its next step.
fn advance_in_progress(input: &Input<'_>, situation: &mut Situation<'_>, draft: &mut Draft) {
    let remembered: BTreeMap<&TargetId, &InProgress> = input
        .status
        .in_progress
        .iter()
        .map(|p| (&p.target, p))
        .collect();
    for entry in &mut situation.entries {
        let (State::InProgress(action), Some(record)) = (entry.state, entry.record.clone()) else {
            continue;
        };
        let id = &entry.candidate.id;
        let ctx = Context {
            input,
            remembered: remembered.get(id).copied(),
        };
        let next = step::advance(&ctx, id, &record, input.observed.get(id));
        draft.wakes.extend(next.until);
        if let Some(TargetAction::Release { record, .. }) = &next.action {
            entry.record = Some(record.clone());
        }
        if let Some(action) = next.action.clone() {
            draft.actions.push(action);
        }
        match next.finished {
            Some(state) => {
                entry.state = match state {
                    RecordState::Updated => State::Updated,
                    RecordState::Failed => State::Failed,
                    RecordState::RolledBack => State::RolledBack,
                    RecordState::RollbackFailed => State::RollbackFailed,
                    RecordState::Applying | RecordState::RollingBack => State::InProgress(action),
                };
                draft
                    .events
                    .push(target_event(id, state, next.message.as_deref()));
            }
            None => draft.in_progress.push(InProgress {
                target: id.clone(),
                action,
                step: next.step,
                since: ctx.since(next.step),
                message: next.message,
            }),
        }
    }
}

/// Locks this rollout holds on targets it has no work on are released.
fn release_orphaned_locks(input: &Input<'_>, situation: &Situation<'_>, draft: &mut Draft) {
    let name = &input.rollout.name;
    let working: BTreeSet<&TargetId> = situation
        .entries
        .iter()
        .filter(|e| matches!(e.state, State::InProgress(_)))
        .map(|e| &e.candidate.id)
        .chain(draft.in_progress.iter().map(|p| &p.target))
        .collect();
    let releasing: BTreeSet<TargetId> = draft
        .actions
        .iter()
        .filter_map(|a| {
            let TargetAction::Release { target, .. } = a else {
                return None;
            };
            Some(target.clone())
        })
        .collect();
    for candidate in input.candidates {
        let ours = candidate
            .annotations
            .get(keys::LOCK)
            .is_some_and(|l| l == name);
        if ours && !working.contains(&candidate.id) && !releasing.contains(&candidate.id) {
            draft.actions.push(TargetAction::Unlock {
                target: candidate.id.clone(),
            });
        }
    }
}

/// An updated target that turns unhealthy while its wave soaks fails.
fn fail_unhealthy_while_soaking(
    input: &Input<'_>,
    situation: &mut Situation<'_>,
    position: &WavePosition,
    draft: &mut Draft,
) {
    let Some(wave) = situation
        .waves
        .get(position.index)
        .filter(|_| position.soaking_until.is_some())
    else {
        return;
    };
    let name = wave.name.clone();
    for entry in &mut situation.entries[wave.start..wave.end] {
        let health = input
            .observed
            .get(&entry.candidate.id)
            .and_then(|o| o.health.as_ref());
        let (State::Updated, Some(health), Some(record)) = (entry.state, health, &entry.record)
        else {
            continue;
        };
        if !health.fails() {
            continue;
        }
        let message = format!(
            "unhealthy while wave {name} soaked: {}",
            health.reasons.join("; ")
        );
        let failed = Record {
            state: RecordState::Failed,
            since: input.now,
            applied: true,
            reason: Some("Unhealthy".into()),
            message: Some(message.clone()),
            ..record.clone()
        };
        draft.events.push(target_event(
            &entry.candidate.id,
            RecordState::Failed,
            Some(&message),
        ));
        draft.actions.push(TargetAction::MarkFailed {
            target: entry.candidate.id.clone(),
            record: failed.clone(),
        });
        entry.record = Some(failed);
        entry.state = State::Failed;
    }
}

/// Whether and why the rollout is halted, and what the halt does.
struct Halts {
    halt: Option<Halt>,
    acknowledged: u32,
    /// Undoing what the rollout changed (a halt with `onFailure: Rollback`, or an abort).
    rolling_back: bool,
    /// Stopped for a person (a halt with `onFailure: Pause`).
    paused: bool,
}

fn halts(input: &Input<'_>, situation: &Situation<'_>, draft: &mut Draft) -> Halts {
    let (now, rollout, policy, previous) = (input.now, input.rollout, input.policy, input.status);
    let eligible = situation.entries.len() as u32;
    let failed = situation
        .entries
        .iter()
        .filter(|e| matches!(e.state, State::Failed | State::RollbackFailed))
        .count() as u32;
    let mut acknowledged = if situation.retrying {
        0
    } else {
        previous.acknowledged_failures
    };
    let mut halt = if situation.retrying {
        None
    } else {
        previous.halt.clone()
    };
    // A halt with `onFailure: Pause` asks for `spec.paused`; once the spec shows it, the
    // pause is the operator's, and a person clearing it resumes the rollout.
    if let Some(h) = &mut halt
        && h.reason != HaltReason::Aborted
        && policy.strategy.on_failure == OnFailure::Pause
        && rollout.paused
    {
        h.pause_seen = true;
    }
    if rollout.abort
        && halt
            .as_ref()
            .is_none_or(|h| h.reason != HaltReason::Aborted)
    {
        halt = Some(Halt {
            reason: HaltReason::Aborted,
            since: now,
            pause_seen: false,
        });
    }
    // A rollback only ever follows a halt; its records prove one even when the status that
    // said so was never written.
    let rolled_back_some = situation.entries.iter().any(|e| {
        matches!(
            e.state,
            State::InProgress(Action::Rollback) | State::RolledBack | State::RollbackFailed
        )
    });
    if halt.is_none() && rolled_back_some {
        let reason = if rollout.abort {
            HaltReason::Aborted
        } else {
            HaltReason::FailureBudgetExceeded
        };
        halt = Some(Halt {
            reason,
            since: now,
            pause_seen: false,
        });
    }
    if halt.is_none() && failed > acknowledged {
        let canary_end = situation
            .waves
            .first()
            .filter(|w| w.name == "canary")
            .map_or(0, |w| w.end);
        let budget = policy.strategy.failure_budget.floor_of(eligible);
        let reason = if situation.entries[..canary_end]
            .iter()
            .any(|e| e.state == State::Failed)
        {
            Some(HaltReason::CanaryFailed)
        } else if failed > budget {
            Some(HaltReason::FailureBudgetExceeded)
        } else {
            None
        };
        halt = reason.map(|reason| Halt {
            reason,
            since: now,
            pause_seen: false,
        });
    }
    let rolling_back = halt.as_ref().is_some_and(|h| {
        h.reason == HaltReason::Aborted
            || policy.strategy.on_failure == OnFailure::Rollback
            || rolled_back_some
    });
    let mut paused = false;
    if !rolling_back && let Some(h) = &halt {
        if !h.pause_seen {
            if !rollout.paused {
                draft.actions.push(TargetAction::PauseRollout);
            }
            paused = true;
        } else if rollout.paused {
            paused = true;
        } else {
            // A person resumed: the failures so far are accepted.
            acknowledged = failed;
            halt = None;
        }
    }
    Halts {
        halt,
        acknowledged,
        rolling_back,
        paused,
    }
}

/// Approval, the window, and whether the rollout had already finished.
struct Gates {
    approval_at: Option<Timestamp>,
    approved: bool,
    window_open: bool,
    window_allows: bool,
    finished_before: bool,
}

impl Gates {
    fn new(input: &Input<'_>, situation: &Situation<'_>) -> Self {
        let (now, rollout, policy) = (input.now, input.rollout, input.policy);
        let approval_at = match policy.approval.mode {
            ApprovalMode::Manual => None,
            ApprovalMode::Automatic => {
                let released = rollout.patch.released_at.unwrap_or(rollout.created);
                Some(
                    released
                        .saturating_add(policy.approval.delay.signed())
                        .unwrap_or(released),
                )
            }
        };
        Gates {
            approval_at,
            approved: rollout.approved || approval_at.is_some_and(|at| now >= at),
            window_open: input.window.is_none_or(|w| w.is_open(now)),
            window_allows: rollout.patch.emergency || input.window.is_none_or(|w| w.may_start(now)),
            finished_before: input.status.phase.is_finished() && !situation.retrying,
        }
    }
}

/// Starts rolling back what the rollout changed, most recent first, under `maxUnavailable`,
/// once the targets still applying have finished. Returns how many started and how many
/// remain to roll back.
fn start_rollbacks(
    input: &Input<'_>,
    situation: &Situation<'_>,
    draft: &mut Draft,
) -> (usize, usize) {
    let (now, rollout) = (input.now, input.rollout);
    let applying = situation
        .entries
        .iter()
        .any(|e| e.state == State::InProgress(Action::Apply));
    let mut undo: Vec<&Entry<'_>> = situation
        .entries
        .iter()
        .filter(|e| {
            e.state == State::Updated
                || (e.state == State::Failed && e.record.as_ref().is_some_and(|r| r.applied))
        })
        .collect();
    undo.sort_by(|a, b| {
        let started = |e: &Entry<'_>| e.record.as_ref().map(|r| r.started);
        started(b)
            .cmp(&started(a))
            .then_with(|| b.candidate.id.cmp(&a.candidate.id))
    });
    // `spec.paused` holds a rollback, but not an abort: a person who aborts wants the
    // rollback now, whoever set `paused` (it may be the operator's own halt).
    let held = rollout.paused && !rollout.abort;
    if applying || held {
        return (0, undo.len());
    }
    let capacity = Capacity::new(input, situation);
    let mut busy = capacity.busy(situation);
    let mut started = 0;
    for entry in &undo {
        if entry.lock.is_some_and(|l| l != rollout.name) || !capacity.admits(&busy, entry.pool) {
            continue;
        }
        let Some(record) = entry.record.clone() else {
            continue;
        };
        // A target that failed keeps why it failed through its rollback, for the status.
        let failed = record.state == RecordState::Failed;
        let record = Record {
            state: RecordState::RollingBack,
            since: now,
            attempt: rollout.retry,
            reason: record.reason.filter(|_| failed),
            message: record.message.filter(|_| failed),
            ..record
        };
        *busy.entry(entry.pool).or_default() += 1;
        draft.lock(&entry.candidate.id, record);
        started += 1;
    }
    (started, undo.len())
}

/// Starts pending targets of the current wave, in order, under `maxUnavailable` per pool.
fn start_targets(
    input: &Input<'_>,
    situation: &Situation<'_>,
    position: &WavePosition,
    draft: &mut Draft,
) -> usize {
    let (now, rollout) = (input.now, input.rollout);
    let Some(wave) = situation.waves.get(position.index) else {
        return 0;
    };
    let capacity = Capacity::new(input, situation);
    let mut busy = capacity.busy(situation);
    let mut started = 0;
    for entry in &situation.entries[..wave.end] {
        if entry.state != State::Pending || !capacity.admits(&busy, entry.pool) {
            continue;
        }
        let record = Record {
            rollout: rollout.name.clone(),
            attempt: rollout.retry,
            state: RecordState::Applying,
            started: now,
            since: now,
            cordoned: false,
            boot_id: None,
            previous_version: None,
            images: Vec::new(),
            applied: false,
            reason: None,
            message: None,
        };
        *busy.entry(entry.pool).or_default() += 1;
        draft.lock(&entry.candidate.id, record);
        started += 1;
    }
    started
}

#[allow(clippy::too_many_arguments)]
fn phase(
    input: &Input<'_>,
    situation: &Situation<'_>,
    position: &WavePosition,
    halts: &Halts,
    gates: &Gates,
    draft: &Draft,
    started: usize,
    rollback_left: usize,
) -> Phase {
    let active = !draft.in_progress.is_empty();
    let rollout = input.rollout;
    if gates.finished_before && !active {
        input.status.phase
    } else if halts.rolling_back {
        if active || rollback_left > 0 {
            Phase::RollingBack
        } else if situation
            .entries
            .iter()
            .any(|e| e.state == State::RollbackFailed)
        {
            Phase::Failed
        } else {
            Phase::RolledBack
        }
    } else if halts.paused {
        Phase::Paused
    } else if position.done && !active && situation.entries.iter().all(|e| e.state.finished()) {
        Phase::Succeeded
    } else if input.superseded {
        Phase::Superseded
    } else if !gates.approved && !active {
        Phase::AwaitingApproval
    } else if rollout.paused || input.policy.suspend || position.awaiting_promotion {
        Phase::Paused
    } else if active || started > 0 || position.soaking_until.is_some() || gates.window_allows {
        Phase::Progressing
    } else {
        Phase::Scheduled
    }
}
