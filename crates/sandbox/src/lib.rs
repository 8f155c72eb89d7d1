//! The sandbox: an in-process simulated Kubernetes cluster with a virtual clock, which the
//! operator (through `kube::Client`) and kubectl (over HTTP) can talk to.
//!
//! - [`store`]: every object, with resource versions, watches, finalizers and garbage
//!   collection;
//! - [`apiserver`]: the Kubernetes API over the store — discovery, the verbs, patches and
//!   server-side apply ([`patch`]), schema checks of custom resources
//!   ([`patchpilot_schema`]), evictions, the audit log and injected faults;
//! - [`cluster`]: what the scheduler, the controllers and the kubelets would do;
//! - [`network`]: what the operator's HTTP and Prometheus health checks reach, and the
//!   receivers its notices go to;
//! - [`scenario`]: what to simulate.

pub mod apiserver;
pub mod cluster;
pub mod json;
pub mod network;
pub mod patch;
pub mod resources;
pub mod run;
pub mod scenario;
pub mod selector;
pub mod status;
pub mod store;

use std::sync::Arc;

use serde_json::{Value, json};

use apiserver::{ApiServer, Audit, Fault, FaultKind, Faults, SandboxService};
use cluster::{Cluster, ClusterFaults, Timings};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use patchpilot_clock::{SharedClock, VirtualClock};
use resources::Registry;
use scenario::Scenario;
use store::{Store, Write};

/// What the sandbox's in-process clients send as `User-Agent`: patchpilot's own
/// (`patchpilot/<version>`, the workspace's version), since the operator is their main user.
pub const USER_AGENT: &str = concat!("patchpilot/", env!("CARGO_PKG_VERSION"));

/// The user the scenario's own objects and steps are written as.
pub const SCENARIO_USER: &str = "sandbox-scenario";

/// Why a sandbox could not be built.
#[derive(Debug, thiserror::Error)]
#[error("{object}: {message}")]
pub struct SandboxError {
    /// The object that could not be created, as `Kind/name`.
    pub object: String,
    /// What the API server said.
    pub message: String,
}

/// A simulated cluster built from a scenario.
pub struct Sandbox {
    store: Arc<Store>,
    server: Arc<ApiServer>,
    network: Arc<network::Network>,
    scenario: Scenario,
}

/// How a sandbox runs.
#[derive(Default)]
pub struct Options {
    /// The CustomResourceDefinitions it serves from the start (those of the operator it
    /// hosts), before the scenario's objects are created.
    pub crds: Vec<CustomResourceDefinition>,
    /// Where the audit log goes.
    pub audit: Option<Audit>,
    /// How much faster than tokio's clock the virtual clock runs (1 when unset).
    pub speed: Option<f64>,
}

impl Sandbox {
    /// Builds the cluster: the CRDs it is given, the default namespaces, then the scenario's
    /// objects and the ones it generates. Must run inside a tokio runtime (the virtual
    /// clock reads tokio's).
    pub fn new(scenario: Scenario, options: Options) -> Result<Self, SandboxError> {
        let start = scenario.spec.start.unwrap_or_else(jiff::Timestamp::now);
        let clock: SharedClock = Arc::new(VirtualClock::new(start, options.speed.unwrap_or(1.0)));
        let store = Arc::new(Store::new(Registry::builtin(), clock));
        let network = Arc::new(network::Network::new(
            store.clone(),
            start,
            scenario.spec.faults.http.clone(),
            scenario.spec.prometheus.as_ref(),
            &scenario.spec.receivers,
        ));
        store.set_watch_list(scenario.spec.api_server.watch_list);
        let faults = scenario
            .spec
            .faults
            .api
            .iter()
            .flat_map(|f| {
                [
                    Fault {
                        user: f.user.clone(),
                        rate: f.error_rate,
                        kind: FaultKind::Error(500),
                    },
                    Fault {
                        user: f.user.clone(),
                        rate: f.conflict_rate,
                        kind: FaultKind::Conflict,
                    },
                ]
            })
            .filter(|f| f.rate > 0.0)
            .collect();
        let server = Arc::new(
            ApiServer::new(
                store.clone(),
                options.audit.map(Arc::new),
                Faults::new(faults, scenario.spec.seed),
            )
            .with_response_latency(
                scenario
                    .spec
                    .api_server
                    .response_latency
                    .map(|d| d.signed()),
            ),
        );
        let sandbox = Sandbox {
            store,
            server,
            network,
            scenario,
        };
        sandbox.load(&options.crds)?;
        Ok(sandbox)
    }

