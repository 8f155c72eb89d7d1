//! Notices (crate::notify), scenario by scenario in the simulated world: what a rollout tells,
//! in which order, numbered how, and what it keeps to itself.

use jiff::{Timestamp, tz::TimeZone};
use patchpilot_engine::{
    notify::{NoticeKind, Notices},
    policy::CanarySize,
    rollout::Phase,
    testkit::{at, mins, stages, world::World},
    units::Duration,
    window::{Recurrence, Schedule, WallClock, Window},
};

use NoticeKind as K;

fn all() -> Notices {
    Notices {
        on: NoticeKind::ALL.into_iter().collect(),
        announce_before: None,
    }
}

/// The kinds in the outbox, in order.
fn kinds(world: &World) -> Vec<NoticeKind> {
    world.status.outbox.notices.iter().map(|n| n.kind).collect()
}

/// Open daily at `hour` UTC for `hours`.
fn daily(hour: u8, hours: u64) -> Window {
    let recurrence = Recurrence {
        schedule: Schedule::Weekly {
            days: None,
            start: WallClock::new(hour, 0).unwrap(),
        },
        duration: Duration::from_hours(hours),
    };
    Window::new(TimeZone::UTC, vec![recurrence], vec![], Duration::ZERO)
}

/// Two nodes from `start`, every notice asked for, announced `hours` ahead of the daily
/// window at 02:00 UTC.
fn announcing(start: &str, hours: u64) -> World {
    let mut world = World::new(at(start), 2, 1);
    world.policy.notices = Notices {
        announce_before: Some(Duration::from_hours(hours)),
        ..all()
    };
    world.window = Some(daily(2, 2));
    world
}

#[test]
fn a_rollout_tells_its_waves_and_outcome_in_order_numbered_once() {
    let mut world = World::new(at("2026-11-21T01:00:00Z"), 6, 1);
    world.policy.notices = all();
    world.policy.strategy.stages = stages(&[50], Duration::from_mins(10));
    assert_eq!(world.run(2000), Phase::Succeeded);
    assert_eq!(
        kinds(&world),
        [
            K::Started,
            K::WaveStarted,
            K::WaveFinished,
            K::WaveStarted,
            K::WaveFinished,
            K::WaveStarted,
            K::WaveFinished,
            K::Succeeded,
        ]
    );
    let notices = &world.status.outbox.notices;
    let seqs: Vec<u32> = notices.iter().map(|n| n.seq).collect();
    assert_eq!(seqs, (1..=8).collect::<Vec<_>>());
    assert!(notices.windows(2).all(|w| w[0].at <= w[1].at));
    assert!(notices[1].message.contains("wave canary (1 of 3) started"));
    assert!(notices[6].message.contains("wave full (3 of 3) finished"));
    // The facts no transition event recorded before are events now.
    let reasons = world.event_reasons();
    for reason in ["RolloutStarted", "WaveFinished"] {
        assert!(reasons.iter().any(|r| r == reason), "{reasons:?}");
    }
}

#[test]
fn only_the_kinds_asked_for_are_kept_and_none_without_notifications() {
    let mut world = World::new(at("2026-11-21T01:00:00Z"), 3, 1);
    world.policy.notices = Notices {
        on: [K::Succeeded, K::Failed].into_iter().collect(),
        announce_before: None,
    };
    assert_eq!(world.run(2000), Phase::Succeeded);
    assert_eq!(kinds(&world), [K::Succeeded]);
    assert_eq!(
        world.status.outbox.seq, 1,
        "numbers go to kept notices only"
    );

    let mut quiet = World::new(at("2026-11-21T01:00:00Z"), 3, 1);
    assert_eq!(quiet.run(2000), Phase::Succeeded);
    assert_eq!(quiet.status.outbox, Default::default());
}

