//! One delivery attempt: a POST of a notice's [`Request`] to a notifier's address, and what
//! came of it ([`Attempt`]).
//!
//! - A `2xx` answer delivered the notice.
//! - A `4xx` refused it: the destination will not take it however often it is sent (a
//!   malformed body, a revoked webhook), so it is not sent again. Except `408 Request
//!   Timeout` and `429 Too Many Requests`, which say "later": they fail, and are retried.
//! - A `5xx`, no answer within the notifier's timeout, or no connection at all (a name that
//!   does not resolve, a refused connection, TLS) fail, and are retried after [`backoff`],
//!   or after the `Retry-After` of a `429` or `503` when it gives seconds (at most
//!   [`RETRY_AFTER_MAX`]). Any other answer (a redirect, which is not followed) refuses it.
//!
//! Reasons are one line, like `POST https://hooks.example/… answered 503 Service
//! Unavailable`. Webhook URLs carry their secret in the path or the query, so a reason
//! names the address by its scheme and host alone (`/…` standing for the rest), and never
//! shows the token; an answer's text quoted in a reason has both blotted out too.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};

use super::payload::Request;
use crate::rollout::health::HttpClient;

/// What came of one attempt to deliver a notice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attempt {
    /// The destination took it (`2xx`).
    Delivered {
        /// The status it answered.
        code: u16,
    },
    /// The destination refused it (`4xx` but 408 and 429, or a redirect): sending it again
    /// would not help; it is not retried.
    Refused {
        /// The status it answered.
        code: u16,
        /// `POST <scheme>://<host>/… answered <code> <reason>: <what it said>`, in one line.
        reason: String,
    },
    /// It did not get through this time (`5xx`, `408`, `429`, no answer in time, no
    /// connection): it is retried.
    Failed {
        /// Why, in one line.
        reason: String,
        /// How long the destination asked to wait (`Retry-After` of a `429` or `503`, in
        /// seconds, at most [`RETRY_AFTER_MAX`]).
        retry_after: Option<Duration>,
    },
}

/// The longest `Retry-After` honoured: a destination asking for more is tried again after
/// this long.
pub const RETRY_AFTER_MAX: Duration = Duration::from_secs(60 * 60);

/// The wait after the first failed attempt; it doubles after each further one.
pub const BACKOFF_FIRST: Duration = Duration::from_secs(5);

/// The longest wait between two attempts.
pub const BACKOFF_MAX: Duration = Duration::from_secs(5 * 60);

/// How many characters of a refusal's answer its reason quotes.
const EXCERPT_CHARS: usize = 200;

/// How long to wait before the next attempt after `failed_attempts` failed ones in a row:
/// none after none, then 5s, 10s, 20s… doubling up to 5 minutes ([`BACKOFF_MAX`]). No
/// jitter: one operator sends to each destination one notice at a time, so retries do not
/// come in herds, and a fixed sequence keeps the sandbox's runs repeatable.
pub fn backoff(failed_attempts: u32) -> Duration {
    match failed_attempts {
        0 => Duration::ZERO,
        n => BACKOFF_FIRST
            .saturating_mul(2u32.saturating_pow(n - 1))
            .min(BACKOFF_MAX),
    }
}

