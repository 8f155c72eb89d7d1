//! Absurd list and watch parameters, and odd watches.

use futures::{AsyncBufReadExt, TryStreamExt};
use http::Method;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::{Api, Client, api::PostParams};
use serde_json::{Value, json};

use super::{ask, config_maps, refused_get};
use crate::conformance::{Backend, config_map};

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
