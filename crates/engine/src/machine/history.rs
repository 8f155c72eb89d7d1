//! The health-check history of a rollout's targets, as Argo Rollouts keeps AnalysisRuns:
//! for each target in progress or failed, the last few observations of each of its checks.
//! It lives in the rollout's status, so it survives restarts, and is read back from the
//! status written last.
//!
//! The rules, applied by [`record`] after each decision:
//! - **When**: an observation is recorded when a check's result, HTTP status code or reason
//!   differs from the last one recorded for it, not at every poll. A passing check whose
//!   value moves within its bounds has not changed (its value is the one it passed with
//!   first); a failing one says its value in its reason.
//! - **Which targets**: while the engine judges their health: in `Verifying` and `Soaking`
//!   (the decision that enters or leaves those steps included), and the decision that fails
//!   a target on a fatal signal at any step, or on a check failing in its wave's soak.
//! - **Where**: on the target's in-progress entry while it is worked on (an action, apply or
//!   rollback, starts afresh); moved to its failure when it fails, where it stays as the
//!   evidence, no longer added to. It is dropped with the entry: when the target finishes
//!   successfully, leaves the failures listed (a retry, older than the last
//!   [`MAX_FAILURES`](super::MAX_FAILURES)).
//! - **How much**: at most [`PER_CHECK`] observations a check (the oldest dropped),
//!   [`MAX_CHECKS`] checks a target, [`MAX_TOTAL`] observations in the whole status (the
//!   oldest dropped first, a check's latest observation only when no older one is left, a
//!   failed target's after an in-progress one's); reasons cut to [`MAX_REASON`] characters.
//! - **No writes of its own**: a decision whose status differs from the last one only by
//!   the history keeps the last history, so the history never causes a status write by
//!   itself; what changed is recorded with the next write, at its time.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;

use super::{Failure, InProgress, Observed, Status};
use crate::{rollout::Step, target::TargetId};

/// Observations kept for each check of a target.
pub const PER_CHECK: usize = 5;
/// Checks kept for each target (a policy has at most 16).
pub const MAX_CHECKS: usize = 16;
/// Observations kept in one rollout's status.
pub const MAX_TOTAL: usize = 200;
/// Characters kept of a reason.
pub const MAX_REASON: usize = 256;
/// Characters kept of a check's name.
pub const MAX_CHECK_NAME: usize = 64;

/// How a check came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CheckResult {
    /// It passed.
    Pass,
    /// It failed.
    Fail,
    /// Not passing yet, for a reason expected to pass on its own (a pod starting, a check's
    /// Job running).
    Settling,
    /// It failed, and will not pass however long one waits (a crash loop).
    Fatal,
}

impl CheckResult {
    /// The result as a word: `Pass`, `Fail`, `Settling` or `Fatal`.
    pub const fn as_str(self) -> &'static str {
        match self {
            CheckResult::Pass => "Pass",
            CheckResult::Fail => "Fail",
            CheckResult::Settling => "Settling",
            CheckResult::Fatal => "Fatal",
        }
    }
}

/// One check's outcome, as the controller just observed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckOutcome {
    /// The check: its kind and a short identity, like `http /healthz`.
    pub check: String,
    /// How it came out.
    pub result: CheckResult,
    /// The HTTP status answered, where one was.
    pub code: Option<u16>,
    /// The value measured (a Prometheus sample), where one was.
    pub value: Option<String>,
    /// Why it did not pass (or, passing, what it saw).
    pub reason: Option<String>,
}

/// An outcome recorded at an instant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckObservation {
    /// When it was recorded.
    pub at: Timestamp,
    /// How the check came out.
    pub result: CheckResult,
    /// The HTTP status answered.
    pub code: Option<u16>,
    /// The value measured.
    pub value: Option<String>,
    /// Why.
    pub reason: Option<String>,
}

impl CheckObservation {
    /// Whether `other` says something new after this one: another result, code or reason.
    fn same_as(&self, other: &CheckObservation) -> bool {
        (self.result, self.code, &self.reason) == (other.result, other.code, &other.reason)
    }
}

/// The recent observations of one check of a target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckHistory {
    /// The check, as [`CheckOutcome::check`] names it.
    pub check: String,
    /// Oldest first; the last is how the check stands.
    pub observations: Vec<CheckObservation>,
}

/// The health-check history of a rollout's targets.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HealthHistory {
    /// Of each target in progress, since its current action began.
    pub in_progress: BTreeMap<TargetId, Vec<CheckHistory>>,
    /// Of each failed target listed, up to its failure.
    pub failed: BTreeMap<TargetId, Vec<CheckHistory>>,
}

