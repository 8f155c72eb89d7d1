//! The sandbox's API server, exercised through kube-rs — the library the operator uses —
//! as a real API server would answer: CRUD, selectors, pagination, watches with resumption
//! and 410, every patch type, server-side apply conflicts, the status subresource,
//! generation, optimistic concurrency, finalizers, garbage collection, schema validation of
//! custom resources, evictions under PodDisruptionBudgets, events, metadata-only requests,
//! the audit log and faults.

use std::{collections::BTreeMap, sync::Arc};

use futures::{AsyncBufReadExt, StreamExt, TryStreamExt};
use k8s_openapi::api::{
    apps::v1::Deployment,
    core::v1::{ConfigMap, Node, Pod},
    events::v1::Event as NewEvent,
    policy::v1::PodDisruptionBudget,
};
use kube::{
    Api, Client,
    api::{
        DeleteParams, ListParams, Patch, PatchParams, PostParams, PropagationPolicy, WatchEvent,
        WatchParams,
    },
    core::{PartialObjectMeta, Status},
    runtime::WatchStreamExt,
};
use patchpilot_api::{PatchPolicy, PatchRollout};
use patchpilot_sandbox::{Options, Sandbox, apiserver::Audit, scenario::Scenario};
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

fn sandbox() -> Sandbox {
    Sandbox::new(empty(), options()).unwrap()
}

fn code(error: kube::Error) -> u16 {
    api_error(error).code
}

fn api_error(error: kube::Error) -> Status {
    match error {
        kube::Error::Api(status) => *status,
        other => panic!("not an API error: {other}"),
    }
}

fn config_map(name: &str, labels: &[(&str, &str)]) -> ConfigMap {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>()},
        "data": {"key": "value"},
    }))
    .unwrap()
}

#[tokio::test]
async fn create_get_list_update_delete_with_optimistic_concurrency() {
    let sandbox = sandbox();
    let client = sandbox.client("tester");
    let maps: Api<ConfigMap> = Api::namespaced(client, "default");
    let created = maps
        .create(&PostParams::default(), &config_map("a", &[("app", "web")]))
        .await
        .unwrap();
    assert!(created.metadata.uid.is_some() && created.metadata.creation_timestamp.is_some());
    let rv = created.metadata.resource_version.clone().unwrap();
    assert_eq!(
        code(
            maps.create(&PostParams::default(), &config_map("a", &[]))
                .await
                .unwrap_err()
        ),
        409
    );
    maps.create(&PostParams::default(), &config_map("b", &[("app", "db")]))
        .await
        .unwrap();

    let web = maps
        .list(&ListParams::default().labels("app=web"))
        .await
        .unwrap();
    assert_eq!(web.items.len(), 1);
    let by_name = maps
        .list(&ListParams::default().fields("metadata.name=b"))
        .await
        .unwrap();
    assert_eq!(by_name.items[0].metadata.name.as_deref(), Some("b"));
    assert_eq!(
        code(
            maps.list(&ListParams::default().fields("data.key=value"))
                .await
                .unwrap_err()
        ),
        400
    );

    let mut changed = created.clone();
    changed.data = Some(BTreeMap::from([("key".to_owned(), "new".to_owned())]));
    let updated = maps
        .replace("a", &PostParams::default(), &changed)
        .await
        .unwrap();
    assert_ne!(
        updated.metadata.resource_version.as_deref(),
        Some(rv.as_str())
    );
    // The stale copy is refused.
    assert_eq!(
        code(
            maps.replace("a", &PostParams::default(), &changed)
                .await
                .unwrap_err()
        ),
        409
    );

    maps.delete("a", &DeleteParams::default()).await.unwrap();
    assert_eq!(code(maps.get("a").await.unwrap_err()), 404);
    let other_ns: Api<ConfigMap> = Api::namespaced(sandbox.client("tester"), "nowhere");
    assert_eq!(
        code(
            other_ns
                .create(&PostParams::default(), &config_map("x", &[]))
                .await
                .unwrap_err()
        ),
        404
    );
}

