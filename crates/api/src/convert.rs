//! Conversions between the API's types and the engine's: every value checked once, with
//! errors naming the field from the object's root (`spec.strategy.stages[1].percent`).
//!
//! The CRD schema and its CEL rules already refuse most of these mistakes; they are checked
//! again here because not every cluster enforces CEL rules, and because a command-line user
//! may read a file no API server has seen.

use std::collections::BTreeSet;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{self as meta, Time};
use patchpilot_engine::{
    InvalidSpec,
    compliance::Compliance,
    image::ImagePatch,
    machine::{self, Change, Condition, ConditionStatus, ConditionType, Updater},
    notify,
    plan::{Scope, TargetRules},
    policy::{self, CanarySize, Drain, Health, Policy, Stage, WorkloadKind},
    selector::Selector,
    target::TargetId,
    units::{Duration, IntOrPercent, Percent},
};

use super::{
    ActionName, AnnotationProblem, Announced, CheckHistory, CheckObservation, CheckResultName,
    ComplianceStatus, HaltReasonName, HaltStatus, HealthCheck, Interval, LabelSelector, Notice,
    PatchPolicySpec, PatchRollout, PatchRolloutStatus, PatchSpec, RolloutNotifications,
    TargetCounts, TargetFailure, TargetProgress, WaveStatus,
};

/// How often HTTP, Prometheus and Job health checks run again while a target is verified.
pub const HEALTH_RECHECK: Duration = Duration::from_secs(15);

/// A label selector as the engine evaluates it; `None` matches everything.
pub fn selector(selector: Option<&LabelSelector>, field: &str) -> Result<Selector, InvalidSpec> {
    let Some(selector) = selector else {
        return Ok(Selector::everything());
    };
    let mut parsed = Selector::from_labels(&selector.match_labels.clone().unwrap_or_default());
    for (i, expression) in selector.match_expressions.iter().flatten().enumerate() {
        let values = expression.values.clone().unwrap_or_default();
        parsed = parsed
            .with_expression(&expression.key, &expression.operator, &values)
            .map_err(|error| InvalidSpec::new(format!("{field}.matchExpressions[{i}]"), error))?;
    }
    Ok(parsed)
}

fn percent(value: u32, field: &str) -> Result<Percent, InvalidSpec> {
    u8::try_from(value)
        .ok()
        .and_then(Percent::new)
        .filter(|p| p.get() >= 1)
        .ok_or_else(|| InvalidSpec::new(field, format!("{value} is not a percent from 1 to 100")))
}

/// The mistakes found in a spec so far, so that a file with several gets them all at once.
#[derive(Debug, Default)]
pub(crate) struct Problems(Vec<InvalidSpec>);

impl Problems {
    /// The value, or `None` with its mistake noted.
    pub(crate) fn take<T>(&mut self, checked: Result<T, InvalidSpec>) -> Option<T> {
        checked.map_err(|invalid| self.0.push(invalid)).ok()
    }

    /// Notes a mistake.
    pub(crate) fn push(&mut self, field: impl Into<String>, message: impl std::fmt::Display) {
        self.0.push(InvalidSpec::new(field, message));
    }

    /// `value` when nothing was noted; otherwise every mistake, in the order found.
    pub(crate) fn or<T>(self, value: Option<T>) -> Result<T, Vec<InvalidSpec>> {
        match value {
            Some(value) if self.0.is_empty() => Ok(value),
            _ if self.0.is_empty() => Err(vec![InvalidSpec::new("spec", "is invalid")]),
            _ => Err(self.0),
        }
    }
}

/// The first of several mistakes.
pub(crate) fn first(mut problems: Vec<InvalidSpec>) -> InvalidSpec {
    if problems.is_empty() {
        InvalidSpec::new("spec", "is invalid")
    } else {
        problems.swap_remove(0)
    }
}

/// Several mistakes on one line, as a condition's message carries them: `a: …; b: …`.
pub fn one_line(problems: &[InvalidSpec]) -> String {
    let causes: Vec<String> = problems.iter().map(ToString::to_string).collect();
    causes.join("; ")
}

impl PatchPolicySpec {
    /// The policy as the engine works with it, or the first field that makes no sense.
    pub fn to_engine(&self, name: &str) -> Result<Policy, InvalidSpec> {
        self.to_engine_reporting_all(name).map_err(first)
    }

