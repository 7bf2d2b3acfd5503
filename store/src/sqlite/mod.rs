//! The SQLite implementation of the store interface: [`SqliteStore`].
//!
//! Inherently SQLite: the schema and its migrations (applied at open), a second, query-only
//! connection for the feed's reads, and the outbox's watch channel announced after each commit.

mod audit;
mod certs;
mod destinations;
mod fleet;
mod fleet_rows;
mod maintenance;
mod mitigation;
mod models;
mod outbox;
mod profiles;
mod registry;
mod violations;

use crate::StoreError;
use rusqlite::Connection;
use std::path::Path;
use std::sync::Mutex;

/// The metadata store on SQLite (bundled), one database file in the data directory.
///
/// One writing connection behind a mutex: every statement is short, and the hot path
/// (datapoints) never touches SQLite — only alarm transitions do.
#[derive(Debug)]
pub struct SqliteStore {
    conn: Mutex<Connection>,
    /// A second, query-only connection for the feed's reads (outbox, cursors), so delivery
    /// workers and SSE streams never wait behind the violation writer's commits (WAL readers
    /// do not block the writer, nor it them).
    reader: Mutex<Connection>,
    /// The outbox's highest sequence number, announced after each commit that appended to it
    /// (the feed's wake-up: workers and SSE streams wait on it; a watch never misses a change).
    outbox_tail: tokio::sync::watch::Sender<i64>,
}

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS security_profiles (
    name TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    tags TEXT
);
CREATE TABLE IF NOT EXISTS profile_targets (
    profile TEXT NOT NULL,
    target TEXT NOT NULL,
    PRIMARY KEY (profile, target)
);
CREATE TABLE IF NOT EXISTS custom_metrics (
    name TEXT PRIMARY KEY,
    metric_type TEXT NOT NULL,
    display_name TEXT,
    client_request_token TEXT,
    creation_ms INTEGER NOT NULL,
    modified_ms INTEGER NOT NULL,
    tags TEXT
);
CREATE TABLE IF NOT EXISTS dimensions (
    name TEXT PRIMARY KEY,
    dimension_type TEXT NOT NULL,
    string_values TEXT NOT NULL,
    client_request_token TEXT,
    creation_ms INTEGER NOT NULL,
    modified_ms INTEGER NOT NULL,
    tags TEXT
);
CREATE TABLE IF NOT EXISTS things (
    name TEXT PRIMARY KEY,
    thing_id TEXT NOT NULL,
    thing_type_name TEXT,
    attributes TEXT NOT NULL,
    version INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS thing_groups (
    name TEXT PRIMARY KEY,
    group_id TEXT NOT NULL,
    parent TEXT,
    description TEXT,
    attributes TEXT NOT NULL,
    creation_ms INTEGER NOT NULL,
    version INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS thing_group_members (
    group_name TEXT NOT NULL,
    thing_name TEXT NOT NULL,
    PRIMARY KEY (group_name, thing_name)
);
CREATE INDEX IF NOT EXISTS thing_group_members_by_thing ON thing_group_members (thing_name);
CREATE TABLE IF NOT EXISTS active_violations (
    violation_id TEXT PRIMARY KEY,
    thing TEXT NOT NULL,
    profile TEXT NOT NULL,
    behavior_name TEXT NOT NULL,
    behavior TEXT NOT NULL,
    criteria_type TEXT,
    suppressed INTEGER NOT NULL,
    last_value TEXT,
    last_violation_ms INTEGER,
    start_ms INTEGER NOT NULL,
    verification_state TEXT,
    verification_description TEXT,
    UNIQUE (thing, profile, behavior_name)
);
CREATE TABLE IF NOT EXISTS violation_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    violation_id TEXT NOT NULL,
    thing TEXT NOT NULL,
    profile TEXT NOT NULL,
    behavior_name TEXT NOT NULL,
    behavior TEXT NOT NULL,
    criteria_type TEXT,
    suppressed INTEGER NOT NULL,
    metric_value TEXT,
    event_type TEXT NOT NULL,
    event_ms INTEGER NOT NULL,
    verification_state TEXT,
    verification_description TEXT
);
CREATE INDEX IF NOT EXISTS violation_events_by_time ON violation_events (event_ms);
CREATE INDEX IF NOT EXISTS violation_events_by_id ON violation_events (violation_id);
CREATE TABLE IF NOT EXISTS behavior_models (
    profile TEXT NOT NULL,
    behavior TEXT NOT NULL,
    metric TEXT NOT NULL,
    status TEXT NOT NULL,
    collection_start_ms INTEGER,
    last_refresh_ms INTEGER,
    version INTEGER NOT NULL,
    datapoints INTEGER NOT NULL,
    retries INTEGER NOT NULL,
    failing_since_ms INTEGER,
    last_attempt_ms INTEGER,
    last_error TEXT,
    artifact TEXT,
    expected TEXT,
    created_ms INTEGER NOT NULL,
    PRIMARY KEY (profile, behavior)
);
CREATE TABLE IF NOT EXISTS feed_outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    idempotency_key TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    profile TEXT,
    thing TEXT,
    behavior TEXT,
    check_name TEXT,
    severity TEXT,
    event_ms INTEGER NOT NULL,
    body TEXT NOT NULL,
    destination TEXT
);
CREATE INDEX IF NOT EXISTS feed_outbox_by_time ON feed_outbox (event_ms);
CREATE TABLE IF NOT EXISTS feed_destinations (
    name TEXT PRIMARY KEY,
    config TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    modified_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS feed_cursors (
    destination TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    delivered INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    dead_lettered INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    last_error_ms INTEGER,
    last_success_ms INTEGER
);
CREATE TABLE IF NOT EXISTS feed_dead_letters (
    destination TEXT NOT NULL,
    seq INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    error TEXT NOT NULL,
    dead_ms INTEGER NOT NULL,
    redrive INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (destination, seq)
);
CREATE TABLE IF NOT EXISTS mitigation_actions (
    name TEXT PRIMARY KEY,
    action_id TEXT NOT NULL,
    action_type TEXT NOT NULL,
    role_arn TEXT NOT NULL,
    params TEXT NOT NULL,
    tags TEXT,
    creation_ms INTEGER NOT NULL,
    modified_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS mitigation_tasks (
    kind TEXT NOT NULL,
    task_id TEXT NOT NULL,
    status TEXT NOT NULL,
    start_ms INTEGER NOT NULL,
    end_ms INTEGER,
    client_request_token TEXT,
    request TEXT NOT NULL,
    actions TEXT NOT NULL,
    PRIMARY KEY (kind, task_id)
);
CREATE TABLE IF NOT EXISTS mitigation_executions (
    kind TEXT NOT NULL,
    task_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    subject TEXT NOT NULL,
    check_name TEXT,
    thing TEXT,
    action_name TEXT NOT NULL,
    action_id TEXT NOT NULL,
    status TEXT NOT NULL,
    start_ms INTEGER,
    end_ms INTEGER,
    error_code TEXT,
    message TEXT,
    PRIMARY KEY (kind, task_id, seq)
);
CREATE INDEX IF NOT EXISTS mitigation_executions_by_subject ON mitigation_executions (kind, subject);
"#;

/// Columns added after the first release, as (table, column, type): added to an existing
/// database at open (SQLite's `ALTER TABLE … ADD COLUMN`; new rows fill them, old rows read NULL).
const ADDED_COLUMNS: &[(&str, &str, &str)] = &[
    ("active_violations", "ml_explanation", "TEXT"),
    ("violation_events", "ml_explanation", "TEXT"),
    ("active_violations", "incident_id", "INTEGER"),
    ("active_violations", "fleet_event_id", "INTEGER"),
    ("active_violations", "maintenance_window", "TEXT"),
    ("violation_events", "incident_id", "INTEGER"),
    ("violation_events", "fleet_event_id", "INTEGER"),
    ("violation_events", "maintenance_window", "TEXT"),
    // 1 while a held event waits for its feed row (fleet events); its release time after.
    ("violation_events", "held", "INTEGER NOT NULL DEFAULT 0"),
    ("violation_events", "released_ms", "INTEGER"),
];

/// Indexes over [`ADDED_COLUMNS`], created once they exist.
const ADDED_INDEXES: &str = r#"
CREATE INDEX IF NOT EXISTS violation_events_by_fleet_event ON violation_events (fleet_event_id) WHERE fleet_event_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS violation_events_by_incident ON violation_events (incident_id) WHERE incident_id IS NOT NULL;
"#;

/// Adds the [`ADDED_COLUMNS`] a database made by an older thingward lacks.
fn migrate(conn: &Connection) -> Result<(), StoreError> {
    for (table, column, kind) in ADDED_COLUMNS {
        let mut stmt = conn.prepare(&format!("PRAGMA table_info({table})"))?;
        let present = stmt
            .query_map([], |r| r.get::<_, String>("name"))?
            .collect::<Result<Vec<_>, _>>()?
            .iter()
            .any(|c| c == column);
        if !present {
            conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {kind}"))?;
            tracing::info!(table, column, "Migrated the metadata store: added a column");
        }
    }
    conn.execute_batch(ADDED_INDEXES)?;
    Ok(())
}

impl SqliteStore {
    /// Opens (creating) the SQLite database at `path` and brings its schema up to date.
    ///
    /// # Errors
    /// When the file cannot be opened or the schema cannot be applied.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        make_private(path)?;
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // FULL: a violation that was recorded survives power loss, not just a process crash.
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(SCHEMA)?;
        conn.execute_batch(certs::SCHEMA)?;
        conn.execute_batch(audit::SCHEMA)?;
        conn.execute_batch(fleet_rows::SCHEMA)?;
        migrate(&conn)?;
        let tail = conn.query_row(outbox::LAST_SEQ, [], |r| r.get("last_seq"))?;
        let reader = Connection::open(path)?;
        reader.pragma_update(None, "query_only", true)?;
        reader.busy_timeout(std::time::Duration::from_secs(5))?;
        // SQLite gives `-wal` and `-shm` the database file's mode; an older version may have
        // left them readable by others, so they are checked too (they exist once WAL is on).
        for companion in [WAL_SUFFIX, SHM_SUFFIX] {
            let mut name = path.as_os_str().to_owned();
            name.push(companion);
            restrict_if_present(Path::new(&name))?;
        }
        Ok(Self {
            conn: Mutex::new(conn),
            reader: Mutex::new(reader),
            outbox_tail: tokio::sync::watch::Sender::new(tail),
        })
    }

    /// Runs `f` with the connection.
    fn with<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.conn.lock().map_err(|_| StoreError::Poisoned)?;
        f(&mut conn)
    }

    /// Runs `f` with the query-only connection (committed data only).
    fn with_reader<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let conn = self.reader.lock().map_err(|_| StoreError::Poisoned)?;
        f(&conn)
    }
}

