//! Scenario files for the tests, built from a base and small overrides.
//!
//! Every case starts from the same cluster (Saturday 2026-11-28 00:00 UTC, a `general` pool
//! of 4 nodes across two zones, quick timings) and the base policies below; a test states
//! only what differs, as a YAML merge patch (RFC 7386: maps merge, `null` removes, lists
//! replace).

use serde_json::{Value, json};

/// The scenario's start.
pub const START: &str = "2026-11-28T00:00:00Z";

/// A scenario being put together.
pub struct Case {
    spec: Value,
    objects: Vec<Value>,
    acts: Vec<(jiff::SignedDuration, super::harness::Act)>,
}

/// Parses a YAML snippet.
fn yaml(text: &str) -> Value {
    serde_yaml_ng::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// Merges `patch` into `target` (JSON merge patch).
fn merge(target: &mut Value, patch: &Value) {
    if patch.is_null() {
        return;
    }
    match (target.as_object_mut(), patch.as_object()) {
        (Some(target), Some(patch)) => {
            for (key, value) in patch {
                if value.is_null() {
                    target.remove(key);
                } else {
                    merge(target.entry(key.clone()).or_insert(Value::Null), value);
                }
            }
        }
        _ => *target = patch.clone(),
    }
}

impl Case {
    /// The base cluster, with no policies.
    pub fn new() -> Self {
        let spec = yaml(&format!(
            "
start: {START:?}
end: {{after: 4d, rolloutsFinished: true}}
seed: 1
nodes:
  - {{pool: general, count: 4, zones: [zone-a, zone-b]}}
timings: {{podStart: 5s, updater: 2m, reboot: 1m}}
"
        ));
        Case {
            spec,
            objects: Vec::new(),
            acts: Vec::new(),
        }
    }

    /// Changes the Scenario's spec.
    pub fn scenario(mut self, patch: &str) -> Self {
        merge(&mut self.spec, &yaml(patch));
        self
    }

    /// Adds an object.
    pub fn object(mut self, text: &str) -> Self {
        self.objects.push(yaml(text));
        self
    }

    /// Adds the base node policy `name`, changed by `patch`.
    pub fn node_policy(mut self, name: &str, patch: &str) -> Self {
        let mut policy = yaml(
            "
apiVersion: patchpilot.dev/v1alpha1
kind: PatchPolicy
spec:
  targets: {nodes: {selector: {}}}
  patch:
    version: v2
    updater:
      template: {spec: {containers: [{name: upgrade, image: busybox}]}}
  strategy:
    canary: {targets: 1, soak: 10m}
    stages: [{percent: 50, soak: 10m}]
    maxUnavailable: 1
  drain: {timeout: 10m}
  health:
    timeout: 10m
    soak: 2m
    checks: [{nodeReady: {}}, {podsReady: {}}]
  approval: {mode: Automatic}
",
        );
        policy["metadata"] = json!({"name": name});
        merge(&mut policy, &yaml(patch));
        self.objects.push(policy);
        self
    }

    /// Adds the base workload policy `name` (nginx 1.27.3 to 1.27.4 in namespace `shop`),
    /// changed by `patch`.
    pub fn workload_policy(mut self, name: &str, patch: &str) -> Self {
        let mut policy = yaml(
            "
apiVersion: patchpilot.dev/v1alpha1
kind: PatchPolicy
spec:
  targets: {workloads: {namespaceSelector: {matchLabels: {team: shop}}}}
  patch:
    version: nginx-1.27.4
    images: [{image: docker.io/library/nginx:1.27.4}]
  strategy:
    canary: {targets: 1, soak: 5m}
    maxUnavailable: 1
  health:
    timeout: 5m
    soak: 2m
    checks: [{podsReady: {}}]
  approval: {mode: Automatic}
",
        );
        policy["metadata"] = json!({"name": name});
        merge(&mut policy, &yaml(patch));
        self.objects.push(policy);
        self
    }

    /// The scenario file.
    pub fn yaml(&self) -> String {
        let scenario = json!({
            "apiVersion": "sandbox.patchpilot.dev/v1alpha1",
            "kind": "Scenario",
            "metadata": {"name": "test"},
            "spec": self.spec,
        });
        std::iter::once(&scenario)
            .chain(&self.objects)
            .map(|o| serde_json::to_string(o).unwrap())
            .collect::<Vec<_>>()
            .join("\n---\n")
    }

    /// The name of the rollout the policy `policy` makes for its patch.
    pub fn rollout_name(&self, policy: &str) -> String {
        let object = self
            .objects
            .iter()
            .find(|o| o["kind"] == "PatchPolicy" && o["metadata"]["name"] == policy)
            .unwrap_or_else(|| panic!("no policy {policy}"));
        let patch = serde_json::from_value(object["spec"]["patch"].clone()).unwrap();
        patchpilot::controller::rollout::name_for(policy, &patch)
    }

    /// A person does `act` this long after the start (`"5m"`, `"1h30m"`).
    pub fn at(mut self, after: &str, act: super::harness::Act) -> Self {
        let after: jiff::SignedDuration = after.parse().unwrap_or_else(|e| panic!("{after}: {e}"));
        self.acts.push((after, act));
        self
    }

    /// Runs it.
    pub async fn run(&self) -> super::harness::Outcome {
        super::harness::run_scenario_with(&self.yaml(), &self.acts).await
    }
}
