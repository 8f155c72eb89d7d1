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
    /// An object in the file breaks a rule; `field` names where.
    #[error("{file}: {object}: {message}")]
    Invalid {
        /// The file.
        file: Shown,
        /// The object, as `Kind/name`.
        object: String,
        /// What is wrong, starting with the field.
        message: String,
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

impl FileError {
    /// An invalid field of an object read from `file`.
    pub fn invalid(file: &Path, object: &Value, message: impl fmt::Display) -> Self {
        FileError::Invalid {
            file: Shown(file.to_owned()),
            object: describe(object),
            message: one_line(&message.to_string()),
        }
    }

    /// An object of `file`, shown as `Kind/name`, that decoded but cannot be used, such as a
    /// window with an unknown time zone; `message` starts with the field.
    pub fn unusable(file: &Path, object: impl Into<String>, message: impl fmt::Display) -> Self {
        FileError::Invalid {
            file: Shown(file.to_owned()),
            object: object.into(),
            message: one_line(&message.to_string()),
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
