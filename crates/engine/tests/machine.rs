//! The rollout state machine, scenario by scenario, in a simulated world (the test kit's
//! `world`): each test checks what happened to the nodes, not the engine's own counters.

use jiff::SignedDuration;
use patchpilot_engine::testkit::{
    at, mins, stages,
    world::{What, World},
};
use patchpilot_engine::{
    machine::{
        Action, ConditionStatus, ConditionType, FatalReason, HealthFacts, Record, RecordState,
    },
    rollout::Phase,
    units::Duration,
};

fn start() -> jiff::Timestamp {
    at("2026-11-21T01:00:00Z")
}

#[test]
fn canary_stages_and_full_update_every_node_once_in_order() {
    let mut world = World::new(start(), 10, 1);
    world.policy.strategy.stages = stages(&[25, 50], Duration::from_mins(30));
    world.policy.strategy.canary_soak = Duration::from_mins(20);
    assert_eq!(world.run(2000), Phase::Succeeded);
    let locked = world.locked(Action::Apply);
    let expected: Vec<String> = (0..10).map(|i| format!("Node/node-{i:02}")).collect();
    assert_eq!(locked, expected, "every node once, in name order");
    assert!(world.cordoned().is_empty(), "no node left cordoned");
    for node in &world.nodes {
        assert_eq!(
            node.annotations
                .get("patch.patchpilot.dev/os")
                .map(String::as_str),
            Some("v2")
        );
        assert!(!node.annotations.contains_key("patchpilot.dev/lock"));
        assert!(node.patched && node.ready);
        assert_eq!(
            world.record(&node.name).unwrap().state,
            RecordState::Updated
        );
    }
    assert_eq!(world.status.counts.updated, 10);
    let reasons = world.event_reasons();
    for expected in ["Approved", "WaveStarted", "TargetUpdated", "Succeeded"] {
        assert!(
            reasons.iter().any(|r| r == expected),
            "no {expected} event in {reasons:?}"
        );
    }
    // Waves: canary (1) soaks 20m before stage-1 (2 more: ceil(25% of 10) = 3).
    let starts: Vec<_> = world
        .logged(|w| *w == What::Locked(Action::Apply))
        .iter()
        .map(|l| l.at)
        .collect();
    let releases: Vec<_> = world
        .logged(|w| matches!(w, What::Released(_)))
        .iter()
        .map(|l| l.at)
        .collect();
    assert!(
        starts[1] >= releases[0] + mins(20),
        "stage-1 waited for the canary's soak"
    );
    assert!(
        starts[3] >= releases[2] + mins(30),
        "stage-2 waited for stage-1's soak"
    );
}

#[test]
fn at_most_max_unavailable_per_pool() {
    let mut world = World::new(start(), 12, 3);
    world.policy.targets.scope = patchpilot_engine::plan::Scope::Nodes {
        selector: patchpilot_engine::selector::Selector::everything(),
        pool_label: Some("pool".into()),
    };
    world.policy.strategy.canary = patchpilot_engine::policy::CanarySize::Targets(0);
    world.policy.strategy.max_unavailable = patchpilot_engine::units::IntOrPercent::Count(2);
    let mut most = 0;
    for _ in 0..2000 {
        let decision = world.reconcile();
        let mut per_pool = std::collections::BTreeMap::<String, usize>::new();
        for node in &world.nodes {
            if node.annotations.contains_key("patchpilot.dev/lock") {
                *per_pool.entry(node.labels["pool"].clone()).or_default() += 1;
            }
        }
        most = most.max(per_pool.values().copied().max().unwrap_or(0));
        assert!(per_pool.values().all(|n| *n <= 2), "{per_pool:?}");
        if decision.status.phase == Phase::Succeeded {
            break;
        }
        if decision.actions.is_empty() {
            world.now = [decision.wake_at, world.next_event()]
                .into_iter()
                .flatten()
                .min()
                .unwrap();
        }
    }
    assert_eq!(world.status.phase, Phase::Succeeded);
    assert_eq!(most, 2, "pools ran two at a time");
}

use patchpilot_engine::{
    keys,
    machine::HaltReason,
    policy::{ApprovalMode, CanarySize, OnFailure},
    units::IntOrPercent,
    window::{Recurrence, Schedule, WallClock, Window},
};

