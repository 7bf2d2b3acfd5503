//! Fleet events: one event instead of an alarm storm when a large share of a profile's
//! devices (or of one cohort) becomes anomalous on the same ML behavior at the same time — a
//! firmware roll-out, a reboot storm, a regional outage, a broker restart.
//!
//! Per (profile, ML behavior) the tracker counts, over a trailing window ([`FleetParams::window_ms`],
//! in [`FleetParams::bin_ms`] bins), the distinct devices that sent a datapoint ("seen") and the
//! distinct devices with a datapoint at LOW or above ("hot"), for the whole fleet and per model
//! cohort. Each device's last hot and last seen bin live in its ML state, so a device counts
//! once per window and an update is O(1).
//!
//! An event goes through these phases (shares over the trailing window, or distinct hot
//! devices over [`FleetParams::horizon_ms`] for roll-outs in waves):
//!
//! ```text
//!   (none) ── ≥ 2 hot devices on a behavior, unlikely under the model's LOW rate ──▶ Pending
//!   Pending ── hot share ≥ open_share of the fleet (or cohort_share of a cohort) ──▶ Open
//!   Pending ── its alarms still violating after stall_ms, no new device for stall_ms
//!              (or not open after confirm_ms); or no new device for horizon_ms ──────▶ Dissolved
//!   Open ──── every behavior below half its opening share, and no new device, for linger_ms ─▶ Closed
//! ```
//!
//! Device alarms of a behavior the profile's active event covers are recorded with the event's
//! id and not notified ([`crate::alarm::Cause::FleetEvent`]), unless their residual stands far
//! above the event's ([`FleetParams::outlier_ratio`]). When a pending event dissolves — a
//! handful of devices alarmed together, stayed in alarm and did not spread, as a targeted attack
//! does — every alarm it held is released (notified, late). When only some of a pending event's
//! behaviors behave so (a DDoS during a roll-out), those behaviors leave it and their alarms are
//! released ([`FleetChange::Released`]). When an open event closes, the alarms still in alarm
//! are released (the fleet recovered, these devices did not). An operator's TRUE_POSITIVE on
//! the event releases its alarms too ([`crate::Scorer::release_fleet_event`]). A small
//! synchronised attack therefore still raises per-device alarms: it never reaches the opening
//! share, and its alarms are released after `stall_ms`.
//!
//! The tracker's clock is the datapoints' timestamps, per behavior; a datapoint more than a
//! window ahead moves it only after `FAR_AHEAD_VOTES` (32) such datapoints in a row, so one client
//! with a wrong clock cannot stop time for the others.
//!
//! Only anomalies above the expected range alarm in ML Detect, so every fleet event's direction
//! is "above".

use std::sync::Arc;
use thingward_models::ThingName;
use thingward_models::time::EpochMillis;

/// A fleet event's id, unique within the service's history (shown as 16 hex digits).
pub type FleetEventId = u64;

/// How fleet events are detected.
#[derive(Debug, Clone, PartialEq)]
pub struct FleetParams {
    /// The trailing window over which distinct hot and seen devices are counted.
    pub window_ms: i64,
    /// The window's bin width (devices report about once per bin).
    pub bin_ms: i64,
    /// Share of the fleet's seen devices that must be hot on a behavior to open an event.
    pub open_share: f64,
    /// Share of one cohort's seen devices that opens an event.
    pub cohort_share: f64,
    /// Fewest hot devices (fleet-wide, or in the cohort) that open an event.
    pub min_devices: u32,
    /// A behavior becomes part of an event only when its hot count is this unlikely under the
    /// model's own LOW rate (Poisson tail).
    pub significance: f64,
    /// A pending event that gains no hot device for this long dissolves.
    pub stall_ms: i64,
    /// A pending event not open after this long dissolves.
    pub confirm_ms: i64,
    /// An open event closes after this long with every behavior below half its opening share.
    pub linger_ms: i64,
    /// How long a pending event whose devices recovered at once (each hot for a slot or two,
    /// like the waves of a staged roll-out) waits for more devices; the distinct hot devices
    /// over this horizon also open an event.
    pub horizon_ms: i64,
    /// An alarm whose residual exceeds this multiple of the event's mean hot residual on the
    /// behavior (plus one) is not explained by it: a credential-stuffing burst during a broker
    /// restart's handful of failed logins stands out and is notified.
    pub outlier_ratio: f32,
}

