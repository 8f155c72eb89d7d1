//! The kubelets: they start the pods bound to their node (Running and Ready after
//! `timings.pod_start`), run Job pods to completion, restart containers after a reboot or in
//! a crash loop (backing off as the kubelet does: `CrashLoopBackOff`), keep retrying images
//! that cannot be pulled (`ErrImagePull`, `ImagePullBackOff`), stop deleted pods after
//! `timings.pod_stop`, and carry out updater pods' patches on their node. Pods bound to a
//! node that no longer exists are collected, as the pod garbage collector does.

use jiff::{SignedDuration, Timestamp};

use super::{
    faults::Updater,
    informer::Kind,
    meta::{self, Key},
    node::BASE_IMAGE,
    podstatus::pod_status,
    sim::Sim,
    work::Work,
    write::{KUBELET, Part},
};
use crate::json::Json;

/// How long a pod may stay bound to a node that does not exist before it is deleted.
const ORPHAN_QUARANTINE: SignedDuration = SignedDuration::from_secs(40);

/// What a kubelet knows of a pod it runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct PodRun {
    /// The pod's UID: a new pod of the same name is a new run.
    pub uid: String,
    /// The pod's IP.
    pub ip: String,
    /// When the kubelet took the pod on.
    pub bound: Timestamp,
    /// The node's boot the containers run in.
    pub boot: u64,
    /// When the current containers start running.
    pub started: Timestamp,
    /// When they turn Ready; `None`: never.
    pub ready: Option<Timestamp>,
    /// How many times the containers restarted.
    pub restarts: u32,
    /// When the previous containers ran, for `lastState`.
    pub last_run: Option<(Timestamp, Timestamp)>,
    /// After a crash, how long the kubelet backs off before restarting the containers: they
    /// wait in `CrashLoopBackOff` until `started`.
    pub back_off: Option<SignedDuration>,
    /// Containers (by name) whose image cannot be pulled: they never start, and the pod
    /// never turns Ready.
    pub unpullable: Vec<String>,
    /// Pods that run to completion: when they finish, and whether they succeed.
    pub finish: Option<(Timestamp, bool)>,
    /// Since when the node is down, while it is.
    pub down_since: Option<Timestamp>,
}

/// Whether a pod runs to completion rather than forever: a Job's pod or an updater.
fn completes(pod: &Json) -> bool {
    meta::controller_of(pod).is_some_and(|owner| owner.kind == "Job") || Updater::of(pod).is_some()
}

fn later(at: Timestamp, by: SignedDuration) -> Timestamp {
    at.saturating_add(by).unwrap_or(at)
}

impl Sim {
    /// Reconciles a pod on its node.
    pub fn sync_pod(&mut self, key: &Key) {
        let Some(pod) = self.cache.get(Kind::Pod, key).cloned() else {
            self.pods.remove(key);
            self.orphans.remove(key);
            self.stopping.remove(key);
            return;
        };
        let Some(node) = pod["spec"]["nodeName"]
            .as_str()
            .filter(|n| !n.is_empty())
            .map(str::to_owned)
        else {
            return;
        };
        if self
            .pods
            .get(key)
            .is_some_and(|run| run.uid != meta::uid(&pod))
        {
            self.pods.remove(key);
        }
        if meta::finished(&pod) {
            self.pods.remove(key);
            return;
        }
        let now = self.now();
        if self.cache.node(&node).is_none() {
            self.collect_orphan(key, now);
            return;
        }
        self.orphans.remove(key);
        if meta::terminating(&pod) {
            self.stop(key, &pod, now);
            return;
        }
        let Some((up, boots, down_since, host_ip)) = self
            .node_run(&node)
            .map(|n| (n.ready.0, n.boots, n.ready.1, n.ip.clone()))
        else {
            return;
        };
        if !self.pods.contains_key(key) {
            // A node that is down starts nothing; what already runs there turns not Ready.
            if !up && meta::phase(&pod) != "Running" {
                return;
            }
            let run = self.start(&pod, &node, now, boots);
            self.pods.insert(key.clone(), run);
        }
        let pod_start = self.timings.pod_start.signed();
        let restart_policy = pod["spec"]["restartPolicy"]
            .as_str()
            .unwrap_or("Always")
            .to_owned();
        let Some(run) = self.pods.get_mut(key) else {
            return;
        };
        if !up {
            run.down_since = Some(down_since);
        } else {
            if run.boot != boots {
                restart_after_boot(run, now, boots, &restart_policy, pod_start);
            }
            run.down_since = None;
            crash_loop(run, now, pod_start);
        }
        let finished = up && run.finish.is_some_and(|(at, _)| at <= now);
        let next = [
            Some(run.started),
            run.ready,
            run.finish.map(|(at, _)| at),
            crash_at(run, pod_start),
            pull_change(run, now),
        ]
        .into_iter()
        .flatten()
        .filter(|at| *at > now)
        .min();
        let status = pod_status(&pod, run, &host_ip, now);
        let outcome = run.finish.map(|(_, ok)| ok);
        if let Some(at) = next
            && up
        {
            self.timers.schedule(Work::Pod(key.clone()), at);
        }
        if let Some(status) = status
            && status != pod["status"]
        {
            self.update(Kind::Pod, key, KUBELET, Part::Status, |pod| {
                pod["status"] = status
            });
        }
        if finished {
            self.pods.remove(key);
            if outcome == Some(true) {
                self.patch_node(&pod, &node);
            }
        }
    }