#[test]
fn a_failed_canary_tells_the_failure_and_the_rollback() {
    let mut world = World::new(at("2026-11-21T01:00:00Z"), 4, 1);
    world.policy.notices = all();
    world.node("node-00").script.apply_fails = true;
    assert_eq!(world.run(1000), Phase::RolledBack);
    let kinds = kinds(&world);
    assert_eq!(
        kinds,
        [
            K::Started,
            K::WaveStarted,
            K::TargetFailed,
            K::RollbackStarted,
            K::RollbackFinished,
        ]
    );
    let failed = &world.status.outbox.notices[2];
    assert_eq!(
        failed.target.as_ref().map(ToString::to_string).as_deref(),
        Some("Node/node-00")
    );
    assert!(failed.message.contains("Node/node-00 failed"), "{failed:?}");
}

#[test]
fn approval_and_promotion_are_asked_for_once_each() {
    let mut world = World::new(at("2026-11-21T01:00:00Z"), 4, 1);
    world.policy.notices = all();
    world.policy.approval.after_canary = true;
    world.rollout.approved = false;
    world.reconcile();
    world.now += mins(30);
    world.reconcile();
    assert_eq!(kinds(&world), [K::ApprovalNeeded]);
    assert!(
        world.status.outbox.notices[0]
            .message
            .contains("waits for approval: kubectl patchpilot approve os-")
    );
    world.rollout.approved = true;
    assert_eq!(world.run(500), Phase::Paused);
    world.now += mins(30);
    world.reconcile();
    let asked = kinds(&world)
        .into_iter()
        .filter(|k| *k == K::PromotionAwaited)
        .count();
    assert_eq!(asked, 1, "{:?}", kinds(&world));
    assert!(!kinds(&world).contains(&K::Paused), "waiting is no pause");
    world.rollout.promoted = true;
    assert_eq!(world.run(500), Phase::Succeeded);
    assert_eq!(kinds(&world).last(), Some(&K::Succeeded));
}

#[test]
fn a_rollout_is_announced_ahead_of_its_opening_and_told_of_changes() {
    // Created Friday 12:00; the window opens daily at 02:00 for two hours; announced 6h
    // ahead: at 20:00 on Friday, for Saturday 02:00.
    let created = at("2026-11-20T12:00:00Z");
    let mut world = World::new(created, 3, 1);
    world.policy.notices = Notices {
        announce_before: Some(Duration::from_hours(6)),
        ..all()
    };
    world.policy.strategy.canary = CanarySize::Targets(0);
    world.window = Some(daily(2, 2));
    world.rollout.approved = false;
    let decision = world.reconcile();
    // Approval is asked for at once: the owners have until the opening.
    assert_eq!(kinds(&world), [K::ApprovalNeeded]);
    // The announcement is due 6h before Saturday 02:00.
    assert_eq!(decision.wake_at, Some(at("2026-11-20T20:00:00Z")));
    world.now = at("2026-11-20T20:00:00Z");
    world.reconcile();
    assert_eq!(kinds(&world), [K::ApprovalNeeded, K::Announcement]);
    let announcement = &world.status.outbox.notices[1];
    assert_eq!(
        announcement.opening.map(|o| o.start),
        Some(at("2026-11-21T02:00:00Z"))
    );
    assert!(
        announcement
            .message
            .contains("at 02:00 UTC on Sat 2026-11-21")
            && announcement.message.contains("3 targets in one wave")
            && announcement
                .message
                .contains("needs approval: kubectl patchpilot approve"),
        "{}",
        announcement.message
    );
    // Said once: deciding again changes nothing.
    world.now += mins(10);
    world.reconcile();
    assert_eq!(kinds(&world).len(), 2);
    // Approved before the opening: a follow-up says it starts without waiting.
    world.rollout.approved = true;
    world.reconcile();
    assert_eq!(kinds(&world).last(), Some(&K::AnnouncementChanged));
    assert!(
        world.status.outbox.notices[2]
            .message
            .contains("is approved: it starts"),
        "{:?}",
        world.status.outbox.notices[2]
    );
    assert_eq!(world.run(2000), Phase::Succeeded);
    let kinds = kinds(&world);
    assert_eq!(kinds[3], K::Started, "{kinds:?}");
    assert!(
        !kinds[3..].contains(&K::AnnouncementChanged),
        "once started, nothing is announced: {kinds:?}"
    );
}

