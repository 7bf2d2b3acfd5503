//! A destination's configuration: the body of `PUT /thingward/v1/destinations/{name}`, checked
//! once at the API boundary ([`DestinationParams::validate`]) into a [`Destination`].

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Destination names: 1..128 of `[a-zA-Z0-9_-]` (they appear in ARNs and metric labels).
pub(crate) const NAME_MAX: usize = 128;
/// Events per request (webhooks) or per flush (MQTT, NATS), at most.
pub(crate) const BATCH_MAX: usize = 500;
/// Delivery attempts of a batch before it is dead-lettered, by default.
pub(crate) const DEFAULT_MAX_ATTEMPTS: u32 = 8;
/// The per-request timeout, by default.
pub(crate) const DEFAULT_TIMEOUT_SECONDS: u64 = 10;

/// The kinds of transport and payload a destination delivers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum DestinationType {
    /// Webhook, Prometheus Alertmanager webhook payload (version 4).
    Alertmanager,
    /// Webhook, CloudEvents 1.0 JSON (structured, or batch mode).
    Cloudevents,
    /// Webhook, OCSF Detection Finding (class 2004) JSON array.
    Ocsf,
    /// Webhook, AWS Security Finding Format (`BatchImportFindings` body).
    Asff,
    /// MQTT publish (QoS 1) on a topic.
    Mqtt,
    /// NATS publish on a subject, `Nats-Msg-Id` = the idempotency key.
    Nats,
}

impl DestinationType {
    /// Whether the destination is an HTTP webhook.
    pub(crate) fn is_webhook(self) -> bool {
        matches!(
            self,
            Self::Alertmanager | Self::Cloudevents | Self::Ocsf | Self::Asff
        )
    }

    /// The API spelling.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Alertmanager => "alertmanager",
            Self::Cloudevents => "cloudevents",
            Self::Ocsf => "ocsf",
            Self::Asff => "asff",
            Self::Mqtt => "mqtt",
            Self::Nats => "nats",
        }
    }
}

/// Which outbox kinds a destination receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum EventKind {
    /// Violation events of the profiles routed to the destination.
    Violations,
    /// Every audit finding.
    AuditFindings,
    /// Fleet events (opened, closed) of the profiles routed to the destination. A destination
    /// that takes `violations` takes them too: they stand in for the device alarms they hold.
    FleetEvents,
}

/// The request body, unchecked.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct DestinationParams {
    /// The transport and payload format.
    #[serde(rename = "type")]
    pub(crate) kind: DestinationType,
    /// Webhook URL (`http://…`), NATS URL (`nats://…`), or the MQTT broker (`mqtt://…`;
    /// optional, defaults to thingward's `--mqtt-url`).
    pub(crate) url: Option<String>,
    /// Extra request headers (webhooks).
    pub(crate) headers: Option<BTreeMap<String, String>>,
    /// Events per request (webhooks) or per flush.
    pub(crate) batch_size: Option<usize>,
    /// MQTT topic.
    pub(crate) topic: Option<String>,
    /// NATS subject.
    pub(crate) subject: Option<String>,
    /// CloudEvents batch mode (`application/cloudevents-batch+json`).
    pub(crate) batch_mode: Option<bool>,
    /// Which events; default violations.
    pub(crate) events: Option<Vec<EventKind>>,
    /// Receive every profile's violations, not only those whose `alertTargets` name this one.
    pub(crate) all_profiles: Option<bool>,
    /// Attempts per batch before it is dead-lettered (1..=20).
    pub(crate) max_attempts: Option<u32>,
    /// Per-request timeout (1..=120 s).
    pub(crate) timeout_seconds: Option<u64>,
}

/// A checked destination configuration, as stored and as returned by the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Destination {
    /// The transport and payload format.
    #[serde(rename = "type")]
    pub(crate) kind: DestinationType,
    /// The URL (see [`DestinationParams::url`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) url: Option<String>,
    /// Extra request headers.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) headers: BTreeMap<String, String>,
    /// Events per request or flush.
    pub(crate) batch_size: usize,
    /// MQTT topic.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) topic: Option<String>,
    /// NATS subject.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) subject: Option<String>,
    /// CloudEvents batch mode.
    #[serde(default)]
    pub(crate) batch_mode: bool,
    /// Which events.
    pub(crate) events: Vec<EventKind>,
    /// Every profile's violations.
    pub(crate) all_profiles: bool,
    /// Attempts per batch before dead-lettering.
    pub(crate) max_attempts: u32,
    /// Per-request timeout, seconds.
    pub(crate) timeout_seconds: u64,
}

/// Checks a destination name.
///
/// # Errors
/// A message naming the rule broken.
pub(crate) fn validate_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > NAME_MAX {
        return Err(format!("destination name must be 1..{NAME_MAX} characters"));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err("destination name must match [a-zA-Z0-9_-]+".into());
    }
    Ok(())
}

