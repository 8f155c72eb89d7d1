//! JSON patch (RFC 6902), `application/json-patch+json`, with the behaviour and messages of
//! the JSON patch library the API server uses: `replace` of a missing object key adds it,
//! negative array indices count from the end, `null` and absent values read alike, and an
//! operation that does not apply is reported as `<op> operation does not apply: doc is
//! missing path: "/spec/foo": missing value` or `testing value /spec/replicas failed: test
//! failed`.

use serde_json::{Map, Value};

use super::PatchError;
use super::value::type_name;

mod error;

use error::{ContainerError, FieldError, IndexParseError, JsonPatchError};

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
        apply_operation(&mut doc, &Operation(op.as_object()), &mut copied)?;
    }
    Ok(doc)
}

/// An operation that does not apply: the API server answers 422 with the library's message.
impl From<JsonPatchError> for PatchError {
    fn from(error: JsonPatchError) -> Self {
        PatchError::Invalid(error.to_string())
    }
}

/// The six operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OperationKind {
    Add,
    Remove,
    Replace,
    Move,
    Copy,
    Test,
}

impl OperationKind {
    /// The operation an `op` names.
    fn named(name: &str) -> Option<Self> {
        Some(match name {
            "add" => OperationKind::Add,
            "remove" => OperationKind::Remove,
            "replace" => OperationKind::Replace,
            "move" => OperationKind::Move,
            "copy" => OperationKind::Copy,
            "test" => OperationKind::Test,
            _ => return None,
        })
    }
}

impl std::fmt::Display for OperationKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            OperationKind::Add => "add",
            OperationKind::Remove => "remove",
            OperationKind::Replace => "replace",
            OperationKind::Move => "move",
            OperationKind::Copy => "copy",
            OperationKind::Test => "test",
        })
    }
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

    fn string(&self, name: &str, missing: FieldError) -> Result<&str, FieldError> {
        match self.field(name) {
            None => Err(missing),
            Some(Value::String(s)) => Ok(s),
            Some(other) => Err(FieldError::NotAString(type_name(other))),
        }
    }

    fn path(&self) -> Result<&str, FieldError> {
        self.string("path", FieldError::NoPath)
    }

    fn from(&self) -> Result<&str, FieldError> {
        self.string("from", FieldError::NoFrom)
    }

    /// The operation's value: `null` when it is absent or `null`.
    fn value(&self) -> Value {
        self.field("value").cloned().unwrap_or(Value::Null)
    }
}

/// Applies one operation; `copied` counts the bytes `copy` operations added so far.
fn apply_operation(
    doc: &mut Value,
    op: &Operation<'_>,
    copied: &mut usize,
) -> Result<(), JsonPatchError> {
    let kind = OperationKind::named(op.kind())
        .ok_or_else(|| JsonPatchError::UnknownOperation(op.kind().to_owned()))?;
    match kind {
        OperationKind::Add => add(doc, op),
        OperationKind::Remove => remove(doc, op),
        OperationKind::Replace => replace(doc, op),
        OperationKind::Move => move_value(doc, op),
        OperationKind::Copy => copy(doc, op, copied),
        OperationKind::Test => test(doc, op),
    }
}

fn add(doc: &mut Value, op: &Operation<'_>) -> Result<(), JsonPatchError> {
    let kind = OperationKind::Add;
    let path = op
        .path()
        .map_err(|_| JsonPatchError::PathMissing { op: kind })?;
    let Some((container, key)) = find_parent(doc, path) else {
        return Err(JsonPatchError::MissingPath {
            op: kind,
            path: path.to_owned(),
        });
    };
    container_add(container, &key, op.value()).map_err(|source| JsonPatchError::Container {
        op: kind,
        path: path.to_owned(),
        source,
    })
}

fn remove(doc: &mut Value, op: &Operation<'_>) -> Result<(), JsonPatchError> {
    let kind = OperationKind::Remove;
    let path = op
        .path()
        .map_err(|_| JsonPatchError::PathMissing { op: kind })?;
    let Some((container, key)) = find_parent(doc, path) else {
        return Err(JsonPatchError::MissingPath {
            op: kind,
            path: path.to_owned(),
        });
    };
    container_remove(container, &key)
        .map(drop)
        .map_err(|source| JsonPatchError::Container {
            op: kind,
            path: path.to_owned(),
            source,
        })
}

fn replace(doc: &mut Value, op: &Operation<'_>) -> Result<(), JsonPatchError> {
    let path = op.path().map_err(|source| JsonPatchError::PathUnreadable {
        op: OperationKind::Replace,
        source,
    })?;
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
        return Err(JsonPatchError::ReplaceMissingPath(path.to_owned()));
    };
    if container_get(container, &key).is_err() {
        return Err(JsonPatchError::ReplaceMissingKey(path.to_owned()));
    }
    container_set(container, &key, op.value()).map_err(|source| JsonPatchError::Container {
        // The library's word for it.
        op: OperationKind::Remove,
        path: path.to_owned(),
        source,
    })
}

