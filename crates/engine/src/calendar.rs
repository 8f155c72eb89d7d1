//! A calendar of planned patching, as iCalendar (RFC 5545): the upcoming openings of each
//! maintenance window with the rollouts planned in them, the freezes, and the emergency
//! rollouts that do not wait for a window; for people to subscribe their calendars to.
//!
//! The input is a [`Schedule`], which the controller builds from the cluster's objects; the
//! output is deterministic given the schedule, the [`Horizon`] and `now`: the same
//! schedule exported twice gives the same events with the same `UID`s, so a calendar client
//! updates its events instead of adding new ones.
//!
//! - An **opening** is a window interval as [`Window::evaluate`] gives it (occurrences merged,
//!   exclusions cut out), the current one included while the window is open. Every rollout
//!   of the window's policies that has not ended is planned in every opening of the horizon:
//!   the operator works on it in each until it ends, and the next export leaves it out. An
//!   opening is `TENTATIVE` while a rollout planned in it still awaits approval at its
//!   start, `CONFIRMED` otherwise, and `TRANSPARENT`: it does not make anyone busy.
//! - A **freeze** is an exclusion of a window: an `OPAQUE` event `Change freeze: <reason>`,
//!   one for the same freeze written in several windows, naming them all.
//! - An **emergency** rollout ignores windows: it is an event of its own at its start (or
//!   at `now` while it has not started), not planned in openings.

pub mod ics;

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp, tz::TimeZone};

use crate::{
    naming::fnv1a,
    policy::Classification,
    rollout::Phase,
    units::Duration,
    window::{HORIZON_DAYS, Interval, Window},
};

/// The calendar's product identifier.
pub const PRODID: &str = "-//patchpilot//patchpilot//EN";
/// The name calendar clients show for the feed (`X-WR-CALNAME`).
pub const NAME: &str = "patchpilot: planned patching";
/// The domain that makes the events' `UID`s unique.
const UID_DOMAIN: &str = "patchpilot.dev";

/// How far ahead the calendar looks: the openings starting within `days` of now, at most
/// `openings` of each window (the current one counts). Freezes are shown when they overlap
/// the same days.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Horizon {
    /// How many days ahead, at most [`Horizon::MAX_DAYS`].
    pub days: u32,
    /// How many openings of each window, at most.
    pub openings: usize,
}

impl Horizon {
    /// The days looked ahead by default.
    pub const DEFAULT_DAYS: u32 = 30;
    /// The openings of one window shown by default.
    pub const DEFAULT_OPENINGS: usize = 50;
    /// The furthest a window is evaluated ahead ([`HORIZON_DAYS`]).
    pub const MAX_DAYS: u32 = HORIZON_DAYS as u32;

    /// `days` ahead (at most [`Horizon::MAX_DAYS`]), with the default number of openings.
    pub fn days(days: u32) -> Self {
        Horizon {
            days: days.min(Self::MAX_DAYS),
            openings: Self::DEFAULT_OPENINGS,
        }
    }

    /// The first instant after the horizon.
    fn end(self, now: Timestamp) -> Timestamp {
        let days = SignedDuration::from_hours(i64::from(self.days.min(Self::MAX_DAYS)) * 24);
        now.saturating_add(days).unwrap_or(Timestamp::MAX)
    }
}

impl Default for Horizon {
    fn default() -> Self {
        Horizon::days(Self::DEFAULT_DAYS)
    }
}

/// What the calendar is made of: each window with what is planned in it.
#[derive(Clone, Debug, Default)]
pub struct Schedule {
    /// The windows, each once.
    pub windows: Vec<WindowPlan>,
}

/// A maintenance window, its freezes and the rollouts planned in it.
#[derive(Clone, Debug)]
pub struct WindowPlan {
    /// The MaintenanceWindow's name.
    pub name: String,
    /// The window as the engine evaluates it.
    pub window: Window,
    /// Its exclusions, as written, with their reasons.
    pub freezes: Vec<Freeze>,
    /// The rollouts, not ended, of the policies that use the window.
    pub rollouts: Vec<Planned>,
}

/// A period during which a window is closed whatever its recurrences say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Freeze {
    /// When.
    pub interval: Interval,
    /// Why, as the exclusion says it.
    pub reason: Option<String>,
}

