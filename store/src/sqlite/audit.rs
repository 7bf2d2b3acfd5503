//! [`crate::AuditStore`] on SQLite.

use super::SqliteStore;
use crate::StoreError;
use crate::audit::*;
use rusqlite::types::Value as SqlValue;
use rusqlite::{OptionalExtension, Row, params, params_from_iter};
use std::collections::BTreeMap;
use thingward_models::time::EpochMillis;

/// The tables of this module (applied at open; `IF NOT EXISTS`).
pub(super) const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS scheduled_audits (
    name TEXT PRIMARY KEY,
    frequency TEXT NOT NULL,
    day_of_month TEXT,
    day_of_week TEXT,
    checks TEXT NOT NULL,
    tags TEXT,
    created_ms INTEGER NOT NULL,
    last_run_ms INTEGER
);
CREATE TABLE IF NOT EXISTS audit_tasks (
    task_id TEXT PRIMARY KEY,
    task_type TEXT NOT NULL,
    status TEXT NOT NULL,
    start_ms INTEGER NOT NULL,
    end_ms INTEGER,
    scheduled_audit_name TEXT,
    checks TEXT NOT NULL,
    details TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_tasks_by_start ON audit_tasks (start_ms);
CREATE TABLE IF NOT EXISTS audit_findings (
    finding_id TEXT PRIMARY KEY,
    task_id TEXT NOT NULL,
    check_name TEXT NOT NULL,
    task_start_ms INTEGER NOT NULL,
    finding_ms INTEGER NOT NULL,
    severity TEXT NOT NULL,
    resource_key TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_findings_by_task ON audit_findings (task_id, check_name);
CREATE INDEX IF NOT EXISTS audit_findings_by_time ON audit_findings (finding_ms);
CREATE INDEX IF NOT EXISTS audit_findings_by_resource ON audit_findings (check_name, resource_key);
CREATE TABLE IF NOT EXISTS audit_suppressions (
    check_name TEXT NOT NULL,
    resource_key TEXT NOT NULL,
    expiration_ms INTEGER,
    indefinitely INTEGER NOT NULL,
    description TEXT,
    created_ms INTEGER NOT NULL,
    PRIMARY KEY (check_name, resource_key)
);
"#;

const SCHEDULED_COLUMNS: &str =
    "name, frequency, day_of_month, day_of_week, checks, created_ms, last_run_ms";

fn scheduled_row(r: &Row<'_>) -> rusqlite::Result<(ScheduledAuditRecord, String)> {
    Ok((
        ScheduledAuditRecord {
            name: r.get("name")?,
            frequency: r.get("frequency")?,
            day_of_month: r.get("day_of_month")?,
            day_of_week: r.get("day_of_week")?,
            checks: Vec::new(),
            created_ms: r.get("created_ms")?,
            last_run_ms: r.get("last_run_ms")?,
        },
        r.get("checks")?,
    ))
}

fn scheduled_decode(
    (mut rec, checks): (ScheduledAuditRecord, String),
) -> Result<ScheduledAuditRecord, StoreError> {
    rec.checks = serde_json::from_str(&checks)?;
    Ok(rec)
}

const TASK_COLUMNS: &str =
    "task_id, task_type, status, start_ms, end_ms, scheduled_audit_name, checks, details";

type RawTask = (AuditTaskRecord, String, String, String);

fn task_row(r: &Row<'_>) -> rusqlite::Result<RawTask> {
    Ok((
        AuditTaskRecord {
            task_id: r.get("task_id")?,
            task_type: r.get("task_type")?,
            status: TaskStatus::Failed,
            start_ms: r.get("start_ms")?,
            end_ms: r.get("end_ms")?,
            scheduled_audit_name: r.get("scheduled_audit_name")?,
            checks: Vec::new(),
            details: BTreeMap::new(),
        },
        r.get("status")?,
        r.get("checks")?,
        r.get("details")?,
    ))
}

fn task_decode((mut rec, status, checks, details): RawTask) -> Result<AuditTaskRecord, StoreError> {
    // Written from TaskStatus::as_str, so it parses.
    rec.status = TaskStatus::parse(&status).unwrap_or(TaskStatus::Failed);
    rec.checks = serde_json::from_str(&checks)?;
    rec.details = serde_json::from_str(&details)?;
    Ok(rec)
}

/// Selects findings with their suppression state judged at `?1`.
const FINDING_SELECT: &str = "SELECT f.finding_id AS finding_id, f.task_id AS task_id, f.check_name AS check_name, f.task_start_ms AS task_start_ms, f.finding_ms AS finding_ms, f.severity AS severity, f.resource_key AS resource_key, f.body AS body, EXISTS (SELECT 1 FROM audit_suppressions s WHERE s.check_name = f.check_name AND s.resource_key = f.resource_key AND (s.indefinitely = 1 OR s.expiration_ms > ?1)) AS is_suppressed FROM audit_findings f";

fn finding_row(r: &Row<'_>) -> rusqlite::Result<FindingRecord> {
    Ok(FindingRecord {
        finding_id: r.get("finding_id")?,
        task_id: r.get("task_id")?,
        check_name: r.get("check_name")?,
        task_start_ms: r.get("task_start_ms")?,
        finding_ms: r.get("finding_ms")?,
        severity: r.get("severity")?,
        resource_key: r.get("resource_key")?,
        body: r.get("body")?,
        is_suppressed: r.get("is_suppressed")?,
    })
}

const SUPPRESSION_COLUMNS: &str =
    "check_name, resource_key, expiration_ms, indefinitely, description, created_ms";

fn suppression_row(r: &Row<'_>) -> rusqlite::Result<SuppressionRecord> {
    Ok(SuppressionRecord {
        check_name: r.get("check_name")?,
        resource_key: r.get("resource_key")?,
        expiration_ms: r.get("expiration_ms")?,
        indefinitely: r.get("indefinitely")?,
        description: r.get("description")?,
        created_ms: r.get("created_ms")?,
    })
}

/// The `account_settings` key of the account audit configuration.
const AUDIT_CONFIG_KEY: &str = "audit_configuration";

impl AuditStore for SqliteStore {
    fn audit_config_get(&self) -> Result<Option<AuditConfigRecord>, StoreError> {
        self.account_setting_get(AUDIT_CONFIG_KEY)
    }

    fn audit_config_put(&self, config: &AuditConfigRecord) -> Result<(), StoreError> {
        self.account_setting_put(AUDIT_CONFIG_KEY, config)
    }

    fn audit_config_delete(&self, scheduled_too: bool) -> Result<bool, StoreError> {
        self.with(|c| {
            let tx = c.transaction()?;
            let n = tx.execute(
                "DELETE FROM account_settings WHERE key = ?1",
                [AUDIT_CONFIG_KEY],
            )?;
            if scheduled_too {
                tx.execute("DELETE FROM scheduled_audits", [])?;
            }
            tx.commit()?;
            Ok(n > 0)
        })
    }

    fn scheduled_audit_insert(
        &self,
        rec: &ScheduledAuditRecord,
        tags: Option<&serde_json::Value>,
    ) -> Result<bool, StoreError> {
        let checks = serde_json::to_string(&rec.checks)?;
        self.with(|c| {
            Ok(c.execute(
                "INSERT OR IGNORE INTO scheduled_audits (name, frequency, day_of_month, day_of_week, checks, tags, created_ms, last_run_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![rec.name, rec.frequency, rec.day_of_month, rec.day_of_week, checks, super::tags_json(tags), rec.created_ms, rec.last_run_ms],
            )? == 1)
        })
    }

    fn scheduled_audit_update(&self, rec: &ScheduledAuditRecord) -> Result<bool, StoreError> {
        let checks = serde_json::to_string(&rec.checks)?;
        self.with(|c| {
            Ok(c.execute(
                "UPDATE scheduled_audits SET frequency = ?2, day_of_month = ?3, day_of_week = ?4, checks = ?5 WHERE name = ?1",
                params![rec.name, rec.frequency, rec.day_of_month, rec.day_of_week, checks],
            )? == 1)
        })
    }

    fn scheduled_audit_ran(&self, name: &str, at: EpochMillis) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "UPDATE scheduled_audits SET last_run_ms = ?2 WHERE name = ?1",
                params![name, at],
            )?;
            Ok(())
        })
    }

    fn scheduled_audit_get(&self, name: &str) -> Result<Option<ScheduledAuditRecord>, StoreError> {
        self.with(|c| {
            c.query_row(
                &format!("SELECT {SCHEDULED_COLUMNS} FROM scheduled_audits WHERE name = ?1"),
                [name],
                scheduled_row,
            )
            .optional()?
            .map(scheduled_decode)
            .transpose()
        })
    }

    fn scheduled_audits_all(&self) -> Result<Vec<ScheduledAuditRecord>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {SCHEDULED_COLUMNS} FROM scheduled_audits ORDER BY name"
            ))?;
            let rows = stmt.query_map([], scheduled_row)?;
            rows.map(|r| scheduled_decode(r?)).collect()
        })
    }

    fn scheduled_audit_delete(&self, name: &str) -> Result<bool, StoreError> {
        self.with(|c| Ok(c.execute("DELETE FROM scheduled_audits WHERE name = ?1", [name])? == 1))
    }

    fn audit_task_insert(&self, rec: &AuditTaskRecord) -> Result<(), StoreError> {
        let checks = serde_json::to_string(&rec.checks)?;
        let details = serde_json::to_string(&rec.details)?;
        self.with(|c| {
            c.execute(
                &format!("INSERT INTO audit_tasks ({TASK_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"),
                params![rec.task_id, rec.task_type, rec.status.as_str(), rec.start_ms, rec.end_ms, rec.scheduled_audit_name, checks, details],
            )?;
            Ok(())
        })
    }

    fn audit_task_update(&self, rec: &AuditTaskRecord) -> Result<(), StoreError> {
        let details = serde_json::to_string(&rec.details)?;
        self.with(|c| {
            c.execute(
                "UPDATE audit_tasks SET status = ?2, end_ms = ?3, details = ?4 WHERE task_id = ?1",
                params![rec.task_id, rec.status.as_str(), rec.end_ms, details],
            )?;
            Ok(())
        })
    }

    fn audit_task_get(&self, task_id: &str) -> Result<Option<AuditTaskRecord>, StoreError> {
        self.with(|c| {
            c.query_row(
                &format!("SELECT {TASK_COLUMNS} FROM audit_tasks WHERE task_id = ?1"),
                [task_id],
                task_row,
            )
            .optional()?
            .map(task_decode)
            .transpose()
        })
    }

    fn audit_tasks_list(
        &self,
        start_ms: EpochMillis,
        end_ms: EpochMillis,
        task_type: Option<&str>,
        status: Option<TaskStatus>,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<AuditTaskRecord>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {TASK_COLUMNS} FROM audit_tasks WHERE start_ms >= ?1 AND start_ms <= ?2 AND (?3 IS NULL OR task_type = ?3) AND (?4 IS NULL OR status = ?4) ORDER BY start_ms DESC, task_id LIMIT ?5 OFFSET ?6"
            ))?;
            let rows = stmt.query_map(
                params![start_ms, end_ms, task_type, status.map(TaskStatus::as_str), limit as i64, offset as i64],
                task_row,
            )?;
            rows.map(|r| task_decode(r?)).collect()
        })
    }

    fn audit_tasks_fail_interrupted(
        &self,
        now: EpochMillis,
        message: &str,
    ) -> Result<usize, StoreError> {
        let interrupted: Vec<AuditTaskRecord> = self.with(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {TASK_COLUMNS} FROM audit_tasks WHERE status = 'IN_PROGRESS'"
            ))?;
            let rows = stmt.query_map([], task_row)?;
            rows.map(|r| task_decode(r?)).collect()
        })?;
        for mut task in interrupted.iter().cloned() {
            task.status = TaskStatus::Failed;
            task.end_ms = Some(now);
            for d in task.details.values_mut() {
                if d.check_run_status == "IN_PROGRESS" {
                    d.check_run_status = "FAILED".into();
                    d.message = Some(message.to_owned());
                }
            }
            self.audit_task_update(&task)?;
        }
        Ok(interrupted.len())
    }

    fn audit_latest_check_details(&self) -> Result<BTreeMap<String, CheckDetails>, StoreError> {
        let rows = self.with(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT details FROM audit_tasks WHERE status IN ('COMPLETED', 'CANCELED') ORDER BY start_ms DESC LIMIT 200",
            )?;
            let rows = stmt.query_map([], |r| r.get::<_, String>("details"))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })?;
        let mut latest = BTreeMap::new();
        for details in rows {
            let details: BTreeMap<String, CheckDetails> = serde_json::from_str(&details)?;
            for (check, d) in details {
                if d.check_run_status.starts_with("COMPLETED_") {
                    latest.entry(check).or_insert(d);
                }
            }
        }
        Ok(latest)
    }

    fn findings_insert(&self, findings: &[FindingRecord]) -> Result<(), StoreError> {
        let events = findings
            .iter()
            .filter(|f| !f.is_suppressed)
            .map(FindingRecord::outbox_event)
            .collect::<Result<Vec<_>, _>>()?;
        let last = self.with(|c| {
            let tx = c.transaction()?;
            let mut last = None;
            for e in &events {
                last = last.max(super::outbox::insert(&tx, e)?);
            }
            {
                let mut stmt = tx.prepare_cached(
                    "INSERT INTO audit_findings (finding_id, task_id, check_name, task_start_ms, finding_ms, severity, resource_key, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )?;
                for f in findings {
                    stmt.execute(params![f.finding_id, f.task_id, f.check_name, f.task_start_ms, f.finding_ms, f.severity, f.resource_key, f.body])?;
                }
            }
            tx.commit()?;
            Ok(last)
        })?;
        if let Some(seq) = last {
            self.outbox_announce(seq);
        }
        Ok(())
    }

    fn finding_get(
        &self,
        finding_id: &str,
        now_ms: EpochMillis,
    ) -> Result<Option<FindingRecord>, StoreError> {
        self.with(|c| {
            Ok(c.query_row(
                &format!("{FINDING_SELECT} WHERE f.finding_id = ?2"),
                params![now_ms, finding_id],
                finding_row,
            )
            .optional()?)
        })
    }

    fn findings_list(
        &self,
        filter: &FindingFilter,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<FindingRecord>, StoreError> {
        let mut args: Vec<SqlValue> = vec![SqlValue::Integer(filter.now_ms)];
        let mut conds: Vec<String> = Vec::new();
        let mut push = |cond: &str, v: SqlValue| {
            args.push(v);
            conds.push(format!("{cond} ?{}", args.len()));
        };
        if let Some(t) = &filter.task_id {
            push("f.task_id =", SqlValue::Text(t.clone()));
        }
        if let Some(n) = &filter.check_name {
            push("f.check_name =", SqlValue::Text(n.clone()));
        }
        if let Some(k) = &filter.resource_key {
            push("f.resource_key =", SqlValue::Text(k.clone()));
        }
        if let Some(s) = filter.start_ms {
            push("f.finding_ms >=", SqlValue::Integer(s));
        }
        if let Some(e) = filter.end_ms {
            push("f.finding_ms <=", SqlValue::Integer(e));
        }
        if !filter.include_suppressed {
            conds.push("NOT EXISTS (SELECT 1 FROM audit_suppressions s WHERE s.check_name = f.check_name AND s.resource_key = f.resource_key AND (s.indefinitely = 1 OR s.expiration_ms > ?1))".into());
        }
        let where_sql = if conds.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conds.join(" AND "))
        };
        args.push(SqlValue::Integer(limit as i64));
        args.push(SqlValue::Integer(offset as i64));
        let n = args.len();
        let sql = format!(
            "{FINDING_SELECT}{where_sql} ORDER BY f.finding_ms, f.finding_id LIMIT ?{} OFFSET ?{n}",
            n - 1
        );
        self.with(|c| {
            let mut stmt = c.prepare_cached(&sql)?;
            let rows = stmt.query_map(params_from_iter(args), finding_row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn task_findings(
        &self,
        task_id: &str,
        now_ms: EpochMillis,
    ) -> Result<Vec<FindingRecord>, StoreError> {
        self.findings_list(
            &FindingFilter {
                task_id: Some(task_id.to_owned()),
                include_suppressed: true,
                now_ms,
                ..FindingFilter::default()
            },
            0,
            usize::MAX >> 1,
        )
    }

    fn findings_purge_before(&self, before_ms: EpochMillis) -> Result<usize, StoreError> {
        self.with(|c| {
            Ok(c.execute(
                "DELETE FROM audit_findings WHERE finding_ms < ?1",
                [before_ms],
            )?)
        })
    }

    fn suppression_insert(&self, rec: &SuppressionRecord) -> Result<bool, StoreError> {
        self.with(|c| {
            Ok(c.execute(
                &format!("INSERT OR IGNORE INTO audit_suppressions ({SUPPRESSION_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"),
                params![rec.check_name, rec.resource_key, rec.expiration_ms, rec.indefinitely, rec.description, rec.created_ms],
            )? == 1)
        })
    }

    fn suppression_update(&self, rec: &SuppressionRecord) -> Result<bool, StoreError> {
        self.with(|c| {
            Ok(c.execute(
                "UPDATE audit_suppressions SET expiration_ms = ?3, indefinitely = ?4, description = ?5 WHERE check_name = ?1 AND resource_key = ?2",
                params![rec.check_name, rec.resource_key, rec.expiration_ms, rec.indefinitely, rec.description],
            )? == 1)
        })
    }

    fn suppression_get(
        &self,
        check_name: &str,
        resource_key: &str,
    ) -> Result<Option<SuppressionRecord>, StoreError> {
        self.with(|c| {
            Ok(c.query_row(
                &format!("SELECT {SUPPRESSION_COLUMNS} FROM audit_suppressions WHERE check_name = ?1 AND resource_key = ?2"),
                params![check_name, resource_key],
                suppression_row,
            )
            .optional()?)
        })
    }

    fn suppression_delete(&self, check_name: &str, resource_key: &str) -> Result<bool, StoreError> {
        self.with(|c| {
            Ok(c.execute(
                "DELETE FROM audit_suppressions WHERE check_name = ?1 AND resource_key = ?2",
                params![check_name, resource_key],
            )? == 1)
        })
    }

    fn suppressions_list(
        &self,
        check_name: Option<&str>,
        resource_key: Option<&str>,
        ascending: bool,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<SuppressionRecord>, StoreError> {
        let order = if ascending {
            "indefinitely, expiration_ms, check_name, resource_key"
        } else {
            "indefinitely DESC, expiration_ms DESC, check_name, resource_key"
        };
        self.with(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {SUPPRESSION_COLUMNS} FROM audit_suppressions WHERE (?1 IS NULL OR check_name = ?1) AND (?2 IS NULL OR resource_key = ?2) ORDER BY {order} LIMIT ?3 OFFSET ?4"
            ))?;
            let rows = stmt.query_map(
                params![check_name, resource_key, limit as i64, offset as i64],
                suppression_row,
            )?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn suppressions_active(
        &self,
        now_ms: EpochMillis,
    ) -> Result<std::collections::HashSet<(String, String)>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT check_name, resource_key FROM audit_suppressions WHERE indefinitely = 1 OR expiration_ms > ?1",
            )?;
            let rows =
                stmt.query_map([now_ms], |r| Ok((r.get("check_name")?, r.get("resource_key")?)))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(&dir.path().join("thingward.db")).expect("store");
        (dir, store)
    }

    fn finding(id: &str, task: &str, check: &str, key: &str, at: EpochMillis) -> FindingRecord {
        FindingRecord {
            finding_id: id.into(),
            task_id: task.into(),
            check_name: check.into(),
            task_start_ms: 0,
            finding_ms: at,
            severity: "HIGH".into(),
            resource_key: key.into(),
            body: "{}".into(),
            is_suppressed: false,
        }
    }

    fn task(id: &str, status: TaskStatus, start_ms: EpochMillis) -> AuditTaskRecord {
        let mut details = BTreeMap::new();
        details.insert(
            "CA_CERTIFICATE_EXPIRING_CHECK".to_owned(),
            CheckDetails {
                check_run_status: "IN_PROGRESS".into(),
                ..CheckDetails::default()
            },
        );
        AuditTaskRecord {
            task_id: id.into(),
            task_type: "ON_DEMAND_AUDIT_TASK".into(),
            status,
            start_ms,
            end_ms: None,
            scheduled_audit_name: None,
            checks: vec!["CA_CERTIFICATE_EXPIRING_CHECK".into()],
            details,
        }
    }

    #[test]
    fn a_suppression_hides_findings_until_it_expires() {
        let (_d, store) = store();
        store
            .findings_insert(&[
                finding("f1", "t1", "C", "k1", 10),
                finding("f2", "t1", "C", "k2", 20),
                finding("f3", "t2", "D", "k1", 30),
            ])
            .expect("insert");
        assert!(
            store
                .suppression_insert(&SuppressionRecord {
                    check_name: "C".into(),
                    resource_key: "k1".into(),
                    expiration_ms: Some(100),
                    indefinitely: false,
                    description: None,
                    created_ms: 0,
                })
                .expect("suppress")
        );
        let ids = |include_suppressed, now_ms| -> Vec<(String, bool)> {
            store
                .findings_list(
                    &FindingFilter {
                        include_suppressed,
                        now_ms,
                        ..FindingFilter::default()
                    },
                    0,
                    10,
                )
                .expect("list")
                .into_iter()
                .map(|f| (f.finding_id, f.is_suppressed))
                .collect()
        };
        assert_eq!(ids(false, 50), [("f2".into(), false), ("f3".into(), false)]);
        assert_eq!(
            ids(true, 50),
            [
                ("f1".into(), true),
                ("f2".into(), false),
                ("f3".into(), false)
            ]
        );
        // Expired: it no longer applies.
        assert_eq!(ids(false, 100).len(), 3);
        assert!(
            store
                .finding_get("f1", 50)
                .expect("get")
                .expect("f1")
                .is_suppressed
        );
        assert!(
            !store
                .finding_get("f1", 150)
                .expect("get")
                .expect("f1")
                .is_suppressed
        );
        assert_eq!(store.suppressions_active(50).expect("active").len(), 1);
        assert!(store.suppressions_active(100).expect("active").is_empty());
        assert_eq!(store.task_findings("t1", 50).expect("task").len(), 2);
        let page = store
            .findings_list(
                &FindingFilter {
                    check_name: Some("C".into()),
                    include_suppressed: true,
                    now_ms: 0,
                    start_ms: Some(15),
                    ..FindingFilter::default()
                },
                0,
                10,
            )
            .expect("filtered");
        assert_eq!(page.len(), 1);
        assert_eq!(store.findings_purge_before(25).expect("purge"), 2);
        assert!(store.finding_get("f1", 0).expect("get").is_none());
    }

    #[test]
    fn interrupted_tasks_fail_at_start_up() {
        let (_d, store) = store();
        store
            .audit_task_insert(&task("t1", TaskStatus::InProgress, 5))
            .expect("insert");
        let mut done = task("t2", TaskStatus::Completed, 6);
        done.details.clear();
        store.audit_task_insert(&done).expect("insert");
        assert_eq!(
            store
                .audit_tasks_fail_interrupted(9, "restarted")
                .expect("fail"),
            1
        );
        let t1 = store.audit_task_get("t1").expect("get").expect("t1");
        assert_eq!(t1.status, TaskStatus::Failed);
        assert_eq!(t1.end_ms, Some(9));
        let d = &t1.details["CA_CERTIFICATE_EXPIRING_CHECK"];
        assert_eq!(d.check_run_status, "FAILED");
        assert_eq!(d.message.as_deref(), Some("restarted"));
        let listed = store
            .audit_tasks_list(0, 10, None, Some(TaskStatus::Completed), 0, 10)
            .expect("list");
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].task_id, "t2");
        assert_eq!(
            store
                .audit_tasks_list(0, 5, None, None, 0, 10)
                .expect("list")
                .len(),
            1
        );
    }

    #[test]
    fn the_audit_configuration_and_scheduled_audits_round_trip() {
        let (_d, store) = store();
        assert!(store.audit_config_get().expect("get").is_none());
        let mut config = AuditConfigRecord::default();
        config.checks.insert(
            "DEVICE_CERTIFICATE_AGE_CHECK".into(),
            CheckConfig {
                enabled: true,
                configuration: [("CERT_AGE_THRESHOLD_IN_DAYS".to_owned(), "30".to_owned())].into(),
            },
        );
        store.audit_config_put(&config).expect("put");
        assert_eq!(store.audit_config_get().expect("get"), Some(config));
        let rec = ScheduledAuditRecord {
            name: "daily".into(),
            frequency: "DAILY".into(),
            day_of_month: None,
            day_of_week: None,
            checks: vec!["DEVICE_CERTIFICATE_AGE_CHECK".into()],
            created_ms: 1,
            last_run_ms: None,
        };
        assert!(store.scheduled_audit_insert(&rec, None).expect("insert"));
        assert!(!store.scheduled_audit_insert(&rec, None).expect("dup"));
        store.scheduled_audit_ran("daily", 77).expect("ran");
        assert_eq!(
            store
                .scheduled_audit_get("daily")
                .expect("get")
                .expect("daily")
                .last_run_ms,
            Some(77)
        );
        assert!(store.audit_config_delete(true).expect("delete"));
        assert!(store.scheduled_audits_all().expect("all").is_empty());
    }
}
