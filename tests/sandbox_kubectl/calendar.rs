//! The calendar of planned patching through the real kubectl: `kubectl patchpilot
//! calendar` against a served sandbox running the operator, and the operator's own
//! `/calendar.ics` on its metrics port, run as its own process as the README runs it.

use std::process::Command;

use patchpilot_testkit::conformance::kubectl::{Kubectl, text};

use super::{Sandbox, plugin::Plugin};

/// The objects of the calendar tests: a window every night in Berlin with a change freeze
/// from two days after `now` (so that it always falls within the calendar's 30 days), a
/// window on Saturdays with nothing planned, a window with an unknown time zone, a node
/// policy held for approval in the nightly window, and a policy naming a window that does
/// not exist.
fn calendar_objects(now: jiff::Timestamp) -> String {
    let day = jiff::SignedDuration::from_hours(24);
    let hour = |at: jiff::Timestamp| at.strftime("%Y-%m-%dT%H:00:00Z").to_string();
    let (freeze_start, freeze_end) = (hour(now + 2 * day), hour(now + 4 * day));
    let policy = |name: &str, window: &str| {
        format!(
            "apiVersion: patchpilot.dev/v1alpha1
kind: PatchPolicy
metadata: {{name: {name}}}
spec:
  targets: {{nodes: {{selector: {{matchLabels: {{pool: gpu}}}}}}}}
  patch:
    version: 2026-12-firmware
    classification: Critical
    updater: {{template: {{spec: {{containers: [{{name: flash, image: 'registry.example/firmware:1'}}]}}}}}}
  approval: {{mode: Manual}}
  maintenanceWindow: {window}
---
"
        )
    };
    format!(
        "apiVersion: patchpilot.dev/v1alpha1
kind: MaintenanceWindow
metadata: {{name: nights}}
spec:
  timeZone: Europe/Berlin
  recurrences: [{{start: '01:00', duration: 4h}}]
  exclusions:
    - {{start: '{freeze_start}', end: '{freeze_end}', reason: 'Year-end, no changes; ask the CAB'}}
  cutoff: 30m
---
apiVersion: patchpilot.dev/v1alpha1
kind: MaintenanceWindow
metadata: {{name: weekends}}
spec:
  recurrences: [{{days: [Sat], start: '08:00', duration: 2h}}]
---
apiVersion: patchpilot.dev/v1alpha1
kind: MaintenanceWindow
metadata: {{name: mars}}
spec:
  timeZone: Mars/Olympus
  recurrences: [{{start: '08:00', duration: 2h}}]
---
"
    ) + &policy("gpu-firmware", "nights")
        + &policy("lost", "gone")
}

/// One VEVENT of a calendar: its properties as written (unfolded, not unescaped).
type CalendarEvent = std::collections::BTreeMap<String, String>;

/// The events of an iCalendar text, after checking its frame: CRLF line ends, no line
/// longer than 75 octets, `VCALENDAR` around it with the version and product.
#[track_caller]
fn calendar_events(text: &str) -> Vec<CalendarEvent> {
    assert!(text.ends_with("\r\n"), "{text}");
    for line in text.trim_end_matches("\r\n").split("\r\n") {
        assert!(line.len() <= 75 && !line.contains('\n'), "{line:?}");
    }
    let lines: Vec<String> = text
        .replace("\r\n ", "")
        .split("\r\n")
        .filter(|line| !line.is_empty())
        .map(str::to_owned)
        .collect();
    assert_eq!(
        lines[..4],
        [
            "BEGIN:VCALENDAR",
            "VERSION:2.0",
            "PRODID:-//patchpilot//patchpilot//EN",
            "CALSCALE:GREGORIAN"
        ]
    );
    assert_eq!(lines.last().map(String::as_str), Some("END:VCALENDAR"));
    let mut events = Vec::new();
    let mut event: Option<CalendarEvent> = None;
    for line in &lines {
        let (name, value) = line.split_once(':').unwrap();
        match (name, value) {
            ("BEGIN", "VEVENT") => event = Some(CalendarEvent::new()),
            ("END", "VEVENT") => events.extend(event.take()),
            _ => {
                if let Some(event) = event.as_mut() {
                    event.insert(name.to_owned(), value.to_owned());
                }
            }
        }
    }
    events
}

/// An iCalendar DATE-TIME in UTC.
fn calendar_instant(text: &str) -> jiff::Timestamp {
    jiff::fmt::strtime::parse("%Y%m%dT%H%M%SZ", text)
        .and_then(|t| t.to_datetime())
        .and_then(|t| t.to_zoned(jiff::tz::TimeZone::UTC))
        .unwrap()
        .timestamp()
}

