//! Request bodies read as the API server reads them, and refused with its words: a JSON body
//! is checked by a copy of the scanner of Go's `encoding/json` (which the API server's
//! decoders run first) so that a malformed one gets Go's message (`invalid character '}'
//! after object key`, `unexpected end of JSON input`) and nesting deeper than Go's 10,000
//! levels is refused before anything recurses into it; a YAML body is refused past 10,000
//! levels of flow collections, as go-yaml does, before libyaml (whose scanning time grows
//! with the square of the nesting) reads it, and its errors are worded as go-yaml words
//! them (`yaml: line 2: mapping values are not allowed in this context`).
//!
//! The sandbox's JSON values nest at most 128 deep (serde_json's limit): a body nesting
//! deeper than that but within Go's limit, which the API server would read, is refused with
//! serde's message (a known limit, `docs/sandbox.md`).

use serde_json::Value;

/// How deep Go's JSON scanner and go-yaml let documents nest.
const MAX_DEPTH: usize = 10_000;

/// A body as a JSON value, or Go's message for why it is not JSON.
pub fn json(body: &[u8]) -> Result<Value, String> {
    check_json(body)?;
    serde_json::from_slice(body).map_err(|e| e.to_string())
}

/// An object's body as a JSON object (`null` is an empty one), or why not, as the API
/// server's JSON serializer words it when it looks for the object's kind.
pub fn json_object(body: &[u8]) -> Result<Value, String> {
    let value =
        json(body).map_err(|e| format!("couldn't get version/kind; json parse error: {e}"))?;
    match value {
        Value::Object(_) => Ok(value),
        Value::Null => Ok(Value::Object(Default::default())),
        other => Err(format!(
            "couldn't get version/kind; json parse error: json: cannot unmarshal {} into Go value of type struct {{ APIVersion string \"json:\\\"apiVersion,omitempty\\\"\"; Kind string \"json:\\\"kind,omitempty\\\"\" }}",
            go_type(&other)
        )),
    }
}

/// A YAML body as a JSON value, or go-yaml's message for why not.
pub fn yaml(body: &[u8]) -> Result<Value, String> {
    if flow_depth(body) > MAX_DEPTH {
        return Err(format!("yaml: exceeded max depth of {MAX_DEPTH}"));
    }
    serde_yaml_ng::from_slice(body).map_err(|e| go_yaml_message(&e.to_string()))
}

fn go_type(value: &Value) -> &'static str {
    match value {
        Value::Array(_) => "array",
        Value::String(_) => "string",
        Value::Number(_) => "number",
        Value::Bool(_) => "bool",
        Value::Object(_) => "object",
        Value::Null => "null",
    }
}

/// The deepest nesting of `[` and `{` in a YAML document, counted without regard to quotes
/// or comments: it may count more than libyaml would, never less.
fn flow_depth(body: &[u8]) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    for &b in body {
        match b {
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// A libyaml error as serde_yaml_ng prints it (`PROBLEM at line L column C, CONTEXT at line
/// L2 column C2`, lines from 1), as go-yaml prints the same error (`yaml: line N: PROBLEM`,
/// N the line of the context if it has one past the first, else of the problem; one more
/// for the scanner's errors, whose marks it has not moved past yet).
fn go_yaml_message(serde: &str) -> String {
    fn mark(text: &str) -> Option<(usize, &str)> {
        let rest = text.strip_prefix("line ")?;
        let (line, rest) = rest.split_once(" column ")?;
        let end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        Some((line.parse().ok()?, &rest[end..]))
    }
    let Some((problem, rest)) = serde.split_once(" at ") else {
        return format!("yaml: {serde}");
    };
    let Some((problem_line, rest)) = mark(rest) else {
        return format!("yaml: {serde}");
    };
    let (context, context_line) = match rest.strip_prefix(", ") {
        Some(context) => match context.split_once(" at ") {
            Some((context, at)) => (Some(context), mark(at).map(|(line, _)| line)),
            None => (Some(context), None),
        },
        None => (None, None),
    };
    let scanner = match context {
        Some(context) => context.starts_with("while scanning"),
        None => problem.ends_with("are not allowed in this context"),
    };
    // go-yaml's marks count lines from 0.
    let line = match context_line.map(|l| l - 1) {
        Some(line) if line != 0 => line,
        _ => problem_line - 1,
    };
    if line == 0 {
        return format!("yaml: {problem}");
    }
    format!("yaml: line {}: {problem}", line + usize::from(scanner))
}

/// Checks a JSON document as Go's `encoding/json` scanner does, with its messages.
fn check_json(body: &[u8]) -> Result<(), String> {
    let mut scanner = Scanner {
        step: Step::BeginValue,
        stack: Vec::new(),
    };
    for &c in body {
        scanner.step(c)?;
    }
    scanner.eof()
}

/// Where the scanner is inside a composite value.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Parse {
    ObjectKey,
    ObjectValue,
    ArrayValue,
}

/// The scanner's state: what the next byte may be.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Step {
    BeginValue,
    BeginValueOrEmpty,
    BeginStringOrEmpty,
    BeginString,
    EndValue,
    EndTop,
    InString,
    InStringEsc,
    /// Inside `\u`, with this many hexadecimal digits read.
    InStringEscU(u8),
    Neg,
    One,
    Zero,
    Dot,
    Dot0,
    E,
    ESign,
    E0,
    /// Inside a literal (`true`, `false`, `null`), with what remains of it.
    Literal(&'static str, &'static [u8]),
}

