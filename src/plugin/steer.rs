//! `approve`, `promote`, `pause`, `resume`, `abort` and `retry`: each a change of the
//! rollout's spec, judged against where the rollout stands before it is made.
//!
//! The change is a JSON merge patch carrying the resource version the judgement was made
//! on, so a rollout that moved on in between is read and judged again rather than changed
//! blindly (the API server answers 409 to the stale one).

use kube::{
    Api, Client,
    api::{Patch, PatchParams},
};
use serde_json::{Value, json};

use super::{Outcome, PluginError, SomeRollouts, Which, all_rollouts, rollout, text};
use crate::{api::PatchRollout, engine::rollout::Phase};

/// The field manager of the plugin's changes, as `kubectl` is kubectl's.
pub const MANAGER: &str = "kubectl-patchpilot";

/// What a person asks of a rollout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verb {
    Approve,
    Promote,
    Pause,
    Resume,
    Abort,
    Retry,
}

impl Verb {
    fn past(self) -> &'static str {
        match self {
            Verb::Approve => "approved",
            Verb::Promote => "promoted",
            Verb::Pause => "paused",
            Verb::Resume => "resumed",
            Verb::Abort => "aborted",
            Verb::Retry => "retried",
        }
    }
}

/// A change to make: the spec fields to merge, and what it does in words.
#[derive(Debug, PartialEq)]
pub struct Change {
    pub spec: Value,
    pub says: String,
}

/// Judges `verb` against `rollout` as it stands: the change to make, or the sentence
/// saying why it makes no sense now.
pub fn judge(verb: Verb, rollout: &PatchRollout) -> Result<Change, String> {
    let name = rollout.metadata.name.as_deref().unwrap_or("");
    let spec = &rollout.spec;
    let status = rollout.status.clone().unwrap_or_default();
    let phase = status.phase;
    let waiting = text::waiting(&status);
    let ended = || {
        format!(
            "PatchRollout {name} has ended ({phase:?}); a rollout that has ended keeps its status"
        )
    };
    match verb {
        Verb::Approve => {
            if spec.approved {
                return Err(format!(
                    "PatchRollout {name} is already approved (spec.approved is true)"
                ));
            }
            if phase.is_finished() {
                return Err(ended());
            }
            if let Some(approved) =
                text::condition(&status.conditions, "Approved").filter(|c| c.status == "True")
            {
                return Err(format!(
                    "PatchRollout {name} is already approved: {}",
                    approved.message
                ));
            }
            Ok(Change {
                spec: json!({"approved": true}),
                says: "spec.approved is now true: its targets start once its window is open".into(),
            })
        }
        Verb::Promote => {
            if spec.promoted {
                return Err(format!(
                    "PatchRollout {name} is already promoted (spec.promoted is true)"
                ));
            }
            if phase.is_finished() {
                return Err(ended());
            }
            if waiting != Some("AwaitingPromotion") {
                return Err(format!(
                    "PatchRollout {name} is not waiting for promotion ({}); promote it once its canary is healthy",
                    text::phase_with_reason(phase, waiting)
                ));
            }
            Ok(Change {
                spec: json!({"promoted": true}),
                says: "spec.promoted is now true: the waves after the canary go on".into(),
            })
        }
        Verb::Pause => {
            if phase.is_finished() {
                return Err(ended());
            }
            if spec.paused {
                return Err(format!(
                    "PatchRollout {name} is already paused (spec.paused is true)"
                ));
            }
            let says = if phase == Phase::RollingBack {
                "spec.paused is now true: the rollback holds; targets in progress finish"
            } else {
                "spec.paused is now true: no new target starts; targets in progress finish"
            };
            Ok(Change {
                spec: json!({"paused": true}),
                says: says.into(),
            })
        }
        Verb::Resume => {
            if phase.is_finished() {
                return Err(ended());
            }
            if !spec.paused {
                let why = match waiting {
                    Some("AwaitingPromotion") => {
                        format!("; it waits for promotion: kubectl patchpilot promote {name}")
                    }
                    Some("Suspended") => format!(
                        "; its policy is suspended: clear spec.suspend on PatchPolicy {}",
                        spec.policy
                    ),
                    Some("WaitingForRollout") => {
                        format!(
                            "; {}",
                            status
                                .message
                                .as_deref()
                                .unwrap_or("it waits for another rollout")
                        )
                    }
                    _ => String::new(),
                };
                return Err(format!(
                    "PatchRollout {name} is not paused (spec.paused is false){why}"
                ));
            }
            let says = if status.halt.is_some() {
                "spec.paused is now false: the rollout goes on, and the failures so far are accepted"
            } else {
                "spec.paused is now false: new targets start again"
            };
            Ok(Change {
                spec: json!({"paused": false}),
                says: says.into(),
            })
        }
        Verb::Abort => {
            if spec.abort {
                return Err(format!(
                    "PatchRollout {name} is already aborted (spec.abort is true)"
                ));
            }
            if phase.is_finished() {
                return Err(ended());
            }
            Ok(Change {
                spec: json!({"abort": true}),
                says: "spec.abort is now true: no new target starts, and every target it changed is rolled back, most recent first".into(),
            })
        }
        Verb::Retry => {
            if spec.abort {
                return Err(format!(
                    "PatchRollout {name} is aborted: retry has no effect once spec.abort is set"
                ));
            }
            if phase == Phase::Superseded {
                return Err(format!(
                    "PatchRollout {name} is superseded: a newer patch of PatchPolicy {} took over",
                    spec.policy
                ));
            }
            if phase == Phase::RollingBack {
                return Err(format!(
                    "PatchRollout {name} is rolling back; retry once it has rolled back"
                ));
            }
            let counts = &status.targets;
            if counts.failed == 0 && counts.rolled_back == 0 {
                return Err(format!(
                    "PatchRollout {name} has no failed or rolled-back targets to retry"
                ));
            }
            let again = counts.failed + counts.rolled_back;
            Ok(Change {
                spec: json!({"retry": spec.retry + 1}),
                says: format!(
                    "spec.retry is now {}: {} back to pending and the rollout resumes",
                    spec.retry + 1,
                    if again == 1 {
                        "1 target goes".to_owned()
                    } else {
                        format!("{again} targets go")
                    }
                ),
            })
        }
    }
}

