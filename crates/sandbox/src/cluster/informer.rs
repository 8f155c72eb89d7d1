//! What the cluster knows of the store: a copy of every object it follows, fed by watches,
//! with the indexes its components look things up by (pods by node, by owner and by
//! namespace; ReplicaSets by owner; pods waiting for a node; how many pods each node holds).
//!
//! Changes are applied in resource-version order: an event older than what is cached is
//! stale (the cluster's own writes are cached as soon as they are made, before their watch
//! events arrive) and ignored.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::Arc,
};

use super::meta::{self, Key};
use crate::json::Json;

/// The kinds of object the cluster follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) enum Kind {
    /// `v1` Node.
    Node,
    /// `v1` Pod.
    Pod,
    /// `apps/v1` Deployment.
    Deployment,
    /// `apps/v1` ReplicaSet.
    ReplicaSet,
    /// `apps/v1` StatefulSet.
    StatefulSet,
    /// `apps/v1` DaemonSet.
    DaemonSet,
    /// `batch/v1` Job.
    Job,
    /// `policy/v1` PodDisruptionBudget.
    Budget,
}

impl Kind {
    /// Every kind followed.
    pub const ALL: [Kind; 8] = [
        Kind::Node,
        Kind::Pod,
        Kind::Deployment,
        Kind::ReplicaSet,
        Kind::StatefulSet,
        Kind::DaemonSet,
        Kind::Job,
        Kind::Budget,
    ];