impl Default for FleetParams {
    fn default() -> Self {
        Self {
            window_ms: 3_600_000,
            bin_ms: 300_000,
            open_share: 0.10,
            cohort_share: 0.25,
            min_devices: 5,
            significance: 1e-3,
            stall_ms: 600_000,
            confirm_ms: 3_600_000,
            linger_ms: 3_600_000,
            horizon_ms: 6 * 3_600_000,
            outlier_ratio: 2.0,
        }
    }
}

impl FleetParams {
    /// Bins in the window.
    pub(crate) fn bins(&self) -> usize {
        (self.window_ms / self.bin_ms.max(1)).clamp(1, 288) as usize
    }

    /// Bins in the horizon.
    pub(crate) fn horizon_bins(&self) -> usize {
        (self.horizon_ms / self.bin_ms.max(1)).clamp(1, 2016) as usize
    }
}

/// Where a fleet event is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FleetPhase {
    /// Several devices alarm together; their alarms are held while it is decided.
    Pending,
    /// A large share of the fleet (or a cohort) moved together.
    Open,
    /// The fleet is back to normal.
    Closed,
    /// It never spread: the held alarms were released.
    Dissolved,
}

impl FleetPhase {
    /// The wire name (`PENDING`, `OPEN`, `CLOSED`, `DISSOLVED`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Open => "OPEN",
            Self::Closed => "CLOSED",
            Self::Dissolved => "DISSOLVED",
        }
    }
}

/// One behavior of a fleet event.
#[derive(Debug, Clone, PartialEq)]
pub struct FleetBehaviorShare {
    /// The behavior.
    pub behavior: Arc<str>,
    /// Its metric's wire name.
    pub metric: Arc<str>,
    /// Hot devices in the trailing window now.
    pub devices: u32,
    /// Hot ÷ seen devices now.
    pub share: f64,
    /// The most hot devices seen at once.
    pub peak_devices: u32,
    /// The highest share seen.
    pub peak_share: f64,
}

/// One cohort's part in a fleet event (its peak share on any of the event's behaviors).
#[derive(Debug, Clone, PartialEq)]
pub struct FleetCohortShare {
    /// The cohort's name in the model (`cohort-N`).
    pub cohort: Arc<str>,
    /// The most hot devices of the cohort at once.
    pub peak_devices: u32,
    /// The highest share of the cohort's seen devices.
    pub peak_share: f64,
}

/// A fleet event as reported.
#[derive(Debug, Clone, PartialEq)]
pub struct FleetEvent {
    /// Its id.
    pub id: FleetEventId,
    /// The security profile.
    pub profile: Arc<str>,
    /// Its phase.
    pub phase: FleetPhase,
    /// When its first hot device was seen (the start of that bin).
    pub start: EpochMillis,
    /// When it closed or dissolved.
    pub end: Option<EpochMillis>,
    /// The behaviors that moved together.
    pub behaviors: Vec<FleetBehaviorShare>,
    /// The cohorts involved (each with at least one hot device).
    pub cohorts: Vec<FleetCohortShare>,
    /// Device alarms it explained.
    pub explained_alarms: u32,
}

/// A device alarm a fleet event no longer explains: notify it now.
#[derive(Debug, Clone, PartialEq)]
pub struct Released {
    /// The thing.
    pub thing: ThingName,
    /// The behavior.
    pub behavior: Arc<str>,
    /// Whether the alarm is still active (else it started and cleared while held).
    pub in_alarm: bool,
}

/// What happened to a fleet event, for the binary to record and notify.
#[derive(Debug, Clone, PartialEq)]
pub enum FleetChange {
    /// A pending event started holding alarms (recorded, not notified).
    Pending(FleetEvent),
    /// The event opened: notify it.
    Opened(FleetEvent),
    /// A behavior joined, or a share peaked higher (at most once per bin).
    Updated(FleetEvent),
    /// The event closed; `released` are its alarms still active.
    Closed {
        /// The event.
        event: FleetEvent,
        /// Alarms to notify now.
        released: Vec<Released>,
    },
    /// A behavior left the pending event: its alarms stayed active while the rest of the
    /// event did not spread — an attack on a few devices during a roll-out. Its held alarms
    /// are released; the event goes on without it.
    Released {
        /// The event.
        event: FleetEvent,
        /// Alarms to notify now.
        released: Vec<Released>,
    },
    /// The pending event never opened; every alarm it held is released.
    Dissolved {
        /// The event.
        event: FleetEvent,
        /// Alarms to notify now.
        released: Vec<Released>,
    },
}