    /// A new run of a pod on its node; a pod already running (the kubelet meets it after
    /// the fact) is taken over as its status describes it.
    fn start(&mut self, pod: &Json, node: &str, now: Timestamp, boot: u64) -> PodRun {
        if meta::phase(pod) == "Running" {
            return self.adopt(pod, node, now, boot);
        }
        let pod_start = self.timings.pod_start.signed();
        let (started, ready, finish) = if completes(pod) {
            let (duration, ok) = match Updater::of(pod) {
                Some(updater) => (
                    self.timings.updater.signed(),
                    !self.updater_fails(&updater, node),
                ),
                None => (pod_start, true),
            };
            (now, Some(now), Some((later(now, duration), ok)))
        } else {
            let started = later(now, pod_start);
            (started, (!self.pod_unhealthy(pod)).then_some(started), None)
        };
        let unpullable = self.unpullable(pod);
        let ready = ready.filter(|_| unpullable.is_empty());
        let ip = self
            .node_run(node)
            .map(|n| n.next_pod_ip())
            .unwrap_or_default();
        PodRun {
            uid: meta::uid(pod).to_owned(),
            ip,
            bound: now,
            boot,
            started,
            ready,
            restarts: 0,
            last_run: None,
            back_off: None,
            unpullable,
            finish,
            down_since: None,
        }
    }

