//! Health checks (SPEC 2.2): `nodeReady`, `podsReady`, `http`, `prometheus` and `job`, each
//! observation with its reason.

use std::time::Duration as StdDuration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::{Node, Pod};
use patchpilot_engine::{
    machine::HealthFacts,
    target::{TargetId, TargetKind},
};
use serde_json::Value;

use crate::api::{HealthCheck, HttpCheck, PrometheusCheck};

/// The HTTP client of health checks (HTTP and HTTPS with the system's roots).
pub type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// A client for HTTP and Prometheus checks.
pub fn http_client() -> HttpClient {
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()
        .map(|b| b.https_or_http().enable_http1().build())
        .unwrap_or_else(|_| {
            // No usable system roots: plain HTTP still works.
            hyper_rustls::HttpsConnectorBuilder::new()
                .with_tls_config(rustls_config())
                .https_or_http()
                .enable_http1()
                .build()
        });
    Client::builder(TokioExecutor::new()).build(connector)
}

/// A TLS configuration without roots: HTTPS checks fail with a clear error, HTTP ones work.
fn rustls_config() -> rustls::ClientConfig {
    rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("ring supports the default TLS versions")
    .with_root_certificates(rustls::RootCertStore::empty())
    .with_no_client_auth()
}

/// What the checks look at.
pub struct Subject<'a> {
    /// The target.
    pub target: &'a TargetId,
    /// The node, for nodes.
    pub node: Option<&'a Node>,
    /// The pods on the node, or of the workload.
    pub pods: &'a [std::sync::Arc<Pod>],
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
}

/// The outcome of one check.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Pass,
    Fail(String),
    /// Not passing yet, for a reason expected to pass on its own, until the instant given.
    Settling(String, Option<Timestamp>),
}

impl From<Result<(), String>> for Verdict {
    fn from(result: Result<(), String>) -> Self {
        result.map_or_else(Verdict::Fail, |()| Verdict::Pass)
    }
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
    let mut facts = HealthFacts::healthy();
    for (index, check) in checks.iter().enumerate() {
        let (name, verdict) = if check.node_ready.is_some() {
            ("nodeReady", node_ready(subject.node).into())
        } else if check.pods_ready.is_some() {
            ("podsReady", pods_ready(subject))
        } else if let Some(http_check) = &check.http {
            (
                "http",
                http_get(http, http_check, subject.target).await.into(),
            )
        } else if let Some(prometheus) = &check.prometheus {
            (
                "prometheus",
                query(http, prometheus, subject.target).await.into(),
            )
        } else if check.job.is_some() {
            let verdict = match subject.jobs.iter().find(|(i, _)| *i == index) {
                Some((_, Some(result))) => result.clone().into(),
                _ => Verdict::Settling("the check's Job is running".into(), None),
            };
            ("job", verdict)
        } else {
            continue;
        };
        match verdict {
            Verdict::Pass => {}
            Verdict::Fail(reason) => facts.reasons.push(format!("{name}: {reason}")),
            Verdict::Settling(reason, by) => {
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

fn condition<'a>(node: &'a Node, kind: &str) -> Option<&'a str> {
    node.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == kind)
        .map(|c| c.status.as_str())
}

/// `Ready` is `True` and no pressure condition is `True`.
pub fn node_ready(node: Option<&Node>) -> Result<(), String> {
    let node = node.ok_or("the node is not observed")?;
    if condition(node, "Ready") != Some("True") {
        return Err("Ready is not True".into());
    }
    for pressure in ["MemoryPressure", "DiskPressure", "PIDPressure"] {
        if condition(node, pressure) == Some("True") {
            return Err(format!("{pressure} is True"));
        }
    }
    Ok(())
}

fn pod_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn pod_name(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or(""),
        pod.metadata.name.as_deref().unwrap_or("")
    )
}

/// When a pod was scheduled (or created, if the scheduler has not said).
fn scheduled_at(pod: &Pod) -> Option<Timestamp> {
    let conditions = pod.status.as_ref().and_then(|s| s.conditions.as_ref());
    let scheduled = conditions
        .into_iter()
        .flatten()
        .find(|c| c.type_ == "PodScheduled" && c.status == "True");
    scheduled
        .and_then(|c| c.last_transition_time.as_ref())
        .or(pod.metadata.creation_timestamp.as_ref())
        .map(|t| t.0)
}

fn restarts(pod: &Pod) -> i32 {
    let statuses = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref());
    statuses
        .into_iter()
        .flatten()
        .map(|c| c.restart_count)
        .sum()
}