#[tokio::test]
async fn lists_come_in_pages() {
    let sandbox = sandbox();
    let maps: Api<ConfigMap> = Api::namespaced(sandbox.client("tester"), "default");
    for i in 0..5 {
        maps.create(&PostParams::default(), &config_map(&format!("m{i}"), &[]))
            .await
            .unwrap();
    }
    let mut names = Vec::new();
    let mut params = ListParams::default().limit(2);
    loop {
        let page = maps.list(&params).await.unwrap();
        names.extend(page.items.iter().map(|m| m.metadata.name.clone().unwrap()));
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => break,
        }
    }
    assert_eq!(names, ["m0", "m1", "m2", "m3", "m4"]);
    // A list without selectors says how many remain; with selectors, the API server cannot
    // know without reading them all, and leaves the count out.
    let first = maps.list(&ListParams::default().limit(2)).await.unwrap();
    assert_eq!(first.metadata.remaining_item_count, Some(3));
    for i in 5..8 {
        let map = config_map(&format!("m{i}"), &[("tier", "gold")]);
        maps.create(&PostParams::default(), &map).await.unwrap();
    }
    let selected = ListParams::default().labels("tier=gold").limit(2);
    let first = maps.list(&selected).await.unwrap();
    assert_eq!(first.items.len(), 2);
    assert_eq!(first.metadata.remaining_item_count, None);
    let token = first.metadata.continue_.expect("one more page");
    let last = maps.list(&selected.continue_token(&token)).await.unwrap();
    assert_eq!(last.items.len(), 1);
    assert_eq!(last.metadata.continue_.filter(|c| !c.is_empty()), None);
}

/// Every page of a list reports the resource version of its first page, and its continue
/// token carries it, as the real API server's do.
#[tokio::test]
async fn pages_report_the_resource_version_of_the_first_page() {
    let sandbox = sandbox();
    let maps: Api<ConfigMap> = Api::namespaced(sandbox.client("tester"), "default");
    for i in 0..3 {
        maps.create(&PostParams::default(), &config_map(&format!("p{i}"), &[]))
            .await
            .unwrap();
    }
    let first = maps.list(&ListParams::default().limit(2)).await.unwrap();
    maps.create(&PostParams::default(), &config_map("p3", &[]))
        .await
        .unwrap();
    let token = first.metadata.continue_.clone().expect("one more page");
    let second = maps
        .list(&ListParams::default().limit(2).continue_token(&token))
        .await
        .unwrap();
    assert_eq!(
        second.metadata.resource_version,
        first.metadata.resource_version
    );
}

#[tokio::test]
async fn every_patch_type() {
    let sandbox = sandbox();
    let maps: Api<ConfigMap> = Api::namespaced(sandbox.client("tester"), "default");
    maps.create(&PostParams::default(), &config_map("p", &[("a", "1")]))
        .await
        .unwrap();
    let merged = maps
        .patch(
            "p",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"a": null, "b": "2"}}})),
        )
        .await
        .unwrap();
    assert_eq!(
        merged.metadata.labels.unwrap(),
        BTreeMap::from([("b".to_owned(), "2".to_owned())])
    );
    let json_patch: json_patch::Patch = serde_json::from_value(json!([{"op": "add", "path": "/data/other", "value": "x"}, {"op": "test", "path": "/data/key", "value": "value"}])).unwrap();
    let patched = maps
        .patch("p", &PatchParams::default(), &Patch::<()>::Json(json_patch))
        .await
        .unwrap();
    assert_eq!(patched.data.unwrap()["other"], "x");
    let failing: json_patch::Patch =
        serde_json::from_value(json!([{"op": "test", "path": "/data/key", "value": "nope"}]))
            .unwrap();
    assert_eq!(
        code(
            maps.patch("p", &PatchParams::default(), &Patch::<()>::Json(failing))
                .await
                .unwrap_err()
        ),
        422
    );

    let deployments: Api<Deployment> = Api::namespaced(sandbox.client("tester"), "default");
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
            {"name": "web", "image": "nginx:1.25"}, {"name": "sidecar", "image": "envoy:1.30"}]}}}
    }))
    .unwrap();
    let created = deployments
        .create(&PostParams::default(), &deployment)
        .await
        .unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    // `kubectl set image` sends a strategic merge patch keyed by container name.
    let strategic = json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}});
    let patched = deployments
        .patch("web", &PatchParams::default(), &Patch::Strategic(strategic))
        .await
        .unwrap();
    let containers = patched.spec.unwrap().template.spec.unwrap().containers;
    assert_eq!(
        containers
            .iter()
            .map(|c| c.image.clone().unwrap())
            .collect::<Vec<_>>(),
        ["nginx:1.27", "envoy:1.30"]
    );
    assert_eq!(
        patched.metadata.generation,
        Some(2),
        "a spec change bumps the generation"
    );
    // Strategic merge is refused for custom resources, as by the API server.
    let policies: Api<PatchPolicy> = Api::all(sandbox.client("tester"));
    assert_eq!(
        code(
            policies
                .patch("x", &PatchParams::default(), &Patch::Strategic(json!({})))
                .await
                .unwrap_err()
        ),
        415
    );
}

