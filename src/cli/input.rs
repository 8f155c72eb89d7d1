//! Reading Kubernetes objects from files, with errors that name the file and the field.
//!
//! A file holds one or more YAML documents; a document of `kind: List` (what `kubectl get -o
//! yaml` prints) stands for its items. patchpilot's own kinds are admitted against their CRD
//! schema first, exactly as an API server would, so a file refused here would be refused by a
//! cluster with the same words.

use std::{
    fmt, fs,
    path::{Path, PathBuf},
};

use kube::Resource;
use serde::{Deserialize, de::DeserializeOwned};
use serde_json::Value;

use crate::{api, schema::FieldErrors};

/// Why a file could not be used. Each renders as one line naming the file.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
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

impl InputError {
    /// An invalid field of an object read from `file`.
    pub fn invalid(file: &Path, object: &Value, message: impl fmt::Display) -> Self {
        InputError::Invalid {
            file: Shown(file.to_owned()),
            object: describe(object),
            message: one_line(&message.to_string()),
        }
    }

    /// An object of `file`, shown as `Kind/name`, that decoded but cannot be used, such as a
    /// window with an unknown time zone; `message` starts with the field.
    pub fn unusable(file: &Path, object: impl Into<String>, message: impl fmt::Display) -> Self {
        InputError::Invalid {
            file: Shown(file.to_owned()),
            object: object.into(),
            message: one_line(&message.to_string()),
        }
    }

    /// The file lacks what is needed.
    pub fn missing(file: &Path, message: impl fmt::Display) -> Self {
        InputError::Missing {
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
pub fn read_objects(file: &Path) -> Result<Vec<Value>, InputError> {
    let text = fs::read_to_string(file).map_err(|source| InputError::Read {
        file: Shown(file.to_owned()),
        source,
    })?;
    parse_objects(file, &text)
}

/// The objects in YAML text read from `file` (named in errors), as [`read_objects`] finds
/// them.
pub fn parse_objects(file: &Path, text: &str) -> Result<Vec<Value>, InputError> {
    let mut objects = Vec::new();
    for document in serde_yaml_ng::Deserializer::from_str(text) {
        let value = Value::deserialize(document).map_err(|error| InputError::Yaml {
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
                        return Err(InputError::invalid(file, &value, "items: expected a list"));
                    }
                }
            }
            Value::Object(_) => objects.push(value),
            other => {
                return Err(InputError::missing(
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

/// Whether an object is of kind `K`.
pub fn is_kind<K: Resource<DynamicType = ()>>(object: &Value) -> bool {
    object.get("kind").and_then(Value::as_str) == Some(&*K::kind(&()))
}

/// Decodes an object into `K`, naming the field that does not fit. patchpilot's own kinds are
/// first admitted against their CRD schema (unknown fields, defaults, OpenAPI and CEL rules).
pub fn decode<K>(file: &Path, object: &Value) -> Result<K, InputError>
where
    K: Resource<DynamicType = ()> + DeserializeOwned,
{
    let expected = K::api_version(&());
    let found = object
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    if found != expected {
        let message =
            format!("apiVersion: Unsupported value: {found:?}: supported values: {expected:?}");
        return Err(InputError::invalid(file, object, message));
    }
    let admitted = match api::schema(&K::kind(&())) {
        Some(schema) => {
            let admission = schema.admit(object, None);
            let errors = admission.strict_errors();
            if !errors.is_empty() {
                return Err(InputError::invalid(file, object, FieldErrors(errors)));
            }
            admission.object
        }
        None => object.clone(),
    };
    serde_path_to_error::deserialize(&admitted).map_err(|error| {
        let path = error.path().to_string();
        let message = error.inner().to_string();
        InputError::invalid(file, object, format!("{path}: {message}"))
    })
}

/// The one object of kind `K` in a file.
pub fn read_one<K>(file: &Path) -> Result<K, InputError>
where
    K: Resource<DynamicType = ()> + DeserializeOwned,
{
    let objects = read_objects(file)?;
    let mut matching = objects.iter().filter(|object| is_kind::<K>(object));
    let kind = K::kind(&());
    match (matching.next(), matching.next()) {
        (Some(object), None) => decode(file, object),
        (None, _) => Err(InputError::missing(file, format!("no {kind} in the file"))),
        (Some(_), Some(_)) => Err(InputError::missing(
            file,
            format!("more than one {kind} in the file; expected exactly one"),
        )),
    }
}
