//! The calendar read back as a client reads it: lines unfolded, properties split, TEXT
//! unescaped.

use super::*;
use crate::window::{Recurrence, Schedule as Recurs};

fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

fn interval(start: &str, end: &str) -> Interval {
    Interval::new(at(start), at(end)).unwrap()
}

/// Every day at `start` local time, for `hours`.
fn daily(start: &str, hours: u64) -> Recurrence {
    Recurrence {
        schedule: Recurs::Weekly {
            days: None,
            start: start.parse().unwrap(),
        },
        duration: Duration::from_hours(hours),
    }
}

fn plan(name: &str, zone: &str, freezes: Vec<Freeze>, rollouts: Vec<Planned>) -> WindowPlan {
    WindowPlan {
        name: name.to_owned(),
        window: Window::new(
            TimeZone::get(zone).unwrap(),
            vec![daily("01:00", 4)],
            freezes.iter().map(|f| f.interval).collect(),
            Duration::from_mins(30),
        ),
        freezes,
        rollouts,
    }
}

fn planned(rollout: &str, approval: Approval) -> Planned {
    Planned {
        rollout: rollout.to_owned(),
        policy: "workers-os".to_owned(),
        version: "2026-11-security".to_owned(),
        classification: Classification::Critical,
        change_ref: Some("CHG-1234".to_owned()),
        targets: Some(12),
        approval,
        emergency: false,
        phase: Phase::AwaitingApproval,
        started: None,
        suspended: false,
    }
}

fn year_end() -> Freeze {
    Freeze {
        interval: interval("2026-12-20T00:00:00+01:00", "2026-12-23T00:00:00+01:00"),
        reason: Some("Year-end, no changes; ask the CAB\\ops".to_owned()),
    }
}

/// A component read back: its properties in order, values unescaped.
#[derive(Debug)]
struct Component {
    properties: Vec<(String, String)>,
}

impl Component {
    fn get(&self, name: &str) -> &str {
        self.properties
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no {name} in {self:?}"))
    }

    fn has(&self, name: &str) -> bool {
        self.properties.iter().any(|(n, _)| n == name)
    }
}

/// The calendar's own properties and its events, checking the frame on the way.
fn parse(text: &str) -> (Component, Vec<Component>) {
    assert!(text.ends_with("\r\n"), "CRLF at the end");
    for physical in text.split("\r\n") {
        assert!(!physical.contains('\n') && !physical.contains('\r'));
        assert!(physical.len() <= ics::LINE_OCTETS, "{physical:?}");
    }
    let lines = ics::unfold(text);
    assert_eq!(lines.first().map(String::as_str), Some("BEGIN:VCALENDAR"));
    assert_eq!(lines.last().map(String::as_str), Some("END:VCALENDAR"));
    let mut calendar = Component { properties: vec![] };
    let mut events = Vec::new();
    let mut current: Option<Component> = None;
    for line in &lines[1..lines.len() - 1] {
        let (name, value) = line.split_once(':').unwrap();
        match (name, value, current.as_mut()) {
            ("BEGIN", "VEVENT", None) => current = Some(Component { properties: vec![] }),
            ("END", "VEVENT", Some(_)) => events.extend(current.take()),
            (_, _, Some(event)) => event
                .properties
                .push((name.to_owned(), ics::unescape(value))),
            (_, _, None) => calendar
                .properties
                .push((name.to_owned(), ics::unescape(value))),
        }
    }
    assert!(current.is_none(), "an unterminated VEVENT");
    (calendar, events)
}

fn export(schedule: &Schedule, now: &str) -> (Component, Vec<Component>) {
    parse(&ics(schedule, Horizon::default(), at(now)))
}

