//! What a Notifier owes: the notices of the rollouts whose policy names it, that it has not
//! delivered yet, in the order they are delivered. Pure: the reconcile reads the caches and
//! hands them here.
//!
//! A Notifier delivers in order — the notices of all its rollouts, oldest first — so what it
//! has delivered of each rollout is a watermark (`status.delivered[].through`): every notice
//! of that rollout up to that number. A notice refused by the destination (4xx) moves the
//! watermark too: it is not retried.

use std::collections::BTreeSet;

use jiff::Timestamp;
use patchpilot_api::{Delivered, Notice, PatchPolicy, PatchRollout};

/// A notice owed to a notifier.
#[derive(Clone, Copy, Debug)]
pub struct Due<'a> {
    /// The rollout it is of.
    pub rollout: &'a PatchRollout,
    /// The notice.
    pub notice: &'a Notice,
}

impl Due<'_> {
    /// The rollout's name.
    pub fn rollout_name(&self) -> &str {
        self.rollout.metadata.name.as_deref().unwrap_or_default()
    }
}

/// Whether `policy` sends its notices to `notifier`.
pub fn names(policy: &PatchPolicy, notifier: &str) -> bool {
    policy.spec.notifiers().iter().any(|name| name == notifier)
}

/// How far the notices of `rollout` were delivered.
pub fn through(delivered: &[Delivered], rollout: &str) -> u32 {
    delivered
        .iter()
        .find(|d| d.rollout == rollout)
        .map_or(0, |d| d.through)
}

/// The notices owed to `notifier`, oldest first (by time, then rollout, then number): those
/// of the rollouts whose policy (among `policies`) names it, past the watermark, and not
/// older than `since` (the notifier's creation: a new destination is not sent the past).
pub fn due<'a>(
    notifier: &str,
    since: Timestamp,
    delivered: &[Delivered],
    policies: &[impl AsRef<PatchPolicy>],
    rollouts: &'a [impl AsRef<PatchRollout>],
) -> Vec<Due<'a>> {
    let sending: BTreeSet<&str> = policies
        .iter()
        .map(AsRef::as_ref)
        .filter(|p| names(p, notifier))
        .filter_map(|p| p.metadata.name.as_deref())
        .collect();
    let mut due: Vec<Due<'a>> = rollouts
        .iter()
        .map(AsRef::as_ref)
        .filter(|r| sending.contains(r.spec.policy.as_str()))
        .flat_map(|rollout| {
            let name = rollout.metadata.name.as_deref().unwrap_or_default();
            let from = through(delivered, name);
            rollout
                .status
                .iter()
                .flat_map(|s| s.notifications.iter())
                .flat_map(|n| n.notices.iter())
                .filter(move |n| n.seq > from && n.time.0 >= since)
                .map(move |notice| Due { rollout, notice })
        })
        .collect();
    due.sort_by(|a, b| {
        (a.notice.time.0, a.rollout_name(), a.notice.seq).cmp(&(
            b.notice.time.0,
            b.rollout_name(),
            b.notice.seq,
        ))
    });
    due
}

/// Moves the watermark of `rollout` to `seq`.
pub fn advance(delivered: &mut Vec<Delivered>, rollout: &str, seq: u32) {
    match delivered.iter_mut().find(|d| d.rollout == rollout) {
        Some(entry) => entry.through = entry.through.max(seq),
        None => {
            delivered.push(Delivered {
                rollout: rollout.to_owned(),
                through: seq,
            });
            delivered.sort_by(|a, b| a.rollout.cmp(&b.rollout));
        }
    }
}

