//! The Job controller and the TTL-after-finished controller: Job pods (`<job>-<5 chars>`)
//! made from the template with the Job's labels, retried after failures with a doubling
//! delay until `backoffLimit`, stopped at `activeDeadlineSeconds`; the status with `active`,
//! `ready`, `succeeded`, `failed`, `startTime`, `completionTime` and the conditions of
//! Kubernetes 1.31+ (`SuccessCriteriaMet` then `Complete`, `FailureTarget` then `Failed`);
//! finished Jobs deleted `ttlSecondsAfterFinished` later, their pods with them. A pod
//! deleted before it finished counts as failed.
//!
//! Not simulated: indexed completions, success and pod failure policies, suspension beyond
//! creating no pods, the API server's defaulting of the Job's selector.

use jiff::{SignedDuration, Timestamp};
use serde_json::{Map, Value, json};

use super::{
    informer::{Change, Kind},
    meta::{self, Key},
    sim::Sim,
    template::{PodName, pod_from_template, set_counts},
    work::Work,
    write::{CONTROLLERS, Part},
};
use crate::json::{Json, Object};

/// The delay before a Job's first retry, as the Job controller has it.
const BACKOFF: SignedDuration = SignedDuration::from_secs(10);
/// The longest delay between retries, as the Job controller caps it.
const MAX_BACKOFF: SignedDuration = SignedDuration::from_secs(360);

/// How a Job ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Outcome {
    /// Enough pods succeeded.
    Complete,
    /// Too many pods failed.
    BackoffLimitExceeded,
    /// It ran longer than `activeDeadlineSeconds`.
    DeadlineExceeded,
}

impl Outcome {
    /// The conditions recording the outcome: the target condition, then the final one.
    fn conditions(self, now: &str) -> [Value; 2] {
        let (target, done, reason, message) = match self {
            Outcome::Complete => (
                "SuccessCriteriaMet",
                "Complete",
                "CompletionsReached",
                "Reached expected number of succeeded pods",
            ),
            Outcome::BackoffLimitExceeded => (
                "FailureTarget",
                "Failed",
                "BackoffLimitExceeded",
                "Job has reached the specified backoff limit",
            ),
            Outcome::DeadlineExceeded => (
                "FailureTarget",
                "Failed",
                "DeadlineExceeded",
                "Job was active longer than specified deadline",
            ),
        };
        [target, done].map(|kind| {
            json!({
                "type": kind,
                "status": "True",
                "lastProbeTime": now,
                "lastTransitionTime": now,
                "reason": reason,
                "message": message,
            })
        })
    }
}

/// When a Job finished, if it did: its `Complete` or `Failed` condition.
pub(super) fn finished_at(job: &Json) -> Option<Timestamp> {
    ["Complete", "Failed"].iter().find_map(|kind| {
        let condition = meta::condition(job, kind).filter(|c| c["status"] == "True")?;
        meta::parse_time(&job["status"]["completionTime"])
            .or_else(|| meta::parse_time(&condition["lastTransitionTime"]))
            .or(Some(Timestamp::MIN))
    })
}

/// How the Job's pods stand.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct JobPods {
    /// Running or waiting to run.
    pub active: i64,
    /// Active and Ready.
    pub ready: i64,
    /// Succeeded.
    pub succeeded: i64,
    /// Failed.
    pub failed: i64,
    /// When the last pod failed.
    pub last_failure: Option<Timestamp>,
}

/// The outcome a Job reaches with these pods at `now`, if any.
pub(super) fn outcome(
    spec: &Json,
    pods: &JobPods,
    started: Timestamp,
    now: Timestamp,
) -> Option<Outcome> {
    let completions = meta::count(&spec["completions"], 1);
    if pods.succeeded >= completions {
        return Some(Outcome::Complete);
    }
    if pods.failed > meta::count(&spec["backoffLimit"], 6) {
        return Some(Outcome::BackoffLimitExceeded);
    }
    let deadline = spec["activeDeadlineSeconds"]
        .as_i64()
        .map(SignedDuration::from_secs);
    if deadline.is_some_and(|d| started.saturating_add(d).is_ok_and(|due| due <= now)) {
        return Some(Outcome::DeadlineExceeded);
    }
    None
}

/// The delay before the next pod after `failed` failures: 10 s doubling, at most 6 min.
pub(super) fn backoff(base: SignedDuration, failed: i64) -> SignedDuration {
    if failed <= 0 {
        return SignedDuration::ZERO;
    }
    let factor = 1i32 << (failed - 1).clamp(0, 20);
    base.checked_mul(factor)
        .unwrap_or(MAX_BACKOFF)
        .min(MAX_BACKOFF)
}

