//! Reading Kubernetes objects from files, with errors that name the file and the field.
//!
//! A file holds one or more YAML documents; a document of `kind: List` (what `kubectl get -o
//! yaml` prints) stands for its items.

use std::{
    fmt, fs,
    path::{Path, PathBuf},
};

use serde::Deserialize;
use serde_json::Value;

/// Why a file could not be used. Each renders as one line naming the file.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The file could not be read.
    #[error("{file}: cannot read: {source}")]
    Read {
        /// The file.
        file: Shown,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// The file is not YAML.
    #[error("{file}: malformed YAML: {message}")]
    Yaml {
        /// The file.
        file: Shown,
        /// What the parser said, with the line and column.
        message: String,
    },
    /// An object in the file breaks one rule or more; each cause names its field.
    #[error("{file}: {object}: {causes}")]
    Invalid {
        /// The file.
        file: Shown,
        /// The object, as `Kind/name`.
        object: String,
        /// What is wrong, each cause starting with the field.
        causes: Causes,
    },
    /// The file does not hold what the command needs.
    #[error("{file}: {message}")]
    Missing {
        /// The file.
        file: Shown,
        /// What is missing.
        message: String,
    },
}

/// A path as it is shown in messages.
#[derive(Clone, Debug)]
pub struct Shown(PathBuf);

impl fmt::Display for Shown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.display())
    }
}

/// What is wrong with an object. One cause is shown on the line that names the file and the
/// object; several are counted there and follow one a line, indented:
///
/// ```text
/// window.yaml: MaintenanceWindow/nightly: 2 problems:
///   spec.timeZone: unknown time zone "Mars/Olympus"
///   spec.exclusions[0]: end must be after start
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Causes(Vec<String>);

impl Causes {
    /// Each cause, on one line of its own.
    pub fn new<C: fmt::Display>(causes: impl IntoIterator<Item = C>) -> Self {
        Causes(
            causes
                .into_iter()
                .map(|cause| one_line(&cause.to_string()))
                .collect(),
        )
    }

    /// The causes, in order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

impl fmt::Display for Causes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.as_slice() {
            [] => f.write_str("invalid"),
            [one] => f.write_str(one),
            many => {
                write!(f, "{} problems:", many.len())?;
                many.iter().try_for_each(|cause| write!(f, "\n  {cause}"))
            }
        }
    }
}

impl FileError {
    /// An invalid field of an object read from `file`.
    pub fn invalid(file: &Path, object: &Value, message: impl fmt::Display) -> Self {
        Self::invalid_each(file, object, [message])
    }

    /// An object read from `file` with several invalid fields, each a cause of its own.
    pub fn invalid_each<C: fmt::Display>(
        file: &Path,
        object: &Value,
        causes: impl IntoIterator<Item = C>,
    ) -> Self {
        Self::unusable_each(file, describe(object), causes)
    }

    /// An object of `file`, shown as `Kind/name`, that decoded but cannot be used, such as a
    /// window with an unknown time zone; `message` starts with the field.
    pub fn unusable(file: &Path, object: impl Into<String>, message: impl fmt::Display) -> Self {
        Self::unusable_each(file, object, [message])
    }

    /// An object of `file`, shown as `Kind/name`, that decoded but cannot be used for several
    /// reasons, each starting with its field.
    pub fn unusable_each<C: fmt::Display>(
        file: &Path,
        object: impl Into<String>,
        causes: impl IntoIterator<Item = C>,
    ) -> Self {
        FileError::Invalid {
            file: Shown(file.to_owned()),
            object: object.into(),
            causes: Causes::new(causes),
        }
    }

    /// The file lacks what is needed.
    pub fn missing(file: &Path, message: impl fmt::Display) -> Self {
        FileError::Missing {
            file: Shown(file.to_owned()),
            message: one_line(&message.to_string()),
        }
    }
}

/// Squeezes a message onto one line.
fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `Kind/name` of an object, for messages.
pub fn describe(object: &Value) -> String {
    let kind = object
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or("object");
    let name = object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("(unnamed)");
    match object
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
    {
        Some(namespace) => format!("{kind}/{namespace}/{name}"),
        None => format!("{kind}/{name}"),
    }
}

/// Every object in a file: each YAML document, with `kind: List` documents replaced by their
/// items and empty documents left out.
pub fn read_objects(file: &Path) -> Result<Vec<Value>, FileError> {
    let text = fs::read_to_string(file).map_err(|source| FileError::Read {
        file: Shown(file.to_owned()),
        source,
    })?;
    parse_objects(file, &text)
}

/// The objects in YAML text read from `file` (named in errors), as [`read_objects`] finds
/// them.
pub fn parse_objects(file: &Path, text: &str) -> Result<Vec<Value>, FileError> {
    let mut objects = Vec::new();
    for document in serde_yaml_ng::Deserializer::from_str(text) {
        let value = Value::deserialize(document).map_err(|error| FileError::Yaml {
            file: Shown(file.to_owned()),
            message: one_line(&error.to_string()),
        })?;
        match value {
            Value::Null => {}
            Value::Object(ref map) if map.get("kind").and_then(Value::as_str) == Some("List") => {
                match map.get("items") {
                    Some(Value::Array(items)) => objects.extend(items.iter().cloned()),
                    Some(Value::Null) | None => {}
                    Some(_) => {
                        return Err(FileError::invalid(file, &value, "items: expected a list"));
                    }
                }
            }
            Value::Object(_) => objects.push(value),
            other => {
                return Err(FileError::missing(
                    file,
                    format!(
                        "expected Kubernetes objects, found a YAML {}",
                        kind_of(&other)
                    ),
                ));
            }
        }
    }
    Ok(objects)
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Array(_) => "list",
        Value::String(_) => "string",
        Value::Number(_) => "number",
        Value::Bool(_) => "boolean",
        Value::Object(_) => "mapping",
        Value::Null => "null",
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use serde_json::json;

    use super::FileError;

    #[test]
    fn one_cause_is_one_line_and_several_are_one_a_line() {
        let object = json!({"kind": "MaintenanceWindow", "metadata": {"name": "nightly"}});
        let file = Path::new("w.yaml");
        assert_eq!(
            FileError::invalid(file, &object, "spec.cutoff: bad\n  value").to_string(),
            "w.yaml: MaintenanceWindow/nightly: spec.cutoff: bad value"
        );
        assert_eq!(
            FileError::invalid_each(
                file,
                &object,
                ["spec.timeZone: unknown", "spec.cutoff: bad"]
            )
            .to_string(),
            "w.yaml: MaintenanceWindow/nightly: 2 problems:\n  spec.timeZone: unknown\n  \
             spec.cutoff: bad"
        );
        assert_eq!(
            FileError::unusable_each(file, "PatchPolicy/p", ["spec.x: y"]).to_string(),
            "w.yaml: PatchPolicy/p: spec.x: y"
        );
    }
}
