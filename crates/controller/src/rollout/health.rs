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
    image::ContainerImage,
    machine::{Fatal, FatalReason, HealthFacts},
    target::{TargetId, TargetKind},
};
use serde_json::Value;

use patchpilot_api::{HealthCheck, HttpCheck, PrometheusCheck};

/// An error of a health check's request, as the transport words it.
pub type HttpError = Box<dyn std::error::Error + Send + Sync>;
/// The body of an answer to a health check.
pub type HttpBody = http_body_util::combinators::BoxBody<Bytes, HttpError>;
/// What carries health checks' requests: the network, or a stand-in such as the sandbox's
/// simulated cluster.
pub type HttpTransport = tower::util::BoxCloneSyncService<
    http::Request<Full<Bytes>>,
    http::Response<HttpBody>,
    HttpError,
>;

/// The HTTP client of `http` and `prometheus` checks: any transport, by default the network
/// ([`http_client`]).
#[derive(Clone)]
pub struct HttpClient(HttpTransport);

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HttpClient")
    }
}

impl HttpClient {
    /// A client sending its requests through `transport`.
    pub fn new<S, B>(transport: S) -> Self
    where
        S: tower::Service<http::Request<Full<Bytes>>, Response = http::Response<B>>
            + Clone
            + Send
            + Sync
            + 'static,
        S::Error: Into<HttpError>,
        S::Future: Send + 'static,
        B: http_body::Body<Data = Bytes> + Send + Sync + 'static,
        B::Error: Into<HttpError>,
    {
        use tower::ServiceExt;
        HttpClient(HttpTransport::new(
            transport
                .map_response(|r: http::Response<B>| r.map(|b| b.map_err(Into::into).boxed()))
                .map_err(Into::into),
        ))
    }

    /// Sends `request`.
    pub async fn request(
        &self,
        request: http::Request<Full<Bytes>>,
    ) -> Result<http::Response<HttpBody>, HttpError> {
        use tower::ServiceExt;
        self.0.clone().oneshot(request).await
    }
}

/// A client for HTTP and Prometheus checks over the network (HTTP, and HTTPS with the
/// system's roots).
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
    let client: Client<HttpsConnector<HttpConnector>, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build(connector);
    HttpClient::new(client)
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

impl From<Result<(), String>> for CheckVerdict {
    fn from(result: Result<(), String>) -> Self {
        result.map_or_else(CheckVerdict::Fail, |()| CheckVerdict::Pass)
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
                _ => CheckVerdict::Settling("the check's Job is running".into(), None),
            };
            ("job", verdict)
        } else {
            continue;
        };
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

