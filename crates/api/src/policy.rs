//! PatchPolicy: what to patch, when, and how carefully. SPEC 2.2.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use patchpilot_engine::{
    notify::NoticeKind,
    policy::{ApprovalMode, OnFailure, WorkloadKind},
    rollout::Phase,
    units::{Duration, IntOrPercent},
};
use serde::{Deserialize, Serialize};

use super::{
    common::{LabelSelector, PodTemplate, conditions_schema, selector_schema},
    patch::PatchSpec,
};

/// Declares a patch for a set of nodes or workloads, and the rules for rolling it out.
// Each printer column repeats `type_ = …`, which clippy takes for a duplicated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "patchpilot.dev",
    version = "v1alpha1",
    kind = "PatchPolicy",
    plural = "patchpolicies",
    status = "PatchPolicyStatus",
    shortname = "ppol",
    category = "patchpilot",
    doc = "PatchPolicy declares a patch for a set of nodes or workloads and how carefully to roll it out: canary, stages, concurrency, health checks, approval and maintenance window.",
    validation = Rule::new("size(self.metadata.name) <= 54").message("metadata.name may be at most 54 characters, so that rollout names (<policy>-<8 hex>) fit in 63"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Status",
        type_ = "string",
        priority = 1,
        json_path = ".status.conditions[?(@.type==\"Ready\")].message"
    ),
    printcolumn(name = "Target", type_ = "string", json_path = ".status.targetKind"),
    printcolumn(name = "Version", type_ = "string", json_path = ".spec.patch.version"),
    printcolumn(name = "Compliant", type_ = "string", json_path = ".status.compliance.summary"),
    printcolumn(name = "Rollout", type_ = "string", json_path = ".status.currentRollout"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[x_kube(validation = Rule::new("!has(self.patch.updater) || has(self.targets.nodes)").message("patch.updater goes with targets.nodes"))]
#[x_kube(validation = Rule::new("!has(self.patch.images) || has(self.targets.workloads)").message("patch.images goes with targets.workloads"))]
#[x_kube(validation = Rule::new("!has(self.targets.nodes) || has(self.patch.updater)").message("targets.nodes needs patch.updater"))]
#[x_kube(validation = Rule::new("!has(self.targets.workloads) || has(self.patch.images)").message("targets.workloads needs patch.images"))]
#[x_kube(validation = Rule::new("!has(self.drain) || has(self.targets.nodes)").message("drain goes with targets.nodes"))]
#[x_kube(validation = Rule::new("!has(self.health) || !has(self.health.checks) || has(self.targets.nodes) || !self.health.checks.exists(c, has(c.nodeReady))").message("health.checks.nodeReady goes with targets.nodes"))]
#[serde(rename_all = "camelCase")]
pub struct PatchPolicySpec {
    /// What to patch: nodes or workloads, chosen by labels.
    pub targets: Targets,

    /// The desired patch; a new version starts a new rollout.
    pub patch: PatchSpec,

    /// How carefully: canary, stages, order, concurrency and failure handling.
    #[serde(default)]
    pub strategy: Strategy,

    /// How nodes are drained before the updater runs. Nodes only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drain: Option<DrainSpec>,

    /// How a patched target is judged healthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<HealthSpec>,

    /// Who or what approves a rollout, and whether it holds after the canary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<Approval>,

    /// The MaintenanceWindow in which targets may start; omitted means any time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub maintenance_window: Option<String>,

    /// When targets must be patched by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compliance: Option<Compliance>,

    /// How many finished rollouts of this policy to keep. Default 10.
    #[serde(default = "default_history_limit")]
    #[schemars(range(min = 0, max = 100))]
    pub history_limit: u32,

    /// Start no new targets in this policy's rollouts; targets in progress finish.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub suspend: bool,

    /// Who is told of this policy's rollouts, of what, and how long ahead they are
    /// announced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notifications: Option<Notifications>,
}

/// What people are told of a policy's rollouts, and where (docs/notifications.md).
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Notifications {
    /// The Notifiers (cluster-scoped destinations a cluster administrator configures) that
    /// receive the notices. Without any, notices are only Kubernetes Events.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16), extend("x-kubernetes-list-type" = "set"))]
    pub notifiers: Vec<String>,

    /// The kinds of notice sent; omitted: all of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 16), extend("x-kubernetes-list-type" = "set"))]
    pub on: Option<Vec<NoticeKind>>,

    /// Announce each rollout this long before the window opening it will start in, such as
    /// `24h`; omitted: no announcement. Emergency rollouts are not announced: they are told
    /// when they start (`Started`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub announce_before: Option<Duration>,
}

impl PatchPolicySpec {
    /// The Notifiers the policy sends its notices to (none without `notifications`).
    pub fn notifiers(&self) -> &[String] {
        self.notifications
            .as_ref()
            .map_or(&[], |n| n.notifiers.as_slice())
    }
}

fn default_history_limit() -> u32 {
    10
}

/// Which objects the policy patches: exactly one of `nodes` and `workloads`.
#[derive(KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[x_kube(validation = Rule::new("has(self.nodes) != has(self.workloads)").message("exactly one of nodes or workloads is required"))]
#[serde(rename_all = "camelCase")]
pub struct Targets {
    /// Patch nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodes: Option<NodeTargets>,

    /// Patch Deployments, StatefulSets and DaemonSets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workloads: Option<WorkloadTargets>,

    /// Leave out the selected objects that match this selector (reason `excluded by policy
    /// selector`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "selector_schema")]
    pub exclude: Option<LabelSelector>,
}

/// Node targets.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeTargets {
    /// The nodes to patch; empty or omitted selects every node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "selector_schema")]
    pub selector: Option<LabelSelector>,

    /// A node label naming the node's pool: `maxUnavailable` then applies per pool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 317))]
    pub pool_label: Option<String>,
}

