//! The MaintenanceWindow controller: `open`, `currentWindow` and `nextWindow`, updated at
//! each boundary.

use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{ResourceExt, runtime::controller::Action as Requeue};
use patchpilot_engine::machine::{
    Condition, ConditionStatus as CS, ConditionType as CT, compute_conditions, stalled_conditions,
};

use super::{
    context::Context,
    error::{Error, Result},
};
use patchpilot_api::{
    Interval, MaintenanceWindow, MaintenanceWindowStatus,
    convert::{condition_from_api, condition_to_api, one_line},
};

fn interval(i: &patchpilot_engine::window::Interval) -> Interval {
    Interval {
        start: Time(i.start),
        end: Time(i.end),
    }
}

/// Reconciles one MaintenanceWindow.
#[tracing::instrument(skip_all, fields(window = %window.name_any()))]
pub async fn reconcile(window: Arc<MaintenanceWindow>, ctx: Arc<Context>) -> Result<Requeue> {
    ctx.until_ready().await;
    let window = ctx.own_view(window);
    let _timer = ctx.metrics.reconcile("window");
    let name = window.name_any();
    let now = ctx.clock.now();
    let generation = window.metadata.generation.unwrap_or(0);
    let previous: Vec<Condition> = window
        .status
        .iter()
        .flat_map(|s| s.conditions.iter())
        .filter_map(condition_from_api)
        .collect();
    let (status, wake) = match window.spec.to_engine_reporting_all() {
        Err(problems) => {
            // A window changes nothing in the cluster: it has no `Reconciling` condition.
            let mut wanted = stalled_conditions("InvalidSpec", one_line(&problems));
            wanted.retain(|(kind, ..)| *kind != CT::Reconciling);
            let conditions = compute_conditions(&previous, wanted, generation, now);
            (
                MaintenanceWindowStatus {
                    observed_generation: Some(generation),
                    conditions: conditions.iter().map(condition_to_api).collect(),
                    ..Default::default()
                },
                None,
            )
        }
        Ok(engine) => {
            let evaluation = engine.evaluate(now, 1);
            ctx.metrics.window(&name, evaluation.open);
            let next = evaluation.next.first();
            let open_message = match (&evaluation.current, next) {
                (Some(current), _) => format!("open until {}", current.end),
                (None, Some(next)) => format!("closed until {}", next.start),
                (None, None) => "closed, and no opening within 400 days".into(),
            };
            let conditions = compute_conditions(
                &previous,
                vec![
                    (
                        CT::Ready,
                        CS::True,
                        "Valid".into(),
                        "the window is valid".into(),
                    ),
                    (CT::Stalled, CS::False, "Valid".into(), String::new()),
                    (
                        CT::WindowOpen,
                        CS::from_bool(evaluation.open),
                        if evaluation.open {
                            "Open".into()
                        } else {
                            "Closed".into()
                        },
                        open_message,
                    ),
                ],
                generation,
                now,
            );
            let wake = [
                evaluation.current.as_ref().map(|c| c.end),
                next.map(|n| n.start),
            ]
            .into_iter()
            .flatten()
            .min();
            let status = MaintenanceWindowStatus {
                open: evaluation.open,
                current_window: evaluation.current.as_ref().map(interval),
                next_window: next.map(interval),
                observed_generation: Some(generation),
                conditions: conditions.iter().map(condition_to_api).collect(),
            };
            (status, wake)
        }
    };
    ctx.write_status(window.as_ref(), &status).await?;
    Ok(ctx.requeue_at(wake))
}

/// How soon to retry after an error.
pub fn error_policy(window: Arc<MaintenanceWindow>, error: &Error, ctx: Arc<Context>) -> Requeue {
    ctx.metrics.reconcile_error("window", error.metric_label());
    tracing::warn!(window = %window.name_any(), %error, "reconcile failed");
    Requeue::requeue(error.retry_after())
}
