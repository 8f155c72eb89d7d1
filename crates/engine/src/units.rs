//! Scalar values of the API — durations and counts-or-percents — as real types.
//!
//! They are parsed once, when an object is read, and carry their own schema so that the
//! API server rejects what they would reject.

use std::{borrow::Cow, fmt, str::FromStr};

use jiff::SignedDuration;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

/// The pattern the schema gives durations; [`Duration::from_str`] accepts exactly these strings.
pub const DURATION_PATTERN: &str = "^([0-9]{1,9}(ms|s|m|h|d))+$";

/// The pattern the schema gives percents in a count-or-percent field.
pub const PERCENT_PATTERN: &str = "^(100|[1-9]?[0-9])%$";

/// A non-negative span of elapsed time, written `90s`, `30m`, `1h30m`, `7d` or `500ms`.
///
/// Units are `d` (24 hours), `h`, `m`, `s` and `ms`; several may follow each other and add up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration {
    millis: u64,
}

/// Why a string is not a [`Duration`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid duration {input:?}: expected a number followed by d, h, m, s or ms, like 90s, 30m, 1h30m or 7d"
)]
pub struct DurationError {
    input: String,
}

impl Duration {
    /// No time at all.
    pub const ZERO: Duration = Duration { millis: 0 };

    /// A duration of whole seconds.
    pub const fn from_secs(secs: u64) -> Self {
        Duration {
            millis: secs * 1000,
        }
    }

    /// A duration of whole minutes.
    pub const fn from_mins(mins: u64) -> Self {
        Self::from_secs(mins * 60)
    }

    /// A duration of whole hours.
    pub const fn from_hours(hours: u64) -> Self {
        Self::from_mins(hours * 60)
    }

    /// A duration of milliseconds.
    pub const fn from_millis(millis: u64) -> Self {
        Duration { millis }
    }

    /// The length in milliseconds.
    pub const fn as_millis(self) -> u64 {
        self.millis
    }

    /// Whether this is no time at all.
    pub const fn is_zero(self) -> bool {
        self.millis == 0
    }

    /// The same length as a signed duration, for instant arithmetic.
    pub fn signed(self) -> SignedDuration {
        // At most 9 digits per unit and a bounded string length keep this far from overflow;
        // saturate anyway rather than trust it.
        SignedDuration::from_millis(i64::try_from(self.millis).unwrap_or(i64::MAX))
    }

    /// The same length as a standard library duration, for timers.
    pub fn std(self) -> std::time::Duration {
        std::time::Duration::from_millis(self.millis)
    }
}

impl FromStr for Duration {
    type Err = DurationError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let err = || DurationError {
            input: input.to_owned(),
        };
        let bytes = input.as_bytes();
        if bytes.is_empty() {
            return Err(err());
        }
        let mut millis: u64 = 0;
        let mut i = 0;
        while i < bytes.len() {
            let digits = bytes[i..].iter().take_while(|b| b.is_ascii_digit()).count();
            if digits == 0 || digits > 9 {
                return Err(err());
            }
            let number: u64 = input[i..i + digits].parse().map_err(|_| err())?;
            i += digits;
            let unit_ms: u64 = match &bytes[i..] {
                [b'm', b's', ..] => {
                    i += 2;
                    1
                }
                [b'd', ..] => {
                    i += 1;
                    86_400_000
                }
                [b'h', ..] => {
                    i += 1;
                    3_600_000
                }
                [b'm', ..] => {
                    i += 1;
                    60_000
                }
                [b's', ..] => {
                    i += 1;
                    1000
                }
                _ => return Err(err()),
            };
            millis = number
                .checked_mul(unit_ms)
                .and_then(|part| millis.checked_add(part))
                .ok_or_else(err)?;
        }
        Ok(Duration { millis })
    }
}

/// A day in milliseconds.
const DAY_MS: u64 = 86_400_000;
/// The largest number a duration's term may have: nine digits.
const MAX_NUMBER: u64 = 999_999_999;

