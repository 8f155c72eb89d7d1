//! What the controller observes of the targets in progress, for the engine to decide on.

use jiff::Timestamp;

use super::CheckOutcome;
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
    /// Pods that cannot go yet, and what keeps them: `(pod, why)`, such as
    /// `PodDisruptionBudget shop/web` or `uses emptyDir (set drain.deleteEmptyDirData)`.
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
///
/// A check either passes, fails, or is *settling*: not passing yet for a reason that is
/// expected to pass on its own (a pod that was just scheduled and is starting, a check Job
/// still running). Settling is not a failure, even during the soak; it only keeps the
/// target from counting as healthy. The controller turns settling into failing once it has
/// lasted too long (a pod still not Ready `health.timeout` after it was scheduled), and
/// says when that will be in `settles_by`.
///
/// A failing check may also be *fatal*: it says the target will not become healthy however
/// long one waits (a container of the patched pods in `CrashLoopBackOff`, an image that
/// cannot be pulled). The steps that wait for health fail the target at once on it, with
/// its reason, instead of waiting out `health.timeout`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HealthFacts {
    /// For each failing check, why: `nodeReady: MemoryPressure is True`. A fatal check is
    /// listed here too.
    pub reasons: Vec<String>,
    /// For each settling check, what it waits for: `podsReady: 1 pod(s) starting: shop/web-1`.
    pub settling: Vec<String>,
    /// When settling turns into failing at the latest, if the controller knows.
    pub settles_by: Option<Timestamp>,
    /// The first fatal signal, if a check found one.
    pub fatal: Option<Fatal>,
    /// Each check's outcome, for the status's [health history](super::history).
    pub checks: Vec<CheckOutcome>,
}

/// A signal that a target will not become healthy, however long one waits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fatal {
    /// What kind of signal.
    pub reason: FatalReason,
    /// Where it was seen and what it says: `podsReady: shop/web-5d9f-x2x7q container web:
    /// back-off 20s restarting failed container`.
    pub message: String,
}

/// The kinds of fatal signals: the waiting reasons of a container that the kubelet keeps
/// retrying without success. Each is the failure's reason, as Kubernetes spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FatalReason {
    /// The container keeps exiting; the kubelet backs off restarting it.
    CrashLoopBackOff,
    /// The image could not be pulled.
    ErrImagePull,
    /// The kubelet backs off pulling an image it could not pull.
    ImagePullBackOff,
    /// The image reference is not valid.
    InvalidImageName,
    /// The container's configuration names something that does not exist (a ConfigMap or
    /// Secret, or a key of one).
    CreateContainerConfigError,
}

impl FatalReason {
    /// Every kind.
    pub const ALL: [FatalReason; 5] = [
        FatalReason::CrashLoopBackOff,
        FatalReason::ErrImagePull,
        FatalReason::ImagePullBackOff,
        FatalReason::InvalidImageName,
        FatalReason::CreateContainerConfigError,
    ];

    /// The reason as Kubernetes spells it (a container's `state.waiting.reason`).
    pub fn as_str(self) -> &'static str {
        match self {
            FatalReason::CrashLoopBackOff => "CrashLoopBackOff",
            FatalReason::ErrImagePull => "ErrImagePull",
            FatalReason::ImagePullBackOff => "ImagePullBackOff",
            FatalReason::InvalidImageName => "InvalidImageName",
            FatalReason::CreateContainerConfigError => "CreateContainerConfigError",
        }
    }

    /// The kind a container's waiting reason names, if it is fatal.
    pub fn from_waiting(reason: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == reason)
    }
}

impl HealthFacts {
    /// All checks pass.
    pub fn healthy() -> Self {
        HealthFacts::default()
    }

    /// Some check fails, for the given reasons.
    pub fn failing(reasons: Vec<String>) -> Self {
        HealthFacts {
            reasons,
            ..HealthFacts::default()
        }
    }

    /// Some check is settling, until `by` at the latest.
    pub fn settling(settling: Vec<String>, by: Option<Timestamp>) -> Self {
        HealthFacts {
            settling,
            settles_by: by,
            ..HealthFacts::default()
        }
    }

    /// Some check fails, fatally: `message` says where and why.
    pub fn fatal(reason: FatalReason, message: String) -> Self {
        HealthFacts {
            reasons: vec![message.clone()],
            fatal: Some(Fatal { reason, message }),
            ..HealthFacts::default()
        }
    }

    /// Every check passes.
    pub fn is_healthy(&self) -> bool {
        self.reasons.is_empty() && self.settling.is_empty() && self.fatal.is_none()
    }

    /// Some check fails.
    pub fn fails(&self) -> bool {
        !self.reasons.is_empty() || self.fatal.is_some()
    }

    /// What keeps the target from being healthy, failures first.
    pub fn summary(&self) -> String {
        self.reasons
            .iter()
            .chain(&self.settling)
            .cloned()
            .collect::<Vec<_>>()
            .join("; ")
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
