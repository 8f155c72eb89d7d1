//! The annotations patchpilot reads and writes on targets.

/// Excludes a target from every policy; the value is the justification.
pub const EXCLUDE: &str = "patchpilot.dev/exclude";
/// An RFC 3339 instant after which [`EXCLUDE`] no longer applies.
pub const EXCLUDE_UNTIL: &str = "patchpilot.dev/exclude-until";
/// The rollout working on a target; taken before touching it, released at the end.
pub const LOCK: &str = "patchpilot.dev/lock";
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
