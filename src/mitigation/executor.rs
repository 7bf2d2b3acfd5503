//! What one action does to one subject: an audit finding (audit tasks) or a violation's thing
//! (detect tasks).

use super::action::Action;
use super::{Mitigation, Outcome, broker};
use crate::store::{
    ExecutionRecord, NewOutboxEvent, OutboxKind, OutboxRouting, Severity, TaskKind,
};

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
                self.on_violation(action, e, thing).await
            }
            TaskKind::Audit => Outcome::failed(
                "NOT_AVAILABLE",
                format!("Audit findings are {NOT_AVAILABLE}"),
            ),
        }
    }

    /// An action for a violation of `thing`.
    async fn on_violation(&self, action: &Action, e: &ExecutionRecord, thing: &str) -> Outcome {
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
                let event = match self.store.mitigation_violation_json(&e.subject) {
                    Ok(Some(body)) => violation_event(e, body),
                    Ok(None) => {
                        return Outcome::failed(
                            "RESOURCE_NOT_FOUND",
                            format!("Violation '{}' is no longer recorded", e.subject),
                        );
                    }
                    Err(err) => return Outcome::failed("INTERNAL_ERROR", err.to_string()),
                };
                self.publish(destination, event)
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

/// The outbox event publishing a violation: its latest `ViolationEvent` JSON, keyed by the
/// execution (`mitigation:{taskId}:{seq}`) so a re-run does not publish twice.
fn violation_event(e: &ExecutionRecord, body: serde_json::Value) -> NewOutboxEvent {
    let behavior: Option<thingward_models::behavior::Behavior> =
        serde_json::from_value(body["behavior"].clone()).ok();
    let text = |k: &str| body[k].as_str().map(str::to_owned);
    NewOutboxEvent {
        key: format!("mitigation:{}:{}", e.task_id, e.seq),
        kind: OutboxKind::Violation,
        routing: OutboxRouting {
            profile: text("securityProfileName"),
            thing: text("thingName"),
            behavior: behavior.as_ref().map(|b| b.name.clone()),
            check_name: None,
            severity: behavior.as_ref().map(Severity::of_behavior),
        },
        event_ms: body["violationEventTime"]
            .as_f64()
            .map_or(0, thingward_models::time::seconds_to_millis),
        body,
    }
}

/// The `events` value of a feed destination configuration that takes `kind`.
fn events_name(kind: OutboxKind) -> &'static str {
    match kind {
        OutboxKind::Violation => "violations",
        OutboxKind::AuditFinding => "audit-findings",
    }
}

impl Mitigation {
    /// Appends `event` to the feed outbox for `destination`, which must exist and take the
    /// event's kind.
    pub(super) fn publish(&self, destination: &str, event: NewOutboxEvent) -> Outcome {
        let dest = match self.store.destination_get(destination) {
            Ok(Some(d)) => d,
            Ok(None) => {
                return Outcome::failed(
                    "RESOURCE_NOT_FOUND",
                    format!("Feed destination '{destination}' does not exist"),
                );
            }
            Err(err) => return Outcome::failed("INTERNAL_ERROR", err.to_string()),
        };
        let wanted = events_name(event.kind);
        if let Some(events) = dest.config["events"].as_array()
            && !events.iter().any(|e| e == wanted)
        {
            return Outcome::failed(
                "DESTINATION_REFUSES_KIND",
                format!("Feed destination '{destination}' does not take {wanted} events"),
            );
        }
        match self.store.outbox_append(std::slice::from_ref(&event)) {
            Ok(seqs) => Outcome::succeeded(match seqs.first().copied().flatten() {
                Some(seq) => {
                    format!("Appended to the alarm feed as event {seq} for '{destination}'")
                }
                None => format!("Already in the alarm feed for '{destination}'"),
            }),
            Err(err) => Outcome::failed("INTERNAL_ERROR", err.to_string()),
        }
    }
}
