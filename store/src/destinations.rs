//! Feed destinations: their configuration, their delivery cursor and counters, and their
//! dead letters.
//!
//! A destination's cursor is the outbox sequence number up to which every event has been
//! delivered, skipped (not routed to it) or dead-lettered; it moves only after the receiver
//! acknowledged, so a crash redelivers rather than loses.

use crate::StoreError;
use thingward_models::time::EpochMillis;

/// A stored destination; `config` is the JSON the API validated (see `feed::config`).
#[derive(Debug, Clone, PartialEq)]
pub struct DestinationRecord {
    /// The destination's name.
    pub name: String,
    /// The validated configuration, as JSON.
    pub config: serde_json::Value,
    /// Creation time, epoch ms.
    pub created_ms: EpochMillis,
    /// Last replacement time, epoch ms.
    pub modified_ms: EpochMillis,
}

/// A destination's delivery state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DestinationStatus {
    /// Every event up to this outbox sequence number is done with.
    pub cursor: i64,
    /// Events delivered (acknowledged by the receiver).
    pub delivered: u64,
    /// Failed delivery attempts.
    pub failed: u64,
    /// Events moved to the dead-letter table.
    pub dead_lettered: u64,
    /// Outbox events after the cursor (not yet routed or delivered).
    pub pending: u64,
    /// Dead letters waiting for redelivery after a redrive call.
    pub redriving: u64,
    /// The last failure's message.
    pub last_error: Option<String>,
    /// When the last failure happened, epoch ms.
    pub last_error_ms: Option<EpochMillis>,
    /// When the last successful delivery happened, epoch ms.
    pub last_success_ms: Option<EpochMillis>,
}

/// An event a destination gave up on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The event's outbox sequence number.
    pub seq: i64,
    /// Delivery attempts made.
    pub attempts: u32,
    /// The last attempt's error.
    pub error: String,
    /// When it was dead-lettered, epoch ms.
    pub dead_ms: EpochMillis,
    /// Queued for redelivery by a redrive call.
    pub redrive: bool,
}

/// The destinations part of the store interface ([`crate::Store`]); [`crate::SqliteStore`] implements it.
pub trait DestinationStore {
    /// Creates or replaces a destination; returns true when it was created. A new destination's
    /// cursor starts at the end of the outbox (it receives events appended from now on); a
    /// replaced one keeps its cursor, counters and dead letters.
    ///
    /// # Errors
    /// Storage failures.
    fn destination_put(
        &self,
        name: &str,
        config: &serde_json::Value,
        now_ms: EpochMillis,
    ) -> Result<bool, StoreError>;

    /// One destination.
    ///
    /// # Errors
    /// Storage failures.
    fn destination_get(&self, name: &str) -> Result<Option<DestinationRecord>, StoreError>;

    /// Every destination, by name.
    ///
    /// # Errors
    /// Storage failures.
    fn destinations_list(&self) -> Result<Vec<DestinationRecord>, StoreError>;

    /// Deletes a destination with its cursor and dead letters; false when there was none.
    ///
    /// # Errors
    /// Storage failures.
    fn destination_delete(&self, name: &str) -> Result<bool, StoreError>;

    /// A destination's delivery state (None: no such destination).
    ///
    /// # Errors
    /// Storage failures.
    fn destination_status(&self, name: &str) -> Result<Option<DestinationStatus>, StoreError>;

    /// A destination's cursor alone (the workers' per-round read; None: no such destination).
    ///
    /// # Errors
    /// Storage failures.
    fn destination_cursor(&self, name: &str) -> Result<Option<i64>, StoreError>;

    /// Records a successful delivery of `delivered` events and moves the cursor to `cursor`
    /// (never backwards); `redriven` dead letters that were part of it are removed.
    ///
    /// # Errors
    /// Storage failures.
    fn delivery_succeeded(
        &self,
        name: &str,
        cursor: i64,
        delivered: usize,
        redriven: &[i64],
        now_ms: EpochMillis,
    ) -> Result<(), StoreError>;

    /// Records a failed delivery attempt.
    ///
    /// # Errors
    /// Storage failures.
    fn delivery_failed(
        &self,
        name: &str,
        error: &str,
        now_ms: EpochMillis,
    ) -> Result<(), StoreError>;

    /// Gives up on `seqs` after `attempts`: they go to the dead-letter table (a redriven one
    /// goes back to waiting) and the cursor moves to `cursor`, in one transaction.
    ///
    /// # Errors
    /// Storage failures.
    fn dead_letter(
        &self,
        name: &str,
        seqs: &[i64],
        cursor: i64,
        attempts: u32,
        error: &str,
        now_ms: EpochMillis,
    ) -> Result<(), StoreError>;

    /// A destination's dead letters, oldest event first, at most `limit`.
    ///
    /// # Errors
    /// Storage failures.
    fn dead_letters(&self, name: &str, limit: usize) -> Result<Vec<DeadLetter>, StoreError>;

    /// Queues every dead letter of `name` for redelivery; returns how many.
    ///
    /// # Errors
    /// Storage failures.
    fn dead_letters_redrive(&self, name: &str) -> Result<usize, StoreError>;

    /// At most `limit` sequence numbers of dead letters queued for redelivery, oldest first.
    ///
    /// # Errors
    /// Storage failures.
    fn dead_letters_redriving(&self, name: &str, limit: usize) -> Result<Vec<i64>, StoreError>;
}
