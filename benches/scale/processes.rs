//! `patchpilot run` as its own process against the 5,000-node sandbox served by another:
//! its resident memory while a node rollout makes progress.

use std::{
    collections::BTreeMap,
    fs::File,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use k8s_openapi::api::apps::v1::Deployment;
use kube::{
    Api, Client,
    api::{ListParams, Patch, PatchParams, PostParams},
    config::{KubeConfigOptions, Kubeconfig},
};
use patchpilot::api::PatchPolicy;
use serde_json::{Value, json};

use crate::{
    BIN, NODES, PODS, SCENARIO,
    mem::{Memory, mib},
};

/// How long the operator's memory is sampled after its caches are filled, at least…
const SAMPLE_FOR: Duration = Duration::from_secs(60);
/// …and, until this many nodes are updated (the per-node figures are of the first 100), at
/// most.
const SAMPLE_AT_MOST: Duration = Duration::from_secs(600);
/// The nodes updated that end the sampling after [`SAMPLE_FOR`].
const UPDATED_WANTED: u64 = 100;

/// The children, killed if the benchmark stops early.
#[derive(Default)]
struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for child in &mut self.0 {
            if let Ok(None) = child.try_wait() {
                let _ = child.kill();
            }
            let _ = child.wait();
        }
    }
}

/// The node policy the benchmark rolls out: every worker node, 2% of each pool at a time (10
/// of 500), no canary, drain, an updater that reboots the node (asked for by the annotation
/// `reboot` on its pod: the simulated kubelets of the sandbox and of kwok read different
/// ones), then health checks.
fn policy(reboot: &str) -> PatchPolicy {
    serde_json::from_value(json!({
        "apiVersion": "patchpilot.dev/v1alpha1",
        "kind": "PatchPolicy",
        "metadata": {"name": "scale-os"},
        "spec": {
            "targets": {
                "nodes": {
                    "selector": {"matchLabels": {"node-role.kubernetes.io/worker": ""}},
                    "poolLabel": "pool",
                },
            },
            "patch": {
                "version": "2026-11-security",
                "classification": "Important",
                "description": "scale benchmark",
                "updater": {
                    "expectReboot": true,
                    "template": {
                        "metadata": {"annotations": {reboot: "true"}},
                        "spec": {"containers": [{
                            "name": "upgrade",
                            "image": "docker.io/library/debian:bookworm-slim",
                            "command": ["/bin/sh", "-c", "apt-get -y upgrade && systemd-run --on-active=5 systemctl reboot"],
                        }]},
                    },
                },
            },
            "strategy": {
                "canary": {"targets": 0},
                "maxUnavailable": "2%",
                "failureBudget": "1%",
                "onFailure": "Pause",
            },
            // Evictions are answered at once, but on the real control plane kwok can take
            // minutes to delete evicted pods while it is busy: with 2m, all of the first 100
            // nodes timed out in their drain (2026-12-07).
            "drain": {"timeout": "10m", "ignoreDaemonSets": true, "deleteEmptyDirData": true},
            "health": {
                "timeout": "2m",
                "soak": "10s",
                "checks": [{"nodeReady": {}}, {"podsReady": {}}],
            },
            "approval": {"mode": "Automatic"},
        },
    }))
    .expect("the benchmark's policy reads")
}

pub async fn client_of(kubeconfig: &Path, context: &str) -> Client {
    let file = Kubeconfig::read_from(kubeconfig).expect("the sandbox's kubeconfig reads");
    let options = KubeConfigOptions {
        context: Some(context.to_owned()),
        ..Default::default()
    };
    let config = kube::Config::from_custom_kubeconfig(file, &options)
        .await
        .expect("the sandbox's kubeconfig is usable");
    Client::try_from(config).unwrap()
}

pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The rollouts as the API returns them.
async fn rollout_objects(client: &Client) -> Option<Vec<Value>> {
    let request = http::Request::get("/apis/patchpilot.dev/v1alpha1/patchrollouts")
        .body(Vec::new())
        .unwrap();
    let text = client.request_text(request).await.ok()?;
    let list: Value = serde_json::from_str(&text).ok()?;
    list["items"].as_array().cloned()
}

