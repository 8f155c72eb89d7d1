//! The API as the real API server judges it: the CRDs (CEL cost limits included), the
//! examples, the objects the schema must refuse, an invalid policy that only the operator can
//! refuse, and the chart's RBAC rules against what the operator really asks for.

use std::collections::BTreeSet;

use kube::ResourceExt;
use patchpilot::engine::rollout::Phase;
use serde_json::Value;

use patchpilot_testkit::{refusals::refusals, repo::yaml_files};

use crate::support::{
    Cluster, MANAGER, OPERATOR_USER, kstatus, kubectl, mins, try_run, wait_until,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a cluster: KUBECONFIG=... cargo test --test e2e -- --ignored"]
async fn the_crds_install_and_the_examples_pass_the_real_api_server() {
    let _cluster = Cluster::connect().await;
    let crds = concat!(env!("CARGO_MANIFEST_DIR"), "/crds");
    let (ok, out, err) = try_run(
        "kubectl",
        &[
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager",
            MANAGER,
            "-f",
            crds,
        ],
        None,
    );
    assert!(ok && !err.contains("Warning"), "{out}{err}");
    for file in yaml_files("examples") {
        let path = file.to_string_lossy().into_owned();
        let (ok, out, err) = try_run(
            "kubectl",
            &["apply", "--server-side", "--dry-run=server", "-f", &path],
            None,
        );
        assert!(ok, "{path}: {err}");
        assert!(!err.contains("Warning"), "{path}: {err}{out}");
    }
    // Every broken copy the schema tests refuse, the real API server refuses too, naming the
    // same field or rule.
    let mut disagreements = Vec::new();
    for refusal in refusals() {
        let json = serde_json::to_string(&refusal.object).unwrap();
        let (ok, _, err) = try_run(
            "kubectl",
            &["create", "--dry-run=server", "-f", "-"],
            Some(&json),
        );
        if ok || !err.contains(refusal.expected) {
            disagreements.push(format!(
                "{} expecting {:?}: {}",
                refusal.example,
                refusal.expected,
                if ok { "accepted" } else { err.trim() }
            ));
        }
    }
    assert!(
        disagreements.is_empty(),
        "the real API server disagrees:\n  {}",
        disagreements.join("\n  ")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a cluster: KUBECONFIG=... cargo test --test e2e -- --ignored"]
async fn an_invalid_policy_is_refused_or_stalled_and_the_others_are_served() {
    let mut cluster = Cluster::start().await;
    // Refused by the schema: kubectl's own message names the field.
    let refused = format!(
        r#"{{"apiVersion": "patchpilot.dev/v1alpha1", "kind": "PatchPolicy",
            "metadata": {{"name": "e2e-too-eager-{}"}},
            "spec": {{"targets": {{"nodes": {{}}}},
                      "patch": {{"version": "v1", "updater": {{"template": {{"spec": {{"containers": [{{"name": "u", "image": "busybox"}}]}}}}}}}},
                      "strategy": {{"maxUnavailable": "150%"}}}}}}"#,
        cluster.suffix
    );
    let (ok, _, err) = try_run("kubectl", &["apply", "-f", "-"], Some(&refused));
    assert!(!ok, "accepted");
    assert!(
        err.contains("spec.strategy.maxUnavailable"),
        "kubectl said: {err}"
    );

    // Valid for the schema, invalid for the operator: a time zone only the operator can
    // look up (the schema refuses every value of a policy the operator would refuse). The
    // window is Stalled, InvalidSpec, naming the field; so is the policy that uses it.
    let window = format!("e2e-nowhere-{}", cluster.suffix);
    let stalled = format!("e2e-stalled-{}", cluster.suffix);
    let served = format!("e2e-served-{}", cluster.suffix);
    cluster.forget_at_end("patchpilot.dev/v1alpha1", "maintenancewindows", &window);
    cluster.forget_policy_at_end(&stalled);
    cluster.forget_policy_at_end(&served);
    cluster.apply(&format!(
        r#"
apiVersion: patchpilot.dev/v1alpha1
kind: MaintenanceWindow
metadata: {{name: {window}}}
spec:
  timeZone: Europe/Berlinn
  recurrences: [{{days: [Sat], start: "01:00", duration: 4h}}]
"#
    ));
    let yaml = |name: &str, extra: &str| {
        format!(
            r#"
apiVersion: patchpilot.dev/v1alpha1
kind: PatchPolicy
metadata: {{name: {name}}}
spec:
  targets:
    nodes:
      selector: {{matchLabels: {{pool: gpu}}}}
  patch:
    version: v1
    updater: {{template: {{spec: {{containers: [{{name: u, image: busybox}}]}}}}}}
  approval: {{mode: Manual}}
{extra}"#
        )
    };
    cluster.apply(&yaml(&stalled, &format!("  maintenanceWindow: {window}\n")));
    cluster.apply(&yaml(&served, ""));
    let stalled_condition = |kind: &'static str, name: String| {
        let c = &cluster;
        wait_until("the invalid object Stalled", mins(1), move || {
            let name = name.clone();
            async move {
                let object: Value =
                    serde_json::from_str(&kubectl(&["get", kind, &name, "-o", "json"])).ok()?;
                let _ = c;
                object["status"]["conditions"]
                    .as_array()?
                    .iter()
                    .find(|c| c["type"] == "Stalled" && c["status"] == "True")
                    .cloned()
            }
        })
    };
    for (kind, name) in [("maintenancewindow", &window), ("patchpolicy", &stalled)] {
        let condition = stalled_condition(kind, name.clone()).await;
        assert_eq!(condition["reason"], "InvalidSpec", "{kind}: {condition}");
        assert!(
            condition["message"]
                .as_str()
                .is_some_and(|m| m.contains("spec.timeZone") && m.contains("Europe/Berlinn")),
            "{kind}: {condition}"
        );
    }
    assert_eq!(kstatus(&format!("patchpolicy/{stalled}")).0, "Failed");
    // The other policy is served: its rollout waits for approval.
    let rollout = cluster
        .wait_for_rollout(&served, Phase::AwaitingApproval, mins(1))
        .await;
    assert!(!rollout.name_any().is_empty());
    cluster.finish(&[]).await;
}

