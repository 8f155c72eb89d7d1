//! The patch itself: what a policy wants applied, copied into each rollout.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::KubeSchema;
use patchpilot_engine::{policy::Classification, units::Duration};
use serde::{Deserialize, Serialize};

use super::common::PodTemplate;

/// The desired patch. A new `version` starts a new rollout.
#[derive(KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[x_kube(validation = Rule::new("!(has(self.updater) && has(self.images))").message("a patch has either updater (nodes) or images (workloads), not both"))]
#[serde(rename_all = "camelCase")]
pub struct PatchSpec {
    /// The patch's version, like `2026-11-security`: at most 63 characters, letters, digits,
    /// `-`, `_` and `.`, beginning and ending with a letter or digit. Recorded on every target
    /// it is applied to.
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$")
    )]
    pub version: String,

    /// How urgent the patch is: `Critical`, `Important` (the default), `Moderate` or `Low`.
    /// Sets the default compliance deadline.
    #[serde(default)]
    pub classification: Classification,

    /// When the vendor released the patch, RFC 3339. Automatic approval and the compliance
    /// deadline count from here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub released_at: Option<Time>,

    /// An emergency (zero-day) patch ignores maintenance windows; never health checks.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub emergency: bool,

    /// What the patch fixes, for people reading the rollout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub description: Option<String>,

    /// Nodes: the pod run once on each node to apply (or roll back) the patch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updater: Option<Updater>,

    /// Workloads: the container images to set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 32))]
    pub images: Option<Vec<ImagePatch>>,
}

/// The updater: a pod that patches the node it runs on.
///
/// The operator runs it as a Job pinned to the node, tolerating the cordon, with the
/// environment `PATCHPILOT_ACTION` (`apply` or `rollback`), `PATCHPILOT_VERSION`,
/// `PATCHPILOT_PREVIOUS_VERSION` and `PATCHPILOT_NODE`.
#[derive(KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Updater {
    /// The pod to run, as in a Job: `metadata` and `spec` with at least one container.
    pub template: PodTemplate,

    /// The updater reboots the node: wait for a new boot ID and `Ready` before verifying.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub expect_reboot: bool,

    /// How long the updater Job may run before the node fails. Default 30m.
    #[serde(default = "thirty_minutes")]
    pub timeout: Duration,

    /// With `expectReboot`, how long the node may take to come back `Ready` with a new boot
    /// ID after the updater finished. Default 15m.
    #[serde(default = "fifteen_minutes")]
    pub reboot_timeout: Duration,
}

fn thirty_minutes() -> Duration {
    Duration::from_mins(30)
}

fn fifteen_minutes() -> Duration {
    Duration::from_mins(15)
}

/// A container image replacement.
#[derive(KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImagePatch {
    /// The new image, with a tag or a digest, like `ghcr.io/acme/web:1.4.2`. It replaces every
    /// container image with the same repository (`ghcr.io/acme/web`).
    #[schemars(
        length(max = 512),
        regex(pattern = r"^[^\s@]+(@sha256:[0-9a-f]{64}|:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})$")
    )]
    pub image: String,

    /// Only containers with this name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub container: Option<String>,
}