impl Sim {
    /// Reconciles a Job.
    pub fn sync_job(&mut self, key: &Key) {
        let Some(job) = self.cache.get(Kind::Job, key).cloned() else {
            return;
        };
        if meta::terminating(&job) {
            return;
        }
        let now = self.now();
        if let Some(finished) = finished_at(&job) {
            self.expire(key, &job, finished, now);
            return;
        }
        let spec = &job["spec"];
        let pods = self.job_pods(&job);
        let started = meta::parse_time(&job["status"]["startTime"]).unwrap_or(now);
        let outcome = outcome(spec, &pods, started, now);
        if outcome.is_some() {
            for (pod, _) in self
                .cache
                .pods_of(meta::uid(&job))
                .filter(|(_, p)| meta::active(p))
                .map(|(k, p)| (k.clone(), p.clone()))
                .collect::<Vec<_>>()
            {
                self.delete(Kind::Pod, &pod, None);
            }
        } else if spec["suspend"] != true {
            let completions = meta::count(&spec["completions"], 1);
            let parallelism = meta::count(&spec["parallelism"], 1);
            let wanted = parallelism.min(completions - pods.succeeded) - pods.active;
            let delay = backoff(BACKOFF, pods.failed);
            let ready_at = pods
                .last_failure
                .map_or(now, |at| at.saturating_add(delay).unwrap_or(at));
            if wanted > 0 && ready_at > now {
                self.timers.schedule(Work::Job(key.clone()), ready_at);
            } else {
                for _ in 0..wanted.max(0) {
                    self.create_job_pod(&job);
                }
            }
            if let Some(deadline) = spec["activeDeadlineSeconds"].as_i64() {
                let due = started
                    .saturating_add(SignedDuration::from_secs(deadline))
                    .unwrap_or(started);
                self.timers.schedule(Work::Job(key.clone()), due);
            }
        }
        let pods = self.job_pods(&job);
        let status = job_status(&job, &pods, outcome, started, now);
        if status != job["status"] {
            self.update(Kind::Job, key, CONTROLLERS, Part::Status, |job| {
                job["status"] = status
            });
        }
        if let (Some(_), Some(latest)) = (outcome, self.cache.get(Kind::Job, key).cloned()) {
            self.expire(key, &latest, now, now);
        }
    }

    /// Remembers a Job's pod deleted before it finished: it counts as failed, as the Job
    /// controller's pod tracking counts it.
    pub fn note_lost_job_pod(&mut self, change: &Change) {
        let (Some(old), None) = (&change.old, &change.new) else {
            return;
        };
        if meta::finished(old) {
            return;
        }
        let Some(owner) = meta::controller_of(old).filter(|o| o.kind == "Job") else {
            return;
        };
        let job = self
            .cache
            .get(Kind::Job, &(change.key.0.clone(), owner.name.to_owned()));
        if job.is_some_and(|job| meta::uid(job) == owner.uid && finished_at(job).is_none()) {
            *self.lost_job_pods.entry(owner.uid.to_owned()).or_default() += 1;
        }
    }

    /// Counts a Job's pods; counts never go down (pods of a Job may be deleted).
    fn job_pods(&self, job: &Json) -> JobPods {
        let mut pods = JobPods::default();
        for (_, pod) in self.cache.pods_of(meta::uid(job)) {
            match meta::phase(pod) {
                "Succeeded" => pods.succeeded += 1,
                "Failed" => {
                    pods.failed += 1;
                    let at =
                        pod["status"]["containerStatuses"][0]["state"]["terminated"]["finishedAt"]
                            .clone();
                    let at = meta::parse_time(&at).unwrap_or(Timestamp::MIN);
                    pods.last_failure = Some(pods.last_failure.map_or(at, |l| l.max(at)));
                }
                _ if !meta::terminating(pod) => {
                    pods.active += 1;
                    pods.ready += i64::from(meta::pod_ready(pod));
                }
                _ => {}
            }
        }
        pods.failed += self.lost_job_pods.get(meta::uid(job)).copied().unwrap_or(0);
        let recorded = |field: &str| job["status"][field].as_i64().unwrap_or(0);
        pods.succeeded = pods.succeeded.max(recorded("succeeded"));
        pods.failed = pods.failed.max(recorded("failed"));
        pods
    }

    /// Creates one pod of a Job.
    fn create_job_pod(&mut self, job: &Json) {
        let name = meta::name(job);
        let uid = meta::uid(job);
        let labels = [
            ("batch.kubernetes.io/controller-uid", uid),
            ("controller-uid", uid),
            ("batch.kubernetes.io/job-name", name),
            ("job-name", name),
        ];
        let prefix = format!("{name}-");
        let pod = pod_from_template(
            job,
            &job["spec"]["template"].to_value(),
            PodName::Generated(&prefix),
            &labels,
            "Never",
        );
        let _ = self.create(Kind::Pod, meta::namespace(job), pod, CONTROLLERS);
    }

