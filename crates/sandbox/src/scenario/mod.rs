//! Scenario files: what the sandbox simulates.
//!
//! A scenario file is multi-document YAML: ordinary Kubernetes objects (namespaces, nodes,
//! workloads, PodDisruptionBudgets…), patchpilot objects, and one `Scenario` object of the
//! group `sandbox.patchpilot.dev` saying when the simulation starts and ends, what to
//! generate (nodes across pools and zones, workloads with replicas, budgets and Services),
//! how long things take, what the simulated updaters and Prometheus do, which faults to
//! inject, and which steps a person would take. It can include files of objects, such as the
//! shipped examples, as `kubectl apply -f` would.

mod generate;
pub mod network;

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use jiff::Timestamp;
use patchpilot_engine::units::Duration;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use patchpilot_schema::manifest::{FileError, parse_objects, read_objects};

/// The API version of the `Scenario` kind.
pub const API_VERSION: &str = "sandbox.patchpilot.dev/v1alpha1";

/// Where the built-in scenario is kept, from the repository's root.
pub const BUILT_IN_PATH: &str = "examples/sandbox/built-in.yaml";

/// The built-in scenario (the text of [`BUILT_IN_PATH`]).
pub const BUILT_IN: &str = include_str!("../../../../examples/sandbox/built-in.yaml");

/// A scenario: its `Scenario` settings and the objects it starts with.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// The settings.
    pub spec: ScenarioSpec,
    /// The scenario's name.
    pub name: String,
    /// The objects to create, in file order (namespaces and CRDs are created first).
    pub objects: Vec<Value>,
}

/// What the `Scenario` object says.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScenarioSpec {
    /// The virtual instant the simulation starts at, RFC 3339. Default: the current time.
    #[serde(default)]
    pub start: Option<Timestamp>,
    /// When the run ends (without `--serve`).
    #[serde(default)]
    pub end: End,
    /// Seed of the random choices (faults), for reproducible runs.
    #[serde(default)]
    pub seed: u64,
    /// Generated nodes.
    #[serde(default)]
    pub nodes: Vec<NodeGroup>,
    /// Generated workloads.
    #[serde(default)]
    pub workloads: Vec<WorkloadGroup>,
    /// How long things take.
    #[serde(default)]
    pub timings: TimingsSpec,
    /// Faults to inject.
    #[serde(default)]
    pub faults: FaultsSpec,
    /// What a person does during the run.
    #[serde(default)]
    pub steps: Vec<Step>,
    /// How the operator runs in the sandbox.
    #[serde(default)]
    pub operator: OperatorSpec,
    /// Features of the simulated API server.
    #[serde(default)]
    pub api_server: ApiServerSpec,
    /// What the simulated updater Jobs do.
    #[serde(default)]
    pub updaters: UpdatersSpec,
    /// A Prometheus that `prometheus` health checks can query.
    #[serde(default)]
    pub prometheus: Option<network::PrometheusSpec>,
    /// HTTP endpoints that record what they are sent, such as notifiers' webhooks:
    /// `http://<name>.receiver.sandbox/…`.
    #[serde(default)]
    pub receivers: Vec<network::ReceiverSpec>,
    /// Files of objects to create too (paths relative to the scenario file), such as the
    /// shipped examples. The scenario file's own objects come first; an object already
    /// created is skipped.
    #[serde(default)]
    pub include: Vec<PathBuf>,
}

/// What the simulated updater Jobs do: succeed after `timings.updater` (unless a fault says
/// otherwise), and reboot their node if asked.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdatersSpec {
    /// Every successful updater reboots its node, as OS updaters that end with a reboot do.
    /// Default false: only updaters whose pod template carries the annotation
    /// `sandbox.patchpilot.dev/reboot: "true"`.
    #[serde(default)]
    pub reboot: bool,
}

