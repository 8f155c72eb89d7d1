//! Strategic merge patches as kubectl sends them.

use serde_json::{Value, json};

use super::super::types::Builtin;
use super::*;

fn patch(kind: (&str, &str), target: &Value, patch: &Value) -> Result<Value> {
    let out = strategic_merge_patch(target, patch, &Builtin::new(kind.0, kind.1))?;
    assert_no_directives(&out);
    Ok(out)
}

const DEPLOYMENT: (&str, &str) = ("apps", "Deployment");
const NODE: (&str, &str) = ("", "Node");
const POD: (&str, &str) = ("", "Pod");

fn assert_no_directives(value: &Value) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                assert!(!key.starts_with('$'), "directive {key} left in the result");
                assert_no_directives(value);
            }
        }
        Value::Array(items) => items.iter().for_each(assert_no_directives),
        _ => {}
    }
}

fn container(name: &str, image: &str) -> Value {
    json!({"name": name, "image": image})
}

fn deployment(containers: Value) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"},
                     "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"}},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate",
                         "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": containers,
                         "tolerations": [{"key": "a", "operator": "Exists"}],
                         "volumes": [{"name": "data", "emptyDir": {}}]}
            }
        }
    })
}

fn containers_of(object: &Value) -> &Value {
    &object["spec"]["template"]["spec"]["containers"]
}

fn names(list: &Value) -> Vec<&str> {
    list.as_array()
        .map(|items| items.iter().filter_map(|i| i["name"].as_str()).collect())
        .unwrap_or_default()
}

#[test]
fn kubectl_set_image() {
    let mut web = container("web", "nginx:1.26");
    web["ports"] = json!([{"containerPort": 80, "protocol": "TCP"}]);
    let live = deployment(json!([web, container("sidecar", "envoy:1")]));
    let body = json!({"spec":{"template":{"spec":{"containers":[
        {"image":"nginx:1.27","name":"web"}]}}}});
    let out = patch(DEPLOYMENT, &live, &body).unwrap();
    let containers = containers_of(&out);
    assert_eq!(names(containers), ["web", "sidecar"]);
    assert_eq!(containers[0]["image"], "nginx:1.27");
    assert_eq!(
        containers[0]["ports"],
        json!([{"containerPort": 80, "protocol": "TCP"}])
    );
    assert_eq!(containers[1]["image"], "envoy:1");
    assert_eq!(out["spec"]["replicas"], 3);
}

#[test]
fn kubectl_cordon_and_uncordon() {
    let node =
        json!({"kind": "Node", "metadata": {"name": "n1"}, "spec": {"podCIDR": "10.0.0.0/24"}});
    let cordoned = patch(NODE, &node, &json!({"spec":{"unschedulable":true}})).unwrap();
    assert_eq!(
        cordoned["spec"],
        json!({"podCIDR": "10.0.0.0/24", "unschedulable": true})
    );
    let uncordoned = patch(NODE, &cordoned, &json!({"spec":{"unschedulable":null}})).unwrap();
    assert_eq!(uncordoned, node);
}

#[test]
fn labels_and_annotations() {
    let live = deployment(json!([container("web", "nginx")]));
    let cases = [
        (
            json!({"metadata":{"labels":{"env":"prod"}}}),
            json!({"app": "web", "env": "prod"}),
        ),
        (
            json!({"metadata":{"labels":{"app":"api"}}}),
            json!({"app": "api"}),
        ),
        (json!({"metadata":{"labels":{"app":null}}}), json!({})),
    ];
    for (body, labels) in cases {
        let out = patch(DEPLOYMENT, &live, &body).unwrap();
        assert_eq!(out["metadata"]["labels"], labels, "{body}");
    }
    let restart = json!({"spec":{"template":{"metadata":{"annotations":{
        "kubectl.kubernetes.io/restartedAt":"2025-01-01T00:00:00Z"}}}}});
    let out = patch(DEPLOYMENT, &live, &restart).unwrap();
    assert_eq!(
        out["spec"]["template"]["metadata"]["labels"],
        json!({"app": "web"})
    );
    assert_eq!(
        out["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"],
        "2025-01-01T00:00:00Z"
    );
}

