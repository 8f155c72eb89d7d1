//! The component schemas of the documents: those of the built-in kinds and the meta
//! types, generated once from the API types; those of custom resources, from their CRDs;
//! and the lists of each kind.

use std::sync::OnceLock;

use k8s_openapi::{
    api::{apps, autoscaling, batch, coordination, core, events, policy},
    apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiextensions,
    apimachinery::pkg::apis::meta::v1 as meta,
};
use schemars::{JsonSchema, SchemaGenerator, generate::SchemaSettings};
use serde_json::{Map, Value, json};

use crate::resources::ResourceType;

/// Where component schemas are referred to.
pub(super) const SCHEMAS: &str = "#/components/schemas/";
pub(super) const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";
pub(super) const LIST_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta";
pub(super) const STATUS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Status";
pub(super) const DELETE_OPTIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions";
pub(super) const PATCH: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch";
pub(super) const EVICTION: &str = "io.k8s.api.policy.v1.Eviction";
pub(super) const SCALE: &str = "io.k8s.api.autoscaling.v1.Scale";

pub(super) const API_VERSION_DOC: &str = "APIVersion defines the versioned schema of this \
    representation of an object. Servers should convert recognized schemas to the latest \
    internal value, and may reject unrecognized values.";
pub(super) const KIND_DOC: &str = "Kind is a string value representing the REST resource this \
    object represents. Servers may infer this from the endpoint the client submits requests \
    to. In CamelCase.";
pub(super) const METADATA_DOC: &str = "Standard object's metadata.";

/// The names of the component schemas `value` refers to.
pub(super) fn refs(value: &Value) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![value];
    while let Some(value) = stack.pop() {
        match value {
            Value::Object(map) => {
                if let Some(name) = map
                    .get("$ref")
                    .and_then(Value::as_str)
                    .and_then(|r| r.strip_prefix(SCHEMAS))
                {
                    found.push(name.to_owned());
                }
                stack.extend(map.values());
            }
            Value::Array(items) => stack.extend(items),
            _ => {}
        }
    }
    found
}

pub(super) fn reference(name: &str) -> Value {
    json!({"$ref": format!("{SCHEMAS}{name}")})
}

pub(super) fn gvk(group: &str, version: &str, kind: &str) -> Value {
    json!({"group": group, "version": version, "kind": kind})
}

/// The component name of a custom resource's schema, as the API server names it: the group
/// reversed, the version and the kind (`dev.patchpilot.v1alpha1.PatchPolicy`).
pub(super) fn custom_name(resource: &ResourceType) -> String {
    let group: Vec<&str> = resource.group.split('.').rev().collect();
    format!("{}.{}.{}", group.join("."), resource.version, resource.kind)
}

/// A custom resource's schema: its CRD's, with the standard `apiVersion`, `kind` and
/// `metadata`, and the kind it describes.
pub(super) fn custom_schema(resource: &ResourceType, schema: &Value) -> Value {
    let mut schema = match schema {
        Value::Object(map) => map.clone(),
        _ => Map::new(),
    };
    schema.entry("type").or_insert(json!("object"));
    let properties = schema.entry("properties").or_insert_with(|| json!({}));
    if let Some(properties) = properties.as_object_mut() {
        properties.insert(
            "apiVersion".into(),
            json!({"description": API_VERSION_DOC, "type": "string"}),
        );
        properties.insert(
            "kind".into(),
            json!({"description": KIND_DOC, "type": "string"}),
        );
        properties.insert(
            "metadata".into(),
            json!({"allOf": [reference(OBJECT_META)], "description": METADATA_DOC}),
        );
    }
    schema.insert(
        "x-kubernetes-group-version-kind".into(),
        json!([gvk(&resource.group, &resource.version, &resource.kind)]),
    );
    Value::Object(schema)
}

/// The schema of a kind whose fields the sandbox does not know.
pub(super) fn opaque_schema(resource: &ResourceType) -> Value {
    let kind = gvk(&resource.group, &resource.version, &resource.kind);
    json!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
        "x-kubernetes-group-version-kind": [kind],
    })
}

/// The schema of a list of a kind.
pub(super) fn list_schema(resource: &ResourceType, item: &str) -> Value {
    let kind = &resource.kind;
    let list = gvk(&resource.group, &resource.version, &format!("{kind}List"));
    let description = format!("The {kind} objects.");
    let items = json!({"description": description, "type": "array", "items": reference(item)});
    let metadata =
        json!({"allOf": [reference(LIST_META)], "description": "Standard list metadata."});
    json!({
        "description": format!("{kind}List is a list of {kind}."),
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": {"description": API_VERSION_DOC, "type": "string"},
            "kind": {"description": KIND_DOC, "type": "string"},
            "items": items,
            "metadata": metadata,
        },
        "x-kubernetes-group-version-kind": [list],
    })
}

