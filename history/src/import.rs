//! Bulk import: datapoints written straight into the Parquet partitions, bypassing the WAL.
//!
//! For generators and importers that produce history offline (`thingward generate`). The files
//! are the ones [`History::roll`](crate::History::roll) writes, so `History::values` and the
//! trainer read them like any other. Producers fill a [`ColumnBatch`] (no `Datapoint` per
//! value) and may write several batches in parallel through a [`Reservation`].

use crate::column_batch::ColumnBatch;
use crate::error::Error;
use crate::partition;
use crate::{PARTITIONS_DIR, RollStats, WAL_DIR, create_dir, lock_dir, wal};
use std::fs::File;
use std::path::{Path, PathBuf};
use thingward_models::Datapoint;

/// Writes batches of datapoints into a history directory's Parquet partitions.
///
/// Holds the directory's lock, so neither a [`History`](crate::History) nor another importer
/// can use the directory meanwhile. Each [`write`](Self::write) takes the next segment number
/// (one past the highest found in `wal/` or `partitions/` when opened) and writes one
/// `part-{seq:020}.parquet` per UTC day of the batch, so a `History` opened afterwards never
/// reuses a number.
pub struct Importer {
    partitions_dir: PathBuf,
    next_seq: u64,
    _lock_file: File,
}

impl std::fmt::Debug for Importer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Importer")
            .field("partitions_dir", &self.partitions_dir)
            .field("next_seq", &self.next_seq)
            .finish_non_exhaustive()
    }
}

impl Importer {
    /// Opens (creating) the history directory `dir` for import and takes its lock.
    ///
    /// # Errors
    /// [`Error::Locked`] when a history or importer has `dir` open, or [`Error::Io`].
    pub fn open(dir: &Path) -> Result<Self, Error> {
        let wal_dir = dir.join(WAL_DIR);
        let partitions_dir = dir.join(PARTITIONS_DIR);
        create_dir(&wal_dir)?;
        create_dir(&partitions_dir)?;
        let lock_file = lock_dir(dir)?;
        let wal_max = wal::list_segments(&wal_dir)?.last().map(|(seq, _)| *seq);
        let part_max = partition::recover(&partitions_dir)?;
        let next_seq = wal_max.max(part_max).map_or(0, |s| s + 1);
        Ok(Self {
            partitions_dir,
            next_seq,
            _lock_file: lock_file,
        })
    }

    /// Writes one batch of datapoints (reported as one segment in the stats); see
    /// [`write_batch`](Self::write_batch).
    ///
    /// # Errors
    /// As [`write_batch`](Self::write_batch).
    pub fn write(&mut self, datapoints: &[Datapoint]) -> Result<RollStats, Error> {
        self.write_batch(&ColumnBatch::from_datapoints(datapoints))
    }

    /// Writes one batch (reported as one segment in the stats): a part file per UTC day it
    /// touches, rows sorted by `(thing, metric, ts)` (a batch already in that order is not
    /// reordered). Each file is written under a temporary name, fsync'd and renamed into
    /// place. An empty batch writes nothing and takes no segment number. Keep batches to a few
    /// million rows: each day of the batch is converted to a polars frame in memory.
    ///
    /// # Errors
    /// [`Error::TimestampOutOfRange`], [`Error::Io`] or [`Error::Polars`]. Files of days
    /// written before the error stay in place.
    pub fn write_batch(&mut self, batch: &ColumnBatch) -> Result<RollStats, Error> {
        if batch.is_empty() {
            return Ok(RollStats::default());
        }
        self.reserve(1).write(0, batch)
    }

    /// Takes the next `n` segment numbers for batches written later, possibly on several
    /// threads at once ([`Reservation`] is `Sync`). Which file a batch lands in depends only
    /// on its index in the reservation, not on the order the writes happen in.
    pub fn reserve(&mut self, n: u64) -> Reservation<'_> {
        let first = self.next_seq;
        self.next_seq += n;
        Reservation {
            partitions_dir: &self.partitions_dir,
            first,
            n,
        }
    }
}

/// Segment numbers taken from an [`Importer`] (see [`Importer::reserve`]), to be written by
/// index from any thread while the importer (and its directory lock) lives.
#[derive(Debug, Clone, Copy)]
pub struct Reservation<'a> {
    partitions_dir: &'a Path,
    first: u64,
    n: u64,
}

impl Reservation<'_> {
    /// The number of reserved segments.
    pub fn len(&self) -> u64 {
        self.n
    }

    /// Whether no segment was reserved.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Writes `batch` as reserved segment `index` (as [`Importer::write_batch`] does, but an
    /// empty batch just leaves its number unused). Writing the same index twice replaces the
    /// first write's files of the same days.
    ///
    /// # Errors
    /// As [`Importer::write_batch`].
    ///
    /// # Panics
    /// When `index >= self.len()` (a number that was not reserved).
    pub fn write(&self, index: u64, batch: &ColumnBatch) -> Result<RollStats, Error> {
        assert!(
            index < self.n,
            "segment index {index} outside the reservation of {}",
            self.n
        );
        if batch.is_empty() {
            return Ok(RollStats::default());
        }
        let staged = partition::stage_batch(self.partitions_dir, self.first + index, batch)?;
        let files = staged.len();
        for part in staged {
            part.publish()?;
        }
        Ok(RollStats {
            segments: 1,
            datapoints: batch.len() as u64,
            files,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{History, HistoryOptions};
    use thingward_models::{Metric, ThingName, Value};

    fn dp(thing: &str, ts: i64, x: f64) -> Datapoint {
        Datapoint {
            thing: ThingName::try_from(thing).expect("name"),
            metric: Metric::AllBytesOut,
            topic: None,
            timestamp: ts,
            value: Value::Number(x),
        }
    }

    #[test]
    fn imported_rows_read_back_and_segment_numbers_move_on() {
        let dir = tempfile::tempdir().expect("tempdir");
        let day = 86_400_000;
        {
            let mut imp = Importer::open(dir.path()).expect("opens");
            assert!(matches!(
                History::open(dir.path(), HistoryOptions::default()),
                Err(Error::Locked { .. })
            ));
            let stats = imp
                .write(&[dp("b", 5, 2.0), dp("a", day + 1, 1.0), dp("a", 3, 0.5)])
                .expect("writes");
            assert_eq!(stats.files, 2);
            assert_eq!(stats.datapoints, 3);
            imp.write(&[dp("a", 4, 0.75)]).expect("writes");
        }
        let history = History::open(dir.path(), HistoryOptions::default()).expect("opens");
        let thing = ThingName::try_from("a").expect("name");
        let rows = history
            .values(&thing, &Metric::AllBytesOut, 0, 2 * day, 100)
            .expect("reads");
        let got: Vec<(i64, f64)> = rows
            .iter()
            .map(|(t, _, v)| (*t, v.as_number().expect("number")))
            .collect();
        assert_eq!(got, vec![(3, 0.5), (4, 0.75), (day + 1, 1.0)]);
        history
            .append_sync(&[dp("a", 6, 9.0)])
            .expect("appends after import");
        let stats = history.roll().expect("rolls");
        assert_eq!(stats.segments, 1);
        let rows = history
            .values(&thing, &Metric::AllBytesOut, 0, day, 100)
            .expect("reads");
        assert_eq!(
            rows.len(),
            3,
            "the rolled segment did not overwrite an import"
        );
    }
}
