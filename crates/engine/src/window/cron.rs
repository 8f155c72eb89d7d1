//! Five-field cron expressions, read the way Kubernetes CronJob reads them.
//!
//! The fields are minute (0-59), hour (0-23), day of month (1-31), month (1-12 or `JAN`-`DEC`)
//! and day of week (0-7 or `SUN`-`SAT`, where both 0 and 7 are Sunday). Each field is a
//! comma-separated list of items; an item is `*` (or its synonym `?`), a value `a`, a range
//! `a-b`, or any of these followed by a step `/n`. `a/n` means from `a` to the field's maximum
//! every `n`. Names are case-insensitive.
//!
//! Days follow the rule of Kubernetes CronJob: when both the day-of-month and the day-of-week
//! fields are restricted, a day matches if either field matches it; otherwise it must match
//! both. A field is unrestricted when one of its items is `*` or `?` without a step, or with a
//! step of 1; so `*/2` is restricted, as it is for a CronJob.
//!
//! The predefined schedules of Kubernetes CronJob (and of Vixie cron) stand for five fields, in
//! the window's time zone: `@yearly` and `@annually` (`0 0 1 1 *`), `@monthly` (`0 0 1 * *`),
//! `@weekly` (`0 0 * * 0`), `@daily` and `@midnight` (`0 0 * * *`), `@hourly` (`0 * * * *`).
//! They are written in lower case, alone. `@every <duration>` and `@reboot` are not schedules
//! of wall-clock minutes and are refused, as is a `TZ=` prefix (the window's `timeZone` says
//! the zone).

use std::{fmt, str::FromStr};

use jiff::civil::Date;

/// A parsed five-field cron expression, matched against local wall-clock minutes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Cron {
    /// The five fields as written, joined by single spaces, or the predefined schedule.
    text: String,
    /// Bit `m` set when minute `m` matches.
    minutes: u64,
    /// Bit `h` set when hour `h` matches.
    hours: u64,
    /// Bit `d` set when day of month `d` matches.
    days_of_month: u64,
    /// Bit `m` set when month `m` matches.
    months: u64,
    /// Bit `d` set when day of week `d` matches, Sunday being 0.
    days_of_week: u64,
    /// Whether the day-of-month field matches every day without restriction.
    any_day_of_month: bool,
    /// Whether the day-of-week field matches every day without restriction.
    any_day_of_week: bool,
}

/// Why a string is not a cron expression. Displays as a sentence naming the faulty part.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct CronError {
    message: String,
}

impl Cron {
    /// Whether `date` is a day on which the expression fires (month and day rules).
    pub fn matches_date(&self, date: Date) -> bool {
        if !has_bit(self.months, date.month()) {
            return false;
        }
        let day_of_month = has_bit(self.days_of_month, date.day());
        let day_of_week = has_bit(self.days_of_week, date.weekday().to_sunday_zero_offset());
        if self.any_day_of_month || self.any_day_of_week {
            day_of_month && day_of_week
        } else {
            day_of_month || day_of_week
        }
    }

    /// The times of day `(hour, minute)` at which the expression fires on a matching day, in
    /// increasing order.
    pub fn times_of_day(&self) -> impl Iterator<Item = (i8, i8)> + '_ {
        bits(self.hours).flat_map(move |hour| bits(self.minutes).map(move |minute| (hour, minute)))
    }

    /// Whether the expression fires at `datetime`, ignoring seconds.
    pub fn matches(&self, datetime: jiff::civil::DateTime) -> bool {
        self.matches_date(datetime.date())
            && has_bit(self.hours, datetime.hour())
            && has_bit(self.minutes, datetime.minute())
    }
}

fn has_bit(set: u64, value: i8) -> bool {
    u32::try_from(value).is_ok_and(|value| value < 64 && set & (1 << value) != 0)
}

