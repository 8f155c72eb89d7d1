//! Which objects a rollout targets, which of them are excluded, not applicable or already up
//! to date, the order of the eligible ones and the waves they go in. SPEC 3.1, to the letter,
//! with two rules added: after the exclusions, a workload none of whose containers the
//! patch's images replace is *not applicable* (nodes never are); and a target that is not up
//! to date but carries a lock patchpilot did not take ([`untrusted::lock_problem`]) is
//! *excluded*, with the problem as the reason.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;

use crate::{
    image::{self, ImagePatch},
    keys,
    policy::{CanarySize, Strategy, WorkloadKind},
    selector::{Labels, Selector},
    target::{Candidate, TargetKind},
    units::Duration,
    untrusted,
};

/// Which objects a policy selects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetRules {
    /// Nodes or workloads, and how to pick them.
    pub scope: Scope,
    /// Selected objects matching this are excluded.
    pub exclude: Option<Selector>,
}

/// Nodes or workloads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Nodes matching `selector`; `pool_label` names the node's pool.
    Nodes {
        /// The nodes to patch.
        selector: Selector,
        /// The label whose value is the node's pool.
        pool_label: Option<String>,
    },
    /// Workloads of `kinds` matching `selector` in namespaces matching `namespaces`.
    Workloads {
        /// The namespaces to look in; `None` means all.
        namespaces: Option<Selector>,
        /// The workloads to patch.
        selector: Selector,
        /// The kinds to patch.
        kinds: BTreeSet<WorkloadKind>,
    },
}

/// The labels of each namespace, by name.
pub type Namespaces = BTreeMap<String, Labels>;

/// How a selected target stands, by the first rule of SPEC 3.1 that holds (with not
/// applicable after the exclusions, and a lock patchpilot did not take before eligible).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Standing {
    /// Left out, with the reason reported.
    Excluded(String),
    /// A workload none of whose containers the patch's images replace: nothing to patch.
    NotApplicable,
    /// Already carries the version.
    UpToDate,
    /// To be patched.
    Eligible,
}

/// The reason reported for targets matching `targets.exclude`.
pub const EXCLUDED_BY_SELECTOR: &str = "excluded by policy selector";

impl TargetRules {
    /// Whether the policy selects this object.
    pub fn selects(&self, candidate: &Candidate, namespaces: &Namespaces) -> bool {
        match (&self.scope, candidate.kind) {
            (Scope::Nodes { selector, .. }, TargetKind::Node) => {
                selector.matches(&candidate.labels)
            }
            (
                Scope::Workloads {
                    namespaces: ns_selector,
                    selector,
                    kinds,
                },
                TargetKind::Workload(kind),
            ) => {
                let namespace_matches = match (ns_selector, &candidate.namespace) {
                    (None, _) => true,
                    (Some(ns_selector), Some(namespace)) => {
                        let empty = Labels::new();
                        ns_selector.matches(namespaces.get(namespace).unwrap_or(&empty))
                    }
                    (Some(_), None) => false,
                };
                kinds.contains(&kind) && namespace_matches && selector.matches(&candidate.labels)
            }
            (Scope::Nodes { .. }, TargetKind::Workload(_))
            | (Scope::Workloads { .. }, TargetKind::Node) => false,
        }
    }

    /// How a selected target stands for the query's version, patch and instant.
    pub fn standing(&self, candidate: &Candidate, query: &Query<'_>) -> Standing {
        self.standing_by_key(candidate, &keys::version(query.policy), query)
    }

    /// [`standing`](Self::standing), with the version annotation's key already built.
    fn standing_by_key(
        &self,
        candidate: &Candidate,
        version_key: &str,
        query: &Query<'_>,
    ) -> Standing {
        let Query {
            version,
            images,
            now,
            ..
        } = *query;
        if let Some(justification) = candidate.annotations.get(keys::EXCLUDE) {
            let expired = candidate
                .annotations
                .get(keys::EXCLUDE_UNTIL)
                .and_then(|until| until.parse::<Timestamp>().ok())
                .is_some_and(|until| until <= now);
            if !expired {
                return Standing::Excluded(justification.clone());
            }
        }
        if self
            .exclude
            .as_ref()
            .is_some_and(|exclude| exclude.matches(&candidate.labels))
        {
            return Standing::Excluded(EXCLUDED_BY_SELECTOR.to_owned());
        }
        if let (Some(patches), Some(current)) = (images, &candidate.images)
            && !image::applies(current, patches)
        {
            return Standing::NotApplicable;
        }
        if candidate
            .annotations
            .get(version_key)
            .is_some_and(|v| v == version)
        {
            return Standing::UpToDate;
        }
        // A lock patchpilot did not take: the target is left alone, and the reason says why.
        if let Some(problem) = untrusted::lock_problem(&candidate.annotations) {
            return Standing::Excluded(problem);
        }
        Standing::Eligible
    }

