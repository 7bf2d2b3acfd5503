//! `thingward nab`: runs a detector over the Numenta Anomaly Benchmark corpus and scores it with
//! NAB's own rules, so thingward's detectors can be placed on NAB's public scoreboard.
//!
//! Each NAB series is a one-device fleet: its rows are datapoints of one custom number metric
//! ([`SERIES_METRIC`]) of one thing ([`SERIES_THING`]). A [`Detector`] learns from the series'
//! probation rows (its training span), then judges every row in order, probation rows included
//! (their verdicts are not counted), and its first level's [`Verdict::score`] in `[0, 1]` is the
//! row's score; the scorer below turns those scores into NAB's standard, reward-low-FP and
//! reward-low-FN scores.
//!
//! # NAB's rules, as `numenta/NAB`'s `nab/sweeper.py` and `nab/runner.py` implement them
//!
//! - **Probation**: the first `min(⌊0.15·n⌋, 750)` rows of a series are never scored (they are
//!   what the detector trains on).
//! - **Windows**: the labelled windows of `combined_windows.json`, taken as given (NAB sized them
//!   at 10 % of the file's rows split between its anomalies). As in NAB, a window is entered at
//!   the first row whose timestamp equals its start (in file order), its right edge is the first
//!   row with its end timestamp, and it is left after the row with its end timestamp.
//! - **Scaled sigmoid**: `σ(y) = 2/(1+e^{5y}) − 1`, and `−1` for `y ≥ 3`.
//! - **Inside a window** of width `w` rows with right edge `r`, row `i` sits at
//!   `y = −(r − i + 1)/w` (−1 at the left edge, −1/w at the right edge) and is worth
//!   `TP · σ(y)/σ(−1)`: a detection at the left edge earns exactly the TP weight. Only the best,
//!   i.e. earliest, detection of a window counts; an undetected window costs `−FN`.
//! - **Outside windows** a detection costs `FP · σ(y)` with `y = |r − i|/(w − 1)` relative to
//!   the preceding window (right edge `r`, width `w`), and `−FP` when no window precedes it.
//! - **Profiles** (`config/profiles.json`): standard TP 1 / FP 0.11 / FN 1, reward_low_FP_rate
//!   FP 0.22, reward_low_FN_rate FN 2.
//! - **Threshold**: one per profile for the whole corpus; a row is a detection when its score
//!   is ≥ the threshold. Like NAB's optimiser we sweep every distinct score (descending, starting
//!   from 1.1 = nothing detected) and keep the best total; ties go to the higher threshold. The
//!   corpus score is then the sum of the per-file scores at that threshold.
//! - **Normalisation**: `100·(S − S_null)/(S_perfect − S_null)`, with `S_perfect` = TP weight ×
//!   the number of labelled windows and `S_null` the optimised score of NAB's null detector (a
//!   constant): detecting nothing, −FN per window with a scored row, unless detecting every row
//!   scores better (never on NAB's corpus, but possible on a tiny one).

use crate::detector::{Detector, FitError, Span, TrainingSet, Verdict};
use anyhow::Context;
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::path::PathBuf;
use thingward_datasets::nab::{Corpus, Series, Window};
use thingward_models::behavior::{Behavior, BehaviorCriteria};
use thingward_models::profile::SecurityProfile;
use thingward_models::time::EpochMillis;
use thingward_models::{
    ComparisonOperator, CustomMetricType, Datapoint, Metric, MetricValue, ThingName, Value,
    ViolationEventType,
};
use thingward_scorer::{Change, CompiledProfile, Scorer, Transition};

/// Options of `thingward nab`.
#[derive(Debug, clap::Args)]
pub struct NabArgs {
    /// The NAB corpus directory (holding `data/` and `labels/`), e.g. ../shared/datasets/nab.
    #[arg(long, env = "THINGWARD_NAB_DIR")]
    dir: PathBuf,
    /// The detector to run, or all of them.
    #[arg(long, value_enum, default_value_t = DetectorChoice::All)]
    detector: DetectorChoice,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// `--detector`: one detector or all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum DetectorChoice {
    /// Every detector below, in this order.
    All,
    /// Scores 0 everywhere: the NAB baseline (0 on every profile by construction).
    Null,
    /// An oracle that scores 1 at the first row of each labelled window (100 on every profile).
    Perfect,
    /// Rules Detect, one static behavior: alarm above the p99.9 of the probation values.
    #[value(name = "rules-p999")]
    RulesP999,
    /// Rules Detect, two static behaviors: alarm above p99.9 or below p0.1 of the probation.
    #[value(name = "rules-p999-two-sided")]
    RulesP999TwoSided,
    /// As rules-p999, but scoring 1 only where an alarm starts (the in-alarm event).
    #[value(name = "rules-p999-onset")]
    RulesP999Onset,
    /// Rules Detect's statisticalThreshold: not applicable (needs a fleet, NAB has one device).
    #[value(name = "rules-statistical")]
    RulesStatistical,
    /// ML Detect: the trainer's model of the probation rows, scored by the service's scorer.
    Ml,
}

/// The detectors `thingward nab` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DetectorKind {
    Null,
    Perfect,
    RulesP999,
    RulesP999TwoSided,
    RulesP999Onset,
    RulesStatistical,
    Ml,
}

impl DetectorKind {
    const ALL: [Self; 7] = [
        Self::Null,
        Self::Perfect,
        Self::RulesP999,
        Self::RulesP999TwoSided,
        Self::RulesP999Onset,
        Self::RulesStatistical,
        Self::Ml,
    ];

    fn name(self) -> &'static str {
        match self {
            Self::Null => "null",
            Self::Perfect => "perfect",
            Self::RulesP999 => "rules-p999",
            Self::RulesP999TwoSided => "rules-p999-two-sided",
            Self::RulesP999Onset => "rules-p999-onset",
            Self::RulesStatistical => "rules-statistical",
            Self::Ml => "ml",
        }
    }

    /// A fresh detector for `series`, or why this kind does not apply to NAB.
    fn build(self, series: &Series) -> Result<Box<dyn Detector>, &'static str> {
        match self {
            Self::Null => Ok(Box::new(NullDetector)),
            Self::Perfect => Ok(Box::new(PerfectDetector::new(&series.windows))),
            Self::RulesP999 => Ok(Box::new(RulesDetector::new(Sides::Upper, Mark::InAlarm))),
            Self::RulesP999TwoSided => Ok(Box::new(RulesDetector::new(Sides::Both, Mark::InAlarm))),
            Self::RulesP999Onset => Ok(Box::new(RulesDetector::new(Sides::Upper, Mark::Onset))),
            Self::Ml => Ok(Box::new(MlDetector::default())),
            Self::RulesStatistical => Err(
                "statisticalThreshold compares a device with a percentile over the fleet's \
                 devices; each NAB series is a one-device fleet, where that percentile is the \
                 device's own current value",
            ),
        }
    }
}

impl DetectorChoice {
    fn kinds(self) -> Vec<DetectorKind> {
        match self {
            Self::All => DetectorKind::ALL.to_vec(),
            Self::Null => vec![DetectorKind::Null],
            Self::Perfect => vec![DetectorKind::Perfect],
            Self::RulesP999 => vec![DetectorKind::RulesP999],
            Self::RulesP999TwoSided => vec![DetectorKind::RulesP999TwoSided],
            Self::RulesP999Onset => vec![DetectorKind::RulesP999Onset],
            Self::RulesStatistical => vec![DetectorKind::RulesStatistical],
            Self::Ml => vec![DetectorKind::Ml],
        }
    }
}

