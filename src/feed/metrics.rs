//! `GET /metrics`: Prometheus text exposition (format 0.0.4), written by hand. The series are
//! Device Defender's CloudWatch metrics (violations in alarm, violation events per profile,
//! behavior and type), fleet events, held and released alarms, open incidents, and the feed's
//! per-destination delivery state. Labels have bounded cardinality: profile, behavior, event
//! type, phase, cause, destination — never a thing name.
//!
//! Extension point: each family group is a function `fn(&dyn Store, &mut Exposition)` listed in
//! [`SOURCES`], each metric a [`MetricName`]; audit adds its non-compliant counts per check
//! with one more variant and one more source.

use std::fmt::Write as _;
use thingward_store::{Store, StoreError};

/// The content type of the exposition.
pub(crate) const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A metric family's kind.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind {
    /// A value that goes up and down.
    Gauge,
    /// A value that only goes up.
    Counter,
}

/// Every metric thingward exposes (names follow `thingward_<thing>_<unit>[_total]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MetricName {
    /// Active violations per profile and behavior.
    ViolationsInAlarm,
    /// Violation events per profile, behavior and type.
    ViolationEventsTotal,
    /// Non-compliant resources per audit check, in the check's latest completed run.
    AuditNonCompliantResources,
    /// Resources examined per audit check, in the check's latest completed run.
    AuditResources,
    /// Suppressed non-compliant resources per audit check, in its latest completed run.
    AuditSuppressedResources,
    /// Events a destination delivered.
    FeedDeliveredEventsTotal,
    /// A destination's failed attempts.
    FeedFailedAttemptsTotal,
    /// Events a destination dead-lettered.
    FeedDeadLetteredEventsTotal,
    /// Outbox events after a destination's cursor.
    FeedPendingEvents,
    /// A destination's last success.
    FeedLastSuccessTimestampSeconds,
    /// A destination's last failure.
    FeedLastErrorTimestampSeconds,
    /// The outbox's highest sequence number.
    FeedOutboxLastSequence,
    /// Live fleet events per profile and phase (PENDING, OPEN).
    FleetEventsActive,
    /// Fleet events per profile that opened, closed, dissolved.
    FleetEventsTotal,
    /// Device alarms recorded without notification, per cause.
    AlarmsHeldTotal,
    /// Held device alarms notified later (a fleet event dissolved, closed or was verified).
    AlarmsReleasedTotal,
    /// Device incidents with an active violation.
    IncidentsOpen,
}

impl MetricName {
    /// The exposed name.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::ViolationsInAlarm => "thingward_violations_in_alarm",
            Self::ViolationEventsTotal => "thingward_violation_events_total",
            Self::FeedDeliveredEventsTotal => "thingward_feed_delivered_events_total",
            Self::FeedFailedAttemptsTotal => "thingward_feed_failed_attempts_total",
            Self::FeedDeadLetteredEventsTotal => "thingward_feed_dead_lettered_events_total",
            Self::FeedPendingEvents => "thingward_feed_pending_events",
            Self::FeedLastSuccessTimestampSeconds => {
                "thingward_feed_last_success_timestamp_seconds"
            }
            Self::AuditNonCompliantResources => "thingward_audit_non_compliant_resources",
            Self::AuditResources => "thingward_audit_resources",
            Self::AuditSuppressedResources => "thingward_audit_suppressed_non_compliant_resources",
            Self::FeedLastErrorTimestampSeconds => "thingward_feed_last_error_timestamp_seconds",
            Self::FeedOutboxLastSequence => "thingward_feed_outbox_last_sequence",
            Self::FleetEventsActive => "thingward_fleet_events_active",
            Self::FleetEventsTotal => "thingward_fleet_events_total",
            Self::AlarmsHeldTotal => "thingward_alarms_held_total",
            Self::AlarmsReleasedTotal => "thingward_alarms_released_total",
            Self::IncidentsOpen => "thingward_incidents_open",
        }
    }

    /// Its `# HELP` text and kind.
    fn help(self) -> (&'static str, Kind) {
        match self {
            Self::ViolationsInAlarm => (
                "Active violations, per security profile and behavior.",
                Kind::Gauge,
            ),
            Self::ViolationEventsTotal => (
                "Violation events recorded, per security profile, behavior and type.",
                Kind::Counter,
            ),
            Self::FeedDeliveredEventsTotal => (
                "Events delivered (acknowledged by the receiver).",
                Kind::Counter,
            ),
            Self::FeedFailedAttemptsTotal => ("Failed delivery attempts.", Kind::Counter),
            Self::FeedDeadLetteredEventsTotal => {
                ("Events moved to the dead-letter table.", Kind::Counter)
            }
            Self::FeedPendingEvents => {
                ("Outbox events after the destination's cursor.", Kind::Gauge)
            }
            Self::FeedLastSuccessTimestampSeconds => {
                ("When the last delivery succeeded.", Kind::Gauge)
            }
            Self::FeedLastErrorTimestampSeconds => {
                ("When the last delivery attempt failed.", Kind::Gauge)
            }
            Self::FeedOutboxLastSequence => ("The outbox's highest sequence number.", Kind::Gauge),
            Self::FleetEventsActive => (
                "Live fleet events, per security profile and phase (PENDING, OPEN).",
                Kind::Gauge,
            ),
            Self::FleetEventsTotal => (
                "Fleet events that opened, closed or dissolved, per security profile.",
                Kind::Counter,
            ),
            Self::AlarmsHeldTotal => (
                "Device alarms recorded without notification, per cause (fleet_event, maintenance).",
                Kind::Counter,
            ),
            Self::AlarmsReleasedTotal => (
                "Held device alarms notified later (their fleet event dissolved, closed with them active, or was verified TRUE_POSITIVE).",
                Kind::Counter,
            ),
            Self::IncidentsOpen => ("Device incidents with an active violation.", Kind::Gauge),
            Self::AuditNonCompliantResources => (
                "Non-compliant resources per audit check, in its latest completed run (Device Defender's NonCompliantResources).",
                Kind::Gauge,
            ),
            Self::AuditResources => (
                "Resources examined per audit check, in its latest completed run (ResourcesEvaluated).",
                Kind::Gauge,
            ),
            Self::AuditSuppressedResources => (
                "Suppressed non-compliant resources per audit check, in its latest completed run.",
                Kind::Gauge,
            ),
        }
    }
}

