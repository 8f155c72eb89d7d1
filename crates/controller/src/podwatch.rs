//! Pods of the targets in progress, and only those: one watch per node being updated (its
//! pods, by `spec.nodeName`) and per workload being updated (its pods, by its selector),
//! started when the target's work begins and stopped when it ends. Each change triggers the
//! rollout that holds the target.
//!
//! Watches use streaming lists (`sendInitialEvents`), so a node's pods cost one request;
//! where the API server refuses them, list and watch.
//!
//! A pod is kept with what the drain and the health checks read of it, nothing more (see
//! [`PodFacts`] and [`trim`]): with a hundred nodes in progress, the rest (containers'
//! settings and resources, addresses, managed fields) would be most of the operator's
//! memory.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
};

use futures::StreamExt;
use k8s_openapi::api::core::v1::ContainerState;
use kube::{
    Api, Client,
    runtime::{
        WatchStreamExt,
        reflector::{self, ObjectRef, Store},
        watcher::{self, Config},
    },
};
use tokio::{sync::mpsc, task::JoinHandle};

use patchpilot_api::PatchRollout;

use crate::pod::PodFacts;

/// How long a watch request lasts before it is renewed, in seconds.
pub const WATCH_TIMEOUT: u32 = 1800;

/// Which pods a watch follows.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PodScope {
    /// The pods on a node.
    Node(String),
    /// The pods of a workload: its namespace and label selector (query syntax).
    Workload {
        /// The namespace.
        namespace: String,
        /// The selector, like `app=web`.
        selector: String,
    },
}

struct Watch {
    store: Store<PodFacts>,
    task: JoinHandle<()>,
    rollout: String,
}

/// The pod watches of the targets in progress.
pub struct PodWatches {
    client: Client,
    /// Use streaming lists; cleared for good the first time the API server refuses them.
    streaming: Arc<AtomicBool>,
    watches: Mutex<HashMap<PodScope, Watch>>,
    triggers: mpsc::UnboundedSender<ObjectRef<PatchRollout>>,
}

impl PodWatches {
    /// Pod watches that trigger reconciles through `triggers`. `streaming` uses streaming
    /// lists (one request per watch); where the API server refuses them (the `WatchList`
    /// feature is off), the watches fall back to list and watch.
    pub fn new(
        client: Client,
        streaming: bool,
        triggers: mpsc::UnboundedSender<ObjectRef<PatchRollout>>,
    ) -> Self {
        PodWatches {
            client,
            streaming: Arc::new(AtomicBool::new(streaming)),
            watches: Mutex::new(HashMap::new()),
            triggers,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PodScope, Watch>> {
        self.watches.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Watches exactly `scopes` for `rollout`: starts the missing ones and stops the
    /// rollout's others.
    pub fn keep(&self, rollout: &str, scopes: &[PodScope]) {
        let mut watches = self.lock();
        watches.retain(|scope, watch| {
            let keep = watch.rollout != rollout || scopes.contains(scope);
            if !keep {
                watch.task.abort();
            }
            keep
        });
        for scope in scopes {
            if !watches.contains_key(scope) {
                let watch = self.start(rollout, scope);
                watches.insert(scope.clone(), watch);
            }
        }
    }

    /// Stops every watch of `rollout`.
    pub fn forget(&self, rollout: &str) {
        self.keep(rollout, &[]);
    }

    fn start(&self, rollout: &str, scope: &PodScope) -> Watch {
        let (api, config) = match scope {
            PodScope::Node(node) => (
                Api::<PodFacts>::all(self.client.clone()),
                Config::default().fields(&format!("spec.nodeName={node}")),
            ),
            PodScope::Workload {
                namespace,
                selector,
            } => (
                Api::<PodFacts>::namespaced(self.client.clone(), namespace),
                Config::default().labels(selector),
            ),
        };
        // Long watches (bookmarks keep them alive): a node's pods usually cost one request.
        let config = config.timeout(WATCH_TIMEOUT);
        let (store, mut writer) = reflector::store();
        let trigger = ObjectRef::<PatchRollout>::new(rollout);
        let triggers = self.triggers.clone();
        let streaming = self.streaming.clone();
        let task = tokio::spawn(async move {
            loop {
                let streams = streaming.load(Ordering::Relaxed);
                let config = if streams {
                    config.clone().streaming_lists()
                } else {
                    config.clone()
                };
                let stream = watcher::watcher(api.clone(), config).default_backoff();
                let mut stream = std::pin::pin!(stream);
                let mut refused = false;
                while let Some(event) = stream.next().await {
                    match event {
                        Ok(event) => {
                            let event = event.modify(trim);
                            writer.apply_watcher_event(&event);
                            if triggers.send(trigger.clone()).is_err() {
                                return;
                            }
                        }
                        Err(error) if streams && refuses_streaming(&error) => {
                            tracing::warn!(
                                %error,
                                "the API server refuses streaming lists; listing pods instead"
                            );
                            refused = true;
                            break;
                        }
                        Err(error) => tracing::warn!(%error, "pod watch failed; retrying"),
                    }
                }
                if !refused {
                    return;
                }
                streaming.store(false, Ordering::Relaxed);
            }
        });
        Watch {
            store,
            task,
            rollout: rollout.to_owned(),
        }
    }

    /// The pods of a scope, once its watch has listed them.
    pub fn pods(&self, scope: &PodScope) -> Option<Vec<Arc<PodFacts>>> {
        let watches = self.lock();
        let watch = watches.get(scope)?;
        // The store is ready once the initial list (or initial events) arrived.
        futures::FutureExt::now_or_never(watch.store.wait_until_ready())?.ok()?;
        Some(watch.store.state())
    }
}

/// Keeps of a pod what the drain and the health checks read (its spec and status are
/// already mostly that: see [`PodFacts`]): of its metadata, no managed fields and no
/// annotation but the mirror pod's; of its volumes, the emptyDirs; of its containers'
/// states, only why they wait.
pub fn trim(pod: &mut PodFacts) {
    let meta = &mut pod.metadata;
    meta.managed_fields = None;
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.retain(|key, _| key == MIRROR);
    }
    if let Some(spec) = pod.spec.as_mut() {
        let volumes = spec.volumes.take().into_iter().flatten();
        let empty_dirs: Vec<_> = volumes.filter(|v| v.empty_dir.is_some()).collect();
        spec.volumes = (!empty_dirs.is_empty()).then_some(empty_dirs);
    }
    let statuses = pod.status.iter_mut().flat_map(|s| {
        let init = s.init_container_statuses.iter_mut().flatten();
        init.chain(s.container_statuses.iter_mut().flatten())
    });
    for status in statuses {
        status.state = status
            .state
            .take()
            .and_then(|s| s.waiting)
            .map(|waiting| ContainerState {
                waiting: Some(waiting),
                ..ContainerState::default()
            });
    }
}

/// The annotation of a mirror pod (a static pod, which the drain leaves alone).
pub const MIRROR: &str = "kubernetes.io/config.mirror";

/// Whether a watch error says the API server does not serve streaming lists: it answers
/// a watch with `sendInitialEvents` with 400 Bad Request or 422 Invalid.
fn refuses_streaming(error: &watcher::Error) -> bool {
    let code = match error {
        watcher::Error::WatchStartFailed(kube::Error::Api(status))
        | watcher::Error::WatchFailed(kube::Error::Api(status)) => status.code,
        watcher::Error::WatchError(status) => status.code,
        watcher::Error::InitialListFailed(_)
        | watcher::Error::WatchStartFailed(_)
        | watcher::Error::WatchFailed(_)
        | watcher::Error::NoResourceVersion => return false,
    };
    matches!(code, 400 | 422)
}

impl Drop for PodWatches {
    fn drop(&mut self) {
        for watch in self.lock().values() {
            watch.task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::{health, read};
    use patchpilot_api::DrainSpec;

    fn pod() -> PodFacts {
        serde_json::from_value(serde_json::json!({
            "metadata": {
                "name": "web-1", "namespace": "shop", "uid": "u",
                "labels": {"app": "web"},
                "annotations": {MIRROR: "x", "kubectl.kubernetes.io/restartedAt": "now"},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-6f", "uid": "r", "controller": true}],
                "creationTimestamp": "2026-11-22T00:00:00Z",
                "managedFields": [{"manager": "kubelet"}],
            },
            "spec": {
                "nodeName": "n1",
                "containers": [{"name": "web", "image": "nginx:1.27", "env": [{"name": "A", "value": "b"}]}],
                "volumes": [
                    {"name": "cache", "emptyDir": {}},
                    {"name": "config", "configMap": {"name": "web"}},
                ],
                "tolerations": [{"key": "k", "operator": "Exists"}],
            },
            "status": {
                "phase": "Running",
                "podIP": "10.0.0.1",
                "conditions": [
                    {"type": "PodScheduled", "status": "True", "lastTransitionTime": "2026-11-22T00:00:01Z"},
                    {"type": "Ready", "status": "True"},
                ],
                "containerStatuses": [{
                    "name": "web", "image": "nginx:1.27", "imageID": "sha256:abc", "ready": true,
                    "restartCount": 2,
                    "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 20s"}},
                    "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2026-11-22T00:05:00Z"}},
                }],
            },
        }))
        .unwrap()
    }