/// Runs the chosen detectors over the corpus in `args.dir`, prints the Markdown report and
/// writes the JSON one if asked.
///
/// # Errors
/// A corpus that does not load, a detector that fails to fit or scores outside `[0, 1]`, or an
/// unwritable `--out` file.
pub fn run(args: NabArgs) -> anyhow::Result<()> {
    let corpus = thingward_datasets::nab::load(&args.dir)
        .with_context(|| format!("Loading the NAB corpus from {}", args.dir.display()))?;
    let mut reports = Vec::new();
    for kind in args.detector.kinds() {
        let started = std::time::Instant::now();
        let report = evaluate_detector(&corpus, kind)?;
        tracing::info!(
            detector = kind.name(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "Detector scored"
        );
        reports.push(report);
    }
    let report = Report {
        corpus: CorpusSummary {
            series: corpus.series.len(),
            rows: corpus.rows(),
            windows: corpus.windows(),
        },
        detectors: reports,
    };
    print!("{}", report.markdown());
    if let Some(out) = &args.out {
        let json = serde_json::to_string_pretty(&report)?;
        std::fs::write(out, json + "\n").with_context(|| format!("Writing {}", out.display()))?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Detectors

/// The custom metric the NAB values are reported as.
const SERIES_METRIC: &str = "nab-value";
/// The one device of each NAB fleet.
const SERIES_THING: &str = "nab-series";

/// The datapoint of one NAB row (timestamp and value set by [`set_row`]).
fn series_datapoint() -> Datapoint {
    Datapoint {
        thing: ThingName::try_from(SERIES_THING)
            .expect("SERIES_THING is a valid thing name (non-empty, short, printable)"),
        metric: Metric::Custom(SERIES_METRIC.into()),
        topic: None,
        timestamp: 0,
        value: Value::Number(0.0),
    }
}

fn set_row(dp: &mut Datapoint, timestamp: EpochMillis, value: f64) {
    dp.timestamp = timestamp;
    dp.value = Value::Number(value);
}

/// Trains `detector` on a series' probation rows, its training span: each row is learnt, then
/// the detector trains on their values.
fn fit_probation(
    detector: &mut dyn Detector,
    dp: &mut Datapoint,
    timestamps: &[EpochMillis],
    probation: &[f64],
) -> Result<(), FitError> {
    let mut training = TrainingSet::default();
    for (&ts, &value) in timestamps.iter().zip(probation) {
        set_row(dp, ts, value);
        training.push(&dp.metric, value);
        detector.learn(dp, value);
    }
    let start = timestamps.first().copied().unwrap_or(0);
    let end = timestamps.last().map_or(start, |&t| t + 1);
    detector.train(&training, Span { start, end })
}

/// The score of the next row: the first level's [`Verdict::score`] (`out` holds one verdict
/// per level of `detector`).
fn score_row(
    detector: &mut dyn Detector,
    dp: &mut Datapoint,
    out: &mut [Verdict],
    timestamp: EpochMillis,
    value: f64,
) -> f64 {
    set_row(dp, timestamp, value);
    detector.observe(dp, out);
    out[0].score
}

/// Why a detector run failed.
#[derive(Debug, thiserror::Error)]
enum RunError {
    #[error("detector '{detector}' on '{series}': {source}")]
    Fit {
        detector: &'static str,
        series: String,
        #[source]
        source: FitError,
    },
    #[error("detector '{detector}' on '{series}', row {row}: score {score} is outside [0, 1]")]
    ScoreOutOfRange {
        detector: &'static str,
        series: String,
        row: usize,
        score: f64,
    },
}

/// Scores 0 everywhere.
#[derive(Debug)]
struct NullDetector;

impl Detector for NullDetector {
    fn name(&self) -> String {
        DetectorKind::Null.name().into()
    }

    fn train(&mut self, _: &TrainingSet, _: Span) -> Result<(), FitError> {
        Ok(())
    }

    fn observe(&mut self, _: &Datapoint, out: &mut [Verdict]) {
        out[0] = Verdict::default();
    }
}

/// The oracle: 1 at the row where NAB enters each labelled window, 0 elsewhere.
///
/// A detection at a window's left edge is worth exactly the TP weight and there are no false
/// positives, so at threshold 1 the raw score is TP × windows = `S_perfect`: 100 on every
/// profile. That needs every window to start after the probation rows, which holds for NAB (its
/// optimiser asserts it, and a test here checks it on the corpus). Window starts are consumed in
/// order, as NAB does, so a repeated timestamp is flagged once.
#[derive(Debug)]
struct PerfectDetector {
    starts: VecDeque<EpochMillis>,
}

impl PerfectDetector {
    fn new(windows: &[Window]) -> Self {
        Self {
            starts: windows.iter().map(|w| w.start).collect(),
        }
    }
}

impl Detector for PerfectDetector {
    fn name(&self) -> String {
        DetectorKind::Perfect.name().into()
    }

    fn train(&mut self, _: &TrainingSet, _: Span) -> Result<(), FitError> {
        Ok(())
    }

    /// Flags the row entering a window, and an alarm starts there (never cleared: only the
    /// first detection in a window counts).
    fn observe(&mut self, dp: &Datapoint, out: &mut [Verdict]) {
        out[0] = if self.starts.front() == Some(&dp.timestamp) {
            self.starts.pop_front();
            Verdict {
                flagged: true,
                alarm: true,
                clear: false,
                score: 1.0,
                ..Verdict::default()
            }
        } else {
            Verdict::default()
        };
    }
}

/// Which side(s) of the probation range [`RulesDetector`] alarms on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sides {
    /// Above the p99.9.
    Upper,
    /// Above the p99.9 or below the p0.1.
    Both,
}

/// Which rows [`RulesDetector`] scores 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mark {
    /// Every row after which a behavior is in alarm: NAB counts each as a detection, so a long
    /// alarm is many false positives outside a window.
    InAlarm,
    /// Only rows where a behavior goes into alarm (the in-alarm violation event, what Device
    /// Defender notifies).
    Onset,
}

/// Rules Detect as a NAB detector: a security profile with static behaviors on one custom
/// number metric, thresholds set from the probation rows, evaluated by the real rules engine
/// ([`CompiledProfile::compile`], [`Scorer::observe`]). A row scores 1 while any behavior is in
/// alarm after it ([`Mark::InAlarm`]) or when one goes into alarm ([`Mark::Onset`]), else 0.
#[derive(Debug)]
struct RulesDetector {
    sides: Sides,
    mark: Mark,
    profile: Option<CompiledProfile>,
    scorer: Scorer,
    /// The behaviors' alarm states, parallel to the profile's behaviors.
    alarms: Vec<(String, bool)>,
    transitions: Vec<Transition>,
}

const BEHAVIOR_HIGH: &str = "nab-high";
const BEHAVIOR_LOW: &str = "nab-low";
/// The upper percentile of the probation values the behaviors allow.
const UPPER_QUANTILE: f64 = 0.999;
/// The lower percentile of the probation values the two-sided behaviors allow.
const LOWER_QUANTILE: f64 = 0.001;

/// The registry of a NAB fleet: one custom number metric, no dimensions.
#[derive(Debug)]
struct NabRegistry;

impl thingward_scorer::Registry for NabRegistry {
    fn custom_metric_type(&self, name: &str) -> Option<CustomMetricType> {
        (name == SERIES_METRIC).then_some(CustomMetricType::Number)
    }

    fn dimension_filters(&self, _: &str) -> Option<Vec<String>> {
        None
    }
}

impl RulesDetector {
    fn new(sides: Sides, mark: Mark) -> Self {
        Self {
            sides,
            mark,
            profile: None,
            scorer: Scorer::new(),
            alarms: Vec::new(),
            transitions: Vec::new(),
        }
    }

    /// A static behavior: the value is normal while `operator` `bound` holds.
    fn behavior(name: &str, operator: ComparisonOperator, bound: f64) -> Behavior {
        Behavior {
            name: name.into(),
            metric: Some(Metric::Custom(SERIES_METRIC.into())),
            metric_dimension: None,
            criteria: Some(BehaviorCriteria {
                comparison_operator: Some(operator),
                value: Some(MetricValue {
                    number: Some(bound),
                    ..MetricValue::default()
                }),
                ..BehaviorCriteria::default()
            }),
            suppress_alerts: None,
            export_metric: None,
        }
    }
}

impl Detector for RulesDetector {
    fn name(&self) -> String {
        let kind = match (self.sides, self.mark) {
            (Sides::Upper, Mark::InAlarm) => DetectorKind::RulesP999,
            (Sides::Both, _) => DetectorKind::RulesP999TwoSided,
            (Sides::Upper, Mark::Onset) => DetectorKind::RulesP999Onset,
        };
        kind.name().into()
    }

    fn train(&mut self, training: &TrainingSet, _: Span) -> Result<(), FitError> {
        let probation = training.values(&Metric::Custom(SERIES_METRIC.into()));
        let mut sorted = probation.to_vec();
        sorted.sort_by(f64::total_cmp);
        let upper = quantile(&sorted, UPPER_QUANTILE).ok_or(FitError::EmptyProbation)?;
        let mut behaviors = vec![Self::behavior(
            BEHAVIOR_HIGH,
            ComparisonOperator::LessThanEquals,
            upper,
        )];
        if self.sides == Sides::Both {
            let lower = quantile(&sorted, LOWER_QUANTILE).ok_or(FitError::EmptyProbation)?;
            behaviors.push(Self::behavior(
                BEHAVIOR_LOW,
                ComparisonOperator::GreaterThanEquals,
                lower,
            ));
        }
        let profile = SecurityProfile {
            security_profile_name: "nab".into(),
            security_profile_arn: "arn:aws:iot:local:000000000000:securityprofile/nab".into(),
            security_profile_description: None,
            behaviors,
            alert_targets: None,
            additional_metrics_to_retain: None,
            additional_metrics_to_retain_v2: None,
            version: 1,
            creation_date: 0,
            last_modified_date: 0,
            metrics_export_config: None,
        };
        let compiled = CompiledProfile::compile(&profile, &NabRegistry)?;
        self.alarms = compiled
            .behaviors()
            .iter()
            .map(|b| (b.name().to_owned(), false))
            .collect();
        self.profile = Some(compiled);
        Ok(())
    }

    /// Flagged while a behavior is in alarm after the row; the score is 1 on the rows the
    /// [`Mark`] names, else 0.
    fn observe(&mut self, dp: &Datapoint, out: &mut [Verdict]) {
        let Some(profile) = &self.profile else {
            out[0] = Verdict::default();
            return;
        };
        let was_in_alarm = self.alarms.iter().any(|(_, in_alarm)| *in_alarm);
        self.transitions.clear();
        self.scorer.observe(profile, dp, &mut self.transitions);
        let onset = self
            .transitions
            .iter()
            .any(|t| t.change == Change::Event(ViolationEventType::InAlarm));
        for t in &self.transitions {
            let in_alarm = match t.change {
                Change::Event(ViolationEventType::InAlarm) | Change::StillInAlarm => true,
                Change::Event(
                    ViolationEventType::AlarmCleared | ViolationEventType::AlarmInvalidated,
                ) => false,
            };
            if let Some(state) = self.alarms.iter_mut().find(|(b, _)| **b == *t.behavior) {
                state.1 = in_alarm;
            }
        }
        let in_alarm = self.alarms.iter().any(|(_, in_alarm)| *in_alarm);
        let detected = match self.mark {
            Mark::InAlarm => in_alarm,
            Mark::Onset => onset,
        };
        out[0] = Verdict {
            flagged: in_alarm,
            alarm: onset,
            clear: was_in_alarm && !in_alarm,
            score: if detected { 1.0 } else { 0.0 },
            ..Verdict::default()
        };
    }
}

/// ML Detect on one series, as the service runs it: the trainer's `fit` on the probation rows
/// (a one-device fleet), the scorer's `CompiledModel::judge` on every row, and a nightly
/// refresh on the trailing 14 days of rows seen so far, leaving out the rows that were
/// anomalous (as the service leaves out datapoints in alarm).
///
/// NAB wants one score in `[0, 1]` per row and sweeps a single threshold over the corpus. The
/// score is `x / (1 + x)` with `x` the larger of |residual| and |drift mean|, each over its LOW
/// threshold (so 0.5 is the LOW edge), given at the row where such an excursion starts; rows
/// inside an excursion — until [`NAB_CLEAR_ROWS`] rows in a row are back within the LOW range
/// — score 0 (NAB counts every flagged row outside a window as a false
/// positive and only the first detection in a window as a true one). NAB labels drops as
/// anomalies too, so this adapter reads the residual on both sides; the service alarms only
/// above the expected range.
#[derive(Debug, Default)]
struct MlDetector {
    model: Option<thingward_scorer::CompiledModel>,
    drift: thingward_scorer::Drift,
    excursion: bool,
    /// Rows in a row back within the range, since the last anomalous one.
    calm: u32,
    /// The probation rows learnt, until trained on.
    probation: Vec<(EpochMillis, f64)>,
    /// Rows seen (timestamp, value), anomalous ones left out.
    kept: VecDeque<(EpochMillis, f64)>,
    next_refresh: EpochMillis,
    version: u64,
}

/// Rows back within the LOW range that end an excursion (4 hours at 5 minutes), the NAB
/// adapter's `consecutiveDatapointsToClear`.
const NAB_CLEAR_ROWS: u32 = 48;

/// The thing name of a NAB series inside its one-device model.
const NAB_THING: &str = "nab";
/// The trailing training window of a refresh.
const NAB_WINDOW_MS: i64 = 14 * 86_400_000;
/// Refresh period (the service retrains nightly).
const NAB_REFRESH_MS: i64 = 86_400_000;

impl MlDetector {
    /// Fits the model on `rows` (a first fit or a refresh).
    fn fit_rows(&mut self, rows: &[(EpochMillis, f64)]) -> Result<(), FitError> {
        let Some(&(first, _)) = rows.first() else {
            return Err(FitError::EmptyProbation);
        };
        let mut rows = rows.to_vec();
        rows.sort_by_key(|r| r.0);
        let last = rows[rows.len() - 1].0;
        let data = thingward_trainer::TrainingData {
            window_start: first,
            window_end: last + 1,
            devices: vec![thingward_trainer::DeviceSeries {
                thing: NAB_THING.into(),
                timestamps: rows.iter().map(|r| r.0).collect(),
                values: rows.iter().map(|r| r.1).collect(),
            }],
            excluded: 0,
        };
        self.version += 1;
        let identity = thingward_trainer::ModelIdentity {
            profile: "nab".into(),
            behavior: "ml".into(),
            metric: SERIES_METRIC.into(),
            version: self.version,
            trained_at: data.window_end,
        };
        let params = thingward_trainer::FitParams::default()
            .check()
            .map_err(FitError::MlParams)?;
        let model = thingward_trainer::fit(&params, &identity, &data).map_err(|source| {
            FitError::MlFit {
                metric: SERIES_METRIC.into(),
                source,
            }
        })?;
        self.model = Some(thingward_scorer::CompiledModel::new(model)?);
        self.next_refresh = last + NAB_REFRESH_MS;
        Ok(())
    }
}

impl Detector for MlDetector {
    fn name(&self) -> String {
        DetectorKind::Ml.name().into()
    }

    fn learn(&mut self, dp: &Datapoint, x: f64) {
        self.probation.push((dp.timestamp, x));
    }

    fn train(&mut self, _: &TrainingSet, _: Span) -> Result<(), FitError> {
        let rows: Vec<(EpochMillis, f64)> = std::mem::take(&mut self.probation)
            .into_iter()
            .filter(|r| r.1.is_finite())
            .collect();
        self.fit_rows(&rows)?;
        self.kept = rows.into();
        Ok(())
    }

    /// Flagged outside the LOW range; an alarm starts with an excursion and clears with it.
    fn observe(&mut self, dp: &Datapoint, out: &mut [Verdict]) {
        out[0] = match dp.value {
            Value::Number(value) => self.judge_row(dp.timestamp, value),
            _ => Verdict::default(),
        };
    }
}

impl MlDetector {
    fn judge_row(&mut self, timestamp: EpochMillis, value: f64) -> Verdict {
        if !value.is_finite() {
            return Verdict::default();
        }
        if self.model.is_some() && timestamp >= self.next_refresh {
            while self
                .kept
                .front()
                .is_some_and(|r| r.0 < timestamp - NAB_WINDOW_MS)
            {
                self.kept.pop_front();
            }
            let rows: Vec<(EpochMillis, f64)> = self.kept.iter().copied().collect();
            // A failed refresh keeps the previous model, as in the service.
            if self.fit_rows(&rows).is_err() {
                self.next_refresh = timestamp + NAB_REFRESH_MS;
            }
        }
        let Some(model) = &self.model else {
            return Verdict::default();
        };
        let j = model.judge(NAB_THING, timestamp, value, &mut self.drift);
        let cohort = &model.model().cohorts[0];
        let x = f64::max(
            f64::from(j.residual.abs() / cohort.point[0]),
            f64::from(j.drift.abs() / cohort.drift[0]),
        )
        .max(0.0);
        if x <= 1.0 {
            self.kept.push_back((timestamp, value));
        }
        let over = x > 1.0;
        let starts = over && !self.excursion;
        let was_excursion = self.excursion;
        if over {
            self.excursion = true;
            self.calm = 0;
        } else {
            self.calm += 1;
            if self.calm >= NAB_CLEAR_ROWS {
                self.excursion = false;
            }
        }
        Verdict {
            flagged: over,
            alarm: starts,
            clear: was_excursion && !self.excursion,
            score: if self.excursion && !starts {
                0.0
            } else {
                x / (1.0 + x)
            },
            ..Verdict::default()
        }
    }
}

/// The `q` quantile of ascending `sorted`, interpolating linearly between order statistics
/// (numpy's default); None when empty.
fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    let last = sorted.len().checked_sub(1)?;
    let h = q.clamp(0.0, 1.0) * last as f64;
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(last);
    Some(sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo]))
}

