//! Nodes: the kubelet's node status (conditions, `nodeInfo`, capacity, addresses), reboots,
//! and the node lifecycle controller's taints (`unschedulable`, `not-ready` and the pressure
//! conditions).
//!
//! Heartbeats do not tick: a condition's `lastHeartbeatTime` is its last transition, so a
//! node is written only when something about it changes.

use jiff::Timestamp;
use serde_json::{Value, json};

use super::{
    informer::Kind,
    meta::{self, Key},
    placement::{NOT_READY, UNSCHEDULABLE},
    sim::Sim,
    work::Work,
    write::{KUBELET, NODE_CONTROLLER, Part},
};
use crate::json::{Array, Json, Object};

/// The OS image of an unpatched node.
pub(super) const BASE_IMAGE: &str = "Sandbox Linux";

/// What a kubelet knows of its node.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct NodeRun {
    /// How many times the node booted since the cluster first saw it.
    pub boots: u64,
    /// `status.nodeInfo.bootID`.
    pub boot_id: String,
    /// `status.nodeInfo.osImage`.
    pub os_image: String,
    /// `InternalIP`.
    pub ip: String,
    /// Where pod IPs come from: `10.<a>.<b>.` for this node.
    pub pod_prefix: String,
    /// How many pods got an IP here.
    pub pods_started: u32,
    /// Whether the kubelet reports Ready, and since when.
    pub ready: (bool, Timestamp),
    /// Whether memory runs short, and since when.
    pub memory_pressure: (bool, Timestamp),
    /// Since when the other conditions hold.
    pub since: Timestamp,
    /// Rebooting until then.
    pub down_until: Option<Timestamp>,
    /// The memory pressure to report once the reboot is over.
    pub pressure_after_boot: Option<bool>,
}