impl fmt::Display for Duration {
    /// The canonical form: largest units first, zero parts left out (`0s` for nothing).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.millis == 0 {
            return f.write_str("0s");
        }
        let mut rest = self.millis;
        // A number has at most nine digits, so that what is printed reads back: the days of a
        // duration longer than 999,999,999 days (`999999999d1d` adds up to one) take several
        // terms.
        while rest / DAY_MS > MAX_NUMBER {
            write!(f, "{MAX_NUMBER}d")?;
            rest -= MAX_NUMBER * DAY_MS;
        }
        for (unit, ms) in [
            ("d", DAY_MS),
            ("h", 3_600_000),
            ("m", 60_000),
            ("s", 1000),
            ("ms", 1),
        ] {
            if rest >= ms {
                write!(f, "{}{unit}", rest / ms)?;
                rest %= ms;
            }
        }
        Ok(())
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = Cow::<str>::deserialize(deserializer)?;
        text.parse().map_err(de::Error::custom)
    }
}

impl JsonSchema for Duration {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": DURATION_PATTERN,
            "maxLength": 64,
        })
    }
}

/// A share of a whole: a percent from 0 to 100.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Percent(u8);

impl Percent {
    /// A percent, if it is at most 100.
    pub const fn new(value: u8) -> Option<Self> {
        if value <= 100 {
            Some(Percent(value))
        } else {
            None
        }
    }

    /// The percent as a number from 0 to 100.
    pub const fn get(self) -> u8 {
        self.0
    }

    /// `ceil(self × whole / 100)`.
    pub const fn of_ceil(self, whole: u32) -> u32 {
        let product = self.0 as u64 * whole as u64;
        product.div_ceil(100) as u32
    }

    /// `floor(self × whole / 100)`.
    pub const fn of_floor(self, whole: u32) -> u32 {
        (self.0 as u64 * whole as u64 / 100) as u32
    }
}

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}%", self.0)
    }
}

/// A count of targets, or a percent of them: `2` or `"10%"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IntOrPercent {
    /// A number of targets.
    Count(u32),
    /// A percent of the targets the field applies to.
    Percent(Percent),
}

/// Why a value is not an [`IntOrPercent`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid count or percent {input}: expected a whole number of 0 or more, or a percent from \"0%\" to \"100%\""
)]
pub struct IntOrPercentError {
    input: String,
}

impl IntOrPercent {
    /// The number of targets this means out of `whole`, rounded down.
    pub const fn floor_of(self, whole: u32) -> u32 {
        match self {
            IntOrPercent::Count(count) => count,
            IntOrPercent::Percent(percent) => percent.of_floor(whole),
        }
    }
}

impl FromStr for IntOrPercent {
    type Err = IntOrPercentError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let err = || IntOrPercentError {
            input: format!("{input:?}"),
        };
        let number = input.strip_suffix('%').ok_or_else(err)?;
        let leading_zero = number.len() > 1 && number.starts_with('0');
        if number.is_empty()
            || number.len() > 3
            || leading_zero
            || !number.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(err());
        }
        let value: u8 = number.parse().map_err(|_| err())?;
        Percent::new(value)
            .map(IntOrPercent::Percent)
            .ok_or_else(err)
    }
}

impl fmt::Display for IntOrPercent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IntOrPercent::Count(count) => write!(f, "{count}"),
            IntOrPercent::Percent(percent) => write!(f, "{percent}"),
        }
    }
}

impl Serialize for IntOrPercent {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            IntOrPercent::Count(count) => serializer.serialize_u32(*count),
            IntOrPercent::Percent(percent) => serializer.collect_str(percent),
        }
    }
}

