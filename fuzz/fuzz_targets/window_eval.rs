//! A MaintenanceWindow built field by field (time zone, weekly or cron recurrences,
//! exclusions, cutoff) goes through the spec-to-engine conversion; a window that converts is
//! evaluated at an instant between 1900 and 2300, and the answers must agree with each other:
//! open iff there is a current interval that contains the instant, next intervals start after
//! it in order without touching, `is_open`/`may_start`/`next_boundary` agree with `evaluate`,
//! and no instant inside an exclusion is open.

#![no_main]

use arbitrary::Arbitrary;
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use libfuzzer_sys::fuzz_target;
use patchpilot_api::{Exclusion, MaintenanceWindowSpec, Recurrence};
use patchpilot_engine::{
    units::Duration,
    window::{WallClock, Weekday},
};
use patchpilot_fuzz::instant;

/// Zones with the transitions that break naive arithmetic: DST of an hour, half an hour
/// (Lord Howe) and two hours (Troll), negative DST (Dublin, Casablanca), a skipped day
/// (Apia), offsets of :30 and :45, and zones without DST.
const ZONES: [&str; 14] = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Australia/Lord_Howe",
    "Antarctica/Troll",
    "Europe/Dublin",
    "Africa/Casablanca",
    "Pacific/Apia",
    "Pacific/Chatham",
    "Asia/Kolkata",
    "America/St_Johns",
    "America/Sao_Paulo",
    "Etc/GMT+12",
    "Asia/Kathmandu",
];

const DAYS: [Weekday; 7] = [
    Weekday::Mon,
    Weekday::Tue,
    Weekday::Wed,
    Weekday::Thu,
    Weekday::Fri,
    Weekday::Sat,
    Weekday::Sun,
];

#[derive(Arbitrary, Debug)]
enum Zone {
    Known(u8),
    Named(String),
}

#[derive(Arbitrary, Debug)]
enum Schedule {
    Weekly {
        days: Option<u8>,
        hour: u8,
        minute: u8,
    },
    Cron([Vec<CronItem>; 5]),
    CronText(String),
}

/// One item of a cron field's comma-separated list.
#[derive(Arbitrary, Debug)]
enum CronItem {
    Any,
    Value(u8),
    Range(u8, u8),
    Step(Option<(u8, u8)>, u8),
    Name(u8),
}

#[derive(Arbitrary, Debug)]
struct Rec {
    schedule: Schedule,
    /// Minutes, or milliseconds when odd: most windows last minutes to hours.
    duration: u32,
}

#[derive(Arbitrary, Debug)]
struct Input {
    zone: Zone,
    recurrences: Vec<Rec>,
    /// Start (seconds from `at`) and length (seconds) of each exclusion.
    exclusions: Vec<(i32, u32)>,
    cutoff_minutes: Option<u16>,
    at_seconds: i64,
    at_nanos: u32,
    next: u8,
}

const NAMES: [&str; 19] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC", "SUN",
    "MON", "TUE", "WED", "THU", "FRI", "SAT",
];

fn cron_text(fields: &[Vec<CronItem>; 5]) -> String {
    let field = |items: &Vec<CronItem>| {
        if items.is_empty() {
            return "*".to_owned();
        }
        let items: Vec<String> = items
            .iter()
            .take(4)
            .map(|item| match item {
                CronItem::Any => "*".to_owned(),
                CronItem::Value(v) => v.to_string(),
                CronItem::Range(a, b) => format!("{a}-{b}"),
                CronItem::Step(None, s) => format!("*/{s}"),
                CronItem::Step(Some((a, b)), s) => format!("{a}-{b}/{s}"),
                CronItem::Name(n) => NAMES[usize::from(*n) % NAMES.len()].to_owned(),
            })
            .collect();
        items.join(",")
    };
    fields.iter().map(field).collect::<Vec<_>>().join(" ")
}

fn spec(input: &Input, at: Timestamp) -> MaintenanceWindowSpec {
    let time_zone = match &input.zone {
        Zone::Known(i) => ZONES[usize::from(*i) % ZONES.len()].to_owned(),
        Zone::Named(name) => name.clone(),
    };
    let recurrences = input
        .recurrences
        .iter()
        .take(4)
        .map(|rec| {
            let duration = if rec.duration % 2 == 0 {
                Duration::from_mins(u64::from(rec.duration / 2))
            } else {
                Duration::from_millis(u64::from(rec.duration / 2))
            };
            let (days, start, cron) = match &rec.schedule {
                Schedule::Weekly { days, hour, minute } => (
                    days.map(|mask| {
                        (0..7)
                            .filter(|bit| mask & (1 << bit) != 0)
                            .map(|bit| DAYS[bit])
                            .collect()
                    }),
                    Some(WallClock::new(hour % 24, minute % 60).expect("in range")),
                    None,
                ),
                Schedule::Cron(fields) => (None, None, Some(cron_text(fields))),
                Schedule::CronText(text) => (None, None, Some(text.clone())),
            };
            Recurrence {
                days,
                start,
                cron,
                duration,
            }
        })
        .collect();
    let exclusions = input
        .exclusions
        .iter()
        .take(4)
        .map(|&(from, length)| {
            let start = at + SignedDuration::from_secs(i64::from(from));
            Exclusion {
                start: Time(start),
                end: Time(start + SignedDuration::from_secs(i64::from(length))),
                reason: None,
            }
        })
        .collect();
    MaintenanceWindowSpec {
        time_zone,
        recurrences,
        exclusions,
        cutoff: input
            .cutoff_minutes
            .map(|m| Duration::from_mins(u64::from(m))),
    }
}

fuzz_target!(|input: Input| {
    let at = instant(input.at_seconds, input.at_nanos);
    let spec = spec(&input, at);
    let Some(window) = patchpilot_fuzz::converted(spec.to_engine(), spec.to_engine_reporting_all())
    else {
        return;
    };

    let next = usize::from(input.next % 4);
    let evaluation = window.evaluate(at, next);
    assert_eq!(evaluation.open, evaluation.current.is_some());
    if let Some(current) = evaluation.current {
        assert!(
            current.start <= at && at < current.end,
            "{current:?} holds {at}"
        );
    }
    assert!(evaluation.next.len() <= next);
    let mut after = evaluation.current.map_or(at, |c| c.end);
    for interval in &evaluation.next {
        assert!(interval.start > at, "{interval:?} starts after {at}");
        assert!(interval.start < interval.end, "{interval:?} is not empty");
        // Window intervals are maximal: the next one starts strictly after the previous ends.
        assert!(interval.start > after, "{interval:?} starts after {after}");
        after = interval.end;
    }
    for exclusion in window.exclusions() {
        if exclusion.contains(at) {
            assert!(!evaluation.open, "open inside the exclusion {exclusion:?}");
        }
    }

    assert_eq!(
        window.is_open(at),
        evaluation.open,
        "is_open agrees with evaluate"
    );
    let may_start = window.may_start(at);
    assert!(!may_start || evaluation.open, "may start while closed");
    if let Some(boundary) = window.next_boundary(at) {
        assert!(boundary > at, "the next boundary {boundary} is after {at}");
    }
    if next > 0 {
        assert_eq!(window.next_interval(at), evaluation.next.first().copied());
    }
});
