//! Bodies kubectl v1.33 sent (`kubectl -v=9` prints them), read as the API server reads them:
//! each into the JSON kubectl itself prints for the same command with `--dry-run=client -o
//! json` (less the `creationTimestamp: null` Go writes for an unset time).

use serde_json::{Value, json};

use super::{Undecodable, decode, go_duration};

/// A body from its hexadecimal dump.
fn body(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

/// `kubectl create namespace team-a`
const NAMESPACE: &str = "6b3873000a0f0a02763112094e616d657370616365121e0a160a067465616d2d6112001a0022002a0032003800420012001a020a001a002200";

/// `kubectl create deployment web -n default --image=nginx:1.27.3 --replicas=0 --port=8080`
const DEPLOYMENT: &str = "6b3873000a150a07617070732f7631120a4465706c6f796d656e7412c7010a260a0377656212001a0764656661756c7422002a003200380042005a0a0a036170701203776562128e010800120c0a0a0a0361707012037765621a740a1c0a0012001a0022002a003200380042005a0a0a036170701203776562125412360a056e67696e78120c6e67696e783a312e32372e332a00320b0a00100018903f22002a0042006a007200800100880100900100a201001a00320042004a0052005800600068008201008a01009a0100c2010022020a00280038001a0c0800100018002000280038001a002200";

/// `kubectl create configmap settings -n default --from-literal=mode=fast --from-literal=empty=`
const CONFIGMAP: &str = "6b3873000a0f0a0276311209436f6e6669674d6170123a0a1f0a0873657474696e677312001a0764656661756c7422002a0032003800420012090a05656d7074791200120c0a046d6f64651204666173741a002200";

/// `kubectl create secret generic token -n default --from-literal=key=s3cr3t`
const SECRET: &str = "6b3873000a0c0a0276311206536563726574122f0a1c0a05746f6b656e12001a0764656661756c7422002a00320038004200120d0a036b657912067333637233741a001a002200";

/// `kubectl create job once -n default --image=busybox:1.36 -- sh -c exit`
const JOB: &str = "6b3873000a0f0a0862617463682f763112034a6f621298010a1b0a046f6e636512001a0764656661756c7422002a00320038004200126f326d0a100a0012001a0022002a00320038004200125912360a046f6e6365120c62757379626f783a312e33361a0273681a022d631a04657869742a0042006a007200800100880100900100a201001a054e65766572320042004a0052005800600068008201008a01009a0100c201001a082000280030003a001a002200";

/// `kubectl create pdb web -n default --selector=app=web --min-available=50%`
const PDB: &str = "6b3873000a200a09706f6c6963792f76311213506f6444697372757074696f6e42756467657412430a1a0a0377656212001a0764656661756c7422002a0032003800420012190a09080110001a03353025120c0a0a0a0361707012037765621a0a080018002000280030001a002200";

#[test]
fn what_kubectl_create_sends_reads_as_the_json_kubectl_prints() {
    let cases: [(&str, Value); 6] = [
        (
            NAMESPACE,
            json!({"apiVersion":"v1","kind":"Namespace","metadata":{"name":"team-a"},"spec":{},"status":{}}),
        ),
        (
            DEPLOYMENT,
            json!({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"labels":{"app":"web"},"name":"web","namespace":"default"},"spec":{"replicas":0,"selector":{"matchLabels":{"app":"web"}},"strategy":{},"template":{"metadata":{"labels":{"app":"web"}},"spec":{"containers":[{"image":"nginx:1.27.3","name":"nginx","ports":[{"containerPort":8080}],"resources":{}}]}}},"status":{}}),
        ),
        (
            CONFIGMAP,
            json!({"apiVersion":"v1","data":{"empty":"","mode":"fast"},"kind":"ConfigMap","metadata":{"name":"settings","namespace":"default"}}),
        ),
        (
            SECRET,
            json!({"apiVersion":"v1","data":{"key":"czNjcjN0"},"kind":"Secret","metadata":{"name":"token","namespace":"default"}}),
        ),
        (
            JOB,
            json!({"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"once","namespace":"default"},"spec":{"template":{"metadata":{},"spec":{"containers":[{"command":["sh","-c","exit"],"image":"busybox:1.36","name":"once","resources":{}}],"restartPolicy":"Never"}}},"status":{}}),
        ),
        (
            PDB,
            json!({"apiVersion":"policy/v1","kind":"PodDisruptionBudget","metadata":{"name":"web","namespace":"default"},"spec":{"minAvailable":"50%","selector":{"matchLabels":{"app":"web"}}},"status":{"currentHealthy":0,"desiredHealthy":0,"disruptionsAllowed":0,"expectedPods":0}}),
        ),
    ];
    for (hex, expected) in cases {
        assert_eq!(decode(&body(hex)).unwrap(), expected);
    }
}

#[test]
fn a_pointer_sent_as_zero_stays_and_an_empty_omitted_field_goes() {
    let deployment = decode(&body(DEPLOYMENT)).unwrap();
    // `replicas` is a pointer: 0 is a value set, not an absent one.
    assert_eq!(deployment["spec"]["replicas"], 0);
    // `generateName`, `namespace` of the template… are sent empty and omitted when empty.
    assert_eq!(
        deployment["spec"]["template"]["metadata"],
        json!({"labels": {"app": "web"}})
    );
    // `currentHealthy` and the others are not omitted when zero.
    let budget = decode(&body(PDB)).unwrap();
    assert_eq!(budget["status"]["expectedPods"], 0);
}

#[test]
fn bodies_that_are_not_protobuf_objects_are_refused_saying_why() {
    let malformed = |e: Result<Value, Undecodable>| match e {
        Err(Undecodable::Malformed(why)) => why,
        other => panic!("not refused as malformed: {other:?}"),
    };
    let why = malformed(decode(br#"{"kind":"Namespace"}"#));
    assert!(why.contains("protobuf prefix"), "{why}");
    let whole = body(DEPLOYMENT);
    let why = malformed(decode(&whole[..whole.len() - 7]));
    assert!(why.contains("past the end"), "{why}");
    // A ten-byte number with the continuation bit set everywhere.
    let mut endless = b"k8s\0".to_vec();
    endless.extend([0x08].iter().chain([0xff; 11].iter()));
    let why = malformed(decode(&endless));
    assert!(why.contains("longer than ten bytes"), "{why}");
}

#[test]
fn kinds_without_a_protobuf_form_are_unsupported() {
    // runtime.Unknown{typeMeta: {apiVersion: patchpilot.dev/v1alpha1, kind: PatchPolicy}}
    let mut unknown = b"k8s\0".to_vec();
    let api_version = b"patchpilot.dev/v1alpha1";
    let kind = b"PatchPolicy";
    let type_meta_len = 2 + api_version.len() + 2 + kind.len();
    unknown.extend([0x0a, type_meta_len as u8, 0x0a, api_version.len() as u8]);
    unknown.extend(api_version);
    unknown.extend([0x12, kind.len() as u8]);
    unknown.extend(kind);
    assert_eq!(
        decode(&unknown),
        Err(Undecodable::Unsupported(
            "patchpilot.dev/v1alpha1, Kind=PatchPolicy".into()
        ))
    );
}

#[test]
fn durations_read_as_go_writes_them() {
    for (nanos, text) in [
        (0, "0s"),
        (1, "1ns"),
        (1_500, "1.5µs"),
        (150_000_000, "150ms"),
        (90_000_000_000, "1m30s"),
        (3_600_000_000_000, "1h0m0s"),
        (3_723_500_000_000, "1h2m3.5s"),
        (-2_000_000_000, "-2s"),
    ] {
        assert_eq!(go_duration(nanos), text);
    }
}
