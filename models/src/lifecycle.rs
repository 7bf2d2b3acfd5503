//! An ML Detect behavior's model lifecycle state, as the models index stores it and the trainer's
//! lifecycle (`thingward_trainer::lifecycle`) decides it.

use crate::time::EpochMillis;

/// `BehaviorModelTrainingSummary.modelStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ModelStatus {
    /// No model yet.
    PendingBuild,
    /// A model serves and is refreshed nightly.
    Active,
    /// Builds kept failing for 30 days; no model serves.
    Expired,
}

impl ModelStatus {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PendingBuild => "PENDING_BUILD",
            Self::Active => "ACTIVE",
            Self::Expired => "EXPIRED",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::PendingBuild, Self::Active, Self::Expired]
            .into_iter()
            .find(|m| m.as_str() == s)
    }
}

/// What the lifecycle remembers of one behavior between runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LifecycleState {
    /// The status.
    pub status: ModelStatus,
    /// The behavior's first datapoint (`trainingDataCollectionStartDate`); None while nothing
    /// was collected.
    pub collection_start: Option<EpochMillis>,
    /// The last successful build (`lastModelRefreshDate`).
    pub last_refresh: Option<EpochMillis>,
    /// The version of the last model built (0: none).
    pub version: u64,
    /// The first failed attempt since the last success (None: the last attempt succeeded).
    pub failing_since: Option<EpochMillis>,
    /// Failed attempts since the last success.
    pub retries: u32,
}

impl Default for LifecycleState {
    /// A behavior just added: pending, nothing collected.
    fn default() -> Self {
        Self {
            status: ModelStatus::PendingBuild,
            collection_start: None,
            last_refresh: None,
            version: 0,
            failing_since: None,
            retries: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_names_round_trip() {
        for s in [
            ModelStatus::PendingBuild,
            ModelStatus::Active,
            ModelStatus::Expired,
        ] {
            assert_eq!(ModelStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(ModelStatus::parse("active"), None);
    }
}
