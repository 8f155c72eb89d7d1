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
    let Some(window) = patchpilot_fuzz::converted(spec.to_engine(), spec.to_engine_reporting_all())
    else {
        return;
    };
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
