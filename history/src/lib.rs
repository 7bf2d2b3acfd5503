//! The datapoint history: keeps every accepted datapoint durably, from the write-ahead log to daily Parquet partitions.
//!
//! Every batch is appended to a write-ahead log (WAL) of checksummed records; one committer
//! thread covers everything appended since its last sync with one `fdatasync` (group commit) and
//! then tells each writer its batch is durable. [`History::roll`] converts sealed WAL segments
//! into Parquet files under `partitions/date=YYYY-MM-DD/`, which the trainer scans lazily with
//! polars; [`History::values`] reads both back. The on-disk formats are specified in
//! `docs/specs/history.md`. [`Importer`] writes partitions directly, without the WAL, from
//! [`ColumnBatch`]es (rows in columns, no `Datapoint` per value), several at once through a
//! [`Reservation`] of segment numbers. [`tables`] writes the small Parquet result tables of
//! `thingward eval`.
//!
//! ```text
//! {dir}/LOCK                                        held while open
//! {dir}/wal/{seq:020}.log                           [len u32][crc32 u32][payload]*
//! {dir}/partitions/date=YYYY-MM-DD/part-{seq:020}.parquet
//! ```

mod codec;
mod column_batch;
mod committer;
mod error;
mod import;
mod partition;
mod schema;
pub mod tables;
mod wal;

pub use column_batch::{ColumnBatch, MetricId, ThingId};
pub use error::Error;
pub use import::{Importer, Reservation};
pub use partition::{scan_files, ts_lit};
pub use schema::{MAX_TIMESTAMP, MIN_TIMESTAMP, columns, kinds};

use committer::{Callback, Grouping, Shared, lock};
use partition::Query;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;
use thingward_models::time::EpochMillis;
use thingward_models::{Datapoint, Metric, ThingName, Value};
use wal::SegmentWriter;

/// How the history writes. `Default` gives the production values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryOptions {
    /// A WAL segment is sealed once it holds this many bytes (checked between groups, so a
    /// segment may overshoot by one group). Default 64 MiB.
    pub segment_bytes: u64,
    /// The longest the committer waits, after a batch arrives, for more batches to share its
    /// `fdatasync`. It waits only when the previous group held several batches (concurrent
    /// writers); zero never waits. Default 2 ms.
    pub group_commit_interval: Duration,
    /// A group of at least this many bytes is synced without waiting out the interval.
    /// Default 8 MiB.
    pub group_commit_bytes: usize,
    /// Appenders block while this many bytes wait for the committer (backpressure; a single
    /// larger batch is still accepted when the queue is empty). Default 256 MiB.
    pub max_pending_bytes: usize,
}

impl Default for HistoryOptions {
    fn default() -> Self {
        Self {
            segment_bytes: 64 * 1024 * 1024,
            group_commit_interval: Duration::from_millis(2),
            group_commit_bytes: 8 * 1024 * 1024,
            max_pending_bytes: 256 * 1024 * 1024,
        }
    }
}

impl HistoryOptions {
    fn check(&self) -> Result<(), Error> {
        if self.segment_bytes == 0 {
            return Err(Error::InvalidOptions {
                reason: "segment_bytes must be positive",
            });
        }
        if self.max_pending_bytes == 0 {
            return Err(Error::InvalidOptions {
                reason: "max_pending_bytes must be positive",
            });
        }
        Ok(())
    }
}

/// What one [`History::roll`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RollStats {
    /// WAL segments converted and deleted.
    pub segments: usize,
    /// Datapoints written to Parquet.
    pub datapoints: u64,
    /// Parquet files written (one per segment and UTC day).
    pub files: usize,
}

/// One row of a [`History::values`] answer: timestamp, topic, value.
pub type ValueRow = (EpochMillis, Option<String>, Value);

/// The part files under `partitions_dir` whose day overlaps the window `[start, end)` (epoch
/// ms), oldest day first; none for an empty window or a missing directory. For batch readers
/// (the trainer) that scan the partitions with polars themselves.
///
/// # Errors
/// [`Error::Io`] when a directory cannot be listed.
pub fn window_files(
    partitions_dir: &Path,
    start: i64,
    end: i64,
) -> Result<Vec<std::path::PathBuf>, Error> {
    if end <= start || !partitions_dir.is_dir() {
        return Ok(Vec::new());
    }
    partition::files_overlapping(
        partitions_dir,
        start.max(MIN_TIMESTAMP),
        (end - 1).min(MAX_TIMESTAMP),
    )
}

