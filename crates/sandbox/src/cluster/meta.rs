//! Reading the parts of objects every component needs — names, labels, owner references,
//! conditions, counts and percents, timestamps — and the stable hashes of pod templates.
//!
//! Objects are arbitrary JSON: every reader here tolerates missing or malformed fields and
//! answers with the Kubernetes default instead. The readers take an object as the cluster
//! follows it (`Json`) or as a controller is writing it (`Value`).

use jiff::Timestamp;
use serde_json::{Map, Value, json};

use crate::json::Read;

/// An object's namespace (empty for cluster-scoped kinds) and name.
pub(super) type Key = (String, String);

/// The namespace and name of an object.
pub(super) fn key_of(object: &(impl Read + ?Sized)) -> Key {
    (namespace(object).to_owned(), name(object).to_owned())
}

fn metadata<'a, R: Read + ?Sized>(object: &'a R, field: &str) -> &'a R::Node {
    object.at("metadata").at(field)
}

/// `metadata.name`.
pub(super) fn name(object: &(impl Read + ?Sized)) -> &str {
    metadata(object, "name").text().unwrap_or("")
}

/// `metadata.namespace`.
pub(super) fn namespace(object: &(impl Read + ?Sized)) -> &str {
    metadata(object, "namespace").text().unwrap_or("")
}

/// `metadata.uid`.
pub(super) fn uid(object: &(impl Read + ?Sized)) -> &str {
    metadata(object, "uid").text().unwrap_or("")
}

/// `metadata.resourceVersion` as a number.
pub(super) fn resource_version(object: &(impl Read + ?Sized)) -> Option<u64> {
    metadata(object, "resourceVersion").text()?.parse().ok()
}

/// `metadata.generation`, 1 when absent.
pub(super) fn generation(object: &(impl Read + ?Sized)) -> i64 {
    metadata(object, "generation").int().unwrap_or(1)
}

/// A label's value.
pub(super) fn label<'a>(object: &'a (impl Read + ?Sized), key: &str) -> Option<&'a str> {
    metadata(object, "labels").at(key).text()
}

/// An annotation's value.
pub(super) fn annotation<'a>(object: &'a (impl Read + ?Sized), key: &str) -> Option<&'a str> {
    metadata(object, "annotations").at(key).text()
}

/// Whether the object is being deleted (`metadata.deletionTimestamp` is set).
pub(super) fn terminating(object: &(impl Read + ?Sized)) -> bool {
    !metadata(object, "deletionTimestamp").null()
}

/// The owner reference marked `controller: true`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Controller<'a> {
    /// The owner's kind.
    pub kind: &'a str,
    /// The owner's name, in the object's namespace.
    pub name: &'a str,
    /// The owner's UID.
    pub uid: &'a str,
}

/// The object's controller, if it has one.
pub(super) fn controller_of(object: &(impl Read + ?Sized)) -> Option<Controller<'_>> {
    metadata(object, "ownerReferences")
        .elements()
        .find_map(|r| {
            (r.at("controller").value() == Value::Bool(true)).then_some(())?;
            Some(Controller {
                kind: r.at("kind").text()?,
                name: r.at("name").text()?,
                uid: r.at("uid").text()?,
            })
        })
}

/// An owner reference to `owner` as its controller, as controllers set on what they create.
pub(super) fn controller_ref(owner: &(impl Read + ?Sized)) -> Value {
    json!({
        "apiVersion": owner.at("apiVersion").text().unwrap_or(""),
        "kind": owner.at("kind").text().unwrap_or(""),
        "name": name(owner),
        "uid": uid(owner),
        "controller": true,
        "blockOwnerDeletion": true,
    })
}

/// An instant as the API prints it, to the second.
pub(super) fn time(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// An instant written in an object.
pub(super) fn parse_time(value: &(impl Read + ?Sized)) -> Option<Timestamp> {
    value.text()?.parse().ok()
}

/// A count field (`replicas`, `parallelism`, …): its value if it is a non-negative integer,
/// else `default`.
pub(super) fn count(value: &(impl Read + ?Sized), default: i64) -> i64 {
    value.int().filter(|n| *n >= 0).unwrap_or(default)
}

/// A count-or-percent (`maxSurge: 1`, `maxUnavailable: "25%"`) scaled against `total`,
/// rounding percents up or down; `None` when the value is absent or malformed.
pub(super) fn scaled(value: &(impl Read + ?Sized), total: i64, round_up: bool) -> Option<i64> {
    if let Some(n) = value.int() {
        return Some(n.max(0));
    }
    match value.text() {
        Some(s) => match s.strip_suffix('%') {
            Some(percent) => {
                let percent: i64 = percent.trim().parse().ok().filter(|p| *p >= 0)?;
                Some(percent_of(percent, total, round_up))
            }
            None => s.trim().parse().ok().filter(|n: &i64| *n >= 0),
        },
        None => None,
    }
}

/// `percent` % of `total`, rounded up or down.
pub(super) fn percent_of(percent: i64, total: i64, round_up: bool) -> i64 {
    let scaled = percent.saturating_mul(total.max(0));
    if round_up {
        (scaled + 99) / 100
    } else {
        scaled / 100
    }
}

/// A condition of an object's `status.conditions` by type.
pub(super) fn condition<'a, R: Read + ?Sized>(object: &'a R, kind: &str) -> Option<&'a R::Node> {
    object
        .at("status")
        .at("conditions")
        .elements()
        .find(|c| c.at("type").text() == Some(kind))
}

