//! A policy's compliance: how many of its targets carry its version, how many are still to
//! be patched or failed, and whether they are overdue against the deadline of the patch's
//! classification. The policy controller reads the cluster, asks this, and writes the answer.

use jiff::Timestamp;

use crate::{
    machine::{ConditionStatus, ConditionType, Record, RecordState},
    plan::Inventory,
    units::Duration,
};

/// What a policy's compliance is judged from.
#[derive(Clone, Copy, Debug)]
pub struct Question<'a> {
    /// The policy (it keys the targets' records).
    pub policy: &'a str,
    /// The version the policy asks for.
    pub version: &'a str,
    /// The policy's current rollout: a failure counts only if this rollout recorded it.
    pub rollout: &'a str,
    /// When the patch was released (the policy's `releasedAt`, else its rollout's creation);
    /// `None`: not known yet, so nothing is overdue.
    pub released: Option<Timestamp>,
    /// How long after the release every target must carry the version.
    pub deadline: Duration,
    /// The instant compliance is judged at.
    pub now: Timestamp,
}

/// A policy's compliance over its targets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Compliance {
    /// Selected targets.
    pub total: u32,
    /// Targets that carry the version.
    pub up_to_date: u32,
    /// Targets still to be patched (failed ones not counted).
    pub pending: u32,
    /// Targets the current rollout failed on.
    pub failed: u32,
    /// Targets excluded by annotation or selector.
    pub excluded: u32,
    /// Workloads the patch has nothing to change on.
    pub not_applicable: u32,
    /// Pending or failed targets past the deadline.
    pub overdue: u32,
    /// When targets not yet patched become overdue, if that is still to come: the instant
    /// to judge again at.
    pub due: Option<Timestamp>,
}

impl Compliance {
    /// Compliance of the targets of `inventory` (taken for `question.version`).
    pub fn of(inventory: &Inventory<'_>, question: &Question<'_>) -> Self {
        let failed = inventory
            .eligible
            .iter()
            .filter(|c| {
                Record::read(&c.annotations, question.policy).is_some_and(|r| {
                    r.rollout == question.rollout
                        && matches!(r.state, RecordState::Failed | RecordState::RollbackFailed)
                })
            })
            .count();
        let eligible = inventory.eligible.len();
        let due = question
            .released
            .and_then(|r| r.saturating_add(question.deadline.signed()).ok());
        let past_due = due.is_some_and(|d| question.now >= d);
        let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        Compliance {
            total: count(inventory.selected),
            up_to_date: count(inventory.up_to_date.len()),
            pending: count(eligible - failed),
            failed: count(failed),
            excluded: count(inventory.excluded.len()),
            not_applicable: count(inventory.not_applicable.len()),
            overdue: if past_due { count(eligible) } else { 0 },
            due: due.filter(|_| !past_due),
        }
    }

    /// The targets the patch applies to: neither excluded nor not applicable.
    pub fn applicable(&self) -> u32 {
        self.total
            .saturating_sub(self.excluded)
            .saturating_sub(self.not_applicable)
    }

    /// Every target the patch applies to carries the version.
    pub fn compliant(&self) -> bool {
        self.pending == 0 && self.failed == 0
    }

    /// `upToDate/applicable`, for `kubectl get`.
    pub fn summary(&self) -> String {
        format!("{}/{}", self.up_to_date, self.applicable())
    }

    /// The policy's `Compliant` condition: status, reason and message.
    pub fn condition(&self, version: &str) -> (ConditionType, ConditionStatus, String, String) {
        let reason = if self.compliant() {
            "UpToDate"
        } else if self.overdue > 0 {
            "Overdue"
        } else {
            "Pending"
        };
        let mut message = format!(
            "{} of {} targets carry {version}; {} pending, {} failed, {} overdue",
            self.up_to_date,
            self.applicable(),
            self.pending,
            self.failed,
            self.overdue
        );
        if self.not_applicable > 0 {
            message += &format!(
                "; {} not applicable (nothing to patch)",
                self.not_applicable
            );
        }
        (
            ConditionType::Compliant,
            ConditionStatus::from_bool(self.compliant()),
            reason.into(),
            message,
        )
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::target::Candidate;

    fn candidate(name: &str, record: Option<(&str, &str)>) -> Candidate {
        let mut annotations = BTreeMap::new();
        if let Some((rollout, state)) = record {
            annotations.insert(
                crate::keys::record("os"),
                format!(
                    r#"{{"rollout":"{rollout}","attempt":0,"state":"{state}","started":"2026-11-01T00:00:00Z","since":"2026-11-01T00:00:00Z"}}"#
                ),
            );
        }
        Candidate::node(name, crate::selector::Labels::new(), annotations)
    }

    const DAY: i64 = 24 * 3600;

    fn question(released_days_ago: Option<i64>) -> Question<'static> {
        let now: Timestamp = "2026-11-20T00:00:00Z".parse().unwrap();
        Question {
            policy: "os",
            version: "v2",
            rollout: "os-2",
            released: released_days_ago.map(|d| {
                now.checked_sub(jiff::SignedDuration::from_secs(d * DAY))
                    .unwrap()
            }),
            deadline: "14d".parse().unwrap(),
            now,
        }
    }

