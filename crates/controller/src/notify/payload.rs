//! The request for one notice, as each type of notifier wants it.
//!
//! Every request carries the notice's id, `<rollout>/<seq>`, the same on every delivery
//! attempt, so that a receiver can drop a repeat: in the headers `X-Patchpilot-Notice-Id`
//! and `Idempotency-Key`, and in the body. Each is sent with `User-Agent:
//! patchpilot/<version>`.
//!
//! - `Webhook`: patchpilot's own JSON ([`notice_json`]), `application/json`: `id`, `kind`,
//!   `severity` (`info` or `warning`), `time`, `message`, `notifier`, `policy`, `rollout`,
//!   `version`, `classification`, `emergency`, `changeRef`, `target`, `opening` (`start`,
//!   `end`), and the rollout's `phase`, `wave`, `progress` and `targets` counts as they are
//!   when the notice is sent (a notice delivered late shows the rollout as it is then). A
//!   field that does not apply is `null`, so every body has the same keys.
//! - `Slack`: an incoming webhook's message: `text` (the fallback that notifications show:
//!   the kind, the rollout and the message) and Block Kit `blocks`: a `header` with the title, a `section` with
//!   the message, a `section` of `fields` (the facts), and a `context` naming the notice.
//!   Text in `mrkdwn` has Slack's control characters `&`, `<` and `>` escaped, so that a
//!   message never turns into a link or a mention.
//! - `Teams`: a message with one Adaptive Card (version 1.4) attachment, which both the
//!   incoming webhooks of Teams and the "when a Teams webhook request is received" workflow
//!   accept: a bold title (in the attention colour for a warning), the message, a `FactSet`
//!   of the facts, and a subtle line naming the notice.
//! - `CloudEvents`: one CloudEvent 1.0 in structured mode (`application/cloudevents+json;
//!   charset=utf-8`): `id` the notice's id; `source` the policy, as its API path
//!   (`/apis/patchpilot.dev/v1alpha1/patchpolicies/<policy>`); `subject` the rollout;
//!   `type` `dev.patchpilot.notice.<kind in lower case>` (`dev.patchpilot.notice.wavestarted`,
//!   reverse-DNS of the API group, as the specification recommends); `time` when it
//!   happened; `datacontenttype` `application/json`; and as `data` the Webhook's JSON.
//!
//! The title of the chat formats is the kind in words and the rollout (`Wave started:
//! workers-os-1a2b3c4d`); the facts are the policy, version, classification, change
//! reference, target and opening (in UTC), those that apply.

use jiff::{Timestamp, tz::TimeZone};
use kube::ResourceExt;
use patchpilot_api::{Interval, Notice, NotifierType, PatchRollout};
use serde_json::{Value, json};

/// One notice to deliver, with what a receiver needs to know of its rollout.
#[derive(Clone, Copy, Debug)]
pub struct Message<'a> {
    /// The Notifier it goes to.
    pub notifier: &'a str,
    /// The rollout it is about: its policy, patch (version, classification), change
    /// reference, and its phase, wave, progress and counts as they are now.
    pub rollout: &'a PatchRollout,
    /// The notice.
    pub notice: &'a Notice,
}

impl Message<'_> {
    /// The notice's id, `<rollout>/<seq>`: the same on every attempt to deliver it.
    pub fn id(&self) -> String {
        format!("{}/{}", self.rollout.name_any(), self.notice.seq)
    }

    /// The kind in words and the rollout: `Wave started: workers-os-1a2b3c4d`.
    pub fn title(&self) -> String {
        format!(
            "{}: {}",
            in_words(self.notice.kind.as_str()),
            self.rollout.name_any()
        )
    }

    /// The facts of the chat formats, those that apply: (name, value).
    pub fn facts(&self) -> Vec<(&'static str, String)> {
        let spec = &self.rollout.spec;
        let mut facts = vec![
            ("Policy", spec.policy.clone()),
            ("Version", spec.patch.version.clone()),
            ("Classification", classification(self.rollout)),
        ];
        if let Some(change) = &spec.change_ref {
            facts.push(("Change", change.clone()));
        }
        if let Some(target) = &self.notice.target {
            facts.push(("Target", target.clone()));
        }
        if let Some(opening) = &self.notice.opening {
            facts.push(("Opening", opening_utc(opening)));
        }
        facts
    }
}

