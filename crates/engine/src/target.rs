//! Targets: the nodes and workloads a policy patches, as the engine sees them.

use std::{collections::BTreeMap, fmt, sync::Arc};

use crate::{image::ContainerImage, policy::WorkloadKind, selector::Labels};

/// What kind of object a target is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TargetKind {
    /// A node.
    Node,
    /// A workload of the given kind.
    Workload(WorkloadKind),
}

impl TargetKind {
    /// The Kubernetes kind, as written in target names.
    pub const fn as_str(self) -> &'static str {
        match self {
            TargetKind::Node => "Node",
            TargetKind::Workload(kind) => kind.as_str(),
        }
    }
}

/// A target's name: `Node/<name>`, `Deployment/<namespace>/<name>`,
/// `StatefulSet/<namespace>/<name>` or `DaemonSet/<namespace>/<name>`.
///
/// Ordered by the bytes of that name, as rollouts order their targets.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TargetId(String);

impl TargetId {
    /// The target name of a node.
    pub fn node(name: &str) -> Self {
        TargetId(format!("Node/{name}"))
    }

    /// The target name of a workload.
    pub fn workload(kind: WorkloadKind, namespace: &str, name: &str) -> Self {
        TargetId(format!("{}/{namespace}/{name}", kind.as_str()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Reads a target name back, if it has one of the four forms.
    pub fn parse(text: &str) -> Option<(TargetKind, Option<&str>, &str)> {
        let (kind, rest) = text.split_once('/')?;
        let kind = match kind {
            "Node" => {
                return (!rest.is_empty() && !rest.contains('/')).then_some((
                    TargetKind::Node,
                    None,
                    rest,
                ));
            }
            "Deployment" => WorkloadKind::Deployment,
            "StatefulSet" => WorkloadKind::StatefulSet,
            "DaemonSet" => WorkloadKind::DaemonSet,
            _ => return None,
        };
        let (namespace, name) = rest.split_once('/')?;
        let valid = !namespace.is_empty() && !name.is_empty() && !name.contains('/');
        valid.then_some((TargetKind::Workload(kind), Some(namespace), name))
    }
}

impl fmt::Display for TargetId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An object a policy may select, as far as selection and ordering need to know it: its
/// identity, labels and annotations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// The target name.
    pub id: TargetId,
    /// Its kind.
    pub kind: TargetKind,
    /// Its namespace (workloads only).
    pub namespace: Option<String>,
    /// Its labels. Shared: a cache can hand the same labels to every reconcile.
    pub labels: Arc<Labels>,
    /// Its annotations (patchpilot reads only its own). Shared like the labels.
    pub annotations: Arc<BTreeMap<String, String>>,
    /// A workload's containers and their images, when known: an image patch that replaces
    /// none of them does not apply to the workload. `None` for nodes, and for workloads
    /// whose containers were not read (then every image patch is taken to apply).
    pub images: Option<Arc<[ContainerImage]>>,
}

impl Candidate {
    /// A node.
    pub fn node(
        name: &str,
        labels: impl Into<Arc<Labels>>,
        annotations: impl Into<Arc<BTreeMap<String, String>>>,
    ) -> Self {
        Candidate {
            id: TargetId::node(name),
            kind: TargetKind::Node,
            namespace: None,
            labels: labels.into(),
            annotations: annotations.into(),
            images: None,
        }
    }

    /// A workload.
    pub fn workload(
        kind: WorkloadKind,
        namespace: &str,
        name: &str,
        labels: impl Into<Arc<Labels>>,
        annotations: impl Into<Arc<BTreeMap<String, String>>>,
    ) -> Self {
        Candidate {
            id: TargetId::workload(kind, namespace, name),
            kind: TargetKind::Workload(kind),
            namespace: Some(namespace.to_owned()),
            labels: labels.into(),
            annotations: annotations.into(),
            images: None,
        }
    }

    /// The same workload with its containers' images known.
    pub fn with_images(mut self, images: impl Into<Arc<[ContainerImage]>>) -> Self {
        self.images = Some(images.into());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_have_the_four_forms_and_read_back() {
        assert_eq!(TargetId::node("a").as_str(), "Node/a");
        let web = TargetId::workload(WorkloadKind::StatefulSet, "shop", "db");
        assert_eq!(web.as_str(), "StatefulSet/shop/db");
        assert_eq!(
            TargetId::parse("Node/a"),
            Some((TargetKind::Node, None, "a"))
        );
        assert_eq!(
            TargetId::parse("DaemonSet/kube-system/agent"),
            Some((
                TargetKind::Workload(WorkloadKind::DaemonSet),
                Some("kube-system"),
                "agent"
            ))
        );
        for bad in [
            "Node/",
            "Node/a/b",
            "Pod/x/y",
            "Deployment/x",
            "Deployment//y",
            "x",
        ] {
            assert_eq!(TargetId::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn names_order_by_bytes() {
        let mut ids = [
            TargetId::workload(WorkloadKind::StatefulSet, "a", "a"),
            TargetId::node("b"),
            TargetId::workload(WorkloadKind::Deployment, "z", "a"),
            TargetId::workload(WorkloadKind::DaemonSet, "z", "a"),
            TargetId::node("B"),
        ];
        ids.sort();
        let names: Vec<&str> = ids.iter().map(TargetId::as_str).collect();
        assert_eq!(
            names,
            [
                "DaemonSet/z/a",
                "Deployment/z/a",
                "Node/B",
                "Node/b",
                "StatefulSet/a/a"
            ]
        );
    }
}
