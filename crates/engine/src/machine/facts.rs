//! What the controller observes of the targets in progress, for the engine to decide on.

use jiff::Timestamp;

use crate::image::ContainerImage;

/// The live state of a target the rollout works on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Live {
    /// A node.
    Node(NodeFacts),
    /// A workload.
    Workload(WorkloadFacts),
}

/// A node's state, as far as updating it is concerned.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeFacts {
    /// `spec.unschedulable`.
    pub unschedulable: bool,
    /// The `Ready` condition is `True`.
    pub ready: bool,
    /// When the `Ready` condition last changed.
    pub ready_since: Option<Timestamp>,
    /// `status.nodeInfo.bootID`.
    pub boot_id: String,
    /// Pods that still have to leave the node before the updater runs (not DaemonSet or
    /// mirror pods, not finished), as `namespace/name`.
    pub pods_to_evict: Vec<String>,
    /// Evictions a PodDisruptionBudget refused on the last attempt: `(pod, budget)`.
    pub blocked: Vec<(String, String)>,
    /// The updater Job of the current action and attempt, if it exists.
    pub updater: Option<JobFacts>,
}

/// A Job's outcome so far.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobFacts {
    /// Running, succeeded or failed.
    pub state: JobState,
    /// When it finished.
    pub finished: Option<Timestamp>,
    /// Why it failed, if it did.
    pub message: Option<String>,
}

/// Where a Job stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobState {
    /// Not finished.
    Running,
    /// Its pod succeeded.
    Succeeded,
    /// It failed for good.
    Failed,
}

/// A workload's state, as far as updating it is concerned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkloadFacts {
    /// The containers' images in the pod template.
    pub images: Vec<ContainerImage>,
    /// How its own rollout is doing, judged as `kubectl rollout status` judges it.
    pub rollout: WorkloadRollout,
}

/// How a workload's own rollout is doing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WorkloadRollout {
    /// Every replica runs the current template and is available.
    Complete,
    /// Still rolling; the message says what it waits for.
    Progressing(String),
    /// The rollout cannot finish (`ProgressDeadlineExceeded`).
    Failed(String),
}

/// The outcome of a target's health checks, run now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthFacts {
    /// Every check passes.
    pub healthy: bool,
    /// For each failing check, why: `nodeReady: MemoryPressure is True`.
    pub reasons: Vec<String>,
}

impl HealthFacts {
    /// All checks pass.
    pub fn healthy() -> Self {
        HealthFacts {
            healthy: true,
            reasons: Vec::new(),
        }
    }

    /// Some check fails, for the given reasons.
    pub fn failing(reasons: Vec<String>) -> Self {
        HealthFacts {
            healthy: false,
            reasons,
        }
    }
}

/// What the controller observed of one target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observed {
    /// Its live state.
    pub live: Live,
    /// Its health checks, when they were run.
    pub health: Option<HealthFacts>,
}
