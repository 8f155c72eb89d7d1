//! A policy against the live cluster: its targets read and sorted out by the engine's own
//! rules (`plan::inventory`), as the operator sorts them, and its window evaluated on the
//! API server's clock. `plan` and `report` print what this reads.

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::{
    api::core::v1::{Namespace, Node},
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};
use kube::{
    Api, Client,
    api::{ApiResource, DynamicObject, GroupVersionKind, ListParams},
};
use serde::de::DeserializeOwned;

use super::PluginError;
use crate::{
    api::{MaintenanceWindow, PatchPolicy, convert::image_patches},
    controller::candidates::{self, ObjectKind, TargetMeta},
    engine::{
        image::ImagePatch,
        plan::{self, Namespaces, Scope},
        policy::{Policy, WorkloadKind},
        target::Candidate,
        window::Evaluation,
    },
    schema::manifest::Causes,
};

/// How many objects a page of a list holds: a big cluster is read in pages, as kubectl
/// reads it.
const PAGE: u32 = 500;

/// A policy and the objects it may target, read at one time.
pub struct Live {
    /// The policy.
    pub policy: PatchPolicy,
    /// The policy as the engine works with it.
    pub engine: Policy,
    /// The nodes or workloads of the policy's target kind.
    pub candidates: Vec<Candidate>,
    /// The labels of every namespace (workload policies).
    pub namespaces: Namespaces,
    /// The image replacements of the patch, for a patch of workloads.
    images: Vec<ImagePatch>,
    /// The API server's clock when the objects were read.
    pub now: Timestamp,
}

/// The nodes, namespaces and workloads of each kind, each read once when first asked for.
#[derive(Default)]
pub struct Reads {
    nodes: Option<Vec<Candidate>>,
    namespaces: Option<Namespaces>,
    workloads: BTreeMap<WorkloadKind, Vec<Candidate>>,
}

impl Reads {
    async fn nodes(&mut self, client: &Client) -> Result<&[Candidate], PluginError> {
        if self.nodes.is_none() {
            let mut nodes = Vec::new();
            for meta in list_metadata::<Node>(client, "nodes").await? {
                let meta = TargetMeta::<Node>::of(meta);
                nodes.extend(candidates::candidate(ObjectKind::Node, &meta));
            }
            self.nodes = Some(nodes);
        }
        Ok(self.nodes.get_or_insert_default())
    }

    async fn namespaces(&mut self, client: &Client) -> Result<&Namespaces, PluginError> {
        if self.namespaces.is_none() {
            let mut namespaces = Namespaces::new();
            for meta in list_metadata::<Namespace>(client, "namespaces").await? {
                candidates::add_namespace(&mut namespaces, &TargetMeta::<Namespace>::of(meta));
            }
            self.namespaces = Some(namespaces);
        }
        Ok(self.namespaces.get_or_insert_default())
    }

    async fn workloads(
        &mut self,
        client: &Client,
        kind: WorkloadKind,
    ) -> Result<&[Candidate], PluginError> {
        let read = match self.workloads.entry(kind) {
            std::collections::btree_map::Entry::Occupied(read) => read.into_mut(),
            std::collections::btree_map::Entry::Vacant(slot) => {
                slot.insert(workloads(client, kind).await?)
            }
        };
        Ok(read)
    }
}

impl Live {
    /// Reads the policy `name` and the objects it may target.
    pub async fn read(client: &Client, name: &str) -> Result<Self, PluginError> {
        let policy = super::get_policy(client, name).await?;
        Self::of(client, policy).await
    }

    /// Reads the objects `policy` may target.
    pub async fn of(client: &Client, policy: PatchPolicy) -> Result<Self, PluginError> {
        Self::sharing(client, policy, &mut Reads::default()).await
    }

    /// The objects `policy` may target, read through `reads`: policies that target the same
    /// kinds (`report` over every policy) read them from the API server once.
    pub async fn sharing(
        client: &Client,
        policy: PatchPolicy,
        reads: &mut Reads,
    ) -> Result<Self, PluginError> {
        let name = policy.metadata.name.clone().unwrap_or_default();
        let engine = policy
            .spec
            .to_engine_reporting_all(&name)
            .map_err(|problems| {
                let causes = Causes::new(problems);
                PluginError::Refused(format!("PatchPolicy {name} is invalid: {causes}"))
            })?;
        let mut candidates = Vec::new();
        let mut namespaces = Namespaces::new();
        match &engine.targets.scope {
            Scope::Nodes { .. } => candidates.extend_from_slice(reads.nodes(client).await?),
            Scope::Workloads { kinds, .. } => {
                namespaces.clone_from(reads.namespaces(client).await?);
                for kind in kinds {
                    candidates.extend_from_slice(reads.workloads(client, *kind).await?);
                }
            }
        }
        let images = image_patches(&policy.spec.patch);
        Ok(Live {
            policy,
            engine,
            candidates,
            namespaces,
            images,
            now: super::server_now(client).await,
        })
    }

