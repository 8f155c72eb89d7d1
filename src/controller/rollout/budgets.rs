//! What PodDisruptionBudgets say of an eviction before it is asked for.
//!
//! The API server refuses to evict a Ready pod while the one budget that selects it allows
//! no disruption (`status.disruptionsAllowed` is 0) or has not observed its latest spec
//! yet; a refused eviction is a request that achieves nothing. Budgets are few and small, so
//! the operator watches them all and asks only when the budget allows. A budget's change
//! triggers the rollouts whose pods it blocks, so a drain goes on as soon as the budget
//! allows rather than at its next back-off.
//!
//! The operator's own evictions count against a budget until the cache shows them: the API
//! server lists an evicted pod in the budget's `status.disruptedPods` in the same write that
//! takes the disruption, and the budget watch shows every version in order to [`Spent::seen`].
//! A version written in between by the disruption controller may reflect some evictions and
//! not others, so "the cache moved on" is not enough.
//!
//! The verdict follows the API server's: a pod that is not Ready may go without using up a
//! disruption when the budget's `unhealthyPodEvictionPolicy` is `AlwaysAllow`, or (the
//! default, `IfHealthyBudget`) when the budget has its desired healthy pods; otherwise
//! it takes one of `disruptionsAllowed`. Where the cache cannot tell (no budget, or
//! several, which the server answers with an error), the operator asks and the server
//! decides.

use std::{
    collections::{BTreeMap, HashMap},
    sync::Mutex,
};

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::{core::v1::Pod, policy::v1::PodDisruptionBudget};
use kube::{
    ResourceExt,
    core::{Selector, SelectorExt},
};

use super::{super::context::Context, health};

/// What the cached budgets say of evicting a pod now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// No cached budget settles it: ask the API server.
    Ask,
    /// The budget `budget` (`namespace/name`) allows it.
    Allowed {
        /// The budget.
        budget: String,
        /// Whether the eviction takes one of the budget's disruptions (a Ready pod's does).
        takes: bool,
    },
    /// The budget `budget` refuses it: asking now would be refused.
    Refused {
        /// The budget.
        budget: String,
    },
}

/// Whether `budget` selects pods labelled `labels` (in its namespace): a missing selector
/// selects none, an empty one every pod; `None` for a selector that does not parse.
fn selects(budget: &PodDisruptionBudget, labels: &BTreeMap<String, String>) -> Option<bool> {
    let Some(selector) = budget.spec.as_ref().and_then(|s| s.selector.clone()) else {
        return Some(false);
    };
    let selector = Selector::try_from(selector).ok()?;
    Some(selector.matches(labels))
}

/// The budget's `namespace/name`, as refusals and the rollout status name it.
pub fn key(budget: &PodDisruptionBudget) -> String {
    format!(
        "{}/{}",
        budget.namespace().unwrap_or_default(),
        budget.name_any()
    )
}

/// What the cached budgets say of evicting `pod` now.
pub fn verdict(ctx: &Context, pod: &Pod) -> Verdict {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or_default();
    let empty = BTreeMap::new();
    let labels = pod.metadata.labels.as_ref().unwrap_or(&empty);
    let mut matching = Vec::new();
    for budget in ctx.stores.budgets.state() {
        if budget.metadata.namespace.as_deref() != Some(namespace) {
            continue;
        }
        match selects(&budget, labels) {
            Some(true) => matching.push(budget),
            Some(false) => {}
            None => return Verdict::Ask,
        }
    }
    let [budget] = matching.as_slice() else {
        return Verdict::Ask;
    };
    let unseen = ctx.budgets_spent.unseen(budget, ctx.clock.now());
    judge(budget, health::pod_ready(pod), unseen)
}

/// The API server's rules for evicting a pod (`ready` or not) that `budget` selects, with
/// `unseen` of the operator's own evictions not yet in the budget's status.
fn judge(budget: &PodDisruptionBudget, ready: bool, unseen: i32) -> Verdict {
    let key = key(budget);
    let status = budget.status.as_ref();
    if !ready {
        let always = budget
            .spec
            .as_ref()
            .and_then(|s| s.unhealthy_pod_eviction_policy.as_deref())
            == Some("AlwaysAllow");
        let healthy_budget =
            status.is_some_and(|s| s.desired_healthy > 0 && s.current_healthy >= s.desired_healthy);
        if always || healthy_budget {
            // Goes without taking a disruption: nothing to count.
            return Verdict::Allowed {
                budget: key,
                takes: false,
            };
        }
    }
    let observed = status.and_then(|s| s.observed_generation).unwrap_or(0);
    let current = observed >= budget.metadata.generation.unwrap_or(0);
    let allowed = status.map_or(0, |s| s.disruptions_allowed) - unseen;
    if current && allowed > 0 {
        Verdict::Allowed {
            budget: key,
            takes: true,
        }
    } else {
        Verdict::Refused { budget: key }
    }
}

/// The operator's evictions that took a disruption of a budget, by budget
/// (`namespace/name`), until the cached budget shows them.
#[derive(Default)]
pub struct Spent(Mutex<HashMap<String, Vec<(String, Timestamp)>>>);

