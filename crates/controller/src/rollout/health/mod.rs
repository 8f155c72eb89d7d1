//! Health checks (SPEC 2.2): `nodeReady`, `podsReady`, `http`, `prometheus` and `job`, each
//! observation with its reason.
//!
//! One module per kind of check (`node`, `pods`, `http`, `prometheus`, `job`), each judging
//! a [`Subject`] into a verdict; [`run`] runs them and combines their verdicts into the
//! engine's [`HealthFacts`], each check's outcome with it for the status's health history
//! (named by `naming`). `client` carries the requests of `http` and `prometheus` checks.

mod client;
mod http;
mod job;
mod naming;
mod node;
mod pods;
mod prometheus;
#[cfg(test)]
mod testkit;

use std::time::Duration as StdDuration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::Node;
use patchpilot_engine::{
    image::ContainerImage,
    machine::{CheckOutcome, CheckResult, Fatal, FatalReason, HealthFacts},
    target::{TargetId, TargetKind},
};

use patchpilot_api::HealthCheck;

pub use client::{HttpBody, HttpClient, HttpError, HttpTransport, http_client};
pub use naming::check_names;
pub use node::node_ready;
pub use pods::pod_ready;

/// What the checks look at.
pub struct Subject<'a> {
    /// The target.
    pub target: &'a TargetId,
    /// The node, for nodes.
    pub node: Option<&'a Node>,
    /// The pods on the node, or of the workload.
    pub pods: &'a [std::sync::Arc<crate::pod::PodFacts>],
    /// Workloads: whether their own rollout is complete, and if not why.
    pub rollout: Result<(), String>,
    /// Healthy since when, if soaking: container restarts after it fail `podsReady`.
    pub soaking_since: Option<Timestamp>,
    /// Results of the `job` checks, by index: `None` while running.
    pub jobs: &'a [(usize, Option<Result<(), String>>)],
    /// Now.
    pub now: Timestamp,
    /// How long a pod may take to turn Ready after it was scheduled (`health.timeout`).
    pub startup: SignedDuration,
    /// Which pods the target's change made, whose fatal signals are its doing.
    pub changed: Changed<'a>,
}

/// Which pods' fatal signals (a container waiting in `CrashLoopBackOff`, an image that
/// cannot be pulled…) say that the change being made will not become healthy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Changed<'a> {
    /// A workload: its pods that run the template's images (the revision being rolled out:
    /// the new images when applying, the recorded ones when rolling back). Old pods still
    /// crash-looping during a rollback are not the rollback's doing.
    Revision(&'a [ContainerImage]),
    /// A node: what happened on it since the updater's change took effect (the Job's end,
    /// or the node Ready again after its reboot): pods created since, and containers that
    /// exited since. `None` while the updater has not finished: nothing is its doing yet.
    Since(Option<Timestamp>),
}

/// The outcome of one check.
#[derive(Debug, PartialEq, Eq)]
enum CheckVerdict {
    Pass,
    Fail(String),
    /// Not passing yet, for a reason expected to pass on its own, until the instant given.
    Settling(String, Option<Timestamp>),
    /// Failing, and it will not pass however long one waits.
    Fatal(FatalReason, String),
}

impl From<Result<(), CheckError>> for CheckVerdict {
    fn from(result: Result<(), CheckError>) -> Self {
        result.map_or_else(
            |e| CheckVerdict::Fail(e.to_string()),
            |()| CheckVerdict::Pass,
        )
    }
}

