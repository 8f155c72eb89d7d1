//! The rollout as a whole: which targets start, which wave runs, when it halts, how it
//! rolls back, and what phase it is in. SPEC 3.2 and 3.5.
//!
//! Kept in one file (about 900 lines): `decide` is one pass over the rollout — settle what is
//! in progress, judge the halts, start rollbacks or new targets, name the phase — whose steps
//! share one `Draft`; spread over files, the order of the pass would be hard to follow. What
//! stands alone is elsewhere: one target's step in `step.rs`, the facts in `situation.rs`,
//! the status in `report.rs`.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;

use super::{
    Action, Decision, Event, Halt, HaltReason, InProgress, Input, Live, Record, RecordState,
    Sibling, TargetAction, history, notices,
    report::{self, Findings, annotation_events, bad_annotation, target_event, transition_events},
    situation::{
        Capacity, Entry, Situation, State, WavePosition, exclusion_expiries, holds, situation,
        wave_position,
    },
    step::{self, Context},
    story,
};
use crate::{
    keys,
    policy::{ApprovalMode, OnFailure},
    rollout::{Phase, Step},
    target::TargetId,
    untrusted,
};

/// The targets whose live state and health [`decide`] needs: those the rollout holds, and
/// the updated targets of a wave that is soaking.
pub fn wanted(input: &Input<'_>) -> BTreeSet<TargetId> {
    let situation = situation(input);
    if frozen(input, &situation).is_some() {
        return BTreeSet::new();
    }
    let position = wave_position(input, &situation);
    let mut wanted: BTreeSet<TargetId> = situation
        .entries
        .iter()
        .filter(|e| e.state.locked())
        .map(|e| e.candidate.id.clone())
        .collect();
    if position.soaking_until.is_some()
        && let Some(wave) = situation.waves.get(position.index)
    {
        let soaking = situation.entries[wave.start..wave.end]
            .iter()
            .filter(|e| e.state == State::Updated && !e.overtaken);
        wanted.extend(soaking.map(|e| e.candidate.id.clone()));
    }
    wanted
}

/// How much a rollout may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Mode<'a> {
    /// Start targets and rollbacks as its rules say.
    Normal,
    /// Start nothing new: targets in progress finish (a failed one is rolled back in place
    /// with `onFailure: Rollback`), and nothing else.
    InFlightOnly(Why<'a>),
}

/// Why a rollout may only finish what it has in flight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Why<'a> {
    /// A newer patch of the policy took over.
    Superseded,
    /// The rollout or its policy is being deleted.
    Stopping,
    /// A rollout made by hand for the same policy goes first.
    GivesWay(&'a Sibling),
}

impl<'a> Mode<'a> {
    fn of(input: &Input<'a>) -> Self {
        if input.stopping {
            Mode::InFlightOnly(Why::Stopping)
        } else if input.superseded {
            Mode::InFlightOnly(Why::Superseded)
        } else if let Some(first) = precedence(input) {
            Mode::InFlightOnly(Why::GivesWay(first))
        } else {
            Mode::Normal
        }
    }

    /// The hand-made rollout this one gives way to.
    pub(super) fn gives_way_to(self) -> Option<&'a Sibling> {
        match self {
            Mode::InFlightOnly(Why::GivesWay(sibling)) => Some(sibling),
            Mode::Normal | Mode::InFlightOnly(Why::Superseded | Why::Stopping) => None,
        }
    }
}

/// The hand-made rollout of the policy that goes before this one, if any: a rollout made
/// by hand takes precedence over the policy's own, and over hand-made ones created after it.
fn precedence<'a>(input: &Input<'a>) -> Option<&'a Sibling> {
    let rollout = input.rollout;
    input
        .siblings
        .iter()
        .filter(|s| s.hand_made && s.active())
        .filter(|s| !rollout.hand_made || (s.created, &s.name) < (rollout.created, &rollout.name))
        .min_by(|a, b| (a.created, &a.name).cmp(&(b.created, &b.name)))
}

