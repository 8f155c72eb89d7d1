//! The kinds of object the sandbox serves: the built-in ones the operator and kubectl use,
//! and custom resources added from their CustomResourceDefinitions.

use std::{collections::BTreeMap, fmt, sync::Arc};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::Value;

use super::patch::{self, TypeInfo};
use patchpilot_schema::CrdSchema;

/// A column of `kubectl get` for a custom resource (`additionalPrinterColumns`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrinterColumn {
    /// The header.
    pub name: String,
    /// `string`, `integer`, `number`, `boolean` or `date`.
    pub kind: String,
    /// The JSONPath of the value, like `.status.phase`.
    pub json_path: String,
    /// 0 for the default columns, more for `-o wide`.
    pub priority: i32,
    /// The column's description.
    pub description: String,
}

/// Where a resource's objects are stored: its group and plural name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ResourceKey {
    /// The API group, empty for core.
    pub group: String,
    /// The plural resource name.
    pub plural: String,
}

impl fmt::Display for ResourceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.group.is_empty() {
            f.write_str(&self.plural)
        } else {
            write!(f, "{}.{}", self.plural, self.group)
        }
    }
}

/// One kind of object the sandbox serves, at one version.
pub struct ResourceType {
    /// The API group, empty for core.
    pub group: String,
    /// The version served.
    pub version: String,
    /// The kind.
    pub kind: String,
    /// The plural resource name, as in URLs.
    pub plural: String,
    /// The singular name.
    pub singular: String,
    /// Whether objects live in namespaces.
    pub namespaced: bool,
    /// Short names for kubectl.
    pub short_names: Vec<String>,
    /// Categories, like `all` or `patchpilot`.
    pub categories: Vec<String>,
    /// Whether the `status` subresource exists.
    pub status: bool,
    /// Whether the `eviction` subresource exists (pods).
    pub eviction: bool,
    /// Where the objects are stored; events of `events.k8s.io` share core events' storage.
    pub storage: ResourceKey,
    /// Custom resources: the admission schema (OpenAPI and CEL rules, defaults).
    pub schema: Option<Arc<CrdSchema>>,
    /// Custom resources: the OpenAPI schema as written in the CRD.
    pub openapi: Option<Value>,
    /// Custom resources: the columns of `kubectl get`.
    pub printer_columns: Vec<PrinterColumn>,
    /// Fields usable in field selectors besides `metadata.name` and `metadata.namespace`.
    pub selectable_fields: Vec<String>,
    /// How lists merge in patches and server-side apply.
    pub types: Arc<dyn TypeInfo + Send + Sync>,
}

impl fmt::Debug for ResourceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ResourceType({}/{} {})",
            self.api_version(),
            self.kind,
            self.plural
        )
    }
}

impl ResourceType {
    /// `v1` for core, else `group/version`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The group and plural name.
    pub fn key(&self) -> ResourceKey {
        ResourceKey {
            group: self.group.clone(),
            plural: self.plural.clone(),
        }
    }

    /// Whether this is a custom resource.
    pub fn is_custom(&self) -> bool {
        self.schema.is_some()
    }

    /// The verbs discovery lists.
    pub fn verbs(&self) -> &'static [&'static str] {
        &[
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "update",
            "watch",
        ]
    }
}

struct Builtin {
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
    short: &'static [&'static str],
    categories: &'static [&'static str],
    status: bool,
    fields: &'static [&'static str],
}

