//! ML Detect in the service: the models index kept in step with the profiles, the artifacts
//! that serve, the start-up load, and the training job the nightly scheduler, the operator
//! endpoint and `thingward train` all run.
//!
//! One run, per (security profile, ML behavior) of the index:
//! 1. count the metric's datapoints of the profile's target things in the trailing 14 days
//!    (and, until it is known, find the behavior's first datapoint ever);
//! 2. let the lifecycle ([`thingward_trainer::lifecycle`]) decide: keep collecting, record a
//!    short window as a failed attempt, or build;
//! 3. to build: read the window without the behavior's own alarms and the true positives of
//!    the same metric, fit, encode, write `v{N}.twm` atomically, read it back and install it in
//!    [`LiveModels`] (scoring switches to it on its next batch), then record the new state.
//!
//! The history's WAL is rolled into Parquet first, so the window holds everything ingested.
//! Runs are serialised; each is blocking work for `spawn_blocking` or a CLI thread.

mod artifacts;
pub(crate) mod schedule;

pub(crate) use artifacts::Artifacts;
pub(crate) use schedule::TrainAt;

use crate::clock::Clock;
use crate::targeting::Targeting;
use serde::Serialize;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use thingward_history::History;
use thingward_models::Metric;
use thingward_models::codec;
use thingward_models::ml::AlarmBudget;
use thingward_models::profile::SecurityProfile;
use thingward_models::time::{EpochMillis, millis_to_seconds};
use thingward_scorer::{CompiledModel, LiveModels};
use thingward_store::{ModelEntry, Store, StoreError};
use thingward_trainer::lifecycle::{self, Attempt, ModelStatus, Plan};
use thingward_trainer::window::{self, Exclusions};
use thingward_trainer::{FitValidParams, ModelIdentity, TrainingData};

/// The fit parameters the service trains with (the trainer's defaults, checked).
///
/// # Errors
/// The defaults do not pass their own check (a bug).
pub(crate) fn default_fit_params() -> anyhow::Result<FitValidParams> {
    use anyhow::Context as _;
    thingward_trainer::FitParams::default()
        .check()
        .context("The trainer's default fit parameters are invalid")
}

/// Why a training run could not run at all (a behavior's own failure is in its
/// [`BehaviorRun`], not here).
#[derive(Debug, thiserror::Error)]
pub(crate) enum TrainingError {
    /// The metadata store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Rolling the WAL into Parquet failed.
    #[error("rolling the history before training: {0}")]
    History(#[from] thingward_history::Error),
    /// A previous panic poisoned the run lock.
    #[error("the training run lock is poisoned by an earlier panic")]
    Poisoned,
}

/// The models that serve, and their files.
#[derive(Debug)]
pub(crate) struct Models {
    live: Arc<LiveModels>,
    artifacts: Artifacts,
}

impl Models {
    /// No model serving yet; artifacts under `{data_dir}/models`.
    pub(crate) fn new(data_dir: &Path) -> Self {
        Self {
            live: Arc::new(LiveModels::new()),
            artifacts: Artifacts::new(data_dir.join("models")),
        }
    }

    /// The models in service.
    pub(crate) fn live(&self) -> &Arc<LiveModels> {
        &self.live
    }

    /// Brings the index in line with the ML behaviors of `profiles`; the models and artifacts
    /// of behaviors that are gone (or watch another metric now) are dropped.
    ///
    /// # Errors
    /// Store failures.
    pub(crate) fn sync(
        &self,
        store: &dyn Store,
        profiles: &[&SecurityProfile],
        now: EpochMillis,
    ) -> Result<(), StoreError> {
        let behaviors: Vec<(String, String, String)> = profiles
            .iter()
            .flat_map(|p| {
                p.behaviors.iter().filter_map(|b| {
                    let metric = b.metric.as_ref()?;
                    b.confidence_level()?;
                    Some((
                        p.security_profile_name.clone(),
                        b.name.clone(),
                        metric.as_str().to_owned(),
                    ))
                })
            })
            .collect();
        for (profile, behavior) in store.models_sync(&behaviors, now)? {
            self.forget(&profile, &behavior);
        }
        Ok(())
    }

    /// Stops serving (`profile`, `behavior`) and deletes its artifacts.
    pub(crate) fn forget(&self, profile: &str, behavior: &str) {
        self.stop_serving(profile, behavior);
        if let Err(error) = self.artifacts.remove_behavior(profile, behavior) {
            tracing::warn!(%error, profile, behavior, "Cannot delete the artifacts of a removed behavior");
        } else {
            tracing::info!(profile, behavior, "Dropped the model of a removed behavior");
        }
    }