/// Features of the simulated API server.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApiServerSpec {
    /// Serve streaming lists (`sendInitialEvents`), as with the `WatchList` feature on.
    /// `false` refuses them with 422, as API servers with the feature off do. Default true.
    #[serde(default = "streaming")]
    pub watch_list: bool,
    /// How long each response takes to reach its client after the request was handled, as
    /// over a real cluster's network. The watch events its writes cause are sent at once,
    /// so a client can see them before the response (an eviction's budget version before
    /// the eviction's answer), as clients of a real API server often do. Watches are not
    /// delayed. Default: none.
    #[serde(default)]
    pub response_latency: Option<Duration>,
}

impl Default for ApiServerSpec {
    fn default() -> Self {
        ApiServerSpec {
            watch_list: streaming(),
            response_latency: None,
        }
    }
}

/// How the operator runs in the sandbox.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OperatorSpec {
    /// Replicas of the operator. With more than one, they elect a leader on the Lease
    /// `patchpilot-system/patchpilot` (as `patchpilot run --leader-elect` does) and only
    /// the leader acts. A restart restarts every replica. A replica that exits on its own
    /// (it lost the Lease) starts again after a back-off, as a kubelet restarts a container:
    /// 10s, doubling up to 5m, back to 10s once it ran for 10m. Default 1.
    #[serde(default = "one_replica")]
    pub replicas: u32,
    /// Watch pods with streaming lists (`sendInitialEvents`); `false` lists then watches,
    /// as `patchpilot run --no-streaming-lists` does. Default true.
    #[serde(default = "streaming")]
    pub streaming_lists: bool,
}

impl Default for OperatorSpec {
    fn default() -> Self {
        OperatorSpec {
            replicas: one_replica(),
            streaming_lists: streaming(),
        }
    }
}

fn one_replica() -> u32 {
    1
}

fn streaming() -> bool {
    true
}

/// When a run ends.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct End {
    /// At the latest this long after the start. Default 7d.
    #[serde(default = "a_week")]
    pub after: Duration,
    /// As soon as every PatchRollout has finished (and there is at least one), and its
    /// notices went out to every Notifier that is not failing. Default true.
    #[serde(default = "yes")]
    pub rollouts_finished: bool,
}

fn a_week() -> Duration {
    Duration::from_hours(7 * 24)
}

fn yes() -> bool {
    true
}

impl Default for End {
    fn default() -> Self {
        End {
            after: a_week(),
            rollouts_finished: true,
        }
    }
}

/// Nodes to generate: `count` nodes of a pool spread over zones.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeGroup {
    /// The pool: label `pool` and the node names `<pool>-<n>`.
    pub pool: String,
    /// How many nodes.
    pub count: usize,
    /// Zones, round robin (label `topology.kubernetes.io/zone`).
    #[serde(default)]
    pub zones: Vec<String>,
    /// More labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// Taints, as in `spec.taints`.
    #[serde(default)]
    pub taints: Vec<Value>,
    /// How many pods each node takes. Default 110.
    #[serde(default)]
    pub pod_capacity: Option<u32>,
}

/// Workloads to generate.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkloadGroup {
    /// The namespace (created if missing).
    pub namespace: String,
    /// Labels of the namespace.
    #[serde(default)]
    pub namespace_labels: BTreeMap<String, String>,
    /// `Deployment` (default), `StatefulSet` or `DaemonSet`.
    #[serde(default = "deployment")]
    pub kind: String,
    /// The name; with `count` above 1, names are `<name>-<n>`.
    pub name: String,
    /// How many workloads. Default 1.
    #[serde(default = "one")]
    pub count: usize,
    /// Replicas of each (Deployments and StatefulSets). Default 2.
    #[serde(default = "two")]
    pub replicas: u32,
    /// The container image.
    pub image: String,
    /// Labels of the workload and its pods (`app: <name>` is always set).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// A PodDisruptionBudget for each workload: `minAvailable` or `maxUnavailable`.
    #[serde(default)]
    pub pdb: Option<Value>,
    /// `nodeSelector` of the pods.
    #[serde(default)]
    pub node_selector: BTreeMap<String, String>,
    /// A Service for each workload, named like it and selecting its pods: port 80 (`http`)
    /// to the containers' port 8080. Default false.
    #[serde(default)]
    pub service: bool,
}

