//! ML Detect model artifacts: the plain parameter structs the trainer fits and the scorer reads.
//!
//! One [`BehaviorModel`] per (security profile, ML behavior). It holds, for every device seen
//! in the training window, a robust baseline in a transformed space (location, scale and
//! hour-of-week offsets, shrunk toward the device's cohort), and per cohort the residual
//! thresholds that meet each confidence level's false-positive target. Scoring is arithmetic
//! on these numbers; nothing here depends on how they were fitted.
//!
//! The on-disk form is [`crate::codec`]; these types change only with a codec format version.

use crate::behavior::ConfidenceLevel;
use crate::time::EpochMillis;
use serde::{Deserialize, Serialize};

/// The confidence levels in increasing order of strictness (index = [`level_index`]).
pub const LEVELS: [ConfidenceLevel; 3] = [
    ConfidenceLevel::Low,
    ConfidenceLevel::Medium,
    ConfidenceLevel::High,
];

/// The index of `level` in [`LEVELS`] and in every per-level array.
pub fn level_index(level: ConfidenceLevel) -> usize {
    match level {
        ConfidenceLevel::Low => 0,
        ConfidenceLevel::Medium => 1,
        ConfidenceLevel::High => 2,
    }
}

/// Hour-of-week buckets of a seasonal profile (Monday 00:00 UTC = bucket 0).
pub const WEEK_BUCKETS: usize = 168;

/// The hour-of-week bucket of a timestamp (UTC; Monday 00:00 = 0).
pub fn hour_of_week(ts: EpochMillis) -> usize {
    // 1970-01-01 was a Thursday: Monday 00:00 lies 72 hours later in the week.
    let hours = ts.div_euclid(3_600_000) + 72;
    hours.rem_euclid(WEEK_BUCKETS as i64) as usize
}

/// How raw values are mapped before the baseline is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Transform {
    /// `ln(1 + max(x, 0))`: volumes and counts, whose spread grows with their level.
    Log1p,
    /// The value itself.
    Identity,
}

impl Transform {
    /// Applies the transform.
    #[inline]
    pub fn apply(self, x: f64) -> f64 {
        match self {
            Self::Log1p => x.max(0.0).ln_1p(),
            Self::Identity => x,
        }
    }

    /// The raw value whose transform is `y`.
    #[inline]
    pub fn invert(self, y: f64) -> f64 {
        match self {
            Self::Log1p => y.exp_m1().max(0.0),
            Self::Identity => y,
        }
    }
}

/// Per-level per-datapoint false-positive targets (LOW, MEDIUM, HIGH).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LevelTargets(pub [f64; 3]);

impl Default for LevelTargets {
    /// LOW 1e-3, MEDIUM 1e-4, HIGH 1e-5 (DESIGN §5).
    fn default() -> Self {
        Self([1e-3, 1e-4, 1e-5])
    }
}

impl LevelTargets {
    /// The target of `level`.
    pub fn of(&self, level: ConfidenceLevel) -> f64 {
        self.0[level_index(level)]
    }
}

/// The drift test's state for one (thing, behavior): the slow mean of the clipped residuals
/// and, for format-2 models, a fast one (8 bytes; start at the default, zero).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Drift {
    /// The slow mean (`drift_lambda`).
    pub slow: f32,
    /// The fast mean (`drift_fast_lambda`; unused when that is 0).
    pub fast: f32,
}

impl Drift {
    /// The statistic the drift thresholds apply to: the slow mean, capped by the fast one
    /// when the model has it — a sustained shift raises both, a shift that is over lets the
    /// fast mean fall back within hours.
    #[inline]
    pub fn statistic(self, fast_lambda: f32) -> f32 {
        if fast_lambda > 0.0 {
            self.slow.min(self.fast)
        } else {
            self.slow
        }
    }

