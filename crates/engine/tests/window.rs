//! Window evaluation against hand-worked cases: every rule of SPEC 2.1, in several time zones.
//! `window_model.rs` checks it against a slow model.
//!
//! Expected instants are written in local time with their offset where that makes them easier
//! to check by hand; they are compared as instants.

use jiff::tz::TimeZone;
use patchpilot_engine::{
    units::Duration,
    window::{Evaluation, Window},
};

use patchpilot_engine::testkit::windows::{cron, daily, interval, ts, weekly, window};

/// Evaluates at `at` for `next.len()` intervals (at least one) and checks the whole answer.
#[track_caller]
fn check(window: &Window, at: &str, current: Option<(&str, &str)>, next: &[(&str, &str)]) {
    let expected = Evaluation {
        open: current.is_some(),
        current: current.map(interval),
        next: next.iter().copied().map(interval).collect(),
    };
    let evaluation = window.evaluate(ts(at), next.len().max(1));
    let evaluation = Evaluation {
        next: evaluation.next.into_iter().take(next.len()).collect(),
        ..evaluation
    };
    assert_eq!(evaluation, expected, "at {at}");
    assert_eq!(window.is_open(ts(at)), expected.open, "is_open at {at}");
}

/// The example window: weekend nights in Berlin, Tuesday evenings by cron, a year-end freeze.
fn weekend_nights() -> Window {
    window(
        "Europe/Berlin",
        vec![weekly("Sat,Sun", "01:00", "4h"), cron("0 22 * * Tue", "2h")],
        &[("2026-12-20T00:00:00+01:00", "2027-01-04T00:00:00+01:00")],
    )
}

#[test]
fn weekend_nights_across_both_dst_changes() {
    let window = weekend_nights();
    // Friday before the spring change: Saturday in CET, Sunday starts in CET and lasts four
    // real hours into CEST, Tuesday is in CEST.
    check(
        &window,
        "2026-03-27T12:00:00Z",
        None,
        &[
            ("2026-03-28T01:00:00+01:00", "2026-03-28T05:00:00+01:00"),
            ("2026-03-29T01:00:00+01:00", "2026-03-29T06:00:00+02:00"),
            ("2026-03-31T22:00:00+02:00", "2026-04-01T00:00:00+02:00"),
        ],
    );
    // During the Sunday occurrence, just after the clocks jumped.
    check(
        &window,
        "2026-03-29T03:30:00+02:00",
        Some(("2026-03-29T00:00:00Z", "2026-03-29T04:00:00Z")),
        &[("2026-03-31T20:00:00Z", "2026-03-31T22:00:00Z")],
    );
    // Autumn: Sunday starts in CEST and ends in CET, four real hours later.
    check(
        &window,
        "2026-10-23T12:00:00Z",
        None,
        &[
            ("2026-10-24T01:00:00+02:00", "2026-10-24T05:00:00+02:00"),
            ("2026-10-25T01:00:00+02:00", "2026-10-25T04:00:00+01:00"),
            ("2026-10-27T22:00:00+01:00", "2026-10-28T00:00:00+01:00"),
        ],
    );
}

#[test]
fn the_year_end_freeze_skips_windows() {
    let window = weekend_nights();
    check(
        &window,
        "2026-12-18T12:00:00Z",
        None,
        &[
            ("2026-12-19T01:00:00+01:00", "2026-12-19T05:00:00+01:00"),
            // Sunday 20 December to Sunday 3 January are frozen.
            ("2027-01-05T22:00:00+01:00", "2027-01-06T00:00:00+01:00"),
            ("2027-01-09T01:00:00+01:00", "2027-01-09T05:00:00+01:00"),
        ],
    );
    // Inside the freeze, at a time an occurrence would cover.
    check(
        &window,
        "2026-12-27T02:00:00+01:00",
        None,
        &[("2027-01-05T22:00:00+01:00", "2027-01-06T00:00:00+01:00")],
    );
}