/// Runs `kind` over every series: fit on the probation rows, score every row.
fn detector_scores(corpus: &Corpus, kind: DetectorKind) -> Result<Option<Vec<Vec<f64>>>, RunError> {
    let mut all = Vec::with_capacity(corpus.series.len());
    for series in &corpus.series {
        let Ok(mut detector) = kind.build(series) else {
            return Ok(None);
        };
        let probation = probation_rows(series.len());
        let mut dp = series_datapoint();
        fit_probation(
            &mut *detector,
            &mut dp,
            &series.timestamps[..probation],
            &series.values[..probation],
        )
        .map_err(|source| RunError::Fit {
            detector: kind.name(),
            series: series.name.clone(),
            source,
        })?;
        let mut out = vec![Verdict::default(); detector.levels().len()];
        let mut scores = Vec::with_capacity(series.len());
        for (row, (&ts, &value)) in series.timestamps.iter().zip(&series.values).enumerate() {
            let score = score_row(&mut *detector, &mut dp, &mut out, ts, value);
            if !(0.0..=1.0).contains(&score) {
                return Err(RunError::ScoreOutOfRange {
                    detector: kind.name(),
                    series: series.name.clone(),
                    row,
                    score,
                });
            }
            scores.push(score);
        }
        all.push(scores);
    }
    Ok(Some(all))
}

