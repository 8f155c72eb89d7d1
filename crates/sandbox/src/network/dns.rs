//! Names as cluster DNS resolves them for a pod in the operator's namespace.
//!
//! A pod's `resolv.conf` searches `<its namespace>.svc.cluster.local`, `svc.cluster.local`
//! and `cluster.local`, so a Service `web` in `shop` answers to
//! `web.shop.svc.cluster.local`, `web.shop.svc` and `web.shop`, and to `web` alone from a pod
//! in `shop`. The operator runs in `patchpilot-system`.

/// The namespace the operator runs in: short names resolve in it.
pub const CLIENT_NAMESPACE: &str = "patchpilot-system";
/// The cluster's DNS domain.
pub const CLUSTER_DOMAIN: &str = "cluster.local";

/// What a host name can stand for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Name {
    /// A Service, if one of that name exists: `(namespace, name)`.
    Service(String, String),
    /// Anything else, lower case and without a final dot.
    Other(String),
}

/// The Service a host name names, by the DNS search path of a pod in the operator's
/// namespace; [`Name::Other`] when it cannot name one.
pub fn resolve(host: &str) -> Name {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let labels: Vec<&str> = host.split('.').collect();
    let service = |name: &str, namespace: &str| Name::Service(namespace.into(), name.into());
    let domain: Vec<&str> = CLUSTER_DOMAIN.split('.').collect();
    let (rest, qualified) = match labels.strip_suffix(domain.as_slice()) {
        Some(rest) => (rest, true),
        None => (labels.as_slice(), false),
    };
    match (rest, qualified) {
        ([name, namespace, "svc"], _) | ([name, namespace], false)
            if valid(name) && valid(namespace) =>
        {
            service(name, namespace)
        }
        ([name], false) if valid(name) => service(name, CLIENT_NAMESPACE),
        _ => Name::Other(host),
    }
}

/// Whether a label can be a Service's or a namespace's name (an RFC 1123 label).
fn valid(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= 63
        && label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !label.starts_with('-')
        && !label.ends_with('-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dns_forms_of_a_service_name_it() {
        let web = Name::Service("shop".into(), "web".into());
        for host in [
            "web.shop.svc.cluster.local",
            "web.shop.svc.cluster.local.",
            "WEB.shop.svc",
            "web.shop",
        ] {
            assert_eq!(resolve(host), web, "{host}");
        }
        assert_eq!(
            resolve("prometheus"),
            Name::Service(CLIENT_NAMESPACE.into(), "prometheus".into())
        );
    }

    #[test]
    fn other_names_are_no_service() {
        for host in [
            "general-1.internal.example.com",
            "127.0.0.1",
            "web.shop.svc.example.com",
            "cache-0.cache.shop.svc.cluster.local",
            "cluster.local",
            "web.shop.cluster.local",
            "web_1.shop",
        ] {
            assert!(matches!(resolve(host), Name::Other(_)), "{host}");
        }
    }
}
