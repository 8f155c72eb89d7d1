//! `patchpilot window -o text`: the evaluation for people. Instants are shown in the
//! window's own time zone (the one its start times and cron expressions are read in), with
//! the same instant in UTC beside it; a closed window says why (outside its recurrences, or
//! inside an exclusion and its reason), when it opens next and, with a cutoff, the last
//! instant a target may start.

use std::fmt::Write as _;

use jiff::{Timestamp, tz::TimeZone};
use patchpilot_engine::window::{Evaluation, HORIZON_DAYS, Interval, Window};

use crate::api::MaintenanceWindowSpec;

/// The width of the labels (`Time zone: `), where values start.
const LABEL: usize = 11;

/// What the text shows: one window evaluated at one instant.
pub(super) struct Shown<'a> {
    /// The window's name.
    pub name: &'a str,
    /// The window as written (for the time zone's name and the exclusions' reasons).
    pub spec: &'a MaintenanceWindowSpec,
    /// The window as evaluated.
    pub window: &'a Window,
    /// The instant.
    pub at: Timestamp,
    /// The evaluation at `at`.
    pub evaluation: &'a Evaluation,
    /// How many upcoming intervals were asked for.
    pub asked: usize,
}

/// Writes `at` in the window's zone and in UTC: `Sat 2026-11-28 01:00:00 CET (2026-11-28
/// 00:00:00 UTC)`; once, in UTC, when the zone's offset is zero then.
fn both(zone: &TimeZone, at: Timestamp) -> String {
    let utc = at.strftime("%Y-%m-%d %H:%M:%S UTC").to_string();
    let local = at.to_zoned(zone.clone());
    if local.offset().seconds() == 0 {
        format!("{} {utc}", at.strftime("%a"))
    } else {
        format!("{} ({utc})", local.strftime("%a %Y-%m-%d %H:%M:%S %Z"))
    }
}

/// An interval in the window's zone, then in UTC on the next line, under the first: the
/// first line is printed after `indent` columns. One line, in UTC, when the zone's offset is
/// zero at both ends.
fn interval(zone: &TimeZone, interval: &Interval, indent: usize) -> String {
    let local = |t: Timestamp| t.to_zoned(zone.clone()).strftime("%a %Y-%m-%d %H:%M:%S %Z");
    let utc = |t: Timestamp| t.strftime("%Y-%m-%d %H:%M:%S UTC");
    let offset = |t: Timestamp| t.to_zoned(zone.clone()).offset().seconds();
    if offset(interval.start) == 0 && offset(interval.end) == 0 {
        let utc = |t: Timestamp| t.strftime("%a %Y-%m-%d %H:%M:%S UTC");
        return format!("{} to {}", utc(interval.start), utc(interval.end));
    }
    format!(
        "{} to {}\n{:indent$}    {} to     {}",
        local(interval.start),
        local(interval.end),
        "",
        utc(interval.start),
        utc(interval.end),
        indent = indent
    )
}

/// The cutoff's line for `interval` (the current one when `current`, else the next
/// opening): the last instant a target may start in it. `None` without a cutoff.
fn cutoff(
    shown: &Shown<'_>,
    zone: &TimeZone,
    interval: &Interval,
    current: bool,
) -> Option<String> {
    let cutoff = shown.window.cutoff();
    if cutoff.signed().is_zero() {
        return None;
    }
    let last = interval.end.checked_sub(cutoff.signed()).ok()?;
    let which = if current { "" } else { "in that opening, " };
    Some(if last < interval.start {
        format!("{cutoff} before the end: {which}none, the interval is shorter than the cutoff")
    } else if current && last < shown.at {
        format!(
            "{cutoff} before the end: the last start was {}; no new target starts in what \
             remains",
            both(zone, last)
        )
    } else {
        format!(
            "{cutoff} before the end: {which}the last start is {}",
            both(zone, last)
        )
    })
}

