//! A generated fleet: device profiles and the event plan drawn from a scenario, and streams of
//! readings and datapoints over its slots.
//!
//! Every random draw comes from an RNG seeded from the scenario seed: one for the event plan and,
//! per device, one each for its profile, its clean behaviour and its attacks, seeded from
//! `(seed, device index, stream)`. A device's values therefore do not depend on the order in
//! which devices are generated, on other devices, or on how many threads generate them.

use crate::archetype::{ARCHETYPES, Archetype};
use crate::device::{Attack, Benign, Device, Effect};
use crate::error::ScenarioError;
use crate::labels::{Event, EventClass, EventKind, Labels};
use crate::reading::{METRICS, Reading};
use crate::scenario::{FleetShare, Region, SLOT_MS, SLOTS_PER_DAY, Scenario, archetype_at};
use crate::schedule::{self, draw};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use rand_distr::{Distribution, StandardNormal};
use std::net::{IpAddr, Ipv4Addr};
use std::ops::Range;
use thingward_models::time::EpochMillis;
use thingward_models::{Datapoint, Metric, ThingName};

/// RNG streams per device.
const STREAM_PROFILE: u64 = 1;
const STREAM_CLEAN: u64 = 2;
const STREAM_ATTACK: u64 = 3;
/// The event plan's stream (device index `u64::MAX`).
const STREAM_PLAN: u64 = 4;

/// SplitMix64's finaliser: a bijective mix of a 64-bit value.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The RNG of `stream` for `device` under `seed`.
fn rng_for(seed: u64, device: u64, stream: u64) -> StdRng {
    StdRng::seed_from_u64(mix(mix(mix(seed) ^ device) ^ stream))
}

/// Metrics a reboot perturbs (counters restart, connections drop and come back).
const REBOOT_METRICS: &[Metric] = &[
    Metric::AllBytesIn,
    Metric::AllBytesOut,
    Metric::AllPacketsIn,
    Metric::AllPacketsOut,
    Metric::MessageByteSize,
    Metric::NumAuthorizationFailures,
    Metric::NumConnectionAttempts,
    Metric::NumDisconnects,
    Metric::NumEstablishedTcpConnections,
    Metric::NumMessagesReceived,
    Metric::NumMessagesSent,
];

/// Metrics a broker restart perturbs: session counts, and the messages (and their bytes)
/// held and flushed, retained messages delivered on resubscribe.
const BROKER_RESTART_METRICS: &[Metric] = &[
    Metric::AllBytesIn,
    Metric::AllBytesOut,
    Metric::AllPacketsIn,
    Metric::AllPacketsOut,
    Metric::MessageByteSize,
    Metric::NumAuthorizationFailures,
    Metric::NumConnectionAttempts,
    Metric::NumDisconnects,
    Metric::NumMessagesReceived,
    Metric::NumMessagesSent,
];

/// Metrics that follow a device's daily cycle (a clock change moves them).
const ACTIVITY_METRICS: &[Metric] = &[
    Metric::AllBytesIn,
    Metric::AllBytesOut,
    Metric::AllPacketsIn,
    Metric::AllPacketsOut,
    Metric::NumEstablishedTcpConnections,
    Metric::NumMessagesReceived,
    Metric::NumMessagesSent,
];

/// A fleet generated from a scenario: profiles, event plan and labels. Cheap to stream from
/// many times; `Send + Sync`.
#[derive(Debug)]
pub struct Fleet {
    scenario: Scenario,
    devices: Vec<Device>,
    labels: Labels,
    /// Hours since the Unix epoch at the first slot.
    start_hours: f64,
}

