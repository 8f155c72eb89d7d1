//! The verbs on objects: get, list, watch, create, update, patch (JSON, merge, strategic and
//! apply), delete and deletecollection; the `status` subresource here, the `eviction` and
//! `scale` subresources in their own modules.

use std::sync::Arc;

use http::{StatusCode, header};
use serde_json::{Value, json};

use super::{
    Reply, Request, decode, events, eviction, partial, protobuf, query, route::Target, scale,
    sizes, table, watch,
};
use crate::{
    json::Json,
    patch::{self, ApplyRequest, PatchError},
    resources::ResourceType,
    selector::{self, FieldTerm, LabelSelector, go_quote},
    status::{self, ApiError},
    store::{self, DeleteOptions, FieldValidation, Filter, Propagation, Store, Write},
};

/// The resource a request's objects are stored as, and whether they are converted on the
/// way in and out (`events.k8s.io` events are stored as core events).
struct Storage {
    resource: Arc<ResourceType>,
    events_v1: bool,
}

impl Storage {
    fn of(store: &Store, target: &Target) -> Result<Self, ApiError> {
        if target.resource.group == "events.k8s.io" {
            let resource = store
                .resource("", "v1", "events")
                .ok_or_else(|| ApiError::internal("core events are not served"))?;
            return Ok(Storage {
                resource,
                events_v1: true,
            });
        }
        Ok(Storage {
            resource: target.resource.clone(),
            events_v1: false,
        })
    }

    fn incoming(&self, object: Value) -> Value {
        if self.events_v1 {
            events::to_core(&object)
        } else {
            object
        }
    }

    fn outgoing(&self, object: &Json) -> Value {
        outgoing(object, self.events_v1)
    }
}

/// A stored object as a client gets it: `managedFields` parsed again, and as an
/// `events.k8s.io/v1` Event when asked for through that API.
pub(super) fn outgoing(object: &Json, events_v1: bool) -> Value {
    let served = store::served(object);
    if events_v1 {
        events::from_core(&served)
    } else {
        served
    }
}

/// Answers a request for objects.
pub(super) async fn handle(
    store: &Arc<Store>,
    target: Target,
    request: &Request,
    verb: &str,
) -> Result<Reply, ApiError> {
    let storage = Storage::of(store, &target)?;
    match target.subresource.as_deref() {
        None => {}
        Some("status") if target.resource.status && matches!(verb, "get" | "update" | "patch") => {}
        Some("eviction") if target.resource.eviction && verb == "create" => {
            return eviction::evict(store, &target, request);
        }
        Some("scale") if scale::served(&target.resource) => {
            return scale::handle(store, &target, request, verb);
        }
        Some(other) => {
            return Err(ApiError::no_route(&format!(
                "{} subresource {other}",
                target.resource.plural
            )));
        }
    }
    let namespace = target.namespace.clone().unwrap_or_default();
    if target.resource.namespaced && target.name.is_some() && target.namespace.is_none() {
        return Err(ApiError::no_route(&request.path));
    }
    match verb {
        "get" => {
            let name = target.name.as_deref().unwrap_or("");
            let object = store.get(&storage.resource, &namespace, name)?;
            let object = storage.outgoing(&object);
            if let Some(include) = table::options(request)? {
                let now = store.clock().now();
                return Ok(Reply::ok(table::render(
                    &target.resource,
                    &[object],
                    include,
                    None,
                    now,
                )));
            }
            Ok(Reply::ok(answer(&target, request, object)?))
        }
        "list" => list(store, &target, &storage, request),
        "watch" => {
            let (options, filter) = list_query(store, &target, &storage, request, true)?;
            watch::watch(
                options,
                store.clone(),
                target.resource.clone(),
                storage.resource.clone(),
                storage.events_v1,
                filter,
                request,
            )
        }
        "create" => create(store, &target, &storage, request),
        "update" => update(store, &target, &storage, request),
        "patch" => patch(store, &target, &storage, request),
        "delete" => delete(store, &target, &storage, request),
        "deletecollection" => delete_collection(store, &target, &storage, request),
        other => Err(ApiError::method_not_allowed(format!(
            "the verb {other} is not supported"
        ))),
    }
}

