//! Patches and server-side apply, as the Kubernetes API server applies them to JSON objects.
//!
//! - [`merge_patch`]: JSON merge patch (RFC 7386), `application/merge-patch+json`.
//! - [`json_patch`]: JSON patch (RFC 6902), `application/json-patch+json`.
//! - [`strategic_merge_patch`]: strategic merge patch, `application/strategic-merge-patch+json`,
//!   for built-in kinds: lists merge by their merge key (containers by `name`, …) and the
//!   `$patch`, `$setElementOrder`, `$retainKeys` and `$deleteFromPrimitiveList` directives.
//! - [`apply`]: server-side apply, `application/apply-patch+yaml`: field managers recorded in
//!   `metadata.managedFields`, conflicts with other managers, `force`.
//! - [`record_update`]: the `managedFields` bookkeeping of ordinary writes (operation
//!   `Update`), so that later applies see who owns what.
//!
//! Everything here is pure: objects in, objects out. How lists merge comes from a
//! [`TypeInfo`]: the built-in kinds' rules ([`builtin`]), or a CRD's schema
//! ([`from_schema`]).
//!
//! The submodules: `merge` and `json` (the two JSON patch formats), `strategic` (strategic
//! merge patch), `types` (the list rules), `fieldset` (sets of field paths and their
//! `fieldsV1` form), `typed` (objects walked along their types: field sets and
//! comparisons), `managed` (`managedFields` entries), `apply` (server-side apply and update
//! bookkeeping) and `value` (JSON helpers).

use serde_json::Value;

mod apply;
mod fieldset;
mod json;
mod managed;
mod merge;
mod strategic;
mod typed;
mod types;
mod value;

/// How the items of a list are identified when merging.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListKind {
    /// Replaced as a whole.
    Atomic,
    /// A set of scalars: items are their own keys.
    Set,
    /// A map of objects keyed by the given fields (`name`, or `containerPort` and
    /// `protocol`).
    Map(Vec<String>),
}

/// What patching needs to know about an object's type.
///
/// Paths are the field names from the object's root, without list indices
/// (`["spec", "template", "spec", "containers"]`); the items of a list share the list's
/// path.
pub trait TypeInfo {
    /// How the list at `path` merges in server-side apply (`x-kubernetes-list-type` and
    /// `x-kubernetes-list-map-keys`, the `listType`/`listMapKey` markers of the API types).
    fn list(&self, path: &[&str]) -> ListKind;

    /// How the list at `path` merges in a strategic merge patch (the `patchStrategy` and
    /// `patchMergeKey` markers). Default: as in server-side apply.
    fn strategic_list(&self, path: &[&str]) -> ListKind {
        self.list(path)
    }

    /// Whether the map (object) at `path` is replaced as a whole rather than merged field by
    /// field in server-side apply (`x-kubernetes-map-type: atomic`, `structType=atomic`).
    /// For a list, this is about its items. Default: merged.
    fn atomic_map(&self, _path: &[&str]) -> bool {
        false
    }

    /// The default of the key field `key` of the items of the map list at `path`, used to
    /// identify items that omit it (container ports without `protocol` are `TCP`).
    fn key_default(&self, _path: &[&str], _key: &str) -> Option<Value> {
        None
    }

    /// Whether the map or list at `path` exists in every object of the type (a struct field
    /// that is not a pointer in the API types, like `spec` or `spec.template`, or a list they
    /// never omit, like a pod's `containers`), so that creating it does not make the writer
    /// own it as such (no `"."` in `fieldsV1`). Default: no.
    fn always_present(&self, _path: &[&str]) -> bool {
        false
    }
}

/// Why a patch cannot be applied. The API server answers 422 (or 409 for conflicts, 400 for
/// a malformed patch).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum PatchError {
    /// The patch document itself is malformed.
    #[error("{0}")]
    Malformed(String),
    /// A JSON patch `test` operation failed, or a path does not exist.
    #[error("{0}")]
    Invalid(String),
    /// Server-side apply: fields owned by other managers would change.
    #[error("{}", describe_conflicts(.0))]
    Conflicts(Vec<Conflict>),
}

/// A field another manager owns, with a different value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflict {
    /// The manager that owns the field.
    pub manager: String,
    /// The field, as the API server prints it (`.spec.replicas`,
    /// `.spec.template.spec.containers[name="web"].image`).
    pub field: String,
    /// The owner as the API server names it in messages: the quoted manager, then
    /// `with subresource "status"` for a subresource's entry and `using apps/v1` for an
    /// `Update` entry (`"kubectl-client-side-apply" using apps/v1`).
    pub owner: String,
}

impl Conflict {
    /// The message of the conflict's `StatusCause` (type `FieldManagerConflict`, field
    /// [`Conflict::field`]): `conflict with "kubectl"`.
    pub fn cause_message(&self) -> String {
        format!("conflict with {}", self.owner)
    }
}

