//! Running a sandbox: the cluster's behaviour, the scenario's steps, progress output, the
//! end condition, serving over HTTP, and the final report.

use std::{collections::BTreeMap, io::Write as _, net::SocketAddr, path::PathBuf, sync::Arc};

use jiff::Timestamp;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use super::{
    SCENARIO_USER, Sandbox,
    apiserver::{Request, serve},
    scenario::{Selection, Step},
    store::{Filter, WatchFrom, WatchItem},
};
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

/// Prints a progress line stamped with the sandbox's time.
fn say(store: &Store, line: &str) {
    let at = store.clock().now().strftime("%Y-%m-%d %H:%M:%S");
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
        tokio::spawn(run_step(sandbox.clone(), step));
    }
    let progress = tokio::spawn(progress(store.clone()));
    let operator = options
        .operator
        .clone()
        .map(|program| tokio::spawn(operator(sandbox.clone(), program)));
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
    Ok(report)
}

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
async fn operator(sandbox: Arc<Sandbox>, program: Operator) {
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
    loop {
        if spec.end.rollouts_finished
            && all_finished(&store.list(&rollouts, &Filter::default(), 0, None).items)
        {
            say(store, "every rollout has finished");
            return;
        }
        let sleep = tokio::time::sleep(store.clock().sleep_for(deadline));
        tokio::select! {
            item = watch.rx.recv() => if item.is_none() { return },
            () = sleep => {
                say(store, &format!("the scenario's time is up ({})", spec.end.after));
                return;
            }
        }
    }
}