pub fn pod_ready(pod: &Pod) -> bool {
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

/// Whether `pod` runs every container of `images` with its image.
fn runs(pod: &Pod, images: &[ContainerImage]) -> bool {
    let containers = pod.spec.as_ref().map(|s| s.containers.as_slice());
    images.iter().all(|wanted| {
        containers.into_iter().flatten().any(|c| {
            c.name == wanted.container && c.image.as_deref() == Some(wanted.image.as_str())
        })
    })
}

/// The first fatal signal (by pod and container name) among the pods the target's change
/// made: a container waiting for a reason the kubelet does not get past by itself.
fn fatal_signal(subject: &Subject<'_>) -> Option<(FatalReason, String)> {
    let mut signals = Vec::new();
    for pod in subject
        .pods
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
    {
        let (made, since) = match subject.changed {
            Changed::Revision(images) if runs(pod, images) => (true, None),
            Changed::Revision(_) | Changed::Since(None) => continue,
            Changed::Since(Some(since)) => {
                let created = pod.metadata.creation_timestamp.as_ref().map(|t| t.0);
                (created.is_some_and(|at| at >= since), Some(since))
            }
        };
        let status = pod.status.as_ref();
        let containers = [
            status.and_then(|s| s.init_container_statuses.as_ref()),
            status.and_then(|s| s.container_statuses.as_ref()),
        ];
        for container in containers.into_iter().flatten().flatten() {
            let Some(waiting) = container.state.as_ref().and_then(|s| s.waiting.as_ref()) else {
                continue;
            };
            let Some(reason) = waiting
                .reason
                .as_deref()
                .and_then(FatalReason::from_waiting)
            else {
                continue;
            };
            let last_exit = container
                .last_state
                .as_ref()
                .and_then(|s| s.terminated.as_ref());
            // On a node, an older pod counts only for a crash since the change.
            let exited = last_exit.and_then(|t| t.finished_at.as_ref()).map(|t| t.0);
            let crashed_since = reason == FatalReason::CrashLoopBackOff
                && since.zip(exited).is_some_and(|(since, at)| at >= since);
            if !(made || crashed_since) {
                continue;
            }
            // What says why: the last exit of a crash loop (the kubelet's message only
            // repeats the back-off), the kubelet's message otherwise.
            let detail = match (reason, last_exit) {
                (FatalReason::CrashLoopBackOff, Some(exit)) => format!(
                    ", last exit code {}{}",
                    exit.exit_code,
                    exit.reason
                        .as_deref()
                        .map_or_else(String::new, |r| format!(" ({r})"))
                ),
                _ => waiting
                    .message
                    .as_deref()
                    .filter(|m| !m.is_empty())
                    .map_or_else(String::new, |m| format!(": {m}")),
            };
            signals.push((pod_name(pod), container.name.clone(), reason, detail));
        }
    }
    signals.sort();
    signals
        .into_iter()
        .next()
        .map(|(pod, container, reason, detail)| {
            let message = format!("{pod} container {container}: {}{detail}", reason.as_str());
            (reason, message)
        })
}

/// Pods Ready (and, for workloads, their rollout complete and no container restarted during
/// the soak). A pod that is not Ready yet but is starting (scheduled less than
/// `health.timeout` ago, no container restarted) is settling, not failing: pods land on a
/// node again once it is uncordoned, and need their time to start. A pod the change made
/// that will never turn Ready (see [`fatal_signal`]) is fatal, even while a workload's own
/// rollout is still progressing: it would wait for that pod.
fn pods_ready(subject: &Subject<'_>) -> CheckVerdict {
    if let Some((reason, message)) = fatal_signal(subject) {
        return CheckVerdict::Fatal(reason, message);
    }
    if let Err(why) = subject.rollout.clone() {
        return CheckVerdict::Fail(why);
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
        // SPEC 2.2: "no restarts" is a rule for workloads; a node's pods are only Ready.
        if let Some(since) = subject.soaking_since.filter(|_| subject.node.is_none()) {
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
        return CheckVerdict::Fail(format!(
            "{} pod(s) not Ready: {}",
            unready.len(),
            shorten(&unready)
        ));
    }
    if !restarted.is_empty() {
        return CheckVerdict::Fail(format!(
            "container restarts during the soak: {}",
            shorten(&restarted)
        ));
    }
    if !starting.is_empty() {
        return CheckVerdict::Settling(
            format!("{} pod(s) starting: {}", starting.len(), shorten(&starting)),
            settles_by,
        );
    }
    CheckVerdict::Pass
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
    // NaN (like 0/0) compares false with every bound, so it would pass them all.
    if value.is_nan() {
        return Err(format!("{promql} = NaN, not a number within the bounds"));
    }
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
    //! The checks against a real HTTP server on a loopback port (real time: the timeouts are
    //! tokio's), and the pure `nodeReady` / `podsReady` judgements on hand-made objects.

    use std::{
        convert::Infallible,
        sync::{Arc, Mutex},
        time::Instant,
    };

    use http_body_util::{StreamBody, combinators::BoxBody};
    use hyper::body::Frame;
    use patchpilot_engine::{policy::WorkloadKind, units::Duration};
    use serde_json::json;

    use super::*;

    // ---- A test server -------------------------------------------------------------------

    /// What the test server answers to a request.
    enum Reply {
        /// A status and a body.
        Answer(u16, String),
        /// A status, then a body that never ends.
        StallBody(u16),
        /// Nothing at all: the request waits forever.
        Silence,
    }

    /// A server on `127.0.0.1:0` and the URIs it was asked for.
    struct Server {
        base: String,
        requests: Arc<Mutex<Vec<http::Uri>>>,
    }

    impl Server {
        fn requests(&self) -> Vec<http::Uri> {
            self.requests.lock().unwrap().clone()
        }
    }

    /// Serves `reply` until the test's runtime ends.
    async fn serve(reply: impl Fn(&http::Uri) -> Reply + Send + Sync + 'static) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (reply, seen) = (Arc::new(reply), requests.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (reply, seen) = (reply.clone(), seen.clone());
                let service = hyper::service::service_fn(
                    move |request: http::Request<hyper::body::Incoming>| {
                        let (reply, seen) = (reply.clone(), seen.clone());
                        async move {
                            seen.lock().unwrap().push(request.uri().clone());
                            let (code, body): (u16, BoxBody<Bytes, Infallible>) =
                                match reply(request.uri()) {
                                    Reply::Answer(code, body) => {
                                        (code, Full::new(Bytes::from(body)).boxed())
                                    }
                                    Reply::StallBody(code) => {
                                        let never = futures::stream::pending::<
                                            Result<Frame<Bytes>, Infallible>,
                                        >();
                                        (code, StreamBody::new(never).boxed())
                                    }
                                    Reply::Silence => std::future::pending().await,
                                };
                            let response =
                                http::Response::builder().status(code).body(body).unwrap();
                            Ok::<_, Infallible>(response)
                        }
                    },
                );
                tokio::spawn(async move {
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, service)
                        .await;
                });
            }
        });
        Server { base, requests }
    }

    /// A Prometheus stand-in: `body` (status 200) at `/api/v1/query`, 404 elsewhere.
    async fn prometheus(body: String) -> Server {
        serve(move |uri| match uri.path() {
            "/api/v1/query" => Reply::Answer(200, body.clone()),
            _ => Reply::Answer(404, "not found".into()),
        })
        .await
    }

    /// An instant query's answer: a vector of one sample per value.
    fn vector(values: &[&str]) -> String {
        let result: Vec<Value> = values
            .iter()
            .map(|v| json!({"metric": {"instance": "n1"}, "value": [1.7e9, v]}))
            .collect();
        json!({"status": "success", "data": {"resultType": "vector", "result": result}}).to_string()
    }

    fn node_n1() -> TargetId {
        TargetId::node("n1")
    }

    fn http_check(url: String, expect_status: &[u16], timeout_ms: u64) -> HttpCheck {
        HttpCheck {
            url,
            expect_status: expect_status.to_vec(),
            timeout: Duration::from_millis(timeout_ms),
        }
    }

    fn prometheus_check(
        url: &str,
        query: &str,
        min: Option<f64>,
        max: Option<f64>,
    ) -> PrometheusCheck {
        PrometheusCheck {
            url: url.to_owned(),
            query: query.to_owned(),
            min,
            max,
            timeout: Duration::from_secs(5),
        }
    }

    /// Asserts that `result` failed for a reason containing every one of `words`.
    #[track_caller]
    fn assert_fails(result: Result<(), String>, words: &[&str]) {
        let reason = result.expect_err("the check should fail");
        for word in words {
            assert!(
                reason.contains(word),
                "the reason {reason:?} should contain {word:?}"
            );
        }
    }

    // ---- http ----------------------------------------------------------------------------

    #[tokio::test]
    async fn http_checks_get_the_target_url_and_accept_the_listed_statuses() {
        let server = serve(|uri| match uri.path() {
            "/nodes/n1/healthz" => Reply::Answer(204, String::new()),
            "/shop/Deployment/web" => Reply::Answer(200, "ok".into()),
            _ => Reply::Answer(404, "not found".into()),
        })
        .await;
        let http = http_client();
        let check = http_check(
            format!("{}/nodes/${{TARGET_NAME}}/healthz", server.base),
            &[200, 204],
            5000,
        );
        assert_eq!(http_get(&http, &check, &node_n1()).await, Ok(()));

        let web = TargetId::workload(WorkloadKind::Deployment, "shop", "web");
        let check = http_check(
            format!(
                "{}/${{TARGET_NAMESPACE}}/${{TARGET_KIND}}/${{TARGET_NAME}}",
                server.base
            ),
            &[200],
            5000,
        );
        assert_eq!(http_get(&http, &check, &web).await, Ok(()));
        let paths: Vec<String> = server
            .requests()
            .iter()
            .map(|u| u.path().to_owned())
            .collect();
        assert_eq!(paths, ["/nodes/n1/healthz", "/shop/Deployment/web"]);
    }

    #[tokio::test]
    async fn http_checks_fail_on_any_other_status_and_say_which() {
        let server = serve(|uri| match uri.path() {
            "/healthz/n1" => Reply::Answer(503, "draining".into()),
            _ => Reply::Answer(200, "ok".into()),
        })
        .await;
        let http = http_client();
        let url = format!("{}/healthz/${{TARGET_NAME}}", server.base);
        let check = http_check(url.clone(), &[200], 5000);
        assert_fails(
            http_get(&http, &check, &node_n1()).await,
            &[
                &format!("{}/healthz/n1", server.base),
                "answered 503",
                "expected [200]",
            ],
        );
        // 200 is not accepted when the check lists only 204.
        let other = http_check(format!("{}/other", server.base), &[204], 5000);
        assert_fails(
            http_get(&http, &other, &node_n1()).await,
            &["answered 200", "expected [204]"],
        );
    }

    #[tokio::test]
    async fn http_checks_time_out_without_an_answer() {
        let server = serve(|_| Reply::Silence).await;
        let check = http_check(format!("{}/healthz", server.base), &[200], 200);
        let started = Instant::now();
        assert_fails(
            http_get(&http_client(), &check, &node_n1()).await,
            &["/healthz", "no answer within 200ms"],
        );
        let took = started.elapsed();
        assert!(
            took < StdDuration::from_secs(3),
            "the timeout took {took:?}"
        );
        assert_eq!(server.requests().len(), 1, "the request reached the server");
    }

    #[tokio::test]
    async fn http_checks_time_out_on_a_body_that_never_ends() {
        let server = serve(|_| Reply::StallBody(200)).await;
        let check = http_check(format!("{}/healthz", server.base), &[200], 300);
        assert_fails(
            http_get(&http_client(), &check, &node_n1()).await,
            &["body not received within 300ms"],
        );
    }

    #[tokio::test]
    async fn http_checks_fail_when_nothing_listens() {
        // A port that was free a moment ago, and now is closed.
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let url = format!("http://127.0.0.1:{port}/healthz");
        let check = http_check(url.clone(), &[200], 2000);
        assert_fails(http_get(&http_client(), &check, &node_n1()).await, &[&url]);
    }

    #[tokio::test]
    async fn run_reports_a_failing_http_check_by_name() {
        let server = serve(|_| Reply::Answer(500, "boom".into())).await;
        let checks = [HealthCheck {
            http: Some(http_check(format!("{}/healthz", server.base), &[200], 5000)),
            ..Default::default()
        }];
        let web = TargetId::workload(WorkloadKind::Deployment, "shop", "web");
        let facts = run(&http_client(), &checks, &subject(&web, &[])).await;
        assert_eq!(facts.reasons.len(), 1, "{facts:?}");
        assert!(
            facts.reasons[0].starts_with("http: ") && facts.reasons[0].contains("answered 500"),
            "{facts:?}"
        );
        assert!(facts.settling.is_empty());
    }

    // ---- prometheus ----------------------------------------------------------------------

    #[tokio::test]
    async fn prometheus_checks_send_an_instant_query_for_the_target() {
        let server = prometheus(vector(&["0.002"])).await;
        // A trailing slash on the server's URL does not double the one of the API path.
        let check = prometheus_check(
            &format!("{}/", server.base),
            r#"sum(rate(errors_total{instance="${TARGET_NAME}"}[5m])) / 2"#,
            None,
            Some(0.01),
        );
        assert_eq!(query(&http_client(), &check, &node_n1()).await, Ok(()));
        let requests = server.requests();
        assert_eq!(requests.len(), 1);
        assert_eq!(requests[0].path(), "/api/v1/query");
        let params: Vec<(String, String)> =
            form_urlencoded::parse(requests[0].query().unwrap_or("").as_bytes())
                .into_owned()
                .collect();
        assert_eq!(
            params,
            [(
                "query".to_owned(),
                r#"sum(rate(errors_total{instance="n1"}[5m])) / 2"#.to_owned()
            )]
        );
    }

    /// A sample, the check's `min` and `max`, and the words of the failure (none: a pass).
    type BoundsCase = (
        &'static str,
        Option<f64>,
        Option<f64>,
        &'static [&'static str],
    );

    #[tokio::test]
    async fn prometheus_checks_compare_the_value_with_min_and_max() {
        let http = http_client();
        let pass = &[];
        let cases: [BoundsCase; 9] = [
            ("0.002", None, Some(0.01), pass),
            ("0.01", None, Some(0.01), pass),
            (
                "0.5",
                None,
                Some(0.01),
                &["= 0.5", "above the maximum 0.01"],
            ),
            ("5", Some(5.0), None, pass),
            ("3", Some(5.0), None, &["= 3", "below the minimum 5"]),
            ("7", Some(5.0), Some(10.0), pass),
            ("4.5", Some(5.0), Some(10.0), &["below the minimum 5"]),
            ("11", Some(5.0), Some(10.0), &["above the maximum 10"]),
            ("+Inf", None, Some(1.0), &["= inf", "above the maximum 1"]),
        ];
        for (value, min, max, failure) in cases {
            let server = prometheus(vector(&[value])).await;
            let check = prometheus_check(&server.base, "up", min, max);
            let result = query(&http, &check, &node_n1()).await;
            if failure.is_empty() {
                assert_eq!(result, Ok(()), "{value} within {min:?}..{max:?}");
            } else {
                let mut words = failure.to_vec();
                words.push("up");
                assert_fails(result, &words);
            }
        }
        // A scalar answer counts as one sample.
        let scalar =
            json!({"status": "success", "data": {"resultType": "scalar", "result": [1.7e9, "42"]}});
        let server = prometheus(scalar.to_string()).await;
        let check = prometheus_check(&server.base, "scalar(up)", None, Some(10.0));
        assert_fails(
            query(&http, &check, &node_n1()).await,
            &["= 42", "above the maximum 10"],
        );
    }

    #[tokio::test]
    async fn prometheus_checks_fail_without_exactly_one_sample() {
        let http = http_client();
        for (answer, what) in [
            (vector(&[]), "an empty vector"),
            (vector(&["1", "2"]), "two samples"),
            (
                json!({"status": "success", "data": {"resultType": "matrix", "result": []}})
                    .to_string(),
                "a range vector",
            ),
            (vector(&["not-a-number"]), "an unreadable sample"),
        ] {
            let server = prometheus(answer).await;
            let check = prometheus_check(&server.base, "up == 0", None, Some(1.0));
            let result = query(&http, &check, &node_n1()).await;
            let reason = result.expect_err(what);
            assert!(
                reason.contains(r#"the query "up == 0" did not return exactly one sample"#),
                "{what}: {reason}"
            );
        }
    }

    #[tokio::test]
    async fn prometheus_checks_fail_on_a_nan_sample() {
        // 0/0 (an error ratio without traffic) is NaN: it lies within no bounds.
        let server = prometheus(vector(&["NaN"])).await;
        for (min, max) in [
            (None, Some(0.01)),
            (Some(0.0), None),
            (Some(0.0), Some(1.0)),
        ] {
            let check = prometheus_check(&server.base, "errors / requests", min, max);
            assert_fails(
                query(&http_client(), &check, &node_n1()).await,
                &["errors / requests = NaN", "not a number"],
            );
        }
    }

    #[tokio::test]
    async fn prometheus_checks_fail_on_an_error_status() {
        let error = json!({"status": "error", "errorType": "bad_data", "error": "parse error"});
        let server = serve(move |_| Reply::Answer(400, error.to_string())).await;
        let check = prometheus_check(&server.base, "up{", None, Some(1.0));
        assert_fails(
            query(&http_client(), &check, &node_n1()).await,
            &["/api/v1/query?query=up%7B", "answered 400"],
        );
        let server = serve(|_| Reply::Answer(503, "unavailable".into())).await;
        let check = prometheus_check(&server.base, "up", None, Some(1.0));
        assert_fails(
            query(&http_client(), &check, &node_n1()).await,
            &["answered 503"],
        );
    }

    #[tokio::test]
    async fn prometheus_checks_fail_on_malformed_json() {
        let http = http_client();
        for body in [
            "<html>gateway</html>",
            r#"{"status": "success", "data": "#,
            "",
        ] {
            let server = prometheus(body.to_owned()).await;
            let check = prometheus_check(&server.base, "up", None, Some(1.0));
            assert_fails(
                query(&http, &check, &node_n1()).await,
                &["not a Prometheus answer"],
            );
        }
    }

    #[tokio::test]
    async fn prometheus_checks_time_out() {
        let server = serve(|_| Reply::Silence).await;
        let mut check = prometheus_check(&server.base, "up", None, Some(1.0));
        check.timeout = Duration::from_millis(200);
        assert_fails(
            query(&http_client(), &check, &node_n1()).await,
            &["/api/v1/query?query=up", "no answer within 200ms"],
        );
    }

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

    // ---- nodeReady -----------------------------------------------------------------------

    fn node(conditions: &[(&str, &str)]) -> Node {
        let conditions: Vec<Value> = conditions
            .iter()
            .map(|(kind, status)| json!({"type": kind, "status": status}))
            .collect();
        serde_json::from_value(json!({
            "metadata": {"name": "n1"},
            "status": {"conditions": conditions},
        }))
        .unwrap()
    }

    #[test]
    fn node_ready_needs_ready_and_no_pressure() {
        let calm = [
            ("MemoryPressure", "False"),
            ("DiskPressure", "False"),
            ("PIDPressure", "False"),
        ];
        let ready = |extra: &[(&'static str, &'static str)]| {
            let mut conditions = vec![("Ready", "True")];
            conditions.extend_from_slice(&calm);
            for (kind, status) in extra {
                conditions.retain(|(k, _)| k != kind);
                conditions.push((kind, status));
            }
            node(&conditions)
        };
        assert_eq!(node_ready(Some(&ready(&[]))), Ok(()));
        assert_eq!(node_ready(Some(&node(&[("Ready", "True")]))), Ok(()));
        assert_eq!(node_ready(None), Err("the node is not observed".to_owned()));
        for status in ["False", "Unknown"] {
            assert_eq!(
                node_ready(Some(&ready(&[("Ready", status)]))),
                Err("Ready is not True".to_owned())
            );
        }
        assert_eq!(
            node_ready(Some(&node(&[]))),
            Err("Ready is not True".to_owned())
        );
        for pressure in ["MemoryPressure", "DiskPressure", "PIDPressure"] {
            assert_eq!(
                node_ready(Some(&ready(&[(pressure, "True")]))),
                Err(format!("{pressure} is True"))
            );
        }
    }

    // ---- podsReady -----------------------------------------------------------------------

    const NOW: &str = "2026-11-28T12:00:00Z";
    /// `health.timeout` in these tests.
    const STARTUP_MINS: i64 = 10;

    fn now() -> Timestamp {
        NOW.parse().unwrap()
    }

    fn ago(mins: i64) -> Timestamp {
        now() - SignedDuration::from_mins(mins)
    }

    /// A running pod `shop/<name>`, scheduled (and created) `mins` minutes ago.
    fn pod(name: &str, ready: bool, mins: i64) -> Value {
        let at = ago(mins).to_string();
        let ready_status = if ready { "True" } else { "False" };
        json!({
            "metadata": {"namespace": "shop", "name": name, "creationTimestamp": at},
            "status": {
                "phase": "Running",
                "conditions": [
                    {"type": "PodScheduled", "status": "True", "lastTransitionTime": at},
                    {"type": "Ready", "status": ready_status, "lastTransitionTime": at},
                ],
                "containerStatuses": [{
                    "name": "web", "image": "nginx:1.27.4", "imageID": "",
                    "ready": ready, "restartCount": 0,
                }],
            },
        })
    }

    fn pods(values: impl IntoIterator<Item = Value>) -> Vec<Arc<Pod>> {
        values
            .into_iter()
            .map(|v| Arc::new(serde_json::from_value(v).unwrap()))
            .collect()
    }

    /// A subject at [`NOW`] with nothing but `pods`.
    fn subject<'a>(target: &'a TargetId, pods: &'a [Arc<Pod>]) -> Subject<'a> {
        Subject {
            target,
            node: None,
            pods,
            rollout: Ok(()),
            soaking_since: None,
            jobs: &[],
            now: now(),
            startup: SignedDuration::from_mins(STARTUP_MINS),
            changed: Changed::Since(Some(ago(120))),
        }
    }

    fn web() -> TargetId {
        TargetId::workload(WorkloadKind::Deployment, "shop", "web")
    }

    #[test]
    fn pods_ready_passes_when_every_running_pod_is_ready() {
        let target = web();
        let mut done = pod("job-1", false, 60);
        done["status"]["phase"] = json!("Succeeded");
        let mut failed = pod("job-2", false, 60);
        failed["status"]["phase"] = json!("Failed");
        let mut leaving = pod("web-old", false, 60);
        leaving["metadata"]["deletionTimestamp"] = json!(ago(1).to_string());
        let pods = pods([pod("web-1", true, 60), done, failed, leaving]);
        assert_eq!(pods_ready(&subject(&target, &pods)), CheckVerdict::Pass);
        assert_eq!(pods_ready(&subject(&target, &[])), CheckVerdict::Pass);
    }

    #[test]
    fn pods_ready_fails_an_incomplete_workload_rollout_with_its_reason() {
        let target = web();
        let pods = pods([pod("web-1", true, 60)]);
        let subject = Subject {
            rollout: Err("1 of 3 updated replicas are available".into()),
            ..subject(&target, &pods)
        };
        assert_eq!(
            pods_ready(&subject),
            CheckVerdict::Fail("1 of 3 updated replicas are available".into())
        );
    }

    #[test]
    fn a_pod_still_starting_within_the_timeout_is_settling() {
        let target = TargetId::node("n1");
        let pods = pods([pod("web-1", true, 60), pod("web-2", false, 3)]);
        assert_eq!(
            pods_ready(&subject(&target, &pods)),
            CheckVerdict::Settling(
                "1 pod(s) starting: shop/web-2".into(),
                Some(ago(3) + SignedDuration::from_mins(STARTUP_MINS))
            )
        );
        // Two starting pods settle by the earlier deadline.
        let two = self::pods([pod("web-2", false, 3), pod("web-3", false, 8)]);
        assert_eq!(
            pods_ready(&subject(&target, &two)),
            CheckVerdict::Settling(
                "2 pod(s) starting: shop/web-2, shop/web-3".into(),
                Some(ago(8) + SignedDuration::from_mins(STARTUP_MINS))
            )
        );
    }

    #[test]
    fn a_pod_not_ready_past_the_timeout_or_after_a_restart_fails() {
        let target = TargetId::node("n1");
        // Scheduled exactly `health.timeout` ago: its time is up.
        let late = pods([pod("web-1", false, STARTUP_MINS)]);
        assert_eq!(
            pods_ready(&subject(&target, &late)),
            CheckVerdict::Fail("1 pod(s) not Ready: shop/web-1".into())
        );
        let mut crashing = pod("web-2", false, 1);
        crashing["status"]["containerStatuses"][0]["restartCount"] = json!(2);
        let crashing = pods([crashing]);
        assert_eq!(
            pods_ready(&subject(&target, &crashing)),
            CheckVerdict::Fail("1 pod(s) not Ready: shop/web-2".into())
        );
        // A failing pod outweighs one still starting.
        let both = pods([pod("web-3", false, 2), pod("web-4", false, 30)]);
        assert_eq!(
            pods_ready(&subject(&target, &both)),
            CheckVerdict::Fail("1 pod(s) not Ready: shop/web-4".into())
        );
    }

    #[test]
    fn starting_counts_from_scheduling_not_creation() {
        let target = TargetId::node("n1");
        // Created an hour ago, scheduled two minutes ago (it waited for a node).
        let mut waited = pod("web-1", false, 2);
        waited["metadata"]["creationTimestamp"] = json!(ago(60).to_string());
        let waited = pods([waited]);
        assert!(
            matches!(
                pods_ready(&subject(&target, &waited)),
                CheckVerdict::Settling(..)
            ),
            "{:?}",
            pods_ready(&subject(&target, &waited))
        );
        // Not scheduled yet: the creation time counts.
        let mut pending = pod("web-2", false, 60);
        pending["status"]["conditions"] = json!([]);
        pending["metadata"]["creationTimestamp"] = json!(ago(1).to_string());
        let pending = pods([pending]);
        assert_eq!(
            pods_ready(&subject(&target, &pending)),
            CheckVerdict::Settling(
                "1 pod(s) starting: shop/web-2".into(),
                Some(ago(1) + SignedDuration::from_mins(STARTUP_MINS))
            )
        );
    }

    #[test]
    fn many_unready_pods_are_named_three_at_a_time() {
        let target = TargetId::node("n1");
        let pods = pods((1..=5).map(|i| pod(&format!("web-{i}"), false, 30)));
        assert_eq!(
            pods_ready(&subject(&target, &pods)),
            CheckVerdict::Fail(
                "5 pod(s) not Ready: shop/web-1, shop/web-2, shop/web-3 and 2 more".into()
            )
        );
    }

    #[test]
    fn a_container_restart_during_the_soak_fails() {
        let target = web();
        let restarted_at = |mins: i64| {
            let mut p = pod("web-1", true, 60);
            p["status"]["containerStatuses"][0]["restartCount"] = json!(1);
            p["status"]["containerStatuses"][0]["lastState"] =
                json!({"terminated": {"exitCode": 137, "finishedAt": ago(mins).to_string()}});
            p
        };
        let during = pods([restarted_at(2)]);
        let soaking = Subject {
            soaking_since: Some(ago(5)),
            ..subject(&target, &during)
        };
        assert_eq!(
            pods_ready(&soaking),
            CheckVerdict::Fail("container restarts during the soak: shop/web-1".into())
        );
        // Before the soak began, or with no soak yet, the restart does not count.
        let before = pods([restarted_at(7)]);
        let soaking = Subject {
            soaking_since: Some(ago(5)),
            ..subject(&target, &before)
        };
        assert_eq!(pods_ready(&soaking), CheckVerdict::Pass);
        assert_eq!(pods_ready(&subject(&target, &during)), CheckVerdict::Pass);
        // On a node only readiness counts (SPEC 2.2): the pod restarted but is Ready.
        let ready_node = node(&[("Ready", "True")]);
        let node_target = TargetId::node("worker-1");
        let on_a_node = Subject {
            node: Some(&ready_node),
            soaking_since: Some(ago(5)),
            ..subject(&node_target, &during)
        };
        assert_eq!(pods_ready(&on_a_node), CheckVerdict::Pass);
    }

    /// A pod `shop/<name>` created `mins` minutes ago running `image`, its container `web`
    /// waiting for `reason`, last exited `exited` minutes ago.
    fn waiting(name: &str, image: &str, mins: i64, reason: &str, exited: Option<i64>) -> Value {
        let mut pod = pod(name, false, mins);
        pod["spec"] = json!({"containers": [{"name": "web", "image": image}]});
        let status = &mut pod["status"]["containerStatuses"][0];
        status["state"] = json!({"waiting": {"reason": reason, "message": "back-off 10s"}});
        if let Some(exited) = exited {
            status["restartCount"] = json!(2);
            status["lastState"] =
                json!({"terminated": {"exitCode": 1, "finishedAt": ago(exited).to_string()}});
        }
        pod
    }

    fn nginx(image: &str) -> Vec<ContainerImage> {
        vec![ContainerImage {
            container: "web".into(),
            image: image.into(),
        }]
    }

    #[test]
    fn new_pods_that_will_never_be_ready_are_fatal_while_the_rollout_progresses() {
        let target = web();
        let new = nginx("nginx:1.27.4");
        let pods = pods([
            pod("web-old", true, 60),
            waiting("web-new", "nginx:1.27.4", 1, "CrashLoopBackOff", Some(0)),
        ]);
        let progressing = Subject {
            rollout: Err("1 of 3 updated replicas are available".into()),
            changed: Changed::Revision(&new),
            ..subject(&target, &pods)
        };
        assert_eq!(
            pods_ready(&progressing),
            CheckVerdict::Fatal(
                FatalReason::CrashLoopBackOff,
                "shop/web-new container web: CrashLoopBackOff, last exit code 1".into()
            )
        );
        // Rolling back to 1.27.3: the crash-looping pods of 1.27.4 are not the rollback's.
        let old = nginx("nginx:1.27.3");
        let rolling_back = Subject {
            changed: Changed::Revision(&old),
            ..progressing
        };
        assert_eq!(
            pods_ready(&rolling_back),
            CheckVerdict::Fail("1 of 3 updated replicas are available".into())
        );
        // Waiting reasons that pass by themselves are not fatal.
        let creating = self::pods([waiting(
            "web-new",
            "nginx:1.27.4",
            1,
            "ContainerCreating",
            None,
        )]);
        let starting = Subject {
            changed: Changed::Revision(&new),
            ..subject(&target, &creating)
        };
        assert!(matches!(pods_ready(&starting), CheckVerdict::Settling(..)));
        // An image that cannot be pulled.
        let pulling = self::pods([waiting(
            "web-new",
            "nginx:1.27.4",
            1,
            "ImagePullBackOff",
            None,
        )]);
        let pulling = Subject {
            changed: Changed::Revision(&new),
            ..subject(&target, &pulling)
        };
        assert!(matches!(
            pods_ready(&pulling),
            CheckVerdict::Fatal(FatalReason::ImagePullBackOff, _)
        ));
    }

    #[test]
    fn on_a_node_only_what_happened_since_the_change_is_fatal() {
        let target = TargetId::node("n1");
        let since = Changed::Since(Some(ago(10)));
        let check = |pod: Value, changed: Changed<'static>| {
            let pods = pods([pod]);
            let subject = Subject {
                changed,
                ..subject(&target, &pods)
            };
            pods_ready(&subject)
        };
        // A DaemonSet pod from before the change that crashed since: fatal.
        let crashed = waiting("agent-1", "agent:1", 60, "CrashLoopBackOff", Some(2));
        assert!(matches!(
            check(crashed.clone(), since),
            CheckVerdict::Fatal(FatalReason::CrashLoopBackOff, _)
        ));
        // Its last exit came before the change: not the change's doing.
        let before = waiting("agent-1", "agent:1", 60, "CrashLoopBackOff", Some(30));
        assert!(matches!(check(before, since), CheckVerdict::Fail(_)));
        // The updater has not finished: nothing is its doing yet.
        assert!(matches!(
            check(crashed, Changed::Since(None)),
            CheckVerdict::Fail(_)
        ));
        // A pod created since that cannot pull its image: fatal; an older one: not.
        let pulling = waiting("web-1", "web:2", 3, "ErrImagePull", None);
        assert!(matches!(
            check(pulling, since),
            CheckVerdict::Fatal(FatalReason::ErrImagePull, _)
        ));
        let old = waiting("web-1", "web:2", 30, "ErrImagePull", None);
        assert!(!matches!(check(old, since), CheckVerdict::Fatal(..)));
    }

    // ---- run -----------------------------------------------------------------------------

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
        assert_eq!(facts, HealthFacts::healthy());
        // Workloads: podsReady only (no node to look at is no failure).
        let target = web();
        let facts = run(&http, &[], &subject(&target, &[])).await;
        assert_eq!(facts, HealthFacts::healthy());
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
        assert_eq!(
            facts,
            HealthFacts::fatal(
                FatalReason::CrashLoopBackOff,
                "podsReady: shop/web-2 container web: CrashLoopBackOff, last exit code 1".into()
            )
        );
    }

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