impl Fleet {
    /// Draws the fleet's device profiles and event plan. Costs O(devices + affected devices);
    /// no datapoint is generated until a stream is read.
    ///
    /// # Errors
    /// [`ScenarioError::NoDevices`] when an event's archetype or region filter matches no
    /// device of the drawn fleet.
    pub fn new(scenario: &Scenario) -> Result<Self, ScenarioError> {
        let devices: Vec<Device> = (0..scenario.devices())
            .map(|i| profile(scenario, i))
            .collect::<Result<_, _>>()?;
        let mut labels = Labels::new(
            format!(
                "synthetic scenario \"{}\" seed {}",
                scenario.name(),
                scenario.seed()
            ),
            scenario.start_ms(),
            scenario.end_ms(),
        );
        labels.training_end_ms = Some(scenario.training_end_ms());
        labels.slot_ms = Some(SLOT_MS);
        let mut fleet = Self {
            scenario: scenario.clone(),
            devices,
            labels,
            start_hours: scenario.start_ms() as f64 / 3_600_000.0,
        };
        fleet.plan()?;
        Ok(fleet)
    }

    /// The scenario.
    pub fn scenario(&self) -> &Scenario {
        &self.scenario
    }

    /// The ground truth.
    pub fn labels(&self) -> &Labels {
        &self.labels
    }

    /// Number of devices.
    pub fn len(&self) -> usize {
        self.devices.len()
    }

    /// Whether the fleet has no devices (never, for a checked scenario).
    pub fn is_empty(&self) -> bool {
        self.devices.is_empty()
    }

    /// Thing name of device `i`.
    ///
    /// # Panics
    /// When `i >= self.len()`.
    pub fn thing(&self, i: usize) -> &ThingName {
        &self.devices[i].thing
    }

