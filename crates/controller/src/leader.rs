//! Leader election on a `coordination.k8s.io` Lease: one replica acts, the others wait and
//! take over when the leader stops renewing.
//!
//! The Lease names its holder and when it last renewed; a candidate takes it when it is free
//! or expired, and every write carries the resource version it read, so two candidates
//! never both win.
//!
//! **Fencing.** A leader must never write once another replica may have taken over. Others
//! take the lease [`LEASE_DURATION`] after its last `renewTime`; the leader keeps acting
//! only until [`RENEW_DEADLINE`] after the `renewTime` of its last successful renewal, a
//! margin of five seconds for requests in flight and clocks that differ. The [`Fence`]
//! holds that deadline, and the operator's client refuses every write once it has passed
//! (`fenced_client`), so no reconcile can write late, whatever it is waiting on; the
//! controllers stop as soon as the elector gives up.

use std::{
    sync::{Arc, Mutex},
    task::{Context as TaskContext, Poll},
    time::Duration as StdDuration,
};

use futures::future::BoxFuture;
use http::{Method, Request, Response};
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::{
    api::coordination::v1::{Lease, LeaseSpec},
    apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta},
};
use kube::{Api, Client, api::PostParams, client::Body};

use patchpilot_clock::SharedClock;

use super::context::create_if_absent;

/// How long a lease lasts without renewal.
pub const LEASE_DURATION: SignedDuration = SignedDuration::from_secs(15);
/// How long after its last successful renewal the leader keeps acting.
pub const RENEW_DEADLINE: SignedDuration = SignedDuration::from_secs(10);
/// How often the leader renews, and how often candidates try.
pub const RETRY_PERIOD: StdDuration = StdDuration::from_secs(2);
/// How many times a renewal that met a conflict reads the Lease again and retries.
const CONFLICT_RETRIES: usize = 3;

/// Until when this replica may write: the deadline of its leadership.
#[derive(Debug, Default)]
pub struct Fence {
    /// `None`: no leader election, writes are always allowed.
    until: Mutex<Option<Timestamp>>,
    elected: bool,
}

impl Fence {
    /// A fence for a replica taking part in leader election: closed until it leads.
    pub fn elected() -> Self {
        Fence {
            until: Mutex::new(Some(Timestamp::MIN)),
            elected: true,
        }
    }

    /// Whether a write at `now` is allowed.
    pub fn open(&self, now: Timestamp) -> bool {
        let until = *self.until.lock().unwrap_or_else(|p| p.into_inner());
        until.is_none_or(|until| now < until)
    }

    /// The lease was renewed with `renew_time`: writes are allowed until the renew deadline.
    fn renewed(&self, renew_time: Timestamp) {
        if self.elected {
            let until = renew_time
                .saturating_add(RENEW_DEADLINE)
                .unwrap_or(renew_time);
            *self.until.lock().unwrap_or_else(|p| p.into_inner()) = Some(until);
        }
    }

    /// The lease is lost: no more writes.
    fn close(&self) {
        if self.elected {
            *self.until.lock().unwrap_or_else(|p| p.into_inner()) = Some(Timestamp::MIN);
        }
    }
}

/// Why a write was not sent.
#[derive(Debug, thiserror::Error)]
#[error("not the leader any more: {method} {uri} not sent")]
pub struct Fenced {
    method: Method,
    uri: http::Uri,
}

/// The client's requests, writes refused once the fence has closed.
#[derive(Clone)]
struct FencedService {
    client: Client,
    fence: Arc<Fence>,
    clock: SharedClock,
}

impl tower::Service<Request<Body>> for FencedService {
    type Response = Response<Body>;
    type Error = Box<dyn std::error::Error + Send + Sync>;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, _: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let reads = matches!(*request.method(), Method::GET | Method::HEAD);
        if !reads && !self.fence.open(self.clock.now()) {
            let refused = Fenced {
                method: request.method().clone(),
                uri: request.uri().clone(),
            };
            return Box::pin(async move { Err(refused.into()) });
        }
        let client = self.client.clone();
        Box::pin(async move { client.send(request).await.map_err(Into::into) })
    }
}

/// `client`, refusing every write while `fence` is closed.
pub fn fenced_client(client: Client, fence: Arc<Fence>, clock: SharedClock) -> Client {
    let namespace = client.default_namespace().to_owned();
    Client::new(
        FencedService {
            client,
            fence,
            clock,
        },
        namespace,
    )
}

/// One candidate for the lease.
pub struct Elector {
    api: Api<Lease>,
    name: String,
    identity: String,
    clock: SharedClock,
    fence: Arc<Fence>,
}

