//! The rollout state machine, as a pure function.
//!
//! [`decide`] takes everything the controller knows — the rollout, its policy and window,
//! the status it wrote last time, the targets' labels and annotations (where the per-target
//! [records](record::Record) live), the live state of the targets in progress, and `now` —
//! and returns what to do next: the actions to carry out, the new status, the events to
//! record and the instant at which to look again. It reads no clock and performs no I/O, so
//! deciding twice on the same input gives the same decision. SPEC 3.2 to 3.5.

mod conditions;
mod facts;
pub mod history;
mod notices;
mod record;
mod report;
mod rollout;
mod situation;
mod step;
mod story;

use std::collections::BTreeMap;

use jiff::Timestamp;

pub use conditions::{
    Condition, ConditionStatus, ConditionType, CurrentRollout, compute_conditions,
    deleted_rollout_conditions, policy_conditions, stalled_conditions,
};
pub use facts::{
    Fatal, FatalReason, HealthFacts, JobFacts, JobState, Live, NodeFacts, Observed, WorkloadFacts,
    WorkloadRollout,
};
pub use history::{CheckHistory, CheckObservation, CheckOutcome, CheckResult, HealthHistory};
pub use record::{Action, Record, RecordState, Records};
pub use rollout::{decide, wanted};

pub use crate::untrusted::AnnotationProblem;

use crate::{
    image::{ContainerImage, ImagePatch},
    plan::Namespaces,
    policy::{Classification, Policy},
    rollout::{Phase, Step},
    target::{Candidate, TargetId},
    units::Duration,
    window::{Interval, Window},
};

/// A rollout as the engine works with it: its patch and the switches people set.
#[derive(Clone, Debug, PartialEq)]
pub struct Rollout {
    /// The rollout's name; it is the lock's value on targets.
    pub name: String,
    /// Its UID, written into its records (empty: records match by name alone).
    pub uid: String,
    /// Made by a person rather than by its policy: it takes precedence over the policy's
    /// own rollouts.
    pub hand_made: bool,
    /// The patch.
    pub patch: Patch,
    /// `spec.approved`.
    pub approved: bool,
    /// `spec.promoted`.
    pub promoted: bool,
    /// `spec.paused`.
    pub paused: bool,
    /// `spec.abort`.
    pub abort: bool,
    /// `spec.retry`.
    pub retry: u32,
    /// When the rollout was created.
    pub created: Timestamp,
    /// `metadata.generation`, for the conditions' `observedGeneration`.
    pub generation: i64,
}

/// The patch a rollout applies.
#[derive(Clone, Debug, PartialEq)]
pub struct Patch {
    /// The version recorded on targets.
    pub version: String,
    /// How urgent it is.
    pub classification: Classification,
    /// When it was released.
    pub released_at: Option<Timestamp>,
    /// Ignore maintenance windows.
    pub emergency: bool,
    /// What changes on a target.
    pub change: Change,
}

impl Patch {
    /// The image replacements of a workload patch; `None` for an updater patch.
    pub fn images(&self) -> Option<&[ImagePatch]> {
        match &self.change {
            Change::Images(images) => Some(images),
            Change::Updater(_) => None,
        }
    }
}

/// What a patch changes on a target.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    /// Nodes: an updater Job runs on the node.
    Updater(Updater),
    /// Workloads: container images are replaced.
    Images(Vec<ImagePatch>),
}

/// How the updater behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Updater {
    /// It reboots the node: wait for a new boot ID and `Ready`.
    pub expect_reboot: bool,
    /// How long the updater Job may run.
    pub timeout: Duration,
    /// How long the node may take to come back after the updater finished.
    pub reboot_timeout: Duration,
}

/// Everything [`decide`] needs.
#[derive(Clone, Copy, Debug)]
pub struct Input<'a> {
    /// The instant to decide at.
    pub now: Timestamp,
    /// The rollout.
    pub rollout: &'a Rollout,
    /// Its policy.
    pub policy: &'a Policy,
    /// The policy's maintenance window, if it names one.
    pub window: Option<&'a Window>,
    /// A newer rollout of the same policy has taken over.
    pub superseded: bool,
    /// The rollout or its policy is being deleted: nothing new starts, targets whose
    /// change has not been made are let go, the others finish.
    pub stopping: bool,
    /// The policy's other rollouts.
    pub siblings: &'a [Sibling],
    /// The status written last time (the default for a new rollout).
    pub status: &'a Status,
    /// Every object of the policy's target kinds: labels and annotations.
    pub candidates: &'a [Candidate],
    /// Namespace labels, for workload policies.
    pub namespaces: &'a Namespaces,
    /// The live state of the targets [`wanted`] asked for.
    pub observed: &'a BTreeMap<TargetId, Observed>,
}

