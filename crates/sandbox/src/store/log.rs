//! The change log watches resume from, sized as the real API server's watch cache, and the
//! compaction that expires continue tokens, as etcd's.
//!
//! **Windows.** Each resource keeps its own window of its latest changes, as each resource's
//! watch cache in k8s.io/apiserver does. A window starts with room for 100 changes. When it
//! is full and its oldest change is younger than 75 s (`eventFreshDuration`), its room
//! doubles, up to 102,400 changes; when it is full and even its newest quarter began more
//! than 75 s ago, its room halves, down to 100. Otherwise a full window forgets its oldest
//! change. A watch that resumes from a resource version older than what its resource's
//! window still holds is answered `410 Gone` ("too old resource version"), as the real one
//! is; clients (kube-runtime's watcher, the operator) then list again. Times are read from
//! the sandbox's clock, which may be virtual and jump: a jump looks like time passing, as it
//! would to a real API server. [`Store::set_retention`](super::Store::set_retention) lowers
//! the upper bound (tests of `410`).
//!
//! **Versions.** The latest version of an object is kept as a parsed tree, shared with the
//! store; once a later change supersedes it, the log keeps it as its JSON text, a tenth of
//! the tree's size, and parses it again only for a watch that resumes from before it.
//!
//! **Compaction.** Lists are served from the current objects; a continue token names the
//! resource version of its list's first page. As the API server compacts etcd every five
//! minutes down to the revision it saw five minutes before, a token whose resource version
//! is older than the last compaction is answered `410 Gone`.

use super::Json;
use std::{
    collections::{HashMap, VecDeque},
    sync::Arc,
};

use jiff::{SignedDuration, Timestamp};

use super::watch::{Change, ChangeKind};
use crate::resources::ResourceKey;

/// The least room of a window (the watch cache's `defaultLowerBoundCapacity`).
const LOWER_BOUND: usize = 100;

/// The most room of a window, by default (the watch cache's `defaultUpperBoundCapacity`).
pub const UPPER_BOUND: usize = 100 * 1024;

/// How long a window aims to keep changes (the watch cache's `eventFreshDuration`).
const FRESH: SignedDuration = SignedDuration::from_secs(75);

/// How often etcd is compacted (the API server's `--etcd-compaction-interval`).
const COMPACTION_INTERVAL: SignedDuration = SignedDuration::from_secs(5 * 60);

/// A version of an object as the log keeps it.
#[derive(Debug)]
enum Version {
    /// The latest version, shared with the store.
    Live(Arc<Json>),
    /// A superseded or deleted version, as JSON text.
    Frozen(Arc<str>),
}

impl Version {
    fn value(&self) -> Arc<Json> {
        match self {
            Version::Live(value) => value.clone(),
            // The text was written from a `Value`, so it reads back.
            Version::Frozen(text) => Arc::new(serde_json::from_str(text).unwrap_or_default()),
        }
    }
}

fn freeze(value: &Json) -> Arc<str> {
    // Writing a `Value` as JSON cannot fail.
    value.to_string().into()
}

/// One change, as the log keeps it.
#[derive(Debug)]
struct Logged {
    rv: u64,
    at: Timestamp,
    kind: ChangeKind,
    object: Version,
    previous: Option<Version>,
}

/// The latest changes of one resource.
#[derive(Debug)]
struct Window {
    changes: VecDeque<Logged>,
    /// How many changes it holds at most now.
    room: usize,
    /// Changes up to and including this resource version are no longer kept.
    compacted: u64,
}

impl Window {
    fn forget_oldest(&mut self) {
        if let Some(old) = self.changes.pop_front() {
            self.compacted = old.rv;
        }
    }

    /// Grows or shrinks a full window, as the watch cache's `resizeCacheLocked` does.
    fn resize(&mut self, at: Timestamp, lower: usize, upper: usize) {
        let len = self.changes.len();
        if len < self.room {
            return;
        }
        let age = |i: usize| at.duration_since(self.changes[i].at);
        if age(0) < FRESH {
            self.room = (self.room * 2).min(upper);
        } else if age(len - (self.room / 4).clamp(1, len)) > FRESH {
            self.room = (self.room / 2).max(lower);
        }
        self.trim();
    }

