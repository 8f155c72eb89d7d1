//! What the operator did to each target, read from an audit log alone: the sandbox's or a
//! real API server's, so that one rollout run on both can be compared request for request.
//!
//! A request is a target's when its object is the target (the node, the workload), a pod
//! bound to that node (evictions, deletions, reads), or a Job made for it (its
//! `patchpilot.dev/target` annotation). Everything else the operator asked (the rollout's
//! status, Events, leases, lists and watches) is the rollout's overhead, counted by request.

use std::{
    collections::BTreeMap,
    fmt::{self, Display},
};

use jiff::Timestamp;
use serde_json::Value;

use crate::audit::{Audit, target_of, timestamp};

/// Where pods were bound, by `namespace/name`, in time order: a StatefulSet's pod comes back
/// under the same name, maybe on another node.
pub type Bindings = BTreeMap<String, Vec<(Timestamp, String)>>;

/// The node `pod` was bound to at `at`.
fn bound_at<'a>(bindings: &'a Bindings, pod: &str, at: Timestamp) -> Option<&'a str> {
    bindings
        .get(pod)?
        .iter()
        .rev()
        .find(|(when, _)| *when <= at)
        .map(|(_, node)| node.as_str())
}

/// One step of the operator on a target: a run of identical requests in a row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// Verb and resource, with the subresource: `patch nodes`, `create pods/eviction`.
    pub request: String,
    /// What a write on the target itself changed, in words: `lock Applying, cordon`.
    pub detail: String,
    /// How many requests in a row.
    pub count: usize,
    /// Of those, how many the API server refused, by status code.
    pub refused: BTreeMap<u64, usize>,
}

impl Step {
    /// Verb, resource and what it changed, without the counts: what two runs must share.
    pub fn shape(&self) -> String {
        if self.detail.is_empty() {
            self.request.clone()
        } else {
            format!("{} [{}]", self.request, self.detail)
        }
    }

    /// An eviction, or the deletion of a pod the Eviction API does not cover.
    pub fn is_pod_removal(&self) -> bool {
        self.request == "create pods/eviction" || self.request == "delete pods"
    }
}

impl Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.shape())?;
        if self.count > 1 {
            write!(f, " ×{}", self.count)?;
        }
        for (code, count) in &self.refused {
            write!(f, " ({count} refused {code})")?;
        }
        Ok(())
    }
}

/// The operator's requests of a log, by target.
#[derive(Clone, Debug, Default)]
pub struct Traces {
    /// Each target's steps in order, by target (`Node/general-1`, `Deployment/shop/web`).
    pub targets: BTreeMap<String, Vec<Step>>,
    /// The rest, by request (`patch patchrollouts/status`), with its count.
    pub overhead: BTreeMap<String, usize>,
}

impl Traces {
    /// A target's steps without the pod removals, whose number depends on where the
    /// scheduler put the pods: the order of what the operator did to the target itself.
    pub fn shape(&self, target: &str) -> Vec<String> {
        self.targets
            .get(target)
            .into_iter()
            .flatten()
            .filter(|s| !s.is_pod_removal())
            .map(Step::shape)
            .collect()
    }

    /// Pods removed from a target (evictions and deletions that succeeded).
    pub fn pods_removed(&self, target: &str) -> usize {
        self.targets
            .get(target)
            .into_iter()
            .flatten()
            .filter(|s| s.is_pod_removal())
            .map(|s| s.count - s.refused.values().sum::<usize>())
            .sum()
    }

    /// Successful writes on a target: node or workload patches, Jobs, pod removals.
    pub fn writes(&self, target: &str) -> usize {
        self.targets
            .get(target)
            .into_iter()
            .flatten()
            .filter(|s| is_write(s.request.split(' ').next().unwrap_or("")))
            .map(|s| s.count - s.refused.values().sum::<usize>())
            .sum()
    }

    /// Reads of single objects on a target.
    pub fn reads(&self, target: &str) -> usize {
        self.targets
            .get(target)
            .into_iter()
            .flatten()
            .filter(|s| s.request.starts_with("get "))
            .map(|s| s.count)
            .sum()
    }
}

fn is_write(verb: &str) -> bool {
    matches!(
        verb,
        "create" | "update" | "patch" | "delete" | "deletecollection"
    )
}

