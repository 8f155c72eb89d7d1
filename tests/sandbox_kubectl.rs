//! The real kubectl against a served sandbox (`patchpilot sandbox --serve`): discovery and
//! categories, OpenAPI (server-side field validation, `explain`), server-side tables with
//! printer columns, apply (client- and server-side), describe, label and annotate, edit,
//! watches, CRDs created on the fly, cordon and drain through the Eviction API under a
//! PodDisruptionBudget, scale, `set image` with `rollout status`, and `wait`.
//!
//! Each test starts its own sandbox from `tests/fixtures/kubectl/scenario.yaml` on a free
//! port, with its own kubectl cache, and stops it when done. kubectl is found on the `PATH`
//! or at `$KUBECTL`.

use std::{
    collections::BTreeMap,
    io::{Read, Write},
    net::TcpStream,
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;
use tempfile::TempDir;

/// A file of the repository.
fn repo(path: &str) -> String {
    format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))
}

/// A sandbox served to kubectl, stopped when dropped.
struct Sandbox {
    child: Child,
    dir: TempDir,
    kubeconfig: PathBuf,
}

impl Sandbox {
    /// Serves the test scenario, with the operator.
    fn start() -> Self {
        Self::start_with(&[])
    }

    /// Serves the test scenario without the operator, so that only kubectl changes nodes
    /// and workloads.
    fn without_operator() -> Self {
        Self::start_with(&["--without-operator"])
    }

    fn start_with(flags: &[&str]) -> Self {
        let scenario = repo("tests/fixtures/kubectl/scenario.yaml");
        Self::serve(&[&["--scenario", &scenario], flags].concat())
    }