/// The options and the filter of a list (`watch` false) or a watch, read in the API
/// server's order (`query::list_options`).
fn list_query(
    store: &Store,
    target: &Target,
    storage: &Storage,
    request: &Request,
    watch: bool,
) -> Result<(query::ListOptions, Filter), ApiError> {
    query::list_options(
        request,
        watch,
        store.watch_list(),
        || selectors(request),
        |(labels, fields)| filter(target, storage, labels, fields),
    )
}

/// The label and field selectors of a request, parsed: the label selector first, as the API
/// server reads them.
fn selectors(request: &Request) -> Result<(LabelSelector, Vec<FieldTerm>), ApiError> {
    let labels = selector::labels(request.params.get("labelSelector").unwrap_or(""))?;
    let fields = selector::fields(request.params.get("fieldSelector").unwrap_or(""))?;
    Ok((labels, fields))
}

/// The list or watch filter of a request, once the kind is known to select by the fields.
fn filter(
    target: &Target,
    storage: &Storage,
    labels: LabelSelector,
    mut fields: Vec<FieldTerm>,
) -> Result<Filter, ApiError> {
    selector::check_fields(&fields, &target.resource.selectable_fields)
        .map_err(|error| unknown_field_selector(&target.resource, error))?;
    if storage.events_v1 {
        for term in &mut fields {
            term.field = events::core_field(&term.field);
        }
    }
    Ok(Filter {
        namespace: target.namespace.clone(),
        labels,
        fields,
    })
}

/// A field selector on a field the resource does not select by, refused in the API server's
/// words for its kind: custom resources and the built-in kinds with field selectors of their
/// own (pods, nodes, Services, …) say `field label not supported`, Jobs say it their way, and
/// the kinds that select by no field of their own (ConfigMaps, Deployments, …) are refused
/// by the generic check, which names the two it knows.
fn unknown_field_selector(resource: &ResourceType, error: ApiError) -> ApiError {
    let Some(field) = error.message.strip_prefix("field label not supported: ") else {
        return error;
    };
    if resource.is_custom()
        || !resource.selectable_fields.is_empty()
        || (resource.group.is_empty() && resource.plural == "services")
    {
        return error;
    }
    let field = go_quote(field);
    if resource.group == "batch" && resource.plural == "jobs" {
        return ApiError::bad_request(format!("field label {field} not supported for Job"));
    }
    ApiError::bad_request(format!(
        "{field} is not a known field selector: only \"metadata.name\", \"metadata.namespace\""
    ))
}

fn list(
    store: &Store,
    target: &Target,
    storage: &Storage,
    request: &Request,
) -> Result<Reply, ApiError> {
    let (options, filter) = list_query(store, target, storage, request, false)?;
    let after = match request.params.get("continue").filter(|c| !c.is_empty()) {
        Some(token) => {
            query::check_continue(token)?;
            Some(store.continue_from(token)?)
        }
        None => None,
    };
    if let Some(rv) = options.resource_version {
        // The sandbox has no writes in flight to wait for, as the watch cache waits for 3 s.
        let current = store.resource_version();
        if rv > current {
            return Err(query::too_large(rv, current));
        }
    }
    let page = store.list(&storage.resource, &filter, options.limit, after.as_ref());
    let items: Vec<Value> = page.items.iter().map(|o| storage.outgoing(o)).collect();
    let mut metadata = json!({"resourceVersion": page.rv.to_string()});
    if let Some(next) = &page.next {
        metadata["continue"] = json!(next);
        if let Some(remaining) = page.remaining {
            metadata["remainingItemCount"] = json!(remaining);
        }
    }
    if let Some(include) = table::options(request)? {
        let now = store.clock().now();
        return Ok(Reply::ok(table::render(
            &target.resource,
            &items,
            include,
            Some(metadata),
            now,
        )));
    }
    list_reply(target, request, metadata, items)
}

/// The write options of a request.
pub(super) fn write<'a>(request: &'a Request, target: &'a Target, manager: &'a str) -> Write<'a> {
    let validation = match request.params.get("fieldValidation") {
        Some("Strict") => FieldValidation::Strict,
        Some("Ignore") => FieldValidation::Ignore,
        _ => FieldValidation::Warn,
    };
    Write {
        manager,
        subresource: target.subresource.as_deref(),
        dry_run: request.params.get("dryRun") == Some("All"),
        validation,
        internal: false,
        applied: false,
    }
}

