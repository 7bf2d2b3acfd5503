//! The feed outbox: every event the alarm feed delivers (violation events, audit findings),
//! appended in the same transaction that records what it announces, read back in sequence
//! order by the delivery workers, the SSE stream and `thingward findings export`.
//!
//! An event's sequence number (`seq`) is its position in the feed: monotonically increasing,
//! never reused (it may skip numbers). Each event carries an idempotency key that is unique in the outbox, so
//! appending the same key twice is a no-op and receivers can de-duplicate redeliveries.

use super::{Store, StoreError};
use rusqlite::{Connection, OptionalExtension, Row, params};
use thingward_models::ConfidenceLevel;
use thingward_models::behavior::Behavior;
use thingward_models::time::EpochMillis;

/// What an outbox event announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum OutboxKind {
    /// A violation event (`in-alarm`, `alarm-cleared`, `alarm-invalidated`); the body is the
    /// AWS `ViolationEvent` JSON shape.
    Violation,
    /// An audit finding; the body is the AWS `AuditFinding` JSON shape (aws-api.md §4.2).
    AuditFinding,
}

impl OutboxKind {
    /// The stored (and API) spelling.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Violation => "violation",
            Self::AuditFinding => "audit-finding",
        }
    }

    /// Parses [`Self::as_str`]'s spelling.
    pub(crate) fn parse(s: &str) -> Option<Self> {
        match s {
            "violation" => Some(Self::Violation),
            "audit-finding" => Some(Self::AuditFinding),
            _ => None,
        }
    }
}

