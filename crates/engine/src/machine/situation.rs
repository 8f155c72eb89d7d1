//! The rollout's targets as they stand before a decision: their states, the waves, how far
//! the waves have come, and how many targets each pool may have in progress.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;

use super::{Action, Counts, InProgress, Input, Record, RecordState, Records};
use crate::{
    keys,
    plan::{self, Inventory, Wave},
    target::{Candidate, TargetId},
    untrusted,
};

/// Where one eligible target stands with this rollout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum State {
    /// Not started (or sent back by a retry).
    Pending,
    /// Another rollout holds its lock.
    LockedElsewhere,
    /// This rollout works on it.
    InProgress(Action),
    /// Its work ended with its change made (`failed` or not) and this rollout keeps the
    /// lock: it waits for its turn to be rolled back, under the same lock.
    Held {
        /// The work failed.
        failed: bool,
    },
    Updated,
    Failed,
    RolledBack,
    RollbackFailed,
}

impl State {
    pub(super) const fn finished(self) -> bool {
        match self {
            State::Updated | State::Failed | State::RolledBack | State::RollbackFailed => true,
            // A held target has finished its work; it only waits to be undone.
            State::Held { .. } => true,
            State::Pending | State::LockedElsewhere | State::InProgress(_) => false,
        }
    }

    /// The rollout holds the target's lock.
    pub(super) const fn locked(self) -> bool {
        matches!(self, State::InProgress(_) | State::Held { .. })
    }
}

/// An eligible target, in rollout order.
pub(super) struct Entry<'a> {
    pub(super) candidate: &'a Candidate,
    pub(super) pool: Option<&'a str>,
    pub(super) lock: Option<&'a str>,
    /// This rollout's record on the target.
    pub(super) record: Option<Record>,
    /// Another rollout of the policy has taken the target's lock since this rollout's
    /// record was written: what the target carries now is no longer this rollout's doing.
    pub(super) overtaken: bool,
    pub(super) state: State,
}

/// The rollout's targets and waves, before anything is decided.
pub(super) struct Situation<'a> {
    pub(super) inventory: Inventory<'a>,
    pub(super) entries: Vec<Entry<'a>>,
    pub(super) waves: Vec<Wave>,
    /// `spec.retry` is newer than what the status acted on.
    pub(super) retrying: bool,
}

pub(super) fn lock_of(candidate: &Candidate) -> Option<&str> {
    candidate.annotations.get(keys::LOCK).map(String::as_str)
}

/// Whether the target carries a lock the rollout `rollout` took: one naming it that a record
/// says it took. A lock naming it that it did not take is not its own, to work under or to
/// release ([`untrusted::lock_problem`]).
pub(super) fn holds(candidate: &Candidate, rollout: &str) -> bool {
    lock_of(candidate) == Some(rollout) && untrusted::lock_problem(&candidate.annotations).is_none()
}

/// This rollout's record on a target, and whether it is the current one.
fn own_record(
    input: &Input<'_>,
    record_key: &str,
    candidate: &Candidate,
) -> Option<(Record, bool)> {
    let rollout = input.rollout;
    let value = candidate.annotations.get(record_key)?;
    // Most targets carry no record of this rollout: skip parsing them.
    if !value.contains(rollout.name.as_str()) {
        return None;
    }
    let records = Records::parse(value)?;
    let current = records.current.belongs_to(&rollout.name, &rollout.uid);
    let record = records.of(&rollout.name, &rollout.uid)?.clone();
    Some((record, current))
}

