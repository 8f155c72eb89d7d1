//! `status`: a rollout as a tree — its phase and why, its waves, each target in progress
//! with its step, the updater Job and the pods its drain waits on with the budgets that
//! hold them, and its failures, each target with its last health observations — once, or
//! redrawn until the rollout ends.
//!
//! What is shown is read in one pass ([`Scene::read`]) and drawn by a pure function
//! ([`draw`]) of it and the time, so the drawing is tested on literals.

use std::{collections::BTreeMap, time::Duration};

use jiff::Timestamp;
use k8s_openapi::api::{batch::v1::Job, policy::v1::PodDisruptionBudget};
use kube::{
    Api, Client,
    api::{ListParams, ObjectList},
};

use super::{Outcome, Output, PluginError, StatusArgs, health, list, rollout, text, text::Paint};
use crate::{
    api::{DrainSpec, PatchPolicy, PatchRollout},
    controller::{
        pod::PodFacts,
        rollout::{budgets, read},
    },
    engine::{
        keys,
        machine::JobState,
        plan,
        rollout::{Phase, Step},
        target::{TargetId, TargetKind},
    },
};

/// How often `--watch` reads the rollout again.
const WATCH_PERIOD: Duration = Duration::from_secs(2);

/// Exit status of a `--timeout` that passed first.
const TIMED_OUT: u8 = 3;

/// Runs `status`.
pub async fn run(client: &Client, args: &StatusArgs) -> Outcome {
    let paint = Paint::for_stdout();
    let wide = args.output == Some(Output::Wide);
    let first = rollout(client, &args.which).await?;
    let name = first.metadata.name.clone().unwrap_or_default();
    if let Some(format @ (Output::Json | Output::Yaml)) = args.output {
        print!("{}", encode(&first, format)?);
        return Ok(verdict(&first).unwrap_or(0));
    }
    let scene = Scene::read(client, first, wide).await?;
    let mut shown = draw(&scene, super::server_now(client).await, paint);
    let mut code = verdict(&scene.rollout);
    if !args.watch || code.is_some() {
        print!("{shown}");
        return Ok(code.unwrap_or(0));
    }
    let deadline = args.timeout.map(|t| tokio::time::Instant::now() + t);
    let clear = if paint.is_terminal() {
        "\x1b[H\x1b[2J"
    } else {
        ""
    };
    print!("{clear}{shown}");
    let mut summary = one_line(&scene.rollout);
    while code.is_none() {
        if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
            eprintln!(
                "error: timed out after {} waiting for PatchRollout {name} to end ({summary})",
                humantime(args.timeout.unwrap_or_default()),
            );
            return Ok(TIMED_OUT);
        }
        tokio::time::sleep(WATCH_PERIOD).await;
        let scene = Scene::read(client, super::get_rollout(client, &name).await?, wide).await?;
        code = verdict(&scene.rollout);
        let drawn = draw(&scene, super::server_now(client).await, paint);
        if paint.is_terminal() {
            if drawn != shown {
                print!("{clear}{drawn}");
            }
        } else {
            // Not a terminal (a CI log): one line per change, and the whole tree at the end.
            let line = one_line(&scene.rollout);
            if line != summary {
                println!("{} {line}", Timestamp::now().strftime("%H:%M:%S"));
            }
            if code.is_some() {
                print!("\n{drawn}");
            }
            summary = line;
        }
        shown = drawn;
    }
    Ok(code.unwrap_or(0))
}

/// The exit status once the rollout has ended or needs a person: 0 when it succeeded, 1
/// when it ended without its change (`Failed`, `RolledBack`, `Superseded`) or is
/// `Stalled`; `None` while it goes on.
fn verdict(rollout: &PatchRollout) -> Option<u8> {
    let status = rollout.status.as_ref()?;
    let stalled =
        text::condition(&status.conditions, "Stalled").is_some_and(|c| c.status == "True");
    match status.phase {
        Phase::Succeeded if status.targets.in_progress == 0 => Some(0),
        Phase::Failed | Phase::RolledBack => Some(1),
        Phase::Superseded if status.targets.in_progress == 0 => Some(1),
        _ if stalled => Some(1),
        _ => None,
    }
}

