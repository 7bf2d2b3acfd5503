//! ML Detect training: turns a behavior's trailing history window into a calibrated [`BehaviorModel`].
//!
//! The pieces, in the order a nightly run meets them:
//! - [`window`]: reads the behavior's metric for the profile's devices over the trailing window
//!   from the history's daily Parquet partitions (polars lazy scans), leaving out datapoints that
//!   were in alarm or verified true positives;
//! - [`fit`]: robust per-device baselines (location, scale, hour-of-week offsets) shrunk toward
//!   cohorts of similar devices (linfa k-means), then thresholds per confidence level calibrated
//!   on held-out days ([`calibrate`]: empirical quantiles with a generalised Pareto tail, a
//!   Gaussian tail for the drift mean);
//! - [`lifecycle`]: AWS's model lifecycle (PENDING_BUILD → ACTIVE, daily refresh, retries,
//!   EXPIRED) as a pure function of the history and the clock.
//!
//! The trainer produces plain `thingward_models::ml` structs; the scorer never sees polars or
//! linfa.

#![warn(missing_docs)]

pub mod calibrate;
pub mod fit;
pub mod lifecycle;
pub mod window;

pub use fit::{FitParams, FitParamsError, FitValidParams, ModelIdentity, fit};
pub use thingward_models::ml::BehaviorModel;

use thingward_models::time::EpochMillis;

/// One device's datapoints of the behavior's metric in the window, in time order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeviceSeries {
    /// The thing.
    pub thing: String,
    /// Timestamps (epoch ms), non-decreasing.
    pub timestamps: Vec<EpochMillis>,
    /// Values, parallel to `timestamps`.
    pub values: Vec<f64>,
}

/// The training window of one (profile, behavior).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrainingData {
    /// Window start (inclusive, epoch ms).
    pub window_start: EpochMillis,
    /// Window end (exclusive).
    pub window_end: EpochMillis,
    /// Per device, sorted by thing name.
    pub devices: Vec<DeviceSeries>,
    /// Datapoints of the window left out (in alarm or verified true positive).
    pub excluded: u64,
}

impl TrainingData {
    /// Datapoints available for fitting.
    pub fn datapoints(&self) -> u64 {
        self.devices.iter().map(|d| d.values.len() as u64).sum()
    }
}

/// Why training failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading the history failed.
    #[error("reading the history window: {0}")]
    Polars(#[from] polars::error::PolarsError),
    /// The history's partitions could not be listed or scanned.
    #[error("reading the history: {0}")]
    History(#[from] thingward_history::Error),
    /// The window holds no usable datapoints.
    #[error("no datapoints to train on")]
    NoData,
    /// Clustering devices into cohorts failed.
    #[error("clustering devices into cohorts: {0}")]
    Cohorts(#[source] linfa_clustering::KMeansError),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn public_types_are_send_and_sync() {
        assert_send_sync::<TrainingData>();
        assert_send_sync::<FitValidParams>();
        assert_send_sync::<Error>();
        assert_send_sync::<BehaviorModel>();
    }
}