/// Runs and scores one detector on the corpus.
fn evaluate_detector(corpus: &Corpus, kind: DetectorKind) -> Result<DetectorReport, RunError> {
    let not_applicable = corpus
        .series
        .first()
        .and_then(|s| kind.build(s).err())
        .map(str::to_owned);
    let profiles = match detector_scores(corpus, kind)? {
        Some(scores) => {
            let labelled: Vec<LabelledSeries> = corpus.series.iter().map(label_series).collect();
            Profile::ALL
                .iter()
                .map(|&p| evaluate(&labelled, &scores, p))
                .collect()
        }
        None => Vec::new(),
    };
    Ok(DetectorReport {
        detector: kind.name(),
        applicable: not_applicable.is_none(),
        not_applicable,
        profiles,
    })
}

// ---------------------------------------------------------------------------------------------
// The NAB scorer

/// A NAB application profile (`config/profiles.json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Profile {
    Standard,
    RewardLowFp,
    RewardLowFn,
}

/// A profile's weights.
#[derive(Debug, Clone, Copy, PartialEq)]
struct CostMatrix {
    tp: f64,
    fp: f64,
    fn_: f64,
}

impl Profile {
    const ALL: [Self; 3] = [Self::Standard, Self::RewardLowFp, Self::RewardLowFn];

    /// NAB's name for the profile.
    fn name(self) -> &'static str {
        match self {
            Self::Standard => "standard",
            Self::RewardLowFp => "reward_low_FP_rate",
            Self::RewardLowFn => "reward_low_FN_rate",
        }
    }

    fn costs(self) -> CostMatrix {
        match self {
            Self::Standard => CostMatrix {
                tp: 1.0,
                fp: 0.11,
                fn_: 1.0,
            },
            Self::RewardLowFp => CostMatrix {
                tp: 1.0,
                fp: 0.22,
                fn_: 1.0,
            },
            Self::RewardLowFn => CostMatrix {
                tp: 1.0,
                fp: 0.11,
                fn_: 2.0,
            },
        }
    }
}

/// The fraction of each series held out as probation.
const PROBATION_FRACTION: f64 = 0.15;
/// The most probation rows of a series (NAB: 0.15 × 5000).
const PROBATION_MAX_ROWS: usize = 750;
/// The threshold at which nothing is detected (NAB's sweep starts there).
const NOTHING_THRESHOLD: f64 = 1.1;

/// The rows of an `n`-row series that are probation: `min(⌊0.15·n⌋, 750)`.
fn probation_rows(n: usize) -> usize {
    ((PROBATION_FRACTION * n as f64).floor() as usize).min(PROBATION_MAX_ROWS)
}

/// NAB's scaled sigmoid of a relative position `y` (−1 = a window's left edge, 0 its right edge,
/// > 0 after it): `2/(1+e^{5y}) − 1`, and −1 from `y = 3` on.
fn scaled_sigmoid(y: f64) -> f64 {
    if y >= 3.0 {
        -1.0
    } else {
        2.0 / (1.0 + (5.0 * y).exp()) - 1.0
    }
}

/// How NAB counts a detection at one row.
#[derive(Debug, Clone, Copy, PartialEq)]
enum RowLabel {
    /// A probation row: never scored.
    Probation,
    /// Inside window `window` (index in its series): a detection earns `TP × credit`.
    Window { window: usize, credit: f64 },
    /// Outside every window: a detection earns `FP × sigmoid` (≤ 0).
    Outside { sigmoid: f64 },
}

/// A series prepared for scoring.
#[derive(Debug, Clone, PartialEq)]
struct LabelledSeries {
    category: String,
    rows: Vec<RowLabel>,
    /// Labelled windows, counted as NAB counts them for `S_perfect`.
    windows: usize,
    /// Windows with at least one scored row, which cost −FN when missed.
    scored_windows: usize,
}

