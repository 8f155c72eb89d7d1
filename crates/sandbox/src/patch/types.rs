//! The list rules of the kinds the sandbox serves ([`Builtin`]) and of custom resources
//! ([`Schema`]).
//!
//! The built-in rules are those of the Kubernetes API types: `patchStrategy`/`patchMergeKey`
//! for strategic merge patch, `listType`/`listMapKey` for server-side apply, and
//! `structType`/`mapType` `atomic`. Where the two disagree the type says so: container
//! `ports` merge by `containerPort` in a strategic merge patch but are keyed by
//! `containerPort` and `protocol` in server-side apply; a Job's `status.conditions` merge by
//! `type` in a strategic merge patch but are atomic in server-side apply. Lists not listed
//! here are atomic, as are the lists of unknown kinds.

use serde_json::Value;

use super::{ListKind, TypeInfo};

/// Where a kind keeps its pod template, and which other rules it has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Pod,
    Node,
    Namespace,
    Service,
    /// Deployment, ReplicaSet, StatefulSet, DaemonSet: a pod template at `spec.template`
    /// and a label selector at `spec.selector`.
    Workload,
    Job,
    CronJob,
    PodDisruptionBudget,
    CustomResourceDefinition,
    /// ConfigMap, Event, Lease, ControllerRevision and unknown kinds: `metadata` only.
    Plain,
}

/// The list rules of a built-in kind.
#[derive(Clone, Debug)]
pub(super) struct Builtin {
    kind: Kind,
}

/// A rule for server-side apply and one for strategic merge patch.
type Rules = (ListKind, ListKind);

fn both(kind: ListKind) -> Rules {
    (kind.clone(), kind)
}

fn keyed(keys: &[&str]) -> ListKind {
    ListKind::Map(keys.iter().map(|k| (*k).to_owned()).collect())
}

const CONTAINER_LISTS: [&str; 3] = ["containers", "initContainers", "ephemeralContainers"];

impl Builtin {
    pub(super) fn new(group: &str, kind: &str) -> Builtin {
        let kind = match (group, kind) {
            ("", "Pod") => Kind::Pod,
            ("", "Node") => Kind::Node,
            ("", "Namespace") => Kind::Namespace,
            ("", "Service") => Kind::Service,
            ("apps", "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet") => Kind::Workload,
            ("batch", "Job") => Kind::Job,
            ("batch", "CronJob") => Kind::CronJob,
            ("policy", "PodDisruptionBudget") => Kind::PodDisruptionBudget,
            ("apiextensions.k8s.io", "CustomResourceDefinition") => Kind::CustomResourceDefinition,
            _ => Kind::Plain,
        };
        Builtin { kind }
    }

    /// The path of the kind's pod template, if it has one.
    fn pod_template(&self) -> Option<&'static [&'static str]> {
        match self.kind {
            Kind::Workload | Kind::Job => Some(&["spec", "template"]),
            Kind::CronJob => Some(&["spec", "jobTemplate", "spec", "template"]),
            _ => None,
        }
    }

    /// Where `path` lies: in an `ObjectMeta`, a `PodSpec`, or elsewhere.
    fn locate<'p>(&self, path: &'p [&'p str]) -> Place<'p> {
        if let Some(rest) = path.strip_prefix(&["metadata"]) {
            return Place::Meta(rest);
        }
        if let Some(template) = self.pod_template()
            && let Some(rest) = path.strip_prefix(template)
        {
            if let Some(rest) = rest.strip_prefix(&["metadata"]) {
                return Place::Meta(rest);
            }
            if let Some(rest) = rest.strip_prefix(&["spec"]) {
                return Place::PodSpec(rest);
            }
        }
        if self.kind == Kind::Pod
            && let Some(rest) = path.strip_prefix(&["spec"])
        {
            return Place::PodSpec(rest);
        }
        Place::Other(path)
    }

    fn rules(&self, path: &[&str]) -> Rules {
        match self.locate(path) {
            Place::Meta(rest) => meta_rules(rest),
            Place::PodSpec(rest) => pod_spec_rules(rest),
            Place::Other(path) => self.other_rules(path),
        }
    }

    fn other_rules(&self, path: &[&str]) -> Rules {
        match (self.kind, path) {
            (Kind::Pod, ["status", "podIPs"]) => both(keyed(&["ip"])),
            (Kind::Pod, ["status", "hostIPs"]) => (ListKind::Atomic, keyed(&["ip"])),
            (Kind::Pod, ["status", "resourceClaimStatuses"]) => both(keyed(&["name"])),
            (Kind::Node, ["spec", "podCIDRs"]) => both(ListKind::Set),
            (Kind::Node, ["status", "addresses"]) => both(keyed(&["type"])),
            (Kind::Service, ["spec", "ports"]) => (keyed(&["port", "protocol"]), keyed(&["port"])),
            (Kind::Job, ["status", "conditions"]) => (ListKind::Atomic, keyed(&["type"])),
            (_, ["status", "conditions"]) if self.kind != Kind::Plain => both(keyed(&["type"])),
            _ => both(ListKind::Atomic),
        }
    }
}

enum Place<'p> {
    Meta(&'p [&'p str]),
    PodSpec(&'p [&'p str]),
    Other(&'p [&'p str]),
}

/// `ObjectMeta`: `finalizers` a set, `ownerReferences` keyed by `uid`, the rest atomic
/// (`managedFields` included).
fn meta_rules(path: &[&str]) -> Rules {
    match path {
        ["finalizers"] => both(ListKind::Set),
        ["ownerReferences"] => both(keyed(&["uid"])),
        _ => both(ListKind::Atomic),
    }
}

