//! The order of merged lists, and the union of sets.

use serde_json::{Map, Value};

use super::super::value::{go_format, type_name, values_equal};
use super::super::{ListKind, PatchError};
use super::{PATCH, Result};

pub(super) fn has_keys(item: &Map<String, Value>, keys: &[String]) -> bool {
    keys.iter().all(|k| item.contains_key(k))
}

pub(super) fn same_keys(a: &Value, b: &Map<String, Value>, keys: &[String]) -> bool {
    keys.iter().all(|k| match (a.get(k), b.get(k)) {
        (Some(x), Some(y)) => values_equal(x, y),
        _ => false,
    })
}

/// Whether two items are the same item of a list of `kind`.
fn same_item(a: &Value, b: &Value, kind: &ListKind) -> bool {
    match (kind, b) {
        (ListKind::Map(keys), Value::Object(b)) => same_keys(a, b, keys),
        (ListKind::Map(_), _) => false,
        _ => values_equal(a, b),
    }
}

fn position_in(list: &[Value], item: &Value, kind: &ListKind) -> Option<usize> {
    list.iter().position(|other| same_item(item, other, kind))
}

pub(super) fn merge_set(
    original: Vec<Value>,
    patch: &[Value],
    path: &[&str],
) -> Result<Vec<Value>> {
    if let Some(bad) = patch.iter().find(|v| v.is_object() || v.is_array()) {
        return Err(PatchError::Invalid(format!(
            "cannot merge lists without merge key for {}: found a {}",
            path.join("."),
            type_name(bad)
        )));
    }
    let mut merged: Vec<Value> = Vec::with_capacity(original.len() + patch.len());
    for item in original.iter().chain(patch) {
        if !merged.iter().any(|m| values_equal(m, item)) {
            merged.push(item.clone());
        }
    }
    let (patched, server_only) = partition(merged, patch, &ListKind::Set);
    Ok(normalize(
        patched,
        server_only,
        patch,
        &original,
        &ListKind::Set,
    ))
}

/// Splits `items` into those `named` names and the others.
pub(super) fn partition(
    items: Vec<Value>,
    named: &[Value],
    kind: &ListKind,
) -> (Vec<Value>, Vec<Value>) {
    items
        .into_iter()
        .partition(|item| position_in(named, item, kind).is_some())
}

/// Orders the merged list: the named items in the order of `order`, the others in their
/// order in `server_order`, each of these placed before the first named item that came
/// after it in `server_order`.
pub(super) fn normalize(
    mut named: Vec<Value>,
    mut server_only: Vec<Value>,
    order: &[Value],
    server_order: &[Value],
    kind: &ListKind,
) -> Vec<Value> {
    let rank = |list: &[Value], item: &Value| position_in(list, item, kind).unwrap_or(usize::MAX);
    named.sort_by_key(|item| rank(order, item));
    server_only.sort_by_key(|item| rank(server_order, item));

    let mut out = Vec::with_capacity(named.len() + server_only.len());
    let mut left = server_only.into_iter().peekable();
    let mut right = named.into_iter().peekable();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(l), Some(r)) => {
                match (
                    position_in(server_order, l, kind),
                    position_in(server_order, r, kind),
                ) {
                    (Some(i), Some(j)) => i < j,
                    _ => false,
                }
            }
        };
        let next = if take_left { left.next() } else { right.next() };
        out.extend(next);
    }
    out
}

/// The items of a patch list must appear in its `$setElementOrder` list, in the same order.
/// As in the API server, other directive items are skipped only until the order list is
/// exhausted.
pub(super) fn check_order(patch: &[Value], order: &[Value], kind: &ListKind) -> Result<()> {
    if patch.is_empty() || order.is_empty() {
        return Ok(());
    }
    let deleted = |item: &&Value| item.get(PATCH).and_then(Value::as_str) == Some("delete");
    let items: Vec<&Value> = match kind {
        ListKind::Map(_) => patch.iter().filter(|item| !deleted(item)).collect(),
        _ => patch.iter().collect(),
    };
    let (mut next, mut position) = (0, 0);
    while let (Some(item), Some(expected)) = (items.get(next), order.get(position)) {
        if item.get(PATCH).is_some() {
            next += 1;
            continue;
        }
        if same_item(item, expected, kind) {
            next += 1;
        }
        position += 1;
    }
    if next < items.len() {
        return Err(PatchError::Invalid(format!(
            "The order in patch list:\n{}\n doesn't match $setElementOrder list:\n{}\n",
            go_format(&Value::Array(patch.to_vec())),
            go_format(&Value::Array(order.to_vec()))
        )));
    }
    Ok(())
}