fn rollout(name: &str) -> Value {
    json!({
        "apiVersion": "patchpilot.dev/v1alpha1",
        "kind": "PatchRollout",
        "metadata": {"name": name},
        "spec": {"policy": "workers-os", "approved": false, "patch": {"version": "v1", "updater": {"template": {"spec": {"containers": [{"name": "u", "image": "busybox"}]}}}}},
    })
}

#[tokio::test]
async fn server_side_apply_status_subresource_and_generation() {
    let sandbox = sandbox();
    let rollouts: Api<PatchRollout> = Api::all(sandbox.client("tester"));
    let apply = |manager: &str| PatchParams::apply(manager);
    let created = rollouts
        .patch("r1", &apply("kubectl"), &Patch::Apply(rollout("r1")))
        .await
        .unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    let managers: Vec<_> = created
        .metadata
        .managed_fields
        .unwrap()
        .into_iter()
        .map(|m| m.manager.unwrap())
        .collect();
    assert_eq!(managers, ["kubectl"]);

    // Another manager changing a field kubectl owns conflicts, unless forced.
    let mut approve = rollout("r1");
    approve["spec"]["approved"] = json!(true);
    let conflict = api_error(
        rollouts
            .patch("r1", &apply("someone"), &Patch::Apply(approve.clone()))
            .await
            .unwrap_err(),
    );
    assert_eq!(conflict.code, 409);
    assert!(
        conflict.message.contains("conflict with \"kubectl\""),
        "{}",
        conflict.message
    );
    let forced = rollouts
        .patch("r1", &apply("someone").force(), &Patch::Apply(approve))
        .await
        .unwrap();
    assert!(forced.spec.approved);
    assert_eq!(forced.metadata.generation, Some(2));
    // The immutable patch is refused by its CEL rule, whoever owns it.
    let mut repatch = rollout("r1");
    repatch["spec"]["patch"]["version"] = json!("v2");
    let refused = api_error(
        rollouts
            .patch("r1", &apply("kubectl").force(), &Patch::Apply(repatch))
            .await
            .unwrap_err(),
    );
    assert_eq!(refused.code, 422);
    assert!(
        refused.message.contains("patch cannot change"),
        "{}",
        refused.message
    );

    // Status is written through its subresource and never bumps the generation.
    let status = json!({"apiVersion": "patchpilot.dev/v1alpha1", "kind": "PatchRollout", "metadata": {"name": "r1"}, "status": {"phase": "Progressing"}});
    let written = rollouts
        .patch_status("r1", &apply("patchpilot"), &Patch::Apply(status))
        .await
        .unwrap();
    assert_eq!(
        written.status.unwrap().phase,
        patchpilot_engine::rollout::Phase::Progressing
    );
    assert_eq!(
        written.metadata.generation,
        Some(2),
        "unchanged by the status write"
    );
    // Status sent to the main resource is ignored.
    let ignored = rollouts
        .patch(
            "r1",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Failed"}, "spec": {"paused": true}})),
        )
        .await
        .unwrap();
    assert_eq!(
        ignored.status.unwrap().phase,
        patchpilot_engine::rollout::Phase::Progressing
    );
    assert_eq!(ignored.metadata.generation, Some(3));
    assert!(ignored.spec.paused);
}

#[tokio::test]
async fn invalid_custom_resources_are_refused_with_the_field() {
    let sandbox = sandbox();
    let policies: Api<PatchPolicy> = Api::all(sandbox.client("tester"));
    let mut policy: Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../examples/node-os-policy.yaml"
        ))
        .unwrap(),
    )
    .unwrap();
    policy["spec"]["strategy"]["maxUnavailable"] = json!("150%");
    let data = serde_json::to_vec(&policy).unwrap();
    let request = http::Request::post("/apis/patchpilot.dev/v1alpha1/patchpolicies")
        .header("content-type", "application/json")
        .body(data)
        .unwrap();
    let error = sandbox
        .client("tester")
        .request::<PatchPolicy>(request)
        .await
        .unwrap_err();
    let error = api_error(error);
    assert_eq!(error.code, 422);
    assert!(
        error.message.contains(
            "PatchPolicy.patchpilot.dev \"workers-os\" is invalid: spec.strategy.maxUnavailable"
        ),
        "{}",
        error.message
    );
    policy["spec"]["strategy"]["maxUnavailable"] = json!(1);
    let good: PatchPolicy = serde_json::from_value(policy).unwrap();
    policies
        .create(&PostParams::default(), &good)
        .await
        .unwrap();
}

