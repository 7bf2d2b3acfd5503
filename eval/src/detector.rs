//! The one detector interface both runners use: `thingward eval` ([`crate::fleet`]) and
//! `thingward nab` ([`crate::nab`]).
//!
//! A detector under offline evaluation is given the same thing by both: the datapoints of a
//! training span ([`Detector::learn`] one by one, then [`Detector::train`] once with their
//! per-metric values and the span), then every datapoint after it, one by one in time order
//! ([`Detector::observe`]). It answers one [`Verdict`] per [`Level`] it reports at, and the
//! runners read the part of the verdict their scoring rules need:
//!
//! - `thingward eval` scores alarm episodes against labelled attacks and the false-positive
//!   rate per datapoint, so it reads [`Verdict::alarm`], [`Verdict::clear`] and
//!   [`Verdict::flagged`], at every level;
//! - `thingward nab` sweeps one threshold over a graded score per row, so it reads
//!   [`Verdict::score`] (a binary detector answers 0 or 1) at the first level. NAB has no
//!   fleet: each series is a one-device fleet of one custom metric, and its probation rows
//!   are the training span.
//!
//! The detectors themselves stay with the runner that offers them (the registries differ:
//! eval's rules baselines compare devices with the fleet, NAB's compare a series with its own
//! probation rows); every one of them — null, perfect, the rules baselines, ML Detect and
//! external flags — implements [`Detector`].

use std::collections::HashMap;
use thingward_models::time::EpochMillis;
use thingward_models::{CustomMetricType, Datapoint, Metric, ViolationEventType};
use thingward_scorer::{Change, Transition};

/// What a detector said about one datapoint (at one of its levels).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Verdict {
    /// The datapoint itself is anomalous (counts toward the false-positive rate).
    pub flagged: bool,
    /// An alarm started at this datapoint.
    pub alarm: bool,
    /// The alarm cleared at this datapoint.
    pub clear: bool,
    /// The anomaly score of the datapoint in `[0, 1]`, for runners that sweep a threshold
    /// over it (NAB); detectors without a graded score answer 1 when flagged, else 0.
    pub score: f64,
    /// The alarm that started here is recorded but not notified: a fleet event (or a
    /// maintenance window) explains it. A later [`Note::Released`] may notify it.
    pub held: bool,
    /// The fleet event explaining the alarm, if any.
    pub fleet_event: Option<u64>,
    /// The device incident the alarm belongs to, if the detector groups alarms.
    pub incident: Option<u64>,
}

/// What a detector says outside one datapoint's verdict (ML Detect's fleet events).
#[derive(Debug, Clone, PartialEq)]
pub enum Note {
    /// A held alarm of (thing, metric) is notified now.
    Released {
        /// The thing.
        thing: String,
        /// The metric.
        metric: Metric,
        /// When.
        at: EpochMillis,
    },
    /// A fleet event was notified (opened), or ended.
    FleetEvent(FleetNote),
}

/// A fleet event as the evaluation sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct FleetNote {
    /// Its id.
    pub id: u64,
    /// Whether it opened (was notified); a dissolved pending event did not.
    pub opened: bool,
    /// First hot device.
    pub start: EpochMillis,
    /// When it closed or dissolved (None: still open at the end of data).
    pub end: Option<EpochMillis>,
    /// Its metrics.
    pub metrics: Vec<Metric>,
    /// The highest share of devices on any metric.
    pub peak_share: f64,
    /// Device alarms it explained.
    pub explained: u32,
}

impl Verdict {
    /// The verdict that one datapoint's alarm transitions (at one level) amount to: flagged
    /// while a behavior is in alarm, and the score is 1 exactly when flagged.
    pub fn of_transitions(transitions: &[Transition]) -> Self {
        let mut v = Self::default();
        for t in transitions {
            match t.change {
                Change::Event(ViolationEventType::InAlarm) => {
                    v.flagged = true;
                    v.alarm = true;
                }
                Change::StillInAlarm => v.flagged = true,
                Change::Event(_) => v.clear = true,
            }
        }
        v.score = if v.flagged { 1.0 } else { 0.0 };
        for t in transitions {
            if t.change == Change::Event(ViolationEventType::InAlarm) {
                v.held = t.cause.is_some();
                v.fleet_event = match t.cause {
                    Some(thingward_scorer::Cause::FleetEvent(id)) => Some(id),
                    _ => None,
                };
                v.incident = t.incident;
            }
        }
        v
    }
}

/// One level a detector reports at: `rule` for detectors without levels, LOW/MEDIUM/HIGH for
/// ML Detect.
#[derive(Debug, Clone, PartialEq)]
pub struct Level {
    /// Its name in reports.
    pub name: String,
    /// The per-datapoint false-positive target, when the level has one.
    pub target_fpr: Option<f64>,
    /// The level's false-alarm budget in alarm episodes per 1,000 device-days, when it has one.
    pub budget: Option<f64>,
}

impl Level {
    /// The single level of a detector without levels.
    pub fn rule() -> Vec<Self> {
        vec![Self {
            name: "rule".into(),
            target_fpr: None,
            budget: None,
        }]
    }
}

/// The span the detectors learn from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// First millisecond.
    pub start: EpochMillis,
    /// One past the last.
    pub end: EpochMillis,
}

