//! Figure 3: the size of a PatchRollout status at 5,000 targets, as the operator writes it.
//!
//! The engine decides (twice, the second time remembering the first status, as the
//! operator's next reconcile would) over a 5,000-node rollout in mid flight: 10 pools, 3
//! zones, `maxUnavailable: 10%` per pool so that 500 targets are in progress (a third
//! draining with pods refused by budgets, a third updating, a third verifying with pods
//! starting), 2,000 updated and 40 failed with drain-timeout messages naming their pods, of
//! which the status lists the engine's maximum ([`MAX_FAILURES`]). The status is converted
//! with `rollout_status_to_api` and serialized as the operator serializes it.

use std::{collections::BTreeMap, time::Instant};

use jiff::{SignedDuration, Timestamp};
use patchpilot::{
    api::convert::rollout_status_to_api,
    engine::{
        keys,
        machine::{
            self, HealthFacts, Input, JobFacts, JobState, Live, MAX_FAILURES, NodeFacts, Observed,
            Record, RecordState, Rollout, Status,
        },
        plan::Namespaces,
        policy::Policy,
        target::{Candidate, TargetId},
        testkit::Fleet,
        units::{Duration, IntOrPercent, Percent},
    },
};
use serde_json::json;

const TARGETS: usize = 5_000;
const UPDATED: usize = 2_000;
const FAILED: usize = 40;
const IN_PROGRESS: usize = 500;
const LIMIT: usize = 256 * 1024;

/// The benchmarks' `workers-os` policy, with `maxUnavailable: 10%` per pool (500 targets
/// in progress), a hundred failures allowed, approved automatically.
fn policy() -> Policy {
    Fleet::policy()
        .max_unavailable(IntOrPercent::Percent(Percent::new(10).unwrap()))
        .failure_budget(IntOrPercent::Count(100))
        .approved_automatically(Duration::ZERO)
}

/// Pods as the operator names them, `namespace/name`.
fn pods(i: usize, count: usize) -> Vec<String> {
    let workloads = [
        ("shop", "web-597b866fc8"),
        ("shop", "api-7d4b9c6f5"),
        ("jobs", "worker-6c8d7f9b4"),
        ("payments", "ledger-5f7c9d8b6"),
    ];
    (0..count)
        .map(|k| {
            let (namespace, prefix) = workloads[(i + k) % workloads.len()];
            format!("{namespace}/{prefix}-{:05x}", (i * 7 + k) % 0xfffff)
        })
        .collect()
}

/// What each pod-blocking budget is called.
fn budget(pod: &str) -> String {
    let (namespace, name) = pod.split_once('/').unwrap_or(("", pod));
    let workload = name.split('-').next().unwrap_or(name);
    format!("{namespace}/{workload}-pdb")
}

fn record(rollout: &Rollout, state: RecordState, since: Timestamp) -> Record {
    Record {
        rollout: rollout.name.clone(),
        attempt: 0,
        state,
        started: since,
        since,
        cordoned: true,
        boot_id: Some("boot-1".into()),
        previous_version: Some("2026-10-security".into()),
        images: Vec::new(),
        applied: state != RecordState::Applying,
        reason: None,
        message: None,
        uid: None,
    }
}

fn cluster(now: Timestamp, rollout: &Rollout) -> (Vec<Candidate>, BTreeMap<TargetId, Observed>) {
    let mut candidates = Fleet::workers(TARGETS).candidates();
    let order = Fleet::order(&candidates, &policy(), rollout, now);
    let mut observed = BTreeMap::new();
    let version_key = keys::version("workers-os");
    for (rank, &index) in order
        .iter()
        .enumerate()
        .take(UPDATED + FAILED + IN_PROGRESS)
    {
        let candidate = &mut candidates[index];
        let annotations = std::sync::Arc::make_mut(&mut candidate.annotations);
        let minutes = |m: i64| now - SignedDuration::from_mins(m);
        if rank < UPDATED {
            let r = record(
                rollout,
                RecordState::Updated,
                minutes(300 - rank as i64 / 10),
            );
            annotations.insert(keys::record("workers-os"), r.to_annotation());
            annotations.insert(version_key.clone(), rollout.patch.version.clone());
            continue;
        }
        if rank < UPDATED + FAILED {
            let stuck = pods(rank, 7);
            let shown: Vec<String> = stuck
                .iter()
                .take(5)
                .enumerate()
                .map(|(k, p)| match k < 3 {
                    true => format!("{p} (PodDisruptionBudget {})", budget(p)),
                    false => p.clone(),
                })
                .collect();
            let mut r = record(rollout, RecordState::Failed, minutes(rank as i64 % 97));
            r.reason = Some("DrainTimeout".into());
            r.message = Some(format!(
                "pods still on the node after 10m: 7 pod(s): {}, and 2 more",
                shown.join(", ")
            ));
            annotations.insert(keys::record("workers-os"), r.to_annotation());
            annotations.insert(version_key.clone(), "2026-10-security".into());
            continue;
        }
        let r = record(rollout, RecordState::Applying, minutes(3));
        annotations.insert(keys::record("workers-os"), r.to_annotation());
        annotations.insert(keys::LOCK.to_owned(), rollout.name.clone());
        let (node, health) = match rank % 3 {
            0 => {
                let to_evict = pods(rank, 7);
                let blocked = to_evict
                    .iter()
                    .take(3)
                    .map(|p| (p.clone(), format!("PodDisruptionBudget {}", budget(p))));
                let node = NodeFacts {
                    unschedulable: true,
                    ready: true,
                    ready_since: Some(minutes(600)),
                    boot_id: "boot-1".into(),
                    blocked: blocked.collect(),
                    pods_to_evict: to_evict,
                    updater: None,
                };
                (node, None)
            }
            1 => {
                let node = NodeFacts {
                    unschedulable: true,
                    ready: true,
                    ready_since: Some(minutes(600)),
                    boot_id: "boot-1".into(),
                    updater: Some(JobFacts {
                        state: JobState::Running,
                        finished: None,
                        message: None,
                    }),
                    ..NodeFacts::default()
                };
                (node, None)
            }
            _ => {
                let starting = pods(rank, 5);
                let node = NodeFacts {
                    unschedulable: false,
                    ready: true,
                    ready_since: Some(minutes(1)),
                    boot_id: "boot-2".into(),
                    updater: Some(JobFacts {
                        state: JobState::Succeeded,
                        finished: Some(minutes(2)),
                        message: None,
                    }),
                    ..NodeFacts::default()
                };
                let settling = format!(
                    "podsReady: 5 pod(s) starting: {} and 2 more",
                    starting[..3].join(", ")
                );
                let by = now + SignedDuration::from_mins(14);
                (node, Some(HealthFacts::settling(vec![settling], Some(by))))
            }
        };
        observed.insert(
            candidate.id.clone(),
            Observed {
                live: Live::Node(node),
                health,
            },
        );
    }
    (candidates, observed)
}

