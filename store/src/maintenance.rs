//! Maintenance windows: an operator's declaration, ahead of a planned roll-out, that the ML
//! alarms of a profile's (or a thing group's) devices in a time range are expected and are to
//! be recorded without notification.

use crate::StoreError;
use thingward_models::time::EpochMillis;

/// What a maintenance window covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MaintenanceTarget {
    /// Every thing the security profile applies to.
    SecurityProfile(String),
    /// Every thing in the group or one of its child groups.
    ThingGroup(String),
}

/// A maintenance window as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaintenanceWindowRecord {
    /// Its name.
    pub name: String,
    /// What it covers.
    pub target: MaintenanceTarget,
    /// The metrics' wire names; empty: every ML metric.
    pub metrics: Vec<String>,
    /// When it starts.
    pub start_ms: EpochMillis,
    /// When it ends (after the start).
    pub end_ms: EpochMillis,
    /// An operator's note.
    pub description: Option<String>,
    /// When it was declared.
    pub creation_ms: EpochMillis,
}

/// The maintenance windows part of the store interface ([`crate::Store`]).
pub trait MaintenanceStore {
    /// Inserts a window; false (nothing changed) when one with that name exists.
    ///
    /// # Errors
    /// Storage failures.
    fn maintenance_insert(&self, w: &MaintenanceWindowRecord) -> Result<bool, StoreError>;

    /// One window.
    ///
    /// # Errors
    /// Storage failures.
    fn maintenance_get(&self, name: &str) -> Result<Option<MaintenanceWindowRecord>, StoreError>;

    /// Every window, by start time then name.
    ///
    /// # Errors
    /// Storage failures.
    fn maintenance_all(&self) -> Result<Vec<MaintenanceWindowRecord>, StoreError>;

    /// Deletes a window; false when there was none.
    ///
    /// # Errors
    /// Storage failures.
    fn maintenance_delete(&self, name: &str) -> Result<bool, StoreError>;
}
