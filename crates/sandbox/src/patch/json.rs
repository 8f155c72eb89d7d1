//! JSON patch (RFC 6902), `application/json-patch+json`, with the behaviour and messages of
//! the JSON patch library the API server uses: `replace` of a missing object key adds it,
//! negative array indices count from the end, `null` and absent values read alike, and an
//! operation that does not apply is reported as `<op> operation does not apply: doc is
//! missing path: "/spec/foo": missing value` or `testing value /spec/replicas failed: test
//! failed`.

use serde_json::{Map, Value};

use super::PatchError;
use super::value::type_name;

const MISSING: &str = "missing value";

/// The most operations the API server accepts in one patch.
const MAX_OPERATIONS: usize = 10_000;

/// How much `copy` operations may add to a document, in bytes of JSON: three times the API
/// server's largest request body, as the API server configures its library.
const MAX_COPIED_BYTES: usize = 3 * 3 * 1024 * 1024;

/// Applies the operations of `patch` to a copy of `target`, in order; the first one that does
/// not apply fails the whole patch.
pub(super) fn json_patch(target: &Value, patch: &Value) -> Result<Value, PatchError> {
    let ops = match patch {
        // Go decodes `null` as an empty patch.
        Value::Null => return Ok(target.clone()),
        Value::Array(ops) => ops,
        other => {
            return Err(PatchError::Malformed(format!(
                "json: cannot unmarshal {} into Go value of type jsonpatch.Patch",
                type_name(other)
            )));
        }
    };
    if let Some(bad) = ops.iter().find(|op| !(op.is_object() || op.is_null())) {
        return Err(PatchError::Malformed(format!(
            "json: cannot unmarshal {} into Go value of type jsonpatch.Operation",
            type_name(bad)
        )));
    }
    if ops.len() > MAX_OPERATIONS {
        return Err(PatchError::Malformed(format!(
            "The allowed maximum operations in a JSON patch is {MAX_OPERATIONS}, got {}",
            ops.len()
        )));
    }
    let mut doc = target.clone();
    let mut copied = 0;
    for op in ops {
        apply_operation(&mut doc, &Operation(op.as_object()), &mut copied)
            .map_err(PatchError::Invalid)?;
    }
    Ok(doc)
}

/// One operation object (`None` for a `null` item).
struct Operation<'a>(Option<&'a Map<String, Value>>);

impl Operation<'_> {
    fn field(&self, name: &str) -> Option<&Value> {
        self.0.and_then(|op| op.get(name)).filter(|v| !v.is_null())
    }

    fn kind(&self) -> &str {
        self.field("op")
            .and_then(Value::as_str)
            .unwrap_or("unknown")
    }

    fn string(&self, name: &str, missing: &str) -> Result<&str, String> {
        match self.field(name) {
            None => Err(format!("{missing}: {MISSING}")),
            Some(Value::String(s)) => Ok(s),
            Some(other) => Err(format!(
                "json: cannot unmarshal {} into Go value of type string",
                type_name(other)
            )),
        }
    }

    fn path(&self) -> Result<&str, String> {
        self.string("path", "operation missing path field")
    }

    fn from(&self) -> Result<&str, String> {
        self.string("from", "operation, missing from field")
    }

    /// The operation's value: `null` when it is absent or `null`.
    fn value(&self) -> Value {
        self.field("value").cloned().unwrap_or(Value::Null)
    }
}

/// Applies one operation; `copied` counts the bytes `copy` operations added so far.
fn apply_operation(doc: &mut Value, op: &Operation<'_>, copied: &mut usize) -> Result<(), String> {
    match op.kind() {
        "add" => add(doc, op),
        "remove" => remove(doc, op),
        "replace" => replace(doc, op),
        "move" => move_value(doc, op),
        "copy" => copy(doc, op, copied),
        "test" => test(doc, op),
        other => Err(format!("Unexpected kind: {other}")),
    }
}

fn add(doc: &mut Value, op: &Operation<'_>) -> Result<(), String> {
    let path = op
        .path()
        .map_err(|_| format!("add operation failed to decode path: {MISSING}"))?;
    let Some((container, key)) = find_parent(doc, path) else {
        return Err(format!(
            "add operation does not apply: doc is missing path: \"{path}\": {MISSING}"
        ));
    };
    container_add(container, &key, op.value())
        .map_err(|e| format!("error in add for path: '{path}': {e}"))
}

