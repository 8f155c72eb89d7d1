//! The scenario's steps: what a person would do, once the cluster is in the state they wait
//! for, through the API as the scenario's user.

use std::{collections::BTreeMap, sync::Arc};

use jiff::Timestamp;
use serde_json::Value;

use super::say;
use crate::json::Json;
use crate::{
    SCENARIO_USER, Sandbox,
    apiserver::Request,
    scenario::{Selection, Step},
    store::{Filter, WatchFrom, WatchItem},
};

/// Carries out one step, once: after its delay, as soon as any object it selects is in the
/// wanted state, merges its patch into every object selected at that moment, through the API
/// as the scenario's user, and is done. Objects that match later (a newer rollout awaiting
/// approval) are left alone, as a person who approved one rollout has not approved the next.
pub(super) async fn run_step(sandbox: Arc<Sandbox>, step: Step) {
    let store = sandbox.store();
    if let Some(after) = step.after {
        let at = store
            .clock()
            .now()
            .saturating_add(after.signed())
            .unwrap_or(Timestamp::MAX);
        tokio::time::sleep(store.clock().sleep_for(at)).await;
    }
    let selection = &step.when;
    let Some(resource) = store.resource_of(&selection.api_version, &selection.kind) else {
        say(
            store,
            &format!(
                "step {:?}: the sandbox does not serve {} {}",
                step.name, selection.api_version, selection.kind
            ),
        );
        return;
    };
    let filter = Filter {
        namespace: selection.namespace.clone(),
        ..Filter::default()
    };
    let Ok(mut watch) = store.watch(&resource, filter, WatchFrom::Current) else {
        return;
    };
    // The objects as the watch has shown them so far, by namespace and name.
    let mut seen: BTreeMap<(String, String), Arc<Json>> = BTreeMap::new();
    let mut pending = std::mem::take(&mut watch.initial);
    let matched = loop {
        for item in pending.drain(..) {
            let WatchItem::Event(kind, object) = item else {
                continue;
            };
            let key = (
                object["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned(),
                object["metadata"]["name"].as_str().unwrap_or("").to_owned(),
            );
            match kind {
                "DELETED" => seen.remove(&key),
                _ => seen.insert(key, object),
            };
        }
        let matched: Vec<(String, String)> = seen
            .iter()
            .filter(|(_, object)| selected(&object.to_value(), selection))
            .map(|(key, _)| key.clone())
            .collect();
        if !matched.is_empty() {
            break matched;
        }
        match watch.rx.recv().await {
            Some(item) => pending.push(item),
            None => return,
        }
    };
    drop(watch);
    for (namespace, name) in matched {
        let base = prefix(&resource.group, &resource.version);
        let path = match resource.namespaced {
            true => format!("{base}/namespaces/{namespace}/{}/{name}", resource.plural),
            false => format!("{base}/{}/{name}", resource.plural),
        };
        let request = http::Request::builder()
            .method(http::Method::PATCH)
            .uri(&path)
            .header(http::header::CONTENT_TYPE, "application/merge-patch+json")
            .header(http::header::USER_AGENT, "sandbox-scenario")
            .body(())
            .map(|r| r.into_parts().0);
        let Ok(parts) = request else { continue };
        let response = sandbox
            .server()
            .handle(Request::new(
                SCENARIO_USER,
                parts,
                step.patch.to_string().into(),
            ))
            .await;
        let outcome = if response.status().is_success() {
            "done".to_owned()
        } else {
            format!("failed ({})", response.status())
        };
        say(
            store,
            &format!(
                "step {:?} on {} {name}: {outcome}",
                step.name, selection.kind
            ),
        );
    }
}

fn prefix(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("/api/{version}")
    } else {
        format!("/apis/{group}/{version}")
    }
}

/// Whether an object is the one a step waits for.
fn selected(object: &Value, selection: &Selection) -> bool {
    let labels = &object["metadata"]["labels"];
    let labels_match = selection
        .labels
        .iter()
        .all(|(k, v)| labels[k].as_str() == Some(v.as_str()));
    let field_matches = match (&selection.field, &selection.equals) {
        (Some(field), Some(expected)) => {
            field.split('.').try_fold(object, |v, part| v.get(part)) == Some(expected)
        }
        _ => true,
    };
    labels_match && field_matches
}
