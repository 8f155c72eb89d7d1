//! Parts shared by several resources.

use std::borrow::Cow;

use k8s_openapi::{api::core::v1::PodTemplateSpec, apimachinery::pkg::apis::meta::v1::Time};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

pub use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// A half-open interval of time `[start, end)`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Interval {
    /// The first instant of the interval.
    pub start: Time,
    /// The first instant after the interval.
    pub end: Time,
}

/// A pod template, kept as written and checked by the operator when it is used.
///
/// The schema does not spell out the whole pod specification: that would make every CRD
/// several hundred kilobytes, too large for `kubectl apply` without server-side apply. The
/// operator reads it as a `PodTemplateSpec` and reports a malformed one as `InvalidSpec`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PodTemplate(pub PodTemplateSpec);

impl JsonSchema for PodTemplate {
    fn schema_name() -> Cow<'static, str> {
        "PodTemplate".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": true,
        })
    }
}

/// Marks a list of conditions as a map keyed by `type`, so that server-side apply merges
/// conditions one by one.
pub(crate) fn conditions_schema(generator: &mut SchemaGenerator) -> Schema {
    let mut schema =
        generator.subschema_for::<Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>>();
    schema.insert("x-kubernetes-list-type".into(), "map".into());
    schema.insert(
        "x-kubernetes-list-map-keys".into(),
        serde_json::json!(["type"]),
    );
    schema
}
