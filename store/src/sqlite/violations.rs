//! [`crate::ViolationStore`] on SQLite.

use super::{SqliteStore, fleet_rows};
use crate::StoreError;
use crate::fleet::{FleetEventChange, wire_id};
use crate::outbox::{NewOutboxEvent, OutboxKind, OutboxRouting};
use crate::violations::*;
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter};
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
    links: Links,
}

/// The columns of an active violation and of a violation event: thingward's links.
const ACTIVE_COLUMNS: &str = "violation_id, thing, profile, behavior, last_value, last_violation_ms, start_ms, verification_state, verification_description, ml_explanation, incident_id, fleet_event_id, maintenance_window";
const EVENT_COLUMNS: &str = "violation_id, thing, profile, behavior, metric_value, event_type, event_ms, verification_state, verification_description, ml_explanation, incident_id, fleet_event_id, maintenance_window";

/// A violation's incident, fleet event and maintenance window (ids are stored as the bits of
/// the `u64` in SQLite's signed integer).
#[derive(Debug, Clone, Default)]
struct Links {
    incident: Option<i64>,
    fleet_event: Option<i64>,
    maintenance_window: Option<String>,
}

impl Links {
    fn read(r: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            incident: r.get("incident_id")?,
            fleet_event: r.get("fleet_event_id")?,
            maintenance_window: r.get("maintenance_window")?,
        })
    }

    /// The wire members: ids as 16 hex digits.
    fn wire(&self) -> (Option<String>, Option<String>, Option<String>) {
        (
            self.incident.map(|i| wire_id(i as u64)),
            self.fleet_event.map(|i| wire_id(i as u64)),
            self.maintenance_window.clone(),
        )
    }
}

/// A u64 id as SQLite stores it (the same 64 bits, signed).
fn sql_id(id: u64) -> i64 {
    id as i64
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
        links: Links::read(r)?,
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
    let (incident_id, fleet_event_id, maintenance_window_id) = row.links.wire();
    Ok(ActiveViolation {
        incident_id,
        fleet_event_id,
        maintenance_window_id,
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
    links: Links,
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
        links: Links::read(r)?,
    })
}