    fn trim(&mut self) {
        while self.changes.len() > self.room {
            self.forget_oldest();
        }
    }

    /// The version `previous` as the change that supersedes it keeps it: frozen, and its
    /// own change in the window frozen too (they share the text).
    fn supersede(&mut self, previous: &Arc<Json>) -> Version {
        let rv = previous["metadata"]["resourceVersion"]
            .as_str()
            .and_then(|rv| rv.parse::<u64>().ok());
        let logged = rv.and_then(|rv| {
            let i = self.changes.binary_search_by_key(&rv, |c| c.rv).ok()?;
            self.changes.get_mut(i)
        });
        let text = match logged.map(|l| &mut l.object) {
            Some(Version::Frozen(text)) => text.clone(),
            Some(object @ Version::Live(_)) => {
                let text = freeze(previous);
                *object = Version::Frozen(text.clone());
                text
            }
            None => freeze(previous),
        };
        Version::Frozen(text)
    }
}

/// The changes kept for watches to resume from, by resource, and the compaction point of
/// continue tokens.
pub(super) struct Log {
    windows: HashMap<ResourceKey, Window>,
    upper: usize,
    /// The last compaction: when, and the resource version it will compact down to next.
    tick: Option<(Timestamp, u64)>,
    /// Continue tokens older than this resource version are no longer served.
    compacted: u64,
}

impl Log {
    pub fn new(upper: usize) -> Self {
        Log {
            windows: HashMap::new(),
            upper: upper.max(1),
            tick: None,
            compacted: 0,
        }
    }

    fn lower(&self) -> usize {
        LOWER_BOUND.min(self.upper)
    }

    /// Keeps a change made at `at`. `live`: its object is the one now stored (not a
    /// deletion).
    pub fn push(&mut self, change: &Change, at: Timestamp, live: bool) {
        self.compact(at, change.rv - 1);
        let (lower, upper) = (self.lower(), self.upper);
        let window = self
            .windows
            .entry(change.resource.clone())
            .or_insert_with(|| Window {
                changes: VecDeque::new(),
                room: lower,
                compacted: 0,
            });
        let previous = change.previous.as_ref().map(|p| window.supersede(p));
        window.resize(at, lower, upper);
        if window.changes.len() >= window.room {
            window.forget_oldest();
        }
        let object = match live {
            true => Version::Live(change.object.clone()),
            false => Version::Frozen(freeze(&change.object)),
        };
        window.changes.push_back(Logged {
            rv: change.rv,
            at,
            kind: change.kind,
            object,
            previous,
        });
    }

    /// etcd's compactor: every five minutes, compacts down to the resource version of the
    /// last time.
    fn compact(&mut self, at: Timestamp, rv: u64) {
        match self.tick {
            None => self.tick = Some((at, rv)),
            Some((last, last_rv)) if at.duration_since(last) >= COMPACTION_INTERVAL => {
                self.compacted = last_rv;
                self.tick = Some((at, rv));
            }
            Some(_) => {}
        }
    }

    /// The changes of `resource` after `rv`, or, when some of them are no longer kept, the
    /// oldest resource version a watch can still resume from.
    pub fn since(&self, resource: &ResourceKey, rv: u64) -> Result<Vec<Change>, u64> {
        let Some(window) = self.windows.get(resource) else {
            return Ok(Vec::new());
        };
        if rv < window.compacted {
            return Err(window.compacted + 1);
        }
        let first = window.changes.partition_point(|c| c.rv <= rv);
        Ok(window
            .changes
            .range(first..)
            .map(|c| Change {
                rv: c.rv,
                resource: resource.clone(),
                kind: c.kind,
                object: c.object.value(),
                previous: c.previous.as_ref().map(Version::value),
            })
            .collect())
    }

    /// Continue tokens of lists older than this resource version are no longer served.
    pub fn compacted(&self) -> u64 {
        self.compacted
    }

