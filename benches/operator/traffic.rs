//! Figure 1: API traffic per node updated, from the audit log of a 100-node rollout.
//!
//! 100 nodes in two pools over three zones, workloads behind PodDisruptionBudgets (so that
//! drains evict pods, and some evictions are refused), a node OS policy with a reboot, a
//! canary and two stages by zone, `maxUnavailable: 5` per pool, automatic approval, no
//! window. The sandbox runs on tokio's paused clock, as `patchpilot sandbox` does.
//!
//! Each of the operator's requests is attributed to a node when its `objectRef` names the
//! node, a pod that was on that node when the request arrived (evictions, deletions), or a
//! Job created for that node (the Job's `patchpilot.dev/target` annotation or its
//! `PATCHPILOT_NODE`; the names are hashes and do not contain the node's name). The rest is
//! overhead per rollout.
//!
//! Kept in one file (about 650 lines): the attribution of each request to a node and the
//! tables printed from it are one measurement.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{Arc, Mutex},
    time::Instant,
};

use jiff::{SignedDuration, Timestamp};
use patchpilot::sandbox::store::{Filter, Store, WatchFrom, WatchItem};
use serde_json::Value;

use super::{
    Capture, Running, code, is_operator, is_write, received, record_state, sandbox, wait_finished,
};

const POLICY: &str = "workers-os";
const VERSION: &str = "2026-11-security";

/// Allowed per node: this many writes besides one per pod evicted, and this many GETs.
const WRITES_BESIDES_EVICTIONS: usize = 4;
const READS: usize = 2;

fn scenario() -> String {
    format!(
        r#"apiVersion: sandbox.patchpilot.dev/v1alpha1
kind: Scenario
metadata: {{name: hundred-nodes}}
spec:
  start: "2026-11-28T00:00:00Z"
  end: {{after: 3d, rolloutsFinished: true}}
  seed: 1
  nodes:
    - {{pool: general, count: 60, zones: [zone-a, zone-b, zone-c]}}
    - {{pool: batch, count: 40, zones: [zone-a, zone-b, zone-c]}}
  workloads:
    - {{namespace: shop, namespaceLabels: {{team: shop}}, name: web, replicas: 60, image: "docker.io/library/nginx:1.27.3", pdb: {{maxUnavailable: 2}}}}
    - {{namespace: shop, name: api, replicas: 40, image: "docker.io/library/nginx:1.27.3", pdb: {{minAvailable: 34}}}}
    - {{namespace: shop, kind: StatefulSet, name: cache, replicas: 3, image: "docker.io/library/redis:7.4.1", pdb: {{maxUnavailable: 1}}}}
    - {{namespace: jobs, name: worker, replicas: 80, image: "docker.io/library/busybox:1.37"}}
    - {{namespace: monitoring, kind: DaemonSet, name: node-exporter, image: "quay.io/prometheus/node-exporter:v1.8.2"}}
  timings: {{podStart: 5s, updater: 2m, reboot: 90s}}
---
apiVersion: patchpilot.dev/v1alpha1
kind: PatchPolicy
metadata: {{name: {POLICY}}}
spec:
  targets:
    nodes: {{selector: {{}}, poolLabel: pool}}
  patch:
    version: "{VERSION}"
    updater:
      expectReboot: true
      template:
        metadata: {{annotations: {{sandbox.patchpilot.dev/reboot: "true"}}}}
        spec: {{containers: [{{name: upgrade, image: "docker.io/library/debian:bookworm-slim"}}]}}
  strategy:
    canary: {{targets: 1, soak: 10m}}
    stages: [{{percent: 10, soak: 10m}}, {{percent: 50, soak: 10m}}]
    groupBy: topology.kubernetes.io/zone
    maxUnavailable: 5
  drain: {{timeout: 15m}}
  health:
    timeout: 10m
    soak: 2m
    checks: [{{nodeReady: {{}}}}, {{podsReady: {{}}}}]
  approval: {{mode: Automatic}}
"#
    )
}

/// Where each pod was, over time: `namespace/name` to `(since, node)`, from a watch.
type Placements = Arc<Mutex<BTreeMap<String, Vec<(Timestamp, String)>>>>;