fn rollout_line(r: &Value) -> String {
    let s = &r["status"];
    let steps: BTreeMap<&str, usize> =
        s["inProgress"]
            .as_array()
            .into_iter()
            .flatten()
            .fold(BTreeMap::new(), |mut steps, t| {
                *steps.entry(t["step"].as_str().unwrap_or("?")).or_default() += 1;
                steps
            });
    format!(
        "rollout {}: {} {} updated, targets {}{}{}",
        r["metadata"]["name"].as_str().unwrap_or("?"),
        s["phase"].as_str().unwrap_or("(no phase)"),
        s["progress"].as_str().unwrap_or("?"),
        s["targets"],
        if steps.is_empty() {
            String::new()
        } else {
            format!(", in progress by step {steps:?}")
        },
        s["halt"]["reason"]
            .as_str()
            .map(|h| format!(", halted: {h}"))
            .unwrap_or_default()
    )
}

/// The rollouts, one line each: phase, progress and target counts.
async fn rollouts(client: &Client) -> Vec<String> {
    match rollout_objects(client).await {
        Some(items) => items.iter().map(rollout_line).collect(),
        None => vec![UNLISTED.into()],
    }
}

/// What a report says when the rollouts could not be listed.
const UNLISTED: &str = "(the rollouts could not be listed)";

fn median(values: &[u64]) -> u64 {
    let mut v = values.to_vec();
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or(0)
}

/// Counts the operator's log lines by level and lists its distinct warnings and errors.
fn summarize_log(path: &Path) {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut levels: BTreeMap<String, usize> = BTreeMap::new();
    let mut problems: BTreeMap<String, usize> = BTreeMap::new();
    for line in text.lines() {
        let Ok(entry) = serde_json::from_str::<Value>(line) else {
            *problems.entry(format!("(not JSON) {line}")).or_default() += 1;
            continue;
        };
        let level = entry["level"].as_str().unwrap_or("?").to_owned();
        if level == "WARN" || level == "ERROR" {
            let mut key = format!(
                "{level} {}: {}",
                entry["target"].as_str().unwrap_or(""),
                entry["message"].as_str().unwrap_or("")
            );
            for field in ["error", "kind", "rollout"] {
                if let Some(value) = entry.get(field) {
                    key.push_str(&format!(" {field}={value}"));
                }
            }
            key.truncate(400);
            *problems.entry(key).or_default() += 1;
        }
        *levels.entry(level).or_default() += 1;
    }
    println!("  operator log lines by level: {levels:?}");
    for (problem, count) in problems.iter().take(12) {
        println!("  {count:>5} × {problem}");
    }
    if problems.len() > 12 {
        println!(
            "  … and {} more distinct warnings/errors",
            problems.len() - 12
        );
    }
}

