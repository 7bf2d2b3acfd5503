//! `thingward generate`: writes a synthetic fleet (`datasets/scenarios/*.toml`) as a data
//! directory that `thingward serve --data-dir` and the trainer read directly:
//!
//! ```text
//! {out}/history/partitions/date=YYYY-MM-DD/part-{seq:020}.parquet   the datapoints
//! {out}/labels.json                                                 ground truth (docs/specs/labels.md)
//! {out}/scenario.toml                                               the scenario, for provenance
//! ```
//!
//! Generation streams: one scenario day × `--devices-per-part` devices at a time (a job), each
//! job's readings written straight into a `thingward_history::ColumnBatch` (no `Datapoint` per
//! value) and then into its Parquet file. `--threads` workers run jobs in parallel, so one
//! job's Parquet encoding overlaps the next one's generation; memory stays bounded by one batch
//! per worker whatever the fleet size and span.

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, mpsc};
use std::time::{Duration, Instant};
use thingward_datasets::{
    DeviceStream, Fleet, METRICS, Reading, SLOTS_PER_DAY, Scenario, ValueRef,
};
use thingward_history::{ColumnBatch, Importer, MetricId, Reservation, RollStats};

/// Options of `thingward generate`.
#[derive(Debug, clap::Args)]
pub struct GenerateArgs {
    /// The scenario file (TOML), e.g. datasets/scenarios/default.toml.
    #[arg(long)]
    scenario: PathBuf,
    /// The output data directory; must not already hold history partitions.
    #[arg(long)]
    out: PathBuf,
    /// Generator threads (default: the available cores). The output does not depend on it.
    #[arg(long)]
    threads: Option<usize>,
    /// Devices per Parquet part file (one file per day per device range). Larger parts mean
    /// fewer files and more memory (under 1 MB per device-day, one batch per thread).
    #[arg(long, default_value_t = 500)]
    devices_per_part: usize,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

/// What a run did, for the summary line.
#[derive(Debug, Default)]
struct Totals {
    datapoints: u64,
    files: usize,
    generate: Duration,
    write: Duration,
}

/// Generates the scenario into `args.out`.
///
/// # Errors
/// An unreadable or invalid scenario, an output directory that already holds history, or a
/// write failure.
pub fn run(args: GenerateArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let scenario = Scenario::load(&args.scenario)
        .with_context(|| format!("Cannot load the scenario {}", args.scenario.display()))?;
    let fleet = Fleet::new(&scenario).context("Cannot plan the scenario's fleet")?;
    let history_dir = args.out.join("history");
    let partitions = history_dir.join("partitions");
    if partitions.exists()
        && std::fs::read_dir(&partitions)
            .with_context(|| format!("Cannot read {}", partitions.display()))?
            .next()
            .is_some()
    {
        bail!(
            "{} already holds history partitions; generate into an empty directory",
            partitions.display()
        );
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("Cannot create {}", args.out.display()))?;
    let mut importer = Importer::open(&history_dir)
        .with_context(|| format!("Cannot open {} for import", history_dir.display()))?;
    let labels_path = args.out.join("labels.json");
    fleet
        .labels()
        .save(&labels_path)
        .with_context(|| format!("Cannot write {}", labels_path.display()))?;
    std::fs::copy(&args.scenario, args.out.join("scenario.toml"))
        .context("Cannot copy the scenario next to the data")?;

    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
        .max(1);
    let per_part = args.devices_per_part.max(1);
    let batches_total = u64::from(scenario.days()) * fleet.len().div_ceil(per_part) as u64;
    tracing::info!(
        scenario = scenario.name(),
        devices = fleet.len(),
        days = scenario.days(),
        events = fleet.labels().events.len(),
        threads,
        out = %args.out.display(),
        "Generating a synthetic fleet"
    );
    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(batches_total)
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{elapsed_precise} [{bar:40}] {pos}/{len} parts, day {msg} (eta {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );

    let ranges = fleet.len().div_ceil(per_part);
    let jobs = u64::from(scenario.days()) * ranges as u64;
    let reservation = importer.reserve(jobs);
    let pipeline = Pipeline {
        fleet: &fleet,
        reservation,
        ranges: (0..ranges)
            .map(|r| {
                let devices = r * per_part..((r + 1) * per_part).min(fleet.len());
                RangeState {
                    streams: Mutex::new((0, devices.map(|i| fleet.device(i)).collect())),
                    day_done: Condvar::new(),
                }
            })
            .collect(),
        next_job: AtomicU64::new(0),
        jobs,
        stop: AtomicBool::new(false),
    };
    let mut totals = Totals::default();
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let (tx, rx) = mpsc::channel::<JobDone>();
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let tx = tx.clone();
                let pipeline = &pipeline;
                scope.spawn(move || pipeline.work(&tx))
            })
            .collect();
        drop(tx);
        for done in rx {
            totals.generate += done.generated_in;
            totals.write += done.written_in;
            totals.datapoints += done.stats.datapoints;
            totals.files += done.stats.files;
            bar.set_message(format!("{}/{}", done.day + 1, scenario.days()));
            bar.inc(1);
        }
        for w in workers {
            match w.join() {
                Ok(result) => result?,
                Err(_) => bail!("A generator thread panicked"),
            }
        }
        Ok(())
    })?;
    bar.finish_and_clear();
    let elapsed = started.elapsed();
    let rate = totals.datapoints as f64 / elapsed.as_secs_f64().max(1e-9);
    tracing::info!(
        datapoints = totals.datapoints,
        files = totals.files,
        seconds = elapsed.as_secs_f64(),
        datapoints_per_second = rate.round(),
        generate_seconds = totals.generate.as_secs_f64(),
        write_seconds = totals.write.as_secs_f64(),
        "Generated the fleet"
    );
    println!(
        "{} datapoints in {} files, {:.1} s ({:.2} M datapoints/s; thread-seconds generating {:.1}, writing Parquet {:.1}, on {threads} threads); labels: {}",
        totals.datapoints,
        totals.files,
        elapsed.as_secs_f64(),
        rate / 1e6,
        totals.generate.as_secs_f64(),
        totals.write.as_secs_f64(),
        labels_path.display()
    );
    Ok(())
}

