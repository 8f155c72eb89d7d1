//! The form the store keeps its objects in: a compact, read-only JSON tree.
//!
//! A `serde_json::Value` spends a B-tree node of eleven slots on every map, however small;
//! a pod of 4.8 KB of JSON took 30 KB that way, and the 50,000 pods of the scale scenario
//! most of the sandbox's memory. [`Json`] wraps `ijson`'s `IValue` (pointer-sized values,
//! objects as compact arrays, strings interned): the same pod takes under 7 KB.
//!
//! Reading one is written as reading a `Value`: `object["spec"]["nodeName"].as_str()`, a
//! missing field or an index out of range reads as `null`. Nothing changes a stored object
//! in place: a write takes a `Value` ([`Json::to_value`]), changes it and stores the result
//! ([`Json::from`]).

use std::{fmt, ops::Index};

use ijson::{DestructuredRef, IArray, IObject, IValue};
use ref_cast::RefCast;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Number, Value};

/// A JSON value as the store keeps it.
#[derive(Clone, PartialEq, Eq, RefCast)]
#[repr(transparent)]
pub struct Json(IValue);

/// What a missing field or element reads as.
static NULL: Json = Json(IValue::NULL);

impl Json {
    fn wrap(value: &IValue) -> &Json {
        Json::ref_cast(value)
    }

    /// The field `key`, if this is an object that has it.
    pub fn get(&self, key: &str) -> Option<&Json> {
        self.0.as_object().and_then(|o| field(o, key))
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        self.0.as_string().map(|s| s.as_str())
    }

    /// The boolean, if this is one.
    pub fn as_bool(&self) -> Option<bool> {
        self.0.to_bool()
    }

    /// The number as an `i64`, if it is an integer (written without a decimal point) that
    /// fits, as `Value::as_i64`.
    pub fn as_i64(&self) -> Option<i64> {
        let n = self.0.as_number()?;
        if n.has_decimal_point() {
            return None;
        }
        n.to_i64()
    }

    /// The number as a `u64`, if it is an integer that fits, as `Value::as_u64`.
    pub fn as_u64(&self) -> Option<u64> {
        let n = self.0.as_number()?;
        if n.has_decimal_point() {
            return None;
        }
        n.to_u64()
    }

    /// The number as an `f64`, rounded if need be, as `Value::as_f64`.
    pub fn as_f64(&self) -> Option<f64> {
        self.0.as_number().map(|n| n.to_f64_lossy())
    }

    /// The elements, if this is an array.
    pub fn as_array(&self) -> Option<Array<'_>> {
        self.0.as_array().map(Array)
    }

    /// The fields, if this is an object.
    pub fn as_object(&self) -> Option<Object<'_>> {
        self.0.as_object().map(Object)
    }

    /// Whether this is `null` (or a missing field).
    pub fn is_null(&self) -> bool {
        self.0.is_null()
    }

    /// Whether this is a string.
    pub fn is_string(&self) -> bool {
        self.0.is_string()
    }

    /// Whether this is an array.
    pub fn is_array(&self) -> bool {
        self.0.is_array()
    }

    /// Whether this is an object.
    pub fn is_object(&self) -> bool {
        self.0.is_object()
    }

    /// The value at a JSON pointer (`/metadata/name`), as `Value::pointer`.
    pub fn pointer(&self, pointer: &str) -> Option<&Json> {
        if pointer.is_empty() {
            return Some(self);
        }
        let rest = pointer.strip_prefix('/')?;
        rest.split('/').try_fold(self, |at, token| {
            let token = token.replace("~1", "/").replace("~0", "~");
            match at.0.destructure_ref() {
                DestructuredRef::Object(o) => field(o, &token),
                DestructuredRef::Array(a) => token
                    .parse::<usize>()
                    .ok()
                    .and_then(|i| a.get(i))
                    .map(Json::wrap),
                _ => None,
            }
        })
    }

    /// The value read as a `T`, as `serde_json::from_value` reads a `Value`.
    pub fn read<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        ijson::from_value(&self.0)
    }

    /// A copy as a `serde_json::Value`, to change or to hand to code that reads those.
    pub fn to_value(&self) -> Value {
        to_value(&self.0)
    }
}

