//! Errors as the Kubernetes API answers them: a `Status` object with a code, a reason and a
//! message that kubectl and kube-rs understand.

use serde_json::{Value, json};

use super::resources::ResourceType;
use patchpilot_schema::{FieldError, FieldErrorKind};

/// A failed request.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{code} {reason}: {message}")]
pub struct ApiError {
    /// The HTTP status code.
    pub code: u16,
    /// The `reason` of the Status (`NotFound`, `Conflict`, `Invalid`, …).
    pub reason: &'static str,
    /// The message.
    pub message: String,
    /// The `details` of the Status, if any.
    pub details: Option<Value>,
}

fn qualified(resource: &ResourceType) -> String {
    if resource.group.is_empty() {
        resource.plural.clone()
    } else {
        format!("{}.{}", resource.plural, resource.group)
    }
}

fn details(resource: &ResourceType, name: &str) -> Value {
    let mut details = json!({"name": name, "kind": resource.plural});
    if !resource.group.is_empty() {
        details["group"] = json!(resource.group);
    }
    details
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    /// 404: the object does not exist.
    pub fn not_found(resource: &ResourceType, name: &str) -> Self {
        ApiError {
            details: Some(details(resource, name)),
            ..Self::new(
                404,
                "NotFound",
                format!("{} \"{name}\" not found", qualified(resource)),
            )
        }
    }

    /// 404: the namespace of a namespaced write does not exist.
    pub fn namespace_not_found(namespace: &str) -> Self {
        ApiError {
            details: Some(json!({"name": namespace, "kind": "namespaces"})),
            ..Self::new(
                404,
                "NotFound",
                format!("namespaces \"{namespace}\" not found"),
            )
        }
    }

    /// 404 for a path the server does not serve.
    pub fn no_route(path: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("the server could not find the requested resource ({path})"),
        )
    }

    /// 409: the object already exists.
    pub fn already_exists(resource: &ResourceType, name: &str) -> Self {
        ApiError {
            details: Some(details(resource, name)),
            ..Self::new(
                409,
                "AlreadyExists",
                format!("{} \"{name}\" already exists", qualified(resource)),
            )
        }
    }

    /// 409: the object changed since the client read it.
    pub fn conflict(resource: &ResourceType, name: &str) -> Self {
        let message = format!(
            "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
            qualified(resource)
        );
        ApiError {
            details: Some(details(resource, name)),
            ..Self::new(409, "Conflict", message)
        }
    }

    /// 409 with a message of the caller's (server-side apply conflicts, preconditions).
    pub fn conflict_with(resource: &ResourceType, name: &str, message: impl Into<String>) -> Self {
        ApiError {
            details: Some(details(resource, name)),
            ..Self::new(409, "Conflict", message)
        }
    }

    /// 422: the object breaks its schema.
    pub fn invalid(resource: &ResourceType, name: &str, errors: &[FieldError]) -> Self {
        let causes: Vec<Value> = errors
            .iter()
            .map(|e| {
                let reason = match e.kind {
                    FieldErrorKind::Required => "FieldValueRequired",
                    FieldErrorKind::Unknown => "FieldValueInvalid",
                    FieldErrorKind::Invalid { .. } => "FieldValueInvalid",
                    FieldErrorKind::NotSupported { .. } => "FieldValueNotSupported",
                    FieldErrorKind::TooLong { .. } => "FieldValueTooLong",
                    FieldErrorKind::TooMany { .. } => "FieldValueTooMany",
                    FieldErrorKind::Duplicate { .. } => "FieldValueDuplicate",
                };
                let full = e.to_string();
                let message = full
                    .strip_prefix(&format!("{}: ", e.path))
                    .unwrap_or(&full)
                    .to_owned();
                json!({"reason": reason, "message": message, "field": e.path})
            })
            .collect();
        let summary = patchpilot_schema::FieldErrors(errors.to_vec()).to_string();
        let kind_group = if resource.group.is_empty() {
            resource.kind.clone()
        } else {
            format!("{}.{}", resource.kind, resource.group)
        };
        let mut details = json!({"name": name, "kind": resource.kind, "causes": causes});
        if !resource.group.is_empty() {
            details["group"] = json!(resource.group);
        }
        ApiError {
            details: Some(details),
            ..Self::new(
                422,
                "Invalid",
                format!("{kind_group} \"{name}\" is invalid: {summary}"),
            )
        }
    }

    /// 422 for a list or watch option the server refuses, as `ListOptions` validation does.
    pub fn invalid_options(field: &str, message: &str) -> Self {
        ApiError {
            details: Some(json!({
                "kind": "ListOptions",
                "group": "meta.k8s.io",
                "causes": [{"reason": "FieldValueForbidden", "message": format!("Forbidden: {message}"), "field": field}],
            })),
            ..Self::new(
                422,
                "Invalid",
                format!("ListOptions.meta.k8s.io \"\" is invalid: {field}: Forbidden: {message}"),
            )
        }
    }

    /// 400: the request is malformed.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    /// 405: the verb is not allowed here.
    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(405, "MethodNotAllowed", message)
    }

    /// 410: the resource version is too old.
    pub fn gone(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    /// 415: the content type is not accepted.
    pub fn unsupported_media_type(content_type: &str) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml; got {content_type}"
            ),
        )
    }

    /// 415: a body in a format the resource is not read from.
    pub fn unknown_body_format(accepted: &[&str]) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: {}",
                accepted.join(", ")
            ),
        )
    }

    /// 429: try again later, with the causes (an eviction a disruption budget refuses).
    pub fn too_many_requests(message: impl Into<String>, causes: Vec<Value>) -> Self {
        ApiError {
            details: Some(json!({"causes": causes})),
            ..Self::new(429, "TooManyRequests", message)
        }
    }

    /// 500: something went wrong (or a fault the scenario injects).
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "InternalError", message)
    }

    /// 500 without a reason: what the API server answers a server-side apply whose
    /// configuration holds fields the schema does not declare, whatever the field
    /// validation asked for: the configuration cannot become a typed patch.
    pub fn untyped_apply(
        resource: &ResourceType,
        namespace: &str,
        name: &str,
        fields: &[String],
    ) -> Self {
        let undeclared = |f: &String| format!(".{f}: field not declared in schema");
        let errors = match fields {
            [one] => undeclared(one),
            many => {
                let lines: Vec<String> = many
                    .iter()
                    .map(|f| format!("\n  {}", undeclared(f)))
                    .collect();
                format!("errors:{}", lines.concat())
            }
        };
        let group_version = resource.api_version();
        Self::new(
            500,
            "",
            format!(
                "failed to create typed patch object ({namespace}/{name}; {group_version}, Kind={}): {errors}",
                resource.kind
            ),
        )
    }

    /// 403: not allowed.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, "Forbidden", message)
    }

    /// The `Status` object for the response body.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if self.reason.is_empty() {
            status.as_object_mut().map(|s| s.remove("reason"));
        }
        if let Some(details) = &self.details {
            status["details"] = details.clone();
        }
        status
    }
}

/// The `Status` of a successful deletion without an object to return.
pub fn success(resource: &ResourceType, name: &str, uid: &str) -> Value {
    let mut details = details(resource, name);
    details["uid"] = json!(uid);
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details})
}
