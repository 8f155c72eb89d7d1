//! `podsReady`: the target's pods Ready, the workload's own rollout complete, no container
//! restarted during the soak; and the fatal signals (a crash loop, an image that cannot be
//! pulled) that say a pod the change made will never turn Ready.

use jiff::Timestamp;
use patchpilot_engine::{image::ContainerImage, machine::FatalReason};

use super::{Changed, CheckVerdict, Subject};
use crate::pod::PodFacts;

/// Whether the pod's `Ready` condition is `True`.
pub fn pod_ready(pod: &PodFacts) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn pod_name(pod: &PodFacts) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or(""),
        pod.metadata.name.as_deref().unwrap_or("")
    )
}

/// When a pod was scheduled (or created, if the scheduler has not said).
fn scheduled_at(pod: &PodFacts) -> Option<Timestamp> {
    let conditions = pod.status.as_ref().and_then(|s| s.conditions.as_ref());
    let scheduled = conditions
        .into_iter()
        .flatten()
        .find(|c| c.type_ == "PodScheduled" && c.status == "True");
    scheduled
        .and_then(|c| c.last_transition_time.as_ref())
        .or(pod.metadata.creation_timestamp.as_ref())
        .map(|t| t.0)
}

fn restarts(pod: &PodFacts) -> i32 {
    let statuses = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref());
    statuses
        .into_iter()
        .flatten()
        .map(|c| c.restart_count)
        .sum()
}

/// Whether `pod` runs every container of `images` with its image.
fn runs(pod: &PodFacts, images: &[ContainerImage]) -> bool {
    let containers = pod.spec.as_ref().map(|s| s.containers.as_slice());
    images.iter().all(|wanted| {
        containers.into_iter().flatten().any(|c| {
            c.name == wanted.container && c.image.as_deref() == Some(wanted.image.as_str())
        })
    })
}

/// The first fatal signal (by pod and container name) among the pods the target's change
/// made: a container waiting for a reason the kubelet does not get past by itself.
fn fatal_signal(subject: &Subject<'_>) -> Option<(FatalReason, String)> {
    let mut signals = Vec::new();
    for pod in subject
        .pods
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
    {
        let (made, since) = match subject.changed {
            Changed::Revision(images) if runs(pod, images) => (true, None),
            Changed::Revision(_) | Changed::Since(None) => continue,
            Changed::Since(Some(since)) => {
                let created = pod.metadata.creation_timestamp.as_ref().map(|t| t.0);
                (created.is_some_and(|at| at >= since), Some(since))
            }
        };
        let status = pod.status.as_ref();
        let containers = [
            status.and_then(|s| s.init_container_statuses.as_ref()),
            status.and_then(|s| s.container_statuses.as_ref()),
        ];
        for container in containers.into_iter().flatten().flatten() {
            let Some(waiting) = container.state.as_ref().and_then(|s| s.waiting.as_ref()) else {
                continue;
            };
            let Some(reason) = waiting
                .reason
                .as_deref()
                .and_then(FatalReason::from_waiting)
            else {
                continue;
            };
            let last_exit = container
                .last_state
                .as_ref()
                .and_then(|s| s.terminated.as_ref());
            // On a node, an older pod counts only for a crash since the change.
            let exited = last_exit.and_then(|t| t.finished_at.as_ref()).map(|t| t.0);
            let crashed_since = reason == FatalReason::CrashLoopBackOff
                && since.zip(exited).is_some_and(|(since, at)| at >= since);
            if !(made || crashed_since) {
                continue;
            }
            // What says why: the last exit of a crash loop (the kubelet's message only
            // repeats the back-off), the kubelet's message otherwise.
            let detail = match (reason, last_exit) {
                (FatalReason::CrashLoopBackOff, Some(exit)) => format!(
                    ", last exit code {}{}",
                    exit.exit_code,
                    exit.reason
                        .as_deref()
                        .map_or_else(String::new, |r| format!(" ({r})"))
                ),
                _ => waiting
                    .message
                    .as_deref()
                    .filter(|m| !m.is_empty())
                    .map_or_else(String::new, |m| format!(": {m}")),
            };
            signals.push((pod_name(pod), container.name.clone(), reason, detail));
        }
    }
    signals.sort();
    signals
        .into_iter()
        .next()
        .map(|(pod, container, reason, detail)| {
            let message = format!("{pod} container {container}: {}{detail}", reason.as_str());
            (reason, message)
        })
}

