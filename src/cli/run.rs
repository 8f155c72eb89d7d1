//! `patchpilot run`: the operator against the cluster of the in-cluster config or
//! KUBECONFIG.

use std::sync::Arc;

use super::{CliError, LogFormat, RunArgs};
use crate::{clock::SystemClock, controller};

/// Sets up logging in the chosen format; `RUST_LOG` filters (default `info`).
pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second initialisation (tests) keeps the first subscriber.
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// Resolves when the process gets SIGTERM or Ctrl-C.
pub async fn termination() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    tracing::info!("stopping: finishing the reconciles in flight");
}

/// Runs `patchpilot run`.
pub fn run(args: &RunArgs) -> Result<(), CliError> {
    init_logging(args.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(CliError::Output)?;
    runtime.block_on(async {
        let options = kube::config::KubeConfigOptions {
            context: args.context.clone(),
            ..Default::default()
        };
        let config = match &args.context {
            Some(_) => kube::Config::from_kubeconfig(&options)
                .await
                .map_err(|e| CliError::Cluster(e.to_string()))?,
            None => kube::Config::infer()
                .await
                .map_err(|e| CliError::Cluster(e.to_string()))?,
        };
        // No client-side retries: a 429 from an eviction is a PodDisruptionBudget's answer,
        // which the drain retries on its own back-off and reports; retried inside the
        // client, one drain held its reconcile (and SIGTERM) for tens of seconds. Other
        // failures are retried by requeueing the reconcile.
        let mut config = config;
        config.default_retry = false;
        config.headers.push((
            http::header::USER_AGENT,
            http::HeaderValue::from_static(controller::USER_AGENT),
        ));
        let client =
            controller::client::build(config).map_err(|e| CliError::Cluster(e.to_string()))?;
        let identity = std::env::var("POD_NAME")
            .unwrap_or_else(|_| format!("patchpilot-{}", std::process::id()));
        let namespace =
            std::env::var("POD_NAMESPACE").unwrap_or_else(|_| "patchpilot-system".into());
        let options = controller::Options {
            metrics_addr: Some(args.metrics_addr),
            leader_election: args.leader_elect.then(|| controller::LeaderElection {
                namespace,
                lease: "patchpilot-leader".to_owned(),
                identity: identity.clone(),
            }),
            streaming_lists: !args.no_streaming_lists,
            instance: identity,
            health_http: None,
        };
        tracing::info!(version = env!("CARGO_PKG_VERSION"), "patchpilot starts");
        controller::run(client, Arc::new(SystemClock), options, termination())
            .await
            .map_err(|e| CliError::Cluster(e.to_string()))
    })
}