    fn load(&self, crds: &[CustomResourceDefinition]) -> Result<(), SandboxError> {
        for crd in crds {
            let object = serde_json::to_value(crd).map_err(|e| SandboxError {
                object: "CustomResourceDefinition".into(),
                message: e.to_string(),
            })?;
            self.create(object)?;
        }
        let defaults = [
            "default",
            "kube-system",
            "kube-public",
            "kube-node-lease",
            "patchpilot-system",
        ]
        .map(|name| json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}));
        let mut objects: Vec<Value> = defaults
            .into_iter()
            .chain(self.scenario.generated())
            .chain(self.scenario.objects.iter().cloned())
            .collect();
        // Definitions and namespaces first, as `kubectl apply` would need them.
        objects.sort_by_key(|o| match o["kind"].as_str() {
            Some("CustomResourceDefinition") => 0,
            Some("Namespace") => 1,
            _ => 2,
        });
        for object in objects {
            self.create(object)?;
        }
        Ok(())
    }

    /// Creates one object as the scenario, keeping its status (nodes come with theirs).
    fn create(&self, object: Value) -> Result<(), SandboxError> {
        let describe = || patchpilot_schema::manifest::describe(&object);
        let api_version = object["apiVersion"].as_str().unwrap_or("");
        let kind = object["kind"].as_str().unwrap_or("");
        let resource = self
            .store
            .resource_of(api_version, kind)
            .ok_or_else(|| SandboxError {
                object: describe(),
                message: format!("the sandbox does not serve {api_version} {kind}"),
            })?;
        let namespace = match resource.namespaced {
            true => object["metadata"]["namespace"]
                .as_str()
                .unwrap_or("default")
                .to_owned(),
            false => String::new(),
        };
        let write = Write {
            validation: store::FieldValidation::Strict,
            ..Write::internal(SCENARIO_USER)
        };
        match self
            .store
            .create(&resource, &namespace, object.clone(), &write)
        {
            Ok(_) => Ok(()),
            // An object the scenario repeats (a namespace it also generates) is fine.
            Err(error) if error.code == 409 => Ok(()),
            Err(error) => Err(SandboxError {
                object: describe(),
                message: error.message,
            }),
        }
    }

    /// The store of the simulated cluster.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Its API server.
    pub fn server(&self) -> &Arc<ApiServer> {
        &self.server
    }

    /// The scenario it runs.
    pub fn scenario(&self) -> &Scenario {
        &self.scenario
    }

    /// The simulated network as an HTTP transport: what the operator's `http` and
    /// `prometheus` health checks, and its notices, send their requests through here.
    pub fn network(
        &self,
    ) -> impl tower::Service<
        http::Request<http_body_util::Full<bytes::Bytes>>,
        Response = http::Response<http_body_util::Full<bytes::Bytes>>,
        Error = network::HttpError,
        Future: Send + 'static,
    > + Clone
    + Send
    + Sync
    + 'static {
        self.network.transport()
    }

    /// The scenario's receivers, and what they got: keep it to read them after a run.
    pub fn receivers(&self) -> &Arc<network::receiver::Receivers> {
        self.network.receivers()
    }

    /// A `kube::Client` acting as `user`, talking to the API server in-process. Its requests
    /// carry patchpilot's `User-Agent` ([`USER_AGENT`]), as those of `patchpilot run` do.
    pub fn client(&self, user: &str) -> kube::Client {
        use tower::ServiceExt;
        let service = SandboxService::new(self.server.clone(), user).map_request(
            |mut request: http::Request<kube::client::Body>| {
                let agent = http::HeaderValue::from_static(USER_AGENT);
                request
                    .headers_mut()
                    .insert(http::header::USER_AGENT, agent);
                request
            },
        );
        kube::Client::new(service, "default")
    }

    /// The cluster's behaviour, to run alongside the clients.
    pub fn cluster(&self) -> Cluster {
        let spec = &self.scenario.spec;
        let defaults = Timings::default();
        let timings = Timings {
            pod_start: spec.timings.pod_start.unwrap_or(defaults.pod_start),
            updater: spec.timings.updater.unwrap_or(defaults.updater),
            reboot: spec.timings.reboot.unwrap_or(defaults.reboot),
            pod_stop: spec.timings.pod_stop.unwrap_or(defaults.pod_stop),
        };
        let faults = ClusterFaults {
            updater_failures: spec
                .faults
                .updater_failures
                .iter()
                .map(|f| (f.node.clone(), f.action.clone()))
                .collect(),
            unhealthy_after_patch: spec.faults.unhealthy_after_patch.clone(),
            unpullable_images: spec.faults.unpullable_images.clone(),
            updaters_reboot: spec.updaters.reboot,
        };
        Cluster::new(self.store.clone(), timings, faults)
    }
}