impl HealthHistory {
    /// How many observations it holds.
    pub fn len(&self) -> usize {
        self.in_progress
            .values()
            .chain(self.failed.values())
            .flatten()
            .map(|c| c.observations.len())
            .sum()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The steps in which the engine judges a target's health.
fn judging(step: Step) -> bool {
    match step {
        Step::Verifying | Step::Soaking => true,
        Step::Locked
        | Step::Cordoning
        | Step::Draining
        | Step::Updating
        | Step::Rebooting
        | Step::Uncordoning
        | Step::RollingOut
        | Step::Releasing
        | Step::AwaitingRollback => false,
    }
}

/// The history to write with `status`, decided from `previous` (the status written last)
/// and the checks `observed` at `now`. See the [module](self) documentation.
pub fn record(
    previous: &Status,
    status: &Status,
    observed: &BTreeMap<TargetId, Observed>,
    now: Timestamp,
) -> HealthHistory {
    let unchanged = {
        let mut bare = status.clone();
        bare.health = previous.health.clone();
        bare == *previous
    };
    if unchanged {
        return previous.health.clone();
    }
    let before: BTreeMap<&TargetId, &InProgress> = previous
        .in_progress
        .iter()
        .map(|p| (&p.target, p))
        .collect();
    let failed_before: BTreeMap<&TargetId, &Failure> =
        previous.failures.iter().map(|f| (&f.target, f)).collect();
    let health = |target: &TargetId| observed.get(target).and_then(|o| o.health.as_ref());
    let mut history = HealthHistory::default();
    let mut newly_failed = BTreeSet::new();
    for failure in &status.failures {
        let target = &failure.target;
        let same = failed_before
            .get(target)
            .is_some_and(|f| (&f.reason, &f.message) == (&failure.reason, &failure.message));
        let checks = if same {
            previous
                .health
                .failed
                .get(target)
                .cloned()
                .unwrap_or_default()
        } else {
            // It failed just now: what was seen while it was worked on, and what failed it.
            newly_failed.insert(target);
            let was = before.get(target);
            let mut checks = was
                .and_then(|_| previous.health.in_progress.get(target))
                .cloned()
                .unwrap_or_default();
            if let Some(health) = health(target)
                && (was.is_none_or(|p| judging(p.step)) || health.fatal.is_some())
            {
                observe(&mut checks, &health.checks, now);
            }
            checks
        };
        if !checks.is_empty() {
            history.failed.insert(target.clone(), checks);
        }
    }
    for progress in &status.in_progress {
        let target = &progress.target;
        if newly_failed.contains(target) {
            // Held for its rollback: what it showed went to its failure.
            continue;
        }
        let was = before.get(target).filter(|p| p.action == progress.action);
        let mut checks = was
            .and_then(|_| previous.health.in_progress.get(target))
            .cloned()
            .unwrap_or_default();
        if let Some(health) = health(target)
            && (judging(progress.step) || was.is_some_and(|p| judging(p.step)))
        {
            observe(&mut checks, &health.checks, now);
        }
        if !checks.is_empty() {
            history.in_progress.insert(target.clone(), checks);
        }
    }
    bound(&mut history);
    history
}

/// Adds to `checks` the outcomes that say something new.
fn observe(checks: &mut Vec<CheckHistory>, outcomes: &[CheckOutcome], now: Timestamp) {
    for outcome in outcomes {
        let check = shorten(&outcome.check, MAX_CHECK_NAME);
        let observation = CheckObservation {
            at: now,
            result: outcome.result,
            code: outcome.code,
            value: outcome.value.as_deref().map(|v| shorten(v, MAX_CHECK_NAME)),
            reason: outcome.reason.as_deref().map(|r| shorten(r, MAX_REASON)),
        };
        match checks.iter_mut().find(|c| c.check == check) {
            Some(history) => {
                if history
                    .observations
                    .last()
                    .is_some_and(|last| last.same_as(&observation))
                {
                    continue;
                }
                history.observations.push(observation);
                let excess = history.observations.len().saturating_sub(PER_CHECK);
                history.observations.drain(..excess);
            }
            None => checks.push(CheckHistory {
                check,
                observations: vec![observation],
            }),
        }
    }
}

/// `text` cut to `max` characters, an ellipsis marking the cut.
fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut short: String = text.chars().take(max - 1).collect();
    short.push('…');
    short
}

/// Holds `history` to [`MAX_CHECKS`] checks a target and [`MAX_TOTAL`] observations.
fn bound(history: &mut HealthHistory) {
    for checks in history
        .in_progress
        .values_mut()
        .chain(history.failed.values_mut())
    {
        while checks.len() > MAX_CHECKS {
            // The check seen least recently goes.
            let stale = (0..checks.len())
                .min_by_key(|&i| checks[i].observations.last().map(|o| o.at))
                .unwrap_or(0);
            checks.remove(stale);
        }
    }
    let excess = history.len().saturating_sub(MAX_TOTAL);
    if excess == 0 {
        return;
    }
    // Oldest first; each check's latest last, a failed target's after an in-progress one's.
    let mut all = Vec::new();
    for (failed, map) in [(false, &history.in_progress), (true, &history.failed)] {
        for (target, checks) in map {
            for (c, check) in checks.iter().enumerate() {
                let last = check.observations.len() - 1;
                for (o, observation) in check.observations.iter().enumerate() {
                    let key = (o == last, failed, observation.at);
                    all.push((key, failed, target.clone(), c, o));
                }
            }
        }
    }
    all.sort_by_key(|entry| entry.0);
    let dropped: BTreeSet<(bool, TargetId, usize, usize)> = all
        .into_iter()
        .take(excess)
        .map(|(_, failed, target, c, o)| (failed, target, c, o))
        .collect();
    for (failed, map) in [
        (false, &mut history.in_progress),
        (true, &mut history.failed),
    ] {
        for (target, checks) in map.iter_mut() {
            for (c, check) in checks.iter_mut().enumerate() {
                let mut o = 0;
                check.observations.retain(|_| {
                    let keep = !dropped.contains(&(failed, target.clone(), c, o));
                    o += 1;
                    keep
                });
            }
            checks.retain(|c| !c.observations.is_empty());
        }
        map.retain(|_, checks| !checks.is_empty());
    }
}

#[cfg(test)]
mod tests {
    use super::{super::*, *};