/// Labels every row of `series` the way NAB's `Sweeper.calcSweepScore` walks a file.
fn label_series(series: &Series) -> LabelledSeries {
    let rows = label_rows(&series.timestamps, &series.windows);
    let mut seen = vec![false; series.windows.len()];
    for row in &rows {
        if let RowLabel::Window { window, .. } = row {
            seen[*window] = true;
        }
    }
    LabelledSeries {
        category: series.category().to_owned(),
        rows,
        windows: series.windows.len(),
        scored_windows: seen.iter().filter(|s| **s).count(),
    }
}

fn label_rows(timestamps: &[EpochMillis], windows: &[Window]) -> Vec<RowLabel> {
    let max_tp = scaled_sigmoid(-1.0);
    let probation = probation_rows(timestamps.len());
    let first_index = |ts: EpochMillis| timestamps.iter().position(|&t| t == ts);
    let mut next = 0; // the next window to enter
    // (window index, its end timestamp, right edge row, width in rows)
    let mut current: Option<(usize, EpochMillis, usize, f64)> = None;
    // (right edge row, width in rows) of the last window left
    let mut previous: Option<(usize, f64)> = None;
    let mut rows = Vec::with_capacity(timestamps.len());
    for (i, &ts) in timestamps.iter().enumerate() {
        if let Some(w) = windows.get(next)
            && ts == w.start
        {
            next += 1;
            // NAB: `timestamps.index(end)` and `timestamps.index(start)`, first occurrences.
            let right = first_index(w.end).unwrap_or(i);
            let left = first_index(w.start).unwrap_or(i);
            current = Some((next - 1, w.end, right, (right as f64) - (left as f64) + 1.0));
        }
        let label = match current {
            Some((window, _, right, width)) => {
                let y = -((right as f64) - (i as f64) + 1.0) / width;
                RowLabel::Window {
                    window,
                    credit: scaled_sigmoid(y) / max_tp,
                }
            }
            None => {
                let y = previous.map_or(3.0, |(right, width)| {
                    (right as f64 - i as f64).abs() / (width - 1.0)
                });
                RowLabel::Outside {
                    sigmoid: scaled_sigmoid(y),
                }
            }
        };
        rows.push(if i < probation {
            RowLabel::Probation
        } else {
            label
        });
        if let Some((_, end, _, width)) = current
            && ts == end
        {
            previous = Some((i, width));
            current = None;
        }
    }
    rows
}

/// What a detector achieved on some series at one threshold.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
struct Outcome {
    /// The raw NAB score.
    raw: f64,
    /// Windows with at least one detection.
    detected_windows: usize,
    /// Windows (with scored rows) without one.
    missed_windows: usize,
    /// Detections outside every window.
    false_positives: usize,
}

/// Scores one series at `threshold`: detections are scored rows with score ≥ threshold.
fn score_series(
    series: &LabelledSeries,
    scores: &[f64],
    threshold: f64,
    costs: CostMatrix,
) -> Outcome {
    let mut best: Vec<Option<f64>> = vec![None; series.windows];
    let mut present = vec![false; series.windows];
    let mut fp_total = 0.0;
    let mut false_positives = 0;
    for (label, &score) in series.rows.iter().zip(scores) {
        match *label {
            RowLabel::Probation => {}
            RowLabel::Window { window, credit } => {
                present[window] = true;
                if score >= threshold {
                    let value = credit * costs.tp;
                    best[window] = Some(best[window].map_or(value, |b: f64| b.max(value)));
                }
            }
            RowLabel::Outside { sigmoid } => {
                if score >= threshold {
                    fp_total += sigmoid * costs.fp;
                    false_positives += 1;
                }
            }
        }
    }
    let mut outcome = Outcome {
        raw: fp_total,
        false_positives,
        ..Outcome::default()
    };
    for (best, _) in best.iter().zip(&present).filter(|(_, p)| **p) {
        // NAB: max(−FN, best detection); credits inside a window are positive.
        match best {
            Some(value) => {
                outcome.raw += value.max(-costs.fn_);
                outcome.detected_windows += 1;
            }
            None => {
                outcome.raw -= costs.fn_;
                outcome.missed_windows += 1;
            }
        }
    }
    outcome
}

/// NAB's threshold optimisation: the threshold (one of 1.1 and the distinct scores) that
/// maximises the corpus total, ties going to the higher threshold.
fn best_threshold(series: &[LabelledSeries], scores: &[Vec<f64>], costs: CostMatrix) -> f64 {
    // Every scored row: (score, label with a corpus-wide window id).
    let mut offsets = Vec::with_capacity(series.len());
    let mut windows = 0;
    for s in series {
        offsets.push(windows);
        windows += s.windows;
    }
    let mut points: Vec<(f64, RowLabel)> = Vec::new();
    for ((s, scores), offset) in series.iter().zip(scores).zip(&offsets) {
        for (label, &score) in s.rows.iter().zip(scores) {
            match *label {
                RowLabel::Probation => {}
                RowLabel::Window { window, credit } => points.push((
                    score,
                    RowLabel::Window {
                        window: window + offset,
                        credit,
                    },
                )),
                outside @ RowLabel::Outside { .. } => points.push((score, outside)),
            }
        }
    }
    points.sort_by(|a, b| b.0.total_cmp(&a.0));

    // Window parts start at −FN for windows with a scored row (others never count).
    let mut window_part = vec![0.0; windows];
    for (_, label) in &points {
        if let RowLabel::Window { window, .. } = label {
            window_part[*window] = -costs.fn_;
        }
    }
    let mut window_sum: f64 = window_part.iter().sum();
    let mut fp_sum = 0.0;
    let (mut best_threshold, mut best_total) = (NOTHING_THRESHOLD, window_sum);
    let mut i = 0;
    while i < points.len() {
        let threshold = points[i].0;
        let mut windows_changed = false;
        while i < points.len() && points[i].0 == threshold {
            match points[i].1 {
                RowLabel::Window { window, credit } => {
                    let value = credit * costs.tp;
                    if value > window_part[window] {
                        window_part[window] = value;
                        windows_changed = true;
                    }
                }
                RowLabel::Outside { sigmoid } => fp_sum += sigmoid * costs.fp,
                RowLabel::Probation => {}
            }
            i += 1;
        }
        if windows_changed {
            // Re-summed, not updated incrementally, so equal totals compare equal.
            window_sum = window_part.iter().sum();
        }
        let total = fp_sum + window_sum;
        if total > best_total {
            (best_threshold, best_total) = (threshold, total);
        }
    }
    best_threshold
}

/// A detector's result on one profile.
#[derive(Debug, Clone, PartialEq, Serialize)]
struct ProfileResult {
    /// NAB's profile name.
    profile: &'static str,
    /// The normalised NAB score: 0 = null detector, 100 = perfect.
    score: f64,
    /// The threshold chosen for the whole corpus (1.1 = nothing detected).
    threshold: f64,
    /// The raw score and counts over the corpus.
    total: Outcome,
    /// The raw score of the null detector.
    null_raw: f64,
    /// The raw score of the perfect detector.
    perfect_raw: f64,
    /// Raw scores and counts per category, at the corpus threshold.
    categories: BTreeMap<String, Outcome>,
    /// The normalised score at threshold 1, where only rows scoring 1 are detections: for a
    /// binary detector (Rules Detect), every alarm taken as raised.
    score_at_1: f64,
    /// The raw score and counts at threshold 1.
    total_at_1: Outcome,
}

