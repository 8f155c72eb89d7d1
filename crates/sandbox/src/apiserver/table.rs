//! `Table` output for `kubectl get`: the server decides the columns and renders the cells,
//! as the API server does for clients that ask for `application/json;as=Table;v=v1;
//! g=meta.k8s.io`.
//!
//! Built-in kinds get the columns of the API server's printers ([`super::printers`]),
//! custom resources their CRD's `additionalPrinterColumns` (or AGE when it has none), and
//! other kinds NAME and CREATED AT. Every column is in the table; kubectl shows those of
//! priority 0, and the others with `-o wide`. Ages are computed on the sandbox's clock.
//! Each row carries the object as `includeObject` asks: `PartialObjectMetadata` (the
//! default, which kubectl reads namespaces and labels from), the whole `Object`, or `None`.

use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use super::{Request, jsonpath::JsonPath, media, printers};
use crate::{
    resources::{PrinterColumn, ResourceType},
    status::ApiError,
};

/// Whether the client asked for a `Table` (before any other form it can be given).
pub fn wanted(request: &Request) -> bool {
    media::negotiate(request) == media::Form::Table
}

/// What each row carries of its object (`includeObject`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Include {
    /// Nothing.
    None,
    /// Its metadata, as a `PartialObjectMetadata`.
    #[default]
    Metadata,
    /// The whole object.
    Object,
}

/// The table options of a request: `None` when it did not ask for a table, an error when
/// `includeObject` is not one of `None`, `Metadata` and `Object`.
pub fn options(request: &Request) -> Result<Option<Include>, ApiError> {
    if !wanted(request) {
        return Ok(None);
    }
    match request.params.get("includeObject") {
        None | Some("" | "Metadata") => Ok(Some(Include::Metadata)),
        Some("None") => Ok(Some(Include::None)),
        Some("Object") => Ok(Some(Include::Object)),
        Some(other) => Err(ApiError::bad_request(format!(
            "unrecognized includeObject value: {other:?}"
        ))),
    }
}

/// A column of a table.
#[derive(Clone, Debug, PartialEq)]
pub struct Column {
    /// The header, as kubectl prints it upper-cased.
    pub name: String,
    /// `string`, `integer`, `number`, `boolean` or `date`.
    pub kind: String,
    /// `name` for the column holding the object's name, else empty.
    pub format: &'static str,
    /// 0 for the columns kubectl shows; more for those of `-o wide`.
    pub priority: i32,
    /// What the column says.
    pub description: String,
}

impl Column {
    /// A column.
    pub fn new(name: &str, kind: &str, priority: i32, description: &str) -> Self {
        Column {
            name: name.to_owned(),
            kind: kind.to_owned(),
            format: "",
            priority,
            description: description.to_owned(),
        }
    }

    /// The NAME column.
    pub fn name() -> Self {
        Column {
            format: "name",
            ..Column::new(
                "Name",
                "string",
                0,
                "Name must be unique within a namespace. It identifies the object.",
            )
        }
    }

    /// The AGE column of the built-in printers: how long ago the object was created.
    pub fn age() -> Self {
        Column::new(
            "Age",
            "string",
            0,
            "CreationTimestamp is when the server created the object.",
        )
    }

    fn render(&self) -> Value {
        json!({
            "name": self.name,
            "type": self.kind,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        })
    }
}

/// One row: the cells in column order, and conditions of the row (`Completed` for pods
/// that have finished).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Row {
    /// The cells; `null` prints as nothing.
    pub cells: Vec<Value>,
    /// `TableRowCondition`s.
    pub conditions: Vec<Value>,
}

impl From<Vec<Value>> for Row {
    fn from(cells: Vec<Value>) -> Self {
        Row {
            cells,
            conditions: Vec::new(),
        }
    }
}

/// The row of one object at an instant.
pub type RowOf = Box<dyn Fn(&Value, Timestamp) -> Row>;

