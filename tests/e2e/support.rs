//! What every end-to-end test needs: the cluster of KUBECONFIG, patchpilot's CRDs, the
//! operator running in this process, the objects a test creates, polling, and a cleanup that
//! runs however the test ends.

use std::{
    collections::BTreeMap,
    fmt::Debug,
    future::Future,
    time::{Duration, Instant},
};

use k8s_openapi::{
    api::{
        apps::v1::Deployment,
        batch::v1::Job,
        core::v1::{Namespace, Node},
    },
    apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
};
use kube::{
    Api, Client, ResourceExt,
    api::{DeleteParams, ListParams, Patch, PatchParams, PostParams},
};
use patchpilot::{
    api::{PatchPolicy, PatchRollout, keys},
    clock::SystemClock,
    controller::{self, rollout::observe::job_namespace},
    engine::rollout::Phase,
};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::{
    sync::{MutexGuard, oneshot},
    task::JoinHandle,
};

/// The field manager of everything the tests write.
pub const MANAGER: &str = "patchpilot-e2e";
/// The label the tests put on the nodes a node policy selects.
pub const POOL_LABEL: &str = "e2e.patchpilot.dev/pool";
/// Its value.
pub const POOL: &str = "workers";
/// The label of the namespaces a workload policy selects.
pub const SUITE_LABEL: &str = "e2e.patchpilot.dev/suite";
/// How often the tests look at the cluster.
pub const POLL: Duration = Duration::from_secs(2);

/// One test at a time, even without `--test-threads=1`: the tests share nodes, the CRDs and
/// the Job namespace.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The cluster, as one test uses it. Dropping it stops the operator and removes what the
/// test created, whether the test passed or panicked.
pub struct Cluster {
    /// A client of the cluster of KUBECONFIG.
    pub client: Client,
    /// A suffix unique to this test run, for the names of what it creates.
    pub suffix: String,
    operator: Option<Operator>,
    plan: Cleanup,
    _serial: MutexGuard<'static, ()>,
}

struct Operator {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

/// What to undo.
#[derive(Debug, Default)]
struct Cleanup {
    /// Policies created (their rollouts, Jobs and node annotations go with them).
    policies: Vec<String>,
    /// Namespaces created.
    namespaces: Vec<String>,
    /// Nodes given [`POOL_LABEL`].
    labelled_nodes: Vec<String>,
    /// Of those, the ones that were schedulable: a failed test must not leave them cordoned.
    schedulable_nodes: Vec<String>,
    /// CRDs this test installed (they were not there before).
    crds: Vec<String>,
}

impl Cluster {
    /// Connects to the cluster, installs the CRDs, makes sure the Job namespace exists and
    /// starts the operator.
    pub async fn start() -> Cluster {
        let serial = SERIAL.lock().await;
        init_logging();
        let client = Client::try_default()
            .await
            .expect("a cluster: set KUBECONFIG (see tests/e2e/README.md)");
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let mut cluster = Cluster {
            client,
            suffix: format!("{:06x}", nanos % 0x100_0000),
            operator: None,
            plan: Cleanup::default(),
            _serial: serial,
        };
        cluster.install_crds().await;
        let namespace = job_namespace();
        cluster.create_namespace(&namespace, &[]).await;
        cluster.start_operator();
        cluster
    }

    /// Server-side applies every CRD `patchpilot crd` prints and waits until they serve.
    async fn install_crds(&mut self) {
        let api: Api<CustomResourceDefinition> = Api::all(self.client.clone());
        for crd in patchpilot::api::crds() {
            let name = crd.name_any();
            // A CRD still being deleted (by the previous test) must go before it comes back.
            let (get, named) = (&api, name.as_str());
            let existed = wait_until(
                &format!("CRD {name} not terminating"),
                mins(3),
                || async move {
                    match get.get_opt(named).await {
                        Ok(Some(old)) if old.metadata.deletion_timestamp.is_some() => None,
                        Ok(found) => Some(found.is_some()),
                        Err(_) => None,
                    }
                },
            )
            .await;
            if !existed {
                self.plan.crds.push(name.clone());
            }
            api.patch(
                &name,
                &PatchParams::apply(MANAGER).force(),
                &Patch::Apply(&crd),
            )
            .await
            .unwrap_or_else(|e| panic!("apply CRD {name}: {e}"));
            wait_until(&format!("CRD {name} established"), mins(1), || async move {
                let crd = get.get(named).await.ok()?;
                let conditions = crd.status?.conditions?;
                conditions
                    .iter()
                    .any(|c| c.type_ == "Established" && c.status == "True")
                    .then_some(())
            })
            .await;
        }
    }