#[test]
fn local_start_times_in_a_gap_move_forward_by_the_gap() {
    let cases = [
        // Europe/Berlin jumps from 02:00 to 03:00 on 29 March 2026.
        (
            "Europe/Berlin",
            "02:30",
            "2026-03-29T00:00:00Z",
            "2026-03-29T03:30:00+02:00",
        ),
        (
            "Europe/Berlin",
            "02:00",
            "2026-03-29T00:00:00Z",
            "2026-03-29T03:00:00+02:00",
        ),
        // New York jumps from 02:00 to 03:00 on 8 March 2026.
        (
            "America/New_York",
            "02:15",
            "2026-03-08T00:00:00-05:00",
            "2026-03-08T03:15:00-04:00",
        ),
        // Lord Howe Island jumps 30 minutes, from 02:00 to 02:30, on 4 October 2026.
        (
            "Australia/Lord_Howe",
            "02:10",
            "2026-10-04T00:00:00+10:30",
            "2026-10-04T02:40:00+11:00",
        ),
        // Santiago jumps at midnight, from 00:00 to 01:00, on 6 September 2026.
        (
            "America/Santiago",
            "00:00",
            "2026-09-05T23:30:00-04:00",
            "2026-09-06T01:00:00-03:00",
        ),
        (
            "America/Santiago",
            "00:30",
            "2026-09-05T23:30:00-04:00",
            "2026-09-06T01:30:00-03:00",
        ),
        // Havana jumps at midnight too, on 8 March 2026.
        (
            "America/Havana",
            "00:30",
            "2026-03-07T23:00:00-05:00",
            "2026-03-08T01:30:00-04:00",
        ),
    ];
    for (zone, start, at, expected) in cases {
        let window = window(zone, vec![daily(start, "1h")], &[]);
        let next = window.next_interval(ts(at)).unwrap();
        assert_eq!(next.start, ts(expected), "{zone} {start}");
        assert_eq!(
            next.end,
            ts(expected) + jiff::SignedDuration::from_hours(1),
            "{zone}"
        );
    }
}

#[test]
fn local_start_times_in_a_fold_start_once_at_the_earlier_instant() {
    let cases = [
        // Berlin repeats 02:00-02:59 on 25 October 2026 (CEST, then CET).
        (
            "Europe/Berlin",
            "02:30",
            "2026-10-25T00:00:00+02:00",
            "2026-10-25T02:30:00+02:00",
        ),
        // New York repeats 01:00-01:59 on 1 November 2026.
        (
            "America/New_York",
            "01:30",
            "2026-11-01T00:00:00-04:00",
            "2026-11-01T01:30:00-04:00",
        ),
        // Lord Howe repeats 01:30-01:59 on 5 April 2026 (+11, then +10:30).
        (
            "Australia/Lord_Howe",
            "01:45",
            "2026-04-05T00:00:00+11:00",
            "2026-04-05T01:45:00+11:00",
        ),
        // Santiago repeats 23:00-23:59 on 4 April 2026 (-03, then -04).
        (
            "America/Santiago",
            "23:30",
            "2026-04-04T22:00:00-03:00",
            "2026-04-04T23:30:00-03:00",
        ),
        // Havana repeats 00:00-00:59 on 1 November 2026 (-04, then -05).
        (
            "America/Havana",
            "00:30",
            "2026-10-31T23:00:00-04:00",
            "2026-11-01T00:30:00-04:00",
        ),
    ];
    for (zone, start, at, expected) in cases {
        // Twenty minutes, so that a second occurrence an hour (or half an hour) later would
        // show as a separate interval.
        let window = window(zone, vec![daily(start, "20m")], &[]);
        let next = window.evaluate(ts(at), 2).next;
        assert_eq!(next[0].start, ts(expected), "{zone} {start}");
        let day_later = ts(expected) + jiff::SignedDuration::from_hours(23);
        assert!(next[1].start > day_later, "{zone} {start}: {next:?}");
    }
}

#[test]
fn cron_minutes_in_gaps_and_folds() {
    // Every quarter hour from 02:00 to 02:45 for 15 minutes: one hour of window.
    let window = window("Europe/Berlin", vec![cron("*/15 2 * * *", "15m")], &[]);
    // On the spring night the four local times lie in the gap and move to 03:00-03:45 CEST.
    check(
        &window,
        "2026-03-29T00:00:00Z",
        None,
        &[
            ("2026-03-29T03:00:00+02:00", "2026-03-29T04:00:00+02:00"),
            ("2026-03-30T02:00:00+02:00", "2026-03-30T03:00:00+02:00"),
        ],
    );
    // On the autumn night they happen twice but open the window once, in CEST.
    check(
        &window,
        "2026-10-25T02:00:00+02:00",
        Some(("2026-10-25T02:00:00+02:00", "2026-10-25T03:00:00+02:00")),
        &[("2026-10-26T02:00:00+01:00", "2026-10-26T03:00:00+01:00")],
    );
    // Local times that land on the same instant after the shift make one occurrence.
    let window = self::window("Europe/Berlin", vec![cron("0,30 2,3 * * *", "30m")], &[]);
    check(
        &window,
        "2026-03-29T00:00:00Z",
        None,
        &[
            ("2026-03-29T03:00:00+02:00", "2026-03-29T04:00:00+02:00"),
            ("2026-03-30T02:00:00+02:00", "2026-03-30T04:00:00+02:00"),
        ],
    );
    // Lord Howe's 30-minute jump: 02:00 and 02:15 move to 02:30 and 02:45.
    let window = self::window(
        "Australia/Lord_Howe",
        vec![cron("0,15,30 2 * * *", "10m")],
        &[],
    );
    check(
        &window,
        "2026-10-04T00:00:00+10:30",
        None,
        &[
            ("2026-10-04T02:30:00+11:00", "2026-10-04T02:40:00+11:00"),
            ("2026-10-04T02:45:00+11:00", "2026-10-04T02:55:00+11:00"),
        ],
    );
}

