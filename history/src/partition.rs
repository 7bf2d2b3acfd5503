//! Daily Parquet partitions: `partitions/date=YYYY-MM-DD/part-{segment:020}.parquet`.
//!
//! The schema is normative and documented in `docs/specs/history.md`.

use crate::column_batch::ColumnBatch;
use crate::error::Error;
use crate::schema::{
    KIND_NAMES, Kind, MAX_TIMESTAMP, MIN_TIMESTAMP, check_timestamp, columns, kinds,
    parse_numbers_json,
};
use crate::wal::sync_dir;
use chrono::{DateTime, NaiveDate};
use polars::prelude::*;
use std::fs::{self, File};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use thingward_models::{Datapoint, Metric, ThingName, Value};

const DAY_PREFIX: &str = "date=";
const DAY_FORMAT: &str = "%Y-%m-%d";
const PART_PREFIX: &str = "part-";
const PART_SUFFIX: &str = ".parquet";
const TMP_SUFFIX: &str = ".tmp";

/// The UTC day of a timestamp.
pub(crate) fn day_of(timestamp: i64) -> Result<NaiveDate, Error> {
    check_timestamp(timestamp)?;
    DateTime::from_timestamp_millis(timestamp)
        .map(|t| t.date_naive())
        .ok_or(Error::TimestampOutOfRange {
            timestamp,
            min: MIN_TIMESTAMP,
            max: MAX_TIMESTAMP,
        })
}

/// The directory of one day.
pub(crate) fn day_dir(partitions: &Path, day: NaiveDate) -> PathBuf {
    partitions.join(format!("{DAY_PREFIX}{}", day.format(DAY_FORMAT)))
}

fn part_name(seq: u64) -> String {
    format!("{PART_PREFIX}{seq:020}{PART_SUFFIX}")
}

fn parse_part_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix(PART_PREFIX)?.strip_suffix(PART_SUFFIX)?;
    (digits.len() == 20).then(|| digits.parse().ok()).flatten()
}

/// The day directories, oldest first.
pub(crate) fn list_days(partitions: &Path) -> Result<Vec<(NaiveDate, PathBuf)>, Error> {
    let mut out = Vec::new();
    for entry in fs::read_dir(partitions).map_err(Error::io(partitions))? {
        let entry = entry.map_err(Error::io(partitions))?;
        let name = entry.file_name();
        let Some(day) = name
            .to_str()
            .and_then(|n| n.strip_prefix(DAY_PREFIX))
            .and_then(|d| NaiveDate::parse_from_str(d, DAY_FORMAT).ok())
        else {
            continue;
        };
        out.push((day, entry.path()));
    }
    out.sort_unstable_by_key(|(day, _)| *day);
    Ok(out)
}

/// The part files of one day, by segment number.
pub(crate) fn list_parts(day_dir: &Path) -> Result<Vec<(u64, PathBuf)>, Error> {
    let mut out = Vec::new();
    for entry in fs::read_dir(day_dir).map_err(Error::io(day_dir))? {
        let entry = entry.map_err(Error::io(day_dir))?;
        if let Some(seq) = entry.file_name().to_str().and_then(parse_part_name) {
            out.push((seq, entry.path()));
        }
    }
    out.sort_unstable_by_key(|(seq, _)| *seq);
    Ok(out)
}

/// Removes temporary files a crashed roll left behind; returns the highest segment number that
/// has a part file.
pub(crate) fn recover(partitions: &Path) -> Result<Option<u64>, Error> {
    let mut max_seq = None;
    for (_, dir) in list_days(partitions)? {
        for entry in fs::read_dir(&dir).map_err(Error::io(&dir))? {
            let entry = entry.map_err(Error::io(&dir))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.ends_with(TMP_SUFFIX) {
                let path = entry.path();
                fs::remove_file(&path).map_err(Error::io(&path))?;
                tracing::warn!(file = %path.display(), "Removed a partial Parquet file left by a crashed roll");
            } else if let Some(seq) = parse_part_name(name) {
                max_seq = max_seq.max(Some(seq));
            }
        }
    }
    Ok(max_seq)
}

