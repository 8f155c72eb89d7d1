//! What kubectl prints from what the server serves: the server-side tables of the built-in
//! kinds and of a CustomResourceDefinition's printer columns, watches printed as tables, the
//! `all` category, and `explain` from the OpenAPI documents.

use super::{Kubectl, Table, fixture, text};

/// `kubectl get` of nodes, pods, Deployments, budgets, DaemonSets and namespaces prints the
/// columns kubectl users know, with the values the controllers keep; `get all` lists the
/// workloads; a watch prints its rows as a table too.
pub fn builtin_kinds_print_their_usual_columns(k: &impl Kubectl) {
    let ns = k.namespace();
    k.apply_fixture("web.yaml");
    k.apply_fixture("stateful-and-daemons.yaml");
    let pods = k.wait_ready("web", 3);
    let node_count = k.json(&["get", "nodes"])["items"]
        .as_array()
        .map_or(0, Vec::len);
    let nodes = Table::parse(&k.ok(&["get", "nodes"]));
    assert_eq!(nodes.headers, ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]);
    assert_eq!(nodes.rows.len(), node_count);
    let gpu = nodes.row("gpu-1");
    assert_eq!(
        (gpu["STATUS"].as_str(), gpu["ROLES"].as_str()),
        ("Ready", "worker")
    );
    // The kubelet's version (`v1.…` in the sandbox, kwok's own on the real control plane).
    assert!(!gpu["VERSION"].is_empty(), "{gpu:?}");

    let wide = Table::parse(&k.ok_here(&["get", "pods", "-o", "wide"]));
    assert_eq!(
        wide.headers,
        [
            "NAME",
            "READY",
            "STATUS",
            "RESTARTS",
            "AGE",
            "IP",
            "NODE",
            "NOMINATED NODE",
            "READINESS GATES"
        ]
    );
    let name = pods[0]["metadata"]["name"].as_str().unwrap();
    let pod = wide.row(name);
    assert_eq!(
        (
            pod["READY"].as_str(),
            pod["STATUS"].as_str(),
            pod["RESTARTS"].as_str()
        ),
        ("1/1", "Running", "0")
    );
    assert_eq!(pod["NODE"], pods[0]["spec"]["nodeName"].as_str().unwrap());
    assert_eq!(pod["NOMINATED NODE"], "<none>");

    let deployments = Table::parse(&k.ok_here(&["get", "deploy"]));
    assert_eq!(
        deployments.headers,
        ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    );
    assert_eq!(deployments.row("web")["READY"], "3/3");
    let budgets = Table::parse(&k.ok_here(&["get", "pdb"]));
    assert_eq!(
        budgets.headers,
        [
            "NAME",
            "MIN AVAILABLE",
            "MAX UNAVAILABLE",
            "ALLOWED DISRUPTIONS",
            "AGE"
        ]
    );
    let budget = budgets.row("web-pdb");
    assert_eq!(
        (
            budget["MIN AVAILABLE"].as_str(),
            budget["MAX UNAVAILABLE"].as_str()
        ),
        ("2", "N/A")
    );
    // The disruption controller counts the three ready pods against the two kept.
    k.eventually(30, "one disruption allowed", || {
        let budgets = Table::parse(&k.ok_here(&["get", "pdb"]));
        (budgets.row("web-pdb")["ALLOWED DISRUPTIONS"] == "1").then_some(())
    });
    let daemons = k.eventually(60, "a ready node-exporter on every node", || {
        let daemons = Table::parse(&k.ok_here(&["get", "ds"]));
        let row = daemons.row("node-exporter");
        (row["READY"] == node_count.to_string()).then_some(daemons)
    });
    assert_eq!(
        daemons.headers,
        [
            "NAME",
            "DESIRED",
            "CURRENT",
            "READY",
            "UP-TO-DATE",
            "AVAILABLE",
            "NODE SELECTOR",
            "AGE"
        ]
    );
    assert_eq!(daemons.row("node-exporter")["NODE SELECTOR"], "<none>");
    let stateful = k.eventually(60, "two ready cache pods", || {
        let sets = Table::parse(&k.ok_here(&["get", "sts"]));
        (sets.row("cache")["READY"] == "2/2").then_some(sets)
    });
    assert_eq!(stateful.headers, ["NAME", "READY", "AGE"]);
    let namespaces = Table::parse(&k.ok(&["get", "ns"]));
    assert_eq!(namespaces.headers, ["NAME", "STATUS", "AGE"]);
    assert_eq!(namespaces.row(ns)["STATUS"], "Active");

    // The `all` category: the workloads and their pods.
    let all = k.ok_here(&["get", "all"]);
    for name in [
        "pod/cache-0",
        "deployment.apps/web",
        "statefulset.apps/cache",
        "daemonset.apps/node-exporter",
        "replicaset.apps/web-",
    ] {
        assert!(all.contains(name), "{name} in {all}");
    }

    // A watch prints its rows as tables too: first the pods there are.
    let watch = k.run(&["get", "pods", "-n", ns, "--watch", "--request-timeout=2s"]);
    let watched = Table::parse(&text(&watch.stdout));
    assert_eq!(watched.headers[..3], ["NAME", "READY", "STATUS"]);
    let expected = 3 + 2 + node_count;
    assert!(watched.rows.len() >= expected, "{:?}", watched.rows);
}

