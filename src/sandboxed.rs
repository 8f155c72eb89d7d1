//! The operator in the sandbox: the one place where the two are put together.
//!
//! The sandbox serves the CRDs it is given and runs the operator it is given, as the pods of
//! a Deployment (restarted by the scenario, after a back-off when they exit); here both are
//! patchpilot's own.

use std::sync::Arc;

use crate::{
    api,
    controller::{self, LeaderElection, rollout::health::HttpClient},
    sandbox::{
        self,
        run::{OPERATOR_USER, Operator, Replica},
    },
};

/// The namespace and Lease the replicas of the hosted operator take turns on.
const LEASE: (&str, &str) = ("patchpilot-system", "patchpilot");

/// A sandbox's options serving patchpilot's CRDs.
pub fn options() -> sandbox::Options {
    sandbox::Options {
        crds: api::crds(),
        ..Default::default()
    }
}

/// patchpilot's operator, as the sandbox runs it: each replica acts as [`OPERATOR_USER`] on
/// the sandbox's virtual clock, and its `http` and `prometheus` health checks are answered
/// by the simulated network.
pub fn operator() -> Operator {
    Arc::new(|replica: Replica| {
        Box::pin(async move {
            let Replica {
                sandbox,
                instance,
                replicas,
                streaming_lists,
            } = replica;
            let options = controller::Options {
                metrics_addr: None,
                leader_election: (replicas > 1).then(|| LeaderElection {
                    namespace: LEASE.0.to_owned(),
                    lease: LEASE.1.to_owned(),
                    identity: instance.clone(),
                }),
                streaming_lists,
                instance,
                health_http: Some(HttpClient::new(sandbox.network())),
            };
            controller::run(
                sandbox.client(OPERATOR_USER),
                sandbox.store().clock().clone(),
                options,
                std::future::pending(),
            )
            .await
            .map_err(|error| error.to_string())
        })
    })
}
