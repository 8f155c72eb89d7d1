//! What the scenario's faults change: updater pods that fail on given nodes, and workloads
//! whose pods stop turning Ready once a patch changed their images.

use super::{
    informer::Kind,
    meta::{self, Key},
    sim::Sim,
};
use crate::json::Json;

/// The annotation asking for a reboot after a successful updater run.
pub(super) const REBOOT: &str = "sandbox.patchpilot.dev/reboot";

/// What an updater pod is asked to do, from its containers' environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Updater {
    /// `PATCHPILOT_ACTION`: `apply` or `rollback`.
    pub action: String,
    /// `PATCHPILOT_VERSION`.
    pub version: String,
    /// `PATCHPILOT_PREVIOUS_VERSION`.
    pub previous: String,
}

impl Updater {
    /// The updater a pod is, if its containers carry `PATCHPILOT_ACTION`.
    pub fn of(pod: &Json) -> Option<Self> {
        let env: Vec<&Json> = pod["spec"]["containers"]
            .as_array()?
            .iter()
            .filter_map(|c| c["env"].as_array())
            .flatten()
            .collect();
        let var = |name: &str| {
            env.iter()
                .find(|e| e["name"] == name)
                .and_then(|e| e["value"].as_str())
                .map(str::to_owned)
        };
        Some(Updater {
            action: var("PATCHPILOT_ACTION")?,
            version: var("PATCHPILOT_VERSION").unwrap_or_default(),
            previous: var("PATCHPILOT_PREVIOUS_VERSION").unwrap_or_default(),
        })
    }
}

/// The container images of a pod spec, by container name (init containers included).
pub(super) fn images(spec: &Json) -> Vec<(String, String)> {
    ["initContainers", "containers"]
        .iter()
        .flat_map(|field| spec[*field].as_array().into_iter().flatten())
        .map(|c| {
            let text = |f: &str| c[f].as_str().unwrap_or("").to_owned();
            (text("name"), text("image"))
        })
        .collect()
}

/// The target name of a workload, as faults name it: `Deployment/<namespace>/<name>`.
fn target(kind: Kind, key: &Key) -> String {
    format!("{kind:?}/{}/{}", key.0, key.1)
}

impl Sim {
    /// Remembers the images of a faulty workload's template the first time it is seen.
    pub fn remember_original(&mut self, kind: Kind, key: &Key, object: Option<&Json>) {
        let Some(object) = object else { return };
        if self.unhealthy.is_empty() || !self.unhealthy.contains(&target(kind, key)) {
            return;
        }
        self.originals
            .entry((kind, key.clone()))
            .or_insert_with(|| images(&object["spec"]["template"]["spec"]));
    }

    /// Whether a pod belongs to a faulty workload and runs other images than the workload
    /// had at first: it then never turns Ready.
    pub fn pod_unhealthy(&self, pod: &Json) -> bool {
        if self.originals.is_empty() {
            return false;
        }
        let Some(owner) = meta::controller_of(pod) else {
            return false;
        };
        let namespace = meta::namespace(pod).to_owned();
        let workload = match owner.kind {
            "ReplicaSet" => self
                .cache
                .get(
                    Kind::ReplicaSet,
                    &(namespace.clone(), owner.name.to_owned()),
                )
                .and_then(|set| {
                    meta::controller_of(set)
                        .filter(|d| d.kind == "Deployment")
                        .map(|d| d.name.to_owned())
                })
                .map(|name| (Kind::Deployment, (namespace, name))),
            "StatefulSet" => Some((Kind::StatefulSet, (namespace, owner.name.to_owned()))),
            "DaemonSet" => Some((Kind::DaemonSet, (namespace, owner.name.to_owned()))),
            _ => None,
        };
        workload
            .and_then(|w| self.originals.get(&w))
            .is_some_and(|original| *original != images(&pod["spec"]))
    }

    /// Whether the faults make an updater fail on `node`.
    pub fn updater_fails(&self, updater: &Updater, node: &str) -> bool {
        self.faults.updater_failures.iter().any(|(target, action)| {
            target.strip_prefix("Node/").unwrap_or(target) == node
                && action.as_deref().is_none_or(|a| a == updater.action)
        })
    }

    /// Whether a successful updater pod asks for a reboot: every one with
    /// `updaters_reboot`, otherwise the annotation on the pod, or on the template of the Job
    /// that made it.
    pub fn wants_reboot(&self, pod: &Json) -> bool {
        if self.faults.updaters_reboot || meta::annotation(pod, REBOOT) == Some("true") {
            return true;
        }
        meta::controller_of(pod)
            .filter(|owner| owner.kind == "Job")
            .and_then(|owner| {
                self.cache.get(
                    Kind::Job,
                    &(meta::namespace(pod).to_owned(), owner.name.to_owned()),
                )
            })
            .is_some_and(|job| job["spec"]["template"]["metadata"]["annotations"][REBOOT] == "true")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Test objects as the cluster follows them.
    macro_rules! json {
        ($($t:tt)+) => {
            crate::json::Json::from(serde_json::json!($($t)+))
        };
    }

    #[test]
    fn updaters_are_read_from_their_environment() {
        let pod = json!({"spec": {"containers": [{"name": "u", "env": [
            {"name": "PATCHPILOT_ACTION", "value": "apply"},
            {"name": "PATCHPILOT_VERSION", "value": "v2"},
            {"name": "PATCHPILOT_NODE", "valueFrom": {}},
        ]}]}});
        let updater = Updater::of(&pod).unwrap();
        assert_eq!(
            (
                updater.action.as_str(),
                updater.version.as_str(),
                updater.previous.as_str()
            ),
            ("apply", "v2", "")
        );
        assert_eq!(
            Updater::of(&json!({"spec": {"containers": [{"name": "x"}]}})),
            None
        );
        assert_eq!(Updater::of(&json!({"spec": 3})), None);
    }

    #[test]
    fn images_list_init_and_app_containers() {
        let spec = json!({
            "initContainers": [{"name": "i", "image": "busybox"}],
            "containers": [{"name": "c", "image": "web:1"}],
        });
        assert_eq!(
            images(&spec),
            vec![("i".into(), "busybox".into()), ("c".into(), "web:1".into())]
        );
        assert!(images(&json!(null)).is_empty());
    }
}
