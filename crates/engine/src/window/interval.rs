//! Half-open intervals of time and the set operations a window needs: union and difference.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// A half-open interval of time `[start, end)`: it contains `start` but not `end`.
///
/// Serialised as `{"start": "...", "end": "..."}` with RFC 3339 instants in UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Interval {
    /// The first instant of the interval.
    pub start: Timestamp,
    /// The first instant after the interval.
    pub end: Timestamp,
}

impl Interval {
    /// The interval `[start, end)`, if it holds at least one instant.
    pub fn new(start: Timestamp, end: Timestamp) -> Option<Interval> {
        (start < end).then_some(Interval { start, end })
    }

    /// Whether `at` lies in the interval: `start <= at < end`.
    pub fn contains(&self, at: Timestamp) -> bool {
        self.start <= at && at < self.end
    }
}

/// Adds `interval` to `union`, a sorted list of disjoint, non-touching intervals whose last
/// start is at most `interval.start`; overlapping or touching intervals merge.
pub(crate) fn push_merged(union: &mut Vec<Interval>, interval: Interval) {
    match union.last_mut() {
        Some(last) if interval.start <= last.end => last.end = last.end.max(interval.end),
        Some(_) | None => union.push(interval),
    }
}

/// The union of `intervals`, as a sorted list of disjoint, non-touching intervals.
pub(crate) fn union(mut intervals: Vec<Interval>) -> Vec<Interval> {
    intervals.sort_unstable();
    let mut merged = Vec::with_capacity(intervals.len());
    for interval in intervals {
        push_merged(&mut merged, interval);
    }
    merged
}

/// `union` minus `removed`, both sorted lists of disjoint intervals: the pieces that remain,
/// in order.
pub(crate) fn difference(union: &[Interval], removed: &[Interval]) -> Vec<Interval> {
    let mut pieces = Vec::with_capacity(union.len());
    // Removed intervals ending at or before the current one's start cannot touch any later one.
    let mut first_relevant = 0;
    for interval in union {
        while removed
            .get(first_relevant)
            .is_some_and(|cut| cut.end <= interval.start)
        {
            first_relevant += 1;
        }
        let mut start = interval.start;
        for cut in removed[first_relevant..]
            .iter()
            .take_while(|cut| cut.start < interval.end)
        {
            if let Some(piece) = Interval::new(start, cut.start.min(interval.end)) {
                pieces.push(piece);
            }
            start = start.max(cut.end);
        }
        if let Some(piece) = Interval::new(start, interval.end) {
            pieces.push(piece);
        }
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(minute: i64) -> Timestamp {
        Timestamp::from_second(minute * 60).unwrap()
    }

    fn iv(start: i64, end: i64) -> Interval {
        Interval::new(at(start), at(end)).unwrap()
    }

    #[test]
    fn intervals_are_half_open() {
        let interval = iv(10, 20);
        assert!(!interval.contains(at(9)));
        assert!(interval.contains(at(10)));
        assert!(interval.contains(at(19)));
        assert!(!interval.contains(at(20)));
        assert_eq!(Interval::new(at(5), at(5)), None);
        assert_eq!(Interval::new(at(6), at(5)), None);
    }

    #[test]
    fn overlapping_and_touching_intervals_merge() {
        let merged = union(vec![
            iv(30, 40),
            iv(0, 10),
            iv(10, 20),
            iv(5, 8),
            iv(41, 50),
        ]);
        assert_eq!(merged, vec![iv(0, 20), iv(30, 40), iv(41, 50)]);
        assert_eq!(
            union(vec![iv(0, 100), iv(10, 20), iv(90, 110)]),
            vec![iv(0, 110)]
        );
        assert_eq!(union(vec![]), vec![]);
    }

    #[test]
    fn cuts_split_shorten_and_remove() {
        let union = [iv(0, 100), iv(200, 300), iv(400, 500)];
        // One cut splits the first, one removes the second whole, one trims the third.
        let removed = [iv(40, 60), iv(150, 350), iv(450, 600)];
        assert_eq!(
            difference(&union, &removed),
            vec![iv(0, 40), iv(60, 100), iv(400, 450)]
        );
        // A cut that ends where an interval starts, or starts where it ends, leaves it whole.
        assert_eq!(
            difference(&[iv(10, 20)], &[iv(0, 10), iv(20, 30)]),
            vec![iv(10, 20)]
        );
        // One cut spanning several intervals.
        assert_eq!(
            difference(&union, &[iv(50, 450)]),
            vec![iv(0, 50), iv(450, 500)]
        );
        // Several cuts in one interval.
        assert_eq!(
            difference(&[iv(0, 100)], &[iv(10, 20), iv(30, 40), iv(90, 100)]),
            vec![iv(0, 10), iv(20, 30), iv(40, 90)]
        );
        assert_eq!(difference(&union, &[]), union.to_vec());
    }
}
