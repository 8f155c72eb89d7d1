//! One target's way from lock to release: the node steps of SPEC 3.3 and the workload steps
//! of SPEC 3.4, each with its timeout, then the health checks.

use jiff::Timestamp;

use super::{
    Action, Change, Fatal, HealthFacts, InProgress, Input, JobState, Live, NodeFacts, Observed,
    Record, RecordState, TargetAction, WorkloadFacts, WorkloadRollout,
};
use crate::{image, naming, rollout::Step, target::TargetId, units::Duration};

/// What happens next to a target in progress.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Next {
    /// The step it is in (after `action`, if any).
    pub step: Step,
    /// The action to take now.
    pub action: Option<TargetAction>,
    /// What the step waits for.
    pub message: Option<String>,
    /// When to look again even if nothing changes.
    pub until: Option<Timestamp>,
    /// The target's work ends: its final record (written by `action`, a `Release`).
    pub finished: Option<RecordState>,
}

impl Next {
    fn wait(step: Step, message: impl Into<String>, until: Option<Timestamp>) -> Self {
        Next {
            step,
            action: None,
            message: Some(message.into()),
            until,
            finished: None,
        }
    }

    fn act(
        step: Step,
        action: TargetAction,
        message: Option<String>,
        until: Option<Timestamp>,
    ) -> Self {
        Next {
            step,
            action: Some(action),
            message,
            until,
            finished: None,
        }
    }
}

/// How a target's work ended.
enum End {
    Success,
    Failure {
        reason: &'static str,
        message: String,
    },
}

/// What the step machine knows beyond the target itself.
pub(super) struct Context<'a> {
    pub input: &'a Input<'a>,
    /// What the status showed last time for this target: its step, since when, and why.
    pub remembered: Option<&'a InProgress>,
}

impl Context<'_> {
    fn now(&self) -> Timestamp {
        self.input.now
    }

    fn after(&self, since: Timestamp, duration: Duration) -> Timestamp {
        since.saturating_add(duration.signed()).unwrap_or(since)
    }

    /// When the step began: kept from last time if the step is the same, else now.
    pub fn since(&self, step: Step) -> Timestamp {
        match self.remembered {
            Some(remembered) if remembered.step == step => remembered.since,
            _ => self.now(),
        }
    }

    fn recheck(&self, until: Timestamp) -> Timestamp {
        match self.input.policy.health.recheck {
            Some(every) => until.min(self.after(self.now(), every)),
            None => until,
        }
    }
}

/// Advances a target the rollout holds, from its record and what was observed of it.
pub(super) fn advance(
    ctx: &Context<'_>,
    target: &TargetId,
    record: &Record,
    observed: Option<&Observed>,
) -> Next {
    let action = record.state.in_progress().unwrap_or(Action::Apply);
    let Some(observed) = observed else {
        // Not observed yet (a cache still filling, after a restart): the status keeps what
        // it said, rather than flapping to a "waiting" message and back.
        return match ctx.remembered {
            Some(remembered) => Next::wait(
                remembered.step,
                remembered
                    .message
                    .clone()
                    .unwrap_or_else(|| "waiting to observe the target".into()),
                None,
            ),
            None => Next::wait(Step::Locked, "waiting to observe the target", None),
        };
    };
    match (&observed.live, &ctx.input.rollout.patch.change) {
        (Live::Node(node), Change::Updater(updater)) => node_step(
            ctx,
            target,
            record,
            action,
            node,
            observed.health.as_ref(),
            updater,
        ),
        (Live::Workload(workload), Change::Images(patches)) => {
            let desired = match action {
                Action::Apply => image::patched(&record.images, patches),
                Action::Rollback => record.images.clone(),
            };
            workload_step(
                ctx,
                target,
                record,
                workload,
                observed.health.as_ref(),
                desired,
            )
        }
        (Live::Node(_), Change::Images(_)) | (Live::Workload(_), Change::Updater(_)) => {
            let end = End::Failure {
                reason: "InvalidTarget",
                message: "the patch does not fit the target's kind".into(),
            };
            finish(ctx, target, record, end, false)
        }
    }
}