    /// The API group, version and plural name of the kind.
    pub fn resource(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Kind::Node => ("", "v1", "nodes"),
            Kind::Pod => ("", "v1", "pods"),
            Kind::Deployment => ("apps", "v1", "deployments"),
            Kind::ReplicaSet => ("apps", "v1", "replicasets"),
            Kind::StatefulSet => ("apps", "v1", "statefulsets"),
            Kind::DaemonSet => ("apps", "v1", "daemonsets"),
            Kind::Job => ("batch", "v1", "jobs"),
            Kind::Budget => ("policy", "v1", "poddisruptionbudgets"),
        }
    }

    /// The kind of a controller named in an owner reference.
    pub fn of_owner(kind: &str) -> Option<Kind> {
        match kind {
            "ReplicaSet" => Some(Kind::ReplicaSet),
            "Deployment" => Some(Kind::Deployment),
            "StatefulSet" => Some(Kind::StatefulSet),
            "DaemonSet" => Some(Kind::DaemonSet),
            "Job" => Some(Kind::Job),
            _ => None,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// A change the cache took in: the object before and after (`None` when absent).
#[derive(Clone, Debug)]
pub(super) struct Change {
    /// The kind of the object.
    pub kind: Kind,
    /// The namespace and name.
    pub key: Key,
    /// As it was cached before.
    pub old: Option<Arc<Json>>,
    /// As it is now; `None` once deleted.
    pub new: Option<Arc<Json>>,
}

/// The objects the cluster follows (each with its resource version, to tell stale events
/// apart), and their indexes.
#[derive(Default)]
pub(super) struct Cache {
    objects: [BTreeMap<Key, (u64, Arc<Json>)>; 8],
    pods_by_node: HashMap<String, BTreeSet<Key>>,
    pods_by_owner: HashMap<String, BTreeSet<Key>>,
    pods_by_namespace: HashMap<String, BTreeSet<Key>>,
    sets_by_owner: HashMap<String, BTreeSet<Key>>,
    budgets_by_namespace: HashMap<String, BTreeSet<Key>>,
    unbound: BTreeSet<Key>,
    load: HashMap<String, usize>,
    by_load: BTreeSet<(usize, String)>,
}

/// Where an object appears in the indexes. Most changes (a status, a condition) leave this
/// alone, and then the indexes are not touched.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Entries<'a> {
    /// Nodes: in the load order. Pods and budgets: in their namespace's index.
    listed: bool,
    /// Pods and ReplicaSets: the controller's UID.
    owner: Option<&'a str>,
    /// Pods: the node bound to.
    node: Option<&'a str>,
    /// Pods: waiting for the scheduler.
    unbound: bool,
    /// Pods: the node they take a place on (bound and not finished).
    occupies: Option<&'a str>,
}

impl<'a> Entries<'a> {
    fn of(kind: Kind, object: &'a Json) -> Self {
        let owner = || meta::controller_of(object).map(|c| c.uid);
        match kind {
            Kind::Node | Kind::Budget => Entries {
                listed: true,
                ..Entries::default()
            },
            Kind::Pod => {
                let node = object["spec"]["nodeName"]
                    .as_str()
                    .filter(|n| !n.is_empty());
                let finished = meta::finished(object);
                Entries {
                    listed: true,
                    owner: owner(),
                    node,
                    unbound: node.is_none() && !meta::terminating(object) && !finished,
                    occupies: node.filter(|_| !finished),
                }
            }
            Kind::ReplicaSet => Entries {
                owner: owner(),
                ..Entries::default()
            },
            Kind::Deployment | Kind::StatefulSet | Kind::DaemonSet | Kind::Job => {
                Entries::default()
            }
        }
    }
}

fn add(index: &mut HashMap<String, BTreeSet<Key>>, at: &str, key: &Key) {
    index.entry(at.to_owned()).or_default().insert(key.clone());
}

fn remove(index: &mut HashMap<String, BTreeSet<Key>>, at: &str, key: &Key) {
    if let Some(set) = index.get_mut(at) {
        set.remove(key);
        if set.is_empty() {
            index.remove(at);
        }
    }
}

impl Cache {
    /// An object.
    pub fn get(&self, kind: Kind, key: &Key) -> Option<&Arc<Json>> {
        self.objects[kind.index()]
            .get(key)
            .map(|(_, object)| object)
    }

    /// A cluster-scoped object (a node) by name.
    pub fn node(&self, name: &str) -> Option<&Arc<Json>> {
        self.get(Kind::Node, &(String::new(), name.to_owned()))
    }

    /// Every object of a kind, by namespace and name.
    pub fn all(&self, kind: Kind) -> impl Iterator<Item = (&Key, &Arc<Json>)> {
        self.objects[kind.index()]
            .iter()
            .map(|(key, (_, object))| (key, object))
    }

    /// How many objects of a kind there are.
    pub fn count(&self, kind: Kind) -> usize {
        self.objects[kind.index()].len()
    }

    /// The pods bound to a node.
    pub fn pods_on(&self, node: &str) -> impl Iterator<Item = &Key> {
        self.pods_by_node.get(node).into_iter().flatten()
    }

    /// The pods whose controller has this UID.
    pub fn pods_of(&self, owner_uid: &str) -> impl Iterator<Item = (&Key, &Arc<Json>)> {
        self.pods_by_owner
            .get(owner_uid)
            .into_iter()
            .flatten()
            .filter_map(|key| Some((key, self.get(Kind::Pod, key)?)))
    }

    /// The pods of a namespace.
    pub fn pods_in(&self, namespace: &str) -> impl Iterator<Item = &Arc<Json>> {
        self.pods_by_namespace
            .get(namespace)
            .into_iter()
            .flatten()
            .filter_map(|key| self.get(Kind::Pod, key))
    }

    /// The ReplicaSets whose controller has this UID.
    pub fn sets_of(&self, owner_uid: &str) -> impl Iterator<Item = &Arc<Json>> {
        self.sets_by_owner
            .get(owner_uid)
            .into_iter()
            .flatten()
            .filter_map(|key| self.get(Kind::ReplicaSet, key))
    }

    /// The PodDisruptionBudgets of a namespace.
    pub fn budgets_in(&self, namespace: &str) -> impl Iterator<Item = &Arc<Json>> {
        self.budgets_by_namespace
            .get(namespace)
            .into_iter()
            .flatten()
            .filter_map(|key| self.get(Kind::Budget, key))
    }

    /// The pods no node has been chosen for yet.
    pub fn unbound(&self) -> &BTreeSet<Key> {
        &self.unbound
    }

    /// How many pods a node holds.
    pub fn load(&self, node: &str) -> usize {
        self.load.get(node).copied().unwrap_or(0)
    }

    /// The nodes by how many pods they hold, then by name.
    pub fn by_load(&self) -> &BTreeSet<(usize, String)> {
        &self.by_load
    }

    /// Takes in an object as it is now, or its deletion. Returns the change, or `None` when
    /// the event is stale (not newer than what is cached) or removes nothing.
    pub fn observe(&mut self, kind: Kind, object: Arc<Json>, deleted: bool) -> Option<Change> {
        let key = meta::key_of(&object);
        let rv = meta::resource_version(&object);
        let objects = &mut self.objects[kind.index()];
        match objects.get(&key) {
            Some((cached, _)) if rv.is_some_and(|rv| *cached >= rv) => return None,
            None if deleted => return None,
            _ => {}
        }
        let old = if deleted {
            objects.remove(&key)
        } else {
            objects.insert(key.clone(), (rv.unwrap_or(0), object.clone()))
        }
        .map(|(_, old)| old);
        let new = (!deleted).then_some(object);
        let before = old
            .as_deref()
            .map(|o| Entries::of(kind, o))
            .unwrap_or_default();
        let after = new
            .as_deref()
            .map(|o| Entries::of(kind, o))
            .unwrap_or_default();
        if before != after {
            self.unindex(kind, &key, before);
            self.index(kind, &key, after);
        }
        Some(Change {
            kind,
            key,
            old,
            new,
        })
    }

    fn index(&mut self, kind: Kind, key: &Key, entries: Entries<'_>) {
        let namespaces = match kind {
            Kind::Pod => &mut self.pods_by_namespace,
            _ => &mut self.budgets_by_namespace,
        };
        match (kind, entries.listed) {
            (Kind::Node, true) => {
                let load = self.load(&key.1);
                self.by_load.insert((load, key.1.clone()));
            }
            (Kind::Pod | Kind::Budget, true) => add(namespaces, &key.0, key),
            _ => {}
        }
        if let Some(owner) = entries.owner {
            let owners = if kind == Kind::Pod {
                &mut self.pods_by_owner
            } else {
                &mut self.sets_by_owner
            };
            add(owners, owner, key);
        }
        if let Some(node) = entries.node {
            add(&mut self.pods_by_node, node, key);
        }
        if entries.unbound {
            self.unbound.insert(key.clone());
        }
        if let Some(node) = entries.occupies {
            self.add_load(node, 1);
        }
    }

    fn unindex(&mut self, kind: Kind, key: &Key, entries: Entries<'_>) {
        let namespaces = match kind {
            Kind::Pod => &mut self.pods_by_namespace,
            _ => &mut self.budgets_by_namespace,
        };
        match (kind, entries.listed) {
            (Kind::Node, true) => {
                let load = self.load(&key.1);
                self.by_load.remove(&(load, key.1.clone()));
            }
            (Kind::Pod | Kind::Budget, true) => remove(namespaces, &key.0, key),
            _ => {}
        }
        if let Some(owner) = entries.owner {
            let owners = if kind == Kind::Pod {
                &mut self.pods_by_owner
            } else {
                &mut self.sets_by_owner
            };
            remove(owners, owner, key);
        }
        if let Some(node) = entries.node {
            remove(&mut self.pods_by_node, node, key);
        }
        if entries.unbound {
            self.unbound.remove(key);
        }
        if let Some(node) = entries.occupies {
            self.add_load(node, -1);
        }
    }

    /// Changes a node's pod count, keeping the load order of known nodes.
    fn add_load(&mut self, node: &str, delta: isize) {
        let before = self.load(node);
        let after = before.saturating_add_signed(delta);
        let known = self.by_load.remove(&(before, node.to_owned()));
        if after == 0 {
            self.load.remove(node);
        } else {
            self.load.insert(node.to_owned(), after);
        }
        if known {
            self.by_load.insert((after, node.to_owned()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Test objects as the cluster follows them.
    macro_rules! json {
        ($($t:tt)+) => {
            crate::json::Json::from(serde_json::json!($($t)+))
        };
    }

    fn object(name: &str, rv: u64, extra: Json) -> Arc<Json> {
        let metadata = json!({"name": name, "namespace": "ns", "resourceVersion": rv.to_string()});
        let mut o = serde_json::json!({"metadata": metadata});
        if let (Some(o), Some(extra)) = (o.as_object_mut(), extra.as_object()) {
            o.extend(extra.to_map());
        }
        Arc::new(Json::from(o))
    }

    fn node(name: &str, rv: u64) -> Arc<Json> {
        Arc::new(json!({"metadata": {"name": name, "resourceVersion": rv.to_string()}}))
    }

    #[test]
    fn stale_events_are_ignored() {
        let mut cache = Cache::default();
        assert!(
            cache
                .observe(Kind::Pod, object("a", 5, json!({})), false)
                .is_some()
        );
        assert!(
            cache
                .observe(Kind::Pod, object("a", 4, json!({})), false)
                .is_none()
        );
        assert!(
            cache
                .observe(Kind::Pod, object("a", 5, json!({})), false)
                .is_none()
        );
        assert!(
            cache
                .observe(Kind::Pod, object("a", 3, json!({})), true)
                .is_none()
        );
        let gone = cache.observe(Kind::Pod, object("a", 6, json!({})), true);
        assert!(gone.is_some_and(|c| c.new.is_none() && c.old.is_some()));
        assert!(
            cache
                .observe(Kind::Pod, object("a", 6, json!({})), true)
                .is_none()
        );
    }

    #[test]
    fn pods_are_indexed_by_node_owner_and_load() {
        let mut cache = Cache::default();
        cache.observe(Kind::Node, node("n1", 1), false);
        cache.observe(Kind::Node, node("n2", 2), false);
        let owner = json!({"metadata": {"ownerReferences": [
            {"kind": "ReplicaSet", "name": "rs", "uid": "u1", "controller": true}
        ]}});
        let pending = object("p", 3, json!({"spec": {}}));
        let mut pod = pending.to_value();
        pod["metadata"]["ownerReferences"] = owner["metadata"]["ownerReferences"].to_value();
        cache.observe(Kind::Pod, Arc::new(Json::from(&pod)), false);
        assert_eq!(cache.unbound().len(), 1);
        pod["spec"]["nodeName"] = serde_json::json!("n2");
        pod["metadata"]["resourceVersion"] = serde_json::json!("4");
        cache.observe(Kind::Pod, Arc::new(Json::from(&pod)), false);
        assert!(cache.unbound().is_empty());
        assert_eq!(cache.load("n2"), 1);
        assert_eq!(
            cache.by_load().iter().next().map(|(_, n)| n.as_str()),
            Some("n1")
        );
        assert_eq!(cache.pods_of("u1").count(), 1);
        assert_eq!(cache.pods_on("n2").count(), 1);
        pod["status"] = serde_json::json!({"phase": "Succeeded"});
        pod["metadata"]["resourceVersion"] = serde_json::json!("5");
        cache.observe(Kind::Pod, Arc::new(Json::from(pod)), false);
        assert_eq!(cache.load("n2"), 0);
        assert_eq!(cache.by_load().len(), 2);
    }
}
