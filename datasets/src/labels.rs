//! Ground truth: labelled attacks and benign events of a fleet, as written to `labels.json`.
//!
//! The format is normative and specified in `docs/specs/labels.md`. It is not specific to
//! synthetic fleets: a recorded fleet labelled by hand uses the same file.

use crate::error::Error;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::OnceLock;
use thingward_models::time::EpochMillis;
use thingward_models::{Metric, ThingName};

/// The labels format version this crate writes and reads.
pub const LABELS_VERSION: u32 = 1;

/// Whether an event is an attack (a detector should alarm) or benign (it should not).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EventClass {
    /// Malicious behaviour: alarms on its devices and metrics in its window are true positives.
    Attack,
    /// Unusual but legitimate behaviour: alarms on it are false positives.
    Benign,
}

/// What happened. Synthetic fleets use the named kinds; recorded fleets may use any other
/// kebab-case name, kept as [`EventKind::Other`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum EventKind {
    /// Participation in a synchronised DDoS: bytes and packets out ×10–×1000, new destinations.
    Ddos,
    /// A backdoor or a scan opening new listening ports, persistent.
    Backdoor,
    /// Bursts of authorization failures and connection attempts.
    CredentialStuffing,
    /// Credential stuffing kept just above the noise for days.
    CredentialStuffingLowSlow,
    /// A burst of many small messages.
    MessageFlood,
    /// Bytes out growing a few percent per day for weeks.
    ExfiltrationDrift,
    /// A device disconnecting and reconnecting in every slot for hours.
    ReconnectLoop,
    /// A fleet-wide firmware roll-out: a download and a reboot per device.
    FirmwareUpdate,
    /// Many devices rebooting repeatedly at once.
    RebootStorm,
    /// A region's devices offline, then reconnecting with a backlog.
    RegionalOutage,
    /// A firmware roll-out in waves (a canary, then growing waves) over hours: a download and
    /// a reboot per device, after which the new firmware sends more, persistently.
    StagedRollout,
    /// The MQTT broker restarts: nearly every device disconnects at once and reconnects with
    /// jittered back-off, flushing the messages it held.
    BrokerRestart,
    /// A region's link degrades for hours: its devices cannot hold a session and retry with
    /// exponential back-off (the broker sees the attempts), then reconnect together and upload
    /// their backlog.
    RegionalOutageReconnect,
    /// A daylight-saving change in a region: its devices' daily cycle moves by an hour in UTC,
    /// persistently.
    DstShift,
    /// Any other kind (recorded fleets).
    Other(String),
}

impl EventKind {
    /// Every named kind.
    pub const NAMED: &'static [EventKind] = &[
        Self::Ddos,
        Self::Backdoor,
        Self::CredentialStuffing,
        Self::CredentialStuffingLowSlow,
        Self::MessageFlood,
        Self::ExfiltrationDrift,
        Self::ReconnectLoop,
        Self::FirmwareUpdate,
        Self::RebootStorm,
        Self::RegionalOutage,
        Self::StagedRollout,
        Self::BrokerRestart,
        Self::RegionalOutageReconnect,
        Self::DstShift,
    ];

    /// The kebab-case name.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Ddos => "ddos",
            Self::Backdoor => "backdoor",
            Self::CredentialStuffing => "credential-stuffing",
            Self::CredentialStuffingLowSlow => "credential-stuffing-low-slow",
            Self::MessageFlood => "message-flood",
            Self::ExfiltrationDrift => "exfiltration-drift",
            Self::ReconnectLoop => "reconnect-loop",
            Self::FirmwareUpdate => "firmware-update",
            Self::RebootStorm => "reboot-storm",
            Self::RegionalOutage => "regional-outage",
            Self::StagedRollout => "staged-rollout",
            Self::BrokerRestart => "broker-restart",
            Self::RegionalOutageReconnect => "regional-outage-reconnect",
            Self::DstShift => "dst-shift",
            Self::Other(name) => name,
        }
    }

    /// The class of a named kind; `None` for [`EventKind::Other`].
    pub fn class(&self) -> Option<EventClass> {
        match self {
            Self::FirmwareUpdate
            | Self::RebootStorm
            | Self::RegionalOutage
            | Self::StagedRollout
            | Self::BrokerRestart
            | Self::RegionalOutageReconnect
            | Self::DstShift => Some(EventClass::Benign),
            Self::Other(_) => None,
            _ => Some(EventClass::Attack),
        }
    }
}

impl From<String> for EventKind {
    fn from(s: String) -> Self {
        Self::NAMED
            .iter()
            .find(|k| k.as_str() == s)
            .cloned()
            .unwrap_or(Self::Other(s))
    }
}

