//! Conditions, computed by a pure function that keeps `lastTransitionTime` unless the status
//! really flips (the Kubernetes API conventions; kstatus reads `Ready`, `Reconciling` and
//! `Stalled`).

use jiff::Timestamp;

/// The conditions patchpilot sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ConditionType {
    /// The object reached its goal (kstatus).
    Ready,
    /// The operator is making changes (kstatus).
    Reconciling,
    /// It cannot go on without a person (kstatus).
    Stalled,
    /// A rollout is approved.
    Approved,
    /// The maintenance window allows targets to start.
    WindowOpen,
    /// No target has failed.
    Healthy,
    /// Every target of a policy carries its version.
    Compliant,
}

impl ConditionType {
    /// The condition's `type`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ConditionType::Ready => "Ready",
            ConditionType::Reconciling => "Reconciling",
            ConditionType::Stalled => "Stalled",
            ConditionType::Approved => "Approved",
            ConditionType::WindowOpen => "WindowOpen",
            ConditionType::Healthy => "Healthy",
            ConditionType::Compliant => "Compliant",
        }
    }

    /// The type named `text`, if patchpilot sets it.
    pub fn parse(text: &str) -> Option<Self> {
        [
            ConditionType::Ready,
            ConditionType::Reconciling,
            ConditionType::Stalled,
            ConditionType::Approved,
            ConditionType::WindowOpen,
            ConditionType::Healthy,
            ConditionType::Compliant,
        ]
        .into_iter()
        .find(|t| t.as_str() == text)
    }
}

/// A condition's status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConditionStatus {
    /// It holds.
    True,
    /// It does not.
    False,
    /// Not known.
    Unknown,
}

impl ConditionStatus {
    /// `True` or `False`.
    pub const fn from_bool(value: bool) -> Self {
        if value {
            ConditionStatus::True
        } else {
            ConditionStatus::False
        }
    }

    /// The status as Kubernetes writes it.
    pub const fn as_str(self) -> &'static str {
        match self {
            ConditionStatus::True => "True",
            ConditionStatus::False => "False",
            ConditionStatus::Unknown => "Unknown",
        }
    }
}

/// One condition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Condition {
    /// Its type.
    pub kind: ConditionType,
    /// Its status.
    pub status: ConditionStatus,
    /// A CamelCase reason.
    pub reason: String,
    /// A sentence.
    pub message: String,
    /// When the status last changed.
    pub last_transition: Timestamp,
    /// The generation it describes.
    pub observed_generation: i64,
}

/// The conditions to write: `desired` (type, status, reason, message), each keeping the
/// `lastTransitionTime` of `previous` when its status is unchanged, else `now`.
pub fn compute_conditions(
    previous: &[Condition],
    desired: Vec<(ConditionType, ConditionStatus, String, String)>,
    generation: i64,
    now: Timestamp,
) -> Vec<Condition> {
    desired
        .into_iter()
        .map(|(kind, status, reason, message)| {
            let last_transition = previous
                .iter()
                .find(|old| old.kind == kind && old.status == status)
                .map_or(now, |old| old.last_transition);
            Condition {
                kind,
                status,
                reason,
                message,
                last_transition,
                observed_generation: generation,
            }
        })
        .collect()
}

/// What a policy's current rollout shows, for the policy's own conditions.
#[derive(Clone, Copy, Debug)]
pub struct CurrentRollout<'a> {
    /// Its name.
    pub name: &'a str,
    /// Its phase.
    pub phase: crate::rollout::Phase,
    /// Its conditions.
    pub conditions: &'a [Condition],
    /// Its status message.
    pub message: &'a str,
}

impl CurrentRollout<'_> {
    fn condition(&self, kind: ConditionType) -> Option<&Condition> {
        self.conditions.iter().find(|c| c.kind == kind)
    }

    fn holds(&self, kind: ConditionType) -> bool {
        self.condition(kind)
            .is_some_and(|c| c.status == ConditionStatus::True)
    }
}