/// The raw score of NAB's null detector, which outputs one constant: the better of detecting
/// nothing (−FN per window with a scored row) and detecting every row. The first wins on any
/// realistic corpus (on NAB's: −116 and −232 raw), but NAB normalises against the null
/// detector's optimised score, so a null detector scores exactly 0 on any corpus.
fn null_raw(series: &[LabelledSeries], costs: CostMatrix) -> f64 {
    let nothing = -costs.fn_ * series.iter().map(|s| s.scored_windows).sum::<usize>() as f64;
    let everything: f64 = series
        .iter()
        .map(|s| score_series(s, &vec![0.0; s.rows.len()], 0.0, costs).raw)
        .sum();
    nothing.max(everything)
}

/// Scores a detector's `scores` (parallel to `series`) on `profile`.
fn evaluate(series: &[LabelledSeries], scores: &[Vec<f64>], profile: Profile) -> ProfileResult {
    let costs = profile.costs();
    let threshold = best_threshold(series, scores, costs);
    let mut total = Outcome::default();
    let mut total_at_1 = Outcome::default();
    let mut categories: BTreeMap<String, Outcome> = BTreeMap::new();
    for (s, scores) in series.iter().zip(scores) {
        add(&mut total_at_1, score_series(s, scores, 1.0, costs));
        let outcome = score_series(s, scores, threshold, costs);
        add(&mut total, outcome);
        add(categories.entry(s.category.clone()).or_default(), outcome);
    }
    let null_raw = null_raw(series, costs);
    let perfect_raw = costs.tp * series.iter().map(|s| s.windows).sum::<usize>() as f64;
    let span = perfect_raw - null_raw;
    let normalise = |raw: f64| {
        if span > 0.0 {
            100.0 * (raw - null_raw) / span
        } else {
            0.0
        }
    };
    ProfileResult {
        profile: profile.name(),
        score: normalise(total.raw),
        threshold,
        total,
        null_raw,
        perfect_raw,
        categories,
        score_at_1: normalise(total_at_1.raw),
        total_at_1,
    }
}

fn add(sum: &mut Outcome, outcome: Outcome) {
    sum.raw += outcome.raw;
    sum.detected_windows += outcome.detected_windows;
    sum.missed_windows += outcome.missed_windows;
    sum.false_positives += outcome.false_positives;
}

// ---------------------------------------------------------------------------------------------
// The report

#[derive(Debug, Serialize)]
struct Report {
    corpus: CorpusSummary,
    detectors: Vec<DetectorReport>,
}

#[derive(Debug, Serialize)]
struct CorpusSummary {
    series: usize,
    rows: usize,
    windows: usize,
}

#[derive(Debug, Serialize)]
struct DetectorReport {
    detector: &'static str,
    applicable: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    not_applicable: Option<String>,
    profiles: Vec<ProfileResult>,
}

impl Report {
    fn markdown(&self) -> String {
        let mut md = String::new();
        let c = &self.corpus;
        let _ = writeln!(
            md,
            "## NAB scores ({} series, {} rows, {} windows)\n",
            c.series, c.rows, c.windows
        );
        let names = Profile::ALL.map(Profile::name);
        let _ = writeln!(md, "| detector | {} |", names.join(" | "));
        let _ = writeln!(md, "|---|---:|---:|---:|");
        for d in &self.detectors {
            let cells: Vec<String> = if d.applicable {
                d.profiles
                    .iter()
                    .map(|p| format!("{:.2} (t={})", p.score, p.threshold))
                    .collect()
            } else {
                vec!["n/a".into(); names.len()]
            };
            let _ = writeln!(md, "| {} | {} |", d.detector, cells.join(" | "));
        }
        let _ = writeln!(
            md,
            "\nAt threshold 1 (only rows scoring 1 detect; a binary detector's alarms as \
             raised), score (detected windows / missed / false-positive rows):\n"
        );
        let _ = writeln!(md, "| detector | {} |", names.join(" | "));
        let _ = writeln!(md, "|---|---:|---:|---:|");
        for d in self.detectors.iter().filter(|d| d.applicable) {
            let cells: Vec<String> = d
                .profiles
                .iter()
                .map(|p| {
                    let o = &p.total_at_1;
                    format!(
                        "{:.2} ({}/{}/{})",
                        p.score_at_1, o.detected_windows, o.missed_windows, o.false_positives
                    )
                })
                .collect();
            let _ = writeln!(md, "| {} | {} |", d.detector, cells.join(" | "));
        }
        for d in &self.detectors {
            if let Some(reason) = &d.not_applicable {
                let _ = writeln!(md, "\n{}: not applicable to NAB: {reason}.", d.detector);
            }
        }
        for d in self.detectors.iter().filter(|d| d.applicable) {
            let _ = writeln!(
                md,
                "\n### {}: raw scores per category (detected windows / missed / false-positive rows)\n",
                d.detector
            );
            let _ = writeln!(md, "| category | {} |", names.join(" | "));
            let _ = writeln!(md, "|---|---:|---:|---:|");
            let Some(first) = d.profiles.first() else {
                continue;
            };
            let cell = |o: &Outcome| {
                format!(
                    "{:.2} ({}/{}/{})",
                    o.raw, o.detected_windows, o.missed_windows, o.false_positives
                )
            };
            for category in first.categories.keys() {
                let cells: Vec<String> = d
                    .profiles
                    .iter()
                    .map(|p| p.categories.get(category).map_or_else(String::new, cell))
                    .collect();
                let _ = writeln!(md, "| {category} | {} |", cells.join(" | "));
            }
            let totals: Vec<String> = d.profiles.iter().map(|p| cell(&p.total)).collect();
            let _ = writeln!(md, "| **total** | {} |", totals.join(" | "));
            let bounds: Vec<String> = d
                .profiles
                .iter()
                .map(|p| format!("{:.2} / {:.2}", p.null_raw, p.perfect_raw))
                .collect();
            let _ = writeln!(md, "| null / perfect raw | {} |", bounds.join(" | "));
        }
        md
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// The runner's two steps, as methods on every detector.
    trait SeriesRun {
        fn fit(&mut self, timestamps: &[EpochMillis], probation: &[f64]) -> Result<(), FitError>;
        fn score(&mut self, timestamp: EpochMillis, value: f64) -> f64;
    }

    impl<D: Detector> SeriesRun for D {
        fn fit(&mut self, timestamps: &[EpochMillis], probation: &[f64]) -> Result<(), FitError> {
            fit_probation(self, &mut series_datapoint(), timestamps, probation)
        }

        fn score(&mut self, timestamp: EpochMillis, value: f64) -> f64 {
            let mut out = [Verdict::default()];
            score_row(self, &mut series_datapoint(), &mut out, timestamp, value)
        }
    }

    const EPS: f64 = 1e-9;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-6
    }

    /// A series of `n` rows one second apart with one window per `(first, last)` row pair.
    fn series(name: &str, n: usize, windows: &[(usize, usize)]) -> Series {
        let ts = |i: usize| i as EpochMillis * 1000;
        Series {
            name: name.into(),
            timestamps: (0..n).map(ts).collect(),
            values: vec![0.0; n],
            windows: windows
                .iter()
                .map(|&(a, b)| Window {
                    start: ts(a),
                    end: ts(b),
                })
                .collect(),
        }
    }

    /// Scores of `n` rows: `value` at the listed rows, 0 elsewhere.
    fn scores(n: usize, hits: &[(usize, f64)]) -> Vec<f64> {
        let mut s = vec![0.0; n];
        for &(i, v) in hits {
            s[i] = v;
        }
        s
    }

