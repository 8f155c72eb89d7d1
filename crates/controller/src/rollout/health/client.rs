//! The HTTP client of `http` and `prometheus` checks: any transport (the sandbox answers from
//! its simulated cluster), by default the network, with TLS from the system's roots.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};

/// An error of a health check's request, as the transport words it.
pub type HttpError = Box<dyn std::error::Error + Send + Sync>;
/// The body of an answer to a health check.
pub type HttpBody = http_body_util::combinators::BoxBody<Bytes, HttpError>;
/// What carries health checks' requests: the network, or a stand-in such as the sandbox's
/// simulated cluster.
pub type HttpTransport = tower::util::BoxCloneSyncService<
    http::Request<Full<Bytes>>,
    http::Response<HttpBody>,
    HttpError,
>;

/// The HTTP client of `http` and `prometheus` checks: any transport, by default the network
/// ([`http_client`]).
#[derive(Clone)]
pub struct HttpClient(HttpTransport);

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HttpClient")
    }
}

impl HttpClient {
    /// A client sending its requests through `transport`.
    pub fn new<S, B>(transport: S) -> Self
    where
        S: tower::Service<http::Request<Full<Bytes>>, Response = http::Response<B>>
            + Clone
            + Send
            + Sync
            + 'static,
        S::Error: Into<HttpError>,
        S::Future: Send + 'static,
        B: http_body::Body<Data = Bytes> + Send + Sync + 'static,
        B::Error: Into<HttpError>,
    {
        use tower::ServiceExt;
        HttpClient(HttpTransport::new(
            transport
                .map_response(|r: http::Response<B>| r.map(|b| b.map_err(Into::into).boxed()))
                .map_err(Into::into),
        ))
    }

    /// Sends `request`.
    pub async fn request(
        &self,
        request: http::Request<Full<Bytes>>,
    ) -> Result<http::Response<HttpBody>, HttpError> {
        use tower::ServiceExt;
        self.0.clone().oneshot(request).await
    }
}

/// A client for HTTP and Prometheus checks over the network (HTTP, and HTTPS with the
/// system's roots).
pub fn http_client() -> HttpClient {
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()
        .map(|b| b.https_or_http().enable_http1().build())
        .unwrap_or_else(|_| {
            // No usable system roots: plain HTTP still works.
            hyper_rustls::HttpsConnectorBuilder::new()
                .with_tls_config(rustls_config())
                .https_or_http()
                .enable_http1()
                .build()
        });
    let client: Client<HttpsConnector<HttpConnector>, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build(connector);
    HttpClient::new(client)
}

/// A TLS configuration without roots: HTTPS checks fail with a clear error, HTTP ones work.
fn rustls_config() -> rustls::ClientConfig {
    rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("ring supports the default TLS versions")
    .with_root_certificates(rustls::RootCertStore::empty())
    .with_no_client_auth()
}
