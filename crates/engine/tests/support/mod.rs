//! A small simulated world of nodes for driving the rollout state machine the way the
//! controller drives a cluster: observe, decide, carry out the actions, write the status,
//! let time pass. It records what happened, like an audit log, so that tests check outcomes
//! from the world's side rather than from the engine's own counters.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};

use jiff::{SignedDuration, Timestamp};
use patchpilot_engine::{
    keys,
    machine::{
        self, Action, Change, Decision, FatalReason, HealthFacts, Input, JobFacts, JobState, Live,
        NodeFacts, Observed, Record, RecordState, Records, Rollout, Sibling, Status, TargetAction,
        Updater,
    },
    plan::{Namespaces, Scope, TargetRules},
    policy::{
        Approval, ApprovalMode, CanarySize, Classification, Drain, Health, OnFailure, Policy,
        Stage, Strategy,
    },
    rollout::Phase,
    selector::{Labels, Selector},
    target::{Candidate, TargetId},
    units::{Duration, IntOrPercent, Percent},
    window::Window,
};

/// How one node behaves when patched.
#[derive(Clone, Debug)]
pub struct Script {
    /// How long the updater runs.
    pub updater: SignedDuration,
    /// The updater fails when applying.
    pub apply_fails: bool,
    /// The updater fails when rolling back.
    pub rollback_fails: bool,
    /// How long a reboot takes.
    pub reboot: SignedDuration,
    /// Health checks fail once the patch is on.
    pub unhealthy_when_patched: bool,
    /// Health checks settle (pods still starting) for this long after the node is Ready.
    pub settling: Option<SignedDuration>,
    /// Once the patch is on, health checks report this fatal signal (a pod crash-looping)
    /// from this long after the node is Ready.
    pub fatal_when_patched: Option<(FatalReason, SignedDuration)>,
    /// Pods on the node that must be evicted.
    pub pods: u32,
    /// Evictions are refused (PodDisruptionBudget) for this long after the drain starts.
    pub blocked_for: Option<SignedDuration>,
}

impl Default for Script {
    fn default() -> Self {
        Script {
            updater: SignedDuration::from_mins(2),
            apply_fails: false,
            rollback_fails: false,
            reboot: SignedDuration::from_mins(3),
            unhealthy_when_patched: false,
            settling: None,
            fatal_when_patched: None,
            pods: 3,
            blocked_for: None,
        }
    }
}

/// A Job running on a node.
#[derive(Clone, Debug)]
pub struct Job {
    pub name: String,
    pub action: Action,
    pub finishes: Timestamp,
    pub fails: bool,
    /// Its outcome has been applied to the node.
    pub settled: bool,
}

/// A simulated node.
#[derive(Clone, Debug)]
pub struct Node {
    pub name: String,
    pub labels: Labels,
    pub annotations: BTreeMap<String, String>,
    pub unschedulable: bool,
    pub boot: u32,
    pub ready: bool,
    pub ready_since: Timestamp,
    pub pods: u32,
    pub drain_started: Option<Timestamp>,
    pub jobs: Vec<Job>,
    pub back_at: Option<Timestamp>,
    /// The patch is on the node (the updater applied it and no rollback removed it).
    pub patched: bool,
    pub script: Script,
}

/// One thing the world saw happen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Logged {
    pub at: Timestamp,
    pub target: String,
    pub what: What,
    /// The rollout that acted.
    pub by: String,
}

/// Another rollout of the world's policy, decided in turn with the main one.
#[derive(Clone, Debug)]
pub struct Other {
    pub rollout: Rollout,
    pub status: Status,
    pub superseded: bool,
}

/// What happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum What {
    Locked(Action),
    Released(RecordState),
    Held(RecordState),
    Abandoned,
    MarkedFailed,
    Unlocked,
    UpdaterRun(Action),
}

/// The world.
pub struct World {
    pub now: Timestamp,
    pub nodes: Vec<Node>,
    pub rollout: Rollout,
    pub status: Status,
    pub policy: Policy,
    pub window: Option<Window>,
    pub superseded: bool,
    /// The policy's other rollouts.
    pub others: Vec<Other>,
    /// The main rollout or its policy is being deleted.
    pub stopping: bool,
    pub log: Vec<Logged>,
    pub events: Vec<machine::Event>,
    pub decisions: usize,
}

pub fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

