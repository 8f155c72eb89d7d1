//! `patchpilot plan`: which targets a policy selects and the waves they would go in.

use std::{
    io::{self, Write},
    path::Path,
};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use patchpilot_engine::{plan, plan::Namespaces, target::Candidate};
use serde::Serialize;
use serde_json::Value;

use super::{CliError, InputError, PlanArgs, read_objects, read_one};
use crate::{
    api::{PatchPolicy, convert::image_patches},
    controller::candidates::{self, ObjectKind, TargetMeta},
};

/// The plan, exactly as SPEC section 4 prints it; `notApplicable` (workloads none of whose
/// containers the patch's images replace) follows `upToDate` only when it is not empty.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Plan {
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
}

#[derive(Serialize)]
struct Wave {
    name: String,
    targets: Vec<String>,
}

/// Runs `patchpilot plan`.
pub fn run(args: &PlanArgs) -> Result<(), CliError> {
    let policy: PatchPolicy = read_one(&args.policy)?;
    let name = policy.metadata.name.clone().unwrap_or_default();
    let engine_policy = policy.spec.to_engine(&name).map_err(|error| {
        InputError::unusable(&args.policy, format!("PatchPolicy/{name}"), error)
    })?;
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
    let waves = plan::waves(&engine_policy.strategy, inventory.eligible.len());
    let plan = Plan {
        policy: name,
        version,
        eligible: inventory.eligible.len(),
        excluded: inventory
            .excluded
            .iter()
            .map(|(c, reason)| Excluded {
                target: c.id.to_string(),
                reason: reason.clone(),
            })
            .collect(),
        up_to_date: inventory
            .up_to_date
            .iter()
            .map(|c| c.id.to_string())
            .collect(),
        not_applicable: inventory
            .not_applicable
            .iter()
            .map(|c| c.id.to_string())
            .collect(),
        waves: waves
            .iter()
            .map(|wave| Wave {
                name: wave.name.clone(),
                targets: inventory.eligible[wave.start..wave.end]
                    .iter()
                    .map(|c| c.id.to_string())
                    .collect(),
            })
            .collect(),
    };
    let mut out = io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, &plan).map_err(|e| CliError::Output(e.into()))?;
    writeln!(out).map_err(CliError::Output)
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
