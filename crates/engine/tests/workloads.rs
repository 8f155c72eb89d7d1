//! Workload updates (SPEC 3.4), decision by decision: images recorded and replaced, the
//! workload's own rollout awaited, health soaked, the version recorded; a progress deadline
//! fails the target and the rollback restores the recorded images.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use patchpilot_engine::testkit::{at, mins};
use patchpilot_engine::{
    image::{ContainerImage, ImagePatch},
    keys,
    machine::{
        self, Action, Change, Decision, FatalReason, HealthFacts, Input, Live, Observed, Record,
        RecordState, Status, TargetAction, WorkloadFacts, WorkloadRollout,
    },
    plan::{Namespaces, Scope},
    policy::{CanarySize, WorkloadKind},
    rollout::{Phase, Step},
    selector::{Labels, Selector},
    target::{Candidate, TargetId},
    units::Duration,
};

struct Shop {
    now: Timestamp,
    rollout: machine::Rollout,
    policy: patchpilot_engine::policy::Policy,
    status: Status,
    annotations: BTreeMap<String, String>,
    images: Vec<ContainerImage>,
}

fn web() -> TargetId {
    TargetId::workload(WorkloadKind::Deployment, "shop", "web")
}

fn images(pairs: &[(&str, &str)]) -> Vec<ContainerImage> {
    pairs
        .iter()
        .map(|(c, i)| ContainerImage {
            container: c.to_string(),
            image: i.to_string(),
        })
        .collect()
}

impl Shop {
    fn new() -> Self {
        let now = at("2026-11-22T10:00:00Z");
        let mut policy = patchpilot_engine::policy::Policy::test();
        policy.name = "nginx-base".into();
        policy.targets.scope = Scope::Workloads {
            namespaces: None,
            selector: Selector::everything(),
            kinds: BTreeSet::from([WorkloadKind::Deployment]),
        };
        policy.strategy.canary = CanarySize::Targets(0);
        policy.health.soak = Duration::from_mins(5);
        let mut rollout = machine::Rollout::test(now);
        rollout.name = "nginx-base-1a2b3c4d".into();
        rollout.patch.version = "nginx-1.27.4".into();
        rollout.patch.change = Change::Images(vec![ImagePatch {
            image: "nginx:1.27.4".into(),
            container: None,
        }]);
        Shop {
            now,
            rollout,
            policy,
            status: Status::default(),
            annotations: BTreeMap::new(),
            images: images(&[("web", "nginx:1.25.3"), ("metrics", "prom/exporter:0.15")]),
        }
    }

    fn decide(&mut self, rollout: WorkloadRollout, healthy: bool) -> Decision {
        let health = if healthy {
            HealthFacts::healthy()
        } else {
            HealthFacts::failing(vec!["podsReady: 1 of 3 pods Ready".into()])
        };
        self.decide_with(rollout, health)
    }

    fn decide_with(&mut self, rollout: WorkloadRollout, health: HealthFacts) -> Decision {
        let candidates = vec![Candidate::workload(
            WorkloadKind::Deployment,
            "shop",
            "web",
            Labels::new(),
            self.annotations.clone(),
        )];
        let facts = Observed {
            live: Live::Workload(WorkloadFacts {
                images: self.images.clone(),
                rollout,
            }),
            health: Some(health),
        };
        let observed = BTreeMap::from([(web(), facts)]);
        let namespaces = Namespaces::new();
        let input = Input {
            now: self.now,
            rollout: &self.rollout,
            policy: &self.policy,
            window: None,
            superseded: false,
            stopping: false,
            siblings: &[],
            status: &self.status,
            candidates: &candidates,
            namespaces: &namespaces,
            observed: &observed,
        };
        let decision = machine::decide(&input);
        // Carry out the actions the way the controller does for workloads.
        for action in &decision.actions {
            match action {
                TargetAction::Lock { record, .. } => {
                    let mut record = record.clone();
                    if record.state == RecordState::Applying {
                        record.images = self.images.clone();
                        if let Change::Images(patches) = &self.rollout.patch.change {
                            self.images = patchpilot_engine::image::patched(&self.images, patches);
                        }
                    } else {
                        self.images = record.images.clone();
                    }
                    self.annotations
                        .insert(keys::LOCK.into(), self.rollout.name.clone());
                    self.annotations
                        .insert(keys::record("nginx-base"), record.to_annotation());
                }
                TargetAction::SetImages { images, .. } => self.images = images.clone(),
                TargetAction::Release {
                    record, version, ..
                } => {
                    self.annotations
                        .insert(keys::record("nginx-base"), record.to_annotation());
                    match version {
                        Some(v) => self
                            .annotations
                            .insert(keys::version("nginx-base"), v.clone()),
                        None => self.annotations.remove(&keys::version("nginx-base")),
                    };
                    self.annotations.remove(keys::LOCK);
                }
                other => panic!("unexpected action for a workload: {other:?}"),
            }
        }
        self.status = decision.status.clone();
        decision
    }

