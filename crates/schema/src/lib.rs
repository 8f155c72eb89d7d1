//! Objects as people write them: [`manifest`] reads them from YAML files, and [`CrdSchema`]
//! checks one against a CustomResourceDefinition's schema, the way the API server does on
//! create and update: unknown fields, defaults, the OpenAPI rules and the CEL rules.
//!
//! The messages follow the API server's (`spec.x: Required value`, `spec.x: Invalid value:
//! …`), so a file refused here is refused the same way by a cluster. The command line uses it
//! to check files before reading them; the sandbox uses it to answer `422 Unprocessable
//! Entity`.

pub mod manifest;

use std::{collections::BTreeSet, fmt};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube_cel::{CompiledSchema, RootContext, Validator, compile_schema};
use regex::Regex;
use serde_json::{Map, Value};

/// One reason an object is invalid, at one field.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldError {
    /// The field, like `spec.strategy.stages[1].percent`; empty for the whole object.
    pub path: String,
    /// What is wrong with it.
    pub kind: FieldErrorKind,
}

/// The kinds of field error the API server reports.
#[derive(Clone, Debug, PartialEq)]
pub enum FieldErrorKind {
    /// A required field is missing.
    Required,
    /// A field is present that the schema does not know (strict field validation).
    Unknown,
    /// The value breaks a rule; `detail` says which.
    Invalid {
        /// The offending value, or its type name for objects and lists.
        value: Value,
        /// The rule it breaks.
        detail: String,
    },
    /// The value is not one of the allowed ones.
    NotSupported {
        /// The offending value.
        value: Value,
        /// The allowed values.
        supported: Vec<Value>,
    },
    /// A string is longer than allowed.
    TooLong {
        /// The maximum length.
        max: u64,
    },
    /// A list has more items than allowed.
    TooMany {
        /// How many it has.
        actual: usize,
        /// The maximum.
        max: u64,
    },
    /// A set or map list holds the same item twice.
    Duplicate {
        /// The repeated value.
        value: Value,
    },
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = if self.path.is_empty() {
            "<nil>"
        } else {
            &self.path
        };
        match &self.kind {
            FieldErrorKind::Unknown => write!(f, "unknown field \"{path}\""),
            FieldErrorKind::Required => write!(f, "{path}: Required value"),
            FieldErrorKind::Invalid { value, detail } => {
                write!(f, "{path}: Invalid value: {value}: {detail}")
            }
            FieldErrorKind::NotSupported { value, supported } => {
                let supported: Vec<String> = supported.iter().map(Value::to_string).collect();
                write!(
                    f,
                    "{path}: Unsupported value: {value}: supported values: {}",
                    supported.join(", ")
                )
            }
            FieldErrorKind::TooLong { max } => {
                write!(f, "{path}: Too long: may not be more than {max} bytes")
            }
            FieldErrorKind::TooMany { actual, max } => {
                write!(
                    f,
                    "{path}: Too many: {actual}: must have at most {max} items"
                )
            }
            FieldErrorKind::Duplicate { value } => write!(f, "{path}: Duplicate value: {value}"),
        }
    }
}

/// The errors of one object, joined the way the API server joins them.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldErrors(pub Vec<FieldError>);

impl fmt::Display for FieldErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        match parts.as_slice() {
            [] => Ok(()),
            [one] => f.write_str(one),
            many => write!(f, "[{}]", many.join(", ")),
        }
    }
}

/// The schema of one version of a CRD, with its CEL rules compiled once.
pub struct CrdSchema {
    schema: Value,
    compiled: CompiledSchema,
    root: RootContext,
}

impl fmt::Debug for CrdSchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CrdSchema")
            .field("kind", &self.root.kind)
            .finish_non_exhaustive()
    }
}

impl CrdSchema {
    /// The schema of `version` of `crd`, if the CRD has that version and it has a schema.
    pub fn new(crd: &CustomResourceDefinition, version: &str) -> Option<Self> {
        let served = crd.spec.versions.iter().find(|v| v.name == version)?;
        let schema = served.schema.as_ref()?.open_api_v3_schema.as_ref()?;
        let schema = serde_json::to_value(schema).ok()?;
        let group = &crd.spec.group;
        Some(CrdSchema {
            compiled: compile_schema(&schema),
            schema,
            root: RootContext {
                api_version: format!("{group}/{version}"),
                api_group: group.clone(),
                kind: crd.spec.names.kind.clone(),
            },
        })
    }

