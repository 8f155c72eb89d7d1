//! The simulated network that the operator's `http` and `prometheus` health checks and its
//! notices reach, in place of the real one.
//!
//! - A URL naming a Service of the simulated cluster (`http://web.shop.svc.cluster.local/…`,
//!   `web.shop.svc`, `web.shop`, or `web` for one in `patchpilot-system`, as cluster DNS
//!   resolves them for the operator's pod) reaches the pods behind it, as kube-proxy would:
//!   while any pod matching its selector is Ready, they answer `200 ok` on every path; with
//!   none Ready the connection is refused (kube-proxy rejects traffic to a Service without
//!   endpoints); on a port the Service does not expose, nothing answers until the check's
//!   timeout (the ClusterIP drops it). A headless Service resolves only while it has Ready
//!   pods. An ExternalName Service resolves its external name.
//! - `faults.http` changes a Service's answers for a while: a status code, a refused
//!   connection or no answer.
//! - The scenario's `prometheus.url` reaches a Prometheus answering instant queries with the
//!   values `prometheus.answers` gives ([`prometheus`]).
//! - `http://<name>.receiver.sandbox/…` reaches the scenario's receiver `<name>`, which
//!   records what it is sent and answers `200`, or as its `down` entries say ([`receiver`]).
//! - Any other name does not resolve (`dns error`). HTTPS is answered as HTTP: the
//!   simulated pods have no certificates to check.

pub mod dns;
pub mod prometheus;
pub mod receiver;

use std::{convert::Infallible, sync::Arc};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use jiff::Timestamp;

use super::{
    scenario::network::{ConnectFailure, HttpFault, PrometheusAnswer, ReceiverSpec, within},
    store::{Filter, Store},
};
use crate::json::Json;
use dns::Name;
use receiver::Receivers;

/// Why a request got no answer: the connection failed, or the body could not be read.
pub type HttpError = Box<dyn std::error::Error + Send + Sync>;

/// Why a connection failed, worded as hyper-util's connector words it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConnectError(String);

/// Where a request went.
enum Reached {
    /// The pods behind a Service answered.
    Service(String, String),
    /// The scenario's Prometheus.
    Prometheus,
    /// One of the scenario's receivers.
    Receiver(String),
    /// Nothing: the packets are dropped, and the request waits until the client gives up.
    Nothing,
}

/// A place that answers: its name, as DNS resolves it, and its port.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Address {
    name: Name,
    port: u16,
}

impl Address {
    /// The address of a URL, with the scheme's default port.
    fn of(uri: &http::Uri) -> Option<Self> {
        let port = uri.port_u16().unwrap_or(match uri.scheme_str() {
            Some("https") => 443,
            _ => 80,
        });
        Some(Address {
            name: dns::resolve(uri.host()?),
            port,
        })
    }
}

/// The simulated network of a sandbox.
pub struct Network {
    store: Arc<Store>,
    start: Timestamp,
    faults: Vec<HttpFault>,
    /// The Prometheus: where it answers, the path its API is under, and its values.
    prometheus: Option<(Address, String, Vec<PrometheusAnswer>)>,
    receivers: Arc<Receivers>,
}

impl Network {
    /// The network of the cluster in `store`, whose scenario started at `start`.
    pub fn new(
        store: Arc<Store>,
        start: Timestamp,
        faults: Vec<HttpFault>,
        prometheus: Option<&super::scenario::network::PrometheusSpec>,
        receivers: &[ReceiverSpec],
    ) -> Self {
        let prometheus = prometheus.and_then(|p| {
            let uri: http::Uri = p.url.parse().ok()?;
            let prefix = uri.path().trim_end_matches('/').to_owned();
            Some((Address::of(&uri)?, prefix, p.answers.clone()))
        });
        Network {
            store,
            start,
            faults,
            prometheus,
            receivers: Arc::new(Receivers::new(receivers, start)),
        }
    }

    /// The scenario's receivers, and what they got.
    pub fn receivers(&self) -> &Arc<Receivers> {
        &self.receivers
    }