/// The field `key` of an object, found by comparing names. `IObject::get(&str)` interns
/// the name first (ijson keeps strings longer than an inline word in a global, locked set),
/// which costs more than a look through the dozen fields of a Kubernetes object's map.
fn field<'a>(object: &'a IObject, key: &str) -> Option<&'a Json> {
    object
        .iter()
        .find(|(name, _)| name.as_str() == key)
        .map(|(_, value)| Json::wrap(value))
}

fn to_value(value: &IValue) -> Value {
    match value.destructure_ref() {
        DestructuredRef::Null => Value::Null,
        DestructuredRef::Bool(b) => Value::Bool(b),
        DestructuredRef::Number(n) => Value::Number(number(n)),
        DestructuredRef::String(s) => Value::String(s.as_str().to_owned()),
        DestructuredRef::Array(a) => Value::Array(a.iter().map(to_value).collect()),
        DestructuredRef::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| (k.as_str().to_owned(), to_value(v)))
                .collect::<Map<String, Value>>(),
        ),
    }
}

/// A number as `serde_json` reads it from text: an integer unless written with a decimal
/// point or an exponent.
fn number(n: &ijson::INumber) -> Number {
    let integer = if n.has_decimal_point() {
        None
    } else {
        n.to_i64()
            .map(Number::from)
            .or_else(|| n.to_u64().map(Number::from))
    };
    integer
        .or_else(|| Number::from_f64(n.to_f64_lossy()))
        .unwrap_or_else(|| Number::from(0))
}

impl From<Value> for Json {
    fn from(value: Value) -> Self {
        Json(IValue::from(value))
    }
}

impl From<&Value> for Json {
    fn from(value: &Value) -> Self {
        Json(from_value(value))
    }
}

fn from_value(value: &Value) -> IValue {
    match value {
        Value::Null => IValue::NULL,
        Value::Bool(b) => (*b).into(),
        Value::Number(n) => ijson::INumber::from(n.clone()).into(),
        Value::String(s) => s.as_str().into(),
        Value::Array(a) => a.iter().map(from_value).collect::<IArray>().into(),
        Value::Object(o) => o
            .iter()
            .map(|(k, v)| (k.as_str(), from_value(v)))
            .collect::<IObject>()
            .into(),
    }
}

impl Index<&str> for Json {
    type Output = Json;

    fn index(&self, key: &str) -> &Json {
        self.get(key).unwrap_or(&NULL)
    }
}

impl Index<usize> for Json {
    type Output = Json;

    fn index(&self, index: usize) -> &Json {
        self.0
            .as_array()
            .and_then(|a| a.get(index))
            .map_or(&NULL, Json::wrap)
    }
}

impl PartialEq<str> for Json {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == Some(other)
    }
}

impl PartialEq<&str> for Json {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == Some(*other)
    }
}

impl PartialEq<bool> for Json {
    fn eq(&self, other: &bool) -> bool {
        self.as_bool() == Some(*other)
    }
}

impl PartialEq<i64> for Json {
    fn eq(&self, other: &i64) -> bool {
        self.as_i64() == Some(*other)
    }
}

impl PartialEq<Value> for Json {
    fn eq(&self, other: &Value) -> bool {
        match (self.0.destructure_ref(), other) {
            (DestructuredRef::Null, Value::Null) => true,
            (DestructuredRef::Bool(a), Value::Bool(b)) => a == *b,
            (DestructuredRef::Number(a), Value::Number(b)) => *a == ijson::INumber::from(b.clone()),
            (DestructuredRef::String(a), Value::String(b)) => a.as_str() == b,
            (DestructuredRef::Array(a), Value::Array(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| Json::wrap(x) == y)
            }
            (DestructuredRef::Object(a), Value::Object(b)) => {
                a.len() == b.len() && b.iter().all(|(k, y)| field(a, k).is_some_and(|x| x == y))
            }
            _ => false,
        }
    }
}

impl PartialEq<Json> for Value {
    fn eq(&self, other: &Json) -> bool {
        other == self
    }
}

impl fmt::Debug for Json {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.to_value(), f)
    }
}

impl fmt::Display for Json {
    /// The JSON text.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = serde_json::to_string(&self.0).map_err(|_| fmt::Error)?;
        f.write_str(&text)
    }
}

impl Default for Json {
    /// `null`.
    fn default() -> Self {
        Json(IValue::NULL)
    }
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        IValue::deserialize(deserializer).map(Json)
    }
}