    /// The policy as the engine works with it, or every field that makes no sense, in the
    /// order they are written (targets, patch, strategy, drain, health, approval). A check that
    /// needs an earlier part (a health check's kind needs the targets) is left out when that
    /// part is itself wrong, so that one mistake is not reported twice.
    pub fn to_engine_reporting_all(&self, name: &str) -> Result<Policy, Vec<InvalidSpec>> {
        let mut problems = Problems::default();
        let rules = self.target_rules(&mut problems);
        let patch = self.patch.checked("spec.patch", &mut problems);
        if let (Some(rules), Some(patch)) = (&rules, &patch) {
            problems.take(patch.fits(rules, "spec.patch"));
        }
        let strategy = self.strategy_to_engine(&mut problems);
        let drain = self.drain.clone().unwrap_or_default();
        let nodes = rules
            .as_ref()
            .map(|r| matches!(r.scope, Scope::Nodes { .. }));
        if self.drain.is_some() && nodes == Some(false) {
            problems.push("spec.drain", "goes with targets.nodes");
        }
        let health = self.health.clone().unwrap_or_default();
        for (i, check) in health.checks.iter().enumerate() {
            check_health(
                check,
                nodes,
                &format!("spec.health.checks[{i}]"),
                &mut problems,
            );
        }
        let active = health
            .checks
            .iter()
            .any(|c| c.http.is_some() || c.prometheus.is_some() || c.job.is_some());
        let approval = self.approval.clone().unwrap_or_default();
        if approval.delay.is_some() && approval.mode != policy::ApprovalMode::Automatic {
            problems.push("spec.approval.delay", "goes with mode Automatic");
        }
        let policy = rules.zip(strategy).map(|(rules, strategy)| Policy {
            name: name.to_owned(),
            targets: rules,
            strategy,
            drain: Drain {
                timeout: drain.timeout,
                force: drain.force,
            },
            health: Health {
                timeout: health.timeout,
                soak: health.soak,
                recheck: active.then_some(HEALTH_RECHECK),
            },
            approval: policy::Approval {
                mode: approval.mode,
                delay: approval.delay.unwrap_or(Duration::ZERO),
                after_canary: approval.after_canary,
            },
            window: self.maintenance_window.clone(),
            deadline: self.compliance.as_ref().and_then(|c| c.deadline),
            suspend: self.suspend,
            notices: self.notices(),
        });
        problems.or(policy)
    }

    /// What the policy's rollouts record as notices: the kinds asked for (all by default)
    /// when some notifier receives them, none otherwise; and the announcement's lead.
    fn notices(&self) -> notify::Notices {
        let Some(notifications) = &self.notifications else {
            return notify::Notices::default();
        };
        let on = if notifications.notifiers.is_empty() {
            BTreeSet::new()
        } else {
            notifications.on.as_ref().map_or_else(
                || notify::NoticeKind::ALL.into_iter().collect(),
                |on| on.iter().copied().collect(),
            )
        };
        notify::Notices {
            on,
            announce_before: notifications.announce_before,
        }
    }

    /// Which targets the policy selects and excludes.
    fn target_rules(&self, problems: &mut Problems) -> Option<TargetRules> {
        let targets = &self.targets;
        let scope = match (&targets.nodes, &targets.workloads) {
            (Some(nodes), None) => problems
                .take(selector(
                    nodes.selector.as_ref(),
                    "spec.targets.nodes.selector",
                ))
                .map(|selector| Scope::Nodes {
                    selector,
                    pool_label: nodes.pool_label.clone(),
                }),
            (None, Some(workloads)) => {
                let namespaces = workloads
                    .namespace_selector
                    .as_ref()
                    .map(|s| selector(Some(s), "spec.targets.workloads.namespaceSelector"))
                    .transpose();
                let namespaces = problems.take(namespaces);
                let selector = problems.take(selector(
                    workloads.selector.as_ref(),
                    "spec.targets.workloads.selector",
                ));
                namespaces
                    .zip(selector)
                    .map(|(namespaces, selector)| Scope::Workloads {
                        namespaces,
                        selector,
                        kinds: workloads.kinds.clone().map_or_else(
                            || WorkloadKind::ALL.into_iter().collect(),
                            |kinds| kinds.into_iter().collect::<BTreeSet<_>>(),
                        ),
                    })
            }
            _ => {
                problems.push(
                    "spec.targets",
                    "exactly one of nodes or workloads is required",
                );
                None
            }
        };
        let exclude = targets
            .exclude
            .as_ref()
            .map(|s| selector(Some(s), "spec.targets.exclude"))
            .transpose();
        let exclude = problems.take(exclude);
        scope
            .zip(exclude)
            .map(|(scope, exclude)| TargetRules { scope, exclude })
    }

    fn strategy_to_engine(&self, problems: &mut Problems) -> Option<policy::Strategy> {
        let strategy = &self.strategy;
        let canary = strategy.canary.clone().unwrap_or_default();
        let size = match (canary.targets, canary.percent) {
            (Some(_), Some(_)) => {
                problems.push("spec.strategy.canary", "takes targets or percent, not both");
                None
            }
            (_, Some(p)) => problems
                .take(percent(p, "spec.strategy.canary.percent"))
                .map(CanarySize::Percent),
            (Some(targets), None) => Some(CanarySize::Targets(targets)),
            (None, None) => Some(CanarySize::Targets(1)),
        };
        let mut stages = Vec::with_capacity(strategy.stages.len());
        let mut previous = None;
        for (i, stage) in strategy.stages.iter().enumerate() {
            let field = format!("spec.strategy.stages[{i}].percent");
            let Some(percent) = problems.take(percent(stage.percent, &field)) else {
                continue;
            };
            if let Some(previous) = previous
                && percent <= previous
            {
                let message = format!("must be greater than the previous stage's {previous}");
                problems.push(field, message);
            }
            previous = Some(percent);
            stages.push(Stage {
                percent,
                soak: stage.soak.unwrap_or(Duration::ZERO),
            });
        }
        if strategy.max_unavailable == IntOrPercent::Count(0) {
            let message = "must be at least 1 (or a percent): with 0 no target could ever start";
            problems.push("spec.strategy.maxUnavailable", message);
        }
        size.map(|size| policy::Strategy {
            canary: size,
            canary_soak: canary.soak.unwrap_or(Duration::ZERO),
            stages,
            group_by: strategy.group_by.clone(),
            max_unavailable: strategy.max_unavailable,
            failure_budget: strategy.failure_budget,
            on_failure: strategy.on_failure,
        })
    }
}

