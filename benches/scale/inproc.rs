//! The sandbox in this process: loading the 5,000-node scenario, a watch of every pod, and
//! the requests per second its API server answers in-process and over HTTP.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use futures::StreamExt;
use k8s_openapi::api::{apps::v1::Deployment, core::v1::Pod};
use kube::{
    Api, Client,
    api::{DeleteParams, ListParams, Patch, PatchParams},
    runtime::watcher::{self, Event},
};
use patchpilot::sandbox::{
    Sandbox, apiserver::serve, json::Json, run::tokens, scenario::Scenario, store::Filter,
};
use serde_json::json;
use tokio::{net::TcpListener, sync::mpsc, task::JoinHandle};

use crate::{
    NODES, PODS, SCENARIO,
    mem::{Memory, mib},
};

/// The sandbox of this process, with its cluster running and its API served over HTTP.
pub struct Loaded {
    pub sandbox: Sandbox,
    cluster: JoinHandle<()>,
    http: JoinHandle<()>,
    pub http_url: String,
}

impl Drop for Loaded {
    fn drop(&mut self) {
        self.cluster.abort();
        self.http.abort();
    }
}

fn running_ready(pod: &Json) -> bool {
    pod["status"]["phase"] == "Running"
        && pod["status"]["conditions"].as_array().is_some_and(|c| {
            c.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

fn pod_ready(pod: &Pod) -> bool {
    pod.status.as_ref().is_some_and(|s| {
        s.phase.as_deref() == Some("Running")
            && s.conditions
                .as_ref()
                .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
    })
}

/// 1. Loads the scenario and waits until every pod is Running and Ready.
pub async fn load() -> Loaded {
    println!("\n== 1. Sandbox load: {SCENARIO}");
    let began = Instant::now();
    let scenario = Scenario::read(Path::new(SCENARIO)).expect("the scale scenario reads");
    let sandbox =
        Sandbox::new(scenario, patchpilot::sandboxed::options()).expect("the scale scenario loads");
    let loaded = began.elapsed();
    let store = sandbox.store().clone();
    let nodes = store.resource("", "v1", "nodes").unwrap();
    let pods = store.resource("", "v1", "pods").unwrap();
    let node_count = store.list(&nodes, &Filter::default(), 0, None).items.len();
    println!(
        "objects created (CRDs, {node_count} nodes, namespaces, Deployments, PDBs): {loaded:.2?}, \
         RSS {}",
        Memory::of_self().map_or("?".into(), |m| mib(m.rss_kib))
    );
    // A diagnostic: how many changes the store keeps for watches to resume from (the
    // sandbox's default is 200,000).
    if let Some(retention) = std::env::var("SCALE_RETENTION")
        .ok()
        .and_then(|r| r.parse().ok())
    {
        println!("  SCALE_RETENTION: the store keeps the last {retention} changes");
        store.set_retention(retention);
    }
    let cluster = tokio::spawn(sandbox.cluster().run());
    let mut last_report = Instant::now();
    let settled = loop {
        // Each check lists every pod under the store's lock, so not too often.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let listed = Instant::now();
        let items = store.list(&pods, &Filter::default(), 0, None).items;
        let ready = items.iter().filter(|p| running_ready(p)).count();
        let list_time = listed.elapsed();
        if items.len() == PODS && ready == PODS {
            break began.elapsed();
        }
        if last_report.elapsed() >= Duration::from_secs(5) {
            println!(
                "  … {:>5.1}s: {} pods, {ready} Running and Ready, {} writes (a store list of all pods: {list_time:.0?})",
                began.elapsed().as_secs_f64(),
                items.len(),
                store.resource_version()
            );
            last_report = Instant::now();
        }
        if began.elapsed() > Duration::from_secs(600) {
            panic!("the sandbox did not settle in 10 minutes: {ready} of {PODS} pods ready");
        }
    };
    let memory = Memory::of_self().unwrap_or_default();
    println!(
        "RESULT sandbox load: {NODES} nodes and {PODS} pods all Running and Ready after {settled:.2?} \
         ({} store writes; objects created in {loaded:.2?}, the rest is the simulated controllers, \
         scheduler and kubelets, including the scenario's podStart of 2s)",
        store.resource_version()
    );
    println!(
        "RESULT sandbox memory once settled: VmRSS {}, VmHWM (peak) {}",
        mib(memory.rss_kib),
        mib(memory.hwm_kib)
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http_url = format!("http://{}", listener.local_addr().unwrap());
    let http = tokio::spawn(serve(sandbox.server().clone(), listener, tokens()));
    Loaded {
        sandbox,
        cluster,
        http,
        http_url,
    }
}

/// A kube client over HTTP to `url`, without credentials (the served sandbox takes those
/// requests as its admin).
pub fn http_client(url: &str) -> Client {
    let config = kube::Config::new(url.parse().unwrap());
    Client::try_from(config).unwrap()
}

/// What the watch saw.
enum Seen {
    InitDone(usize),
    /// A pod of the followed Deployment.
    Pod {
        name: String,
        deleted: bool,
        ready: bool,
        deleting: bool,
    },
    Error(String),
}

/// Watches every pod, forwarding the end of the initial list and the changes of the pods of
/// Deployment `team-00/app-1`; counts every change event in `events`.
fn spawn_watch(
    client: Client,
    config: watcher::Config,
    events: Arc<AtomicU64>,
) -> (mpsc::UnboundedReceiver<(Instant, Seen)>, JoinHandle<()>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        let followed = |p: &Pod| {
            p.metadata.namespace.as_deref() == Some("team-00")
                && p.metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get("app"))
                    .is_some_and(|a| a == "app-1")
        };
        let seen = |p: &Pod, deleted: bool| Seen::Pod {
            name: p.metadata.name.clone().unwrap_or_default(),
            deleted,
            ready: pod_ready(p),
            deleting: p.metadata.deletion_timestamp.is_some(),
        };
        let mut stream = watcher::watcher(Api::<Pod>::all(client), config).boxed();
        let mut count = 0;
        while let Some(event) = stream.next().await {
            let item = match event {
                Ok(Event::Init) => {
                    count = 0;
                    continue;
                }
                Ok(Event::InitApply(p)) => {
                    count += 1;
                    if !followed(&p) {
                        continue;
                    }
                    seen(&p, false)
                }
                Ok(Event::InitDone) => Seen::InitDone(count),
                Ok(Event::Apply(p)) => {
                    events.fetch_add(1, Ordering::Relaxed);
                    if !followed(&p) {
                        continue;
                    }
                    seen(&p, false)
                }
                Ok(Event::Delete(p)) => {
                    events.fetch_add(1, Ordering::Relaxed);
                    if !followed(&p) {
                        continue;
                    }
                    seen(&p, true)
                }
                Err(error) => Seen::Error(error.to_string()),
            };
            if tx.send((Instant::now(), item)).is_err() {
                return;
            }
        }
    });
    (rx, task)
}

/// The followed Deployment's pods as the watch last saw them: name → (ready, deleting).
type Pods = BTreeMap<String, (bool, bool)>;

/// Applies what the watch sends until `done` holds (checked after each item), or `timeout`.
/// Returns when it held.
async fn wait_for(
    rx: &mut mpsc::UnboundedReceiver<(Instant, Seen)>,
    pods: &mut Pods,
    timeout: Duration,
    mut done: impl FnMut(&Pods, &Seen) -> bool,
) -> Option<Instant> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let (at, seen) = match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(item)) => item,
            _ => return None,
        };
        match &seen {
            Seen::Pod {
                name,
                deleted: true,
                ..
            } => {
                pods.remove(name);
            }
            Seen::Pod {
                name,
                ready,
                deleting,
                ..
            } => {
                pods.insert(name.clone(), (*ready, *deleting));
            }
            Seen::Error(error) => println!("  watch error: {error}"),
            Seen::InitDone(_) => {}
        }
        if done(pods, &seen) {
            return Some(at);
        }
    }
}

