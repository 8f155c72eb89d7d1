//! The Notifier controller: delivers to each Notifier the notices it owes ([`ledger`]), in
//! order, and remembers in its status how far it got.
//!
//! - At least once: the watermark is written after the delivery, so an operator that stops in
//!   between sends that notice again, under the same id, and receivers drop the repeat.
//! - In order: a notifier sends its oldest notice first and goes no further while that one
//!   fails; a 4xx refusal is not retried (the notice is skipped, with a Warning Event).
//! - Apart: each notifier is reconciled on its own, and the rollouts never wait for one;
//!   a failing destination holds up only itself. Its failure is in its status (`failing`,
//!   condition Ready), in the metric `patchpilot_notifier_failing`, and in the status of
//!   the policies that name it.
//! - Through restarts: the watermarks and the next attempt's instant are in the API.

use std::{collections::BTreeSet, sync::Arc};

use jiff::Timestamp;
use k8s_openapi::{ByteString, api::core::v1::Secret, apimachinery::pkg::apis::meta::v1::Time};
use kube::{
    Api, Resource, ResourceExt,
    runtime::{
        controller::Action as Requeue,
        events::{Event, EventType},
    },
};
use patchpilot_api::{
    Failing, Notifier, NotifierStatus,
    convert::{condition_from_api, condition_to_api},
};
use patchpilot_engine::machine::{
    Condition, ConditionStatus as CS, ConditionType as CT, compute_conditions,
};

use super::{
    ledger::{self, Due},
    payload::{self, Message},
    send::{self, Attempt},
};
use crate::{
    context::{Context, operator_namespace},
    error::{Error, Result},
};

/// How many notices one reconcile delivers before it writes how far it got.
const BATCH: usize = 20;

/// How long one delivery may take, unless the Notifier says.
const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Where a notifier stands after a reconcile.
enum Standing {
    /// Nothing owed.
    Idle,
    /// Delivered what was owed, or some of it (more to come at once).
    Delivered { more: bool },
    /// Waiting for the next attempt.
    Failing(Timestamp),
    /// `spec.suspend`.
    Suspended,
}

/// Reconciles one Notifier.
#[tracing::instrument(skip_all, fields(notifier = %notifier.name_any()))]
pub async fn reconcile(notifier: Arc<Notifier>, ctx: Arc<Context>) -> Result<Requeue> {
    ctx.until_ready().await;
    let notifier = ctx.own_view(notifier);
    let _timer = ctx.metrics.reconcile("notifier");
    let name = notifier.name_any();
    let now = ctx.clock.now();
    let generation = notifier.metadata.generation.unwrap_or(0);
    let mut status = notifier.status.clone().unwrap_or_default();
    let rollouts = ctx.stores.rollouts.state();
    let policies = ctx.stores.policies.state();
    let existing: BTreeSet<&str> = rollouts
        .iter()
        .filter_map(|r| r.metadata.name.as_deref())
        .collect();
    ledger::prune(&mut status.delivered, |r| existing.contains(r));
    let since = notifier
        .metadata
        .creation_timestamp
        .as_ref()
        .map_or(now, |t| t.0);
    let due = ledger::due(&name, since, &status.delivered, &policies, &rollouts);
    let standing = if notifier.spec.suspend {
        Standing::Suspended
    } else if due.is_empty() {
        Standing::Idle
    } else if let Some(failing) = status
        .failing
        .as_ref()
        .filter(|f| f.next_attempt.0 > now && status.observed_generation == Some(generation))
    {
        Standing::Failing(failing.next_attempt.0)
    } else {
        deliver(&ctx, &notifier, &due, &mut status, now).await?
    };
    status.observed_generation = Some(generation);
    let previous: Vec<Condition> = notifier
        .status
        .iter()
        .flat_map(|s| s.conditions.iter())
        .filter_map(condition_from_api)
        .collect();
    let ready = match (&standing, &status.failing) {
        (Standing::Suspended, _) => (
            CS::False,
            "Suspended",
            format!("suspended: {} notice(s) wait", due.len()),
        ),
        (_, Some(failing)) => (
            CS::False,
            failing.reason.as_str(),
            format!(
                "failing since {} ({} attempt(s)): {}; next attempt at {}",
                failing.since.0, failing.attempts, failing.last_error, failing.next_attempt.0
            ),
        ),
        (_, None) => (
            CS::True,
            "Delivering",
            match status.last_delivered.as_ref() {
                Some(at) => format!("delivering; last notice at {}", at.0),
                None => "ready; nothing delivered yet".to_owned(),
            },
        ),
    };
    let conditions = compute_conditions(
        &previous,
        vec![(CT::Ready, ready.0, ready.1.to_owned(), ready.2)],
        generation,
        now,
    );
    status.conditions = conditions.iter().map(condition_to_api).collect();
    ctx.metrics
        .notifier_failing(&name, status.failing.is_some());
    ctx.write_status(notifier.as_ref(), &status).await?;
    Ok(match standing {
        Standing::Delivered { more: true } => Requeue::requeue(std::time::Duration::ZERO),
        Standing::Failing(at) => ctx.requeue_at(Some(at)),
        Standing::Idle | Standing::Delivered { more: false } | Standing::Suspended => {
            Requeue::await_change()
        }
    })
}

/// The destination of a notifier: its address and token, from its Secret.
struct Destination {
    address: String,
    token: Option<String>,
}

