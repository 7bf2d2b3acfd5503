//! Detect: the running Detect engine (rules and ML). It owns the scorer's state, resolves which
//! security profiles apply to a thing, writes accepted datapoints to the history and records
//! alarm transitions as violations. ML behaviors are judged against the models in service
//! ([`crate::training::Models`]): one lock-free snapshot per batch, so a model installed by the
//! nightly run takes over from the next batch on.
//!
//! Data flow for one batch: decode and validate (outside the lock, against a snapshot of the
//! registry; decoded again under the lock in the rare case the registry changed meanwhile) →
//! resolve profiles → score (rules, ML models, alarm state) → append to the history WAL (group commit) →
//! queue violation changes for SQLite → wait for the WAL fsync and the SQLite commit →
//! acknowledge. Scoring, the WAL append and queueing the violation changes happen under one lock
//! so that the WAL and SQLite see changes in scoring order; decoding, both commits (each a group
//! commit shared by concurrent batches) and the waits happen outside it.

mod fleet;
pub(crate) mod maintenance;
mod registry_view;
mod violations;

pub(crate) use registry_view::RegistryView;

use crate::clock::Clock;
use crate::targeting::Targeting;
use crate::training::Models;
use maintenance::MaintenanceIndex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use thingward_history::History;
use thingward_ingest::counters::{Counters, ReportIds};
use thingward_ingest::report::{self, Format, ReportError};
use thingward_models::profile::SecurityProfile;
use thingward_models::time::EpochMillis;
use thingward_models::violation::ViolationEventType;
use thingward_models::{Datapoint, ThingName};
use thingward_scorer::{
    Cause, Change, CompiledProfile, FleetChange, FleetParams, Scorer, ScorerParams, Transition,
};
use thingward_store::{DetectChange, Hold, Store, StoreError, ViolationChange, ViolationRecord};
use violations::{ViolationWriter, WriterGone};

/// A thing silent this long has its alarms invalidated (AWS: 2 days).
pub(crate) const SILENCE_INVALIDATES_MS: i64 = 2 * 24 * 3600 * 1000;

