//! Running a sandbox: the cluster's behaviour, the scenario's steps (`steps`), the hosted
//! operator (`operator`), progress output, the end condition, serving over HTTP, and the
//! final report.

mod operator;
mod progress;
mod steps;

use std::{collections::BTreeMap, io::Write as _, net::SocketAddr, path::PathBuf, sync::Arc};

use jiff::Timestamp;
use serde_json::{Value, json};
use tokio::net::TcpListener;

pub use operator::{
    Operator, RESTART_BACKOFF, RESTART_BACKOFF_MAX, RESTART_BACKOFF_RESET, Replica,
};
pub use progress::{Lines, stamp, summary};

use super::{
    Sandbox,
    apiserver::serve,
    store::{Filter, WatchFrom},
};
use crate::json::Json;
use crate::store::Store;

/// The user of people's kubectl against a served sandbox.
pub const ADMIN_USER: &str = "sandbox-admin";
/// The user the operator acts as.
pub const OPERATOR_USER: &str = "system:serviceaccount:patchpilot-system:patchpilot";

/// The bearer tokens of a served sandbox and the users they stand for.
pub fn tokens() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("sandbox-admin".to_owned(), ADMIN_USER.to_owned()),
        ("patchpilot-operator".to_owned(), OPERATOR_USER.to_owned()),
    ])
}

/// A kubeconfig for a sandbox served at `address`: context `sandbox` for people (the
/// current one) and `patchpilot` for the operator.
pub fn kubeconfig(address: SocketAddr) -> String {
    format!(
        "apiVersion: v1
kind: Config
clusters:
  - name: sandbox
    cluster:
      server: http://{address}
users:
  - name: sandbox-admin
    user:
      token: sandbox-admin
  - name: patchpilot
    user:
      token: patchpilot-operator
contexts:
  - name: sandbox
    context: {{cluster: sandbox, user: sandbox-admin, namespace: default}}
  - name: patchpilot
    context: {{cluster: sandbox, user: patchpilot}}
current-context: sandbox
"
    )
}