/// Why the window is closed at the instant — outside its recurrences, inside exclusions
/// (named by their reasons), or both — and the exclusions it is inside.
fn why_closed(shown: &Shown<'_>) -> (String, Vec<Interval>) {
    let (names, spans): (Vec<String>, Vec<Interval>) = shown
        .spec
        .exclusions
        .iter()
        .enumerate()
        .filter(|(_, e)| e.start.0 <= shown.at && shown.at < e.end.0)
        .map(|(i, e)| {
            let name = match e.reason.as_deref() {
                Some(reason) if !reason.trim().is_empty() => format!("{reason:?}"),
                _ => format!("spec.exclusions[{i}] (no reason given)"),
            };
            let span = Interval {
                start: e.start.0,
                end: e.end.0,
            };
            (name, span)
        })
        .unzip();
    let inside = match names.as_slice() {
        [] => String::new(),
        [one] => format!("inside the exclusion {one}"),
        many => format!("inside the exclusions {}", many.join(" and ")),
    };
    let why = match (names.is_empty(), shown.window.in_occurrence(shown.at)) {
        (true, _) => "no: outside its recurrences".to_owned(),
        (false, true) => format!("no: {inside}, which closes a recurrence open now"),
        (false, false) => format!("no: {inside}, and outside its recurrences"),
    };
    (why, spans)
}

/// The text of `patchpilot window -o text`, ending with a newline.
pub(super) fn render(shown: &Shown<'_>) -> String {
    let zone = shown.window.time_zone();
    let evaluation = shown.evaluation;
    let mut out = String::new();
    let mut line = |label: &str, text: &str| {
        let _ = writeln!(out, "{:<LABEL$}{text}", format!("{label}:"));
    };
    line("Name", shown.name);
    line("Time zone", &shown.spec.time_zone);
    line("At", &both(zone, shown.at));
    match &evaluation.current {
        Some(current) => {
            line("Open", "yes");
            line("Current", &interval(zone, current, LABEL));
            if let Some(text) = cutoff(shown, zone, current, true) {
                line("Cutoff", &text);
            }
        }
        None => {
            let (why, exclusions) = why_closed(shown);
            line("Open", &why);
            for exclusion in &exclusions {
                line("Exclusion", &interval(zone, exclusion, LABEL));
            }
            // The next interval, even when none were asked for.
            let next = evaluation
                .next
                .first()
                .copied()
                .or_else(|| shown.window.next_interval(shown.at));
            match next {
                Some(next) => {
                    line("Opens", &both(zone, next.start));
                    if let Some(text) = cutoff(shown, zone, &next, false) {
                        line("Cutoff", &text);
                    }
                }
                None => line("Opens", &format!("not within {HORIZON_DAYS} days")),
            }
        }
    }
    if shown.asked > 0 {
        let found = evaluation.next.len();
        let _ = writeln!(out, "Next {}:", shown.asked);
        for (i, next) in evaluation.next.iter().enumerate() {
            let _ = writeln!(out, "  {:>2}. {}", i + 1, interval(zone, next, 6));
        }
        if found < shown.asked {
            let _ = writeln!(out, "  {}", fewer(found, shown.asked));
        }
    }
    out
}

/// The sentence saying that the horizon holds fewer intervals than asked for.
pub(super) fn fewer(found: usize, asked: usize) -> String {
    let found = match found {
        0 => "no window interval starts".to_owned(),
        1 => "only 1 window interval starts".to_owned(),
        n => format!("only {n} window intervals start"),
    };
    format!("{found} within {HORIZON_DAYS} days of the instant; {asked} were asked for")
}

#[cfg(test)]
mod tests {
    use jiff::Timestamp;
    use serde_json::json;

    use super::{Shown, render};
    use crate::api::MaintenanceWindowSpec;

    /// The text for a window of `spec` at `at`, with `next` intervals asked for.
    fn text(spec: serde_json::Value, at: &str, next: usize) -> String {
        let spec: MaintenanceWindowSpec = serde_json::from_value(spec).unwrap();
        let window = spec.to_engine().unwrap();
        let at: Timestamp = at.parse().unwrap();
        let evaluation = window.evaluate(at, next);
        render(&Shown {
            name: "w",
            spec: &spec,
            window: &window,
            at,
            evaluation: &evaluation,
            asked: next,
        })
    }

    fn nightly(exclusions: serde_json::Value) -> serde_json::Value {
        json!({
            "timeZone": "UTC",
            "recurrences": [{"start": "01:00", "duration": "4h"}],
            "exclusions": exclusions,
        })
    }

