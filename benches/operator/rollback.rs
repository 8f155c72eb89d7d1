//! Figure 2: the time from a failing health observation to the first rollback write, with
//! the sandbox on real time (a multi-threaded runtime, the virtual clock at speed 1, as
//! `patchpilot sandbox --serve` runs it).
//!
//! Three nodes, a one-node canary, a one-second updater without reboot, `health.timeout:
//! 2s`, `health.soak: 1m`. The engine (`step::verify`) fails a target on a failing (not
//! settling) check at two moments, and each is measured:
//!
//! - **while verifying**, only at `verify_since + health.timeout`, where `verify_since` is
//!   when the updater Job finished (`status.completionTime`, as the operator reads it; no
//!   reboot is expected). The fault `unhealthyAfterPatch` makes the canary report
//!   `MemoryPressure` the moment its updater completes, so `nodeReady` fails from the start
//!   of verification; the clock starts at `completionTime + health.timeout`, mapped from the
//!   virtual clock (speed 1) to a real instant;
//! - **while soaking**, at once. A one-replica Deployment `shop/web` is pinned to the
//!   canary node, with the fault `unhealthyAfterPatch` on it. Once the rollout's status shows
//!   the canary `Soaking`, the bench changes web's image through the API (as a person
//!   would); the new pod on the canary never turns Ready and its container restarts, and
//!   from the pod status that first shows it not Ready with a restart, `podsReady` fails
//!   (a restarted pod is no longer "starting"). The clock starts when the bench's own watch
//!   of the sandbox's store received that pod status: the commit is at most that early, so
//!   the delay by this measure can only be understated by the bench's wake-up time. (The
//!   node's own conditions cannot be used: the simulated kubelet rewrites them at once.)
//!
//! The clock stops at the first operator write that belongs to the rollback: the canary's
//! lock record written with state `RollingBack` (or a rollback updater Job, whichever comes
//! first), at the real instant the API server logged it (when the request completed).

use std::{
    sync::Arc,
    time::{Duration as StdDuration, Instant},
};

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Patch, PatchParams};
use patchpilot::sandbox::{
    run::ADMIN_USER,
    store::{Filter, Store, WatchFrom, WatchItem},
};
use serde_json::{Value, json};

use super::{
    Capture, Running, code, is_operator, is_write, received, record, record_state, sandbox,
};

const REPETITIONS: usize = 5;
const HEALTH_TIMEOUT: SignedDuration = SignedDuration::from_secs(2);

/// Where the failure comes from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Variant {
    /// `unhealthyAfterPatch`: failing from the start of verification, decided at the timeout.
    Verifying,
    /// A pod on the canary fails during the soak: decided at once.
    Soaking,
}

fn scenario(variant: Variant) -> String {
    let faults = match variant {
        Variant::Verifying => {
            "  faults:\n    unhealthyAfterPatch: [Node/general-1, Node/general-2, Node/general-3]\n"
        }
        Variant::Soaking => {
            "  workloads:\n    - {namespace: shop, name: web, replicas: 1, image: \"docker.io/library/nginx:1.27.3\", nodeSelector: {kubernetes.io/hostname: general-1}}\n  faults:\n    unhealthyAfterPatch: [Deployment/shop/web]\n"
        }
    };
    format!(
        r#"apiVersion: sandbox.patchpilot.dev/v1alpha1
kind: Scenario
metadata: {{name: real-time-rollback}}
spec:
  start: "2026-11-28T00:00:00Z"
  end: {{after: 10m, rolloutsFinished: true}}
  seed: 1
  nodes:
    - {{pool: general, count: 3, zones: [zone-a, zone-b, zone-c]}}
  timings: {{podStart: 200ms, updater: 1s, reboot: 1s, podStop: 200ms}}
{faults}---
apiVersion: patchpilot.dev/v1alpha1
kind: PatchPolicy
metadata: {{name: os}}
spec:
  targets: {{nodes: {{selector: {{}}}}}}
  patch:
    version: v2
    updater:
      template: {{spec: {{containers: [{{name: upgrade, image: "docker.io/library/busybox:1.37"}}]}}}}
  strategy:
    canary: {{targets: 1, soak: 1m}}
    maxUnavailable: 1
  drain: {{timeout: 1m}}
  health:
    timeout: 2s
    soak: 1m
    checks: [{{nodeReady: {{}}}}, {{podsReady: {{}}}}]
  approval: {{mode: Automatic}}
"#
    )
}

