//! The shared vocabulary of thingward: metrics, datapoints, behaviors, security profiles and violations.
//!
//! Wire shapes follow the AWS IoT Device Defender JSON field for field (camelCase, the same
//! optional members), so a body boto3 sends deserializes into these types and what thingward
//! returns parses in boto3. Domain values that have rules (names, metrics, operators) are typed
//! here so that nothing past the API boundary is a bare string.

pub mod behavior;
pub mod codec;
pub mod datapoint;
pub mod lifecycle;
pub mod metric;
pub mod ml;
pub mod names;
pub mod profile;
pub mod registry;
pub mod time;
pub mod value;
pub mod violation;

pub use behavior::{
    Behavior, BehaviorCriteria, BehaviorCriteriaType, ComparisonOperator, ConfidenceLevel,
    DimensionOperator, MachineLearningDetectionConfig, MetricDimension, Statistic,
    StatisticalThreshold,
};
pub use datapoint::Datapoint;
pub use metric::{CustomMetricType, Metric, MetricSide, ValueKind};
pub use names::{NameError, ThingName};
pub use profile::{Target, TargetParseError};
pub use value::{MetricValue, Value};
pub use violation::{VerificationState, ViolationEventType};
