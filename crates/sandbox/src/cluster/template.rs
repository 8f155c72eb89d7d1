//! What the workload controllers share: pods made from pod templates, and status counts
//! written the way the API types serialise them.

use serde_json::{Map, Value, json};

use super::{meta, podstatus::qos_class};
use crate::json::Json;

/// How a new pod is named.
#[derive(Clone, Copy, Debug)]
pub(super) enum PodName<'a> {
    /// This exact name (StatefulSet pods).
    Fixed(&'a str),
    /// A prefix the API server completes with five random characters.
    Generated(&'a str),
}

/// A pod made from `template` for its controller `owner`, with `labels` added to the
/// template's and `restartPolicy` defaulted as the API server would.
pub(super) fn pod_from_template(
    owner: &Json,
    template: &Value,
    name: PodName<'_>,
    labels: &[(&str, &str)],
    default_restart: &str,
) -> Value {
    let mut metadata = Map::new();
    match name {
        PodName::Fixed(name) => metadata.insert("name".into(), json!(name)),
        PodName::Generated(prefix) => metadata.insert("generateName".into(), json!(prefix)),
    };
    metadata.insert("namespace".into(), json!(meta::namespace(owner)));
    let mut pod_labels = template["metadata"]["labels"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    for (key, value) in labels {
        pod_labels.insert((*key).to_owned(), json!(value));
    }
    if !pod_labels.is_empty() {
        metadata.insert("labels".into(), Value::Object(pod_labels));
    }
    if let Some(annotations) = template["metadata"]["annotations"].as_object()
        && !annotations.is_empty()
    {
        metadata.insert("annotations".into(), Value::Object(annotations.clone()));
    }
    metadata.insert(
        "ownerReferences".into(),
        json!([meta::controller_ref(owner)]),
    );
    let mut spec = template["spec"].as_object().cloned().unwrap_or_default();
    spec.entry("restartPolicy")
        .or_insert_with(|| json!(default_restart));
    let mut pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": spec,
    });
    pod["status"] = json!({"phase": "Pending", "qosClass": qos_class(&Json::from(&pod))});
    pod
}

/// Sets count fields in a status: a zero count is left out (the API types' `omitempty`)
/// unless marked as always written.
pub(super) fn set_counts(status: &mut Map<String, Value>, counts: &[(&str, i64, bool)]) {
    for (field, value, always) in counts {
        if *value == 0 && !always {
            status.remove(*field);
        } else {
            status.insert((*field).to_owned(), json!(value));
        }
    }
}

/// A template without one of its labels (and without empty metadata), for comparing
/// templates a controller labelled.
pub(super) fn without_label(template: &Json, label: &str) -> Value {
    let mut template = if template.is_object() {
        template.to_value()
    } else {
        json!({})
    };
    if let Some(labels) = template["metadata"]["labels"].as_object_mut() {
        labels.remove(label);
    }
    if let Some(metadata) = template["metadata"].as_object_mut() {
        metadata.retain(|_, v| !(v.is_null() || v.as_object().is_some_and(Map::is_empty)));
    }
    if template["metadata"].as_object().is_some_and(Map::is_empty)
        && let Some(template) = template.as_object_mut()
    {
        template.remove("metadata");
    }
    template
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pods_carry_the_template_and_their_controller() {
        let owner = Json::from(json!({
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {"name": "web-abc", "namespace": "shop", "uid": "u1"},
        }));
        let template = json!({
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "web:1"}]},
        });
        let pod = pod_from_template(
            &owner,
            &template,
            PodName::Generated("web-abc-"),
            &[("pod-template-hash", "abc")],
            "Always",
        );
        assert_eq!(pod["metadata"]["generateName"], "web-abc-");
        assert_eq!(
            pod["metadata"]["labels"],
            json!({"app": "web", "pod-template-hash": "abc"})
        );
        assert_eq!(pod["metadata"]["ownerReferences"][0]["controller"], true);
        assert_eq!(pod["metadata"]["ownerReferences"][0]["uid"], "u1");
        assert_eq!(pod["spec"]["restartPolicy"], "Always");
        assert_eq!(pod["status"]["phase"], "Pending");
        let odd = pod_from_template(&owner, &json!("junk"), PodName::Fixed("p"), &[], "Never");
        assert_eq!(odd["spec"], json!({"restartPolicy": "Never"}));
    }

    #[test]
    fn zero_counts_are_left_out_unless_always_written() {
        let mut status = Map::new();
        status.insert("readyReplicas".into(), json!(3));
        set_counts(
            &mut status,
            &[
                ("replicas", 0, true),
                ("readyReplicas", 0, false),
                ("availableReplicas", 2, false),
            ],
        );
        assert_eq!(
            Value::Object(status),
            json!({"replicas": 0, "availableReplicas": 2})
        );
    }

    #[test]
    fn templates_compare_without_the_controllers_label() {
        let labelled =
            Json::from(json!({"metadata": {"labels": {"pod-template-hash": "x"}}, "spec": {}}));
        assert_eq!(
            without_label(&labelled, "pod-template-hash"),
            json!({"spec": {}})
        );
        let bare = Json::from(json!({"metadata": {"labels": {}}, "spec": {}}));
        assert_eq!(
            without_label(&bare, "pod-template-hash"),
            json!({"spec": {}})
        );
    }
}
