//! Part 5: the operator at the same scale on a real control plane: `tests/cluster` (Kubernetes
//! built from its Go modules, kwok's simulated kubelets) holding the scenario's 5,000 nodes
//! and 50,000 pods, `patchpilot run` as its own process with a ServiceAccount's token.
//!
//! ```sh
//! tests/cluster/up /tmp/pp-scale --nodes 1 --port 18443 --disable-qps-limits
//! SCALE_PARTS=5 SCALE_CLUSTER=/tmp/pp-scale cargo bench --bench scale
//! tests/cluster/down /tmp/pp-scale
//! ```
//!
//! `SCALE_SCENARIO=FILE` runs another scenario instead, for example a small one to try the
//! measurement in a few minutes before the half hour to an hour the full size takes on two
//! cores. A run that gives up waiting (after two hours) can be started again on the same
//! cluster: the objects already there are kept, and it goes on waiting for them.
//!
//! The benchmark replaces the node `up` made with the scenario's (annotated for kwok),
//! creates its namespaces, Deployments and budgets, waits until every Deployment has its 10
//! pods Ready, then measures as part 4 does, and finally counts the operator's requests per
//! node for the first 100 nodes updated from the API server's audit log
//! (`tests/cluster/traffic … --first 100`).

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use futures::{StreamExt, stream};
use k8s_openapi::api::{apps::v1::Deployment, core::v1::Node};
use kube::{
    Api, Client,
    api::{ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams},
    core::GroupVersionKind,
};
use patchpilot::sandbox::scenario::Scenario;
use serde_json::{Value, json};

use crate::{
    SCENARIO,
    mem::{Memory, mib},
    processes::{Cluster, client_of, run_operator},
};

/// The operator's identity: the chart's ServiceAccount, whose requests the traffic script
/// counts by default.
const NAMESPACE: &str = "patchpilot-system";
const SERVICE_ACCOUNT: &str = "patchpilot";

