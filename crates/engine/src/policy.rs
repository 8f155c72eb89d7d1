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

/// A policy as the engine works with it: every value parsed and checked.
#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    /// The policy's name; it keys the version annotation on targets.
    pub name: String,
    /// Which objects it patches.
    pub targets: crate::plan::TargetRules,
    /// Waves, order, concurrency and failure handling.
    pub strategy: Strategy,
    /// How nodes are drained.
    pub drain: Drain,
    /// How targets are judged healthy.
    pub health: Health,
    /// How rollouts are approved.
    pub approval: Approval,
    /// The name of the MaintenanceWindow, if any.
    pub window: Option<String>,
    /// How long after release a target may stay unpatched.
    pub deadline: Option<Duration>,
    /// Start no new targets.
    pub suspend: bool,
    /// What people are told, and how long ahead a rollout is announced.
    pub notices: crate::notify::Notices,
}

impl Policy {
    /// How long after its release a patch of `classification` may stay off a target: the
    /// policy's `compliance.deadline`, else the classification's default.
    pub fn deadline_for(&self, classification: Classification) -> Duration {
        self.deadline
            .unwrap_or_else(|| classification.default_deadline())
    }
}

/// How the patch moves through the targets.
#[derive(Clone, Debug, PartialEq)]
pub struct Strategy {
    /// The size of the canary wave.
    pub canary: CanarySize,
    /// How long the canary soaks.
    pub canary_soak: Duration,
    /// The stages, in strictly ascending order of percent.
    pub stages: Vec<Stage>,
    /// The label targets are grouped by.
    pub group_by: Option<String>,
    /// How many targets may be in progress at once (per pool).
    pub max_unavailable: IntOrPercent,
    /// How many targets may fail before the rollout halts.
    pub failure_budget: IntOrPercent,
    /// What a halt does.
    pub on_failure: OnFailure,
}

/// The size of the canary wave.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CanarySize {
    /// A number of targets; 0 means no canary.
    Targets(u32),
    /// A percent of the eligible targets, rounded up, at least one.
    Percent(Percent),
}

/// A stage: the wave up to a cumulative percent of the eligible targets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stage {
    /// Cumulative percent at the end of the stage, 1 to 100.
    pub percent: Percent,
    /// How long the stage soaks.
    pub soak: Duration,
}

/// How nodes are drained.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Drain {
    /// How long evictions refused by a PodDisruptionBudget are retried.
    pub timeout: Duration,
    /// After the timeout, delete the pods instead of failing the node.
    pub force: bool,
}

/// How targets are judged healthy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Health {
    /// Healthy within this long after the update.
    pub timeout: Duration,
    /// And staying healthy this long.
    pub soak: Duration,
    /// How often checks that are not driven by watch events (HTTP, Prometheus, jobs) are run
    /// again; `None` when every check follows the cluster's own state.
    pub recheck: Option<Duration>,
}

/// How rollouts are approved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Approval {
    /// Manual or automatic.
    pub mode: ApprovalMode,
    /// Automatic: the delay after release.
    pub delay: Duration,
    /// Hold after the canary until promoted.
    pub after_canary: bool,
}

use crate::units::{IntOrPercent, Percent};
