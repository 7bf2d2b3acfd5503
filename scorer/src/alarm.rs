//! The alarm state machine of one (thing, profile, behavior), and the transitions it emits.
//!
//! ```text
//!              violating × consecutiveDatapointsToAlarm
//!   Normal ───────────────────────────────────────────────▶ InAlarm ──┐ violating:
//!     ▲                                                        │  ◀───┘ StillInAlarm
//!     └──────── compliant × consecutiveDatapointsToClear ──────┘
//! ```
//!
//! A compliant datapoint resets the violating streak of a normal behavior; a violating one
//! resets the compliant streak of an alarming behavior (and reports `StillInAlarm`, so the
//! binary can update `lastViolationValue`). Datapoints with no verdict (see
//! [`crate::rules::Rule::violates`]) do not touch the state.
//!
//! The state is two bytes. The scorer stores it in a hash map keyed by the packed
//! (thing id, behavior id) pair — a `u64` — so an entry is [`ENTRY_BYTES`] = 16 bytes plus one
//! control byte of hashbrown overhead, and an entry exists only while the behavior is in alarm
//! or has a streak going: the normal, quiet case costs nothing.

use std::sync::Arc;
use thingward_models::ml::MlExplanation;
use thingward_models::time::EpochMillis;
use thingward_models::{ThingName, Value, ViolationEventType};

/// What happened to an alarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Change {
    /// A violation event: in-alarm, alarm-cleared or alarm-invalidated.
    Event(ViolationEventType),
    /// A violating datapoint while already in alarm: the binary updates `lastViolationValue`
    /// and `lastViolationTime` of the active violation.
    StillInAlarm,
}

/// One change of one (thing, profile, behavior) alarm, for the binary to record.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    /// The thing.
    pub thing: ThingName,
    /// The security profile's name.
    pub profile: Arc<str>,
    /// The behavior's name.
    pub behavior: Arc<str>,
    /// What happened.
    pub change: Change,
    /// The evaluated value (the window sum for `durationSeconds` behaviors); None for
    /// invalidations.
    pub value: Option<Value>,
    /// The datapoint's timestamp, or `now` for invalidations.
    pub at: EpochMillis,
    /// The behavior's `suppressAlerts`: record the change but send no alert. Invalidations
    /// carry the value of the last compilation the scorer saw (`false` for an alarm that was
    /// only restored).
    pub suppressed: bool,
    /// For ML behaviors going into or staying in alarm: why (expected range, baseline, level,
    /// model version). Boxed so that rule transitions stay small.
    pub explanation: Option<Box<MlExplanation>>,
    /// Set when the change is recorded but not notified because something bigger explains it.
    pub cause: Option<Cause>,
    /// The device incident the alarm belongs to: one id for the alarms of one thing in one
    /// profile that overlap (or follow within the incident linger). None for invalidations of
    /// alarms restored from the store.
    pub incident: Option<u64>,
}

/// Why an alarm change is recorded without a notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cause {
    /// A fleet event (pending or open) covers the behavior: one event, not one alarm per
    /// device ([`crate::fleet`]).
    FleetEvent(crate::fleet::FleetEventId),
    /// The datapoint fell in an operator's maintenance window.
    Maintenance,
}

/// The state of one (thing, profile, behavior).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AlarmState {
    in_alarm: bool,
    /// Violating datapoints in a row while normal; compliant ones in a row while in alarm.
    streak: u8,
}

/// The size of one stored alarm entry: the packed `u64` key and an [`AlarmState`].
pub const ENTRY_BYTES: usize = std::mem::size_of::<(u64, AlarmState)>();

impl AlarmState {
    /// A behavior already in alarm (restored from the store at start-up).
    pub fn in_alarm() -> Self {
        Self {
            in_alarm: true,
            streak: 0,
        }
    }

    /// Whether the behavior is in alarm.
    pub fn is_in_alarm(self) -> bool {
        self.in_alarm
    }

    /// Whether the state is the quiet default (normal, no streak), which need not be stored.
    pub fn is_quiet(self) -> bool {
        self == Self::default()
    }

    /// Advances the machine by one verdict, with the behavior's `consecutiveDatapointsToAlarm`
    /// and `consecutiveDatapointsToClear` (each at least 1), and says what changed.
    pub fn step(&mut self, violating: bool, to_alarm: u8, to_clear: u8) -> Option<Change> {
        match (self.in_alarm, violating) {
            (false, false) => {
                self.streak = 0;
                None
            }
            (false, true) => {
                self.streak = self.streak.saturating_add(1);
                if self.streak >= to_alarm {
                    *self = Self::in_alarm();
                    Some(Change::Event(ViolationEventType::InAlarm))
                } else {
                    None
                }
            }
            (true, true) => {
                self.streak = 0;
                Some(Change::StillInAlarm)
            }
            (true, false) => {
                self.streak = self.streak.saturating_add(1);
                if self.streak >= to_clear {
                    *self = Self::default();
                    Some(Change::Event(ViolationEventType::AlarmCleared))
                } else {
                    None
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IN: Option<Change> = Some(Change::Event(ViolationEventType::InAlarm));
    const CLEARED: Option<Change> = Some(Change::Event(ViolationEventType::AlarmCleared));
    const STILL: Option<Change> = Some(Change::StillInAlarm);

    fn run(verdicts: &[bool], to_alarm: u8, to_clear: u8) -> Vec<Option<Change>> {
        let mut s = AlarmState::default();
        verdicts
            .iter()
            .map(|&v| s.step(v, to_alarm, to_clear))
            .collect()
    }

    #[test]
    fn one_and_one() {
        assert_eq!(
            run(&[true, true, false, false, true], 1, 1),
            [IN, STILL, CLEARED, None, IN]
        );
    }

    #[test]
    fn alarm_needs_n_in_a_row() {
        assert_eq!(
            run(&[true, true, false, true, true, true, true], 3, 1),
            [None, None, None, None, None, IN, STILL]
        );
    }

    #[test]
    fn clear_needs_m_in_a_row() {
        assert_eq!(
            run(&[true, false, true, false, false, false, true], 1, 2),
            [IN, None, STILL, None, CLEARED, None, IN]
        );
    }

    #[test]
    fn state_is_small() {
        assert_eq!(std::mem::size_of::<AlarmState>(), 2);
        assert_eq!(ENTRY_BYTES, 16);
        assert!(AlarmState::default().is_quiet());
        assert!(!AlarmState::in_alarm().is_quiet());
    }
}