    /// Adds a clipped residual.
    #[inline]
    pub fn update(&mut self, r: f32, lambda: f32, fast_lambda: f32) {
        self.slow += lambda * (r - self.slow);
        if fast_lambda > 0.0 {
            self.fast += fast_lambda * (r - self.fast);
        }
    }
}

/// A cohort's (or the whole fleet's) baseline and the thresholds its devices are judged by.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CohortModel {
    /// `fleet` for entry 0, `cohort-N` for the others.
    pub name: String,
    /// Devices in the cohort (all of them for the fleet).
    pub devices: u32,
    /// Median transformed value of the cohort's devices.
    pub location: f32,
    /// Robust scale of a cohort device around the cohort baseline.
    pub scale: f32,
    /// Hour-of-week offsets ([`WEEK_BUCKETS`] long) or empty for none.
    pub seasonal: Vec<f32>,
    /// Point thresholds on the standardised residual, per level, for devices judged against
    /// their own baseline.
    pub point: [f32; 3],
    /// Thresholds on the residuals' exponentially weighted mean (slow drifts), per level.
    pub drift: [f32; 3],
    /// Point thresholds for a device judged against this cohort's baseline (not trained on).
    pub cohort_point: [f32; 3],
}

/// One device's baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceModel {
    /// The thing name.
    pub thing: String,
    /// Index into [`BehaviorModel::cohorts`].
    pub cohort: u16,
    /// Location in the transformed space (shrunk toward the cohort).
    pub location: f32,
    /// Robust scale of the residual (shrunk toward the cohort, floored).
    pub scale: f32,
    /// Hour-of-week offsets ([`WEEK_BUCKETS`] long) or empty for none.
    pub seasonal: Vec<f32>,
    /// Training datapoints of this device.
    pub datapoints: u32,
}

/// What calibration measured on held-out training data, per level: the rate the trainer
/// expects to see on clean devices.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ExpectedRates {
    /// Flagged datapoints ÷ datapoints (point and drift tests together).
    pub datapoint: [f64; 3],
    /// Held-out datapoints calibration used.
    pub calibration_datapoints: u64,
    /// Alarm episodes per 1,000 device-days this behavior is expected to raise on clean
    /// devices, per level (None: a format-1 model, calibrated per datapoint only).
    #[serde(default)]
    pub episodes_per_1000_device_days: Option<[f64; 3]>,
    /// Datapoints per device-day in the training window (0 when unknown).
    #[serde(default)]
    pub datapoints_per_device_day: f64,
}

/// The false-alarm budget a model was calibrated to, in the unit people read: alarm episodes
/// per 1,000 device-days.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AlarmBudget {
    /// The whole profile's budget per level (LOW, MEDIUM, HIGH), shared by its ML behaviors.
    pub profile: [f64; 3],
    /// How many ML behaviors share it.
    pub behaviors: u32,
    /// This behavior's share per level.
    pub behavior: [f64; 3],
}

impl AlarmBudget {
    /// The default profile budget: LOW 20, MEDIUM 2, HIGH 0.2 episodes per 1,000 device-days.
    pub const DEFAULT_PROFILE: [f64; 3] = [20.0, 2.0, 0.2];

    /// `profile` shared equally by `behaviors` ML behaviors.
    pub fn shared(profile: [f64; 3], behaviors: u32) -> Self {
        let n = f64::from(behaviors.max(1));
        Self {
            profile,
            behaviors: behaviors.max(1),
            behavior: profile.map(|b| b / n),
        }
    }
}

