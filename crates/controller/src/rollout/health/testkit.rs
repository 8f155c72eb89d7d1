//! What the health checks' tests share: an HTTP server on a loopback port (real time: the
//! timeouts are tokio's), and hand-made nodes, pods and subjects.

use std::{
    convert::Infallible,
    sync::{Arc, Mutex},
};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::Frame;
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::Node;
use patchpilot_engine::{image::ContainerImage, policy::WorkloadKind, target::TargetId};
use serde_json::{Value, json};

use super::{Changed, CheckError, Subject};
use crate::pod::PodFacts;

// ---- A test server -------------------------------------------------------------------

/// What the test server answers to a request.
pub(super) enum Reply {
    /// A status and a body.
    Answer(u16, String),
    /// A status, then a body that never ends.
    StallBody(u16),
    /// Nothing at all: the request waits forever.
    Silence,
}

/// A server on `127.0.0.1:0` and the URIs it was asked for.
pub(super) struct Server {
    pub(super) base: String,
    requests: Arc<Mutex<Vec<http::Uri>>>,
}

impl Server {
    pub(super) fn requests(&self) -> Vec<http::Uri> {
        self.requests.lock().unwrap().clone()
    }
}

/// Serves `reply` until the test's runtime ends.
pub(super) async fn serve(reply: impl Fn(&http::Uri) -> Reply + Send + Sync + 'static) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let requests = Arc::new(Mutex::new(Vec::new()));
    let (reply, seen) = (Arc::new(reply), requests.clone());
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (reply, seen) = (reply.clone(), seen.clone());
            let service =
                hyper::service::service_fn(move |request: http::Request<hyper::body::Incoming>| {
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
                        let response = http::Response::builder().status(code).body(body).unwrap();
                        Ok::<_, Infallible>(response)
                    }
                });
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

pub(super) fn node_n1() -> TargetId {
    TargetId::node("n1")
}

/// A check's result as status and events show it: its error's text.
pub(super) fn reason<T>(result: Result<T, CheckError>) -> Result<(), String> {
    result.map(|_| ()).map_err(|e| e.to_string())
}

/// Asserts that `result` failed for a reason containing every one of `words`.
#[track_caller]
pub(super) fn assert_fails<T: std::fmt::Debug>(result: Result<T, CheckError>, words: &[&str]) {
    let reason = result.expect_err("the check should fail").to_string();
    for word in words {
        assert!(
            reason.contains(word),
            "the reason {reason:?} should contain {word:?}"
        );
    }
}

// ---- Nodes and pods ------------------------------------------------------------------

pub(super) fn node(conditions: &[(&str, &str)]) -> Node {
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

pub(super) const NOW: &str = "2026-11-28T12:00:00Z";
/// `health.timeout` in these tests.
pub(super) const STARTUP_MINS: i64 = 10;

pub(super) fn now() -> Timestamp {
    NOW.parse().unwrap()
}

pub(super) fn ago(mins: i64) -> Timestamp {
    now() - SignedDuration::from_mins(mins)
}

/// A running pod `shop/<name>`, scheduled (and created) `mins` minutes ago.
pub(super) fn pod(name: &str, ready: bool, mins: i64) -> Value {
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

pub(super) fn pods(values: impl IntoIterator<Item = Value>) -> Vec<Arc<PodFacts>> {
    values
        .into_iter()
        .map(|v| Arc::new(serde_json::from_value(v).unwrap()))
        .collect()
}

/// A subject at [`NOW`] with nothing but `pods`.
pub(super) fn subject<'a>(target: &'a TargetId, pods: &'a [Arc<PodFacts>]) -> Subject<'a> {
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

pub(super) fn web() -> TargetId {
    TargetId::workload(WorkloadKind::Deployment, "shop", "web")
}

/// A pod `shop/<name>` created `mins` minutes ago running `image`, its container `web`
/// waiting for `reason`, last exited `exited` minutes ago.
pub(super) fn waiting(
    name: &str,
    image: &str,
    mins: i64,
    reason: &str,
    exited: Option<i64>,
) -> Value {
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

pub(super) fn nginx(image: &str) -> Vec<ContainerImage> {
    vec![ContainerImage {
        container: "web".into(),
        image: image.into(),
    }]
}
