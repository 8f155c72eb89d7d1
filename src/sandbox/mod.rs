//! The sandbox: an in-process simulated Kubernetes cluster with a virtual clock, which the
//! operator (through `kube::Client`) and kubectl (over HTTP) can talk to.
//!
//! It lands with the sandbox issue; until then `patchpilot sandbox` says so and exits. The
//! API server's schema checks it will use already live in [`crate::schema`].