/// Checks one health check; `nodes` is whether the policy patches nodes, `None` when its
/// targets are themselves wrong.
fn check_health(check: &HealthCheck, nodes: Option<bool>, field: &str, problems: &mut Problems) {
    let set = [
        check.node_ready.is_some(),
        check.pods_ready.is_some(),
        check.http.is_some(),
        check.prometheus.is_some(),
        check.job.is_some(),
    ];
    if set.iter().filter(|s| **s).count() != 1 {
        problems.push(
            field,
            "exactly one of nodeReady, podsReady, http, prometheus or job is required",
        );
        return;
    }
    if check.node_ready.is_some() && nodes == Some(false) {
        problems.push(format!("{field}.nodeReady"), "goes with targets.nodes");
    }
    if let Some(prometheus) = &check.prometheus
        && prometheus.min.is_none()
        && prometheus.max.is_none()
    {
        problems.push(format!("{field}.prometheus"), "needs min, max or both");
    }
    if let Some(job) = &check.job {
        problems.take(check_template(
            &job.template,
            &format!("{field}.job.template"),
        ));
    }
}

fn check_template(template: &super::PodTemplate, field: &str) -> Result<(), InvalidSpec> {
    let containers = template
        .0
        .spec
        .as_ref()
        .map_or(0, |spec| spec.containers.len());
    if containers == 0 {
        return Err(InvalidSpec::new(
            format!("{field}.spec.containers"),
            "at least one container is required",
        ));
    }
    Ok(())
}

impl PatchSpec {
    /// The patch as the engine works with it; `field` is where it sits in its object.
    pub fn to_engine(&self, field: &str) -> Result<machine::Patch, InvalidSpec> {
        let mut problems = Problems::default();
        let patch = self.checked(field, &mut problems);
        problems.or(patch).map_err(first)
    }

    /// The patch as the engine works with it, with every mistake noted in `problems`.
    fn checked(&self, field: &str, problems: &mut Problems) -> Option<machine::Patch> {
        let change = match (&self.updater, &self.images) {
            (Some(updater), None) => problems
                .take(check_template(
                    &updater.template,
                    &format!("{field}.updater.template"),
                ))
                .map(|()| {
                    Change::Updater(Updater {
                        expect_reboot: updater.expect_reboot,
                        timeout: updater.timeout,
                        reboot_timeout: updater.reboot_timeout,
                    })
                }),
            (None, Some(images)) if !images.is_empty() => {
                let mut patches = Vec::with_capacity(images.len());
                for (i, image) in images.iter().enumerate() {
                    if has_tag_or_digest(&image.image) {
                        patches.push(ImagePatch {
                            image: image.image.clone(),
                            container: image.container.clone(),
                        });
                    } else {
                        let message = format!("{:?} needs a tag or a digest", image.image);
                        problems.push(format!("{field}.images[{i}].image"), message);
                    }
                }
                (patches.len() == images.len()).then_some(Change::Images(patches))
            }
            (Some(_), Some(_)) => {
                problems.push(
                    field,
                    "has either updater (nodes) or images (workloads), not both",
                );
                None
            }
            (None, _) => {
                problems.push(field, "needs updater (nodes) or images (workloads)");
                None
            }
        };
        change.map(|change| machine::Patch {
            version: self.version.clone(),
            classification: self.classification,
            released_at: self.released_at.as_ref().map(|t| t.0),
            emergency: self.emergency,
            change,
        })
    }
}

/// The image replacements of a patch (none for an updater patch).
pub fn image_patches(patch: &PatchSpec) -> Vec<ImagePatch> {
    patch
        .images
        .iter()
        .flatten()
        .map(|i| ImagePatch {
            image: i.image.clone(),
            container: i.container.clone(),
        })
        .collect()
}

/// Whether an image reference names a tag or a digest.
fn has_tag_or_digest(image: &str) -> bool {
    let last_segment = image.rsplit('/').next().unwrap_or(image);
    image.contains('@') || last_segment.contains(':')
}

/// Checks that a patch fits a policy's targets: an updater for nodes, images for workloads.
pub trait Fits {
    /// `Ok` when the patch can be applied to the targets.
    fn fits(&self, rules: &TargetRules, field: &str) -> Result<(), InvalidSpec>;
}

impl Fits for machine::Patch {
    fn fits(&self, rules: &TargetRules, field: &str) -> Result<(), InvalidSpec> {
        match (&self.change, &rules.scope) {
            (Change::Updater(_), Scope::Nodes { .. })
            | (Change::Images(_), Scope::Workloads { .. }) => Ok(()),
            (Change::Updater(_), Scope::Workloads { .. }) => Err(InvalidSpec::new(
                format!("{field}.updater"),
                "goes with node targets; this policy patches workloads",
            )),
            (Change::Images(_), Scope::Nodes { .. }) => Err(InvalidSpec::new(
                format!("{field}.images"),
                "go with workload targets; this policy patches nodes",
            )),
        }
    }
}

impl PatchRollout {
    /// Whether a PatchPolicy made this rollout (it owns it); otherwise a person did.
    pub fn owned_by_a_policy(&self) -> bool {
        self.metadata
            .owner_references
            .iter()
            .flatten()
            .any(|o| o.kind == "PatchPolicy" && o.api_version.starts_with("patchpilot.dev/"))
    }