#[test]
fn a_window_that_moves_after_the_announcement_is_told() {
    let mut world = announcing("2026-11-20T21:00:00Z", 6);
    world.reconcile();
    assert_eq!(kinds(&world), [K::Announcement]);
    // The window now opens at 03:00 instead.
    world.window = Some(daily(3, 2));
    world.now += mins(5);
    world.reconcile();
    assert_eq!(kinds(&world), [K::Announcement, K::AnnouncementChanged]);
    let changed = &world.status.outbox.notices[1].message;
    assert!(
        changed.contains("moved from at 02:00 UTC") && changed.contains("to at 03:00 UTC"),
        "{changed}"
    );
}

#[test]
fn an_emergency_is_not_announced_but_told_when_it_starts() {
    let mut world = announcing("2026-11-21T12:00:00Z", 24);
    world.rollout.patch.emergency = true;
    assert_eq!(world.run(500), Phase::Succeeded);
    let kinds = kinds(&world);
    assert!(!kinds.contains(&K::Announcement), "{kinds:?}");
    assert_eq!(kinds[0], K::Started);
    assert!(
        world.status.outbox.notices[0]
            .message
            .contains("emergency patch, outside any window")
    );
}

#[test]
fn compliance_overdue_is_told_once_when_the_deadline_passes() {
    let released: Timestamp = at("2026-11-21T00:00:00Z");
    let mut world = World::new(at("2026-11-23T23:00:00Z"), 2, 1);
    world.policy.notices = all();
    world.policy.deadline = Some(Duration::from_hours(72));
    world.rollout.patch.released_at = Some(released);
    world.rollout.approved = false;
    let decision = world.reconcile();
    assert_eq!(decision.wake_at, Some(at("2026-11-24T00:00:00Z")));
    world.now = at("2026-11-24T00:00:00Z");
    world.reconcile();
    world.now += mins(60);
    world.reconcile();
    let overdue: Vec<_> = world
        .status
        .outbox
        .notices
        .iter()
        .filter(|n| n.kind == K::ComplianceOverdue)
        .collect();
    assert_eq!(overdue.len(), 1);
    assert!(
        overdue[0].message.contains("2 target(s) still without it"),
        "{}",
        overdue[0].message
    );
}

#[test]
fn a_newer_version_withdraws_the_announcement_of_the_older_one() {
    let mut world = announcing("2026-11-20T21:00:00Z", 6);
    world.reconcile();
    assert_eq!(kinds(&world), [K::Announcement]);
    world.superseded = true;
    world.now += mins(5);
    world.reconcile();
    assert_eq!(kinds(&world), [K::Announcement, K::Superseded]);
    let withdrawn = &world.status.outbox.notices[1].message;
    assert!(
        withdrawn.contains("its announcement of v2 at 02:00 UTC on Sat 2026-11-21")
            && withdrawn.contains("no longer holds"),
        "{withdrawn}"
    );
}

#[test]
fn an_opening_is_told_in_the_windows_zone_and_utc() {
    let mut world = World::new(at("2026-11-20T21:00:00Z"), 2, 1);
    world.policy.notices = Notices {
        announce_before: Some(Duration::from_hours(6)),
        ..all()
    };
    let daily = daily(2, 2);
    world.window = Some(Window::new(
        TimeZone::get("Europe/Berlin").unwrap(),
        daily.recurrences().to_vec(),
        vec![],
        Duration::ZERO,
    ));
    world.reconcile();
    let told = &world.status.outbox.notices[0].message;
    assert!(
        told.contains("at 02:00 CET on Sat 2026-11-21 (01:00 UTC), until 04:00 CET"),
        "{told}"
    );
}
