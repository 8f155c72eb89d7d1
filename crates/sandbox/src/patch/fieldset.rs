//! Sets of field paths, as server-side apply records them in `managedFields[].fieldsV1`.
//!
//! A path is a list of elements, each written as in `fieldsV1`: `f:<name>` for a field of a
//! map, `k:<json>` for the item of a map list with those key fields (keys sorted),
//! `v:<json>` for the item of a set, `i:<n>` for a list index. A set is a tree of such
//! elements where each node says whether the path leading to it is itself a member; in
//! `fieldsV1` a member with children carries a `"."` key.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::value::{canonical, canonical_json};

/// A set of field paths.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct FieldSet {
    member: bool,
    children: BTreeMap<String, FieldSet>,
}

/// The path element of the field `name` of a map.
pub(super) fn field_element(name: &str) -> String {
    format!("f:{name}")
}

/// The path element of the map-list item whose key fields are `keys`.
pub(super) fn key_element(keys: &Map<String, Value>) -> String {
    format!("k:{}", canonical_json(&Value::Object(keys.clone())))
}

/// The path element of the set item `value`.
pub(super) fn value_element(value: &Value) -> String {
    format!("v:{}", canonical_json(value))
}

/// A path as the API server prints it in conflicts:
/// `.spec.template.spec.containers[name="web"].image`, `.metadata.finalizers[="x"]`.
pub(super) fn display_path(path: &[String]) -> String {
    let mut out = String::new();
    for element in path {
        if let Some(name) = element.strip_prefix("f:") {
            out.push('.');
            out.push_str(name);
        } else if let Some(json) = element.strip_prefix("k:") {
            let keys = match serde_json::from_str::<Value>(json) {
                Ok(Value::Object(keys)) => keys
                    .iter()
                    .map(|(k, v)| format!("{k}={}", canonical_json(v)))
                    .collect::<Vec<_>>()
                    .join(","),
                _ => json.to_owned(),
            };
            out.push_str(&format!("[{keys}]"));
        } else if let Some(json) = element.strip_prefix("v:") {
            out.push_str(&format!("[={json}]"));
        } else if let Some(index) = element.strip_prefix("i:") {
            out.push_str(&format!("[{index}]"));
        }
    }
    out
}

impl FieldSet {
    /// Adds `path`.
    pub(super) fn insert(&mut self, path: &[String]) {
        let mut node = self;
        for element in path {
            node = node.children.entry(element.clone()).or_default();
        }
        node.member = true;
    }

    /// Whether `path` is a member.
    pub(super) fn contains(&self, path: &[String]) -> bool {
        let mut node = self;
        for element in path {
            match node.children.get(element) {
                Some(child) => node = child,
                None => return false,
            }
        }
        node.member
    }

    /// Whether the set has no member.
    pub(super) fn is_empty(&self) -> bool {
        !self.member && self.children.values().all(FieldSet::is_empty)
    }

    /// Every member, in order.
    pub(super) fn members(&self) -> Vec<Vec<String>> {
        let mut out = Vec::new();
        self.collect_members(&mut Vec::new(), &mut out);
        out
    }

    fn collect_members(&self, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        if self.member {
            out.push(prefix.clone());
        }
        for (element, child) in &self.children {
            prefix.push(element.clone());
            child.collect_members(prefix, out);
            prefix.pop();
        }
    }

    /// Adds every member of `other`.
    pub(super) fn union_with(&mut self, other: &FieldSet) {
        self.member |= other.member;
        for (element, child) in &other.children {
            self.children
                .entry(element.clone())
                .or_default()
                .union_with(child);
        }
    }

    /// The members of `self` that are not members of `other`.
    pub(super) fn difference(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet {
            member: self.member && !other.member,
            children: BTreeMap::new(),
        };
        for (element, child) in &self.children {
            let rest = match other.children.get(element) {
                Some(other_child) => child.difference(other_child),
                None => child.clone(),
            };
            if !rest.is_empty() {
                out.children.insert(element.clone(), rest);
            }
        }
        out
    }

    /// The members of both sets.
    pub(super) fn intersection(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet {
            member: self.member && other.member,
            children: BTreeMap::new(),
        };
        for (element, child) in &self.children {
            if let Some(other_child) = other.children.get(element) {
                let both = child.intersection(other_child);
                if !both.is_empty() {
                    out.children.insert(element.clone(), both);
                }
            }
        }
        out
    }

    /// The set with, for every member, each enclosing path that ends with a field name: the
    /// maps a member lives in are kept along with it, the list items are not.
    pub(super) fn with_field_ancestors(&self) -> FieldSet {
        let mut out = self.clone();
        out.mark_field_ancestors();
        out
    }

