//! Fleet events: one record per event Detect's scorer found (a large share of a profile's
//! devices moving together on an ML behavior), its phase, shares and verification state; and
//! the changes Detect records with the violation changes of the same batch.

use crate::StoreError;
use serde::{Deserialize, Serialize};
use thingward_models::time::EpochMillis;
use thingward_models::violation::VerificationState;

/// A fleet event or incident id as it appears on the wire: 16 lower-case hex digits.
pub fn wire_id(id: u64) -> String {
    format!("{id:016x}")
}

/// Parses [`wire_id`]'s spelling (1..16 hex digits, any case).
pub fn parse_wire_id(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 16 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(s, 16).ok()
}

/// Where a fleet event is in its life (`docs/specs/fleet-events.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FleetPhase {
    /// Several devices alarm together; their alarms are held while it is decided.
    Pending,
    /// A large share of the fleet (or a cohort) moved together.
    Open,
    /// The fleet is back to normal (or the service restarted while it was open).
    Closed,
    /// It never spread: the held alarms were released.
    Dissolved,
}

impl FleetPhase {
    /// Every phase, in life order.
    pub const ALL: [Self; 4] = [Self::Pending, Self::Open, Self::Closed, Self::Dissolved];

    /// The wire name (`PENDING`, `OPEN`, `CLOSED`, `DISSOLVED`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Open => "OPEN",
            Self::Closed => "CLOSED",
            Self::Dissolved => "DISSOLVED",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// Whether the event is still live in a running scorer.
    pub fn is_active(self) -> bool {
        matches!(self, Self::Pending | Self::Open)
    }
}

/// One behavior of a fleet event (the wire shape of `behaviors[]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FleetBehavior {
    /// The behavior's name.
    pub behavior_name: String,
    /// Its metric.
    pub metric: String,
    /// Hot devices in the trailing window at the last change.
    pub devices: u32,
    /// Hot ÷ seen devices at the last change.
    pub share: f64,
    /// The most hot devices at once.
    pub peak_devices: u32,
    /// The highest share.
    pub peak_share: f64,
}

/// One model cohort's part in a fleet event (the wire shape of `cohorts[]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FleetCohort {
    /// The cohort's name in the model.
    pub cohort: String,
    /// The most hot devices of the cohort at once.
    pub peak_devices: u32,
    /// The highest share of the cohort's seen devices.
    pub peak_share: f64,
}

/// A fleet event as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct FleetEventRecord {
    /// Its id.
    pub id: u64,
    /// The security profile.
    pub profile: String,
    /// Its phase.
    pub phase: FleetPhase,
    /// When its first hot device was seen.
    pub start_ms: EpochMillis,
    /// When it closed or dissolved.
    pub end_ms: Option<EpochMillis>,
    /// The behaviors that moved together.
    pub behaviors: Vec<FleetBehavior>,
    /// The cohorts involved.
    pub cohorts: Vec<FleetCohort>,
    /// Device alarms it explained (held).
    pub explained_alarms: u32,
    /// What a person decided about it.
    pub verification_state: Option<VerificationState>,
    /// Why.
    pub verification_description: Option<String>,
}

impl FleetEventRecord {
    /// The wire shape (`GET /thingward/v1/fleet-events/{id}`, and the feed's body): times in
    /// epoch seconds, the id as 16 hex digits, `endTime` and the verification members only
    /// when set.
    pub fn wire(&self) -> serde_json::Value {
        use thingward_models::time::millis_to_seconds;
        let mut out = serde_json::json!({
            "fleetEventId": wire_id(self.id),
            "securityProfileName": self.profile,
            "phase": self.phase.as_str(),
            "startTime": millis_to_seconds(self.start_ms),
            "behaviors": self.behaviors,
            "cohorts": self.cohorts,
            "explainedAlarmCount": self.explained_alarms,
        });
        if let Some(end) = self.end_ms {
            out["endTime"] = millis_to_seconds(end).into();
        }
        if let Some(v) = self.verification_state {
            out["verificationState"] = v.as_str().into();
        }
        if let Some(d) = &self.verification_description {
            out["verificationStateDescription"] = d.clone().into();
        }
        out
    }
}

