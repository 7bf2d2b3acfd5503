//! The one error type of the history crate.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

/// Everything that can go wrong in the datapoint history.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file-system operation failed.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// Writing or syncing the write-ahead log failed. The log refuses every later batch until
    /// the history is reopened (a failed `fdatasync` leaves the page cache in an unknown state,
    /// so retrying on the same file descriptor could acknowledge lost data).
    #[error("the write-ahead log failed and refuses writes until reopened: {0}")]
    WalFailed(#[source] Arc<io::Error>),
    /// The history was closed; it accepts no more batches.
    #[error("the history is closed")]
    Closed,
    /// The committer thread panicked.
    #[error("the write-ahead log committer thread panicked")]
    CommitterPanicked,
    /// A batch encodes to more than a WAL record can hold (4 GiB).
    #[error("a batch encodes to {len} bytes; a WAL record holds at most {max}")]
    BatchTooLarge {
        /// The encoded size.
        len: usize,
        /// The maximum record payload.
        max: usize,
    },
    /// A datapoint's timestamp falls outside the years 0001..=9999, which the daily partitions
    /// cannot name.
    #[error("timestamp {timestamp} ms is outside the storable range {min}..={max}")]
    TimestampOutOfRange {
        /// The refused timestamp (ms since the epoch).
        timestamp: i64,
        /// The earliest storable timestamp.
        min: i64,
        /// The latest storable timestamp.
        max: i64,
    },
    /// The options cannot work.
    #[error("invalid history options: {reason}")]
    InvalidOptions {
        /// What is wrong.
        reason: &'static str,
    },
    /// A Parquet partition holds a row this crate could not have written.
    #[error("invalid row in {}: {reason}", path.display())]
    InvalidRow {
        /// The Parquet file (or partitions directory, for a multi-file scan).
        path: PathBuf,
        /// What is wrong with the row.
        reason: &'static str,
    },
    /// A result table cannot be written or read as given.
    #[error("invalid table {}: {reason}", path.display())]
    InvalidTable {
        /// The Parquet file.
        path: PathBuf,
        /// What is wrong with the table.
        reason: &'static str,
    },
    /// Another process (or another `History` in this one) holds the directory.
    #[error("{} is in use by another history (its lock file is held)", path.display())]
    Locked {
        /// The lock file.
        path: PathBuf,
    },
    /// A list value could not be written as or read from JSON text.
    #[error("JSON error in a list value: {0}")]
    Json(#[from] serde_json::Error),
    /// polars failed to write or scan Parquet.
    #[error("Parquet error: {0}")]
    Polars(#[from] polars::error::PolarsError),
}

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }
}