#[tokio::test]
async fn finalizers_hold_deletion_and_owners_take_their_dependents() {
    let sandbox = sandbox();
    let maps: Api<ConfigMap> = Api::namespaced(sandbox.client("tester"), "default");
    let mut held = config_map("held", &[]);
    held.metadata.finalizers = Some(vec!["example.com/keep".into()]);
    maps.create(&PostParams::default(), &held).await.unwrap();
    maps.delete("held", &DeleteParams::default()).await.unwrap();
    let pending = maps.get("held").await.unwrap();
    assert!(pending.metadata.deletion_timestamp.is_some());
    maps.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    assert_eq!(code(maps.get("held").await.unwrap_err()), 404);

    let owner = maps
        .create(&PostParams::default(), &config_map("owner", &[]))
        .await
        .unwrap();
    for name in ["child", "orphan-child"] {
        let mut child = config_map(name, &[]);
        child.metadata.owner_references = Some(vec![serde_json::from_value(json!({"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner.metadata.uid.clone().unwrap()})).unwrap()]);
        maps.create(&PostParams::default(), &child).await.unwrap();
    }
    maps.delete("owner", &DeleteParams::default())
        .await
        .unwrap();
    assert_eq!(
        code(maps.get("child").await.unwrap_err()),
        404,
        "background deletion takes dependents"
    );
    let orphan_owner = maps
        .create(&PostParams::default(), &config_map("owner2", &[]))
        .await
        .unwrap();
    let mut child = config_map("kept", &[]);
    child.metadata.owner_references = Some(vec![serde_json::from_value(json!({"apiVersion": "v1", "kind": "ConfigMap", "name": "owner2", "uid": orphan_owner.metadata.uid.clone().unwrap()})).unwrap()]);
    maps.create(&PostParams::default(), &child).await.unwrap();
    let orphan = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Orphan),
        ..DeleteParams::default()
    };
    maps.delete("owner2", &orphan).await.unwrap();
    let kept = maps.get("kept").await.unwrap();
    assert!(
        kept.metadata
            .owner_references
            .unwrap_or_default()
            .is_empty()
    );
}

#[tokio::test]
async fn watches_resume_from_a_resource_version_and_expired_ones_are_gone() {
    let sandbox = sandbox();
    let maps: Api<ConfigMap> = Api::namespaced(sandbox.client("tester"), "default");
    let first = maps
        .create(&PostParams::default(), &config_map("w1", &[]))
        .await
        .unwrap();
    let rv = first.metadata.resource_version.clone().unwrap();
    maps.create(&PostParams::default(), &config_map("w2", &[]))
        .await
        .unwrap();
    maps.delete("w1", &DeleteParams::default()).await.unwrap();
    let mut stream = maps
        .watch(&WatchParams::default().timeout(5), &rv)
        .await
        .unwrap()
        .boxed();
    let mut seen = Vec::new();
    while let Some(event) = stream.try_next().await.unwrap() {
        match event {
            WatchEvent::Added(m) => seen.push(format!("ADDED {}", m.metadata.name.unwrap())),
            WatchEvent::Deleted(m) => seen.push(format!("DELETED {}", m.metadata.name.unwrap())),
            other => panic!("{other:?}"),
        }
        if seen.len() == 2 {
            break;
        }
    }
    assert_eq!(seen, ["ADDED w2", "DELETED w1"]);

    sandbox.store().set_retention(2);
    for i in 0..5 {
        maps.create(&PostParams::default(), &config_map(&format!("x{i}"), &[]))
            .await
            .unwrap();
    }
    let mut expired = maps
        .watch(&WatchParams::default().timeout(5), &rv)
        .await
        .unwrap()
        .boxed();
    match expired.try_next().await.unwrap() {
        Some(WatchEvent::Error(e)) => assert_eq!(e.code, 410),
        other => panic!("expected 410 Gone, got {other:?}"),
    }
}

#[tokio::test]
async fn kube_runtime_watchers_list_then_watch_and_recover_from_410() {
    let sandbox = sandbox();
    let client: Client = sandbox.client("tester");
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    maps.create(&PostParams::default(), &config_map("before", &[]))
        .await
        .unwrap();
    for streaming in [false, true] {
        let config = if streaming {
            kube::runtime::watcher::Config::default().streaming_lists()
        } else {
            kube::runtime::watcher::Config::default()
        };
        let mut objects = kube::runtime::watcher(maps.clone(), config)
            .default_backoff()
            .applied_objects()
            .boxed();
        // The initial objects arrive (in name order), then what changes.
        let mut initial = BTreeMap::new();
        while !initial.contains_key("before") {
            let object = objects.try_next().await.unwrap().unwrap();
            initial.insert(object.metadata.name.clone().unwrap(), object);
        }
        let name = format!("after-{streaming}");
        maps.create(&PostParams::default(), &config_map(&name, &[]))
            .await
            .unwrap();
        let next = loop {
            let object = objects.try_next().await.unwrap().unwrap();
            if !initial.contains_key(object.metadata.name.as_deref().unwrap()) {
                break object;
            }
        };
        assert_eq!(next.metadata.name.as_deref(), Some(name.as_str()));
    }
}

/// The `Accept` headers kube-rs sends for `Api<PartialObjectMeta<K>>`: one object (get,
/// patch, watch) and a list.
const METADATA: &str = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1";
const METADATA_LIST: &str = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1";

fn node(name: &str) -> Node {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"pool": "blue"}},
        "spec": {"podCIDR": "10.0.0.0/24"},
    }))
    .unwrap()
}