/// POSTs `request` to `address` (an `http` or `https` URL), with `Authorization: Bearer
/// <token>` when a token is given; what came of it within `timeout`.
pub async fn post(
    http: &HttpClient,
    address: &str,
    token: Option<&str>,
    request: &Request,
    timeout: Duration,
) -> Attempt {
    let failed = |reason: String| Attempt::Failed {
        reason,
        retry_after: None,
    };
    let uri: http::Uri = match address.parse() {
        Ok(uri) => uri,
        Err(_) => return failed("the address is not a URL".into()),
    };
    if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
        return failed("the address is not an http:// or https:// URL with a host".into());
    }
    let secrets = Secrets {
        address,
        path: uri.path_and_query().map(|p| p.as_str()).unwrap_or(""),
        token: token.unwrap_or(""),
    };
    let post = format!("POST {}", shown(&uri));
    let outgoing = match build(uri.clone(), token, request) {
        Ok(outgoing) => outgoing,
        Err(what) => return failed(format!("{post}: {what}")),
    };

    let deadline = tokio::time::Instant::now() + timeout;
    let response = match tokio::time::timeout_at(deadline, http.request(outgoing)).await {
        Err(_) => return failed(format!("{post} got no answer within {timeout:?}")),
        Ok(Err(error)) => {
            return failed(secrets.blot(&format!("{post} failed: {}", chain(&*error))));
        }
        Ok(Ok(response)) => response,
    };
    let status = response.status();
    let code = status.as_u16();
    let answered = match status.canonical_reason() {
        Some(words) => format!("{post} answered {code} {words}"),
        None => format!("{post} answered {code}"),
    };
    match code {
        200..=299 => Attempt::Delivered { code },
        408 | 429 | 500..=599 => Attempt::Failed {
            reason: answered,
            retry_after: match code {
                429 | 503 => retry_after(response.headers()),
                _ => None,
            },
        },
        _ => {
            let said = excerpt(response.into_body(), deadline).await;
            let said = secrets.blot(&said);
            let redirect = match status.is_redirection() {
                true => " (redirects are not followed)",
                false => "",
            };
            Attempt::Refused {
                code,
                reason: match said.is_empty() {
                    true => format!("{answered}{redirect}"),
                    false => format!("{answered}{redirect}: {said}"),
                },
            }
        }
    }
}

/// The HTTP request: a POST of the body with its headers.
fn build(
    uri: http::Uri,
    token: Option<&str>,
    request: &Request,
) -> Result<http::Request<Full<Bytes>>, &'static str> {
    let mut outgoing = http::Request::new(Full::new(Bytes::from(request.body.clone())));
    *outgoing.method_mut() = http::Method::POST;
    *outgoing.uri_mut() = uri;
    let headers = outgoing.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(request.content_type),
    );
    for (name, value) in &request.headers {
        let name =
            http::HeaderName::try_from(name.as_str()).map_err(|_| "a header name is not valid")?;
        let value = http::HeaderValue::try_from(value.as_str())
            .map_err(|_| "a header value is not valid")?;
        headers.insert(name, value);
    }
    if let Some(token) = token {
        let mut value = http::HeaderValue::try_from(format!("Bearer {token}"))
            .map_err(|_| "the token cannot be sent in a header")?;
        value.set_sensitive(true);
        headers.insert(http::header::AUTHORIZATION, value);
    }
    Ok(outgoing)
}

/// The address as reasons show it: `https://hooks.example/…` (scheme, host and port; the
/// path and query, where webhooks keep their secret, elided).
fn shown(uri: &http::Uri) -> String {
    let scheme = uri.scheme_str().unwrap_or("http");
    let host = uri.host().unwrap_or("");
    let port = uri.port_u16().map(|p| format!(":{p}")).unwrap_or_default();
    let rest = match uri.path_and_query().map(|p| p.as_str()) {
        None | Some("" | "/") => "",
        Some(_) => "/…",
    };
    format!("{scheme}://{host}{port}{rest}")
}

/// What must not appear in a reason.
struct Secrets<'a> {
    address: &'a str,
    path: &'a str,
    token: &'a str,
}

impl Secrets<'_> {
    /// `text` in one line, with the address's path and query and the token blotted out.
    fn blot(&self, text: &str) -> String {
        let mut text = text.replace(['\r', '\n'], " ");
        if let Ok(uri) = self.address.parse::<http::Uri>() {
            text = text.replace(self.address, &shown(&uri));
        }
        // The path and query together, then each alone.
        let (path, query) = self.path.split_once('?').unwrap_or((self.path, ""));
        for (secret, blot) in [(self.path, "/…"), (path, "/…"), (query, "…")] {
            if secret.len() > 1 {
                text = text.replace(secret, blot);
            }
        }
        if !self.token.is_empty() {
            text = text.replace(self.token, "***");
        }
        text
    }
}

/// An error and its sources, `: `-separated, each said once.
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(error);
    while let Some(error) = next {
        let text = error.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = error.source();
    }
    parts.join(": ")
}

/// The seconds of a `Retry-After`, at most [`RETRY_AFTER_MAX`]; `None` for an HTTP date or
/// anything else.
fn retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    let seconds: u64 = headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(seconds).min(RETRY_AFTER_MAX))
}

