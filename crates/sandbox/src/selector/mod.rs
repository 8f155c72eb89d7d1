//! Label and field selectors as the API server parses them from query strings, with its
//! refusals word for word, and as objects hold them (`written`).

use patchpilot_engine::selector::{Labels, Selector};

use super::status::ApiError;
use crate::json::Json;

mod fields;
mod labels;
mod names;

pub use fields::FieldTerm;
pub use labels::LabelSelector;
pub use names::go_quote;

/// Parses a label selector query: `a=b,c!=d,e in (x,y),f notin (z),g,!h,n>1`.
pub fn labels(text: &str) -> Result<LabelSelector, ApiError> {
    labels::parse(text).map_err(ApiError::bad_request)
}

/// Parses a field selector query: `spec.nodeName=n1,status.phase!=Running`; the fields are
/// checked against the kind's with [`check_fields`].
pub fn fields(text: &str) -> Result<Vec<FieldTerm>, ApiError> {
    fields::parse(text).map_err(ApiError::bad_request)
}

/// Checks that the kind selects by each field (`supported`, beside `metadata.name` and
/// `metadata.namespace`); the first it does not is refused as `field label not supported`.
pub fn check_fields(terms: &[FieldTerm], supported: &[String]) -> Result<(), ApiError> {
    let known = |field: &str| {
        matches!(field, "metadata.name" | "metadata.namespace")
            || supported.iter().any(|s| s == field)
    };
    match terms.iter().find(|t| !known(&t.field)) {
        Some(term) => Err(ApiError::bad_request(format!(
            "field label not supported: {}",
            term.field
        ))),
        None => Ok(()),
    }
}

/// The value of a field for selection: strings as they are, other scalars printed, absent
/// fields empty.
pub fn field_value(object: &Json, field: &str) -> String {
    let value = field.split('.').try_fold(object, |v, part| v.get(part));
    match value {
        Some(v) if v.is_null() => String::new(),
        Some(v) => v.as_str().map_or_else(|| v.to_string(), str::to_owned),
        None => String::new(),
    }
}

/// Whether an object satisfies every field term.
pub fn fields_match(object: &Json, terms: &[FieldTerm]) -> bool {
    terms
        .iter()
        .all(|t| (field_value(object, &t.field) == t.value) != t.negated)
}

/// A label selector written as JSON in an object (`matchLabels`, `matchExpressions`), as a
/// PodDisruptionBudget or a Service holds it; `None` if it is malformed.
pub fn written(selector: &Json) -> Option<Selector> {
    let written: k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector =
        selector.read().ok()?;
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
pub fn labels_of(object: &Json) -> Labels {
    object["metadata"]["labels"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.to_owned(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn field_selectors_check_their_fields() {
        let supported = vec!["spec.nodeName".to_owned(), "status.phase".to_owned()];
        let terms = fields("spec.nodeName=n1,status.phase!=Succeeded").unwrap();
        assert!(check_fields(&terms, &supported).is_ok());
        let pod = Json::from(
            json!({"metadata": {"name": "p"}, "spec": {"nodeName": "n1"}, "status": {"phase": "Running"}}),
        );
        assert!(fields_match(&pod, &terms));
        let done =
            Json::from(json!({"spec": {"nodeName": "n1"}, "status": {"phase": "Succeeded"}}));
        assert!(!fields_match(&done, &terms));
        let terms = fields("zz=1,spec.hostname=x,aa=2").unwrap();
        let err = check_fields(&terms, &supported).unwrap_err();
        assert_eq!(err.message, "field label not supported: aa");
        let terms = fields("metadata.name=a").unwrap();
        assert!(check_fields(&terms, &[]).is_ok());
        assert!(fields_match(
            &Json::from(json!({"metadata": {"name": "a"}})),
            &terms
        ));
        assert_eq!(
            field_value(
                &Json::from(json!({"spec": {"unschedulable": true}})),
                "spec.unschedulable"
            ),
            "true"
        );
    }
}
