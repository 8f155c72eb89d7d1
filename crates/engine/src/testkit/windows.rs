//! Builders for windows in tests: recurrences and windows from short strings.

use crate::{
    units::Duration,
    window::{Interval, Recurrence, Schedule, Window},
};
use jiff::tz::TimeZone;

pub use super::at as ts;

/// The interval from `start` to `end`, RFC 3339.
pub fn interval((start, end): (&str, &str)) -> Interval {
    Interval::new(ts(start), ts(end)).unwrap()
}

/// `days` like `"Sat,Sun"` (empty for every day), `start` like `"01:00"`, `duration` like `"4h"`.
pub fn weekly(days: &str, start: &str, duration: &str) -> Recurrence {
    let days = (!days.is_empty()).then(|| {
        days.split(',')
            .map(|day| serde_json::from_value(day.into()).unwrap())
            .collect()
    });
    Recurrence {
        schedule: Schedule::Weekly {
            days,
            start: start.parse().unwrap(),
        },
        duration: duration.parse().unwrap(),
    }
}

/// Every day from `start` for `duration`.
pub fn daily(start: &str, duration: &str) -> Recurrence {
    weekly("", start, duration)
}

/// At the instants of a cron `expression`, for `duration`.
pub fn cron(expression: &str, duration: &str) -> Recurrence {
    Recurrence {
        schedule: Schedule::Cron(expression.parse().unwrap()),
        duration: duration.parse().unwrap(),
    }
}

/// A window in time zone `zone` with these recurrences and exclusions, no cutoff.
pub fn window(zone: &str, recurrences: Vec<Recurrence>, exclusions: &[(&str, &str)]) -> Window {
    Window::new(
        TimeZone::get(zone).unwrap(),
        recurrences,
        exclusions.iter().copied().map(interval).collect(),
        Duration::ZERO,
    )
}
