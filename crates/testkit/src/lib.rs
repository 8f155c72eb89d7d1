//! What the tests and benchmarks share: the invariants judged from an audit log ([`audit`],
//! on the sandbox's log and a real API server's), the broken examples an API server must
//! refuse ([`refusals`]), the API conformance tests run against the sandbox and a real API
//! server ([`conformance`]), the operator's requests per target read from an audit log
//! ([`trace`]), polling a cluster until it gets somewhere ([`poll`]), running the binary ([`cli`]), the chart ([`chart`]) and the
//! repository's files ([`repo`]).
//!
//! The builders of policies, rollouts, windows and fleets are the engine's own test kit
//! (`patchpilot_engine::testkit`, feature `testkit`).

pub mod audit;
pub mod chart;
pub mod cli;
pub mod conformance;
pub mod poll;
pub mod receiver;
pub mod refusals;
pub mod repo;
pub mod trace;
