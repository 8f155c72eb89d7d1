//! The cluster's writes: straight to the store (the audit log records API clients, and the
//! cluster is none), under the field manager of the component that makes them, and taken
//! into the cache at once so that the next look sees them.

use std::sync::Arc;

use serde_json::Value;

use super::{informer::Kind, meta::Key, sim::Sim};
use crate::json::Json;
use crate::{
    status::ApiError,
    store::{DeleteOptions, Propagation, Write},
};

/// The scheduler's field manager.
pub(super) const SCHEDULER: &str = "kube-scheduler";
/// The field manager of kube-controller-manager's controllers.
pub(super) const CONTROLLERS: &str = "kube-controller-manager";
/// The kubelets' field manager.
pub(super) const KUBELET: &str = "kubelet";
/// The node lifecycle controller's field manager.
pub(super) const NODE_CONTROLLER: &str = "node-controller";

/// Which part of an object a write changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Part {
    /// Everything but the status (metadata and spec).
    Main,
    /// The status subresource.
    Status,
}

impl Sim {
    /// Creates an object.
    pub fn create(
        &mut self,
        kind: Kind,
        namespace: &str,
        object: Value,
        manager: &str,
    ) -> Result<Arc<Json>, ApiError> {
        let resource = self.resource(kind);
        match self
            .store
            .create(&resource, namespace, object, &Write::internal(manager))
        {
            Ok(written) => {
                self.own(kind, written.object.clone(), false);
                Ok(written.object)
            }
            Err(error) => {
                tracing::debug!(%error, ?kind, namespace, "the simulated cluster could not create");
                Err(error)
            }
        }
    }

    /// Changes an object as `change` says, on its latest state; nothing happens when the
    /// object is gone or `change` leaves it as it was.
    pub fn update(
        &mut self,
        kind: Kind,
        key: &Key,
        manager: &str,
        part: Part,
        change: impl FnOnce(&mut Value),
    ) -> Option<Arc<Json>> {
        let resource = self.resource(kind);
        let write = match part {
            Part::Main => Write::internal(manager),
            Part::Status => Write::internal(manager).status(),
        };
        let result = self.store.modify(&resource, &key.0, &key.1, &write, |old| {
            let mut object = old
                .cloned()
                .ok_or_else(|| ApiError::not_found(&resource, &key.1))?;
            change(&mut object);
            Ok(object)
        });
        match result {
            Ok(written) => {
                self.own(kind, written.object.clone(), false);
                Some(written.object)
            }
            Err(error) => {
                tracing::debug!(%error, ?kind, ?key, "the simulated cluster could not update");
                None
            }
        }
    }

    /// Deletes an object: pods on a node with their grace period (`None`: the pod's own)
    /// unless `grace` is `Some(0)`; dependents in the background.
    pub fn delete(&mut self, kind: Kind, key: &Key, grace: Option<i64>) {
        let resource = self.resource(kind);
        let options = DeleteOptions {
            propagation: Propagation::Background,
            grace_period: grace,
            ..DeleteOptions::default()
        };
        match self.store.delete(&resource, &key.0, &key.1, &options) {
            Ok(deleted) => self.own(kind, deleted.object, deleted.gone),
            Err(error) => {
                tracing::debug!(%error, ?kind, ?key, "the simulated cluster could not delete");
            }
        }
    }
}