/// The database file's companions in WAL mode.
const WAL_SUFFIX: &str = "-wal";
const SHM_SUFFIX: &str = "-shm";

/// The mode of the database file and its companions: they hold every secret destination
/// header and the whole fleet's metadata, so only the service's user may read them.
const PRIVATE_FILE_MODE: u32 = 0o600;

/// Creates the database file with mode 0600 if it does not exist (before SQLite creates it with
/// the umask's mode), else restricts an existing one (an older version created it 0644).
fn make_private(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::OpenOptionsExt;
    let created = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(PRIVATE_FILE_MODE)
        .open(path);
    match created {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => restrict_if_present(path),
        Err(source) => Err(StoreError::Io {
            action: "create",
            path: path.to_owned(),
            source,
        }),
    }
}

/// Sets mode 0600 on `path` if it exists with any group or other permission bit, with a warning.
fn restrict_if_present(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::PermissionsExt;
    let io = |action, source| StoreError::Io {
        action,
        path: path.to_owned(),
        source,
    };
    let mode = match std::fs::metadata(path) {
        Ok(meta) => meta.permissions().mode() & 0o777,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io("read the permissions of", e)),
    };
    if mode & 0o077 != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(PRIVATE_FILE_MODE))
            .map_err(|e| io("restrict the permissions of", e))?;
        tracing::warn!(
            path = %path.display(),
            was = format!("{mode:o}"),
            "Restricted the metadata store file to mode 600: it was readable by others"
        );
    }
    Ok(())
}