    /// Archetype of device `i`.
    ///
    /// # Panics
    /// When `i >= self.len()`.
    pub fn archetype(&self, i: usize) -> &'static Archetype {
        self.devices[i].archetype
    }

    /// Region of device `i`.
    ///
    /// # Panics
    /// When `i >= self.len()`.
    pub fn region(&self, i: usize) -> &Region {
        &self.scenario.regions()[self.devices[i].region]
    }

    /// Device `i`'s lognormal rate multiplier (1 = its archetype's median device).
    ///
    /// # Panics
    /// When `i >= self.len()`.
    pub fn rate(&self, i: usize) -> f64 {
        self.devices[i].rate
    }

    /// Device `i`'s readings over every slot, clean and attacked.
    ///
    /// # Panics
    /// When `i >= self.len()`.
    pub fn device(&self, i: usize) -> DeviceStream<'_> {
        let device = &self.devices[i];
        DeviceStream {
            fleet: self,
            device,
            clean_rng: rng_for(self.scenario.seed(), i as u64, STREAM_CLEAN),
            attack_rng: rng_for(self.scenario.seed(), i as u64, STREAM_ATTACK),
            next: 0,
        }
    }

    /// The whole fleet's datapoints, one 5-minute slot at a time (devices in index order,
    /// metrics in [`METRICS`] order). Holds one slot of datapoints at a time.
    pub fn slots(&self) -> Slots<'_> {
        Slots {
            streams: (0..self.len()).map(|i| self.device(i)).collect(),
            clean: Reading::default(),
            observed: Reading::default(),
            next: 0,
        }
    }

    /// The fleet's datapoints in batches of one UTC-day-aligned scenario day × up to
    /// `devices_per_batch` devices, each sorted by (thing, metric, timestamp) — the row order
    /// of a history part file. Batches are generated on `threads` threads (split by device);
    /// the output does not depend on `threads`.
    pub fn batches(&self, devices_per_batch: usize, threads: usize) -> Batches<'_> {
        Batches {
            streams: (0..self.len()).map(|i| self.device(i)).collect(),
            devices_per_batch: devices_per_batch.max(1),
            threads: threads.max(1),
            day: 0,
            first: 0,
        }
    }

    /// Timestamp of slot `slot`.
    pub fn slot_ms(&self, slot: u32) -> EpochMillis {
        self.scenario.slot_ms(slot)
    }

    fn plan(&mut self) -> Result<(), ScenarioError> {
        let scenario = self.scenario.clone();
        let mut rng = rng_for(scenario.seed(), u64::MAX, STREAM_PLAN);
        let slots = scenario.slots();
        let mut attacked = vec![false; self.devices.len()];
        let mut id = 0;
        for (index, spec) in scenario.events().iter().enumerate() {
            for _ in 0..spec.repeat {
                // Region of an outage or a clock change: the configured one or one drawn by
                // weight.
                let regional = matches!(
                    spec.kind,
                    EventKind::RegionalOutage
                        | EventKind::RegionalOutageReconnect
                        | EventKind::DstShift
                );
                let region = match (regional, spec.region) {
                    (_, Some(r)) => Some(r),
                    (true, None) => Some(draw_region(&mut rng, scenario.regions())),
                    (false, None) => None,
                };
                let eligible: Vec<usize> = (0..self.devices.len())
                    .filter(|&i| {
                        let d = &self.devices[i];
                        (spec.archetypes.is_empty() || spec.archetypes.contains(&d.archetype_index))
                            && region.is_none_or(|r| d.region == r)
                    })
                    .collect();
                if eligible.is_empty() {
                    return Err(ScenarioError::NoDevices {
                        index,
                        kind: spec.kind.to_string(),
                    });
                }
                let want = match spec.size {
                    FleetShare::Count(n) => n as usize,
                    FleetShare::Fraction(f) => (f * eligible.len() as f64).round() as usize,
                }
                .clamp(1, eligible.len());
                // Attacks prefer devices no earlier attack took, so classes do not overlap.
                let pool: Vec<usize> = if spec.class == EventClass::Attack {
                    let fresh: Vec<usize> =
                        eligible.iter().copied().filter(|&i| !attacked[i]).collect();
                    if fresh.len() >= want { fresh } else { eligible }
                } else {
                    eligible
                };
                let mut chosen: Vec<usize> = rand::seq::index::sample(&mut rng, pool.len(), want)
                    .into_iter()
                    .map(|k| pool[k])
                    .collect();
                chosen.sort_unstable();

                let (mut start, end) = window(&mut rng, &scenario, spec);
                let (lo, hi) = spec.magnitude.bounds();
                let magnitude = draw(&mut rng, lo, hi, spec.kind == EventKind::Ddos);
                let mut metrics: Vec<Metric> = Vec::new();
                let mut label_end = end;
                let note;
                match spec.kind {
                    EventKind::Ddos => {
                        let victims: Vec<IpAddr> = (0..rng.random_range(1..=3))
                            .map(|_| ip([198, 51, 100, rng.random_range(1..=254)]))
                            .collect();
                        for &i in &chosen {
                            let factor = (magnitude * (0.3 * normal(&mut rng)).exp()).max(2.0);
                            self.add_attack(
                                i,
                                start,
                                end,
                                Attack::Ddos {
                                    factor,
                                    victims: victims.clone(),
                                },
                            );
                        }
                        metrics.extend([
                            Metric::AllBytesOut,
                            Metric::AllPacketsOut,
                            Metric::NumEstablishedTcpConnections,
                            Metric::DestinationIpAddresses,
                        ]);
                        note = format!("bytes out ×{magnitude:.0}");
                    }
                    EventKind::Backdoor => {
                        let with_udp = rng.random::<f64>() < 0.3;
                        for &i in &chosen {
                            let n = magnitude.round().max(1.0) as usize;
                            let tcp = new_ports(&mut rng, &self.devices[i].tcp_ports, n);
                            let udp = if with_udp {
                                new_ports(&mut rng, &self.devices[i].udp_ports, 1)
                            } else {
                                Vec::new()
                            };
                            self.add_attack(i, start, end, Attack::Backdoor { tcp, udp });
                        }
                        metrics.extend([Metric::ListeningTcpPorts, Metric::NumListeningTcpPorts]);
                        if with_udp {
                            metrics
                                .extend([Metric::ListeningUdpPorts, Metric::NumListeningUdpPorts]);
                        }
                        note = format!("{} new listening TCP ports", magnitude.round().max(1.0));
                    }
                    EventKind::CredentialStuffing | EventKind::CredentialStuffingLowSlow => {
                        for &i in &chosen {
                            self.add_attack(
                                i,
                                start,
                                end,
                                Attack::CredentialStuffing { low: lo, high: hi },
                            );
                        }
                        metrics.extend([
                            Metric::NumAuthorizationFailures,
                            Metric::NumConnectionAttempts,
                        ]);
                        note = format!("{lo:.0}–{hi:.0} failed logins per 5 min");
                    }
                    EventKind::MessageFlood => {
                        let size_factor = rng.random_range(0.1..0.5);
                        for &i in &chosen {
                            self.add_attack(
                                i,
                                start,
                                end,
                                Attack::MessageFlood {
                                    factor: magnitude.max(2.0),
                                    size_factor,
                                },
                            );
                        }
                        metrics.extend([
                            Metric::AllBytesOut,
                            Metric::AllPacketsOut,
                            Metric::MessageByteSize,
                            Metric::NumMessagesSent,
                        ]);
                        note = format!("messages ×{:.0}", magnitude.max(2.0));
                    }
                    EventKind::ExfiltrationDrift => {
                        for &i in &chosen {
                            self.add_attack(
                                i,
                                start,
                                end,
                                Attack::Exfiltration {
                                    rate: magnitude / 100.0,
                                },
                            );
                        }
                        metrics.extend([Metric::AllBytesOut, Metric::AllPacketsOut]);
                        note = format!("bytes out +{magnitude:.1} % per day");
                    }
                    EventKind::ReconnectLoop => {
                        for &i in &chosen {
                            self.add_attack(
                                i,
                                start,
                                end,
                                Attack::ReconnectLoop { low: lo, high: hi },
                            );
                        }
                        metrics.extend([Metric::NumConnectionAttempts, Metric::NumDisconnects]);
                        note = format!("{lo:.0}–{hi:.0} reconnects per 5 min");
                    }
                    EventKind::FirmwareUpdate => {
                        for &i in &chosen {
                            let at = rng.random_range(start..end);
                            let bytes = self.devices[i].archetype.firmware_bytes * magnitude;
                            self.add_benign(i, at, at + 1, Benign::Download { bytes });
                            if at + 1 < slots {
                                self.add_benign(i, at + 1, at + 2, Benign::Reboot);
                            }
                        }
                        label_end = (end + 1).min(slots);
                        metrics.extend_from_slice(REBOOT_METRICS);
                        note = "firmware download and reboot per device".to_owned();
                    }
                    EventKind::RebootStorm => {
                        for &i in &chosen {
                            let n = draw(&mut rng, lo, hi, false).round().max(1.0) as u32;
                            for _ in 0..n {
                                let at = rng.random_range(start..end);
                                self.add_benign(i, at, at + 1, Benign::Reboot);
                            }
                        }
                        metrics.extend_from_slice(REBOOT_METRICS);
                        note = format!("{lo:.0}–{hi:.0} reboots per device");
                    }
                    EventKind::RegionalOutage => {
                        for &i in &chosen {
                            self.add_benign(i, start, end, Benign::Offline);
                            if end < slots {
                                self.add_benign(
                                    i,
                                    end,
                                    end + 1,
                                    Benign::Reconnect {
                                        offline_slots: end - start,
                                    },
                                );
                            }
                        }
                        label_end = (end + 1).min(slots);
                        metrics.extend(METRICS.iter().cloned());
                        let name = region
                            .and_then(|r| scenario.regions().get(r))
                            .map_or("", |r| r.name.as_str());
                        note = format!("region {name} offline");
                    }
                    EventKind::StagedRollout => {
                        let plan = schedule::staged_rollout(
                            &mut rng,
                            &self.devices,
                            &chosen,
                            (start, end),
                            (lo, hi),
                            slots,
                        );
                        metrics.extend_from_slice(REBOOT_METRICS);
                        (label_end, note) = self.apply(plan);
                    }
                    EventKind::BrokerRestart => {
                        let plan = schedule::broker_restart(
                            &mut rng,
                            &chosen,
                            (start, end),
                            magnitude,
                            slots,
                        );
                        metrics.extend_from_slice(BROKER_RESTART_METRICS);
                        (label_end, note) = self.apply(plan);
                    }
                    EventKind::RegionalOutageReconnect => {
                        let plan = schedule::outage_reconnect(
                            &mut rng,
                            &chosen,
                            (start, end),
                            magnitude,
                            slots,
                        );
                        metrics.extend(METRICS.iter().cloned());
                        let name = region_name(&scenario, region);
                        let (end, detail) = self.apply(plan);
                        label_end = end;
                        note = format!("region {name}: {detail}");
                    }
                    EventKind::DstShift => {
                        let offset = region
                            .and_then(|r| scenario.regions().get(r))
                            .map_or(0.0, |r| r.utc_offset_hours);
                        let at = schedule::local_two_am(scenario.start_ms(), start, offset, slots);
                        let plan =
                            schedule::dst_shift(&chosen, at, at + (end - start), magnitude, slots);
                        start = at;
                        metrics.extend_from_slice(ACTIVITY_METRICS);
                        let name = region_name(&scenario, region);
                        let (end, detail) = self.apply(plan);
                        label_end = end;
                        note = format!("region {name}: {detail}");
                    }
                    EventKind::Other(_) => continue,
                }
                if spec.class == EventClass::Attack {
                    for &i in &chosen {
                        attacked[i] = true;
                    }
                }
                metrics.sort();
                self.labels.events.push(Event {
                    id,
                    class: spec.class,
                    kind: spec.kind.clone(),
                    devices: chosen
                        .iter()
                        .map(|&i| self.devices[i].thing.clone())
                        .collect(),
                    metrics,
                    start_ms: scenario.slot_ms(start),
                    end_ms: scenario.slot_ms(label_end),
                    note: Some(note),
                });
                id += 1;
            }
        }
        for d in &mut self.devices {
            d.benign.sort_by_key(|e| e.start);
            d.attacks.sort_by_key(|e| e.start);
        }
        Ok(())
    }

    fn add_attack(&mut self, i: usize, start: u32, end: u32, what: Attack) {
        self.devices[i].attacks.push(Effect { start, end, what });
    }

    fn add_benign(&mut self, i: usize, start: u32, end: u32, what: Benign) {
        self.devices[i].benign.push(Effect { start, end, what });
    }

    /// Adds a schedule's effects; returns its label end and note.
    fn apply(&mut self, plan: schedule::Plan) -> (u32, String) {
        for (i, effect) in plan.effects {
            self.devices[i].benign.push(effect);
        }
        (plan.label_end, plan.note)
    }
}

