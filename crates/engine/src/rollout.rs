//! The life of a rollout: its phases.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Where a rollout stands. See SPEC 2.3.
///
/// `Pending → AwaitingApproval → Scheduled → Progressing → Succeeded`, with `Paused`,
/// `RollingBack → RolledBack`, `Failed` and `Superseded` on the side.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum Phase {
    /// Not yet looked at, or waiting for its policy.
    #[default]
    Pending,
    /// Waiting for a person to approve it, or for the automatic approval instant.
    AwaitingApproval,
    /// Approved, waiting for the maintenance window to open.
    Scheduled,
    /// Updating targets.
    Progressing,
    /// Halted by `paused`, by `onFailure: Pause`, or after a healthy canary awaiting promotion.
    Paused,
    /// Every eligible target is updated.
    Succeeded,
    /// Undoing what the rollout changed, most recent first.
    RollingBack,
    /// Everything the rollout changed has been rolled back.
    RolledBack,
    /// Stopped for good: a rollback step failed, or the spec cannot be carried out.
    Failed,
    /// A newer patch of the same policy took over; in-flight targets finish, no new ones start.
    Superseded,
}

impl Phase {
    /// Whether the rollout has ended and will do nothing more unless a person retries it.
    pub const fn is_finished(self) -> bool {
        match self {
            Phase::Succeeded | Phase::RolledBack | Phase::Failed | Phase::Superseded => true,
            Phase::Pending
            | Phase::AwaitingApproval
            | Phase::Scheduled
            | Phase::Progressing
            | Phase::Paused
            | Phase::RollingBack => false,
        }
    }
}

/// What is happening to a target in progress, from taking its lock to releasing it.
///
/// Nodes go `Locked → Cordoning → Draining → Updating → Rebooting → Uncordoning → Verifying
/// → Soaking → Releasing` (SPEC 3.3); workloads `Locked → RollingOut → Verifying → Soaking →
/// Releasing` (SPEC 3.4). A rollback walks the same steps with the previous version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum Step {
    /// The lock is taken; nothing else has changed yet.
    Locked,
    /// Nodes: marking the node unschedulable.
    Cordoning,
    /// Nodes: evicting the node's pods.
    Draining,
    /// Nodes: the updater Job is running.
    Updating,
    /// Nodes: waiting for a new boot ID and `Ready`.
    Rebooting,
    /// Nodes: making the node schedulable again.
    Uncordoning,
    /// Workloads: new images set; waiting for the workload's own rollout to complete.
    RollingOut,
    /// Waiting for every health check to pass.
    Verifying,
    /// Healthy; staying healthy for the health soak.
    Soaking,
    /// Recording the version and releasing the lock.
    Releasing,
    /// Its work ended; it keeps the lock while it waits for its turn to be rolled back.
    AwaitingRollback,
}
