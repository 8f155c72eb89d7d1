//! What every end-to-end test needs: the cluster of KUBECONFIG with the chart installed, the
//! operator running as its own process under the chart's ServiceAccount, the objects a test
//! creates, polling, the audit-log checks, and a cleanup that runs however the test ends.

use std::{
    collections::BTreeMap,
    fmt::Debug,
    future::Future,
    io::Write as _,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use k8s_openapi::{
    api::{
        apps::v1::Deployment,
        authentication::v1::TokenRequest,
        batch::v1::Job,
        core::v1::{Namespace, Node, ServiceAccount},
    },
    apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
};
use kube::{
    Api, Client, ResourceExt,
    api::{ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams},
};
use patchpilot::{
    api::{PatchPolicy, PatchRollout, keys},
    engine::rollout::Phase,
};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::sync::MutexGuard;

use patchpilot_testkit::audit::{Audit, Objects, Replay, Rules};

/// The field manager of everything the tests write.
pub const MANAGER: &str = "patchpilot-e2e";
/// The label the tests put on the nodes a node policy selects.
pub const POOL_LABEL: &str = "e2e.patchpilot.dev/pool";
/// Its value.
pub const POOL: &str = "workers";
/// The label of the namespaces a workload policy selects.
pub const SUITE_LABEL: &str = "e2e.patchpilot.dev/suite";
/// How often the tests look at the cluster.
pub const POLL: Duration = Duration::from_secs(1);
/// The namespace the chart is installed in; the operator's Jobs run there too.
pub const NAMESPACE: &str = "patchpilot-system";
/// The chart's release name, and so its ServiceAccount's name.
pub const RELEASE: &str = "patchpilot";
/// The user the API server sees the operator as.
pub const OPERATOR_USER: &str = "system:serviceaccount:patchpilot-system:patchpilot";

/// One test at a time, even without `--test-threads=1`: the tests share nodes, the CRDs and
/// the Job namespace.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
/// The chart is installed once per run of the suite.
static CHART: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();

/// A program built by `tests/cluster/build` (in `$CLUSTER_CACHE/bin` when `CLUSTER_CACHE`
/// moves the build elsewhere, as CI does, else in `tests/cluster/bin`), or of the PATH.
pub fn tool(name: &str) -> PathBuf {
    let bin = match std::env::var_os("CLUSTER_CACHE") {
        Some(cache) => PathBuf::from(cache).join("bin"),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cluster/bin"),
    };
    let built = bin.join(name);
    if built.exists() {
        built
    } else {
        PathBuf::from(name)
    }
}

/// Runs a program with `args` (and `stdin`), returning standard output; panics with its
/// standard error if it fails.
pub fn run(program: &str, args: &[&str], stdin: Option<&str>) -> String {
    let (ok, out, err) = try_run(program, args, stdin);
    assert!(ok, "{program} {}: {err}", args.join(" "));
    out
}

/// Runs a program: (success, standard output, standard error).
pub fn try_run(program: &str, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    let mut child = Command::new(tool(program))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{program}: {e} (build it with tests/cluster/build {program})"));
    let mut input = child.stdin.take().expect("stdin");
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).expect("write stdin");
    }
    drop(input);
    let output = child.wait_with_output().expect("wait");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// `kubectl` with the admin kubeconfig of KUBECONFIG.
pub fn kubectl(args: &[&str]) -> String {
    run("kubectl", args, None)
}