    fn record(&self) -> Record {
        Record::read(&self.annotations, "nginx-base").unwrap()
    }

    fn step(&self) -> Option<Step> {
        self.status.in_progress.first().map(|p| p.step)
    }
}

/// The record with which the decision ended the target's work: released, or (a failure to
/// roll back) moved to its rollback under the same lock.
fn ended(decision: &Decision) -> Record {
    decision
        .actions
        .iter()
        .find_map(|a| match a {
            TargetAction::Release { record, .. } | TargetAction::Hold { record, .. } => {
                Some(record.clone())
            }
            TargetAction::Lock { record, .. } if record.state == RecordState::RollingBack => {
                Some(record.clone())
            }
            _ => None,
        })
        .expect("the decision ended the target's work")
}

#[test]
fn images_are_recorded_replaced_awaited_soaked_and_the_version_recorded() {
    let mut shop = Shop::new();
    shop.decide(WorkloadRollout::Complete, true);
    assert_eq!(
        shop.record().images,
        images(&[("web", "nginx:1.25.3"), ("metrics", "prom/exporter:0.15")]),
        "the images before"
    );
    assert_eq!(
        shop.images,
        images(&[("web", "nginx:1.27.4"), ("metrics", "prom/exporter:0.15")]),
        "only nginx replaced"
    );
    shop.decide(
        WorkloadRollout::Progressing("2 of 3 updated replicas are available".into()),
        true,
    );
    assert_eq!(shop.step(), Some(Step::RollingOut));
    assert!(
        shop.status.in_progress[0]
            .message
            .as_deref()
            .unwrap()
            .contains("2 of 3")
    );
    shop.now += mins(2);
    shop.decide(WorkloadRollout::Complete, false);
    assert_eq!(shop.step(), Some(Step::Verifying));
    shop.now += mins(1);
    let decision = shop.decide(WorkloadRollout::Complete, true);
    assert_eq!(shop.step(), Some(Step::Soaking));
    assert_eq!(
        decision.wake_at,
        Some(shop.now + mins(5)),
        "wakes when the soak ends"
    );
    shop.now += mins(5);
    shop.decide(WorkloadRollout::Complete, true);
    assert_eq!(shop.status.phase, Phase::Succeeded);
    assert_eq!(shop.record().state, RecordState::Updated);
    assert_eq!(
        shop.annotations
            .get(&keys::version("nginx-base"))
            .map(String::as_str),
        Some("nginx-1.27.4")
    );
    assert!(!shop.annotations.contains_key(keys::LOCK));
}

#[test]
fn a_progress_deadline_fails_the_workload_and_the_rollback_restores_its_images() {
    let mut shop = Shop::new();
    shop.decide(WorkloadRollout::Complete, true);
    shop.now += mins(10);
    let decision = shop.decide(
        WorkloadRollout::Failed("ReplicaSet \"web-7f9c\" has timed out progressing".into()),
        false,
    );
    let record = ended(&decision);
    assert_eq!(record.reason.as_deref(), Some("ProgressDeadlineExceeded"));
    assert!(record.applied);
    // The only target failed: the rollout halts and, in the same decision, moves it to its
    // rollback under the lock it holds (never releasing it in between, when another rollout
    // could take it), putting the recorded images back.
    assert!(
        !decision.actions.iter().any(|a| matches!(
            a,
            TargetAction::Release { .. } | TargetAction::Unlock { .. }
        )),
        "{:?}",
        decision.actions
    );
    assert_eq!(shop.status.phase, Phase::RollingBack);
    assert_eq!(shop.record().state, RecordState::RollingBack);
    assert_eq!(
        shop.images,
        images(&[("web", "nginx:1.25.3"), ("metrics", "prom/exporter:0.15")])
    );
    assert_eq!(shop.status.in_progress[0].action, Action::Rollback);
    shop.decide(WorkloadRollout::Complete, true);
    shop.now += mins(5);
    shop.decide(WorkloadRollout::Complete, true);
    assert_eq!(shop.status.phase, Phase::RolledBack);
    assert_eq!(shop.record().state, RecordState::RolledBack);
    assert_eq!(
        shop.annotations.get(&keys::version("nginx-base")),
        None,
        "no version before, none after"
    );
}

