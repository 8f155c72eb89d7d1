//! Notices delivered to a Notifier on the real control plane: a local receiver gets the
//! rollout's notices in order, each once under a stable id, after a first answer of 503 that
//! the operator retries; the Notifier's status keeps how far it delivered.

use std::collections::BTreeSet;

use kube::{Api, ResourceExt};
use patchpilot::{
    api::{Notifier, PatchPolicy},
    engine::rollout::Phase,
};
use patchpilot_testkit::{audit::Rules, receiver::Receiver};

use crate::{
    nodes::{NodePolicy, budget},
    support::{Cluster, NAMESPACE, kubectl, mins, wait_until},
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a cluster: KUBECONFIG=... cargo test --test e2e -- --ignored"]
async fn notices_reach_a_webhook_once_each_in_order_after_a_retry() {
    let mut cluster = Cluster::start().await;
    let nodes = cluster.label_nodes(&["general"]).await;
    let receiver = Receiver::start(&[503]);
    let notifier = format!("e2e-chat-{}", cluster.suffix);
    cluster.forget_at_end("patchpilot.dev/v1alpha1", "notifiers", &notifier);
    cluster.apply(&format!(
        "apiVersion: v1
kind: Secret
metadata: {{name: {notifier}, namespace: {NAMESPACE}}}
stringData:
  address: {}
---
apiVersion: patchpilot.dev/v1alpha1
kind: Notifier
metadata: {{name: {notifier}}}
spec:
  type: Webhook
  secretRef: {{name: {notifier}}}
  timeout: 5s
",
        receiver.url("/hooks/secret-part")
    ));
    let policy = format!("e2e-notify-{}", cluster.suffix);
    let spec = NodePolicy {
        extra: format!("  notifications: {{notifiers: [{notifier}]}}\n"),
        ..NodePolicy::default()
    };
    cluster.create_policy(&spec.yaml(&policy)).await;
    let done = cluster
        .wait_for_rollout(&policy, Phase::Succeeded, budget(nodes.len()))
        .await;
    let rollout = done.name_any();
    let last = done
        .status
        .as_ref()
        .and_then(|s| s.notifications.as_ref())
        .map_or(0, |n| n.seq);
    assert!(last >= 3, "{:?}", done.status);
    let received = wait_until("every notice delivered", mins(1), || {
        let received = receiver.received();
        let delivered = received.iter().filter(|r| r.answered == 200).count();
        async move { (delivered >= last as usize).then_some(received) }
    })
    .await;

    // The first attempt was answered 503 and retried under the same id.
    assert_eq!(received[0].answered, 503);
    assert_eq!(
        received[0].header("x-patchpilot-notice-id"),
        received[1].header("x-patchpilot-notice-id")
    );
    let delivered: Vec<_> = received.iter().filter(|r| r.answered == 200).collect();
    let ids: Vec<&str> = delivered
        .iter()
        .filter_map(|r| r.header("x-patchpilot-notice-id"))
        .collect();
    let expected: Vec<String> = (1..=last).map(|seq| format!("{rollout}/{seq}")).collect();
    assert_eq!(ids, expected, "each notice once, in order");
    assert_eq!(ids.iter().collect::<BTreeSet<_>>().len(), ids.len());
    for request in &delivered {
        assert_eq!(request.method, "POST");
        assert_eq!(request.path, "/hooks/secret-part");
        assert_eq!(
            request.body["id"].as_str(),
            request.header("x-patchpilot-notice-id")
        );
        assert_eq!(request.body["policy"], policy.as_str());
    }
    let kinds: Vec<&str> = delivered
        .iter()
        .filter_map(|r| r.body["kind"].as_str())
        .collect();
    assert_eq!(kinds.first(), Some(&"Started"), "{kinds:?}");
    assert_eq!(kinds.last(), Some(&"Succeeded"), "{kinds:?}");
    assert!(kinds.contains(&"WaveFinished"), "{kinds:?}");

    // The Notifier remembers how far it delivered, and says it delivers; so does the policy.
    let notifier_status = wait_until("the Notifier's status", mins(1), || {
        let api: Api<Notifier> = Api::all(cluster.client.clone());
        let name = notifier.clone();
        async move {
            let status = api.get(&name).await.ok()?.status?;
            (status.delivered.iter().any(|d| d.through == last)).then_some(status)
        }
    })
    .await;
    assert!(notifier_status.failing.is_none(), "{notifier_status:?}");
    let ready = notifier_status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(ready.status, "True", "{ready:?}");
    let policy_status = Api::<PatchPolicy>::all(cluster.client.clone())
        .get(&policy)
        .await
        .unwrap()
        .status
        .unwrap_or_default();
    assert!(
        policy_status
            .notifiers
            .iter()
            .any(|n| n.name == notifier && n.ready),
        "{:?}",
        policy_status.notifiers
    );
    kubectl(&["delete", "secret", "-n", NAMESPACE, &notifier]);
    cluster
        .finish(&[Rules::new(policy.clone(), 1).per_pool("pool")])
        .await;
}