/// A part file written under a temporary name, fsync'd, waiting to be published by a rename.
#[derive(Debug)]
pub(crate) struct StagedPart {
    tmp: PathBuf,
    path: PathBuf,
    dir: PathBuf,
}

impl StagedPart {
    /// Renames the file into place and fsyncs its directory. Overwrites a part file an earlier,
    /// interrupted roll of the same segment published.
    pub(crate) fn publish(self) -> Result<(), Error> {
        fs::rename(&self.tmp, &self.path).map_err(Error::io(&self.path))?;
        sync_dir(&self.dir)
    }
}

/// Writes the rows of segment `seq` as one staged part file per UTC day, each sorted by
/// `(thing, metric, ts)` (stable: equal keys keep push order).
pub(crate) fn stage_batch(
    partitions: &Path,
    seq: u64,
    batch: &ColumnBatch,
) -> Result<Vec<StagedPart>, Error> {
    batch.check_timestamps()?;
    let mut staged = Vec::new();
    for (day, mut order) in rows_by_day(batch) {
        // Sorted rows give tight row-group statistics on thing and metric, so filtered scans
        // skip most of a file.
        sort_rows(batch, &mut order);
        let dir = day_dir(partitions, day_of(day * DAY_MS)?);
        if !dir.exists() {
            fs::create_dir_all(&dir).map_err(Error::io(&dir))?;
            sync_dir(partitions)?;
        }
        let path = dir.join(part_name(seq));
        let tmp = dir.join(format!("{}{TMP_SUFFIX}", part_name(seq)));
        let mut df = frame(batch, &order)?;
        drop(order);
        let mut file = File::create(&tmp).map_err(Error::io(&tmp))?;
        ParquetWriter::new(&mut file)
            .with_compression(ParquetCompression::Zstd(None))
            .finish(&mut df)?;
        drop(df);
        file.sync_all().map_err(Error::io(&tmp))?;
        staged.push(StagedPart { tmp, path, dir });
    }
    Ok(staged)
}

const DAY_MS: i64 = 86_400_000;

/// The batch's row indices grouped by UTC day number (days since the epoch), in push order.
fn rows_by_day(batch: &ColumnBatch) -> Vec<(i64, Vec<u32>)> {
    let day = |ts: i64| ts.div_euclid(DAY_MS);
    let Some(&first) = batch.ts.first() else {
        return Vec::new();
    };
    let first = day(first);
    if batch.ts.iter().all(|&ts| day(ts) == first) {
        return vec![(first, (0..batch.len() as u32).collect())];
    }
    let mut by_day: std::collections::BTreeMap<i64, Vec<u32>> = Default::default();
    for (i, &ts) in batch.ts.iter().enumerate() {
        by_day.entry(day(ts)).or_default().push(i as u32);
    }
    by_day.into_iter().collect()
}

/// The rank of each interned name in byte order of its text.
fn ranks<T>(names: &[T], text: impl Fn(&T) -> &str) -> Vec<u32> {
    let mut by_name: Vec<u32> = (0..names.len() as u32).collect();
    by_name.sort_by(|&a, &b| text(&names[a as usize]).cmp(text(&names[b as usize])));
    let mut rank = vec![0; names.len()];
    for (r, &id) in by_name.iter().enumerate() {
        rank[id as usize] = r as u32;
    }
    rank
}

/// Sorts row indices by `(thing, metric, ts)`, stably; an already sorted order costs one pass.
fn sort_rows(batch: &ColumnBatch, order: &mut [u32]) {
    let thing_rank = ranks(&batch.things, |t| t.as_str());
    let metric_rank = ranks(&batch.metrics, |m| m.as_str());
    let key = |i: u32| {
        let i = i as usize;
        (
            thing_rank[batch.thing[i] as usize],
            metric_rank[batch.metric[i] as usize],
            batch.ts[i],
        )
    };
    if order.windows(2).all(|w| key(w[0]) <= key(w[1])) {
        return;
    }
    order.sort_by_key(|&i| key(i));
}

