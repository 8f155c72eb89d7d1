//! The sandbox's API server, exercised through kube-rs — the library the operator uses —
//! as a real API server would answer. The bodies of the tests are the conformance tests of
//! `patchpilot_testkit::conformance`, which `tests/e2e/conformance.rs` runs against a real
//! API server too: CRUD, selectors, pagination, watches with resumption and 410, every patch
//! type, server-side apply conflicts, the status subresource, generation, optimistic
//! concurrency, finalizers, garbage collection, schema validation of custom resources,
//! evictions under PodDisruptionBudgets, events and metadata-only requests, and clients that
//! send what no well-behaved client sends (`conformance::hostile`). The audit log, faults and
//! the bound on what an unread watch may queue are the sandbox's own, and tested here only.

use std::sync::Arc;

use k8s_openapi::api::{
    core::v1::{ConfigMap, Namespace},
    policy::v1::PodDisruptionBudget,
};
use kube::{
    Api, Client,
    api::{Patch, PatchParams, PostParams},
};
use patchpilot_sandbox::{Options, Sandbox, apiserver::Audit, scenario::Scenario};
use patchpilot_testkit::conformance::{
    Backend, BudgetStatus, code, config_map, evictions, hostile, objects, watches,
};
use serde_json::{Value, json};

fn empty() -> Scenario {
    Scenario {
        spec: Default::default(),
        name: "test".into(),
        objects: Vec::new(),
    }
}

/// Options serving patchpilot's CRDs, as the `patchpilot` binary gives them.
fn options() -> Options {
    Options {
        crds: patchpilot_api::crds(),
        ..Options::default()
    }
}

/// A sandbox of the test's own, as a backend of the conformance tests: it runs no
/// controllers, so the backend writes what the disruption controller would.
struct InProcess {
    sandbox: Sandbox,
}

/// The namespace every test gets.
const NAMESPACE: &str = "conformance";

impl InProcess {
    async fn new() -> Self {
        let sandbox = Sandbox::new(empty(), options()).unwrap();
        let namespaces: Api<Namespace> = Api::all(sandbox.client("tester"));
        let namespace = serde_json::from_value(json!({"metadata": {"name": NAMESPACE}})).unwrap();
        namespaces
            .create(&PostParams::default(), &namespace)
            .await
            .unwrap();
        InProcess { sandbox }
    }
}

impl Backend for InProcess {
    fn client(&self) -> Client {
        self.sandbox.client("tester")
    }

    fn namespace(&self) -> &str {
        NAMESPACE
    }

    fn cluster_object(&self, _api_version: &str, _plural: &str, base: &str) -> String {
        base.to_owned()
    }

    async fn forget_watch_history(&self) -> bool {
        self.sandbox.store().set_retention(2);
        true
    }

    fn runs_controllers(&self) -> bool {
        false
    }

    async fn disruption_controller(&self, name: &str, status: BudgetStatus) {
        let budgets: Api<PodDisruptionBudget> = Api::namespaced(self.client(), NAMESPACE);
        let generation = budgets
            .get(name)
            .await
            .unwrap()
            .metadata
            .generation
            .unwrap();
        budgets
            .patch_status(
                name,
                &PatchParams::default(),
                &Patch::Merge(status.to_json(generation)),
            )
            .await
            .unwrap();
    }
}

/// Tests whose body is a conformance test.
macro_rules! conformance_tests {
    ($($module:ident::$test:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $test() {
                $module::$test(&InProcess::new().await).await;
            }
        )*
    };
}

patchpilot_testkit::every_conformance_test!(conformance_tests);

