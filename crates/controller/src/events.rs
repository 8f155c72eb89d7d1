//! Kubernetes Events (`events.k8s.io/v1`) stamped by the operator's clock.
//!
//! kube-runtime's `Recorder` reads the wall clock for `eventTime`, the series' times and the
//! names of events. The operator's clock is a parameter (virtual in the sandbox), so events
//! are recorded here, the same way otherwise:
//!
//! - an event is created in the namespace of the object it is about (`default` for
//!   cluster-scoped ones), named `<object>.<hex nanoseconds of its time>`, with the reporting
//!   controller and instance;
//! - the same event again — same type, reason, action, note, reporter, regarding and
//!   related object — within six minutes of its last occurrence becomes a series: the first event is
//!   patched with `series.count` and `series.lastObservedTime`, as client-go's event
//!   broadcaster and kube-runtime do, instead of a new object;
//! - a series whose event has gone (expired or deleted) starts over with a new event.

use std::{
    collections::HashMap,
    fmt::Write as _,
    sync::{Arc, Mutex},
};

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::{
    api::{
        core::v1::ObjectReference,
        events::v1::{Event as K8sEvent, EventSeries},
    },
    apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta},
};
use kube::{
    Api, Client,
    api::{Patch, PatchParams, PostParams},
};

pub use kube::runtime::events::{Event, EventType, Reporter};

use patchpilot_clock::SharedClock;

/// How long after its last occurrence an event can still grow into a series.
const SERIES_WINDOW: SignedDuration = SignedDuration::from_mins(6);

/// What makes two events the same occurrence of one thing: type, action, reason, note,
/// regarding and related object. The note is part of it: the note of an `events.k8s.io/v1`
/// Event cannot change, so an event saying something new (a drain now held by another
/// budget) is a new Event carrying the latest message, not a series that would keep showing
/// the first one.
///
/// Written as one string, each part after its length (or `-` for none), so that no two
/// keys read alike: the recorder keeps a key for every event of the last six minutes, a
/// dozen of them for each node a big rollout updates.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Key(String);

impl Key {
    fn of(event: &Event, regarding: &ObjectReference) -> Key {
        fn part(key: &mut String, text: Option<&str>) {
            match text {
                Some(text) => {
                    let _ = write!(key, "{}:{text}", text.len());
                }
                None => key.push('-'),
            }
        }
        let mut key = String::new();
        let warning = event.type_ == EventType::Warning;
        part(&mut key, Some(if warning { "W" } else { "N" }));
        part(&mut key, Some(&event.action));
        part(&mut key, Some(&event.reason));
        part(&mut key, event.note.as_deref());
        for object in [Some(regarding), event.secondary.as_ref()] {
            let Some(o) = object else {
                part(&mut key, None);
                continue;
            };
            for field in [&o.api_version, &o.kind, &o.namespace, &o.name, &o.uid] {
                part(&mut key, field.as_deref());
            }
        }
        Key(key)
    }
}

/// The last event written for a key: what a next occurrence needs to patch it.
#[derive(Clone, Debug)]
struct Seen {
    /// The Event's name (in the namespace of the object it is about).
    name: String,
    /// Its occurrences so far: 1 until it becomes a series.
    count: i32,
    /// Its last occurrence.
    last: Timestamp,
}

/// Records events, stamped by a clock.
#[derive(Clone)]
pub struct Recorder {
    client: Client,
    reporter: Reporter,
    clock: SharedClock,
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    /// The last event written for each key, for six minutes after its last occurrence.
    recent: HashMap<Key, Seen>,
    /// The nanoseconds in the last name given, so that events stamped at the same instant
    /// (a virtual clock stands still while the operator works) get different names.
    last_name: i128,
}