    /// The containers of a pod whose image the scenario's registry does not have.
    fn unpullable(&self, pod: &Json) -> Vec<String> {
        if self.faults.unpullable_images.is_empty() {
            return Vec::new();
        }
        pod["spec"]["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|c| {
                c["image"]
                    .as_str()
                    .is_some_and(|image| self.faults.unpullable_images.iter().any(|u| u == image))
            })
            .filter_map(|c| c["name"].as_str().map(str::to_owned))
            .collect()
    }

    /// The run of a pod found running.
    fn adopt(&mut self, pod: &Json, node: &str, now: Timestamp, boot: u64) -> PodRun {
        let status = &pod["status"];
        let container = &status["containerStatuses"][0];
        let started = meta::parse_time(&container["state"]["running"]["startedAt"]).unwrap_or(now);
        let ready_since = meta::condition(pod, "Ready")
            .filter(|c| c["status"] == "True")
            .map(|c| meta::parse_time(&c["lastTransitionTime"]).unwrap_or(started));
        let ready = match ready_since {
            _ if self.pod_unhealthy(pod) => None,
            Some(since) => Some(since),
            None => Some(now.max(started)),
        };
        let finish = completes(pod).then(|| {
            let ok = Updater::of(pod).is_none_or(|u| !self.updater_fails(&u, node));
            let duration = if Updater::of(pod).is_some() {
                self.timings.updater
            } else {
                self.timings.pod_start
            };
            (later(started, duration.signed()).max(now), ok)
        });
        let ip = match status["podIP"].as_str() {
            Some(ip) => ip.to_owned(),
            None => self
                .node_run(node)
                .map(|n| n.next_pod_ip())
                .unwrap_or_default(),
        };
        PodRun {
            uid: meta::uid(pod).to_owned(),
            ip,
            bound: meta::parse_time(&status["startTime"]).unwrap_or(now),
            boot,
            started,
            ready,
            restarts: container["restartCount"]
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(0),
            last_run: None,
            back_off: None,
            unpullable: Vec::new(),
            finish,
            down_since: None,
        }
    }

    /// Stops a deleted pod's containers (`timings.pod_stop`, or until its grace period ends
    /// if that comes first), then removes the pod. A pod whose containers the kubelet never
    /// ran goes at once.
    fn stop(&mut self, key: &Key, pod: &Json, now: Timestamp) {
        let stop_at = if self.pods.contains_key(key) {
            let deadline = meta::parse_time(&pod["metadata"]["deletionTimestamp"]).unwrap_or(now);
            let since = *self.stopping.entry(key.clone()).or_insert(now);
            later(since, self.timings.pod_stop.signed()).min(deadline.max(since))
        } else {
            now
        };
        if now >= stop_at {
            self.stopping.remove(key);
            self.pods.remove(key);
            self.delete(Kind::Pod, key, Some(0));
        } else {
            self.timers.schedule(Work::Pod(key.clone()), stop_at);
        }
    }

    /// Deletes a pod whose node is gone, after a quarantine.
    fn collect_orphan(&mut self, key: &Key, now: Timestamp) {
        let since = *self.orphans.entry(key.clone()).or_insert(now);
        let due = later(since, ORPHAN_QUARANTINE);
        if now >= due {
            self.orphans.remove(key);
            self.pods.remove(key);
            self.delete(Kind::Pod, key, Some(0));
        } else {
            self.timers.schedule(Work::Pod(key.clone()), due);
        }
    }

    /// Carries out a successful updater pod's patch on its node.
    fn patch_node(&mut self, pod: &Json, node: &str) {
        let Some(updater) = Updater::of(pod) else {
            return;
        };
        let image = match updater.action.as_str() {
            "apply" => Some(format!("{BASE_IMAGE} ({})", updater.version)),
            "rollback" if updater.previous.is_empty() => Some(BASE_IMAGE.to_owned()),
            "rollback" => Some(format!("{BASE_IMAGE} ({})", updater.previous)),
            _ => None,
        };
        let faulty = self.unhealthy.contains(&format!("Node/{node}"));
        let pressure = match updater.action.as_str() {
            "apply" if faulty => Some(true),
            "rollback" => Some(false),
            _ => None,
        };
        let reboot = self.wants_reboot(pod);
        self.patched(node, image, pressure, reboot);
    }
}

/// Restarts a run's containers after its node came back from a reboot.
fn restart_after_boot(
    run: &mut PodRun,
    now: Timestamp,
    boots: u64,
    restart_policy: &str,
    pod_start: SignedDuration,
) {
    run.boot = boots;
    run.back_off = None;
    let went_down = run.down_since.unwrap_or(now);
    if run.started > went_down {
        // The containers had not started yet: they start afresh.
        run.started = later(now, pod_start);
        run.ready = run.ready.map(|_| run.started);
        return;
    }
    match (run.finish, restart_policy) {
        (Some(_), "Never") => run.finish = Some((now, false)),
        (Some((at, ok)), _) => {
            let duration = at.duration_since(run.started).max(SignedDuration::ZERO);
            run.last_run = Some((run.started, went_down));
            run.restarts += 1;
            run.started = now;
            run.ready = Some(now);
            run.finish = Some((later(now, duration), ok));
        }
        (None, _) => {
            run.last_run = Some((run.started, went_down));
            run.restarts += 1;
            run.started = now;
            run.ready = run.ready.map(|_| later(now, pod_start));
        }
    }
}

/// When a crash-looping run's containers next exit: `pod_start` after they started. (A run
/// whose images cannot be pulled never starts, so never crashes.)
fn crash_at(run: &PodRun, pod_start: SignedDuration) -> Option<Timestamp> {
    (run.ready.is_none()
        && run.finish.is_none()
        && run.unpullable.is_empty()
        && !pod_start.is_zero())
    .then(|| later(run.started, pod_start))
}