#[test]
fn images_changed_behind_the_rollouts_back_are_set_again() {
    let mut shop = Shop::new();
    shop.decide(WorkloadRollout::Complete, true);
    shop.images = images(&[("web", "nginx:1.25.3"), ("metrics", "prom/exporter:0.15")]);
    let decision = shop.decide(WorkloadRollout::Complete, true);
    assert!(
        decision
            .actions
            .iter()
            .any(|a| matches!(a, TargetAction::SetImages { .. }))
    );
    assert_eq!(shop.images[0].image, "nginx:1.27.4");
}

#[test]
fn a_rollout_that_never_completes_times_out() {
    let mut shop = Shop::new();
    shop.decide(WorkloadRollout::Complete, true);
    shop.now += mins(9);
    let decision = shop.decide(WorkloadRollout::Progressing("waiting".into()), true);
    assert_eq!(
        decision.wake_at,
        Some(at("2026-11-22T10:10:00Z")),
        "wakes at the timeout"
    );
    shop.now += mins(1);
    let decision = shop.decide(WorkloadRollout::Progressing("waiting".into()), true);
    assert_eq!(ended(&decision).reason.as_deref(), Some("RolloutTimeout"));
}

/// Issue 10, item 6: the new pods crash-loop while the workload's own rollout is still
/// progressing: the target fails at once with the signal's reason, without waiting for the
/// rollout or `health.timeout`, and the rollback restores the recorded images.
#[test]
fn new_pods_that_crash_loop_fail_the_workload_while_it_rolls_out() {
    let mut shop = Shop::new();
    let original = shop.images.clone();
    shop.decide(WorkloadRollout::Complete, true);
    let progressing =
        || WorkloadRollout::Progressing("1 of 3 updated replicas are available".into());
    shop.decide(progressing(), false);
    assert_eq!(shop.step(), Some(Step::RollingOut));
    shop.now += jiff::SignedDuration::from_secs(15);
    let crash = HealthFacts::fatal(
        FatalReason::CrashLoopBackOff,
        "podsReady: shop/web-5d9f-x2x7q container web: back-off 10s restarting failed container"
            .into(),
    );
    let decision = shop.decide_with(progressing(), crash);
    let record = ended(&decision);
    assert_eq!(record.reason.as_deref(), Some("CrashLoopBackOff"));
    assert!(
        record
            .message
            .as_deref()
            .is_some_and(|m| m.contains("shop/web-5d9f-x2x7q container web")),
        "{record:?}"
    );
    // The only target failed: in the same decision the rollout moves it to its rollback
    // under the lock it holds, restoring the images it recorded.
    assert_eq!(shop.status.phase, Phase::RollingBack);
    assert_eq!(shop.record().state, RecordState::RollingBack);
    assert_eq!(shop.images, original);
}

#[test]
fn a_workload_without_a_patched_image_is_never_locked_and_counted_apart() {
    let shop = Shop::new();
    let workload = |name: &str, containers: &[(&str, &str)]| {
        Candidate::workload(
            WorkloadKind::Deployment,
            "shop",
            name,
            Labels::new(),
            BTreeMap::new(),
        )
        .with_images(images(containers))
    };
    let candidates = vec![
        workload("cache", &[("redis", "docker.io/library/redis:7.4.1")]),
        workload(
            "web",
            &[("web", "nginx:1.25.3"), ("metrics", "prom/exporter:0.15")],
        ),
    ];
    let namespaces = Namespaces::new();
    let observed = BTreeMap::new();
    let input = Input {
        now: shop.now,
        rollout: &shop.rollout,
        policy: &shop.policy,
        window: None,
        superseded: false,
        stopping: false,
        siblings: &[],
        status: &shop.status,
        candidates: &candidates,
        namespaces: &namespaces,
        observed: &observed,
    };
    let decision = machine::decide(&input);
    let locked: Vec<String> = decision
        .actions
        .iter()
        .filter_map(|action| match action {
            TargetAction::Lock { target, .. } => Some(target.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(locked, ["Deployment/shop/web"]);
    let counts = &decision.status.counts;
    assert_eq!(
        (
            counts.total,
            counts.not_applicable,
            counts.in_progress,
            counts.pending
        ),
        (2, 1, 1, 0),
        "{counts:?}"
    );
}
