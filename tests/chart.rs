//! The Helm chart, checked without a `helm` binary: metadata and values parse, the pod runs
//! under the restricted Pod Security Standard, and the RBAC rules are well-formed. (The CRDs'
//! identity with `crds/` is checked by the `crds` test.)

use patchpilot_testkit::chart::{chart_file, static_part};
use serde_json::Value;

#[test]
fn chart_metadata_and_values_parse() {
    let chart: Value = serde_yaml_ng::from_str(&chart_file("Chart.yaml")).unwrap();
    assert_eq!(chart["apiVersion"], "v2");
    assert_eq!(chart["name"], "patchpilot");
    let values: Value = serde_yaml_ng::from_str(&chart_file("values.yaml")).unwrap();
    assert_eq!(values["replicas"], 2, "two replicas with leader election");
    assert_eq!(values["leaderElection"]["enabled"], true);
    assert_eq!(values["metrics"]["serviceMonitor"]["enabled"], false);
}

#[test]
fn the_operator_pod_is_restricted() {
    let deployment = static_part(&chart_file("templates/deployment.yaml"));
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    let container = &pod["containers"][0];
    let security = &container["securityContext"];
    assert_eq!(security["allowPrivilegeEscalation"], false);
    assert_eq!(security["readOnlyRootFilesystem"], true);
    assert_eq!(security["runAsNonRoot"], true);
    assert_eq!(security["capabilities"]["drop"], serde_json::json!(["ALL"]));
    assert_eq!(security["seccompProfile"]["type"], "RuntimeDefault");
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
}

#[test]
fn rbac_rules_are_well_formed_and_never_wildcards() {
    let role = static_part(&chart_file("templates/clusterrole.yaml"));
    let rules = role["rules"].as_array().unwrap();
    assert!(!rules.is_empty());
    for rule in rules {
        for field in ["apiGroups", "resources", "verbs"] {
            let items = rule[field]
                .as_array()
                .unwrap_or_else(|| panic!("{field} in {rule}"));
            assert!(
                !items.is_empty() && items.iter().all(|i| i.as_str() != Some("*")),
                "{rule}"
            );
        }
    }
}