    #[test]
    fn a_window_in_utc_shows_each_instant_once() {
        let out = text(nightly(json!([])), "2026-05-01T02:00:00Z", 1);
        assert_eq!(
            out,
            "Name:      w
Time zone: UTC
At:        Fri 2026-05-01 02:00:00 UTC
Open:      yes
Current:   Fri 2026-05-01 01:00:00 UTC to Fri 2026-05-01 05:00:00 UTC
Next 1:
   1. Sat 2026-05-02 01:00:00 UTC to Sat 2026-05-02 05:00:00 UTC
"
        );
    }

    #[test]
    fn a_closed_window_names_every_exclusion_it_is_inside() {
        let exclusions = json!([
            {"start": "2026-05-01T00:00:00Z", "end": "2026-05-03T00:00:00Z",
             "reason": "Release weekend"},
            {"start": "2026-05-01T12:00:00Z", "end": "2026-05-02T00:00:00Z"},
        ]);
        let out = text(nightly(exclusions.clone()), "2026-05-01T13:00:00Z", 0);
        assert!(
            out.contains(
                "Open:      no: inside the exclusions \"Release weekend\" and \
                 spec.exclusions[1] (no reason given), and outside its recurrences\n\
                 Exclusion: Fri 2026-05-01 00:00:00 UTC to Sun 2026-05-03 00:00:00 UTC\n\
                 Exclusion: Fri 2026-05-01 12:00:00 UTC to Sat 2026-05-02 00:00:00 UTC\n\
                 Opens:     Sun 2026-05-03 01:00:00 UTC\n"
            ),
            "{out}"
        );
        // Nothing asked for, nothing listed.
        assert!(!out.contains("Next"), "{out}");
        let out = text(nightly(exclusions), "2026-05-02T02:00:00Z", 0);
        assert!(
            out.contains(
                "Open:      no: inside the exclusion \"Release weekend\", which closes a \
                 recurrence open now\n"
            ),
            "{out}"
        );
    }

    #[test]
    fn the_cutoff_gives_the_last_start() {
        let mut spec = nightly(json!([]));
        spec["cutoff"] = json!("1h");
        let open = text(spec.clone(), "2026-05-01T02:00:00Z", 0);
        assert!(
            open.contains(
                "Cutoff:    1h before the end: the last start is Fri 2026-05-01 04:00:00 UTC\n"
            ),
            "{open}"
        );
        let late = text(spec.clone(), "2026-05-01T04:30:00Z", 0);
        assert!(
            late.contains(
                "the last start was Fri 2026-05-01 04:00:00 UTC; no new target starts in what \
                 remains"
            ),
            "{late}"
        );
        let closed = text(spec.clone(), "2026-05-01T12:00:00Z", 0);
        assert!(
            closed.contains("in that opening, the last start is Sat 2026-05-02 04:00:00 UTC"),
            "{closed}"
        );
        spec["cutoff"] = json!("5h");
        let short = text(spec, "2026-05-01T02:00:00Z", 0);
        assert!(
            short.contains("5h before the end: none, the interval is shorter than the cutoff\n"),
            "{short}"
        );
    }

    #[test]
    fn fewer_intervals_than_asked_are_said_under_the_list() {
        let spec = json!({"recurrences": [{"cron": "@yearly", "duration": "2h"}]});
        let out = text(spec.clone(), "2026-06-01T00:00:00Z", 3);
        assert!(
            out.ends_with(
                "   1. Fri 2027-01-01 00:00:00 UTC to Fri 2027-01-01 02:00:00 UTC\n  only 1 \
                 window interval starts within 400 days of the instant; 3 were asked for\n"
            ),
            "{out}"
        );
        let never = json!({"recurrences": [{"cron": "0 0 30 2 *", "duration": "2h"}]});
        let out = text(never, "2026-06-01T00:00:00Z", 2);
        assert!(out.contains("Opens:     not within 400 days\n"), "{out}");
        assert!(
            out.ends_with(
                "  no window interval starts within 400 days of the instant; 2 were asked for\n"
            ),
            "{out}"
        );
    }
}
