//! [`crate::MitigationStore`] on SQLite.

use super::{SqliteStore, tags_json};
use crate::StoreError;
use crate::mitigation::*;
use rusqlite::types::Value as SqlValue;
use rusqlite::{OptionalExtension, Row, params, params_from_iter};
use thingward_models::time::EpochMillis;

const ACTION_COLUMNS: &str =
    "name, action_id, action_type, role_arn, params, creation_ms, modified_ms";

fn action_row(r: &Row<'_>) -> rusqlite::Result<(ActionRecord, String)> {
    Ok((
        ActionRecord {
            name: r.get("name")?,
            action_id: r.get("action_id")?,
            action_type: r.get("action_type")?,
            role_arn: r.get("role_arn")?,
            params: serde_json::Value::Null,
            creation_ms: r.get("creation_ms")?,
            modified_ms: r.get("modified_ms")?,
        },
        r.get("params")?,
    ))
}

fn with_params((mut rec, params): (ActionRecord, String)) -> Result<ActionRecord, StoreError> {
    rec.params = serde_json::from_str(&params)?;
    Ok(rec)
}

const TASK_COLUMNS: &str =
    "kind, task_id, status, start_ms, end_ms, client_request_token, request, actions";

type TaskRow = (TaskRecord, String, String);

fn task_row(r: &Row<'_>) -> rusqlite::Result<TaskRow> {
    let kind: String = r.get("kind")?;
    let state: String = r.get("status")?;
    Ok((
        TaskRecord {
            kind: if kind == "audit" {
                TaskKind::Audit
            } else {
                TaskKind::Detect
            },
            task_id: r.get("task_id")?,
            state: TaskState::parse(&state),
            start_ms: r.get("start_ms")?,
            end_ms: r.get("end_ms")?,
            client_request_token: r.get("client_request_token")?,
            request: serde_json::Value::Null,
            actions: serde_json::Value::Null,
        },
        r.get("request")?,
        r.get("actions")?,
    ))
}

fn task_from((mut rec, request, actions): TaskRow) -> Result<TaskRecord, StoreError> {
    rec.request = serde_json::from_str(&request)?;
    rec.actions = serde_json::from_str(&actions)?;
    Ok(rec)
}

const EXEC_COLUMNS: &str = "task_id, seq, subject, check_name, thing, action_name, action_id, status, start_ms, end_ms, error_code, message";

fn exec_row(r: &Row<'_>) -> rusqlite::Result<ExecutionRecord> {
    let state: String = r.get("status")?;
    Ok(ExecutionRecord {
        task_id: r.get("task_id")?,
        seq: r.get("seq")?,
        subject: r.get("subject")?,
        check_name: r.get("check_name")?,
        thing: r.get("thing")?,
        action_name: r.get("action_name")?,
        action_id: r.get("action_id")?,
        state: ExecState::parse(&state),
        start_ms: r.get("start_ms")?,
        end_ms: r.get("end_ms")?,
        error_code: r.get("error_code")?,
        message: r.get("message")?,
    })
}

impl MitigationStore for SqliteStore {
    fn mitigation_action_insert(
        &self,
        rec: &ActionRecord,
        tags: Option<&serde_json::Value>,
    ) -> Result<bool, StoreError> {
        self.with(|c| {
            Ok(c.execute(
                "INSERT OR IGNORE INTO mitigation_actions (name, action_id, action_type, role_arn, params, tags, creation_ms, modified_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![rec.name, rec.action_id, rec.action_type, rec.role_arn, rec.params.to_string(), tags_json(tags), rec.creation_ms, rec.modified_ms],
            )? == 1)
        })
    }

    fn mitigation_action_get(&self, name: &str) -> Result<Option<ActionRecord>, StoreError> {
        self.with(|c| {
            c.query_row(
                &format!("SELECT {ACTION_COLUMNS} FROM mitigation_actions WHERE name = ?1"),
                [name],
                action_row,
            )
            .optional()?
            .map(with_params)
            .transpose()
        })
    }

