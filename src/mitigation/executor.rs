//! What one action does to one subject: an audit finding (audit tasks) or a violation's thing
//! (detect tasks).

use super::action::Action;
use super::{Mitigation, Outcome, broker};
use thingward_audit::finding::ResourceIdentifier;
use thingward_store::{
    CertStatus, ExecutionRecord, NewOutboxEvent, OutboxKind, OutboxRouting, PolicyVersionError,
    Severity, TaskKind, principal_cert_id,
};

/// The `BLANK_POLICY` template: a policy version that denies everything.
pub(crate) const BLANK_POLICY: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"iot:*","Resource":"*"}]}"#;

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
            TaskKind::Audit => self.on_finding(action, e),
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
            Action::DeactivateDeviceCertificate => match self.store.thing_certificates(thing) {
                Ok(ids) if ids.is_empty() => {
                    Outcome::skipped(format!("No certificate is attached to thing '{thing}'"))
                }
                Ok(ids) => self.deactivate(&ids),
                Err(err) => Outcome::failed("INTERNAL_ERROR", err.to_string()),
            },
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
        let run = || -> Result<Outcome, thingward_store::StoreError> {
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
        if outcome.state == thingward_store::ExecState::Succeeded
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
        routing: OutboxRouting::violation(
            text("securityProfileName"),
            text("thingName"),
            behavior.as_ref(),
        ),
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
        OutboxKind::FleetEvent => "fleet-events",
    }
}

impl Mitigation {
    /// Whether `profile`'s `alertTargets` name the destination's ARN.
    fn routes_profile(
        &self,
        profile: &str,
        destination: &str,
    ) -> Result<bool, thingward_store::StoreError> {
        let (region, account) = self.region_account();
        let arn = format!("arn:aws:iot:{region}:{account}:destination/{destination}");
        Ok(self
            .store
            .profile_get(profile)?
            .and_then(|p| p.alert_targets)
            .is_some_and(|targets| targets.values().any(|t| t.alert_target_arn == arn)))
    }