/// A rollout that has ended keeps its status (SPEC 3.2): counts, failures and message stay
/// as they were when it ended, whatever later rollouts do to its targets. Only a retry opens
/// it again (a superseded one also when its patch becomes the policy's current one again);
/// its conditions follow the spec's generation, so that readers know the status is current.
fn frozen(input: &Input<'_>, situation: &Situation<'_>) -> Option<Decision> {
    let previous = input.status;
    let reopened = situation.retrying || (previous.phase == Phase::Superseded && !input.superseded);
    let holding = situation.entries.iter().any(|e| e.state.locked())
        || input
            .candidates
            .iter()
            .any(|c| holds(c, &input.rollout.name));
    if !previous.phase.is_finished() || reopened || holding {
        return None;
    }
    let mut status = previous.clone();
    for condition in &mut status.conditions {
        condition.observed_generation = input.rollout.generation;
    }
    Some(Decision {
        actions: Vec::new(),
        status,
        events: Vec::new(),
        wake_at: None,
    })
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
    /// Takes a target's lock (or, for a target the rollout holds, moves it to its next work
    /// under the same lock), writing `record`; the target is in progress from now on.
    fn lock(&mut self, target: &TargetId, record: Record) {
        let action = record.state.in_progress().unwrap_or(Action::Apply);
        self.forget(target);
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

    /// Drops what the draft says about a target so far: a later action replaces it.
    fn forget(&mut self, target: &TargetId) {
        self.in_progress.retain(|p| &p.target != target);
        self.actions
            .retain(|a| !matches!(a, TargetAction::Hold { target: t, .. } if t == target));
    }

    /// Targets this decision lets go of.
    fn released(&self) -> BTreeSet<&TargetId> {
        self.actions
            .iter()
            .filter_map(|a| match a {
                TargetAction::Release { target, .. }
                | TargetAction::Abandon { target, .. }
                | TargetAction::Unlock { target } => Some(target),
                _ => None,
            })
            .collect()
    }
}

/// A target whose work ended in this decision, and the release `step` proposes for it.
struct Finishing {
    index: usize,
    release: TargetAction,
}

/// Decides what to do next. See the [module](super) documentation.
pub fn decide(input: &Input<'_>) -> Decision {
    let now = input.now;
    let mut situation = situation(input);
    if let Some(frozen) = frozen(input, &situation) {
        return frozen;
    }
    let mode = Mode::of(input);
    let mut draft = Draft::default();

    // Targets in progress take their next step whatever else happens; then the waves.
    let finishing = advance_in_progress(input, &mut situation, &mut draft, mode);
    let position = wave_position(input, &situation);
    fail_unhealthy_while_soaking(input, &mut situation, &position, &mut draft);
    draft.wakes.extend(position.soaking_until);

    let halts = halts(input, &situation, &mut draft, mode);
    settle(input, &mut situation, &mut draft, finishing, &halts, mode);
    release_orphaned_locks(input, &situation, &mut draft);
    let gates = Gates::new(input, &situation);
    let (started, rollback_left) = if halts.rolling_back {
        start_rollbacks(input, &situation, &mut draft, mode)
    } else {
        settle_held(input, &situation, &mut draft, mode);
        let may_start = mode == Mode::Normal
            && gates.approved
            && !gates.finished_before
            && !input.rollout.paused
            && !input.policy.suspend
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
    report_held(input, &situation, &mut draft);
    let phase = phase(
        input,
        &situation,
        &position,
        &halts,
        &gates,
        &draft,
        mode,
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
        gives_way_to: mode.gives_way_to().map(|s| s.name.as_str()),
        stopping: input.stopping,
    };
    let Draft {
        actions,
        mut events,
        mut wakes,
        in_progress,
    } = draft;
    let mut status = report::status(input, &situation, in_progress, findings);
    status.health = history::record(input.status, &status, input.observed, now);
    events.splice(0..0, transition_events(input.status, &status));
    events.extend(annotation_events(input.status, &status));
    let facts = notices::Facts {
        waves: &situation.waves,
        approved: gates.approved,
        approval_at: gates.approval_at,
    };
    let (told, notice_wake) = notices::record(input, input.status, &mut status, &events, &facts);
    events.extend(told);
    wakes.extend(notice_wake);
    let story = story::target_story(&input.rollout.name, input.status, &status, &events);
    events.extend(story);
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

/// Each target in progress takes its next step. A target whose work ends is returned rather
/// than released at once: whether it is released or held for a rollback depends on the halt
/// its outcome may cause. A rollout being deleted lets go at once of the nodes whose change
/// it has not made yet.
fn advance_in_progress(
    input: &Input<'_>,
    situation: &mut Situation<'_>,
    draft: &mut Draft,
    mode: Mode<'_>,
) -> Vec<Finishing> {
    let remembered: BTreeMap<&TargetId, &InProgress> = input
        .status
        .in_progress
        .iter()
        .map(|p| (&p.target, p))
        .collect();
    let mut finishing = Vec::new();
    for (index, entry) in situation.entries.iter_mut().enumerate() {
        let (State::InProgress(action), Some(record)) = (entry.state, entry.record.clone()) else {
            continue;
        };
        let id = &entry.candidate.id;
        let observed = input.observed.get(id);
        if mode == Mode::InFlightOnly(Why::Stopping)
            && action == Action::Apply
            && !record.applied
            && let Some(Live::Node(node)) = observed.map(|o| &o.live)
            && node.updater.is_none()
        {
            draft.actions.push(TargetAction::Abandon {
                target: id.clone(),
                uncordon: record.cordoned && node.unschedulable,
            });
            draft.events.push(Event {
                target: Some(id.clone()),
                on_target: false,
                warning: false,
                reason: "TargetAbandoned".into(),
                action: "TargetAbandoned".into(),
                message: format!("{id} let go before its update: the rollout is being deleted"),
            });
            entry.state = State::Pending;
            entry.record = None;
            continue;
        }
        let ctx = Context {
            input,
            remembered: remembered.get(id).copied(),
        };
        let next = step::advance(&ctx, id, &record, observed);
        draft.wakes.extend(next.until);
        match next.finished {
            Some(state) => {
                if let Some(TargetAction::Release { record, .. }) = &next.action {
                    entry.record = Some(record.clone());
                }
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
                if let Some(release) = next.action {
                    finishing.push(Finishing { index, release });
                }
            }
            None => {
                if let Some(action) = next.action.clone() {
                    draft.actions.push(action);
                }
                draft.in_progress.push(InProgress {
                    target: id.clone(),
                    action,
                    step: next.step,
                    since: ctx.since(next.step),
                    message: next.message,
                });
            }
        }
    }
    finishing
}

/// Releases the targets whose work ended in this decision, or holds those that are to be
/// rolled back: a target goes from applying to rolling back under one lock, never released
/// in between (another rollout could take it).
fn settle(
    input: &Input<'_>,
    situation: &mut Situation<'_>,
    draft: &mut Draft,
    finishing: Vec<Finishing>,
    halts: &Halts,
    mode: Mode<'_>,
) {
    let rollback_on_failure = input.policy.strategy.on_failure == OnFailure::Rollback;
    for Finishing { index, release } in finishing {
        let TargetAction::Release { target, record, .. } = &release else {
            draft.actions.push(release);
            continue;
        };
        let applied =
            matches!(record.state, RecordState::Updated | RecordState::Failed) && record.applied;
        let failed = record.state == RecordState::Failed;
        let undo = halts.rolling_back
            || (failed && rollback_on_failure && matches!(mode, Mode::InFlightOnly(_)));
        if !(applied && undo) {
            draft.actions.push(release);
            continue;
        }
        let entry = &mut situation.entries[index];
        entry.state = State::Held { failed };
        draft.in_progress.push(InProgress {
            target: target.clone(),
            action: Action::Rollback,
            step: Step::AwaitingRollback,
            since: input.now,
            message: Some("waiting for its turn to be rolled back".into()),
        });
        draft.actions.push(TargetAction::Hold {
            target: target.clone(),
            record: record.clone(),
        });
    }
}

/// Held targets when the rollout is not rolling back: a rollout that may only finish what
/// it has in flight rolls them back in place; otherwise (a retry cleared the halt) they are
/// released as their work ended.
fn settle_held(input: &Input<'_>, situation: &Situation<'_>, draft: &mut Draft, mode: Mode<'_>) {
    for entry in &situation.entries {
        let (State::Held { failed }, Some(record)) = (entry.state, &entry.record) else {
            continue;
        };
        if matches!(mode, Mode::InFlightOnly(_)) {
            draft.lock(&entry.candidate.id, rollback_record(input, record));
            continue;
        }
        let observed = input.observed.get(&entry.candidate.id);
        let Some(observed) = observed else {
            // Not observed yet: whether to uncordon is not known. Wait.
            draft.in_progress.push(InProgress {
                target: entry.candidate.id.clone(),
                action: Action::Apply,
                step: Step::Releasing,
                since: input.now,
                message: Some("waiting to observe the target".into()),
            });
            continue;
        };
        let unschedulable = matches!(&observed.live, Live::Node(n) if n.unschedulable);
        let version = if failed {
            entry
                .candidate
                .annotations
                .get(&keys::version(&input.policy.name))
                .cloned()
        } else {
            Some(input.rollout.patch.version.clone())
        };
        draft.actions.push(TargetAction::Release {
            target: entry.candidate.id.clone(),
            record: record.clone(),
            version,
            uncordon: record.cordoned && unschedulable,
        });
    }
}

/// Held targets that stay held are in progress: they keep their lock.
fn report_held(input: &Input<'_>, situation: &Situation<'_>, draft: &mut Draft) {
    let released = draft
        .released()
        .into_iter()
        .cloned()
        .collect::<BTreeSet<_>>();
    for entry in &situation.entries {
        let id = &entry.candidate.id;
        if !matches!(entry.state, State::Held { .. })
            || released.contains(id)
            || draft.in_progress.iter().any(|p| &p.target == id)
        {
            continue;
        }
        let since = input
            .status
            .in_progress
            .iter()
            .find(|p| &p.target == id && p.step == Step::AwaitingRollback)
            .map_or(input.now, |p| p.since);
        draft.in_progress.push(InProgress {
            target: id.clone(),
            action: Action::Rollback,
            step: Step::AwaitingRollback,
            since,
            message: Some("waiting for its turn to be rolled back".into()),
        });
    }
}

/// The record that starts rolling back a target the rollout changed.
fn rollback_record(input: &Input<'_>, record: &Record) -> Record {
    // A target that failed keeps why it failed through its rollback, for the status.
    let failed = record.state == RecordState::Failed;
    let record = record.clone();
    Record {
        state: RecordState::RollingBack,
        since: input.now,
        attempt: input.rollout.retry,
        reason: record.reason.filter(|_| failed),
        message: record.message.filter(|_| failed),
        ..record
    }
}

/// Locks this rollout holds on targets it has no work on are released.
fn release_orphaned_locks(input: &Input<'_>, situation: &Situation<'_>, draft: &mut Draft) {
    let name = &input.rollout.name;
    let working: BTreeSet<&TargetId> = situation
        .entries
        .iter()
        .filter(|e| e.state.locked())
        .map(|e| &e.candidate.id)
        .chain(draft.in_progress.iter().map(|p| &p.target))
        .collect();
    let released: BTreeSet<TargetId> = draft.released().into_iter().cloned().collect();
    for candidate in input.candidates {
        if holds(candidate, name)
            && !working.contains(&candidate.id)
            && !released.contains(&candidate.id)
        {
            draft.actions.push(TargetAction::Unlock {
                target: candidate.id.clone(),
            });
        }
    }
}

/// An updated target that turns unhealthy while its wave soaks fails, unless another
/// rollout has changed it since.
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
        if !health.fails() || entry.overtaken {
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
pub(super) struct Halts {
    pub(super) halt: Option<Halt>,
    pub(super) acknowledged: u32,
    /// Undoing what the rollout changed (a halt with `onFailure: Rollback`, or an abort).
    pub(super) rolling_back: bool,
    /// Stopped for a person (a halt with `onFailure: Pause`).
    pub(super) paused: bool,
}

fn halts(input: &Input<'_>, situation: &Situation<'_>, draft: &mut Draft, mode: Mode<'_>) -> Halts {
    let (now, rollout, policy, previous) = (input.now, input.rollout, input.policy, input.status);
    let eligible = situation.entries.len() as u32;
    let failed = situation
        .entries
        .iter()
        .filter(|e| {
            matches!(
                e.state,
                State::Failed | State::RollbackFailed | State::Held { failed: true }
            )
        })
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
        !e.overtaken
            && matches!(
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
            .any(|e| matches!(e.state, State::Failed | State::Held { failed: true }))
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
            // A rollout that only finishes what it has in flight is not paused for a person:
            // nothing of it is left to resume.
            let asks = matches!(mode, Mode::Normal | Mode::InFlightOnly(Why::GivesWay(_)));
            if !rollout.paused && asks {
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
        let previous = input.status.phase;
        let reopened = situation.retrying || (previous == Phase::Superseded && !input.superseded);
        Gates {
            approval_at,
            approved: rollout.approved || approval_at.is_some_and(|at| now >= at),
            window_open: input.window.is_none_or(|w| w.is_open(now)),
            window_allows: rollout.patch.emergency || input.window.is_none_or(|w| w.may_start(now)),
            finished_before: previous.is_finished() && !reopened,
        }
    }
}

/// Starts rolling back what the rollout changed, most recent first within each pool, under
/// `maxUnavailable`, once no target is still applying. A held target moves to its rollback
/// under the lock it holds; a released one is locked again. Returns how many started and how
/// many remain to roll back.
fn start_rollbacks(
    input: &Input<'_>,
    situation: &Situation<'_>,
    draft: &mut Draft,
    mode: Mode<'_>,
) -> (usize, usize) {
    let rollout = input.rollout;
    let applying = situation
        .entries
        .iter()
        .any(|e| e.state == State::InProgress(Action::Apply));
    let mut undo: Vec<&Entry<'_>> = situation
        .entries
        .iter()
        .filter(|e| {
            !e.overtaken
                && match e.state {
                    State::Updated | State::Held { .. } => true,
                    State::Failed => e.record.as_ref().is_some_and(|r| r.applied),
                    State::Pending
                    | State::LockedElsewhere
                    | State::InProgress(_)
                    | State::RolledBack
                    | State::RollbackFailed => false,
                }
        })
        .collect();
    undo.sort_by(|a, b| {
        let started = |e: &Entry<'_>| e.record.as_ref().map(|r| r.started);
        started(b)
            .cmp(&started(a))
            .then_with(|| b.candidate.id.cmp(&a.candidate.id))
    });
    // `spec.paused` holds a rollback, but not an abort: a person who aborts wants the
    // rollback now, whoever set `paused` (it may be the operator's own halt). Nor a
    // deletion: the targets held for their rollback must be let go.
    if rollout.paused && !rollout.abort && mode != Mode::InFlightOnly(Why::Stopping) {
        return (0, undo.len());
    }
    let mut started = 0;
    if matches!(mode, Mode::InFlightOnly(_)) {
        // Only what is in flight is undone, in place, in any order.
        for entry in undo
            .iter()
            .filter(|e| matches!(e.state, State::Held { .. }))
        {
            if let Some(record) = &entry.record {
                draft.lock(&entry.candidate.id, rollback_record(input, record));
                started += 1;
            }
        }
        return (started, undo.len() - started);
    }
    if applying {
        return (0, undo.len());
    }
    let capacity = Capacity::new(input, situation);
    let mut busy = capacity.busy(input, &draft.released());
    // Within a pool, a target waits for every more recent one: once one cannot start, the
    // older ones of its pool wait too.
    let mut blocked: BTreeSet<Option<&str>> = BTreeSet::new();
    for entry in &undo {
        if blocked.contains(&entry.pool) {
            continue;
        }
        let held = matches!(entry.state, State::Held { .. });
        if !held && (entry.lock.is_some() || !capacity.admits(&busy, entry.pool)) {
            blocked.insert(entry.pool);
            continue;
        }
        let Some(record) = &entry.record else {
            continue;
        };
        if !held {
            *busy.entry(entry.pool).or_default() += 1;
        }
        draft.lock(&entry.candidate.id, rollback_record(input, record));
        started += 1;
    }
    (started, undo.len() - started)
}

/// Starts pending targets of the current wave, in order, under `maxUnavailable` per pool,
/// counting the targets every rollout of the policy has in progress.
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
    let mut busy = capacity.busy(input, &draft.released());
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
            uid: (!rollout.uid.is_empty()).then(|| rollout.uid.clone()),
        };
        *busy.entry(entry.pool).or_default() += 1;
        // A record it cannot read is replaced by the one written with the lock: say so.
        if let Some(problem) =
            untrusted::record_problem(&entry.candidate.annotations, &input.policy.name)
        {
            draft
                .events
                .push(bad_annotation(&entry.candidate.id, &problem));
        }
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
    mode: Mode<'_>,
    started: usize,
    rollback_left: usize,
) -> Phase {
    let active = !draft.in_progress.is_empty();
    let rollout = input.rollout;
    if gates.finished_before && !active {
        input.status.phase
    } else if input.superseded && !(position.done && !active && all_finished(situation)) {
        Phase::Superseded
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
    } else if position.done && !active && all_finished(situation) {
        Phase::Succeeded
    } else if !gates.approved && !active {
        Phase::AwaitingApproval
    } else if rollout.paused
        || input.policy.suspend
        || position.awaiting_promotion
        || mode.gives_way_to().is_some()
    {
        Phase::Paused
    } else if active || started > 0 || position.soaking_until.is_some() || gates.window_allows {
        Phase::Progressing
    } else {
        Phase::Scheduled
    }
}

fn all_finished(situation: &Situation<'_>) -> bool {
    situation.entries.iter().all(|e| e.state.finished())
}