    /// Serves the sandbox with these flags (the built-in scenario without `--scenario`).
    fn serve(flags: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        let log = std::fs::File::create(dir.path().join("sandbox.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_patchpilot"))
            .args(["sandbox", "--serve", "127.0.0.1:0", "--kubeconfig-out"])
            .arg(&kubeconfig)
            .args(flags)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut sandbox = Sandbox {
            child,
            dir,
            kubeconfig,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        // The kubeconfig is written once the port is bound; its last line comes last.
        while !std::fs::read_to_string(&sandbox.kubeconfig)
            .is_ok_and(|k| k.contains("current-context"))
        {
            if let Ok(Some(status)) = sandbox.child.try_wait() {
                panic!("the sandbox stopped ({status}): {}", sandbox.log());
            }
            assert!(
                Instant::now() < deadline,
                "no kubeconfig after 30 s: {}",
                sandbox.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        sandbox
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sandbox.log")).unwrap_or_default()
    }

    /// Runs kubectl against the sandbox.
    fn kubectl(&self, args: &[&str]) -> Output {
        self.kubectl_with(args, &[])
    }

    /// Runs kubectl with more environment variables.
    fn kubectl_with(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let kubectl = std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".to_owned());
        Command::new(&kubectl)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .env("KUBECACHEDIR", self.dir.path().join("cache"))
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {kubectl} (these tests drive the real kubectl; set KUBECTL to its path): {e}"))
    }

    /// Runs kubectl, which must succeed; its standard output.
    #[track_caller]
    fn ok(&self, args: &[&str]) -> String {
        let output = self.kubectl(args);
        assert!(
            output.status.success(),
            "kubectl {}: {}\n{}",
            args.join(" "),
            text(&output.stderr),
            self.log()
        );
        text(&output.stdout)
    }

    /// Runs kubectl, which must fail; its standard error.
    #[track_caller]
    fn fails(&self, args: &[&str]) -> String {
        let output = self.kubectl(args);
        assert!(
            !output.status.success(),
            "kubectl {} succeeded: {}",
            args.join(" "),
            text(&output.stdout)
        );
        text(&output.stderr)
    }

    /// Runs `kubectl get … -o json` and parses it.
    #[track_caller]
    fn json(&self, args: &[&str]) -> Value {
        let args = [args, &["-o", "json"]].concat();
        serde_json::from_str(&self.ok(&args)).unwrap()
    }

    /// Polls `check` until it answers `Some`, for at most `seconds`.
    #[track_caller]
    fn eventually<T>(&self, seconds: u64, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        loop {
            if let Some(value) = check() {
                return value;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: not within {seconds} s\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Waits until the `app` pods in `shop` are `count` and all Running and Ready.
    #[track_caller]
    fn wait_ready(&self, app: &str, count: usize) -> Vec<Value> {
        self.eventually(60, &format!("{count} ready {app} pods"), || {
            let pods = self.json(&["get", "pods", "-n", "shop", "-l", &format!("app={app}")]);
            let pods = pods["items"].as_array().cloned().unwrap_or_default();
            let ready = pods
                .iter()
                .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
                .filter(|p| {
                    let conditions = p["status"]["conditions"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default();
                    conditions
                        .iter()
                        .any(|c| c["type"] == "Ready" && c["status"] == "True")
                });
            let ready: Vec<Value> = ready.cloned().collect();
            (ready.len() == count && pods.len() == count).then_some(ready)
        })
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- sandbox log ---\n{}", self.log());
        }
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A table as kubectl prints it: the headers, and each row by header. Cells are cut at the
/// columns' positions, so empty cells stay in their column.
struct Table {
    headers: Vec<String>,
    rows: Vec<BTreeMap<String, String>>,
}

impl Table {
    #[track_caller]
    fn parse(output: &str) -> Self {
        let mut lines = output.lines().filter(|l| !l.trim().is_empty());
        let header = lines
            .next()
            .unwrap_or_else(|| panic!("no table in {output:?}"));
        // Headers are separated by at least three spaces and hold at most single ones.
        let mut starts = Vec::new();
        let chars: Vec<char> = header.chars().collect();
        for (i, c) in chars.iter().enumerate() {
            let after_gap = i == 0 || (i >= 2 && chars[i - 1] == ' ' && chars[i - 2] == ' ');
            if *c != ' ' && after_gap {
                starts.push(i);
            }
        }
        let cut = |line: &str, i: usize| -> String {
            let chars: Vec<char> = line.chars().collect();
            let end = starts
                .get(i + 1)
                .copied()
                .unwrap_or(chars.len())
                .min(chars.len());
            chars
                .get(starts[i]..end)
                .map(|c| c.iter().collect::<String>().trim().to_owned())
                .unwrap_or_default()
        };
        let headers: Vec<String> = (0..starts.len()).map(|i| cut(header, i)).collect();
        let rows = lines
            .map(|line| {
                headers
                    .iter()
                    .enumerate()
                    .map(|(i, h)| (h.clone(), cut(line, i)))
                    .collect()
            })
            .collect();
        Table { headers, rows }
    }

    /// The row whose NAME is `name`.
    #[track_caller]
    fn row(&self, name: &str) -> &BTreeMap<String, String> {
        self.rows
            .iter()
            .find(|r| r["NAME"] == name)
            .unwrap_or_else(|| panic!("no row {name} in {:?}", self.rows))
    }
}

#[test]
fn apply_examples_then_get_describe_explain_and_edit() {
    let sandbox = Sandbox::start();
    // Every file in examples/ is an object a cluster accepts (scenarios are kept apart, in
    // examples/sandbox/, which `apply -f` without `-R` does not read).
    let output = sandbox.kubectl(&["apply", "-f", &repo("examples/")]);
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert_eq!(output.status.code(), Some(0), "{stdout}{stderr}");
    assert_eq!(stderr, "");
    for applied in [
        "maintenancewindow.patchpilot.dev/weekend-nights created",
        "patchpolicy.patchpilot.dev/workers-os created",
        "patchpolicy.patchpilot.dev/nginx-base created",
        "patchrollout.patchpilot.dev/workers-os-zero-day created",
    ] {
        assert!(stdout.contains(applied), "{applied:?} in {stdout}");
    }
    let again = sandbox.ok(&["apply", "-f", &repo("examples/workload-image-policy.yaml")]);
    assert_eq!(
        again.trim(),
        "patchpolicy.patchpilot.dev/nginx-base unchanged"
    );

    // Printer columns, with the operator's status.
    let policies = Table::parse(&sandbox.ok(&["get", "patchpolicies"]));
    assert_eq!(
        policies.headers,
        ["NAME", "TARGET", "VERSION", "COMPLIANT", "ROLLOUT", "AGE"]
    );
    assert_eq!(policies.row("nginx-base")["VERSION"], "nginx-1.27.4");
    let workers = sandbox.eventually(30, "the policy's status", || {
        let table = Table::parse(&sandbox.ok(&["get", "ppol", "workers-os"]));
        Some(table.rows[0].clone()).filter(|r| !r["TARGET"].is_empty())
    });
    assert_eq!(workers["TARGET"], "Node");
    assert_eq!(workers["VERSION"], "2026-11-security");
    assert!(workers["ROLLOUT"].starts_with("workers-os-"), "{workers:?}");
    let windows = Table::parse(&sandbox.ok(&["get", "maintenancewindows"]));
    assert_eq!(
        windows.headers,
        ["NAME", "TIME ZONE", "OPEN", "NEXT START", "AGE"]
    );
    assert_eq!(windows.row("weekend-nights")["TIME ZONE"], "Europe/Berlin");
    let rollouts = Table::parse(&sandbox.ok(&["get", "pro"]));
    assert_eq!(
        rollouts.headers,
        [
            "NAME", "POLICY", "VERSION", "PHASE", "WAVE", "UPDATED", "FAILED", "AGE"
        ]
    );
    let zero_day = rollouts.row("workers-os-zero-day");
    assert_eq!(zero_day["POLICY"], "workers-os");
    assert_eq!(zero_day["VERSION"], "2026-11-22-openssl-zero-day");

    // The category lists the three kinds.
    let all = sandbox.ok(&["get", "patchpilot"]);
    for name in [
        "maintenancewindow.patchpilot.dev/weekend-nights",
        "patchpolicy.patchpilot.dev/workers-os",
        "patchrollout.patchpilot.dev/workers-os-zero-day",
    ] {
        assert!(all.contains(name), "{name} in {all}");
    }
    let resources = sandbox.ok(&["api-resources", "--api-group=patchpilot.dev", "-o", "wide"]);
    assert!(
        resources.contains("ppol") && resources.contains("patchpilot"),
        "{resources}"
    );

    let described = sandbox.ok(&["describe", "patchrollout", "workers-os-zero-day"]);
    for line in [
        "Name:         workers-os-zero-day",
        "Kind:         PatchRollout",
        "Policy:",
        "Events:",
    ] {
        assert!(described.contains(line), "{line:?} in {described}");
    }

    let yaml = sandbox.ok(&["get", "patchpolicy", "workers-os", "-o", "yaml"]);
    let policy: Value = serde_yaml_ng::from_str(&yaml).unwrap();
    assert_eq!(policy["kind"], "PatchPolicy");
    assert_eq!(policy["spec"]["patch"]["version"], "2026-11-security");

    let explained = sandbox.ok(&["explain", "patchpolicy.spec.strategy"]);
    for needle in [
        "KIND:       PatchPolicy",
        "VERSION:    v1alpha1",
        "maxUnavailable",
        "canary",
    ] {
        assert!(explained.contains(needle), "{needle:?} in {explained}");
    }
    let explained = sandbox.ok(&["explain", "deployment.spec.replicas"]);
    assert!(
        explained.contains("FIELD: replicas <integer>"),
        "{explained}"
    );

    // Edit through $EDITOR: a JSON merge patch of the custom resource.
    let edit = sandbox.kubectl_with(
        &["edit", "mw", "weekend-nights"],
        &[("EDITOR", "sed -i s/cutoff:.*/cutoff:\\ 45m/")],
    );
    assert!(edit.status.success(), "{}", text(&edit.stderr));
    assert_eq!(
        sandbox.ok(&[
            "get",
            "mw",
            "weekend-nights",
            "-o",
            "jsonpath={.spec.cutoff}"
        ]),
        "45m"
    );
}

#[test]
fn invalid_objects_are_refused_naming_the_field() {
    let sandbox = Sandbox::start();
    let invalid = repo("tests/fixtures/kubectl/invalid-policy.yaml");
    for args in [
        vec!["apply", "-f", &invalid],
        vec!["apply", "--server-side", "-f", &invalid],
        vec!["create", "-f", &invalid],
    ] {
        let stderr = sandbox.fails(&args);
        assert!(
            stderr.contains(r#"The PatchPolicy "too-eager" is invalid: spec.strategy.maxUnavailable: Invalid value: "150%""#),
            "kubectl {}: {stderr}",
            args.join(" ")
        );
    }
    // Unknown fields: kubectl asks the server to refuse them (fieldValidation=Strict), as
    // the OpenAPI documents say it can.
    let typo = repo("tests/fixtures/kubectl/unknown-field.yaml");
    for args in [
        vec!["apply", "-f", &typo],
        vec!["apply", "--server-side", "-f", &typo],
    ] {
        let stderr = sandbox.fails(&args);
        assert!(
            stderr.contains(r#"strict decoding error: unknown field "spec.timeZon""#),
            "{stderr}"
        );
    }
    let nothing = sandbox.kubectl(&["get", "patchpilot"]);
    assert!(
        nothing.status.success() && text(&nothing.stdout).is_empty(),
        "{}",
        text(&nothing.stderr)
    );
}

#[test]
fn label_annotate_and_delete() {
    let sandbox = Sandbox::start();
    sandbox.ok(&[
        "apply",
        "--server-side",
        "-f",
        &repo("examples/maintenance-window.yaml"),
    ]);
    assert!(
        sandbox
            .ok(&["label", "mw", "weekend-nights", "team=platform"])
            .contains("labeled")
    );
    assert!(
        sandbox
            .ok(&["annotate", "mw", "weekend-nights", "owner=ops"])
            .contains("annotated")
    );
    assert_eq!(
        sandbox
            .ok(&["get", "mw", "-l", "team=platform", "-o", "name"])
            .trim(),
        "maintenancewindow.patchpilot.dev/weekend-nights"
    );
    let labelled = Table::parse(&sandbox.ok(&["get", "mw", "-L", "team"]));
    assert_eq!(labelled.row("weekend-nights")["TEAM"], "platform");
    assert_eq!(
        sandbox.ok(&[
            "get",
            "mw",
            "weekend-nights",
            "-o",
            "jsonpath={.metadata.annotations.owner}"
        ]),
        "ops"
    );
    sandbox.ok(&["label", "mw", "weekend-nights", "team-"]);
    assert_eq!(sandbox.ok(&["get", "mw", "-l", "team", "-o", "name"]), "");
    assert!(
        sandbox
            .ok(&["delete", "mw", "weekend-nights"])
            .contains(r#"maintenancewindow.patchpilot.dev "weekend-nights" deleted"#)
    );
    let stderr = sandbox.fails(&["get", "mw", "weekend-nights"]);
    assert!(
        stderr.contains(r#"maintenancewindows.patchpilot.dev "weekend-nights" not found"#),
        "{stderr}"
    );
}

#[test]
fn a_crd_applied_with_kubectl_is_served_with_its_columns() {
    let sandbox = Sandbox::start();
    sandbox.ok(&[
        "apply",
        "-f",
        &repo("tests/fixtures/kubectl/widget-crd.yaml"),
    ]);
    let waited = sandbox.ok(&[
        "wait",
        "--for=condition=Established",
        "crd/widgets.example.com",
        "--timeout=20s",
    ]);
    assert!(waited.contains("condition met"), "{waited}");
    sandbox.ok(&["apply", "-f", &repo("tests/fixtures/kubectl/widget.yaml")]);
    let widgets = Table::parse(&sandbox.ok(&["get", "wdg", "-n", "shop"]));
    assert_eq!(
        widgets.headers,
        ["NAME", "SIZE", "FIRST PART", "SHINY", "READY", "AGE"]
    );
    let sprocket = widgets.row("sprocket");
    assert_eq!(
        (
            sprocket["SIZE"].as_str(),
            sprocket["FIRST PART"].as_str(),
            sprocket["SHINY"].as_str()
        ),
        ("3", "cog", "true")
    );
    assert_eq!(sprocket["READY"], "", "a missing value prints as nothing");
    assert!(sprocket["AGE"].ends_with('s'), "{sprocket:?}");
    let wide = Table::parse(&sandbox.ok(&["get", "gadgets", "-n", "shop", "-o", "wide"]));
    assert_eq!(
        wide.headers,
        [
            "NAME",
            "SIZE",
            "FIRST PART",
            "SHINY",
            "READY",
            "COLOR",
            "AGE"
        ]
    );
    assert_eq!(wide.row("sprocket")["COLOR"], "blue");
    let crds = Table::parse(&sandbox.ok(&["get", "crd", "widgets.example.com"]));
    // As Kubernetes v1.37 prints them (v1.3x before printed NAME and CREATED AT only).
    assert_eq!(crds.headers, ["NAME", "SCOPE", "VERSIONS", "CREATED AT"]);
    let widgets_crd = crds.row("widgets.example.com");
    assert_eq!(
        (
            widgets_crd["SCOPE"].as_str(),
            widgets_crd["VERSIONS"].as_str()
        ),
        ("Namespaced", "v1(storage)")
    );
    let explained = sandbox.ok(&["explain", "widget.spec.size"]);
    assert!(explained.contains("How big it is."), "{explained}");
    let stderr = sandbox.fails(&[
        "patch",
        "wdg",
        "sprocket",
        "-n",
        "shop",
        "--type=merge",
        "-p",
        r#"{"spec":{"size":0}}"#,
    ]);
    assert!(stderr.contains("spec.size"), "{stderr}");
}

#[test]
fn builtin_kinds_print_their_usual_columns() {
    let sandbox = Sandbox::without_operator();
    let pods = sandbox.wait_ready("web", 3);
    let nodes = Table::parse(&sandbox.ok(&["get", "nodes"]));
    assert_eq!(nodes.headers, ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]);
    assert_eq!(nodes.rows.len(), 5);
    let gpu = nodes.row("gpu-1");
    assert_eq!(
        (gpu["STATUS"].as_str(), gpu["ROLES"].as_str()),
        ("Ready", "worker")
    );
    assert!(gpu["VERSION"].starts_with('v'), "{gpu:?}");
    let wide = Table::parse(&sandbox.ok(&["get", "pods", "-n", "shop", "-o", "wide"]));
    assert_eq!(
        wide.headers,
        [
            "NAME",
            "READY",
            "STATUS",
            "RESTARTS",
            "AGE",
            "IP",
            "NODE",
            "NOMINATED NODE",
            "READINESS GATES"
        ]
    );
    let name = pods[0]["metadata"]["name"].as_str().unwrap();
    let pod = wide.row(name);
    assert_eq!(
        (
            pod["READY"].as_str(),
            pod["STATUS"].as_str(),
            pod["RESTARTS"].as_str()
        ),
        ("1/1", "Running", "0")
    );
    assert_eq!(pod["NODE"], pods[0]["spec"]["nodeName"].as_str().unwrap());
    let deployments = Table::parse(&sandbox.ok(&["get", "deploy", "-n", "shop"]));
    assert_eq!(
        deployments.headers,
        ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    );
    assert_eq!(deployments.row("web")["READY"], "3/3");
    let budgets = Table::parse(&sandbox.ok(&["get", "pdb", "-n", "shop"]));
    assert_eq!(
        budgets.headers,
        [
            "NAME",
            "MIN AVAILABLE",
            "MAX UNAVAILABLE",
            "ALLOWED DISRUPTIONS",
            "AGE"
        ]
    );
    assert_eq!(budgets.row("web-pdb")["MIN AVAILABLE"], "2");
    let daemons = Table::parse(&sandbox.ok(&["get", "ds", "-n", "monitoring"]));
    assert_eq!(
        daemons.headers,
        [
            "NAME",
            "DESIRED",
            "CURRENT",
            "READY",
            "UP-TO-DATE",
            "AVAILABLE",
            "NODE SELECTOR",
            "AGE"
        ]
    );
    assert_eq!(daemons.row("node-exporter")["NODE SELECTOR"], "<none>");
    let namespaces = Table::parse(&sandbox.ok(&["get", "ns"]));
    assert_eq!(namespaces.headers, ["NAME", "STATUS", "AGE"]);
    assert_eq!(namespaces.row("shop")["STATUS"], "Active");
    // The `all` category: the workloads and their pods.
    let all = sandbox.ok(&["get", "all", "-n", "shop"]);
    for name in [
        "pod/cache-0",
        "deployment.apps/web",
        "statefulset.apps/cache",
        "replicaset.apps/web-",
    ] {
        assert!(all.contains(name), "{name} in {all}");
    }
    // A watch prints its rows as tables too.
    let watch = sandbox.kubectl(&[
        "get",
        "pods",
        "-n",
        "shop",
        "--watch",
        "--request-timeout=2s",
    ]);
    let watched = Table::parse(&text(&watch.stdout));
    assert_eq!(watched.headers[..3], ["NAME", "READY", "STATUS"]);
    assert!(watched.rows.len() >= 5, "{:?}", watched.rows);
}

#[test]
fn cordon_and_uncordon_a_node() {
    let sandbox = Sandbox::without_operator();
    assert!(
        sandbox
            .ok(&["cordon", "general-2"])
            .contains("node/general-2 cordoned")
    );
    let node = sandbox.eventually(20, "the unschedulable taint", || {
        let node = sandbox.json(&["get", "node", "general-2"]);
        let taints = node["spec"]["taints"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        taints
            .iter()
            .any(|t| t["key"] == "node.kubernetes.io/unschedulable" && t["effect"] == "NoSchedule")
            .then_some(node)
    });
    assert_eq!(node["spec"]["unschedulable"], true);
    let nodes = Table::parse(&sandbox.ok(&["get", "node", "general-2"]));
    assert_eq!(nodes.row("general-2")["STATUS"], "Ready,SchedulingDisabled");
    assert!(
        sandbox
            .ok(&["uncordon", "general-2"])
            .contains("node/general-2 uncordoned")
    );
    sandbox.eventually(20, "the taint removed", || {
        let node = sandbox.json(&["get", "node", "general-2"]);
        (node["spec"]["unschedulable"] != true
            && node["spec"]["taints"].as_array().is_none_or(Vec::is_empty))
        .then_some(())
    });
    assert_eq!(
        Table::parse(&sandbox.ok(&["get", "node", "general-2"])).row("general-2")["STATUS"],
        "Ready"
    );
}

#[test]
fn drain_waits_for_the_disruption_budget() {
    let sandbox = Sandbox::without_operator();
    sandbox.wait_ready("web", 3);
    // Two replicas and a budget of two: no web pod may go.
    sandbox.ok(&["scale", "deployment/web", "-n", "shop", "--replicas=2"]);
    let pods = sandbox.wait_ready("web", 2);
    let node = pods[0]["spec"]["nodeName"].as_str().unwrap().to_owned();
    let output = sandbox.kubectl(&["drain", &node, "--ignore-daemonsets", "--timeout=2s"]);
    let stderr = text(&output.stderr);
    assert!(!output.status.success(), "{}", text(&output.stdout));
    assert!(
        stderr.contains("Cannot evict pod as it would violate the pod's disruption budget."),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(r#"unable to drain node "{node}""#)),
        "{stderr}"
    );
    assert_eq!(
        Table::parse(&sandbox.ok(&["get", "node", &node])).row(&node)["STATUS"],
        "Ready,SchedulingDisabled"
    );

    // A third replica (elsewhere: the node is cordoned) lets one go.
    sandbox.ok(&["scale", "deployment/web", "-n", "shop", "--replicas=3"]);
    sandbox.ok(&[
        "rollout",
        "status",
        "deployment/web",
        "-n",
        "shop",
        "--timeout=60s",
    ]);
    let drained = sandbox.ok(&["drain", &node, "--ignore-daemonsets", "--timeout=60s"]);
    assert!(
        drained.contains(&format!("node/{node} drained")),
        "{drained}"
    );
    let pods = sandbox.wait_ready("web", 3);
    assert!(
        pods.iter().all(|p| p["spec"]["nodeName"] != node.as_str()),
        "a web pod is still on {node}"
    );
    sandbox.ok(&[
        "wait",
        "--for=condition=Available",
        "deployment/web",
        "-n",
        "shop",
        "--timeout=30s",
    ]);
    sandbox.ok(&["uncordon", &node]);
}

#[test]
fn set_image_rolls_the_deployment() {
    let sandbox = Sandbox::without_operator();
    sandbox.wait_ready("web", 3);
    sandbox.ok(&[
        "set",
        "image",
        "deployment/web",
        "-n",
        "shop",
        "web=docker.io/library/nginx:1.27.4",
    ]);
    let status = sandbox.ok(&[
        "rollout",
        "status",
        "deployment/web",
        "-n",
        "shop",
        "--timeout=60s",
    ]);
    assert!(
        status.contains(r#"deployment "web" successfully rolled out"#),
        "{status}"
    );
    let wide = Table::parse(&sandbox.ok(&["get", "deployment", "web", "-n", "shop", "-o", "wide"]));
    assert_eq!(
        wide.headers,
        [
            "NAME",
            "READY",
            "UP-TO-DATE",
            "AVAILABLE",
            "AGE",
            "CONTAINERS",
            "IMAGES",
            "SELECTOR"
        ]
    );
    let web = wide.row("web");
    assert_eq!(
        (
            web["READY"].as_str(),
            web["IMAGES"].as_str(),
            web["SELECTOR"].as_str()
        ),
        ("3/3", "docker.io/library/nginx:1.27.4", "app=web")
    );
    let pods = sandbox.wait_ready("web", 3);
    assert!(
        pods.iter()
            .all(|p| p["spec"]["containers"][0]["image"] == "docker.io/library/nginx:1.27.4")
    );
    let scale: Value = serde_json::from_str(&sandbox.ok(&[
        "get",
        "--raw",
        "/apis/apps/v1/namespaces/shop/deployments/web/scale",
    ]))
    .unwrap();
    assert_eq!(
        (
            scale["spec"]["replicas"].as_i64(),
            scale["status"]["selector"].as_str()
        ),
        (Some(3), Some("app=web"))
    );
    assert!(
        sandbox
            .ok(&["delete", "deployment", "web", "-n", "shop"])
            .contains(r#"deployment.apps "web" deleted"#)
    );
    sandbox.eventually(30, "the web pods gone", || {
        sandbox
            .ok(&["get", "pods", "-n", "shop", "-l", "app=web", "-o", "name"])
            .is_empty()
            .then_some(())
    });
}

/// kubectl sends no credentials to a plain-HTTP server; the sandbox takes such requests
/// for the admin user's, and still refuses tokens it does not know.
#[test]
fn requests_without_credentials_are_the_admin_user_and_unknown_tokens_are_refused() {
    let sandbox = Sandbox::start();
    let status = |authorization: Option<&str>| -> String {
        let address = server(&sandbox.kubeconfig);
        let address = address.trim_start_matches("http://");
        let mut stream = TcpStream::connect(address).unwrap();
        let header = authorization
            .map(|a| format!("Authorization: {a}\r\n"))
            .unwrap_or_default();
        write!(
            stream,
            "GET /version HTTP/1.1\r\nHost: {address}\r\n{header}Connection: close\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response.lines().next().unwrap_or("").to_owned()
    };
    assert!(status(None).contains(" 200 "), "{}", status(None));
    assert!(status(Some("Bearer sandbox-admin")).contains(" 200 "));
    assert!(status(Some("Bearer wrong")).contains(" 401 "));
    assert!(status(Some("Basic YWRtaW46YWRtaW4=")).contains(" 401 "));
    let version = sandbox.ok(&["version", "-o", "json"]);
    let version: Value = serde_json::from_str(&version).unwrap();
    assert!(
        version["serverVersion"]["gitVersion"]
            .as_str()
            .unwrap()
            .starts_with("v1."),
        "{version}"
    );
}

fn server(kubeconfig: &Path) -> String {
    let text = std::fs::read_to_string(kubeconfig).unwrap();
    text.lines()
        .find_map(|l| l.trim().strip_prefix("server: "))
        .unwrap()
        .to_owned()
}

#[test]
fn kubectl_wait_ends_promptly_on_a_waiting_policy_and_on_either_outcome_of_a_rollout() {
    let sandbox = Sandbox::start();
    sandbox.ok(&[
        "apply",
        "-f",
        &repo("tests/fixtures/kubectl/held-policy.yaml"),
    ]);
    // Accepted and waiting for approval: Ready at once, not "in progress" until approved.
    let waited = sandbox.ok(&[
        "wait",
        "--for=condition=Ready",
        "patchpolicy/held",
        "--timeout=30s",
    ]);
    assert!(waited.contains("condition met"), "{waited}");
    let reason = sandbox.ok(&[
        "get",
        "patchpolicy",
        "held",
        "-o",
        "jsonpath={.status.conditions[?(@.type==\"Ready\")].reason}",
    ]);
    assert_eq!(reason, "AwaitingApproval");
    let rollout = sandbox.ok(&[
        "get",
        "patchrollouts",
        "-l",
        "patchpilot.dev/policy=held",
        "-o",
        "name",
    ]);
    let rollout = rollout.trim();
    // Aborted before it started: it ends RolledBack, Stalled with the cause; the documented
    // wait ends on that outcome as on success.
    sandbox.ok(&[
        "patch",
        rollout,
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"abort":true}}"#,
    ]);
    let waited = sandbox.ok(&[
        "wait",
        "--for=condition=Reconciling=False",
        rollout,
        "--timeout=30s",
    ]);
    assert!(waited.contains("condition met"), "{waited}");
    let phase = sandbox.ok(&["get", rollout, "-o", "jsonpath={.status.phase}"]);
    assert_eq!(phase, "RolledBack");
    let stalled = sandbox.ok(&[
        "get",
        rollout,
        "-o",
        "jsonpath={.status.conditions[?(@.type==\"Stalled\")].status} {.status.conditions[?(@.type==\"Stalled\")].reason}",
    ]);
    assert_eq!(stalled, "True Aborted");
    // The policy follows: Stalled, not Ready.
    let waited = sandbox.ok(&[
        "wait",
        "--for=condition=Stalled",
        "patchpolicy/held",
        "--timeout=30s",
    ]);
    assert!(waited.contains("condition met"), "{waited}");
}

/// A kubectl age (`45s`, `2m5s`, `3h`, `2d3h`) as seconds; `None` for anything else, such as
/// the `<invalid>` kubectl shows for an instant in the future.
fn age_seconds(age: &str) -> Option<u64> {
    let mut total = 0;
    let mut number = String::new();
    for c in age.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86400,
            'y' => 365 * 86400,
            _ => return None,
        };
        total += number.parse::<u64>().ok()? * unit;
        number.clear();
    }
    (number.is_empty() && !age.is_empty()).then_some(total)
}

/// Issue 10, item 16: events carry the virtual clock's time, as everything else the sandbox
/// shows, so `kubectl get events` shows their ages in it. The built-in scenario starts on
/// 2026-11-27 at 23:00 whatever the date; before the fix, events carried the wall clock.
#[test]
fn events_follow_the_virtual_clock() {
    let began = Instant::now();
    let sandbox = Sandbox::serve(&["--speed", "60"]);
    let start: jiff::Timestamp = "2026-11-27T23:00:00Z".parse().unwrap();
    let events = sandbox.eventually(60, "the operator's events", || {
        let events = sandbox.json(&["get", "events.events.k8s.io", "-A"]);
        let items = events["items"].as_array().cloned().unwrap_or_default();
        let ours = items
            .iter()
            .filter(|e| e["reportingController"] == "patchpilot")
            .count();
        (ours >= 2).then_some(items)
    });
    let table = Table::parse(&sandbox.ok(&["get", "events", "-A"]));
    // The virtual time that can have passed, at 60 times real time, plus a minute.
    let elapsed = 60 * began.elapsed().as_secs() + 60;
    let latest = start + jiff::SignedDuration::from_secs(elapsed as i64);
    for event in &events {
        for field in [&event["eventTime"], &event["series"]["lastObservedTime"]] {
            let Some(at) = field.as_str() else { continue };
            let at: jiff::Timestamp = at.parse().unwrap();
            assert!(
                start <= at && at <= latest,
                "an event at {at}, outside the scenario's {start}..{latest}: {event:#}"
            );
        }
    }
    assert!(!table.rows.is_empty(), "{table:?}", table = table.headers);
    for row in &table.rows {
        let age = &row["LAST SEEN"];
        let seconds = age_seconds(age).unwrap_or_else(|| panic!("LAST SEEN {age:?}: {row:?}"));
        assert!(
            seconds <= elapsed,
            "LAST SEEN {age} after {elapsed}s: {row:?}"
        );
    }
}

/// The README's way of running the operator as its own process against a served sandbox:
/// with the kubeconfig the sandbox wrote, the command the README gives acts as the
/// operator's user, names itself `patchpilot/<version>`, and the README's audit filter finds
/// its requests.
#[test]
fn the_readmes_operator_command_acts_as_the_operator() {
    let readme = std::fs::read_to_string(repo("README.md")).unwrap();
    let command = readme
        .lines()
        .map(str::trim)
        .find(|line| line.starts_with("KUBECONFIG=sandbox.kubeconfig patchpilot run"))
        .expect("the README shows how to run the operator against a served sandbox");
    // Everything after `patchpilot`, with a free port for the metrics.
    let mut args: Vec<String> = command
        .split_whitespace()
        .skip(2)
        .map(str::to_owned)
        .collect();
    if let Some(at) = args.iter().position(|a| a == "--metrics-addr") {
        args[at + 1] = "127.0.0.1:0".into();
    }
    let audit = tempfile::tempdir().unwrap();
    let audit_log = audit.path().join("audit.log");
    let sandbox = Sandbox::start_with(&[
        "--without-operator",
        "--audit-log",
        audit_log.to_str().unwrap(),
    ]);
    let mut operator = Command::new(env!("CARGO_BIN_EXE_patchpilot"))
        .args(&args)
        .env("KUBECONFIG", &sandbox.kubeconfig)
        .env("POD_NAMESPACE", "patchpilot-system")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let operator_user = "system:serviceaccount:patchpilot-system:patchpilot";
    let by_operator = || -> Vec<Value> {
        std::fs::read_to_string(&audit_log)
            .unwrap_or_default()
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            // The README's filter: `select(.user.username | contains("patchpilot"))`.
            .filter(|event| {
                event["user"]["username"]
                    .as_str()
                    .is_some_and(|user| user.contains("patchpilot"))
            })
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while by_operator().len() < 5 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = operator.kill();
    let _ = operator.wait();
    let requests = by_operator();
    assert!(
        requests.len() >= 5,
        "the README's filter finds {} requests of the operator: {}",
        requests.len(),
        sandbox.log()
    );
    let agent = format!("patchpilot/{}", env!("CARGO_PKG_VERSION"));
    for event in &requests {
        assert_eq!(event["user"]["username"], operator_user, "{event}");
        assert_eq!(event["userAgent"], agent.as_str(), "{event}");
    }
}
