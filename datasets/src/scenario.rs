//! Scenarios: small TOML files naming a fleet (size, archetype mix, regions), a span and a seed,
//! and the benign events and attacks to put in it. The format is documented in
//! `datasets/scenarios/README.md`.

use crate::archetype::{ARCHETYPES, Archetype};
use crate::error::{Error, ScenarioError};
use crate::labels::{EventClass, EventKind};
use chrono::DateTime;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use thingward_models::time::EpochMillis;

/// The datapoint period: one value per device and metric every 5 minutes.
pub const SLOT_MS: EpochMillis = 300_000;
/// Slots per day.
pub const SLOTS_PER_DAY: u32 = 288;
/// The largest fleet a scenario may ask for.
pub const MAX_DEVICES: u32 = 1_000_000;
/// The longest span a scenario may ask for.
pub const MAX_DAYS: u32 = 3_650;

/// A number or an inclusive `[low, high]` range to draw from uniformly.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Range {
    /// Exactly this value.
    One(f64),
    /// Drawn uniformly from `[low, high]`.
    Between([f64; 2]),
}

impl Range {
    /// The bounds, low first.
    pub fn bounds(self) -> (f64, f64) {
        match self {
            Self::One(x) => (x, x),
            Self::Between([a, b]) => (a.min(b), a.max(b)),
        }
    }

    fn check(self, field: &'static str, min: f64) -> Result<Self, ScenarioError> {
        let (lo, hi) = self.bounds();
        if !lo.is_finite() || !hi.is_finite() || lo < min {
            return Err(ScenarioError::Field {
                field,
                reason: "must be finite and not below its minimum",
            });
        }
        Ok(self)
    }

    fn scaled(self, k: f64) -> Self {
        let (lo, hi) = self.bounds();
        Self::Between([lo * k, hi * k])
    }
}

/// A region: its devices share a UTC offset (their daily cycles line up) and can go offline
/// together.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Region {
    /// Name events refer to.
    pub name: String,
    /// Local time minus UTC, in hours.
    pub utc_offset_hours: f64,
    /// Relative share of the fleet.
    pub weight: f64,
}

/// One `[[events]]` entry: a benign event or an attack, by kind. Omitted fields take the
/// kind's defaults (see the scenario README).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventParams {
    /// The event kind (`ddos`, `firmware-update`, …).
    pub kind: String,
    /// Start, in hours after the scenario start. Default: attacks start after the training
    /// span, benign events anywhere, exfiltration so that it ends with the scenario.
    pub start_hours: Option<Range>,
    /// Duration in minutes (give at most one of the three duration fields).
    pub duration_minutes: Option<Range>,
    /// Duration in hours.
    pub duration_hours: Option<Range>,
    /// Duration in days.
    pub duration_days: Option<Range>,
    /// Number of affected devices (give `devices` or `fraction`).
    pub devices: Option<u32>,
    /// Share of eligible devices affected.
    pub fraction: Option<f64>,
    /// Kind-specific size: multiplier (ddos, message-flood), new ports (backdoor), attempts
    /// per slot (credential stuffing, reconnect loop), percent per day (exfiltration-drift),
    /// reboots per device (reboot-storm), image-size multiplier (firmware-update), percent
    /// more messages after the update (staged-rollout), broker downtime in seconds
    /// (broker-restart), backlog slots uploaded per slot (regional-outage-reconnect), clock
    /// change in hours (dst-shift, negative = clocks back).
    pub magnitude: Option<Range>,
    /// Only devices of these archetypes are eligible.
    pub archetypes: Option<Vec<String>>,
    /// Only devices of this region are eligible (regional-outage, regional-outage-reconnect,
    /// dst-shift: the region it happens in; default one drawn at random).
    pub region: Option<String>,
    /// Independent copies of this event, each with its own devices and times. Default 1.
    pub repeat: Option<u32>,
}

