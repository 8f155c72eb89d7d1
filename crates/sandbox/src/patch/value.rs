//! JSON helpers shared by the patch algorithms.

use serde_json::{Map, Number, Value};

/// Whether two values are equal as the API server compares decoded JSON: numbers by value,
/// whatever their representation (`80` equals `80.0`).
pub(super) fn values_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => numbers_equal(x, y),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| values_equal(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, a)| y.get(k).is_some_and(|b| values_equal(a, b)))
        }
        _ => a == b,
    }
}

fn numbers_equal(x: &Number, y: &Number) -> bool {
    if x == y {
        return true;
    }
    match (x.as_i64(), y.as_i64(), x.as_u64(), y.as_u64()) {
        (Some(a), Some(b), _, _) => a == b,
        (_, _, Some(a), Some(b)) => a == b,
        _ => match (x.as_f64(), y.as_f64()) {
            (Some(a), Some(b)) => a == b,
            _ => false,
        },
    }
}

/// `value` with object keys sorted and integral floats written as integers, so that equal
/// values serialize alike (the keys of `fieldsV1` path elements).
pub(super) fn canonical(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let mut out = Map::new();
            for key in keys {
                if let Some(v) = map.get(key) {
                    out.insert(key.clone(), canonical(v));
                }
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(canonical).collect()),
        Value::Number(n) if n.is_f64() => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Value::from(f as i64),
            _ => value.clone(),
        },
        _ => value.clone(),
    }
}

/// The canonical JSON text of `value` (see [`canonical`]).
pub(super) fn canonical_json(value: &Value) -> String {
    canonical(value).to_string()
}

/// `value` without the `null` fields of its objects, at any depth (the API server drops
/// them when it decodes into typed objects). `null` list items are kept.
pub(super) fn without_nulls(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), without_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_nulls).collect()),
        _ => value.clone(),
    }
}

/// The JSON type of `value`, as Go's JSON decoder names it in messages.
pub(super) fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// `value` as Go prints decoded JSON with `%v` in error messages: `map[image:x name:web]`,
/// `[a b]`, `<nil>`.
pub(super) fn go_format(value: &Value) -> String {
    match value {
        Value::Null => "<nil>".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < 1e21 => format!("{f:.0}"),
            _ => n.to_string(),
        },
        Value::String(s) => s.clone(),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(go_format).collect();
            format!("[{}]", items.join(" "))
        }
        Value::Object(map) => {
            let mut fields: Vec<(&String, &Value)> = map.iter().collect();
            fields.sort_by(|a, b| a.0.cmp(b.0));
            let fields: Vec<String> = fields
                .iter()
                .map(|(k, v)| format!("{k}:{}", go_format(v)))
                .collect();
            format!("map[{}]", fields.join(" "))
        }
    }
}

/// Whether `value` is an empty object or an empty list (a container with nothing left).
pub(super) fn is_empty_container(value: &Value) -> bool {
    match value {
        Value::Object(map) => map.is_empty(),
        Value::Array(items) => items.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_compare_by_value() {
        assert!(values_equal(&json!({"a": [80]}), &json!({"a": [80.0]})));
        assert!(!values_equal(&json!(80), &json!(81)));
        assert!(!values_equal(&json!({"a": 1}), &json!({"a": 1, "b": 2})));
    }

    #[test]
    fn canonical_sorts_keys_and_integral_floats() {
        assert_eq!(
            canonical_json(&json!({"protocol": "TCP", "containerPort": 80.0})),
            r#"{"containerPort":80,"protocol":"TCP"}"#
        );
    }

    #[test]
    fn go_formatting() {
        let value = json!({"name": "web", "$patch": "bogus", "ports": [80, 1.5], "x": null});
        assert_eq!(
            go_format(&value),
            "map[$patch:bogus name:web ports:[80 1.5] x:<nil>]"
        );
    }

    #[test]
    fn nulls_are_dropped_from_objects_only() {
        assert_eq!(
            without_nulls(&json!({"a": null, "b": {"c": null, "d": 1}, "e": [null]})),
            json!({"b": {"d": 1}, "e": [null]})
        );
    }
}
