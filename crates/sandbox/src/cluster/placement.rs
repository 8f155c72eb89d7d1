//! Whether a pod may run on a node, as the scheduler and the DaemonSet controller judge it:
//! readiness, `spec.unschedulable`, taints and tolerations, `nodeSelector`, required node
//! affinity and the node's pod capacity. Pure functions over JSON.

use std::{cmp::Ordering, sync::LazyLock};

use serde_json::Value;

use super::meta::{self, Fnv32};
use crate::json::{Array, Json, Object};

/// The taint the node lifecycle controller puts on cordoned nodes.
pub(super) const UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";
/// The field of required node affinity.
pub(super) const REQUIRED: &str = "requiredDuringSchedulingIgnoredDuringExecution";
/// The taint of nodes that are not Ready.
pub(super) const NOT_READY: &str = "node.kubernetes.io/not-ready";

/// What a pod asks of its node.
#[derive(Clone, Copy, Debug)]
pub(super) struct Needs<'a> {
    /// `spec.nodeSelector`.
    pub node_selector: Option<Object<'a>>,
    /// `spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution
    /// .nodeSelectorTerms`, if set.
    pub terms: Option<&'a Json>,
    /// `spec.tolerations`.
    pub tolerations: Option<Array<'a>>,
}

/// Why a node does not fit a pod, in the scheduler's words.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) enum Misfit {
    /// The node carries a taint the pod does not tolerate (`key: value`).
    Taint(String),
    /// The node is cordoned.
    Unschedulable,
    /// Node selector or required affinity.
    Affinity,
    /// No room for another pod.
    TooManyPods,
}

impl Misfit {
    /// The reason as the scheduler words it in `PodScheduled` messages.
    pub fn reason(&self) -> String {
        match self {
            Misfit::Taint(taint) => format!("node(s) had untolerated taint {{{taint}}}"),
            Misfit::Unschedulable => "node(s) were unschedulable".to_owned(),
            Misfit::Affinity => "node(s) didn't match Pod's node affinity/selector".to_owned(),
            Misfit::TooManyPods => "Too many pods".to_owned(),
        }
    }
}

impl<'a> Needs<'a> {
    /// What a pod spec asks.
    pub fn of(spec: &'a Json) -> Self {
        let terms = &spec["affinity"]["nodeAffinity"][REQUIRED]["nodeSelectorTerms"];
        Needs {
            node_selector: spec["nodeSelector"].as_object(),
            terms: (!terms.is_null()).then_some(terms),
            tolerations: spec["tolerations"].as_array(),
        }
    }

    /// A hash of what the pod asks: pods with equal needs fit the same nodes.
    pub fn class(&self) -> u32 {
        let mut hash = Fnv32::new();
        for (key, value) in self.node_selector.into_iter().flat_map(Object::iter) {
            hash.write(key.as_bytes());
            hash.write(value.to_string().as_bytes());
        }
        hash.write(b";");
        if let Some(terms) = self.terms {
            hash.write(terms.to_string().as_bytes());
        }
        hash.write(b";");
        for toleration in self.tolerations() {
            hash.write(toleration.to_string().as_bytes());
        }
        hash.finish()
    }

    /// `spec.tolerations`.
    pub fn tolerations(&self) -> impl Iterator<Item = &'a Json> + use<'a> {
        self.tolerations.into_iter().flat_map(Array::iter)
    }

