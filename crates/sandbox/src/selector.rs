//! Label and field selectors as the API server parses them from query strings.

use serde_json::Value;

use patchpilot_engine::selector::{Labels, Selector};

use super::status::ApiError;

/// Parses a label selector query: `a=b,c!=d,e in (x,y),f notin (z),g,!h`.
pub fn labels(text: &str) -> Result<Selector, ApiError> {
    let mut selector = Selector::everything();
    for requirement in split_requirements(text) {
        let requirement = requirement.trim();
        if requirement.is_empty() {
            continue;
        }
        let bad = |why: &str| {
            ApiError::bad_request(format!(
                "unable to parse requirement: {why}: {requirement:?}"
            ))
        };
        let add = |selector: Selector, key: &str, op: &str, values: Vec<String>| {
            selector
                .with_expression(key.trim(), op, &values)
                .map_err(|e| bad(&e.to_string()))
        };
        selector = if let Some(key) = requirement.strip_prefix('!') {
            add(selector, key, "DoesNotExist", Vec::new())?
        } else if let Some((key, rest)) = split_word(requirement, " notin ") {
            add(
                selector,
                key,
                "NotIn",
                set_values(rest).ok_or_else(|| bad("expected a (…) set"))?,
            )?
        } else if let Some((key, rest)) = split_word(requirement, " in ") {
            add(
                selector,
                key,
                "In",
                set_values(rest).ok_or_else(|| bad("expected a (…) set"))?,
            )?
        } else if let Some((key, value)) = requirement.split_once("!=") {
            add(selector, key, "NotIn", vec![value.trim().to_owned()])?
        } else if let Some((key, value)) = requirement
            .split_once("==")
            .or_else(|| requirement.split_once('='))
        {
            add(selector, key, "In", vec![value.trim().to_owned()])?
        } else {
            add(selector, requirement, "Exists", Vec::new())?
        };
    }
    Ok(selector)
}

/// Splits at commas outside parentheses.
fn split_requirements(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

fn split_word<'a>(text: &'a str, word: &str) -> Option<(&'a str, &'a str)> {
    let index = text.find(word)?;
    Some((&text[..index], &text[index + word.len()..]))
}

fn set_values(text: &str) -> Option<Vec<String>> {
    let inner = text.trim().strip_prefix('(')?.strip_suffix(')')?;
    Some(
        inner
            .split(',')
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
            .collect(),
    )
}

/// One `field=value` or `field!=value` term of a field selector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldTerm {
    /// The field path, like `spec.nodeName`.
    pub field: String,
    /// The value compared with.
    pub value: String,
    /// `!=` rather than `=`.
    pub negated: bool,
}

/// Parses a field selector query, checking each field is one the resource supports.
pub fn fields(text: &str, supported: &[String]) -> Result<Vec<FieldTerm>, ApiError> {
    let mut terms = Vec::new();
    for term in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        let (field, value, negated) = if let Some((f, v)) = term.split_once("!=") {
            (f, v, true)
        } else if let Some((f, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
            (f, v, false)
        } else {
            return Err(ApiError::bad_request(format!(
                "invalid selector: '{text}'; can't understand '{term}'"
            )));
        };
        let field = field.trim();
        let known = matches!(field, "metadata.name" | "metadata.namespace")
            || supported.iter().any(|s| s == field);
        if !known {
            return Err(ApiError::bad_request(format!(
                "field label not supported: {field}"
            )));
        }
        terms.push(FieldTerm {
            field: field.to_owned(),
            value: value.trim().to_owned(),
            negated,
        });
    }
    Ok(terms)
}

/// The value of a field for selection: strings as they are, other scalars printed, absent
/// fields empty.
pub fn field_value(object: &Value, field: &str) -> String {
    let value = field.split('.').try_fold(object, |v, part| v.get(part));
    match value {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// Whether an object satisfies every field term.
pub fn fields_match(object: &Value, terms: &[FieldTerm]) -> bool {
    terms
        .iter()
        .all(|t| (field_value(object, &t.field) == t.value) != t.negated)
}

/// A label selector written as JSON in an object (`matchLabels`, `matchExpressions`), as a
/// PodDisruptionBudget or a Service holds it; `None` if it is malformed.
pub fn written(selector: &Value) -> Option<Selector> {
    let written: k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector =
        serde_json::from_value(selector.clone()).ok()?;
    let mut parsed = Selector::from_labels(&written.match_labels.unwrap_or_default());
    for expression in written.match_expressions.into_iter().flatten() {
        let values = expression.values.unwrap_or_default();
        parsed = parsed
            .with_expression(&expression.key, &expression.operator, &values)
            .ok()?;
    }
    Some(parsed)
}

/// An object's labels.
pub fn labels_of(object: &Value) -> Labels {
    object["metadata"]["labels"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels_of(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn label_selector_syntax() {
        let s = labels("app=web,tier!=db,zone in (a, b),env notin (dev),team,!legacy").unwrap();
        let ok = labels_of(&[
            ("app", "web"),
            ("tier", "front"),
            ("zone", "b"),
            ("env", "prod"),
            ("team", "x"),
        ]);
        assert!(s.matches(&ok));
        let mut legacy = ok.clone();
        legacy.insert("legacy".into(), "1".into());
        assert!(!s.matches(&legacy));
        assert!(labels("").unwrap().matches(&labels_of(&[])));
        assert!(
            labels("app==web")
                .unwrap()
                .matches(&labels_of(&[("app", "web")]))
        );
        assert!(labels("zone in a").is_err());
    }

    #[test]
    fn field_selectors_check_their_fields() {
        let supported = vec!["spec.nodeName".to_owned(), "status.phase".to_owned()];
        let terms = fields("spec.nodeName=n1,status.phase!=Succeeded", &supported).unwrap();
        let pod = json!({"metadata": {"name": "p"}, "spec": {"nodeName": "n1"}, "status": {"phase": "Running"}});
        assert!(fields_match(&pod, &terms));
        let done = json!({"spec": {"nodeName": "n1"}, "status": {"phase": "Succeeded"}});
        assert!(!fields_match(&done, &terms));
        let err = fields("spec.hostname=x", &supported).unwrap_err();
        assert_eq!(err.message, "field label not supported: spec.hostname");
        assert!(fields_match(
            &json!({"metadata": {"name": "a"}}),
            &fields("metadata.name=a", &[]).unwrap()
        ));
        assert_eq!(
            field_value(
                &json!({"spec": {"unschedulable": true}}),
                "spec.unschedulable"
            ),
            "true"
        );
    }
}