/// A daily window opening at `hour`:00 UTC for `hours` hours, with a cutoff.
fn daily(hour: u8, hours: u64, cutoff: Duration) -> Window {
    let recurrence = Recurrence {
        schedule: Schedule::Weekly {
            days: None,
            start: WallClock::new(hour, 0).unwrap(),
        },
        duration: Duration::from_hours(hours),
    };
    Window::new(jiff::tz::TimeZone::UTC, vec![recurrence], vec![], cutoff)
}

fn apply_starts(world: &World) -> Vec<jiff::Timestamp> {
    world
        .logged(|w| *w == What::Locked(Action::Apply))
        .iter()
        .map(|l| l.at)
        .collect()
}

#[test]
fn manual_approval_holds_the_rollout_until_approved() {
    let mut world = World::new(start(), 3, 1);
    world.rollout.approved = false;
    let decision = world.reconcile();
    assert_eq!(decision.status.phase, Phase::AwaitingApproval);
    assert!(
        decision.actions.is_empty() && decision.wake_at.is_none(),
        "waits for a person, not a timer"
    );
    world.now += mins(60);
    assert_eq!(world.reconcile().status.phase, Phase::AwaitingApproval);
    world.rollout.approved = true;
    assert_eq!(world.run(500), Phase::Succeeded);
    assert!(apply_starts(&world)[0] >= start() + mins(60));
}

#[test]
fn automatic_approval_comes_at_release_plus_delay() {
    let mut world = World::new(start(), 2, 1);
    world.rollout.approved = false;
    world.rollout.patch.released_at = Some(start() - mins(60));
    world.policy.approval.mode = ApprovalMode::Automatic;
    world.policy.approval.delay = Duration::from_hours(3);
    let decision = world.reconcile();
    assert_eq!(decision.status.phase, Phase::AwaitingApproval);
    assert_eq!(
        decision.wake_at,
        Some(start() + mins(120)),
        "requeued for the exact instant"
    );
    assert_eq!(world.run(500), Phase::Succeeded);
    assert_eq!(apply_starts(&world)[0], start() + mins(120));
}

#[test]
fn after_canary_the_rollout_waits_for_promotion() {
    let mut world = World::new(start(), 4, 1);
    world.policy.approval.after_canary = true;
    world.policy.strategy.canary_soak = Duration::from_mins(10);
    assert_eq!(world.run(500), Phase::Paused);
    assert_eq!(world.locked(Action::Apply), ["Node/node-00"]);
    assert!(
        world.status.message.contains("promoted"),
        "{}",
        world.status.message
    );
    world.rollout.promoted = true;
    assert_eq!(world.run(500), Phase::Succeeded);
    assert_eq!(world.locked(Action::Apply).len(), 4);
}

#[test]
fn targets_start_only_in_the_window_and_outside_the_cutoff() {
    // Open 02:00-04:00 UTC daily; cutoff 90m; each node takes ~8 minutes.
    let mut world = World::new(at("2026-11-21T00:00:00Z"), 30, 1);
    world.policy.strategy.canary = CanarySize::Targets(0);
    world.window = Some(daily(2, 2, Duration::from_mins(90)));
    let decision = world.reconcile();
    assert_eq!(decision.status.phase, Phase::Scheduled);
    assert_eq!(decision.wake_at, Some(at("2026-11-21T02:00:00Z")));
    assert_eq!(world.run(5000), Phase::Succeeded);
    for started in apply_starts(&world) {
        let hour_start = started
            .to_zoned(jiff::tz::TimeZone::UTC)
            .with()
            .hour(2)
            .minute(0)
            .second(0)
            .build()
            .unwrap()
            .timestamp();
        let minutes = (started - hour_start).get_seconds() / 60;
        assert!(
            (0..=30).contains(&minutes),
            "started at {started}, outside 02:00-02:30"
        );
    }
    let days: std::collections::BTreeSet<_> = apply_starts(&world)
        .iter()
        .map(|t| t.to_zoned(jiff::tz::TimeZone::UTC).date())
        .collect();
    assert!(days.len() > 1, "the rollout spanned several windows");
    let reasons = world.event_reasons();
    assert!(
        reasons.contains(&"WindowOpened".to_owned())
            && reasons.contains(&"WindowClosed".to_owned()),
        "{reasons:?}"
    );
}

