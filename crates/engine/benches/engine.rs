//! How long the engine takes on a 5,000-target rollout: planning (selection, exclusions,
//! ordering, waves) and one decision in the middle of the rollout (2,000 targets updated,
//! 10 in progress, pools, zones and a maintenance window).
//!
//! Run with `cargo bench -p patchpilot-engine --bench engine`; it prints the median and the
//! 99th percentile of many runs. `PATCHPILOT_BENCH_TARGETS=50000` runs it over 50,000 targets
//! (20,000 updated), with the peak memory of the process.

use std::{
    collections::BTreeMap,
    hint::black_box,
    time::{Duration as StdDuration, Instant},
};

use jiff::Timestamp;
use patchpilot_engine::{
    keys,
    machine::{
        self, Action, HealthFacts, Input, JobFacts, JobState, Live, NodeFacts, Observed, Record,
        RecordState, Rollout, Status,
    },
    plan::{self, Namespaces, Query},
    policy::Policy,
    target::{Candidate, TargetId},
    testkit::Fleet,
    units::{Duration, IntOrPercent, Percent},
    window::{Recurrence, Schedule, WallClock, Window},
};

/// How many targets: 5,000, or `PATCHPILOT_BENCH_TARGETS` (such as 50000).
fn targets() -> usize {
    std::env::var("PATCHPILOT_BENCH_TARGETS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000)
}
/// Updated so far: two fifths of them.
fn updated() -> usize {
    targets() * 2 / 5
}
const IN_PROGRESS: usize = 10;

/// The benchmarks' `workers-os` policy, with a hold label, at most 1 % of a pool in
/// progress, ten failures allowed, in the window `weekend-nights`.
fn policy() -> Policy {
    Fleet::policy()
        .excluding(&[("patchpilot.dev/hold", "true")])
        .max_unavailable(IntOrPercent::Percent(Percent::new(1).unwrap()))
        .failure_budget(IntOrPercent::Count(10))
        .window("weekend-nights")
}

/// [`targets`] worker nodes in 10 pools and 3 zones; a few excluded, a few already up to date;
/// the first [`updated`] in rollout order updated by the rollout and the next `IN_PROGRESS`
/// locked, draining or updating.
fn cluster(now: Timestamp, rollout: &Rollout) -> (Vec<Candidate>, BTreeMap<TargetId, Observed>) {
    let mut candidates = Fleet::workers(targets()).candidates();
    for (i, candidate) in candidates.iter_mut().enumerate() {
        if i % 500 == 7 {
            std::sync::Arc::make_mut(&mut candidate.annotations).insert(
                keys::EXCLUDE.to_owned(),
                "vendor certification pending".to_owned(),
            );
        }
    }
    let mut observed = BTreeMap::new();
    // Rollout order is zone, then name: find it once, and mark the work done so far.
    let order = Fleet::order(&candidates, &policy(), rollout, now);
    for (rank, &index) in order.iter().enumerate().take(updated() + IN_PROGRESS) {
        let state = if rank < updated() {
            RecordState::Updated
        } else {
            RecordState::Applying
        };
        let record = Record {
            rollout: rollout.name.clone(),
            attempt: 0,
            state,
            started: now,
            since: now,
            cordoned: true,
            boot_id: Some("boot-1".into()),
            previous_version: Some("2026-10-security".into()),
            images: Vec::new(),
            applied: true,
            reason: None,
            message: None,
            uid: None,
        };
        let candidate = &mut candidates[index];
        std::sync::Arc::make_mut(&mut candidate.annotations)
            .insert(keys::record("workers-os"), record.to_annotation());
        if state == RecordState::Updated {
            std::sync::Arc::make_mut(&mut candidate.annotations)
                .insert(keys::version("workers-os"), rollout.patch.version.clone());
        } else {
            std::sync::Arc::make_mut(&mut candidate.annotations)
                .insert(keys::LOCK.to_owned(), rollout.name.clone());
            let updater = (rank % 2 == 0).then_some(JobFacts {
                state: JobState::Running,
                finished: None,
                message: None,
            });
            let facts = NodeFacts {
                unschedulable: true,
                ready: true,
                ready_since: Some(now),
                boot_id: "boot-1".into(),
                pods_to_evict: if updater.is_none() {
                    vec!["shop/web-1".into(), "shop/web-2".into()]
                } else {
                    Vec::new()
                },
                blocked: Vec::new(),
                updater,
            };
            observed.insert(
                candidate.id.clone(),
                Observed {
                    live: Live::Node(facts),
                    health: Some(HealthFacts::healthy()),
                },
            );
        }
    }
    (candidates, observed)
}

fn window() -> Window {
    let recurrence = Recurrence {
        schedule: Schedule::Weekly {
            days: None,
            start: WallClock::new(1, 0).unwrap(),
        },
        duration: Duration::from_hours(4),
    };
    Window::new(
        jiff::tz::TimeZone::get("Europe/Berlin").unwrap(),
        vec![recurrence],
        vec![],
        Duration::from_mins(30),
    )
}

/// Runs `f` repeatedly for about two seconds; returns the median and 99th percentile.
fn measure(mut f: impl FnMut()) -> (StdDuration, StdDuration, usize) {
    for _ in 0..5 {
        f();
    }
    let mut samples = Vec::new();
    let start = Instant::now();
    while start.elapsed() < StdDuration::from_secs(2) || samples.len() < 20 {
        let t = Instant::now();
        f();
        samples.push(t.elapsed());
    }
    samples.sort();
    let median = samples[samples.len() / 2];
    let p99 = samples[(samples.len() * 99 / 100).min(samples.len() - 1)];
    (median, p99, samples.len())
}

fn main() {
    let now: Timestamp = "2026-11-22T01:30:00Z".parse().unwrap();
    let policy = policy();
    let rollout = Fleet::rollout(now);
    let (candidates, observed) = cluster(now, &rollout);
    let namespaces = Namespaces::new();
    let window = window();

    let (median, p99, runs) = measure(|| {
        let query = Query {
            policy: &policy.name,
            version: &rollout.patch.version,
            images: rollout.patch.images(),
            group_by: policy.strategy.group_by.as_deref(),
            now,
        };
        let inventory = plan::inventory(
            &policy.targets,
            &query,
            black_box(&candidates),
            &namespaces,
            |_| false,
        );
        black_box(plan::waves(&policy.strategy, inventory.eligible.len()));
    });
    let (targets, updated) = (targets(), updated());
    println!("plan {targets} targets: median {median:.2?}, p99 {p99:.2?} ({runs} runs)");

    let status = Status::default();
    let input = Input {
        now,
        rollout: &rollout,
        policy: &policy,
        window: Some(&window),
        superseded: false,
        stopping: false,
        siblings: &[],
        status: &status,
        candidates: &candidates,
        namespaces: &namespaces,
        observed: &observed,
    };
    let decision = machine::decide(&input);
    let started = decision.actions.iter().filter(|a| matches!(a, machine::TargetAction::Lock { record, .. } if record.state.in_progress() == Some(Action::Apply))).count();
    assert_eq!(decision.status.counts.updated as usize, updated);
    assert_eq!(
        decision.status.phase,
        patchpilot_engine::rollout::Phase::Progressing,
        "{}",
        decision.status.message
    );
    let (median, p99, runs) = measure(|| {
        black_box(machine::decide(black_box(&input)));
    });
    println!(
        "decide over {targets} targets ({updated} updated, {IN_PROGRESS} in progress, {started} started, {} actions): median {median:.2?}, p99 {p99:.2?} ({runs} runs)",
        decision.actions.len()
    );
    let (median, p99, runs) = measure(|| {
        black_box(machine::wanted(black_box(&input)));
    });
    println!("wanted over {targets} targets: median {median:.2?}, p99 {p99:.2?} ({runs} runs)");
    let peak = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(|l| l["VmHWM:".len()..].trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into());
    println!("peak resident memory of the benchmark: {peak}");
}