    /// Admits `object` as the API server would: drops null values and unknown fields
    /// (reporting each unknown field), applies defaults, then checks the OpenAPI and CEL
    /// rules. `old` is the stored object on update, for transition rules.
    pub fn admit(&self, object: &Value, old: Option<&Value>) -> Admission {
        let mut pruned = object.clone();
        let mut unknown = Vec::new();
        prune(&self.schema, &mut pruned, "", true, &mut unknown);
        let defaulted = kube_cel::apply_defaults(&self.schema, &pruned);
        let mut errors = Vec::new();
        check(&self.schema, &defaulted, "", &mut errors);
        if errors.is_empty() {
            // CEL rules assume a structurally valid object, as on the API server.
            let outcome = Validator::new().validate_compiled_with_context(
                &self.compiled,
                &defaulted,
                old,
                Some(&self.root),
            );
            if let Err(failures) = outcome {
                for failure in failures.iter() {
                    // The API server shows the value, as for OpenAPI rules (the type's
                    // name for objects and lists).
                    let path = failure.field_path.clone();
                    let value = lookup(&defaulted, &path).cloned().unwrap_or(Value::Null);
                    errors.push(invalid(&path, &value, failure.message.clone()));
                }
            }
        }
        Admission {
            object: defaulted,
            unknown_fields: unknown,
            errors,
        }
    }
}

/// The outcome of [`CrdSchema::admit`].
#[derive(Clone, Debug)]
pub struct Admission {
    /// The object as it would be stored: pruned and defaulted.
    pub object: Value,
    /// Fields the schema does not know, dropped from `object`. Strict field validation
    /// (kubectl's default) refuses the object for them.
    pub unknown_fields: Vec<FieldError>,
    /// Every rule the object breaks.
    pub errors: Vec<FieldError>,
}

impl Admission {
    /// Every problem with the object under strict field validation, unknown fields first.
    pub fn strict_errors(&self) -> Vec<FieldError> {
        self.unknown_fields
            .iter()
            .chain(&self.errors)
            .cloned()
            .collect()
    }
}

fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_owned()
    } else {
        format!("{path}.{field}")
    }
}

fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

fn flag(schema: &Value, name: &str) -> bool {
    schema.get(name).and_then(Value::as_bool).unwrap_or(false)
}

/// Drops null values of non-nullable fields and fields the schema does not know.
fn prune(schema: &Value, value: &mut Value, path: &str, root: bool, unknown: &mut Vec<FieldError>) {
    match value {
        Value::Object(map) => {
            let properties = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            let keep_unknown = flag(schema, "x-kubernetes-preserve-unknown-fields");
            let mut drop = Vec::new();
            for (key, child) in map.iter_mut() {
                if root && matches!(key.as_str(), "apiVersion" | "kind" | "metadata") {
                    continue;
                }
                let child_schema = properties.and_then(|p| p.get(key)).or(additional);
                match child_schema {
                    Some(child_schema) => {
                        if child.is_null() && !flag(child_schema, "nullable") {
                            drop.push(key.clone());
                        } else {
                            prune(child_schema, child, &join(path, key), false, unknown);
                        }
                    }
                    None if keep_unknown => {}
                    None => {
                        unknown.push(FieldError {
                            path: join(path, key),
                            kind: FieldErrorKind::Unknown,
                        });
                        drop.push(key.clone());
                    }
                }
            }
            for key in drop {
                map.remove(&key);
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter_mut().enumerate() {
                    prune(item_schema, item, &index(path, i), false, unknown);
                }
            }
        }
        _ => {}
    }
}

/// The name the API server gives a value's type in messages.
fn type_name(value: Option<&Value>) -> &'static str {
    match value {
        Some(Value::Object(_)) | None => "object",
        Some(Value::Array(_)) => "array",
        Some(Value::String(_)) => "string",
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => "integer",
        Some(Value::Number(_)) => "number",
        Some(Value::Bool(_)) => "boolean",
        Some(Value::Null) => "null",
    }
}

