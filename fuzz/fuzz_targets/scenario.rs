//! Scenario files as text (YAML, one or more documents): they read or fail with a message,
//! never panic, and reading the same text twice gives the same answer.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use patchpilot_sandbox::scenario::Scenario;

fuzz_target!(|text: &str| {
    let file = Path::new("fuzz.yaml");
    match Scenario::parse(file, text) {
        Ok(_) => assert!(Scenario::parse(file, text).is_ok()),
        Err(error) => {
            let message = error.to_string();
            assert!(!message.is_empty());
            let again = Scenario::parse(file, text).err().map(|e| e.to_string());
            assert_eq!(again.as_deref(), Some(message.as_str()));
        }
    }
});
