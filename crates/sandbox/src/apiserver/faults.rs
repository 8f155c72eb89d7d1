//! Faults the scenario injects into API requests: errors and conflicts at a given rate for a
//! given client.

use std::sync::Mutex;

use super::super::status::ApiError;

/// What a fault does.
#[derive(Clone, Debug, PartialEq)]
pub enum FaultKind {
    /// Answer with this HTTP code (500, 503, 429…).
    Error(u16),
    /// Answer a write with 409 Conflict.
    Conflict,
}

/// One fault rule.
#[derive(Clone, Debug, PartialEq)]
pub struct Fault {
    /// Applies to clients whose user name contains this.
    pub user: String,
    /// The share of matching requests that fail, from 0 to 1.
    pub rate: f64,
    /// What happens.
    pub kind: FaultKind,
}

/// The faults of a scenario, with a deterministic random source.
pub struct Faults {
    rules: Vec<Fault>,
    state: Mutex<u64>,
}

impl Faults {
    /// Faults following `rules`, reproducible from `seed`.
    pub fn new(rules: Vec<Fault>, seed: u64) -> Self {
        Faults {
            rules,
            state: Mutex::new(seed),
        }
    }

    /// No faults.
    pub fn none() -> Self {
        Self::new(Vec::new(), 0)
    }

    /// SplitMix64: small, fast, and good enough to pick which requests fail.
    fn next(&self) -> f64 {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }

    /// The injected failure for a request of `user` with `verb`, if one is drawn. Watches
    /// are left alone; conflicts hit writes only.
    pub fn draw(&self, user: &str, verb: &str) -> Option<ApiError> {
        if verb == "watch" {
            return None;
        }
        let write = matches!(verb, "create" | "update" | "patch" | "delete");
        for rule in self.rules.iter().filter(|r| user.contains(&r.user)) {
            if matches!(rule.kind, FaultKind::Conflict) && !write {
                continue;
            }
            if self.next() < rule.rate {
                return Some(match rule.kind {
                    FaultKind::Error(code) => ApiError {
                        code,
                        reason: if code == 429 { "TooManyRequests" } else { "InternalError" },
                        message: format!("injected fault: the sandbox failed this request on purpose ({code})"),
                        details: None,
                    },
                    FaultKind::Conflict => ApiError {
                        code: 409,
                        reason: "Conflict",
                        message: "injected fault: Operation cannot be fulfilled: the object has been modified; please apply your changes to the latest version and try again".into(),
                        details: None,
                    },
                });
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_hit_their_client_at_their_rate() {
        let faults = Faults::new(
            vec![Fault {
                user: "patchpilot".into(),
                rate: 0.1,
                kind: FaultKind::Error(500),
            }],
            42,
        );
        let hits = (0..10_000)
            .filter(|_| {
                faults
                    .draw("system:serviceaccount:patchpilot", "get")
                    .is_some()
            })
            .count();
        assert!((800..1200).contains(&hits), "{hits}");
        assert!(faults.draw("kubectl", "get").is_none());
        assert!(
            faults
                .draw("system:serviceaccount:patchpilot", "watch")
                .is_none()
        );
        let conflicts = Faults::new(
            vec![Fault {
                user: "p".into(),
                rate: 1.0,
                kind: FaultKind::Conflict,
            }],
            1,
        );
        assert!(conflicts.draw("p", "list").is_none());
        assert_eq!(conflicts.draw("p", "patch").unwrap().code, 409);
    }
}
