//! The [`Scorer`]: all per-thing state of Rules Detect, and the datapoint → transition path.
//!
//! Thing names and (profile, behavior) names are interned to dense `u32` ids, so that the
//! per-(thing, behavior) state — alarm entries, `durationSeconds` windows — is keyed by one
//! packed `u64` and statistical pools by a `u32`. Thing ids are recycled when a thing's state is
//! dropped for silence, behavior ids when their behavior or profile is removed, so memory
//! follows the live fleet rather than its history.
//!
//! Measured footprint (x86-64, asserted in the tests), per (thing, behavior):
//! - alarm state: 16 bytes (`(u64 key, AlarmState)`, the state itself 2 bytes) plus hashbrown's
//!   1 control byte, stored only while in alarm or with a streak going — 0 bytes when quiet;
//! - `durationSeconds` window (only behaviors with one): 40 bytes plus 16 bytes per held
//!   sample (at most [`crate::window::MAX_SAMPLES`]; ≈ 12 for 5-minute reports over an hour);
//! - statistical pool (only statistical behaviors): ≈ 21 bytes per device (value, owner id,
//!   slot index);
//! - ML behaviors: 24 bytes (`(u64 key, MlState)`: the drift mean and the thing's cached device
//!   index in the model) plus the alarm entry above while in alarm — at most 40 bytes.
//!
//! Per thing: a 32-byte slot plus its name twice (slot and index map).

use crate::alarm::{AlarmState, Cause, Change, Transition};
use crate::fleet::{
    DeviceMarks, FleetChange, FleetEvent, FleetEventId, FleetParams, FleetPhase, FleetTracker,
    Released,
};
use crate::hash::{IdMap, key_behavior, key_thing, pair_key};
use crate::incident::Incidents;
use crate::ml::{CompiledModel, ModelSet};
use crate::profile::CompiledProfile;
use crate::statistical::Pool;
use crate::window::Window;
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;
use thingward_models::time::EpochMillis;
use thingward_models::{Datapoint, ThingName, Value, ViolationEventType};

/// All alarm, window and statistical state of Rules Detect.
///
/// One `Scorer` serves every profile; it is `Send`, so a scoring task can own it (or shard
/// things over several scorers).
#[derive(Debug)]
pub struct Scorer {
    things: Things,
    behaviors: Behaviors,
    alarms: IdMap<u64, AlarmState>,
    windows: IdMap<u64, Window>,
    pools: IdMap<u32, Pool>,
    /// Per (thing, ML behavior): the drift test's running mean and the thing's device index in
    /// the model that judged it last.
    drifts: IdMap<u64, MlState>,
    /// Per profile compilation: the models of its behaviors in the model set with that id.
    ml_models: IdMap<u64, ResolvedModels>,
    /// Fleet events over the ML behaviors.
    fleet: FleetTracker,
    /// Device incidents per (thing, profile).
    incidents: Incidents,
}

/// How a [`Scorer`] groups alarms.
#[derive(Debug, Clone, PartialEq)]
pub struct ScorerParams {
    /// Fleet event detection.
    pub fleet: FleetParams,
    /// Fleet event and incident ids count up from here; give each run a different seed (the
    /// service uses its start time in seconds × 2³², so ids never repeat across restarts).
    pub id_seed: u64,
}

impl Default for ScorerParams {
    fn default() -> Self {
        Self {
            fleet: FleetParams::default(),
            id_seed: 1 << 32,
        }
    }
}

/// The link of an alarm raised inside a maintenance window.
const MAINTENANCE_LINK: u32 = u32::MAX;

/// A model set's id and, parallel to a compiled profile's behaviors, their models in it.
type ResolvedModels = (u32, Vec<Option<Arc<CompiledModel>>>);