    fn mitigation_action_update(
        &self,
        name: &str,
        role_arn: &str,
        action_type: &str,
        params_json: &serde_json::Value,
        now: EpochMillis,
    ) -> Result<Option<ActionRecord>, StoreError> {
        self.with(|c| {
            c.execute(
                "UPDATE mitigation_actions SET role_arn = ?2, action_type = ?3, params = ?4, modified_ms = ?5 WHERE name = ?1",
                params![name, role_arn, action_type, params_json.to_string(), now],
            )?;
            c.query_row(
                &format!("SELECT {ACTION_COLUMNS} FROM mitigation_actions WHERE name = ?1"),
                [name],
                action_row,
            )
            .optional()?
            .map(with_params)
            .transpose()
        })
    }

    fn mitigation_action_delete(&self, name: &str) -> Result<bool, StoreError> {
        self.with(|c| Ok(c.execute("DELETE FROM mitigation_actions WHERE name = ?1", [name])? == 1))
    }

    fn mitigation_actions_all(&self) -> Result<Vec<ActionRecord>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {ACTION_COLUMNS} FROM mitigation_actions ORDER BY creation_ms, name"
            ))?;
            let rows = stmt.query_map([], action_row)?;
            let mut out = Vec::new();
            for row in rows {
                out.push(with_params(row?)?);
            }
            Ok(out)
        })
    }

    fn mitigation_task_insert(
        &self,
        task: &TaskRecord,
        executions: &[ExecutionRecord],
    ) -> Result<TaskInsert, StoreError> {
        let kind = task.kind.as_str();
        self.with(|c| {
            let tx = c.transaction()?;
            let existing: Option<Option<String>> = tx
                .query_row(
                    "SELECT client_request_token FROM mitigation_tasks WHERE kind = ?1 AND task_id = ?2",
                    params![kind, task.task_id],
                    |r| r.get("client_request_token"),
                )
                .optional()?;
            if let Some(token) = existing {
                return Ok(TaskInsert::Exists(token));
            }
            tx.execute(
                "INSERT INTO mitigation_tasks (kind, task_id, status, start_ms, end_ms, client_request_token, request, actions) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![kind, task.task_id, task.state.as_str(), task.start_ms, task.end_ms, task.client_request_token, task.request.to_string(), task.actions.to_string()],
            )?;
            {
                let mut stmt = tx.prepare(
                    "INSERT INTO mitigation_executions (kind, task_id, seq, subject, check_name, thing, action_name, action_id, status, start_ms, end_ms, error_code, message) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                )?;
                for e in executions {
                    stmt.execute(params![
                        kind,
                        task.task_id,
                        e.seq,
                        e.subject,
                        e.check_name,
                        e.thing,
                        e.action_name,
                        e.action_id,
                        e.state.as_str(),
                        e.start_ms,
                        e.end_ms,
                        e.error_code,
                        e.message
                    ])?;
                }
            }
            tx.commit()?;
            Ok(TaskInsert::Inserted)
        })
    }

    fn mitigation_task_get(
        &self,
        kind: TaskKind,
        task_id: &str,
    ) -> Result<Option<TaskRecord>, StoreError> {
        self.with(|c| {
            c.query_row(
                &format!(
                    "SELECT {TASK_COLUMNS} FROM mitigation_tasks WHERE kind = ?1 AND task_id = ?2"
                ),
                params![kind.as_str(), task_id],
                task_row,
            )
            .optional()?
            .map(task_from)
            .transpose()
        })
    }

    fn mitigation_tasks(
        &self,
        kind: TaskKind,
        start_ms: EpochMillis,
        end_ms: EpochMillis,
    ) -> Result<Vec<TaskRecord>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {TASK_COLUMNS} FROM mitigation_tasks WHERE kind = ?1 AND start_ms >= ?2 AND start_ms <= ?3 ORDER BY start_ms DESC, task_id"
            ))?;
            let rows = stmt.query_map(params![kind.as_str(), start_ms, end_ms], task_row)?;
            let mut out = Vec::new();
            for row in rows {
                out.push(task_from(row?)?);
            }
            Ok(out)
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn mitigation_task_end(
        &self,
        kind: TaskKind,
        task_id: &str,
        state: TaskState,
        leftover: ExecState,
        running_too: bool,
        message: Option<&str>,
        now: EpochMillis,
    ) -> Result<bool, StoreError> {
        let unfinished = if running_too {
            "('PENDING', 'IN_PROGRESS')"
        } else {
            "('PENDING')"
        };
        self.with(|c| {
            let tx = c.transaction()?;
            let n = tx.execute(
                "UPDATE mitigation_tasks SET status = ?3, end_ms = ?4 WHERE kind = ?1 AND task_id = ?2 AND status = 'IN_PROGRESS'",
                params![kind.as_str(), task_id, state.as_str(), now],
            )?;
            if n == 1 {
                tx.execute(
                    &format!("UPDATE mitigation_executions SET status = ?3, end_ms = ?4, message = COALESCE(message, ?5) WHERE kind = ?1 AND task_id = ?2 AND status IN {unfinished}"),
                    params![kind.as_str(), task_id, leftover.as_str(), now, message],
                )?;
            }
            tx.commit()?;
            Ok(n == 1)
        })
    }

    fn mitigation_execution_begin(
        &self,
        kind: TaskKind,
        task_id: &str,
        seq: i64,
        now: EpochMillis,
    ) -> Result<bool, StoreError> {
        self.with(|c| {
            Ok(c.execute(
                "UPDATE mitigation_executions SET status = 'IN_PROGRESS', start_ms = ?4 WHERE kind = ?1 AND task_id = ?2 AND seq = ?3 AND status = 'PENDING'",
                params![kind.as_str(), task_id, seq, now],
            )? == 1)
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn mitigation_execution_set(
        &self,
        kind: TaskKind,
        task_id: &str,
        seq: i64,
        state: ExecState,
        start_ms: Option<EpochMillis>,
        end_ms: Option<EpochMillis>,
        error_code: Option<&str>,
        message: Option<&str>,
    ) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "UPDATE mitigation_executions SET status = ?4, start_ms = COALESCE(?5, start_ms), end_ms = ?6, error_code = ?7, message = ?8 WHERE kind = ?1 AND task_id = ?2 AND seq = ?3",
                params![kind.as_str(), task_id, seq, state.as_str(), start_ms, end_ms, error_code, message],
            )?;
            Ok(())
        })
    }

    fn mitigation_executions(
        &self,
        kind: TaskKind,
        f: &ExecutionFilter,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<ExecutionRecord>, StoreError> {
        let mut args = vec![SqlValue::Text(kind.as_str().into())];
        let mut conds = vec!["e.kind = ?1".to_owned()];
        let mut push = |cond: &str, v: SqlValue| {
            args.push(v);
            conds.push(format!("{cond} ?{}", args.len()));
        };
        if let Some(t) = &f.task_id {
            push("e.task_id =", SqlValue::Text(t.clone()));
        }
        if let Some(s) = &f.subject {
            push("e.subject =", SqlValue::Text(s.clone()));
        }
        if let Some(t) = &f.thing {
            push("e.thing =", SqlValue::Text(t.clone()));
        }
        if let Some(s) = f.state {
            push("e.status =", SqlValue::Text(s.as_str().into()));
        }
        if let Some((start, end)) = f.range {
            push(
                "COALESCE(e.start_ms, t.start_ms) >=",
                SqlValue::Integer(start),
            );
            push(
                "COALESCE(e.start_ms, t.start_ms) <=",
                SqlValue::Integer(end),
            );
        }
        let cols = EXEC_COLUMNS
            .split(", ")
            .map(|c| format!("e.{c} AS {c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT {cols} FROM mitigation_executions e JOIN mitigation_tasks t ON t.kind = e.kind AND t.task_id = e.task_id WHERE {} ORDER BY t.start_ms, e.task_id, e.seq LIMIT {limit} OFFSET {offset}",
            conds.join(" AND ")
        );
        self.with(|c| {
            let mut stmt = c.prepare(&sql)?;
            let rows = stmt.query_map(params_from_iter(args), exec_row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn mitigation_tasks_in_progress(&self) -> Result<Vec<(TaskKind, String)>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT kind, task_id FROM mitigation_tasks WHERE status = 'IN_PROGRESS' ORDER BY start_ms",
            )?;
            let rows = stmt.query_map([], |r| {
                let kind: String = r.get("kind")?;
                Ok((
                    if kind == "audit" {
                        TaskKind::Audit
                    } else {
                        TaskKind::Detect
                    },
                    r.get("task_id")?,
                ))
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn mitigation_violations(
        &self,
        sel: &ViolationSelector,
        now: EpochMillis,
    ) -> Result<Vec<ViolationRef>, StoreError> {
        let (cond, args): (String, Vec<SqlValue>) = match sel {
            ViolationSelector::Ids(ids) => (
                format!(
                    "violation_id IN ({})",
                    (1..=ids.len())
                        .map(|i| format!("?{i}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                ids.iter().map(|i| SqlValue::Text(i.clone())).collect(),
            ),
            ViolationSelector::Profile { profile, behavior } => match behavior {
                Some(b) => (
                    "profile = ?1 AND behavior_name = ?2".into(),
                    vec![SqlValue::Text(profile.clone()), SqlValue::Text(b.clone())],
                ),
                None => ("profile = ?1".into(), vec![SqlValue::Text(profile.clone())]),
            },
        };
        let n = args.len() + 1;
        let sql = format!(
            "SELECT violation_id, MIN(thing) AS thing, MIN(profile) AS profile, MIN(behavior_name) AS behavior_name, MAX(suppressed) AS suppressed, MAX(active) AS active, MIN(t0) AS first_ms, MAX(t1) AS last_ms FROM (
                SELECT violation_id, thing, profile, behavior_name, suppressed, 1 AS active, start_ms AS t0, ?{n} AS t1 FROM active_violations WHERE {cond}
                UNION ALL
                SELECT violation_id, thing, profile, behavior_name, suppressed, 0 AS active, event_ms AS t0, event_ms AS t1 FROM violation_events WHERE {cond}
            ) GROUP BY violation_id ORDER BY MIN(t0), violation_id"
        );
        let mut all = args;
        all.push(SqlValue::Integer(now));
        self.with(|c| {
            let mut stmt = c.prepare(&sql)?;
            let rows = stmt.query_map(params_from_iter(all), |r| {
                Ok(ViolationRef {
                    violation_id: r.get("violation_id")?,
                    thing: r.get("thing")?,
                    profile: r.get("profile")?,
                    behavior: r.get("behavior_name")?,
                    suppressed: r.get::<_, i64>("suppressed")? != 0,
                    active: r.get::<_, i64>("active")? != 0,
                    first_ms: r.get("first_ms")?,
                    last_ms: r.get("last_ms")?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn mitigation_violation_json(
        &self,
        violation_id: &str,
    ) -> Result<Option<serde_json::Value>, StoreError> {
        type Cols = (String, String, String, Option<String>, String, i64);
        let to_json = |(thing, profile, behavior, value, kind, at): Cols| -> Result<serde_json::Value, StoreError> {
            let behavior: serde_json::Value = serde_json::from_str(&behavior)?;
            let value: Option<serde_json::Value> =
                value.map(|v| serde_json::from_str(&v)).transpose()?;
            Ok(serde_json::json!({
                "violationId": violation_id,
                "thingName": thing,
                "securityProfileName": profile,
                "behavior": behavior,
                "metricValue": value,
                "violationEventType": kind,
                "violationEventTime": thingward_models::time::millis_to_seconds(at),
            }))
        };
        let row = self.with(|c| {
            let active: Option<Cols> = c
                .query_row(
                    "SELECT thing, profile, behavior, last_value AS metric_value, 'in-alarm' AS event_type, COALESCE(last_violation_ms, start_ms) AS event_ms FROM active_violations WHERE violation_id = ?1",
                    [violation_id],
                    |r| Ok((r.get("thing")?, r.get("profile")?, r.get("behavior")?, r.get("metric_value")?, r.get("event_type")?, r.get("event_ms")?)),
                )
                .optional()?;
            if active.is_some() {
                return Ok(active);
            }
            Ok(c.query_row(
                "SELECT thing, profile, behavior, metric_value, event_type, event_ms FROM violation_events WHERE violation_id = ?1 ORDER BY seq DESC LIMIT 1",
                [violation_id],
                |r| Ok((r.get("thing")?, r.get("profile")?, r.get("behavior")?, r.get("metric_value")?, r.get("event_type")?, r.get("event_ms")?)),
            )
            .optional()?)
        })?;
        row.map(to_json).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(id: &str, start: i64) -> TaskRecord {
        TaskRecord {
            kind: TaskKind::Detect,
            task_id: id.into(),
            state: TaskState::InProgress,
            start_ms: start,
            end_ms: None,
            client_request_token: Some("tok".into()),
            request: serde_json::json!({}),
            actions: serde_json::json!([]),
        }
    }

    fn exec(seq: i64) -> ExecutionRecord {
        ExecutionRecord {
            task_id: "t".into(),
            seq,
            subject: format!("v{seq}"),
            check_name: None,
            thing: Some("cam".into()),
            action_name: "a".into(),
            action_id: "id".into(),
            state: ExecState::Pending,
            start_ms: None,
            end_ms: None,
            error_code: None,
            message: None,
        }
    }

    #[test]
    fn ending_a_task_marks_its_unfinished_executions_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(&dir.path().join("thingward.db")).expect("store");
        assert_eq!(
            store
                .mitigation_task_insert(&task("t", 5), &[exec(0), exec(1)])
                .expect("insert"),
            TaskInsert::Inserted
        );
        assert_eq!(
            store
                .mitigation_task_insert(&task("t", 6), &[])
                .expect("insert again"),
            TaskInsert::Exists(Some("tok".into()))
        );
        store
            .mitigation_execution_set(
                TaskKind::Detect,
                "t",
                0,
                ExecState::Succeeded,
                Some(7),
                Some(8),
                None,
                None,
            )
            .expect("set");
        assert_eq!(
            store.mitigation_tasks_in_progress().expect("running"),
            [(TaskKind::Detect, "t".to_owned())]
        );
        assert!(
            store
                .mitigation_task_end(
                    TaskKind::Detect,
                    "t",
                    TaskState::Failed,
                    ExecState::Canceled,
                    true,
                    Some(STOPPED_MESSAGE),
                    9
                )
                .expect("end")
        );
        assert!(
            !store
                .mitigation_task_end(
                    TaskKind::Detect,
                    "t",
                    TaskState::Canceled,
                    ExecState::Canceled,
                    true,
                    None,
                    10
                )
                .expect("end twice")
        );
        let got = store
            .mitigation_executions(TaskKind::Detect, &ExecutionFilter::default(), 0, 10)
            .expect("list");
        assert_eq!(
            got.iter().map(|e| e.state).collect::<Vec<_>>(),
            [ExecState::Succeeded, ExecState::Canceled]
        );
        assert_eq!(got[1].message.as_deref(), Some(STOPPED_MESSAGE));
        let t = store
            .mitigation_task_get(TaskKind::Detect, "t")
            .expect("get")
            .expect("task");
        assert_eq!((t.state, t.end_ms), (TaskState::Failed, Some(9)));
        assert!(
            store
                .mitigation_task_get(TaskKind::Audit, "t")
                .expect("get")
                .is_none(),
            "audit and detect task ids are apart"
        );
    }
}
