//! The real kubectl against a served sandbox (`patchpilot sandbox --serve`).
//!
//! The kubectl conformance tests (`patchpilot_testkit::conformance::kubectl`: server-side
//! tables, CRDs created on the fly, `explain`, refusals naming the field, labels and
//! annotations, cordon, drain under a PodDisruptionBudget, `set image` with `rollout status`,
//! `wait`) run here against the sandbox, with the bodies `tests/e2e/kubectl.rs` runs against
//! the real control plane. The tests of this file beside them need the operator or the
//! sandbox itself: the examples applied and their status, describe and edit, `kubectl wait`
//! on a rollout's outcome, events on the virtual clock, credentials, and the README's way of
//! running the operator as its own process.
//!
//! Each test starts its own sandbox on a free port, with its own kubectl cache, and stops it
//! when done. kubectl is found on the `PATH` or at `$KUBECTL`.

#[path = "sandbox_kubectl/calendar.rs"]
mod calendar;
#[path = "sandbox_kubectl/plugin.rs"]
mod plugin;

use std::{
    io::{Read, Write},
    net::TcpStream,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use patchpilot_testkit::{
    conformance::kubectl::{self, Kubectl, Table, text},
    repo::root as repo,
};
use serde_json::Value;
use tempfile::TempDir;

/// A sandbox served to kubectl, stopped when dropped.
struct Sandbox {
    child: Child,
    dir: TempDir,
    kubeconfig: PathBuf,
    /// The namespace the tests work in.
    namespace: String,
}

impl Sandbox {
    /// Serves the scenario of `tests/fixtures/kubectl/scenario.yaml`, with the operator.
    fn start() -> Self {
        Self::start_with(&[])
    }

    /// Serves that scenario with more flags.
    fn start_with(flags: &[&str]) -> Self {
        let scenario = repo("tests/fixtures/kubectl/scenario.yaml");
        Self::serve(&[&["--scenario", &scenario], flags].concat())
    }

    /// The backend of the kubectl conformance tests: the nodes the real control plane of
    /// `tests/cluster` has, without the operator, and an empty namespace.
    fn for_conformance() -> Self {
        let scenario = kubectl::fixture("nodes.yaml");
        let mut sandbox = Self::serve(&["--scenario", &scenario, "--without-operator"]);
        sandbox.namespace = "conformance".to_owned();
        sandbox.ok(&["create", "namespace", "conformance"]);
        sandbox
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
            namespace: "shop".to_owned(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        // The kubeconfig is written once the port is bound; its last line comes last.
        while !std::fs::read_to_string(&sandbox.kubeconfig)
            .is_ok_and(|k| k.contains("current-context"))
        {
            if let Ok(Some(status)) = sandbox.child.try_wait() {
                panic!("the sandbox stopped ({status}): {}", sandbox.context());
            }
            assert!(
                Instant::now() < deadline,
                "no kubeconfig after 30 s: {}",
                sandbox.context()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        sandbox
    }
}

impl Kubectl for Sandbox {
    fn command(&self) -> Command {
        let kubectl = std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".to_owned());
        let mut command = Command::new(kubectl);
        command
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .env("KUBECACHEDIR", self.dir.path().join("cache"));
        command
    }

    fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The sandbox goes with the test.
    fn restore_node_at_end(&self, _node: &str) {}

    /// The sandbox goes with the test.
    fn delete_at_end(&self, _api_version: &str, _plural: &str, _name: &str) {}

    fn context(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sandbox.log")).unwrap_or_default()
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- sandbox log ---\n{}", self.context());
        }
    }
}

/// Tests whose body is a kubectl conformance test, each on a sandbox of its own.
macro_rules! kubectl_conformance_tests {
    ($($module:ident::$test:ident),* $(,)?) => {
        $(
            #[test]
            fn $test() {
                kubectl::$module::$test(&Sandbox::for_conformance());
            }
        )*
    };
}

patchpilot_testkit::every_kubectl_test!(kubectl_conformance_tests);

#[test]
fn apply_examples_then_get_describe_and_edit() {
    let sandbox = Sandbox::start();
    // Every file in examples/ is an object a cluster accepts (scenarios are kept apart, in
    // examples/sandbox/, which `apply -f` without `-R` does not read).
    let output = sandbox.run(&["apply", "-f", &repo("examples/")]);
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
        [
            "NAME",
            "READY",
            "TARGET",
            "VERSION",
            "COMPLIANT",
            "ROLLOUT",
            "AGE"
        ]
    );
    assert_eq!(policies.row("nginx-base")["VERSION"], "nginx-1.27.4");
    let workers = sandbox.eventually(30, "the policy's status", || {
        let table = Table::parse(&sandbox.ok(&["get", "ppol", "workers-os"]));
        Some(table.rows[0].clone()).filter(|r| !r["TARGET"].is_empty())
    });
    assert_eq!(workers["TARGET"], "Node");
    assert_eq!(workers["VERSION"], "2026-11-security");
    assert!(workers["ROLLOUT"].starts_with("workers-os-"), "{workers:?}");
    assert_eq!(workers["READY"], "True");
    let windows = Table::parse(&sandbox.ok(&["get", "maintenancewindows"]));
    assert_eq!(
        windows.headers,
        ["NAME", "READY", "TIME ZONE", "OPEN", "NEXT START", "AGE"]
    );
    assert_eq!(windows.row("weekend-nights")["TIME ZONE"], "Europe/Berlin");
    // An invalid window stands out: READY False, and why with -o wide.
    let mars = "apiVersion: patchpilot.dev/v1alpha1\nkind: MaintenanceWindow\nmetadata: {name: mars}\nspec:\n  timeZone: Mars/Olympus_Mons\n  recurrences: [{days: [Sat], start: \"01:00\", duration: 1h}]\n";
    let file = sandbox.dir.path().join("mars.yaml");
    std::fs::write(&file, mars).unwrap();
    sandbox.ok(&["apply", "-f", &file.display().to_string()]);
    let mars = sandbox.eventually(30, "the invalid window's status", || {
        let table = Table::parse(&sandbox.ok(&["get", "mw", "mars", "-o", "wide"]));
        Some(table.rows[0].clone()).filter(|r| r["READY"] == "False")
    });
    assert!(mars["STATUS"].contains("Mars/Olympus_Mons"), "{mars:?}");
    let rollouts = Table::parse(&sandbox.ok(&["get", "pro"]));
    assert_eq!(
        rollouts.headers,
        [
            "NAME",
            "POLICY",
            "VERSION",
            "PHASE",
            "WAVE",
            "UPDATED",
            "IN PROGRESS",
            "FAILED",
            "AGE"
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

    // Edit through $EDITOR: a JSON merge patch of the custom resource.
    let edit = sandbox.run_with(
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
        sandbox.context()
    );
    let agent = format!("patchpilot/{}", env!("CARGO_PKG_VERSION"));
    for event in &requests {
        assert_eq!(event["user"]["username"], operator_user, "{event}");
        assert_eq!(event["userAgent"], agent.as_str(), "{event}");
    }
}
