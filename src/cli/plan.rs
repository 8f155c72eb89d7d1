//! `patchpilot plan`: which targets a policy selects and the waves they would go in.

use std::{
    io::{self, Write},
    path::Path,
};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use patchpilot_engine::{
    keys,
    plan::{self, Inventory, Namespaces},
    policy::Strategy,
    target::Candidate,
};
use serde::Serialize;
use serde_json::Value;

use super::{CliError, Format, InputError, PlanArgs, read_objects, read_one_checked};
use crate::{
    api::{PatchPolicy, convert::image_patches},
    controller::candidates::{self, ObjectKind, TargetMeta},
};

/// The plan, exactly as SPEC section 4 prints it; `notApplicable` (workloads none of whose
/// containers the patch's images replace) follows `upToDate` only when it is not empty.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Plan {
    policy: String,
    version: String,
    eligible: usize,
    excluded: Vec<Excluded>,
    up_to_date: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    not_applicable: Vec<String>,
    waves: Vec<Wave>,
}

#[derive(Serialize)]
struct Excluded {
    target: String,
    reason: String,
    /// The `exclude-until` of an excluded target, shown in text only (the JSON is exact).
    #[serde(skip)]
    until: Option<String>,
}

#[derive(Serialize)]
struct Wave {
    name: String,
    targets: Vec<String>,
    /// How long the wave soaks, shown in text only.
    #[serde(skip)]
    soak: Option<String>,
}

/// How many targets of a list the text shows; `-o json` lists them all.
const SHOWN: usize = 10;

impl Plan {
    /// The plan of `version` for the policy `policy` over the targets of `inventory`.
    pub(crate) fn of(
        policy: &str,
        version: &str,
        strategy: &Strategy,
        inventory: &Inventory<'_>,
    ) -> Plan {
        let waves = plan::waves(strategy, inventory.eligible.len());
        let ids = |targets: &[&Candidate]| targets.iter().map(|c| c.id.to_string()).collect();
        Plan {
            policy: policy.to_owned(),
            version: version.to_owned(),
            eligible: inventory.eligible.len(),
            excluded: inventory
                .excluded
                .iter()
                .map(|(c, reason)| Excluded {
                    target: c.id.to_string(),
                    reason: reason.clone(),
                    until: c.annotations.get(keys::EXCLUDE_UNTIL).cloned(),
                })
                .collect(),
            up_to_date: ids(&inventory.up_to_date),
            not_applicable: ids(&inventory.not_applicable),
            waves: waves
                .iter()
                .map(|wave| Wave {
                    name: wave.name.clone(),
                    targets: ids(&inventory.eligible[wave.start..wave.end]),
                    soak: (wave.soak.as_millis() > 0).then(|| wave.soak.to_string()),
                })
                .collect(),
        }
    }

    /// The plan for people: the waves with their size, soak and first targets, every
    /// exclusion with its justification and expiry, and how many targets are up to date or
    /// not applicable.
    pub(crate) fn text(&self) -> String {
        let mut out = format!(
            "PatchPolicy {}: version {}, {}\n",
            self.policy,
            self.version,
            count(self.eligible, "eligible target")
        );
        if self.waves.is_empty() {
            out.push_str("Waves: none, nothing to patch\n");
        } else {
            out.push_str("Waves:\n");
            for wave in &self.waves {
                let soak = wave
                    .soak
                    .as_ref()
                    .map_or(String::new(), |s| format!(", soak {s}"));
                out.push_str(&format!(
                    "  {} ({}{soak}): {}\n",
                    wave.name,
                    count(wave.targets.len(), "target"),
                    some(&wave.targets)
                ));
            }
        }
        if !self.excluded.is_empty() {
            out.push_str(&format!("Excluded ({}):\n", self.excluded.len()));
            for excluded in &self.excluded {
                let until = excluded
                    .until
                    .as_ref()
                    .map_or(String::new(), |u| format!(" (until {u})"));
                out.push_str(&format!(
                    "  {}: {}{until}\n",
                    excluded.target, excluded.reason
                ));
            }
        }
        for (title, targets) in [
            ("Up to date", &self.up_to_date),
            ("Not applicable", &self.not_applicable),
        ] {
            if !targets.is_empty() {
                out.push_str(&format!("{title} ({}): {}\n", targets.len(), some(targets)));
            }
        }
        out
    }
}