fn node_step(
    ctx: &Context<'_>,
    target: &TargetId,
    record: &Record,
    action: Action,
    node: &NodeFacts,
    health: Option<&HealthFacts>,
    updater: &super::Updater,
) -> Next {
    let now = ctx.now();
    let rollout = ctx.input.rollout;
    let uncordon = record.cordoned && node.unschedulable;
    let Some(job) = &node.updater else {
        if node.pods_to_evict.is_empty() {
            let (_, node_name) = target.as_str().split_at("Node/".len());
            let job = naming::updater_job_name(
                &rollout.name,
                node_name,
                action.as_str(),
                record.attempt,
                record.lock_token(),
            );
            let run = TargetAction::RunUpdater {
                target: target.clone(),
                job,
                action,
                version: rollout.patch.version.clone(),
                previous_version: record.previous_version.clone(),
            };
            return Next::act(
                Step::Updating,
                run,
                Some("the updater is starting".into()),
                None,
            );
        }
        let drain = ctx.input.policy.drain;
        let deadline = ctx.after(record.since, drain.timeout);
        let remaining = describe_pods(node);
        if now < deadline {
            let retry = next_retry(record.since, now).min(deadline);
            let message = drain_message(node, &remaining);
            return Next::act(
                Step::Draining,
                TargetAction::Drain {
                    target: target.clone(),
                },
                Some(message),
                Some(retry),
            );
        }
        if drain.force {
            let message = format!("drain timed out; deleting {remaining}");
            return Next::act(
                Step::Draining,
                TargetAction::ForceDrain {
                    target: target.clone(),
                },
                Some(message),
                None,
            );
        }
        let message = format!(
            "pods still on the node after {}: {remaining}",
            drain.timeout
        );
        return finish(
            ctx,
            target,
            record,
            End::Failure {
                reason: "DrainTimeout",
                message,
            },
            uncordon,
        );
    };
    match job.state {
        JobState::Running => Next::wait(Step::Updating, "the updater is running", None),
        JobState::Failed => {
            let message = job
                .message
                .clone()
                .unwrap_or_else(|| "the updater Job failed".into());
            let mut record = record.clone();
            record.applied = true;
            finish(
                ctx,
                target,
                &record,
                End::Failure {
                    reason: "UpdaterFailed",
                    message,
                },
                uncordon,
            )
        }
        JobState::Succeeded => {
            let finished = job.finished.unwrap_or(record.since);
            let rebooted =
                !updater.expect_reboot || record.boot_id.as_deref() != Some(node.boot_id.as_str());
            let mut record = record.clone();
            record.applied = true;
            if !rebooted || (updater.expect_reboot && !node.ready) {
                let deadline = ctx.after(finished, updater.reboot_timeout);
                if now >= deadline {
                    let message = format!(
                        "the node did not come back within {} of the updater",
                        updater.reboot_timeout
                    );
                    return finish(
                        ctx,
                        target,
                        &record,
                        End::Failure {
                            reason: "RebootTimeout",
                            message,
                        },
                        uncordon,
                    );
                }
                let message = if rebooted {
                    "waiting for the node to become Ready"
                } else {
                    "waiting for the node to reboot"
                };
                return Next::wait(Step::Rebooting, message, Some(deadline));
            }
            if uncordon {
                let action = TargetAction::Uncordon {
                    target: target.clone(),
                    record,
                };
                return Next::act(Step::Uncordoning, action, None, None);
            }
            let ready_since = if updater.expect_reboot {
                node.ready_since
            } else {
                None
            };
            let verify_since = ready_since.map_or(finished, |ready| ready.max(finished));
            verify(ctx, target, &record, health, verify_since, false)
        }
    }
}

