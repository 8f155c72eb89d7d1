//! The engine's work on the largest inputs people can write (issue 16): how long evaluating
//! them takes, and that it is bounded. The API server refuses more than the CRD schemas
//! allow (`patchpilot plan` and `patchpilot window` check files against the same schemas):
//! at most 32 recurrences and 64 exclusions a window, 32 requirements a selector with 256
//! values each. The engine itself takes any size; these figures are what those limits buy,
//! and what ten times more would cost.
//!
//! Run with `cargo bench -p patchpilot-engine --bench bounds`.

use std::{
    collections::BTreeSet,
    hint::black_box,
    time::{Duration as StdDuration, Instant},
};

use jiff::{SignedDuration, Timestamp, tz::TimeZone};
use patchpilot_engine::{
    plan::{self, Namespaces, Query, Scope, TargetRules},
    selector::Selector,
    testkit::Fleet,
    units::Duration,
    window::{Interval, Recurrence, Schedule, Window},
};

/// Runs `f` repeatedly for about a second; returns the median and the slowest run.
fn measure(mut f: impl FnMut()) -> (StdDuration, StdDuration) {
    f();
    let mut samples = Vec::new();
    let start = Instant::now();
    while start.elapsed() < StdDuration::from_secs(1) || samples.len() < 5 {
        let t = Instant::now();
        f();
        samples.push(t.elapsed());
    }
    samples.sort();
    (samples[samples.len() / 2], *samples.last().unwrap())
}

fn cron(expression: &str, duration: Duration) -> Recurrence {
    Recurrence {
        schedule: Schedule::Cron(expression.parse().unwrap()),
        duration,
    }
}

/// `count` one-hour exclusions, one every 25 hours from `from`.
fn exclusions(from: Timestamp, count: usize) -> Vec<Interval> {
    (0..count)
        .map(|i| {
            let start = from + SignedDuration::from_hours(25 * i as i64);
            Interval::new(start, start + SignedDuration::from_hours(1)).unwrap()
        })
        .collect()
}

fn window(recurrences: Vec<Recurrence>, exclusions: Vec<Interval>) -> Window {
    Window::new(
        TimeZone::get("Europe/Berlin").unwrap(),
        recurrences,
        exclusions,
        Duration::from_mins(30),
    )
}

fn report(what: &str, (median, slowest): (StdDuration, StdDuration)) {
    println!("{what}: median {median:.2?}, slowest {slowest:.2?}");
}

