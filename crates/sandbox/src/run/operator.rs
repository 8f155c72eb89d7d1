//! The operator a sandbox hosts: its replicas, restarted when the scenario says so and after
//! a back-off whenever one exits on its own.

use std::sync::Arc;

use jiff::Timestamp;

use super::{OPERATOR_USER, say};
use crate::Sandbox;

/// One replica of the operator the sandbox hosts, as a pod of its Deployment would be: the
/// program runs against [`Replica::sandbox`] with a client acting as [`OPERATOR_USER`].
pub struct Replica {
    /// The sandbox it runs in.
    pub sandbox: Arc<Sandbox>,
    /// Its name, as its pod's: `patchpilot-sandbox-<generation>-<replica>`.
    pub instance: String,
    /// How many replicas run at once (the scenario's `operator.replicas`); more than one
    /// take turns through leader election.
    pub replicas: u32,
    /// Whether it should watch with streaming lists (the scenario's
    /// `operator.streamingLists`).
    pub streaming_lists: bool,
}

/// The operator a sandbox hosts: runs one replica until it exits on its own (`Ok`) or
/// fails (`Err`, saying why). The sandbox knows nothing else of it: the binary that puts
/// the two together provides it.
pub type Operator =
    Arc<dyn Fn(Replica) -> futures::future::BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// The first pause before an exited operator replica starts again, as a kubelet's
/// CrashLoopBackOff: it doubles after each exit up to [`RESTART_BACKOFF_MAX`], and starts
/// over once a replica has run for [`RESTART_BACKOFF_RESET`].
pub const RESTART_BACKOFF: jiff::SignedDuration = jiff::SignedDuration::from_secs(10);
/// The longest pause before an exited replica starts again.
pub const RESTART_BACKOFF_MAX: jiff::SignedDuration = jiff::SignedDuration::from_mins(5);
/// A replica that ran this long starts again after the first back-off.
pub const RESTART_BACKOFF_RESET: jiff::SignedDuration = jiff::SignedDuration::from_mins(10);

/// Runs the operator against the sandbox, as its own user, restarting it when the scenario
/// says: at given instants, or after every so many of its writes. Each replica that exits
/// on its own (it lost its Lease, say) starts again after a back-off, as a Deployment's pod
/// would, so that a scenario never ends up without an operator.
pub(super) async fn run(sandbox: Arc<Sandbox>, program: Operator) {
    let store = sandbox.store().clone();
    let restarts = sandbox
        .scenario()
        .spec
        .faults
        .operator_restarts
        .clone()
        .unwrap_or_default();
    let mut instants: Vec<Timestamp> = restarts.at.clone();
    instants.sort();
    let mut writes = sandbox.server().count_writes(OPERATOR_USER);
    let every_writes = restarts.every_writes.filter(|n| *n > 0);
    let mut generation = 0;
    let spec = sandbox.scenario().spec.operator.clone();
    let replicas = spec.replicas.max(1);
    loop {
        generation += 1;
        let tasks: Vec<_> = (1..=replicas)
            .map(|replica| {
                let instance = format!("patchpilot-sandbox-{generation}-{replica}");
                tokio::spawn(replica_until_stopped(
                    sandbox.clone(),
                    program.clone(),
                    instance,
                    replicas,
                    spec.streaming_lists,
                ))
            })
            .collect();
        // Wait for the next restart, if any.
        let now = store.clock().now();
        instants.retain(|at| *at > now);
        let at = instants.first().copied();
        let by_time = async {
            match at {
                Some(at) => tokio::time::sleep(store.clock().sleep_for(at)).await,
                None => std::future::pending().await,
            }
        };
        let by_writes = async {
            match every_writes {
                Some(every) => {
                    let target = *writes.borrow() + every;
                    let _ = writes.wait_for(|n| *n >= target).await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = by_time => {}
            () = by_writes => {}
        }
        for task in tasks {
            task.abort();
            let _ = task.await;
        }
        say(
            &store,
            &format!("the operator restarts (restart {generation})"),
        );
    }
}

/// Runs one operator replica, and again after a back-off each time it exits on its own, as
/// the same pod's container restarted by its kubelet (same name, so the same identity in
/// leader election).
async fn replica_until_stopped(
    sandbox: Arc<Sandbox>,
    program: Operator,
    instance: String,
    replicas: u32,
    streaming_lists: bool,
) {
    let store = sandbox.store();
    let clock = store.clock().clone();
    let mut backoff = RESTART_BACKOFF;
    loop {
        let started = clock.now();
        let outcome = program(Replica {
            sandbox: sandbox.clone(),
            instance: instance.clone(),
            replicas,
            streaming_lists,
        })
        .await;
        let exited = clock.now();
        if exited.duration_since(started) >= RESTART_BACKOFF_RESET {
            backoff = RESTART_BACKOFF;
        }
        let why = match outcome {
            Ok(()) => String::new(),
            Err(error) => {
                tracing::error!(%error, "the operator stopped");
                format!(" ({error})")
            }
        };
        say(
            store,
            &format!(
                "operator replica {} exited{why}; it starts again in {}",
                instance,
                jiff::Span::try_from(backoff)
                    .map(|s| format!("{s:#}"))
                    .unwrap_or_else(|_| format!("{backoff:?}"))
            ),
        );
        let at = exited.saturating_add(backoff).unwrap_or(Timestamp::MAX);
        tokio::time::sleep(clock.sleep_for(at)).await;
        say(
            store,
            &format!("operator replica {} starts again", instance),
        );
        backoff = (backoff * 2).min(RESTART_BACKOFF_MAX);
    }
}