impl NodeRun {
    /// Takes over a node as its object describes it; `index` gives it addresses.
    pub fn adopt(node: &Json, index: u32, now: Timestamp) -> Self {
        let status = &node["status"];
        let info = &status["nodeInfo"];
        let since_of = |kind: &str| {
            meta::condition(node, kind)
                .and_then(|c| meta::parse_time(&c["lastTransitionTime"]))
                .unwrap_or(now)
        };
        let ready = meta::condition(node, "Ready").is_none_or(|c| c["status"] == "True");
        let pressure = meta::condition_true(node, "MemoryPressure");
        let ip = status["addresses"]
            .as_array()
            .and_then(|a| a.iter().find(|a| a["type"] == "InternalIP"))
            .and_then(|a| a["address"].as_str())
            .map(str::to_owned)
            .unwrap_or_else(|| {
                let n = index + 1;
                format!("10.{}.{}.{}", (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff)
            });
        NodeRun {
            boots: 0,
            boot_id: info["bootID"]
                .as_str()
                .filter(|b| !b.is_empty())
                .map_or_else(|| boot_id(meta::name(node), 0), str::to_owned),
            os_image: info["osImage"]
                .as_str()
                .filter(|o| !o.is_empty())
                .unwrap_or(BASE_IMAGE)
                .to_owned(),
            ip,
            pod_prefix: format!("10.{}.{}.", 128 + ((index >> 8) & 0x7f), index & 0xff),
            pods_started: 0,
            ready: (ready, since_of("Ready")),
            memory_pressure: (pressure, since_of("MemoryPressure")),
            since: now,
            down_until: None,
            pressure_after_boot: None,
        }
    }

    /// The next pod IP on this node.
    pub fn next_pod_ip(&mut self) -> String {
        self.pods_started += 1;
        format!("{}{}", self.pod_prefix, (self.pods_started - 1) % 254 + 1)
    }
}

/// A boot ID for a node's `boots`-th boot.
fn boot_id(node: &str, boots: u64) -> String {
    meta::uuid_from(&format!("boot/{node}/{boots}"))
}

/// The node's status as its kubelet reports it: the known conditions, `nodeInfo`, capacity,
/// addresses and endpoints, keeping whatever else the status holds.
pub(super) fn node_status(node: &Json, run: &NodeRun) -> Value {
    let mut status = node["status"]
        .as_object()
        .map(Object::to_map)
        .unwrap_or_default();
    let condition = |kind: &str, on: bool, since: Timestamp, reasons: [(&str, &str); 2]| {
        let (reason, message) = if on { reasons[0] } else { reasons[1] };
        let at = meta::time(since);
        json!({
            "type": kind,
            "status": if on { "True" } else { "False" },
            "lastHeartbeatTime": at,
            "lastTransitionTime": at,
            "reason": reason,
            "message": message,
        })
    };
    let mut conditions = meta::conditions_of(node);
    let wanted = [
        condition(
            "MemoryPressure",
            run.memory_pressure.0,
            run.memory_pressure.1,
            [
                (
                    "KubeletHasInsufficientMemory",
                    "kubelet has insufficient memory available",
                ),
                (
                    "KubeletHasSufficientMemory",
                    "kubelet has sufficient memory available",
                ),
            ],
        ),
        condition(
            "DiskPressure",
            false,
            run.since,
            [
                ("KubeletHasDiskPressure", "kubelet has disk pressure"),
                ("KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
            ],
        ),
        condition(
            "PIDPressure",
            false,
            run.since,
            [
                (
                    "KubeletHasInsufficientPID",
                    "kubelet has insufficient PID available",
                ),
                (
                    "KubeletHasSufficientPID",
                    "kubelet has sufficient PID available",
                ),
            ],
        ),
        condition(
            "Ready",
            run.ready.0,
            run.ready.1,
            [
                ("KubeletReady", "kubelet is posting ready status"),
                ("KubeletNotReady", "container runtime is down"),
            ],
        ),
    ];
    for fresh in wanted {
        meta::set_condition(&mut conditions, fresh);
    }
    status.insert("conditions".into(), Value::Array(conditions));
    let mut info = status
        .get("nodeInfo")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let name = meta::name(node);
    let defaults = [
        ("machineID", meta::hex_id(&format!("machine/{name}"), 32)),
        ("systemUUID", meta::uuid_from(&format!("system/{name}"))),
        ("kernelVersion", "6.8.0-sandbox".to_owned()),
        ("containerRuntimeVersion", "containerd://1.7.24".to_owned()),
        ("kubeletVersion", "v1.32.0".to_owned()),
        ("kubeProxyVersion", "v1.32.0".to_owned()),
        ("operatingSystem", "linux".to_owned()),
        ("architecture", "amd64".to_owned()),
    ];
    for (field, value) in defaults {
        info.entry(field).or_insert_with(|| json!(value));
    }
    info.insert("bootID".into(), json!(run.boot_id));
    info.insert("osImage".into(), json!(run.os_image));
    status.insert("nodeInfo".into(), Value::Object(info));
    let resources =
        json!({"cpu": "4", "memory": "16Gi", "pods": "110", "ephemeral-storage": "100Gi"});
    for field in ["capacity", "allocatable"] {
        if !status.get(field).is_some_and(Value::is_object) {
            status.insert(field.into(), resources.clone());
        }
    }
    if !status.get("addresses").is_some_and(Value::is_array) {
        status.insert(
            "addresses".into(),
            json!([
                {"type": "InternalIP", "address": run.ip},
                {"type": "Hostname", "address": name},
            ]),
        );
    }
    status
        .entry("daemonEndpoints")
        .or_insert_with(|| json!({"kubeletEndpoint": {"Port": 10250}}));
    Value::Object(status)
}

/// The taints the node lifecycle controller keeps in step with the node: `unschedulable`
/// with `spec.unschedulable`, `not-ready` while not Ready, and one per pressure condition.
/// Other taints are kept as they are.
pub(super) fn node_taints(node: &Json, status: &Value) -> Vec<Value> {
    let holder = json!({"status": status});
    let condition = |kind: &str| meta::condition(&holder, kind).map(|c| c["status"].clone());
    let wanted: Vec<(&str, bool)> = vec![
        (UNSCHEDULABLE, node["spec"]["unschedulable"] == true),
        (NOT_READY, condition("Ready").is_some_and(|s| s == "False")),
        (
            "node.kubernetes.io/memory-pressure",
            condition("MemoryPressure").is_some_and(|s| s == "True"),
        ),
        (
            "node.kubernetes.io/disk-pressure",
            condition("DiskPressure").is_some_and(|s| s == "True"),
        ),
        (
            "node.kubernetes.io/pid-pressure",
            condition("PIDPressure").is_some_and(|s| s == "True"),
        ),
        (
            "node.kubernetes.io/network-unavailable",
            condition("NetworkUnavailable").is_some_and(|s| s == "True"),
        ),
    ];
    let mut taints: Vec<Value> = node["spec"]["taints"]
        .as_array()
        .map(Array::to_vec)
        .unwrap_or_default();
    for (key, on) in wanted {
        let present = |t: &Value| t["key"] == key && t["effect"] == "NoSchedule";
        let has = taints.iter().any(present);
        if on && !has {
            taints.push(json!({"key": key, "effect": "NoSchedule"}));
        } else if !on && has {
            taints.retain(|t| !present(t));
        }
    }
    taints
}

impl Sim {
    /// The kubelet's state of a node, taking the node over at first sight.
    pub fn node_run(&mut self, name: &str) -> Option<&mut NodeRun> {
        if !self.nodes.contains_key(name) {
            let node = self.cache.node(name)?.clone();
            let run = NodeRun::adopt(&node, self.nodes_seen, self.now());
            self.nodes_seen += 1;
            self.nodes.insert(name.to_owned(), run);
        }
        self.nodes.get_mut(name)
    }

    /// Reconciles a node: ends a reboot that is over, writes the status its kubelet reports
    /// and the taints the node lifecycle controller keeps.
    pub fn sync_node(&mut self, name: &str) {
        let Some(node) = self.cache.node(name).cloned() else {
            self.nodes.remove(name);
            return;
        };
        let now = self.now();
        let Some(run) = self.node_run(name) else {
            return;
        };
        if let Some(until) = run.down_until {
            if now >= until {
                run.boots += 1;
                run.boot_id = boot_id(name, run.boots);
                run.ready = (true, until);
                run.down_until = None;
                if let Some(pressure) = run.pressure_after_boot.take() {
                    run.memory_pressure = (pressure, until);
                }
                self.wake_pods_on(name);
            } else {
                self.timers.schedule(Work::Node(name.to_owned()), until);
            }
        }
        let Some(run) = self.nodes.get(name) else {
            return;
        };
        let status = node_status(&node, run);
        if status != node["status"] {
            self.update(Kind::Node, &node_key(name), KUBELET, Part::Status, |node| {
                node["status"] = status.clone();
            });
        }
        let taints = node_taints(&node, &status);
        let current = node["spec"]["taints"]
            .as_array()
            .map(Array::to_vec)
            .unwrap_or_default();
        if taints != current {
            self.update(
                Kind::Node,
                &node_key(name),
                NODE_CONTROLLER,
                Part::Main,
                |node| {
                    if !node["spec"].is_object() {
                        node["spec"] = json!({});
                    }
                    if let Some(spec) = node["spec"].as_object_mut() {
                        if taints.is_empty() {
                            spec.remove("taints");
                        } else {
                            spec.insert("taints".into(), Value::Array(taints));
                        }
                    }
                },
            );
        }
    }

    /// Records a patch on a node after its updater succeeded: the OS image, the health the
    /// faults give it, and a reboot if one is asked for.
    pub fn patched(
        &mut self,
        node: &str,
        image: Option<String>,
        pressure: Option<bool>,
        reboot: bool,
    ) {
        let now = self.now();
        let reboot_for = self.timings.reboot.signed();
        let Some(run) = self.node_run(node) else {
            return;
        };
        if let Some(image) = image {
            run.os_image = image;
        }
        if reboot {
            let until = now.saturating_add(reboot_for).unwrap_or(now);
            run.down_until = Some(until);
            run.ready = (false, now);
            run.pressure_after_boot = pressure;
            self.timers.schedule(Work::Node(node.to_owned()), until);
            self.wake_pods_on(node);
        } else if let Some(pressure) = pressure
            && run.memory_pressure.0 != pressure
        {
            run.memory_pressure = (pressure, now);
        }
        self.queue.push(Work::Node(node.to_owned()));
    }

    /// Queues every pod of a node for its kubelet.
    fn wake_pods_on(&mut self, node: &str) {
        let pods: Vec<Key> = self.cache.pods_on(node).cloned().collect();
        for pod in pods {
            self.queue.push(Work::Pod(pod));
        }
    }
}

/// A node's cache key.
fn node_key(name: &str) -> Key {
    (String::new(), name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn a_bare_node_gets_a_full_status() {
        let node = Json::from(json!({"metadata": {"name": "n1"}}));
        let run = NodeRun::adopt(&node, 0, t("2026-01-01T00:00:00Z"));
        assert_eq!(run.ip, "10.0.0.1");
        let status = node_status(&node, &run);
        let holder = json!({"status": status});
        assert!(meta::condition_true(&holder, "Ready"));
        assert_eq!(
            meta::condition(&holder, "MemoryPressure").unwrap()["status"],
            "False"
        );
        assert_eq!(status["nodeInfo"]["osImage"], BASE_IMAGE);
        assert_eq!(status["nodeInfo"]["bootID"].as_str().unwrap().len(), 36);
        assert_eq!(status["allocatable"]["pods"], "110");
        assert_eq!(status["addresses"][0]["address"], "10.0.0.1");
        assert_eq!(
            node_status(
                &Json::from(json!({"metadata": {"name": "n1"}, "status": status.clone()})),
                &run
            ),
            status
        );
    }

    #[test]
    fn adoption_keeps_what_the_node_says() {
        let node = json!({"metadata": {"name": "n1"}, "status": {
            "nodeInfo": {"bootID": "b", "osImage": "Sandbox Linux (v1)"},
            "conditions": [
                {"type": "Ready", "status": "False", "lastTransitionTime": "2025-01-01T00:00:00Z"}
            ],
            "addresses": [{"type": "InternalIP", "address": "192.168.1.5"}],
        }});
        let node = Json::from(node);
        let run = NodeRun::adopt(&node, 7, t("2026-01-01T00:00:00Z"));
        assert_eq!(
            (run.boot_id.as_str(), run.os_image.as_str(), run.ip.as_str()),
            ("b", "Sandbox Linux (v1)", "192.168.1.5")
        );
        assert_eq!(run.ready, (false, t("2025-01-01T00:00:00Z")));
    }

    #[test]
    fn taints_follow_cordon_and_conditions() {
        let node = Json::from(json!({"spec": {
            "unschedulable": true,
            "taints": [{"key": "own", "effect": "NoExecute"}],
        }}));
        let status = json!({"conditions": [
            {"type": "Ready", "status": "False"},
            {"type": "MemoryPressure", "status": "True"},
        ]});
        let keys: Vec<Value> = node_taints(&node, &status)
            .iter()
            .map(|t| t["key"].clone())
            .collect();
        assert_eq!(
            keys,
            vec![
                json!("own"),
                json!(UNSCHEDULABLE),
                json!(NOT_READY),
                json!("node.kubernetes.io/memory-pressure")
            ]
        );
        let uncordoned = Json::from(json!({"spec": {"taints": node_taints(&node, &status)}}));
        let healthy = json!({"conditions": [{"type": "Ready", "status": "True"}]});
        let keys: Vec<Value> = node_taints(&uncordoned, &healthy)
            .iter()
            .map(|t| t["key"].clone())
            .collect();
        assert_eq!(keys, vec![json!("own")]);
    }
}
