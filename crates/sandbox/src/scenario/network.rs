//! What a scenario says about the simulated network: HTTP answers of Services other than
//! the healthy default (`faults.http`), the values a Prometheus answers (`prometheus`), and
//! the receivers that record what is sent to them (`receivers`).

use jiff::Timestamp;
use patchpilot_engine::units::Duration;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A Service answering otherwise than a healthy one would, for a while.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpFault {
    /// The Service, `<namespace>/<name>`.
    pub service: String,
    /// Only requests for this path, like `/healthz` (default: every path).
    #[serde(default)]
    pub path: Option<String>,
    /// Answer with this status code…
    #[serde(default)]
    pub status: Option<u16>,
    /// …or fail to connect: `Refused` (nothing listens) or `Timeout` (no answer at all).
    #[serde(default)]
    pub error: Option<ConnectFailure>,
    /// From this long after the start (default: from the start).
    #[serde(default)]
    pub after: Option<Duration>,
    /// Until this long after the start (default: to the end).
    #[serde(default)]
    pub before: Option<Duration>,
}

/// How a connection fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConnectFailure {
    /// Connection refused: nothing listens (what a Service without ready endpoints gives).
    Refused,
    /// No answer: the request waits until the client gives up.
    Timeout,
}

/// A Prometheus that health checks can query.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PrometheusSpec {
    /// Where it answers, like `http://prometheus-operated.monitoring:9090`. For a cluster
    /// name, every name DNS resolves to the same Service reaches it; no Service object is
    /// needed.
    pub url: String,
    /// The values of instant queries (`/api/v1/query`): the first entry that matches the
    /// query and the evaluation time answers it. A query no entry matches gets an empty
    /// result, as a series that does not exist.
    #[serde(default)]
    pub answers: Vec<PrometheusAnswer>,
}

/// The value of the queries an entry matches, for a while.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PrometheusAnswer {
    /// The query, exactly as sent (the operator has replaced `${TARGET_NAME}` and the
    /// like)…
    #[serde(default)]
    pub query: Option<String>,
    /// …or a text it contains, like `instance="general-2"`. Neither: every query.
    #[serde(default)]
    pub contains: Option<String>,
    /// The value of the one sample answered: a number, or `"NaN"`, `"+Inf"`, `"-Inf"`.
    /// Omitted: an empty result.
    #[serde(default)]
    pub value: Option<Value>,
    /// From this long after the start (default: from the start).
    #[serde(default)]
    pub after: Option<Duration>,
    /// Until this long after the start (default: to the end).
    #[serde(default)]
    pub before: Option<Duration>,
}

/// The DNS domain of receivers: a receiver `chat` answers at `chat.receiver.sandbox`.
pub const RECEIVER_DOMAIN: &str = "receiver.sandbox";

/// A receiver: an HTTP endpoint, such as the one a Notifier's address names, that answers
/// `200` to every request to `http://<name>.receiver.sandbox/<any path>` (HTTPS and any
/// port too) and records it, unless it is down.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReceiverSpec {
    /// Its name: a DNS label.
    pub name: String,
    /// While it answers otherwise: the first entry whose time the request falls in says how.
    #[serde(default)]
    pub down: Vec<ReceiverDown>,
}

/// A receiver answering otherwise than `200`, for a while.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReceiverDown {
    /// Answer with this status code…
    #[serde(default)]
    pub status: Option<u16>,
    /// …or fail to connect: `Refused` (nothing listens) or `Timeout` (no answer at all).
    #[serde(default)]
    pub error: Option<ConnectFailure>,
    /// From this long after the start (default: from the start).
    #[serde(default)]
    pub after: Option<Duration>,
    /// Until this long after the start (default: to the end).
    #[serde(default)]
    pub before: Option<Duration>,
}

impl ReceiverSpec {
    /// What is wrong with it, if anything, as `field: message`.
    pub fn problem(&self) -> Option<String> {
        let label = &self.name;
        let valid = !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !valid {
            return Some(format!(
                "name: {label:?}: expected a DNS label (lower case letters, digits and '-')"
            ));
        }
        self.down
            .iter()
            .enumerate()
            .find_map(|(i, down)| match (down.status, down.error) {
                (Some(_), Some(_)) | (None, None) => Some(format!(
                    "down[{i}]: exactly one of status or error is required"
                )),
                (Some(code), None) if !(100..=599).contains(&code) => Some(format!(
                    "down[{i}].status: {code}: expected a status code, 100 to 599"
                )),
                _ => None,
            })
    }
}