/// Pods Ready (and, for workloads, their rollout complete and no container restarted during
/// the soak). A pod that is not Ready yet but is starting (scheduled less than
/// `health.timeout` ago, no container restarted) is settling, not failing: pods land on a
/// node again once it is uncordoned, and need their time to start. A pod the change made
/// that will never turn Ready (see [`fatal_signal`]) is fatal, even while a workload's own
/// rollout is still progressing: it would wait for that pod.
pub(super) fn pods_ready(subject: &Subject<'_>) -> CheckVerdict {
    if let Some((reason, message)) = fatal_signal(subject) {
        return CheckVerdict::Fatal(reason, message);
    }
    if let Err(why) = subject.rollout.clone() {
        return CheckVerdict::Fail(why);
    }
    let running = subject.pods.iter().filter(|p| {
        let terminal = matches!(
            p.status.as_ref().and_then(|s| s.phase.as_deref()),
            Some("Succeeded" | "Failed")
        );
        !terminal && p.metadata.deletion_timestamp.is_none()
    });
    let mut unready: Vec<String> = Vec::new();
    let mut starting: Vec<String> = Vec::new();
    let mut settles_by: Option<Timestamp> = None;
    let mut restarted: Vec<String> = Vec::new();
    for pod in running {
        if !pod_ready(pod) {
            let deadline = scheduled_at(pod).and_then(|at| at.checked_add(subject.startup).ok());
            match deadline {
                Some(deadline) if deadline > subject.now && restarts(pod) == 0 => {
                    starting.push(pod_name(pod));
                    settles_by = Some(settles_by.map_or(deadline, |by| by.min(deadline)));
                }
                _ => unready.push(pod_name(pod)),
            }
        }
        // SPEC 2.2: "no restarts" is a rule for workloads; a node's pods are only Ready.
        if let Some(since) = subject.soaking_since.filter(|_| subject.node.is_none()) {
            let statuses = pod
                .status
                .as_ref()
                .and_then(|s| s.container_statuses.as_ref());
            let restarted_since = statuses.into_iter().flatten().any(|c| {
                let finished = c
                    .last_state
                    .as_ref()
                    .and_then(|s| s.terminated.as_ref())
                    .and_then(|t| t.finished_at.as_ref());
                finished.is_some_and(|at| at.0 >= since)
            });
            if restarted_since {
                restarted.push(pod_name(pod));
            }
        }
    }
    if !unready.is_empty() {
        return CheckVerdict::Fail(format!(
            "{} pod(s) not Ready: {}",
            unready.len(),
            shorten(&unready)
        ));
    }
    if !restarted.is_empty() {
        return CheckVerdict::Fail(format!(
            "container restarts during the soak: {}",
            shorten(&restarted)
        ));
    }
    if !starting.is_empty() {
        return CheckVerdict::Settling(
            format!("{} pod(s) starting: {}", starting.len(), shorten(&starting)),
            settles_by,
        );
    }
    CheckVerdict::Pass
}

fn shorten(names: &[String]) -> String {
    let mut shown = names.iter().take(3).cloned().collect::<Vec<_>>().join(", ");
    if names.len() > 3 {
        shown.push_str(&format!(" and {} more", names.len() - 3));
    }
    shown
}

#[cfg(test)]
mod tests {
    use jiff::SignedDuration;
    use patchpilot_engine::target::TargetId;
    use serde_json::{Value, json};

    use super::{super::testkit::*, *};

    #[test]
    fn pods_ready_passes_when_every_running_pod_is_ready() {
        let target = web();
        let mut done = pod("job-1", false, 60);
        done["status"]["phase"] = json!("Succeeded");
        let mut failed = pod("job-2", false, 60);
        failed["status"]["phase"] = json!("Failed");
        let mut leaving = pod("web-old", false, 60);
        leaving["metadata"]["deletionTimestamp"] = json!(ago(1).to_string());
        let pods = pods([pod("web-1", true, 60), done, failed, leaving]);
        assert_eq!(pods_ready(&subject(&target, &pods)), CheckVerdict::Pass);
        assert_eq!(pods_ready(&subject(&target, &[])), CheckVerdict::Pass);
    }

    #[test]
    fn pods_ready_fails_an_incomplete_workload_rollout_with_its_reason() {
        let target = web();
        let pods = pods([pod("web-1", true, 60)]);
        let subject = Subject {
            rollout: Err("1 of 3 updated replicas are available".into()),
            ..subject(&target, &pods)
        };
        assert_eq!(
            pods_ready(&subject),
            CheckVerdict::Fail("1 of 3 updated replicas are available".into())
        );
    }

