//! `thingward eval`: scores detectors on a labelled fleet — a bundled scenario generated on the
//! fly, or recorded datapoints in the history layout plus a labels file — the same way for
//! every detector, and reports per level and per attack class.
//!
//! The fleet is streamed once, in time order: datapoints before the training end feed the
//! detectors' training ([`crate::detector::Detector::learn`], then `train`), the rest are
//! scored (`observe`, one verdict per level). ML Detect (`ml.rs`: `trainer::fit`, then
//! `Scorer::observe_ml`) and the rules baselines (`Scorer::observe`) run through the real
//! trainer and scorer, exactly the code paths the service uses.

mod detectors;
mod ml;
mod plot;
mod score;

use crate::detector::{Detector, FleetNote, Level, Note, Span, TrainingSet, Verdict};
use anyhow::{Context, bail};
use score::{
    AlarmStart, CleanTally, Episode, EpisodeBuilder, Judge, LabelledEvent, Report, ScoredFleetEvent,
};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use thingward_datasets::{Fleet, Labels, Scenario};
use thingward_models::{Datapoint, Value};

/// `thingward eval` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct EvalArgs {
    /// A scenario file (TOML) to generate and evaluate on, e.g. datasets/scenarios/default.toml.
    #[arg(long, conflicts_with = "data")]
    scenario: Option<PathBuf>,
    /// A data directory in the history layout (as written by `thingward generate` or
    /// `thingward serve`), evaluated with --labels.
    #[arg(long, requires = "labels")]
    data: Option<PathBuf>,
    /// The labels file for --data (format: docs/specs/labels.md).
    #[arg(long)]
    labels: Option<PathBuf>,
    /// Detectors to run: ml (ML Detect at LOW, MEDIUM and HIGH), rules-p999,
    /// rules-statistical, or external:NAME=ALARMS.csv (flags written by another tool, e.g.
    /// notebooks/baselines.py). Repeatable; default: ml and both rules.
    #[arg(long = "detector")]
    detectors: Vec<String>,
    /// Where to write eval.json, results.parquet, classes.csv, classes.parquet,
    /// episodes.parquet and the plots.
    #[arg(long, default_value = "eval-out")]
    out: PathBuf,
    /// An alarm this many minutes after an attack's end still detects it.
    #[arg(long, default_value_t = 60)]
    grace_minutes: i64,
    /// How many sample devices to plot.
    #[arg(long, default_value_t = 3)]
    plots: usize,
}

/// One detector's results.
#[derive(Debug, serde::Serialize)]
struct DetectorResult {
    detector: String,
    /// `rule` for the rules baselines; LOW/MEDIUM/HIGH for leveled detectors.
    level: String,
    /// The per-datapoint false-positive target of the level, when it has one.
    target_fpr: Option<f64>,
    /// The level's false-alarm budget (episodes per 1,000 device-days), when it has one.
    budget: Option<f64>,
    /// Observed notified false alarms per 1,000 clean device-days ÷ the budget.
    budget_ratio: Option<f64>,
    #[serde(flatten)]
    report: Report,
    /// False-positive rate per datapoint on clean devices, per metric.
    fpr_by_metric: std::collections::BTreeMap<String, f64>,
}