    fn at(minute: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + minute * 60).unwrap()
    }

    fn outcome(check: &str, result: CheckResult, code: Option<u16>, reason: &str) -> CheckOutcome {
        CheckOutcome {
            check: check.into(),
            result,
            code,
            value: None,
            reason: (!reason.is_empty()).then(|| reason.into()),
        }
    }

    fn observed(target: &TargetId, checks: Vec<CheckOutcome>) -> BTreeMap<TargetId, Observed> {
        let health = HealthFacts {
            checks,
            ..HealthFacts::healthy()
        };
        BTreeMap::from([(
            target.clone(),
            Observed {
                live: Live::Node(NodeFacts::default()),
                health: Some(health),
            },
        )])
    }

    fn in_progress(target: &TargetId, step: Step, message: &str) -> Status {
        Status {
            in_progress: vec![InProgress {
                target: target.clone(),
                action: Action::Apply,
                step,
                since: at(0),
                message: Some(message.into()),
            }],
            ..Status::default()
        }
    }

    /// The results (with codes) recorded of `check` for `target` in progress.
    fn results(history: &HealthHistory, target: &TargetId, check: &str) -> Vec<String> {
        history.in_progress[target]
            .iter()
            .find(|c| c.check == check)
            .map(|c| {
                c.observations
                    .iter()
                    .map(|o| match o.code {
                        Some(code) => format!("{} {code}", o.result.as_str()),
                        None => o.result.as_str().to_owned(),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Decides the history of `n1` verifying, after `status`, with `checks` observed.
    fn step(status: &Status, minute: i64, message: &str, checks: Vec<CheckOutcome>) -> Status {
        let n1 = TargetId::node("n1");
        let mut next = in_progress(&n1, Step::Verifying, message);
        next.health = record(status, &next, &observed(&n1, checks), at(minute));
        next
    }

    #[test]
    fn a_change_is_recorded_a_repeat_is_not_and_each_check_keeps_its_last_five() {
        use CheckResult::*;
        let n1 = TargetId::node("n1");
        let http = |code: u16, result| {
            outcome(
                "http /healthz",
                result,
                Some(code),
                if code == 200 { "" } else { "answered 503" },
            )
        };
        let ready = outcome("nodeReady", Pass, None, "");
        let mut status = step(
            &Status::default(),
            1,
            "m1",
            vec![ready.clone(), http(503, Fail)],
        );
        // The same outcomes again, in a status that changed otherwise: nothing new.
        status = step(&status, 2, "m2", vec![ready.clone(), http(503, Fail)]);
        assert_eq!(results(&status.health, &n1, "http /healthz"), ["Fail 503"]);
        assert_eq!(results(&status.health, &n1, "nodeReady"), ["Pass"]);
        for minute in 3..10 {
            let (code, result) = if minute % 2 == 0 {
                (503, Fail)
            } else {
                (200, Pass)
            };
            status = step(
                &status,
                minute,
                &format!("m{minute}"),
                vec![ready.clone(), http(code, result)],
            );
        }
        assert_eq!(
            results(&status.health, &n1, "http /healthz"),
            ["Pass 200", "Fail 503", "Pass 200", "Fail 503", "Pass 200"]
        );
        let times: Vec<_> = status.health.in_progress[&n1][1]
            .observations
            .iter()
            .map(|o| o.at)
            .collect();
        assert_eq!(times, [at(5), at(6), at(7), at(8), at(9)]);
        // The first nodeReady observation stays: it never changed.
        assert_eq!(status.health.in_progress[&n1][0].observations[0].at, at(1));
    }

    #[test]
    fn the_history_alone_never_makes_a_write() {
        let n1 = TargetId::node("n1");
        let fail = outcome("podsReady", CheckResult::Fail, None, "1 pod(s) not Ready");
        let first = step(&Status::default(), 1, "waiting", vec![fail]);
        // Only the check changed: the status stays as written, history included.
        let pass = outcome("podsReady", CheckResult::Pass, None, "");
        let same = step(&first, 2, "waiting", vec![pass.clone()]);
        assert_eq!(same, first);
        // With the next write that happens anyway, the change is recorded.
        let next = step(&same, 3, "soaking", vec![pass]);
        assert_eq!(results(&next.health, &n1, "podsReady"), ["Fail", "Pass"]);
        assert_eq!(next.health.in_progress[&n1][0].observations[1].at, at(3));
    }

    #[test]
    fn steps_before_the_health_checks_record_nothing() {
        let n1 = TargetId::node("n1");
        let rebooting = in_progress(&n1, Step::Rebooting, "waiting for the reboot");
        let checks = vec![outcome(
            "nodeReady",
            CheckResult::Fail,
            None,
            "Ready is not True",
        )];
        let history = record(
            &Status::default(),
            &rebooting,
            &observed(&n1, checks),
            at(1),
        );
        assert!(history.is_empty(), "{history:?}");
    }

    #[test]
    fn a_failure_keeps_its_evidence_and_a_success_drops_it() {
        let n1 = TargetId::node("n1");
        let http = outcome(
            "http /healthz",
            CheckResult::Fail,
            Some(503),
            "answered 503",
        );
        let soaking = step(&Status::default(), 1, "soaking", vec![http.clone()]);
        // It fails: the history moves to the failure, with what failed it, and the entry
        // held for its rollback starts afresh.
        let mut failed = in_progress(&n1, Step::AwaitingRollback, "awaiting its rollback");
        failed.failures = vec![Failure {
            target: n1.clone(),
            reason: "Unhealthy".into(),
            message: "a health check failed during the soak".into(),
        }];
        failed.health = record(&soaking, &failed, &observed(&n1, vec![http.clone()]), at(2));
        assert!(failed.health.in_progress.is_empty());
        assert_eq!(failed.health.failed[&n1][0].observations.len(), 1);
        // Later decisions keep the evidence as it was, whatever the checks say now.
        let pass = outcome("http /healthz", CheckResult::Pass, Some(200), "");
        let mut later = failed.clone();
        later.in_progress[0].step = Step::Locked;
        later.in_progress[0].action = Action::Rollback;
        later.health = record(&failed, &later, &observed(&n1, vec![pass.clone()]), at(3));
        assert_eq!(later.health.failed, failed.health.failed);
        // A target that finishes successfully leaves no history.
        let done = Status {
            message: "1 updated".into(),
            ..Status::default()
        };
        let history = record(&soaking, &done, &observed(&n1, vec![pass]), at(4));
        assert!(history.is_empty(), "{history:?}");
    }

    #[test]
    fn the_whole_status_is_bounded_the_latest_kept_last() {
        let mut history = HealthHistory::default();
        let targets: Vec<TargetId> = (0..60)
            .map(|i| TargetId::node(&format!("n{i:02}")))
            .collect();
        for (i, target) in targets.iter().enumerate() {
            let observations = (0..4)
                .map(|k| CheckObservation {
                    at: at(i as i64 * 10 + k),
                    result: CheckResult::Pass,
                    code: None,
                    value: None,
                    reason: None,
                })
                .collect();
            history.in_progress.insert(
                target.clone(),
                vec![CheckHistory {
                    check: "podsReady".into(),
                    observations,
                }],
            );
        }
        assert_eq!(history.len(), 240);
        bound(&mut history);
        assert_eq!(history.len(), MAX_TOTAL);
        // Every target keeps its latest observation; the oldest others went first.
        for target in &targets {
            let kept = &history.in_progress[target][0].observations;
            assert!(kept.last().is_some_and(|o| o.at.as_second() % 600 == 180));
        }
        assert_eq!(history.in_progress[&targets[0]][0].observations.len(), 1);
        assert_eq!(history.in_progress[&targets[59]][0].observations.len(), 4);
        // Long reasons are cut.
        let long = "x".repeat(300);
        let mut checks = Vec::new();
        observe(
            &mut checks,
            &[outcome("job smoke", CheckResult::Fail, None, &long)],
            at(0),
        );
        let reason = checks[0].observations[0].reason.as_ref().unwrap();
        assert_eq!(reason.chars().count(), MAX_REASON);
        assert!(reason.ends_with('…'));
    }
}
