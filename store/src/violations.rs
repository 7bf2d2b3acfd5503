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