/// The start of an answer's body, read until `deadline`: at most [`EXCERPT_CHARS`]
/// characters, its whitespace runs made single spaces.
async fn excerpt<B>(mut body: B, deadline: tokio::time::Instant) -> String
where
    B: http_body::Body<Data = Bytes> + Unpin,
{
    let mut read = Vec::new();
    while read.len() < EXCERPT_CHARS * 4 {
        match tokio::time::timeout_at(deadline, body.frame()).await {
            Ok(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    read.extend_from_slice(&data);
                }
            }
            _ => break,
        }
    }
    let text = String::from_utf8_lossy(&read);
    let words: Vec<&str> = text.split_whitespace().collect();
    let line = words.join(" ");
    match line.chars().count() > EXCERPT_CHARS {
        true => line.chars().take(EXCERPT_CHARS - 1).chain(['…']).collect(),
        false => line,
    }
}

#[cfg(test)]
mod tests {
    use std::{
        convert::Infallible,
        sync::{Arc, Mutex},
        time::Instant,
    };

    use http_body_util::combinators::BoxBody;

    use super::*;
    use crate::rollout::health::http_client;

    /// What the test server answers.
    #[derive(Clone)]
    enum Reply {
        /// A status, headers and a body.
        Answer(u16, Vec<(&'static str, &'static str)>, String),
        /// Nothing: the request waits for ever.
        Silence,
    }

    /// A request the test server got.
    #[derive(Clone, Debug)]
    struct Seen {
        method: http::Method,
        path: String,
        headers: http::HeaderMap,
        body: Bytes,
    }

    /// A server on a loopback port answering every request with `reply`.
    struct Server {
        base: String,
        seen: Arc<Mutex<Vec<Seen>>>,
    }

    impl Server {
        fn seen(&self) -> Vec<Seen> {
            self.seen.lock().unwrap().clone()
        }
    }