/// Whether `at` lies in `[start + after, start + before)`.
pub fn within(
    after: Option<Duration>,
    before: Option<Duration>,
    start: Timestamp,
    at: Timestamp,
) -> bool {
    let offset = |d: Duration| start.saturating_add(d.signed()).unwrap_or(Timestamp::MAX);
    after.is_none_or(|a| at >= offset(a)) && before.is_none_or(|b| at < offset(b))
}

impl HttpFault {
    /// What is wrong with it, if anything, as `field: message`.
    pub fn problem(&self) -> Option<String> {
        match self.service.split_once('/') {
            Some((namespace, name)) if !namespace.is_empty() && !name.is_empty() => {}
            _ => {
                return Some(format!(
                    "service: {:?}: expected <namespace>/<name>",
                    self.service
                ));
            }
        }
        match (self.status, self.error) {
            (Some(_), Some(_)) | (None, None) => {
                Some("exactly one of status or error is required".into())
            }
            (Some(code), None) if !(100..=599).contains(&code) => Some(format!(
                "status: {code}: expected a status code, 100 to 599"
            )),
            _ => None,
        }
    }
}

impl PrometheusSpec {
    /// What is wrong with it, if anything, as `field: message`.
    pub fn problem(&self) -> Option<String> {
        if !(self.url.starts_with("http://") || self.url.starts_with("https://"))
            || self.url.parse::<http::Uri>().is_err()
        {
            return Some(format!("url: {:?}: expected an http:// URL", self.url));
        }
        self.answers.iter().enumerate().find_map(|(i, answer)| {
            let value = answer.value.as_ref()?;
            sample_text(value).is_none().then(|| {
                format!(
                    "answers[{i}].value: {value}: expected a number, \"NaN\", \"+Inf\" or \"-Inf\""
                )
            })
        })
    }
}

/// A sample's value as Prometheus writes it (`"0.002"`, `"3"`, `"NaN"`, `"+Inf"`).
pub fn sample_text(value: &Value) -> Option<String> {
    let number = match value {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => match s.as_str() {
            "NaN" => f64::NAN,
            "+Inf" | "Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            other => other.parse().ok()?,
        },
        _ => return None,
    };
    Some(if number.is_nan() {
        "NaN".into()
    } else if number.is_infinite() {
        if number > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{number}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn samples_are_written_as_prometheus_writes_them() {
        for (value, text) in [
            (json!(0), "0"),
            (json!(3.0), "3"),
            (json!(0.002), "0.002"),
            (json!(-1.5), "-1.5"),
            (json!("NaN"), "NaN"),
            (json!("+Inf"), "+Inf"),
            (json!("-Inf"), "-Inf"),
            (json!("12"), "12"),
        ] {
            assert_eq!(sample_text(&value).as_deref(), Some(text), "{value}");
        }
        assert_eq!(sample_text(&json!("many")), None);
        assert_eq!(sample_text(&json!(true)), None);
    }

    #[test]
    fn windows_are_half_open_after_the_start() {
        let start: Timestamp = "2026-11-28T00:00:00Z".parse().unwrap();
        let at = |m: i64| start + jiff::SignedDuration::from_mins(m);
        let (a, b) = (Some(Duration::from_mins(10)), Some(Duration::from_mins(20)));
        assert!(!within(a, b, start, at(9)));
        assert!(within(a, b, start, at(10)));
        assert!(!within(a, b, start, at(20)));
        assert!(within(None, None, start, at(1000)));
    }

    #[test]
    fn faults_name_what_is_wrong() {
        let fault = |service: &str, status, error| HttpFault {
            service: service.into(),
            status,
            error,
            ..HttpFault::default()
        };
        assert_eq!(fault("shop/web", Some(503), None).problem(), None);
        assert_eq!(
            fault("shop/web", None, Some(ConnectFailure::Refused)).problem(),
            None
        );
        assert!(
            fault("web", Some(503), None)
                .problem()
                .unwrap()
                .contains("service")
        );
        assert!(
            fault("shop/web", None, None)
                .problem()
                .unwrap()
                .contains("exactly one")
        );
        assert!(
            fault("shop/web", Some(42), None)
                .problem()
                .unwrap()
                .contains("status")
        );
    }
}
