//! [`crate::ViolationStore`] on SQLite.

use super::SqliteStore;
use crate::StoreError;
use crate::outbox::{NewOutboxEvent, OutboxKind, OutboxRouting};
use crate::violations::*;
use rusqlite::types::Value as SqlValue;
use rusqlite::{OptionalExtension, Row, params, params_from_iter};
use thingward_models::behavior::{Behavior, BehaviorCriteriaType};
use thingward_models::time::EpochMillis;
use thingward_models::violation::{
    ActiveViolation, VerificationState, ViolationEvent, ViolationEventAdditionalInfo,
    ViolationEventType,
};

fn where_clause(f: &ViolationFilter, args: &mut Vec<SqlValue>) -> String {
    let mut conds = Vec::new();
    let mut push = |cond: &str, v: SqlValue| {
        args.push(v);
        conds.push(format!("{cond} ?{}", args.len()));
    };
    if let Some(t) = &f.thing {
        push("thing =", SqlValue::Text(t.clone()));
    }
    if let Some(p) = &f.profile {
        push("profile =", SqlValue::Text(p.clone()));
    }
    if let Some(c) = f.criteria_type {
        push("criteria_type =", SqlValue::Text(c.as_str().into()));
    }
    if let Some(s) = f.suppressed {
        push("suppressed =", SqlValue::Integer(i64::from(s)));
    }
    if let Some(v) = f.verification {
        push("verification_state =", SqlValue::Text(v.as_str().into()));
    }
    if conds.is_empty() {
        "1 = 1".into()
    } else {
        conds.join(" AND ")
    }
}

fn parse_json<T: serde::de::DeserializeOwned>(s: Option<String>) -> Result<Option<T>, StoreError> {
    Ok(s.map(|s| serde_json::from_str(&s)).transpose()?)
}

/// An `active_violations` row, read by column name.
struct ActiveRow {
    violation_id: String,
    thing: String,
    profile: String,
    behavior: String,
    last_value: Option<String>,
    last_violation_ms: Option<i64>,
    start_ms: i64,
    verification_state: Option<String>,
    verification_description: Option<String>,
    ml_explanation: Option<String>,
}

fn active_row(r: &Row<'_>) -> rusqlite::Result<ActiveRow> {
    Ok(ActiveRow {
        violation_id: r.get("violation_id")?,
        thing: r.get("thing")?,
        profile: r.get("profile")?,
        behavior: r.get("behavior")?,
        last_value: r.get("last_value")?,
        last_violation_ms: r.get("last_violation_ms")?,
        start_ms: r.get("start_ms")?,
        verification_state: r.get("verification_state")?,
        verification_description: r.get("verification_description")?,
        ml_explanation: r.get("ml_explanation")?,
    })
}

/// `violationEventAdditionalInfo` as AWS fills it: the confidence level of an ML behavior.
fn additional_info(behavior: &Behavior) -> Option<ViolationEventAdditionalInfo> {
    behavior
        .confidence_level()
        .map(|level| ViolationEventAdditionalInfo {
            confidence_level: Some(level),
        })
}

fn active_from(row: ActiveRow) -> Result<ActiveViolation, StoreError> {
    let behavior: Behavior = serde_json::from_str(&row.behavior)?;
    Ok(ActiveViolation {
        violation_id: row.violation_id,
        thing_name: row.thing,
        security_profile_name: row.profile,
        violation_event_additional_info: additional_info(&behavior),
        behavior,
        last_violation_value: parse_json(row.last_value)?,
        ml_explanation: parse_json(row.ml_explanation)?,
        verification_state: row
            .verification_state
            .as_deref()
            .and_then(VerificationState::parse),
        verification_state_description: row.verification_description,
        last_violation_time: row.last_violation_ms,
        violation_start_time: row.start_ms,
    })
}

/// A `violation_events` row, read by column name.
struct EventRow {
    violation_id: String,
    thing: String,
    profile: String,
    behavior: String,
    metric_value: Option<String>,
    event_type: String,
    event_ms: i64,
    verification_state: Option<String>,
    verification_description: Option<String>,
    ml_explanation: Option<String>,
}

fn event_row(r: &Row<'_>) -> rusqlite::Result<EventRow> {
    Ok(EventRow {
        violation_id: r.get("violation_id")?,
        thing: r.get("thing")?,
        profile: r.get("profile")?,
        behavior: r.get("behavior")?,
        metric_value: r.get("metric_value")?,
        event_type: r.get("event_type")?,
        event_ms: r.get("event_ms")?,
        verification_state: r.get("verification_state")?,
        verification_description: r.get("verification_description")?,
        ml_explanation: r.get("ml_explanation")?,
    })
}