fn ready_count(pods: &Pods) -> usize {
    pods.values()
        .filter(|(ready, deleting)| *ready && !*deleting)
        .count()
}

fn since(t0: Instant, at: Option<Instant>) -> String {
    match at {
        Some(at) => format!("{:.1?}", at.saturating_duration_since(t0)),
        None => "TIMED OUT (30 s)".into(),
    }
}

/// Waits for the end of the initial list: how long it took and how many pods it held.
async fn initial_list(
    rx: &mut mpsc::UnboundedReceiver<(Instant, Seen)>,
    pods: &mut Pods,
) -> Option<(Instant, usize)> {
    let mut count = 0;
    let at = wait_for(rx, pods, Duration::from_secs(300), |_, seen| match seen {
        Seen::InitDone(n) => {
            count = *n;
            true
        }
        _ => false,
    })
    .await?;
    Some((at, count))
}

/// Figure 2, a watch of every pod: the initial list, then events as a Deployment scales
/// and a pod is deleted.
pub async fn watch_all(loaded: &Loaded) {
    println!("\n== 2. Watch of all pods (kube::runtime::watcher, Api::<Pod>::all)");
    let client = loaded.sandbox.client("bench-watcher");
    let events = Arc::new(AtomicU64::new(0));
    let began = Instant::now();
    let (mut rx, task) = spawn_watch(client.clone(), watcher::Config::default(), events.clone());
    let mut pods = Pods::new();
    let Some((at, count)) = initial_list(&mut rx, &mut pods).await else {
        println!("RESULT watch: the initial list did not complete in 300 s");
        task.abort();
        return;
    };
    println!(
        "RESULT watch initial list, in-process, list+watch (pages of 500): {count} pods in {:.2?}; \
         RSS then {}",
        at - began,
        Memory::of_self().map_or("?".into(), |m| mib(m.rss_kib))
    );
    let deployments = Api::<Deployment>::namespaced(client.clone(), "team-00");
    let pod_api = Api::<Pod>::namespaced(client.clone(), "team-00");
    let thirty = Duration::from_secs(30);
    let before: BTreeSet<String> = pods.keys().cloned().collect();
    println!(
        "  followed Deployment team-00/app-1: {} pods, {} ready",
        pods.len(),
        ready_count(&pods)
    );
    events.store(0, Ordering::Relaxed);

    // Scale up from 10 to 15.
    let t0 = Instant::now();
    deployments
        .patch(
            "app-1",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 15}})),
        )
        .await
        .expect("scale up");
    let first = wait_for(
        &mut rx,
        &mut pods,
        thirty,
        |_, seen| matches!(seen, Seen::Pod { name, .. } if !before.contains(name)),
    )
    .await;
    let all = match ready_count(&pods) == 15 {
        true => first,
        false => wait_for(&mut rx, &mut pods, thirty, |p, _| ready_count(p) == 15).await,
    };
    println!(
        "RESULT watch events, scale 10 → 15: first new pod's event after {}, all 15 Ready (as seen \
         by the watch) after {}",
        since(t0, first),
        since(t0, all)
    );

    // Delete one pod: a graceful deletion, then the ReplicaSet's replacement.
    let victim = pods.keys().next().cloned().unwrap_or_default();
    let t0 = Instant::now();
    pod_api
        .delete(&victim, &DeleteParams::default())
        .await
        .expect("delete a pod");
    let marked = wait_for(
        &mut rx,
        &mut pods,
        thirty,
        |_, seen| matches!(seen, Seen::Pod { name, .. } if *name == victim),
    )
    .await;
    let gone = if pods.contains_key(&victim) {
        wait_for(
            &mut rx,
            &mut pods,
            thirty,
            |_, seen| matches!(seen, Seen::Pod { name, deleted: true, .. } if *name == victim),
        )
        .await
    } else {
        marked
    };
    let replaced_now = |p: &Pods| ready_count(p) == 15 && !p.contains_key(&victim);
    let replaced = match replaced_now(&pods) {
        true => gone,
        false => wait_for(&mut rx, &mut pods, thirty, |p, _| replaced_now(p)).await,
    };
    println!(
        "RESULT watch events, delete pod {victim}: first event (deletionTimestamp) after {}, \
         DELETED after {}, replacement Ready after {} (the scenario's podStop is 1s and podStart 2s)",
        since(t0, marked),
        since(t0, gone),
        since(t0, replaced)
    );

    // Back to 10.
    let t0 = Instant::now();
    deployments
        .patch(
            "app-1",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 10}})),
        )
        .await
        .expect("scale down");
    let down = wait_for(&mut rx, &mut pods, thirty, |p, _| p.len() == 10).await;
    println!(
        "RESULT watch events, scale 15 → 10: 10 pods left after {}; {} pod events in all reached \
         the watch during these three changes",
        since(t0, down),
        events.load(Ordering::Relaxed)
    );
    task.abort();

    // The other ways to get the initial list, for comparison.
    let http = http_client(&loaded.http_url);
    let ways: [(&str, Client, watcher::Config); 3] = [
        (
            "in-process, streaming list (sendInitialEvents)",
            client.clone(),
            watcher::Config::default().streaming_lists(),
        ),
        (
            "HTTP, list+watch (pages of 500)",
            http.clone(),
            watcher::Config::default(),
        ),
        (
            "HTTP, streaming list (sendInitialEvents)",
            http,
            watcher::Config::default().streaming_lists(),
        ),
    ];
    for (label, client, config) in ways {
        let began = Instant::now();
        let (mut rx, task) = spawn_watch(client, config, Arc::new(AtomicU64::new(0)));
        let mut pods = Pods::new();
        match initial_list(&mut rx, &mut pods).await {
            Some((at, count)) => println!(
                "RESULT watch initial list, {label}: {count} pods in {:.2?}",
                at - began
            ),
            None => println!("RESULT watch initial list, {label}: not complete in 300 s"),
        }
        task.abort();
    }
    println!(
        "  RSS after the watches: {}",
        Memory::of_self().map_or("?".into(), |m| mib(m.rss_kib))
    );
}

