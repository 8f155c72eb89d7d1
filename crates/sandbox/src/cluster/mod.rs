//! The simulated cluster's own behaviour: what the scheduler, the controllers of
//! kube-controller-manager and the kubelets would do. It acts on the [`Store`] directly,
//! as the cluster, under the field managers those components use.
//!
//! One task follows the store through watches and reconciles what changed (`sim`):
//!
//! - `node`: node status, reboots, and the node lifecycle controller's taints;
//! - `scheduler`: binds pods to nodes (`placement` says which fit);
//! - `kubelet`: runs pods on their nodes (`podstatus` renders their status), carries
//!   out updater pods' patches;
//! - `deployment` (with `rollout`), `replicaset`, `statefulset`, `daemonset`,
//!   `job`: the workload controllers;
//! - `pdb`: PodDisruptionBudget status;
//! - `faults`: the scenario's faults.
//!
//! Garbage collection of owned objects is the store's.

use std::sync::Arc;

use crate::store::Store;
use patchpilot_engine::units::Duration;

mod daemonset;
mod deployment;
mod faults;
mod informer;
mod job;
mod kubelet;
mod meta;
mod node;
mod pdb;
mod placement;
mod podstatus;
mod replicaset;
mod rolling_update;
mod scheduler;
mod sim;
mod statefulset;
mod template;
mod work;
mod write;

#[cfg(test)]
mod tests;

/// How long things take in the simulated cluster.
#[derive(Clone, Debug, PartialEq)]
pub struct Timings {
    /// From a pod's binding to a node to its containers running and Ready; also how long a
    /// Job's pod (other than an updater) runs.
    pub pod_start: Duration,
    /// How long an updater Job's pod runs before it finishes.
    pub updater: Duration,
    /// How long a rebooting node stays NotReady.
    pub reboot: Duration,
    /// How long a pod takes to terminate after its deletion.
    pub pod_stop: Duration,
}

impl Default for Timings {
    fn default() -> Self {
        Timings {
            pod_start: Duration::from_secs(5),
            updater: Duration::from_mins(2),
            reboot: Duration::from_secs(90),
            pod_stop: Duration::from_secs(2),
        }
    }
}

/// Faults of the cluster's behaviour, by target name (`Node/<name>`,
/// `Deployment/<namespace>/<name>`, …).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClusterFaults {
    /// Updater Jobs fail on these nodes: `(node, action)` with action `apply`, `rollback`,
    /// or `None` for both. The node may be written `<name>` or `Node/<name>`.
    pub updater_failures: Vec<(String, Option<String>)>,
    /// These targets turn unhealthy once patched: a node reports `MemoryPressure` after a
    /// successful apply (until a rollback); a workload's pods with other images than it had
    /// when the cluster first saw it start but never turn Ready: each container exits
    /// `pod_start` after it started and the kubelet restarts it with its back-off
    /// (`CrashLoopBackOff`).
    pub unhealthy_after_patch: Vec<String>,
    /// Images the registry does not have: containers using them never start (`ErrImagePull`,
    /// then `ImagePullBackOff` between the kubelet's attempts).
    pub unpullable_images: Vec<String>,
    /// Every successful updater reboots its node, annotated or not (scenario
    /// `updaters.reboot`; not a fault, but what the simulated updaters do).
    pub updaters_reboot: bool,
}

/// The simulated cluster's behaviour.
pub struct Cluster {
    store: Arc<Store>,
    timings: Timings,
    faults: ClusterFaults,
}

impl Cluster {
    /// The behaviour of the cluster held in `store`.
    pub fn new(store: Arc<Store>, timings: Timings, faults: ClusterFaults) -> Self {
        Cluster {
            store,
            timings,
            faults,
        }
    }

    /// Runs the cluster until the future is dropped.
    pub async fn run(self) {
        match sim::Sim::new(self.store, self.timings, self.faults) {
            Some(sim) => sim.run().await,
            None => {
                tracing::error!("the store does not serve the built-in kinds the cluster needs");
                std::future::pending().await
            }
        }
    }
}