    /// Appends `event` to the feed outbox for `destination`, which must exist and receive the
    /// event (its kind, and for a violation its profile). The feed routes the event as it
    /// routes every event of its kind: other destinations that receive it get it too.
    pub(super) fn publish(&self, destination: &str, mut event: NewOutboxEvent) -> Outcome {
        event.routing.destination = Some(destination.to_owned());
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
        if event.kind == OutboxKind::Violation
            && dest.config["allProfiles"] != true
            && let Some(profile) = event.routing.profile.as_deref()
        {
            match self.routes_profile(profile, destination) {
                Ok(true) => {}
                Ok(false) => {
                    return Outcome::failed(
                        "DESTINATION_NOT_ROUTED",
                        format!(
                            "Feed destination '{destination}' does not receive violations of profile '{profile}' (give it allProfiles, or name it in the profile's alertTargets)"
                        ),
                    );
                }
                Err(err) => return Outcome::failed("INTERNAL_ERROR", err.to_string()),
            }
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

impl Mitigation {
    /// An action for the audit finding of `e`.
    fn on_finding(&self, action: &Action, e: &ExecutionRecord) -> Outcome {
        let finding = match self.store.finding_get(&e.subject, self.now()) {
            Ok(Some(f)) => f,
            Ok(None) => {
                return Outcome::failed(
                    "RESOURCE_NOT_FOUND",
                    format!("Audit finding '{}' is no longer stored", e.subject),
                );
            }
            Err(err) => return Outcome::failed("INTERNAL_ERROR", err.to_string()),
        };
        if finding.is_suppressed {
            return Outcome::skipped("The finding is suppressed");
        }
        let body = finding.aws_json().unwrap_or_else(|_| serde_json::json!({}));
        let resource: ResourceIdentifier =
            serde_json::from_value(body["nonCompliantResource"]["resourceIdentifier"].clone())
                .unwrap_or_default();
        let device = resource.device_certificate_id.as_deref();
        match action {
            Action::DeactivateDeviceCertificate => match device {
                Some(id) => self.deactivate(&[id.to_owned()]),
                None => {
                    Outcome::failed("INVALID_TARGET", "The finding names no device certificate")
                }
            },
            Action::DeactivateCaCertificate => match resource.ca_certificate_id.as_deref() {
                Some(id) => self.deactivate(&[id.to_owned()]),
                None => Outcome::failed("INVALID_TARGET", "The finding names no CA certificate"),
            },
            Action::AddThingsToGroups { groups } => {
                let Some(id) = device else {
                    return Outcome::failed(
                        "INVALID_TARGET",
                        "The finding names no device certificate (whose things to add)",
                    );
                };
                match self.things_of_certificate(id) {
                    Ok(things) if things.is_empty() => {
                        Outcome::skipped(format!("No thing is attached to certificate {id}"))
                    }
                    Ok(things) => self.add_to_groups(&things, groups),
                    Err(err) => Outcome::failed("INTERNAL_ERROR", err.to_string()),
                }
            }
            Action::ReplaceDefaultPolicyVersion => {
                match resource
                    .policy_version_identifier
                    .as_ref()
                    .and_then(|p| p.policy_name.as_deref())
                {
                    Some(name) => self.blank_policy(name),
                    None => Outcome::failed("INVALID_TARGET", "The finding names no policy"),
                }
            }
            Action::EnableLogging { level } => match self.store.logging_level_set(level) {
                Ok(()) => Outcome::succeeded(format!("Account log level set to {level}")),
                Err(err) => Outcome::failed("INTERNAL_ERROR", err.to_string()),
            },
            Action::Publish { destination } => {
                let event = NewOutboxEvent {
                    key: format!("mitigation:{}:{}", e.task_id, e.seq),
                    kind: OutboxKind::AuditFinding,
                    routing: OutboxRouting {
                        check_name: Some(finding.check_name.clone()),
                        severity: Severity::parse(&finding.severity),
                        ..OutboxRouting::default()
                    },
                    event_ms: finding.finding_ms,
                    body,
                };
                self.publish(destination, event)
            }
            Action::BanClient(_) => Outcome::skipped("The action does not apply to a finding"),
        }
    }

    /// Sets the certificates INACTIVE (registered ones, or a status override for directory
    /// certificates).
    fn deactivate(&self, ids: &[String]) -> Outcome {
        for id in ids {
            if let Err(err) = self
                .store
                .cert_status_set(id, CertStatus::Inactive, self.now())
            {
                return Outcome::failed("INTERNAL_ERROR", err.to_string());
            }
        }
        Outcome::succeeded(format!("Set INACTIVE: {}", ids.join(", ")))
    }

    /// The things certificate `id` is attached to (as a principal).
    fn things_of_certificate(&self, id: &str) -> Result<Vec<String>, thingward_store::StoreError> {
        let mut things: Vec<String> = self
            .store
            .thing_principals_all()?
            .into_iter()
            .filter(|(_, p)| principal_cert_id(p).is_some_and(|c| c.eq_ignore_ascii_case(id)))
            .map(|(t, _)| t)
            .collect();
        things.dedup();
        Ok(things)
    }

    /// A new deny-all default version of policy `name`.
    fn blank_policy(&self, name: &str) -> Outcome {
        match self
            .store
            .policy_version_create(name, BLANK_POLICY, true, self.now())
        {
            Ok(v) => Outcome::succeeded(format!(
                "Policy '{name}' version {} (deny all) is now the default",
                v.version
            )),
            Err(PolicyVersionError::NotFound) => Outcome::failed(
                "RESOURCE_NOT_FOUND",
                format!(
                    "Policy '{name}' is not registered through the API (a policy from the audit config's directory is edited in its file)"
                ),
            ),
            Err(PolicyVersionError::TooMany) => Outcome::failed(
                "LIMIT_EXCEEDED",
                format!("Policy '{name}' already has 5 versions; delete one first"),
            ),
            Err(PolicyVersionError::Store(err)) => {
                Outcome::failed("INTERNAL_ERROR", err.to_string())
            }
        }
    }
}
