//! The nightly training schedule: a UTC time of day (`--train-at HH:MM`), checked against the
//! service clock. Each behavior is trained once per scheduled time: a behavior is due when its
//! last run (or, never run, its creation) precedes the most recent scheduled time. Driven by
//! the injectable clock, so a test can move through a month of nights in seconds.

use super::{Quiet, RunScope, Training};
use chrono::{DateTime, NaiveTime, TimeDelta};
use std::sync::Arc;
use std::time::Duration;
use thingward_models::time::EpochMillis;
use tokio::sync::watch;

/// How often the scheduler looks at the clock.
pub(crate) const TICK: Duration = Duration::from_secs(30);

/// A UTC time of day at which the nightly run is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TrainAt(NaiveTime);

impl Default for TrainAt {
    /// 02:00 UTC.
    fn default() -> Self {
        Self(NaiveTime::from_hms_opt(2, 0, 0).unwrap_or(NaiveTime::MIN))
    }
}

impl std::str::FromStr for TrainAt {
    type Err = String;

    /// `HH:MM` (24-hour, UTC).
    fn from_str(s: &str) -> Result<Self, String> {
        NaiveTime::parse_from_str(s, "%H:%M")
            .map(Self)
            .map_err(|_| format!("'{s}' is not a UTC time of day as HH:MM (e.g. 02:00)"))
    }
}

impl std::fmt::Display for TrainAt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0.format("%H:%M"))
    }
}

impl TrainAt {
    /// The most recent scheduled time at or before `now`.
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

/// Checks every `tick` whether behaviors are due and trains them, off the async runtime,
/// until `stop` changes. A failed run is logged and retried at the next tick.
pub(crate) async fn run_loop(
    training: Arc<Training>,
    at: TrainAt,
    tick: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            _ = interval.tick() => {
                let t = Arc::clone(&training);
                let scope = RunScope { profile: None, due_at: Some(at) };
                match tokio::task::spawn_blocking(move || t.run(&scope, &Quiet)).await {
                    Ok(Ok(report)) if !report.behaviors.is_empty() => {
                        tracing::info!(behaviors = report.behaviors.len(), "Nightly training run finished");
                    }
                    Ok(Ok(_)) => {}
                    Ok(Err(error)) => tracing::warn!(%error, "Nightly training run failed; will retry"),
                    Err(error) => tracing::error!(%error, "Nightly training task panicked"),
                }
            }
        }
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
        let at: TrainAt = "02:30".parse().expect("parses");
        assert_eq!(at.to_string(), "02:30");
        assert_eq!(TrainAt::default().to_string(), "02:00");
        assert!("2:3x".parse::<TrainAt>().is_err());
        assert!("25:00".parse::<TrainAt>().is_err());
        // Before today's 02:30: yesterday's; at and after it: today's.
        assert_eq!(at.last_slot(T0 + HOUR), T0 - 24 * HOUR + 5 * HOUR / 2);
        assert_eq!(at.last_slot(T0 + 5 * HOUR / 2), T0 + 5 * HOUR / 2);
        assert_eq!(at.last_slot(T0 + 23 * HOUR), T0 + 5 * HOUR / 2);
    }
}
