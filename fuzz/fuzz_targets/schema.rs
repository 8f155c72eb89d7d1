//! Custom resources as JSON text, admitted against patchpilot's CRDs (OpenAPI and CEL rules)
//! by the sandbox's schema checker: the object whose `kind` names one of them (else the
//! MaintenanceWindow's) is pruned, defaulted and checked without panicking, and admitting
//! what was admitted changes nothing more: no unknown fields, the same object, the same
//! errors.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use patchpilot_schema::CrdSchema;

fn schemas() -> &'static [(String, CrdSchema)] {
    static SCHEMAS: OnceLock<Vec<(String, CrdSchema)>> = OnceLock::new();
    SCHEMAS.get_or_init(|| {
        patchpilot_api::crds()
            .iter()
            .map(|crd| {
                let schema = CrdSchema::new(crd, patchpilot_api::VERSION).expect("a schema");
                (crd.spec.names.kind.clone(), schema)
            })
            .collect()
    })
}

fuzz_target!(|data: &[u8]| {
    let Some(object) = patchpilot_fuzz::json(data) else {
        return;
    };
    let schemas = schemas();
    let (_, schema) = schemas
        .iter()
        .find(|(kind, _)| object["kind"] == kind.as_str())
        .or_else(|| schemas.iter().find(|(kind, _)| kind == "MaintenanceWindow"))
        .expect("the MaintenanceWindow CRD");
    let admission = schema.admit(&object, None);
    for error in admission.strict_errors() {
        assert!(!error.to_string().is_empty());
    }
    let again = schema.admit(&admission.object, None);
    assert!(
        again.unknown_fields.is_empty(),
        "{:?} left in {}",
        again.unknown_fields,
        admission.object
    );
    assert_eq!(again.object, admission.object, "admitting twice");
    let messages = |errors: &[patchpilot_schema::FieldError]| -> Vec<String> {
        errors.iter().map(ToString::to_string).collect()
    };
    assert_eq!(
        messages(&again.errors),
        messages(&admission.errors),
        "{}",
        admission.object
    );
});