async fn follow_pods(store: Arc<Store>, placements: Placements) {
    let pods = store.resource("", "v1", "pods").expect("pods");
    let Ok(mut watch) = store.watch(&pods, Filter::default(), WatchFrom::Current) else {
        return;
    };
    let mut pending = std::mem::take(&mut watch.initial);
    loop {
        for item in pending.drain(..) {
            let WatchItem::Event("ADDED" | "MODIFIED", pod) = item else {
                continue;
            };
            let Some(node) = pod["spec"]["nodeName"].as_str() else {
                continue;
            };
            let key = format!(
                "{}/{}",
                pod["metadata"]["namespace"].as_str().unwrap_or(""),
                pod["metadata"]["name"].as_str().unwrap_or("")
            );
            let mut placements = placements.lock().unwrap();
            let history = placements.entry(key).or_default();
            if history.last().is_none_or(|(_, n)| n != node) {
                history.push((store.clock().now(), node.to_owned()));
            }
        }
        match watch.rx.recv().await {
            Some(item) => pending.push(item),
            None => return,
        }
    }
}

/// What a request did, for the per-node breakdown.
fn kind_of(event: &Value) -> String {
    let r = &event["objectRef"];
    let resource = r["resource"].as_str().unwrap_or("-");
    let verb = event["verb"].as_str().unwrap_or("");
    match (verb, resource, r["subresource"].as_str()) {
        ("create", "pods", Some("eviction")) if (200..300).contains(&code(event)) => {
            "eviction".into()
        }
        ("create", "pods", Some("eviction")) => format!("eviction refused ({})", code(event)),
        ("patch", "nodes", None) => {
            let body = &event["requestObject"];
            let state = record_state(event).unwrap_or_else(|| "no record".into());
            let lock = match body["metadata"]["annotations"].get("patchpilot.dev/lock") {
                Some(Value::Null) => ", releases the lock",
                Some(_) => ", takes the lock",
                None => "",
            };
            let cordon = match body["spec"]["unschedulable"].as_bool() {
                Some(true) => ", cordons",
                Some(false) => ", uncordons",
                None => "",
            };
            format!("node patch ({state}{lock}{cordon})")
        }
        (verb, resource, Some(sub)) => format!("{verb} {resource}/{sub}"),
        (verb, resource, None) => format!("{verb} {resource}"),
    }
}

/// The node a Job was created for.
fn job_node(job: &Value) -> Option<String> {
    if let Some(target) = job["metadata"]["annotations"]["patchpilot.dev/target"].as_str() {
        return target.strip_prefix("Node/").map(str::to_owned);
    }
    let spec = &job["spec"]["template"]["spec"];
    if let Some(node) = spec["nodeName"].as_str() {
        return Some(node.to_owned());
    }
    spec["containers"]
        .as_array()?
        .iter()
        .flat_map(|c| c["env"].as_array().into_iter().flatten())
        .find(|e| e["name"] == "PATCHPILOT_NODE")
        .and_then(|e| e["value"].as_str().map(str::to_owned))
}

#[derive(Default)]
struct PerNode {
    writes: Vec<(Timestamp, String, String, u64)>,
    reads: Vec<(Timestamp, String, u64)>,
    evicted: usize,
}

pub fn run() {
    println!("== 1. API traffic per node updated (100-node rollout, audit log) ==");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("a runtime");
    let capture = Capture::new(None);
    let placements: Placements = Arc::default();
    let wall = Instant::now();
    let (store, finished, virtual_span) = runtime.block_on(async {
        let sandbox = sandbox(&scenario(), &capture);
        let store = sandbox.store().clone();
        let start = store.clock().now();
        let follower = tokio::spawn(follow_pods(store.clone(), placements.clone()));
        let running = Running::start(&sandbox);
        let until = start
            .saturating_add(SignedDuration::from_hours(72))
            .unwrap();
        let finished = wait_finished(&store, until).await;
        let end = store.clock().now();
        // A minute more, for the writes that follow the last status.
        let later = end.saturating_add(SignedDuration::from_mins(1)).unwrap();
        tokio::time::sleep(store.clock().sleep_for(later)).await;
        running.stop().await;
        follower.abort();
        (store, finished, end.duration_since(start))
    });
    let wall = wall.elapsed();
    let lines = capture.take();
    if let Some(path) = std::env::var_os("PATCHPILOT_BENCH_AUDIT") {
        let text: String = lines.iter().map(|l| format!("{}\n", l.text)).collect();
        match std::fs::write(&path, text) {
            Ok(()) => println!("audit log written to {}", path.to_string_lossy()),
            Err(e) => println!("cannot write the audit log: {e}"),
        }
    }
    let log: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(&l.text).expect("audit lines are JSON"))
        .collect();
    report(&store, &log, &placements.lock().unwrap(), finished);
    println!(
        "simulated {:.0} min of rollout in {wall:.1?} of wall time",
        virtual_span.as_secs_f64() / 60.0
    );
}

