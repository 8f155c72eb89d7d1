//! `kubectl patchpilot` through the real kubectl, with the plugin and its completion
//! executable on the `PATH`, against a served sandbox running the operator.

use std::{
    process::{Command, Output},
    time::{Duration, Instant},
};

use patchpilot_testkit::{
    conformance::kubectl::{Kubectl, Table, text},
    repo::root as repo,
};
use serde_json::Value;

use super::Sandbox;

/// The sandbox's kubectl with the plugin's executables on its `PATH`.
struct Plugin<'a> {
    sandbox: &'a Sandbox,
    path: String,
}

impl<'a> Plugin<'a> {
    fn new(sandbox: &'a Sandbox) -> Self {
        let bin = sandbox.dir.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        for (name, built) in [
            (
                "kubectl-patchpilot",
                env!("CARGO_BIN_EXE_kubectl-patchpilot"),
            ),
            (
                "kubectl_complete-patchpilot",
                env!("CARGO_BIN_EXE_kubectl_complete-patchpilot"),
            ),
        ] {
            std::os::unix::fs::symlink(built, bin.join(name)).unwrap();
        }
        let path = std::env::var("PATH").unwrap_or_default();
        Plugin {
            sandbox,
            path: format!("{}:{path}", bin.display()),
        }
    }

    /// `kubectl ARGS…`, with the kubeconfig in `KUBECONFIG` (kubectl hands a plugin the
    /// words after its name, and takes no flags of its own before them).
    fn kubectl(&self, args: &[&str]) -> Output {
        let kubectl = std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".to_owned());
        Command::new(kubectl)
            .args(args)
            .env("KUBECONFIG", &self.sandbox.kubeconfig)
            .env("KUBECACHEDIR", self.sandbox.dir.path().join("cache"))
            .env("PATH", &self.path)
            .env_remove("NO_COLOR")
            .output()
            .unwrap()
    }

    /// `kubectl patchpilot ARGS…`: its exit status, standard output and standard error.
    fn run(&self, args: &[&str]) -> (i32, String, String) {
        let output = self.kubectl(&[&["patchpilot"], args].concat());
        (
            output.status.code().unwrap_or(-1),
            text(&output.stdout),
            text(&output.stderr),
        )
    }

    /// `kubectl patchpilot ARGS…`, which must succeed; its standard output.
    #[track_caller]
    fn ok(&self, args: &[&str]) -> String {
        let (code, out, err) = self.run(args);
        assert_eq!(code, 0, "kubectl patchpilot {args:?}: {out}{err}");
        out
    }

    /// `kubectl patchpilot ARGS…`, which must be refused with exit status 2 and a one-line
    /// error saying `why`.
    #[track_caller]
    fn refused(&self, args: &[&str], why: &str) {
        let (code, out, err) = self.run(args);
        assert_eq!(code, 2, "kubectl patchpilot {args:?}: {out}{err}");
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        assert!(err.contains(why), "{why:?} in {err}");
    }