fn region_name(scenario: &Scenario, region: Option<usize>) -> &str {
    region
        .and_then(|r| scenario.regions().get(r))
        .map_or("", |r| r.name.as_str())
}

fn normal(rng: &mut StdRng) -> f64 {
    StandardNormal.sample(rng)
}

fn draw_region(rng: &mut StdRng, regions: &[Region]) -> usize {
    let total: f64 = regions.iter().map(|r| r.weight).sum();
    let mut x = rng.random::<f64>() * total;
    for (i, r) in regions.iter().enumerate() {
        if x < r.weight {
            return i;
        }
        x -= r.weight;
    }
    regions.len() - 1
}

/// The slots `[start, end)` of one event.
fn window(rng: &mut StdRng, scenario: &Scenario, spec: &crate::scenario::EventSpec) -> (u32, u32) {
    let slots = scenario.slots();
    let total_h = f64::from(slots) / 12.0;
    let train_h = f64::from(scenario.training_days()) * 24.0;
    let duration_h = spec.duration_minutes.map(|r| {
        let (lo, hi) = r.bounds();
        draw(rng, lo, hi, false) / 60.0
    });
    let span_h = duration_h.unwrap_or(0.0).min(total_h);
    let start_h = match spec.start_hours {
        Some(r) => {
            let (lo, hi) = r.bounds();
            draw(rng, lo, hi, false)
        }
        None if spec.kind == EventKind::ExfiltrationDrift => total_h - span_h,
        None => {
            let latest = if duration_h.is_some() {
                total_h - span_h
            } else {
                total_h - 24.0
            };
            let earliest = if spec.class == EventClass::Attack && train_h < latest {
                train_h
            } else {
                0.0
            };
            draw(rng, earliest, latest.max(earliest), false)
        }
    };
    let start = ((start_h.max(0.0) * 12.0).floor() as u32).min(slots - 1);
    let end = match duration_h {
        Some(h) => (start + ((h * 12.0).round() as u32).max(1)).min(slots),
        None => slots,
    };
    (start, end.max(start + 1))
}

