//! The API server facing any client: malformed bodies, bodies over its limit, nesting past
//! any reason, content types and `Accept` headers nobody serves, absurd list and watch
//! parameters, and a watch whose client never reads. Each gets the API server's status
//! code, reason and message, and the server goes on serving every other client.

use std::time::{Duration, Instant};

use futures::{AsyncBufReadExt, StreamExt, TryStreamExt};
use http::{Method, header};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::{
    Api, Client,
    api::{ListParams, PostParams, WatchEvent, WatchParams},
    client::Body,
};
use serde_json::{Value, json};

use super::{Backend, config_map};

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

/// Malformed JSON and YAML bodies and empty ones, on create, update and every patch type,
/// are refused with 400 and the API server's words: Go's JSON scanner's, go-yaml's, "invalid
/// JSON patch" for any patch it cannot read.
pub async fn malformed_bodies_are_refused_as_the_api_server_words_it(backend: &impl Backend) {
    let client = backend.client();
    let (collection, object) = config_maps(backend).await;
    let no_kind = "couldn't get version/kind; json parse error:";
    let cases = [
        (
            Method::POST,
            JSON,
            &b"{\"metadata\":"[..],
            format!("{no_kind} unexpected end of JSON input"),
            "{\"metadata\":",
        ),
        (
            Method::POST,
            JSON,
            b"",
            format!("{no_kind} unexpected end of JSON input"),
            "<empty>",
        ),
        (
            Method::POST,
            JSON,
            b"{\"a\":tru}",
            format!("{no_kind} invalid character '}}' in literal true (expecting 'e')"),
            "{\"a\":tru}",
        ),
        (
            Method::POST,
            JSON,
            b"{} {}",
            format!("{no_kind} invalid character '{{' after top-level value"),
            "{} {}",
        ),
        (
            Method::POST,
            JSON,
            b"{\"a\" 1}",
            format!("{no_kind} invalid character '1' after object key"),
            "{\"a\" 1}",
        ),
        (
            Method::POST,
            JSON,
            b"{\"a\":1,}",
            format!("{no_kind} invalid character '}}' looking for beginning of object key string"),
            "{\"a\":1,}",
        ),
        (
            Method::POST,
            JSON,
            b"{\"a\":[1 2]}",
            format!("{no_kind} invalid character '2' after array element"),
            "{\"a\":[1 2]}",
        ),
        (
            Method::POST,
            JSON,
            b"[]",
            format!(
                "{no_kind} json: cannot unmarshal array into Go value of type struct {{ APIVersion string \"json:\\\"apiVersion,omitempty\\\"\"; Kind string \"json:\\\"kind,omitempty\\\"\" }}"
            ),
            "5b5d",
        ),
        (
            Method::POST,
            YAML,
            b"{\"metadata\":",
            "yaml: line 1: did not find expected node content".to_owned(),
            "{\"metadata\":",
        ),
        (
            Method::POST,
            YAML,
            b"a: [b",
            "yaml: line 1: did not find expected ',' or ']'".to_owned(),
            "613a205b62",
        ),
        (
            Method::POST,
            YAML,
            b"metadata: {name: y1}\nfoo: : bar\n",
            "yaml: line 2: mapping values are not allowed in this context".to_owned(),
            "6d657461646174613a207b6e616d653a2079317d0a666f6f3a203a206261 ...",
        ),
        (
            Method::PUT,
            JSON,
            b"{\"metadata\":",
            format!("{no_kind} unexpected end of JSON input"),
            "{\"metadata\":",
        ),
        (
            Method::PUT,
            JSON,
            b"",
            format!("{no_kind} unexpected end of JSON input"),
            "<empty>",
        ),
    ];
    for (method, content_type, body, why, shown) in cases {
        let uri = if method == Method::PUT {
            &object
        } else {
            &collection
        };
        let message = unrecognized(&why, shown);
        refused_body(method, uri, content_type, body, "BadRequest", 400, message)
            .check(&client)
            .await;
    }
    // Bodies that read as an empty object: an object without a name.
    let nameless = "ConfigMap \"\" is invalid: metadata.name: Required value: name or generateName is required";
    for (content_type, body) in [(YAML, &b""[..]), (JSON, b"null"), (JSON, b"{}")] {
        refused_body(
            Method::POST,
            &collection,
            content_type,
            body,
            "Invalid",
            422,
            nameless,
        )
        .check(&client)
        .await;
    }
    // DeleteOptions are refused without saying what was expected.
    for (body, why) in [
        (&b"{\"metadata\":"[..], "unexpected end of JSON input"),
        (
            b"[]",
            "json: cannot unmarshal array into Go value of type struct { APIVersion string \"json:\\\"apiVersion,omitempty\\\"\"; Kind string \"json:\\\"kind,omitempty\\\"\" }",
        ),
    ] {
        let message = format!("{no_kind} {why}");
        refused_body(
            Method::DELETE,
            &object,
            JSON,
            body,
            "BadRequest",
            400,
            message,
        )
        .check(&client)
        .await;
    }
    for content_type in [JSON_PATCH, MERGE_PATCH, STRATEGIC_PATCH] {
        for body in [&b"{\"metadata\":"[..], b"", b"{\"a\":tru}"] {
            let uri = format!("{object}?fieldManager=tester");
            refused_body(
                Method::PATCH,
                &uri,
                content_type,
                body,
                "BadRequest",
                400,
                "invalid JSON patch",
            )
            .check(&client)
            .await;
        }
    }
    // Patches of the wrong shape, as the API server's decoder refuses them.
    let shapes = [
        (
            JSON_PATCH,
            &b"{\"op\":\"add\"}"[..],
            "cannot unmarshal object into Go value of type []handlers.jsonPatchOp",
        ),
        (
            JSON_PATCH,
            b"[1]",
            "cannot unmarshal number into Go value of type handlers.jsonPatchOp",
        ),
        (
            MERGE_PATCH,
            b"[]",
            "cannot unmarshal array into Go value of type map[string]interface {}",
        ),
        (
            MERGE_PATCH,
            b"\"x\"",
            "cannot unmarshal string into Go value of type map[string]interface {}",
        ),
    ];
    for (content_type, body, why) in shapes {
        let message = format!("error decoding patch: json: {why}");
        refused_body(
            Method::PATCH,
            &object,
            content_type,
            body,
            "BadRequest",
            400,
            message,
        )
        .check(&client)
        .await;
    }
    // A strategic merge patch is decoded later, by code that does not say so.
    for (body, why) in [(&b"[]"[..], "array"), (b"\"x\"", "string")] {
        let message =
            format!("json: cannot unmarshal {why} into Go value of type map[string]interface {{}}");
        refused_body(
            Method::PATCH,
            &object,
            STRATEGIC_PATCH,
            body,
            "BadRequest",
            400,
            message,
        )
        .check(&client)
        .await;
    }
    let test = json!({"op": "test", "path": "/metadata/name", "value": "c1"});
    let operations = serde_json::to_vec(&vec![test; 10_001]).unwrap();
    let message = "Request entity too large: The allowed maximum operations in a JSON patch is 10000, got 10001";
    refused_body(
        Method::PATCH,
        &object,
        JSON_PATCH,
        &operations,
        "RequestEntityTooLarge",
        413,
        message,
    )
    .check(&client)
    .await;

    let apply = format!("{object}?fieldManager=tester");
    refused_body(
        Method::PATCH,
        &apply,
        APPLY_PATCH,
        b"{\"metadata\":",
        "BadRequest",
        400,
        "error decoding patch: error converting YAML to JSON: yaml: line 1: did not find expected node content",
    )
    .check(&client)
    .await;
    let untyped = [
        (&b""[..], "/, Kind="),
        (b"{}", "/, Kind="),
        (b"apiVersion: v1", "/v1, Kind="),
        (b"apiVersion: apps/v1", "apps/v1, Kind="),
        (b"kind: ConfigMap", "/, Kind=ConfigMap"),
    ];
    for (body, read) in untyped {
        let message = format!("invalid object type: {read}");
        refused_body(
            Method::PATCH,
            &apply,
            APPLY_PATCH,
            body,
            "BadRequest",
            400,
            message,
        )
        .check(&client)
        .await;
    }
}