impl FleetChange {
    /// The event the change is about.
    pub fn event(&self) -> &FleetEvent {
        match self {
            Self::Pending(e) | Self::Opened(e) | Self::Updated(e) => e,
            Self::Closed { event, .. }
            | Self::Dissolved { event, .. }
            | Self::Released { event, .. } => event,
        }
    }
}

/// `P(X ≥ k)` for `X ~ Poisson(lambda)`.
pub(crate) fn poisson_sf(k: u32, lambda: f64) -> f64 {
    if k == 0 {
        return 1.0;
    }
    if lambda <= 0.0 {
        return 0.0;
    }
    // 1 − P(X ≤ k − 1), summed in log space for stability.
    let mut term = (-lambda).exp();
    let mut cdf = term;
    for i in 1..k {
        term *= lambda / f64::from(i);
        cdf += term;
        if term < 1e-300 {
            break;
        }
    }
    (1.0 - cdf).max(0.0)
}

/// Counts of distinct devices per bin of a trailing window, for the fleet (slot 0) and each
/// cohort: `counts[slot * bins + bin % bins]` devices have their latest bin there.
#[derive(Debug, Clone)]
pub(crate) struct Rings {
    bins: usize,
    counts: Vec<u32>,
    sums: Vec<u32>,
}

impl Rings {
    fn new(slots: usize, bins: usize) -> Self {
        Self {
            bins,
            counts: vec![0; slots * bins],
            sums: vec![0; slots],
        }
    }

    /// Forgets bins `(from, to]` (they fall out of the window as time moves to `to`).
    fn expire(&mut self, from: u32, to: u32) {
        let n = (to.saturating_sub(from) as usize).min(self.bins);
        for step in 1..=n {
            let bin = (from as usize + step) % self.bins;
            for (slot, sum) in self.sums.iter_mut().enumerate() {
                let c = &mut self.counts[slot * self.bins + bin];
                *sum -= *c;
                *c = 0;
            }
        }
    }

    /// Moves one device of `slot` from its previous latest bin `last` (0: none) to `now`.
    #[inline]
    fn mark(&mut self, slot: usize, last: u32, now: u32) {
        if last == now {
            return;
        }
        let base = slot * self.bins;
        if last != 0 && now - last < self.bins as u32 && last <= now {
            let c = &mut self.counts[base + last as usize % self.bins];
            if *c > 0 {
                *c -= 1;
                self.sums[slot] -= 1;
            }
        }
        self.counts[base + now as usize % self.bins] += 1;
        self.sums[slot] += 1;
    }

    fn sum(&self, slot: usize) -> u32 {
        self.sums.get(slot).copied().unwrap_or(0)
    }

    /// The oldest bin of the window (relative to `now`) holding a device of `slot`.
    fn oldest(&self, slot: usize, now: u32) -> u32 {
        let base = slot * self.bins;
        (0..self.bins as u32)
            .rev()
            .map(|back| now.saturating_sub(back))
            .find(|&b| b > 0 && self.counts[base + b as usize % self.bins] > 0)
            .unwrap_or(now)
    }
}

/// Window counts of one (profile, ML behavior).
#[derive(Debug, Clone)]
pub(crate) struct BehaviorFleet {
    pub(crate) profile: u32,
    profile_name: Arc<str>,
    pub(crate) behavior: Arc<str>,
    pub(crate) metric: Arc<str>,
    /// The current bin.
    bin: u32,
    hot: Rings,
    seen: Rings,
    /// Distinct hot devices over the horizon (fleet-wide).
    long: Rings,
    /// Cohort names of the model (slot 0 is the fleet).
    cohorts: Arc<[Arc<str>]>,
    /// Probability that a clean device is hot at least once in the window (model's LOW rate).
    p_hot: f64,
    /// The last bin an Updated change was emitted for this behavior.
    updated_bin: u32,
    /// Datapoints in a row from more than a window ahead of `bin` (see [`FAR_AHEAD_VOTES`]).
    ahead: u32,
}

/// A datapoint stamped more than a window ahead of a behavior's clock moves it only after this
/// many such datapoints in a row: one client with a wrong clock (a batch stamped next year)
/// cannot push every other device's datapoints out of the window, while a real gap (no data
/// for hours) is crossed within a few dozen datapoints.
pub(crate) const FAR_AHEAD_VOTES: u32 = 32;

/// The per-device part of fleet tracking, kept in the scorer's ML state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct DeviceMarks {
    /// Latest bin the device was seen in (0: never).
    pub(crate) seen: u32,
    /// Latest bin the device was hot in (0: never).
    pub(crate) hot: u32,
}

