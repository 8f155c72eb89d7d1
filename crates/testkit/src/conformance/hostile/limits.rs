//! Bodies over the API server's limits, nesting past reason, and media types nobody serves.

use std::time::{Duration, Instant};

use http::Method;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use serde_json::json;

use super::{
    APPLY_PATCH, JSON, JSON_PATCH, MERGE_PATCH, Refusal, STRATEGIC_PATCH, YAML, config_maps,
    refused_body, unrecognized,
};
use crate::conformance::{Backend, config_map};

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
