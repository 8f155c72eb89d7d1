//! Issue 10, item 17: every shipped example rolls out in the sandbox, as it is. The
//! scenarios in `examples/sandbox/` build a cluster for them and include the example files;
//! each runs here to a finished rollout.

use std::{collections::BTreeSet, path::PathBuf};

use patchpilot::sandbox::scenario::Scenario;
use patchpilot_testkit::repo::{self, yaml_files};

use crate::harness::{Outcome, Rules, run_scenario_file};

async fn run(scenario: &str) -> Outcome {
    run_scenario_file(&repo::path("examples/sandbox").join(scenario)).await
}

/// The phase of every rollout of the run, by name.
fn phases(outcome: &Outcome) -> Vec<(String, String)> {
    outcome.report["rollouts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap().to_owned(),
                r["phase"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn every_example_is_run_by_a_sandbox_scenario() {
    let examples: BTreeSet<PathBuf> = yaml_files("examples")
        .into_iter()
        .map(|p| p.canonicalize().unwrap())
        .collect();
    let mut included = BTreeSet::new();
    for file in yaml_files("examples/sandbox") {
        let scenario = Scenario::read(&file).unwrap_or_else(|e| panic!("{e}"));
        for include in &scenario.spec.include {
            included.insert(file.parent().unwrap().join(include).canonicalize().unwrap());
        }
    }
    let missing: Vec<_> = examples.difference(&included).collect();
    assert!(
        missing.is_empty(),
        "examples no scenario in examples/sandbox/ includes: {missing:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn the_node_examples_roll_out_over_the_weekend() {
    let outcome = run("node-os.yaml").await;
    outcome.check(&[Rules::new("workers-os", 1).per_pool("pool").windows(
        &[
            ("2026-11-28T00:00:00Z", "2026-11-28T04:00:00Z"),
            ("2026-11-29T00:00:00Z", "2026-11-29T04:00:00Z"),
        ],
        jiff::SignedDuration::from_mins(30),
    )]);
    assert_eq!(
        outcome.phase("workers-os"),
        "Succeeded",
        "{:#}",
        outcome.report
    );
    let counts = outcome.counts("workers-os");
    assert_eq!(
        (counts["updated"].as_u64(), counts["excluded"].as_u64()),
        (Some(6), Some(1)),
        "{counts}"
    );
    let versions = outcome.node_versions("workers-os");
    assert_eq!(
        versions
            .values()
            .filter(|v| v.as_deref() == Some("2026-11-security"))
            .count(),
        6,
        "{versions:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn the_workload_example_rolls_out_with_its_http_check() {
    let outcome = run("workloads.yaml").await;
    outcome.check(&[Rules::new("nginx-base", 2)]);
    assert_eq!(
        outcome.phase("nginx-base"),
        "Succeeded",
        "{:#}",
        outcome.report
    );
    let counts = outcome.counts("nginx-base");
    assert_eq!(counts["updated"], 5, "{counts}");
}

#[tokio::test(start_paused = true)]
async fn the_emergency_example_rolls_out_outside_the_window() {
    let outcome = run("emergency.yaml").await;
    outcome.check(&[Rules::new("workers-os", 1).per_pool("pool")]);
    let phases = phases(&outcome);
    assert!(
        phases.contains(&("workers-os-zero-day".into(), "Succeeded".into())),
        "{phases:?}"
    );
    let zero_day = outcome.object(
        "patchpilot.dev",
        "v1alpha1",
        "patchrollouts",
        "",
        "workers-os-zero-day",
    );
    assert_eq!(
        zero_day["status"]["targets"]["updated"], 6,
        "{:#}",
        zero_day["status"]
    );
}

#[tokio::test(start_paused = true)]
async fn the_built_in_scenario_finishes_its_rollouts() {
    let outcome = run("built-in.yaml").await;
    let phases = phases(&outcome);
    let finished = ["Succeeded", "RolledBack"];
    assert!(
        !phases.is_empty() && phases.iter().all(|(_, p)| finished.contains(&p.as_str())),
        "{phases:?}"
    );
}