    /// Stops serving (`profile`, `behavior`), keeping its files.
    fn stop_serving(&self, profile: &str, behavior: &str) {
        let snapshot = self.live.snapshot();
        let keep: Vec<&str> = snapshot
            .iter()
            .map(|m| m.model())
            .filter(|m| m.profile == profile && m.behavior != behavior)
            .map(|m| m.behavior.as_str())
            .collect();
        self.live.retain_profile(profile, &keep);
    }

    /// Reads and checks one artifact of (`profile`, `behavior`).
    fn compile(
        &self,
        profile: &str,
        behavior: &str,
        version: u64,
    ) -> Result<CompiledModel, String> {
        let bytes = self
            .artifacts
            .read(profile, behavior, version)
            .map_err(|e| e.to_string())?;
        let model = CompiledModel::from_artifact(&bytes).map_err(|e| e.to_string())?;
        let m = model.model();
        if m.profile != profile || m.behavior != behavior || m.version != version {
            return Err(format!(
                "the file holds '{}'/'{}' v{}",
                m.profile, m.behavior, m.version
            ));
        }
        Ok(model)
    }

    /// At start-up: installs the newest artifact of every ACTIVE behavior. A corrupt or
    /// unreadable artifact is logged at ERROR and the previous version is tried. Returns how
    /// many models serve.
    ///
    /// # Errors
    /// Store failures.
    pub(crate) fn load(&self, store: &dyn Store) -> Result<usize, StoreError> {
        let mut loaded = 0;
        for entry in store.models_all(None)? {
            if !lifecycle::serves(&entry.state) {
                continue;
            }
            let (profile, behavior) = (entry.profile.as_str(), entry.behavior.as_str());
            let versions = match self.artifacts.versions(profile, behavior) {
                Ok(v) => v,
                Err(error) => {
                    tracing::error!(%error, profile, behavior, "Cannot list the model artifacts; the behavior is not scored until its next build");
                    continue;
                }
            };
            let mut served = None;
            for version in versions.into_iter().filter(|&v| v <= entry.state.version) {
                match self.compile(profile, behavior, version) {
                    Ok(model) => {
                        served = Some(version);
                        self.live.install(Arc::new(model));
                        break;
                    }
                    Err(error) => {
                        tracing::error!(%error, profile, behavior, version, "Refused a model artifact; trying the previous version")
                    }
                }
            }
            match served {
                Some(version) => {
                    loaded += 1;
                    tracing::info!(
                        profile,
                        behavior,
                        version,
                        latest = entry.state.version,
                        "Loaded a model"
                    );
                }
                None => tracing::error!(
                    profile,
                    behavior,
                    "No usable model artifact; the behavior is not scored until its next build"
                ),
            }
        }
        Ok(loaded)
    }
}

/// What a run did to one behavior.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Outcome {
    /// A new model was built and serves.
    Built,
    /// Still in the 14-day collection period.
    Collecting,
    /// Too few datapoints in the window (a failed attempt).
    Short,
    /// Reading, fitting or writing failed (a failed attempt).
    Failed,
    /// Expired: nothing done.
    Retired,
}

/// One behavior's line of a [`RunReport`].
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct BehaviorRun {
    pub(crate) security_profile_name: String,
    pub(crate) behavior_name: String,
    pub(crate) outcome: Outcome,
    pub(crate) model_status: &'static str,
    /// The version now serving (None: no model).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) model_version: Option<u64>,
    /// Datapoints of the target things in the trailing window.
    pub(crate) datapoints: u64,
    pub(crate) datapoints_collection_percentage: f64,
    /// Devices and datapoints the new model was fitted on, datapoints left out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) devices: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) excluded_datapoints: Option<u64>,
    /// Why the attempt failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) message: Option<String>,
    pub(crate) seconds: f64,
}

/// What one run did.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RunReport {
    /// The run's time (epoch seconds) by the service clock: the window's end.
    pub(crate) as_of: f64,
    pub(crate) behaviors: Vec<BehaviorRun>,
}

/// Which behaviors a run looks at.
#[derive(Debug, Clone, Default)]
pub(crate) struct RunScope {
    /// Only this profile's.
    pub(crate) profile: Option<String>,
    /// Only those not yet looked at since the last scheduled time (the nightly run).
    pub(crate) due_at: Option<TrainAt>,
}

/// Told about progress: the number of behaviors first, then each one as it finishes.
pub(crate) trait Progress {
    /// `n` behaviors will be looked at.
    fn start(&self, n: usize);
    /// One finished.
    fn done(&self, run: &BehaviorRun);
}

/// No progress reporting.
#[derive(Debug)]
pub(crate) struct Quiet;

impl Progress for Quiet {
    fn start(&self, _: usize) {}
    fn done(&self, _: &BehaviorRun) {}
}

/// The training job over one data directory.
pub(crate) struct Training {
    store: Arc<dyn Store>,
    history: Arc<History>,
    models: Arc<Models>,
    clock: Clock,
    params: FitValidParams,
    run_lock: Mutex<()>,
}