impl From<EventKind> for String {
    fn from(k: EventKind) -> Self {
        k.as_str().to_owned()
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One labelled event: these devices' these metrics were affected in `[start_ms, end_ms)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Event {
    /// Unique within the file.
    pub id: u32,
    /// Attack or benign.
    pub class: EventClass,
    /// What happened.
    pub kind: EventKind,
    /// The affected things.
    pub devices: Vec<ThingName>,
    /// The affected metrics.
    pub metrics: Vec<Metric>,
    /// First affected datapoint timestamp (ms since the epoch), inclusive.
    pub start_ms: EpochMillis,
    /// End of the window (ms since the epoch), exclusive.
    pub end_ms: EpochMillis,
    /// Free-text detail (magnitude, region, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Event {
    /// Whether `t` falls in `[start_ms, end_ms)`.
    pub fn covers(&self, t: EpochMillis) -> bool {
        (self.start_ms..self.end_ms).contains(&t)
    }

    /// Whether the event lists `metric`.
    pub fn touches(&self, metric: &Metric) -> bool {
        self.metrics.contains(metric)
    }
}

/// The labels of one fleet (synthetic or recorded).
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Labels {
    /// Format version, [`LABELS_VERSION`].
    pub version: u32,
    /// Where the data came from, e.g. `synthetic scenario "default" seed 7`.
    pub source: String,
    /// Start of the labelled span (ms), inclusive.
    pub start_ms: EpochMillis,
    /// End of the labelled span (ms), exclusive.
    pub end_ms: EpochMillis,
    /// End of the span a detector may train on (ms), exclusive; events may fall inside it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub training_end_ms: Option<EpochMillis>,
    /// The datapoint period (ms), when the data is regular.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot_ms: Option<EpochMillis>,
    /// The events, by id.
    pub events: Vec<Event>,
    /// Event indices by thing, built on first query.
    #[serde(skip)]
    index: OnceLock<HashMap<ThingName, Vec<u32>>>,
}

impl Clone for Labels {
    fn clone(&self) -> Self {
        Self {
            version: self.version,
            source: self.source.clone(),
            start_ms: self.start_ms,
            end_ms: self.end_ms,
            training_end_ms: self.training_end_ms,
            slot_ms: self.slot_ms,
            events: self.events.clone(),
            index: OnceLock::new(),
        }
    }
}

impl PartialEq for Labels {
    fn eq(&self, other: &Self) -> bool {
        self.version == other.version
            && self.source == other.source
            && self.start_ms == other.start_ms
            && self.end_ms == other.end_ms
            && self.training_end_ms == other.training_end_ms
            && self.slot_ms == other.slot_ms
            && self.events == other.events
    }
}

impl Labels {
    /// Labels over `[start_ms, end_ms)` with no events yet.
    pub fn new(source: String, start_ms: EpochMillis, end_ms: EpochMillis) -> Self {
        Self {
            version: LABELS_VERSION,
            source,
            start_ms,
            end_ms,
            training_end_ms: None,
            slot_ms: None,
            events: Vec::new(),
            index: OnceLock::new(),
        }
    }

    /// Reads and checks a `labels.json`.
    ///
    /// # Errors
    /// [`Error::Io`], [`Error::Json`], or [`Error::Labels`] for a wrong version or a
    /// duplicate id.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(Error::io(path))?;
        let labels: Self = serde_json::from_str(&text)?;
        labels.check()?;
        Ok(labels)
    }

    /// Writes the labels as pretty JSON.
    ///
    /// # Errors
    /// [`Error::Io`] or [`Error::Json`].
    pub fn save(&self, path: &Path) -> Result<(), Error> {
        let text = serde_json::to_string_pretty(self)?;
        std::fs::write(path, text).map_err(Error::io(path))
    }

    fn check(&self) -> Result<(), Error> {
        if self.version != LABELS_VERSION {
            return Err(Error::Labels {
                reason: "unsupported labels version",
            });
        }
        let mut ids: Vec<u32> = self.events.iter().map(|e| e.id).collect();
        ids.sort_unstable();
        if ids.windows(2).any(|w| w[0] == w[1]) {
            return Err(Error::Labels {
                reason: "duplicate event id",
            });
        }
        if self.events.iter().any(|e| e.end_ms < e.start_ms) {
            return Err(Error::Labels {
                reason: "an event ends before it starts",
            });
        }
        Ok(())
    }

    fn index(&self) -> &HashMap<ThingName, Vec<u32>> {
        self.index.get_or_init(|| {
            let mut index: HashMap<ThingName, Vec<u32>> = HashMap::new();
            for (i, e) in self.events.iter().enumerate() {
                let i = u32::try_from(i).unwrap_or(u32::MAX);
                for d in &e.devices {
                    index.entry(d.clone()).or_default().push(i);
                }
            }
            index
        })
    }

