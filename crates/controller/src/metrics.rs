//! Prometheus metrics (SPEC 6), prefixed `patchpilot_`, and the HTTP endpoint serving them
//! with `/healthz`, `/readyz` and the calendar of planned patching, `/calendar.ics`. The
//! endpoint is read-only: it answers `GET` and `HEAD`, and `405` to anything else.

use std::{
    collections::BTreeMap,
    convert::Infallible,
    net::SocketAddr,
    sync::{
        Arc, Mutex, OnceLock,
        atomic::{AtomicBool, Ordering},
    },
    time::Instant,
};

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use patchpilot_engine::calendar::Horizon;
use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};
use tokio::net::TcpListener;

/// The calendar of planned patching within a horizon, as iCalendar text, made afresh for
/// each request (see `crate::calendar::feed`).
pub type CalendarFeed = Arc<dyn Fn(Horizon) -> String + Send + Sync>;

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
    calendar: OnceLock<CalendarFeed>,
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
            calendar: OnceLock::new(),
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

    /// Serves the calendar at `/calendar.ics` from now on (once the caches it is built from
    /// are filled); until then it answers 503. A second feed is ignored.
    pub fn serve_calendar(&self, feed: CalendarFeed) {
        let _ = self.calendar.set(feed);
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

/// Serves `/metrics`, `/healthz`, `/readyz` and `/calendar.ics` on `address`.
pub async fn serve(metrics: Arc<Metrics>, address: SocketAddr) -> std::io::Result<()> {
    let listener = TcpListener::bind(address).await?;
    loop {
        let (stream, _) = listener.accept().await?;
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request: http::Request<hyper::body::Incoming>| {
                let metrics = metrics.clone();
                async move {
                    let uri = request.uri();
                    Ok::<_, Infallible>(answer(&metrics, request.method(), uri.path(), uri.query()))
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// The answer to `method path?query`. The body of a `HEAD` is left out by hyper, which
/// keeps its `Content-Length`.
fn answer(
    metrics: &Metrics,
    method: &http::Method,
    path: &str,
    query: Option<&str>,
) -> http::Response<Full<Bytes>> {
    const TEXT: &str = "text/plain; charset=utf-8";
    if method != http::Method::GET && method != http::Method::HEAD {
        let mut refused = response(405, TEXT, "only GET and HEAD are served\n".to_owned());
        refused.headers_mut().insert(
            http::header::ALLOW,
            http::HeaderValue::from_static("GET, HEAD"),
        );
        return refused;
    }
    let ready = metrics.ready.load(Ordering::Relaxed);
    let (code, content_type, body) = match path {
        "/metrics" => (
            200,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            metrics.render(),
        ),
        "/healthz" | "/livez" => (200, TEXT, "ok\n".to_owned()),
        "/readyz" if ready => (200, TEXT, "ok\n".to_owned()),
        "/readyz" => (503, TEXT, "caches not synced yet\n".to_owned()),
        "/calendar.ics" => match (metrics.calendar.get(), horizon(query)) {
            (_, Err(why)) => (400, TEXT, why),
            (Some(feed), Ok(horizon)) if ready => {
                (200, "text/calendar; charset=utf-8", feed(horizon))
            }
            _ => (503, TEXT, "caches not synced yet\n".to_owned()),
        },
        _ => (404, TEXT, "not found\n".to_owned()),
    };
    response(code, content_type, body)
}

fn response(code: u16, content_type: &str, body: String) -> http::Response<Full<Bytes>> {
    http::Response::builder()
        .status(code)
        .header(http::header::CONTENT_TYPE, content_type)
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_else(|_| http::Response::new(Full::new(Bytes::new())))
}

/// The horizon of `/calendar.ics?days=N`: [`Horizon::DEFAULT_DAYS`] without `days`.
fn horizon(query: Option<&str>) -> Result<Horizon, String> {
    let mut horizon = Horizon::default();
    for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        if key == "days" {
            horizon = value
                .parse::<u32>()
                .ok()
                .filter(|days| (1..=Horizon::MAX_DAYS).contains(days))
                .map(Horizon::days)
                .ok_or_else(|| {
                    format!(
                        "days must be a whole number from 1 to {}, not {value:?}\n",
                        Horizon::MAX_DAYS
                    )
                })?;
        }
    }
    Ok(horizon)
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
        metrics.notice("chat", "delivered", Some(0.006));
        metrics.notice("chat", "failed", None);
        metrics.notifier_failing("chat", true);
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
            "patchpilot_notices_total{notifier=\"chat\",outcome=\"delivered\"} 1",
            "patchpilot_notices_total{notifier=\"chat\",outcome=\"failed\"} 1",
            "patchpilot_notifier_failing{notifier=\"chat\"} 1",
            "patchpilot_notice_delay_seconds_count 1",
        ] {
            assert!(text.contains(expected), "{expected} missing in:\n{text}");
        }
    }

    fn get(metrics: &Metrics, method: http::Method, target: &str) -> (u16, String, String) {
        let (path, query) = match target.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (target, None),
        };
        let response = answer(metrics, &method, path, query);
        let content_type = response.headers()[http::header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .to_owned();
        let body = response.body().clone();
        let body = futures::executor::block_on(http_body_util::BodyExt::collect(body))
            .unwrap()
            .to_bytes();
        (
            response.status().as_u16(),
            content_type,
            String::from_utf8(body.to_vec()).unwrap(),
        )
    }

    #[test]
    fn the_calendar_is_served_once_the_caches_are_filled() {
        let metrics = Metrics::new();
        let feed: CalendarFeed = Arc::new(|horizon: Horizon| format!("days={}", horizon.days));
        assert_eq!(get(&metrics, http::Method::GET, "/calendar.ics").0, 503);
        metrics.serve_calendar(feed);
        assert_eq!(get(&metrics, http::Method::GET, "/calendar.ics").0, 503);
        metrics.set_ready();
        assert_eq!(
            get(&metrics, http::Method::GET, "/calendar.ics"),
            (
                200,
                "text/calendar; charset=utf-8".to_owned(),
                "days=30".to_owned()
            )
        );
        assert_eq!(
            get(&metrics, http::Method::HEAD, "/calendar.ics?days=7").2,
            "days=7"
        );
        for bad in ["0", "401", "soon", "-1"] {
            let (code, _, body) = get(
                &metrics,
                http::Method::GET,
                &format!("/calendar.ics?days={bad}"),
            );
            assert_eq!(code, 400, "{bad}");
            assert!(
                body.contains("days must be a whole number from 1 to 400"),
                "{body}"
            );
        }
    }

    #[test]
    fn the_endpoint_is_read_only() {
        let metrics = Metrics::new();
        metrics.set_ready();
        for method in [http::Method::POST, http::Method::PUT, http::Method::DELETE] {
            let response = answer(&metrics, &method, "/calendar.ics", None);
            assert_eq!(response.status(), 405, "{method}");
            assert_eq!(response.headers()[http::header::ALLOW], "GET, HEAD");
        }
        assert_eq!(get(&metrics, http::Method::GET, "/readyz").0, 200);
        assert_eq!(get(&metrics, http::Method::GET, "/nothing").0, 404);
    }
}
