//! MaintenanceWindow: when patches may be applied. SPEC 2.1.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use patchpilot_engine::{
    InvalidSpec,
    units::Duration,
    window::{self as engine, WallClock, Weekday},
};
use serde::{Deserialize, Serialize};

use super::{
    common::{Interval, conditions_schema},
    cron,
};

/// Recurring periods in a time zone during which patches may start, minus freezes.
// Each printer column repeats `type_ = …`, which clippy takes for a duplicated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "patchpilot.dev",
    version = "v1alpha1",
    kind = "MaintenanceWindow",
    status = "MaintenanceWindowStatus",
    shortname = "mw",
    shortname = "mwin",
    category = "patchpilot",
    doc = "MaintenanceWindow says when patches may be applied: recurring openings in a time zone, minus exclusions (freezes).",
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Status",
        type_ = "string",
        priority = 1,
        json_path = ".status.conditions[?(@.type==\"Ready\")].message"
    ),
    printcolumn(name = "Time Zone", type_ = "string", json_path = ".spec.timeZone"),
    printcolumn(name = "Open", type_ = "boolean", json_path = ".status.open"),
    printcolumn(
        name = "Next Start",
        type_ = "string",
        json_path = ".status.nextWindow.start"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct MaintenanceWindowSpec {
    /// IANA time zone in which `start` and `cron` are read, like `Europe/Berlin`. Default `UTC`.
    #[serde(default = "utc")]
    #[schemars(length(min = 1, max = 64))]
    #[x_kube(validation = Rule::new("self.matches('^[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*$')").message("timeZone must be an IANA time zone name, like Europe/Berlin, America/New_York or UTC"))]
    pub time_zone: String,

    /// The recurring openings of the window; at least one.
    #[schemars(length(min = 1, max = 32))]
    pub recurrences: Vec<Recurrence>,

    /// Periods during which the window is closed whatever the recurrences say, such as a
    /// change freeze.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub exclusions: Vec<Exclusion>,

    /// No new target starts when less than this remains of the current window interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cutoff: Option<Duration>,
}

fn utc() -> String {
    "UTC".to_owned()
}

impl MaintenanceWindowSpec {
    /// The window as the engine evaluates it, or the first field that makes no sense.
    pub fn to_engine(&self) -> Result<engine::Window, InvalidSpec> {
        self.to_engine_reporting_all()
            .map_err(crate::convert::first)
    }

    /// The window as the engine evaluates it, or every field that makes no sense — the time
    /// zone, each recurrence, each exclusion — in the order they are written, so that a file
    /// with several mistakes gets them all at once.
    pub fn to_engine_reporting_all(&self) -> Result<engine::Window, Vec<InvalidSpec>> {
        let mut errors = Vec::new();
        let time_zone = jiff::tz::TimeZone::get(&self.time_zone)
            .map_err(|_| {
                errors.push(InvalidSpec::new(
                    "spec.timeZone",
                    format!("unknown time zone {:?}", self.time_zone),
                ));
            })
            .ok();
        if self.recurrences.is_empty() {
            errors.push(InvalidSpec::new(
                "spec.recurrences",
                "at least one recurrence is required",
            ));
        }
        let mut recurrences = Vec::with_capacity(self.recurrences.len());
        for (index, recurrence) in self.recurrences.iter().enumerate() {
            match recurrence.to_engine(&format!("spec.recurrences[{index}]")) {
                Ok(recurrence) => recurrences.push(recurrence),
                Err(error) => errors.push(error),
            }
        }
        let mut exclusions = Vec::with_capacity(self.exclusions.len());
        for (index, exclusion) in self.exclusions.iter().enumerate() {
            match engine::Interval::new(exclusion.start.0, exclusion.end.0) {
                Some(interval) => exclusions.push(interval),
                None => errors.push(InvalidSpec::new(
                    format!("spec.exclusions[{index}]"),
                    "end must be after start",
                )),
            }
        }
        match time_zone {
            Some(time_zone) if errors.is_empty() => Ok(engine::Window::new(
                time_zone,
                recurrences,
                exclusions,
                self.cutoff.unwrap_or(Duration::ZERO),
            )),
            _ => Err(errors),
        }
    }
}

impl Recurrence {
    /// The recurrence as the engine evaluates it; `field` is its path, like
    /// `spec.recurrences[0]`.
    fn to_engine(&self, field: &str) -> Result<engine::Recurrence, InvalidSpec> {
        let schedule = match (&self.start, &self.cron) {
            (Some(start), None) => engine::Schedule::Weekly {
                days: match &self.days {
                    Some(days) if days.is_empty() => {
                        return Err(InvalidSpec::new(
                            format!("{field}.days"),
                            "must list at least one day, or be left out for every day",
                        ));
                    }
                    Some(days) => Some(days.iter().copied().collect()),
                    None => None,
                },
                start: *start,
            },
            (None, Some(_)) if self.days.is_some() => {
                return Err(InvalidSpec::new(
                    field,
                    "days goes with start, not with cron",
                ));
            }
            (None, Some(cron)) => engine::Schedule::Cron(
                cron.parse()
                    .map_err(|error| InvalidSpec::new(format!("{field}.cron"), error))?,
            ),
            (Some(_), Some(_)) | (None, None) => {
                return Err(InvalidSpec::new(
                    field,
                    "exactly one of start or cron is required",
                ));
            }
        };
        if self.duration.is_zero() {
            return Err(InvalidSpec::new(
                format!("{field}.duration"),
                "must be longer than 0s",
            ));
        }
        Ok(engine::Recurrence {
            schedule,
            duration: self.duration,
        })
    }
}

/// One recurring opening: either `days` and `start`, or `cron`; and a `duration`.
#[derive(KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[x_kube(validation = Rule::new("has(self.start) != has(self.cron)").message("exactly one of start or cron is required"))]
#[x_kube(validation = Rule::new("!has(self.days) || has(self.start)").message("days goes with start, not with cron"))]
#[serde(rename_all = "camelCase")]
pub struct Recurrence {
    /// Days of the week on which the window opens at `start`; omitted means every day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 7), extend("x-kubernetes-list-type" = "set"))]
    pub days: Option<Vec<Weekday>>,

    /// Local wall-clock time, `HH:MM`, at which the window opens on each of `days`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<WallClock>,

    /// A five-field cron expression in local time (minute, hour, day of month, month, day of
    /// week), instead of `days` and `start`: the window opens at each minute it matches.
    /// `@yearly`, `@annually`, `@monthly`, `@weekly`, `@daily`, `@midnight` and `@hourly`
    /// stand for their usual five fields (`@daily` is `0 0 * * *`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    #[x_kube(
        validation = cron::rule(0),
        validation = cron::rule(1),
        validation = cron::rule(2),
        validation = cron::rule(3),
        validation = cron::rule(4),
        validation = cron::rule(5)
    )]
    pub cron: Option<String>,

    /// How long each opening lasts, in elapsed time (a 4h opening across a DST change is
    /// still 4 real hours); longer than 0s.
    #[x_kube(validation = Rule::new("self.matches('[1-9]')").message("duration must be longer than 0s"))]
    pub duration: Duration,
}

