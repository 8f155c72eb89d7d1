//! The paths of the documents: each resource's collection, objects, list across
//! namespaces and subresources, with the operations the sandbox serves on them and their
//! parameters — among them `fieldValidation`, which tells kubectl that the server
//! validates fields itself.

use serde_json::{Map, Value, json};

use super::schemas::{DELETE_OPTIONS, EVICTION, PATCH, SCALE, STATUS, gvk, reference};
use crate::{apiserver::scale, resources::ResourceType};

/// A query parameter: its name, type and description.
type Query = (&'static str, &'static str, &'static str);

const PRETTY: Query = (
    "pretty",
    "string",
    "If 'true', the output is pretty printed.",
);

/// The parameters of writes: dry runs, the field manager and field validation.
const WRITE: &[Query] = &[
    (
        "dryRun",
        "string",
        "When present, the request is checked and answered but nothing is stored. The only \
         valid value is All.",
    ),
    (
        "fieldManager",
        "string",
        "The name of the actor making the change, recorded in managedFields. Required for \
         apply patches.",
    ),
    (
        "fieldValidation",
        "string",
        "How the server treats fields of the object that its schema does not know, or that \
         appear twice: Ignore drops them; Warn drops them and answers with a warning for \
         each; Strict refuses the request with an error naming them.",
    ),
];

const FORCE: Query = (
    "force",
    "boolean",
    "Apply patches only: take over the fields other managers own instead of answering with \
     a conflict.",
);

/// The parameters of lists and watches.
const LIST: &[Query] = &[
    (
        "allowWatchBookmarks",
        "boolean",
        "Ask for BOOKMARK events in a watch.",
    ),
    (
        "continue",
        "string",
        "The token of the next page, from the previous page's metadata.",
    ),
    (
        "fieldSelector",
        "string",
        "Only objects whose fields match, like metadata.name=web.",
    ),
    (
        "labelSelector",
        "string",
        "Only objects whose labels match, like app=web,tier!=db.",
    ),
    (
        "limit",
        "integer",
        "At most this many objects; the list then has a continue token.",
    ),
    (
        "resourceVersion",
        "string",
        "The resource version to list at or to watch from.",
    ),
    (
        "resourceVersionMatch",
        "string",
        "How resourceVersion applies to a list.",
    ),
    (
        "sendInitialEvents",
        "boolean",
        "Start a watch with the current objects, then a bookmark.",
    ),
    (
        "timeoutSeconds",
        "integer",
        "End the list or watch after this many seconds.",
    ),
    ("watch", "boolean", "Watch for changes instead of listing."),
];

/// The parameters of deletions.
const DELETE: &[Query] = &[
    (
        "dryRun",
        "string",
        "When present, the request is checked and answered but nothing is deleted. The only \
         valid value is All.",
    ),
    (
        "gracePeriodSeconds",
        "integer",
        "How long a pod may take to stop; 0 deletes it at once.",
    ),
    (
        "propagationPolicy",
        "string",
        "What happens to the objects the deleted one owns: Orphan, Background or Foreground.",
    ),
];

/// The media types of patches the sandbox accepts for every kind. Strategic merge patches
/// are accepted too, for built-in kinds, but not offered: see the module's documentation.
const PATCH_TYPES: &[&str] = &[
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/apply-patch+yaml",
];

fn query((name, kind, description): Query) -> Value {
    let schema = json!({"type": kind, "uniqueItems": true});
    json!({"name": name, "in": "query", "description": description, "schema": schema})
}

fn in_path(name: &str, description: &str) -> Value {
    let schema = json!({"type": "string", "uniqueItems": true});
    json!({
        "name": name,
        "in": "path",
        "required": true,
        "description": description,
        "schema": schema,
    })
}

/// A request or response body of the schema `name`.
fn content(name: &str) -> Value {
    let schema = reference(name);
    json!({"application/json": {"schema": schema}, "application/yaml": {"schema": schema}})
}

fn patch_content() -> Value {
    let schema = json!({"schema": reference(PATCH)});
    Value::Object(
        PATCH_TYPES
            .iter()
            .map(|t| ((*t).to_owned(), schema.clone()))
            .collect(),
    )
}

/// What one operation is.
struct Operation {
    id: String,
    action: &'static str,
    description: String,
    parameters: Vec<Value>,
    body: Option<Value>,
    answers: &'static [&'static str],
    answer: String,
    kind: Value,
}