/// Advances the alarm of `key` by one verdict of behavior `b`, storing state only while it is
/// not quiet (in alarm, or a streak going).
#[inline]
fn step_alarm(
    alarms: &mut IdMap<u64, AlarmState>,
    key: u64,
    violating: bool,
    b: &crate::profile::CompiledBehavior,
) -> Option<Change> {
    let (to_alarm, to_clear) = (b.datapoints_to_alarm(), b.datapoints_to_clear());
    match alarms.entry(key) {
        Entry::Occupied(mut e) => {
            let change = e.get_mut().step(violating, to_alarm, to_clear);
            if e.get().is_quiet() {
                e.remove();
            }
            change
        }
        Entry::Vacant(e) => {
            if !violating {
                return None;
            }
            let mut state = AlarmState::default();
            let change = state.step(violating, to_alarm, to_clear);
            if !state.is_quiet() {
                e.insert(state);
            }
            change
        }
    }
}

/// ML state of one (thing, behavior): 28 bytes (40 with its key in the map).
#[derive(Debug, Clone, Copy)]
struct MlState {
    drift: crate::ml::Drift,
    /// `CompiledModel::id` of the model `device` belongs to (0: none yet).
    model: u32,
    /// The thing's device index in that model (`u32::MAX`: not in it).
    device: u32,
    /// The latest window bins the device was seen and hot in (fleet events).
    marks: DeviceMarks,
    /// While in alarm: what explains it (a fleet event slot + 1, [`MAINTENANCE_LINK`], or 0).
    link: u32,
}

impl Default for MlState {
    fn default() -> Self {
        Self {
            drift: crate::ml::Drift::default(),
            model: 0,
            device: u32::MAX,
            marks: DeviceMarks::default(),
            link: 0,
        }
    }
}

/// The incident of an alarm change of (thing, profile) `key`: opened at in-alarm, closed at
/// a clear or invalidation.
fn incident_of(
    incidents: &mut Incidents,
    change: Change,
    key: u64,
    at: EpochMillis,
) -> Option<u64> {
    match change {
        Change::Event(ViolationEventType::InAlarm) => Some(incidents.open(key, at)),
        Change::StillInAlarm => incidents.current(key),
        Change::Event(_) => incidents.close(key, at),
    }
}

/// What a link says about notifying an alarm change.
fn cause_of(fleet: &FleetTracker, link: u32) -> Option<Cause> {
    match link {
        0 => None,
        MAINTENANCE_LINK => Some(Cause::Maintenance),
        slot => fleet.suppressing(slot).map(Cause::FleetEvent),
    }
}

/// Interned thing names. Keyed by device-chosen names, so the map keeps std's seeded hasher.
#[derive(Debug, Default)]
struct Things {
    ids: HashMap<ThingName, u32>,
    slots: Vec<ThingSlot>,
    free: Vec<u32>,
}

#[derive(Debug)]
struct ThingSlot {
    name: Option<ThingName>,
    last_seen: EpochMillis,
}

impl Things {
    fn get(&self, name: &ThingName) -> Option<u32> {
        self.ids.get(name).copied()
    }

    /// Records that `name` sent something at `at`, if it is known.
    fn touch(&mut self, name: &ThingName, at: EpochMillis) {
        if let Some(id) = self.get(name) {
            self.see(id, at);
        }
    }

    fn see(&mut self, id: u32, at: EpochMillis) {
        if let Some(slot) = self.slots.get_mut(id as usize) {
            slot.last_seen = slot.last_seen.max(at);
        }
    }

    fn intern(&mut self, name: &ThingName, at: EpochMillis) -> u32 {
        let id = match self.ids.get(name) {
            Some(&id) => id,
            None => {
                let slot = ThingSlot {
                    name: Some(name.clone()),
                    last_seen: at,
                };
                let id = match self.free.pop() {
                    Some(id) => {
                        self.slots[id as usize] = slot;
                        id
                    }
                    None => {
                        self.slots.push(slot);
                        (self.slots.len() - 1) as u32
                    }
                };
                self.ids.insert(name.clone(), id);
                id
            }
        };
        self.see(id, at);
        id
    }

    fn name(&self, id: u32) -> Option<&ThingName> {
        self.slots.get(id as usize).and_then(|s| s.name.as_ref())
    }

    fn release(&mut self, id: u32) {
        if let Some(slot) = self.slots.get_mut(id as usize)
            && let Some(name) = slot.name.take()
        {
            self.ids.remove(&name);
            self.free.push(id);
        }
    }
}