/// A rollout planned in a window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Planned {
    /// The PatchRollout.
    pub rollout: String,
    /// Its PatchPolicy.
    pub policy: String,
    /// The patch version.
    pub version: String,
    /// The patch's classification.
    pub classification: Classification,
    /// The change-request reference.
    pub change_ref: Option<String>,
    /// The targets still to patch (pending and in progress); `None` before the operator
    /// has counted them.
    pub targets: Option<u32>,
    /// Whether, and when, it is approved.
    pub approval: Approval,
    /// An emergency patch, which ignores the window.
    pub emergency: bool,
    /// Where it stands.
    pub phase: Phase,
    /// When its first target started.
    pub started: Option<Timestamp>,
    /// Its policy is suspended: it starts no new targets.
    pub suspended: bool,
}

/// Whether a rollout is approved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Approval {
    /// Approved.
    Given,
    /// A person must approve it.
    Awaited,
    /// Approved on its own at this instant (automatic approval).
    Automatic(Timestamp),
}

impl Approval {
    /// Whether the rollout still awaits approval at `at`.
    pub fn awaited_at(self, at: Timestamp) -> bool {
        match self {
            Approval::Given => false,
            Approval::Awaited => true,
            Approval::Automatic(approved) => at < approved,
        }
    }
}

/// Whether an event will take place as shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// It will.
    Confirmed,
    /// It depends on an approval not given yet.
    Tentative,
}

impl Status {
    /// The value of `STATUS`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Status::Confirmed => "CONFIRMED",
            Status::Tentative => "TENTATIVE",
        }
    }
}

/// One event of the calendar.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// The same on every export for the same opening, freeze or rollout.
    pub uid: String,
    /// When it begins.
    pub start: Timestamp,
    /// When it ends; `None` for an instant (an emergency rollout).
    pub end: Option<Timestamp>,
    /// One line.
    pub summary: String,
    /// The detail, one fact a line.
    pub description: String,
    /// `patchpilot` and the kind of event: `maintenance-window`, `patching`, `freeze`,
    /// `emergency`.
    pub categories: Vec<&'static str>,
    /// Whether it depends on an approval.
    pub status: Status,
    /// Whether it makes the calendar's owner busy (`TRANSP:OPAQUE`): freezes do.
    pub busy: bool,
}

/// The events of `schedule` within `horizon` of `now`, ordered by start, then `UID`.
pub fn events(schedule: &Schedule, horizon: Horizon, now: Timestamp) -> Vec<Event> {
    let until = horizon.end(now);
    let mut events = Vec::new();
    for plan in &schedule.windows {
        let evaluation = plan.window.evaluate(now, horizon.openings);
        let openings = evaluation
            .current
            .into_iter()
            .chain(evaluation.next)
            .filter(|opening| opening.start < until)
            .take(horizon.openings);
        events.extend(openings.map(|opening| opening_event(plan, opening, now)));
        events.extend(
            plan.rollouts
                .iter()
                .filter(|planned| planned.emergency)
                .map(|planned| emergency_event(plan, planned, now)),
        );
    }
    events.extend(freeze_events(&schedule.windows, now, until));
    events.sort_by(|a, b| a.start.cmp(&b.start).then_with(|| a.uid.cmp(&b.uid)));
    events
}

/// The calendar of `schedule` as iCalendar text, named [`NAME`].
pub fn ics(schedule: &Schedule, horizon: Horizon, now: Timestamp) -> String {
    write(NAME, &events(schedule, horizon, now), now)
}

/// `events` as an iCalendar object named `name`, stamped `now`.
pub fn write(name: &str, events: &[Event], now: Timestamp) -> String {
    let mut out = ics::Writer::new();
    out.raw("BEGIN", "VCALENDAR");
    out.raw("VERSION", "2.0");
    out.raw("PRODID", PRODID);
    out.raw("CALSCALE", "GREGORIAN");
    out.text("X-WR-CALNAME", name);
    out.text(
        "X-WR-CALDESC",
        "Maintenance windows with the patch rollouts planned in them, and change freezes",
    );
    // Subscribed clients may read the feed again after an hour (RFC 7986, and its older
    // spelling).
    out.raw("REFRESH-INTERVAL;VALUE=DURATION", "PT1H");
    out.raw("X-PUBLISHED-TTL", "PT1H");
    for event in events {
        out.raw("BEGIN", "VEVENT");
        out.text("UID", &event.uid);
        out.date_time("DTSTAMP", now);
        out.date_time("DTSTART", event.start);
        if let Some(end) = event.end {
            out.date_time("DTEND", end);
        }
        out.text("SUMMARY", &event.summary);
        out.text("DESCRIPTION", &event.description);
        out.texts("CATEGORIES", &event.categories);
        out.raw("STATUS", event.status.as_str());
        out.raw("TRANSP", if event.busy { "OPAQUE" } else { "TRANSPARENT" });
        out.raw("END", "VEVENT");
    }
    if events.is_empty() {
        // An iCalendar object holds at least one component; with nothing to show, the
        // time zone of the calendar, which no client shows as an event.
        for (name, value) in [
            ("BEGIN", "VTIMEZONE"),
            ("TZID", "UTC"),
            ("BEGIN", "STANDARD"),
            ("DTSTART", "19700101T000000"),
            ("TZOFFSETFROM", "+0000"),
            ("TZOFFSETTO", "+0000"),
            ("TZNAME", "UTC"),
            ("END", "STANDARD"),
            ("END", "VTIMEZONE"),
        ] {
            out.raw(name, value);
        }
    }
    out.raw("END", "VCALENDAR");
    out.finish()
}

