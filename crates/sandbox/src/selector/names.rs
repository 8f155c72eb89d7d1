//! The API server's checks of label keys and label values (k8s.io/apimachinery's
//! `api/validate/content`: `IsLabelKey`, `IsLabelValue`), in its words, and Go's `%q`, with
//! which its refusals show the value refused.

use std::sync::LazyLock;

use regex::Regex;

const NAME_FORMAT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const NAME_MESSAGE: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const NAME_EXAMPLES: &[&str] = &["MyName", "my.name", "123-abc"];
const NAME_MAX: usize = 63;

const VALUE_FORMAT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
const VALUE_MESSAGE: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const VALUE_EXAMPLES: &[&str] = &["MyValue", "my_value", "12345"];
const VALUE_MAX: usize = 63;

const SUBDOMAIN_FORMAT: &str = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const SUBDOMAIN_MESSAGE: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
const SUBDOMAIN_MAX: usize = 253;

/// Why `key` is not a label key: an optional DNS subdomain and `/`, then a name of at most
/// 63 bytes. Empty if it is one.
pub fn key_errors(key: &str) -> Vec<String> {
    let mut errors = Vec::new();
    let parts: Vec<&str> = key.split('/').collect();
    let name = match parts[..] {
        [name] => name,
        [prefix, name] => {
            if prefix.is_empty() {
                errors.push("prefix part must be non-empty".to_owned());
            } else {
                errors.extend(
                    subdomain_errors(prefix)
                        .into_iter()
                        .map(|e| format!("prefix part {e}")),
                );
            }
            name
        }
        _ => {
            return vec![format!(
                "a valid label key {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                regex_error(NAME_MESSAGE, NAME_FORMAT, NAME_EXAMPLES)
            )];
        }
    };
    if name.is_empty() {
        errors.push("name part must be non-empty".to_owned());
    } else if name.len() > NAME_MAX {
        errors.push(format!("name part {}", too_long(NAME_MAX)));
    }
    if !is_name(name) {
        errors.push(format!(
            "name part {}",
            regex_error(NAME_MESSAGE, NAME_FORMAT, NAME_EXAMPLES)
        ));
    }
    errors
}

/// Why `value` is not a label value: empty, or a name of at most 63 bytes. Empty if it is one.
pub fn value_errors(value: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if value.len() > VALUE_MAX {
        errors.push(too_long(VALUE_MAX));
    }
    if !value.is_empty() && !is_name(value) {
        errors.push(regex_error(VALUE_MESSAGE, VALUE_FORMAT, VALUE_EXAMPLES));
    }
    errors
}

fn subdomain_errors(text: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if text.len() > SUBDOMAIN_MAX {
        errors.push(too_long(SUBDOMAIN_MAX));
    }
    let label = |part: &str| {
        let lower = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
        let bytes = part.as_bytes();
        bytes.first().is_some_and(|&c| lower(c))
            && bytes.last().is_some_and(|&c| lower(c))
            && bytes.iter().all(|&c| lower(c) || c == b'-')
    };
    if !text.split('.').all(label) {
        errors.push(regex_error(
            SUBDOMAIN_MESSAGE,
            SUBDOMAIN_FORMAT,
            &["example.com"],
        ));
    }
    errors
}

