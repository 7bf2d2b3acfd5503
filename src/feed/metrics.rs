//! `GET /metrics`: Prometheus text exposition (format 0.0.4), written by hand. The series are
//! Device Defender's CloudWatch metrics (violations in alarm, violation events per profile,
//! behavior and type) and the feed's per-destination delivery state. Labels have bounded
//! cardinality: profile, behavior, event type, destination — never a thing name.
//!
//! Extension point: each family group is a function `fn(&Store, &mut Exposition)` listed in
//! [`SOURCES`]; audit adds its non-compliant counts per check by adding one.

use crate::store::{Store, StoreError};
use std::fmt::Write as _;

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
    pub(crate) fn family(&mut self, name: &str, help: &str, kind: Kind) {
        let kind = match kind {
            Kind::Gauge => "gauge",
            Kind::Counter => "counter",
        };
        let _ = writeln!(self.text, "# HELP {name} {help}");
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
    }

    /// One sample of the current family.
    pub(crate) fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.text.push_str(name);
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
pub(crate) type Source = fn(&Store, &mut Exposition) -> Result<(), StoreError>;

/// Every group exposed, in order.
pub(crate) const SOURCES: &[Source] = &[violations, feed];

/// The whole exposition.
///
/// # Errors
/// Storage failures.
pub(crate) fn render(store: &Store) -> Result<String, StoreError> {
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
fn violations(store: &Store, out: &mut Exposition) -> Result<(), StoreError> {
    let name = "thingward_violations_in_alarm";
    out.family(
        name,
        "Active violations, per security profile and behavior.",
        Kind::Gauge,
    );
    for (profile, behavior, n) in store.violations_in_alarm_counts()? {
        out.sample(
            name,
            &[("security_profile", &profile), ("behavior", &behavior)],
            f(n),
        );
    }
    let name = "thingward_violation_events_total";
    out.family(
        name,
        "Violation events recorded, per security profile, behavior and type.",
        Kind::Counter,
    );
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

/// Per-destination delivery state and the outbox's size.
fn feed(store: &Store, out: &mut Exposition) -> Result<(), StoreError> {
    let mut rows = Vec::new();
    for d in store.destinations_list()? {
        if let Some(s) = store.destination_status(&d.name)? {
            rows.push((d.name, s));
        }
    }
    type Field = fn(&crate::store::DestinationStatus) -> Option<f64>;
    #[allow(clippy::cast_precision_loss)]
    let families: [(&str, &str, Kind, Field); 6] = [
        (
            "thingward_feed_delivered_events_total",
            "Events delivered (acknowledged by the receiver).",
            Kind::Counter,
            |s| Some(s.delivered as f64),
        ),
        (
            "thingward_feed_failed_attempts_total",
            "Failed delivery attempts.",
            Kind::Counter,
            |s| Some(s.failed as f64),
        ),
        (
            "thingward_feed_dead_lettered_events_total",
            "Events moved to the dead-letter table.",
            Kind::Counter,
            |s| Some(s.dead_lettered as f64),
        ),
        (
            "thingward_feed_pending_events",
            "Outbox events after the destination's cursor.",
            Kind::Gauge,
            |s| Some(s.pending as f64),
        ),
        (
            "thingward_feed_last_success_timestamp_seconds",
            "When the last delivery succeeded.",
            Kind::Gauge,
            |s| s.last_success_ms.map(|t| t as f64 / 1000.0),
        ),
        (
            "thingward_feed_last_error_timestamp_seconds",
            "When the last delivery attempt failed.",
            Kind::Gauge,
            |s| s.last_error_ms.map(|t| t as f64 / 1000.0),
        ),
    ];
    for (name, help, kind, field) in families {
        out.family(name, help, kind);
        for (dest, status) in &rows {
            if let Some(v) = field(status) {
                out.sample(name, &[("destination", dest)], v);
            }
        }
    }
    let name = "thingward_feed_outbox_last_sequence";
    out.family(name, "The outbox's highest sequence number.", Kind::Gauge);
    out.sample(name, &[], f(store.outbox_last_seq()?));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        let mut out = Exposition::default();
        out.family("m", "help", Kind::Gauge);
        out.sample("m", &[("behavior", "a\"b\\c\nd")], 2.0);
        assert_eq!(
            out.text,
            "# HELP m help\n# TYPE m gauge\nm{behavior=\"a\\\"b\\\\c\\nd\"} 2\n"
        );
    }
}