pub fn mins(m: i64) -> SignedDuration {
    SignedDuration::from_mins(m)
}

/// A node policy: every node, pools by `pool`, one canary, maxUnavailable 1, no soaks.
pub fn policy() -> Policy {
    Policy {
        name: "os".into(),
        targets: TargetRules {
            scope: Scope::Nodes {
                selector: Selector::everything(),
                pool_label: None,
            },
            exclude: None,
        },
        strategy: Strategy {
            canary: CanarySize::Targets(1),
            canary_soak: Duration::ZERO,
            stages: Vec::new(),
            group_by: None,
            max_unavailable: IntOrPercent::Count(1),
            failure_budget: IntOrPercent::Count(0),
            on_failure: OnFailure::Rollback,
        },
        drain: Drain {
            timeout: Duration::from_mins(10),
            force: false,
        },
        health: Health {
            timeout: Duration::from_mins(10),
            soak: Duration::from_mins(1),
            recheck: None,
        },
        approval: Approval {
            mode: ApprovalMode::Manual,
            delay: Duration::ZERO,
            after_canary: false,
        },
        window: None,
        deadline: None,
        suspend: false,
    }
}

pub fn stages(percents: &[u8], soak: Duration) -> Vec<Stage> {
    percents
        .iter()
        .map(|p| Stage {
            percent: Percent::new(*p).unwrap(),
            soak,
        })
        .collect()
}

pub fn rollout(created: Timestamp) -> Rollout {
    Rollout {
        name: "os-0000abcd".into(),
        uid: "uid-os-0000abcd".into(),
        hand_made: false,
        patch: machine::Patch {
            version: "v2".into(),
            classification: Classification::Important,
            released_at: None,
            emergency: false,
            change: Change::Updater(Updater {
                expect_reboot: true,
                timeout: Duration::from_mins(30),
                reboot_timeout: Duration::from_mins(15),
            }),
        },
        approved: true,
        promoted: false,
        paused: false,
        abort: false,
        retry: 0,
        created,
        generation: 1,
    }
}

impl World {
    /// `count` nodes named `node-00`…, spread over `pools` pools (label `pool`) and zones.
    pub fn new(start: Timestamp, count: usize, pools: usize) -> Self {
        let nodes = (0..count)
            .map(|i| Node {
                name: format!("node-{i:02}"),
                labels: Labels::from([
                    ("pool".to_owned(), format!("pool-{}", i % pools.max(1))),
                    ("zone".to_owned(), format!("zone-{}", i % 3)),
                ]),
                annotations: BTreeMap::new(),
                unschedulable: false,
                boot: 1,
                ready: true,
                ready_since: start,
                pods: 3,
                drain_started: None,
                jobs: Vec::new(),
                back_at: None,
                patched: false,
                script: Script::default(),
            })
            .collect();
        World {
            now: start,
            nodes,
            rollout: rollout(start),
            status: Status::default(),
            policy: policy(),
            window: None,
            superseded: false,
            others: Vec::new(),
            stopping: false,
            log: Vec::new(),
            events: Vec::new(),
            decisions: 0,
        }
    }

    pub fn node(&mut self, name: &str) -> &mut Node {
        self.nodes.iter_mut().find(|n| n.name == name).unwrap()
    }

    pub fn candidates(&self) -> Vec<Candidate> {
        self.nodes
            .iter()
            .map(|n| Candidate::node(&n.name, n.labels.clone(), n.annotations.clone()))
            .collect()
    }

    fn job_name(&self, node: &Node, record: &Record) -> String {
        let action = record.state.in_progress().unwrap_or(Action::Apply);
        patchpilot_engine::naming::updater_job_name(
            &record.rollout,
            &node.name,
            action.as_str(),
            record.attempt,
            record.lock_token(),
        )
    }