/// One kind of request: its name and the URI of the i-th request.
struct Kind {
    name: &'static str,
    uri: fn(u64) -> String,
}

fn node_uri(i: u64) -> String {
    // The nodes are <pool>-<1..500>; walk them in a scattered order.
    const POOLS: [&str; 10] = [
        "general-a",
        "general-b",
        "general-c",
        "general-d",
        "general-e",
        "memory-a",
        "memory-b",
        "compute-a",
        "compute-b",
        "batch",
    ];
    let n = (i * 7919) % NODES as u64;
    format!("/api/v1/nodes/{}-{}", POOLS[(n % 10) as usize], n / 10 + 1)
}

fn deployment_pods_uri(i: u64) -> String {
    let app = (i * 31) % 100 + 1;
    let namespace = (i * 7) % 50;
    format!("/api/v1/namespaces/team-{namespace:02}/pods?labelSelector=app%3Dapp-{app}")
}

fn namespace_pods_uri(i: u64) -> String {
    format!("/api/v1/namespaces/team-{:02}/pods", (i * 7) % 50)
}

const KINDS: [Kind; 3] = [
    Kind {
        name: "GET one node",
        uri: node_uri,
    },
    Kind {
        name: "LIST one Deployment's pods (labelSelector, 10 of the namespace's 1,000)",
        uri: deployment_pods_uri,
    },
    Kind {
        name: "LIST every pod of a namespace (1,000 pods)",
        uri: namespace_pods_uri,
    },
];

