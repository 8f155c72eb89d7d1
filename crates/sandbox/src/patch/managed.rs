//! The entries of `metadata.managedFields`: who owns which fields, how they wrote them.

use serde_json::{Map, Value, json};

use super::fieldset::FieldSet;

/// How a manager wrote its fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Operation {
    /// Server-side apply.
    Apply,
    /// Create, update or a patch that is not an apply.
    Update,
}

impl Operation {
    fn as_str(self) -> &'static str {
        match self {
            Operation::Apply => "Apply",
            Operation::Update => "Update",
        }
    }
}

/// One `managedFields` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Entry {
    pub(super) manager: String,
    pub(super) operation: Operation,
    pub(super) api_version: String,
    pub(super) time: Option<String>,
    pub(super) subresource: Option<String>,
    pub(super) fields: FieldSet,
}

impl Entry {
    /// A new entry without fields.
    pub(super) fn new(
        manager: &str,
        operation: Operation,
        api_version: &str,
        subresource: Option<&str>,
    ) -> Entry {
        Entry {
            manager: manager.to_owned(),
            operation,
            api_version: api_version.to_owned(),
            time: None,
            subresource: subresource.map(str::to_owned),
            fields: FieldSet::default(),
        }
    }

    /// Whether the entry is the one of this manager, operation and subresource (and API
    /// version, for updates: an applier keeps one entry whatever version it applies).
    pub(super) fn is(
        &self,
        manager: &str,
        operation: Operation,
        api_version: &str,
        subresource: Option<&str>,
    ) -> bool {
        self.manager == manager
            && self.operation == operation
            && self.subresource.as_deref() == subresource
            && (operation == Operation::Apply || self.api_version == api_version)
    }

    /// The entry as the API server names it in conflict messages: `"kubectl"`,
    /// `"patchpilot" with subresource "status"`, `"kube-controller-manager" using apps/v1`.
    pub(super) fn owner(&self) -> String {
        let mut out = quote(&self.manager);
        if let Some(subresource) = &self.subresource {
            out.push_str(&format!(" with subresource {}", quote(subresource)));
        }
        if self.operation == Operation::Update {
            out.push_str(&format!(" using {}", self.api_version));
        }
        out
    }

    /// The order conflicts are reported in: by manager, then the rest of the identity.
    pub(super) fn identity(&self) -> (&str, Operation, &str, Option<&str>) {
        (
            &self.manager,
            self.operation,
            &self.api_version,
            self.subresource.as_deref(),
        )
    }

    fn to_json(&self) -> Value {
        let mut out = json!({
            "manager": self.manager,
            "operation": self.operation.as_str(),
            "apiVersion": self.api_version,
            "fieldsType": "FieldsV1",
            "fieldsV1": self.fields.to_fields_v1(),
        });
        if let Some(map) = out.as_object_mut() {
            if let Some(time) = &self.time {
                map.insert("time".to_owned(), Value::from(time.as_str()));
            }
            if let Some(subresource) = &self.subresource {
                map.insert("subresource".to_owned(), Value::from(subresource.as_str()));
            }
        }
        out
    }

    fn from_json(value: &Value) -> Option<Entry> {
        let map = value.as_object()?;
        let text = |key: &str| match map.get(key) {
            None | Some(Value::Null) => Some(None),
            Some(Value::String(s)) => Some(Some(s.clone())),
            Some(_) => None,
        };
        let operation = match text("operation")?.as_deref() {
            Some("Apply") => Operation::Apply,
            Some("Update") => Operation::Update,
            _ => return None,
        };
        if !matches!(text("fieldsType")?.as_deref(), None | Some("FieldsV1")) {
            return None;
        }
        let fields = match map.get("fieldsV1") {
            None | Some(Value::Null) => FieldSet::default(),
            Some(v1 @ Value::Object(_)) => FieldSet::from_fields_v1(v1),
            // The store keeps `fieldsV1` as its JSON text (`store::compact`).
            Some(Value::String(text)) => match serde_json::from_str::<Value>(text) {
                Ok(v1 @ Value::Object(_)) => FieldSet::from_fields_v1(&v1),
                _ => return None,
            },
            Some(_) => return None,
        };
        Some(Entry {
            manager: text("manager")?.unwrap_or_default(),
            operation,
            api_version: text("apiVersion")?.unwrap_or_default(),
            time: text("time")?,
            subresource: text("subresource")?.filter(|s| !s.is_empty()),
            fields,
        })
    }