/// A rollout in a few words, for the lines of a watch outside a terminal.
fn one_line(rollout: &PatchRollout) -> String {
    let status = rollout.status.clone().unwrap_or_default();
    let c = &status.targets;
    let wave = status.wave.as_ref().map_or(String::new(), |w| {
        format!(", wave {} ({}/{})", w.name, w.index, w.total)
    });
    format!(
        "{:?}{wave}: {} updated, {} in progress, {} pending, {} failed, {} rolled back",
        status.phase, c.updated, c.in_progress, c.pending, c.failed, c.rolled_back
    )
}

fn humantime(duration: Duration) -> String {
    text::age(
        Timestamp::UNIX_EPOCH,
        Timestamp::UNIX_EPOCH + jiff::SignedDuration::try_from(duration).unwrap_or_default(),
    )
}

/// An object as `-o json` or `-o yaml` prints it.
pub fn encode(object: &impl serde::Serialize, format: Output) -> Result<String, PluginError> {
    Ok(match format {
        Output::Yaml => serde_yaml_ng::to_string(object)
            .map_err(|e| PluginError::Output(std::io::Error::other(e)))?,
        Output::Json | Output::Wide => serde_json::to_string_pretty(object)? + "\n",
    })
}

/// Everything the tree shows, read at one time.
pub struct Scene {
    /// The rollout.
    pub rollout: PatchRollout,
    /// Its waves (name, size, soak) when its policy can be read.
    pub waves: Vec<plan::Wave>,
    /// The policy's approval mode and window, when it exists.
    pub policy: Option<PatchPolicy>,
    /// For each target in progress: its updater Jobs and the pods its drain waits on.
    pub targets: BTreeMap<String, Detail>,
}

/// What is going on around one target in progress.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Detail {
    /// The rollout's updater Jobs for it: `namespace/name` and how it stands.
    pub jobs: Vec<(String, String)>,
    /// Pods still on a node being drained: `namespace/name`, and the budgets that select
    /// them with the disruptions each allows.
    pub pods: Vec<(String, Vec<(String, i32)>)>,
}

impl Scene {
    /// Reads what the tree shows of `rollout`: its policy, and for its targets in progress
    /// the updater Jobs and (draining nodes) the pods left and their budgets.
    pub async fn read(
        client: &Client,
        rollout: PatchRollout,
        wide: bool,
    ) -> Result<Self, PluginError> {
        let name = rollout.metadata.name.clone().unwrap_or_default();
        let policy = Api::<PatchPolicy>::all(client.clone())
            .get_opt(&rollout.spec.policy)
            .await
            .map_err(|e| PluginError::api(format!("PatchPolicy {}", rollout.spec.policy), e))?;
        let status = rollout.status.clone().unwrap_or_default();
        let waves = policy
            .as_ref()
            .and_then(|p| p.spec.to_engine(&rollout.spec.policy).ok())
            .zip(eligible(status.progress.as_deref()))
            .map(|(engine, eligible)| plan::waves(&engine.strategy, eligible))
            .unwrap_or_default();
        let mut targets = BTreeMap::new();
        if !status.in_progress.is_empty() {
            let jobs: ObjectList<Job> = Api::<Job>::all(client.clone())
                .list(&ListParams::default().labels(&format!("{}={name}", keys::ROLLOUT_LABEL)))
                .await
                .map_err(|e| PluginError::api("listing the updater Jobs", e))?;
            for progress in &status.in_progress {
                let mut detail = Detail {
                    jobs: jobs
                        .items
                        .iter()
                        .filter(|job| {
                            job.metadata
                                .annotations
                                .as_ref()
                                .and_then(|a| a.get("patchpilot.dev/target"))
                                == Some(&progress.target)
                        })
                        .map(|job| (object_key(&job.metadata), job_state(job)))
                        .collect(),
                    pods: Vec::new(),
                };
                if let Some((TargetKind::Node, _, node)) = TargetId::parse(&progress.target)
                    && (progress.step == Step::Draining || wide)
                {
                    let drain = policy.as_ref().and_then(|p| p.spec.drain.clone());
                    detail.pods = drained_pods(client, node, &drain.unwrap_or_default()).await?;
                }
                targets.insert(progress.target.clone(), detail);
            }
        }
        Ok(Scene {
            rollout,
            waves,
            policy,
            targets,
        })
    }
}