/// A detector under offline evaluation: learns from a training span, then judges datapoints
/// one by one in time order (module docs).
pub trait Detector {
    /// Its name in reports.
    fn name(&self) -> String;
    /// The levels it reports at; [`Detector::observe`] fills one verdict per level.
    fn levels(&self) -> Vec<Level> {
        Level::rule()
    }
    /// Sees one datapoint of the training span, `x` its number (detectors that learn per
    /// device, or need the timestamps, keep it).
    fn learn(&mut self, _dp: &Datapoint, _x: f64) {}
    /// Learns from the training span: its values per metric and its bounds.
    ///
    /// # Errors
    /// When the training data cannot make a model.
    fn train(&mut self, training: &TrainingSet, span: Span) -> Result<(), FitError>;
    /// Judges the next datapoint, in time order, after [`Detector::train`]: one verdict per
    /// level, in [`Detector::levels`] order. An untrained detector flags nothing. (NAB's runner
    /// replays the probation rows too, as NAB does, and does not count their verdicts.)
    fn observe(&mut self, dp: &Datapoint, out: &mut [Verdict]);
    /// Moves what the detector noted at level `level` since the last call to `out` (fleet
    /// events, released alarms); most detectors note nothing.
    fn drain_notes(&mut self, _level: usize, _out: &mut Vec<Note>) {}
    /// The upper edge of the normal range of `thing`'s `metric` at `at` for level `level`,
    /// where the detector has one (plots).
    fn upper_bound(
        &self,
        _thing: &str,
        _metric: &Metric,
        _at: EpochMillis,
        _level: usize,
    ) -> Option<f64> {
        None
    }
}

/// Why a detector could not be trained.
#[derive(Debug, thiserror::Error)]
pub enum FitError {
    /// The training span (NAB: the probation rows) holds no values to learn from.
    #[error("no probation rows to fit on")]
    EmptyProbation,
    /// The security profile a detector builds from what it learnt is not a valid profile.
    #[error("building the detector's security profile: {0}")]
    Profile(#[source] serde_json::Error),
    /// The security profile built from the fitted thresholds did not compile.
    #[error("the fitted security profile does not compile: {0}")]
    Compile(#[from] thingward_scorer::Error),
    /// The ML fit parameters are invalid.
    #[error("ML fit parameters: {0}")]
    MlParams(#[source] thingward_trainer::FitParamsError),
    /// The ML trainer failed on a metric's training data.
    #[error("ML training of {metric}: {source}")]
    MlFit {
        /// The metric whose model failed.
        metric: String,
        /// Why.
        #[source]
        source: thingward_trainer::Error,
    },
    /// The fitted ML model is unusable.
    #[error("ML model: {0}")]
    MlModel(#[from] thingward_scorer::ModelError),
    /// A thread fitting models panicked.
    #[error("a training thread panicked")]
    TrainingPanicked,
}

/// At most this many training values are kept per metric (decimated beyond).
const TRAINING_CAP: usize = 4_000_000;

/// Training values per metric, in the order they came, decimated deterministically past
/// `TRAINING_CAP`.
#[derive(Debug, Default)]
pub struct TrainingSet {
    values: HashMap<Metric, (Vec<f64>, usize, usize)>,
}

impl TrainingSet {
    /// Adds one training value.
    pub fn push(&mut self, metric: &Metric, x: f64) {
        let (values, stride, seen) = self
            .values
            .entry(metric.clone())
            .or_insert_with(|| (Vec::new(), 1, 0));
        if *seen % *stride == 0 {
            values.push(x);
            if values.len() >= TRAINING_CAP {
                // Keep every other value and sample half as often from now on.
                let kept: Vec<f64> = values.iter().step_by(2).copied().collect();
                *values = kept;
                *stride *= 2;
            }
        }
        *seen += 1;
    }

    /// The nearest-rank quantile `q` of a metric's training values.
    pub fn quantile(&self, metric: &Metric, q: f64) -> Option<f64> {
        let (values, _, _) = self.values.get(metric)?;
        if values.is_empty() {
            return None;
        }
        let mut v = values.clone();
        let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
        let (_, x, _) = v.select_nth_unstable_by(rank - 1, f64::total_cmp);
        Some(*x)
    }

    /// A metric's training values, in the order they were pushed (all of them below
    /// `TRAINING_CAP`); empty for a metric without any.
    pub fn values(&self, metric: &Metric) -> &[f64] {
        self.values.get(metric).map_or(&[], |(v, _, _)| v)
    }

    /// Metrics with training data.
    pub fn metrics(&self) -> Vec<Metric> {
        let mut m: Vec<Metric> = self.values.keys().cloned().collect();
        m.sort();
        m
    }
}

/// The registry of the profiles the fleet detectors build: no custom metrics, no dimensions.
#[derive(Debug)]
pub(crate) struct NoRegistry;

impl thingward_scorer::Registry for NoRegistry {
    fn custom_metric_type(&self, _: &str) -> Option<CustomMetricType> {
        None
    }
    fn dimension_filters(&self, _: &str) -> Option<Vec<String>> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn training_set_decimates_deterministically() {
        let mut t = TrainingSet::default();
        for i in 0..(TRAINING_CAP * 2 + 10) {
            t.push(&Metric::AllBytesIn, i as f64);
        }
        let q = t.quantile(&Metric::AllBytesIn, 0.5).unwrap();
        let n = (TRAINING_CAP * 2 + 10) as f64;
        assert!((q - n / 2.0).abs() < n * 0.01, "{q}");
    }
}
