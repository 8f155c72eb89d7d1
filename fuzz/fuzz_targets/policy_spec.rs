//! A PatchPolicy's spec as JSON text: one that reads converts to the engine's policy or
//! reports every mistake (the first being the one `to_engine` gives); the spec the operator
//! would write back reads as the same policy; and the waves of a converted policy tile the
//! eligible targets, in order, whatever their number.

#![no_main]

use libfuzzer_sys::fuzz_target;
use patchpilot_api::PatchPolicySpec;
use patchpilot_engine::plan::waves;

fuzz_target!(|data: &[u8]| {
    let Ok(spec) = serde_json::from_slice::<PatchPolicySpec>(data) else {
        return;
    };
    let Some(policy) =
        patchpilot_fuzz::converted(spec.to_engine("fuzz"), spec.to_engine_reporting_all("fuzz"))
    else {
        return;
    };
    let again = patchpilot_fuzz::reread(&spec);
    assert_eq!(
        again.to_engine("fuzz").as_ref(),
        Ok(&policy),
        "{spec:?} reread"
    );
    let _ = spec.notifiers();

    for eligible in [0, 1, 2, 3, 7, 10, 100, 1000] {
        let waves = waves(&policy.strategy, eligible);
        let mut next = 0;
        for wave in &waves {
            assert_eq!(wave.start, next, "{waves:?} for {eligible}");
            assert!(wave.end > wave.start, "{waves:?} has an empty wave");
            next = wave.end;
        }
        assert_eq!(next, eligible, "{waves:?} cover {eligible}");
    }
});
