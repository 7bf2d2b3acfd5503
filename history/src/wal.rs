//! WAL segment files: record framing, the appending writer, scanning and crash recovery.
//!
//! A segment is `wal/{seq:020}.log`, a sequence of records `[len u32][crc32 u32][payload]`
//! (little-endian; the CRC-32 (IEEE) covers the payload). A record with `len == 0`, a length
//! running past the end of the file, a checksum mismatch or a payload that does not decode ends
//! the readable part of a segment.

use crate::codec::{self, DecodeError};
use crate::error::Error;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use thingward_models::Datapoint;

/// Bytes of record header: length and checksum.
pub(crate) const HEADER_LEN: usize = 8;
/// The largest payload a record can frame.
pub(crate) const MAX_PAYLOAD: usize = u32::MAX as usize;

const SEGMENT_SUFFIX: &str = ".log";

/// The path of segment `seq`.
pub(crate) fn segment_path(wal_dir: &Path, seq: u64) -> PathBuf {
    wal_dir.join(format!("{seq:020}{SEGMENT_SUFFIX}"))
}

/// The segments in `wal_dir`, oldest first.
pub(crate) fn list_segments(wal_dir: &Path) -> Result<Vec<(u64, PathBuf)>, Error> {
    let mut out = Vec::new();
    for entry in fs::read_dir(wal_dir).map_err(Error::io(wal_dir))? {
        let entry = entry.map_err(Error::io(wal_dir))?;
        let name = entry.file_name();
        let Some(seq) = name
            .to_str()
            .and_then(|n| n.strip_suffix(SEGMENT_SUFFIX))
            .filter(|n| n.len() == 20)
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        out.push((seq, entry.path()));
    }
    out.sort_unstable_by_key(|(seq, _)| *seq);
    Ok(out)
}

/// Frames an encoded batch as one record: header plus payload.
///
/// # Errors
/// [`Error::BatchTooLarge`] when the payload exceeds [`MAX_PAYLOAD`].
pub(crate) fn encode_record(batch: &[Datapoint]) -> Result<Vec<u8>, Error> {
    let mut out = vec![0; HEADER_LEN];
    codec::encode_batch_into(batch, &mut out);
    let len = out.len() - HEADER_LEN;
    let len32 = u32::try_from(len).map_err(|_| Error::BatchTooLarge {
        len,
        max: MAX_PAYLOAD,
    })?;
    let crc = crc32fast::hash(&out[HEADER_LEN..]);
    out[..4].copy_from_slice(&len32.to_le_bytes());
    out[4..HEADER_LEN].copy_from_slice(&crc.to_le_bytes());
    Ok(out)
}

/// How far a segment's contents are readable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Scan {
    /// Bytes up to the end of the last good record.
    pub(crate) valid_len: u64,
    /// Good records.
    pub(crate) records: u64,
    /// Why reading stopped before the end, if it did.
    pub(crate) stopped: Option<&'static str>,
}

/// Walks the records of a segment's bytes, handing each payload to `visit`, until the end or
/// the first short, zero-length, corrupt or undecodable record.
pub(crate) fn scan_records<'a>(
    bytes: &'a [u8],
    mut visit: impl FnMut(&'a [u8]) -> Result<(), DecodeError>,
) -> Scan {
    let mut pos = 0usize;
    let mut records = 0u64;
    let stopped = loop {
        let rest = &bytes[pos..];
        if rest.is_empty() {
            break None;
        }
        let Some(header) = rest.get(..HEADER_LEN) else {
            break Some("short record header");
        };
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        if len == 0 {
            break Some("zero-length record");
        }
        let Some(payload) = rest.get(HEADER_LEN..HEADER_LEN + len) else {
            break Some("record runs past the end of the segment");
        };
        if crc32fast::hash(payload) != crc {
            break Some("record checksum mismatch");
        }
        if let Err(DecodeError(reason)) = visit(payload) {
            break Some(reason);
        }
        pos += HEADER_LEN + len;
        records += 1;
    };
    Scan {
        valid_len: pos as u64,
        records,
        stopped,
    }
}

