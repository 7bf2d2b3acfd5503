//! AWS's ML Detect model lifecycle as a pure function of the history and the clock.
//!
//! Per (security profile, ML behavior), evaluated at every nightly run:
//!
//! - **`PENDING_BUILD`** until the behavior has collected for [`COLLECTION_MS`] (14 days since
//!   its first datapoint) **and** the trailing [`WINDOW_MS`] window holds at least
//!   [`MIN_DATAPOINTS`] (25,000) datapoints of the metric. While the 14 days are not over the
//!   run waits; it is not a failed attempt.
//! - **`ACTIVE`** once a model was built; it is rebuilt (refreshed) at every nightly run.
//! - A run whose window is short, or whose fit fails, is a failed attempt. The build is retried
//!   at each nightly run; after [`RETRY_MS`] (30 days) of failed attempts without a success the
//!   behavior is **`EXPIRED`**: an ACTIVE model whose refreshes keep failing stops serving too.
//!   EXPIRED is final for that behavior (remove and re-add it to start over).
//!
//! `datapointsCollectionPercentage` = min(100, 100 × window datapoints / 25,000).
//!
//! The functions here decide; the caller reads the history, fits, writes artifacts and stores
//! the [`LifecycleState`] it gets back.

pub use thingward_models::lifecycle::{LifecycleState, ModelStatus};
use thingward_models::time::EpochMillis;

const DAY_MS: i64 = 24 * 3600 * 1000;
/// The trailing training window: 14 days.
pub const WINDOW_MS: i64 = 14 * DAY_MS;
/// How long a behavior collects before its first build: 14 days.
pub const COLLECTION_MS: i64 = 14 * DAY_MS;
/// Datapoints the window needs for a build.
pub const MIN_DATAPOINTS: u64 = 25_000;
/// How long failed attempts are retried before the behavior expires: 30 days.
pub const RETRY_MS: i64 = 30 * DAY_MS;

/// What a run should do for one behavior.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// Expired: nothing to do.
    Retired,
    /// Still in the 14-day collection period: no attempt.
    Collecting,
    /// The window is short of [`MIN_DATAPOINTS`]: a failed attempt (record it with
    /// [`after_attempt`] and [`Attempt::Failed`]).
    Short,
    /// Read the window and fit model `version`.
    Build {
        /// The version the new model gets.
        version: u64,
    },
}

/// The outcome of an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// A model of this version was built and installed.
    Built {
        /// Its version.
        version: u64,
    },
    /// The window was short or the fit failed.
    Failed,
}

/// Decides what the run at `now` does, given the behavior's state, the first datapoint it has
/// ever collected (`first_datapoint`, used when the state has none yet) and the datapoints in
/// the trailing window. Returns the plan and the state with the collection start filled in.
pub fn plan(
    state: &LifecycleState,
    now: EpochMillis,
    first_datapoint: Option<EpochMillis>,
    window_datapoints: u64,
) -> (Plan, LifecycleState) {
    let mut next = *state;
    next.collection_start = state.collection_start.or(first_datapoint);
    let plan = if state.status == ModelStatus::Expired {
        Plan::Retired
    } else if state.status == ModelStatus::PendingBuild
        && next
            .collection_start
            .is_none_or(|start| now.saturating_sub(start) < COLLECTION_MS)
    {
        Plan::Collecting
    } else if window_datapoints < MIN_DATAPOINTS {
        Plan::Short
    } else {
        Plan::Build {
            version: state.version + 1,
        }
    };
    (plan, next)
}

/// The state after an attempt at `now`.
pub fn after_attempt(state: &LifecycleState, now: EpochMillis, attempt: Attempt) -> LifecycleState {
    let mut next = *state;
    match attempt {
        Attempt::Built { version } => {
            next.status = ModelStatus::Active;
            next.version = version;
            next.last_refresh = Some(now);
            next.failing_since = None;
            next.retries = 0;
        }
        Attempt::Failed => {
            let since = *next.failing_since.get_or_insert(now);
            next.retries = next.retries.saturating_add(1);
            if now.saturating_sub(since) >= RETRY_MS {
                next.status = ModelStatus::Expired;
            }
        }
    }
    next
}

/// `datapointsCollectionPercentage`: min(100, 100 × datapoints / [`MIN_DATAPOINTS`]).
pub fn collection_percentage(window_datapoints: u64) -> f64 {
    (100.0 * window_datapoints as f64 / MIN_DATAPOINTS as f64).min(100.0)
}