/// The value at a path like `spec.stages[1]`, if it exists.
fn lookup<'v>(value: &'v Value, path: &str) -> Option<&'v Value> {
    let mut current = value;
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (field, indices) = part
            .split_once('[')
            .map_or((part, ""), |(f, rest)| (f, rest));
        if !field.is_empty() {
            current = current.get(field)?;
        }
        for i in indices.split('[').filter(|i| !i.is_empty()) {
            current = current.get(i.trim_end_matches(']').parse::<usize>().ok()?)?;
        }
    }
    Some(current)
}

/// Whether `value` matches `schema` without reporting why (for `anyOf`, `oneOf`, `not`).
fn matches(schema: &Value, value: &Value) -> bool {
    let mut errors = Vec::new();
    check(schema, value, "", &mut errors);
    errors.is_empty()
}

fn invalid(path: &str, value: &Value, detail: String) -> FieldError {
    let shown = match value {
        Value::Object(_) | Value::Array(_) => Value::String(type_name(Some(value)).into()),
        other => other.clone(),
    };
    FieldError {
        path: path.to_owned(),
        kind: FieldErrorKind::Invalid {
            value: shown,
            detail,
        },
    }
}

fn body(path: &str) -> String {
    if path.is_empty() {
        "body".to_owned()
    } else {
        format!("{path} in body")
    }
}

/// Checks the OpenAPI rules of `schema` on `value`, collecting every failure.
fn check(schema: &Value, value: &Value, path: &str, errors: &mut Vec<FieldError>) {
    if value.is_null() {
        if !flag(schema, "nullable") && schema.get("type").is_some() {
            errors.push(invalid(
                path,
                value,
                format!(
                    "{} must be of type {}",
                    body(path),
                    schema["type"].as_str().unwrap_or("object")
                ),
            ));
        }
        return;
    }
    let int_or_string = flag(schema, "x-kubernetes-int-or-string");
    if let Some(expected) = schema.get("type").and_then(Value::as_str) {
        let actual = type_name(Some(value));
        let fits = actual == expected || (expected == "number" && actual == "integer");
        if !fits {
            let detail = format!("{} must be of type {expected}: \"{actual}\"", body(path));
            errors.push(invalid(path, &Value::String(actual.into()), detail));
            return;
        }
    } else if int_or_string && !(value.is_string() || value.is_i64() || value.is_u64()) {
        let detail = format!("{} must be of type integer or string", body(path));
        errors.push(invalid(path, value, detail));
        return;
    }

    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        errors.push(FieldError {
            path: path.to_owned(),
            kind: FieldErrorKind::NotSupported {
                value: value.clone(),
                supported: allowed.clone(),
            },
        });
    }

    match value {
        Value::String(text) => check_string(schema, text, value, path, errors),
        Value::Number(number) => check_number(
            schema,
            number.as_f64().unwrap_or(f64::NAN),
            value,
            path,
            errors,
        ),
        Value::Array(items) => check_array(schema, items, path, errors),
        Value::Object(map) => check_object(schema, map, path, errors),
        Value::Bool(_) | Value::Null => {}
    }

    for combinator in ["allOf", "anyOf", "oneOf"] {
        let Some(options) = schema.get(combinator).and_then(Value::as_array) else {
            continue;
        };
        let passing = options
            .iter()
            .filter(|option| matches(option, value))
            .count();
        let ok = match combinator {
            "allOf" => passing == options.len(),
            "anyOf" => passing > 0,
            _ => passing == 1,
        };
        if !ok {
            let detail = format!("{} must validate {combinator} of its schemas", body(path));
            errors.push(invalid(path, value, detail));
        }
    }
    if let Some(not) = schema.get("not")
        && matches(not, value)
    {
        errors.push(invalid(
            path,
            value,
            format!("{} must not validate the schema (not)", body(path)),
        ));
    }
}

