//! The nightly training schedule: a UTC time of day (`--train-at HH:MM`), checked against the
//! service clock. Each behavior is trained once per scheduled time: a behavior is due when its
//! last run (or, never run, its creation) precedes the most recent scheduled time. Driven by
//! the injectable clock, so a test can move through a month of nights in seconds.

use super::{Quiet, RunScope, Training};
use crate::periodic::{self, FirstRun};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How often the scheduler looks at the clock.
pub(crate) const TICK: Duration = Duration::from_secs(30);

/// The UTC time of day at which the nightly run is due (`--train-at`).
pub(crate) type TrainAt = crate::time_of_day::TimeOfDay;

/// Checks every `tick` whether behaviors are due and trains them, off the async runtime,
/// until `stop` changes. A failed run is logged and retried at the next tick.
pub(crate) async fn run_loop(
    training: Arc<Training>,
    at: TrainAt,
    tick: Duration,
    stop: watch::Receiver<bool>,
) {
    periodic::every(
        "nightly training",
        tick,
        FirstRun::AtStart,
        stop,
        move || {
            let scope = RunScope {
                profile: None,
                due_at: Some(at),
            };
            match training.run(&scope, &Quiet) {
                Ok(report) if !report.behaviors.is_empty() => {
                    tracing::info!(
                        behaviors = report.behaviors.len(),
                        "Nightly training run finished"
                    );
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "Nightly training run failed; will retry"),
            }
        },
    )
    .await;
}
