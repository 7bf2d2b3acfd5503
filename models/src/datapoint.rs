//! The unit of everything downstream of ingestion: one metric value of one thing at one time.

use crate::metric::Metric;
use crate::names::ThingName;
use crate::time::EpochMillis;
use crate::value::Value;
use serde::{Deserialize, Serialize};

/// One metric value of one thing at one time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Datapoint {
    /// The thing the value belongs to.
    pub thing: ThingName,
    /// The metric.
    pub metric: Metric,
    /// The MQTT topic a cloud-side message metric was measured on, for `TOPIC_FILTER`
    /// dimensions; None for device-side metrics.
    pub topic: Option<String>,
    /// When the value was measured (the report's receipt time for device reports).
    pub timestamp: EpochMillis,
    /// The value.
    pub value: Value,
}
