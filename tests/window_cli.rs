//! `patchpilot window`: the exact JSON of SPEC 4 for the example window, the text for people
//! (`-o text`), fewer openings than asked for said without touching the JSON, and bad input
//! answered with exit status 2 and one line naming the file, the object and the field.

use std::{
    path::{Path, PathBuf},
    process::Output,
};

use patchpilot_testkit::{cli::patchpilot, repo::root};

fn example() -> String {
    root("examples/maintenance-window.yaml")
}

/// Runs successfully and returns standard output.
fn stdout(args: &[&str]) -> String {
    let output = patchpilot(args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{args:?}: {stderr}");
    assert_eq!(stderr, "", "{args:?}");
    String::from_utf8(output.stdout).unwrap()
}

/// The example with `from` replaced by `to`, written to `dir`.
fn edited_example(dir: &Path, from: &str, to: &str) -> PathBuf {
    let text = std::fs::read_to_string(example()).unwrap();
    assert!(text.contains(from), "{from:?} is not in the example");
    let path = dir.join("w.yaml");
    std::fs::write(&path, text.replace(from, to)).unwrap();
    path
}

/// Asserts exit status 2 and one line on stderr, equal to `expected` after the file's path.
fn assert_exact_error(output: &Output, file: &Path, expected: &str) {
    let stderr = String::from_utf8(output.stderr.clone()).unwrap();
    assert_eq!(output.status.code(), Some(2), "stderr: {stderr}");
    assert_eq!(output.stdout, b"");
    assert_eq!(
        stderr,
        format!("error: {}: {expected}\n", file.display()),
        "expected one line naming the file, the object and the field"
    );
}

#[test]
fn prints_the_exact_json_for_an_open_window() {
    // Saturday 28 March 2026, 02:00 in Berlin: inside the Saturday night occurrence. The
    // Sunday one starts in CET and ends, four real hours later, in CEST.
    let text = stdout(&[
        "window",
        &example(),
        "--at",
        "2026-03-28T02:00:00+01:00",
        "--next",
        "3",
    ]);
    assert_eq!(
        text,
        r#"{
  "name": "weekend-nights",
  "at": "2026-03-28T01:00:00Z",
  "open": true,
  "current": {
    "start": "2026-03-28T00:00:00Z",
    "end": "2026-03-28T04:00:00Z"
  },
  "next": [
    {
      "start": "2026-03-29T00:00:00Z",
      "end": "2026-03-29T04:00:00Z"
    },
    {
      "start": "2026-03-31T20:00:00Z",
      "end": "2026-03-31T22:00:00Z"
    },
    {
      "start": "2026-04-03T23:00:00Z",
      "end": "2026-04-04T03:00:00Z"
    }
  ]
}
"#
    );
}

#[test]
fn the_year_end_freeze_skips_windows() {
    // From Friday 18 December 2026: Saturday 19 December, then nothing until Tuesday
    // 5 January 2027 (the freeze ends on 4 January at midnight, Berlin time).
    let text = stdout(&[
        "window",
        &example(),
        "--at",
        "2026-12-18T12:00:00Z",
        "--next",
        "3",
    ]);
    assert_eq!(
        text,
        r#"{
  "name": "weekend-nights",
  "at": "2026-12-18T12:00:00Z",
  "open": false,
  "current": null,
  "next": [
    {
      "start": "2026-12-19T00:00:00Z",
      "end": "2026-12-19T04:00:00Z"
    },
    {
      "start": "2027-01-05T21:00:00Z",
      "end": "2027-01-05T23:00:00Z"
    },
    {
      "start": "2027-01-09T00:00:00Z",
      "end": "2027-01-09T04:00:00Z"
    }
  ]
}
"#
    );
}

#[test]
fn next_defaults_to_one_and_may_be_zero() {
    let at = ["--at", "2026-12-18T12:00:00Z"];
    let one = stdout(&["window", &example(), at[0], at[1]]);
    let value: serde_json::Value = serde_json::from_str(&one).unwrap();
    assert_eq!(
        value["next"],
        serde_json::json!([{"start": "2026-12-19T00:00:00Z", "end": "2026-12-19T04:00:00Z"}])
    );
    let none = stdout(&["window", &example(), at[0], at[1], "--next", "0"]);
    assert!(none.ends_with("  \"next\": []\n}\n"), "{none}");
}

#[test]
fn at_defaults_to_now() {
    let before = jiff::Timestamp::now();
    let text = stdout(&["window", &example()]);
    let after = jiff::Timestamp::now();
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    let at: jiff::Timestamp = value["at"].as_str().unwrap().parse().unwrap();
    assert!(before <= at && at <= after, "{at}");
    assert_eq!(value["next"].as_array().unwrap().len(), 1);
    let keys: Vec<&str> = text
        .lines()
        .filter_map(|line| line.strip_prefix("  \""))
        .filter_map(|line| line.split('"').next())
        .collect();
    assert_eq!(keys, ["name", "at", "open", "current", "next"]);
}