/// `kubectl patchpilot calendar`: each window's openings with the rollout planned in them,
/// tentative until approved; the freeze as a busy event; a window that cannot be evaluated
/// and a policy naming no existing window said on standard error.
#[test]
fn the_calendar_of_planned_patching_is_exported_as_icalendar() {
    let sandbox = Sandbox::start();
    let plugin = Plugin::new(&sandbox);
    let objects = sandbox.dir.path().join("calendar.yaml");
    std::fs::write(&objects, calendar_objects(jiff::Timestamp::now())).unwrap();
    sandbox.ok(&["apply", "-f", &objects.display().to_string()]);
    let rollout = sandbox.eventually(30, "the held rollout, counted", || {
        let found = sandbox.json(&["get", "patchrollouts"]);
        found["items"].as_array()?.iter().find_map(|r| {
            let counted = r["spec"]["policy"] == "gpu-firmware"
                && r["status"]["phase"] == "AwaitingApproval"
                && r["status"]["targets"]["pending"] == 2;
            counted.then(|| r["metadata"]["name"].as_str().unwrap().to_owned())
        })
    });

    let (code, out, err) = plugin.run(&["calendar"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        err.lines().collect::<Vec<_>>(),
        [
            "warning: PatchPolicy lost names MaintenanceWindow gone, which does not exist: its rollouts are in no window",
            "warning: MaintenanceWindow mars is invalid, left out of the calendar: spec.timeZone: unknown time zone \"Mars/Olympus\"",
        ]
    );
    let events = calendar_events(&out);
    let of = |category: &str| -> Vec<&CalendarEvent> {
        events
            .iter()
            .filter(|e| e["CATEGORIES"].starts_with(category))
            .collect()
    };
    let nights: Vec<&CalendarEvent> = of("patchpilot,maintenance-window,patching");
    assert!(
        nights.len() >= 26,
        "{} openings of nights: {out}",
        nights.len()
    );
    for opening in &nights {
        assert_eq!(
            opening["SUMMARY"],
            format!(
                "Patching in nights: {rollout} (2026-12-firmware\\, Critical\\, approval needed)"
            )
        );
        assert_eq!(opening["STATUS"], "TENTATIVE");
        assert_eq!(opening["TRANSP"], "TRANSPARENT");
        assert!(
            opening["UID"].ends_with("-nights@patchpilot.dev"),
            "{opening:?}"
        );
        let description = &opening["DESCRIPTION"];
        for expected in [
            "targets to patch: 2",
            &format!("approval: needed (kubectl patchpilot approve {rollout})"),
            "Local time (Europe/Berlin): ",
        ] {
            assert!(
                description.contains(expected),
                "{expected} in {description}"
            );
        }
    }
    let weekends: Vec<&CalendarEvent> = events
        .iter()
        .filter(|e| e["SUMMARY"] == "Maintenance window weekends: nothing planned")
        .collect();
    assert!((4..=5).contains(&weekends.len()), "{out}");
    assert_eq!(weekends.len() + nights.len() + 1, events.len(), "{out}");
    let freezes = of("patchpilot,freeze");
    let [freeze] = freezes.as_slice() else {
        panic!("one freeze: {out}")
    };
    assert_eq!(
        freeze["SUMMARY"],
        "Change freeze: Year-end\\, no changes\\; ask the CAB"
    );
    assert_eq!(freeze["TRANSP"], "OPAQUE");
    let (frozen_from, frozen_until) = (
        calendar_instant(&freeze["DTSTART"]),
        calendar_instant(&freeze["DTEND"]),
    );
    for opening in &nights {
        let (start, end) = (
            calendar_instant(&opening["DTSTART"]),
            calendar_instant(&opening["DTEND"]),
        );
        assert!(
            end <= frozen_from || start >= frozen_until,
            "{opening:?} in {freeze:?}"
        );
    }
    // Exported again, every event keeps its UID.
    let uids = |events: &[CalendarEvent]| -> Vec<String> {
        events.iter().map(|e| e["UID"].clone()).collect()
    };
    assert_eq!(
        uids(&calendar_events(&plugin.ok(&["calendar"]))),
        uids(&events)
    );

    // One window, a week ahead: only its own events, and no warning about the others.
    let (code, out, err) = plugin.run(&["calendar", "weekends", "--days", "8"]);
    assert_eq!((code, err.as_str()), (0, ""), "{out}");
    let week = calendar_events(&out);
    assert!((1..=2).contains(&week.len()), "{out}");
    assert!(
        week.iter()
            .all(|e| e["UID"].ends_with("-weekends@patchpilot.dev"))
    );
    plugin.refused(
        &["calendar", "nope"],
        "MaintenanceWindow nope not found (kubectl get maintenancewindows lists them)",
    );
    let (code, _, err) = plugin.run(&["calendar", "--days", "0"]);
    assert_eq!(code, 2, "{err}");

    // Approved, the openings are confirmed.
    plugin.ok(&["approve", &rollout]);
    let approved = calendar_events(&plugin.ok(&["calendar", "nights", "--days", "3"]));
    let openings: Vec<&CalendarEvent> = approved
        .iter()
        .filter(|e| e["CATEGORIES"] == "patchpilot,maintenance-window,patching")
        .collect();
    assert!(!openings.is_empty(), "{approved:?}");
    for opening in openings {
        assert_eq!(opening["STATUS"], "CONFIRMED", "{opening:?}");
        assert!(
            opening["DESCRIPTION"].contains("approval: approved"),
            "{opening:?}"
        );
    }

    // The windows are completed by name, with their time zone.
    let completed = text(
        &plugin
            .kubectl(&["__complete", "patchpilot", "calendar", ""])
            .stdout,
    );
    assert!(completed.contains("nights\tEurope/Berlin"), "{completed}");
    assert!(completed.contains("weekends\tUTC"), "{completed}");
}

/// What the operator's metrics port answered.
struct Answer {
    code: u16,
    /// Lower-case names.
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// `METHOD PATH` on the operator's metrics port; `None` while nothing answers there.
fn metrics_request(port: u16, method: &str, path: &str) -> Option<Answer> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    let mut lines = head.split("\r\n");
    let code = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers = lines
        .filter_map(|line| line.split_once(": "))
        .map(|(name, value)| (name.to_lowercase(), value.to_owned()))
        .collect();
    Some(Answer {
        code,
        headers,
        body: body.to_owned(),
    })
}

/// The operator serves the same calendar read-only on its metrics port, `/calendar.ics`,
/// from its caches: the plugin's, event for event.
#[test]
fn the_operator_serves_the_same_calendar_on_its_metrics_port() {
    let sandbox = Sandbox::start_with(&["--without-operator"]);
    let plugin = Plugin::new(&sandbox);
    let objects = sandbox.dir.path().join("calendar.yaml");
    std::fs::write(&objects, calendar_objects(jiff::Timestamp::now())).unwrap();
    sandbox.ok(&["apply", "-f", &objects.display().to_string()]);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let log = std::fs::File::create(sandbox.dir.path().join("operator.log")).unwrap();
    let mut operator = Command::new(env!("CARGO_BIN_EXE_patchpilot"))
        .args(["run", "--metrics-addr", &format!("127.0.0.1:{port}")])
        .env("KUBECONFIG", &sandbox.kubeconfig)
        .env("POD_NAMESPACE", "patchpilot-system")
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    struct Stop<'a>(&'a mut std::process::Child);
    impl Drop for Stop<'_> {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _stop = Stop(&mut operator);

    // Served once the operator's caches hold the rollout it created, counted.
    let answer = sandbox.eventually(30, "the operator's calendar", || {
        metrics_request(port, "GET", "/calendar.ics")
            .filter(|a| a.code == 200 && a.body.contains("targets to patch: 2"))
    });
    assert_eq!(
        answer.header("content-type"),
        Some("text/calendar; charset=utf-8")
    );
    let events = calendar_events(&answer.body);
    assert!(
        events
            .iter()
            .any(|e| e["SUMMARY"].starts_with("Patching in nights: gpu-firmware-")),
        "{}",
        answer.body
    );
    // The plugin exports the same events; only the instant of the export differs. (An
    // opening can begin between the two readings: they are read again then.)
    let without_stamps = |text: &str| -> Vec<CalendarEvent> {
        let mut events = calendar_events(text);
        for event in &mut events {
            event.remove("DTSTAMP");
        }
        events
    };
    sandbox.eventually(10, "the plugin's calendar to be the operator's", || {
        let feed = metrics_request(port, "GET", "/calendar.ics")?.body;
        (without_stamps(&feed) == without_stamps(&plugin.ok(&["calendar"]))).then_some(())
    });
    let week = metrics_request(port, "GET", "/calendar.ics?days=8").unwrap();
    let week = calendar_events(&week.body);
    assert!(!week.is_empty() && week.len() < events.len(), "{week:?}");
    let refused = metrics_request(port, "GET", "/calendar.ics?days=0").unwrap();
    assert_eq!(refused.code, 400, "{}", refused.body);

    // Read-only: HEAD says as much as GET without the body, anything else is refused.
    let head = metrics_request(port, "HEAD", "/calendar.ics").unwrap();
    assert_eq!((head.code, head.body.as_str()), (200, ""));
    assert_eq!(head.header("content-type"), answer.header("content-type"));
    assert!(
        head.header("content-length").is_some_and(|l| l != "0"),
        "{:?}",
        head.headers
    );
    let post = metrics_request(port, "POST", "/calendar.ics").unwrap();
    assert_eq!(post.code, 405);
    assert_eq!(post.header("allow"), Some("GET, HEAD"));
}