/// A request to send: its body and what goes with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The body's `Content-Type`.
    pub content_type: &'static str,
    /// The other headers: `User-Agent`, `X-Patchpilot-Notice-Id` and `Idempotency-Key`.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

/// The header carrying the notice's id.
pub const NOTICE_ID_HEADER: &str = "X-Patchpilot-Notice-Id";

/// The prefix of the CloudEvents `type` of notices; the kind in lower case follows.
pub const CLOUDEVENTS_TYPE_PREFIX: &str = "dev.patchpilot.notice.";

/// The request telling `message` to a notifier of type `kind`.
pub fn request(kind: NotifierType, message: &Message<'_>) -> Request {
    let (content_type, body) = match kind {
        NotifierType::Webhook => ("application/json", notice_json(message)),
        NotifierType::Slack => ("application/json", slack(message)),
        NotifierType::Teams => ("application/json", teams(message)),
        NotifierType::CloudEvents => (
            "application/cloudevents+json; charset=utf-8",
            cloud_event(message),
        ),
    };
    let id = message.id();
    Request {
        content_type,
        headers: vec![
            ("User-Agent".into(), crate::USER_AGENT.into()),
            (NOTICE_ID_HEADER.into(), id.clone()),
            ("Idempotency-Key".into(), id),
        ],
        // A `Value` always serializes.
        body: serde_json::to_vec(&body).unwrap_or_default(),
    }
}

/// patchpilot's JSON of a notice: the `Webhook` body, and the `data` of a CloudEvent.
pub fn notice_json(message: &Message<'_>) -> Value {
    let (rollout, notice) = (message.rollout, message.notice);
    let status = rollout.status.as_ref();
    json!({
        "id": message.id(),
        "kind": notice.kind.as_str(),
        "severity": if notice.kind.warning() { "warning" } else { "info" },
        "time": notice.time.0.to_string(),
        "message": notice.message,
        "notifier": message.notifier,
        "policy": rollout.spec.policy,
        "rollout": rollout.name_any(),
        "version": rollout.spec.patch.version,
        "classification": classification(rollout),
        "emergency": rollout.spec.patch.emergency,
        "changeRef": rollout.spec.change_ref,
        "target": notice.target,
        "opening": notice.opening.as_ref().map(|o| json!({
            "start": o.start.0.to_string(),
            "end": o.end.0.to_string(),
        })),
        "phase": status.map(|s| s.phase),
        "wave": status.and_then(|s| s.wave.as_ref()),
        "progress": status.and_then(|s| s.progress.as_deref()),
        "targets": status.map(|s| &s.targets),
    })
}

fn cloud_event(message: &Message<'_>) -> Value {
    json!({
        "specversion": "1.0",
        "id": message.id(),
        "source": format!(
            "/apis/{}/{}/patchpolicies/{}",
            patchpilot_api::GROUP,
            patchpilot_api::VERSION,
            message.rollout.spec.policy
        ),
        "type": format!(
            "{CLOUDEVENTS_TYPE_PREFIX}{}",
            message.notice.kind.as_str().to_ascii_lowercase()
        ),
        "subject": message.rollout.name_any(),
        "time": message.notice.time.0.to_string(),
        "datacontenttype": "application/json",
        "data": notice_json(message),
    })
}

// ---- Slack ---------------------------------------------------------------------------

/// Block Kit's limits: a header's text, a section's text, a field's text.
const SLACK_HEADER_MAX: usize = 150;
const SLACK_SECTION_MAX: usize = 3000;
const SLACK_FIELD_MAX: usize = 2000;

