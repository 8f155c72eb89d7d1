//! The calendar of planned patching built from the cluster's objects: the engine's
//! [`Schedule`] from MaintenanceWindows, PatchPolicies and PatchRollouts, however they were
//! read. `kubectl patchpilot calendar` reads them from the API server; the operator's
//! `/calendar.ics` from its caches ([`feed`]).

use std::fmt;

use jiff::Timestamp;
use kube::ResourceExt;
use patchpilot_api::{MaintenanceWindow, PatchPolicy, PatchRollout};
use patchpilot_clock::SharedClock;
use patchpilot_engine::{
    calendar::{self, Approval, Freeze, Horizon, Planned, Schedule, WindowPlan},
    policy::ApprovalMode,
    rollout::Phase,
    window::Interval,
};

use crate::{context::Stores, metrics::CalendarFeed};

/// Why something is missing from the calendar.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// A window that cannot be evaluated: it is left out, with what its policies plan.
    InvalidWindow {
        /// The MaintenanceWindow.
        window: String,
        /// What is wrong with it.
        why: String,
    },
    /// A policy names a window that does not exist: its rollouts are in no window.
    MissingWindow {
        /// The PatchPolicy.
        policy: String,
        /// The MaintenanceWindow it names.
        window: String,
    },
}

impl Problem {
    /// The window concerned.
    pub fn window(&self) -> &str {
        match self {
            Problem::InvalidWindow { window, .. } | Problem::MissingWindow { window, .. } => window,
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::InvalidWindow { window, why } => write!(
                f,
                "MaintenanceWindow {window} is invalid, left out of the calendar: {why}"
            ),
            Problem::MissingWindow { policy, window } => write!(
                f,
                "PatchPolicy {policy} names MaintenanceWindow {window}, which does not exist: its rollouts are in no window"
            ),
        }
    }
}

/// Each valid window, by name, with its freezes and the rollouts planned in it: those not
/// ended of the policies naming it. Policies without a window are in none. What is left
/// out, and why, comes second.
pub fn schedule<'a>(
    windows: impl IntoIterator<Item = &'a MaintenanceWindow>,
    policies: impl IntoIterator<Item = &'a PatchPolicy>,
    rollouts: impl IntoIterator<Item = &'a PatchRollout>,
) -> (Schedule, Vec<Problem>) {
    let mut windows: Vec<&MaintenanceWindow> = windows.into_iter().collect();
    windows.sort_by_key(|w| w.name_any());
    let mut policies: Vec<&PatchPolicy> = policies.into_iter().collect();
    policies.sort_by_key(|p| p.name_any());
    let mut rollouts: Vec<&PatchRollout> = rollouts
        .into_iter()
        .filter(|r| !phase(r).is_finished())
        .collect();
    rollouts.sort_by_key(|r| r.name_any());

    let mut problems = Vec::new();
    for policy in &policies {
        if let Some(window) = &policy.spec.maintenance_window
            && !windows.iter().any(|w| &w.name_any() == window)
        {
            problems.push(Problem::MissingWindow {
                policy: policy.name_any(),
                window: window.clone(),
            });
        }
    }
    let mut schedule = Schedule::default();
    for window in windows {
        let name = window.name_any();
        let engine = match window.spec.to_engine() {
            Ok(engine) => engine,
            Err(invalid) => {
                problems.push(Problem::InvalidWindow {
                    window: name,
                    why: invalid.to_string(),
                });
                continue;
            }
        };
        let freezes = window
            .spec
            .exclusions
            .iter()
            .filter_map(|exclusion| {
                Some(Freeze {
                    interval: Interval::new(exclusion.start.0, exclusion.end.0)?,
                    reason: exclusion.reason.clone(),
                })
            })
            .collect();
        let planned = policies
            .iter()
            .filter(|p| p.spec.maintenance_window.as_deref() == Some(name.as_str()))
            .flat_map(|policy| {
                let policy_name = policy.name_any();
                rollouts
                    .iter()
                    .filter(move |r| r.spec.policy == policy_name)
                    .map(move |rollout| planned(policy, rollout))
            })
            .collect();
        schedule.windows.push(WindowPlan {
            name,
            window: engine,
            freezes,
            rollouts: planned,
        });
    }
    (schedule, problems)
}