/// The chart's rules, as (apiGroup, resource, verb).
fn chart_rules() -> BTreeSet<(String, String, String)> {
    let chart = concat!(env!("CARGO_MANIFEST_DIR"), "/charts/patchpilot");
    let (ok, manifests, err) = try_run(
        "helm",
        &[
            "template",
            "patchpilot",
            chart,
            "--namespace",
            "patchpilot-system",
        ],
        None,
    );
    assert!(ok, "{err}");
    let mut rules = BTreeSet::new();
    for document in serde_yaml_ng::Deserializer::from_str(&manifests) {
        let Ok(object) = <Value as serde::Deserialize>::deserialize(document) else {
            continue;
        };
        if !matches!(object["kind"].as_str(), Some("ClusterRole" | "Role")) {
            continue;
        }
        for rule in object["rules"].as_array().into_iter().flatten() {
            for group in rule["apiGroups"].as_array().into_iter().flatten() {
                for resource in rule["resources"].as_array().into_iter().flatten() {
                    for verb in rule["verbs"].as_array().into_iter().flatten() {
                        rules.insert((
                            group.as_str().unwrap_or("").to_owned(),
                            resource.as_str().unwrap_or("").to_owned(),
                            verb.as_str().unwrap_or("").to_owned(),
                        ));
                    }
                }
            }
        }
    }
    rules
}

/// After the rest of the suite (run it on its own, last: `.ci/run` does): every rule of the
/// chart was used by the operator during the suite, as the whole audit log shows, and the
/// operator used nothing else. A rule missing from the chart fails the other tests already:
/// the API server answers the operator 403, which `check_audit` refuses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a cluster: KUBECONFIG=... cargo test --test e2e -- --ignored"]
async fn every_rule_of_the_chart_is_used_by_the_suite() {
    let Some(path) = crate::support::audit_log_path() else {
        eprintln!("no audit log: skipped");
        return;
    };
    let text = std::fs::read_to_string(&path).expect("the audit log");
    let mut used = BTreeSet::new();
    for line in text.lines() {
        let Ok(event) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        if event["user"]["username"] != OPERATOR_USER {
            continue;
        }
        let object = &event["objectRef"];
        let mut resource = object["resource"].as_str().unwrap_or("").to_owned();
        if let Some(sub) = object["subresource"].as_str() {
            resource = format!("{resource}/{sub}");
        }
        used.insert((
            object["apiGroup"].as_str().unwrap_or("").to_owned(),
            resource,
            event["verb"].as_str().unwrap_or("").to_owned(),
        ));
    }
    assert!(
        !used.is_empty(),
        "no request of {OPERATOR_USER} in {}",
        path.display()
    );
    let granted = chart_rules();
    // Rules for paths this suite does not take, each with the reason it is granted; any
    // other rule the suite does not use fails the test.
    let untested: BTreeSet<(String, String, String)> = [
        // `--no-streaming-lists`: pods are listed, then watched (the default streams them).
        ("", "pods", "list"),
        // StatefulSet and DaemonSet targets: read before the lock, patched for it.
        ("apps", "statefulsets", "get"),
        ("apps", "statefulsets", "patch"),
        ("apps", "daemonsets", "get"),
        ("apps", "daemonsets", "patch"),
        // historyLimit: finished rollouts beyond it are deleted.
        ("patchpilot.dev", "patchrollouts", "delete"),
        // An orphaned lock: its rollout is read to confirm it is gone.
        ("patchpilot.dev", "patchrollouts", "get"),
    ]
    .into_iter()
    .map(|(g, r, v)| (g.to_owned(), r.to_owned(), v.to_owned()))
    .collect();
    let unused: Vec<_> = granted
        .difference(&used)
        .filter(|rule| !untested.contains(*rule))
        .collect();
    let ungranted: Vec<_> = used.difference(&granted).collect();
    eprintln!("used: {used:#?}");
    assert!(ungranted.is_empty(), "used but not granted: {ungranted:?}");
    assert!(unused.is_empty(), "granted but never used: {unused:?}");
}
