//! The rollout's targets as they stand before a decision: their states, the waves, how far
//! the waves have come, and how many targets each pool may have in progress.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;

use super::{Action, Counts, InProgress, Input, Record, RecordState};
use crate::{
    keys,
    plan::{self, Inventory, Wave},
    target::{Candidate, TargetId},
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
    Updated,
    Failed,
    RolledBack,
    RollbackFailed,
}

impl State {
    pub(super) const fn finished(self) -> bool {
        matches!(
            self,
            State::Updated | State::Failed | State::RolledBack | State::RollbackFailed
        )
    }
}

/// An eligible target, in rollout order.
pub(super) struct Entry<'a> {
    pub(super) candidate: &'a Candidate,
    pub(super) pool: Option<&'a str>,
    pub(super) lock: Option<&'a str>,
    pub(super) record: Option<Record>,
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

fn lock_of(candidate: &Candidate) -> Option<&str> {
    candidate.annotations.get(keys::LOCK).map(String::as_str)
}

pub(super) fn situation<'a>(input: &'a Input<'a>) -> Situation<'a> {
    let rollout = input.rollout;
    let policy = input.policy;
    let retrying = rollout.retry > input.status.observed_retry;
    let record_key = keys::record(&policy.name);
    // Records are parsed once, and only those of this rollout are kept.
    let records: BTreeMap<&TargetId, Record> = input
        .candidates
        .iter()
        .filter(|c| {
            c.annotations
                .get(&record_key)
                .is_some_and(|r| r.contains(rollout.name.as_str()))
        })
        .filter_map(|c| Record::read(&c.annotations, &policy.name).map(|r| (&c.id, r)))
        .filter(|(_, r)| r.rollout == rollout.name)
        .collect();
    let query = plan::Query {
        policy: &policy.name,
        version: &rollout.patch.version,
        images: rollout.patch.images(),
        group_by: policy.strategy.group_by.as_deref(),
        now: input.now,
    };
    let inventory = plan::inventory(
        &policy.targets,
        &query,
        input.candidates,
        input.namespaces,
        |c| records.contains_key(&c.id) || lock_of(c) == Some(rollout.name.as_str()),
    );
    let waves = plan::waves(&policy.strategy, inventory.eligible.len());
    let entries = inventory
        .eligible
        .iter()
        .map(|candidate| {
            let lock = lock_of(candidate);
            let record = records.get(&candidate.id).cloned();
            let ours = lock == Some(rollout.name.as_str());
            let stale = |r: &Record| r.attempt < rollout.retry;
            let state = match &record {
                Some(r) => match r.state.in_progress() {
                    Some(action) if ours || lock.is_none() => State::InProgress(action),
                    Some(_) => State::LockedElsewhere,
                    None => match r.state {
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

/// How many targets may be in progress at once, per pool.
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

    pub(super) fn busy(&self, situation: &Situation<'a>) -> BTreeMap<Option<&'a str>, u32> {
        let mut busy = BTreeMap::new();
        for entry in &situation.entries {
            if matches!(entry.state, State::InProgress(_)) {
                *busy.entry(entry.pool).or_default() += 1;
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
            State::InProgress(_) => {}
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