fn remove(doc: &mut Value, op: &Operation<'_>) -> Result<(), String> {
    let path = op
        .path()
        .map_err(|_| format!("remove operation failed to decode path: {MISSING}"))?;
    let Some((container, key)) = find_parent(doc, path) else {
        return Err(format!(
            "remove operation does not apply: doc is missing path: \"{path}\": {MISSING}"
        ));
    };
    container_remove(container, &key)
        .map(drop)
        .map_err(|e| format!("error in remove for path: '{path}': {e}"))
}

fn replace(doc: &mut Value, op: &Operation<'_>) -> Result<(), String> {
    let path = op
        .path()
        .map_err(|e| format!("replace operation failed to decode path: {e}"))?;
    if path.is_empty() {
        // The API server's library silently ignores a whole-document replacement that is
        // not an object or a list.
        let value = op.value();
        if value.is_object() || value.is_array() {
            *doc = value;
        }
        return Ok(());
    }
    let Some((container, key)) = find_parent(doc, path) else {
        return Err(format!(
            "replace operation does not apply: doc is missing path: {path}: {MISSING}"
        ));
    };
    if container_get(container, &key).is_err() {
        return Err(format!(
            "replace operation does not apply: doc is missing key: {path}: {MISSING}"
        ));
    }
    container_set(container, &key, op.value())
        .map_err(|e| format!("error in remove for path: '{path}': {e}"))
}

fn move_value(doc: &mut Value, op: &Operation<'_>) -> Result<(), String> {
    let from = op
        .from()
        .map_err(|e| format!("move operation failed to decode from: {e}"))?;
    let Some((container, key)) = find_parent(doc, from) else {
        return Err(format!(
            "move operation does not apply: doc is missing from path: {from}: {MISSING}"
        ));
    };
    container_get(container, &key).map_err(|e| format!("error in move for path: '{key}': {e}"))?;
    let value = container_remove(container, &key)
        .map_err(|e| format!("error in move for path: '{key}': {e}"))?;
    let path = op
        .path()
        .map_err(|e| format!("move operation failed to decode path: {e}"))?;
    let Some((container, key)) = find_parent(doc, path) else {
        return Err(format!(
            "move operation does not apply: doc is missing destination path: {path}: {MISSING}"
        ));
    };
    container_add(container, &key, value)
        .map_err(|e| format!("error in move for path: '{path}': {e}"))
}

fn copy(doc: &mut Value, op: &Operation<'_>, copied: &mut usize) -> Result<(), String> {
    let from = op
        .from()
        .map_err(|e| format!("copy operation failed to decode from: {e}"))?;
    let Some((container, key)) = find_parent(doc, from) else {
        return Err(format!(
            "copy operation does not apply: doc is missing from path: {from}: {MISSING}"
        ));
    };
    let value = container_get(container, &key)
        .map_err(|e| format!("error in copy for from: '{from}': {e}"))?
        .cloned()
        .unwrap_or(Value::Null);
    *copied += serde_json::to_vec(&value).map_or(usize::MAX, |bytes| bytes.len());
    if *copied > MAX_COPIED_BYTES {
        return Err(format!(
            "Unable to complete the copy, the accumulated size increase of copy is {}, \
             exceeding the limit {MAX_COPIED_BYTES}",
            *copied
        ));
    }
    let path = op
        .path()
        .map_err(|_| format!("copy operation failed to decode path: {MISSING}"))?;
    let Some((container, key)) = find_parent(doc, path) else {
        return Err(format!(
            "copy operation does not apply: doc is missing destination path: {path}: {MISSING}"
        ));
    };
    container_add(container, &key, value)
        .map_err(|e| format!("error while adding value during copy: {e}"))
}

fn test(doc: &mut Value, op: &Operation<'_>) -> Result<(), String> {
    let path = op
        .path()
        .map_err(|e| format!("test operation failed to decode path: {e}"))?;
    let failed = || format!("testing value {path} failed: test failed");
    let expected = op.0.and_then(|o| o.get("value"));
    if path.is_empty() {
        return if expected == Some(&*doc) {
            Ok(())
        } else {
            Err(failed())
        };
    }
    let Some((container, key)) = find_parent(doc, path) else {
        return Err(format!(
            "test operation does not apply: is missing path: {path}: {MISSING}"
        ));
    };
    let actual = container_get(container, &key)
        .map_err(|e| format!("error in test for path: '{path}': {e}"))?;
    match (actual, expected) {
        // An absent or `null` value passes a test for `null`.
        (None, Some(Value::Null)) => Ok(()),
        (Some(actual), Some(expected)) if actual == expected => Ok(()),
        _ => Err(failed()),
    }
}

