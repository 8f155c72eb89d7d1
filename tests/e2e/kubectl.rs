//! The kubectl conformance tests of `patchpilot_testkit::conformance::kubectl` against the
//! real control plane: the very bodies `tests/sandbox_kubectl.rs` runs against the sandbox,
//! with the kubectl `tests/cluster/build` built (of the API server's version). Each test gets
//! a namespace of its own; the nodes it cordons are uncordoned and the cluster-scoped objects
//! it names are deleted afterwards, however it ends. No operator runs.

use std::{process::Command, sync::Mutex};

use patchpilot_testkit::conformance::kubectl::{self, Kubectl};

use crate::support::{Cluster, tool};

/// The real cluster of KUBECONFIG, as a backend of the kubectl conformance tests.
struct Real {
    cluster: Cluster,
    namespace: String,
    /// A discovery cache of the test's own, as the sandbox's tests have.
    cache: tempfile::TempDir,
    /// Nodes to restore: (name, schedulable before).
    nodes: Mutex<Vec<(String, bool)>>,
    /// Cluster-scoped objects to delete: (apiVersion, plural, name).
    objects: Mutex<Vec<(String, String, String)>>,
}

impl Real {
    /// Connects (holding the suite's lock) and creates the test's namespace.
    async fn new() -> Self {
        let mut cluster = Cluster::connect().await;
        let namespace = format!("kubectl-{}", cluster.suffix);
        cluster.create_namespace(&namespace, &[]).await;
        Real {
            cluster,
            namespace,
            cache: tempfile::tempdir().expect("a temporary directory"),
            nodes: Mutex::default(),
            objects: Mutex::default(),
        }
    }
}

impl Drop for Real {
    fn drop(&mut self) {
        let nodes = std::mem::take(&mut *self.nodes.lock().unwrap_or_else(|e| e.into_inner()));
        for (node, schedulable) in nodes {
            self.cluster.restore_node_at_end(&node, schedulable);
        }
        let objects = std::mem::take(&mut *self.objects.lock().unwrap_or_else(|e| e.into_inner()));
        for (api_version, plural, name) in objects {
            self.cluster.forget_at_end(&api_version, &plural, &name);
        }
    }
}

impl Kubectl for Real {
    fn command(&self) -> Command {
        let mut command = Command::new(tool("kubectl"));
        command.env("KUBECACHEDIR", self.cache.path());
        command
    }

    fn namespace(&self) -> &str {
        &self.namespace
    }

    fn restore_node_at_end(&self, node: &str) {
        let spec = self.ok(&["get", "node", node, "-o", "jsonpath={.spec.unschedulable}"]);
        let schedulable = spec.trim() != "true";
        let mut nodes = self.nodes.lock().unwrap();
        if !nodes.iter().any(|(n, _)| n == node) {
            nodes.push((node.to_owned(), schedulable));
        }
    }

    fn delete_at_end(&self, api_version: &str, plural: &str, name: &str) {
        let entry = (api_version.to_owned(), plural.to_owned(), name.to_owned());
        let mut objects = self.objects.lock().unwrap();
        if !objects.contains(&entry) {
            objects.push(entry);
        }
    }
}

/// Tests whose body is a kubectl conformance test, `#[ignore]`d like the rest of the suite.
/// The bodies block on kubectl; the cluster's cleanup needs the runtime.
macro_rules! kubectl_conformance_tests {
    ($($module:ident::$test:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            #[ignore = "needs a cluster: KUBECONFIG=... cargo test --test e2e -- --ignored"]
            async fn $test() {
                let real = Real::new().await;
                tokio::task::block_in_place(|| kubectl::$module::$test(&real));
            }
        )*
    };
}

patchpilot_testkit::every_kubectl_test!(kubectl_conformance_tests);