    /// Runs `status` until its tree contains `what`.
    fn status_until(&self, rollout: &str, what: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (_, tree, _) = self.run(&["status", rollout]);
            if tree.contains(what) {
                return tree;
            }
            assert!(Instant::now() < deadline, "no {what:?} after 60 s: {tree}");
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

#[test]
fn a_rollout_followed_and_steered_with_the_plugin() {
    let sandbox = Sandbox::start();
    let plugin = Plugin::new(&sandbox);
    let listed = plugin.kubectl(&["plugin", "list"]);
    assert!(
        text(&listed.stdout).contains("kubectl-patchpilot"),
        "{}",
        text(&listed.stdout)
    );
    let (code, out, err) = plugin.run(&["list"]);
    assert_eq!((code, out.as_str()), (0, ""), "{err}");
    assert_eq!(err.trim(), "No PatchRollouts found.");

    let policy = repo("tests/fixtures/kubectl/promoted-policy.yaml");
    sandbox.ok(&["apply", "-f", &policy]);
    let rollout = sandbox.eventually(30, "the policy's rollout", || {
        let name = sandbox.ok(&[
            "get",
            "patchpolicy",
            "gpu-firmware",
            "-o",
            "jsonpath={.status.currentRollout}",
        ]);
        Some(name).filter(|n| !n.is_empty())
    });
    let rollout = rollout.as_str();

    // Waiting for approval: the list, the tree, and what makes no sense yet.
    let tree = plugin.status_until(rollout, "AwaitingApproval");
    for line in [
        format!("Name:       {rollout}"),
        "Policy:     gpu-firmware (Node targets)".to_owned(),
        "Version:    2026-12-firmware (Moderate)".to_owned(),
        "Approval:   awaited: ".to_owned(),
        format!("kubectl patchpilot approve {rollout}"),
        "Targets:    2 selected: 0 updated, 0 in progress, 2 pending".to_owned(),
        "├─ ○ next  canary (1 target)".to_owned(),
        "└─ ○ pending  full (1 target)".to_owned(),
    ] {
        assert!(tree.contains(&line), "{line:?} in\n{tree}");
    }
    assert!(!tree.contains('\x1b'), "no colours off a terminal: {tree}");
    let list = plugin.ok(&["list"]);
    let mut lines = list.lines();
    let headers: Vec<&str> = lines
        .next()
        .unwrap()
        .split("   ")
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .collect();
    assert_eq!(
        headers,
        [
            "NAME",
            "POLICY",
            "VERSION",
            "PHASE",
            "WAVE",
            "UPDATED",
            "IN PROGRESS",
            "FAILED",
            "AGE",
            "NEXT WINDOW"
        ],
        "{list}"
    );
    let row = lines.next().unwrap();
    for cell in [
        rollout,
        "gpu-firmware",
        "AwaitingApproval",
        "canary (1/2)",
        "0/2",
    ] {
        assert!(row.contains(cell), "{cell} in {list}");
    }
    plugin.refused(
        &["promote", rollout],
        "is not waiting for promotion (AwaitingApproval)",
    );
    plugin.refused(
        &["retry", rollout],
        "has no failed or rolled-back targets to retry",
    );
    plugin.refused(&["resume", rollout], "is not paused (spec.paused is false)");
    plugin.refused(
        &["status", "nothing-here"],
        "PatchRollout nothing-here not found",
    );
    plugin.refused(
        &["status", "--policy", "nope"],
        "PatchPolicy nope not found",
    );
    plugin.refused(&["approve"], "<ROLLOUT|--policy <POLICY>>");

    // The plan against the live cluster, and the compliance report, before anything ran.
    let plan = plugin.ok(&["plan", "gpu-firmware"]);
    for line in [
        "PatchPolicy gpu-firmware: version 2026-12-firmware, 2 eligible targets",
        "  canary (1 target): Node/gpu-",
        "  full (1 target): Node/gpu-",
        "Window: none: targets may start at any time",
        &format!("Current rollout: {rollout} (AwaitingApproval, 0/2 updated)"),
    ] {
        assert!(plan.contains(line), "{line:?} in\n{plan}");
    }
    let planned: Value =
        serde_json::from_str(&plugin.ok(&["plan", "gpu-firmware", "-o", "json"])).unwrap();
    assert_eq!(planned["eligible"], 2);
    assert_eq!(planned["currentRollout"], rollout);
    plugin.refused(&["plan", "nope"], "PatchPolicy nope not found");
    let report: Value =
        serde_json::from_str(&plugin.ok(&["report", "gpu-firmware", "-o", "json"])).unwrap();
    let counts = &report["policies"][0]["counts"];
    assert_eq!(
        (
            counts["total"].as_u64(),
            counts["pending"].as_u64(),
            counts["upToDate"].as_u64()
        ),
        (Some(2), Some(2), Some(0)),
        "{report}"
    );

    // Approved through the policy's name, and only once.
    let approved = plugin.ok(&["approve", "--policy", "gpu-firmware"]);
    assert_eq!(
        approved.trim(),
        format!(
            "patchrollout.patchpilot.dev/{rollout} approved: spec.approved is now true: its targets start once its window is open"
        )
    );
    plugin.refused(&["approve", rollout], "is already approved");

    // `kubectl get` shows the target in progress and its step.
    let working = sandbox.eventually(30, "a target in progress", || {
        let table = Table::parse(&sandbox.ok(&["get", "patchrollout", rollout]));
        Some(table.rows[0]["IN PROGRESS"].clone()).filter(|cell| !cell.is_empty())
    });
    assert!(working.starts_with("gpu-"), "{working}");

    // The canary updates one node, then the rollout waits for promotion.
    let tree = plugin.status_until(rollout, "Promotion:");
    assert!(
        tree.contains(&format!("awaited — kubectl patchpilot promote {rollout}")),
        "{tree}"
    );
    assert!(
        tree.contains("Phase:      Paused (AwaitingPromotion)"),
        "{tree}"
    );
    assert!(
        tree.contains("├─ ✔ done  canary (1 target)\n└─ ॥ awaiting promotion  full (1 target)\n"),
        "{tree}"
    );
    plugin.refused(&["resume", rollout], "it waits for promotion");
    let (code, _, _) = plugin.run(&["status", rollout]);
    assert_eq!(code, 0, "a rollout waiting for a person is not an outcome");

    // Paused and resumed: every rollout at once.
    let paused = plugin.ok(&["pause", "--all"]);
    assert!(
        paused.contains(&format!("{rollout} paused: spec.paused is now true")),
        "{paused}"
    );
    plugin.refused(&["pause", rollout], "is already paused");
    let resumed = plugin.ok(&["resume", "--all"]);
    assert!(resumed.contains(&format!("{rollout} resumed")), "{resumed}");
    let nothing = plugin.ok(&["resume", "--all"]);
    assert_eq!(nothing.trim(), "no paused rollouts: nothing resumed");

    // Promoted, and followed to its end: exit status 0, the whole tree done.
    plugin.ok(&["promote", rollout]);
    let (code, watched, err) = plugin.run(&["status", rollout, "--watch", "--timeout", "60s"]);
    assert_eq!(code, 0, "{watched}{err}");
    assert!(watched.contains("Succeeded"), "{watched}");
    assert!(
        watched.ends_with("├─ ✔ done  canary (1 target)\n└─ ✔ done  full (1 target)\n"),
        "{watched}"
    );
    plugin.refused(&["abort", rollout], "has ended (Succeeded)");

    // The report after it: both nodes up to date, one CSV row each, for auditors.
    let report = plugin.ok(&["report"]);
    let row = report
        .lines()
        .find(|l| l.starts_with("gpu-firmware"))
        .unwrap();
    assert!(row.contains("2/2"), "{report}");
    let csv = plugin.ok(&["report", "gpu-firmware", "-o", "csv"]);
    let rows: Vec<&str> = csv.lines().collect();
    assert!(
        rows[0].starts_with("policy,version,classification,due,target,state"),
        "{csv}"
    );
    assert_eq!(rows.len(), 3, "{csv}");
    assert!(
        rows[1..]
            .iter()
            .all(|r| r.contains(",UpToDate,2026-12-firmware,")),
        "{csv}"
    );
    // The history: who approved (the user the API server knows), the outcome, kept.
    let history = sandbox.eventually(30, "the policy's history", || {
        let history = plugin.ok(&["history", "gpu-firmware"]);
        history.contains("Succeeded").then_some(history)
    });
    let row = history.lines().nth(1).unwrap();
    for cell in [
        rollout,
        "2026-12-firmware",
        "sandbox-admin",
        "UTC",
        "Succeeded",
        "yes",
    ] {
        assert!(row.contains(cell), "{cell} in\n{history}");
    }
    let remembered = sandbox.ok(&[
        "get",
        "patchpolicy",
        "gpu-firmware",
        "-o",
        "jsonpath={.status.history[0].approvedBy}",
    ]);
    assert_eq!(remembered, "sandbox-admin");
    plugin.refused(&["pause", rollout], "has ended (Succeeded)");

    // As JSON and YAML, for scripts.
    let json: Value = serde_json::from_str(&plugin.ok(&["status", rollout, "-o", "json"])).unwrap();
    assert_eq!(json["status"]["phase"], "Succeeded");
    let listed: Value = serde_yaml_ng::from_str(&plugin.ok(&["list", "-o", "yaml"])).unwrap();
    assert_eq!(listed["kind"], "List");
    assert_eq!(listed["items"][0]["metadata"]["name"], rollout);

    // kubectl's flags, given to the plugin.
    let kubeconfig = sandbox.kubeconfig.display().to_string();
    let (code, out, err) =
        plugin.run(&["--kubeconfig", &kubeconfig, "--context", "sandbox", "list"]);
    assert_eq!(code, 0, "{out}{err}");
    plugin.refused(&["list", "--context", "nowhere"], "kubeconfig:");
    let (code, _, err) = plugin.run(&["status", rollout, "-o", "toml"]);
    assert_eq!(code, 2, "{err}");

    // A watch that does not end in time.
    sandbox.ok(&[
        "apply",
        "-f",
        &repo("tests/fixtures/kubectl/held-policy.yaml"),
    ]);
    let held = sandbox.eventually(30, "the held policy's rollout", || {
        let name = sandbox.ok(&[
            "get",
            "patchpolicy",
            "held",
            "-o",
            "jsonpath={.status.currentRollout}",
        ]);
        Some(name).filter(|n| !n.is_empty())
    });
    let started = Instant::now();
    let (code, _, err) = plugin.run(&["status", &held, "-w", "--timeout", "3s"]);
    assert_eq!(code, 3, "{err}");
    assert!(
        err.starts_with("error: timed out after 3s waiting for PatchRollout"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(20));

    // Shell completion through kubectl: commands, then the cluster's rollouts.
    let completed = text(&plugin.kubectl(&["__complete", "patchpilot", "st"]).stdout);
    assert!(
        completed.starts_with("status\tA rollout as a tree"),
        "{completed}"
    );
    let completed = text(
        &plugin
            .kubectl(&["__complete", "patchpilot", "status", ""])
            .stdout,
    );
    assert!(
        completed.contains(&format!(
            "{rollout}\tgpu-firmware 2026-12-firmware Succeeded"
        )),
        "{completed}"
    );
    assert!(completed.contains(&held), "{completed}");
}

#[test]
fn a_lock_left_by_a_rollout_that_is_gone_is_broken_with_unlock() {
    let sandbox = Sandbox::start_with(&["--without-operator"]);
    let plugin = Plugin::new(&sandbox);
    let node = sandbox.dir.path().join("locked.yaml");
    std::fs::write(
        &node,
        r#"apiVersion: v1
kind: Node
metadata:
  name: stranded-1
  labels: {patchpilot.dev/locked: "true"}
  annotations:
    patchpilot.dev/lock: gone-1234
    patch.patchpilot.dev/gone.rollout: '{"rollout":"gone-1234","attempt":0,"state":"Applying","started":"2026-11-27T22:00:00Z","since":"2026-11-27T22:00:00Z","cordoned":true}'
spec: {unschedulable: true}
---
apiVersion: patchpilot.dev/v1alpha1
kind: PatchRollout
metadata:
  name: alive-1
spec:
  policy: nowhere
  patch: {version: "1", classification: Low, updater: {template: {spec: {containers: [{name: u, image: u}]}}}}
---
apiVersion: v1
kind: Node
metadata:
  name: held-1
  annotations: {patchpilot.dev/lock: alive-1}
"#,
    )
    .unwrap();
    sandbox.ok(&["apply", "-f", &node.display().to_string()]);

    // A lock whose rollout exists is refused, with what to do instead.
    plugin.refused(
        &["unlock", "held-1"],
        "is locked by PatchRollout alive-1, which exists",
    );
    plugin.refused(&["unlock", "pod/x"], "name a node (NAME or node/NAME)");
    plugin.refused(&["unlock", "nothing-here"], "Node/nothing-here not found");

    // Said first; a dry run changes nothing.
    let said = plugin.ok(&["unlock", "node/stranded-1", "--dry-run"]);
    assert!(
        said.starts_with(
            "Node/stranded-1 is locked by PatchRollout gone-1234, which no longer exists."
        ),
        "{said}"
    );
    assert!(
        said.contains("uncordon the node, which the rollout cordoned"),
        "{said}"
    );
    assert!(
        said.contains("for PatchPolicy gone as failed (Abandoned)"),
        "{said}"
    );
    assert!(said.ends_with("Dry run: nothing changed.\n"), "{said}");
    assert_eq!(
        sandbox.ok(&[
            "get",
            "node",
            "stranded-1",
            "-o",
            "jsonpath={.spec.unschedulable}"
        ]),
        "true"
    );

    let done = plugin.ok(&["unlock", "stranded-1"]);
    assert!(
        done.ends_with("Node/stranded-1 unlocked and uncordoned\n"),
        "{done}"
    );
    let node: Value =
        serde_json::from_str(&sandbox.ok(&["get", "node", "stranded-1", "-o", "json"])).unwrap();
    assert_ne!(node["spec"]["unschedulable"], true, "{node}");
    assert!(
        node["metadata"]["annotations"]
            .get("patchpilot.dev/lock")
            .is_none(),
        "{node}"
    );
    assert!(
        node["metadata"]["labels"]
            .get("patchpilot.dev/locked")
            .is_none(),
        "{node}"
    );
    let record = node["metadata"]["annotations"]["patch.patchpilot.dev/gone.rollout"]
        .as_str()
        .unwrap();
    assert!(record.contains("\"reason\":\"Abandoned\""), "{record}");
    let events = sandbox.ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=stranded-1",
        "-o",
        "jsonpath={.items[*].reason}",
    ]);
    assert_eq!(events, "LockCleared");
    // Again: nothing left to do.
    let again = plugin.ok(&["unlock", "stranded-1"]);
    assert_eq!(
        again.trim(),
        "Node/stranded-1 is not locked by patchpilot: nothing to do"
    );
}

/// `report` over several policies reads each kind of target once, however many policies
/// select it: a big cluster is not listed once per policy.
#[test]
fn a_report_over_several_policies_lists_each_kind_once() {
    let audit = tempfile::tempdir().unwrap();
    let audit_log = audit.path().join("audit.log");
    let sandbox = Sandbox::start_with(&[
        "--without-operator",
        "--audit-log",
        audit_log.to_str().unwrap(),
    ]);
    let plugin = Plugin::new(&sandbox);
    let policies = sandbox.dir.path().join("policies.yaml");
    let node_policy = |name: &str, pool: &str| {
        format!(
            "apiVersion: patchpilot.dev/v1alpha1
kind: PatchPolicy
metadata: {{name: {name}}}
spec:
  targets: {{nodes: {{selector: {{matchLabels: {{pool: {pool}}}}}}}}}
  patch:
    version: v2
    updater: {{template: {{spec: {{containers: [{{name: u, image: 'u:1'}}]}}}}}}
  strategy: {{maxUnavailable: 1}}
---
"
        )
    };
    let workloads = "apiVersion: patchpilot.dev/v1alpha1
kind: PatchPolicy
metadata: {name: web}
spec:
  targets: {workloads: {kinds: [Deployment]}}
  patch: {version: v2, images: [{image: 'docker.io/library/nginx:1.27.4'}]}
  strategy: {maxUnavailable: 1}
";
    std::fs::write(
        &policies,
        node_policy("general", "general") + &node_policy("gpu", "gpu") + workloads,
    )
    .unwrap();
    sandbox.ok(&["apply", "-f", &policies.display().to_string()]);
    let before = std::fs::read_to_string(&audit_log).unwrap().lines().count();
    let report = plugin.ok(&["report", "-o", "json"]);
    let report: Value = serde_json::from_str(&report).unwrap();
    let names: Vec<&str> = report["policies"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["policy"].as_str())
        .collect();
    assert_eq!(names, ["general", "gpu", "web"], "{report}");
    let lists: Vec<String> = std::fs::read_to_string(&audit_log)
        .unwrap()
        .lines()
        .skip(before)
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|e| e["verb"] == "list")
        .filter_map(|e| e["objectRef"]["resource"].as_str().map(str::to_owned))
        .collect();
    let count = |resource: &str| lists.iter().filter(|r| *r == resource).count();
    assert_eq!(count("nodes"), 1, "{lists:?}");
    assert_eq!(count("deployments"), 1, "{lists:?}");
    assert_eq!(count("namespaces"), 1, "{lists:?}");
}

