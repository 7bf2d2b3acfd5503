//! Payload formats: how an outbox event (a violation event, an audit finding or a fleet event
//! opening or closing) is rendered
//! for Alertmanager, CloudEvents, OCSF, ASFF, and the plain envelope of MQTT, NATS and SSE.
//! Pure functions of the events; docs/specs/feed.md lists every field.

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use thingward_models::time::EpochMillis;
use thingward_store::{OutboxEvent, OutboxKind, Severity};

/// The OCSF schema version the Detection Findings follow.
pub(crate) const OCSF_VERSION: &str = "1.5.0";
/// The ASFF schema version.
pub(crate) const ASFF_VERSION: &str = "2018-10-08";
/// The Alertmanager `alertname` of fleet events.
pub(crate) const FLEET_ALERTNAME: &str = "ThingwardFleetEvent";
/// CloudEvents' structured-mode content type.
pub(crate) const CLOUDEVENTS_JSON: &str = "application/cloudevents+json";
/// CloudEvents' batch-mode content type.
pub(crate) const CLOUDEVENTS_BATCH: &str = "application/cloudevents-batch+json";

/// Where the events come from: ARNs, links and the receiver's name.
#[derive(Debug, Clone)]
pub(crate) struct Origin {
    /// The region in ARNs.
    pub(crate) region: String,
    /// The account id in ARNs.
    pub(crate) account: String,
    /// thingward's base URL, for links (`externalURL`, `generatorURL`).
    pub(crate) external_url: String,
}

/// RFC 3339 UTC with milliseconds.
pub(crate) fn rfc3339(ms: EpochMillis) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// What a violation event says, read from its body.
struct Violation<'a> {
    id: &'a str,
    thing: &'a str,
    profile: &'a str,
    behavior: &'a str,
    metric: &'a str,
    event_type: &'a str,
    criteria_type: &'static str,
    confidence: Option<&'a str>,
    verification: Option<&'a str>,
    body: &'a Value,
}

impl<'a> Violation<'a> {
    fn of(body: &'a Value) -> Self {
        let behavior = body.get("behavior").unwrap_or(&Value::Null);
        let criteria = behavior.get("criteria").unwrap_or(&Value::Null);
        let confidence = body
            .pointer("/violationEventAdditionalInfo/confidenceLevel")
            .and_then(Value::as_str);
        let criteria_type = if criteria.get("mlDetectionConfig").is_some() {
            "MACHINE_LEARNING"
        } else if criteria.get("statisticalThreshold").is_some() {
            "STATISTICAL"
        } else {
            "STATIC"
        };
        Self {
            id: str_of(body, "violationId"),
            thing: str_of(body, "thingName"),
            profile: str_of(body, "securityProfileName"),
            behavior: str_of(behavior, "name"),
            metric: str_of(behavior, "metric"),
            event_type: str_of(body, "violationEventType"),
            criteria_type,
            confidence,
            verification: body.get("verificationState").and_then(Value::as_str),
            body,
        }
    }

    fn firing(&self) -> bool {
        self.event_type == "in-alarm"
    }

    fn dismissed(&self) -> bool {
        matches!(
            self.verification,
            Some("FALSE_POSITIVE" | "BENIGN_POSITIVE")
        )
    }

    fn title(&self) -> String {
        let what = match self.event_type {
            "in-alarm" => "in alarm",
            "alarm-cleared" => "cleared",
            _ => "invalidated",
        };
        format!("{} {what} on {}", self.behavior, self.thing)
    }

    fn description(&self) -> String {
        let value = self
            .body
            .get("metricValue")
            .map(Value::to_string)
            .unwrap_or_else(|| "none".into());
        format!(
            "Behavior {} ({}) of security profile {} on thing {}: {}; metric value {value}",
            self.behavior, self.metric, self.profile, self.thing, self.event_type
        )
    }
}

/// What an audit finding says, read from its body (aws-api.md §4.2).
struct Finding<'a> {
    id: &'a str,
    check: &'a str,
    reason: &'a str,
    code: &'a str,
    resource_type: &'a str,
    resource: Value,
    suppressed: bool,
}

