use super::*;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

const NAME_RULE: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const VALUE_RULE: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
const SUBDOMAIN_RULE: &str = r"a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const OPERATORS: &str = "expected: in, notin, =, ==, !=, gt, lt";

fn requirement(why: &str) -> String {
    format!("unable to parse requirement: {why}")
}

fn bad_key(key: &str, why: &str) -> String {
    requirement(&format!("<nil>: Invalid value: \"{key}\": {why}"))
}

fn bad_value(index: usize, key: &str, value: &str, why: &str) -> String {
    format!("values[{index}][{key}]: Invalid value: \"{value}\": {why}")
}

fn not_integer(value: &str) -> String {
    format!(
        "values[0]: Invalid value: \"{value}\": for 'Gt', 'Lt' operators, the value must be an integer"
    )
}

/// Each refusal as kube-apiserver v1.37 words it.
#[test]
fn refusals_in_the_api_server_s_words() {
    let long = "b".repeat(64);
    let cases: Vec<(String, String)> = vec![
        (
            "a===b".into(),
            requirement("found '=', expected: identifier"),
        ),
        (
            "a=b=c".into(),
            "found '=', expected: ',' or 'end of string'".into(),
        ),
        (
            "a in (b".into(),
            requirement("found '', expected: ',' or ')'"),
        ),
        (
            "a in (b c)".into(),
            requirement("found 'c', expected: ',' or ')'"),
        ),
        (
            "a in (b,=)".into(),
            requirement("found '=', expected: ',', or identifier"),
        ),
        ("a in b".into(), requirement("found 'b' expected: '('")),
        ("a in".into(), requirement("found '' expected: '('")),
        (
            "a in (".into(),
            requirement("found '', expected: ',', ')' or identifier"),
        ),
        (
            "a in (b,c)x".into(),
            "found 'x', expected: ',' or 'end of string'".into(),
        ),
        ("!".into(), requirement("found '', expected: identifier")),
        ("!!a".into(), requirement("found '!', expected: identifier")),
        ("a!".into(), requirement(&format!("found '!', {OPERATORS}"))),
        (
            "a b".into(),
            requirement(&format!("found 'b', {OPERATORS}")),
        ),
        ("a)".into(), requirement(&format!("found ')', {OPERATORS}"))),
        (
            ",".into(),
            "found ',', expected: !, identifier, or 'end of string'".into(),
        ),
        (
            "=b".into(),
            "found '=', expected: !, identifier, or 'end of string'".into(),
        ),
        (
            "(a)".into(),
            "found '(', expected: !, identifier, or 'end of string'".into(),
        ),
        (
            "a,".into(),
            "found '', expected: identifier after ','".into(),
        ),
        (
            "a,,b".into(),
            "found ',', expected: identifier after ','".into(),
        ),
        (
            "a=b c".into(),
            "found 'c', expected: ',' or 'end of string'".into(),
        ),
        (
            "a=b\nc".into(),
            "found 'c', expected: ',' or 'end of string'".into(),
        ),
        (
            "!a=b".into(),
            "found '=', expected: ',' or 'end of string'".into(),
        ),
        (
            "a=(b)".into(),
            requirement("found '(', expected: identifier"),
        ),
        (
            "a<>b".into(),
            requirement("found '>', expected: identifier"),
        ),
        (
            "x>=1".into(),
            requirement("found '=', expected: identifier"),
        ),
        (
            "a!==b".into(),
            requirement("found '=', expected: identifier"),
        ),
        (
            "a=!=b".into(),
            requirement("found '!=', expected: identifier"),
        ),
        (
            "a\0b".into(),
            requirement(&format!("found 'b', {OPERATORS}")),
        ),
        (
            "A/b=c".into(),
            bad_key("A/b", &format!("prefix part {SUBDOMAIN_RULE}")),
        ),
        (
            "-a=b".into(),
            bad_key("-a", &format!("name part {NAME_RULE}")),
        ),
        (
            "/a=b".into(),
            bad_key("/a", "prefix part must be non-empty"),
        ),
        (
            "a/=b".into(),
            bad_key(
                "a/",
                &format!("name part must be non-empty; name part {NAME_RULE}"),
            ),
        ),
        (
            "a/b/c=d".into(),
            bad_key(
                "a/b/c",
                &format!(
                    "a valid label key {NAME_RULE} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
                ),
            ),
        ),
        (
            format!("{}=b", "a".repeat(64)),
            bad_key(&"a".repeat(64), "name part must be no more than 63 bytes"),
        ),
        (
            "a=-b-".into(),
            requirement(&bad_value(0, "a", "-b-", VALUE_RULE)),
        ),
        (
            "a=\u{1}".into(),
            requirement(&bad_value(0, "a", "\\x01", VALUE_RULE)),
        ),
        (
            "a=\"b\"".into(),
            requirement(&bad_value(0, "a", "\\\"b\\\"", VALUE_RULE)),
        ),
        (
            format!("a={long}"),
            requirement(&bad_value(0, "a", &long, "must be no more than 63 bytes")),
        ),
        (
            format!("a=-{long}"),
            requirement(&bad_value(
                0,
                "a",
                &format!("-{long}"),
                &format!("must be no more than 63 bytes; {VALUE_RULE}"),
            )),
        ),
        // Values are checked sorted, each refusal once, bracketed when more than one.
        (
            "a in (c,-b,-a,-b)".into(),
            requirement(&format!(
                "[{}, {}]",
                bad_value(0, "a", "-a", VALUE_RULE),
                bad_value(1, "a", "-b", VALUE_RULE)
            )),
        ),
        ("x<a".into(), requirement(&not_integer("a"))),
        ("x>1.5".into(), requirement(&not_integer("1.5"))),
        ("x>".into(), requirement(&not_integer(""))),
        (
            "x<9223372036854775808".into(),
            requirement(&not_integer("9223372036854775808")),
        ),
        (
            "x>-3".into(),
            requirement(&bad_value(0, "x", "-3", VALUE_RULE)),
        ),
        (
            "x>-a".into(),
            requirement(&format!(
                "[{}, {}]",
                not_integer("-a"),
                bad_value(0, "x", "-a", VALUE_RULE)
            )),
        ),
    ];
    for (text, message) in cases {
        assert_eq!(parse(&text).unwrap_err(), message, "{text:?}");
    }
}

