//! Files of the repository.

use std::path::{Path, PathBuf};

/// A path in the repository, whose root is two levels above this crate.
pub fn path(relative: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/testkit sits two levels below the repository's root");
    root.join(relative)
}

/// A path in the repository, as text.
pub fn root(relative: &str) -> String {
    path(relative).display().to_string()
}

/// The `.yaml` files of a directory of the repository, sorted by name.
pub fn yaml_files(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(path(dir))
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}