/// The field manager: `fieldManager`, or the client's user agent up to its first `/`, as
/// the API server defaults it.
pub(super) fn manager(request: &Request) -> String {
    match request.params.get("fieldManager") {
        Some(manager) if !manager.is_empty() => manager.to_owned(),
        _ => {
            let agent = request
                .headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("unknown");
            agent.split('/').next().unwrap_or(agent).to_owned()
        }
    }
}

/// The request body, an object of `kind`, as JSON: sent as JSON, YAML or protobuf (which
/// kubectl's typed clients send), as the API server reads them.
pub(super) fn body(request: &Request, kind: &str) -> Result<Value, ApiError> {
    const BUILT_IN: [&str; 3] = ["application/json", "application/yaml", protobuf::MEDIA_TYPE];
    let content_type = request.header(header::CONTENT_TYPE);
    let media_type = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let unrecognized = |error: String| {
        ApiError::bad_request(format!(
            "the object provided is unrecognized (must be of type {kind}): {error} ({})",
            summary(&request.body)
        ))
    };
    match media_type.as_str() {
        "" | "application/json" | "*/*" => decode::json_object(&request.body).map_err(unrecognized),
        "application/yaml" => decode::yaml(&request.body).map_err(unrecognized),
        protobuf::MEDIA_TYPE => protobuf::decode(&request.body).map_err(|e| match e {
            protobuf::Undecodable::Malformed(why) => unrecognized(why),
            // Custom resources have no protobuf form.
            protobuf::Undecodable::Unsupported(_) => ApiError::unknown_body_format(&BUILT_IN[..2]),
        }),
        _ => Err(ApiError::unknown_body_format(&BUILT_IN)),
    }
}

/// The start of a body, as the API server quotes it in an error: JSON as text, anything
/// else in hexadecimal, 30 bytes at most.
fn summary(body: &[u8]) -> String {
    const MAX: usize = 30;
    let shown = &body[..body.len().min(MAX)];
    let more = if body.len() > MAX { " ..." } else { "" };
    match body.first() {
        None => "<empty>".into(),
        Some(b'{') => format!("{}{more}", String::from_utf8_lossy(shown)),
        Some(_) => {
            let hex: String = shown.iter().map(|b| format!("{b:02x}")).collect();
            format!("{hex}{more}")
        }
    }
}

/// An object as the client asked for it: whole, or its metadata only.
/// A list of `items` as the request wants it: whole objects, or their metadata only.
fn list_reply(
    target: &Target,
    request: &Request,
    metadata: Value,
    items: Vec<Value>,
) -> Result<Reply, ApiError> {
    if let Some(partial) = partial::wanted(request) {
        let list = partial.list(&target.resource, metadata, &items)?;
        return Ok(Reply::ok(list));
    }
    Ok(Reply::ok(json!({
        "kind": format!("{}List", target.resource.kind),
        "apiVersion": target.resource.api_version(),
        "metadata": metadata,
        "items": items,
    })))
}

fn answer(target: &Target, request: &Request, object: Value) -> Result<Value, ApiError> {
    match partial::wanted(request) {
        Some(partial) => partial.object(&target.resource, &object),
        None => Ok(object),
    }
}

/// The answer to a write: the object as stored, in the form the client asked for.
fn written(
    target: &Target,
    storage: &Storage,
    request: &Request,
    code: StatusCode,
    object: &Json,
    warnings: Vec<String>,
) -> Result<Reply, ApiError> {
    let object = answer(target, request, storage.outgoing(object))?;
    Ok(Reply::Json(code, object, warnings))
}