fn event_from(row: EventRow) -> Result<ViolationEvent, StoreError> {
    let behavior: Behavior = serde_json::from_str(&row.behavior)?;
    Ok(ViolationEvent {
        violation_id: row.violation_id,
        thing_name: row.thing,
        security_profile_name: row.profile,
        violation_event_additional_info: additional_info(&behavior),
        behavior,
        metric_value: parse_json(row.metric_value)?,
        ml_explanation: parse_json(row.ml_explanation)?,
        violation_event_type: ViolationEventType::parse(&row.event_type)
            .unwrap_or(ViolationEventType::InAlarm),
        verification_state: row
            .verification_state
            .as_deref()
            .and_then(VerificationState::parse),
        verification_state_description: row.verification_description,
        violation_event_time: row.event_ms,
    })
}

/// The outbox event announcing violation event `kind` of `r`: the AWS `ViolationEvent` JSON,
/// keyed `{violationId}:{violationEventType}`.
fn feed_event(
    r: &ViolationRecord,
    violation_id: String,
    kind: ViolationEventType,
    vstate: Option<String>,
    vdesc: Option<String>,
) -> Result<NewOutboxEvent, StoreError> {
    let event = NewOutboxEvent {
        key: format!("{violation_id}:{}", kind.as_str()),
        routing: OutboxRouting::violation(
            Some(r.profile.clone()),
            Some(r.thing.clone()),
            Some(&r.behavior),
        ),
        kind: OutboxKind::Violation,
        event_ms: r.at,
        body: serde_json::to_value(ViolationEvent {
            violation_id,
            thing_name: r.thing.clone(),
            security_profile_name: r.profile.clone(),
            violation_event_additional_info: additional_info(&r.behavior),
            behavior: r.behavior.clone(),
            metric_value: r.value.clone(),
            ml_explanation: r.explanation.as_deref().cloned(),
            violation_event_type: kind,
            verification_state: vstate.as_deref().and_then(VerificationState::parse),
            verification_state_description: vdesc,
            violation_event_time: r.at,
        })?,
    };
    Ok(event)
}

