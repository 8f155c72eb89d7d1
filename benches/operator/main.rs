//! What the operator costs and how fast it reacts, measured in the sandbox:
//!
//! 1. API traffic per node updated, from the audit log of a 100-node rollout ([`traffic`]);
//! 2. the time from a failing health observation to the first rollback write, at real speed
//!    ([`rollback`]);
//! 3. the size of a PatchRollout status at 5,000 targets ([`status`]);
//! 4. the delay from a notice's fact to its delivery, at real speed ([`notices`]).
//!
//! Run with `cargo bench --bench operator`; `cargo bench --bench operator -- traffic` (or
//! `rollback`, `status`, `notices`) runs one figure. Every figure is measured; none is assumed.

mod notices;
mod rollback;
mod status;
mod traffic;

use std::{
    io::Write,
    path::Path,
    sync::{Arc, Mutex},
    time::Instant,
};

use jiff::Timestamp;
use patchpilot::sandbox::{
    Options, Sandbox,
    apiserver::Audit,
    run::OPERATOR_USER,
    scenario::Scenario,
    store::{Filter, Store, WatchFrom},
};
use serde_json::Value;
use tokio::{sync::Notify, task::JoinHandle};

/// One audit line with the real instant it was written (when the request completed).
pub struct Line {
    /// When the API server wrote it.
    pub at: Instant,
    /// The audit event.
    pub text: String,
}

/// An audit log kept in memory, each line stamped with the real instant it was written.
/// Lines containing `watch_for` wake whoever waits on `seen`.
#[derive(Clone)]
pub struct Capture {
    inner: Arc<Mutex<(Vec<u8>, Vec<Line>)>>,
    watch_for: Option<&'static str>,
    /// Notified when a line with `watch_for` arrives.
    pub seen: Arc<Notify>,
}

impl Capture {
    /// A capture that wakes `seen` on lines containing `watch_for`.
    pub fn new(watch_for: Option<&'static str>) -> Self {
        Capture {
            inner: Arc::default(),
            watch_for,
            seen: Arc::new(Notify::new()),
        }
    }

    /// The lines so far.
    pub fn take(&self) -> Vec<Line> {
        std::mem::take(&mut self.inner.lock().unwrap().1)
    }
}

impl Write for Capture {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let at = Instant::now();
        let mut inner = self.inner.lock().unwrap();
        inner.0.extend_from_slice(bytes);
        while let Some(end) = inner.0.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = inner.0.drain(..=end).collect();
            let text = String::from_utf8_lossy(&line[..end]).into_owned();
            if self.watch_for.is_some_and(|w| text.contains(w)) {
                self.seen.notify_one();
            }
            inner.1.push(Line { at, text });
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Builds a sandbox from a scenario (multi-document YAML), its audit log going to `capture`.
pub fn sandbox(yaml: &str, capture: &Capture) -> Sandbox {
    let scenario = Scenario::parse(Path::new("bench.yaml"), yaml).expect("a valid scenario");
    let options = Options {
        audit: Some(Audit::to_writer(Box::new(capture.clone()))),
        speed: None,
        ..patchpilot::sandboxed::options()
    };
    Sandbox::new(scenario, options).expect("the sandbox builds")
}

/// The simulated cluster and the operator, running as `patchpilot sandbox` runs them (the
/// operator as its service account, with streaming lists, no leader election), without the
/// progress output.
pub struct Running {
    tasks: Vec<JoinHandle<()>>,
}

impl Running {
    /// Starts the cluster's behaviour and the operator.
    pub fn start(sandbox: &Sandbox) -> Self {
        let cluster = tokio::spawn(sandbox.cluster().run());
        let client = sandbox.client(OPERATOR_USER);
        let clock = sandbox.store().clock().clone();
        let options = patchpilot::controller::Options {
            metrics_addr: None,
            leader_election: None,
            streaming_lists: true,
            instance: "patchpilot-sandbox-1".into(),
            health_http: Some(patchpilot::controller::rollout::health::HttpClient::new(
                sandbox.network(),
            )),
        };
        let operator = tokio::spawn(async move {
            if let Err(error) =
                patchpilot::controller::run(client, clock, options, std::future::pending()).await
            {
                eprintln!("the operator stopped: {error}");
            }
        });
        Running {
            tasks: vec![cluster, operator],
        }
    }

