//! Lists, a page at a time, and their continue tokens.

use std::{collections::BTreeMap, sync::Arc};

use serde_json::{Value, json};

use super::{ObjectKey, Store, watch::Filter};
use crate::{resources::ResourceType, status::ApiError};

/// One page of a list.
#[derive(Clone, Debug)]
pub struct Page {
    /// The objects, by namespace and name.
    pub items: Vec<Arc<Value>>,
    /// The resource version of the list.
    pub rv: u64,
    /// The token for the next page, if there is one.
    pub next: Option<String>,
    /// How many objects remain after this page, for a list without selectors.
    pub remaining: Option<usize>,
}

impl Store {
    /// The objects `filter` wants, in namespace and name order, a page of `limit` at a time
    /// (`0`: all) after `after`.
    pub fn list(
        &self,
        resource: &ResourceType,
        filter: &Filter,
        limit: usize,
        after: Option<&ObjectKey>,
    ) -> Page {
        use std::ops::Bound::{Excluded, Included, Unbounded};
        let inner = self.lock();
        let empty = BTreeMap::new();
        let objects = inner.objects.get(&resource.storage).unwrap_or(&empty);
        let start = match (after, &filter.namespace) {
            (Some(after), _) => Excluded(after.clone()),
            (None, Some(namespace)) => Included((namespace.clone(), String::new())),
            (None, None) => Unbounded,
        };
        let mut matching = objects
            .range((start, Unbounded))
            .take_while(|((ns, _), _)| filter.namespace.as_ref().is_none_or(|wanted| ns == wanted))
            .filter(|(_, object)| filter.matches(object));
        let page: Vec<(&ObjectKey, &Arc<Value>)> = if limit == 0 {
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
        let next = more
            .then(|| {
                page.last()
                    .map(|(key, _)| continue_token(inner.rv, &key.0, &key.1))
            })
            .flatten();
        Page {
            items: page.into_iter().map(|(_, object)| object.clone()).collect(),
            rv: inner.rv,
            remaining: next.as_ref().and(remaining),
            next,
        }
    }

    /// The resource version and position a continue token stands for, or 410 if the
    /// changes since are no longer kept.
    pub fn continue_from(&self, token: &str) -> Result<ObjectKey, ApiError> {
        let (rv, key) = read_continue_token(token).ok_or_else(|| ApiError::bad_request("continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)"))?;
        if rv < self.lock().log.compacted() {
            return Err(ApiError::gone(
                "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.",
            ));
        }
        Ok(key)
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