/// The values whose bits are set, in increasing order.
fn bits(set: u64) -> impl Iterator<Item = i8> {
    let mut rest = set;
    std::iter::from_fn(move || {
        let value = rest.trailing_zeros();
        rest &= rest.wrapping_sub(1);
        // Below 64, so it always fits.
        (value < 64).then_some(value as i8)
    })
}

/// One field's name, bounds and names.
struct Field {
    name: &'static str,
    min: u32,
    max: u32,
    /// The end of `*` and of `a/n`: below `max` for the day of week, so Sunday counts once.
    implied_max: u32,
    /// Names for the values from `min`, in order.
    names: &'static [&'static str],
}

const MINUTE: Field = Field {
    name: "minute",
    min: 0,
    max: 59,
    implied_max: 59,
    names: &[],
};
const HOUR: Field = Field {
    name: "hour",
    min: 0,
    max: 23,
    implied_max: 23,
    names: &[],
};
const DAY_OF_MONTH: Field = Field {
    name: "day-of-month",
    min: 1,
    max: 31,
    implied_max: 31,
    names: &[],
};
const MONTH: Field = Field {
    name: "month",
    min: 1,
    max: 12,
    implied_max: 12,
    names: &[
        "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
    ],
};
const DAY_OF_WEEK: Field = Field {
    name: "day-of-week",
    min: 0,
    max: 7,
    implied_max: 6,
    names: &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"],
};

/// A parsed field: its bits and whether it is unrestricted.
struct Parsed {
    bits: u64,
    any: bool,
}

impl Field {
    fn error(&self, text: &str, problem: impl fmt::Display) -> CronError {
        CronError {
            message: format!("{} field {text:?}: {problem}", self.name),
        }
    }

    fn parse(&self, text: &str) -> Result<Parsed, CronError> {
        let mut parsed = Parsed {
            bits: 0,
            any: false,
        };
        for item in text.split(',') {
            if item.is_empty() {
                return Err(self.error(text, "empty item in the list"));
            }
            self.parse_item(text, item, &mut parsed)?;
        }
        Ok(parsed)
    }

    /// Adds one list item (`*`, `a`, `a-b`, each optionally with `/n`) to `parsed`.
    fn parse_item(&self, text: &str, item: &str, parsed: &mut Parsed) -> Result<(), CronError> {
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => (range, Some(self.parse_step(text, step)?)),
            None => (item, None),
        };
        let (start, end, any) = if range == "*" || range == "?" {
            (self.min, self.implied_max, true)
        } else if let Some((low, high)) = range.split_once('-') {
            let (start, end) = (self.parse_value(text, low)?, self.parse_value(text, high)?);
            if start > end {
                return Err(self.error(
                    text,
                    format_args!("range {low}-{high} is reversed (its start is after its end)"),
                ));
            }
            (start, end, false)
        } else {
            let value = self.parse_value(text, range)?;
            let end = if step.is_some() {
                self.implied_max.max(value)
            } else {
                value
            };
            (value, end, false)
        };
        let step = step.unwrap_or(1);
        parsed.any |= any && step == 1;
        let mut value = Some(start);
        while let Some(current) = value.filter(|&value| value <= end) {
            // Day of week 7 is Sunday, like 0.
            let bit = if current == 7 && self.max == 7 {
                0
            } else {
                current
            };
            parsed.bits |= 1 << bit;
            value = current.checked_add(step);
        }
        Ok(())
    }

    fn parse_step(&self, text: &str, step: &str) -> Result<u32, CronError> {
        if step.is_empty() {
            return Err(self.error(text, "missing step after \"/\""));
        }
        if !step.bytes().all(|b| b.is_ascii_digit()) {
            return Err(self.error(text, format_args!("step {step:?} is not a number")));
        }
        // A step longer than the field's span is allowed, as for a CronJob: `*/90` in the
        // minute field fires at minute 0 only.
        match step.parse::<u32>() {
            Ok(0) => Err(self.error(text, "step must be at least 1")),
            Ok(step) => Ok(step),
            Err(_) => Err(self.error(text, format_args!("step {step} is too large"))),
        }
    }

    /// A number or a name within the field's bounds.
    fn parse_value(&self, text: &str, value: &str) -> Result<u32, CronError> {
        if value.is_empty() {
            return Err(self.error(text, "missing value in a range"));
        }
        if value.bytes().all(|b| b.is_ascii_digit()) {
            return match value.parse::<u32>() {
                Ok(number) if (self.min..=self.max).contains(&number) => Ok(number),
                _ => Err(self.error(
                    text,
                    format_args!("value {value} out of range {}-{}", self.min, self.max),
                )),
            };
        }
        if let Some(index) = self
            .names
            .iter()
            .position(|name| name.eq_ignore_ascii_case(value))
        {
            // At most 12 names, so the index always fits.
            return Ok(self.min + index as u32);
        }
        let expected = match (self.names.first(), self.names.last()) {
            (Some(first), Some(last)) => {
                format!(
                    "a number {}-{} or a name {first}-{last}",
                    self.min, self.max
                )
            }
            _ => format!("a number {}-{}", self.min, self.max),
        };
        Err(self.error(
            text,
            format_args!("{value:?} is not a valid value (expected {expected})"),
        ))
    }
}

