//! Discovery: which groups, versions and resources the API server serves, and `/version`.
//!
//! `/api` and `/apis` answer in two formats, chosen from the `Accept` header as the API
//! server does: aggregated discovery (`APIGroupDiscoveryList` of `apidiscovery.k8s.io`
//! `v2` or `v2beta1`, every group with its resources in one document — what kubectl asks
//! for first) or the legacy documents (`APIVersions`, `APIGroupList`, then one
//! `APIResourceList` per group-version, which kube-rs reads). The reply's `Content-Type`
//! names the format chosen, which is how clients tell them apart. Kinds come from the
//! store's registry, so a CustomResourceDefinition is discoverable as soon as it is
//! created.

use std::sync::Arc;

use serde_json::{Value, json};

use super::{Reply, Request, route::Discovery};
use crate::{resources::ResourceType, status::ApiError, store::Store};

/// The API group of aggregated discovery.
const DISCOVERY_GROUP: &str = "apidiscovery.k8s.io";
/// The media type of aggregated discovery `v2`.
const AGGREGATED_V2: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";
/// The media type of aggregated discovery `v2beta1`.
const AGGREGATED_V2BETA1: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList";

/// `/version`.
pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": "33",
        "gitVersion": "v1.33.0-patchpilot-sandbox",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.24",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

/// The formats of `/api` and `/apis`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    /// `APIGroupDiscoveryList` of `apidiscovery.k8s.io/v2`.
    AggregatedV2,
    /// The same document as `apidiscovery.k8s.io/v2beta1`.
    AggregatedV2Beta1,
    /// `APIVersions` and `APIGroupList`.
    Legacy,
}

impl Format {
    /// The `Content-Type` of an aggregated document, and its `apiVersion`.
    fn aggregated(self) -> Option<(&'static str, &'static str)> {
        match self {
            Format::AggregatedV2 => Some((AGGREGATED_V2, "apidiscovery.k8s.io/v2")),
            Format::AggregatedV2Beta1 => Some((AGGREGATED_V2BETA1, "apidiscovery.k8s.io/v2beta1")),
            Format::Legacy => None,
        }
    }
}

/// The first format of the `Accept` header the server can produce, in the client's order
/// (clients list their preferred format first); legacy JSON when the header is missing.
fn negotiate(accept: &str) -> Result<Format, ApiError> {
    if accept.trim().is_empty() {
        return Ok(Format::Legacy);
    }
    for range in accept.split(',') {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or("").to_ascii_lowercase();
        let params: Vec<(String, String)> = parts
            .filter_map(|p| p.split_once('='))
            .map(|(k, v)| {
                (
                    k.trim().to_ascii_lowercase(),
                    v.trim().trim_matches('"').to_owned(),
                )
            })
            .collect();
        let param = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        if !matches!(media.as_str(), "application/json" | "application/*" | "*/*") {
            continue;
        }
        match param("as") {
            None => return Ok(Format::Legacy),
            Some("APIGroupDiscoveryList") if param("g") == Some(DISCOVERY_GROUP) => {
                match param("v") {
                    Some("v2") => return Ok(Format::AggregatedV2),
                    Some("v2beta1") => return Ok(Format::AggregatedV2Beta1),
                    _ => {}
                }
            }
            Some(_) => {}
        }
    }
    Err(ApiError {
        code: 406,
        reason: "NotAcceptable",
        message: format!(
            "only the following media types are accepted: application/json, \
             {AGGREGATED_V2}; got {accept}"
        ),
        details: None,
    })
}