/// The objects of the calendar tests: a window every night in Berlin with a change freeze
/// from two days after `now` (so that it always falls within the calendar's 30 days), a
/// window on Saturdays with nothing planned, a window with an unknown time zone, a node
/// policy held for approval in the nightly window, and a policy naming a window that does
/// not exist.
fn calendar_objects(now: jiff::Timestamp) -> String {
    let day = jiff::SignedDuration::from_hours(24);
    let hour = |at: jiff::Timestamp| at.strftime("%Y-%m-%dT%H:00:00Z").to_string();
    let (freeze_start, freeze_end) = (hour(now + 2 * day), hour(now + 4 * day));
    let policy = |name: &str, window: &str| {
        format!(
            "apiVersion: patchpilot.dev/v1alpha1
kind: PatchPolicy
metadata: {{name: {name}}}
spec:
  targets: {{nodes: {{selector: {{matchLabels: {{pool: gpu}}}}}}}}
  patch:
    version: 2026-12-firmware
    classification: Critical
    updater: {{template: {{spec: {{containers: [{{name: flash, image: 'registry.example/firmware:1'}}]}}}}}}
  approval: {{mode: Manual}}
  maintenanceWindow: {window}
---
"
        )
    };
    format!(
        "apiVersion: patchpilot.dev/v1alpha1
kind: MaintenanceWindow
metadata: {{name: nights}}
spec:
  timeZone: Europe/Berlin
  recurrences: [{{start: '01:00', duration: 4h}}]
  exclusions:
    - {{start: '{freeze_start}', end: '{freeze_end}', reason: 'Year-end, no changes; ask the CAB'}}
  cutoff: 30m
---
apiVersion: patchpilot.dev/v1alpha1
kind: MaintenanceWindow
metadata: {{name: weekends}}
spec:
  recurrences: [{{days: [Sat], start: '08:00', duration: 2h}}]
---
apiVersion: patchpilot.dev/v1alpha1
kind: MaintenanceWindow
metadata: {{name: mars}}
spec:
  timeZone: Mars/Olympus
  recurrences: [{{start: '08:00', duration: 2h}}]
---
"
    ) + &policy("gpu-firmware", "nights")
        + &policy("lost", "gone")
}

