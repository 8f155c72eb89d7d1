//! `history POLICY`: the policy's rollouts, newest first, whether the rollout is still kept
//! or was pruned (`historyLimit`): version, change reference, who approved, start, end and
//! outcome. Rollouts that exist are read whole; pruned ones come from the policy's
//! `status.history`, which the operator writes as each rollout finishes.

use jiff::Timestamp;
use kube::Client;
use serde::Serialize;

use super::{Outcome, Output, all_rollouts, text};
use crate::{api::RolloutHistory, controller::history};

/// One rollout of the history, as printed.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Line {
    #[serde(flatten)]
    entry: RolloutHistory,
    /// Whether the PatchRollout still exists (`false`: pruned, remembered by the policy).
    kept: bool,
}

/// Prints the history of `policy`.
pub async fn run(client: &Client, policy: &str, output: Option<Output>) -> Outcome {
    let found = super::get_policy(client, policy).await?;
    let remembered = found.status.map(|s| s.history).unwrap_or_default();
    let rollouts: Vec<_> = all_rollouts(client)
        .await?
        .into_iter()
        .filter(|r| r.spec.policy == policy)
        .collect();
    let kept: std::collections::BTreeSet<String> = rollouts
        .iter()
        .filter_map(|r| r.metadata.name.clone())
        .collect();
    // Rollouts still going first (newest first, as listed), then the finished ones.
    let mut lines: Vec<Line> = rollouts
        .iter()
        .filter(|r| history::entry(r).is_none())
        .map(|r| {
            let status = r.status.clone().unwrap_or_default();
            Line {
                entry: RolloutHistory {
                    rollout: r.metadata.name.clone().unwrap_or_default(),
                    version: r.spec.patch.version.clone(),
                    change_ref: r.spec.change_ref.clone(),
                    approved_by: history::approved_by(r),
                    started_at: status.started_at.clone(),
                    completed_at: None,
                    outcome: status.phase,
                    updated: status.targets.updated,
                    failed: status.targets.failed,
                    rolled_back: status.targets.rolled_back,
                },
                kept: true,
            }
        })
        .collect();
    lines.extend(
        history::merge(&remembered, &rollouts)
            .into_iter()
            .map(|entry| Line {
                kept: kept.contains(&entry.rollout),
                entry,
            }),
    );
    match output {
        Some(format @ (Output::Json | Output::Yaml)) => {
            print!("{}", super::status::encode(&lines, format)?);
        }
        Some(Output::Wide) => print!("{}", table(&lines, true)),
        None if lines.is_empty() => eprintln!("PatchPolicy {policy} has no rollouts yet."),
        None => print!("{}", table(&lines, false)),
    }
    Ok(0)
}

/// The history as a table; `wide` adds the target counts.
fn table(lines: &[Line], wide: bool) -> String {
    let mut headers = vec![
        "ROLLOUT",
        "VERSION",
        "CHANGE",
        "APPROVED BY",
        "STARTED",
        "ENDED",
        "OUTCOME",
        "KEPT",
    ];
    if wide {
        headers.extend(["UPDATED", "FAILED", "ROLLED BACK"]);
    }
    let when = |t: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>| {
        t.map_or("-".to_owned(), |t| minute(t.0))
    };
    let rows: Vec<Vec<String>> = lines
        .iter()
        .map(|line| {
            let e = &line.entry;
            let mut row = vec![
                e.rollout.clone(),
                e.version.clone(),
                e.change_ref.clone().unwrap_or_else(|| "-".into()),
                e.approved_by.clone().unwrap_or_else(|| "-".into()),
                when(e.started_at.as_ref()),
                when(e.completed_at.as_ref()),
                format!("{:?}", e.outcome),
                if line.kept { "yes" } else { "pruned" }.to_owned(),
            ];
            if wide {
                row.extend([
                    e.updated.to_string(),
                    e.failed.to_string(),
                    e.rolled_back.to_string(),
                ]);
            }
            row
        })
        .collect();
    text::table(&headers, &rows)
}

/// An instant to the minute, in UTC: the same on every workstation, as a change record
/// wants it.
fn minute(at: Timestamp) -> String {
    at.strftime("%Y-%m-%d %H:%M UTC").to_string()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{Line, table};
    use crate::api::RolloutHistory;

    #[test]
    fn pruned_rollouts_are_marked() {
        let entry: RolloutHistory = serde_json::from_value(json!({
            "rollout": "os-1", "version": "2026.10", "changeRef": "CHG-7", "approvedBy": "alice",
            "startedAt": "2026-10-03T22:00:00Z", "completedAt": "2026-10-04T01:30:00Z",
            "outcome": "Succeeded", "updated": 9, "failed": 0, "rolledBack": 0,
        }))
        .unwrap();
        let shown = table(&[Line { entry, kept: false }], true);
        let row = shown.lines().nth(1).unwrap();
        for cell in [
            "os-1",
            "2026.10",
            "CHG-7",
            "alice",
            "2026-10-03 22:00 UTC",
            "2026-10-04 01:30 UTC",
            "Succeeded",
            "pruned",
            "9",
        ] {
            assert!(row.contains(cell), "{cell} missing from {shown}");
        }
    }
}
