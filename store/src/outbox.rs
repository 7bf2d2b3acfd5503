//! The feed outbox: every event the alarm feed delivers (violation events, audit findings,
//! fleet events), appended in the same transaction that records what it announces, read back
//! in sequence order by the delivery workers, the SSE stream and `thingward findings export`.
//!
//! An event's sequence number (`seq`) is its position in the feed: monotonically increasing,
//! never reused (it may skip numbers). Each event carries an idempotency key that is unique in the outbox, so
//! appending the same key twice is a no-op and receivers can de-duplicate redeliveries.

use crate::StoreError;
use thingward_models::ConfidenceLevel;
use thingward_models::behavior::Behavior;
use thingward_models::time::EpochMillis;

/// What an outbox event announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutboxKind {
    /// A violation event (`in-alarm`, `alarm-cleared`, `alarm-invalidated`); the body is the
    /// AWS `ViolationEvent` JSON shape.
    Violation,
    /// An audit finding; the body is the AWS `AuditFinding` JSON shape (aws-api.md §4.2).
    AuditFinding,
    /// A fleet event opened or closed; the body is the fleet event as
    /// `GET /thingward/v1/fleet-events/{id}` returns it, plus `fleetEventChange`.
    FleetEvent,
}

impl OutboxKind {
    /// The stored (and API) spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Violation => "violation",
            Self::AuditFinding => "audit-finding",
            Self::FleetEvent => "fleet-event",
        }
    }

    /// Parses [`Self::as_str`]'s spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "violation" => Some(Self::Violation),
            "audit-finding" => Some(Self::AuditFinding),
            "fleet-event" => Some(Self::FleetEvent),
            _ => None,
        }
    }
}

/// The feed's severity scale. Violations: ML confidence HIGH/MEDIUM/LOW → high/medium/low,
/// rules behaviors → medium. Audit findings keep their own severity (CRITICAL … LOW).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Low.
    Low,
    /// Medium.
    Medium,
    /// High.
    High,
    /// Critical (audit findings only).
    Critical,
}

impl Severity {
    /// The stored (and query-string) spelling: `low`, `medium`, `high`, `critical`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }

    /// A violation's severity: an ML behavior's confidence level HIGH/MEDIUM/LOW →
    /// high/medium/low; a rules behavior (static, statistical) → medium.
    pub fn of_behavior(behavior: &Behavior) -> Self {
        match behavior.confidence_level() {
            Some(ConfidenceLevel::High) => Self::High,
            Some(ConfidenceLevel::Low) => Self::Low,
            Some(ConfidenceLevel::Medium) | None => Self::Medium,
        }
    }

    /// Parses a severity, in any case (`HIGH` from an audit finding, `high` from a query).
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "low" => Some(Self::Low),
            "medium" => Some(Self::Medium),
            "high" => Some(Self::High),
            "critical" => Some(Self::Critical),
            _ => None,
        }
    }
}

/// The fields destinations route on and the SSE stream filters on, copied out of the body at
/// append time so that filtering never parses JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboxRouting {
    /// The security profile (violations).
    pub profile: Option<String>,
    /// The thing (violations; audit findings about one thing may set it too).
    pub thing: Option<String>,
    /// The behavior name (violations).
    pub behavior: Option<String>,
    /// The audit check name (audit findings).
    pub check_name: Option<String>,
    /// The event's severity.
    pub severity: Option<Severity>,
    /// Only this destination delivers the event (a mitigation action publishing to a named
    /// destination); None: every destination that routes it.
    pub destination: Option<String>,
}

impl OutboxRouting {
    /// A violation event's routing: its profile, thing and behavior, with the behavior's
    /// severity ([`Severity::of_behavior`]).
    pub fn violation(
        profile: Option<String>,
        thing: Option<String>,
        behavior: Option<&Behavior>,
    ) -> Self {
        Self {
            profile,
            thing,
            behavior: behavior.map(|b| b.name.clone()),
            check_name: None,
            severity: behavior.map(Severity::of_behavior),
            destination: None,
        }
    }
}

/// An event to append.
#[derive(Debug, Clone)]
pub struct NewOutboxEvent {
    /// The idempotency key: `{violationId}:{violationEventType}` for violation events, the
    /// `findingId` for audit findings. Unique in the outbox.
    pub key: String,
    /// What the event announces.
    pub kind: OutboxKind,
    /// Routing and filter fields.
    pub routing: OutboxRouting,
    /// When the announced thing happened (violationEventTime, findingTime), epoch ms.
    pub event_ms: EpochMillis,
    /// The JSON body (AWS `ViolationEvent` or `AuditFinding`).
    pub body: serde_json::Value,
}

/// A stored event.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxEvent {
    /// The sequence number: the event's position in the feed (SSE event id).
    pub seq: i64,
    /// The idempotency key.
    pub key: String,
    /// What the event announces.
    pub kind: OutboxKind,
    /// Routing and filter fields.
    pub routing: OutboxRouting,
    /// When the announced thing happened, epoch ms.
    pub event_ms: EpochMillis,
    /// The JSON body.
    pub body: serde_json::Value,
}

/// The outbox part of the store interface ([`crate::Store`]); [`crate::SqliteStore`] implements it.
pub trait OutboxStore {
    /// Appends events in one transaction (audit findings, mitigation results; violation events
    /// are appended by [`ViolationStore::violations_apply`](crate::ViolationStore::violations_apply) itself). Returns each event's sequence
    /// number, or None for an event whose idempotency key was already present.
    ///
    /// # Errors
    /// Storage failures (nothing is appended then).
    fn outbox_append(&self, events: &[NewOutboxEvent]) -> Result<Vec<Option<i64>>, StoreError>;

    /// Wakes the feed's workers without appending (a redrive call).
    fn outbox_wake(&self);

    /// A receiver of the outbox's highest sequence number, changed after every commit that
    /// appended to it.
    fn outbox_watch(&self) -> tokio::sync::watch::Receiver<i64>;

    /// At most `limit` events with a sequence number greater than `after`, in order.
    ///
    /// # Errors
    /// Storage failures.
    fn outbox_after(&self, after: i64, limit: usize) -> Result<Vec<OutboxEvent>, StoreError>;

    /// The events with the given sequence numbers that are still in the outbox, in order.
    ///
    /// # Errors
    /// Storage failures.
    fn outbox_get(&self, seqs: &[i64]) -> Result<Vec<OutboxEvent>, StoreError>;

    /// The event time of the event keyed `key`, if it is in the outbox.
    ///
    /// # Errors
    /// Storage failures.
    fn outbox_event_ms(&self, key: &str) -> Result<Option<EpochMillis>, StoreError>;

    /// The highest sequence number ever appended (0 before the first), pruned rows included.
    ///
    /// # Errors
    /// Storage failures.
    fn outbox_last_seq(&self) -> Result<i64, StoreError>;

    /// Deletes events that happened before `before_ms` and that every destination is done
    /// with (at or below every cursor, not dead-lettered); returns how many.
    ///
    /// # Errors
    /// Storage failures.
    fn outbox_prune(&self, before_ms: EpochMillis) -> Result<usize, StoreError>;

    /// Events of `kind` that happened at or after `since_ms`, in sequence order, after `after`
    /// (for paging), at most `limit` (`thingward findings export`).
    ///
    /// # Errors
    /// Storage failures.
    fn outbox_since(
        &self,
        kind: Option<OutboxKind>,
        since_ms: EpochMillis,
        after: i64,
        limit: usize,
    ) -> Result<Vec<OutboxEvent>, StoreError>;
}