/// Runs `thingward eval`.
///
/// # Errors
/// Unreadable inputs, unknown detectors, unwritable output.
pub fn run(args: EvalArgs) -> anyhow::Result<()> {
    let source = Source::open(&args)?;
    let labels = source.labels().clone();
    let training_end = labels
        .training_end_ms
        .unwrap_or(labels.start_ms + 14 * 86_400_000);
    let slot_ms = labels.slot_ms.unwrap_or(300_000);
    let names = if args.detectors.is_empty() {
        vec![
            "ml".to_owned(),
            "rules-p999".to_owned(),
            "rules-statistical".to_owned(),
        ]
    } else {
        args.detectors.clone()
    };
    let mut detectors = names
        .iter()
        .map(|n| detectors::by_name(n))
        .collect::<anyhow::Result<Vec<Box<dyn Detector>>>>()?;
    let judge = Judge::new(
        labelled_events(&labels),
        args.grace_minutes * 60_000,
        slot_ms,
    );
    let mut samples = plot::Samples::choose(&labels, args.plots);

    let mut training = TrainingSet::default();
    let mut trained = false;
    let levels: Vec<Vec<Level>> = detectors.iter().map(|d| d.levels()).collect();
    let mut runs: Vec<Vec<Run>> = levels
        .iter()
        .map(|l| l.iter().map(|_| Run::default()).collect())
        .collect();
    let mut verdicts: Vec<Vec<Verdict>> = levels
        .iter()
        .map(|l| vec![Verdict::default(); l.len()])
        .collect();
    let columns: Vec<plot::Column> = detectors
        .iter()
        .zip(&levels)
        .enumerate()
        .flat_map(|(d, (det, ls))| {
            ls.iter().enumerate().map(move |(l, level)| plot::Column {
                label: if ls.len() == 1 {
                    det.name()
                } else {
                    format!("{} {}", det.name(), level.name)
                },
                detector: d,
                level: l,
            })
        })
        .collect();
    let span = Span {
        start: labels.start_ms,
        end: training_end,
    };
    let mut devices = std::collections::HashSet::new();
    let mut flags = Vec::new();
    let mut bounds = Vec::new();
    let mut last_ts = training_end;
    let mut scored = 0u64;
    let mut notes = Vec::new();
    source.for_each_day(&mut |batch: &[Datapoint]| {
        for dp in batch {
            let Some(x) = numeric_ml(dp) else { continue };
            if dp.timestamp < training_end {
                training.push(&dp.metric, x);
                for d in detectors.iter_mut() {
                    d.learn(dp, x);
                }
                continue;
            }
            if !trained {
                for d in detectors.iter_mut() {
                    d.train(&training, span)?;
                }
                training = TrainingSet::default();
                trained = true;
            }
            devices.insert(dp.thing.as_str().to_owned());
            last_ts = last_ts.max(dp.timestamp);
            scored += 1;
            let clean = judge.is_clean(dp.thing.as_str(), dp.timestamp);
            for ((d, det_runs), out) in detectors
                .iter_mut()
                .zip(runs.iter_mut())
                .zip(verdicts.iter_mut())
            {
                d.observe(dp, out);
                for (run, verdict) in det_runs.iter_mut().zip(out.iter()) {
                    if clean {
                        run.clean.datapoints += 1;
                        run.clean.flagged += u64::from(verdict.flagged);
                        let m = run.by_metric.entry(dp.metric.clone()).or_default();
                        m.datapoints += 1;
                        m.flagged += u64::from(verdict.flagged);
                    }
                    if verdict.alarm {
                        let how = AlarmStart {
                            held: verdict.held,
                            fleet_event: verdict.fleet_event,
                            incident: verdict.incident,
                        };
                        run.episodes
                            .alarm(dp.thing.as_str(), &dp.metric, dp.timestamp, how);
                    }
                    if verdict.clear {
                        run.episodes
                            .clear(dp.thing.as_str(), &dp.metric, dp.timestamp);
                    }
                }
                for (l, run) in det_runs.iter_mut().enumerate() {
                    d.drain_notes(l, &mut notes);
                    for note in notes.drain(..) {
                        match note {
                            Note::Released { thing, metric, at } => {
                                run.episodes.release(&thing, &metric, at);
                            }
                            Note::FleetEvent(f) => {
                                run.fleet.insert(f.id, f);
                            }
                        }
                    }
                }
            }
            if samples.wants(dp) {
                flags.clear();
                bounds.clear();
                for c in &columns {
                    flags.push(verdicts[c.detector][c.level].flagged);
                    bounds.push(detectors[c.detector].upper_bound(
                        dp.thing.as_str(),
                        &dp.metric,
                        dp.timestamp,
                        c.level,
                    ));
                }
                samples.record(dp, x, &flags, &bounds);
            }
        }
        Ok(())
    })?;
    if !trained {
        bail!(
            "The data has no datapoints after the training span (training ends at {training_end} ms)"
        );
    }

    let clean_devices = devices.iter().filter(|d| judge.is_clean_device(d)).count();
    let scored_days = (last_ts - training_end + slot_ms) as f64 / 86_400_000.0;
    let clean_device_days = clean_devices as f64 * scored_days;
    let mut results = Vec::new();
    let mut episode_rows = Vec::new();
    for (d, det_runs) in detectors.iter().zip(runs) {
        // Trained detectors know their levels' per-datapoint equivalents now.
        let det_levels = d.levels();
        for (run, level) in det_runs.into_iter().zip(&det_levels) {
            let episodes = run.episodes.finish(last_ts);
            let fleet_events: Vec<ScoredFleetEvent> = run
                .fleet
                .values()
                .filter(|f| f.opened)
                .map(|f| ScoredFleetEvent {
                    id: f.id,
                    start: f.start,
                    end: f.end.unwrap_or(last_ts),
                    metrics: f.metrics.clone(),
                    peak_share: f.peak_share,
                    explained: f.explained,
                })
                .collect();
            let report = judge.score(&episodes, &fleet_events, run.clean, clean_device_days);
            let fpr_by_metric = run
                .by_metric
                .iter()
                .map(|(m, t)| {
                    let rate = t.flagged as f64 / t.datapoints.max(1) as f64;
                    (m.as_str().to_owned(), rate)
                })
                .collect();
            episode_rows.extend(
                episodes
                    .into_iter()
                    .map(|e| (d.name(), level.name.clone(), e)),
            );
            results.push(DetectorResult {
                detector: d.name(),
                level: level.name.clone(),
                target_fpr: level.target_fpr,
                budget: level.budget,
                budget_ratio: level.budget.map(|b| report.alarms_per_1000_device_days / b),
                report,
                fpr_by_metric,
            });
        }
    }

    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("Cannot create {}", args.out.display()))?;
    let summary = serde_json::json!({
        "source": labels.source,
        "scored_datapoints": scored,
        "devices": devices.len(),
        "clean_devices": clean_devices,
        "scored_days": scored_days,
        "grace_minutes": args.grace_minutes,
        "results": results,
    });
    std::fs::write(
        args.out.join("eval.json"),
        serde_json::to_vec_pretty(&summary)?,
    )?;
    write_classes_csv(&args.out.join("classes.csv"), &results)?;
    write_parquet_tables(&args.out, &results)?;
    write_episodes(&args.out.join("episodes.parquet"), &episode_rows, &judge)?;
    let plots = samples.render(&args.out, &columns)?;

    let mut stdout = std::io::stdout().lock();
    writeln!(
        stdout,
        "{}",
        markdown(
            &results,
            scored,
            devices.len(),
            clean_devices,
            scored_days,
            labels.start_ms
        )
    )?;
    writeln!(
        stdout,
        "Wrote {}/eval.json, results.parquet, classes.csv, classes.parquet, episodes.parquet and {} plot(s).",
        args.out.display(),
        plots
    )?;
    Ok(())
}

