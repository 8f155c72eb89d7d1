//! The command line: help for every command, and bad input answered with exit status 2 and
//! one line on standard error naming the file and the field — never a panic.

use patchpilot_testkit::{
    cli::{assert_bad_input, patchpilot, stderr, write},
    repo::root,
};

const WINDOW: &str = "apiVersion: patchpilot.dev/v1alpha1
kind: MaintenanceWindow
metadata: {name: nightly}
spec:
  recurrences:
    - start: \"01:00\"
      duration: DURATION
";

fn example(name: &str) -> String {
    root(&format!("examples/{name}"))
}

#[test]
fn every_command_has_help() {
    for command in ["run", "crd", "window", "plan", "sandbox"] {
        let output = patchpilot(&[command, "--help"]);
        assert!(output.status.success(), "{command}: {}", stderr(&output));
        let help = String::from_utf8(output.stdout).unwrap();
        assert!(
            help.contains(&format!("patchpilot {command}")),
            "{command}: {help}"
        );
    }
    let output = patchpilot(&["--help"]);
    let help = String::from_utf8(output.stdout).unwrap();
    for command in ["run", "crd", "window", "plan", "sandbox"] {
        assert!(help.contains(command), "{help}");
    }
}

#[test]
fn a_missing_file_names_the_file() {
    let output = patchpilot(&["window", "/nonexistent/window.yaml"]);
    assert_bad_input(&output, &["/nonexistent/window.yaml", "cannot read"]);
}

#[test]
fn malformed_yaml_names_the_file_and_the_place() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "broken.yaml",
        "spec:\n  recurrences: [unclosed\n",
    );
    let output = patchpilot(&["window", file.to_str().unwrap()]);
    assert_bad_input(&output, &["broken.yaml", "malformed YAML", "line"]);
}

#[test]
fn an_invalid_field_names_the_file_and_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "window.yaml", &WINDOW.replace("DURATION", "4x"));
    let output = patchpilot(&["window", file.to_str().unwrap()]);
    assert_bad_input(
        &output,
        &[
            "window.yaml",
            "MaintenanceWindow/nightly",
            "spec.recurrences[0].duration",
        ],
    );
}

#[test]
fn a_percent_over_100_names_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let policy = std::fs::read_to_string(example("node-os-policy.yaml"))
        .unwrap()
        .replace("maxUnavailable: \"10%\"", "maxUnavailable: \"150%\"");
    let policy = write(dir.path(), "policy.yaml", &policy);
    let cluster = write(
        dir.path(),
        "cluster.yaml",
        "apiVersion: v1\nkind: List\nitems: []\n",
    );
    let output = patchpilot(&[
        "plan",
        "--policy",
        policy.to_str().unwrap(),
        "--cluster",
        cluster.to_str().unwrap(),
    ]);
    assert_bad_input(
        &output,
        &["policy.yaml", "spec.strategy.maxUnavailable", "150%"],
    );
}

#[test]
fn an_unknown_field_is_refused_as_a_cluster_would() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "w.yaml",
        &WINDOW.replace("DURATION", "4h\n      timezone: UTC"),
    );
    let output = patchpilot(&["window", file.to_str().unwrap()]);
    assert_bad_input(
        &output,
        &["w.yaml", "unknown field \"spec.recurrences[0].timezone\""],
    );
}

#[test]
fn a_file_without_the_object_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "empty.yaml", "---\n");
    assert_bad_input(
        &patchpilot(&["window", file.to_str().unwrap()]),
        &["empty.yaml", "no MaintenanceWindow"],
    );
}

#[test]
fn a_bad_flag_is_one_line_and_exit_2() {
    let output = patchpilot(&[
        "window",
        &example("maintenance-window.yaml"),
        "--at",
        "yesterday",
    ]);
    assert_bad_input(&output, &["--at"]);
    assert_bad_input(&patchpilot(&["frobnicate"]), &["frobnicate"]);
}

#[test]
fn crd_prints_a_document_for_each_kind() {
    let output = patchpilot(&["crd"]);
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    assert_eq!(
        text.matches("\nkind: CustomResourceDefinition\n").count(),
        patchpilot::api::crds().len()
    );
    assert_eq!(
        patchpilot::api::crds().len(),
        4,
        "MaintenanceWindow, Notifier, PatchPolicy, PatchRollout"
    );
}

#[test]
fn a_missing_argument_is_named() {
    let policy = example("node-os-policy.yaml");
    let cases: [(&[&str], &[&str]); 4] = [
        (&["plan", "--policy", &policy], &["--cluster <FILE>"]),
        (&["plan"], &["--policy <FILE>", "--cluster <FILE>"]),
        (&["window"], &["<FILE>"]),
        (
            &["sandbox", "--serve", "127.0.0.1:0"],
            &["--kubeconfig-out <FILE>"],
        ),
    ];
    for (args, names) in cases {
        let output = patchpilot(args);
        let mut needles = vec!["required arguments were not provided:"];
        needles.extend(names);
        assert_bad_input(&output, &needles);
    }
}

#[test]
fn several_causes_are_one_a_line_after_the_line_naming_the_file_and_object() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "w.yaml",
        "apiVersion: patchpilot.dev/v1alpha1
kind: MaintenanceWindow
metadata: {name: nightly}
spec:
  timeZone: Mars/Olympus
  recurrences:
    - cron: \"0 5-2 * * *\"
      duration: 1h
  exclusions:
    - start: \"2026-01-02T00:00:00Z\"
      end: \"2026-01-01T00:00:00Z\"
",
    );
    let output = patchpilot(&["window", file.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    let err = stderr(&output);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 4, "{err}");
    assert!(
        lines[0].starts_with("error: ")
            && lines[0].ends_with("w.yaml: MaintenanceWindow/nightly: 3 problems:"),
        "{err}"
    );
    // The schema's refusal, then the operator's own reading's.
    assert!(lines[1].starts_with("  spec.exclusions[0]: "), "{err}");
    assert_eq!(
        lines[2],
        "  spec.timeZone: unknown time zone \"Mars/Olympus\""
    );
    assert!(
        lines[3].starts_with("  spec.recurrences[0].cron: "),
        "{err}"
    );
}