/// Interned (profile, behavior) names.
#[derive(Debug, Default)]
struct Behaviors {
    profiles: HashMap<Arc<str>, ProfileSlot>,
    slots: Vec<Option<BehaviorSlot>>,
    free: Vec<u32>,
    /// Per compilation (`CompiledProfile::generation`), the behavior ids parallel to its
    /// behaviors: one integer-keyed lookup per datapoint instead of hashing names.
    compiled: IdMap<u64, (u32, Vec<u32>)>,
    /// The next profile id.
    next_profile: u32,
}

#[derive(Debug, Default)]
struct ProfileSlot {
    by_name: HashMap<Arc<str>, u32>,
    /// Dense id of the profile (incidents and fleet events are kept per profile).
    id: u32,
}

#[derive(Debug)]
struct BehaviorSlot {
    profile: Arc<str>,
    profile_id: u32,
    name: Arc<str>,
    suppressed: bool,
}

impl Behaviors {
    fn intern(&mut self, profile: &str, behavior: &str) -> u32 {
        if let Some(&id) = self
            .profiles
            .get(profile)
            .and_then(|p| p.by_name.get(behavior))
        {
            return id;
        }
        let next_profile = &mut self.next_profile;
        let profile_slot = self.profiles.entry(profile.into()).or_insert_with(|| {
            *next_profile += 1;
            ProfileSlot {
                by_name: HashMap::new(),
                id: *next_profile,
            }
        });
        let name: Arc<str> = behavior.into();
        let slot = BehaviorSlot {
            profile: profile.into(),
            profile_id: profile_slot.id,
            name: name.clone(),
            suppressed: false,
        };
        let id = match self.free.pop() {
            Some(id) => {
                self.slots[id as usize] = Some(slot);
                id
            }
            None => {
                self.slots.push(Some(slot));
                (self.slots.len() - 1) as u32
            }
        };
        profile_slot.by_name.insert(name, id);
        id
    }

    /// The profile's id and the behavior ids of its behaviors, in its order; cached per
    /// compilation.
    fn ids_for(&mut self, profile: &CompiledProfile) -> (u32, &[u32]) {
        let generation = profile.generation();
        if !self.compiled.contains_key(&generation) {
            let ids: Vec<u32> = profile
                .behaviors()
                .iter()
                .map(|b| {
                    let id = self.intern(profile.name(), b.name());
                    if let Some(Some(slot)) = self.slots.get_mut(id as usize) {
                        slot.suppressed = b.suppressed();
                    }
                    id
                })
                .collect();
            let profile_id = self.profiles.get(profile.name()).map_or(0, |p| p.id);
            // Compilations the binary dropped without invalidate_profile would pile up: bound
            // the cache; anything evicted is rebuilt on its next datapoint.
            if self.compiled.len() > 4 * self.profiles.len() + 16 {
                self.compiled.clear();
            }
            self.compiled.insert(generation, (profile_id, ids));
        }
        self.compiled
            .get(&generation)
            .map_or((0, &[][..]), |(p, ids)| (*p, ids.as_slice()))
    }

    fn get(&self, id: u32) -> Option<&BehaviorSlot> {
        self.slots.get(id as usize).and_then(Option::as_ref)
    }
}

impl Default for Scorer {
    fn default() -> Self {
        Self::with_params(ScorerParams::default())
    }
}

impl Scorer {
    /// An empty scorer.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty scorer grouping alarms with `params`.
    pub fn with_params(params: ScorerParams) -> Self {
        Self {
            things: Things::default(),
            behaviors: Behaviors::default(),
            alarms: IdMap::default(),
            windows: IdMap::default(),
            pools: IdMap::default(),
            drifts: IdMap::default(),
            ml_models: IdMap::default(),
            fleet: FleetTracker::new(params.fleet, params.id_seed),
            incidents: Incidents::new(params.id_seed),
        }
    }

    /// Moves the fleet event changes since the last call to `out`.
    pub fn drain_fleet_changes(&mut self, out: &mut Vec<FleetChange>) {
        self.fleet.drain(out);
    }

    /// The pending and open fleet events.
    pub fn fleet_events(&self) -> Vec<FleetEvent> {
        self.fleet.active()
    }

