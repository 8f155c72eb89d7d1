//! A MaintenanceWindow's spec as JSON text, as an API server would hand it over: it reads or
//! not, and one that reads converts to the engine's window or reports its mistakes (every one
//! of them, the first being the one `to_engine` gives). A window that converts is evaluated
//! at a fixed instant and at the start of its next interval.

#![no_main]

use libfuzzer_sys::fuzz_target;
use patchpilot_api::MaintenanceWindowSpec;

fuzz_target!(|data: &[u8]| {
    let Ok(spec) = serde_json::from_slice::<MaintenanceWindowSpec>(data) else {
        return;
    };
    let first = spec.to_engine();
    let window = match spec.to_engine_reporting_all() {
        Ok(window) => window,
        Err(all) => {
            assert!(!all.is_empty(), "an error without a mistake");
            assert_eq!(
                first.err().as_ref(),
                all.first(),
                "to_engine reports the first"
            );
            return;
        }
    };
    assert_eq!(first.as_ref(), Ok(&window));
    // What the operator writes back reads again as the same window.
    let again = patchpilot_fuzz::reread(&spec);
    assert_eq!(again.to_engine().as_ref(), Ok(&window), "{spec:?} reread");

    let at: jiff::Timestamp = "2026-03-29T00:30:00Z".parse().expect("an instant");
    let evaluation = window.evaluate(at, 2);
    assert_eq!(evaluation.open, window.is_open(at));
    if let Some(next) = evaluation.next.first() {
        assert!(next.start > at);
        let there = window.evaluate(next.start, 0);
        assert!(there.open, "open at the start of {next:?}");
        assert_eq!(there.current.map(|c| c.start), Some(next.start));
    }
});
