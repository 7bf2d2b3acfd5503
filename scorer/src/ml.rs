//! ML Detect scoring: judges each datapoint of an ML behavior against its (profile, behavior)
//! model and gives it the highest confidence level it reaches.
//!
//! A model ([`thingward_models::ml::BehaviorModel`]) is checked and indexed once
//! ([`CompiledModel::new`]); judging a datapoint is then a hash lookup of the thing, one
//! transform, one subtraction and division, and at most six comparisons:
//!
//! - **point test**: the standardised residual `r = (T(x) − location − seasonal[hour of week]) / scale`
//!   against the cohort's per-level thresholds;
//! - **drift test**: an exponentially weighted mean of the clipped residuals (the caller keeps it,
//!   4 bytes per (thing, behavior)) against the cohort's drift thresholds, so a slow ramp that
//!   never makes one datapoint unusual still alarms.
//!
//! A thing the model was not trained on is judged against the fleet baseline (entry 0) with the
//! fleet's wider cohort thresholds, and without the drift test.
//!
//! The models in service live in a [`LiveModels`]: readers take a snapshot without locking,
//! a retrained model replaces the old one atomically, and an artifact that fails to decode or
//! validate is refused while the previous model keeps serving.

use arc_swap::ArcSwap;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use thingward_models::ConfidenceLevel;
use thingward_models::codec;
pub use thingward_models::ml::Drift;
use thingward_models::ml::{
    AnomalyTest, BaselineKind, BehaviorModel, LEVELS, LevelRange, MlExplanation, WEEK_BUCKETS,
    hour_of_week,
};
use thingward_models::time::EpochMillis;

/// Why a model cannot serve.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The artifact does not decode.
    #[error("model artifact refused: {0}")]
    Codec(#[from] codec::Error),
    /// The model decodes but is not usable.
    #[error("model for '{profile}'/'{behavior}' is invalid: {reason}")]
    Invalid {
        /// The profile.
        profile: String,
        /// The behavior.
        behavior: String,
        /// What is wrong.
        reason: &'static str,
    },
}

/// The verdict of one datapoint.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Judgement {
    /// The highest level reached, as an index into [`LEVELS`]; None when normal.
    pub level: Option<u8>,
    /// Which test decided the level (the point test when neither fired).
    pub test: AnomalyTest,
    /// The standardised residual.
    pub residual: f32,
    /// The drift mean after this datapoint.
    pub drift: f32,
    /// The baseline used.
    pub baseline: BaselineKind,
}

impl Judgement {
    /// Whether the datapoint reaches `level`.
    #[inline]
    pub fn reaches(&self, level: ConfidenceLevel) -> bool {
        self.level
            .is_some_and(|l| usize::from(l) >= thingward_models::ml::level_index(level))
    }

    /// The level reached.
    pub fn confidence_level(&self) -> Option<ConfidenceLevel> {
        self.level.map(|l| LEVELS[usize::from(l)])
    }
}

/// A checked, indexed model ready to judge datapoints.
#[derive(Debug)]
pub struct CompiledModel {
    model: BehaviorModel,
    index: HashMap<Box<str>, u32>,
    /// Cohort names by model cohort index (entry 0: the fleet), shared with fleet tracking.
    cohort_names: Arc<[Arc<str>]>,
    /// Distinguishes compiled models (a retrained model gets a new one), so callers may cache
    /// a thing's device index per model.
    id: u32,
}

/// Identifies compiled models and model sets.
static NEXT_ID: AtomicU32 = AtomicU32::new(1);

fn next_id() -> u32 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

/// Highest index `i` with `x > thresholds[i]`, if any (thresholds are non-decreasing).
#[inline]
fn level_of(x: f32, thresholds: &[f32; 3]) -> Option<u8> {
    let n = thresholds.iter().filter(|&&t| x > t).count();
    (n > 0).then(|| (n - 1) as u8)
}

fn seasonal_at(seasonal: &[f32], bucket: usize) -> f32 {
    seasonal.get(bucket).copied().unwrap_or(0.0)
}