fn report(
    store: &Store,
    log: &[Value],
    placements: &BTreeMap<String, Vec<(Timestamp, String)>>,
    finished: bool,
) {
    let rollouts = store
        .resource("patchpilot.dev", "v1alpha1", "patchrollouts")
        .unwrap();
    for rollout in store.list(&rollouts, &Filter::default(), 0, None).items {
        println!(
            "rollout {}: phase {}, targets {}",
            rollout["metadata"]["name"].as_str().unwrap_or(""),
            rollout["status"]["phase"].as_str().unwrap_or("?"),
            rollout["status"]["targets"]
        );
    }
    if !finished {
        println!("WARNING: the rollout did not finish within the scenario's time");
    }
    let nodes = store.resource("", "v1", "nodes").unwrap();
    let version_key = format!("patch.patchpilot.dev/{POLICY}");
    let updated: BTreeSet<String> = store
        .list(&nodes, &Filter::default(), 0, None)
        .items
        .iter()
        .filter(|n| n["metadata"]["annotations"][version_key.as_str()] == VERSION)
        .filter_map(|n| n["metadata"]["name"].as_str().map(str::to_owned))
        .collect();

    let operator: Vec<&Value> = log.iter().filter(|e| is_operator(e)).collect();
    let mut by_verb: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for event in &operator {
        let entry = by_verb
            .entry(event["verb"].as_str().unwrap_or("?"))
            .or_default();
        entry.0 += 1;
        if !(200..300).contains(&code(event)) {
            entry.1 += 1;
        }
    }
    let total: usize = by_verb.values().map(|(n, _)| n).sum();
    println!("operator requests: {total} in all");
    for (verb, (n, failed)) in &by_verb {
        println!("  {verb:<17} {n:>6}  ({failed} answered with a non-2xx code)");
    }
    let mut collections: BTreeMap<String, usize> = BTreeMap::new();
    for event in &operator {
        let verb = event["verb"].as_str().unwrap_or("");
        if matches!(verb, "list" | "watch") {
            let resource = event["objectRef"]["resource"].as_str().unwrap_or("?");
            *collections.entry(format!("{verb} {resource}")).or_default() += 1;
        }
    }
    let collections: Vec<String> = collections
        .iter()
        .map(|(k, c)| format!("{k} {c}"))
        .collect();
    println!(
        "  lists and watches by resource: {}",
        collections.join(", ")
    );

    // Jobs: their node, from the create request.
    let mut jobs: BTreeMap<String, String> = BTreeMap::new();
    for event in &operator {
        if event["verb"] == "create" && event["objectRef"]["resource"] == "jobs" {
            let job = &event["requestObject"];
            if let (Some(name), Some(node)) = (job["metadata"]["name"].as_str(), job_node(job)) {
                jobs.insert(name.to_owned(), node);
            }
        }
    }
    let pod_node = |key: &str, at: Timestamp| -> Option<String> {
        placements
            .get(key)?
            .iter()
            .rev()
            .find(|(since, _)| *since <= at)
            .map(|(_, node)| node.clone())
    };
    let node_of = |event: &Value| -> Option<String> {
        let r = &event["objectRef"];
        let name = r["name"]
            .as_str()
            .or_else(|| event["requestObject"]["metadata"]["name"].as_str())?;
        match r["resource"].as_str()? {
            "nodes" => Some(name.to_owned()),
            "pods" => pod_node(
                &format!("{}/{name}", r["namespace"].as_str().unwrap_or("")),
                received(event),
            ),
            "jobs" => jobs.get(name).cloned(),
            _ => None,
        }
    };

    let mut per_node: BTreeMap<String, PerNode> = BTreeMap::new();
    let mut overhead: BTreeMap<String, usize> = BTreeMap::new();
    let mut event_reasons: BTreeMap<String, usize> = BTreeMap::new();
    let mut overhead_reads: BTreeMap<String, usize> = BTreeMap::new();
    let mut gets: BTreeMap<String, Vec<Timestamp>> = BTreeMap::new();
    for event in &operator {
        let verb = event["verb"].as_str().unwrap_or("");
        let uri = event["requestURI"].as_str().unwrap_or("").to_owned();
        let node = node_of(event);
        if is_write(verb) {
            match node {
                Some(node) => {
                    let entry = per_node.entry(node).or_default();
                    let kind = kind_of(event);
                    if kind == "eviction"
                        || (kind == "delete pods" && (200..300).contains(&code(event)))
                    {
                        entry.evicted += 1;
                    }
                    entry.writes.push((received(event), kind, uri, code(event)));
                }
                None => {
                    *overhead.entry(kind_of(event)).or_default() += 1;
                    if event["objectRef"]["resource"] == "events" {
                        let reason = event["requestObject"]["reason"].as_str().unwrap_or("?");
                        *event_reasons.entry(reason.to_owned()).or_default() += 1;
                    }
                }
            }
        } else if verb == "get" && event.get("objectRef").is_some() {
            let path = uri.split('?').next().unwrap_or("").to_owned();
            gets.entry(path).or_default().push(received(event));
            match node {
                Some(node) => per_node.entry(node).or_default().reads.push((
                    received(event),
                    uri,
                    code(event),
                )),
                None => *overhead_reads.entry(kind_of(event)).or_default() += 1,
            }
        }
    }

    let rows: Vec<(&String, &PerNode)> = per_node
        .iter()
        .filter(|(n, _)| updated.contains(*n))
        .collect();
    let untouched = per_node.keys().filter(|n| !updated.contains(*n)).count();
    println!(
        "nodes updated: {} (of 100); requests attributed to {} other node(s)",
        updated.len(),
        untouched
    );
    if rows.is_empty() {
        println!("no node was updated: nothing to measure");
        return;
    }
    let n = rows.len() as f64;
    let writes: Vec<usize> = rows.iter().map(|(_, p)| p.writes.len()).collect();
    let ok_writes: Vec<usize> = rows
        .iter()
        .map(|(_, p)| {
            p.writes
                .iter()
                .filter(|w| (200..300).contains(&w.3))
                .count()
        })
        .collect();
    let reads: Vec<usize> = rows.iter().map(|(_, p)| p.reads.len()).collect();
    let evicted: Vec<usize> = rows.iter().map(|(_, p)| p.evicted).collect();
    let mean = |v: &[usize]| v.iter().sum::<usize>() as f64 / n;
    let max = |v: &[usize]| v.iter().copied().max().unwrap_or(0);
    println!(
        "writes per node (every write request, any response): mean {:.2}, max {}",
        mean(&writes),
        max(&writes)
    );
    println!(
        "  of which successful (2xx): mean {:.2}, max {}",
        mean(&ok_writes),
        max(&ok_writes)
    );
    println!(
        "pods evicted per node (successful evictions and pod deletions): mean {:.2}, max {}",
        mean(&evicted),
        max(&evicted)
    );
    println!(
        "writes per node beyond the pods evicted: mean {:.2}, max {}",
        mean(&writes) - mean(&evicted),
        rows.iter()
            .map(|(_, p)| p.writes.len() - p.evicted)
            .max()
            .unwrap_or(0)
    );
    println!(
        "reads (single-object GETs) per node: mean {:.2}, max {}",
        mean(&reads),
        max(&reads)
    );
    // How long each drain took: from the lock (the node's first write, which cordons it) to
    // the updater Job's creation, which follows as soon as the node is empty.
    let mut drains: Vec<SignedDuration> = rows
        .iter()
        .filter_map(|(_, p)| {
            let locked = p.writes.first()?.0;
            let job = p.writes.iter().find(|w| w.1 == "create jobs")?.0;
            Some(job.duration_since(locked))
        })
        .collect();
    drains.sort();
    if let (Some(median), Some(longest)) = (drains.get(drains.len() / 2), drains.last()) {
        let slow = drains
            .iter()
            .filter(|d| **d > SignedDuration::from_secs(55))
            .count();
        println!(
            "drain time per node (lock to updater Job): median {median:#}, max {longest:#}, \
             {slow} of {} over 55 s",
            drains.len()
        );
    }
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, p) in &rows {
        for w in &p.writes {
            *kinds.entry(w.1.as_str()).or_default() += 1;
        }
    }
    println!("per-node writes by kind (total over the updated nodes, and per node):");
    for (kind, count) in &kinds {
        println!("  {count:>6}  {:>6.2}/node  {kind}", *count as f64 / n);
    }

    // The target (issue 5): writes <= evicted + 4, reads <= 2, no GET repeated.
    let over_writes: Vec<&(&String, &PerNode)> = rows
        .iter()
        .filter(|(_, p)| p.writes.len() > p.evicted + WRITES_BESIDES_EVICTIONS)
        .collect();
    let over_reads: Vec<&(&String, &PerNode)> =
        rows.iter().filter(|(_, p)| p.reads.len() > READS).collect();
    let repeated: Vec<(&String, &Vec<Timestamp>)> =
        gets.iter().filter(|(_, times)| times.len() > 1).collect();
    let verdict = |ok: bool| if ok { "MET" } else { "NOT MET" };
    println!(
        "target: writes per node <= pods evicted + {WRITES_BESIDES_EVICTIONS}: {} ({} of {} nodes over)",
        verdict(over_writes.is_empty()),
        over_writes.len(),
        rows.len()
    );
    let over_ok_writes = rows
        .iter()
        .filter(|(_, p)| {
            let ok = p
                .writes
                .iter()
                .filter(|w| (200..300).contains(&w.3))
                .count();
            ok > p.evicted + WRITES_BESIDES_EVICTIONS
        })
        .count();
    println!(
        "  (counting only successful writes, leaving out refused evictions: {}, {} of {} nodes over)",
        verdict(over_ok_writes == 0),
        over_ok_writes,
        rows.len()
    );
    println!(
        "target: reads per node <= {READS}: {} ({} of {} nodes over)",
        verdict(over_reads.is_empty()),
        over_reads.len(),
        rows.len()
    );
    println!(
        "target: no repeated GET of one object: {} ({} object(s) read more than once)",
        verdict(repeated.is_empty()),
        repeated.len()
    );
    if let Some((node, worst)) = over_writes
        .iter()
        .max_by_key(|(_, p)| p.writes.len() - p.evicted)
    {
        println!(
            "  most writes beyond evictions: {node}, {} writes, {} pods evicted:",
            worst.writes.len(),
            worst.evicted
        );
        for (at, kind, uri, code) in &worst.writes {
            println!("    {at} {code} {kind}: {uri}");
        }
    }
    if let Some((node, worst)) = over_reads.iter().max_by_key(|(_, p)| p.reads.len()) {
        println!("  most reads: {node}, {} GETs:", worst.reads.len());
        for (at, uri, code) in &worst.reads {
            println!("    {at} {code} {uri}");
        }
    }
    let mut repeated = repeated;
    repeated.sort_by_key(|(_, times)| std::cmp::Reverse(times.len()));
    for (path, times) in repeated.iter().take(5) {
        let shown: Vec<String> = times.iter().take(6).map(|t| t.to_string()).collect();
        println!(
            "  GET {path}: {} times, at {}{}",
            times.len(),
            shown.join(", "),
            if times.len() > 6 { ", …" } else { "" }
        );
    }

    let overhead_total: usize = overhead.values().sum();
    println!(
        "per-rollout overhead (writes naming no node): {overhead_total} ({:.2} per node updated)",
        overhead_total as f64 / n
    );
    for (kind, count) in &overhead {
        println!("  {count:>6}  {kind}");
    }
    if !event_reasons.is_empty() {
        let reasons: Vec<String> = event_reasons
            .iter()
            .map(|(r, c)| format!("{r} {c}"))
            .collect();
        println!("  events by reason: {}", reasons.join(", "));
    }
    repeated_status_writes(&operator);
    pod_watches(&operator);
    if !overhead_reads.is_empty() {
        let reads: Vec<String> = overhead_reads
            .iter()
            .map(|(k, c)| format!("{k} {c}"))
            .collect();
        println!("  GETs naming no node: {}", reads.join(", "));
    }
}

