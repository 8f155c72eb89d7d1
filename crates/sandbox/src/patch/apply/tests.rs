//! Server-side apply and update bookkeeping, with the objects kubectl and the operator send.

use serde_json::{Value, json};

use super::super::types::{Builtin, Schema};
use super::*;

const T1: &str = "2025-01-01T00:00:01Z";
const T2: &str = "2025-01-01T00:00:02Z";
const T3: &str = "2025-01-01T00:00:03Z";

fn deployments() -> Builtin {
    Builtin::new("apps", "Deployment")
}

fn request<'a>(config: &'a Value, manager: &'a str, time: &'a str) -> ApplyRequest<'a> {
    ApplyRequest {
        config,
        manager,
        force: false,
        subresource: None,
        time,
        api_version: "apps/v1",
    }
}

fn deployment(replicas: Option<u32>, containers: Value) -> Value {
    let mut out = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                         "spec": {"containers": containers}}
        }
    });
    if let Some(replicas) = replicas {
        out["spec"]["replicas"] = json!(replicas);
    }
    out
}

fn web(image: &str) -> Value {
    json!({"name": "web", "image": image, "ports": [{"containerPort": 80}]})
}

fn entries(object: &Value) -> &Vec<Value> {
    object["metadata"]["managedFields"]
        .as_array()
        .expect("managedFields")
}

fn fields_of<'a>(object: &'a Value, manager: &str) -> &'a Value {
    entries(object)
        .iter()
        .find(|e| e["manager"] == manager)
        .map(|e| &e["fieldsV1"])
        .unwrap_or(&Value::Null)
}

fn apply_ok(live: Option<&Value>, request: &ApplyRequest<'_>) -> Value {
    apply(live, request, &deployments()).unwrap_or_else(|e| panic!("apply failed: {e}"))
}

#[test]
fn create_records_the_applied_fields() {
    let config = deployment(Some(3), json!([web("nginx:1.26")]));
    let out = apply_ok(None, &request(&config, "kubectl", T1));
    assert_eq!(out["spec"], config["spec"]);
    assert_eq!(
        entries(&out),
        &vec![json!({
            "manager": "kubectl",
            "operation": "Apply",
            "apiVersion": "apps/v1",
            "time": T1,
            "fieldsType": "FieldsV1",
            "fieldsV1": {
                "f:metadata": {"f:labels": {"f:app": {}}},
                "f:spec": {
                    "f:replicas": {},
                    "f:selector": {},
                    "f:template": {
                        "f:metadata": {"f:labels": {"f:app": {}}},
                        "f:spec": {"f:containers": {"k:{\"name\":\"web\"}": {
                            ".": {},
                            "f:image": {},
                            "f:name": {},
                            "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {
                                ".": {}, "f:containerPort": {}
                            }}
                        }}}
                    }
                }
            }
        })]
    );
}

#[test]
fn reapplying_the_same_changes_nothing() {
    let config = deployment(Some(3), json!([web("nginx:1.26")]));
    let first = apply_ok(None, &request(&config, "kubectl", T1));
    let second = apply_ok(Some(&first), &request(&config, "kubectl", T2));
    assert_eq!(second, first);
}

#[test]
fn fields_no_longer_applied_are_removed() {
    let mut config = deployment(
        Some(3),
        json!([web("nginx:1.26"), {"name": "sidecar", "image": "envoy"}]),
    );
    config["metadata"]["labels"]["tier"] = json!("front");
    let first = apply_ok(None, &request(&config, "kubectl", T1));
    let second_config = deployment(None, json!([web("nginx:1.26")]));
    let second = apply_ok(Some(&first), &request(&second_config, "kubectl", T2));
    assert!(second["spec"].get("replicas").is_none());
    assert_eq!(second["metadata"]["labels"], json!({"app": "web"}));
    assert_eq!(
        second["spec"]["template"]["spec"]["containers"],
        json!([web("nginx:1.26")])
    );
    assert_eq!(entries(&second)[0]["time"], T2);
    assert!(
        fields_of(&second, "kubectl")["f:spec"]
            .get("f:replicas")
            .is_none()
    );
}

