//! The API server's limit on the data of ConfigMaps and Secrets: 1 MiB of keys and values
//! (decoded, for base64 ones), checked on every write as its validation does.

use serde_json::{Value, json};

use crate::{resources::ResourceType, status::ApiError};

/// `MaxSecretSize`, which ConfigMaps share.
const MAX_DATA: usize = 1024 * 1024;

/// Refuses a ConfigMap or Secret whose data is over 1 MiB with the API server's 422.
pub fn check(resource: &ResourceType, object: &Value) -> Result<(), ApiError> {
    if !resource.group.is_empty() {
        return Ok(());
    }
    // The field the API server names: the ConfigMap as a whole (printed `[]`), or a
    // Secret's `data`.
    let (field, size) = match resource.plural.as_str() {
        "configmaps" => (
            "[]",
            size(&object["data"], false) + size(&object["binaryData"], true),
        ),
        "secrets" => (
            "data",
            size(&object["data"], true) + size(&object["stringData"], false),
        ),
        _ => return Ok(()),
    };
    if size <= MAX_DATA {
        return Ok(());
    }
    let name = object["metadata"]["name"].as_str().unwrap_or("");
    let cause = format!("Too long: may not be more than {MAX_DATA} bytes");
    Err(ApiError {
        code: 422,
        reason: "Invalid",
        message: format!("{} \"{name}\" is invalid: {field}: {cause}", resource.kind),
        details: Some(json!({
            "name": name,
            "kind": resource.kind,
            "causes": [{"reason": "FieldValueTooLong", "message": cause, "field": field}],
        })),
    })
}

/// The bytes of a map's keys and values; `base64` values count as the bytes they encode.
fn size(map: &Value, base64: bool) -> usize {
    let Some(map) = map.as_object() else {
        return 0;
    };
    map.iter()
        .map(|(key, value)| {
            let text = value.as_str().unwrap_or("");
            let value = if base64 {
                let padding = text.bytes().rev().take_while(|&b| b == b'=').count();
                (text.len() * 3 / 4).saturating_sub(padding)
            } else {
                text.len()
            };
            key.len() + value
        })
        .sum()
}