/// How a run goes.
pub struct RunOptions {
    /// Serve over HTTP here and keep running.
    pub serve: Option<SocketAddr>,
    /// Where to write the kubeconfig when serving.
    pub kubeconfig_out: Option<PathBuf>,
    /// Where to write the report.
    pub report: Option<PathBuf>,
    /// The operator to run in the sandbox, if any.
    pub operator: Option<Operator>,
    /// Tell each target's story too: the events the operator records on it.
    pub verbose: bool,
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The address could not be bound.
    #[error("--serve {address}: {source}")]
    Bind {
        /// The address.
        address: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file could not be written.
    #[error("{path}: cannot write: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Prints a progress line stamped with the sandbox's time, as [`stamp`] writes it.
fn say(store: &Store, line: &str) {
    say_at(store.clock().now(), line);
}

/// Prints a progress line stamped with the instant `at`, as [`stamp`] writes it.
fn say_at(at: Timestamp, line: &str) {
    let at = stamp(at);
    let mut out = std::io::stdout().lock();
    // Progress output is best effort: a closed pipe must not stop the simulation.
    let _ = writeln!(out, "[{at}] {line}");
}

/// Runs the sandbox: to its end condition, or serving until Ctrl-C.
pub async fn run(sandbox: Sandbox, options: RunOptions) -> Result<Value, RunError> {
    let sandbox = Arc::new(sandbox);
    let store = sandbox.store().clone();
    let nodes = store
        .all(&super::resources::ResourceKey {
            group: String::new(),
            plural: "nodes".into(),
        })
        .len();
    say(
        &store,
        &format!(
            "sandbox {}: {nodes} nodes; the simulated cluster starts",
            sandbox.scenario().name
        ),
    );
    let cluster = tokio::spawn(sandbox.cluster().run());
    for step in sandbox.scenario().spec.steps.clone() {
        tokio::spawn(steps::run_step(sandbox.clone(), step));
    }
    let progress = tokio::spawn(progress::follow(
        store.clone(),
        sandbox.receivers().subscribe(),
        options.verbose,
    ));
    let operator = options
        .operator
        .clone()
        .map(|program| tokio::spawn(operator::run(sandbox.clone(), program)));
    let report = match options.serve {
        Some(address) => {
            let listener = TcpListener::bind(address)
                .await
                .map_err(|source| RunError::Bind { address, source })?;
            let bound = listener.local_addr().unwrap_or(address);
            tokio::spawn(serve(sandbox.server().clone(), listener, tokens()));
            if let Some(path) = &options.kubeconfig_out {
                std::fs::write(path, kubeconfig(bound)).map_err(|source| RunError::Write {
                    path: path.clone(),
                    source,
                })?;
                say(
                    &store,
                    &format!(
                        "serving on http://{bound}; try: kubectl --kubeconfig {} get nodes,patchpilot",
                        path.display()
                    ),
                );
                if options.operator.is_none() {
                    say(
                        &store,
                        &format!(
                            "start the operator as its own user with: KUBECONFIG={} patchpilot run --context patchpilot",
                            path.display()
                        ),
                    );
                }
            }
            say(&store, "press Ctrl-C to stop");
            let _ = tokio::signal::ctrl_c().await;
            report(&store)
        }
        None => {
            wait_for_end(&sandbox).await;
            report(&store)
        }
    };
    cluster.abort();
    progress.abort();
    if let Some(operator) = operator {
        operator.abort();
    }
    if let Some(path) = &options.report {
        let text = serde_json::to_string_pretty(&report).unwrap_or_default() + "\n";
        std::fs::write(path, text).map_err(|source| RunError::Write {
            path: path.clone(),
            source,
        })?;
    }
    say(&store, "the sandbox stops");
    say(&store, &summary(&report));
    Ok(report)
}

fn rollouts_resource(store: &Store) -> Option<Arc<super::resources::ResourceType>> {
    store.resource("patchpilot.dev", "v1alpha1", "patchrollouts")
}

/// Waits until every rollout has finished (if the scenario asks for that and there is at
/// least one) or the scenario's time is up.
async fn wait_for_end(sandbox: &Sandbox) {
    let store = sandbox.store();
    let spec = &sandbox.scenario().spec;
    let deadline = store
        .clock()
        .now()
        .saturating_add(spec.end.after.signed())
        .unwrap_or(Timestamp::MAX);
    let Some(rollouts) = rollouts_resource(store) else {
        return;
    };
    let Ok(mut watch) = store.watch(&rollouts, Filter::default(), WatchFrom::Current) else {
        return;
    };
    let notifiers = store.resource("patchpilot.dev", "v1alpha1", "notifiers");
    let mut deliveries = notifiers
        .as_ref()
        .and_then(|n| store.watch(n, Filter::default(), WatchFrom::Current).ok());
    loop {
        let listed = store.list(&rollouts, &Filter::default(), 0, None).items;
        if spec.end.rollouts_finished && all_finished(&listed) && all_told(store, &listed) {
            // What the operator does after its last write (the events of its last decision,
            // the last notice) lands before the end: under paused time this sleep ends only
            // once every task is idle.
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            say(store, "every rollout has finished");
            return;
        }
        let delivered = async {
            match deliveries.as_mut() {
                Some(watch) => watch.rx.recv().await,
                None => std::future::pending().await,
            }
        };
        let sleep = tokio::time::sleep(store.clock().sleep_for(deadline));
        tokio::select! {
            item = watch.rx.recv() => if item.is_none() { return },
            _ = delivered => {}
            () = sleep => {
                say(store, &format!("the scenario's time is up ({})", spec.end.after));
                return;
            }
        }
    }
}

fn all_finished(rollouts: &[Arc<Json>]) -> bool {
    !rollouts.is_empty()
        && rollouts.iter().all(|r| {
            matches!(
                r["status"]["phase"].as_str(),
                Some("Succeeded" | "RolledBack" | "Failed" | "Superseded")
            )
        })
}

/// Whether every notice of `rollouts` went out: each Notifier their policy names, that
/// exists and is not failing, has delivered up to the rollout's last notice (a run does not
/// end with the outcome's notice still on its way; a destination that is down does not hold
/// it up).
fn all_told(store: &Store, rollouts: &[Arc<Json>]) -> bool {
    let list = |plural: &str| {
        store
            .resource("patchpilot.dev", "v1alpha1", plural)
            .map(|r| store.list(&r, &Filter::default(), 0, None).items)
            .unwrap_or_default()
    };
    let (policies, notifiers) = (list("patchpolicies"), list("notifiers"));
    rollouts.iter().all(|rollout| {
        let name = rollout["metadata"]["name"].as_str().unwrap_or_default();
        let Some(last) = rollout["status"]["notifications"]["notices"]
            .as_array()
            .and_then(|n| n.last())
        else {
            return true;
        };
        let named = policies
            .iter()
            .find(|p| p["metadata"]["name"] == rollout["spec"]["policy"])
            .and_then(|p| {
                p["spec"]["notifications"]["notifiers"]
                    .as_array()
                    .map(|n| n.iter().cloned().collect::<Vec<Json>>())
            })
            .unwrap_or_default();
        notifiers
            .iter()
            .filter(|n| named.contains(&n["metadata"]["name"]))
            .filter(|n| n["status"]["failing"].is_null())
            .filter(|n| {
                // A notifier is owed only what came after its creation.
                n["metadata"]["creationTimestamp"].as_str() <= last["time"].as_str()
            })
            .all(|n| {
                n["status"]["delivered"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|d| d["rollout"] == name && d["through"].as_u64() >= last["seq"].as_u64())
            })
    })
}

/// The report: each rollout's final phase and target counts.
pub fn report(store: &Store) -> Value {
    let rollouts = rollouts_resource(store)
        .map(|r| store.list(&r, &Filter::default(), 0, None).items)
        .unwrap_or_default();
    let rollouts: Vec<Value> = rollouts
        .iter()
        .map(|r| {
            json!({
                "name": r["metadata"]["name"],
                "policy": r["spec"]["policy"],
                "phase": r["status"]["phase"].as_str().unwrap_or("Pending"),
                "targets": r["status"]["targets"].clone(),
            })
        })
        .collect();
    json!({"rollouts": rollouts})
}
