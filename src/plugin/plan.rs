//! `plan POLICY`: the plan of a policy against the live cluster (waves, targets,
//! exclusions) and when its window next opens.

use jiff::Timestamp;
use kube::{Api, Client};
use serde::Serialize;

use super::{
    Outcome, Output, PluginError, list,
    live::{self, Live},
    text,
};
use crate::{
    api::PatchRollout,
    cli::plan::Plan,
    engine::window::{Evaluation, Interval},
};

/// The plan as JSON or YAML: `patchpilot plan`'s JSON, then the window and the policy's
/// current rollout.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Shown<'a> {
    #[serde(flatten)]
    plan: &'a Plan,
    #[serde(skip_serializing_if = "Option::is_none")]
    window: Option<WindowShown>,
    #[serde(skip_serializing_if = "Option::is_none")]
    current_rollout: Option<String>,
}

/// A window evaluated at the server's clock.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WindowShown {
    name: String,
    /// Why the window cannot be used, when it cannot.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    open: bool,
    current: Option<Interval>,
    next: Option<Interval>,
}

impl WindowShown {
    fn of(name: String, evaluation: Result<Evaluation, String>) -> Self {
        match evaluation {
            Ok(e) => WindowShown {
                name,
                error: None,
                open: e.open,
                current: e.current,
                next: e.next.first().copied(),
            },
            Err(error) => WindowShown {
                name,
                error: Some(error),
                open: false,
                current: None,
                next: None,
            },
        }
    }
}

/// Prints the plan of `policy`'s version over the live cluster.
pub async fn run(client: &Client, policy: &str, output: Option<Output>) -> Outcome {
    let live = Live::read(client, policy).await?;
    let inventory = live.inventory(live.version());
    let plan = Plan::of(
        live.name(),
        live.version(),
        &live.engine.strategy,
        &inventory,
    );
    let window = live::window(client, &live.policy, live.now, 1)
        .await?
        .map(|(name, evaluation)| WindowShown::of(name, evaluation));
    let current = live
        .policy
        .status
        .as_ref()
        .and_then(|s| s.current_rollout.clone());
    let rollout = match &current {
        Some(name) => Api::<PatchRollout>::all(client.clone())
            .get_opt(name)
            .await
            .map_err(|e| PluginError::api(format!("PatchRollout {name}"), e))?,
        None => None,
    };
    let shown = Shown {
        plan: &plan,
        window,
        current_rollout: current,
    };
    match output {
        Some(format @ (Output::Json | Output::Yaml)) => {
            print!("{}", super::status::encode(&shown, format)?);
        }
        Some(Output::Wide) | None => {
            print!("{}", draw(&shown, rollout.as_ref(), live.now));
        }
    }
    Ok(0)
}

/// The plan for people: `patchpilot plan -o text`, then the window and the current rollout.
fn draw(shown: &Shown<'_>, rollout: Option<&PatchRollout>, now: Timestamp) -> String {
    let mut out = shown.plan.text();
    out.push_str(&format!(
        "Window: {}\n",
        window_line(shown.window.as_ref(), now)
    ));
    if let Some(name) = &shown.current_rollout {
        let standing = rollout.and_then(|r| r.status.as_ref()).map_or_else(
            || "not created yet".to_owned(),
            |status| {
                let phase = text::phase_with_reason(status.phase, text::waiting(status));
                match &status.progress {
                    Some(progress) => format!("{phase}, {progress} updated"),
                    None => phase,
                }
            },
        );
        out.push_str(&format!(
            "Current rollout: {name} ({standing}): kubectl patchpilot status {name}\n"
        ));
    }
    out
}

/// Where the window stands, in a sentence with instants in local time and UTC.
fn window_line(window: Option<&WindowShown>, now: Timestamp) -> String {
    let Some(window) = window else {
        return "none: targets may start at any time".to_owned();
    };
    let name = &window.name;
    if let Some(error) = &window.error {
        return error.clone();
    }
    let span = |i: &Interval| format!("{} until {}", text::instant(i.start), text::instant(i.end));
    match (&window.current, &window.next) {
        (Some(current), _) => format!(
            "MaintenanceWindow {name} is {}: {}",
            list::window(current.start, current.end, now),
            span(current)
        ),
        (None, Some(next)) => format!(
            "MaintenanceWindow {name} is closed; it opens {}: {}",
            list::window(next.start, next.end, now),
            span(next)
        ),
        (None, None) => format!(
            "MaintenanceWindow {name} is closed and does not open in the next {} days",
            crate::engine::window::HORIZON_DAYS
        ),
    }
}

#[cfg(test)]
mod tests {
    use jiff::Timestamp;

    use super::{WindowShown, window_line};
    use crate::engine::window::{Evaluation, Interval};

    #[test]
    fn the_window_line_says_when_targets_may_start() {
        let now: Timestamp = "2026-12-05T12:00:00Z".parse().unwrap();
        let at = |s: &str| s.parse::<Timestamp>().unwrap();
        let closed = WindowShown::of(
            "nights".into(),
            Ok(Evaluation {
                open: false,
                current: None,
                next: vec![
                    Interval::new(at("2026-12-05T22:00:00Z"), at("2026-12-06T04:00:00Z")).unwrap(),
                ],
            }),
        );
        let line = window_line(Some(&closed), now);
        assert!(
            line.starts_with("MaintenanceWindow nights is closed; it opens in 10h: "),
            "{line}"
        );
        assert!(line.contains("2026-12-05 22:00:00 UTC"), "{line}");
        let open = WindowShown::of(
            "nights".into(),
            Ok(Evaluation {
                open: true,
                current: Some(
                    Interval::new(at("2026-12-05T10:00:00Z"), at("2026-12-05T14:00:00Z")).unwrap(),
                ),
                next: vec![],
            }),
        );
        assert!(
            window_line(Some(&open), now)
                .starts_with("MaintenanceWindow nights is open for 120m: ")
        );
        let never = WindowShown::of(
            "frozen".into(),
            Ok(Evaluation {
                open: false,
                current: None,
                next: vec![],
            }),
        );
        assert_eq!(
            window_line(Some(&never), now),
            "MaintenanceWindow frozen is closed and does not open in the next 400 days"
        );
        let missing = WindowShown::of(
            "gone".into(),
            Err("MaintenanceWindow gone does not exist: no target starts until it does".into()),
        );
        assert!(window_line(Some(&missing), now).contains("does not exist"));
        assert_eq!(
            window_line(None, now),
            "none: targets may start at any time"
        );
    }
}
