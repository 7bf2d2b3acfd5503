//! [`crate::OutboxStore`] on SQLite.

use super::SqliteStore;
use crate::StoreError;
use crate::outbox::*;
use rusqlite::{Connection, OptionalExtension, Row, params};
use thingward_models::time::EpochMillis;

/// The highest sequence number ever appended (AUTOINCREMENT's counter survives pruning).
pub(super) const LAST_SEQ: &str = "SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'feed_outbox'), 0), COALESCE((SELECT MAX(seq) FROM feed_outbox), 0)) AS last_seq";

const SELECT: &str = "SELECT seq, idempotency_key, kind, profile, thing, behavior, check_name, severity, event_ms, body, destination FROM feed_outbox";

fn event_of(r: &Row<'_>) -> rusqlite::Result<(OutboxEvent, String)> {
    let kind: String = r.get("kind")?;
    let severity: Option<String> = r.get("severity")?;
    Ok((
        OutboxEvent {
            seq: r.get("seq")?,
            key: r.get("idempotency_key")?,
            // Only this module writes the column, with `as_str`.
            kind: OutboxKind::parse(&kind).unwrap_or(OutboxKind::Violation),
            routing: OutboxRouting {
                profile: r.get("profile")?,
                thing: r.get("thing")?,
                behavior: r.get("behavior")?,
                check_name: r.get("check_name")?,
                severity: severity.as_deref().and_then(Severity::parse),
                destination: r.get("destination")?,
            },
            event_ms: r.get("event_ms")?,
            body: serde_json::Value::Null,
        },
        r.get("body")?,
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
            |r| r.get("seq"),
        )
        .optional()?;
    Ok(seq)
}

impl OutboxStore for SqliteStore {
    fn outbox_append(&self, events: &[NewOutboxEvent]) -> Result<Vec<Option<i64>>, StoreError> {
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

    fn outbox_wake(&self) {
        self.outbox_tail.send_modify(|_| {});
    }

    fn outbox_watch(&self) -> tokio::sync::watch::Receiver<i64> {
        self.outbox_tail.subscribe()
    }

    fn outbox_after(&self, after: i64, limit: usize) -> Result<Vec<OutboxEvent>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self.with_reader(|c| {
            let mut stmt =
                c.prepare_cached(&format!("{SELECT} WHERE seq > ?1 ORDER BY seq LIMIT ?2"))?;
            let rows = stmt.query_map(params![after, limit], event_of)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })?;
        decode(rows)
    }

    fn outbox_get(&self, seqs: &[i64]) -> Result<Vec<OutboxEvent>, StoreError> {
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

    fn outbox_event_ms(&self, key: &str) -> Result<Option<EpochMillis>, StoreError> {
        self.with_reader(|c| {
            Ok(
                c.prepare_cached("SELECT event_ms FROM feed_outbox WHERE idempotency_key = ?1")?
                    .query_row([key], |r| r.get("event_ms"))
                    .optional()?,
            )
        })
    }

    fn outbox_last_seq(&self) -> Result<i64, StoreError> {
        self.with(|c| Ok(c.query_row(LAST_SEQ, [], |r| r.get("last_seq"))?))
    }

    fn outbox_prune(&self, before_ms: EpochMillis) -> Result<usize, StoreError> {
        self.with(|c| {
            Ok(c.execute(
                "DELETE FROM feed_outbox WHERE event_ms < ?1 \
                 AND seq <= (SELECT COALESCE(MIN(seq), 9223372036854775807) FROM feed_cursors) \
                 AND seq NOT IN (SELECT seq FROM feed_dead_letters)",
                [before_ms],
            )?)
        })
    }

    fn outbox_since(
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

impl SqliteStore {
    /// Tells the feed the outbox grew to `seq` (after the commit).
    pub(super) fn outbox_announce(&self, seq: i64) {
        self.outbox_tail.send_if_modified(|tail| {
            let grew = seq > *tail;
            *tail = (*tail).max(seq);
            grew
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prelude::*;

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
        use crate::{ViolationChange, ViolationRecord};
        use thingward_models::violation::ViolationEventType;
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(&dir.path().join("thingward.db")).expect("store");
        let record = |behavior: serde_json::Value, change| ViolationRecord {
            thing: "cam".into(),
            profile: "p".into(),
            behavior: serde_json::from_value(behavior).expect("behavior"),
            change,
            value: None,
            at: 1_500,
            explanation: None,
            incident: None,
            hold: None,
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
        let store = SqliteStore::open(&dir.path().join("thingward.db")).expect("store");
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
        let store = SqliteStore::open(&dir.path().join("thingward.db")).expect("reopen");
        assert_eq!(
            store.outbox_append(&[finding("f4")]).expect("fourth"),
            [Some(4)]
        );
    }

    #[test]
    fn appends_in_order_ignores_a_repeated_key_and_reads_after_a_sequence() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(&dir.path().join("thingward.db")).expect("store");
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
