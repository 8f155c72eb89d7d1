//! Objects walked along their types: the fields an applied configuration sets, and what
//! changed between two versions of an object, as sets of field paths.

use std::collections::{BTreeSet, HashSet};

use serde_json::{Map, Value};

use super::fieldset::{FieldSet, display_path, field_element, key_element, value_element};
use super::value::{is_empty_container, values_equal};
use super::{ListKind, PatchError, TypeInfo};

/// Why an item of a list has no path element of its own.
#[derive(Debug, thiserror::Error)]
pub(super) enum ItemElementError {
    /// The items of an atomic list are not told apart.
    #[error("the list is atomic")]
    AtomicList,
    /// An item of a map list that is not a map.
    #[error("expected map, got a list item that is not a map")]
    NotAMap,
    /// An item of a map list without this key field, which has no default.
    #[error(
        "associative list with keys has an element that omits key field {0:?} (and doesn't \
         have default value)"
    )]
    MissingKeyField(String),
}

/// The path element of `item` in a list of `kind` at `path`, or why it has none (an item of
/// a map list that is not a map or lacks a key field without default).
pub(super) fn item_element(
    types: &dyn TypeInfo,
    path: &[&str],
    kind: &ListKind,
    item: &Value,
) -> Result<String, ItemElementError> {
    match kind {
        ListKind::Atomic => Err(ItemElementError::AtomicList),
        ListKind::Set => Ok(value_element(item)),
        ListKind::Map(keys) => {
            let Value::Object(fields) = item else {
                return Err(ItemElementError::NotAMap);
            };
            let mut key = Map::new();
            for name in keys {
                let value = fields
                    .get(name)
                    .filter(|v| !v.is_null())
                    .cloned()
                    .or_else(|| types.key_default(path, name))
                    .ok_or_else(|| ItemElementError::MissingKeyField(name.clone()))?;
                key.insert(name.clone(), value);
            }
            Ok(key_element(&key))
        }
    }
}

/// The fields an applied configuration sets: its leaves (scalars, `null`s, empty maps,
/// atomic lists and maps) and the items of its map lists and sets.
pub(super) fn field_set(config: &Value, types: &dyn TypeInfo) -> Result<FieldSet, PatchError> {
    let mut set = FieldSet::default();
    collect(config, types, &mut Vec::new(), &mut Vec::new(), &mut set)?;
    Ok(set)
}

fn collect<'a>(
    value: &'a Value,
    types: &dyn TypeInfo,
    path: &mut Vec<&'a str>,
    elements: &mut Vec<String>,
    set: &mut FieldSet,
) -> Result<(), PatchError> {
    match value {
        Value::Object(map) => {
            if !elements.is_empty() && (map.is_empty() || types.atomic_map(path)) {
                set.insert(elements);
                return Ok(());
            }
            for (name, child) in map {
                path.push(name);
                elements.push(field_element(name));
                let result = collect(child, types, path, elements, set);
                elements.pop();
                path.pop();
                result?;
            }
        }
        Value::Array(items) => {
            let kind = types.list(path);
            if kind == ListKind::Atomic {
                set.insert(elements);
                return Ok(());
            }
            let mut seen = HashSet::new();
            for (index, item) in items.iter().enumerate() {
                let element = item_element(types, path, &kind, item).map_err(|e| {
                    PatchError::Invalid(format!("{}: element {index}: {e}", display_path(elements)))
                })?;
                if !seen.insert(element.clone()) {
                    return Err(PatchError::Invalid(format!(
                        "{}: duplicate entries for key {}",
                        display_path(elements),
                        display_path(std::slice::from_ref(&element))
                    )));
                }
                elements.push(element);
                set.insert(elements);
                let result = match item {
                    Value::Object(fields) if !types.atomic_map(path) => {
                        fields.iter().try_for_each(|(name, child)| {
                            path.push(name);
                            elements.push(field_element(name));
                            let result = collect(child, types, path, elements, set);
                            elements.pop();
                            path.pop();
                            result
                        })
                    }
                    _ => Ok(()),
                };
                elements.pop();
                result?;
            }
        }
        _ => set.insert(elements),
    }
    Ok(())
}

/// What differs between two versions of an object.
#[derive(Debug, Default)]
pub(super) struct Comparison {
    /// Present only in the new version: leaves, and the maps, lists and items created.
    pub(super) added: FieldSet,
    /// Leaves with another value.
    pub(super) modified: FieldSet,
    /// Present only in the old version.
    pub(super) removed: FieldSet,
}

/// Compares two versions of an object, `metadata.managedFields` aside.
pub(super) fn compare(old: &Value, new: &Value, types: &dyn TypeInfo) -> Comparison {
    let mut walker = Compare {
        types,
        out: Comparison::default(),
    };
    walker.value(Some(old), Some(new), &mut Vec::new(), &mut Vec::new());
    walker.out
}

enum Shape {
    Leaf,
    Map,
    List(ListKind),
}

struct Compare<'t> {
    types: &'t dyn TypeInfo,
    out: Comparison,
}

fn empty_or_absent(value: Option<&Value>) -> bool {
    value.is_none_or(|v| {
        v.as_object().is_some_and(Map::is_empty) || v.as_array().is_some_and(Vec::is_empty)
    })
}

