//! Words, ages, colours and tables, as kubectl prints them.

use std::io::IsTerminal;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

use crate::{api::PatchRolloutStatus, engine::rollout::Phase};

/// The condition of this type.
pub fn condition<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Why a rollout that is not done waits: the reason of its `Reconciling` condition while
/// True (`AwaitingPromotion`, `Suspended`, `Progressing`, …).
pub fn waiting(status: &PatchRolloutStatus) -> Option<&str> {
    condition(&status.conditions, "Reconciling")
        .filter(|c| c.status == "True")
        .map(|c| c.reason.as_str())
}

/// A phase, with the reason it waits when that says more (`Paused (AwaitingPromotion)`).
pub fn phase_with_reason(phase: Phase, waiting: Option<&str>) -> String {
    match waiting {
        Some(reason) if reason != format!("{phase:?}") => format!("{phase:?} ({reason})"),
        _ => format!("{phase:?}"),
    }
}

/// "1 target", "3 targets".
pub fn count(n: u32, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// How long ago `then` was, as kubectl's AGE column prints it: `45s`, `3m12s`, `5h3m`,
/// `2d4h`, `40d`; an instant in the future (clocks apart) is `0s`.
pub fn age(then: Timestamp, now: Timestamp) -> String {
    let seconds = now.duration_since(then).as_secs().max(0);
    let (m, h, d) = (seconds / 60, seconds / 3600, seconds / 86_400);
    if seconds < 120 {
        format!("{seconds}s")
    } else if m < 10 {
        match seconds % 60 {
            0 => format!("{m}m"),
            s => format!("{m}m{s}s"),
        }
    } else if h < 3 {
        format!("{m}m")
    } else if h < 8 {
        match m % 60 {
            0 => format!("{h}h"),
            rest => format!("{h}h{rest}m"),
        }
    } else if d < 2 {
        format!("{h}h")
    } else if d < 8 {
        match h % 24 {
            0 => format!("{d}d"),
            rest => format!("{d}d{rest}h"),
        }
    } else {
        format!("{d}d")
    }
}

/// An instant in UTC to the second, and in the local time zone when that differs.
pub fn instant(at: Timestamp) -> String {
    let utc = at.strftime("%Y-%m-%d %H:%M:%S UTC").to_string();
    let zone = jiff::tz::TimeZone::system();
    let local = at.to_zoned(zone);
    if local.offset().seconds() == 0 {
        utc
    } else {
        format!("{} ({utc})", local.strftime("%Y-%m-%d %H:%M:%S %Z"))
    }
}

/// Colours for a terminal; none when the output is not one, or `NO_COLOR` is set.
#[derive(Clone, Copy, Debug)]
pub struct Paint {
    on: bool,
}

impl Paint {
    /// Colours when standard output is a terminal and `NO_COLOR` is not set.
    pub fn for_stdout() -> Self {
        Paint {
            on: std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
        }
    }

    /// No colours.
    #[cfg(test)]
    pub fn plain() -> Self {
        Paint { on: false }
    }

    fn wrap(self, code: &str, text: &str) -> String {
        if self.on {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    pub fn green(self, text: &str) -> String {
        self.wrap("32", text)
    }

    pub fn red(self, text: &str) -> String {
        self.wrap("31", text)
    }

    pub fn yellow(self, text: &str) -> String {
        self.wrap("33", text)
    }

    pub fn bold(self, text: &str) -> String {
        self.wrap("1", text)
    }

    /// Whether colours are on (the watch redraws in place only on a terminal).
    pub fn is_terminal(self) -> bool {
        self.on
    }
}

/// Rows under headers, columns padded to their widest cell and three spaces apart, as
/// kubectl prints tables.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                out.push_str(cell);
                out.push_str(&" ".repeat(widths[i] - cell.chars().count() + 3));
            }
        }
        out.trim_end().to_owned() + "\n"
    };
    let mut out = line(headers.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

#[cfg(test)]
mod tests {
    use jiff::{SignedDuration, Timestamp};

    use super::{age, table};

    #[test]
    fn ages_read_as_kubectl_prints_them() {
        let now = Timestamp::from_second(1_000_000_000).unwrap();
        let ago = |s: i64| age(now - SignedDuration::from_secs(s), now);
        assert_eq!(ago(45), "45s");
        assert_eq!(ago(192), "3m12s");
        assert_eq!(ago(60 * 25), "25m");
        assert_eq!(ago(3600 * 5 + 180), "5h3m");
        assert_eq!(ago(3600 * 20), "20h");
        assert_eq!(ago(86_400 * 2 + 3600 * 4), "2d4h");
        assert_eq!(ago(86_400 * 40), "40d");
        assert_eq!(ago(-30), "0s");
    }

    #[test]
    fn tables_pad_columns() {
        let rows = vec![vec!["a-long-name".to_owned(), "1".to_owned()]];
        assert_eq!(
            table(&["NAME", "N"], &rows),
            "NAME          N\na-long-name   1\n"
        );
    }
}