fn slack(message: &Message<'_>) -> Value {
    let warning = message.notice.kind.warning();
    let title = message.title();
    let header = match warning {
        true => format!(":warning: {title}"),
        false => title.clone(),
    };
    let fields: Vec<Value> = message
        .facts()
        .into_iter()
        .map(|(name, value)| {
            let text = format!("*{name}*\n{}", mrkdwn(&value, SLACK_FIELD_MAX - 32));
            json!({"type": "mrkdwn", "text": text})
        })
        .collect();
    // The fallback names the rollout once: most messages start with its name.
    let said = &message.notice.message;
    let fallback = match said.starts_with(&message.rollout.name_any()) {
        true => format!("{}: {said}", in_words(message.notice.kind.as_str())),
        false => format!("{title}: {said}"),
    };
    let text = mrkdwn(&fallback, SLACK_SECTION_MAX);
    json!({
        "text": text,
        "blocks": [
            {
                "type": "header",
                "text": {"type": "plain_text", "text": clip(&header, SLACK_HEADER_MAX), "emoji": true},
            },
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": mrkdwn(&message.notice.message, SLACK_SECTION_MAX)},
            },
            {"type": "section", "fields": fields},
            {
                "type": "context",
                "elements": [{
                    "type": "mrkdwn",
                    "text": mrkdwn(
                        &format!("patchpilot notice {} via {}", message.id(), message.notifier),
                        SLACK_SECTION_MAX,
                    ),
                }],
            },
        ],
    })
}

/// `text` for Slack's `mrkdwn`: its control characters `&`, `<` and `>` written as HTML
/// entities (and nothing else, as Slack asks), at most `max` characters, cut with `…`.
pub fn mrkdwn(text: &str, max: usize) -> String {
    let mut out = String::new();
    let mut length = 0;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let piece = match c {
            '&' => "&amp;",
            '<' => "&lt;",
            '>' => "&gt;",
            _ => "",
        };
        let width = if piece.is_empty() { 1 } else { piece.len() };
        // Room for the ellipsis when more follows.
        let more = chars.peek().is_some();
        if length + width + usize::from(more) > max {
            out.push('…');
            return out;
        }
        match piece {
            "" => out.push(c),
            piece => out.push_str(piece),
        }
        length += width;
    }
    out
}

// ---- Teams ---------------------------------------------------------------------------

fn teams(message: &Message<'_>) -> Value {
    let facts: Vec<Value> = message
        .facts()
        .into_iter()
        .map(|(name, value)| json!({"title": name, "value": value}))
        .collect();
    let color = if message.notice.kind.warning() {
        "Attention"
    } else {
        "Default"
    };
    let card = json!({
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "msteams": {"width": "Full"},
        "body": [
            {
                "type": "TextBlock",
                "text": message.title(),
                "weight": "Bolder",
                "size": "Medium",
                "color": color,
                "wrap": true,
            },
            {"type": "TextBlock", "text": message.notice.message, "wrap": true},
            {"type": "FactSet", "facts": facts},
            {
                "type": "TextBlock",
                "text": format!("patchpilot notice {} via {}", message.id(), message.notifier),
                "isSubtle": true,
                "size": "Small",
                "wrap": true,
            },
        ],
    });
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": card,
        }],
    })
}

// ---- Words ---------------------------------------------------------------------------

/// `WaveStarted` as words: `Wave started`.
fn in_words(name: &str) -> String {
    let mut words = String::new();
    for (i, c) in name.chars().enumerate() {
        if i > 0 && c.is_ascii_uppercase() {
            words.push(' ');
            words.push(c.to_ascii_lowercase());
        } else {
            words.push(c);
        }
    }
    words
}

fn classification(rollout: &PatchRollout) -> String {
    format!("{:?}", rollout.spec.patch.classification)
}

/// An opening in UTC: `2026-11-28 00:00–04:00 UTC`, the end's date too when it differs.
fn opening_utc(opening: &Interval) -> String {
    let utc = |t: Timestamp| t.to_zoned(TimeZone::UTC);
    let (start, end) = (utc(opening.start.0), utc(opening.end.0));
    let end = match start.date() == end.date() {
        true => end.strftime("%H:%M").to_string(),
        false => end.strftime("%Y-%m-%d %H:%M").to_string(),
    };
    format!("{}–{end} UTC", start.strftime("%Y-%m-%d %H:%M"))
}

