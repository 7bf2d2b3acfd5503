//! The metadata store: one interface ([`Store`]) for everything thingward keeps besides the
//! datapoint history, with SQLite ([`SqliteStore`]) its first implementation.
//!
//! What it holds: security profiles and their target attachments, the registry (custom metrics,
//! dimensions, things, thing groups), violations and their events, the ML models index, the
//! alarm feed's outbox and destinations, Audit (configuration, tasks, findings, suppressions,
//! certificates, CRLs, policies), mitigation (actions, tasks, executions), fleet events and
//! maintenance windows.
//!
//! The interface is one trait per area ([`ProfileStore`], [`RegistryStore`],
//! [`ViolationStore`], [`ModelStore`], [`OutboxStore`], [`DestinationStore`], [`AuditStore`],
//! [`CertStore`], [`MitigationStore`], [`FleetEventStore`], [`MaintenanceStore`]) and the
//! supertrait [`Store`] that a backend implements
//! to be usable by the service, which holds an `Arc<dyn Store>`. Callers bring every trait into
//! scope with `use thingward_store::prelude::*` (calls through `dyn Store` need no import).
//! What is inherently a backend's own (SQLite's second read connection, its migrations) stays
//! in that backend; what the service needs of it — the outbox's wake-up watch — is on the
//! interface ([`OutboxStore::outbox_watch`]).
//!
//! Records are plain structs of the domain; an implementation maps its rows to them by column
//! name. No polars, no linfa: the store depends on `thingward-models` and `thingward-audit` only.

mod audit;
mod certs;
mod destinations;
mod fleet;
mod maintenance;
mod mitigation;
mod models;
mod outbox;
mod profiles;
mod registry;
mod sqlite;
mod violations;

pub use audit::{
    AuditConfigRecord, AuditStore, AuditTaskRecord, CheckConfig, CheckDetails,
    FINDING_RETENTION_MS, FindingFilter, FindingRecord, ScheduledAuditRecord, SuppressionRecord,
    TaskStatus,
};
pub use certs::{
    CertKind, CertStatus, CertStore, CertificateRecord, CrlRecord, LoggingOptions,
    MAX_POLICY_VERSIONS, PolicyRecord, PolicyVersionError, PolicyVersionRecord, StatusTarget,
    principal_cert_id,
};
pub use destinations::{DeadLetter, DestinationRecord, DestinationStatus, DestinationStore};
pub use fleet::{
    FleetBehavior, FleetChangeKind, FleetCohort, FleetEventChange, FleetEventFilter,
    FleetEventRecord, FleetEventStore, FleetPhase, ReleasedAlarm, parse_wire_id, wire_id,
};
pub use maintenance::{MaintenanceStore, MaintenanceTarget, MaintenanceWindowRecord};
pub use mitigation::{
    ActionRecord, ExecState, ExecutionFilter, ExecutionRecord, MitigationStore, STOPPED_MESSAGE,
    TaskInsert, TaskKind, TaskRecord, TaskState, ViolationRef, ViolationSelector,
};
pub use models::{ModelEntry, ModelStore, ViolationInterval};
pub use outbox::{NewOutboxEvent, OutboxEvent, OutboxKind, OutboxRouting, OutboxStore, Severity};
pub use profiles::ProfileStore;
pub use registry::{
    CustomMetricRecord, DimensionRecord, RegistryStore, ThingGroupRecord, ThingRecord,
};
pub use sqlite::SqliteStore;
pub use violations::{
    DetectChange, EventFilter, Hold, HoldCounts, IncidentFilter, IncidentRecord, ViolationChange,
    ViolationFilter, ViolationRecord, ViolationStore,
};

/// Every trait of the store interface, for `use thingward_store::prelude::*`.
pub mod prelude {
    pub use crate::{
        AuditStore, CertStore, DestinationStore, FleetEventStore, MaintenanceStore,
        MitigationStore, ModelStore, OutboxStore, ProfileStore, RegistryStore, Store,
        ViolationStore,
    };
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite said no.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A stored JSON column did not decode.
    #[error("stored json: {0}")]
    Json(#[from] serde_json::Error),
    /// A previous panic poisoned the connection mutex.
    #[error("store connection poisoned by an earlier panic")]
    Poisoned,
    /// The database file (or its `-wal` / `-shm` companion) could not be created or made
    /// private.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What was being done (`create`, `restrict permissions of`).
        action: &'static str,
        /// The file.
        path: std::path::PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// The whole store interface: what the service holds (`Arc<dyn Store>`). A backend implements
/// every area trait and then this one.
pub trait Store:
    ProfileStore
    + RegistryStore
    + ViolationStore
    + ModelStore
    + OutboxStore
    + DestinationStore
    + AuditStore
    + CertStore
    + MitigationStore
    + FleetEventStore
    + MaintenanceStore
    + Send
    + Sync
    + std::fmt::Debug
{
}
