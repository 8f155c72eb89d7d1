//! Field selectors as the API server reads them from a query (k8s.io/apimachinery's
//! `fields.ParseSelector`): terms split at commas not escaped, sorted, each split at its first
//! `!=`, `==` or `=`, the value unescaped (`\,`, `\=`, `\\`). Nothing is trimmed: a space is
//! part of the field or the value.

/// One `field=value` or `field!=value` term of a field selector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldTerm {
    /// The field path, like `spec.nodeName`.
    pub field: String,
    /// The value compared with, unescaped.
    pub value: String,
    /// `!=` rather than `=`.
    pub negated: bool,
}

/// Parses a field selector query, or says why not in the API server's words; the terms come
/// sorted as the API server sorts them, so the first unknown field is the one it names.
pub fn parse(text: &str) -> Result<Vec<FieldTerm>, String> {
    let mut parts = split_terms(text);
    parts.sort_unstable();
    let mut terms = Vec::new();
    for part in parts.into_iter().filter(|p| !p.is_empty()) {
        let Some((field, negated, value)) = split_term(part) else {
            return Err(format!(
                "invalid selector: '{text}'; can't understand '{part}'"
            ));
        };
        terms.push(FieldTerm {
            field: field.to_owned(),
            value: unescape(value)?,
            negated,
        });
    }
    Ok(terms)
}

/// The terms between commas that no backslash escapes, backslashes kept.
fn split_terms(text: &str) -> Vec<&str> {
    let mut terms = Vec::new();
    let (mut start, mut escaped) = (0, false);
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            ',' => {
                terms.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    terms.push(&text[start..]);
    terms
}

/// The field, whether the operator is `!=`, and the value as written, split at the first
/// operator (`!=`, then `==`, then `=` tried at each place).
fn split_term(term: &str) -> Option<(&str, bool, &str)> {
    term.char_indices().find_map(|(i, _)| {
        let rest = &term[i..];
        if let Some(value) = rest.strip_prefix("!=") {
            Some((&term[..i], true, value))
        } else if let Some(value) = rest.strip_prefix("==").or_else(|| rest.strip_prefix('=')) {
            Some((&term[..i], false, value))
        } else {
            None
        }
    })
}

/// A value without its escapes; an unknown escape or a bare `,` or `=` is refused.
fn unescape(value: &str) -> Result<String, String> {
    let mut unescaped = String::with_capacity(value.len());
    let mut escaped = false;
    for c in value.chars() {
        if escaped {
            if !matches!(c, '\\' | ',' | '=') {
                return Err(format!(
                    "invalid field selector: invalid escape sequence: \\{c}"
                ));
            }
            unescaped.push(c);
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            // Go prints the rune as its number.
            ',' | '=' => {
                return Err(format!(
                    "invalid field selector: unescaped character in value: {}",
                    u32::from(c)
                ));
            }
            c => unescaped.push(c),
        }
    }
    if escaped {
        return Err("invalid field selector: invalid escape sequence: \\".to_owned());
    }
    Ok(unescaped)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn term(field: &str, value: &str, negated: bool) -> FieldTerm {
        FieldTerm {
            field: field.to_owned(),
            value: value.to_owned(),
            negated,
        }
    }

    #[test]
    fn terms_are_split_sorted_and_unescaped() {
        assert_eq!(parse("").unwrap(), []);
        assert_eq!(parse(",,").unwrap(), []);
        assert_eq!(
            parse("spec.nodeName=n1,status.phase!=Succeeded,metadata.name==a").unwrap(),
            [
                term("metadata.name", "a", false),
                term("spec.nodeName", "n1", false),
                term("status.phase", "Succeeded", true),
            ]
        );
        assert_eq!(
            parse(r"metadata.name=a\,b\=c\\d").unwrap(),
            [term("metadata.name", r"a,b=c\d", false)]
        );
        // Nothing is trimmed; the field may be empty.
        assert_eq!(
            parse(" metadata.name = a").unwrap(),
            [term(" metadata.name ", " a", false)]
        );
        assert_eq!(parse("=a").unwrap(), [term("", "a", false)]);
        assert_eq!(parse(r"a\,b=c").unwrap(), [term(r"a\,b", "c", false)]);
        assert_eq!(
            parse("a=!=b").unwrap_err(),
            "invalid field selector: unescaped character in value: 61"
        );
    }

    #[test]
    fn refusals_in_the_api_server_s_words() {
        let cases = [
            (
                "metadata.name",
                "invalid selector: 'metadata.name'; can't understand 'metadata.name'",
            ),
            (
                "metadata.name=a,b",
                "invalid selector: 'metadata.name=a,b'; can't understand 'b'",
            ),
            // Sorted: `metadata.name` comes before `zzz`.
            (
                "zzz,metadata.name",
                "invalid selector: 'zzz,metadata.name'; can't understand 'metadata.name'",
            ),
            (
                "metadata.name==a==b",
                "invalid field selector: unescaped character in value: 61",
            ),
            (
                r"metadata.name=a\b",
                r"invalid field selector: invalid escape sequence: \b",
            ),
            (
                r"metadata.name=é\é",
                r"invalid field selector: invalid escape sequence: \é",
            ),
            (
                r"metadata.name=a\",
                r"invalid field selector: invalid escape sequence: \",
            ),
        ];
        for (text, message) in cases {
            assert_eq!(parse(text).unwrap_err(), message, "{text}");
        }
    }
}