fn workload_step(
    ctx: &Context<'_>,
    target: &TargetId,
    record: &Record,
    workload: &WorkloadFacts,
    health: Option<&HealthFacts>,
    desired: Vec<image::ContainerImage>,
) -> Next {
    let mut record = record.clone();
    record.applied = true;
    if workload.images != desired {
        let action = TargetAction::SetImages {
            target: target.clone(),
            images: desired,
        };
        return Next::act(
            Step::RollingOut,
            action,
            Some("setting the images".into()),
            None,
        );
    }
    match &workload.rollout {
        WorkloadRollout::Failed(message) => {
            let end = End::Failure {
                reason: "ProgressDeadlineExceeded",
                message: message.clone(),
            };
            finish(ctx, target, &record, end, false)
        }
        WorkloadRollout::Progressing(message) => {
            // The new pods say they will never become Ready: no use waiting for the rollout.
            if let Some(fatal) = health.and_then(|h| h.fatal.as_ref()) {
                return finish(ctx, target, &record, fatal_end(fatal), false);
            }
            let deadline = ctx.after(record.since, ctx.input.policy.health.timeout);
            if ctx.now() >= deadline {
                let message = format!(
                    "the rollout did not complete within {}: {message}",
                    ctx.input.policy.health.timeout
                );
                return finish(
                    ctx,
                    target,
                    &record,
                    End::Failure {
                        reason: "RolloutTimeout",
                        message,
                    },
                    false,
                );
            }
            Next::wait(Step::RollingOut, message.clone(), Some(deadline))
        }
        WorkloadRollout::Complete => {
            let verify_since = ctx.since(Step::Verifying);
            verify(ctx, target, &record, health, verify_since, false)
        }
    }
}

/// The failure a fatal health signal ends the target's work with: its reason, as
/// Kubernetes spells it, and where it was seen.
fn fatal_end(fatal: &Fatal) -> End {
    End::Failure {
        reason: fatal.reason.as_str(),
        message: fatal.message.clone(),
    }
}

/// The health steps: healthy within `health.timeout` of `verify_since`, then healthy for
/// `health.soak`; a failing check during the soak fails the target, and so does a fatal
/// one at any time.
fn verify(
    ctx: &Context<'_>,
    target: &TargetId,
    record: &Record,
    health: Option<&HealthFacts>,
    verify_since: Timestamp,
    uncordon: bool,
) -> Next {
    let now = ctx.now();
    let policy = ctx.input.policy;
    let soaking_since = ctx
        .remembered
        .filter(|p| p.step == Step::Soaking)
        .map(|p| p.since);
    let Some(health) = health else {
        return Next::wait(Step::Verifying, "waiting for the health checks", None);
    };
    if let Some(fatal) = &health.fatal {
        return finish(ctx, target, record, fatal_end(fatal), uncordon);
    }
    if health.is_healthy() {
        // The soak starts now, as the status will keep it (whole seconds): its end, said in
        // the message, is then the same when it is computed again from the status.
        let start = soaking_since.unwrap_or_else(|| to_the_second(now));
        let end = ctx.after(start, policy.health.soak);
        if now >= end {
            return finish(ctx, target, record, End::Success, uncordon);
        }
        return Next::wait(
            Step::Soaking,
            format!("healthy; soaking until {end}"),
            Some(ctx.recheck(end)),
        );
    }
    let reasons = health.summary();
    if let Some(start) = soaking_since {
        if health.fails() {
            let message = format!("a health check failed during the soak: {reasons}");
            return finish(
                ctx,
                target,
                record,
                End::Failure {
                    reason: "Unhealthy",
                    message,
                },
                uncordon,
            );
        }
        // Settling during the soak is no failure; the soak ends only once it has settled.
        let end = ctx.after(start, policy.health.soak);
        let until = if now < end {
            Some(health.settles_by.map_or(end, |by| by.min(end)))
        } else {
            health.settles_by
        };
        return Next::wait(
            Step::Soaking,
            format!("soaking until {end}; settling: {reasons}"),
            until.map(|u| ctx.recheck(u)),
        );
    }
    let deadline = ctx.after(verify_since, policy.health.timeout);
    if now >= deadline {
        let message = format!("not healthy within {}: {reasons}", policy.health.timeout);
        return finish(
            ctx,
            target,
            record,
            End::Failure {
                reason: "HealthTimeout",
                message,
            },
            uncordon,
        );
    }
    let until = health.settles_by.map_or(deadline, |by| by.min(deadline));
    Next::wait(
        Step::Verifying,
        format!("waiting to be healthy: {reasons}"),
        Some(ctx.recheck(until)),
    )
}

