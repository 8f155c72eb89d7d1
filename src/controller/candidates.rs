//! Kubernetes objects as the engine's candidates: explicit conversions, no I/O.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use patchpilot_engine::{
    plan::Namespaces, policy::WorkloadKind, selector::Labels, target::Candidate,
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

fn labels(meta: &ObjectMeta) -> Labels {
    meta.labels.clone().unwrap_or_default()
}

fn annotations(meta: &ObjectMeta) -> BTreeMap<String, String> {
    meta.annotations.clone().unwrap_or_default()
}

/// A node or workload as a candidate target; `None` for a workload without a namespace or
/// an object without a name.
pub fn candidate(kind: ObjectKind, meta: &ObjectMeta) -> Option<Candidate> {
    let name = meta.name.as_deref()?;
    match kind {
        ObjectKind::Node => Some(Candidate::node(name, labels(meta), annotations(meta))),
        ObjectKind::Workload(kind) => {
            let namespace = meta.namespace.as_deref()?;
            Some(Candidate::workload(
                kind,
                namespace,
                name,
                labels(meta),
                annotations(meta),
            ))
        }
        ObjectKind::Namespace => None,
    }
}

/// Adds a Namespace's labels to `namespaces`.
pub fn add_namespace(namespaces: &mut Namespaces, meta: &ObjectMeta) {
    if let Some(name) = &meta.name {
        namespaces.insert(name.clone(), labels(meta));
    }
}