struct Scanner {
    step: Step,
    stack: Vec<Parse>,
}

fn space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

/// A byte as Go's `encoding/json` quotes it in an error.
fn quote(c: u8) -> String {
    match c {
        b'\'' => r"'\''".into(),
        b'"' => "'\"'".into(),
        b'\\' => r"'\\'".into(),
        0x07 => r"'\a'".into(),
        0x08 => r"'\b'".into(),
        0x0c => r"'\f'".into(),
        b'\n' => r"'\n'".into(),
        b'\r' => r"'\r'".into(),
        b'\t' => r"'\t'".into(),
        0x0b => r"'\v'".into(),
        0x00..=0x1f | 0x7f => format!(r"'\x{c:02x}'"),
        0x80..=0xa0 | 0xad => format!(r"'\u{c:04x}'"),
        _ => format!("'{}'", char::from(c)),
    }
}

impl Scanner {
    fn error(c: u8, context: &str) -> Result<(), String> {
        Err(format!("invalid character {} {context}", quote(c)))
    }

    fn push(&mut self, c: u8, parse: Parse) -> Result<(), String> {
        self.stack.push(parse);
        if self.stack.len() > MAX_DEPTH {
            return Self::error(c, "exceeded max depth");
        }
        Ok(())
    }

    fn step(&mut self, c: u8) -> Result<(), String> {
        match self.step {
            Step::BeginValueOrEmpty => {
                if space(c) {
                    return Ok(());
                }
                if c == b']' {
                    return self.end_value(c);
                }
                self.begin_value(c)
            }
            Step::BeginValue => self.begin_value(c),
            Step::BeginStringOrEmpty => {
                if space(c) {
                    return Ok(());
                }
                if c == b'}' {
                    if let Some(top) = self.stack.last_mut() {
                        *top = Parse::ObjectValue;
                    }
                    return self.end_value(c);
                }
                self.begin_string(c)
            }
            Step::BeginString => self.begin_string(c),
            Step::EndValue => self.end_value(c),
            Step::EndTop => {
                if !space(c) {
                    return Self::error(c, "after top-level value");
                }
                Ok(())
            }
            Step::InString => {
                match c {
                    b'"' => self.step = Step::EndValue,
                    b'\\' => self.step = Step::InStringEsc,
                    0x00..=0x1f => return Self::error(c, "in string literal"),
                    _ => {}
                }
                Ok(())
            }
            Step::InStringEsc => {
                match c {
                    b'b' | b'f' | b'n' | b'r' | b't' | b'\\' | b'/' | b'"' => {
                        self.step = Step::InString
                    }
                    b'u' => self.step = Step::InStringEscU(0),
                    _ => return Self::error(c, "in string escape code"),
                }
                Ok(())
            }
            Step::InStringEscU(read) => {
                if !c.is_ascii_hexdigit() {
                    return Self::error(c, "in \\u hexadecimal character escape");
                }
                self.step = if read == 3 {
                    Step::InString
                } else {
                    Step::InStringEscU(read + 1)
                };
                Ok(())
            }
            Step::Neg => match c {
                b'0' => {
                    self.step = Step::Zero;
                    Ok(())
                }
                b'1'..=b'9' => {
                    self.step = Step::One;
                    Ok(())
                }
                _ => Self::error(c, "in numeric literal"),
            },
            Step::One if c.is_ascii_digit() => Ok(()),
            Step::One | Step::Zero => match c {
                b'.' => {
                    self.step = Step::Dot;
                    Ok(())
                }
                b'e' | b'E' => {
                    self.step = Step::E;
                    Ok(())
                }
                _ => self.end_value(c),
            },
            Step::Dot => {
                if !c.is_ascii_digit() {
                    return Self::error(c, "after decimal point in numeric literal");
                }
                self.step = Step::Dot0;
                Ok(())
            }
            Step::Dot0 => match c {
                b'0'..=b'9' => Ok(()),
                b'e' | b'E' => {
                    self.step = Step::E;
                    Ok(())
                }
                _ => self.end_value(c),
            },
            Step::E if matches!(c, b'+' | b'-') => {
                self.step = Step::ESign;
                Ok(())
            }
            Step::E | Step::ESign => {
                if !c.is_ascii_digit() {
                    return Self::error(c, "in exponent of numeric literal");
                }
                self.step = Step::E0;
                Ok(())
            }
            Step::E0 if c.is_ascii_digit() => Ok(()),
            Step::E0 => self.end_value(c),
            Step::Literal(name, rest) => {
                if c != rest[0] {
                    return Self::error(
                        c,
                        &format!("in literal {name} (expecting {})", quote(rest[0])),
                    );
                }
                self.step = match &rest[1..] {
                    [] => Step::EndValue,
                    more => Step::Literal(name, more),
                };
                Ok(())
            }
        }
    }