/// The predefined schedules and the five fields each stands for.
pub const MACROS: [(&str, &str); 7] = [
    ("@yearly", "0 0 1 1 *"),
    ("@annually", "0 0 1 1 *"),
    ("@monthly", "0 0 1 * *"),
    ("@weekly", "0 0 * * 0"),
    ("@daily", "0 0 * * *"),
    ("@midnight", "0 0 * * *"),
    ("@hourly", "0 * * * *"),
];

impl FromStr for Cron {
    type Err = CronError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let fields: Vec<&str> = input.split_whitespace().collect();
        if let Some(first) = fields.first() {
            if first.starts_with('@') {
                return match MACROS.iter().find(|(name, _)| name == first) {
                    Some((name, five)) if fields.len() == 1 => {
                        let mut cron: Cron = five.parse()?;
                        cron.text = (*name).to_owned();
                        Ok(cron)
                    }
                    _ => Err(CronError {
                        message: format!(
                            "{:?} is not a schedule a window can use: write five fields (minute \
                             hour day-of-month month day-of-week), like \"0 22 * * Tue\", or one \
                             of {}",
                            fields.join(" "),
                            macro_names()
                        ),
                    }),
                };
            }
            if first.starts_with("TZ=") || first.starts_with("CRON_TZ=") {
                return Err(CronError {
                    message: "a time zone in the cron expression is not supported: the \
                              window's timeZone applies"
                        .to_owned(),
                });
            }
        }
        let [minute, hour, day_of_month, month, day_of_week] = fields[..] else {
            return Err(CronError {
                message: format!(
                    "expected 5 fields (minute hour day-of-month month day-of-week), found {}",
                    fields.len()
                ),
            });
        };
        let minutes = MINUTE.parse(minute)?.bits;
        let hours = HOUR.parse(hour)?.bits;
        let day_of_month = DAY_OF_MONTH.parse(day_of_month)?;
        let months = MONTH.parse(month)?.bits;
        let day_of_week = DAY_OF_WEEK.parse(day_of_week)?;
        Ok(Cron {
            text: fields.join(" "),
            minutes,
            hours,
            days_of_month: day_of_month.bits,
            months,
            days_of_week: day_of_week.bits,
            any_day_of_month: day_of_month.any,
            any_day_of_week: day_of_week.any,
        })
    }
}

