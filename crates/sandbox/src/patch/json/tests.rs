//! JSON patches: every operation, and the errors the API server reports.

use super::*;
use serde_json::json;

fn deployment() -> Value {
    json!({
        "metadata": {"name": "web", "labels": {"app": "web"},
                     "annotations": {"example.com/a~b": "1"}},
        "spec": {"replicas": 3, "template": {"spec": {"containers": [
            {"name": "web", "image": "nginx:1.26"},
            {"name": "sidecar", "image": "envoy:1"}
        ]}}}
    })
}

fn run(patch: Value) -> Result<Value, PatchError> {
    json_patch(&deployment(), &patch)
}

#[test]
fn every_operation() {
    let containers = "/spec/template/spec/containers";
    let cases = [
        (
            json!([{"op": "add", "path": "/metadata/labels/tier", "value": "front"}]),
            "/metadata/labels",
            json!({"app": "web", "tier": "front"}),
        ),
        (
            json!([{"op": "add", "path": "/metadata/labels/app.kubernetes.io~1name",
                 "value": "web"}]),
            "/metadata/labels",
            json!({"app": "web", "app.kubernetes.io/name": "web"}),
        ),
        (
            json!([{"op": "remove", "path": "/metadata/annotations/example.com~1a~0b"}]),
            "/metadata/annotations",
            json!({}),
        ),
        (
            json!([{"op": "replace", "path": "/spec/replicas", "value": 5}]),
            "/spec/replicas",
            json!(5),
        ),
        (
            json!([{"op": "replace", "path": "/spec/paused", "value": true}]),
            "/spec/paused",
            json!(true),
        ),
        (
            json!([{"op": "add", "path": format!("{containers}/-"),
                 "value": {"name": "log"}}]),
            "/spec/template/spec/containers/2/name",
            json!("log"),
        ),
        (
            json!([{"op": "add", "path": format!("{containers}/0"), "value": {"name": "init"}}]),
            "/spec/template/spec/containers/1/name",
            json!("web"),
        ),
        (
            json!([{"op": "remove", "path": format!("{containers}/-1")}]),
            containers,
            json!([{"name": "web", "image": "nginx:1.26"}]),
        ),
        (
            json!([{"op": "replace", "path": format!("{containers}/0/image"),
                 "value": "nginx:1.27"}]),
            "/spec/template/spec/containers/0/image",
            json!("nginx:1.27"),
        ),
        (
            json!([{"op": "move", "from": "/metadata/labels/app", "path": "/metadata/labels/x"}]),
            "/metadata/labels",
            json!({"x": "web"}),
        ),
        (
            json!([{"op": "copy", "from": "/spec/replicas", "path": "/spec/minReadySeconds"}]),
            "/spec/minReadySeconds",
            json!(3),
        ),
        (
            json!([{"op": "test", "path": "/spec/replicas", "value": 3},
                {"op": "replace", "path": "/spec/replicas", "value": 4}]),
            "/spec/replicas",
            json!(4),
        ),
        (
            json!([{"op": "test", "path": "/spec/nothing", "value": null}]),
            "/spec/replicas",
            json!(3),
        ),
    ];
    for (patch, pointer, expected) in cases {
        let out = run(patch.clone()).unwrap_or_else(|e| panic!("{patch}: {e}"));
        assert_eq!(out.pointer(pointer), Some(&expected), "{patch}");
    }
}