impl ViolationStore for SqliteStore {
    fn violations_apply(
        &self,
        records: &[ViolationRecord],
    ) -> Result<Vec<Option<String>>, StoreError> {
        self.with(|c| {
            let tx = c.transaction()?;
            let mut ids = Vec::with_capacity(records.len());
            let mut outbox_tail = None;
            for r in records {
                let behavior_json = serde_json::to_string(&r.behavior)?;
                let value_json = r.value.as_ref().map(serde_json::to_string).transpose()?;
                let explanation_json = r
                    .explanation
                    .as_deref()
                    .map(serde_json::to_string)
                    .transpose()?;
                let criteria = r.behavior.criteria_type().map(BehaviorCriteriaType::as_str);
                let suppressed = r.behavior.suppressed();
                let existing: Option<(String, Option<String>, Option<String>)> = tx
                    .prepare_cached(
                        "SELECT violation_id, verification_state, verification_description FROM active_violations WHERE thing = ?1 AND profile = ?2 AND behavior_name = ?3",
                    )?
                    .query_row(
                        params![r.thing, r.profile, r.behavior.name],
                        |row| {
                            Ok((
                                row.get("violation_id")?,
                                row.get("verification_state")?,
                                row.get("verification_description")?,
                            ))
                        },
                    )
                    .optional()?;
                let (id, event) = match (&r.change, existing) {
                    (ViolationChange::Open, Some((id, _, _))) | (ViolationChange::Touch, Some((id, _, _))) => {
                        tx.prepare_cached(
                            "UPDATE active_violations SET last_value = ?2, last_violation_ms = ?3, ml_explanation = COALESCE(?4, ml_explanation) WHERE violation_id = ?1",
                        )?
                        .execute(params![id, value_json, r.at, explanation_json])?;
                        (Some(id), None)
                    }
                    (ViolationChange::Open, None) => {
                        let id = uuid::Uuid::new_v4().simple().to_string();
                        tx.prepare_cached(
                            "INSERT INTO active_violations (violation_id, thing, profile, behavior_name, behavior, criteria_type, suppressed, last_value, last_violation_ms, start_ms, ml_explanation) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, ?10)",
                        )?
                        .execute(params![id, r.thing, r.profile, r.behavior.name, behavior_json, criteria, suppressed, value_json, r.at, explanation_json],
                        )?;
                        (Some(id.clone()), Some((id, ViolationEventType::InAlarm, None, None)))
                    }
                    (ViolationChange::Touch, None) | (ViolationChange::Close(_), None) => (None, None),
                    (ViolationChange::Close(kind), Some((id, vstate, vdesc))) => {
                        tx.prepare_cached("DELETE FROM active_violations WHERE violation_id = ?1")?
                            .execute([&id])?;
                        (Some(id.clone()), Some((id, *kind, vstate, vdesc)))
                    }
                };
                if let Some((id, kind, vstate, vdesc)) = event {
                    tx.prepare_cached(
                        "INSERT INTO violation_events (violation_id, thing, profile, behavior_name, behavior, criteria_type, suppressed, metric_value, event_type, event_ms, verification_state, verification_description, ml_explanation) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                    )?
                    .execute(params![id, r.thing, r.profile, r.behavior.name, behavior_json, criteria, suppressed, value_json, kind.as_str(), r.at, vstate, vdesc, explanation_json],
                    )?;
                    // The feed's copy, in the same transaction (suppressAlerts: no notification).
                    if !suppressed {
                        let seq = super::outbox::insert(&tx, &feed_event(r, id, kind, vstate, vdesc)?)?;
                        outbox_tail = seq.or(outbox_tail);
                    }
                }
                ids.push(id);
            }
            tx.commit()?;
            if let Some(seq) = outbox_tail {
                self.outbox_announce(seq);
            }
            Ok(ids)
        })
    }

    fn violations_active(
        &self,
        f: &ViolationFilter,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<ActiveViolation>, StoreError> {
        let mut args = Vec::new();
        let cond = where_clause(f, &mut args);
        let sql = format!(
            "SELECT violation_id, thing, profile, behavior, last_value, last_violation_ms, start_ms, verification_state, verification_description, ml_explanation FROM active_violations WHERE {cond} ORDER BY start_ms DESC, violation_id LIMIT {limit} OFFSET {offset}"
        );
        self.with(|c| {
            let mut stmt = c.prepare(&sql)?;
            let rows = stmt.query_map(params_from_iter(args), active_row)?;
            let mut out = Vec::new();
            for row in rows {
                out.push(active_from(row?)?);
            }
            Ok(out)
        })
    }

    fn violations_active_keys(
        &self,
    ) -> Result<Vec<(String, String, String, EpochMillis)>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT thing, profile, behavior_name, COALESCE(last_violation_ms, start_ms) AS last_ms FROM active_violations",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok((
                    r.get("thing")?,
                    r.get("profile")?,
                    r.get("behavior_name")?,
                    r.get("last_ms")?,
                ))
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn violation_events(
        &self,
        f: &EventFilter,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<ViolationEvent>, StoreError> {
        let mut args = Vec::new();
        let cond = where_clause(&f.common, &mut args);
        args.push(SqlValue::Integer(f.start_ms));
        args.push(SqlValue::Integer(f.end_ms));
        let n = args.len();
        let sql = format!(
            "SELECT violation_id, thing, profile, behavior, metric_value, event_type, event_ms, verification_state, verification_description, ml_explanation FROM violation_events WHERE {cond} AND event_ms >= ?{} AND event_ms <= ?{n} ORDER BY event_ms, seq LIMIT {limit} OFFSET {offset}",
            n - 1
        );
        self.with(|c| {
            let mut stmt = c.prepare(&sql)?;
            let rows = stmt.query_map(params_from_iter(args), event_row)?;
            let mut out = Vec::new();
            for row in rows {
                out.push(event_from(row?)?);
            }
            Ok(out)
        })
    }

    fn verification_set(
        &self,
        violation_id: &str,
        state: VerificationState,
        description: Option<&str>,
    ) -> Result<bool, StoreError> {
        self.with(|c| {
            let tx = c.transaction()?;
            let a = tx.execute(
                "UPDATE active_violations SET verification_state = ?2, verification_description = ?3 WHERE violation_id = ?1",
                params![violation_id, state.as_str(), description],
            )?;
            let e = tx.execute(
                "UPDATE violation_events SET verification_state = ?2, verification_description = ?3 WHERE violation_id = ?1",
                params![violation_id, state.as_str(), description],
            )?;
            tx.commit()?;
            Ok(a + e > 0)
        })
    }

    fn violations_in_alarm_counts(&self) -> Result<Vec<(String, String, i64)>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT profile, behavior_name, COUNT(*) AS n FROM active_violations GROUP BY profile, behavior_name ORDER BY profile, behavior_name",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok((r.get("profile")?, r.get("behavior_name")?, r.get("n")?))
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn violation_event_counts(&self) -> Result<Vec<(String, String, String, i64)>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT profile, behavior_name, event_type, COUNT(*) AS n FROM violation_events GROUP BY profile, behavior_name, event_type ORDER BY profile, behavior_name, event_type",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok((
                    r.get("profile")?,
                    r.get("behavior_name")?,
                    r.get("event_type")?,
                    r.get("n")?,
                ))
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }
}