fn ip(octets: [u8; 4]) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(octets))
}

/// Ports a backdoor or a scanner opens.
const BACKDOOR_PORTS: &[u16] = &[
    23, 2323, 4444, 5555, 6667, 7547, 1337, 31337, 12345, 8888, 9999, 48101, 60001,
];

fn new_ports(rng: &mut StdRng, existing: &[u16], n: usize) -> Vec<u16> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n * 8 {
        if out.len() == n {
            break;
        }
        let p = if rng.random::<f64>() < 0.7 {
            BACKDOOR_PORTS[rng.random_range(0..BACKDOOR_PORTS.len())]
        } else {
            rng.random_range(20_000..65_000)
        };
        if !existing.contains(&p) && !out.contains(&p) {
            out.push(p);
        }
    }
    out.sort_unstable();
    out
}

/// Draws device `i`'s profile from its own RNG.
fn profile(scenario: &Scenario, i: u32) -> Result<Device, ScenarioError> {
    let mut rng = rng_for(scenario.seed(), u64::from(i), STREAM_PROFILE);
    let total = scenario.mix.last().map_or(1.0, |&(_, c)| c);
    let x = rng.random::<f64>() * total;
    let archetype_index = scenario
        .mix
        .iter()
        .find(|&&(_, c)| x < c)
        .or(scenario.mix.last())
        .map_or(0, |&(a, _)| a);
    let a = archetype_at(archetype_index);
    let region = draw_region(&mut rng, scenario.regions());
    let rate = (a.rate_sigma * normal(&mut rng)).exp();
    let utc_offset_hours =
        scenario.regions()[region].utc_offset_hours + rng.random_range(-1.0..1.0);
    let pick = |rng: &mut StdRng, ports: &[(u16, f64)]| -> Vec<u16> {
        let mut v: Vec<u16> = ports
            .iter()
            .filter(|&&(_, p)| rng.random::<f64>() < p)
            .map(|&(port, _)| port)
            .collect();
        v.sort_unstable();
        v
    };
    let tcp_ports = pick(&mut rng, a.tcp_ports);
    let udp_ports = pick(&mut rng, a.udp_ports);
    let mut endpoints = vec![ip([203, 0, 113, 10])];
    while endpoints.len() < a.endpoints {
        let candidate = if rng.random::<f64>() < 0.5 {
            ip([203, 0, 113, rng.random_range(20..=60)])
        } else {
            ip([192, 0, 2, rng.random_range(1..=254)])
        };
        if !endpoints.contains(&candidate) {
            endpoints.push(candidate);
        }
    }
    let broker = endpoints[0];
    endpoints.sort_unstable();
    if let Some(pos) = endpoints.iter().position(|e| *e == broker) {
        endpoints.swap(0, pos);
    }
    let established_tcp = a.established_tcp * rate.sqrt();
    let mean_size = a.message_bytes * (a.size_sigma * a.size_sigma / 2.0).exp();
    let mean_bytes_out = a.messages_sent * rate * (mean_size + 60.0)
        + a.background_bytes_out * rate * (0.08f64).exp()
        + 132.0;
    let width = 6.max(scenario.devices().saturating_sub(1).to_string().len());
    let name = format!("{}-{i:0width$}", scenario.thing_prefix);
    // The prefix is checked to be 1..=64 printable ASCII, so the name is valid.
    let thing = ThingName::try_from(name).map_err(|_| ScenarioError::Field {
        field: "thing_prefix",
        reason: "does not make valid thing names",
    })?;
    Ok(Device {
        thing,
        archetype: a,
        archetype_index,
        region,
        rate,
        utc_offset_hours,
        tcp_ports,
        udp_ports,
        endpoints,
        established_tcp,
        mean_bytes_out,
        benign: Vec::new(),
        attacks: Vec::new(),
    })
}

