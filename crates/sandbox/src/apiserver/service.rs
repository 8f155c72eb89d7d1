//! How clients reach the API server: in-process as a tower `Service` behind `kube::Client`,
//! or over HTTP on a loopback address with bearer tokens naming the users.

use std::{collections::BTreeMap, convert::Infallible, future::Future, pin::Pin, sync::Arc, task};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use super::{ApiServer, Body, MAX_BODY, Request, full};
use crate::run::ADMIN_USER;

/// A client of the API server in the same process, acting as one user.
#[derive(Clone)]
pub struct Client {
    server: Arc<ApiServer>,
    user: Arc<str>,
}

impl Client {
    /// A client acting as `user`.
    pub fn new(server: Arc<ApiServer>, user: &str) -> Self {
        Client {
            server,
            user: user.into(),
        }
    }

    /// A `kube::Client` for `user`, talking to the API server without sockets.
    pub fn kube(server: Arc<ApiServer>, user: &str) -> kube::Client {
        kube::Client::new(Client::new(server, user), "default")
    }
}

impl<B> tower::Service<http::Request<B>> for Client
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    type Response = http::Response<Body>;
    type Error = Box<dyn std::error::Error + Send + Sync>;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut task::Context<'_>) -> task::Poll<Result<(), Self::Error>> {
        task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let server = self.server.clone();
        let user = self.user.clone();
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let body = body.collect().await?.to_bytes();
            Ok(server.handle(Request::new(&user, parts, body)).await)
        })
    }
}

/// Serves the API server over HTTP on `listener`; `tokens` maps bearer tokens to users.
/// Requests with an unknown token are refused with 401. Requests without credentials act as
/// [`ADMIN_USER`]: kubectl never sends a kubeconfig's credentials to a plain-HTTP server
/// (client-go adds them only when the transport is TLS), and people's kubectl is who talks
/// to the loopback address without them.
pub async fn serve(
    server: Arc<ApiServer>,
    listener: TcpListener,
    tokens: BTreeMap<String, String>,
) {
    let tokens = Arc::new(tokens);
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let server = server.clone();
        let tokens = tokens.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request: http::Request<hyper::body::Incoming>| {
                let server = server.clone();
                let tokens = tokens.clone();
                async move { Ok::<_, Infallible>(answer(&server, &tokens, request).await) }
            });
            // A client hanging up mid-request is not the server's problem.
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn answer(
    server: &ApiServer,
    tokens: &BTreeMap<String, String>,
    request: http::Request<hyper::body::Incoming>,
) -> http::Response<Body> {
    let credentials = request
        .headers()
        .get(http::header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or(""));
    let user = match credentials {
        None => Some(ADMIN_USER.to_owned()),
        Some(value) => value
            .strip_prefix("Bearer ")
            .and_then(|token| tokens.get(token))
            .cloned(),
    };
    let Some(user) = user else {
        let status = serde_json::json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": "Unauthorized", "reason": "Unauthorized", "code": 401});
        return http::Response::builder()
            .status(401)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(full(status.to_string()))
            .unwrap_or_else(|_| http::Response::new(full("")));
    };
    let (parts, body) = request.into_parts();
    server
        .handle(Request::new(&user, parts, read_body(body).await))
        .await
}

/// A request body, read until it is known to be over [`MAX_BODY`]: the API server then
/// refuses it whole, and the rest is never read.
async fn read_body(mut body: hyper::body::Incoming) -> Bytes {
    let mut read = bytes::BytesMut::new();
    while read.len() <= MAX_BODY {
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    read.extend_from_slice(&data);
                }
            }
            // A client hanging up mid-request gets what it sent so far.
            Some(Err(_)) | None => break,
        }
    }
    read.freeze()
}