const BUILTINS: &[Builtin] = &[
    Builtin {
        group: "",
        version: "v1",
        kind: "Namespace",
        plural: "namespaces",
        namespaced: false,
        short: &["ns"],
        categories: &[],
        status: true,
        fields: &["status.phase"],
    },
    Builtin {
        group: "",
        version: "v1",
        kind: "Node",
        plural: "nodes",
        namespaced: false,
        short: &["no"],
        categories: &[],
        status: true,
        fields: &["spec.unschedulable"],
    },
    Builtin {
        group: "",
        version: "v1",
        kind: "Pod",
        plural: "pods",
        namespaced: true,
        short: &["po"],
        categories: &["all"],
        status: true,
        fields: &[
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ],
    },
    Builtin {
        group: "",
        version: "v1",
        kind: "Event",
        plural: "events",
        namespaced: true,
        short: &["ev"],
        categories: &[],
        status: false,
        fields: &[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ],
    },
    Builtin {
        group: "",
        version: "v1",
        kind: "ConfigMap",
        plural: "configmaps",
        namespaced: true,
        short: &["cm"],
        categories: &[],
        status: false,
        fields: &[],
    },
    Builtin {
        group: "",
        version: "v1",
        kind: "Secret",
        plural: "secrets",
        namespaced: true,
        short: &[],
        categories: &[],
        status: false,
        fields: &["type"],
    },
    Builtin {
        group: "",
        version: "v1",
        kind: "ServiceAccount",
        plural: "serviceaccounts",
        namespaced: true,
        short: &["sa"],
        categories: &[],
        status: false,
        fields: &[],
    },
    Builtin {
        group: "",
        version: "v1",
        kind: "Service",
        plural: "services",
        namespaced: true,
        short: &["svc"],
        categories: &["all"],
        status: true,
        fields: &[],
    },
    Builtin {
        group: "apps",
        version: "v1",
        kind: "Deployment",
        plural: "deployments",
        namespaced: true,
        short: &["deploy"],
        categories: &["all"],
        status: true,
        fields: &[],
    },
    Builtin {
        group: "apps",
        version: "v1",
        kind: "ReplicaSet",
        plural: "replicasets",
        namespaced: true,
        short: &["rs"],
        categories: &["all"],
        status: true,
        fields: &[],
    },
    Builtin {
        group: "apps",
        version: "v1",
        kind: "StatefulSet",
        plural: "statefulsets",
        namespaced: true,
        short: &["sts"],
        categories: &["all"],
        status: true,
        fields: &[],
    },
    Builtin {
        group: "apps",
        version: "v1",
        kind: "DaemonSet",
        plural: "daemonsets",
        namespaced: true,
        short: &["ds"],
        categories: &["all"],
        status: true,
        fields: &[],
    },
    Builtin {
        group: "apps",
        version: "v1",
        kind: "ControllerRevision",
        plural: "controllerrevisions",
        namespaced: true,
        short: &[],
        categories: &[],
        status: false,
        fields: &[],
    },
    Builtin {
        group: "batch",
        version: "v1",
        kind: "Job",
        plural: "jobs",
        namespaced: true,
        short: &[],
        categories: &["all"],
        status: true,
        fields: &[],
    },
    Builtin {
        group: "policy",
        version: "v1",
        kind: "PodDisruptionBudget",
        plural: "poddisruptionbudgets",
        namespaced: true,
        short: &["pdb"],
        categories: &[],
        status: true,
        fields: &[],
    },
    Builtin {
        group: "coordination.k8s.io",
        version: "v1",
        kind: "Lease",
        plural: "leases",
        namespaced: true,
        short: &[],
        categories: &[],
        status: false,
        fields: &[],
    },
    Builtin {
        group: "events.k8s.io",
        version: "v1",
        kind: "Event",
        plural: "events",
        namespaced: true,
        short: &["ev"],
        categories: &[],
        status: false,
        fields: &[
            "regarding.kind",
            "regarding.namespace",
            "regarding.name",
            "regarding.uid",
            "reason",
            "reportingController",
            "type",
        ],
    },
    Builtin {
        group: "apiextensions.k8s.io",
        version: "v1",
        kind: "CustomResourceDefinition",
        plural: "customresourcedefinitions",
        namespaced: false,
        short: &["crd", "crds"],
        categories: &["api-extensions"],
        status: true,
        fields: &[],
    },
];

/// Every kind the sandbox serves.
#[derive(Debug, Default)]
pub struct Registry {
    types: Vec<Arc<ResourceType>>,
}

/// Why a CRD cannot be served.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("CustomResourceDefinition {name}: {message}")]
pub struct CrdError {
    /// The CRD's name.
    pub name: String,
    /// What is wrong.
    pub message: String,
}

