//! Strategic merge patch, `application/strategic-merge-patch+json`, as the API server merges
//! it into built-in objects.
//!
//! Maps merge field by field and `null` removes a field. Lists merge by their
//! [`TypeInfo::strategic_list`] rule: keyed lists merge the items with the same merge key,
//! sets take the union, atomic lists are replaced. The merged list is ordered as the API
//! server orders it: the patch's items in the patch's order, the other items in their former
//! order, each placed before the first patch item that came after it (so an item new to the
//! list comes before the items the patch does not mention). Directives:
//!
//! - `"$patch": "replace"` in a map replaces the map; in a keyed list, the list;
//! - `"$patch": "delete"` in a keyed-list item removes the items with its key; in a map,
//!   empties the map;
//! - `"$setElementOrder/<list>": [...]` orders the merged list the same way, with the order
//!   list in place of the patch's items;
//! - `"$deleteFromPrimitiveList/<list>": [...]` removes values from a set, after the patch's
//!   additions (a set left empty is removed, as API objects omit empty lists);
//! - `"$retainKeys": [...]` removes the map's fields it does not list.
//!
//! A value set where there was none (or one of another type) is taken from the patch without
//! its `null` fields and without the maps that carry a `$patch` directive, as the API server
//! does. Other `$`-prefixed keys are dropped, as typed objects drop unknown fields.

use serde_json::{Map, Value};

use super::value::{go_format, type_name, values_equal};
use super::{ListKind, PatchError, TypeInfo};

const PATCH: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const SET_ELEMENT_ORDER: &str = "$setElementOrder/";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList/";

mod order;

use order::{check_order, has_keys, merge_set, normalize, partition, same_keys};

type Result<T> = std::result::Result<T, PatchError>;

/// Merges `patch` into `target` with the strategic list rules of `types`.
pub(super) fn strategic_merge_patch(
    target: &Value,
    patch: &Value,
    types: &dyn TypeInfo,
) -> Result<Value> {
    let patch = match patch {
        // Go decodes `null` as an empty patch.
        Value::Null => return Ok(target.clone()),
        Value::Object(patch) => patch,
        other => {
            return Err(PatchError::Malformed(format!(
                "json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
                type_name(other)
            )));
        }
    };
    let original = match target {
        Value::Object(map) => map.clone(),
        _ => Map::new(),
    };
    let merged = Merger { types }.merge_map(original, patch, &mut Vec::new())?;
    Ok(Value::Object(merged))
}

fn malformed(what: &str) -> PatchError {
    PatchError::Malformed(format!("invalid patch format of {what}"))
}

fn no_merge_key(item: &Map<String, Value>, keys: &[String]) -> PatchError {
    let missing = keys
        .iter()
        .find(|k| !item.contains_key(*k))
        .map_or("", String::as_str);
    PatchError::Invalid(format!(
        "map: {} does not contain declared merge key: {missing}",
        go_format(&Value::Object(item.clone()))
    ))
}

/// The merge, with the list rules at hand. Paths are the field names from the root.
struct Merger<'t> {
    types: &'t dyn TypeInfo,
}