/// `NAME_FORMAT`: alphanumerics, `-`, `_` and `.`, starting and ending with an alphanumeric.
fn is_name(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
        && bytes
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

fn too_long(max: usize) -> String {
    format!("must be no more than {max} bytes")
}

/// `RegexError`: the rule, its examples (each followed by `, `, joined with ` or `) and the
/// regular expression.
fn regex_error(message: &str, format: &str, examples: &[&str]) -> String {
    let examples: Vec<String> = examples.iter().map(|e| format!("'{e}', ")).collect();
    format!(
        "{message} (e.g. {}regex used for validation is '{format}')",
        examples.join(" or ")
    )
}

/// Go's `%q` of a string: quoted, with `"` and `\` escaped and what Go does not print
/// (controls, spaces other than ` `, format characters, unassigned code points) escaped as
/// `\n`, `\x01`, `\u00a0` or `\U000e0001`.
pub fn go_quote(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for c in text.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            c if printable(c) => quoted.push(c),
            '\u{7}' => quoted.push_str("\\a"),
            '\u{8}' => quoted.push_str("\\b"),
            '\u{c}' => quoted.push_str("\\f"),
            '\n' => quoted.push_str("\\n"),
            '\r' => quoted.push_str("\\r"),
            '\t' => quoted.push_str("\\t"),
            '\u{b}' => quoted.push_str("\\v"),
            c if c < ' ' || c == '\u{7f}' => quoted.push_str(&format!("\\x{:02x}", u32::from(c))),
            c if u32::from(c) < 0x10000 => quoted.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => quoted.push_str(&format!("\\U{:08x}", u32::from(c))),
        }
    }
    quoted.push('"');
    quoted
}

/// Go's `unicode.IsPrint`: letters, marks, numbers, punctuation, symbols and the ASCII space.
fn printable(c: char) -> bool {
    static GRAPHIC: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"^[\p{L}\p{M}\p{N}\p{P}\p{S}]$").expect("a valid regular expression")
    });
    match c {
        ' '..='~' => true,
        '\0'..='\u{9f}' => false,
        c => GRAPHIC.is_match(c.encode_utf8(&mut [0; 4])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        assert!(key_errors("app").is_empty());
        assert!(key_errors("example.com/My_app-1.x").is_empty());
        assert!(key_errors(&"a".repeat(63)).is_empty());
        assert_eq!(
            key_errors(&"a".repeat(64)),
            ["name part must be no more than 63 bytes"]
        );
        assert_eq!(key_errors("/a"), ["prefix part must be non-empty"]);
        let errors = key_errors("a/");
        assert_eq!(errors.len(), 2);
        assert_eq!(errors[0], "name part must be non-empty");
        assert!(errors[1].starts_with("name part must consist of alphanumeric characters"));
        assert!(key_errors("A/b")[0].starts_with("prefix part a lowercase RFC 1123 subdomain"));
        assert!(key_errors("a..b/c")[0].starts_with("prefix part a lowercase"));
        assert_eq!(
            key_errors(&format!("{}/a", "a".repeat(254)))[0],
            "prefix part must be no more than 253 bytes"
        );
        assert_eq!(
            key_errors("-a"),
            [
                "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
            ]
        );
        assert!(key_errors("a/b/c")[0].starts_with("a valid label key must consist"));
        assert!(!key_errors("é").is_empty());
    }

    #[test]
    fn values() {
        assert!(value_errors("").is_empty());
        assert!(value_errors("My_value-1.2").is_empty());
        assert!(value_errors(&"b".repeat(63)).is_empty());
        assert_eq!(
            value_errors(&"b".repeat(64)),
            ["must be no more than 63 bytes"]
        );
        assert_eq!(value_errors(&format!("-{}", "b".repeat(63))).len(), 2);
        assert_eq!(
            value_errors("-b-"),
            [
                "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
            ]
        );
    }

    #[test]
    fn quoted_as_go_quotes() {
        assert_eq!(go_quote("A/b"), r#""A/b""#);
        assert_eq!(go_quote(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(go_quote("\u{1}\u{7f}\u{1b}[1m"), r#""\x01\x7f\x1b[1m""#);
        assert_eq!(go_quote("\t\n\u{7}"), r#""\t\n\a""#);
        assert_eq!(go_quote("é\u{301}😀 x"), "\"é\u{301}😀 x\"");
        // Spaces other than ` `, format characters, private use, unassigned code points.
        assert_eq!(
            go_quote("\u{a0}\u{ad}\u{200b}\u{2028}\u{3000}\u{e000}\u{378}\u{fffe}"),
            r#""\u00a0\u00ad\u200b\u2028\u3000\ue000\u0378\ufffe""#
        );
        assert_eq!(go_quote("\u{e0001}"), r#""\U000e0001""#);
    }
}