/// Acts on one rollout.
pub async fn one(client: &Client, verb: Verb, which: &Which) -> Outcome {
    let found = rollout(client, which).await?;
    apply(client, verb, found).await?;
    Ok(0)
}

/// Acts on one rollout, or (`--all`) on every one that has not ended; with `--all`, the
/// rollouts the verb makes no sense for are passed over and counted.
pub async fn some(client: &Client, verb: Verb, some: &SomeRollouts) -> Outcome {
    if !some.all {
        let which = Which {
            rollout: some.rollout.clone(),
            policy: some.policy.clone(),
        };
        return one(client, verb, &which).await;
    }
    let mut changed = 0;
    for found in all_rollouts(client).await? {
        let phase = found.status.as_ref().map(|s| s.phase).unwrap_or_default();
        let applies = !phase.is_finished()
            && match verb {
                Verb::Pause => !found.spec.paused,
                _ => found.spec.paused,
            };
        if applies {
            apply(client, verb, found).await?;
            changed += 1;
        }
    }
    if changed == 0 {
        let which = if verb == Verb::Pause {
            "active rollouts not paused already"
        } else {
            "paused rollouts"
        };
        println!("no {which}: nothing {}", verb.past());
    }
    Ok(0)
}

/// Judges and makes the change, judging again (up to three times) when the rollout moved
/// on in between.
async fn apply(client: &Client, verb: Verb, rollout: PatchRollout) -> Result<(), PluginError> {
    let api = Api::<PatchRollout>::all(client.clone());
    let name = rollout.metadata.name.clone().unwrap_or_default();
    // Who approved is remembered beside spec.approved, for `history`.
    let approver = match verb {
        Verb::Approve => super::whoami(client).await,
        _ => None,
    };
    let params = PatchParams {
        field_manager: Some(MANAGER.to_owned()),
        ..PatchParams::default()
    };
    let change = steer(
        verb,
        rollout,
        approver.as_deref(),
        async || super::get_rollout(client, &name).await,
        async |patch: &Value| match api.patch(&name, &params, &Patch::Merge(patch)).await {
            Ok(_) => Ok(Written::Done),
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(Written::Stale),
            Err(error) => Err(PluginError::api(format!("PatchRollout {name}"), error)),
        },
    )
    .await?;
    println!(
        "patchrollout.patchpilot.dev/{name} {}: {}",
        verb.past(),
        change.says
    );
    Ok(())
}

/// What writing a change came to.
#[derive(Debug)]
enum Written {
    Done,
    /// The rollout changed since it was read (409 Conflict).
    Stale,
}

