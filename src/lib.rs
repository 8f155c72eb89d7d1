//! patchpilot: a Kubernetes operator for declarative patch rollout.
//!
//! The crate is laid out by concern:
//!
//! - [`api`] — the custom resources (MaintenanceWindow, PatchPolicy, PatchRollout) and the
//!   annotations patchpilot uses; the CRDs are generated from them.
//! - [`patchpilot_engine`] (its own crate, `crates/engine`) — the pure core: windows, targets
//!   and waves, the rollout state machine. No I/O and no clock.
//! - [`controller`] — the Kubernetes adapter: turns cluster objects into engine inputs and
//!   engine decisions into API calls.
//! - [`sandbox`] — a simulated cluster the operator and kubectl can talk to.
//! - [`cli`] — the `patchpilot` command line that wires them together.

#![forbid(unsafe_code)]

pub mod api;
pub mod cli;
pub mod clock;
pub mod controller;
pub mod sandbox;
pub mod schema;

pub use patchpilot_engine as engine;