/// `text`, at most `max` characters, cut with `…`.
fn clip(text: &str, max: usize) -> String {
    match text.chars().count() <= max {
        true => text.to_owned(),
        false => {
            let mut clipped: String = text.chars().take(max.saturating_sub(1)).collect();
            clipped.push('…');
            clipped
        }
    }
}

#[cfg(test)]
mod tests {
    use patchpilot_engine::notify::NoticeKind;

    use super::*;

    fn rollout(change_ref: Option<&str>) -> PatchRollout {
        serde_json::from_value(json!({
            "apiVersion": "patchpilot.dev/v1alpha1",
            "kind": "PatchRollout",
            "metadata": {"name": "workers-os-1a2b"},
            "spec": {
                "policy": "workers-os",
                "patch": {"version": "2026-11-security", "classification": "Critical"},
                "changeRef": change_ref,
            },
            "status": {
                "phase": "Progressing",
                "wave": {"index": 2, "name": "stage-1", "total": 3},
                "progress": "1/12",
                "targets": {"total": 12, "excluded": 0, "upToDate": 0, "pending": 9,
                            "inProgress": 1, "updated": 1, "failed": 1, "rolledBack": 0},
            },
        }))
        .unwrap()
    }

    fn notice(kind: NoticeKind, message: &str) -> Notice {
        serde_json::from_value(json!({
            "seq": 7,
            "kind": kind,
            "time": "2026-11-28T00:12:00Z",
            "message": message,
        }))
        .unwrap()
    }

    fn failed() -> Notice {
        let mut notice = notice(
            NoticeKind::TargetFailed,
            "workers-os-1a2b: Node/general-3 failed: updater exited 1 <oom> & gone",
        );
        notice.target = Some("Node/general-3".into());
        notice
    }

    fn announcement() -> Notice {
        let mut notice = notice(
            NoticeKind::Announcement,
            "workers-os-1a2b 2026-11-security will start at 01:00 CET on Sat 2026-11-28",
        );
        notice.opening = Some(
            serde_json::from_value(
                json!({"start": "2026-11-28T00:00:00Z", "end": "2026-11-28T04:00:00Z"}),
            )
            .unwrap(),
        );
        notice
    }

    fn body(kind: NotifierType, rollout: &PatchRollout, notice: &Notice) -> (Request, Value) {
        let message = Message {
            notifier: "ops-chat",
            rollout,
            notice,
        };
        let request = request(kind, &message);
        let body = serde_json::from_slice(&request.body).unwrap();
        (request, body)
    }

    fn header<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
        request
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn every_request_carries_the_id_and_names_patchpilot() {
        let rollout = rollout(Some("CHG-1234"));
        let notice = failed();
        for kind in [
            NotifierType::Webhook,
            NotifierType::Slack,
            NotifierType::Teams,
            NotifierType::CloudEvents,
        ] {
            let (request, body) = body(kind, &rollout, &notice);
            assert_eq!(
                header(&request, NOTICE_ID_HEADER),
                Some("workers-os-1a2b/7")
            );
            assert_eq!(
                header(&request, "Idempotency-Key"),
                Some("workers-os-1a2b/7")
            );
            let agent = header(&request, "User-Agent").unwrap();
            assert!(agent.starts_with("patchpilot/"), "{agent}");
            assert!(
                body.to_string().contains("workers-os-1a2b/7"),
                "{kind:?}: the body names the id: {body}"
            );
        }
    }