/// Whether a condition of an object is `True`.
pub(super) fn condition_true(object: &(impl Read + ?Sized), kind: &str) -> bool {
    condition(object, kind).is_some_and(|c| c.at("status").text() == Some("True"))
}

/// Whether a pod's `Ready` condition is `True`.
pub(super) fn pod_ready(pod: &(impl Read + ?Sized)) -> bool {
    condition_true(pod, "Ready")
}

/// A pod's phase, `Pending` when absent.
pub(super) fn phase(pod: &(impl Read + ?Sized)) -> &str {
    pod.at("status").at("phase").text().unwrap_or("Pending")
}

/// Whether a pod has finished: `Succeeded` or `Failed`.
pub(super) fn finished(pod: &(impl Read + ?Sized)) -> bool {
    matches!(phase(pod), "Succeeded" | "Failed")
}

/// Whether a pod counts for its controller: neither finished nor being deleted.
pub(super) fn active(pod: &(impl Read + ?Sized)) -> bool {
    !finished(pod) && !terminating(pod)
}

/// Whether a pod is available: Ready for at least `min_ready` seconds at `now`.
pub(super) fn available(pod: &(impl Read + ?Sized), min_ready: i64, now: Timestamp) -> bool {
    available_at(pod, min_ready).is_some_and(|at| at <= now)
}

/// When a Ready pod becomes available (`minReadySeconds` after turning Ready); `None` when
/// it is not Ready.
pub(super) fn available_at(pod: &(impl Read + ?Sized), min_ready: i64) -> Option<Timestamp> {
    let ready = condition(pod, "Ready").filter(|c| c.at("status").text() == Some("True"))?;
    if min_ready <= 0 {
        return Some(Timestamp::MIN);
    }
    let since = parse_time(ready.at("lastTransitionTime")).unwrap_or(Timestamp::MIN);
    Some(
        since
            .saturating_add(jiff::SignedDuration::from_secs(min_ready))
            .unwrap_or(since),
    )
}

/// Sets condition `kind` in `conditions` to `fresh`, keeping the old `lastTransitionTime`
/// when the status does not change. Returns whether anything but timestamps changed.
pub(super) fn set_condition(conditions: &mut Vec<Value>, mut fresh: Value) -> bool {
    let kind = fresh["type"].clone();
    match conditions.iter_mut().find(|c| c["type"] == kind) {
        Some(old) => {
            if old["status"] == fresh["status"] {
                fresh["lastTransitionTime"] = old["lastTransitionTime"].clone();
            }
            let same = old["status"] == fresh["status"]
                && old["reason"] == fresh["reason"]
                && old["message"] == fresh["message"];
            *old = fresh;
            !same
        }
        None => {
            conditions.push(fresh);
            true
        }
    }
}

/// The conditions of an object's status, as a list to edit.
pub(super) fn conditions_of(object: &(impl Read + ?Sized)) -> Vec<Value> {
    object
        .at("status")
        .at("conditions")
        .elements()
        .map(Read::value)
        .collect()
}

/// Merges `fields` into `object["status"]`, making it an object first if it is not one.
pub(super) fn merge_status(object: &mut Value, fields: Map<String, Value>) {
    if !object["status"].is_object() {
        object["status"] = json!({});
    }
    if let Some(status) = object["status"].as_object_mut() {
        status.extend(fields);
    }
}

/// Sets `value` at `path` in `object`, making each step an object first if it is not one
/// (indexing malformed JSON would otherwise panic).
pub(super) fn set_path(object: &mut Value, path: &[&str], value: Value) {
    let mut at = object;
    for step in path {
        if !at.is_object() {
            *at = json!({});
        }
        let Some(map) = at.as_object_mut() else {
            return;
        };
        at = map.entry((*step).to_owned()).or_insert(Value::Null);
    }
    *at = value;
}

/// 32-bit FNV-1a, the hash Kubernetes derives pod template hashes from.
pub(super) struct Fnv32(u32);

impl Fnv32 {
    /// A fresh hash.
    pub fn new() -> Self {
        Fnv32(0x811c_9dc5)
    }

