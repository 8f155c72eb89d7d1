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

/// Whether an annotation is one of patchpilot's (`patchpilot.dev/…` or
/// `patch.patchpilot.dev/…`): the only ones it reads on targets.
pub fn is_ours(annotation: &str) -> bool {
    annotation.starts_with("patchpilot.dev/") || annotation.starts_with(POLICY_PREFIX)
}

#[cfg(test)]
mod tests {
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