    #[test]
    fn scaled_sigmoid_matches_nab_docstring() {
        // nab/sweeper.py: σ(−1) = 0.98661, σ(−0.5) = 0.84828, σ(0) = 0, σ(1) = −0.98661.
        assert!((scaled_sigmoid(-1.0) - 0.98661).abs() < 1e-5);
        assert!((scaled_sigmoid(-0.5) - 0.84828).abs() < 1e-5);
        assert!(scaled_sigmoid(0.0).abs() < EPS);
        assert!((scaled_sigmoid(1.0) + 0.98661).abs() < 1e-5);
        assert_eq!(scaled_sigmoid(3.0), -1.0);
        assert_eq!(scaled_sigmoid(1e9), -1.0);
    }

    #[test]
    fn probation_is_fifteen_percent_capped_at_750() {
        assert_eq!(probation_rows(20), 3);
        assert_eq!(probation_rows(4999), 749); // ⌊749.85⌋
        assert_eq!(probation_rows(5000), 750);
        assert_eq!(probation_rows(22_695), 750);
        assert_eq!(probation_rows(0), 0);
    }

    #[test]
    fn rows_are_labelled_like_nab_sweeper() {
        // 20 rows, probation 3, one window on rows 10..=13 (width 4, right edge 13).
        let s = series("cat/a.csv", 20, &[(10, 13)]);
        let rows = label_series(&s).rows;
        let max_tp = scaled_sigmoid(-1.0);
        assert!(rows[..3].iter().all(|r| *r == RowLabel::Probation));
        // Before any window: σ(3) = −1.
        assert_eq!(rows[3], RowLabel::Outside { sigmoid: -1.0 });
        assert_eq!(rows[9], RowLabel::Outside { sigmoid: -1.0 });
        // Left edge y = −(13−10+1)/4 = −1: credit exactly 1.
        assert_eq!(
            rows[10],
            RowLabel::Window {
                window: 0,
                credit: 1.0
            }
        );
        // Right edge y = −(13−13+1)/4 = −0.25, not 0.
        let RowLabel::Window { credit, .. } = rows[13] else {
            panic!("row 13 is in the window")
        };
        assert!(close(credit, scaled_sigmoid(-0.25) / max_tp));
        // After: y = |13−i|/(4−1).
        let RowLabel::Outside { sigmoid } = rows[16] else {
            panic!("row 16 is after the window")
        };
        assert!(close(sigmoid, scaled_sigmoid(1.0)));
    }

    #[test]
    fn one_file_hand_computed() {
        // 20 rows, probation 3, window rows 10..=13. Detections (score 1) at:
        //   row 12: y = −(13−12+1)/4 = −0.5 → TP credit σ(−0.5)/σ(−1)
        //           = 0.8482836/0.9866143 = 0.8597926
        //   row 16: y = (16−13)/3 = 1 → FP σ(1) = −0.9866143, × 0.11 = −0.1085276
        //   row 5:  no window before → −1 × 0.11 = −0.11
        //   row 1:  probation, ignored.
        // standard raw = 0.8597926 − 0.1085276 − 0.11 = 0.6412650
        // reward_low_FP raw = 0.8597926 − 0.2170551 − 0.22 = 0.4227374
        let s = label_series(&series("cat/a.csv", 20, &[(10, 13)]));
        let detections = scores(20, &[(1, 1.0), (5, 1.0), (12, 1.0), (16, 1.0)]);
        let standard = score_series(&s, &detections, 1.0, Profile::Standard.costs());
        assert!(close(standard.raw, 0.6412650), "{standard:?}");
        assert_eq!(
            (
                standard.detected_windows,
                standard.missed_windows,
                standard.false_positives
            ),
            (1, 0, 2)
        );
        let low_fp = score_series(&s, &detections, 1.0, Profile::RewardLowFp.costs());
        assert!(close(low_fp.raw, 0.4227374), "{low_fp:?}");
        // Adding a later detection in the same window changes nothing: the earliest counts.
        let more = scores(20, &[(1, 1.0), (5, 1.0), (12, 1.0), (13, 1.0), (16, 1.0)]);
        let again = score_series(&s, &more, 1.0, Profile::Standard.costs());
        assert!(close(again.raw, standard.raw));
        // Nothing detected: −FN for the window (−2 on reward_low_FN).
        let none = score_series(&s, &detections, 1.1, Profile::RewardLowFn.costs());
        assert_eq!(none.raw, -2.0);
    }

    #[test]
    fn threshold_is_swept_per_profile_and_normalised() {
        // a: 60 rows, probation 9, window rows 10..=13; row 10 scores 0.9 (left edge: +TP).
        // b: 40 rows, probation 6, window rows 25..=28; row 27 scores 0.6
        //    (y = −(28−27+1)/4 = −0.5 → credit 0.8597926) and 12 rows before the window
        //    (6..=17) score 0.6: 12 FPs at −1 × FP each.
        // Thresholds (all other rows score 0, and 0 detects everything — far worse):
        //   1.1: −1 − 1 = −2 (× FN)
        //   0.9: a +1, b missed           → 1 − FN
        //   0.6: a +1, b 0.8597926, 12 FP → 1.8597926 − 12·FP
        // The null detector detects nothing (detecting every row scores −6.38 / −14.76 / −6.38).
        // standard (FP 0.11): 0.9 → 0, 0.6 → 0.5397926: picks 0.6.
        //   null −2, perfect 2: 100·(0.5397926 + 2)/4 = 63.4948142
        // reward_low_FP (FP 0.22): 0.9 → 0, 0.6 → −0.7802074: picks 0.9; 100·2/4 = 50
        // reward_low_FN (FN 2): 0.9 → −1, 0.6 → 0.5397926: picks 0.6;
        //   null −4, perfect 2: 100·(0.5397926 + 4)/6 = 75.6632094
        let labelled = vec![
            label_series(&series("x/a.csv", 60, &[(10, 13)])),
            label_series(&series("y/b.csv", 40, &[(25, 28)])),
        ];
        let mut b_hits: Vec<(usize, f64)> = (6..=17).map(|i| (i, 0.6)).collect();
        b_hits.push((27, 0.6));
        let detections = vec![scores(60, &[(10, 0.9)]), scores(40, &b_hits)];

        let standard = evaluate(&labelled, &detections, Profile::Standard);
        assert_eq!(standard.threshold, 0.6);
        assert!(close(standard.total.raw, 0.5397926), "{standard:?}");
        assert!(close(standard.score, 63.4948142), "{standard:?}");
        assert_eq!((standard.null_raw, standard.perfect_raw), (-2.0, 2.0));
        assert!(close(standard.categories["x"].raw, 1.0));
        assert!(close(standard.categories["y"].raw, 0.8597926 - 1.32));
        assert_eq!(standard.categories["y"].false_positives, 12);

        let low_fp = evaluate(&labelled, &detections, Profile::RewardLowFp);
        assert_eq!(low_fp.threshold, 0.9);
        assert!(close(low_fp.score, 50.0), "{low_fp:?}");
        assert_eq!(low_fp.total.missed_windows, 1);

        let low_fn = evaluate(&labelled, &detections, Profile::RewardLowFn);
        assert_eq!(low_fn.threshold, 0.6);
        assert!(close(low_fn.score, 75.6632094), "{low_fn:?}");
    }

