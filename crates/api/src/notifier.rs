//! Notifier: a destination for the notices of rollouts (docs/notifications.md).
//!
//! A resource of the API rather than a section of the chart's values: destinations change
//! without restarting the operator, come from git like the policies, are refused by the
//! schema when malformed, and say with `kubectl get notifiers` whether they deliver. Creating
//! one is a cluster administrator's business (it names a Secret in the operator's
//! namespace); a policy author only names it. Cluster-scoped like every kind of the group.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use patchpilot_engine::units::Duration;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::conditions_schema;

/// A destination for rollout notices: a webhook, a chat channel or a CloudEvents sink.
// Each printer column repeats `type_ = …`, which clippy takes for a duplicated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "patchpilot.dev",
    version = "v1alpha1",
    kind = "Notifier",
    status = "NotifierStatus",
    shortname = "pnotifier",
    category = "patchpilot",
    doc = "Notifier is a destination for the notices of rollouts: a generic JSON webhook, a Slack or Microsoft Teams incoming webhook, or a CloudEvents sink. Its address (and token) are in a Secret in the operator's namespace; PatchPolicies name the Notifiers they use.",
    printcolumn(name = "Type", type_ = "string", json_path = ".spec.type"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Status",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].message"
    ),
    printcolumn(
        name = "Last Delivered",
        type_ = "date",
        json_path = ".status.lastDelivered"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct NotifierSpec {
    /// How notices are written: `Webhook` (patchpilot's JSON), `Slack` or `Teams` (their
    /// incoming webhooks' message formats), or `CloudEvents` (structured mode over HTTP).
    #[serde(rename = "type")]
    pub kind: NotifierType,

    /// The Secret, in the operator's namespace, holding the destination's URL under the key
    /// `address` and, optionally, a bearer token under `token`. Never in a policy.
    pub secret_ref: SecretRef,

    /// How long one delivery may take before it is retried. Default 10s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,

    /// Hold deliveries: notices wait, and go out in order once this is cleared.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub suspend: bool,
}

/// How a notifier writes notices.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum NotifierType {
    /// A JSON object per notice, POSTed to the address.
    Webhook,
    /// A Slack incoming webhook (or a Slack-compatible one, such as Mattermost's).
    Slack,
    /// A Microsoft Teams incoming webhook or workflow, with an Adaptive Card.
    Teams,
    /// A CloudEvent per notice, in structured mode (`application/cloudevents+json`).
    CloudEvents,
}

/// A Secret of the operator's namespace.
#[derive(KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SecretRef {
    /// Its name.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// What the operator last did with a notifier.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotifierStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// `Ready`: True while notices are delivered; False with `DeliveryFailing` (retrying),
    /// `SecretMissing` or `Suspended`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,

    /// How far the notices of each rollout have been delivered: every notice up to
    /// `through` was delivered (or refused by the destination, and not retried).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 1000))]
    pub delivered: Vec<Delivered>,

    /// When the last notice was delivered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_delivered: Option<Time>,

    /// While deliveries fail: since when, how many attempts, the last error, and when the
    /// next attempt is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failing: Option<Failing>,
}

/// The notices of one rollout delivered so far.
#[derive(KubeSchema, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivered {
    /// The PatchRollout.
    pub rollout: String,
    /// The sequence number of the last notice delivered; all before it were too.
    pub through: u32,
}

/// A notifier whose deliveries fail.
#[derive(KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Failing {
    /// `DeliveryFailing` (the destination did not take the notice) or `SecretMissing`
    /// (its address could not be read): the reason of the `Ready` condition.
    #[serde(default = "delivery_failing")]
    pub reason: String,
    /// The first failed attempt of this run of failures.
    pub since: Time,
    /// Attempts failed in a row.
    pub attempts: u32,
    /// What the last one came to.
    #[schemars(length(max = 1024))]
    pub last_error: String,
    /// When the next attempt is made.
    pub next_attempt: Time,
}

fn delivery_failing() -> String {
    "DeliveryFailing".to_owned()
}