/// Where each pod was bound, from the scheduler's bindings in a real API server's log. The
/// sandbox's scheduler binds without a request: its tests take the bindings from the pods it
/// kept.
pub fn bindings(log: &[Value]) -> Bindings {
    let mut found = Bindings::new();
    for e in log.iter().filter(|e| {
        e["verb"] == "create"
            && e["objectRef"]["subresource"] == "binding"
            && e["stage"] != "ResponseStarted"
            && e["responseStatus"]["code"]
                .as_u64()
                .is_some_and(|c| c < 300)
    }) {
        let r = &e["objectRef"];
        if let (Some(namespace), Some(name), Some(node)) = (
            r["namespace"].as_str(),
            r["name"].as_str(),
            e["requestObject"]["target"]["name"].as_str(),
        ) {
            found
                .entry(format!("{namespace}/{name}"))
                .or_default()
                .push((timestamp(e), node.to_owned()));
        }
    }
    found
}

/// What a write on a target changed, in words, from its request body.
fn detail(event: &Value) -> String {
    let object = &event["requestObject"];
    let annotations = object["metadata"]["annotations"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let mut words = Vec::new();
    match annotations.get("patchpilot.dev/lock") {
        Some(Value::String(_)) => words.push("lock".to_owned()),
        Some(Value::Null) => words.push("release".to_owned()),
        _ => {}
    }
    for (key, value) in &annotations {
        if !key.starts_with("patch.patchpilot.dev/") {
            continue;
        }
        if key.ends_with(".rollout") {
            let state = value
                .as_str()
                .and_then(|v| serde_json::from_str::<Value>(v).ok())
                .and_then(|r| r["state"].as_str().map(str::to_owned));
            words.push(format!("record {}", state.as_deref().unwrap_or("removed")));
        } else {
            // `patch.patchpilot.dev/<policy>`: the version the target carries.
            words.push(
                if value.is_null() {
                    "unversion"
                } else {
                    "version"
                }
                .to_owned(),
            );
        }
    }
    match object["spec"]["unschedulable"] {
        Value::Bool(true) => words.push("cordon".to_owned()),
        Value::Bool(false) | Value::Null if object["spec"].get("unschedulable").is_some() => {
            words.push("uncordon".to_owned());
        }
        _ => {}
    }
    if object["spec"]["template"]["spec"].is_object() && event["objectRef"]["resource"] != "jobs" {
        words.push("template".to_owned());
    }
    words.join(", ")
}

impl Audit<'_> {
    /// The operator's requests by target, pods attributed with `bindings`. A long-running
    /// request (a watch) that a real API server logs twice, when its response starts and when
    /// it is complete, counts once.
    pub fn traces(&self, bindings: &Bindings) -> Traces {
        let mut traces = Traces::default();
        for event in self
            .operator_requests()
            .filter(|e| e["stage"] != "ResponseStarted")
        {
            let r = &event["objectRef"];
            let verb = event["verb"].as_str().unwrap_or("");
            let resource = r["resource"].as_str().unwrap_or("");
            let request = match r["subresource"].as_str() {
                Some(sub) => format!("{verb} {resource}/{sub}"),
                None => format!("{verb} {resource}"),
            };
            let single = r["name"].is_string();
            let target = match resource {
                // A create's objectRef may not name the object: the Job names its target.
                "jobs" if verb == "create" => {
                    event["requestObject"]["metadata"]["annotations"]["patchpilot.dev/target"]
                        .as_str()
                        .map(str::to_owned)
                }
                _ if !single => None,
                "pods" => bound_at(
                    bindings,
                    &format!(
                        "{}/{}",
                        r["namespace"].as_str().unwrap_or(""),
                        r["name"].as_str().unwrap_or("")
                    ),
                    timestamp(event),
                )
                .map(|node| format!("Node/{node}")),
                _ if r["subresource"].is_null() => target_of(event),
                _ => None,
            };
            let Some(target) = target else {
                *traces.overhead.entry(request).or_default() += 1;
                continue;
            };
            let detail = if is_write(verb)
                && matches!(
                    resource,
                    "nodes" | "deployments" | "statefulsets" | "daemonsets"
                ) {
                detail(event)
            } else {
                String::new()
            };
            let code = event["responseStatus"]["code"].as_u64().unwrap_or(0);
            let steps = traces.targets.entry(target).or_default();
            let step = match steps.last_mut() {
                Some(last) if last.request == request && last.detail == detail => last,
                _ => {
                    steps.push(Step {
                        request,
                        detail,
                        count: 0,
                        refused: BTreeMap::new(),
                    });
                    steps.last_mut().expect("just pushed")
                }
            };
            step.count += 1;
            if !(200..300).contains(&code) {
                *step.refused.entry(code).or_default() += 1;
            }
        }
        traces
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const OPERATOR: &str = "system:serviceaccount:patchpilot-system:patchpilot";

    fn request(verb: &str, object_ref: Value, body: Value, code: u64) -> Value {
        json!({
            "verb": verb,
            "user": {"username": OPERATOR},
            "objectRef": object_ref,
            "requestObject": body,
            "responseStatus": {"code": code},
            "requestReceivedTimestamp": "2026-12-06T00:00:00Z",
        })
    }

    #[test]
    fn requests_go_to_the_target_they_touch_and_runs_collapse() {
        let record = json!({"state": "Applying"}).to_string();
        let log = vec![
            request(
                "get",
                json!({"resource": "nodes", "name": "n1"}),
                Value::Null,
                200,
            ),
            request(
                "patch",
                json!({"resource": "nodes", "name": "n1"}),
                json!({"metadata": {"annotations": {"patchpilot.dev/lock": "r", "patch.patchpilot.dev/os.rollout": record}}, "spec": {"unschedulable": true}}),
                200,
            ),
            request(
                "create",
                json!({"resource": "pods", "subresource": "eviction", "namespace": "shop", "name": "web-1"}),
                Value::Null,
                429,
            ),
            request(
                "create",
                json!({"resource": "pods", "subresource": "eviction", "namespace": "shop", "name": "web-1"}),
                Value::Null,
                201,
            ),
            request(
                "create",
                json!({"resource": "jobs", "namespace": "ops"}),
                json!({"metadata": {"annotations": {"patchpilot.dev/target": "Node/n1"}}}),
                201,
            ),
            request(
                "patch",
                json!({"resource": "patchrollouts", "subresource": "status", "name": "r"}),
                Value::Null,
                200,
            ),
            request(
                "patch",
                json!({"resource": "nodes", "name": "n1"}),
                json!({"metadata": {"annotations": {"patchpilot.dev/lock": null}}, "spec": {"unschedulable": null}}),
                200,
            ),
            request(
                "create",
                json!({"resource": "pods", "subresource": "eviction", "namespace": "shop", "name": "unbound"}),
                Value::Null,
                201,
            ),
        ];
        let bound: Timestamp = "2026-12-05T00:00:00Z".parse().unwrap();
        let bindings = Bindings::from([("shop/web-1".to_owned(), vec![(bound, "n1".to_owned())])]);
        let audit = Audit {
            log: &log,
            state: &crate::audit::NoObjects,
            operator: "patchpilot",
        };
        let traces = audit.traces(&bindings);
        let steps: Vec<String> = traces.targets["Node/n1"]
            .iter()
            .map(Step::to_string)
            .collect();
        assert_eq!(
            steps,
            [
                "get nodes",
                "patch nodes [lock, record Applying, cordon]",
                "create pods/eviction ×2 (1 refused 429)",
                "create jobs",
                "patch nodes [release, uncordon]",
            ]
        );
        assert_eq!(
            traces.shape("Node/n1"),
            [
                "get nodes",
                "patch nodes [lock, record Applying, cordon]",
                "create jobs",
                "patch nodes [release, uncordon]"
            ]
        );
        assert_eq!(
            (
                traces.pods_removed("Node/n1"),
                traces.writes("Node/n1"),
                traces.reads("Node/n1")
            ),
            (1, 4, 1)
        );
        assert_eq!(traces.overhead["patch patchrollouts/status"], 1);
        assert_eq!(
            traces.overhead["create pods/eviction"], 1,
            "an unbound pod is overhead"
        );
    }

    #[test]
    fn bindings_come_from_the_schedulers_successful_binding_requests() {
        let log = vec![
            request(
                "create",
                json!({"resource": "pods", "subresource": "binding", "namespace": "shop", "name": "web-1"}),
                json!({"target": {"name": "n1"}}),
                201,
            ),
            request(
                "create",
                json!({"resource": "pods", "subresource": "binding", "namespace": "shop", "name": "web-2"}),
                json!({"target": {"name": "n2"}}),
                409,
            ),
        ];
        let at: Timestamp = "2026-12-06T00:00:00Z".parse().unwrap();
        assert_eq!(
            bindings(&log),
            Bindings::from([("shop/web-1".to_owned(), vec![(at, "n1".to_owned())])])
        );
    }
}
