//! Property tests with several rollouts of one policy at once, deciding in turn over the
//! same nodes: a hand-made emergency rollout created mid-flight, a newer patch superseding
//! the policy's rollout, or the rollout being deleted — with random failures, crashes that
//! lose status writes, and time steps. After every decision:
//!
//! - at most `maxUnavailable` of the policy's nodes per pool are locked, whichever rollouts
//!   hold them;
//! - no rollout starts a node twice; none starts one while it must give way (a hand-made
//!   rollout is going, it is superseded, it is being deleted);
//! - a rollout's status never changes once it has ended with nothing in progress;
//!
//! and at the end nothing is left locked or cordoned. The event comes once the policy's
//! rollout has started a random number of nodes, so that rollouts overlap.
//! `PATCHPILOT_TRACE=1` prints the world at the end of a failing case.

use std::collections::{BTreeMap, BTreeSet};

use jiff::{SignedDuration, Timestamp};
use patchpilot_engine::testkit::{
    at,
    world::{Other, Script, What, World},
};
use patchpilot_engine::{
    keys,
    machine::{Action, Rollout, Status},
    plan::Scope,
    policy::{CanarySize, OnFailure},
    rollout::Phase,
    selector::Selector,
    units::IntOrPercent,
};
use proptest::prelude::*;

/// What happens to the policy's rollout mid-flight.
#[derive(Clone, Copy, Debug)]
enum Event {
    /// A person creates an approved emergency rollout of another version for the policy.
    HandMade,
    /// The policy's patch changes: its rollout is superseded by a new one.
    NewVersion,
    /// The rollout is deleted.
    Deleted,
}

#[derive(Clone, Debug)]
struct Case {
    nodes: usize,
    canary: u32,
    pools: usize,
    max_unavailable: u32,
    on_failure: OnFailure,
    event: Event,
    /// The event comes once the policy's rollout has started this many nodes (or has
    /// ended).
    event_after: usize,
    failing: Vec<(bool, bool)>,
    steps: Vec<(u8, Option<u8>, u8)>,
}

