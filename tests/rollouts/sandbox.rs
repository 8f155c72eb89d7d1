//! The sandbox itself, as scenarios use it: steps, operator replicas that exit, events on the
//! virtual clock, and the health checks the simulated network answers.

use jiff::Timestamp;

use crate::{case::Case, harness::Rules};

/// Issue 10, item 18: a step runs once, on what it matched when it ran. Approving "the
/// November patch" must not also approve the next version's rollout.
#[tokio::test(start_paused = true)]
async fn a_step_runs_once_on_what_it_matched() {
    let outcome = Case::new()
        .node_policy("os", "spec: {approval: {mode: Manual}}")
        .scenario(
            "
end: {after: 8h, rolloutsFinished: false}
steps:
  - name: approve the v2 patch
    after: 10m
    when: {apiVersion: patchpilot.dev/v1alpha1, kind: PatchRollout, field: status.phase, equals: AwaitingApproval}
    patch: {spec: {approved: true}}
  - name: a newer patch
    after: 4h
    when: {apiVersion: patchpilot.dev/v1alpha1, kind: PatchPolicy}
    patch: {spec: {patch: {version: v3}}}
",
        )
        .run()
        .await;
    outcome.check(&[Rules::new("os", 1)]);
    let rollouts = outcome.rollouts("os");
    let phases: Vec<(&str, &str)> = rollouts
        .iter()
        .map(|r| {
            (
                r["spec"]["patch"]["version"].as_str().unwrap(),
                r["status"]["phase"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        phases,
        [("v2", "Succeeded"), ("v3", "AwaitingApproval")],
        "the approval step ran again on the v3 rollout"
    );
    let approvals: Vec<Timestamp> = outcome
        .step_writes()
        .filter(|e| e["objectRef"]["resource"] == "patchrollouts")
        .map(crate::harness::timestamp)
        .collect();
    assert_eq!(approvals.len(), 1, "{approvals:?}");
}

/// Issue 10, item 3: the sandbox restarts an operator replica that exited, as a Deployment's
/// kubelet would. Both replicas lose the Lease in turn (a step hands it to an intruder that
/// never renews); without restarts, the second loss leaves no operator and the rollout
/// stalls for ever.
#[tokio::test(start_paused = true)]
async fn an_operator_replica_that_exits_is_restarted() {
    let take_the_lease = |name: &str, after: &str| {
        format!(
            "
  - name: {name}
    after: {after}
    when: {{apiVersion: coordination.k8s.io/v1, kind: Lease, namespace: patchpilot-system}}
    patch: {{spec: {{holderIdentity: intruder}}}}"
        )
    };
    let outcome = Case::new()
        .node_policy("os", "")
        .scenario(&format!(
            "
end: {{after: 6h}}
operator: {{replicas: 2}}
steps:{}{}
",
            take_the_lease("the first takeover", "5m"),
            take_the_lease("the second takeover", "20m"),
        ))
        .run()
        .await;
    outcome.check(&[Rules::new("os", 1)]);
    assert_eq!(outcome.phase("os"), "Succeeded");
    // Who held the Lease, in order of the changes of holder: the operator's writes and the
    // steps'.
    let mut holders: Vec<(Timestamp, String)> = Vec::new();
    for write in outcome.operator_writes().chain(outcome.step_writes()) {
        if write["objectRef"]["resource"] != "leases" {
            continue;
        }
        let holder = write["requestObject"]["spec"]["holderIdentity"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        holders.push((crate::harness::timestamp(write), holder));
    }
    holders.sort();
    holders.dedup_by(|b, a| a.1 == b.1);
    let names: Vec<&str> = holders.iter().map(|(_, h)| h.as_str()).collect();
    assert_eq!(names.len(), 5, "{holders:?}");
    assert_eq!(
        (names[1], names[3]),
        ("intruder", "intruder"),
        "{holders:?}"
    );
    // The other replica took over from the first once the intruder's lease expired; the
    // second time, both replicas had exited, and one of them, restarted, took over.
    assert_ne!(names[0], names[2], "{holders:?}");
    let second_takeover: Timestamp = "2026-11-28T00:20:00Z".parse().unwrap();
    assert!(
        names[4].starts_with("patchpilot-sandbox-")
            && holders[4].0 > second_takeover
            && holders[4].0 < second_takeover + jiff::SignedDuration::from_secs(30),
        "{holders:?}"
    );
}

/// Issue 10, item 16: the operator stamps its events with its clock, the sandbox's virtual
/// one: within the scenario's time, and at the instant the API server stored them.
#[tokio::test(start_paused = true)]
async fn events_are_stamped_with_the_virtual_clock() {
    let outcome = Case::new().node_policy("os", "").run().await;
    assert_eq!(outcome.phase("os"), "Succeeded");
    let start: Timestamp = crate::case::START.parse().unwrap();
    let end = outcome
        .log
        .iter()
        .map(crate::harness::timestamp)
        .max()
        .unwrap();
    let events = outcome.objects("events.k8s.io", "v1", "events");
    assert!(events.len() >= 5, "{events:#?}");
    for event in &events {
        let at: Timestamp = event["eventTime"].as_str().unwrap().parse().unwrap();
        let stored: Timestamp = event["metadata"]["creationTimestamp"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            start <= at && at <= end,
            "{at} outside {start}..{end}: {event:#}"
        );
        // creationTimestamp has whole seconds.
        assert!(
            stored <= at && at < stored + jiff::SignedDuration::from_secs(1),
            "stamped {at}, stored at {stored}: {event:#}"
        );
        if let Some(last) = event["series"]["lastObservedTime"].as_str() {
            let last: Timestamp = last.parse().unwrap();
            assert!(at <= last && last <= end, "{event:#}");
        }
    }
}

/// The operator's event recorder keeps kube-runtime's semantics on its own clock: the same
/// event again within six minutes is a series on the first one; later, about another
/// related object, or with another note, it is a new event.
#[tokio::test(start_paused = true)]
async fn repeated_events_make_a_series_in_virtual_time() {
    use k8s_openapi::api::{core::v1::ObjectReference, events::v1::Event as K8sEvent};
    use patchpilot::{
        controller::events::{Event, EventType, Recorder, Reporter},
        sandbox::{Sandbox, scenario::Scenario},
    };

    let scenario = Scenario::parse(
        std::path::Path::new("scenario.yaml"),
        &format!(
            "{{apiVersion: sandbox.patchpilot.dev/v1alpha1, kind: Scenario, metadata: {{name: events}}, spec: {{start: '{}'}}}}",
            crate::case::START
        ),
    )
    .unwrap();
    let sandbox = Sandbox::new(scenario, patchpilot::sandboxed::options()).unwrap();
    let client = sandbox.client("events-test");
    let clock = sandbox.store().clock().clone();
    let reporter = Reporter {
        controller: "patchpilot".into(),
        instance: Some("patchpilot-0".into()),
    };
    let recorder = Recorder::new(client.clone(), reporter, clock);
    let rollout = ObjectReference {
        api_version: Some("patchpilot.dev/v1alpha1".into()),
        kind: Some("PatchRollout".into()),
        name: Some("os-1".into()),
        ..ObjectReference::default()
    };
    let node = |name: &str| ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Node".into()),
        name: Some(name.into()),
        ..ObjectReference::default()
    };
    let event = |related: &str| Event {
        type_: EventType::Normal,
        reason: "TargetUpdated".into(),
        note: Some(format!("{related} updated")),
        action: "Update".into(),
        secondary: Some(node(related)),
    };
    let minutes = |n: u64| tokio::time::sleep(std::time::Duration::from_secs(60 * n));
    recorder.publish(&event("n1"), &rollout).await.unwrap();
    minutes(1).await;
    recorder.publish(&event("n1"), &rollout).await.unwrap();
    recorder.publish(&event("n2"), &rollout).await.unwrap();
    minutes(5).await;
    recorder.publish(&event("n1"), &rollout).await.unwrap();
    minutes(7).await;
    recorder.publish(&event("n1"), &rollout).await.unwrap();
    // The same event saying something new is an event of its own: a note cannot change.
    minutes(1).await;
    let mut news = event("n1");
    news.note = Some("n1 updated again".into());
    recorder.publish(&news, &rollout).await.unwrap();

    let api: kube::Api<K8sEvent> = kube::Api::namespaced(client, "default");
    let mut events: Vec<K8sEvent> = api.list(&Default::default()).await.unwrap().items;
    events.sort_by_key(|e| e.event_time.as_ref().unwrap().0);
    // Each event as "related at eventTime", with "×count until lastObservedTime" for a series.
    let seen: Vec<String> = events
        .iter()
        .map(|e| {
            let mut line = format!(
                "{} at {}",
                e.related.as_ref().unwrap().name.as_deref().unwrap(),
                e.event_time.as_ref().unwrap().0
            );
            if let Some(series) = &e.series {
                line += &format!(" ×{} until {}", series.count, series.last_observed_time.0);
            }
            line
        })
        .collect();
    assert_eq!(
        seen,
        [
            "n1 at 2026-11-28T00:00:00Z ×3 until 2026-11-28T00:06:00Z",
            "n2 at 2026-11-28T00:01:00Z",
            "n1 at 2026-11-28T00:13:00Z",
            "n1 at 2026-11-28T00:14:00Z",
        ]
    );
    assert_eq!(
        events.last().unwrap().note.as_deref(),
        Some("n1 updated again")
    );
    for e in &events {
        assert_eq!(e.reporting_controller.as_deref(), Some("patchpilot"));
        assert_eq!(e.reporting_instance.as_deref(), Some("patchpilot-0"));
        assert_eq!(e.regarding.as_ref(), Some(&rollout));
    }
}

/// Four workloads behind the HTTP check of the base workload policy: `web-1` healthy (the
/// canary), `web-2` answering 503 by the scenario's faults, `web-3` behind a Service with no
/// ready endpoints, `web-4` without a Service.
#[tokio::test(start_paused = true)]
async fn http_checks_get_what_the_simulated_cluster_answers() {
    let service = |name: &str, app: &str| {
        format!(
            "{{apiVersion: v1, kind: Service, metadata: {{name: {name}, namespace: shop}}, \
             spec: {{selector: {{app: {app}}}, ports: [{{port: 80, targetPort: 8080}}]}}}}"
        )
    };
    let outcome = Case::new()
        .scenario(
            "
workloads:
  - {namespace: shop, namespaceLabels: {team: shop}, name: web, count: 4, replicas: 2, image: docker.io/library/nginx:1.27.3}
faults:
  http: [{service: shop/web-2, path: /healthz, status: 503}]
",
        )
        .object(&service("web-1", "web-1"))
        .object(&service("web-2", "web-2"))
        .object(&service("web-3", "nothing"))
        .workload_policy(
            "web",
            r#"
spec:
  strategy: {failureBudget: 3}
  health:
    checks:
      - podsReady: {}
      - http: {url: "http://${TARGET_NAME}.${TARGET_NAMESPACE}.svc.cluster.local/healthz", expectStatus: [200]}
"#,
        )
        .run()
        .await;
    outcome.check(&[Rules::new("web", 1)]);
    let rollout = outcome.rollout("web");
    let status = &rollout["status"];
    assert_eq!(
        (
            status["targets"]["updated"].as_u64(),
            status["targets"]["failed"].as_u64()
        ),
        (Some(1), Some(3)),
        "{status:#}"
    );
    let failure = |target: &str| {
        status["failures"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["target"] == target)
            .map(|f| f["message"].as_str().unwrap_or("").to_owned())
            .unwrap_or_else(|| panic!("no failure of {target}: {status:#}"))
    };
    for (target, words) in [
        ("Deployment/shop/web-2", "answered 503"),
        ("Deployment/shop/web-3", "Connection refused"),
        ("Deployment/shop/web-4", "dns error"),
    ] {
        let message = failure(target);
        assert!(message.contains(words), "{target}: {message}");
    }
}

/// A Prometheus check on every node: the scenario's Prometheus answers 0 OOM kills, except
/// on `general-3`, whose patch then fails.
#[tokio::test(start_paused = true)]
async fn prometheus_checks_get_the_values_the_scenario_gives() {
    let outcome = Case::new()
        .scenario(
            r#"
prometheus:
  url: http://prometheus.monitoring:9090
  answers:
    - {contains: 'instance="general-3"', value: 2}
    - {contains: node_vmstat_oom_kill, value: 0}
"#,
        )
        .node_policy(
            "os",
            r#"
spec:
  strategy: {failureBudget: 1}
  health:
    checks:
      - nodeReady: {}
      - prometheus:
          url: http://prometheus.monitoring.svc.cluster.local:9090
          query: sum(increase(node_vmstat_oom_kill{instance="${TARGET_NAME}"}[10m]))
          max: 0
"#,
        )
        .run()
        .await;
    outcome.check(&[Rules::new("os", 1)]);
    let status = outcome.rollout("os")["status"].clone();
    assert_eq!(
        (
            status["targets"]["updated"].as_u64(),
            status["targets"]["failed"].as_u64()
        ),
        (Some(3), Some(1)),
        "{status:#}"
    );
    let failure = &status["failures"][0];
    assert_eq!(failure["target"], "Node/general-3", "{status:#}");
    let message = failure["message"].as_str().unwrap();
    assert!(message.contains("= 2, above the maximum 0"), "{message}");
}

/// The operator's HTTP reaches a scenario's receiver, which records each request on the
/// virtual clock and answers 503 while the scenario says it is down: the health check of
/// every node goes to it, and the canary's waits for it to come back.
#[tokio::test(start_paused = true)]
async fn a_receiver_records_the_operators_requests_and_is_down_when_told() {
    let outcome = Case::new()
        .scenario("receivers: [{name: probe, down: [{status: 503, before: 8m}]}]")
        .node_policy(
            "os",
            r#"
spec:
  health:
    checks:
      - nodeReady: {}
      - http: {url: "http://probe.receiver.sandbox/healthz/${TARGET_NAME}", expectStatus: [200]}
"#,
        )
        .run()
        .await;
    outcome.check(&[Rules::new("os", 1)]);
    assert_eq!(outcome.phase("os"), "Succeeded");
    let received = outcome.received("probe");
    let back: Timestamp = "2026-11-28T00:08:00Z".parse().unwrap();
    let mut checked = std::collections::BTreeSet::new();
    for request in &received {
        let at: Timestamp = request["time"].as_str().unwrap().parse().unwrap();
        let expected = if at < back { 503 } else { 200 };
        assert_eq!(request["status"], expected, "{request:#}");
        assert_eq!(request["method"], "GET");
        let path = request["path"].as_str().unwrap();
        checked.insert(path.strip_prefix("/healthz/").unwrap().to_owned());
    }
    assert!(
        received.iter().any(|r| r["status"] == 503),
        "the canary was checked while the receiver was down: {received:#?}"
    );
    let nodes: std::collections::BTreeSet<String> = outcome
        .nodes()
        .iter()
        .map(|n| n["metadata"]["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(checked, nodes, "every node was checked");
}

/// What the operator's notifiers send, through the sandbox's network to its receiver: each
/// notifier type's request arrives whole, with the notice's id, and a receiver that is down
/// makes the attempt fail (to be retried) the way a real destination would.
#[tokio::test(start_paused = true)]
async fn notices_sent_through_the_sandbox_reach_its_receiver() {
    use patchpilot::{
        api::{Notice, NotifierType, PatchRollout},
        controller::{
            notify::{
                payload::{Message, request},
                send::{Attempt, post},
            },
            rollout::health::HttpClient,
        },
        sandbox::{Sandbox, scenario::Scenario},
    };
    use serde_json::json;
    use std::time::Duration;

    let scenario = Scenario::parse(
        std::path::Path::new("receivers.yaml"),
        "apiVersion: sandbox.patchpilot.dev/v1alpha1\nkind: Scenario\nmetadata: {name: r}\n\
         spec:\n  start: \"2026-11-28T00:00:00Z\"\n  receivers:\n    - name: chat\n      \
         down: [{status: 503, after: 1h, before: 2h}, {error: Refused, after: 2h, before: 3h}, \
         {error: Timeout, after: 3h, before: 4h}]\n",
    )
    .unwrap();
    let sandbox = Sandbox::new(scenario, patchpilot::sandboxed::options()).unwrap();
    let http = HttpClient::new(sandbox.network());
    let rollout: PatchRollout = serde_json::from_value(json!({
        "apiVersion": "patchpilot.dev/v1alpha1",
        "kind": "PatchRollout",
        "metadata": {"name": "os-1234"},
        "spec": {"policy": "os", "patch": {"version": "v2"}, "changeRef": "CHG-7"},
    }))
    .unwrap();
    let notice: Notice = serde_json::from_value(json!({
        "seq": 3, "kind": "WaveStarted", "time": "2026-11-28T00:00:00Z",
        "message": "os-1234: wave canary (1 of 3) started",
    }))
    .unwrap();
    let message = Message {
        notifier: "chat",
        rollout: &rollout,
        notice: &notice,
    };
    let address = "https://chat.receiver.sandbox/services/T0/B0/secret";
    let timeout = Duration::from_secs(10);
    let kinds = [
        NotifierType::Webhook,
        NotifierType::Slack,
        NotifierType::Teams,
        NotifierType::CloudEvents,
    ];
    for kind in kinds {
        let attempt = post(
            &http,
            address,
            Some("t0ken"),
            &request(kind, &message),
            timeout,
        )
        .await;
        assert_eq!(attempt, Attempt::Delivered { code: 200 }, "{kind:?}");
    }
    let received = sandbox.receivers().received("chat");
    assert_eq!(received.len(), 4);
    for (got, kind) in received.iter().zip(kinds) {
        assert_eq!(
            got.headers["x-patchpilot-notice-id"], "os-1234/3",
            "{kind:?}"
        );
        assert_eq!(got.headers["idempotency-key"], "os-1234/3", "{kind:?}");
        assert_eq!(got.headers["authorization"], "Bearer t0ken", "{kind:?}");
        assert_eq!(got.path, "/services/T0/B0/secret");
        assert_eq!(
            got.body,
            serde_json::from_slice::<serde_json::Value>(&request(kind, &message).body).unwrap()
        );
    }
    assert_eq!(
        received[0].line(),
        "notice to chat: WaveStarted os-1234/3: os-1234: wave canary (1 of 3) started"
    );
    assert_eq!(
        received[3].line(),
        "notice to chat: WaveStarted os-1234/3: os-1234: wave canary (1 of 3) started"
    );

    // Down for an hour each way: 503, then refused, then silent.
    let webhook = request(NotifierType::Webhook, &message);
    let mut reasons = Vec::new();
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        match post(&http, address, None, &webhook, timeout).await {
            Attempt::Failed { reason, .. } => reasons.push(reason),
            other => panic!("a receiver that is down fails the attempt: {other:?}"),
        }
    }
    assert_eq!(
        reasons[0],
        "POST https://chat.receiver.sandbox/… answered 503 Service Unavailable"
    );
    assert!(reasons[1].contains("Connection refused"), "{}", reasons[1]);
    assert_eq!(
        reasons[2],
        "POST https://chat.receiver.sandbox/… got no answer within 10s"
    );
    for reason in &reasons {
        assert!(!reason.contains("secret"), "{reason}");
    }
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert_eq!(
        post(&http, address, None, &webhook, timeout).await,
        Attempt::Delivered { code: 200 }
    );
}
