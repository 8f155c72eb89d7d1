//! The sandbox's storage: every object, with resource versions, generations, the change log
//! and watches, finalizers, graceful pod deletion and garbage collection of owned objects.
//!
//! One lock guards everything, so each request sees and makes a consistent change, as etcd's
//! transactions give the real API server. Writes are checked here (schemas of custom
//! resources, optimistic concurrency, the status subresource); HTTP and the verbs' details
//! live in the API server module.

mod watch;

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::{Arc, Mutex, MutexGuard},
};

use jiff::{SignedDuration, Timestamp};
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;

use watch::{Change, Log, Watcher};
pub use watch::{ChangeKind, Filter, WatchItem};

use super::{
    patch,
    resources::{Registry, ResourceKey, ResourceType},
    status::ApiError,
};
use patchpilot_clock::SharedClock;

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
    pub object: Arc<Value>,
    /// Warnings for the client (unknown fields under `fieldValidation=Warn`).
    pub warnings: Vec<String>,
    /// The write created the object.
    pub created: bool,
}

/// How dependents of a deleted object are treated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Propagation {
    /// Deleted after the owner (the default).
    #[default]
    Background,
    /// Deleted before the owner is gone; treated like background here.
    Foreground,
    /// Left, without the owner reference.
    Orphan,
}

/// Options of a deletion.
#[derive(Clone, Debug, Default)]
pub struct DeleteOptions {
    /// What happens to dependents.
    pub propagation: Propagation,
    /// `gracePeriodSeconds`; pods default to their `terminationGracePeriodSeconds`.
    pub grace_period: Option<i64>,
    /// Only if the object has this UID.
    pub uid: Option<String>,
    /// Only if the object has this resource version.
    pub resource_version: Option<String>,
    /// Check, but delete nothing.
    pub dry_run: bool,
}

/// The outcome of a deletion.
#[derive(Clone, Debug)]
pub struct Deleted {
    /// The object: as it was last if gone, else with its deletion timestamp.
    pub object: Arc<Value>,
    /// Removed now, rather than waiting for finalizers or a grace period.
    pub gone: bool,
}

/// One page of a list.
#[derive(Clone, Debug)]
pub struct Page {
    /// The objects, by namespace and name.
    pub items: Vec<Arc<Value>>,
    /// The resource version of the list.
    pub rv: u64,
    /// The token for the next page, if there is one.
    pub next: Option<String>,
    /// How many objects remain after this page, for a list without selectors.
    pub remaining: Option<usize>,
}

/// Where a watch starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WatchFrom {
    /// Synthetic `ADDED` events for the current objects, then changes (`resourceVersion`
    /// unset or `0`).
    Current,
    /// Changes after this resource version.
    After(u64),
    /// The current objects, a bookmark marking the end of them, then changes
    /// (`sendInitialEvents=true`).
    InitialEvents,
}

/// A registered watch: what to send first, then what arrives.
pub struct WatchStream {
    /// The watcher's id, for bookmarks.
    pub id: u64,
    /// Sent before anything else.
    pub initial: Vec<WatchItem>,
    /// What arrives later.
    pub rx: mpsc::UnboundedReceiver<WatchItem>,
}

type ObjectKey = (String, String);

struct Inner {
    registry: Registry,
    objects: HashMap<ResourceKey, BTreeMap<ObjectKey, Arc<Value>>>,
    /// Owner UID → the objects that name it in their owner references.
    dependents: HashMap<String, BTreeSet<(ResourceKey, String, String)>>,
    rv: u64,
    uids: u64,
    log: Log,
    watchers: Vec<Watcher>,
    next_watcher: u64,
}

/// Every object of the simulated cluster.
pub struct Store {
    inner: Mutex<Inner>,
    clock: SharedClock,
    /// Whether watches may ask for streaming lists (the API server's `WatchList` feature).
    watch_list: std::sync::atomic::AtomicBool,
}

/// How many changes are kept for watches to resume from, by default.
pub const DEFAULT_RETENTION: usize = 200_000;

fn meta(object: &Value) -> &Value {
    &object["metadata"]
}

