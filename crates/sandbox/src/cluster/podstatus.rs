//! A pod's status as its kubelet reports it, computed from what the kubelet knows of the
//! pod's containers ([`PodRun`]). Every timestamp comes from that record, never from the
//! clock, so the same record always gives the same status and unchanged pods are not
//! written again.

use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use super::{kubelet::PodRun, meta};
use crate::json::{Json, Object};

/// The conditions the kubelet owns; others (set by other components) are kept.
const OWN_CONDITIONS: [&str; 5] = [
    "PodReadyToStartContainers",
    "Initialized",
    "Ready",
    "ContainersReady",
    "PodScheduled",
];

/// Where a pod's containers are at `now`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// Created, not yet running.
    Starting,
    /// Running; Ready or not.
    Running { ready: bool },
    /// Exited, waiting for the kubelet to restart them after this back-off.
    BackOff(SignedDuration),
    /// The node is down: the containers are not Ready.
    NodeDown(Timestamp),
    /// Finished at the instant, successfully or not.
    Finished(Timestamp, bool),
}

fn stage(run: &PodRun, now: Timestamp) -> Stage {
    if let Some((at, ok)) = run.finish
        && at <= now
        && run.down_since.is_none()
    {
        return Stage::Finished(at, ok);
    }
    if let Some(since) = run.down_since {
        return Stage::NodeDown(since);
    }
    if now < run.started {
        return match run.back_off {
            Some(back_off) => Stage::BackOff(back_off),
            None => Stage::Starting,
        };
    }
    Stage::Running {
        ready: run.ready.is_some_and(|at| at <= now),
    }
}

/// The pod's status at `now`, or `None` while its containers are still being created (the
/// status it was created with stands until then).
pub(super) fn pod_status(pod: &Json, run: &PodRun, host_ip: &str, now: Timestamp) -> Option<Value> {
    let stage = stage(run, now);
    if stage == Stage::Starting {
        return None;
    }
    let bound = meta::time(run.bound);
    let names: Vec<&str> = containers(pod, "containers")
        .filter_map(|c| c["name"].as_str())
        .collect();
    let unready = format!("containers with unready status: [{}]", names.join(" "));
    let pulling = containers(pod, "containers")
        .filter(|c| unpullable(run, c))
        .count();
    let (phase, ready) = match stage {
        Stage::Finished(_, true) => ("Succeeded", false),
        Stage::Finished(_, false) => ("Failed", false),
        // No container ever started: the pod stays Pending.
        Stage::Running { .. } if pulling > 0 && pulling == names.len() => ("Pending", false),
        Stage::Running { ready } => ("Running", ready),
        Stage::NodeDown(_) | Stage::Starting | Stage::BackOff(_) => ("Running", false),
    };
    let condition =
        |kind: &str, on: bool, at: String, reason: Option<&str>, message: Option<&str>| {
            let mut c = json!({
                "type": kind,
                "status": if on { "True" } else { "False" },
                "lastProbeTime": null,
                "lastTransitionTime": at,
            });
            if let Some(reason) = reason {
                c["reason"] = json!(reason);
            }
            if let Some(message) = message {
                c["message"] = json!(message);
            }
            c
        };
    let ready_at = match stage {
        Stage::Finished(at, _) | Stage::NodeDown(at) => at,
        Stage::Running { ready: true } => run.ready.unwrap_or(run.started),
        Stage::Running { ready: false } | Stage::Starting => run.started,
        // Not Ready since the containers last exited.
        Stage::BackOff(_) => run.last_run.map_or(run.bound, |(_, exited)| exited),
    };
    let (ready_reason, ready_message) = match stage {
        Stage::Finished(..) => (Some("PodCompleted"), None),
        _ if ready => (None, None),
        _ => (Some("ContainersNotReady"), Some(unready.as_str())),
    };
    let finished = matches!(stage, Stage::Finished(..));
    let scheduled_at = meta::condition(pod, "PodScheduled")
        .filter(|c| c["status"] == "True")
        .and_then(|c| c["lastTransitionTime"].as_str())
        .map_or_else(|| bound.clone(), str::to_owned);
    let mut conditions: Vec<Value> = meta::conditions_of(pod)
        .into_iter()
        .filter(|c| {
            !c["type"]
                .as_str()
                .is_some_and(|t| OWN_CONDITIONS.contains(&t))
        })
        .collect();
    let sandbox_at = if finished {
        meta::time(ready_at)
    } else {
        bound.clone()
    };
    conditions.extend([
        condition(
            "PodReadyToStartContainers",
            !finished,
            sandbox_at,
            None,
            None,
        ),
        condition(
            "Initialized",
            true,
            bound.clone(),
            finished.then_some("PodCompleted"),
            None,
        ),
        condition(
            "Ready",
            ready,
            meta::time(ready_at),
            ready_reason,
            ready_message,
        ),
        condition(
            "ContainersReady",
            ready,
            meta::time(ready_at),
            ready_reason,
            ready_message,
        ),
        condition("PodScheduled", true, scheduled_at, None, None),
    ]);
    let mut status = pod["status"]
        .as_object()
        .map(Object::to_map)
        .unwrap_or_default();
    let ip = if pod["spec"]["hostNetwork"] == true {
        host_ip
    } else {
        run.ip.as_str()
    };
    let fields = [
        ("phase", json!(phase)),
        ("conditions", Value::Array(conditions)),
        ("hostIP", json!(host_ip)),
        ("hostIPs", json!([{"ip": host_ip}])),
        ("podIP", json!(ip)),
        ("podIPs", json!([{"ip": ip}])),
        ("startTime", json!(bound)),
        (
            "containerStatuses",
            Value::Array(container_statuses(pod, run, stage, now)),
        ),
    ];
    status.extend(fields.map(|(k, v)| (k.to_owned(), v)));
    let init: Vec<Value> = containers(pod, "initContainers")
        .map(|c| {
            let mut s = container_base(pod, c, 0);
            s["ready"] = json!(true);
            s["started"] = json!(false);
            s["state"] =
                json!({"terminated": terminated(0, "Completed", run.bound, run.bound, &s)});
            s
        })
        .collect();
    if !init.is_empty() {
        status.insert("initContainerStatuses".into(), Value::Array(init));
    }
    status
        .entry("qosClass")
        .or_insert_with(|| json!(qos_class(pod)));
    Some(Value::Object(status))
}

