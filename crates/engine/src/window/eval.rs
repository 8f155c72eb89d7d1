//! A maintenance window and its evaluation at an instant, exactly as SPEC 2.1 defines it.
//!
//! The open set is the union of all occurrences minus the union of all exclusions; a window
//! interval is a maximal interval of the open set. Occurrences are generated lazily, a few days
//! at a time around the instant asked about, so that a window opening a few times a week costs
//! a handful of time zone conversions, and even a window open every minute stays cheap.
//! Occurrences that lie within longer ones are never made, so that a window that never closes
//! (and is therefore searched to the horizon on both sides) costs about one occurrence a day
//! for each recurrence that covers the others, not one a minute for each that opens every
//! minute.

use jiff::{SignedDuration, Timestamp, tz::TimeZone};
use serde::Serialize;

use super::{
    Interval, Recurrence,
    interval::{difference, push_merged, union},
    schedule::union_of_occurrences,
};
use crate::units::Duration;

/// How far from the instant asked about window intervals are searched, in days: occurrences
/// starting more than this after the instant are not considered, and neither are those
/// starting more than this before it.
pub const HORIZON_DAYS: i64 = 400;

const HORIZON: SignedDuration = SignedDuration::from_hours(HORIZON_DAYS * 24);
/// The first stretch of occurrences generated beyond the instant, and the first extension.
const FIRST_STEP: SignedDuration = SignedDuration::from_hours(8 * 24);
/// The longest stretch generated at once; steps double up to it.
const LONGEST_STEP: SignedDuration = SignedDuration::from_hours(64 * 24);
const ONE_DAY: SignedDuration = SignedDuration::from_hours(24);

/// A maintenance window: recurring occurrences in a time zone, minus exclusions, with a cutoff.
#[derive(Clone, Debug, PartialEq)]
pub struct Window {
    time_zone: TimeZone,
    recurrences: Vec<Recurrence>,
    /// The union of the exclusions: sorted, disjoint and not touching.
    exclusions: Vec<Interval>,
    cutoff: Duration,
    /// The longest duration of any recurrence.
    longest: SignedDuration,
}

/// A window seen from one instant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Evaluation {
    /// Whether the instant lies in the open set.
    pub open: bool,
    /// The window interval that contains the instant, if it is open.
    pub current: Option<Interval>,
    /// The window intervals that start strictly after the instant, in order, as many as asked
    /// for or as the horizon holds.
    pub next: Vec<Interval>,
}

impl Window {
    /// A window of `recurrences` read in `time_zone`, closed during `exclusions` (which may
    /// overlap), where no new target starts with less than `cutoff` left.
    pub fn new(
        time_zone: TimeZone,
        recurrences: Vec<Recurrence>,
        exclusions: Vec<Interval>,
        cutoff: Duration,
    ) -> Self {
        let longest = recurrences
            .iter()
            .map(|recurrence| recurrence.duration.signed())
            .max()
            .unwrap_or(SignedDuration::ZERO);
        Window {
            time_zone,
            recurrences,
            exclusions: union(exclusions),
            cutoff,
            longest,
        }
    }

    /// The time zone in which start times and cron expressions are read.
    pub fn time_zone(&self) -> &TimeZone {
        &self.time_zone
    }

    /// The recurrences, as given.
    pub fn recurrences(&self) -> &[Recurrence] {
        &self.recurrences
    }

    /// The exclusions, merged: sorted, disjoint and not touching.
    pub fn exclusions(&self) -> &[Interval] {
        &self.exclusions
    }

    /// No new target starts when less than this remains of the current window interval.
    pub fn cutoff(&self) -> Duration {
        self.cutoff
    }

