//! The vocabulary of patch policies: how a patch is classified, approved and recovered from.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::units::Duration;

/// How urgent a patch is, as patch-management processes classify them.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    JsonSchema,
)]
pub enum Classification {
    /// Fixes a flaw that is exploited or easily exploitable; patch within days.
    Critical,
    /// Fixes a serious flaw; the default.
    #[default]
    Important,
    /// Fixes a flaw that is hard to exploit or of limited impact.
    Moderate,
    /// Fixes a minor flaw.
    Low,
}

impl Classification {
    /// The compliance deadline after release when a policy names none: Critical 3 days,
    /// Important 14, Moderate 30, Low 90.
    pub const fn default_deadline(self) -> Duration {
        let days = match self {
            Classification::Critical => 3,
            Classification::Important => 14,
            Classification::Moderate => 30,
            Classification::Low => 90,
        };
        Duration::from_hours(days * 24)
    }
}

/// What a rollout does when it halts because targets failed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum OnFailure {
    /// Roll back every target the rollout changed, most recent first; the default.
    #[default]
    Rollback,
    /// Stop and wait for a person to abort or resume.
    Pause,
}

/// How a rollout is approved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum ApprovalMode {
    /// A person sets `approved: true` on the rollout; the default.
    #[default]
    Manual,
    /// Approved on its own at `releasedAt` plus `delay`.
    Automatic,
}

/// A kind of workload a policy can patch.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
pub enum WorkloadKind {
    /// An `apps/v1` Deployment.
    Deployment,
    /// An `apps/v1` StatefulSet.
    StatefulSet,
    /// An `apps/v1` DaemonSet.
    DaemonSet,
}

impl WorkloadKind {
    /// Every workload kind, the default of `targets.workloads.kinds`.
    pub const ALL: [WorkloadKind; 3] = [
        WorkloadKind::Deployment,
        WorkloadKind::StatefulSet,
        WorkloadKind::DaemonSet,
    ];

    /// The kind's name as Kubernetes writes it.
    pub const fn as_str(self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "Deployment",
            WorkloadKind::StatefulSet => "StatefulSet",
            WorkloadKind::DaemonSet => "DaemonSet",
        }
    }
}
