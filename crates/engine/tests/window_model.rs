//! Window evaluation checked against itself and against a slow model: the open set worked out
//! minute by minute, the answer consistent from every instant, and cheap even when the window
//! opens every minute.

use std::time::Instant;

use jiff::tz::TimeZone;
use patchpilot_engine::{
    units::Duration,
    window::{Evaluation, Interval, Schedule, Window},
};

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

#[test]
fn agrees_with_the_open_set_worked_out_minute_by_minute() {
    let cases = [
        ("Europe/Berlin", "2026-03-20", "2026-03-29T00:30:00Z"),
        ("Europe/Berlin", "2026-10-16", "2026-10-25T00:30:00Z"),
        ("Australia/Lord_Howe", "2026-09-25", "2026-10-03T15:00:00Z"),
        ("Australia/Lord_Howe", "2026-03-27", "2026-04-04T14:30:00Z"),
        ("America/Santiago", "2026-08-28", "2026-09-06T03:00:00Z"),
        ("America/Santiago", "2026-03-27", "2026-04-05T01:00:00Z"),
        ("America/Havana", "2026-10-23", "2026-11-01T03:00:00Z"),
        ("America/New_York", "2026-02-27", "2026-03-08T05:00:00Z"),
    ];
    let recurrences = || {
        vec![
            cron("*/20 0-3 * * *", "10m"),
            cron("45 1,23 * * SAT", "30m"),
            cron("0,30 2 1-10 * MON", "45m"),
            daily("02:30", "20m"),
            weekly("Sun", "00:15", "2h"),
            cron("0 12 * * *", "23h"),
        ]
    };
    for (zone, first, middle) in cases {
        let middle = ts(middle);
        let exclusions = [(
            middle - jiff::SignedDuration::from_hours(30),
            middle - jiff::SignedDuration::from_hours(20),
        )];
        let window = Window::new(
            TimeZone::get(zone).unwrap(),
            recurrences(),
            exclusions
                .iter()
                .map(|&(start, end)| Interval::new(start, end).unwrap())
                .collect(),
            Duration::ZERO,
        );
        let pieces = brute_force(&window, first.parse().unwrap(), 18);
        // Every 17 minutes for three days around the transition, well inside the 18 days
        // worked out, so that the first and last pieces of the model are not involved.
        let step = jiff::SignedDuration::from_mins(17);
        let from = middle - jiff::SignedDuration::from_hours(36);
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