#[test]
fn the_calendar_says_what_it_is() {
    let schedule = Schedule {
        windows: vec![plan("nights", "UTC", vec![], vec![])],
    };
    let text = ics(&schedule, Horizon::default(), at("2026-11-27T12:00:00Z"));
    assert!(text.starts_with(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//patchpilot//patchpilot//EN\r\nCALSCALE:GREGORIAN\r\n"
    ));
    let (calendar, events) = parse(&text);
    assert_eq!(calendar.get("X-WR-CALNAME"), NAME);
    // Thirty days ahead: thirty openings of a daily window.
    assert_eq!(events.len(), 30);
    for event in &events {
        for required in ["UID", "DTSTAMP", "DTSTART", "DTEND", "SUMMARY", "STATUS"] {
            assert!(event.has(required), "{required}: {event:?}");
        }
        assert_eq!(event.get("DTSTAMP"), "20261127T120000Z");
    }
    assert_eq!(
        text,
        ics(&schedule, Horizon::default(), at("2026-11-27T12:00:00Z")),
        "the same input gives the same bytes"
    );
}

#[test]
fn an_opening_with_nothing_planned_is_shown_as_such() {
    let schedule = Schedule {
        windows: vec![plan("weekend-nights", "Europe/Berlin", vec![], vec![])],
    };
    let (_, events) = export(&schedule, "2026-11-27T12:00:00Z");
    let first = &events[0];
    assert_eq!(
        first.get("SUMMARY"),
        "Maintenance window weekend-nights: nothing planned"
    );
    // 01:00 in Berlin is midnight UTC in winter.
    assert_eq!(first.get("DTSTART"), "20261128T000000Z");
    assert_eq!(first.get("DTEND"), "20261128T040000Z");
    assert_eq!(first.get("STATUS"), "CONFIRMED");
    assert_eq!(first.get("TRANSP"), "TRANSPARENT");
    assert_eq!(first.get("CATEGORIES"), "patchpilot,maintenance-window");
    let description = first.get("DESCRIPTION");
    for expected in [
        "MaintenanceWindow weekend-nights is open for 4h.",
        "Local time (Europe/Berlin): Sat 2026-11-28 01:00 CET until 05:00 CET",
        "UTC: Sat 2026-11-28 00:00 UTC until 04:00 UTC",
        "No new target starts after 04:30 CET (cutoff 30m).",
        "No rollout is planned",
    ] {
        assert!(
            description.contains(expected),
            "{expected:?} in {description}"
        );
    }
}

#[test]
fn planned_rollouts_are_named_and_tentative_until_approved() {
    // Approved automatically at 03:00 UTC on the 29th: the openings of the 28th and 29th
    // (which starts at midnight) still wait for it, the 30th's does not.
    let automatic = Approval::Automatic(at("2026-11-29T03:00:00Z"));
    let schedule = Schedule {
        windows: vec![plan(
            "nights",
            "UTC",
            vec![],
            vec![planned("workers-os-1a2b3c4d", automatic)],
        )],
    };
    let (_, events) = export(&schedule, "2026-11-27T12:00:00Z");
    assert_eq!(
        events[0].get("SUMMARY"),
        "Patching in nights: workers-os-1a2b3c4d (2026-11-security, Critical, approval needed)"
    );
    assert_eq!(
        events[0].get("CATEGORIES"),
        "patchpilot,maintenance-window,patching"
    );
    let statuses: Vec<&str> = events.iter().take(3).map(|e| e.get("STATUS")).collect();
    assert_eq!(statuses, ["TENTATIVE", "TENTATIVE", "CONFIRMED"]);
    assert_eq!(
        events[2].get("SUMMARY"),
        "Patching in nights: workers-os-1a2b3c4d (2026-11-security, Critical)"
    );
    let description = events[0].get("DESCRIPTION");
    for expected in [
        "Planned rollouts:\n- workers-os-1a2b3c4d (PatchPolicy workers-os)",
        "  version 2026-11-security, classification Critical",
        "  targets to patch: 12",
        "  change reference: CHG-1234",
        "  approval: needed: automatic at 2026-11-29 03:00 UTC, or sooner with kubectl patchpilot approve workers-os-1a2b3c4d",
    ] {
        assert!(
            description.contains(expected),
            "{expected:?} in {description}"
        );
    }
    assert!(
        events[2]
            .get("DESCRIPTION")
            .contains("approval: approved automatically at 2026-11-29 03:00 UTC")
    );

    let manual = Schedule {
        windows: vec![plan(
            "nights",
            "UTC",
            vec![],
            vec![
                planned("a-1", Approval::Awaited),
                planned("b-2", Approval::Given),
            ],
        )],
    };
    let (_, events) = export(&manual, "2026-11-27T12:00:00Z");
    assert!(events.iter().all(|e| e.get("STATUS") == "TENTATIVE"));
    assert_eq!(
        events[0].get("SUMMARY"),
        "Patching in nights: a-1 (2026-11-security, Critical, approval needed); b-2 (2026-11-security, Critical)"
    );
}