/// Reads a segment, tolerating a file that vanished (rolled) in the meantime.
pub(crate) fn read_segment(path: &Path) -> Result<Option<Vec<u8>>, Error> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(path)(e)),
    }
}

/// Recovers every segment in `wal_dir` after a crash: truncates each at its first unreadable
/// record. Returns the highest segment number present.
pub(crate) fn recover(wal_dir: &Path) -> Result<Option<u64>, Error> {
    let segments = list_segments(wal_dir)?;
    let last = segments.last().map(|(seq, _)| *seq);
    for (seq, path) in &segments {
        let Some(bytes) = read_segment(path)? else {
            continue;
        };
        let scan = scan_records(&bytes, |payload| codec::decode_batch(payload, |_| Ok(())));
        let Some(reason) = scan.stopped else { continue };
        let dropped = bytes.len() as u64 - scan.valid_len;
        if Some(*seq) == last {
            tracing::warn!(
                segment = %path.display(), kept_records = scan.records, dropped_bytes = dropped, reason,
                "Truncating a torn write-ahead log tail left by a crash"
            );
        } else {
            tracing::error!(
                segment = %path.display(), kept_records = scan.records, dropped_bytes = dropped, reason,
                "Truncating a corrupt record in a sealed write-ahead log segment; later records in it are lost"
            );
        }
        let file = OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(Error::io(path))?;
        file.set_len(scan.valid_len).map_err(Error::io(path))?;
        file.sync_all().map_err(Error::io(path))?;
    }
    Ok(last)
}

/// Fsyncs a directory so that entries created, renamed or removed in it are durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), Error> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(Error::io(dir))
}

/// The open segment being appended to.
#[derive(Debug)]
struct Active {
    seq: u64,
    file: File,
    len: u64,
}

/// Appends groups of records to the active segment and fsyncs them; rotates segments.
#[derive(Debug)]
pub(crate) struct SegmentWriter {
    wal_dir: PathBuf,
    segment_bytes: u64,
    /// The number the next segment gets (segments are created lazily on first write).
    next_seq: u64,
    active: Option<Active>,
    /// Coalesces small records into fewer `write` calls.
    buf: Vec<u8>,
}

/// Records at least this big are written directly instead of through the coalescing buffer.
const DIRECT_WRITE_BYTES: usize = 256 * 1024;
/// The coalescing buffer is flushed at this size.
const COALESCE_BYTES: usize = 1024 * 1024;

impl SegmentWriter {
    /// A writer whose first segment will be `next_seq`.
    pub(crate) fn new(wal_dir: PathBuf, segment_bytes: u64, next_seq: u64) -> Self {
        Self {
            wal_dir,
            segment_bytes,
            next_seq,
            active: None,
            buf: Vec::new(),
        }
    }

