//! The sandbox's storage: every object, with resource versions, generations, the change log
//! and watches, finalizers, graceful pod deletion and garbage collection of owned objects.
//!
//! One lock guards everything, so each request sees and makes a consistent change, as etcd's
//! transactions give the real API server. Writes are checked here (schemas of custom
//! resources, optimistic concurrency, the status subresource); HTTP and the verbs' details
//! live in the API server module.
//!
//! Objects are kept as compact trees ([`Json`]), shared by reference with the watchers, the
//! change log and the simulated cluster's cache; a write gets the old object as a `Value` to
//! change, and what it returns is stored compact again.
//!
//! This module holds the objects and the one place a change is stored, logged and told to
//! the watchers; the verbs are in `write` (create, replace, modify), `delete` (deletion and
//! garbage collection), `list` (pages and continue tokens), `log` (the change log watches
//! resume from, a window per resource sized as the real API server's watch cache, and the
//! compaction that expires continue tokens) and `watch` (the watchers).

mod delete;
mod list;
mod log;
mod watch;
mod write;

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::{Arc, Mutex, MutexGuard},
};

use jiff::Timestamp;
use serde_json::{Map, Value, json};

pub use delete::{DeleteOptions, Deleted, Propagation};
pub use list::{Continue, Page};
use log::Log;
use watch::{Change, Watcher};
pub use watch::{ChangeKind, DEFAULT_WATCH_QUEUE, Filter, WatchFrom, WatchItem, WatchStream};
pub use write::{FieldValidation, Write, Written};

use super::{
    resources::{Registry, ResourceKey, ResourceType},
    status::ApiError,
};
use crate::json::{Json, Read};
use patchpilot_clock::SharedClock;

type ObjectKey = (String, String);

struct Inner {
    registry: Registry,
    objects: HashMap<ResourceKey, BTreeMap<ObjectKey, Arc<Json>>>,
    /// Owner UID → the objects that name it in their owner references.
    dependents: HashMap<String, BTreeSet<(ResourceKey, String, String)>>,
    rv: u64,
    uids: u64,
    log: Log,
    clock: SharedClock,
    watchers: Vec<Watcher>,
    next_watcher: u64,
    /// How many items an API client's watch may leave unread.
    watch_queue: usize,
}

/// Every object of the simulated cluster.
pub struct Store {
    inner: Mutex<Inner>,
    clock: SharedClock,
    /// Whether watches may ask for streaming lists (the API server's `WatchList` feature).
    watch_list: std::sync::atomic::AtomicBool,
}

/// How many changes of a resource are kept for watches to resume from, at most, by
/// default (as the real API server's watch cache).
pub const DEFAULT_RETENTION: usize = log::UPPER_BOUND;

fn meta<R: Read + ?Sized>(object: &R) -> &R::Node {
    object.at("metadata")
}

fn meta_mut(object: &mut Value) -> &mut Map<String, Value> {
    if !object["metadata"].is_object() {
        object["metadata"] = json!({});
    }
    object["metadata"]
        .as_object_mut()
        .expect("metadata was just made an object")
}

fn name_of(object: &(impl Read + ?Sized)) -> &str {
    meta(object).at("name").text().unwrap_or("")
}

fn time(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn owner_uids(object: &Json) -> Vec<String> {
    meta(object)["ownerReferences"]
        .as_array()
        .map(|refs| {
            refs.iter()
                .filter_map(|r| r["uid"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn finalizers(object: &(impl Read + ?Sized)) -> usize {
    meta(object).at("finalizers").elements().count()
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
                clock: clock.clone(),
                watchers: Vec::new(),
                next_watcher: 0,
                watch_queue: DEFAULT_WATCH_QUEUE,
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

    /// How many changes of each resource watches can resume from, at most (see the `log`
    /// module).
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
    ) -> Result<Arc<Json>, ApiError> {
        let inner = self.lock();
        inner
            .objects
            .get(&resource.storage)
            .and_then(|objects| objects.get(&(namespace.to_owned(), name.to_owned())))
            .cloned()
            .ok_or_else(|| ApiError::not_found(resource, name))
    }

    /// Every object of a resource (for the simulated cluster's controllers).
    pub fn all(&self, resource: &ResourceKey) -> Vec<Arc<Json>> {
        self.lock()
            .objects
            .get(resource)
            .map(|o| o.values().cloned().collect())
            .unwrap_or_default()
    }
}

impl Inner {
    /// Stores a new state of an object, logs the change and tells the watchers.
    fn store(
        &mut self,
        resource: &ResourceType,
        key: ObjectKey,
        mut object: Value,
        previous: Option<Arc<Json>>,
    ) -> Arc<Json> {
        self.rv += 1;
        meta_mut(&mut object).insert("resourceVersion".into(), json!(self.rv.to_string()));
        compact(&mut object);
        let object = Arc::new(Json::from(object));
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
            && let Ok(crd) = serde_json::from_value(object.to_value())
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
        self.watchers.retain(|w| match w.event_for(&change) {
            Some(item) => w.send(item),
            None => !w.tx.is_closed(),
        });
        let live = change.kind != ChangeKind::Deleted;
        self.log.push(&change, self.clock.now(), live);
    }
}

/// The form an object is stored in: as written, but with each `managedFields[].fieldsV1` kept
/// as its JSON text. A `fieldsV1` is a tree of many small maps (over half of a pod's parsed
/// size in memory, though under half of its text) that only server-side apply and the
/// bookkeeping of updates read, which parse it back (`patch::managed`).
fn compact(object: &mut Value) {
    let Some(entries) = object
        .pointer_mut("/metadata/managedFields")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    for entry in entries {
        if let Some(fields) = entry.get_mut("fieldsV1")
            && fields.is_object()
        {
            *fields = Value::String(fields.to_string());
        }
    }
}

/// An object as the API serves it: a copy of the stored one, with `fieldsV1` parsed again.
pub fn served(object: &Json) -> Value {
    unpacked(object.to_value())
}

/// An object in the form the store keeps it (`fieldsV1` as text) as the API serves it.
pub fn unpacked(mut out: Value) -> Value {
    if let Some(entries) = out
        .pointer_mut("/metadata/managedFields")
        .and_then(Value::as_array_mut)
    {
        for entry in entries {
            if let Some(fields) = entry.get_mut("fieldsV1")
                && let Value::String(text) = fields
                && let Ok(parsed @ Value::Object(_)) = serde_json::from_str::<Value>(text)
            {
                *fields = parsed;
            }
        }
    }
    out
}

fn is_crd(resource: &ResourceType) -> bool {
    resource.storage.group == "apiextensions.k8s.io"
        && resource.storage.plural == "customresourcedefinitions"
}
