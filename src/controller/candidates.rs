//! Kubernetes objects as the engine's candidates: explicit conversions, no I/O.

use std::{borrow::Cow, collections::BTreeMap, marker::PhantomData, sync::Arc};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use patchpilot_engine::{
    keys,
    plan::Namespaces,
    policy::WorkloadKind,
    selector::Labels,
    target::{Candidate, TargetId, TargetKind},
};

/// The kinds of object patchpilot reads to find targets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectKind {
    /// `v1` Node.
    Node,
    /// `v1` Namespace.
    Namespace,
    /// An `apps/v1` workload.
    Workload(WorkloadKind),
}

impl ObjectKind {
    /// The kind of an object with this `apiVersion` and `kind`, if patchpilot reads it.
    pub fn of(api_version: &str, kind: &str) -> Option<Self> {
        match (api_version, kind) {
            ("v1", "Node") => Some(ObjectKind::Node),
            ("v1", "Namespace") => Some(ObjectKind::Namespace),
            ("apps/v1", "Deployment") => Some(ObjectKind::Workload(WorkloadKind::Deployment)),
            ("apps/v1", "StatefulSet") => Some(ObjectKind::Workload(WorkloadKind::StatefulSet)),
            ("apps/v1", "DaemonSet") => Some(ObjectKind::Workload(WorkloadKind::DaemonSet)),
            _ => None,
        }
    }
}

/// What the operator keeps of every node, namespace and workload it may target: the name,
/// namespace and resource version, the labels, and patchpilot's own annotations, nothing
/// else. On a big cluster this is most of the operator's memory, so it is what the caches
/// watch: requests for it are metadata-only (`PartialObjectMetadata`), and reading a
/// response skips the rest of the metadata (other annotations such as
/// `last-applied-configuration`, managed fields, owner references) without keeping it even
/// for a moment. The labels and annotations are shared: a candidate built from them on every
/// reconcile costs two reference counts, not a copy.
pub struct TargetMeta<K> {
    metadata: ObjectMeta,
    /// The labels.
    pub labels: Arc<Labels>,
    /// patchpilot's annotations ([`keys::is_ours`]).
    pub annotations: Arc<BTreeMap<String, String>>,
    kind: PhantomData<fn() -> K>,
}

impl<K> TargetMeta<K> {
    /// Keeps what patchpilot reads of `meta`.
    pub fn of(meta: ObjectMeta) -> Self {
        let annotations = meta
            .annotations
            .unwrap_or_default()
            .into_iter()
            .filter(|(key, _)| keys::is_ours(key))
            .collect();
        Self::new(
            meta.name,
            meta.namespace,
            meta.resource_version,
            meta.labels.unwrap_or_default(),
            annotations,
        )
    }

    fn new(
        name: Option<String>,
        namespace: Option<String>,
        resource_version: Option<String>,
        labels: Labels,
        annotations: BTreeMap<String, String>,
    ) -> Self {
        TargetMeta {
            metadata: ObjectMeta {
                name,
                namespace,
                resource_version,
                ..Default::default()
            },
            labels: Arc::new(labels),
            annotations: Arc::new(annotations),
            kind: PhantomData,
        }
    }

    /// The name.
    pub fn name(&self) -> Option<&str> {
        self.metadata.name.as_deref()
    }

    /// The namespace, for namespaced kinds.
    pub fn namespace(&self) -> Option<&str> {
        self.metadata.namespace.as_deref()
    }
}

impl<K> Clone for TargetMeta<K> {
    fn clone(&self) -> Self {
        TargetMeta {
            metadata: self.metadata.clone(),
            labels: self.labels.clone(),
            annotations: self.annotations.clone(),
            kind: PhantomData,
        }
    }
}

impl<K> std::fmt::Debug for TargetMeta<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TargetMeta")
            .field("name", &self.metadata.name)
            .field("namespace", &self.metadata.namespace)
            .field("labels", &self.labels)
            .field("annotations", &self.annotations)
            .finish()
    }
}

impl<K: Resource<DynamicType = ()>> Resource for TargetMeta<K> {
    type DynamicType = ();
    type Scope = K::Scope;

    fn kind(dt: &()) -> Cow<'_, str> {
        K::kind(dt)
    }
    fn group(dt: &()) -> Cow<'_, str> {
        K::group(dt)
    }
    fn version(dt: &()) -> Cow<'_, str> {
        K::version(dt)
    }
    fn plural(dt: &()) -> Cow<'_, str> {
        K::plural(dt)
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
    /// Requests for it are metadata-only.
    fn metadata_api() -> bool {
        true
    }
}

/// Read from a `PartialObjectMetadata` (or a whole object), keeping what
/// [`TargetMeta::of`] keeps and skipping the rest unread.
impl<'de, K> serde::Deserialize<'de> for TargetMeta<K> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        struct Wire {
            #[serde(default)]
            metadata: WireMeta,
        }
        #[derive(serde::Deserialize, Default)]
        #[serde(rename_all = "camelCase")]
        struct WireMeta {
            name: Option<String>,
            namespace: Option<String>,
            resource_version: Option<String>,
            labels: Option<Labels>,
            annotations: Option<Ours>,
        }
        let meta = Wire::deserialize(deserializer)?.metadata;
        Ok(TargetMeta::new(
            meta.name,
            meta.namespace,
            meta.resource_version,
            meta.labels.unwrap_or_default(),
            meta.annotations.map(|a| a.0).unwrap_or_default(),
        ))
    }
}