#[test]
fn client_side_apply_removes_a_container() {
    let live = deployment(json!([
        container("web", "nginx:1.26"),
        container("sidecar", "envoy:1")
    ]));
    let body = json!({
        "metadata":{"annotations":{"kubectl.kubernetes.io/last-applied-configuration":
            "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\"}\n"}},
        "spec":{"template":{"spec":{
            "$setElementOrder/containers":[{"name":"web"}],
            "containers":[{"image":"nginx:1.27","name":"web"},{"$patch":"delete","name":"sidecar"}]
        }}}
    });
    let out = patch(DEPLOYMENT, &live, &body).unwrap();
    assert_eq!(
        containers_of(&out),
        &json!([container("web", "nginx:1.27")])
    );
    assert_eq!(
        out["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"],
        "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\"}\n"
    );
}

#[test]
fn set_element_order() {
    let items = |names: &[&str]| json!(names.iter().map(|n| container(n, "i")).collect::<Vec<_>>());
    let order =
        |names: &[&str]| json!(names.iter().map(|n| json!({"name": n})).collect::<Vec<_>>());
    let cases = [
        // A container inserted in the middle.
        (
            items(&["a", "c"]),
            order(&["a", "b", "c"]),
            json!([container("b", "i")]),
            vec!["a", "b", "c"],
        ),
        // A server-side container keeps its place; a new one goes where the order says.
        (
            items(&["a", "x", "c"]),
            order(&["a", "c", "d"]),
            json!([container("d", "i")]),
            vec!["a", "x", "c", "d"],
        ),
        // Reordering only.
        (
            items(&["a", "b"]),
            order(&["b", "a"]),
            json!(null),
            vec!["b", "a"],
        ),
    ];
    for (live, order, containers, expected) in cases {
        let mut spec = json!({"$setElementOrder/containers": order});
        if !containers.is_null() {
            spec["containers"] = containers;
        }
        let body = json!({"spec": {"template": {"spec": spec}}});
        let out = patch(DEPLOYMENT, &deployment(live), &body).unwrap();
        assert_eq!(names(containers_of(&out)), expected, "{body}");
    }
}

#[test]
fn a_patch_list_out_of_order_is_refused() {
    let body = json!({"spec":{"template":{"spec":{
        "$setElementOrder/containers":[{"name":"a"},{"name":"b"}],
        "containers":[{"name":"b"},{"name":"a"}]}}}});
    let live = deployment(json!([container("a", "i")]));
    assert!(matches!(
        patch(DEPLOYMENT, &live, &body),
        Err(PatchError::Invalid(_))
    ));
}

#[test]
fn keyed_lists_merge_and_keep_order() {
    let live = deployment(json!([
        container("a", "1"),
        container("b", "1"),
        container("c", "1")
    ]));
    let cases = [
        (json!([{"name": "b", "image": "2"}]), vec!["a", "b", "c"]),
        // As in the API server, an item new to the list goes before the items the patch
        // does not mention.
        (
            json!([{"name": "d", "image": "2"}]),
            vec!["d", "a", "b", "c"],
        ),
        (json!([{"name": "a", "$patch": "delete"}]), vec!["b", "c"]),
        (
            json!([{"name": "only", "image": "x"}, {"$patch": "replace"}]),
            vec!["only"],
        ),
    ];
    for (containers, expected) in cases {
        let body = json!({"spec": {"template": {"spec": {"containers": containers}}}});
        let out = patch(DEPLOYMENT, &live, &body).unwrap();
        assert_eq!(names(containers_of(&out)), expected, "{body}");
    }
}