/// The containers (or init containers) of a pod's spec.
fn containers<'a>(pod: &'a Json, field: &str) -> impl Iterator<Item = &'a Json> {
    pod["spec"][field].as_array().into_iter().flatten()
}

/// Whether a container's image cannot be pulled.
fn unpullable(run: &PodRun, container: &Json) -> bool {
    container["name"]
        .as_str()
        .is_some_and(|name| run.unpullable.iter().any(|u| u == name))
}

/// Where the kubelet is with an image it cannot pull.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct PullAttempt {
    /// The last attempt failed this recently: the container says `ErrImagePull` (then
    /// `ImagePullBackOff` until the next attempt).
    pub error: bool,
    /// When the status changes next.
    pub next_change: Timestamp,
}

/// How long a failed pull shows as `ErrImagePull` before the kubelet's next sync says
/// `ImagePullBackOff`.
const PULL_ERROR_SHOWN: SignedDuration = SignedDuration::from_secs(2);

/// The kubelet's pulls of an image it cannot pull, the first at `first`, then after 10 s,
/// doubling up to 5 minutes: where they are at `now` (not before `first`).
pub(super) fn pull_attempt(first: Timestamp, now: Timestamp) -> PullAttempt {
    let mut attempt = first;
    let mut failures = 1;
    loop {
        let back_off = super::kubelet::restart_back_off(failures + 1);
        let next = attempt.saturating_add(back_off).unwrap_or(attempt);
        if now < next || next <= attempt {
            let shown = attempt.saturating_add(PULL_ERROR_SHOWN).unwrap_or(attempt);
            let error = now < shown && shown < next;
            return PullAttempt {
                error,
                next_change: if error { shown } else { next },
            };
        }
        attempt = next;
        failures += 1;
    }
}