/// A scenario as written in TOML, before validation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioParams {
    /// Scenario name, recorded in the labels.
    pub name: String,
    /// Seed of every random draw: the same seed gives the same bytes.
    pub seed: u64,
    /// Fleet size (1..=1,000,000).
    pub devices: u32,
    /// Span in days.
    pub days: u32,
    /// Days at the start a detector may train on. Default 14 (capped at `days`).
    pub training_days: Option<u32>,
    /// First slot, RFC 3339 UTC on a 5-minute boundary. Default `2026-01-05T00:00:00Z` (a
    /// Monday).
    pub start: Option<String>,
    /// Thing names are `{prefix}-{index:06}`. Default `thing`.
    pub thing_prefix: Option<String>,
    /// Archetype name → relative weight. Default: every built-in archetype, equal weights.
    #[serde(default)]
    pub mix: BTreeMap<String, f64>,
    /// Regions. Default: americas (UTC−6), europe (UTC+1), asia (UTC+8).
    #[serde(default)]
    pub regions: Vec<Region>,
    /// Benign events and attacks.
    #[serde(default)]
    pub events: Vec<EventParams>,
}

/// A checked event: kind, class and ranges with the kind's defaults filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct EventSpec {
    /// The kind (never [`EventKind::Other`]).
    pub kind: EventKind,
    /// Attack or benign.
    pub class: EventClass,
    /// Start in hours after the scenario start; `None` = the kind's default placement.
    pub start_hours: Option<Range>,
    /// Duration in minutes; `None` = until the end of the scenario.
    pub duration_minutes: Option<Range>,
    /// How many devices.
    pub size: FleetShare,
    /// Kind-specific magnitude.
    pub magnitude: Range,
    /// Eligible archetypes (indices into [`ARCHETYPES`]); empty = all.
    pub archetypes: Vec<usize>,
    /// Eligible region (index into the scenario's regions).
    pub region: Option<usize>,
    /// Independent copies.
    pub repeat: u32,
}

/// How many devices an event takes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FleetShare {
    /// Exactly this many (capped at the eligible devices).
    Count(u32),
    /// This share of the eligible devices (at least one).
    Fraction(f64),
}

/// A checked scenario, ready for [`Fleet::new`](crate::Fleet::new).
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    pub(crate) name: String,
    pub(crate) seed: u64,
    pub(crate) devices: u32,
    pub(crate) days: u32,
    pub(crate) training_days: u32,
    pub(crate) start_ms: EpochMillis,
    pub(crate) thing_prefix: String,
    /// (archetype index, cumulative weight), for drawing.
    pub(crate) mix: Vec<(usize, f64)>,
    pub(crate) regions: Vec<Region>,
    pub(crate) events: Vec<EventSpec>,
}

const DEFAULT_START: &str = "2026-01-05T00:00:00Z";

impl Scenario {
    /// Reads and checks a scenario file.
    ///
    /// # Errors
    /// [`Error::Io`], [`Error::Toml`] or [`Error::Scenario`].
    pub fn load(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(Error::io(path))?;
        Self::parse(&text)
    }

    /// Parses and checks scenario TOML.
    ///
    /// # Errors
    /// [`Error::Toml`] or [`Error::Scenario`].
    pub fn parse(text: &str) -> Result<Self, Error> {
        let params: ScenarioParams = toml::from_str(text)?;
        Ok(params.check()?)
    }

    /// The scenario name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }
    /// Fleet size.
    pub fn devices(&self) -> u32 {
        self.devices
    }
    /// Span in days.
    pub fn days(&self) -> u32 {
        self.days
    }
    /// Number of 5-minute slots.
    pub fn slots(&self) -> u32 {
        self.days * SLOTS_PER_DAY
    }
    /// The training span in days (the first days of the scenario).
    pub fn training_days(&self) -> u32 {
        self.training_days
    }
    /// Timestamp of the first slot (ms).
    pub fn start_ms(&self) -> EpochMillis {
        self.start_ms
    }
    /// End of the span (ms), exclusive.
    pub fn end_ms(&self) -> EpochMillis {
        self.start_ms + EpochMillis::from(self.slots()) * SLOT_MS
    }
    /// End of the training span (ms), exclusive.
    pub fn training_end_ms(&self) -> EpochMillis {
        self.start_ms + EpochMillis::from(self.training_days * SLOTS_PER_DAY) * SLOT_MS
    }
    /// Timestamp of slot `slot`.
    pub fn slot_ms(&self, slot: u32) -> EpochMillis {
        self.start_ms + EpochMillis::from(slot) * SLOT_MS
    }
    /// The regions.
    pub fn regions(&self) -> &[Region] {
        &self.regions
    }
    /// The checked events.
    pub fn events(&self) -> &[EventSpec] {
        &self.events
    }