/// One VEVENT of a calendar: its properties as written (unfolded, not unescaped).
type CalendarEvent = std::collections::BTreeMap<String, String>;

/// The events of an iCalendar text, after checking its frame: CRLF line ends, no line
/// longer than 75 octets, `VCALENDAR` around it with the version and product.
#[track_caller]
fn calendar_events(text: &str) -> Vec<CalendarEvent> {
    assert!(text.ends_with("\r\n"), "{text}");
    for line in text.trim_end_matches("\r\n").split("\r\n") {
        assert!(line.len() <= 75 && !line.contains('\n'), "{line:?}");
    }
    let lines: Vec<String> = text
        .replace("\r\n ", "")
        .split("\r\n")
        .filter(|line| !line.is_empty())
        .map(str::to_owned)
        .collect();
    assert_eq!(
        lines[..4],
        [
            "BEGIN:VCALENDAR",
            "VERSION:2.0",
            "PRODID:-//patchpilot//patchpilot//EN",
            "CALSCALE:GREGORIAN"
        ]
    );
    assert_eq!(lines.last().map(String::as_str), Some("END:VCALENDAR"));
    let mut events = Vec::new();
    let mut event: Option<CalendarEvent> = None;
    for line in &lines {
        let (name, value) = line.split_once(':').unwrap();
        match (name, value) {
            ("BEGIN", "VEVENT") => event = Some(CalendarEvent::new()),
            ("END", "VEVENT") => events.extend(event.take()),
            _ => {
                if let Some(event) = event.as_mut() {
                    event.insert(name.to_owned(), value.to_owned());
                }
            }
        }
    }
    events
}

