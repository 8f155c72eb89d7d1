//! Receivers: the HTTP endpoints a scenario names (`receivers`), which record every request
//! sent to them, such as the notices of a Notifier whose address points at one.
//!
//! A receiver `chat` answers at `http://chat.receiver.sandbox/<any path>` (HTTPS and any
//! port too): `200` with `{}`, or while one of its `down` entries holds, that entry's status,
//! a refused connection, or no answer at all. Each request is recorded with the virtual
//! instant it arrived, its method, path, headers and body (parsed when it is JSON), and how
//! it was answered; tests that run the sandbox in-process read them ([`Receivers::received`]),
//! and the progress output says each notice as it comes ([`Received::line`]), and with
//! `--verbose` every other request too (a health check pointed at a receiver).

use std::{collections::BTreeMap, sync::Mutex};

use bytes::Bytes;
use http_body_util::Full;
use jiff::Timestamp;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::broadcast;

use super::{HttpError, never, refused, reply};
use crate::scenario::network::{
    ConnectFailure, RECEIVER_DOMAIN, ReceiverDown, ReceiverSpec, within,
};

/// A request a receiver got, and how it answered.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Received {
    /// The receiver's name.
    pub receiver: String,
    /// When it arrived, on the sandbox's clock.
    pub time: Timestamp,
    /// Its method.
    pub method: String,
    /// Its path, with the query if any.
    pub path: String,
    /// Its headers, by lower-case name (repeated ones joined with `, `).
    pub headers: BTreeMap<String, String>,
    /// Its body: the JSON it holds, or its text as a string (empty: `null`).
    pub body: Value,
    /// The body's length in bytes.
    pub bytes: usize,
    /// The status answered; `None` when the receiver was down without answering.
    pub status: Option<u16>,
    /// How the receiver failed to answer, when it was down that way.
    pub error: Option<ConnectFailure>,
}

impl Received {
    /// Whether the receiver took it: answered with a `2xx` status.
    pub fn accepted(&self) -> bool {
        self.status.is_some_and(|code| (200..300).contains(&code))
    }

    /// It as JSON: `receiver`, `time`, `method`, `path`, `headers`, `body`, `bytes`,
    /// `status` and `error`.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// Whether it carries a notice: a notice's id in its headers or body, or a kind.
    pub fn is_notice(&self) -> bool {
        self.headers.contains_key("x-patchpilot-notice-id")
            || self.body["id"].is_string()
            || self.body["kind"].is_string()
            || self.body["data"]["kind"].is_string()
    }

    /// Its progress line: the notice it carries (kind, id and message, read from a
    /// notice's JSON or CloudEvent, or Slack's text), else the bare request, then how it was
    /// answered when not with `2xx`: `notice to chat: WaveStarted os-1234/3: os-1234: wave
    /// canary (1 of 3) started`, `request to hooks: POST /x (12 bytes) (answered 503)`.
    pub fn line(&self) -> String {
        let body = &self.body;
        let text = |value: &Value| value.as_str().map(str::to_owned);
        let id = self
            .headers
            .get("x-patchpilot-notice-id")
            .cloned()
            .or_else(|| text(&body["id"]));
        let kind = text(&body["kind"]).or_else(|| text(&body["data"]["kind"]));
        let message = text(&body["message"])
            .or_else(|| text(&body["data"]["message"]))
            .or_else(|| text(&body["text"]).map(|t| unescape_slack(&t)))
            .map(|m| m.replace(['\r', '\n'], " "));
        let tag: Vec<String> = kind.into_iter().chain(id).collect();
        let noun = match self.is_notice() {
            true => "notice",
            false => "request",
        };
        let what = message
            .unwrap_or_else(|| format!("{} {} ({} bytes)", self.method, self.path, self.bytes));
        let answer = match (self.status, self.error) {
            (Some(code), _) if (200..300).contains(&code) => String::new(),
            (Some(code), _) => format!(" (answered {code})"),
            (None, Some(ConnectFailure::Refused)) => " (connection refused)".into(),
            (None, _) => " (no answer)".into(),
        };
        match tag.is_empty() {
            true => format!("{noun} to {}: {what}{answer}", self.receiver),
            false => format!(
                "{noun} to {}: {}: {what}{answer}",
                self.receiver,
                tag.join(" ")
            ),
        }
    }
}