/// Workload targets.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadTargets {
    /// The namespaces to look in, by their labels; omitted means every namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "selector_schema")]
    pub namespace_selector: Option<LabelSelector>,

    /// The workloads to patch; empty or omitted selects every workload of `kinds`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "selector_schema")]
    pub selector: Option<LabelSelector>,

    /// The kinds of workload to patch. Default: Deployment, StatefulSet and DaemonSet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 3), extend("x-kubernetes-list-type" = "set"))]
    pub kinds: Option<Vec<WorkloadKind>>,
}

/// How the patch moves through the targets.
#[derive(KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[x_kube(validation = Rule::new("!has(self.stages) || self.stages.map(s, s.percent).isSorted() && self.stages.all(s, self.stages.exists_one(t, t.percent == s.percent))").message("stages must be in strictly ascending order of percent"))]
#[serde(rename_all = "camelCase")]
pub struct Strategy {
    /// The first wave, tried alone and soaked before anything else. Default: one target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<Canary>,

    /// Further waves, each ending at a cumulative percent of the eligible targets, in
    /// ascending order. A final wave `full` takes the rest.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20))]
    pub stages: Vec<Stage>,

    /// A label to roll out by: targets are ordered by its value (targets without it last),
    /// then by name, so that waves go zone by zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 317))]
    pub group_by: Option<String>,

    /// How many targets may be in progress at once (per pool with `poolLabel`): a count of
    /// at least 1, or a percent of the eligible targets rounded down, at least 1. Default 1.
    #[serde(default = "one")]
    #[x_kube(validation = Rule::new("string(self) != '0'").message("maxUnavailable must be at least 1, or a percent like \"10%\": with 0 no target could ever start"))]
    pub max_unavailable: IntOrPercent,

    /// How many targets may fail, as a count or a percent of the eligible targets (rounded
    /// down), before the rollout halts. Any failure in the canary halts it. Default 0.
    #[serde(default = "zero")]
    pub failure_budget: IntOrPercent,

    /// What a halt does: `Rollback` (the default) or `Pause`.
    #[serde(default)]
    pub on_failure: OnFailure,
}

fn one() -> IntOrPercent {
    IntOrPercent::Count(1)
}

fn zero() -> IntOrPercent {
    IntOrPercent::Count(0)
}

impl Default for Strategy {
    fn default() -> Self {
        Strategy {
            canary: None,
            stages: Vec::new(),
            group_by: None,
            max_unavailable: one(),
            failure_budget: zero(),
            on_failure: OnFailure::default(),
        }
    }
}

/// The canary wave: a number of targets or a percent of the eligible ones.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[x_kube(validation = Rule::new("!(has(self.targets) && has(self.percent))").message("canary takes targets or percent, not both"))]
#[serde(rename_all = "camelCase")]
pub struct Canary {
    /// How many targets; `0` disables the canary. Default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 1000))]
    pub targets: Option<u32>,

    /// Percent of the eligible targets, rounded up, at least one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100))]
    pub percent: Option<u32>,

    /// How long the canary's targets must stay healthy before the next wave. Default 0s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soak: Option<Duration>,
}

