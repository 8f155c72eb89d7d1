//! Lists, a page at a time, and their continue tokens.
//!
//! A continue token carries the resource version of its list's first page, and every page
//! of the list reports that resource version, as the real API server's do. The pages are
//! read from the current objects, though, not from a snapshot at that version (a known
//! limit: a paged list that runs while objects change may see some of them changed). A
//! token older than the last compaction of the change log is answered `410 Gone`.

use super::Json;
use std::{collections::BTreeMap, sync::Arc};

use serde_json::{Value, json};

use super::{ObjectKey, Store, watch::Filter};
use crate::{resources::ResourceType, status::ApiError};

/// One page of a list.
#[derive(Clone, Debug)]
pub struct Page {
    /// The objects, by namespace and name.
    pub items: Vec<Arc<Json>>,
    /// The resource version of the list.
    pub rv: u64,
    /// The token for the next page, if there is one.
    pub next: Option<String>,
    /// How many objects remain after this page, for a list without selectors.
    pub remaining: Option<usize>,
}

/// Where a list goes on, as its continue token says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Continue {
    /// The resource version of the list's first page.
    pub rv: u64,
    /// The namespace and name of the last object served.
    pub after: ObjectKey,
}

impl Store {
    /// The objects `filter` wants, in namespace and name order, a page of `limit` at a time
    /// (`0`: all), from the start or where `from` says.
    pub fn list(
        &self,
        resource: &ResourceType,
        filter: &Filter,
        limit: usize,
        from: Option<&Continue>,
    ) -> Page {
        use std::ops::Bound::{Excluded, Included, Unbounded};
        let inner = self.lock();
        let empty = BTreeMap::new();
        let objects = inner.objects.get(&resource.storage).unwrap_or(&empty);
        let start = match (from, &filter.namespace) {
            (Some(from), _) => Excluded(from.after.clone()),
            (None, Some(namespace)) => Included((namespace.clone(), String::new())),
            (None, None) => Unbounded,
        };
        let mut matching = objects
            .range((start, Unbounded))
            .take_while(|((ns, _), _)| filter.namespace.as_ref().is_none_or(|wanted| ns == wanted))
            .filter(|(_, object)| filter.matches(object));
        let page: Vec<(&ObjectKey, &Arc<Json>)> = if limit == 0 {
            matching.by_ref().collect()
        } else {
            matching.by_ref().take(limit).collect()
        };
        // As the API server does, the count of what remains is given only for a list
        // without selectors; with them, whether anything remains is all a page says (and
        // counting on every page made a full paged list quadratic).
        let selects = !filter.labels.is_everything() || !filter.fields.is_empty();
        let (more, remaining) = match (limit, selects) {
            (0, _) => (false, None),
            (_, true) => (matching.next().is_some(), None),
            (_, false) => {
                let count = matching.count();
                (count > 0, Some(count))
            }
        };
        let rv = from.map_or(inner.rv, |from| from.rv);
        let next = more
            .then(|| {
                page.last()
                    .map(|(key, _)| continue_token(rv, &key.0, &key.1))
            })
            .flatten();
        Page {
            items: page.into_iter().map(|(_, object)| object.clone()).collect(),
            rv,
            remaining: next.as_ref().and(remaining),
            next,
        }
    }

    /// Where a continue token says its list goes on, or 410 if the log was compacted past
    /// the list's resource version.
    pub fn continue_from(&self, token: &str) -> Result<Continue, ApiError> {
        let (rv, after) = read_continue_token(token).ok_or_else(|| ApiError::bad_request("invalid continue token: continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)"))?;
        if rv < self.lock().log.compacted() {
            return Err(ApiError::gone(
                "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.",
            ));
        }
        Ok(Continue { rv, after })
    }
}

fn continue_token(rv: u64, namespace: &str, name: &str) -> String {
    use base64::Engine;
    let json = json!({"v": "meta.k8s.io/v1", "rv": rv, "start": format!("{namespace}/{name}")});
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json.to_string())
}

fn read_continue_token(token: &str) -> Option<(u64, ObjectKey)> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()?;
    let value: Value = serde_json::from_slice(&bytes).ok()?;
    let rv = value["rv"].as_u64()?;
    let (ns, name) = value["start"].as_str()?.split_once('/')?;
    Some((rv, (ns.to_owned(), name.to_owned())))
}