/// Slack's `&lt;`, `&gt;` and `&amp;` as the characters they stand for.
fn unescape_slack(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The receivers of a scenario and what they got.
pub struct Receivers {
    specs: Vec<ReceiverSpec>,
    start: Timestamp,
    received: Mutex<Vec<Received>>,
    told: broadcast::Sender<Received>,
}

impl Receivers {
    /// The receivers `specs`, of a scenario that started at `start`.
    pub fn new(specs: &[ReceiverSpec], start: Timestamp) -> Self {
        Receivers {
            specs: specs.to_vec(),
            start,
            received: Mutex::new(Vec::new()),
            told: broadcast::channel(1024).0,
        }
    }

    /// The receiver a host name names (`chat.receiver.sandbox`, any case, with or without
    /// a final dot), if the scenario has it.
    pub fn named(&self, host: &str) -> Option<&str> {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let name = host.strip_suffix(RECEIVER_DOMAIN)?.strip_suffix('.')?;
        self.specs
            .iter()
            .find(|r| r.name == name)
            .map(|r| r.name.as_str())
    }

    /// Every request the receiver `name` got, in order.
    pub fn received(&self, name: &str) -> Vec<Received> {
        self.lock()
            .iter()
            .filter(|r| r.receiver == name)
            .cloned()
            .collect()
    }

    /// Every request of every receiver, in order.
    pub fn all(&self) -> Vec<Received> {
        self.lock().clone()
    }

    /// The requests to come, as they arrive.
    pub fn subscribe(&self) -> broadcast::Receiver<Received> {
        self.told.subscribe()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Received>> {
        // A panic while holding the lock leaves a consistent list: pushes are atomic.
        self.received
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Answers a request to the receiver `name` at `now`, and records it.
    pub(super) async fn answer(
        &self,
        name: &str,
        now: Timestamp,
        parts: &http::request::Parts,
        body: &Bytes,
    ) -> Result<http::Response<Full<Bytes>>, HttpError> {
        let down = self.specs.iter().find(|r| r.name == name).and_then(|r| {
            r.down
                .iter()
                .find(|d| within(d.after, d.before, self.start, now))
        });
        let (status, error) = match down {
            None => (Some(200), None),
            Some(ReceiverDown {
                status: Some(code), ..
            }) => (Some(*code), None),
            Some(ReceiverDown { error, .. }) => {
                (None, Some(error.unwrap_or(ConnectFailure::Timeout)))
            }
        };
        let mut headers: BTreeMap<String, String> = BTreeMap::new();
        for (key, value) in &parts.headers {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            headers
                .entry(key.as_str().to_owned())
                .and_modify(|v| {
                    v.push_str(", ");
                    v.push_str(&value);
                })
                .or_insert(value);
        }
        let received = Received {
            receiver: name.to_owned(),
            time: now,
            method: parts.method.to_string(),
            path: parts
                .uri
                .path_and_query()
                .map(|p| p.to_string())
                .unwrap_or_else(|| "/".into()),
            headers,
            body: match body.is_empty() {
                true => Value::Null,
                false => serde_json::from_slice(body)
                    .unwrap_or_else(|_| json!(String::from_utf8_lossy(body))),
            },
            bytes: body.len(),
            status,
            error,
        };
        self.lock().push(received.clone());
        // Nobody listening is fine: the record stays.
        let _ = self.told.send(received);
        match (status, error) {
            (Some(code), _) => {
                let text = match code {
                    200..=299 => "{}\n".to_owned(),
                    _ => format!("{code} (receivers[].down)\n"),
                };
                Ok(reply(code, "application/json", text))
            }
            (None, Some(ConnectFailure::Refused)) => {
                Err(refused(&format!("the receiver {name} is down")))
            }
            (None, _) => never().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn received(body: Value, headers: &[(&str, &str)], status: Option<u16>) -> Received {
        Received {
            receiver: "chat".into(),
            time: Timestamp::UNIX_EPOCH,
            method: "POST".into(),
            path: "/hooks/x".into(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            bytes: 12,
            body,
            status,
            error: None,
        }
    }

    #[test]
    fn a_line_tells_the_notice_in_any_of_its_formats() {
        let id = [("x-patchpilot-notice-id", "os-1/3")];
        let webhook = json!({"id": "os-1/3", "kind": "WaveStarted", "message": "os-1: wave canary (1 of 3) started"});
        assert_eq!(
            received(webhook, &[], Some(200)).line(),
            "notice to chat: WaveStarted os-1/3: os-1: wave canary (1 of 3) started"
        );
        let event =
            json!({"id": "os-1/3", "data": {"kind": "Failed", "message": "os-1: it\nfailed"}});
        assert_eq!(
            received(event, &id, Some(503)).line(),
            "notice to chat: Failed os-1/3: os-1: it failed (answered 503)"
        );
        let slack = json!({"text": "Paused: os-1: a &lt;b&gt; &amp; c"});
        assert_eq!(
            received(slack, &id, Some(200)).line(),
            "notice to chat: os-1/3: Paused: os-1: a <b> & c"
        );
        assert_eq!(
            received(json!({"attachments": []}), &id, Some(200)).line(),
            "notice to chat: os-1/3: POST /hooks/x (12 bytes)"
        );
        let mut bare = received(json!("hello"), &[], None);
        bare.error = Some(ConnectFailure::Refused);
        assert_eq!(
            bare.line(),
            "request to chat: POST /hooks/x (12 bytes) (connection refused)"
        );
        bare.error = Some(ConnectFailure::Timeout);
        assert!(bare.line().ends_with("(no answer)"));
        assert!(!bare.accepted() && !bare.is_notice());
    }

    #[test]
    fn receivers_answer_to_their_names_only() {
        let receivers = Receivers::new(
            &[ReceiverSpec {
                name: "chat".into(),
                down: vec![],
            }],
            Timestamp::UNIX_EPOCH,
        );
        for host in ["chat.receiver.sandbox", "CHAT.receiver.sandbox."] {
            assert_eq!(receivers.named(host), Some("chat"), "{host}");
        }
        for host in [
            "mail.receiver.sandbox",
            "receiver.sandbox",
            "chat.receiver.sandbox.example",
            "xchat.receiver.sandbox",
            "chat",
        ] {
            assert_eq!(receivers.named(host), None, "{host}");
        }
    }
}