/// The API server reads no body over 3 MiB (3,145,728 bytes): 413, whatever the verb.
pub async fn bodies_over_3_mib_are_refused_with_413(backend: &impl Backend) {
    let client = backend.client();
    let (collection, object) = config_maps(backend).await;
    let limit = 3 * 1024 * 1024;
    let big = |name: &str| {
        let mut body = json!({"metadata": {"name": name}, "data": {"k": "x".repeat(limit)}})
            .to_string()
            .into_bytes();
        body.truncate(limit + 1);
        body
    };
    let message = "Request entity too large: limit is 3145728";
    let cases = [
        (Method::POST, collection.clone(), JSON),
        (Method::PUT, object.clone(), JSON),
        (Method::PATCH, object.clone(), MERGE_PATCH),
        (
            Method::PATCH,
            format!("{object}?fieldManager=tester"),
            APPLY_PATCH,
        ),
    ];
    for (method, uri, content_type) in cases {
        refused_body(
            method,
            &uri,
            content_type,
            &big("c1"),
            "RequestEntityTooLarge",
            413,
            message,
        )
        .check(&client)
        .await;
    }

    // Within the limit, a ConfigMap's or Secret's data is held to 1 MiB, on every write.
    let two_mib = "x".repeat(2 << 20);
    let too_long = "Too long: may not be more than 1048576 bytes";
    let map = json!({"metadata": {"name": "c2"}, "data": {"k": two_mib}}).to_string();
    let message = format!("ConfigMap \"c2\" is invalid: []: {too_long}");
    refused_body(
        Method::POST,
        &collection,
        JSON,
        map.as_bytes(),
        "Invalid",
        422,
        message,
    )
    .check(&client)
    .await;
    let map = json!({"metadata": {"name": "c1"}, "data": {"k": two_mib}}).to_string();
    let message = format!("ConfigMap \"c1\" is invalid: []: {too_long}");
    refused_body(
        Method::PUT,
        &object,
        JSON,
        map.as_bytes(),
        "Invalid",
        422,
        &message,
    )
    .check(&client)
    .await;
    let patch = json!({"data": {"k": two_mib}}).to_string();
    refused_body(
        Method::PATCH,
        &object,
        MERGE_PATCH,
        patch.as_bytes(),
        "Invalid",
        422,
        &message,
    )
    .check(&client)
    .await;
    let secrets = format!("/api/v1/namespaces/{}/secrets", backend.namespace());
    let secret = json!({"metadata": {"name": "s1"}, "stringData": {"k": two_mib}}).to_string();
    let message = format!("Secret \"s1\" is invalid: data: {too_long}");
    refused_body(
        Method::POST,
        &secrets,
        JSON,
        secret.as_bytes(),
        "Invalid",
        422,
        message,
    )
    .check(&client)
    .await;

    // Whoever sent them, the server goes on serving.
    let maps: Api<ConfigMap> = Api::namespaced(client, backend.namespace());
    assert_eq!(maps.get("c1").await.unwrap().data.unwrap()["key"], "value");
}