    /// The rollout as the engine works with it.
    pub fn to_engine(&self) -> Result<machine::Rollout, InvalidSpec> {
        let spec = &self.spec;
        Ok(machine::Rollout {
            name: self.metadata.name.clone().unwrap_or_default(),
            uid: self.metadata.uid.clone().unwrap_or_default(),
            hand_made: !self.owned_by_a_policy(),
            patch: spec.patch.to_engine("spec.patch")?,
            approved: spec.approved,
            promoted: spec.promoted,
            paused: spec.paused,
            abort: spec.abort,
            retry: spec.retry,
            created: self
                .metadata
                .creation_timestamp
                .as_ref()
                .map_or(Timestamp::UNIX_EPOCH, |t| t.0),
            generation: self.metadata.generation.unwrap_or(0),
        })
    }
}

/// A policy's compliance as its status shows it.
impl From<&Compliance> for ComplianceStatus {
    fn from(c: &Compliance) -> Self {
        ComplianceStatus {
            total: c.total,
            up_to_date: c.up_to_date,
            pending: c.pending,
            failed: c.failed,
            excluded: c.excluded,
            not_applicable: c.not_applicable,
            overdue: c.overdue,
            summary: c.summary(),
        }
    }
}

/// A condition as the API writes it.
pub fn condition_to_api(condition: &Condition) -> meta::Condition {
    meta::Condition {
        type_: condition.kind.as_str().to_owned(),
        status: condition.status.as_str().to_owned(),
        reason: condition.reason.clone(),
        message: condition.message.clone(),
        last_transition_time: Time(condition.last_transition),
        observed_generation: Some(condition.observed_generation),
    }
}

/// A condition as the engine reads it; conditions patchpilot does not set are left out.
pub fn condition_from_api(condition: &meta::Condition) -> Option<Condition> {
    Some(Condition {
        kind: ConditionType::parse(&condition.type_)?,
        status: match condition.status.as_str() {
            "True" => ConditionStatus::True,
            "False" => ConditionStatus::False,
            _ => ConditionStatus::Unknown,
        },
        reason: condition.reason.clone(),
        message: condition.message.clone(),
        last_transition: condition.last_transition_time.0,
        observed_generation: condition.observed_generation.unwrap_or(0),
    })
}

fn interval_to_api(interval: &patchpilot_engine::window::Interval) -> Interval {
    Interval {
        start: Time(interval.start),
        end: Time(interval.end),
    }
}

impl From<&PatchRolloutStatus> for machine::Status {
    fn from(status: &PatchRolloutStatus) -> Self {
        let target = |name: &str| TargetId::parse(name).map(|_| name.to_owned());
        machine::Status {
            phase: status.phase,
            wave: status.wave.as_ref().map(|w| machine::WaveStatus {
                index: w.index,
                name: w.name.clone(),
                total: w.total,
            }),
            counts: machine::Counts {
                total: status.targets.total,
                excluded: status.targets.excluded,
                not_applicable: status.targets.not_applicable,
                up_to_date: status.targets.up_to_date,
                pending: status.targets.pending,
                in_progress: status.targets.in_progress,
                updated: status.targets.updated,
                failed: status.targets.failed,
                rolled_back: status.targets.rolled_back,
            },
            in_progress: status
                .in_progress
                .iter()
                .filter_map(|p| {
                    target(&p.target)?;
                    Some(machine::InProgress {
                        target: target_id(&p.target)?,
                        action: match p.action {
                            ActionName::Apply => machine::Action::Apply,
                            ActionName::Rollback => machine::Action::Rollback,
                        },
                        step: p.step,
                        since: p.since.0,
                        message: p.message.clone(),
                    })
                })
                .collect(),
            failures: status
                .failures
                .iter()
                .filter_map(|f| {
                    Some(machine::Failure {
                        target: target_id(&f.target)?,
                        reason: f.reason.clone(),
                        message: f.message.clone(),
                    })
                })
                .collect(),
            annotation_problems: status
                .annotation_problems
                .iter()
                .filter_map(|p| {
                    Some(machine::AnnotationProblem {
                        target: target_id(&p.target)?,
                        annotation: p.annotation.clone(),
                        problem: p.problem.clone(),
                    })
                })
                .collect(),
            next_window: status
                .next_window
                .as_ref()
                .map(|w| patchpilot_engine::window::Interval {
                    start: w.start.0,
                    end: w.end.0,
                }),
            started_at: status.started_at.as_ref().map(|t| t.0),
            completed_at: status.completed_at.as_ref().map(|t| t.0),
            conditions: status
                .conditions
                .iter()
                .filter_map(condition_from_api)
                .collect(),
            message: status.message.clone().unwrap_or_default(),
            observed_retry: status.observed_retry,
            acknowledged_failures: status.acknowledged_failures,
            halt: status.halt.as_ref().map(|h| machine::Halt {
                reason: match h.reason {
                    HaltReasonName::CanaryFailed => machine::HaltReason::CanaryFailed,
                    HaltReasonName::FailureBudgetExceeded => {
                        machine::HaltReason::FailureBudgetExceeded
                    }
                    HaltReasonName::Aborted => machine::HaltReason::Aborted,
                },
                since: h.since.0,
                pause_seen: h.pause_seen,
            }),
            health: machine::HealthHistory {
                in_progress: history_from_api(
                    status.in_progress.iter().map(|p| (&p.target, &p.health)),
                ),
                failed: history_from_api(status.failures.iter().map(|f| (&f.target, &f.health))),
            },
            outbox: status
                .notifications
                .as_ref()
                .map(outbox_from_api)
                .unwrap_or_default(),
        }
    }
}

