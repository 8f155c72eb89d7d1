//! The kubectl conformance tests: the real kubectl, one body per test, against the sandbox
//! served to it (`tests/sandbox_kubectl.rs`) and the real control plane of `tests/cluster`
//! (`tests/e2e/kubectl.rs`). They read what kubectl prints — server-side tables, `explain`
//! from the OpenAPI documents, the errors of refused objects — and drive what kubectl does
//! through the API: `drain` through the Eviction API under a budget, `rollout status` and
//! `wait` on the conditions the controllers write.
//!
//! A body takes a [`Kubectl`]: kubectl for the cluster, a namespace of the test's own (empty:
//! each body applies the workloads it needs from `tests/fixtures/kubectl`), and the cleanup
//! of what a body does outside it (cordoned nodes, cluster-scoped objects). Nodes are the
//! ones `tests/cluster/up` makes (`general-1`…`general-4`, `gpu-1`, `gpu-2`, role `worker`),
//! which `tests/fixtures/kubectl/nodes.yaml` gives the sandbox too; the bodies find the
//! nodes they use by what runs there, not by name.

pub mod nodes;
pub mod objects;
pub mod printing;

/// Expands `$each!(module::test, …)` with every kubectl conformance test, so that each
/// backend runs all of them from one list.
#[macro_export]
macro_rules! every_kubectl_test {
    ($each:ident) => {
        $each!(
            printing::builtin_kinds_print_their_usual_columns,
            printing::a_crd_applied_with_kubectl_is_served_with_its_columns,
            printing::explain_reads_the_openapi_documents,
            objects::invalid_objects_are_refused_naming_the_field,
            objects::label_annotate_and_delete,
            objects::kubectl_create_writes_built_in_kinds,
            nodes::cordon_and_uncordon_a_node,
            nodes::drain_waits_for_the_disruption_budget,
            nodes::set_image_rolls_the_deployment,
        );
    };
}

use std::{
    collections::BTreeMap,
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;

use crate::repo;

/// kubectl for a cluster, and what the bodies need around it.
pub trait Kubectl {
    /// kubectl, with the cluster's kubeconfig and a discovery cache of the test's own, ready
    /// for its arguments.
    fn command(&self) -> Command;

    /// A namespace of the test's own, created before the body runs (and deleted after it).
    fn namespace(&self) -> &str;

    /// Makes the backend uncordon `node` after the test, however it ends, if it was
    /// schedulable before.
    fn restore_node_at_end(&self, node: &str);

    /// Makes the backend delete the cluster-scoped object `name` (of `plural` in
    /// `api_version`) after the test, however it ends.
    fn delete_at_end(&self, api_version: &str, plural: &str, name: &str);

    /// What to print beside a failure (the sandbox's log).
    fn context(&self) -> String {
        String::new()
    }

    /// Runs kubectl.
    fn run(&self, args: &[&str]) -> Output {
        self.run_with(args, &[])
    }

    /// Runs kubectl with more environment variables.
    fn run_with(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut command = self.command();
        let program = command.get_program().to_string_lossy().into_owned();
        command
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| {
                panic!("cannot run {program} (these tests drive the real kubectl): {e}")
            })
    }

    /// Runs kubectl, which must succeed; its standard output.
    #[track_caller]
    fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            output.status.success(),
            "kubectl {}: {}\n{}",
            args.join(" "),
            text(&output.stderr),
            self.context()
        );
        text(&output.stdout)
    }

    /// Runs kubectl, which must fail; its standard error.
    #[track_caller]
    fn fails(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            !output.status.success(),
            "kubectl {} succeeded: {}",
            args.join(" "),
            text(&output.stdout)
        );
        text(&output.stderr)
    }

    /// Runs `kubectl … -o json` and parses it.
    #[track_caller]
    fn json(&self, args: &[&str]) -> Value {
        let args = [args, &["-o", "json"]].concat();
        serde_json::from_str(&self.ok(&args)).unwrap()
    }

    /// Runs kubectl in the test's namespace (`-n` first, so that it stays before a `--`),
    /// which must succeed.
    #[track_caller]
    fn ok_here(&self, args: &[&str]) -> String {
        self.ok(&[&["-n", self.namespace()], args].concat())
    }

    /// Applies a file of `tests/fixtures/kubectl` in the test's namespace.
    #[track_caller]
    fn apply_fixture(&self, file: &str) -> String {
        self.ok_here(&["apply", "-f", &fixture(file)])
    }

    /// `kubectl rollout status` of the Deployment `name` in the test's namespace, which must
    /// end rolled out within `seconds`.
    #[track_caller]
    fn rolled_out(&self, name: &str, seconds: u64) {
        let timeout = format!("--timeout={seconds}s");
        let object = format!("deployment/{name}");
        let status = self.ok_here(&["rollout", "status", &object, &timeout]);
        assert!(
            status.contains(&format!(r#"deployment "{name}" successfully rolled out"#)),
            "{status}"
        );
    }

    /// Polls `check` every 200 ms until it answers `Some`, for at most `seconds`.
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
                self.context()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Waits until the pods labelled `app` in the test's namespace are `count`, none of them
    /// going, and all Running and Ready; returns them.
    #[track_caller]
    fn wait_ready(&self, app: &str, count: usize) -> Vec<Value> {
        self.eventually(90, &format!("{count} ready {app} pods"), || {
            let selector = format!("app={app}");
            let pods = self.json(&["get", "pods", "-n", self.namespace(), "-l", &selector]);
            let pods = pods["items"].as_array().cloned().unwrap_or_default();
            let ready: Vec<Value> = pods
                .iter()
                .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
                .filter(|p| condition(p, "Ready") == Some("True"))
                .cloned()
                .collect();
            (ready.len() == count && pods.len() == count).then_some(ready)
        })
    }
}

/// A file of `tests/fixtures/kubectl`, as a path.
pub fn fixture(file: &str) -> String {
    repo::root(&format!("tests/fixtures/kubectl/{file}"))
}

/// The status of the condition `kind` of an object, if it has one.
pub fn condition<'a>(object: &'a Value, kind: &str) -> Option<&'a str> {
    object["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)?["status"]
        .as_str()
}

/// Bytes kubectl printed, as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A table as kubectl prints it: the headers, and each row by header. Cells are cut at the
/// columns' positions, so empty cells stay in their column.
pub struct Table {
    /// The headers, left to right.
    pub headers: Vec<String>,
    /// The rows, top to bottom, each cell by its header.
    pub rows: Vec<BTreeMap<String, String>>,
}

impl Table {
    /// Reads a table kubectl printed.
    #[track_caller]
    pub fn parse(output: &str) -> Self {
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
    pub fn row(&self, name: &str) -> &BTreeMap<String, String> {
        self.rows
            .iter()
            .find(|r| r["NAME"] == name)
            .unwrap_or_else(|| panic!("no row {name} in {:?}", self.rows))
    }
}