/// A stage: the wave that brings the rollout up to `percent` of the eligible targets.
#[derive(KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Stage {
    /// Cumulative percent of the eligible targets updated at the end of this wave.
    #[schemars(range(min = 1, max = 100))]
    pub percent: u32,

    /// How long the wave's targets must stay healthy before the next wave. Default 0s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soak: Option<Duration>,
}

/// How nodes are drained.
#[derive(KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DrainSpec {
    /// How long to keep retrying evictions that a PodDisruptionBudget refuses. Default 10m.
    #[serde(default = "ten_minutes")]
    pub timeout: Duration,

    /// Leave DaemonSet pods in place, as `kubectl drain --ignore-daemonsets`. Default true.
    #[serde(default = "yes")]
    pub ignore_daemon_sets: bool,

    /// Evict pods with emptyDir volumes, losing their data. Default false: such pods block
    /// the drain, as with `kubectl drain`.
    #[serde(default)]
    pub delete_empty_dir_data: bool,

    /// After the timeout, delete the pods a PodDisruptionBudget still protects instead of
    /// failing the node. Default false.
    #[serde(default)]
    pub force: bool,
}

fn ten_minutes() -> Duration {
    Duration::from_mins(10)
}

fn yes() -> bool {
    true
}

impl Default for DrainSpec {
    fn default() -> Self {
        DrainSpec {
            timeout: ten_minutes(),
            ignore_daemon_sets: true,
            delete_empty_dir_data: false,
            force: false,
        }
    }
}

/// How a patched target is judged healthy.
#[derive(KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthSpec {
    /// A target must pass every check within this long after its update. Default 15m.
    #[serde(default = "fifteen_minutes")]
    pub timeout: Duration,

    /// And then keep passing them for this long. Default 5m.
    #[serde(default = "five_minutes")]
    pub soak: Duration,

    /// The checks; all must pass. Without any, `nodeReady` and `podsReady` for nodes and
    /// `podsReady` for workloads.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub checks: Vec<HealthCheck>,
}

fn fifteen_minutes() -> Duration {
    Duration::from_mins(15)
}

fn five_minutes() -> Duration {
    Duration::from_mins(5)
}

impl Default for HealthSpec {
    fn default() -> Self {
        HealthSpec {
            timeout: fifteen_minutes(),
            soak: five_minutes(),
            checks: Vec::new(),
        }
    }
}

/// One health check: exactly one of its fields.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[x_kube(validation = Rule::new("[has(self.nodeReady), has(self.podsReady), has(self.http), has(self.prometheus), has(self.job)].filter(x, x).size() == 1").message("a health check has exactly one of nodeReady, podsReady, http, prometheus or job"))]
#[serde(rename_all = "camelCase")]
pub struct HealthCheck {
    /// The node is `Ready` and reports no memory, disk or PID pressure. Nodes only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_ready: Option<Empty>,

    /// Nodes: every pod on the node is Ready. Workloads: the rollout is complete, its pods
    /// are Ready and no container restarted during the soak.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pods_ready: Option<Empty>,

    /// An HTTP GET that must answer with an expected status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpCheck>,

    /// A Prometheus instant query whose value must lie within bounds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<PrometheusCheck>,

    /// A pod that succeeds when the target is healthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<JobCheck>,
}

/// A check that takes no parameters.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Empty {}

/// An HTTP health check.
#[derive(KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpCheck {
    /// The URL to GET. `${TARGET_NAME}`, `${TARGET_NAMESPACE}` and `${TARGET_KIND}` are
    /// replaced by the target's name, namespace and kind.
    #[schemars(length(max = 2048), regex(pattern = r"^https?://\S+$"))]
    pub url: String,

    /// The acceptable response statuses. Default `[200]`.
    #[serde(default = "ok_status")]
    #[schemars(length(min = 1, max = 16), inner(range(min = 100, max = 599)))]
    pub expect_status: Vec<u16>,

    /// How long to wait for the response. Default 5s.
    #[serde(default = "five_seconds")]
    pub timeout: Duration,
}

fn ok_status() -> Vec<u16> {
    vec![200]
}

fn five_seconds() -> Duration {
    Duration::from_secs(5)
}

/// A Prometheus health check: the value of an instant query compared with bounds.
#[derive(KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[x_kube(validation = Rule::new("has(self.min) || has(self.max)").message("a prometheus check needs min, max or both"))]
#[serde(rename_all = "camelCase")]
pub struct PrometheusCheck {
    /// The Prometheus server, like `http://prometheus.monitoring:9090`.
    #[schemars(length(max = 2048), regex(pattern = r"^https?://\S+$"))]
    pub url: String,