#[test]
fn uids_stay_the_same_from_one_export_to_the_next() {
    let schedule = Schedule {
        windows: vec![plan("nights", "UTC", vec![year_end()], vec![])],
    };
    let uids = |now: &str| -> Vec<String> {
        let (_, events) = export(&schedule, now);
        events.iter().map(|e| e.get("UID").to_owned()).collect()
    };
    let before = uids("2026-11-27T12:00:00Z");
    // A day later, while an opening is under way: it is still there, with its UID.
    let later = uids("2026-11-28T02:00:00Z");
    assert_eq!(before[0], "opening-20261128T010000Z-nights@patchpilot.dev");
    assert_eq!(later[0], before[0]);
    assert_eq!(before[1..], later[1..before.len()]);
    let distinct: std::collections::BTreeSet<&String> = before.iter().collect();
    assert_eq!(distinct.len(), before.len(), "UIDs are unique");
    // Another window opening at the same instants has UIDs of its own.
    let other = Schedule {
        windows: vec![plan("days", "UTC", vec![], vec![])],
    };
    let (_, events) = export(&other, "2026-11-27T12:00:00Z");
    assert_eq!(
        events[0].get("UID"),
        "opening-20261128T010000Z-days@patchpilot.dev"
    );
}

#[test]
fn freezes_are_busy_events_and_close_the_openings() {
    let schedule = Schedule {
        windows: vec![
            plan("nights", "Europe/Berlin", vec![year_end()], vec![]),
            plan("weekends", "America/New_York", vec![year_end()], vec![]),
        ],
    };
    let (_, events) = export(&schedule, "2026-12-01T12:00:00Z");
    let freezes: Vec<&Component> = events
        .iter()
        .filter(|e| e.get("CATEGORIES") == "patchpilot,freeze")
        .collect();
    assert_eq!(
        freezes.len(),
        1,
        "one event for the same freeze in two windows"
    );
    let freeze = freezes[0];
    assert_eq!(
        freeze.get("SUMMARY"),
        "Change freeze: Year-end, no changes; ask the CAB\\ops"
    );
    assert_eq!(freeze.get("TRANSP"), "OPAQUE");
    assert_eq!(freeze.get("DTSTART"), "20261219T230000Z");
    assert_eq!(freeze.get("DTEND"), "20261222T230000Z");
    let description = freeze.get("DESCRIPTION");
    for expected in [
        "MaintenanceWindows nights, weekends closed",
        "Local time (Europe/Berlin): Sun 2026-12-20 00:00 CET until Wed 2026-12-23 00:00 CET",
        "Local time (America/New_York): Sat 2026-12-19 18:00 EST",
        "Reason: Year-end, no changes; ask the CAB\\ops",
    ] {
        assert!(
            description.contains(expected),
            "{expected:?} in {description}"
        );
    }
    // No opening of either window falls in the freeze.
    let frozen = year_end().interval;
    for event in events
        .iter()
        .filter(|e| e.get("CATEGORIES") != "patchpilot,freeze")
    {
        let start = ics_instant(event.get("DTSTART"));
        assert!(!frozen.contains(start), "{event:?}");
    }
    // A freeze over before now is not shown.
    let (_, after) = export(&schedule, "2026-12-24T12:00:00Z");
    assert!(
        after
            .iter()
            .all(|e| !e.get("SUMMARY").starts_with("Change freeze"))
    );
}

fn ics_instant(text: &str) -> Timestamp {
    jiff::fmt::strtime::parse("%Y%m%dT%H%M%SZ", text)
        .and_then(|t| t.to_datetime())
        .and_then(|t| t.to_zoned(TimeZone::UTC))
        .unwrap()
        .timestamp()
}