fn check_string(
    schema: &Value,
    text: &str,
    value: &Value,
    path: &str,
    errors: &mut Vec<FieldError>,
) {
    let length = text.chars().count() as u64;
    if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
        && length > max
    {
        errors.push(FieldError {
            path: path.to_owned(),
            kind: FieldErrorKind::TooLong { max },
        });
    }
    if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
        && length < min
    {
        let detail = format!("{} should be at least {min} chars long", body(path));
        errors.push(invalid(path, value, detail));
    }
    if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
        // The API server compiles patterns when the CRD is created; a CRD with a pattern
        // that does not compile never gets here.
        if Regex::new(pattern).is_ok_and(|re| !re.is_match(text)) {
            let detail = format!("{} should match '{pattern}'", body(path));
            errors.push(invalid(path, value, detail));
        }
    }
    if schema.get("format").and_then(Value::as_str) == Some("date-time")
        && text.parse::<jiff::Timestamp>().is_err()
    {
        let detail = format!("{} must be of type date-time: {value}", body(path));
        errors.push(invalid(path, value, detail));
    }
}

fn check_number(
    schema: &Value,
    number: f64,
    value: &Value,
    path: &str,
    errors: &mut Vec<FieldError>,
) {
    if let Some(min) = schema.get("minimum").and_then(Value::as_f64) {
        let exclusive = flag(schema, "exclusiveMinimum");
        if number < min || (exclusive && number == min) {
            let relation = if exclusive {
                "greater than"
            } else {
                "greater than or equal to"
            };
            let detail = format!("{} should be {relation} {}", body(path), schema["minimum"]);
            errors.push(invalid(path, value, detail));
        }
    }
    if let Some(max) = schema.get("maximum").and_then(Value::as_f64) {
        let exclusive = flag(schema, "exclusiveMaximum");
        if number > max || (exclusive && number == max) {
            let relation = if exclusive {
                "less than"
            } else {
                "less than or equal to"
            };
            let detail = format!("{} should be {relation} {}", body(path), schema["maximum"]);
            errors.push(invalid(path, value, detail));
        }
    }
}