/// The feed's severity scale. Violations: ML confidence HIGH/MEDIUM/LOW → high/medium/low,
/// rules behaviors → medium. Audit findings keep their own severity (CRITICAL … LOW).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Severity {
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
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }

    /// A violation's severity: an ML behavior's confidence level HIGH/MEDIUM/LOW →
    /// high/medium/low; a rules behavior (static, statistical) → medium.
    pub(crate) fn of_behavior(behavior: &Behavior) -> Self {
        match behavior.confidence_level() {
            Some(ConfidenceLevel::High) => Self::High,
            Some(ConfidenceLevel::Low) => Self::Low,
            Some(ConfidenceLevel::Medium) | None => Self::Medium,
        }
    }

    /// Parses a severity, in any case (`HIGH` from an audit finding, `high` from a query).
    pub(crate) fn parse(s: &str) -> Option<Self> {
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
pub(crate) struct OutboxRouting {
    /// The security profile (violations).
    pub(crate) profile: Option<String>,
    /// The thing (violations; audit findings about one thing may set it too).
    pub(crate) thing: Option<String>,
    /// The behavior name (violations).
    pub(crate) behavior: Option<String>,
    /// The audit check name (audit findings).
    pub(crate) check_name: Option<String>,
    /// The event's severity.
    pub(crate) severity: Option<Severity>,
    /// Only this destination delivers the event (a mitigation action publishing to a named
    /// destination); None: every destination that routes it.
    pub(crate) destination: Option<String>,
}

impl OutboxRouting {
    /// A violation event's routing: its profile, thing and behavior, with the behavior's
    /// severity ([`Severity::of_behavior`]).
    pub(crate) fn violation(
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
pub(crate) struct NewOutboxEvent {
    /// The idempotency key: `{violationId}:{violationEventType}` for violation events, the
    /// `findingId` for audit findings. Unique in the outbox.
    pub(crate) key: String,
    /// What the event announces.
    pub(crate) kind: OutboxKind,
    /// Routing and filter fields.
    pub(crate) routing: OutboxRouting,
    /// When the announced thing happened (violationEventTime, findingTime), epoch ms.
    pub(crate) event_ms: EpochMillis,
    /// The JSON body (AWS `ViolationEvent` or `AuditFinding`).
    pub(crate) body: serde_json::Value,
}

/// A stored event.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct OutboxEvent {
    /// The sequence number: the event's position in the feed (SSE event id).
    pub(crate) seq: i64,
    /// The idempotency key.
    pub(crate) key: String,
    /// What the event announces.
    pub(crate) kind: OutboxKind,
    /// Routing and filter fields.
    pub(crate) routing: OutboxRouting,
    /// When the announced thing happened, epoch ms.
    pub(crate) event_ms: EpochMillis,
    /// The JSON body.
    pub(crate) body: serde_json::Value,
}

/// The highest sequence number ever appended (AUTOINCREMENT's counter survives pruning).
pub(super) const LAST_SEQ: &str = "SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'feed_outbox'), 0), COALESCE((SELECT MAX(seq) FROM feed_outbox), 0))";

const SELECT: &str = "SELECT seq, idempotency_key, kind, profile, thing, behavior, check_name, severity, event_ms, body, destination FROM feed_outbox";

fn event_of(r: &Row<'_>) -> rusqlite::Result<(OutboxEvent, String)> {
    let kind: String = r.get(2)?;
    let severity: Option<String> = r.get(7)?;
    Ok((
        OutboxEvent {
            seq: r.get(0)?,
            key: r.get(1)?,
            // Only this module writes the column, with `as_str`.
            kind: OutboxKind::parse(&kind).unwrap_or(OutboxKind::Violation),
            routing: OutboxRouting {
                profile: r.get(3)?,
                thing: r.get(4)?,
                behavior: r.get(5)?,
                check_name: r.get(6)?,
                severity: severity.as_deref().and_then(Severity::parse),
                destination: r.get(10)?,
            },
            event_ms: r.get(8)?,
            body: serde_json::Value::Null,
        },
        r.get(9)?,
    ))
}

fn decode(rows: Vec<(OutboxEvent, String)>) -> Result<Vec<OutboxEvent>, StoreError> {
    rows.into_iter()
        .map(|(mut e, body)| {
            e.body = serde_json::from_str(&body)?;
            Ok(e)
        })
        .collect()
}

/// Appends `e` on `conn` (inside the caller's transaction); returns its sequence number, or
/// None when an event with the same idempotency key is already in the outbox.
///
/// # Errors
/// Storage failures.
pub(super) fn insert(conn: &Connection, e: &NewOutboxEvent) -> Result<Option<i64>, StoreError> {
    let body = serde_json::to_string(&e.body)?;
    let seq = conn
        .prepare_cached(
            "INSERT INTO feed_outbox (idempotency_key, kind, profile, thing, behavior, check_name, severity, event_ms, body, destination) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT (idempotency_key) DO NOTHING RETURNING seq",
        )?
        .query_row(
            params![
                e.key,
                e.kind.as_str(),
                e.routing.profile,
                e.routing.thing,
                e.routing.behavior,
                e.routing.check_name,
                e.routing.severity.map(Severity::as_str),
                e.event_ms,
                body,
                e.routing.destination
            ],
            |r| r.get(0),
        )
        .optional()?;
    Ok(seq)
}

impl Store {
    /// Appends events in one transaction (audit findings, mitigation results; violation events
    /// are appended by [`Store::violations_apply`] itself). Returns each event's sequence
    /// number, or None for an event whose idempotency key was already present.
    ///
    /// # Errors
    /// Storage failures (nothing is appended then).
    pub(crate) fn outbox_append(
        &self,
        events: &[NewOutboxEvent],
    ) -> Result<Vec<Option<i64>>, StoreError> {
        self.with(|c| {
            let tx = c.transaction()?;
            let seqs = events
                .iter()
                .map(|e| insert(&tx, e))
                .collect::<Result<Vec<_>, _>>()?;
            tx.commit()?;
            if let Some(seq) = seqs.iter().flatten().max() {
                self.outbox_announce(*seq);
            }
            Ok(seqs)
        })
    }

    /// Tells the feed the outbox grew to `seq` (after the commit).
    pub(super) fn outbox_announce(&self, seq: i64) {
        self.outbox_tail.send_if_modified(|tail| {
            let grew = seq > *tail;
            *tail = (*tail).max(seq);
            grew
        });
    }

    /// Wakes the feed's workers without appending (a redrive call).
    pub(crate) fn outbox_wake(&self) {
        self.outbox_tail.send_modify(|_| {});
    }

    /// A receiver of the outbox's highest sequence number, changed after every commit that
    /// appended to it.
    pub(crate) fn outbox_watch(&self) -> tokio::sync::watch::Receiver<i64> {
        self.outbox_tail.subscribe()
    }

    /// At most `limit` events with a sequence number greater than `after`, in order.
    ///
    /// # Errors
    /// Storage failures.
    pub(crate) fn outbox_after(
        &self,
        after: i64,
        limit: usize,
    ) -> Result<Vec<OutboxEvent>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self.with_reader(|c| {
            let mut stmt =
                c.prepare_cached(&format!("{SELECT} WHERE seq > ?1 ORDER BY seq LIMIT ?2"))?;
            let rows = stmt.query_map(params![after, limit], event_of)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })?;
        decode(rows)
    }

    /// The events with the given sequence numbers that are still in the outbox, in order.
    ///
    /// # Errors
    /// Storage failures.
    pub(crate) fn outbox_get(&self, seqs: &[i64]) -> Result<Vec<OutboxEvent>, StoreError> {
        let mut out = Vec::with_capacity(seqs.len());
        self.with_reader(|c| {
            let mut stmt = c.prepare_cached(&format!("{SELECT} WHERE seq = ?1"))?;
            for seq in seqs {
                if let Some(row) = stmt.query_row([seq], event_of).optional()? {
                    out.push(row);
                }
            }
            Ok(())
        })?;
        let mut events = decode(out)?;
        events.sort_by_key(|e| e.seq);
        Ok(events)
    }

    /// The event time of the event keyed `key`, if it is in the outbox.
    ///
    /// # Errors
    /// Storage failures.
    pub(crate) fn outbox_event_ms(&self, key: &str) -> Result<Option<EpochMillis>, StoreError> {
        self.with_reader(|c| {
            Ok(
                c.prepare_cached("SELECT event_ms FROM feed_outbox WHERE idempotency_key = ?1")?
                    .query_row([key], |r| r.get(0))
                    .optional()?,
            )
        })
    }

    /// The highest sequence number ever appended (0 before the first), pruned rows included.
    ///
    /// # Errors
    /// Storage failures.
    pub(crate) fn outbox_last_seq(&self) -> Result<i64, StoreError> {
        self.with(|c| Ok(c.query_row(LAST_SEQ, [], |r| r.get(0))?))
    }

    /// Deletes events that happened before `before_ms` and that every destination is done
    /// with (at or below every cursor, not dead-lettered); returns how many.
    ///
    /// # Errors
    /// Storage failures.
    pub(crate) fn outbox_prune(&self, before_ms: EpochMillis) -> Result<usize, StoreError> {
        self.with(|c| {
            Ok(c.execute(
                "DELETE FROM feed_outbox WHERE event_ms < ?1 \
                 AND seq <= (SELECT COALESCE(MIN(seq), 9223372036854775807) FROM feed_cursors) \
                 AND seq NOT IN (SELECT seq FROM feed_dead_letters)",
                [before_ms],
            )?)
        })
    }

    /// Events of `kind` that happened at or after `since_ms`, in sequence order, after `after`
    /// (for paging), at most `limit` (`thingward findings export`).
    ///
    /// # Errors
    /// Storage failures.
    pub(crate) fn outbox_since(
        &self,
        kind: Option<OutboxKind>,
        since_ms: EpochMillis,
        after: i64,
        limit: usize,
    ) -> Result<Vec<OutboxEvent>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self.with_reader(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "{SELECT} WHERE seq > ?1 AND event_ms >= ?2 AND (?3 IS NULL OR kind = ?3) ORDER BY seq LIMIT ?4"
            ))?;
            let rows = stmt.query_map(
                params![after, since_ms, kind.map(OutboxKind::as_str), limit],
                event_of,
            )?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })?;
        decode(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(id: &str) -> NewOutboxEvent {
        NewOutboxEvent {
            key: id.into(),
            kind: OutboxKind::AuditFinding,
            routing: OutboxRouting {
                check_name: Some("DEVICE_CERTIFICATE_EXPIRING_CHECK".into()),
                severity: Severity::parse("MEDIUM"),
                ..OutboxRouting::default()
            },
            event_ms: 1_000,
            body: serde_json::json!({ "findingId": id, "severity": "MEDIUM" }),
        }
    }

    #[test]
    fn a_violation_event_is_appended_with_its_record_unless_alerts_are_suppressed() {
        use crate::store::{ViolationChange, ViolationRecord};
        use thingward_models::violation::ViolationEventType;
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("thingward.db")).expect("store");
        let record = |behavior: serde_json::Value, change| ViolationRecord {
            thing: "cam".into(),
            profile: "p".into(),
            behavior: serde_json::from_value(behavior).expect("behavior"),
            change,
            value: None,
            at: 1_500,
            explanation: None,
        };
        let ml = serde_json::json!({ "name": "ml", "metric": "aws:all-bytes-out",
            "criteria": { "mlDetectionConfig": { "confidenceLevel": "HIGH" } } });
        let quiet = serde_json::json!({ "name": "quiet", "metric": "aws:all-bytes-out",
            "suppressAlerts": true,
            "criteria": { "comparisonOperator": "greater-than", "value": { "count": 1 } } });
        let ids = store
            .violations_apply(&[
                record(ml.clone(), ViolationChange::Open),
                record(quiet.clone(), ViolationChange::Open),
                record(ml, ViolationChange::Close(ViolationEventType::AlarmCleared)),
                record(
                    quiet,
                    ViolationChange::Close(ViolationEventType::AlarmCleared),
                ),
            ])
            .expect("apply");
        let id = ids[0].clone().expect("id");
        let events = store.outbox_after(0, 10).expect("outbox");
        let keys: Vec<&str> = events.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(
            keys,
            [format!("{id}:in-alarm"), format!("{id}:alarm-cleared")]
        );
        assert_eq!(events[0].kind, OutboxKind::Violation);
        assert_eq!(events[0].routing.severity, Some(Severity::High));
        assert_eq!(events[0].routing.thing.as_deref(), Some("cam"));
        assert_eq!(events[0].event_ms, 1_500);
        assert_eq!(events[0].body["violationId"], id.as_str());
        assert_eq!(events[0].body["violationEventType"], "in-alarm");
        assert_eq!(events[0].body["violationEventTime"], 1.5);
        assert_eq!(
            events[0].body["violationEventAdditionalInfo"]["confidenceLevel"],
            "HIGH"
        );
    }

    #[test]
    fn pruning_keeps_what_a_destination_still_needs_and_what_is_recent() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("thingward.db")).expect("store");
        store
            .outbox_append(&[finding("f1"), finding("f2")])
            .expect("append");
        let cfg = serde_json::json!({});
        store.destination_put("d", &cfg, 0).expect("put"); // cursor 2
        store.outbox_append(&[finding("f3")]).expect("third");
        assert_eq!(store.outbox_prune(2_000).expect("prune"), 2);
        assert_eq!(store.outbox_after(0, 10).expect("left").len(), 1);
        store
            .delivery_succeeded("d", 3, 1, &[], 0)
            .expect("delivered");
        assert_eq!(store.outbox_prune(999).expect("recent"), 0);
        assert_eq!(store.outbox_prune(2_000).expect("prune"), 1);
        // The sequence goes on after the outbox emptied; a new destination starts at its end.
        assert_eq!(store.outbox_last_seq().expect("last"), 3);
        store.destination_put("e", &cfg, 0).expect("put");
        assert_eq!(
            store
                .destination_status("e")
                .expect("status")
                .map(|s| s.cursor),
            Some(3)
        );
        drop(store);
        let store = Store::open(&dir.path().join("thingward.db")).expect("reopen");
        assert_eq!(
            store.outbox_append(&[finding("f4")]).expect("fourth"),
            [Some(4)]
        );
    }

    #[test]
    fn appends_in_order_ignores_a_repeated_key_and_reads_after_a_sequence() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("thingward.db")).expect("store");
        let seqs = store
            .outbox_append(&[finding("f1"), finding("f2"), finding("f1")])
            .expect("append");
        assert_eq!(seqs, [Some(1), Some(2), None]);
        // The refused repeat may use up a number (SQLite's AUTOINCREMENT): gaps, never reuse.
        assert!((2..=3).contains(&store.outbox_last_seq().expect("last")));
        let after = store.outbox_after(1, 10).expect("after");
        assert_eq!(after.len(), 1);
        assert_eq!(after[0].key, "f2");
        assert_eq!(after[0].kind, OutboxKind::AuditFinding);
        assert_eq!(after[0].routing.severity, Some(Severity::Medium));
        assert_eq!(after[0].body["findingId"], "f2");
        assert_eq!(store.outbox_after(0, 1).expect("limit").len(), 1);
        assert_eq!(
            store
                .outbox_get(&[2, 1, 99])
                .expect("get")
                .iter()
                .map(|e| e.seq)
                .collect::<Vec<_>>(),
            [1, 2]
        );
        assert_eq!(
            store
                .outbox_since(Some(OutboxKind::Violation), 0, 0, 10)
                .expect("since")
                .len(),
            0
        );
    }
}