/// Every area trait is implemented in this module's children.
impl crate::Store for SqliteStore {}

/// Serializes tags (kept verbatim, returned by no Describe call but kept for exports).
fn tags_json(tags: Option<&serde_json::Value>) -> Option<String> {
    tags.map(ToString::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prelude::*;
    use crate::{EventFilter, ViolationChange, ViolationFilter, ViolationRecord};

    /// The violation tables as thingward wrote them before ML Detect (no `ml_explanation`).
    const OLD_VIOLATIONS: &str = r#"
CREATE TABLE active_violations (
    violation_id TEXT PRIMARY KEY, thing TEXT NOT NULL, profile TEXT NOT NULL,
    behavior_name TEXT NOT NULL, behavior TEXT NOT NULL, criteria_type TEXT,
    suppressed INTEGER NOT NULL, last_value TEXT, last_violation_ms INTEGER,
    start_ms INTEGER NOT NULL, verification_state TEXT, verification_description TEXT,
    UNIQUE (thing, profile, behavior_name)
);
CREATE TABLE violation_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, violation_id TEXT NOT NULL, thing TEXT NOT NULL,
    profile TEXT NOT NULL, behavior_name TEXT NOT NULL, behavior TEXT NOT NULL,
    criteria_type TEXT, suppressed INTEGER NOT NULL, metric_value TEXT,
    event_type TEXT NOT NULL, event_ms INTEGER NOT NULL, verification_state TEXT,
    verification_description TEXT
);
INSERT INTO active_violations VALUES ('v1', 'cam', 'p', 'b', '{"name":"b","metric":"aws:all-bytes-out","criteria":{"mlDetectionConfig":{"confidenceLevel":"LOW"}}}', 'MACHINE_LEARNING', 0, '{"count":9}', 5, 5, NULL, NULL);
INSERT INTO violation_events (violation_id, thing, profile, behavior_name, behavior, criteria_type, suppressed, metric_value, event_type, event_ms) VALUES ('v1', 'cam', 'p', 'b', '{"name":"b","metric":"aws:all-bytes-out","criteria":{"mlDetectionConfig":{"confidenceLevel":"LOW"}}}', 'MACHINE_LEARNING', 0, '{"count":9}', 'in-alarm', 5);
"#;

    fn record(
        thing: &str,
        profile: &str,
        behavior: &str,
        metric: &str,
        change: ViolationChange,
        at: i64,
    ) -> ViolationRecord {
        ViolationRecord {
            thing: thing.into(),
            profile: profile.into(),
            behavior: serde_json::from_value(serde_json::json!({
                "name": behavior, "metric": metric,
                "criteria": { "mlDetectionConfig": { "confidenceLevel": "LOW" } }
            }))
            .expect("behavior"),
            change,
            value: None,
            at,
            explanation: None,
            incident: None,
            hold: None,
        }
    }

    #[test]
    fn training_excludes_the_behaviors_alarms_and_true_positives_of_its_metric() {
        use thingward_models::violation::{VerificationState, ViolationEventType};
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(&dir.path().join("thingward.db")).expect("store");
        let out = "aws:all-bytes-out";
        let closed = ViolationChange::Close(ViolationEventType::AlarmCleared);
        let ids = store
            .violations_apply(&[
                // The behavior's own alarms: one closed, one still active.
                record("a", "p", "b", out, ViolationChange::Open, 10),
                record("a", "p", "b", out, closed.clone(), 20),
                record("c", "p", "b", out, ViolationChange::Open, 50),
                // Other behaviors: same metric (to verify TRUE_POSITIVE / FALSE_POSITIVE),
                // another metric (TRUE_POSITIVE, ignored).
                record("a", "q", "x", out, ViolationChange::Open, 30),
                record("a", "q", "x", out, closed.clone(), 40),
                record("d", "q", "y", out, ViolationChange::Open, 60),
                record("d", "q", "y", out, closed.clone(), 70),
                record("a", "q", "z", "aws:all-bytes-in", ViolationChange::Open, 80),
                record("a", "q", "z", "aws:all-bytes-in", closed, 90),
            ])
            .expect("apply");
        let id = |i: usize| ids[i].clone().expect("violation id");
        assert!(
            store
                .verification_set(&id(3), VerificationState::TruePositive, None)
                .expect("verify")
        );
        assert!(
            store
                .verification_set(&id(5), VerificationState::FalsePositive, None)
                .expect("verify")
        );
        assert!(
            store
                .verification_set(&id(7), VerificationState::TruePositive, None)
                .expect("verify")
        );
        let mut got: Vec<(String, i64, i64)> = store
            .violation_intervals("p", "b", out, 100)
            .expect("intervals")
            .into_iter()
            .map(|i| (i.thing, i.start, i.end))
            .collect();
        got.sort();
        assert_eq!(
            got,
            [
                ("a".into(), 10, 20),
                ("a".into(), 30, 40),
                ("c".into(), 50, 100)
            ]
        );
    }

    #[test]
    fn an_older_database_gains_the_explanation_columns_and_keeps_its_rows() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("thingward.db");
        Connection::open(&path)
            .expect("open")
            .execute_batch(OLD_VIOLATIONS)
            .expect("old schema");
        let store = SqliteStore::open(&path).expect("migrates");
        let active = store
            .violations_active(&ViolationFilter::default(), 0, 10)
            .expect("list");
        assert_eq!(active.len(), 1);
        assert_eq!(active[0].violation_id, "v1");
        assert_eq!(active[0].ml_explanation, None);
        // An ML violation reports its confidence level as AWS does.
        assert_eq!(
            active[0]
                .violation_event_additional_info
                .and_then(|i| i.confidence_level),
            Some(thingward_models::ConfidenceLevel::Low)
        );
        let events = store
            .violation_events(
                &EventFilter {
                    common: ViolationFilter::default(),
                    start_ms: 0,
                    end_ms: 10,
                },
                0,
                10,
            )
            .expect("events");
        assert_eq!(events.len(), 1);
        drop(store);
        // Opening again finds the columns present and changes nothing.
        let store = SqliteStore::open(&path).expect("reopens");
        assert_eq!(
            store
                .violations_active(&ViolationFilter::default(), 0, 10)
                .expect("list")
                .len(),
            1
        );
    }

    fn mode_of(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path)
            .expect("metadata")
            .permissions()
            .mode()
            & 0o777
    }

    fn companions(db: &Path) -> Vec<std::path::PathBuf> {
        [WAL_SUFFIX, SHM_SUFFIX]
            .iter()
            .map(|s| {
                let mut name = db.as_os_str().to_owned();
                name.push(s);
                std::path::PathBuf::from(name)
            })
            .collect()
    }

    #[test]
    fn database_files_are_private_0600() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("thingward.db");
        let store = SqliteStore::open(&db).expect("open");
        assert_eq!(mode_of(&db), 0o600);
        for f in companions(&db) {
            assert_eq!(mode_of(&f), 0o600, "{}", f.display());
        }
        drop(store);
    }

    #[test]
    fn database_files_of_an_older_version_are_restricted_at_open() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("thingward.db");
        drop(SqliteStore::open(&db).expect("first open"));
        // Leave the files as an older version did (0644), with the companions present.
        let keep = Connection::open(&db).expect("keep open");
        keep.pragma_update(None, "journal_mode", "WAL")
            .expect("wal");
        keep.execute_batch("CREATE TABLE IF NOT EXISTS probe (x); INSERT INTO probe VALUES (1);")
            .expect("write");
        let mut files = vec![db.clone()];
        files.extend(companions(&db).into_iter().filter(|f| f.exists()));
        for f in &files {
            std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        }
        let store = SqliteStore::open(&db).expect("reopen");
        for f in files.iter().chain(companions(&db).iter()) {
            assert_eq!(mode_of(f), 0o600, "{}", f.display());
        }
        drop((store, keep));
    }
}
