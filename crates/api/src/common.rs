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
/// several hundred kilobytes, too large for `kubectl apply` without server-side apply. It
/// requires what the operator requires (a `spec` with at least one container); the operator
/// reads the rest as a `PodTemplateSpec` and reports a malformed one as `InvalidSpec`.
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
            "required": ["spec"],
            "properties": {
                "spec": {
                    "description": "The pod's specification, as in a Pod; at least one container.",
                    "type": "object",
                    "x-kubernetes-preserve-unknown-fields": true,
                    "required": ["containers"],
                    "properties": {
                        "containers": {
                            "description": "The pod's containers, as in a Pod.",
                            "type": "array",
                            "minItems": 1,
                            "items": {
                                "type": "object",
                                "x-kubernetes-preserve-unknown-fields": true,
                            },
                        },
                    },
                },
            },
        })
    }
}

/// The most requirements a label selector of patchpilot's may list: a bound the API server
/// needs to price the CEL rules on each requirement.
const MAX_REQUIREMENTS: u64 = 32;

/// The most values a requirement of a label selector may list.
const MAX_VALUES: u64 = 256;

/// An optional label selector that the API server checks as the operator would: operators
/// `In`, `NotIn`, `Exists` and `DoesNotExist` only, values with `In` and `NotIn` and none with
/// the others, non-empty keys. Kubernetes checks these for its own kinds, not in a CRD's
/// `LabelSelector`, so they are spelled out here.
pub(crate) fn selector_schema(generator: &mut SchemaGenerator) -> Schema {
    let mut value = generator
        .subschema_for::<Option<LabelSelector>>()
        .to_value();
    tighten_selector(&mut value);
    Schema::try_from(value).expect("a schema stays a schema")
}

/// Adds the checks of [`selector_schema`] wherever the schema describes `matchExpressions`.
fn tighten_selector(value: &mut serde_json::Value) {
    use serde_json::{Value, json};
    let Value::Object(map) = value else {
        return;
    };
    if let Some(Value::Object(expressions)) = map
        .get_mut("properties")
        .and_then(|p| p.get_mut("matchExpressions"))
    {
        expressions.insert("maxItems".into(), json!(MAX_REQUIREMENTS));
        if let Some(Value::Object(requirement)) = expressions.get_mut("items") {
            requirement.insert(
                "x-kubernetes-validations".into(),
                json!([
                    {
                        "rule": "!(self.operator in ['In', 'NotIn']) || has(self.values) && size(self.values) > 0",
                        "message": "operators In and NotIn need at least one value",
                    },
                    {
                        "rule": "!(self.operator in ['Exists', 'DoesNotExist']) || !has(self.values) || size(self.values) == 0",
                        "message": "operators Exists and DoesNotExist take no values",
                    },
                ]),
            );
            if let Some(Value::Object(properties)) = requirement.get_mut("properties") {
                if let Some(Value::Object(key)) = properties.get_mut("key") {
                    key.insert("minLength".into(), json!(1));
                }
                if let Some(Value::Object(operator)) = properties.get_mut("operator") {
                    operator.insert(
                        "enum".into(),
                        json!(["In", "NotIn", "Exists", "DoesNotExist"]),
                    );
                }
                if let Some(Value::Object(values)) = properties.get_mut("values") {
                    values.insert("maxItems".into(), json!(MAX_VALUES));
                }
            }
        }
        return;
    }
    map.values_mut().for_each(tighten_selector);
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
