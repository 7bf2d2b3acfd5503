//! The `fleet_events` rows: schema, mapping by column name, the feed row of an opening or
//! closing (shared by the fleet event area and the Detect changes recorded with violations).

use crate::StoreError;
use crate::fleet::*;
use crate::outbox::{NewOutboxEvent, OutboxKind, OutboxRouting, Severity};
use rusqlite::{Connection, OptionalExtension, Row};
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

pub(super) const COLUMNS: &str = "id, profile, phase, start_ms, end_ms, behaviors, cohorts, explained_alarms, verification_state, verification_description";

/// A `fleet_events` row, read by column name (JSON columns still encoded).
pub(super) struct FleetRow {
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

pub(super) fn fleet_row(r: &Row<'_>) -> rusqlite::Result<FleetRow> {
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

pub(super) fn record_from(row: FleetRow) -> Result<FleetEventRecord, StoreError> {
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

pub(super) fn get(c: &Connection, id: u64) -> Result<Option<FleetEventRecord>, StoreError> {
    c.prepare_cached(&format!("SELECT {COLUMNS} FROM fleet_events WHERE id = ?1"))?
        .query_row([id as i64], fleet_row)
        .optional()?
        .map(record_from)
        .transpose()
}

/// The feed row announcing that `event` opened or closed (`change`), keyed
/// `{fleetEventId}:{change}`.
pub(super) fn feed_event(
    event: &FleetEventRecord,
    change: &str,
    at: EpochMillis,
) -> NewOutboxEvent {
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
