//! Recurrences and their occurrences: local wall-clock start times turned into instants.

use std::collections::BTreeSet;

use jiff::{
    SignedDuration, Timestamp,
    civil::{Date, DateTime, Time},
    tz::TimeZone,
};

use super::{Cron, Interval, WallClock, Weekday, interval::union};
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
    /// Instants between which every local time of this day starts: from local midnight for 24
    /// hours, or, when a transition is near, a day either side of that, since real
    /// transitions shift the clock by a day at most.
    starts: Option<Interval>,
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
        let midnight = to_instant(time_zone, date.to_datetime(Time::midnight()));
        let steady_midnight = midnight.filter(steady);
        let day = SignedDuration::from_hours(24);
        let starts = midnight.and_then(|midnight| {
            let (before, after) = match steady_midnight {
                Some(_) => (SignedDuration::ZERO, day),
                None => (day, day * 2),
            };
            Interval::new(
                midnight.checked_sub(before).ok()?,
                midnight.checked_add(after).ok()?,
            )
        });
        LocalDay {
            time_zone,
            date,
            steady_midnight,
            starts,
        }
    }

    /// Whether no occurrence lasting `duration` starting on this day can add to `runs`
    /// (sorted, disjoint): none starts within `span`, or one run holds them all.
    fn adds_nothing(&self, span: &Span, runs: &[Interval], duration: Duration) -> bool {
        let Some(starts) = self.starts else {
            return false;
        };
        let outside = starts.end <= span.from || starts.start >= span.to;
        outside
            || starts
                .end
                .checked_add(duration.signed())
                .ok()
                .and_then(|end| Interval::new(starts.start, end))
                .is_some_and(|all| covers(runs, &all))
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

/// The union of `known` (a run of occurrences already found, if any) and the occurrences of
/// `recurrences` in `time_zone` whose start lies in `[from, to)`, as sorted, disjoint,
/// non-touching runs.
///
/// Recurrences are taken longest first, and an occurrence that lies within the union of those
/// taken before it (and `known`) is skipped unmade, as is a whole day of a cron expression
/// when one run covers it: a recurrence adds work only in the gaps the others leave. Without
/// that, a window that never closes (a daily opening longer than a day over an opening every
/// minute) would make every evaluation generate and merge every minute's occurrence up to
/// the horizon on both sides, over a million of them for each such recurrence.
pub(super) fn union_of_occurrences(
    time_zone: &TimeZone,
    recurrences: &[Recurrence],
    from: Timestamp,
    to: Timestamp,
    known: Option<Interval>,
) -> Vec<Interval> {
    let mut runs: Vec<Interval> = known.into_iter().collect();
    if from >= to {
        return runs;
    }
    let span = Span { from, to };
    let first = local_date(time_zone, from, -DATE_MARGIN);
    let last = local_date(time_zone, to, DATE_MARGIN);
    let local_days: Vec<LocalDay> = std::iter::successors(Some(first), |date| date.tomorrow().ok())
        .take_while(|date| *date <= last)
        .map(|date| LocalDay::new(time_zone, date))
        .collect();
    let mut longest_first: Vec<&Recurrence> = recurrences.iter().collect();
    longest_first.sort_by_key(|recurrence| std::cmp::Reverse(recurrence.duration));
    for recurrence in longest_first {
        let duration = recurrence.duration;
        let mut found = Vec::new();
        let mut add = |occurrence: Option<Interval>| {
            if let Some(occurrence) = occurrence.filter(|o| !covers(&runs, o)) {
                found.push(occurrence);
            }
        };
        for day in &local_days {
            match &recurrence.schedule {
                Schedule::Weekly { days, start } => {
                    if days
                        .as_ref()
                        .is_none_or(|days| days.contains(&weekday(day.date)))
                    {
                        add(span.occurrence(
                            day.instant(start.hour() as i8, start.minute() as i8),
                            duration,
                        ));
                    }
                }
                Schedule::Cron(cron) if !cron.matches_date(day.date) => {}
                Schedule::Cron(_) if day.adds_nothing(&span, &runs, duration) => {}
                Schedule::Cron(cron) => match day.steady_midnight {
                    Some(midnight) => {
                        for run in span.steady_runs(midnight, cron, duration, &runs) {
                            add(Some(run));
                        }
                    }
                    None => {
                        for (hour, minute) in cron.times_of_day() {
                            add(span.occurrence(day.instant(hour, minute), duration));
                        }
                    }
                },
            }
        }
        if !found.is_empty() {
            runs.append(&mut found);
            runs = union(runs);
        }
    }
    runs
}

/// Whether one of `runs` (sorted, disjoint) holds the whole of `interval`.
fn covers(runs: &[Interval], interval: &Interval) -> bool {
    let after = runs.partition_point(|run| run.start <= interval.start);
    after > 0 && runs[after - 1].end >= interval.end
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
    /// merged, leaving out those that lie within one of the `covered` runs (sorted, disjoint).
    /// Counted in nanoseconds rather than through the time zone, so that a window open every
    /// minute costs little.
    fn steady_runs(
        &self,
        midnight: Timestamp,
        cron: &Cron,
        duration: Duration,
        covered: &[Interval],
    ) -> Vec<Interval> {
        let (from, to) = (self.from.as_nanosecond(), self.to.as_nanosecond());
        let midnight = midnight.as_nanosecond();
        let length = i128::from(duration.as_millis()) * NANOS_PER_MILLI;
        let mut runs = Vec::new();
        let mut run: Option<(i128, i128)> = None;
        // The first covered run that does not end before the current start: starts only grow.
        let mut cover = covered.iter().peekable();
        for (hour, minute) in cron.times_of_day() {
            let start = midnight + (i128::from(hour) * 60 + i128::from(minute)) * NANOS_PER_MINUTE;
            if start < from || start >= to {
                continue;
            }
            let end = start + length;
            while cover.next_if(|c| c.end.as_nanosecond() < start).is_some() {}
            if cover
                .peek()
                .is_some_and(|c| c.start.as_nanosecond() <= start && end <= c.end.as_nanosecond())
            {
                continue;
            }
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
