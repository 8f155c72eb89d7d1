//! Window evaluation checked against itself and against a slow model: the open set worked out
//! minute by minute, the answer consistent from every instant, and cheap even when the window
//! opens every minute.

use std::time::Instant;

use jiff::{SignedDuration, Timestamp, tz::TimeZone};
use patchpilot_engine::{
    units::Duration,
    window::{Evaluation, Interval, Schedule, Window},
};
use proptest::prelude::*;

use patchpilot_engine::testkit::windows::{cron, daily, interval, ts, weekly, window};

/// The open set worked out the slow way: every local minute of every day is tested against
/// each recurrence and converted on its own with jiff's default (compatible) rule, the
/// occurrences are merged by sorting, and the exclusions cut them minute by minute.
fn brute_force(window: &Window, first: jiff::civil::Date, days: i32) -> Vec<Interval> {
    let tz = window.time_zone();
    let mut occurrences = Vec::new();
    for day in 0..days {
        let date = first + jiff::Span::new().days(day);
        for hour in 0..24 {
            for minute in 0..60 {
                let local = date.at(hour, minute, 0, 0);
                for recurrence in window.recurrences() {
                    let matches = match &recurrence.schedule {
                        Schedule::Cron(cron) => cron.matches(local),
                        Schedule::Weekly { days, start } => {
                            let on_day = days.as_ref().is_none_or(|days| {
                                days.iter()
                                    .any(|day| jiff::civil::Weekday::from(*day) == date.weekday())
                            });
                            on_day && start.civil() == local.time()
                        }
                    };
                    if matches {
                        let start = local.to_zoned(tz.clone()).unwrap().timestamp();
                        let end = start + recurrence.duration.signed();
                        occurrences.push(Interval::new(start, end).unwrap());
                    }
                }
            }
        }
    }
    occurrences.sort();
    let mut merged: Vec<Interval> = Vec::new();
    for occurrence in occurrences {
        match merged.last_mut() {
            Some(last) if occurrence.start <= last.end => last.end = last.end.max(occurrence.end),
            _ => merged.push(occurrence),
        }
    }
    let mut pieces = Vec::new();
    for run in merged {
        let mut start = run.start;
        for cut in window.exclusions() {
            if cut.end <= start || cut.start >= run.end {
                continue;
            }
            if let Some(piece) = Interval::new(start, cut.start) {
                pieces.push(piece);
            }
            start = start.max(cut.end);
        }
        if let Some(piece) = Interval::new(start, run.end) {
            pieces.push(piece);
        }
    }
    pieces
}

/// Days around a clock change in each zone: the zone, the first day the model works out, and
/// an instant near the change.
const AROUND_CHANGES: [(&str, &str, &str); 8] = [
    ("Europe/Berlin", "2026-03-20", "2026-03-29T00:30:00Z"),
    ("Europe/Berlin", "2026-10-16", "2026-10-25T00:30:00Z"),
    ("Australia/Lord_Howe", "2026-09-25", "2026-10-03T15:00:00Z"),
    ("Australia/Lord_Howe", "2026-03-27", "2026-04-04T14:30:00Z"),
    ("America/Santiago", "2026-08-28", "2026-09-06T03:00:00Z"),
    ("America/Santiago", "2026-03-27", "2026-04-05T01:00:00Z"),
    ("America/Havana", "2026-10-23", "2026-11-01T03:00:00Z"),
    ("America/New_York", "2026-02-27", "2026-03-08T05:00:00Z"),
];