pub fn run() {
    println!("== 3. PatchRollout status size at {TARGETS} targets ==");
    let now: Timestamp = "2026-11-22T01:30:00Z".parse().unwrap();
    let policy = policy();
    let rollout = Fleet::rollout(now - SignedDuration::from_hours(6));
    let (candidates, observed) = cluster(now, &rollout);
    let namespaces = Namespaces::new();
    let started = Instant::now();
    let empty = Status::default();
    let decide = |previous: &Status| {
        machine::decide(&Input {
            now,
            rollout: &rollout,
            policy: &policy,
            window: None,
            superseded: false,
            stopping: false,
            siblings: &[],
            status: previous,
            candidates: &candidates,
            namespaces: &namespaces,
            observed: &observed,
        })
    };
    let first = decide(&empty);
    let decision = decide(&first.status);
    let status = rollout_status_to_api(&decision.status, rollout.generation);
    let bytes = serde_json::to_vec(&status).expect("the status serializes");
    let body = json!({
        "apiVersion": "patchpilot.dev/v1alpha1",
        "kind": "PatchRollout",
        "metadata": {"name": rollout.name},
        "status": status,
    });
    let body = serde_json::to_vec(&body).expect("the body serializes");
    let size = |v: &serde_json::Value| serde_json::to_vec(v).map(|b| b.len()).unwrap_or(0);
    let value = serde_json::to_value(&status).expect("the status serializes");
    let in_progress = size(&value["inProgress"]);
    let failures = size(&value["failures"]);
    let c = decision.status.counts;
    println!(
        "rollout: phase {:?}, {} targets: {} updated, {} failed, {} in progress, {} pending",
        decision.status.phase, c.total, c.updated, c.failed, c.in_progress, c.pending
    );
    println!(
        "listed: {} in progress, {} failures (MAX_FAILURES = {MAX_FAILURES})",
        decision.status.in_progress.len(),
        decision.status.failures.len()
    );
    let per = |total: usize, n: usize| total.checked_div(n).unwrap_or(0);
    println!(
        "status JSON: {} bytes ({:.1} KiB); inProgress {} bytes ({} per entry), failures {} bytes \
         ({} per entry), the rest {} bytes",
        bytes.len(),
        bytes.len() as f64 / 1024.0,
        in_progress,
        per(in_progress, decision.status.in_progress.len()),
        failures,
        per(failures, decision.status.failures.len()),
        bytes.len() - in_progress - failures
    );
    println!(
        "server-side apply body (apiVersion, kind, metadata.name, status): {} bytes ({:.1} KiB)",
        body.len(),
        body.len() as f64 / 1024.0
    );
    println!(
        "target: under 256 KiB: {} ({} bytes of {LIMIT})",
        if bytes.len() < LIMIT {
            "MET"
        } else {
            "NOT MET"
        },
        bytes.len()
    );
    let entry = per(in_progress, decision.status.in_progress.len()).max(1);
    println!(
        "at about {entry} bytes per in-progress entry, the status would reach 256 KiB with about {} targets in progress",
        (LIMIT - (bytes.len() - in_progress)) / entry
    );
    println!(
        "(two decisions and the conversion took {:.1?})",
        started.elapsed()
    );
}