impl CompiledModel {
    /// Checks `model` and indexes its devices.
    ///
    /// # Errors
    /// [`ModelError::Invalid`] when it has no fleet baseline, a device points at a missing
    /// cohort, a seasonal profile has the wrong length, a number is not finite, a scale is not
    /// positive or thresholds decrease with the level.
    pub fn new(model: BehaviorModel) -> Result<Self, ModelError> {
        let invalid = |reason| ModelError::Invalid {
            profile: model.profile.clone(),
            behavior: model.behavior.clone(),
            reason,
        };
        if model.cohorts.is_empty() {
            return Err(invalid("no fleet baseline"));
        }
        let seasonal_ok = |s: &[f32]| {
            (s.is_empty() || s.len() == WEEK_BUCKETS) && s.iter().all(|x| x.is_finite())
        };
        let monotone = |t: &[f32; 3]| t.iter().all(|x| !x.is_nan()) && t[0] <= t[1] && t[1] <= t[2];
        for c in &model.cohorts {
            if !seasonal_ok(&c.seasonal) {
                return Err(invalid("a cohort's seasonal profile is malformed"));
            }
            if !(c.location.is_finite() && c.scale.is_finite() && c.scale > 0.0) {
                return Err(invalid(
                    "a cohort's location or scale is not a positive finite number",
                ));
            }
            if !(monotone(&c.point) && monotone(&c.drift) && monotone(&c.cohort_point)) {
                return Err(invalid("thresholds must not decrease from LOW to HIGH"));
            }
        }
        if !(model.drift_lambda > 0.0 && model.drift_lambda <= 1.0 && model.residual_clip > 0.0) {
            return Err(invalid("drift parameters out of range"));
        }
        let mut index = HashMap::with_capacity(model.devices.len());
        for (i, d) in model.devices.iter().enumerate() {
            if usize::from(d.cohort) >= model.cohorts.len() {
                return Err(invalid("a device names a cohort that does not exist"));
            }
            if !seasonal_ok(&d.seasonal) {
                return Err(invalid("a device's seasonal profile is malformed"));
            }
            if !(d.location.is_finite() && d.scale.is_finite() && d.scale > 0.0) {
                return Err(invalid(
                    "a device's location or scale is not a positive finite number",
                ));
            }
            if index.insert(d.thing.as_str().into(), i as u32).is_some() {
                return Err(invalid("a device appears twice"));
            }
        }
        if !(model.drift_fast_lambda >= 0.0 && model.drift_fast_lambda <= 1.0) {
            return Err(invalid("drift parameters out of range"));
        }
        let cohort_names = model
            .cohorts
            .iter()
            .map(|c| Arc::from(c.name.as_str()))
            .collect();
        Ok(Self {
            model,
            index,
            cohort_names,
            id: next_id(),
        })
    }

    /// This compilation's id (never 0).
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The index of `thing` among the model's devices, for [`CompiledModel::judge_at`].
    #[inline]
    pub fn device_index(&self, thing: &str) -> Option<u32> {
        self.index.get(thing).copied()
    }

    /// Decodes and checks an artifact.
    ///
    /// # Errors
    /// The codec's refusal, or [`ModelError::Invalid`].
    pub fn from_artifact(bytes: &[u8]) -> Result<Self, ModelError> {
        Self::new(codec::decode(bytes)?)
    }

    /// The model's parameters.
    pub fn model(&self) -> &BehaviorModel {
        &self.model
    }

    /// The model version.
    pub fn version(&self) -> u64 {
        self.model.version
    }

    /// Cohort names by cohort index (entry 0: the fleet).
    pub fn cohort_names(&self) -> &Arc<[Arc<str>]> {
        &self.cohort_names
    }

    /// The cohort index a device is judged in (0 for a thing the model was not trained on,
    /// and for every device of a one-cohort model).
    #[inline]
    pub fn cohort_slot(&self, device: Option<u32>) -> usize {
        device
            .and_then(|i| self.model.devices.get(i as usize))
            .map_or(0, |d| usize::from(d.cohort))
    }