/// A discovery document, in the format the client accepts.
pub fn discovery(store: &Store, which: &Discovery, request: &Request) -> Result<Reply, ApiError> {
    let resources = store.resources();
    let accept = request.header(http::header::ACCEPT);
    match which {
        Discovery::CoreVersions => match negotiate(accept)?.aggregated() {
            Some((content_type, api_version)) => {
                let core = group_versions(&resources)
                    .into_iter()
                    .filter(|(g, _)| g.is_empty());
                Ok(aggregated(&resources, core, content_type, api_version))
            }
            None => Ok(Reply::ok(json!({
                "kind": "APIVersions",
                "versions": versions_of(&resources, ""),
                "serverAddressByClientCIDRs": [
                    {"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"},
                ],
            }))),
        },
        Discovery::Groups => match negotiate(accept)?.aggregated() {
            Some((content_type, api_version)) => {
                let named = group_versions(&resources)
                    .into_iter()
                    .filter(|(g, _)| !g.is_empty());
                Ok(aggregated(&resources, named, content_type, api_version))
            }
            None => {
                let groups: Vec<Value> = group_versions(&resources)
                    .into_iter()
                    .filter(|(g, _)| !g.is_empty())
                    .map(|(name, versions)| group(&name, &versions))
                    .collect();
                Ok(Reply::ok(
                    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}),
                ))
            }
        },
        Discovery::Group(name) => {
            let versions = versions_of(&resources, name);
            if versions.is_empty() {
                return Err(ApiError::no_route(&format!("/apis/{name}")));
            }
            let mut document = group(name, &versions);
            document["kind"] = json!("APIGroup");
            document["apiVersion"] = json!("v1");
            Ok(Reply::ok(document))
        }
        Discovery::Resources(group, version) => {
            let served: Vec<&Arc<ResourceType>> = resources
                .iter()
                .filter(|r| r.group == *group && r.version == *version)
                .collect();
            if served.is_empty() {
                let path = if group.is_empty() {
                    format!("/api/{version}")
                } else {
                    format!("/apis/{group}/{version}")
                };
                return Err(ApiError::no_route(&path));
            }
            let list: Vec<Value> = served.iter().flat_map(|r| legacy_resources(r)).collect();
            let group_version = if group.is_empty() {
                version.clone()
            } else {
                format!("{group}/{version}")
            };
            Ok(Reply::ok(json!({
                "kind": "APIResourceList",
                "apiVersion": "v1",
                "groupVersion": group_version,
                "resources": list,
            })))
        }
    }
}

/// The groups served, in the registry's order (core first, then built-in groups, then
/// custom resources), each with its versions.
fn group_versions(resources: &[Arc<ResourceType>]) -> Vec<(String, Vec<String>)> {
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for resource in resources {
        match groups.iter_mut().find(|(g, _)| *g == resource.group) {
            Some((_, versions)) if !versions.contains(&resource.version) => {
                versions.push(resource.version.clone())
            }
            Some(_) => {}
            None => groups.push((resource.group.clone(), vec![resource.version.clone()])),
        }
    }
    groups.sort_by_key(|(g, _)| !g.is_empty());
    groups
}

fn versions_of(resources: &[Arc<ResourceType>], group: &str) -> Vec<String> {
    group_versions(resources)
        .into_iter()
        .find(|(g, _)| g == group)
        .map(|(_, v)| v)
        .unwrap_or_default()
}

/// An `APIGroup` without its kind: the name, the versions and the preferred one (the
/// first).
fn group(name: &str, versions: &[String]) -> Value {
    let entries: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{name}/{v}"), "version": v}))
        .collect();
    json!({
        "name": name,
        "versions": entries,
        "preferredVersion": entries.first().cloned().unwrap_or(Value::Null),
    })
}

/// A subresource: its name, the kind it answers with and its verbs.
struct Subresource {
    name: &'static str,
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    verbs: &'static [&'static str],
}

/// The subresources a resource has: `status`, `scale` for workloads with replicas, and
/// `eviction` for pods.
fn subresources(resource: &ResourceType) -> Vec<Subresource> {
    let mut subresources = Vec::new();
    if resource.status {
        subresources.push(Subresource {
            name: "status",
            group: "",
            version: "",
            kind: "",
            verbs: &["get", "patch", "update"],
        });
    }
    if super::scale::served(resource) {
        subresources.push(Subresource {
            name: "scale",
            group: "autoscaling",
            version: "v1",
            kind: "Scale",
            verbs: &["get", "patch", "update"],
        });
    }
    if resource.eviction {
        subresources.push(Subresource {
            name: "eviction",
            group: "policy",
            version: "v1",
            kind: "Eviction",
            verbs: &["create"],
        });
    }
    subresources
}

