//! End-to-end tests against a real control plane (`tests/cluster/up`: Kubernetes built from
//! its Go modules, kwok's simulated kubelets): the operator runs as its own process under the
//! chart's ServiceAccount and RBAC, and rolls patches through the cluster's nodes and
//! Deployments. After each test, the API server's audit log goes through the invariant
//! checks of the sandbox's scenario tests. Every test is `#[ignore]`d: `cargo test` only
//! compiles them. Run them with
//!
//! ```text
//! tests/cluster/up /tmp/pp-e2e
//! KUBECONFIG=/tmp/pp-e2e/kubeconfig cargo test --test e2e -- --ignored --test-threads=1
//! tests/cluster/down /tmp/pp-e2e
//! ```
//!
//! See `tests/e2e/README.md` for what they do to the cluster and what they leave.

mod support;

mod api;
mod conformance;
mod kubectl;
mod nodes;
mod notifications;
mod operators;
mod parity;
mod people;
mod workloads;
