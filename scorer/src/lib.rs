//! Detect scoring: turns each datapoint into alarm transitions for the security profiles that watch it.
//!
//! The crate is the hot path between ingestion and the violation store. The binary compiles each
//! security profile once ([`CompiledProfile::compile`]) and feeds every datapoint to
//! [`Scorer::observe`], which evaluates the profile's rule behaviors (static and statistical),
//! and to [`Scorer::observe_ml`], which judges its ML behaviors against their models
//! ([`ml`]); both push the resulting [`Transition`]s through the same alarm state machine.
//!
//! The pieces, in the order a datapoint meets them:
//! - [`dimension`]: `TOPIC_FILTER` dimensions decide whether a behavior sees the datapoint;
//! - [`window`]: `durationSeconds` sums cumulative metrics over the window;
//! - [`rules`]: the compiled criteria decide whether the (aggregated) value violates;
//! - [`statistical`]: `statisticalThreshold` pools the devices' values into a percentile;
//! - [`alarm`]: consecutive violating / compliant datapoints move the alarm state machine.
//!
//! Semantics follow AWS IoT Device Defender: criteria describe what is *normal*, and a
//! datapoint violates when its criteria are not satisfied.
//!
//! ```
//! use thingward_models::{CustomMetricType, Datapoint, Metric, ThingName, Value};
//! use thingward_models::profile::SecurityProfile;
//! use thingward_scorer::{Change, CompiledProfile, Registry, Scorer};
//!
//! struct NoRegistry;
//! impl Registry for NoRegistry {
//!     fn custom_metric_type(&self, _: &str) -> Option<CustomMetricType> { None }
//!     fn dimension_filters(&self, _: &str) -> Option<Vec<String>> { None }
//! }
//!
//! let profile: SecurityProfile = serde_json::from_str(r#"{
//!     "securityProfileName": "p", "securityProfileArn": "arn", "version": 1,
//!     "creationDate": 0, "lastModifiedDate": 0,
//!     "behaviors": [{"name": "few-ports", "metric": "aws:num-listening-tcp-ports",
//!                    "criteria": {"comparisonOperator": "less-than", "value": {"count": 5}}}]
//! }"#)?;
//! let compiled = CompiledProfile::compile(&profile, &NoRegistry)?;
//! let mut scorer = Scorer::new();
//! let mut out = Vec::new();
//! let dp = Datapoint {
//!     thing: ThingName::try_from("cam-1")?,
//!     metric: Metric::NumListeningTcpPorts,
//!     topic: None,
//!     timestamp: 1_000,
//!     value: Value::Number(9.0),
//! };
//! scorer.observe(&compiled, &dp, &mut out);
//! assert_eq!(out.len(), 1);
//! assert!(matches!(out[0].change, Change::Event(thingward_models::ViolationEventType::InAlarm)));
//! # Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
//! ```

#![warn(missing_docs)]

pub mod alarm;
pub mod dimension;
pub mod fleet;
mod hash;
mod incident;
pub mod ml;
pub mod profile;
pub mod rules;
mod scorer;
pub mod statistical;
pub mod window;

pub use alarm::{Cause, Change, Transition};
pub use fleet::{FleetChange, FleetEvent, FleetEventId, FleetParams, FleetPhase, Released};
pub use incident::INCIDENT_LINGER_MS;
pub use ml::{CompiledModel, Drift, Judgement, LiveModels, ModelError, ModelSet};
pub use profile::{CompiledBehavior, CompiledProfile};
pub use rules::Rule;
pub use scorer::{Scorer, ScorerParams};

/// What the scorer needs to know about the account's registry when compiling a profile (the
/// one registry interface, defined in `thingward-models`).
pub use thingward_models::registry::Registry;

use thingward_models::{ComparisonOperator, ValueKind};

/// Why a profile could not be compiled. Each names the behavior at fault.
///
/// Profiles are validated at the API boundary (`thingward_models::behavior::validate_behaviors`),
/// so these mostly mean the registry changed under a stored profile (a custom metric or
/// dimension was deleted) or a profile bypassed validation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The behavior watches a custom metric the registry does not know.
    #[error("behavior '{behavior}': custom metric '{metric}' does not exist")]
    UnknownCustomMetric {
        /// The behavior's name.
        behavior: String,
        /// The custom metric's name.
        metric: String,
    },
    /// The behavior's dimension does not exist in the registry.
    #[error("behavior '{behavior}': dimension '{dimension}' does not exist")]
    UnknownDimension {
        /// The behavior's name.
        behavior: String,
        /// The dimension's name.
        dimension: String,
    },
    /// The behavior has no criteria, or criteria with none of value, statisticalThreshold or
    /// mlDetectionConfig.
    #[error(
        "behavior '{behavior}': criteria with a value, statisticalThreshold or mlDetectionConfig is required"
    )]
    MissingCriteria {
        /// The behavior's name.
        behavior: String,
    },
    /// A rule behavior has no comparison operator.
    #[error("behavior '{behavior}': comparisonOperator is required")]
    MissingOperator {
        /// The behavior's name.
        behavior: String,
    },
    /// The operator does not suit the metric's value kind.
    #[error("behavior '{behavior}': operator '{}' does not suit {kind:?} values", operator.as_str())]
    OperatorMismatch {
        /// The behavior's name.
        behavior: String,
        /// The operator.
        operator: ComparisonOperator,
        /// The metric's value kind.
        kind: ValueKind,
    },
    /// The criteria value does not set the member the operator needs.
    #[error("behavior '{behavior}': criteria value lacks the member '{member}' that '{}' compares with", operator.as_str())]
    ValueMismatch {
        /// The behavior's name.
        behavior: String,
        /// The operator.
        operator: ComparisonOperator,
        /// The `MetricValue` member that was expected.
        member: &'static str,
    },
    /// A number in the criteria is not finite.
    #[error("behavior '{behavior}': the criteria value must be a finite number")]
    NonFiniteValue {
        /// The behavior's name.
        behavior: String,
    },
    /// A CIDR in the criteria does not parse.
    #[error("behavior '{behavior}': '{cidr}' is not a CIDR or IP address")]
    BadCidr {
        /// The behavior's name.
        behavior: String,
        /// The offending entry (truncated to 64 characters).
        cidr: String,
    },
    /// A port in the criteria is outside 0..=65535.
    #[error("behavior '{behavior}': port {port} is outside 0..65535")]
    BadPort {
        /// The behavior's name.
        behavior: String,
        /// The offending port.
        port: i64,
    },
    /// A statistical threshold without a statistic, or on a non-numeric metric.
    #[error("behavior '{behavior}': statisticalThreshold needs a statistic and a numeric metric")]
    BadStatisticalThreshold {
        /// The behavior's name.
        behavior: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn public_types_are_send_and_sync() {
        assert_send_sync::<Scorer>();
        assert_send_sync::<CompiledProfile>();
        assert_send_sync::<Transition>();
        assert_send_sync::<Error>();
        assert_send_sync::<Rule>();
    }
}
