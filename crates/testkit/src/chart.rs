//! The Helm chart's files, and the static structure of its simple templates.

/// A file of the Helm chart.
pub fn chart_file(name: &str) -> String {
    let path = crate::repo::path("charts/patchpilot").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A template with its template-only lines dropped and inline actions replaced by a
/// placeholder: enough to read the static structure of simple templates.
pub fn static_part(template: &str) -> serde_json::Value {
    let text: String = template
        .lines()
        .filter(|line| !line.trim_start().starts_with("{{"))
        .map(|line| {
            let mut out = String::new();
            let mut rest = line;
            while let Some(start) = rest.find("{{") {
                out.push_str(&rest[..start]);
                let end = rest[start..]
                    .find("}}")
                    .map_or(rest.len(), |e| start + e + 2);
                out.push_str("TEMPLATED");
                rest = &rest[end..];
            }
            out.push_str(rest);
            out + "\n"
        })
        .collect();
    serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}