/// One device's readings for one slot: what it would have reported without attacks (`clean`)
/// and what it reports (`observed`). Outside attacks the two are equal.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceSlot {
    /// Slot index from the scenario start.
    pub slot: u32,
    /// Slot timestamp (ms).
    pub timestamp: EpochMillis,
    /// The counterfactual reading without attacks.
    pub clean: Reading,
    /// The reading with attacks applied.
    pub observed: Reading,
}

/// One device's readings over the scenario's slots (an iterator of [`DeviceSlot`]; use
/// [`step`](Self::step) to reuse buffers).
#[derive(Debug)]
pub struct DeviceStream<'f> {
    fleet: &'f Fleet,
    device: &'f Device,
    clean_rng: StdRng,
    attack_rng: StdRng,
    next: u32,
}

impl DeviceStream<'_> {
    /// The device's thing name.
    pub fn thing(&self) -> &ThingName {
        &self.device.thing
    }

    /// The next slot's index, clean and observed readings, written into the buffers; `None`
    /// after the last slot.
    pub fn step(&mut self, clean: &mut Reading, observed: &mut Reading) -> Option<u32> {
        let slot = self.next;
        if slot >= self.fleet.scenario.slots() {
            return None;
        }
        self.next += 1;
        self.device
            .clean(&mut self.clean_rng, self.fleet.start_hours, slot, clean);
        observed.copy_from(clean);
        self.device.attack(&mut self.attack_rng, slot, observed);
        Some(slot)
    }
}

