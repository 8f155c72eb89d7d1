//! A fleet of worker nodes in pools and zones: the 5,000-node cluster of the benchmarks, and
//! the `workers-os` policy and rollout they roll over it.

use std::collections::BTreeMap;

use jiff::Timestamp;

use crate::{
    machine::Rollout,
    plan::{self, Namespaces, Query},
    policy::Policy,
    selector::Labels,
    target::Candidate,
    units::Duration,
};

/// The label marking worker nodes (its value is empty).
pub const WORKER: &str = "node-role.kubernetes.io/worker";
/// The label naming a node's pool.
pub const POOL: &str = "pool";
/// The label naming a node's zone.
pub const ZONE: &str = "topology.kubernetes.io/zone";

/// Worker nodes `worker-00000`, `worker-00001`…, in ten pools (`pool-0`…`pool-9`, by the
/// node's number modulo 10) and three zones (`eu-west-1a`, `b`, `c`, modulo 3).
#[derive(Clone, Copy, Debug)]
pub struct Fleet {
    /// How many nodes.
    pub nodes: usize,
}

impl Fleet {
    /// A fleet of `nodes` worker nodes.
    pub fn workers(nodes: usize) -> Self {
        Fleet { nodes }
    }

    /// The nodes as candidates, without annotations.
    pub fn candidates(&self) -> Vec<Candidate> {
        (0..self.nodes)
            .map(|i| {
                let name = format!("worker-{i:05}");
                let labels = Labels::from([
                    (WORKER.to_owned(), String::new()),
                    (POOL.to_owned(), format!("pool-{}", i % 10)),
                    (
                        ZONE.to_owned(),
                        format!("eu-west-1{}", ["a", "b", "c"][i % 3]),
                    ),
                    ("kubernetes.io/hostname".to_owned(), name.clone()),
                ]);
                Candidate::node(&name, labels, BTreeMap::new())
            })
            .collect()
    }

    /// The policy `workers-os` over the fleet: the workers, in pools; a canary of 5 soaking
    /// 30 minutes, stages at 10, 25 and 50 % soaking an hour, each wave spread over the
    /// zones; health judged for 15 minutes, then watched for 5.
    pub fn policy() -> Policy {
        Policy::test()
            .named("workers-os")
            .nodes(&[(WORKER, "")], Some(POOL))
            .canary(5, Duration::from_mins(30))
            .stages(&[10, 25, 50], Duration::from_hours(1))
            .group_by(ZONE)
            .health(Duration::from_mins(15), Duration::from_mins(5))
    }

    /// The rollout `workers-os-3f9a1c2e` of version `2026-11-security`, created at `created`.
    pub fn rollout(created: Timestamp) -> Rollout {
        Rollout::test(created)
            .named("workers-os-3f9a1c2e")
            .version("2026-11-security")
    }

    /// The positions in `candidates` of the targets `policy` takes, in the order its rollout
    /// takes them.
    pub fn order(
        candidates: &[Candidate],
        policy: &Policy,
        rollout: &Rollout,
        now: Timestamp,
    ) -> Vec<usize> {
        let query = Query {
            policy: &policy.name,
            version: &rollout.patch.version,
            images: rollout.patch.images(),
            group_by: policy.strategy.group_by.as_deref(),
            now,
        };
        let positions: BTreeMap<_, _> = candidates
            .iter()
            .enumerate()
            .map(|(i, c)| (&c.id, i))
            .collect();
        plan::inventory(
            &policy.targets,
            &query,
            candidates,
            &Namespaces::new(),
            |_| false,
        )
        .eligible
        .iter()
        .map(|c| positions[&c.id])
        .collect()
    }
}