#[derive(Debug, Clone)]
struct EventBehavior {
    bid: u32,
    devices: u32,
    share: f64,
    peak_devices: u32,
    peak_share: f64,
    /// Most distinct hot devices over the horizon (growth is measured on it).
    peak_long: u32,
    /// When it last gained a device.
    last_growth: EpochMillis,
    /// Mean residual of the behavior's hot datapoints during the event (the last 20).
    mean_residual: f32,
    hot_residuals: u32,
}

/// An event's live state.
#[derive(Debug, Clone)]
struct EventSlot {
    id: FleetEventId,
    profile: u32,
    profile_name: Arc<str>,
    phase: FleetPhase,
    start: EpochMillis,
    end: Option<EpochMillis>,
    last_growth: EpochMillis,
    below_since: Option<EpochMillis>,
    behaviors: Vec<EventBehavior>,
    /// Per cohort slot (index = slot): peak devices and share.
    cohorts: Vec<(u32, f64)>,
    cohort_names: Arc<[Arc<str>]>,
    /// Pair keys of the alarms it explained, with their behavior (dropped once the event is
    /// over).
    members: Vec<(u64, u32)>,
    /// The explained alarms not cleared yet: when they started, their behavior, and their
    /// latest violating datapoint.
    open_members: crate::hash::IdMap<u64, (EpochMillis, u32, EpochMillis)>,
    /// Behaviors that left it (their alarms were released); they do not join again.
    left: Vec<u32>,
    explained: u32,
    /// Its alarms are notified again (dissolved, closed, or marked TRUE_POSITIVE).
    released: bool,
}

/// All fleet state of a scorer.
#[derive(Debug)]
pub(crate) struct FleetTracker {
    pub(crate) params: FleetParams,
    /// Indexed by behavior id.
    behaviors: Vec<Option<BehaviorFleet>>,
    /// Indexed by profile id: the active (pending or open) event's slot, if any.
    active: Vec<Option<u32>>,
    /// Every event of this run; an alarm's link is its index + 1.
    events: Vec<EventSlot>,
    changes: Vec<FleetChange>,
    /// Events that ended since the scorer last resolved their members.
    finished: Vec<u32>,
    /// Alarms that left a pending event with their behavior, per event slot.
    detached: Vec<(u32, Vec<u64>)>,
    next_id: u64,
}

impl FleetTracker {
    pub(crate) fn new(params: FleetParams, id_seed: u64) -> Self {
        Self {
            params,
            behaviors: Vec::new(),
            active: Vec::new(),
            events: Vec::new(),
            changes: Vec::new(),
            finished: Vec::new(),
            detached: Vec::new(),
            next_id: id_seed,
        }
    }

    fn bin_of(&self, ts: EpochMillis) -> u32 {
        // Bin 0 means "never": real bins start at 1.
        u32::try_from(
            ts.div_euclid(self.params.bin_ms.max(1))
                .clamp(0, i64::from(u32::MAX) - 1),
        )
        .unwrap_or(0)
            + 1
    }

    /// The behavior's counters, created or re-shaped for the model's cohorts.
    pub(crate) fn behavior(
        &mut self,
        bid: u32,
        profile: u32,
        profile_name: &Arc<str>,
        behavior: &crate::profile::CompiledBehavior,
        model: &crate::ml::CompiledModel,
    ) -> &mut BehaviorFleet {
        let cohorts = model.cohort_names();
        let p_low = model.low_rate();
        let bins = self.params.bins();
        let slot = bid as usize;
        if self.behaviors.len() <= slot {
            self.behaviors.resize(slot + 1, None);
        }
        let fresh = match &self.behaviors[slot] {
            Some(b) => b.profile != profile || !Arc::ptr_eq(&b.cohorts, cohorts),
            None => true,
        };
        if fresh {
            let p_hot = 1.0 - (1.0 - p_low.clamp(0.0, 1.0)).powi(bins as i32);
            let old = self.behaviors[slot].take();
            let horizon = self.params.horizon_bins();
            let (hot, seen, long, bin) = match old {
                Some(o) if o.profile == profile && o.cohorts.len() == cohorts.len() => {
                    (o.hot, o.seen, o.long, o.bin)
                }
                _ => (
                    Rings::new(cohorts.len().max(1), bins),
                    Rings::new(cohorts.len().max(1), bins),
                    Rings::new(1, horizon),
                    0,
                ),
            };
            self.behaviors[slot] = Some(BehaviorFleet {
                profile,
                profile_name: Arc::clone(profile_name),
                behavior: Arc::clone(behavior.name_arc()),
                metric: behavior.metric().as_str().into(),
                bin,
                hot,
                seen,
                long,
                cohorts: Arc::clone(cohorts),
                p_hot,
                updated_bin: 0,
                ahead: 0,
            });
        }
        self.behaviors[slot]
            .as_mut()
            .unwrap_or_else(|| unreachable!("set above"))
    }

