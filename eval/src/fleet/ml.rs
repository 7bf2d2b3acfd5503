//! ML Detect as an evaluation detector: the trainer's `fit` on the training span, then the
//! scorer's `observe_ml` — the code path `thingward serve` runs — at LOW, MEDIUM and HIGH.

use crate::detector::{
    Detector, FitError, FleetNote, Level, NoRegistry, Note, Span, TrainingSet, Verdict,
};
use std::collections::HashMap;
use std::sync::Arc;
use thingward_models::ml::{AlarmBudget, LEVELS};
use thingward_models::profile::SecurityProfile;
use thingward_models::time::EpochMillis;
use thingward_models::{Datapoint, Metric};
use thingward_scorer::{
    CompiledModel, CompiledProfile, FleetChange, FleetPhase, ModelSet, Scorer, Transition,
};
use thingward_trainer::{DeviceSeries, FitParams, FitValidParams, ModelIdentity, TrainingData};

/// The evaluation profile's name.
const PROFILE: &str = "ml";

/// ML Detect with one behavior per ML metric, evaluated at every confidence level.
pub(crate) struct MlDetector {
    params: FitValidParams,
    series: HashMap<Metric, HashMap<String, DeviceSeries>>,
    models: ModelSet,
    /// Per level: the profile whose behaviors alarm at that level, and its own alarm state.
    levels: Vec<(CompiledProfile, Scorer)>,
    transitions: Vec<Transition>,
    changes: Vec<FleetChange>,
    /// Per level: fleet events and released alarms not yet drained.
    notes: Vec<Vec<Note>>,
}

impl MlDetector {
    /// A detector fitting with `params`.
    ///
    /// # Errors
    /// Invalid parameters.
    pub(crate) fn new(params: FitParams) -> Result<Self, FitError> {
        Ok(Self {
            params: params.check().map_err(FitError::MlParams)?,
            series: HashMap::new(),
            models: ModelSet::default(),
            levels: Vec::new(),
            transitions: Vec::new(),
            changes: Vec::new(),
            notes: Vec::new(),
        })
    }
}

fn profile_at(level: &str, metrics: &[Metric]) -> Result<CompiledProfile, FitError> {
    let behaviors: Vec<serde_json::Value> = metrics
        .iter()
        .map(|m| {
            serde_json::json!({
                "name": m.as_str(),
                "metric": m.as_str(),
                "criteria": { "mlDetectionConfig": { "confidenceLevel": level } },
            })
        })
        .collect();
    let profile: SecurityProfile = serde_json::from_value(serde_json::json!({
        "securityProfileName": PROFILE,
        "securityProfileArn": format!("arn:aws:iot:eval:000000000000:securityprofile/{PROFILE}"),
        "version": 1,
        "creationDate": 0,
        "lastModifiedDate": 0,
        "behaviors": behaviors,
    }))
    .map_err(FitError::Profile)?;
    Ok(CompiledProfile::compile(&profile, &NoRegistry)?)
}

impl Detector for MlDetector {
    fn name(&self) -> String {
        "ml".into()
    }

    fn levels(&self) -> Vec<Level> {
        let budget = self.params.params().budget;
        // Once trained, the per-datapoint equivalent the models derived (mean over metrics).
        let per_datapoint = |l: usize| {
            let n = self.models.len();
            (n > 0).then(|| {
                // Summed in a fixed order: the set's iteration order is not.
                let mut t: Vec<f64> = self.models.iter().map(|m| m.model().targets.0[l]).collect();
                t.sort_by(f64::total_cmp);
                t.iter().sum::<f64>() / n as f64
            })
        };
        LEVELS
            .iter()
            .enumerate()
            .map(|(i, &l)| Level {
                name: format!("{l:?}").to_uppercase(),
                target_fpr: per_datapoint(i),
                budget: Some(budget.profile[i]),
            })
            .collect()
    }

    fn learn(&mut self, dp: &Datapoint, x: f64) {
        let s = self
            .series
            .entry(dp.metric.clone())
            .or_default()
            .entry(dp.thing.as_str().to_owned())
            .or_insert_with(|| DeviceSeries {
                thing: dp.thing.as_str().to_owned(),
                ..DeviceSeries::default()
            });
        s.timestamps.push(dp.timestamp);
        s.values.push(x);
    }

