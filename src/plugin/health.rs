//! A target's health-check history (`inProgress[].health`, `failures[].health`) in the
//! tree of `status`: one line a check, how it stands and since when, why, and what it
//! said before.

use jiff::Timestamp;

use super::text::{self, Paint};
use crate::api::{CheckHistory, CheckObservation, CheckResultName};

/// The lines of `checks`: `http /healthz: Fail 503 for 2m — <reason>; before: Pass 200 5m
/// ago`. For a target in progress (`live`), the latest observation holds still: it is
/// shown `for` how long; for a failed one, how long `ago` it was seen.
pub fn lines(checks: &[CheckHistory], now: Timestamp, live: bool, paint: Paint) -> Vec<String> {
    checks
        .iter()
        .filter_map(|check| {
            let (latest, earlier) = check.observations.split_last()?;
            let age = text::age(latest.time.0, now);
            let when = if live {
                format!("for {age}")
            } else {
                format!("{age} ago")
            };
            let mut line = format!("{}: {} {when}", check.check, outcome(latest, paint));
            if let Some(reason) = &latest.reason {
                line.push_str(&format!(" — {reason}"));
            }
            if !earlier.is_empty() {
                let before: Vec<String> = earlier
                    .iter()
                    .rev()
                    .map(|o| format!("{} {} ago", outcome(o, paint), text::age(o.time.0, now)))
                    .collect();
                line.push_str(&format!("; before: {}", before.join(", ")));
            }
            Some(line)
        })
        .collect()
}

/// The result, coloured, with the status code or value measured: `Fail 503`, `Pass = 0.2`.
fn outcome(observation: &CheckObservation, paint: Paint) -> String {
    let result = match observation.result {
        CheckResultName::Pass => paint.green("Pass"),
        CheckResultName::Fail => paint.red("Fail"),
        CheckResultName::Fatal => paint.red("Fatal"),
        CheckResultName::Settling => paint.yellow("Settling"),
    };
    match (&observation.status_code, &observation.value) {
        (Some(code), _) => format!("{result} {code}"),
        (None, Some(value)) => format!("{result} = {value}"),
        (None, None) => result,
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    use super::*;

    fn observation(time: &str, result: CheckResultName) -> CheckObservation {
        CheckObservation {
            time: Time(format!("2026-11-28T{time}Z").parse().unwrap()),
            result,
            status_code: None,
            value: None,
            reason: None,
        }
    }

    #[test]
    fn one_line_a_check_the_latest_first_then_what_came_before() {
        let now: Timestamp = "2026-11-28T12:00:00Z".parse().unwrap();
        let checks = vec![
            CheckHistory {
                check: "podsReady".into(),
                observations: vec![observation("11:50:00", CheckResultName::Pass)],
            },
            CheckHistory {
                check: "prometheus errors".into(),
                observations: vec![
                    observation("11:58:00", CheckResultName::Settling),
                    CheckObservation {
                        value: Some("0.25".into()),
                        reason: Some("errors = 0.25, above the maximum 0.1".into()),
                        ..observation("11:59:00", CheckResultName::Fail)
                    },
                ],
            },
            CheckHistory {
                check: "job smoke".into(),
                observations: vec![],
            },
        ];
        let drawn = lines(&checks, now, true, Paint::plain());
        assert_eq!(
            drawn,
            [
                "podsReady: Pass for 10m",
                "prometheus errors: Fail = 0.25 for 60s — errors = 0.25, above the maximum 0.1; \
                 before: Settling 2m ago",
            ]
        );
        let failed = lines(&checks[..1], now, false, Paint::plain());
        assert_eq!(failed, ["podsReady: Pass 10m ago"]);
    }
}