impl<'a> Finding<'a> {
    fn of(body: &'a Value) -> Self {
        let resource = body.get("nonCompliantResource").unwrap_or(&Value::Null);
        Self {
            id: str_of(body, "findingId"),
            check: str_of(body, "checkName"),
            reason: str_of(body, "reasonForNonCompliance"),
            code: str_of(body, "reasonForNonComplianceCode"),
            resource_type: str_of(resource, "resourceType"),
            resource: resource
                .get("resourceIdentifier")
                .cloned()
                .unwrap_or(Value::Null),
            suppressed: body
                .get("isSuppressed")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        }
    }

    /// The resource identifier's first member's value (`deviceCertificateId`, `clientId`, …).
    fn resource_id(&self) -> String {
        match &self.resource {
            Value::Object(m) => m
                .values()
                .next()
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                .unwrap_or_default(),
            _ => String::new(),
        }
    }
}

/// What a fleet event says, read from its body (the fleet event's API shape plus
/// `fleetEventChange`, `docs/specs/fleet-events.md`).
struct Fleet<'a> {
    id: &'a str,
    profile: &'a str,
    change: &'a str,
    phase: &'a str,
    verification: Option<&'a str>,
    body: &'a Value,
}

impl<'a> Fleet<'a> {
    fn of(body: &'a Value) -> Self {
        Self {
            id: str_of(body, "fleetEventId"),
            profile: str_of(body, "securityProfileName"),
            change: str_of(body, "fleetEventChange"),
            phase: str_of(body, "phase"),
            verification: body.get("verificationState").and_then(Value::as_str),
            body,
        }
    }

    fn firing(&self) -> bool {
        self.change == "opened"
    }

    fn dismissed(&self) -> bool {
        matches!(
            self.verification,
            Some("FALSE_POSITIVE" | "BENIGN_POSITIVE")
        )
    }