    /// This network as an HTTP transport (a tower service), for clients such as the
    /// operator's health checks and notifiers: each request is answered as
    /// [`Network::answer`] does.
    pub fn transport(
        self: &Arc<Self>,
    ) -> impl tower::Service<
        http::Request<Full<Bytes>>,
        Response = http::Response<Full<Bytes>>,
        Error = HttpError,
        Future: Send + 'static,
    > + Clone
    + Send
    + Sync
    + 'static {
        let network = self.clone();
        tower::service_fn(move |request| {
            let network = network.clone();
            async move { network.answer(request).await }
        })
    }

    /// Answers one request, or fails to connect.
    pub async fn answer(
        &self,
        request: http::Request<Full<Bytes>>,
    ) -> Result<http::Response<Full<Bytes>>, HttpError> {
        let (parts, body) = request.into_parts();
        let body = match body.collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(never) => match never {},
        };
        let host = parts.uri.host().unwrap_or_default().to_owned();
        let address = Address::of(&parts.uri)
            .ok_or_else(|| ConnectError(format!("invalid URL, no host: {}", parts.uri)))?;
        let now = self.store.clock().now();
        let path = parts.uri.path().to_owned();
        match self.reach(&host, &address)? {
            Reached::Nothing => never().await,
            Reached::Receiver(name) => self.receivers.answer(&name, now, &parts, &body).await,
            Reached::Prometheus => {
                let Some((_, prefix, answers)) = &self.prometheus else {
                    unreachable!("reached only when configured")
                };
                let Some(api_path) = path.strip_prefix(prefix.as_str()) else {
                    return Ok(reply(404, "text/plain", "404 page not found\n".into()));
                };
                let mut params: Vec<(String, String)> =
                    form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
                        .into_owned()
                        .collect();
                if parts.method == http::Method::POST {
                    params.extend(form_urlencoded::parse(&body).into_owned());
                }
                let (code, content_type, text) =
                    prometheus::answer(answers, self.start, now, &parts.method, api_path, &params);
                Ok(reply(code, content_type, text))
            }
            Reached::Service(namespace, name) => {
                let fault = self.faults.iter().find(|f| {
                    f.service == format!("{namespace}/{name}")
                        && f.path.as_deref().is_none_or(|p| p == path)
                        && within(f.after, f.before, self.start, now)
                });
                match fault {
                    Some(HttpFault {
                        status: Some(code), ..
                    }) => Ok(reply(
                        *code,
                        "text/plain",
                        format!("{code} (faults.http)\n"),
                    )),
                    Some(HttpFault {
                        error: Some(ConnectFailure::Refused),
                        ..
                    }) => Err(refused(&format!(
                        "faults.http of the Service {namespace}/{name}"
                    ))),
                    Some(_) => never().await,
                    None => Ok(reply(200, "text/plain", "ok\n".into())),
                }
            }
        }
    }

    /// Resolves and connects: where the request arrives, or why it cannot.
    fn reach(&self, host: &str, address: &Address) -> Result<Reached, HttpError> {
        if let Some((prometheus, _, _)) = &self.prometheus
            && prometheus == address
        {
            return Ok(Reached::Prometheus);
        }
        if let Some(name) = self.receivers.named(host) {
            return Ok(Reached::Receiver(name.to_owned()));
        }
        let no_such_host = || {
            ConnectError(format!(
                "dns error: failed to lookup address information: no such host {host:?} in the sandbox"
            ))
        };
        let Name::Service(namespace, name) = &address.name else {
            return Err(no_such_host().into());
        };
        let service = self.service(namespace, name).ok_or_else(no_such_host)?;
        let spec = &service["spec"];
        if spec["type"] == "ExternalName" {
            let external = spec["externalName"].as_str().unwrap_or("");
            let target = Address {
                name: dns::resolve(external),
                port: address.port,
            };
            return match &target.name {
                Name::Service(..) if target.name != address.name => self.reach(external, &target),
                _ => Err(no_such_host().into()),
            };
        }
        let ready = self.ready_endpoints(namespace, &service);
        if spec["clusterIP"] == "None" {
            // Headless: DNS answers with the Ready pods' addresses, or with nothing.
            return match ready {
                0 => Err(no_such_host().into()),
                _ => Ok(Reached::Service(namespace.clone(), name.clone())),
            };
        }
        if !spec["ports"]
            .as_array()
            .into_iter()
            .flat_map(|ports| ports.iter())
            .any(|p| p["port"].as_u64() == Some(u64::from(address.port)))
        {
            return Ok(Reached::Nothing);
        }
        match ready {
            0 => Err(refused(&format!(
                "the Service {namespace}/{name} has no ready endpoints"
            ))),
            _ => Ok(Reached::Service(namespace.clone(), name.clone())),
        }
    }

    fn service(&self, namespace: &str, name: &str) -> Option<Arc<Json>> {
        let services = self.store.resource("", "v1", "services")?;
        self.store.get(&services, namespace, name).ok()
    }

    /// How many pods behind `service` are ready to take traffic (or merely running, with
    /// `publishNotReadyAddresses`).
    fn ready_endpoints(&self, namespace: &str, service: &Json) -> usize {
        let Some(selector) = service["spec"]["selector"].as_object() else {
            // Without a selector, endpoints are whatever someone wrote; the sandbox has none.
            return 0;
        };
        if selector.is_empty() {
            return 0;
        }
        let labels: patchpilot_engine::selector::Labels = selector
            .iter()
            .filter_map(|(k, v)| Some((k.to_owned(), v.as_str()?.to_owned())))
            .collect();
        let Some(pods) = self.store.resource("", "v1", "pods") else {
            return 0;
        };
        let filter = Filter {
            namespace: Some(namespace.to_owned()),
            labels: patchpilot_engine::selector::Selector::from_labels(&labels).into(),
            ..Filter::default()
        };
        let not_ready_too = service["spec"]["publishNotReadyAddresses"] == true;
        self.store
            .list(&pods, &filter, 0, None)
            .items
            .iter()
            .filter(|pod| {
                pod["metadata"]["deletionTimestamp"].is_null()
                    && pod["status"]["phase"] == "Running"
                    && (not_ready_too || ready(pod))
            })
            .count()
    }
}

