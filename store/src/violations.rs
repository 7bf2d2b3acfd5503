//! Violations: the active ones (one per thing, profile and behavior) and their event history.

use crate::StoreError;
use thingward_models::behavior::{Behavior, BehaviorCriteriaType};
use thingward_models::ml::MlExplanation;
use thingward_models::time::EpochMillis;
use thingward_models::value::MetricValue;
use thingward_models::violation::{
    ActiveViolation, VerificationState, ViolationEvent, ViolationEventType,
};

/// What happened to a violation, to be recorded.
#[derive(Debug, Clone)]
pub enum ViolationChange {
    /// The behavior went into alarm: a new active violation and an `in-alarm` event.
    Open,
    /// Another violating datapoint while in alarm: update the last value and time.
    Touch,
    /// The alarm ended (`alarm-cleared` or `alarm-invalidated`).
    Close(ViolationEventType),
}

/// One change to record.
#[derive(Debug, Clone)]
pub struct ViolationRecord {
    pub thing: String,
    pub profile: String,
    pub behavior: Behavior,
    pub change: ViolationChange,
    pub value: Option<MetricValue>,
    pub at: EpochMillis,
    /// Why an ML behavior judged the datapoint anomalous (ML in-alarm and still-in-alarm only).
    pub explanation: Option<Box<MlExplanation>>,
    /// The device incident the change belongs to.
    pub incident: Option<u64>,
    /// Set when the change is recorded but not notified because something bigger explains
    /// it (as for `suppressAlerts`, no feed row is written).
    pub hold: Option<Hold>,
}

/// Why a violation change is held (recorded without a feed row).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hold {
    /// A fleet event explains it; released (notified late) when the event dissolves, closes
    /// with the alarm still active, or is verified TRUE_POSITIVE.
    FleetEvent(u64),
    /// It fell in this maintenance window; never released.
    Maintenance(String),
}

/// One change Detect records, in scoring order: a violation change, a fleet event change, or
/// an operator's release of a fleet event's held alarms (TRUE_POSITIVE).
// The large variant is the common one (almost every change is a violation change): boxing it
// would add an allocation per record to shrink the rare ones.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum DetectChange {
    /// A violation change.
    Violation(ViolationRecord),
    /// A fleet event change (and the alarms it releases).
    Fleet(crate::fleet::FleetEventChange),
    /// Every still-held violation event of fleet event `id` gets its feed row (released at
    /// `at`).
    ReleaseFleetEvent {
        /// The fleet event.
        id: u64,
        /// When.
        at: EpochMillis,
    },
}

/// A device incident: the overlapping alarms of one thing in one profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncidentRecord {
    /// Its id.
    pub id: u64,
    /// The thing.
    pub thing: String,
    /// The security profile.
    pub profile: String,
    /// Its first event.
    pub start_ms: EpochMillis,
    /// Its last event, when none of its violations is active any more.
    pub end_ms: Option<EpochMillis>,
    /// The behaviors that alarmed, by name.
    pub behaviors: Vec<String>,
    /// Its violations.
    pub violations: u32,
}

/// Filters of the incidents listing.
#[derive(Debug, Clone, Default)]
pub struct IncidentFilter {
    /// Only this thing's.
    pub thing: Option<String>,
    /// Only this profile's.
    pub profile: Option<String>,
    /// Only incidents that were open at or after this time.
    pub start_ms: Option<EpochMillis>,
    /// Only incidents that started at or before this time.
    pub end_ms: Option<EpochMillis>,
}

/// Held and released alarm counts (the `/metrics` counters).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HoldCounts {
    /// In-alarm events held by a fleet event.
    pub fleet_event: i64,
    /// In-alarm events held by a maintenance window.
    pub maintenance: i64,
    /// Held in-alarm events released since (notified late).
    pub released: i64,
    /// Incidents with an active violation.
    pub incidents_open: i64,
}

/// Filters of ListActiveViolations.
#[derive(Debug, Clone, Default)]
pub struct ViolationFilter {
    pub thing: Option<String>,
    pub profile: Option<String>,
    pub criteria_type: Option<BehaviorCriteriaType>,
    pub suppressed: Option<bool>,
    pub verification: Option<VerificationState>,
}

/// Filters of ListViolationEvents.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub common: ViolationFilter,
    pub start_ms: EpochMillis,
    pub end_ms: EpochMillis,
}

/// The violations part of the store interface ([`crate::Store`]); [`crate::SqliteStore`] implements it.
pub trait ViolationStore {
    /// Records a batch of violation changes in one transaction; returns the violation ids of
    /// the changes, in order (None for a Touch/Close with no matching active violation).
    ///
    /// # Errors
    /// Storage failures.
    fn violations_apply(
        &self,
        records: &[ViolationRecord],
    ) -> Result<Vec<Option<String>>, StoreError>;

    /// Records Detect's changes of one or more batches in one transaction, in order:
    /// violation changes (with their feed rows unless suppressed or held), fleet event
    /// changes (the event's row, a feed row when it opens or closes, the released alarms'
    /// feed rows) and releases. Returns the violation ids of the violation changes, in order.
    ///
    /// # Errors
    /// Storage failures (nothing is recorded then).
    fn detect_apply(&self, changes: &[DetectChange]) -> Result<Vec<Option<String>>, StoreError>;

    /// Incidents matching `f`, newest first, paged.
    ///
    /// # Errors
    /// Storage failures.
    fn incidents_list(
        &self,
        f: &IncidentFilter,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<IncidentRecord>, StoreError>;

    /// Held and released alarms, open incidents.
    ///
    /// # Errors
    /// Storage failures.
    fn hold_counts(&self) -> Result<HoldCounts, StoreError>;

    /// Active violations matching `f`, newest first, `offset`/`limit` paged.
    ///
    /// # Errors
    /// Storage failures.
    fn violations_active(
        &self,
        f: &ViolationFilter,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<ActiveViolation>, StoreError>;

    /// Every active violation's key and last time, to restore alarm state at start-up.
    ///
    /// # Errors
    /// Storage failures.
    fn violations_active_keys(
        &self,
    ) -> Result<Vec<(String, String, String, EpochMillis)>, StoreError>;

    /// Violation events matching `f` in [start, end], oldest first, paged.
    ///
    /// # Errors
    /// Storage failures.
    fn violation_events(
        &self,
        f: &EventFilter,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<ViolationEvent>, StoreError>;

    /// Sets the verification state on a violation (active or not) and all its events; returns
    /// false when no such violation id exists.
    ///
    /// # Errors
    /// Storage failures.
    fn verification_set(
        &self,
        violation_id: &str,
        state: VerificationState,
        description: Option<&str>,
    ) -> Result<bool, StoreError>;

    /// Active violations per (profile, behavior) — the `/metrics` gauge.
    ///
    /// # Errors
    /// Storage failures.
    fn violations_in_alarm_counts(&self) -> Result<Vec<(String, String, i64)>, StoreError>;

    /// Violation events per (profile, behavior, event type) — the `/metrics` counter.
    ///
    /// # Errors
    /// Storage failures.
    fn violation_event_counts(&self) -> Result<Vec<(String, String, String, i64)>, StoreError>;
}