    #[test]
    fn counts_pending_failed_and_overdue_targets() {
        let up = candidate("up", None);
        let pending = candidate("pending", None);
        let failed = candidate("failed", Some(("os-2", "Failed")));
        let rollback_failed = candidate("stuck", Some(("os-2", "RollbackFailed")));
        // A failure of an earlier rollout does not count against this one.
        let failed_before = candidate("before", Some(("os-1", "Failed")));
        let excluded = candidate("held", None);
        let nothing = candidate("redis", None);
        let inventory = Inventory {
            selected: 7,
            excluded: vec![(&excluded, "held".into())],
            not_applicable: vec![&nothing],
            up_to_date: vec![&up],
            eligible: vec![&pending, &failed, &rollback_failed, &failed_before],
        };
        // (released days ago, pending, failed, overdue, due in days, reason)
        type Row = (Option<i64>, u32, u32, u32, Option<i64>, &'static str);
        let table: [Row; 4] = [
            (None, 2, 2, 0, None, "Pending"),
            (Some(1), 2, 2, 0, Some(13), "Pending"),
            (Some(14), 2, 2, 4, None, "Overdue"),
            (Some(30), 2, 2, 4, None, "Overdue"),
        ];
        for (released, pending, failed, overdue, due_in, reason) in table {
            let q = question(released);
            let c = Compliance::of(&inventory, &q);
            assert_eq!(
                (c.total, c.up_to_date, c.excluded, c.not_applicable),
                (7, 1, 1, 1),
                "{released:?}"
            );
            assert_eq!((c.pending, c.failed, c.overdue), (pending, failed, overdue));
            assert_eq!(
                c.due,
                due_in.map(|d| q.now + jiff::SignedDuration::from_secs(d * DAY)),
                "{released:?}"
            );
            assert_eq!(c.applicable(), 5);
            assert_eq!(c.summary(), "1/5");
            let (kind, status, why, message) = c.condition("v2");
            assert_eq!(kind, ConditionType::Compliant);
            assert_eq!(status, ConditionStatus::False);
            assert_eq!(why, reason, "{released:?}");
            assert_eq!(
                message,
                format!(
                    "1 of 5 targets carry v2; 2 pending, 2 failed, {overdue} overdue; \
                     1 not applicable (nothing to patch)"
                )
            );
        }
    }

    #[test]
    fn every_applicable_target_up_to_date_is_compliant_even_past_the_deadline() {
        let up = candidate("up", None);
        let excluded = candidate("held", None);
        let inventory = Inventory {
            selected: 2,
            excluded: vec![(&excluded, "held".into())],
            not_applicable: vec![],
            up_to_date: vec![&up],
            eligible: vec![],
        };
        let c = Compliance::of(&inventory, &question(Some(30)));
        assert!(c.compliant());
        assert_eq!(c.overdue, 0);
        let (_, status, reason, message) = c.condition("v2");
        assert_eq!(
            (status, reason.as_str()),
            (ConditionStatus::True, "UpToDate")
        );
        assert_eq!(
            message,
            "1 of 1 targets carry v2; 0 pending, 0 failed, 0 overdue"
        );
    }

    #[test]
    fn no_targets_at_all_is_compliant() {
        let inventory = Inventory {
            selected: 0,
            excluded: vec![],
            not_applicable: vec![],
            up_to_date: vec![],
            eligible: vec![],
        };
        let c = Compliance::of(&inventory, &question(Some(1)));
        assert!(c.compliant());
        assert_eq!(c.summary(), "0/0");
    }
}