fn create(
    store: &Store,
    target: &Target,
    storage: &Storage,
    request: &Request,
) -> Result<Reply, ApiError> {
    if target.name.is_some() {
        return Err(ApiError::method_not_allowed(
            "POST is not allowed on a named object",
        ));
    }
    if target.resource.namespaced && target.namespace.is_none() {
        return Err(ApiError::no_route(&request.path));
    }
    let manager = manager(request);
    let object = storage.incoming(body(request, &storage.resource.kind)?);
    check_write(&storage.resource, &object, target.namespace.as_deref())?;
    let out = store.create(
        &storage.resource,
        target.namespace.as_deref().unwrap_or(""),
        object,
        &write(request, target, &manager),
    )?;
    written(
        target,
        storage,
        request,
        StatusCode::CREATED,
        &out.object,
        out.warnings,
    )
}

fn update(
    store: &Store,
    target: &Target,
    storage: &Storage,
    request: &Request,
) -> Result<Reply, ApiError> {
    let name = target.name.as_deref().unwrap_or("");
    let manager = manager(request);
    let object = storage.incoming(body(request, &storage.resource.kind)?);
    check_write(&storage.resource, &object, target.namespace.as_deref())?;
    let out = store.replace(
        &storage.resource,
        target.namespace.as_deref().unwrap_or(""),
        name,
        object,
        &write(request, target, &manager),
    )?;
    written(
        target,
        storage,
        request,
        StatusCode::OK,
        &out.object,
        out.warnings,
    )
}

pub(super) fn patch_error(resource: &ResourceType, name: &str, error: PatchError) -> ApiError {
    match error {
        PatchError::Malformed(message) => ApiError::bad_request(message),
        PatchError::Invalid(message) => ApiError {
            code: 422,
            reason: "Invalid",
            message,
            details: None,
        },
        PatchError::Conflicts(ref conflicts) => {
            let causes: Vec<Value> = conflicts
                .iter()
                .map(|c| json!({"reason": "FieldManagerConflict", "message": c.cause_message(), "field": c.field}))
                .collect();
            let mut conflict = ApiError::conflict_with(resource, name, error.to_string());
            if let Some(details) = conflict.details.as_mut() {
                details["causes"] = json!(causes);
            }
            conflict
        }
    }
}

fn patch(
    store: &Store,
    target: &Target,
    storage: &Storage,
    request: &Request,
) -> Result<Reply, ApiError> {
    let resource = &storage.resource;
    let name = target.name.clone().unwrap_or_default();
    let namespace = target.namespace.clone().unwrap_or_default();
    let content_type = request
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_owned();
    let manager = manager(request);
    let mut options = write(request, target, &manager);
    let out = match content_type.as_str() {
        "application/apply-patch+yaml" => {
            let Some(manager) = request.params.get("fieldManager").filter(|m| !m.is_empty()) else {
                return Err(ApiError::bad_request(
                    "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
                ));
            };
            let config = decode::yaml(&request.body).map_err(|e| {
                ApiError::bad_request(format!(
                    "error decoding patch: error converting YAML to JSON: {e}"
                ))
            })?;
            if !config.is_object() {
                return Err(ApiError::bad_request("invalid object type: /, Kind="));
            }
            let config = storage.incoming(config);
            check_applied_identity(resource, &config, &name)?;
            options.applied = true;
            let now = store.now_text();
            let api_version = resource.api_version();
            let apply = ApplyRequest {
                config: &config,
                manager,
                force: request.params.flag("force"),
                subresource: target.subresource.as_deref(),
                time: &now,
                api_version: &api_version,
            };
            if target.subresource.is_some() && store.get(resource, &namespace, &name).is_err() {
                return Err(ApiError::not_found(resource, &name));
            }
            store.modify(resource, &namespace, &name, &options, |old| {
                let applied = patch::apply(old, &apply, resource.types.as_ref())
                    .map_err(|e| patch_error(resource, &name, e))?;
                check_write(resource, &applied, Some(&namespace))?;
                Ok(applied)
            })?
        }
        "application/json-patch+json"
        | "application/merge-patch+json"
        | "application/strategic-merge-patch+json" => {
            if content_type == "application/strategic-merge-patch+json" && resource.is_custom() {
                return Err(ApiError::unsupported_media_type(&content_type));
            }
            // The API server says no more of a patch it cannot read.
            let document = decode::json(&request.body)
                .map_err(|_| ApiError::bad_request("invalid JSON patch"))?;
            check_patch_shape(&content_type, &document)?;
            let document = if storage.events_v1 && content_type != "application/json-patch+json" {
                events::to_core(&document)
            } else {
                document
            };
            store.modify(resource, &namespace, &name, &options, |old| {
                let old = old.ok_or_else(|| ApiError::not_found(resource, &name))?;
                let patched = match content_type.as_str() {
                    // A JSON patch may address the entries of `managedFields`, which the
                    // store keeps as text: it applies to the object as served.
                    "application/json-patch+json" => {
                        patch::json_patch(&store::unpacked(old.clone()), &document)
                    }
                    "application/merge-patch+json" => patch::merge_patch(old, &document),
                    _ => patch::strategic_merge_patch(old, &document, resource.types.as_ref()),
                };
                let patched = patched.map_err(|e| patch_error(resource, &name, e))?;
                check_write(resource, &patched, Some(&namespace))?;
                Ok(patched)
            })?
        }
        // Refused by the API server's router, which knows the patch types a route consumes.
        _ => {
            return Err(ApiError {
                code: 415,
                reason: "UnsupportedMediaType",
                message: "415: Unsupported Media Type".into(),
                details: None,
            });
        }
    };
    let code = if out.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    written(target, storage, request, code, &out.object, out.warnings)
}