    /// What the controller would observe of `node`.
    pub fn observe(&self, node: &Node) -> Observed {
        let record = Record::read(&node.annotations, &self.policy.name);
        let job = record.as_ref().and_then(|r| {
            r.state.in_progress()?;
            let name = self.job_name(node, r);
            node.jobs.iter().find(|j| j.name == name)
        });
        let updater = job.map(|j| {
            let done = self.now >= j.finishes;
            JobFacts {
                state: match (done, j.fails) {
                    (false, _) => JobState::Running,
                    (true, false) => JobState::Succeeded,
                    (true, true) => JobState::Failed,
                },
                finished: done.then_some(j.finishes),
                message: (done && j.fails).then(|| "BackoffLimitExceeded".to_owned()),
            }
        });
        let blocked = node
            .drain_started
            .zip(node.script.blocked_for)
            .is_some_and(|(started, blocked)| self.now < started + blocked);
        let pods: Vec<String> = (0..node.pods)
            .map(|i| format!("app/{}-pod-{i}", node.name))
            .collect();
        let live = Live::Node(NodeFacts {
            unschedulable: node.unschedulable,
            ready: node.ready,
            ready_since: Some(node.ready_since),
            boot_id: format!("boot-{}", node.boot),
            blocked: if blocked {
                pods.iter()
                    .map(|p| (p.clone(), "PodDisruptionBudget app/pdb".to_owned()))
                    .collect()
            } else {
                Vec::new()
            },
            pods_to_evict: pods,
            updater,
        });
        let healthy = node.ready && !(node.patched && node.script.unhealthy_when_patched);
        let settles_by = node.script.settling.map(|s| node.ready_since + s);
        let fatal = node.script.fatal_when_patched.filter(|(_, after)| {
            node.patched && node.ready && self.now >= node.ready_since + *after
        });
        let health = if let Some((reason, _)) = fatal {
            HealthFacts::fatal(
                reason,
                format!(
                    "podsReady: app/{}-pod-0 container app: {}",
                    node.name,
                    reason.as_str()
                ),
            )
        } else if healthy && settles_by.is_some_and(|by| self.now < by) {
            HealthFacts::settling(
                vec![format!("pods on {} are starting", node.name)],
                settles_by,
            )
        } else if healthy {
            HealthFacts::healthy()
        } else {
            HealthFacts::failing(vec![format!("{} is not healthy", node.name)])
        };
        Observed {
            live,
            health: Some(health),
        }
    }

    /// Lets the nodes move to `self.now`: jobs finish (once each), nodes reboot.
    pub fn settle(&mut self) {
        let now = self.now;
        let reboots = matches!(&self.rollout.patch.change, Change::Updater(u) if u.expect_reboot);
        for node in &mut self.nodes {
            if let Some(job) = node.jobs.last_mut()
                && job.finishes <= now
                && !job.settled
            {
                job.settled = true;
                if !job.fails {
                    node.patched = job.action == Action::Apply;
                    if reboots {
                        node.ready = false;
                        node.ready_since = job.finishes;
                        node.back_at = Some(job.finishes + node.script.reboot);
                    }
                }
            }
            if let Some(back) = node.back_at
                && back <= now
            {
                node.back_at = None;
                node.ready = true;
                node.ready_since = back;
                node.boot += 1;
            }
        }
    }

