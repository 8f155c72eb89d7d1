//! Notices: what people are told of a rollout, before and while it happens — the
//! announcement ahead of the window opening it will start in, approval and promotion
//! awaited, waves, failures, rollbacks and outcomes, and compliance overdue.
//!
//! A rollout's notices are decided by the engine with the rest of its status, on the
//! transition that causes them, and kept in the rollout's status (its outbox) under a
//! sequence number of the rollout: written in the same status write as the transition, a
//! notice is never lost to a restart, and its id (`<rollout>/<seq>`) is the same on every
//! delivery attempt. Delivering them is the operator's business, not the engine's.

use std::collections::BTreeSet;

use jiff::Timestamp;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{target::TargetId, units::Duration, window::Interval};

/// What a notice tells.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
pub enum NoticeKind {
    /// Ahead of the window opening the rollout will start in: what, when, how many targets
    /// in which waves, and whether it needs approval.
    Announcement,
    /// After an announcement, before the opening: the opening moved, or approval was given.
    AnnouncementChanged,
    /// The rollout waits for a person's approval (and, with a delay, when it approves
    /// itself).
    ApprovalNeeded,
    /// The canary is done and healthy: the rollout waits for `promote`.
    PromotionAwaited,
    /// The first target started (an emergency rollout, which is not announced, is told here).
    Started,
    /// A wave started.
    WaveStarted,
    /// A wave finished: all its targets updated and soaked.
    WaveFinished,
    /// A target failed, with the reason.
    TargetFailed,
    /// The rollout halted and rolls back what it changed.
    RollbackStarted,
    /// The rollback is done.
    RollbackFinished,
    /// Every eligible target is updated.
    Succeeded,
    /// The rollout halted and could not roll everything back, or halted without rollback.
    Failed,
    /// The rollout was paused, by a person or by a failure with `onFailure: Pause`.
    Paused,
    /// A person aborted the rollout.
    Aborted,
    /// A newer version of the policy took over.
    Superseded,
    /// The patch is past the compliance deadline of its classification and targets are
    /// still not patched.
    ComplianceOverdue,
}

impl NoticeKind {
    /// Every kind, in the order a rollout's life goes through them.
    pub const ALL: [NoticeKind; 16] = [
        NoticeKind::Announcement,
        NoticeKind::AnnouncementChanged,
        NoticeKind::ApprovalNeeded,
        NoticeKind::PromotionAwaited,
        NoticeKind::Started,
        NoticeKind::WaveStarted,
        NoticeKind::WaveFinished,
        NoticeKind::TargetFailed,
        NoticeKind::RollbackStarted,
        NoticeKind::RollbackFinished,
        NoticeKind::Succeeded,
        NoticeKind::Failed,
        NoticeKind::Paused,
        NoticeKind::Aborted,
        NoticeKind::Superseded,
        NoticeKind::ComplianceOverdue,
    ];

    /// The kind's name, as written in `spec.notifications.on`.
    pub const fn as_str(self) -> &'static str {
        match self {
            NoticeKind::Announcement => "Announcement",
            NoticeKind::AnnouncementChanged => "AnnouncementChanged",
            NoticeKind::ApprovalNeeded => "ApprovalNeeded",
            NoticeKind::PromotionAwaited => "PromotionAwaited",
            NoticeKind::Started => "Started",
            NoticeKind::WaveStarted => "WaveStarted",
            NoticeKind::WaveFinished => "WaveFinished",
            NoticeKind::TargetFailed => "TargetFailed",
            NoticeKind::RollbackStarted => "RollbackStarted",
            NoticeKind::RollbackFinished => "RollbackFinished",
            NoticeKind::Succeeded => "Succeeded",
            NoticeKind::Failed => "Failed",
            NoticeKind::Paused => "Paused",
            NoticeKind::Aborted => "Aborted",
            NoticeKind::Superseded => "Superseded",
            NoticeKind::ComplianceOverdue => "ComplianceOverdue",
        }
    }

    /// The reason of the Kubernetes Event recorded on the rollout for the same fact, so
    /// that an event router (Flux's or Argo's notifications, an event exporter) can route
    /// it instead. Where the rollout already recorded an event for the transition (a wave
    /// started, a phase changed), it is that event's reason.
    pub const fn event_reason(self) -> &'static str {
        match self {
            NoticeKind::Announcement => "Announcement",
            NoticeKind::AnnouncementChanged => "AnnouncementChanged",
            NoticeKind::ApprovalNeeded => "PhaseAwaitingApproval",
            NoticeKind::PromotionAwaited => "PromotionAwaited",
            NoticeKind::Started => "RolloutStarted",
            NoticeKind::WaveStarted => "WaveStarted",
            NoticeKind::WaveFinished => "WaveFinished",
            NoticeKind::TargetFailed => "TargetFailed",
            NoticeKind::RollbackStarted => "RollbackStarted",
            NoticeKind::RollbackFinished => "RolledBack",
            NoticeKind::Succeeded => "Succeeded",
            NoticeKind::Failed => "Failed",
            NoticeKind::Paused => "PhasePaused",
            NoticeKind::Aborted => "Aborted",
            NoticeKind::Superseded => "Superseded",
            NoticeKind::ComplianceOverdue => "ComplianceOverdue",
        }
    }

    /// Whether it tells of something gone wrong.
    pub const fn warning(self) -> bool {
        matches!(
            self,
            NoticeKind::TargetFailed
                | NoticeKind::RollbackStarted
                | NoticeKind::RollbackFinished
                | NoticeKind::Failed
                | NoticeKind::Aborted
                | NoticeKind::ComplianceOverdue
        )
    }
}

