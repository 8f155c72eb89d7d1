//! Builders and a simulated world for tests and benchmarks, behind the `testkit` feature.
//!
//! - [`Policy::test`] and [`Rollout::test`] start from a small, valid policy and rollout
//!   that builder methods change one rule at a time:
//!   `Policy::test().named("workers-os").canary(5).stages(&[10, 25, 50], soak)`;
//! - [`Fleet`]: a fleet of worker nodes in pools and zones, as candidates (the 5,000-node
//!   fleet of the benchmarks);
//! - [`windows`]: recurrences and windows from short strings;
//! - [`world`]: a small simulated world of nodes that drives the rollout state machine the
//!   way the controller drives a cluster.
//!
//! [`Policy::test`]: crate::policy::Policy::test
//! [`Rollout::test`]: crate::machine::Rollout::test

mod builders;
mod fleet;
pub mod windows;
pub mod world;

use jiff::{SignedDuration, Timestamp};

pub use builders::stages;
pub use fleet::Fleet;

/// An instant written in RFC 3339; panics on a typo, as a test should.
pub fn at(text: &str) -> Timestamp {
    text.parse()
        .unwrap_or_else(|error| panic!("{text}: {error}"))
}

/// `m` minutes.
pub fn mins(m: i64) -> SignedDuration {
    SignedDuration::from_mins(m)
}
