//! Fitting a behavior model.
use crate::{Error, TrainingData};
use thingward_models::ml::BehaviorModel;
use thingward_models::time::EpochMillis;

/// Unchecked fit parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct FitParams {}
/// Checked fit parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct FitValidParams {}
/// Invalid parameters.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid")]
pub struct FitParamsError;
/// Which model is being built.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelIdentity {
    /// The profile.
    pub profile: String,
    /// The behavior.
    pub behavior: String,
    /// The metric's wire name.
    pub metric: String,
    /// The version to give the model.
    pub version: u64,
    /// When it is trained.
    pub trained_at: EpochMillis,
}
/// Fits.
///
/// # Errors
/// No data.
pub fn fit(_p: &FitValidParams, _id: &ModelIdentity, _data: &TrainingData) -> Result<BehaviorModel, Error> {
    Err(Error::NoData)
}
