//! Helpers for the command-line tests: run the binary, find repository files, check the
//! bad-input contract (exit status 2, one line on standard error, no panic).

#![allow(dead_code)]

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

/// Runs `patchpilot` with `args`.
pub fn patchpilot(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_patchpilot"))
        .args(args)
        .output()
        .unwrap()
}

/// A path in the repository.
pub fn root(path: &str) -> String {
    format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))
}

/// Writes `text` to `dir/name`.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Standard error as text.
pub fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

/// Asserts exit status 2 and one line on standard error containing every `needle`.
#[track_caller]
pub fn assert_bad_input(output: &Output, needles: &[&str]) {
    let err = stderr(output);
    assert_eq!(output.status.code(), Some(2), "stderr: {err}");
    assert_eq!(err.lines().count(), 1, "expected one line, got: {err}");
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{err}"
    );
    for needle in needles {
        assert!(err.contains(needle), "expected {needle:?} in: {err}");
    }
}

/// A file of the Helm chart.
pub fn chart_file(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("charts/patchpilot")
        .join(name);
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
