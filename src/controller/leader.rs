//! Leader election on a `coordination.k8s.io` Lease: one replica acts, the others wait and
//! take over when the leader stops renewing.
//!
//! The Lease names its holder and when it last renewed; a candidate takes it when it is free
//! or expired, and every write carries the resource version it read, so two candidates
//! never both win.

use std::time::Duration as StdDuration;

use jiff::SignedDuration;
use k8s_openapi::{
    api::coordination::v1::{Lease, LeaseSpec},
    apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta},
};
use kube::{Api, Client, api::PostParams};

use crate::clock::SharedClock;

/// How long a lease lasts without renewal.
pub const LEASE_DURATION: SignedDuration = SignedDuration::from_secs(15);
/// How often the leader renews, and how often candidates try.
pub const RETRY_PERIOD: StdDuration = StdDuration::from_secs(2);

/// One candidate for the lease.
pub struct Elector {
    api: Api<Lease>,
    name: String,
    identity: String,
    clock: SharedClock,
}

impl Elector {
    /// A candidate `identity` for the Lease `namespace/name`.
    pub fn new(
        client: Client,
        namespace: &str,
        name: &str,
        identity: &str,
        clock: SharedClock,
    ) -> Self {
        Elector {
            api: Api::namespaced(client, namespace),
            name: name.to_owned(),
            identity: identity.to_owned(),
            clock,
        }
    }

    /// Waits until this candidate holds the lease.
    pub async fn acquire(&self) {
        loop {
            match self.try_hold().await {
                Ok(true) => return,
                Ok(false) => {}
                Err(error) => tracing::warn!(%error, "leader election failed; retrying"),
            }
            tokio::time::sleep(RETRY_PERIOD).await;
        }
    }

    /// Keeps renewing the lease; returns when it is lost (another holder, or renewals
    /// failing for longer than the lease lasts).
    pub async fn keep(&self) {
        let mut last_renewal = self.clock.now();
        loop {
            tokio::time::sleep(RETRY_PERIOD).await;
            match self.try_hold().await {
                Ok(true) => last_renewal = self.clock.now(),
                Ok(false) => return,
                Err(error) => {
                    tracing::warn!(%error, "could not renew the lease");
                    if self.clock.now().duration_since(last_renewal) > LEASE_DURATION {
                        return;
                    }
                }
            }
        }
    }

    /// Takes or renews the lease if free, expired or ours. `Ok(false)`: someone else holds it.
    pub async fn try_hold(&self) -> Result<bool, kube::Error> {
        let now = self.clock.now();
        let spec = |transitions: i32, acquired: Option<MicroTime>| LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(LEASE_DURATION.as_secs() as i32),
            acquire_time: acquired.or(Some(MicroTime(now))),
            renew_time: Some(MicroTime(now)),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        };
        let Some(mut lease) = self.api.get_opt(&self.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(spec(0, None)),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
                Err(e) => Err(e),
            };
        };
        let current = lease.spec.clone().unwrap_or_default();
        let ours = current.holder_identity.as_deref() == Some(self.identity.as_str());
        let duration =
            SignedDuration::from_secs(i64::from(current.lease_duration_seconds.unwrap_or(15)));
        let expired = current
            .renew_time
            .as_ref()
            .is_none_or(|r| r.0.saturating_add(duration).is_ok_and(|end| end <= now));
        if !ours && !expired && current.holder_identity.is_some() {
            return Ok(false);
        }
        let transitions = current.lease_transitions.unwrap_or(0) + i32::from(!ours);
        let acquired = if ours {
            current.acquire_time.clone()
        } else {
            None
        };
        lease.spec = Some(spec(transitions, acquired));
        match self
            .api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }
}