/// The calendar the operator serves: built from its caches on each request, on its clock.
pub fn feed(stores: Stores, clock: SharedClock) -> CalendarFeed {
    std::sync::Arc::new(move |horizon: Horizon| {
        let (windows, policies, rollouts) = (
            stores.windows.state(),
            stores.policies.state(),
            stores.rollouts.state(),
        );
        let (schedule, _) = schedule(
            windows.iter().map(AsRef::as_ref),
            policies.iter().map(AsRef::as_ref),
            rollouts.iter().map(AsRef::as_ref),
        );
        calendar::ics(&schedule, horizon, clock.now())
    })
}

fn phase(rollout: &PatchRollout) -> Phase {
    rollout.status.as_ref().map(|s| s.phase).unwrap_or_default()
}

/// A rollout not ended as the calendar shows it.
fn planned(policy: &PatchPolicy, rollout: &PatchRollout) -> Planned {
    let status = rollout.status.as_ref();
    let patch = &rollout.spec.patch;
    Planned {
        rollout: rollout.name_any(),
        policy: policy.name_any(),
        version: patch.version.clone(),
        classification: patch.classification,
        change_ref: rollout.spec.change_ref.clone(),
        // Counted once the operator has looked at the rollout.
        targets: status
            .filter(|s| s.observed_generation.is_some())
            .map(|s| s.targets.pending + s.targets.in_progress),
        approval: approval(policy, rollout),
        emergency: patch.emergency,
        phase: phase(rollout),
        started: status.and_then(|s| s.started_at.as_ref()).map(|t| t.0),
        suspended: policy.spec.suspend,
    }
}

