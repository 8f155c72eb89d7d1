//! Reading patchpilot's objects from files, with errors that name the file and the field.
//!
//! Files are read as [`patchpilot_schema::manifest`] reads them; patchpilot's own kinds are
//! admitted against their CRD schema first, exactly as an API server would, so a file refused
//! here would be refused by a cluster with the same words.

use std::path::Path;

use kube::Resource;
use patchpilot_schema::{CrdSchema, FieldErrors};
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
    let admitted = match schema(&K::kind(&())) {
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