impl Spent {
    /// How long an eviction counts at most without the cache showing it (should the watch
    /// miss the version that did, on a relist): the disruption controller forgets a
    /// disrupted pod after two minutes; one is enough here.
    const AT_MOST: SignedDuration = SignedDuration::from_mins(1);

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<(String, Timestamp)>>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts the eviction of `pod` (its name) against `budget` from `at`.
    pub fn record(&self, budget: &str, pod: &str, at: Timestamp) {
        self.lock()
            .entry(budget.to_owned())
            .or_default()
            .push((pod.to_owned(), at));
    }

    /// Takes a version of `budget` from the watch: the evictions it lists as disrupted are
    /// in the budget's status from now on.
    pub fn seen(&self, budget: &PodDisruptionBudget) {
        let disrupted = budget
            .status
            .as_ref()
            .and_then(|s| s.disrupted_pods.as_ref());
        let Some(disrupted) = disrupted else {
            return;
        };
        let mut spent = self.lock();
        if let Some(pods) = spent.get_mut(&key(budget)) {
            pods.retain(|(pod, _)| !disrupted.contains_key(pod));
        }
    }

    /// The evictions against the cached `budget` that it does not show yet, at `now`.
    pub fn unseen(&self, budget: &PodDisruptionBudget, now: Timestamp) -> i32 {
        let mut spent = self.lock();
        let Some(pods) = spent.get_mut(&key(budget)) else {
            return 0;
        };
        let disrupted = budget
            .status
            .as_ref()
            .and_then(|s| s.disrupted_pods.as_ref());
        pods.retain(|(pod, at)| {
            now.duration_since(*at) < Self::AT_MOST
                && !disrupted.is_some_and(|d| d.contains_key(pod))
        });
        i32::try_from(pods.len()).unwrap_or(i32::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(version: &str, disrupted: &[&str]) -> PodDisruptionBudget {
        let disrupted: BTreeMap<&str, &str> = disrupted
            .iter()
            .map(|p| (*p, "2026-11-28T00:00:00Z"))
            .collect();
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "namespace": "shop", "resourceVersion": version},
            "status": {
                "disruptionsAllowed": 1, "currentHealthy": 59, "desiredHealthy": 58,
                "expectedPods": 60, "disruptedPods": disrupted,
            },
        }))
        .unwrap()
    }

    /// A budget as the disruption controller leaves it: `generation` 2, observed `observed`,
    /// `allowed` disruptions, 3 of 3 desired pods healthy.
    fn judged(observed: i64, allowed: i32, policy: Option<&str>) -> PodDisruptionBudget {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "namespace": "shop", "generation": 2},
            "spec": {"unhealthyPodEvictionPolicy": policy},
            "status": {
                "observedGeneration": observed, "disruptionsAllowed": allowed,
                "currentHealthy": 3, "desiredHealthy": 3, "expectedPods": 4,
            },
        }))
        .unwrap()
    }

    #[test]
    fn the_api_servers_rules_decide() {
        let allowed = |takes| Verdict::Allowed {
            budget: "shop/web".into(),
            takes,
        };
        let refused = Verdict::Refused {
            budget: "shop/web".into(),
        };
        // A Ready pod takes a disruption, counting the operator's own not yet shown.
        assert_eq!(judge(&judged(2, 1, None), true, 0), allowed(true));
        assert_eq!(judge(&judged(2, 1, None), true, 1), refused);
        assert_eq!(judge(&judged(2, 0, None), true, 0), refused);
        // A status that has not observed the latest spec allows nothing yet.
        assert_eq!(judge(&judged(1, 1, None), true, 0), refused);
        // A pod that is not Ready goes without taking one while the budget has its
        // healthy pods (the default policy), or always with AlwaysAllow.
        assert_eq!(judge(&judged(1, 0, None), false, 0), allowed(false));
        let mut short = judged(2, 0, Some("IfHealthyBudget"));
        short.status.as_mut().unwrap().current_healthy = 2;
        assert_eq!(judge(&short, false, 0), refused);
        short.spec.as_mut().unwrap().unhealthy_pod_eviction_policy = Some("AlwaysAllow".into());
        assert_eq!(judge(&short, false, 0), allowed(false));
    }

    #[test]
    fn evictions_count_until_a_version_of_the_budget_lists_them() {
        let spent = Spent::default();
        let now: Timestamp = "2026-11-28T00:00:00Z".parse().unwrap();
        spent.record("shop/web", "web-1", now);
        spent.record("shop/web", "web-2", now);
        assert_eq!(spent.unseen(&budget("10", &[]), now), 2);
        // A version showing the first eviction only: the second still counts.
        spent.seen(&budget("11", &["web-1"]));
        assert_eq!(spent.unseen(&budget("12", &[]), now), 1);
        // The cached version lists it: nothing left to count.
        assert_eq!(spent.unseen(&budget("13", &["web-2"]), now), 0);
        // An eviction no version ever shows stops counting after a minute.
        spent.record("shop/web", "web-3", now);
        let later = now + SignedDuration::from_secs(61);
        assert_eq!(spent.unseen(&budget("14", &[]), later), 0);
    }
}