impl Merger<'_> {
    /// Merges a patch map into `original`. `"$patch": "delete"` leaves an empty map, as in
    /// the API server.
    fn merge_map<'a>(
        &self,
        original: Map<String, Value>,
        patch: &'a Map<String, Value>,
        path: &mut Vec<&'a str>,
    ) -> Result<Map<String, Value>> {
        match patch.get(PATCH) {
            None => self.merge_fields(original, patch, path),
            Some(directive) => match directive.as_str() {
                Some("replace") => self.merge_fields(Map::new(), patch, path),
                Some("delete") => Ok(Map::new()),
                _ => Err(unknown_patch_type(directive, patch)),
            },
        }
    }

    fn merge_fields<'a>(
        &self,
        mut original: Map<String, Value>,
        patch: &'a Map<String, Value>,
        path: &mut Vec<&'a str>,
    ) -> Result<Map<String, Value>> {
        if let Some(retain) = patch.get(RETAIN_KEYS) {
            let Value::Array(retain) = retain else {
                return Err(malformed("retainKeys"));
            };
            let retained = |key: &str| retain.iter().any(|k| k.as_str() == Some(key));
            let stray = patch
                .iter()
                .any(|(k, v)| !v.is_null() && !k.starts_with('$') && !retained(k));
            if stray {
                return Err(malformed("retainKeys"));
            }
            original.retain(|k, _| retained(k));
        }

        let mut ordered: Vec<&str> = Vec::new();
        for (key, order) in patch {
            let Some(field) = key.strip_prefix(SET_ELEMENT_ORDER) else {
                continue;
            };
            let Value::Array(order) = order else {
                return Err(malformed("setElementOrder list"));
            };
            path.push(field);
            let kind = self.types.strategic_list(path);
            let list = match kind {
                ListKind::Atomic => None,
                _ => {
                    self.ordered_list(original.get(field), patch.get(field), order, &kind, path)?
                }
            };
            path.pop();
            if kind != ListKind::Atomic {
                ordered.push(field);
            }
            if let Some(list) = list {
                original.insert(field.to_owned(), Value::Array(list));
            }
        }

        for (key, value) in patch {
            if key.starts_with('$') || ordered.contains(&key.as_str()) {
                continue;
            }
            path.push(key);
            let merged = self.merge_value(original.remove(key), value, path);
            path.pop();
            if let Some(merged) = merged? {
                original.insert(key.clone(), merged);
            }
        }

        // Deletions from sets come after the additions.
        for (key, value) in patch {
            let Some(field) = key.strip_prefix(DELETE_FROM_PRIMITIVE_LIST) else {
                continue;
            };
            let Value::Array(removed) = value else {
                return Err(malformed("primitive list"));
            };
            if let Some(Value::Array(items)) = original.get_mut(field) {
                items.retain(|item| !removed.iter().any(|r| values_equal(r, item)));
                if items.is_empty() {
                    original.remove(field);
                }
            }
        }
        Ok(original)
    }

    /// Merges one patch value into the original one (`None`: absent); `None` when the
    /// result is that the field is removed.
    fn merge_value<'a>(
        &self,
        original: Option<Value>,
        patch: &'a Value,
        path: &mut Vec<&'a str>,
    ) -> Result<Option<Value>> {
        match (original, patch) {
            (_, Value::Null) => Ok(None),
            (Some(Value::Object(original)), Value::Object(patch)) => {
                Ok(Some(Value::Object(self.merge_map(original, patch, path)?)))
            }
            (Some(Value::Array(original)), Value::Array(patch)) => {
                Ok(Some(Value::Array(self.merge_list(original, patch, path)?)))
            }
            // A new value, or one of another type, replaces what was there.
            (_, patch) => Ok(fresh(patch)),
        }
    }

    fn merge_list<'a>(
        &self,
        original: Vec<Value>,
        patch: &'a [Value],
        path: &mut Vec<&'a str>,
    ) -> Result<Vec<Value>> {
        match self.types.strategic_list(path) {
            ListKind::Atomic => Ok(patch.iter().filter_map(fresh).collect()),
            ListKind::Set => merge_set(original, patch, path),
            ListKind::Map(keys) => self.merge_keyed(original, patch, &keys, path),
        }
    }

    fn merge_keyed<'a>(
        &self,
        mut original: Vec<Value>,
        patch: &'a [Value],
        keys: &[String],
        path: &mut Vec<&'a str>,
    ) -> Result<Vec<Value>> {
        let mut items: Vec<&'a Map<String, Value>> = Vec::with_capacity(patch.len());
        let mut replace = false;
        for item in patch {
            let Value::Object(item) = item else {
                return Err(PatchError::Invalid(format!(
                    "unable to merge {}: the list has maps and {}s",
                    path.join("."),
                    type_name(item)
                )));
            };
            let Some(directive) = item.get(PATCH) else {
                items.push(item);
                continue;
            };
            match directive.as_str() {
                Some("delete") => {
                    if !has_keys(item, keys) {
                        return Err(no_merge_key(item, keys));
                    }
                    original.retain(|o| !same_keys(o, item, keys));
                }
                Some("replace") => replace = true,
                Some("merge") => {
                    return Err(PatchError::Invalid(
                        "merging lists cannot yet be specified in the patch".to_owned(),
                    ));
                }
                _ => return Err(unknown_patch_type(directive, item)),
            }
        }
        if replace {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                out.push(Value::Object(self.merge_map(Map::new(), item, path)?));
            }
            return Ok(out);
        }

        let server_order = original.clone();
        let mut merged = original;
        for item in &items {
            if !has_keys(item, keys) {
                return Err(no_merge_key(item, keys));
            }
            let position = merged.iter().position(|o| same_keys(o, item, keys));
            let base = match position.map(|i| &mut merged[i]) {
                Some(Value::Object(base)) => std::mem::take(base),
                _ => Map::new(),
            };
            let value = Value::Object(self.merge_map(base, item, path)?);
            match position {
                Some(i) => merged[i] = value,
                None => merged.push(value),
            }
        }
        let kind = ListKind::Map(keys.to_vec());
        let patch_order: Vec<Value> = items.iter().map(|m| Value::Object((*m).clone())).collect();
        let (patched, server_only) = partition(merged, &patch_order, &kind);
        Ok(normalize(
            patched,
            server_only,
            &patch_order,
            &server_order,
            &kind,
        ))
    }

    /// A list with a `$setElementOrder` directive: merged, then ordered; `None` when the
    /// list is neither in the object nor in the patch.
    fn ordered_list<'a>(
        &self,
        original: Option<&Value>,
        patch: Option<&'a Value>,
        order: &[Value],
        kind: &ListKind,
        path: &mut Vec<&'a str>,
    ) -> Result<Option<Vec<Value>>> {
        let original = match original {
            None | Some(Value::Null) => None,
            Some(Value::Array(items)) => Some(items),
            Some(other) => return Err(bad_type(other)),
        };
        let patch = match patch {
            None => None,
            Some(Value::Array(items)) => Some(items),
            Some(other) => return Err(bad_type(other)),
        };
        if let Some(patch) = patch {
            check_order(patch, order, kind)?;
        }
        let merged = match (original, patch) {
            (None, None) => return Ok(None),
            (Some(original), None) => original.clone(),
            (original, Some(patch)) => {
                self.merge_list(original.cloned().unwrap_or_default(), patch, path)?
            }
        };
        let server_order = original.cloned().unwrap_or_default();
        if merged.is_empty() && patch.is_none_or(Vec::is_empty) {
            return Err(PatchError::Invalid(
                "no elements in any of the given slices".to_owned(),
            ));
        }
        let (named, server_only) = partition(merged, order, kind);
        Ok(Some(normalize(
            named,
            server_only,
            order,
            &server_order,
            kind,
        )))
    }
}