    #[test]
    fn the_webhook_json_tells_the_notice_and_its_rollout() {
        let rollout = rollout(Some("CHG-1234"));
        let (request, body) = body(NotifierType::Webhook, &rollout, &failed());
        assert_eq!(request.content_type, "application/json");
        assert_eq!(
            body,
            json!({
                "id": "workers-os-1a2b/7",
                "kind": "TargetFailed",
                "severity": "warning",
                "time": "2026-11-28T00:12:00Z",
                "message": "workers-os-1a2b: Node/general-3 failed: updater exited 1 <oom> & gone",
                "notifier": "ops-chat",
                "policy": "workers-os",
                "rollout": "workers-os-1a2b",
                "version": "2026-11-security",
                "classification": "Critical",
                "emergency": false,
                "changeRef": "CHG-1234",
                "target": "Node/general-3",
                "opening": null,
                "phase": "Progressing",
                "wave": {"index": 2, "name": "stage-1", "total": 3},
                "progress": "1/12",
                "targets": rollout.status.as_ref().map(|s| serde_json::to_value(&s.targets).unwrap()),
            })
        );

        let (_, body) = self::body(NotifierType::Webhook, &self::rollout(None), &announcement());
        assert_eq!(body["severity"], "info");
        assert_eq!(body["changeRef"], Value::Null);
        assert_eq!(body["target"], Value::Null);
        assert_eq!(
            body["opening"],
            json!({"start": "2026-11-28T00:00:00Z", "end": "2026-11-28T04:00:00Z"})
        );
    }

    #[test]
    fn a_rollout_without_status_has_null_progress() {
        let mut rollout = rollout(None);
        rollout.status = None;
        let (_, body) = body(NotifierType::Webhook, &rollout, &announcement());
        for key in ["phase", "wave", "progress", "targets"] {
            assert_eq!(body[key], Value::Null, "{key}");
        }
    }