fn event_from(row: EventRow) -> Result<ViolationEvent, StoreError> {
    let behavior: Behavior = serde_json::from_str(&row.behavior)?;
    let (incident_id, fleet_event_id, maintenance_window_id) = row.links.wire();
    Ok(ViolationEvent {
        incident_id,
        fleet_event_id,
        maintenance_window_id,
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

/// The outbox event announcing violation event `event`: the AWS `ViolationEvent` JSON,
/// keyed `{violationId}:{violationEventType}`.
fn feed_event(event: &ViolationEvent) -> Result<NewOutboxEvent, StoreError> {
    Ok(NewOutboxEvent {
        key: format!(
            "{}:{}",
            event.violation_id,
            event.violation_event_type.as_str()
        ),
        routing: OutboxRouting::violation(
            Some(event.security_profile_name.clone()),
            Some(event.thing_name.clone()),
            Some(&event.behavior),
        ),
        kind: OutboxKind::Violation,
        event_ms: event.violation_event_time,
        body: serde_json::to_value(event)?,
    })
}

/// The active violation of (thing, profile, behavior) as a change needs it.
struct Existing {
    id: String,
    verification_state: Option<String>,
    verification_description: Option<String>,
    links: Links,
}

/// Records one violation change inside `tx`; returns its violation id and the outbox sequence
/// number of its feed row, if one was written.
fn apply_violation(
    tx: &Connection,
    r: &ViolationRecord,
) -> Result<(Option<String>, Option<i64>), StoreError> {
    let behavior_json = serde_json::to_string(&r.behavior)?;
    let value_json = r.value.as_ref().map(serde_json::to_string).transpose()?;
    let explanation_json = r
        .explanation
        .as_deref()
        .map(serde_json::to_string)
        .transpose()?;
    let criteria = r.behavior.criteria_type().map(BehaviorCriteriaType::as_str);
    let suppressed = r.behavior.suppressed();
    let held = Links {
        incident: r.incident.map(sql_id),
        fleet_event: match &r.hold {
            Some(Hold::FleetEvent(id)) => Some(sql_id(*id)),
            _ => None,
        },
        maintenance_window: match &r.hold {
            Some(Hold::Maintenance(w)) => Some(w.clone()),
            _ => None,
        },
    };
    let existing: Option<Existing> = tx
        .prepare_cached(
            "SELECT violation_id, verification_state, verification_description, incident_id, fleet_event_id, maintenance_window FROM active_violations WHERE thing = ?1 AND profile = ?2 AND behavior_name = ?3",
        )?
        .query_row(params![r.thing, r.profile, r.behavior.name], |row| {
            Ok(Existing {
                id: row.get("violation_id")?,
                verification_state: row.get("verification_state")?,
                verification_description: row.get("verification_description")?,
                links: Links::read(row)?,
            })
        })
        .optional()?;
    let (id, event) = match (&r.change, existing) {
        (ViolationChange::Open | ViolationChange::Touch, Some(e)) => {
            tx.prepare_cached(
                "UPDATE active_violations SET last_value = ?2, last_violation_ms = ?3, ml_explanation = COALESCE(?4, ml_explanation) WHERE violation_id = ?1",
            )?
            .execute(params![e.id, value_json, r.at, explanation_json])?;
            (Some(e.id), None)
        }
        (ViolationChange::Open, None) => {
            let id = uuid::Uuid::new_v4().simple().to_string();
            tx.prepare_cached(
                "INSERT INTO active_violations (violation_id, thing, profile, behavior_name, behavior, criteria_type, suppressed, last_value, last_violation_ms, start_ms, ml_explanation, incident_id, fleet_event_id, maintenance_window) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, ?10, ?11, ?12, ?13)",
            )?
            .execute(params![
                id,
                r.thing,
                r.profile,
                r.behavior.name,
                behavior_json,
                criteria,
                suppressed,
                value_json,
                r.at,
                explanation_json,
                held.incident,
                held.fleet_event,
                held.maintenance_window
            ])?;
            let event = (ViolationEventType::InAlarm, None, None, held.clone());
            (Some(id), Some(event))
        }
        (ViolationChange::Touch | ViolationChange::Close(_), None) => (None, None),
        (ViolationChange::Close(kind), Some(e)) => {
            tx.prepare_cached("DELETE FROM active_violations WHERE violation_id = ?1")?
                .execute([&e.id])?;
            // The clear keeps the violation's links (a released alarm's clear still names the
            // fleet event that held its start).
            let links = Links {
                incident: held.incident.or(e.links.incident),
                fleet_event: held.fleet_event.or(e.links.fleet_event),
                maintenance_window: held
                    .maintenance_window
                    .clone()
                    .or(e.links.maintenance_window),
            };
            let event = (
                *kind,
                e.verification_state,
                e.verification_description,
                links,
            );
            (Some(e.id), Some(event))
        }
    };
    let mut seq = None;
    if let (Some(id), Some((kind, vstate, vdesc, links))) = (&id, event) {
        tx.prepare_cached(
            "INSERT INTO violation_events (violation_id, thing, profile, behavior_name, behavior, criteria_type, suppressed, metric_value, event_type, event_ms, verification_state, verification_description, ml_explanation, incident_id, fleet_event_id, maintenance_window, held) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
        )?
        .execute(params![
            id,
            r.thing,
            r.profile,
            r.behavior.name,
            behavior_json,
            criteria,
            suppressed,
            value_json,
            kind.as_str(),
            r.at,
            vstate,
            vdesc,
            explanation_json,
            links.incident,
            links.fleet_event,
            links.maintenance_window,
            r.hold.is_some()
        ])?;
        // The feed's copy, in the same transaction — unless nobody is to be told: the
        // behavior's suppressAlerts, or a hold (a fleet event or a maintenance window explains
        // it; a held fleet-event alarm gets its row when released).
        let notified = !suppressed && r.hold.is_none();
        if notified {
            let (incident_id, fleet_event_id, maintenance_window_id) = links.wire();
            let event = ViolationEvent {
                violation_id: id.clone(),
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
                incident_id,
                fleet_event_id,
                maintenance_window_id,
            };
            seq = super::outbox::insert(tx, &feed_event(&event)?)?;
        }
    }
    Ok((id, seq))
}

/// Records one fleet event change inside `tx`: the event's row (its verification state
/// kept), its feed row when it opened or closed, the released alarms' feed rows. Returns the
/// last outbox sequence number written.
pub(super) fn apply_fleet_change(
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
        && let Some(stored) = fleet_rows::get(tx, e.id)?
    {
        tail = super::outbox::insert(tx, &fleet_rows::feed_event(&stored, name, at))?;
    }
    for r in &change.released {
        tail = release_held(tx, e.id, Some((&r.thing, &e.profile, &r.behavior)), at)?.or(tail);
    }
    Ok(tail)
}

/// Writes the feed rows of the held violation events of fleet event `fleet_event` (only
/// those of `alarm` = (thing, profile, behavior) when given), in event order, and marks them
/// released at `at`. Returns the last sequence number written.
pub(super) fn release_held(
    tx: &Connection,
    fleet_event: u64,
    alarm: Option<(&str, &str, &str)>,
    at: EpochMillis,
) -> Result<Option<i64>, StoreError> {
    let (cond, mut args): (&str, Vec<SqlValue>) = match alarm {
        Some((thing, profile, behavior)) => (
            " AND thing = ?2 AND profile = ?3 AND behavior_name = ?4",
            vec![
                SqlValue::Text(thing.into()),
                SqlValue::Text(profile.into()),
                SqlValue::Text(behavior.into()),
            ],
        ),
        None => ("", Vec::new()),
    };
    args.insert(0, SqlValue::Integer(sql_id(fleet_event)));
    let rows: Vec<(i64, EventRow)> = {
        let mut stmt = tx.prepare_cached(&format!(
            "SELECT seq, {EVENT_COLUMNS} FROM violation_events WHERE fleet_event_id = ?1 AND held = 1{cond} ORDER BY seq"
        ))?;
        let rows = stmt.query_map(params_from_iter(args), |r| {
            Ok((r.get("seq")?, event_row(r)?))
        })?;
        rows.collect::<Result<_, _>>()?
    };
    let mut tail = None;
    for (row_seq, row) in rows {
        let event = event_from(row)?;
        if !event.behavior.suppressed() {
            tail = super::outbox::insert(tx, &feed_event(&event)?)?.or(tail);
        }
        tx.prepare_cached("UPDATE violation_events SET held = 0, released_ms = ?2 WHERE seq = ?1")?
            .execute(params![row_seq, at])?;
    }
    Ok(tail)
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
                let (id, seq) = apply_violation(&tx, r)?;
                outbox_tail = seq.or(outbox_tail);
                ids.push(id);
            }
            tx.commit()?;
            if let Some(seq) = outbox_tail {
                self.outbox_announce(seq);
            }
            Ok(ids)
        })
    }

    fn detect_apply(&self, changes: &[DetectChange]) -> Result<Vec<Option<String>>, StoreError> {
        self.with(|c| {
            let tx = c.transaction()?;
            let mut ids = Vec::new();
            let mut outbox_tail = None;
            for change in changes {
                let seq = match change {
                    DetectChange::Violation(r) => {
                        let (id, seq) = apply_violation(&tx, r)?;
                        ids.push(id);
                        seq
                    }
                    DetectChange::Fleet(f) => apply_fleet_change(&tx, f)?,
                    DetectChange::ReleaseFleetEvent { id, at } => {
                        release_held(&tx, *id, None, *at)?
                    }
                };
                outbox_tail = seq.or(outbox_tail);
            }
            tx.commit()?;
            if let Some(seq) = outbox_tail {
                self.outbox_announce(seq);
            }
            Ok(ids)
        })
    }

    fn incidents_list(
        &self,
        f: &IncidentFilter,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<IncidentRecord>, StoreError> {
        let mut args = Vec::new();
        let mut conds = vec!["incident_id IS NOT NULL".to_owned()];
        if let Some(t) = &f.thing {
            args.push(SqlValue::Text(t.clone()));
            conds.push(format!("thing = ?{}", args.len()));
        }
        if let Some(p) = &f.profile {
            args.push(SqlValue::Text(p.clone()));
            conds.push(format!("profile = ?{}", args.len()));
        }
        let mut having = Vec::new();
        if let Some(end) = f.end_ms {
            args.push(SqlValue::Integer(end));
            having.push(format!("start_ms <= ?{}", args.len()));
        }
        if let Some(start) = f.start_ms {
            args.push(SqlValue::Integer(start));
            having.push(format!("(open > 0 OR last_ms >= ?{})", args.len()));
        }
        let having = if having.is_empty() {
            String::new()
        } else {
            format!(" HAVING {}", having.join(" AND "))
        };
        let sql = format!(
            "SELECT incident_id, thing, profile, MIN(event_ms) AS start_ms, MAX(event_ms) AS last_ms, COUNT(DISTINCT violation_id) AS violations, GROUP_CONCAT(DISTINCT behavior_name) AS behaviors, (SELECT COUNT(*) FROM active_violations a WHERE a.incident_id = e.incident_id) AS open FROM violation_events e WHERE {} GROUP BY incident_id, thing, profile{having} ORDER BY start_ms DESC, incident_id LIMIT {limit} OFFSET {offset}",
            conds.join(" AND ")
        );
        self.with(|c| {
            let mut stmt = c.prepare(&sql)?;
            let rows = stmt.query_map(params_from_iter(args), |r| {
                let id: i64 = r.get("incident_id")?;
                let open: i64 = r.get("open")?;
                let behaviors: Option<String> = r.get("behaviors")?;
                let mut behaviors: Vec<String> = behaviors
                    .unwrap_or_default()
                    .split(',')
                    .filter(|b| !b.is_empty())
                    .map(str::to_owned)
                    .collect();
                behaviors.sort();
                let violations: i64 = r.get("violations")?;
                Ok(IncidentRecord {
                    id: id as u64,
                    thing: r.get("thing")?,
                    profile: r.get("profile")?,
                    start_ms: r.get("start_ms")?,
                    end_ms: if open > 0 { None } else { r.get("last_ms")? },
                    behaviors,
                    violations: u32::try_from(violations).unwrap_or(u32::MAX),
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn hold_counts(&self) -> Result<HoldCounts, StoreError> {
        self.with(|c| {
            let counts = c.query_row(
                "SELECT COALESCE(SUM(fleet_event_id IS NOT NULL), 0) AS fleet, COALESCE(SUM(maintenance_window IS NOT NULL), 0) AS maintenance, COALESCE(SUM(released_ms IS NOT NULL), 0) AS released, (SELECT COUNT(DISTINCT incident_id) FROM active_violations) AS incidents FROM violation_events WHERE event_type = 'in-alarm' AND (fleet_event_id IS NOT NULL OR maintenance_window IS NOT NULL)",
                [],
                |r| {
                    Ok(HoldCounts {
                        fleet_event: r.get("fleet")?,
                        maintenance: r.get("maintenance")?,
                        released: r.get("released")?,
                        incidents_open: r.get("incidents")?,
                    })
                },
            )?;
            Ok(counts)
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
            "SELECT {ACTIVE_COLUMNS} FROM active_violations WHERE {cond} ORDER BY start_ms DESC, violation_id LIMIT {limit} OFFSET {offset}"
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
            "SELECT {EVENT_COLUMNS} FROM violation_events WHERE {cond} AND event_ms >= ?{} AND event_ms <= ?{n} ORDER BY event_ms, seq LIMIT {limit} OFFSET {offset}",
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