    /// The PromQL query; it must return one sample. `${TARGET_NAME}` and the like are
    /// replaced as in `http`.
    #[schemars(length(min = 1, max = 4096))]
    pub query: String,

    /// The smallest healthy value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,

    /// The largest healthy value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,

    /// How long to wait for the answer. Default 5s.
    #[serde(default = "five_seconds")]
    pub timeout: Duration,
}

/// A health check run as a Job: healthy when its pod succeeds.
#[derive(KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobCheck {
    /// The pod to run. It gets `PATCHPILOT_TARGET` and, for nodes, `PATCHPILOT_NODE`.
    pub template: PodTemplate,
}

/// Who approves a rollout.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[x_kube(validation = Rule::new("!has(self.delay) || self.mode == 'Automatic'").message("delay goes with mode Automatic"))]
#[serde(rename_all = "camelCase")]
pub struct Approval {
    /// `Manual` (the default): a person sets `approved: true` on the rollout. `Automatic`:
    /// approved at `releasedAt` plus `delay` (the rollout's creation when there is no
    /// `releasedAt`).
    #[serde(default)]
    pub mode: ApprovalMode,

    /// With `Automatic`, how long after release the rollout is approved. Default 0s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<Duration>,

    /// Hold after a healthy canary until a person sets `promoted: true` on the rollout.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub after_canary: bool,
}

/// When targets must be patched by.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Compliance {
    /// How long after release a target may stay unpatched before it is overdue. Default by
    /// classification: Critical 3d, Important 14d, Moderate 30d, Low 90d.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<Duration>,
}

/// What the operator last observed of a policy.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PatchPolicyStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// `Node` or `Workload`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_kind: Option<String>,

    /// The rollout of the current patch version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_rollout: Option<String>,

    /// How many targets carry the current version, and how many do not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compliance: Option<ComplianceStatus>,

    /// `Ready`, `Reconciling`, `Stalled` and `Compliant`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,

    /// The policy's finished rollouts, newest first, kept here when the rollouts themselves
    /// are pruned (`historyLimit`): at most [`HISTORY_KEPT`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50))]
    pub history: Vec<RolloutHistory>,

    /// The Notifiers of `spec.notifications`, and whether each delivers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub notifiers: Vec<NotifierHealth>,
}

/// Whether a Notifier a policy names delivers its notices.
#[derive(KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotifierHealth {
    /// The Notifier.
    pub name: String,
    /// It exists and delivers.
    pub ready: bool,
    /// Why not, or how it goes: its Ready condition's message.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

/// How many finished rollouts a policy's `status.history` remembers.
pub const HISTORY_KEPT: usize = 50;

/// A finished rollout, as the policy's history remembers it.
#[derive(KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RolloutHistory {
    /// The PatchRollout.
    pub rollout: String,
    /// The patch version.
    pub version: String,
    /// The change-request reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change_ref: Option<String>,
    /// Who approved it: the user `kubectl patchpilot approve` recorded, or `automatic`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_by: Option<String>,
    /// When the first target started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Time>,
    /// When it finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<Time>,
    /// `Succeeded`, `RolledBack`, `Failed` or `Superseded`.
    pub outcome: Phase,
    /// Targets it updated.
    #[serde(default)]
    pub updated: u32,
    /// Targets whose update failed.
    #[serde(default)]
    pub failed: u32,
    /// Targets it rolled back.
    #[serde(default)]
    pub rolled_back: u32,
}

/// Compliance counts of a policy's targets against its current version. Compliance is over
/// the targets the patch applies to: `total` less `excluded` and `notApplicable`.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ComplianceStatus {
    /// Selected targets.
    pub total: u32,
    /// Targets that carry the current version.
    pub up_to_date: u32,
    /// Targets still to be patched.
    pub pending: u32,
    /// Targets whose update failed.
    pub failed: u32,
    /// Targets excluded by annotation or selector.
    pub excluded: u32,
    /// Workloads none of whose containers the patch's images replace. Left out when none.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub not_applicable: u32,
    /// Pending or failed targets past the compliance deadline.
    pub overdue: u32,
    /// `upToDate/N`, for `kubectl get`: N counts the targets that are neither excluded nor
    /// not applicable.
    pub summary: String,
}

fn is_zero(value: &u32) -> bool {
    *value == 0
}
