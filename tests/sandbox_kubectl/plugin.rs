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
pub(crate) struct Plugin<'a> {
    sandbox: &'a Sandbox,
    path: String,
}

impl<'a> Plugin<'a> {
    pub(crate) fn new(sandbox: &'a Sandbox) -> Self {
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
    pub(crate) fn kubectl(&self, args: &[&str]) -> Output {
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
    pub(crate) fn run(&self, args: &[&str]) -> (i32, String, String) {
        let output = self.kubectl(&[&["patchpilot"], args].concat());
        (
            output.status.code().unwrap_or(-1),
            text(&output.stdout),
            text(&output.stderr),
        )
    }

    /// `kubectl patchpilot ARGS…`, which must succeed; its standard output.
    #[track_caller]
    pub(crate) fn ok(&self, args: &[&str]) -> String {
        let (code, out, err) = self.run(args);
        assert_eq!(code, 0, "kubectl patchpilot {args:?}: {out}{err}");
        out
    }

    /// `kubectl patchpilot ARGS…`, which must be refused with exit status 2 and a one-line
    /// error saying `why`.
    #[track_caller]
    pub(crate) fn refused(&self, args: &[&str], why: &str) {
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

    // A lock that is no rollout's name is someone else's garbage: unlock removes it too,
    // without asking the API server for a rollout no name can hold.
    sandbox.ok(&[
        "annotate",
        "node",
        "held-1",
        "--overwrite",
        "patchpilot.dev/lock=Not A Name!",
    ]);
    let said = plugin.ok(&["unlock", "held-1"]);
    assert!(
        said.starts_with(
            "Node/held-1 carries the lock \"Not A Name!\", which is no rollout's name. Unlocking it will:"
        ),
        "{said}"
    );
    assert!(said.ends_with("Node/held-1 unlocked\n"), "{said}");
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