/// A `Datetime(ms, UTC)` literal. (`lit(i64).cast(..)` loses the time zone in polars 0.55's
/// row-group statistics pruning, which then refuses to compare it with the column.)
/// A `ts` literal (Datetime ms UTC) for predicates on the `ts` column.
pub fn ts_lit(ms: i64) -> Expr {
    let tz = std::sync::Arc::new(TimeZone::UTC);
    lit(Scalar::new(
        DataType::Datetime(TimeUnit::Milliseconds, Some(TimeZone::UTC)),
        AnyValue::DatetimeOwned(ms, TimeUnit::Milliseconds, Some(tz)),
    ))
}

/// The Parquet frame of a batch's rows in `order`.
fn frame(b: &ColumnBatch, order: &[u32]) -> Result<DataFrame, Error> {
    let n = order.len();
    let rows = || order.iter().map(|&i| i as usize);
    let thing = StringChunked::from_iter_values(
        columns::THING.into(),
        rows().map(|i| b.things[b.thing[i] as usize].as_str()),
    );
    let metric = StringChunked::from_iter_values(
        columns::METRIC.into(),
        rows().map(|i| b.metrics[b.metric[i] as usize].as_str()),
    );
    let topic = if b.has_topics() {
        StringChunked::from_iter_options(columns::TOPIC.into(), rows().map(|i| b.topic_of(i)))
    } else {
        StringChunked::full_null(columns::TOPIC.into(), n)
    };
    let ts = Int64Chunked::from_vec(columns::TS.into(), rows().map(|i| b.ts[i]).collect())
        .into_datetime(TimeUnit::Milliseconds, Some(TimeZone::UTC));
    let kind = StringChunked::from_iter_values(
        columns::KIND.into(),
        rows().map(|i| KIND_NAMES[b.kind[i] as usize]),
    );
    let value = Float64Chunked::from_iter_options(
        columns::VALUE.into(),
        rows().map(|i| (b.kind[i] == Kind::Number).then_some(b.value[i])),
    );
    let list = StringChunked::from_iter_options(columns::LIST.into(), rows().map(|i| b.list(i)));
    Ok(DataFrame::new(
        n,
        vec![
            thing.into_column(),
            metric.into_column(),
            topic.into_column(),
            ts.into_column(),
            kind.into_column(),
            value.into_column(),
            list.into_column(),
        ],
    )?)
}

/// Rebuilds a value from its columns.
fn join_value(kind: &str, value: Option<f64>, list: Option<&str>) -> Option<Value> {
    Some(match kind {
        kinds::NUMBER => Value::Number(value?),
        kinds::NUMBER_LIST => Value::Numbers(parse_numbers_json(list?)?),
        kinds::STRING_LIST => Value::Strings(serde_json::from_str(list?).ok()?),
        kinds::IP_LIST => {
            let texts: Vec<String> = serde_json::from_str(list?).ok()?;
            Value::Ips(
                texts
                    .iter()
                    .map(|t| t.parse::<IpAddr>())
                    .collect::<Result<_, _>>()
                    .ok()?,
            )
        }
        kinds::PORT_LIST => Value::Ports(serde_json::from_str(list?).ok()?),
        _ => return None,
    })
}

/// One row of a `values` answer.
pub(crate) type Row = (i64, Option<String>, Value);

/// What `values` asks for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Query<'a> {
    pub(crate) thing: &'a ThingName,
    pub(crate) metric: &'a Metric,
    pub(crate) topic: Option<&'a str>,
    pub(crate) start: i64,
    pub(crate) end: i64,
    pub(crate) limit: usize,
}

/// The part files whose day overlaps `[start, end]` (already clamped to the storable range).
pub(crate) fn files_overlapping(
    partitions: &Path,
    start: i64,
    end: i64,
) -> Result<Vec<PathBuf>, Error> {
    let (first, last) = (day_of(start)?, day_of(end)?);
    let mut files = Vec::new();
    for (day, dir) in list_days(partitions)? {
        if (first..=last).contains(&day) {
            files.extend(list_parts(&dir)?.into_iter().map(|(_, p)| p));
        }
    }
    Ok(files)
}