    pub fn input<'a>(
        &'a self,
        candidates: &'a [Candidate],
        namespaces: &'a Namespaces,
        observed: &'a BTreeMap<TargetId, Observed>,
        siblings: &'a [Sibling],
    ) -> Input<'a> {
        Input {
            now: self.now,
            rollout: &self.rollout,
            policy: &self.policy,
            window: self.window.as_ref(),
            superseded: self.superseded,
            stopping: self.stopping,
            siblings,
            status: &self.status,
            candidates,
            namespaces,
            observed,
        }
    }

    /// One reconcile: observe, decide (twice, checking they agree), carry out the first
    /// `keep` actions (all with `None`), and write the status unless `crash`.
    pub fn reconcile_with(&mut self, keep: Option<usize>, crash: bool) -> Decision {
        self.settle();
        let candidates = self.candidates();
        let namespaces = Namespaces::new();
        let nothing = BTreeMap::new();
        let siblings: Vec<Sibling> = self
            .others
            .iter()
            .map(|o| Sibling {
                name: o.rollout.name.clone(),
                uid: o.rollout.uid.clone(),
                hand_made: o.rollout.hand_made,
                created: o.rollout.created,
                phase: o.status.phase,
            })
            .collect();
        let probe = self.input(&candidates, &namespaces, &nothing, &siblings);
        let wanted = machine::wanted(&probe);
        let observed: BTreeMap<TargetId, Observed> = self
            .nodes
            .iter()
            .filter(|n| wanted.contains(&TargetId::node(&n.name)))
            .map(|n| (TargetId::node(&n.name), self.observe(n)))
            .collect();
        let input = self.input(&candidates, &namespaces, &observed, &siblings);
        let decision = machine::decide(&input);
        assert_eq!(
            decision,
            machine::decide(&input),
            "deciding twice gave two decisions"
        );
        self.decisions += 1;
        let actions = decision.actions.len();
        for action in decision.actions.iter().take(keep.unwrap_or(actions)) {
            self.carry_out(action);
        }
        if !crash {
            self.status = decision.status.clone();
            self.events.extend(decision.events.clone());
        }
        decision
    }

    pub fn reconcile(&mut self) -> Decision {
        self.reconcile_with(None, false)
    }

    /// Reconciles the other rollout `index` as [`World::reconcile_with`] does the main one:
    /// it takes the main one's place for the decision, the main one becoming its sibling.
    pub fn reconcile_other(&mut self, index: usize, keep: Option<usize>, crash: bool) -> Decision {
        self.swap(index);
        let decision = self.reconcile_with(keep, crash);
        self.swap(index);
        decision
    }

    fn swap(&mut self, index: usize) {
        let other = &mut self.others[index];
        std::mem::swap(&mut self.rollout, &mut other.rollout);
        std::mem::swap(&mut self.status, &mut other.status);
        std::mem::swap(&mut self.superseded, &mut other.superseded);
    }

    fn carry_out(&mut self, action: &TargetAction) {
        let now = self.now;
        let policy = self.policy.name.clone();
        let rollout_name = self.rollout.name.clone();
        let by = rollout_name.clone();
        let log = |target: &TargetId, what: What| Logged {
            at: now,
            target: target.to_string(),
            what,
            by: by.clone(),
        };
        let node_of = |target: &TargetId| target.as_str().trim_start_matches("Node/").to_owned();
        match action {
            TargetAction::Lock { target, record } => {
                let name = node_of(target);
                let node = self.node(&name);
                let in_place = match node.annotations.get(keys::LOCK) {
                    Some(holder) if *holder == rollout_name => true,
                    Some(_) => return,
                    None => false,
                };
                let mut record = record.clone();
                // A node this rollout cordoned and still holds stays its to uncordon.
                record.cordoned = !node.unschedulable || (in_place && record.cordoned);
                record.boot_id = Some(format!("boot-{}", node.boot));
                if record.state == RecordState::Applying {
                    record.previous_version =
                        node.annotations.get(&keys::version(&policy)).cloned();
                }
                node.unschedulable = true;
                node.drain_started = Some(now);
                node.pods = node.script.pods;
                node.annotations.insert(keys::LOCK.into(), rollout_name);
                write_record(node, &policy, record.clone());
                let entry = log(target, What::Locked(record.state.in_progress().unwrap()));
                self.log.push(entry);
            }
            TargetAction::Drain { target } => {
                let node = self.node(&node_of(target));
                let blocked = node
                    .drain_started
                    .zip(node.script.blocked_for)
                    .is_some_and(|(started, blocked)| now < started + blocked);
                if !blocked {
                    node.pods = 0;
                }
            }
            TargetAction::ForceDrain { target } => self.node(&node_of(target)).pods = 0,
            TargetAction::RunUpdater {
                target,
                job,
                action,
                ..
            } => {
                let node = self.node(&node_of(target));
                if node.jobs.iter().any(|j| &j.name == job) {
                    return;
                }
                let fails = match action {
                    Action::Apply => node.script.apply_fails,
                    Action::Rollback => node.script.rollback_fails,
                };
                let finishes = now + node.script.updater;
                node.jobs.push(Job {
                    name: job.clone(),
                    action: *action,
                    finishes,
                    fails,
                    settled: false,
                });
                let entry = log(target, What::UpdaterRun(*action));
                self.log.push(entry);
            }
            TargetAction::Uncordon { target, record } => {
                let node = self.node(&node_of(target));
                node.unschedulable = false;
                write_record(node, &policy, record.clone());
            }
            TargetAction::Release {
                target,
                record,
                version,
                uncordon,
            } => {
                let node = self.node(&node_of(target));
                write_record(node, &policy, record.clone());
                match version {
                    Some(v) => node.annotations.insert(keys::version(&policy), v.clone()),
                    None => node.annotations.remove(&keys::version(&policy)),
                };
                node.annotations.remove(keys::LOCK);
                if *uncordon {
                    node.unschedulable = false;
                }
                let entry = log(target, What::Released(record.state));
                self.log.push(entry);
            }
            TargetAction::MarkFailed { target, record } => {
                let node = self.node(&node_of(target));
                write_record(node, &policy, record.clone());
                let entry = log(target, What::MarkedFailed);
                self.log.push(entry);
            }
            TargetAction::Hold { target, record } => {
                let node = self.node(&node_of(target));
                write_record(node, &policy, record.clone());
                let entry = log(target, What::Held(record.state));
                self.log.push(entry);
            }
            TargetAction::Abandon { target, uncordon } => {
                let node = self.node(&node_of(target));
                let records = Records::read(&node.annotations, &policy);
                match Records::without(records, &rollout_name, "") {
                    Some(records) => node
                        .annotations
                        .insert(keys::record(&policy), records.to_annotation()),
                    None => node.annotations.remove(&keys::record(&policy)),
                };
                node.annotations.remove(keys::LOCK);
                if *uncordon {
                    node.unschedulable = false;
                }
                let entry = log(target, What::Abandoned);
                self.log.push(entry);
            }
            TargetAction::Unlock { target } => {
                self.node(&node_of(target)).annotations.remove(keys::LOCK);
                let entry = log(target, What::Unlocked);
                self.log.push(entry);
            }
            TargetAction::PauseRollout => self.rollout.paused = true,
            TargetAction::SetImages { .. } => panic!("nodes have no images"),
        }
    }

    /// The next instant something happens in the world by itself.
    pub fn next_event(&self) -> Option<Timestamp> {
        let now = self.now;
        self.nodes
            .iter()
            .flat_map(|n| {
                let jobs = n.jobs.iter().map(|j| j.finishes);
                let back = n.back_at.into_iter();
                let unblock = n
                    .drain_started
                    .zip(n.script.blocked_for)
                    .map(|(s, b)| s + b);
                let fatal = n
                    .script
                    .fatal_when_patched
                    .filter(|_| n.patched && n.ready)
                    .map(|(_, after)| n.ready_since + after);
                jobs.chain(back).chain(unblock).chain(fatal)
            })
            .filter(|t| *t > now)
            .min()
    }

    /// Reconciles and lets time pass to the next wake-up or world event, until the rollout
    /// finishes or nothing more can happen. Returns the final phase.
    pub fn run(&mut self, limit: usize) -> Phase {
        for _ in 0..limit {
            let decision = self.reconcile();
            if decision.status.phase.is_finished() && decision.status.in_progress.is_empty() {
                return decision.status.phase;
            }
            // Eviction retries are not progress: time has to pass for them.
            let progress = decision
                .actions
                .iter()
                .any(|a| !matches!(a, TargetAction::Drain { .. }));
            if progress {
                continue;
            }
            let next = [decision.wake_at, self.next_event()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(next) => self.now = next,
                None => return decision.status.phase,
            }
        }
        panic!(
            "the rollout did not settle in {limit} reconciles: {:?}",
            self.status.phase
        )
    }

    /// Logged entries of one kind, in order.
    pub fn logged(&self, pick: impl Fn(&What) -> bool) -> Vec<&Logged> {
        self.log.iter().filter(|l| pick(&l.what)).collect()
    }

    /// Targets that ever got a lock of `action`.
    pub fn locked(&self, action: Action) -> Vec<String> {
        self.logged(|w| *w == What::Locked(action))
            .iter()
            .map(|l| l.target.clone())
            .collect()
    }

    pub fn record(&self, name: &str) -> Option<Record> {
        let node = self.nodes.iter().find(|n| n.name == name)?;
        Record::read(&node.annotations, &self.policy.name)
    }

    pub fn cordoned(&self) -> BTreeSet<String> {
        self.nodes
            .iter()
            .filter(|n| n.unschedulable)
            .map(|n| n.name.clone())
            .collect()
    }

    pub fn event_reasons(&self) -> Vec<String> {
        self.events.iter().map(|e| e.reason.clone()).collect()
    }
}

/// Writes a rollout's record on a node the way the controller does: the rollout's record
/// becomes current, the others' are kept.
pub fn write_record(node: &mut Node, policy: &str, record: Record) {
    let previous = Records::read(&node.annotations, policy);
    let records = Records::with(previous, record, |_| true);
    node.annotations
        .insert(keys::record(policy), records.to_annotation());
}
