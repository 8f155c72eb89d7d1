//! Cron expressions as text: one that parses prints as itself and parses again to the same
//! schedule; its times of day are in range and increasing; and whether it fires at a minute
//! is whether it fires on that day at that time of day.

#![no_main]

use jiff::civil::{Date, DateTime};
use libfuzzer_sys::fuzz_target;
use patchpilot_engine::window::Cron;

fuzz_target!(|input: (&str, u16, u16)| {
    let (text, day, minute) = input;
    let Ok(cron) = text.parse::<Cron>() else {
        return;
    };
    let printed = cron.to_string();
    let again: Cron = printed
        .parse()
        .unwrap_or_else(|e| panic!("{text:?} printed as {printed:?}, which does not parse: {e}"));
    assert_eq!(again, cron, "{text:?} printed as {printed:?}");

    let times: Vec<(i8, i8)> = cron.times_of_day().collect();
    assert!(
        times.windows(2).all(|pair| pair[0] < pair[1]),
        "{times:?} increase"
    );
    assert!(
        times
            .iter()
            .all(|&(h, m)| (0..24).contains(&h) && (0..60).contains(&m))
    );

    // A day within eight years of 2024-01-01, and a minute of it.
    let date = Date::constant(2024, 1, 1)
        .checked_add(jiff::Span::new().days(i64::from(day % 2922)))
        .expect("a date");
    let (hour, minute) = ((minute % 1440 / 60) as i8, (minute % 60) as i8);
    let at = DateTime::from_parts(date, jiff::civil::time(hour, minute, 0, 0));
    assert_eq!(
        cron.matches(at),
        cron.matches_date(date) && times.contains(&(hour, minute)),
        "{text:?} at {at}"
    );
});