impl std::fmt::Debug for Training {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Training").finish_non_exhaustive()
    }
}

impl Training {
    pub(crate) fn new(
        store: Arc<dyn Store>,
        history: Arc<History>,
        models: Arc<Models>,
        clock: Clock,
        params: FitValidParams,
    ) -> Self {
        Self {
            store,
            history,
            models,
            clock,
            params,
            run_lock: Mutex::new(()),
        }
    }

    /// The models in service.
    pub(crate) fn live(&self) -> &Arc<LiveModels> {
        self.models.live()
    }

    /// Runs training for the behaviors in `scope` (blocking; one run at a time).
    ///
    /// # Errors
    /// Rolling the history or the store failed; a behavior's own failure is reported in its
    /// line and recorded in the index.
    pub(crate) fn run(
        &self,
        scope: &RunScope,
        progress: &dyn Progress,
    ) -> Result<RunReport, TrainingError> {
        let _running = self.run_lock.lock().map_err(|_| TrainingError::Poisoned)?;
        let now = (self.clock)();
        let slot = scope.due_at.map(|at| at.last_slot(now));
        let entries: Vec<ModelEntry> = self
            .store
            .models_all(scope.profile.as_deref())?
            .into_iter()
            .filter(|e| slot.is_none_or(|slot| e.last_attempt.unwrap_or(e.created) < slot))
            .collect();
        let mut report = RunReport {
            as_of: millis_to_seconds(now),
            behaviors: Vec::with_capacity(entries.len()),
        };
        if entries.is_empty() {
            return Ok(report);
        }
        progress.start(entries.len());
        self.history.roll()?;
        let targeting = Targeting::load(&*self.store)?;
        for entry in entries {
            let run = self.behavior(entry, &targeting, now)?;
            progress.done(&run);
            report.behaviors.push(run);
        }
        Ok(report)
    }

    /// One behavior of a run.
    fn behavior(
        &self,
        mut entry: ModelEntry,
        targeting: &Targeting,
        now: EpochMillis,
    ) -> Result<BehaviorRun, TrainingError> {
        let started = Instant::now();
        let partitions = self.history.partitions_dir();
        let profile = entry.profile.clone();
        let targeted = |thing: &str| targeting.profiles_for(thing).contains(&profile);
        let mut run = BehaviorRun {
            security_profile_name: entry.profile.clone(),
            behavior_name: entry.behavior.clone(),
            outcome: Outcome::Failed,
            model_status: entry.state.status.as_str(),
            model_version: None,
            datapoints: entry.datapoints,
            datapoints_collection_percentage: lifecycle::collection_percentage(entry.datapoints),
            devices: None,
            excluded_datapoints: None,
            message: None,
            seconds: 0.0,
        };
        let metric: Metric = match entry.metric.parse() {
            Ok(m) => m,
            Err(e) => {
                run.message = Some(format!("the behavior's metric: {e}"));
                return Ok(run);
            }
        };
        let (start, end) = (now - lifecycle::WINDOW_MS, now);
        // One scan of the window serves the gate and, when it opens, the fit.
        let read = self
            .exclusions(&entry, &metric, now)
            .and_then(|exclusions| {
                let data = window::read_window_where(
                    &partitions,
                    &metric,
                    &targeted,
                    start,
                    end,
                    &exclusions,
                )
                .map_err(|e| e.to_string())?;
                let first = match entry.state.collection_start {
                    Some(_) => None,
                    None => window::count_window(
                        &partitions,
                        &metric,
                        thingward_history::MIN_TIMESTAMP,
                        end,
                    )
                    .map_err(|e| e.to_string())?
                    .first(targeted),
                };
                Ok((data, first))
            });
        let (data, first) = match read {
            Ok(c) => c,
            Err(e) => {
                // The history could not be read: not the behavior's fault, not an attempt.
                tracing::warn!(error = %e, profile = %entry.profile, behavior = %entry.behavior, "Cannot read the training window");
                run.message = Some(e);
                return Ok(run);
            }
        };
        let datapoints = data.datapoints() + data.excluded;
        let (plan, state) = lifecycle::plan(&entry.state, now, first, datapoints);
        entry.state = state;
        entry.datapoints = datapoints;
        entry.last_attempt = Some(now);
        run.datapoints = datapoints;
        run.datapoints_collection_percentage = lifecycle::collection_percentage(datapoints);
        match plan {
            Plan::Retired => run.outcome = Outcome::Retired,
            Plan::Collecting => run.outcome = Outcome::Collecting,
            Plan::Short => {
                run.outcome = Outcome::Short;
                let message = format!(
                    "{datapoints} datapoints in the trailing 14 days; {} needed",
                    lifecycle::MIN_DATAPOINTS
                );
                self.failed(&mut entry, now, message, &mut run);
            }
            Plan::Build { version } => {
                let version = self
                    .models
                    .artifacts
                    .versions(&entry.profile, &entry.behavior)
                    .ok()
                    .and_then(|v| v.first().copied())
                    .map_or(version, |newest| version.max(newest + 1));
                match self.build(&entry, &metric, version, &data, now) {
                    Ok((model, artifact)) => {
                        entry.state =
                            lifecycle::after_attempt(&entry.state, now, Attempt::Built { version });
                        entry.artifact = Some(artifact);
                        entry.expected = Some(model.model().expected);
                        entry.last_error = None;
                        run.outcome = Outcome::Built;
                        run.devices = Some(model.model().devices.len());
                        run.excluded_datapoints = Some(model.model().excluded_datapoints);
                        self.models.live.install(Arc::new(model));
                        if let Err(error) =
                            self.models.artifacts.prune(&entry.profile, &entry.behavior)
                        {
                            tracing::warn!(%error, "Cannot prune old model artifacts");
                        }
                        tracing::info!(profile = %entry.profile, behavior = %entry.behavior, version, datapoints, "Installed a new model");
                    }
                    Err(message) => {
                        run.outcome = Outcome::Failed;
                        self.failed(&mut entry, now, message, &mut run);
                    }
                }
            }
        }
        if !self.store.model_update(&entry)? {
            // The behavior was removed while it trained: drop what was just installed.
            self.models.forget(&entry.profile, &entry.behavior);
        }
        run.model_status = entry.state.status.as_str();
        run.model_version = self
            .live()
            .snapshot()
            .get(&entry.profile, &entry.behavior)
            .map(|m| m.version());
        run.seconds = started.elapsed().as_secs_f64();
        Ok(run)
    }