    #[test]
    fn a_trimmed_pod_answers_the_drain_and_the_health_checks_alike() {
        let full = pod();
        let mut trimmed = full.clone();
        trim(&mut trimmed);
        for drain in [
            DrainSpec::default(),
            serde_json::from_value(
                serde_json::json!({"ignoreDaemonSets": false, "deleteEmptyDirData": true}),
            )
            .unwrap(),
        ] {
            assert_eq!(
                read::must_leave(&full, &drain),
                read::must_leave(&trimmed, &drain)
            );
            assert_eq!(
                read::eviction_obstacle(&full, &drain),
                read::eviction_obstacle(&trimmed, &drain)
            );
        }
        assert!(health::pod_ready(&trimmed));
        assert_eq!(trimmed.metadata.labels, full.metadata.labels);
        assert_eq!(
            trimmed.metadata.owner_references,
            full.metadata.owner_references
        );
        let statuses = trimmed
            .status
            .as_ref()
            .unwrap()
            .container_statuses
            .as_ref()
            .unwrap();
        assert_eq!(statuses[0].restart_count, 2);
        assert!(statuses[0].last_state.is_some());
        // Why a container waits (a fatal signal), and which images the pod runs.
        let waiting = statuses[0].state.as_ref().and_then(|s| s.waiting.as_ref());
        assert_eq!(
            waiting.and_then(|w| w.reason.as_deref()),
            Some("CrashLoopBackOff")
        );
        let spec = trimmed.spec.as_ref().unwrap();
        assert_eq!(
            spec.containers
                .iter()
                .map(|c| (c.name.as_str(), c.image.as_deref()))
                .collect::<Vec<_>>(),
            [("web", Some("nginx:1.27"))]
        );
        // What nothing reads is gone.
        assert_eq!(spec.volumes.as_ref().map(Vec::len), Some(1));
        assert_eq!(
            full.spec.as_ref().unwrap().volumes.as_ref().map(Vec::len),
            Some(2)
        );
        assert_eq!(trimmed.metadata.managed_fields, None);
        assert_eq!(
            trimmed.metadata.annotations.as_ref().map(|a| a.len()),
            Some(1)
        );
    }
}