/// The processes of `tests/cluster`, by the name of their pid file.
const SERVERS: [&str; 5] = [
    "kube-apiserver",
    "etcd",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok",
];

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn kubectl(kubeconfig: &Path, args: &[&str]) -> Result<String, String> {
    let out = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .output()
        .map_err(|e| format!("kubectl: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn pid_of(dir: &Path, server: &str) -> Option<u32> {
    std::fs::read_to_string(dir.join("pids").join(format!("{server}.pid")))
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn server_memory(dir: &Path) -> String {
    SERVERS
        .iter()
        .map(|s| {
            let rss = pid_of(dir, s)
                .and_then(Memory::of)
                .map_or("?".into(), |m| mib(m.rss_kib));
            format!("{s} {rss}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// An object of the scenario as the real cluster takes it: nodes annotated for kwok.
fn for_kwok(mut object: Value) -> Value {
    if object["kind"] == "Node" {
        object["metadata"]["annotations"]["kwok.x-k8s.io/node"] = json!("fake");
        object["metadata"]["labels"]["type"] = json!("kwok");
    }
    object
}

fn api_of(client: &Client, object: &Value) -> Api<DynamicObject> {
    let (group, version) = match object["apiVersion"]
        .as_str()
        .unwrap_or("v1")
        .split_once('/')
    {
        Some((group, version)) => (group.to_owned(), version.to_owned()),
        None => (
            String::new(),
            object["apiVersion"].as_str().unwrap_or("v1").to_owned(),
        ),
    };
    let gvk = GroupVersionKind::gvk(&group, &version, object["kind"].as_str().unwrap_or(""));
    let resource = ApiResource::from_gvk(&gvk);
    match object["metadata"]["namespace"].as_str() {
        Some(namespace) => Api::namespaced_with(client.clone(), namespace, &resource),
        None => Api::all_with(client.clone(), &resource),
    }
}

/// Creates `objects`, 32 at a time; those already there are left as they are.
async fn create_all(client: &Client, objects: Vec<Value>) -> usize {
    let results: Vec<Result<(), String>> = stream::iter(objects)
        .map(|object| async move {
            let typed: DynamicObject =
                serde_json::from_value(object.clone()).map_err(|e| e.to_string())?;
            match api_of(client, &object)
                .create(&PostParams::default(), &typed)
                .await
            {
                Ok(_) => Ok(()),
                Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
                Err(error) => Err(format!(
                    "{} {}: {error}",
                    object["kind"], object["metadata"]["name"]
                )),
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    let failed: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    for failure in failed.iter().take(5) {
        println!("PROBLEM creating {failure}");
    }
    results.len() - failed.len()
}

/// A kubeconfig for the ServiceAccount `patchpilot` (bound to `cluster-admin`: the figures are
/// of memory and traffic, not of RBAC, which the e2e suite checks), with a token from the
/// TokenRequest API.
fn operator_kubeconfig(dir: &Path, admin: &Path) -> Result<PathBuf, String> {
    let _ = kubectl(admin, &["create", "namespace", NAMESPACE]);
    let _ = kubectl(
        admin,
        &["create", "serviceaccount", SERVICE_ACCOUNT, "-n", NAMESPACE],
    );
    let _ = kubectl(
        admin,
        &[
            "create",
            "clusterrolebinding",
            "patchpilot-scale-bench",
            "--clusterrole=cluster-admin",
            &format!("--serviceaccount={NAMESPACE}:{SERVICE_ACCOUNT}"),
        ],
    );
    let token = kubectl(
        admin,
        &[
            "create",
            "token",
            SERVICE_ACCOUNT,
            "-n",
            NAMESPACE,
            "--duration=24h",
        ],
    )?;
    let server = kubectl(
        admin,
        &[
            "config",
            "view",
            "-o",
            "jsonpath={.clusters[0].cluster.server}",
        ],
    )?;
    let path = dir.join("patchpilot-scale.kubeconfig");
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: scale\n  cluster:\n    server: {server}\n    certificate-authority: {}\nusers:\n- name: patchpilot\n  user:\n    token: {}\ncontexts:\n- name: patchpilot\n  context: {{cluster: scale, user: patchpilot}}\ncurrent-context: patchpilot\n",
        dir.join("pki/ca.crt").display(),
        token.trim()
    );
    std::fs::write(&path, text).map_err(|e| e.to_string())?;
    Ok(path)
}

/// What an earlier run on the same cluster left goes, so that this one starts where that one
/// did: the policy `scale-os` and its rollouts (their finalizers dropped: no operator runs),
/// the updater Jobs, and patchpilot's annotations, label and cordon on the nodes. Settling
/// 50,000 pods takes the real cluster half an hour; a second run need not.
async fn forget_earlier_run(admin: &Client) -> usize {
    let unfinalized = Patch::Merge(json!({"metadata": {"finalizers": null}}));
    let params = PatchParams::default();
    let kinds = [
        ("patchrollouts", "PatchRollout"),
        ("patchpolicies", "PatchPolicy"),
    ];
    for (plural, kind) in kinds {
        let resource = ApiResource {
            group: "patchpilot.dev".into(),
            version: "v1alpha1".into(),
            api_version: "patchpilot.dev/v1alpha1".into(),
            kind: kind.into(),
            plural: plural.into(),
        };
        let api = Api::<DynamicObject>::all_with(admin.clone(), &resource);
        for object in api
            .list(&ListParams::default())
            .await
            .map(|l| l.items)
            .unwrap_or_default()
        {
            let name = object.metadata.name.unwrap_or_default();
            let _ = api.patch(&name, &params, &unfinalized).await;
            let _ = api.delete(&name, &DeleteParams::default()).await;
        }
    }
    let jobs = Api::<k8s_openapi::api::batch::v1::Job>::namespaced(admin.clone(), NAMESPACE);
    let _ = jobs
        .delete_collection(&DeleteParams::background(), &ListParams::default())
        .await;
    let nodes = Api::<Node>::all(admin.clone());
    let mut cleaned = 0;
    for node in nodes
        .list(&ListParams::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default()
    {
        let ours: Vec<String> = node
            .metadata
            .annotations
            .iter()
            .flatten()
            .map(|(k, _)| k.clone())
            .filter(|k| patchpilot::api::keys::is_ours(k))
            .collect();
        if ours.is_empty() {
            continue;
        }
        let mut annotations = json!({});
        for key in ours {
            annotations[key] = Value::Null;
        }
        let patch = json!({
            "metadata": {"annotations": annotations, "labels": {patchpilot::api::keys::LOCKED_LABEL: null}},
            "spec": {"unschedulable": null},
        });
        let name = node.metadata.name.unwrap_or_default();
        if nodes
            .patch(&name, &params, &Patch::Merge(patch))
            .await
            .is_ok()
        {
            cleaned += 1;
        }
    }
    cleaned
}

/// 5. The real control plane in `SCALE_CLUSTER`.
pub async fn operator_on_real_control_plane() {
    let Some(dir) = std::env::var_os("SCALE_CLUSTER").map(PathBuf::from) else {
        println!(
            "PROBLEM part 5 needs SCALE_CLUSTER=DIR, a cluster of `tests/cluster/up DIR --nodes \
             1 --disable-qps-limits`"
        );
        return;
    };
    println!(
        "\n== 5. `patchpilot run` against the real control plane in {}",
        dir.display()
    );
    let admin_config = dir.join("kubeconfig");
    // `tests/cluster/up` names its one context `patchpilot-e2e`.
    let admin = client_of(&admin_config, "patchpilot-e2e").await;
    let began = Instant::now();
    if let Err(error) = kubectl(
        &admin_config,
        &[
            "apply",
            "--server-side",
            "--force-conflicts",
            "-f",
            &repo("crds").to_string_lossy(),
        ],
    ) {
        println!("PROBLEM the CRDs: {error}");
        return;
    }
    let _ = kubectl(
        &admin_config,
        &[
            "wait",
            "--for=condition=Established",
            "crd",
            "--all",
            "--timeout=60s",
        ],
    );

    let file = std::env::var_os("SCALE_SCENARIO").map_or(PathBuf::from(SCENARIO), PathBuf::from);
    let scenario = Scenario::read(&file).expect("the scenario reads");
    let objects: Vec<Value> = scenario.generated().into_iter().map(for_kwok).collect();
    let names: std::collections::BTreeSet<String> = objects
        .iter()
        .filter(|o| o["kind"] == "Node")
        .filter_map(|o| o["metadata"]["name"].as_str().map(str::to_owned))
        .collect();
    // The nodes `up` made are not the scenario's: they go.
    let nodes = Api::<Node>::all(admin.clone());
    for node in nodes
        .list(&ListParams::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default()
    {
        let name = node.metadata.name.unwrap_or_default();
        if !names.contains(&name) {
            let _ = nodes.delete(&name, &DeleteParams::default()).await;
        }
    }
    let workloads = objects.iter().filter(|o| o["kind"] == "Deployment").count();
    println!(
        "  the scenario {}: {} nodes, {workloads} Deployments",
        file.display(),
        names.len()
    );
    let (first, rest): (Vec<Value>, Vec<Value>) = objects
        .into_iter()
        .partition(|o| o["kind"] == "Namespace" || o["kind"] == "Node");
    let created = create_all(&admin, first).await + create_all(&admin, rest).await;
    println!(
        "RESULT real control plane: {created} objects of the scenario created in {:.1?}",
        began.elapsed()
    );

    let cleaned = forget_earlier_run(&admin).await;
    if cleaned > 0 {
        println!("  an earlier run's policy, rollouts, Jobs and marks on {cleaned} nodes removed");
    }
    let deployments = Api::<Deployment>::all(admin.clone());
    let mut last_report = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let Ok(list) = deployments.list(&ListParams::default()).await else {
            continue;
        };
        let ready = list
            .items
            .iter()
            .filter(|d| {
                let wanted = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
                d.status
                    .as_ref()
                    .is_some_and(|s| s.ready_replicas == Some(wanted))
            })
            .count();
        if ready == workloads {
            break;
        }
        if last_report.elapsed() >= Duration::from_secs(30) {
            println!(
                "  … {:>6.1}s: {ready} of {} Deployments with every pod Ready; {}",
                began.elapsed().as_secs_f64(),
                list.items.len(),
                server_memory(&dir)
            );
            last_report = Instant::now();
        }
        if began.elapsed() > Duration::from_secs(2 * 3600) {
            // Run again on the same cluster to go on waiting: what exists is left as it is.
            println!("PROBLEM the real cluster did not settle in two hours");
            return;
        }
    }
    println!(
        "RESULT real control plane: every Deployment Ready after {:.1?}; VmRSS of {}",
        began.elapsed(),
        server_memory(&dir)
    );

    let kubeconfig = match operator_kubeconfig(&dir, &admin_config) {
        Ok(path) => path,
        Err(error) => {
            println!("PROBLEM the operator's ServiceAccount and token: {error}");
            return;
        }
    };
    let cluster = Cluster {
        admin,
        kubeconfig,
        context: "patchpilot",
        servers: SERVERS
            .iter()
            .filter_map(|s| pid_of(&dir, s).map(|pid| (*s, pid)))
            .collect(),
        reboot: "cluster.patchpilot.dev/reboot",
        env: vec![("POD_NAMESPACE", NAMESPACE.to_owned())],
    };
    let log = repo("target/scale-bench/operator-real.log");
    std::fs::create_dir_all(log.parent().unwrap()).unwrap();
    println!("  operator log: {}", log.display());
    run_operator(&cluster, &log).await;

    match Command::new(repo("tests/cluster/traffic"))
        .arg(dir.join("audit.log"))
        .args(["scale-os", "--first", "100"])
        .output()
    {
        Ok(out) => {
            println!("RESULT the operator's requests per node, from the real audit log:");
            for line in String::from_utf8_lossy(&out.stdout).lines() {
                println!("  {line}");
            }
            let err = String::from_utf8_lossy(&out.stderr);
            if !err.trim().is_empty() {
                println!("PROBLEM tests/cluster/traffic: {err}");
            }
        }
        Err(error) => println!("PROBLEM tests/cluster/traffic: {error}"),
    }
}
