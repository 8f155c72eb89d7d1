//! The watchers that follow the changes, and how a watch starts.

use super::Json;
use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use tokio::sync::mpsc;

use super::Store;
use crate::{
    resources::{ResourceKey, ResourceType},
    selector::{FieldTerm, LabelSelector, fields_match},
    status::ApiError,
};

/// What happened to an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    /// Created.
    Added,
    /// Changed.
    Modified,
    /// Removed.
    Deleted,
}

/// One change, as the log keeps it.
#[derive(Debug)]
pub struct Change {
    /// The resource version of the change.
    pub rv: u64,
    /// The resource.
    pub resource: ResourceKey,
    /// What happened.
    pub kind: ChangeKind,
    /// The object after the change (for a deletion, as it was last).
    pub object: Arc<Json>,
    /// The object before the change.
    pub previous: Option<Arc<Json>>,
}

/// Which objects a list or watch wants.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// Only this namespace.
    pub namespace: Option<String>,
    /// The label selector.
    pub labels: LabelSelector,
    /// The field selector.
    pub fields: Vec<FieldTerm>,
}

impl Filter {
    /// Whether the object is wanted.
    pub fn matches(&self, object: &Json) -> bool {
        if let Some(namespace) = &self.namespace
            && object["metadata"]["namespace"].as_str() != Some(namespace.as_str())
        {
            return false;
        }
        if !self.labels.is_everything() && !self.labels.matches(&crate::selector::labels_of(object))
        {
            return false;
        }
        fields_match(object, &self.fields)
    }
}

/// What a watch delivers.
#[derive(Clone, Debug)]
pub enum WatchItem {
    /// An event: `ADDED`, `MODIFIED` or `DELETED`, and the object.
    Event(&'static str, Arc<Json>),
    /// A bookmark at a resource version; `initial_events_end` marks the end of the initial
    /// events of a streaming list.
    Bookmark {
        /// The resource version.
        rv: u64,
        /// Sent after the initial events of `sendInitialEvents=true`.
        initial_events_end: bool,
    },
}

/// How many items an API client's watch may leave unread before the store closes it, by
/// default: a client that stops reading its watch (or reads it slower than the changes come)
/// costs the sandbox a bounded queue, and then sees its watch end, as the real API server
/// closes a watcher whose buffer stays full. The sandbox's own watchers (its simulated
/// controllers and kubelets) are not bounded.
pub const DEFAULT_WATCH_QUEUE: usize = 10_000;

/// The items a bounded watcher has queued and its consumer not yet taken.
#[derive(Debug)]
pub(super) struct Backlog {
    queued: Arc<AtomicUsize>,
    limit: usize,
}

/// A registered watcher.
pub(super) struct Watcher {
    pub id: u64,
    pub resource: ResourceKey,
    pub filter: Filter,
    pub tx: mpsc::UnboundedSender<WatchItem>,
    /// The bound of an API client's watch; `None` for the sandbox's own watchers.
    pub backlog: Option<Backlog>,
}

impl Watcher {
    /// Queues an item; `false` when the watcher is to be dropped: its consumer went away,
    /// or left its whole bound unread (its stream then ends after what is queued).
    pub fn send(&self, item: WatchItem) -> bool {
        if let Some(backlog) = &self.backlog {
            if backlog.queued.load(Ordering::Relaxed) >= backlog.limit {
                return false;
            }
            backlog.queued.fetch_add(1, Ordering::Relaxed);
        }
        self.tx.send(item).is_ok()
    }

    /// How many items wait for the consumer of a bounded watcher.
    pub fn queued(&self) -> Option<usize> {
        self.backlog
            .as_ref()
            .map(|b| b.queued.load(Ordering::Relaxed))
    }

