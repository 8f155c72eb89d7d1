//! The OpenAPI v3 documents kubectl reads: the index at `/openapi/v3`, naming one document
//! per group-version with a `?hash=` of its content, and each group-version's document at
//! `/openapi/v3/api/v1` or `/openapi/v3/apis/<group>/<version>`.
//!
//! kubectl reads them to decide whether the server validates fields itself (a `PATCH`
//! operation of the kind that declares the `fieldValidation` query parameter: then
//! `kubectl apply` and `create` send `fieldValidation=Strict` instead of validating
//! client-side), for `kubectl explain` (the path of the resource names its kind through
//! `x-kubernetes-group-version-kind`; the component schema carrying the same extension
//! describes it), and for the strategic merge patches of client-side apply.
//!
//! Schemas of custom resources are their CRDs' `openAPIV3Schema`, with `metadata` pointing
//! at `ObjectMeta`. Schemas of the built-in kinds come from the API types. Those carry no
//! strategic-merge markers (`x-kubernetes-patch-merge-key`), so the documents do not offer
//! `application/strategic-merge-patch+json` for them: kubectl then computes its strategic
//! merge patches from the types compiled into it, as exactly as against a real server.
//!
//! `/openapi/v2` answers a document without paths or definitions, in protobuf (what kubectl
//! asks for) or JSON. kubectl reads it only when the v3 documents do not answer: to
//! validate client-side an object of a kind the server does not serve, which it skips when
//! the kind is not in the document, as it is not; a missing document would be an error
//! that stops `kubectl apply -f` at such an object instead of reporting its kind unknown.

mod paths;
mod schemas;

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{Arc, Mutex, OnceLock},
};

use bytes::Bytes;
use serde_json::{Map, Value, json};

use super::{Reply, Request};
use crate::{resources::ResourceType, status::ApiError, store::Store};
use schemas::{
    DELETE_OPTIONS, LIST_META, OBJECT_META, PATCH, STATUS, catalog, custom_name, custom_schema,
    list_schema, opaque_schema, refs,
};

/// Answers `/openapi/<path>`.
pub fn openapi(store: &Store, path: &str, request: &Request) -> Result<Reply, ApiError> {
    let resources = store.resources();
    match path.trim_end_matches('/') {
        "v3" => Ok(json_reply(&index(&resources))),
        "v2" => Ok(swagger(
            request.header(http::header::ACCEPT).contains("protobuf"),
        )),
        other => {
            let (group, version) = other
                .strip_prefix("v3/")
                .and_then(group_version_of)
                .filter(|(g, v)| resources.iter().any(|r| r.group == *g && r.version == *v))
                .ok_or_else(|| ApiError::no_route(&format!("/openapi/{path}")))?;
            Ok(Reply::Document(
                "application/json",
                rendered(&resources, &group, &version).text.clone(),
            ))
        }
    }
}