#[test]
fn every_minute_has_a_hole_in_the_repeated_hour() {
    // Each local minute opens the window once, in CEST on the autumn night: the second pass
    // through 02:00-02:59 (CET) has no local minute of its own.
    let window = window("Europe/Berlin", vec![cron("* * 25 10 *", "1m")], &[]);
    check(
        &window,
        "2026-10-25T01:00:00Z",
        None,
        &[("2026-10-25T03:00:00+01:00", "2026-10-26T00:00:00+01:00")],
    );
    check(
        &window,
        "2026-10-25T00:59:00Z",
        Some(("2026-10-25T00:00:00+02:00", "2026-10-25T03:00:00+02:00")),
        &[("2026-10-25T03:00:00+01:00", "2026-10-26T00:00:00+01:00")],
    );
}

#[test]
fn windows_cross_midnight_and_last_real_hours() {
    let window = window("UTC", vec![weekly("Mon", "23:00", "4h")], &[]);
    // 5 January 2026 is a Monday.
    check(
        &window,
        "2026-01-06T01:00:00Z",
        Some(("2026-01-05T23:00:00Z", "2026-01-06T03:00:00Z")),
        &[("2026-01-12T23:00:00Z", "2026-01-13T03:00:00Z")],
    );
    // 23:00 for four hours on the spring night in Berlin ends at 04:00 CEST, not 03:00.
    let window = self::window("Europe/Berlin", vec![daily("23:00", "4h")], &[]);
    check(
        &window,
        "2026-03-29T03:30:00+02:00",
        Some(("2026-03-28T23:00:00+01:00", "2026-03-29T04:00:00+02:00")),
        &[("2026-03-29T23:00:00+02:00", "2026-03-30T03:00:00+02:00")],
    );
    // And on the autumn night at 02:00 CET, not 03:00.
    check(
        &window,
        "2026-10-25T01:30:00+01:00",
        Some(("2026-10-24T23:00:00+02:00", "2026-10-25T02:00:00+01:00")),
        &[("2026-10-25T23:00:00+01:00", "2026-10-26T03:00:00+01:00")],
    );
}

#[test]
fn overlapping_and_touching_occurrences_merge() {
    // From one recurrence: 08:00, 09:00 and 10:00 for an hour each touch.
    let window = window("UTC", vec![cron("0 8-10 * * *", "1h")], &[]);
    check(
        &window,
        "2026-05-01T09:30:00Z",
        Some(("2026-05-01T08:00:00Z", "2026-05-01T11:00:00Z")),
        &[("2026-05-02T08:00:00Z", "2026-05-02T11:00:00Z")],
    );
    // Overlapping occurrences of one recurrence.
    let window = self::window("UTC", vec![cron("0 8,9 * * *", "90m")], &[]);
    check(
        &window,
        "2026-05-01T07:00:00Z",
        None,
        &[("2026-05-01T08:00:00Z", "2026-05-01T10:30:00Z")],
    );
    // From different recurrences: touching, overlapping and contained.
    let window = self::window(
        "UTC",
        vec![
            daily("01:00", "2h"),
            cron("0 3 * * *", "1h"),
            daily("03:30", "1h"),
            cron("0 2 * * *", "10m"),
        ],
        &[],
    );
    check(
        &window,
        "2026-05-01T00:00:00Z",
        None,
        &[
            ("2026-05-01T01:00:00Z", "2026-05-01T04:30:00Z"),
            ("2026-05-02T01:00:00Z", "2026-05-02T04:30:00Z"),
        ],
    );
}