/// Checks a URL's scheme and that it names a host (whether the host resolves is the worker's
/// business: an unresolvable host is accepted and shows as failing).
fn check_url(url: &str, schemes: &[&str]) -> Result<(), String> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(format!(
            "url '{}' must start with {}://",
            crate::redaction::urls(url),
            schemes[0]
        ));
    };
    if !schemes.contains(&scheme) {
        return Err(format!(
            "url '{url}': scheme must be one of {}",
            schemes.join(", ")
        ));
    }
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    if host.is_empty()
        || host.starts_with(':')
        || url.len() > 2048
        || url.contains(char::is_whitespace)
    {
        return Err(format!(
            "url '{}' is not a valid URL",
            crate::redaction::urls(url)
        ));
    }
    Ok(())
}

/// Checks an MQTT topic to publish on (no wildcards, 1..=256 bytes, no `$` prefix except
/// thingward's own `$aws/…` shape is refused too: brokers reserve `$` topics).
fn check_topic(topic: &str) -> Result<(), String> {
    if topic.is_empty() || topic.len() > 256 {
        return Err("topic must be 1..256 bytes".into());
    }
    if topic.contains(['+', '#', '\0']) || topic.starts_with('$') {
        return Err(format!(
            "topic '{topic}' must not contain wildcards or start with $"
        ));
    }
    Ok(())
}

/// Checks a NATS subject to publish on (tokens of printable non-space characters separated by
/// dots, no wildcards).
fn check_subject(subject: &str) -> Result<(), String> {
    if subject.is_empty() || subject.len() > 256 {
        return Err("subject must be 1..256 bytes".into());
    }
    if subject.split('.').any(|t| {
        t.is_empty()
            || t == "*"
            || t == ">"
            || t.contains(|c: char| c.is_whitespace() || c.is_control())
    }) {
        return Err(format!(
            "subject '{subject}' must be dot-separated tokens without wildcards or spaces"
        ));
    }
    Ok(())
}

/// The `alertTargets` keys thingward accepts besides AWS's `SNS`: each names a thingward
/// destination by its ARN (`arn:aws:iot:{region}:{account}:destination/{name}`), with
/// `roleArn` optional. The key is informational (what kind of destination it is); routing
/// goes by the ARN alone.
pub(crate) const ALERT_TARGET_KEYS: [&str; 4] = ["WEBHOOK", "MQTT", "NATS", "THINGWARD"];

/// Checks one `alertTargets` entry; `destination_prefix` is this server's
/// `arn:aws:iot:{region}:{account}:destination/`. Returns the problems.
pub(crate) fn check_alert_target(
    key: &str,
    arn: &str,
    role_arn: &str,
    destination_prefix: &str,
) -> Vec<String> {
    let mut errors = Vec::new();
    if key == "SNS" {
        if !(20..=2048).contains(&role_arn.len()) {
            errors.push("alertTargets roleArn must be 20..2048 characters".into());
        }
        return errors;
    }
    if !ALERT_TARGET_KEYS.contains(&key) {
        errors.push(format!(
            "alertTargets key must be SNS or one of {}, got '{key}'",
            ALERT_TARGET_KEYS.join(", ")
        ));
        return errors;
    }
    if !role_arn.is_empty() && !(20..=2048).contains(&role_arn.len()) {
        errors.push("alertTargets roleArn must be 20..2048 characters".into());
    }
    match arn.strip_prefix(destination_prefix) {
        Some(name) => {
            if let Err(e) = validate_name(name) {
                errors.push(format!("alertTargets {key}: {e}"));
            }
        }
        None => errors.push(format!(
            "alertTargets {key}: alertTargetArn must be {destination_prefix}{{name}}, got '{arn}'"
        )),
    }
    errors
}