/// An audit sink the test can read.
#[derive(Clone, Default)]
struct Lines(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn every_request_is_audited_and_faults_hit_their_client() {
    let lines = Lines::default();
    let mut scenario = empty();
    scenario
        .spec
        .faults
        .api
        .push(patchpilot_sandbox::scenario::ApiFaults {
            user: "flaky".into(),
            error_rate: 1.0,
            conflict_rate: 0.0,
        });
    let sandbox = Sandbox::new(
        scenario,
        Options {
            audit: Some(Audit::to_writer(Box::new(lines.clone()))),
            speed: None,
            ..options()
        },
    )
    .unwrap();
    let maps: Api<ConfigMap> = Api::namespaced(
        sandbox.client("system:serviceaccount:patchpilot-system:patchpilot"),
        "default",
    );
    maps.create(&PostParams::default(), &config_map("audited", &[]))
        .await
        .unwrap();
    maps.get("audited").await.unwrap();
    let flaky: Api<ConfigMap> = Api::namespaced(sandbox.client("flaky"), "default");
    assert_eq!(code(flaky.get("audited").await.unwrap_err()), 500);
    let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
    let events: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.len(), 3);
    let create = &events[0];
    assert_eq!(create["apiVersion"], "audit.k8s.io/v1");
    assert_eq!(create["level"], "Request");
    assert_eq!(create["stage"], "ResponseComplete");
    assert_eq!(create["verb"], "create");
    assert_eq!(
        create["user"]["username"],
        "system:serviceaccount:patchpilot-system:patchpilot"
    );
    assert_eq!(
        create["objectRef"],
        json!({"resource": "configmaps", "namespace": "default", "apiGroup": "", "apiVersion": "v1"})
    );
    assert_eq!(create["responseStatus"]["code"], 201);
    assert_eq!(
        create["userAgent"],
        format!("patchpilot/{}", env!("CARGO_PKG_VERSION")),
        "the in-process client names itself as patchpilot run's does"
    );
    assert_eq!(create["requestObject"]["metadata"]["name"], "audited");
    assert!(
        create["requestReceivedTimestamp"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    assert_eq!(events[1]["verb"], "get");
    assert!(events[1].get("requestObject").is_none());
    assert_eq!(events[2]["responseStatus"]["code"], 500);
    assert_eq!(events[2]["user"]["username"], "flaky");
}

/// A watch whose client never reads it costs the sandbox a bounded queue: once the bound is
/// reached the watcher is closed, and its stream ends after what was queued.
#[tokio::test]
async fn a_watch_nobody_reads_is_closed_at_its_bound() {
    use futures::{StreamExt, TryStreamExt};
    use kube::client::Body;

    let backend = InProcess::new().await;
    let store = backend.sandbox.store().clone();
    let bound = 50;
    store.set_watch_queue(bound);
    let client = backend.client();
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), NAMESPACE);
    maps.create(&PostParams::default(), &config_map("first", &[]))
        .await
        .unwrap();
    let request = http::Request::get(format!(
        "/api/v1/namespaces/{NAMESPACE}/configmaps?watch=true"
    ))
    .body(Body::from(Vec::new()))
    .unwrap();
    let stuck = client.send(request).await.unwrap();
    let watchers = store.watch_backlogs().len();
    assert_eq!(watchers, 1);
    for i in 0..bound {
        maps.create(&PostParams::default(), &config_map(&format!("m{i}"), &[]))
            .await
            .unwrap();
        assert!(store.watch_backlogs().iter().all(|&queued| queued <= bound));
    }
    assert_eq!(store.watch_backlogs(), [bound], "the bound is reached");
    for i in 0..3 * bound {
        maps.create(&PostParams::default(), &config_map(&format!("n{i}"), &[]))
            .await
            .unwrap();
    }
    assert!(
        store.watch_backlogs().is_empty(),
        "the stuck watcher is closed"
    );

    // Its stream holds the initial event and the bound, then ends.
    let text = stuck.into_body().collect_bytes().await.unwrap();
    let lines: Vec<Value> = text
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1 + bound);
    assert_eq!(
        lines[bound]["object"]["metadata"]["name"],
        format!("m{}", bound - 1)
    );

    // Other watches go on.
    let mut events = maps
        .watch(&kube::api::WatchParams::default().timeout(5), "0")
        .await
        .unwrap()
        .boxed();
    assert!(events.try_next().await.unwrap().is_some());
}

/// Served over HTTP, the sandbox reads no more of a body than it needs to refuse it, and a
/// client that sends a watch request and never reads its socket is closed at the bound while
/// others are served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_http_big_bodies_and_unread_sockets_cost_a_bounded_amount() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let backend = InProcess::new().await;
    let store = backend.sandbox.store().clone();
    let bound = 50;
    store.set_watch_queue(bound);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(patchpilot_sandbox::apiserver::serve(
        backend.sandbox.server().clone(),
        listener,
        Default::default(),
    ));

    // A body announced as 64 MiB: refused once 3 MiB are read.
    let mut socket = tokio::net::TcpStream::connect(address).await.unwrap();
    let head = format!(
        "POST /api/v1/namespaces/{NAMESPACE}/configmaps HTTP/1.1\r\nHost: sandbox\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        64 << 20
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    let (mut reader, mut writer) = socket.into_split();
    let sender = tokio::spawn(async move {
        let chunk = vec![b' '; 1 << 20];
        for _ in 0..64 {
            if writer.write_all(&chunk).await.is_err() {
                break;
            }
        }
    });
    let mut answer = vec![0; 4096];
    let read = tokio::time::timeout(std::time::Duration::from_secs(30), reader.read(&mut answer))
        .await
        .expect("an answer before the whole body")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..read]);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(
        answer.contains("Request entity too large: limit is 3145728"),
        "{answer}"
    );
    drop(reader);
    sender.abort();

    // A watch whose socket is never read, while big ConfigMaps are written.
    let mut stuck = tokio::net::TcpStream::connect(address).await.unwrap();
    let request = format!(
        "GET /api/v1/namespaces/{NAMESPACE}/configmaps?watch=true HTTP/1.1\r\nHost: sandbox\r\n\r\n"
    );
    stuck.write_all(request.as_bytes()).await.unwrap();
    let maps: Api<ConfigMap> = Api::namespaced(backend.client(), NAMESPACE);
    eventually_one_watcher(&store).await;
    let data = "x".repeat(256 << 10);
    for i in 0..200 {
        let mut map = config_map(&format!("big-{i}"), &[]);
        map.data = Some([("data".to_owned(), data.clone())].into());
        maps.create(&PostParams::default(), &map).await.unwrap();
        assert!(store.watch_backlogs().iter().all(|&queued| queued <= bound));
    }
    assert!(
        store.watch_backlogs().is_empty(),
        "the watcher whose socket is full is closed"
    );
    let listed = maps
        .list_metadata(&kube::api::ListParams::default())
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 200);
    drop(stuck);
}

/// Waits until the store has one client watch.
async fn eventually_one_watcher(store: &patchpilot_sandbox::store::Store) {
    for _ in 0..100 {
        if store.watch_backlogs().len() == 1 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the watch never started");
}
