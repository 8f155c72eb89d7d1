//! Label selectors as the API server reads them from a query (k8s.io/apimachinery's
//! `labels.Parse`): its lexer, its parser, its checks of keys and values, and its words for
//! each refusal.
//!
//! ```text
//! selector    = requirement ["," selector]
//! requirement = ["!"] KEY [("in" | "notin") "(" VALUE {"," VALUE} ")" | ("=" | "==" | "!=" | ">" | "<") VALUE]
//! ```
//!
//! Whitespace (` `, tab, CR, LF) separates tokens; `in` and `notin` are words only where an
//! operator is expected. A NUL byte ends the selector as its end does.

use std::collections::BTreeSet;

use patchpilot_engine::selector::{Labels, Selector};

use super::names::{go_quote, key_errors, value_errors};

/// A label selector read from a query: requirements the engine's [`Selector`] holds, and the
/// numeric comparisons (`x>1`, `x<5`) only a query can make.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LabelSelector {
    sets: Selector,
    comparisons: Vec<Comparison>,
}

/// `key>bound` or `key<bound`: the label is present and an integer beyond the bound.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Comparison {
    key: String,
    greater: bool,
    bound: i64,
}

impl LabelSelector {
    /// Whether the labels satisfy every requirement.
    pub fn matches(&self, labels: &Labels) -> bool {
        self.sets.matches(labels)
            && self.comparisons.iter().all(|c| {
                // Read as the bound was (`checked`).
                match labels.get(&c.key).and_then(|v| v.parse::<i64>().ok()) {
                    Some(value) if c.greater => value > c.bound,
                    Some(value) => value < c.bound,
                    None => false,
                }
            })
    }

    /// Whether this selector matches everything.
    pub fn is_everything(&self) -> bool {
        self.sets.is_everything() && self.comparisons.is_empty()
    }
}

impl From<Selector> for LabelSelector {
    fn from(sets: Selector) -> Self {
        LabelSelector {
            sets,
            comparisons: Vec::new(),
        }
    }
}

