//! `http` checks: a GET of the check's URL, naming the target, answered with one of the
//! expected statuses in time. Prometheus queries are sent the same way ([`get`]).

use std::time::Duration as StdDuration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use patchpilot_engine::target::TargetId;

use patchpilot_api::HttpCheck;

use super::{CheckError, HttpClient, substitute};

/// GETs `url`: its status and body, each within `timeout`.
pub(super) async fn get(
    http: &HttpClient,
    url: &str,
    timeout: StdDuration,
) -> Result<(u16, Bytes), CheckError> {
    let uri: http::Uri = url.parse().map_err(|source| CheckError::InvalidUrl {
        url: url.to_owned(),
        source,
    })?;
    // A GET (the default method) of `uri`, without a body.
    let mut request = http::Request::new(Full::new(Bytes::new()));
    *request.uri_mut() = uri;
    let response = tokio::time::timeout(timeout, http.request(request))
        .await
        .map_err(|_| CheckError::Timeout {
            url: url.to_owned(),
            timeout,
        })?
        .map_err(|source| CheckError::Request {
            url: url.to_owned(),
            source,
        })?;
    let code = response.status().as_u16();
    let body = tokio::time::timeout(timeout, response.into_body().collect())
        .await
        .map_err(|_| CheckError::BodyTimeout {
            url: url.to_owned(),
            timeout,
        })?
        .map_err(|source| CheckError::Body {
            url: url.to_owned(),
            source,
        })?
        .to_bytes();
    Ok((code, body))
}

/// The `http` check: `check.url`, naming `target`, answers with one of
/// `check.expect_status`, returned.
pub(super) async fn http_get(
    http: &HttpClient,
    check: &HttpCheck,
    target: &TargetId,
) -> Result<u16, CheckError> {
    let url = substitute(&check.url, target);
    let (code, _) = get(http, &url, check.timeout.std()).await?;
    if check.expect_status.contains(&code) {
        Ok(code)
    } else {
        Err(CheckError::Status {
            url,
            code,
            expected: check.expect_status.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use patchpilot_api::HealthCheck;
    use patchpilot_engine::{policy::WorkloadKind, units::Duration};

    use super::{
        super::{client::http_client, run, testkit::*},
        *,
    };

    fn http_check(url: String, expect_status: &[u16], timeout_ms: u64) -> HttpCheck {
        HttpCheck {
            url,
            expect_status: expect_status.to_vec(),
            timeout: Duration::from_millis(timeout_ms),
        }
    }

    #[tokio::test]
    async fn http_checks_get_the_target_url_and_accept_the_listed_statuses() {
        let server = serve(|uri| match uri.path() {
            "/nodes/n1/healthz" => Reply::Answer(204, String::new()),
            "/shop/Deployment/web" => Reply::Answer(200, "ok".into()),
            _ => Reply::Answer(404, "not found".into()),
        })
        .await;
        let http = http_client();
        let check = http_check(
            format!("{}/nodes/${{TARGET_NAME}}/healthz", server.base),
            &[200, 204],
            5000,
        );
        assert_eq!(reason(http_get(&http, &check, &node_n1()).await), Ok(()));

        let web = TargetId::workload(WorkloadKind::Deployment, "shop", "web");
        let check = http_check(
            format!(
                "{}/${{TARGET_NAMESPACE}}/${{TARGET_KIND}}/${{TARGET_NAME}}",
                server.base
            ),
            &[200],
            5000,
        );
        assert_eq!(reason(http_get(&http, &check, &web).await), Ok(()));
        let paths: Vec<String> = server
            .requests()
            .iter()
            .map(|u| u.path().to_owned())
            .collect();
        assert_eq!(paths, ["/nodes/n1/healthz", "/shop/Deployment/web"]);
    }

    #[tokio::test]
    async fn http_checks_fail_on_any_other_status_and_say_which() {
        let server = serve(|uri| match uri.path() {
            "/healthz/n1" => Reply::Answer(503, "draining".into()),
            _ => Reply::Answer(200, "ok".into()),
        })
        .await;
        let http = http_client();
        let url = format!("{}/healthz/${{TARGET_NAME}}", server.base);
        let check = http_check(url.clone(), &[200], 5000);
        assert_fails(
            http_get(&http, &check, &node_n1()).await,
            &[
                &format!("{}/healthz/n1", server.base),
                "answered 503",
                "expected [200]",
            ],
        );
        // 200 is not accepted when the check lists only 204.
        let other = http_check(format!("{}/other", server.base), &[204], 5000);
        assert_fails(
            http_get(&http, &other, &node_n1()).await,
            &["answered 200", "expected [204]"],
        );
    }

    #[tokio::test]
    async fn http_checks_time_out_without_an_answer() {
        let server = serve(|_| Reply::Silence).await;
        let check = http_check(format!("{}/healthz", server.base), &[200], 200);
        let started = Instant::now();
        assert_fails(
            http_get(&http_client(), &check, &node_n1()).await,
            &["/healthz", "no answer within 200ms"],
        );
        let took = started.elapsed();
        assert!(
            took < StdDuration::from_secs(3),
            "the timeout took {took:?}"
        );
        assert_eq!(server.requests().len(), 1, "the request reached the server");
    }

    #[tokio::test]
    async fn http_checks_time_out_on_a_body_that_never_ends() {
        let server = serve(|_| Reply::StallBody(200)).await;
        let check = http_check(format!("{}/healthz", server.base), &[200], 300);
        assert_fails(
            http_get(&http_client(), &check, &node_n1()).await,
            &["body not received within 300ms"],
        );
    }

    #[tokio::test]
    async fn http_checks_fail_when_nothing_listens() {
        // A port that was free a moment ago, and now is closed.
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let url = format!("http://127.0.0.1:{port}/healthz");
        let check = http_check(url.clone(), &[200], 2000);
        assert_fails(http_get(&http_client(), &check, &node_n1()).await, &[&url]);
    }

    #[tokio::test]
    async fn run_reports_a_failing_http_check_by_name() {
        let server = serve(|_| Reply::Answer(500, "boom".into())).await;
        let checks = [HealthCheck {
            http: Some(http_check(format!("{}/healthz", server.base), &[200], 5000)),
            ..Default::default()
        }];
        let web = TargetId::workload(WorkloadKind::Deployment, "shop", "web");
        let facts = run(&http_client(), &checks, &subject(&web, &[])).await;
        assert_eq!(facts.reasons.len(), 1, "{facts:?}");
        assert!(
            facts.reasons[0].starts_with("http: ") && facts.reasons[0].contains("answered 500"),
            "{facts:?}"
        );
        assert!(facts.settling.is_empty());
    }
}