#[test]
fn agrees_with_the_open_set_worked_out_minute_by_minute() {
    // Short openings, some inside longer ones; and long ones (a 60-hour opening twice a week)
    // that cover whole days of the openings every ten minutes.
    let sets = [
        vec![
            cron("*/20 0-3 * * *", "10m"),
            cron("45 1,23 * * SAT", "30m"),
            cron("0,30 2 1-10 * MON", "45m"),
            daily("02:30", "20m"),
            weekly("Sun", "00:15", "2h"),
            cron("0 12 * * *", "23h"),
        ],
        vec![
            cron("*/10 * * * *", "3m"),
            cron("0 6 * * MON,THU", "60h"),
            daily("02:30", "20m"),
            weekly("Sun", "00:15", "2h"),
        ],
    ];
    for recurrences in sets {
        for (zone, first, middle) in AROUND_CHANGES {
            let middle = ts(middle);
            let exclusions = [(
                middle - SignedDuration::from_hours(30),
                middle - SignedDuration::from_hours(20),
            )];
            let window = Window::new(
                TimeZone::get(zone).unwrap(),
                recurrences.clone(),
                exclusions
                    .iter()
                    .map(|&(start, end)| Interval::new(start, end).unwrap())
                    .collect(),
                Duration::ZERO,
            );
            let pieces = brute_force(&window, first.parse().unwrap(), 18);
            // Every 17 minutes for three days around the transition, well inside the 18 days
            // worked out, so that the first and last pieces of the model are not involved.
            let step = SignedDuration::from_mins(17);
            let from = middle - SignedDuration::from_hours(36);
            for i in 0..(72 * 60 / 17) {
                let at = from + step * i;
                let current = pieces.iter().find(|piece| piece.contains(at)).copied();
                let next: Vec<Interval> = pieces
                    .iter()
                    .filter(|piece| piece.start > at)
                    .take(3)
                    .copied()
                    .collect();
                let expected = Evaluation {
                    open: current.is_some(),
                    current,
                    next,
                };
                assert_eq!(window.evaluate(at, 3), expected, "{zone} at {at}");
            }
        }
    }
}