/// One run's instants, as seconds after the failure became decidable.
struct Sample {
    canary: String,
    /// When the failure became decidable, in virtual time, and how.
    decidable: String,
    /// The write releasing the canary as Failed.
    released: Option<f64>,
    /// The reason and message it recorded.
    why: String,
    /// The status write that says `RollingBack`.
    status: Option<f64>,
    /// The first rollback write (lock record `RollingBack`, or a rollback updater Job).
    rollback: f64,
    /// The same, from the audit event's virtual `requestReceivedTimestamp`.
    rollback_virtual: f64,
    /// What that write was.
    write: String,
}

/// Waits until the rollout's status shows a target `Soaking`, then a little more, and
/// changes web's image (the pod it starts on the canary never turns Ready); the real and
/// virtual instants the bench saw that pod fail (not Ready, restarted), and its node.
async fn fail_during_soak(
    store: Arc<Store>,
    client: kube::Client,
) -> Option<(Instant, Timestamp, String)> {
    let rollouts = store.resource("patchpilot.dev", "v1alpha1", "patchrollouts")?;
    let mut watch = store
        .watch(&rollouts, Filter::default(), WatchFrom::Current)
        .ok()?;
    let node = loop {
        let soaking = store
            .list(&rollouts, &Filter::default(), 0, None)
            .items
            .iter()
            .flat_map(|r| {
                r["status"]["inProgress"]
                    .as_array()
                    .map(|a| a.to_vec())
                    .unwrap_or_default()
            })
            .find(|p| p["step"] == "Soaking")
            .and_then(|p| p["target"].as_str().map(str::to_owned));
        if let Some(target) = soaking {
            break target.strip_prefix("Node/")?.to_owned();
        }
        watch.rx.recv().await?;
    };
    tokio::time::sleep(StdDuration::from_millis(300)).await;
    let pods = store.resource("", "v1", "pods")?;
    let filter = Filter {
        namespace: Some("shop".into()),
        ..Filter::default()
    };
    let mut pod_watch = store.watch(&pods, filter, WatchFrom::Current).ok()?;
    let deployments: kube::Api<Deployment> = kube::Api::namespaced(client, "shop");
    let image = json!({"spec": {"template": {"spec": {"containers": [
        {"name": "web", "image": "docker.io/library/nginx:1.27.4"}
    ]}}}});
    deployments
        .patch("web", &PatchParams::default(), &Patch::Strategic(image))
        .await
        .ok()?;
    let failing = |pod: &patchpilot::sandbox::json::Json| {
        let status = &pod["status"]["containerStatuses"][0];
        pod["spec"]["nodeName"] == node.as_str()
            && status["ready"] != true
            && status["restartCount"].as_u64().unwrap_or(0) > 0
    };
    let mut pending = std::mem::take(&mut pod_watch.initial);
    loop {
        for item in pending.drain(..) {
            if let WatchItem::Event("ADDED" | "MODIFIED", pod) = item
                && failing(&pod)
            {
                return Some((Instant::now(), store.clock().now(), node));
            }
        }
        pending.push(pod_watch.rx.recv().await?);
    }
}

fn is_rollback_write(event: &Value) -> bool {
    let verb = event["verb"].as_str().unwrap_or("");
    let resource = event["objectRef"]["resource"].as_str().unwrap_or("");
    let ok = (200..300).contains(&code(event));
    ok && is_write(verb)
        && ((resource == "nodes" && record_state(event).as_deref() == Some("RollingBack"))
            || (resource == "jobs"
                && verb == "create"
                && event["requestObject"]["metadata"]["annotations"]["patchpilot.dev/action"]
                    == "rollback"))
}