/// Another rollout of the same policy, as far as a rollout needs to know it: to count its
/// targets in progress against `maxUnavailable`, to give way to it, and to keep its records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sibling {
    /// Its name (the value of its locks).
    pub name: String,
    /// Its UID.
    pub uid: String,
    /// Made by a person rather than by the policy.
    pub hand_made: bool,
    /// When it was created.
    pub created: Timestamp,
    /// Its phase, as its status last said.
    pub phase: Phase,
}

impl Sibling {
    /// Approved and not finished: it is going, or waits only for a window or a person.
    pub const fn active(&self) -> bool {
        match self.phase {
            Phase::Scheduled | Phase::Progressing | Phase::Paused | Phase::RollingBack => true,
            Phase::Pending
            | Phase::AwaitingApproval
            | Phase::Succeeded
            | Phase::RolledBack
            | Phase::Failed
            | Phase::Superseded => false,
        }
    }
}

/// The status of a rollout: what it shows people, and what it remembers between decisions.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Status {
    /// Where the rollout stands.
    pub phase: Phase,
    /// The current wave.
    pub wave: Option<WaveStatus>,
    /// Target counts.
    pub counts: Counts,
    /// The targets in progress, by name.
    pub in_progress: Vec<InProgress>,
    /// The most recent failures, newest first, at most [`MAX_FAILURES`].
    pub failures: Vec<Failure>,
    /// The next window interval in which targets may start.
    pub next_window: Option<Interval>,
    /// When the first target started.
    pub started_at: Option<Timestamp>,
    /// When the rollout finished.
    pub completed_at: Option<Timestamp>,
    /// The conditions.
    pub conditions: Vec<Condition>,
    /// What the rollout is doing or waiting for.
    pub message: String,
    /// The `spec.retry` already acted upon.
    pub observed_retry: u32,
    /// Failures a person accepted by resuming after a halt.
    pub acknowledged_failures: u32,
    /// Why the rollout halted, if it did.
    pub halt: Option<Halt>,
    /// The recent observations of the health checks of the targets in progress and failed.
    pub health: HealthHistory,
    /// The notices told so far, for the operator to deliver.
    pub outbox: crate::notify::Outbox,
    /// Annotations on the rollout's targets that patchpilot cannot use, by target, at most
    /// [`MAX_ANNOTATION_PROBLEMS`]; the message counts them all.
    pub annotation_problems: Vec<AnnotationProblem>,
}

/// At most this many failures are listed in the status; the counts include them all.
pub const MAX_FAILURES: usize = 20;

/// At most this many annotation problems are listed in the status.
pub const MAX_ANNOTATION_PROBLEMS: usize = 20;

/// The wave in progress.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WaveStatus {
    /// From 1.
    pub index: u32,
    /// `canary`, `stage-<i>` or `full`.
    pub name: String,
    /// How many waves there are.
    pub total: u32,
}

/// How many targets stand where.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Selected targets.
    pub total: u32,
    /// Excluded targets.
    pub excluded: u32,
    /// Workloads the patch has nothing to change on.
    pub not_applicable: u32,
    /// Targets that carried the version already.
    pub up_to_date: u32,
    /// Eligible targets not started.
    pub pending: u32,
    /// Targets being worked on.
    pub in_progress: u32,
    /// Targets the rollout updated.
    pub updated: u32,
    /// Targets whose update or rollback failed.
    pub failed: u32,
    /// Targets the rollout rolled back.
    pub rolled_back: u32,
}

/// A target in progress.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InProgress {
    /// The target.
    pub target: TargetId,
    /// Apply or rollback.
    pub action: Action,
    /// Its step.
    pub step: Step,
    /// When the step began.
    pub since: Timestamp,
    /// What it waits for.
    pub message: Option<String>,
}

/// A failed target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The target.
    pub target: TargetId,
    /// A CamelCase reason.
    pub reason: String,
    /// What happened.
    pub message: String,
}

/// Why a rollout halted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Halt {
    /// The cause.
    pub reason: HaltReason,
    /// When.
    pub since: Timestamp,
    /// With `onFailure: Pause`: the operator's `paused: true` has been seen in the spec, so
    /// `paused: false` now means a person resumed.
    pub pause_seen: bool,
}

/// Why a rollout halted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HaltReason {
    /// A target of the canary failed.
    CanaryFailed,
    /// More targets failed than the failure budget allows.
    FailureBudgetExceeded,
    /// A person set `abort`.
    Aborted,
}