    /// Deletes a finished Job once `ttlSecondsAfterFinished` has passed, pods and all.
    fn expire(&mut self, key: &Key, job: &Json, finished: Timestamp, now: Timestamp) {
        let Some(ttl) = job["spec"]["ttlSecondsAfterFinished"]
            .as_i64()
            .filter(|t| *t >= 0)
        else {
            return;
        };
        let due = finished
            .saturating_add(SignedDuration::from_secs(ttl))
            .unwrap_or(finished);
        if now >= due {
            self.delete(Kind::Job, key, None);
        } else {
            self.timers.schedule(Work::Job(key.clone()), due);
        }
    }
}

/// A Job's status from its pods, with the conditions of its outcome.
fn job_status(
    job: &Json,
    pods: &JobPods,
    outcome: Option<Outcome>,
    started: Timestamp,
    now: Timestamp,
) -> Value {
    let mut status: Map<String, Value> = job["status"]
        .as_object()
        .map(Object::to_map)
        .unwrap_or_default();
    let stamp = meta::time(now);
    let active = if outcome.is_some() { 0 } else { pods.active };
    set_counts(
        &mut status,
        &[
            ("active", active, false),
            ("succeeded", pods.succeeded, false),
            ("failed", pods.failed, false),
            (
                "ready",
                if outcome.is_some() { 0 } else { pods.ready },
                true,
            ),
        ],
    );
    if job["spec"]["suspend"] != true {
        status.insert("startTime".into(), json!(meta::time(started)));
    }
    status.insert("uncountedTerminatedPods".into(), json!({}));
    if let Some(outcome) = outcome {
        let mut conditions = meta::conditions_of(job);
        conditions.extend(outcome.conditions(&stamp));
        status.insert("conditions".into(), Value::Array(conditions));
        if outcome == Outcome::Complete {
            status.insert("completionTime".into(), json!(stamp));
        }
    }
    Value::Object(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Test objects as the cluster follows them.
    macro_rules! json {
        ($($t:tt)+) => {
            crate::json::Json::from(serde_json::json!($($t)+))
        };
    }

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + s).unwrap()
    }

    #[test]
    fn jobs_end_by_completions_backoff_limit_or_deadline() {
        let pods = |succeeded, failed| JobPods {
            succeeded,
            failed,
            ..JobPods::default()
        };
        let spec = json!({"backoffLimit": 1, "activeDeadlineSeconds": 60});
        assert_eq!(
            outcome(&spec, &pods(1, 0), t(0), t(1)),
            Some(Outcome::Complete)
        );
        assert_eq!(outcome(&spec, &pods(0, 1), t(0), t(1)), None);
        assert_eq!(
            outcome(&spec, &pods(0, 2), t(0), t(1)),
            Some(Outcome::BackoffLimitExceeded)
        );
        assert_eq!(
            outcome(&spec, &pods(0, 0), t(0), t(60)),
            Some(Outcome::DeadlineExceeded)
        );
        assert_eq!(outcome(&json!({}), &pods(0, 6), t(0), t(1)), None);
        assert_eq!(
            outcome(&json!({}), &pods(0, 7), t(0), t(1)),
            Some(Outcome::BackoffLimitExceeded)
        );
    }

    #[test]
    fn retries_back_off_doubling_up_to_six_minutes() {
        let base = SignedDuration::from_secs(10);
        assert_eq!(backoff(base, 0), SignedDuration::ZERO);
        assert_eq!(backoff(base, 1), base);
        assert_eq!(backoff(base, 3), SignedDuration::from_secs(40));
        assert_eq!(backoff(base, 30), MAX_BACKOFF);
    }

    #[test]
    fn a_finished_job_reports_its_conditions() {
        let job = json!({"status": {"active": 1}});
        let pods = JobPods {
            succeeded: 1,
            ..JobPods::default()
        };
        let status = job_status(&job, &pods, Some(Outcome::Complete), t(0), t(5));
        let holder = json!({"status": status.clone()});
        assert!(meta::condition_true(&holder, "SuccessCriteriaMet"));
        assert_eq!(
            meta::condition(&holder, "Complete").unwrap()["reason"],
            "CompletionsReached"
        );
        assert_eq!(status["completionTime"], meta::time(t(5)));
        assert!(status.get("active").is_none());
        assert_eq!(finished_at(&holder), Some(t(5)));
        let failed = job_status(
            &job,
            &JobPods {
                failed: 7,
                ..JobPods::default()
            },
            Some(Outcome::BackoffLimitExceeded),
            t(0),
            t(5),
        );
        let holder = json!({"status": failed});
        assert_eq!(
            meta::condition(&holder, "Failed").unwrap()["reason"],
            "BackoffLimitExceeded"
        );
        assert!(holder["status"].get("completionTime").is_none());
    }
}
