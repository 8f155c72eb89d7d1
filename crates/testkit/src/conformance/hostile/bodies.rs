//! Malformed bodies, in every media type a route reads.

use http::Method;
use serde_json::json;

use super::{
    APPLY_PATCH, JSON, JSON_PATCH, MERGE_PATCH, STRATEGIC_PATCH, YAML, config_maps, refused_body,
    unrecognized,
};
use crate::conformance::Backend;

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
