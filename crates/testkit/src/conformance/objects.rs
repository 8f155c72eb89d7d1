//! Objects: create, get, list with selectors and pages, update with optimistic concurrency,
//! every patch type, server-side apply conflicts, the status subresource and generation,
//! schema and CEL refusals of custom resources, finalizers and garbage collection.

use std::{collections::BTreeMap, time::Duration};

use k8s_openapi::api::{apps::v1::Deployment, core::v1::ConfigMap};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, PropagationPolicy};
use patchpilot_api::{MaintenanceWindow, PatchPolicy, PatchRollout};
use serde_json::{Value, json};

use super::{Backend, api_error, code, config_map, eventually, namespace_config_maps};

/// How long the garbage collector of a real cluster may take.
const COLLECTED: Duration = Duration::from_secs(30);

/// Create, get, list with label and field selectors, update with optimistic concurrency,
/// delete; no generation on a ConfigMap; a namespace that does not exist is 404.
pub async fn create_get_list_update_delete_with_optimistic_concurrency(backend: &impl Backend) {
    let client = backend.client();
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), backend.namespace());
    let created = maps
        .create(&PostParams::default(), &config_map("a", &[("app", "web")]))
        .await
        .unwrap();
    assert!(created.metadata.uid.is_some() && created.metadata.creation_timestamp.is_some());
    // A ConfigMap has no generation (only kinds with a spec a controller reports on do).
    assert_eq!(created.metadata.generation, None);
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
    assert_eq!(updated.metadata.generation, None);
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
    let other_ns: Api<ConfigMap> = Api::namespaced(client, "nowhere");
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

/// Lists come in pages, in name order; `remainingItemCount` only without selectors.
pub async fn lists_come_in_pages(backend: &impl Backend) {
    let client = backend.client();
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), backend.namespace());
    // What the namespace held before (`kube-root-ca.crt` on a real cluster) is listed too.
    let before = namespace_config_maps(&client, backend.namespace()).await;
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
    let mut expected: Vec<String> = before.clone();
    expected.extend((0..5).map(|i| format!("m{i}")));
    expected.sort();
    assert_eq!(names, expected);
    // A list without selectors says how many remain; with selectors, the API server cannot
    // know without reading them all, and leaves the count out.
    let first = maps.list(&ListParams::default().limit(2)).await.unwrap();
    assert_eq!(
        first.metadata.remaining_item_count,
        Some(expected.len() as i64 - 2)
    );
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
/// token carries it: the later pages are of the same list, even when objects change between
/// them.
pub async fn pages_report_the_resource_version_of_the_first_page(backend: &impl Backend) {
    let maps: Api<ConfigMap> = Api::namespaced(backend.client(), backend.namespace());
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

/// JSON merge, JSON patch (with a failing `test`: 422) and strategic merge patches; a
/// strategic merge patch of a custom resource is 415.
pub async fn every_patch_type(backend: &impl Backend) {
    let client = backend.client();
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), backend.namespace());
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
    // A JSON patch sees the object as served, `managedFields` entries' `fieldsV1` included.
    let json_patch: json_patch::Patch = serde_json::from_value(json!([
        {"op": "add", "path": "/data/other", "value": "x"},
        {"op": "test", "path": "/data/key", "value": "value"},
        {"op": "test", "path": "/metadata/managedFields/0/fieldsV1/f:data/f:key", "value": {}},
    ]))
    .unwrap();
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

    let deployments: Api<Deployment> = Api::namespaced(client.clone(), backend.namespace());
    // No replicas: on a real cluster, no pod lands on the shared nodes.
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "web"}}, "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
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
    let policies: Api<PatchPolicy> = Api::all(client);
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

/// The phase of a rollout, as JSON.
fn phase(rollout: PatchRollout) -> Value {
    serde_json::to_value(rollout.status.unwrap().phase).unwrap()
}