    /// Records a failed attempt; an expired behavior stops serving.
    fn failed(
        &self,
        entry: &mut ModelEntry,
        now: EpochMillis,
        message: String,
        run: &mut BehaviorRun,
    ) {
        entry.state = lifecycle::after_attempt(&entry.state, now, Attempt::Failed);
        if entry.state.status == ModelStatus::Expired {
            tracing::warn!(profile = %entry.profile, behavior = %entry.behavior, %message, "The model expired after 30 days of failed builds; the behavior is no longer scored");
            self.models.stop_serving(&entry.profile, &entry.behavior);
        } else {
            tracing::info!(profile = %entry.profile, behavior = %entry.behavior, %message, retries = entry.state.retries, "Model build failed; retrying at the next nightly run");
        }
        entry.last_error = Some(message.clone());
        run.message = Some(message);
    }

    /// What training leaves out: the behavior's own alarms and the verified true positives of
    /// its metric.
    fn exclusions(
        &self,
        entry: &ModelEntry,
        metric: &Metric,
        now: EpochMillis,
    ) -> Result<Exclusions, String> {
        let mut exclusions = Exclusions::new();
        let intervals = self
            .store
            .violation_intervals(&entry.profile, &entry.behavior, metric.as_str(), now)
            .map_err(|e| format!("reading the violations to exclude: {e}"))?;
        for i in intervals {
            exclusions.add(&i.thing, i.start, i.end);
        }
        Ok(exclusions)
    }

    /// Fits the window read, writes the artifact and reads it back.
    fn build(
        &self,
        entry: &ModelEntry,
        metric: &Metric,
        version: u64,
        data: &TrainingData,
        now: EpochMillis,
    ) -> Result<(CompiledModel, String), String> {
        let identity = ModelIdentity {
            profile: entry.profile.clone(),
            behavior: entry.behavior.clone(),
            metric: metric.as_str().to_owned(),
            version,
            trained_at: now,
        };
        // The profile's alarm budget is shared by its ML behaviors (one index row each).
        let behaviors = self
            .store
            .models_all(Some(&entry.profile))
            .map_err(|e| format!("reading the models index: {e}"))?
            .len();
        let mut params = self.params.params().clone();
        params.budget = AlarmBudget::shared(params.budget.profile, behaviors.max(1) as u32);
        let params = params
            .check()
            .map_err(|e| format!("the fit parameters: {e}"))?;
        let model = thingward_trainer::fit(&params, &identity, data)
            .map_err(|e| format!("fitting: {e}"))?;
        let bytes = codec::encode(&model).map_err(|e| format!("encoding: {e}"))?;
        let artifact = self
            .models
            .artifacts
            .write(&entry.profile, &entry.behavior, version, &bytes)
            .map_err(|e| e.to_string())?;
        // What serves is what is on disk: read back and checked like at start-up.
        let compiled = self
            .models
            .compile(&entry.profile, &entry.behavior, version)
            .map_err(|e| format!("the written artifact is refused: {e}"))?;
        Ok((compiled, artifact))
    }
}