/// Why a `nodeReady`, `http` or `prometheus` check failed. Its text is the reason that
/// status and events show after the check's name.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// `nodeReady`: the node is not in the cache.
    #[error("the node is not observed")]
    NodeNotObserved,
    /// `nodeReady`: the node's `Ready` condition is not `True`.
    #[error("Ready is not True")]
    NodeNotReady,
    /// `nodeReady`: a pressure condition of the node is `True`.
    #[error("{condition} is True")]
    NodePressure {
        /// The condition: `MemoryPressure`, `DiskPressure` or `PIDPressure`.
        condition: &'static str,
    },
    /// The URL to ask is not a URL.
    #[error("{url}: {source}")]
    InvalidUrl {
        /// The URL, the target's name in it.
        url: String,
        /// Why it is not one.
        #[source]
        source: ::http::uri::InvalidUri,
    },
    /// The request failed: no connection, a name that does not resolve, TLS, a connection
    /// closed before the answer.
    #[error("{url}: {source}")]
    Request {
        /// The URL asked.
        url: String,
        /// The transport's error.
        #[source]
        source: HttpError,
    },
    /// No answer within the check's timeout.
    #[error("{url}: no answer within {timeout:?}")]
    Timeout {
        /// The URL asked.
        url: String,
        /// The check's timeout.
        timeout: StdDuration,
    },
    /// An answer, but its body did not arrive within the check's timeout.
    #[error("{url}: body not received within {timeout:?}")]
    BodyTimeout {
        /// The URL asked.
        url: String,
        /// The check's timeout.
        timeout: StdDuration,
    },
    /// The answer's body broke off.
    #[error("{url}: {source}")]
    Body {
        /// The URL asked.
        url: String,
        /// The transport's error.
        #[source]
        source: HttpError,
    },
    /// `http`: an answer with a status the check does not accept.
    #[error("{url} answered {code}, expected {expected:?}")]
    Status {
        /// The URL asked.
        url: String,
        /// The status answered.
        code: u16,
        /// The statuses the check accepts (`expectStatus`).
        expected: Vec<u16>,
    },
    /// `prometheus`: the query was answered with a status other than 200.
    #[error("{url} answered {code}")]
    QueryStatus {
        /// The query's URL.
        url: String,
        /// The status answered.
        code: u16,
    },
    /// `prometheus`: the answer is not Prometheus's JSON.
    #[error("not a Prometheus answer: {0}")]
    NotPrometheus(#[source] serde_json::Error),
    /// `prometheus`: the answer is not exactly one sample (a vector of one, or a scalar).
    #[error("the query {query:?} did not return exactly one sample")]
    NotOneSample {
        /// The query, the target's name in it.
        query: String,
    },
    /// `prometheus`: the sample is NaN (like 0/0), which lies within no bounds.
    #[error("{query} = NaN, not a number within the bounds")]
    NotANumber {
        /// The query.
        query: String,
    },
    /// `prometheus`: the sample is below the check's `min`.
    #[error("{query} = {value}, below the minimum {min}")]
    BelowMinimum {
        /// The query.
        query: String,
        /// The sample.
        value: f64,
        /// The check's `min`.
        min: f64,
    },
    /// `prometheus`: the sample is above the check's `max`.
    #[error("{query} = {value}, above the maximum {max}")]
    AboveMaximum {
        /// The query.
        query: String,
        /// The sample.
        value: f64,
        /// The check's `max`.
        max: f64,
    },
}

/// Runs every check (or the defaults: `nodeReady` and `podsReady` for nodes, `podsReady` for
/// workloads) and reports each failure with its reason.
pub async fn run(http: &HttpClient, checks: &[HealthCheck], subject: &Subject<'_>) -> HealthFacts {
    let defaults = match TargetId::parse(subject.target.as_str()).map(|p| p.0) {
        Some(TargetKind::Node) => vec![
            HealthCheck {
                node_ready: Some(Default::default()),
                ..Default::default()
            },
            HealthCheck {
                pods_ready: Some(Default::default()),
                ..Default::default()
            },
        ],
        _ => vec![HealthCheck {
            pods_ready: Some(Default::default()),
            ..Default::default()
        }],
    };
    let checks = if checks.is_empty() {
        &defaults[..]
    } else {
        checks
    };
    let names = naming::check_names(checks);
    let mut facts = HealthFacts::healthy();
    for (index, check) in checks.iter().enumerate() {
        let (name, verdict, measured) = if check.node_ready.is_some() {
            ("nodeReady", node_ready(subject.node).into(), Measured::NONE)
        } else if check.pods_ready.is_some() {
            ("podsReady", pods::pods_ready(subject), Measured::NONE)
        } else if let Some(http_check) = &check.http {
            let result = http::http_get(http, http_check, subject.target).await;
            let measured = Measured::of(&result, |code| Measured {
                code: Some(*code),
                value: None,
            });
            ("http", result.map(|_| ()).into(), measured)
        } else if let Some(prometheus_check) = &check.prometheus {
            let result = prometheus::query(http, prometheus_check, subject.target).await;
            let measured = Measured::of(&result, |value| Measured {
                code: None,
                value: Some(*value),
            });
            ("prometheus", result.map(|_| ()).into(), measured)
        } else if check.job.is_some() {
            ("job", job::job_verdict(subject, index), Measured::NONE)
        } else {
            continue;
        };
        facts
            .checks
            .push(outcome(&names[index], &verdict, measured));
        match verdict {
            CheckVerdict::Pass => {}
            CheckVerdict::Fail(reason) => facts.reasons.push(format!("{name}: {reason}")),
            CheckVerdict::Fatal(reason, message) => {
                let message = format!("{name}: {message}");
                facts.reasons.push(message.clone());
                facts.fatal.get_or_insert(Fatal { reason, message });
            }
            CheckVerdict::Settling(reason, by) => {
                facts.settling.push(format!("{name}: {reason}"));
                facts.settles_by = match (facts.settles_by, by) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
        }
    }
    facts
}

/// What a check measured on the way to its verdict: the HTTP status answered, the value
/// a query returned.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Measured {
    code: Option<u16>,
    value: Option<f64>,
}

