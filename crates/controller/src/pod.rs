//! What patchpilot reads of a pod, in the shape of `v1` Pod and nothing more.
//!
//! The operator keeps the pods of every target in progress (ten pods each for a hundred
//! nodes on a big cluster). k8s-openapi's `Pod` holds every field of the API inline, set or
//! not: about 2 KiB for the pod, 2 KiB for each container and 3 KiB for each volume before a
//! single string. [`PodFacts`] has the same field names and types for the fields the drain and
//! the health checks read (so they read it as they would read a `Pod`), and reading one from
//! the wire skips the rest unread. The drain reads labels, owners, the mirror-pod annotation,
//! emptyDir volumes, the phase; the health checks read the conditions, the containers' names
//! and images and their statuses (readiness, restarts, why they wait, the last exit).

use std::borrow::Cow;

use k8s_openapi::{
    api::core::v1::{ContainerState, EmptyDirVolumeSource, PodCondition},
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};
use serde::Deserialize;

/// A pod as patchpilot reads it: its metadata, and of its spec and status only what
/// [`PodSpecFacts`] and [`PodStatusFacts`] keep.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct PodFacts {
    /// The metadata, whole as read (watches trim it further: see `podwatch::trim`).
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// The node, the emptyDir volumes and the containers.
    pub spec: Option<PodSpecFacts>,
    /// The phase, the conditions and the containers' statuses.
    pub status: Option<PodStatusFacts>,
}

/// What patchpilot reads of a pod's spec.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodSpecFacts {
    /// The node the pod is bound to.
    pub node_name: Option<String>,
    /// The volumes, each with its emptyDir source when it is one (a drain asks before it
    /// deletes their data).
    pub volumes: Option<Vec<VolumeFacts>>,
    /// The containers' names and images: which revision of a workload the pod runs.
    #[serde(default)]
    pub containers: Vec<ContainerFacts>,
}

/// A volume: its name and, for an emptyDir, its source.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeFacts {
    /// The name.
    #[serde(default)]
    pub name: String,
    /// The emptyDir source, for an emptyDir volume.
    pub empty_dir: Option<EmptyDirVolumeSource>,
}

/// A container: its name and image.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ContainerFacts {
    /// The name.
    #[serde(default)]
    pub name: String,
    /// The image.
    pub image: Option<String>,
}

/// What patchpilot reads of a pod's status.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodStatusFacts {
    /// `Pending`, `Running`, `Succeeded`, `Failed` or `Unknown`.
    pub phase: Option<String>,
    /// The conditions (`PodScheduled`, `Ready`, …).
    pub conditions: Option<Vec<PodCondition>>,
    /// The statuses of the containers.
    pub container_statuses: Option<Vec<ContainerStatusFacts>>,
    /// The statuses of the init containers.
    pub init_container_statuses: Option<Vec<ContainerStatusFacts>>,
}

/// What the health checks read of a container's status.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerStatusFacts {
    /// The container's name.
    #[serde(default)]
    pub name: String,
    /// Whether it passes its readiness probe.
    #[serde(default)]
    pub ready: bool,
    /// How often it restarted.
    #[serde(default)]
    pub restart_count: i32,
    /// Its state now (watches keep only why it waits, if it does).
    pub state: Option<ContainerState>,
    /// Its last termination.
    pub last_state: Option<ContainerState>,
}

impl kube::Resource for PodFacts {
    type DynamicType = ();
    type Scope = kube::core::NamespaceResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        "Pod".into()
    }
    fn group(_: &()) -> Cow<'_, str> {
        "".into()
    }
    fn version(_: &()) -> Cow<'_, str> {
        "v1".into()
    }
    fn plural(_: &()) -> Cow<'_, str> {
        "pods".into()
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::Pod;
    use serde_json::json;

    use super::*;

    /// A pod as the API server sends it reads into the same values as into a `Pod`, for
    /// every field kept; the rest is skipped.
    #[test]
    fn reads_what_a_pod_reads() {
        let wire = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {
                "name": "web-1", "namespace": "shop", "uid": "u-1", "resourceVersion": "7",
                "labels": {"app": "web"},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-5d", "uid": "u-0", "controller": true}],
            },
            "spec": {
                "nodeName": "n1",
                "volumes": [
                    {"name": "scratch", "emptyDir": {"sizeLimit": "1Gi"}},
                    {"name": "config", "configMap": {"name": "web"}},
                ],
                "containers": [{
                    "name": "web", "image": "web:2",
                    "resources": {"requests": {"cpu": "100m"}},
                    "readinessProbe": {"httpGet": {"path": "/", "port": 80}},
                }],
            },
            "status": {
                "phase": "Running",
                "podIP": "10.0.0.1",
                "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2026-12-07T00:00:00Z"}],
                "containerStatuses": [{
                    "name": "web", "ready": false, "restartCount": 3, "image": "web:2", "imageID": "x",
                    "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off"}},
                    "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": "2026-12-07T00:01:00Z"}},
                }],
            },
        });
        let facts: PodFacts = serde_json::from_value(wire.clone()).unwrap();
        let pod: Pod = serde_json::from_value(wire).unwrap();
        assert_eq!(facts.metadata, pod.metadata);
        let (spec, full) = (facts.spec.unwrap(), pod.spec.unwrap());
        assert_eq!(spec.node_name, full.node_name);
        let volumes = spec.volumes.unwrap();
        assert_eq!(volumes.len(), 2);
        assert_eq!(
            volumes[0].empty_dir,
            full.volumes.as_ref().unwrap()[0].empty_dir
        );
        assert_eq!(volumes[1].name, "config");
        assert!(volumes[1].empty_dir.is_none());
        assert_eq!(spec.containers[0].name, full.containers[0].name);
        assert_eq!(spec.containers[0].image, full.containers[0].image);
        let (status, full) = (facts.status.unwrap(), pod.status.unwrap());
        assert_eq!(status.phase, full.phase);
        assert_eq!(status.conditions, full.conditions);
        let (c, f) = (
            &status.container_statuses.unwrap()[0],
            &full.container_statuses.unwrap()[0],
        );
        assert_eq!(
            (&c.name, c.ready, c.restart_count, &c.state, &c.last_state),
            (&f.name, f.ready, f.restart_count, &f.state, &f.last_state)
        );
        assert!(status.init_container_statuses.is_none());
    }

    /// Reading keeps a pod small: the point of the type.
    #[test]
    fn is_smaller_than_a_pod() {
        assert!(size_of::<PodFacts>() * 3 < size_of::<Pod>());
        assert!(
            size_of::<ContainerFacts>() * 20 < size_of::<k8s_openapi::api::core::v1::Container>()
        );
    }
}
