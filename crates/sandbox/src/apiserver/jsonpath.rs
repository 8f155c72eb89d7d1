//! The JSONPath of CRD printer columns (`additionalPrinterColumns[].jsonPath`), in the
//! forms the API server evaluates there: fields (`.status.phase`, with `\.` for a dot
//! inside a key), indexes (`.spec.containers[0].image`, negative from the end), quoted
//! keys (`['app.kubernetes.io/name']`), wildcards (`[*]`, `.*`) and filters
//! (`.status.conditions[?(@.type=="Ready")].status`, with `==`, `!=` or a bare existence
//! test).

use serde_json::Value;

/// A parsed path.
#[derive(Clone, Debug, PartialEq)]
pub struct JsonPath(Vec<Segment>);

/// One step of a path.
#[derive(Clone, Debug, PartialEq)]
enum Segment {
    /// An object's field.
    Field(String),
    /// An array's item; negative counts from the end.
    Index(i64),
    /// Every item or field value.
    Wildcard,
    /// The items for which the path compares to the value as `op` says.
    Filter {
        path: Vec<Segment>,
        op: Option<Comparison>,
        value: Value,
    },
}

/// How a filter compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Comparison {
    Equal,
    NotEqual,
}

impl JsonPath {
    /// Parses a path like `.status.conditions[0].type`, with or without the `{…}` and `$`
    /// of template syntax. `None` when it is not of the supported forms.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        let text = text
            .strip_prefix('{')
            .and_then(|t| t.strip_suffix('}'))
            .unwrap_or(text)
            .trim();
        let text = text.strip_prefix('$').unwrap_or(text);
        let chars: Vec<char> = text.chars().collect();
        segments(&chars).map(JsonPath)
    }

    /// The first value the path finds in `value`.
    pub fn first<'a>(&self, value: &'a Value) -> Option<&'a Value> {
        let mut found = Vec::new();
        walk(&self.0, value, &mut found);
        found.into_iter().next()
    }
}

/// Parses the segments of a path (without its leading `$` or `@`).
fn segments(chars: &[char]) -> Option<Vec<Segment>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '.' => {
                i += 1;
                if chars.get(i) == Some(&'*') {
                    out.push(Segment::Wildcard);
                    i += 1;
                    continue;
                }
                let mut name = String::new();
                while let Some(&c) = chars.get(i) {
                    match c {
                        '.' | '[' => break,
                        '\\' => {
                            name.push(*chars.get(i + 1)?);
                            i += 2;
                        }
                        _ => {
                            name.push(c);
                            i += 1;
                        }
                    }
                }
                if name.is_empty() {
                    return None;
                }
                out.push(Segment::Field(name));
            }
            '[' => {
                let close = closing_bracket(chars, i)?;
                let inner: String = chars[i + 1..close].iter().collect();
                out.push(bracket(inner.trim())?);
                i = close + 1;
            }
            _ => return None,
        }
    }
    Some(out)
}

/// The `]` closing the `[` at `open`, outside quotes and parentheses.
fn closing_bracket(chars: &[char], open: usize) -> Option<usize> {
    let mut quote: Option<char> = None;
    let mut depth = 0usize;
    for (i, &c) in chars.iter().enumerate().skip(open + 1) {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '(') => depth += 1,
            (None, ')') => depth = depth.checked_sub(1)?,
            (None, ']') if depth == 0 => return Some(i),
            _ => {}
        }
    }
    None
}

/// What is inside `[…]`.
fn bracket(inner: &str) -> Option<Segment> {
    if inner == "*" {
        return Some(Segment::Wildcard);
    }
    if let Some(key) = unquote(inner) {
        return Some(Segment::Field(key));
    }
    if let Some(filter) = inner.strip_prefix("?(").and_then(|f| f.strip_suffix(')')) {
        return parse_filter(filter.trim());
    }
    inner.parse().ok().map(Segment::Index)
}

/// The text of a quoted string, `'…'` or `"…"`.
fn unquote(text: &str) -> Option<String> {
    let quote = text.chars().next().filter(|c| *c == '\'' || *c == '"')?;
    let inner = text.strip_prefix(quote)?.strip_suffix(quote)?;
    Some(inner.to_owned())
}

/// `@.path`, `@.path == value` or `@.path != value`.
fn parse_filter(filter: &str) -> Option<Segment> {
    let (left, op, right) = match (filter.find("=="), filter.find("!=")) {
        (Some(at), _) => (&filter[..at], Some(Comparison::Equal), &filter[at + 2..]),
        (None, Some(at)) => (&filter[..at], Some(Comparison::NotEqual), &filter[at + 2..]),
        (None, None) => (filter, None, ""),
    };
    let path: Vec<char> = left.trim().strip_prefix('@')?.chars().collect();
    let path = segments(&path)?;
    let value = match op {
        None => Value::Null,
        Some(_) => literal(right.trim())?,
    };
    Some(Segment::Filter { path, op, value })
}