#[test]
fn two_managers_applying_the_same_value_share_it() {
    let config = deployment(Some(3), json!([web("nginx:1.26")]));
    let first = apply_ok(None, &request(&config, "kubectl", T1));
    let other = json!({"apiVersion": "apps/v1", "kind": "Deployment",
                       "metadata": {"name": "web"}, "spec": {"replicas": 3}});
    let shared = apply_ok(Some(&first), &request(&other, "autoscaler", T2));
    assert_eq!(
        fields_of(&shared, "autoscaler"),
        &json!({"f:spec": {"f:replicas": {}}})
    );
    assert!(
        fields_of(&shared, "kubectl")["f:spec"]
            .get("f:replicas")
            .is_some()
    );

    // kubectl stops applying replicas: the autoscaler still owns them, so they stay.
    let without = deployment(None, json!([web("nginx:1.26")]));
    let out = apply_ok(Some(&shared), &request(&without, "kubectl", T3));
    assert_eq!(out["spec"]["replicas"], 3);
    assert!(
        fields_of(&out, "kubectl")["f:spec"]
            .get("f:replicas")
            .is_none()
    );
}

#[test]
fn a_different_value_is_a_conflict_unless_forced() {
    let config = deployment(Some(3), json!([web("nginx:1.26")]));
    let live = apply_ok(None, &request(&config, "kubectl", T1));
    let other = deployment(Some(5), json!([{"name": "web", "image": "nginx:1.27"}]));
    let err = apply(
        Some(&live),
        &request(&other, "deployer", T2),
        &deployments(),
    )
    .unwrap_err();
    let PatchError::Conflicts(conflicts) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(
        conflicts,
        &vec![
            Conflict {
                manager: "kubectl".to_owned(),
                field: ".spec.replicas".to_owned(),
                owner: "\"kubectl\"".to_owned(),
            },
            Conflict {
                manager: "kubectl".to_owned(),
                field: ".spec.template.spec.containers[name=\"web\"].image".to_owned(),
                owner: "\"kubectl\"".to_owned(),
            },
        ]
    );
    assert_eq!(
        err.to_string(),
        "Apply failed with 2 conflicts: conflicts with \"kubectl\":\n- .spec.replicas\n\
         - .spec.template.spec.containers[name=\"web\"].image"
    );
    assert_eq!(conflicts[0].cause_message(), "conflict with \"kubectl\"");

    let forced = apply_ok(
        Some(&live),
        &ApplyRequest {
            force: true,
            ..request(&other, "deployer", T2)
        },
    );
    assert_eq!(forced["spec"]["replicas"], 5);
    assert_eq!(
        forced["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.27"
    );
    assert!(
        fields_of(&forced, "kubectl")["f:spec"]
            .get("f:replicas")
            .is_none()
    );
    assert!(
        fields_of(&forced, "deployer")["f:spec"]
            .get("f:replicas")
            .is_some()
    );
    // The port kubectl applied is still there and still kubectl's.
    assert_eq!(
        forced["spec"]["template"]["spec"]["containers"][0]["ports"],
        json!([{"containerPort": 80}])
    );
}

#[test]
fn an_update_then_an_apply_that_changes_its_field_conflicts() {
    let mut created = deployment(Some(3), json!([web("nginx:1.26")]));
    created["spec"]["strategy"] = json!({});
    created["status"] = json!({});
    record_update(
        None,
        &mut created,
        "kubectl-client-side-apply",
        None,
        T1,
        "apps/v1",
        &deployments(),
    );
    assert_eq!(
        entries(&created),
        &vec![json!({
            "manager": "kubectl-client-side-apply",
            "operation": "Update",
            "apiVersion": "apps/v1",
            "time": T1,
            "fieldsType": "FieldsV1",
            "fieldsV1": {
                "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
                "f:spec": {
                    "f:replicas": {},
                    "f:selector": {},
                    "f:template": {
                        "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
                        "f:spec": {"f:containers": {"k:{\"name\":\"web\"}": {
                            ".": {},
                            "f:image": {},
                            "f:name": {},
                            "f:ports": {".": {}, "k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {
                                ".": {}, "f:containerPort": {}
                            }}
                        }}}
                    }
                }
            }
        })]
    );

    let config = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                        "spec": {"replicas": 5}});
    let err = apply(
        Some(&created),
        &request(&config, "kubectl", T2),
        &deployments(),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Apply failed with 1 conflict: conflict with \"kubectl-client-side-apply\" using apps/v1: \
         .spec.replicas"
    );
    // The same value is no conflict.
    let same = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                      "spec": {"replicas": 3}});
    assert!(
        apply(
            Some(&created),
            &request(&same, "kubectl", T2),
            &deployments()
        )
        .is_ok()
    );
}