    /// The same scenario with another fleet size (events keep their shares; counts are
    /// capped by the fleet).
    ///
    /// # Errors
    /// [`ScenarioError::Field`] when `devices` is 0 or above [`MAX_DEVICES`].
    pub fn with_devices(mut self, devices: u32) -> Result<Self, ScenarioError> {
        check_devices(devices)?;
        self.devices = devices;
        Ok(self)
    }

    /// The same scenario with another seed.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
}

fn check_devices(devices: u32) -> Result<(), ScenarioError> {
    if devices == 0 || devices > MAX_DEVICES {
        return Err(ScenarioError::Field {
            field: "devices",
            reason: "must be in 1..=1000000",
        });
    }
    Ok(())
}

fn field(field: &'static str, reason: &'static str) -> ScenarioError {
    ScenarioError::Field { field, reason }
}

impl ScenarioParams {
    /// Checks the scenario and fills in defaults.
    ///
    /// # Errors
    /// The first rule the scenario breaks.
    pub fn check(self) -> Result<Scenario, ScenarioError> {
        check_devices(self.devices)?;
        if self.days == 0 || self.days > MAX_DAYS {
            return Err(field("days", "must be in 1..=3650"));
        }
        let training_days = self.training_days.unwrap_or(14).min(self.days);
        let start_text = self.start.as_deref().unwrap_or(DEFAULT_START);
        let start_ms = DateTime::parse_from_rfc3339(start_text)
            .ok()
            .map(|t| t.timestamp_millis())
            .filter(|ms| ms % SLOT_MS == 0)
            .ok_or_else(|| ScenarioError::Start(start_text.to_owned()))?;
        let thing_prefix = self.thing_prefix.unwrap_or_else(|| "thing".to_owned());
        if thing_prefix.is_empty()
            || thing_prefix.len() > 64
            || !thing_prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == ':')
        {
            return Err(field(
                "thing_prefix",
                "must be 1..=64 of [A-Za-z0-9_:-] (a valid thing name prefix)",
            ));
        }

        let mut mix = Vec::new();
        let mut total = 0.0;
        if self.mix.is_empty() {
            for i in 0..ARCHETYPES.len() {
                total += 1.0;
                mix.push((i, total));
            }
        } else {
            for (name, &w) in &self.mix {
                let i = archetype_index(name)?;
                if !(w.is_finite() && w >= 0.0) {
                    return Err(field("mix", "weights must be finite and ≥ 0"));
                }
                total += w;
                mix.push((i, total));
            }
        }
        if total <= 0.0 {
            return Err(field("mix", "at least one weight must be positive"));
        }

        let regions = if self.regions.is_empty() {
            vec![
                region("americas", -6.0, 0.4),
                region("europe", 1.0, 0.35),
                region("asia", 8.0, 0.25),
            ]
        } else {
            self.regions
        };
        if regions.iter().any(|r| {
            !(r.weight.is_finite()
                && r.weight >= 0.0
                && r.utc_offset_hours.is_finite()
                && r.utc_offset_hours.abs() <= 14.0)
        }) || regions.iter().all(|r| r.weight == 0.0)
        {
            return Err(field(
                "regions",
                "weights must be ≥ 0 (one positive) and offsets within ±14 h",
            ));
        }

        let events = self
            .events
            .into_iter()
            .map(|e| check_event(e, &regions))
            .collect::<Result<Vec<_>, _>>()?;

        Ok(Scenario {
            name: self.name,
            seed: self.seed,
            devices: self.devices,
            days: self.days,
            training_days,
            start_ms,
            thing_prefix,
            mix,
            regions,
            events,
        })
    }
}

fn region(name: &str, utc_offset_hours: f64, weight: f64) -> Region {
    Region {
        name: name.to_owned(),
        utc_offset_hours,
        weight,
    }
}