/// A CustomResourceDefinition applied with kubectl: Established (`kubectl wait`), its
/// objects printed with its printer columns (a missing value as nothing, a priority column
/// only with `-o wide`), reached by short name and category, its own row in `get crd`,
/// `explain`ed from its schema, and its schema's minimum enforced.
pub fn a_crd_applied_with_kubectl_is_served_with_its_columns(k: &impl Kubectl) {
    k.delete_at_end(
        "apiextensions.k8s.io/v1",
        "customresourcedefinitions",
        "widgets.example.com",
    );
    k.ok(&["apply", "-f", &fixture("widget-crd.yaml")]);
    let waited = k.ok(&[
        "wait",
        "--for=condition=Established",
        "crd/widgets.example.com",
        "--timeout=20s",
    ]);
    assert!(waited.contains("condition met"), "{waited}");
    // kubectl finds the new kind through discovery, which a real API server updates a moment
    // after the CRD is Established.
    k.eventually(30, "widgets in discovery", || {
        let output = k.run(&["apply", "-n", k.namespace(), "-f", &fixture("widget.yaml")]);
        output.status.success().then_some(())
    });
    let widgets = Table::parse(&k.ok_here(&["get", "wdg"]));
    assert_eq!(
        widgets.headers,
        ["NAME", "SIZE", "FIRST PART", "SHINY", "READY", "AGE"]
    );
    let sprocket = widgets.row("sprocket");
    assert_eq!(
        (
            sprocket["SIZE"].as_str(),
            sprocket["FIRST PART"].as_str(),
            sprocket["SHINY"].as_str()
        ),
        ("3", "cog", "true")
    );
    assert_eq!(sprocket["READY"], "", "a missing value prints as nothing");
    assert!(sprocket["AGE"].ends_with('s'), "{sprocket:?}");
    let wide = Table::parse(&k.ok_here(&["get", "gadgets", "-o", "wide"]));
    assert_eq!(
        wide.headers,
        [
            "NAME",
            "SIZE",
            "FIRST PART",
            "SHINY",
            "READY",
            "COLOR",
            "AGE"
        ]
    );
    assert_eq!(wide.row("sprocket")["COLOR"], "blue");
    let crds = Table::parse(&k.ok(&["get", "crd", "widgets.example.com"]));
    assert_eq!(crds.headers, ["NAME", "SCOPE", "VERSIONS", "CREATED AT"]);
    let widgets_crd = crds.row("widgets.example.com");
    assert_eq!(
        (
            widgets_crd["SCOPE"].as_str(),
            widgets_crd["VERSIONS"].as_str()
        ),
        ("Namespaced", "v1(storage)")
    );
    // The OpenAPI documents follow the new kind a moment later on a real API server.
    let explained = k.eventually(30, "widgets explained", || {
        let output = k.run(&["explain", "widget.spec.size"]);
        output.status.success().then(|| text(&output.stdout))
    });
    assert!(explained.contains("How big it is."), "{explained}");
    let refused = k.run(&[
        "patch",
        "wdg",
        "sprocket",
        "-n",
        k.namespace(),
        "--type=merge",
        "-p",
        r#"{"spec":{"size":0}}"#,
    ]);
    assert!(!refused.status.success());
    let stderr = text(&refused.stderr);
    assert!(
        stderr.contains(
            r#"The Widget "sprocket" is invalid: spec.size: Invalid value: 0: spec.size in body should be greater than or equal to 1"#
        ),
        "{stderr}"
    );
}

/// `kubectl explain` of our kinds and of a built-in one, from the OpenAPI v3 documents.
pub fn explain_reads_the_openapi_documents(k: &impl Kubectl) {
    let explained = k.ok(&["explain", "patchpolicy.spec.strategy"]);
    for needle in [
        "GROUP:      patchpilot.dev",
        "KIND:       PatchPolicy",
        "VERSION:    v1alpha1",
        "FIELD: strategy <Object>",
        "maxUnavailable",
        "canary",
    ] {
        assert!(explained.contains(needle), "{needle:?} in {explained}");
    }
    let explained = k.ok(&["explain", "deployment.spec.replicas"]);
    for needle in [
        "GROUP:      apps",
        "KIND:       Deployment",
        "FIELD: replicas <integer>",
    ] {
        assert!(explained.contains(needle), "{needle:?} in {explained}");
    }
    let recursive = k.ok(&["explain", "maintenancewindow.spec", "--recursive"]);
    for needle in [
        "timeZone\t<string>",
        "recurrences\t<[]Object>",
        "cutoff\t<string>",
    ] {
        assert!(recursive.contains(needle), "{needle:?} in {recursive}");
    }
    let stderr = k.fails(&["explain", "patchpolicy.spec.nothing"]);
    assert!(
        stderr.contains(r#"field "nothing" does not exist"#),
        "{stderr}"
    );
}