fn move_value(doc: &mut Value, op: &Operation<'_>) -> Result<(), JsonPatchError> {
    let kind = OperationKind::Move;
    let from = op
        .from()
        .map_err(|source| JsonPatchError::FromUnreadable { op: kind, source })?;
    let Some((container, key)) = find_parent(doc, from) else {
        return Err(JsonPatchError::MissingFrom {
            op: kind,
            from: from.to_owned(),
        });
    };
    // The library names the last key of `from` here, not a path.
    let taken = |source| JsonPatchError::Container {
        op: kind,
        path: key.clone(),
        source,
    };
    container_get(container, &key).map_err(taken)?;
    let value = container_remove(container, &key).map_err(taken)?;
    let path = op
        .path()
        .map_err(|source| JsonPatchError::PathUnreadable { op: kind, source })?;
    let Some((container, key)) = find_parent(doc, path) else {
        return Err(JsonPatchError::MissingDestination {
            op: kind,
            path: path.to_owned(),
        });
    };
    container_add(container, &key, value).map_err(|source| JsonPatchError::Container {
        op: kind,
        path: path.to_owned(),
        source,
    })
}

fn copy(doc: &mut Value, op: &Operation<'_>, copied: &mut usize) -> Result<(), JsonPatchError> {
    let kind = OperationKind::Copy;
    let from = op
        .from()
        .map_err(|source| JsonPatchError::FromUnreadable { op: kind, source })?;
    let Some((container, key)) = find_parent(doc, from) else {
        return Err(JsonPatchError::MissingFrom {
            op: kind,
            from: from.to_owned(),
        });
    };
    let value = container_get(container, &key)
        .map_err(|source| JsonPatchError::CopyFrom {
            from: from.to_owned(),
            source,
        })?
        .cloned()
        .unwrap_or(Value::Null);
    *copied += serde_json::to_vec(&value).map_or(usize::MAX, |bytes| bytes.len());
    if *copied > MAX_COPIED_BYTES {
        return Err(JsonPatchError::CopyLimit {
            copied: *copied,
            limit: MAX_COPIED_BYTES,
        });
    }
    let path = op
        .path()
        .map_err(|_| JsonPatchError::PathMissing { op: kind })?;
    let Some((container, key)) = find_parent(doc, path) else {
        return Err(JsonPatchError::MissingDestination {
            op: kind,
            path: path.to_owned(),
        });
    };
    container_add(container, &key, value).map_err(JsonPatchError::CopyTo)
}

fn test(doc: &mut Value, op: &Operation<'_>) -> Result<(), JsonPatchError> {
    let kind = OperationKind::Test;
    let path = op
        .path()
        .map_err(|source| JsonPatchError::PathUnreadable { op: kind, source })?;
    let failed = || JsonPatchError::TestFailed(path.to_owned());
    let expected = op.0.and_then(|o| o.get("value"));
    if path.is_empty() {
        return if expected == Some(&*doc) {
            Ok(())
        } else {
            Err(failed())
        };
    }
    let Some((container, key)) = find_parent(doc, path) else {
        return Err(JsonPatchError::TestMissingPath(path.to_owned()));
    };
    let actual = container_get(container, &key).map_err(|source| JsonPatchError::Container {
        op: kind,
        path: path.to_owned(),
        source,
    })?;
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

fn parse_index(key: &str) -> Result<i64, IndexParseError> {
    key.parse::<i64>().map_err(|e| match e.kind() {
        std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow => {
            IndexParseError::OutOfRange(key.to_owned())
        }
        _ => IndexParseError::InvalidSyntax(key.to_owned()),
    })
}

/// The position of an existing item: negative indices count from the end.
fn existing_index(key: &str, len: usize) -> Result<usize, ContainerError> {
    let index = parse_index(key)?;
    let len = i64::try_from(len).unwrap_or(i64::MAX);
    let position = if index < 0 { index + len } else { index };
    if position < 0 || position >= len {
        return Err(ContainerError::InvalidIndex(index));
    }
    usize::try_from(position).map_err(|_| ContainerError::InvalidIndex(index))
}

/// The value at `key`: `Ok(None)` for an absent object key or a `null`.
fn container_get<'d>(container: &'d Value, key: &str) -> Result<Option<&'d Value>, ContainerError> {
    let value = match container {
        Value::Object(map) => map.get(key),
        Value::Array(items) => items.get(existing_index(key, items.len())?),
        _ => None,
    };
    Ok(value.filter(|v| !v.is_null()))
}

fn container_add(container: &mut Value, key: &str, value: Value) -> Result<(), ContainerError> {
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
            let index = parse_index(key).map_err(|source| ContainerError::NotAnArrayIndex {
                key: key.to_owned(),
                source,
            })?;
            let len = i64::try_from(items.len()).unwrap_or(i64::MAX) + 1;
            let position = if index < 0 { index + len } else { index };
            if position < 0 || position >= len {
                return Err(ContainerError::InvalidIndex(index));
            }
            let position =
                usize::try_from(position).map_err(|_| ContainerError::InvalidIndex(index))?;
            items.insert(position, value);
            Ok(())
        }
        _ => Err(ContainerError::UnknownObjectType),
    }
}

fn container_set(container: &mut Value, key: &str, value: Value) -> Result<(), ContainerError> {
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
        _ => Err(ContainerError::UnknownObjectType),
    }
}

fn container_remove(container: &mut Value, key: &str) -> Result<Value, ContainerError> {
    match container {
        Value::Object(map) => map
            .remove(key)
            .ok_or_else(|| ContainerError::NonexistentKey(key.to_owned())),
        Value::Array(items) => {
            let index = existing_index(key, items.len())?;
            Ok(items.remove(index))
        }
        _ => Err(ContainerError::UnknownObjectType),
    }
}

#[cfg(test)]
mod tests;
