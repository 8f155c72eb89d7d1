//! Maintenance windows: when new targets may start.
//!
//! A window is a set of recurrences (days and a start time, or a cron expression, each with a
//! duration) minus exclusions (freezes), evaluated in a time zone. See SPEC 2.1.
//!
//! - [`cron`](Cron): five-field cron expressions, read as Kubernetes CronJob reads them;
//! - [`Schedule`] and [`Recurrence`]: when occurrences start, and local times turned into
//!   instants (a time in a DST gap moves forward by the gap, a time in a fold takes the
//!   earlier instant, once);
//! - [`Interval`]: half-open intervals, merged and cut;
//! - [`Window`]: the open set, evaluated at an instant into an [`Evaluation`], and what the
//!   rollout engine asks of it (`is_open`, `may_start`, `next_boundary`).

mod cron;
mod eval;
mod interval;
mod schedule;

pub use cron::{Cron, CronError, MACROS as CRON_MACROS};
pub use eval::{Evaluation, HORIZON_DAYS, Window};
pub use interval::Interval;
pub use schedule::{Recurrence, Schedule};

use std::{borrow::Cow, fmt, str::FromStr};

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

/// A day of the week, written with its three-letter English name.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
pub enum Weekday {
    /// Monday.
    Mon,
    /// Tuesday.
    Tue,
    /// Wednesday.
    Wed,
    /// Thursday.
    Thu,
    /// Friday.
    Fri,
    /// Saturday.
    Sat,
    /// Sunday.
    Sun,
}

impl From<Weekday> for jiff::civil::Weekday {
    fn from(day: Weekday) -> Self {
        match day {
            Weekday::Mon => jiff::civil::Weekday::Monday,
            Weekday::Tue => jiff::civil::Weekday::Tuesday,
            Weekday::Wed => jiff::civil::Weekday::Wednesday,
            Weekday::Thu => jiff::civil::Weekday::Thursday,
            Weekday::Fri => jiff::civil::Weekday::Friday,
            Weekday::Sat => jiff::civil::Weekday::Saturday,
            Weekday::Sun => jiff::civil::Weekday::Sunday,
        }
    }
}

/// The pattern the schema gives wall-clock times.
pub const WALL_CLOCK_PATTERN: &str = "^([01][0-9]|2[0-3]):[0-5][0-9]$";

/// A local wall-clock time of day, `HH:MM` on a 24-hour clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WallClock {
    hour: u8,
    minute: u8,
}

/// Why a string is not a [`WallClock`] time.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid time of day {input:?}: expected HH:MM on a 24-hour clock, like 01:00 or 22:30")]
pub struct WallClockError {
    input: String,
}

impl WallClock {
    /// A time of day, if the hour and minute exist.
    pub const fn new(hour: u8, minute: u8) -> Option<Self> {
        if hour < 24 && minute < 60 {
            Some(WallClock { hour, minute })
        } else {
            None
        }
    }

    /// The hour, 0 to 23.
    pub const fn hour(self) -> u8 {
        self.hour
    }

    /// The minute, 0 to 59.
    pub const fn minute(self) -> u8 {
        self.minute
    }

    /// The same time as a civil time of day.
    pub fn civil(self) -> jiff::civil::Time {
        jiff::civil::time(self.hour as i8, self.minute as i8, 0, 0)
    }
}

impl FromStr for WallClock {
    type Err = WallClockError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let err = || WallClockError {
            input: input.to_owned(),
        };
        let (hour, minute) = input.split_once(':').ok_or_else(err)?;
        let two_digits = |s: &str| {
            (s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse::<u8>().ok())?
        };
        let (hour, minute) = (
            two_digits(hour).ok_or_else(err)?,
            two_digits(minute).ok_or_else(err)?,
        );
        WallClock::new(hour, minute).ok_or_else(err)
    }
}

impl fmt::Display for WallClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.hour, self.minute)
    }
}

impl Serialize for WallClock {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for WallClock {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = Cow::<str>::deserialize(deserializer)?;
        text.parse().map_err(de::Error::custom)
    }
}

impl JsonSchema for WallClock {
    fn schema_name() -> Cow<'static, str> {
        "WallClock".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": "string", "pattern": WALL_CLOCK_PATTERN})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wall_clock_times() {
        assert_eq!(
            "01:00".parse::<WallClock>().unwrap(),
            WallClock::new(1, 0).unwrap()
        );
        assert_eq!("23:59".parse::<WallClock>().unwrap().to_string(), "23:59");
        for bad in [
            "24:00", "1:00", "01:60", "0100", "01:00:00", "", "ab:cd", "+1:00",
        ] {
            assert!(bad.parse::<WallClock>().is_err(), "{bad}");
        }
    }
}