#[test]
fn a_chain_of_occurrences_reports_its_true_start_and_end() {
    // Every hour of 1 to 20 January: one interval of twenty days, asked about in the middle.
    let window = window("UTC", vec![cron("0 * 1-20 1 *", "1h")], &[]);
    check(
        &window,
        "2026-01-15T12:00:00Z",
        Some(("2026-01-01T00:00:00Z", "2026-01-21T00:00:00Z")),
        &[("2027-01-01T00:00:00Z", "2027-01-21T00:00:00Z")],
    );
    // A chain without end is cut where the search stops: 400 days either side.
    let window = self::window("UTC", vec![daily("00:00", "1d")], &[]);
    check(
        &window,
        "2026-06-01T12:00:00Z",
        Some(("2025-04-28T00:00:00Z", "2027-07-07T00:00:00Z")),
        &[],
    );
}

#[test]
fn exclusions_cut_remove_and_overlap() {
    let recurrences = || vec![daily("08:00", "10h")];
    // One cut splits 08:00-18:00 in two.
    let split = window(
        "UTC",
        recurrences(),
        &[("2026-05-01T12:00:00Z", "2026-05-01T13:00:00Z")],
    );
    check(
        &split,
        "2026-05-01T07:00:00Z",
        None,
        &[
            ("2026-05-01T08:00:00Z", "2026-05-01T12:00:00Z"),
            ("2026-05-01T13:00:00Z", "2026-05-01T18:00:00Z"),
            ("2026-05-02T08:00:00Z", "2026-05-02T18:00:00Z"),
        ],
    );
    // At the exclusion's start the window is closed; at its end it is open again.
    check(
        &split,
        "2026-05-01T12:00:00Z",
        None,
        &[("2026-05-01T13:00:00Z", "2026-05-01T18:00:00Z")],
    );
    check(
        &split,
        "2026-05-01T13:00:00Z",
        Some(("2026-05-01T13:00:00Z", "2026-05-01T18:00:00Z")),
        &[("2026-05-02T08:00:00Z", "2026-05-02T18:00:00Z")],
    );
    // Overlapping and touching exclusions: 10:00-12:00, 11:00-13:00 and 13:00-14:00 leave
    // 08:00-10:00 and 14:00-18:00; one covering a whole day removes it.
    let overlapping = window(
        "UTC",
        recurrences(),
        &[
            ("2026-05-01T11:00:00Z", "2026-05-01T13:00:00Z"),
            ("2026-05-01T10:00:00Z", "2026-05-01T12:00:00Z"),
            ("2026-05-01T13:00:00Z", "2026-05-01T14:00:00Z"),
            ("2026-05-02T00:00:00Z", "2026-05-03T00:00:00Z"),
        ],
    );
    check(
        &overlapping,
        "2026-05-01T09:00:00Z",
        Some(("2026-05-01T08:00:00Z", "2026-05-01T10:00:00Z")),
        &[
            ("2026-05-01T14:00:00Z", "2026-05-01T18:00:00Z"),
            ("2026-05-03T08:00:00Z", "2026-05-03T18:00:00Z"),
        ],
    );
}

#[test]
fn boundaries_are_half_open_and_next_is_strictly_after() {
    let window = window("UTC", vec![daily("01:00", "4h")], &[]);
    // At the start: open, the interval is current and not next.
    check(
        &window,
        "2026-05-01T01:00:00Z",
        Some(("2026-05-01T01:00:00Z", "2026-05-01T05:00:00Z")),
        &[("2026-05-02T01:00:00Z", "2026-05-02T05:00:00Z")],
    );
    // Just before the start: closed, the interval is next.
    check(
        &window,
        "2026-05-01T00:59:59.999999999Z",
        None,
        &[("2026-05-01T01:00:00Z", "2026-05-01T05:00:00Z")],
    );
    // Just before the end: open. At the end: closed.
    check(
        &window,
        "2026-05-01T04:59:59.999999999Z",
        Some(("2026-05-01T01:00:00Z", "2026-05-01T05:00:00Z")),
        &[("2026-05-02T01:00:00Z", "2026-05-02T05:00:00Z")],
    );
    check(
        &window,
        "2026-05-01T05:00:00Z",
        None,
        &[("2026-05-02T01:00:00Z", "2026-05-02T05:00:00Z")],
    );
    assert_eq!(window.evaluate(ts("2026-05-01T02:00:00Z"), 0).next, []);
}

