//! `report`: compliance per policy, for people and for auditors. Each target is sorted out
//! by the engine's own rules (`plan::inventory`, `compliance::Compliance`), as the policy's
//! `status.compliance` counts them, with the detail an auditor asks for: which targets are
//! in progress or failed and why, which are excluded with what justification until when,
//! and which are overdue against the deadline of the patch's classification.

use jiff::Timestamp;
use kube::{Api, Client, api::ListParams};
use serde::Serialize;

use super::{
    Outcome, PluginError, ReportFormat,
    live::{Live, Reads},
    text,
};
use crate::{
    api::{PatchPolicy, PatchRollout},
    controller::policy::{compliance_deadline, released},
    engine::{
        compliance::{self, Compliance},
        keys,
        machine::{Record, RecordState},
        target::Candidate,
    },
};

/// The report of every policy asked for.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Report {
    /// When the report was taken, on the API server's clock.
    generated_at: Timestamp,
    policies: Vec<PolicyReport>,
}

/// One policy's compliance.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PolicyReport {
    policy: String,
    /// `Node` or `Workload`.
    target_kind: &'static str,
    version: String,
    classification: String,
    /// How long after the release every target must carry the version.
    deadline: String,
    /// When targets not patched become overdue; `None` while the release is not known.
    due: Option<Timestamp>,
    counts: Counts,
    targets: Vec<TargetReport>,
}

/// How many targets stand each way; `pending` does not count those in progress.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Counts {
    total: u32,
    up_to_date: u32,
    pending: u32,
    in_progress: u32,
    failed: u32,
    excluded: u32,
    not_applicable: u32,
    overdue: u32,
}

/// One target of a policy.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TargetReport {
    target: String,
    state: State,
    /// The version of the policy the target carries, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<String>,
    /// Why: the justification of an exclusion, the reason and message of a failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    /// The `exclude-until` of an excluded target.
    #[serde(skip_serializing_if = "Option::is_none")]
    excluded_until: Option<String>,
    overdue: bool,
}

/// Where a target stands against its policy's version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
enum State {
    UpToDate,
    Pending,
    InProgress,
    Failed,
    Excluded,
    NotApplicable,
}

/// Prints the compliance of `policies` (every policy when none is named).
pub async fn run(client: &Client, policies: &[String], format: Option<ReportFormat>) -> Outcome {
    let api = Api::<PatchPolicy>::all(client.clone());
    let chosen: Vec<PatchPolicy> = if policies.is_empty() {
        let mut all = api
            .list(&ListParams::default())
            .await
            .map_err(|e| PluginError::api("listing PatchPolicies", e))?
            .items;
        all.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        all
    } else {
        let mut chosen = Vec::new();
        for name in policies {
            chosen.push(super::get_policy(client, name).await?);
        }
        chosen
    };
    let mut report = Report {
        generated_at: super::server_now(client).await,
        policies: Vec::new(),
    };
    // Policies that target the same kinds read them once.
    let mut reads = Reads::default();
    for policy in chosen {
        // An invalid policy has no targets to report; say so and go on with the others.
        let live = match Live::sharing(client, policy, &mut reads).await {
            Ok(live) => live,
            Err(PluginError::Refused(why)) => {
                eprintln!("warning: {why}");
                continue;
            }
            Err(other) => return Err(other),
        };
        let rollout = match live
            .policy
            .status
            .as_ref()
            .and_then(|s| s.current_rollout.clone())
        {
            Some(current) => Api::<PatchRollout>::all(client.clone())
                .get_opt(&current)
                .await
                .map_err(|e| PluginError::api(format!("PatchRollout {current}"), e))?,
            None => None,
        };
        report.policies.push(policy_report(&live, rollout.as_ref()));
    }
    if report.policies.is_empty() && format.is_none() {
        eprintln!("No PatchPolicies found.");
        return Ok(0);
    }
    let out = match format {
        Some(ReportFormat::Json) => serde_json::to_string_pretty(&report)? + "\n",
        Some(ReportFormat::Yaml) => serde_yaml_ng::to_string(&report)
            .map_err(|e| PluginError::Output(std::io::Error::other(e)))?,
        Some(ReportFormat::Csv) => csv(&report),
        Some(ReportFormat::Wide) => table(&report, true),
        None => table(&report, false),
    };
    print!("{out}");
    Ok(0)
}