/// The body of `GET uri` asked for with `accept`, as JSON.
async fn raw(client: &Client, uri: &str, accept: &str) -> Result<Value, kube::Error> {
    let request = http::Request::get(uri)
        .header(http::header::ACCEPT, accept)
        .body(Vec::new())
        .unwrap();
    let text = client.request_text(request).await?;
    Ok(serde_json::from_str(&text).unwrap())
}

/// What the API server sends of `full` when asked for its metadata.
fn metadata_of(full: &Value) -> Value {
    json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": full["metadata"]})
}

#[tokio::test]
async fn metadata_requests_get_partial_object_metadata() {
    let sandbox = sandbox();
    let client = sandbox.client("tester");
    let nodes: Api<Node> = Api::all(client.clone());
    for name in ["n1", "n2", "n3"] {
        nodes
            .create(&PostParams::default(), &node(name))
            .await
            .unwrap();
    }
    let full = raw(&client, "/api/v1/nodes/n1", "application/json")
        .await
        .unwrap();
    assert_eq!(full["kind"], "Node");
    assert!(full["spec"].is_object() && full["metadata"]["managedFields"].is_array());

    // One object: its whole metadata, managedFields included, and no spec or status.
    let one = raw(&client, "/api/v1/nodes/n1", METADATA).await.unwrap();
    assert_eq!(one, metadata_of(&full));

    // A list keeps its list metadata, pages included.
    let page = raw(&client, "/api/v1/nodes?limit=2", METADATA_LIST)
        .await
        .unwrap();
    assert_eq!(page["kind"], "PartialObjectMetadataList");
    assert_eq!(page["apiVersion"], "meta.k8s.io/v1");
    assert!(page["metadata"]["resourceVersion"].is_string());
    assert!(page["metadata"]["continue"].is_string());
    assert_eq!(page["metadata"]["remainingItemCount"], 1);
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0], metadata_of(&full));
    assert!(items.iter().all(|i| i["kind"] == "PartialObjectMetadata"
        && i.get("spec").is_none()
        && i.get("status").is_none()));

    // Plain JSON is unchanged, and the first form the server can produce wins.
    let plain = raw(&client, "/api/v1/nodes", "application/json")
        .await
        .unwrap();
    assert_eq!(plain["kind"], "NodeList");
    assert!(plain["items"][0]["spec"].is_object());
    let json_first = raw(
        &client,
        "/api/v1/nodes",
        &format!("application/json,{METADATA_LIST}"),
    )
    .await
    .unwrap();
    assert_eq!(json_first["kind"], "NodeList");
    let table_first = raw(
        &client,
        "/api/v1/nodes",
        &format!("application/json;as=Table;g=meta.k8s.io;v=v1,{METADATA_LIST}"),
    )
    .await
    .unwrap();
    assert_eq!(table_first["kind"], "Table");
    let metadata_first = raw(
        &client,
        "/api/v1/nodes",
        &format!("{METADATA_LIST},application/json;as=Table;g=meta.k8s.io;v=v1"),
    )
    .await
    .unwrap();
    assert_eq!(metadata_first["kind"], "PartialObjectMetadataList");

    // Errors stay statuses; a list for one object, or one object for a list, is refused.
    assert_eq!(
        code(
            raw(&client, "/api/v1/nodes/none", METADATA)
                .await
                .unwrap_err()
        ),
        404
    );
    let refused = api_error(
        raw(&client, "/api/v1/nodes/n1", METADATA_LIST)
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (refused.code, refused.reason.as_str()),
        (406, "NotAcceptable")
    );
    assert_eq!(
        code(raw(&client, "/api/v1/nodes", METADATA).await.unwrap_err()),
        406
    );

    // Through kube-rs, as the operator reads them.
    let metas: Api<PartialObjectMeta<Node>> = Api::all(client.clone());
    let listed = metas.list(&ListParams::default()).await.unwrap();
    assert_eq!(listed.types.kind, "PartialObjectMetadataList");
    let names: Vec<_> = listed
        .items
        .iter()
        .map(|m| m.metadata.name.clone().unwrap())
        .collect();
    assert_eq!(names, ["n1", "n2", "n3"]);
    assert!(
        listed.items.iter().all(|m| {
            m.types.as_ref().map(|t| t.kind.as_str()) == Some("PartialObjectMetadata")
        })
    );
    let got = nodes.get_metadata("n2").await.unwrap();
    assert_eq!(
        got.types.map(|t| t.kind),
        Some("PartialObjectMetadata".to_owned())
    );
    let blue = nodes
        .list_metadata(&ListParams::default().labels("pool=blue"))
        .await
        .unwrap();
    assert_eq!(blue.items.len(), 3);

    // Writes answer in the form asked for too.
    let patch = Patch::Merge(json!({"metadata": {"labels": {"pool": "green"}}}));
    let patched = metas
        .patch("n3", &PatchParams::default(), &patch)
        .await
        .unwrap();
    assert_eq!(
        patched.types.map(|t| t.kind),
        Some("PartialObjectMetadata".to_owned())
    );
    assert_eq!(patched.metadata.labels.unwrap()["pool"], "green");
}