fn archetype_index(name: &str) -> Result<usize, ScenarioError> {
    ARCHETYPES
        .iter()
        .position(|a| a.name == name)
        .ok_or_else(|| ScenarioError::UnknownArchetype(name.to_owned()))
}

/// The archetype at `index` of [`ARCHETYPES`].
pub(crate) fn archetype_at(index: usize) -> &'static Archetype {
    ARCHETYPES.get(index).unwrap_or(&ARCHETYPES[0])
}

/// Per-kind defaults: (share, duration in minutes or None = to the end, magnitude).
fn defaults(kind: &EventKind) -> (FleetShare, Option<Range>, Range) {
    use FleetShare::{Count, Fraction};
    let minutes = |a: f64, b: f64| Some(Range::Between([a, b]));
    match kind {
        EventKind::Ddos => (
            Fraction(0.02),
            minutes(30.0, 180.0),
            Range::Between([10.0, 1000.0]),
        ),
        EventKind::Backdoor => (Count(2), None, Range::Between([1.0, 5.0])),
        EventKind::CredentialStuffing => {
            (Count(1), minutes(10.0, 60.0), Range::Between([50.0, 500.0]))
        }
        EventKind::CredentialStuffingLowSlow => (
            Count(1),
            minutes(2.0 * 1440.0, 4.0 * 1440.0),
            Range::Between([1.0, 5.0]),
        ),
        EventKind::MessageFlood => (Count(1), minutes(15.0, 60.0), Range::One(20.0)),
        EventKind::ExfiltrationDrift => (
            Count(1),
            minutes(14.0 * 1440.0, 28.0 * 1440.0),
            Range::Between([2.0, 5.0]),
        ),
        EventKind::ReconnectLoop => (Count(1), minutes(120.0, 480.0), Range::Between([1.0, 6.0])),
        EventKind::FirmwareUpdate => (Fraction(0.9), minutes(360.0, 360.0), Range::One(1.0)),
        EventKind::RebootStorm => (
            Fraction(0.2),
            minutes(30.0, 90.0),
            Range::Between([2.0, 6.0]),
        ),
        EventKind::RegionalOutage => (Fraction(1.0), minutes(60.0, 240.0), Range::One(1.0)),
        EventKind::StagedRollout => (
            Fraction(0.95),
            minutes(360.0, 1440.0),
            Range::Between([10.0, 30.0]),
        ),
        EventKind::BrokerRestart => (
            Fraction(0.98),
            minutes(5.0, 5.0),
            Range::Between([10.0, 60.0]),
        ),
        EventKind::RegionalOutageReconnect => (
            Fraction(1.0),
            minutes(60.0, 240.0),
            Range::Between([3.0, 8.0]),
        ),
        EventKind::DstShift => (Fraction(0.9), minutes(1440.0, 1440.0), Range::One(1.0)),
        EventKind::Other(_) => (Count(1), None, Range::One(1.0)),
    }
}