#[test]
fn emergency_patches_ignore_the_window() {
    let mut world = World::new(at("2026-11-21T12:00:00Z"), 3, 1);
    world.window = Some(daily(2, 2, Duration::ZERO));
    world.rollout.patch.emergency = true;
    assert_eq!(world.run(500), Phase::Succeeded);
    assert_eq!(apply_starts(&world)[0], at("2026-11-21T12:00:00Z"));
}

#[test]
fn max_unavailable_as_a_percent_rounds_down_at_least_one() {
    for (percent, expected) in [(10, 1), (25, 2), (50, 5)] {
        let mut world = World::new(start(), 10, 1);
        world.policy.strategy.canary = CanarySize::Targets(0);
        world.policy.strategy.max_unavailable =
            IntOrPercent::Percent(patchpilot_engine::units::Percent::new(percent).unwrap());
        let decision = world.reconcile();
        assert_eq!(decision.actions.len(), expected, "{percent}%");
        assert_eq!(world.run(1000), Phase::Succeeded);
    }
}

#[test]
fn a_drain_blocked_past_its_timeout_fails_the_node_or_forces_it() {
    let mut world = World::new(start(), 3, 1);
    world.policy.strategy.failure_budget = IntOrPercent::Count(1);
    world.policy.strategy.canary = CanarySize::Targets(0);
    world.node("node-01").script.blocked_for = Some(mins(60));
    assert_eq!(world.run(1000), Phase::Succeeded);
    let record = world.record("node-01").unwrap();
    assert_eq!(record.state, RecordState::Failed);
    assert_eq!(record.reason.as_deref(), Some("DrainTimeout"));
    assert!(
        record.message.unwrap().contains("app/pdb"),
        "the blocking budget is named"
    );
    assert!(
        !record.applied,
        "nothing was applied, so nothing to roll back"
    );
    assert!(
        world.cordoned().is_empty(),
        "the failed node was uncordoned"
    );
    assert_eq!(world.status.counts.failed, 1);

    let mut forced = World::new(start(), 3, 1);
    forced.policy.drain.force = true;
    forced.node("node-01").script.blocked_for = Some(mins(60));
    assert_eq!(forced.run(1000), Phase::Succeeded);
    assert_eq!(
        forced.record("node-01").unwrap().state,
        RecordState::Updated
    );
}

#[test]
fn a_canary_failure_rolls_back_what_the_rollout_changed() {
    let mut world = World::new(start(), 5, 1);
    world.node("node-00").script.apply_fails = true;
    assert_eq!(world.run(1000), Phase::RolledBack);
    assert_eq!(
        world.status.halt.as_ref().unwrap().reason,
        HaltReason::CanaryFailed
    );
    assert_eq!(
        world.locked(Action::Apply),
        ["Node/node-00"],
        "nothing new after the halt"
    );
    assert_eq!(
        world.locked(Action::Rollback),
        ["Node/node-00"],
        "the failed canary is rolled back"
    );
    assert!(!world.nodes[0].patched);
    assert_eq!(
        world.record("node-00").unwrap().state,
        RecordState::RolledBack
    );
    assert!(
        world
            .event_reasons()
            .contains(&"RollbackStarted".to_owned())
    );
    assert!(world.cordoned().is_empty());
}

#[test]
fn a_failure_within_the_budget_goes_on_and_beyond_it_rolls_back_most_recent_first() {
    let mut within = World::new(start(), 6, 1);
    within.policy.strategy.failure_budget = IntOrPercent::Count(1);
    within.node("node-03").script.unhealthy_when_patched = true;
    assert_eq!(within.run(2000), Phase::Succeeded);
    assert_eq!(within.status.counts.failed, 1);
    assert_eq!(within.status.counts.updated, 5);
    assert_eq!(
        within.record("node-03").unwrap().reason.as_deref(),
        Some("HealthTimeout")
    );

    let mut beyond = World::new(start(), 6, 1);
    beyond.policy.strategy.failure_budget = IntOrPercent::Count(1);
    beyond.node("node-03").script.unhealthy_when_patched = true;
    beyond.node("node-04").script.apply_fails = true;
    assert_eq!(beyond.run(3000), Phase::RolledBack);
    assert_eq!(
        beyond.status.halt.as_ref().unwrap().reason,
        HaltReason::FailureBudgetExceeded
    );
    let rolled: Vec<String> = beyond.locked(Action::Rollback);
    assert_eq!(
        rolled,
        [
            "Node/node-04",
            "Node/node-03",
            "Node/node-02",
            "Node/node-01",
            "Node/node-00"
        ],
        "every changed node, most recent first"
    );
    assert!(beyond.nodes.iter().all(|n| !n.patched));
    assert!(
        !beyond
            .locked(Action::Apply)
            .contains(&"Node/node-05".to_owned())
    );
    for node in &beyond.nodes[..5] {
        assert_eq!(
            node.annotations.get(&keys::version("os")),
            None,
            "the previous (absent) version is restored"
        );
    }
}