    /// The node names the required affinity restricts the pod to (`matchFields` on
    /// `metadata.name` with `In`, in every term), if it does.
    pub fn node_names(&self) -> Option<Vec<&'a str>> {
        let terms = self.terms?.as_array()?;
        let mut names = Vec::new();
        for term in terms {
            let fields = term["matchFields"].as_array()?;
            let restriction = fields.iter().find(|f| {
                f["key"] == "metadata.name" && f["operator"] == "In" && f["values"].is_array()
            })?;
            names.extend(
                restriction["values"]
                    .as_array()?
                    .iter()
                    .filter_map(Json::as_str),
            );
        }
        Some(names)
    }

    /// Whether the node's labels and name satisfy the node selector and required affinity.
    pub fn matches_node(&self, node: &Json) -> bool {
        let labels = node["metadata"]["labels"].as_object();
        let label = |key: &str| labels.and_then(|l| l.get(key)).and_then(Json::as_str);
        if let Some(selector) = self.node_selector
            && !selector
                .iter()
                .all(|(k, v)| v.as_str().is_some_and(|v| label(k) == Some(v)))
        {
            return false;
        }
        match self.terms {
            None => true,
            Some(terms) => terms.as_array().is_some_and(|terms| {
                terms
                    .iter()
                    .any(|term| term_matches(term, &label, meta::name(node)))
            }),
        }
    }

    /// The first NoSchedule or NoExecute taint of the node the pod does not tolerate
    /// (`effects` narrows the effects considered).
    pub fn untolerated<'n>(&self, node: &'n Json, effects: &[&str]) -> Option<&'n Json> {
        node["spec"]["taints"].as_array()?.iter().find(|taint| {
            let effect = taint["effect"].as_str().unwrap_or("");
            effects.contains(&effect) && !self.tolerations().any(|t| tolerates(t, taint))
        })
    }

    /// Whether the pod fits the node, as the scheduler filters: Ready, schedulable (or the
    /// pod tolerates that), taints tolerated, labels matched, and room for one more pod.
    pub fn fit(&self, node: &Json, load: usize) -> Result<(), Misfit> {
        if !meta::condition_true(node, "Ready") {
            return Err(Misfit::Taint(format!("{NOT_READY}: ")));
        }
        if node["spec"]["unschedulable"] == true
            && !self.tolerations().any(|t| tolerates(t, &CORDON))
        {
            return Err(Misfit::Unschedulable);
        }
        if let Some(taint) = self.untolerated(node, &["NoSchedule", "NoExecute"]) {
            if taint["key"] == UNSCHEDULABLE {
                return Err(Misfit::Unschedulable);
            }
            let key = taint["key"].as_str().unwrap_or("");
            let value = taint["value"].as_str().unwrap_or("");
            return Err(Misfit::Taint(format!("{key}: {value}")));
        }
        if !self.matches_node(node) {
            return Err(Misfit::Affinity);
        }
        if load >= pod_capacity(node) {
            return Err(Misfit::TooManyPods);
        }
        Ok(())
    }
}

/// The taint of a cordoned node, as the scheduler reads `spec.unschedulable`.
pub(super) static CORDON: LazyLock<Json> =
    LazyLock::new(|| Json::from(serde_json::json!({"key": UNSCHEDULABLE, "effect": "NoSchedule"})));

/// Whether a toleration tolerates a taint, as Kubernetes matches them.
pub(super) fn tolerates(toleration: &Json, taint: &Json) -> bool {
    let effect = toleration["effect"].as_str().unwrap_or("");
    if !effect.is_empty() && Some(effect) != taint["effect"].as_str() {
        return false;
    }
    let key = toleration["key"].as_str().unwrap_or("");
    if !key.is_empty() && Some(key) != taint["key"].as_str() {
        return false;
    }
    match toleration["operator"].as_str().unwrap_or("Equal") {
        "Exists" => true,
        "Equal" | "" => {
            toleration["value"].as_str().unwrap_or("") == taint["value"].as_str().unwrap_or("")
        }
        _ => false,
    }
}

/// How many pods the node takes (`status.allocatable.pods`, 110 by default).
pub(super) fn pod_capacity(node: &Json) -> usize {
    let pods = &node["status"]["allocatable"]["pods"];
    pods.as_u64()
        .or_else(|| pods.as_str().and_then(|s| s.parse().ok()))
        .map_or(110, |n| usize::try_from(n).unwrap_or(usize::MAX))
}

/// Whether a node selector term holds: every expression and every field requirement. A term
/// with neither matches nothing.
fn term_matches<'l>(term: &Json, label: &impl Fn(&str) -> Option<&'l str>, name: &str) -> bool {
    let expressions = term["matchExpressions"].as_array();
    let fields = term["matchFields"].as_array();
    if expressions.is_none_or(Array::is_empty) && fields.is_none_or(Array::is_empty) {
        return false;
    }
    expressions
        .into_iter()
        .flat_map(Array::iter)
        .all(|e| requirement_holds(e, e["key"].as_str().and_then(label)))
        && fields
            .into_iter()
            .flat_map(Array::iter)
            .all(|f| f["key"] == "metadata.name" && requirement_holds(f, Some(name)))
}