/// `kubectl patchpilot ARGS…` through the cluster's kubectl, with the plugin built from
/// this workspace (and its completion executable) on the `PATH`: (exit status, standard
/// output, standard error).
pub fn plugin(args: &[&str]) -> (i32, String, String) {
    static BIN: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    let bin = BIN.get_or_init(|| {
        let bin = Path::new(env!("CARGO_TARGET_TMPDIR")).join("e2e-plugin-bin");
        std::fs::create_dir_all(&bin).expect("plugin directory");
        for (name, built) in [
            (
                "kubectl-patchpilot",
                env!("CARGO_BIN_EXE_kubectl-patchpilot"),
            ),
            (
                "kubectl_complete-patchpilot",
                env!("CARGO_BIN_EXE_kubectl_complete-patchpilot"),
            ),
        ] {
            let link = bin.join(name);
            let _ = std::fs::remove_file(&link);
            std::os::unix::fs::symlink(built, &link).expect("plugin link");
        }
        bin
    });
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let output = Command::new(tool("kubectl"))
        .arg("patchpilot")
        .args(args)
        .env("PATH", path)
        .output()
        .expect("kubectl");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// What `sigs.k8s.io/cli-utils/pkg/kstatus/status` makes of an object (`kind/name`, as
/// kubectl names it): `Current`, `InProgress`, `Failed`, …, with its message.
pub fn kstatus(object: &str) -> (String, String) {
    let json = kubectl(&["get", object, "-o", "json"]);
    let line = run("kstatus", &[], Some(&json));
    let result: Value = serde_json::from_str(line.trim()).expect("kstatus prints JSON");
    (
        result["status"].as_str().unwrap_or("").to_owned(),
        result["message"].as_str().unwrap_or("").to_owned(),
    )
}

/// The cluster, as one test uses it. Dropping it stops the operators and removes what the
/// test created, whether the test passed or panicked.
pub struct Cluster {
    /// An administrator's client of the cluster of KUBECONFIG.
    pub client: Client,
    /// A suffix unique to this test run, for the names of what it creates.
    pub suffix: String,
    /// When the test started: its part of the audit log begins here.
    pub started: jiff::Timestamp,
    operators: Vec<Operator>,
    plan: Cleanup,
    _serial: MutexGuard<'static, ()>,
}

/// An operator process, `patchpilot run` as the chart's ServiceAccount.
pub struct Operator {
    /// Its name (`POD_NAME`: its identity in leader election).
    pub name: String,
    child: Child,
    log: PathBuf,
}

impl Operator {
    /// Kills the process at once (SIGKILL), as a node failure would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Stops the process with SIGTERM, as Kubernetes does, waiting up to 30 s for it.
    pub fn stop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        self.kill();
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// What to undo.
#[derive(Debug, Default)]
struct Cleanup {
    /// Policies created (their rollouts, Jobs and node annotations go with them).
    policies: Vec<String>,
    /// Rollouts created by hand.
    rollouts: Vec<String>,
    /// Cluster-scoped objects created: (apiVersion, plural, name).
    cluster_objects: Vec<(String, String, String)>,
    /// Namespaces created.
    namespaces: Vec<String>,
    /// Nodes given [`POOL_LABEL`].
    labelled_nodes: Vec<String>,
    /// Of those, the ones that were schedulable: a failed test must not leave them cordoned.
    schedulable_nodes: Vec<String>,
}

impl Cluster {
    /// Connects to the cluster, installs the chart (once per run), makes a kubeconfig of
    /// the chart's ServiceAccount and starts one operator process with it.
    pub async fn start() -> Cluster {
        let mut cluster = Cluster::connect().await;
        cluster.start_operator("operator", false);
        cluster
    }

    /// Connects and installs the chart, starting no operator.
    pub async fn connect() -> Cluster {
        let serial = SERIAL.lock().await;
        let client = Client::try_default()
            .await
            .expect("a cluster: set KUBECONFIG (see tests/e2e/README.md)");
        CHART.get_or_init(|| install_chart(client.clone())).await;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        Cluster {
            client,
            suffix: format!("{:06x}", nanos % 0x100_0000),
            started: jiff::Timestamp::now(),
            operators: Vec::new(),
            plan: Cleanup::default(),
            _serial: serial,
        }
    }

    /// Starts `patchpilot run` (the binary of this build) as the chart's ServiceAccount,
    /// with `--leader-elect` if asked; its log goes to a file named after the test run.
    pub fn start_operator(&mut self, name: &str, leader_elect: bool) -> usize {
        let kubeconfig = operator_kubeconfig();
        let log = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "e2e-{}-{name}-{}.log",
            self.suffix,
            self.operators.len()
        ));
        let file = std::fs::File::create(&log).expect("operator log");
        let mut command = Command::new(env!("CARGO_BIN_EXE_patchpilot"));
        command
            .args([
                "run",
                "--metrics-addr",
                "127.0.0.1:0",
                "--log-format",
                "text",
            ])
            .env("KUBECONFIG", &kubeconfig)
            .env("POD_NAMESPACE", NAMESPACE)
            .env("POD_NAME", format!("{name}-{}", self.suffix))
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log"))
            .stderr(file);
        if leader_elect {
            command.arg("--leader-elect");
        }
        if std::env::var("PATCHPILOT_E2E_STREAMING_LISTS").is_ok_and(|v| v == "false") {
            command.arg("--no-streaming-lists");
        }
        let child = command.spawn().expect("start patchpilot run");
        self.operators.push(Operator {
            name: format!("{name}-{}", self.suffix),
            child,
            log,
        });
        self.operators.len() - 1
    }

    /// The operator process `index` (in the order started).
    pub fn operator(&mut self, index: usize) -> &mut Operator {
        &mut self.operators[index]
    }

    /// Stops every operator process with SIGTERM.
    pub async fn stop_operator(&mut self) {
        for operator in &mut self.operators {
            operator.stop();
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

    /// Puts [`POOL_LABEL`] on the nodes whose `pool` label is one of `pools` (every node
    /// without a control-plane role when `pools` is empty) and returns their names, sorted.
    pub async fn label_nodes(&mut self, pools: &[&str]) -> Vec<String> {
        let api: Api<Node> = Api::all(self.client.clone());
        let nodes = api.list(&ListParams::default()).await.expect("list nodes");
        let chosen: Vec<&Node> = nodes
            .items
            .iter()
            .filter(|n| {
                let labels = n.labels();
                let control_plane = labels.contains_key("node-role.kubernetes.io/control-plane")
                    || labels.contains_key("node-role.kubernetes.io/master");
                let pool = labels.get("pool").map_or("", String::as_str);
                !control_plane && (pools.is_empty() || pools.contains(&pool))
            })
            .collect();
        let mut names: Vec<String> = chosen.iter().map(|n| n.name_any()).collect();
        names.sort();
        assert!(!names.is_empty(), "the cluster has no nodes of {pools:?}");
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

    /// Puts [`POOL_LABEL`] on every worker node.
    pub async fn label_worker_nodes(&mut self) -> Vec<String> {
        self.label_nodes(&[]).await
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

    /// Remembers a policy created another way (kubectl), to delete it at the end.
    pub fn forget_policy_at_end(&mut self, name: &str) {
        self.plan.policies.push(name.to_owned());
    }

    /// Remembers a rollout created by hand, to delete it at the end.
    pub fn forget_rollout_at_end(&mut self, name: &str) {
        self.plan.rollouts.push(name.to_owned());
    }

    /// Remembers a cluster-scoped object, to delete it at the end.
    pub fn forget_at_end(&mut self, api_version: &str, plural: &str, name: &str) {
        self.plan
            .cluster_objects
            .push((api_version.into(), plural.into(), name.into()));
    }

    /// Remembers a node someone else may cordon, to uncordon at the end if it was
    /// `schedulable` before.
    pub fn restore_node_at_end(&mut self, name: &str, schedulable: bool) {
        self.plan.labelled_nodes.push(name.to_owned());
        if schedulable {
            self.plan.schedulable_nodes.push(name.to_owned());
        }
    }

    /// Creates any object from YAML with kubectl (server-side apply), as a person would.
    pub fn apply(&self, yaml: &str) -> String {
        run(
            "kubectl",
            &[
                "apply",
                "--server-side",
                "--field-manager",
                MANAGER,
                "-f",
                "-",
            ],
            Some(yaml),
        )
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

    /// The newest rollout of `policy`, if any.
    pub async fn newest_rollout(&self, policy: &str) -> Option<PatchRollout> {
        let api: Api<PatchRollout> = Api::all(self.client.clone());
        let selector = format!("{}={policy}", keys::POLICY_LABEL);
        let list = api
            .list(&ListParams::default().labels(&selector))
            .await
            .ok()?;
        list.items
            .into_iter()
            .max_by_key(|r| r.metadata.creation_timestamp.as_ref().map(|t| t.0))
    }

    /// Waits until the newest rollout of `policy` is in phase `want`, printing each change
    /// of its status. Panics on another finished phase, or after `within`.
    pub async fn wait_for_rollout(
        &self,
        policy: &str,
        want: Phase,
        within: Duration,
    ) -> PatchRollout {
        self.wait_for_rollout_where(policy, &format!("{want:?}"), within, |r| {
            r.status.as_ref().is_some_and(|s| s.phase == want)
        })
        .await
    }

    /// Waits until the newest rollout of `policy` satisfies `done`, printing each change of
    /// its status. Panics on a finished phase that does not satisfy it, or after `within`.
    pub async fn wait_for_rollout_where(
        &self,
        policy: &str,
        what: &str,
        within: Duration,
        done: impl Fn(&PatchRollout) -> bool,
    ) -> PatchRollout {
        let started = Instant::now();
        let mut last = String::from("no rollout yet");
        loop {
            if let Some(rollout) = self.newest_rollout(policy).await {
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
                if done(&rollout) {
                    return rollout;
                }
                assert!(
                    !(status.phase.is_finished() && status.in_progress.is_empty()),
                    "rollout {} ended {:?}, not {what}: {}",
                    rollout.name_any(),
                    status.phase,
                    serde_json::to_string_pretty(&status).unwrap_or_default()
                );
            }
            assert!(
                started.elapsed() < within,
                "no rollout of {policy} {what} within {within:?}; last seen: {last}"
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
        let api: Api<Job> = Api::namespaced(self.client.clone(), NAMESPACE);
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

    /// The real API server's audit log since this test started (`None` when the cluster
    /// has none: set `PATCHPILOT_E2E_AUDIT_LOG`, or keep `audit.log` beside KUBECONFIG as
    /// `tests/cluster/up` does).
    pub fn audit_log(&self) -> Option<Vec<Value>> {
        let path = audit_log_path()?;
        let text = std::fs::read_to_string(&path).ok()?;
        Some(
            text.lines()
                .filter_map(|line| serde_json::from_str::<Value>(line).ok())
                .filter(|e| {
                    e["requestReceivedTimestamp"]
                        .as_str()
                        .and_then(|t| t.parse::<jiff::Timestamp>().ok())
                        .is_some_and(|t| t >= self.started)
                })
                .collect(),
        )
    }

    /// Replays this test's part of the audit log against the invariants of SPEC 3
    /// (`patchpilot_testkit::audit`), with the objects as they are now, and checks that the
    /// API server refused the operator nothing (a missing RBAC rule). Panics on a broken
    /// invariant; `None` when there is no audit log.
    pub async fn check_audit(&self, rules: &[Rules]) -> Option<Replay> {
        let Some(log) = self.audit_log() else {
            eprintln!("no audit log: the invariant checks are skipped");
            return None;
        };
        let state = Snapshot::take(&self.client).await;
        let audit = Audit {
            log: &log,
            state: &state,
            operator: OPERATOR_USER,
        };
        let forbidden: Vec<String> = audit
            .operator_requests()
            .filter(|e| e["responseStatus"]["code"] == 403)
            .map(|e| {
                format!(
                    "{} {}: {}",
                    e["verb"].as_str().unwrap_or(""),
                    e["requestURI"].as_str().unwrap_or(""),
                    e["responseStatus"]["message"].as_str().unwrap_or("")
                )
            })
            .collect();
        assert!(
            forbidden.is_empty(),
            "the API server refused the operator (a rule missing from the chart):\n  {}",
            forbidden.join("\n  ")
        );
        Some(audit.check(rules))
    }

    /// The end of a test: checks the audit log as [`Cluster::check_audit`] does, then stops
    /// the operator. What remains (namespaces, policies, labels) is undone when the cluster
    /// is dropped.
    pub async fn finish(&mut self, rules: &[Rules]) -> Option<Replay> {
        let replay = self.check_audit(rules).await;
        self.stop_operator().await;
        replay
    }
}

/// The objects the audit checks look at, listed from the API.
pub struct Snapshot(BTreeMap<String, Vec<Value>>);

impl Snapshot {
    /// Lists nodes, rollouts and workloads now.
    pub async fn take(client: &Client) -> Snapshot {
        let kinds = [
            ("", "v1", "nodes", "Node"),
            (
                "patchpilot.dev",
                "v1alpha1",
                "patchrollouts",
                "PatchRollout",
            ),
            ("apps", "v1", "deployments", "Deployment"),
            ("apps", "v1", "statefulsets", "StatefulSet"),
            ("apps", "v1", "daemonsets", "DaemonSet"),
        ];
        let mut objects = BTreeMap::new();
        for (group, version, plural, kind) in kinds {
            let resource = ApiResource {
                group: group.into(),
                version: version.into(),
                api_version: if group.is_empty() {
                    version.into()
                } else {
                    format!("{group}/{version}")
                },
                kind: kind.into(),
                plural: plural.into(),
            };
            let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
            let list = api
                .list(&ListParams::default())
                .await
                .unwrap_or_else(|e| panic!("list {plural}: {e}"));
            let values = list
                .items
                .iter()
                .map(|o| serde_json::to_value(o).expect("an object as JSON"))
                .collect();
            objects.insert(format!("{group}/{version}/{plural}"), values);
        }
        Snapshot(objects)
    }
}

impl Objects for Snapshot {
    fn objects(&self, group: &str, version: &str, plural: &str) -> Vec<Value> {
        self.0
            .get(&format!("{group}/{version}/{plural}"))
            .cloned()
            .unwrap_or_default()
    }
}

/// Where the audit log is: `PATCHPILOT_E2E_AUDIT_LOG`, or `audit.log` beside KUBECONFIG.
pub fn audit_log_path() -> Option<PathBuf> {
    if let Ok(path) = std::env::var("PATCHPILOT_E2E_AUDIT_LOG") {
        return Some(PathBuf::from(path));
    }
    let kubeconfig = PathBuf::from(std::env::var("KUBECONFIG").ok()?);
    let path = kubeconfig.parent()?.join("audit.log");
    path.exists().then_some(path)
}

/// Installs the chart as its README says, into a namespace that enforces the restricted
/// Pod Security Standard: `helm lint`, then `helm template | kubectl apply --server-side`.
/// Every warning kubectl prints (PodSecurity's among them) fails the suite.
async fn install_chart(client: Client) {
    let chart = concat!(env!("CARGO_MANIFEST_DIR"), "/charts/patchpilot");
    run("helm", &["lint", "--strict", chart], None);
    let restricted = "pod-security.kubernetes.io/enforce=restricted";
    let (created, _, err) = try_run("kubectl", &["create", "namespace", NAMESPACE], None);
    assert!(
        created || err.contains("AlreadyExists"),
        "create namespace {NAMESPACE}: {err}"
    );
    kubectl(&[
        "label",
        "--overwrite",
        "namespace",
        NAMESPACE,
        restricted,
        "pod-security.kubernetes.io/enforce-version=latest",
    ]);
    let manifests = run(
        "helm",
        &[
            "template",
            RELEASE,
            chart,
            "--namespace",
            NAMESPACE,
            "--include-crds",
        ],
        None,
    );
    let (ok, out, err) = try_run(
        "kubectl",
        &[
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager",
            "helm-template",
            "-f",
            "-",
        ],
        Some(&manifests),
    );
    assert!(ok, "kubectl apply of the chart: {err}");
    assert!(
        !err.contains("Warning"),
        "kubectl apply of the chart warned: {err}\n{out}"
    );
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in patchpilot::api::crds() {
        let name = crd.name_any();
        let (get, named) = (&api, name.as_str());
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
    // The chart's Deployment: its pods pass the restricted PodSecurity admission and run.
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NAMESPACE);
    let get = &deployments;
    wait_until("the chart's Deployment available", mins(2), || async move {
        let d = get.get(RELEASE).await.ok()?;
        let status = d.status?;
        (status.available_replicas.unwrap_or(0) >= d.spec?.replicas.unwrap_or(1)).then_some(())
    })
    .await;
}

/// A kubeconfig of the chart's ServiceAccount, with a token from the TokenRequest API, so
/// that the real RBAC authorizer decides every call of the operator. Written once per run.
fn operator_kubeconfig() -> PathBuf {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("e2e-operator.kubeconfig");
    static WRITTEN: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    WRITTEN.get_or_init(|| {
        let token = std::thread::spawn(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async {
                let client = Client::try_default().await.expect("a client");
                let api: Api<ServiceAccount> = Api::namespaced(client, NAMESPACE);
                let request: TokenRequest = serde_json::from_value(json!({
                    "apiVersion": "authentication.k8s.io/v1",
                    "kind": "TokenRequest",
                    "spec": {"expirationSeconds": 6 * 3600},
                }))
                .unwrap();
                let issued: TokenRequest = api
                    .create_subresource("token", RELEASE, &PostParams::default(), &request)
                    .await
                    .expect("a token of the chart's ServiceAccount (TokenRequest)");
                issued.status.expect("a token").token
            })
        })
        .join()
        .expect("the token");
        // The admin kubeconfig's cluster, with the token as the only credential.
        let admin = kubectl(&["config", "view", "--minify", "--flatten", "-o", "json"]);
        let mut config: Value = serde_json::from_str(&admin).expect("kubeconfig JSON");
        config["users"] = json!([{"name": "patchpilot", "user": {"token": token}}]);
        let context = config["contexts"][0]["name"].clone();
        config["contexts"][0]["context"]["user"] = json!("patchpilot");
        config["current-context"] = context;
        std::fs::write(&path, serde_json::to_vec_pretty(&config).unwrap())
            .expect("write the operator's kubeconfig");
    });
    path
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let panicking = std::thread::panicking();
        for operator in &mut self.operators {
            if panicking {
                let log = operator.log();
                let tail: Vec<&str> = log.lines().rev().take(40).collect();
                eprintln!(
                    "--- last lines of operator {} ({}):",
                    operator.name,
                    operator.log.display()
                );
                for line in tail.iter().rev() {
                    eprintln!("{line}");
                }
            }
            operator.stop();
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
        if panicking {
            eprintln!("{report}");
        } else {
            panic!("{report}");
        }
    }
}

/// Undoes what a test did; returns what it could not undo. With no operator running, the
/// finalizers of policies and rollouts are removed by hand once their targets are released.
async fn cleanup(client: &Client, plan: &Cleanup) -> Vec<String> {
    let mut problems = Vec::new();
    let mut check = |what: String, result: Result<(), kube::Error>| match result {
        Ok(()) => {}
        Err(kube::Error::Api(status)) if status.code == 404 => {}
        Err(e) => problems.push(format!("{what}: {e}")),
    };
    let background = DeleteParams::background();
    let no_finalizers = Patch::Merge(json!({"metadata": {"finalizers": null}}));

    // Rollouts of the test's policies (and made by hand), and the Jobs they ran.
    let rollouts: Api<PatchRollout> = Api::all(client.clone());
    let jobs: Api<Job> = Api::namespaced(client.clone(), NAMESPACE);
    let mut rollout_names = plan.rollouts.clone();
    if !plan.policies.is_empty() {
        let selector = format!("{} in ({})", keys::POLICY_LABEL, plan.policies.join(","));
        match rollouts
            .list(&ListParams::default().labels(&selector))
            .await
        {
            Ok(list) => rollout_names.extend(list.items.iter().map(|r| r.name_any())),
            Err(e) => check("list rollouts".into(), Err(e)),
        }
    }
    for rollout in &rollout_names {
        let selector = format!("{}={rollout}", keys::ROLLOUT_LABEL);
        let result = jobs
            .delete_collection(&background, &ListParams::default().labels(&selector))
            .await;
        check(format!("delete the Jobs of {rollout}"), result.map(drop));
        let result = rollouts
            .patch(rollout, &PatchParams::default(), &no_finalizers)
            .await;
        check(format!("unfinalize rollout {rollout}"), result.map(drop));
        let result = rollouts.delete(rollout, &background).await;
        check(format!("delete rollout {rollout}"), result.map(drop));
    }
    let policies: Api<PatchPolicy> = Api::all(client.clone());
    for policy in &plan.policies {
        let result = policies
            .patch(policy, &PatchParams::default(), &no_finalizers)
            .await;
        check(format!("unfinalize policy {policy}"), result.map(drop));
        let result = policies.delete(policy, &background).await;
        check(format!("delete policy {policy}"), result.map(drop));
    }
    for (api_version, plural, name) in &plan.cluster_objects {
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let resource = ApiResource {
            group: group.into(),
            version: version.into(),
            api_version: api_version.clone(),
            kind: String::new(),
            plural: plural.clone(),
        };
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
        let result = api.delete(name, &background).await;
        check(format!("delete {plural} {name}"), result.map(drop));
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
                || plan.rollouts.iter().any(|r| r == rollout)
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

    // Namespaces this test created, and wait until they are gone.
    let namespaces: Api<Namespace> = Api::all(client.clone());
    for namespace in &plan.namespaces {
        let result = namespaces.delete(namespace, &background).await;
        check(format!("delete namespace {namespace}"), result.map(drop));
    }
    let deadline = Instant::now() + mins(3);
    for namespace in &plan.namespaces {
        if !gone(&namespaces, namespace, deadline).await {
            problems.push(format!("namespace {namespace} still there after 3 minutes"));
        }
    }
    for rollout in &rollout_names {
        if !gone(&rollouts, rollout, deadline).await {
            problems.push(format!("rollout {rollout} still there after 3 minutes"));
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
pub async fn wait_until<T, F, Fut>(what: &str, within: Duration, probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    patchpilot_testkit::poll::until(what, within, POLL, probe).await
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
