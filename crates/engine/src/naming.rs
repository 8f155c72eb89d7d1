//! Names patchpilot derives: rollouts (`<policy>-<8 hex>`) and updater Jobs.
//!
//! Hashes are 64-bit FNV-1a, which is stable across builds and platforms (the standard
//! library's hasher is not), so a name computed today is the same after an upgrade.

/// 64-bit FNV-1a of the bytes.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// The name of the rollout of a patch: `<policy>-<8 hex chars>`, the hex being the low 32
/// bits of the hash of the patch's canonical JSON.
pub fn rollout_name(policy: &str, canonical_patch: &str) -> String {
    format!(
        "{policy}-{:08x}",
        fnv1a(canonical_patch.as_bytes()) & 0xffff_ffff
    )
}

/// The name of the updater Job a rollout runs on a node for one action, attempt and lock
/// (the [lock token](crate::machine::Record::lock_token) of the record it runs under):
/// `patchpilot-<node>-<12 hex>`, the node's name cut to keep the whole within the 63
/// characters of the labels Kubernetes derives from Job names, so that `kubectl get jobs`
/// says which node each Job is for.
///
/// The lock is part of the hash so that a Job left from an earlier lock of the same target
/// (released, then taken again) is never taken for this lock's: a Job counts only if it ran
/// for this very lock.
pub fn updater_job_name(
    rollout: &str,
    node: &str,
    action: &str,
    attempt: u32,
    lock: i64,
) -> String {
    const MAX: usize = 63;
    let hash = job_hash(rollout, node, action, attempt, lock);
    let room = MAX - "patchpilot-".len() - 1 - hash.len();
    let node: String = node.chars().take(room).collect();
    let node = node.trim_end_matches(|c: char| !c.is_ascii_alphanumeric());
    if node.is_empty() {
        format!("patchpilot-{hash}")
    } else {
        format!("patchpilot-{node}-{hash}")
    }
}

/// The name earlier versions gave the same Job, `patchpilot-<12 hex>`: still looked for, so
/// that an operator upgraded while an updater runs does not run it a second time.
pub fn legacy_updater_job_name(
    rollout: &str,
    node: &str,
    action: &str,
    attempt: u32,
    lock: i64,
) -> String {
    format!(
        "patchpilot-{}",
        job_hash(rollout, node, action, attempt, lock)
    )
}

/// Whether `name` can name an object such as a rollout: a DNS-1123 subdomain, at most 253
/// characters of lowercase letters, digits, `-` and `.`, each dot-separated part beginning
/// and ending with a letter or digit.
pub fn is_object_name(name: &str) -> bool {
    let part = |p: &str| {
        !p.is_empty()
            && p.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !p.starts_with('-')
            && !p.ends_with('-')
    };
    name.len() <= 253 && name.split('.').all(part)
}

fn job_hash(rollout: &str, node: &str, action: &str, attempt: u32, lock: i64) -> String {
    let key = format!("{rollout}\n{node}\n{action}\n{attempt}\n{lock}");
    format!("{:012x}", fnv1a(key.as_bytes()) & 0xffff_ffff_ffff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_names_are_dns_subdomains() {
        for good in ["os-1a2b3c4d", "a", "a.b-c.d", &"a".repeat(253)] {
            assert!(is_object_name(good), "{good}");
        }
        for bad in [
            "",
            "Os",
            "a..b",
            "-a",
            "a-",
            ".a",
            "a b",
            "a_b",
            "été",
            &"a".repeat(254),
        ] {
            assert!(!is_object_name(bad), "{bad}");
        }
    }

    #[test]
    fn fnv1a_matches_the_reference_values() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn names_are_stable_and_distinct() {
        assert_eq!(
            rollout_name("workers-os", "{}"),
            rollout_name("workers-os", "{}")
        );
        assert_ne!(
            rollout_name("os", r#"{"version":"a"}"#),
            rollout_name("os", r#"{"version":"b"}"#)
        );
        assert_eq!(rollout_name("os", "x").len(), "os-".len() + 8);
        let job = updater_job_name("os-1234abcd", "node-1", "apply", 0, 7);
        assert_eq!(job.len(), "patchpilot-node-1-".len() + 12);
        assert!(job.starts_with("patchpilot-node-1-"), "{job}");
        assert_eq!(
            legacy_updater_job_name("os-1234abcd", "node-1", "apply", 0, 7),
            format!("patchpilot-{}", &job["patchpilot-node-1-".len()..])
        );
        let long = "ip-10-0-12-34.eu-west-1.compute.internal-with-a-long-suffix";
        let cut = updater_job_name("os-1234abcd", long, "apply", 0, 7);
        assert_eq!(cut.len(), 63, "{cut}");
        assert!(
            cut.starts_with("patchpilot-ip-10-0-12-34.eu-west-1.compute.interna-"),
            "{cut}"
        );
        assert_ne!(
            cut,
            updater_job_name("os-1234abcd", &format!("{long}x"), "apply", 0, 7)
        );
        assert_ne!(
            job,
            updater_job_name("os-1234abcd", "node-1", "rollback", 0, 7)
        );
        assert_ne!(
            job,
            updater_job_name("os-1234abcd", "node-1", "apply", 1, 7)
        );
        assert_ne!(
            job,
            updater_job_name("os-1234abcd", "node-1", "apply", 0, 8)
        );
    }
}
