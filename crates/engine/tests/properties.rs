//! Property tests: the state machine driven through random worlds — random fleets, strategies,
//! windows, target outcomes and durations, random clock steps, and random crashes that carry
//! out only some of a decision's actions and lose its status write, keeping only what the API
//! would keep. After every step and at the end, the invariants of SPEC 3 must hold.
//!
//! `PROPTEST_CASES=N` runs more worlds (default 128). To study a failure, which proptest
//! saves in `properties.proptest-regressions` and replays first: `PATCHPILOT_TRACE=1` prints
//! every decision and the final records, `PATCHPILOT_STATS=1` each world's outcome.

use std::collections::{BTreeMap, BTreeSet};

use jiff::{SignedDuration, Timestamp};
use patchpilot_engine::testkit::{
    at, mins, stages,
    world::{Script, What, World},
};
use patchpilot_engine::{
    keys,
    machine::{Action, FatalReason, RecordState},
    plan::Scope,
    policy::{CanarySize, OnFailure},
    rollout::Phase,
    selector::Selector,
    units::{Duration, IntOrPercent, Percent},
    window::{Recurrence, Schedule, WallClock, Window},
};
use proptest::prelude::*;

#[derive(Clone, Debug)]
struct Case {
    nodes: usize,
    pools: usize,
    canary: CanarySize,
    stages: Vec<u8>,
    max_unavailable: IntOrPercent,
    failure_budget: u32,
    on_failure: OnFailure,
    expect_reboot: bool,
    window: Option<(u8, u64, u64)>,
    emergency: bool,
    scripts: Vec<Script>,
    /// Per reconcile: how far to let time run (0: to the next event; else extra minutes),
    /// and whether to crash (with how many actions carried out).
    steps: Vec<(u8, Option<u8>)>,
    abort_at: Option<usize>,
    /// A person writes garbage on a node: at which reconcile, on which node (modulo the
    /// fleet), what, and for how many reconciles, until they see what patchpilot told and
    /// remove it.
    vandal: Option<(usize, usize, Garbage, usize)>,
}

/// Garbage a person may write on a node's annotations.
#[derive(Clone, Copy, Debug)]
enum Garbage {
    /// An empty lock.
    EmptyLock,
    /// A lock naming a rollout that never took it.
    ForgedLock,
    /// A lock naming this rollout, written by hand.
    OurNameByHand,
    /// An unreadable record of the policy (written only on a node nobody holds).
    Record,
    /// An exclusion whose `exclude-until` is not an instant.
    ExcludeUntil,
    /// The lock of a node the rollout is at work on, removed.
    RemovedLock,
}

fn script() -> impl Strategy<Value = Script> {
    (
        1i64..20,
        prop::bool::weighted(0.04),
        prop::bool::weighted(0.03),
        1i64..10,
        prop::bool::weighted(0.03),
        0u32..4,
        prop::option::weighted(0.08, 1i64..40),
        prop::option::weighted(0.1, 1i64..15),
        prop::option::weighted(0.04, 0i64..5),
    )
        .prop_map(
            |(
                updater,
                apply_fails,
                rollback_fails,
                reboot,
                unhealthy,
                pods,
                blocked,
                settling,
                fatal,
            )| {
                Script {
                    updater: SignedDuration::from_mins(updater),
                    apply_fails,
                    rollback_fails,
                    reboot: SignedDuration::from_mins(reboot),
                    unhealthy_when_patched: unhealthy,
                    pods,
                    blocked_for: blocked.map(SignedDuration::from_mins),
                    settling: settling.map(SignedDuration::from_mins),
                    fatal_when_patched: fatal.map(|after| {
                        (
                            FatalReason::CrashLoopBackOff,
                            SignedDuration::from_mins(after),
                        )
                    }),
                }
            },
        )
}

