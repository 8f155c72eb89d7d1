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
        // Prints as JSON that reads back as the same value, floats included: with
        // `float_roundtrip`, serde_json reads them correctly rounded, as Go does.
        let read: Value = serde_json::from_str(&text).expect("reads back");
        assert_eq!(read, patched, "{text}");
    }
});