fn deployment() -> String {
    "Deployment".into()
}

fn one() -> usize {
    1
}

fn two() -> u32 {
    2
}

/// How long things take in the simulated cluster.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TimingsSpec {
    /// From binding to Ready. Default 5s.
    #[serde(default)]
    pub pod_start: Option<Duration>,
    /// How long updater Jobs run. Default 2m.
    #[serde(default)]
    pub updater: Option<Duration>,
    /// How long a rebooting node stays NotReady. Default 90s.
    #[serde(default)]
    pub reboot: Option<Duration>,
    /// How long a deleted pod takes to stop. Default 2s.
    #[serde(default)]
    pub pod_stop: Option<Duration>,
}

/// Faults to inject.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultsSpec {
    /// Updater Jobs that fail.
    #[serde(default)]
    pub updater_failures: Vec<UpdaterFailure>,
    /// Targets that turn unhealthy once patched: `Node/<name>`, `Deployment/<ns>/<name>`…
    #[serde(default)]
    pub unhealthy_after_patch: Vec<String>,
    /// Images the registry does not have, as pod specs write them: containers using them
    /// never start; their status says `ErrImagePull`, then `ImagePullBackOff`, as the
    /// kubelet retries.
    #[serde(default)]
    pub unpullable_images: Vec<String>,
    /// API errors and conflicts for clients.
    #[serde(default)]
    pub api: Vec<ApiFaults>,
    /// Restarts of the operator.
    #[serde(default)]
    pub operator_restarts: Option<Restarts>,
    /// Services whose HTTP answers differ from a healthy one's, for a while.
    #[serde(default)]
    pub http: Vec<network::HttpFault>,
}

/// Updater Jobs that fail on a node.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdaterFailure {
    /// The node.
    pub node: String,
    /// `apply` or `rollback`; both when omitted.
    #[serde(default)]
    pub action: Option<String>,
}

/// API faults for the clients whose user name contains `user`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApiFaults {
    /// Part of the user name, like `patchpilot`.
    pub user: String,
    /// Share of requests answered with 500, 0 to 1.
    #[serde(default)]
    pub error_rate: f64,
    /// Share of writes answered with 409 Conflict, 0 to 1.
    #[serde(default)]
    pub conflict_rate: f64,
}

/// When the operator restarts.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Restarts {
    /// At these instants.
    #[serde(default)]
    pub at: Vec<Timestamp>,
    /// After every this many writes of the operator.
    #[serde(default)]
    pub every_writes: Option<u64>,
}

/// Something a person does during the run, once: not before `after`, as soon as any object
/// `when` selects is in the given state, merge `patch` into every object selected at that
/// moment. Objects that come to match later are left alone.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Step {
    /// What the step does, for the progress output.
    pub name: String,
    /// Not before this long after the start.
    #[serde(default)]
    pub after: Option<Duration>,
    /// Which objects, in which state.
    pub when: Selection,
    /// A JSON merge patch applied to each object selected when the step runs.
    pub patch: Value,
}

/// Objects a step acts on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Selection {
    /// Their `apiVersion`.
    pub api_version: String,
    /// Their `kind`.
    pub kind: String,
    /// Their namespace, for namespaced kinds.
    #[serde(default)]
    pub namespace: Option<String>,
    /// Labels they carry.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// A field (dotted path, like `status.phase`) …
    #[serde(default)]
    pub field: Option<String>,
    /// … and the value it must have.
    #[serde(default)]
    pub equals: Option<Value>,
}

impl Scenario {
    /// Reads a scenario file.
    pub fn read(file: &Path) -> Result<Self, FileError> {
        Self::from_objects(file, read_objects(file)?)
    }

    /// Reads a scenario from text; `file` names it in errors.
    pub fn parse(file: &Path, text: &str) -> Result<Self, FileError> {
        Self::from_objects(file, parse_objects(file, text)?)
    }