    #[test]
    fn windows_inside_probation_are_not_scored() {
        // 100 rows, probation 15. Window 0 on rows 5..=9 lies inside probation: it is neither
        // a miss nor a hit (NAB only creates score parts for scored rows). Window 1 on rows
        // 12..=20 straddles the end of probation: only rows 15..=20 can detect it.
        let s = label_series(&series("c/p.csv", 100, &[(5, 9), (12, 20)]));
        assert_eq!((s.windows, s.scored_windows), (2, 1));
        let none = score_series(&s, &[0.0; 100], 1.0, Profile::Standard.costs());
        assert_eq!((none.raw, none.missed_windows), (-1.0, 1));
        // A detection at row 12 (in probation) does not count.
        let early = score_series(
            &s,
            &scores(100, &[(12, 1.0)]),
            1.0,
            Profile::Standard.costs(),
        );
        assert_eq!(early.raw, -1.0);
        // Rows after window 0 (but in probation) are not FPs either; row 30 is one, relative
        // to window 1 (right edge 20, width 9): y = 10/8 → σ(1.25) × 0.11.
        let late = score_series(
            &s,
            &scores(100, &[(30, 1.0)]),
            1.0,
            Profile::Standard.costs(),
        );
        assert!(close(late.raw, -1.0 + 0.11 * scaled_sigmoid(1.25)));
    }

    #[test]
    fn repeated_timestamps_follow_nab_row_walk() {
        // NAB walks rows, not time: it leaves a window after the first row with the end
        // timestamp, so a repeat of that timestamp on the next row is outside the window (a
        // time-range test would put it inside). Window rows 10..=13; row 14 repeats row 13's
        // time and is an FP at y = |13−14|/(4−1) = 1/3.
        let mut s = series("c/d.csv", 20, &[(10, 13)]);
        s.timestamps[14] = s.timestamps[13];
        let rows = label_series(&s).rows;
        assert!(matches!(rows[13], RowLabel::Window { window: 0, .. }));
        let RowLabel::Outside { sigmoid } = rows[14] else {
            panic!("row 14 is outside: {:?}", rows[14])
        };
        assert!(close(sigmoid, scaled_sigmoid(1.0 / 3.0)));
    }

    #[test]
    fn null_and_perfect_detectors_on_a_hand_built_corpus() {
        let corpus = Corpus {
            series: vec![
                series("x/a.csv", 20, &[(10, 13)]),
                series("x/b.csv", 40, &[(8, 11), (25, 28)]),
                series("y/none.csv", 30, &[]),
            ],
        };
        // So small a corpus that on reward_low_FN detecting every row (raw −4.0170) beats
        // detecting nothing (−6): NAB's null detector, a constant, picks the former, and it is
        // the baseline. Either way the null detector scores 0.
        let null = evaluate_detector(&corpus, DetectorKind::Null).unwrap();
        let low_fn = &null.profiles[2];
        assert_eq!(low_fn.threshold, 0.0);
        assert!(close(low_fn.null_raw, -4.0169634), "{low_fn:?}");
        assert_eq!(null.profiles[0].null_raw, -3.0);
        for (kind, expected) in [(DetectorKind::Null, 0.0), (DetectorKind::Perfect, 100.0)] {
            let report = evaluate_detector(&corpus, kind).unwrap();
            assert_eq!(report.profiles.len(), 3);
            for p in &report.profiles {
                assert!(close(p.score, expected), "{} {p:?}", kind.name());
            }
        }
    }

    #[test]
    fn rules_statistical_is_reported_not_applicable() {
        let corpus = Corpus {
            series: vec![series("x/a.csv", 20, &[(10, 13)])],
        };
        let report = evaluate_detector(&corpus, DetectorKind::RulesStatistical).unwrap();
        assert!(!report.applicable);
        assert!(report.profiles.is_empty());
        assert!(report.not_applicable.unwrap().contains("one-device fleet"));
    }

    #[test]
    fn rules_detector_alarms_through_the_rules_engine() {
        // Probation 0..=999: p99.9 = 998.001, p0.1 = 0.999 (linear interpolation).
        let probation: Vec<f64> = (0..1000).map(f64::from).collect();
        let times: Vec<EpochMillis> = (0..1000).map(|i| i * 300_000).collect();
        let mut sorted = probation.clone();
        sorted.sort_by(f64::total_cmp);
        assert!(close(quantile(&sorted, 0.999).unwrap(), 998.001));
        assert!(close(quantile(&sorted, 0.001).unwrap(), 0.999));

        let mut upper = RulesDetector::new(Sides::Upper, Mark::InAlarm);
        upper.fit(&times, &probation).unwrap();
        let seen: Vec<f64> = [500.0, 998.0, 999.0, 1e6, 10.0, -50.0]
            .iter()
            .enumerate()
            .map(|(i, &v)| upper.score(i as EpochMillis * 1000, v))
            .collect();
        assert_eq!(seen, [0.0, 0.0, 1.0, 1.0, 0.0, 0.0]);

        let mut both = RulesDetector::new(Sides::Both, Mark::InAlarm);
        both.fit(&times, &probation).unwrap();
        let seen: Vec<f64> = [500.0, 999.0, 10.0, -50.0, 0.5, 1.0]
            .iter()
            .enumerate()
            .map(|(i, &v)| both.score(i as EpochMillis * 1000, v))
            .collect();
        assert_eq!(seen, [0.0, 1.0, 0.0, 1.0, 1.0, 0.0]);

        // Onsets only: the second of two violating rows in a row is not a new alarm.
        let mut onset = RulesDetector::new(Sides::Upper, Mark::Onset);
        onset.fit(&times, &probation).unwrap();
        let seen: Vec<f64> = [500.0, 999.0, 1e6, 10.0, 1e6]
            .iter()
            .enumerate()
            .map(|(i, &v)| onset.score(i as EpochMillis * 1000, v))
            .collect();
        assert_eq!(seen, [0.0, 1.0, 0.0, 0.0, 1.0]);

        assert!(matches!(
            RulesDetector::new(Sides::Upper, Mark::InAlarm).fit(&[], &[]),
            Err(FitError::EmptyProbation)
        ));
    }

    /// The real corpus at `$THINGWARD_NAB_DIR` or `<workspace>/../shared/datasets/nab`
    /// (the workspace root is the parent of this package's manifest directory).
    fn real_corpus() -> Option<Corpus> {
        let dir = std::env::var_os(thingward_datasets::nab::DIR_ENV).map_or_else(
            || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/datasets/nab"),
            PathBuf::from,
        );
        if !dir.join(thingward_datasets::nab::WINDOWS_FILE).is_file() {
            eprintln!(
                "NAB corpus not found at {} (set {}); skipping",
                dir.display(),
                thingward_datasets::nab::DIR_ENV
            );
            return None;
        }
        Some(thingward_datasets::nab::load(&dir).unwrap())
    }

    #[test]
    fn real_corpus_null_scores_0_and_perfect_100() {
        let Some(corpus) = real_corpus() else { return };
        // NAB's optimiser asserts no window starts inside probation; the perfect oracle needs it.
        for s in &corpus.series {
            let labelled = label_series(s);
            assert_eq!(labelled.scored_windows, labelled.windows, "{}", s.name);
            let probation = probation_rows(s.len());
            for w in &s.windows {
                let start = s.timestamps.iter().position(|&t| t == w.start).unwrap();
                assert!(start >= probation, "{}: window starts in probation", s.name);
            }
        }
        let null = evaluate_detector(&corpus, DetectorKind::Null).unwrap();
        let perfect = evaluate_detector(&corpus, DetectorKind::Perfect).unwrap();
        for (p, profile) in null.profiles.iter().zip(Profile::ALL) {
            // ml-design §2.2: null raw −116 (standard, low FP), −232 (low FN).
            let fn_weight = profile.costs().fn_;
            assert_eq!(p.null_raw, -116.0 * fn_weight);
            assert_eq!(p.perfect_raw, 116.0);
            assert_eq!(p.threshold, NOTHING_THRESHOLD);
            assert!(close(p.score, 0.0), "{p:?}");
        }
        for p in &perfect.profiles {
            assert!(close(p.score, 100.0), "{p:?}");
            assert_eq!(p.total.false_positives, 0);
            assert_eq!(p.total.detected_windows, 116);
        }
    }
}
