//! PatchRollout: one patch version going through one policy's targets. SPEC 2.3.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use patchpilot_engine::{
    notify::NoticeKind,
    rollout::{Phase, Step},
};
use serde::{Deserialize, Serialize};

use super::{
    common::{Interval, conditions_schema},
    patch::PatchSpec,
};

/// The annotation `kubectl patchpilot approve` writes on a rollout beside `spec.approved`:
/// who approved it, as the API server knows the user.
pub const APPROVED_BY: &str = "patchpilot.dev/approved-by";

/// One patch version rolling through one policy's targets.
// Each printer column repeats `type_ = …`, which clippy takes for a duplicated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "patchpilot.dev",
    version = "v1alpha1",
    kind = "PatchRollout",
    status = "PatchRolloutStatus",
    shortname = "pro",
    shortname = "prol",
    category = "patchpilot",
    doc = "PatchRollout is one patch version rolling through one PatchPolicy's targets, wave by wave. The operator creates one for each new patch of a policy; a person may create one by hand for an emergency.",
    printcolumn(name = "Policy", type_ = "string", json_path = ".spec.policy"),
    printcolumn(name = "Version", type_ = "string", json_path = ".spec.patch.version"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Wave", type_ = "string", json_path = ".status.wave.name"),
    printcolumn(name = "Updated", type_ = "string", json_path = ".status.progress"),
    printcolumn(
        name = "In Progress",
        type_ = "string",
        json_path = ".status.inProgressSummary"
    ),
    printcolumn(
        name = "Failed",
        type_ = "integer",
        json_path = ".status.targets.failed"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct PatchRolloutSpec {
    /// The PatchPolicy whose targets and rules apply. Cannot change.
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("policy cannot change"))]
    pub policy: String,

    /// The patch to roll out, as in `PatchPolicy.spec.patch`. Cannot change.
    #[x_kube(validation = Rule::new("self == oldSelf").message("patch cannot change; create a new rollout"))]
    pub patch: PatchSpec,

    /// Approve the rollout (approval mode `Manual`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub approved: bool,

    /// Continue after a healthy canary (approval `afterCanary`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub promoted: bool,

    /// Start no new targets; targets in progress finish. Clear to resume.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub paused: bool,

    /// Stop and roll back everything this rollout changed. Cannot be withdrawn.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    #[x_kube(validation = Rule::new("self || !oldSelf").message("abort cannot be withdrawn"))]
    pub abort: bool,

    /// Raise by one to send the failed targets back to pending and resume the rollout.
    #[serde(default, skip_serializing_if = "is_zero")]
    #[schemars(range(min = 0))]
    #[x_kube(validation = Rule::new("self >= oldSelf").message("retry can only increase"))]
    pub retry: u32,

    /// A change-request reference, repeated in every event, like `CHG-1234`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 128))]
    pub change_ref: Option<String>,
}

fn is_zero(value: &u32) -> bool {
    *value == 0
}

/// What the operator last observed and did.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PatchRolloutStatus {
    /// Where the rollout stands.
    #[serde(default)]
    pub phase: Phase,

    /// The current wave.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wave: Option<WaveStatus>,

    /// Target counts.
    #[serde(default)]
    pub targets: TargetCounts,

    /// `updated/eligible`, for `kubectl get`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<String>,

    /// The targets in progress and their step in a few words, for `kubectl get`:
    /// `general-1 Draining, gpu-1 Updating` (at most three, then how many more).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_progress_summary: Option<String>,

    /// The targets in progress and their step.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["target"]))]
    pub in_progress: Vec<TargetProgress>,

    /// The most recent failures (at most 20; `targets.failed` counts them all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20), extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["target"]))]
    pub failures: Vec<TargetFailure>,

    /// Annotations on the targets that patchpilot cannot use, such as a lock that is not a
    /// rollout's name or an `exclude-until` that is not an instant, and what it does about
    /// each (at most 20; the message counts them all). Each is also told once, by a
    /// `BadAnnotation` Warning Event on its target.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20), extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["target", "annotation"]))]
    pub annotation_problems: Vec<AnnotationProblem>,

    /// The next window interval in which targets may start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_window: Option<Interval>,

    /// When the first target started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Time>,

    /// When the rollout finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<Time>,

    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// `Ready`, `Reconciling`, `Stalled`, `Approved`, `WindowOpen` and `Healthy`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,

    /// A sentence on what the rollout is doing or waiting for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,

    /// The `spec.retry` the operator has acted on.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub observed_retry: u32,

    /// Failures a person accepted by resuming the rollout after a halt; only further
    /// failures halt it again.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub acknowledged_failures: u32,

    /// Why the rollout halted, while it is halted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub halt: Option<HaltStatus>,

    /// The notices of the rollout for the policy's notifiers: the outbox the operator
    /// delivers from, and what it remembers to tell changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notifications: Option<RolloutNotifications>,
}

/// Why and when a rollout halted.
#[derive(KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HaltStatus {
    /// `CanaryFailed`, `FailureBudgetExceeded` or `Aborted`.
    pub reason: HaltReasonName,
    /// When it halted.
    pub since: Time,
    /// With `onFailure: Pause`, the operator's `spec.paused: true` has been seen: clearing
    /// it now resumes the rollout.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pause_seen: bool,
}

/// Why a rollout halted.
#[derive(schemars::JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HaltReasonName {
    /// A canary target failed.
    CanaryFailed,
    /// More targets failed than the failure budget allows.
    FailureBudgetExceeded,
    /// A person set `spec.abort`.
    Aborted,
}