#[test]
fn nested_lists_merge_by_their_keys() {
    let mut web = container("web", "nginx");
    web["env"] = json!([{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]);
    web["ports"] = json!([{"containerPort": 80, "name": "http"}]);
    web["volumeMounts"] = json!([{"mountPath": "/data", "name": "data"}]);
    let live = deployment(json!([web]));
    let body = json!({"spec":{"template":{"spec":{"containers":[{"name":"web",
        "$setElementOrder/env":[{"name":"A"},{"name":"C"},{"name":"B"}],
        "env":[{"name":"C","value":"3"},{"name":"B","value":"two"}],
        "ports":[{"containerPort":80,"protocol":"TCP"},{"containerPort":443}],
        "volumeMounts":[{"mountPath":"/data","readOnly":true}]}]}}}});
    let out = patch(DEPLOYMENT, &live, &body).unwrap();
    let web = &containers_of(&out)[0];
    assert_eq!(
        web["env"],
        json!([{"name": "A", "value": "1"}, {"name": "C", "value": "3"},
               {"name": "B", "value": "two"}])
    );
    assert_eq!(
        web["ports"],
        json!([{"containerPort": 80, "name": "http", "protocol": "TCP"}, {"containerPort": 443}])
    );
    assert_eq!(
        web["volumeMounts"],
        json!([{"mountPath": "/data", "name": "data", "readOnly": true}])
    );
}

#[test]
fn atomic_lists_are_replaced() {
    let live = deployment(json!([container("web", "nginx")]));
    let body = json!({"spec":{"template":{"spec":{"tolerations":[{"key":"b","operator":"Exists"}],
        "containers":[{"name":"web","args":["--x"]}]}}}});
    let out = patch(DEPLOYMENT, &live, &body).unwrap();
    assert_eq!(
        out["spec"]["template"]["spec"]["tolerations"],
        json!([{"key": "b", "operator": "Exists"}])
    );
    let node = json!({"spec": {"taints": [{"key": "a", "effect": "NoSchedule"}]}});
    let out = patch(
        NODE,
        &node,
        &json!({"spec":{"taints":[{"key":"b","effect":"NoExecute"}]}}),
    );
    assert_eq!(
        out.unwrap()["spec"]["taints"],
        json!([{"key": "b", "effect": "NoExecute"}])
    );
}

#[test]
fn map_directives() {
    let live = deployment(json!([container("web", "nginx")]));
    let replace = json!({"spec":{"template":{"metadata":{"labels":{"$patch":"replace","v":"2"}}}}});
    let out = patch(DEPLOYMENT, &live, &replace).unwrap();
    assert_eq!(
        out["spec"]["template"]["metadata"]["labels"],
        json!({"v": "2"})
    );

    let delete = json!({"spec":{"strategy":{"$patch":"delete"}}});
    let out = patch(DEPLOYMENT, &live, &delete).unwrap();
    assert_eq!(out["spec"]["strategy"], json!({}));

    // What kubectl apply sends when the strategy becomes Recreate.
    let retain = json!({"spec":{"strategy":{"$retainKeys":["type"],"rollingUpdate":null,"type":"Recreate"}}});
    let out = patch(DEPLOYMENT, &live, &retain).unwrap();
    assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));

    let volume = json!({"spec":{"template":{"spec":{"volumes":[
        {"$retainKeys":["configMap","name"],"configMap":{"name":"cfg"},"name":"data"}]}}}});
    let out = patch(DEPLOYMENT, &live, &volume).unwrap();
    assert_eq!(
        out["spec"]["template"]["spec"]["volumes"],
        json!([{"name": "data", "configMap": {"name": "cfg"}}])
    );

    let stray =
        json!({"spec":{"strategy":{"$retainKeys":["type"],"rollingUpdate":{"maxSurge":1}}}});
    assert_eq!(
        patch(DEPLOYMENT, &live, &stray),
        Err(PatchError::Malformed(
            "invalid patch format of retainKeys".to_owned()
        ))
    );
}