    fn mark_field_ancestors(&mut self) -> bool {
        let mut any = self.member;
        for (element, child) in &mut self.children {
            if child.mark_field_ancestors() {
                any = true;
                if element.starts_with("f:") {
                    child.member = true;
                }
            }
        }
        any
    }

    /// The `fieldsV1` form of the set.
    pub(super) fn to_fields_v1(&self) -> Value {
        Value::Object(self.children_v1())
    }

    fn children_v1(&self) -> Map<String, Value> {
        let mut out = Map::new();
        for (element, child) in &self.children {
            if child.is_empty() {
                continue;
            }
            let mut value = child.children_v1();
            if child.member && !value.is_empty() {
                value.insert(".".to_owned(), Value::Object(Map::new()));
            }
            out.insert(element.clone(), Value::Object(value));
        }
        out
    }

    /// Reads a `fieldsV1` object; elements that cannot be read are skipped.
    pub(super) fn from_fields_v1(value: &Value) -> FieldSet {
        let mut out = FieldSet::default();
        if let Value::Object(map) = value {
            out.read_children(map);
        }
        out
    }

    fn read_children(&mut self, map: &Map<String, Value>) {
        for (element, value) in map {
            let Value::Object(inner) = value else {
                continue;
            };
            if element == "." {
                continue;
            }
            let Some(element) = canonical_element(element) else {
                continue;
            };
            let child = self.children.entry(element).or_default();
            child.member |= inner.is_empty() || inner.contains_key(".");
            child.read_children(inner);
        }
    }
}

/// `element` with its JSON part in canonical form, or `None` if it is not an element.
fn canonical_element(element: &str) -> Option<String> {
    let (prefix, rest) = element.split_at_checked(2)?;
    match prefix {
        "f:" | "i:" => Some(element.to_owned()),
        "k:" | "v:" => {
            let parsed: Value = serde_json::from_str(rest).ok()?;
            Some(format!("{prefix}{}", canonical(&parsed)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn path(elements: &[&str]) -> Vec<String> {
        elements.iter().map(|e| (*e).to_owned()).collect()
    }

    #[test]
    fn fields_v1_round_trip() {
        let v1 = json!({
            "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
            "f:spec": {"f:containers": {
                "k:{\"name\":\"web\"}": {".": {}, "f:image": {}, "f:name": {}}
            }, "f:replicas": {}}
        });
        let set = FieldSet::from_fields_v1(&v1);
        assert!(set.contains(&path(&["f:spec", "f:replicas"])));
        assert!(set.contains(&path(&["f:metadata", "f:labels"])));
        assert!(!set.contains(&path(&["f:metadata"])));
        assert!(set.contains(&path(&["f:spec", "f:containers", "k:{\"name\":\"web\"}"])));
        assert_eq!(set.to_fields_v1(), v1);
    }

    #[test]
    fn keys_are_canonical() {
        let set =
            FieldSet::from_fields_v1(&json!({"k:{\"protocol\":\"TCP\",\"containerPort\":80}": {}}));
        assert!(set.contains(&path(&["k:{\"containerPort\":80,\"protocol\":\"TCP\"}"])));
    }

    #[test]
    fn set_algebra() {
        let mut a = FieldSet::default();
        a.insert(&path(&["f:spec", "f:replicas"]));
        a.insert(&path(&["f:spec", "f:paused"]));
        let mut b = FieldSet::default();
        b.insert(&path(&["f:spec", "f:replicas"]));
        assert_eq!(a.intersection(&b), b);
        assert_eq!(
            a.difference(&b).members(),
            vec![path(&["f:spec", "f:paused"])]
        );
        assert!(b.difference(&a).is_empty());
        let mut c = b.clone();
        c.union_with(&a);
        assert_eq!(c, a);
        assert!(a.with_field_ancestors().contains(&path(&["f:spec"])));
    }

    #[test]
    fn display() {
        let p = path(&["f:spec", "f:containers", "k:{\"name\":\"web\"}", "f:image"]);
        assert_eq!(display_path(&p), ".spec.containers[name=\"web\"].image");
        let p = path(&["f:metadata", "f:finalizers", "v:\"example.com/x\""]);
        assert_eq!(display_path(&p), ".metadata.finalizers[=\"example.com/x\"]");
        let p = path(&["f:ports", "k:{\"containerPort\":80,\"protocol\":\"TCP\"}"]);
        assert_eq!(
            display_path(&p),
            ".ports[containerPort=80,protocol=\"TCP\"]"
        );
    }
}
