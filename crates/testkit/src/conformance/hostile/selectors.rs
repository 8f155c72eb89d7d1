//! Label and field selectors, malformed and well formed.

use http::Method;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::{Api, api::PostParams};

use super::{ask, refused_get};
use crate::conformance::{Backend, config_map};

/// A query parameter's value, percent-encoded whole.
fn encoded(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The regular-expression rule of a label key's name part, as the API server words it.
const NAME_RULE: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
/// The rule of a label value.
const VALUE_RULE: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
/// The rule of a label key's prefix.
const SUBDOMAIN_RULE: &str = r"a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

/// Malformed label selectors (`a===b`, `a in (b`, `-a=b`, `x>1.5`, …) and field selectors
/// (`metadata.name`, `metadata.name==a==b`, a bad escape) are refused with 400 and the API
/// server's words, on lists and watches, in its order among the other parameters; well-formed
/// ones, set-based, `!key`, `x>1` and escaped values included, select what it selects.
pub async fn selectors_are_read_as_the_api_server_reads_them(backend: &impl Backend) {
    let client = backend.client();
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), backend.namespace());
    let objects = [
        config_map(
            "web",
            &[("app", "web"), ("tier", "front"), ("n", "5"), ("in", "in")],
        ),
        config_map("db", &[("app", "db"), ("n", "12"), ("legacy", "")]),
        config_map("bare", &[]),
    ];
    for object in &objects {
        maps.create(&PostParams::default(), object).await.unwrap();
    }
    let collection = format!("/api/v1/namespaces/{}/configmaps", backend.namespace());
    let bad = Some("BadRequest");
    let requirement = |why: &str| format!("unable to parse requirement: {why}");
    let bad_key =
        |key: &str, why: &str| requirement(&format!("<nil>: Invalid value: \"{key}\": {why}"));
    let bad_value = |index: usize, key: &str, value: &str, why: &str| {
        format!("values[{index}][{key}]: Invalid value: \"{value}\": {why}")
    };
    let not_integer = |value: &str| {
        format!(
            "values[0]: Invalid value: \"{value}\": for 'Gt', 'Lt' operators, the value must be an integer"
        )
    };
    let operators = "expected: in, notin, =, ==, !=, gt, lt";
    let long = "b".repeat(64);

    let labels: Vec<(String, String)> = vec![
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
        ("a in b".into(), requirement("found 'b' expected: '('")),
        ("!".into(), requirement("found '', expected: identifier")),
        ("a!".into(), requirement(&format!("found '!', {operators}"))),
        (
            ",".into(),
            "found ',', expected: !, identifier, or 'end of string'".into(),
        ),
        (
            "a,".into(),
            "found '', expected: identifier after ','".into(),
        ),
        (
            "a=b c".into(),
            "found 'c', expected: ',' or 'end of string'".into(),
        ),
        (
            "(a)".into(),
            "found '(', expected: !, identifier, or 'end of string'".into(),
        ),
        (
            "a=!=b".into(),
            requirement("found '!=', expected: identifier"),
        ),
        (
            "a<>b".into(),
            requirement("found '>', expected: identifier"),
        ),
        // A NUL byte ends a token as the end of the selector does.
        (
            "a\0b".into(),
            requirement(&format!("found 'b', {operators}")),
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
            format!("a={long}"),
            requirement(&bad_value(0, "a", &long, "must be no more than 63 bytes")),
        ),
        (
            "a in (c,-b,-a)".into(),
            requirement(&format!(
                "[{}, {}]",
                bad_value(0, "a", "-a", VALUE_RULE),
                bad_value(1, "a", "-b", VALUE_RULE)
            )),
        ),
        ("x<a".into(), requirement(&not_integer("a"))),
        ("x>1.5".into(), requirement(&not_integer("1.5"))),
        (
            "x>-a".into(),
            requirement(&format!(
                "[{}, {}]",
                not_integer("-a"),
                bad_value(0, "x", "-a", VALUE_RULE)
            )),
        ),
    ];
    let fields = [
        (
            "metadata.name",
            "invalid selector: 'metadata.name'; can't understand 'metadata.name'",
        ),
        (
            "metadata.name=a,foo",
            "invalid selector: 'metadata.name=a,foo'; can't understand 'foo'",
        ),
        // The terms are sorted before they are read.
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
            r"metadata.name=a\",
            r"invalid field selector: invalid escape sequence: \",
        ),
        (
            "=a",
            r#""" is not a known field selector: only "metadata.name", "metadata.namespace""#,
        ),
        (
            " metadata.name=a",
            r#"" metadata.name" is not a known field selector: only "metadata.name", "metadata.namespace""#,
        ),
        (
            r"a\,b=c",
            r#""a\\,b" is not a known field selector: only "metadata.name", "metadata.namespace""#,
        ),
    ];
    for (selector, message) in &labels {
        for query in ["", "watch=true&timeoutSeconds=5&"] {
            let uri = format!("{collection}?{query}labelSelector={}", encoded(selector));
            refused_get(uri, 400, bad, message).check(&client).await;
        }
    }
    for (selector, message) in fields {
        for query in ["", "watch=true&timeoutSeconds=5&"] {
            let uri = format!("{collection}?{query}fieldSelector={}", encoded(selector));
            refused_get(uri, 400, bad, message).check(&client).await;
        }
    }

    // Which refusal comes first: the numbers, the label selector, the field selector,
    // `ListOptions`' rules, the field selector's fields, the resource version.
    let label_refusal = requirement("found '=', expected: identifier");
    let unknown_field =
        r#""foo" is not a known field selector: only "metadata.name", "metadata.namespace""#;
    let order = [
        (
            "limit=abc&labelSelector=a%3D%3D%3Db",
            400,
            "strconv.ParseInt: parsing \"abc\": invalid syntax",
        ),
        (
            "fieldSelector=metadata.name&labelSelector=a%3D%3D%3Db",
            400,
            label_refusal.as_str(),
        ),
        (
            "fieldSelector=metadata.name&resourceVersionMatch=Exact",
            400,
            "invalid selector: 'metadata.name'; can't understand 'metadata.name'",
        ),
        (
            "fieldSelector=foo%3Dbar&resourceVersionMatch=Exact",
            422,
            "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided",
        ),
        (
            "fieldSelector=foo%3Dbar&resourceVersion=abc",
            400,
            unknown_field,
        ),
        (
            "labelSelector=a%3D%3D%3Db&labelSelector=a",
            400,
            label_refusal.as_str(),
        ),
    ];
    for (query, code, message) in order {
        let reason = if code == 422 { "Invalid" } else { "BadRequest" };
        refused_get(format!("{collection}?{query}"), code, Some(reason), message)
            .check(&client)
            .await;
    }

    // What the accepted selectors select, among the test's ConfigMaps.
    let selections = [
        ("labelSelector", "", &["bare", "db", "web"][..]),
        ("labelSelector", " ", &["bare", "db", "web"]),
        ("labelSelector", "app=web", &["web"]),
        ("labelSelector", " app == web ", &["web"]),
        ("labelSelector", "app!=web", &["bare", "db"]),
        ("labelSelector", "app in (web, db)", &["db", "web"]),
        ("labelSelector", "app notin (web)", &["bare", "db"]),
        ("labelSelector", "legacy in ()", &["db"]),
        ("labelSelector", "legacy=", &["db"]),
        ("labelSelector", "legacy notin (,)", &["bare", "web"]),
        ("labelSelector", "tier", &["web"]),
        ("labelSelector", "!tier", &["bare", "db"]),
        ("labelSelector", "!tier,!legacy", &["bare"]),
        ("labelSelector", "in=in", &["web"]),
        ("labelSelector", "in in (in,notin)", &["web"]),
        ("labelSelector", "notin", &[]),
        ("labelSelector", "n>1", &["db", "web"]),
        ("labelSelector", "n>5", &["db"]),
        ("labelSelector", "n<12", &["web"]),
        ("labelSelector", "n>007", &["db"]),
        ("labelSelector", "app>1", &[]),
        ("labelSelector", "a,\0b", &[]),
        ("fieldSelector", ",", &["bare", "db", "web"]),
        ("fieldSelector", "metadata.name=web", &["web"]),
        (
            "fieldSelector",
            "metadata.name!=web,metadata.name!=db",
            &["bare"],
        ),
        (
            "fieldSelector",
            r"metadata.name!=a\,b",
            &["bare", "db", "web"],
        ),
        ("fieldSelector", r"metadata.name=web\=", &[]),
        ("fieldSelector", r"metadata.name=web\\", &[]),
    ];
    for (parameter, selector, expected) in selections {
        let uri = format!("{collection}?{parameter}={}", encoded(selector));
        let answer = ask(&client, Method::GET, &uri, None, None, Vec::new()).await;
        assert_eq!(
            answer.code, 200,
            "{parameter}={selector:?}: {}",
            answer.body
        );
        // The test's own ConfigMaps only: a real cluster adds `kube-root-ca.crt`.
        let mut names: Vec<&str> = answer.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|item| item["metadata"]["name"].as_str())
            .filter(|name| ["web", "db", "bare"].contains(name))
            .collect();
        names.sort_unstable();
        assert_eq!(names, expected, "{parameter}={selector:?}");
    }
}