/// What the accepted selectors select, as the API server does.
#[test]
fn selections() {
    let web = labels(&[("app", "web"), ("tier", "front"), ("n", "5"), ("in", "in")]);
    let db = labels(&[("app", "db"), ("n", "12"), ("legacy", "")]);
    let bare = labels(&[]);
    // (selector, selects web, selects db, selects bare)
    let cases = [
        ("", true, true, true),
        (" ", true, true, true),
        ("\t\r\n", true, true, true),
        ("\0", true, true, true),
        ("a,\0b", false, false, false),
        ("app=web", true, false, false),
        ("app==web", true, false, false),
        (" app = web ", true, false, false),
        ("app!=web", false, true, true),
        ("app in (web, db)", true, true, false),
        ("app in (web,,x)", true, false, false),
        ("app notin (web)", false, true, true),
        ("legacy in ()", false, true, false),
        ("legacy in (,)", false, true, false),
        ("legacy=", false, true, false),
        ("legacy==,app", false, true, false),
        ("legacy notin ()", true, false, true),
        ("tier", true, false, false),
        ("!tier", false, true, true),
        ("! tier", false, true, true),
        ("!tier,!legacy", false, false, true),
        ("app,!tier", false, true, false),
        ("in=in", true, false, false),
        ("in in (in,notin)", true, false, false),
        ("notin", false, false, false),
        ("n>1", true, true, false),
        ("n >5", false, true, false),
        ("n<12", true, false, false),
        ("n>007", false, true, false),
        ("n>0", true, true, false),
        ("n<0", false, false, false),
        ("app>1", false, false, false),
        ("example.com/a-b_c.d=x", false, false, false),
    ];
    for (text, in_web, in_db, in_bare) in cases {
        let selector = parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
        assert_eq!(
            (
                selector.matches(&web),
                selector.matches(&db),
                selector.matches(&bare)
            ),
            (in_web, in_db, in_bare),
            "{text:?}"
        );
        assert_eq!(
            selector.is_everything(),
            text.trim_matches([' ', '\t', '\r', '\n', '\0']).is_empty(),
            "{text:?}"
        );
    }
}

/// The lexer's tokens, with the API server's quirks: the longest run of symbols that is a
/// token, words only where they can be, a NUL byte read as the end.
#[test]
fn tokens() {
    let lex = |text: &str| -> Vec<(Token, String)> {
        Parser::new(text)
            .items
            .into_iter()
            .map(|(t, l)| (t, l.to_owned()))
            .collect()
    };
    let t = |token, literal: &str| (token, literal.to_owned());
    assert_eq!(
        lex("a!==b"),
        [
            t(Token::Identifier, "a"),
            t(Token::NotEquals, "!="),
            t(Token::Equals, "="),
            t(Token::Identifier, "b"),
            t(Token::EndOfString, ""),
        ]
    );
    assert_eq!(
        lex(" x notin(in)"),
        [
            t(Token::Identifier, "x"),
            t(Token::NotIn, "notin"),
            t(Token::OpenPar, "("),
            t(Token::In, "in"),
            t(Token::ClosedPar, ")"),
            t(Token::EndOfString, ""),
        ]
    );
    assert_eq!(
        lex("é>1,\0"),
        [
            t(Token::Identifier, "é"),
            t(Token::GreaterThan, ">"),
            t(Token::Identifier, "1"),
            t(Token::Comma, ","),
            t(Token::EndOfString, ""),
        ]
    );
}
