//! Recurrences and their occurrences: local wall-clock start times turned into instants.

use std::collections::BTreeSet;

use jiff::{
    SignedDuration, Timestamp,
    civil::{Date, DateTime, Time},
    tz::TimeZone,
};

use super::{Cron, Interval, WallClock, Weekday};
use crate::units::Duration;

/// When the occurrences of a recurrence start, in local wall-clock time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Schedule {
    /// At `start` on each of `days`.
    Weekly {
        /// The days of the week; `None` means every day.
        days: Option<BTreeSet<Weekday>>,
        /// The local time of day at which each occurrence starts.
        start: WallClock,
    },
    /// At each local minute the expression matches.
    Cron(Cron),
}

/// A recurring opening: occurrences starting per `schedule`, each lasting `duration` of
/// elapsed time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recurrence {
    /// When occurrences start.
    pub schedule: Schedule,
    /// How long each occurrence lasts, in elapsed time.
    pub duration: Duration,
}

/// A day's worth of local times and how they map to instants.
struct LocalDay<'a> {
    time_zone: &'a TimeZone,
    date: Date,
    /// The instant of local midnight, when one offset holds all day and well around it, so that
    /// a local time maps to midnight plus the time since midnight.
    steady_midnight: Option<Timestamp>,
}

/// How far from a day a time zone transition may lie and still bear on that day's local times.
/// Real transitions shift the clock by a day at most.
const TRANSITION_REACH: SignedDuration = SignedDuration::from_hours(72);

impl<'a> LocalDay<'a> {
    fn new(time_zone: &'a TimeZone, date: Date) -> Self {
        let steady = |midnight: &Timestamp| {
            let (Ok(from), Ok(until)) = (
                midnight.checked_sub(TRANSITION_REACH),
                midnight.checked_add(TRANSITION_REACH),
            ) else {
                return false;
            };
            let next = time_zone.following(from).next();
            next.is_none_or(|transition| transition.timestamp() > until)
        };
        let steady_midnight =
            to_instant(time_zone, date.to_datetime(Time::midnight())).filter(steady);
        LocalDay {
            time_zone,
            date,
            steady_midnight,
        }
    }

    /// The instant at which the local time `hour:minute` of this day starts: shifted forward by
    /// the length of a gap, and the earlier of the two in a fold.
    fn instant(&self, hour: i8, minute: i8) -> Option<Timestamp> {
        match self.steady_midnight {
            Some(midnight) => {
                let since = SignedDuration::from_mins(i64::from(hour) * 60 + i64::from(minute));
                midnight.checked_add(since).ok()
            }
            None => {
                let time = Time::new(hour, minute, 0, 0).ok()?;
                to_instant(self.time_zone, self.date.to_datetime(time))
            }
        }
    }
}

/// A local date and time as an instant, by the `compatible` rule: a time in a gap moves forward
/// by the gap's length, a time in a fold takes the earlier instant.
fn to_instant(time_zone: &TimeZone, datetime: DateTime) -> Option<Timestamp> {
    time_zone.to_ambiguous_timestamp(datetime).compatible().ok()
}

fn weekday(date: Date) -> Weekday {
    match date.weekday() {
        jiff::civil::Weekday::Monday => Weekday::Mon,
        jiff::civil::Weekday::Tuesday => Weekday::Tue,
        jiff::civil::Weekday::Wednesday => Weekday::Wed,
        jiff::civil::Weekday::Thursday => Weekday::Thu,
        jiff::civil::Weekday::Friday => Weekday::Fri,
        jiff::civil::Weekday::Saturday => Weekday::Sat,
        jiff::civil::Weekday::Sunday => Weekday::Sun,
    }
}

/// Local dates are generated this far beyond the dates of a range's ends, so that no local
/// time whose instant falls in the range is missed, however a transition moved it.
const DATE_MARGIN: SignedDuration = SignedDuration::from_hours(48);

