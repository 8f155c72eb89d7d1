//! The API server facing any client: malformed bodies, bodies over its limit, nesting past
//! any reason, content types and `Accept` headers nobody serves, absurd list and watch
//! parameters, malformed label and field selectors, and a watch whose client never reads. Each gets the API server's status
//! code, reason and message, and the server goes on serving every other client.

use http::{Method, header};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::{Api, Client, api::PostParams, client::Body};
use serde_json::Value;

use super::{Backend, config_map};

mod bodies;
mod limits;
mod queries;
mod selectors;
mod stuck;

pub use bodies::malformed_bodies_are_refused_as_the_api_server_words_it;
pub use limits::{
    bodies_over_3_mib_are_refused_with_413, nesting_past_10000_levels_is_refused,
    unknown_content_types_and_accepts_are_refused,
};
pub use queries::{
    absurd_list_and_watch_parameters_get_the_api_server_s_answers,
    odd_watches_get_the_api_server_s_answers,
};
pub use selectors::selectors_are_read_as_the_api_server_reads_them;
pub use stuck::a_watch_nobody_reads_holds_up_no_one;

/// What a raw request got: the status code and the body, as JSON where it is.
struct Answer {
    code: u16,
    body: Value,
}

impl Answer {
    /// The `reason` and `message` of the `Status` answered.
    fn refusal(&self) -> (Option<&str>, &str) {
        (
            self.body["reason"].as_str(),
            self.body["message"].as_str().unwrap_or(""),
        )
    }
}

/// Sends a request as any HTTP client could, with or without `Content-Type` and `Accept`.
async fn ask(
    client: &Client,
    method: Method,
    uri: &str,
    content_type: Option<&str>,
    accept: Option<&str>,
    body: Vec<u8>,
) -> Answer {
    let mut request = http::Request::builder().method(method).uri(uri);
    if let Some(content_type) = content_type {
        request = request.header(header::CONTENT_TYPE, content_type);
    }
    if let Some(accept) = accept {
        request = request.header(header::ACCEPT, accept);
    }
    let request = request.body(Body::from(body)).unwrap();
    let response = client.send(request).await.expect("an answer");
    let code = response.status().as_u16();
    let bytes = response.into_body().collect_bytes().await.unwrap();
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    Answer { code, body }
}

/// One refusal the API server gives: the request and what it answers.
struct Refusal<'a> {
    method: Method,
    uri: String,
    content_type: Option<&'a str>,
    accept: Option<&'a str>,
    body: Vec<u8>,
    code: u16,
    reason: Option<&'a str>,
    message: String,
}

impl Refusal<'_> {
    async fn check(self, client: &Client) {
        let what = format!(
            "{} {} ({:?}, {} bytes)",
            self.method,
            self.uri,
            self.content_type,
            self.body.len()
        );
        let answer = ask(
            client,
            self.method,
            &self.uri,
            self.content_type,
            self.accept,
            self.body,
        )
        .await;
        assert_eq!(answer.code, self.code, "{what}: {}", answer.body);
        assert_eq!(
            answer.refusal(),
            (self.reason, self.message.as_str()),
            "{what}"
        );
    }
}

/// A GET refused with `code`, `reason` and `message`.
fn refused_get<'a>(
    uri: String,
    code: u16,
    reason: Option<&'a str>,
    message: impl Into<String>,
) -> Refusal<'a> {
    Refusal {
        method: Method::GET,
        uri,
        content_type: None,
        accept: None,
        body: Vec::new(),
        code,
        reason,
        message: message.into(),
    }
}

/// A refusal of a body sent with `content_type`.
fn refused_body<'a>(
    method: Method,
    uri: &str,
    content_type: &'a str,
    body: &[u8],
    reason: &'a str,
    code: u16,
    message: impl Into<String>,
) -> Refusal<'a> {
    Refusal {
        method,
        uri: uri.to_owned(),
        content_type: Some(content_type),
        accept: None,
        body: body.to_vec(),
        code,
        reason: Some(reason),
        message: message.into(),
    }
}

/// The ConfigMaps of the test's namespace, and one of them (`c1`), which the test creates.
async fn config_maps(backend: &impl Backend) -> (String, String) {
    let maps: Api<ConfigMap> = Api::namespaced(backend.client(), backend.namespace());
    maps.create(&PostParams::default(), &config_map("c1", &[]))
        .await
        .unwrap();
    let collection = format!("/api/v1/namespaces/{}/configmaps", backend.namespace());
    let object = format!("{collection}/c1");
    (collection, object)
}

const JSON: &str = "application/json";
const YAML: &str = "application/yaml";
const JSON_PATCH: &str = "application/json-patch+json";
const MERGE_PATCH: &str = "application/merge-patch+json";
const STRATEGIC_PATCH: &str = "application/strategic-merge-patch+json";
const APPLY_PATCH: &str = "application/apply-patch+yaml";

/// What the API server says of a ConfigMap body it cannot read: `why`, and the start of the
/// body (`shown`).
fn unrecognized(why: &str, shown: &str) -> String {
    format!("the object provided is unrecognized (must be of type ConfigMap): {why} ({shown})")
}