/// The most operations the API server applies of one JSON patch.
const MAX_JSON_PATCH_OPERATIONS: usize = 10_000;

/// Refuses a patch document of the wrong shape as the API server's decoder does (a JSON
/// patch is a list of objects, other patches an object), and a JSON patch of more than
/// 10,000 operations with its 413.
fn check_patch_shape(content_type: &str, document: &Value) -> Result<(), ApiError> {
    let cannot = |value: &Value, go_type: &str| {
        let kind = match value {
            Value::Array(_) => "array",
            Value::Object(_) => "object",
            Value::String(_) => "string",
            Value::Number(_) => "number",
            Value::Bool(_) => "bool",
            Value::Null => "null",
        };
        // A strategic merge patch is decoded later, by code that does not say so.
        let decoding = if content_type == "application/strategic-merge-patch+json" {
            ""
        } else {
            "error decoding patch: "
        };
        ApiError::bad_request(format!(
            "{decoding}json: cannot unmarshal {kind} into Go value of type {go_type}"
        ))
    };
    if content_type != "application/json-patch+json" {
        return match document {
            Value::Object(_) | Value::Null => Ok(()),
            other => Err(cannot(other, "map[string]interface {}")),
        };
    }
    let operations = match document {
        Value::Array(operations) => operations,
        Value::Null => return Ok(()),
        other => return Err(cannot(other, "[]handlers.jsonPatchOp")),
    };
    if let Some(other) = operations.iter().find(|o| !(o.is_object() || o.is_null())) {
        return Err(cannot(other, "handlers.jsonPatchOp"));
    }
    if operations.len() > MAX_JSON_PATCH_OPERATIONS {
        return Err(ApiError {
            code: 413,
            reason: "RequestEntityTooLarge",
            message: format!(
                "Request entity too large: The allowed maximum operations in a JSON patch is {MAX_JSON_PATCH_OPERATIONS}, got {}",
                operations.len()
            ),
            details: None,
        });
    }
    Ok(())
}

/// What the API server checks of some kinds on every write: a ConfigMap's or Secret's data
/// within 1 MiB, and a core Event written in the namespace of the object it is about (or
/// `default` for a cluster-scoped one).
fn check_write(
    resource: &ResourceType,
    event: &Value,
    namespace: Option<&str>,
) -> Result<(), ApiError> {
    sizes::check(resource, event)?;
    if !(resource.group.is_empty() && resource.plural == "events") {
        return Ok(());
    }
    match events::check_namespace(event, namespace.unwrap_or("")) {
        Some(error) => {
            let name = event["metadata"]["name"].as_str().unwrap_or("");
            Err(ApiError::invalid(resource, name, &[error]))
        }
        None => Ok(()),
    }
}