/// The days present under a `partitions/` directory (as written by [`History::roll`] or
/// [`Importer`]), oldest first.
///
/// # Errors
/// [`Error::Io`] when the directory cannot be listed.
pub fn partition_days(partitions_dir: &Path) -> Result<Vec<chrono::NaiveDate>, Error> {
    Ok(partition::list_days(partitions_dir)?
        .into_iter()
        .map(|(day, _)| day)
        .collect())
}

/// Every datapoint of one day under a `partitions/` directory, oldest first. Batch jobs
/// (evaluation, training) stream a history day by day with this and [`partition_days`].
///
/// # Errors
/// [`Error::Io`], [`Error::Polars`] or [`Error::InvalidRow`].
pub fn read_partition_day(
    partitions_dir: &Path,
    day: chrono::NaiveDate,
) -> Result<Vec<Datapoint>, Error> {
    partition::read_day(partitions_dir, &partition::day_dir(partitions_dir, day))
}

/// The datapoint history of one data directory. `Send + Sync`; share it in an `Arc`.
pub struct History {
    wal_dir: PathBuf,
    partitions_dir: PathBuf,
    shared: Arc<Shared>,
    committer: Mutex<Option<JoinHandle<()>>>,
    /// Serialises rolls.
    roll_lock: Mutex<()>,
    /// Readers hold it shared; a roll holds it exclusively while it publishes a segment's
    /// Parquet files and deletes the segment, so a reader never sees a datapoint twice or
    /// not at all.
    layout: RwLock<()>,
    /// Held (with an OS file lock) for as long as the history is open.
    _lock_file: File,
}

impl std::fmt::Debug for History {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("History")
            .field("wal_dir", &self.wal_dir)
            .field("partitions_dir", &self.partitions_dir)
            .field("shared", &self.shared)
            .finish_non_exhaustive()
    }
}

const LOCK_FILE: &str = "LOCK";
const WAL_DIR: &str = "wal";
const PARTITIONS_DIR: &str = "partitions";

fn create_dir(path: &Path) -> Result<(), Error> {
    fs::create_dir_all(path).map_err(Error::io(path))
}

/// Takes the OS lock on `dir/LOCK`, held for as long as the returned file is open.
fn lock_dir(dir: &Path) -> Result<File, Error> {
    let lock_path = dir.join(LOCK_FILE);
    let lock_file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(Error::io(&lock_path))?;
    lock_file.try_lock().map_err(|e| match e {
        fs::TryLockError::WouldBlock => Error::Locked {
            path: lock_path.clone(),
        },
        fs::TryLockError::Error(e) => Error::io(&lock_path)(e),
    })?;
    Ok(lock_file)
}

impl History {
    /// Opens (creating) the history in `dir`. Recovers WAL segments a crash left behind: each
    /// is truncated at its first torn or corrupt record; the rest stays in the WAL until the
    /// next [`roll`](Self::roll). Starts the committer thread.
    ///
    /// # Errors
    /// [`Error::InvalidOptions`], [`Error::Locked`] when another history has `dir` open, or
    /// [`Error::Io`].
    pub fn open(dir: &Path, opts: HistoryOptions) -> Result<Self, Error> {
        opts.check()?;
        let wal_dir = dir.join(WAL_DIR);
        let partitions_dir = dir.join(PARTITIONS_DIR);
        create_dir(&wal_dir)?;
        create_dir(&partitions_dir)?;
        wal::sync_dir(dir)?;

        let lock_file = lock_dir(dir)?;

        let wal_max = wal::recover(&wal_dir)?;
        // Segment numbers name Parquet files, so a number is never reused, even once its
        // segment is rolled and gone.
        let part_max = partition::recover(&partitions_dir)?;
        let next_seq = wal_max.max(part_max).map_or(0, |s| s + 1);
        let unrolled = wal::list_segments(&wal_dir)?.len();
        tracing::info!(dir = %dir.display(), unrolled_segments = unrolled, next_segment = next_seq, "Opened the datapoint history");

        let writer = SegmentWriter::new(wal_dir.clone(), opts.segment_bytes, next_seq);
        let shared = Arc::new(Shared::new(
            writer,
            Grouping {
                interval: opts.group_commit_interval,
                group_bytes: opts.group_commit_bytes,
                max_pending_bytes: opts.max_pending_bytes,
            },
        ));
        let thread_shared = Arc::clone(&shared);
        let handle = std::thread::Builder::new()
            .name("thingward-wal-committer".into())
            .spawn(move || committer::run(&thread_shared))
            .map_err(Error::io(&wal_dir))?;
        Ok(Self {
            wal_dir,
            partitions_dir,
            shared,
            committer: Mutex::new(Some(handle)),
            roll_lock: Mutex::new(()),
            layout: RwLock::new(()),
            _lock_file: lock_file,
        })
    }