/// "1 target", "3 targets".
fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// The first targets of a list, and how many more there are.
fn some(targets: &[String]) -> String {
    let shown = targets[..targets.len().min(SHOWN)].join(", ");
    match targets.len().saturating_sub(SHOWN) {
        0 => shown,
        more => format!("{shown} and {more} more"),
    }
}

/// Runs `patchpilot plan`.
pub fn run(args: &PlanArgs) -> Result<(), CliError> {
    let (policy, engine_policy) = read_one_checked(&args.policy, |policy: &PatchPolicy| {
        let name = policy.metadata.name.as_deref().unwrap_or_default();
        policy.spec.to_engine_reporting_all(name)
    })?;
    let name = policy.metadata.name.clone().unwrap_or_default();
    let (candidates, namespaces) = cluster(&args.cluster)?;
    let version = args
        .version
        .clone()
        .unwrap_or_else(|| policy.spec.patch.version.clone());
    let images = image_patches(&policy.spec.patch);
    let query = plan::Query {
        policy: &name,
        version: &version,
        images: policy
            .spec
            .patch
            .images
            .is_some()
            .then_some(images.as_slice()),
        group_by: engine_policy.strategy.group_by.as_deref(),
        now: args.at.unwrap_or_else(jiff::Timestamp::now),
    };
    let inventory = plan::inventory(
        &engine_policy.targets,
        &query,
        &candidates,
        &namespaces,
        |_| false,
    );
    let plan = Plan::of(&name, &version, &engine_policy.strategy, &inventory);
    let mut out = io::stdout().lock();
    match args.output {
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, &plan)
                .map_err(|e| CliError::Output(e.into()))?;
            writeln!(out).map_err(CliError::Output)
        }
        Format::Text => out
            .write_all(plan.text().as_bytes())
            .map_err(CliError::Output),
    }
}

/// The nodes, workloads and namespaces in a cluster file.
fn cluster(file: &Path) -> Result<(Vec<Candidate>, Namespaces), InputError> {
    let mut candidates = Vec::new();
    let mut namespaces = Namespaces::new();
    for object in read_objects(file)? {
        let api_version = object
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or("");
        let kind = object.get("kind").and_then(Value::as_str).unwrap_or("");
        let Some(kind) = ObjectKind::of(api_version, kind) else {
            continue;
        };
        let meta = object.get("metadata").cloned().unwrap_or(Value::Null);
        let meta: ObjectMeta = serde_path_to_error::deserialize(meta).map_err(|error| {
            InputError::invalid(
                file,
                &object,
                format!("metadata.{}: {}", error.path(), error.inner()),
            )
        })?;
        if meta.name.is_none() {
            return Err(InputError::invalid(
                file,
                &object,
                "metadata.name: Required value",
            ));
        }
        let mut meta = TargetMeta::<kube::api::DynamicObject>::of(meta);
        if let (ObjectKind::Workload(_), Some(spec)) = (kind, object.get("spec")) {
            let images = candidates::workload_images(spec)
                .map_err(|error| InputError::invalid(file, &object, format!("spec.{error}")))?;
            if let Some(images) = images {
                meta = meta.with_images(images);
            }
        }
        match kind {
            ObjectKind::Namespace => candidates::add_namespace(&mut namespaces, &meta),
            ObjectKind::Node | ObjectKind::Workload(_) => {
                match candidates::candidate(kind, &meta) {
                    Some(candidate) => candidates.push(candidate),
                    None => {
                        return Err(InputError::invalid(
                            file,
                            &object,
                            "metadata.namespace: Required value",
                        ));
                    }
                }
            }
        }
    }
    Ok((candidates, namespaces))
}
