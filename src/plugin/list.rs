//! `list`: every rollout, newest first.

use jiff::Timestamp;
use kube::Client;

use super::{Outcome, Output, all_rollouts, text};
use crate::api::PatchRollout;

/// Prints every rollout as a table, or as a kubectl List in JSON or YAML.
pub async fn run(client: &Client, output: Option<Output>) -> Outcome {
    let rollouts = all_rollouts(client).await?;
    let now = super::server_now(client).await;
    let out = match output {
        Some(format @ (Output::Json | Output::Yaml)) => {
            let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": rollouts});
            super::status::encode(&list, format)?
        }
        Some(Output::Wide) => table(&rollouts, now, true),
        None => table(&rollouts, now, false),
    };
    if rollouts.is_empty() && output.is_none() {
        eprintln!("No PatchRollouts found.");
        return Ok(0);
    }
    print!("{out}");
    Ok(0)
}

/// The table of rollouts, as of `now`.
fn table(rollouts: &[PatchRollout], now: Timestamp, wide: bool) -> String {
    let mut headers = vec![
        "NAME",
        "POLICY",
        "VERSION",
        "PHASE",
        "WAVE",
        "UPDATED",
        "IN PROGRESS",
        "FAILED",
        "AGE",
        "NEXT WINDOW",
    ];
    if wide {
        headers.extend(["CHANGE", "MESSAGE"]);
    }
    let rows: Vec<Vec<String>> = rollouts
        .iter()
        .map(|rollout| {
            let status = rollout.status.clone().unwrap_or_default();
            let waiting = text::waiting(&status);
            let wave = status.wave.as_ref().map_or("-".to_owned(), |w| {
                format!("{} ({}/{})", w.name, w.index, w.total)
            });
            let mut row = vec![
                rollout.metadata.name.clone().unwrap_or_default(),
                rollout.spec.policy.clone(),
                rollout.spec.patch.version.clone(),
                text::phase_with_reason(status.phase, waiting),
                wave,
                status.progress.clone().unwrap_or_else(|| "-".into()),
                status.targets.in_progress.to_string(),
                status.targets.failed.to_string(),
                rollout
                    .metadata
                    .creation_timestamp
                    .as_ref()
                    .map_or("-".into(), |t| text::age(t.0, now)),
                status
                    .next_window
                    .as_ref()
                    .map_or("-".into(), |w| window(w.start.0, w.end.0, now)),
            ];
            if wide {
                row.push(
                    rollout
                        .spec
                        .change_ref
                        .clone()
                        .unwrap_or_else(|| "-".into()),
                );
                row.push(status.message.clone().unwrap_or_default());
            }
            row
        })
        .collect();
    text::table(&headers, &rows)
}

/// A window interval seen from `now`: `open for 2h` or `in 5h3m`.
pub fn window(start: Timestamp, end: Timestamp, now: Timestamp) -> String {
    if start <= now {
        format!("open for {}", text::age(now, end))
    } else {
        format!("in {}", text::age(now, start))
    }
}

#[cfg(test)]
mod tests {
    use jiff::Timestamp;
    use serde_json::json;

    use crate::api::PatchRollout;

    #[test]
    fn the_table_says_where_each_rollout_stands() {
        let now: Timestamp = "2026-11-28T12:00:00Z".parse().unwrap();
        let rollout: PatchRollout = serde_json::from_value(json!({
            "apiVersion": "patchpilot.dev/v1alpha1",
            "kind": "PatchRollout",
            "metadata": {"name": "os-1", "creationTimestamp": "2026-11-28T11:00:00Z"},
            "spec": {"policy": "os", "patch": {"version": "2026.11", "classification": "Important"}, "changeRef": "CHG-1"},
            "status": {
                "phase": "Paused",
                "wave": {"index": 1, "name": "canary", "total": 3},
                "progress": "1/9",
                "targets": {"total": 9, "excluded": 0, "upToDate": 0, "pending": 8, "inProgress": 0, "updated": 1, "failed": 0, "rolledBack": 0},
                "nextWindow": {"start": "2026-11-28T22:00:00Z", "end": "2026-11-29T04:00:00Z"},
                "conditions": [{"type": "Reconciling", "status": "True", "reason": "AwaitingPromotion", "message": "m", "lastTransitionTime": "2026-11-28T11:30:00Z"}],
                "message": "the canary is healthy",
            },
        }))
        .unwrap();
        let table = super::table(&[rollout], now, true);
        let lines: Vec<&str> = table.lines().collect();
        assert!(
            lines[0].starts_with("NAME   POLICY   VERSION   PHASE"),
            "{table}"
        );
        for cell in [
            "os-1",
            "Paused (AwaitingPromotion)",
            "canary (1/3)",
            "1/9",
            "60m",
            "in 10h",
            "CHG-1",
            "the canary is healthy",
        ] {
            assert!(lines[1].contains(cell), "{cell} missing from {table}");
        }
    }
}
