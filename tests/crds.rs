//! The committed CRDs (`crds/` and the chart's copy) are exactly what the code generates.
//!
//! After changing the API types, regenerate them with
//! `PATCHPILOT_BLESS=1 cargo test --test crds`.

use std::{fs, path::Path, process::Command};

use patchpilot::api;

const DIRS: [&str; 2] = ["crds", "charts/patchpilot/crds"];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn committed_crds_match_the_generated_ones() {
    let bless = std::env::var_os("PATCHPILOT_BLESS").is_some();
    let generated: Vec<(String, String)> = api::crds()
        .iter()
        .map(|crd| (api::crd_file_name(crd), api::crd_yaml(crd)))
        .collect();
    let mut stale = Vec::new();
    for dir in DIRS {
        let dir = root().join(dir);
        if bless {
            fs::create_dir_all(&dir).unwrap();
            for entry in fs::read_dir(&dir).unwrap() {
                fs::remove_file(entry.unwrap().path()).unwrap();
            }
        }
        let mut committed: Vec<String> = fs::read_dir(&dir)
            .map(|entries| {
                entries
                    .map(|e| e.unwrap().file_name().into_string().unwrap())
                    .collect()
            })
            .unwrap_or_default();
        committed.sort();
        let expected: Vec<&String> = generated.iter().map(|(name, _)| name).collect();
        if !bless && committed.iter().collect::<Vec<_>>() != expected {
            stale.push(format!(
                "{}: files {committed:?}, expected {expected:?}",
                dir.display()
            ));
            continue;
        }
        for (name, yaml) in &generated {
            let path = dir.join(name);
            if bless {
                fs::write(&path, yaml).unwrap();
            } else if fs::read_to_string(&path).ok().as_ref() != Some(yaml) {
                stale.push(path.display().to_string());
            }
        }
    }
    assert!(
        stale.is_empty(),
        "generated CRDs differ from the committed ones: {stale:?}\n\
         regenerate them with: PATCHPILOT_BLESS=1 cargo test --test crds"
    );
}

#[test]
fn patchpilot_crd_prints_the_files_of_crds_in_order() {
    let output = Command::new(env!("CARGO_BIN_EXE_patchpilot"))
        .arg("crd")
        .output()
        .unwrap();
    assert!(output.status.success());
    let mut files: Vec<_> = fs::read_dir(root().join("crds"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let concatenated: String = files
        .iter()
        .map(|f| fs::read_to_string(f).unwrap())
        .collect();
    assert_eq!(String::from_utf8(output.stdout).unwrap(), concatenated);
}

#[test]
fn every_crd_is_cluster_scoped_with_status_category_and_short_names() {
    for crd in api::crds() {
        let name = crd.metadata.name.clone().unwrap();
        assert_eq!(crd.spec.group, "patchpilot.dev", "{name}");
        assert_eq!(crd.spec.scope, "Cluster", "{name}");
        assert_eq!(
            crd.spec.names.categories.as_deref(),
            Some(&["patchpilot".to_owned()][..])
        );
        assert!(
            !crd.spec
                .names
                .short_names
                .clone()
                .unwrap_or_default()
                .is_empty(),
            "{name}"
        );
        let version = &crd.spec.versions[0];
        assert_eq!(version.name, "v1alpha1");
        assert!(
            version.subresources.as_ref().unwrap().status.is_some(),
            "{name}"
        );
        let columns = version.additional_printer_columns.as_ref().unwrap();
        assert_eq!(columns.last().unwrap().name, "Age", "{name}");
    }
}

#[test]
fn every_schema_field_has_a_description() {
    fn walk(value: &serde_json::Value, path: &str, missing: &mut Vec<String>) {
        let Some(properties) = value.get("properties").and_then(|p| p.as_object()) else {
            if let Some(items) = value.get("items") {
                walk(items, &format!("{path}[]"), missing);
            }
            return;
        };
        for (name, child) in properties {
            let child_path = format!("{path}.{name}");
            let is_standard = matches!(name.as_str(), "apiVersion" | "kind" | "metadata");
            if child.get("description").is_none() && !is_standard {
                missing.push(child_path.clone());
            }
            walk(child, &child_path, missing);
        }
    }
    let mut missing = Vec::new();
    for crd in api::crds() {
        let schema = crd.spec.versions[0]
            .schema
            .as_ref()
            .unwrap()
            .open_api_v3_schema
            .as_ref();
        let schema = serde_json::to_value(schema.unwrap()).unwrap();
        walk(&schema, &crd.spec.names.kind, &mut missing);
    }
    assert!(
        missing.is_empty(),
        "fields without a description: {missing:#?}"
    );
}