/// Whether a pod's Ready condition is True.
fn ready(pod: &Json) -> bool {
    pod["status"]["conditions"].as_array().is_some_and(|c| {
        c.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
}

fn refused(why: &str) -> HttpError {
    ConnectError(format!(
        "tcp connect error: Connection refused (os error 111; {why})"
    ))
    .into()
}

/// Waits for ever, as a connection nobody answers.
async fn never<T>() -> T {
    match std::future::pending::<Infallible>().await {}
}

fn reply(code: u16, content_type: &str, body: String) -> http::Response<Full<Bytes>> {
    let mut response = http::Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() =
        http::StatusCode::from_u16(code).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(value) = http::HeaderValue::from_str(content_type) {
        response
            .headers_mut()
            .insert(http::header::CONTENT_TYPE, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use std::time::Duration as StdDuration;

    use serde_json::{Value, json};

    use super::*;
    use crate::{Options, Sandbox, scenario::Scenario};

    const SCENARIO: &str = r#"
apiVersion: sandbox.patchpilot.dev/v1alpha1
kind: Scenario
metadata: {name: network}
spec:
  start: "2026-11-28T00:00:00Z"
  nodes: [{pool: general, count: 2}]
  workloads:
    - {namespace: shop, name: web, replicas: 2, image: "nginx:1", service: true}
  faults:
    http:
      - {service: shop/web, path: /flaky, status: 500, before: 10m}
      - {service: shop/web, path: /refuse, error: Refused}
      - {service: shop/web, path: /hang, error: Timeout}
  prometheus:
    url: http://prometheus-operated.monitoring:9090
    answers: [{contains: up, value: 1}]
---
{apiVersion: v1, kind: Service, metadata: {name: empty, namespace: shop}, spec: {selector: {app: none}, ports: [{port: 80}]}}
---
{apiVersion: v1, kind: Service, metadata: {name: pods, namespace: shop}, spec: {clusterIP: None, selector: {app: web}}}
---
{apiVersion: v1, kind: Service, metadata: {name: nobody, namespace: shop}, spec: {clusterIP: None, selector: {app: none}}}
---
{apiVersion: v1, kind: Service, metadata: {name: alias, namespace: shop}, spec: {type: ExternalName, externalName: web.shop.svc.cluster.local}}
"#;

    /// Sends a GET; its status and body, or the error's text, or `None` without an answer
    /// within a minute.
    async fn get<T>(client: &T, url: &str) -> Option<Result<(u16, String), String>>
    where
        T: tower::Service<
                http::Request<Full<Bytes>>,
                Response = http::Response<Full<Bytes>>,
                Error = HttpError,
            > + Clone,
    {
        let request = http::Request::get(url)
            .body(Full::new(Bytes::new()))
            .unwrap();
        send(client, request).await
    }

    /// Sends `request`; like [`get`].
    async fn send<T>(
        client: &T,
        request: http::Request<Full<Bytes>>,
    ) -> Option<Result<(u16, String), String>>
    where
        T: tower::Service<
                http::Request<Full<Bytes>>,
                Response = http::Response<Full<Bytes>>,
                Error = HttpError,
            > + Clone,
    {
        use tower::ServiceExt;
        let answer =
            tokio::time::timeout(StdDuration::from_secs(60), client.clone().oneshot(request));
        Some(match answer.await.ok()? {
            Ok(response) => {
                let code = response.status().as_u16();
                let body = response.into_body().collect().await.unwrap().to_bytes();
                Ok((code, String::from_utf8_lossy(&body).into_owned()))
            }
            Err(error) => Err(error.to_string()),
        })
    }

    #[track_caller]
    fn status(answer: Option<Result<(u16, String), String>>) -> u16 {
        answer.expect("an answer").expect("a response").0
    }

    #[track_caller]
    fn error(answer: Option<Result<(u16, String), String>>) -> String {
        answer.expect("an answer").expect_err("an error")
    }

    #[tokio::test(start_paused = true)]
    async fn services_answer_as_kube_proxy_and_cluster_dns_would() {
        let scenario = Scenario::parse(std::path::Path::new("network.yaml"), SCENARIO).unwrap();
        let sandbox = Sandbox::new(scenario, Options::default()).unwrap();
        let client = sandbox.network();
        // Before the pods are Ready, the Service has no endpoints.
        assert!(error(get(&client, "http://web.shop/").await).contains("Connection refused"));
        let cluster = tokio::spawn(sandbox.cluster().run());
        tokio::time::sleep(StdDuration::from_secs(30)).await;

        for url in [
            "http://web.shop.svc.cluster.local/healthz",
            "http://web.shop.svc.cluster.local.:80/healthz",
            "http://web.shop.svc/",
            "http://web.shop/anything?at=all",
            "https://web.shop:80/",
            "http://alias.shop/",
            "http://pods.shop:8080/",
        ] {
            assert_eq!(
                get(&client, url).await,
                Some(Ok((200, "ok\n".into()))),
                "{url}"
            );
        }
        for url in [
            "http://web/",
            "http://shop.web/",
            "http://nobody.shop/",
            "http://general-1.internal:9100/healthz",
        ] {
            assert!(
                error(get(&client, url).await).starts_with("dns error"),
                "{url}"
            );
        }
        let refused = error(get(&client, "http://empty.shop/").await);
        assert!(refused.contains("Connection refused"), "{refused}");
        // A port the Service does not expose: nothing answers.
        assert_eq!(get(&client, "http://web.shop:8080/").await, None);

        // The scenario's faults, for their time.
        assert_eq!(status(get(&client, "http://web.shop/flaky").await), 500);
        assert!(error(get(&client, "http://web.shop/refuse").await).contains("refused"));
        assert_eq!(get(&client, "http://web.shop/hang").await, None);
        tokio::time::sleep(StdDuration::from_secs(600)).await;
        assert_eq!(status(get(&client, "http://web.shop/flaky").await), 200);

        // The Prometheus, under any of its names.
        let query = "http://prometheus-operated.monitoring.svc:9090/api/v1/query?query=up";
        let (code, body) = get(&client, query).await.unwrap().unwrap();
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            (code, &body["data"]["result"][0]["value"][1]),
            (200, &json!("1"))
        );
        assert!(
            error(get(&client, "http://prometheus-operated.monitoring:9091/").await)
                .starts_with("dns error")
        );
        cluster.abort();
    }

    const RECEIVERS: &str = r#"
apiVersion: sandbox.patchpilot.dev/v1alpha1
kind: Scenario
metadata: {name: receivers}
spec:
  start: "2026-11-28T00:00:00Z"
  receivers:
    - name: chat
      down:
        - {status: 503, after: 10m, before: 20m}
        - {error: Refused, after: 20m, before: 30m}
        - {error: Timeout, after: 30m, before: 40m}
    - name: hooks
"#;

    /// POSTs `body` with a notice's id; like [`get`].
    async fn post<T>(client: &T, url: &str, body: &str) -> Option<Result<(u16, String), String>>
    where
        T: tower::Service<
                http::Request<Full<Bytes>>,
                Response = http::Response<Full<Bytes>>,
                Error = HttpError,
            > + Clone,
    {
        let request = http::Request::post(url)
            .header("content-type", "application/json")
            .header("x-patchpilot-notice-id", "os-1/3")
            .body(Full::new(Bytes::from(body.to_owned())))
            .unwrap();
        send(client, request).await
    }

    #[tokio::test(start_paused = true)]
    async fn receivers_record_what_they_are_sent_and_are_down_when_the_scenario_says() {
        let scenario = Scenario::parse(std::path::Path::new("r.yaml"), RECEIVERS).unwrap();
        let sandbox = Sandbox::new(scenario, Options::default()).unwrap();
        let client = sandbox.network();
        let receivers = sandbox.receivers().clone();
        let mut told = receivers.subscribe();
        let notice = r#"{"id": "os-1/3", "kind": "WaveStarted", "message": "os-1: wave canary (1 of 3) started"}"#;

        let answer = post(&client, "http://chat.receiver.sandbox/hooks/T1?x=1", notice).await;
        assert_eq!(status(answer), 200);
        assert_eq!(
            status(
                post(
                    &client,
                    "https://HOOKS.receiver.sandbox:8443/",
                    "plain text"
                )
                .await
            ),
            200
        );
        assert!(
            error(post(&client, "http://mail.receiver.sandbox/", notice).await)
                .starts_with("dns error")
        );
        let chat = receivers.received("chat");
        assert_eq!(chat.len(), 1);
        let first = chat[0].to_json();
        assert_eq!(first["time"], "2026-11-28T00:00:00Z");
        assert_eq!(first["method"], "POST");
        assert_eq!(first["path"], "/hooks/T1?x=1");
        assert_eq!(first["headers"]["x-patchpilot-notice-id"], "os-1/3");
        assert_eq!(first["headers"]["content-type"], "application/json");
        assert_eq!(first["body"]["kind"], "WaveStarted");
        assert_eq!(first["status"], 200);
        assert_eq!(
            told.recv().await.unwrap().line(),
            "notice to chat: WaveStarted os-1/3: os-1: wave canary (1 of 3) started"
        );
        let hooks = receivers.received("hooks");
        assert_eq!(hooks[0].body, json!("plain text"));
        assert_eq!(hooks[0].path, "/");

        // Down: 503 from 10m, refused from 20m, no answer from 30m, back at 40m.
        tokio::time::sleep(StdDuration::from_secs(600)).await;
        let answer = post(&client, "http://chat.receiver.sandbox/hooks/T1", notice).await;
        assert_eq!(status(answer), 503);
        assert_eq!(
            status(post(&client, "http://hooks.receiver.sandbox/", notice).await),
            200,
            "the other receiver is up"
        );
        tokio::time::sleep(StdDuration::from_secs(600)).await;
        let refused = error(post(&client, "http://chat.receiver.sandbox/hooks/T1", notice).await);
        assert!(refused.contains("Connection refused"), "{refused}");
        tokio::time::sleep(StdDuration::from_secs(600)).await;
        assert_eq!(
            post(&client, "http://chat.receiver.sandbox/hooks/T1", notice).await,
            None
        );
        tokio::time::sleep(StdDuration::from_secs(600)).await;
        assert_eq!(
            status(post(&client, "http://chat.receiver.sandbox/hooks/T1", notice).await),
            200
        );

        let answers: Vec<(String, Value, Value)> = receivers
            .received("chat")
            .iter()
            .map(|r| {
                let r = r.to_json();
                (
                    r["time"].as_str().unwrap().to_owned(),
                    r["status"].clone(),
                    r["error"].clone(),
                )
            })
            .collect();
        let at = |t: &str| format!("2026-11-28T00:{t}Z");
        assert_eq!(
            answers,
            [
                (at("00:00"), json!(200), Value::Null),
                (at("10:00"), json!(503), Value::Null),
                (at("20:00"), Value::Null, json!("Refused")),
                (at("30:00"), Value::Null, json!("Timeout")),
                // The client gave up on that one after a minute.
                (at("41:00"), json!(200), Value::Null),
            ]
        );
        assert_eq!(
            receivers
                .received("chat")
                .iter()
                .filter(|r| r.accepted())
                .count(),
            2
        );
    }
}
