//! Creating and changing objects: names and `generateName`, namespaces, the status
//! subresource, admission against the resource's schema, optimistic concurrency,
//! generations, `managedFields`, and what the API server sets on new namespaces and CRDs.

use std::sync::Arc;

use serde_json::{Value, json};

use super::{Inner, Json, Propagation, Store, finalizers, is_crd, meta, meta_mut, name_of, time};
use crate::{
    patch,
    resources::{ResourceKey, ResourceType},
    status::ApiError,
};

/// How unknown fields in a write are treated (`fieldValidation`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FieldValidation {
    /// Refuse the write (kubectl's default).
    #[default]
    Strict,
    /// Drop them and warn.
    Warn,
    /// Drop them.
    Ignore,
}

/// Who writes, and how.
#[derive(Clone, Debug)]
pub struct Write<'a> {
    /// The field manager recorded in `managedFields`.
    pub manager: &'a str,
    /// `status` for the status subresource.
    pub subresource: Option<&'a str>,
    /// Check and compute, but store nothing.
    pub dry_run: bool,
    /// How unknown fields are treated.
    pub validation: FieldValidation,
    /// A write of the simulated cluster itself (kubelets, controllers): it may set status
    /// on create.
    pub internal: bool,
    /// The write is a server-side apply whose `managedFields` are already computed.
    pub applied: bool,
}

impl<'a> Write<'a> {
    /// A write by a simulated cluster component.
    pub fn internal(manager: &'a str) -> Self {
        Write {
            manager,
            subresource: None,
            dry_run: false,
            validation: FieldValidation::Ignore,
            internal: true,
            applied: false,
        }
    }

    /// The same write to the status subresource.
    pub fn status(mut self) -> Self {
        self.subresource = Some("status");
        self
    }
}

/// The outcome of a write.
#[derive(Clone, Debug)]
pub struct Written {
    /// The object as stored.
    pub object: Arc<Json>,
    /// Warnings for the client (unknown fields under `fieldValidation=Warn`).
    pub warnings: Vec<String>,
    /// The write created the object.
    pub created: bool,
}

/// Whether two objects differ in more than server-maintained metadata.
fn changed(old: &Value, new: &Value) -> bool {
    let (old_meta, new_meta) = (&old["metadata"], &new["metadata"]);
    let meta_changed = if old_meta.is_object() && new_meta.is_object() {
        differ_but_for(old_meta, new_meta, &["resourceVersion", "managedFields"])
    } else {
        old_meta != new_meta
    };
    meta_changed || differ_but_for(old, new, &["metadata"])
}

/// Whether two values differ in more than the fields `skipped` (when both are objects),
/// compared in place: every write asks, and copies of whole objects cost more.
fn differ_but_for(old: &Value, new: &Value, skipped: &[&str]) -> bool {
    match (old.as_object(), new.as_object()) {
        (Some(old), Some(new)) => {
            let kept = |(k, _): &(&String, &Value)| !skipped.contains(&k.as_str());
            !old.iter().filter(kept).eq(new.iter().filter(kept))
        }
        _ => old != new,
    }
}

/// Whether the API server keeps `metadata.generation` for the resource: for custom resources
/// and the kinds whose spec a controller acts on and reports `observedGeneration` for. Nodes,
/// namespaces, ConfigMaps, Secrets, Events, Leases and the like have none.
fn has_generation(resource: &ResourceType) -> bool {
    resource.is_custom()
        || matches!(
            (resource.group.as_str(), resource.kind.as_str()),
            ("", "Pod")
                | (
                    "apps",
                    "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet"
                )
                | ("batch", "Job" | "CronJob")
                | ("policy", "PodDisruptionBudget")
                | ("apiextensions.k8s.io", "CustomResourceDefinition")
        )
}

/// Whether anything outside `metadata` and `status` differs: a spec change, which bumps
/// `metadata.generation`.
fn spec_changed(old: &Value, new: &Value) -> bool {
    fn spec(v: &Value) -> impl Iterator<Item = (&String, &Value)> {
        v.as_object()
            .into_iter()
            .flatten()
            .filter(|(k, _)| !matches!(k.as_str(), "metadata" | "status"))
    }
    !spec(old).eq(spec(new))
}