/// Every occurrence of `recurrences` in `time_zone` whose start lies in `[from, to)`, sorted by
/// start. Occurrences of zero length are left out; occurrences of one cron expression on one
/// day may come already merged where they overlap or touch, which leaves their union the same.
pub(super) fn occurrences(
    time_zone: &TimeZone,
    recurrences: &[Recurrence],
    from: Timestamp,
    to: Timestamp,
) -> Vec<Interval> {
    let mut found = Vec::new();
    if from >= to {
        return found;
    }
    let span = Span { from, to };
    let first = local_date(time_zone, from, -DATE_MARGIN);
    let last = local_date(time_zone, to, DATE_MARGIN);
    let mut next_date = Some(first);
    while let Some(date) = next_date.filter(|date| *date <= last) {
        next_date = date.tomorrow().ok();
        let day = LocalDay::new(time_zone, date);
        for recurrence in recurrences {
            let duration = recurrence.duration;
            match &recurrence.schedule {
                Schedule::Weekly { days, start } => {
                    if days
                        .as_ref()
                        .is_none_or(|days| days.contains(&weekday(date)))
                    {
                        let instant = day.instant(start.hour() as i8, start.minute() as i8);
                        found.extend(span.occurrence(instant, duration));
                    }
                }
                Schedule::Cron(cron) if !cron.matches_date(date) => {}
                Schedule::Cron(cron) => match day.steady_midnight {
                    Some(midnight) => found.extend(span.steady_runs(midnight, cron, duration)),
                    None => found.extend(cron.times_of_day().filter_map(|(hour, minute)| {
                        span.occurrence(day.instant(hour, minute), duration)
                    })),
                },
            }
        }
    }
    found.sort_unstable();
    found
}

/// The instants at which occurrences may start: `[from, to)`.
struct Span {
    from: Timestamp,
    to: Timestamp,
}

const NANOS_PER_MINUTE: i128 = 60_000_000_000;
const NANOS_PER_MILLI: i128 = 1_000_000;

impl Span {
    /// The occurrence starting at `start` and lasting `duration`, if it starts in the span and
    /// is not empty.
    fn occurrence(&self, start: Option<Timestamp>, duration: Duration) -> Option<Interval> {
        let start = start.filter(|start| (self.from..self.to).contains(start))?;
        let end = start
            .saturating_add(duration.signed())
            .unwrap_or(Timestamp::MAX);
        Interval::new(start, end)
    }

    /// The occurrences of `cron` starting in the span on a day whose local midnight is
    /// `midnight` and whose offset does not change, with those that overlap or touch already
    /// merged. Counted in nanoseconds rather than through the time zone, so that a window open
    /// every minute costs little.
    fn steady_runs(&self, midnight: Timestamp, cron: &Cron, duration: Duration) -> Vec<Interval> {
        let (from, to) = (self.from.as_nanosecond(), self.to.as_nanosecond());
        let midnight = midnight.as_nanosecond();
        let length = i128::from(duration.as_millis()) * NANOS_PER_MILLI;
        let mut runs = Vec::new();
        let mut run: Option<(i128, i128)> = None;
        for (hour, minute) in cron.times_of_day() {
            let start = midnight + (i128::from(hour) * 60 + i128::from(minute)) * NANOS_PER_MINUTE;
            if start < from || start >= to {
                continue;
            }
            let end = start + length;
            run = match run {
                Some((run_start, run_end)) if start <= run_end => {
                    Some((run_start, run_end.max(end)))
                }
                Some(done) => {
                    runs.extend(nanos_interval(done));
                    Some((start, end))
                }
                None => Some((start, end)),
            };
        }
        runs.extend(run.and_then(nanos_interval));
        runs
    }
}

/// An interval from nanoseconds since the Unix epoch, its end saturating at the last instant
/// jiff knows.
fn nanos_interval((start, end): (i128, i128)) -> Option<Interval> {
    let start = Timestamp::from_nanosecond(start).ok()?;
    let end = Timestamp::from_nanosecond(end).unwrap_or(Timestamp::MAX);
    Interval::new(start, end)
}

/// The local date of `at + shift`, clamped to the dates the time zone can express.
fn local_date(time_zone: &TimeZone, at: Timestamp, shift: SignedDuration) -> Date {
    let shifted = at.saturating_add(shift).unwrap_or(at);
    time_zone.to_datetime(shifted).date()
}