    /// Stops both.
    pub async fn stop(self) {
        for task in self.tasks {
            task.abort();
            let _ = task.await;
        }
    }
}

/// Whether every rollout has finished (and there is one).
fn all_finished(store: &Store) -> bool {
    let Some(rollouts) = store.resource("patchpilot.dev", "v1alpha1", "patchrollouts") else {
        return false;
    };
    let items = store.list(&rollouts, &Filter::default(), 0, None).items;
    !items.is_empty()
        && items.iter().all(|r| {
            matches!(
                r["status"]["phase"].as_str(),
                Some("Succeeded" | "RolledBack" | "Failed" | "Superseded")
            )
        })
}

/// Waits until every rollout has finished or `until` (virtual time) has come; whether they
/// finished.
pub async fn wait_finished(store: &Store, until: Timestamp) -> bool {
    let rollouts = store
        .resource("patchpilot.dev", "v1alpha1", "patchrollouts")
        .expect("the sandbox serves PatchRollouts");
    let mut watch = store
        .watch(&rollouts, Filter::default(), WatchFrom::Current)
        .expect("a watch of PatchRollouts");
    loop {
        if all_finished(store) {
            return true;
        }
        let sleep = tokio::time::sleep(store.clock().sleep_for(until));
        tokio::select! {
            item = watch.rx.recv() => if item.is_none() { return false },
            () = sleep => return all_finished(store),
        }
    }
}

/// The audit events of the operator's user.
pub fn is_operator(event: &Value) -> bool {
    event["user"]["username"]
        .as_str()
        .is_some_and(|u| u.contains("patchpilot"))
}

/// Whether an audit verb writes.
pub fn is_write(verb: &str) -> bool {
    matches!(
        verb,
        "create" | "update" | "patch" | "delete" | "deletecollection"
    )
}

/// The audit event's response code.
pub fn code(event: &Value) -> u64 {
    event["responseStatus"]["code"].as_u64().unwrap_or(0)
}

/// When an audit event's request arrived (virtual time).
pub fn received(event: &Value) -> Timestamp {
    event["requestReceivedTimestamp"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .expect("audit events carry requestReceivedTimestamp")
}

/// The rollout record a write carries on a target, if any.
pub fn record(event: &Value) -> Option<Value> {
    let annotations = event["requestObject"]["metadata"]["annotations"].as_object()?;
    annotations
        .iter()
        .find(|(k, _)| k.starts_with("patch.patchpilot.dev/") && k.ends_with(".rollout"))
        .and_then(|(_, v)| serde_json::from_str::<Value>(v.as_str()?).ok())
}

/// The state of the rollout record a write carries on a target, if any.
pub fn record_state(event: &Value) -> Option<String> {
    record(event).and_then(|record| record["state"].as_str().map(str::to_owned))
}

fn main() {
    let wanted: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let runs = |name: &str| wanted.is_empty() || wanted.iter().any(|w| name.contains(w.as_str()));
    if runs("traffic") {
        let started = Instant::now();
        traffic::run();
        println!("(figure 1 took {:.1?})\n", started.elapsed());
    }
    if runs("rollback") {
        let started = Instant::now();
        rollback::run();
        println!("(figure 2 took {:.1?})\n", started.elapsed());
    }
    if runs("status") {
        let started = Instant::now();
        status::run();
        println!("(figure 3 took {:.1?})\n", started.elapsed());
    }
    if runs("notices") {
        let started = Instant::now();
        notices::run();
        println!("(figure 4 took {:.1?})", started.elapsed());
    }
}
