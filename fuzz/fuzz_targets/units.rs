//! Durations (`90s`, `1h30m`, `7d`) and int-or-percent values (`2`, `"10%"`): a value that
//! parses prints in its canonical form, which parses to the same value; JSON written by the
//! operator reads back the same; a percent of a whole is at most the whole.

#![no_main]

use libfuzzer_sys::fuzz_target;
use patchpilot_engine::units::{Duration, IntOrPercent};
use patchpilot_fuzz::reread;

fuzz_target!(|input: (&str, u32)| {
    let (text, whole) = input;
    if let Ok(duration) = text.parse::<Duration>() {
        let printed = duration.to_string();
        let again: Duration = printed.parse().unwrap_or_else(|e| {
            panic!("{text:?} printed as {printed:?}, which does not parse: {e}")
        });
        assert_eq!(again, duration, "{text:?} printed as {printed:?}");
        assert_eq!(reread(&duration), duration);
        assert_eq!(duration.std().as_millis(), u128::from(duration.as_millis()));
        assert!(duration.signed().as_millis() >= 0);
    }

    // Int-or-percent values as a YAML or JSON document would give them: a string or a number.
    let from_string = serde_json::from_value::<IntOrPercent>(serde_json::Value::from(text));
    let from_number = text
        .parse::<u64>()
        .ok()
        .map(|n| serde_json::from_value::<IntOrPercent>(serde_json::Value::from(n)));
    for value in [Some(from_string), from_number].into_iter().flatten() {
        let Ok(value) = value else { continue };
        assert_eq!(reread(&value), value, "{text:?}");
        if let IntOrPercent::Percent(percent) = value {
            assert!(percent.get() <= 100);
            assert_eq!(value.to_string().parse::<IntOrPercent>(), Ok(value));
            assert!(value.floor_of(whole) <= whole);
            assert!(percent.of_ceil(whole) <= whole);
            assert!(percent.of_floor(whole) <= percent.of_ceil(whole));
        }
    }
});
