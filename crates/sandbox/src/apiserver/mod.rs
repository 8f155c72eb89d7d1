//! The sandbox's API server: Kubernetes API requests in, responses out, every request in the
//! audit log. The same handler answers in-process `kube::Client`s and HTTP clients such as
//! kubectl ([`service`]).

mod audit;
mod decode;
mod discovery;
mod events;
mod eviction;
mod faults;
mod jsonpath;
mod media;
mod openapi;
mod partial;
mod printers;
mod protobuf;
mod query;
mod route;
mod scale;
mod service;
mod sizes;
mod table;
mod verbs;
mod watch;

use std::{convert::Infallible, sync::Arc};

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode, header};
use http_body_util::{BodyExt, Full, combinators::UnsyncBoxBody};
use serde_json::{Value, json};

pub use audit::{Audit, MemoryLog};
pub use faults::{Fault, FaultKind, Faults};
pub use service::{Client as SandboxService, serve};

use super::{status::ApiError, store::Store};
use route::{Route, Target};

/// The largest request body the API server reads (its `--max-request-bytes`' default):
/// a longer one is refused with `413`.
pub const MAX_BODY: usize = 3 * 1024 * 1024;

/// A response body: a whole document, or a watch stream.
pub type Body = UnsyncBoxBody<Bytes, Infallible>;

/// The query parameters of a request.
#[derive(Clone, Debug, Default)]
pub struct Params(Vec<(String, String)>);

impl Params {
    fn parse(query: Option<&str>) -> Self {
        Params(
            form_urlencoded::parse(query.unwrap_or("").as_bytes())
                .into_owned()
                .collect(),
        )
    }

    /// The value of a parameter.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether a boolean parameter is set, as the API server reads one: present with any
    /// value but `0`, `f` or `false` (in any case).
    pub fn flag(&self, name: &str) -> bool {
        self.get(name).is_some_and(|v| {
            !(v == "0" || v.eq_ignore_ascii_case("f") || v.eq_ignore_ascii_case("false"))
        })
    }
}

/// A request, read whole.
#[derive(Debug)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// The path, without the query.
    pub path: String,
    /// The query parameters.
    pub params: Params,
    /// The headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
    /// The client's user name.
    pub user: String,
    /// The request URI as received.
    pub uri: String,
}

impl Request {
    /// Reads an HTTP request of `user`.
    pub fn new(user: &str, parts: http::request::Parts, body: Bytes) -> Self {
        Request {
            path: parts.uri.path().to_owned(),
            params: Params::parse(parts.uri.query()),
            uri: parts
                .uri
                .path_and_query()
                .map_or_else(|| parts.uri.path().to_owned(), |p| p.as_str().to_owned()),
            method: parts.method,
            headers: parts.headers,
            body,
            user: user.to_owned(),
        }
    }

    fn header(&self, name: header::HeaderName) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

/// What a handler answers.
pub(crate) enum Reply {
    /// A JSON document with a status code and warnings.
    Json(StatusCode, Value, Vec<String>),
    /// A document already serialized, with its `Content-Type`: aggregated discovery, whose
    /// media type says which format was chosen, and OpenAPI documents.
    Document(&'static str, Bytes),
    /// A stream (watch).
    Stream(Body),
}

impl Reply {
    fn ok(value: Value) -> Self {
        Reply::Json(StatusCode::OK, value, Vec::new())
    }
}

/// The API server of the simulated cluster.
pub struct ApiServer {
    store: Arc<Store>,
    audit: Option<Arc<Audit>>,
    faults: Faults,
    /// How long each response but a watch's takes to reach its client (virtual time).
    response_latency: Option<jiff::SignedDuration>,
    /// Write counters of the users someone asked to follow.
    writes: std::sync::Mutex<std::collections::HashMap<String, tokio::sync::watch::Sender<u64>>>,
}

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

fn json_response(code: StatusCode, value: &Value, warnings: &[String]) -> http::Response<Body> {
    let mut builder = http::Response::builder()
        .status(code)
        .header(header::CONTENT_TYPE, "application/json");
    for warning in warnings {
        builder = builder.header("Warning", format!("299 - {:?}", warning));
    }
    builder
        .body(full(value.to_string()))
        .unwrap_or_else(|_| http::Response::new(full("{}")))
}

impl ApiServer {
    /// An API server over `store`, logging to `audit` and injecting `faults`.
    pub fn new(store: Arc<Store>, audit: Option<Arc<Audit>>, faults: Faults) -> Self {
        ApiServer {
            store,
            audit,
            faults,
            response_latency: None,
            writes: Default::default(),
        }
    }

