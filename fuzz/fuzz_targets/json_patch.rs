//! JSON patch (RFC 6902) and JSON merge patch (RFC 7386) as the sandbox's API server applies
//! them, on inputs `[target, patch]`: an empty JSON patch changes nothing; a JSON patch that
//! applies gives a document that prints as valid JSON; an empty merge patch
//! changes nothing, and a merge patch applied twice gives what it gave once (unless it holds
//! a `null` in a list: as in the API server's library, a list replacing an object keeps its
//! nulls, one replacing anything else loses them).

#![no_main]

use libfuzzer_sys::fuzz_target;
use patchpilot_sandbox::patch::{json_patch, merge_patch};
use serde_json::{Value, json};

/// Whether a `null` lies in a list somewhere in `value` (`in_list`: `value` is in one).
fn null_in_list(value: &Value, in_list: bool) -> bool {
    match value {
        Value::Null => in_list,
        Value::Array(items) => items.iter().any(|item| null_in_list(item, true)),
        Value::Object(map) => map.values().any(|item| null_in_list(item, in_list)),
        _ => false,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some([target, patch]) = patchpilot_fuzz::json_tuple(data) else {
        return;
    };
    assert_eq!(json_patch(&target, &json!([])), Ok(target.clone()));
    if let Ok(patched) = json_patch(&target, &patch) {
        let text = serde_json::to_string(&patched).expect("prints");
        // Prints as JSON that reads back as the same value, floats included: with
        // `float_roundtrip`, serde_json reads them correctly rounded, as Go does.
        let read: Value = serde_json::from_str(&text).expect("reads back");
        assert_eq!(read, patched, "{text}");
    }

    if target.is_object() {
        assert_eq!(merge_patch(&target, &json!({})), Ok(target.clone()));
    }
    if let (Ok(once), false) = (merge_patch(&target, &patch), null_in_list(&patch, false)) {
        assert_eq!(
            merge_patch(&once, &patch),
            Ok(once.clone()),
            "merging twice"
        );
    }
});