    /// Writes `records` and fdatasyncs them. One sync covers the whole group.
    pub(crate) fn write_group<'r>(
        &mut self,
        records: impl IntoIterator<Item = &'r [u8]>,
    ) -> io::Result<()> {
        if self
            .active
            .as_ref()
            .is_some_and(|a| a.len >= self.segment_bytes)
        {
            self.seal();
        }
        let active = match &mut self.active {
            Some(active) => active,
            None => {
                let seq = self.next_seq;
                let path = segment_path(&self.wal_dir, seq);
                let file = OpenOptions::new()
                    .create_new(true)
                    .append(true)
                    .open(&path)?;
                // The new directory entry must be durable before any record in it is acked.
                File::open(&self.wal_dir)?.sync_all()?;
                self.next_seq = seq + 1;
                self.active.insert(Active { seq, file, len: 0 })
            }
        };
        self.buf.clear();
        for record in records {
            if record.len() >= DIRECT_WRITE_BYTES {
                active.file.write_all(&self.buf)?;
                self.buf.clear();
                active.file.write_all(record)?;
            } else {
                if self.buf.len() + record.len() > COALESCE_BYTES {
                    active.file.write_all(&self.buf)?;
                    self.buf.clear();
                }
                self.buf.extend_from_slice(record);
            }
            active.len += record.len() as u64;
        }
        active.file.write_all(&self.buf)?;
        self.buf.clear();
        active.file.sync_data()
    }

    /// Closes the active segment (every record in it is already synced); the next write opens
    /// a new one. Returns the first segment number not sealed: every segment below it is sealed.
    pub(crate) fn seal(&mut self) -> u64 {
        if let Some(active) = self.active.take() {
            debug_assert_eq!(active.seq + 1, self.next_seq);
        }
        self.next_seq
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use thingward_models::{Metric, ThingName, Value};

    fn batch(n: usize) -> Vec<Datapoint> {
        (0..n)
            .map(|i| Datapoint {
                thing: ThingName::try_from("t").expect("thing"),
                metric: Metric::AllBytesOut,
                topic: None,
                timestamp: i as i64,
                value: Value::Number(i as f64),
            })
            .collect()
    }

    #[test]
    fn records_frame_and_scan() {
        let mut bytes = encode_record(&batch(3)).expect("encodes");
        bytes.extend(encode_record(&batch(2)).expect("encodes"));
        let mut rows = 0;
        let scan = scan_records(&bytes, |p| {
            codec::decode_batch(p, |_| {
                rows += 1;
                Ok(())
            })
        });
        assert_eq!(
            scan,
            Scan {
                valid_len: bytes.len() as u64,
                records: 2,
                stopped: None
            }
        );
        assert_eq!(rows, 5);
    }

    #[test]
    fn every_torn_tail_stops_at_the_last_whole_record() {
        let first = encode_record(&batch(3)).expect("encodes");
        let mut bytes = first.clone();
        bytes.extend(encode_record(&batch(4)).expect("encodes"));
        for cut in first.len()..bytes.len() {
            let scan = scan_records(&bytes[..cut], |p| codec::decode_batch(p, |_| Ok(())));
            assert_eq!(scan.valid_len, first.len() as u64, "cut at {cut}");
            assert_eq!(scan.records, 1);
            assert_eq!(scan.stopped.is_some(), cut > first.len());
        }
    }

    #[test]
    fn zeroed_tail_and_bit_flips_are_not_records() {
        let first = encode_record(&batch(1)).expect("encodes");
        let mut bytes = first.clone();
        bytes.extend([0u8; 64]);
        let scan = scan_records(&bytes, |p| codec::decode_batch(p, |_| Ok(())));
        assert_eq!(
            (scan.valid_len, scan.stopped),
            (first.len() as u64, Some("zero-length record"))
        );

        let mut flipped = first.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        let scan = scan_records(&flipped, |p| codec::decode_batch(p, |_| Ok(())));
        assert_eq!(
            (scan.valid_len, scan.stopped),
            (0, Some("record checksum mismatch"))
        );
    }

    #[test]
    fn writer_rotates_when_a_segment_is_full() {
        let dir = tempfile::tempdir().expect("tempdir");
        let record = encode_record(&batch(10)).expect("encodes");
        let mut w = SegmentWriter::new(dir.path().to_owned(), record.len() as u64 * 2, 7);
        for _ in 0..5 {
            w.write_group([record.as_slice()]).expect("writes");
        }
        let segs: Vec<u64> = list_segments(dir.path())
            .expect("lists")
            .into_iter()
            .map(|s| s.0)
            .collect();
        assert_eq!(segs, vec![7, 8, 9]);
        assert_eq!(w.seal(), 10);
        assert_eq!(w.seal(), 10, "sealing twice without writes opens nothing");
    }
}