/// The compliance of one policy over the live cluster, judged as its status judges it.
fn policy_report(live: &Live, rollout: Option<&PatchRollout>) -> PolicyReport {
    let policy = &live.policy;
    let name = live.name();
    let version = live.version();
    let inventory = live.inventory(version);
    let current = policy
        .status
        .as_ref()
        .and_then(|s| s.current_rollout.clone())
        .unwrap_or_default();
    let deadline = compliance_deadline(policy, &live.engine);
    let released = released(policy, rollout);
    let question = compliance::Question {
        policy: name,
        version,
        rollout: &current,
        released,
        deadline,
        now: live.now,
    };
    let compliance = Compliance::of(&inventory, &question);
    let due = released.and_then(|r| r.saturating_add(deadline.signed()).ok());
    let past_due = compliance.overdue > 0;
    let carried = |c: &Candidate| c.annotations.get(&keys::version(name)).cloned();
    let mut targets = Vec::new();
    for (candidate, justification) in &inventory.excluded {
        targets.push(TargetReport {
            target: candidate.id.to_string(),
            state: State::Excluded,
            version: carried(candidate),
            reason: Some(justification.clone()),
            excluded_until: candidate.annotations.get(keys::EXCLUDE_UNTIL).cloned(),
            overdue: false,
        });
    }
    for (list, state) in [
        (&inventory.not_applicable, State::NotApplicable),
        (&inventory.up_to_date, State::UpToDate),
    ] {
        targets.extend(list.iter().map(|c| TargetReport {
            target: c.id.to_string(),
            state,
            version: carried(c),
            reason: None,
            excluded_until: None,
            overdue: false,
        }));
    }
    let mut in_progress = 0;
    for candidate in &inventory.eligible {
        let record = Record::read(&candidate.annotations, name);
        let (state, reason) = match &record {
            Some(r) if r.state.in_progress().is_some() && r.rollout == current => {
                in_progress += 1;
                (
                    State::InProgress,
                    Some(format!("{:?} by {}", r.state, r.rollout)),
                )
            }
            Some(r)
                if r.rollout == current
                    && matches!(r.state, RecordState::Failed | RecordState::RollbackFailed) =>
            {
                (State::Failed, Some(why(r)))
            }
            // Still to be patched, after the current rollout gave it back.
            Some(r) if r.rollout == current && r.state == RecordState::RolledBack => {
                (State::Pending, Some(format!("rolled back: {}", why(r))))
            }
            _ => (State::Pending, None),
        };
        targets.push(TargetReport {
            target: candidate.id.to_string(),
            state,
            version: carried(candidate),
            reason,
            excluded_until: None,
            overdue: past_due,
        });
    }
    targets.sort_by(|a, b| a.target.cmp(&b.target));
    PolicyReport {
        policy: name.to_owned(),
        target_kind: match live.engine.targets.scope {
            crate::engine::plan::Scope::Nodes { .. } => "Node",
            crate::engine::plan::Scope::Workloads { .. } => "Workload",
        },
        version: version.to_owned(),
        classification: format!("{:?}", policy.spec.patch.classification),
        deadline: deadline.to_string(),
        due,
        counts: Counts {
            total: compliance.total,
            up_to_date: compliance.up_to_date,
            pending: compliance.pending.saturating_sub(in_progress),
            in_progress,
            failed: compliance.failed,
            excluded: compliance.excluded,
            not_applicable: compliance.not_applicable,
            overdue: compliance.overdue,
        },
        targets,
    }
}

/// What a record says of why its target failed or was rolled back.
fn why(record: &Record) -> String {
    match (&record.reason, &record.message) {
        (Some(reason), Some(message)) => format!("{reason}: {message}"),
        (Some(reason), None) => reason.clone(),
        (None, Some(message)) => message.clone(),
        (None, None) => format!("{:?}", record.state),
    }
}

