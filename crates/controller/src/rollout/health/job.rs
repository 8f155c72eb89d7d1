//! `job` checks: a Job per target being verified, started by the rollout controller and
//! observed with the target's other state (`observe::check_jobs`), handed over in
//! [`Subject::jobs`]. The check passes when its Job succeeds.

use super::{CheckVerdict, Subject};

/// The verdict of the `job` check at `index` of the checks: settling while its Job runs (or
/// has not been seen yet), then the Job's outcome.
pub(super) fn job_verdict(subject: &Subject<'_>, index: usize) -> CheckVerdict {
    match subject.jobs.iter().find(|(i, _)| *i == index) {
        Some((_, Some(Ok(())))) => CheckVerdict::Pass,
        Some((_, Some(Err(why)))) => CheckVerdict::Fail(why.clone()),
        _ => CheckVerdict::Settling("the check's Job is running".into(), None),
    }
}

#[cfg(test)]
mod tests {
    use patchpilot_api::HealthCheck;
    use serde_json::json;

    use super::{
        super::{client::http_client, run, testkit::*},
        *,
    };

    #[tokio::test]
    async fn run_waits_for_job_checks_and_reports_their_failures() {
        let http = http_client();
        let target = web();
        let job = HealthCheck {
            job: Some(
                serde_json::from_value(json!({"template": {"spec": {"containers": []}}})).unwrap(),
            ),
            ..Default::default()
        };
        let checks = [job.clone(), job];
        let jobs = [
            (0, None),
            (1, Some(Err("the pod failed: exit code 1".to_owned()))),
        ];
        let facts = run(
            &http,
            &checks,
            &Subject {
                jobs: &jobs,
                ..subject(&target, &[])
            },
        )
        .await;
        assert_eq!(facts.reasons, ["job: the pod failed: exit code 1"]);
        assert_eq!(facts.settling, ["job: the check's Job is running"]);
        assert_eq!(facts.settles_by, None);
    }
}