/// 100,000 levels of `[` or `{"a":`, in JSON or YAML, harm no one: refused past Go's 10,000
/// levels with its words (go-yaml's for YAML), quickly, and the server goes on serving.
pub async fn nesting_past_10000_levels_is_refused(backend: &impl Backend) {
    let client = backend.client();
    let (collection, object) = config_maps(backend).await;
    let levels = 100_000;
    let brackets = "[".repeat(levels).into_bytes();
    let objects = format!(
        "{{\"metadata\":{{\"name\":\"deep\"}},\"x\":{}1{}}}",
        "{\"a\":".repeat(levels),
        "}".repeat(levels)
    )
    .into_bytes();
    let no_kind = "couldn't get version/kind; json parse error:";
    let depth = "yaml: exceeded max depth of 10000";
    let started = Instant::now();
    let cases = [
        (
            Method::POST,
            &collection,
            JSON,
            &brackets,
            unrecognized(
                &format!("{no_kind} invalid character '[' exceeded max depth"),
                &format!("{} ...", "5b".repeat(30)),
            ),
        ),
        (
            Method::POST,
            &collection,
            JSON,
            &objects,
            unrecognized(
                &format!("{no_kind} invalid character '{{' exceeded max depth"),
                "{\"metadata\":{\"name\":\"deep\"},\"x ...",
            ),
        ),
        (
            Method::PUT,
            &object,
            JSON,
            &objects,
            unrecognized(
                &format!("{no_kind} invalid character '{{' exceeded max depth"),
                "{\"metadata\":{\"name\":\"deep\"},\"x ...",
            ),
        ),
        (
            Method::PATCH,
            &object,
            MERGE_PATCH,
            &objects,
            "invalid JSON patch".to_owned(),
        ),
        (
            Method::PATCH,
            &object,
            STRATEGIC_PATCH,
            &objects,
            "invalid JSON patch".to_owned(),
        ),
        (
            Method::PATCH,
            &object,
            JSON_PATCH,
            &brackets,
            "invalid JSON patch".to_owned(),
        ),
        (
            Method::POST,
            &collection,
            YAML,
            &objects,
            unrecognized(depth, "{\"metadata\":{\"name\":\"deep\"},\"x ..."),
        ),
        (
            Method::POST,
            &collection,
            YAML,
            &brackets,
            unrecognized(depth, &format!("{} ...", "5b".repeat(30))),
        ),
    ];
    for (method, uri, content_type, body, message) in cases {
        refused_body(method, uri, content_type, body, "BadRequest", 400, message)
            .check(&client)
            .await;
    }
    let apply = format!("{object}?fieldManager=tester");
    let message = format!("error decoding patch: error converting YAML to JSON: {depth}");
    refused_body(
        Method::PATCH,
        &apply,
        APPLY_PATCH,
        &objects,
        "BadRequest",
        400,
        message,
    )
    .check(&client)
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "refusing deep documents took {:?}",
        started.elapsed()
    );
    let maps: Api<ConfigMap> = Api::namespaced(client, backend.namespace());
    assert_eq!(maps.get("c1").await.unwrap().data.unwrap()["key"], "value");
}