    /// An operator verified fleet event `id` as TRUE_POSITIVE: the alarms it explained are
    /// to be notified (returned), and so are its later alarms and their changes. None when
    /// this scorer has no event with that id (it ended before a restart).
    pub fn release_fleet_event(&mut self, id: FleetEventId) -> Option<Vec<Released>> {
        let members = self.fleet.release(id)?;
        Some(self.released(&members, FleetPhase::Dissolved))
    }

    /// The alarms behind `members`; for a closed event only those still in alarm.
    fn released(&self, members: &[u64], phase: FleetPhase) -> Vec<Released> {
        members
            .iter()
            .filter_map(|&key| {
                let in_alarm = self.alarms.get(&key).is_some_and(|s| s.is_in_alarm());
                if phase == FleetPhase::Closed && !in_alarm {
                    return None;
                }
                Some(Released {
                    thing: self.things.name(key_thing(key))?.clone(),
                    behavior: self.behaviors.get(key_behavior(key))?.name.clone(),
                    in_alarm,
                })
            })
            .collect()
    }

    /// Turns the events that ended into Closed / Dissolved changes with their released alarms.
    fn resolve_finished(&mut self) {
        if !self.fleet.has_endings() {
            return;
        }
        for (event, keys) in self.fleet.take_detached() {
            // Their later changes are notified: the event no longer explains them.
            for key in &keys {
                if let Some(state) = self.drifts.get_mut(key) {
                    state.link = 0;
                }
            }
            let released = self.released(&keys, FleetPhase::Dissolved);
            self.fleet.push(FleetChange::Released { event, released });
        }
        for (event, members) in self.fleet.take_finished() {
            let released = self.released(&members, event.phase);
            let change = if event.phase == FleetPhase::Closed {
                FleetChange::Closed { event, released }
            } else {
                FleetChange::Dissolved { event, released }
            };
            self.fleet.push(change);
        }
    }

    /// Evaluates `dp` against every rule behavior of `profile` that watches its metric and
    /// sees its topic, and pushes the resulting alarm changes to `out` (in the profile's
    /// behavior order).
    ///
    /// The caller decides that the thing is a target of `profile`. Any datapoint counts as a
    /// sign of life for [`Scorer::invalidate_silent`].
    pub fn observe(
        &mut self,
        profile: &CompiledProfile,
        dp: &Datapoint,
        out: &mut Vec<Transition>,
    ) {
        if !profile.watches(&dp.metric) {
            self.things.touch(&dp.thing, dp.timestamp);
            return;
        }
        let Self {
            things,
            behaviors,
            alarms,
            windows,
            pools,
            incidents,
            ..
        } = self;
        let thing = things.intern(&dp.thing, dp.timestamp);
        let (profile_id, ids) = behaviors.ids_for(profile);
        for (b, &bid) in profile.behaviors().iter().zip(ids) {
            if b.metric() != &dp.metric
                || b.rule().is_machine_learning()
                || !b.sees(dp.topic.as_deref(), dp.thing.as_str())
            {
                continue;
            }
            let key = pair_key(thing, bid);
            let windowed = match (b.window_ms(), &dp.value) {
                (Some(d), Value::Number(x)) => {
                    Some(windows.entry(key).or_default().push(dp.timestamp, *x, d))
                }
                _ => None,
            };
            let verdict = match b.rule().statistic() {
                Some(statistic) => {
                    let Some(x) = windowed.or_else(|| dp.value.as_number()) else {
                        continue;
                    };
                    pools
                        .entry(bid)
                        .or_default()
                        .update(thing, x, dp.timestamp, statistic.quantile())
                        .and_then(|threshold| b.rule().violates_threshold(x, threshold))
                }
                None => match windowed {
                    Some(x) => b.rule().violates(&Value::Number(x)),
                    None => b.rule().violates(&dp.value),
                },
            };
            let Some(violating) = verdict else { continue };
            let change = step_alarm(alarms, key, violating, b);
            if let Some(change) = change {
                let incident =
                    incident_of(incidents, change, pair_key(thing, profile_id), dp.timestamp);
                out.push(Transition {
                    thing: dp.thing.clone(),
                    profile: profile.name_arc().clone(),
                    behavior: b.name_arc().clone(),
                    change,
                    value: Some(windowed.map_or_else(|| dp.value.clone(), Value::Number)),
                    at: dp.timestamp,
                    suppressed: b.suppressed(),
                    explanation: None,
                    cause: None,
                    incident,
                });
            }
        }
    }

