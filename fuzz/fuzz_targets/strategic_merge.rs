//! Strategic merge patch as the sandbox's API server applies it, on inputs
//! `[kind, target, patch]` (the kind, like `apps/Deployment` or `Node`, chooses the list
//! rules): an empty patch changes nothing; a patch that applies to a target without
//! directives leaves none in the result, and the result prints as valid JSON.

#![no_main]

use libfuzzer_sys::fuzz_target;
use patchpilot_sandbox::patch::{builtin, strategic_merge_patch};
use serde_json::{Value, json};

/// Whether a document holds a `$patch`, `$retainKeys`, `$setElementOrder/…` or
/// `$deleteFromPrimitiveList/…` key anywhere.
fn has_directive(value: &Value) -> bool {
    match value {
        Value::Object(map) => map
            .iter()
            .any(|(key, value)| key.starts_with('$') || has_directive(value)),
        Value::Array(items) => items.iter().any(has_directive),
        _ => false,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some([kind, target, patch]) = patchpilot_fuzz::json_tuple(data) else {
        return;
    };
    let kind = kind.as_str().unwrap_or_default();
    let (group, kind) = kind.split_once('/').unwrap_or(("", kind));
    let types = builtin(group, kind);
    if target.is_object() && !has_directive(&target) {
        assert_eq!(
            strategic_merge_patch(&target, &json!({}), types.as_ref()),
            Ok(target.clone()),
            "an empty patch"
        );
    }
    if let Ok(patched) = strategic_merge_patch(&target, &patch, types.as_ref()) {
        if !has_directive(&target) {
            assert!(!has_directive(&patched), "a directive left in {patched}");
        }
        let text = serde_json::to_string(&patched).expect("prints");
        // Valid JSON. Not always the same numbers: serde_json, without its `float_roundtrip`
        // feature, may read a float back one unit in the last place off (1.118322344e-24).
        assert!(serde_json::from_str::<Value>(&text).is_ok(), "{text}");
    }
});