#[test]
fn a_freeze_without_a_reason_is_a_change_freeze() {
    let freeze = Freeze {
        interval: interval("2026-11-30T00:00:00Z", "2026-11-30T12:00:00Z"),
        reason: None,
    };
    let schedule = Schedule {
        windows: vec![plan("nights", "UTC", vec![freeze], vec![])],
    };
    let (_, events) = export(&schedule, "2026-11-27T12:00:00Z");
    let freeze = events
        .iter()
        .find(|e| e.get("CATEGORIES") == "patchpilot,freeze")
        .unwrap();
    assert_eq!(freeze.get("SUMMARY"), "Change freeze");
    assert!(!freeze.get("DESCRIPTION").contains("Reason"));
}

#[test]
fn the_horizon_bounds_the_openings() {
    let schedule = Schedule {
        windows: vec![plan("nights", "UTC", vec![], vec![])],
    };
    let now = at("2026-11-27T12:00:00Z");
    assert_eq!(events(&schedule, Horizon::days(7), now).len(), 7);
    let few = Horizon {
        days: 30,
        openings: 3,
    };
    assert_eq!(events(&schedule, few, now).len(), 3);
    // Beyond the furthest a window is evaluated, the horizon stops there.
    assert_eq!(Horizon::days(10_000).days, Horizon::MAX_DAYS);
    let far = Horizon {
        days: 10_000,
        openings: 1_000,
    };
    assert_eq!(events(&schedule, far, now).len(), 400);
}

#[test]
fn an_emergency_rollout_is_an_event_of_its_own() {
    let mut emergency = planned("zero-day-9f8e7d6c", Approval::Given);
    emergency.emergency = true;
    emergency.phase = Phase::Progressing;
    emergency.started = Some(at("2026-11-27T10:30:00Z"));
    let schedule = Schedule {
        windows: vec![plan("nights", "UTC", vec![], vec![emergency])],
    };
    let (_, events) = export(&schedule, "2026-11-27T12:00:00Z");
    let first = &events[0];
    assert_eq!(
        first.get("SUMMARY"),
        "Emergency patch: zero-day-9f8e7d6c (2026-11-security, Critical)"
    );
    assert_eq!(
        first.get("UID"),
        "emergency-zero-day-9f8e7d6c@patchpilot.dev"
    );
    assert_eq!(first.get("DTSTART"), "20261127T103000Z");
    assert!(!first.has("DTEND"));
    assert_eq!(first.get("CATEGORIES"), "patchpilot,emergency");
    assert!(
        first
            .get("DESCRIPTION")
            .contains("ignores MaintenanceWindow nights")
    );
    // It is not planned in the openings.
    assert_eq!(
        events[1].get("SUMMARY"),
        "Maintenance window nights: nothing planned"
    );
}

#[test]
fn long_values_with_many_byte_characters_fold_and_read_back() {
    let freeze = Freeze {
        interval: interval("2026-11-30T00:00:00Z", "2026-12-01T00:00:00Z"),
        reason: Some(
            "Jahresende – Änderungssperre für alle Produktionssysteme 🔒, bitte beachten".repeat(3),
        ),
    };
    let expected = format!("Change freeze: {}", freeze.reason.clone().unwrap());
    let schedule = Schedule {
        windows: vec![plan("nights", "Europe/Berlin", vec![freeze], vec![])],
    };
    let text = ics(&schedule, Horizon::default(), at("2026-11-27T12:00:00Z"));
    // `parse` checks every physical line against the 75 octets.
    let (_, events) = parse(&text);
    let freeze = events
        .iter()
        .find(|e| e.get("CATEGORIES") == "patchpilot,freeze")
        .unwrap();
    assert_eq!(freeze.get("SUMMARY"), expected);
    assert!(text.contains("\r\n "), "long lines are folded");
}

#[test]
fn an_empty_schedule_is_still_a_calendar() {
    let text = ics(
        &Schedule::default(),
        Horizon::default(),
        at("2026-11-27T12:00:00Z"),
    );
    let (calendar, events) = parse(&text);
    assert!(events.is_empty());
    assert_eq!(calendar.get("VERSION"), "2.0");
    assert!(text.contains("BEGIN:VTIMEZONE\r\nTZID:UTC\r\n"));
}
