//! Server-side apply and the `managedFields` bookkeeping of ordinary writes.
//!
//! An apply merges the configuration into the live object (maps field by field, lists by
//! their [`TypeInfo::list`] rule, keeping the order of the configuration for its items and
//! the place of the others), makes the manager's entry the configuration's field set, removes
//! what the manager applied last time and no longer applies unless someone else owns it, and
//! refuses to change fields other managers own unless forced, in which case they lose them.

use serde_json::{Map, Value};

use super::fieldset::{FieldSet, display_path, field_element};
use super::managed::{self, Entry, Operation};
use super::typed;
use super::value::type_name;
use super::{ApplyRequest, Conflict, PatchError, TypeInfo};

mod merge;

use merge::{merge, prune};

type Result<T> = std::result::Result<T, PatchError>;

/// Metadata fields the server sets: ignored in an applied configuration.
const SERVER_METADATA: [&str; 8] = [
    "managedFields",
    "resourceVersion",
    "uid",
    "creationTimestamp",
    "generation",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
];

/// Fields nobody owns: the object's identity and what the server sets.
fn unowned_fields() -> FieldSet {
    let mut set = FieldSet::default();
    for top in ["apiVersion", "kind", "metadata"] {
        set.insert(&[field_element(top)]);
    }
    for name in SERVER_METADATA
        .iter()
        .chain(&["name", "namespace", "clusterName"])
    {
        set.insert(&[field_element("metadata"), field_element(name)]);
    }
    set
}

/// Server-side apply (see [`super::apply`]).
pub(super) fn apply(
    live: Option<&Value>,
    request: &ApplyRequest<'_>,
    types: &dyn TypeInfo,
) -> Result<Value> {
    let config = prepare_config(request)?;
    let live_object = live.map_or_else(|| Value::Object(Map::new()), managed::without);
    let mut entries = live.map(managed::read).unwrap_or_default();
    let before = entries.clone();

    let mut merged = merge(Some(&live_object), &config, &mut Vec::new(), types)?
        .unwrap_or_else(|| Value::Object(Map::new()));
    let applied = typed::field_set(&config, types)?.difference(&unowned_fields());

    let (manager, subresource) = (request.manager, request.subresource);
    let mine = match entries
        .iter()
        .position(|e| e.is(manager, Operation::Apply, "", subresource))
    {
        Some(index) => index,
        None => {
            entries.push(Entry::new(
                manager,
                Operation::Apply,
                request.api_version,
                subresource,
            ));
            entries.len() - 1
        }
    };
    let last = std::mem::replace(&mut entries[mine].fields, applied.clone());
    entries[mine].api_version = request.api_version.to_owned();

    if !last.is_empty() {
        let mut owned = FieldSet::default();
        entries.iter().for_each(|e| owned.union_with(&e.fields));
        prune(&mut merged, &last, &owned, types);
    }

    let comparison = typed::compare(&live_object, &merged, types);
    let mut changed = comparison.added;
    changed.union_with(&comparison.modified);
    // Setting a field to null changes it, as far as its other owners are concerned.
    changed.union_with(&comparison.removed.intersection(&applied));

    let conflicts: Vec<(usize, FieldSet)> = entries
        .iter()
        .enumerate()
        .filter(|(index, _)| *index != mine)
        .map(|(index, entry)| (index, entry.fields.intersection(&changed)))
        .filter(|(_, fields)| !fields.is_empty())
        .collect();
    if !conflicts.is_empty() {
        if !request.force {
            return Err(PatchError::Conflicts(describe(&entries, &conflicts)));
        }
        for (index, fields) in &conflicts {
            entries[*index].fields = entries[*index].fields.difference(fields);
        }
    }
    entries.retain(|e| !e.fields.is_empty());

    if let Some(live) = live
        && merged == live_object
        && same_ownership(&entries, &before)
    {
        // Nothing changed: not even the timestamps.
        return Ok(live.clone());
    }
    if let Some(entry) = entries
        .iter_mut()
        .find(|e| e.is(manager, Operation::Apply, "", subresource))
    {
        entry.time = Some(request.time.to_owned());
    }
    managed::write(&mut merged, entries);
    Ok(merged)
}