    /// Whether the window is open at `at`, the window interval containing it, and up to `next`
    /// window intervals starting strictly after it, within [`HORIZON_DAYS`].
    ///
    /// The current interval's start is exact as long as the occurrences chaining into it start
    /// within the horizon before `at`; its end and the next intervals take into account the
    /// occurrences starting up to the horizon after `at`, inclusive.
    pub fn evaluate(&self, at: Timestamp, next: usize) -> Evaluation {
        let floor = minus(at, HORIZON);
        let horizon = plus(at, HORIZON);
        // Occurrences starting at the horizon count; those starting after it do not.
        let limit = plus(horizon, SignedDuration::from_nanos(1));
        let first_lo = minus(minus(at, self.longest), ONE_DAY).max(floor);
        let mut coverage = Coverage::new(self, first_lo, plus(at, FIRST_STEP).min(limit));
        let (mut back_step, mut forward_step) = (FIRST_STEP, FIRST_STEP);
        loop {
            let pieces = difference(&coverage.runs, &self.exclusions);
            let current = pieces.iter().find(|piece| piece.contains(at)).copied();

            // The current interval's start is exact unless an occurrence starting before the
            // generated stretch could still reach the run of occurrences leading up to `at`.
            let run = coverage.runs.iter().find(|run| run.contains(at));
            if let (Some(current), Some(run)) = (current, run) {
                let reachable = run.start < plus(coverage.lo, self.longest);
                if current.start == run.start && reachable && coverage.lo > floor {
                    coverage.extend_back(minus(coverage.lo, back_step).max(floor));
                    back_step = (back_step * 2).min(LONGEST_STEP);
                    continue;
                }
            }

            // An interval is final once it ends before the generated stretch does: anything
            // generated later starts after it ends, so it can no longer touch it.
            let complete = coverage.hi >= limit;
            let settled = |piece: &Interval| complete || piece.end < coverage.hi;
            let upcoming: Vec<Interval> = pieces
                .iter()
                .filter(|piece| piece.start > at && piece.start <= horizon)
                .take(next)
                .copied()
                .collect();
            let enough = upcoming.len() == next && upcoming.last().is_none_or(settled);
            if complete || (current.as_ref().is_none_or(settled) && enough) {
                return Evaluation {
                    open: current.is_some(),
                    current,
                    next: upcoming,
                };
            }
            coverage.extend_forward(plus(coverage.hi, forward_step).min(limit));
            forward_step = (forward_step * 2).min(LONGEST_STEP);
        }
    }

    /// Whether `at` lies in the open set. Cheaper than [`Window::evaluate`]: only the
    /// occurrences that could cover `at` are generated.
    pub fn is_open(&self, at: Timestamp) -> bool {
        !self
            .exclusions
            .iter()
            .any(|exclusion| exclusion.contains(at))
            && self.in_occurrence(at)
    }

    /// Whether an occurrence of a recurrence covers `at`, exclusions aside: with
    /// [`Window::is_open`], whether a closed window is closed by an exclusion (a freeze) or
    /// because no recurrence is open then.
    pub fn in_occurrence(&self, at: Timestamp) -> bool {
        let from = minus(at, self.longest).max(minus(at, HORIZON));
        union_of_occurrences(
            &self.time_zone,
            &self.recurrences,
            from,
            plus(at, SignedDuration::from_nanos(1)),
            None,
        )
        .iter()
        .any(|run| run.contains(at))
    }

    /// The window interval containing `at`, if the window is open then.
    pub fn current(&self, at: Timestamp) -> Option<Interval> {
        self.evaluate(at, 0).current
    }

    /// The first window interval starting strictly after `at`, within [`HORIZON_DAYS`].
    pub fn next_interval(&self, at: Timestamp) -> Option<Interval> {
        self.evaluate(at, 1).next.into_iter().next()
    }

    /// Whether a new target may start at `at`: the window is open and at least the cutoff
    /// remains until the end of the current window interval. With no cutoff, whether it is
    /// open.
    pub fn may_start(&self, at: Timestamp) -> bool {
        self.current(at)
            .is_some_and(|current| current.end.duration_since(at) >= self.cutoff.signed())
    }

    /// The next instant after `at` at which [`Window::is_open`] or [`Window::may_start`] may
    /// answer differently, for re-evaluating exactly then; `None` when nothing changes within
    /// [`HORIZON_DAYS`].
    ///
    /// While open, that is the last instant at which a target may start (the current
    /// interval's end minus the cutoff; `may_start` is false right after it) if it is still
    /// ahead, and otherwise the interval's end. While closed, it is the next interval's start.
    pub fn next_boundary(&self, at: Timestamp) -> Option<Timestamp> {
        let evaluation = self.evaluate(at, 1);
        match evaluation.current {
            Some(current) => {
                let last_start = minus(current.end, self.cutoff.signed());
                Some(if last_start > at {
                    last_start
                } else {
                    current.end
                })
            }
            None => evaluation.next.first().map(|next| next.start),
        }
    }
}

/// The union of the occurrences starting in `[lo, hi)`, grown at either end on demand.
struct Coverage<'w> {
    window: &'w Window,
    lo: Timestamp,
    hi: Timestamp,
    /// Sorted, disjoint, not touching.
    runs: Vec<Interval>,
}

impl<'w> Coverage<'w> {
    fn new(window: &'w Window, lo: Timestamp, hi: Timestamp) -> Self {
        let mut coverage = Coverage {
            window,
            lo,
            hi: lo,
            runs: Vec::new(),
        };
        coverage.extend_forward(hi);
        coverage
    }

    /// The union of `known` and the occurrences starting in `[from, to)`. Occurrences within
    /// `known` are not even made: when the runs found so far reach into the new stretch, as
    /// they do all the way in a window that never closes, they are passed as `known`.
    fn generate(&self, from: Timestamp, to: Timestamp, known: Option<Interval>) -> Vec<Interval> {
        let window = self.window;
        union_of_occurrences(&window.time_zone, &window.recurrences, from, to, known)
    }

