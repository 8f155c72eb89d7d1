//! The list rules of built-in kinds and of CRD schemas.

use super::*;
use serde_json::json;

fn map(keys: &[&str]) -> ListKind {
    keyed(keys)
}

#[test]
fn builtin_rules() {
    let deployment = Builtin::new("apps", "Deployment");
    let pod = Builtin::new("", "Pod");
    let node = Builtin::new("", "Node");
    let job = Builtin::new("batch", "Job");
    let cronjob = Builtin::new("batch", "CronJob");
    let service = Builtin::new("", "Service");
    let config_map = Builtin::new("", "ConfigMap");
    let t = |rest: &[&'static str]| [&["spec", "template", "spec"][..], rest].concat();
    let cases: Vec<(&dyn TypeInfo, Vec<&str>, ListKind, ListKind)> = vec![
        (
            &deployment,
            t(&["containers"]),
            map(&["name"]),
            map(&["name"]),
        ),
        (
            &deployment,
            t(&["initContainers", "env"]),
            map(&["name"]),
            map(&["name"]),
        ),
        (
            &deployment,
            t(&["containers", "ports"]),
            map(&["containerPort", "protocol"]),
            map(&["containerPort"]),
        ),
        (
            &deployment,
            t(&["containers", "volumeMounts"]),
            map(&["mountPath"]),
            map(&["mountPath"]),
        ),
        (&deployment, t(&["volumes"]), map(&["name"]), map(&["name"])),
        (
            &deployment,
            t(&["tolerations"]),
            ListKind::Atomic,
            ListKind::Atomic,
        ),
        (
            &deployment,
            t(&["containers", "args"]),
            ListKind::Atomic,
            ListKind::Atomic,
        ),
        (
            &deployment,
            vec!["spec", "template", "metadata", "finalizers"],
            ListKind::Set,
            ListKind::Set,
        ),
        (
            &deployment,
            vec!["status", "conditions"],
            map(&["type"]),
            map(&["type"]),
        ),
        (
            &pod,
            vec!["spec", "containers"],
            map(&["name"]),
            map(&["name"]),
        ),
        (
            &pod,
            vec!["spec", "imagePullSecrets"],
            map(&["name"]),
            map(&["name"]),
        ),
        (
            &pod,
            vec!["status", "containerStatuses"],
            ListKind::Atomic,
            ListKind::Atomic,
        ),
        (
            &pod,
            vec!["status", "hostIPs"],
            ListKind::Atomic,
            map(&["ip"]),
        ),
        (
            &pod,
            vec!["metadata", "finalizers"],
            ListKind::Set,
            ListKind::Set,
        ),
        (
            &pod,
            vec!["metadata", "ownerReferences"],
            map(&["uid"]),
            map(&["uid"]),
        ),
        (
            &pod,
            vec!["metadata", "managedFields"],
            ListKind::Atomic,
            ListKind::Atomic,
        ),
        (
            &node,
            vec!["spec", "taints"],
            ListKind::Atomic,
            ListKind::Atomic,
        ),
        (
            &node,
            vec!["spec", "podCIDRs"],
            ListKind::Set,
            ListKind::Set,
        ),
        (
            &node,
            vec!["status", "addresses"],
            map(&["type"]),
            map(&["type"]),
        ),
        (
            &node,
            vec!["status", "conditions"],
            map(&["type"]),
            map(&["type"]),
        ),
        (
            &job,
            vec!["status", "conditions"],
            ListKind::Atomic,
            map(&["type"]),
        ),
        (
            &job,
            vec!["spec", "template", "spec", "containers"],
            map(&["name"]),
            map(&["name"]),
        ),
        (
            &cronjob,
            vec![
                "spec",
                "jobTemplate",
                "spec",
                "template",
                "spec",
                "containers",
            ],
            map(&["name"]),
            map(&["name"]),
        ),
        (
            &service,
            vec!["spec", "ports"],
            map(&["port", "protocol"]),
            map(&["port"]),
        ),
        (
            &config_map,
            vec!["status", "conditions"],
            ListKind::Atomic,
            ListKind::Atomic,
        ),
    ];
    for (types, path, apply, strategic) in cases {
        assert_eq!(types.list(&path), apply, "{path:?}");
        assert_eq!(types.strategic_list(&path), strategic, "{path:?}");
    }
    assert!(deployment.atomic_map(&["spec", "selector"]));
    assert!(!deployment.atomic_map(&["spec", "template", "metadata", "labels"]));
    assert!(deployment.atomic_map(&["spec", "template", "spec", "nodeSelector"]));
    assert!(pod.atomic_map(&["metadata", "ownerReferences"]));
    assert_eq!(
        pod.key_default(&["spec", "containers", "ports"], "protocol"),
        Some(json!("TCP"))
    );
    assert!(deployment.always_present(&["spec", "template"]));
    assert!(!deployment.always_present(&["metadata", "labels"]));
}

#[test]
fn schema_rules() {
    let schema = json!({
        "type": "object",
        "properties": {
            "spec": {"type": "object", "properties": {
                "targets": {"type": "array", "x-kubernetes-list-type": "map",
                            "x-kubernetes-list-map-keys": ["name"],
                            "items": {"type": "object", "properties": {
                                "name": {"type": "string"},
                                "zone": {"type": "string", "default": "a"},
                                "tags": {"type": "array", "x-kubernetes-list-type": "set",
                                         "items": {"type": "string"}}}}},
                "selector": {"type": "object", "x-kubernetes-map-type": "atomic"},
                "params": {"type": "object", "additionalProperties": {
                    "type": "array", "x-kubernetes-list-type": "set"}},
                "steps": {"type": "array", "items": {"type": "string"}}
            }},
            "status": {"type": "object", "properties": {
                "conditions": {"type": "array", "x-kubernetes-list-type": "map",
                               "x-kubernetes-list-map-keys": ["type"],
                               "items": {"type": "object"}}}}
        }
    });
    let types = Schema::new(schema);
    assert_eq!(types.list(&["spec", "targets"]), map(&["name"]));
    assert_eq!(types.list(&["spec", "targets", "tags"]), ListKind::Set);
    assert_eq!(types.list(&["spec", "params", "anything"]), ListKind::Set);
    assert_eq!(types.list(&["spec", "steps"]), ListKind::Atomic);
    assert_eq!(types.list(&["spec", "unknown"]), ListKind::Atomic);
    assert_eq!(types.list(&["status", "conditions"]), map(&["type"]));
    assert_eq!(types.list(&["metadata", "finalizers"]), ListKind::Set);
    assert!(types.atomic_map(&["spec", "selector"]));
    assert!(!types.atomic_map(&["spec"]));
    assert_eq!(
        types.key_default(&["spec", "targets"], "zone"),
        Some(json!("a"))
    );
}
