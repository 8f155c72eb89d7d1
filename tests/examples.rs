//! Every example validates against the generated CRDs — unknown fields, types, enums,
//! patterns and CEL rules, as an API server would check them — and reads into the Rust types.
//! Broken copies of the examples show that the rules really refuse what they should.

use std::path::{Path, PathBuf};

use patchpilot::{
    api::{MaintenanceWindow, PatchPolicy, PatchRollout},
    cli::{self, decode, read_objects},
    schema::FieldErrors,
};
use serde_json::{Value, json};

use patchpilot_testkit::{refusals, repo::yaml_files};

fn examples() -> Vec<PathBuf> {
    yaml_files("examples")
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
    let admission = cli::schema(&kind).unwrap().admit(object, None);
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
    let schema = cli::schema("PatchRollout").unwrap();
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

/// The copy of an example with `change` made, admitted as the API server would: the errors,
/// one string (empty when admitted).
fn admitted(name: &str, change: impl FnOnce(&mut Value)) -> String {
    let (_, mut object) = example(name);
    change(&mut object);
    let kind = object["kind"].as_str().unwrap().to_owned();
    let admission = cli::schema(&kind).unwrap().admit(&object, None);
    FieldErrors(admission.strict_errors()).to_string()
}

/// Values the operator would only refuse later (`Stalled`, `InvalidSpec`) are refused at
/// admission, naming the field and saying what is allowed; their good neighbours pass.
#[test]
fn admission_refuses_what_the_operator_would_refuse() {
    let window = "maintenance-window.yaml";
    let policy = "node-os-policy.yaml";
    let workloads = "workload-image-policy.yaml";
    let cron = |expression: &'static str| {
        admitted(window, move |o| {
            o["spec"]["recurrences"][1]["cron"] = json!(expression)
        })
    };
    let cases: Vec<(String, &[&str])> = vec![
        (
            admitted(policy, |o| {
                o["spec"]["strategy"]["maxUnavailable"] = json!(0)
            }),
            &[
                "spec.strategy.maxUnavailable: Invalid value",
                "at least 1, or a percent",
            ],
        ),
        (
            admitted(policy, |o| {
                o["spec"]["strategy"]["stages"][0]["percent"] = json!(0)
            }),
            &[
                "spec.strategy.stages[0].percent",
                "greater than or equal to 1",
            ],
        ),
        (
            cron("60 22 * * Tue"),
            &[
                "spec.recurrences[1].cron: Invalid value",
                "the minute field (the 1st) takes * or 0-59",
            ],
        ),
        (
            cron("0 25 * * Tue"),
            &[
                "spec.recurrences[1].cron",
                "the hour field (the 2nd) takes * or 0-23",
            ],
        ),
        (
            cron("0 22 0 * *"),
            &[
                "spec.recurrences[1].cron",
                "day-of-month field (the 3rd) takes * or 1-31",
            ],
        ),
        (
            cron("0 22 * 13 *"),
            &[
                "spec.recurrences[1].cron",
                "month field (the 4th) takes * or 1-12 or JAN-DEC",
            ],
        ),
        (
            cron("0 22 * * Tuesday"),
            &["spec.recurrences[1].cron", "day-of-week field (the 5th)"],
        ),
        (
            cron("*/0 22 * * Tue"),
            &["spec.recurrences[1].cron", "minute field"],
        ),
        (
            cron("0 22 * *"),
            &["spec.recurrences[1].cron", "five fields", "@daily"],
        ),
        (
            cron("@reboot"),
            &["spec.recurrences[1].cron", "five fields", "@hourly"],
        ),
        (
            cron("TZ=UTC 0 22 * * Tue"),
            &["spec.recurrences[1].cron", "no TZ= prefix"],
        ),
        (
            admitted(window, |o| {
                o["spec"]["recurrences"][0]["duration"] = json!("0h0m")
            }),
            &["spec.recurrences[0].duration", "longer than 0s"],
        ),
        (
            admitted(window, |o| o["spec"]["timeZone"] = json!("Europe/Berlin ")),
            &["spec.timeZone", "IANA time zone name"],
        ),
        (
            admitted(
                policy,
                |o| o["spec"]["targets"]["nodes"]["selector"] = json!({"matchExpressions": [{"key": "pool", "operator": "Equals", "values": ["a"]}]}),
            ),
            &[
                "spec.targets.nodes.selector.matchExpressions[0].operator: Unsupported value: \"Equals\"",
                "supported values: \"In\", \"NotIn\", \"Exists\", \"DoesNotExist\"",
            ],
        ),
        (
            admitted(
                policy,
                |o| {
                    o["spec"]["targets"]["exclude"] = json!({"matchExpressions": [{"key": "hold", "operator": "In", "values": []}]})
                },
            ),
            &[
                "spec.targets.exclude.matchExpressions[0]: Invalid value",
                "operators In and NotIn need at least one value",
            ],
        ),
        (
            admitted(workloads, |o| {
                o["spec"]["targets"]["workloads"]["namespaceSelector"]["matchExpressions"][0]["values"] =
                    json!(["x"])
            }),
            &[
                "spec.targets.workloads.namespaceSelector.matchExpressions[0]: Invalid value",
                "operators Exists and DoesNotExist take no values",
            ],
        ),
        (
            admitted(policy, |o| {
                o["spec"]["patch"]["updater"]["template"]["spec"]["containers"] = json!([])
            }),
            &[
                "spec.patch.updater.template.spec.containers",
                "at least 1 items",
            ],
        ),
        (
            admitted(policy, |o| {
                o["spec"]["patch"]["updater"]["template"]
                    .as_object_mut()
                    .unwrap()
                    .remove("spec");
            }),
            &["spec.patch.updater.template.spec: Required value"],
        ),
        (
            admitted(workloads, |o| {
                o["spec"]["health"]["checks"][0] = json!({"job": {"template": {"spec": {}}}})
            }),
            &["spec.health.checks[0].job.template.spec.containers: Required value"],
        ),
    ];
    let missing: Vec<String> = cases
        .iter()
        .flat_map(|(message, expected)| {
            expected
                .iter()
                .filter(|needle| !message.contains(**needle))
                .map(move |needle| format!("expected {needle:?} in: {message:?}"))
        })
        .collect();
    assert!(missing.is_empty(), "{missing:#?}");
    // What the operator accepts still passes.
    for expression in [
        "0 22 * * Tue",
        "*/15 0-5,22,23 1,15 JAN-mar mon-FRI",
        "59 23 31 12 7",
        "0 0 ? * SUN/2",
        "00 07 01 01 0",
        "  0 22 * * Tue ",
        "@yearly",
        "@annually",
        "@monthly",
        "@weekly",
        "@daily",
        "@midnight",
        "@hourly",
    ] {
        assert_eq!(cron(expression), "", "{expression}");
    }
    for (field, value) in [
        ("maxUnavailable", json!(1)),
        ("maxUnavailable", json!("0%")),
        ("maxUnavailable", json!("100%")),
        ("failureBudget", json!(0)),
    ] {
        assert_eq!(
            admitted(policy, |o| o["spec"]["strategy"][field] = value.clone()),
            "",
            "{field}: {value}"
        );
    }
    for zone in [
        "UTC",
        "America/Argentina/Buenos_Aires",
        "Etc/GMT+5",
        "America/Port-au-Prince",
    ] {
        assert_eq!(
            admitted(window, |o| o["spec"]["timeZone"] = json!(zone)),
            "",
            "{zone}"
        );
    }
    // An unknown zone of the right shape is for the operator to judge: it passes admission.
    assert_eq!(
        admitted(window, |o| o["spec"]["timeZone"] = json!("Europe/Berlinn")),
        ""
    );
    assert_eq!(
        admitted(window, |o| o["spec"]["recurrences"][0]["duration"] =
            json!("500ms")),
        ""
    );
}