    /// Runs the operator in this process, as `patchpilot run` would, without leader election
    /// or metrics. `PATCHPILOT_E2E_STREAMING_LISTS=true` makes it watch pods with streaming
    /// lists, which needs the API server's `WatchList` feature (off by default in 1.33).
    fn start_operator(&mut self) {
        let streaming_lists = std::env::var("PATCHPILOT_E2E_STREAMING_LISTS")
            .is_ok_and(|v| matches!(v.as_str(), "1" | "true"));
        let options = controller::Options {
            metrics_addr: None,
            leader_election: None,
            streaming_lists,
            instance: format!("patchpilot-e2e-{}", self.suffix),
            health_http: None,
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let client = self.client.clone();
        let task = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.await;
            };
            if let Err(error) =
                controller::run(client, std::sync::Arc::new(SystemClock), options, shutdown).await
            {
                panic!("the operator stopped: {error}");
            }
        });
        self.operator = Some(Operator { stop, task });
    }

    /// Stops the operator, letting reconciles in flight finish (30 s at most).
    pub async fn stop_operator(&mut self) {
        if let Some(Operator { stop, mut task }) = self.operator.take() {
            let _ = stop.send(());
            if tokio::time::timeout(Duration::from_secs(30), &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        }
    }

    /// Creates a namespace with `labels` if it does not exist (waiting for an old one to
    /// finish terminating); it is deleted at the end if this test created it.
    pub async fn create_namespace(&mut self, name: &str, labels: &[(&str, &str)]) {
        let api: Api<Namespace> = Api::all(self.client.clone());
        let existed = wait_until(
            &format!("namespace {name} not terminating"),
            mins(3),
            || {
                let api = api.clone();
                async move {
                    match api.get_opt(name).await {
                        Ok(Some(ns)) if ns.metadata.deletion_timestamp.is_some() => None,
                        Ok(found) => Some(found.is_some()),
                        Err(_) => None,
                    }
                }
            },
        )
        .await;
        if existed {
            return;
        }
        self.plan.namespaces.push(name.to_owned());
        let labels: BTreeMap<&str, &str> = labels.iter().copied().collect();
        let namespace: Namespace =
            serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}})).unwrap();
        api.create(&post(), &namespace)
            .await
            .unwrap_or_else(|e| panic!("create namespace {name}: {e}"));
    }

    /// Puts [`POOL_LABEL`] on the worker nodes (every node without a control-plane role, or
    /// every node of a one-node cluster) and returns their names, sorted.
    pub async fn label_worker_nodes(&mut self) -> Vec<String> {
        let api: Api<Node> = Api::all(self.client.clone());
        let nodes = api.list(&ListParams::default()).await.expect("list nodes");
        let is_control_plane = |n: &Node| {
            let labels = n.labels();
            labels.contains_key("node-role.kubernetes.io/control-plane")
                || labels.contains_key("node-role.kubernetes.io/master")
        };
        let workers: Vec<&Node> = nodes
            .items
            .iter()
            .filter(|n| !is_control_plane(n))
            .collect();
        let chosen: Vec<&Node> = if workers.is_empty() {
            nodes.items.iter().collect()
        } else {
            workers
        };
        let mut names: Vec<String> = chosen.iter().map(|n| n.name_any()).collect();
        names.sort();
        assert!(!names.is_empty(), "the cluster has no nodes");
        for node in &chosen {
            let name = node.name_any();
            if !unschedulable(node) {
                self.plan.schedulable_nodes.push(name.clone());
            }
            self.plan.labelled_nodes.push(name.clone());
            api.patch(
                &name,
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"labels": {POOL_LABEL: POOL}}})),
            )
            .await
            .unwrap_or_else(|e| panic!("label node {name}: {e}"));
        }
        names
    }

    /// Creates a PatchPolicy from YAML; it is deleted at the end with its rollouts.
    pub async fn create_policy(&mut self, yaml: &str) -> PatchPolicy {
        let policy: PatchPolicy =
            serde_yaml_ng::from_str(yaml).unwrap_or_else(|e| panic!("{e}: {yaml}"));
        self.plan.policies.push(policy.name_any());
        Api::<PatchPolicy>::all(self.client.clone())
            .create(&post(), &policy)
            .await
            .unwrap_or_else(|e| panic!("create PatchPolicy {}: {e}", policy.name_any()))
    }

    /// Creates a Deployment from YAML (in a namespace the test created, so it goes with it).
    pub async fn create_deployment(&self, yaml: &str) -> Deployment {
        let deployment: Deployment =
            serde_yaml_ng::from_str(yaml).unwrap_or_else(|e| panic!("{e}: {yaml}"));
        let namespace = deployment.namespace().expect("a namespaced Deployment");
        Api::<Deployment>::namespaced(self.client.clone(), &namespace)
            .create(&post(), &deployment)
            .await
            .unwrap_or_else(|e| panic!("create Deployment {}: {e}", deployment.name_any()))
    }

    /// Waits until the newest rollout of `policy` is in phase `want`, printing each change
    /// of its status. Panics on another finished phase, or after `within`.
    pub async fn wait_for_rollout(
        &self,
        policy: &str,
        want: Phase,
        within: Duration,
    ) -> PatchRollout {
        let api: Api<PatchRollout> = Api::all(self.client.clone());
        let selector = format!("{}={policy}", keys::POLICY_LABEL);
        let started = Instant::now();
        let mut last = String::from("no rollout yet");
        loop {
            match api.list(&ListParams::default().labels(&selector)).await {
                Ok(list) => {
                    let newest = list
                        .items
                        .into_iter()
                        .max_by_key(|r| r.metadata.creation_timestamp.as_ref().map(|t| t.0));
                    if let Some(rollout) = newest {
                        let status = rollout.status.clone().unwrap_or_default();
                        let line = format!(
                            "{} {:?} wave {} progress {} in progress {:?}: {}",
                            rollout.name_any(),
                            status.phase,
                            status.wave.as_ref().map_or("-", |w| w.name.as_str()),
                            status.progress.as_deref().unwrap_or("-"),
                            status
                                .in_progress
                                .iter()
                                .map(|p| format!("{} {:?}", p.target, p.step))
                                .collect::<Vec<_>>(),
                            status.message.as_deref().unwrap_or(""),
                        );
                        if line != last {
                            eprintln!("[{:>4}s] {line}", started.elapsed().as_secs());
                            last = line;
                        }
                        if status.phase == want {
                            return rollout;
                        }
                        assert!(
                            !status.phase.is_finished(),
                            "rollout {} ended {:?}, not {want:?}: {}",
                            rollout.name_any(),
                            status.phase,
                            serde_json::to_string_pretty(&status).unwrap_or_default()
                        );
                    }
                }
                Err(error) => eprintln!("list rollouts of {policy}: {error}"),
            }
            assert!(
                started.elapsed() < within,
                "no {want:?} rollout of {policy} within {within:?}; last seen: {last}"
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// The nodes named, as they are now.
    pub async fn nodes(&self, names: &[String]) -> Vec<Node> {
        let api: Api<Node> = Api::all(self.client.clone());
        let mut nodes = Vec::new();
        for name in names {
            nodes.push(
                api.get(name)
                    .await
                    .unwrap_or_else(|e| panic!("get node {name}: {e}")),
            );
        }
        nodes
    }

    /// The Jobs the operator ran for `rollout` (updaters and health checks), oldest first.
    pub async fn jobs_of(&self, rollout: &str) -> Vec<Job> {
        let api: Api<Job> = Api::namespaced(self.client.clone(), &job_namespace());
        let selector = format!("{}={rollout}", keys::ROLLOUT_LABEL);
        let mut jobs = api
            .list(&ListParams::default().labels(&selector))
            .await
            .expect("list Jobs")
            .items;
        jobs.sort_by_key(|j| j.metadata.creation_timestamp.as_ref().map(|t| t.0));
        jobs
    }

    /// Fetches an object, panicking if it is not there.
    pub async fn get<K>(&self, namespace: &str, name: &str) -> K
    where
        K: kube::Resource<Scope = kube::core::NamespaceResourceScope>
            + Clone
            + DeserializeOwned
            + Debug,
        K::DynamicType: Default,
    {
        Api::<K>::namespaced(self.client.clone(), namespace)
            .get(name)
            .await
            .unwrap_or_else(|e| panic!("get {namespace}/{name}: {e}"))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let stopped_cleanly = self.operator.is_none();
        if let Some(Operator { stop, task }) = self.operator.take() {
            let _ = stop.send(());
            task.abort();
        }
        let plan = std::mem::take(&mut self.plan);
        // The test's runtime cannot be blocked on from here: clean up from a thread of our
        // own, with a runtime and a client of its own.
        let problems = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for the cleanup");
            runtime.block_on(async move {
                if !stopped_cleanly {
                    // Let the aborted operator's last requests land before undoing them.
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
                match Client::try_default().await {
                    Ok(client) => cleanup(&client, &plan).await,
                    Err(e) => vec![format!("no client for the cleanup: {e}")],
                }
            })
        })
        .join()
        .unwrap_or_else(|_| vec!["the cleanup panicked".to_owned()]);
        if problems.is_empty() {
            return;
        }
        let report = format!("cleanup left problems:\n  {}", problems.join("\n  "));
        if std::thread::panicking() {
            eprintln!("{report}");
        } else {
            panic!("{report}");
        }
    }
}

/// Undoes what a test did; returns what it could not undo.
async fn cleanup(client: &Client, plan: &Cleanup) -> Vec<String> {
    let mut problems = Vec::new();
    let mut check = |what: String, result: Result<(), kube::Error>| match result {
        Ok(()) => {}
        Err(kube::Error::Api(status)) if status.code == 404 => {}
        Err(e) => problems.push(format!("{what}: {e}")),
    };
    let background = DeleteParams::background();

    // Rollouts of the test's policies, and the Jobs they ran.
    let rollouts: Api<PatchRollout> = Api::all(client.clone());
    let jobs: Api<Job> = Api::namespaced(client.clone(), &job_namespace());
    let mut rollout_names = Vec::new();
    if !plan.policies.is_empty() {
        let selector = format!("{} in ({})", keys::POLICY_LABEL, plan.policies.join(","));
        match rollouts
            .list(&ListParams::default().labels(&selector))
            .await
        {
            Ok(list) => rollout_names = list.items.iter().map(|r| r.name_any()).collect(),
            Err(e) => check("list rollouts".into(), Err(e)),
        }
    }
    for rollout in &rollout_names {
        let selector = format!("{}={rollout}", keys::ROLLOUT_LABEL);
        let result = jobs
            .delete_collection(&background, &ListParams::default().labels(&selector))
            .await;
        check(format!("delete the Jobs of {rollout}"), result.map(drop));
        let result = rollouts.delete(rollout, &background).await;
        check(format!("delete rollout {rollout}"), result.map(drop));
    }
    let policies: Api<PatchPolicy> = Api::all(client.clone());
    for policy in &plan.policies {
        let result = policies.delete(policy, &background).await;
        check(format!("delete policy {policy}"), result.map(drop));
    }

    // Nodes: the test's label, the policies' annotations, a lock or cordon left behind.
    let nodes: Api<Node> = Api::all(client.clone());
    for name in &plan.labelled_nodes {
        let node = match nodes.get_opt(name).await {
            Ok(Some(node)) => node,
            Ok(None) => continue,
            Err(e) => {
                check(format!("get node {name}"), Err(e));
                continue;
            }
        };
        let mut labels = json!({POOL_LABEL: null});
        let mut annotations = json!({});
        for policy in &plan.policies {
            annotations[keys::version(policy)] = Value::Null;
            annotations[keys::record(policy)] = Value::Null;
        }
        let ours = |rollout: &str| {
            plan.policies
                .iter()
                .any(|p| rollout.starts_with(&format!("{p}-")))
        };
        if node.annotations().get(keys::LOCK).is_some_and(|r| ours(r)) {
            annotations[keys::LOCK] = Value::Null;
            labels[keys::LOCKED_LABEL] = Value::Null;
        }
        let mut patch = json!({"metadata": {"labels": labels, "annotations": annotations}});
        if unschedulable(&node) && plan.schedulable_nodes.contains(name) {
            patch["spec"] = json!({"unschedulable": null});
        }
        let result = nodes
            .patch(name, &PatchParams::default(), &Patch::Merge(patch))
            .await;
        check(format!("clean node {name}"), result.map(drop));
    }

    // Namespaces and CRDs this test created, and wait until they are gone.
    let namespaces: Api<Namespace> = Api::all(client.clone());
    for namespace in &plan.namespaces {
        let result = namespaces.delete(namespace, &background).await;
        check(format!("delete namespace {namespace}"), result.map(drop));
    }
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in &plan.crds {
        let result = crds.delete(crd, &background).await;
        check(format!("delete CRD {crd}"), result.map(drop));
    }
    let deadline = Instant::now() + mins(3);
    for namespace in &plan.namespaces {
        if !gone(&namespaces, namespace, deadline).await {
            problems.push(format!("namespace {namespace} still there after 3 minutes"));
        }
    }
    for crd in &plan.crds {
        if !gone(&crds, crd, deadline).await {
            problems.push(format!("CRD {crd} still there after 3 minutes"));
        }
    }
    problems
}

/// Whether the object disappears before `deadline`.
async fn gone<K>(api: &Api<K>, name: &str, deadline: Instant) -> bool
where
    K: kube::Resource + Clone + DeserializeOwned + Debug,
{
    loop {
        if let Ok(None) = api.get_opt(name).await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Polls `probe` every [`POLL`] until it returns `Some`, for at most `within`.
pub async fn wait_until<T, F, Fut>(what: &str, within: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            started.elapsed() < within,
            "timed out after {within:?} waiting for {what}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// `n` minutes.
pub const fn mins(n: u64) -> Duration {
    Duration::from_secs(60 * n)
}

fn post() -> PostParams {
    PostParams {
        field_manager: Some(MANAGER.into()),
        ..PostParams::default()
    }
}

/// Whether a node is cordoned.
pub fn unschedulable(node: &Node) -> bool {
    node.spec
        .as_ref()
        .and_then(|s| s.unschedulable)
        .unwrap_or(false)
}

/// Operator logs in the test output (shown for failing tests), filtered by `RUST_LOG`.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}