#[derive(Debug, Default)]
struct Run {
    clean: CleanTally,
    by_metric: std::collections::BTreeMap<thingward_models::Metric, CleanTally>,
    episodes: EpisodeBuilder,
    /// Fleet events by id, in their latest state.
    fleet: std::collections::BTreeMap<u64, FleetNote>,
}

/// `episodes.parquet`: every alarm episode of every detector and level, so a run can be
/// re-scored with other rules (docs/specs/evaluation.md).
fn write_episodes(
    path: &Path,
    rows: &[(String, String, Episode)],
    judge: &Judge,
) -> anyhow::Result<()> {
    use thingward_history::tables::{TableColumn, write_table};
    let hex = |id: Option<u64>| id.map(|i| format!("{i:016x}"));
    write_table(
        path,
        &[
            (
                "detector",
                TableColumn::Strings(rows.iter().map(|r| r.0.clone()).collect()),
            ),
            (
                "level",
                TableColumn::Strings(rows.iter().map(|r| r.1.clone()).collect()),
            ),
            (
                "thing",
                TableColumn::Strings(rows.iter().map(|r| r.2.device.clone()).collect()),
            ),
            (
                "metric",
                TableColumn::Strings(
                    rows.iter()
                        .map(|r| r.2.metric.as_str().to_owned())
                        .collect(),
                ),
            ),
            (
                "start_ms",
                TableColumn::Millis(rows.iter().map(|r| Some(r.2.start)).collect()),
            ),
            (
                "end_ms",
                TableColumn::Millis(rows.iter().map(|r| Some(r.2.end)).collect()),
            ),
            (
                "notified",
                TableColumn::Flags(rows.iter().map(|r| r.2.notified_at.is_some()).collect()),
            ),
            (
                "notified_ms",
                TableColumn::Millis(rows.iter().map(|r| r.2.notified_at).collect()),
            ),
            (
                "fleet_event",
                TableColumn::OptStrings(rows.iter().map(|r| hex(r.2.fleet_event)).collect()),
            ),
            (
                "incident",
                TableColumn::OptStrings(rows.iter().map(|r| hex(r.2.incident)).collect()),
            ),
            (
                "overlaps",
                TableColumn::OptStrings(rows.iter().map(|r| judge.label(&r.2)).collect()),
            ),
            (
                "clean_device",
                TableColumn::Flags(
                    rows.iter()
                        .map(|r| judge.is_clean_device(&r.2.device))
                        .collect(),
                ),
            ),
        ],
    )
    .with_context(|| format!("Cannot write {}", path.display()))
}

