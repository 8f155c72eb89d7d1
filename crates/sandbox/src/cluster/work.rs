//! What the cluster has to look at next: a queue of objects to reconcile, each at most once
//! in it, and timers that put an object back in the queue at an instant of the virtual
//! clock.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};

use jiff::Timestamp;

use super::meta::Key;

/// One thing to reconcile. Reconciling is level-based: it looks at the object as it is now
/// and does what is missing, so looking once too often is harmless.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) enum Work {
    /// A node: the node lifecycle controller (taints) and the kubelet's node status.
    Node(String),
    /// A pod on a node: its kubelet; a pod on no node: the pod garbage collector.
    Pod(Key),
    /// The scheduler: every pod waiting for a node.
    Schedule,
    /// A Deployment.
    Deployment(Key),
    /// A ReplicaSet.
    ReplicaSet(Key),
    /// A StatefulSet.
    StatefulSet(Key),
    /// A DaemonSet.
    DaemonSet(Key),
    /// A Job, and its deletion once its time to live has passed.
    Job(Key),
    /// A PodDisruptionBudget's status.
    Budget(Key),
}

/// Work to do, first in first out, each item at most once.
#[derive(Default)]
pub(super) struct Queue {
    order: VecDeque<Work>,
    queued: HashSet<Work>,
}

impl Queue {
    /// Adds work unless it is already waiting.
    pub fn push(&mut self, work: Work) {
        if self.queued.insert(work.clone()) {
            self.order.push_back(work);
        }
    }

    /// The next work.
    pub fn pop(&mut self) -> Option<Work> {
        let work = self.order.pop_front()?;
        self.queued.remove(&work);
        Some(work)
    }
}

/// Work due at instants of the virtual clock. Each work keeps only its earliest instant:
/// reconciling it then schedules whatever later instant still matters.
#[derive(Default)]
pub(super) struct Timers {
    due: BTreeSet<(Timestamp, Work)>,
    at: HashMap<Work, Timestamp>,
}

impl Timers {
    /// Asks for `work` to be reconciled at `at`.
    pub fn schedule(&mut self, work: Work, at: Timestamp) {
        match self.at.get(&work) {
            Some(earlier) if *earlier <= at => {}
            Some(later) => {
                self.due.remove(&(*later, work.clone()));
                self.due.insert((at, work.clone()));
                self.at.insert(work, at);
            }
            None => {
                self.due.insert((at, work.clone()));
                self.at.insert(work, at);
            }
        }
    }

    /// The earliest instant something is due.
    pub fn next(&self) -> Option<Timestamp> {
        self.due.first().map(|(at, _)| *at)
    }

    /// Takes the work due at or before `now`.
    pub fn take_due(&mut self, now: Timestamp) -> Vec<Work> {
        let mut due = Vec::new();
        while let Some((at, _)) = self.due.first()
            && *at <= now
        {
            if let Some((_, work)) = self.due.pop_first() {
                self.at.remove(&work);
                due.push(work);
            }
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_queue_holds_each_work_once_in_order() {
        let mut queue = Queue::default();
        queue.push(Work::Schedule);
        queue.push(Work::Node("a".into()));
        queue.push(Work::Schedule);
        assert_eq!(queue.pop(), Some(Work::Schedule));
        queue.push(Work::Schedule);
        assert_eq!(queue.pop(), Some(Work::Node("a".into())));
        assert_eq!(queue.pop(), Some(Work::Schedule));
        assert_eq!(queue.pop(), None);
    }

    #[test]
    fn timers_keep_the_earliest_instant_of_each_work() {
        let t0: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let later = |s: i64| t0 + jiff::SignedDuration::from_secs(s);
        let mut timers = Timers::default();
        timers.schedule(Work::Schedule, later(10));
        timers.schedule(Work::Schedule, later(20));
        timers.schedule(Work::Node("a".into()), later(5));
        timers.schedule(Work::Node("a".into()), later(3));
        assert_eq!(timers.next(), Some(later(3)));
        assert_eq!(timers.take_due(later(4)), vec![Work::Node("a".into())]);
        assert!(timers.take_due(later(9)).is_empty());
        assert_eq!(timers.take_due(later(30)), vec![Work::Schedule]);
        assert_eq!(timers.next(), None);
    }
}