#[test]
fn on_failure_pause_stops_until_a_person_resumes_or_aborts() {
    let mut world = World::new(start(), 6, 1);
    world.policy.strategy.on_failure = OnFailure::Pause;
    world.policy.strategy.canary = CanarySize::Targets(0);
    world.node("node-01").script.apply_fails = true;
    assert_eq!(world.run(1000), Phase::Paused);
    assert!(world.rollout.paused, "the operator set spec.paused");
    assert_eq!(world.locked(Action::Apply).len(), 2);
    let stalled = world
        .status
        .conditions
        .iter()
        .find(|c| c.kind == patchpilot_engine::machine::ConditionType::Stalled)
        .unwrap();
    assert_eq!(
        stalled.status,
        patchpilot_engine::machine::ConditionStatus::True
    );
    // Resume: the failure is accepted, the rest goes on.
    world.rollout.paused = false;
    assert_eq!(world.run(1000), Phase::Succeeded);
    assert_eq!(world.status.counts.updated, 5);
    assert_eq!(world.status.acknowledged_failures, 1);

    let mut aborted = World::new(start(), 6, 1);
    aborted.policy.strategy.on_failure = OnFailure::Pause;
    aborted.policy.strategy.canary = CanarySize::Targets(0);
    aborted.node("node-01").script.apply_fails = true;
    assert_eq!(aborted.run(1000), Phase::Paused);
    // Setting abort is enough; the operator's own pause does not hold the rollback.
    aborted.rollout.abort = true;
    assert!(aborted.rollout.paused);
    assert_eq!(aborted.run(1000), Phase::RolledBack);
    assert_eq!(
        aborted.locked(Action::Rollback),
        ["Node/node-01", "Node/node-00"]
    );
}

#[test]
fn retry_sends_failed_targets_back_to_pending() {
    let mut world = World::new(start(), 4, 1);
    world.policy.strategy.on_failure = OnFailure::Pause;
    world.policy.strategy.canary = CanarySize::Targets(0);
    world.node("node-02").script.apply_fails = true;
    assert_eq!(world.run(1000), Phase::Paused);
    world.node("node-02").script.apply_fails = false;
    world.rollout.retry = 1;
    world.rollout.paused = false;
    assert_eq!(world.run(1000), Phase::Succeeded);
    assert_eq!(world.record("node-02").unwrap().state, RecordState::Updated);
    assert_eq!(world.record("node-02").unwrap().attempt, 1);
    assert_eq!(world.status.counts.failed, 0);
    assert_eq!(
        world
            .locked(Action::Apply)
            .iter()
            .filter(|t| *t == "Node/node-02")
            .count(),
        2
    );
}

#[test]
fn suspend_and_pause_start_nothing_new_but_finish_what_is_in_progress() {
    let mut world = World::new(start(), 4, 1);
    world.policy.strategy.canary = CanarySize::Targets(0);
    world.reconcile();
    assert_eq!(world.locked(Action::Apply).len(), 1);
    world.policy.suspend = true;
    assert_eq!(world.run(500), Phase::Paused);
    assert_eq!(world.locked(Action::Apply).len(), 1);
    assert_eq!(
        world.record("node-00").unwrap().state,
        RecordState::Updated,
        "in-flight finished"
    );
    world.policy.suspend = false;
    world.rollout.paused = true;
    assert_eq!(world.run(500), Phase::Paused);
    world.rollout.paused = false;
    assert_eq!(world.run(500), Phase::Succeeded);
}

