//! [`crate::DestinationStore`] on SQLite.

use super::SqliteStore;
use crate::StoreError;
use crate::destinations::*;
use rusqlite::{OptionalExtension, Row, params};
use thingward_models::time::EpochMillis;

fn destination_of(r: &Row<'_>) -> rusqlite::Result<(String, String, i64, i64)> {
    Ok((
        r.get("name")?,
        r.get("config")?,
        r.get("created_ms")?,
        r.get("modified_ms")?,
    ))
}

fn decode(row: (String, String, i64, i64)) -> Result<DestinationRecord, StoreError> {
    Ok(DestinationRecord {
        name: row.0,
        config: serde_json::from_str(&row.1)?,
        created_ms: row.2,
        modified_ms: row.3,
    })
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

impl DestinationStore for SqliteStore {
    fn destination_put(
        &self,
        name: &str,
        config: &serde_json::Value,
        now_ms: EpochMillis,
    ) -> Result<bool, StoreError> {
        let config = serde_json::to_string(config)?;
        self.with(|c| {
            let tx = c.transaction()?;
            let updated = tx.execute(
                "UPDATE feed_destinations SET config = ?2, modified_ms = ?3 WHERE name = ?1",
                params![name, config, now_ms],
            )?;
            let created = updated == 0;
            if created {
                tx.execute(
                    "INSERT INTO feed_destinations (name, config, created_ms, modified_ms) VALUES (?1, ?2, ?3, ?3)",
                    params![name, config, now_ms],
                )?;
                tx.execute(
                    &format!("INSERT OR REPLACE INTO feed_cursors (destination, seq) VALUES (?1, ({}))", super::outbox::LAST_SEQ),
                    [name],
                )?;
            }
            tx.commit()?;
            Ok(created)
        })
    }

    fn destination_get(&self, name: &str) -> Result<Option<DestinationRecord>, StoreError> {
        let row = self.with(|c| {
            Ok(c
                .query_row(
                    "SELECT name, config, created_ms, modified_ms FROM feed_destinations WHERE name = ?1",
                    [name],
                    destination_of,
                )
                .optional()?)
        })?;
        row.map(decode).transpose()
    }

    fn destinations_list(&self) -> Result<Vec<DestinationRecord>, StoreError> {
        let rows = self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT name, config, created_ms, modified_ms FROM feed_destinations ORDER BY name",
            )?;
            let rows = stmt.query_map([], destination_of)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })?;
        rows.into_iter().map(decode).collect()
    }

    fn destination_delete(&self, name: &str) -> Result<bool, StoreError> {
        self.with(|c| {
            let tx = c.transaction()?;
            let n = tx.execute("DELETE FROM feed_destinations WHERE name = ?1", [name])?;
            tx.execute("DELETE FROM feed_cursors WHERE destination = ?1", [name])?;
            tx.execute(
                "DELETE FROM feed_dead_letters WHERE destination = ?1",
                [name],
            )?;
            tx.commit()?;
            Ok(n > 0)
        })
    }

    fn destination_status(&self, name: &str) -> Result<Option<DestinationStatus>, StoreError> {
        self.with(|c| {
            let status = c
                .query_row(
                    "SELECT seq, delivered, failed, dead_lettered, last_error, last_error_ms, last_success_ms, \
                     (SELECT COUNT(*) FROM feed_outbox WHERE seq > feed_cursors.seq) AS pending, \
                     (SELECT COUNT(*) FROM feed_dead_letters WHERE destination = ?1 AND redrive = 1) AS redriving \
                     FROM feed_cursors WHERE destination = ?1",
                    [name],
                    |r| {
                        Ok(DestinationStatus {
                            cursor: r.get("seq")?,
                            delivered: count(r.get("delivered")?),
                            failed: count(r.get("failed")?),
                            dead_lettered: count(r.get("dead_lettered")?),
                            last_error: r.get("last_error")?,
                            last_error_ms: r.get("last_error_ms")?,
                            last_success_ms: r.get("last_success_ms")?,
                            pending: count(r.get("pending")?),
                            redriving: count(r.get("redriving")?),
                        })
                    },
                )
                .optional()?;
            Ok(status)
        })
    }

    fn destination_cursor(&self, name: &str) -> Result<Option<i64>, StoreError> {
        self.with_reader(|c| {
            Ok(
                c.prepare_cached("SELECT seq FROM feed_cursors WHERE destination = ?1")?
                    .query_row([name], |r| r.get("seq"))
                    .optional()?,
            )
        })
    }

    fn delivery_succeeded(
        &self,
        name: &str,
        cursor: i64,
        delivered: usize,
        redriven: &[i64],
        now_ms: EpochMillis,
    ) -> Result<(), StoreError> {
        let delivered = i64::try_from(delivered).unwrap_or(i64::MAX);
        self.with(|c| {
            let tx = c.transaction()?;
            tx.prepare_cached(
                "UPDATE feed_cursors SET seq = MAX(seq, ?2), delivered = delivered + ?3, last_success_ms = CASE WHEN ?3 > 0 THEN ?4 ELSE last_success_ms END WHERE destination = ?1",
            )?
            .execute(params![name, cursor, delivered, now_ms])?;
            for seq in redriven {
                tx.prepare_cached(
                    "DELETE FROM feed_dead_letters WHERE destination = ?1 AND seq = ?2",
                )?
                .execute(params![name, seq])?;
            }
            tx.commit()?;
            Ok(())
        })
    }

    fn delivery_failed(
        &self,
        name: &str,
        error: &str,
        now_ms: EpochMillis,
    ) -> Result<(), StoreError> {
        self.with(|c| {
            c.prepare_cached(
                "UPDATE feed_cursors SET failed = failed + 1, last_error = ?2, last_error_ms = ?3 WHERE destination = ?1",
            )?
            .execute(params![name, error, now_ms])?;
            Ok(())
        })
    }

    fn dead_letter(
        &self,
        name: &str,
        seqs: &[i64],
        cursor: i64,
        attempts: u32,
        error: &str,
        now_ms: EpochMillis,
    ) -> Result<(), StoreError> {
        let n = i64::try_from(seqs.len()).unwrap_or(i64::MAX);
        self.with(|c| {
            let tx = c.transaction()?;
            for seq in seqs {
                tx.prepare_cached(
                    "INSERT INTO feed_dead_letters (destination, seq, attempts, error, dead_ms, redrive) VALUES (?1, ?2, ?3, ?4, ?5, 0) \
                     ON CONFLICT (destination, seq) DO UPDATE SET attempts = attempts + excluded.attempts, error = excluded.error, dead_ms = excluded.dead_ms, redrive = 0",
                )?
                .execute(params![name, seq, attempts, error, now_ms])?;
            }
            tx.prepare_cached(
                "UPDATE feed_cursors SET seq = MAX(seq, ?2), dead_lettered = dead_lettered + ?3, last_error = ?4, last_error_ms = ?5 WHERE destination = ?1",
            )?
            .execute(params![name, cursor, n, error, now_ms])?;
            tx.commit()?;
            Ok(())
        })
    }

    fn dead_letters(&self, name: &str, limit: usize) -> Result<Vec<DeadLetter>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.with(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT seq, attempts, error, dead_ms, redrive FROM feed_dead_letters WHERE destination = ?1 ORDER BY seq LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![name, limit], |r| {
                Ok(DeadLetter {
                    seq: r.get("seq")?,
                    attempts: r.get("attempts")?,
                    error: r.get("error")?,
                    dead_ms: r.get("dead_ms")?,
                    redrive: r.get("redrive")?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn dead_letters_redrive(&self, name: &str) -> Result<usize, StoreError> {
        self.with(|c| {
            Ok(c.execute(
                "UPDATE feed_dead_letters SET redrive = 1 WHERE destination = ?1 AND redrive = 0",
                [name],
            )?)
        })
    }

    fn dead_letters_redriving(&self, name: &str, limit: usize) -> Result<Vec<i64>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.with(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT seq FROM feed_dead_letters WHERE destination = ?1 AND redrive = 1 ORDER BY seq LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![name, limit], |r| r.get("seq"))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prelude::*;
    use crate::{NewOutboxEvent, OutboxKind, OutboxRouting};

    fn event(key: &str) -> NewOutboxEvent {
        NewOutboxEvent {
            key: key.into(),
            kind: OutboxKind::AuditFinding,
            routing: OutboxRouting::default(),
            event_ms: 0,
            body: serde_json::json!({}),
        }
    }

    #[test]
    fn a_destination_starts_at_the_end_of_the_outbox_and_keeps_its_cursor_when_replaced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(&dir.path().join("thingward.db")).expect("store");
        store
            .outbox_append(&[event("a"), event("b")])
            .expect("append");
        let cfg = serde_json::json!({ "type": "cloudevents", "url": "http://127.0.0.1:1/" });
        assert!(store.destination_put("d", &cfg, 5).expect("put"));
        let status = store
            .destination_status("d")
            .expect("status")
            .expect("some");
        assert_eq!((status.cursor, status.pending), (2, 0));
        store
            .outbox_append(&[event("c"), event("d")])
            .expect("more");
        store
            .delivery_failed("d", "connection refused", 6)
            .expect("fail");
        store.delivery_succeeded("d", 3, 1, &[], 7).expect("ok");
        assert!(!store.destination_put("d", &cfg, 8).expect("replace"));
        let status = store
            .destination_status("d")
            .expect("status")
            .expect("some");
        assert_eq!(status.cursor, 3);
        assert_eq!((status.delivered, status.failed, status.pending), (1, 1, 1));
        assert_eq!(status.last_error.as_deref(), Some("connection refused"));
        assert_eq!(status.last_success_ms, Some(7));

        store
            .dead_letter("d", &[4], 4, 5, "HTTP 500", 9)
            .expect("dead");
        assert_eq!(store.dead_letters("d", 10).expect("list").len(), 1);
        assert_eq!(store.dead_letters_redrive("d").expect("redrive"), 1);
        assert_eq!(store.dead_letters_redriving("d", 10).expect("queued"), [4]);
        store
            .delivery_succeeded("d", 4, 1, &[4], 10)
            .expect("redriven");
        assert!(store.dead_letters("d", 10).expect("list").is_empty());
        let status = store
            .destination_status("d")
            .expect("status")
            .expect("some");
        assert_eq!((status.delivered, status.dead_lettered), (2, 1));
        assert!(store.destination_delete("d").expect("delete"));
        assert_eq!(store.destination_status("d").expect("status"), None);
        assert!(!store.destination_delete("d").expect("again"));
    }
}