impl Recorder {
    /// A recorder for `reporter`, reading `clock`.
    pub fn new(client: Client, reporter: Reporter, clock: SharedClock) -> Self {
        Recorder {
            client,
            reporter,
            clock,
            state: Arc::default(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Publishes `event` about `regarding`: a new Event, or the next occurrence of a series.
    pub async fn publish(
        &self,
        event: &Event,
        regarding: &ObjectReference,
    ) -> Result<(), kube::Error> {
        let now = self.clock.now();
        let key = Key::of(event, regarding);
        let earlier = {
            let mut state = self.state();
            state.recent.retain(|_, seen| {
                seen.last
                    .saturating_add(SERIES_WINDOW)
                    .is_ok_and(|until| until > now)
            });
            state.recent.get(&key).cloned()
        };
        let namespace = regarding.namespace.as_deref().unwrap_or("default");
        let api: Api<K8sEvent> = Api::namespaced(self.client.clone(), namespace);
        let created = |name| Seen {
            name,
            count: 1,
            last: now,
        };
        let written = match earlier {
            Some(seen) => {
                let series = EventSeries {
                    count: seen.count + 1,
                    last_observed_time: MicroTime(now),
                };
                let patch = serde_json::json!({"series": series});
                match api
                    .patch(&seen.name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                {
                    Ok(_) => Seen {
                        name: seen.name,
                        count: series.count,
                        last: now,
                    },
                    // The event expired or was deleted: start over.
                    Err(kube::Error::Api(status)) if status.code == 404 => {
                        created(self.create(&api, event, regarding, now).await?)
                    }
                    Err(error) => return Err(error),
                }
            }
            None => created(self.create(&api, event, regarding, now).await?),
        };
        self.state().recent.insert(key, written);
        Ok(())
    }

    /// Creates a new event, under a name no other event of this recorder has had.
    async fn create(
        &self,
        api: &Api<K8sEvent>,
        event: &Event,
        regarding: &ObjectReference,
        now: Timestamp,
    ) -> Result<String, kube::Error> {
        let mut attempts = 0;
        loop {
            let object = self.new_event(event, regarding, now);
            match api.create(&PostParams::default(), &object).await {
                Ok(_) => return Ok(object.metadata.name.unwrap_or_default()),
                // Another replica named an event of the same object at the same instant.
                Err(kube::Error::Api(status)) if status.code == 409 && attempts < 3 => {
                    attempts += 1;
                }
                Err(error) => return Err(error),
            }
        }
    }

    fn new_event(&self, event: &Event, regarding: &ObjectReference, now: Timestamp) -> K8sEvent {
        let nanos = {
            let mut state = self.state();
            state.last_name = now.as_nanosecond().max(state.last_name + 1);
            state.last_name
        };
        let subject = regarding
            .name
            .as_deref()
            .unwrap_or(&self.reporter.controller);
        K8sEvent {
            metadata: ObjectMeta {
                name: Some(format!("{subject}.{nanos:x}")),
                namespace: regarding.namespace.clone(),
                ..ObjectMeta::default()
            },
            event_time: Some(MicroTime(now)),
            action: Some(event.action.clone()),
            reason: Some(event.reason.clone()),
            note: event.note.clone(),
            type_: Some(
                match event.type_ {
                    EventType::Normal => "Normal",
                    EventType::Warning => "Warning",
                }
                .to_owned(),
            ),
            regarding: Some(regarding.clone()),
            related: event.secondary.clone(),
            reporting_controller: Some(self.reporter.controller.clone()),
            reporting_instance: Some(
                self.reporter
                    .instance
                    .clone()
                    .unwrap_or_else(|| self.reporter.controller.clone()),
            ),
            ..K8sEvent::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(action: &str, reason: &str, note: Option<&str>) -> Event {
        Event {
            type_: EventType::Normal,
            reason: reason.into(),
            note: note.map(Into::into),
            action: action.into(),
            secondary: None,
        }
    }

    fn node(name: &str) -> ObjectReference {
        ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Node".into()),
            name: Some(name.into()),
            ..ObjectReference::default()
        }
    }

    /// The same event about the same object has the same key; moving text from one part to
    /// the next, or an empty part for a missing one, makes another key.
    #[test]
    fn keys_tell_events_apart_exactly() {
        let key = |e: &Event, r: &ObjectReference| Key::of(e, r);
        let n1 = node("n1");
        let drained = event("Drain", "Drained", Some("3 pods"));
        let again = event("Drain", "Drained", Some("3 pods"));
        assert_eq!(key(&drained, &n1), key(&again, &node("n1")));
        let others = [
            key(&event("Drai", "nDrained", Some("3 pods")), &n1),
            key(&event("Drain", "Drained3", Some(" pods")), &n1),
            key(&event("Drain", "Drained", Some("")), &n1),
            key(&event("Drain", "Drained", None), &n1),
            key(&drained, &node("n2")),
            key(
                &Event {
                    type_: EventType::Warning,
                    ..event("Drain", "Drained", Some("3 pods"))
                },
                &n1,
            ),
            key(
                &Event {
                    secondary: Some(ObjectReference::default()),
                    ..event("Drain", "Drained", Some("3 pods"))
                },
                &n1,
            ),
        ];
        for (i, other) in others.iter().enumerate() {
            assert_ne!(*other, key(&drained, &n1), "{i}");
            for (j, another) in others.iter().enumerate().skip(i + 1) {
                assert_ne!(other, another, "{i} {j}");
            }
        }
    }
}