/// The configuration without what the server ignores in it.
fn prepare_config(request: &ApplyRequest<'_>) -> Result<Value> {
    let Value::Object(config) = request.config else {
        return Err(PatchError::Malformed(format!(
            "the applied configuration must be an object, not {}",
            type_name(request.config)
        )));
    };
    for (field, name) in [("kind", "Kind"), ("apiVersion", "apiVersion")] {
        if config
            .get(field)
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            return Err(PatchError::Malformed(format!(
                "Object '{name}' is missing in '{}'",
                request.config
            )));
        }
    }
    let mut config = config.clone();
    let status_only = request.subresource == Some("status");
    if status_only {
        config.retain(|k, _| matches!(k.as_str(), "apiVersion" | "kind" | "metadata" | "status"));
    }
    if let Some(Value::Object(meta)) = config.get_mut("metadata") {
        if status_only {
            meta.retain(|k, _| k == "name" || k == "namespace");
        }
        for name in SERVER_METADATA {
            meta.remove(name);
        }
    }
    Ok(Value::Object(config))
}

/// Whether two lists of entries give the same managers the same fields.
fn same_ownership(a: &[Entry], b: &[Entry]) -> bool {
    let same = |x: &Entry, y: &Entry| x.identity() == y.identity() && x.fields == y.fields;
    a.len() == b.len() && a.iter().all(|x| b.iter().any(|y| same(x, y)))
}

/// The conflicts, in the API server's order: by owner, then by field.
fn describe(entries: &[Entry], conflicts: &[(usize, FieldSet)]) -> Vec<Conflict> {
    let mut owners: Vec<(&Entry, &FieldSet)> = conflicts
        .iter()
        .filter_map(|(i, fields)| entries.get(*i).map(|e| (e, fields)))
        .collect();
    owners.sort_by(|a, b| a.0.identity().cmp(&b.0.identity()));
    owners
        .into_iter()
        .flat_map(|(entry, fields)| {
            fields.members().into_iter().map(move |path| Conflict {
                manager: entry.manager.clone(),
                field: display_path(&path),
                owner: entry.owner(),
            })
        })
        .collect()
}

/// Records an ordinary write by `manager` in `new`'s `managedFields`.
pub(super) fn record_update(
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    subresource: Option<&str>,
    time: &str,
    api_version: &str,
    types: &dyn TypeInfo,
) {
    if !new.is_object() {
        return;
    }
    let sent = new.pointer("/metadata/managedFields");
    if sent.and_then(Value::as_array).is_some_and(
        |list| matches!(list.as_slice(), [only] if only.as_object().is_some_and(Map::is_empty)),
    ) {
        // A list of one empty entry clears the managed fields.
        managed::write(new, Vec::new());
        return;
    }
    let mut entries = match sent.and_then(managed::decode).filter(|e| !e.is_empty()) {
        Some(entries) => entries,
        None => old.map(managed::read).unwrap_or_default(),
    };
    let nothing = Value::Object(Map::new());
    let comparison = typed::compare(old.unwrap_or(&nothing), new, types);
    let mut changed = comparison.added;
    changed.union_with(&comparison.modified);
    let changed = changed.difference(&unowned_fields());
    if !changed.is_empty() {
        for entry in &mut entries {
            entry.fields = entry.fields.difference(&changed);
        }
        let position = entries
            .iter()
            .position(|e| e.is(manager, Operation::Update, api_version, subresource));
        let index = position.unwrap_or_else(|| {
            entries.push(Entry::new(
                manager,
                Operation::Update,
                api_version,
                subresource,
            ));
            entries.len() - 1
        });
        entries[index].fields.union_with(&changed);
        entries[index].time = Some(time.to_owned());
        entries.retain(|e| !e.fields.is_empty());
    }
    managed::write(new, entries);
}

#[cfg(test)]
mod tests;