/// Why an ingest or reload failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DetectError {
    /// The metadata store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The history (WAL) failed: nothing was acknowledged.
    #[error("history: {0}")]
    History(#[from] thingward_history::Error),
    /// A stored profile no longer compiles (a custom metric it used was removed behind its back).
    #[error("profile '{profile}' does not compile: {source}")]
    Compile {
        /// The profile.
        profile: String,
        /// Why.
        source: thingward_scorer::Error,
    },
    /// The committer went away before confirming durability (shutting down).
    #[error("history committer stopped before the write was confirmed")]
    CommitterGone,
    /// Recording violation changes in SQLite failed (the whole group of batches is refused).
    #[error("recording violations: {0}")]
    Violations(Arc<StoreError>),
    /// The violation writer thread is gone.
    #[error(transparent)]
    ViolationWriter(#[from] WriterGone),
    /// A background thread could not be started.
    #[error("cannot start a thread: {0}")]
    Thread(#[source] std::io::Error),
    /// The state mutex was poisoned by a panic.
    #[error("detect state poisoned by an earlier panic")]
    Poisoned,
}

struct Profile {
    compiled: Arc<CompiledProfile>,
    definition: SecurityProfile,
}

struct Inner {
    scorer: Scorer,
    view: Arc<RegistryView>,
    profiles: HashMap<String, Profile>,
    targeting: Targeting,
    thing_profiles: HashMap<ThingName, Arc<[Arc<CompiledProfile>]>>,
    report_ids: ReportIds,
    counters: Counters,
    /// The maintenance windows that have not ended (empty: scoring asks nothing).
    maintenance: MaintenanceIndex,
    /// The window of each alarm raised inside one, until it ends (its clear names it too).
    window_holds: HashMap<AlarmKey, Arc<str>>,
}

/// (thing, profile, behavior) of an alarm.
type AlarmKey = (String, Arc<str>, Arc<str>);

/// The Detect engine.
pub(crate) struct Detect {
    store: Arc<dyn Store>,
    history: Arc<History>,
    /// The ML models in service and their files.
    models: Arc<Models>,
    /// Commits violation changes off the engine lock, in scoring order.
    violations: ViolationWriter,
    inner: Mutex<Inner>,
    /// The registry snapshot of `inner.view`, readable without the engine lock (decoding).
    current_view: Mutex<Arc<RegistryView>>,
    clock: Clock,
    stages: StageCounters,
}

/// Cumulative time spent in each stage of ingestion, summed over all batches and reports.
/// Measured per batch (two clock reads per stage), never per datapoint; `thingward bench`
/// prints them to show where the time goes.
#[derive(Debug, Default)]
struct StageCounters {
    batches: AtomicU64,
    decode_ns: AtomicU64,
    lock_wait_ns: AtomicU64,
    score_ns: AtomicU64,
    wal_append_ns: AtomicU64,
    violations_ns: AtomicU64,
    durable_wait_ns: AtomicU64,
}

/// A snapshot of [`StageCounters`]: total time per stage since start.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct StageTimes {
    /// Batches and reports ingested (accepted or not, once past decoding).
    pub(crate) batches: u64,
    /// Decoding and validating bodies (JSON/CBOR → datapoints).
    pub(crate) decode: Duration,
    /// Waiting for the engine lock.
    pub(crate) lock_wait: Duration,
    /// Targeting and scoring (under the lock).
    pub(crate) score: Duration,
    /// Encoding the WAL record and queueing it for the committer (under the lock).
    pub(crate) wal_append: Duration,
    /// Turning transitions into violation records and queueing them for SQLite (under the lock).
    pub(crate) violations: Duration,
    /// Waiting, after the lock is released, for the WAL fsync and the SQLite commit.
    pub(crate) durable_wait: Duration,
}

impl StageCounters {
    fn add(counter: &AtomicU64, since: Instant) -> Instant {
        let now = Instant::now();
        let ns = u64::try_from(now.duration_since(since).as_nanos()).unwrap_or(u64::MAX);
        counter.fetch_add(ns, Ordering::Relaxed);
        now
    }

    fn snapshot(&self) -> StageTimes {
        let d = |c: &AtomicU64| Duration::from_nanos(c.load(Ordering::Relaxed));
        StageTimes {
            batches: self.batches.load(Ordering::Relaxed),
            decode: d(&self.decode_ns),
            lock_wait: d(&self.lock_wait_ns),
            score: d(&self.score_ns),
            wal_append: d(&self.wal_append_ns),
            violations: d(&self.violations_ns),
            durable_wait: d(&self.durable_wait_ns),
        }
    }
}

impl std::fmt::Debug for Detect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Detect").finish_non_exhaustive()
    }
}

/// Resolves once a batch's violation changes are committed.
type Committed = tokio::sync::oneshot::Receiver<Result<(), Arc<StoreError>>>;

/// What an accepted batch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct IngestOutcome {
    /// Datapoints written to the history.
    pub(crate) datapoints: usize,
    /// Violation events recorded (in-alarm, alarm-cleared).
    pub(crate) violation_events: usize,
}