fn main() {
    let now: Timestamp = "2026-12-06T10:00:00Z".parse().unwrap();

    // Windows: evaluating at an instant (open? the current interval, the next 10) and the
    // next boundary, as a rollout's decision does.
    let evaluate = |window: &Window| {
        measure(|| {
            black_box(window.evaluate(black_box(now), 10));
            black_box(window.next_boundary(black_box(now)));
        })
    };
    let nightly = window(vec![cron("0 1 * * *", Duration::from_hours(4))], Vec::new());
    report("window: one nightly recurrence", evaluate(&nightly));
    let busiest = window(
        (0..32)
            .map(|i| cron(&format!("{i} * * * *"), Duration::from_mins(1)))
            .collect(),
        exclusions(now, 64),
    );
    report(
        "window: the schema's most, 32 recurrences opening every hour, 64 exclusions",
        evaluate(&busiest),
    );
    let every_minute = window(
        vec![cron("* * * * *", Duration::from_secs(30))],
        exclusions(now, 64),
    );
    report(
        "window: a 30 s opening every minute, 64 exclusions",
        evaluate(&every_minute),
    );
    let ten_thousand = window(
        vec![cron("0 1 * * *", Duration::from_hours(4))],
        exclusions(now - SignedDuration::from_hours(25 * 5_000), 10_000),
    );
    report(
        "window: 10,000 exclusions (refused by the schema; the engine alone)",
        evaluate(&ten_thousand),
    );
    let leap_day = window(
        vec![cron("0 0 29 2 *", Duration::from_hours(1))],
        Vec::new(),
    );
    let found = leap_day.evaluate(now, 1).next.len();
    report(
        &format!(
            "window: a leap-day cron, next opening {} within the 400-day horizon",
            if found == 0 { "not" } else { "found" }
        ),
        evaluate(&leap_day),
    );
    let never = window(
        vec![cron("0 0 31 2 *", Duration::from_hours(1))],
        Vec::new(),
    );
    report(
        "window: a cron that never matches (31 February)",
        evaluate(&never),
    );
    // Windows that never close: every evaluation runs to the 400-day horizon on both sides.
    // The first is the fuzzer's slow input: daily openings of 13.8 days over a 2 ms opening
    // every minute, in Asia/Kathmandu.
    let daily = |duration: Duration| Recurrence {
        schedule: Schedule::Weekly {
            days: None,
            start: "00:00".parse().unwrap(),
        },
        duration,
    };
    let covered = Window::new(
        TimeZone::get("Asia/Kathmandu").unwrap(),
        vec![
            cron("* * * * *", Duration::from_millis(2)),
            daily(Duration::from_mins(19_872)),
        ],
        Vec::new(),
        Duration::ZERO,
    );
    report(
        "window: never closing, a 2 ms opening every minute under 13.8-day daily ones",
        evaluate(&covered),
    );
    let crowded = window(
        std::iter::once(daily(Duration::from_hours(25)))
            .chain((1..32).map(|i| cron("* * * * *", Duration::from_millis(i))))
            .collect(),
        exclusions(now, 64),
    );
    report(
        "window: never closing, 31 recurrences opening every minute under 25-hour daily ones, 64 exclusions",
        evaluate(&crowded),
    );
    let gapped = window(
        std::iter::once(daily(Duration::from_mins(1439)))
            .chain((1..31).map(|i| cron("* * * * *", Duration::from_secs(60 - i))))
            .chain(std::iter::once(cron("59 23 * * *", Duration::from_mins(1))))
            .collect(),
        Vec::new(),
    );
    report(
        "window: never closing, daily openings a minute short of a day, the minute filled by one of 31 others",
        evaluate(&gapped),
    );

    // Selectors and planning over the largest fleets.
    let candidates = Fleet::workers(50_000).candidates();
    let namespaces = Namespaces::new();
    let policy = Fleet::policy();
    let rollout = Fleet::rollout(now);
    let query = Query {
        policy: &policy.name,
        version: &rollout.patch.version,
        images: None,
        group_by: Some("topology.kubernetes.io/zone"),
        now,
    };
    let plan_with = |selector: Selector| {
        let rules = TargetRules {
            scope: Scope::Nodes {
                selector,
                pool_label: None,
            },
            exclude: None,
        };
        measure(|| {
            let inventory =
                plan::inventory(&rules, &query, black_box(&candidates), &namespaces, |_| {
                    false
                });
            black_box(plan::waves(&policy.strategy, inventory.eligible.len()));
        })
    };
    report(
        "plan 50,000 nodes, selecting all",
        plan_with(Selector::everything()),
    );
    // The schema's most: 32 requirements of 256 values each, every one matching (the
    // worst case: no requirement fails early).
    let mut widest = Selector::everything();
    for i in 0..32 {
        let values: BTreeSet<String> = (0..256).map(|v| format!("pool-{v}")).collect();
        let values: Vec<String> = values.into_iter().collect();
        let key = if i == 0 {
            "pool".to_owned()
        } else {
            format!("example.com/absent-{i}")
        };
        let operator = if i == 0 { "In" } else { "DoesNotExist" };
        let values = if i == 0 { values } else { Vec::new() };
        widest = widest.with_expression(&key, operator, &values).unwrap();
    }
    report(
        "plan 50,000 nodes, a selector of 32 requirements (the schema's most)",
        plan_with(widest),
    );
    let mut thousand = Selector::everything();
    for i in 0..1_000 {
        thousand = thousand
            .with_expression(&format!("example.com/absent-{i}"), "DoesNotExist", &[])
            .unwrap();
    }
    report(
        "plan 50,000 nodes, a selector of 1,000 requirements (refused by the schema; the engine alone)",
        plan_with(thousand),
    );
}