/// Ends the target's work: one `Release` writing the final record, the version and the lock.
fn finish(ctx: &Context<'_>, target: &TargetId, record: &Record, end: End, uncordon: bool) -> Next {
    let rollout = ctx.input.rollout;
    let rolling_back = record.state == RecordState::RollingBack;
    let (state, version, reason, message) = match (end, rolling_back) {
        (End::Success, false) => (
            RecordState::Updated,
            Some(rollout.patch.version.clone()),
            None,
            None,
        ),
        // A rolled-back target that had failed still says why.
        (End::Success, true) => (
            RecordState::RolledBack,
            record.previous_version.clone(),
            record.reason.clone(),
            record.message.clone(),
        ),
        (End::Failure { reason, message }, false) => (
            RecordState::Failed,
            current_version(ctx, target),
            Some(reason.to_owned()),
            Some(message),
        ),
        (End::Failure { reason, message }, true) => (
            RecordState::RollbackFailed,
            current_version(ctx, target),
            Some(reason.to_owned()),
            Some(message),
        ),
    };
    let final_record = Record {
        state,
        since: ctx.now(),
        reason,
        message: message.clone(),
        ..record.clone()
    };
    let release = TargetAction::Release {
        target: target.clone(),
        record: final_record,
        version,
        uncordon,
    };
    Next {
        step: Step::Releasing,
        action: Some(release),
        message,
        until: None,
        finished: Some(state),
    }
}

/// The version annotation a target carries now (kept as it is when its work fails).
fn current_version(ctx: &Context<'_>, target: &TargetId) -> Option<String> {
    let policy = &ctx.input.policy.name;
    ctx.input
        .candidates
        .iter()
        .find(|c| &c.id == target)
        .and_then(|c| c.annotations.get(&crate::keys::version(policy)).cloned())
}

/// The pods left to evict, with the budgets that refused them, for messages.
/// What a drain in progress is doing: `evicting 2 pod(s): …`, or, when every pod left is
/// held (by a PodDisruptionBudget, say), what holds them: `waiting: PodDisruptionBudget
/// shop/web allows 0 disruptions; 1 pod(s): shop/web-1 (…)`.
fn drain_message(node: &NodeFacts, remaining: &str) -> String {
    let all_held = !node.pods_to_evict.is_empty()
        && node
            .pods_to_evict
            .iter()
            .all(|pod| node.blocked.iter().any(|(held, _)| held == pod));
    if !all_held {
        return format!("evicting {remaining}");
    }
    let mut causes: Vec<&str> = node.blocked.iter().map(|(_, why)| why.as_str()).collect();
    causes.sort_unstable();
    causes.dedup();
    format!("waiting: {}; {remaining}", causes.join(", "))
}

fn describe_pods(node: &NodeFacts) -> String {
    const SHOWN: usize = 5;
    let mut parts: Vec<String> = node
        .pods_to_evict
        .iter()
        .take(SHOWN)
        .map(
            |pod| match node.blocked.iter().find(|(blocked, _)| blocked == pod) {
                Some((_, why)) => format!("{pod} ({why})"),
                None => pod.clone(),
            },
        )
        .collect();
    if node.pods_to_evict.len() > SHOWN {
        parts.push(format!("and {} more", node.pods_to_evict.len() - SHOWN));
    }
    format!("{} pod(s): {}", node.pods_to_evict.len(), parts.join(", "))
}

/// The next eviction retry after `now` for a drain that began at `since`: 5 s after the
/// start, then doubling intervals, at most a minute apart.
fn next_retry(since: Timestamp, now: Timestamp) -> Timestamp {
    let mut at = since;
    let mut interval = Duration::from_secs(5);
    while at <= now {
        at = at.saturating_add(interval.signed()).unwrap_or(now);
        interval = Duration::from_millis((interval.as_millis() * 2).min(60_000));
    }
    at
}

/// `instant` to the whole second, as `metav1.Time` keeps it.
fn to_the_second(instant: Timestamp) -> Timestamp {
    Timestamp::from_second(instant.as_second()).unwrap_or(instant)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eviction_retries_back_off_to_a_minute() {
        let since: Timestamp = "2026-11-22T00:00:00Z".parse().unwrap();
        let at = |secs: i64| since + jiff::SignedDuration::from_secs(secs);
        assert_eq!(next_retry(since, since), at(5));
        assert_eq!(next_retry(since, at(5)), at(15));
        assert_eq!(next_retry(since, at(15)), at(35));
        assert_eq!(next_retry(since, at(75)), at(135));
        assert_eq!(next_retry(since, at(135)), at(195));
    }
}
