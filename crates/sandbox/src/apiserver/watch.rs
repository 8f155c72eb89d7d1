//! Watches: newline-delimited JSON events, from the current objects or a resource version,
//! with bookmarks and the server-side timeout; `410 Gone` as an `ERROR` event when the
//! resource version is no longer kept. Objects go whole, as one-row tables, or as their
//! metadata only, as the client's `Accept` header asks.

use std::{collections::VecDeque, convert::Infallible, sync::Arc};

use bytes::Bytes;
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use super::{Body, Reply, Request, partial, query::ListOptions, table, verbs};
use crate::{
    resources::ResourceType,
    status::ApiError,
    store::{Filter, Store, WatchFrom, WatchItem, WatchStream},
};

/// How long a watch lasts without `timeoutSeconds` (or with `0`); the API server picks
/// between 30 and 60 minutes.
const DEFAULT_TIMEOUT: i64 = 1800;

/// How often a watch that allows bookmarks gets one, in the sandbox's time.
const BOOKMARK_EVERY: SignedDuration = SignedDuration::from_secs(60);

/// A watch in progress; dropping it (the client went away) ends its registration.
struct State {
    store: Arc<Store>,
    resource: Arc<ResourceType>,
    events_v1: bool,
    /// Render events as one-row tables (`kubectl get -w`), carrying their objects so.
    table: Option<table::Include>,
    /// Send each event's object (bookmarks too) as its metadata only.
    partial: Option<partial::Partial>,
    pending: VecDeque<WatchItem>,
    /// Items up to this resource version are not sent.
    after: u64,
    stream: WatchStream,
    bookmarks: bool,
    deadline: Timestamp,
    next_bookmark: Timestamp,
}

impl Drop for State {
    fn drop(&mut self) {
        self.store.unwatch(self.stream.id);
    }
}

/// Starts a watch response.
pub(super) fn watch(
    options: ListOptions,
    store: Arc<Store>,
    resource: Arc<ResourceType>,
    storage: Arc<ResourceType>,
    events_v1: bool,
    filter: Filter,
    request: &Request,
) -> Result<Reply, ApiError> {
    let from = if request.params.flag("sendInitialEvents") {
        WatchFrom::InitialEvents
    } else {
        match options.resource_version {
            None | Some(0) => WatchFrom::Current,
            Some(rv) => WatchFrom::After(rv),
        }
    };
    // A watch from a resource version the server has not reached yet waits for it: it
    // sends nothing up to it.
    let after = match from {
        WatchFrom::After(rv) => rv,
        _ => 0,
    };
    let timeout = match options.timeout {
        None | Some(0) => DEFAULT_TIMEOUT,
        Some(seconds) if seconds < 0 => {
            // The request's context ends before the watch begins.
            let error = ApiError::internal("context deadline exceeded");
            return Ok(Reply::Stream(error_body(&error)));
        }
        Some(seconds) => seconds,
    };
    let table = table::options(request)?;
    let mut stream = match store.client_watch(&storage, filter, from) {
        Ok(stream) => stream,
        Err(error) if error.code == 410 => return Ok(Reply::Stream(error_body(&error))),
        Err(error) => return Err(error),
    };
    let now = store.clock().now();
    let state = State {
        store,
        resource,
        events_v1,
        table,
        partial: partial::wanted(request),
        pending: std::mem::take(&mut stream.initial).into(),
        after,
        stream,
        bookmarks: request.params.flag("allowWatchBookmarks"),
        deadline: now
            .saturating_add(SignedDuration::from_secs(timeout))
            .unwrap_or(now),
        next_bookmark: now.saturating_add(BOOKMARK_EVERY).unwrap_or(now),
    };
    let body = futures::stream::unfold(state, next_line);
    Ok(Reply::Stream(StreamBody::new(body).boxed_unsync()))
}

/// A body with one `ERROR` event.
fn error_body(error: &ApiError) -> Body {
    let line = format!(
        "{}\n",
        json!({"type": "ERROR", "object": error.to_status()})
    );
    let stream =
        futures::stream::once(async move { Ok::<_, Infallible>(Frame::data(Bytes::from(line))) });
    StreamBody::new(stream).boxed_unsync()
}

/// The next line of the watch, or `None` when it ends.
async fn next_line(mut state: State) -> Option<(Result<Frame<Bytes>, Infallible>, State)> {
    loop {
        if let Some(item) = state.pending.pop_front() {
            if item_rv(&item) <= state.after {
                continue;
            }
            let line = render(&state, item);
            return Some((Ok(Frame::data(Bytes::from(line))), state));
        }
        let now = state.store.clock().now();
        if now >= state.deadline {
            return None;
        }
        let wake = if state.bookmarks {
            state.deadline.min(state.next_bookmark)
        } else {
            state.deadline
        };
        let sleep = tokio::time::sleep(state.store.clock().sleep_for(wake));
        tokio::select! {
            item = state.stream.recv() => match item {
                Some(item) => state.pending.push_back(item),
                None => return None,
            },
            () = sleep => {
                let now = state.store.clock().now();
                if state.bookmarks && now >= state.next_bookmark {
                    state.next_bookmark = now.saturating_add(BOOKMARK_EVERY).unwrap_or(now);
                    state.store.bookmark(state.stream.id);
                }
            }
        }
    }
}

/// The resource version of an event or a bookmark.
fn item_rv(item: &WatchItem) -> u64 {
    match item {
        WatchItem::Event(_, object) => object["metadata"]["resourceVersion"]
            .as_str()
            .and_then(|rv| rv.parse().ok())
            .unwrap_or(u64::MAX),
        WatchItem::Bookmark { rv, .. } => *rv,
    }
}

fn render(state: &State, item: WatchItem) -> String {
    let event = match item {
        WatchItem::Event(kind, object) => {
            let object = verbs::outgoing(&object, state.events_v1);
            let object = match state.table {
                Some(include) => {
                    let now = state.store.clock().now();
                    table::render(
                        &state.resource,
                        std::slice::from_ref(&object),
                        include,
                        None,
                        now,
                    )
                }
                None => match state.partial {
                    Some(partial) => partial.event(object),
                    None => object,
                },
            };
            json!({"type": kind, "object": object})
        }
        WatchItem::Bookmark {
            rv,
            initial_events_end,
        } => {
            let mut metadata = json!({"resourceVersion": rv.to_string()});
            if initial_events_end {
                metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
            }
            let object: Value = json!({"kind": state.resource.kind, "apiVersion": state.resource.api_version(), "metadata": metadata});
            let object = match state.partial {
                Some(partial) => partial.event(object),
                None => object,
            };
            json!({"type": "BOOKMARK", "object": object})
        }
    };
    format!("{event}\n")
}