/// An opening of a window, with the rollouts planned in it.
fn opening_event(plan: &WindowPlan, opening: Interval, now: Timestamp) -> Event {
    let name = &plan.name;
    let zone = plan.window.time_zone();
    // Approval is judged when the opening starts, or now for the opening under way.
    let judged = opening.start.max(now);
    let planned: Vec<&Planned> = plan.rollouts.iter().filter(|r| !r.emergency).collect();
    let awaiting = planned.iter().any(|r| r.approval.awaited_at(judged));
    let summary = if planned.is_empty() {
        format!("Maintenance window {name}: nothing planned")
    } else {
        let rollouts: Vec<String> = planned
            .iter()
            .map(|r| {
                let approval = if r.approval.awaited_at(judged) {
                    ", approval needed"
                } else {
                    ""
                };
                format!(
                    "{} ({}, {:?}{approval})",
                    r.rollout, r.version, r.classification
                )
            })
            .collect();
        format!("Patching in {name}: {}", rollouts.join("; "))
    };
    let length = Duration::from_secs(opening.end.duration_since(opening.start).as_secs() as u64);
    let mut lines = vec![
        format!("MaintenanceWindow {name} is open for {length}."),
        format!("Local time ({}): {}", zone_name(zone), span(opening, zone)),
        format!("UTC: {}", span(opening, &TimeZone::UTC)),
    ];
    let cutoff = plan.window.cutoff();
    if !cutoff.is_zero() {
        let last = opening
            .end
            .saturating_sub(cutoff.signed())
            .unwrap_or(opening.start)
            .max(opening.start);
        lines.push(format!(
            "No new target starts after {} (cutoff {cutoff}).",
            local(last, zone, "%H:%M %Z")
        ));
    }
    lines.push(String::new());
    if planned.is_empty() {
        lines.push("No rollout is planned: the window opens with nothing to patch.".into());
    } else {
        lines.push("Planned rollouts:".into());
        for planned in &planned {
            lines.extend(rollout_lines(planned, judged));
        }
    }
    let mut categories = vec!["patchpilot", "maintenance-window"];
    if !planned.is_empty() {
        categories.push("patching");
    }
    Event {
        uid: uid(&format!("opening-{}-{name}", ics::date_time(opening.start))),
        start: opening.start,
        end: Some(opening.end),
        summary,
        description: lines.join("\n"),
        categories,
        status: if awaiting {
            Status::Tentative
        } else {
            Status::Confirmed
        },
        busy: false,
    }
}

/// What a planned rollout is, a line a fact.
fn rollout_lines(planned: &Planned, judged: Timestamp) -> Vec<String> {
    let rollout = &planned.rollout;
    let mut lines = vec![
        format!("- {rollout} (PatchPolicy {})", planned.policy),
        format!(
            "  version {}, classification {:?}",
            planned.version, planned.classification
        ),
        match planned.targets {
            Some(targets) => format!("  targets to patch: {targets}"),
            None => "  targets to patch: not counted yet".to_owned(),
        },
        format!(
            "  change reference: {}",
            planned.change_ref.as_deref().unwrap_or("none")
        ),
    ];
    let approve = format!("kubectl patchpilot approve {rollout}");
    lines.push(match planned.approval {
        Approval::Given => "  approval: approved".to_owned(),
        Approval::Awaited => format!("  approval: needed ({approve})"),
        Approval::Automatic(at) if at <= judged => {
            format!("  approval: approved automatically at {}", utc(at))
        }
        Approval::Automatic(at) => format!(
            "  approval: needed: automatic at {}, or sooner with {approve}",
            utc(at)
        ),
    });
    lines.push(format!("  phase: {:?}", planned.phase));
    if planned.suspended {
        lines.push("  its policy is suspended: no new target starts".to_owned());
    }
    lines
}