/// The fitted model of one (security profile, ML behavior).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BehaviorModel {
    /// The security profile.
    pub profile: String,
    /// The behavior.
    pub behavior: String,
    /// The metric's wire name.
    pub metric: String,
    /// Model version: 1 for the first build, +1 per refresh.
    pub version: u64,
    /// When it was trained.
    pub trained_at: EpochMillis,
    /// The training window `[start, end)`.
    pub window_start: EpochMillis,
    /// The training window's end.
    pub window_end: EpochMillis,
    /// Datapoints the model was fitted on.
    pub datapoints: u64,
    /// Datapoints of the window left out (in alarm, or verified true positives).
    pub excluded_datapoints: u64,
    /// The value transform.
    pub transform: Transform,
    /// The per-datapoint false-positive targets the thresholds were set for.
    pub targets: LevelTargets,
    /// Smoothing factor of the drift test's exponentially weighted mean, per datapoint.
    pub drift_lambda: f32,
    /// Residuals are clipped to ±this before entering the drift mean.
    pub residual_clip: f32,
    /// Smoothing factor of the drift test's fast mean: the drift test fires only while the
    /// slow mean *and* this recent one are high, so a shift that is over (a fleet-wide hour
    /// of reconnects) stops alarming within hours. 0: no fast mean (format-1 models).
    pub drift_fast_lambda: f32,
    /// The alarm budget the thresholds were calibrated to (None: a format-1 model, calibrated
    /// per datapoint to `targets`).
    pub budget: Option<AlarmBudget>,
    /// The fleet (entry 0) and the cohorts.
    pub cohorts: Vec<CohortModel>,
    /// The devices, sorted by thing name.
    pub devices: Vec<DeviceModel>,
    /// What calibration expects per level.
    pub expected: ExpectedRates,
}

impl BehaviorModel {
    /// The device entry of `thing` (binary search; devices are sorted by name).
    pub fn device(&self, thing: &str) -> Option<&DeviceModel> {
        self.devices
            .binary_search_by(|d| d.thing.as_str().cmp(thing))
            .ok()
            .map(|i| &self.devices[i])
    }
}

/// Which baseline a datapoint was judged against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BaselineKind {
    /// The device's own history.
    Device,
    /// Its cohort's (the device was not in the training window).
    Cohort,
}

/// Which test fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AnomalyTest {
    /// The datapoint alone is outside the expected range.
    Point,
    /// The recent mean of the residuals has drifted (slow ramps).
    Drift,
}

/// The upper edge of the expected range at one level.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LevelRange {
    /// The level.
    pub confidence_level: ConfidenceLevel,
    /// Values above this are anomalous at this level (in the metric's unit).
    pub upper: f64,
}

/// Why an ML behavior judged a datapoint as it did: carried on ML violations (extra fields
/// AWS clients ignore) and in evaluation plots.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MlExplanation {
    /// The observed value.
    pub observed: f64,
    /// What the baseline expected at that hour of the week.
    pub expected: f64,
    /// The expected range's upper edge at each level.
    pub expected_range: Vec<LevelRange>,
    /// The highest level the datapoint reached (None: normal).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reached: Option<ConfidenceLevel>,
    /// Which test decided the level.
    pub test: AnomalyTest,
    /// The baseline it was judged against.
    pub baseline: BaselineKind,
    /// The baseline's name: the thing, or the cohort.
    pub baseline_name: String,
    /// The standardised residual.
    pub residual: f64,
    /// The drift test's recent mean of residuals.
    pub drift: f64,
    /// The model version.
    pub model_version: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hour_of_week_starts_monday_utc() {
        // 2026-01-05 was a Monday.
        let monday = 1_767_571_200_000;
        assert_eq!(hour_of_week(monday), 0);
        assert_eq!(hour_of_week(monday + 3_600_000 * 25), 25);
        assert_eq!(hour_of_week(monday - 1), 167);
        assert_eq!(hour_of_week(monday + 7 * 86_400_000), 0);
    }

    #[test]
    fn log1p_round_trips() {
        for x in [0.0, 1.0, 12.5, 1e9] {
            let y = Transform::Log1p.apply(x);
            assert!((Transform::Log1p.invert(y) - x).abs() <= 1e-6 * x.max(1.0));
        }
        assert_eq!(Transform::Log1p.apply(-5.0), 0.0);
    }
}