/// The exposition being written.
#[derive(Debug, Default)]
pub(crate) struct Exposition {
    text: String,
}

/// Escapes a label value (backslash, double quote, newline).
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Exposition {
    /// Starts a family: its `# HELP` and `# TYPE` lines.
    pub(crate) fn family(&mut self, name: MetricName) {
        let (help, kind) = name.help();
        let kind = match kind {
            Kind::Gauge => "gauge",
            Kind::Counter => "counter",
        };
        let name = name.as_str();
        let _ = writeln!(self.text, "# HELP {name} {help}");
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
    }

    /// One sample of the current family.
    pub(crate) fn sample(&mut self, name: MetricName, labels: &[(&str, &str)], value: f64) {
        self.text.push_str(name.as_str());
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                let _ = write!(self.text, "{k}=\"{}\"", escape(v));
            }
            self.text.push('}');
        }
        let _ = writeln!(self.text, " {value}");
    }
}

/// A group of families read from the store.
pub(crate) type Source = fn(&dyn Store, &mut Exposition) -> Result<(), StoreError>;

/// Every group exposed, in order.
pub(crate) const SOURCES: &[Source] = &[violations, fleet, audit, feed];

/// The whole exposition.
///
/// # Errors
/// Storage failures.
pub(crate) fn render(store: &dyn Store) -> Result<String, StoreError> {
    let mut out = Exposition::default();
    for source in SOURCES {
        source(store, &mut out)?;
    }
    Ok(out.text)
}

#[allow(clippy::cast_precision_loss)]
fn f(n: i64) -> f64 {
    n as f64
}

/// Violations in alarm and violation events (CloudWatch's `Violations`, `ViolationsCleared`,
/// `ViolationsInvalidated` per profile and behavior).
fn violations(store: &dyn Store, out: &mut Exposition) -> Result<(), StoreError> {
    let name = MetricName::ViolationsInAlarm;
    out.family(name);
    for (profile, behavior, n) in store.violations_in_alarm_counts()? {
        out.sample(
            name,
            &[("security_profile", &profile), ("behavior", &behavior)],
            f(n),
        );
    }
    let name = MetricName::ViolationEventsTotal;
    out.family(name);
    for (profile, behavior, kind, n) in store.violation_event_counts()? {
        out.sample(
            name,
            &[
                ("security_profile", &profile),
                ("behavior", &behavior),
                ("type", &kind),
            ],
            f(n),
        );
    }
    Ok(())
}

