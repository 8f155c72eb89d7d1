//! The pure core of patchpilot: everything that decides, nothing that performs I/O.
//!
//! This crate knows maintenance windows, targets and waves, and the rollout state machine. It
//! never reads the clock (the instant is always a parameter), never talks to Kubernetes and
//! never spawns tasks: it depends on neither `kube` nor `k8s-openapi` nor `tokio`, which the
//! compiler enforces because they are not in its `Cargo.toml`.
//!
//! The scalar types and enums here are also the API's vocabulary: the custom resources in the
//! `patchpilot` crate embed them, so a value is parsed once, when an object is read.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod calendar;
pub mod compliance;
mod error;
pub mod image;
pub mod keys;
pub mod machine;
pub mod naming;
pub mod notify;
pub mod plan;
pub mod policy;
pub mod rollout;
pub mod selector;
pub mod target;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod units;
pub mod untrusted;
pub mod window;

pub use error::InvalidSpec;