/// 4. The sandbox and the operator as two processes.
pub async fn operator_memory() {
    println!(
        "\n== 4. `patchpilot run` as its own process against `patchpilot sandbox --serve \
         --without-operator` ({NODES} nodes, {PODS} pods)"
    );
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/target/scale-bench"));
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = dir.join("kubeconfig");
    let _ = std::fs::remove_file(&kubeconfig);
    let sandbox_log = dir.join("sandbox.log");
    let operator_log = dir.join("operator.log");
    println!(
        "  logs: {} and {}",
        sandbox_log.display(),
        operator_log.display()
    );
    let mut children = Children::default();
    let began = Instant::now();
    let log = File::create(&sandbox_log).unwrap();
    let sandbox = Command::new(BIN)
        .args(["sandbox", "--scenario", SCENARIO, "--serve", "127.0.0.1:0"])
        .arg("--kubeconfig-out")
        .arg(&kubeconfig)
        .arg("--without-operator")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("the sandbox starts");
    let sandbox_pid = sandbox.id();
    children.0.push(sandbox);
    // It writes the kubeconfig once the scenario's objects are created and it serves.
    while std::fs::metadata(&kubeconfig).map_or(true, |m| m.len() == 0) {
        if let Ok(Some(status)) = children.0[0].try_wait() {
            println!(
                "PROBLEM the sandbox exited ({status}) before serving:\n{}",
                tail(&sandbox_log, 50)
            );
            return;
        }
        if began.elapsed() > Duration::from_secs(600) {
            println!("PROBLEM the sandbox did not serve within 10 minutes");
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let served = began.elapsed();
    println!("  the sandbox serves after {served:.2?}");
    let admin = client_of(&kubeconfig, "sandbox").await;
    let deployments = Api::<Deployment>::all(admin.clone());
    let mut last_report = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let listed = Instant::now();
        let list = match deployments.list(&ListParams::default()).await {
            Ok(list) => list,
            Err(error) => {
                println!("  listing Deployments failed: {error}");
                continue;
            }
        };
        let list_time = listed.elapsed();
        let ready = list
            .items
            .iter()
            .filter(|d| {
                d.status.as_ref().is_some_and(|s| {
                    s.ready_replicas == Some(10)
                        && s.updated_replicas == Some(10)
                        && s.replicas == Some(10)
                })
            })
            .count();
        if ready == PODS / 10 {
            break;
        }
        if last_report.elapsed() >= Duration::from_secs(10) {
            println!(
                "  … {:>5.1}s: {ready} of {} Deployments with 10 Ready pods (listing them over HTTP: {list_time:.0?})",
                began.elapsed().as_secs_f64(),
                list.items.len()
            );
            last_report = Instant::now();
        }
        if began.elapsed() > Duration::from_secs(600) {
            println!("PROBLEM the served sandbox did not settle in 10 minutes");
            return;
        }
    }
    let settled = began.elapsed();
    let count = |query: &'static str| {
        let admin = admin.clone();
        async move {
            let request = http::Request::get(format!("/api/v1/pods?{query}"))
                .body(Vec::new())
                .unwrap();
            let text = admin.request_text(request).await.unwrap_or_default();
            let list: Value = serde_json::from_str(&text).unwrap_or_default();
            list["items"].as_array().map_or(0, Vec::len) as u64
                + list["metadata"]["remainingItemCount"].as_u64().unwrap_or(0)
        }
    };
    let pods = count("limit=1").await;
    let not_running = count("limit=1&fieldSelector=status.phase%21%3DRunning").await;
    let memory = Memory::of(sandbox_pid).unwrap_or_default();
    println!(
        "RESULT served sandbox (own process, multi-threaded runtime, real time): serving after \
         {served:.2?}, every Deployment Ready after {settled:.2?}; {pods} pods, {not_running} not \
         Running; sandbox VmRSS {}, VmHWM {}",
        mib(memory.rss_kib),
        mib(memory.hwm_kib)
    );

    let cluster = Cluster {
        admin,
        kubeconfig,
        context: "patchpilot",
        servers: vec![("sandbox", sandbox_pid)],
        reboot: "sandbox.patchpilot.dev/reboot",
        env: Vec::new(),
    };
    run_operator(&cluster, &operator_log).await;
    drop(children);
}