    /// Sets the most changes a resource's window keeps.
    pub fn set_retention(&mut self, retention: usize) {
        self.upper = retention.max(1);
        let (lower, upper) = (self.lower(), self.upper);
        for window in self.windows.values_mut() {
            window.room = window.room.clamp(lower, upper);
            window.trim();
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pods() -> ResourceKey {
        ResourceKey {
            group: String::new(),
            plural: "pods".into(),
        }
    }

    fn version(rv: u64) -> Arc<Json> {
        Arc::new(Json::from(
            json!({"metadata": {"name": "p", "resourceVersion": rv.to_string()}}),
        ))
    }

    /// Logs changes of one pod at `rvs`, `step` apart from `start`, each superseding the
    /// one before.
    fn write(
        log: &mut Log,
        rvs: std::ops::RangeInclusive<u64>,
        start: Timestamp,
        step: SignedDuration,
    ) {
        let first = *rvs.start();
        for rv in rvs {
            let change = Change {
                rv,
                resource: pods(),
                kind: ChangeKind::Modified,
                object: version(rv),
                previous: (rv > 1).then(|| version(rv - 1)),
            };
            log.push(&change, start + step * (rv - first) as i32, true);
        }
    }

    fn room(log: &Log) -> usize {
        log.windows[&pods()].room
    }

    #[test]
    fn a_window_grows_while_its_changes_are_fresh_and_shrinks_once_they_are_old() {
        let mut log = Log::new(UPPER_BOUND);
        let start: Timestamp = "2026-12-06T00:00:00Z".parse().unwrap();
        let second = SignedDuration::from_secs(1);
        // 150 changes in 15 s: full at 100 with every change fresh, the window doubles.
        write(&mut log, 1..=150, start, second / 10);
        assert_eq!(room(&log), 200);
        assert_eq!(log.since(&pods(), 0).unwrap().len(), 150);
        // An hour later, a change every 2 s: full at 200, its newest quarter began 100 s
        // ago, it halves; it then holds its last 100.
        let later = start + SignedDuration::from_hours(1);
        write(&mut log, 151..=250, later, second * 2);
        assert_eq!(room(&log), 100);
        assert_eq!(log.since(&pods(), 150).unwrap().len(), 100);
        assert_eq!(log.since(&pods(), 149).unwrap_err(), 151);
        // One a second keeps 100 s of changes in 100: neither fresh nor stale, it stays.
        write(&mut log, 251..=400, later + second * 200, second);
        assert_eq!(room(&log), 100);
    }

    #[test]
    fn superseded_versions_are_kept_as_text_and_read_back() {
        let mut log = Log::new(UPPER_BOUND);
        write(&mut log, 1..=3, Timestamp::UNIX_EPOCH, SignedDuration::ZERO);
        let window = &log.windows[&pods()];
        assert!(matches!(window.changes[0].object, Version::Frozen(_)));
        assert!(matches!(window.changes[1].object, Version::Frozen(_)));
        assert!(matches!(window.changes[2].object, Version::Live(_)));
        let changes = log.since(&pods(), 1).unwrap();
        assert_eq!(changes[0].object, version(2));
        assert_eq!(changes[1].previous, Some(version(2)));
    }

    #[test]
    fn windows_are_per_resource_and_bounded_by_the_retention() {
        let mut log = Log::new(2);
        write(&mut log, 1..=5, Timestamp::UNIX_EPOCH, SignedDuration::ZERO);
        assert_eq!(log.since(&pods(), 1).unwrap_err(), 4);
        assert_eq!(log.since(&pods(), 3).unwrap().len(), 2);
        let nodes = ResourceKey {
            group: String::new(),
            plural: "nodes".into(),
        };
        assert!(log.since(&nodes, 1).unwrap().is_empty());
    }

    #[test]
    fn continue_tokens_expire_with_etcd_compaction_every_five_minutes() {
        let mut log = Log::new(UPPER_BOUND);
        let start: Timestamp = "2026-12-06T00:00:00Z".parse().unwrap();
        let none = SignedDuration::ZERO;
        write(&mut log, 1..=10, start, none);
        assert_eq!(log.compacted(), 0);
        write(
            &mut log,
            11..=11,
            start + SignedDuration::from_mins(5),
            none,
        );
        assert_eq!(log.compacted(), 0);
        write(
            &mut log,
            12..=12,
            start + SignedDuration::from_mins(10),
            none,
        );
        assert_eq!(log.compacted(), 10);
    }
}
