//! Prometheus metrics (SPEC 6), prefixed `patchpilot_`, and the HTTP endpoint serving them
//! with `/healthz` and `/readyz`.

use std::{
    collections::BTreeMap,
    convert::Infallible,
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Instant,
};

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};
use tokio::net::TcpListener;

/// Labels naming a phase.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabel {
    /// The phase.
    pub phase: String,
}

/// Labels of a rollout's target counts.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TargetLabels {
    /// The rollout.
    pub rollout: String,
    /// `pending`, `in_progress`, `updated`, `failed`, …
    pub state: String,
}

/// Labels of a finished target's duration.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// `Node`, `Deployment`, …
    pub kind: String,
    /// `Updated`, `Failed`, `RolledBack`, `RollbackFailed`.
    pub outcome: String,
}

/// Labels naming a window.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WindowLabel {
    /// The MaintenanceWindow.
    pub window: String,
}

/// Labels naming a controller.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ControllerLabel {
    /// `rollout`, `policy` or `window`.
    pub controller: String,
}

/// Labels of a reconcile error.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    /// The controller.
    pub controller: String,
    /// The kind of error.
    pub error: String,
}

/// Labels of a delivery attempt.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NoticeLabels {
    /// The Notifier.
    pub notifier: String,
    /// `delivered`, `refused` (4xx, not retried) or `failed` (retried).
    pub outcome: String,
}

/// Labels naming a notifier.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NotifierLabel {
    /// The Notifier.
    pub notifier: String,
}

/// The operator's metrics.
pub struct Metrics {
    registry: Registry,
    rollouts: Family<PhaseLabel, Gauge>,
    phases: Mutex<BTreeMap<String, String>>,
    targets: Family<TargetLabels, Gauge>,
    target_duration: Family<OutcomeLabels, Histogram>,
    rollbacks: Counter,
    window_open: Family<WindowLabel, Gauge>,
    reconcile_duration: Family<ControllerLabel, Histogram>,
    reconcile_errors: Family<ErrorLabels, Counter>,
    notices: Family<NoticeLabels, Counter>,
    notifier_failing: Family<NotifierLabel, Gauge>,
    notice_delay: Histogram,
    ready: AtomicBool,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("patchpilot");
        let rollouts = Family::<PhaseLabel, Gauge>::default();
        registry.register("rollouts", "PatchRollouts by phase", rollouts.clone());
        let targets = Family::<TargetLabels, Gauge>::default();
        registry.register(
            "targets",
            "Targets of each rollout by state",
            targets.clone(),
        );
        let target_duration = Family::<OutcomeLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([60.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0, 7200.0, 14400.0])
        });
        registry.register(
            "target_duration_seconds",
            "Time from a target's lock to its release",
            target_duration.clone(),
        );
        let rollbacks = Counter::default();
        registry.register(
            "rollbacks",
            "Rollouts that began rolling back",
            rollbacks.clone(),
        );
        let window_open = Family::<WindowLabel, Gauge>::default();
        registry.register(
            "window_open",
            "Whether a MaintenanceWindow is open (1) or closed (0)",
            window_open.clone(),
        );
        let reconcile_duration = Family::<ControllerLabel, Histogram>::new_with_constructor(|| {
            Histogram::new([0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0])
        });
        registry.register(
            "reconcile_duration_seconds",
            "Time spent in one reconcile",
            reconcile_duration.clone(),
        );
        let reconcile_errors = Family::<ErrorLabels, Counter>::default();
        registry.register(
            "reconcile_errors",
            "Reconciles that failed",
            reconcile_errors.clone(),
        );
        let notices = Family::<NoticeLabels, Counter>::default();
        registry.register(
            "notices",
            "Attempts to deliver a rollout's notice, by Notifier and outcome",
            notices.clone(),
        );
        let notifier_failing = Family::<NotifierLabel, Gauge>::default();
        registry.register(
            "notifier_failing",
            "Whether a Notifier's deliveries fail and are being retried (1) or not (0)",
            notifier_failing.clone(),
        );
        let notice_delay =
            Histogram::new([0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0]);
        registry.register(
            "notice_delay_seconds",
            "Time from what a notice tells to its delivery",
            notice_delay.clone(),
        );
        Metrics {
            registry,
            notices,
            notifier_failing,
            notice_delay,
            rollouts,
            phases: Mutex::new(BTreeMap::new()),
            targets,
            target_duration,
            rollbacks,
            window_open,
            reconcile_duration,
            reconcile_errors,
            ready: AtomicBool::new(false),
        }
    }

    /// Records a rollout's phase (or its removal with `None`) and recounts the phases.
    pub fn rollout_phase(&self, rollout: &str, phase: Option<&str>) {
        let mut phases = self.phases.lock().unwrap_or_else(|p| p.into_inner());
        match phase {
            Some(phase) => phases.insert(rollout.to_owned(), phase.to_owned()),
            None => phases.remove(rollout),
        };
        let mut counts: BTreeMap<&str, i64> = BTreeMap::new();
        for phase in phases.values() {
            *counts.entry(phase).or_default() += 1;
        }
        self.rollouts.clear();
        for (phase, count) in counts {
            self.rollouts
                .get_or_create(&PhaseLabel {
                    phase: phase.to_owned(),
                })
                .set(count);
        }
    }

    /// Records a rollout's target counts.
    pub fn targets(&self, rollout: &str, counts: &[(&str, u32)]) {
        for (state, count) in counts {
            let labels = TargetLabels {
                rollout: rollout.to_owned(),
                state: (*state).to_owned(),
            };
            self.targets.get_or_create(&labels).set(i64::from(*count));
        }
    }

    /// Records a finished target.
    pub fn target_finished(&self, kind: &str, outcome: &str, seconds: f64) {
        let labels = OutcomeLabels {
            kind: kind.to_owned(),
            outcome: outcome.to_owned(),
        };
        self.target_duration
            .get_or_create(&labels)
            .observe(seconds.max(0.0));
    }

    /// Counts a rollback.
    pub fn rollback(&self) {
        self.rollbacks.inc();
    }

    /// Records whether a window is open.
    pub fn window(&self, window: &str, open: bool) {
        self.window_open
            .get_or_create(&WindowLabel {
                window: window.to_owned(),
            })
            .set(i64::from(open));
    }

    /// Starts timing a reconcile; the time is recorded when the guard drops.
    pub fn reconcile(&self, controller: &str) -> ReconcileTimer<'_> {
        ReconcileTimer {
            metrics: self,
            controller: controller.to_owned(),
            start: Instant::now(),
        }
    }

    /// Counts a failed reconcile.
    pub fn reconcile_error(&self, controller: &str, error: &str) {
        self.reconcile_errors
            .get_or_create(&ErrorLabels {
                controller: controller.to_owned(),
                error: error.to_owned(),
            })
            .inc();
    }

    /// Counts an attempt to deliver a notice to `notifier`; `delay` is the time from what it
    /// tells to its delivery, for a delivered one.
    pub fn notice(&self, notifier: &str, outcome: &str, delay: Option<f64>) {
        self.notices
            .get_or_create(&NoticeLabels {
                notifier: notifier.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
        if let Some(seconds) = delay {
            self.notice_delay.observe(seconds.max(0.0));
        }
    }

    /// Records whether `notifier`'s deliveries are failing.
    pub fn notifier_failing(&self, notifier: &str, failing: bool) {
        self.notifier_failing
            .get_or_create(&NotifierLabel {
                notifier: notifier.to_owned(),
            })
            .set(i64::from(failing));
    }

    /// Marks the operator ready (its caches are filled).
    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::Relaxed);
    }

    /// The metrics in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut text, &self.registry);
        text
    }
}