    /// Adds the occurrences starting in `[lo, self.lo)`.
    fn extend_back(&mut self, lo: Timestamp) {
        let first = self.runs.first().copied();
        let mut runs = self.generate(lo, self.lo, first);
        // The first run is in `runs` already, grown by what was found before it.
        for run in self.runs.drain(..).skip(usize::from(first.is_some())) {
            push_merged(&mut runs, run);
        }
        self.runs = runs;
        self.lo = self.lo.min(lo);
    }

    /// Adds the occurrences starting in `[self.hi, hi)`.
    fn extend_forward(&mut self, hi: Timestamp) {
        // The last run is given back, grown by what follows it.
        let last = self.runs.pop();
        for run in self.generate(self.hi, hi, last) {
            push_merged(&mut self.runs, run);
        }
        self.hi = self.hi.max(hi);
    }
}

/// `at + duration`, saturating at the last instant jiff knows.
fn plus(at: Timestamp, duration: SignedDuration) -> Timestamp {
    at.saturating_add(duration).unwrap_or(Timestamp::MAX)
}

/// `at - duration`, saturating at the first instant jiff knows.
fn minus(at: Timestamp, duration: SignedDuration) -> Timestamp {
    at.saturating_sub(duration).unwrap_or(Timestamp::MIN)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::window::Schedule;

    fn daily(duration: Duration) -> Recurrence {
        Recurrence {
            schedule: Schedule::Weekly {
                days: None,
                start: "01:00".parse().unwrap(),
            },
            duration,
        }
    }

    fn window(zone: &str, recurrences: Vec<Recurrence>) -> Window {
        Window::new(
            TimeZone::get(zone).unwrap(),
            recurrences,
            vec![],
            Duration::from_mins(30),
        )
    }

    #[test]
    fn a_window_without_occurrences_is_never_open() {
        let at: Timestamp = "2026-05-01T00:00:00Z".parse().unwrap();
        for window in [
            window("UTC", vec![]),
            window("UTC", vec![daily(Duration::ZERO)]),
        ] {
            let evaluation = window.evaluate(at, 3);
            assert_eq!(
                evaluation,
                Evaluation {
                    open: false,
                    current: None,
                    next: vec![]
                }
            );
            assert!(!window.is_open(at));
            assert!(!window.may_start(at));
            assert_eq!(window.next_boundary(at), None);
        }
    }

    #[test]
    fn the_ends_of_time_do_not_panic() {
        let huge = Duration::from_hours(24 * 999_999_999);
        for zone in ["UTC", "Europe/Berlin", "Pacific/Kiritimati"] {
            let window = window(zone, vec![daily(Duration::from_hours(4)), daily(huge)]);
            for at in [Timestamp::MIN, Timestamp::MAX, Timestamp::UNIX_EPOCH] {
                let evaluation = window.evaluate(at, usize::MAX);
                assert_eq!(evaluation.open, window.is_open(at), "{zone} {at}");
                let _ = window.may_start(at);
                let _ = window.next_boundary(at);
            }
        }
    }

    #[test]
    fn an_occurrence_longer_than_the_horizon_is_cut_at_the_horizon_behind() {
        let window = window("UTC", vec![daily(Duration::from_hours(24 * 1000))]);
        let at: Timestamp = "2026-05-01T00:00:00Z".parse().unwrap();
        let current = window.current(at).unwrap();
        // The first occurrence within 400 days before, and the last one started within 400
        // days after, plus its length.
        assert_eq!(current.start, "2025-03-27T01:00:00Z".parse().unwrap());
        assert_eq!(current.end, "2030-02-28T01:00:00Z".parse().unwrap());
    }

    #[test]
    fn an_exclusion_closes_an_occurrence_that_still_covers_the_instant() {
        let at = |s: &str| -> Timestamp { s.parse().unwrap() };
        let freeze = Interval::new(at("2026-05-02T00:00:00Z"), at("2026-05-03T00:00:00Z"));
        let window = Window::new(
            TimeZone::UTC,
            vec![daily(Duration::from_hours(4))],
            freeze.into_iter().collect(),
            Duration::ZERO,
        );
        // Inside the freeze: closed, though the day's occurrence covers the instant.
        let frozen = at("2026-05-02T02:00:00Z");
        assert!(!window.is_open(frozen) && window.in_occurrence(frozen));
        // Outside every occurrence: closed, and no occurrence covers it.
        let night = at("2026-05-01T12:00:00Z");
        assert!(!window.is_open(night) && !window.in_occurrence(night));
        let open = at("2026-05-01T02:00:00Z");
        assert!(window.is_open(open) && window.in_occurrence(open));
    }
}