impl Registry {
    /// The built-in kinds.
    pub fn builtin() -> Self {
        let types = BUILTINS
            .iter()
            .map(|b| {
                let storage_group = if b.group == "events.k8s.io" {
                    ""
                } else {
                    b.group
                };
                Arc::new(ResourceType {
                    group: b.group.to_owned(),
                    version: b.version.to_owned(),
                    kind: b.kind.to_owned(),
                    plural: b.plural.to_owned(),
                    singular: b.kind.to_lowercase(),
                    namespaced: b.namespaced,
                    short_names: b.short.iter().map(|s| (*s).to_owned()).collect(),
                    categories: b.categories.iter().map(|s| (*s).to_owned()).collect(),
                    status: b.status,
                    eviction: b.kind == "Pod",
                    storage: ResourceKey {
                        group: storage_group.to_owned(),
                        plural: b.plural.to_owned(),
                    },
                    schema: None,
                    openapi: None,
                    printer_columns: Vec::new(),
                    selectable_fields: b.fields.iter().map(|s| (*s).to_owned()).collect(),
                    types: Arc::from(patch::builtin(b.group, b.kind)),
                })
            })
            .collect();
        Registry { types }
    }

    /// Serves the custom resource a CRD defines (its storage version), replacing an earlier
    /// definition of the same resource.
    pub fn add_crd(
        &mut self,
        crd: &CustomResourceDefinition,
    ) -> Result<Arc<ResourceType>, CrdError> {
        let name = crd.metadata.name.clone().unwrap_or_default();
        let error = |message: &str| CrdError {
            name: name.clone(),
            message: message.to_owned(),
        };
        let spec = &crd.spec;
        let version = spec
            .versions
            .iter()
            .find(|v| v.storage)
            .or_else(|| spec.versions.first())
            .ok_or_else(|| error("spec.versions: at least one version is required"))?;
        let schema = CrdSchema::new(crd, &version.name)
            .ok_or_else(|| error("the storage version has no openAPIV3Schema"))?;
        let openapi = version
            .schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.as_ref())
            .and_then(|s| serde_json::to_value(s).ok());
        let names = &spec.names;
        let resource = Arc::new(ResourceType {
            group: spec.group.clone(),
            version: version.name.clone(),
            kind: names.kind.clone(),
            plural: names.plural.clone(),
            singular: names
                .singular
                .clone()
                .unwrap_or_else(|| names.kind.to_lowercase()),
            namespaced: spec.scope == "Namespaced",
            short_names: names.short_names.clone().unwrap_or_default(),
            categories: names.categories.clone().unwrap_or_default(),
            status: version
                .subresources
                .as_ref()
                .is_some_and(|s| s.status.is_some()),
            eviction: false,
            storage: ResourceKey {
                group: spec.group.clone(),
                plural: names.plural.clone(),
            },
            schema: Some(Arc::new(schema)),
            types: Arc::from(patch::from_schema(openapi.as_ref().unwrap_or(&Value::Null))),
            openapi,
            printer_columns: version
                .additional_printer_columns
                .iter()
                .flatten()
                .map(|c| PrinterColumn {
                    name: c.name.clone(),
                    kind: c.type_.clone(),
                    json_path: c.json_path.clone(),
                    priority: c.priority.unwrap_or(0),
                    description: c.description.clone().unwrap_or_default(),
                })
                .collect(),
            selectable_fields: version
                .selectable_fields
                .iter()
                .flatten()
                .map(|f| f.json_path.trim_start_matches('.').to_owned())
                .collect(),
        });
        self.types
            .retain(|t| !(t.group == resource.group && t.plural == resource.plural));
        self.types.push(resource.clone());
        Ok(resource)
    }

    /// Stops serving a custom resource.
    pub fn remove(&mut self, group: &str, plural: &str) {
        self.types
            .retain(|t| !(t.group == group && t.plural == plural && t.is_custom()));
    }

    /// The resource at `group`/`version` named `plural`.
    pub fn find(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceType>> {
        self.types
            .iter()
            .find(|t| t.group == group && t.version == version && t.plural == plural)
            .cloned()
    }

    /// The resource of objects with this `apiVersion` and `kind`.
    pub fn by_kind(&self, api_version: &str, kind: &str) -> Option<Arc<ResourceType>> {
        self.types
            .iter()
            .find(|t| t.api_version() == api_version && t.kind == kind)
            .cloned()
    }

    /// Every resource served.
    pub fn all(&self) -> &[Arc<ResourceType>] {
        &self.types
    }

    /// The groups served, core first, each with its versions.
    pub fn groups(&self) -> BTreeMap<String, Vec<String>> {
        let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for t in &self.types {
            let versions = groups.entry(t.group.clone()).or_default();
            if !versions.contains(&t.version) {
                versions.push(t.version.clone());
            }
        }
        groups
    }
}