    /// The built-in scenario.
    pub fn built_in() -> Self {
        Self::parse(Path::new(BUILT_IN_PATH), BUILT_IN).expect("the built-in scenario is valid")
    }

    fn from_objects(file: &Path, objects: Vec<Value>) -> Result<Self, FileError> {
        let (mut scenarios, objects): (Vec<Value>, Vec<Value>) = objects
            .into_iter()
            .partition(|o| o["apiVersion"] == API_VERSION && o["kind"] == "Scenario");
        if scenarios.len() > 1 {
            return Err(FileError::missing(
                file,
                "more than one Scenario in the file; expected at most one",
            ));
        }
        let scenario = scenarios.pop();
        let name = scenario
            .as_ref()
            .and_then(|s| s["metadata"]["name"].as_str())
            .unwrap_or("scenario")
            .to_owned();
        let spec: ScenarioSpec = match &scenario {
            Some(object) => {
                let spec = serde_path_to_error::deserialize(
                    object.get("spec").cloned().unwrap_or(json!({})),
                )
                .map_err(|e| {
                    FileError::invalid(file, object, format!("spec.{}: {}", e.path(), e.inner()))
                })?;
                if let Some(problem) = problem(&spec) {
                    return Err(FileError::invalid(file, object, problem));
                }
                spec
            }
            None => ScenarioSpec::default(),
        };
        let mut objects = objects;
        for include in &spec.include {
            let path = file.parent().unwrap_or(Path::new("")).join(include);
            let included = read_objects(&path)?;
            if let Some(scenario) = included
                .iter()
                .find(|o| o["apiVersion"] == API_VERSION && o["kind"] == "Scenario")
            {
                return Err(FileError::invalid(
                    &path,
                    scenario,
                    "an included file holds objects, not a Scenario",
                ));
            }
            objects.extend(included);
        }
        for object in &objects {
            for field in ["apiVersion", "kind"] {
                if object[field].as_str().unwrap_or("").is_empty() {
                    return Err(FileError::invalid(
                        file,
                        object,
                        format!("{field}: Required value"),
                    ));
                }
            }
            if object["metadata"]["name"].as_str().unwrap_or("").is_empty() {
                return Err(FileError::invalid(
                    file,
                    object,
                    "metadata.name: Required value",
                ));
            }
        }
        Ok(Scenario {
            spec,
            name,
            objects,
        })
    }
}

