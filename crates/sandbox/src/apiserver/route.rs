//! Kubernetes API paths: which resource, namespace, object and subresource a request is for.

use std::sync::Arc;

use super::super::{resources::ResourceType, status::ApiError, store::Store};

/// What a path addresses.
#[derive(Debug)]
pub enum Route {
    /// Discovery: `/api`, `/api/v1`, `/apis`, `/apis/<group>`, `/apis/<group>/<version>`.
    Discovery(Discovery),
    /// `/version`.
    Version,
    /// `/openapi/v2`, `/openapi/v3` and `/openapi/v3/<path>`.
    OpenApi(String),
    /// `/healthz`, `/livez`, `/readyz`.
    Health,
    /// `/apis/authentication.k8s.io/v1/selfsubjectreviews`: who the client is, as
    /// `kubectl auth whoami` asks.
    SelfSubjectReview,
    /// Objects of a resource.
    Resource(Target),
}

/// A discovery document.
#[derive(Debug, PartialEq, Eq)]
pub enum Discovery {
    /// `/api`: the core versions.
    CoreVersions,
    /// `/apis`: the groups.
    Groups,
    /// `/apis/<group>`.
    Group(String),
    /// `/api/v1` or `/apis/<group>/<version>`: the resources.
    Resources(String, String),
}

/// The objects a resource request addresses.
#[derive(Debug)]
pub struct Target {
    /// The resource.
    pub resource: Arc<ResourceType>,
    /// The namespace in the path (`None` for cluster-scoped resources and lists across
    /// namespaces).
    pub namespace: Option<String>,
    /// The object's name.
    pub name: Option<String>,
    /// `status` or `eviction`.
    pub subresource: Option<String>,
}

/// Routes a path (without the query).
pub fn route(store: &Store, path: &str) -> Result<Route, ApiError> {
    let parts: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|p| !p.is_empty())
        .collect();
    match parts.as_slice() {
        ["version"] => Ok(Route::Version),
        ["healthz" | "livez" | "readyz", ..] => Ok(Route::Health),
        ["openapi", rest @ ..] => Ok(Route::OpenApi(rest.join("/"))),
        ["api"] => Ok(Route::Discovery(Discovery::CoreVersions)),
        ["api", version] => Ok(Route::Discovery(Discovery::Resources(
            String::new(),
            (*version).to_owned(),
        ))),
        ["apis"] => Ok(Route::Discovery(Discovery::Groups)),
        ["apis", group] => Ok(Route::Discovery(Discovery::Group((*group).to_owned()))),
        ["apis", group, version] => Ok(Route::Discovery(Discovery::Resources(
            (*group).to_owned(),
            (*version).to_owned(),
        ))),
        ["api", version, rest @ ..] => resource(store, "", version, rest, path),
        ["apis", "authentication.k8s.io", "v1", "selfsubjectreviews"] => {
            Ok(Route::SelfSubjectReview)
        }
        ["apis", group, version, rest @ ..] => resource(store, group, version, rest, path),
        _ => Err(ApiError::no_route(path)),
    }
}

fn resource(
    store: &Store,
    group: &str,
    version: &str,
    rest: &[&str],
    path: &str,
) -> Result<Route, ApiError> {
    let find = |plural: &str| {
        store
            .resource(group, version, plural)
            .ok_or_else(|| ApiError::no_route(path))
    };
    let target = |resource: Arc<ResourceType>,
                  namespace: Option<&str>,
                  name: Option<&str>,
                  subresource: Option<&str>| {
        Ok(Route::Resource(Target {
            resource,
            namespace: namespace.map(str::to_owned),
            name: name.map(str::to_owned),
            subresource: subresource.map(str::to_owned),
        }))
    };
    match rest {
        // A namespace object itself: `/api/v1/namespaces/<name>[/status]`.
        ["namespaces", name] if group.is_empty() => {
            target(find("namespaces")?, None, Some(name), None)
        }
        ["namespaces", name, sub @ ("status" | "finalize")] if group.is_empty() => {
            target(find("namespaces")?, None, Some(name), Some(sub))
        }
        ["namespaces", namespace, plural, tail @ ..] => {
            let resource = find(plural)?;
            if !resource.namespaced {
                return Err(ApiError::no_route(path));
            }
            match tail {
                [] => target(resource, Some(namespace), None, None),
                [name] => target(resource, Some(namespace), Some(name), None),
                [name, sub] => target(resource, Some(namespace), Some(name), Some(sub)),
                _ => Err(ApiError::no_route(path)),
            }
        }
        [plural] => target(find(plural)?, None, None, None),
        [plural, name] => {
            let resource = find(plural)?;
            if resource.namespaced {
                return Err(ApiError::no_route(path));
            }
            target(resource, None, Some(name), None)
        }
        [plural, name, sub] => {
            let resource = find(plural)?;
            if resource.namespaced {
                return Err(ApiError::no_route(path));
            }
            target(resource, None, Some(name), Some(sub))
        }
        _ => Err(ApiError::no_route(path)),
    }
}