    /// Judges `dp` for every ML behavior of `profile` that watches its metric and has a model
    /// in `models`, and pushes the resulting alarm changes to `out`. A behavior whose model is
    /// not built yet (`PENDING_BUILD`) gives no verdict.
    ///
    /// Each datapoint gets the highest confidence level it reaches; it violates when that
    /// reaches the behavior's `confidenceLevel`, and the alarm follows
    /// `consecutiveDatapointsToAlarm` / `ToClear` like a rule. Transitions into and within
    /// alarm carry an [`thingward_models::ml::MlExplanation`].
    pub fn observe_ml(
        &mut self,
        profile: &CompiledProfile,
        models: &ModelSet,
        dp: &Datapoint,
        out: &mut Vec<Transition>,
    ) {
        self.observe_ml_covered(profile, models, dp, false, out);
    }

    /// [`Scorer::observe_ml`] for a datapoint an operator's maintenance window may cover
    /// (`covered`): a covered datapoint is judged and its alarms recorded as usual, but they
    /// carry [`Cause::Maintenance`] (not notified) and it does not count toward fleet events.
    /// Uncovered alarms of a behavior the profile's fleet event covers carry
    /// [`Cause::FleetEvent`]; every alarm change carries its device incident.
    pub fn observe_ml_covered(
        &mut self,
        profile: &CompiledProfile,
        models: &ModelSet,
        dp: &Datapoint,
        covered: bool,
        out: &mut Vec<Transition>,
    ) {
        let Some(x) = dp.value.as_number().filter(|x| x.is_finite()) else {
            self.things.touch(&dp.thing, dp.timestamp);
            return;
        };
        if !profile.watches_ml(&dp.metric) {
            self.things.touch(&dp.thing, dp.timestamp);
            return;
        }
        let Self {
            things,
            behaviors,
            alarms,
            drifts,
            ml_models,
            fleet,
            incidents,
            ..
        } = self;
        let thing = things.intern(&dp.thing, dp.timestamp);
        let (profile_id, ids) = behaviors.ids_for(profile);
        let generation = profile.generation();
        if ml_models
            .get(&generation)
            .is_none_or(|(id, _)| *id != models.id())
        {
            if ml_models.len() > 64 {
                ml_models.clear();
            }
            let resolved = profile
                .behaviors()
                .iter()
                .map(|b| models.get(profile.name(), b.name()).cloned())
                .collect();
            ml_models.insert(generation, (models.id(), resolved));
        }
        let Some((_, resolved)) = ml_models.get(&generation) else {
            return;
        };
        for ((b, &bid), model) in profile.behaviors().iter().zip(ids).zip(resolved) {
            let Some(level) = b.rule().confidence_level() else {
                continue;
            };
            if b.metric() != &dp.metric || !b.sees(dp.topic.as_deref(), dp.thing.as_str()) {
                continue;
            }
            let Some(model) = model else {
                continue;
            };
            let key = pair_key(thing, bid);
            let state = drifts.entry(key).or_default();
            if state.model != model.id() {
                state.model = model.id();
                state.device = model.device_index(dp.thing.as_str()).unwrap_or(u32::MAX);
            }
            let device = (state.device != u32::MAX).then_some(state.device);
            let judgement = model.judge_at(device, dp.timestamp, x, &mut state.drift);
            let violating = judgement.reaches(level);
            if !covered {
                fleet.behavior(bid, profile_id, profile.name_arc(), b, model);
                fleet.observe(
                    bid,
                    model.cohort_slot(device),
                    &mut state.marks,
                    dp.timestamp,
                    judgement.level.is_some(),
                    judgement.residual,
                );
            }
            let change = step_alarm(alarms, key, violating, b);
            if let Some(change) = change {
                if change == Change::Event(ViolationEventType::InAlarm) {
                    state.link = if covered {
                        MAINTENANCE_LINK
                    } else {
                        fleet
                            .explain(profile_id, bid, key, judgement.residual, dp.timestamp)
                            .unwrap_or(0)
                    };
                }
                if change == Change::StillInAlarm && state.link != MAINTENANCE_LINK {
                    fleet.violating(state.link, key, dp.timestamp);
                }
                let cause = cause_of(fleet, state.link);
                if matches!(change, Change::Event(_))
                    && change != Change::Event(ViolationEventType::InAlarm)
                {
                    fleet.cleared(state.link, key);
                    state.link = 0;
                }
                let incident =
                    incident_of(incidents, change, pair_key(thing, profile_id), dp.timestamp);
                let explanation = matches!(
                    change,
                    Change::StillInAlarm | Change::Event(ViolationEventType::InAlarm)
                )
                .then(|| Box::new(model.explain(dp.thing.as_str(), dp.timestamp, x, &judgement)));
                out.push(Transition {
                    thing: dp.thing.clone(),
                    profile: profile.name_arc().clone(),
                    behavior: b.name_arc().clone(),
                    change,
                    value: Some(dp.value.clone()),
                    at: dp.timestamp,
                    suppressed: b.suppressed(),
                    explanation,
                    cause,
                    incident,
                });
            }
        }
        self.resolve_finished();
    }

