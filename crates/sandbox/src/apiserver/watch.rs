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

use super::{Body, Reply, Request, partial, table, verbs};
use crate::{
    resources::ResourceType,
    status::ApiError,
    store::{Filter, Store, WatchFrom, WatchItem, WatchStream},
};

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
    store: Arc<Store>,
    resource: Arc<ResourceType>,
    storage: Arc<ResourceType>,
    events_v1: bool,
    filter: Filter,
    request: &Request,
) -> Result<Reply, ApiError> {
    if request.params.flag("sendInitialEvents") && !store.watch_list() {
        // As an API server with the WatchList feature off answers.
        return Err(ApiError::invalid_options(
            "sendInitialEvents",
            "sendInitialEvents is forbidden for watch unless the WatchList feature gate is enabled",
        ));
    }
    let from =
        if request.params.flag("sendInitialEvents") {
            WatchFrom::InitialEvents
        } else {
            match request.params.get("resourceVersion") {
                None | Some("" | "0") => WatchFrom::Current,
                Some(rv) => WatchFrom::After(rv.parse().map_err(|_| {
                    ApiError::bad_request(format!("invalid resource version: {rv}"))
                })?),
            }
        };
    let table = table::options(request)?;
    let mut stream = match store.watch(&storage, filter, from) {
        Ok(stream) => stream,
        Err(error) if error.code == 410 => return Ok(Reply::Stream(error_body(&error))),
        Err(error) => return Err(error),
    };
    let now = store.clock().now();
    let timeout = request
        .params
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<i64>().ok())
        .unwrap_or(1800);
    let state = State {
        store,
        resource,
        events_v1,
        table,
        partial: partial::wanted(request),
        pending: std::mem::take(&mut stream.initial).into(),
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
            item = state.stream.rx.recv() => match item {
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
