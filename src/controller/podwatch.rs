//! Pods of the targets in progress, and only those: one watch per node being updated (its
//! pods, by `spec.nodeName`) and per workload being updated (its pods, by its selector),
//! started when the target's work begins and stopped when it ends. Each change triggers the
//! rollout that holds the target.
//!
//! Watches use streaming lists (`sendInitialEvents`), so a node's pods cost one request.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::{
    Api, Client,
    runtime::{
        WatchStreamExt,
        reflector::{self, ObjectRef, Store},
        watcher::{self, Config},
    },
};
use tokio::{sync::mpsc, task::JoinHandle};

use crate::api::PatchRollout;

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
    store: Store<Pod>,
    task: JoinHandle<()>,
    rollout: String,
}

/// The pod watches of the targets in progress.
pub struct PodWatches {
    client: Client,
    streaming: bool,
    watches: Mutex<HashMap<PodScope, Watch>>,
    triggers: mpsc::UnboundedSender<ObjectRef<PatchRollout>>,
}

impl PodWatches {
    /// Pod watches that trigger reconciles through `triggers`. `streaming` uses streaming
    /// lists (one request per watch) where the API server supports them.
    pub fn new(
        client: Client,
        streaming: bool,
        triggers: mpsc::UnboundedSender<ObjectRef<PatchRollout>>,
    ) -> Self {
        PodWatches {
            client,
            streaming,
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
                Api::<Pod>::all(self.client.clone()),
                Config::default().fields(&format!("spec.nodeName={node}")),
            ),
            PodScope::Workload {
                namespace,
                selector,
            } => (
                Api::<Pod>::namespaced(self.client.clone(), namespace),
                Config::default().labels(selector),
            ),
        };
        // Long watches (bookmarks keep them alive): a node's pods usually cost one request.
        let config = config.timeout(WATCH_TIMEOUT);
        let config = if self.streaming {
            config.streaming_lists()
        } else {
            config
        };
        let (store, writer) = reflector::store();
        let trigger = ObjectRef::<PatchRollout>::new(rollout);
        let triggers = self.triggers.clone();
        let stream = watcher::watcher(api, config)
            .default_backoff()
            .reflect(writer);
        let task = tokio::spawn(async move {
            let mut stream = std::pin::pin!(stream);
            while let Some(event) = stream.next().await {
                match event {
                    Ok(_) => {
                        if triggers.send(trigger.clone()).is_err() {
                            return;
                        }
                    }
                    Err(error) => tracing::warn!(%error, "pod watch failed; retrying"),
                }
            }
        });
        Watch {
            store,
            task,
            rollout: rollout.to_owned(),
        }
    }

    /// The pods of a scope, once its watch has listed them.
    pub fn pods(&self, scope: &PodScope) -> Option<Vec<Arc<Pod>>> {
        let watches = self.lock();
        let watch = watches.get(scope)?;
        // The store is ready once the initial list (or initial events) arrived.
        futures::FutureExt::now_or_never(watch.store.wait_until_ready())?.ok()?;
        Some(watch.store.state())
    }
}

impl Drop for PodWatches {
    fn drop(&mut self) {
        for watch in self.lock().values() {
            watch.task.abort();
        }
    }
}