/// How the objects of a kind become rows.
pub struct Printer {
    /// The columns.
    pub columns: Vec<Column>,
    /// The row of one object at an instant.
    pub row: RowOf,
}

impl Printer {
    /// The printer of a resource's objects.
    pub fn of(resource: &ResourceType) -> Self {
        if resource.is_custom() {
            return custom(&resource.printer_columns);
        }
        printers::builtin(&resource.group, &resource.kind).unwrap_or_else(default)
    }
}

/// The objects as a `Table`, with `metadata` (the list's resource version and continue
/// token) and objects in rows as `include` says, ages counted to `now`.
pub fn render(
    resource: &ResourceType,
    objects: &[Value],
    include: Include,
    metadata: Option<Value>,
    now: Timestamp,
) -> Value {
    let printer = Printer::of(resource);
    let rows: Vec<Value> = objects
        .iter()
        .map(|object| {
            let mut row = (printer.row)(object, now);
            row.cells.resize(printer.columns.len(), Value::Null);
            let mut rendered = json!({"cells": row.cells});
            if !row.conditions.is_empty() {
                rendered["conditions"] = json!(row.conditions);
            }
            rendered["object"] = match include {
                Include::None => Value::Null,
                Include::Metadata => json!({
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": object["metadata"],
                }),
                Include::Object => object.clone(),
            };
            rendered
        })
        .collect();
    let columns: Vec<Value> = printer.columns.iter().map(Column::render).collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata.unwrap_or_else(|| json!({})),
        "columnDefinitions": columns,
        "rows": rows,
    })
}

/// NAME and CREATED AT: the API server's table for kinds without a printer of their own.
fn default() -> Printer {
    Printer {
        columns: vec![
            Column::name(),
            Column::new(
                "Created At",
                "date",
                0,
                "CreationTimestamp is when the server created the object.",
            ),
        ],
        row: Box::new(|object, _| {
            let meta = &object["metadata"];
            vec![meta["name"].clone(), meta["creationTimestamp"].clone()].into()
        }),
    }
}

/// The table of a custom resource: NAME, then its printer columns, or AGE when it has
/// none (as the API server defaults them).
fn custom(printer_columns: &[PrinterColumn]) -> Printer {
    let age = PrinterColumn {
        name: "Age".into(),
        kind: "date".into(),
        json_path: ".metadata.creationTimestamp".into(),
        priority: 0,
        description: "CreationTimestamp is when the server created the object.".into(),
    };
    let printer_columns = if printer_columns.is_empty() {
        vec![age]
    } else {
        printer_columns.to_vec()
    };
    let mut columns = vec![Column::name()];
    columns.extend(printer_columns.iter().map(|c| {
        let description = match c.description.as_str() {
            "" => format!(
                "Custom resource definition column (in JSONPath format): {}",
                c.json_path
            ),
            text => text.to_owned(),
        };
        Column::new(&c.name, &c.kind, c.priority, &description)
    }));
    let paths: Vec<(String, Option<JsonPath>)> = printer_columns
        .iter()
        .map(|c| (c.kind.clone(), JsonPath::parse(&c.json_path)))
        .collect();
    Printer {
        columns,
        row: Box::new(move |object, now| {
            let mut cells = vec![object["metadata"]["name"].clone()];
            cells.extend(paths.iter().map(|(kind, path)| {
                let value = path.as_ref().and_then(|p| p.first(object));
                value.map_or(Value::Null, |v| custom_cell(kind, v, now))
            }));
            cells.into()
        }),
    }
}