/// Records a reconcile's duration when dropped.
pub struct ReconcileTimer<'a> {
    metrics: &'a Metrics,
    controller: String,
    start: Instant,
}

impl Drop for ReconcileTimer<'_> {
    fn drop(&mut self) {
        let labels = ControllerLabel {
            controller: self.controller.clone(),
        };
        self.metrics
            .reconcile_duration
            .get_or_create(&labels)
            .observe(self.start.elapsed().as_secs_f64());
    }
}

/// Serves `/metrics`, `/healthz` and `/readyz` on `address`.
pub async fn serve(metrics: Arc<Metrics>, address: SocketAddr) -> std::io::Result<()> {
    let listener = TcpListener::bind(address).await?;
    loop {
        let (stream, _) = listener.accept().await?;
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request: http::Request<hyper::body::Incoming>| {
                let metrics = metrics.clone();
                async move { Ok::<_, Infallible>(answer(&metrics, request.uri().path())) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn answer(metrics: &Metrics, path: &str) -> http::Response<Full<Bytes>> {
    let (code, content_type, body) = match path {
        "/metrics" => (
            200,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            metrics.render(),
        ),
        "/healthz" | "/livez" => (200, "text/plain", "ok\n".to_owned()),
        "/readyz" if metrics.ready.load(Ordering::Relaxed) => {
            (200, "text/plain", "ok\n".to_owned())
        }
        "/readyz" => (503, "text/plain", "caches not synced yet\n".to_owned()),
        _ => (404, "text/plain", "not found\n".to_owned()),
    };
    http::Response::builder()
        .status(code)
        .header(http::header::CONTENT_TYPE, content_type)
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_else(|_| http::Response::new(Full::new(Bytes::new())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_render_with_the_prefix() {
        let metrics = Metrics::new();
        metrics.rollout_phase("r1", Some("Progressing"));
        metrics.rollout_phase("r2", Some("Progressing"));
        metrics.rollout_phase("r2", Some("Succeeded"));
        metrics.targets("r1", &[("updated", 3)]);
        metrics.target_finished("Node", "Updated", 420.0);
        metrics.rollback();
        metrics.window("weekend-nights", true);
        drop(metrics.reconcile("rollout"));
        metrics.reconcile_error("rollout", "api");
        let text = metrics.render();
        for expected in [
            "patchpilot_rollouts{phase=\"Progressing\"} 1",
            "patchpilot_rollouts{phase=\"Succeeded\"} 1",
            "patchpilot_targets{rollout=\"r1\",state=\"updated\"} 3",
            "patchpilot_target_duration_seconds_count{kind=\"Node\",outcome=\"Updated\"} 1",
            "patchpilot_rollbacks_total 1",
            "patchpilot_window_open{window=\"weekend-nights\"} 1",
            "patchpilot_reconcile_duration_seconds_count{controller=\"rollout\"} 1",
            "patchpilot_reconcile_errors_total{controller=\"rollout\",error=\"api\"} 1",
        ] {
            assert!(text.contains(expected), "{expected} missing in:\n{text}");
        }
    }
}