    /// The pool a target belongs to: the value of `poolLabel` (nodes without the label form
    /// a pool of their own). `None` when the policy has no pools.
    pub fn pool<'c>(&self, candidate: &'c Candidate) -> Option<&'c str> {
        match &self.scope {
            Scope::Nodes {
                pool_label: Some(label),
                ..
            } => Some(candidate.labels.get(label).map_or("", String::as_str)),
            Scope::Nodes {
                pool_label: None, ..
            }
            | Scope::Workloads { .. } => None,
        }
    }
}

/// The targets of a rollout, sorted out.
#[derive(Clone, Debug, Default)]
pub struct Inventory<'c> {
    /// How many objects the policy selects.
    pub selected: usize,
    /// Excluded targets with their reason, by target name.
    pub excluded: Vec<(&'c Candidate, String)>,
    /// Workloads the patch has nothing to change on, by target name.
    pub not_applicable: Vec<&'c Candidate>,
    /// Targets already carrying the version, by target name.
    pub up_to_date: Vec<&'c Candidate>,
    /// Eligible targets in rollout order.
    pub eligible: Vec<&'c Candidate>,
}

/// What an inventory is taken for: a version of a policy, ordered by a label, at an instant.
#[derive(Clone, Copy, Debug)]
pub struct Query<'a> {
    /// The policy's name (it keys the version annotation).
    pub policy: &'a str,
    /// The version being rolled out.
    pub version: &'a str,
    /// The patch's image replacements, for a patch of workloads: a workload whose containers
    /// they replace none of is not applicable. `None` for a patch that changes no images.
    pub images: Option<&'a [ImagePatch]>,
    /// The label targets are grouped by.
    pub group_by: Option<&'a str>,
    /// The instant `exclude-until` annotations are judged at.
    pub now: Timestamp,
}

/// Sorts the candidates a policy selects into excluded, not applicable, up to date and
/// eligible, the eligible ones in rollout order: by the value of the `group_by` label
/// (ascending bytes, targets without it last), then by target name.
///
/// `ours` marks targets the rollout itself has worked on: they stay eligible although they
/// now carry the version, no longer have an image the patch replaces, or have been
/// excluded since, so that a rollout never abandons a target it started and its waves do not
/// shift.
pub fn inventory<'c>(
    rules: &TargetRules,
    query: &Query<'_>,
    candidates: &'c [Candidate],
    namespaces: &Namespaces,
    ours: impl Fn(&Candidate) -> bool,
) -> Inventory<'c> {
    let version_key = keys::version(query.policy);
    let group_by = query.group_by;
    let mut inventory = Inventory::default();
    for candidate in candidates.iter().filter(|c| rules.selects(c, namespaces)) {
        inventory.selected += 1;
        match rules.standing_by_key(candidate, &version_key, query) {
            Standing::Excluded(reason) if !ours(candidate) => {
                inventory.excluded.push((candidate, reason));
            }
            Standing::NotApplicable if !ours(candidate) => {
                inventory.not_applicable.push(candidate);
            }
            Standing::UpToDate if !ours(candidate) => inventory.up_to_date.push(candidate),
            Standing::Excluded(_)
            | Standing::NotApplicable
            | Standing::UpToDate
            | Standing::Eligible => {
                inventory.eligible.push(candidate);
            }
        }
    }
    inventory.excluded.sort_by(|a, b| a.0.id.cmp(&b.0.id));
    inventory.not_applicable.sort_by(|a, b| a.id.cmp(&b.id));
    inventory.up_to_date.sort_by(|a, b| a.id.cmp(&b.id));
    // By group (targets without the label last: `(is missing, value)`), then by name; the
    // keys are looked up once, not at every comparison.
    let mut keyed: Vec<(OrderKey<'c>, &'c Candidate)> = inventory
        .eligible
        .iter()
        .map(|c| {
            let group = group_by
                .and_then(|label| c.labels.get(label))
                .map(String::as_str);
            ((group.is_none(), group, c.id.as_str()), *c)
        })
        .collect();
    keyed.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    inventory.eligible = keyed.into_iter().map(|(_, c)| c).collect();
    inventory
}