/// The predefined schedules' names, for messages: `@yearly, …, @midnight or @hourly`.
fn macro_names() -> String {
    let names: Vec<&str> = MACROS.iter().map(|(name, _)| *name).collect();
    match names.split_last() {
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

impl fmt::Display for Cron {
    /// The five fields as written, separated by single spaces, or the predefined schedule.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use jiff::civil::{date, datetime};

    use super::*;

    fn cron(text: &str) -> Cron {
        text.parse()
            .unwrap_or_else(|error| panic!("{text:?}: {error}"))
    }

    fn error(text: &str) -> String {
        match text.parse::<Cron>() {
            Ok(parsed) => panic!("{text:?} parsed as {parsed:?}"),
            Err(error) => error.to_string(),
        }
    }

    /// The values of a bit set, for comparisons.
    fn values(set: u64) -> Vec<i8> {
        bits(set).collect()
    }

    #[test]
    fn stars_lists_ranges_and_steps() {
        let parsed = cron("*/15 1,3-5,22 1-31/10 */4 *");
        assert_eq!(values(parsed.minutes), [0, 15, 30, 45]);
        assert_eq!(values(parsed.hours), [1, 3, 4, 5, 22]);
        assert_eq!(values(parsed.days_of_month), [1, 11, 21, 31]);
        assert_eq!(values(parsed.months), [1, 5, 9]);
        assert_eq!(values(parsed.days_of_week), [0, 1, 2, 3, 4, 5, 6]);
        // `a/n` runs from a to the field's maximum.
        assert_eq!(values(cron("5/20 * * * *").minutes), [5, 25, 45]);
        assert_eq!(values(cron("0 20/2 * * *").hours), [20, 22]);
        // `a-b/n` stays within the range.
        assert_eq!(values(cron("10-40/15 * * * *").minutes), [10, 25, 40]);
        // A step longer than the field fires at the start only.
        assert_eq!(values(cron("*/90 * * * *").minutes), [0]);
        // `?` is `*`.
        assert_eq!(
            cron("0 0 ? * *").days_of_month,
            cron("0 0 * * *").days_of_month
        );
        assert_eq!(
            cron("0 0 1 1 *").times_of_day().collect::<Vec<_>>(),
            [(0, 0)]
        );
        assert_eq!(
            cron("0,30 9-10 * * *").times_of_day().collect::<Vec<_>>(),
            [(9, 0), (9, 30), (10, 0), (10, 30)]
        );
    }

    #[test]
    fn names_in_any_case_and_sunday_as_0_or_7() {
        let parsed = cron("0 0 * jan,Mar-MAY mon-fri");
        assert_eq!(values(parsed.months), [1, 3, 4, 5]);
        assert_eq!(values(parsed.days_of_week), [1, 2, 3, 4, 5]);
        assert_eq!(values(cron("0 0 * * 7").days_of_week), [0]);
        assert_eq!(values(cron("0 0 * * 0").days_of_week), [0]);
        assert_eq!(values(cron("0 0 * * 5-7").days_of_week), [0, 5, 6]);
        assert_eq!(values(cron("0 0 * * SUN,sat").days_of_week), [0, 6]);
        // `*/n` and `a/n` end on Saturday: Sunday is not counted twice.
        assert_eq!(values(cron("0 0 * * 1/2").days_of_week), [1, 3, 5]);
        assert_eq!(values(cron("0 0 * * */3").days_of_week), [0, 3, 6]);
        assert_eq!(values(cron("0 0 * DEC/1 *").months), [12]);
    }

    #[test]
    fn days_match_either_field_only_when_both_are_restricted() {
        // Friday the 13th? No: the 13th, or any Friday.
        let friday_13 = cron("0 0 13 * FRI");
        assert!(friday_13.matches_date(date(2026, 2, 13))); // a Friday the 13th
        assert!(friday_13.matches_date(date(2026, 1, 13))); // a Tuesday
        assert!(friday_13.matches_date(date(2026, 1, 16))); // a Friday
        assert!(!friday_13.matches_date(date(2026, 1, 14))); // a Wednesday
        // One unrestricted field: both must match, and `*` matches all.
        let thirteenth = cron("0 0 13 * *");
        assert!(thirteenth.matches_date(date(2026, 1, 13)));
        assert!(!thirteenth.matches_date(date(2026, 1, 16)));
        let fridays = cron("0 0 * * 5");
        assert!(fridays.matches_date(date(2026, 1, 16)));
        assert!(!fridays.matches_date(date(2026, 1, 13)));
        // `*/2` is restricted, as for a CronJob: odd days or Mondays.
        let odd_or_monday = cron("0 0 */2 * MON");
        assert!(odd_or_monday.matches_date(date(2026, 1, 1))); // a Thursday
        assert!(odd_or_monday.matches_date(date(2026, 1, 12))); // a Monday
        assert!(!odd_or_monday.matches_date(date(2026, 1, 14))); // a Wednesday
        // `*/1` and lists holding `*` are not.
        let mondays = cron("0 0 */1 * MON");
        assert!(!mondays.matches_date(date(2026, 1, 1)));
        assert!(mondays.matches_date(date(2026, 1, 12)));
        assert!(!cron("0 0 *,5 * MON").matches_date(date(2026, 1, 6))); // a Tuesday
        // The month always has to match.
        assert!(!cron("0 0 13 FEB FRI").matches_date(date(2026, 1, 16)));
        assert!(cron("0 0 13 FEB FRI").matches_date(date(2026, 2, 6)));
    }

    #[test]
    fn matches_wall_clock_minutes() {
        let tuesday_evenings = cron("0 22 * * Tue");
        assert!(tuesday_evenings.matches(datetime(2026, 1, 6, 22, 0, 0, 0)));
        assert!(tuesday_evenings.matches(datetime(2026, 1, 6, 22, 0, 59, 0)));
        assert!(!tuesday_evenings.matches(datetime(2026, 1, 6, 22, 1, 0, 0)));
        assert!(!tuesday_evenings.matches(datetime(2026, 1, 7, 22, 0, 0, 0)));
        let leap_day = cron("0 0 29 2 *");
        assert!(leap_day.matches_date(date(2028, 2, 29)));
        assert!(!leap_day.matches_date(date(2027, 3, 1)));
    }

    #[test]
    fn predefined_schedules_stand_for_five_fields() {
        for (name, five) in MACROS {
            let parsed = cron(name);
            let spelled = cron(five);
            assert_eq!(
                (parsed.minutes, parsed.hours, parsed.days_of_month),
                (spelled.minutes, spelled.hours, spelled.days_of_month),
                "{name}"
            );
            assert_eq!(
                (parsed.months, parsed.days_of_week),
                (spelled.months, spelled.days_of_week),
                "{name}"
            );
            assert_eq!(
                (parsed.any_day_of_month, parsed.any_day_of_week),
                (spelled.any_day_of_month, spelled.any_day_of_week),
                "{name}"
            );
            assert_eq!(parsed.to_string(), name);
        }
        // The usual meanings: midnight on the 1st of January, the 1st of each month, each
        // Sunday, each day; the start of each hour.
        assert!(cron("@yearly").matches(datetime(2027, 1, 1, 0, 0, 0, 0)));
        assert!(!cron("@annually").matches(datetime(2027, 2, 1, 0, 0, 0, 0)));
        assert!(cron("@monthly").matches(datetime(2027, 2, 1, 0, 0, 0, 0)));
        assert!(!cron("@monthly").matches(datetime(2027, 2, 2, 0, 0, 0, 0)));
        assert!(cron("@weekly").matches(datetime(2026, 11, 29, 0, 0, 0, 0))); // a Sunday
        assert!(!cron("@weekly").matches(datetime(2026, 11, 30, 0, 0, 0, 0)));
        assert!(cron("@daily").matches(datetime(2026, 11, 30, 0, 0, 0, 0)));
        assert!(cron(" @midnight ").matches(datetime(2026, 11, 30, 0, 0, 0, 0)));
        assert!(!cron("@daily").matches(datetime(2026, 11, 30, 1, 0, 0, 0)));
        assert_eq!(cron("@hourly").times_of_day().count(), 24);
        assert!(cron("@hourly").matches(datetime(2026, 11, 30, 13, 0, 0, 0)));
    }

    #[test]
    fn displays_the_fields_as_written() {
        assert_eq!(cron("  0 22\t* *   Tue ").to_string(), "0 22 * * Tue");
    }

    #[test]
    fn bad_expressions_say_what_is_wrong() {
        let cases = [
            (
                "61 * * * *",
                "minute field \"61\": value 61 out of range 0-59",
            ),
            (
                "0 24 * * *",
                "hour field \"24\": value 24 out of range 0-23",
            ),
            (
                "0 0 0 * *",
                "day-of-month field \"0\": value 0 out of range 1-31",
            ),
            (
                "0 0 32 * *",
                "day-of-month field \"32\": value 32 out of range 1-31",
            ),
            (
                "0 0 * 13 *",
                "month field \"13\": value 13 out of range 1-12",
            ),
            (
                "0 0 * * 8",
                "day-of-week field \"8\": value 8 out of range 0-7",
            ),
            ("0 5-2 * * *", "hour field \"5-2\": range 5-2 is reversed"),
            (
                "0 0 * * FRI-MON",
                "day-of-week field \"FRI-MON\": range FRI-MON is reversed",
            ),
            (
                "*/0 * * * *",
                "minute field \"*/0\": step must be at least 1",
            ),
            ("1-5/ * * * *", "minute field \"1-5/\": missing step"),
            (
                "*/x * * * *",
                "minute field \"*/x\": step \"x\" is not a number",
            ),
            (
                "0 0 * FOO *",
                "month field \"FOO\": \"FOO\" is not a valid value",
            ),
            (
                "0 0 * * MONDAY",
                "day-of-week field \"MONDAY\": \"MONDAY\" is not a valid",
            ),
            (
                "0 0 * JANUARY *",
                "expected a number 1-12 or a name JAN-DEC",
            ),
            (
                "0 0 MON * *",
                "day-of-month field \"MON\": \"MON\" is not a valid value",
            ),
            ("1,,2 * * * *", "minute field \"1,,2\": empty item"),
            ("1, * * * *", "minute field \"1,\": empty item"),
            ("-5 * * * *", "minute field \"-5\": missing value"),
            (
                "1-2-3 * * * *",
                "minute field \"1-2-3\": \"2-3\" is not a valid value",
            ),
            (
                "*-5 * * * *",
                "minute field \"*-5\": \"*\" is not a valid value",
            ),
            ("1/2/3 * * * *", "step \"2/3\" is not a number"),
            ("99999999999 * * * *", "value 99999999999 out of range 0-59"),
            ("*/99999999999 * * * *", "step 99999999999 is too large"),
            (
                "* * * *",
                "expected 5 fields (minute hour day-of-month month day-of-week), found 4",
            ),
            ("0 * * * * *", "expected 5 fields"),
            ("", "found 0"),
            (
                "@reboot",
                "\"@reboot\" is not a schedule a window can use: write five fields",
            ),
            (
                "@every 1h",
                "\"@every 1h\" is not a schedule a window can use",
            ),
            (
                "@Daily",
                "one of @yearly, @annually, @monthly, @weekly, @daily, @midnight or @hourly",
            ),
            ("@daily 0", "\"@daily 0\" is not a schedule"),
            (
                "TZ=UTC 0 0 * * *",
                "a time zone in the cron expression is not supported",
            ),
        ];
        for (text, expected) in cases {
            let message = error(text);
            assert!(message.contains(expected), "{text:?}: {message}");
        }
    }

    #[test]
    fn the_first_faulty_field_is_named() {
        assert!(error("60 24 * * *").starts_with("minute field"));
        assert!(error("0 24 * 13 *").starts_with("hour field"));
    }
}
