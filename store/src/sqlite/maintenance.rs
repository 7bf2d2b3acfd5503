//! [`crate::MaintenanceStore`] on SQLite (the table is in `fleet_rows::SCHEMA`).

use super::SqliteStore;
use crate::StoreError;
use crate::maintenance::*;
use rusqlite::{OptionalExtension, Row, params};

const COLUMNS: &str =
    "name, target_kind, target, metrics, start_ms, end_ms, description, creation_ms";

/// The stored spelling of a target's kind.
const PROFILE: &str = "securityProfile";
const GROUP: &str = "thingGroup";

/// A `maintenance_windows` row, read by column name (the metrics still JSON).
struct WindowRow {
    name: String,
    target_kind: String,
    target: String,
    metrics: String,
    start_ms: i64,
    end_ms: i64,
    description: Option<String>,
    creation_ms: i64,
}

fn window_row(r: &Row<'_>) -> rusqlite::Result<WindowRow> {
    Ok(WindowRow {
        name: r.get("name")?,
        target_kind: r.get("target_kind")?,
        target: r.get("target")?,
        metrics: r.get("metrics")?,
        start_ms: r.get("start_ms")?,
        end_ms: r.get("end_ms")?,
        description: r.get("description")?,
        creation_ms: r.get("creation_ms")?,
    })
}

fn record_from(row: WindowRow) -> Result<MaintenanceWindowRecord, StoreError> {
    Ok(MaintenanceWindowRecord {
        name: row.name,
        target: if row.target_kind == GROUP {
            MaintenanceTarget::ThingGroup(row.target)
        } else {
            MaintenanceTarget::SecurityProfile(row.target)
        },
        metrics: serde_json::from_str(&row.metrics)?,
        start_ms: row.start_ms,
        end_ms: row.end_ms,
        description: row.description,
        creation_ms: row.creation_ms,
    })
}

impl MaintenanceStore for SqliteStore {
    fn maintenance_insert(&self, w: &MaintenanceWindowRecord) -> Result<bool, StoreError> {
        let (kind, target) = match &w.target {
            MaintenanceTarget::SecurityProfile(p) => (PROFILE, p),
            MaintenanceTarget::ThingGroup(g) => (GROUP, g),
        };
        let metrics = serde_json::to_string(&w.metrics)?;
        self.with(|c| {
            let n = c.execute(
                "INSERT INTO maintenance_windows (name, target_kind, target, metrics, start_ms, end_ms, description, creation_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (name) DO NOTHING",
                params![w.name, kind, target, metrics, w.start_ms, w.end_ms, w.description, w.creation_ms],
            )?;
            Ok(n > 0)
        })
    }

    fn maintenance_get(&self, name: &str) -> Result<Option<MaintenanceWindowRecord>, StoreError> {
        self.with(|c| {
            c.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM maintenance_windows WHERE name = ?1"
            ))?
            .query_row([name], window_row)
            .optional()?
            .map(record_from)
            .transpose()
        })
    }

    fn maintenance_all(&self) -> Result<Vec<MaintenanceWindowRecord>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM maintenance_windows ORDER BY start_ms, name"
            ))?;
            let rows = stmt.query_map([], window_row)?;
            let mut out = Vec::new();
            for row in rows {
                out.push(record_from(row?)?);
            }
            Ok(out)
        })
    }

    fn maintenance_delete(&self, name: &str) -> Result<bool, StoreError> {
        self.with(|c| Ok(c.execute("DELETE FROM maintenance_windows WHERE name = ?1", [name])? > 0))
    }
}
