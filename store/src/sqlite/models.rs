//! [`crate::ModelStore`] on SQLite.

use super::SqliteStore;
use crate::StoreError;
use crate::models::*;
use rusqlite::{Row, params};
use std::collections::HashMap;
use thingward_models::behavior::Behavior;
use thingward_models::lifecycle::{LifecycleState, ModelStatus};
use thingward_models::time::EpochMillis;
use thingward_models::violation::VerificationState;

/// An event row for [`ModelStore::violation_intervals`], read by column name.
struct EventRow {
    violation_id: String,
    thing: String,
    profile: String,
    behavior_name: String,
    behavior: String,
    event_ms: EpochMillis,
}

const COLUMNS: &str = "profile, behavior, metric, status, collection_start_ms, last_refresh_ms, version, datapoints, retries, failing_since_ms, last_attempt_ms, last_error, artifact, expected, created_ms";

fn entry_row(r: &Row<'_>) -> rusqlite::Result<(ModelEntry, String, Option<String>)> {
    let status: String = r.get("status")?;
    let expected: Option<String> = r.get("expected")?;
    let entry = ModelEntry {
        profile: r.get("profile")?,
        behavior: r.get("behavior")?,
        metric: r.get("metric")?,
        state: LifecycleState {
            status: ModelStatus::PendingBuild,
            collection_start: r.get("collection_start_ms")?,
            last_refresh: r.get("last_refresh_ms")?,
            version: r.get::<_, i64>("version")?.max(0) as u64,
            failing_since: r.get("failing_since_ms")?,
            retries: r.get::<_, i64>("retries")?.clamp(0, i64::from(u32::MAX)) as u32,
        },
        datapoints: r.get::<_, i64>("datapoints")?.max(0) as u64,
        last_attempt: r.get("last_attempt_ms")?,
        last_error: r.get("last_error")?,
        artifact: r.get("artifact")?,
        expected: None,
        created: r.get("created_ms")?,
    };
    Ok((entry, status, expected))
}

fn finish(row: (ModelEntry, String, Option<String>)) -> Result<ModelEntry, StoreError> {
    let (mut entry, status, expected) = row;
    entry.state.status = ModelStatus::parse(&status).unwrap_or(ModelStatus::PendingBuild);
    entry.expected = expected.map(|e| serde_json::from_str(&e)).transpose()?;
    Ok(entry)
}

impl ModelStore for SqliteStore {
    fn models_sync(
        &self,
        behaviors: &[(String, String, String)],
        now: EpochMillis,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let wanted: HashMap<(&str, &str), &str> = behaviors
            .iter()
            .map(|(p, b, m)| ((p.as_str(), b.as_str()), m.as_str()))
            .collect();
        self.with(|c| {
            let tx = c.transaction()?;
            let existing: Vec<(String, String, String)> = {
                let mut stmt = tx.prepare("SELECT profile, behavior, metric FROM behavior_models")?;
                stmt.query_map([], |r| Ok((r.get("profile")?, r.get("behavior")?, r.get("metric")?)))?
                    .collect::<Result<_, _>>()?
            };
            let mut dropped = Vec::new();
            for (p, b, m) in &existing {
                if wanted.get(&(p.as_str(), b.as_str())) != Some(&m.as_str()) {
                    tx.execute(
                        "DELETE FROM behavior_models WHERE profile = ?1 AND behavior = ?2",
                        params![p, b],
                    )?;
                    dropped.push((p.clone(), b.clone()));
                }
            }
            for (p, b, m) in behaviors {
                tx.execute(
                    "INSERT OR IGNORE INTO behavior_models (profile, behavior, metric, status, version, datapoints, retries, created_ms) VALUES (?1, ?2, ?3, ?4, 0, 0, 0, ?5)",
                    params![p, b, m, ModelStatus::PendingBuild.as_str(), now],
                )?;
            }
            tx.commit()?;
            Ok(dropped)
        })
    }

