//! patchpilot: a Kubernetes operator for declarative patch rollout.
//!
//! The workspace is laid out by layer, each a crate the compiler keeps in its place (the
//! README's layout table says which may use which):
//!
//! - [`engine`] (`crates/engine`) — the pure core: windows, targets and waves, the rollout
//!   state machine, compliance. No I/O and no clock.
//! - [`api`] (`crates/api`) — the custom resources (MaintenanceWindow, PatchPolicy,
//!   PatchRollout), their conversions to the engine, and the CRDs generated from them.
//! - [`controller`] (`crates/controller`) — the operator: turns cluster objects into engine
//!   inputs and engine decisions into API calls.
//! - [`sandbox`] (`crates/sandbox`) — a simulated cluster the operator and kubectl can talk
//!   to; it knows neither the operator nor its API.
//! - [`schema`] (`crates/schema`) and [`clock`] (`crates/clock`) — reading manifests and
//!   admitting them against CRD schemas; where "now" comes from.
//!
//! This crate is the `patchpilot` binary: the command line ([`cli`]) and the one place where
//! the sandbox and the operator are put together ([`sandboxed`]); and the `kubectl-patchpilot`
//! plugin ([`plugin`]), a client of the API alone. It re-exports the layers
//! under their short names, as `kube` re-exports kube-core and kube-client.

#![forbid(unsafe_code)]

pub mod cli;
pub mod plugin;
pub mod sandboxed;

pub use patchpilot_api as api;
pub use patchpilot_clock as clock;
pub use patchpilot_controller as controller;
pub use patchpilot_engine as engine;
pub use patchpilot_sandbox as sandbox;
pub use patchpilot_schema as schema;