    /// Counts one judged datapoint of (`bid`, device in model cohort `cohort`; 0 = none).
    pub(crate) fn observe(
        &mut self,
        bid: u32,
        cohort: usize,
        marks: &mut DeviceMarks,
        ts: EpochMillis,
        hot: bool,
        residual: f32,
    ) {
        let now_bin = self.bin_of(ts);
        let Some(Some(bf)) = self.behaviors.get_mut(bid as usize) else {
            return;
        };
        let window = self.params.bins() as u32;
        if bf.bin != 0 && now_bin > bf.bin.saturating_add(window) {
            bf.ahead += 1;
            if bf.ahead < FAR_AHEAD_VOTES {
                return;
            }
        }
        bf.ahead = 0;
        let now = now_bin.max(bf.bin);
        let advanced = now > bf.bin;
        if advanced {
            if bf.bin != 0 {
                bf.hot.expire(bf.bin, now);
                bf.seen.expire(bf.bin, now);
                bf.long.expire(bf.bin, now);
            }
            bf.bin = now;
        }
        let slots: [Option<usize>; 2] = [Some(0), (cohort > 0).then_some(cohort)];
        for s in slots.into_iter().flatten() {
            bf.seen.mark(s, marks.seen, now);
        }
        marks.seen = now;
        let profile = bf.profile;
        if hot {
            for s in slots.into_iter().flatten() {
                bf.hot.mark(s, marks.hot, now);
            }
            bf.long.mark(0, marks.hot, now);
            marks.hot = now;
            self.on_hot(bid, ts, residual);
        }
        if advanced {
            self.tick(profile, ts);
        }
    }