/// One line a policy; with `wide`, then every target that is not up to date.
fn table(report: &Report, wide: bool) -> String {
    let now = report.generated_at;
    let headers = [
        "POLICY",
        "KIND",
        "VERSION",
        "CLASS",
        "UP-TO-DATE",
        "PENDING",
        "IN PROGRESS",
        "FAILED",
        "EXCLUDED",
        "N/A",
        "OVERDUE",
        "DUE",
    ];
    let rows: Vec<Vec<String>> = report
        .policies
        .iter()
        .map(|p| {
            let c = &p.counts;
            let applicable = c.total - c.excluded - c.not_applicable;
            vec![
                p.policy.clone(),
                p.target_kind.to_owned(),
                p.version.clone(),
                p.classification.clone(),
                format!("{}/{applicable}", c.up_to_date),
                c.pending.to_string(),
                c.in_progress.to_string(),
                c.failed.to_string(),
                c.excluded.to_string(),
                c.not_applicable.to_string(),
                c.overdue.to_string(),
                due(p, now),
            ]
        })
        .collect();
    let mut out = text::table(&headers, &rows);
    let details: Vec<Vec<String>> = report
        .policies
        .iter()
        .flat_map(|p| {
            p.targets
                .iter()
                .filter(|t| wide || t.state == State::Excluded)
                .filter(|t| t.state != State::UpToDate)
                .map(|t| {
                    let mut why = t.reason.clone().unwrap_or_default();
                    if let Some(until) = &t.excluded_until {
                        why = format!("{why} (until {until})");
                    }
                    if t.overdue {
                        why = if why.is_empty() {
                            "overdue".into()
                        } else {
                            format!("overdue; {why}")
                        };
                    }
                    vec![
                        p.policy.clone(),
                        t.target.clone(),
                        format!("{:?}", t.state),
                        t.version.clone().unwrap_or_else(|| "-".into()),
                        why,
                    ]
                })
        })
        .collect();
    if !details.is_empty() {
        out.push('\n');
        out.push_str(&text::table(
            &["POLICY", "TARGET", "STATE", "CARRIES", "WHY"],
            &details,
        ));
    }
    out
}

/// When a policy's targets are due: the instant and how far it is, or how long ago.
fn due(policy: &PolicyReport, now: Timestamp) -> String {
    match policy.due {
        None => "-".into(),
        Some(due) if due <= now => format!("{} ({} ago)", day(due), text::age(due, now)),
        Some(due) => format!("{} (in {})", day(due), text::age(now, due)),
    }
}

fn day(at: Timestamp) -> String {
    at.strftime("%Y-%m-%d %H:%M UTC").to_string()
}

/// One row a target, with its policy's version, classification and due date: what an
/// auditor loads in a spreadsheet (RFC 4180).
fn csv(report: &Report) -> String {
    let mut out = String::from(
        "policy,version,classification,due,target,state,carries,reason,excludedUntil,overdue\r\n",
    );
    for p in &report.policies {
        let due = p.due.map(|d| d.to_string()).unwrap_or_default();
        for t in &p.targets {
            let fields = [
                p.policy.as_str(),
                p.version.as_str(),
                p.classification.as_str(),
                due.as_str(),
                t.target.as_str(),
                &format!("{:?}", t.state),
                t.version.as_deref().unwrap_or(""),
                t.reason.as_deref().unwrap_or(""),
                t.excluded_until.as_deref().unwrap_or(""),
                if t.overdue { "true" } else { "false" },
            ];
            let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
            out.push_str(&line.join(","));
            out.push_str("\r\n");
        }
    }
    out
}

/// A CSV field, quoted when it holds a comma, a quote or a line break (RFC 4180). A field
/// that a spreadsheet would take for a formula (`=`, `+`, `-`, `@`) is prefixed with `'`:
/// annotations are written by anyone who can annotate a node.
fn csv_field(field: &str) -> String {
    let field = if field.starts_with(['=', '+', '-', '@']) {
        format!("'{field}")
    } else {
        field.to_owned()
    };
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field
    }
}

#[cfg(test)]
mod tests {
    use super::csv_field;

    #[test]
    fn csv_fields_are_quoted_and_never_formulas() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a, b"), "\"a, b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=HYPERLINK(1)"), "'=HYPERLINK(1)");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
    }
}