/// The number of an ML-capable built-in metric's datapoint (what the detectors score).
fn numeric_ml(dp: &Datapoint) -> Option<f64> {
    match (&dp.metric, &dp.value) {
        (m, Value::Number(x)) if m.ml_capable() && x.is_finite() => Some(*x),
        _ => None,
    }
}

fn labelled_events(labels: &Labels) -> Vec<LabelledEvent> {
    labels
        .events
        .iter()
        .map(|e| LabelledEvent {
            class: e.kind.as_str().to_owned(),
            benign: e.class == thingward_datasets::EventClass::Benign,
            devices: e.devices.iter().map(|d| d.as_str().to_owned()).collect(),
            metrics: e.metrics.clone(),
            start: e.start_ms,
            end: e.end_ms,
        })
        .collect()
}

/// Where the datapoints come from.
enum Source {
    Scenario(Box<Fleet>),
    Data { partitions: PathBuf, labels: Labels },
}

type DayFn<'a> = dyn FnMut(&[Datapoint]) -> anyhow::Result<()> + 'a;

impl Source {
    fn open(args: &EvalArgs) -> anyhow::Result<Self> {
        match (&args.scenario, &args.data, &args.labels) {
            (Some(path), None, _) => {
                let scenario = Scenario::load(path)
                    .with_context(|| format!("Cannot load scenario {}", path.display()))?;
                Ok(Self::Scenario(Box::new(Fleet::new(&scenario)?)))
            }
            (None, Some(dir), Some(labels)) => {
                let labels = Labels::load(labels)
                    .with_context(|| format!("Cannot load labels {}", labels.display()))?;
                let partitions = partitions_dir(dir);
                if !partitions.is_dir() {
                    bail!(
                        "{} has no history partitions (expected {})",
                        dir.display(),
                        partitions.display()
                    );
                }
                Ok(Self::Data { partitions, labels })
            }
            _ => bail!("Give --scenario FILE, or --data DIR with --labels FILE"),
        }
    }

    fn labels(&self) -> &Labels {
        match self {
            Self::Scenario(fleet) => fleet.labels(),
            Self::Data { labels, .. } => labels,
        }
    }

    fn for_each_day(&self, f: &mut DayFn<'_>) -> anyhow::Result<()> {
        match self {
            Self::Scenario(fleet) => {
                for slot in fleet.slots() {
                    f(&slot.datapoints)?;
                }
            }
            Self::Data { partitions, .. } => {
                for day in thingward_history::partition_days(partitions)? {
                    f(&thingward_history::read_partition_day(partitions, day)?)?;
                }
            }
        }
        Ok(())
    }
}

