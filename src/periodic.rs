//! The one periodic-task loop of the service's background work (rolling the history, the
//! minute sweep of silent things, outbox retention, the nightly training and the audit
//! schedulers): every period, run a blocking job off the async worker threads
//! (`spawn_blocking`), one run at a time, until shutdown.
//!
//! Periods are wall-clock (tokio) time; a job that cares about the date reads the service
//! clock itself, so a test clock moved forward is seen at the next tick. A tick missed while a
//! run was still going is delayed, not caught up in a burst. Shutdown is noticed between runs:
//! a run in progress finishes first.

use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;

/// When a periodic job first runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FirstRun {
    /// At start, then every period.
    AtStart,
    /// One period after start.
    AfterOnePeriod,
}

/// Runs `job` every `period` on a blocking thread until `stop` changes (or its sender is
/// dropped). A panicking run is logged at ERROR under `task` and the next tick runs again; the
/// job logs its own failures.
pub(crate) async fn every<F>(
    task: &'static str,
    period: Duration,
    first: FirstRun,
    mut stop: watch::Receiver<bool>,
    job: F,
) where
    F: Fn() + Send + Sync + 'static,
{
    let job = Arc::new(job);
    let mut interval = tokio::time::interval(period.max(Duration::from_millis(1)));
    interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
    if first == FirstRun::AfterOnePeriod {
        // The first tick completes at once.
        interval.tick().await;
    }
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            _ = interval.tick() => {
                let job = Arc::clone(&job);
                if let Err(error) = tokio::task::spawn_blocking(move || job()).await {
                    tracing::error!(task, %error, "A periodic task panicked");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    async fn runs_within(first: FirstRun, period: Duration, wait: Duration) -> usize {
        let runs = Arc::new(AtomicUsize::new(0));
        let (stop_tx, stop_rx) = watch::channel(false);
        let counted = Arc::clone(&runs);
        let task = tokio::spawn(every("test", period, first, stop_rx, move || {
            counted.fetch_add(1, Ordering::SeqCst);
        }));
        tokio::time::sleep(wait).await;
        let _ = stop_tx.send(true);
        task.await.expect("the loop stops on shutdown");
        runs.load(Ordering::SeqCst)
    }

    #[tokio::test]
    async fn runs_at_start_or_after_one_period_and_stops_on_shutdown() {
        let hour = Duration::from_secs(3600);
        // Generous waits: on a loaded 2-core machine a first run can take tens of milliseconds
        // to be scheduled.
        let short = Duration::from_millis(500);
        assert_eq!(runs_within(FirstRun::AtStart, hour, short).await, 1);
        assert_eq!(runs_within(FirstRun::AfterOnePeriod, hour, short).await, 0);
        let long = Duration::from_millis(1000);
        assert!(runs_within(FirstRun::AtStart, Duration::from_millis(5), long).await >= 2);
    }

    #[tokio::test]
    async fn a_panicking_run_does_not_stop_the_loop() {
        let runs = Arc::new(AtomicUsize::new(0));
        let (stop_tx, stop_rx) = watch::channel(false);
        let counted = Arc::clone(&runs);
        let task = tokio::spawn(every(
            "test",
            Duration::from_millis(5),
            FirstRun::AtStart,
            stop_rx,
            move || {
                assert!(
                    counted.fetch_add(1, Ordering::SeqCst) > 0,
                    "first run panics"
                );
            },
        ));
        // Printing the panic's backtrace can take a while on a loaded machine.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while runs.load(Ordering::SeqCst) < 2 {
            assert!(
                std::time::Instant::now() < deadline,
                "no run after the panic"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let _ = stop_tx.send(true);
        task.await.expect("the loop stops on shutdown");
    }
}
