//! A UTC time of day at which a daily job is due: the nightly training run (`--train-at`) and
//! scheduled audits (`--audit-at`), both checked against the service clock.

use chrono::{DateTime, NaiveTime, TimeDelta};
use thingward_models::time::EpochMillis;

/// A UTC time of day (`HH:MM`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimeOfDay(NaiveTime);

impl TimeOfDay {
    /// `hour:minute` UTC (out-of-range values give midnight).
    pub(crate) fn hm(hour: u32, minute: u32) -> Self {
        Self(NaiveTime::from_hms_opt(hour, minute, 0).unwrap_or(NaiveTime::MIN))
    }

    /// The time of day.
    pub(crate) fn time(self) -> NaiveTime {
        self.0
    }

    /// The most recent such time at or before `now`.
    pub(crate) fn last_slot(self, now: EpochMillis) -> EpochMillis {
        let Some(t) = DateTime::from_timestamp_millis(now) else {
            return now;
        };
        let today = t.date_naive().and_time(self.0).and_utc();
        let slot = if today <= t {
            today
        } else {
            today - TimeDelta::days(1)
        };
        slot.timestamp_millis()
    }
}

impl std::str::FromStr for TimeOfDay {
    type Err = String;

    /// `HH:MM` (24-hour, UTC).
    fn from_str(s: &str) -> Result<Self, String> {
        NaiveTime::parse_from_str(s, "%H:%M")
            .map(Self)
            .map_err(|_| format!("'{s}' is not a UTC time of day as HH:MM (e.g. 02:00)"))
    }
}

impl std::fmt::Display for TimeOfDay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0.format("%H:%M"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-01-05T00:00:00Z.
    const T0: i64 = 1_767_571_200_000;
    const HOUR: i64 = 3_600_000;

    #[test]
    fn parses_hh_mm_and_finds_the_last_slot() {
        let at: TimeOfDay = "02:30".parse().expect("parses");
        assert_eq!(at.to_string(), "02:30");
        assert_eq!(TimeOfDay::hm(2, 0).to_string(), "02:00");
        assert!("2:3x".parse::<TimeOfDay>().is_err());
        assert!("25:00".parse::<TimeOfDay>().is_err());
        // Before today's 02:30: yesterday's; at and after it: today's.
        assert_eq!(at.last_slot(T0 + HOUR), T0 - 24 * HOUR + 5 * HOUR / 2);
        assert_eq!(at.last_slot(T0 + 5 * HOUR / 2), T0 + 5 * HOUR / 2);
        assert_eq!(at.last_slot(T0 + 23 * HOUR), T0 + 5 * HOUR / 2);
    }
}
