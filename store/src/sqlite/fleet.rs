//! [`crate::FleetEventStore`] on SQLite, and the fleet event changes
//! [`crate::ViolationStore::detect_apply`] records.

use super::SqliteStore;
use super::violations::release_held;
use crate::StoreError;
use crate::fleet::*;
use crate::outbox::{NewOutboxEvent, OutboxKind, OutboxRouting, Severity};
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter};
use thingward_models::time::EpochMillis;
use thingward_models::violation::VerificationState;

pub(super) const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS fleet_events (
    id INTEGER PRIMARY KEY,
    profile TEXT NOT NULL,
    phase TEXT NOT NULL,
    start_ms INTEGER NOT NULL,
    end_ms INTEGER,
    behaviors TEXT NOT NULL,
    cohorts TEXT NOT NULL,
    explained_alarms INTEGER NOT NULL,
    verification_state TEXT,
    verification_description TEXT
);
CREATE INDEX IF NOT EXISTS fleet_events_by_start ON fleet_events (start_ms);
CREATE TABLE IF NOT EXISTS maintenance_windows (
    name TEXT PRIMARY KEY,
    target_kind TEXT NOT NULL,
    target TEXT NOT NULL,
    metrics TEXT NOT NULL,
    start_ms INTEGER NOT NULL,
    end_ms INTEGER NOT NULL,
    description TEXT,
    creation_ms INTEGER NOT NULL
);
"#;

const COLUMNS: &str = "id, profile, phase, start_ms, end_ms, behaviors, cohorts, explained_alarms, verification_state, verification_description";

/// A `fleet_events` row, read by column name (JSON columns still encoded).
struct FleetRow {
    id: i64,
    profile: String,
    phase: String,
    start_ms: i64,
    end_ms: Option<i64>,
    behaviors: String,
    cohorts: String,
    explained_alarms: i64,
    verification_state: Option<String>,
    verification_description: Option<String>,
}

fn fleet_row(r: &Row<'_>) -> rusqlite::Result<FleetRow> {
    Ok(FleetRow {
        id: r.get("id")?,
        profile: r.get("profile")?,
        phase: r.get("phase")?,
        start_ms: r.get("start_ms")?,
        end_ms: r.get("end_ms")?,
        behaviors: r.get("behaviors")?,
        cohorts: r.get("cohorts")?,
        explained_alarms: r.get("explained_alarms")?,
        verification_state: r.get("verification_state")?,
        verification_description: r.get("verification_description")?,
    })
}

fn record_from(row: FleetRow) -> Result<FleetEventRecord, StoreError> {
    Ok(FleetEventRecord {
        id: row.id as u64,
        profile: row.profile,
        // Only this module writes the column, with `as_str`.
        phase: FleetPhase::parse(&row.phase).unwrap_or(FleetPhase::Closed),
        start_ms: row.start_ms,
        end_ms: row.end_ms,
        behaviors: serde_json::from_str(&row.behaviors)?,
        cohorts: serde_json::from_str(&row.cohorts)?,
        explained_alarms: u32::try_from(row.explained_alarms).unwrap_or(u32::MAX),
        verification_state: row
            .verification_state
            .as_deref()
            .and_then(VerificationState::parse),
        verification_description: row.verification_description,
    })
}

fn get(c: &Connection, id: u64) -> Result<Option<FleetEventRecord>, StoreError> {
    c.prepare_cached(&format!("SELECT {COLUMNS} FROM fleet_events WHERE id = ?1"))?
        .query_row([id as i64], fleet_row)
        .optional()?
        .map(record_from)
        .transpose()
}

/// The feed row announcing that `event` opened or closed (`change`), keyed
/// `{fleetEventId}:{change}`.
fn feed_event(event: &FleetEventRecord, change: &str, at: EpochMillis) -> NewOutboxEvent {
    let mut body = event.wire();
    body["fleetEventChange"] = change.into();
    NewOutboxEvent {
        key: format!("{}:{change}", wire_id(event.id)),
        kind: OutboxKind::FleetEvent,
        routing: OutboxRouting {
            profile: Some(event.profile.clone()),
            severity: Some(Severity::Medium),
            ..OutboxRouting::default()
        },
        event_ms: at,
        body,
    }
}