impl<'de> Deserialize<'de> for IntOrPercent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl de::Visitor<'_> for Visitor {
            type Value = IntOrPercent;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a whole number of 0 or more, or a percent from \"0%\" to \"100%\"")
            }

            fn visit_u64<E: de::Error>(self, value: u64) -> Result<IntOrPercent, E> {
                u32::try_from(value).map(IntOrPercent::Count).map_err(|_| {
                    E::custom(IntOrPercentError {
                        input: value.to_string(),
                    })
                })
            }

            fn visit_i64<E: de::Error>(self, value: i64) -> Result<IntOrPercent, E> {
                u64::try_from(value)
                    .map_err(|_| {
                        E::custom(IntOrPercentError {
                            input: value.to_string(),
                        })
                    })
                    .and_then(|value| self.visit_u64(value))
            }

            fn visit_str<E: de::Error>(self, value: &str) -> Result<IntOrPercent, E> {
                value.parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

impl JsonSchema for IntOrPercent {
    fn schema_name() -> Cow<'static, str> {
        "IntOrPercent".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        // An int-or-string field as the API server knows it; `pattern` applies to strings
        // only and `minimum` to integers only.
        json_schema!({
            "x-kubernetes-int-or-string": true,
            "pattern": PERCENT_PATTERN,
            "minimum": 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_print_canonically() {
        let cases = [
            ("90s", 90_000, "1m30s"),
            ("30m", 1_800_000, "30m"),
            ("1h30m", 5_400_000, "1h30m"),
            ("7d", 604_800_000, "7d"),
            ("500ms", 500, "500ms"),
            ("0s", 0, "0s"),
            ("1d2h3m4s5ms", 93_784_005, "1d2h3m4s5ms"),
            ("30m1h", 5_400_000, "1h30m"),
        ];
        for (input, millis, canonical) in cases {
            let parsed: Duration = input.parse().unwrap();
            assert_eq!(parsed.as_millis(), millis, "{input}");
            assert_eq!(parsed.to_string(), canonical, "{input}");
        }
    }

    /// Found by the `units` fuzz target: the sum of terms of at most nine digits may need ten
    /// digits of days, which the parser refuses.
    #[test]
    fn durations_longer_than_999999999_days_print_as_they_read_back() {
        let found =
            "1d5d5d6d51d0631d5d5d6d999999999d5d6d51d0315d5d5d6d51d5d6d51d66635s1212635s12122121d";
        for input in [
            found,
            "999999999d1d",
            "999999999d999999999d23h",
            &"999999999d".repeat(6),
        ] {
            let parsed: Duration = input.parse().unwrap();
            let printed = parsed.to_string();
            assert_eq!(
                printed.parse::<Duration>(),
                Ok(parsed),
                "{input} printed {printed}"
            );
        }
        let longest: Duration = "999999999d23h59m59s999ms".parse().unwrap();
        assert_eq!(longest.to_string(), "999999999d23h59m59s999ms");
        let one_more = Duration::from_millis(longest.as_millis() + 1);
        assert_eq!(one_more.to_string(), "999999999d1d");
    }

    #[test]
    fn bad_durations_are_refused_with_the_input_named() {
        for input in [
            "",
            "30",
            "m",
            "1x",
            "1h 30m",
            "-5m",
            "1.5h",
            "1234567890s",
            "1hm",
        ] {
            let err = input.parse::<Duration>().unwrap_err();
            assert!(err.to_string().contains(&format!("{input:?}")), "{err}");
        }
    }

    #[test]
    fn counts_and_percents() {
        let parse = |json: &str| serde_json::from_str::<IntOrPercent>(json);
        assert_eq!(parse("2").unwrap(), IntOrPercent::Count(2));
        assert_eq!(
            parse("\"10%\"").unwrap(),
            IntOrPercent::Percent(Percent(10))
        );
        assert_eq!(
            parse("\"100%\"").unwrap(),
            IntOrPercent::Percent(Percent(100))
        );
        for bad in [
            "\"101%\"",
            "\"05%\"",
            "-1",
            "\"10\"",
            "\"%\"",
            "\"1.5%\"",
            "\"0100%\"",
            "1.5",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert!(
            parse("\"150%\"")
                .unwrap_err()
                .to_string()
                .contains("\"150%\"")
        );
        assert_eq!(IntOrPercent::Percent(Percent(10)).floor_of(25), 2);
        assert_eq!(IntOrPercent::Count(3).floor_of(1), 3);
        assert_eq!(Percent(5).of_ceil(21), 2);
        assert_eq!(
            serde_json::to_string(&IntOrPercent::Percent(Percent(25))).unwrap(),
            "\"25%\""
        );
    }
}
