//! JSON merge patch (RFC 7386), `application/merge-patch+json`.

use serde_json::{Map, Value};

use super::value::without_nulls;

/// Merges `patch` into `target`: an object patch merges key by key (recursively), `null`
/// removes the key; any other patch value replaces what it patches, the whole target
/// included.
pub(super) fn merge_patch(target: &Value, patch: &Value) -> Value {
    merge(Some(target), patch)
}

fn merge(target: Option<&Value>, patch: &Value) -> Value {
    let Value::Object(patch) = patch else {
        // As in the API server's library, a list that replaces something other than an
        // object loses the `null` fields of the objects in it.
        return match target {
            Some(Value::Object(_)) => patch.clone(),
            _ => without_nulls(patch),
        };
    };
    let mut out = match target {
        Some(Value::Object(map)) => map.clone(),
        _ => Map::new(),
    };
    for (key, value) in patch {
        if value.is_null() {
            out.remove(key);
        } else {
            let merged = merge(out.get(key), value);
            out.insert(key.clone(), merged);
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod() -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "web", "labels": {"app": "web", "tier": "front"}},
            "spec": {"containers": [{"name": "web", "image": "nginx:1.26"}]}
        })
    }

    #[test]
    fn table() {
        let cases = [
            (
                "kubectl label pod web env=prod",
                json!({"metadata": {"labels": {"env": "prod"}}}),
                json!({"app": "web", "tier": "front", "env": "prod"}),
            ),
            (
                "kubectl label --overwrite pod web app=api",
                json!({"metadata": {"labels": {"app": "api"}}}),
                json!({"app": "api", "tier": "front"}),
            ),
            (
                "kubectl label pod web tier-",
                json!({"metadata": {"labels": {"tier": null}}}),
                json!({"app": "web"}),
            ),
            (
                "null for an absent key is a no-op",
                json!({"metadata": {"labels": {"nothing": null}}}),
                json!({"app": "web", "tier": "front"}),
            ),
        ];
        for (name, patch, labels) in cases {
            let out = merge_patch(&pod(), &patch);
            assert_eq!(out["metadata"]["labels"], labels, "{name}");
            assert_eq!(out["spec"], pod()["spec"], "{name}");
        }
    }

    #[test]
    fn annotate_creates_the_map() {
        let patch = json!({"metadata": {"annotations": {"note": "hello", "gone": null}}});
        let out = merge_patch(&pod(), &patch);
        assert_eq!(out["metadata"]["annotations"], json!({"note": "hello"}));
    }

    #[test]
    fn arrays_and_scalars_replace() {
        let patch = json!({"spec": {"containers": [{"name": "api", "image": null}], "x": [null]}});
        let out = merge_patch(&pod(), &patch);
        // The objects in a replacing list lose their nulls, as in the API server.
        assert_eq!(out["spec"]["containers"], json!([{"name": "api"}]));
        assert_eq!(out["spec"]["x"], json!([null]));
        // A list that replaces an object is taken as it is.
        let patch = json!({"metadata": [{"a": null}]});
        assert_eq!(
            merge_patch(&pod(), &patch)["metadata"],
            json!([{"a": null}])
        );
        assert_eq!(merge_patch(&pod(), &json!(["a"])), json!(["a"]));
        assert_eq!(merge_patch(&pod(), &json!("x")), json!("x"));
    }

    #[test]
    fn a_new_object_loses_its_nulls() {
        let patch = json!({"spec": {"securityContext": {"runAsUser": 1000, "fsGroup": null}}});
        let out = merge_patch(&pod(), &patch);
        assert_eq!(out["spec"]["securityContext"], json!({"runAsUser": 1000}));
    }

    #[test]
    fn an_empty_patch_changes_nothing() {
        assert_eq!(merge_patch(&pod(), &json!({})), pod());
    }
}