/// A recurrence drawn from a few shapes: cron expressions opening every few minutes to once a
/// week, weekly openings, lasting from a minute to two days, so that longer ones cover others
/// in part, in whole days, or across a clock change.
fn recurrence() -> impl Strategy<Value = patchpilot_engine::window::Recurrence> {
    let minutes = prop::sample::select(vec!["*", "*/7", "0", "15,45", "59"]);
    let hours = prop::sample::select(vec!["*", "0-3", "2", "23", "12", "1-22/3"]);
    let days = prop::sample::select(vec!["*", "MON,THU", "SUN", "SAT,SUN"]);
    let duration = prop::sample::select(vec![
        "1m", "3m", "59s", "1h", "61m", "10h", "23h", "1439m", "25h", "2d",
    ]);
    let starts = prop::sample::select(vec!["00:00", "02:30", "12:00", "23:59"]);
    prop_oneof![
        (minutes, hours, days.clone(), duration.clone())
            .prop_map(|(m, h, d, length)| cron(&format!("{m} {h} * * {d}"), length)),
        (days, starts, duration).prop_map(|(d, start, length)| {
            let days = match d {
                "*" => "",
                "MON,THU" => "Mon,Thu",
                "SUN" => "Sun",
                _ => "Sat,Sun",
            };
            weekly(days, start, length)
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 40,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Whatever covers what, the union skipping covered occurrences is the model's union.
    #[test]
    fn any_mix_of_recurrences_agrees_with_the_model(
        recurrences in prop::collection::vec(recurrence(), 1..5),
        case in 0..AROUND_CHANGES.len(),
    ) {
        let (zone, first, middle) = AROUND_CHANGES[case];
        let window = Window::new(
            TimeZone::get(zone).unwrap(),
            recurrences,
            Vec::new(),
            Duration::ZERO,
        );
        let first: jiff::civil::Date = first.parse().unwrap();
        let pieces = brute_force(&window, first, 18);
        // Pieces that start more than the longest opening after the model's first day and end
        // before its last are exact: nothing outside the 18 days can touch them.
        let begin = first.to_zoned(TimeZone::UTC).unwrap().timestamp();
        let lo = begin + SignedDuration::from_hours(3 * 24);
        let hi = begin + SignedDuration::from_hours(17 * 24);
        let exact = |piece: &Interval| piece.start > lo && piece.end < hi;
        let middle = ts(middle);
        for i in 0..24 {
            let at: Timestamp = middle - SignedDuration::from_hours(36)
                + SignedDuration::from_mins(181) * i;
            let evaluation = window.evaluate(at, 3);
            let current = pieces.iter().find(|piece| piece.contains(at));
            prop_assert_eq!(evaluation.open, current.is_some(), "{} at {}", zone, at);
            if let Some(current) = current.filter(|piece| exact(piece)) {
                prop_assert_eq!(evaluation.current, Some(*current), "{} at {}", zone, at);
            }
            let next = pieces.iter().filter(|piece| piece.start > at);
            for (i, expected) in next.take(3).take_while(|piece| exact(piece)).enumerate() {
                prop_assert_eq!(evaluation.next.get(i), Some(expected), "{} at {}", zone, at);
            }
        }
    }
}

#[test]
fn a_window_that_never_closes_is_still_cheap() {
    // Every evaluation of a window that never closes runs to the 400-day horizon on both
    // sides. The fuzzer's slow input: daily openings of 13.8 days over a 2 ms opening every
    // minute; 1.3 s in the optimised build before occurrences within others were skipped.
    let covered = window(
        "Asia/Kathmandu",
        vec![cron("* * * * *", "2ms"), daily("00:00", "19872m")],
        &[],
    );
    // A day of openings a minute short of a day, the minute filled by one of 31 others
    // opening every minute (5.6 s before).
    let gapped = window(
        "UTC",
        std::iter::once(daily("00:00", "1439m"))
            .chain((1..31).map(|i| cron("* * * * *", &format!("{}s", 60 - i))))
            .chain(std::iter::once(cron("59 23 * * *", "1m")))
            .collect(),
        &[],
    );
    let at = ts("1900-06-01T12:00:00Z");
    for window in [covered, gapped] {
        let began = Instant::now();
        let evaluation = window.evaluate(at, 3);
        let elapsed = began.elapsed();
        let current = evaluation.current.unwrap();
        assert_eq!(evaluation.next, []);
        // From the first opening within 400 days before to the end of the last one started
        // within 400 days after.
        assert!(current.end.duration_since(current.start) > SignedDuration::from_hours(24 * 799));
        assert!(elapsed.as_millis() < 1000, "{elapsed:?}");
    }
}

#[test]
fn the_answer_agrees_with_itself_at_every_instant() {
    // Every 7.5 minutes for a week across the autumn change in Berlin, with a freeze: the
    // current interval is the same from anywhere inside it, and the next interval starts at
    // the next instant at which the window opens.
    let window = window(
        "Europe/Berlin",
        vec![
            weekly("Sat,Sun", "01:00", "4h"),
            cron("*/20 2 * * *", "15m"),
            cron("0 22 * * Tue", "2h"),
        ],
        &[("2026-10-27T23:00:00+01:00", "2026-10-29T00:00:00+01:00")],
    );
    let start = ts("2026-10-23T00:00:00Z");
    let step = jiff::SignedDuration::from_secs(450);
    let mut previous: Option<Evaluation> = None;
    for i in 0..(7 * 24 * 8) {
        let at = start + step * i;
        let evaluation = window.evaluate(at, 2);
        assert_eq!(evaluation.open, window.is_open(at), "at {at}");
        assert_eq!(evaluation.open, evaluation.current.is_some());
        if let Some(current) = evaluation.current {
            assert!(current.contains(at));
        }
        assert!(evaluation.next.iter().all(|next| next.start > at));
        assert!(
            evaluation
                .next
                .windows(2)
                .all(|pair| pair[0].end < pair[1].start)
        );
        if let Some(previous) = previous {
            match (previous.current, evaluation.current) {
                (Some(before), Some(now)) if before.contains(at) => assert_eq!(before, now),
                (_, Some(now)) => assert_eq!(Some(&now), previous.next.first(), "at {at}"),
                (_, None) => {}
            }
        }
        previous = Some(evaluation);
    }
}

#[test]
fn a_window_open_every_minute_is_still_cheap() {
    for zone in ["UTC", "Europe/Berlin"] {
        let window = window(zone, vec![cron("* * * * *", "1m")], &[]);
        let began = Instant::now();
        let evaluation = window.evaluate(ts("2026-06-01T12:00:00.5Z"), 3);
        let elapsed = began.elapsed();
        assert!(evaluation.open);
        assert!(elapsed.as_millis() < 1000, "{zone}: {elapsed:?}");
        if zone == "UTC" {
            // One interval, cut only by the search: from 400 days before to 400 days after.
            assert_eq!(
                evaluation.current,
                Some(interval(("2025-04-27T12:01:00Z", "2027-07-06T12:01:00Z")))
            );
            assert_eq!(evaluation.next, []);
        } else {
            // The repeated hour of each autumn night is a hole.
            assert_eq!(
                evaluation.current,
                Some(interval((
                    "2025-10-26T03:00:00+01:00",
                    "2026-10-25T03:00:00+02:00"
                )))
            );
            assert_eq!(evaluation.next.len(), 1);
        }
    }
}