/// Where a target sorts: whether it lacks the group label, the label's value, its name.
type OrderKey<'c> = (bool, Option<&'c str>, &'c str);

/// A wave: a consecutive slice `[start, end)` of the eligible targets in rollout order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wave {
    /// `canary`, `stage-<i>` or `full`.
    pub name: String,
    /// Position of the first target.
    pub start: usize,
    /// Position after the last target.
    pub end: usize,
    /// How long the wave soaks after its last target finishes.
    pub soak: Duration,
}

/// The waves for `eligible` targets: the canary, the stages, and `full` for the rest; empty
/// waves are left out and the stage numbers of the others kept.
pub fn waves(strategy: &Strategy, eligible: usize) -> Vec<Wave> {
    let total = eligible as u32;
    let canary_end = match strategy.canary {
        CanarySize::Targets(targets) => targets.min(total),
        CanarySize::Percent(percent) => total.min(percent.of_ceil(total).max(1)),
    };
    let mut waves = Vec::new();
    let mut push = |name: String, start: u32, end: u32, soak: Duration| {
        if end > start {
            waves.push(Wave {
                name,
                start: start as usize,
                end: end as usize,
                soak,
            });
        }
    };
    push("canary".to_owned(), 0, canary_end, strategy.canary_soak);
    let mut previous = canary_end;
    for (i, stage) in strategy.stages.iter().enumerate() {
        let end = total.min(stage.percent.of_ceil(total).max(previous));
        push(format!("stage-{}", i + 1), previous, end, stage.soak);
        previous = end;
    }
    push("full".to_owned(), previous, total, Duration::ZERO);
    waves
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        policy::{OnFailure, Stage},
        units::{IntOrPercent, Percent},
    };

    fn strategy(canary: CanarySize, stages: &[u8]) -> Strategy {
        Strategy {
            canary,
            canary_soak: Duration::ZERO,
            stages: stages
                .iter()
                .map(|p| Stage {
                    percent: Percent::new(*p).unwrap(),
                    soak: Duration::ZERO,
                })
                .collect(),
            group_by: None,
            max_unavailable: IntOrPercent::Count(1),
            failure_budget: IntOrPercent::Count(0),
            on_failure: OnFailure::Rollback,
        }
    }

    fn shape(strategy: &Strategy, eligible: usize) -> Vec<(String, usize, usize)> {
        waves(strategy, eligible)
            .into_iter()
            .map(|w| (w.name, w.start, w.end))
            .collect()
    }

    fn w(name: &str, start: usize, end: usize) -> (String, usize, usize) {
        (name.to_owned(), start, end)
    }

    #[test]
    fn canary_then_stages_then_full() {
        let s = strategy(CanarySize::Targets(1), &[25, 50]);
        assert_eq!(
            shape(&s, 40),
            [
                w("canary", 0, 1),
                w("stage-1", 1, 10),
                w("stage-2", 10, 20),
                w("full", 20, 40)
            ]
        );
    }

    #[test]
    fn empty_waves_are_left_out_and_stage_numbers_kept() {
        // 4 targets: canary 1; stage-1 ends at max(ceil(10% of 4) = 1, 1) = 1 → empty.
        let s = strategy(CanarySize::Targets(1), &[10, 50]);
        assert_eq!(
            shape(&s, 4),
            [w("canary", 0, 1), w("stage-2", 1, 2), w("full", 2, 4)]
        );
        // A last stage of 100% leaves nothing for full.
        let s = strategy(CanarySize::Targets(1), &[50, 100]);
        assert_eq!(
            shape(&s, 10),
            [w("canary", 0, 1), w("stage-1", 1, 5), w("stage-2", 5, 10)]
        );
        // No eligible targets, no waves.
        assert_eq!(shape(&s, 0), []);
    }

    #[test]
    fn canary_sizes() {
        let none = strategy(CanarySize::Targets(0), &[50]);
        assert_eq!(shape(&none, 10), [w("stage-1", 0, 5), w("full", 5, 10)]);
        let big = strategy(CanarySize::Targets(5), &[]);
        assert_eq!(shape(&big, 3), [w("canary", 0, 3)]);
        // Percent: ceil, at least one, at most E.
        let pct = |p| strategy(CanarySize::Percent(Percent::new(p).unwrap()), &[]);
        assert_eq!(shape(&pct(5), 21), [w("canary", 0, 2), w("full", 2, 21)]);
        assert_eq!(shape(&pct(1), 10), [w("canary", 0, 1), w("full", 1, 10)]);
        assert_eq!(shape(&pct(100), 7), [w("canary", 0, 7)]);
        assert_eq!(shape(&pct(50), 0), []);
    }

    #[test]
    fn a_stage_never_ends_before_the_previous_wave() {
        let s = strategy(CanarySize::Targets(3), &[10]);
        assert_eq!(shape(&s, 10), [w("canary", 0, 3), w("full", 3, 10)]);
    }

    /// Labels or annotations from `key=value` pairs.
    fn labels<T: FromIterator<(String, String)>>(pairs: &[(&str, &str)]) -> T {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn node(
        name: &str,
        label_pairs: &[(&str, &str)],
        annotation_pairs: &[(&str, &str)],
    ) -> Candidate {
        Candidate::node(
            name,
            labels::<Labels>(label_pairs),
            labels::<BTreeMap<_, _>>(annotation_pairs),
        )
    }

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn query(group_by: Option<&str>, now: Timestamp) -> Query<'_> {
        Query {
            policy: "os",
            version: "v2",
            images: None,
            group_by,
            now,
        }
    }

    fn nodes_rules(exclude: Option<Selector>) -> TargetRules {
        let selector = Selector::from_labels(&labels::<Labels>(&[("role", "worker")]));
        TargetRules {
            scope: Scope::Nodes {
                selector,
                pool_label: Some("pool".into()),
            },
            exclude,
        }
    }

    #[test]
    fn standing_follows_the_first_rule_that_holds() {
        let hold = Selector::from_labels(&labels::<Labels>(&[("hold", "true")]));
        let rules = nodes_rules(Some(hold));
        let now = at("2026-11-22T12:00:00Z");
        let standing = |annotations: &[(&str, &str)], label_pairs: &[(&str, &str)]| {
            rules.standing(&node("n", label_pairs, annotations), &query(None, now))
        };
        assert_eq!(standing(&[], &[]), Standing::Eligible);
        assert_eq!(
            standing(&[("patch.patchpilot.dev/os", "v2")], &[]),
            Standing::UpToDate
        );
        assert_eq!(
            standing(&[("patch.patchpilot.dev/os", "v1")], &[]),
            Standing::Eligible
        );
        assert_eq!(
            standing(&[("patch.patchpilot.dev/other", "v2")], &[]),
            Standing::Eligible
        );
        assert_eq!(
            standing(
                &[
                    (keys::EXCLUDE, "GPU driver pinned"),
                    ("patch.patchpilot.dev/os", "v2")
                ],
                &[]
            ),
            Standing::Excluded("GPU driver pinned".into())
        );
        assert_eq!(
            standing(
                &[
                    (keys::EXCLUDE, "until Monday"),
                    (keys::EXCLUDE_UNTIL, "2026-11-23T00:00:00Z")
                ],
                &[]
            ),
            Standing::Excluded("until Monday".into())
        );
        // An exclude-until that has passed lifts the exclusion; the next rules apply.
        assert_eq!(
            standing(
                &[
                    (keys::EXCLUDE, "until Saturday"),
                    (keys::EXCLUDE_UNTIL, "2026-11-21T00:00:00Z")
                ],
                &[("hold", "true")]
            ),
            Standing::Excluded(EXCLUDED_BY_SELECTOR.into())
        );
        assert_eq!(
            standing(
                &[
                    (keys::EXCLUDE, "x"),
                    (keys::EXCLUDE_UNTIL, "2026-11-22T12:00:00Z")
                ],
                &[]
            ),
            Standing::Eligible
        );
        // An unreadable instant does not lift the exclusion.
        assert_eq!(
            standing(&[(keys::EXCLUDE, "x"), (keys::EXCLUDE_UNTIL, "soon")], &[]),
            Standing::Excluded("x".into())
        );
        assert_eq!(
            standing(&[], &[("hold", "true")]),
            Standing::Excluded(EXCLUDED_BY_SELECTOR.into())
        );
    }

    #[test]
    fn eligible_targets_are_ordered_by_group_then_name() {
        let candidates = vec![
            node("c", &[("role", "worker"), ("zone", "b")], &[]),
            node("a", &[("role", "worker"), ("zone", "b")], &[]),
            node("b", &[("role", "worker")], &[]),
            node("z", &[("role", "worker"), ("zone", "a")], &[]),
            node("other", &[("role", "infra"), ("zone", "a")], &[]),
            node(
                "done",
                &[("role", "worker")],
                &[("patch.patchpilot.dev/os", "v2")],
            ),
        ];
        let now = at("2026-11-22T12:00:00Z");
        let rules = nodes_rules(None);
        let inv = inventory(
            &rules,
            &query(Some("zone"), now),
            &candidates,
            &Namespaces::new(),
            |_| false,
        );
        let names = |list: &[&Candidate]| list.iter().map(|c| c.id.to_string()).collect::<Vec<_>>();
        assert_eq!(inv.selected, 5);
        assert_eq!(
            names(&inv.eligible),
            ["Node/z", "Node/a", "Node/c", "Node/b"]
        );
        assert_eq!(names(&inv.up_to_date), ["Node/done"]);
        let inv = inventory(
            &rules,
            &query(None, now),
            &candidates,
            &Namespaces::new(),
            |_| false,
        );
        assert_eq!(
            names(&inv.eligible),
            ["Node/a", "Node/b", "Node/c", "Node/z"]
        );
        // A target the rollout itself updated stays eligible.
        let inv = inventory(
            &rules,
            &query(None, now),
            &candidates,
            &Namespaces::new(),
            |c| c.id.as_str() == "Node/done",
        );
        assert_eq!(
            names(&inv.eligible),
            ["Node/a", "Node/b", "Node/c", "Node/done", "Node/z"]
        );
    }

    #[test]
    fn workloads_are_selected_by_kind_namespace_and_labels() {
        let rules = TargetRules {
            scope: Scope::Workloads {
                namespaces: Some(
                    Selector::everything()
                        .with_expression("team", "Exists", &[])
                        .unwrap(),
                ),
                selector: Selector::everything(),
                kinds: BTreeSet::from([WorkloadKind::Deployment, WorkloadKind::StatefulSet]),
            },
            exclude: None,
        };
        let namespaces = Namespaces::from([
            ("shop".to_owned(), labels::<Labels>(&[("team", "shop")])),
            ("kube-system".to_owned(), Labels::new()),
        ]);
        let workload = |kind, ns: &str, name: &str| {
            Candidate::workload(kind, ns, name, Labels::new(), BTreeMap::new())
        };
        assert!(rules.selects(
            &workload(WorkloadKind::Deployment, "shop", "web"),
            &namespaces
        ));
        assert!(!rules.selects(
            &workload(WorkloadKind::DaemonSet, "shop", "agent"),
            &namespaces
        ));
        assert!(!rules.selects(
            &workload(WorkloadKind::Deployment, "kube-system", "dns"),
            &namespaces
        ));
        assert!(!rules.selects(
            &workload(WorkloadKind::Deployment, "unknown", "x"),
            &namespaces
        ));
        assert!(!rules.selects(&node("n", &[], &[]), &namespaces));
    }

    #[test]
    fn workloads_without_a_patched_image_are_not_applicable() {
        use crate::image::ContainerImage;
        let rules = TargetRules {
            scope: Scope::Workloads {
                namespaces: None,
                selector: Selector::everything(),
                kinds: WorkloadKind::ALL.into_iter().collect(),
            },
            exclude: None,
        };
        let images = |list: &[(&str, &str)]| -> Vec<ContainerImage> {
            list.iter()
                .map(|(container, image)| ContainerImage {
                    container: (*container).into(),
                    image: (*image).into(),
                })
                .collect()
        };
        let workload = |name: &str, annotations: &[(&str, &str)], list: Option<&[(&str, &str)]>| {
            let candidate = Candidate::workload(
                WorkloadKind::Deployment,
                "shop",
                name,
                Labels::new(),
                labels::<BTreeMap<_, _>>(annotations),
            );
            match list {
                Some(list) => candidate.with_images(images(list)),
                None => candidate,
            }
        };
        let nginx: &[(&str, &str)] = &[("web", "nginx:1.27.3"), ("cache", "redis:7")];
        let redis: &[(&str, &str)] = &[("cache", "docker.io/library/redis:7.4.1")];
        let done = [("patch.patchpilot.dev/os", "v2")];
        let candidates = vec![
            workload("web", &[], Some(nginx)),
            workload("cache", &[], Some(redis)),
            workload("empty", &[], Some(&[])),
            // Exclusions come first; the version annotation comes after.
            workload("held", &[(keys::EXCLUDE, "frozen")], Some(redis)),
            workload("recorded", &done, Some(redis)),
            workload("patched", &done, Some(nginx)),
            // Containers not read: the patch is taken to apply.
            workload("unread", &[], None),
            // A workload this rollout worked on stays eligible.
            workload("ours", &[], Some(redis)),
        ];
        let patches = [ImagePatch {
            image: "docker.io/library/nginx:1.27.4".into(),
            container: None,
        }];
        let query = Query {
            images: Some(&patches),
            ..query(None, at("2026-11-22T12:00:00Z"))
        };
        let inv = inventory(&rules, &query, &candidates, &Namespaces::new(), |c| {
            c.id.as_str() == "Deployment/shop/ours"
        });
        let names = |list: &[&Candidate]| list.iter().map(|c| c.id.to_string()).collect::<Vec<_>>();
        assert_eq!(inv.selected, 8);
        assert_eq!(
            names(&inv.not_applicable),
            [
                "Deployment/shop/cache",
                "Deployment/shop/empty",
                "Deployment/shop/recorded"
            ]
        );
        assert_eq!(inv.excluded.len(), 1);
        assert_eq!(names(&inv.up_to_date), ["Deployment/shop/patched"]);
        assert_eq!(
            names(&inv.eligible),
            [
                "Deployment/shop/ours",
                "Deployment/shop/unread",
                "Deployment/shop/web"
            ]
        );
        assert_eq!(
            rules.standing(&candidates[1], &query),
            Standing::NotApplicable
        );
        // A patch naming a container applies only where a container of that name runs it.
        let web_only = [ImagePatch {
            image: "nginx:1.27.4".into(),
            container: Some("frontend".into()),
        }];
        let query = Query {
            images: Some(&web_only),
            ..query
        };
        assert_eq!(
            rules.standing(&candidates[0], &query),
            Standing::NotApplicable
        );
        // Without image replacements (a node patch) nothing is ruled out.
        let query = Query {
            images: None,
            ..query
        };
        assert_eq!(rules.standing(&candidates[1], &query), Standing::Eligible);
    }

    #[test]
    fn nodes_are_never_not_applicable() {
        let rules = nodes_rules(None);
        let patches = [ImagePatch {
            image: "nginx:1.27.4".into(),
            container: None,
        }];
        let query = Query {
            images: Some(&patches),
            ..query(None, at("2026-11-22T12:00:00Z"))
        };
        let candidates = vec![node("a", &[("role", "worker")], &[])];
        let inv = inventory(&rules, &query, &candidates, &Namespaces::new(), |_| false);
        assert!(inv.not_applicable.is_empty());
        assert_eq!(inv.eligible.len(), 1);
    }

    #[test]
    fn pools_come_from_the_pool_label() {
        let rules = nodes_rules(None);
        assert_eq!(rules.pool(&node("n", &[("pool", "gpu")], &[])), Some("gpu"));
        assert_eq!(rules.pool(&node("n", &[], &[])), Some(""));
    }
}