fn check_array(schema: &Value, items: &[Value], path: &str, errors: &mut Vec<FieldError>) {
    if let Some(max) = schema.get("maxItems").and_then(Value::as_u64)
        && items.len() as u64 > max
    {
        errors.push(FieldError {
            path: path.to_owned(),
            kind: FieldErrorKind::TooMany {
                actual: items.len(),
                max,
            },
        });
    }
    if let Some(min) = schema.get("minItems").and_then(Value::as_u64)
        && (items.len() as u64) < min
    {
        let detail = format!("{} should have at least {min} items", body(path));
        errors.push(invalid(path, &Value::from(items.len()), detail));
    }
    match schema.get("x-kubernetes-list-type").and_then(Value::as_str) {
        Some("set") => {
            let mut seen = BTreeSet::new();
            for (i, item) in items.iter().enumerate() {
                if !seen.insert(item.to_string()) {
                    errors.push(FieldError {
                        path: index(path, i),
                        kind: FieldErrorKind::Duplicate {
                            value: item.clone(),
                        },
                    });
                }
            }
        }
        Some("map") => {
            let keys: Vec<&str> = schema
                .get("x-kubernetes-list-map-keys")
                .and_then(Value::as_array)
                .map(|keys| keys.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let mut seen = BTreeSet::new();
            for (i, item) in items.iter().enumerate() {
                let key: Map<String, Value> = keys
                    .iter()
                    .map(|k| {
                        (
                            (*k).to_owned(),
                            item.get(*k).cloned().unwrap_or(Value::Null),
                        )
                    })
                    .collect();
                let key = Value::Object(key);
                if !seen.insert(key.to_string()) {
                    errors.push(FieldError {
                        path: index(path, i),
                        kind: FieldErrorKind::Duplicate { value: key },
                    });
                }
            }
        }
        _ => {}
    }
    if let Some(item_schema) = schema.get("items") {
        for (i, item) in items.iter().enumerate() {
            check(item_schema, item, &index(path, i), errors);
        }
    }
}

fn check_object(
    schema: &Value,
    map: &Map<String, Value>,
    path: &str,
    errors: &mut Vec<FieldError>,
) {
    if let Some(required) = schema.get("required").and_then(Value::as_array) {
        for field in required.iter().filter_map(Value::as_str) {
            if !map.contains_key(field) {
                errors.push(FieldError {
                    path: join(path, field),
                    kind: FieldErrorKind::Required,
                });
            }
        }
    }
    let properties = schema.get("properties").and_then(Value::as_object);
    let additional = schema.get("additionalProperties").filter(|a| a.is_object());
    for (key, child) in map {
        if path.is_empty() && matches!(key.as_str(), "apiVersion" | "kind" | "metadata") {
            continue;
        }
        if let Some(child_schema) = properties.and_then(|p| p.get(key)).or(additional) {
            check(child_schema, child, &join(path, key), errors);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn errors(schema: Value, object: Value) -> Vec<String> {
        let crd_schema = CrdSchema {
            compiled: compile_schema(&schema),
            schema,
            root: RootContext::default(),
        };
        crd_schema
            .admit(&object, None)
            .strict_errors()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn messages_read_like_the_api_server() {
        let schema = json!({
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "required": ["version"],
                    "properties": {
                        "version": {"type": "string", "maxLength": 3},
                        "mode": {"type": "string", "enum": ["Manual", "Automatic"]},
                        "count": {"type": "integer", "minimum": 1},
                        "days": {"type": "array", "maxItems": 2, "x-kubernetes-list-type": "set", "items": {"type": "string"}},
                        "name": {"type": "string", "pattern": "^[a-z]+$"},
                        "amount": {"x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}], "pattern": "^[0-9]+%$"}
                    }
                }
            }
        });
        assert_eq!(
            errors(schema.clone(), json!({"spec": {}})),
            ["spec.version: Required value"]
        );
        let found = errors(
            schema,
            json!({"spec": {"version": "abcd", "mode": "Auto", "count": 0, "days": ["a", "a", "b"],
                             "name": "A", "amount": "5", "extra": 1}}),
        );
        assert_eq!(
            found,
            [
                "unknown field \"spec.extra\"",
                "spec.amount: Invalid value: \"5\": spec.amount in body should match '^[0-9]+%$'",
                "spec.count: Invalid value: 0: spec.count in body should be greater than or equal to 1",
                "spec.days: Too many: 3: must have at most 2 items",
                "spec.days[1]: Duplicate value: \"a\"",
                "spec.mode: Unsupported value: \"Auto\": supported values: \"Manual\", \"Automatic\"",
                "spec.name: Invalid value: \"A\": spec.name in body should match '^[a-z]+$'",
                "spec.version: Too long: may not be more than 3 bytes",
            ]
        );
    }

    #[test]
    fn int_or_string_accepts_both_and_checks_each_by_its_own_rules() {
        let schema = json!({"type": "object", "properties": {"n": {
            "x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}],
            "pattern": "^[0-9]+%$", "minimum": 0}}});
        assert!(errors(schema.clone(), json!({"n": 3})).is_empty());
        assert!(errors(schema.clone(), json!({"n": "30%"})).is_empty());
        assert_eq!(errors(schema.clone(), json!({"n": -1})).len(), 1);
        assert_eq!(errors(schema, json!({"n": true})).len(), 1);
    }

    #[test]
    fn defaults_are_applied_and_cel_rules_run() {
        let schema = json!({"type": "object", "properties": {"spec": {
            "type": "object",
            "x-kubernetes-validations": [{"rule": "self.a <= self.b", "message": "a must not exceed b"}],
            "properties": {"a": {"type": "integer", "default": 5}, "b": {"type": "integer"}}}}});
        let crd_schema = CrdSchema {
            compiled: compile_schema(&schema),
            schema,
            root: RootContext::default(),
        };
        let admitted = crd_schema.admit(&json!({"spec": {"b": 7}}), None);
        assert!(admitted.errors.is_empty(), "{:?}", admitted.errors);
        assert_eq!(admitted.object, json!({"spec": {"a": 5, "b": 7}}));
        let refused = crd_schema.admit(&json!({"spec": {"b": 1}}), None);
        assert_eq!(
            FieldErrors(refused.errors).to_string(),
            "spec: Invalid value: \"object\": a must not exceed b"
        );
    }

    #[test]
    fn lookup_follows_fields_and_indices() {
        let value = json!({"spec": {"stages": [{"p": 1}, {"p": 2}]}});
        assert_eq!(lookup(&value, "spec.stages[1].p"), Some(&json!(2)));
        assert_eq!(lookup(&value, ""), Some(&value));
        assert_eq!(lookup(&value, "spec.nope"), None);
    }
}