#[test]
fn a_superseded_rollout_finishes_in_flight_targets_and_starts_none() {
    let mut world = World::new(start(), 4, 1);
    world.policy.strategy.canary = CanarySize::Targets(0);
    world.reconcile();
    world.superseded = true;
    assert_eq!(world.run(500), Phase::Superseded);
    assert_eq!(world.locked(Action::Apply), ["Node/node-00"]);
    assert_eq!(world.record("node-00").unwrap().state, RecordState::Updated);
    assert!(world.cordoned().is_empty());
}

/// A lock as `rollout` of `policy` takes it: the lock, and its record in the same write.
fn lock_as(world: &mut World, node: &str, policy: &str, rollout: &str, state: RecordState) {
    let record = Record {
        rollout: rollout.into(),
        attempt: 0,
        state,
        started: start(),
        since: start(),
        cordoned: false,
        boot_id: None,
        previous_version: None,
        images: Vec::new(),
        applied: false,
        reason: None,
        message: None,
        uid: None,
    };
    let annotations = &mut world.node(node).annotations;
    annotations.insert(keys::LOCK.into(), rollout.into());
    annotations.insert(keys::record(policy), record.to_annotation());
}

#[test]
fn a_node_locked_by_another_rollout_is_waited_for() {
    let mut world = World::new(start(), 2, 1);
    world.policy.strategy.canary = CanarySize::Targets(0);
    lock_as(
        &mut world,
        "node-00",
        "firmware",
        "firmware-1234abcd",
        RecordState::Applying,
    );
    world.reconcile();
    assert_eq!(
        world.locked(Action::Apply),
        ["Node/node-01"],
        "skips the locked node"
    );
    world.run(500);
    assert_eq!(world.status.phase, Phase::Progressing, "still owes node-00");
    world.node("node-00").annotations.remove(keys::LOCK);
    assert_eq!(world.run(500), Phase::Succeeded);
}

#[test]
fn a_lock_no_rollout_took_is_told_once_and_left_alone() {
    let mut world = World::new(start(), 3, 1);
    world.policy.strategy.canary = CanarySize::Targets(0);
    // A lock no record says its rollout took, one that is no rollout's name, and one
    // naming this very rollout.
    let name = world.rollout.name.clone();
    for (node, lock) in [
        ("node-00", "firmware-1234abcd"),
        ("node-01", "Oops!"),
        ("node-02", &name),
    ] {
        world
            .node(node)
            .annotations
            .insert(keys::LOCK.into(), lock.into());
    }
    let decision = world.reconcile();
    assert_eq!(decision.status.counts.excluded, 3);
    let listed: Vec<&str> = decision
        .status
        .annotation_problems
        .iter()
        .map(|p| p.target.as_str())
        .collect();
    assert_eq!(listed, ["Node/node-00", "Node/node-01", "Node/node-02"]);
    let told: Vec<_> = decision
        .events
        .iter()
        .filter(|e| e.reason == "BadAnnotation")
        .collect();
    assert_eq!(told.len(), 3);
    assert!(told.iter().all(|e| e.warning && e.on_target));
    assert_eq!(world.run(500), Phase::Succeeded);
    // Told once; never locked, released or cleared.
    assert!(world.logged(|w| *w == What::Unlocked).is_empty());
    assert!(world.locked(Action::Apply).is_empty());
    assert_eq!(world.node("node-02").annotations[keys::LOCK], name);
    assert_eq!(world.status.annotation_problems.len(), 3);
}

#[test]
fn exclusions_lift_when_exclude_until_passes() {
    let mut world = World::new(start(), 3, 1);
    world.policy.strategy.canary = CanarySize::Targets(0);
    let node = world.node("node-02");
    node.annotations
        .insert(keys::EXCLUDE.into(), "database migration".into());
    node.annotations
        .insert(keys::EXCLUDE_UNTIL.into(), "2026-11-21T03:00:00Z".into());
    let decision = world.reconcile();
    assert_eq!(decision.status.counts.excluded, 1);
    assert!(decision.wake_at.unwrap() <= at("2026-11-21T03:00:00Z"));
    world.run(500);
    assert!(
        world
            .locked(Action::Apply)
            .iter()
            .all(|t| t != "Node/node-02")
            || world.now >= at("2026-11-21T03:00:00Z")
    );
    assert_eq!(
        world.status.counts.excluded, 1,
        "succeeded before the exclusion lifted"
    );
}