    /// Adds bytes.
    pub fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 ^= u32::from(*byte);
            self.0 = self.0.wrapping_mul(0x0100_0193);
        }
    }

    /// Adds a JSON value in a canonical form: object keys sorted, so that two equal values
    /// hash alike whatever order their keys were written in.
    pub fn write_value(&mut self, value: &Value) {
        match value {
            Value::Null => self.write(b"n"),
            Value::Bool(b) => self.write(if *b { b"t" } else { b"f" }),
            Value::Number(n) => {
                self.write(b"#");
                self.write(n.to_string().as_bytes());
            }
            Value::String(s) => {
                self.write(b"\"");
                self.write(s.as_bytes());
                self.write(b"\"");
            }
            Value::Array(items) => {
                self.write(b"[");
                for item in items {
                    self.write_value(item);
                    self.write(b",");
                }
                self.write(b"]");
            }
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                self.write(b"{");
                for key in keys {
                    self.write(key.as_bytes());
                    self.write(b":");
                    self.write_value(&map[key]);
                    self.write(b",");
                }
                self.write(b"}");
            }
        }
    }

    /// The hash.
    pub fn finish(&self) -> u32 {
        self.0
    }
}

/// A hash as Kubernetes prints it in names and labels: the decimal digits mapped to
/// characters that never spell words (`rand.SafeEncodeString`), like `5d4b8c7f9`.
pub(super) fn safe_encode(hash: u32) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    hash.to_string()
        .bytes()
        .map(|digit| ALPHABET[usize::from(digit) % ALPHABET.len()] as char)
        .collect()
}

/// The stable hash of a pod template (and a collision count), as `pod-template-hash` and
/// `controller-revision-hash` labels carry it.
pub(super) fn template_hash(template: &Value, collisions: Option<i64>) -> String {
    let mut hash = Fnv32::new();
    hash.write_value(template);
    if let Some(collisions) = collisions {
        hash.write(&collisions.to_le_bytes());
    }
    safe_encode(hash.finish())
}

/// A hex string of `len` characters derived from `seed`, for IDs (boot IDs, image digests,
/// container IDs).
pub(super) fn hex_id(seed: &str, len: usize) -> String {
    let mut out = String::with_capacity(len + 16);
    let mut round = 0u64;
    while out.len() < len {
        let mut bytes = seed.as_bytes().to_vec();
        bytes.extend_from_slice(&round.to_le_bytes());
        out.push_str(&format!(
            "{:016x}",
            patchpilot_engine::naming::fnv1a(&bytes)
        ));
        round += 1;
    }
    out.truncate(len);
    out
}

/// A UUID-shaped ID derived from `seed`.
pub(super) fn uuid_from(seed: &str) -> String {
    let hex = hex_id(seed, 32);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn counts_and_percents_scale_like_intstr() {
        assert_eq!(scaled(&json!("25%"), 10, true), Some(3));
        assert_eq!(scaled(&json!("25%"), 10, false), Some(2));
        assert_eq!(scaled(&json!(2), 10, false), Some(2));
        assert_eq!(scaled(&json!("3"), 10, false), Some(3));
        assert_eq!(scaled(&json!("x%"), 10, false), None);
        assert_eq!(scaled(&Value::Null, 10, false), None);
        assert_eq!(count(&json!(-1), 1), 1);
        assert_eq!(count(&json!("3"), 1), 1);
    }

    #[test]
    fn template_hashes_ignore_key_order_and_look_like_kubernetes_ones() {
        let a: Value = serde_json::from_str(r#"{"a": 1, "b": {"c": [1, "x"]}}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"b": {"c": [1, "x"]}, "a": 1}"#).unwrap();
        assert_eq!(template_hash(&a, None), template_hash(&b, None));
        assert_ne!(template_hash(&a, None), template_hash(&a, Some(1)));
        let hash = template_hash(&a, None);
        assert!(
            hash.chars()
                .all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)),
            "{hash}"
        );
        assert!((1..=10).contains(&hash.len()));
    }

    #[test]
    fn conditions_keep_their_transition_time_while_the_status_holds() {
        let mut conditions =
            vec![json!({"type": "Ready", "status": "True", "lastTransitionTime": "a"})];
        let changed = set_condition(
            &mut conditions,
            json!({"type": "Ready", "status": "True", "lastTransitionTime": "b"}),
        );
        assert!(!changed);
        assert_eq!(conditions[0]["lastTransitionTime"], "a");
        let changed = set_condition(
            &mut conditions,
            json!({"type": "Ready", "status": "False", "lastTransitionTime": "c"}),
        );
        assert!(changed);
        assert_eq!(conditions[0]["lastTransitionTime"], "c");
    }

    #[test]
    fn readers_tolerate_malformed_objects() {
        let junk = json!({"metadata": {"ownerReferences": [{"controller": true}], "name": 3}});
        assert_eq!(name(&junk), "");
        assert!(controller_of(&junk).is_none());
        assert!(!pod_ready(&json!({"status": {"conditions": "x"}})));
        assert_eq!(phase(&json!([])), "Pending");
        assert_eq!(uuid_from("n").len(), 36);
        let mut odd = json!({"metadata": {"annotations": "x"}});
        set_path(&mut odd, &["metadata", "annotations", "a"], json!("b"));
        assert_eq!(odd, json!({"metadata": {"annotations": {"a": "b"}}}));
    }
}
