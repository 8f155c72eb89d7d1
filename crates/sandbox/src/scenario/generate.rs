//! What a scenario's generators make: nodes across pools and zones, and workloads with their
//! namespaces, PodDisruptionBudgets and Services.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{NodeGroup, Scenario, WorkloadGroup};

impl Scenario {
    /// The objects the generators make: namespaces, nodes, workloads, budgets and Services.
    pub fn generated(&self) -> Vec<Value> {
        let mut objects = Vec::new();
        for group in &self.spec.nodes {
            objects.extend(nodes(group));
        }
        let mut namespaces: BTreeMap<&str, &BTreeMap<String, String>> = BTreeMap::new();
        for group in &self.spec.workloads {
            namespaces
                .entry(&group.namespace)
                .or_insert(&group.namespace_labels);
        }
        for (namespace, labels) in namespaces {
            objects.push(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace, "labels": labels}}));
        }
        for group in &self.spec.workloads {
            objects.extend(workloads(group));
        }
        objects
    }
}

fn nodes(group: &NodeGroup) -> Vec<Value> {
    (0..group.count)
        .map(|i| {
            let name = format!("{}-{}", group.pool, i + 1);
            let mut labels = group.labels.clone();
            labels.insert("pool".into(), group.pool.clone());
            labels.insert("kubernetes.io/hostname".into(), name.clone());
            labels.insert("kubernetes.io/os".into(), "linux".into());
            if !group.zones.is_empty() {
                labels.insert(
                    "topology.kubernetes.io/zone".into(),
                    group.zones[i % group.zones.len()].clone(),
                );
            }
            let pods = group.pod_capacity.unwrap_or(110);
            json!({
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {"name": name, "labels": labels, "annotations": group.annotations},
                "spec": {"taints": group.taints},
                "status": {
                    "capacity": {"cpu": "8", "memory": "32Gi", "pods": pods.to_string()},
                    "allocatable": {"cpu": "7800m", "memory": "31Gi", "pods": pods.to_string()},
                },
            })
        })
        .collect()
}

fn workloads(group: &WorkloadGroup) -> Vec<Value> {
    let mut objects = Vec::new();
    for i in 0..group.count {
        let name = if group.count == 1 {
            group.name.clone()
        } else {
            format!("{}-{}", group.name, i + 1)
        };
        let mut labels = group.labels.clone();
        labels.insert("app".into(), name.clone());
        let template = json!({
            "metadata": {"labels": labels},
            "spec": {
                "nodeSelector": group.node_selector,
                "containers": [{"name": group.name.clone(), "image": group.image, "ports": [{"containerPort": 8080, "protocol": "TCP"}]}],
            },
        });
        let mut spec = json!({"selector": {"matchLabels": {"app": name}}, "template": template});
        match group.kind.as_str() {
            "DaemonSet" => {}
            "StatefulSet" => {
                spec["replicas"] = json!(group.replicas);
                spec["serviceName"] = json!(name);
            }
            _ => spec["replicas"] = json!(group.replicas),
        }
        objects.push(json!({
            "apiVersion": "apps/v1",
            "kind": group.kind,
            "metadata": {"name": name, "namespace": group.namespace, "labels": labels},
            "spec": spec,
        }));
        if group.service {
            objects.push(json!({
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": name, "namespace": group.namespace, "labels": labels},
                "spec": {
                    "selector": {"app": name},
                    "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}],
                },
            }));
        }
        if let Some(pdb) = &group.pdb {
            let mut spec = pdb.clone();
            spec["selector"] = json!({"matchLabels": {"app": name}});
            objects.push(json!({
                "apiVersion": "policy/v1",
                "kind": "PodDisruptionBudget",
                "metadata": {"name": format!("{name}-pdb"), "namespace": group.namespace},
                "spec": spec,
            }));
        }
    }
    objects
}
