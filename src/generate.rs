//! `thingward generate`: writes a synthetic fleet (`datasets/scenarios/*.toml`) as a data
//! directory that `thingward serve --data-dir` and the trainer read directly:
//!
//! ```text
//! {out}/history/partitions/date=YYYY-MM-DD/part-{seq:020}.parquet   the datapoints
//! {out}/labels.json                                                 ground truth (docs/specs/labels.md)
//! {out}/scenario.toml                                               the scenario, for provenance
//! ```
//!
//! Generation streams: one scenario day × `--devices-per-part` devices at a time, generated on
//! `--threads` threads while the previous batch is written, so memory stays bounded by two
//! batches whatever the fleet size and span.

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};
use thingward_datasets::{Batch, Fleet, Scenario};
use thingward_history::Importer;

/// Options of `thingward generate`.
#[derive(Debug, clap::Args)]
pub(crate) struct GenerateArgs {
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
    /// fewer files and more memory (~2.5 MB per device-day in flight).
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
pub(crate) fn run(args: GenerateArgs) -> anyhow::Result<()> {
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

    let mut totals = Totals::default();
    std::thread::scope(|scope| -> anyhow::Result<()> {
        // One batch in the channel and one being generated: generation of the next batch
        // overlaps the Parquet write of this one.
        let (tx, rx) = mpsc::sync_channel::<(Batch, Duration)>(1);
        let fleet = &fleet;
        let producer = scope.spawn(move || {
            let mut batches = fleet.batches(per_part, threads);
            loop {
                let t = Instant::now();
                let Some(batch) = batches.next() else { break };
                if tx.send((batch, t.elapsed())).is_err() {
                    break; // the writer failed and hung up
                }
            }
        });
        for (batch, generated_in) in rx {
            totals.generate += generated_in;
            let t = Instant::now();
            let stats = importer.write(&batch.datapoints).with_context(|| {
                format!("Cannot write day {} devices {:?}", batch.day, batch.devices)
            })?;
            totals.write += t.elapsed();
            totals.datapoints += stats.datapoints;
            totals.files += stats.files;
            bar.set_message(format!("{}/{}", batch.day + 1, scenario.days()));
            bar.inc(1);
        }
        if producer.join().is_err() {
            bail!("The generator thread panicked");
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
        "{} datapoints in {} files, {:.1} s ({:.2} M datapoints/s; generating {:.1} s, writing Parquet {:.1} s, overlapped); labels: {}",
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
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("datasets/scenarios/tiny.toml");
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
}