/// A lazy scan of part files, without hive columns (the day comes from the timestamp).
///
/// # Errors
/// A path polars cannot take, or a scan that cannot be set up.
pub fn scan_files(files: &[PathBuf]) -> Result<LazyFrame, Error> {
    let paths = files
        .iter()
        .map(|p| PlRefPath::try_from_path(p))
        .collect::<PolarsResult<Vec<_>>>()?;
    let args = ScanArgsParquet {
        hive_options: HiveOptions {
            enabled: Some(false),
            ..Default::default()
        },
        ..Default::default()
    };
    Ok(LazyFrame::scan_parquet_files(paths.into(), args)?)
}

/// Scans `files` lazily for the query's rows, oldest first, at most `limit`.
pub(crate) fn scan(partitions: &Path, files: &[PathBuf], q: &Query<'_>) -> Result<Vec<Row>, Error> {
    if files.is_empty() || q.limit == 0 {
        return Ok(Vec::new());
    }
    let mut predicate = col(columns::THING)
        .eq(lit(q.thing.as_str()))
        .and(col(columns::METRIC).eq(lit(q.metric.as_str())))
        .and(col(columns::TS).gt_eq(ts_lit(q.start)))
        .and(col(columns::TS).lt_eq(ts_lit(q.end)));
    if let Some(topic) = q.topic {
        predicate = predicate.and(col(columns::TOPIC).eq(lit(topic)));
    }
    let df = scan_files(files)?
        .filter(predicate)
        .select([
            col(columns::TS).cast(DataType::Int64),
            col(columns::TOPIC),
            col(columns::KIND),
            col(columns::VALUE),
            col(columns::LIST),
        ])
        .sort(
            [columns::TS],
            SortMultipleOptions::default().with_maintain_order(true),
        )
        .limit(IdxSize::try_from(q.limit).unwrap_or(IdxSize::MAX))
        .collect()?;
    let cols = RowColumns::of(&df)?;
    (0..df.height()).map(|i| cols.row(i, partitions)).collect()
}

/// The time, topic and value columns of a collected frame, decoded row by row.
struct RowColumns<'a> {
    ts: &'a Int64Chunked,
    topic: &'a StringChunked,
    kind: &'a StringChunked,
    value: &'a Float64Chunked,
    list: &'a StringChunked,
}

impl<'a> RowColumns<'a> {
    fn of(df: &'a DataFrame) -> Result<Self, Error> {
        Ok(Self {
            ts: df.column(columns::TS)?.i64()?,
            topic: df.column(columns::TOPIC)?.str()?,
            kind: df.column(columns::KIND)?.str()?,
            value: df.column(columns::VALUE)?.f64()?,
            list: df.column(columns::LIST)?.str()?,
        })
    }

    /// Row `i` as (timestamp, topic, value).
    fn row(&self, i: usize, partitions: &Path) -> Result<Row, Error> {
        let t = self
            .ts
            .get(i)
            .ok_or_else(|| invalid(partitions, "null timestamp"))?;
        let k = self
            .kind
            .get(i)
            .ok_or_else(|| invalid(partitions, "null kind"))?;
        let v = join_value(k, self.value.get(i), self.list.get(i))
            .ok_or_else(|| invalid(partitions, "value does not match its kind"))?;
        Ok((t, self.topic.get(i).map(str::to_owned), v))
    }
}

fn invalid(partitions: &Path, reason: &'static str) -> Error {
    Error::InvalidRow {
        path: partitions.to_owned(),
        reason,
    }
}