/// A duration as Go prints it (`10s`, `1m20s`, `5m0s`), as in kubelet messages.
fn go_duration(duration: SignedDuration) -> String {
    let seconds = duration.as_secs();
    if seconds < 60 {
        format!("{seconds}s")
    } else {
        format!("{}m{}s", seconds / 60, seconds % 60)
    }
}

/// The state of a container whose image cannot be pulled, at `now`.
fn pull_waiting(container: &Json, run: &PodRun, now: Timestamp) -> Value {
    let image = container["image"].as_str().unwrap_or("");
    if pull_attempt(run.started, now).error {
        json!({"waiting": {
            "reason": "ErrImagePull",
            "message": format!(
                "rpc error: code = NotFound desc = failed to pull and unpack image \"{image}\": \
                 failed to resolve reference \"{image}\": {image}: not found"
            ),
        }})
    } else {
        json!({"waiting": {
            "reason": "ImagePullBackOff",
            "message": format!("Back-off pulling image \"{image}\""),
        }})
    }
}

/// The status of each container.
fn container_statuses(pod: &Json, run: &PodRun, stage: Stage, now: Timestamp) -> Vec<Value> {
    containers(pod, "containers")
        .map(|container| {
            if !matches!(stage, Stage::Finished(..)) && unpullable(run, container) {
                // Never started: no container ID, no image ID, no restarts.
                return json!({
                    "name": container["name"],
                    "image": container["image"],
                    "imageID": "",
                    "ready": false,
                    "started": false,
                    "restartCount": 0,
                    "state": pull_waiting(container, run, now),
                    "lastState": {},
                });
            }
            let mut s = container_base(pod, container, run.restarts);
            let (ready, started, state) = match stage {
                Stage::Finished(at, ok) => {
                    let (code, reason) = if ok { (0, "Completed") } else { (1, "Error") };
                    (
                        false,
                        false,
                        json!({"terminated": terminated(code, reason, run.started, at, &s)}),
                    )
                }
                Stage::Running { ready } => (
                    ready,
                    true,
                    json!({"running": {"startedAt": meta::time(run.started)}}),
                ),
                Stage::NodeDown(_) | Stage::Starting => (
                    false,
                    true,
                    json!({"running": {"startedAt": meta::time(run.started)}}),
                ),
                Stage::BackOff(back_off) => {
                    let name = container["name"].as_str().unwrap_or("");
                    let message = format!(
                        "back-off {} restarting failed container={name} pod={}_{}({})",
                        go_duration(back_off),
                        meta::name(pod),
                        meta::namespace(pod),
                        meta::uid(pod),
                    );
                    (
                        false,
                        false,
                        json!({"waiting": {"reason": "CrashLoopBackOff", "message": message}}),
                    )
                }
            };
            s["ready"] = json!(ready);
            s["started"] = json!(started);
            s["state"] = state;
            s["lastState"] = match run.last_run {
                Some((from, to)) => {
                    let previous = container_base(pod, container, run.restarts.saturating_sub(1));
                    json!({"terminated": terminated(1, "Error", from, to, &previous)})
                }
                None => json!({}),
            };
            s
        })
        .collect()
}

/// The fields of a container status that do not depend on its state.
fn container_base(pod: &Json, container: &Json, restarts: u32) -> Value {
    let name = container["name"].as_str().unwrap_or("");
    let image = container["image"].as_str().unwrap_or("");
    let id = format!("{}/{name}/{restarts}", meta::uid(pod));
    json!({
        "name": name,
        "image": image,
        "imageID": image_id(image),
        "containerID": format!("containerd://{}", meta::hex_id(&id, 64)),
        "restartCount": restarts,
    })
}

/// A terminated state, with the container ID of `base`.
fn terminated(code: i64, reason: &str, from: Timestamp, to: Timestamp, base: &Value) -> Value {
    json!({
        "exitCode": code,
        "reason": reason,
        "startedAt": meta::time(from),
        "finishedAt": meta::time(to),
        "containerID": base["containerID"],
    })
}