impl HaltReason {
    /// The reason as a CamelCase word.
    pub const fn as_str(self) -> &'static str {
        match self {
            HaltReason::CanaryFailed => "CanaryFailed",
            HaltReason::FailureBudgetExceeded => "FailureBudgetExceeded",
            HaltReason::Aborted => "Aborted",
        }
    }

    /// The reason in words, as a message begins: `canary failed`.
    pub const fn as_words(self) -> &'static str {
        match self {
            HaltReason::CanaryFailed => "canary failed",
            HaltReason::FailureBudgetExceeded => "failure budget exceeded",
            HaltReason::Aborted => "aborted",
        }
    }
}

/// What [`decide`] returns.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    /// The API calls to make, in order.
    pub actions: Vec<TargetAction>,
    /// The status to write.
    pub status: Status,
    /// The events to record once the status is written.
    pub events: Vec<Event>,
    /// When to decide again if nothing changes before; `None` when only a change in the
    /// cluster or the spec can move the rollout.
    pub wake_at: Option<Timestamp>,
}

/// One thing for the controller to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TargetAction {
    /// Take the target's lock and write `record` (state `Applying` or `RollingBack`) in the
    /// same request. The lock may be this rollout's already (a held target starting its
    /// rollback); never another's. For a node, also cordon it if it is schedulable, and fill
    /// in the record's `cordoned`, `bootId` and `previousVersion`. For a workload, fill in
    /// `previousVersion` and (to apply) `images` with the current images, and set `images`
    /// to restore on rollback, or the patched images to apply.
    Lock {
        /// The target.
        target: TargetId,
        /// The record to write.
        record: Record,
    },
    /// Evict the node's pods that may be evicted; retry refusals with backoff.
    Drain {
        /// The node.
        target: TargetId,
    },
    /// Delete the pods a PodDisruptionBudget still protects (`drain.force` after the timeout).
    ForceDrain {
        /// The node.
        target: TargetId,
    },
    /// Create the updater Job on the node.
    RunUpdater {
        /// The node.
        target: TargetId,
        /// The Job's name.
        job: String,
        /// Apply or rollback.
        action: Action,
        /// `PATCHPILOT_VERSION`.
        version: String,
        /// `PATCHPILOT_PREVIOUS_VERSION`.
        previous_version: Option<String>,
    },
    /// Set the workload's container images (they differ from what the action needs).
    SetImages {
        /// The workload.
        target: TargetId,
        /// The images.
        images: Vec<ContainerImage>,
    },
    /// Make the node schedulable again, and mark the record `applied`.
    Uncordon {
        /// The node.
        target: TargetId,
        /// The record with `applied` set.
        record: Record,
    },
    /// Write the final record, set (or, with `None`, remove) the version annotation, and
    /// release the lock, in one request; uncordon the node too if `uncordon`.
    Release {
        /// The target.
        target: TargetId,
        /// The final record.
        record: Record,
        /// The version annotation to leave.
        version: Option<String>,
        /// Also make the node schedulable.
        uncordon: bool,
    },
    /// Write the record of a target whose work has just ended (`Updated` or `Failed`),
    /// keeping its lock and leaving its version annotation and cordon as they are: it waits
    /// for its turn to be rolled back, under the same lock.
    Hold {
        /// The target. Its lock is written again with the record (a lock a person
        /// overwrote while the work went on is the rollout's once more).
        target: TargetId,
        /// The record to write.
        record: Record,
    },
    /// Let a target go before its change was made (the rollout is being deleted): release
    /// the lock, forget this rollout's record (the one before it becomes current again),
    /// and uncordon the node if `uncordon`.
    Abandon {
        /// The target.
        target: TargetId,
        /// Make the node schedulable again (this rollout cordoned it).
        uncordon: bool,
    },
    /// Mark an updated target failed (it turned unhealthy during its wave's soak).
    MarkFailed {
        /// The target.
        target: TargetId,
        /// The record to write.
        record: Record,
    },
    /// Remove this rollout's lock from a target it has no work on (an orphaned lock).
    Unlock {
        /// The target.
        target: TargetId,
    },
    /// Set the rollout's `spec.paused` (a halt with `onFailure: Pause`).
    PauseRollout,
}

/// An event to record on the rollout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// Normal or warning.
    pub warning: bool,
    /// A CamelCase reason.
    pub reason: String,
    /// What was done, machine-readable: the reason, or for a wave `StartWave-<wave>`.
    /// Events with the same reason, action and target are merged into one series, so
    /// distinct facts get distinct actions.
    pub action: String,
    /// What happened.
    pub message: String,
    /// The target it happened to, if one: recorded as the event's related object, so that
    /// events of different targets are not merged into one series.
    pub target: Option<TargetId>,
    /// Recorded on the target itself (a Node, a Deployment) with the rollout as related
    /// object, so that `kubectl describe node` tells the node's story; otherwise on the
    /// rollout.
    pub on_target: bool,
}