impl Iterator for DeviceStream<'_> {
    type Item = DeviceSlot;

    fn next(&mut self) -> Option<DeviceSlot> {
        let mut clean = Reading::default();
        let mut observed = Reading::default();
        let slot = self.step(&mut clean, &mut observed)?;
        Some(DeviceSlot {
            slot,
            timestamp: self.fleet.slot_ms(slot),
            clean,
            observed,
        })
    }
}

/// One 5-minute slot of the whole fleet.
#[derive(Debug, Clone, PartialEq)]
pub struct Slot {
    /// Slot index from the scenario start.
    pub slot: u32,
    /// Slot timestamp (ms).
    pub timestamp: EpochMillis,
    /// Every device's observed datapoints, devices in index order.
    pub datapoints: Vec<Datapoint>,
}

/// The fleet's datapoints slot by slot; see [`Fleet::slots`].
#[derive(Debug)]
pub struct Slots<'f> {
    streams: Vec<DeviceStream<'f>>,
    clean: Reading,
    observed: Reading,
    next: u32,
}

impl Iterator for Slots<'_> {
    type Item = Slot;

    fn next(&mut self) -> Option<Slot> {
        let fleet = self.streams.first()?.fleet;
        let slot = self.next;
        if slot >= fleet.scenario.slots() {
            return None;
        }
        self.next += 1;
        let timestamp = fleet.slot_ms(slot);
        let mut datapoints = Vec::with_capacity(self.streams.len() * METRICS.len());
        for s in &mut self.streams {
            if s.step(&mut self.clean, &mut self.observed).is_some() {
                self.observed
                    .push_datapoints(&s.device.thing, timestamp, &mut datapoints);
            }
        }
        Some(Slot {
            slot,
            timestamp,
            datapoints,
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self
            .streams
            .first()
            .map_or(0, |s| s.fleet.scenario.slots().saturating_sub(self.next))
            as usize;
        (left, Some(left))
    }
}

/// One day × device range of datapoints, sorted by (thing, metric, timestamp).
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// Day index from the scenario start.
    pub day: u32,
    /// The devices (indices).
    pub devices: Range<usize>,
    /// The observed datapoints.
    pub datapoints: Vec<Datapoint>,
}