/// Whether a model of a behavior in `state` may serve.
pub fn serves(state: &LifecycleState) -> bool {
    state.status == ModelStatus::Active
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_767_571_200_000;

    /// One nightly run: plan, then record a build (if planned and `fit_ok`) or a failure.
    fn night(
        s: &LifecycleState,
        day: i64,
        datapoints: u64,
        fit_ok: bool,
    ) -> (Plan, LifecycleState) {
        let now = T0 + day * DAY_MS;
        let (p, s) = plan(s, now, Some(T0), datapoints);
        let s = match p {
            Plan::Build { version } if fit_ok => after_attempt(&s, now, Attempt::Built { version }),
            Plan::Build { .. } | Plan::Short => after_attempt(&s, now, Attempt::Failed),
            Plan::Collecting | Plan::Retired => s,
        };
        (p, s)
    }

    #[test]
    fn pending_until_fourteen_days_and_enough_datapoints_then_active() {
        let mut s = LifecycleState::default();
        for day in 0..14 {
            let (p, next) = night(&s, day, 1_000_000, true);
            assert_eq!(p, Plan::Collecting, "day {day}");
            assert_eq!(next.status, ModelStatus::PendingBuild);
            assert_eq!(next.retries, 0, "collecting is not a failed attempt");
            s = next;
        }
        assert_eq!(s.collection_start, Some(T0));
        let (p, s) = night(&s, 14, MIN_DATAPOINTS, true);
        assert_eq!(p, Plan::Build { version: 1 });
        assert_eq!(s.status, ModelStatus::Active);
        assert_eq!(s.last_refresh, Some(T0 + 14 * DAY_MS));
        // Refreshed every night, the version growing.
        let (p, s) = night(&s, 15, MIN_DATAPOINTS, true);
        assert_eq!(p, Plan::Build { version: 2 });
        assert_eq!((s.version, s.last_refresh), (2, Some(T0 + 15 * DAY_MS)));
    }

    #[test]
    fn nothing_collected_stays_pending_without_dates() {
        let (p, s) = plan(&LifecycleState::default(), T0 + 100 * DAY_MS, None, 0);
        assert_eq!(p, Plan::Collecting);
        assert_eq!(s.collection_start, None);
        assert_eq!(s.status, ModelStatus::PendingBuild);
    }

    #[test]
    fn short_data_is_retried_for_thirty_days_then_expires() {
        let mut s = LifecycleState::default();
        for day in 0..14 {
            s = night(&s, day, 100, true).1;
        }
        for day in 14..44 {
            let (p, next) = night(&s, day, MIN_DATAPOINTS - 1, true);
            assert_eq!(p, Plan::Short, "day {day}");
            assert_eq!(
                next.status,
                ModelStatus::PendingBuild,
                "day {day}: still retrying"
            );
            s = next;
        }
        assert_eq!(s.retries, 30);
        assert_eq!(s.failing_since, Some(T0 + 14 * DAY_MS));
        let (p, s) = night(&s, 44, MIN_DATAPOINTS - 1, true);
        assert_eq!(p, Plan::Short);
        assert_eq!(s.status, ModelStatus::Expired);
        assert!(!serves(&s));
        // Final: even plenty of data builds nothing.
        let (p, s) = night(&s, 45, 10 * MIN_DATAPOINTS, true);
        assert_eq!(p, Plan::Retired);
        assert_eq!(s.status, ModelStatus::Expired);
    }

    #[test]
    fn a_success_resets_the_retry_clock() {
        let mut s = LifecycleState::default();
        for day in 0..14 {
            s = night(&s, day, 0, true).1;
        }
        for day in 14..40 {
            s = night(&s, day, 10, true).1;
        }
        assert_eq!(s.retries, 26);
        let (_, s) = night(&s, 40, MIN_DATAPOINTS, true);
        assert_eq!(
            (s.status, s.retries, s.failing_since),
            (ModelStatus::Active, 0, None)
        );
    }

    #[test]
    fn an_active_model_whose_refresh_keeps_failing_expires_after_thirty_days() {
        let mut s = LifecycleState::default();
        for day in 0..=14 {
            s = night(&s, day, MIN_DATAPOINTS, true).1;
        }
        assert!(serves(&s));
        for day in 15..45 {
            s = night(&s, day, MIN_DATAPOINTS, false).1;
            assert!(serves(&s), "day {day}: the last good model keeps serving");
        }
        let (_, s) = night(&s, 45, MIN_DATAPOINTS, false);
        assert_eq!(s.status, ModelStatus::Expired);
        assert_eq!(s.version, 1, "no model was built after day 14");
        assert_eq!(s.last_refresh, Some(T0 + 14 * DAY_MS));
    }

    #[test]
    fn collection_percentage_is_capped() {
        assert_eq!(collection_percentage(0), 0.0);
        assert_eq!(collection_percentage(7_352), 29.408);
        assert_eq!(collection_percentage(25_000), 100.0);
        assert_eq!(collection_percentage(1_000_000), 100.0);
    }
}