/// A literal of a filter: a quoted string, a number, `true`, `false` or `null`.
fn literal(text: &str) -> Option<Value> {
    if let Some(text) = unquote(text) {
        return Some(Value::String(text));
    }
    serde_json::from_str(text)
        .ok()
        .filter(|v: &Value| !v.is_object() && !v.is_array())
}

fn walk<'a>(segments: &[Segment], value: &'a Value, found: &mut Vec<&'a Value>) {
    let Some((first, rest)) = segments.split_first() else {
        found.push(value);
        return;
    };
    match first {
        Segment::Field(name) => {
            if let Some(next) = value.as_object().and_then(|o| o.get(name)) {
                walk(rest, next, found);
            }
        }
        Segment::Index(index) => {
            let Some(items) = value.as_array() else {
                return;
            };
            let len = i64::try_from(items.len()).unwrap_or(i64::MAX);
            let at = if *index < 0 { len + index } else { *index };
            if let Some(next) = usize::try_from(at).ok().and_then(|at| items.get(at)) {
                walk(rest, next, found);
            }
        }
        Segment::Wildcard => match value {
            Value::Array(items) => items.iter().for_each(|item| walk(rest, item, found)),
            Value::Object(map) => map.values().for_each(|item| walk(rest, item, found)),
            _ => {}
        },
        Segment::Filter {
            path,
            op,
            value: wanted,
        } => {
            let items: Vec<&Value> = match value {
                Value::Array(items) => items.iter().collect(),
                Value::Object(map) => map.values().collect(),
                _ => Vec::new(),
            };
            for item in items {
                let mut results = Vec::new();
                walk(path, item, &mut results);
                let keep = match op {
                    None => !results.is_empty(),
                    Some(Comparison::Equal) => results.first().is_some_and(|v| equal(v, wanted)),
                    Some(Comparison::NotEqual) => {
                        results.first().is_some_and(|v| !equal(v, wanted))
                    }
                };
                if keep {
                    walk(rest, item, found);
                }
            }
        }
    }
}

/// Equality of a found value and a literal, numbers compared by value.
fn equal(found: &Value, wanted: &Value) -> bool {
    match (found.as_f64(), wanted.as_f64()) {
        (Some(a), Some(b)) => a == b,
        _ => found == wanted,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn first(path: &str, value: &Value) -> Option<Value> {
        JsonPath::parse(path).unwrap().first(value).cloned()
    }

    #[test]
    fn fields_indexes_and_quoted_keys() {
        let object = json!({
            "metadata": {
                "creationTimestamp": "2026-01-01T00:00:00Z",
                "labels": {"app.kubernetes.io/name": "web"},
            },
            "spec": {"containers": [{"image": "a"}, {"image": "b"}]},
        });
        assert_eq!(
            first(".metadata.creationTimestamp", &object),
            Some(json!("2026-01-01T00:00:00Z"))
        );
        assert_eq!(
            first(".spec.containers[0].image", &object),
            Some(json!("a"))
        );
        assert_eq!(
            first(".spec.containers[-1].image", &object),
            Some(json!("b"))
        );
        assert_eq!(
            first(".spec.containers[*].image", &object),
            Some(json!("a"))
        );
        assert_eq!(
            first(".metadata.labels['app.kubernetes.io/name']", &object),
            Some(json!("web"))
        );
        assert_eq!(
            first(r".metadata.labels.app\.kubernetes\.io/name", &object),
            Some(json!("web"))
        );
        assert_eq!(
            first("{.spec.containers[1].image}", &object),
            Some(json!("b"))
        );
        assert_eq!(first(".spec.containers[2].image", &object), None);
        assert_eq!(first(".status.phase", &object), None);
    }

    #[test]
    fn filters() {
        let object = json!({"status": {"conditions": [
            {"type": "Ready", "status": "False"},
            {"type": "Stalled", "status": "True", "observedGeneration": 3},
        ]}});
        assert_eq!(
            first(
                r#".status.conditions[?(@.type=="Stalled")].status"#,
                &object
            ),
            Some(json!("True"))
        );
        assert_eq!(
            first(".status.conditions[?(@.type != 'Ready')].type", &object),
            Some(json!("Stalled"))
        );
        assert_eq!(
            first(".status.conditions[?(@.observedGeneration)].type", &object),
            Some(json!("Stalled"))
        );
        assert_eq!(
            first(
                ".status.conditions[?(@.observedGeneration == 3)].type",
                &object
            ),
            Some(json!("Stalled"))
        );
        assert_eq!(
            first(r#".status.conditions[?(@.type=="Gone")].status"#, &object),
            None
        );
    }

    #[test]
    fn unsupported_forms_are_refused() {
        for path in [
            "status",
            ".a..b",
            ".a[",
            ".a[x]",
            ".a[1:2]",
            ".a[?(@.b == {)]",
            r".a\",
        ] {
            assert_eq!(JsonPath::parse(path), None, "{path}");
        }
    }
}