/// Whether a rollout is approved, as the engine judges it: `spec.approved`, a phase past
/// approval, or the instant of automatic approval (`releasedAt`, else the rollout's
/// creation, plus the delay).
fn approval(policy: &PatchPolicy, rollout: &PatchRollout) -> Approval {
    let past_approval = !matches!(phase(rollout), Phase::Pending | Phase::AwaitingApproval);
    if rollout.spec.approved || past_approval {
        return Approval::Given;
    }
    let Some(automatic) = policy
        .spec
        .approval
        .as_ref()
        .filter(|a| a.mode == ApprovalMode::Automatic)
    else {
        return Approval::Awaited;
    };
    let released: Option<Timestamp> = rollout
        .spec
        .patch
        .released_at
        .as_ref()
        .or(rollout.metadata.creation_timestamp.as_ref())
        .map(|t| t.0);
    match released {
        Some(released) => Approval::Automatic(
            released
                .saturating_add(automatic.delay.unwrap_or_default().signed())
                .unwrap_or(released),
        ),
        None => Approval::Awaited,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(name: &str, exclusions: &str) -> MaintenanceWindow {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "patchpilot.dev/v1alpha1",
            "kind": "MaintenanceWindow",
            "metadata": {"name": name},
            "spec": {
                "timeZone": "Europe/Berlin",
                "recurrences": [{"start": "01:00", "duration": "4h"}],
                "exclusions": serde_json::from_str::<serde_json::Value>(exclusions).unwrap(),
            },
        }))
        .unwrap()
    }

    fn policy(name: &str, window: Option<&str>, approval: &str) -> PatchPolicy {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "patchpilot.dev/v1alpha1",
            "kind": "PatchPolicy",
            "metadata": {"name": name},
            "spec": {
                "targets": {"nodes": {}},
                "patch": {"version": "v1"},
                "maintenanceWindow": window,
                "approval": serde_json::from_str::<serde_json::Value>(approval).unwrap(),
            },
        }))
        .unwrap()
    }

    fn rollout(name: &str, policy: &str, status: serde_json::Value) -> PatchRollout {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "patchpilot.dev/v1alpha1",
            "kind": "PatchRollout",
            "metadata": {"name": name, "creationTimestamp": "2026-11-27T10:00:00Z"},
            "spec": {
                "policy": policy,
                "patch": {"version": "v2", "classification": "Critical"},
                "changeRef": "CHG-7",
            },
            "status": status,
        }))
        .unwrap()
    }

    #[test]
    fn windows_carry_their_freezes_and_the_rollouts_not_ended_of_their_policies() {
        let windows = [
            window(
                "nights",
                r#"[{"start": "2026-12-20T00:00:00+01:00", "end": "2027-01-04T00:00:00+01:00", "reason": "Year-end"}]"#,
            ),
            window("broken", "[]"),
        ];
        let mut broken = windows[1].clone();
        broken.spec.time_zone = "Mars/Olympus".into();
        let windows = [windows[0].clone(), broken];
        let policies = [
            policy(
                "os",
                Some("nights"),
                r#"{"mode": "Automatic", "delay": "2h"}"#,
            ),
            policy("db", Some("nights"), r#"{"mode": "Manual"}"#),
            policy("anytime", None, "{}"),
            policy("lost", Some("gone"), "{}"),
        ];
        let counted = serde_json::json!({
            "phase": "Progressing", "observedGeneration": 1,
            "targets": {"total": 9, "pending": 4, "inProgress": 1, "updated": 4},
            "startedAt": "2026-11-27T11:00:00Z",
        });
        let rollouts = [
            rollout(
                "os-2",
                "os",
                serde_json::json!({"phase": "AwaitingApproval"}),
            ),
            rollout("os-1", "os", serde_json::json!({"phase": "Superseded"})),
            rollout("db-1", "db", counted),
            rollout("anytime-1", "anytime", serde_json::json!({})),
        ];
        let (schedule, problems) = schedule(&windows, &policies, &rollouts);
        assert_eq!(
            problems.iter().map(ToString::to_string).collect::<Vec<_>>(),
            [
                "PatchPolicy lost names MaintenanceWindow gone, which does not exist: its rollouts are in no window",
                "MaintenanceWindow broken is invalid, left out of the calendar: spec.timeZone: unknown time zone \"Mars/Olympus\"",
            ]
        );
        assert_eq!(problems[1].window(), "broken");
        let [nights] = schedule.windows.as_slice() else {
            panic!("{:?}", schedule.windows)
        };
        assert_eq!(nights.name, "nights");
        assert_eq!(nights.freezes.len(), 1);
        assert_eq!(nights.freezes[0].reason.as_deref(), Some("Year-end"));
        let planned: Vec<(&str, &str, Option<u32>, Approval)> = nights
            .rollouts
            .iter()
            .map(|p| (p.rollout.as_str(), p.policy.as_str(), p.targets, p.approval))
            .collect();
        // The superseded rollout has ended; policies come by name.
        assert_eq!(
            planned,
            [
                ("db-1", "db", Some(5), Approval::Given),
                (
                    "os-2",
                    "os",
                    None,
                    Approval::Automatic("2026-11-27T12:00:00Z".parse().unwrap())
                ),
            ]
        );
        let db = &nights.rollouts[0];
        assert_eq!(db.change_ref.as_deref(), Some("CHG-7"));
        assert_eq!(db.started, Some("2026-11-27T11:00:00Z".parse().unwrap()));
        assert_eq!(db.phase, Phase::Progressing);
    }

    #[test]
    fn a_manual_rollout_awaits_a_person() {
        let policy = policy("db", Some("nights"), r#"{"mode": "Manual"}"#);
        let mut waiting = rollout(
            "db-1",
            "db",
            serde_json::json!({"phase": "AwaitingApproval"}),
        );
        assert_eq!(approval(&policy, &waiting), Approval::Awaited);
        waiting.spec.approved = true;
        assert_eq!(approval(&policy, &waiting), Approval::Given);
    }
}