    /// The API server's order of entries: applies first, then by time, manager, API version
    /// and subresource.
    fn sort_key(&self) -> (Operation, i64, &str, &str, &str) {
        let seconds = self
            .time
            .as_deref()
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
            .map_or(0, |t| t.as_second());
        (
            self.operation,
            seconds,
            &self.manager,
            &self.api_version,
            self.subresource.as_deref().unwrap_or(""),
        )
    }
}

/// Go's `%q` for the plain strings manager names are.
fn quote(text: &str) -> String {
    Value::from(text).to_string()
}

/// The entries of a `managedFields` list, or `None` if one of them cannot be read.
pub(super) fn decode(list: &Value) -> Option<Vec<Entry>> {
    list.as_array()?.iter().map(Entry::from_json).collect()
}

/// The entries of `object`'s `metadata.managedFields`; entries that cannot be read are
/// skipped.
pub(super) fn read(object: &Value) -> Vec<Entry> {
    object
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .map(|list| list.iter().filter_map(Entry::from_json).collect())
        .unwrap_or_default()
}

/// `object` without `metadata.managedFields`.
pub(super) fn without(object: &Value) -> Value {
    let mut out = object.clone();
    if let Some(Value::Object(meta)) = out.get_mut("metadata") {
        meta.remove("managedFields");
    }
    out
}

/// Writes `entries`, in the API server's order, as `object`'s `metadata.managedFields`
/// (removed when there are none).
pub(super) fn write(object: &mut Value, mut entries: Vec<Entry>) {
    let Value::Object(root) = object else { return };
    entries.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    if entries.is_empty() {
        if let Some(Value::Object(meta)) = root.get_mut("metadata") {
            meta.remove("managedFields");
        }
        return;
    }
    let list = Value::Array(entries.iter().map(Entry::to_json).collect());
    let meta = root
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !meta.is_object() {
        *meta = Value::Object(Map::new());
    }
    if let Value::Object(meta) = meta {
        meta.insert("managedFields".to_owned(), list);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_sort() {
        let list = json!([
            {"manager": "kubectl-client-side-apply", "operation": "Update", "apiVersion": "apps/v1",
             "time": "2025-01-01T00:00:01Z", "fieldsType": "FieldsV1",
             "fieldsV1": {"f:spec": {"f:replicas": {}}}},
            {"manager": "patchpilot", "operation": "Apply", "apiVersion": "patchpilot.io/v1",
             "time": "2025-01-01T00:00:02Z", "fieldsType": "FieldsV1",
             "fieldsV1": {"f:status": {"f:phase": {}}}, "subresource": "status"}
        ]);
        let entries = decode(&list).unwrap();
        assert_eq!(
            entries[1].owner(),
            "\"patchpilot\" with subresource \"status\""
        );
        assert_eq!(
            entries[0].owner(),
            "\"kubectl-client-side-apply\" using apps/v1"
        );
        let mut object = json!({"metadata": {"name": "x"}});
        write(&mut object, entries);
        let written = &object["metadata"]["managedFields"];
        assert_eq!(written[0], list[1]);
        assert_eq!(written[1], list[0]);
        assert_eq!(read(&object).len(), 2);
        assert_eq!(without(&object), json!({"metadata": {"name": "x"}}));
        write(&mut object, Vec::new());
        assert_eq!(object, json!({"metadata": {"name": "x"}}));
    }

    #[test]
    fn unreadable_entries() {
        assert!(decode(&json!([{"operation": "Sideways"}])).is_none());
        assert!(decode(&json!([{"operation": "Apply", "fieldsType": "FieldsV2"}])).is_none());
        let object = json!({"metadata": {"managedFields": [{"operation": "x"}, 5]}});
        assert!(read(&object).is_empty());
    }
}
