//! Label selectors: a `LabelSelector` as a spec gives it converts to the engine's selector or
//! names the bad expression, and one that converts matches labels exactly as Kubernetes
//! says (an independent reading of `matchLabels` and `matchExpressions` here). The same
//! selector written as a `labelSelector` query (`a=b,c notin (x),!d`) parses in the sandbox's
//! API server to a selector that matches the same labels; any query text parses or fails
//! without panicking.

#![no_main]

use std::collections::BTreeMap;

use arbitrary::Arbitrary;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
use libfuzzer_sys::fuzz_target;
use patchpilot_api::convert;
use patchpilot_engine::selector::Labels;
use patchpilot_sandbox::selector as query;

const OPERATORS: [&str; 4] = ["In", "NotIn", "Exists", "DoesNotExist"];

#[derive(Arbitrary, Debug)]
struct Expression {
    key: String,
    /// One of [`OPERATORS`] by index, or any text.
    operator: Result<u8, String>,
    values: Option<Vec<String>>,
}

#[derive(Arbitrary, Debug)]
struct Input {
    match_labels: Option<BTreeMap<String, String>>,
    expressions: Option<Vec<Expression>>,
    labels: BTreeMap<String, String>,
    raw_query: String,
}

/// Kubernetes' meaning of a selector, read straight from the spec.
fn reference(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let by_labels = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let by_expressions = selector.match_expressions.iter().flatten().all(|e| {
        let value = labels.get(&e.key);
        let values = e.values.clone().unwrap_or_default();
        match e.operator.as_str() {
            "In" => value.is_some_and(|v| values.contains(v)),
            "NotIn" => value.is_none_or(|v| !values.contains(v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            other => panic!("converted with operator {other:?}"),
        }
    });
    by_labels && by_expressions
}

/// 1 to 63 bytes, each one `allowed`, starting and ending with a letter or digit: the shape of
/// a label key's name part, a non-empty label value and a DNS label alike.
fn word(text: &str, allowed: impl Fn(u8) -> bool) -> bool {
    let bytes = text.as_bytes();
    (1..=63).contains(&bytes.len())
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes.iter().all(|&b| allowed(b))
}

/// A label key's name part, or a non-empty label value, as the API server takes them: letters,
/// digits, `-`, `_` and `.`.
fn name(text: &str) -> bool {
    word(text, |b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// A label key's prefix: a lowercase DNS subdomain.
fn subdomain(text: &str) -> bool {
    text.len() <= 253
        && text.split('.').all(|label| {
            word(label, |b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'
            })
        })
}

/// Whether a key can be written in a query as it is, and the API server takes it.
fn plain_key(key: &str) -> bool {
    match key.split_once('/') {
        Some((prefix, rest)) => subdomain(prefix) && name(rest),
        None => name(key),
    }
}

/// Whether a value can be written in a query as it is, and the API server takes it.
fn plain_value(value: &str) -> bool {
    value.is_empty() || name(value)
}

/// The selector as a `labelSelector` query, if its keys and values can be written in one and
/// the API server would take them (it refuses a key such as `-a` or `a/b/c`, which the
/// operator's conversion does not look at). Sets with the empty value are left out too: the
/// API server's parser reads empty places in a set its own way (`a in ()` is the set of the
/// empty value, and `a in (x,,)` is refused), which the conformance tests check.
fn as_query(selector: &LabelSelector) -> Option<String> {
    let mut parts = Vec::new();
    for (key, value) in selector.match_labels.iter().flatten() {
        if !plain_key(key) || !plain_value(value) {
            return None;
        }
        parts.push(format!("{key}={value}"));
    }
    for e in selector.match_expressions.iter().flatten() {
        let values = e.values.clone().unwrap_or_default();
        let sets = matches!(e.operator.as_str(), "In" | "NotIn");
        if !plain_key(&e.key)
            || !values.iter().all(|v| plain_value(v))
            || (sets && (values.is_empty() || values.iter().any(String::is_empty)))
        {
            return None;
        }
        parts.push(match e.operator.as_str() {
            "In" => format!("{} in ({})", e.key, values.join(",")),
            "NotIn" => format!("{} notin ({})", e.key, values.join(",")),
            "Exists" => e.key.clone(),
            "DoesNotExist" => format!("!{}", e.key),
            _ => return None,
        });
    }
    Some(parts.join(","))
}

fuzz_target!(|input: Input| {
    let _ = query::labels(&input.raw_query);

    let selector = LabelSelector {
        match_labels: input.match_labels,
        match_expressions: input.expressions.map(|expressions| {
            expressions
                .into_iter()
                .map(|e| LabelSelectorRequirement {
                    key: e.key,
                    operator: match e.operator {
                        Ok(i) => OPERATORS[usize::from(i) % OPERATORS.len()].to_owned(),
                        Err(text) => text,
                    },
                    values: e.values,
                })
                .collect()
        }),
    };
    let Ok(converted) = convert::selector(Some(&selector), "spec.selector") else {
        return;
    };
    let expected = reference(&selector, &input.labels);
    let labels = Labels::from(input.labels);
    assert_eq!(converted.matches(&labels), expected, "{selector:?}");
    if let Some(text) = as_query(&selector) {
        let parsed = query::labels(&text)
            .unwrap_or_else(|e| panic!("{text:?} from {selector:?} does not parse: {e:?}"));
        assert_eq!(parsed.matches(&labels), expected, "{text:?}");
    }
});