/// One device range's streams: the next day to generate and a stream per device.
#[derive(Debug)]
struct RangeState<'f> {
    streams: Mutex<(u32, Vec<DeviceStream<'f>>)>,
    /// Signalled when the range's day advances.
    day_done: Condvar,
}

/// The work of one run, shared by the worker threads.
///
/// Job `j` is day `j / ranges` of device range `j % ranges`, written as reserved segment `j`,
/// so the files depend only on the scenario and `--devices-per-part`, never on the threads or
/// on which thread ran which job. Workers take jobs in order; a job generates its device-day
/// under its range's lock (a device's stream is sequential, so day `d` waits for day `d - 1`
/// of the same range), then writes its Parquet file outside the lock, so one range's next day
/// is generated while this one is written.
#[derive(Debug)]
struct Pipeline<'f> {
    fleet: &'f Fleet,
    reservation: Reservation<'f>,
    ranges: Vec<RangeState<'f>>,
    next_job: AtomicU64,
    jobs: u64,
    /// Set when a worker fails or panics: the others stop taking jobs.
    stop: AtomicBool,
}

/// A finished job, for the progress bar and the summary.
#[derive(Debug)]
struct JobDone {
    day: u32,
    stats: RollStats,
    generated_in: Duration,
    written_in: Duration,
}

/// Stops the other workers if this one unwinds.
struct StopOnPanic<'a>(&'a AtomicBool);

impl Drop for StopOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.store(true, Ordering::SeqCst);
        }
    }
}

impl Pipeline<'_> {
    /// One worker: takes jobs until none are left (or another worker failed).
    fn work(&self, tx: &mpsc::Sender<JobDone>) -> anyhow::Result<()> {
        let _guard = StopOnPanic(&self.stop);
        let result = self.work_jobs(tx);
        if result.is_err() {
            self.stop.store(true, Ordering::SeqCst);
        }
        result
    }

    fn work_jobs(&self, tx: &mpsc::Sender<JobDone>) -> anyhow::Result<()> {
        let mut batch = ColumnBatch::new();
        let mut readings = Vec::new();
        let ranges = self.ranges.len() as u64;
        loop {
            if self.stop.load(Ordering::SeqCst) {
                return Ok(());
            }
            let job = self.next_job.fetch_add(1, Ordering::SeqCst);
            if job >= self.jobs {
                return Ok(());
            }
            let day = u32::try_from(job / ranges).context("Too many days")?;
            let range = &self.ranges[(job % ranges) as usize];
            let t = Instant::now();
            {
                let mut state = range
                    .streams
                    .lock()
                    .map_err(|_| anyhow::anyhow!("A generator thread panicked"))?;
                while state.0 < day {
                    if self.stop.load(Ordering::SeqCst) {
                        return Ok(());
                    }
                    state = range
                        .day_done
                        .wait_timeout(state, Duration::from_millis(100))
                        .map_err(|_| anyhow::anyhow!("A generator thread panicked"))?
                        .0;
                }
                fill_day(self.fleet, &mut state.1, &mut readings, &mut batch);
                state.0 += 1;
            }
            range.day_done.notify_all();
            let generated_in = t.elapsed();
            let t = Instant::now();
            let stats = self.reservation.write(job, &batch).with_context(|| {
                format!("Cannot write day {day} of device range {}", job % ranges)
            })?;
            let done = JobDone {
                day,
                stats,
                generated_in,
                written_in: t.elapsed(),
            };
            if tx.send(done).is_err() {
                return Ok(()); // the main thread is gone
            }
        }
    }
}

