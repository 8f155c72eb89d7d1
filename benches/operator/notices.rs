//! Figure 4: the delay from a notice's fact to its delivery, with the sandbox on real time
//! (a multi-threaded runtime, the virtual clock at speed 1, as `patchpilot sandbox --serve`
//! runs it).
//!
//! Three nodes, a one-node canary, a one-second updater without reboot, a short soak; the
//! policy's notices go to a webhook Notifier whose address is the sandbox's receiver `chat`.
//! For each notice the clock starts when the API server logged the rollout's status write
//! that first carried it (the engine decides a notice in the same write as its fact) and
//! stops when the receiver got it (a subscription to the receiver, stamped on arrival).

use std::{
    collections::BTreeMap,
    time::{Duration as StdDuration, Instant},
};

use serde_json::Value;

use super::{Capture, Running, is_operator, sandbox};

const SCENARIO: &str = "
apiVersion: sandbox.patchpilot.dev/v1alpha1
kind: Scenario
metadata: {name: notices}
spec:
  start: '2026-11-28T00:00:00Z'
  end: {after: 1h}
  nodes: [{pool: general, count: 3, zones: [zone-a]}]
  timings: {podStart: 1s, updater: 1s}
  receivers: [{name: chat}]
---
apiVersion: v1
kind: Secret
metadata: {name: chat, namespace: patchpilot-system}
stringData: {address: 'http://chat.receiver.sandbox/hook'}
---
apiVersion: patchpilot.dev/v1alpha1
kind: Notifier
metadata: {name: chat}
spec: {type: Webhook, secretRef: {name: chat}}
---
apiVersion: patchpilot.dev/v1alpha1
kind: PatchPolicy
metadata: {name: os}
spec:
  targets: {nodes: {}}
  patch:
    version: v2
    updater: {template: {spec: {containers: [{name: u, image: 'u:1'}]}}}
  strategy: {canary: {targets: 1}, maxUnavailable: 1}
  drain: {timeout: 1m}
  health: {timeout: 1m, soak: 1s, checks: [{nodeReady: {}}]}
  approval: {mode: Automatic}
  notifications: {notifiers: [chat]}
";

/// The notices a status write carries: `<rollout>/<seq>`.
fn notices_in(event: &Value) -> Vec<String> {
    let rollout = event["objectRef"]["name"].as_str().unwrap_or_default();
    event["requestObject"]["status"]["notifications"]["notices"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n["seq"].as_u64())
        .map(|seq| format!("{rollout}/{seq}"))
        .collect()
}

/// Runs the scenario once: the delay of each notice, in order.
fn once() -> Result<Vec<(String, f64)>, String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let capture = Capture::new(None);
    let arrivals = runtime.block_on(async {
        let sandbox = sandbox(SCENARIO, &capture);
        let mut told = sandbox.receivers().subscribe();
        let running = Running::start(&sandbox);
        let mut arrivals: Vec<(String, Instant)> = Vec::new();
        let deadline = Instant::now() + StdDuration::from_secs(60);
        while Instant::now() < deadline {
            let Ok(Ok(received)) =
                tokio::time::timeout(StdDuration::from_secs(5), told.recv()).await
            else {
                continue;
            };
            let at = Instant::now();
            let id = received.body["id"].as_str().unwrap_or_default().to_owned();
            let kind = received.body["kind"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            arrivals.push((id, at));
            if kind == "Succeeded" {
                break;
            }
        }
        running.stop().await;
        arrivals
    });
    runtime.shutdown_timeout(StdDuration::from_secs(1));
    let mut first_written: BTreeMap<String, Instant> = BTreeMap::new();
    for line in capture.take() {
        let Ok(event) = serde_json::from_str::<Value>(&line.text) else {
            continue;
        };
        if !is_operator(&event)
            || event["objectRef"]["resource"] != "patchrollouts"
            || event["objectRef"]["subresource"] != "status"
        {
            continue;
        }
        for id in notices_in(&event) {
            first_written.entry(id).or_insert(line.at);
        }
    }
    if !arrivals.iter().any(|(id, _)| id.ends_with("/1")) {
        return Err(format!("no notice arrived: {arrivals:?}"));
    }
    arrivals
        .iter()
        .map(|(id, at)| {
            let written = first_written
                .get(id)
                .ok_or_else(|| format!("{id} arrived but no status write carried it"))?;
            Ok((id.clone(), at.duration_since(*written).as_secs_f64()))
        })
        .collect()
}

/// Prints figure 4.
pub fn run() {
    println!("Figure 4: delay from a notice's fact to its delivery (real time, 3 runs)");
    let mut all = Vec::new();
    for run in 1..=3 {
        match once() {
            Ok(delays) => {
                let shown: Vec<String> = delays
                    .iter()
                    .map(|(id, d)| format!("{id} {:.0} ms", d * 1000.0))
                    .collect();
                println!("  run {run}: {}", shown.join(", "));
                all.extend(delays.into_iter().map(|(_, d)| d));
            }
            Err(error) => println!("  run {run}: {error}"),
        }
    }
    if all.is_empty() {
        return;
    }
    all.sort_by(f64::total_cmp);
    let at = |q: f64| all[((all.len() - 1) as f64 * q).round() as usize] * 1000.0;
    println!(
        "  {} notices: median {:.0} ms, p90 {:.0} ms, max {:.0} ms",
        all.len(),
        at(0.5),
        at(0.9),
        at(1.0)
    );
}