impl Operation {
    fn render(self) -> Value {
        let mut responses: Map<String, Value> = self
            .answers
            .iter()
            .map(|code| {
                let description = match *code {
                    "201" => "Created",
                    "202" => "Accepted",
                    _ => "OK",
                };
                let response =
                    json!({"description": description, "content": content(&self.answer)});
                ((*code).to_owned(), response)
            })
            .collect();
        responses.insert("401".into(), json!({"description": "Unauthorized"}));
        let mut operation = json!({
            "operationId": self.id,
            "description": self.description,
            "parameters": self.parameters,
            "responses": responses,
            "x-kubernetes-action": self.action,
            "x-kubernetes-group-version-kind": self.kind,
        });
        if let Some(body) = self.body {
            operation["requestBody"] = json!({"content": body, "required": true});
        }
        operation
    }
}

/// The operations of one resource.
struct Builder<'a> {
    resource: &'a ResourceType,
    /// The component name of the kind's schema.
    schema: &'a str,
    /// `Namespaced` in operation names of namespaced kinds.
    scope: &'static str,
}

impl Builder<'_> {
    /// An operation answering with the kind, named `<id><scope><Kind>`.
    fn operation(&self, id: &str, action: &'static str, description: String) -> Operation {
        Operation {
            id: format!("{id}{}{}", self.scope, self.resource.kind),
            action,
            description,
            parameters: Vec::new(),
            body: None,
            answers: &["200"],
            answer: self.schema.to_owned(),
            kind: gvk(
                &self.resource.group,
                &self.resource.version,
                &self.resource.kind,
            ),
        }
    }

    /// The parameters of the path (namespace, and name for an object), `pretty`, and
    /// `extra`.
    fn parameters(&self, named: bool, extra: &[&[Query]]) -> Vec<Value> {
        let kind = &self.resource.kind;
        let mut all = Vec::new();
        if self.resource.namespaced {
            all.push(in_path("namespace", "The object's namespace."));
        }
        if named {
            all.push(in_path("name", &format!("The name of the {kind}.")));
        }
        all.push(query(PRETTY));
        all.extend(extra.iter().flat_map(|e| e.iter()).copied().map(query));
        all
    }

    /// `GET` (list), `POST` and `DELETE` (of a collection) on the collection.
    fn collection(&self) -> Value {
        let kind = &self.resource.kind;
        let list = Operation {
            parameters: self.parameters(false, &[LIST]),
            answer: format!("{}List", self.schema),
            ..self.operation(
                "list",
                "list",
                format!("list or watch objects of kind {kind}"),
            )
        };
        let create = Operation {
            parameters: self.parameters(false, &[WRITE]),
            body: Some(content(self.schema)),
            answers: &["200", "201", "202"],
            ..self.operation("create", "post", format!("create a {kind}"))
        };
        let delete = Operation {
            parameters: self.parameters(false, &[DELETE, LIST]),
            body: Some(content(DELETE_OPTIONS)),
            answer: STATUS.to_owned(),
            ..self.operation(
                "deleteCollection",
                "deletecollection",
                format!("delete {kind}s"),
            )
        };
        json!({"get": list.render(), "post": create.render(), "delete": delete.render()})
    }

    /// `GET`, `PUT`, `PATCH` and `DELETE` of one object.
    fn object(&self) -> Value {
        let kind = &self.resource.kind;
        let read = Operation {
            parameters: self.parameters(true, &[]),
            ..self.operation("read", "get", format!("read the specified {kind}"))
        };
        let replace = Operation {
            parameters: self.parameters(true, &[WRITE]),
            body: Some(content(self.schema)),
            answers: &["200", "201"],
            ..self.operation("replace", "put", format!("replace the specified {kind}"))
        };
        let patch = Operation {
            parameters: self.parameters(true, &[WRITE, &[FORCE]]),
            body: Some(patch_content()),
            answers: &["200", "201"],
            ..self.operation(
                "patch",
                "patch",
                format!("partially update the specified {kind}"),
            )
        };
        let delete = Operation {
            parameters: self.parameters(true, &[DELETE]),
            body: Some(content(DELETE_OPTIONS)),
            answers: &["200", "202"],
            ..self.operation("delete", "delete", format!("delete a {kind}"))
        };
        json!({
            "get": read.render(),
            "put": replace.render(),
            "patch": patch.render(),
            "delete": delete.render(),
        })
    }

    /// `GET` (list) across namespaces.
    fn all_namespaces(&self) -> Value {
        let kind = &self.resource.kind;
        let list = Operation {
            id: format!("list{kind}ForAllNamespaces"),
            parameters: [
                vec![query(PRETTY)],
                LIST.iter().copied().map(query).collect(),
            ]
            .concat(),
            answer: format!("{}List", self.schema),
            ..self.operation(
                "list",
                "list",
                format!("list or watch {kind}s in every namespace"),
            )
        };
        json!({"get": list.render()})
    }

    /// `GET`, `PUT` and `PATCH` of a subresource (`Status`, `Scale`) answering with the
    /// schema `answer` of the kind `kind`.
    fn subresource(&self, suffix: &str, answer: &str, kind: Value) -> Value {
        let owner = &self.resource.kind;
        let what = suffix.to_lowercase();
        let operation = |id: &str, action: &'static str, verb: &str| Operation {
            id: format!("{id}{}{owner}{suffix}", self.scope),
            answer: answer.to_owned(),
            kind: kind.clone(),
            ..self.operation(
                id,
                action,
                format!("{verb} the {what} of the specified {owner}"),
            )
        };
        let read = Operation {
            parameters: self.parameters(true, &[]),
            ..operation("read", "get", "read")
        };
        let replace = Operation {
            parameters: self.parameters(true, &[WRITE]),
            body: Some(content(answer)),
            answers: &["200", "201"],
            ..operation("replace", "put", "replace")
        };
        let patch = Operation {
            parameters: self.parameters(true, &[WRITE, &[FORCE]]),
            body: Some(patch_content()),
            answers: &["200", "201"],
            ..operation("patch", "patch", "partially update")
        };
        json!({"get": read.render(), "put": replace.render(), "patch": patch.render()})
    }

    /// `POST` of an `Eviction` of a pod.
    fn eviction(&self) -> Value {
        let eviction = Operation {
            id: format!("create{}{}Eviction", self.scope, self.resource.kind),
            parameters: self.parameters(true, &[WRITE]),
            body: Some(content(EVICTION)),
            answers: &["200", "201", "202"],
            answer: EVICTION.to_owned(),
            kind: gvk("policy", "v1", "Eviction"),
            ..self.operation("create", "post", format!("evict a {}", self.resource.kind))
        };
        json!({"post": eviction.render()})
    }
}