/// The eligible count of `updated/eligible`.
fn eligible(progress: Option<&str>) -> Option<usize> {
    progress?.split_once('/')?.1.parse().ok()
}

fn object_key(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> String {
    format!(
        "{}/{}",
        meta.namespace.as_deref().unwrap_or(""),
        meta.name.as_deref().unwrap_or("")
    )
}

/// How a Job stands, as the operator reads it ([`read::job_facts`]), with why it failed.
fn job_state(job: &Job) -> String {
    let facts = read::job_facts(job);
    match (facts.state, facts.message) {
        (JobState::Running, _) => "running".into(),
        (JobState::Succeeded, _) => "succeeded".into(),
        (JobState::Failed, Some(why)) => format!("failed: {why}"),
        (JobState::Failed, None) => "failed".into(),
    }
}

/// The pods a drain of `node` under `drain` still has to evict, by the operator's own rule
/// ([`read::must_leave`]), with the budgets that select each ([`budgets::selects`]) and
/// the disruptions they allow.
async fn drained_pods(
    client: &Client,
    node: &str,
    drain: &DrainSpec,
) -> Result<Vec<(String, Vec<(String, i32)>)>, PluginError> {
    let pods = Api::<PodFacts>::all(client.clone())
        .list(&ListParams::default().fields(&format!("spec.nodeName={node}")))
        .await
        .map_err(|e| PluginError::api(format!("listing the pods on Node {node}"), e))?;
    let mut namespaces: BTreeMap<String, Vec<PodDisruptionBudget>> = BTreeMap::new();
    let mut left = Vec::new();
    for pod in pods.items.iter().filter(|pod| read::must_leave(pod, drain)) {
        let meta = &pod.metadata;
        let namespace = meta.namespace.clone().unwrap_or_default();
        if !namespaces.contains_key(&namespace) {
            let found = Api::<PodDisruptionBudget>::namespaced(client.clone(), &namespace)
                .list(&ListParams::default())
                .await
                .map_err(|e| PluginError::api(format!("listing the budgets of {namespace}"), e))?;
            namespaces.insert(namespace.clone(), found.items);
        }
        let labels = meta.labels.clone().unwrap_or_default();
        let holding = namespaces[&namespace]
            .iter()
            .filter(|budget| budgets::selects(budget, &labels) == Some(true))
            .map(|budget| {
                (
                    budgets::key(budget),
                    budget.status.as_ref().map_or(0, |s| s.disruptions_allowed),
                )
            })
            .collect();
        left.push((object_key(meta), holding));
    }
    Ok(left)
}

/// The tree of `scene` as of `now`.
pub fn draw(scene: &Scene, now: Timestamp, paint: Paint) -> String {
    let rollout = &scene.rollout;
    let spec = &rollout.spec;
    let status = rollout.status.clone().unwrap_or_default();
    let waiting = text::waiting(&status).map(str::to_owned);
    let stalled = text::condition(&status.conditions, "Stalled").filter(|c| c.status == "True");
    let mut out = String::new();
    let mut field = |label: &str, value: String| {
        out.push_str(&format!("{:<12}{value}\n", format!("{label}:")));
    };
    field(
        "Name",
        paint.bold(rollout.metadata.name.as_deref().unwrap_or("")),
    );
    let kind = scene
        .policy
        .as_ref()
        .and_then(|p| p.status.as_ref())
        .and_then(|s| s.target_kind.clone())
        .map_or(String::new(), |k| format!(" ({k} targets)"));
    field("Policy", format!("{}{kind}", spec.policy));
    let mut version = format!("{} ({:?}", spec.patch.version, spec.patch.classification);
    if spec.patch.emergency {
        version.push_str(", emergency");
    }
    version.push(')');
    if let Some(change) = &spec.change_ref {
        version.push_str(&format!(", change {change}"));
    }
    field("Version", version);
    let phase = text::phase_with_reason(status.phase, waiting.as_deref());
    let phase = match status.phase {
        Phase::Succeeded => paint.green(&phase),
        Phase::Failed | Phase::RolledBack | Phase::RollingBack => paint.red(&phase),
        _ if stalled.is_some() => paint.red(&phase),
        _ => paint.yellow(&phase),
    };
    field("Phase", phase);
    if let Some(stalled) = stalled {
        field(
            "Stalled",
            format!("{}: {}", stalled.reason, stalled.message),
        );
    }
    if let Some(message) = &status.message {
        field("Message", message.clone());
    }
    // What the rollout waits on before it can start or go on.
    if let Some(approved) = text::condition(&status.conditions, "Approved") {
        let value = if approved.status == "True" {
            format!("yes ({})", approved.message)
        } else {
            let name = rollout.metadata.name.as_deref().unwrap_or("");
            format!(
                "{}: {} — kubectl patchpilot approve {name}",
                paint.yellow("awaited"),
                approved.message
            )
        };
        field("Approval", value);
    }
    if waiting.as_deref() == Some("AwaitingPromotion") {
        let name = rollout.metadata.name.as_deref().unwrap_or("");
        field(
            "Promotion",
            format!(
                "{} — kubectl patchpilot promote {name}",
                paint.yellow("awaited")
            ),
        );
    }
    if let Some(window) = &status.next_window {
        let name = scene
            .policy
            .as_ref()
            .and_then(|p| p.spec.maintenance_window.clone())
            .map_or(String::new(), |w| format!("MaintenanceWindow {w}: "));
        let when = if window.start.0 <= now {
            format!("open until {}", text::instant(window.end.0))
        } else {
            format!(
                "next opens {} ({}), until {}",
                list::window(window.start.0, window.end.0, now),
                text::instant(window.start.0),
                text::instant(window.end.0)
            )
        };
        field("Window", format!("{name}{when}"));
    }
    let c = &status.targets;
    let mut counts = format!(
        "{} selected: {} updated, {} in progress, {} pending, {} failed, {} rolled back; {} excluded, {} up to date",
        c.total,
        c.updated,
        c.in_progress,
        c.pending,
        c.failed,
        c.rolled_back,
        c.excluded,
        c.up_to_date
    );
    if c.not_applicable > 0 {
        counts.push_str(&format!(", {} not applicable", c.not_applicable));
    }
    field("Targets", counts);
    if let Some(started) = &status.started_at {
        field(
            "Started",
            format!(
                "{} ago, {}",
                text::age(started.0, now),
                text::instant(started.0)
            ),
        );
    }
    if let Some(completed) = &status.completed_at {
        field("Completed", text::instant(completed.0));
    }

    // The waves, each with the targets in progress in it.
    out.push('\n');
    let current = status.wave.as_ref().map(|w| w.index as usize);
    let in_progress: Vec<_> = status.in_progress.iter().collect();
    let waves: Vec<(String, String)> = if scene.waves.is_empty() {
        status
            .wave
            .iter()
            .map(|w| (w.name.clone(), format!("wave {} of {}", w.index, w.total)))
            .collect()
    } else {
        scene
            .waves
            .iter()
            .map(|w| {
                let size = text::count((w.end - w.start) as u32, "target");
                let soak = if w.soak.as_millis() > 0 {
                    format!(", soak {}", w.soak)
                } else {
                    String::new()
                };
                (w.name.clone(), format!("{size}{soak}"))
            })
            .collect()
    };
    let rollout_line = format!(
        "{} PatchRollout {}",
        mark(status.phase, stalled.is_some(), paint),
        rollout.metadata.name.as_deref().unwrap_or("")
    );
    out.push_str(&rollout_line);
    out.push('\n');
    let shown_waves = waves.len();
    for (i, (name, about)) in waves.iter().enumerate() {
        let index = if scene.waves.is_empty() {
            current.unwrap_or(1)
        } else {
            i + 1
        };
        let last_wave = i + 1 == shown_waves;
        let (branch, stem) = if last_wave {
            ("└─", "   ")
        } else {
            ("├─", "│  ")
        };
        let promotion = waiting.as_deref() == Some("AwaitingPromotion");
        let started = status.started_at.is_some() || c.updated + c.in_progress + c.failed > 0;
        let state = match current {
            _ if status.phase == Phase::Succeeded => paint.green("✔ done"),
            Some(at) if index < at => paint.green("✔ done"),
            Some(at) if index == at && promotion => paint.green("✔ done"),
            Some(at) if index == at + 1 && promotion => paint.yellow("॥ awaiting promotion"),
            Some(at) if index == at => match status.phase {
                Phase::RolledBack | Phase::Failed => paint.red("✖ halted"),
                Phase::Superseded => "■ superseded".to_owned(),
                Phase::RollingBack => paint.red("↺ rolling back"),
                _ if !started => "○ next".to_owned(),
                _ => paint.yellow("◉ current"),
            },
            _ => "○ pending".to_owned(),
        };
        out.push_str(&format!("{branch} {state}  {name} ({about})\n"));
        if Some(index) == current || (current.is_none() && i == 0) {
            for (j, progress) in in_progress.iter().enumerate() {
                let last_target = j + 1 == in_progress.len();
                target_lines(&mut out, stem, last_target, progress, scene, now, paint);
            }
        }
    }
    if waves.is_empty() {
        for (j, progress) in in_progress.iter().enumerate() {
            target_lines(
                &mut out,
                "",
                j + 1 == in_progress.len(),
                progress,
                scene,
                now,
                paint,
            );
        }
    }

    if !status.failures.is_empty() {
        out.push_str("\nFailures");
        if c.failed as usize > status.failures.len() {
            out.push_str(&format!(
                " (the last {} of {})",
                status.failures.len(),
                c.failed
            ));
        }
        out.push_str(":\n");
        for failure in &status.failures {
            out.push_str(&format!(
                "  {} {}  {}: {}\n",
                paint.red("✖"),
                failure.target,
                failure.reason,
                failure.message
            ));
            let checks = health::lines(&failure.health, now, false, paint);
            branches(&mut out, "     ", &checks);
        }
    }
    if !status.annotation_problems.is_empty() {
        out.push_str("\nAnnotations patchpilot cannot use:\n");
        for problem in &status.annotation_problems {
            out.push_str(&format!(
                "  {} {}  {}\n",
                paint.yellow("⚠"),
                problem.target,
                problem.problem
            ));
        }
    }
    out
}

/// The mark of the rollout's own line.
fn mark(phase: Phase, stalled: bool, paint: Paint) -> String {
    match phase {
        Phase::Succeeded => paint.green("✔"),
        Phase::Failed | Phase::RolledBack => paint.red("✖"),
        _ if stalled => paint.red("⚠"),
        Phase::Paused => paint.yellow("॥"),
        _ => paint.yellow("◌"),
    }
}

/// The lines of one target in progress: its step and for how long, what it waits for, its
/// updater Jobs, the pods its drain has left with their budgets, and its health checks'
/// recent observations.
fn target_lines(
    out: &mut String,
    stem: &str,
    last: bool,
    progress: &crate::api::TargetProgress,
    scene: &Scene,
    now: Timestamp,
    paint: Paint,
) {
    let (branch, inner) = if last {
        ("└─", "   ")
    } else {
        ("├─", "│  ")
    };
    let action = match progress.action {
        crate::api::ActionName::Apply => String::new(),
        crate::api::ActionName::Rollback => format!(" {}", paint.red("(rollback)")),
    };
    out.push_str(&format!(
        "{stem}{branch} {}  {}{action}  for {}\n",
        progress.target,
        paint.bold(&format!("{:?}", progress.step)),
        text::age(progress.since.0, now)
    ));
    let detail = scene
        .targets
        .get(&progress.target)
        .cloned()
        .unwrap_or_default();
    let mut lines: Vec<String> = Vec::new();
    if let Some(message) = &progress.message {
        lines.push(message.clone());
    }
    for (job, state) in &detail.jobs {
        lines.push(format!("Job {job}: {state}"));
    }
    for (pod, budgets) in &detail.pods {
        let held = if budgets.is_empty() {
            "to evict".to_owned()
        } else {
            budgets
                .iter()
                .map(|(budget, allowed)| {
                    let text = format!(
                        "PodDisruptionBudget {budget} allows {}",
                        text::count(*allowed as u32, "disruption")
                    );
                    if *allowed == 0 {
                        paint.yellow(&text)
                    } else {
                        text
                    }
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        lines.push(format!("Pod {pod}: {held}"));
    }
    lines.extend(health::lines(&progress.health, now, true, paint));
    branches(out, &format!("{stem}{inner}"), &lines);
}

/// Lines as the branches of a tree under `indent`: `├─` for each, `└─` for the last.
fn branches(out: &mut String, indent: &str, lines: &[String]) {
    for (k, line) in lines.iter().enumerate() {
        let twig = if k + 1 == lines.len() {
            "└─"
        } else {
            "├─"
        };
        out.push_str(&format!("{indent}{twig} {line}\n"));
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use jiff::Timestamp;
    use serde_json::json;

    use super::{Detail, Scene, draw, verdict};
    use crate::{api::PatchRollout, engine::plan, plugin::text::Paint};

    fn rollout(status: serde_json::Value) -> PatchRollout {
        serde_json::from_value(json!({
            "apiVersion": "patchpilot.dev/v1alpha1",
            "kind": "PatchRollout",
            "metadata": {"name": "os-1", "creationTimestamp": "2026-11-28T11:00:00Z"},
            "spec": {"policy": "os", "patch": {"version": "2026.11", "classification": "Important"}, "changeRef": "CHG-7"},
            "status": status,
        }))
        .unwrap()
    }

    fn wave(name: &str, start: usize, end: usize) -> plan::Wave {
        plan::Wave {
            name: name.into(),
            start,
            end,
            soak: "10m".parse().unwrap(),
        }
    }

    #[test]
    fn a_draining_node_shows_what_holds_it() {
        let now: Timestamp = "2026-11-28T12:00:00Z".parse().unwrap();
        let scene = Scene {
            rollout: rollout(json!({
                "phase": "Progressing",
                "wave": {"index": 2, "name": "stage-1", "total": 3},
                "progress": "1/9",
                "targets": {"total": 10, "excluded": 1, "upToDate": 0, "pending": 7, "inProgress": 1, "updated": 1, "failed": 0, "rolledBack": 0},
                "inProgress": [{"target": "Node/general-2", "action": "apply", "step": "Draining", "since": "2026-11-28T11:56:48Z", "message": "PodDisruptionBudget shop/web allows 0 disruptions"}],
                "conditions": [
                    {"type": "Reconciling", "status": "True", "reason": "Progressing", "message": "m", "lastTransitionTime": "2026-11-28T11:30:00Z"},
                    {"type": "Approved", "status": "True", "reason": "Approved", "message": "spec.approved is true", "lastTransitionTime": "2026-11-28T11:30:00Z"},
                ],
                "message": "1/9 targets updated",
            })),
            waves: vec![
                wave("canary", 0, 1),
                wave("stage-1", 1, 5),
                wave("full", 5, 9),
            ],
            policy: None,
            targets: BTreeMap::from([(
                "Node/general-2".to_owned(),
                Detail {
                    jobs: vec![],
                    pods: vec![("shop/web-1".into(), vec![("shop/web".into(), 0)])],
                },
            )]),
        };
        let tree = draw(&scene, now, Paint::plain());
        let expected = "\
├─ ✔ done  canary (1 target, soak 10m)
├─ ◉ current  stage-1 (4 targets, soak 10m)
│  └─ Node/general-2  Draining  for 3m12s
│     ├─ PodDisruptionBudget shop/web allows 0 disruptions
│     └─ Pod shop/web-1: PodDisruptionBudget shop/web allows 0 disruptions
└─ ○ pending  full (4 targets, soak 10m)
";
        assert!(tree.ends_with(expected), "{tree}");
        assert!(
            tree.contains("Version:    2026.11 (Important), change CHG-7\n"),
            "{tree}"
        );
        assert!(
            tree.contains("Approval:   yes (spec.approved is true)\n"),
            "{tree}"
        );
        assert!(
            tree.contains("Targets:    10 selected: 1 updated, 1 in progress, 7 pending"),
            "{tree}"
        );
        assert_eq!(verdict(&scene.rollout), None);
    }

    #[test]
    fn a_halted_rollout_shows_its_failures_and_exits_1() {
        let now: Timestamp = "2026-11-28T12:00:00Z".parse().unwrap();
        let scene = Scene {
            rollout: rollout(json!({
                "phase": "RolledBack",
                "wave": {"index": 1, "name": "canary", "total": 3},
                "progress": "0/9",
                "targets": {"total": 9, "excluded": 0, "upToDate": 0, "pending": 8, "inProgress": 0, "updated": 0, "failed": 1, "rolledBack": 1},
                "failures": [{"target": "Node/general-1", "reason": "Unhealthy", "message": "the health check web failed"}],
                "conditions": [
                    {"type": "Stalled", "status": "True", "reason": "CanaryFailed", "message": "canary failed", "lastTransitionTime": "2026-11-28T11:30:00Z"},
                ],
            })),
            waves: vec![],
            policy: None,
            targets: BTreeMap::new(),
        };
        let tree = draw(&scene, now, Paint::plain());
        assert!(
            tree.contains("Stalled:    CanaryFailed: canary failed\n"),
            "{tree}"
        );
        assert!(
            tree.contains("✖ PatchRollout os-1\n└─ ✖ halted  canary (wave 1 of 3)\n"),
            "{tree}"
        );
        assert!(
            tree.ends_with(
                "Failures:\n  ✖ Node/general-1  Unhealthy: the health check web failed\n"
            ),
            "{tree}"
        );
        assert_eq!(verdict(&scene.rollout), Some(1));
    }

    #[test]
    fn annotations_patchpilot_cannot_use_are_listed_last() {
        let now: Timestamp = "2026-11-28T12:00:00Z".parse().unwrap();
        let problem = "patchpilot.dev/lock \"\" is not a rollout's name: the target is left alone until the annotation is removed";
        let scene = Scene {
            rollout: rollout(json!({
                "phase": "Progressing",
                "wave": {"index": 1, "name": "canary", "total": 3},
                "progress": "0/5",
                "targets": {"total": 6, "excluded": 1, "upToDate": 0, "pending": 5, "inProgress": 0, "updated": 0, "failed": 0, "rolledBack": 0},
                "annotationProblems": [{"target": "Node/general-2", "annotation": "patchpilot.dev/lock", "problem": problem}],
            })),
            waves: vec![],
            policy: None,
            targets: BTreeMap::new(),
        };
        let tree = draw(&scene, now, Paint::plain());
        assert!(
            tree.ends_with(&format!(
                "\nAnnotations patchpilot cannot use:\n  ⚠ Node/general-2  {problem}\n"
            )),
            "{tree}"
        );
    }

    #[test]
    fn targets_show_their_last_health_observations() {
        let now: Timestamp = "2026-11-28T12:00:00Z".parse().unwrap();
        let answered = "http://general-1:9100/healthz answered 503, expected [200]";
        let scene = Scene {
            rollout: rollout(json!({
                "phase": "RollingBack",
                "wave": {"index": 1, "name": "canary", "total": 2},
                "progress": "0/4",
                "targets": {"total": 4, "excluded": 0, "upToDate": 0, "pending": 3, "inProgress": 1, "updated": 0, "failed": 1, "rolledBack": 0},
                "inProgress": [{
                    "target": "Node/general-1", "action": "rollback", "step": "Verifying",
                    "since": "2026-11-28T11:58:00Z", "message": "waiting to be healthy",
                    "health": [
                        {"check": "nodeReady", "observations": [
                            {"time": "2026-11-28T11:58:00Z", "result": "Pass"}]},
                        {"check": "http /healthz", "observations": [
                            {"time": "2026-11-28T11:58:00Z", "result": "Fail", "statusCode": 503, "reason": answered}]},
                    ],
                }],
                "failures": [{
                    "target": "Node/general-1", "reason": "Unhealthy",
                    "message": "a health check failed during the soak",
                    "health": [
                        {"check": "nodeReady", "observations": [
                            {"time": "2026-11-28T11:50:00Z", "result": "Pass"}]},
                        {"check": "http /healthz", "observations": [
                            {"time": "2026-11-28T11:50:00Z", "result": "Settling", "reason": "starting"},
                            {"time": "2026-11-28T11:51:00Z", "result": "Pass", "statusCode": 200},
                            {"time": "2026-11-28T11:55:00Z", "result": "Fail", "statusCode": 503, "reason": answered}]},
                    ],
                }],
            })),
            waves: vec![],
            policy: None,
            targets: BTreeMap::new(),
        };
        let tree = draw(&scene, now, Paint::plain());
        let expected = format!(
            "\
└─ ↺ rolling back  canary (wave 1 of 2)
   └─ Node/general-1  Verifying (rollback)  for 2m
      ├─ waiting to be healthy
      ├─ nodeReady: Pass for 2m
      └─ http /healthz: Fail 503 for 2m — {answered}

Failures:
  ✖ Node/general-1  Unhealthy: a health check failed during the soak
     ├─ nodeReady: Pass 10m ago
     └─ http /healthz: Fail 503 5m ago — {answered}; before: Pass 200 9m ago, Settling 10m ago
"
        );
        assert!(tree.ends_with(&expected), "{tree}");
    }

    #[test]
    fn exit_status_follows_the_outcome() {
        let phase = |phase: &str, in_progress: u32| {
            rollout(
                json!({"phase": phase, "targets": {"total": 1, "excluded": 0, "upToDate": 0, "pending": 0, "inProgress": in_progress, "updated": 1, "failed": 0, "rolledBack": 0}}),
            )
        };
        assert_eq!(verdict(&phase("Succeeded", 0)), Some(0));
        assert_eq!(verdict(&phase("Failed", 0)), Some(1));
        assert_eq!(verdict(&phase("Superseded", 1)), None);
        assert_eq!(verdict(&phase("Superseded", 0)), Some(1));
        assert_eq!(verdict(&phase("Progressing", 1)), None);
        assert_eq!(verdict(&phase("AwaitingApproval", 0)), None);
    }
}
