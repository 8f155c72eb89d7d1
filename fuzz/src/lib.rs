//! What the fuzz targets share: reading the fuzzer's bytes as JSON, and instants in a range
//! the operator meets.

#![forbid(unsafe_code)]

use jiff::Timestamp;
use serde_json::Value;

/// The bytes as a JSON document, if they are one.
pub fn json(data: &[u8]) -> Option<Value> {
    serde_json::from_slice(data).ok()
}

/// The bytes as a JSON array of exactly `N` documents, the form of the patch targets'
/// inputs (`[target, patch]`).
pub fn json_tuple<const N: usize>(data: &[u8]) -> Option<[Value; N]> {
    match json(data)? {
        Value::Array(items) => items.try_into().ok(),
        _ => None,
    }
}

/// The first instant of 1900 (UTC), the earliest the window targets evaluate at.
pub const EARLIEST: i64 = -2_208_988_800;
/// The first instant of 2300 (UTC), the latest the window targets evaluate at.
pub const LATEST: i64 = 10_413_792_000;

/// An instant between 1900 and 2300, from any number of seconds and nanoseconds.
pub fn instant(seconds: i64, nanos: u32) -> Timestamp {
    let span = (LATEST - EARLIEST) as u64;
    let second = EARLIEST + (seconds as u64 % span) as i64;
    let nanos = (nanos % 1_000_000_000) as i32;
    Timestamp::new(second, nanos).expect("between 1900 and 2300")
}

/// The serialized form of `value`, read back: what a client reading it would see.
pub fn reread<T: serde::Serialize + serde::de::DeserializeOwned>(value: &T) -> T {
    let text = serde_json::to_string(value).expect("serializes");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{text} does not read back: {e}"))
}

/// What a spec converts to, after checking that its two conversions agree: `first` (the
/// `to_engine` that stops at the first mistake) and `all` (the `to_engine_reporting_all` that
/// names every one). `None` when the spec has mistakes, the first of which `first` reported.
pub fn converted<T, E>(first: Result<T, E>, all: Result<T, Vec<E>>) -> Option<T>
where
    T: PartialEq + std::fmt::Debug,
    E: PartialEq + std::fmt::Debug,
{
    match all {
        Ok(converted) => {
            assert_eq!(first.as_ref(), Ok(&converted));
            Some(converted)
        }
        Err(all) => {
            assert!(!all.is_empty(), "an error without a mistake");
            assert_eq!(
                first.err().as_ref(),
                all.first(),
                "to_engine reports the first"
            );
            None
        }
    }
}
