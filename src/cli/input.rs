//! Reading patchpilot's objects from files, with errors that name the file and the field.
//!
//! Files are read as [`patchpilot_schema::manifest`] reads them; patchpilot's own kinds are
//! admitted against their CRD schema first, exactly as an API server would, so a file refused
//! here would be refused by a cluster with the same words.

use std::path::Path;

use kube::Resource;
use patchpilot_engine::InvalidSpec;
use patchpilot_schema::{CrdSchema, FieldError};
use serde::de::DeserializeOwned;
use serde_json::Value;

pub use patchpilot_schema::manifest::{
    FileError as InputError, describe, parse_objects, read_objects,
};

/// The schema checker of one of patchpilot's kinds, from its generated CRD.
pub fn schema(kind: &str) -> Option<CrdSchema> {
    patchpilot_api::crds()
        .into_iter()
        .find(|crd| crd.spec.names.kind == kind)
        .and_then(|crd| CrdSchema::new(&crd, patchpilot_api::VERSION))
}

/// Whether an object is of kind `K`.
pub fn is_kind<K: Resource<DynamicType = ()>>(object: &Value) -> bool {
    object.get("kind").and_then(Value::as_str) == Some(&*K::kind(&()))
}

/// Decodes an object into `K`, naming the field that does not fit. patchpilot's own kinds are
/// first admitted against their CRD schema (unknown fields, defaults, OpenAPI and CEL rules);
/// every rule the object breaks is a cause of its own.
pub fn decode<K>(file: &Path, object: &Value) -> Result<K, InputError>
where
    K: Resource<DynamicType = ()> + DeserializeOwned,
{
    let (admitted, errors) = admit::<K>(file, object)?;
    if !errors.is_empty() {
        return Err(InputError::invalid_each(file, object, errors));
    }
    deserialize(file, object, &admitted)
}

/// Decodes an object as [`decode`] does, then `check`s it as the operator would (the
/// conversion to the engine's types), telling every cause at once: the schema's refusals,
/// then the check's on fields the schema did not name, as far as the object decodes. A
/// cluster would refuse the first and the operator report the others later; a file is
/// better told everything in one go.
pub fn decode_checked<K, T>(
    file: &Path,
    object: &Value,
    check: impl FnOnce(&K) -> Result<T, Vec<InvalidSpec>>,
) -> Result<(K, T), InputError>
where
    K: Resource<DynamicType = ()> + DeserializeOwned,
{
    let (admitted, errors) = admit::<K>(file, object)?;
    let decoded = match deserialize::<K>(file, object, &admitted) {
        Ok(decoded) => decoded,
        Err(_) if !errors.is_empty() => {
            return Err(InputError::invalid_each(file, object, errors));
        }
        Err(error) => return Err(error),
    };
    let problems = match check(&decoded) {
        Ok(checked) if errors.is_empty() => return Ok((decoded, checked)),
        Ok(_) => Vec::new(),
        Err(problems) => problems,
    };
    let named: Vec<&str> = errors
        .iter()
        .map(|e| e.path.as_str())
        .filter(|path| !path.is_empty())
        .collect();
    let mut causes: Vec<String> = errors.iter().map(ToString::to_string).collect();
    causes.extend(
        problems
            .iter()
            .filter(|p| {
                !named
                    .iter()
                    .any(|n| p.field.starts_with(n) || n.starts_with(p.field.as_str()))
            })
            .map(ToString::to_string),
    );
    Err(InputError::invalid_each(file, object, causes))
}

/// The object as an API server would store it, and the rules it breaks; an error when it is
/// not of kind `K`'s API version at all.
fn admit<K>(file: &Path, object: &Value) -> Result<(Value, Vec<FieldError>), InputError>
where
    K: Resource<DynamicType = ()>,
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
    Ok(match schema(&K::kind(&())) {
        Some(schema) => {
            let admission = schema.admit(object, None);
            let errors = admission.strict_errors();
            (admission.object, errors)
        }
        None => (object.clone(), Vec::new()),
    })
}

/// `admitted` (the object as admitted) into `K`, naming the field that does not fit.
fn deserialize<K: DeserializeOwned>(
    file: &Path,
    object: &Value,
    admitted: &Value,
) -> Result<K, InputError> {
    serde_path_to_error::deserialize(admitted).map_err(|error| {
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
    decode(file, &the_one::<K>(file)?)
}

/// The one object of kind `K` in a file, decoded and checked as [`decode_checked`] does.
pub fn read_one_checked<K, T>(
    file: &Path,
    check: impl FnOnce(&K) -> Result<T, Vec<InvalidSpec>>,
) -> Result<(K, T), InputError>
where
    K: Resource<DynamicType = ()> + DeserializeOwned,
{
    decode_checked(file, &the_one::<K>(file)?, check)
}

/// The one object of kind `K` in a file, as read.
fn the_one<K>(file: &Path) -> Result<Value, InputError>
where
    K: Resource<DynamicType = ()>,
{
    let objects = read_objects(file)?;
    let mut matching = objects.iter().filter(|object| is_kind::<K>(object));
    let kind = K::kind(&());
    match (matching.next(), matching.next()) {
        (Some(object), None) => Ok(object.clone()),
        (None, _) => Err(InputError::missing(file, format!("no {kind} in the file"))),
        (Some(_), Some(_)) => Err(InputError::missing(
            file,
            format!("more than one {kind} in the file; expected exactly one"),
        )),
    }
}
