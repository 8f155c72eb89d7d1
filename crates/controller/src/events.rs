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

/// What makes two events the same occurrence of one thing. The note is part of it: the
/// note of an `events.k8s.io/v1` Event cannot change, so an event saying something new (a
/// drain now held by another budget) is a new Event carrying the latest message, not a
/// series that would keep showing the first one.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Key {
    warning: bool,
    action: String,
    reason: String,
    note: Option<String>,
    regarding: Reference,
    related: Option<Reference>,
}

/// The identifying fields of an object reference.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Reference {
    api_version: Option<String>,
    kind: Option<String>,
    namespace: Option<String>,
    name: Option<String>,
    uid: Option<String>,
}

impl From<&ObjectReference> for Reference {
    fn from(r: &ObjectReference) -> Self {
        Reference {
            api_version: r.api_version.clone(),
            kind: r.kind.clone(),
            namespace: r.namespace.clone(),
            name: r.name.clone(),
            uid: r.uid.clone(),
        }
    }
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
    /// The last event written for each key.
    recent: HashMap<Key, K8sEvent>,
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
        let key = Key {
            warning: event.type_ == EventType::Warning,
            action: event.action.clone(),
            reason: event.reason.clone(),
            note: event.note.clone(),
            regarding: regarding.into(),
            related: event.secondary.as_ref().map(Reference::from),
        };
        let earlier = {
            let mut state = self.state();
            state.recent.retain(|_, e| {
                last_seen(e)
                    .saturating_add(SERIES_WINDOW)
                    .is_ok_and(|until| until > now)
            });
            state.recent.get(&key).cloned()
        };
        let namespace = regarding.namespace.as_deref().unwrap_or("default");
        let api: Api<K8sEvent> = Api::namespaced(self.client.clone(), namespace);
        let written = match earlier {
            Some(mut repeated) => {
                repeated.series = Some(EventSeries {
                    count: repeated.series.as_ref().map_or(2, |s| s.count + 1),
                    last_observed_time: MicroTime(now),
                });
                let name = repeated.metadata.name.clone().unwrap_or_default();
                let patch = serde_json::json!({"series": repeated.series});
                match api
                    .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                {
                    Ok(_) => repeated,
                    // The event expired or was deleted: start over.
                    Err(kube::Error::Api(status)) if status.code == 404 => {
                        self.create(&api, event, regarding, now).await?
                    }
                    Err(error) => return Err(error),
                }
            }
            None => self.create(&api, event, regarding, now).await?,
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
    ) -> Result<K8sEvent, kube::Error> {
        let mut attempts = 0;
        loop {
            let object = self.new_event(event, regarding, now);
            match api.create(&PostParams::default(), &object).await {
                Ok(_) => return Ok(object),
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

/// When an event was last seen: its series' last occurrence, or its time.
fn last_seen(event: &K8sEvent) -> Timestamp {
    match (&event.series, &event.event_time) {
        (Some(series), _) => series.last_observed_time.0,
        (None, Some(at)) => at.0,
        (None, None) => Timestamp::MIN,
    }
}