/// A body in a media type no route reads (415, worded by the router for patches and by the
/// handler for objects), and an `Accept` naming nothing the server writes (406).
pub async fn unknown_content_types_and_accepts_are_refused(backend: &impl Backend) {
    let client = backend.client();
    let (collection, object) = config_maps(backend).await;
    let patch = br#"{"data":{"key":"patched"}}"#;
    let unsupported = "415: Unsupported Media Type";
    for content_type in ["text/plain", JSON, "garbage;;;"] {
        refused_body(
            Method::PATCH,
            &object,
            content_type,
            patch,
            "UnsupportedMediaType",
            415,
            unsupported,
        )
        .check(&client)
        .await;
    }
    let unknown = "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf";
    let body = serde_json::to_vec(&config_map("c2", &[])).unwrap();
    refused_body(
        Method::POST,
        &collection,
        "text/plain",
        &body,
        "UnsupportedMediaType",
        415,
        unknown,
    )
    .check(&client)
    .await;
    refused_body(
        Method::PUT,
        &object,
        "application/xml",
        &body,
        "UnsupportedMediaType",
        415,
        unknown,
    )
    .check(&client)
    .await;

    let served = "application/json, application/yaml, application/vnd.kubernetes.protobuf";
    let not_acceptable = format!("406: Not Acceptable\n\nAvailable representations: {served}");
    let cases = [
        (Method::GET, &object, "text/html", not_acceptable.clone()),
        (Method::GET, &object, "garbage", not_acceptable.clone()),
        (
            Method::GET,
            &object,
            "application/json;as=Foo;g=meta.k8s.io;v=v1",
            format!("only the following media types are accepted: {served}"),
        ),
        (
            Method::GET,
            &collection,
            "text/html",
            format!(
                "{not_acceptable}, application/json;stream=watch, application/vnd.kubernetes.protobuf;stream=watch"
            ),
        ),
        (
            Method::POST,
            &collection,
            "text/html",
            not_acceptable.clone(),
        ),
    ];
    for (method, uri, accept, message) in cases {
        let body = if method == Method::POST {
            body.clone()
        } else {
            Vec::new()
        };
        Refusal {
            content_type: (method == Method::POST).then_some(JSON),
            method,
            uri: uri.clone(),
            accept: Some(accept),
            body,
            code: 406,
            reason: Some("NotAcceptable"),
            message,
        }
        .check(&client)
        .await;
    }
    // Nothing was written.
    let maps: Api<ConfigMap> = Api::namespaced(client, backend.namespace());
    assert!(maps.get_opt("c2").await.unwrap().is_none());
    assert_eq!(maps.get("c1").await.unwrap().data.unwrap()["key"], "value");
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

/// `ListOptions`' 422 with one forbidden field.
fn forbidden(field: &str, message: &str) -> String {
    format!("ListOptions.meta.k8s.io \"\" is invalid: {field}: Forbidden: {message}")
}

/// Absurd `limit`, `continue`, `resourceVersion`, `resourceVersionMatch` and
/// `timeoutSeconds` on lists and watches get the API server's answers.
pub async fn absurd_list_and_watch_parameters_get_the_api_server_s_answers(backend: &impl Backend) {
    let client = backend.client();
    let (collection, _) = config_maps(backend).await;
    let list = |query: &str| format!("{collection}?{query}");
    let watch = |query: &str| format!("{collection}?watch=true&timeoutSeconds=5&{query}");
    let bad = Some("BadRequest");
    let invalid = Some("Invalid");
    let parse_int = |text: &str, why: &str| format!("strconv.ParseInt: parsing \"{text}\": {why}");
    let parse_uint = |text: &str, why: &str| {
        format!(
            "resourceVersion: Invalid value: \"{text}\": strconv.ParseUint: parsing \"{text}\": {why}"
        )
    };
    let cases = [
        refused_get(
            list("limit=abc"),
            400,
            bad,
            parse_int("abc", "invalid syntax"),
        ),
        refused_get(
            list("limit=99999999999999999999"),
            400,
            bad,
            parse_int("99999999999999999999", "value out of range"),
        ),
        refused_get(
            list("timeoutSeconds=abc"),
            400,
            bad,
            parse_int("abc", "invalid syntax"),
        ),
        refused_get(
            list("continue=garbage"),
            400,
            bad,
            "invalid continue token: continue key is not valid: invalid character '\\u0081' looking for beginning of value",
        ),
        refused_get(
            list("resourceVersion=abc"),
            400,
            bad,
            format!(
                "invalid resource version: {}",
                parse_uint("abc", "invalid syntax")
            ),
        ),
        refused_get(
            list("resourceVersion=-5"),
            400,
            bad,
            format!(
                "invalid resource version: {}",
                parse_uint("-5", "invalid syntax")
            ),
        ),
        refused_get(
            list("limit=1&resourceVersion=abc"),
            400,
            bad,
            format!(
                "invalid resource version: {}",
                parse_uint("abc", "invalid syntax")
            ),
        ),
        refused_get(
            list("resourceVersionMatch=NotOlderThan"),
            422,
            invalid,
            forbidden(
                "resourceVersionMatch",
                "resourceVersionMatch is forbidden unless resourceVersion is provided",
            ),
        ),
        refused_get(
            list("resourceVersionMatch=Exact"),
            422,
            invalid,
            forbidden(
                "resourceVersionMatch",
                "resourceVersionMatch is forbidden unless resourceVersion is provided",
            ),
        ),
        refused_get(
            list("resourceVersionMatch=Bogus&resourceVersion=1"),
            422,
            invalid,
            "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Unsupported value: \"Bogus\": supported values: \"Exact\", \"NotOlderThan\", \"\"",
        ),
        refused_get(
            watch("limit=abc"),
            400,
            bad,
            parse_int("abc", "invalid syntax"),
        ),
        // The watch cache's parse error reaches the client as an untyped 500.
        refused_get(
            watch("resourceVersion=abc"),
            500,
            None,
            parse_uint("abc", "invalid syntax"),
        ),
        refused_get(
            watch("resourceVersion=-5"),
            500,
            None,
            parse_uint("-5", "invalid syntax"),
        ),
        refused_get(
            watch("resourceVersion=99999999999999999999999"),
            500,
            None,
            parse_uint("99999999999999999999999", "value out of range"),
        ),
        refused_get(
            watch("resourceVersionMatch=NotOlderThan"),
            422,
            invalid,
            forbidden(
                "resourceVersionMatch",
                "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
            ),
        ),
        refused_get(
            watch("continue=garbage"),
            422,
            invalid,
            forbidden(
                "resourceVersionMatch",
                "resourceVersionMatch is forbidden when continue is provided",
            ),
        ),
    ];
    for case in cases {
        case.check(&client).await;
    }

    // A field selector on a field the kind is not selected by, in the words of its kind.
    let namespace = backend.namespace();
    let generic =
        "\"foo\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\"";
    let selectors = [
        (collection.clone(), generic),
        (
            format!("/apis/apps/v1/namespaces/{namespace}/deployments"),
            generic,
        ),
        (
            format!("/api/v1/namespaces/{namespace}/pods"),
            "field label not supported: foo",
        ),
        (
            format!("/api/v1/namespaces/{namespace}/services"),
            "field label not supported: foo",
        ),
        (
            format!("/apis/batch/v1/namespaces/{namespace}/jobs"),
            "field label \"foo\" not supported for Job",
        ),
    ];
    for (uri, message) in selectors {
        refused_get(format!("{uri}?fieldSelector=foo%3Dbar"), 400, bad, message)
            .check(&client)
            .await;
    }

    // A resource version the server has not reached: 504 with a retry, for every match.
    for query in [
        "",
        "&resourceVersionMatch=NotOlderThan",
        "&resourceVersionMatch=Exact",
    ] {
        let answer = ask(
            &client,
            Method::GET,
            &list(&format!("resourceVersion=99999999999{query}")),
            None,
            None,
            Vec::new(),
        )
        .await;
        assert_eq!(answer.code, 504, "{query}: {}", answer.body);
        let (reason, message) = answer.refusal();
        assert_eq!(reason, Some("Timeout"));
        assert!(
            message.starts_with("Timeout: Too large resource version: 99999999999, current: "),
            "{message}"
        );
        assert_eq!(
            answer.body["details"],
            json!({"causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}], "retryAfterSeconds": 1})
        );
    }

    // What the server reads as no limit, or as no timeout.
    for query in ["limit=-1", "limit=0", "timeoutSeconds=-1"] {
        let answer = ask(&client, Method::GET, &list(query), None, None, Vec::new()).await;
        assert_eq!(answer.code, 200, "{query}: {}", answer.body);
        let names: Vec<&str> = answer.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|i| i["metadata"]["name"].as_str())
            .collect();
        assert!(names.contains(&"c1"), "{query}: {names:?}");
        assert!(answer.body["metadata"].get("continue").is_none(), "{query}");
    }

    // A continue token of another resource's list is read as any other.
    let namespaces = ask(
        &client,
        Method::GET,
        "/api/v1/namespaces?limit=1",
        None,
        None,
        Vec::new(),
    )
    .await;
    let token = namespaces.body["metadata"]["continue"]
        .as_str()
        .unwrap()
        .to_owned();
    let answer = ask(
        &client,
        Method::GET,
        &list(&format!("continue={token}")),
        None,
        None,
        Vec::new(),
    )
    .await;
    assert_eq!(answer.code, 200, "{}", answer.body);
}

/// The lines of a watch, until it ends.
async fn watch_lines(client: &Client, uri: &str) -> Vec<Value> {
    let request = http::Request::get(uri).body(Vec::new()).unwrap();
    let lines = client.request_stream(request).await.unwrap().lines();
    lines
        .map_ok(|line| serde_json::from_str(&line).unwrap())
        .try_collect()
        .await
        .unwrap()
}

/// A watch whose timeout has passed before it begins ends at once; one from a
/// resource version the server has not reached sends nothing up to it; `watch` is on for
/// any value but `0`, `f` or `false`.
pub async fn odd_watches_get_the_api_server_s_answers(backend: &impl Backend) {
    let client = backend.client();
    let (collection, _) = config_maps(backend).await;
    let lines = watch_lines(
        &client,
        &format!("{collection}?watch=true&timeoutSeconds=-1"),
    )
    .await;
    // The API server's watch ends at once, with that event or, as a race inside it goes,
    // with nothing at all; never with the objects.
    assert!(lines.len() <= 1, "{lines:?}");
    if let Some(error) = lines.first() {
        assert_eq!(error["type"], "ERROR");
        assert_eq!(error["object"]["code"], 500);
        assert_eq!(error["object"]["reason"], "InternalError");
        assert_eq!(error["object"]["message"], "context deadline exceeded");
    }

    let future = format!("{collection}?watch=true&timeoutSeconds=2&resourceVersion=99999999999");
    let request = http::Request::get(&future).body(Vec::new()).unwrap();
    let stream = client.request_stream(request).await.unwrap();
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), backend.namespace());
    maps.create(&PostParams::default(), &config_map("c2", &[]))
        .await
        .unwrap();
    let lines: Vec<String> = stream.lines().try_collect().await.unwrap();
    assert!(lines.is_empty(), "{lines:?}");

    for value in ["yes", "abc"] {
        let lines = watch_lines(
            &client,
            &format!("{collection}?watch={value}&timeoutSeconds=1"),
        )
        .await;
        assert!(
            lines
                .iter()
                .any(|l| l["type"] == "ADDED" && l["object"]["metadata"]["name"] == "c1"),
            "watch={value}: {lines:?}"
        );
    }
    let answer = ask(
        &client,
        Method::GET,
        &format!("{collection}?watch=false"),
        None,
        None,
        Vec::new(),
    )
    .await;
    assert_eq!(answer.body["kind"], "ConfigMapList");
}