/// A policy's `Ready`, `Reconciling` and `Stalled`, from its current rollout (named
/// `current`; `rollout` is `None` while it is being created). One mapping, in
/// docs/rollouts.md:
///
/// - the rollout needs a person (`Stalled`: rolled back, failed, halted, invalid) → the
///   policy is `Stalled`, with the rollout's reason;
/// - the rollout is changing targets (`Progressing`, `RollingBack`), or is being created or
///   waits for an object that does not exist yet → the policy is `Reconciling`;
/// - the rollout succeeded, or waits for an approval, a window, a promotion, another
///   rollout, or is paused or suspended → the policy is `Ready`, its reason saying what the
///   rollout waits for. A policy is accepted and scheduled then; it is not "in progress"
///   for the weeks until its window opens, so that a GitOps health check ends.
///
/// `Ready` and `Stalled` are never both True, nor `Ready` and `Reconciling`.
pub fn policy_conditions(
    current: &str,
    rollout: Option<&CurrentRollout<'_>>,
) -> Vec<(ConditionType, ConditionStatus, String, String)> {
    use crate::rollout::Phase;
    use ConditionStatus as CS;
    use ConditionType as CT;
    let Some(rollout) = rollout else {
        let message = format!("creating rollout {current}");
        return vec![
            (
                CT::Ready,
                CS::False,
                "RolloutPending".into(),
                message.clone(),
            ),
            (CT::Reconciling, CS::True, "RolloutPending".into(), message),
            (
                CT::Stalled,
                CS::False,
                "RolloutPending".into(),
                String::new(),
            ),
        ];
    };
    let message = format!("rollout {current}: {}", rollout.message);
    let phase = format!("{:?}", rollout.phase);
    let reason_of = |kind: ConditionType| {
        rollout
            .condition(kind)
            .map_or_else(|| phase.clone(), |c| c.reason.clone())
    };
    let stalled =
        rollout.holds(CT::Stalled) || matches!(rollout.phase, Phase::RolledBack | Phase::Failed);
    let changing = !stalled
        && match rollout.phase {
            Phase::Progressing | Phase::RollingBack => true,
            // Just created, or waiting for an object that does not exist yet.
            Phase::Pending => true,
            Phase::AwaitingApproval
            | Phase::Scheduled
            | Phase::Paused
            | Phase::Succeeded
            | Phase::RolledBack
            | Phase::Failed
            | Phase::Superseded => false,
        };
    if stalled {
        let reason = reason_of(CT::Stalled);
        vec![
            (CT::Ready, CS::False, reason.clone(), message.clone()),
            (CT::Reconciling, CS::False, reason.clone(), String::new()),
            (CT::Stalled, CS::True, reason, message),
        ]
    } else if changing {
        let reason = reason_of(CT::Reconciling);
        vec![
            (CT::Ready, CS::False, reason.clone(), message.clone()),
            (CT::Reconciling, CS::True, reason.clone(), message),
            (CT::Stalled, CS::False, reason, String::new()),
        ]
    } else {
        let reason = match rollout.phase {
            Phase::Succeeded => phase.clone(),
            _ => reason_of(CT::Reconciling),
        };
        vec![
            (CT::Ready, CS::True, reason.clone(), message),
            (CT::Reconciling, CS::False, reason.clone(), String::new()),
            (CT::Stalled, CS::False, reason, String::new()),
        ]
    }
}

/// A policy's `Ready`, `Reconciling` and `Stalled` once its current rollout `current` was
/// deleted while the policy still asks for its patch: nothing rolls it out until a person
/// changes the policy, so the policy is `Stalled`.
pub fn deleted_rollout_conditions(
    current: &str,
) -> Vec<(ConditionType, ConditionStatus, String, String)> {
    stalled_conditions(
        "RolloutDeleted",
        format!(
            "rollout {current} was deleted; change the policy's spec (a new \
             spec.patch.version, or any other field) to roll its patch out again"
        ),
    )
}

/// `Ready`, `Reconciling` and `Stalled` of an object that needs a person (an invalid spec,
/// a deleted rollout): `Stalled`, with `reason` and `message`.
pub fn stalled_conditions(
    reason: &str,
    message: String,
) -> Vec<(ConditionType, ConditionStatus, String, String)> {
    use ConditionStatus as CS;
    use ConditionType as CT;
    vec![
        (CT::Ready, CS::False, reason.into(), message.clone()),
        (CT::Reconciling, CS::False, reason.into(), String::new()),
        (CT::Stalled, CS::True, reason.into(), message),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transition_time_moves_only_when_the_status_flips() {
        let t0: Timestamp = "2026-11-22T00:00:00Z".parse().unwrap();
        let t1: Timestamp = "2026-11-22T01:00:00Z".parse().unwrap();
        let first = compute_conditions(
            &[],
            vec![(
                ConditionType::Ready,
                ConditionStatus::False,
                "Progressing".into(),
                "wave 1".into(),
            )],
            1,
            t0,
        );
        assert_eq!(first[0].last_transition, t0);
        let same = compute_conditions(
            &first,
            vec![(
                ConditionType::Ready,
                ConditionStatus::False,
                "Progressing".into(),
                "wave 2".into(),
            )],
            2,
            t1,
        );
        assert_eq!(
            same[0].last_transition, t0,
            "a new message is not a transition"
        );
        assert_eq!(same[0].observed_generation, 2);
        let flipped = compute_conditions(
            &same,
            vec![(
                ConditionType::Ready,
                ConditionStatus::True,
                "Succeeded".into(),
                "done".into(),
            )],
            2,
            t1,
        );
        assert_eq!(flipped[0].last_transition, t1);
        assert_eq!(
            ConditionType::parse("WindowOpen"),
            Some(ConditionType::WindowOpen)
        );
    }
}