/// The next day of every stream into `batch` (cleared first), in part-file row order: device
/// after device, metric-major, oldest first. `readings` is scratch space reused across calls.
fn fill_day(
    fleet: &Fleet,
    streams: &mut [DeviceStream<'_>],
    readings: &mut Vec<(u32, Reading)>,
    batch: &mut ColumnBatch,
) {
    batch.clear();
    let metrics: Vec<MetricId> = METRICS.iter().map(|m| batch.metric(m)).collect();
    let mut clean = Reading::default();
    readings.resize_with(SLOTS_PER_DAY as usize, Default::default);
    for stream in streams {
        let mut n = 0;
        for (slot, observed) in readings.iter_mut() {
            let Some(s) = stream.step(&mut clean, observed) else {
                break;
            };
            *slot = s;
            n += 1;
        }
        let thing = batch.thing(stream.thing());
        for (m, &metric) in METRICS.iter().zip(&metrics) {
            for (slot, r) in &readings[..n] {
                let ts = fleet.slot_ms(*slot);
                match r.value_ref(m) {
                    None => {}
                    Some(ValueRef::Number(x)) => batch.push_number(thing, metric, ts, x),
                    Some(ValueRef::Ports(p)) => batch.push_ports(thing, metric, ts, p),
                    Some(ValueRef::Ips(ips)) => batch.push_ips(thing, metric, ts, ips),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use thingward_datasets::Labels;
    use thingward_history::{History, HistoryOptions};
    use thingward_models::Metric;

    #[test]
    fn tiny_scenario_becomes_a_readable_history_and_labels() {
        let out = tempfile::tempdir().expect("tempdir");
        let scenario =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../datasets/scenarios/tiny.toml");
        let args = |threads| GenerateArgs {
            scenario: scenario.clone(),
            out: out.path().to_owned(),
            threads: Some(threads),
            devices_per_part: 7,
            quiet: true,
        };
        run(args(2)).expect("generates");
        assert!(
            run(args(1)).is_err(),
            "refuses a directory that already holds history"
        );

        let labels = Labels::load(&out.path().join("labels.json")).expect("labels load");
        let fleet = Fleet::new(&Scenario::load(&scenario).expect("scenario")).expect("fleet");
        assert_eq!(&labels, fleet.labels());

        let history = History::open(&out.path().join("history"), HistoryOptions::default())
            .expect("history opens");
        let thing = fleet.thing(3);
        let rows = history
            .values(
                thing,
                &Metric::NumMessagesSent,
                labels.start_ms,
                labels.end_ms,
                usize::MAX,
            )
            .expect("reads");
        let expected: Vec<(i64, f64)> = fleet
            .device(3)
            .filter(|d| d.observed.online)
            .map(|d| (d.timestamp, d.observed.messages_sent))
            .collect();
        let got: Vec<(i64, f64)> = rows
            .iter()
            .map(|(t, _, v)| (*t, v.as_number().expect("number")))
            .collect();
        assert_eq!(got, expected);
    }

    /// Every file under `dir`, by path relative to it, with its bytes.
    fn tree(dir: &std::path::Path) -> std::collections::BTreeMap<PathBuf, Vec<u8>> {
        let mut out = std::collections::BTreeMap::new();
        let mut todo = vec![dir.to_owned()];
        while let Some(d) = todo.pop() {
            for entry in std::fs::read_dir(&d).expect("reads dir") {
                let path = entry.expect("entry").path();
                if path.is_dir() {
                    todo.push(path);
                } else {
                    let rel = path.strip_prefix(dir).expect("inside").to_owned();
                    out.insert(rel, std::fs::read(&path).expect("reads file"));
                }
            }
        }
        out
    }

    #[test]
    fn columnar_import_writes_the_fleets_datapoints_in_the_same_bytes_whatever_the_threads() {
        let scenario =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../datasets/scenarios/tiny.toml");
        let (a, b) = (
            tempfile::tempdir().expect("tempdir"),
            tempfile::tempdir().expect("tempdir"),
        );
        for (out, threads) in [(&a, 1), (&b, 3)] {
            run(GenerateArgs {
                scenario: scenario.clone(),
                out: out.path().to_owned(),
                threads: Some(threads),
                devices_per_part: 5,
                quiet: true,
            })
            .expect("generates");
        }
        let partitions = |d: &tempfile::TempDir| d.path().join("history").join("partitions");
        let files = tree(&partitions(&a));
        assert_eq!(files.len(), 4 * 3, "4 device ranges × 3 days");
        assert!(files == tree(&partitions(&b)), "same seed, same bytes");

        let fleet = Fleet::new(&Scenario::load(&scenario).expect("scenario")).expect("fleet");
        let key = |d: &thingward_models::Datapoint| {
            (d.thing.clone(), d.metric.as_str().to_owned(), d.timestamp)
        };
        let mut expected: Vec<_> = fleet.batches(5, 1).flat_map(|b| b.datapoints).collect();
        let mut got = Vec::new();
        for day in thingward_history::partition_days(&partitions(&a)).expect("days") {
            got.extend(
                thingward_history::read_partition_day(&partitions(&a), day).expect("reads day"),
            );
        }
        expected.sort_by_key(key);
        got.sort_by_key(key);
        assert_eq!(got.len(), expected.len());
        assert!(
            got == expected,
            "the files hold exactly the fleet's datapoints"
        );
    }
}
