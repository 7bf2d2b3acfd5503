//! [`crate::FleetEventStore`] on SQLite.

use super::SqliteStore;
use super::fleet_rows::{COLUMNS, fleet_row, get, record_from};
use super::violations::{apply_fleet_change, release_held};
use crate::StoreError;
use crate::fleet::*;
use rusqlite::types::Value as SqlValue;
use rusqlite::{params, params_from_iter};
use thingward_models::time::EpochMillis;
use thingward_models::violation::VerificationState;

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
                tail = apply_fleet_change(
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
