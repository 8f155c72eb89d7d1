//! What PodDisruptionBudgets say of an eviction before it is asked for.
//!
//! The API server refuses to evict a Ready pod while the one budget that selects it allows
//! no disruption (`status.disruptionsAllowed` is 0) or has not observed its latest spec
//! yet; a refused eviction is a request that achieves nothing. Budgets are few and small, so
//! the operator watches them all and asks only when the budget allows, counting its own
//! evictions against a budget until the cache shows the budget's next version. A budget's
//! change triggers the rollouts whose pods it blocks, so a drain goes on as soon as the
//! budget allows rather than at its next back-off.
//!
//! The verdict follows the API server's: a pod that is not Ready may go without using up a
//! disruption when the budget's `unhealthyPodEvictionPolicy` is `AlwaysAllow`, or (the
//! default, `IfHealthyBudget`) when the budget has its desired healthy pods; otherwise
//! it takes one of `disruptionsAllowed`. Where the cache cannot tell (no budget, or
//! several, which the server answers with an error), the operator asks and the server
//! decides.

use std::collections::BTreeMap;

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
    /// The budget `budget` (`namespace/name`), cached at `version`, allows it.
    Allowed {
        /// The budget.
        budget: String,
        /// Its cached resource version.
        version: Option<String>,
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
    let key = key(budget);
    let version = budget.metadata.resource_version.clone();
    let status = budget.status.as_ref();
    if !health::pod_ready(pod) {
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
                version: None,
            };
        }
    }
    let observed = status.and_then(|s| s.observed_generation).unwrap_or(0);
    let current = observed >= budget.metadata.generation.unwrap_or(0);
    let spent = ctx.budgets_spent.get(&key, version.as_deref()).unwrap_or(0);
    let allowed = status.map_or(0, |s| s.disruptions_allowed) - spent;
    if current && allowed > 0 {
        Verdict::Allowed {
            budget: key,
            version,
        }
    } else {
        Verdict::Refused { budget: key }
    }
}

/// Counts an eviction against `budget`, cached at `version`, until the cache shows the
/// budget's next version; an eviction allowed without a version took no disruption.
pub fn spend(ctx: &Context, budget: &str, version: Option<&str>) {
    if version.is_none() {
        return;
    }
    let spent = ctx.budgets_spent.get(budget, version).unwrap_or(0);
    ctx.budgets_spent
        .set(budget, version, None, Some(spent + 1));
}