/// Reads the notifier's Secret in the operator's namespace; `Err` says what is missing.
async fn destination(
    ctx: &Context,
    notifier: &Notifier,
) -> Result<std::result::Result<Destination, String>> {
    let namespace = operator_namespace();
    let secret_name = &notifier.spec.secret_ref.name;
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
    let secret = api
        .get_opt(secret_name)
        .await
        .map_err(|e| Error::api(format!("read Secret {namespace}/{secret_name}"), e))?;
    let Some(secret) = secret else {
        return Ok(Err(format!(
            "Secret {namespace}/{secret_name} does not exist"
        )));
    };
    let value = |key: &str| -> Option<String> {
        let data = secret
            .data
            .as_ref()
            .and_then(|d| d.get(key))
            .map(|ByteString(b)| b.clone());
        let text = data.or_else(|| {
            secret
                .string_data
                .as_ref()
                .and_then(|d| d.get(key))
                .map(|s| s.clone().into_bytes())
        })?;
        String::from_utf8(text)
            .ok()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
    };
    match value("address") {
        Some(address) => Ok(Ok(Destination {
            address,
            token: value("token"),
        })),
        None => Ok(Err(format!(
            "Secret {namespace}/{secret_name} has no key address"
        ))),
    }
}

/// Delivers `due` in order, at most [`BATCH`], stopping at the first failure; `status`
/// takes the watermarks and the failure.
async fn deliver(
    ctx: &Context,
    notifier: &Notifier,
    due: &[Due<'_>],
    status: &mut NotifierStatus,
    now: Timestamp,
) -> Result<Standing> {
    let name = notifier.name_any();
    let destination = match destination(ctx, notifier).await? {
        Ok(destination) => destination,
        Err(missing) => {
            let why = Failure::SecretMissing(missing);
            return Ok(failed(ctx, notifier, status, now, why, None).await);
        }
    };
    let timeout = notifier.spec.timeout.map_or(TIMEOUT, |t| t.std());
    for owed in due.iter().take(BATCH) {
        let message = Message {
            notifier: &name,
            rollout: owed.rollout,
            notice: owed.notice,
        };
        let request = payload::request(notifier.spec.kind, &message);
        let attempt = send::post(
            &ctx.http,
            &destination.address,
            destination.token.as_deref(),
            &request,
            timeout,
        )
        .await;
        let at = ctx.clock.now();
        match attempt {
            Attempt::Delivered { .. } => {
                let delay = at.duration_since(owed.notice.time.0).as_secs_f64();
                ctx.metrics.notice(&name, "delivered", Some(delay));
                ledger::advance(&mut status.delivered, owed.rollout_name(), owed.notice.seq);
                status.last_delivered = Some(Time(at));
                if status.failing.take().is_some() {
                    event(
                        ctx,
                        notifier,
                        EventType::Normal,
                        "DeliveryRecovered",
                        "deliveries go through again".into(),
                    )
                    .await;
                }
            }
            Attempt::Refused { code, reason } => {
                ctx.metrics.notice(&name, "refused", None);
                ledger::advance(&mut status.delivered, owed.rollout_name(), owed.notice.seq);
                status.failing = None;
                let note = format!(
                    "notice {} refused with {code}, not retried: {reason}",
                    message.id()
                );
                event(ctx, notifier, EventType::Warning, "NoticeRefused", note).await;
            }
            Attempt::Failed {
                reason,
                retry_after,
            } => {
                ctx.metrics.notice(&name, "failed", None);
                let why = Failure::Delivery(reason);
                return Ok(failed(ctx, notifier, status, at, why, retry_after).await);
            }
        }
    }
    Ok(Standing::Delivered {
        more: due.len() > BATCH,
    })
}

/// Why an attempt failed.
enum Failure {
    /// The destination did not take the notice.
    Delivery(String),
    /// The notifier's Secret or its address is missing.
    SecretMissing(String),
}

/// Notes a failed attempt at `now`: the next one after the back-off (or `retry_after`).
async fn failed(
    ctx: &Context,
    notifier: &Notifier,
    status: &mut NotifierStatus,
    now: Timestamp,
    why: Failure,
    retry_after: Option<std::time::Duration>,
) -> Standing {
    let (condition, reason) = match why {
        Failure::Delivery(reason) => ("DeliveryFailing", reason),
        Failure::SecretMissing(reason) => ("SecretMissing", reason),
    };
    let attempts = status.failing.as_ref().map_or(0, |f| f.attempts) + 1;
    let wait = retry_after.unwrap_or_else(|| send::backoff(attempts));
    let next = now
        .checked_add(
            jiff::SignedDuration::try_from(wait).unwrap_or(jiff::SignedDuration::from_mins(5)),
        )
        .unwrap_or(now);
    if status.failing.is_none() {
        event(
            ctx,
            notifier,
            EventType::Warning,
            "DeliveryFailing",
            format!("{reason}; retrying"),
        )
        .await;
    }
    status.failing = Some(Failing {
        reason: condition.to_owned(),
        since: status
            .failing
            .as_ref()
            .map_or(Time(now), |f| f.since.clone()),
        attempts,
        last_error: reason.chars().take(1024).collect(),
        next_attempt: Time(next),
    });
    Standing::Failing(next)
}

/// Records an event on the notifier.
async fn event(ctx: &Context, notifier: &Notifier, type_: EventType, reason: &str, note: String) {
    let event = Event {
        type_,
        reason: reason.into(),
        note: Some(note.chars().take(1000).collect()),
        action: "Deliver".into(),
        secondary: None,
    };
    if let Err(error) = ctx
        .recorder
        .publish(&event, &notifier.object_ref(&()))
        .await
    {
        tracing::warn!(%error, %reason, "could not record an event");
    }
}

/// How soon to retry after an error.
pub fn error_policy(notifier: Arc<Notifier>, error: &Error, ctx: Arc<Context>) -> Requeue {
    ctx.metrics
        .reconcile_error("notifier", error.metric_label());
    tracing::warn!(notifier = %notifier.name_any(), %error, "reconcile failed");
    Requeue::requeue(error.retry_after())
}