#[test]
fn an_orphaned_lock_of_this_rollout_is_released() {
    let mut world = World::new(start(), 2, 1);
    world.rollout.approved = false;
    let name = world.rollout.name.clone();
    let policy = world.policy.name.clone();
    lock_as(
        &mut world,
        "node-01",
        &policy,
        &name,
        RecordState::RolledBack,
    );
    world.reconcile();
    assert_eq!(world.logged(|w| *w == What::Unlocked).len(), 1);
    assert!(!world.node("node-01").annotations.contains_key(keys::LOCK));
}

#[test]
fn losing_the_status_write_never_exceeds_max_unavailable_or_repeats_work() {
    let mut world = World::new(start(), 6, 2);
    world.policy.targets.scope = patchpilot_engine::plan::Scope::Nodes {
        selector: patchpilot_engine::selector::Selector::everything(),
        pool_label: Some("pool".into()),
    };
    world.policy.strategy.canary = CanarySize::Targets(0);
    for round in 0..400 {
        let decision = world.reconcile_with(None, round % 3 == 1);
        if decision.status.phase == Phase::Succeeded && round % 3 != 1 {
            break;
        }
        let locked_per_pool = |pool: &str| {
            world
                .nodes
                .iter()
                .filter(|n| n.labels["pool"] == pool && n.annotations.contains_key(keys::LOCK))
                .count()
        };
        assert!(locked_per_pool("pool-0") <= 1 && locked_per_pool("pool-1") <= 1);
        if decision.actions.is_empty() {
            world.now = [decision.wake_at, world.next_event()]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(world.now + mins(1));
        }
    }
    assert_eq!(world.status.phase, Phase::Succeeded);
    assert_eq!(world.locked(Action::Apply).len(), 6, "each node once");
}

#[test]
fn a_settling_target_is_no_failure_and_soaks_until_it_has_settled() {
    // Pods start for 8 minutes after the node is back: longer than the 1-minute soak,
    // within the 10-minute health timeout.
    let mut world = World::new(start(), 2, 1);
    world.policy.health.soak = Duration::from_mins(1);
    for name in ["node-00", "node-01"] {
        world.node(name).script.settling = Some(mins(8));
    }
    assert_eq!(world.run(1000), Phase::Succeeded);
    assert!(
        world.status.failures.is_empty(),
        "{:?}",
        world.status.failures
    );
    assert!(world.locked(Action::Rollback).is_empty());
    // The canary's wave ends only once it has settled: the second node starts after that.
    let starts = world.locked(Action::Apply);
    assert_eq!(starts, ["Node/node-00", "Node/node-01"]);
    let canary = world.record("node-00").unwrap();
    let second = world.record("node-01").unwrap();
    assert!(
        second.started >= canary.started + mins(2) + mins(3) + mins(8) + mins(1),
        "node-01 started at {} before node-00 settled and soaked",
        second.started
    );

    // Still settling when the health timeout runs out is a failure.
    let mut slow = World::new(start(), 2, 1);
    slow.node("node-00").script.settling = Some(mins(15));
    slow.run(1000);
    let failure = slow.status.failures.first().expect("the canary failed");
    assert_eq!(failure.reason, "HealthTimeout");
}

#[test]
fn a_rolled_back_failure_still_says_why_and_the_rollout_is_not_healthy() {
    let mut world = World::new(start(), 3, 1);
    world.node("node-00").script.unhealthy_when_patched = true;
    assert_eq!(world.run(1000), Phase::RolledBack);
    let failure = world
        .status
        .failures
        .first()
        .expect("the failure is listed");
    assert_eq!(failure.target.as_str(), "Node/node-00");
    assert_eq!(failure.reason, "HealthTimeout");
    assert!(
        failure.message.contains("node-00 is not healthy"),
        "{}",
        failure.message
    );
    let healthy = world
        .status
        .conditions
        .iter()
        .find(|c| c.kind == ConditionType::Healthy)
        .unwrap();
    assert_eq!(healthy.status, ConditionStatus::False);
    assert_eq!(healthy.reason, "CanaryFailed");
}

