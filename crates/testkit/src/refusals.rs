//! Broken copies of the shipped examples that an API server must refuse, each with a part of
//! the message that names what is wrong: `tests/examples.rs` judges them with the CRDs'
//! schemas as patchpilot checks them, the end-to-end suite (`tests/e2e`) with a real API
//! server.

use serde_json::{Value, json};

/// An object to refuse, and what the refusal must say.
pub struct Refusal {
    /// The example it was made from.
    pub example: &'static str,
    /// The broken object.
    pub object: Value,
    /// A part of the message naming the field or the rule.
    pub expected: &'static str,
}

/// The one object of an example file.
pub fn example(name: &str) -> Value {
    let path = crate::repo::path("examples").join(name);
    let mut objects = patchpilot_schema::manifest::read_objects(&path).unwrap();
    assert_eq!(objects.len(), 1, "{name}");
    objects.remove(0)
}

fn case(example: &'static str, change: impl FnOnce(&mut Value), expected: &'static str) -> Refusal {
    let mut object = self::example(example);
    change(&mut object);
    Refusal {
        example,
        object,
        expected,
    }
}

/// Every broken object the schemas must refuse.
pub fn refusals() -> Vec<Refusal> {
    let window = "maintenance-window.yaml";
    let policy = "node-os-policy.yaml";
    let workloads = "workload-image-policy.yaml";
    vec![
        case(
            window,
            |o| o["spec"]["timeZone"] = json!(""),
            "spec.timeZone",
        ),
        case(
            window,
            |o| o["spec"]["recurrences"][0]["cron"] = json!("0 1 * * *"),
            "exactly one of start or cron",
        ),
        case(
            window,
            |o| o["spec"]["recurrences"][0]["days"] = json!(["Sat", "Caturday"]),
            "Unsupported value: \"Caturday\"",
        ),
        case(
            window,
            |o| o["spec"]["recurrences"][0]["start"] = json!("25:00"),
            "spec.recurrences[0].start",
        ),
        case(
            window,
            |o| o["spec"]["recurrences"][0]["duration"] = json!("4 hours"),
            "spec.recurrences[0].duration",
        ),
        case(
            window,
            |o| o["spec"]["exclusions"][0]["end"] = json!("2026-12-01T00:00:00Z"),
            "end must be after start",
        ),
        case(
            window,
            |o| o["spec"]["recurrences"] = json!([]),
            "spec.recurrences",
        ),
        case(
            policy,
            |o| o["spec"]["targets"]["workloads"] = json!({}),
            "exactly one of nodes or workloads",
        ),
        case(
            policy,
            |o| o["spec"]["strategy"]["maxUnavailable"] = json!("150%"),
            "spec.strategy.maxUnavailable",
        ),
        case(
            policy,
            |o| o["spec"]["strategy"]["failureBudget"] = json!(-1),
            "spec.strategy.failureBudget",
        ),
        case(
            policy,
            |o| o["spec"]["strategy"]["stages"] = json!([{"percent": 50}, {"percent": 25}]),
            "strictly ascending",
        ),
        case(
            policy,
            |o| o["spec"]["strategy"]["stages"] = json!([{"percent": 50}, {"percent": 50}]),
            "strictly ascending",
        ),
        case(
            policy,
            |o| o["spec"]["strategy"]["stages"][0]["percent"] = json!(101),
            "spec.strategy.stages[0].percent",
        ),
        case(
            policy,
            |o| o["spec"]["strategy"]["onFailure"] = json!("Retry"),
            "Unsupported value: \"Retry\"",
        ),
        case(
            policy,
            |o| o["spec"]["strategy"]["canary"]["percent"] = json!(5),
            "canary takes targets or percent",
        ),
        case(
            policy,
            |o| o["spec"]["patch"]["version"] = json!("x".repeat(64)),
            "spec.patch.version: Too long",
        ),
        case(
            policy,
            |o| o["spec"]["patch"]["version"] = json!("-bad-"),
            "spec.patch.version",
        ),
        case(
            policy,
            |o| o["spec"]["patch"]["classification"] = json!("Urgent"),
            "spec.patch.classification",
        ),
        case(
            policy,
            |o| o["spec"]["patch"]["images"] = json!([{"image": "nginx:1.27.4"}]),
            "patch.images goes with targets.workloads",
        ),
        case(
            policy,
            |o| {
                o["spec"]["patch"]
                    .as_object_mut()
                    .unwrap()
                    .remove("updater");
            },
            "targets.nodes needs patch.updater",
        ),
        case(
            policy,
            |o| o["spec"]["health"]["checks"][0] = json!({"nodeReady": {}, "podsReady": {}}),
            "exactly one of nodeReady",
        ),
        case(
            policy,
            |o| o["spec"]["approval"] = json!({"mode": "Manual", "delay": "1h"}),
            "delay goes with mode Automatic",
        ),
        case(
            policy,
            |o| o["spec"]["strategy"]["maxUnavalable"] = json!(1),
            "unknown field \"spec.strategy.maxUnavalable\"",
        ),
        case(
            policy,
            |o| o["metadata"]["name"] = json!("p".repeat(55)),
            "at most 54 characters",
        ),
        case(
            workloads,
            |o| o["spec"]["patch"]["images"][0]["image"] = json!("nginx"),
            "spec.patch.images[0].image",
        ),
        case(
            workloads,
            |o| o["spec"]["drain"] = json!({"timeout": "5m"}),
            "drain goes with targets.nodes",
        ),
        case(
            workloads,
            |o| o["spec"]["health"]["checks"][0] = json!({"nodeReady": {}}),
            "nodeReady goes with targets.nodes",
        ),
        case(
            workloads,
            |o| o["spec"]["targets"]["workloads"]["kinds"] = json!(["CronJob"]),
            "Unsupported value: \"CronJob\"",
        ),
        case(
            workloads,
            |o| o["spec"]["health"]["checks"][1]["http"]["url"] = json!("ftp://x"),
            "spec.health.checks[1].http.url",
        ),
    ]
}
