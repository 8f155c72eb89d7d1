//! Where "now" comes from: the system clock in a cluster, a virtual clock in the sandbox.
//!
//! The engine never reads a clock; the controller and the sandbox ask a [`Clock`] for the
//! instant and for how long to sleep until a later one.

use std::{sync::Arc, time::Duration as StdDuration};

use jiff::{SignedDuration, Timestamp};

/// A source of instants.
pub trait Clock: Send + Sync + 'static {
    /// The current instant.
    fn now(&self) -> Timestamp;

    /// How long to sleep, on tokio's timer, until `at`. Zero for instants in the past.
    fn sleep_for(&self, at: Timestamp) -> StdDuration;
}

/// A shared clock.
pub type SharedClock = Arc<dyn Clock>;

/// The system clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }

    fn sleep_for(&self, at: Timestamp) -> StdDuration {
        let left = at.duration_since(Timestamp::now());
        StdDuration::try_from(left).unwrap_or(StdDuration::ZERO)
    }
}

/// A virtual clock: `start` plus the time tokio has seen pass since `origin`, sped up by
/// `speed`.
///
/// Under tokio's paused time (the sandbox run to its end) tokio's clock jumps to the next
/// timer whenever every task waits, so an hour-long soak takes as long as the work in it.
/// Served to people, tokio's clock is real and `speed` makes minutes pass in seconds.
#[derive(Clone, Copy, Debug)]
pub struct VirtualClock {
    start: Timestamp,
    origin: tokio::time::Instant,
    speed: f64,
}

impl VirtualClock {
    /// A clock reading `start` now, running `speed` times faster than tokio's.
    pub fn new(start: Timestamp, speed: f64) -> Self {
        VirtualClock {
            start,
            origin: tokio::time::Instant::now(),
            speed: speed.max(f64::MIN_POSITIVE),
        }
    }

    /// How fast the clock runs compared with tokio's.
    pub fn speed(&self) -> f64 {
        self.speed
    }
}

impl Clock for VirtualClock {
    fn now(&self) -> Timestamp {
        let elapsed = self.origin.elapsed().as_secs_f64() * self.speed;
        let elapsed = SignedDuration::try_from_secs_f64(elapsed).unwrap_or(SignedDuration::MAX);
        self.start.saturating_add(elapsed).unwrap_or(Timestamp::MAX)
    }

    fn sleep_for(&self, at: Timestamp) -> StdDuration {
        let left = at.duration_since(self.now()).as_secs_f64() / self.speed;
        if left <= 0.0 || !left.is_finite() {
            return StdDuration::ZERO;
        }
        // A few microseconds more, so that waking up never lands just before `at`.
        StdDuration::from_secs_f64(left) + StdDuration::from_micros(10)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn virtual_time_follows_tokio_and_its_speed() {
        let start: Timestamp = "2026-11-28T00:00:00Z".parse().unwrap();
        let clock = VirtualClock::new(start, 60.0);
        assert_eq!(clock.now(), start);
        tokio::time::sleep(StdDuration::from_secs(2)).await;
        assert_eq!(clock.now(), start + SignedDuration::from_mins(2));
        let later = start + SignedDuration::from_mins(5);
        let sleep = clock.sleep_for(later);
        assert!((sleep.as_secs_f64() - 3.0).abs() < 0.001, "{sleep:?}");
        tokio::time::sleep(sleep).await;
        assert!(clock.now() >= later);
        assert_eq!(clock.sleep_for(start), StdDuration::ZERO);
    }
}
