//! Events are stored once, as core `v1` Events, and served also as `events.k8s.io/v1`
//! Events, as the API server does: the operator writes the newer kind, `kubectl describe`
//! reads the older one.

use patchpilot_schema::{FieldError, FieldErrorKind};
use serde_json::{Map, Value, json};

/// Field pairs: (`events.k8s.io/v1` name, core `v1` name).
const RENAMED: &[(&str, &str)] = &[
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("reportingController", "reportingComponent"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
];

fn rename(object: &Value, api_version: &str, from_new: bool) -> Value {
    let Some(map) = object.as_object() else {
        return object.clone();
    };
    let mut out = Map::new();
    for (key, value) in map {
        let renamed = RENAMED
            .iter()
            .find(|(new, old)| if from_new { new == key } else { old == key })
            .map(|(new, old)| if from_new { *old } else { *new });
        out.insert(renamed.unwrap_or(key).to_owned(), value.clone());
    }
    out.insert("apiVersion".into(), json!(api_version));
    out.insert("kind".into(), json!("Event"));
    Value::Object(out)
}

/// An `events.k8s.io/v1` Event as the core Event it is stored as.
pub fn to_core(event: &Value) -> Value {
    let mut core = rename(event, "v1", true);
    // Core events name their source; take it from the reporting controller when unset.
    if core.get("source").is_none()
        && let Some(component) = core.get("reportingComponent").cloned()
    {
        core["source"] = json!({"component": component});
    }
    if core.get("firstTimestamp").is_none()
        && let Some(at) = core.get("eventTime").cloned()
    {
        core["firstTimestamp"] = at.clone();
        core["lastTimestamp"] = at;
    }
    core
}

/// A stored core Event as an `events.k8s.io/v1` Event.
pub fn from_core(event: &Value) -> Value {
    rename(event, "events.k8s.io/v1", false)
}

/// The API server's check of a core Event (however it was written), on every write, against
/// the namespace it is in. An event with an `eventTime` (as `events.k8s.io/v1` writes them)
/// about a cluster-scoped object lives in `default` or `kube-system`, and one about a
/// namespaced object anywhere; an event without lives in the namespace of what it is about, or
/// in `default` (or none) for a cluster-scoped object.
pub fn check_namespace(core: &Value, namespace: &str) -> Option<FieldError> {
    let involved = core["involvedObject"]["namespace"].as_str().unwrap_or("");
    let timed = core["eventTime"].as_str().is_some_and(|t| !t.is_empty());
    let fits = match (timed, involved.is_empty()) {
        (true, true) => namespace == "default" || namespace == "kube-system",
        (true, false) => true,
        (false, true) => namespace.is_empty() || namespace == "default",
        (false, false) => involved == namespace,
    };
    (!fits).then(|| FieldError {
        path: "involvedObject.namespace".into(),
        kind: FieldErrorKind::Invalid {
            value: json!(involved),
            detail: "does not match event.namespace".into(),
        },
    })
}

/// A field of an `events.k8s.io/v1` field selector in core terms.
pub fn core_field(field: &str) -> String {
    for (new, old) in RENAMED {
        if let Some(rest) = field.strip_prefix(new) {
            return format!("{old}{rest}");
        }
    }
    field.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_between_the_two_apis() {
        let new = json!({
            "apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "e1", "namespace": "default"},
            "eventTime": "2026-11-28T01:00:00.000000Z",
            "regarding": {"kind": "PatchRollout", "name": "r"},
            "note": "wave canary started", "reason": "WaveStarted", "type": "Normal",
            "reportingController": "patchpilot", "reportingInstance": "patchpilot-0", "action": "Progress"
        });
        let core = to_core(&new);
        assert_eq!(core["apiVersion"], "v1");
        assert_eq!(core["involvedObject"]["name"], "r");
        assert_eq!(core["message"], "wave canary started");
        assert_eq!(core["source"]["component"], "patchpilot");
        assert_eq!(core["firstTimestamp"], "2026-11-28T01:00:00.000000Z");
        let back = from_core(&core);
        assert_eq!(back["note"], "wave canary started");
        assert_eq!(back["regarding"]["kind"], "PatchRollout");
        assert_eq!(core_field("regarding.name"), "involvedObject.name");
    }

    #[test]
    fn an_event_lives_in_the_namespace_of_what_it_is_about() {
        let about = |namespace: Option<&str>| json!({"involvedObject": {"name": "r", "namespace": namespace}});
        assert_eq!(check_namespace(&about(None), "default"), None);
        assert_eq!(check_namespace(&about(Some("shop")), "shop"), None);
        let refused = check_namespace(&about(None), "shop").unwrap();
        assert_eq!(
            refused.to_string(),
            "involvedObject.namespace: Invalid value: \"\": does not match event.namespace"
        );
        assert!(check_namespace(&about(Some("shop")), "default").is_some());
        // With an eventTime: a namespaced object's anywhere, a cluster-scoped one's in
        // default or kube-system.
        let timed = |namespace: Option<&str>| {
            let mut event = about(namespace);
            event["eventTime"] = json!("2026-11-28T01:00:00.000000Z");
            event
        };
        assert_eq!(check_namespace(&timed(Some("shop")), "default"), None);
        assert_eq!(check_namespace(&timed(None), "kube-system"), None);
        assert!(check_namespace(&timed(None), "shop").is_some());
        assert!(check_namespace(&timed(None), "").is_some());
    }
}