#[test]
fn intervals_are_searched_400_days_ahead() {
    let leap_day = window("UTC", vec![cron("0 0 29 2 *", "1h")], &[]);
    // 29 February 2028 is exactly 400 days after 25 January 2027: found.
    check(
        &leap_day,
        "2027-01-25T00:00:00Z",
        None,
        &[("2028-02-29T00:00:00Z", "2028-02-29T01:00:00Z")],
    );
    // A second earlier it is beyond the horizon.
    let evaluation = leap_day.evaluate(ts("2027-01-24T23:59:59Z"), 1);
    assert_eq!(evaluation.next, []);
    assert_eq!(leap_day.next_boundary(ts("2027-01-24T23:59:59Z")), None);
    // Fewer than asked for when the horizon ends: one New Year within 400 days.
    let new_year = window("UTC", vec![cron("0 0 1 1 *", "1h")], &[]);
    let evaluation = new_year.evaluate(ts("2026-06-01T00:00:00Z"), 5);
    assert_eq!(
        evaluation.next,
        [interval(("2027-01-01T00:00:00Z", "2027-01-01T01:00:00Z"))]
    );
    // A window that never opens answers quickly and with nothing.
    let never = window("UTC", vec![cron("0 0 30 2 *", "1h")], &[]);
    assert_eq!(never.evaluate(ts("2026-06-01T00:00:00Z"), 3).next, []);
}

#[test]
fn may_start_keeps_the_cutoff_and_next_boundary_finds_every_change() {
    let tz = TimeZone::get("UTC").unwrap();
    let cutoff = Duration::from_mins(30);
    let window = Window::new(tz.clone(), vec![daily("01:00", "4h")], vec![], cutoff);
    let may_start = |at: &str| window.may_start(ts(at));
    let boundary = |at: &str| window.next_boundary(ts(at));
    assert!(!may_start("2026-05-01T00:59:00Z"));
    assert!(may_start("2026-05-01T01:00:00Z"));
    assert!(
        may_start("2026-05-01T04:30:00Z"),
        "exactly the cutoff remains"
    );
    assert!(!may_start("2026-05-01T04:30:00.000000001Z"));
    assert!(window.is_open(ts("2026-05-01T04:45:00Z")));
    assert!(!may_start("2026-05-01T05:00:00Z"));
    assert_eq!(
        boundary("2026-05-01T00:00:00Z"),
        Some(ts("2026-05-01T01:00:00Z"))
    );
    assert_eq!(
        boundary("2026-05-01T01:00:00Z"),
        Some(ts("2026-05-01T04:30:00Z"))
    );
    assert_eq!(
        boundary("2026-05-01T04:30:00Z"),
        Some(ts("2026-05-01T05:00:00Z"))
    );
    assert_eq!(
        boundary("2026-05-01T04:45:00Z"),
        Some(ts("2026-05-01T05:00:00Z"))
    );
    assert_eq!(
        boundary("2026-05-01T05:00:00Z"),
        Some(ts("2026-05-02T01:00:00Z"))
    );

    // Without a cutoff any open instant may start; the boundaries are the interval's ends.
    let window = Window::new(
        tz.clone(),
        vec![daily("01:00", "4h")],
        vec![],
        Duration::ZERO,
    );
    assert!(window.may_start(ts("2026-05-01T04:59:59Z")));
    assert_eq!(
        window.next_boundary(ts("2026-05-01T01:00:00Z")),
        Some(ts("2026-05-01T05:00:00Z"))
    );

    // An interval shorter than the cutoff opens but never lets a target start.
    let window = Window::new(tz, vec![daily("01:00", "20m")], vec![], cutoff);
    assert!(window.is_open(ts("2026-05-01T01:00:00Z")));
    assert!(!window.may_start(ts("2026-05-01T01:00:00Z")));
    assert_eq!(
        window.next_boundary(ts("2026-05-01T01:00:00Z")),
        Some(ts("2026-05-01T01:20:00Z"))
    );
    // An exclusion ends the current interval early, and the cutoff counts from there.
    let window = self::window(
        "UTC",
        vec![daily("01:00", "4h")],
        &[("2026-05-01T03:00:00Z", "2026-05-01T04:00:00Z")],
    );
    let window = Window::new(
        window.time_zone().clone(),
        window.recurrences().to_vec(),
        window.exclusions().to_vec(),
        cutoff,
    );
    assert!(!window.may_start(ts("2026-05-01T02:45:00Z")));
    assert_eq!(
        window.next_boundary(ts("2026-05-01T02:00:00Z")),
        Some(ts("2026-05-01T02:30:00Z"))
    );
    assert_eq!(
        window.next_boundary(ts("2026-05-01T03:00:00Z")),
        Some(ts("2026-05-01T04:00:00Z"))
    );
}
