//! Objects through kubectl: ours refused by the schema, named by field, in every way kubectl
//! writes (client-side apply, server-side apply, create); unknown fields refused under
//! kubectl's strict field validation; labels, annotations, label selectors and label
//! columns; deletion; and built-in kinds made by `kubectl create`'s generators.

use super::{Kubectl, Table, fixture};
use crate::repo;

/// An invalid value is refused with the object's kind and name, the field's path and the
/// value, whichever way kubectl writes it; an unknown field is refused as kubectl asks
/// (`fieldValidation=Strict`); nothing refused is stored.
pub fn invalid_objects_are_refused_naming_the_field(k: &impl Kubectl) {
    k.delete_at_end("patchpilot.dev/v1alpha1", "patchpolicies", "too-eager");
    k.delete_at_end("patchpilot.dev/v1alpha1", "maintenancewindows", "typo");
    let invalid = fixture("invalid-policy.yaml");
    for args in [
        vec!["apply", "-f", &invalid],
        vec!["apply", "--server-side", "-f", &invalid],
        vec!["create", "-f", &invalid],
    ] {
        let stderr = k.fails(&args);
        assert!(
            stderr.contains(r#"The PatchPolicy "too-eager" is invalid: spec.strategy.maxUnavailable: Invalid value: "150%""#),
            "kubectl {}: {stderr}",
            args.join(" ")
        );
    }
    let typo = fixture("unknown-field.yaml");
    for args in [vec!["apply", "-f", &typo], vec!["create", "-f", &typo]] {
        let stderr = k.fails(&args);
        assert!(
            stderr.contains(r#"Error from server (BadRequest): error when creating "#)
                && stderr.contains(r#"MaintenanceWindow in version "v1alpha1" cannot be handled as a MaintenanceWindow: strict decoding error: unknown field "spec.timeZon""#),
            "kubectl {}: {stderr}",
            args.join(" ")
        );
    }
    // A server-side apply is refused before any validation, whatever kubectl asks for: the
    // configuration cannot become a typed patch (500, without a reason).
    for validate in ["--validate=strict", "--validate=false"] {
        let stderr = k.fails(&["apply", "--server-side", validate, "-f", &typo]);
        assert!(
            stderr.contains(r#"Error from server: failed to create typed patch object (/typo; patchpilot.dev/v1alpha1, Kind=MaintenanceWindow): .spec.timeZon: field not declared in schema"#),
            "kubectl apply --server-side {validate}: {stderr}"
        );
    }
    for object in ["patchpolicy/too-eager", "maintenancewindow/typo"] {
        let stderr = k.fails(&["get", object]);
        assert!(stderr.contains("NotFound"), "{object}: {stderr}");
    }
}

/// Labels and annotations on a custom resource, selected with `-l` and shown with `-L`;
/// a label removed; the object deleted, and then not found.
pub fn label_annotate_and_delete(k: &impl Kubectl) {
    k.delete_at_end(
        "patchpilot.dev/v1alpha1",
        "maintenancewindows",
        "weekend-nights",
    );
    k.ok(&[
        "apply",
        "--server-side",
        "-f",
        &repo::root("examples/maintenance-window.yaml"),
    ]);
    assert!(
        k.ok(&["label", "mw", "weekend-nights", "team=platform"])
            .contains("maintenancewindow.patchpilot.dev/weekend-nights labeled")
    );
    assert!(
        k.ok(&["annotate", "mw", "weekend-nights", "owner=ops"])
            .contains("maintenancewindow.patchpilot.dev/weekend-nights annotated")
    );
    assert_eq!(
        k.ok(&["get", "mw", "-l", "team=platform", "-o", "name"])
            .trim(),
        "maintenancewindow.patchpilot.dev/weekend-nights"
    );
    assert_eq!(
        k.ok(&[
            "get",
            "mw",
            "-l",
            "team in (platform,shop),!missing",
            "-o",
            "name"
        ])
        .trim(),
        "maintenancewindow.patchpilot.dev/weekend-nights"
    );
    let labelled = Table::parse(&k.ok(&["get", "mw", "weekend-nights", "-L", "team"]));
    assert_eq!(labelled.row("weekend-nights")["TEAM"], "platform");
    assert_eq!(
        k.ok(&[
            "get",
            "mw",
            "weekend-nights",
            "-o",
            "jsonpath={.metadata.annotations.owner}"
        ]),
        "ops"
    );
    let stderr = k.fails(&["label", "mw", "weekend-nights", "team=shop"]);
    assert!(
        stderr.contains("'team' already has a value (platform), and --overwrite is false"),
        "{stderr}"
    );
    k.ok(&["label", "mw", "weekend-nights", "team-"]);
    assert_eq!(k.ok(&["get", "mw", "-l", "team", "-o", "name"]), "");
    assert!(
        k.ok(&["delete", "mw", "weekend-nights"])
            .contains(r#"maintenancewindow.patchpilot.dev "weekend-nights" deleted"#)
    );
    let stderr = k.fails(&["get", "mw", "weekend-nights"]);
    assert!(
        stderr.contains(r#"maintenancewindows.patchpilot.dev "weekend-nights" not found"#),
        "{stderr}"
    );
}

/// `kubectl create` of built-in kinds, which kubectl sends in protobuf: each object stored
/// as kubectl built it (a pointer field set to zero kept, a Secret's bytes readable), then
/// run by the controllers (the Deployment rolled out, the Job complete); a second create of
/// the same name refused as AlreadyExists.
pub fn kubectl_create_writes_built_in_kinds(k: &impl Kubectl) {
    let ns = k.namespace();
    let created = k.ok_here(&[
        "create",
        "configmap",
        "settings",
        "--from-literal=mode=fast",
        "--from-literal=empty=",
    ]);
    assert_eq!(created.trim(), "configmap/settings created");
    let settings = k.json(&["get", "configmap", "settings", "-n", ns]);
    assert_eq!(
        settings["data"],
        serde_json::json!({"mode": "fast", "empty": ""})
    );
    let stderr = k.fails(&["create", "configmap", "settings", "-n", ns]);
    assert!(
        stderr.contains(r#"configmaps "settings" already exists"#),
        "{stderr}"
    );

    k.ok_here(&[
        "create",
        "secret",
        "generic",
        "token",
        "--from-literal=key=s3cr3t",
    ]);
    let token = k.ok_here(&["get", "secret", "token", "-o", "jsonpath={.data.key}"]);
    assert_eq!(token, "czNjcjN0", "base64 of s3cr3t");

    k.ok_here(&[
        "create",
        "deployment",
        "web",
        "--image=docker.io/library/nginx:1.27.3",
        "--replicas=2",
        "--port=8080",
    ]);
    k.ok_here(&[
        "create",
        "deployment",
        "idle",
        "--image=nginx",
        "--replicas=0",
    ]);
    let idle = k.json(&["get", "deployment", "idle", "-n", ns]);
    assert_eq!(idle["spec"]["replicas"], 0, "a replica count of 0 is kept");
    k.ok_here(&[
        "create",
        "pdb",
        "web",
        "--selector=app=web",
        "--min-available=50%",
    ]);
    let budget = k.json(&["get", "pdb", "web", "-n", ns]);
    assert_eq!(budget["spec"]["minAvailable"], "50%");
    k.rolled_out("web", 60);
    let pods = k.wait_ready("web", 2);
    assert_eq!(
        pods[0]["spec"]["containers"][0]["ports"][0]["containerPort"],
        8080
    );

    k.ok_here(&[
        "create",
        "job",
        "once",
        "--image=busybox:1.36",
        "--",
        "sh",
        "-c",
        "exit",
    ]);
    let waited = k.ok_here(&[
        "wait",
        "--for=condition=Complete",
        "job/once",
        "--timeout=60s",
    ]);
    assert!(waited.contains("job.batch/once condition met"), "{waited}");
    let job = k.json(&["get", "job", "once", "-n", ns]);
    assert_eq!(
        job["spec"]["template"]["spec"]["containers"][0]["command"],
        serde_json::json!(["sh", "-c", "exit"])
    );
    assert_eq!(job["spec"]["template"]["spec"]["restartPolicy"], "Never");

    k.ok_here(&["create", "serviceaccount", "robot"]);
    assert_eq!(
        k.ok_here(&["get", "serviceaccount", "robot", "-o", "name"])
            .trim(),
        "serviceaccount/robot"
    );
}