/// A period during which the window is closed: the half-open interval `[start, end)`.
#[derive(KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[x_kube(validation = Rule::new("self.end > self.start").message("end must be after start"))]
pub struct Exclusion {
    /// The first instant of the exclusion, RFC 3339.
    pub start: Time,
    /// The first instant after the exclusion, RFC 3339.
    pub end: Time,
    /// Why the window is closed, such as `Year-end change freeze`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub reason: Option<String>,
}

/// What the operator last observed of a window.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MaintenanceWindowStatus {
    /// Whether the window is open now.
    #[serde(default)]
    pub open: bool,

    /// The window interval containing now, while the window is open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_window: Option<Interval>,

    /// The next window interval that starts after now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_window: Option<Interval>,

    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// `Ready`, `Stalled` (an invalid spec) and `WindowOpen`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn spec(value: serde_json::Value) -> MaintenanceWindowSpec {
        serde_json::from_value(value).unwrap()
    }

    fn error(value: serde_json::Value) -> String {
        spec(value).to_engine().unwrap_err().to_string()
    }

    #[test]
    fn a_valid_spec_becomes_a_window() {
        let window = spec(json!({
            "timeZone": "Europe/Berlin",
            "recurrences": [
                {"days": ["Sat", "Sun"], "start": "01:00", "duration": "4h"},
                {"cron": "0 22 * * Tue", "duration": "2h"},
            ],
            "exclusions": [{
                "start": "2026-12-20T00:00:00+01:00",
                "end": "2027-01-04T00:00:00+01:00",
                "reason": "Year-end change freeze",
            }],
            "cutoff": "30m",
        }))
        .to_engine()
        .unwrap();
        assert_eq!(window.time_zone().iana_name(), Some("Europe/Berlin"));
        assert_eq!(window.recurrences().len(), 2);
        assert_eq!(window.exclusions().len(), 1);
        assert_eq!(window.cutoff(), Duration::from_mins(30));
        assert!(matches!(
            &window.recurrences()[0].schedule,
            engine::Schedule::Weekly { days: Some(days), .. } if days.len() == 2
        ));
        // The time zone defaults to UTC and the cutoff to nothing.
        let window = spec(json!({"recurrences": [{"start": "01:00", "duration": "1h"}]}))
            .to_engine()
            .unwrap();
        assert_eq!(window.time_zone().iana_name(), Some("UTC"));
        assert_eq!(window.cutoff(), Duration::ZERO);
    }

    #[test]
    fn errors_name_the_field_from_the_root() {
        let daily = json!({"start": "01:00", "duration": "1h"});
        let cases = [
            (
                json!({"timeZone": "Europe/Berln", "recurrences": [daily]}),
                "spec.timeZone: unknown time zone \"Europe/Berln\"",
            ),
            (
                json!({"timeZone": "", "recurrences": [daily]}),
                "spec.timeZone: unknown time zone \"\"",
            ),
            (
                json!({"recurrences": []}),
                "spec.recurrences: at least one recurrence is required",
            ),
            (
                json!({"recurrences": [daily, {"cron": "61 * * * *", "duration": "1h"}]}),
                "spec.recurrences[1].cron: minute field \"61\": value 61 out of range 0-59",
            ),
            (
                json!({"recurrences": [{"start": "01:00", "duration": "0s"}]}),
                "spec.recurrences[0].duration: must be longer than 0s",
            ),
            (
                json!({"recurrences": [{"duration": "1h"}]}),
                "spec.recurrences[0]: exactly one of start or cron is required",
            ),
            (
                json!({"recurrences": [{"start": "01:00", "cron": "0 1 * * *", "duration": "1h"}]}),
                "spec.recurrences[0]: exactly one of start or cron is required",
            ),
            (
                json!({"recurrences": [{"days": ["Mon"], "cron": "0 1 * * *", "duration": "1h"}]}),
                "spec.recurrences[0]: days goes with start, not with cron",
            ),
            (
                json!({"recurrences": [{"days": [], "start": "01:00", "duration": "1h"}]}),
                "spec.recurrences[0].days: must list at least one day",
            ),
            (
                json!({"recurrences": [daily], "exclusions": [
                    {"start": "2026-01-01T00:00:00Z", "end": "2026-01-02T00:00:00Z"},
                    {"start": "2026-01-02T00:00:00Z", "end": "2026-01-02T00:00:00Z"},
                ]}),
                "spec.exclusions[1]: end must be after start",
            ),
        ];
        for (value, expected) in cases {
            let message = error(value.clone());
            assert!(message.starts_with(expected), "{value}: {message}");
        }
    }

    #[test]
    fn every_invalid_field_is_reported_in_the_order_written() {
        let errors = spec(json!({
            "timeZone": "Mars/Olympus",
            "recurrences": [
                {"start": "01:00", "duration": "1h"},
                {"cron": "0 5-2 * * *", "duration": "1h"},
                {"start": "01:00", "duration": "0s"},
            ],
            "exclusions": [
                {"start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z"},
            ],
        }))
        .to_engine_reporting_all()
        .unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "spec.timeZone",
                "spec.recurrences[1].cron",
                "spec.recurrences[2].duration",
                "spec.exclusions[0]",
            ]
        );
        // The operator's condition names the first, as before.
        let first = spec(json!({
            "timeZone": "Mars/Olympus",
            "recurrences": [{"start": "01:00", "duration": "0s"}],
        }))
        .to_engine()
        .unwrap_err();
        assert_eq!(first.field, "spec.timeZone");
    }
}