    fn begin_value(&mut self, c: u8) -> Result<(), String> {
        self.step = match c {
            _ if space(c) => return Ok(()),
            b'{' => {
                self.step = Step::BeginStringOrEmpty;
                return self.push(c, Parse::ObjectKey);
            }
            b'[' => {
                self.step = Step::BeginValueOrEmpty;
                return self.push(c, Parse::ArrayValue);
            }
            b'"' => Step::InString,
            b'-' => Step::Neg,
            b'0' => Step::Zero,
            b't' => Step::Literal("true", b"rue"),
            b'f' => Step::Literal("false", b"alse"),
            b'n' => Step::Literal("null", b"ull"),
            b'1'..=b'9' => Step::One,
            _ => return Self::error(c, "looking for beginning of value"),
        };
        Ok(())
    }

    fn begin_string(&mut self, c: u8) -> Result<(), String> {
        if space(c) {
            return Ok(());
        }
        if c == b'"' {
            self.step = Step::InString;
            return Ok(());
        }
        Self::error(c, "looking for beginning of object key string")
    }

    fn end_value(&mut self, c: u8) -> Result<(), String> {
        let Some(&top) = self.stack.last() else {
            self.step = Step::EndTop;
            return self.step(c);
        };
        if space(c) {
            self.step = Step::EndValue;
            return Ok(());
        }
        match (top, c) {
            (Parse::ObjectKey, b':') => {
                *self.stack.last_mut().expect("not empty") = Parse::ObjectValue;
                self.step = Step::BeginValue;
                Ok(())
            }
            (Parse::ObjectKey, _) => Self::error(c, "after object key"),
            (Parse::ObjectValue, b',') => {
                *self.stack.last_mut().expect("not empty") = Parse::ObjectKey;
                self.step = Step::BeginString;
                Ok(())
            }
            (Parse::ObjectValue, b'}') | (Parse::ArrayValue, b']') => {
                self.stack.pop();
                if self.stack.is_empty() {
                    self.step = Step::EndTop;
                } else {
                    self.step = Step::EndValue;
                }
                Ok(())
            }
            (Parse::ObjectValue, _) => Self::error(c, "after object key:value pair"),
            (Parse::ArrayValue, b',') => {
                self.step = Step::BeginValue;
                Ok(())
            }
            (Parse::ArrayValue, _) => Self::error(c, "after array element"),
        }
    }