/// `PodSpec` and the containers in it.
fn pod_spec_rules(path: &[&str]) -> Rules {
    match path {
        [list] if CONTAINER_LISTS.contains(list) => both(keyed(&["name"])),
        [list, rest @ ..] if CONTAINER_LISTS.contains(list) => container_rules(rest),
        ["volumes" | "imagePullSecrets" | "schedulingGates" | "resourceClaims"] => {
            both(keyed(&["name"]))
        }
        ["hostAliases"] => both(keyed(&["ip"])),
        ["topologySpreadConstraints"] => (
            keyed(&["topologyKey", "whenUnsatisfiable"]),
            keyed(&["topologyKey"]),
        ),
        _ => both(ListKind::Atomic),
    }
}

fn container_rules(path: &[&str]) -> Rules {
    match path {
        ["ports"] => (
            keyed(&["containerPort", "protocol"]),
            keyed(&["containerPort"]),
        ),
        ["env"] => both(keyed(&["name"])),
        ["volumeMounts"] => both(keyed(&["mountPath"])),
        ["volumeDevices"] => both(keyed(&["devicePath"])),
        ["resources", "claims"] => (keyed(&["name"]), ListKind::Atomic),
        _ => both(ListKind::Atomic),
    }
}

impl TypeInfo for Builtin {
    fn list(&self, path: &[&str]) -> ListKind {
        self.rules(path).0
    }

    fn strategic_list(&self, path: &[&str]) -> ListKind {
        self.rules(path).1
    }

    fn atomic_map(&self, path: &[&str]) -> bool {
        match self.locate(path) {
            Place::Meta(rest) => rest == ["ownerReferences"],
            Place::PodSpec(rest) => match rest {
                ["nodeSelector" | "imagePullSecrets"] => true,
                [
                    "affinity",
                    "nodeAffinity",
                    "requiredDuringSchedulingIgnoredDuringExecution",
                ] => true,
                [.., "labelSelector" | "namespaceSelector"] => true,
                [list, "env", "valueFrom", reference] => {
                    CONTAINER_LISTS.contains(list)
                        && matches!(
                            *reference,
                            "configMapKeyRef" | "secretKeyRef" | "fieldRef" | "resourceFieldRef"
                        )
                }
                _ => false,
            },
            Place::Other(path) => {
                path == ["spec", "selector"]
                    && matches!(
                        self.kind,
                        Kind::Workload | Kind::Job | Kind::PodDisruptionBudget | Kind::Service
                    )
            }
        }
    }

    fn key_default(&self, path: &[&str], key: &str) -> Option<Value> {
        // Container and service ports default their protocol to TCP.
        (key == "protocol" && path.last() == Some(&"ports")).then(|| Value::from("TCP"))
    }

    fn always_present(&self, path: &[&str]) -> bool {
        // Struct fields that are not pointers in the API types, and the pod spec's
        // `containers`, the one list they always have.
        matches!(
            path.last(),
            Some(
                &("metadata"
                    | "spec"
                    | "status"
                    | "template"
                    | "jobTemplate"
                    | "strategy"
                    | "updateStrategy"
                    | "resources"
                    | "nodeInfo"
                    | "daemonEndpoints"
                    | "containers")
            )
        )
    }
}

/// The list rules of a CRD version's OpenAPI v3 schema.
#[derive(Clone, Debug)]
pub(super) struct Schema {
    root: Value,
}

impl Schema {
    pub(super) fn new(root: Value) -> Schema {
        Schema { root }
    }

    /// The schema of the value at `path`: lists are walked through to their `items`,
    /// maps to their `properties` or `additionalProperties`.
    fn node(&self, path: &[&str]) -> Option<&Value> {
        let mut node = &self.root;
        for name in path {
            node = items(node);
            node = node
                .get("properties")
                .and_then(|p| p.get(*name))
                .or_else(|| node.get("additionalProperties").filter(|a| a.is_object()))?;
        }
        Some(node)
    }
}

/// The schema of a list's items, or `node` itself when it is not a list.
fn items(node: &Value) -> &Value {
    node.get("items").filter(|i| i.is_object()).unwrap_or(node)
}

impl TypeInfo for Schema {
    fn list(&self, path: &[&str]) -> ListKind {
        if let Some(rest) = path.strip_prefix(&["metadata"]) {
            return meta_rules(rest).0;
        }
        let Some(node) = self.node(path) else {
            return ListKind::Atomic;
        };
        match node.get("x-kubernetes-list-type").and_then(Value::as_str) {
            Some("set") => ListKind::Set,
            Some("map") => {
                let keys: Vec<String> = node
                    .get("x-kubernetes-list-map-keys")
                    .and_then(Value::as_array)
                    .map(|keys| {
                        keys.iter()
                            .filter_map(Value::as_str)
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default();
                if keys.is_empty() {
                    ListKind::Atomic
                } else {
                    ListKind::Map(keys)
                }
            }
            _ => ListKind::Atomic,
        }
    }

    fn atomic_map(&self, path: &[&str]) -> bool {
        if let Some(rest) = path.strip_prefix(&["metadata"]) {
            return rest == ["ownerReferences"];
        }
        self.node(path)
            .map(items)
            .and_then(|node| node.get("x-kubernetes-map-type"))
            .and_then(Value::as_str)
            == Some("atomic")
    }

    fn key_default(&self, path: &[&str], key: &str) -> Option<Value> {
        let node = items(self.node(path)?);
        node.get("properties")?.get(key)?.get("default").cloned()
    }
}

#[cfg(test)]
mod tests;