pub(super) fn situation<'a>(input: &'a Input<'a>) -> Situation<'a> {
    let rollout = input.rollout;
    let policy = input.policy;
    let retrying = rollout.retry > input.status.observed_retry && !input.superseded;
    let record_key = keys::record(&policy.name);
    // Records are parsed once, and only those of this rollout are kept.
    let records: BTreeMap<&TargetId, (Record, bool)> = input
        .candidates
        .iter()
        .filter_map(|c| own_record(input, &record_key, c).map(|r| (&c.id, r)))
        .collect();
    let touched = |c: &Candidate| records.contains_key(&c.id) || holds(c, &rollout.name);
    let query = plan::Query {
        policy: &policy.name,
        version: &rollout.patch.version,
        images: rollout.patch.images(),
        group_by: policy.strategy.group_by.as_deref(),
        now: input.now,
    };
    let mut inventory = plan::inventory(
        &policy.targets,
        &query,
        input.candidates,
        input.namespaces,
        touched,
    );
    // Targets the rollout has worked on stay its targets even if the policy no longer
    // selects them (relabelled mid-flight): their work is finished, never abandoned.
    let listed: BTreeSet<&TargetId> = inventory.eligible.iter().map(|c| &c.id).collect();
    let strays: Vec<&Candidate> = input
        .candidates
        .iter()
        .filter(|c| touched(c) && !listed.contains(&c.id))
        .collect();
    inventory.eligible.extend(strays);
    // Targets already worked on come first, each part in rollout order: targets that
    // become eligible later (a new node, an exclusion lifted) join after them, so the waves
    // the rollout has been through keep their targets.
    let (mut order, rest): (Vec<&Candidate>, Vec<&Candidate>) =
        inventory.eligible.iter().partition(|c| touched(c));
    order.extend(rest);
    inventory.eligible = order;
    let waves = plan::waves(&policy.strategy, inventory.eligible.len());
    let entries = inventory
        .eligible
        .iter()
        .map(|candidate| {
            let lock = lock_of(candidate);
            let (record, current) = match records.get(&candidate.id) {
                Some((record, current)) => (Some(record.clone()), *current),
                None => (None, false),
            };
            let ours = lock == Some(rollout.name.as_str());
            // The rollout's work in progress whose lock a person overwrote with one
            // patchpilot did not take: still its own, as its current record says. (A
            // finished target's record cannot tell whether the rollout kept its lock.)
            let overwritten =
                || current && untrusted::lock_problem(&candidate.annotations).is_some();
            let stale = |r: &Record| r.attempt < rollout.retry;
            let state = match &record {
                Some(r) => match r.state.in_progress() {
                    Some(action) if ours || lock.is_none() || overwritten() => {
                        State::InProgress(action)
                    }
                    Some(_) => State::LockedElsewhere,
                    None => match r.state {
                        RecordState::Updated | RecordState::Failed if ours && current => {
                            State::Held {
                                failed: r.state == RecordState::Failed,
                            }
                        }
                        RecordState::Updated => State::Updated,
                        _ if stale(r) => State::Pending,
                        RecordState::Failed => State::Failed,
                        RecordState::RolledBack => State::RolledBack,
                        RecordState::RollbackFailed => State::RollbackFailed,
                        RecordState::Applying | RecordState::RollingBack => State::Pending,
                    },
                },
                None => State::Pending,
            };
            let state = match (state, lock) {
                (State::Pending, Some(holder)) if holder != rollout.name => State::LockedElsewhere,
                (state, _) => state,
            };
            Entry {
                candidate,
                pool: policy.targets.pool(candidate),
                lock,
                overtaken: record.is_some() && !current,
                record,
                state,
            }
        })
        .collect();
    Situation {
        inventory,
        entries,
        waves,
        retrying,
    }
}

/// Where the waves stand.
pub(super) struct WavePosition {
    /// The current wave, from 0; `waves.len()` when there are none.
    pub(super) index: usize,
    /// The current wave is finished and soaking until this instant.
    pub(super) soaking_until: Option<Timestamp>,
    /// The canary is finished and soaked, and `afterCanary` holds the next wave.
    pub(super) awaiting_promotion: bool,
    /// Every wave is finished and soaked.
    pub(super) done: bool,
}

pub(super) fn wave_position(input: &Input<'_>, situation: &Situation<'_>) -> WavePosition {
    let waves = &situation.waves;
    let entries = &situation.entries;
    let remembered = input
        .status
        .wave
        .as_ref()
        .map_or(0, |w| w.index.saturating_sub(1) as usize);
    let mut index = if situation.retrying {
        0
    } else {
        remembered.min(waves.len().saturating_sub(1))
    };
    let mut position = WavePosition {
        index,
        soaking_until: None,
        awaiting_promotion: false,
        done: waves.is_empty(),
    };
    while let Some(wave) = waves.get(index) {
        position.index = index;
        if !entries[..wave.end].iter().all(|e| e.state.finished()) {
            return position;
        }
        let finished_at = entries[wave.start..wave.end]
            .iter()
            .filter_map(|e| e.record.as_ref().map(|r| r.since))
            .max()
            .unwrap_or(input.now);
        let soak_end = finished_at
            .saturating_add(wave.soak.signed())
            .unwrap_or(finished_at);
        if input.now < soak_end {
            position.soaking_until = Some(soak_end);
            return position;
        }
        let last = index + 1 == waves.len();
        if wave.name == "canary"
            && input.policy.approval.after_canary
            && !input.rollout.promoted
            && !last
        {
            position.awaiting_promotion = true;
            return position;
        }
        if last {
            position.done = true;
            return position;
        }
        index += 1;
    }
    position
}