    /// A hot datapoint of `bid`: start, grow or open the profile's event.
    fn on_hot(&mut self, bid: u32, ts: EpochMillis, residual: f32) {
        let params = self.params.clone();
        let Some(Some(bf)) = self.behaviors.get(bid as usize) else {
            return;
        };
        let (h, s) = (bf.hot.sum(0), bf.seen.sum(0).max(1));
        let long = bf.long.sum(0);
        let significant = h >= 2 && poisson_sf(h, f64::from(s) * bf.p_hot) < params.significance;
        let profile = bf.profile as usize;
        if self.active.len() <= profile {
            self.active.resize(profile + 1, None);
        }
        let active = self.active[profile];
        let slot = match active {
            Some(slot) => slot,
            None if significant => {
                let start = i64::from(bf.hot.oldest(0, bf.bin).saturating_sub(1)) * params.bin_ms;
                let id = self.next_id;
                self.next_id += 1;
                let slot = self.events.len() as u32;
                self.events.push(EventSlot {
                    id,
                    profile: bf.profile,
                    profile_name: Arc::clone(&bf.profile_name),
                    phase: FleetPhase::Pending,
                    start,
                    end: None,
                    last_growth: ts,
                    below_since: None,
                    behaviors: Vec::new(),
                    cohorts: vec![(0, 0.0); bf.cohorts.len().max(1)],
                    cohort_names: Arc::clone(&bf.cohorts),
                    members: Vec::new(),
                    open_members: crate::hash::IdMap::default(),
                    left: Vec::new(),
                    explained: 0,
                    released: false,
                });
                self.active[profile] = Some(slot);
                slot
            }
            None => return,
        };
        let bins = bf.bin;
        let cohort_counts: Vec<(u32, u32)> = (0..bf.cohorts.len().max(1))
            .map(|c| (bf.hot.sum(c), bf.seen.sum(c)))
            .collect();
        let cohort_names = Arc::clone(&bf.cohorts);
        let ev = &mut self.events[slot as usize];
        let joined = match ev.behaviors.iter_mut().find(|b| b.bid == bid) {
            Some(b) => {
                if long > b.peak_long {
                    b.peak_long = long;
                    b.last_growth = ts;
                    ev.last_growth = ts;
                }
                b.hot_residuals += 1;
                b.mean_residual += (residual - b.mean_residual) / b.hot_residuals.min(20) as f32;
                false
            }
            None if significant && !ev.left.contains(&bid) => {
                ev.behaviors.push(EventBehavior {
                    bid,
                    devices: 0,
                    share: 0.0,
                    peak_devices: 0,
                    peak_share: 0.0,
                    peak_long: long,
                    last_growth: ts,
                    mean_residual: residual,
                    hot_residuals: 1,
                });
                ev.last_growth = ts;
                true
            }
            None => return,
        };
        let share = f64::from(h) / f64::from(s);
        let mut peaked = false;
        if let Some(b) = ev.behaviors.iter_mut().find(|b| b.bid == bid) {
            b.devices = h;
            b.share = share;
            if h > b.peak_devices {
                b.peak_devices = h;
                peaked = true;
            }
            b.peak_share = b.peak_share.max(share);
        }
        if Arc::ptr_eq(&ev.cohort_names, &cohort_names) {
            for (c, &(hc, sc)) in cohort_counts.iter().enumerate().skip(1) {
                let cs = f64::from(hc) / f64::from(sc.max(1));
                let entry = &mut ev.cohorts[c];
                entry.0 = entry.0.max(hc);
                entry.1 = entry.1.max(cs);
            }
        }
        let long_share = f64::from(long) / f64::from(s);
        let opens = significant
            && ((h >= params.min_devices && share >= params.open_share)
                || (long >= params.min_devices && long_share >= params.open_share)
                || cohort_counts.iter().skip(1).any(|&(hc, sc)| {
                    hc >= params.min_devices
                        && f64::from(hc) / f64::from(sc.max(1)) >= params.cohort_share
                }));
        if ev.phase == FleetPhase::Pending && opens {
            ev.phase = FleetPhase::Open;
            let snapshot = self.snapshot(slot);
            self.changes.push(FleetChange::Opened(snapshot));
        } else if ev.phase == FleetPhase::Pending && joined && ev.behaviors.len() == 1 {
            let snapshot = self.snapshot(slot);
            self.changes.push(FleetChange::Pending(snapshot));
        } else if ev.phase == FleetPhase::Open && (joined || peaked) {
            let bf = self.behaviors[bid as usize]
                .as_mut()
                .unwrap_or_else(|| unreachable!("looked up above"));
            if joined || bf.updated_bin != bins {
                bf.updated_bin = bins;
                let snapshot = self.snapshot(slot);
                self.changes.push(FleetChange::Updated(snapshot));
            }
        }
    }

    /// Time moved on for `profile`: dissolve a stalled pending event, close a quiet open one.
    /// Released alarms are returned as pair keys through `FleetTracker::take_released`.
    fn tick(&mut self, profile: u32, ts: EpochMillis) {
        let Some(Some(slot)) = self.active.get(profile as usize).copied() else {
            return;
        };
        let params = self.params.clone();
        // Bring the event's behaviors' windows up to now before reading their shares.
        let now_bin = self.bin_of(ts);
        let ev = &self.events[slot as usize];
        let bids: Vec<u32> = ev.behaviors.iter().map(|b| b.bid).collect();
        let mut quiet = true;
        let mut current = Vec::with_capacity(bids.len());
        for bid in bids {
            if let Some(Some(bf)) = self.behaviors.get_mut(bid as usize) {
                if now_bin > bf.bin {
                    if bf.bin != 0 {
                        bf.hot.expire(bf.bin, now_bin);
                        bf.seen.expire(bf.bin, now_bin);
                        bf.long.expire(bf.bin, now_bin);
                    }
                    bf.bin = now_bin;
                }
                let (h, s) = (bf.hot.sum(0), bf.seen.sum(0).max(1));
                let share = f64::from(h) / f64::from(s);
                let cohort_loud = (1..bf.cohorts.len()).any(|c| {
                    f64::from(bf.hot.sum(c)) / f64::from(bf.seen.sum(c).max(1))
                        >= params.cohort_share / 2.0
                });
                if share >= params.open_share / 2.0 || cohort_loud {
                    quiet = false;
                }
                current.push((bid, h, share));
            }
        }
        let ev = &mut self.events[slot as usize];
        for (bid, h, share) in current {
            if let Some(b) = ev.behaviors.iter_mut().find(|b| b.bid == bid) {
                b.devices = h;
                b.share = share;
            }
        }
        match ev.phase {
            FleetPhase::Pending => {
                // A behavior whose alarms stay active after stall_ms (an attack on a few
                // devices stays in alarm; a roll-out's devices recover after their download)
                // and that stopped spreading leaves the event, its alarms released.
                let leaving: Vec<u32> = ev
                    .behaviors
                    .iter()
                    .filter(|b| {
                        // Still violating in the last two bins, for longer than stall_ms (a
                        // device that went quiet mid-alarm is not an attack in progress).
                        let sustained = ev.open_members.values().any(|&(start, bid, last)| {
                            bid == b.bid
                                && ts - start >= params.stall_ms
                                && ts - last <= 2 * params.bin_ms
                        });
                        sustained
                            && (ts - b.last_growth >= params.stall_ms
                                || ts - ev.start >= params.confirm_ms)
                    })
                    .map(|b| b.bid)
                    .collect();
                if !leaving.is_empty() && leaving.len() < ev.behaviors.len() {
                    ev.behaviors.retain(|b| !leaving.contains(&b.bid));
                    ev.open_members.retain(|_, m| !leaving.contains(&m.1));
                    let keys: Vec<u64> = ev
                        .members
                        .iter()
                        .filter(|m| leaving.contains(&m.1))
                        .map(|m| m.0)
                        .collect();
                    ev.members.retain(|m| !leaving.contains(&m.1));
                    ev.left.extend(&leaving);
                    self.detached.push((slot, keys));
                } else if !leaving.is_empty() || ts - ev.last_growth >= params.horizon_ms {
                    self.finish(slot, ts, FleetPhase::Dissolved);
                }
            }
            FleetPhase::Open => {
                // A roll-out in waves stays one event: still gaining devices is not quiet.
                if quiet && ts - ev.last_growth >= params.linger_ms {
                    let since = *ev.below_since.get_or_insert(ts);
                    if ts - since >= params.linger_ms {
                        self.finish(slot, ts, FleetPhase::Closed);
                    }
                } else {
                    ev.below_since = None;
                }
            }
            FleetPhase::Closed | FleetPhase::Dissolved => {}
        }
    }