impl Store {
    /// Creates an object in `namespace` (empty for cluster-scoped resources).
    pub fn create(
        &self,
        resource: &ResourceType,
        namespace: &str,
        mut object: Value,
        write: &Write<'_>,
    ) -> Result<Written, ApiError> {
        let mut inner = self.lock();
        let now = self.clock.now();
        if !meta(&object)["resourceVersion"]
            .as_str()
            .unwrap_or("")
            .is_empty()
        {
            return Err(ApiError::bad_request(
                "resourceVersion should not be set on objects to be created",
            ));
        }
        let name = match meta(&object)["name"].as_str().filter(|n| !n.is_empty()) {
            Some(name) => name.to_owned(),
            None => match meta(&object)["generateName"].as_str() {
                Some(prefix) => {
                    inner.uids += 1;
                    let name = format!("{prefix}{}", suffix(inner.uids));
                    meta_mut(&mut object).insert("name".into(), json!(name));
                    name
                }
                None => return Err(nameless(resource)),
            },
        };
        check_namespace(resource, namespace, &mut object)?;
        if resource.namespaced && !inner.exists_namespace(namespace) {
            return Err(ApiError::namespace_not_found(namespace));
        }
        let key = (namespace.to_owned(), name.clone());
        if inner
            .objects
            .get(&resource.storage)
            .is_some_and(|o| o.contains_key(&key))
        {
            return Err(ApiError::already_exists(resource, &name));
        }
        if resource.status && !write.internal {
            object.as_object_mut().map(|o| o.remove("status"));
        }
        if resource.storage.group.is_empty() && resource.storage.plural == "namespaces" {
            activate_namespace(&mut object);
        }
        let (mut object, warnings) = admit(resource, None, object, write)?;
        if is_crd(resource) {
            accept_crd(&mut object, &time(now));
        }
        inner.uids += 1;
        let uid = uid(inner.uids);
        let m = meta_mut(&mut object);
        m.insert("uid".into(), json!(uid));
        m.insert("creationTimestamp".into(), json!(time(now)));
        if has_generation(resource) {
            m.insert("generation".into(), json!(1));
        } else {
            m.remove("generation");
        }
        for server_set in ["deletionTimestamp", "deletionGracePeriodSeconds"] {
            m.remove(server_set);
        }
        if !write.applied {
            m.remove("managedFields");
            let api_version = resource.api_version();
            patch::record_update(
                None,
                &mut object,
                write.manager,
                write.subresource,
                &time(now),
                &api_version,
                resource.types.as_ref(),
            );
        }
        if write.dry_run {
            return Ok(Written {
                object: Arc::new(Json::from(object)),
                warnings,
                created: true,
            });
        }
        let stored = inner.store(resource, key, object, None);
        Ok(Written {
            object: stored,
            warnings,
            created: true,
        })
    }

    /// Replaces an object (`PUT`), or its status with `write.subresource = Some("status")`.
    pub fn replace(
        &self,
        resource: &ResourceType,
        namespace: &str,
        name: &str,
        object: Value,
        write: &Write<'_>,
    ) -> Result<Written, ApiError> {
        self.modify(resource, namespace, name, write, |old| {
            let old = old.ok_or_else(|| ApiError::not_found(resource, name))?;
            let sent = meta(&object)["resourceVersion"].as_str().unwrap_or("");
            if !sent.is_empty() && sent != meta(old)["resourceVersion"].as_str().unwrap_or("") {
                return Err(ApiError::conflict(resource, name));
            }
            Ok(object)
        })
    }