/// How many targets may be in progress at once, per pool, across all the policy's
/// rollouts.
pub(super) struct Capacity<'a> {
    /// The limit of each pool (`None`: the rollout has no pools).
    limits: BTreeMap<Option<&'a str>, u32>,
}

impl<'a> Capacity<'a> {
    pub(super) fn new(input: &Input<'_>, situation: &Situation<'a>) -> Self {
        let mut sizes: BTreeMap<Option<&'a str>, u32> = BTreeMap::new();
        for entry in &situation.entries {
            *sizes.entry(entry.pool).or_default() += 1;
        }
        let max = input.policy.strategy.max_unavailable;
        let limits = sizes
            .into_iter()
            .map(|(pool, size)| (pool, max.floor_of(size).max(1)))
            .collect();
        Capacity { limits }
    }

    /// The targets in progress in each pool: those locked by any rollout of the policy
    /// (this one, the others, or one that no longer exists but whose record shows it held
    /// the lock for the policy), less those `released` by this decision.
    pub(super) fn busy(
        &self,
        input: &Input<'a>,
        released: &BTreeSet<&TargetId>,
    ) -> BTreeMap<Option<&'a str>, u32> {
        let mut busy = BTreeMap::new();
        let record_key = keys::record(&input.policy.name);
        for candidate in input.candidates {
            if released.contains(&candidate.id) {
                continue;
            }
            let record = || {
                candidate
                    .annotations
                    .get(&record_key)
                    .and_then(|v| Records::parse(v))
            };
            let of_policy = match lock_of(candidate) {
                Some(holder) if untrusted::lock_problem(&candidate.annotations).is_none() => {
                    holder == input.rollout.name
                        || input.siblings.iter().any(|s| s.name == holder)
                        || record().is_some_and(|r| r.current.rollout == holder)
                }
                // A lock a person removed, or overwrote with one patchpilot did not take,
                // while the policy's record says a rollout is at work on the target. (Most
                // targets carry a finished record: those are not parsed.)
                _ => {
                    let at_work = |v: &String| {
                        v.contains(r#""state":"Applying""#)
                            || v.contains(r#""state":"RollingBack""#)
                    };
                    candidate.annotations.get(&record_key).is_some_and(at_work)
                        && record().is_some_and(|r| r.current.state.in_progress().is_some())
                }
            };
            if of_policy {
                *busy
                    .entry(input.policy.targets.pool(candidate))
                    .or_default() += 1;
            }
        }
        busy
    }

    pub(super) fn admits(
        &self,
        busy: &BTreeMap<Option<&'a str>, u32>,
        pool: Option<&'a str>,
    ) -> bool {
        busy.get(&pool).copied().unwrap_or(0) < self.limits.get(&pool).copied().unwrap_or(1)
    }
}

pub(super) fn counts(situation: &Situation<'_>, in_progress: &[InProgress]) -> Counts {
    let mut counts = Counts {
        total: situation.inventory.selected as u32,
        excluded: situation.inventory.excluded.len() as u32,
        not_applicable: situation.inventory.not_applicable.len() as u32,
        up_to_date: situation.inventory.up_to_date.len() as u32,
        in_progress: in_progress.len() as u32,
        ..Counts::default()
    };
    let starting: BTreeSet<&TargetId> = in_progress.iter().map(|p| &p.target).collect();
    for entry in &situation.entries {
        if starting.contains(&entry.candidate.id) {
            continue;
        }
        match entry.state {
            State::Pending | State::LockedElsewhere => counts.pending += 1,
            State::InProgress(_) | State::Held { .. } => {}
            State::Updated => counts.updated += 1,
            State::Failed | State::RollbackFailed => counts.failed += 1,
            State::RolledBack => counts.rolled_back += 1,
        }
    }
    counts
}

/// Instants at which an `exclude-until` lifts an exclusion, making a target eligible.
pub(super) fn exclusion_expiries<'a>(input: &Input<'a>) -> impl Iterator<Item = Timestamp> + 'a {
    let now = input.now;
    input
        .candidates
        .iter()
        .filter(|c| c.annotations.contains_key(keys::EXCLUDE))
        .filter_map(|c| {
            c.annotations
                .get(keys::EXCLUDE_UNTIL)?
                .parse::<Timestamp>()
                .ok()
        })
        .filter(move |at| *at > now)
}