#[test]
fn a_failure_accepted_by_resuming_is_not_said_to_be_within_the_budget() {
    // failureBudget 0: the failure halts the rollout; a person resumes it.
    let mut world = World::new(start(), 4, 1);
    world.policy.strategy.on_failure = OnFailure::Pause;
    world.policy.strategy.canary = CanarySize::Targets(0);
    world.node("node-01").script.apply_fails = true;
    assert_eq!(world.run(1000), Phase::Paused);
    world.rollout.paused = false;
    assert_eq!(world.run(1000), Phase::Succeeded);
    let message = &world.status.message;
    assert!(!message.contains("within the failure budget"), "{message}");
    assert!(
        message.contains("accepted when the rollout was resumed"),
        "{message}"
    );

    let mut within = World::new(start(), 4, 1);
    within.policy.strategy.failure_budget = patchpilot_engine::units::IntOrPercent::Count(1);
    within.policy.strategy.canary = CanarySize::Targets(0);
    within.node("node-01").script.apply_fails = true;
    assert_eq!(within.run(1000), Phase::Succeeded);
    assert!(
        within
            .status
            .message
            .contains("1 failed within the failure budget"),
        "{}",
        within.status.message
    );
}

#[test]
fn the_next_window_is_shown_only_while_targets_may_still_start_and_never_a_year_back() {
    // A window open all day, every day: the open set has no gap, so its current interval
    // reaches back as far as the search goes.
    let mut world = World::new(start(), 2, 1);
    world.window = Some(daily(0, 24, Duration::ZERO));
    world.reconcile();
    let shown = world
        .status
        .next_window
        .expect("the window is shown while it matters");
    assert!(
        shown.start >= world.rollout.created,
        "the window shown starts at {}, before the rollout existed",
        shown.start
    );
    assert_eq!(world.run(1000), Phase::Succeeded);
    assert_eq!(
        world.status.next_window, None,
        "a finished rollout starts nothing: no next window"
    );
}

#[test]
fn a_finished_rollout_keeps_its_status_whatever_happens_to_its_targets() {
    let mut world = World::new(start(), 4, 1);
    assert_eq!(world.run(1000), Phase::Succeeded);
    let ended = world.status.clone();
    // Another rollout re-patches the nodes, a person excludes one, the policy changes.
    for node in &mut world.nodes {
        node.annotations
            .insert("patch.patchpilot.dev/os".into(), "v3".into());
    }
    world
        .node("node-02")
        .annotations
        .insert("patchpilot.dev/exclude".into(), "broken disk".into());
    world.policy.strategy.max_unavailable = patchpilot_engine::units::IntOrPercent::Count(3);
    world.rollout.abort = true;
    world.rollout.generation = 2;
    world.now += mins(60);
    let decision = world.reconcile();
    assert!(decision.actions.is_empty(), "{:?}", decision.actions);
    let mut expected = ended.clone();
    for condition in &mut expected.conditions {
        condition.observed_generation = 2;
    }
    assert_eq!(
        world.status, expected,
        "only the generation it describes moved on"
    );
}

#[test]
fn a_target_that_fails_while_others_roll_back_keeps_its_lock_until_its_turn() {
    // Two at a time: node-01 fails while node-02 (started after it) is still updating;
    // node-02 is rolled back first, under the lock it never let go, then node-01 under its
    // own.
    let mut world = World::new(start(), 3, 1);
    world.policy.strategy.canary = CanarySize::Targets(0);
    world.policy.strategy.max_unavailable = patchpilot_engine::units::IntOrPercent::Count(3);
    world.node("node-01").script.apply_fails = true;
    world.node("node-02").script.updater = mins(10);
    assert_eq!(world.run(1000), Phase::RolledBack);
    let releases = |target: &str| {
        world
            .log
            .iter()
            .filter(|l| l.target == target && matches!(l.what, What::Released(_) | What::Unlocked))
            .count()
    };
    for node in ["Node/node-00", "Node/node-01", "Node/node-02"] {
        assert_eq!(
            releases(node),
            1,
            "{node} was let go once, at the end: {:#?}",
            world.log
        );
    }
    assert_eq!(
        world.locked(Action::Rollback),
        ["Node/node-02", "Node/node-01", "Node/node-00"]
    );
}