fn all_finished(rollouts: &[Arc<Value>]) -> bool {
    !rollouts.is_empty()
        && rollouts.iter().all(|r| {
            matches!(
                r["status"]["phase"].as_str(),
                Some("Succeeded" | "RolledBack" | "Failed" | "Superseded")
            )
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

/// Prints rollout changes as they happen.
async fn progress(store: Arc<Store>) {
    let (rollouts, windows) = (
        rollouts_resource(&store),
        store.resource("patchpilot.dev", "v1alpha1", "maintenancewindows"),
    );
    let watch = |resource: Option<Arc<super::resources::ResourceType>>| {
        resource.and_then(|r| store.watch(&r, Filter::default(), WatchFrom::Current).ok())
    };
    let (Some(mut rollouts), Some(mut windows)) = (watch(rollouts), watch(windows)) else {
        return;
    };
    let mut last: BTreeMap<String, String> = BTreeMap::new();
    let mut pending: Vec<WatchItem> = std::mem::take(&mut rollouts.initial);
    pending.append(&mut windows.initial);
    loop {
        for item in pending.drain(..) {
            let WatchItem::Event(kind, object) = item else {
                continue;
            };
            let key = format!(
                "{}/{}",
                object["kind"].as_str().unwrap_or(""),
                object["metadata"]["name"].as_str().unwrap_or("")
            );
            if kind == "DELETED" {
                last.remove(&key);
                continue;
            }
            let line = match object["kind"].as_str() {
                Some("MaintenanceWindow") => window_line(&object),
                _ => rollout_line(&object),
            };
            if let Some(line) = line
                && last.get(&key) != Some(&line)
            {
                say(&store, &line);
                last.insert(key, line);
            }
        }
        let next = tokio::select! {
            item = rollouts.rx.recv() => item,
            item = windows.rx.recv() => item,
        };
        match next {
            Some(item) => pending.push(item),
            None => return,
        }
    }
}

/// One line on a rollout: phase, wave, progress, and why it halted.
fn rollout_line(rollout: &Value) -> Option<String> {
    let status = &rollout["status"];
    let wave = match status["wave"]["name"].as_str() {
        Some(w) => format!(
            ", wave {w} ({}/{})",
            status["wave"]["index"], status["wave"]["total"]
        ),
        None => String::new(),
    };
    let failed = match status["targets"]["failed"].as_u64() {
        Some(failed) if failed > 0 => format!(", {failed} failed"),
        _ => String::new(),
    };
    let why = match (status["halt"]["reason"].as_str(), status["failures"].get(0)) {
        (Some(halt), Some(failure)) => format!(
            " ({halt}: {} {}: {})",
            failure["target"].as_str().unwrap_or(""),
            failure["reason"].as_str().unwrap_or(""),
            failure["message"].as_str().unwrap_or("")
        ),
        (Some(halt), None) => format!(" ({halt})"),
        (None, _) => String::new(),
    };
    Some(format!(
        "rollout {} ({}): {}{wave}, {} updated{failed}{why}",
        rollout["metadata"]["name"].as_str().unwrap_or(""),
        rollout["spec"]["policy"].as_str().unwrap_or(""),
        status["phase"].as_str().unwrap_or("Pending"),
        status["progress"].as_str().unwrap_or("0/0"),
    ))
}

/// One line on a maintenance window, once the operator has said whether it is open.
fn window_line(window: &Value) -> Option<String> {
    let status = &window["status"];
    let name = window["metadata"]["name"].as_str().unwrap_or("");
    match status["open"].as_bool()? {
        true => Some(format!(
            "maintenance window {name} opens, until {}",
            status["currentWindow"]["end"].as_str().unwrap_or("?")
        )),
        false => Some(format!(
            "maintenance window {name} is closed; next opening {}",
            status["nextWindow"]["start"].as_str().unwrap_or("none")
        )),
    }
}

/// Carries out one step, once: after its delay, as soon as any object it selects is in the
/// wanted state, merges its patch into every object selected at that moment, through the API
/// as the scenario's user, and is done. Objects that match later (a newer rollout awaiting
/// approval) are left alone, as a person who approved one rollout has not approved the next.
async fn run_step(sandbox: Arc<Sandbox>, step: Step) {
    let store = sandbox.store();
    if let Some(after) = step.after {
        let at = store
            .clock()
            .now()
            .saturating_add(after.signed())
            .unwrap_or(Timestamp::MAX);
        tokio::time::sleep(store.clock().sleep_for(at)).await;
    }
    let selection = &step.when;
    let Some(resource) = store.resource_of(&selection.api_version, &selection.kind) else {
        say(
            store,
            &format!(
                "step {:?}: the sandbox does not serve {} {}",
                step.name, selection.api_version, selection.kind
            ),
        );
        return;
    };
    let filter = Filter {
        namespace: selection.namespace.clone(),
        ..Filter::default()
    };
    let Ok(mut watch) = store.watch(&resource, filter, WatchFrom::Current) else {
        return;
    };
    // The objects as the watch has shown them so far, by namespace and name.
    let mut seen: BTreeMap<(String, String), Arc<Value>> = BTreeMap::new();
    let mut pending = std::mem::take(&mut watch.initial);
    let matched = loop {
        for item in pending.drain(..) {
            let WatchItem::Event(kind, object) = item else {
                continue;
            };
            let key = (
                object["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned(),
                object["metadata"]["name"].as_str().unwrap_or("").to_owned(),
            );
            match kind {
                "DELETED" => seen.remove(&key),
                _ => seen.insert(key, object),
            };
        }
        let matched: Vec<(String, String)> = seen
            .iter()
            .filter(|(_, object)| selected(object, selection))
            .map(|(key, _)| key.clone())
            .collect();
        if !matched.is_empty() {
            break matched;
        }
        match watch.rx.recv().await {
            Some(item) => pending.push(item),
            None => return,
        }
    };
    drop(watch);
    for (namespace, name) in matched {
        let base = prefix(&resource.group, &resource.version);
        let path = match resource.namespaced {
            true => format!("{base}/namespaces/{namespace}/{}/{name}", resource.plural),
            false => format!("{base}/{}/{name}", resource.plural),
        };
        let request = http::Request::builder()
            .method(http::Method::PATCH)
            .uri(&path)
            .header(http::header::CONTENT_TYPE, "application/merge-patch+json")
            .header(http::header::USER_AGENT, "sandbox-scenario")
            .body(())
            .map(|r| r.into_parts().0);
        let Ok(parts) = request else { continue };
        let response = sandbox
            .server()
            .handle(Request::new(
                SCENARIO_USER,
                parts,
                step.patch.to_string().into(),
            ))
            .await;
        let outcome = if response.status().is_success() {
            "done".to_owned()
        } else {
            format!("failed ({})", response.status())
        };
        say(
            store,
            &format!(
                "step {:?} on {} {name}: {outcome}",
                step.name, selection.kind
            ),
        );
    }
}

fn prefix(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("/api/{version}")
    } else {
        format!("/apis/{group}/{version}")
    }
}

/// Whether an object is the one a step waits for.
fn selected(object: &Value, selection: &Selection) -> bool {
    let labels = &object["metadata"]["labels"];
    let labels_match = selection
        .labels
        .iter()
        .all(|(k, v)| labels[k].as_str() == Some(v.as_str()));
    let field_matches = match (&selection.field, &selection.equals) {
        (Some(field), Some(expected)) => {
            field.split('.').try_fold(object, |v, part| v.get(part)) == Some(expected)
        }
        _ => true,
    };
    labels_match && field_matches
}