    fn behaviors(&self) -> &'a [Value] {
        self.body
            .get("behaviors")
            .and_then(Value::as_array)
            .map_or(&[], Vec::as_slice)
    }

    /// The metrics that moved, comma-separated.
    fn metrics(&self) -> String {
        let mut m: Vec<&str> = self
            .behaviors()
            .iter()
            .map(|b| str_of(b, "metric"))
            .collect();
        m.dedup();
        m.join(",")
    }

    /// `behavior=peak share` per behavior, comma-separated (shares as percentages).
    fn shares(&self) -> String {
        self.behaviors()
            .iter()
            .map(|b| {
                let share = b.get("peakShare").and_then(Value::as_f64).unwrap_or(0.0);
                format!("{}={:.1}%", str_of(b, "behaviorName"), 100.0 * share)
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The most devices hot at once on any behavior.
    fn peak_devices(&self) -> u64 {
        self.behaviors()
            .iter()
            .filter_map(|b| b.get("peakDevices").and_then(Value::as_u64))
            .max()
            .unwrap_or(0)
    }

    fn start_ms(&self) -> Option<EpochMillis> {
        self.body
            .get("startTime")
            .and_then(Value::as_f64)
            .map(thingward_models::time::seconds_to_millis)
    }

    fn title(&self) -> String {
        let what = if self.firing() { "opened" } else { "closed" };
        format!("Fleet event {what} on security profile {}", self.profile)
    }

    fn description(&self) -> String {
        format!(
            "Fleet event {} of security profile {}: {} devices at once on {} (peak shares {}); {} device alarms held; phase {}",
            self.id,
            self.profile,
            self.peak_devices(),
            self.metrics(),
            self.shares(),
            self.body
                .get("explainedAlarmCount")
                .and_then(Value::as_u64)
                .unwrap_or(0),
            self.phase
        )
    }
}

fn title_case(s: Severity) -> &'static str {
    match s {
        Severity::Low => "Low",
        Severity::Medium => "Medium",
        Severity::High => "High",
        Severity::Critical => "Critical",
    }
}

fn severity_of(e: &OutboxEvent) -> Severity {
    e.routing.severity.unwrap_or(Severity::Medium)
}

/// A stable short id of `s` (Alertmanager fingerprints).
fn fingerprint(s: &str) -> String {
    hex::encode(&Sha256::digest(s.as_bytes())[..8])
}

/// The plain envelope (MQTT, NATS, SSE): the sequence number, key, kind, severity and the AWS
/// body as it is stored.
pub(crate) fn plain(e: &OutboxEvent) -> Value {
    json!({
        "seq": e.seq,
        "idempotencyKey": e.key,
        "kind": e.kind.as_str(),
        "severity": e.routing.severity.map(Severity::as_str),
        "event": e.body,
    })
}

/// One Alertmanager alert. `started_ms`: when the violation went into alarm (for a resolved
/// alert whose in-alarm event is known).
fn alert(origin: &Origin, e: &OutboxEvent, started_ms: Option<EpochMillis>) -> Value {
    let severity = severity_of(e).as_str();
    let mut labels = Map::new();
    let mut annotations = Map::new();
    let (status, starts, ends, identity) = match e.kind {
        OutboxKind::Violation => {
            let v = Violation::of(&e.body);
            labels.insert("alertname".into(), v.behavior.into());
            labels.insert("securityProfileName".into(), v.profile.into());
            labels.insert("thingName".into(), v.thing.into());
            labels.insert("metric".into(), v.metric.into());
            labels.insert("criteriaType".into(), v.criteria_type.into());
            annotations.insert("summary".into(), v.title().into());
            annotations.insert("description".into(), v.description().into());
            annotations.insert("violationId".into(), v.id.into());
            annotations.insert("violationEventType".into(), v.event_type.into());
            if let Some(value) = v.body.get("metricValue") {
                annotations.insert("metricValue".into(), value.to_string().into());
            }
            if let Some(c) = v.confidence {
                annotations.insert("confidenceLevel".into(), c.into());
            }
            if let Some(x) = v.body.get("mlExplanation") {
                annotations.insert("mlExplanation".into(), x.to_string().into());
            }
            if v.event_type == "alarm-invalidated" {
                annotations.insert("invalidated".into(), "true".into());
            }
            if v.firing() {
                ("firing", e.event_ms, None, v.id)
            } else {
                (
                    "resolved",
                    started_ms.unwrap_or(e.event_ms),
                    Some(e.event_ms),
                    v.id,
                )
            }
        }
        OutboxKind::FleetEvent => {
            let f = Fleet::of(&e.body);
            labels.insert("alertname".into(), FLEET_ALERTNAME.into());
            labels.insert("securityProfileName".into(), f.profile.into());
            labels.insert("fleetEventId".into(), f.id.into());
            annotations.insert("summary".into(), f.title().into());
            annotations.insert("description".into(), f.description().into());
            annotations.insert("metrics".into(), f.metrics().into());
            annotations.insert("shares".into(), f.shares().into());
            annotations.insert("peakDevices".into(), f.peak_devices().to_string().into());
            annotations.insert("phase".into(), f.phase.into());
            if let Some(n) = e.body.get("explainedAlarmCount") {
                annotations.insert("explainedAlarmCount".into(), n.to_string().into());
            }
            let starts = f.start_ms().unwrap_or(e.event_ms);
            if f.firing() {
                ("firing", starts, None, f.id)
            } else {
                ("resolved", starts, Some(e.event_ms), f.id)
            }
        }
        OutboxKind::AuditFinding => {
            let f = Finding::of(&e.body);
            labels.insert("alertname".into(), f.check.into());
            labels.insert("resourceType".into(), f.resource_type.into());
            labels.insert("resourceId".into(), f.resource_id().into());
            annotations.insert("summary".into(), format!("{} failed", f.check).into());
            annotations.insert("description".into(), f.reason.into());
            annotations.insert("findingId".into(), f.id.into());
            annotations.insert("reasonForNonComplianceCode".into(), f.code.into());
            ("firing", e.event_ms, None, f.id)
        }
    };
    labels.insert("severity".into(), severity.into());
    labels.insert("source".into(), "thingward".into());
    annotations.insert("idempotencyKey".into(), e.key.clone().into());
    json!({
        "status": status,
        "labels": labels,
        "annotations": annotations,
        "startsAt": rfc3339(starts),
        // Alertmanager's "not ended" value.
        "endsAt": ends.map_or_else(|| "0001-01-01T00:00:00Z".to_owned(), rfc3339),
        "generatorURL": format!("{}/violations/events", origin.external_url),
        "fingerprint": fingerprint(identity),
    })
}

/// The labels (or annotations) every alert has with the same value.
fn common(alerts: &[Value], key: &str) -> Map<String, Value> {
    let mut out = alerts
        .first()
        .and_then(|a| a.get(key))
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    for a in alerts.iter().skip(1) {
        let other = a.get(key).and_then(Value::as_object);
        out.retain(|k, v| other.and_then(|o| o.get(k)) == Some(v));
    }
    out
}

/// An Alertmanager webhook payload (receiver side, version 4) holding `events`, each with the
/// time its alarm started when known.
pub(crate) fn alertmanager(
    origin: &Origin,
    receiver: &str,
    events: &[(&OutboxEvent, Option<EpochMillis>)],
) -> Value {
    let alerts: Vec<Value> = events
        .iter()
        .map(|(e, started)| alert(origin, e, *started))
        .collect();
    let status = if alerts.iter().any(|a| a["status"] == "firing") {
        "firing"
    } else {
        "resolved"
    };
    let common_labels = common(&alerts, "labels");
    let mut group_labels = Map::new();
    for k in ["securityProfileName", "alertname"] {
        if let Some(v) = common_labels.get(k) {
            group_labels.insert(k.into(), v.clone());
        }
    }
    let group_key = format!(
        "{{}}:{{{}}}",
        group_labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    json!({
        "version": "4",
        "groupKey": group_key,
        "truncatedAlerts": 0,
        "status": status,
        "receiver": receiver,
        "groupLabels": group_labels,
        "commonLabels": common_labels,
        "commonAnnotations": common(&alerts, "annotations"),
        "externalURL": origin.external_url,
        "alerts": alerts,
    })
}

/// One CloudEvent (structured mode): `id` is the idempotency key, so CloudEvents consumers
/// de-duplicate on (`source`, `id`) as the spec says.
pub(crate) fn cloudevent(origin: &Origin, e: &OutboxEvent) -> Value {
    let (kind, subject) = match e.kind {
        OutboxKind::Violation => {
            let v = Violation::of(&e.body);
            (
                format!("io.thingward.violation.{}", v.event_type),
                v.thing.to_owned(),
            )
        }
        OutboxKind::AuditFinding => {
            let f = Finding::of(&e.body);
            ("io.thingward.audit.finding".to_owned(), f.resource_id())
        }
        OutboxKind::FleetEvent => {
            let f = Fleet::of(&e.body);
            (
                format!("io.thingward.fleet-event.{}", f.change),
                f.profile.to_owned(),
            )
        }
    };
    json!({
        "specversion": "1.0",
        "id": e.key,
        "source": format!("/thingward/{}/{}", origin.region, origin.account),
        "type": kind,
        "time": rfc3339(e.event_ms),
        "subject": subject,
        "datacontenttype": "application/json",
        "idempotencykey": e.key,
        "severity": severity_of(e).as_str(),
        "sequence": e.seq.to_string(),
        "data": e.body,
    })
}

fn ocsf_severity_id(s: Severity) -> u8 {
    match s {
        Severity::Low => 2,
        Severity::Medium => 3,
        Severity::High => 4,
        Severity::Critical => 5,
    }
}

/// `anomaly_analyses` (OCSF 1.5) from an ML explanation: the metric analysed, the observed
/// value and the baseline it broke.
fn anomaly_analyses(metric: &str, x: &Value) -> Value {
    json!([{
        "analysis_targets": [{ "name": metric, "type": "metric" }],
        "anomalies": [{
            "observation_parameter": metric,
            "observation_type": x.get("test").cloned().unwrap_or(Value::Null),
            "observations": [{ "parameter": metric, "value": x.get("observed").map(Value::to_string) }],
            "observed_pattern": format!("standardised residual {}", x.get("residual").cloned().unwrap_or(Value::Null)),
        }],
        "baselines": [{
            "observation_parameter": metric,
            "observation_type": x.get("baseline").cloned().unwrap_or(Value::Null),
            "observations": [{ "parameter": "expected", "value": x.get("expected").map(Value::to_string) }],
            "observed_pattern": format!("baseline {}", str_of(x, "baselineName")),
            "expected_range": x.get("expectedRange").cloned().unwrap_or(Value::Null),
        }],
    }])
}

/// An OCSF Detection Finding (class 2004).
pub(crate) fn ocsf(e: &OutboxEvent) -> Value {
    let severity = severity_of(e);
    let (activity_id, status_id, finding_info, resources, extra) = match e.kind {
        OutboxKind::Violation => {
            let v = Violation::of(&e.body);
            let activity = if v.firing() { 1 } else { 3 };
            let status = if v.dismissed() {
                3
            } else if v.firing() {
                1
            } else {
                4
            };
            // OCSF analytic types: 1 Rule, 3 Statistical, 4 Learning (ML/DL).
            let (analytic_type_id, analytic_type) = match v.criteria_type {
                "MACHINE_LEARNING" => (4, "Learning (ML/DL)"),
                "STATISTICAL" => (3, "Statistical"),
                _ => (1, "Rule"),
            };
            let mut extra = Map::new();
            if let Some(c) = v.confidence {
                let (id, name) = match c {
                    "LOW" => (1, "Low"),
                    "HIGH" => (3, "High"),
                    _ => (2, "Medium"),
                };
                extra.insert("confidence_id".into(), id.into());
                extra.insert("confidence".into(), name.into());
            }
            if let Some(x) = v.body.get("mlExplanation") {
                extra.insert("anomaly_analyses".into(), anomaly_analyses(v.metric, x));
            }
            (
                activity,
                status,
                json!({
                    "uid": v.id,
                    "title": v.title(),
                    "desc": v.description(),
                    "types": [format!("Device Defender {} violation", v.criteria_type)],
                    "analytic": { "name": v.behavior, "type_id": analytic_type_id, "type": analytic_type },
                    "created_time": e.event_ms,
                }),
                json!([{ "type": "IoT Thing", "name": v.thing, "uid": v.thing,
                          "labels": [format!("securityProfile:{}", v.profile)] }]),
                extra,
            )
        }
        OutboxKind::FleetEvent => {
            let f = Fleet::of(&e.body);
            let activity = if f.firing() { 1 } else { 3 };
            let status = if f.dismissed() {
                3
            } else if f.firing() {
                1
            } else {
                4
            };
            let mut extra = Map::new();
            extra.insert("count".into(), f.peak_devices().into());
            (
                activity,
                status,
                json!({
                    "uid": f.id,
                    "title": f.title(),
                    "desc": f.description(),
                    "types": ["Device Defender fleet event"],
                    // Learning: the devices' ML models judged each device hot.
                    "analytic": { "name": FLEET_ALERTNAME, "type_id": 4, "type": "Learning (ML/DL)" },
                    "created_time": f.start_ms().unwrap_or(e.event_ms),
                    "related_analytics": f.behaviors().iter().map(|b| json!({
                        "name": str_of(b, "behaviorName"), "category": str_of(b, "metric"),
                    })).collect::<Vec<_>>(),
                }),
                json!([{ "type": "Security Profile", "name": f.profile, "uid": f.profile,
                          "data": { "behaviors": f.body.get("behaviors"), "cohorts": f.body.get("cohorts"),
                                    "explainedAlarmCount": f.body.get("explainedAlarmCount") } }]),
                extra,
            )
        }
        OutboxKind::AuditFinding => {
            let f = Finding::of(&e.body);
            (
                1,
                if f.suppressed { 3 } else { 1 },
                json!({
                    "uid": f.id,
                    "title": f.check,
                    "desc": f.reason,
                    "types": ["Device Defender audit finding", f.code],
                    "analytic": { "name": f.check, "type_id": 1, "type": "Rule" },
                    "created_time": e.event_ms,
                }),
                json!([{ "type": f.resource_type, "uid": f.resource_id(), "data": f.resource }]),
                Map::new(),
            )
        }
    };
    let activity_name = match activity_id {
        1 => "Create",
        2 => "Update",
        _ => "Close",
    };
    let status = match status_id {
        1 => "New",
        3 => "Suppressed",
        _ => "Resolved",
    };
    let mut out = json!({
        "class_uid": 2004,
        "class_name": "Detection Finding",
        "category_uid": 2,
        "category_name": "Findings",
        "activity_id": activity_id,
        "activity_name": activity_name,
        "type_uid": 200_400 + activity_id,
        "severity_id": ocsf_severity_id(severity),
        "severity": title_case(severity),
        "status_id": status_id,
        "status": status,
        "time": e.event_ms,
        "is_alert": true,
        "metadata": {
            "version": OCSF_VERSION,
            "uid": e.key,
            "product": { "name": "thingward", "vendor_name": "thingward", "version": env!("CARGO_PKG_VERSION") },
        },
        "finding_info": finding_info,
        "resources": resources,
        "unmapped": { "idempotencyKey": e.key, "seq": e.seq },
    });
    if let Value::Object(m) = &mut out {
        m.extend(extra);
    }
    out
}

/// An AWS Security Finding Format finding.
pub(crate) fn asff(origin: &Origin, e: &OutboxEvent) -> Value {
    let arn = |resource: &str| {
        format!(
            "arn:aws:iot:{}:{}:{resource}",
            origin.region, origin.account
        )
    };
    let label = severity_of(e).as_str().to_ascii_uppercase();
    let time = rfc3339(e.event_ms);
    let (id, generator, types, title, description, resources, workflow, record_state, compliance) =
        match e.kind {
            OutboxKind::Violation => {
                let v = Violation::of(&e.body);
                let workflow = if v.dismissed() {
                    "SUPPRESSED"
                } else if v.firing() {
                    "NEW"
                } else {
                    "RESOLVED"
                };
                (
                    arn(&format!("violation/{}", v.id)),
                    arn(&format!(
                        "securityprofile/{}/behavior/{}",
                        v.profile, v.behavior
                    )),
                    json!(["Unusual Behaviors/Device"]),
                    v.title(),
                    v.description(),
                    json!([{ "Type": "Other", "Id": arn(&format!("thing/{}", v.thing)),
                              "Details": { "Other": { "thingName": v.thing, "securityProfileName": v.profile } } }]),
                    workflow,
                    if v.firing() { "ACTIVE" } else { "ARCHIVED" },
                    None,
                )
            }
            OutboxKind::FleetEvent => {
                let f = Fleet::of(&e.body);
                let workflow = if f.dismissed() {
                    "SUPPRESSED"
                } else if f.firing() {
                    "NEW"
                } else {
                    "RESOLVED"
                };
                (
                    arn(&format!("fleetevent/{}", f.id)),
                    arn(&format!("securityprofile/{}", f.profile)),
                    json!(["Unusual Behaviors/Device"]),
                    f.title(),
                    f.description(),
                    json!([{ "Type": "Other", "Id": arn(&format!("securityprofile/{}", f.profile)),
                              "Details": { "Other": { "securityProfileName": f.profile, "fleetEventId": f.id,
                                                       "metrics": f.metrics(), "shares": f.shares() } } }]),
                    workflow,
                    if f.firing() { "ACTIVE" } else { "ARCHIVED" },
                    None,
                )
            }
            OutboxKind::AuditFinding => {
                let f = Finding::of(&e.body);
                (
                    arn(&format!("audit/finding/{}", f.id)),
                    arn(&format!("audit/check/{}", f.check)),
                    json!(["Software and Configuration Checks/AWS Security Best Practices"]),
                    f.check.to_owned(),
                    f.reason.to_owned(),
                    json!([{ "Type": "Other", "Id": f.resource_id(),
                              "Details": { "Other": { "resourceType": f.resource_type } } }]),
                    if f.suppressed { "SUPPRESSED" } else { "NEW" },
                    "ACTIVE",
                    Some(
                        json!({ "Status": "FAILED", "StatusReasons": [{ "ReasonCode": f.code, "Description": f.reason }] }),
                    ),
                )
            }
        };
    let mut out = json!({
        "SchemaVersion": ASFF_VERSION,
        "Id": id,
        "ProductArn": format!("arn:aws:securityhub:{}:{}:product/{}/default", origin.region, origin.account, origin.account),
        "GeneratorId": generator,
        "AwsAccountId": origin.account,
        "Types": types,
        "CreatedAt": time,
        "UpdatedAt": time,
        "Severity": { "Label": label },
        "Title": title,
        "Description": description,
        "Resources": resources,
        "Workflow": { "Status": workflow },
        "RecordState": record_state,
        "ProductFields": { "thingward/idempotencyKey": e.key, "thingward/seq": e.seq.to_string() },
    });
    if let (Some(c), Value::Object(m)) = (compliance, &mut out) {
        m.insert("Compliance".into(), c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use thingward_store::OutboxRouting;

    /// A literal AWS `AuditFinding` (aws-api.md §4.2), as the audit helper will append it.
    fn literal_finding() -> OutboxEvent {
        OutboxEvent {
            seq: 7,
            key: "f-123".into(),
            kind: OutboxKind::AuditFinding,
            routing: OutboxRouting {
                check_name: Some("DEVICE_CERTIFICATE_EXPIRING_CHECK".into()),
                severity: Severity::parse("MEDIUM"),
                ..OutboxRouting::default()
            },
            event_ms: 1_764_633_600_000,
            body: json!({
                "findingId": "f-123",
                "taskId": "task-1",
                "checkName": "DEVICE_CERTIFICATE_EXPIRING_CHECK",
                "taskStartTime": 1_764_633_500.0,
                "findingTime": 1_764_633_600.0,
                "severity": "MEDIUM",
                "nonCompliantResource": {
                    "resourceType": "DEVICE_CERTIFICATE",
                    "resourceIdentifier": { "deviceCertificateId": "ab".repeat(32) },
                    "additionalInfo": { "EXPIRATION_TIME": "1765000000" }
                },
                "relatedResources": [],
                "reasonForNonCompliance": "Certificate expires in 4 days",
                "reasonForNonComplianceCode": "CERTIFICATE_EXPIRING",
                "isSuppressed": false
            }),
        }
    }

    fn origin() -> Origin {
        Origin {
            region: "us-east-1".into(),
            account: "000000000000".into(),
            external_url: "http://127.0.0.1:8080".into(),
        }
    }

    #[test]
    fn an_ml_violation_carries_confidence_and_its_explanation_as_anomaly_analyses() {
        use thingward_models::ConfidenceLevel;
        use thingward_models::ml::{AnomalyTest, BaselineKind, LevelRange, MlExplanation};
        let explanation = serde_json::to_value(MlExplanation {
            observed: 90_000.0,
            expected: 1_000.0,
            expected_range: vec![LevelRange {
                confidence_level: ConfidenceLevel::High,
                upper: 5_000.0,
            }],
            reached: Some(ConfidenceLevel::High),
            test: AnomalyTest::Point,
            baseline: BaselineKind::Device,
            baseline_name: "cam".into(),
            residual: 9.5,
            drift: 0.1,
            model_version: 4,
        })
        .expect("explanation");
        let e = OutboxEvent {
            seq: 3,
            key: "v1:in-alarm".into(),
            kind: OutboxKind::Violation,
            routing: OutboxRouting {
                profile: Some("p".into()),
                thing: Some("cam".into()),
                behavior: Some("bytes-ml".into()),
                check_name: None,
                severity: Some(Severity::High),
                destination: None,
            },
            event_ms: 1_764_633_600_000,
            body: json!({
                "violationId": "v1", "thingName": "cam", "securityProfileName": "p",
                "behavior": { "name": "bytes-ml", "metric": "aws:all-bytes-out",
                              "criteria": { "mlDetectionConfig": { "confidenceLevel": "HIGH" } } },
                "metricValue": { "count": 90000 },
                "violationEventAdditionalInfo": { "confidenceLevel": "HIGH" },
                "violationEventType": "in-alarm",
                "verificationState": "BENIGN_POSITIVE",
                "violationEventTime": 1_764_633_600.0,
                "mlExplanation": explanation,
            }),
        };
        let o = ocsf(&e);
        assert_eq!(o["confidence_id"], 3);
        assert_eq!(o["severity_id"], 4);
        assert_eq!(o["finding_info"]["analytic"]["type_id"], 4);
        // A benign positive is suppressed (ecosystem.md §3).
        assert_eq!(o["status_id"], 3);
        let a = &o["anomaly_analyses"][0];
        assert_eq!(a["analysis_targets"][0]["name"], "aws:all-bytes-out");
        assert_eq!(a["anomalies"][0]["observations"][0]["value"], "90000.0");
        assert_eq!(a["anomalies"][0]["observation_type"], "point");
        assert_eq!(a["baselines"][0]["observation_type"], "device");
        assert_eq!(a["baselines"][0]["observed_pattern"], "baseline cam");
        assert_eq!(a["baselines"][0]["expected_range"][0]["upper"], 5000.0);
        let s = asff(&origin(), &e);
        assert_eq!(s["Severity"]["Label"], "HIGH");
        assert_eq!(s["Workflow"]["Status"], "SUPPRESSED");
        let am = alertmanager(&origin(), "r", &[(&e, None)]);
        assert_eq!(am["alerts"][0]["annotations"]["confidenceLevel"], "HIGH");
        assert!(
            am["alerts"][0]["annotations"]["mlExplanation"]
                .as_str()
                .is_some_and(|x| x.contains("baselineName"))
        );
    }

    #[test]
    fn an_audit_finding_renders_in_every_format() {
        let f = literal_finding();
        let o = ocsf(&f);
        assert_eq!(o["class_uid"], 2004);
        assert_eq!(o["type_uid"], 200_401);
        assert_eq!(o["severity_id"], 3);
        assert_eq!(o["finding_info"]["uid"], "f-123");
        assert_eq!(
            o["finding_info"]["title"],
            "DEVICE_CERTIFICATE_EXPIRING_CHECK"
        );
        assert_eq!(o["resources"][0]["uid"], "ab".repeat(32));
        let a = asff(&origin(), &f);
        assert_eq!(a["SchemaVersion"], ASFF_VERSION);
        assert_eq!(a["Severity"]["Label"], "MEDIUM");
        assert_eq!(a["Compliance"]["Status"], "FAILED");
        assert_eq!(a["Resources"][0]["Id"], "ab".repeat(32));
        let c = cloudevent(&origin(), &f);
        assert_eq!(c["type"], "io.thingward.audit.finding");
        assert_eq!(c["id"], "f-123");
        let am = alertmanager(&origin(), "r", &[(&f, None)]);
        assert_eq!(
            am["alerts"][0]["labels"]["alertname"],
            "DEVICE_CERTIFICATE_EXPIRING_CHECK"
        );
        assert_eq!(am["alerts"][0]["annotations"]["findingId"], "f-123");
        assert_eq!(
            plain(&f)["event"]["checkName"],
            "DEVICE_CERTIFICATE_EXPIRING_CHECK"
        );
    }

    #[test]
    fn a_fleet_event_renders_in_every_format() {
        let event = |change: &str, seq: i64| OutboxEvent {
            seq,
            key: format!("6553f10000000000:{change}"),
            kind: OutboxKind::FleetEvent,
            routing: OutboxRouting {
                profile: Some("p".into()),
                severity: Some(Severity::Medium),
                ..OutboxRouting::default()
            },
            event_ms: 1_764_633_900_000,
            body: json!({
                "fleetEventId": "6553f10000000000", "securityProfileName": "p",
                "phase": if change == "opened" { "OPEN" } else { "CLOSED" },
                "startTime": 1_764_633_600.0,
                "behaviors": [{ "behaviorName": "out", "metric": "aws:all-bytes-out",
                                "devices": 30, "share": 0.3, "peakDevices": 40, "peakShare": 0.4 }],
                "cohorts": [], "explainedAlarmCount": 39, "fleetEventChange": change,
            }),
        };
        let (opened, closed) = (event("opened", 1), event("closed", 2));
        let am = alertmanager(&origin(), "r", &[(&opened, None), (&closed, None)]);
        let a = &am["alerts"][0];
        assert_eq!(a["labels"]["alertname"], FLEET_ALERTNAME);
        assert_eq!(a["labels"]["fleetEventId"], "6553f10000000000");
        assert_eq!(a["status"], "firing");
        assert_eq!(a["annotations"]["metrics"], "aws:all-bytes-out");
        assert_eq!(a["annotations"]["shares"], "out=40.0%");
        assert_eq!(am["alerts"][1]["status"], "resolved");
        assert_eq!(am["alerts"][1]["startsAt"], "2025-12-02T00:00:00.000Z");
        assert_eq!(
            cloudevent(&origin(), &opened)["type"],
            "io.thingward.fleet-event.opened"
        );
        assert_eq!(
            cloudevent(&origin(), &closed)["type"],
            "io.thingward.fleet-event.closed"
        );
        assert_eq!(cloudevent(&origin(), &opened)["subject"], "p");
        let o = ocsf(&closed);
        assert_eq!(o["class_uid"], 2004);
        assert_eq!(o["activity_id"], 3);
        assert_eq!(o["status_id"], 4);
        assert_eq!(o["finding_info"]["uid"], "6553f10000000000");
        assert_eq!(o["count"], 40);
        let f = asff(&origin(), &opened);
        assert!(
            f["Id"]
                .as_str()
                .is_some_and(|id| id.ends_with(":fleetevent/6553f10000000000"))
        );
        assert_eq!(f["Workflow"]["Status"], "NEW");
        assert_eq!(plain(&opened)["kind"], "fleet-event");
    }
}