fn once(variant: Variant) -> Result<Sample, String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let capture = Capture::new(Some("RollingBack"));
    let (store, origin, origin_virtual, injected, found) = runtime.block_on(async {
        let sandbox = sandbox(&scenario(variant), &capture);
        let store = sandbox.store().clone();
        // The virtual clock runs at speed 1 on tokio's (here real) clock: this pair maps
        // its instants to real ones.
        let origin = Instant::now();
        let origin_virtual = store.clock().now();
        let client = sandbox.client(ADMIN_USER);
        let injector = (variant == Variant::Soaking)
            .then(|| tokio::spawn(fail_during_soak(store.clone(), client)));
        let running = Running::start(&sandbox);
        let deadline = Instant::now() + StdDuration::from_secs(30);
        let mut found = false;
        while !found && Instant::now() < deadline {
            let _ =
                tokio::time::timeout(StdDuration::from_millis(200), capture.seen.notified()).await;
            found = capture_has_rollback(&capture);
        }
        running.stop().await;
        let injected = match injector {
            Some(task) if task.is_finished() => task.await.ok().flatten(),
            Some(task) => {
                task.abort();
                None
            }
            None => None,
        };
        (store, origin, origin_virtual, injected, found)
    });
    runtime.shutdown_timeout(StdDuration::from_secs(1));
    if !found {
        let nodes = store.resource("", "v1", "nodes").ok_or("no nodes")?;
        let pressure: Vec<String> = store
            .list(&nodes, &Filter::default(), 0, None)
            .items
            .iter()
            .map(|n| {
                let on = n["status"]["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|c| c["type"] == "MemoryPressure" && c["status"] == "True");
                format!("{}: {on}", n["metadata"]["name"].as_str().unwrap_or(""))
            })
            .collect();
        let rollouts = store
            .resource("patchpilot.dev", "v1alpha1", "patchrollouts")
            .ok_or("no rollouts")?;
        let status: Vec<String> = store
            .list(&rollouts, &Filter::default(), 0, None)
            .items
            .iter()
            .map(|r| format!("{} {}", r["status"]["phase"], r["status"]["inProgress"]))
            .collect();
        return Err(format!(
            "no rollback write within 30 s (failure injected: {:?}; MemoryPressure {}; rollouts {})",
            injected.map(|(_, at, node)| (at, node)),
            pressure.join(", "),
            status.join("; ")
        ));
    }
    let lines = capture.take();
    let events: Vec<(Instant, Value)> = lines
        .iter()
        .map(|l| (l.at, serde_json::from_str(&l.text).expect("JSON")))
        .filter(|(_, e)| is_operator(e))
        .collect();
    let canary = events
        .iter()
        .find(|(_, e)| {
            e["objectRef"]["resource"] == "nodes" && record_state(e).as_deref() == Some("Applying")
        })
        .and_then(|(_, e)| e["objectRef"]["name"].as_str().map(str::to_owned))
        .ok_or("no node was locked")?;
    // When the failure became decidable: real and virtual.
    let (start, start_virtual, decidable) = match variant {
        Variant::Verifying => {
            let job = events
                .iter()
                .map(|(_, e)| &e["requestObject"])
                .find(|j| {
                    j["kind"] == "Job"
                        && j["metadata"]["annotations"]["patchpilot.dev/target"]
                            == format!("Node/{canary}")
                        && j["metadata"]["annotations"]["patchpilot.dev/action"] == "apply"
                })
                .and_then(|j| j["metadata"]["name"].as_str().map(str::to_owned))
                .ok_or("no updater Job for the canary")?;
            let jobs = store.resource("batch", "v1", "jobs").ok_or("no jobs")?;
            let job = store
                .get(&jobs, "patchpilot-system", &job)
                .map_err(|e| e.message)?;
            let completed: Timestamp = job["status"]["completionTime"]
                .as_str()
                .and_then(|t| t.parse().ok())
                .ok_or("the updater Job has no completionTime")?;
            let decidable = completed.saturating_add(HEALTH_TIMEOUT).unwrap();
            let offset = decidable.duration_since(origin_virtual);
            let start = match offset.is_negative() {
                false => origin + offset.unsigned_abs(),
                true => origin - offset.unsigned_abs(),
            };
            let how = format!("updater completed {completed}, decidable {decidable}");
            (start, decidable, how)
        }
        Variant::Soaking => {
            let (at, virtual_at, node) = injected.ok_or("the failure was not injected")?;
            if node != canary {
                return Err(format!("injected on {node}, not on the canary {canary}"));
            }
            let how = format!("web's new pod not Ready and restarted at {virtual_at}");
            (at, virtual_at, how)
        }
    };
    let after = |at: Instant| match at.checked_duration_since(start) {
        Some(d) => d.as_secs_f64(),
        None => -start.duration_since(at).as_secs_f64(),
    };
    let first = |wanted: &dyn Fn(&Value) -> bool| {
        events
            .iter()
            .find(|(_, e)| wanted(e) && (200..300).contains(&code(e)))
            .map(|(at, e)| (*at, e))
    };
    let release = first(&|e| {
        e["objectRef"]["resource"] == "nodes" && record_state(e).as_deref() == Some("Failed")
    });
    let released = release.map(|(at, _)| after(at));
    let why = release
        .and_then(|(_, e)| record(e))
        .map(|r| {
            format!(
                "{}: {}",
                r["reason"].as_str().unwrap_or(""),
                r["message"].as_str().unwrap_or("")
            )
        })
        .unwrap_or_default();
    let status = first(&|e| {
        e["objectRef"]["subresource"] == "status"
            && e["requestObject"]["status"]["phase"] == "RollingBack"
    })
    .map(|(at, _)| after(at));
    let (at, write) = first(&is_rollback_write).ok_or("no rollback write in the log")?;
    Ok(Sample {
        canary,
        decidable,
        released,
        why,
        status,
        rollback: after(at),
        rollback_virtual: received(write).duration_since(start_virtual).as_secs_f64(),
        write: format!(
            "{} {}",
            write["verb"].as_str().unwrap_or(""),
            write["requestURI"].as_str().unwrap_or("")
        ),
    })
}