#[test]
fn an_unknown_time_zone_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let file = edited_example(dir.path(), "Europe/Berlin", "Europe/Berln");
    assert_exact_error(
        &patchpilot(&["window", file.to_str().unwrap()]),
        &file,
        "MaintenanceWindow/weekend-nights: spec.timeZone: unknown time zone \"Europe/Berln\"",
    );
}

#[test]
fn an_invalid_cron_expression_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let file = edited_example(dir.path(), "\"0 22 * * Tue\"", "\"61 22 * * Tue\"");
    assert_exact_error(
        &patchpilot(&["window", file.to_str().unwrap()]),
        &file,
        "MaintenanceWindow/weekend-nights: spec.recurrences[1].cron: Invalid value: \"61 22 * * Tue\": \
         cron \"61 22 * * Tue\": the minute field (the 1st) takes * or 0-59, and lists (0,30), \
         ranges (0-29) and steps (*/15) of them",
    );
    // What the schema cannot see, the operator's own reading refuses, naming the field.
    let file = edited_example(dir.path(), "\"0 22 * * Tue\"", "\"0 22-20 * * Tue\"");
    assert_exact_error(
        &patchpilot(&["window", file.to_str().unwrap()]),
        &file,
        "MaintenanceWindow/weekend-nights: spec.recurrences[1].cron: \
         hour field \"22-20\": range 22-20 is reversed (its start is after its end)",
    );
    let file = edited_example(dir.path(), "\"0 22 * * Tue\"", "\"0 22 * * Tuesday\"");
    let output = patchpilot(&["window", file.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains(
            "spec.recurrences[1].cron: Invalid value: \"0 22 * * Tuesday\": cron \"0 22 * * Tuesday\": the \
             day-of-week field (the 5th) takes * or 0-7 (0 and 7 are Sunday) or SUN-SAT"
        ),
        "{stderr}"
    );
}

#[test]
fn a_predefined_schedule_opens_at_local_midnight() {
    let dir = tempfile::tempdir().unwrap();
    let file = edited_example(dir.path(), "\"0 22 * * Tue\"", "\"@daily\"");
    // Thursday 00:30 in Berlin: @daily opened at local midnight, for its 2h.
    let out = stdout(&[
        "window",
        file.to_str().unwrap(),
        "--at",
        "2026-11-25T23:30:00Z",
    ]);
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["open"], true, "{out}");
    assert_eq!(
        report["current"],
        serde_json::json!({"start": "2026-11-25T23:00:00Z", "end": "2026-11-26T01:00:00Z"})
    );
}

#[test]
fn json_is_the_default_output_and_stays_as_it_is() {
    let at = ["--at", "2026-12-18T12:00:00Z", "--next", "3"];
    let default = stdout(&["window", &example(), at[0], at[1], at[2], at[3]]);
    let json = stdout(&[
        "window",
        &example(),
        at[0],
        at[1],
        at[2],
        at[3],
        "-o",
        "json",
    ]);
    assert_eq!(default, json);
    let long = stdout(&["window", &example(), "--output", "json", at[0], at[1]]);
    assert!(
        long.starts_with("{\n  \"name\": \"weekend-nights\",\n"),
        "{long}"
    );
}

#[test]
fn text_shows_an_open_window_in_its_zone_and_utc_with_the_cutoff() {
    let text = stdout(&[
        "window",
        &example(),
        "--at",
        "2026-11-28T00:30:00Z",
        "--next",
        "2",
        "-o",
        "text",
    ]);
    assert_eq!(
        text,
        "Name:      weekend-nights
Time zone: Europe/Berlin
At:        Sat 2026-11-28 01:30:00 CET (2026-11-28 00:30:00 UTC)
Open:      yes
Current:   Sat 2026-11-28 01:00:00 CET to Sat 2026-11-28 05:00:00 CET
               2026-11-28 00:00:00 UTC to     2026-11-28 04:00:00 UTC
Cutoff:    30m before the end: the last start is Sat 2026-11-28 04:30:00 CET (2026-11-28 03:30:00 UTC)
Next 2:
   1. Sun 2026-11-29 01:00:00 CET to Sun 2026-11-29 05:00:00 CET
          2026-11-29 00:00:00 UTC to     2026-11-29 04:00:00 UTC
   2. Tue 2026-12-01 22:00:00 CET to Wed 2026-12-02 00:00:00 CET
          2026-12-01 21:00:00 UTC to     2026-12-01 23:00:00 UTC
"
    );
}