fn case() -> impl Strategy<Value = Case> {
    (
        2usize..10,
        1usize..3,
        1u32..4,
        any::<bool>(),
        0u8..3,
        1usize..10,
        0u32..2,
    )
        .prop_flat_map(
            |(nodes, pools, max_unavailable, pause, event, event_after, canary)| {
                (
                    prop::collection::vec(
                        (prop::bool::weighted(0.1), prop::bool::weighted(0.05)),
                        nodes,
                    ),
                    prop::collection::vec(
                        (0u8..30, prop::option::weighted(0.1, 0u8..5), 0u8..8),
                        400,
                    ),
                )
                    .prop_map(move |(failing, steps)| Case {
                        nodes,
                        canary,
                        pools,
                        max_unavailable,
                        on_failure: if pause {
                            OnFailure::Pause
                        } else {
                            OnFailure::Rollback
                        },
                        event: match event {
                            0 => Event::HandMade,
                            1 => Event::NewVersion,
                            _ => Event::Deleted,
                        },
                        event_after,
                        failing: failing.clone(),
                        steps: steps.clone(),
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
    world.policy.strategy.canary = CanarySize::Targets(case.canary);
    world.policy.strategy.max_unavailable = IntOrPercent::Count(case.max_unavailable);
    world.policy.strategy.on_failure = case.on_failure;
    for (node, (fails, unhealthy)) in world.nodes.iter_mut().zip(&case.failing) {
        node.script = Script {
            apply_fails: *fails,
            unhealthy_when_patched: *unhealthy,
            ..Script::default()
        };
    }
    world
}

fn capacity(world: &World) -> BTreeMap<String, usize> {
    let mut sizes = BTreeMap::<String, u32>::new();
    for node in &world.nodes {
        *sizes.entry(node.labels["pool"].clone()).or_default() += 1;
    }
    sizes
        .into_iter()
        .map(|(pool, size)| {
            let max = world.policy.strategy.max_unavailable;
            (pool, max.floor_of(size).max(1) as usize)
        })
        .collect()
}

/// A status with the generation it describes left out.
fn shown(status: &Status) -> Status {
    let mut status = status.clone();
    for condition in &mut status.conditions {
        condition.observed_generation = 0;
    }
    status
}

fn ended(status: &Status) -> bool {
    status.phase.is_finished() && status.in_progress.is_empty()
}

fn settled(status: &Status) -> bool {
    status.in_progress.is_empty()
        && (status.phase.is_finished() || (status.phase == Phase::Paused && status.halt.is_some()))
}

fn happen(world: &mut World, event: Event) {
    match event {
        Event::HandMade => {
            let mut emergency = Rollout::test(world.now);
            emergency.name = "os-zero-day".into();
            emergency.uid = "uid-zero-day".into();
            emergency.hand_made = true;
            emergency.patch.version = "zero-day".into();
            emergency.patch.emergency = true;
            world.others.push(Other {
                rollout: emergency,
                status: Status::default(),
                superseded: false,
            });
        }
        Event::NewVersion => {
            world.superseded = true;
            let mut newer = Rollout::test(world.now);
            newer.name = "os-1111cccc".into();
            newer.uid = "uid-1111cccc".into();
            newer.patch.version = "v3".into();
            world.others.push(Other {
                rollout: newer,
                status: Status::default(),
                superseded: false,
            });
        }
        Event::Deleted => world.stopping = true,
    }
}

fn check(case: Case) -> Result<(), TestCaseError> {
    let mut world = world(&case);
    let capacity = capacity(&world);
    let mut steps = case.steps.iter().cycle();
    let mut frozen: BTreeMap<String, Status> = BTreeMap::new();
    let mut wakes: BTreeMap<String, Option<Timestamp>> = BTreeMap::new();
    // The rollouts that had a turn with nothing to do since the last one that acted.
    let mut idle: BTreeSet<usize> = BTreeSet::new();
    let mut happened = false;
    for round in 0..4000 {
        let started = world
            .log
            .iter()
            .filter(|l| l.what == What::Locked(Action::Apply))
            .count();
        if !happened && (started >= case.event_after || settled(&world.status)) {
            happen(&mut world, case.event);
            happened = true;
        }
        let (extra, crash, pick) = *steps.next().unwrap();
        let which = pick as usize % (1 + world.others.len());
        // Whether the main rollout must give way now, judged before it decides.
        let main_holds_back = world.stopping
            || world.superseded
            || world.others.iter().any(|o| {
                o.rollout.hand_made && !settled(&o.status) && o.status.phase != Phase::Pending
            });
        let logged_before = world.log.len();
        let keep = crash.map(|n| n as usize);
        let decision = if which == 0 {
            world.reconcile_with(keep, crash.is_some())
        } else {
            world.reconcile_other(which - 1, keep, crash.is_some())
        };
        let (name, status) = if which == 0 {
            (world.rollout.name.clone(), world.status.clone())
        } else {
            let other = &world.others[which - 1];
            (other.rollout.name.clone(), other.status.clone())
        };
        // maxUnavailable across the policy's rollouts.
        let mut locked = BTreeMap::<String, usize>::new();
        for node in world
            .nodes
            .iter()
            .filter(|n| n.annotations.contains_key(keys::LOCK))
        {
            *locked.entry(node.labels["pool"].clone()).or_default() += 1;
        }
        for (pool, count) in &locked {
            prop_assert!(
                *count <= capacity[pool],
                "round {round}: pool {pool} has {count} locked, limit {}",
                capacity[pool]
            );
        }
        for entry in &world.log[logged_before..] {
            if entry.what == What::Locked(Action::Apply) && entry.by == world.rollout.name {
                prop_assert!(
                    !main_holds_back,
                    "round {round}: {} started {} while it had to give way",
                    entry.by,
                    entry.target
                );
            }
        }
        // Each rollout starts each node once.
        let mut starts = BTreeSet::new();
        for entry in world
            .log
            .iter()
            .filter(|l| l.what == What::Locked(Action::Apply))
        {
            prop_assert!(
                starts.insert((entry.by.clone(), entry.target.clone())),
                "{} started {} twice",
                entry.by,
                entry.target
            );
        }
        // Terminal statuses stay as they were.
        if crash.is_none() {
            match frozen.get(&name) {
                Some(before) => {
                    prop_assert_eq!(before, &shown(&status), "{} changed after it ended", name)
                }
                None if ended(&status) => {
                    frozen.insert(name.clone(), shown(&status));
                }
                None => {}
            }
        }
        wakes.insert(name, decision.wake_at);
        let all = std::iter::once(&world.status).chain(world.others.iter().map(|o| &o.status));
        if happened && crash.is_none() && all.clone().all(settled) {
            return final_checks(&world);
        }
        let progress = decision
            .actions
            .iter()
            .any(|a| !matches!(a, patchpilot_engine::machine::TargetAction::Drain { .. }));
        if progress || crash.is_some() {
            idle.clear();
            continue;
        }
        idle.insert(which);
        // Time passes once every rollout has had a turn with nothing to do.
        if idle.len() <= world.others.len() {
            continue;
        }
        idle.clear();
        let next = wakes
            .values()
            .flatten()
            .copied()
            .chain(world.next_event())
            .filter(|t| *t > world.now)
            .min();
        world.now = match next {
            Some(next) => next + SignedDuration::from_secs(i64::from(extra % 7)),
            None if happened => return final_checks(&world),
            None => world.now + SignedDuration::from_mins(1),
        };
    }
    prop_assert!(false, "no end after 4000 decisions");
    Ok(())
}

fn final_checks(world: &World) -> Result<(), TestCaseError> {
    if std::env::var_os("PATCHPILOT_TRACE").is_some() {
        for entry in &world.log {
            eprintln!(
                "{} {} {:?} by {}",
                entry.at, entry.target, entry.what, entry.by
            );
        }
        for node in &world.nodes {
            eprintln!(
                "{} unschedulable={} {:?}",
                node.name, node.unschedulable, node.annotations
            );
        }
        eprintln!(
            "main {:?} {:?}",
            world.status.phase, world.status.in_progress
        );
        for other in &world.others {
            eprintln!(
                "{} {:?} {:?}",
                other.rollout.name, other.status.phase, other.status.in_progress
            );
        }
    }
    prop_assert!(
        world.cordoned().is_empty(),
        "left cordoned: {:?}",
        world.cordoned()
    );
    let locked: Vec<&str> = world
        .nodes
        .iter()
        .filter(|n| n.annotations.contains_key(keys::LOCK))
        .map(|n| n.name.as_str())
        .collect();
    prop_assert!(locked.is_empty(), "left locked: {locked:?}");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(96),
        max_shrink_iters: 2000,
        ..ProptestConfig::default()
    })]

    #[test]
    fn rollouts_of_one_policy_never_break_its_rules(case in case()) {
        check(case)?;
    }
}