/// An iCalendar DATE-TIME in UTC.
fn calendar_instant(text: &str) -> jiff::Timestamp {
    jiff::fmt::strtime::parse("%Y%m%dT%H%M%SZ", text)
        .and_then(|t| t.to_datetime())
        .and_then(|t| t.to_zoned(jiff::tz::TimeZone::UTC))
        .unwrap()
        .timestamp()
}

/// `kubectl patchpilot calendar`: each window's openings with the rollout planned in them,
/// tentative until approved; the freeze as a busy event; a window that cannot be evaluated
/// and a policy naming no existing window said on standard error.
#[test]
fn the_calendar_of_planned_patching_is_exported_as_icalendar() {
    let sandbox = Sandbox::start();
    let plugin = Plugin::new(&sandbox);
    let objects = sandbox.dir.path().join("calendar.yaml");
    std::fs::write(&objects, calendar_objects(jiff::Timestamp::now())).unwrap();
    sandbox.ok(&["apply", "-f", &objects.display().to_string()]);
    let rollout = sandbox.eventually(30, "the held rollout, counted", || {
        let found = sandbox.json(&["get", "patchrollouts"]);
        found["items"].as_array()?.iter().find_map(|r| {
            let counted = r["spec"]["policy"] == "gpu-firmware"
                && r["status"]["phase"] == "AwaitingApproval"
                && r["status"]["targets"]["pending"] == 2;
            counted.then(|| r["metadata"]["name"].as_str().unwrap().to_owned())
        })
    });

    let (code, out, err) = plugin.run(&["calendar"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        err.lines().collect::<Vec<_>>(),
        [
            "warning: PatchPolicy lost names MaintenanceWindow gone, which does not exist: its rollouts are in no window",
            "warning: MaintenanceWindow mars is invalid, left out of the calendar: spec.timeZone: unknown time zone \"Mars/Olympus\"",
        ]
    );
    let events = calendar_events(&out);
    let of = |category: &str| -> Vec<&CalendarEvent> {
        events
            .iter()
            .filter(|e| e["CATEGORIES"].starts_with(category))
            .collect()
    };
    let nights: Vec<&CalendarEvent> = of("patchpilot,maintenance-window,patching");
    assert!(
        nights.len() >= 26,
        "{} openings of nights: {out}",
        nights.len()
    );
    for opening in &nights {
        assert_eq!(
            opening["SUMMARY"],
            format!(
                "Patching in nights: {rollout} (2026-12-firmware\\, Critical\\, approval needed)"
            )
        );
        assert_eq!(opening["STATUS"], "TENTATIVE");
        assert_eq!(opening["TRANSP"], "TRANSPARENT");
        assert!(
            opening["UID"].ends_with("-nights@patchpilot.dev"),
            "{opening:?}"
        );
        let description = &opening["DESCRIPTION"];
        for expected in [
            "targets to patch: 2",
            &format!("approval: needed (kubectl patchpilot approve {rollout})"),
            "Local time (Europe/Berlin): ",
        ] {
            assert!(
                description.contains(expected),
                "{expected} in {description}"
            );
        }
    }
    let weekends: Vec<&CalendarEvent> = events
        .iter()
        .filter(|e| e["SUMMARY"] == "Maintenance window weekends: nothing planned")
        .collect();
    assert!((4..=5).contains(&weekends.len()), "{out}");
    assert_eq!(weekends.len() + nights.len() + 1, events.len(), "{out}");
    let freezes = of("patchpilot,freeze");
    let [freeze] = freezes.as_slice() else {
        panic!("one freeze: {out}")
    };
    assert_eq!(
        freeze["SUMMARY"],
        "Change freeze: Year-end\\, no changes\\; ask the CAB"
    );
    assert_eq!(freeze["TRANSP"], "OPAQUE");
    let (frozen_from, frozen_until) = (
        calendar_instant(&freeze["DTSTART"]),
        calendar_instant(&freeze["DTEND"]),
    );
    for opening in &nights {
        let (start, end) = (
            calendar_instant(&opening["DTSTART"]),
            calendar_instant(&opening["DTEND"]),
        );
        assert!(
            end <= frozen_from || start >= frozen_until,
            "{opening:?} in {freeze:?}"
        );
    }
    // Exported again, every event keeps its UID.
    let uids = |events: &[CalendarEvent]| -> Vec<String> {
        events.iter().map(|e| e["UID"].clone()).collect()
    };
    assert_eq!(
        uids(&calendar_events(&plugin.ok(&["calendar"]))),
        uids(&events)
    );

    // One window, a week ahead: only its own events, and no warning about the others.
    let (code, out, err) = plugin.run(&["calendar", "weekends", "--days", "8"]);
    assert_eq!((code, err.as_str()), (0, ""), "{out}");
    let week = calendar_events(&out);
    assert!((1..=2).contains(&week.len()), "{out}");
    assert!(
        week.iter()
            .all(|e| e["UID"].ends_with("-weekends@patchpilot.dev"))
    );
    plugin.refused(
        &["calendar", "nope"],
        "MaintenanceWindow nope not found (kubectl get maintenancewindows lists them)",
    );
    let (code, _, err) = plugin.run(&["calendar", "--days", "0"]);
    assert_eq!(code, 2, "{err}");

    // Approved, the openings are confirmed.
    plugin.ok(&["approve", &rollout]);
    let approved = calendar_events(&plugin.ok(&["calendar", "nights", "--days", "3"]));
    let openings: Vec<&CalendarEvent> = approved
        .iter()
        .filter(|e| e["CATEGORIES"] == "patchpilot,maintenance-window,patching")
        .collect();
    assert!(!openings.is_empty(), "{approved:?}");
    for opening in openings {
        assert_eq!(opening["STATUS"], "CONFIRMED", "{opening:?}");
        assert!(
            opening["DESCRIPTION"].contains("approval: approved"),
            "{opening:?}"
        );
    }

    // The windows are completed by name, with their time zone.
    let completed = text(
        &plugin
            .kubectl(&["__complete", "patchpilot", "calendar", ""])
            .stdout,
    );
    assert!(completed.contains("nights\tEurope/Berlin"), "{completed}");
    assert!(completed.contains("weekends\tUTC"), "{completed}");
}

/// What the operator's metrics port answered.
struct Answer {
    code: u16,
    /// Lower-case names.
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// `METHOD PATH` on the operator's metrics port; `None` while nothing answers there.
fn metrics_request(port: u16, method: &str, path: &str) -> Option<Answer> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    let mut lines = head.split("\r\n");
    let code = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers = lines
        .filter_map(|line| line.split_once(": "))
        .map(|(name, value)| (name.to_lowercase(), value.to_owned()))
        .collect();
    Some(Answer {
        code,
        headers,
        body: body.to_owned(),
    })
}

/// The operator serves the same calendar read-only on its metrics port, `/calendar.ics`,
/// from its caches: the plugin's, event for event.
#[test]
fn the_operator_serves_the_same_calendar_on_its_metrics_port() {
    let sandbox = Sandbox::start_with(&["--without-operator"]);
    let plugin = Plugin::new(&sandbox);
    let objects = sandbox.dir.path().join("calendar.yaml");
    std::fs::write(&objects, calendar_objects(jiff::Timestamp::now())).unwrap();
    sandbox.ok(&["apply", "-f", &objects.display().to_string()]);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let log = std::fs::File::create(sandbox.dir.path().join("operator.log")).unwrap();
    let mut operator = Command::new(env!("CARGO_BIN_EXE_patchpilot"))
        .args(["run", "--metrics-addr", &format!("127.0.0.1:{port}")])
        .env("KUBECONFIG", &sandbox.kubeconfig)
        .env("POD_NAMESPACE", "patchpilot-system")
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    struct Stop<'a>(&'a mut std::process::Child);
    impl Drop for Stop<'_> {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _stop = Stop(&mut operator);

    // Served once the operator's caches hold the rollout it created, counted.
    let answer = sandbox.eventually(30, "the operator's calendar", || {
        metrics_request(port, "GET", "/calendar.ics")
            .filter(|a| a.code == 200 && a.body.contains("targets to patch: 2"))
    });
    assert_eq!(
        answer.header("content-type"),
        Some("text/calendar; charset=utf-8")
    );
    let events = calendar_events(&answer.body);
    assert!(
        events
            .iter()
            .any(|e| e["SUMMARY"].starts_with("Patching in nights: gpu-firmware-")),
        "{}",
        answer.body
    );
    // The plugin exports the same events; only the instant of the export differs. (An
    // opening can begin between the two readings: they are read again then.)
    let without_stamps = |text: &str| -> Vec<CalendarEvent> {
        let mut events = calendar_events(text);
        for event in &mut events {
            event.remove("DTSTAMP");
        }
        events
    };
    sandbox.eventually(10, "the plugin's calendar to be the operator's", || {
        let feed = metrics_request(port, "GET", "/calendar.ics")?.body;
        (without_stamps(&feed) == without_stamps(&plugin.ok(&["calendar"]))).then_some(())
    });
    let week = metrics_request(port, "GET", "/calendar.ics?days=8").unwrap();
    let week = calendar_events(&week.body);
    assert!(!week.is_empty() && week.len() < events.len(), "{week:?}");
    let refused = metrics_request(port, "GET", "/calendar.ics?days=0").unwrap();
    assert_eq!(refused.code, 400, "{}", refused.body);

    // Read-only: HEAD says as much as GET without the body, anything else is refused.
    let head = metrics_request(port, "HEAD", "/calendar.ics").unwrap();
    assert_eq!((head.code, head.body.as_str()), (200, ""));
    assert_eq!(head.header("content-type"), answer.header("content-type"));
    assert!(
        head.header("content-length").is_some_and(|l| l != "0"),
        "{:?}",
        head.headers
    );
    let post = metrics_request(port, "POST", "/calendar.ics").unwrap();
    assert_eq!(post.code, 405);
    assert_eq!(post.header("allow"), Some("GET, HEAD"));
}
