//! Deletion: preconditions, finalizers, the grace period of pods on a node, and what the
//! garbage collector does to the dependents of a deleted object (deletes them, or orphans
//! them).

use super::Json;
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use super::watch::{Change, ChangeKind};
use super::{Inner, ObjectKey, Store, finalizers, is_crd, meta, meta_mut, owner_uids, time};
use crate::{resources::ResourceType, status::ApiError};

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
    pub object: Arc<Json>,
    /// Removed now, rather than waiting for finalizers or a grace period.
    pub gone: bool,
}

impl Store {
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
            let mut marked = object.to_value();
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
}

impl Inner {
    /// A pod whose deletion waits for its kubelet.
    pub(super) fn terminating_pod(
        &self,
        resource: &ResourceType,
        object: &Value,
        now: Timestamp,
    ) -> bool {
        resource.storage.group.is_empty()
            && resource.storage.plural == "pods"
            && object["metadata"]["deletionTimestamp"]
                .as_str()
                .and_then(|t| t.parse::<Timestamp>().ok())
                .is_some_and(|t| t > now)
            && !object["spec"]["nodeName"].is_null()
    }

    /// Removes an object for good and deals with its dependents.
    pub(super) fn remove(
        &mut self,
        resource: &ResourceType,
        key: &ObjectKey,
        propagation: Propagation,
        now: Timestamp,
    ) -> Option<Arc<Json>> {
        let object = self.objects.get_mut(&resource.storage)?.remove(key)?;
        if is_crd(resource) {
            let group = object["spec"]["group"].as_str().unwrap_or("");
            let plural = object["spec"]["names"]["plural"].as_str().unwrap_or("");
            self.registry.remove(group, plural);
        }
        self.rv += 1;
        let mut last = object.to_value();
        meta_mut(&mut last).insert("resourceVersion".into(), json!(self.rv.to_string()));
        let last = Arc::new(Json::from(last));
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
    fn collect(&mut self, owner: &Json, now: Timestamp) {
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
                    let mut marked = object.to_value();
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
    fn take_dependents(&mut self, uid: &str) -> Vec<(Arc<ResourceType>, ObjectKey, Arc<Json>)> {
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
    fn orphan(&mut self, owner: &Json, _now: Timestamp) {
        let Some(uid) = meta(owner)["uid"].as_str().map(str::to_owned) else {
            return;
        };
        for (resource, key, object) in self.take_dependents(&uid) {
            let mut kept = object.to_value();
            if let Some(refs) = kept["metadata"]["ownerReferences"].as_array_mut() {
                refs.retain(|r| r["uid"].as_str() != Some(uid.as_str()));
            }
            self.store(&resource, key, kept, Some(object));
        }
    }
}

/// The grace period of a pod's deletion: none for a pod no kubelet runs.
fn pod_grace(pod: &Json, requested: Option<i64>) -> i64 {
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