/// Fleet events (live per phase; opened, closed, dissolved so far), held and released device
/// alarms, open incidents. Labels: profile, phase, cause — bounded sets.
fn fleet(store: &dyn Store, out: &mut Exposition) -> Result<(), StoreError> {
    use std::collections::BTreeMap;
    use thingward_store::FleetPhase;
    let mut live: BTreeMap<(String, &str), i64> = BTreeMap::new();
    let mut total: BTreeMap<(String, &str), i64> = BTreeMap::new();
    for (profile, phase, n) in store.fleet_event_counts()? {
        if phase.is_active() {
            *live.entry((profile.clone(), phase.as_str())).or_default() += n;
        }
        // A closed event opened first; the labels name what happened, not the phase now.
        let reached: &[&str] = match phase {
            FleetPhase::Pending => &[],
            FleetPhase::Open => &["opened"],
            FleetPhase::Closed => &["opened", "closed"],
            FleetPhase::Dissolved => &["dissolved"],
        };
        for r in reached {
            *total.entry((profile.clone(), r)).or_default() += n;
        }
    }
    for (name, rows) in [
        (MetricName::FleetEventsActive, &live),
        (MetricName::FleetEventsTotal, &total),
    ] {
        out.family(name);
        for ((profile, phase), n) in rows {
            out.sample(name, &[("profile", profile), ("phase", phase)], f(*n));
        }
    }
    let holds = store.hold_counts()?;
    let name = MetricName::AlarmsHeldTotal;
    out.family(name);
    out.sample(name, &[("cause", "fleet_event")], f(holds.fleet_event));
    out.sample(name, &[("cause", "maintenance")], f(holds.maintenance));
    let name = MetricName::AlarmsReleasedTotal;
    out.family(name);
    out.sample(name, &[], f(holds.released));
    let name = MetricName::IncidentsOpen;
    out.family(name);
    out.sample(name, &[], f(holds.incidents_open));
    Ok(())
}

/// Audit results per check (CloudWatch's `NonCompliantResources` / `ResourcesEvaluated`): the
/// latest completed run of each check. One label, the check name: a bounded set.
fn audit(store: &dyn Store, out: &mut Exposition) -> Result<(), StoreError> {
    let latest = store.audit_latest_check_details()?;
    type Field = fn(&thingward_store::CheckDetails) -> Option<u64>;
    let families: [(MetricName, Field); 3] = [
        (MetricName::AuditNonCompliantResources, |d| {
            d.non_compliant_resources_count
        }),
        (MetricName::AuditResources, |d| d.total_resources_count),
        (MetricName::AuditSuppressedResources, |d| {
            d.suppressed_non_compliant_resources_count
        }),
    ];
    for (name, field) in families {
        out.family(name);
        for (check, details) in &latest {
            if let Some(v) = field(details) {
                #[allow(clippy::cast_precision_loss)]
                out.sample(name, &[("check", check)], v as f64);
            }
        }
    }
    Ok(())
}

/// Per-destination delivery state and the outbox's size.
fn feed(store: &dyn Store, out: &mut Exposition) -> Result<(), StoreError> {
    let mut rows = Vec::new();
    for d in store.destinations_list()? {
        if let Some(s) = store.destination_status(&d.name)? {
            rows.push((d.name, s));
        }
    }
    type Field = fn(&thingward_store::DestinationStatus) -> Option<f64>;
    #[allow(clippy::cast_precision_loss)]
    let families: [(MetricName, Field); 6] = [
        (MetricName::FeedDeliveredEventsTotal, |s| {
            Some(s.delivered as f64)
        }),
        (MetricName::FeedFailedAttemptsTotal, |s| {
            Some(s.failed as f64)
        }),
        (MetricName::FeedDeadLetteredEventsTotal, |s| {
            Some(s.dead_lettered as f64)
        }),
        (MetricName::FeedPendingEvents, |s| Some(s.pending as f64)),
        (MetricName::FeedLastSuccessTimestampSeconds, |s| {
            s.last_success_ms.map(|t| t as f64 / 1000.0)
        }),
        (MetricName::FeedLastErrorTimestampSeconds, |s| {
            s.last_error_ms.map(|t| t as f64 / 1000.0)
        }),
    ];
    for (name, field) in families {
        out.family(name);
        for (dest, status) in &rows {
            if let Some(v) = field(status) {
                out.sample(name, &[("destination", dest)], v);
            }
        }
    }
    let name = MetricName::FeedOutboxLastSequence;
    out.family(name);
    out.sample(name, &[], f(store.outbox_last_seq()?));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        let mut out = Exposition::default();
        let m = MetricName::ViolationsInAlarm;
        out.family(m);
        out.sample(m, &[("behavior", "a\"b\\c\nd")], 2.0);
        assert_eq!(
            out.text,
            "# HELP thingward_violations_in_alarm Active violations, per security profile and behavior.\n\
             # TYPE thingward_violations_in_alarm gauge\n\
             thingward_violations_in_alarm{behavior=\"a\\\"b\\\\c\\nd\"} 2\n"
        );
    }
}