/// Forgets the watermarks of rollouts that no longer exist: their notices went with them.
pub fn prune(delivered: &mut Vec<Delivered>, exists: impl Fn(&str) -> bool) {
    delivered.retain(|d| exists(&d.rollout));
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use patchpilot_api::RolloutNotifications;
    use patchpilot_engine::notify::NoticeKind;
    use serde_json::json;

    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn policy(name: &str, notifiers: &[&str]) -> Arc<PatchPolicy> {
        Arc::new(
            serde_json::from_value(json!({
                "apiVersion": "patchpilot.dev/v1alpha1",
                "kind": "PatchPolicy",
                "metadata": {"name": name},
                "spec": {
                    "targets": {"nodes": {}},
                    "patch": {"version": "v2", "updater": {"template": {"spec": {"containers": [{"name": "u", "image": "u:1"}]}}}},
                    "notifications": {"notifiers": notifiers},
                },
            }))
            .unwrap(),
        )
    }

    fn rollout(name: &str, policy: &str, notices: &[(u32, &str)]) -> Arc<PatchRollout> {
        let mut rollout: PatchRollout = serde_json::from_value(json!({
            "apiVersion": "patchpilot.dev/v1alpha1",
            "kind": "PatchRollout",
            "metadata": {"name": name},
            "spec": {"policy": policy, "patch": {"version": "v2", "updater": {"template": {"spec": {"containers": [{"name": "u", "image": "u:1"}]}}}}},
        }))
        .unwrap();
        rollout.status = Some(patchpilot_api::PatchRolloutStatus {
            notifications: Some(RolloutNotifications {
                seq: notices.last().map_or(0, |n| n.0),
                notices: notices
                    .iter()
                    .map(|(seq, time)| Notice {
                        seq: *seq,
                        kind: NoticeKind::WaveStarted,
                        time: Time(at(time)),
                        message: format!("{name} {seq}"),
                        target: None,
                        opening: None,
                    })
                    .collect(),
                ..Default::default()
            }),
            ..Default::default()
        });
        Arc::new(rollout)
    }

    fn ids(due: &[Due<'_>]) -> Vec<String> {
        due.iter()
            .map(|d| format!("{}/{}", d.rollout_name(), d.notice.seq))
            .collect()
    }

    #[test]
    fn notices_are_owed_oldest_first_across_rollouts_past_the_watermark() {
        let policies = [policy("os", &["chat"]), policy("web", &["chat", "pager"])];
        let rollouts = [
            rollout(
                "os-1",
                "os",
                &[(1, "2026-11-28T00:00:00Z"), (2, "2026-11-28T00:10:00Z")],
            ),
            rollout(
                "web-1",
                "web",
                &[(1, "2026-11-28T00:05:00Z"), (2, "2026-11-28T00:10:00Z")],
            ),
            rollout("db-1", "db", &[(1, "2026-11-28T00:01:00Z")]),
        ];
        let delivered = [Delivered {
            rollout: "os-1".into(),
            through: 1,
        }];
        let since = at("2026-11-01T00:00:00Z");
        let owed = due("chat", since, &delivered, &policies, &rollouts);
        // Same instant: by rollout name, then number.
        assert_eq!(ids(&owed), ["web-1/1", "os-1/2", "web-1/2"]);
        let owed = due("pager", since, &[], &policies, &rollouts);
        assert_eq!(ids(&owed), ["web-1/1", "web-1/2"]);
        assert!(due("nobody", since, &[], &policies, &rollouts).is_empty());
    }

    #[test]
    fn a_new_notifier_is_not_sent_the_past() {
        let policies = [policy("os", &["chat"])];
        let rollouts = [rollout(
            "os-1",
            "os",
            &[(1, "2026-11-28T00:00:00Z"), (2, "2026-11-28T00:10:00Z")],
        )];
        let owed = due(
            "chat",
            at("2026-11-28T00:05:00Z"),
            &[],
            &policies,
            &rollouts,
        );
        assert_eq!(ids(&owed), ["os-1/2"]);
    }

    #[test]
    fn watermarks_only_move_forward_and_go_with_their_rollouts() {
        let mut delivered = Vec::new();
        advance(&mut delivered, "web-1", 2);
        advance(&mut delivered, "os-1", 3);
        advance(&mut delivered, "os-1", 1);
        assert_eq!(through(&delivered, "os-1"), 3);
        assert_eq!(
            delivered
                .iter()
                .map(|d| d.rollout.as_str())
                .collect::<Vec<_>>(),
            ["os-1", "web-1"]
        );
        prune(&mut delivered, |r| r == "web-1");
        assert_eq!(through(&delivered, "os-1"), 0);
        assert_eq!(through(&delivered, "web-1"), 2);
    }
}