    /// The per-datapoint rate at which a clean device reaches LOW, as calibration measured it.
    pub fn low_rate(&self) -> f64 {
        self.model.expected.datapoint[0].max(self.model.targets.0[0] * 1e-3)
    }

    /// Judges `x` of `thing` at `ts`, advancing the thing's drift means `drift` (start at the
    /// default).
    #[inline]
    pub fn judge(&self, thing: &str, ts: EpochMillis, x: f64, drift: &mut Drift) -> Judgement {
        self.judge_at(self.device_index(thing), ts, x, drift)
    }

    /// [`CompiledModel::judge`] for a thing whose [`CompiledModel::device_index`] is known
    /// (None: a thing the model was not trained on).
    #[inline]
    pub fn judge_at(
        &self,
        device: Option<u32>,
        ts: EpochMillis,
        x: f64,
        drift: &mut Drift,
    ) -> Judgement {
        let m = &self.model;
        let bucket = hour_of_week(ts);
        let y = m.transform.apply(x) as f32;
        match device.and_then(|i| m.devices.get(i as usize)) {
            Some(d) => {
                let c = &m.cohorts[usize::from(d.cohort)];
                let r = (y - d.location - seasonal_at(&d.seasonal, bucket)) / d.scale;
                // Point anomalies (spikes, bursts) stay out of the drift mean: it follows the
                // unremarkable datapoints, where a slow ramp hides.
                if r <= c.point[0] {
                    let clip = m.residual_clip;
                    drift.update(r.clamp(-clip, clip), m.drift_lambda, m.drift_fast_lambda);
                }
                let statistic = drift.statistic(m.drift_fast_lambda);
                let point = level_of(r, &c.point);
                let slow = level_of(statistic, &c.drift);
                let (level, test) = match (point, slow) {
                    (Some(p), Some(s)) if s > p => (Some(s), AnomalyTest::Drift),
                    (None, Some(s)) => (Some(s), AnomalyTest::Drift),
                    (p, _) => (p, AnomalyTest::Point),
                };
                Judgement {
                    level,
                    test,
                    residual: r,
                    drift: statistic,
                    baseline: BaselineKind::Device,
                }
            }
            None => {
                let c = &m.cohorts[0];
                let r = (y - c.location - seasonal_at(&c.seasonal, bucket)) / c.scale;
                Judgement {
                    level: level_of(r, &c.cohort_point),
                    test: AnomalyTest::Point,
                    residual: r,
                    drift: drift.statistic(m.drift_fast_lambda),
                    baseline: BaselineKind::Cohort,
                }
            }
        }
    }

    /// The upper edge of the expected range of `thing` at `ts`, per level (in the metric's
    /// unit), and the expected value itself.
    pub fn expected_range(&self, thing: &str, ts: EpochMillis) -> (f64, [f64; 3]) {
        let m = &self.model;
        let bucket = hour_of_week(ts);
        let (centre, scale, thresholds) = match self.index.get(thing) {
            Some(&i) => {
                let d = &m.devices[i as usize];
                (
                    d.location + seasonal_at(&d.seasonal, bucket),
                    d.scale,
                    m.cohorts[usize::from(d.cohort)].point,
                )
            }
            None => {
                let c = &m.cohorts[0];
                (
                    c.location + seasonal_at(&c.seasonal, bucket),
                    c.scale,
                    c.cohort_point,
                )
            }
        };
        let up = |t: f32| m.transform.invert(f64::from(centre + t * scale));
        (
            m.transform.invert(f64::from(centre)),
            [up(thresholds[0]), up(thresholds[1]), up(thresholds[2])],
        )
    }