/// Decodes one reference token of a JSON pointer (`~1` is `/`, `~0` is `~`).
fn decode_token(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

/// The container (object or array) holding the value `path` points to, and the last
/// reference token; `None` when the path does not lead to a container. As in the API
/// server's library, the part before the first `/` is ignored.
fn find_parent<'d>(doc: &'d mut Value, path: &str) -> Option<(&'d mut Value, String)> {
    let tokens: Vec<&str> = path.split('/').collect();
    let (last, middle) = tokens.split_last()?;
    let middle = middle.get(1..)?;
    let mut node = doc;
    for token in middle {
        let key = decode_token(token);
        node = match node {
            Value::Object(map) => map.get_mut(&key)?,
            Value::Array(items) => {
                let index = existing_index(&key, items.len()).ok()?;
                items.get_mut(index)?
            }
            _ => return None,
        };
    }
    if node.is_object() || node.is_array() {
        Some((node, decode_token(last)))
    } else {
        None
    }
}

fn invalid_index(index: i64) -> String {
    format!("Unable to access invalid index: {index}: invalid index referenced")
}

fn parse_index(key: &str) -> Result<i64, String> {
    key.parse::<i64>().map_err(|e| {
        let reason = match e.kind() {
            std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow => {
                "value out of range"
            }
            _ => "invalid syntax",
        };
        format!("strconv.Atoi: parsing {key:?}: {reason}")
    })
}

/// The position of an existing item: negative indices count from the end.
fn existing_index(key: &str, len: usize) -> Result<usize, String> {
    let index = parse_index(key)?;
    let len = i64::try_from(len).unwrap_or(i64::MAX);
    let position = if index < 0 { index + len } else { index };
    if position < 0 || position >= len {
        return Err(invalid_index(index));
    }
    usize::try_from(position).map_err(|_| invalid_index(index))
}

/// The value at `key`: `Ok(None)` for an absent object key or a `null`.
fn container_get<'d>(container: &'d Value, key: &str) -> Result<Option<&'d Value>, String> {
    let value = match container {
        Value::Object(map) => map.get(key),
        Value::Array(items) => items.get(existing_index(key, items.len())?),
        _ => None,
    };
    Ok(value.filter(|v| !v.is_null()))
}

fn container_add(container: &mut Value, key: &str, value: Value) -> Result<(), String> {
    match container {
        Value::Object(map) => {
            map.insert(key.to_owned(), value);
            Ok(())
        }
        Value::Array(items) if key == "-" => {
            items.push(value);
            Ok(())
        }
        Value::Array(items) => {
            let index = parse_index(key)
                .map_err(|e| format!("value was not a proper array index: '{key}': {e}"))?;
            let len = i64::try_from(items.len()).unwrap_or(i64::MAX) + 1;
            let position = if index < 0 { index + len } else { index };
            if position < 0 || position >= len {
                return Err(invalid_index(index));
            }
            let position = usize::try_from(position).map_err(|_| invalid_index(index))?;
            items.insert(position, value);
            Ok(())
        }
        _ => Err(format!("unknown object type: {MISSING}")),
    }
}

fn container_set(container: &mut Value, key: &str, value: Value) -> Result<(), String> {
    match container {
        Value::Object(map) => {
            map.insert(key.to_owned(), value);
            Ok(())
        }
        Value::Array(items) => {
            let index = existing_index(key, items.len())?;
            if let Some(slot) = items.get_mut(index) {
                *slot = value;
            }
            Ok(())
        }
        _ => Err(format!("unknown object type: {MISSING}")),
    }
}

fn container_remove(container: &mut Value, key: &str) -> Result<Value, String> {
    match container {
        Value::Object(map) => map
            .remove(key)
            .ok_or_else(|| format!("Unable to remove nonexistent key: {key}: {MISSING}")),
        Value::Array(items) => {
            let index = existing_index(key, items.len())?;
            Ok(items.remove(index))
        }
        _ => Err(format!("unknown object type: {MISSING}")),
    }
}

#[cfg(test)]
mod tests;