fn capture_has_rollback(capture: &Capture) -> bool {
    // Copy the candidate lines out first: the API server waits on this lock to log.
    let candidates: Vec<String> = {
        let inner = capture.inner.lock().unwrap();
        inner
            .1
            .iter()
            .filter(|l| {
                l.text.contains("RollingBack")
                    || l.text.contains("\"patchpilot.dev/action\":\"rollback\"")
            })
            .map(|l| l.text.clone())
            .collect()
    };
    candidates.iter().any(|text| {
        serde_json::from_str::<Value>(text).is_ok_and(|e| is_operator(&e) && is_rollback_write(&e))
    })
}

fn ms(seconds: Option<f64>) -> String {
    seconds.map_or("-".into(), |s| format!("{:+.1} ms", s * 1000.0))
}

fn measure(variant: Variant, title: &str) {
    println!("-- {title} ({REPETITIONS} runs)");
    let mut latencies = Vec::new();
    for repetition in 1..=REPETITIONS {
        match once(variant) {
            Ok(s) => {
                println!(
                    "run {repetition}: canary {}, {}; released as Failed {} ({}), status RollingBack {}, \
                     first rollback write {} (by the audit timestamp: {}): {}",
                    s.canary,
                    s.decidable,
                    ms(s.released),
                    s.why,
                    ms(s.status),
                    ms(Some(s.rollback)),
                    ms(Some(s.rollback_virtual)),
                    s.write
                );
                latencies.push(s.rollback);
            }
            Err(e) => println!("run {repetition}: FAILED: {e}"),
        }
    }
    if latencies.is_empty() {
        println!("no measurement");
        return;
    }
    latencies.sort_by(f64::total_cmp);
    let median = latencies[latencies.len() / 2];
    let max = latencies[latencies.len() - 1];
    println!(
        "{title}: failing health -> first rollback write: median {:.1} ms, max {:.1} ms, min {:.1} ms ({} runs); target under 1 s: {}",
        median * 1000.0,
        max * 1000.0,
        latencies[0] * 1000.0,
        latencies.len(),
        if max < 1.0 && latencies.len() == REPETITIONS {
            "MET"
        } else {
            "NOT MET"
        }
    );
}

pub fn run() {
    println!("== 2. Failing health to first rollback write, real time ==");
    measure(
        Variant::Verifying,
        "failing while verifying, decided at health.timeout",
    );
    measure(
        Variant::Soaking,
        "failing during the soak (a pod on the canary), decided at once",
    );
}