    #[test]
    fn a_pod_still_starting_within_the_timeout_is_settling() {
        let target = TargetId::node("n1");
        let pods = pods([pod("web-1", true, 60), pod("web-2", false, 3)]);
        assert_eq!(
            pods_ready(&subject(&target, &pods)),
            CheckVerdict::Settling(
                "1 pod(s) starting: shop/web-2".into(),
                Some(ago(3) + SignedDuration::from_mins(STARTUP_MINS))
            )
        );
        // Two starting pods settle by the earlier deadline.
        let two = self::pods([pod("web-2", false, 3), pod("web-3", false, 8)]);
        assert_eq!(
            pods_ready(&subject(&target, &two)),
            CheckVerdict::Settling(
                "2 pod(s) starting: shop/web-2, shop/web-3".into(),
                Some(ago(8) + SignedDuration::from_mins(STARTUP_MINS))
            )
        );
    }

    #[test]
    fn a_pod_not_ready_past_the_timeout_or_after_a_restart_fails() {
        let target = TargetId::node("n1");
        // Scheduled exactly `health.timeout` ago: its time is up.
        let late = pods([pod("web-1", false, STARTUP_MINS)]);
        assert_eq!(
            pods_ready(&subject(&target, &late)),
            CheckVerdict::Fail("1 pod(s) not Ready: shop/web-1".into())
        );
        let mut crashing = pod("web-2", false, 1);
        crashing["status"]["containerStatuses"][0]["restartCount"] = json!(2);
        let crashing = pods([crashing]);
        assert_eq!(
            pods_ready(&subject(&target, &crashing)),
            CheckVerdict::Fail("1 pod(s) not Ready: shop/web-2".into())
        );
        // A failing pod outweighs one still starting.
        let both = pods([pod("web-3", false, 2), pod("web-4", false, 30)]);
        assert_eq!(
            pods_ready(&subject(&target, &both)),
            CheckVerdict::Fail("1 pod(s) not Ready: shop/web-4".into())
        );
    }

    #[test]
    fn starting_counts_from_scheduling_not_creation() {
        let target = TargetId::node("n1");
        // Created an hour ago, scheduled two minutes ago (it waited for a node).
        let mut waited = pod("web-1", false, 2);
        waited["metadata"]["creationTimestamp"] = json!(ago(60).to_string());
        let waited = pods([waited]);
        assert!(
            matches!(
                pods_ready(&subject(&target, &waited)),
                CheckVerdict::Settling(..)
            ),
            "{:?}",
            pods_ready(&subject(&target, &waited))
        );
        // Not scheduled yet: the creation time counts.
        let mut pending = pod("web-2", false, 60);
        pending["status"]["conditions"] = json!([]);
        pending["metadata"]["creationTimestamp"] = json!(ago(1).to_string());
        let pending = pods([pending]);
        assert_eq!(
            pods_ready(&subject(&target, &pending)),
            CheckVerdict::Settling(
                "1 pod(s) starting: shop/web-2".into(),
                Some(ago(1) + SignedDuration::from_mins(STARTUP_MINS))
            )
        );
    }

    #[test]
    fn many_unready_pods_are_named_three_at_a_time() {
        let target = TargetId::node("n1");
        let pods = pods((1..=5).map(|i| pod(&format!("web-{i}"), false, 30)));
        assert_eq!(
            pods_ready(&subject(&target, &pods)),
            CheckVerdict::Fail(
                "5 pod(s) not Ready: shop/web-1, shop/web-2, shop/web-3 and 2 more".into()
            )
        );
    }