/// Whether a node selector requirement holds for a label's value (`None`: no such label).
fn requirement_holds(requirement: &Json, value: Option<&str>) -> bool {
    let values: Vec<&str> = requirement["values"]
        .as_array()
        .map(|v| v.iter().filter_map(Json::as_str).collect())
        .unwrap_or_default();
    let number = |s: &str| s.parse::<i64>().ok();
    let compare = |wanted: Ordering| {
        let threshold = values.first().and_then(|s| number(s));
        matches!((value.and_then(number), threshold), (Some(v), Some(t)) if v.cmp(&t) == wanted)
    };
    match requirement["operator"].as_str().unwrap_or("") {
        "In" => value.is_some_and(|v| values.contains(&v)),
        "NotIn" => value.is_none_or(|v| !values.contains(&v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" => compare(Ordering::Greater),
        "Lt" => compare(Ordering::Less),
        _ => false,
    }
}

/// The tolerations the DaemonSet controller gives its pods, besides their template's.
pub(super) fn daemon_tolerations() -> Vec<Value> {
    vec![
        exists(NOT_READY, "NoExecute"),
        exists("node.kubernetes.io/unreachable", "NoExecute"),
        exists("node.kubernetes.io/disk-pressure", "NoSchedule"),
        exists("node.kubernetes.io/memory-pressure", "NoSchedule"),
        exists("node.kubernetes.io/pid-pressure", "NoSchedule"),
        exists(UNSCHEDULABLE, "NoSchedule"),
    ]
}

/// A toleration of every taint with `key` and `effect`.
fn exists(key: &str, effect: &str) -> Value {
    serde_json::json!({"key": key, "operator": "Exists", "effect": effect})
}

/// Whether a DaemonSet pod should run on a node, and whether one already there may stay:
/// labels must match; new pods need every NoSchedule and NoExecute taint tolerated, running
/// ones only the NoExecute ones.
pub(super) fn daemon_fit(needs: &Needs<'_>, node: &Json) -> (bool, bool) {
    if !needs.matches_node(node) {
        return (false, false);
    }
    let run = needs
        .untolerated(node, &["NoSchedule", "NoExecute"])
        .is_none();
    let stay = needs.untolerated(node, &["NoExecute"]).is_none();
    (run, stay)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Test objects as the cluster follows them.
    macro_rules! json {
        ($($t:tt)+) => {
            crate::json::Json::from(serde_json::json!($($t)+))
        };
    }

    fn node(extra: Json) -> Json {
        let extra = extra.to_value();
        let mut node = serde_json::json!({
            "metadata": {"name": "n1", "labels": {"zone": "a", "size": "8"}},
            "spec": {},
            "status": {
                "conditions": [{"type": "Ready", "status": "True"}],
                "allocatable": {"pods": "2"},
            },
        });
        if let (Some(n), Some(extra)) = (node["spec"].as_object_mut(), extra.as_object()) {
            n.extend(extra.clone());
        }
        Json::from(node)
    }

    #[test]
    fn tolerations_match_taints_like_kubernetes() {
        let taint = json!({"key": "k", "value": "v", "effect": "NoSchedule"});
        assert!(tolerates(&json!({"key": "k", "value": "v"}), &taint));
        assert!(tolerates(
            &json!({"key": "k", "operator": "Exists"}),
            &taint
        ));
        assert!(tolerates(&json!({"operator": "Exists"}), &taint));
        assert!(!tolerates(&json!({"key": "k", "value": "w"}), &taint));
        assert!(!tolerates(
            &json!({"key": "k", "operator": "Exists", "effect": "NoExecute"}),
            &taint
        ));
        assert!(!tolerates(
            &json!({"key": "k", "operator": "Bogus"}),
            &taint
        ));
    }

    #[test]
    fn nodes_fit_by_readiness_cordon_taints_labels_and_room() {
        let plain = json!({});
        let needs = Needs::of(&plain);
        assert_eq!(needs.fit(&node(json!({})), 0), Ok(()));
        assert_eq!(needs.fit(&node(json!({})), 2), Err(Misfit::TooManyPods));
        let cordoned = node(json!({
            "unschedulable": true,
            "taints": [{"key": UNSCHEDULABLE, "effect": "NoSchedule"}],
        }));
        assert_eq!(needs.fit(&cordoned, 0), Err(Misfit::Unschedulable));
        let tolerant = json!({"tolerations": [
            {"key": UNSCHEDULABLE, "operator": "Exists", "effect": "NoSchedule"}
        ]});
        assert_eq!(Needs::of(&tolerant).fit(&cordoned, 0), Ok(()));
        let tainted =
            node(json!({"taints": [{"key": "gpu", "value": "yes", "effect": "NoExecute"}]}));
        assert_eq!(
            needs.fit(&tainted, 0),
            Err(Misfit::Taint("gpu: yes".into()))
        );
        let mut down = node(json!({})).to_value();
        down["status"]["conditions"][0]["status"] = serde_json::json!("False");
        let down = Json::from(down);
        assert!(matches!(needs.fit(&down, 0), Err(Misfit::Taint(_))));
    }

    #[test]
    fn selectors_and_required_affinity_pick_nodes() {
        let n = node(json!({}));
        let spec = json!({"nodeSelector": {"zone": "a"}});
        assert!(Needs::of(&spec).matches_node(&n));
        let spec = json!({"nodeSelector": {"zone": "b"}});
        assert!(!Needs::of(&spec).matches_node(&n));
        let affinity = |expressions: Json| {
            let terms = json!({"nodeSelectorTerms": [{"matchExpressions": expressions}]});
            json!({"affinity": {"nodeAffinity": {REQUIRED: terms}}})
        };
        let cases = [
            (
                json!([{"key": "zone", "operator": "In", "values": ["a", "b"]}]),
                true,
            ),
            (
                json!([{"key": "zone", "operator": "NotIn", "values": ["a"]}]),
                false,
            ),
            (json!([{"key": "gpu", "operator": "DoesNotExist"}]), true),
            (json!([{"key": "gpu", "operator": "Exists"}]), false),
            (
                json!([{"key": "size", "operator": "Gt", "values": ["4"]}]),
                true,
            ),
            (
                json!([{"key": "size", "operator": "Lt", "values": ["4"]}]),
                false,
            ),
            (json!([]), false),
        ];
        for (expressions, expected) in cases {
            let spec = affinity(expressions.clone());
            assert_eq!(Needs::of(&spec).matches_node(&n), expected, "{expressions}");
        }
        let terms = json!({"nodeSelectorTerms": [{"matchFields": [
            {"key": "metadata.name", "operator": "In", "values": ["n1"]}
        ]}]});
        let pinned = json!({"affinity": {"nodeAffinity": {REQUIRED: terms}}});
        assert!(Needs::of(&pinned).matches_node(&n));
        assert_eq!(Needs::of(&pinned).node_names(), Some(vec!["n1"]));
        assert_eq!(Needs::of(&spec_without_names()).node_names(), None);
    }

    fn spec_without_names() -> Json {
        json!({"nodeSelector": {"zone": "a"}})
    }

    #[test]
    fn daemon_pods_stay_on_cordoned_nodes_but_not_under_new_no_execute_taints() {
        let spec = json!({"tolerations": daemon_tolerations()});
        let needs = Needs::of(&spec);
        let cordoned = node(json!({
            "unschedulable": true,
            "taints": [{"key": UNSCHEDULABLE, "effect": "NoSchedule"}],
        }));
        assert_eq!(daemon_fit(&needs, &cordoned), (true, true));
        let no_schedule = node(json!({"taints": [{"key": "x", "effect": "NoSchedule"}]}));
        assert_eq!(daemon_fit(&needs, &no_schedule), (false, true));
        let no_execute = node(json!({"taints": [{"key": "x", "effect": "NoExecute"}]}));
        assert_eq!(daemon_fit(&needs, &no_execute), (false, false));
    }
}
