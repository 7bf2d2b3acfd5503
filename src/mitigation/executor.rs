//! What one action does to one subject: an audit finding (audit tasks) or a violation's thing
//! (detect tasks).

use super::action::Action;
use super::{Mitigation, Outcome, broker};
use crate::store::{ExecutionRecord, TaskKind};

/// Why an action cannot run in this build (a part it needs is not in it).
pub(super) const NOT_AVAILABLE: &str = "not available in this build";

impl Mitigation {
    /// Runs `action` for the subject of `e`; never fails the task: every problem is the
    /// execution's outcome.
    pub(super) async fn execute(
        &self,
        kind: TaskKind,
        action: &Action,
        e: &ExecutionRecord,
    ) -> Outcome {
        match kind {
            TaskKind::Detect => {
                let Some(thing) = e.thing.as_deref() else {
                    return Outcome::failed("INTERNAL_ERROR", "The execution names no thing");
                };
                self.on_violation(action, &e.subject, thing).await
            }
            TaskKind::Audit => Outcome::failed(
                "NOT_AVAILABLE",
                format!("Audit findings are {NOT_AVAILABLE}"),
            ),
        }
    }

    /// An action for a violation of `thing`.
    async fn on_violation(&self, action: &Action, violation_id: &str, thing: &str) -> Outcome {
        match action {
            Action::AddThingsToGroups { groups } => self.add_to_groups(&[thing.to_owned()], groups),
            Action::BanClient(ban) => match broker::ban(&self.brokers, ban, thing).await {
                Ok(said) => Outcome::succeeded(said),
                Err(e) => Outcome::failed(e.code, e.message),
            },
            Action::DeactivateDeviceCertificate => Outcome::failed(
                "NOT_AVAILABLE",
                format!("Deactivating certificates is {NOT_AVAILABLE}"),
            ),
            Action::Publish { destination } => {
                let _ = (destination, violation_id);
                Outcome::failed(
                    "NOT_AVAILABLE",
                    format!("Publishing to the alarm feed is {NOT_AVAILABLE}"),
                )
            }
            Action::DeactivateCaCertificate
            | Action::ReplaceDefaultPolicyVersion
            | Action::EnableLogging { .. } => {
                Outcome::skipped("The action does not apply to a violation")
            }
        }
    }

    /// Adds registered `things` to every group (groups must exist; a thing not in the
    /// registry fails the execution).
    pub(super) fn add_to_groups(&self, things: &[String], groups: &[String]) -> Outcome {
        if things.is_empty() {
            return Outcome::skipped("No thing to add");
        }
        let run = || -> Result<Outcome, crate::store::StoreError> {
            for thing in things {
                if self.store.thing_get(thing)?.is_none() {
                    return Ok(Outcome::failed(
                        "RESOURCE_NOT_FOUND",
                        format!("Thing '{thing}' is not in the registry; it cannot join a group"),
                    ));
                }
            }
            for group in groups {
                if self.store.group_get(group)?.is_none() {
                    return Ok(Outcome::failed(
                        "RESOURCE_NOT_FOUND",
                        format!("Thing group '{group}' does not exist"),
                    ));
                }
            }
            for group in groups {
                for thing in things {
                    self.store.group_membership(group, thing, true)?;
                }
            }
            Ok(Outcome::succeeded(format!(
                "Added {} to {}",
                things.join(", "),
                groups.join(", ")
            )))
        };
        let outcome = match run() {
            Ok(o) => o,
            Err(e) => return Outcome::failed("INTERNAL_ERROR", e.to_string()),
        };
        if outcome.state == crate::store::ExecState::Succeeded
            && let Err(e) = self.detect.reload()
        {
            return Outcome::failed(
                "INTERNAL_ERROR",
                format!("Added to the groups, but Detect did not reload: {e}"),
            );
        }
        outcome
    }
}