fn same_type(a: &Value, b: &Value) -> bool {
    matches!(
        (a, b),
        (Value::Object(_), Value::Object(_)) | (Value::Array(_), Value::Array(_))
    ) || !(a.is_object() || a.is_array() || b.is_object() || b.is_array())
}

impl Compare<'_> {
    fn shape(&self, old: Option<&Value>, new: Option<&Value>, path: &[&str]) -> Shape {
        let Some(sample) = new.or(old) else {
            return Shape::Leaf;
        };
        if let (Some(a), Some(b)) = (old, new)
            && !same_type(a, b)
        {
            return Shape::Leaf;
        }
        let root = path.is_empty() && sample.is_object();
        if root {
            return Shape::Map;
        }
        let both_empty = empty_or_absent(old) && empty_or_absent(new);
        match sample {
            Value::Object(_) if both_empty || self.types.atomic_map(path) => Shape::Leaf,
            Value::Object(_) => Shape::Map,
            Value::Array(_) if both_empty => Shape::Leaf,
            Value::Array(_) => match self.types.list(path) {
                ListKind::Atomic => Shape::Leaf,
                kind => Shape::List(kind),
            },
            _ => Shape::Leaf,
        }
    }

    fn value<'a>(
        &mut self,
        old: Option<&'a Value>,
        new: Option<&'a Value>,
        path: &mut Vec<&'a str>,
        elements: &mut Vec<String>,
    ) {
        match self.shape(old, new, path) {
            Shape::Leaf => {
                // A struct every object has, written empty: nothing to own.
                let created_empty = old.is_none()
                    && new.is_some_and(is_empty_container)
                    && self.types.always_present(path);
                if !created_empty {
                    self.leaf(old, new, elements);
                }
            }
            Shape::Map => {
                self.fields(old, new, path, elements);
                if !self.types.always_present(path) {
                    self.node(old, new, elements);
                }
            }
            Shape::List(kind) => match (
                index(self.types, path, &kind, old),
                index(self.types, path, &kind, new),
            ) {
                (Some(old_items), Some(new_items)) => {
                    self.items(&old_items, &new_items, &kind, path, elements);
                    if !self.types.always_present(path) {
                        self.node(old, new, elements);
                    }
                }
                _ => self.leaf(old, new, elements),
            },
        }
    }

    fn leaf(&mut self, old: Option<&Value>, new: Option<&Value>, elements: &[String]) {
        match (old, new) {
            (None, Some(_)) => self.out.added.insert(elements),
            (Some(_), None) => self.out.removed.insert(elements),
            (Some(a), Some(b)) if !values_equal(a, b) => self.out.modified.insert(elements),
            _ => {}
        }
    }

    /// A map, list or item as a whole: created or removed.
    fn node(&mut self, old: Option<&Value>, new: Option<&Value>, elements: &[String]) {
        if elements.is_empty() {
            return;
        }
        match (old, new) {
            (None, Some(_)) => self.out.added.insert(elements),
            (Some(_), None) => self.out.removed.insert(elements),
            _ => {}
        }
    }

    fn fields<'a>(
        &mut self,
        old: Option<&'a Value>,
        new: Option<&'a Value>,
        path: &mut Vec<&'a str>,
        elements: &mut Vec<String>,
    ) {
        let names: BTreeSet<&'a String> = [old, new]
            .into_iter()
            .flatten()
            .filter_map(Value::as_object)
            .flat_map(Map::keys)
            .collect();
        for name in names {
            if path.as_slice() == ["metadata"] && name == "managedFields" {
                // Bookkeeping of who owns what, not a field anyone owns.
                continue;
            }
            path.push(name);
            elements.push(field_element(name));
            self.value(
                old.and_then(|o| o.get(name)),
                new.and_then(|n| n.get(name)),
                path,
                elements,
            );
            elements.pop();
            path.pop();
        }
    }

    fn items<'a>(
        &mut self,
        old: &[(String, &'a Value)],
        new: &[(String, &'a Value)],
        kind: &ListKind,
        path: &mut Vec<&'a str>,
        elements: &mut Vec<String>,
    ) {
        let find = |items: &[(String, &'a Value)], key: &str| {
            items.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
        };
        let keys: BTreeSet<&String> = old.iter().chain(new).map(|(k, _)| k).collect();
        for key in keys {
            let (before, after) = (find(old, key), find(new, key));
            elements.push(key.clone());
            match kind {
                ListKind::Map(_) if !self.types.atomic_map(path) => {
                    self.fields(before, after, path, elements);
                    self.node(before, after, elements);
                }
                _ => self.leaf(before, after, elements),
            }
            elements.pop();
        }
    }
}

/// The items of a list with their path elements, or `None` when the list cannot be taken
/// item by item (an item without key, or two with the same key).
fn index<'a>(
    types: &dyn TypeInfo,
    path: &[&str],
    kind: &ListKind,
    list: Option<&'a Value>,
) -> Option<Vec<(String, &'a Value)>> {
    let Some(list) = list else {
        return Some(Vec::new());
    };
    let items = list.as_array()?;
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let element = item_element(types, path, kind, item).ok()?;
        if !seen.insert(element.clone()) {
            return None;
        }
        out.push((element, item));
    }
    Some(out)
}
