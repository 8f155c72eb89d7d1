//! `calendar [WINDOW…] [--days N]`: the upcoming openings of each maintenance window with
//! the rollouts planned in them, and the freezes, as iCalendar on standard output, built
//! as the operator builds its `/calendar.ics` (`controller::calendar`), on the API server's
//! clock.

use kube::{Api, Client, Resource, api::ListParams};
use serde::de::DeserializeOwned;

use super::{Outcome, PluginError};
use crate::{
    api::{MaintenanceWindow, PatchPolicy, PatchRollout},
    controller::calendar::schedule,
    engine::calendar::{self, Horizon},
};

/// Prints the calendar of `windows` (every window when none is named), `days` ahead.
pub async fn run(client: &Client, windows: &[String], days: u32) -> Outcome {
    let all: Vec<MaintenanceWindow> = list(client, "MaintenanceWindows").await?;
    for name in windows {
        if !all.iter().any(|w| w.meta().name.as_ref() == Some(name)) {
            return Err(PluginError::Refused(format!(
                "MaintenanceWindow {name} not found (kubectl get maintenancewindows lists them)"
            )));
        }
    }
    let chosen = |name: &str| windows.is_empty() || windows.iter().any(|w| w == name);
    let policies: Vec<PatchPolicy> = list(client, "PatchPolicies").await?;
    let rollouts: Vec<PatchRollout> = list(client, "PatchRollouts").await?;
    // Every window is read, so that a policy naming one not asked for is not taken for a
    // policy naming one that does not exist.
    let (mut schedule, problems) = schedule(&all, &policies, &rollouts);
    schedule.windows.retain(|w| chosen(&w.name));
    for problem in problems.iter().filter(|p| chosen(p.window())) {
        eprintln!("warning: {problem}");
    }
    let now = super::server_now(client).await;
    print!("{}", calendar::ics(&schedule, Horizon::days(days), now));
    Ok(0)
}

/// Every object of a cluster-scoped kind.
async fn list<K>(client: &Client, what: &str) -> Result<Vec<K>, PluginError>
where
    K: Resource<DynamicType = (), Scope = kube::core::ClusterResourceScope>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
{
    Ok(Api::<K>::all(client.clone())
        .list(&ListParams::default())
        .await
        .map_err(|e| PluginError::api(format!("listing {what}"), e))?
        .items)
}