/// What happened to a fleet event, as Detect records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FleetChangeKind {
    /// It started holding alarms (recorded, not notified).
    Pending,
    /// It opened (notified).
    Opened,
    /// A share peaked or a behavior joined (recorded, not notified).
    Updated,
    /// It closed (notified); the listed alarms are released.
    Closed,
    /// It dissolved (not notified); the listed alarms are released.
    Dissolved,
}

impl FleetChangeKind {
    /// The feed's spelling of a notified change (`opened`, `closed`), None for the others.
    pub fn notified(self) -> Option<&'static str> {
        match self {
            Self::Opened => Some("opened"),
            Self::Closed => Some("closed"),
            Self::Pending | Self::Updated | Self::Dissolved => None,
        }
    }
}

/// A held device alarm a fleet event no longer explains: its held violation events get their
/// feed rows now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleasedAlarm {
    /// The thing.
    pub thing: String,
    /// The behavior's name.
    pub behavior: String,
}

/// One fleet event change to record.
#[derive(Debug, Clone, PartialEq)]
pub struct FleetEventChange {
    /// What happened.
    pub kind: FleetChangeKind,
    /// The event as it is now (its verification state is the store's, not taken from here).
    pub event: FleetEventRecord,
    /// Alarms to notify now (Closed, Dissolved).
    pub released: Vec<ReleasedAlarm>,
}

/// Filters of the fleet events listing.
#[derive(Debug, Clone, Default)]
pub struct FleetEventFilter {
    /// Only this profile's events.
    pub profile: Option<String>,
    /// Only events in this phase.
    pub phase: Option<FleetPhase>,
    /// Only events that were live at or after this time (end ≥ it, or still live).
    pub start_ms: Option<EpochMillis>,
    /// Only events that started at or before this time.
    pub end_ms: Option<EpochMillis>,
}

/// The fleet events part of the store interface ([`crate::Store`]). Changes are recorded by
/// [`crate::ViolationStore::detect_apply`], in the transaction of the batch that caused them.
pub trait FleetEventStore {
    /// One event.
    ///
    /// # Errors
    /// Storage failures.
    fn fleet_event_get(&self, id: u64) -> Result<Option<FleetEventRecord>, StoreError>;

    /// Events matching `f`, newest first, paged.
    ///
    /// # Errors
    /// Storage failures.
    fn fleet_events_list(
        &self,
        f: &FleetEventFilter,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<FleetEventRecord>, StoreError>;

    /// Sets the verification state of event `id`; false when there is no such event.
    ///
    /// # Errors
    /// Storage failures.
    fn fleet_event_verify(
        &self,
        id: u64,
        state: VerificationState,
        description: Option<&str>,
    ) -> Result<bool, StoreError>;

    /// Ends the events a previous process left live (its scorer, which tracked them, is
    /// gone): an OPEN event is CLOSED at `now` (and the closing is notified); a PENDING one
    /// is DISSOLVED and the alarms it still held are notified, as a dissolving event's are.
    /// Returns how many were ended.
    ///
    /// # Errors
    /// Storage failures.
    fn fleet_events_end_stale(&self, now: EpochMillis) -> Result<usize, StoreError>;

    /// Events per (profile, phase) — the `/metrics` families.
    ///
    /// # Errors
    /// Storage failures.
    fn fleet_event_counts(&self) -> Result<Vec<(String, FleetPhase, i64)>, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_ids_are_16_hex_digits_both_ways() {
        let id = (1_765_000_000u64 << 32) + 7;
        let s = wire_id(id);
        assert_eq!(s.len(), 16);
        assert_eq!(parse_wire_id(&s), Some(id));
        assert_eq!(parse_wire_id(&s.to_uppercase()), Some(id));
        assert_eq!(wire_id(1), "0000000000000001");
        for bad in ["", "xyz", "00000000000000001", "-1", "1 "] {
            assert_eq!(parse_wire_id(bad), None, "{bad}");
        }
    }
}