#[test]
fn updates_take_fields_from_other_managers() {
    let config = json!({"apiVersion": "apps/v1", "kind": "Deployment",
                        "metadata": {"name": "web"}, "spec": {"replicas": 3, "paused": false}});
    let live = apply_ok(None, &request(&config, "kubectl", T1));

    // kubectl scale: the replicas change hands.
    let mut scaled = live.clone();
    scaled["spec"]["replicas"] = json!(6);
    record_update(
        Some(&live),
        &mut scaled,
        "kubectl-scale",
        None,
        T2,
        "apps/v1",
        &deployments(),
    );
    assert_eq!(
        fields_of(&scaled, "kubectl"),
        &json!({"f:spec": {"f:paused": {}}})
    );
    assert_eq!(
        fields_of(&scaled, "kubectl-scale"),
        &json!({"f:spec": {"f:replicas": {}}})
    );

    // Taking kubectl's last field drops its entry.
    let mut unpaused = scaled.clone();
    unpaused["spec"]["paused"] = json!(true);
    record_update(
        Some(&scaled),
        &mut unpaused,
        "kubectl-scale",
        None,
        T3,
        "apps/v1",
        &deployments(),
    );
    assert_eq!(entries(&unpaused).len(), 1);
    assert_eq!(
        fields_of(&unpaused, "kubectl-scale"),
        &json!({"f:spec": {"f:paused": {}, "f:replicas": {}}})
    );
    assert_eq!(entries(&unpaused)[0]["time"], T3);

    // A write that changes nothing leaves the entries alone, even when the client did not
    // send them back.
    let mut same = managed::without(&unpaused);
    record_update(
        Some(&unpaused),
        &mut same,
        "kubectl-edit",
        None,
        T3,
        "apps/v1",
        &deployments(),
    );
    assert_eq!(same, unpaused);

    // One empty entry clears them.
    let mut cleared = unpaused.clone();
    cleared["metadata"]["managedFields"] = json!([{}]);
    record_update(
        Some(&unpaused),
        &mut cleared,
        "kubectl",
        None,
        T3,
        "apps/v1",
        &deployments(),
    );
    assert!(cleared["metadata"].get("managedFields").is_none());
}

fn rollout_schema() -> Schema {
    Schema::new(json!({
        "type": "object",
        "properties": {
            "spec": {"type": "object", "properties": {"patch": {"type": "string"}}},
            "status": {"type": "object", "properties": {
                "phase": {"type": "string"},
                "conditions": {"type": "array", "x-kubernetes-list-type": "map",
                               "x-kubernetes-list-map-keys": ["type"],
                               "items": {"type": "object"}}
            }}
        }
    }))
}

fn status_request<'a>(config: &'a Value, manager: &'a str, time: &'a str) -> ApplyRequest<'a> {
    ApplyRequest {
        subresource: Some("status"),
        api_version: "patchpilot.io/v1alpha1",
        ..request(config, manager, time)
    }
}

#[test]
fn status_subresource_entries() {
    let types = rollout_schema();
    let live = json!({"apiVersion": "patchpilot.io/v1alpha1", "kind": "PatchRollout",
                      "metadata": {"name": "r1", "namespace": "default", "uid": "u1"},
                      "spec": {"patch": "p1"}});
    let status = json!({"apiVersion": "patchpilot.io/v1alpha1", "kind": "PatchRollout",
                        "metadata": {"name": "r1", "resourceVersion": "5"},
                        "spec": {"patch": "ignored"},
                        "status": {"phase": "Progressing", "conditions": [
                            {"type": "Ready", "status": "False"}]}});
    let out = apply(
        Some(&live),
        &status_request(&status, "patchpilot", T1),
        &types,
    )
    .unwrap();
    assert_eq!(out["spec"], json!({"patch": "p1"}));
    assert_eq!(out["status"]["phase"], "Progressing");
    assert_eq!(
        entries(&out),
        &vec![json!({
            "manager": "patchpilot", "operation": "Apply", "apiVersion": "patchpilot.io/v1alpha1",
            "time": T1, "fieldsType": "FieldsV1", "subresource": "status",
            "fieldsV1": {"f:status": {
                "f:conditions": {"k:{\"type\":\"Ready\"}": {".": {}, "f:status": {}, "f:type": {}}},
                "f:phase": {}
            }}
        })]
    );

    // The operator's next status write replaces its own: no conflict with itself.
    let next = json!({"apiVersion": "patchpilot.io/v1alpha1", "kind": "PatchRollout",
                      "metadata": {"name": "r1"},
                      "status": {"phase": "Succeeded", "conditions": [
                          {"type": "Ready", "status": "True"}]}});
    let out = apply(Some(&out), &status_request(&next, "patchpilot", T2), &types).unwrap();
    assert_eq!(
        out["status"]["conditions"],
        json!([{"type": "Ready", "status": "True"}])
    );

    // Someone edits the status with a plain update: the operator's next apply conflicts.
    let mut edited = out.clone();
    edited["status"]["phase"] = json!("Paused");
    record_update(
        Some(&out),
        &mut edited,
        "kubectl-edit",
        Some("status"),
        T3,
        "patchpilot.io/v1alpha1",
        &types,
    );
    let err = apply(
        Some(&edited),
        &status_request(&next, "patchpilot", T3),
        &types,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Apply failed with 1 conflict: conflict with \"kubectl-edit\" with subresource \"status\" \
         using patchpilot.io/v1alpha1: .status.phase"
    );
}