    /// Ends the event in `slot`; the scorer resolves its members into released alarms.
    fn finish(&mut self, slot: u32, ts: EpochMillis, phase: FleetPhase) {
        let ev = &mut self.events[slot as usize];
        ev.phase = phase;
        ev.end = Some(ts);
        let profile = ev.profile as usize;
        if let Some(a) = self.active.get_mut(profile)
            && *a == Some(slot)
        {
            *a = None;
        }
        self.finished.push(slot);
    }

    /// The event explaining a new alarm of `bid` in `profile` now: its link (slot + 1).
    pub(crate) fn explain(
        &mut self,
        profile: u32,
        bid: u32,
        key: u64,
        residual: f32,
        at: EpochMillis,
    ) -> Option<u32> {
        let ratio = self.params.outlier_ratio;
        let slot = (*self.active.get(profile as usize)?)?;
        let ev = &mut self.events[slot as usize];
        let b = ev.behaviors.iter().find(|b| b.bid == bid)?;
        if ev.released || residual > ratio * b.mean_residual.max(0.0) + 1.0 {
            return None;
        }
        ev.members.push((key, bid));
        ev.open_members.insert(key, (at, bid, at));
        ev.explained += 1;
        Some(slot + 1)
    }

    /// The alarm `key` explained by `link` violated again at `at`.
    pub(crate) fn violating(&mut self, link: u32, key: u64, at: EpochMillis) {
        if let Some(m) = link
            .checked_sub(1)
            .and_then(|slot| self.events.get_mut(slot as usize))
            .and_then(|ev| ev.open_members.get_mut(&key))
        {
            m.2 = m.2.max(at);
        }
    }

    /// The alarm `key` explained by `link` cleared (or was invalidated).
    pub(crate) fn cleared(&mut self, link: u32, key: u64) {
        let Some(ev) = link
            .checked_sub(1)
            .and_then(|slot| self.events.get_mut(slot as usize))
        else {
            return;
        };
        ev.open_members.remove(&key);
    }

    /// The id of the event behind `link`, while it still suppresses notifications.
    pub(crate) fn suppressing(&self, link: u32) -> Option<FleetEventId> {
        let ev = self.events.get(link.checked_sub(1)? as usize)?;
        (!ev.released).then_some(ev.id)
    }