fn span(interval: &Interval) -> patchpilot_engine::window::Interval {
    patchpilot_engine::window::Interval {
        start: interval.start.0,
        end: interval.end.0,
    }
}

/// A rollout's notices as the engine keeps them; a notice naming no valid target keeps no
/// target rather than being dropped (its sequence number must stay taken).
fn outbox_from_api(notifications: &RolloutNotifications) -> notify::Outbox {
    notify::Outbox {
        seq: notifications.seq,
        notices: notifications
            .notices
            .iter()
            .map(|n| notify::Notice {
                seq: n.seq,
                kind: n.kind,
                at: n.time.0,
                message: n.message.clone(),
                target: n.target.as_deref().and_then(target_id),
                opening: n.opening.as_ref().map(span),
            })
            .collect(),
        announced: notifications.announced.as_ref().map(|a| notify::Announced {
            opening: span(&a.opening),
            approval_needed: a.approval_needed,
        }),
        overdue_told: notifications.overdue_told,
    }
}

/// The notices of a rollout as the API keeps them; none recorded yet is no field at all.
fn outbox_to_api(outbox: &notify::Outbox) -> Option<RolloutNotifications> {
    (*outbox != notify::Outbox::default()).then(|| RolloutNotifications {
        seq: outbox.seq,
        notices: outbox
            .notices
            .iter()
            .map(|n| Notice {
                seq: n.seq,
                kind: n.kind,
                time: Time(n.at),
                message: n.message.chars().take(1024).collect(),
                target: n.target.as_ref().map(ToString::to_string),
                opening: n.opening.as_ref().map(interval_to_api),
            })
            .collect(),
        announced: outbox.announced.as_ref().map(|a| Announced {
            opening: interval_to_api(&a.opening),
            approval_needed: a.approval_needed,
        }),
        overdue_told: outbox.overdue_told,
    })
}

/// The health history of the entries (target, checks) of a status, by target.
fn history_from_api<'a>(
    entries: impl Iterator<Item = (&'a String, &'a Vec<CheckHistory>)>,
) -> std::collections::BTreeMap<TargetId, Vec<machine::CheckHistory>> {
    entries
        .filter(|(_, checks)| !checks.is_empty())
        .filter_map(|(target, checks)| {
            let checks = checks
                .iter()
                .map(|c| machine::CheckHistory {
                    check: c.check.clone(),
                    observations: c
                        .observations
                        .iter()
                        .map(|o| machine::CheckObservation {
                            at: o.time.0,
                            result: match o.result {
                                CheckResultName::Pass => machine::CheckResult::Pass,
                                CheckResultName::Fail => machine::CheckResult::Fail,
                                CheckResultName::Settling => machine::CheckResult::Settling,
                                CheckResultName::Fatal => machine::CheckResult::Fatal,
                            },
                            code: o.status_code,
                            value: o.value.clone(),
                            reason: o.reason.clone(),
                        })
                        .collect(),
                })
                .collect();
            Some((target_id(target)?, checks))
        })
        .collect()
}

/// The health history of one target, as its status entry shows it.
fn history_to_api(checks: Option<&Vec<machine::CheckHistory>>) -> Vec<CheckHistory> {
    checks
        .into_iter()
        .flatten()
        .map(|c| CheckHistory {
            check: c.check.clone(),
            observations: c
                .observations
                .iter()
                .map(|o| CheckObservation {
                    time: Time(o.at),
                    result: match o.result {
                        machine::CheckResult::Pass => CheckResultName::Pass,
                        machine::CheckResult::Fail => CheckResultName::Fail,
                        machine::CheckResult::Settling => CheckResultName::Settling,
                        machine::CheckResult::Fatal => CheckResultName::Fatal,
                    },
                    status_code: o.code,
                    value: o.value.clone(),
                    reason: o.reason.clone(),
                })
                .collect(),
        })
        .collect()
}

fn target_id(name: &str) -> Option<TargetId> {
    let (kind, namespace, object) = TargetId::parse(name)?;
    Some(match (kind, namespace) {
        (patchpilot_engine::target::TargetKind::Node, _) => TargetId::node(object),
        (patchpilot_engine::target::TargetKind::Workload(kind), Some(ns)) => {
            TargetId::workload(kind, ns, object)
        }
        (patchpilot_engine::target::TargetKind::Workload(_), None) => return None,
    })
}