    /// The policy's name.
    pub fn name(&self) -> &str {
        &self.engine.name
    }

    /// The version the policy asks for.
    pub fn version(&self) -> &str {
        &self.policy.spec.patch.version
    }

    /// The targets sorted out for `version`, as a new rollout of it would find them.
    pub fn inventory(&self, version: &str) -> plan::Inventory<'_> {
        let query = plan::Query {
            policy: &self.engine.name,
            version,
            images: self
                .policy
                .spec
                .patch
                .images
                .is_some()
                .then_some(self.images.as_slice()),
            group_by: self.engine.strategy.group_by.as_deref(),
            now: self.now,
        };
        plan::inventory(
            &self.engine.targets,
            &query,
            &self.candidates,
            &self.namespaces,
            |_| false,
        )
    }
}

/// The policy's MaintenanceWindow evaluated now, with `next` openings after the current
/// one: `Ok(None)` for a policy without a window; an error sentence for a window that is
/// missing or invalid (the policy waits for it).
pub async fn window(
    client: &Client,
    policy: &PatchPolicy,
    now: Timestamp,
    next: usize,
) -> Result<Option<(String, Result<Evaluation, String>)>, PluginError> {
    let Some(name) = policy.spec.maintenance_window.clone() else {
        return Ok(None);
    };
    let found = Api::<MaintenanceWindow>::all(client.clone())
        .get_opt(&name)
        .await
        .map_err(|e| PluginError::api(format!("MaintenanceWindow {name}"), e))?;
    let evaluation = match found {
        None => Err(format!(
            "MaintenanceWindow {name} does not exist: no target starts until it does"
        )),
        Some(window) => window
            .spec
            .to_engine()
            .map(|w| w.evaluate(now, next))
            .map_err(|invalid| format!("MaintenanceWindow {name} is invalid: {invalid}")),
    };
    Ok(Some((name, evaluation)))
}

/// Every object of a cluster-scoped or all-namespaces list, metadata only, page by page.
async fn list_metadata<K>(client: &Client, what: &str) -> Result<Vec<ObjectMeta>, PluginError>
where
    K: kube::Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
{
    let api = Api::<K>::all(client.clone());
    let mut items = Vec::new();
    let mut params = ListParams::default().limit(PAGE);
    loop {
        let page = api
            .list_metadata(&params)
            .await
            .map_err(|e| PluginError::api(format!("listing {what}"), e))?;
        items.extend(page.items.into_iter().map(|item| item.metadata));
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => params = params.continue_token(&token),
            _ => return Ok(items),
        }
    }
}

/// Every workload of `kind`, in every namespace, with its containers' images.
async fn workloads(client: &Client, kind: WorkloadKind) -> Result<Vec<Candidate>, PluginError> {
    let resource = ApiResource::from_gvk(&GroupVersionKind::gvk("apps", "v1", kind.as_str()));
    let api = Api::<DynamicObject>::all_with(client.clone(), &resource);
    let what = format!("{}s", kind.as_str());
    let mut found = Vec::new();
    let mut params = ListParams::default().limit(PAGE);
    loop {
        let page = api
            .list(&params)
            .await
            .map_err(|e| PluginError::api(format!("listing {what}"), e))?;
        for object in page.items {
            let mut meta = TargetMeta::<DynamicObject>::of(object.metadata);
            // A workload whose template cannot be read is left as the operator leaves it:
            // without images, so an image patch is judged applicable and the rollout says
            // what is wrong with it.
            if let Some(Ok(Some(images))) = object.data.get("spec").map(candidates::workload_images)
            {
                meta = meta.with_images(images);
            }
            found.extend(candidates::candidate(ObjectKind::Workload(kind), &meta));
        }
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => params = params.continue_token(&token),
            _ => return Ok(found),
        }
    }
}
