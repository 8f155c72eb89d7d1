//! The annotations patchpilot reads and writes on targets.

/// Excludes a target from every policy; the value is the justification.
pub const EXCLUDE: &str = "patchpilot.dev/exclude";
/// An RFC 3339 instant after which [`EXCLUDE`] no longer applies.
pub const EXCLUDE_UNTIL: &str = "patchpilot.dev/exclude-until";
/// The rollout working on a target; taken before touching it, released at the end.
pub const LOCK: &str = "patchpilot.dev/lock";
/// A label on targets while a rollout holds their lock (value `true`), so that the operator
/// can watch the full objects of the few targets in progress and only their metadata for
/// the rest.
pub const LOCKED_LABEL: &str = "patchpilot.dev/locked";
/// A label on the objects patchpilot creates (updater and health-check Jobs, rollouts):
/// the rollout they belong to.
pub const ROLLOUT_LABEL: &str = "patchpilot.dev/rollout";
/// A label on rollouts: the policy they belong to.
pub const POLICY_LABEL: &str = "patchpilot.dev/policy";

/// Prefix of the per-policy annotations `patch.patchpilot.dev/<policy>` (the version a
/// target carries) and `patch.patchpilot.dev/<policy>.rollout` (what the policy's last
/// rollout did to it).
pub const POLICY_PREFIX: &str = "patch.patchpilot.dev/";

/// The annotation recording which version of `policy` a target carries.
pub fn version(policy: &str) -> String {
    format!("{POLICY_PREFIX}{policy}")
}

/// The annotation recording what `policy`'s last rollout did to a target.
pub fn record(policy: &str) -> String {
    format!("{POLICY_PREFIX}{policy}.rollout")
}

/// The label mirroring [`version`], so that `kubectl get nodes -l` and `-L` can select and
/// show what a policy applied: the annotation's key when it makes a valid label key (a
/// policy name of at most 63 characters), else the name shortened with a hash.
pub fn version_label(policy: &str) -> String {
    format!("{POLICY_PREFIX}{}", label_safe(policy))
}

/// The value of [`version_label`] for `version`: the version itself when it is a valid
/// label value, else its valid characters (others as `-`) with a hash of the full version,
/// within 63 characters; the annotation keeps the full version. `None` for an empty one.
pub fn version_label_value(version: &str) -> Option<String> {
    (!version.is_empty()).then(|| label_safe(version))
}

/// `text` as a label value or the name part of a label key: at most 63 characters of
/// `[A-Za-z0-9._-]`, beginning and ending with a letter or digit. Text that is one already
/// is kept; other text keeps what it can and ends with 8 hex characters of its hash, so two
/// texts never share a label.
fn label_safe(text: &str) -> String {
    const MAX: usize = 63;
    let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    let is_label = text.len() <= MAX
        && !text.is_empty()
        && text.chars().all(valid)
        && text.starts_with(|c: char| c.is_ascii_alphanumeric())
        && text.ends_with(|c: char| c.is_ascii_alphanumeric());
    if is_label {
        return text.to_owned();
    }
    let hash = format!(
        "{:08x}",
        crate::naming::fnv1a(text.as_bytes()) & 0xffff_ffff
    );
    let kept: String = text
        .chars()
        .map(|c| if valid(c) { c } else { '-' })
        .collect();
    let kept = kept.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    let kept: String = kept.chars().take(MAX - hash.len() - 1).collect();
    let kept = kept.trim_end_matches(|c: char| !c.is_ascii_alphanumeric());
    if kept.is_empty() {
        hash
    } else {
        format!("{kept}-{hash}")
    }
}

/// Whether an annotation is one of patchpilot's (`patchpilot.dev/…` or
/// `patch.patchpilot.dev/…`): the only ones it reads on targets.
pub fn is_ours(annotation: &str) -> bool {
    annotation.starts_with("patchpilot.dev/") || annotation.starts_with(POLICY_PREFIX)
}

#[cfg(test)]
mod tests {
    #[test]
    fn versions_become_label_values() {
        use super::{version_label, version_label_value};
        assert_eq!(
            version_label("workers-os"),
            "patch.patchpilot.dev/workers-os"
        );
        assert_eq!(
            version_label_value("2026-11-security").as_deref(),
            Some("2026-11-security")
        );
        assert_eq!(
            version_label_value("nginx-1.27.4").as_deref(),
            Some("nginx-1.27.4")
        );
        assert_eq!(version_label_value(""), None);
        let plus = version_label_value("1.2+build5").unwrap();
        assert!(
            plus.starts_with("1.2-build5-") && plus.len() == "1.2-build5-".len() + 8,
            "{plus}"
        );
        assert_ne!(plus, version_label_value("1.2_build5").unwrap());
        let long = "v".repeat(100);
        let label = version_label_value(&long).unwrap();
        assert_eq!(label.len(), 63);
        assert_ne!(label, version_label_value(&"v".repeat(101)).unwrap());
        let odd = version_label_value("+++").unwrap();
        assert_eq!(odd.len(), 8, "{odd}");
        let policy = version_label(&format!("{}.x", "p".repeat(70)));
        let name = policy.strip_prefix("patch.patchpilot.dev/").unwrap();
        assert!(name.len() <= 63, "{name}");
        for text in [plus, label, odd, name.to_owned()] {
            assert!(
                text.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            );
            assert!(text.starts_with(|c: char| c.is_ascii_alphanumeric()));
            assert!(text.ends_with(|c: char| c.is_ascii_alphanumeric()));
        }
    }

    #[test]
    fn patchpilot_annotations_are_told_apart() {
        assert!(super::is_ours(super::LOCK));
        assert!(super::is_ours(&super::version("os")));
        assert!(super::is_ours(&super::record("os")));
        assert!(!super::is_ours("node.alpha.kubernetes.io/ttl"));
        assert!(!super::is_ours("example.patchpilot.dev.evil/x"));
        assert!(!super::is_ours(
            "kubectl.kubernetes.io/last-applied-configuration"
        ));
    }
}