    async fn serve(reply: Reply) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (reply, log) = (reply.clone(), log.clone());
                let service = hyper::service::service_fn(
                    move |request: http::Request<hyper::body::Incoming>| {
                        let (reply, log) = (reply.clone(), log.clone());
                        async move {
                            let (parts, body) = request.into_parts();
                            let body = body.collect().await.unwrap().to_bytes();
                            log.lock().unwrap().push(Seen {
                                method: parts.method,
                                path: parts
                                    .uri
                                    .path_and_query()
                                    .map(|p| p.to_string())
                                    .unwrap_or_default(),
                                headers: parts.headers,
                                body,
                            });
                            let (code, headers, text) = match reply {
                                Reply::Answer(code, headers, text) => (code, headers, text),
                                Reply::Silence => std::future::pending().await,
                            };
                            let mut response = http::Response::builder().status(code);
                            for (name, value) in headers {
                                response = response.header(name, value);
                            }
                            let body: BoxBody<Bytes, Infallible> =
                                Full::new(Bytes::from(text)).boxed();
                            Ok::<_, Infallible>(response.body(body).unwrap())
                        }
                    },
                );
                tokio::spawn(async move {
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, service)
                        .await;
                });
            }
        });
        Server { base, seen }
    }

    fn answer(code: u16) -> Reply {
        Reply::Answer(code, vec![], String::new())
    }

    fn notice() -> Request {
        Request {
            content_type: "application/json",
            headers: vec![
                ("User-Agent".into(), crate::USER_AGENT.into()),
                ("X-Patchpilot-Notice-Id".into(), "os-1/3".into()),
                ("Idempotency-Key".into(), "os-1/3".into()),
            ],
            body: br#"{"id":"os-1/3"}"#.to_vec(),
        }
    }

    const SECRET_PATH: &str = "/services/T000/B000/XXXXSECRET";
    const SECRET_QUERY: &str = "sig=QUERYSECRET";
    const TOKEN: &str = "TOKENSECRET";

    /// Sends the test notice to `server` at the secret path, with the token.
    async fn send(server: &Server, timeout: Duration) -> Attempt {
        let address = format!("{}{SECRET_PATH}?{SECRET_QUERY}", server.base);
        post(&http_client(), &address, Some(TOKEN), &notice(), timeout).await
    }

    #[track_caller]
    fn assert_discreet(reason: &str) {
        for secret in ["XXXXSECRET", "QUERYSECRET", TOKEN, "/services"] {
            assert!(!reason.contains(secret), "{reason:?} shows {secret}");
        }
        assert!(!reason.contains('\n'), "{reason:?} is one line");
    }

    #[tokio::test]
    async fn a_2xx_answer_delivers_the_request_as_given() {
        let server = serve(answer(202)).await;
        let attempt = send(&server, Duration::from_secs(5)).await;
        assert_eq!(attempt, Attempt::Delivered { code: 202 });
        let seen = server.seen();
        assert_eq!(seen.len(), 1);
        let seen = &seen[0];
        assert_eq!(seen.method, http::Method::POST);
        assert_eq!(seen.path, format!("{SECRET_PATH}?{SECRET_QUERY}"));
        assert_eq!(seen.body, Bytes::from_static(br#"{"id":"os-1/3"}"#));
        let header = |name: &str| seen.headers.get(name).map(|v| v.to_str().unwrap());
        assert_eq!(header("content-type"), Some("application/json"));
        assert_eq!(header("x-patchpilot-notice-id"), Some("os-1/3"));
        assert_eq!(header("idempotency-key"), Some("os-1/3"));
        assert_eq!(header("user-agent"), Some(crate::USER_AGENT));
        assert_eq!(
            header("authorization"),
            Some(format!("Bearer {TOKEN}").as_str())
        );
    }

    #[tokio::test]
    async fn without_a_token_no_authorization_is_sent() {
        let server = serve(answer(200)).await;
        let attempt = post(
            &http_client(),
            &format!("{}/hook", server.base),
            None,
            &notice(),
            Duration::from_secs(5),
        )
        .await;
        assert_eq!(attempt, Attempt::Delivered { code: 200 });
        assert!(server.seen()[0].headers.get("authorization").is_none());
    }

    #[tokio::test]
    async fn a_4xx_answer_refuses_it_with_what_the_destination_said() {
        let said = format!(
            "invalid_payload\n  for {SECRET_PATH} with {TOKEN}: {}",
            "x".repeat(500)
        );
        let server = serve(Reply::Answer(400, vec![], said)).await;
        let Attempt::Refused { code, reason } = send(&server, Duration::from_secs(5)).await else {
            panic!("a 400 refuses");
        };
        assert_eq!(code, 400);
        let start = format!(
            "POST {}/… answered 400 Bad Request: invalid_payload for /… with ***: x",
            server.base
        );
        assert!(reason.starts_with(&start), "{reason}");
        assert!(
            reason.chars().count() <= start.len() + EXCERPT_CHARS,
            "{reason}"
        );
        assert!(reason.ends_with('…'), "{reason}");
        assert_discreet(&reason);

        let server = serve(answer(404)).await;
        let attempt = send(&server, Duration::from_secs(5)).await;
        assert_eq!(
            attempt,
            Attempt::Refused {
                code: 404,
                reason: format!("POST {}/… answered 404 Not Found", server.base),
            }
        );
        let server = serve(Reply::Answer(
            301,
            vec![("location", "https://elsewhere.example/")],
            String::new(),
        ))
        .await;
        let Attempt::Refused { code: 301, reason } = send(&server, Duration::from_secs(5)).await
        else {
            panic!("a redirect refuses");
        };
        assert!(reason.ends_with("(redirects are not followed)"), "{reason}");
    }

    #[tokio::test]
    async fn server_errors_408_and_429_fail_to_be_retried_as_the_destination_asks() {
        for (code, headers, retry) in [
            (500, vec![], None),
            (502, vec![], None),
            (503, vec![("retry-after", "120")], Some(120)),
            (503, vec![("retry-after", "86400")], Some(3600)),
            (
                503,
                vec![("retry-after", "Wed, 21 Oct 2026 07:28:00 GMT")],
                None,
            ),
            (429, vec![("retry-after", " 30 ")], Some(30)),
            (429, vec![], None),
            // A Retry-After is honoured only where it means "come back later".
            (408, vec![("retry-after", "120")], None),
            (500, vec![("retry-after", "120")], None),
        ] {
            let server = serve(Reply::Answer(code, headers, "down".into())).await;
            let attempt = send(&server, Duration::from_secs(5)).await;
            let Attempt::Failed {
                reason,
                retry_after,
            } = attempt
            else {
                panic!("{code} fails: {attempt:?}");
            };
            assert_eq!(retry_after, retry.map(Duration::from_secs), "{code}");
            assert!(
                reason.starts_with(&format!("POST {}/… answered {code} ", server.base)),
                "{reason}"
            );
            assert_discreet(&reason);
        }
        let server = serve(answer(503)).await;
        assert_eq!(
            send(&server, Duration::from_secs(5)).await,
            Attempt::Failed {
                reason: format!("POST {}/… answered 503 Service Unavailable", server.base),
                retry_after: None,
            }
        );
    }

    #[tokio::test]
    async fn no_answer_within_the_timeout_fails() {
        let server = serve(Reply::Silence).await;
        let started = Instant::now();
        let attempt = send(&server, Duration::from_millis(200)).await;
        assert!(started.elapsed() < Duration::from_secs(3), "{attempt:?}");
        assert_eq!(
            attempt,
            Attempt::Failed {
                reason: format!("POST {}/… got no answer within 200ms", server.base),
                retry_after: None,
            }
        );
        assert_eq!(server.seen().len(), 1, "the request reached the server");
    }

    #[tokio::test]
    async fn no_connection_fails_saying_why() {
        // A port that was free a moment ago, and now is closed.
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let address = format!("http://127.0.0.1:{port}{SECRET_PATH}?{SECRET_QUERY}");
        let attempt = post(
            &http_client(),
            &address,
            Some(TOKEN),
            &notice(),
            Duration::from_secs(5),
        )
        .await;
        let Attempt::Failed {
            reason,
            retry_after: None,
        } = attempt
        else {
            panic!("a refused connection fails: {attempt:?}");
        };
        assert!(
            reason.starts_with(&format!("POST http://127.0.0.1:{port}/… failed: ")),
            "{reason}"
        );
        assert!(reason.to_lowercase().contains("refused"), "{reason}");
        assert_discreet(&reason);
    }

    #[tokio::test]
    async fn a_transport_error_naming_the_address_is_blotted() {
        // A transport that words its error with the whole URL, as some do.
        let transport = tower::service_fn(|request: http::Request<Full<Bytes>>| async move {
            Err::<http::Response<Full<Bytes>>, _>(std::io::Error::other(format!(
                "dns error: no such host in {}",
                request.uri()
            )))
        });
        let address = format!("https://hooks.example{SECRET_PATH}?{SECRET_QUERY}");
        let attempt = post(
            &HttpClient::new(transport),
            &address,
            Some(TOKEN),
            &notice(),
            Duration::from_secs(5),
        )
        .await;
        assert_eq!(
            attempt,
            Attempt::Failed {
                reason: "POST https://hooks.example/… failed: dns error: no such host in \
                         https://hooks.example/…"
                    .into(),
                retry_after: None,
            }
        );
    }

    #[tokio::test]
    async fn an_address_that_is_no_http_url_fails_without_showing_it() {
        for address in [
            "hooks.example/services/XXXXSECRET",
            "ftp://hooks.example/XXXXSECRET",
            "not a url XXXXSECRET",
        ] {
            let attempt = post(
                &http_client(),
                address,
                None,
                &notice(),
                Duration::from_secs(1),
            )
            .await;
            let Attempt::Failed { reason, .. } = attempt else {
                panic!("{address}: {attempt:?}");
            };
            assert_discreet(&reason);
        }
        let attempt = post(
            &http_client(),
            "https://hooks.example/x",
            Some("line\nbreak"),
            &notice(),
            Duration::from_secs(1),
        )
        .await;
        assert_eq!(
            attempt,
            Attempt::Failed {
                reason: "POST https://hooks.example/…: the token cannot be sent in a header".into(),
                retry_after: None,
            }
        );
    }

    #[test]
    fn the_address_is_shown_by_scheme_and_host() {
        let shown = |a: &str| shown(&a.parse().unwrap());
        assert_eq!(shown("https://hooks.example"), "https://hooks.example");
        assert_eq!(shown("https://hooks.example/"), "https://hooks.example");
        assert_eq!(
            shown("https://hooks.example/a/b?c=d"),
            "https://hooks.example/…"
        );
        assert_eq!(
            shown("http://u:pw@10.0.0.1:8080/x"),
            "http://10.0.0.1:8080/…"
        );
    }

    #[test]
    fn the_backoff_doubles_from_5s_up_to_5_minutes() {
        let waits: Vec<u64> = (0..10).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(waits, [0, 5, 10, 20, 40, 80, 160, 300, 300, 300]);
        assert_eq!(backoff(u32::MAX), BACKOFF_MAX);
    }
}
