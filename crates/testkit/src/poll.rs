//! Waiting for a cluster to get somewhere, by asking it again and again.

use std::{future::Future, time::Duration};

/// Asks `probe` every `every` until it answers `Some`, for at most `within`; panics naming
/// `what` after that.
pub async fn until<T, F, Fut>(what: &str, within: Duration, every: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let started = std::time::Instant::now();
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            started.elapsed() < within,
            "timed out after {within:?} waiting for {what}"
        );
        tokio::time::sleep(every).await;
    }
}
