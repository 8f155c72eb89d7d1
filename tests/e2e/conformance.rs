//! The API conformance tests of `patchpilot_testkit::conformance` against the real API
//! server: the very bodies `crates/sandbox/tests/api.rs` runs against the sandbox. Each test
//! gets a namespace of its own and names its cluster-scoped objects with the run's suffix;
//! the cleanup of [`Cluster`] removes both. No operator runs, and nothing lands on the nodes
//! (the tests' pods are held by a scheduling gate, their Deployment has no replicas).

use std::{sync::Mutex, time::Duration};

use futures::{AsyncBufReadExt, TryStreamExt};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::{Api, Client};
use patchpilot_testkit::conformance::{
    Backend, BudgetStatus, eventually, evictions, hostile, namespace_config_maps, objects, watches,
};

use serde_json::Value;

use crate::support::Cluster;

/// The real cluster of KUBECONFIG, as a backend of the conformance tests.
struct Real {
    cluster: Cluster,
    /// The cluster's client without kube-rs's retries of 429, 503 and 504, as the operator's
    /// (`patchpilot run`): a refused eviction is seen as refused, not retried for minutes.
    client: Client,
    namespace: String,
    /// Cluster-scoped objects the test named: (apiVersion, plural, name).
    created: Mutex<Vec<(String, String, String)>>,
}

impl Real {
    /// Connects (holding the suite's lock) and creates the test's namespace, waiting until
    /// the root CA publisher has put its ConfigMap there.
    async fn new() -> Self {
        let mut cluster = Cluster::connect().await;
        let namespace = format!("conformance-{}", cluster.suffix);
        cluster.create_namespace(&namespace, &[]).await;
        eventually(
            "kube-root-ca.crt in the test's namespace",
            Duration::from_secs(30),
            || async {
                let maps = namespace_config_maps(&cluster.client, &namespace).await;
                maps.iter().any(|m| m == "kube-root-ca.crt").then_some(())
            },
        )
        .await;
        let mut config = kube::Config::infer().await.expect("a kubeconfig");
        config.default_retry = false;
        let client = Client::try_from(config).expect("a client");
        Real {
            cluster,
            client,
            namespace,
            created: Mutex::default(),
        }
    }
}

impl Drop for Real {
    fn drop(&mut self) {
        let created = std::mem::take(&mut *self.created.lock().unwrap_or_else(|e| e.into_inner()));
        for (api_version, plural, name) in created {
            self.cluster.forget_at_end(&api_version, &plural, &name);
        }
    }
}

impl Backend for Real {
    fn client(&self) -> Client {
        self.client.clone()
    }

    fn namespace(&self) -> &str {
        &self.namespace
    }

    fn cluster_object(&self, api_version: &str, plural: &str, base: &str) -> String {
        let name = format!("{base}-{}", self.cluster.suffix);
        let mut created = self.created.lock().unwrap();
        let entry = (api_version.to_owned(), plural.to_owned(), name.clone());
        if !created.contains(&entry) {
            created.push(entry);
        }
        name
    }

    async fn forget_watch_history(&self) -> bool {
        // Before etcd's compaction, a watch from "1" may be answered from etcd with its whole
        // history, for minutes of the cluster's life (in CI, over 8 minutes): wait a little,
        // not for the compaction.
        let uri = format!(
            "/api/v1/namespaces/{}/configmaps?watch=true&resourceVersion=1&timeoutSeconds=1",
            self.namespace
        );
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while std::time::Instant::now() < deadline {
            let request = http::Request::get(&uri).body(Vec::new()).unwrap();
            if let Ok(stream) = self.client().request_stream(request).await
                && let Ok(Some(line)) = stream.lines().try_next().await
                && let Ok(first) = serde_json::from_str::<Value>(&line)
                && first["type"] == "ERROR"
                && first["object"]["code"] == 410
            {
                return true;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        false
    }

    fn runs_controllers(&self) -> bool {
        true
    }

    async fn disruption_controller(&self, name: &str, status: BudgetStatus) {
        let budgets: Api<PodDisruptionBudget> = Api::namespaced(self.client(), &self.namespace);
        evictions::wait_for_budget(&budgets, name, status).await;
    }
}

/// Tests whose body is a conformance test, `#[ignore]`d like the rest of the suite.
macro_rules! conformance_tests {
    ($($module:ident::$test:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            #[ignore = "needs a cluster: KUBECONFIG=... cargo test --test e2e -- --ignored"]
            async fn $test() {
                $module::$test(&Real::new().await).await;
            }
        )*
    };
}

patchpilot_testkit::every_conformance_test!(conformance_tests);