    fn models_all(&self, profile: Option<&str>) -> Result<Vec<ModelEntry>, StoreError> {
        self.with(|c| {
            let sql = format!(
                "SELECT {COLUMNS} FROM behavior_models WHERE ?1 IS NULL OR profile = ?1 ORDER BY profile, behavior"
            );
            let mut stmt = c.prepare(&sql)?;
            let rows = stmt.query_map([profile], entry_row)?;
            let mut out = Vec::new();
            for row in rows {
                out.push(finish(row?)?);
            }
            Ok(out)
        })
    }

    fn model_get(&self, profile: &str, behavior: &str) -> Result<Option<ModelEntry>, StoreError> {
        self.with(|c| {
            let sql = format!(
                "SELECT {COLUMNS} FROM behavior_models WHERE profile = ?1 AND behavior = ?2"
            );
            use rusqlite::OptionalExtension as _;
            let row = c
                .prepare(&sql)?
                .query_row(params![profile, behavior], entry_row)
                .optional()?;
            row.map(finish).transpose()
        })
    }

    fn model_update(&self, e: &ModelEntry) -> Result<bool, StoreError> {
        let expected = e.expected.as_ref().map(serde_json::to_string).transpose()?;
        self.with(|c| {
            let n = c.execute(
                "UPDATE behavior_models SET status = ?3, collection_start_ms = ?4, last_refresh_ms = ?5, version = ?6, datapoints = ?7, retries = ?8, failing_since_ms = ?9, last_attempt_ms = ?10, last_error = ?11, artifact = ?12, expected = ?13 WHERE profile = ?1 AND behavior = ?2 AND metric = ?14",
                params![
                    e.profile,
                    e.behavior,
                    e.state.status.as_str(),
                    e.state.collection_start,
                    e.state.last_refresh,
                    i64::try_from(e.state.version).unwrap_or(i64::MAX),
                    i64::try_from(e.datapoints).unwrap_or(i64::MAX),
                    i64::from(e.state.retries),
                    e.state.failing_since,
                    e.last_attempt,
                    e.last_error,
                    e.artifact,
                    expected,
                    e.metric,
                ],
            )?;
            Ok(n > 0)
        })
    }

    fn violation_intervals(
        &self,
        profile: &str,
        behavior: &str,
        metric: &str,
        now: EpochMillis,
    ) -> Result<Vec<ViolationInterval>, StoreError> {
        let rows: Vec<EventRow> =
            self.with(|c| {
                let mut stmt = c.prepare(
                    "SELECT violation_id, thing, profile, behavior_name, behavior, event_ms FROM violation_events WHERE (profile = ?1 AND behavior_name = ?2) OR verification_state = ?3 ORDER BY seq",
                )?;
                let rows = stmt.query_map(
                    params![profile, behavior, VerificationState::TruePositive.as_str()],
                    |r| {
                        Ok(EventRow {
                            violation_id: r.get("violation_id")?,
                            thing: r.get("thing")?,
                            profile: r.get("profile")?,
                            behavior_name: r.get("behavior_name")?,
                            behavior: r.get("behavior")?,
                            event_ms: r.get("event_ms")?,
                        })
                    },
                )?;
                Ok(rows.collect::<Result<_, _>>()?)
            })?;
        // Per violation id: thing, first and last event time, whether it has ended.
        let mut spans: HashMap<String, (String, EpochMillis, EpochMillis, bool)> = HashMap::new();
        let mut order = Vec::new();
        for row in rows {
            let (id, thing, at) = (row.violation_id, row.thing, row.event_ms);
            if !(row.profile == profile && row.behavior_name == behavior) {
                let def: Behavior = serde_json::from_str(&row.behavior)?;
                if def.metric.as_ref().map(|m| m.as_str()) != Some(metric) {
                    continue;
                }
            }
            match spans.get_mut(&id) {
                Some(span) => {
                    span.2 = span.2.max(at);
                    span.3 = true;
                }
                None => {
                    order.push(id.clone());
                    spans.insert(id, (thing, at, at, false));
                }
            }
        }
        Ok(order
            .into_iter()
            .filter_map(|id| spans.remove(&id))
            .map(|(thing, start, end, ended)| ViolationInterval {
                thing,
                start,
                end: if ended { end } else { now.max(start) },
            })
            .collect())
    }
}