    /// Delays every response but a watch's by `latency` (virtual time) after the request
    /// was handled; the watch events its writes cause are not delayed.
    pub fn with_response_latency(mut self, latency: Option<jiff::SignedDuration>) -> Self {
        self.response_latency = latency;
        self
    }

    /// Follows how many writes `user` makes (creates, updates, patches, deletes).
    pub fn count_writes(&self, user: &str) -> tokio::sync::watch::Receiver<u64> {
        let mut writes = self.writes.lock().unwrap_or_else(|p| p.into_inner());
        writes
            .entry(user.to_owned())
            .or_insert_with(|| tokio::sync::watch::channel(0).0)
            .subscribe()
    }

    /// The store behind it.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Answers one request.
    pub async fn handle(&self, request: Request) -> http::Response<Body> {
        let received = self.store.now_micros();
        let routed = route::route(&self.store, &request.path);
        let (verb, object_ref) = match &routed {
            Ok(Route::Resource(target)) => (verb(&request, target), Some(object_ref(target))),
            Ok(Route::SelfSubjectReview) => (
                "create".to_owned(),
                Some(json!({
                    "resource": "selfsubjectreviews",
                    "apiGroup": "authentication.k8s.io",
                    "apiVersion": "v1",
                })),
            ),
            _ => ("get".to_owned(), None),
        };
        let result = match routed {
            Ok(route) => match self.faults.draw(&request.user, &verb) {
                Some(fault) => Err(fault),
                None => self.dispatch(route, &request, &verb).await,
            },
            Err(error) => Err(error),
        };
        let (mut response, code, failure) = match result {
            Ok(Reply::Json(code, value, warnings)) => {
                (json_response(code, &value, &warnings), code.as_u16(), None)
            }
            Ok(Reply::Document(content_type, body)) => {
                let response = http::Response::builder()
                    .status(StatusCode::OK)
                    .header(header::CONTENT_TYPE, content_type)
                    .header(header::VARY, "Accept")
                    .body(full(body))
                    .unwrap_or_else(|_| http::Response::new(full("")));
                (response, 200, None)
            }
            Ok(Reply::Stream(body)) => {
                let response = http::Response::builder()
                    .status(StatusCode::OK)
                    .header(header::CONTENT_TYPE, "application/json")
                    .header(header::TRANSFER_ENCODING, "chunked")
                    .body(body)
                    .unwrap_or_else(|_| http::Response::new(full("")));
                (response, 200, None)
            }
            Err(error) => {
                let code =
                    StatusCode::from_u16(error.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                let failure = Some((error.reason.to_owned(), error.message.clone()));
                (
                    json_response(code, &error.to_status(), &[]),
                    error.code,
                    failure,
                )
            }
        };
        let write = matches!(
            verb.as_str(),
            "create" | "update" | "patch" | "delete" | "deletecollection"
        );
        let watch = verb == "watch";
        if write
            && let Some(counter) = self
                .writes
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&request.user)
        {
            counter.send_modify(|n| *n += 1);
        }
        if let Some(audit) = &self.audit {
            audit.record(&audit::Entry {
                uri: request.uri.clone(),
                verb,
                user: request.user.clone(),
                user_agent: request.header(header::USER_AGENT).to_owned(),
                object_ref,
                code,
                failure,
                request_object: if write { body_json(&request) } else { None },
                received,
                completed: self.store.now_micros(),
            });
        }
        if let Some(latency) = self.response_latency.filter(|_| !watch) {
            let clock = self.store.clock();
            let at = clock.now().saturating_add(latency).unwrap_or(clock.now());
            tokio::time::sleep(clock.sleep_for(at)).await;
        }
        // The server's clock, as the real API server's `Date` says: here the simulated one,
        // the clock of every timestamp in the objects served.
        let date = self
            .store
            .clock()
            .now()
            .strftime("%a, %d %b %Y %H:%M:%S GMT");
        if let Ok(date) = http::HeaderValue::from_str(&date.to_string()) {
            response.headers_mut().insert(header::DATE, date);
        }
        response
    }