/// Status writes whose body is the same as the previous status write to the same object:
/// nothing changed, yet the operator wrote.
fn repeated_status_writes(operator: &[&Value]) {
    let mut last: BTreeMap<String, (String, Timestamp)> = BTreeMap::new();
    let mut counts: BTreeMap<String, (usize, usize, usize)> = BTreeMap::new();
    let mut example: BTreeMap<String, String> = BTreeMap::new();
    for event in operator {
        let r = &event["objectRef"];
        if event["verb"] != "patch" || r["subresource"] != "status" {
            continue;
        }
        let resource = r["resource"].as_str().unwrap_or("").to_owned();
        let key = format!("{resource}/{}", r["name"].as_str().unwrap_or(""));
        let body = event["requestObject"]["status"].to_string();
        let at = received(event);
        let entry = counts.entry(resource.clone()).or_default();
        entry.0 += 1;
        if let Some((previous, previous_at)) = last.get(&key)
            && *previous == body
        {
            entry.1 += 1;
            if *previous_at == at {
                entry.2 += 1;
            }
            example.entry(resource).or_insert_with(|| {
                format!(
                    "{} at {at} (auditID {})",
                    event["requestURI"].as_str().unwrap_or(""),
                    event["auditID"].as_str().unwrap_or("")
                )
            });
        }
        last.insert(key, (body, at));
    }
    for (resource, (total, same, same_instant)) in &counts {
        println!(
            "  status writes to {resource}: {total}, of which {same} repeat the previous write verbatim \
             ({same_instant} at the same virtual instant as it)"
        );
        if let Some(example) = example.get(resource) {
            println!("    e.g. PATCH {example}");
        }
    }
}