/// The API server's message for a failed apply: one conflict on one line, several grouped by
/// owner, one field a line.
fn describe_conflicts(conflicts: &[Conflict]) -> String {
    if let [only] = conflicts {
        return format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            only.owner, only.field
        );
    }
    let mut lines = Vec::new();
    let mut last_owner: Option<&str> = None;
    for conflict in conflicts {
        if last_owner != Some(conflict.owner.as_str()) {
            lines.push(format!("conflicts with {}:", conflict.owner));
            last_owner = Some(&conflict.owner);
        }
        lines.push(format!("- {}", conflict.field));
    }
    format!(
        "Apply failed with {} conflicts: {}",
        conflicts.len(),
        lines.join("\n")
    )
}

/// The built-in kinds' list rules (the `patchMergeKey`/`listType` markers of the Kubernetes
/// API types), for `kind` in `group` (`""` for the core group). Unknown kinds get the rules
/// of `metadata` only; every other list is atomic.
pub fn builtin(group: &str, kind: &str) -> Box<dyn TypeInfo + Send + Sync> {
    Box::new(types::Builtin::new(group, kind))
}

/// The list rules of a CRD version's OpenAPI schema (`x-kubernetes-list-type`,
/// `x-kubernetes-list-map-keys`, `x-kubernetes-map-type`, key defaults). `metadata` follows
/// the rules of the API types' `ObjectMeta`, whatever the schema says.
pub fn from_schema(schema: &Value) -> Box<dyn TypeInfo + Send + Sync> {
    Box::new(types::Schema::new(schema.clone()))
}

/// Applies a JSON merge patch (RFC 7386) to `target`: objects merge recursively, `null`
/// removes a key, anything else replaces (a replacing list loses the `null` fields of its
/// objects, as in the API server). A patch that is not an object replaces the whole target;
/// the caller rejects a result that is not an object.
pub fn merge_patch(target: &Value, patch: &Value) -> Result<Value, PatchError> {
    Ok(merge::merge_patch(target, patch))
}

/// Applies a JSON patch (RFC 6902) to `target`, with the behaviour and messages of the JSON
/// patch library the API server uses. A patch that is not an array of operations, or has more
/// than 10,000 of them, is [`PatchError::Malformed`]; an operation that does not apply (or
/// `copy` operations that add more than 9 MiB) is [`PatchError::Invalid`].
pub fn json_patch(target: &Value, patch: &Value) -> Result<Value, PatchError> {
    json::json_patch(target, patch)
}

/// Applies a strategic merge patch to `target`, with the list rules of `types`
/// ([`TypeInfo::strategic_list`]). A patch that is not an object, or a directive of the
/// wrong form, is [`PatchError::Malformed`]; a patch that cannot merge (a list item without
/// its merge key, an unknown `$patch`) is [`PatchError::Invalid`]. No directive is left in
/// the result.
pub fn strategic_merge_patch(
    target: &Value,
    patch: &Value,
    types: &dyn TypeInfo,
) -> Result<Value, PatchError> {
    strategic::strategic_merge_patch(target, patch, types)
}

/// What a server-side apply request says.
#[derive(Clone, Copy, Debug)]
pub struct ApplyRequest<'a> {
    /// The applied configuration (the request body, as JSON).
    pub config: &'a Value,
    /// `fieldManager`.
    pub manager: &'a str,
    /// `force`: take over conflicting fields.
    pub force: bool,
    /// The subresource written (`status`), if any.
    pub subresource: Option<&'a str>,
    /// The instant recorded in `managedFields[].time`, RFC 3339.
    pub time: &'a str,
    /// The object's `apiVersion`, recorded in `managedFields[].apiVersion`.
    pub api_version: &'a str,
}

/// Server-side apply: `live` (the stored object, `None` if it does not exist yet) merged with
/// the request's configuration. Fields the manager applied before and no longer applies are
/// removed unless another manager owns them; fields other managers own with different values
/// are conflicts unless `force`. Returns the new object with its `metadata.managedFields`.
///
/// Server-set fields of the configuration (`metadata.managedFields`, `resourceVersion`,
/// `uid`, `creationTimestamp`, `generation`, …) are ignored, and so is everything but
/// `status` when `subresource` is `status`. An apply that changes nothing returns `live`
/// unchanged, `managedFields` timestamps included.
pub fn apply(
    live: Option<&Value>,
    request: &ApplyRequest<'_>,
    types: &dyn TypeInfo,
) -> Result<Value, PatchError> {
    apply::apply(live, request, types)
}

/// Records an ordinary write (operation `Update`) by `manager` in `new`'s
/// `metadata.managedFields`: it takes ownership of the fields it changed or added compared
/// with `old`, and other managers lose them. Managed fields sent by the client in `new` are
/// kept (an empty list means "unchanged"; a list of one empty entry clears them).
pub fn record_update(
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    subresource: Option<&str>,
    time: &str,
    api_version: &str,
    types: &dyn TypeInfo,
) {
    apply::record_update(old, new, manager, subresource, time, api_version, types);
}