/// The `partitions/` directory of a data dir (`DIR/history/partitions`), or DIR itself when it
/// already is one.
fn partitions_dir(dir: &Path) -> PathBuf {
    let nested = dir.join("history").join("partitions");
    if nested.is_dir() {
        nested
    } else {
        dir.to_owned()
    }
}

fn fmt_opt(x: Option<f64>) -> String {
    x.map_or_else(|| "–".into(), |v| format!("{v:.0}"))
}

fn markdown(
    results: &[DetectorResult],
    scored: u64,
    devices: usize,
    clean: usize,
    days: f64,
    start_ms: i64,
) -> String {
    let mut s = format!(
        "Scored {scored} datapoints of {devices} devices ({clean} never attacked) over {days:.1} days.\n\n"
    );
    s.push_str("| detector | level | FPR/datapoint (clean) | target | precision | recall | F1 | false alarms / 1,000 device-days | budget | ratio | benign-event notifications | fleet events | held alarms |\n");
    s.push_str("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    for r in results {
        s.push_str(&format!(
            "| {} | {} | {:.2e} | {} | {:.3} | {:.3} | {:.3} | {:.2} | {} | {} | {} | {} | {} |\n",
            r.detector,
            r.level,
            r.report.fpr,
            r.target_fpr
                .map_or_else(|| "–".into(), |t| format!("{t:.1e}")),
            r.report.precision,
            r.report.recall,
            r.report.f1,
            r.report.alarms_per_1000_device_days,
            r.budget.map_or_else(|| "–".into(), |b| format!("{b}")),
            r.budget_ratio
                .map_or_else(|| "–".into(), |x| format!("{x:.2}")),
            r.report.benign_false_alarms,
            r.report.fleet_events,
            r.report.held_episodes,
        ));
    }
    s.push_str("\n| benign event | start (h) | devices | detector | level | fleet events | device notifications | held alarms |\n");
    s.push_str("| --- | ---: | ---: | --- | --- | ---: | ---: | ---: |\n");
    for r in results.iter().filter(|r| r.budget.is_some()) {
        for b in &r.report.benign_events {
            s.push_str(&format!(
                "| {} | {:.1} | {} | {} | {} | {} | {} | {} |\n",
                b.kind,
                (b.start - start_ms) as f64 / 3_600_000.0,
                b.devices,
                r.detector,
                r.level,
                b.fleet_events,
                b.device_notifications,
                b.held_alarms,
            ));
        }
    }
    s.push_str("\n| attack class | detector | level | detected / events | recall | F1 | TTD median | TTD p90 |\n");
    s.push_str("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |\n");
    let mut rows: Vec<(&str, &DetectorResult, &score::ClassScore)> = results
        .iter()
        .flat_map(|r| {
            r.report
                .classes
                .iter()
                .map(move |c| (c.class.as_str(), r, c))
        })
        .collect();
    rows.sort_by(|a, b| a.0.cmp(b.0));
    for (class, r, c) in rows {
        s.push_str(&format!(
            "| {class} | {} | {} | {}/{} | {:.3} | {:.3} | {} | {} |\n",
            r.detector,
            r.level,
            c.detected,
            c.events,
            c.recall,
            c.f1,
            fmt_opt(c.ttd_median),
            fmt_opt(c.ttd_p90),
        ));
    }
    s.push_str("\nFalse-positive rate per datapoint on clean devices, per metric:\n\n| metric |");
    for r in results {
        s.push_str(&format!(" {} {} |", r.detector, r.level));
    }
    s.push_str("\n| --- |");
    for _ in results {
        s.push_str(" ---: |");
    }
    s.push('\n');
    let metrics: std::collections::BTreeSet<&String> = results
        .iter()
        .flat_map(|r| r.fpr_by_metric.keys())
        .collect();
    for m in metrics {
        s.push_str(&format!("| {m} |"));
        for r in results {
            match r.fpr_by_metric.get(m) {
                Some(v) => s.push_str(&format!(" {v:.1e} |")),
                None => s.push_str(" – |"),
            }
        }
        s.push('\n');
    }
    s.push_str("\nTTD: datapoints (5-minute slots) from attack onset to the first notified alarm. False alarms: notified episodes on clean devices outside benign windows; the budget is the level's, for the whole profile.");
    s
}