/// The kubelet's back-off before restarting a container after its `crashes`-th exit: none
/// after the first, then 10 s, doubling up to 5 minutes (as `kubelet`'s `backOff` with its
/// defaults).
pub(super) fn restart_back_off(crashes: u32) -> SignedDuration {
    const MAX: SignedDuration = SignedDuration::from_mins(5);
    match crashes {
        0 | 1 => SignedDuration::ZERO,
        n => SignedDuration::from_secs(10)
            .checked_mul(1i32 << (n - 2).min(8))
            .map_or(MAX, |d| d.min(MAX)),
    }
}

/// Crashes and restarts a crash-looping run's containers up to `now`: each exits
/// `pod_start` after it started and is restarted after the kubelet's back-off.
fn crash_loop(run: &mut PodRun, now: Timestamp, pod_start: SignedDuration) {
    while let Some(at) = crash_at(run, pod_start)
        && at <= now
    {
        run.restarts += 1;
        let back_off = restart_back_off(run.restarts);
        run.last_run = Some((run.started, at));
        run.started = later(at, back_off);
        run.back_off = (!back_off.is_zero()).then_some(back_off);
    }
}

/// When the status of a run whose images cannot be pulled changes next after `now`.
fn pull_change(run: &PodRun, now: Timestamp) -> Option<Timestamp> {
    if run.unpullable.is_empty() || now < run.started {
        return None;
    }
    Some(super::podstatus::pull_attempt(run.started, now).next_change)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + s).unwrap()
    }

    fn run(ready: bool) -> PodRun {
        PodRun {
            uid: "u".into(),
            ip: "ip".into(),
            bound: t(0),
            boot: 0,
            started: t(5),
            ready: ready.then_some(t(5)),
            restarts: 0,
            last_run: None,
            back_off: None,
            unpullable: Vec::new(),
            finish: None,
            down_since: None,
        }
    }

    #[test]
    fn a_crash_loop_backs_off_as_the_kubelet_does() {
        let five = SignedDuration::from_secs(5);
        let mut r = run(false);
        crash_loop(&mut r, t(9), five);
        assert_eq!(r.restarts, 0);
        // Started at 5, exits at 10 and restarts at once; exits at 15 and backs off 10 s.
        crash_loop(&mut r, t(21), five);
        assert_eq!(
            (r.restarts, r.started, r.last_run, r.back_off),
            (
                2,
                t(25),
                Some((t(10), t(15))),
                Some(SignedDuration::from_secs(10))
            )
        );
        // Runs 25–30, backs off 20 s; runs 50–55, backs off 40 s.
        crash_loop(&mut r, t(60), five);
        assert_eq!(
            (r.restarts, r.started, r.back_off),
            (4, t(95), Some(SignedDuration::from_secs(40)))
        );
        assert_eq!(restart_back_off(1), SignedDuration::ZERO);
        assert_eq!(restart_back_off(6), SignedDuration::from_secs(160));
        assert_eq!(restart_back_off(7), SignedDuration::from_mins(5));
        assert_eq!(restart_back_off(40), SignedDuration::from_mins(5));
        let mut healthy = run(true);
        crash_loop(&mut healthy, t(100), five);
        assert_eq!(healthy.restarts, 0);
        let mut unpullable = run(false);
        unpullable.unpullable = vec!["web".into()];
        crash_loop(&mut unpullable, t(100), five);
        assert_eq!(unpullable.restarts, 0, "what never started never crashes");
    }

    #[test]
    fn a_reboot_restarts_containers_and_readiness_follows() {
        let five = SignedDuration::from_secs(5);
        let mut r = run(true);
        r.down_since = Some(t(50));
        restart_after_boot(&mut r, t(140), 1, "Always", five);
        assert_eq!(
            (r.restarts, r.started, r.ready, r.boot),
            (1, t(140), Some(t(145)), 1)
        );
        assert_eq!(r.last_run, Some((t(5), t(50))));
        let mut job = run(true);
        job.finish = Some((t(100), true));
        job.down_since = Some(t(50));
        restart_after_boot(&mut job, t(140), 1, "Never", five);
        assert_eq!(job.finish, Some((t(140), false)));
    }
}
