//! The models index: one row per (security profile, ML behavior) with its lifecycle state and
//! the artifact that serves it, and the violation intervals training leaves out.

use crate::StoreError;
use thingward_models::lifecycle::LifecycleState;
use thingward_models::ml::ExpectedRates;
use thingward_models::time::EpochMillis;

/// One (profile, ML behavior) of the models index.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelEntry {
    pub profile: String,
    pub behavior: String,
    /// The behavior's metric (wire name) when the entry was made; a behavior whose metric
    /// changes starts over.
    pub metric: String,
    pub state: LifecycleState,
    /// Datapoints in the trailing window at the last attempt.
    pub datapoints: u64,
    /// The last nightly attempt (None: never attempted).
    pub last_attempt: Option<EpochMillis>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// The current artifact, relative to the models directory.
    pub artifact: Option<String>,
    /// What calibration of the current model expects per level.
    pub expected: Option<ExpectedRates>,
    /// When the entry was made.
    pub created: EpochMillis,
}

/// A violation interval: a thing's datapoints of `metric` in `[start, end]` are left out of
/// training.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViolationInterval {
    pub thing: String,
    pub start: EpochMillis,
    pub end: EpochMillis,
}

/// The models part of the store interface ([`crate::Store`]); [`crate::SqliteStore`] implements it.
pub trait ModelStore {
    /// Brings the models index in line with the ML behaviors of the stored profiles
    /// (`behaviors`: profile, behavior, metric): new ones get a PENDING_BUILD entry, entries
    /// whose behavior is gone or watches another metric are dropped. Returns the dropped
    /// (profile, behavior) pairs.
    ///
    /// # Errors
    /// Storage failures.
    fn models_sync(
        &self,
        behaviors: &[(String, String, String)],
        now: EpochMillis,
    ) -> Result<Vec<(String, String)>, StoreError>;

    /// Every entry of the models index (optionally of one profile), by profile then behavior.
    ///
    /// # Errors
    /// Storage failures.
    fn models_all(&self, profile: Option<&str>) -> Result<Vec<ModelEntry>, StoreError>;

    /// One entry.
    ///
    /// # Errors
    /// Storage failures.
    fn model_get(&self, profile: &str, behavior: &str) -> Result<Option<ModelEntry>, StoreError>;

    /// Writes an entry's state back; returns false when the entry is gone (its behavior was
    /// removed while it trained), in which case nothing is written.
    ///
    /// # Errors
    /// Storage failures.
    fn model_update(&self, e: &ModelEntry) -> Result<bool, StoreError>;

    /// The intervals training of (`profile`, `behavior`) on `metric` leaves out: every alarm
    /// of that behavior (from its `in-alarm` event to the event that ended it, or `now` while
    /// active), and every violation verified `TRUE_POSITIVE` on a behavior of the same metric
    /// (any profile), for the thing it concerns.
    ///
    /// # Errors
    /// Storage failures, or a stored behavior that does not decode.
    fn violation_intervals(
        &self,
        profile: &str,
        behavior: &str,
        metric: &str,
        now: EpochMillis,
    ) -> Result<Vec<ViolationInterval>, StoreError>;
}