    #[test]
    fn slack_gets_a_fallback_text_and_blocks_with_its_characters_escaped() {
        let rollout = rollout(Some("CHG-<1>"));
        let (request, body) = body(NotifierType::Slack, &rollout, &failed());
        assert_eq!(request.content_type, "application/json");
        let text = body["text"].as_str().unwrap();
        assert_eq!(
            text,
            "Target failed: workers-os-1a2b: Node/general-3 failed: \
             updater exited 1 &lt;oom&gt; &amp; gone"
        );
        let blocks = body["blocks"].as_array().unwrap();
        let types: Vec<&str> = blocks.iter().map(|b| b["type"].as_str().unwrap()).collect();
        assert_eq!(types, ["header", "section", "section", "context"]);
        assert_eq!(blocks[0]["text"]["type"], "plain_text");
        assert_eq!(
            blocks[0]["text"]["text"],
            ":warning: Target failed: workers-os-1a2b"
        );
        assert_eq!(blocks[1]["text"]["type"], "mrkdwn");
        assert!(
            blocks[1]["text"]["text"]
                .as_str()
                .unwrap()
                .ends_with("exited 1 &lt;oom&gt; &amp; gone")
        );
        let fields: Vec<&str> = blocks[2]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["text"].as_str().unwrap())
            .collect();
        assert_eq!(
            fields,
            [
                "*Policy*\nworkers-os",
                "*Version*\n2026-11-security",
                "*Classification*\nCritical",
                "*Change*\nCHG-&lt;1&gt;",
                "*Target*\nNode/general-3",
            ]
        );
        assert_eq!(
            blocks[3]["elements"][0]["text"],
            "patchpilot notice workers-os-1a2b/7 via ops-chat"
        );
        // No raw control character is left in any mrkdwn text.
        for text in fields.iter().chain([&text]) {
            assert!(!text.contains('<') && !text.contains('>'), "{text}");
        }
    }

    #[test]
    fn slack_texts_keep_within_block_kit_limits() {
        assert_eq!(mrkdwn("a<b", 10), "a&lt;b");
        assert_eq!(mrkdwn("abcdef", 4), "abc…");
        // An entity is never cut in two.
        assert_eq!(mrkdwn("ab&cd", 5), "ab…");
        assert_eq!(mrkdwn("abcd", 4), "abcd");
        let rollout = rollout(None);
        let long = notice(NoticeKind::Paused, &"<&>".repeat(1000));
        let (_, body) = body(NotifierType::Slack, &rollout, &long);
        let section = body["blocks"][1]["text"]["text"].as_str().unwrap();
        assert!(section.chars().count() <= SLACK_SECTION_MAX);
        assert!(section.ends_with('…'));
        // A message that does not name the rollout gets it from the title.
        let text = body["text"].as_str().unwrap();
        assert!(
            text.starts_with("Paused: workers-os-1a2b: &lt;&amp;&gt;"),
            "{text}"
        );
        assert!(text.chars().count() <= SLACK_SECTION_MAX);
    }

    #[test]
    fn an_announcement_says_its_opening_in_utc() {
        let rollout = rollout(None);
        let (_, body) = body(NotifierType::Slack, &rollout, &announcement());
        assert_eq!(
            body["blocks"][0]["text"]["text"],
            "Announcement: workers-os-1a2b"
        );
        let fields = body["blocks"][2]["fields"].to_string();
        assert!(
            fields.contains("*Opening*\\n2026-11-28 00:00–04:00 UTC"),
            "{fields}"
        );
        assert!(!fields.contains("Change"), "{fields}");
        let across = Interval {
            start: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                "2026-11-28T23:00:00Z".parse().unwrap(),
            ),
            end: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                "2026-11-29T03:00:00Z".parse().unwrap(),
            ),
        };
        assert_eq!(
            opening_utc(&across),
            "2026-11-28 23:00–2026-11-29 03:00 UTC"
        );
    }

    #[test]
    fn teams_gets_an_adaptive_card() {
        let rollout = rollout(Some("CHG-1234"));
        let (request, body) = body(NotifierType::Teams, &rollout, &failed());
        assert_eq!(request.content_type, "application/json");
        assert_eq!(body["type"], "message");
        let attachment = &body["attachments"][0];
        assert_eq!(
            attachment["contentType"],
            "application/vnd.microsoft.card.adaptive"
        );
        let card = &attachment["content"];
        assert_eq!(card["type"], "AdaptiveCard");
        assert_eq!(card["version"], "1.4");
        let body = card["body"].as_array().unwrap();
        assert_eq!(body[0]["text"], "Target failed: workers-os-1a2b");
        assert_eq!(body[0]["color"], "Attention");
        assert_eq!(body[1]["text"], failed().message);
        assert_eq!(body[2]["type"], "FactSet");
        assert_eq!(
            body[2]["facts"][3],
            json!({"title": "Change", "value": "CHG-1234"})
        );
        assert_eq!(
            body[3]["text"],
            "patchpilot notice workers-os-1a2b/7 via ops-chat"
        );
        let (_, calm) = self::body(NotifierType::Teams, &rollout, &announcement());
        assert_eq!(
            calm["attachments"][0]["content"]["body"][0]["color"],
            "Default"
        );
    }

    #[test]
    fn cloudevents_are_structured_with_every_required_attribute() {
        let rollout = rollout(Some("CHG-1234"));
        let (request, event) = body(NotifierType::CloudEvents, &rollout, &failed());
        assert_eq!(
            request.content_type,
            "application/cloudevents+json; charset=utf-8"
        );
        assert_eq!(event["specversion"], "1.0");
        assert_eq!(event["id"], "workers-os-1a2b/7");
        assert_eq!(
            event["source"],
            "/apis/patchpilot.dev/v1alpha1/patchpolicies/workers-os"
        );
        assert_eq!(event["type"], "dev.patchpilot.notice.targetfailed");
        assert_eq!(event["subject"], "workers-os-1a2b");
        assert_eq!(event["time"], "2026-11-28T00:12:00Z");
        assert_eq!(event["datacontenttype"], "application/json");
        let message = Message {
            notifier: "ops-chat",
            rollout: &rollout,
            notice: &failed(),
        };
        assert_eq!(event["data"], notice_json(&message));
        // Only the attributes of the specification and `data`.
        let keys: Vec<&String> = event.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 8, "{keys:?}");
    }

    #[test]
    fn kinds_read_as_words() {
        assert_eq!(in_words("WaveStarted"), "Wave started");
        assert_eq!(in_words("ComplianceOverdue"), "Compliance overdue");
        assert_eq!(in_words("Succeeded"), "Succeeded");
        for kind in NoticeKind::ALL {
            let event = format!(
                "{CLOUDEVENTS_TYPE_PREFIX}{}",
                kind.as_str().to_ascii_lowercase()
            );
            assert!(
                event.bytes().all(|b| b.is_ascii_lowercase() || b == b'.'),
                "{event}"
            );
        }
    }
}