impl Elector {
    /// A candidate `identity` for the Lease `namespace/name`, opening `fence` while it leads.
    pub fn new(
        client: Client,
        namespace: &str,
        name: &str,
        identity: &str,
        clock: SharedClock,
        fence: Arc<Fence>,
    ) -> Self {
        Elector {
            api: Api::namespaced(client, namespace),
            name: name.to_owned(),
            identity: identity.to_owned(),
            clock,
            fence,
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

    /// Keeps renewing the lease; returns, with the fence closed, when it is lost: another
    /// holder, or no successful renewal within [`RENEW_DEADLINE`].
    pub async fn keep(&self) {
        loop {
            tokio::time::sleep(RETRY_PERIOD).await;
            match self.try_hold().await {
                Ok(true) => {}
                Ok(false) => break,
                Err(error) => {
                    tracing::warn!(%error, "could not renew the lease");
                    if !self.fence.open(self.clock.now()) {
                        break;
                    }
                }
            }
        }
        self.fence.close();
    }

    /// Takes or renews the lease if free, expired or ours. `Ok(false)`: someone else holds
    /// it. A conflict (the Lease changed since it was read, or the API server said so)
    /// reads the Lease again: while it is still ours, the renewal is retried.
    pub async fn try_hold(&self) -> Result<bool, kube::Error> {
        for _ in 0..CONFLICT_RETRIES {
            match self.try_once().await {
                Err(kube::Error::Api(status)) if status.code == 409 => {
                    tracing::debug!("conflict on the lease; reading it again");
                }
                outcome => return outcome,
            }
        }
        // Still conflicting: whoever holds it now says whether it is ours.
        let held = self.api.get_opt(&self.name).await?;
        Ok(held
            .and_then(|l| l.spec)
            .and_then(|s| s.holder_identity)
            .is_some_and(|holder| holder == self.identity)
            && self.fence.open(self.clock.now()))
    }

    async fn try_once(&self) -> Result<bool, kube::Error> {
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
            // Another candidate may have created it since: then it is that one's.
            let created = create_if_absent(&self.api, &PostParams::default(), &lease).await?;
            if created {
                self.fence.renewed(now);
            }
            return Ok(created);
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
        self.api
            .replace(&self.name, &PostParams::default(), &lease)
            .await?;
        self.fence.renewed(now);
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// A client whose server answers every request `{}` and counts them.
    fn counting_client() -> (Client, Arc<AtomicUsize>) {
        let seen = Arc::new(AtomicUsize::new(0));
        let counter = seen.clone();
        let service = tower::service_fn(move |_: Request<Body>| {
            counter.fetch_add(1, Ordering::SeqCst);
            async {
                Ok::<_, std::convert::Infallible>(
                    Response::builder()
                        .header("content-type", "application/json")
                        .body(Body::from(b"{}".to_vec()))
                        .unwrap(),
                )
            }
        });
        (Client::new(service, "default"), seen)
    }

    #[tokio::test]
    async fn no_write_leaves_once_the_renew_deadline_has_passed() {
        let clock: SharedClock = Arc::new(patchpilot_clock::SystemClock);
        let (client, seen) = counting_client();
        let fence = Arc::new(Fence::elected());
        let fenced = fenced_client(client, fence.clone(), clock.clone());
        let write = || {
            Request::post("/api/v1/namespaces/default/configmaps")
                .body(Body::from(b"{}".to_vec()))
                .unwrap()
        };
        let read = || {
            Request::get("/api/v1/namespaces/default/configmaps")
                .body(Body::empty())
                .unwrap()
        };
        // Not leading yet: writes are refused before they reach the server, reads pass.
        assert!(fenced.send(write()).await.is_err());
        assert!(fenced.send(read()).await.is_ok());
        assert_eq!(seen.load(Ordering::SeqCst), 1);
        // Renewed just now: writes go through until the renew deadline.
        fence.renewed(clock.now());
        assert!(fenced.send(write()).await.is_ok());
        assert_eq!(seen.load(Ordering::SeqCst), 2);
        // Renewed longer ago than the deadline: refused again.
        fence.renewed(clock.now() - RENEW_DEADLINE - SignedDuration::from_secs(1));
        assert!(fenced.send(write()).await.is_err());
        assert_eq!(seen.load(Ordering::SeqCst), 2);
        // Lost: refused.
        fence.renewed(clock.now());
        fence.close();
        assert!(fenced.send(write()).await.is_err());
        assert_eq!(seen.load(Ordering::SeqCst), 2);
        // Without leader election, the fence never closes.
        let open = Fence::default();
        open.close();
        assert!(open.open(clock.now()));
    }

    #[test]
    fn the_leader_stops_before_another_may_take_over() {
        assert!(RENEW_DEADLINE + SignedDuration::from_secs(5) <= LEASE_DURATION);
    }
}