    /// Appends a batch to the WAL. `on_durable` is called exactly once, from the committer
    /// thread, after the batch is fsync'd (`Ok`) or its write failed (`Err`). One `fdatasync`
    /// covers every batch appended since the previous one. Blocks only for backpressure (see
    /// [`HistoryOptions::max_pending_bytes`]).
    ///
    /// # Errors
    /// When the batch is refused: [`Error::TimestampOutOfRange`], [`Error::BatchTooLarge`],
    /// [`Error::Closed`] or [`Error::WalFailed`]. A refused batch is not written and its
    /// `on_durable` is dropped without being called.
    pub fn append(
        &self,
        batch: &[Datapoint],
        on_durable: Box<dyn FnOnce(Result<(), Error>) + Send>,
    ) -> Result<(), Error> {
        for dp in batch {
            schema::check_timestamp(dp.timestamp)?;
        }
        let record = wal::encode_record(batch)?;
        self.shared.enqueue(record, on_durable as Callback)
    }

    /// Appends a batch and blocks until it is durable.
    ///
    /// # Errors
    /// As [`append`](Self::append), plus the write error ([`Error::WalFailed`]) when the sync
    /// failed.
    pub fn append_sync(&self, batch: &[Datapoint]) -> Result<(), Error> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.append(
            batch,
            Box::new(move |result| {
                // The receiver only goes away if this thread unwound; nothing to tell then.
                let _ = tx.send(result);
            }),
        )?;
        rx.recv().map_err(|_| Error::CommitterPanicked)?
    }

    /// Seals the active WAL segment and converts every sealed segment into Parquet, one file
    /// per (segment, UTC day) at `partitions/date=YYYY-MM-DD/part-{segment:020}.parquet`.
    /// A segment is deleted only after its files are written, fsync'd and renamed into place.
    /// Crash-idempotent: file names derive from the segment number, so rolling a segment
    /// again overwrites its files instead of duplicating rows. Appends continue meanwhile.
    ///
    /// # Errors
    /// [`Error::Io`] or [`Error::Polars`]; segments converted before the error stay converted,
    /// the rest stay in the WAL for the next roll.
    pub fn roll(&self) -> Result<RollStats, Error> {
        let _rolling = lock(&self.roll_lock);
        let sealed_below = lock(&self.shared.writer).seal();
        let mut stats = RollStats::default();
        for (seq, path) in wal::list_segments(&self.wal_dir)? {
            if seq >= sealed_below {
                continue;
            }
            let Some(bytes) = wal::read_segment(&path)? else {
                continue;
            };
            let mut datapoints = Vec::new();
            let scan = wal::scan_records(&bytes, |payload| {
                datapoints.extend(codec::decode_datapoints(payload)?);
                Ok(())
            });
            if let Some(reason) = scan.stopped {
                tracing::error!(
                    segment = %path.display(), kept_records = scan.records,
                    dropped_bytes = bytes.len() as u64 - scan.valid_len, reason,
                    "Rolling a write-ahead log segment with an unreadable tail; the tail is lost"
                );
            }
            let batch = column_batch::ColumnBatch::from_datapoints(&datapoints);
            let staged = partition::stage_batch(&self.partitions_dir, seq, &batch)?;
            drop(batch);
            let files = staged.len();
            {
                let _publishing = self.layout.write().unwrap_or_else(PoisonError::into_inner);
                for part in staged {
                    part.publish()?;
                }
                fs::remove_file(&path).map_err(Error::io(&path))?;
                wal::sync_dir(&self.wal_dir)?;
            }
            stats.segments += 1;
            stats.datapoints += datapoints.len() as u64;
            stats.files += files;
        }
        if stats.segments > 0 {
            tracing::info!(
                segments = stats.segments,
                datapoints = stats.datapoints,
                files = stats.files,
                "Rolled write-ahead log segments into Parquet partitions"
            );
        }
        Ok(stats)
    }

    /// The values of one thing's metric with timestamps in `[start, end]` (inclusive), oldest
    /// first, at most `limit`, from the Parquet partitions and the not-yet-rolled WAL. Rows
    /// with equal timestamps keep their append order within each store, Parquet first.
    ///
    /// # Errors
    /// [`Error::Io`], [`Error::Polars`] or [`Error::InvalidRow`].
    pub fn values(
        &self,
        thing: &ThingName,
        metric: &Metric,
        start: EpochMillis,
        end: EpochMillis,
        limit: usize,
    ) -> Result<Vec<ValueRow>, Error> {
        self.query(Query {
            thing,
            metric,
            topic: None,
            start,
            end,
            limit,
        })
    }

    /// As [`values`](Self::values), keeping only rows measured on exactly `topic` (for metrics
    /// with a `TOPIC_FILTER` dimension).
    ///
    /// # Errors
    /// As [`values`](Self::values).
    pub fn topic_values(
        &self,
        thing: &ThingName,
        metric: &Metric,
        topic: &str,
        start: EpochMillis,
        end: EpochMillis,
        limit: usize,
    ) -> Result<Vec<ValueRow>, Error> {
        self.query(Query {
            thing,
            metric,
            topic: Some(topic),
            start,
            end,
            limit,
        })
    }

    fn query(&self, q: Query<'_>) -> Result<Vec<ValueRow>, Error> {
        if q.limit == 0 || q.start > q.end || q.end < MIN_TIMESTAMP || q.start > MAX_TIMESTAMP {
            return Ok(Vec::new());
        }
        let q = Query {
            start: q.start.max(MIN_TIMESTAMP),
            end: q.end.min(MAX_TIMESTAMP),
            ..q
        };
        let _reading = self.layout.read().unwrap_or_else(PoisonError::into_inner);

        let files = partition::files_overlapping(&self.partitions_dir, q.start, q.end)?;
        let mut rows = partition::scan(&self.partitions_dir, &files, &q)?;

        for (_, path) in wal::list_segments(&self.wal_dir)? {
            let Some(bytes) = wal::read_segment(&path)? else {
                continue;
            };
            // A record still being written at the tail of the active segment just ends the scan.
            wal::scan_records(&bytes, |payload| {
                codec::decode_batch(payload, |raw| {
                    if raw.thing == q.thing.as_str()
                        && raw.metric.is(q.metric)
                        && (q.start..=q.end).contains(&raw.timestamp)
                        && q.topic.is_none_or(|t| raw.topic == Some(t))
                    {
                        rows.push((raw.timestamp, raw.topic.map(str::to_owned), raw.value()?));
                    }
                    Ok(())
                })
            });
        }
        rows.sort_by_key(|row| row.0);
        rows.truncate(q.limit);
        Ok(rows)
    }

    /// Flushes and fsyncs every pending batch (running its callback), then stops the committer
    /// thread. Later appends fail with [`Error::Closed`]; `roll` and `values` keep working, so
    /// after `close()` + `roll()` every accepted datapoint is in Parquet. Idempotent.
    ///
    /// # Errors
    /// [`Error::WalFailed`] when the log failed at some point, [`Error::CommitterPanicked`].
    pub fn close(&self) -> Result<(), Error> {
        self.shared.close();
        let handle = lock(&self.committer).take();
        if let Some(handle) = handle {
            handle.join().map_err(|_| Error::CommitterPanicked)?;
        }
        match self.shared.failure() {
            Some(e) => Err(Error::WalFailed(e)),
            None => Ok(()),
        }
    }

    /// The Parquet root the trainer scans (`partitions/date=*/*.parquet`).
    pub fn partitions_dir(&self) -> PathBuf {
        self.partitions_dir.clone()
    }
}

impl Drop for History {
    fn drop(&mut self) {
        if let Err(error) = self.close() {
            tracing::error!(%error, "Closing the datapoint history on drop failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<History>();
        assert_send_sync::<Error>();
        assert_send_sync::<HistoryOptions>();
    }

    #[test]
    fn invalid_options_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let opts = HistoryOptions {
            segment_bytes: 0,
            ..Default::default()
        };
        assert!(matches!(
            History::open(dir.path(), opts),
            Err(Error::InvalidOptions { .. })
        ));
    }

    #[test]
    fn a_directory_opens_once_at_a_time() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = History::open(dir.path(), HistoryOptions::default()).expect("opens");
        assert!(matches!(
            History::open(dir.path(), HistoryOptions::default()),
            Err(Error::Locked { .. })
        ));
        drop(first);
        History::open(dir.path(), HistoryOptions::default()).expect("opens again after drop");
    }
}