/// The fleet's datapoints by day and device range; see [`Fleet::batches`].
#[derive(Debug)]
pub struct Batches<'f> {
    streams: Vec<DeviceStream<'f>>,
    devices_per_batch: usize,
    threads: usize,
    day: u32,
    first: usize,
}

/// One device's day of datapoints, metric-major (the part-file order), appended to `out`.
/// `readings` is scratch space reused across devices (no per-slot allocation).
fn device_day(
    stream: &mut DeviceStream<'_>,
    day: u32,
    readings: &mut Vec<Reading>,
    out: &mut Vec<Datapoint>,
) {
    let fleet = stream.fleet;
    let first_slot = day * SLOTS_PER_DAY;
    let mut clean = Reading::default();
    readings.resize_with(SLOTS_PER_DAY as usize, Reading::default);
    let mut n = 0;
    for observed in readings.iter_mut() {
        if stream.step(&mut clean, observed).is_none() {
            break;
        }
        n += 1;
    }
    let thing = &stream.device.thing;
    for m in &METRICS {
        for (k, r) in readings[..n].iter().enumerate() {
            let ts = fleet.slot_ms(first_slot + k as u32);
            if let Some(dp) = r.datapoint(m, thing, ts) {
                out.push(dp);
            }
        }
    }
}

/// One batch's devices for one day, in device order.
fn devices_day(streams: &mut [DeviceStream<'_>], day: u32) -> Vec<Datapoint> {
    let mut out = Vec::with_capacity(streams.len() * METRICS.len() * SLOTS_PER_DAY as usize);
    let mut readings = Vec::new();
    for s in streams {
        device_day(s, day, &mut readings, &mut out);
    }
    out
}

impl Iterator for Batches<'_> {
    type Item = Batch;

    fn next(&mut self) -> Option<Batch> {
        let fleet = self.streams.first()?.fleet;
        if self.day >= fleet.scenario.days() {
            return None;
        }
        let day = self.day;
        let devices = self.first..(self.first + self.devices_per_batch).min(self.streams.len());
        self.first = devices.end;
        if self.first >= self.streams.len() {
            self.first = 0;
            self.day += 1;
        }
        let streams = &mut self.streams[devices.clone()];
        let per_thread = streams.len().div_ceil(self.threads);
        let datapoints = if self.threads == 1 || streams.len() < 2 {
            devices_day(streams, day)
        } else {
            let parts: Vec<Vec<Datapoint>> = std::thread::scope(|scope| {
                let handles: Vec<_> = streams
                    .chunks_mut(per_thread)
                    .map(|chunk| scope.spawn(move || devices_day(chunk, day)))
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                    .collect()
            });
            parts.concat()
        };
        Some(Batch {
            day,
            devices,
            datapoints,
        })
    }
}

/// Built-in archetype names, for documentation and error messages.
pub fn archetype_names() -> impl Iterator<Item = &'static str> {
    ARCHETYPES.iter().map(|a| a.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fleet_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Fleet>();
        assert_send_sync::<Scenario>();
        assert_send_sync::<DeviceStream<'static>>();
    }

    #[test]
    fn rng_streams_differ() {
        assert_ne!(mix(1), mix(2));
        let a: u64 = rng_for(1, 0, STREAM_CLEAN).random();
        let b: u64 = rng_for(1, 0, STREAM_ATTACK).random();
        let c: u64 = rng_for(1, 1, STREAM_CLEAN).random();
        assert!(a != b && a != c && b != c);
    }
}