/// Pods Ready (and, for workloads, their rollout complete and no container restarted during
/// the soak). A pod that is not Ready yet but is starting (scheduled less than
/// `health.timeout` ago, no container restarted) is settling, not failing: pods land on a
/// node again once it is uncordoned, and need their time to start.
fn pods_ready(subject: &Subject<'_>) -> Verdict {
    if let Err(why) = subject.rollout.clone() {
        return Verdict::Fail(why);
    }
    let running = subject.pods.iter().filter(|p| {
        let terminal = matches!(
            p.status.as_ref().and_then(|s| s.phase.as_deref()),
            Some("Succeeded" | "Failed")
        );
        !terminal && p.metadata.deletion_timestamp.is_none()
    });
    let mut unready: Vec<String> = Vec::new();
    let mut starting: Vec<String> = Vec::new();
    let mut settles_by: Option<Timestamp> = None;
    let mut restarted: Vec<String> = Vec::new();
    for pod in running {
        if !pod_ready(pod) {
            let deadline = scheduled_at(pod).and_then(|at| at.checked_add(subject.startup).ok());
            match deadline {
                Some(deadline) if deadline > subject.now && restarts(pod) == 0 => {
                    starting.push(pod_name(pod));
                    settles_by = Some(settles_by.map_or(deadline, |by| by.min(deadline)));
                }
                _ => unready.push(pod_name(pod)),
            }
        }
        if let Some(since) = subject.soaking_since {
            let statuses = pod
                .status
                .as_ref()
                .and_then(|s| s.container_statuses.as_ref());
            let restarted_since = statuses.into_iter().flatten().any(|c| {
                let finished = c
                    .last_state
                    .as_ref()
                    .and_then(|s| s.terminated.as_ref())
                    .and_then(|t| t.finished_at.as_ref());
                finished.is_some_and(|at| at.0 >= since)
            });
            if restarted_since {
                restarted.push(pod_name(pod));
            }
        }
    }
    if !unready.is_empty() {
        return Verdict::Fail(format!(
            "{} pod(s) not Ready: {}",
            unready.len(),
            shorten(&unready)
        ));
    }
    if !restarted.is_empty() {
        return Verdict::Fail(format!(
            "container restarts during the soak: {}",
            shorten(&restarted)
        ));
    }
    if !starting.is_empty() {
        return Verdict::Settling(
            format!("{} pod(s) starting: {}", starting.len(), shorten(&starting)),
            settles_by,
        );
    }
    Verdict::Pass
}

fn shorten(names: &[String]) -> String {
    let mut shown = names.iter().take(3).cloned().collect::<Vec<_>>().join(", ");
    if names.len() > 3 {
        shown.push_str(&format!(" and {} more", names.len() - 3));
    }
    shown
}

/// `${TARGET_NAME}`, `${TARGET_NAMESPACE}` and `${TARGET_KIND}` replaced.
pub fn substitute(text: &str, target: &TargetId) -> String {
    let (kind, namespace, name) = TargetId::parse(target.as_str())
        .map_or(("", "", ""), |(k, ns, n)| (k.as_str(), ns.unwrap_or(""), n));
    text.replace("${TARGET_NAME}", name)
        .replace("${TARGET_NAMESPACE}", namespace)
        .replace("${TARGET_KIND}", kind)
}

async fn get(http: &HttpClient, url: &str, timeout: StdDuration) -> Result<(u16, Bytes), String> {
    let uri: http::Uri = url.parse().map_err(|e| format!("{url}: {e}"))?;
    let request = http::Request::get(uri)
        .body(Full::new(Bytes::new()))
        .map_err(|e| e.to_string())?;
    let response = tokio::time::timeout(timeout, http.request(request))
        .await
        .map_err(|_| format!("{url}: no answer within {timeout:?}"))?
        .map_err(|e| format!("{url}: {e}"))?;
    let code = response.status().as_u16();
    let body = tokio::time::timeout(timeout, response.into_body().collect())
        .await
        .map_err(|_| format!("{url}: body not received within {timeout:?}"))?
        .map_err(|e| format!("{url}: {e}"))?
        .to_bytes();
    Ok((code, body))
}

async fn http_get(http: &HttpClient, check: &HttpCheck, target: &TargetId) -> Result<(), String> {
    let url = substitute(&check.url, target);
    let (code, _) = get(http, &url, check.timeout.std()).await?;
    if check.expect_status.contains(&code) {
        Ok(())
    } else {
        Err(format!(
            "{url} answered {code}, expected {:?}",
            check.expect_status
        ))
    }
}

async fn query(
    http: &HttpClient,
    check: &PrometheusCheck,
    target: &TargetId,
) -> Result<(), String> {
    let promql = substitute(&check.query, target);
    let encoded: String = form_urlencoded::byte_serialize(promql.as_bytes()).collect();
    let url = format!(
        "{}/api/v1/query?query={encoded}",
        check.url.trim_end_matches('/')
    );
    let (code, body) = get(http, &url, check.timeout.std()).await?;
    if code != 200 {
        return Err(format!("{url} answered {code}"));
    }
    let answer: Value =
        serde_json::from_slice(&body).map_err(|e| format!("not a Prometheus answer: {e}"))?;
    let value = sample(&answer)
        .ok_or_else(|| format!("the query {promql:?} did not return exactly one sample"))?;
    if check.min.is_some_and(|min| value < min) {
        return Err(format!(
            "{promql} = {value}, below the minimum {}",
            check.min.unwrap_or_default()
        ));
    }
    if check.max.is_some_and(|max| value > max) {
        return Err(format!(
            "{promql} = {value}, above the maximum {}",
            check.max.unwrap_or_default()
        ));
    }
    Ok(())
}

/// The one sample of an instant query's answer (a vector of one, or a scalar).
fn sample(answer: &Value) -> Option<f64> {
    let data = &answer["data"];
    let value = match data["resultType"].as_str()? {
        "vector" => match data["result"].as_array()?.as_slice() {
            [one] => &one["value"],
            _ => return None,
        },
        "scalar" => &data["result"],
        _ => return None,
    };
    value.get(1)?.as_str()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn prometheus_answers_read_one_sample() {
        let vector = json!({"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1.7e9, "0.02"]}]}});
        assert_eq!(sample(&vector), Some(0.02));
        let scalar = json!({"data": {"resultType": "scalar", "result": [1.7e9, "3"]}});
        assert_eq!(sample(&scalar), Some(3.0));
        let two = json!({"data": {"resultType": "vector", "result": [{"value": [0, "1"]}, {"value": [0, "2"]}]}});
        assert_eq!(sample(&two), None);
        assert_eq!(
            sample(&json!({"data": {"resultType": "vector", "result": []}})),
            None
        );
    }

    #[test]
    fn urls_name_the_target() {
        let web = TargetId::workload(
            patchpilot_engine::policy::WorkloadKind::Deployment,
            "shop",
            "web",
        );
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
}