/// How many ConfigMaps [`a_watch_nobody_reads_holds_up_no_one`] writes, and how big.
const FLOOD: usize = 1_500;
const FLOOD_BYTES: usize = 16 * 1024;

/// A watch whose client never reads it, while thousands of big objects are written: every
/// other client's lists, writes and watches are still answered promptly.
pub async fn a_watch_nobody_reads_holds_up_no_one(backend: &impl Backend) {
    let client = backend.client();
    let namespace = backend.namespace();
    let collection = format!("/api/v1/namespaces/{namespace}/configmaps");
    // The response is held, its body never read.
    let request = http::Request::get(format!("{collection}?watch=true"))
        .body(Body::from(Vec::new()))
        .unwrap();
    let stuck = client.send(request).await.unwrap();
    assert_eq!(stuck.status(), 200);

    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let data = "x".repeat(FLOOD_BYTES);
    let writes = futures::stream::iter(0..FLOOD).map(|i| {
        let maps = maps.clone();
        let mut map = config_map(&format!("flood-{i}"), &[]);
        map.data = Some([("data".to_owned(), data.clone())].into());
        async move { maps.create(&PostParams::default(), &map).await.map(|_| ()) }
    });
    writes
        .buffer_unordered(8)
        .try_collect::<Vec<()>>()
        .await
        .unwrap();

    let prompt = Duration::from_secs(20);
    let started = Instant::now();
    let listed = tokio::time::timeout(
        prompt,
        maps.list_metadata(&ListParams::default().limit(500)),
    )
    .await
    .expect("a list answered while a watch is stuck")
    .unwrap();
    assert_eq!(listed.items.len(), 500);
    let rv = listed.metadata.resource_version.unwrap();
    let mut events = maps
        .watch(&WatchParams::default().timeout(30), &rv)
        .await
        .unwrap()
        .boxed();
    maps.create(&PostParams::default(), &config_map("after", &[]))
        .await
        .unwrap();
    let event = tokio::time::timeout(prompt, events.try_next())
        .await
        .expect("another watch answered while a watch is stuck")
        .unwrap()
        .unwrap();
    match event {
        WatchEvent::Added(map) => assert_eq!(map.metadata.name.as_deref(), Some("after")),
        other => panic!("not the new ConfigMap: {other:?}"),
    }
    assert!(
        started.elapsed() < prompt,
        "others were served in {:?}",
        started.elapsed()
    );
    drop(stuck);
}