fn write_classes_csv(path: &Path, results: &[DetectorResult]) -> anyhow::Result<()> {
    let mut out =
        String::from("detector,level,class,events,detected,recall,f1,ttd_median,ttd_p90\n");
    for r in results {
        for c in &r.report.classes {
            out.push_str(&format!(
                "{},{},{},{},{},{},{},{},{}\n",
                r.detector,
                r.level,
                c.class,
                c.events,
                c.detected,
                c.recall,
                c.f1,
                c.ttd_median.map_or(String::new(), |v| v.to_string()),
                c.ttd_p90.map_or(String::new(), |v| v.to_string()),
            ));
        }
    }
    std::fs::write(path, out).with_context(|| format!("Cannot write {}", path.display()))
}

/// `results.parquet` (one row per detector × level) and `classes.parquet` (one row per
/// detector × level × attack class), the columns of docs/specs/evaluation.md.
fn write_parquet_tables(dir: &Path, results: &[DetectorResult]) -> anyhow::Result<()> {
    use thingward_history::tables::{TableColumn, write_table};
    let strings = |f: &dyn Fn(&DetectorResult) -> String| {
        TableColumn::Strings(results.iter().map(f).collect())
    };
    let floats = |f: &dyn Fn(&Report) -> f64| {
        TableColumn::Floats(results.iter().map(|r| Some(f(&r.report))).collect())
    };
    let counts = |f: &dyn Fn(&Report) -> u64| {
        TableColumn::Counts(results.iter().map(|r| f(&r.report)).collect())
    };
    let path = dir.join("results.parquet");
    write_table(
        &path,
        &[
            ("detector", strings(&|r| r.detector.clone())),
            ("level", strings(&|r| r.level.clone())),
            (
                "target_fpr",
                TableColumn::Floats(results.iter().map(|r| r.target_fpr).collect()),
            ),
            ("fpr", floats(&|r| r.fpr)),
            ("precision", floats(&|r| r.precision)),
            ("recall", floats(&|r| r.recall)),
            ("f1", floats(&|r| r.f1)),
            (
                "alarms_per_1000_device_days",
                floats(&|r| r.alarms_per_1000_device_days),
            ),
            (
                "benign_false_alarms",
                counts(&|r| r.benign_false_alarms as u64),
            ),
            ("episodes", counts(&|r| r.episodes as u64)),
            ("true_episodes", counts(&|r| r.true_episodes as u64)),
            ("clean_datapoints", counts(&|r| r.clean_datapoints)),
            ("clean_flagged", counts(&|r| r.clean_flagged)),
        ],
    )
    .with_context(|| format!("Cannot write {}", path.display()))?;

    let rows: Vec<(&DetectorResult, &score::ClassScore)> = results
        .iter()
        .flat_map(|r| r.report.classes.iter().map(move |c| (r, c)))
        .collect();
    let strings = |f: &dyn Fn(&DetectorResult, &score::ClassScore) -> String| {
        TableColumn::Strings(rows.iter().map(|(r, c)| f(r, c)).collect())
    };
    let floats = |f: &dyn Fn(&score::ClassScore) -> Option<f64>| {
        TableColumn::Floats(rows.iter().map(|(_, c)| f(c)).collect())
    };
    let counts = |f: &dyn Fn(&score::ClassScore) -> usize| {
        TableColumn::Counts(rows.iter().map(|(_, c)| f(c) as u64).collect())
    };
    let path = dir.join("classes.parquet");
    write_table(
        &path,
        &[
            ("detector", strings(&|r, _| r.detector.clone())),
            ("level", strings(&|r, _| r.level.clone())),
            ("class", strings(&|_, c| c.class.clone())),
            ("events", counts(&|c| c.events)),
            ("detected", counts(&|c| c.detected)),
            ("recall", floats(&|c| Some(c.recall))),
            ("f1", floats(&|c| Some(c.f1))),
            ("ttd_median", floats(&|c| c.ttd_median)),
            ("ttd_p90", floats(&|c| c.ttd_p90)),
        ],
    )
    .with_context(|| format!("Cannot write {}", path.display()))
}
