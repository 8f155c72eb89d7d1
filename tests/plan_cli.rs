//! `patchpilot plan`: the exact JSON of SPEC section 4 for node and workload policies, and
//! bad input refused with exit status 2 and one line.

use patchpilot_testkit::{cli::patchpilot, repo::root};
use serde_json::{Value, json};

fn plan(args: &[&str]) -> (Option<i32>, String, String) {
    let output = patchpilot(&[&["plan"], args].concat());
    (
        output.status.code(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[test]
fn a_node_policy_plans_exclusions_up_to_date_and_waves_zone_by_zone() {
    let (code, out, err) = plan(&[
        "--policy",
        &root("examples/node-os-policy.yaml"),
        "--cluster",
        &root("tests/fixtures/cluster.yaml"),
        "--at",
        "2026-11-22T00:00:00Z",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let expected = json!({
        "policy": "workers-os",
        "version": "2026-11-security",
        "eligible": 8,
        "excluded": [
            {"target": "Node/w-b3", "reason": "excluded by policy selector"},
            {"target": "Node/w-c1", "reason": "SAP HANA, vendor certification pending"}
        ],
        "upToDate": ["Node/w-b2"],
        "waves": [
            {"name": "canary", "targets": ["Node/w-a1"]},
            {"name": "stage-1", "targets": ["Node/w-a2"]},
            {"name": "stage-2", "targets": ["Node/w-a3", "Node/w-b1"]},
            {"name": "full", "targets": ["Node/w-c2", "Node/w-c3", "Node/w-x1", "Node/w-x2"]}
        ]
    });
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap(), expected);
    assert!(!out.contains("notApplicable"), "{out}");
    let keys: Vec<usize> = [
        "\"policy\"",
        "\"version\"",
        "\"eligible\"",
        "\"excluded\"",
        "\"upToDate\"",
        "\"waves\"",
    ]
    .iter()
    .map(|k| out.find(k).unwrap())
    .collect();
    assert!(
        keys.windows(2).all(|w| w[0] < w[1]),
        "keys in the order of SPEC section 4: {out}"
    );
}

#[test]
fn the_version_flag_and_the_instant_change_the_plan() {
    let (_, out, _) = plan(&[
        "--policy",
        &root("examples/node-os-policy.yaml"),
        "--cluster",
        &root("tests/fixtures/cluster.yaml"),
        "--version",
        "2026-12-security",
        "--at",
        "2026-11-19T00:00:00Z",
    ]);
    let plan: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(plan["version"], "2026-12-security");
    assert_eq!(
        plan["upToDate"],
        json!([]),
        "w-b2 carries an older version now"
    );
    let excluded: Vec<&str> = plan["excluded"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["target"].as_str().unwrap())
        .collect();
    assert_eq!(
        excluded,
        ["Node/w-b3", "Node/w-c1", "Node/w-c2"],
        "exclude-until has not passed yet"
    );
    assert_eq!(plan["eligible"], 8);
}

#[test]
fn a_workload_policy_selects_by_namespace_labels_and_kind() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = dir.path().join("cluster.yaml");
    std::fs::write(
        &cluster,
        "
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {team: shop, environment: production}}
---
apiVersion: v1
kind: Namespace
metadata: {name: lab, labels: {team: lab, environment: dev}}
---
apiVersion: v1
kind: List
items:
  - {apiVersion: apps/v1, kind: Deployment, metadata: {name: web, namespace: shop}}
  - {apiVersion: apps/v1, kind: StatefulSet, metadata: {name: cache, namespace: shop}}
  - {apiVersion: apps/v1, kind: DaemonSet, metadata: {name: agent, namespace: shop}}
  - {apiVersion: apps/v1, kind: Deployment, metadata: {name: api, namespace: shop}}
  - {apiVersion: apps/v1, kind: Deployment, metadata: {name: toy, namespace: lab}}
  - {apiVersion: apps/v1, kind: Deployment, metadata: {name: orphan, namespace: nowhere}}
",
    )
    .unwrap();
    let (code, out, err) = plan(&[
        "--policy",
        &root("examples/workload-image-policy.yaml"),
        "--cluster",
        cluster.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{err}");
    let plan: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(plan["eligible"], 3);
    assert_eq!(
        plan["waves"],
        json!([
            {"name": "canary", "targets": ["Deployment/shop/api"]},
            {"name": "stage-2", "targets": ["Deployment/shop/web"]},
            {"name": "full", "targets": ["StatefulSet/shop/cache"]}
        ])
    );
}

#[test]
fn workloads_without_a_patched_image_are_not_applicable() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = dir.path().join("cluster.yaml");
    let workload = |kind: &str, name: &str, containers: &str| {
        format!(
            "  - {{apiVersion: apps/v1, kind: {kind}, metadata: {{name: {name}, namespace: shop}}, \
             spec: {{template: {{spec: {{containers: [{containers}]}}}}}}}}\n"
        )
    };
    let text = [
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop, labels: {team: shop, environment: production}}\n---\napiVersion: v1\nkind: List\nitems:\n".to_owned(),
        workload("Deployment", "frontend", "{name: nginx, image: 'nginx:1.27.3'}"),
        workload("Deployment", "web", "{name: app, image: 'ghcr.io/acme/web:2'}, {name: proxy, image: 'docker.io/library/nginx:1.26'}"),
        workload("StatefulSet", "cache", "{name: redis, image: 'docker.io/library/redis:7.4.1'}"),
        workload("Deployment", "api", "{name: api, image: 'ghcr.io/acme/api:5'}"),
    ]
    .concat();
    std::fs::write(&cluster, text).unwrap();
    let (code, out, err) = plan(&[
        "--policy",
        &root("examples/workload-image-policy.yaml"),
        "--cluster",
        cluster.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{err}");
    let printed: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        printed,
        json!({
            "policy": "nginx-base",
            "version": "nginx-1.27.4",
            "eligible": 2,
            "excluded": [],
            "upToDate": [],
            "notApplicable": ["Deployment/shop/api", "StatefulSet/shop/cache"],
            "waves": [
                {"name": "canary", "targets": ["Deployment/shop/frontend"]},
                {"name": "full", "targets": ["Deployment/shop/web"]}
            ]
        })
    );
    let (up_to_date, not_applicable, waves) = (
        out.find("\"upToDate\"").unwrap(),
        out.find("\"notApplicable\"").unwrap(),
        out.find("\"waves\"").unwrap(),
    );
    assert!(
        up_to_date < not_applicable && not_applicable < waves,
        "{out}"
    );
    // A malformed container list names the object and the field.
    std::fs::write(
        &cluster,
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: shop}\nspec: {template: {spec: {containers: [{image: nginx}]}}}\n",
    )
    .unwrap();
    let (code, _, err) = plan(&[
        "--policy",
        &root("examples/workload-image-policy.yaml"),
        "--cluster",
        cluster.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("cluster.yaml") && err.contains("spec.template.spec.containers[0]"),
        "{err}"
    );
}

#[test]
fn bad_input_is_one_line_naming_the_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let policy = std::fs::read_to_string(root("examples/workload-image-policy.yaml"))
        .unwrap()
        .replace("operator: Exists", "operator: Exist");
    let policy_file = dir.path().join("policy.yaml");
    std::fs::write(&policy_file, policy).unwrap();
    let (code, _, err) = plan(&[
        "--policy",
        policy_file.to_str().unwrap(),
        "--cluster",
        &root("tests/fixtures/cluster.yaml"),
    ]);
    assert_eq!(code, Some(2));
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("policy.yaml")
            && err.contains("spec.targets.workloads.namespaceSelector.matchExpressions[0]"),
        "{err}"
    );

    let cluster = dir.path().join("cluster.yaml");
    std::fs::write(
        &cluster,
        "apiVersion: v1\nkind: Node\nmetadata: {name: n, labels: [a]}\n",
    )
    .unwrap();
    let (code, _, err) = plan(&[
        "--policy",
        &root("examples/node-os-policy.yaml"),
        "--cluster",
        cluster.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("cluster.yaml") && err.contains("Node/n") && err.contains("metadata.labels"),
        "{err}"
    );
}

#[test]
fn a_policy_with_several_mistakes_gets_them_all_one_a_line() {
    let dir = tempfile::tempdir().unwrap();
    let policy = std::fs::read_to_string(root("examples/workload-image-policy.yaml"))
        .unwrap()
        .replace("docker.io/library/nginx:1.27.4", "docker.io/library/nginx")
        .replace("{percent: 50, soak: 30m}", "{percent: 20, soak: 30m}")
        .replace("    mode: Manual", "    mode: Manual\n    delay: 1h")
        .replace("  health:\n", "  drain: {timeout: 5m}\n  health:\n");
    let policy_file = dir.path().join("policy.yaml");
    std::fs::write(&policy_file, policy).unwrap();
    let (code, _, err) = plan(&[
        "--policy",
        policy_file.to_str().unwrap(),
        "--cluster",
        &root("tests/fixtures/cluster.yaml"),
    ]);
    assert_eq!(code, Some(2), "{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert!(
        lines[0].contains("policy.yaml") && lines[0].contains("4 problems:"),
        "{err}"
    );
    let expected = [
        // The schema's pattern finds this one first; the converter does not say it again.
        "spec.patch.images[0].image: Invalid value: \"docker.io/library/nginx\"",
        "spec.strategy.stages[1].percent: must be greater than the previous stage's 25%",
        "spec.drain: goes with targets.nodes",
        "spec.approval.delay: goes with mode Automatic",
    ];
    assert_eq!(lines.len(), 1 + expected.len(), "{err}");
    for (line, cause) in lines[1..].iter().zip(expected) {
        assert!(line.trim().starts_with(cause), "{cause}\n{err}");
    }
}

/// Issue 16, bounded work: a selector past the schema's 32 requirements is refused with the
/// field, before any target is matched against it.
#[test]
fn a_selector_past_the_schema_limit_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let terms: String = (0..1_000)
        .map(|i| format!("        - {{key: example.com/k{i}, operator: Exists}}\n"))
        .collect();
    let policy = dir.path().join("wide.yaml");
    std::fs::write(
        &policy,
        format!(
            "apiVersion: patchpilot.dev/v1alpha1
kind: PatchPolicy
metadata: {{name: wide}}
spec:
  targets:
    nodes:
      selector:
        matchExpressions:
{terms}  patch:
    version: v2
    updater: {{template: {{spec: {{containers: [{{name: u, image: busybox}}]}}}}}}
"
        ),
    )
    .unwrap();
    let (code, out, err) = plan(&[
        "--policy",
        policy.to_str().unwrap(),
        "--cluster",
        &root("tests/fixtures/cluster.yaml"),
    ]);
    assert_eq!(code, Some(2), "{out}{err}");
    assert_eq!(
        err,
        format!(
            "error: {}: PatchPolicy/wide: spec.targets.nodes.selector.matchExpressions: Too many: 1000: must have at most 32 items\n",
            policy.display()
        )
    );
}
