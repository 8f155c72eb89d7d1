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
