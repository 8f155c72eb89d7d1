//! Scenario tests of the operator: each runs a scenario in the sandbox with the operator and
//! checks the outcome from the API state and the audit log, not from the operator's own
//! counters. Every test also replays the audit log against the invariants of SPEC 3 (see
//! [`harness`]).

mod case;
mod harness;

mod approval;
mod concurrency;
mod drain;
mod events;
mod examples;
mod failures;
mod history;
mod hostile;
mod lifecycle;
mod notifications;
mod operator;
mod resilience;
mod safety;
mod sandbox;
mod status;
mod windows;
mod workloads;