    async fn dispatch(
        &self,
        route: Route,
        request: &Request,
        verb: &str,
    ) -> Result<Reply, ApiError> {
        match route {
            Route::Health => Ok(Reply::Json(StatusCode::OK, json!("ok"), Vec::new())),
            Route::Version => Ok(Reply::ok(discovery::version())),
            Route::Discovery(which) => discovery::discovery(&self.store, &which, request),
            Route::OpenApi(path) => openapi::openapi(&self.store, &path, request),
            Route::Resource(target) => {
                let collection = target.name.is_none() && request.method == Method::GET;
                media::check_acceptable(request, collection)?;
                if request.body.len() > MAX_BODY {
                    return Err(ApiError {
                        code: 413,
                        reason: "RequestEntityTooLarge",
                        message: format!("Request entity too large: limit is {MAX_BODY}"),
                        details: None,
                    });
                }
                verbs::handle(&self.store, target, request, verb).await
            }
            Route::SelfSubjectReview => self_subject_review(request),
        }
    }
}

/// Who the client is, as the real API server answers `kubectl auth whoami`: only `create`
/// (POST), answered 201 with the user's name and groups.
fn self_subject_review(request: &Request) -> Result<Reply, ApiError> {
    if request.method != Method::POST {
        return Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({})",
            request.method
        )));
    }
    Ok(Reply::Json(
        StatusCode::CREATED,
        json!({
            "kind": "SelfSubjectReview",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"creationTimestamp": null},
            "status": {"userInfo": {
                "username": request.user,
                "groups": ["system:authenticated"],
            }},
        }),
        Vec::new(),
    ))
}

/// The audit verb of a resource request.
fn verb(request: &Request, target: &Target) -> String {
    let named = target.name.is_some();
    match (&request.method, named) {
        (&Method::GET, true) => "get",
        (&Method::GET, false) if request.params.flag("watch") => "watch",
        (&Method::GET, false) => "list",
        (&Method::POST, _) => "create",
        (&Method::PUT, _) => "update",
        (&Method::PATCH, _) => "patch",
        (&Method::DELETE, true) => "delete",
        (&Method::DELETE, false) => "deletecollection",
        _ => "unknown",
    }
    .to_owned()
}

fn object_ref(target: &Target) -> Value {
    let resource = &target.resource;
    let mut object_ref = json!({
        "resource": resource.plural,
        "apiGroup": resource.group,
        "apiVersion": resource.version,
    });
    if let Some(namespace) = &target.namespace {
        object_ref["namespace"] = json!(namespace);
    }
    if let Some(name) = &target.name {
        object_ref["name"] = json!(name);
    }
    if let Some(subresource) = &target.subresource {
        object_ref["subresource"] = json!(subresource);
    }
    object_ref
}

/// The request body as JSON (YAML for server-side apply), for the audit log.
fn body_json(request: &Request) -> Option<Value> {
    if request.body.is_empty() || request.body.len() > MAX_BODY {
        return None;
    }
    if request.header(header::CONTENT_TYPE).contains("yaml") {
        decode::yaml(&request.body).ok()
    } else {
        decode::json(&request.body).ok()
    }
}
