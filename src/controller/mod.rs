//! The Kubernetes adapter: controllers for PatchPolicy, PatchRollout and MaintenanceWindow.
//!
//! It turns cluster objects into engine inputs (explicit conversions) and engine decisions
//! into API calls; it holds no rollout logic of its own. It lands with the operator issue;
//! until then `patchpilot run` says so and exits.

pub mod candidates;