/// The schemas of the built-in kinds and of the meta types, generated once from the API
/// types.
pub(super) struct Catalog {
    /// Every schema, by component name.
    pub(super) definitions: Map<String, Value>,
    /// The component name of each built-in kind: group, version, kind and name.
    kinds: Vec<(&'static str, &'static str, &'static str, String)>,
}

impl Catalog {
    /// The component name of a built-in kind's schema.
    pub(super) fn kind(&self, resource: &ResourceType) -> Option<&str> {
        self.kinds
            .iter()
            .find(|(g, v, k, _)| {
                *g == resource.group && *v == resource.version && *k == resource.kind
            })
            .map(|(_, _, _, name)| name.as_str())
    }
}

/// Registers a type's schema and answers its component name.
fn named<T: JsonSchema>(generator: &mut SchemaGenerator) -> String {
    generator.subschema_for::<T>();
    T::schema_name().into_owned()
}

type Generate = fn(&mut SchemaGenerator) -> String;

/// The built-in kinds the sandbox serves, and their API types.
const BUILTIN_KINDS: &[(&str, &str, &str, Generate)] = &[
    ("", "v1", "Namespace", named::<core::v1::Namespace>),
    ("", "v1", "Node", named::<core::v1::Node>),
    ("", "v1", "Pod", named::<core::v1::Pod>),
    ("", "v1", "Event", named::<core::v1::Event>),
    ("", "v1", "ConfigMap", named::<core::v1::ConfigMap>),
    ("", "v1", "Secret", named::<core::v1::Secret>),
    (
        "",
        "v1",
        "ServiceAccount",
        named::<core::v1::ServiceAccount>,
    ),
    ("", "v1", "Service", named::<core::v1::Service>),
    ("apps", "v1", "Deployment", named::<apps::v1::Deployment>),
    ("apps", "v1", "ReplicaSet", named::<apps::v1::ReplicaSet>),
    ("apps", "v1", "StatefulSet", named::<apps::v1::StatefulSet>),
    ("apps", "v1", "DaemonSet", named::<apps::v1::DaemonSet>),
    (
        "apps",
        "v1",
        "ControllerRevision",
        named::<apps::v1::ControllerRevision>,
    ),
    ("batch", "v1", "Job", named::<batch::v1::Job>),
    (
        "policy",
        "v1",
        "PodDisruptionBudget",
        named::<policy::v1::PodDisruptionBudget>,
    ),
    ("policy", "v1", "Eviction", named::<policy::v1::Eviction>),
    (
        "autoscaling",
        "v1",
        "Scale",
        named::<autoscaling::v1::Scale>,
    ),
    (
        "coordination.k8s.io",
        "v1",
        "Lease",
        named::<coordination::v1::Lease>,
    ),
    ("events.k8s.io", "v1", "Event", named::<events::v1::Event>),
    (
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        named::<apiextensions::CustomResourceDefinition>,
    ),
];

/// The meta types every document refers to.
const META_TYPES: &[Generate] = &[
    named::<meta::ObjectMeta>,
    named::<meta::ListMeta>,
    named::<meta::Status>,
    named::<meta::DeleteOptions>,
    named::<meta::Patch>,
];

pub(super) fn catalog() -> &'static Catalog {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    CATALOG.get_or_init(|| {
        let mut generator = SchemaSettings::openapi3().into_generator();
        let kinds: Vec<_> = BUILTIN_KINDS
            .iter()
            .map(|(g, v, k, generate)| (*g, *v, *k, generate(&mut generator)))
            .collect();
        for generate in META_TYPES {
            generate(&mut generator);
        }
        let mut definitions = generator.take_definitions(true);
        for (group, version, kind, name) in &kinds {
            if let Some(schema) = definitions.get_mut(name).and_then(Value::as_object_mut) {
                schema.insert(
                    "x-kubernetes-group-version-kind".into(),
                    json!([gvk(group, version, kind)]),
                );
                // The API types require `metadata`; the API server's documents do not.
                if let Some(required) = schema.get_mut("required").and_then(Value::as_array_mut) {
                    required.retain(|field| field != "metadata");
                    if required.is_empty() {
                        schema.remove("required");
                    }
                }
            }
        }
        Catalog { definitions, kinds }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_kinds_have_schemas_naming_their_kind() {
        let catalog = catalog();
        let deployment = &catalog.definitions["io.k8s.api.apps.v1.Deployment"];
        assert_eq!(
            deployment["x-kubernetes-group-version-kind"],
            json!([gvk("apps", "v1", "Deployment")])
        );
        assert!(
            deployment["properties"]["spec"]
                .to_string()
                .contains("io.k8s.api.apps.v1.DeploymentSpec")
        );
        assert!(catalog.definitions.contains_key(OBJECT_META));
        assert!(
            catalog
                .definitions
                .contains_key("io.k8s.api.core.v1.PodSpec")
        );
    }
}
