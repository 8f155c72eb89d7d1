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

/// What patchpilot's API clients send as `User-Agent`: `patchpilot/<version>`, the way kube
/// clients name themselves (`kubectl/v1.32.0 …`), so that audit logs and API server metrics
/// tell its requests apart.
pub const USER_AGENT: &str = concat!("patchpilot/", env!("CARGO_PKG_VERSION"));