    /// Explains a judgement of `x` of `thing` at `ts`.
    pub fn explain(&self, thing: &str, ts: EpochMillis, x: f64, j: &Judgement) -> MlExplanation {
        let (expected, upper) = self.expected_range(thing, ts);
        let baseline_name = match j.baseline {
            BaselineKind::Device => thing.to_owned(),
            BaselineKind::Cohort => self.model.cohorts[0].name.clone(),
        };
        MlExplanation {
            observed: x,
            expected,
            expected_range: LEVELS
                .iter()
                .zip(upper)
                .map(|(&confidence_level, upper)| LevelRange {
                    confidence_level,
                    upper,
                })
                .collect(),
            reached: j.confidence_level(),
            test: j.test,
            baseline: j.baseline,
            baseline_name,
            residual: f64::from(j.residual),
            drift: f64::from(j.drift),
            model_version: self.model.version,
        }
    }
}

/// The models in service, keyed by profile, then behavior.
#[derive(Debug, Clone)]
pub struct ModelSet {
    models: HashMap<Arc<str>, HashMap<Arc<str>, Arc<CompiledModel>>>,
    /// Changes with every insert or removal, so the scorer can cache lookups per set.
    id: u32,
}

impl Default for ModelSet {
    fn default() -> Self {
        Self {
            models: HashMap::new(),
            id: next_id(),
        }
    }
}

impl ModelSet {
    /// Identifies this content of the set: equal ids, same models.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The model of (`profile`, `behavior`), if one is active.
    #[inline]
    pub fn get(&self, profile: &str, behavior: &str) -> Option<&Arc<CompiledModel>> {
        self.models.get(profile)?.get(behavior)
    }

    /// How many models are active.
    pub fn len(&self) -> usize {
        self.models.values().map(HashMap::len).sum()
    }

    /// Whether no model is active.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds or replaces a model.
    pub fn insert(&mut self, model: Arc<CompiledModel>) {
        let profile = Arc::from(model.model().profile.as_str());
        let behavior = Arc::from(model.model().behavior.as_str());
        self.models
            .entry(profile)
            .or_default()
            .insert(behavior, model);
        self.id = next_id();
    }

    /// Removes the models of `profile` whose behavior is not in `keep`.
    pub fn retain_profile(&mut self, profile: &str, keep: &[&str]) {
        if let Some(behaviors) = self.models.get_mut(profile) {
            behaviors.retain(|b, _| keep.contains(&&**b));
            if behaviors.is_empty() {
                self.models.remove(profile);
            }
        }
        self.id = next_id();
    }

    /// Every active model.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<CompiledModel>> {
        self.models.values().flat_map(HashMap::values)
    }
}

/// The models in service, swapped atomically: scoring reads a snapshot without a lock while a
/// retrained model replaces the old one.
#[derive(Debug, Default)]
pub struct LiveModels {
    current: ArcSwap<ModelSet>,
}

impl LiveModels {
    /// No models.
    pub fn new() -> Self {
        Self::default()
    }

    /// The current set.
    pub fn snapshot(&self) -> Arc<ModelSet> {
        self.current.load_full()
    }

    /// Decodes, checks and installs an artifact; on any error the previous model of that
    /// behavior keeps serving. Returns the installed model.
    ///
    /// # Errors
    /// The artifact's refusal.
    pub fn install_artifact(&self, bytes: &[u8]) -> Result<Arc<CompiledModel>, ModelError> {
        let model = Arc::new(CompiledModel::from_artifact(bytes)?);
        self.install(Arc::clone(&model));
        Ok(model)
    }

    /// Installs a checked model, replacing the one of its (profile, behavior).
    pub fn install(&self, model: Arc<CompiledModel>) {
        self.current.rcu(|set| {
            let mut next = ModelSet::clone(set);
            next.insert(Arc::clone(&model));
            next
        });
    }

    /// Drops the models of `profile` whose behaviors are not in `keep`.
    pub fn retain_profile(&self, profile: &str, keep: &[&str]) {
        self.current.rcu(|set| {
            let mut next = ModelSet::clone(set);
            next.retain_profile(profile, keep);
            next
        });
    }
}