    /// Marks (`thing`, `profile`, `behavior`) as already in alarm, as restored from the store
    /// at start-up; `last_seen` is the thing's last datapoint time, for silence detection.
    pub fn restore_alarm(
        &mut self,
        thing: &ThingName,
        profile: &str,
        behavior: &str,
        last_seen: EpochMillis,
    ) {
        let thing = self.things.intern(thing, last_seen);
        let bid = self.behaviors.intern(profile, behavior);
        self.alarms
            .insert(pair_key(thing, bid), AlarmState::in_alarm());
    }

    /// Invalidates every alarm of every thing that sent nothing for more than `silence_ms`
    /// before `now` (AWS: two days), and drops all of those things' state — windows and
    /// statistical contributions too — so that the scorer forgets vanished devices.
    pub fn invalidate_silent(
        &mut self,
        now: EpochMillis,
        silence_ms: i64,
        out: &mut Vec<Transition>,
    ) {
        let silent: Vec<u32> = self
            .things
            .slots
            .iter()
            .enumerate()
            .filter(|(_, s)| {
                s.name.is_some()
                    && i128::from(now) - i128::from(s.last_seen) > i128::from(silence_ms)
            })
            .map(|(id, _)| id as u32)
            .collect();
        self.incidents.sweep(now);
        if silent.is_empty() {
            return;
        }
        let mut is_silent = vec![false; self.things.slots.len()];
        for &id in &silent {
            is_silent[id as usize] = true;
        }
        self.drop_state(|key| is_silent[key_thing(key) as usize], now, out);
        for pool in self.pools.values_mut() {
            for &id in &silent {
                pool.remove(id);
            }
        }
        for id in silent {
            self.things.release(id);
        }
    }

    /// Invalidates every alarm of `profile` whose behavior is not named in `keep` and drops
    /// those behaviors' state. Call it when a profile is updated (`keep` = the behaviors it
    /// still has) or deleted (`keep` = `&[]`).
    pub fn invalidate_profile(
        &mut self,
        profile: &str,
        keep: &[&str],
        now: EpochMillis,
        out: &mut Vec<Transition>,
    ) {
        let Some(slot) = self.behaviors.profiles.get_mut(profile) else {
            return;
        };
        let gone: Vec<u32> = slot
            .by_name
            .iter()
            .filter(|(name, _)| !keep.contains(&&***name))
            .map(|(_, &id)| id)
            .collect();
        if gone.is_empty() {
            return;
        }
        slot.by_name.retain(|name, _| keep.contains(&&**name));
        // The cached ids may name freed behaviors: rebuild them on the next datapoint.
        self.behaviors.compiled.clear();
        if slot.by_name.is_empty() {
            self.behaviors.profiles.remove(profile);
        }
        let mut is_gone = vec![false; self.behaviors.slots.len()];
        for &id in &gone {
            is_gone[id as usize] = true;
        }
        self.drop_state(|key| is_gone[key_behavior(key) as usize], now, out);
        for id in gone {
            self.pools.remove(&id);
            if let Some(slot) = self.behaviors.slots.get_mut(id as usize) {
                *slot = None;
                self.behaviors.free.push(id);
            }
        }
    }