/// The next event of a raw watch.
async fn next_event(
    lines: &mut (impl futures::Stream<Item = std::io::Result<String>> + Unpin),
) -> Value {
    let line = lines.try_next().await.unwrap().expect("the watch ended");
    serde_json::from_str(&line).unwrap()
}

#[tokio::test]
async fn metadata_watches_send_metadata_only_bookmarks_included() {
    let sandbox = sandbox();
    let client = sandbox.client("tester");
    let nodes: Api<Node> = Api::all(client.clone());
    nodes
        .create(&PostParams::default(), &node("n1"))
        .await
        .unwrap();
    let n1 = raw(&client, "/api/v1/nodes/n1", "application/json")
        .await
        .unwrap();

    // A streaming list: the initial events, the bookmark that ends them, then changes.
    let request = http::Request::get(
        "/api/v1/nodes?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan\
         &allowWatchBookmarks=true&timeoutSeconds=60",
    )
    .header(http::header::ACCEPT, METADATA)
    .body(Vec::new())
    .unwrap();
    let mut lines = client.request_stream(request).await.unwrap().lines();
    let added = next_event(&mut lines).await;
    assert_eq!(added["type"], "ADDED");
    assert_eq!(added["object"], metadata_of(&n1));
    let bookmark = next_event(&mut lines).await;
    assert_eq!(bookmark["type"], "BOOKMARK");
    assert_eq!(bookmark["object"]["kind"], "PartialObjectMetadata");
    assert_eq!(bookmark["object"]["apiVersion"], "meta.k8s.io/v1");
    assert!(bookmark["object"]["metadata"]["resourceVersion"].is_string());
    assert_eq!(
        bookmark["object"]["metadata"]["annotations"],
        json!({"k8s.io/initial-events-end": "true"})
    );

    nodes
        .create(&PostParams::default(), &node("n2"))
        .await
        .unwrap();
    let patch = Patch::Merge(json!({"spec": {"unschedulable": true}}));
    nodes
        .patch("n2", &PatchParams::default(), &patch)
        .await
        .unwrap();
    nodes.delete("n2", &DeleteParams::default()).await.unwrap();
    for kind in ["ADDED", "MODIFIED", "DELETED"] {
        let event = next_event(&mut lines).await;
        assert_eq!(event["type"], kind);
        let object = &event["object"];
        assert_eq!(object["kind"], "PartialObjectMetadata", "{event}");
        assert_eq!(object["metadata"]["name"], "n2");
        assert!(object.get("spec").is_none() && object.get("status").is_none());
    }

    // kube-rs watches of `PartialObjectMeta` read them.
    let metas: Api<PartialObjectMeta<Node>> = Api::all(client.clone());
    let rv = metas
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let mut events = metas
        .watch(&WatchParams::default().timeout(60), &rv)
        .await
        .unwrap()
        .boxed();
    nodes
        .create(&PostParams::default(), &node("n3"))
        .await
        .unwrap();
    match events.try_next().await.unwrap() {
        Some(WatchEvent::Added(meta)) => {
            assert_eq!(meta.metadata.name.as_deref(), Some("n3"));
            assert_eq!(
                meta.types.map(|t| t.kind),
                Some("PartialObjectMetadata".to_owned())
            );
        }
        other => panic!("expected n3 added, got {other:?}"),
    }
}