/// Records one fleet event change inside `tx`: the event's row (its verification state
/// kept), its feed row when it opened or closed, the released alarms' feed rows. Returns the
/// last outbox sequence number written.
pub(super) fn apply_change(
    tx: &Connection,
    change: &FleetEventChange,
) -> Result<Option<i64>, StoreError> {
    let e = &change.event;
    tx.prepare_cached(
        "INSERT INTO fleet_events (id, profile, phase, start_ms, end_ms, behaviors, cohorts, explained_alarms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (id) DO UPDATE SET phase = excluded.phase, start_ms = excluded.start_ms, end_ms = excluded.end_ms, behaviors = excluded.behaviors, cohorts = excluded.cohorts, explained_alarms = excluded.explained_alarms",
    )?
    .execute(params![
        e.id as i64,
        e.profile,
        e.phase.as_str(),
        e.start_ms,
        e.end_ms,
        serde_json::to_string(&e.behaviors)?,
        serde_json::to_string(&e.cohorts)?,
        e.explained_alarms
    ])?;
    let at = e.end_ms.unwrap_or(e.start_ms);
    let mut tail = None;
    if let Some(name) = change.kind.notified()
        && let Some(stored) = get(tx, e.id)?
    {
        tail = super::outbox::insert(tx, &feed_event(&stored, name, at))?;
    }
    for r in &change.released {
        tail = release_held(tx, e.id, Some((&r.thing, &e.profile, &r.behavior)), at)?.or(tail);
    }
    Ok(tail)
}

impl FleetEventStore for SqliteStore {
    fn fleet_event_get(&self, id: u64) -> Result<Option<FleetEventRecord>, StoreError> {
        self.with(|c| get(c, id))
    }

    fn fleet_events_list(
        &self,
        f: &FleetEventFilter,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<FleetEventRecord>, StoreError> {
        let mut args = Vec::new();
        let mut conds = vec!["1 = 1".to_owned()];
        if let Some(p) = &f.profile {
            args.push(SqlValue::Text(p.clone()));
            conds.push(format!("profile = ?{}", args.len()));
        }
        if let Some(p) = f.phase {
            args.push(SqlValue::Text(p.as_str().into()));
            conds.push(format!("phase = ?{}", args.len()));
        }
        if let Some(end) = f.end_ms {
            args.push(SqlValue::Integer(end));
            conds.push(format!("start_ms <= ?{}", args.len()));
        }
        if let Some(start) = f.start_ms {
            args.push(SqlValue::Integer(start));
            conds.push(format!("(end_ms IS NULL OR end_ms >= ?{})", args.len()));
        }
        let sql = format!(
            "SELECT {COLUMNS} FROM fleet_events WHERE {} ORDER BY start_ms DESC, id DESC LIMIT {limit} OFFSET {offset}",
            conds.join(" AND ")
        );
        self.with(|c| {
            let mut stmt = c.prepare(&sql)?;
            let rows = stmt.query_map(params_from_iter(args), fleet_row)?;
            let mut out = Vec::new();
            for row in rows {
                out.push(record_from(row?)?);
            }
            Ok(out)
        })
    }

    fn fleet_event_verify(
        &self,
        id: u64,
        state: VerificationState,
        description: Option<&str>,
    ) -> Result<bool, StoreError> {
        self.with(|c| {
            let n = c.execute(
                "UPDATE fleet_events SET verification_state = ?2, verification_description = ?3 WHERE id = ?1",
                params![id as i64, state.as_str(), description],
            )?;
            Ok(n > 0)
        })
    }

    fn fleet_events_end_stale(&self, now: EpochMillis) -> Result<usize, StoreError> {
        self.with(|c| {
            let tx = c.transaction()?;
            let stale: Vec<FleetEventRecord> = {
                let mut stmt = tx.prepare(&format!(
                    "SELECT {COLUMNS} FROM fleet_events WHERE phase IN ('PENDING', 'OPEN') ORDER BY start_ms, id"
                ))?;
                let rows = stmt.query_map([], fleet_row)?;
                let mut out = Vec::new();
                for row in rows {
                    out.push(record_from(row?)?);
                }
                out
            };
            let mut tail = None;
            for mut event in stale.iter().cloned() {
                let (kind, phase) = if event.phase == FleetPhase::Open {
                    (FleetChangeKind::Closed, FleetPhase::Closed)
                } else {
                    (FleetChangeKind::Dissolved, FleetPhase::Dissolved)
                };
                event.phase = phase;
                event.end_ms = Some(now.max(event.start_ms));
                let id = event.id;
                tail = apply_change(
                    &tx,
                    &FleetEventChange {
                        kind,
                        event,
                        released: Vec::new(),
                    },
                )?
                .or(tail);
                if phase == FleetPhase::Dissolved {
                    tail = release_held(&tx, id, None, now)?.or(tail);
                }
            }
            tx.commit()?;
            if let Some(seq) = tail {
                self.outbox_announce(seq);
            }
            Ok(stale.len())
        })
    }

    fn fleet_event_counts(&self) -> Result<Vec<(String, FleetPhase, i64)>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT profile, phase, COUNT(*) AS n FROM fleet_events GROUP BY profile, phase ORDER BY profile, phase",
            )?;
            let rows = stmt.query_map([], |r| {
                let phase: String = r.get("phase")?;
                Ok((r.get("profile")?, phase, r.get("n")?))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (profile, phase, n): (String, String, i64) = row?;
                if let Some(phase) = FleetPhase::parse(&phase) {
                    out.push((profile, phase, n));
                }
            }
            Ok(out)
        })
    }
}