/// Server-side apply names the object it applies: `apiVersion`, `kind` and the name.
fn check_applied_identity(
    resource: &ResourceType,
    config: &Value,
    name: &str,
) -> Result<(), ApiError> {
    let api_version = config["apiVersion"].as_str().unwrap_or("");
    let kind = config["kind"].as_str().unwrap_or("");
    if api_version.is_empty() || kind.is_empty() {
        // As Go prints the group, version and kind it read.
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        return Err(ApiError::bad_request(format!(
            "invalid object type: {group}/{version}, Kind={kind}"
        )));
    }
    if api_version != resource.api_version() || kind != resource.kind {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({api_version}) does not match the expected API version ({})",
            resource.api_version()
        )));
    }
    if config["metadata"]["name"]
        .as_str()
        .is_some_and(|n| n != name)
    {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({}) does not match the name on the URL ({name})",
            config["metadata"]["name"].as_str().unwrap_or("")
        )));
    }
    Ok(())
}

/// Delete options from the query and the body, as clients send either.
fn delete_options(request: &Request) -> Result<DeleteOptions, ApiError> {
    let json = matches!(
        request
            .header(header::CONTENT_TYPE)
            .split(';')
            .next()
            .unwrap_or("")
            .trim(),
        "" | "application/json"
    );
    let body: Value = if request.body.is_empty() {
        Value::Null
    } else if json {
        // The API server reads DeleteOptions without saying what it expected.
        decode::json_object(&request.body).map_err(ApiError::bad_request)?
    } else {
        body(request, "DeleteOptions")?
    };
    let text = |name: &str| {
        request
            .params
            .get(name)
            .map(str::to_owned)
            .or_else(|| body[name].as_str().map(str::to_owned))
    };
    let propagation = match text("propagationPolicy").as_deref() {
        Some("Orphan") => Propagation::Orphan,
        Some("Foreground") => Propagation::Foreground,
        Some("Background") | None => Propagation::Background,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "propagationPolicy: Unsupported value: \"{other}\""
            )));
        }
    };
    let orphan = request.params.flag("orphanDependents") || body["orphanDependents"] == json!(true);
    let grace_period = request
        .params
        .get("gracePeriodSeconds")
        .and_then(|g| g.parse().ok())
        .or_else(|| body["gracePeriodSeconds"].as_i64());
    let dry_run = request.params.get("dryRun") == Some("All")
        || body["dryRun"]
            .as_array()
            .is_some_and(|d| d.iter().any(|v| v == "All"));
    Ok(DeleteOptions {
        propagation: if orphan {
            Propagation::Orphan
        } else {
            propagation
        },
        grace_period,
        uid: body["preconditions"]["uid"].as_str().map(str::to_owned),
        resource_version: body["preconditions"]["resourceVersion"]
            .as_str()
            .map(str::to_owned),
        dry_run,
    })
}

fn delete(
    store: &Store,
    target: &Target,
    storage: &Storage,
    request: &Request,
) -> Result<Reply, ApiError> {
    let name = target.name.as_deref().unwrap_or("");
    let options = delete_options(request)?;
    let deleted = store.delete(
        &storage.resource,
        target.namespace.as_deref().unwrap_or(""),
        name,
        &options,
    )?;
    if deleted.gone {
        let uid = deleted.object["metadata"]["uid"].as_str().unwrap_or("");
        return Ok(Reply::ok(status::success(&target.resource, name, uid)));
    }
    written(
        target,
        storage,
        request,
        StatusCode::OK,
        &deleted.object,
        Vec::new(),
    )
}

fn delete_collection(
    store: &Store,
    target: &Target,
    storage: &Storage,
    request: &Request,
) -> Result<Reply, ApiError> {
    let (labels, fields) = selectors(request)?;
    let filter = filter(target, storage, labels, fields)?;
    let options = delete_options(request)?;
    let page = store.list(&storage.resource, &filter, 0, None);
    let mut items = Vec::new();
    for object in &page.items {
        let namespace = object["metadata"]["namespace"].as_str().unwrap_or("");
        let name = object["metadata"]["name"].as_str().unwrap_or("");
        if let Ok(deleted) = store.delete(&storage.resource, namespace, name, &options) {
            items.push(storage.outgoing(&deleted.object));
        }
    }
    let metadata = json!({"resourceVersion": store.resource_version().to_string()});
    list_reply(target, request, metadata, items)
}
