//! The metadata store: SQLite (bundled) in the data directory, holding security profiles, the
//! custom-metric / dimension / thing registry, target attachments and violations.
//!
//! One connection behind a mutex: every statement here is short, and the hot path (datapoints)
//! never touches SQLite — only alarm transitions do.

mod profiles;
mod registry;
mod violations;

pub(crate) use registry::{CustomMetricRecord, DimensionRecord, ThingGroupRecord, ThingRecord};
pub(crate) use violations::{EventFilter, ViolationChange, ViolationFilter, ViolationRecord};

use rusqlite::Connection;
use std::path::Path;
use std::sync::Mutex;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreError {
    /// SQLite said no.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A stored JSON column did not decode.
    #[error("stored json: {0}")]
    Json(#[from] serde_json::Error),
    /// A previous panic poisoned the connection mutex.
    #[error("store connection poisoned by an earlier panic")]
    Poisoned,
}

/// The metadata store.
#[derive(Debug)]
pub(crate) struct Store {
    conn: Mutex<Connection>,
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
"#;

impl Store {
    /// Opens (creating) the SQLite database at `path` and brings its schema up to date.
    ///
    /// # Errors
    /// When the file cannot be opened or the schema cannot be applied.
    pub(crate) fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // FULL: a violation that was recorded survives power loss, not just a process crash.
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(SCHEMA)?;
        Ok(Self {
            conn: Mutex::new(conn),
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
}

/// Serializes tags (kept verbatim, returned by no Describe call but kept for exports).
fn tags_json(tags: Option<&serde_json::Value>) -> Option<String> {
    tags.map(ToString::to_string)
}
