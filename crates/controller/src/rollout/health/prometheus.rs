//! `prometheus` checks: an instant query, naming the target, whose one sample lies within
//! the check's bounds.

use serde_json::Value;

use patchpilot_api::PrometheusCheck;
use patchpilot_engine::target::TargetId;

use super::{CheckError, HttpClient, http::get, substitute};

/// The `prometheus` check: the one sample of `check.query`, naming `target`, lies within
/// `check.min` and `check.max`; the sample is returned.
pub(super) async fn query(
    http: &HttpClient,
    check: &PrometheusCheck,
    target: &TargetId,
) -> Result<f64, CheckError> {
    let promql = substitute(&check.query, target);
    let encoded: String = form_urlencoded::byte_serialize(promql.as_bytes()).collect();
    let url = format!(
        "{}/api/v1/query?query={encoded}",
        check.url.trim_end_matches('/')
    );
    let (code, body) = get(http, &url, check.timeout.std()).await?;
    if code != 200 {
        return Err(CheckError::QueryStatus { url, code });
    }
    let answer: Value = serde_json::from_slice(&body).map_err(CheckError::NotPrometheus)?;
    let Some(value) = sample(&answer) else {
        return Err(CheckError::NotOneSample { query: promql });
    };
    // NaN (like 0/0) compares false with every bound, so it would pass them all.
    if value.is_nan() {
        return Err(CheckError::NotANumber { query: promql });
    }
    if let Some(min) = check.min.filter(|min| value < *min) {
        return Err(CheckError::BelowMinimum {
            query: promql,
            value,
            min,
        });
    }
    if let Some(max) = check.max.filter(|max| value > *max) {
        return Err(CheckError::AboveMaximum {
            query: promql,
            value,
            max,
        });
    }
    Ok(value)
}