impl Measured {
    const NONE: Measured = Measured {
        code: None,
        value: None,
    };

    /// What a check's `result` measured: `ok` says it of a pass; a failure, its error.
    fn of<T>(result: &Result<T, CheckError>, ok: impl Fn(&T) -> Measured) -> Measured {
        match result {
            Ok(passed) => ok(passed),
            Err(error) => Measured {
                code: error.code(),
                value: error.value(),
            },
        }
    }
}

/// A check's outcome, for the status's health history.
fn outcome(name: &str, verdict: &CheckVerdict, measured: Measured) -> CheckOutcome {
    let (result, reason) = match verdict {
        CheckVerdict::Pass => (CheckResult::Pass, None),
        CheckVerdict::Fail(reason) => (CheckResult::Fail, Some(reason)),
        CheckVerdict::Settling(reason, _) => (CheckResult::Settling, Some(reason)),
        CheckVerdict::Fatal(_, message) => (CheckResult::Fatal, Some(message)),
    };
    CheckOutcome {
        check: name.to_owned(),
        result,
        code: measured.code,
        value: measured.value.map(|v| v.to_string()),
        reason: reason.cloned(),
    }
}

impl CheckError {
    /// The HTTP status the check got, if it got an answer: the URL's, or the Prometheus
    /// server's when not 200.
    pub fn code(&self) -> Option<u16> {
        match self {
            CheckError::Status { code, .. } | CheckError::QueryStatus { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// The value a `prometheus` query returned, if it returned one sample.
    pub fn value(&self) -> Option<f64> {
        match self {
            CheckError::BelowMinimum { value, .. } | CheckError::AboveMaximum { value, .. } => {
                Some(*value)
            }
            CheckError::NotANumber { .. } => Some(f64::NAN),
            _ => None,
        }
    }
}

/// `${TARGET_NAME}`, `${TARGET_NAMESPACE}` and `${TARGET_KIND}` replaced.
pub fn substitute(text: &str, target: &TargetId) -> String {
    let (kind, namespace, name) = TargetId::parse(target.as_str())
        .map_or(("", "", ""), |(k, ns, n)| (k.as_str(), ns.unwrap_or(""), n));
    text.replace("${TARGET_NAME}", name)
        .replace("${TARGET_NAMESPACE}", namespace)
        .replace("${TARGET_KIND}", kind)
}

#[cfg(test)]
mod tests {
    use patchpilot_engine::policy::WorkloadKind;

    use super::{testkit::*, *};

    #[test]
    fn urls_name_the_target() {
        let web = TargetId::workload(WorkloadKind::Deployment, "shop", "web");
        assert_eq!(
            substitute(
                "http://${TARGET_NAME}.${TARGET_NAMESPACE}/${TARGET_KIND}",
                &web
            ),
            "http://web.shop/Deployment"
        );
        assert_eq!(
            substitute("http://${TARGET_NAME}:9100", &TargetId::node("n1")),
            "http://n1:9100"
        );
    }

    #[tokio::test]
    async fn run_uses_the_default_checks_of_the_target_kind() {
        let http = http_client();
        let n1 = TargetId::node("n1");
        let starting = pods([pod("web-1", false, 4)]);
        // Nodes: nodeReady and podsReady.
        let facts = run(&http, &[], &subject(&n1, &starting)).await;
        assert_eq!(facts.reasons, ["nodeReady: the node is not observed"]);
        assert_eq!(facts.settling, ["podsReady: 1 pod(s) starting: shop/web-1"]);
        assert_eq!(
            facts.settles_by,
            Some(ago(4) + SignedDuration::from_mins(STARTUP_MINS))
        );
        let ready_node = node(&[("Ready", "True")]);
        let facts = run(
            &http,
            &[],
            &Subject {
                node: Some(&ready_node),
                ..subject(&n1, &[])
            },
        )
        .await;
        assert!(facts.is_healthy(), "{facts:?}");
        let results: Vec<_> = facts
            .checks
            .iter()
            .map(|c| (c.check.as_str(), c.result))
            .collect();
        assert_eq!(
            results,
            [
                ("nodeReady", CheckResult::Pass),
                ("podsReady", CheckResult::Pass)
            ]
        );
        // Workloads: podsReady only (no node to look at is no failure).
        let target = web();
        let facts = run(&http, &[], &subject(&target, &[])).await;
        assert!(facts.is_healthy(), "{facts:?}");
        assert_eq!(facts.checks.len(), 1);
        // A fatal signal is a failure the engine need not wait out.
        let new = nginx("nginx:1.27.4");
        let crashing = pods([waiting(
            "web-2",
            "nginx:1.27.4",
            1,
            "CrashLoopBackOff",
            Some(0),
        )]);
        let facts = run(
            &http,
            &[],
            &Subject {
                changed: Changed::Revision(&new),
                ..subject(&target, &crashing)
            },
        )
        .await;
        let message = "shop/web-2 container web: CrashLoopBackOff, last exit code 1";
        assert_eq!(
            facts,
            HealthFacts {
                checks: vec![CheckOutcome {
                    check: "podsReady".into(),
                    result: CheckResult::Fatal,
                    code: None,
                    value: None,
                    reason: Some(message.into()),
                }],
                ..HealthFacts::fatal(
                    FatalReason::CrashLoopBackOff,
                    format!("podsReady: {message}")
                )
            }
        );
    }

    #[tokio::test]
    async fn each_check_says_what_it_measured() {
        let server = testkit::serve(|uri| match uri.path() {
            "/api/v1/query" => testkit::Reply::Answer(
                200,
                serde_json::json!({"status": "success", "data": {"resultType": "vector",
                    "result": [{"metric": {}, "value": [1.7e9, "0.25"]}]}})
                .to_string(),
            ),
            "/ok" => testkit::Reply::Answer(204, String::new()),
            _ => testkit::Reply::Answer(503, "down".into()),
        })
        .await;
        let checks: Vec<HealthCheck> = serde_json::from_value(serde_json::json!([
            {"http": {"url": format!("{}/ok", server.base), "expectStatus": [200, 204]}},
            {"http": {"url": format!("{}/healthz", server.base)}},
            {"prometheus": {"url": server.base, "query": "errors", "max": 0.1}},
            {"prometheus": {"url": server.base, "query": "load", "max": 1}},
        ]))
        .unwrap();
        let n1 = TargetId::node("n1");
        let facts = run(&http_client(), &checks, &subject(&n1, &[])).await;
        let seen: Vec<_> = facts
            .checks
            .iter()
            .map(|c| (c.check.as_str(), c.result, c.code, c.value.as_deref()))
            .collect();
        assert_eq!(
            seen,
            [
                ("http /ok", CheckResult::Pass, Some(204), None),
                ("http /healthz", CheckResult::Fail, Some(503), None),
                ("prometheus errors", CheckResult::Fail, None, Some("0.25")),
                ("prometheus load", CheckResult::Pass, None, Some("0.25")),
            ]
        );
        // The reason is the check's own, without its kind before it.
        let reason = facts.checks[1].reason.as_deref().unwrap();
        assert!(
            reason.ends_with("/healthz answered 503, expected [200]"),
            "{reason}"
        );
    }
}