#[test]
fn finalizers_are_a_set() {
    let pod = json!({"metadata": {"name": "p", "finalizers": ["a.io/x", "b.io/y"]}});
    let cases = [
        (
            json!({"metadata":{"finalizers":["c.io/z","a.io/x"]}}),
            json!(["c.io/z", "a.io/x", "b.io/y"]),
        ),
        (
            json!({"metadata":{"$deleteFromPrimitiveList/finalizers":["a.io/x"]}}),
            json!(["b.io/y"]),
        ),
        (
            json!({"metadata":{"$setElementOrder/finalizers":["c.io/z","b.io/y"],
                            "$deleteFromPrimitiveList/finalizers":["a.io/x"],
                            "finalizers":["c.io/z"]}}),
            json!(["c.io/z", "b.io/y"]),
        ),
        (
            json!({"metadata":{"$deleteFromPrimitiveList/finalizers":["a.io/x","b.io/y"]}}),
            Value::Null,
        ),
    ];
    for (body, expected) in cases {
        let out = patch(POD, &pod, &body).unwrap();
        assert_eq!(out["metadata"]["finalizers"], expected, "{body}");
    }
}

#[test]
fn new_values_are_cleaned() {
    let live = deployment(json!([container("web", "nginx")]));
    let body = json!({"spec":{"template":{"spec":{
        "initContainers":[{"$patch":"delete","name":"x"},{"name":"init","image":"busybox","args":null}],
        "securityContext":{"runAsUser":1000,"fsGroup":null,"$patch":"replace"}}}}});
    let out = patch(DEPLOYMENT, &live, &body).unwrap();
    let spec = &out["spec"]["template"]["spec"];
    assert_eq!(
        spec["initContainers"],
        json!([{"name": "init", "image": "busybox"}])
    );
    // As in the API server, a new map with a `$patch` directive is dropped.
    assert!(spec.get("securityContext").is_none());
}

#[test]
fn errors() {
    let live = deployment(json!([container("web", "nginx")]));
    let in_spec = |spec: Value| json!({"spec": {"template": {"spec": spec}}});
    let invalid = [
        in_spec(json!({"containers": [{"image": "x"}]})),
        in_spec(json!({"containers": [{"$patch": "delete"}]})),
        in_spec(json!({"containers": [{"name": "web", "$patch": "merge"}]})),
        in_spec(json!({"containers": [{"name": "web", "$patch": "bogus"}]})),
        in_spec(json!({"containers": ["web"]})),
        json!({"spec": {"$patch": "bogus"}}),
    ];
    for body in invalid {
        assert!(
            matches!(patch(DEPLOYMENT, &live, &body), Err(PatchError::Invalid(_))),
            "{body}"
        );
    }
    let messages = [
        (
            in_spec(json!({"containers": [{"image": "x"}]})),
            "map: map[image:x] does not contain declared merge key: name",
        ),
        (
            in_spec(json!({"containers": [{"name": "a", "$patch": "bogus"}]})),
            "unknown patch type: bogus in map: map[$patch:bogus name:a]",
        ),
        (
            in_spec(
                json!({"$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
                           "containers": [{"name": "b"}, {"name": "a"}]}),
            ),
            "The order in patch list:\n[map[name:b] map[name:a]]\n doesn't match \
             $setElementOrder list:\n[map[name:a] map[name:b]]\n",
        ),
    ];
    for (body, message) in messages {
        assert_eq!(
            patch(DEPLOYMENT, &live, &body),
            Err(PatchError::Invalid(message.to_owned())),
            "{body}"
        );
    }
    let malformed = [
        json!(["not", "a", "map"]),
        json!({"metadata": {"$deleteFromPrimitiveList/finalizers": "x"}}),
        in_spec(json!({"$setElementOrder/containers": {"name": "web"}})),
        json!({"spec": {"$retainKeys": "replicas"}}),
    ];
    for body in malformed {
        assert!(
            matches!(
                patch(DEPLOYMENT, &live, &body),
                Err(PatchError::Malformed(_))
            ),
            "{body}"
        );
    }
    assert_eq!(patch(DEPLOYMENT, &live, &Value::Null), Ok(live.clone()));
}

#[test]
fn unknown_directives_are_dropped() {
    let live = deployment(json!([container("web", "nginx")]));
    let out = patch(
        DEPLOYMENT,
        &live,
        &json!({"spec": {"$unknown": 1, "paused": true}}),
    )
    .unwrap();
    assert_eq!(out["spec"]["paused"], true);
}