/// The one sample of an instant query's answer (a vector of one, or a scalar).
fn sample(answer: &Value) -> Option<f64> {
    let data = &answer["data"];
    let value = match data["resultType"].as_str()? {
        "vector" => match data["result"].as_array()?.as_slice() {
            [one] => &one["value"],
            _ => return None,
        },
        "scalar" => &data["result"],
        _ => return None,
    };
    value.get(1)?.as_str()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use patchpilot_engine::units::Duration;
    use serde_json::json;

    use super::{
        super::{client::http_client, testkit::*},
        *,
    };

    /// A Prometheus stand-in: `body` (status 200) at `/api/v1/query`, 404 elsewhere.
    async fn prometheus(body: String) -> Server {
        serve(move |uri| match uri.path() {
            "/api/v1/query" => Reply::Answer(200, body.clone()),
            _ => Reply::Answer(404, "not found".into()),
        })
        .await
    }

    /// An instant query's answer: a vector of one sample per value.
    fn vector(values: &[&str]) -> String {
        let result: Vec<Value> = values
            .iter()
            .map(|v| json!({"metric": {"instance": "n1"}, "value": [1.7e9, v]}))
            .collect();
        json!({"status": "success", "data": {"resultType": "vector", "result": result}}).to_string()
    }

    fn prometheus_check(
        url: &str,
        query: &str,
        min: Option<f64>,
        max: Option<f64>,
    ) -> PrometheusCheck {
        PrometheusCheck {
            url: url.to_owned(),
            query: query.to_owned(),
            min,
            max,
            timeout: Duration::from_secs(5),
        }
    }

    #[tokio::test]
    async fn prometheus_checks_send_an_instant_query_for_the_target() {
        let server = prometheus(vector(&["0.002"])).await;
        // A trailing slash on the server's URL does not double the one of the API path.
        let check = prometheus_check(
            &format!("{}/", server.base),
            r#"sum(rate(errors_total{instance="${TARGET_NAME}"}[5m])) / 2"#,
            None,
            Some(0.01),
        );
        assert_eq!(
            reason(query(&http_client(), &check, &node_n1()).await),
            Ok(())
        );
        let requests = server.requests();
        assert_eq!(requests.len(), 1);
        assert_eq!(requests[0].path(), "/api/v1/query");
        let params: Vec<(String, String)> =
            form_urlencoded::parse(requests[0].query().unwrap_or("").as_bytes())
                .into_owned()
                .collect();
        assert_eq!(
            params,
            [(
                "query".to_owned(),
                r#"sum(rate(errors_total{instance="n1"}[5m])) / 2"#.to_owned()
            )]
        );
    }

    /// A sample, the check's `min` and `max`, and the words of the failure (none: a pass).
    type BoundsCase = (
        &'static str,
        Option<f64>,
        Option<f64>,
        &'static [&'static str],
    );

    #[tokio::test]
    async fn prometheus_checks_compare_the_value_with_min_and_max() {
        let http = http_client();
        let pass = &[];
        let cases: [BoundsCase; 9] = [
            ("0.002", None, Some(0.01), pass),
            ("0.01", None, Some(0.01), pass),
            (
                "0.5",
                None,
                Some(0.01),
                &["= 0.5", "above the maximum 0.01"],
            ),
            ("5", Some(5.0), None, pass),
            ("3", Some(5.0), None, &["= 3", "below the minimum 5"]),
            ("7", Some(5.0), Some(10.0), pass),
            ("4.5", Some(5.0), Some(10.0), &["below the minimum 5"]),
            ("11", Some(5.0), Some(10.0), &["above the maximum 10"]),
            ("+Inf", None, Some(1.0), &["= inf", "above the maximum 1"]),
        ];
        for (value, min, max, failure) in cases {
            let server = prometheus(vector(&[value])).await;
            let check = prometheus_check(&server.base, "up", min, max);
            let result = query(&http, &check, &node_n1()).await;
            if failure.is_empty() {
                assert_eq!(reason(result), Ok(()), "{value} within {min:?}..{max:?}");
            } else {
                let mut words = failure.to_vec();
                words.push("up");
                assert_fails(result, &words);
            }
        }
        // A scalar answer counts as one sample.
        let scalar =
            json!({"status": "success", "data": {"resultType": "scalar", "result": [1.7e9, "42"]}});
        let server = prometheus(scalar.to_string()).await;
        let check = prometheus_check(&server.base, "scalar(up)", None, Some(10.0));
        assert_fails(
            query(&http, &check, &node_n1()).await,
            &["= 42", "above the maximum 10"],
        );
    }

    #[tokio::test]
    async fn prometheus_checks_fail_without_exactly_one_sample() {
        let http = http_client();
        for (answer, what) in [
            (vector(&[]), "an empty vector"),
            (vector(&["1", "2"]), "two samples"),
            (
                json!({"status": "success", "data": {"resultType": "matrix", "result": []}})
                    .to_string(),
                "a range vector",
            ),
            (vector(&["not-a-number"]), "an unreadable sample"),
        ] {
            let server = prometheus(answer).await;
            let check = prometheus_check(&server.base, "up == 0", None, Some(1.0));
            let result = query(&http, &check, &node_n1()).await;
            let reason = result.expect_err(what).to_string();
            assert!(
                reason.contains(r#"the query "up == 0" did not return exactly one sample"#),
                "{what}: {reason}"
            );
        }
    }

    #[tokio::test]
    async fn prometheus_checks_fail_on_a_nan_sample() {
        // 0/0 (an error ratio without traffic) is NaN: it lies within no bounds.
        let server = prometheus(vector(&["NaN"])).await;
        for (min, max) in [
            (None, Some(0.01)),
            (Some(0.0), None),
            (Some(0.0), Some(1.0)),
        ] {
            let check = prometheus_check(&server.base, "errors / requests", min, max);
            assert_fails(
                query(&http_client(), &check, &node_n1()).await,
                &["errors / requests = NaN", "not a number"],
            );
        }
    }

    #[tokio::test]
    async fn prometheus_checks_fail_on_an_error_status() {
        let error = json!({"status": "error", "errorType": "bad_data", "error": "parse error"});
        let server = serve(move |_| Reply::Answer(400, error.to_string())).await;
        let check = prometheus_check(&server.base, "up{", None, Some(1.0));
        assert_fails(
            query(&http_client(), &check, &node_n1()).await,
            &["/api/v1/query?query=up%7B", "answered 400"],
        );
        let server = serve(|_| Reply::Answer(503, "unavailable".into())).await;
        let check = prometheus_check(&server.base, "up", None, Some(1.0));
        assert_fails(
            query(&http_client(), &check, &node_n1()).await,
            &["answered 503"],
        );
    }

    #[tokio::test]
    async fn prometheus_checks_fail_on_malformed_json() {
        let http = http_client();
        for body in [
            "<html>gateway</html>",
            r#"{"status": "success", "data": "#,
            "",
        ] {
            let server = prometheus(body.to_owned()).await;
            let check = prometheus_check(&server.base, "up", None, Some(1.0));
            assert_fails(
                query(&http, &check, &node_n1()).await,
                &["not a Prometheus answer"],
            );
        }
    }

    #[tokio::test]
    async fn prometheus_checks_time_out() {
        let server = serve(|_| Reply::Silence).await;
        let mut check = prometheus_check(&server.base, "up", None, Some(1.0));
        check.timeout = Duration::from_millis(200);
        assert_fails(
            query(&http_client(), &check, &node_n1()).await,
            &["/api/v1/query?query=up", "no answer within 200ms"],
        );
    }

    #[test]
    fn prometheus_answers_read_one_sample() {
        let vector = json!({"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1.7e9, "0.02"]}]}});
        assert_eq!(sample(&vector), Some(0.02));
        let scalar = json!({"data": {"resultType": "scalar", "result": [1.7e9, "3"]}});
        assert_eq!(sample(&scalar), Some(3.0));
        let two = json!({"data": {"resultType": "vector", "result": [{"value": [0, "1"]}, {"value": [0, "2"]}]}});
        assert_eq!(sample(&two), None);
        assert_eq!(
            sample(&json!({"data": {"resultType": "vector", "result": []}})),
            None
        );
    }
}
