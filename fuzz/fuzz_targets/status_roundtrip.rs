//! A PatchRollout's status, as JSON text: what the engine reads from it, written back as the
//! operator writes it, reads again as the same engine state (the round trip the controller
//! makes on every reconcile must lose nothing the engine remembers). The written status, as
//! JSON, reads back and prints the same.

#![no_main]

use libfuzzer_sys::fuzz_target;
use patchpilot_api::{PatchRolloutStatus, convert::rollout_status_to_api};
use patchpilot_engine::machine;

fuzz_target!(|data: &[u8]| {
    let Some((&generation, data)) = data.split_first() else {
        return;
    };
    let Ok(status) = serde_json::from_slice::<PatchRolloutStatus>(data) else {
        return;
    };
    let engine = machine::Status::from(&status);
    let written = rollout_status_to_api(&engine, i64::from(generation));
    let back = machine::Status::from(&written);
    assert_eq!(back, engine, "{status:?} written as {written:?}");
    assert_eq!(written.observed_generation, Some(i64::from(generation)));

    let text = serde_json::to_string(&written).expect("serializes");
    let reread: PatchRolloutStatus =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{text} does not read back: {e}"));
    let text_again = serde_json::to_string(&reread).expect("serializes");
    assert_eq!(text_again, text);
});