/// The wave in progress.
#[derive(KubeSchema, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaveStatus {
    /// Position of the wave, from 1.
    pub index: u32,
    /// `canary`, `stage-1`, `stage-2`, … or `full`.
    pub name: String,
    /// How many waves the rollout has.
    pub total: u32,
}

/// How many targets are in each state.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetCounts {
    /// Selected targets.
    #[serde(default)]
    pub total: u32,
    /// Targets left out by annotation or selector.
    #[serde(default)]
    pub excluded: u32,
    /// Workloads none of whose containers the patch's images replace: nothing to patch.
    /// Left out when none.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub not_applicable: u32,
    /// Targets that already carried the version.
    #[serde(default)]
    pub up_to_date: u32,
    /// Eligible targets not started yet.
    #[serde(default)]
    pub pending: u32,
    /// Targets being worked on.
    #[serde(default)]
    pub in_progress: u32,
    /// Targets this rollout updated.
    #[serde(default)]
    pub updated: u32,
    /// Targets whose update failed.
    #[serde(default)]
    pub failed: u32,
    /// Targets this rollout rolled back.
    #[serde(default)]
    pub rolled_back: u32,
}

/// A target being worked on.
#[derive(KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TargetProgress {
    /// The target: `Node/<name>` or `<Kind>/<namespace>/<name>`.
    pub target: String,
    /// `apply` or `rollback`.
    pub action: ActionName,
    /// What is happening to it.
    pub step: Step,
    /// When the step began.
    pub since: Time,
    /// What the step is waiting for, such as the pods a PodDisruptionBudget keeps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The recent observations of its health checks during the current action, one entry a
    /// check, recorded while its health is judged (`Verifying`, `Soaking`). Dropped when
    /// the target finishes successfully; moved to its failure when it fails.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub health: Vec<CheckHistory>,
}

/// The work being done to a target.
#[derive(schemars::JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActionName {
    /// Applying the patch.
    Apply,
    /// Rolling it back.
    Rollback,
}

/// A target whose update failed.
#[derive(KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TargetFailure {
    /// The target: `Node/<name>` or `<Kind>/<namespace>/<name>`.
    pub target: String,
    /// Why, as a CamelCase word such as `DrainTimeout`, `UpdaterFailed` or `Unhealthy`.
    pub reason: String,
    /// What happened, in a sentence.
    pub message: String,
    /// The observations of its health checks up to its failure, one entry a check: the
    /// evidence, kept as it was while the failure is listed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub health: Vec<CheckHistory>,
}

/// An annotation on a target that patchpilot cannot use.
#[derive(KubeSchema, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnnotationProblem {
    /// The target: `Node/<name>` or `<Kind>/<namespace>/<name>`.
    pub target: String,
    /// The annotation's key, such as `patchpilot.dev/lock`.
    pub annotation: String,
    /// What is wrong with its value, and what patchpilot does about it.
    #[schemars(length(max = 512))]
    pub problem: String,
}

/// The recent observations of one health check of a target.
#[derive(KubeSchema, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckHistory {
    /// The check: its kind and a short identity, as `nodeReady`, `podsReady`,
    /// `http /healthz` (the URL's path), `prometheus <query>` or `job <name>`, with
    /// `#<position in health.checks>` added when two checks would read alike.
    #[schemars(length(max = 64))]
    pub check: String,
    /// Its last observations, oldest first, at most 5: one each time its result, status
    /// code or reason changed (not one a poll). The last says how the check stands.
    #[schemars(length(max = 5))]
    pub observations: Vec<CheckObservation>,
}

/// One observation of a health check.
#[derive(KubeSchema, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckObservation {
    /// When the operator recorded it (with the status write that carried it).
    pub time: Time,
    /// How the check came out: `Pass`; `Fail`; `Settling` (not passing yet, for a reason
    /// expected to pass on its own, such as a pod starting or a check's Job running);
    /// `Fatal` (failing, and it will not pass however long one waits: the target fails).
    pub result: CheckResultName,
    /// The HTTP status answered: by the URL of an `http` check, or by the Prometheus server
    /// of a `prometheus` check when it was not 200.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    /// The value a `prometheus` query returned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub value: Option<String>,
    /// Why it did not pass, as the rollout's messages say it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub reason: Option<String>,
}

/// How a health check came out.
#[derive(schemars::JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CheckResultName {
    /// It passed.
    Pass,
    /// It failed.
    Fail,
    /// Not passing yet, for a reason expected to pass on its own (a pod starting, a check's
    /// Job running).
    Settling,
    /// Failing, and it will not pass however long one waits (a crash loop, an image that
    /// cannot be pulled): the target fails at once.
    Fatal,
}

/// A rollout's notices (docs/notifications.md).
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RolloutNotifications {
    /// The last sequence number given to a notice.
    #[serde(default)]
    pub seq: u32,
    /// The recent notices, oldest first: at most 50.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50))]
    pub notices: Vec<Notice>,
    /// What the last announcement said, to tell a change of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub announced: Option<Announced>,
    /// Compliance overdue has been told.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub overdue_told: bool,
}

/// One notice of a rollout: its id is `<rollout>/<seq>`.
#[derive(KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Notice {
    /// Its number in the rollout, from 1.
    pub seq: u32,
    /// What it tells.
    pub kind: NoticeKind,
    /// When it happened.
    pub time: Time,
    /// What happened, in one sentence.
    #[schemars(length(max = 1024))]
    pub message: String,
    /// The target it is about, like `Node/general-1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The window opening an announcement is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opening: Option<Interval>,
}

/// What an announcement said.
#[derive(KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Announced {
    /// The window opening the rollout was to start in.
    pub opening: Interval,
    /// Approval was still needed.
    #[serde(default)]
    pub approval_needed: bool,
}
