//! Kubernetes objects as the engine's candidates: explicit conversions, no I/O.

use std::{borrow::Cow, collections::BTreeMap, marker::PhantomData, sync::Arc};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use patchpilot_engine::{
    image::ContainerImage,
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
/// namespace and resource version, the labels, patchpilot's own annotations and, for
/// workloads, the name and image of each container (an image patch that replaces none of
/// them does not apply to the workload); nothing else. On a big cluster this is most of the
/// operator's memory, so it is what the caches watch: requests for nodes and namespaces are
/// metadata-only (`PartialObjectMetadata`), workloads are read whole for their containers,
/// and reading a response skips the rest (other annotations such as
/// `last-applied-configuration`, managed fields, owner references, the rest of the pod
/// template, the status) without keeping it even for a moment. The labels, annotations and
/// images are shared: a candidate built from them on every reconcile costs reference
/// counts, not copies.
pub struct TargetMeta<K> {
    metadata: ObjectMeta,
    /// The labels.
    pub labels: Arc<Labels>,
    /// patchpilot's annotations ([`keys::is_ours`]).
    pub annotations: Arc<BTreeMap<String, String>>,
    /// A workload's containers and their images; `None` for other kinds, or when the
    /// object was read without its spec.
    pub images: Option<Arc<[ContainerImage]>>,
    kind: PhantomData<fn() -> K>,
}

impl<K> TargetMeta<K> {
    /// Keeps what patchpilot reads of `meta`: name, namespace, UID, resource version, labels
    /// and its own annotations.
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
            meta.uid,
            meta.resource_version,
            meta.labels.map(Labels::from).unwrap_or_default(),
            annotations,
        )
    }

    fn new(
        name: Option<String>,
        namespace: Option<String>,
        uid: Option<String>,
        resource_version: Option<String>,
        labels: Labels,
        annotations: BTreeMap<String, String>,
    ) -> Self {
        TargetMeta {
            metadata: ObjectMeta {
                name,
                namespace,
                // Events about the target name it by its UID.
                uid,
                resource_version,
                ..Default::default()
            },
            labels: Arc::new(labels),
            annotations: Arc::new(annotations),
            images: None,
            kind: PhantomData,
        }
    }

    /// The same object with its containers' images known.
    pub fn with_images(mut self, images: Vec<ContainerImage>) -> Self {
        self.images = Some(images.into());
        self
    }

    /// The name.
    pub fn name(&self) -> Option<&str> {
        self.metadata.name.as_deref()
    }

    /// The namespace, for namespaced kinds.
    pub fn namespace(&self) -> Option<&str> {
        self.metadata.namespace.as_deref()
    }

    /// The UID.
    pub fn uid(&self) -> Option<&str> {
        self.metadata.uid.as_deref()
    }
}

impl<K> Clone for TargetMeta<K> {
    fn clone(&self) -> Self {
        TargetMeta {
            metadata: self.metadata.clone(),
            labels: self.labels.clone(),
            annotations: self.annotations.clone(),
            images: self.images.clone(),
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
            .field("images", &self.images)
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
    /// Requests for nodes and namespaces are metadata-only; workloads (group `apps`) are
    /// read whole, for their containers' images.
    fn metadata_api() -> bool {
        K::group(&()) != "apps"
    }
}

/// Read from a `PartialObjectMetadata` (or a whole object), keeping what
/// [`TargetMeta::of`] keeps, and the containers of a pod template (`spec.template`) when
/// there is one; the rest is skipped unread.
impl<'de, K> serde::Deserialize<'de> for TargetMeta<K> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        struct Wire {
            #[serde(default)]
            metadata: WireMeta,
            #[serde(default)]
            spec: Option<WorkloadSpec>,
        }
        #[derive(serde::Deserialize, Default)]
        #[serde(rename_all = "camelCase")]
        struct WireMeta {
            name: Option<String>,
            namespace: Option<String>,
            uid: Option<String>,
            resource_version: Option<String>,
            labels: Option<Labels>,
            annotations: Option<Ours>,
        }
        let wire = Wire::deserialize(deserializer)?;
        let meta = wire.metadata;
        let kept = TargetMeta::new(
            meta.name,
            meta.namespace,
            meta.uid,
            meta.resource_version,
            meta.labels.unwrap_or_default(),
            meta.annotations.map(|a| a.0).unwrap_or_default(),
        );
        Ok(match wire.spec.and_then(WorkloadSpec::images) {
            Some(images) => kept.with_images(images),
            None => kept,
        })
    }
}