    /// The event this watcher sees for a change, if any: with a selector, an object that
    /// starts matching is `ADDED` and one that stops matching is `DELETED`.
    pub fn event_for(&self, change: &Change) -> Option<WatchItem> {
        if change.resource != self.resource {
            return None;
        }
        let now = self.filter.matches(&change.object);
        let before = change
            .previous
            .as_deref()
            .is_some_and(|p| self.filter.matches(p));
        let kind = match change.kind {
            ChangeKind::Added => now.then_some("ADDED"),
            ChangeKind::Deleted => (now || before).then_some("DELETED"),
            ChangeKind::Modified => match (before, now) {
                (true, true) => Some("MODIFIED"),
                (false, true) => Some("ADDED"),
                (true, false) => Some("DELETED"),
                (false, false) => None,
            },
        }?;
        Some(WatchItem::Event(kind, change.object.clone()))
    }
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
    /// What arrives later. Consumers of a bounded watch ([`Store::client_watch`]) take it
    /// with [`WatchStream::recv`], which counts what they took.
    pub rx: mpsc::UnboundedReceiver<WatchItem>,
    /// What a bounded watch has queued.
    queued: Option<Arc<AtomicUsize>>,
}

impl WatchStream {
    /// The next item that arrives; `None` once the watcher is closed and its queue empty.
    pub async fn recv(&mut self) -> Option<WatchItem> {
        let item = self.rx.recv().await?;
        if let Some(queued) = &self.queued {
            queued.fetch_sub(1, Ordering::Relaxed);
        }
        Some(item)
    }
}

impl Store {
    /// Starts a watch of `resource` objects `filter` wants, for the sandbox's own use: it
    /// queues whatever its consumer leaves unread.
    pub fn watch(
        &self,
        resource: &ResourceType,
        filter: Filter,
        from: WatchFrom,
    ) -> Result<WatchStream, ApiError> {
        self.start_watch(resource, filter, from, false)
    }

    /// Starts a watch of an API client: closed once it leaves the store's bound
    /// ([`Store::set_watch_queue`]) of items unread.
    pub fn client_watch(
        &self,
        resource: &ResourceType,
        filter: Filter,
        from: WatchFrom,
    ) -> Result<WatchStream, ApiError> {
        self.start_watch(resource, filter, from, true)
    }

    /// How many items an API client's watch may leave unread before it is closed
    /// ([`DEFAULT_WATCH_QUEUE`] unless set); applies to the watches started after.
    pub fn set_watch_queue(&self, limit: usize) {
        self.lock().watch_queue = limit.max(1);
    }

    /// How many items each API client's watch has queued unread.
    pub fn watch_backlogs(&self) -> Vec<usize> {
        self.lock()
            .watchers
            .iter()
            .filter_map(Watcher::queued)
            .collect()
    }

    fn start_watch(
        &self,
        resource: &ResourceType,
        filter: Filter,
        from: WatchFrom,
        bounded: bool,
    ) -> Result<WatchStream, ApiError> {
        let mut inner = self.lock();
        let mut initial = Vec::new();
        match from {
            WatchFrom::After(rv) => {
                let changes = inner.log.since(&resource.storage, rv).map_err(|oldest| {
                    ApiError::gone(format!("too old resource version: {rv} ({oldest})"))
                })?;
                let watcher = Watcher {
                    id: 0,
                    resource: resource.storage.clone(),
                    filter: filter.clone(),
                    tx: mpsc::unbounded_channel().0,
                    backlog: None,
                };
                initial.extend(changes.iter().filter_map(|c| watcher.event_for(c)));
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
        let queued = bounded.then(|| Arc::new(AtomicUsize::new(0)));
        let limit = inner.watch_queue;
        inner.watchers.push(Watcher {
            id,
            resource: resource.storage.clone(),
            filter,
            tx,
            backlog: queued.as_ref().map(|queued| Backlog {
                queued: queued.clone(),
                limit,
            }),
        });
        Ok(WatchStream {
            id,
            initial,
            rx,
            queued,
        })
    }

    /// Sends a bookmark at the current resource version to one watcher, in order with its
    /// events.
    pub fn bookmark(&self, watcher: u64) {
        let mut inner = self.lock();
        let rv = inner.rv;
        inner.watchers.retain(|w| {
            w.id != watcher
                || w.send(WatchItem::Bookmark {
                    rv,
                    initial_events_end: false,
                })
        });
    }

    /// Ends a watcher's registration.
    pub fn unwatch(&self, watcher: u64) {
        self.lock().watchers.retain(|w| w.id != watcher);
    }
}
