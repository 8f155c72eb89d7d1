//! Running the `patchpilot` binary as people do, and the bad-input contract (exit status 2,
//! one line on standard error, no panic).

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

/// The `patchpilot` binary cargo built for the integration test running now: beside the
/// test's executable (`target/<profile>/deps/<test>-<hash>`), one directory up, as cargo
/// lays them out.
pub fn binary() -> PathBuf {
    let test = std::env::current_exe().expect("the test's executable");
    let profile = test
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>");
    profile.join(format!("patchpilot{}", std::env::consts::EXE_SUFFIX))
}

/// Runs `patchpilot` with `args`.
pub fn patchpilot(args: &[&str]) -> Output {
    Command::new(binary()).args(args).output().unwrap()
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