/// A cell of a custom resource's column: the value as the column's type says, `null` when
/// it is of another type; strings print any value, dates print as ages.
fn custom_cell(kind: &str, value: &Value, now: Timestamp) -> Value {
    match (kind, value) {
        (_, Value::Null) => Value::Null,
        ("string", Value::String(_)) => value.clone(),
        // Other values print as JSON: numbers and booleans as themselves, objects compact.
        ("string", _) => json!(value.to_string()),
        ("integer", Value::Number(n)) => n
            .as_i64()
            .map(Value::from)
            .or_else(|| n.as_f64().map(|f| json!(f.trunc() as i64)))
            .unwrap_or(Value::Null),
        ("number", Value::Number(n)) => n.as_f64().map_or(Value::Null, |f| json!(f)),
        ("boolean", Value::Bool(_)) => value.clone(),
        ("date", Value::String(text)) => match text.parse::<Timestamp>() {
            Ok(at) => json!(human_duration(now.duration_since(at))),
            Err(_) => json!("<invalid>"),
        },
        _ => Value::Null,
    }
}

/// How long ago `timestamp` (RFC 3339) was, as kubectl prints ages; `<unknown>` when
/// there is none.
pub fn since(timestamp: &Value, now: Timestamp) -> String {
    match timestamp.as_str().and_then(|t| t.parse::<Timestamp>().ok()) {
        Some(at) => human_duration(now.duration_since(at)),
        None => "<unknown>".to_owned(),
    }
}

/// A duration with two or three significant figures, as Kubernetes prints ages: `45s`,
/// `2m5s`, `15m`, `3h20m`, `2d4h`, `400d`, `3y20d`; `<invalid>` more than a second in the
/// future.
pub fn human_duration(duration: SignedDuration) -> String {
    let seconds = duration.as_secs();
    if seconds < -1 {
        return "<invalid>".to_owned();
    }
    if seconds < 0 {
        return "0s".to_owned();
    }
    if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        return match seconds % 60 {
            0 => format!("{minutes}m"),
            s => format!("{minutes}m{s}s"),
        };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = minutes / 60;
    if hours < 8 {
        return match minutes % 60 {
            0 => format!("{hours}h"),
            m => format!("{hours}h{m}m"),
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        return match hours % 24 {
            0 => format!("{}d", hours / 24),
            h => format!("{}d{h}h", hours / 24),
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        return match (hours / 24) % 365 {
            0 => format!("{}y", hours / 24 / 365),
            d => format!("{}y{d}d", hours / 24 / 365),
        };
    }
    format!("{}y", hours / 24 / 365)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_as_kubernetes_prints_them() {
        let cases = [
            (-5, "<invalid>"),
            (-1, "0s"),
            (0, "0s"),
            (119, "119s"),
            (125, "2m5s"),
            (180, "3m"),
            (600, "10m"),
            (179 * 60, "179m"),
            (3 * 3600 + 20 * 60, "3h20m"),
            (5 * 3600, "5h"),
            (47 * 3600, "47h"),
            (52 * 3600, "2d4h"),
            (72 * 3600, "3d"),
            (400 * 86400, "400d"),
            (3 * 365 * 86400 + 20 * 86400, "3y20d"),
            (9 * 365 * 86400, "9y"),
        ];
        for (seconds, age) in cases {
            assert_eq!(
                human_duration(SignedDuration::from_secs(seconds)),
                age,
                "{seconds}s"
            );
        }
    }

    #[test]
    fn custom_columns_follow_their_type() {
        let now: Timestamp = "2026-01-01T01:00:00Z".parse().unwrap();
        assert_eq!(
            custom_cell("date", &json!("2026-01-01T00:00:00Z"), now),
            json!("60m")
        );
        assert_eq!(
            custom_cell("date", &json!("yesterday"), now),
            json!("<invalid>")
        );
        assert_eq!(custom_cell("integer", &json!(2.7), now), json!(2));
        assert_eq!(custom_cell("integer", &json!("2"), now), Value::Null);
        assert_eq!(custom_cell("boolean", &json!(true), now), json!(true));
        assert_eq!(custom_cell("string", &json!(3), now), json!("3"));
        assert_eq!(
            custom_cell("string", &json!({"a": 1}), now),
            json!(r#"{"a":1}"#)
        );
        assert_eq!(custom_cell("number", &json!(1), now), json!(1.0));
    }
}