/// The OpenAPI v2 document: the Swagger version and the title, nothing else. In protobuf,
/// it is the `openapi.v2.Document` message of gnostic with fields 1 (`swagger`) and 2
/// (`info`, with its fields 1 `title` and 2 `version`).
fn swagger(protobuf: bool) -> Reply {
    const TITLE: &str = "Kubernetes";
    let version = super::discovery::version()["gitVersion"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    if !protobuf {
        let info = json!({"title": TITLE, "version": version});
        let document = json!({"swagger": "2.0", "info": info, "paths": {}, "definitions": {}});
        return json_reply(&document);
    }
    let mut info = Vec::new();
    length_delimited(&mut info, 1, TITLE.as_bytes());
    length_delimited(&mut info, 2, version.as_bytes());
    let mut document = Vec::new();
    length_delimited(&mut document, 1, b"2.0");
    length_delimited(&mut document, 2, &info);
    // Clients ask for `…spec.v2@v1.0+protobuf`; the answer names the form without `@`, which
    // media type parsers accept.
    Reply::Document(
        "application/com.github.proto-openapi.spec.v2.v1.0+protobuf",
        document.into(),
    )
}

/// Appends a length-delimited protobuf field (a string or a message).
fn length_delimited(out: &mut Vec<u8>, field: u64, bytes: &[u8]) {
    varint(out, (field << 3) | 2);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn json_reply(document: &Value) -> Reply {
    Reply::Document("application/json", document.to_string().into())
}

/// The group and version of an index key: `api/v1` or `apis/<group>/<version>`.
fn group_version_of(key: &str) -> Option<(String, String)> {
    match key.split('/').collect::<Vec<_>>().as_slice() {
        ["api", version] => Some((String::new(), (*version).to_owned())),
        ["apis", group, version] => Some(((*group).to_owned(), (*version).to_owned())),
        _ => None,
    }
}

/// The index key of a group-version.
fn key_of(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// `/openapi/v3`: every group-version served, with a hash of its document so that clients
/// caching documents by URL see changes (a CRD created or changed).
fn index(resources: &[Arc<ResourceType>]) -> Value {
    let group_versions: BTreeSet<(String, String)> = resources
        .iter()
        .map(|r| (r.group.clone(), r.version.clone()))
        .collect();
    let paths: Map<String, Value> = group_versions
        .iter()
        .map(|(group, version)| {
            let hash = rendered(resources, group, version).hash;
            let key = key_of(group, version);
            let url = format!("/openapi/v3/{key}?hash={hash:016X}");
            (key, json!({"serverRelativeURL": url}))
        })
        .collect();
    json!({"paths": paths})
}

/// The documents rendered, by group and version.
type Documents = BTreeMap<(String, String), Arc<Rendered>>;

/// A group-version's document as served, and the hash the index names it by.
struct Rendered {
    /// What the resources it describes were like.
    fingerprint: u64,
    text: Bytes,
    hash: u64,
}

/// The document of a group-version, rendered again only when its resources changed (a
/// CRD created, changed or deleted): kubectl reads the index, which hashes every
/// document, for each `apply`.
fn rendered(resources: &[Arc<ResourceType>], group: &str, version: &str) -> Arc<Rendered> {
    static CACHE: OnceLock<Mutex<Documents>> = OnceLock::new();
    let cache = CACHE.get_or_init(Mutex::default);
    let fingerprint = fingerprint(resources, group, version);
    let key = (group.to_owned(), version.to_owned());
    // A panic elsewhere while holding the lock leaves the cache usable.
    let lock = || {
        cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    };
    if let Some(hit) = lock().get(&key).filter(|r| r.fingerprint == fingerprint) {
        return hit.clone();
    }
    let text = document(resources, group, version).to_string();
    let hash = patchpilot_engine::naming::fnv1a(text.as_bytes());
    let rendered = Arc::new(Rendered {
        fingerprint,
        text: Bytes::from(text),
        hash,
    });
    lock().insert(key, rendered.clone());
    rendered
}

/// A hash of what the document of a group-version is made from.
fn fingerprint(resources: &[Arc<ResourceType>], group: &str, version: &str) -> u64 {
    let mut text = String::new();
    for r in resources
        .iter()
        .filter(|r| r.group == group && r.version == version)
    {
        let schema = r.openapi.as_ref().map(Value::to_string).unwrap_or_default();
        let scale = super::scale::served(r);
        text.push_str(&format!(
            "{}|{}|{}|{}|{}|{}|{scale}|{schema}\n",
            r.kind,
            r.plural,
            r.namespaced,
            r.status,
            r.eviction,
            r.is_custom()
        ));
    }
    patchpilot_engine::naming::fnv1a(text.as_bytes())
}

/// The document of one group-version: its resources' paths and schemas.
fn document(resources: &[Arc<ResourceType>], group: &str, version: &str) -> Value {
    let catalog = catalog();
    let mut paths = Map::new();
    let mut schemas: BTreeMap<String, Value> = BTreeMap::new();
    for resource in resources
        .iter()
        .filter(|r| r.group == group && r.version == version)
    {
        let name = match (&resource.openapi, catalog.kind(resource)) {
            (Some(schema), _) => {
                let name = custom_name(resource);
                schemas.insert(name.clone(), custom_schema(resource, schema));
                name
            }
            (None, Some(name)) => name.to_owned(),
            (None, None) => {
                let name = custom_name(resource);
                schemas.insert(name.clone(), opaque_schema(resource));
                name
            }
        };
        schemas.insert(format!("{name}List"), list_schema(resource, &name));
        paths.extend(paths::resource_paths(resource, &name));
    }
    let mut pending: Vec<String> = schemas.values().flat_map(refs).collect();
    pending.extend(
        paths
            .values()
            .flat_map(refs)
            .chain([OBJECT_META, LIST_META, STATUS, DELETE_OPTIONS, PATCH].map(String::from)),
    );
    while let Some(name) = pending.pop() {
        if schemas.contains_key(&name) {
            continue;
        }
        if let Some(schema) = catalog.definitions.get(&name) {
            pending.extend(refs(schema));
            schemas.insert(name, schema.clone());
        }
    }
    json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": super::discovery::version()["gitVersion"]},
        "paths": paths,
        "components": {"schemas": schemas},
    })
}

#[cfg(test)]
mod tests {
    use super::{
        schemas::{gvk, reference},
        *,
    };
    use crate::resources::Registry;

    /// The built-in kinds and patchpilot's.
    fn served() -> Vec<Arc<ResourceType>> {
        let mut registry = Registry::builtin();
        for crd in patchpilot_api::crds() {
            registry.add_crd(&crd).unwrap();
        }
        registry.all().to_vec()
    }

    #[test]
    fn documents_answer_what_kubectl_asks_of_them() {
        let resources = served();
        let index = index(&resources);
        for resource in &resources {
            let (group, version) = (&resource.group, &resource.version);
            let key = key_of(group, version);
            let url = index["paths"][&key]["serverRelativeURL"].as_str().unwrap();
            assert!(
                url.starts_with(&format!("/openapi/v3/{key}?hash=")),
                "{url}"
            );
            let document = document(&resources, group, version);
            let kind = gvk(group, version, &resource.kind);
            // Server-side field validation: a PATCH of the kind declaring the parameter.
            let validates = document["paths"].as_object().unwrap().values().any(|path| {
                let patch = &path["patch"];
                let parameters = patch["parameters"].as_array().cloned().unwrap_or_default();
                patch["x-kubernetes-group-version-kind"] == kind
                    && parameters
                        .iter()
                        .any(|p| p["name"] == "fieldValidation" && p["in"] == "query")
            });
            assert!(
                validates,
                "{}: no PATCH declaring fieldValidation",
                resource.kind
            );
            // kubectl explain: the path of the resource names the kind, a schema describes it.
            let prefix = if group.is_empty() {
                "/api".to_owned()
            } else {
                format!("/apis/{group}")
            };
            let list = &document["paths"][format!("{prefix}/{version}/{}", resource.plural)];
            assert_eq!(
                list["get"]["x-kubernetes-group-version-kind"], kind,
                "{}",
                resource.kind
            );
            let schemas = document["components"]["schemas"].as_object().unwrap();
            let described = schemas.values().any(|s| {
                s["x-kubernetes-group-version-kind"]
                    .as_array()
                    .is_some_and(|k| k.contains(&kind))
            });
            assert!(described, "{}: no schema", resource.kind);
            for name in refs(&document) {
                assert!(
                    schemas.contains_key(&name),
                    "{key}: {name} is referred to but missing"
                );
            }
        }
        let policy = document(&resources, "patchpilot.dev", "v1alpha1");
        let schema = &policy["components"]["schemas"]["dev.patchpilot.v1alpha1.PatchPolicy"];
        assert!(schema["properties"]["spec"]["properties"]["strategy"].is_object());
        assert_eq!(
            schema["properties"]["metadata"]["allOf"][0],
            reference(OBJECT_META)
        );
    }

    #[test]
    fn the_index_changes_with_the_crds() {
        let resources = served();
        let before = index(&resources);
        let without: Vec<_> = resources
            .iter()
            .filter(|r| r.kind != "PatchRollout")
            .cloned()
            .collect();
        let after = index(&without);
        let key = "apis/patchpilot.dev/v1alpha1";
        assert_ne!(before["paths"][key], after["paths"][key]);
        assert_eq!(
            before["paths"]["apis/apps/v1"],
            after["paths"]["apis/apps/v1"]
        );
    }

    #[test]
    fn the_v2_document_is_a_bare_protobuf_message() {
        let Reply::Document(content_type, body) = swagger(true) else {
            panic!("a document")
        };
        assert!(content_type.contains("protobuf"));
        let version = super::super::discovery::version()["gitVersion"]
            .as_str()
            .unwrap()
            .to_owned();
        let info = [
            b"\x0a\x0aKubernetes\x12",
            &[version.len() as u8][..],
            version.as_bytes(),
        ]
        .concat();
        let expected = [b"\x0a\x032.0\x12", &[info.len() as u8][..], &info].concat();
        assert_eq!(body.as_ref(), expected.as_slice());
    }

    #[test]
    fn index_keys_name_group_versions() {
        assert_eq!(
            group_version_of("api/v1"),
            Some((String::new(), "v1".to_owned()))
        );
        assert_eq!(
            group_version_of("apis/apps/v1"),
            Some(("apps".to_owned(), "v1".to_owned()))
        );
        assert_eq!(group_version_of("apis/apps"), None);
        assert_eq!(
            key_of("patchpilot.dev", "v1alpha1"),
            "apis/patchpilot.dev/v1alpha1"
        );
    }
}