#[test]
fn sets_and_atomic_items() {
    let types = Builtin::new("", "ConfigMap");
    let config = json!({"apiVersion": "v1", "kind": "ConfigMap",
                        "metadata": {"name": "c", "finalizers": ["example.com/a"],
                                     "ownerReferences": [{"uid": "u1", "kind": "X", "name": "x",
                                                          "apiVersion": "v1"}]},
                        "data": {"k": "v", "gone": null}});
    let out = apply(None, &request(&config, "mgr", T1), &types).unwrap();
    assert!(out["data"].get("gone").is_none());
    assert_eq!(
        fields_of(&out, "mgr"),
        &json!({
            "f:data": {"f:gone": {}, "f:k": {}},
            "f:metadata": {
                "f:finalizers": {"v:\"example.com/a\"": {}},
                "f:ownerReferences": {"k:{\"uid\":\"u1\"}": {}}
            }
        })
    );
}

#[test]
fn setting_null_a_field_someone_else_owns_conflicts() {
    let config = json!({"apiVersion": "apps/v1", "kind": "Deployment",
                        "metadata": {"name": "web"}, "spec": {"replicas": 3}});
    let live = apply_ok(None, &request(&config, "kubectl", T1));
    let unset = json!({"apiVersion": "apps/v1", "kind": "Deployment",
                       "metadata": {"name": "web"}, "spec": {"replicas": null}});
    assert!(matches!(
        apply(Some(&live), &request(&unset, "other", T2), &deployments()),
        Err(PatchError::Conflicts(_))
    ));
}

#[test]
fn list_items_keep_their_place() {
    let item = |name: &str| json!({"name": name, "image": "i"});
    let mut live = deployment(None, json!([item("a"), item("b")]));
    record_update(
        None,
        &mut live,
        "creator",
        None,
        T1,
        "apps/v1",
        &deployments(),
    );
    let config = deployment(None, json!([item("b"), item("c")]));
    let out = apply_ok(Some(&live), &request(&config, "kubectl", T2));
    let names: Vec<&str> = out["spec"]["template"]["spec"]["containers"]
        .as_array()
        .map(|items| items.iter().filter_map(|i| i["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names, ["a", "b", "c"]);
}

#[test]
fn bad_configurations() {
    let types = deployments();
    let cases = [
        (
            json!("text"),
            "the applied configuration must be an object, not string",
        ),
        (
            json!({"apiVersion": "apps/v1"}),
            "Object 'Kind' is missing in '{\"apiVersion\":\"apps/v1\"}'",
        ),
    ];
    for (config, message) in cases {
        assert_eq!(
            apply(None, &request(&config, "kubectl", T1), &types),
            Err(PatchError::Malformed(message.to_owned()))
        );
    }
    let no_key = deployment(None, json!([{"image": "x"}]));
    assert_eq!(
        apply(None, &request(&no_key, "kubectl", T1), &types),
        Err(PatchError::Invalid(
            ".spec.template.spec.containers: element 0: associative list with keys has an \
             element that omits key field \"name\" (and doesn't have default value)"
                .to_owned()
        ))
    );
    let duplicate = deployment(None, json!([{"name": "a"}, {"name": "a"}]));
    assert!(matches!(
        apply(None, &request(&duplicate, "kubectl", T1), &types),
        Err(PatchError::Invalid(_))
    ));
}