/// The paths of a resource whose schema is the component `schema`: its collection, its
/// objects, its list across namespaces and its subresources.
pub(super) fn resource_paths(resource: &ResourceType, schema: &str) -> Map<String, Value> {
    let prefix = if resource.group.is_empty() {
        format!("/api/{}", resource.version)
    } else {
        format!("/apis/{}/{}", resource.group, resource.version)
    };
    let plural = &resource.plural;
    let (scope, collection) = match resource.namespaced {
        true => (
            "Namespaced",
            format!("{prefix}/namespaces/{{namespace}}/{plural}"),
        ),
        false => ("", format!("{prefix}/{plural}")),
    };
    let builder = Builder {
        resource,
        schema,
        scope,
    };
    let item = format!("{collection}/{{name}}");
    let mut paths = Map::new();
    paths.insert(item.clone(), builder.object());
    if resource.namespaced {
        paths.insert(format!("{prefix}/{plural}"), builder.all_namespaces());
    }
    if resource.status {
        let this = gvk(&resource.group, &resource.version, &resource.kind);
        paths.insert(
            format!("{item}/status"),
            builder.subresource("Status", schema, this),
        );
    }
    if scale::served(resource) {
        let kind = gvk("autoscaling", "v1", "Scale");
        paths.insert(
            format!("{item}/scale"),
            builder.subresource("Scale", SCALE, kind),
        );
    }
    if resource.eviction {
        paths.insert(format!("{item}/eviction"), builder.eviction());
    }
    paths.insert(collection, builder.collection());
    paths
}
