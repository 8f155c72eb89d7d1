//! A Prometheus stand-in: instant queries (`/api/v1/query`) answered with the values the
//! scenario gives, in Prometheus's JSON format, and its health endpoints.

use jiff::Timestamp;
use serde_json::{Value, json};

use crate::scenario::network::{PrometheusAnswer, sample_text, within};

/// An answer: status code, content type and body.
pub type Reply = (u16, &'static str, String);

const JSON: &str = "application/json";
const TEXT: &str = "text/plain; charset=utf-8";

/// Answers a request for `path` with the form `params` (query string and form body).
pub fn answer(
    answers: &[PrometheusAnswer],
    start: Timestamp,
    now: Timestamp,
    method: &http::Method,
    path: &str,
    params: &[(String, String)],
) -> Reply {
    match path {
        "/-/healthy" => (200, TEXT, "Prometheus Server is Healthy.\n".into()),
        "/-/ready" => (200, TEXT, "Prometheus Server is Ready.\n".into()),
        "/api/v1/query" if method == http::Method::GET || method == http::Method::POST => {
            query(answers, start, now, params)
        }
        "/api/v1/query" => (405, TEXT, "Method Not Allowed\n".into()),
        _ => (404, TEXT, "404 page not found\n".into()),
    }
}

fn bad_data(message: String) -> Reply {
    let body = json!({"status": "error", "errorType": "bad_data", "error": message});
    (400, JSON, body.to_string())
}

fn query(
    answers: &[PrometheusAnswer],
    start: Timestamp,
    now: Timestamp,
    params: &[(String, String)],
) -> Reply {
    let param = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v);
    let text = match param("query").map(|q| q.trim()) {
        Some(q) if !q.is_empty() => q.to_owned(),
        _ => {
            return bad_data(
                "invalid parameter \"query\": 1:1: parse error: no expression found in input"
                    .into(),
            );
        }
    };
    let at = match param("time") {
        None => now,
        Some(time) => match parse_time(time) {
            Some(at) => at,
            None => {
                return bad_data(format!(
                    "invalid parameter \"time\": cannot parse {time:?} to a valid timestamp"
                ));
            }
        },
    };
    let value = answers
        .iter()
        .find(|a| {
            a.query.as_deref().is_none_or(|q| q.trim() == text)
                && a.contains.as_deref().is_none_or(|c| text.contains(c))
                && within(a.after, a.before, start, at)
        })
        .and_then(|a| a.value.as_ref())
        .and_then(sample_text);
    let seconds = at.as_millisecond() as f64 / 1000.0;
    let result: Vec<Value> = value
        .map(|v| json!({"metric": {}, "value": [seconds, v]}))
        .into_iter()
        .collect();
    let body = json!({
        "status": "success",
        "data": {"resultType": "vector", "result": result},
    });
    (200, JSON, body.to_string())
}

/// An evaluation time: RFC 3339, or Unix seconds with an optional fraction.
fn parse_time(text: &str) -> Option<Timestamp> {
    if let Ok(at) = text.parse::<Timestamp>() {
        return Some(at);
    }
    let seconds: f64 = text.parse().ok()?;
    let millis = (seconds * 1000.0).round();
    if !millis.is_finite() {
        return None;
    }
    Timestamp::from_millisecond(millis as i64).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use patchpilot_engine::units::Duration;

    fn start() -> Timestamp {
        "2026-11-28T00:00:00Z".parse().unwrap()
    }

    fn answers() -> Vec<PrometheusAnswer> {
        vec![
            PrometheusAnswer {
                contains: Some("instance=\"n2\"".into()),
                value: Some(json!(3)),
                after: Some(Duration::from_mins(10)),
                ..PrometheusAnswer::default()
            },
            PrometheusAnswer {
                query: Some("absent_metric".into()),
                ..PrometheusAnswer::default()
            },
            PrometheusAnswer {
                value: Some(json!(0)),
                ..PrometheusAnswer::default()
            },
        ]
    }

    fn ask(query: &str, minutes: i64) -> Reply {
        let params = vec![("query".to_owned(), query.to_owned())];
        let now = start() + jiff::SignedDuration::from_mins(minutes);
        answer(
            &answers(),
            start(),
            now,
            &http::Method::GET,
            "/api/v1/query",
            &params,
        )
    }

    fn result(reply: &Reply) -> Value {
        assert_eq!((reply.0, reply.1), (200, JSON), "{}", reply.2);
        let body: Value = serde_json::from_str(&reply.2).unwrap();
        assert_eq!(body["status"], "success");
        assert_eq!(body["data"]["resultType"], "vector");
        body["data"]["result"].clone()
    }

    #[test]
    fn queries_get_the_first_matching_answer_at_their_time() {
        let oom =
            |node: &str| format!("sum(increase(node_vmstat_oom_kill{{instance=\"{node}\"}}[10m]))");
        // n2's answer starts at 10 minutes; before, the catch-all answers.
        assert_eq!(result(&ask(&oom("n2"), 5))[0]["value"][1], "0");
        let late = result(&ask(&oom("n2"), 15));
        assert_eq!(late[0]["value"], json!([1_795_824_900.0, "3"]));
        assert_eq!(late[0]["metric"], json!({}));
        assert_eq!(result(&ask(&oom("n1"), 15))[0]["value"][1], "0");
        // An answer without a value: no such series.
        assert_eq!(result(&ask("absent_metric", 15)), json!([]));
    }

    #[test]
    fn an_explicit_time_is_the_evaluation_time() {
        let params = vec![
            ("query".to_owned(), "x{instance=\"n2\"}".to_owned()),
            ("time".to_owned(), "2026-11-28T00:20:00Z".to_owned()),
        ];
        let reply = answer(
            &answers(),
            start(),
            start(),
            &http::Method::POST,
            "/api/v1/query",
            &params,
        );
        assert_eq!(result(&reply)[0]["value"][1], "3");
        assert_eq!(
            parse_time("1795824000.5").unwrap().as_millisecond(),
            1_795_824_000_500
        );
    }

    #[test]
    fn bad_requests_are_refused_as_prometheus_does() {
        let (code, _, body) = ask("  ", 0);
        assert_eq!(code, 400);
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            (body["status"].as_str(), body["errorType"].as_str()),
            (Some("error"), Some("bad_data"))
        );
        let get = http::Method::GET;
        assert_eq!(
            answer(&[], start(), start(), &get, "/api/v1/querry", &[]).0,
            404
        );
        assert_eq!(
            answer(&[], start(), start(), &get, "/-/healthy", &[]).0,
            200
        );
        let params = vec![
            ("query".to_owned(), "up".to_owned()),
            ("time".to_owned(), "soon".to_owned()),
        ];
        assert_eq!(
            answer(&[], start(), start(), &get, "/api/v1/query", &params).0,
            400
        );
    }
}
