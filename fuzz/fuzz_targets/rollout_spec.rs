//! A PatchRollout as JSON text (metadata and spec): one that reads converts to the engine's
//! rollout or names its mistake, the same after the operator writes it back; its image
//! patches are the ones its spec lists.

#![no_main]

use libfuzzer_sys::fuzz_target;
use patchpilot_api::{PatchRollout, convert};

fuzz_target!(|data: &[u8]| {
    let Ok(rollout) = serde_json::from_slice::<PatchRollout>(data) else {
        return;
    };
    let engine = rollout.to_engine();
    let again = patchpilot_fuzz::reread(&rollout);
    let engine_again = again.to_engine();
    match (&engine, &engine_again) {
        (Ok(a), Ok(b)) => {
            // Timestamps are written to the second, as Kubernetes does.
            assert_eq!(a.created.as_second(), b.created.as_second());
            assert_eq!(a.patch, b.patch);
            assert_eq!(
                (&a.name, &a.uid, a.hand_made, a.generation),
                (&b.name, &b.uid, b.hand_made, b.generation)
            );
        }
        (Err(a), Err(b)) => assert_eq!(a, b),
        _ => panic!("{engine:?} then {engine_again:?} for {rollout:?}"),
    }
    let images = convert::image_patches(&rollout.spec.patch);
    assert_eq!(
        images.len(),
        rollout.spec.patch.images.as_ref().map_or(0, Vec::len)
    );
});