/// What is wrong with the settings that their types do not say, as `spec.<field>: message`.
fn problem(spec: &ScenarioSpec) -> Option<String> {
    let faults = spec.faults.http.iter().enumerate().find_map(|(i, fault)| {
        fault
            .problem()
            .map(|p| format!("spec.faults.http[{i}]: {p}"))
    });
    let receivers = || {
        spec.receivers.iter().enumerate().find_map(|(i, receiver)| {
            let again = spec.receivers[..i].iter().any(|r| r.name == receiver.name);
            match again {
                true => Some(format!(
                    "spec.receivers[{i}].name: {:?}: named twice",
                    receiver.name
                )),
                false => receiver
                    .problem()
                    .map(|p| format!("spec.receivers[{i}].{p}")),
            }
        })
    };
    faults
        .or_else(|| {
            spec.prometheus
                .as_ref()
                .and_then(|p| p.problem())
                .map(|p| format!("spec.prometheus.{p}"))
        })
        .or_else(receivers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(spec: &str) -> String {
        format!("apiVersion: {API_VERSION}\nkind: Scenario\nmetadata: {{name: t}}\nspec: {spec}\n")
    }

    #[test]
    fn includes_add_their_objects_after_the_files_own() {
        let dir = tempfile::tempdir().unwrap();
        let window = "apiVersion: patchpilot.dev/v1alpha1\nkind: MaintenanceWindow\nmetadata: {name: w}\nspec: {recurrences: [{start: '01:00', duration: 1h}]}\n";
        std::fs::write(dir.path().join("window.yaml"), window).unwrap();
        std::fs::create_dir(dir.path().join("sandbox")).unwrap();
        let file = dir.path().join("sandbox/s.yaml");
        let text = scenario("{include: [../window.yaml]}")
            + "---\n{apiVersion: v1, kind: ConfigMap, metadata: {name: c}}\n";
        std::fs::write(&file, text).unwrap();
        let read = Scenario::read(&file).unwrap();
        let kinds: Vec<&str> = read
            .objects
            .iter()
            .map(|o| o["kind"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["ConfigMap", "MaintenanceWindow"]);

        std::fs::write(dir.path().join("window.yaml"), scenario("{}")).unwrap();
        let error = Scenario::read(&file).unwrap_err().to_string();
        assert!(
            error.contains("window.yaml") && error.contains("not a Scenario"),
            "{error}"
        );
    }

    #[test]
    fn network_settings_are_checked_with_the_field_named() {
        let path = Path::new("s.yaml");
        for (spec, words) in [
            (
                "{faults: {http: [{service: shop/web}]}}",
                "spec.faults.http[0]: exactly one of status or error",
            ),
            (
                "{faults: {http: [{service: web, status: 503}]}}",
                "spec.faults.http[0]: service: \"web\"",
            ),
            (
                "{faults: {http: [{service: shop/web, error: Slow}]}}",
                "spec.faults.http[0].error: unknown variant `Slow`",
            ),
            (
                "{prometheus: {url: 'prometheus:9090'}}",
                "spec.prometheus.url",
            ),
            (
                "{prometheus: {url: 'http://p:9090', answers: [{value: many}]}}",
                "spec.prometheus.answers[0].value",
            ),
            (
                "{receivers: [{name: Chat}]}",
                "spec.receivers[0].name: \"Chat\": expected a DNS label",
            ),
            (
                "{receivers: [{name: chat}, {name: chat}]}",
                "spec.receivers[1].name: \"chat\": named twice",
            ),
            (
                "{receivers: [{name: chat, down: [{after: 1h}]}]}",
                "spec.receivers[0].down[0]: exactly one of status or error",
            ),
            (
                "{receivers: [{name: chat, down: [{status: 42}]}]}",
                "spec.receivers[0].down[0].status: 42",
            ),
            (
                "{receivers: [{name: chat, down: [{refuse: true}]}]}",
                "spec.receivers[0].down[0].refuse: unknown field `refuse`",
            ),
        ] {
            let error = Scenario::parse(path, &scenario(spec))
                .unwrap_err()
                .to_string();
            assert!(error.contains(words), "{spec}: {error}");
        }
        let fine = "{faults: {http: [{service: shop/web, path: /healthz, status: 503, after: 1h, before: 2h}]}, prometheus: {url: 'http://p.monitoring:9090', answers: [{contains: up, value: 1}, {query: 'x', value: NaN}]}, updaters: {reboot: true}, receivers: [{name: chat, down: [{status: 503, after: 2h, before: 3h}, {error: Timeout, after: 4h}]}, {name: cloud-events}]}";
        let spec = Scenario::parse(path, &scenario(fine)).unwrap().spec;
        assert_eq!(spec.faults.http[0].status, Some(503));
        assert!(spec.updaters.reboot);
        assert_eq!(
            spec.receivers[0].down[1].error,
            Some(network::ConnectFailure::Timeout)
        );
        assert_eq!(spec.receivers[1].name, "cloud-events");
    }

    #[test]
    fn generated_services_select_their_workload() {
        let spec = "{workloads: [{namespace: shop, name: web, image: 'nginx:1', service: true}]}";
        let read = Scenario::parse(Path::new("s.yaml"), &scenario(spec)).unwrap();
        let service = read
            .generated()
            .into_iter()
            .find(|o| o["kind"] == "Service")
            .unwrap();
        assert_eq!(service["metadata"]["name"], "web");
        assert_eq!(service["spec"]["selector"], json!({"app": "web"}));
        assert_eq!(service["spec"]["ports"][0]["port"], 80);
    }
}