fn check_event(e: EventParams, regions: &[Region]) -> Result<EventSpec, ScenarioError> {
    let kind = EventKind::from(e.kind.clone());
    let Some(class) = kind.class() else {
        return Err(ScenarioError::UnknownKind(e.kind));
    };
    let (share, duration, magnitude) = defaults(&kind);
    let durations = [
        e.duration_minutes
            .map(|r| r.check("events.duration_minutes", 5.0))
            .transpose()?,
        e.duration_hours
            .map(|r| {
                r.check("events.duration_hours", 0.0)
                    .map(|r| r.scaled(60.0))
            })
            .transpose()?,
        e.duration_days
            .map(|r| {
                r.check("events.duration_days", 0.0)
                    .map(|r| r.scaled(1440.0))
            })
            .transpose()?,
    ];
    if durations.iter().flatten().count() > 1 {
        return Err(field(
            "events.duration_*",
            "give at most one of duration_minutes, duration_hours, duration_days",
        ));
    }
    let duration_minutes = durations.into_iter().flatten().next().or(duration);
    let size = match (e.devices, e.fraction) {
        (Some(_), Some(_)) => {
            return Err(field(
                "events.devices",
                "give devices or fraction, not both",
            ));
        }
        (Some(0), None) => return Err(field("events.devices", "must be ≥ 1")),
        (Some(n), None) => FleetShare::Count(n),
        (None, Some(f)) if f > 0.0 && f <= 1.0 => FleetShare::Fraction(f),
        (None, Some(_)) => return Err(field("events.fraction", "must be in (0, 1]")),
        (None, None) => share,
    };
    // A daylight-saving change moves clocks forward (+) or back (−), by at most 3 h.
    let magnitude_min = if kind == EventKind::DstShift {
        -3.0
    } else {
        0.0
    };
    let magnitude = e
        .magnitude
        .map(|r| r.check("events.magnitude", magnitude_min))
        .transpose()?
        .unwrap_or(magnitude);
    if kind == EventKind::DstShift {
        let (lo, hi) = magnitude.bounds();
        if hi > 3.0 || (lo <= 0.0 && hi >= 0.0) {
            return Err(field(
                "events.magnitude",
                "dst-shift: hours in [-3, 3], not 0, all of one sign",
            ));
        }
    }
    let start_hours = e
        .start_hours
        .map(|r| r.check("events.start_hours", 0.0))
        .transpose()?;
    let archetypes = e
        .archetypes
        .unwrap_or_default()
        .iter()
        .map(|n| archetype_index(n))
        .collect::<Result<Vec<_>, _>>()?;
    let region = e
        .region
        .map(|name| {
            regions
                .iter()
                .position(|r| r.name == name)
                .ok_or(ScenarioError::UnknownRegion(name))
        })
        .transpose()?;
    let repeat = e.repeat.unwrap_or(1);
    if repeat == 0 || repeat > 10_000 {
        return Err(field("events.repeat", "must be in 1..=10000"));
    }
    Ok(EventSpec {
        kind,
        class,
        start_hours,
        duration_minutes,
        size,
        magnitude,
        archetypes,
        region,
        repeat,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fill_in() {
        let s = Scenario::parse(
            r#"
            name = "t"
            seed = 1
            devices = 10
            days = 3
            [[events]]
            kind = "ddos"
            "#,
        )
        .expect("parses");
        assert_eq!(s.training_days(), 3);
        assert_eq!(s.start_ms(), 1_767_571_200_000);
        assert_eq!(s.slots(), 864);
        assert_eq!(s.regions().len(), 3);
        assert_eq!(s.events()[0].class, EventClass::Attack);
        assert_eq!(s.events()[0].size, FleetShare::Fraction(0.02));
    }

    #[test]
    fn bad_scenarios_are_refused_with_the_reason() {
        let base = "name = \"t\"\nseed = 1\ndays = 3\n";
        let cases = [
            ("devices = 0", "devices"),
            ("devices = 5\nstart = \"2026-01-05T00:01:00Z\"", "5-minute"),
            ("devices = 5\n[mix]\ntoaster = 1", "toaster"),
            ("devices = 5\n[[events]]\nkind = \"nope\"", "nope"),
            (
                "devices = 5\n[[events]]\nkind = \"ddos\"\ndevices = 2\nfraction = 0.5",
                "not both",
            ),
            (
                "devices = 5\n[[events]]\nkind = \"regional-outage\"\nregion = \"mars\"",
                "mars",
            ),
            (
                "devices = 5\n[[events]]\nkind = \"ddos\"\nduration_minutes = 30\nduration_hours = 1",
                "at most one",
            ),
            (
                "devices = 5\n[[events]]\nkind = \"dst-shift\"\nmagnitude = [-1, 1]",
                "one sign",
            ),
            (
                "devices = 5\n[[events]]\nkind = \"dst-shift\"\nmagnitude = -4",
                "magnitude",
            ),
            (
                "devices = 5\n[[events]]\nkind = \"ddos\"\nmagnitude = -1",
                "magnitude",
            ),
        ];
        for (extra, needle) in cases {
            let err = Scenario::parse(&format!("{base}{extra}")).expect_err(extra);
            assert!(err.to_string().contains(needle), "{extra}: {err}");
        }
        assert!(matches!(
            Scenario::parse("name = \"t\"\nseed = 1\ndevices = 1\ndays = 1\nbogus = 2"),
            Err(Error::Toml(_))
        ));
    }
}