async fn pod(pods: &Api<Pod>, name: &str, ready: bool) {
    let pod: Pod = serde_json::from_value(json!({"metadata": {"name": name, "labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}})).unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let status = json!({"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}});
    pods.patch_status(name, &PatchParams::default(), &Patch::Merge(status))
        .await
        .unwrap();
}

/// Evictions are judged as the API server judges them: from the budget's status, as the
/// disruption controller last wrote it (this sandbox runs no controller, so the test writes
/// it), taking one of its disruptions for a Ready pod.
#[tokio::test]
async fn evictions_respect_pod_disruption_budgets() {
    let sandbox = sandbox();
    let client = sandbox.client("tester");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    for name in ["web-1", "web-2", "web-3"] {
        pod(&pods, name, true).await;
    }
    pod(&pods, "web-0", false).await;
    let budgets: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), "default");
    let budget: PodDisruptionBudget = serde_json::from_value(json!({"metadata": {"name": "web-pdb"}, "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}}})).unwrap();
    budgets
        .create(&PostParams::default(), &budget)
        .await
        .unwrap();
    let refused = |error| {
        let status = api_error(error);
        assert_eq!(status.code, 429);
        assert_eq!(
            status.message,
            "Cannot evict pod as it would violate the pod's disruption budget."
        );
        status.details.unwrap().causes[0].message.clone()
    };
    // No status yet: the budget has not been processed.
    assert_eq!(
        refused(pods.evict("web-1", &Default::default()).await.unwrap_err()),
        "The disruption budget web-pdb is still being processed by the server."
    );
    let controller_says = |allowed: i32| {
        let budgets = budgets.clone();
        async move {
            let status = json!({"status": {"observedGeneration": 1, "expectedPods": 4, "currentHealthy": 3, "desiredHealthy": 2, "disruptionsAllowed": allowed}});
            budgets
                .patch_status("web-pdb", &PatchParams::default(), &Patch::Merge(status))
                .await
                .unwrap();
        }
    };
    controller_says(1).await;
    // A pod that is not Ready goes while the budget has its healthy pods, taking nothing.
    pods.evict("web-0", &Default::default()).await.unwrap();
    let allowed = |b: PodDisruptionBudget| b.status.unwrap().disruptions_allowed;
    assert_eq!(allowed(budgets.get("web-pdb").await.unwrap()), 1);
    // A Ready pod takes the one disruption allowed; the next is refused until the
    // controller allows another.
    pods.evict("web-1", &Default::default()).await.unwrap();
    assert_eq!(code(pods.get("web-1").await.unwrap_err()), 404);
    let after = budgets.get("web-pdb").await.unwrap();
    assert_eq!(allowed(after.clone()), 0);
    assert!(
        after
            .status
            .unwrap()
            .disrupted_pods
            .unwrap()
            .contains_key("web-1")
    );
    assert_eq!(
        refused(pods.evict("web-2", &Default::default()).await.unwrap_err()),
        "The disruption budget web-pdb needs 2 healthy pods and has 3 currently"
    );
    controller_says(1).await;
    pods.evict("web-2", &Default::default()).await.unwrap();
}

#[tokio::test]
async fn events_written_as_events_k8s_io_are_read_as_core_events() {
    let sandbox = sandbox();
    let client = sandbox.client("patchpilot");
    let events: Api<NewEvent> = Api::namespaced(client.clone(), "default");
    let event: NewEvent = serde_json::from_value(json!({
        "metadata": {"name": "r1.1"},
        "eventTime": "2026-11-28T01:00:00.000000Z",
        "regarding": {"apiVersion": "patchpilot.dev/v1alpha1", "kind": "PatchRollout", "name": "r1"},
        "reason": "WaveStarted", "note": "wave canary started", "type": "Normal", "action": "Progress",
        "reportingController": "patchpilot.dev/operator", "reportingInstance": "patchpilot-0",
    }))
    .unwrap();
    events.create(&PostParams::default(), &event).await.unwrap();
    let core: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(client, "default");
    let listed = core
        .list(&ListParams::default().fields("involvedObject.name=r1"))
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1);
    assert_eq!(
        listed.items[0].message.as_deref(),
        Some("wave canary started")
    );
    assert_eq!(
        listed.items[0].involved_object.kind.as_deref(),
        Some("PatchRollout")
    );
}

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

/// What the operator would refuse later is refused when it is written, with 422, the field and
/// a sentence saying what is allowed; good values of the same fields are stored.
#[tokio::test]
async fn the_schema_refuses_what_the_operator_would_refuse() {
    let sandbox = sandbox();
    let client = sandbox.client("tester");
    let windows: Api<patchpilot_api::MaintenanceWindow> = Api::all(client.clone());
    let policies: Api<PatchPolicy> = Api::all(client);
    let apply = PatchParams::apply("tester");
    let window = |name: &str, spec: Value| {
        json!({
            "apiVersion": "patchpilot.dev/v1alpha1", "kind": "MaintenanceWindow",
            "metadata": {"name": name}, "spec": spec,
        })
    };
    let cron = |expression: &str| json!({"timeZone": "Europe/Berlin", "recurrences": [{"cron": expression, "duration": "2h"}]});
    let policy = |name: &str, strategy: Value| {
        json!({
            "apiVersion": "patchpilot.dev/v1alpha1", "kind": "PatchPolicy",
            "metadata": {"name": name},
            "spec": {
                "targets": {"nodes": {}},
                "patch": {"version": "v1", "updater": {"template": {"spec": {"containers": [{"name": "u", "image": "busybox"}]}}}},
                "strategy": strategy,
            },
        })
    };
    let refused = [
        (
            windows
                .patch(
                    "minute",
                    &apply,
                    &Patch::Apply(window("minute", cron("60 22 * * Tue"))),
                )
                .await
                .map(drop),
            "spec.recurrences[0].cron: Invalid value: \"string\": cron \"60 22 * * Tue\": the minute field (the 1st) takes * or 0-59",
        ),
        (
            windows
                .patch(
                    "hour",
                    &apply,
                    &Patch::Apply(window("hour", cron("0 25 * * Tue"))),
                )
                .await
                .map(drop),
            "cron \"0 25 * * Tue\": the hour field (the 2nd) takes * or 0-23",
        ),
        (
            windows
                .patch(
                    "every",
                    &apply,
                    &Patch::Apply(window("every", cron("@every 1h"))),
                )
                .await
                .map(drop),
            "or one of @yearly, @annually, @monthly, @weekly, @daily, @midnight or @hourly",
        ),
        (
            windows
                .patch(
                    "zero",
                    &apply,
                    &Patch::Apply(window(
                        "zero",
                        json!({"recurrences": [{"start": "01:00", "duration": "0s"}]}),
                    )),
                )
                .await
                .map(drop),
            "spec.recurrences[0].duration: Invalid value: \"string\": duration must be longer than 0s",
        ),
        (
            policies
                .patch(
                    "none",
                    &apply,
                    &Patch::Apply(policy("none", json!({"maxUnavailable": 0}))),
                )
                .await
                .map(drop),
            "spec.strategy.maxUnavailable: Invalid value: \"integer\": maxUnavailable must be at least 1, or a percent like \"10%\"",
        ),
        (
            policies
                .patch(
                    "stage",
                    &apply,
                    &Patch::Apply(policy("stage", json!({"stages": [{"percent": 0}]}))),
                )
                .await
                .map(drop),
            "spec.strategy.stages[0].percent: Invalid value: 0: spec.strategy.stages[0].percent in body should be greater than or equal to 1",
        ),
    ];
    for (outcome, expected) in refused {
        let status = api_error(outcome.unwrap_err());
        assert_eq!(status.code, 422, "{}", status.message);
        assert!(
            status.message.contains(expected),
            "expected {expected:?} in: {}",
            status.message
        );
    }
    // Good values pass; a time zone of the right shape is for the operator to judge.
    for (name, spec) in [
        ("daily", cron("@daily")),
        ("weekdays", cron("*/30 22-23 * * MON-FRI")),
        (
            "typo",
            json!({"timeZone": "Europe/Berlinn", "recurrences": [{"start": "01:00", "duration": "1h"}]}),
        ),
    ] {
        windows
            .patch(name, &apply, &Patch::Apply(window(name, spec)))
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    for (name, strategy) in [
        ("one", json!({"maxUnavailable": 1})),
        (
            "percent",
            json!({"maxUnavailable": "0%", "stages": [{"percent": 1}]}),
        ),
    ] {
        policies
            .patch(name, &apply, &Patch::Apply(policy(name, strategy)))
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}