impl Detect {
    /// Builds the engine from the store, restoring the alarms that were active at shutdown.
    ///
    /// # Errors
    /// Store failures.
    pub(crate) fn open(
        store: Arc<dyn Store>,
        history: Arc<History>,
        models: Arc<Models>,
        clock: Clock,
    ) -> Result<Self, DetectError> {
        // Fleet event and incident ids count up from the start time in seconds × 2³², so they
        // never repeat across restarts (a restart a second later starts 2³² ids further).
        let start_secs = u64::try_from(clock() / 1000).unwrap_or(0);
        let inner = Inner {
            scorer: Scorer::with_params(ScorerParams {
                fleet: FleetParams::default(),
                id_seed: start_secs << 32,
            }),
            maintenance: MaintenanceIndex::default(),
            window_holds: HashMap::new(),
            view: Arc::new(RegistryView::default()),
            profiles: HashMap::new(),
            targeting: Targeting::default(),
            thing_profiles: HashMap::new(),
            report_ids: ReportIds::default(),
            counters: Counters::default(),
        };
        let detect = Self {
            violations: ViolationWriter::start(Arc::clone(&store)).map_err(DetectError::Thread)?,
            store,
            history,
            models,
            inner: Mutex::new(inner),
            current_view: Mutex::new(Arc::new(RegistryView::default())),
            clock,
            stages: StageCounters::default(),
        };
        // The scorer that tracked a previous run's live fleet events is gone: end them.
        let ended = detect.store.fleet_events_end_stale(detect.now())?;
        if ended > 0 {
            tracing::warn!(
                fleet_events = ended,
                "Fleet events live at the last shutdown were ended (open: closed; pending: dissolved, their alarms notified)"
            );
        }
        detect.reload()?;
        let mut inner = detect.lock()?;
        for (thing, profile, behavior, last) in detect.store.violations_active_keys()? {
            if let Ok(thing) = ThingName::try_from(thing) {
                inner
                    .scorer
                    .restore_alarm(&thing, &profile, &behavior, last);
            }
        }
        drop(inner);
        Ok(detect)
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Inner>, DetectError> {
        self.inner.lock().map_err(|_| DetectError::Poisoned)
    }

    /// Total time spent per ingestion stage since the engine opened.
    pub(crate) fn stage_times(&self) -> StageTimes {
        self.stages.snapshot()
    }

    /// The current time by the engine's clock.
    pub(crate) fn now(&self) -> EpochMillis {
        (self.clock)()
    }

    /// A snapshot of the custom-metric and dimension registry, for validation.
    ///
    /// # Errors
    /// A poisoned state.
    pub(crate) fn view(&self) -> Result<Arc<RegistryView>, DetectError> {
        let view = self
            .current_view
            .lock()
            .map_err(|_| DetectError::Poisoned)?;
        Ok(Arc::clone(&view))
    }

    /// Re-reads profiles, attachments and the registry after a change through the API, and
    /// invalidates the alarms that no longer mean anything (behavior or profile removed, thing
    /// no longer targeted).
    ///
    /// # Errors
    /// Store failures, or a stored profile that no longer compiles.
    pub(crate) fn reload(&self) -> Result<(), DetectError> {
        let view = Arc::new(RegistryView::load(&*self.store)?);
        let mut profiles = HashMap::new();
        for definition in self.store.profiles_all()? {
            let compiled =
                CompiledProfile::compile(&definition, view.as_ref()).map_err(|source| {
                    DetectError::Compile {
                        profile: definition.security_profile_name.clone(),
                        source,
                    }
                })?;
            profiles.insert(
                definition.security_profile_name.clone(),
                Profile {
                    compiled: Arc::new(compiled),
                    definition,
                },
            );
        }
        let targeting = Targeting::load(&*self.store)?;
        let now = self.now();
        let maintenance = MaintenanceIndex::load(&*self.store, now)?;
        let definitions: Vec<&SecurityProfile> = profiles.values().map(|p| &p.definition).collect();
        self.models.sync(&*self.store, &definitions, now)?;
        let mut guard = self.lock()?;
        let inner = &mut *guard;
        let mut transitions = Vec::new();
        for (name, old) in &inner.profiles {
            let keep: Vec<&str> = match profiles.get(name) {
                Some(new) => old
                    .definition
                    .behaviors
                    .iter()
                    .filter(|b| new.definition.behaviors.contains(b))
                    .map(|b| b.name.as_str())
                    .collect(),
                None => Vec::new(),
            };
            inner
                .scorer
                .invalidate_profile(name, &keep, now, &mut transitions);
        }
        for (thing, profile, _, _) in self.store.violations_active_keys()? {
            if !profiles.contains_key(&profile) {
                continue;
            }
            if let Ok(thing) = ThingName::try_from(thing)
                && !targeting
                    .profiles_for(thing.as_str())
                    .iter()
                    .any(|p| p == &profile)
            {
                inner
                    .scorer
                    .invalidate_thing(&thing, &profile, now, &mut transitions);
            }
        }
        // Invalidation records need the behavior as it was: take it from the old profiles.
        let records = records_for(&transitions, &[], &inner.profiles, &mut inner.window_holds);
        inner.profiles = profiles;
        inner.maintenance = maintenance;
        *self
            .current_view
            .lock()
            .map_err(|_| DetectError::Poisoned)? = Arc::clone(&view);
        inner.view = view;
        inner.targeting = targeting;
        inner.thing_profiles.clear();
        // Queued and committed before the lock is released, so that no batch scored under
        // the new configuration is recorded before these.
        let committed = self.violations.apply_blocking(violations_only(records))?;
        drop(guard);
        committed.map_err(DetectError::Violations)
    }

    /// Re-reads the maintenance windows after one was declared or deleted.
    ///
    /// # Errors
    /// Store failures.
    pub(crate) fn reload_maintenance(&self) -> Result<(), DetectError> {
        let maintenance = MaintenanceIndex::load(&*self.store, self.now())?;
        self.lock()?.maintenance = maintenance;
        Ok(())
    }

    /// An operator verified fleet event `id` as TRUE_POSITIVE: the live scorer (if it still
    /// tracks the event) notifies its later alarms, and every violation event the event held
    /// gets its feed row now — queued in scoring order, so a later clear is announced after
    /// the start it follows. Returns whether the running scorer still tracked the event.
    ///
    /// # Errors
    /// Store failures, or the writer is gone.
    pub(crate) fn release_fleet_event(&self, id: u64) -> Result<bool, DetectError> {
        let now = self.now();
        let waiter = {
            let mut inner = self.lock()?;
            let live = inner.scorer.release_fleet_event(id).is_some();
            let waiter = self
                .violations
                .submit_waiter(vec![DetectChange::ReleaseFleetEvent { id, at: now }])?;
            (live, waiter)
        };
        let (live, waiter) = waiter;
        waiter
            .recv()
            .map_err(|_| DetectError::ViolationWriter(WriterGone))?
            .map_err(DetectError::Violations)?;
        Ok(live)
    }

    fn score_and_append(
        &self,
        inner: &mut Inner,
        datapoints: &[Datapoint],
        durable: tokio::sync::oneshot::Sender<Result<(), thingward_history::Error>>,
    ) -> Result<(IngestOutcome, Option<Committed>), DetectError> {
        let started = Instant::now();
        let mut transitions = Vec::new();
        // The maintenance window each transition's datapoint fell in (kept only while some
        // window exists), and the fleet event changes after the transition they follow.
        let mut covering: Vec<Option<Arc<str>>> = Vec::new();
        let mut fleet: Vec<(usize, Vec<FleetChange>)> = Vec::new();
        let mut drained = Vec::new();
        // One snapshot per batch: a model swapped in meanwhile serves from the next batch on.
        let models = self.models.live().snapshot();
        for dp in datapoints {
            let applicable = inner.applicable(&dp.thing);
            for profile in applicable.iter() {
                if profile.watches(&dp.metric) {
                    inner.scorer.observe(profile, dp, &mut transitions);
                }
                if profile.watches_ml(&dp.metric) {
                    // No window: nothing is looked up.
                    let window = if inner.maintenance.is_empty() {
                        None
                    } else {
                        inner
                            .maintenance
                            .covering(
                                &inner.targeting,
                                profile.name(),
                                dp.thing.as_str(),
                                &dp.metric,
                                dp.timestamp,
                            )
                            .cloned()
                    };
                    let from = transitions.len();
                    inner.scorer.observe_ml_covered(
                        profile,
                        &models,
                        dp,
                        window.is_some(),
                        &mut transitions,
                    );
                    if window.is_some() || !covering.is_empty() {
                        covering.resize(from, None);
                        covering.resize(transitions.len(), window);
                    }
                    inner.scorer.drain_fleet_changes(&mut drained);
                    if !drained.is_empty() {
                        fleet.push((transitions.len(), std::mem::take(&mut drained)));
                    }
                }
            }
        }
        covering.resize(transitions.len(), None);
        let scored = StageCounters::add(&self.stages.score_ns, started);
        self.history.append(
            datapoints,
            Box::new(move |result| {
                // The receiver is gone only when the request was dropped; nothing to tell then.
                let _ = durable.send(result);
            }),
        )?;
        let appended = StageCounters::add(&self.stages.wal_append_ns, scored);
        let records = changes_for(
            &transitions,
            &covering,
            fleet,
            &inner.profiles,
            &mut inner.window_holds,
        );
        let violation_events = records
            .iter()
            .filter(|r| {
                matches!(r, DetectChange::Violation(v) if !matches!(v.change, ViolationChange::Touch))
            })
            .count();
        // Queued under the lock so that violation changes reach SQLite in scoring order; the
        // writer commits them off the lock, several batches per transaction.
        let committed = if records.is_empty() {
            None
        } else {
            let (tx, rx) = tokio::sync::oneshot::channel();
            self.violations.submit(
                records,
                Box::new(move |result| {
                    let _ = tx.send(result);
                }),
            )?;
            Some(rx)
        };
        StageCounters::add(&self.stages.violations_ns, appended);
        self.stages.batches.fetch_add(1, Ordering::Relaxed);
        let outcome = IngestOutcome {
            datapoints: datapoints.len(),
            violation_events,
        };
        Ok((outcome, committed))
    }

    /// Waits until a batch handled under the lock is durable: its WAL record fsync'd and its
    /// violation changes (if any) committed.
    async fn wait_durable(
        &self,
        wal: tokio::sync::oneshot::Receiver<Result<(), thingward_history::Error>>,
        committed: Option<Committed>,
    ) -> Result<(), DetectError> {
        let started = Instant::now();
        let wal = wal.await.map_err(|_| DetectError::CommitterGone);
        let violations = match committed {
            Some(rx) => rx
                .await
                .map_err(|_| DetectError::ViolationWriter(WriterGone)),
            None => Ok(Ok(())),
        };
        StageCounters::add(&self.stages.durable_wait_ns, started);
        wal??;
        violations?.map_err(DetectError::Violations)
    }

    /// Parses, validates and ingests one device report for `thing`. Returns the report id on
    /// success; on rejection the report id (when it could be read) and the reason.
    ///
    /// # Errors
    /// A `ReportError` for the device, or a `DetectError` when storage failed.
    pub(crate) async fn ingest_report(
        &self,
        thing: &ThingName,
        bytes: &[u8],
        format: Format,
        max_bytes: usize,
    ) -> Result<Option<i64>, ReportRejection> {
        let started = Instant::now();
        let report = report::parse_report(bytes, format, max_bytes)
            .map_err(|e| ReportRejection::Invalid(e.report_id(), e))?;
        let now = self.now();
        let to_datapoints = |view: &RegistryView| {
            report
                .datapoints(thing, now, view)
                .map_err(|e| ReportRejection::Invalid(Some(report.report_id), e))
        };
        // Decoded outside the engine lock against the current registry snapshot.
        let view = self.view().map_err(ReportRejection::Failed)?;
        let mut datapoints = to_datapoints(&view)?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let (_, committed) = {
            let decoded = StageCounters::add(&self.stages.decode_ns, started);
            let mut inner = self.lock().map_err(ReportRejection::Failed)?;
            let locked = StageCounters::add(&self.stages.lock_wait_ns, decoded);
            if !Arc::ptr_eq(&inner.view, &view) {
                // The registry changed meanwhile: decode against the one scoring uses.
                datapoints = to_datapoints(&Arc::clone(&inner.view))?;
            }
            if !inner.report_ids.check_and_record(thing, report.report_id) {
                return Err(ReportRejection::Invalid(
                    Some(report.report_id),
                    ReportError::duplicate(report.report_id),
                ));
            }
            StageCounters::add(&self.stages.decode_ns, locked);
            self.score_and_append(&mut inner, &datapoints, tx)
                .map_err(ReportRejection::Failed)?
        };
        self.wait_durable(rx, committed)
            .await
            .map_err(ReportRejection::Failed)?;
        Ok(Some(report.report_id))
    }

    /// Parses a cloud-side / custom metrics batch (thingward's batch format) against the current
    /// registry, converting cumulative counters to deltas, then ingests it.
    ///
    /// # Errors
    /// `BatchRejection::Invalid` names the bad datapoint; `Failed` is a storage failure.
    pub(crate) async fn ingest_batch(&self, bytes: &[u8]) -> Result<IngestOutcome, BatchRejection> {
        let started = Instant::now();
        let now = self.now();
        let decode = |view: &RegistryView| {
            thingward_ingest::batch::decode_batch(bytes, now, view).map_err(BatchRejection::Invalid)
        };
        // Decoded and validated outside the engine lock against the current registry snapshot;
        // only the cumulative counters (state) are applied under it.
        let view = self.view().map_err(BatchRejection::Failed)?;
        let mut checked = decode(&view)?;
        let decoded = StageCounters::add(&self.stages.decode_ns, started);
        let (tx, rx) = tokio::sync::oneshot::channel();
        let (outcome, committed) = {
            let mut inner = self.lock().map_err(BatchRejection::Failed)?;
            let locked = StageCounters::add(&self.stages.lock_wait_ns, decoded);
            if !Arc::ptr_eq(&inner.view, &view) {
                // The registry changed meanwhile: decode against the one scoring uses.
                checked = decode(&Arc::clone(&inner.view))?;
            }
            let datapoints = checked.into_datapoints(&mut inner.counters);
            StageCounters::add(&self.stages.decode_ns, locked);
            self.score_and_append(&mut inner, &datapoints, tx)
                .map_err(BatchRejection::Failed)?
        };
        self.wait_durable(rx, committed)
            .await
            .map_err(BatchRejection::Failed)?;
        Ok(outcome)
    }

    /// Invalidates the alarms of things that have been silent for two days.
    ///
    /// # Errors
    /// Store failures.
    pub(crate) fn sweep(&self) -> Result<usize, DetectError> {
        let now = self.now();
        let mut inner = self.lock()?;
        let mut transitions = Vec::new();
        inner
            .scorer
            .invalidate_silent(now, SILENCE_INVALIDATES_MS, &mut transitions);
        let inner = &mut *inner;
        let records = records_for(&transitions, &[], &inner.profiles, &mut inner.window_holds);
        let n = records.len();
        self.violations
            .apply_blocking(violations_only(records))?
            .map_err(DetectError::Violations)?;
        Ok(n)
    }
}

/// Why a device report was not accepted.
#[derive(Debug)]
pub(crate) enum ReportRejection {
    /// The report is invalid: tell the device (with its report id when known).
    Invalid(Option<i64>, ReportError),
    /// thingward could not store it: the device should retry.
    Failed(DetectError),
}

/// Why a batch was not accepted.
#[derive(Debug)]
pub(crate) enum BatchRejection {
    /// The batch is invalid.
    Invalid(thingward_ingest::batch::BatchError),
    /// thingward could not store it.
    Failed(DetectError),
}

impl Inner {
    /// The compiled profiles that apply to `thing`, cached until the next reload.
    fn applicable(&mut self, thing: &ThingName) -> Arc<[Arc<CompiledProfile>]> {
        if let Some(p) = self.thing_profiles.get(thing) {
            return Arc::clone(p);
        }
        let resolved: Arc<[Arc<CompiledProfile>]> = self
            .targeting
            .profiles_for(thing.as_str())
            .iter()
            .filter_map(|name| self.profiles.get(name).map(|p| Arc::clone(&p.compiled)))
            .collect();
        self.thing_profiles
            .insert(thing.clone(), Arc::clone(&resolved));
        resolved
    }
}

/// Wraps violation records as Detect changes.
fn violations_only(records: Vec<ViolationRecord>) -> Vec<DetectChange> {
    records.into_iter().map(DetectChange::Violation).collect()
}

/// A batch's changes in scoring order: the violation records of the transitions before each
/// group of fleet event changes, then those changes (`fleet`: changes drained after the
/// transition count they follow).
fn changes_for(
    transitions: &[Transition],
    covering: &[Option<Arc<str>>],
    fleet: Vec<(usize, Vec<FleetChange>)>,
    profiles: &HashMap<String, Profile>,
    window_holds: &mut HashMap<AlarmKey, Arc<str>>,
) -> Vec<DetectChange> {
    let mut out = Vec::with_capacity(transitions.len());
    let mut from = 0;
    for (to, changes) in fleet
        .into_iter()
        .chain(std::iter::once((transitions.len(), Vec::new())))
    {
        let to = to.clamp(from, transitions.len());
        let cover = covering.get(from..to).unwrap_or(&[]);
        out.extend(violations_only(records_for(
            &transitions[from..to],
            cover,
            profiles,
            window_holds,
        )));
        out.extend(
            changes
                .iter()
                .map(|c| DetectChange::Fleet(fleet::record_change(c))),
        );
        from = to;
    }
    out
}

/// Why a transition is held: its fleet event, or the maintenance window its alarm started in
/// (`window`: the one its datapoint fell in; `window_holds` remembers it until the clear).
fn hold_of(
    t: &Transition,
    window: Option<&Arc<str>>,
    window_holds: &mut HashMap<AlarmKey, Arc<str>>,
) -> Option<Hold> {
    match t.cause? {
        Cause::FleetEvent(id) => Some(Hold::FleetEvent(id)),
        Cause::Maintenance => {
            let key = (
                t.thing.as_str().to_owned(),
                t.profile.clone(),
                t.behavior.clone(),
            );
            let name = match t.change {
                Change::Event(ViolationEventType::InAlarm) => {
                    let name = window.cloned()?;
                    window_holds.insert(key, name.clone());
                    Some(name)
                }
                Change::StillInAlarm => window_holds.get(&key).or(window).cloned(),
                Change::Event(_) => window_holds.remove(&key).or_else(|| window.cloned()),
            };
            // A hold whose window is no longer known (the service restarted) keeps the cause.
            Some(Hold::Maintenance(name.map_or_else(
                || maintenance::UNKNOWN_WINDOW.to_owned(),
                |n| n.to_string(),
            )))
        }
    }
}

/// Turns scorer transitions into violation records, coalescing repeated `StillInAlarm`
/// updates of one violation into the last one. `covering[i]` is the maintenance window the
/// datapoint of `transitions[i]` fell in (an empty slice: none).
fn records_for(
    transitions: &[Transition],
    covering: &[Option<Arc<str>>],
    profiles: &HashMap<String, Profile>,
    window_holds: &mut HashMap<AlarmKey, Arc<str>>,
) -> Vec<ViolationRecord> {
    let mut out: Vec<ViolationRecord> = Vec::with_capacity(transitions.len());
    let mut last_touch: HashMap<(&str, &str, &str), usize> = HashMap::new();
    for (i, t) in transitions.iter().enumerate() {
        let Some(behavior) = profiles.get(&*t.profile).and_then(|p| {
            p.definition
                .behaviors
                .iter()
                .find(|b| *b.name == *t.behavior)
        }) else {
            continue;
        };
        let hold = hold_of(t, covering.get(i).and_then(Option::as_ref), window_holds);
        let metric = behavior.metric.as_ref();
        let value = t
            .value
            .as_ref()
            .zip(metric)
            .map(|(v, m)| v.to_metric_value(m));
        let key = (t.thing.as_str(), &*t.profile, &*t.behavior);
        let change = match t.change {
            Change::StillInAlarm => {
                if let Some(&i) = last_touch.get(&key) {
                    out[i].value = value;
                    out[i].at = t.at;
                    out[i].explanation.clone_from(&t.explanation);
                    continue;
                }
                last_touch.insert(key, out.len());
                ViolationChange::Touch
            }
            Change::Event(ViolationEventType::InAlarm) => {
                last_touch.remove(&key);
                ViolationChange::Open
            }
            Change::Event(kind) => {
                last_touch.remove(&key);
                ViolationChange::Close(kind)
            }
        };
        out.push(ViolationRecord {
            thing: t.thing.as_str().to_owned(),
            profile: t.profile.to_string(),
            behavior: behavior.clone(),
            change,
            value,
            at: t.at,
            explanation: t.explanation.clone(),
            incident: t.incident,
            hold,
        });
    }
    out
}