fn meta_mut(object: &mut Value) -> &mut Map<String, Value> {
    if !object["metadata"].is_object() {
        object["metadata"] = json!({});
    }
    object["metadata"]
        .as_object_mut()
        .expect("metadata was just made an object")
}

fn name_of(object: &Value) -> &str {
    meta(object)["name"].as_str().unwrap_or("")
}

fn time(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Whether two objects differ in more than server-maintained metadata.
fn changed(old: &Value, new: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("resourceVersion");
            m.remove("managedFields");
        }
        v
    };
    strip(old) != strip(new)
}

/// Whether anything outside `metadata` and `status` differs: a spec change, which bumps
/// `metadata.generation`.
fn spec_changed(old: &Value, new: &Value) -> bool {
    let rest = |v: &Value| -> Map<String, Value> {
        v.as_object()
            .map(|m| {
                m.iter()
                    .filter(|(k, _)| !matches!(k.as_str(), "metadata" | "status"))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default()
    };
    rest(old) != rest(new)
}

fn owner_uids(object: &Value) -> Vec<String> {
    meta(object)["ownerReferences"]
        .as_array()
        .map(|refs| {
            refs.iter()
                .filter_map(|r| r["uid"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn finalizers(object: &Value) -> usize {
    meta(object)["finalizers"].as_array().map_or(0, Vec::len)
}

impl Store {
    /// An empty store serving `registry`, with `clock` for timestamps.
    pub fn new(registry: Registry, clock: SharedClock) -> Self {
        Store {
            inner: Mutex::new(Inner {
                registry,
                objects: HashMap::new(),
                dependents: HashMap::new(),
                rv: 1,
                uids: 0,
                log: Log::new(DEFAULT_RETENTION),
                watchers: Vec::new(),
                next_watcher: 0,
            }),
            clock,
            watch_list: std::sync::atomic::AtomicBool::new(true),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock is a bug of ours; the data is still usable.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The clock of the simulated cluster.
    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// The current instant as the API prints it, to the second.
    pub fn now_text(&self) -> String {
        time(self.clock.now())
    }

    /// The current instant to the microsecond, as audit events and event times print it.
    pub fn now_micros(&self) -> String {
        self.clock
            .now()
            .strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
            .to_string()
    }

    /// Whether watches may ask for streaming lists (`sendInitialEvents`), as an API server
    /// with the `WatchList` feature on; without it they are refused with 422.
    pub fn set_watch_list(&self, on: bool) {
        self.watch_list
            .store(on, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether watches may ask for streaming lists.
    pub fn watch_list(&self) -> bool {
        self.watch_list.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// How many changes watches can resume from.
    pub fn set_retention(&self, retention: usize) {
        self.lock().log.set_retention(retention);
    }

    /// The latest resource version.
    pub fn resource_version(&self) -> u64 {
        self.lock().rv
    }

    /// The resource at `group`/`version` named `plural`.
    pub fn resource(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceType>> {
        self.lock().registry.find(group, version, plural)
    }

    /// The resource of objects of this `apiVersion` and `kind`.
    pub fn resource_of(&self, api_version: &str, kind: &str) -> Option<Arc<ResourceType>> {
        self.lock().registry.by_kind(api_version, kind)
    }

    /// Every resource served.
    pub fn resources(&self) -> Vec<Arc<ResourceType>> {
        self.lock().registry.all().to_vec()
    }

    /// Serves the custom resources a CRD defines.
    pub fn serve_crd(
        &self,
        crd: &k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
    ) -> Result<Arc<ResourceType>, ApiError> {
        self.lock()
            .registry
            .add_crd(crd)
            .map_err(|e| ApiError::bad_request(e.to_string()))
    }

    /// An object.
    pub fn get(
        &self,
        resource: &ResourceType,
        namespace: &str,
        name: &str,
    ) -> Result<Arc<Value>, ApiError> {
        let inner = self.lock();
        inner
            .objects
            .get(&resource.storage)
            .and_then(|objects| objects.get(&(namespace.to_owned(), name.to_owned())))
            .cloned()
            .ok_or_else(|| ApiError::not_found(resource, name))
    }

    /// The objects `filter` wants, in namespace and name order, a page of `limit` at a time
    /// (`0`: all) after `after`.
    pub fn list(
        &self,
        resource: &ResourceType,
        filter: &Filter,
        limit: usize,
        after: Option<&ObjectKey>,
    ) -> Page {
        use std::ops::Bound::{Excluded, Included, Unbounded};
        let inner = self.lock();
        let empty = BTreeMap::new();
        let objects = inner.objects.get(&resource.storage).unwrap_or(&empty);
        let start = match (after, &filter.namespace) {
            (Some(after), _) => Excluded(after.clone()),
            (None, Some(namespace)) => Included((namespace.clone(), String::new())),
            (None, None) => Unbounded,
        };
        let mut matching = objects
            .range((start, Unbounded))
            .take_while(|((ns, _), _)| filter.namespace.as_ref().is_none_or(|wanted| ns == wanted))
            .filter(|(_, object)| filter.matches(object));
        let page: Vec<(&ObjectKey, &Arc<Value>)> = if limit == 0 {
            matching.by_ref().collect()
        } else {
            matching.by_ref().take(limit).collect()
        };
        // As the API server does, the count of what remains is given only for a list
        // without selectors; with them, whether anything remains is all a page says (and
        // counting on every page made a full paged list quadratic).
        let selects = !filter.labels.is_everything() || !filter.fields.is_empty();
        let (more, remaining) = match (limit, selects) {
            (0, _) => (false, None),
            (_, true) => (matching.next().is_some(), None),
            (_, false) => {
                let count = matching.count();
                (count > 0, Some(count))
            }
        };
        let next = more
            .then(|| {
                page.last()
                    .map(|(key, _)| continue_token(inner.rv, &key.0, &key.1))
            })
            .flatten();
        Page {
            items: page.into_iter().map(|(_, object)| object.clone()).collect(),
            rv: inner.rv,
            remaining: next.as_ref().and(remaining),
            next,
        }
    }

    /// The resource version and position a continue token stands for, or 410 if the
    /// changes since are no longer kept.
    pub fn continue_from(&self, token: &str) -> Result<ObjectKey, ApiError> {
        let (rv, key) = read_continue_token(token).ok_or_else(|| ApiError::bad_request("continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)"))?;
        if rv < self.lock().log.compacted() {
            return Err(ApiError::gone(
                "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.",
            ));
        }
        Ok(key)
    }

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
                None => {
                    return Err(ApiError::invalid(
                        resource,
                        "",
                        &[patchpilot_schema::FieldError {
                            path: "metadata.name".into(),
                            kind: patchpilot_schema::FieldErrorKind::Required,
                        }],
                    ));
                }
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
        m.insert("generation".into(), json!(1));
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
                object: Arc::new(object),
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
                    new = (*old).clone();
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
        m.insert("generation".into(), json!(generation));
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
                object: old,
                warnings,
                created: false,
            });
        }
        if write.dry_run {
            return Ok(Written {
                object: Arc::new(new),
                warnings,
                created: false,
            });
        }
        let finished = !meta(&new)["deletionTimestamp"].is_null()
            && finalizers(&new) == 0
            && !inner.terminating_pod(resource, &new, now);
        let stored = inner.store(resource, key.clone(), new, Some(old));
        if finished {
            inner.remove(resource, &key, Propagation::Background, now);
        }
        Ok(Written {
            object: stored,
            warnings,
            created: false,
        })
    }

    /// Deletes an object: at once, or after its finalizers and (pods on a node) its grace
    /// period; dependents follow `propagation`.
    pub fn delete(
        &self,
        resource: &ResourceType,
        namespace: &str,
        name: &str,
        options: &DeleteOptions,
    ) -> Result<Deleted, ApiError> {
        let now = self.clock.now();
        let mut inner = self.lock();
        let key = (namespace.to_owned(), name.to_owned());
        let object = inner
            .objects
            .get(&resource.storage)
            .and_then(|o| o.get(&key))
            .cloned()
            .ok_or_else(|| ApiError::not_found(resource, name))?;
        if options
            .uid
            .as_ref()
            .is_some_and(|uid| meta(&object)["uid"].as_str() != Some(uid))
        {
            let message = format!(
                "Precondition failed: UID in precondition: {}, UID in object meta: {}",
                options.uid.as_deref().unwrap_or(""),
                meta(&object)["uid"].as_str().unwrap_or("")
            );
            return Err(ApiError::conflict_with(resource, name, message));
        }
        if options
            .resource_version
            .as_ref()
            .is_some_and(|rv| meta(&object)["resourceVersion"].as_str() != Some(rv))
        {
            return Err(ApiError::conflict(resource, name));
        }
        if options.dry_run {
            return Ok(Deleted {
                object,
                gone: false,
            });
        }
        let grace = match (
            resource.storage.group.as_str(),
            resource.storage.plural.as_str(),
        ) {
            ("", "pods") => pod_grace(&object, options.grace_period),
            _ => 0,
        };
        if grace > 0 || finalizers(&object) > 0 {
            if !meta(&object)["deletionTimestamp"].is_null() {
                return Ok(Deleted {
                    object,
                    gone: false,
                });
            }
            let mut marked = (*object).clone();
            let m = meta_mut(&mut marked);
            let at = now
                .saturating_add(SignedDuration::from_secs(grace))
                .unwrap_or(now);
            m.insert("deletionTimestamp".into(), json!(time(at)));
            m.insert("deletionGracePeriodSeconds".into(), json!(grace));
            if options.propagation == Propagation::Orphan {
                inner.orphan(&object, now);
            }
            let stored = inner.store(resource, key, marked, Some(object));
            return Ok(Deleted {
                object: stored,
                gone: false,
            });
        }
        let removed = inner
            .remove(resource, &key, options.propagation, now)
            .unwrap_or(object);
        Ok(Deleted {
            object: removed,
            gone: true,
        })
    }

    /// Starts a watch of `resource` objects `filter` wants.
    pub fn watch(
        &self,
        resource: &ResourceType,
        filter: Filter,
        from: WatchFrom,
    ) -> Result<WatchStream, ApiError> {
        let mut inner = self.lock();
        let mut initial = Vec::new();
        match from {
            WatchFrom::After(rv) => {
                let changes = inner.log.since(rv).ok_or_else(|| {
                    ApiError::gone(format!(
                        "too old resource version: {rv} ({})",
                        inner.log.compacted() + 1
                    ))
                })?;
                let watcher = Watcher {
                    id: 0,
                    resource: resource.storage.clone(),
                    filter: filter.clone(),
                    tx: mpsc::unbounded_channel().0,
                };
                initial.extend(changes.filter_map(|c| watcher.event_for(c)));
            }
            WatchFrom::Current | WatchFrom::InitialEvents => {
                if let Some(objects) = inner.objects.get(&resource.storage) {
                    initial.extend(
                        objects
                            .values()
                            .filter(|o| filter.matches(o))
                            .map(|o| WatchItem::Event("ADDED", o.clone())),
                    );
                }
                if from == WatchFrom::InitialEvents {
                    initial.push(WatchItem::Bookmark {
                        rv: inner.rv,
                        initial_events_end: true,
                    });
                }
            }
        }
        let (tx, rx) = mpsc::unbounded_channel();
        inner.next_watcher += 1;
        let id = inner.next_watcher;
        inner.watchers.push(Watcher {
            id,
            resource: resource.storage.clone(),
            filter,
            tx,
        });
        Ok(WatchStream { id, initial, rx })
    }

    /// Sends a bookmark at the current resource version to one watcher, in order with its
    /// events.
    pub fn bookmark(&self, watcher: u64) {
        let inner = self.lock();
        if let Some(w) = inner.watchers.iter().find(|w| w.id == watcher) {
            let _ = w.tx.send(WatchItem::Bookmark {
                rv: inner.rv,
                initial_events_end: false,
            });
        }
    }

    /// Ends a watcher's registration.
    pub fn unwatch(&self, watcher: u64) {
        self.lock().watchers.retain(|w| w.id != watcher);
    }

    /// Every object of a resource (for the simulated cluster's controllers).
    pub fn all(&self, resource: &ResourceKey) -> Vec<Arc<Value>> {
        self.lock()
            .objects
            .get(resource)
            .map(|o| o.values().cloned().collect())
            .unwrap_or_default()
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

    /// A pod whose deletion waits for its kubelet.
    fn terminating_pod(&self, resource: &ResourceType, object: &Value, now: Timestamp) -> bool {
        resource.storage.group.is_empty()
            && resource.storage.plural == "pods"
            && meta(object)["deletionTimestamp"]
                .as_str()
                .and_then(|t| t.parse::<Timestamp>().ok())
                .is_some_and(|t| t > now)
            && !object["spec"]["nodeName"].is_null()
    }

    /// Stores a new state of an object, logs the change and tells the watchers.
    fn store(
        &mut self,
        resource: &ResourceType,
        key: ObjectKey,
        mut object: Value,
        previous: Option<Arc<Value>>,
    ) -> Arc<Value> {
        self.rv += 1;
        meta_mut(&mut object).insert("resourceVersion".into(), json!(self.rv.to_string()));
        let object = Arc::new(object);
        let before: Vec<String> = previous.as_deref().map(owner_uids).unwrap_or_default();
        for uid in before {
            if let Some(set) = self.dependents.get_mut(&uid) {
                set.remove(&(resource.storage.clone(), key.0.clone(), key.1.clone()));
            }
        }
        for uid in owner_uids(&object) {
            self.dependents.entry(uid).or_default().insert((
                resource.storage.clone(),
                key.0.clone(),
                key.1.clone(),
            ));
        }
        self.objects
            .entry(resource.storage.clone())
            .or_default()
            .insert(key, object.clone());
        if is_crd(resource)
            && let Ok(crd) = serde_json::from_value(Value::clone(&object))
        {
            // A definition the registry refuses stays stored but unserved, as a CRD whose
            // names are not accepted.
            let _ = self.registry.add_crd(&crd);
        }
        let kind = if previous.is_some() {
            ChangeKind::Modified
        } else {
            ChangeKind::Added
        };
        self.publish(Change {
            rv: self.rv,
            resource: resource.storage.clone(),
            kind,
            object: object.clone(),
            previous,
        });
        object
    }

    fn publish(&mut self, change: Change) {
        let change = Arc::new(change);
        self.watchers.retain(|w| match w.event_for(&change) {
            Some(item) => w.tx.send(item).is_ok(),
            None => !w.tx.is_closed(),
        });
        self.log.push(change);
    }

    /// Removes an object for good and deals with its dependents.
    fn remove(
        &mut self,
        resource: &ResourceType,
        key: &ObjectKey,
        propagation: Propagation,
        now: Timestamp,
    ) -> Option<Arc<Value>> {
        let object = self.objects.get_mut(&resource.storage)?.remove(key)?;
        if is_crd(resource) {
            let group = object["spec"]["group"].as_str().unwrap_or("");
            let plural = object["spec"]["names"]["plural"].as_str().unwrap_or("");
            self.registry.remove(group, plural);
        }
        self.rv += 1;
        let mut last = (*object).clone();
        meta_mut(&mut last).insert("resourceVersion".into(), json!(self.rv.to_string()));
        let last = Arc::new(last);
        for uid in owner_uids(&object) {
            if let Some(set) = self.dependents.get_mut(&uid) {
                set.remove(&(resource.storage.clone(), key.0.clone(), key.1.clone()));
            }
        }
        self.publish(Change {
            rv: self.rv,
            resource: resource.storage.clone(),
            kind: ChangeKind::Deleted,
            object: last.clone(),
            previous: Some(object.clone()),
        });
        match propagation {
            Propagation::Orphan => self.orphan(&object, now),
            Propagation::Background | Propagation::Foreground => self.collect(&object, now),
        }
        Some(last)
    }

    /// Deletes the objects owned by a deleted one, as the garbage collector does.
    fn collect(&mut self, owner: &Value, now: Timestamp) {
        let Some(uid) = meta(owner)["uid"].as_str() else {
            return;
        };
        for (resource, key, object) in self.take_dependents(uid) {
            let storage = &resource.storage;
            let grace = if storage.group.is_empty() && storage.plural == "pods" {
                pod_grace(&object, None)
            } else {
                0
            };
            if grace > 0 || finalizers(&object) > 0 {
                if meta(&object)["deletionTimestamp"].is_null() {
                    let mut marked = (*object).clone();
                    let at = now
                        .saturating_add(SignedDuration::from_secs(grace))
                        .unwrap_or(now);
                    meta_mut(&mut marked).insert("deletionTimestamp".into(), json!(time(at)));
                    meta_mut(&mut marked).insert("deletionGracePeriodSeconds".into(), json!(grace));
                    self.store(&resource, key, marked, Some(object));
                }
            } else {
                self.remove(&resource, &key, Propagation::Background, now);
            }
        }
    }

    /// The dependents of the owner `uid` that still exist, with their resource types,
    /// forgetting the owner's dependents list.
    fn take_dependents(&mut self, uid: &str) -> Vec<(Arc<ResourceType>, ObjectKey, Arc<Value>)> {
        let dependents = self.dependents.remove(uid).unwrap_or_default();
        dependents
            .into_iter()
            .filter_map(|(storage, namespace, name)| {
                let resource = self
                    .registry
                    .all()
                    .iter()
                    .find(|t| t.storage == storage && t.group == storage.group)
                    .cloned()?;
                let key = (namespace, name);
                let object = self.objects.get(&storage)?.get(&key)?.clone();
                Some((resource, key, object))
            })
            .collect()
    }

    /// Removes a deleted owner from its dependents' owner references.
    fn orphan(&mut self, owner: &Value, _now: Timestamp) {
        let Some(uid) = meta(owner)["uid"].as_str().map(str::to_owned) else {
            return;
        };
        for (resource, key, object) in self.take_dependents(&uid) {
            let mut kept = (*object).clone();
            if let Some(refs) = kept["metadata"]["ownerReferences"].as_array_mut() {
                refs.retain(|r| r["uid"].as_str() != Some(uid.as_str()));
            }
            self.store(&resource, key, kept, Some(object));
        }
    }
}

fn is_crd(resource: &ResourceType) -> bool {
    resource.storage.group == "apiextensions.k8s.io"
        && resource.storage.plural == "customresourcedefinitions"
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

/// The grace period of a pod's deletion: none for a pod no kubelet runs.
fn pod_grace(pod: &Value, requested: Option<i64>) -> i64 {
    let on_node = !pod["spec"]["nodeName"].is_null();
    let finished = matches!(
        pod["status"]["phase"].as_str(),
        Some("Succeeded" | "Failed")
    );
    if !on_node || finished {
        return 0;
    }
    requested
        .unwrap_or_else(|| {
            pod["spec"]["terminationGracePeriodSeconds"]
                .as_i64()
                .unwrap_or(30)
        })
        .max(0)
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
        match write.validation {
            FieldValidation::Strict => {
                let fields: Vec<String> = admission
                    .unknown_fields
                    .iter()
                    .map(|f| f.to_string())
                    .collect();
                let kind = &resource.kind;
                return Err(ApiError::bad_request(format!(
                    "{kind} in version \"{}\" cannot be handled as a {kind}: strict decoding error: {}",
                    resource.version,
                    fields.join(", ")
                )));
            }
            FieldValidation::Warn => {
                warnings.extend(admission.unknown_fields.iter().map(|f| f.to_string()))
            }
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

fn continue_token(rv: u64, namespace: &str, name: &str) -> String {
    use base64::Engine;
    let json = json!({"v": "meta.k8s.io/v1", "rv": rv, "start": format!("{namespace}/{name}")});
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json.to_string())
}

fn read_continue_token(token: &str) -> Option<(u64, ObjectKey)> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()?;
    let value: Value = serde_json::from_slice(&bytes).ok()?;
    let rv = value["rv"].as_u64()?;
    let (ns, name) = value["start"].as_str()?.split_once('/')?;
    Some((rv, (ns.to_owned(), name.to_owned())))
}
