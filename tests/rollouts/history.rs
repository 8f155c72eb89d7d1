//! Issue 14, part 4: the health-check history. A failed target keeps in its failure the
//! observations of its checks up to the failure; a target in progress shows its own.

use serde_json::Value;

use crate::{case::Case, harness::Rules};

/// The results of `check` in a status entry's history, with their status codes.
fn results(entry: &Value, check: &str) -> Vec<String> {
    let checks = entry["health"].as_array().cloned().unwrap_or_default();
    let Some(history) = checks.iter().find(|c| c["check"] == check) else {
        return Vec::new();
    };
    history["observations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| match o["statusCode"].as_u64() {
            Some(code) => format!("{} {code}", o["result"].as_str().unwrap()),
            None => o["result"].as_str().unwrap().to_owned(),
        })
        .collect()
}

/// The canary `web-1` answers its HTTP check until a minute in, then 503 for a minute: it
/// fails during its soak, is rolled back, and its failure shows the check passing, then
/// failing with 503 and why.
#[tokio::test(start_paused = true)]
async fn a_failed_target_keeps_the_observations_that_failed_it() {
    let outcome = Case::new()
        .scenario(
            "
workloads:
  - {namespace: shop, namespaceLabels: {team: shop}, name: web, count: 2, replicas: 2, image: docker.io/library/nginx:1.27.3, service: true}
faults:
  http: [{service: shop/web-1, path: /healthz, status: 503, after: 1m, before: 2m}]
",
        )
        .workload_policy(
            "web",
            r#"
spec:
  health:
    checks:
      - podsReady: {}
      - http: {url: "http://${TARGET_NAME}.${TARGET_NAMESPACE}.svc.cluster.local/healthz"}
"#,
        )
        .run()
        .await;
    outcome.check(&[Rules::new("web", 1)]);
    let rollout = outcome.rollout("web");
    let status = &rollout["status"];
    assert_eq!(status["phase"], "RolledBack", "{status:#}");
    let failure = &status["failures"][0];
    assert_eq!(failure["target"], "Deployment/shop/web-1", "{status:#}");
    assert_eq!(failure["reason"], "Unhealthy", "{status:#}");
    assert_eq!(results(failure, "podsReady"), ["Pass"], "{failure:#}");
    assert_eq!(
        results(failure, "http /healthz"),
        ["Pass 200", "Fail 503"],
        "{failure:#}"
    );
    let failing = &failure["health"][1]["observations"][1];
    assert!(
        failing["reason"]
            .as_str()
            .unwrap()
            .ends_with("/healthz answered 503, expected [200]"),
        "{failing}"
    );
    // Recorded when it changed, at the time of the write that carried it: within the minute
    // the check answered 503.
    let at = failing["time"].as_str().unwrap();
    assert!(
        ("2026-11-28T00:01:00Z".."2026-11-28T00:02:00Z").contains(&at),
        "{at}"
    );
    // While it was rolled back, its entry in progress showed the rollback's own checks:
    // failing until the fault ended, then passing.
    let rollback = outcome
        .operator_writes()
        .filter_map(|e| {
            let entries = e["requestObject"]["status"]["inProgress"].as_array()?;
            entries
                .iter()
                .find(|p| p["action"] == "rollback" && p.get("health").is_some())
                .cloned()
        })
        .last()
        .expect("a rollback in progress with a health history");
    assert_eq!(results(&rollback, "podsReady"), ["Pass"], "{rollback:#}");
    assert_eq!(
        results(&rollback, "http /healthz"),
        ["Fail 503", "Pass 200"],
        "{rollback:#}"
    );
}