/// What patchpilot reads of a workload's spec: the containers of its pod template.
#[derive(serde::Deserialize)]
struct WorkloadSpec {
    template: Option<WireTemplate>,
}

#[derive(serde::Deserialize)]
struct WireTemplate {
    spec: Option<WirePodSpec>,
}

#[derive(serde::Deserialize)]
struct WirePodSpec {
    #[serde(default)]
    containers: Vec<WireContainer>,
}

#[derive(serde::Deserialize)]
struct WireContainer {
    name: String,
    image: Option<String>,
}

impl WorkloadSpec {
    /// The containers' names and images, when the spec has a pod template.
    fn images(self) -> Option<Vec<ContainerImage>> {
        let pod = self.template?.spec?;
        Some(
            pod.containers
                .into_iter()
                .map(|c| ContainerImage {
                    container: c.name,
                    image: c.image.unwrap_or_default(),
                })
                .collect(),
        )
    }
}

/// The containers of a workload's pod template, from its `spec` (`None` without a
/// template); an error names the field, like `template.spec.containers[0].name`.
pub fn workload_images(spec: &serde_json::Value) -> Result<Option<Vec<ContainerImage>>, String> {
    let spec: WorkloadSpec = serde_path_to_error::deserialize(spec)
        .map_err(|error| format!("{}: {}", error.path(), error.inner()))?;
    Ok(spec.images())
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
        ObjectKind::Workload(kind) => {
            let workload = Candidate::workload(kind, meta.namespace()?, name, labels, annotations);
            Some(match &meta.images {
                Some(images) => workload.with_images(images.clone()),
                None => workload,
            })
        }
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
    fn only_names_uids_labels_and_patchpilot_annotations_are_kept() {
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
        assert_eq!(
            kept.uid(),
            Some("u"),
            "events about the target name it by its UID"
        );
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
        assert!(read.images.is_none());
        assert!(<TargetMeta<Node> as Resource>::metadata_api());
    }

    #[test]
    fn workloads_are_read_whole_and_keep_their_containers_images_only() {
        use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
        assert!(!<TargetMeta<Deployment> as Resource>::metadata_api());
        assert!(!<TargetMeta<StatefulSet> as Resource>::metadata_api());
        let wire = serde_json::json!({
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": {"name": "cache", "namespace": "shop", "labels": {"app": "cache"}},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": "cache"}},
                "template": {
                    "metadata": {"labels": {"app": "cache"}},
                    "spec": {
                        "initContainers": [{"name": "init", "image": "busybox:1.36"}],
                        "containers": [
                            {"name": "redis", "image": "docker.io/library/redis:7.4.1", "args": ["--save", ""]},
                            {"name": "exporter", "image": "oliver006/redis_exporter:v1.62.0"},
                        ],
                    },
                },
            },
            "status": {"replicas": 1},
        });
        let read: TargetMeta<StatefulSet> = serde_json::from_value(wire).unwrap();
        let images: Vec<(&str, &str)> = read
            .images
            .as_deref()
            .unwrap()
            .iter()
            .map(|c| (c.container.as_str(), c.image.as_str()))
            .collect();
        assert_eq!(
            images,
            [
                ("redis", "docker.io/library/redis:7.4.1"),
                ("exporter", "oliver006/redis_exporter:v1.62.0")
            ]
        );
        let candidate = candidate(ObjectKind::Workload(WorkloadKind::StatefulSet), &read).unwrap();
        assert!(Arc::ptr_eq(
            candidate.images.as_ref().unwrap(),
            read.images.as_ref().unwrap()
        ));
        // A bad container list names the field.
        let error = workload_images(
            &serde_json::json!({"template": {"spec": {"containers": [{"image": "x"}]}}}),
        )
        .unwrap_err();
        assert!(error.starts_with("template.spec.containers[0]"), "{error}");
    }
}