/// The image ID a container runtime reports: the repository and a digest.
fn image_id(image: &str) -> String {
    let without_digest = image.split('@').next().unwrap_or(image);
    let last_slash = without_digest.rfind('/').map_or(0, |i| i + 1);
    let repository = match without_digest[last_slash..].find(':') {
        Some(colon) => &without_digest[..last_slash + colon],
        None => without_digest,
    };
    format!(
        "{repository}@sha256:{}",
        meta::hex_id(&format!("image/{image}"), 64)
    )
}

/// The pod's quality-of-service class from its containers' resources.
pub(super) fn qos_class(pod: &Json) -> &'static str {
    let all: Vec<&Json> = containers(pod, "containers")
        .chain(containers(pod, "initContainers"))
        .collect();
    let empty = |v: &Json| v.as_object().is_none_or(Object::is_empty);
    if all
        .iter()
        .all(|c| empty(&c["resources"]["requests"]) && empty(&c["resources"]["limits"]))
    {
        return "BestEffort";
    }
    let guaranteed = all.iter().all(|c| {
        let limits = &c["resources"]["limits"];
        let requests = &c["resources"]["requests"];
        ["cpu", "memory"]
            .into_iter()
            .all(|r| !limits[r].is_null() && (requests[r].is_null() || requests[r] == limits[r]))
    });
    if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + s).unwrap()
    }

    fn run() -> PodRun {
        PodRun {
            uid: "u".into(),
            ip: "10.128.0.1".into(),
            bound: t(0),
            boot: 0,
            started: t(5),
            ready: Some(t(5)),
            restarts: 0,
            last_run: None,
            back_off: None,
            unpullable: Vec::new(),
            finish: None,
            down_since: None,
        }
    }

    fn pod() -> Value {
        json!({
            "metadata": {"uid": "u"},
            "spec": {"containers": [{"name": "web", "image": "ghcr.io/acme/web:1.0"}]},
            "status": {"phase": "Pending"},
        })
    }

    #[test]
    fn a_pod_runs_and_turns_ready_once_started() {
        assert_eq!(
            pod_status(&Json::from(pod()), &run(), "10.0.0.1", t(1)),
            None
        );
        let status = pod_status(&Json::from(pod()), &run(), "10.0.0.1", t(5)).unwrap();
        assert_eq!(status["phase"], "Running");
        assert!(meta::pod_ready(&json!({"status": status})));
        let c = &status["containerStatuses"][0];
        assert_eq!(
            (c["ready"].clone(), c["restartCount"].clone()),
            (json!(true), json!(0))
        );
        assert!(
            c["imageID"]
                .as_str()
                .unwrap()
                .starts_with("ghcr.io/acme/web@sha256:")
        );
        assert_eq!(status["startTime"], meta::time(t(0)));
        assert_eq!(status["qosClass"], "BestEffort");
        assert_eq!(
            pod_status(&Json::from(pod()), &run(), "10.0.0.1", t(50)),
            Some(status)
        );
    }

    #[test]
    fn restarts_and_node_outages_show_as_not_ready() {
        let mut crashing = run();
        crashing.ready = None;
        crashing.restarts = 2;
        crashing.last_run = Some((t(5), t(10)));
        crashing.started = t(10);
        let status = pod_status(&Json::from(pod()), &crashing, "h", t(12)).unwrap();
        assert!(!meta::pod_ready(&json!({"status": status.clone()})));
        assert_eq!(status["containerStatuses"][0]["restartCount"], 2);
        assert_eq!(
            status["containerStatuses"][0]["lastState"]["terminated"]["reason"],
            "Error"
        );
        let mut down = run();
        down.down_since = Some(t(20));
        let status = pod_status(&Json::from(pod()), &down, "h", t(30)).unwrap();
        let ready = meta::condition(&json!({"status": status}), "Ready")
            .cloned()
            .unwrap();
        assert_eq!(
            (ready["status"].clone(), ready["lastTransitionTime"].clone()),
            (json!("False"), json!(meta::time(t(20))))
        );
    }

    #[test]
    fn a_crash_looping_container_waits_in_crash_loop_back_off() {
        let mut crashing = run();
        crashing.ready = None;
        crashing.restarts = 2;
        crashing.last_run = Some((t(10), t(15)));
        crashing.started = t(25);
        crashing.back_off = Some(SignedDuration::from_secs(10));
        let mut pod = pod();
        pod["metadata"]["name"] = json!("web-1");
        pod["metadata"]["namespace"] = json!("shop");
        let status = pod_status(&Json::from(&pod), &crashing, "h", t(20)).unwrap();
        assert_eq!(status["phase"], "Running");
        assert!(!meta::pod_ready(&json!({"status": status.clone()})));
        let c = &status["containerStatuses"][0];
        assert_eq!(
            (c["ready"].clone(), c["started"].clone()),
            (json!(false), json!(false))
        );
        assert_eq!(c["state"]["waiting"]["reason"], "CrashLoopBackOff");
        assert_eq!(
            c["state"]["waiting"]["message"],
            "back-off 10s restarting failed container=web pod=web-1_shop(u)"
        );
        assert_eq!(c["lastState"]["terminated"]["reason"], "Error");
        assert_eq!(
            c["lastState"]["terminated"]["finishedAt"],
            meta::time(t(15))
        );
        // Restarted: running again (not Ready), until it exits once more.
        let status = pod_status(&Json::from(&pod), &crashing, "h", t(26)).unwrap();
        let c = &status["containerStatuses"][0];
        assert!(c["state"]["running"].is_object());
        assert_eq!(go_duration(SignedDuration::from_secs(80)), "1m20s");
        assert_eq!(go_duration(SignedDuration::from_mins(5)), "5m0s");
    }

    #[test]
    fn an_image_that_cannot_be_pulled_keeps_the_pod_pending() {
        let mut pulling = run();
        pulling.ready = None;
        pulling.unpullable = vec!["web".into()];
        let waiting = |at: i64| {
            let status = pod_status(&Json::from(pod()), &pulling, "h", t(at)).unwrap();
            assert_eq!(status["phase"], "Pending");
            let c = status["containerStatuses"][0].clone();
            assert_eq!(
                (c["ready"].clone(), c["restartCount"].clone()),
                (json!(false), json!(0))
            );
            c["state"]["waiting"].clone()
        };
        // First attempt at 5: ErrImagePull, then ImagePullBackOff until the next one at 15.
        let error = waiting(5);
        assert_eq!(error["reason"], "ErrImagePull");
        assert!(
            error["message"]
                .as_str()
                .unwrap()
                .ends_with("\"ghcr.io/acme/web:1.0\": ghcr.io/acme/web:1.0: not found")
        );
        let back_off = waiting(8);
        assert_eq!(back_off["reason"], "ImagePullBackOff");
        assert_eq!(
            back_off["message"],
            "Back-off pulling image \"ghcr.io/acme/web:1.0\""
        );
        assert_eq!(waiting(15)["reason"], "ErrImagePull");
        assert_eq!(waiting(20)["reason"], "ImagePullBackOff");
        // Attempts at 5, 15, 35, 75: the status changes at each, and 2 s after.
        assert_eq!(pull_attempt(t(5), t(5)).next_change, t(7));
        assert_eq!(pull_attempt(t(5), t(7)).next_change, t(15));
        assert_eq!(pull_attempt(t(5), t(40)).next_change, t(75));
    }

    #[test]
    fn finished_pods_report_their_exit() {
        let mut job = run();
        job.finish = Some((t(30), false));
        let status = pod_status(&Json::from(pod()), &job, "h", t(30)).unwrap();
        assert_eq!(status["phase"], "Failed");
        assert_eq!(
            status["containerStatuses"][0]["state"]["terminated"]["exitCode"],
            1
        );
        job.finish = Some((t(30), true));
        let status = pod_status(&Json::from(pod()), &job, "h", t(31)).unwrap();
        assert_eq!(status["phase"], "Succeeded");
        assert_eq!(
            status["containerStatuses"][0]["state"]["terminated"]["reason"],
            "Completed"
        );
    }

    #[test]
    fn image_ids_name_the_repository() {
        assert!(image_id("nginx:1.25").starts_with("nginx@sha256:"));
        assert!(image_id("localhost:5000/app").starts_with("localhost:5000/app@sha256:"));
        assert!(image_id("a/b:c@sha256:x").starts_with("a/b@sha256:"));
    }
}