/// Pod watches per node (`fieldSelector=spec.nodeName=…`), and those opened after the
/// operator had released the node.
fn pod_watches(operator: &[&Value]) {
    let mut watches: BTreeMap<String, Vec<Timestamp>> = BTreeMap::new();
    let mut released: BTreeMap<String, Timestamp> = BTreeMap::new();
    for event in operator {
        let r = &event["objectRef"];
        let uri = event["requestURI"].as_str().unwrap_or("");
        if event["verb"] == "watch"
            && r["resource"] == "pods"
            && let Some(node) = uri
                .split("spec.nodeName%3D")
                .nth(1)
                .and_then(|rest| rest.split('&').next())
        {
            watches
                .entry(node.to_owned())
                .or_default()
                .push(received(event));
        }
        let lock = event["requestObject"]["metadata"]["annotations"].get("patchpilot.dev/lock");
        if event["verb"] == "patch"
            && r["resource"] == "nodes"
            && lock.is_some_and(Value::is_null)
            && (200..300).contains(&code(event))
            && let Some(name) = r["name"].as_str()
        {
            released.insert(name.to_owned(), received(event));
        }
    }
    let total: usize = watches.values().map(Vec::len).sum();
    let late: Vec<&String> = watches
        .iter()
        .filter(|(node, times)| {
            released
                .get(*node)
                .is_some_and(|release| times.iter().any(|t| t > release))
        })
        .map(|(node, _)| node)
        .collect();
    println!(
        "  pod watches by node (not counted as reads): {total} on {} nodes; {} nodes watched again after their release",
        watches.len(),
        late.len()
    );
    if let Some(node) = late.first() {
        let times: Vec<String> = watches[*node].iter().map(|t| t.to_string()).collect();
        println!(
            "    e.g. {node}: watches at {}, released at {}",
            times.join(", "),
            released[*node]
        );
    }
}