impl std::fmt::Display for NoticeKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a policy asks to be told.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Notices {
    /// The kinds recorded; the others are not.
    pub on: BTreeSet<NoticeKind>,
    /// How long before the window opening the announcement goes out; `None`: no
    /// announcement.
    pub announce_before: Option<Duration>,
}

impl Notices {
    /// Whether notices of `kind` are recorded.
    pub fn wants(&self, kind: NoticeKind) -> bool {
        self.on.contains(&kind)
    }
}

/// One notice of a rollout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    /// Its number in the rollout, from 1, never reused: with the rollout's name, the id a
    /// receiver can drop repeats by.
    pub seq: u32,
    /// What it tells.
    pub kind: NoticeKind,
    /// When it happened (for an announcement: when it was decided).
    pub at: Timestamp,
    /// What happened, in one sentence.
    pub message: String,
    /// The target it is about (a failure).
    pub target: Option<TargetId>,
    /// The window opening an announcement is about.
    pub opening: Option<Interval>,
}

/// The notices a rollout keeps in its status, newest last: at most this many (delivery
/// keeps up with far fewer; a receiver that was down longer misses the oldest).
pub const MAX_NOTICES: usize = 50;

/// What the notices of a rollout remember between decisions.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outbox {
    /// The last sequence number given.
    pub seq: u32,
    /// The recent notices, oldest first, at most [`MAX_NOTICES`].
    pub notices: Vec<Notice>,
    /// What the last announcement said: the opening, and whether approval was needed.
    pub announced: Option<Announced>,
    /// Compliance overdue has been told.
    pub overdue_told: bool,
}

/// What an announcement said, to tell a change of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Announced {
    /// The opening the rollout was to start in.
    pub opening: Interval,
    /// Approval was still needed.
    pub approval_needed: bool,
}

impl Outbox {
    /// Adds a notice with the next sequence number, dropping the oldest beyond
    /// [`MAX_NOTICES`].
    pub fn push(
        &mut self,
        kind: NoticeKind,
        at: Timestamp,
        message: String,
        target: Option<TargetId>,
        opening: Option<Interval>,
    ) {
        self.seq += 1;
        self.notices.push(Notice {
            seq: self.seq,
            kind,
            at,
            message,
            target,
            opening,
        });
        let excess = self.notices.len().saturating_sub(MAX_NOTICES);
        self.notices.drain(..excess);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_outbox_numbers_every_notice_and_keeps_the_newest() {
        let mut outbox = Outbox::default();
        for i in 0..(MAX_NOTICES + 5) {
            outbox.push(
                NoticeKind::TargetFailed,
                Timestamp::UNIX_EPOCH,
                format!("{i}"),
                None,
                None,
            );
        }
        assert_eq!(outbox.seq, 55);
        assert_eq!(outbox.notices.len(), MAX_NOTICES);
        assert_eq!(outbox.notices[0].seq, 6);
        assert_eq!(outbox.notices.last().map(|n| n.seq), Some(55));
    }

    #[test]
    fn kind_names_round_trip_and_are_unique() {
        let names: BTreeSet<&str> = NoticeKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(names.len(), NoticeKind::ALL.len());
        for kind in NoticeKind::ALL {
            let json = serde_json::to_value(kind).unwrap();
            assert_eq!(json, kind.as_str());
        }
    }
}