/// Parses a label selector query (`a=b,c!=d,e in (x,y),f notin (z),g,!h,n>1`), or says why
/// not in the API server's words.
pub fn parse(text: &str) -> Result<LabelSelector, String> {
    let mut selector = LabelSelector::default();
    for requirement in Parser::new(text).parse()? {
        let Requirement {
            key,
            operator,
            values,
        } = requirement;
        let values: Vec<String> = values.into_iter().collect();
        let engine_operator = match operator {
            Operator::In | Operator::Equals | Operator::DoubleEquals => "In",
            Operator::NotIn | Operator::NotEquals => "NotIn",
            Operator::Exists => "Exists",
            Operator::DoesNotExist => "DoesNotExist",
            Operator::GreaterThan(bound) | Operator::LessThan(bound) => {
                selector.comparisons.push(Comparison {
                    key,
                    greater: matches!(operator, Operator::GreaterThan(_)),
                    bound,
                });
                continue;
            }
        };
        selector.sets = selector
            .sets
            .with_expression(&key, engine_operator, &values)
            .map_err(|e| format!("unable to parse requirement: {e}"))?;
    }
    Ok(selector)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Token {
    EndOfString,
    ClosedPar,
    Comma,
    DoesNotExist,
    DoubleEquals,
    Equals,
    GreaterThan,
    Identifier,
    In,
    LessThan,
    NotEquals,
    NotIn,
    OpenPar,
}

/// The token a literal is, if it is one.
fn token(literal: &[u8]) -> Option<Token> {
    Some(match literal {
        b")" => Token::ClosedPar,
        b"," => Token::Comma,
        b"!" => Token::DoesNotExist,
        b"==" => Token::DoubleEquals,
        b"=" => Token::Equals,
        b">" => Token::GreaterThan,
        b"in" => Token::In,
        b"<" => Token::LessThan,
        b"!=" => Token::NotEquals,
        b"notin" => Token::NotIn,
        b"(" => Token::OpenPar,
        _ => return None,
    })
}

fn whitespace(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

fn special(c: u8) -> bool {
    matches!(c, b'=' | b'!' | b'(' | b')' | b',' | b'>' | b'<')
}

/// The lexer, byte by byte as the API server's: 0 is both the end and a NUL byte, which is
/// consumed.
struct Lexer<'a> {
    text: &'a str,
    position: usize,
}

impl<'a> Lexer<'a> {
    fn read(&mut self) -> u8 {
        match self.text.as_bytes().get(self.position) {
            Some(&c) => {
                self.position += 1;
                c
            }
            None => 0,
        }
    }

    fn unread(&mut self) {
        self.position -= 1;
    }

    fn lex(&mut self) -> (Token, &'a str) {
        let mut c = self.read();
        while whitespace(c) {
            c = self.read();
        }
        if c == 0 {
            return (Token::EndOfString, "");
        }
        self.unread();
        if special(c) {
            self.symbol()
        } else {
            self.word()
        }
    }

    /// An identifier, or the words `in` and `notin`: everything up to a special character,
    /// whitespace or the end.
    fn word(&mut self) -> (Token, &'a str) {
        let start = self.position;
        let end = loop {
            let at = self.position;
            match self.read() {
                0 => break at,
                c if special(c) || whitespace(c) => {
                    self.unread();
                    break at;
                }
                _ => {}
            }
        };
        let literal = &self.text[start..end];
        match token(literal.as_bytes()) {
            Some(token) => (token, literal),
            None => (Token::Identifier, literal),
        }
    }

    /// The longest run of special characters that is a token (`!=`, `==`, …), each longer
    /// run tried until one is not.
    fn symbol(&mut self) -> (Token, &'a str) {
        let start = self.position;
        // Every special character is a token of its own.
        let mut last = (Token::EndOfString, start);
        loop {
            match self.read() {
                0 => break,
                c if special(c) => match token(&self.text.as_bytes()[start..self.position]) {
                    Some(token) => last = (token, self.position),
                    None => {
                        self.unread();
                        break;
                    }
                },
                _ => {
                    self.unread();
                    break;
                }
            }
        }
        (last.0, &self.text[start..last.1])
    }
}

/// Whether `in` and `notin` are words (where an operator is expected) or identifiers.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    KeyAndOperator,
    Values,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Operator {
    In,
    NotIn,
    Equals,
    DoubleEquals,
    NotEquals,
    /// `>`, with its bound once the value is read.
    GreaterThan(i64),
    /// `<`, with its bound once the value is read.
    LessThan(i64),
    Exists,
    DoesNotExist,
}

/// One requirement as parsed; its values a set, in order.
#[derive(Debug, PartialEq, Eq)]
struct Requirement {
    key: String,
    operator: Operator,
    values: BTreeSet<String>,
}

struct Parser<'a> {
    items: Vec<(Token, &'a str)>,
    position: usize,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str) -> Self {
        let mut lexer = Lexer { text, position: 0 };
        let mut items = Vec::new();
        loop {
            let item = lexer.lex();
            items.push(item);
            if item.0 == Token::EndOfString {
                break;
            }
        }
        Parser { items, position: 0 }
    }

    fn lookahead(&self, context: Context) -> (Token, &'a str) {
        let (token, literal) = self
            .items
            .get(self.position)
            .copied()
            .unwrap_or((Token::EndOfString, ""));
        match token {
            Token::In | Token::NotIn if context == Context::Values => (Token::Identifier, literal),
            _ => (token, literal),
        }
    }

    fn consume(&mut self, context: Context) -> (Token, &'a str) {
        let item = self.lookahead(context);
        self.position += 1;
        item
    }

    fn parse(&mut self) -> Result<Vec<Requirement>, String> {
        let mut requirements = Vec::new();
        loop {
            let (token, literal) = self.lookahead(Context::Values);
            match token {
                Token::Identifier | Token::DoesNotExist => {
                    let requirement = self
                        .requirement()
                        .map_err(|e| format!("unable to parse requirement: {e}"))?;
                    requirements.push(requirement);
                    let (token, literal) = self.consume(Context::Values);
                    match token {
                        Token::EndOfString => return Ok(requirements),
                        Token::Comma => {
                            let (next, literal) = self.lookahead(Context::Values);
                            if next != Token::Identifier && next != Token::DoesNotExist {
                                return Err(format!(
                                    "found '{literal}', expected: identifier after ','"
                                ));
                            }
                        }
                        _ => {
                            return Err(format!(
                                "found '{literal}', expected: ',' or 'end of string'"
                            ));
                        }
                    }
                }
                Token::EndOfString => return Ok(requirements),
                _ => {
                    return Err(format!(
                        "found '{literal}', expected: !, identifier, or 'end of string'"
                    ));
                }
            }
        }
    }

    fn requirement(&mut self) -> Result<Requirement, String> {
        let (key, inferred) = self.key_and_inferred_operator()?;
        if let Some(operator) = inferred {
            return checked(key, operator, BTreeSet::new());
        }
        let operator = self.operator()?;
        let values = match operator {
            Operator::In | Operator::NotIn => self.set()?,
            _ => self.exact_value()?,
        };
        checked(key, operator, values)
    }

    /// The key, and `Exists` or `DoesNotExist` where no operator follows (`DoesNotExist`
    /// after `!` whatever follows).
    fn key_and_inferred_operator(&mut self) -> Result<(String, Option<Operator>), String> {
        let (mut token, mut literal) = self.consume(Context::Values);
        let mut operator = None;
        if token == Token::DoesNotExist {
            operator = Some(Operator::DoesNotExist);
            (token, literal) = self.consume(Context::Values);
        }
        if token != Token::Identifier {
            return Err(format!("found '{literal}', expected: identifier"));
        }
        let errors = key_errors(literal);
        if !errors.is_empty() {
            return Err(format!(
                "<nil>: Invalid value: {}: {}",
                go_quote(literal),
                errors.join("; ")
            ));
        }
        if operator.is_none()
            && matches!(
                self.lookahead(Context::Values).0,
                Token::EndOfString | Token::Comma
            )
        {
            operator = Some(Operator::Exists);
        }
        Ok((literal.to_owned(), operator))
    }

    fn operator(&mut self) -> Result<Operator, String> {
        let (token, literal) = self.consume(Context::KeyAndOperator);
        Ok(match token {
            Token::In => Operator::In,
            Token::Equals => Operator::Equals,
            Token::DoubleEquals => Operator::DoubleEquals,
            Token::GreaterThan => Operator::GreaterThan(0),
            Token::LessThan => Operator::LessThan(0),
            Token::NotIn => Operator::NotIn,
            Token::NotEquals => Operator::NotEquals,
            _ => {
                return Err(format!(
                    "found '{literal}', expected: in, notin, =, ==, !=, gt, lt"
                ));
            }
        })
    }

    /// `(x,y,z)`: `()` is the empty value alone, and an empty place among commas is one.
    fn set(&mut self) -> Result<BTreeSet<String>, String> {
        let (token, literal) = self.consume(Context::Values);
        if token != Token::OpenPar {
            return Err(format!("found '{literal}' expected: '('"));
        }
        let (token, literal) = self.lookahead(Context::Values);
        match token {
            Token::Identifier | Token::Comma => {
                let values = self.identifiers()?;
                if self.consume(Context::Values).0 != Token::ClosedPar {
                    return Err(format!("found '{literal}', expected: ')'"));
                }
                Ok(values)
            }
            Token::ClosedPar => {
                self.consume(Context::Values);
                Ok(BTreeSet::from([String::new()]))
            }
            _ => Err(format!(
                "found '{literal}', expected: ',', ')' or identifier"
            )),
        }
    }

    /// The comma-separated values of a set, up to its `)`.
    fn identifiers(&mut self) -> Result<BTreeSet<String>, String> {
        let mut values = BTreeSet::new();
        loop {
            let (token, literal) = self.consume(Context::Values);
            match token {
                Token::Identifier => {
                    values.insert(literal.to_owned());
                    let (next, literal) = self.lookahead(Context::Values);
                    match next {
                        Token::Comma => {}
                        Token::ClosedPar => return Ok(values),
                        _ => return Err(format!("found '{literal}', expected: ',' or ')'")),
                    }
                }
                Token::Comma => {
                    if values.is_empty() {
                        values.insert(String::new());
                    }
                    match self.lookahead(Context::Values).0 {
                        Token::ClosedPar => {
                            values.insert(String::new());
                            return Ok(values);
                        }
                        Token::Comma => {
                            self.consume(Context::Values);
                            values.insert(String::new());
                        }
                        _ => {}
                    }
                }
                _ => return Err(format!("found '{literal}', expected: ',', or identifier")),
            }
        }
    }

    /// The value after `=`, `==`, `!=`, `>` or `<`: empty at a `,` or the end.
    fn exact_value(&mut self) -> Result<BTreeSet<String>, String> {
        if matches!(
            self.lookahead(Context::Values).0,
            Token::EndOfString | Token::Comma
        ) {
            return Ok(BTreeSet::from([String::new()]));
        }
        let (token, literal) = self.consume(Context::Values);
        if token != Token::Identifier {
            return Err(format!("found '{literal}', expected: identifier"));
        }
        Ok(BTreeSet::from([literal.to_owned()]))
    }
}

