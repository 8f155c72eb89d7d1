//! End-to-end tests against a real cluster (kind, k3d): the operator runs in this process
//! against the cluster of KUBECONFIG and rolls real patches through real nodes and
//! Deployments. Every test is `#[ignore]`d: CI only compiles them. Run them with
//!
//! ```text
//! KUBECONFIG=... cargo test --test e2e -- --ignored --test-threads=1
//! ```
//!
//! See `tests/e2e/README.md` for what they do to the cluster and what they leave (nothing).

mod support;

mod nodes;
mod workloads;