/// An emergency rollout, which does not wait for a window.
fn emergency_event(plan: &WindowPlan, planned: &Planned, now: Timestamp) -> Event {
    let start = planned.started.unwrap_or(now);
    let mut lines = vec![format!(
        "Emergency patch: it ignores MaintenanceWindow {} and starts at once.",
        plan.name
    )];
    lines.push(match planned.started {
        Some(started) => format!("Started {}.", utc(started)),
        None => "Not started yet.".to_owned(),
    });
    lines.push(String::new());
    lines.extend(rollout_lines(planned, now));
    Event {
        uid: uid(&format!("emergency-{}", planned.rollout)),
        start,
        end: None,
        summary: format!(
            "Emergency patch: {} ({}, {:?})",
            planned.rollout, planned.version, planned.classification
        ),
        description: lines.join("\n"),
        categories: vec!["patchpilot", "emergency"],
        status: if planned.approval.awaited_at(now) {
            Status::Tentative
        } else {
            Status::Confirmed
        },
        busy: false,
    }
}

/// The freezes of every window overlapping `[now, until)`; a freeze written alike (same
/// start, end and reason) in several windows is one event naming them all.
fn freeze_events(windows: &[WindowPlan], now: Timestamp, until: Timestamp) -> Vec<Event> {
    let mut freezes: BTreeMap<(Interval, Option<&str>), Vec<&WindowPlan>> = BTreeMap::new();
    for plan in windows {
        for freeze in &plan.freezes {
            let interval = freeze.interval;
            if interval.end > now && interval.start < until {
                let closed = freezes
                    .entry((interval, freeze.reason.as_deref()))
                    .or_default();
                if !closed.iter().any(|p| p.name == plan.name) {
                    closed.push(plan);
                }
            }
        }
    }
    freezes
        .into_iter()
        .map(|((interval, reason), plans)| {
            let names: Vec<&str> = plans.iter().map(|p| p.name.as_str()).collect();
            let (kind, names) = match names.as_slice() {
                [one] => ("MaintenanceWindow", (*one).to_owned()),
                many => ("MaintenanceWindows", many.join(", ")),
            };
            let mut lines = vec![
                format!("Change freeze: {kind} {names} closed, no target starts."),
                format!("UTC: {}", span(interval, &TimeZone::UTC)),
            ];
            let mut zones: Vec<&TimeZone> = Vec::new();
            for plan in &plans {
                let zone = plan.window.time_zone();
                if !zones.contains(&zone) && zone_name(zone) != "UTC" {
                    zones.push(zone);
                    lines.push(format!(
                        "Local time ({}): {}",
                        zone_name(zone),
                        span(interval, zone)
                    ));
                }
            }
            if let Some(reason) = reason {
                lines.push(format!("Reason: {reason}"));
            }
            Event {
                uid: uid(&format!(
                    "freeze-{}-{}-{:08x}",
                    ics::date_time(interval.start),
                    ics::date_time(interval.end),
                    fnv1a(reason.unwrap_or("").as_bytes()) & 0xffff_ffff
                )),
                start: interval.start,
                end: Some(interval.end),
                summary: match reason {
                    Some(reason) => format!("Change freeze: {reason}"),
                    None => "Change freeze".to_owned(),
                },
                description: lines.join("\n"),
                categories: vec!["patchpilot", "freeze"],
                status: Status::Confirmed,
                busy: true,
            }
        })
        .collect()
}

fn uid(local: &str) -> String {
    format!("{local}@{UID_DOMAIN}")
}

/// The IANA name of a zone, or `UTC`.
fn zone_name(zone: &TimeZone) -> &str {
    zone.iana_name().unwrap_or("UTC")
}

/// `Sat 2026-11-28 01:00 CET until 05:00 CET`, the date repeated when the end falls on
/// another day.
fn span(interval: Interval, zone: &TimeZone) -> String {
    let (start, end) = (
        interval.start.to_zoned(zone.clone()),
        interval.end.to_zoned(zone.clone()),
    );
    let end_format = if start.date() == end.date() {
        "%H:%M %Z"
    } else {
        "%a %Y-%m-%d %H:%M %Z"
    };
    format!(
        "{} until {}",
        start.strftime("%a %Y-%m-%d %H:%M %Z"),
        end.strftime(end_format)
    )
}

fn local(at: Timestamp, zone: &TimeZone, format: &str) -> String {
    at.to_zoned(zone.clone()).strftime(format).to_string()
}

fn utc(at: Timestamp) -> String {
    local(at, &TimeZone::UTC, "%Y-%m-%d %H:%M UTC")
}

#[cfg(test)]
mod tests;
