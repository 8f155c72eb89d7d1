//! The merge of an applied configuration into the live object, and the removal of what a
//! manager no longer applies.

use std::collections::{HashMap, HashSet, VecDeque};

use serde_json::{Map, Value};

use super::super::fieldset::{FieldSet, display_path};
use super::super::typed::item_element;
use super::super::value::{is_empty_container, without_nulls};
use super::super::{ListKind, PatchError, TypeInfo};

type Result<T> = std::result::Result<T, PatchError>;

/// Merges an applied value into the live one; `None` when the result is that the field is
/// absent (a `null` in the configuration).
pub(super) fn merge<'a>(
    live: Option<&Value>,
    config: &'a Value,
    path: &mut Vec<&'a str>,
    types: &dyn TypeInfo,
) -> Result<Option<Value>> {
    match config {
        Value::Null => Ok(None),
        Value::Object(fields) if path.is_empty() || !types.atomic_map(path) => {
            let mut out = match live {
                Some(Value::Object(map)) => map.clone(),
                _ => Map::new(),
            };
            for (name, value) in fields {
                path.push(name);
                let existing = out.remove(name);
                let merged = merge(existing.as_ref(), value, path, types);
                path.pop();
                if let Some(merged) = merged? {
                    out.insert(name.clone(), merged);
                }
            }
            Ok(Some(Value::Object(out)))
        }
        Value::Array(items) => match types.list(path) {
            ListKind::Atomic => Ok(Some(without_nulls(config))),
            kind => {
                let live_items = match live {
                    Some(Value::Array(items)) => items.as_slice(),
                    _ => &[],
                };
                Ok(Some(Value::Array(merge_items(
                    live_items, items, &kind, path, types,
                )?)))
            }
        },
        _ => Ok(Some(without_nulls(config))),
    }
}

/// Merges the items of a map list or set: items with the same key merge; the configuration's
/// items keep their order, the live items it does not mention keep their place.
fn merge_items<'a>(
    live: &[Value],
    config: &'a [Value],
    kind: &ListKind,
    path: &mut Vec<&'a str>,
    types: &dyn TypeInfo,
) -> Result<Vec<Value>> {
    let mut rhs: Vec<(String, &'a Value)> = Vec::with_capacity(config.len());
    for (index, item) in config.iter().enumerate() {
        let element = item_element(types, path, kind, item)
            .map_err(|e| PatchError::Invalid(format!("{}: element {index}: {e}", dotted(path))))?;
        if rhs.iter().any(|(k, _)| *k == element) {
            return Err(PatchError::Invalid(format!(
                "{}: duplicate entries for key {}",
                dotted(path),
                display_path(std::slice::from_ref(&element))
            )));
        }
        rhs.push((element, item));
    }
    // Live items that cannot be keyed are kept as they are.
    let lhs: Vec<(String, &Value)> = live
        .iter()
        .enumerate()
        .map(|(i, item)| {
            (
                item_element(types, path, kind, item).unwrap_or_else(|_| format!("#{i}")),
                item,
            )
        })
        .collect();

    let mut observed_lhs: HashMap<&str, &Value> = HashMap::new();
    for (key, item) in &lhs {
        observed_lhs.entry(key.as_str()).or_insert(*item);
    }
    let observed_rhs: HashSet<&str> = rhs.iter().map(|(k, _)| k.as_str()).collect();
    let mut shared: VecDeque<&str> = rhs
        .iter()
        .map(|(k, _)| k.as_str())
        .filter(|k| observed_lhs.contains_key(k))
        .collect();
    let mut next_shared = shared.pop_front();
    let mut merged_rhs: HashSet<&str> = HashSet::new();
    let mut out = Vec::with_capacity(lhs.len().max(rhs.len()));
    let (mut l, mut r) = (0, 0);

    while l < lhs.len() || r < rhs.len() {
        if let (Some((left, _)), Some((right, item))) = (lhs.get(l), rhs.get(r)) {
            if left == right {
                merged_rhs.insert(left.as_str());
                let live_item = observed_lhs.get(left.as_str()).copied();
                out.extend(merge_item(kind, live_item, item, path, types)?);
                l += 1;
                r += 1;
                next_shared = shared.pop_front();
                continue;
            }
            if observed_rhs.contains(left.as_str()) && next_shared.is_some_and(|s| s != left) {
                // A shared item, but not the one due now: it comes in the configuration's order.
                l += 1;
                continue;
            }
        }
        if let Some((left, item)) = lhs.get(l) {
            if !observed_rhs.contains(left.as_str()) {
                out.push((*item).clone());
                l += 1;
                continue;
            }
            if merged_rhs.contains(left.as_str()) {
                l += 1;
                continue;
            }
        }
        if let Some((right, item)) = rhs.get(r) {
            merged_rhs.insert(right.as_str());
            let live_item = observed_lhs.get(right.as_str()).copied();
            out.extend(merge_item(kind, live_item, item, path, types)?);
            r += 1;
            if next_shared == Some(right.as_str()) {
                next_shared = shared.pop_front();
            }
        }
    }
    Ok(out)
}

fn merge_item<'a>(
    kind: &ListKind,
    live: Option<&Value>,
    item: &'a Value,
    path: &mut Vec<&'a str>,
    types: &dyn TypeInfo,
) -> Result<Option<Value>> {
    match kind {
        ListKind::Map(_) => merge(live, item, path, types),
        _ => Ok(Some(item.clone())),
    }
}

/// A type path as the API server prints it: `.spec.template.spec.containers`.
fn dotted(path: &[&str]) -> String {
    path.iter().map(|name| format!(".{name}")).collect()
}

/// Removes what the manager applied last time and no longer applies, unless another manager
/// (or the new configuration) owns it or something in it. Maps and lists left empty go too,
/// unless someone owns them as such.
pub(super) fn prune(object: &mut Value, last: &FieldSet, owned: &FieldSet, types: &dyn TypeInfo) {
    let keep = owned.with_field_ancestors();
    for path in last.members() {
        if !keep.contains(&path) {
            remove_path(object, &path, 0, &mut Vec::new(), types, owned);
        }
    }
}

/// Removes the value at `path[depth..]` from `node`; whether something was removed.
fn remove_path<'p>(
    node: &mut Value,
    path: &'p [String],
    depth: usize,
    types_path: &mut Vec<&'p str>,
    types: &dyn TypeInfo,
    owned: &FieldSet,
) -> bool {
    let Some(element) = path.get(depth) else {
        return false;
    };
    let last = depth + 1 == path.len();
    match node {
        Value::Object(map) => {
            let Some(name) = element.strip_prefix("f:") else {
                return false;
            };
            if last {
                return map.remove(name).is_some();
            }
            let Some(child) = map.get_mut(name) else {
                return false;
            };
            types_path.push(name);
            let removed = remove_path(child, path, depth + 1, types_path, types, owned);
            types_path.pop();
            if removed && is_empty_container(child) && !owned.contains(&path[..=depth]) {
                map.remove(name);
            }
            removed
        }
        Value::Array(items) => {
            let kind = types.list(types_path);
            let Some(index) = items.iter().position(|item| {
                item_element(types, types_path, &kind, item).is_ok_and(|e| e == *element)
            }) else {
                return false;
            };
            if last {
                items.remove(index);
                return true;
            }
            items
                .get_mut(index)
                .is_some_and(|item| remove_path(item, path, depth + 1, types_path, types, owned))
        }
        _ => false,
    }
}