/// `concurrency` tasks sending requests for `duration`: requests answered, errors, median
/// and p99 latency.
async fn load_test(
    client: &Client,
    kind: &Kind,
    concurrency: u64,
    duration: Duration,
) -> (u64, u64, f64, Duration, Duration, u64) {
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::new();
    for t in 0..concurrency {
        let client = client.clone();
        let uri = kind.uri;
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0u64;
            let mut bytes = 0u64;
            let mut i = t;
            while Instant::now() < deadline {
                let request = http::Request::get(uri(i)).body(Vec::new()).unwrap();
                let sent = Instant::now();
                match client.request_text(request).await {
                    Ok(text) => {
                        bytes += text.len() as u64;
                        latencies.push(sent.elapsed());
                    }
                    Err(_) => errors += 1,
                }
                i += concurrency;
            }
            (latencies, errors, bytes)
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    let mut bytes = 0;
    for task in tasks {
        let (l, e, b) = task.await.unwrap();
        latencies.extend(l);
        errors += e;
        bytes += b;
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    let pick = |q: f64| {
        latencies
            .get(((latencies.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or_default()
    };
    let ok = latencies.len() as u64;
    (
        ok,
        errors,
        ok as f64 / elapsed,
        pick(0.5),
        pick(0.99),
        bytes / ok.max(1),
    )
}

/// 3. Requests per second, in-process and over HTTP.
pub async fn requests_per_second(loaded: &Loaded) {
    const CONCURRENCY: u64 = 8;
    const DURATION: Duration = Duration::from_secs(3);
    println!(
        "\n== 3. Requests per second: {CONCURRENCY} concurrent tasks, {DURATION:?} each, raw \
         responses (Client::request_text: no decoding into Rust types); client, server and the \
         simulated cluster share this process's 2 worker threads"
    );
    let transports = [
        ("in-process", loaded.sandbox.client("bench-load")),
        ("HTTP 127.0.0.1", http_client(&loaded.http_url)),
    ];
    for kind in &KINDS {
        for (transport, client) in &transports {
            let (ok, errors, rate, p50, p99, size) =
                load_test(client, kind, CONCURRENCY, DURATION).await;
            println!(
                "RESULT req/s, {transport}, {}: {rate:.0} req/s ({ok} answered, {errors} errors; \
                 latency p50 {p50:.2?}, p99 {p99:.2?}; {size} bytes a response)",
                kind.name
            );
        }
    }
}

/// Lists every pod through kube-rs a page of 500 at a time, following the continue tokens:
/// how many pods, how many pages, how long.
async fn paged_list(client: Client) -> Result<(usize, usize, Duration), kube::Error> {
    let pods = Api::<Pod>::all(client);
    let began = Instant::now();
    let (mut count, mut pages) = (0, 0);
    let mut token: Option<String> = None;
    loop {
        let mut params = ListParams::default().limit(500);
        if let Some(token) = &token {
            params = params.continue_token(token);
        }
        let page = pods.list(&params).await?;
        count += page.items.len();
        pages += 1;
        token = page.metadata.continue_.filter(|t| !t.is_empty());
        if token.is_none() {
            return Ok((count, pages, began.elapsed()));
        }
    }
}

/// Part of figure 1: a full paged list of every pod (pages of 500, decoded into `Pod`), in
/// process and over HTTP, twice each.
pub async fn full_paged_list(loaded: &Loaded) {
    let transports = [
        ("in-process", loaded.sandbox.client("bench-list")),
        ("HTTP 127.0.0.1", http_client(&loaded.http_url)),
    ];
    for (transport, client) in transports {
        for run in 1..=2 {
            match paged_list(client.clone()).await {
                Ok((count, pages, took)) => println!(
                    "RESULT full paged list of all pods, {transport} (kube-rs, pages of 500, run \
                     {run}): {count} pods in {pages} pages, {took:.2?}"
                ),
                Err(error) => println!("PROBLEM full paged list, {transport}: {error}"),
            }
        }
    }
    println!(
        "  RSS after the paged lists: {}",
        Memory::of_self().map_or("?".into(), |m| mib(m.rss_kib))
    );
}