/// `NewRequirement`'s checks of the values (the key was checked as it was read): an integer
/// for `>` and `<` (Go's `strconv.ParseInt`: an optional sign and decimal digits, in 64
/// bits), label values for all. Its errors are listed, the same one once, and bracketed if
/// more than one.
fn checked(
    key: String,
    mut operator: Operator,
    values: BTreeSet<String>,
) -> Result<Requirement, String> {
    let mut errors: Vec<String> = Vec::new();
    if let Operator::GreaterThan(bound) | Operator::LessThan(bound) = &mut operator {
        // The parser gives `>` and `<` one value.
        for (i, value) in values.iter().enumerate() {
            match value.parse::<i64>() {
                Ok(number) => *bound = number,
                Err(_) => errors.push(format!(
                    "values[{i}]: Invalid value: {}: for 'Gt', 'Lt' operators, the value must be an integer",
                    go_quote(value)
                )),
            }
        }
    }
    for (i, value) in values.iter().enumerate() {
        let why = value_errors(value);
        if !why.is_empty() {
            errors.push(format!(
                "values[{i}][{key}]: Invalid value: {}: {}",
                go_quote(value),
                why.join("; ")
            ));
        }
    }
    let mut unique: Vec<String> = Vec::new();
    for error in errors {
        if !unique.contains(&error) {
            unique.push(error);
        }
    }
    match unique.as_slice() {
        [] => Ok(Requirement {
            key,
            operator,
            values,
        }),
        [one] => Err(one.clone()),
        many => Err(format!("[{}]", many.join(", "))),
    }
}

#[cfg(test)]
mod tests;