impl Serialize for Json {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

/// Reading JSON the same way whether it is stored ([`Json`], shared as `Arc<Json>`) or
/// being written (`Value`): what the simulated cluster's helpers take, since its controllers
/// read both the objects they follow and the ones they are about to write.
pub trait Read {
    /// The type of the values inside.
    type Node: Read<Node = Self::Node> + ?Sized;

    /// The field `key`, `null` when missing.
    fn at(&self, key: &str) -> &Self::Node;
    /// The string, if this is one.
    fn text(&self) -> Option<&str>;
    /// The integer, if this is one that fits an `i64`.
    fn int(&self) -> Option<i64>;
    /// Whether this is `null` (or missing).
    fn null(&self) -> bool;
    /// The elements if this is an array; none otherwise.
    fn elements(&self) -> impl Iterator<Item = &Self::Node>;
    /// A copy as a `Value`.
    fn value(&self) -> Value;
}

impl Read for Json {
    type Node = Json;

    fn at(&self, key: &str) -> &Json {
        &self[key]
    }
    fn text(&self) -> Option<&str> {
        self.as_str()
    }
    fn int(&self) -> Option<i64> {
        self.as_i64()
    }
    fn null(&self) -> bool {
        self.is_null()
    }
    fn elements(&self) -> impl Iterator<Item = &Json> {
        self.as_array().into_iter().flat_map(Array::iter)
    }
    fn value(&self) -> Value {
        self.to_value()
    }
}

impl Read for Value {
    type Node = Value;

    fn at(&self, key: &str) -> &Value {
        &self[key]
    }
    fn text(&self) -> Option<&str> {
        self.as_str()
    }
    fn int(&self) -> Option<i64> {
        self.as_i64()
    }
    fn null(&self) -> bool {
        self.is_null()
    }
    fn elements(&self) -> impl Iterator<Item = &Value> {
        self.as_array().into_iter().flatten()
    }
    fn value(&self) -> Value {
        self.clone()
    }
}

/// `Read` through a pointer: what is read is what it points to.
macro_rules! read_through {
    ($($pointer:ty),+) => {$(
        impl<T: Read + ?Sized> Read for $pointer {
            type Node = T::Node;

            fn at(&self, key: &str) -> &T::Node {
                (**self).at(key)
            }
            fn text(&self) -> Option<&str> {
                (**self).text()
            }
            fn int(&self) -> Option<i64> {
                (**self).int()
            }
            fn null(&self) -> bool {
                (**self).null()
            }
            fn elements(&self) -> impl Iterator<Item = &T::Node> {
                (**self).elements()
            }
            fn value(&self) -> Value {
                (**self).value()
            }
        }
    )+};
}

read_through!(&T, std::sync::Arc<T>);

/// The elements of an array.
#[derive(Clone, Copy, Debug)]
pub struct Array<'a>(&'a IArray);

impl<'a> Array<'a> {
    /// How many.
    pub fn len(self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(self) -> bool {
        self.0.is_empty()
    }

    /// The element at `index`.
    pub fn get(self, index: usize) -> Option<&'a Json> {
        self.0.get(index).map(Json::wrap)
    }

    /// The first element.
    pub fn first(self) -> Option<&'a Json> {
        self.get(0)
    }

    /// The last element.
    pub fn last(self) -> Option<&'a Json> {
        self.0.len().checked_sub(1).and_then(|i| self.get(i))
    }

    /// A copy of the elements as `Value`s.
    pub fn to_vec(self) -> Vec<Value> {
        self.iter().map(Json::to_value).collect()
    }

    /// Each element in order.
    pub fn iter(self) -> impl DoubleEndedIterator<Item = &'a Json> + ExactSizeIterator {
        self.0.iter().map(Json::wrap)
    }
}

impl<'a> IntoIterator for Array<'a> {
    type Item = &'a Json;
    type IntoIter = std::iter::Map<std::slice::Iter<'a, IValue>, fn(&'a IValue) -> &'a Json>;

    fn into_iter(self) -> Self::IntoIter {
        self.0
            .as_slice()
            .iter()
            .map(Json::wrap as fn(&'a IValue) -> &'a Json)
    }
}

/// The fields of an object.
#[derive(Clone, Copy, Debug)]
pub struct Object<'a>(&'a IObject);