fn unknown_patch_type(directive: &Value, map: &Map<String, Value>) -> PatchError {
    PatchError::Invalid(format!(
        "unknown patch type: {} in map: {}",
        go_format(directive),
        go_format(&Value::Object(map.clone()))
    ))
}

/// A value the patch sets where there was none (or one of another type): without its
/// `null` fields, without the maps that carry a `$patch` directive, and without the other
/// `$` keys (which typed objects do not have).
fn fresh(value: &Value) -> Option<Value> {
    match value {
        Value::Object(map) if map.contains_key(PATCH) => None,
        Value::Object(map) => Some(Value::Object(
            map.iter()
                .filter(|(k, v)| !v.is_null() && !k.starts_with('$'))
                .filter_map(|(k, v)| Some((k.clone(), fresh(v)?)))
                .collect(),
        )),
        Value::Array(items) => Some(Value::Array(items.iter().filter_map(fresh).collect())),
        other => Some(other.clone()),
    }
}

fn bad_type(value: &Value) -> PatchError {
    let go_type = match value {
        Value::Object(_) => "map[string]interface {}",
        Value::String(_) => "string",
        Value::Number(_) => "float64",
        Value::Bool(_) => "bool",
        Value::Array(_) => "[]interface {}",
        Value::Null => "<nil>",
    };
    PatchError::Invalid(format!(
        "expected a []interface {{}}, but received a {go_type}"
    ))
}

#[cfg(test)]
mod tests;