    fn eof(&mut self) -> Result<(), String> {
        if self.step == Step::EndTop {
            return Ok(());
        }
        // A number at the end of the input ends there; a literal cut short is refused for
        // the space Go pretends to read.
        self.step(b' ')?;
        if self.step == Step::EndTop {
            return Ok(());
        }
        Err("unexpected end of JSON input".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_json_gets_go_s_message() {
        let cases: [(&str, &str); 16] = [
            ("", "unexpected end of JSON input"),
            ("  ", "unexpected end of JSON input"),
            ("{\"metadata\":", "unexpected end of JSON input"),
            ("{} {}", "invalid character '{' after top-level value"),
            (
                "{\"a\":tru}",
                "invalid character '}' in literal true (expecting 'e')",
            ),
            (
                "{,}",
                "invalid character ',' looking for beginning of object key string",
            ),
            ("{\"a\" 1}", "invalid character '1' after object key"),
            (
                "{\"a\":1,}",
                "invalid character '}' looking for beginning of object key string",
            ),
            (
                "{\"a\":\"\\x\"}",
                "invalid character 'x' in string escape code",
            ),
            ("{\"a\":[1 2]}", "invalid character '2' after array element"),
            (
                "{\"a\":\"b\"}x",
                "invalid character 'x' after top-level value",
            ),
            (
                "{\"a\":\"\u{1}\"}",
                "invalid character '\\x01' in string literal",
            ),
            (
                "{\"a\":1 \"b\":2}",
                "invalid character '\"' after object key:value pair",
            ),
            ("[-]", "invalid character ']' in numeric literal"),
            (
                "[1.]",
                "invalid character ']' after decimal point in numeric literal",
            ),
            (
                "[1e+]",
                "invalid character ']' in exponent of numeric literal",
            ),
        ];
        for (body, message) in cases {
            assert_eq!(json(body.as_bytes()).unwrap_err(), message, "{body:?}");
        }
        let garbage = [0x81, 0x6a, 0x29];
        assert_eq!(
            json(&garbage).unwrap_err(),
            "invalid character '\\u0081' looking for beginning of value"
        );
        for body in [
            "{}",
            "[]",
            "1",
            "-0.5e+3",
            "\"a\\u00e9\"",
            "null",
            " {\"a\": [true, false, null]} ",
        ] {
            assert!(json(body.as_bytes()).is_ok(), "{body}");
        }
    }

    #[test]
    fn nesting_past_go_s_limit_is_refused_without_recursion() {
        let deep = "[".repeat(100_000);
        assert_eq!(
            json(deep.as_bytes()).unwrap_err(),
            "invalid character '[' exceeded max depth"
        );
        let deep = format!("{}1{}", "{\"a\":".repeat(10_001), "}".repeat(10_001));
        assert_eq!(
            json(deep.as_bytes()).unwrap_err(),
            "invalid character '{' exceeded max depth"
        );
        let deep = "[".repeat(100_000);
        assert_eq!(
            yaml(deep.as_bytes()).unwrap_err(),
            "yaml: exceeded max depth of 10000"
        );
    }

    #[test]
    fn floats_are_read_correctly_rounded_as_go_reads_them() {
        // Stored and served back as sent: the nearest double, printed shortest. Without
        // serde_json's `float_roundtrip`, the first came back one unit in the last place off.
        let sent = "[1.118322344e-24,0.1,5e-324,1.7976931348623157e+308,2.2250738585072014e-308]";
        let read = json(sent.as_bytes()).unwrap();
        assert_eq!(serde_json::to_string(&read).unwrap(), sent);
    }

    #[test]
    fn bodies_that_are_not_objects_have_no_kind() {
        assert_eq!(json_object(b"null").unwrap(), serde_json::json!({}));
        let error = json_object(b"[]").unwrap_err();
        assert!(
            error.starts_with(
                "couldn't get version/kind; json parse error: json: cannot unmarshal array into Go value of type struct"
            ),
            "{error}"
        );
    }

    #[test]
    fn yaml_errors_are_worded_as_go_yaml_words_them() {
        let cases = [
            (
                "{\"metadata\":",
                "yaml: line 1: did not find expected node content",
            ),
            ("a: [b", "yaml: line 1: did not find expected ',' or ']'"),
            (
                "metadata: {name: y1}\nfoo: : bar\n",
                "yaml: line 2: mapping values are not allowed in this context",
            ),
        ];
        for (body, message) in cases {
            assert_eq!(yaml(body.as_bytes()).unwrap_err(), message, "{body:?}");
        }
    }
}