    /// The events that list `thing`, in file order.
    pub fn events_of<'a>(&'a self, thing: &ThingName) -> impl Iterator<Item = &'a Event> + 'a {
        self.index()
            .get(thing)
            .into_iter()
            .flatten()
            .filter_map(|&i| self.events.get(i as usize))
    }

    /// The events that cover `thing`'s `metric` at `t`.
    pub fn events_at<'a>(
        &'a self,
        thing: &ThingName,
        metric: &'a Metric,
        t: EpochMillis,
    ) -> impl Iterator<Item = &'a Event> + 'a {
        self.events_of(thing)
            .filter(move |e| e.covers(t) && e.touches(metric))
    }

    /// The first attack covering `thing`'s `metric` at `t`.
    pub fn attacked(&self, thing: &ThingName, metric: &Metric, t: EpochMillis) -> Option<&Event> {
        self.events_of(thing)
            .find(|e| e.class == EventClass::Attack && e.covers(t) && e.touches(metric))
    }

    /// The first benign event covering `thing`'s `metric` at `t`.
    pub fn benign(&self, thing: &ThingName, metric: &Metric, t: EpochMillis) -> Option<&Event> {
        self.events_of(thing)
            .find(|e| e.class == EventClass::Benign && e.covers(t) && e.touches(metric))
    }

    /// Whether any attack ever touches `thing` (on any metric): such a device is not "clean"
    /// for false-positive rates.
    pub fn ever_attacked(&self, thing: &ThingName) -> bool {
        self.events_of(thing).any(|e| e.class == EventClass::Attack)
    }

    /// The attack events.
    pub fn attacks(&self) -> impl Iterator<Item = &Event> {
        self.events.iter().filter(|e| e.class == EventClass::Attack)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn thing(s: &str) -> ThingName {
        ThingName::try_from(s).expect("name")
    }

    fn sample() -> Labels {
        let mut l = Labels::new("test".into(), 0, 1_000_000);
        l.slot_ms = Some(300_000);
        l.events.push(Event {
            id: 0,
            class: EventClass::Attack,
            kind: EventKind::Ddos,
            devices: vec![thing("a"), thing("b")],
            metrics: vec![Metric::AllBytesOut],
            start_ms: 300_000,
            end_ms: 600_000,
            note: Some("x100".into()),
        });
        l.events.push(Event {
            id: 1,
            class: EventClass::Benign,
            kind: EventKind::Other("maintenance-window".into()),
            devices: vec![thing("a")],
            metrics: vec![Metric::AllBytesOut, Metric::NumDisconnects],
            start_ms: 0,
            end_ms: 900_000,
            note: None,
        });
        l
    }

    #[test]
    fn queries_respect_device_metric_and_half_open_window() {
        let l = sample();
        let a = thing("a");
        assert_eq!(
            l.attacked(&a, &Metric::AllBytesOut, 300_000).map(|e| e.id),
            Some(0)
        );
        assert!(l.attacked(&a, &Metric::AllBytesOut, 600_000).is_none());
        assert!(l.attacked(&a, &Metric::AllBytesIn, 400_000).is_none());
        assert!(
            l.attacked(&thing("c"), &Metric::AllBytesOut, 400_000)
                .is_none()
        );
        assert_eq!(
            l.benign(&a, &Metric::NumDisconnects, 0).map(|e| e.id),
            Some(1)
        );
        assert!(l.ever_attacked(&thing("b")));
        assert!(!l.ever_attacked(&thing("c")));
    }

    #[test]
    fn labels_round_trip_through_json_with_unknown_kinds() {
        let l = sample();
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("labels.json");
        l.save(&path).expect("saves");
        let text = std::fs::read_to_string(&path).expect("reads");
        assert!(text.contains("\"kind\": \"ddos\""));
        assert!(text.contains("\"startMs\": 300000"));
        let back = Labels::load(&path).expect("loads");
        assert_eq!(back, l);
        assert_eq!(
            back.events[1].kind,
            EventKind::Other("maintenance-window".into())
        );
    }

    #[test]
    fn duplicate_ids_are_refused() {
        let mut l = sample();
        l.events[1].id = 0;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("labels.json");
        l.save(&path).expect("saves");
        assert!(matches!(Labels::load(&path), Err(Error::Labels { .. })));
    }

    #[test]
    fn named_kinds_round_trip_and_have_classes() {
        for k in EventKind::NAMED {
            assert_eq!(&EventKind::from(k.as_str().to_owned()), k);
            assert!(k.class().is_some());
        }
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Labels>();
    }
}
