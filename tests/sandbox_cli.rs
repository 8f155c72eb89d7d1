//! `patchpilot sandbox` run to its end, as a new user runs it: every line stamped the same
//! way with its zone, nothing said twice, the targets' stories with `--verbose` only, and a
//! closing summary of how the rollouts ended.

use patchpilot_testkit::cli::{patchpilot, stderr};

/// Runs the built-in scenario with `args` and returns its lines.
fn run(args: &[&str]) -> Vec<String> {
    let mut all = vec!["sandbox"];
    all.extend(args);
    let output = patchpilot(&all);
    assert!(output.status.success(), "{}", stderr(&output));
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// A line without its stamp, after checking that the stamp is `[YYYY-MM-DD HH:MM:SS UTC] `.
fn body(line: &str) -> &str {
    let (stamp, body) = line
        .strip_prefix('[')
        .and_then(|l| l.split_once("] "))
        .unwrap_or_else(|| panic!("no stamp: {line}"));
    let (at, zone) = stamp.rsplit_once(' ').unwrap();
    assert_eq!(zone, "UTC", "{line}");
    jiff::civil::DateTime::strptime("%Y-%m-%d %H:%M:%S", at)
        .unwrap_or_else(|e| panic!("{line}: {e}"));
    body
}

#[test]
fn every_line_has_one_stamp_format_and_the_run_ends_with_a_summary() {
    let lines = run(&[]);
    for line in &lines {
        let body = body(line);
        // Instants inside lines are written as the stamps are, not in RFC 3339.
        assert!(
            !body.contains(":00Z") && !body.contains("T00:"),
            "an RFC 3339 instant in: {line}"
        );
    }
    assert!(lines.iter().any(|l| l.ends_with(
        "maintenance window weekend-nights is closed; next opening 2026-11-28 00:00:00 UTC"
    )));
    assert_eq!(
        body(lines.last().unwrap()),
        "2 rollouts: 1 succeeded, 1 rolled back, 0 failed, 0 superseded"
    );
    // The default output is short: no target's story.
    assert!(
        !lines.iter().any(|l| body(l).starts_with("  ")),
        "{lines:#?}"
    );
}

#[test]
fn nothing_is_said_twice() {
    let lines = run(&[]);
    let bodies: Vec<&str> = lines.iter().map(|l| body(l)).collect();
    for (i, b) in bodies.iter().enumerate() {
        assert!(!bodies[..i].contains(b), "said again: {b}\n{lines:#?}");
    }
    // The cause of the halt is said once, when the rollback starts, not again when it ends.
    let shop: Vec<&&str> = bodies
        .iter()
        .filter(|b| b.starts_with("rollout shop-nginx-9e9a45b7"))
        .collect();
    assert_eq!(
        shop.iter().filter(|b| b.contains("CanaryFailed")).count(),
        1,
        "{shop:#?}"
    );
    assert!(
        shop.last()
            .unwrap()
            .ends_with("RolledBack, wave canary (1/2), 0/2 updated"),
        "{shop:#?}"
    );
}

#[test]
fn verbose_tells_each_targets_story_from_its_events() {
    let short = run(&[]);
    let long = run(&["--verbose"]);
    // Verbose only adds lines.
    let long_bodies: Vec<&str> = long.iter().map(|l| body(l)).collect();
    for line in &short {
        assert!(long_bodies.contains(&body(line)), "missing: {line}");
    }
    let story: Vec<&str> = long_bodies
        .iter()
        .filter_map(|b| b.strip_prefix("  Node/general-1: "))
        // Which pod it waits for depends on the names the simulated cluster gave.
        .map(|l| match l.starts_with("waiting to be healthy: ") {
            true => "verifying",
            false => l,
        })
        .collect();
    assert_eq!(
        story,
        [
            "locked and cordoned (workers-os-e74c7179)",
            "cordoned, draining (workers-os-e74c7179)",
            "the updater is starting (workers-os-e74c7179)",
            "the updater finished (workers-os-e74c7179)",
            "waiting for the node to reboot (workers-os-e74c7179)",
            "back Ready after its reboot (workers-os-e74c7179)",
            "uncordoned (workers-os-e74c7179)",
            "verifying",
            "updated (workers-os-e74c7179)",
        ],
        "{long:#?}"
    );
    // The canary that crash-loops: failed, then rolled back.
    let frontend: Vec<&str> = long_bodies
        .iter()
        .filter_map(|b| b.strip_prefix("  Deployment/shop/frontend: "))
        .collect();
    assert!(
        frontend.iter().any(|l| l.starts_with("warning: failed: ")),
        "{frontend:#?}"
    );
    assert!(
        frontend.last().unwrap().starts_with("rolled back: "),
        "{frontend:#?}"
    );
    // Every node of the OS rollout has its story, each ending updated.
    for node in [
        "general-1",
        "general-2",
        "general-3",
        "general-4",
        "general-5",
        "general-6",
        "gpu-1",
        "gpu-2",
        "gpu-3",
    ] {
        let updated = format!("  Node/{node}: updated (workers-os-e74c7179)");
        assert!(long_bodies.contains(&updated.as_str()), "{updated}");
    }
    let last = run(&["-v"]);
    assert_eq!(body(last.last().unwrap()), body(long.last().unwrap()));
}
