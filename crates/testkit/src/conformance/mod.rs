//! The API conformance tests: one body per test, run against two backends — the sandbox
//! (`crates/sandbox/tests/api.rs`) and the real control plane of `tests/cluster`
//! (`tests/e2e/conformance.rs`). Where the two answer differently, the sandbox is fixed to
//! answer as the real API server does, or the difference is written down among the sandbox's
//! known limits (`docs/sandbox.md`).
//!
//! A body takes a [`Backend`]: an administrator's client, a fresh namespace of the test's own,
//! names for the cluster-scoped objects it creates (which the backend removes afterwards),
//! and what the cluster does on its own. A real cluster runs controllers (the disruption
//! controller, the garbage collector, the root CA publisher) that the in-process sandbox does
//! not: the bodies wait for what they do, with a deadline, and the sandbox's backend plays
//! the part the test needs ([`Backend::disruption_controller`]).
//!
//! The same holds for the real kubectl: [`kubectl`] has the tests whose client is kubectl
//! itself, with a backend of their own ([`kubectl::Kubectl`]).

pub mod evictions;
pub mod hostile;
pub mod kubectl;
pub mod objects;
pub mod watches;

/// Expands `$each!(module::test, …)` with every conformance test, so that each backend runs
/// all of them from one list: the backend's `$each` makes a test of each body.
#[macro_export]
macro_rules! every_conformance_test {
    ($each:ident) => {
        $each!(
            objects::create_get_list_update_delete_with_optimistic_concurrency,
            objects::lists_come_in_pages,
            objects::pages_report_the_resource_version_of_the_first_page,
            objects::every_patch_type,
            objects::server_side_apply_status_subresource_and_generation,
            objects::invalid_custom_resources_are_refused_with_the_field,
            objects::finalizers_hold_deletion_and_owners_take_their_dependents,
            objects::the_schema_refuses_what_the_operator_would_refuse,
            objects::the_date_header_is_the_clock_of_the_timestamps,
            watches::watches_resume_from_a_resource_version_and_expired_ones_are_gone,
            watches::kube_runtime_watchers_list_then_watch,
            watches::metadata_requests_get_partial_object_metadata,
            watches::metadata_watches_send_metadata_only_bookmarks_included,
            evictions::evictions_respect_pod_disruption_budgets,
            evictions::events_written_as_events_k8s_io_are_read_as_core_events,
            hostile::malformed_bodies_are_refused_as_the_api_server_words_it,
            hostile::bodies_over_3_mib_are_refused_with_413,
            hostile::nesting_past_10000_levels_is_refused,
            hostile::unknown_content_types_and_accepts_are_refused,
            hostile::absurd_list_and_watch_parameters_get_the_api_server_s_answers,
            hostile::odd_watches_get_the_api_server_s_answers,
            hostile::selectors_are_read_as_the_api_server_reads_them,
            hostile::a_watch_nobody_reads_holds_up_no_one,
        );
    };
}

use std::{future::Future, time::Duration};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::{Api, Client, api::ListParams, core::Status};
use serde_json::{Value, json};

/// Where the bodies run.
pub trait Backend: Sync {
    /// An administrator's client.
    fn client(&self) -> Client;

    /// A namespace of this test's own, created before the body runs and deleted after it.
    /// It holds what the API server's controllers put in every namespace, and nothing else.
    fn namespace(&self) -> &str;

    /// The name to give a cluster-scoped object the test creates (`base` itself on a
    /// cluster of the test's own; `base` with a suffix on a shared cluster). The backend
    /// deletes it afterwards: `plural` is its resource in `api_version`.
    fn cluster_object(&self, api_version: &str, plural: &str, base: &str) -> String;

    /// Makes the watch history the API server keeps so short that a watch from resource
    /// version `"1"` is too old. A real API server keeps only minutes of it (its watch cache,
    /// etcd's compaction every 5 minutes): the backend waits a while for it to say so; the
    /// sandbox keeps a window of events, and shortens it.
    /// It says whether it did: a real API server that still serves the history from etcd
    /// (early in the cluster's life) has no way to be told to compact it.
    fn forget_watch_history(&self) -> impl Future<Output = bool> + Send;

    /// Whether the cluster runs Kubernetes' controllers (disruption controller, garbage
    /// collector): the bodies then wait for their work instead of assuming it done.
    fn runs_controllers(&self) -> bool;

    /// What the disruption controller would write in the status of the budget `name`:
    /// the sandbox's backend writes it; a real cluster's waits until its controller has.
    fn disruption_controller(
        &self,
        name: &str,
        status: BudgetStatus,
    ) -> impl Future<Output = ()> + Send;
}

/// The counts of a PodDisruptionBudget's status, as its controller computes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BudgetStatus {
    /// `expectedPods`.
    pub expected: i32,
    /// `currentHealthy`.
    pub healthy: i32,
    /// `desiredHealthy`.
    pub desired: i32,
    /// `disruptionsAllowed`.
    pub allowed: i32,
}

impl BudgetStatus {
    /// The status as JSON, with `observedGeneration`.
    pub fn to_json(self, generation: i64) -> Value {
        json!({"status": {
            "observedGeneration": generation,
            "expectedPods": self.expected,
            "currentHealthy": self.healthy,
            "desiredHealthy": self.desired,
            "disruptionsAllowed": self.allowed,
        }})
    }
}

/// The status code of an API error.
#[track_caller]
pub fn code(error: kube::Error) -> u16 {
    api_error(error).code
}

/// The `Status` of an API error.
#[track_caller]
pub fn api_error(error: kube::Error) -> Status {
    match error {
        kube::Error::Api(status) => *status,
        other => panic!("not an API error: {other}"),
    }
}

/// Polls `probe` every 200 ms until it returns `Some`, for at most `within`.
pub async fn eventually<T, F, Fut>(what: &str, within: Duration, probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    crate::poll::until(what, within, Duration::from_millis(200), probe).await
}

/// The names of the ConfigMaps the API server's controllers put in a new namespace
/// (`kube-root-ca.crt` on a real cluster), once there: the lists of the bodies count them.
pub async fn namespace_config_maps(client: &Client, namespace: &str) -> Vec<String> {
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let list = maps.list(&ListParams::default()).await.unwrap();
    list.items
        .into_iter()
        .filter_map(|m| m.metadata.name)
        .collect()
}

/// A ConfigMap named `name` with `labels` and `data: {key: value}`.
pub fn config_map(name: &str, labels: &[(&str, &str)]) -> ConfigMap {
    let labels: serde_json::Map<String, Value> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": labels},
        "data": {"key": "value"},
    }))
    .unwrap()
}
