//! The names checks go by in the health history of the status: the kind and a short
//! identity, the same for every target (taken before `${TARGET_NAME}` is replaced).

use patchpilot_api::HealthCheck;

/// Characters kept of a check's identity, so that its name with a `#<index>` fits the 64
/// characters the status allows.
const IDENTITY: usize = 40;

/// The name of each check: `nodeReady`, `podsReady`, `http /healthz` (the URL's path),
/// `prometheus <query>`, `job <name>` (the template's name, or its first container's), with
/// ` #<index in health.checks>` added to the names two checks share.
pub fn check_names(checks: &[HealthCheck]) -> Vec<String> {
    let names: Vec<String> = checks.iter().map(name).collect();
    names
        .iter()
        .enumerate()
        .map(|(index, name)| {
            if names.iter().filter(|n| *n == name).count() > 1 {
                format!("{name} #{index}")
            } else {
                name.clone()
            }
        })
        .collect()
}

fn name(check: &HealthCheck) -> String {
    let (kind, identity) = if check.node_ready.is_some() {
        ("nodeReady", String::new())
    } else if check.pods_ready.is_some() {
        ("podsReady", String::new())
    } else if let Some(http) = &check.http {
        ("http", url_path(&http.url).to_owned())
    } else if let Some(prometheus) = &check.prometheus {
        let query = prometheus.query.split_whitespace();
        ("prometheus", query.collect::<Vec<_>>().join(" "))
    } else if let Some(job) = &check.job {
        let template = &job.template.0;
        let named = template.metadata.as_ref().and_then(|m| m.name.clone());
        let container = || Some(template.spec.as_ref()?.containers.first()?.name.clone());
        ("job", named.or_else(container).unwrap_or_default())
    } else {
        ("check", String::new())
    };
    if identity.is_empty() {
        return kind.to_owned();
    }
    let mut short: String = identity.chars().take(IDENTITY).collect();
    if identity.chars().count() > IDENTITY {
        short.pop();
        short.push('…');
    }
    format!("{kind} {short}")
}

/// The path of a URL (its template), without query or fragment: `/healthz`; `/` without one.
fn url_path(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = rest.find('/').map_or("/", |at| &rest[at..]);
    let end = path.find(['?', '#']).unwrap_or(path.len());
    match &path[..end] {
        "" => "/",
        path => path,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn checks_are_named_by_kind_and_identity_and_told_apart_by_index() {
        let checks: Vec<HealthCheck> = serde_json::from_value(json!([
            {"nodeReady": {}},
            {"podsReady": {}},
            {"http": {"url": "http://${TARGET_NAME}.internal:9100/healthz?verbose=1"}},
            {"http": {"url": "https://${TARGET_NAME}.internal"}},
            {"http": {"url": "http://${TARGET_NAME}:8080/healthz"}},
            {"prometheus": {"url": "http://p:9090", "query": "sum(rate(errors{node=\"${TARGET_NAME}\"}[5m]))\n  / sum(rate(requests[5m]))"}},
            {"job": {"template": {"metadata": {"name": "smoke"}, "spec": {"containers": [{"name": "c"}]}}}},
            {"job": {"template": {"spec": {"containers": [{"name": "e2e"}]}}}},
        ]))
        .unwrap();
        assert_eq!(
            check_names(&checks),
            [
                "nodeReady",
                "podsReady",
                "http /healthz #2",
                "http /",
                "http /healthz #4",
                "prometheus sum(rate(errors{node=\"${TARGET_NAME}\"}[…",
                "job smoke",
                "job e2e",
            ]
        );
    }
}