fn case() -> impl Strategy<Value = Case> {
    let canary = prop_oneof![
        (0u32..3).prop_map(CanarySize::Targets),
        (1u8..50).prop_map(|p| CanarySize::Percent(Percent::new(p).unwrap())),
    ];
    let max_unavailable = prop_oneof![
        (1u32..4).prop_map(IntOrPercent::Count),
        (0u8..60).prop_map(|p| IntOrPercent::Percent(Percent::new(p).unwrap())),
    ];
    let stages = prop::sample::subsequence(vec![10u8, 25, 50, 75, 100], 0..4);
    // A cutoff as long as the window would (rightly) keep every rollout waiting forever.
    let window = prop::option::weighted(0.5, (0u8..24, 1u64..6, 0u64..90))
        .prop_map(|w| w.map(|(hour, hours, cutoff)| (hour, hours, cutoff % (hours * 60))));
    (
        1usize..20,
        1usize..4,
        canary,
        stages,
        max_unavailable,
        0u32..3,
        any::<bool>(),
        any::<bool>(),
        window,
        prop::bool::weighted(0.2),
    )
        .prop_flat_map(
            |(
                nodes,
                pools,
                canary,
                stages,
                max_unavailable,
                budget,
                pause,
                reboot,
                window,
                emergency,
            )| {
                let garbage = prop_oneof![
                    Just(Garbage::EmptyLock),
                    Just(Garbage::ForgedLock),
                    Just(Garbage::OurNameByHand),
                    Just(Garbage::Record),
                    Just(Garbage::ExcludeUntil),
                    Just(Garbage::RemovedLock),
                ];
                (
                    prop::collection::vec(script(), nodes),
                    prop::collection::vec((0u8..40, prop::option::weighted(0.15, 0u8..6)), 600),
                    prop::option::weighted(0.15, 0usize..120),
                    prop::option::weighted(0.3, (0usize..60, 0usize..20, garbage, 1usize..150)),
                )
                    .prop_map(move |(scripts, steps, abort_at, vandal)| Case {
                        nodes,
                        pools,
                        canary,
                        stages: stages.clone(),
                        max_unavailable,
                        failure_budget: budget,
                        on_failure: if pause {
                            OnFailure::Pause
                        } else {
                            OnFailure::Rollback
                        },
                        expect_reboot: reboot,
                        window,
                        emergency,
                        scripts,
                        steps,
                        abort_at,
                        vandal,
                    })
            },
        )
}

fn world(case: &Case) -> World {
    let mut world = World::new(at("2026-11-21T00:00:00Z"), case.nodes, case.pools);
    world.policy.targets.scope = Scope::Nodes {
        selector: Selector::everything(),
        pool_label: Some("pool".into()),
    };
    world.policy.strategy.canary = case.canary;
    world.policy.strategy.canary_soak = Duration::from_mins(5);
    world.policy.strategy.stages = stages(&case.stages, Duration::from_mins(10));
    world.policy.strategy.max_unavailable = case.max_unavailable;
    world.policy.strategy.failure_budget = IntOrPercent::Count(case.failure_budget);
    world.policy.strategy.on_failure = case.on_failure;
    world.policy.notices = patchpilot_engine::notify::Notices {
        on: patchpilot_engine::notify::NoticeKind::ALL
            .into_iter()
            .collect(),
        announce_before: Some(Duration::from_hours(1)),
    };
    if let patchpilot_engine::machine::Change::Updater(updater) = &mut world.rollout.patch.change {
        updater.expect_reboot = case.expect_reboot;
    }
    world.rollout.patch.emergency = case.emergency;
    world.window = case.window.map(|(hour, hours, cutoff)| {
        let recurrence = Recurrence {
            schedule: Schedule::Weekly {
                days: None,
                start: WallClock::new(hour, 0).unwrap(),
            },
            duration: Duration::from_hours(hours),
        };
        Window::new(
            jiff::tz::TimeZone::UTC,
            vec![recurrence],
            vec![],
            Duration::from_mins(cutoff),
        )
    });
    for (node, script) in world.nodes.iter_mut().zip(&case.scripts) {
        node.script = script.clone();
    }
    world
}

/// How many nodes of each pool may be in progress.
fn capacity(world: &World) -> BTreeMap<String, usize> {
    let mut sizes = BTreeMap::<String, u32>::new();
    for node in &world.nodes {
        *sizes.entry(node.labels["pool"].clone()).or_default() += 1;
    }
    let max = world.policy.strategy.max_unavailable;
    sizes
        .into_iter()
        .map(|(pool, size)| (pool, max.floor_of(size).max(1) as usize))
        .collect()
}

