//! Metadata-only responses, as the API server gives clients that ask for
//! `application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1` (one object, or the
//! objects of a watch) or `…;as=PartialObjectMetadataList;…` (a list), as kube-rs does for
//! `Api<PartialObjectMeta<K>>` and client-go's metadata informers: each object becomes a
//! `PartialObjectMetadata` with its whole `metadata` (managedFields included) and nothing
//! else. Lists keep their `resourceVersion`, `continue` and `remainingItemCount`.
//!
//! As on the API server, asking for a list of one object, or for one object of a list, is
//! `406 Not Acceptable`; a watch asked for lists sends its objects whole, as the API server
//! does when it cannot convert an event. Statuses (errors, deletions) are never converted.

use serde_json::{Value, json};

use super::{
    Request,
    media::{self, Form},
};
use crate::{resources::ResourceType, status::ApiError};

/// A request's ask for metadata only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Partial {
    /// Whether it asked for a `PartialObjectMetadataList`.
    list: bool,
    /// The version of `meta.k8s.io`: `v1` or `v1beta1`.
    version: &'static str,
}

/// Whether the client asked for metadata only, and how.
pub fn wanted(request: &Request) -> Option<Partial> {
    match media::negotiate(request) {
        Form::Metadata { list, version } => Some(Partial { list, version }),
        Form::Object | Form::Table => None,
    }
}

impl Partial {
    /// One object's metadata; `406` when the client asked for a list.
    pub fn object(self, resource: &ResourceType, object: &Value) -> Result<Value, ApiError> {
        if self.list {
            return Err(not_acceptable(format!(
                "you requested PartialObjectMetadataList, but the requested object is not a list ({})",
                go_type(resource, false)
            )));
        }
        Ok(self.metadata(object))
    }

    /// A list's metadata and its objects'; `406` when the client asked for one object.
    pub fn list(
        self,
        resource: &ResourceType,
        metadata: Value,
        items: &[Value],
    ) -> Result<Value, ApiError> {
        if !self.list {
            return Err(not_acceptable(format!(
                "you requested PartialObjectMetadata, but the requested object is a list ({})",
                go_type(resource, true)
            )));
        }
        let items: Vec<Value> = items.iter().map(|o| self.metadata(o)).collect();
        Ok(json!({
            "kind": "PartialObjectMetadataList",
            "apiVersion": self.api_version(),
            "metadata": metadata,
            "items": items,
        }))
    }

    /// The object of a watch event (bookmarks included): its metadata, or the object
    /// whole when the client asked for lists.
    pub fn event(self, object: Value) -> Value {
        if self.list {
            return object;
        }
        self.metadata(&object)
    }

    fn metadata(self, object: &Value) -> Value {
        json!({
            "kind": "PartialObjectMetadata",
            "apiVersion": self.api_version(),
            "metadata": object.get("metadata").cloned().unwrap_or_else(|| json!({})),
        })
    }

    fn api_version(self) -> String {
        format!("meta.k8s.io/{}", self.version)
    }
}

fn not_acceptable(message: String) -> ApiError {
    ApiError {
        code: 406,
        reason: "NotAcceptable",
        message,
        details: None,
    }
}

/// The Go type the API server names in its messages: the internal type of a built-in
/// kind (`*core.NodeList`, `*apps.Deployment`), `*unstructured.Unstructured` for custom
/// resources.
fn go_type(resource: &ResourceType, list: bool) -> String {
    let suffix = if list { "List" } else { "" };
    if resource.is_custom() {
        return format!("*unstructured.Unstructured{suffix}");
    }
    let package = match resource.group.split('.').next() {
        None | Some("") | Some("events") => "core",
        Some(group) => group,
    };
    format!("*{package}.{}{suffix}", resource.kind)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::Registry;

    const OBJECT: Partial = Partial {
        list: false,
        version: "v1",
    };
    const LIST: Partial = Partial {
        list: true,
        version: "v1",
    };

    fn nodes() -> std::sync::Arc<ResourceType> {
        Registry::builtin().find("", "v1", "nodes").unwrap()
    }

    fn node(name: &str) -> Value {
        json!({
            "kind": "Node",
            "apiVersion": "v1",
            "metadata": {
                "name": name,
                "labels": {"pool": "a"},
                "resourceVersion": "7",
                "managedFields": [{"manager": "kubelet", "operation": "Update"}],
            },
            "spec": {"unschedulable": true},
            "status": {"nodeInfo": {"osImage": "Linux"}},
        })
    }

    #[test]
    fn objects_keep_their_whole_metadata_and_nothing_else() {
        let object = OBJECT.object(&nodes(), &node("n1")).unwrap();
        assert_eq!(
            object,
            json!({
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": node("n1")["metadata"],
            })
        );
        let beta = Partial {
            list: false,
            version: "v1beta1",
        };
        assert_eq!(
            beta.event(node("n1"))["apiVersion"],
            json!("meta.k8s.io/v1beta1")
        );
    }

    #[test]
    fn lists_keep_their_list_metadata() {
        let metadata = json!({"resourceVersion": "9", "continue": "c", "remainingItemCount": 1});
        let list = LIST
            .list(&nodes(), metadata.clone(), &[node("n1"), node("n2")])
            .unwrap();
        assert_eq!(list["kind"], json!("PartialObjectMetadataList"));
        assert_eq!(list["apiVersion"], json!("meta.k8s.io/v1"));
        assert_eq!(list["metadata"], metadata);
        let items = list["items"].as_array().unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[1], OBJECT.event(node("n2")));
    }

    #[test]
    fn a_list_for_an_object_and_an_object_for_a_list_are_not_acceptable() {
        let error = LIST.object(&nodes(), &node("n1")).unwrap_err();
        assert_eq!((error.code, error.reason), (406, "NotAcceptable"));
        assert!(error.message.contains("(*core.Node)"), "{}", error.message);
        let error = OBJECT.list(&nodes(), json!({}), &[]).unwrap_err();
        assert_eq!(error.code, 406);
        assert!(
            error.message.contains("(*core.NodeList)"),
            "{}",
            error.message
        );
        let deployments = Registry::builtin()
            .find("apps", "v1", "deployments")
            .unwrap();
        assert_eq!(go_type(&deployments, true), "*apps.DeploymentList");
    }

    #[test]
    fn watches_asked_for_lists_get_whole_objects() {
        assert_eq!(LIST.event(node("n1")), node("n1"));
    }
}