/// The legacy `APIResource` entries of a resource and its subresources.
fn legacy_resources(resource: &ResourceType) -> Vec<Value> {
    let mut entry = json!({
        "name": resource.plural,
        "singularName": resource.singular,
        "namespaced": resource.namespaced,
        "kind": resource.kind,
        "verbs": resource.verbs(),
    });
    if !resource.short_names.is_empty() {
        entry["shortNames"] = json!(resource.short_names);
    }
    if !resource.categories.is_empty() {
        entry["categories"] = json!(resource.categories);
    }
    let mut entries = vec![entry];
    for sub in subresources(resource) {
        let mut entry = json!({
            "name": format!("{}/{}", resource.plural, sub.name),
            "singularName": "",
            "namespaced": resource.namespaced,
            "kind": if sub.kind.is_empty() { resource.kind.as_str() } else { sub.kind },
            "verbs": sub.verbs,
        });
        // A subresource of another group's kind says which (kubectl drain looks for the
        // eviction's group and version).
        if !sub.group.is_empty() {
            entry["group"] = json!(sub.group);
            entry["version"] = json!(sub.version);
        }
        entries.push(entry);
    }
    entries
}

/// An aggregated discovery document of `groups`.
fn aggregated(
    resources: &[Arc<ResourceType>],
    groups: impl Iterator<Item = (String, Vec<String>)>,
    content_type: &'static str,
    api_version: &str,
) -> Reply {
    let items: Vec<Value> = groups
        .map(|(group, versions)| {
            let versions: Vec<Value> = versions
                .iter()
                .map(|version| {
                    let list: Vec<Value> = resources
                        .iter()
                        .filter(|r| r.group == group && r.version == *version)
                        .map(|r| aggregated_resource(r))
                        .collect();
                    json!({"version": version, "resources": list, "freshness": "Current"})
                })
                .collect();
            let mut metadata = json!({"creationTimestamp": null});
            if !group.is_empty() {
                metadata["name"] = json!(group);
            }
            json!({"metadata": metadata, "versions": versions})
        })
        .collect();
    let document = json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": api_version,
        "metadata": {},
        "items": items,
    });
    Reply::Document(content_type, document.to_string().into())
}

/// The kind a resource or subresource answers with.
fn response_kind(group: &str, version: &str, kind: &str) -> Value {
    json!({"group": group, "version": version, "kind": kind})
}

/// The `APIResourceDiscovery` of a resource.
fn aggregated_resource(resource: &ResourceType) -> Value {
    let mut entry = json!({
        "resource": resource.plural,
        "responseKind": response_kind(&resource.group, &resource.version, &resource.kind),
        "scope": if resource.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": resource.singular,
        "verbs": resource.verbs(),
    });
    if !resource.short_names.is_empty() {
        entry["shortNames"] = json!(resource.short_names);
    }
    if !resource.categories.is_empty() {
        entry["categories"] = json!(resource.categories);
    }
    let subresources: Vec<Value> = subresources(resource)
        .into_iter()
        .map(|sub| {
            let response = match sub.kind {
                "" => response_kind(&resource.group, &resource.version, &resource.kind),
                other => response_kind(sub.group, sub.version, other),
            };
            json!({"subresource": sub.name, "responseKind": response, "verbs": sub.verbs})
        })
        .collect();
    if !subresources.is_empty() {
        entry["subresources"] = json!(subresources);
    }
    entry
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubectl_gets_aggregated_discovery_and_kube_rs_the_legacy_documents() {
        let kubectl = format!("{AGGREGATED_V2},{AGGREGATED_V2BETA1},application/json");
        assert_eq!(negotiate(&kubectl), Ok(Format::AggregatedV2));
        let older = format!("{AGGREGATED_V2BETA1},application/json");
        assert_eq!(negotiate(&older), Ok(Format::AggregatedV2Beta1));
        assert_eq!(negotiate("application/json"), Ok(Format::Legacy));
        assert_eq!(negotiate(""), Ok(Format::Legacy));
        assert_eq!(negotiate("*/*"), Ok(Format::Legacy));
        assert_eq!(
            negotiate(&format!(
                "{},application/json",
                AGGREGATED_V2.replace("v2", "v3")
            )),
            Ok(Format::Legacy)
        );
        assert_eq!(
            negotiate("application/vnd.kubernetes.protobuf").map_err(|e| e.code),
            Err(406)
        );
    }
}