/// The targets in progress in a few words: `general-1 Draining, shop/web RollingOut`, a
/// rollback marked, at most three and then how many more; `None` when there are none.
fn in_progress_summary(in_progress: &[machine::InProgress]) -> Option<String> {
    const SHOWN: usize = 3;
    let mut parts: Vec<String> = in_progress
        .iter()
        .take(SHOWN)
        .map(|p| {
            let target = p.target.as_str();
            let short = target.split_once('/').map_or(target, |(_, rest)| rest);
            let rollback = match p.action {
                machine::Action::Apply => "",
                machine::Action::Rollback => " (rollback)",
            };
            format!("{short} {:?}{rollback}", p.step)
        })
        .collect();
    if in_progress.len() > SHOWN {
        parts.push(format!("+{} more", in_progress.len() - SHOWN));
    }
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// The status to write for the engine's `status` of a rollout at `generation`.
pub fn rollout_status_to_api(status: &machine::Status, generation: i64) -> PatchRolloutStatus {
    let counts = &status.counts;
    let eligible =
        counts.pending + counts.in_progress + counts.updated + counts.failed + counts.rolled_back;
    PatchRolloutStatus {
        phase: status.phase,
        wave: status.wave.as_ref().map(|w| WaveStatus {
            index: w.index,
            name: w.name.clone(),
            total: w.total,
        }),
        targets: TargetCounts {
            total: counts.total,
            excluded: counts.excluded,
            not_applicable: counts.not_applicable,
            up_to_date: counts.up_to_date,
            pending: counts.pending,
            in_progress: counts.in_progress,
            updated: counts.updated,
            failed: counts.failed,
            rolled_back: counts.rolled_back,
        },
        progress: Some(format!("{}/{eligible}", counts.updated)),
        in_progress_summary: in_progress_summary(&status.in_progress),
        in_progress: status
            .in_progress
            .iter()
            .map(|p| TargetProgress {
                target: p.target.to_string(),
                action: match p.action {
                    machine::Action::Apply => ActionName::Apply,
                    machine::Action::Rollback => ActionName::Rollback,
                },
                step: p.step,
                since: Time(p.since),
                message: p.message.clone(),
                health: history_to_api(status.health.in_progress.get(&p.target)),
            })
            .collect(),
        failures: status
            .failures
            .iter()
            .map(|f| TargetFailure {
                target: f.target.to_string(),
                reason: f.reason.clone(),
                message: f.message.clone(),
                health: history_to_api(status.health.failed.get(&f.target)),
            })
            .collect(),
        annotation_problems: status
            .annotation_problems
            .iter()
            .map(|p| AnnotationProblem {
                target: p.target.to_string(),
                annotation: p.annotation.clone(),
                problem: p.problem.clone(),
            })
            .collect(),
        next_window: status.next_window.as_ref().map(interval_to_api),
        started_at: status.started_at.map(Time),
        completed_at: status.completed_at.map(Time),
        observed_generation: Some(generation),
        conditions: status.conditions.iter().map(condition_to_api).collect(),
        message: Some(status.message.clone()).filter(|m| !m.is_empty()),
        observed_retry: status.observed_retry,
        acknowledged_failures: status.acknowledged_failures,
        halt: status.halt.as_ref().map(|h| HaltStatus {
            reason: match h.reason {
                machine::HaltReason::CanaryFailed => HaltReasonName::CanaryFailed,
                machine::HaltReason::FailureBudgetExceeded => HaltReasonName::FailureBudgetExceeded,
                machine::HaltReason::Aborted => HaltReasonName::Aborted,
            },
            since: Time(h.since),
            pause_seen: h.pause_seen,
        }),
        notifications: outbox_to_api(&status.outbox),
    }
}

#[cfg(test)]
mod tests {
    use patchpilot_engine::{
        machine::{Action, Counts, Failure, Halt, HaltReason, InProgress, Status},
        rollout::{Phase, Step},
        window::Interval as Span,
    };
    use serde_json::json;

    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    /// A status with every field set, as the engine might decide it.
    fn full() -> Status {
        Status {
            phase: Phase::RollingBack,
            wave: Some(machine::WaveStatus {
                index: 2,
                name: "stage-1".into(),
                total: 4,
            }),
            counts: Counts {
                total: 12,
                excluded: 1,
                not_applicable: 2,
                up_to_date: 1,
                pending: 3,
                in_progress: 2,
                updated: 1,
                failed: 1,
                rolled_back: 1,
            },
            in_progress: vec![
                InProgress {
                    target: TargetId::node("general-1"),
                    action: Action::Rollback,
                    step: Step::Rebooting,
                    since: at("2026-11-28T00:05:00Z"),
                    message: Some("waiting for the node to reboot".into()),
                },
                InProgress {
                    target: TargetId::workload(WorkloadKind::Deployment, "shop", "web"),
                    action: Action::Apply,
                    step: Step::Verifying,
                    since: at("2026-11-28T00:06:00Z"),
                    message: None,
                },
            ],
            failures: vec![Failure {
                target: TargetId::node("general-2"),
                reason: "DrainTimeout".into(),
                message: "pods still on the node after 10m".into(),
            }],
            annotation_problems: vec![machine::AnnotationProblem {
                target: TargetId::node("general-3"),
                annotation: "patchpilot.dev/lock".into(),
                problem: "patchpilot.dev/lock \"\" is not a rollout's name".into(),
            }],
            next_window: Some(Span {
                start: at("2026-11-28T00:00:00Z"),
                end: at("2026-11-28T04:00:00Z"),
            }),
            started_at: Some(at("2026-11-28T00:00:01Z")),
            completed_at: None,
            conditions: vec![Condition {
                kind: ConditionType::Stalled,
                status: ConditionStatus::False,
                reason: "RollingBack".into(),
                message: String::new(),
                last_transition: at("2026-11-28T00:04:00Z"),
                observed_generation: 3,
            }],
            message: "rolling back (CanaryFailed); 0 targets rolled back".into(),
            observed_retry: 1,
            acknowledged_failures: 2,
            halt: Some(Halt {
                reason: HaltReason::CanaryFailed,
                since: at("2026-11-28T00:04:00Z"),
                pause_seen: true,
            }),
            health: machine::HealthHistory {
                in_progress: [(
                    TargetId::workload(WorkloadKind::Deployment, "shop", "web"),
                    vec![machine::CheckHistory {
                        check: "http /healthz".into(),
                        observations: vec![
                            observation("00:06:10", machine::CheckResult::Pass, Some(200), None),
                            observation(
                                "00:06:40",
                                machine::CheckResult::Fail,
                                Some(503),
                                Some("http://web.shop/healthz answered 503, expected [200]"),
                            ),
                        ],
                    }],
                )]
                .into(),
                failed: [(
                    TargetId::node("general-2"),
                    vec![machine::CheckHistory {
                        check: "prometheus up".into(),
                        observations: vec![machine::CheckObservation {
                            value: Some("0.5".into()),
                            ..observation("00:03:00", machine::CheckResult::Settling, None, None)
                        }],
                    }],
                )]
                .into(),
            },
            outbox: notify::Outbox {
                seq: 7,
                notices: vec![
                    notify::Notice {
                        seq: 6,
                        kind: notify::NoticeKind::Announcement,
                        at: at("2026-11-27T00:00:00Z"),
                        message: "os-1 v2 will start at 00:00".into(),
                        target: None,
                        opening: Some(Span {
                            start: at("2026-11-28T00:00:00Z"),
                            end: at("2026-11-28T04:00:00Z"),
                        }),
                    },
                    notify::Notice {
                        seq: 7,
                        kind: notify::NoticeKind::TargetFailed,
                        at: at("2026-11-28T00:04:00Z"),
                        message: "os-1: Node/general-2 failed".into(),
                        target: Some(TargetId::node("general-2")),
                        opening: None,
                    },
                ],
                announced: Some(notify::Announced {
                    opening: Span {
                        start: at("2026-11-28T00:00:00Z"),
                        end: at("2026-11-28T04:00:00Z"),
                    },
                    approval_needed: true,
                }),
                overdue_told: true,
            },
        }
    }

    fn observation(
        time: &str,
        result: machine::CheckResult,
        code: Option<u16>,
        reason: Option<&str>,
    ) -> machine::CheckObservation {
        machine::CheckObservation {
            at: at(&format!("2026-11-28T{time}Z")),
            result,
            code,
            value: None,
            reason: reason.map(str::to_owned),
        }
    }

    #[test]
    fn a_status_survives_the_round_trip_through_the_api_and_json() {
        for status in [full(), Status::default()] {
            let api = rollout_status_to_api(&status, 3);
            assert_eq!(api.observed_generation, Some(3));
            // As it is written and read back by the API server.
            let wire = serde_json::to_value(&api).unwrap();
            let read: PatchRolloutStatus = serde_json::from_value(wire).unwrap();
            assert_eq!(machine::Status::from(&read), status);
        }
    }

    #[test]
    fn instants_keep_whole_seconds_as_the_api_does() {
        // metav1.Time is written to the second, and the API server stores it so: the engine
        // reads back the instant truncated, never a later one.
        let mut status = full();
        status.in_progress[0].since = at("2026-11-28T00:05:00.999Z");
        let wire = serde_json::to_value(rollout_status_to_api(&status, 1)).unwrap();
        assert_eq!(wire["inProgress"][0]["since"], "2026-11-28T00:05:00Z");
        let read: PatchRolloutStatus = serde_json::from_value(wire).unwrap();
        assert_eq!(
            machine::Status::from(&read).in_progress[0].since,
            at("2026-11-28T00:05:00Z")
        );
    }

    #[test]
    fn progress_counts_updated_targets_over_the_eligible_ones() {
        // Eligible: pending 3 + in progress 2 + updated 1 + failed 1 + rolled back 1.
        let api = rollout_status_to_api(&full(), 1);
        assert_eq!(api.progress.as_deref(), Some("1/8"));
        assert_eq!(
            api.in_progress_summary.as_deref(),
            Some("general-1 Rebooting (rollback), shop/web Verifying")
        );
        let mut many = full();
        for i in 0..3 {
            let mut more = many.in_progress[1].clone();
            more.target = TargetId::node(&format!("gpu-{i}"));
            many.in_progress.push(more);
        }
        assert_eq!(
            rollout_status_to_api(&many, 1)
                .in_progress_summary
                .as_deref(),
            Some("general-1 Rebooting (rollback), shop/web Verifying, gpu-0 Verifying, +2 more")
        );
        let wire = serde_json::to_value(&api).unwrap();
        assert_eq!(wire["inProgress"][1]["target"], "Deployment/shop/web");
        // The health history goes with each target's entry, as `kubectl describe` shows it.
        assert_eq!(
            wire["inProgress"][1]["health"][0]["observations"][1],
            json!({"time": "2026-11-28T00:06:40Z", "result": "Fail", "statusCode": 503,
                   "reason": "http://web.shop/healthz answered 503, expected [200]"})
        );
        assert_eq!(wire["inProgress"][0].get("health"), None);
        assert_eq!(wire["failures"][0]["health"][0]["check"], "prometheus up");
        assert_eq!(wire["halt"]["reason"], "CanaryFailed");
        // An empty message is left out rather than written empty.
        let quiet = rollout_status_to_api(&Status::default(), 1);
        assert_eq!(quiet.message, None);
    }

    #[test]
    fn what_a_person_or_an_older_operator_wrote_wrong_is_dropped_not_fatal() {
        let read: PatchRolloutStatus = serde_json::from_value(json!({
            "phase": "Progressing",
            "targets": {"total": 1, "excluded": 0, "upToDate": 0, "pending": 1,
                        "inProgress": 0, "updated": 0, "failed": 0, "rolledBack": 0},
            "inProgress": [
                {"target": "not a target", "action": "apply", "step": "Locked",
                 "since": "2026-11-28T00:00:00Z"},
                {"target": "Deployment/web", "action": "apply", "step": "Locked",
                 "since": "2026-11-28T00:00:00Z"},
                {"target": "Node/general-1", "action": "apply", "step": "Locked",
                 "since": "2026-11-28T00:00:00Z"}
            ],
            "failures": [{"target": "", "reason": "X", "message": "y"}],
            "conditions": [{"type": "Ready", "status": "Maybe", "reason": "R", "message": "",
                            "lastTransitionTime": "2026-11-28T00:00:00Z"},
                           {"type": "Mood", "status": "True", "reason": "R", "message": "",
                            "lastTransitionTime": "2026-11-28T00:00:00Z"}]
        }))
        .unwrap();
        let status = machine::Status::from(&read);
        let targets: Vec<String> = status
            .in_progress
            .iter()
            .map(|p| p.target.to_string())
            .collect();
        assert_eq!(targets, ["Node/general-1"]);
        assert!(status.failures.is_empty());
        // An unknown status is Unknown; an unknown type is no condition of ours.
        assert_eq!(status.conditions.len(), 1);
        assert_eq!(status.conditions[0].status, ConditionStatus::Unknown);
    }

    #[test]
    fn conditions_round_trip() {
        let condition = full().conditions.remove(0);
        assert_eq!(
            condition_from_api(&condition_to_api(&condition)),
            Some(condition)
        );
    }

    fn policy_spec(text: &str) -> PatchPolicySpec {
        serde_yaml_ng::from_str(text).unwrap()
    }

    fn problems(spec: &PatchPolicySpec) -> Vec<String> {
        let problems = spec.to_engine_reporting_all("p").unwrap_err();
        problems.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn a_policy_reports_every_mistake_in_the_order_written() {
        let spec = policy_spec(
            "
targets: {workloads: {selector: {matchExpressions: [{key: app, operator: Exist}]}}}
patch:
  version: v2
  images: [{image: nginx}, {image: 'nginx:1.27'}, {image: redis}]
strategy:
  canary: {targets: 1, percent: 10}
  stages: [{percent: 50}, {percent: 25}, {percent: 0}]
  maxUnavailable: 0
drain: {timeout: 5m}
health: {checks: [{nodeReady: {}, podsReady: {}}, {prometheus: {url: 'http://p', query: up}}]}
approval: {mode: Manual, delay: 1h}
",
        );
        assert_eq!(
            problems(&spec),
            [
                "spec.targets.workloads.selector.matchExpressions[0]: operator \"Exist\" is not one of In, NotIn, Exists, \
                 DoesNotExist",
                "spec.patch.images[0].image: \"nginx\" needs a tag or a digest",
                "spec.patch.images[2].image: \"redis\" needs a tag or a digest",
                "spec.strategy.canary: takes targets or percent, not both",
                "spec.strategy.stages[1].percent: must be greater than the previous stage's 50%",
                "spec.strategy.stages[2].percent: 0 is not a percent from 1 to 100",
                "spec.strategy.maxUnavailable: must be at least 1 (or a percent): \
                 with 0 no target could ever start",
                "spec.health.checks[0]: exactly one of nodeReady, podsReady, http, prometheus \
                 or job is required",
                "spec.health.checks[1].prometheus: needs min, max or both",
                "spec.approval.delay: goes with mode Automatic",
            ]
        );
        // The first is what `to_engine` reports alone.
        assert_eq!(
            spec.to_engine("p").unwrap_err().field,
            "spec.targets.workloads.selector.matchExpressions[0]"
        );
    }

    #[test]
    fn a_check_that_needs_the_targets_is_left_out_when_they_are_wrong() {
        // Neither nodes nor workloads: whether drain and nodeReady fit cannot be judged, and
        // saying they do not would blame the wrong field.
        let spec = policy_spec(
            "
targets: {}
patch: {version: v2, updater: {template: {spec: {containers: [{name: u, image: 'u:1'}]}}}}
strategy: {maxUnavailable: 1}
drain: {timeout: 5m}
health: {checks: [{nodeReady: {}}]}
",
        );
        assert_eq!(
            problems(&spec),
            ["spec.targets: exactly one of nodes or workloads is required"]
        );
        // On workloads they are judged, and both named.
        let spec = policy_spec(
            "
targets: {workloads: {}}
patch: {version: v2, images: [{image: 'nginx:1.27'}]}
strategy: {maxUnavailable: 1}
drain: {timeout: 5m}
health: {checks: [{podsReady: {}}, {nodeReady: {}}]}
",
        );
        assert_eq!(
            problems(&spec),
            [
                "spec.drain: goes with targets.nodes",
                "spec.health.checks[1].nodeReady: goes with targets.nodes",
            ]
        );
        let spec = policy_spec(
            "
targets: {nodes: {}}
patch: {version: v2, images: [{image: 'nginx:1.27'}]}
strategy: {maxUnavailable: 1}
",
        );
        assert_eq!(
            problems(&spec),
            ["spec.patch.images: go with workload targets; this policy patches nodes"]
        );
    }
}