    fn train(&mut self, _: &TrainingSet, span: Span) -> Result<(), FitError> {
        let mut jobs: Vec<(Metric, TrainingData)> = std::mem::take(&mut self.series)
            .into_iter()
            .map(|(metric, devices)| {
                let mut devices: Vec<DeviceSeries> = devices.into_values().collect();
                devices.sort_by(|a, b| a.thing.cmp(&b.thing));
                let data = TrainingData {
                    window_start: span.start,
                    window_end: span.end,
                    devices,
                    excluded: 0,
                };
                (metric, data)
            })
            .collect();
        jobs.sort_by(|a, b| a.0.cmp(&b.0));
        let metrics: Vec<Metric> = jobs.iter().map(|(m, _)| m.clone()).collect();
        let workers = std::thread::available_parallelism().map_or(1, usize::from);
        // The profile's budget is shared by its ML behaviors, one per metric.
        let mut shared = self.params.params().clone();
        shared.budget = AlarmBudget::shared(shared.budget.profile, metrics.len() as u32);
        self.params = shared.check().map_err(FitError::MlParams)?;
        let params = &self.params;
        let fitted: Vec<Result<CompiledModel, FitError>> = std::thread::scope(|scope| {
            let chunks: Vec<_> = jobs
                .chunks(jobs.len().div_ceil(workers).max(1))
                .map(|chunk| {
                    scope.spawn(move || {
                        chunk
                            .iter()
                            .map(|(metric, data)| {
                                let identity = ModelIdentity {
                                    profile: PROFILE.into(),
                                    behavior: metric.as_str().into(),
                                    metric: metric.as_str().into(),
                                    version: 1,
                                    trained_at: span.end,
                                };
                                let model = thingward_trainer::fit(params, &identity, data)
                                    .map_err(|source| FitError::MlFit {
                                        metric: metric.as_str().to_owned(),
                                        source,
                                    })?;
                                Ok(CompiledModel::new(model)?)
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            chunks
                .into_iter()
                .flat_map(|h| {
                    h.join()
                        .unwrap_or_else(|_| vec![Err(FitError::TrainingPanicked)])
                })
                .collect()
        });
        for model in fitted {
            self.models.insert(Arc::new(model?));
        }
        self.levels = self
            .levels()
            .iter()
            .map(|l| Ok((profile_at(&l.name, &metrics)?, Scorer::new())))
            .collect::<Result<_, FitError>>()?;
        self.notes = vec![Vec::new(); self.levels.len()];
        Ok(())
    }

    fn observe(&mut self, dp: &Datapoint, out: &mut [Verdict]) {
        for (((profile, scorer), verdict), notes) in self
            .levels
            .iter_mut()
            .zip(out.iter_mut())
            .zip(self.notes.iter_mut())
        {
            self.transitions.clear();
            scorer.observe_ml(profile, &self.models, dp, &mut self.transitions);
            *verdict = Verdict::of_transitions(&self.transitions);
            scorer.drain_fleet_changes(&mut self.changes);
            for change in self.changes.drain(..) {
                notes.extend(notes_of(&change, dp.timestamp));
            }
        }
    }

    fn drain_notes(&mut self, level: usize, out: &mut Vec<Note>) {
        if let Some(notes) = self.notes.get_mut(level) {
            out.append(notes);
        }
    }

    fn upper_bound(
        &self,
        thing: &str,
        metric: &Metric,
        at: EpochMillis,
        level: usize,
    ) -> Option<f64> {
        let model = self.models.get(PROFILE, metric.as_str())?;
        Some(model.expected_range(thing, at).1[level.min(2)])
    }
}

/// What the evaluation needs of a fleet change: the event when it opened or ended, and the
/// alarms it released (behaviors are named after their metric here).
fn notes_of(change: &FleetChange, at: EpochMillis) -> Vec<Note> {
    let e = change.event();
    let mut notes = Vec::new();
    let released = match change {
        FleetChange::Closed { released, .. }
        | FleetChange::Dissolved { released, .. }
        | FleetChange::Released { released, .. } => released.as_slice(),
        _ => &[],
    };
    for r in released {
        if let Ok(metric) = r.behavior.parse::<Metric>() {
            notes.push(Note::Released {
                thing: r.thing.as_str().to_owned(),
                metric,
                at,
            });
        }
    }
    if matches!(
        change,
        FleetChange::Opened(_) | FleetChange::Closed { .. } | FleetChange::Dissolved { .. }
    ) {
        notes.push(Note::FleetEvent(FleetNote {
            id: e.id,
            opened: e.phase != FleetPhase::Dissolved,
            start: e.start,
            end: e.end,
            metrics: e
                .behaviors
                .iter()
                .filter_map(|b| b.metric.parse().ok())
                .collect(),
            peak_share: e.behaviors.iter().map(|b| b.peak_share).fold(0.0, f64::max),
            explained: e.explained_alarms,
        }));
    }
    notes
}
