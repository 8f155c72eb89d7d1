//! What form a client wants objects in, read from its `Accept` header as the API server
//! reads it: the media ranges in the client's order, the first one the server can produce
//! winning. Besides plain JSON the server produces two of `meta.k8s.io`'s kinds: a `Table`
//! ([`super::table`]) and metadata only ([`super::partial`]).
//!
//! The sandbox speaks JSON only; a header asking for YAML or protobuf gets JSON, where the
//! API server would answer in those; one naming nothing the API server serves is refused
//! with its `406 Not Acceptable` ([`check_acceptable`]).

use http::header::ACCEPT;

use super::Request;
use crate::status::ApiError;

/// The group of `Table` and `PartialObjectMetadata`.
const META_GROUP: &str = "meta.k8s.io";

/// The form of the objects in a response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    /// The objects themselves (plain `application/json`, or no `Accept` header).
    Object,
    /// A `Table` (`as=Table`).
    Table,
    /// Metadata only: `as=PartialObjectMetadata` (`list` false) or
    /// `as=PartialObjectMetadataList` (`list` true), of `meta.k8s.io` at `version`.
    Metadata {
        /// Whether the client asked for a list.
        list: bool,
        /// `v1` or `v1beta1`.
        version: &'static str,
    },
}

/// The form a request asks for.
pub fn negotiate(request: &Request) -> Form {
    form(request.header(ACCEPT))
}

/// The media types the API server serves objects in.
const SERVED: &str = "application/json, application/yaml, application/vnd.kubernetes.protobuf";

/// Refuses a request whose `Accept` header names nothing the API server serves, with its
/// `406 Not Acceptable`: from its router when no media type is served at all (`collection`:
/// a GET of a collection, which serves watch streams too), from its handler when one is but
/// not in the form asked (`as=Pod`). The sandbox answers YAML and protobuf in JSON.
pub fn check_acceptable(request: &Request, collection: bool) -> Result<(), ApiError> {
    let accept = request.header(ACCEPT);
    if accept.trim().is_empty() {
        return Ok(());
    }
    let mut served_type = false;
    for range in accept.split(',') {
        let media = range
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        let json_like = match media.as_str() {
            "application/json" | "application/*" | "*/*" => range,
            // The same forms, in a media type the sandbox writes as JSON.
            "application/yaml" | "application/vnd.kubernetes.protobuf" => {
                &range[range.find(';').unwrap_or(range.len())..]
            }
            _ => continue,
        };
        served_type = true;
        let json_like = if json_like.starts_with(';') || json_like.is_empty() {
            format!("application/json{json_like}")
        } else {
            json_like.to_owned()
        };
        if self::range(&json_like).is_some() {
            return Ok(());
        }
    }
    let message = if served_type {
        format!("only the following media types are accepted: {SERVED}")
    } else if collection {
        format!(
            "406: Not Acceptable\n\nAvailable representations: {SERVED}, application/json;stream=watch, application/vnd.kubernetes.protobuf;stream=watch"
        )
    } else {
        format!("406: Not Acceptable\n\nAvailable representations: {SERVED}")
    };
    Err(ApiError {
        code: 406,
        reason: "NotAcceptable",
        message,
        details: None,
    })
}

/// The form an `Accept` header asks for: that of its first media range the server can
/// produce, plain objects when there is none.
fn form(accept: &str) -> Form {
    accept.split(',').find_map(range).unwrap_or(Form::Object)
}

/// The form one media range asks for, `None` when the server cannot produce it.
fn range(range: &str) -> Option<Form> {
    let mut parts = range.split(';').map(str::trim);
    let media = parts.next().unwrap_or("").to_ascii_lowercase();
    if !matches!(media.as_str(), "application/json" | "application/*" | "*/*") {
        return None;
    }
    let (mut kind, mut group, mut version) = (None, None, None);
    for (name, value) in parts.filter_map(|p| p.split_once('=')) {
        let value = value.trim().trim_matches('"');
        match name.trim().to_ascii_lowercase().as_str() {
            "as" => kind = Some(value),
            "g" => group = Some(value),
            "v" => version = Some(value),
            // Other parameters (`charset`, `stream`, …) do not change the form.
            _ => {}
        }
    }
    let Some(kind) = kind else {
        return Some(Form::Object);
    };
    // The API server converts only to its own kinds of meta.k8s.io/v1 and v1beta1.
    let version = match (group, version) {
        (Some(META_GROUP), Some("v1")) => "v1",
        (Some(META_GROUP), Some("v1beta1")) => "v1beta1",
        _ => return None,
    };
    match kind {
        "Table" => Some(Form::Table),
        "PartialObjectMetadata" => Some(Form::Metadata {
            list: false,
            version,
        }),
        "PartialObjectMetadataList" => Some(Form::Metadata {
            list: true,
            version,
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const METADATA_V1: Form = Form::Metadata {
        list: false,
        version: "v1",
    };
    const METADATA_LIST_V1: Form = Form::Metadata {
        list: true,
        version: "v1",
    };

    #[test]
    fn the_first_range_the_server_can_produce_wins() {
        let cases = [
            ("", Form::Object),
            ("application/json", Form::Object),
            ("*/*", Form::Object),
            ("application/json; charset=utf-8", Form::Object),
            // What kube-rs sends for `Api<PartialObjectMeta<K>>`.
            (
                "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1",
                METADATA_V1,
            ),
            (
                "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1",
                METADATA_LIST_V1,
            ),
            // client-go's metadata client: protobuf first, then JSON.
            (
                "application/vnd.kubernetes.protobuf;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,\
                 application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1",
                METADATA_LIST_V1,
            ),
            (
                "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1beta1,application/json",
                Form::Metadata {
                    list: false,
                    version: "v1beta1",
                },
            ),
            // What kubectl get sends.
            (
                "application/json;as=Table;v=v1;g=meta.k8s.io,\
                 application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json",
                Form::Table,
            ),
            (
                "application/json;as=Table;g=meta.k8s.io;v=v1,\
                 application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1",
                Form::Table,
            ),
            (
                "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,\
                 application/json;as=Table;g=meta.k8s.io;v=v1",
                METADATA_V1,
            ),
            (
                "application/json, application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1",
                Form::Object,
            ),
            // Ranges the server cannot produce are passed over.
            (
                "application/json;as=PartialObjectMetadata,application/json",
                Form::Object,
            ),
            (
                "application/json;as=PartialObjectMetadata;g=apps;v=v1,application/json",
                Form::Object,
            ),
            (
                "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v2,\
                 application/json;as=Table;g=meta.k8s.io;v=v1",
                Form::Table,
            ),
            (
                "application/json;as=Pod;g=meta.k8s.io;v=v1,\
                 application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1",
                METADATA_V1,
            ),
            ("application/vnd.kubernetes.protobuf", Form::Object),
        ];
        for (accept, expected) in cases {
            assert_eq!(form(accept), expected, "{accept}");
        }
    }
}