impl DestinationParams {
    /// Checks every field; the message lists all problems.
    ///
    /// # Errors
    /// The problems, joined with `; `.
    pub(crate) fn validate(self) -> Result<Destination, String> {
        let mut errors = Vec::new();
        let kind = self.kind;
        match (kind, &self.url) {
            (k, Some(url)) if k.is_webhook() => {
                if let Err(e) = check_url(url, &["http", "https"]) {
                    errors.push(e);
                }
            }
            (k, None) if k.is_webhook() => errors.push(format!("type {} needs a url", k.as_str())),
            (DestinationType::Mqtt, Some(url)) => {
                if let Err(e) = check_url(url, &["mqtt", "tcp"]) {
                    errors.push(e);
                }
            }
            (DestinationType::Nats, Some(url)) => {
                if let Err(e) = check_url(url, &["nats"]) {
                    errors.push(e);
                }
            }
            (DestinationType::Nats, None) => errors.push("type nats needs a url".into()),
            _ => {}
        }
        match (kind, &self.topic) {
            (DestinationType::Mqtt, Some(t)) => {
                if let Err(e) = check_topic(t) {
                    errors.push(e);
                }
            }
            (DestinationType::Mqtt, None) => errors.push("type mqtt needs a topic".into()),
            (_, Some(_)) => errors.push("topic applies to type mqtt only".into()),
            _ => {}
        }
        match (kind, &self.subject) {
            (DestinationType::Nats, Some(s)) => {
                if let Err(e) = check_subject(s) {
                    errors.push(e);
                }
            }
            (DestinationType::Nats, None) => errors.push("type nats needs a subject".into()),
            (_, Some(_)) => errors.push("subject applies to type nats only".into()),
            _ => {}
        }
        let headers = self.headers.unwrap_or_default();
        if !headers.is_empty() && !kind.is_webhook() {
            errors.push("headers apply to webhook types only".into());
        }
        for (k, v) in &headers {
            if axum::http::HeaderName::from_bytes(k.as_bytes()).is_err()
                || axum::http::HeaderValue::from_str(v).is_err()
            {
                errors.push(format!("header '{k}' is not a valid HTTP header"));
            }
        }
        if self.batch_mode.is_some() && kind != DestinationType::Cloudevents {
            errors.push("batchMode applies to type cloudevents only".into());
        }
        let batch_mode = self.batch_mode.unwrap_or(false);
        // One event per request unless the format batches (Alertmanager, OCSF, ASFF arrays,
        // CloudEvents batch mode).
        let batches = matches!(
            kind,
            DestinationType::Alertmanager | DestinationType::Ocsf | DestinationType::Asff
        ) || batch_mode
            || !kind.is_webhook();
        let default_batch = if batches { 100 } else { 1 };
        let batch_size = self.batch_size.unwrap_or(default_batch);
        if batch_size == 0 || batch_size > BATCH_MAX {
            errors.push(format!("batchSize must be 1..{BATCH_MAX}"));
        } else if batch_size > 1 && !batches {
            errors.push("batchSize > 1 for cloudevents needs batchMode".into());
        }
        let mut events = self.events.unwrap_or_else(|| vec![EventKind::Violations]);
        events.sort();
        events.dedup();
        if events.is_empty() {
            errors.push(
                "events must name at least one of violations, audit-findings, fleet-events".into(),
            );
        }
        let max_attempts = self.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS);
        if !(1..=20).contains(&max_attempts) {
            errors.push("maxAttempts must be 1..20".into());
        }
        let timeout_seconds = self.timeout_seconds.unwrap_or(DEFAULT_TIMEOUT_SECONDS);
        if !(1..=120).contains(&timeout_seconds) {
            errors.push("timeoutSeconds must be 1..120".into());
        }
        if !errors.is_empty() {
            return Err(errors.join("; "));
        }
        Ok(Destination {
            kind,
            url: self.url,
            headers,
            batch_size,
            topic: self.topic,
            subject: self.subject,
            batch_mode,
            events,
            all_profiles: self.all_profiles.unwrap_or(false),
            max_attempts,
            timeout_seconds,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(v: serde_json::Value) -> Result<Destination, String> {
        serde_json::from_value::<DestinationParams>(v)
            .map_err(|e| e.to_string())?
            .validate()
    }

    #[test]
    fn defaults_and_refusals() {
        let d = params(
            serde_json::json!({"type": "alertmanager", "url": "http://am.invalid:9093/hook"}),
        )
        .expect("valid");
        assert_eq!(d.batch_size, 100);
        assert_eq!(d.events, [EventKind::Violations]);
        assert_eq!(d.max_attempts, DEFAULT_MAX_ATTEMPTS);
        let d = params(serde_json::json!({"type": "cloudevents", "url": "https://x.example/"}))
            .expect("valid");
        assert_eq!(d.batch_size, 1);
        for bad in [
            serde_json::json!({"type": "cloudevents"}),
            serde_json::json!({"type": "cloudevents", "url": "ftp://x/"}),
            serde_json::json!({"type": "cloudevents", "url": "http://"}),
            serde_json::json!({"type": "cloudevents", "url": "http://x/", "batchSize": 5}),
            serde_json::json!({"type": "mqtt"}),
            serde_json::json!({"type": "mqtt", "topic": "alarms/#"}),
            serde_json::json!({"type": "nats", "url": "nats://127.0.0.1:4222", "subject": "a..b"}),
            serde_json::json!({"type": "nats", "subject": "alarms"}),
            serde_json::json!({"type": "ocsf", "url": "http://x/", "maxAttempts": 0}),
            serde_json::json!({"type": "ocsf", "url": "http://x/", "events": []}),
            serde_json::json!({"type": "ocsf", "url": "http://x/", "headers": {"bad header": "v"}}),
        ] {
            assert!(params(bad.clone()).is_err(), "{bad} was accepted");
        }
        assert!(params(serde_json::json!({"type": "sns", "url": "http://x/"})).is_err());
        assert!(validate_name("ops-alerts_1").is_ok());
        assert!(validate_name("bad name").is_err());
        assert!(validate_name("").is_err());
    }
}
