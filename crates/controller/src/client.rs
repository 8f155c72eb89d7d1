//! The operator's API client: kube's default stack, with smaller connections.
//!
//! The operator holds one HTTP/1.1 connection for each watch (a dozen caches and the pods of
//! every target in progress, a hundred at a time on a big cluster), and a connection for
//! each request in flight (evictions go out together). hyper lets each connection's read
//! buffer grow to about 400 KiB and keeps idle connections without limit; at that scale the
//! buffers were about a fifth of the operator's heap (8 of 43 MB in a heap profile). This
//! client is kube's own stack (base URI, authentication, the configured headers,
//! connect/read/write timeouts, TLS from the kubeconfig) on a hyper client whose connections
//! read through at most [`READ_BUFFER_MAX`] and of which at most [`IDLE_PER_HOST`] stay open
//! idle. A watch event or a response bigger than the buffer is read in several reads; nothing
//! is cut short.
//!
//! What it leaves out of kube's stack: the retry layer (`patchpilot run` turns retries off,
//! see there) and the `HTTP` debug span around each request.

use hyper_timeout::TimeoutConnector;
use hyper_util::{
    client::legacy::{Client as HyperClient, connect::HttpConnector},
    rt::TokioExecutor,
};
use kube::{
    Client, Config,
    client::{Body, ConfigExt},
};
use tower::{BoxError, ServiceBuilder};

/// The most a connection's read buffer grows to (hyper's default: about 400 KiB; its least:
/// 8 KiB).
pub const READ_BUFFER_MAX: usize = 16 * 1024;

/// The idle connections kept open for the next request (hyper's default: no limit, each for
/// 90 s).
pub const IDLE_PER_HOST: usize = 8;

/// A client for `config` with the operator's connection limits. With kube's retries asked
/// for, or through a proxy (which this build does not support), kube's own builder makes
/// the client (or reports the error).
pub fn build(config: Config) -> Result<Client, kube::Error> {
    if config.proxy_url.is_some() || config.default_retry {
        return Client::try_from(config);
    }
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    let https = config.rustls_https_connector_with_connector(http)?;
    let mut connector = TimeoutConnector::new(https);
    connector.set_connect_timeout(config.connect_timeout);
    connector.set_read_timeout(config.read_timeout);
    connector.set_write_timeout(config.write_timeout);
    connector.set_reset_reader_on_write(config.reset_reader_on_write);
    let hyper: HyperClient<_, Body> = HyperClient::builder(TokioExecutor::new())
        .http1_max_buf_size(READ_BUFFER_MAX)
        .pool_max_idle_per_host(IDLE_PER_HOST)
        .build(connector);
    let service = ServiceBuilder::new()
        .layer(config.base_uri_layer())
        .option_layer(config.auth_layer()?)
        .layer(config.extra_headers_layer()?)
        .map_err(BoxError::from)
        .service(hyper);
    Ok(Client::new(service, config.default_namespace))
}
