//! What can go wrong while reconciling, and how soon to try again.

use std::time::Duration;

use patchpilot_engine::InvalidSpec;

/// An error of the controller layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The Kubernetes API refused or failed a request.
    #[error("{action}: {source}")]
    Api {
        /// What the controller was doing.
        action: String,
        /// The client's error.
        #[source]
        source: kube::Error,
    },
    /// An object is invalid in a way the schema could not catch.
    #[error("{0}")]
    InvalidSpec(#[from] InvalidSpec),
    /// A target changed under the controller (optimistic concurrency): look again soon.
    #[error("{0} changed while being updated")]
    Conflict(String),
    /// An object the spec names does not exist (yet): wait for it.
    #[error("{kind} {name:?} does not exist")]
    NotFound {
        /// Its kind.
        kind: &'static str,
        /// Its name.
        name: String,
    },
}

impl Error {
    /// Wraps an API error with what was being done.
    pub fn api(action: impl Into<String>, source: kube::Error) -> Self {
        match &source {
            kube::Error::Api(status) if status.code == 409 => Error::Conflict(action.into()),
            _ => Error::Api {
                action: action.into(),
                source,
            },
        }
    }

    /// A short label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Api { .. } => "api",
            Error::InvalidSpec(_) => "invalid_spec",
            Error::Conflict(_) => "conflict",
            Error::NotFound { .. } => "not_found",
        }
    }

    /// How long to wait before reconciling again after this error: conflicts at once (the
    /// cache will have the new version), API errors with a longer pause.
    pub fn retry_after(&self) -> Duration {
        match self {
            Error::Conflict(_) => Duration::from_millis(500),
            Error::Api {
                source: kube::Error::Api(status),
                ..
            } if status.code == 429 => Duration::from_secs(5),
            Error::Api { .. } => Duration::from_secs(2),
            Error::InvalidSpec(_) | Error::NotFound { .. } => Duration::from_secs(300),
        }
    }
}

/// A result of the controller layer.
pub type Result<T, E = Error> = std::result::Result<T, E>;