/// The judge-and-write loop of [`apply`], with the reads and writes given: judges `verb`
/// against `rollout`, writes the change on the resource version it was judged on, and when
/// that version is stale reads the rollout again and judges anew, so that a rollout that
/// ended or was approved by someone else in between is refused with a sentence, not changed
/// blindly. Gives up after three stale writes.
async fn steer(
    verb: Verb,
    mut rollout: PatchRollout,
    approver: Option<&str>,
    mut read: impl AsyncFnMut() -> Result<PatchRollout, PluginError>,
    mut write: impl AsyncFnMut(&Value) -> Result<Written, PluginError>,
) -> Result<Change, PluginError> {
    for _ in 0..3 {
        let change = judge(verb, &rollout).map_err(PluginError::Refused)?;
        let mut patch = json!({
            "metadata": {"resourceVersion": rollout.metadata.resource_version},
            "spec": change.spec,
        });
        if let Some(user) = approver {
            patch["metadata"]["annotations"] = json!({crate::api::APPROVED_BY: user});
        }
        match write(&patch).await? {
            Written::Done => return Ok(change),
            Written::Stale => rollout = read().await?,
        }
    }
    let name = rollout.metadata.name.unwrap_or_default();
    Err(PluginError::Cluster(format!(
        "PatchRollout {name} kept changing while it was being {}; try again",
        verb.past()
    )))
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
    use serde_json::{Value, json};

    use super::{PluginError, Verb, Written, judge, steer};
    use crate::{
        api::{PatchRollout, PatchRolloutStatus},
        engine::rollout::Phase,
    };

    fn rollout(phase: Phase) -> PatchRollout {
        let mut rollout: PatchRollout = serde_json::from_value(json!({
            "apiVersion": "patchpilot.dev/v1alpha1",
            "kind": "PatchRollout",
            "metadata": {"name": "os-1"},
            "spec": {"policy": "os", "patch": {"version": "1", "classification": "Important"}},
        }))
        .unwrap();
        rollout.status = Some(PatchRolloutStatus {
            phase,
            ..Default::default()
        });
        rollout
    }

    fn with_condition(
        mut rollout: PatchRollout,
        type_: &str,
        status: &str,
        reason: &str,
    ) -> PatchRollout {
        rollout.status.as_mut().unwrap().conditions.push(Condition {
            type_: type_.into(),
            status: status.into(),
            reason: reason.into(),
            message: format!("{reason} message"),
            last_transition_time: Time(jiff::Timestamp::UNIX_EPOCH),
            observed_generation: None,
        });
        rollout
    }

    #[test]
    fn approval_sets_the_field_once() {
        let waiting = rollout(Phase::AwaitingApproval);
        assert_eq!(
            judge(Verb::Approve, &waiting).unwrap().spec,
            json!({"approved": true})
        );
        let mut approved = waiting.clone();
        approved.spec.approved = true;
        assert!(
            judge(Verb::Approve, &approved)
                .unwrap_err()
                .contains("already approved")
        );
        let automatic = with_condition(waiting, "Approved", "True", "AutomaticApproval");
        assert!(
            judge(Verb::Approve, &automatic)
                .unwrap_err()
                .contains("AutomaticApproval message")
        );
        assert!(
            judge(Verb::Approve, &rollout(Phase::Succeeded))
                .unwrap_err()
                .contains("has ended (Succeeded)")
        );
    }

    #[test]
    fn promotion_needs_a_rollout_waiting_for_it() {
        let progressing = with_condition(
            rollout(Phase::Progressing),
            "Reconciling",
            "True",
            "Progressing",
        );
        assert!(
            judge(Verb::Promote, &progressing)
                .unwrap_err()
                .contains("is not waiting for promotion (Progressing)")
        );
        let waiting = with_condition(
            rollout(Phase::Paused),
            "Reconciling",
            "True",
            "AwaitingPromotion",
        );
        assert_eq!(
            judge(Verb::Promote, &waiting).unwrap().spec,
            json!({"promoted": true})
        );
        assert!(
            judge(Verb::Resume, &waiting)
                .unwrap_err()
                .contains("it waits for promotion: kubectl patchpilot promote os-1")
        );
    }

    #[test]
    fn pause_and_resume_turn_the_field() {
        let progressing = rollout(Phase::Progressing);
        assert_eq!(
            judge(Verb::Pause, &progressing).unwrap().spec,
            json!({"paused": true})
        );
        assert!(
            judge(Verb::Resume, &progressing)
                .unwrap_err()
                .contains("is not paused")
        );
        let mut paused = rollout(Phase::Paused);
        paused.spec.paused = true;
        assert!(
            judge(Verb::Pause, &paused)
                .unwrap_err()
                .contains("already paused")
        );
        assert_eq!(
            judge(Verb::Resume, &paused).unwrap().spec,
            json!({"paused": false})
        );
        assert!(judge(Verb::Pause, &rollout(Phase::RolledBack)).is_err());
    }

    #[test]
    fn abort_once_and_never_after_the_end() {
        assert_eq!(
            judge(Verb::Abort, &rollout(Phase::Progressing))
                .unwrap()
                .spec,
            json!({"abort": true})
        );
        assert!(judge(Verb::Abort, &rollout(Phase::Succeeded)).is_err());
        let mut aborted = rollout(Phase::RollingBack);
        aborted.spec.abort = true;
        assert!(
            judge(Verb::Abort, &aborted)
                .unwrap_err()
                .contains("already aborted")
        );
        assert!(
            judge(Verb::Retry, &aborted)
                .unwrap_err()
                .contains("no effect")
        );
    }

    #[test]
    fn retry_needs_failed_targets() {
        let clean = rollout(Phase::Succeeded);
        assert!(
            judge(Verb::Retry, &clean)
                .unwrap_err()
                .contains("has no failed or rolled-back targets")
        );
        let mut failed = rollout(Phase::RolledBack);
        failed.spec.retry = 2;
        failed.status.as_mut().unwrap().targets.rolled_back = 3;
        let change = judge(Verb::Retry, &failed).unwrap();
        assert_eq!(change.spec, json!({"retry": 3}));
        assert!(
            change.says.contains("3 targets go back to pending"),
            "{}",
            change.says
        );
        assert!(judge(Verb::Retry, &rollout(Phase::Superseded)).is_err());
    }

    /// A rollout at `version` of its resource, in `phase`.
    fn at(version: &str, phase: Phase) -> PatchRollout {
        let mut rollout = rollout(phase);
        rollout.metadata.resource_version = Some(version.into());
        rollout
    }

    #[tokio::test]
    async fn a_stale_write_is_judged_again_on_the_rollout_as_it_now_stands() {
        // Approved by someone else between the read and the write: the second judgement
        // refuses, and nothing more is written.
        let mut approved = at("8", Phase::Progressing);
        approved.spec.approved = true;
        let mut writes = Vec::new();
        let refused = steer(
            Verb::Approve,
            at("7", Phase::AwaitingApproval),
            Some("jane"),
            async || Ok(approved.clone()),
            async |patch: &Value| {
                writes.push(patch.clone());
                Ok(Written::Stale)
            },
        )
        .await
        .unwrap_err();
        assert!(
            matches!(&refused, PluginError::Refused(m) if m.contains("already approved")),
            "{refused:?}"
        );
        assert_eq!(
            writes,
            [json!({
                "metadata": {"resourceVersion": "7", "annotations": {"patchpilot.dev/approved-by": "jane"}},
                "spec": {"approved": true},
            })]
        );
    }

    #[tokio::test]
    async fn a_rollout_still_open_to_the_change_gets_it_on_its_new_version() {
        let mut writes = Vec::new();
        let change = steer(
            Verb::Pause,
            at("7", Phase::Progressing),
            None,
            async || Ok(at("9", Phase::Progressing)),
            async |patch: &Value| {
                writes.push(patch["metadata"]["resourceVersion"].clone());
                Ok(if writes.len() == 1 {
                    Written::Stale
                } else {
                    Written::Done
                })
            },
        )
        .await
        .unwrap();
        assert_eq!(change.spec, json!({"paused": true}));
        assert_eq!(writes, [json!("7"), json!("9")]);
    }

    #[tokio::test]
    async fn a_rollout_that_keeps_changing_is_given_up_after_three_writes() {
        let mut writes = 0;
        let error = steer(
            Verb::Pause,
            at("7", Phase::Progressing),
            None,
            async || Ok(at("8", Phase::Progressing)),
            async |_: &Value| {
                writes += 1;
                Ok(Written::Stale)
            },
        )
        .await
        .unwrap_err();
        assert_eq!(writes, 3);
        assert!(
            matches!(&error, PluginError::Cluster(m) if m.contains("kept changing while it was being paused")),
            "{error:?}"
        );
    }
}