/// Annotations as read: patchpilot's own ([`keys::is_ours`]); the values of the others are
/// skipped unread.
struct Ours(BTreeMap<String, String>);

impl<'de> serde::Deserialize<'de> for Ours {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Ours;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a map of annotations")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Ours, A::Error> {
                let mut ours = BTreeMap::new();
                while let Some(key) = map.next_key::<String>()? {
                    if keys::is_ours(&key) {
                        ours.insert(key, map.next_value()?);
                    } else {
                        map.next_value::<serde::de::IgnoredAny>()?;
                    }
                }
                Ok(Ours(ours))
            }
        }
        deserializer.deserialize_map(Visitor)
    }
}

/// A node or workload as a candidate target; `None` for a workload without a namespace or
/// an object without a name.
pub fn candidate<K>(kind: ObjectKind, meta: &TargetMeta<K>) -> Option<Candidate> {
    let name = meta.name()?;
    let (labels, annotations) = (meta.labels.clone(), meta.annotations.clone());
    match kind {
        ObjectKind::Node => Some(Candidate::node(name, labels, annotations)),
        ObjectKind::Workload(kind) => Some(Candidate::workload(
            kind,
            meta.namespace()?,
            name,
            labels,
            annotations,
        )),
        ObjectKind::Namespace => None,
    }
}

/// The object a target names, as an event's `regarding` or `related` reference.
pub fn object_reference(target: &TargetId) -> Option<k8s_openapi::api::core::v1::ObjectReference> {
    let (kind, namespace, name) = TargetId::parse(target.as_str())?;
    let api_version = match kind {
        TargetKind::Node => "v1",
        TargetKind::Workload(_) => "apps/v1",
    };
    Some(k8s_openapi::api::core::v1::ObjectReference {
        api_version: Some(api_version.to_owned()),
        kind: Some(kind.as_str().to_owned()),
        namespace: namespace.map(str::to_owned),
        name: Some(name.to_owned()),
        ..Default::default()
    })
}

/// Adds a Namespace's labels to `namespaces`.
pub fn add_namespace<K>(namespaces: &mut Namespaces, meta: &TargetMeta<K>) {
    if let Some(name) = meta.name() {
        namespaces.insert(name.to_owned(), Labels::clone(&meta.labels));
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::Node;

    use super::*;

    #[test]
    fn only_names_labels_and_patchpilot_annotations_are_kept() {
        let meta: ObjectMeta = serde_json::from_value(serde_json::json!({
            "name": "n1",
            "uid": "u",
            "resourceVersion": "7",
            "labels": {"pool": "a"},
            "annotations": {
                "patchpilot.dev/exclude": "broken disk",
                "patch.patchpilot.dev/os": "v2",
                "kubectl.kubernetes.io/last-applied-configuration": "{\"big\": true}",
            },
            "managedFields": [{"manager": "kubelet"}],
        }))
        .unwrap();
        let kept = TargetMeta::<Node>::of(meta);
        assert_eq!(kept.name(), Some("n1"));
        assert_eq!(kept.meta().uid, None);
        assert_eq!(kept.meta().managed_fields, None);
        assert_eq!(kept.labels["pool"], "a");
        assert_eq!(
            kept.annotations.keys().collect::<Vec<_>>(),
            ["patch.patchpilot.dev/os", "patchpilot.dev/exclude"]
        );
        let candidate = candidate(ObjectKind::Node, &kept).unwrap();
        assert!(Arc::ptr_eq(&candidate.labels, &kept.labels));
        assert_eq!(candidate.id.as_str(), "Node/n1");
    }

    #[test]
    fn read_from_the_wire_it_keeps_the_same() {
        let wire = serde_json::json!({
            "apiVersion": "meta.k8s.io/v1",
            "kind": "PartialObjectMetadata",
            "metadata": {
                "name": "web",
                "namespace": "shop",
                "uid": "u",
                "resourceVersion": "7",
                "labels": {"app": "web"},
                "annotations": {
                    "patch.patchpilot.dev/apps": "v2",
                    "kubectl.kubernetes.io/last-applied-configuration": "{\"big\": true}",
                    "deployment.kubernetes.io/revision": "3",
                },
                "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}],
            },
        });
        let read: TargetMeta<k8s_openapi::api::apps::v1::Deployment> =
            serde_json::from_value(wire.clone()).unwrap();
        let of = TargetMeta::<k8s_openapi::api::apps::v1::Deployment>::of(
            serde_json::from_value(wire["metadata"].clone()).unwrap(),
        );
        assert_eq!(read.meta(), of.meta());
        assert_eq!(read.meta().resource_version.as_deref(), Some("7"));
        assert_eq!(read.labels, of.labels);
        assert_eq!(read.annotations, of.annotations);
        assert_eq!(read.annotations.len(), 1);
        assert!(<TargetMeta<Node> as Resource>::metadata_api());
    }
}