impl<'a> Object<'a> {
    /// How many.
    pub fn len(self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(self) -> bool {
        self.0.is_empty()
    }

    /// The field `key`.
    pub fn get(self, key: &str) -> Option<&'a Json> {
        field(self.0, key)
    }

    /// Whether there is a field `key`.
    pub fn contains_key(self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// The names of the fields.
    pub fn keys(self) -> impl Iterator<Item = &'a str> {
        self.0.keys().map(|k| k.as_str())
    }

    /// A copy of the fields as a map of `Value`s.
    pub fn to_map(self) -> Map<String, Value> {
        self.iter()
            .map(|(k, v)| (k.to_owned(), v.to_value()))
            .collect()
    }

    /// Each field's name and value.
    pub fn iter(self) -> impl Iterator<Item = (&'a str, &'a Json)> {
        self.0.iter().map(|(k, v)| (k.as_str(), Json::wrap(v)))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn reads_as_a_value_reads() {
        let value = json!({
            "metadata": {"name": "a", "labels": {"k": "v"}, "finalizers": ["f"]},
            "spec": {"replicas": 3, "ratio": 1.0, "big": u64::MAX, "neg": -2, "on": true},
        });
        let stored = Json::from(&value);
        assert_eq!(stored["metadata"]["name"].as_str(), Some("a"));
        assert!(stored["metadata"]["missing"]["deeper"].is_null());
        assert!(stored["spec"]["replicas"][4].is_null());
        assert_eq!(stored["metadata"]["finalizers"][0], "f");
        assert_eq!(stored["spec"]["replicas"].as_i64(), Some(3));
        assert_eq!(
            stored["spec"]["ratio"].as_i64(),
            value["spec"]["ratio"].as_i64()
        );
        assert_eq!(stored["spec"]["ratio"].as_f64(), Some(1.0));
        assert_eq!(stored["spec"]["big"].as_u64(), Some(u64::MAX));
        assert_eq!(stored["spec"]["big"].as_i64(), None);
        assert_eq!(stored["spec"]["neg"].as_i64(), Some(-2));
        assert_eq!(stored["spec"]["neg"].as_u64(), None);
        assert_eq!(stored["spec"]["on"].as_bool(), Some(true));
        assert_eq!(
            stored.pointer("/metadata/labels/k").and_then(Json::as_str),
            Some("v")
        );
        assert_eq!(
            stored["metadata"]["labels"]
                .as_object()
                .map(|o| o.keys().collect::<Vec<_>>()),
            Some(vec!["k"])
        );
        assert!(stored == value);
        assert_eq!(stored.to_value(), value);
    }

    #[test]
    fn read_answers_alike_for_a_value_a_json_and_a_shared_json() {
        fn summary(object: &(impl Read + ?Sized)) -> (Option<String>, Option<i64>, bool, usize) {
            let meta = object.at("metadata");
            (
                meta.at("name").text().map(str::to_owned),
                meta.at("generation").int(),
                meta.at("missing").at("deeper").null(),
                meta.at("finalizers").elements().count(),
            )
        }
        let value = json!({"metadata": {"name": "a", "generation": 2, "finalizers": ["x", "y"]}});
        let stored = std::sync::Arc::new(Json::from(&value));
        let expected = (Some("a".to_owned()), Some(2), true, 2);
        assert_eq!(summary(&value), expected);
        assert_eq!(summary(&*stored), expected);
        assert_eq!(summary(&stored), expected);
        assert_eq!(summary(&&stored), expected);
        assert_eq!(stored.value(), value);
    }

    #[test]
    fn prints_the_same_text_as_a_value() {
        // `-0.0` is the one number that does not come back as written (as `0.0`); see the
        // known limits in docs/sandbox.md.
        let text = r#"{"a":[1,1.0,-1,2.5e-3,1.118322344e-24,18446744073709551615,"é\n",null,true],"b":{"z":{},"a":[]}}"#;
        let value: Value = serde_json::from_str(text).expect("valid JSON");
        let stored = Json::from(value.clone());
        assert_eq!(stored.to_string(), value.to_string());
        assert_eq!(
            serde_json::to_string(&stored).ok(),
            serde_json::to_string(&value).ok()
        );
        assert_eq!(stored.to_value(), value);
    }
}
