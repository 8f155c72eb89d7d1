//! MaintenanceWindow: when patches may be applied. SPEC 2.1.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use patchpilot_engine::{
    units::Duration,
    window::{WallClock, Weekday},
};
use serde::{Deserialize, Serialize};

use super::common::{Interval, conditions_schema};

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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256), regex(pattern = r"^\s*\S+(\s+\S+){4}\s*$"))]
    pub cron: Option<String>,

    /// How long each opening lasts, in elapsed time (a 4h opening across a DST change is
    /// still 4 real hours).
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