/// Server-side apply with managers and conflicts, a CEL transition rule, the status
/// subresource, and the generation.
pub async fn server_side_apply_status_subresource_and_generation(backend: &impl Backend) {
    let rollouts: Api<PatchRollout> = Api::all(backend.client());
    let name = backend.cluster_object("patchpilot.dev/v1alpha1", "patchrollouts", "r1");
    let name = name.as_str();
    let apply = |manager: &str| PatchParams::apply(manager);
    let created = rollouts
        .patch(name, &apply("kubectl"), &Patch::Apply(rollout(name)))
        .await
        .unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    let managed = created.metadata.managed_fields.unwrap();
    let fields = &managed[0].fields_v1.as_ref().expect("fieldsV1").0;
    assert!(
        fields["f:spec"].is_object(),
        "fieldsV1 is served as an object: {fields}"
    );
    let managers: Vec<_> = managed.into_iter().map(|m| m.manager.unwrap()).collect();
    assert_eq!(managers, ["kubectl"]);

    // Another manager changing a field kubectl owns conflicts, unless forced.
    let mut approve = rollout(name);
    approve["spec"]["approved"] = json!(true);
    let conflict = api_error(
        rollouts
            .patch(name, &apply("someone"), &Patch::Apply(approve.clone()))
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
        .patch(name, &apply("someone").force(), &Patch::Apply(approve))
        .await
        .unwrap();
    assert!(forced.spec.approved);
    assert_eq!(forced.metadata.generation, Some(2));
    // The immutable patch is refused by its CEL rule, whoever owns it.
    let mut repatch = rollout(name);
    repatch["spec"]["patch"]["version"] = json!("v2");
    let refused = api_error(
        rollouts
            .patch(name, &apply("kubectl").force(), &Patch::Apply(repatch))
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
    let status = json!({"apiVersion": "patchpilot.dev/v1alpha1", "kind": "PatchRollout", "metadata": {"name": name}, "status": {"phase": "Progressing"}});
    let written = rollouts
        .patch_status(name, &apply("patchpilot"), &Patch::Apply(status))
        .await
        .unwrap();
    assert_eq!(
        written.metadata.generation,
        Some(2),
        "unchanged by the status write"
    );
    assert_eq!(phase(written), "Progressing");
    // Status sent to the main resource is ignored.
    let ignored = rollouts
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Failed"}, "spec": {"paused": true}})),
        )
        .await
        .unwrap();
    assert_eq!(ignored.metadata.generation, Some(3));
    assert!(ignored.spec.paused);
    assert_eq!(phase(ignored), "Progressing");
}

/// A custom resource the schema refuses is 422, naming the kind, the object and the field.
pub async fn invalid_custom_resources_are_refused_with_the_field(backend: &impl Backend) {
    let client = backend.client();
    let policies: Api<PatchPolicy> = Api::all(client.clone());
    let name = backend.cluster_object("patchpilot.dev/v1alpha1", "patchpolicies", "workers-os");
    let mut policy: Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(crate::repo::path("examples/node-os-policy.yaml")).unwrap(),
    )
    .unwrap();
    policy["metadata"]["name"] = json!(name);
    policy["spec"]["strategy"]["maxUnavailable"] = json!("150%");
    let data = serde_json::to_vec(&policy).unwrap();
    let request = http::Request::post("/apis/patchpilot.dev/v1alpha1/patchpolicies")
        .header("content-type", "application/json")
        .body(data)
        .unwrap();
    let error = api_error(client.request::<PatchPolicy>(request).await.unwrap_err());
    assert_eq!(error.code, 422);
    let expected =
        format!("PatchPolicy.patchpilot.dev \"{name}\" is invalid: spec.strategy.maxUnavailable");
    assert!(error.message.contains(&expected), "{}", error.message);
    policy["spec"]["strategy"]["maxUnavailable"] = json!(1);
    let good: PatchPolicy = serde_json::from_value(policy).unwrap();
    policies
        .create(&PostParams::default(), &good)
        .await
        .unwrap();
}