/// The nodes in progress in each pool: locked by the rollout (a lock it took: its record is
/// beside it), or at work under a lock a person removed or overwrote (its record says so).
/// A lock a person wrote with the rollout's name on a node it never took is not one.
fn locked_per_pool(world: &World) -> BTreeMap<String, usize> {
    let mut locked = BTreeMap::new();
    let name = &world.rollout.name;
    for node in world.nodes.iter().filter(|n| {
        world.record(&n.name).is_some_and(|r| {
            &r.rollout == name
                && (n.annotations.get(keys::LOCK) == Some(name) || r.state.in_progress().is_some())
        })
    }) {
        *locked.entry(node.labels["pool"].clone()).or_default() += 1;
    }
    locked
}

fn settled(phase: Phase, world: &World) -> bool {
    let idle = world.status.in_progress.is_empty();
    idle && (phase.is_finished() || (phase == Phase::Paused && world.status.halt.is_some()))
}

fn check(case: Case) -> Result<(), TestCaseError> {
    let mut world = world(&case);
    let capacity = capacity(&world);
    let mut halted_at: Option<Timestamp> = None;
    let mut steps = case.steps.iter().cycle();
    let mut written = Vec::new();
    for round in 0..3000 {
        if case.abort_at == Some(round) {
            world.rollout.abort = true;
        }
        if let Some((at, index, garbage, lasts)) = case.vandal {
            if at == round {
                written = vandalise(&mut world, index % case.nodes, garbage);
            }
            if at + lasts == round {
                let annotations = &mut world.nodes[index % case.nodes].annotations;
                for (key, value) in written.drain(..) {
                    if annotations.get(&key) == Some(&value) {
                        annotations.remove(&key);
                    }
                }
            }
        }
        let (extra, crash) = *steps.next().unwrap();
        let keep = crash.map(|n| n as usize);
        let logged_before = world.log.len();
        let decision = world.reconcile_with(keep, crash.is_some());
        if std::env::var_os("PATCHPILOT_TRACE").is_some() {
            let actions: Vec<String> = decision
                .actions
                .iter()
                .map(|a| format!("{a:?}").chars().take(90).collect())
                .collect();
            eprintln!(
                "{round} {} {:?} crash={crash:?} wake={:?} halt={:?} ip={:?} {actions:#?}",
                world.now,
                decision.status.phase,
                decision.wake_at,
                decision.status.halt.as_ref().map(|h| h.reason),
                decision
                    .status
                    .in_progress
                    .iter()
                    .map(|p| (p.target.to_string(), p.step))
                    .collect::<Vec<_>>()
            );
        }
        for (pool, locked) in locked_per_pool(&world) {
            prop_assert!(
                locked <= capacity[&pool],
                "pool {pool}: {locked} in progress, limit {}",
                capacity[&pool]
            );
        }
        for entry in &world.log[logged_before..] {
            if entry.what == What::Locked(Action::Apply) {
                let allowed =
                    case.emergency || world.window.as_ref().is_none_or(|w| w.may_start(entry.at));
                prop_assert!(
                    allowed,
                    "{} started at {} outside the window or inside the cutoff",
                    entry.target,
                    entry.at
                );
                prop_assert!(
                    halted_at.is_none(),
                    "{} started at {} after the halt at {halted_at:?}",
                    entry.target,
                    entry.at
                );
            }
        }
        if halted_at.is_none() && crash.is_none() && world.status.halt.is_some() {
            halted_at = Some(world.now);
        }
        if crash.is_none() && settled(decision.status.phase, &world) {
            return final_checks(&case, &world);
        }
        let progress = decision
            .actions
            .iter()
            .any(|a| !matches!(a, patchpilot_engine::machine::TargetAction::Drain { .. }));
        // A restarted operator reconciles again at once; so does one that just acted.
        if progress || crash.is_some() {
            continue;
        }
        let next = [decision.wake_at, world.next_event()]
            .into_iter()
            .flatten()
            .min();
        world.now = match next {
            Some(next) if extra % 4 == 0 && next > world.now => {
                // Sometimes wake up early, somewhere before the next instant.
                let gap = next.duration_since(world.now).as_secs().max(1);
                world.now + SignedDuration::from_secs(1 + (extra as i64 * 7919) % gap)
            }
            Some(next) => next + mins(extra as i64 % 7),
            None if progress => world.now,
            // Waiting for the person to remove their garbage.
            None if !written.is_empty() => world.now + mins(1),
            None => return final_checks(&case, &world),
        };
    }
    prop_assert!(
        false,
        "no end after 3000 reconciles: {:?}",
        world.status.phase
    );
    Ok(())
}