    /// Invalidates the alarms of (`thing`, `profile`) and drops that pair's state: the thing
    /// left the profile's targets.
    pub fn invalidate_thing(
        &mut self,
        thing: &ThingName,
        profile: &str,
        now: EpochMillis,
        out: &mut Vec<Transition>,
    ) {
        let Some(tid) = self.things.get(thing) else {
            return;
        };
        let Some(slot) = self.behaviors.profiles.get(profile) else {
            return;
        };
        let mut ids: Vec<u32> = slot.by_name.values().copied().collect();
        ids.sort_unstable();
        for bid in ids {
            let key = pair_key(tid, bid);
            self.windows.remove(&key);
            self.drifts.remove(&key);
            if let Some(pool) = self.pools.get_mut(&bid) {
                pool.remove(tid);
            }
            if let Some(state) = self.alarms.remove(&key)
                && state.is_in_alarm()
            {
                self.push_invalidation(key, now, out);
            }
        }
    }

    /// How many (thing, profile, behavior) are in alarm. O(entries).
    pub fn alarm_count(&self) -> usize {
        self.alarms.values().filter(|s| s.is_in_alarm()).count()
    }

    /// How many (thing, behavior) alarm entries are stored (in alarm, or with a streak going).
    pub fn alarm_entries(&self) -> usize {
        self.alarms.len()
    }

    /// How many things the scorer holds state for.
    pub fn thing_count(&self) -> usize {
        self.things.ids.len()
    }

    /// Removes the alarm and window entries whose key `doomed` selects, emitting
    /// alarm-invalidated for those in alarm, in (thing id, behavior id) order.
    fn drop_state(
        &mut self,
        doomed: impl Fn(u64) -> bool,
        now: EpochMillis,
        out: &mut Vec<Transition>,
    ) {
        self.windows.retain(|&key, _| !doomed(key));
        self.drifts.retain(|&key, _| !doomed(key));
        let mut invalidated = Vec::new();
        self.alarms.retain(|&key, state| {
            let doom = doomed(key);
            if doom && state.is_in_alarm() {
                invalidated.push(key);
            }
            !doom
        });
        invalidated.sort_unstable();
        for key in invalidated {
            self.push_invalidation(key, now, out);
        }
    }

    fn push_invalidation(&mut self, key: u64, now: EpochMillis, out: &mut Vec<Transition>) {
        let (Some(thing), Some(behavior)) = (
            self.things.name(key_thing(key)),
            self.behaviors.get(key_behavior(key)),
        ) else {
            return;
        };
        let (thing, profile, name, suppressed, profile_id) = (
            thing.clone(),
            behavior.profile.clone(),
            behavior.name.clone(),
            behavior.suppressed,
            behavior.profile_id,
        );
        let incident = self
            .incidents
            .close(pair_key(key_thing(key), profile_id), now);
        out.push(Transition {
            thing,
            profile,
            behavior: name,
            change: Change::Event(ViolationEventType::AlarmInvalidated),
            value: None,
            at: now,
            suppressed,
            explanation: None,
            cause: None,
            incident,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The per-(thing, behavior) footprint documented in the module docs.
    #[test]
    fn state_entries_are_small() {
        assert_eq!(std::mem::size_of::<(u64, AlarmState)>(), 16);
        assert_eq!(std::mem::size_of::<(u64, Window)>(), 40);
        assert_eq!(std::mem::size_of::<ThingSlot>(), 32);
        // ML: 24 bytes per (thing, ML behavior) always, plus the 16-byte alarm entry while in
        // alarm or on a streak: at most 40 bytes (+ 2 hashbrown control bytes) of the 64 budgeted.
        assert_eq!(std::mem::size_of::<(u64, MlState)>(), 40);
    }
}