    #[test]
    fn a_container_restart_during_the_soak_fails() {
        let target = web();
        let restarted_at = |mins: i64| {
            let mut p = pod("web-1", true, 60);
            p["status"]["containerStatuses"][0]["restartCount"] = json!(1);
            p["status"]["containerStatuses"][0]["lastState"] =
                json!({"terminated": {"exitCode": 137, "finishedAt": ago(mins).to_string()}});
            p
        };
        let during = pods([restarted_at(2)]);
        let soaking = Subject {
            soaking_since: Some(ago(5)),
            ..subject(&target, &during)
        };
        assert_eq!(
            pods_ready(&soaking),
            CheckVerdict::Fail("container restarts during the soak: shop/web-1".into())
        );
        // Before the soak began, or with no soak yet, the restart does not count.
        let before = pods([restarted_at(7)]);
        let soaking = Subject {
            soaking_since: Some(ago(5)),
            ..subject(&target, &before)
        };
        assert_eq!(pods_ready(&soaking), CheckVerdict::Pass);
        assert_eq!(pods_ready(&subject(&target, &during)), CheckVerdict::Pass);
        // On a node only readiness counts (SPEC 2.2): the pod restarted but is Ready.
        let ready_node = node(&[("Ready", "True")]);
        let node_target = TargetId::node("worker-1");
        let on_a_node = Subject {
            node: Some(&ready_node),
            soaking_since: Some(ago(5)),
            ..subject(&node_target, &during)
        };
        assert_eq!(pods_ready(&on_a_node), CheckVerdict::Pass);
    }

    #[test]
    fn new_pods_that_will_never_be_ready_are_fatal_while_the_rollout_progresses() {
        let target = web();
        let new = nginx("nginx:1.27.4");
        let pods = pods([
            pod("web-old", true, 60),
            waiting("web-new", "nginx:1.27.4", 1, "CrashLoopBackOff", Some(0)),
        ]);
        let progressing = Subject {
            rollout: Err("1 of 3 updated replicas are available".into()),
            changed: Changed::Revision(&new),
            ..subject(&target, &pods)
        };
        assert_eq!(
            pods_ready(&progressing),
            CheckVerdict::Fatal(
                FatalReason::CrashLoopBackOff,
                "shop/web-new container web: CrashLoopBackOff, last exit code 1".into()
            )
        );
        // Rolling back to 1.27.3: the crash-looping pods of 1.27.4 are not the rollback's.
        let old = nginx("nginx:1.27.3");
        let rolling_back = Subject {
            changed: Changed::Revision(&old),
            ..progressing
        };
        assert_eq!(
            pods_ready(&rolling_back),
            CheckVerdict::Fail("1 of 3 updated replicas are available".into())
        );
        // Waiting reasons that pass by themselves are not fatal.
        let creating = self::pods([waiting(
            "web-new",
            "nginx:1.27.4",
            1,
            "ContainerCreating",
            None,
        )]);
        let starting = Subject {
            changed: Changed::Revision(&new),
            ..subject(&target, &creating)
        };
        assert!(matches!(pods_ready(&starting), CheckVerdict::Settling(..)));
        // An image that cannot be pulled.
        let pulling = self::pods([waiting(
            "web-new",
            "nginx:1.27.4",
            1,
            "ImagePullBackOff",
            None,
        )]);
        let pulling = Subject {
            changed: Changed::Revision(&new),
            ..subject(&target, &pulling)
        };
        assert!(matches!(
            pods_ready(&pulling),
            CheckVerdict::Fatal(FatalReason::ImagePullBackOff, _)
        ));
    }

    #[test]
    fn on_a_node_only_what_happened_since_the_change_is_fatal() {
        let target = TargetId::node("n1");
        let since = Changed::Since(Some(ago(10)));
        let check = |pod: Value, changed: Changed<'static>| {
            let pods = pods([pod]);
            let subject = Subject {
                changed,
                ..subject(&target, &pods)
            };
            pods_ready(&subject)
        };
        // A DaemonSet pod from before the change that crashed since: fatal.
        let crashed = waiting("agent-1", "agent:1", 60, "CrashLoopBackOff", Some(2));
        assert!(matches!(
            check(crashed.clone(), since),
            CheckVerdict::Fatal(FatalReason::CrashLoopBackOff, _)
        ));
        // Its last exit came before the change: not the change's doing.
        let before = waiting("agent-1", "agent:1", 60, "CrashLoopBackOff", Some(30));
        assert!(matches!(check(before, since), CheckVerdict::Fail(_)));
        // The updater has not finished: nothing is its doing yet.
        assert!(matches!(
            check(crashed, Changed::Since(None)),
            CheckVerdict::Fail(_)
        ));
        // A pod created since that cannot pull its image: fatal; an older one: not.
        let pulling = waiting("web-1", "web:2", 3, "ErrImagePull", None);
        assert!(matches!(
            check(pulling, since),
            CheckVerdict::Fatal(FatalReason::ErrImagePull, _)
        ));
        let old = waiting("web-1", "web:2", 30, "ErrImagePull", None);
        assert!(!matches!(check(old, since), CheckVerdict::Fatal(..)));
    }
}