/// A person writes `garbage` on the node at `index`. A lock is overwritten only where the
/// rollout is not holding a finished target for its rollback (a record cannot tell such a
/// target from one it released: docs/rollouts.md), and a record only on a node never
/// started.
/// Returns what it wrote.
fn vandalise(world: &mut World, index: usize, garbage: Garbage) -> Vec<(String, String)> {
    let name = world.nodes[index].name.clone();
    let record = world.record(&name);
    let locked = world.nodes[index].annotations.contains_key(keys::LOCK);
    let held = locked
        && record
            .as_ref()
            .is_some_and(|r| r.state.in_progress().is_none());
    let rollout = world.rollout.name.clone();
    let record_key = keys::record(&world.policy.name);
    let written: Vec<(String, String)> = match garbage {
        Garbage::EmptyLock if !held => vec![(keys::LOCK.into(), String::new())],
        Garbage::ForgedLock if !held => vec![(keys::LOCK.into(), "firmware-1234abcd".into())],
        Garbage::OurNameByHand if !locked && record.is_none() => vec![(keys::LOCK.into(), rollout)],
        Garbage::Record if !locked && record.is_none() => {
            vec![(record_key, r#"{"rollout":"x","state":"Exploding"}"#.into())]
        }
        Garbage::ExcludeUntil => vec![
            (keys::EXCLUDE.into(), "frozen".into()),
            (keys::EXCLUDE_UNTIL.into(), "next tuesday".into()),
        ],
        Garbage::RemovedLock if !held => {
            world.nodes[index].annotations.remove(keys::LOCK);
            Vec::new()
        }
        _ => Vec::new(),
    };
    world.nodes[index].annotations.extend(written.clone());
    written
}

/// Whether the node carries garbage that keeps the rollout off it: a lock it did not take
/// on a node it never worked on, or an exclusion it cannot lift.
fn left_alone(world: &World, name: &str) -> bool {
    let annotations = &world
        .nodes
        .iter()
        .find(|n| n.name == name)
        .unwrap()
        .annotations;
    let foreign_lock = annotations
        .get(keys::LOCK)
        .is_some_and(|holder| *holder != world.rollout.name || world.record(name).is_none());
    let never_started = world
        .log
        .iter()
        .all(|l| !(l.what == What::Locked(Action::Apply) && l.target == format!("Node/{name}")));
    never_started && (foreign_lock || annotations.contains_key(keys::EXCLUDE))
}

fn final_checks(case: &Case, world: &World) -> Result<(), TestCaseError> {
    let phase = world.status.phase;
    notice_checks(world)?;
    if std::env::var_os("PATCHPILOT_TRACE").is_some() {
        eprintln!(
            "FINAL paused={} abort={}",
            world.rollout.paused, world.rollout.abort
        );
        for node in &world.nodes {
            eprintln!(
                "FINAL {} lock={:?} record={:?}",
                node.name,
                node.annotations.get(keys::LOCK),
                world
                    .record(&node.name)
                    .map(|r| (r.state, r.applied, r.attempt))
            );
        }
    }
    if std::env::var_os("PATCHPILOT_STATS").is_some() {
        eprintln!(
            "STATS {phase:?} nodes={} decisions={} rolledback={}",
            case.nodes,
            world.decisions,
            world.locked(Action::Rollback).len()
        );
    }
    let names: Vec<String> = world
        .nodes
        .iter()
        .map(|n| format!("Node/{}", n.name))
        .collect();
    let count = |what: What, target: &str| {
        world
            .log
            .iter()
            .filter(|l| l.what == what && l.target == target)
            .count()
    };
    prop_assert!(
        world.cordoned().is_empty(),
        "{phase:?} left nodes cordoned: {:?}",
        world.cordoned()
    );
    match phase {
        Phase::Succeeded => {
            let mut failed = 0;
            for name in &names {
                if left_alone(world, name.trim_start_matches("Node/")) {
                    prop_assert_eq!(count(What::Locked(Action::Apply), name), 0);
                    continue;
                }
                let record = world.record(name.trim_start_matches("Node/")).unwrap();
                prop_assert_eq!(
                    count(What::Locked(Action::Apply), name),
                    1,
                    "{} started more than once",
                    name
                );
                match record.state {
                    RecordState::Updated => {
                        prop_assert_eq!(count(What::Released(RecordState::Updated), name), 1)
                    }
                    RecordState::Failed => failed += 1,
                    other => prop_assert!(false, "{name} ended {other:?} in a successful rollout"),
                }
            }
            prop_assert!(
                failed <= case.failure_budget,
                "{failed} failures over a budget of {}",
                case.failure_budget
            );
        }
        Phase::RolledBack | Phase::Failed => {
            let changed: BTreeSet<String> = world
                .logged(|w| *w == What::UpdaterRun(Action::Apply))
                .iter()
                .map(|l| l.target.clone())
                .collect();
            let rolled: Vec<String> = world.locked(Action::Rollback);
            let rolled_set: BTreeSet<String> = rolled.iter().cloned().collect();
            prop_assert_eq!(
                &rolled_set,
                &changed,
                "a rollback touches exactly what the rollout changed"
            );
            prop_assert_eq!(
                rolled.len(),
                rolled_set.len(),
                "each target rolled back once"
            );
            // Most recent first, within each pool.
            let started: BTreeMap<String, Timestamp> = world
                .logged(|w| *w == What::Locked(Action::Apply))
                .iter()
                .map(|l| (l.target.clone(), l.at))
                .collect();
            let pool = |target: &str| {
                world
                    .nodes
                    .iter()
                    .find(|n| format!("Node/{}", n.name) == target)
                    .unwrap()
                    .labels["pool"]
                    .clone()
            };
            for p in world
                .nodes
                .iter()
                .map(|n| n.labels["pool"].clone())
                .collect::<BTreeSet<_>>()
            {
                let order: Vec<(Timestamp, &String)> = rolled
                    .iter()
                    .filter(|t| pool(t) == p)
                    .map(|t| (started[t], t))
                    .collect();
                prop_assert!(
                    order.windows(2).all(|w| w[0] >= w[1]),
                    "pool {p} rolled back out of order: {order:?}"
                );
            }
            for target in &changed {
                let node = world
                    .nodes
                    .iter()
                    .find(|n| format!("Node/{}", n.name) == *target)
                    .unwrap();
                let state = world.record(&node.name).unwrap().state;
                prop_assert!(
                    matches!(state, RecordState::RolledBack | RecordState::RollbackFailed),
                    "{target}: {state:?}"
                );
                if state == RecordState::RolledBack {
                    prop_assert!(!node.patched, "{target} still carries the patch");
                }
            }
            prop_assert_eq!(
                phase == Phase::Failed,
                world.nodes.iter().any(|n| world
                    .record(&n.name)
                    .is_some_and(|r| r.state == RecordState::RollbackFailed))
            );
        }
        Phase::Paused => prop_assert!(
            world.rollout.paused
                && case.on_failure == OnFailure::Pause
                && !case.abort_at.is_some_and(|_| world.rollout.abort)
        ),
        other => prop_assert!(false, "ended in {other:?}"),
    }
    Ok(())
}

/// The outbox numbers each notice once, in order, and tells one outcome, the one the
/// rollout ended with.
fn notice_checks(world: &World) -> Result<(), TestCaseError> {
    use patchpilot_engine::notify::NoticeKind as K;
    let outbox = &world.status.outbox;
    let seqs: Vec<u32> = outbox.notices.iter().map(|n| n.seq).collect();
    prop_assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "numbered one by one: {seqs:?}"
    );
    prop_assert_eq!(seqs.last().copied().unwrap_or(0), outbox.seq);
    prop_assert!(outbox.notices.windows(2).all(|w| w[0].at <= w[1].at));
    let outcomes: Vec<K> = outbox
        .notices
        .iter()
        .map(|n| n.kind)
        .filter(|k| matches!(k, K::Succeeded | K::Failed | K::RollbackFinished))
        .collect();
    let expected = match world.status.phase {
        Phase::Succeeded => vec![K::Succeeded],
        Phase::RolledBack => vec![K::RollbackFinished],
        Phase::Failed => vec![K::Failed],
        _ => Vec::new(),
    };
    prop_assert_eq!(outcomes, expected);
    let started = outbox
        .notices
        .iter()
        .filter(|n| n.kind == K::Started)
        .count();
    prop_assert!(started <= 1, "started {started} times");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(128),
        max_shrink_iters: 2000,
        ..ProptestConfig::default()
    })]

    #[test]
    fn invariants_hold_in_random_worlds(case in case()) {
        check(case)?;
    }
}
