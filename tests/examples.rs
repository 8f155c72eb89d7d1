//! Every example validates against the generated CRDs — unknown fields, types, enums,
//! patterns and CEL rules, as an API server would check them — and reads into the Rust types.
//! Broken copies of the examples show that the rules really refuse what they should.

use std::path::{Path, PathBuf};

use patchpilot::{
    api::{self, MaintenanceWindow, PatchPolicy, PatchRollout},
    cli::{decode, read_objects},
    schema::FieldErrors,
};
use serde_json::{Value, json};

#[path = "support/refusals.rs"]
mod refusals;

fn examples() -> Vec<PathBuf> {
    yaml_files("examples")
}

/// The YAML files directly in `dir` (from the repository's root).
fn yaml_files(dir: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

fn example(name: &str) -> (PathBuf, Value) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name);
    let objects = read_objects(&path).unwrap();
    assert_eq!(objects.len(), 1, "{name}");
    (path, objects.into_iter().next().unwrap())
}

#[test]
fn every_example_validates_and_deserializes() {
    let mut seen = std::collections::BTreeMap::<String, usize>::new();
    for file in examples() {
        for object in read_objects(&file).unwrap() {
            let kind = object["kind"].as_str().unwrap().to_owned();
            match kind.as_str() {
                "MaintenanceWindow" => drop(decode::<MaintenanceWindow>(&file, &object).unwrap()),
                "PatchPolicy" => drop(decode::<PatchPolicy>(&file, &object).unwrap()),
                "PatchRollout" => drop(decode::<PatchRollout>(&file, &object).unwrap()),
                "Scenario" => panic!(
                    "{}: a sandbox scenario; keep them in examples/sandbox/, apart from the \
                     objects a cluster accepts",
                    file.display()
                ),
                other
                    if object["apiVersion"]
                        .as_str()
                        .unwrap()
                        .contains("patchpilot.dev") =>
                {
                    panic!("{}: no check for kind {other}", file.display())
                }
                _ => continue,
            }
            *seen.entry(kind).or_default() += 1;
        }
    }
    for kind in ["MaintenanceWindow", "PatchPolicy", "PatchRollout"] {
        assert!(
            seen.get(kind).copied().unwrap_or(0) >= 1,
            "no example of {kind}: {seen:?}"
        );
    }
}

#[test]
fn the_examples_hold_what_they_promise() {
    let (file, object) = example("node-os-policy.yaml");
    let policy: PatchPolicy = decode(&file, &object).unwrap();
    assert!(policy.spec.targets.nodes.is_some());
    assert!(policy.spec.patch.updater.as_ref().unwrap().expect_reboot);
    assert_eq!(policy.spec.strategy.stages.len(), 2);
    let (file, object) = example("workload-image-policy.yaml");
    let policy: PatchPolicy = decode(&file, &object).unwrap();
    assert!(policy.spec.targets.workloads.is_some());
    assert_eq!(policy.spec.strategy.canary.unwrap().targets, Some(1));
    let (file, object) = example("emergency-rollout.yaml");
    let rollout: PatchRollout = decode(&file, &object).unwrap();
    assert!(rollout.spec.patch.emergency && rollout.spec.approved);
    let (file, object) = example("maintenance-window.yaml");
    let window: MaintenanceWindow = decode(&file, &object).unwrap();
    assert_eq!(window.spec.time_zone, "Europe/Berlin");
    assert_eq!(window.spec.exclusions.len(), 1);
}

/// The API server's verdict on a broken object: its errors, or nothing.
fn verdict(object: &Value) -> String {
    let kind = object["kind"].as_str().unwrap().to_owned();
    let admission = api::schema(&kind).unwrap().admit(object, None);
    FieldErrors(admission.strict_errors()).to_string()
}

#[test]
fn the_schema_refuses_what_a_schema_can_refuse() {
    for refusal in refusals::refusals() {
        let message = verdict(&refusal.object);
        assert!(
            message.contains(refusal.expected),
            "{}: expected {:?} in: {message}",
            refusal.example,
            refusal.expected
        );
    }
}

#[test]
fn rollout_transition_rules_hold_on_update() {
    let (_, old) = example("emergency-rollout.yaml");
    let schema = api::schema("PatchRollout").unwrap();
    let update = |change: &dyn Fn(&mut Value)| {
        let mut new = old.clone();
        change(&mut new);
        FieldErrors(schema.admit(&new, Some(&old)).errors).to_string()
    };
    assert_eq!(update(&|o| o["spec"]["paused"] = json!(true)), "");
    assert!(
        update(&|o| o["spec"]["patch"]["version"] = json!("other")).contains("patch cannot change")
    );
    assert!(update(&|o| o["spec"]["policy"] = json!("other")).contains("policy cannot change"));
    let mut aborted = old.clone();
    aborted["spec"]["abort"] = json!(true);
    aborted["spec"]["retry"] = json!(2);
    let withdraw = |change: &dyn Fn(&mut Value)| {
        let mut new = aborted.clone();
        change(&mut new);
        FieldErrors(schema.admit(&new, Some(&aborted)).errors).to_string()
    };
    assert!(withdraw(&|o| o["spec"]["abort"] = json!(false)).contains("abort cannot be withdrawn"));
    assert!(withdraw(&|o| o["spec"]["retry"] = json!(1)).contains("retry can only increase"));
    assert_eq!(withdraw(&|o| o["spec"]["retry"] = json!(3)), "");
}

#[test]
fn every_example_is_listed_in_the_examples_readme() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/README.md"))
            .unwrap();
    for (dir, prefix) in [("examples", ""), ("examples/sandbox", "sandbox/")] {
        for file in yaml_files(dir) {
            let name = format!("`{prefix}{}`", file.file_name().unwrap().to_string_lossy());
            assert!(
                readme.contains(&name),
                "examples/README.md does not list {name}"
            );
        }
    }
}

#[test]
fn every_sandbox_scenario_reads_and_its_objects_validate() {
    let files = yaml_files("examples/sandbox");
    assert!(files.len() >= 2, "{files:?}");
    for file in files {
        let scenario =
            patchpilot::sandbox::scenario::Scenario::read(&file).unwrap_or_else(|e| panic!("{e}"));
        for object in &scenario.objects {
            match object["kind"].as_str().unwrap() {
                "MaintenanceWindow" => drop(decode::<MaintenanceWindow>(&file, object).unwrap()),
                "PatchPolicy" => drop(decode::<PatchPolicy>(&file, object).unwrap()),
                "PatchRollout" => drop(decode::<PatchRollout>(&file, object).unwrap()),
                _ => {}
            }
        }
    }
}