/// Every datapoint of one day's partition, oldest first (rows with equal timestamps keep file
/// order). For batch jobs (evaluation, training) that stream a history day by day.
pub(crate) fn read_day(partitions: &Path, dir: &Path) -> Result<Vec<Datapoint>, Error> {
    let files: Vec<PathBuf> = list_parts(dir)?.into_iter().map(|(_, p)| p).collect();
    if files.is_empty() {
        return Ok(Vec::new());
    }
    let df = scan_files(&files)?
        .select([
            col(columns::THING),
            col(columns::METRIC),
            col(columns::TS).cast(DataType::Int64),
            col(columns::TOPIC),
            col(columns::KIND),
            col(columns::VALUE),
            col(columns::LIST),
        ])
        .sort(
            [columns::TS],
            SortMultipleOptions::default().with_maintain_order(true),
        )
        .collect()?;
    let thing = df.column(columns::THING)?.str()?;
    let metric = df.column(columns::METRIC)?.str()?;
    let cols = RowColumns::of(&df)?;
    let mut out = Vec::with_capacity(df.height());
    for i in 0..df.height() {
        let name = thing
            .get(i)
            .ok_or_else(|| invalid(partitions, "null thing"))?;
        let thing =
            ThingName::try_from(name).map_err(|_| invalid(partitions, "invalid thing name"))?;
        let metric: Metric = metric
            .get(i)
            .ok_or_else(|| invalid(partitions, "null metric"))?
            .parse()
            .map_err(|_| invalid(partitions, "unknown metric"))?;
        let (timestamp, topic, value) = cols.row(i, partitions)?;
        out.push(Datapoint {
            thing,
            metric,
            topic,
            timestamp,
            value,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_splits_and_joins() {
        let values = [
            Value::Number(-1.25),
            Value::Numbers(vec![1.0, 2.5]),
            Value::Strings(vec!["a\"b".into(), "ü".into()]),
            Value::Ips(vec![
                "10.1.2.3".parse().expect("ip"),
                "fe80::1".parse().expect("ip"),
            ]),
            Value::Ports(vec![22, 65535]),
        ];
        let mut batch = ColumnBatch::new();
        for (i, v) in values.iter().enumerate() {
            batch.push(&Datapoint {
                thing: ThingName::try_from("t").expect("name"),
                metric: Metric::AllBytesOut,
                topic: None,
                timestamp: i as i64,
                value: v.clone(),
            });
        }
        for (i, v) in values.iter().enumerate() {
            let k = KIND_NAMES[batch.kind[i] as usize];
            let x = (batch.kind[i] == Kind::Number).then_some(batch.value[i]);
            assert_eq!(join_value(k, x, batch.list(i)).as_ref(), Some(v));
        }
        assert_eq!(batch.list(4), Some("[22,65535]"));
    }

    #[test]
    fn rows_are_grouped_by_day_and_sorted_stably() {
        let mut b = ColumnBatch::new();
        let (x, y) = (
            b.thing(&ThingName::try_from("b").expect("name")),
            b.thing(&ThingName::try_from("a").expect("name")),
        );
        let (out, inn) = (
            b.metric(&Metric::AllBytesOut),
            b.metric(&Metric::AllBytesIn),
        );
        b.push_number(x, out, DAY_MS + 1, 0.0);
        b.push_number(x, out, 2, 1.0);
        b.push_number(y, out, 2, 2.0);
        b.push_number(x, inn, 2, 3.0);
        b.push_number(x, out, 2, 4.0);
        let days = rows_by_day(&b);
        assert_eq!(days, vec![(0, vec![1, 2, 3, 4]), (1, vec![0])]);
        let mut order = days[0].1.clone();
        sort_rows(&b, &mut order);
        assert_eq!(
            order,
            vec![2, 3, 1, 4],
            "a < b, all-bytes-in < all-bytes-out, stable"
        );
    }

    #[test]
    fn day_partitions_are_utc_days() {
        assert_eq!(day_of(0).expect("day").to_string(), "1970-01-01");
        assert_eq!(day_of(-1).expect("day").to_string(), "1969-12-31");
        assert_eq!(
            day_of(86_400_000 - 1).expect("day").to_string(),
            "1970-01-01"
        );
        assert_eq!(
            day_of(MIN_TIMESTAMP).expect("day").to_string(),
            "0001-01-01"
        );
        assert_eq!(
            day_of(MAX_TIMESTAMP).expect("day").to_string(),
            "9999-12-31"
        );
        assert!(day_of(MAX_TIMESTAMP + 1).is_err());
        assert_eq!(parse_part_name(&part_name(42)), Some(42));
        assert_eq!(parse_part_name("part-42.parquet"), None);
    }
}
