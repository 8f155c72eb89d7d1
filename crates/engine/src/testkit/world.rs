//! A small simulated world of nodes for driving the rollout state machine the way the
//! controller drives a cluster: observe, decide, carry out the actions, write the status,
//! let time pass. It records what happened, like an audit log, so that tests check outcomes
//! from the world's side rather than from the engine's own counters.
//!
//! Kept in one file (about 660 lines): the world is one simulation loop (observe, decide, act,
//! let time pass) over one set of nodes; its parts are not used apart.

use std::collections::{BTreeMap, BTreeSet};

use jiff::{SignedDuration, Timestamp};

use crate::{
    keys,
    machine::{
        self, Action, Change, Decision, FatalReason, HealthFacts, Input, JobFacts, JobState, Live,
        NodeFacts, Observed, Record, RecordState, Records, Rollout, Sibling, Status, TargetAction,
    },
    plan::Namespaces,
    policy::Policy,
    rollout::Phase,
    selector::Labels,
    target::{Candidate, TargetId},
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
    /// The Job's name, as the controller names it.
    pub name: String,
    /// What it does: apply or roll back.
    pub action: Action,
    /// When it finishes.
    pub finishes: Timestamp,
    /// Whether it fails.
    pub fails: bool,
    /// Its outcome has been applied to the node.
    pub settled: bool,
}

/// A simulated node.
#[derive(Clone, Debug)]
pub struct Node {
    /// The node's name.
    pub name: String,
    /// Its labels.
    pub labels: Labels,
    /// Its annotations: locks, records, versions.
    pub annotations: BTreeMap<String, String>,
    /// Cordoned.
    pub unschedulable: bool,
    /// Its boot number; a reboot adds one.
    pub boot: u32,
    /// Ready.
    pub ready: bool,
    /// Since when it has been Ready.
    pub ready_since: Timestamp,
    /// Pods still on it.
    pub pods: u32,
    /// When its drain started.
    pub drain_started: Option<Timestamp>,
    /// The updater Jobs that ran or run on it.
    pub jobs: Vec<Job>,
    /// When it comes back from a reboot.
    pub back_at: Option<Timestamp>,
    /// The patch is on the node (the updater applied it and no rollback removed it).
    pub patched: bool,
    /// How it behaves when patched.
    pub script: Script,
}

/// One thing the world saw happen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Logged {
    /// When.
    pub at: Timestamp,
    /// The target.
    pub target: String,
    /// What happened.
    pub what: What,
    /// The rollout that acted.
    pub by: String,
}

/// Another rollout of the world's policy, decided in turn with the main one.
#[derive(Clone, Debug)]
pub struct Other {
    /// The rollout.
    pub rollout: Rollout,
    /// Its status.
    pub status: Status,
    /// Whether a newer rollout superseded it.
    pub superseded: bool,
}

/// What happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum What {
    /// A lock for this action was taken.
    Locked(Action),
    /// The lock was let go, leaving the record in this state.
    Released(RecordState),
    /// The record was kept in this state under the lock.
    Held(RecordState),
    /// The record was abandoned.
    Abandoned,
    /// The target was marked failed.
    MarkedFailed,
    /// The lock was removed.
    Unlocked,
    /// An updater Job for this action ran.
    UpdaterRun(Action),
}

/// The world.
pub struct World {
    /// The current instant.
    pub now: Timestamp,
    /// The nodes.
    pub nodes: Vec<Node>,
    /// The main rollout.
    pub rollout: Rollout,
    /// Its status, as last written.
    pub status: Status,
    /// The policy.
    pub policy: Policy,
    /// Its window, if any.
    pub window: Option<Window>,
    /// Whether a newer rollout superseded the main one.
    pub superseded: bool,
    /// The policy's other rollouts.
    pub others: Vec<Other>,
    /// The main rollout or its policy is being deleted.
    pub stopping: bool,
    /// What happened, in order.
    pub log: Vec<Logged>,
    /// The events the engine asked for.
    pub events: Vec<machine::Event>,
    /// How many decisions were made.
    pub decisions: usize,
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
            rollout: Rollout::test(start),
            status: Status::default(),
            policy: Policy::test(),
            window: None,
            superseded: false,
            others: Vec::new(),
            stopping: false,
            log: Vec::new(),
            events: Vec::new(),
            decisions: 0,
        }
    }

    /// The node `name`; panics if there is none.
    pub fn node(&mut self, name: &str) -> &mut Node {
        self.nodes.iter_mut().find(|n| n.name == name).unwrap()
    }

    /// The nodes as the controller would list them.
    pub fn candidates(&self) -> Vec<Candidate> {
        self.nodes
            .iter()
            .map(|n| Candidate::node(&n.name, n.labels.clone(), n.annotations.clone()))
            .collect()
    }

    fn job_name(&self, node: &Node, record: &Record) -> String {
        let action = record.state.in_progress().unwrap_or(Action::Apply);
        crate::naming::updater_job_name(
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

    /// The engine's input for the main rollout.
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

    /// Reconciles the main rollout once, without crashing.
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
                // As the operator takes it.
                let Ok(in_place) =
                    crate::untrusted::lock_holder(&node.annotations, &policy, &rollout_name)
                else {
                    return;
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
                node.annotations.insert(keys::LOCK.into(), rollout_name);
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

    /// The policy's current record on node `name`.
    pub fn record(&self, name: &str) -> Option<Record> {
        let node = self.nodes.iter().find(|n| n.name == name)?;
        Record::read(&node.annotations, &self.policy.name)
    }

    /// The cordoned nodes.
    pub fn cordoned(&self) -> BTreeSet<String> {
        self.nodes
            .iter()
            .filter(|n| n.unschedulable)
            .map(|n| n.name.clone())
            .collect()
    }

    /// The reasons of the events asked for, in order.
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