/// A finalizer holds a deletion until removed; background deletion takes the dependents
/// (at once in the sandbox, within seconds on a real cluster, whose garbage collector works
/// on its own); orphaning keeps them, without the owner reference.
pub async fn finalizers_hold_deletion_and_owners_take_their_dependents(backend: &impl Backend) {
    let maps: Api<ConfigMap> = Api::namespaced(backend.client(), backend.namespace());
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
    let owned_by = |owner: &ConfigMap| {
        vec![serde_json::from_value(json!({"apiVersion": "v1", "kind": "ConfigMap", "name": owner.metadata.name, "uid": owner.metadata.uid})).unwrap()]
    };
    for name in ["child", "orphan-child"] {
        let mut child = config_map(name, &[]);
        child.metadata.owner_references = Some(owned_by(&owner));
        maps.create(&PostParams::default(), &child).await.unwrap();
    }
    maps.delete("owner", &DeleteParams::default())
        .await
        .unwrap();
    eventually(
        "background deletion takes dependents",
        COLLECTED,
        || async { maps.get_opt("child").await.unwrap().is_none().then_some(()) },
    )
    .await;
    let orphan_owner = maps
        .create(&PostParams::default(), &config_map("owner2", &[]))
        .await
        .unwrap();
    let mut child = config_map("kept", &[]);
    child.metadata.owner_references = Some(owned_by(&orphan_owner));
    maps.create(&PostParams::default(), &child).await.unwrap();
    let orphan = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Orphan),
        ..DeleteParams::default()
    };
    maps.delete("owner2", &orphan).await.unwrap();
    eventually(
        "the orphan loses its owner reference",
        COLLECTED,
        || async {
            let kept = maps.get("kept").await.unwrap();
            kept.metadata
                .owner_references
                .unwrap_or_default()
                .is_empty()
                .then_some(())
        },
    )
    .await;
    eventually("the orphaning owner gone", COLLECTED, || async {
        maps.get_opt("owner2")
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
    assert!(maps.get_opt("kept").await.unwrap().is_some());
}

/// What the operator would refuse later is refused when it is written, with 422, the field and
/// a sentence saying what is allowed; good values of the same fields are stored.
pub async fn the_schema_refuses_what_the_operator_would_refuse(backend: &impl Backend) {
    let client = backend.client();
    let windows: Api<MaintenanceWindow> = Api::all(client.clone());
    let policies: Api<PatchPolicy> = Api::all(client);
    let apply = PatchParams::apply("tester");
    let window_name =
        |base: &str| backend.cluster_object("patchpilot.dev/v1alpha1", "maintenancewindows", base);
    let policy_name =
        |base: &str| backend.cluster_object("patchpilot.dev/v1alpha1", "patchpolicies", base);
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
    let windows_refused = [
        (
            "minute",
            cron("60 22 * * Tue"),
            "spec.recurrences[0].cron: Invalid value: \"60 22 * * Tue\": cron \"60 22 * * Tue\": the minute field (the 1st) takes * or 0-59",
        ),
        (
            "hour",
            cron("0 25 * * Tue"),
            "cron \"0 25 * * Tue\": the hour field (the 2nd) takes * or 0-23",
        ),
        (
            "every",
            cron("@every 1h"),
            "or one of @yearly, @annually, @monthly, @weekly, @daily, @midnight or @hourly",
        ),
        (
            "zero",
            json!({"recurrences": [{"start": "01:00", "duration": "0s"}]}),
            "spec.recurrences[0].duration: Invalid value: \"0s\": duration must be longer than 0s",
        ),
    ];
    let mut refused = Vec::new();
    for (base, spec, expected) in windows_refused {
        let name = window_name(base);
        let outcome = windows
            .patch(&name, &apply, &Patch::Apply(window(&name, spec)))
            .await
            .map(drop);
        refused.push((outcome, expected));
    }
    let policies_refused = [
        (
            "none",
            json!({"maxUnavailable": 0}),
            "spec.strategy.maxUnavailable: Invalid value: 0: maxUnavailable must be at least 1, or a percent like \"10%\"",
        ),
        (
            "stage",
            json!({"stages": [{"percent": 0}]}),
            "spec.strategy.stages[0].percent: Invalid value: 0: spec.strategy.stages[0].percent in body should be greater than or equal to 1",
        ),
    ];
    for (base, strategy, expected) in policies_refused {
        let name = policy_name(base);
        let outcome = policies
            .patch(&name, &apply, &Patch::Apply(policy(&name, strategy)))
            .await
            .map(drop);
        refused.push((outcome, expected));
    }
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
    for (base, spec) in [
        ("daily", cron("@daily")),
        ("weekdays", cron("*/30 22-23 * * MON-FRI")),
        (
            "typo",
            json!({"timeZone": "Europe/Berlinn", "recurrences": [{"start": "01:00", "duration": "1h"}]}),
        ),
    ] {
        let name = window_name(base);
        windows
            .patch(&name, &apply, &Patch::Apply(window(&name, spec)))
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    for (base, strategy) in [
        ("one", json!({"maxUnavailable": 1})),
        (
            "percent",
            json!({"maxUnavailable": "0%", "stages": [{"percent": 1}]}),
        ),
    ] {
        let name = policy_name(base);
        policies
            .patch(&name, &apply, &Patch::Apply(policy(&name, strategy)))
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

/// The `Date` of every answer is the server's clock, the one its timestamps come from: a
/// client that shows ages (`kubectl patchpilot`) reads it instead of its own clock.
pub async fn the_date_header_is_the_clock_of_the_timestamps(backend: &impl Backend) {
    let client = backend.client();
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), backend.namespace());
    let created = maps
        .create(&PostParams::default(), &config_map("dated", &[]))
        .await
        .unwrap();
    let created = created.metadata.creation_timestamp.unwrap().0;
    let request = http::Request::get(format!(
        "/api/v1/namespaces/{}/configmaps/dated",
        backend.namespace()
    ))
    .body(Vec::new())
    .unwrap();
    let response = client.send(request.map(Into::into)).await.unwrap();
    let date = response
        .headers()
        .get(http::header::DATE)
        .expect("every answer has a Date")
        .to_str()
        .unwrap()
        .to_owned();
    let date = jiff::fmt::strtime::parse("%a, %d %b %Y %H:%M:%S GMT", &date)
        .and_then(|t| t.to_datetime())
        .and_then(|t| t.to_zoned(jiff::tz::TimeZone::UTC))
        .map(|t| t.timestamp())
        .unwrap_or_else(|e| panic!("Date {date:?} is not an HTTP date: {e}"));
    let apart = date.duration_since(created).as_secs();
    assert!(
        (0..120).contains(&apart),
        "created at {created}, answered with Date {date}: {apart} s apart"
    );
}