#[test]
fn a_rollout_deleted_while_paused_in_its_rollback_still_lets_go_of_its_targets() {
    // Two at a time: node-01 fails while node-00 is still updating; node-00 is held for
    // its rollback when a person pauses the rollout, then deletes it.
    let mut world = World::new(start(), 3, 1);
    world.policy.strategy.canary = CanarySize::Targets(0);
    world.policy.strategy.max_unavailable = patchpilot_engine::units::IntOrPercent::Count(2);
    world.node("node-01").script.apply_fails = true;
    world.node("node-00").script.updater = mins(10);
    let held = (0..200).any(|_| {
        world.reconcile();
        let held = world
            .status
            .in_progress
            .iter()
            .any(|p| p.step == patchpilot_engine::rollout::Step::AwaitingRollback);
        if !held {
            world.now = world.next_event().unwrap_or(world.now + mins(1));
        }
        held
    });
    assert!(held, "no target was held for its rollback");
    world.rollout.paused = true;
    world.reconcile();
    assert!(!world.status.in_progress.is_empty(), "a target is held");
    world.stopping = true;
    world.run(1000);
    assert!(world.status.in_progress.is_empty());
    assert!(world.cordoned().is_empty());
    assert!(
        world
            .nodes
            .iter()
            .all(|n| !n.annotations.contains_key("patchpilot.dev/lock"))
    );
}

/// Issue 10, item 6: a signal that the target will not become healthy (a crash loop) ends
/// the wait at once, with its reason, instead of at `health.timeout`; the canary's failure
/// then rolls back as any other.
#[test]
fn a_fatal_health_signal_fails_the_target_at_once_with_its_reason() {
    let mut world = World::new(start(), 3, 1);
    world.node("node-00").script.fatal_when_patched =
        Some((FatalReason::CrashLoopBackOff, SignedDuration::ZERO));
    assert_eq!(world.run(1000), Phase::RolledBack);
    let failure = world.status.failures.first().expect("the canary failed");
    assert_eq!(failure.target.as_str(), "Node/node-00");
    assert_eq!(failure.reason, "CrashLoopBackOff");
    assert!(
        failure.message.contains("app/node-00-pod-0 container app"),
        "{}",
        failure.message
    );
    // Failed as soon as the node was back (drained in 5 s, updater 2 min, reboot 3 min),
    // not 10 minutes later at the health timeout.
    let back = mins(5) + SignedDuration::from_secs(5);
    // The failure moves the canary to its rollback under the same lock, in the same
    // decision.
    let locked = world.logged(|w| *w == What::Locked(Action::Apply))[0].at;
    let failed = world.logged(|w| *w == What::Locked(Action::Rollback))[0].at;
    assert_eq!(failed, locked + back);
    assert_eq!(world.locked(Action::Rollback), ["Node/node-00"]);

    // During the soak too: the signal appears 30 s into the 1-minute soak.
    let mut world = World::new(start(), 3, 1);
    world.node("node-00").script.fatal_when_patched =
        Some((FatalReason::ImagePullBackOff, SignedDuration::from_secs(30)));
    assert_eq!(world.run(1000), Phase::RolledBack);
    let failure = world.status.failures.first().expect("the canary failed");
    assert_eq!(failure.reason, "ImagePullBackOff");
    let locked = world.logged(|w| *w == What::Locked(Action::Apply))[0].at;
    let failed = world.logged(|w| *w == What::Locked(Action::Rollback))[0].at;
    assert_eq!(failed, locked + back + SignedDuration::from_secs(30));
}

#[test]
fn fatal_reasons_are_the_kubelets_waiting_reasons() {
    for reason in FatalReason::ALL {
        assert_eq!(FatalReason::from_waiting(reason.as_str()), Some(reason));
    }
    assert_eq!(FatalReason::from_waiting("ContainerCreating"), None);
    assert_eq!(FatalReason::from_waiting("PodInitializing"), None);
    let facts = HealthFacts::fatal(FatalReason::ErrImagePull, "podsReady: x".into());
    assert!(facts.fails() && !facts.is_healthy());
    assert_eq!(facts.summary(), "podsReady: x");
}