/// A cluster the operator runs against, as `run_operator` needs it.
pub struct Cluster {
    /// A client for the benchmark's own requests.
    pub admin: Client,
    /// The kubeconfig `patchpilot run` reads.
    pub kubeconfig: PathBuf,
    /// Its context for the operator.
    pub context: &'static str,
    /// The processes serving the cluster, whose memory is sampled beside the operator's.
    pub servers: Vec<(&'static str, u32)>,
    /// The annotation on an updater's pod that has the simulated kubelet reboot the node.
    pub reboot: &'static str,
    /// Environment variables for `patchpilot run`.
    pub env: Vec<(&'static str, String)>,
}

/// Creates the node policy, starts `patchpilot run` against `cluster`, and samples its memory
/// (and the servers') while the rollout runs, then stops it as Kubernetes would.
pub async fn run_operator(cluster: &Cluster, operator_log: &Path) {
    let admin = &cluster.admin;
    Api::<PatchPolicy>::all(admin.clone())
        .create(&PostParams::default(), &policy(cluster.reboot))
        .await
        .expect("the benchmark's policy is accepted");
    println!(
        "  created PatchPolicy scale-os: every worker node, maxUnavailable 2% per pool (10 of \
         500, 100 nodes at once), no canary, automatic approval, an updater that reboots the \
         node, health soak 10s"
    );

    let mut children = Children::default();
    let started = Instant::now();
    // `SCALE_OPERATOR_WRAP=heaptrack` runs the operator under a profiler (its memory is then
    // the wrapper's, not the operator's: read the profile instead).
    let mut operator = match std::env::var("SCALE_OPERATOR_WRAP") {
        Ok(wrapper) => {
            let mut command = Command::new(wrapper);
            command.arg(BIN);
            command
        }
        Err(_) => Command::new(BIN),
    };
    let operator = operator
        .args([
            "run",
            "--context",
            cluster.context,
            "--metrics-addr",
            "127.0.0.1:0",
            "--log-format",
            "json",
        ])
        .env("KUBECONFIG", &cluster.kubeconfig)
        .envs(cluster.env.iter().map(|(k, v)| (k, v)))
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(operator_log).unwrap())
        .spawn()
        .expect("patchpilot run starts");
    let operator_pid = operator.id();
    children.0.push(operator);
    let exited = |children: &mut Children| children.0[0].try_wait().ok().flatten();
    let mut startup_peak = 0;
    let synced = loop {
        if let Some(m) = Memory::of(operator_pid) {
            startup_peak = startup_peak.max(m.rss_kib);
        }
        if std::fs::read_to_string(operator_log).is_ok_and(|t| t.contains("caches filled")) {
            break started.elapsed();
        }
        if let Some(status) = exited(&mut children) {
            println!(
                "PROBLEM `patchpilot run` exited ({status}) before its caches were filled; its \
                 stderr verbatim:\n{}",
                std::fs::read_to_string(operator_log).unwrap_or_default()
            );
            return;
        }
        if started.elapsed() > Duration::from_secs(300) {
            println!(
                "PROBLEM `patchpilot run` did not fill its caches in 5 minutes; its last log lines:\n{}",
                tail(operator_log, 30)
            );
            break started.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let at_sync = Memory::of(operator_pid).unwrap_or_default();
    println!(
        "RESULT operator startup: caches filled {synced:.2?} after `patchpilot run` started; VmRSS \
         then {}",
        mib(at_sync.rss_kib)
    );

    // The policy existed before the operator started: its rollout must not have finished
    // without doing anything.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let early = rollout_objects(admin).await.unwrap_or_default();
    let vacuous = early.iter().any(|r| {
        r["status"]["phase"] == "Succeeded"
            && r["status"]["targets"]["updated"].as_u64() == Some(0)
            && r["status"]["targets"]["pending"].as_u64().unwrap_or(0) > 0
    });
    for r in &early {
        println!("  3 s after the caches were filled: {}", rollout_line(r));
    }
    let idle = Memory::of(operator_pid).unwrap_or_default();
    if vacuous {
        println!(
            "PROBLEM the rollout of the policy created before `patchpilot run` started is \
             Succeeded with 0 targets updated and every target pending: it was reconciled before \
             the node cache was filled. Working around it: a new spec.patch.version starts a \
             second rollout now that the caches are filled."
        );
        Api::<PatchPolicy>::all(admin.clone())
            .patch(
                "scale-os",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"patch": {"version": "2026-11-security-2"}}})),
            )
            .await
            .expect("the policy's new version is accepted");
    }
    println!(
        "RESULT operator memory with its caches filled, before any target is in progress: VmRSS {}",
        mib(idle.rss_kib)
    );

    let mut samples = Vec::new();
    let mut server_samples = vec![Vec::new(); cluster.servers.len()];
    let mut peak = Memory::default();
    let sampling = Instant::now();
    let mut died = None;
    let mut updated = 0;
    for second in 1..=SAMPLE_AT_MOST.as_secs() {
        if second > SAMPLE_FOR.as_secs() && updated >= UPDATED_WANTED {
            break;
        }
        let next = sampling + Duration::from_secs(second);
        tokio::time::sleep_until(next.into()).await;
        if let Some(status) = exited(&mut children) {
            died = Some(status);
            break;
        }
        if let Some(m) = Memory::of(operator_pid) {
            samples.push(m.rss_kib);
            peak = m;
        }
        for ((_, pid), samples) in cluster.servers.iter().zip(&mut server_samples) {
            if let Some(m) = Memory::of(*pid) {
                samples.push(m.rss_kib);
            }
        }
        if second % 10 == 0 {
            let servers: Vec<String> = cluster
                .servers
                .iter()
                .zip(&server_samples)
                .map(|((name, _), s)| {
                    format!("{name} {}", s.last().map_or("?".into(), |k| mib(*k)))
                })
                .collect();
            println!(
                "  t+{second:>2}s: operator VmRSS {}; VmRSS of {}",
                samples.last().map_or("?".into(), |k| mib(*k)),
                servers.join(", "),
            );
            // One list a report: its lines, and the nodes updated so far.
            match rollout_objects(admin).await {
                Some(items) => {
                    for item in &items {
                        println!("         {}", rollout_line(item));
                    }
                    updated = items
                        .iter()
                        .filter_map(|r| r["status"]["targets"]["updated"].as_u64())
                        .sum();
                }
                None => println!("         {UNLISTED}"),
            }
        }
    }
    if let Some(status) = died {
        println!(
            "PROBLEM `patchpilot run` exited ({status}) while the rollout ran; its stderr \
             verbatim:\n{}",
            std::fs::read_to_string(operator_log).unwrap_or_default()
        );
    }
    let last = &samples[samples.len().saturating_sub(20)..];
    let split = Memory::of(operator_pid).unwrap_or(peak);
    println!(
        "RESULT operator memory over {:.0?} of a running rollout: steady-state VmRSS {} (median \
         of the last {} one-second samples; at the end RssAnon {} + RssFile {}), VmRSS min {} / \
         max {}, peak VmHWM {} (target: under 64 MiB resident)",
        sampling.elapsed(),
        mib(median(last)),
        last.len(),
        mib(split.anon_kib),
        mib(split.file_kib),
        mib(samples.iter().copied().min().unwrap_or(0)),
        mib(samples.iter().copied().max().unwrap_or(0)),
        mib(peak.hwm_kib)
    );
    for ((name, pid), samples) in cluster.servers.iter().zip(&server_samples) {
        let memory = Memory::of(*pid).unwrap_or_default();
        println!(
            "RESULT {name} process (for reference) meanwhile: VmRSS median {}, now {}, peak \
             VmHWM {}",
            mib(median(samples)),
            mib(memory.rss_kib),
            mib(memory.hwm_kib)
        );
    }
    for line in rollouts(admin).await {
        println!("  at the end: {line}");
    }

    // Stop the operator as Kubernetes would (SIGTERM), then the sandbox.
    if died.is_none() {
        let _ = Command::new("kill")
            .args(["-TERM", &operator_pid.to_string()])
            .status();
        let stopping = Instant::now();
        let status = loop {
            if let Some(status) = exited(&mut children) {
                break Some(status);
            }
            if stopping.elapsed() > Duration::from_secs(60) {
                break None;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        match status {
            Some(status) if stopping.elapsed() > Duration::from_secs(10) => println!(
                "PROBLEM `patchpilot run` took {:.1?} to stop on SIGTERM (finishing a reconcile \
                 in flight): {status}",
                stopping.elapsed()
            ),
            Some(status) => println!(
                "  `patchpilot run` stopped on SIGTERM after {:.2?}: {status}",
                stopping.elapsed()
            ),
            None => println!(
                "PROBLEM `patchpilot run` did not stop within 60 s of SIGTERM (a reconcile in \
                 flight does not finish)"
            ),
        }
    }
    summarize_log(operator_log);
}
