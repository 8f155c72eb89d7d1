//! Server-side apply as the sandbox's API server does it, on inputs
//! `[live, config, manager, force]` (`live` null when the object does not exist yet; the
//! config's `apiVersion` and `kind` choose the list rules): an apply that succeeds gives an
//! object, and applying the same configuration again as the same manager succeeds and
//! changes nothing; recording an update of the result by another manager keeps it an object.

#![no_main]

use libfuzzer_sys::fuzz_target;
use patchpilot_sandbox::patch::{ApplyRequest, apply, builtin, record_update};
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Some([live, config, manager, force]) = patchpilot_fuzz::json_tuple(data) else {
        return;
    };
    let live = (!live.is_null()).then_some(live);
    let manager = manager.as_str().unwrap_or("fuzz");
    let api_version = config["apiVersion"].as_str().unwrap_or("v1");
    let group = api_version.rsplit_once('/').map_or("", |(group, _)| group);
    let types = builtin(group, config["kind"].as_str().unwrap_or_default());
    let request = ApplyRequest {
        config: &config,
        manager,
        force: force.as_bool().unwrap_or(false),
        subresource: None,
        time: "2026-01-01T00:00:00Z",
        api_version,
    };
    let Ok(applied) = apply(live.as_ref(), &request, types.as_ref()) else {
        return;
    };
    assert!(applied.is_object(), "{applied}");
    let later = ApplyRequest {
        time: "2026-01-02T00:00:00Z",
        ..request
    };
    let again = apply(Some(&applied), &later, types.as_ref())
        .unwrap_or_else(|e| panic!("applying again to {applied}: {e}"));
    assert_eq!(again, applied, "applying again changes nothing");

    let mut updated: Value = applied.clone();
    record_update(
        Some(&applied),
        &mut updated,
        "other",
        None,
        "2026-01-03T00:00:00Z",
        api_version,
        types.as_ref(),
    );
    assert!(updated.is_object());
});