    /// The current state of the event in `slot`.
    fn snapshot(&self, slot: u32) -> FleetEvent {
        let ev = &self.events[slot as usize];
        FleetEvent {
            id: ev.id,
            profile: Arc::clone(&ev.profile_name),
            phase: ev.phase,
            start: ev.start,
            end: ev.end,
            behaviors: ev
                .behaviors
                .iter()
                .filter_map(|b| {
                    let bf = self.behaviors.get(b.bid as usize)?.as_ref()?;
                    Some(FleetBehaviorShare {
                        behavior: Arc::clone(&bf.behavior),
                        metric: Arc::clone(&bf.metric),
                        devices: b.devices,
                        share: b.share,
                        peak_devices: b.peak_devices,
                        peak_share: b.peak_share,
                    })
                })
                .collect(),
            cohorts: ev
                .cohorts
                .iter()
                .enumerate()
                .skip(1)
                .filter(|(_, (d, _))| *d > 0)
                .filter_map(|(c, &(peak_devices, peak_share))| {
                    Some(FleetCohortShare {
                        cohort: Arc::clone(ev.cohort_names.get(c)?),
                        peak_devices,
                        peak_share,
                    })
                })
                .collect(),
            explained_alarms: ev.explained,
        }
    }
}

impl FleetTracker {
    /// Takes the events that ended, with the pair keys of their members, marking them released.
    pub(crate) fn take_finished(&mut self) -> Vec<(FleetEvent, Vec<u64>)> {
        let slots = std::mem::take(&mut self.finished);
        slots
            .into_iter()
            .map(|slot| {
                let ev = &mut self.events[slot as usize];
                ev.released = true;
                let members = std::mem::take(&mut ev.members)
                    .into_iter()
                    .map(|m| m.0)
                    .collect();
                ev.open_members = crate::hash::IdMap::default();
                (self.snapshot(slot), members)
            })
            .collect()
    }

    /// Whether an event ended or a behavior left one since the scorer last looked (the common
    /// case, no, costs one comparison per datapoint).
    #[inline]
    pub(crate) fn has_endings(&self) -> bool {
        !self.finished.is_empty() || !self.detached.is_empty()
    }

    /// Takes the alarms that left a pending event with their behavior.
    pub(crate) fn take_detached(&mut self) -> Vec<(FleetEvent, Vec<u64>)> {
        std::mem::take(&mut self.detached)
            .into_iter()
            .map(|(slot, keys)| (self.snapshot(slot), keys))
            .collect()
    }

    /// Pushes a change the scorer built (a finished event with its released alarms).
    pub(crate) fn push(&mut self, change: FleetChange) {
        self.changes.push(change);
    }

    /// Moves the changes since the last call to `out`.
    pub(crate) fn drain(&mut self, out: &mut Vec<FleetChange>) {
        out.append(&mut self.changes);
    }

    /// Marks the event `id` released (an operator's TRUE_POSITIVE): its alarms and any new
    /// ones are notified from now on. Returns the pair keys of the alarms it explained, or
    /// None when no event of this run has that id.
    pub(crate) fn release(&mut self, id: FleetEventId) -> Option<Vec<u64>> {
        let ev = self.events.iter_mut().find(|e| e.id == id)?;
        ev.released = true;
        Some(
            std::mem::take(&mut ev.members)
                .into_iter()
                .map(|m| m.0)
                .collect(),
        )
    }

    /// The pending and open events.
    pub(crate) fn active(&self) -> Vec<FleetEvent> {
        self.active
            .iter()
            .flatten()
            .map(|&slot| self.snapshot(slot))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poisson_tail() {
        assert_eq!(poisson_sf(0, 3.0), 1.0);
        assert!((poisson_sf(1, 2.0) - (1.0 - (-2.0f64).exp())).abs() < 1e-12);
        // P(X ≥ 2 | 0.01) ≈ 0.01² / 2
        assert!((poisson_sf(2, 0.01) / 4.967e-5 - 1.0).abs() < 1e-3);
        assert_eq!(poisson_sf(3, 0.0), 0.0);
    }

    #[test]
    fn rings_count_each_device_once_per_window() {
        let mut r = Rings::new(1, 4);
        r.mark(0, 0, 10);
        r.mark(0, 0, 10);
        assert_eq!(r.sum(0), 2);
        // The first device again two bins later: still two distinct devices.
        r.expire(10, 12);
        r.mark(0, 10, 12);
        assert_eq!(r.sum(0), 2);
        // Four bins on, the second device's bin 10 falls out of the window.
        r.expire(12, 14);
        assert_eq!(r.sum(0), 1);
        assert_eq!(r.oldest(0, 14), 12);
        r.expire(14, 40);
        assert_eq!(r.sum(0), 0);
    }
}
