//! `Policy::test()` and `Rollout::test()`: a small valid policy and rollout, and builder
//! methods that change one rule at a time.

use jiff::Timestamp;

use crate::{
    machine::{Change, Patch, Rollout, Updater},
    plan::{Scope, TargetRules},
    policy::{
        Approval, ApprovalMode, CanarySize, Classification, Drain, Health, OnFailure, Policy,
        Stage, Strategy,
    },
    selector::{Labels, Selector},
    units::{Duration, IntOrPercent, Percent},
};

/// Stages at these cumulative percents, each soaking `soak`.
pub fn stages(percents: &[u8], soak: Duration) -> Vec<Stage> {
    percents
        .iter()
        .map(|p| Stage {
            percent: Percent::new(*p).expect("a percent from 1 to 100"),
            soak,
        })
        .collect()
}

/// Labels from `key=value` pairs (`key=` for an empty value).
fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

impl Policy {
    /// A node policy named `os`: every node, one canary, `maxUnavailable: 1`, no failures
    /// allowed, roll back on failure, no soaks between waves, a 10-minute drain and health
    /// timeout with a 1-minute soak, manual approval, no window.
    pub fn test() -> Self {
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
            notices: Default::default(),
        }
    }

    /// Named `name`.
    pub fn named(mut self, name: &str) -> Self {
        self.name = name.into();
        self
    }

    /// Nodes with every one of these labels; `pool_label` groups them into pools.
    pub fn nodes(mut self, selector: &[(&str, &str)], pool_label: Option<&str>) -> Self {
        self.targets.scope = Scope::Nodes {
            selector: Selector::from_labels(&labels(selector)),
            pool_label: pool_label.map(str::to_owned),
        };
        self
    }

    /// Leaves out targets with every one of these labels.
    pub fn excluding(mut self, selector: &[(&str, &str)]) -> Self {
        self.targets.exclude = Some(Selector::from_labels(&labels(selector)));
        self
    }

    /// A canary of `targets` targets (0: none), soaking `soak`.
    pub fn canary(mut self, targets: u32, soak: Duration) -> Self {
        self.strategy.canary = CanarySize::Targets(targets);
        self.strategy.canary_soak = soak;
        self
    }

    /// Stages at these cumulative percents, each soaking `soak`.
    pub fn stages(mut self, percents: &[u8], soak: Duration) -> Self {
        self.strategy.stages = stages(percents, soak);
        self
    }

    /// Spreads each wave over the values of this label (zones, say).
    pub fn group_by(mut self, label: &str) -> Self {
        self.strategy.group_by = Some(label.into());
        self
    }

    /// At most this many targets in progress at once.
    pub fn max_unavailable(mut self, limit: IntOrPercent) -> Self {
        self.strategy.max_unavailable = limit;
        self
    }

    /// This many failed targets before the rollout stops.
    pub fn failure_budget(mut self, budget: IntOrPercent) -> Self {
        self.strategy.failure_budget = budget;
        self
    }

    /// Health judged for up to `timeout`, then watched for `soak`.
    pub fn health(mut self, timeout: Duration, soak: Duration) -> Self {
        self.health.timeout = timeout;
        self.health.soak = soak;
        self
    }

    /// Approved on its own (at release plus `delay`) rather than by a person.
    pub fn approved_automatically(mut self, delay: Duration) -> Self {
        self.approval.mode = ApprovalMode::Automatic;
        self.approval.delay = delay;
        self
    }

    /// Starts targets only in the MaintenanceWindow `name`.
    pub fn window(mut self, name: &str) -> Self {
        self.window = Some(name.into());
        self
    }
}

impl Rollout {
    /// An approved rollout `os-0000abcd` of version `v2` (Important), created at `created`,
    /// whose updater reboots the node: 30 minutes to apply, 15 to come back.
    pub fn test(created: Timestamp) -> Self {
        Rollout {
            name: "os-0000abcd".into(),
            uid: "uid-os-0000abcd".into(),
            hand_made: false,
            patch: Patch {
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

    /// Named `name` (uid `uid-<name>`).
    pub fn named(mut self, name: &str) -> Self {
        self.uid = format!("uid-{name}");
        self.name = name.into();
        self
    }

    /// Of patch version `version`.
    pub fn version(mut self, version: &str) -> Self {
        self.patch.version = version.into();
        self
    }
}