#[test]
fn text_says_which_freeze_closes_the_window_and_when_it_opens() {
    // Sunday 20 December 2026, 01:30 in Berlin: the Sunday night occurrence would be open,
    // but the year-end freeze closes it.
    let text = stdout(&[
        "window",
        &example(),
        "--at",
        "2026-12-20T00:30:00Z",
        "--next",
        "1",
        "-o",
        "text",
    ]);
    assert_eq!(
        text,
        "Name:      weekend-nights
Time zone: Europe/Berlin
At:        Sun 2026-12-20 01:30:00 CET (2026-12-20 00:30:00 UTC)
Open:      no: inside the exclusion \"Year-end change freeze\", which closes a recurrence open now
Exclusion: Sun 2026-12-20 00:00:00 CET to Mon 2027-01-04 00:00:00 CET
               2026-12-19 23:00:00 UTC to     2027-01-03 23:00:00 UTC
Opens:     Tue 2027-01-05 22:00:00 CET (2027-01-05 21:00:00 UTC)
Cutoff:    30m before the end: in that opening, the last start is Tue 2027-01-05 23:30:00 CET (2027-01-05 22:30:00 UTC)
Next 1:
   1. Tue 2027-01-05 22:00:00 CET to Wed 2027-01-06 00:00:00 CET
          2027-01-05 21:00:00 UTC to     2027-01-05 23:00:00 UTC
"
    );
    // Outside the freeze and every recurrence: it says so.
    let text = stdout(&[
        "window",
        &example(),
        "--at",
        "2026-12-18T12:00:00Z",
        "-o",
        "text",
    ]);
    assert!(
        text.contains("Open:      no: outside its recurrences\n"),
        "{text}"
    );
}

#[test]
fn fewer_openings_than_asked_within_the_horizon_are_said() {
    let dir = tempfile::tempdir().unwrap();
    // Once a year: 400 days hold one or two openings, not five (here one: the year-end
    // freeze takes New Year 2027).
    let file = edited_example(dir.path(), "\"0 22 * * Tue\"", "\"@yearly\"");
    let file = file.to_str().unwrap();
    // Drop the weekend recurrence, so that only the yearly one is left.
    let text = std::fs::read_to_string(file).unwrap().replace(
        "    - days: [Sat, Sun]\n      start: \"01:00\"\n      duration: 4h\n",
        "",
    );
    std::fs::write(file, text).unwrap();
    let at = "2025-06-01T00:00:00Z";
    let output = patchpilot(&["window", file, "--at", at, "--next", "5"]);
    assert!(output.status.success());
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["next"].as_array().unwrap().len(), 1, "{json}");
    assert_eq!(
        String::from_utf8(output.stderr).unwrap(),
        "note: only 1 window interval starts within 400 days of the instant; 5 were asked for\n"
    );
    let text = stdout(&["window", file, "--at", at, "--next", "5", "-o", "text"]);
    assert!(
        text.ends_with(
            "  only 1 window interval starts within 400 days of the instant; 5 were asked for\n"
        ),
        "{text}"
    );
    // As many as asked: no note.
    let output = patchpilot(&["window", file, "--at", at, "--next", "1"]);
    assert_eq!(output.stderr, b"");
}

/// Issue 16, bounded work: a window past the schema's limits is refused before it is
/// evaluated, and a cron that matches once in years answers at once, within the horizon.
#[test]
fn windows_past_the_limits_are_refused_and_rare_crons_answer_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let exclusions: String = (0..10_000)
        .map(|i| {
            format!(
                "    - {{start: '2027-01-01T{:02}:00:00Z', end: '2027-01-01T{:02}:30:00Z'}}\n",
                i % 24,
                i % 24
            )
        })
        .collect();
    let busy = dir.path().join("busy.yaml");
    std::fs::write(
        &busy,
        format!(
            "apiVersion: patchpilot.dev/v1alpha1
kind: MaintenanceWindow
metadata: {{name: busy}}
spec:
  recurrences: [{{cron: '0 2 * * *', duration: 2h}}]
  exclusions:
{exclusions}"
        ),
    )
    .unwrap();
    assert_exact_error(
        &patchpilot(&["window", busy.to_str().unwrap()]),
        &busy,
        "MaintenanceWindow/busy: spec.exclusions: Too many: 10000: must have at most 64 items",
    );

    let leap = dir.path().join("leap.yaml");
    std::fs::write(
        &leap,
        "apiVersion: patchpilot.dev/v1alpha1
kind: MaintenanceWindow
metadata: {name: leap}
spec:
  recurrences: [{cron: '0 0 29 2 *', duration: 1h}]
",
    )
    .unwrap();
    let started = std::time::Instant::now();
    let text = stdout(&[
        "window",
        leap.to_str().unwrap(),
        "--at",
        "2026-12-06T00:00:00Z",
        "-o",
        "text",
    ]);
    assert!(text.contains("Opens:     not within 400 days"), "{text}");
    let found = stdout(&[
        "window",
        leap.to_str().unwrap(),
        "--at",
        "2027-12-06T00:00:00Z",
    ]);
    assert!(found.contains("2028-02-29T00:00:00Z"), "{found}");
    // Measured at a tenth of a second each (BENCHMARKS.md); the bound leaves room for a
    // loaded machine.
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
}