    /// Reads the object (if any), lets `change` compute its new state, and stores that: the
    /// heart of updates, patches and server-side apply. `change` gets `None` when the object
    /// does not exist; returning an object then creates it (server-side apply).
    pub fn modify(
        &self,
        resource: &ResourceType,
        namespace: &str,
        name: &str,
        write: &Write<'_>,
        change: impl FnOnce(Option<&Value>) -> Result<Value, ApiError>,
    ) -> Result<Written, ApiError> {
        let now = self.clock.now();
        let key = (namespace.to_owned(), name.to_owned());
        let old = {
            let inner = self.lock();
            inner
                .objects
                .get(&resource.storage)
                .and_then(|o| o.get(&key))
                .cloned()
        };
        let Some(old) = old else {
            let created = change(None)?;
            return self.create(resource, namespace, created, write);
        };
        let mut inner = self.lock();
        // The object may have changed between the two locks; optimistic concurrency is the
        // caller's through resourceVersion, but the state must be the latest.
        let old = inner
            .objects
            .get(&resource.storage)
            .and_then(|o| o.get(&key))
            .cloned()
            .unwrap_or(old);
        let stored = old;
        let old = stored.to_value();
        let mut new = change(Some(&old))?;
        if name_of(&new) != name {
            let sent = name_of(&new).to_owned();
            return Err(ApiError::bad_request(format!(
                "the name of the object ({sent}) does not match the name on the URL ({name})"
            )));
        }
        check_namespace(resource, namespace, &mut new)?;
        let sent_rv = meta(&new)["resourceVersion"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        if !sent_rv.is_empty() && sent_rv != meta(&old)["resourceVersion"].as_str().unwrap_or("") {
            return Err(ApiError::conflict(resource, name));
        }
        // The main resource and the status subresource each change only their part.
        if resource.status {
            match write.subresource {
                Some("status") => {
                    let status = new.get("status").cloned();
                    let managed = meta(&new)["managedFields"].clone();
                    new = old.clone();
                    match status {
                        Some(status) => new["status"] = status,
                        None => drop(new.as_object_mut().map(|o| o.remove("status"))),
                    }
                    if write.applied {
                        meta_mut(&mut new).insert("managedFields".into(), managed);
                    }
                }
                _ if !write.internal => match old.get("status") {
                    Some(status) => new["status"] = status.clone(),
                    None => drop(new.as_object_mut().map(|o| o.remove("status"))),
                },
                _ => {}
            }
        }
        let (mut new, warnings) = admit(resource, Some(&old), new, write)?;
        let generation =
            meta(&old)["generation"].as_i64().unwrap_or(1) + i64::from(spec_changed(&old, &new));
        let m = meta_mut(&mut new);
        for field in [
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
        ] {
            match old["metadata"].get(field) {
                Some(value) => m.insert(field.into(), value.clone()),
                None => m.remove(field),
            };
        }
        if has_generation(resource) {
            m.insert("generation".into(), json!(generation));
        } else {
            m.remove("generation");
        }
        m.insert(
            "resourceVersion".into(),
            old["metadata"]["resourceVersion"].clone(),
        );
        if !write.applied {
            m.insert(
                "managedFields".into(),
                old["metadata"]["managedFields"].clone(),
            );
            let api_version = resource.api_version();
            patch::record_update(
                Some(&old),
                &mut new,
                write.manager,
                write.subresource,
                &time(now),
                &api_version,
                resource.types.as_ref(),
            );
        }
        if !changed(&old, &new) {
            return Ok(Written {
                object: stored,
                warnings,
                created: false,
            });
        }
        if write.dry_run {
            return Ok(Written {
                object: Arc::new(Json::from(new)),
                warnings,
                created: false,
            });
        }
        let finished = !meta(&new)["deletionTimestamp"].is_null()
            && finalizers(&new) == 0
            && !inner.terminating_pod(resource, &new, now);
        let stored = inner.store(resource, key.clone(), new, Some(stored));
        if finished {
            inner.remove(resource, &key, Propagation::Background, now);
        }
        Ok(Written {
            object: stored,
            warnings,
            created: false,
        })
    }
}

impl Inner {
    fn exists_namespace(&self, namespace: &str) -> bool {
        let key = ResourceKey {
            group: String::new(),
            plural: "namespaces".into(),
        };
        self.objects
            .get(&key)
            .is_some_and(|o| o.contains_key(&(String::new(), namespace.to_owned())))
    }
}

/// The status the API server gives a new CustomResourceDefinition it serves.
fn accept_crd(crd: &mut Value, now: &str) {
    let names = crd["spec"]["names"].clone();
    let versions: Vec<Value> = crd["spec"]["versions"]
        .as_array()
        .map(|v| {
            v.iter()
                .filter(|v| v["storage"] == true)
                .map(|v| v["name"].clone())
                .collect()
        })
        .unwrap_or_default();
    let condition = |kind: &str, reason: &str, message: &str| json!({"type": kind, "status": "True", "lastTransitionTime": now, "reason": reason, "message": message});
    crd["status"] = json!({
        "acceptedNames": names,
        "storedVersions": versions,
        "conditions": [
            condition("NamesAccepted", "NoConflicts", "no conflicts found"),
            condition("Established", "InitialNamesAccepted", "the initial names have been accepted"),
        ],
    });
}

/// The phase the API server gives a new Namespace, `Active`, unless it has one.
fn activate_namespace(namespace: &mut Value) {
    let Some(object) = namespace.as_object_mut() else {
        return;
    };
    match object.entry("status").or_insert_with(|| json!({})) {
        Value::Object(status) => {
            status.entry("phase").or_insert_with(|| json!("Active"));
        }
        status @ Value::Null => *status = json!({"phase": "Active"}),
        _ => {}
    }
}

/// Sets or checks an object's namespace against the request's.
fn check_namespace(
    resource: &ResourceType,
    namespace: &str,
    object: &mut Value,
) -> Result<(), ApiError> {
    if resource.namespaced {
        match meta(object)["namespace"].as_str() {
            Some(sent) if !sent.is_empty() && sent != namespace => {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            _ => {
                meta_mut(object).insert("namespace".into(), json!(namespace));
            }
        }
    } else {
        meta_mut(object).remove("namespace");
    }
    Ok(())
}

/// Checks a write against the resource's schema: unknown fields, defaults, OpenAPI and CEL
/// rules for custom resources; `apiVersion` and `kind` for all.
fn admit(
    resource: &ResourceType,
    old: Option<&Value>,
    object: Value,
    write: &Write<'_>,
) -> Result<(Value, Vec<String>), ApiError> {
    let name = name_of(&object).to_owned();
    let mut object = object;
    object["apiVersion"] = json!(resource.api_version());
    object["kind"] = json!(resource.kind);
    let Some(schema) = &resource.schema else {
        return Ok((object, Vec::new()));
    };
    let admission = schema.admit(&object, old);
    let mut warnings = Vec::new();
    if !admission.unknown_fields.is_empty() {
        if write.applied {
            let paths: Vec<String> = admission
                .unknown_fields
                .iter()
                .map(|f| f.path.clone())
                .collect();
            let namespace = meta(&object)["namespace"].as_str().unwrap_or("");
            return Err(ApiError::untyped_apply(resource, namespace, &name, &paths));
        }
        let fields: Vec<String> = admission
            .unknown_fields
            .iter()
            .map(|f| f.to_string())
            .collect();
        match write.validation {
            FieldValidation::Strict => {
                let kind = &resource.kind;
                return Err(ApiError::bad_request(format!(
                    "{kind} in version \"{}\" cannot be handled as a {kind}: strict decoding error: {}",
                    resource.version,
                    fields.join(", ")
                )));
            }
            FieldValidation::Warn => warnings.extend(fields),
            FieldValidation::Ignore => {}
        }
    }
    if !admission.errors.is_empty() {
        return Err(ApiError::invalid(resource, &name, &admission.errors));
    }
    Ok((admission.object, warnings))
}

fn uid(counter: u64) -> String {
    let hash = patchpilot_engine::naming::fnv1a(&counter.to_le_bytes());
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        hash >> 32,
        (hash >> 16) & 0xffff,
        hash & 0xfff,
        (counter >> 12) & 0xfff,
        counter & 0xffff_ffff_ffff
    )
}

/// `422` for an object created with neither a name nor `generateName`, in the API server's
/// words (which say more than a plain `Required value`, and give no empty name).
fn nameless(resource: &ResourceType) -> ApiError {
    let cause = "Required value: name or generateName is required";
    let mut details = json!({
        "kind": resource.kind,
        "causes": [{"reason": "FieldValueRequired", "message": cause, "field": "metadata.name"}],
    });
    let mut kind = resource.kind.clone();
    if !resource.group.is_empty() {
        details["group"] = json!(resource.group);
        kind = format!("{kind}.{}", resource.group);
    }
    ApiError {
        code: 422,
        reason: "Invalid",
        message: format!("{kind} \"\" is invalid: metadata.name: {cause}"),
        details: Some(details),
    }
}

/// A five-character suffix for `generateName`, from the characters Kubernetes uses.
fn suffix(counter: u64) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut n = patchpilot_engine::naming::fnv1a(&counter.to_le_bytes());
    (0..5)
        .map(|_| {
            let c = ALPHABET[(n % ALPHABET.len() as u64) as usize] as char;
            n /= ALPHABET.len() as u64;
            c
        })
        .collect()
}