#[test]
fn errors() {
    let cases = [
        (
            json!([{"op": "add", "path": "/spec/foo/bar", "value": 1}]),
            "add operation does not apply: doc is missing path: \"/spec/foo/bar\": missing value",
        ),
        (
            json!([{"op": "remove", "path": "/spec/foo"}]),
            "error in remove for path: '/spec/foo': Unable to remove nonexistent key: foo: \
          missing value",
        ),
        (
            json!([{"op": "remove", "path": "/spec/foo/bar"}]),
            "remove operation does not apply: doc is missing path: \"/spec/foo/bar\": \
          missing value",
        ),
        (
            json!([{"op": "replace", "path": "/spec/foo/bar", "value": 1}]),
            "replace operation does not apply: doc is missing path: /spec/foo/bar: \
          missing value",
        ),
        (
            json!([{"op": "replace", "path": "/spec/template/spec/containers/5", "value": 1}]),
            "replace operation does not apply: doc is missing key: \
          /spec/template/spec/containers/5: missing value",
        ),
        (
            json!([{"op": "add", "path": "/spec/template/spec/containers/5", "value": 1}]),
            "error in add for path: '/spec/template/spec/containers/5': Unable to access \
          invalid index: 5: invalid index referenced",
        ),
        (
            json!([{"op": "test", "path": "/spec/replicas", "value": 4}]),
            "testing value /spec/replicas failed: test failed",
        ),
        (
            json!([{"op": "test", "path": "/spec/replicas", "value": 3.0}]),
            "testing value /spec/replicas failed: test failed",
        ),
        (
            json!([{"op": "move", "from": "/spec/nothing", "path": "/spec/x"}]),
            "error in move for path: 'nothing': Unable to remove nonexistent key: nothing: \
          missing value",
        ),
        (
            json!([{"op": "copy", "from": "/x/y", "path": "/spec/x"}]),
            "copy operation does not apply: doc is missing from path: /x/y: missing value",
        ),
        (
            json!([{"op": "frobnicate", "path": "/spec"}]),
            "Unexpected kind: frobnicate",
        ),
        (json!([{"path": "/spec"}]), "Unexpected kind: unknown"),
        (
            json!([{"op": "add", "value": 1}]),
            "add operation failed to decode path: missing value",
        ),
        (
            json!([{"op": "replace", "value": 1}]),
            "replace operation failed to decode path: operation missing path field: \
          missing value",
        ),
        (
            json!([{"op": "add", "path": "/spec/template/spec/containers/x", "value": 1}]),
            "error in add for path: '/spec/template/spec/containers/x': value was not a \
          proper array index: 'x': strconv.Atoi: parsing \"x\": invalid syntax",
        ),
    ];
    for (patch, message) in cases {
        assert_eq!(
            run(patch.clone()),
            Err(PatchError::Invalid(message.to_owned())),
            "{patch}"
        );
    }
}

#[test]
fn a_failed_operation_fails_the_whole_patch() {
    let patch = json!([
        {"op": "replace", "path": "/spec/replicas", "value": 9},
        {"op": "test", "path": "/spec/replicas", "value": 3}
    ]);
    assert!(matches!(run(patch), Err(PatchError::Invalid(_))));
}

#[test]
fn malformed_patches() {
    for (patch, message) in [
        (
            json!({"op": "add"}),
            "json: cannot unmarshal object into Go value of type jsonpatch.Patch",
        ),
        (
            json!(["add"]),
            "json: cannot unmarshal string into Go value of type jsonpatch.Operation",
        ),
    ] {
        assert_eq!(run(patch), Err(PatchError::Malformed(message.to_owned())));
    }
    assert_eq!(run(json!(null)), Ok(deployment()));
    assert_eq!(run(json!([])), Ok(deployment()));
}

#[test]
fn whole_document() {
    let out = run(json!([{"op": "replace", "path": "", "value": {"a": 1}}]));
    assert_eq!(out, Ok(json!({"a": 1})));
    assert!(run(json!([{"op": "test", "path": "", "value": deployment()}])).is_ok());
    assert!(run(json!([{"op": "add", "path": "", "value": 1}])).is_err());
    assert_eq!(
        run(json!([{"op": "replace", "path": "", "value": 5}])),
        Ok(deployment())
    );
}

#[test]
fn limits() {
    let test = json!({"op": "test", "path": "/spec/replicas", "value": 3});
    let many = Value::Array(vec![test; 10_001]);
    assert!(matches!(run(many), Err(PatchError::Malformed(_))));
    // Copies that double the document soon reach the copy limit.
    let mut doubling = vec![json!({"op": "add", "path": "/blob", "value": ["x".repeat(1000)]})];
    for _ in 0..20 {
        doubling.push(json!({"op": "copy", "from": "/blob", "path": "/copy"}));
        doubling.push(json!({"op": "move", "from": "/copy", "path": "/blob/-"}));
    }
    let out = run(Value::Array(doubling));
    assert!(
        matches!(out, Err(PatchError::Invalid(m)) if m.starts_with("Unable to complete the copy"))
    );
}
