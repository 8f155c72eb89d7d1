//! Core Events (and `events.k8s.io` Events, converted): when they were last and first
//! seen, their type and reason, the object they are about, their source and message.

use jiff::Timestamp;
use serde_json::{Value, json};

use super::{Column, Row, int, name, since, text};

pub(super) fn columns() -> Vec<Column> {
    vec![
        Column::new(
            "Last Seen",
            "string",
            0,
            "The time at which the most recent occurrence of this event was recorded.",
        ),
        Column::new("Type", "string", 0, "Type of this event (Normal, Warning)."),
        Column::new(
            "Reason",
            "string",
            0,
            "A short, machine understandable string that gives the reason for the transition \
             into the object's current status.",
        ),
        Column::new(
            "Object",
            "string",
            0,
            "The object that this event is about.",
        ),
        Column::new(
            "Subobject",
            "string",
            1,
            "The part of the object the event is about, like a container.",
        ),
        Column::new("Source", "string", 1, "The component reporting this event."),
        Column::new(
            "Message",
            "string",
            0,
            "A human-readable description of the status of this operation.",
        ),
        Column::new(
            "First Seen",
            "string",
            1,
            "The time at which the event was first recorded.",
        ),
        Column::new(
            "Count",
            "string",
            1,
            "The number of times this event has occurred.",
        ),
        Column {
            format: "name",
            ..Column::new(
                "Name",
                "string",
                1,
                "Name must be unique within a namespace.",
            )
        },
    ]
}

/// A core event: when it was last and first seen, about what, from whom.
pub(super) fn row(object: &Value, now: Timestamp) -> Row {
    let first = match &object["firstTimestamp"] {
        Value::String(_) => since(&object["firstTimestamp"], now),
        _ => since(&object["eventTime"], now),
    };
    let mut last = match &object["lastTimestamp"] {
        Value::String(_) => since(&object["lastTimestamp"], now),
        _ => first.clone(),
    };
    let series = &object["series"];
    let count = if series.is_object() {
        last = since(&series["lastObservedTime"], now);
        int(&series["count"])
    } else {
        match int(&object["count"]) {
            0 => 1,
            n => n,
        }
    };
    let involved = &object["involvedObject"];
    let kind = text(&involved["kind"]).to_lowercase();
    let target = match text(&involved["name"]) {
        "" => kind,
        name => format!("{kind}/{name}"),
    };
    let first_of = |a: &Value, b: &Value| {
        if text(a).is_empty() {
            text(b).to_owned()
        } else {
            text(a).to_owned()
        }
    };
    let component = first_of(
        &object["source"]["component"],
        &object["reportingComponent"],
    );
    let instance = first_of(&object["source"]["host"], &object["reportingInstance"]);
    let source = if instance.is_empty() {
        component
    } else {
        format!("{component}, {instance}")
    };
    vec![
        json!(last),
        object["type"].clone(),
        object["reason"].clone(),
        json!(target),
        json!(text(&involved["fieldPath"])),
        json!(source),
        json!(text(&object["message"]).trim()),
        json!(first),
        json!(count),
        name(object),
    ]
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apiserver::printers::cells;

    #[test]
    fn events_name_their_object_and_source() {
        let event = json!({
            "metadata": {"name": "web.1"},
            "involvedObject": {"kind": "Deployment", "name": "web"},
            "type": "Normal", "reason": "ScalingReplicaSet", "message": " Scaled up ",
            "firstTimestamp": "2026-01-01T00:00:00Z",
            "lastTimestamp": "2026-01-01T00:59:00Z",
            "count": 3,
            "source": {"component": "deployment-controller"},
        });
        let cells = cells("", "Event", &event);
        assert_eq!(
            cells,
            [
                json!("60s"),
                json!("Normal"),
                json!("ScalingReplicaSet"),
                json!("deployment/web"),
                json!(""),
                json!("deployment-controller"),
                json!("Scaled up"),
                json!("60m"),
                json!(3),
                json!("web.1")
            ]
        );
    }
}
