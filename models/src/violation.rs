//! Violations: their states, event types and the AWS `ActiveViolation` / `ViolationEvent` shapes.

use crate::behavior::{Behavior, ConfidenceLevel};
use crate::ml::MlExplanation;
use crate::time::{EpochMillis, epoch_seconds, epoch_seconds_opt};
use crate::value::MetricValue;
use serde::{Deserialize, Serialize};

/// What a person decided about a violation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum VerificationState {
    /// Not an attack.
    FalsePositive,
    /// Real but harmless.
    BenignPositive,
    /// A real problem.
    TruePositive,
    /// Not decided.
    Unknown,
}

impl VerificationState {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::FalsePositive => "FALSE_POSITIVE",
            Self::BenignPositive => "BENIGN_POSITIVE",
            Self::TruePositive => "TRUE_POSITIVE",
            Self::Unknown => "UNKNOWN",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::FalsePositive,
            Self::BenignPositive,
            Self::TruePositive,
            Self::Unknown,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }
}

/// A transition of a violation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ViolationEventType {
    /// The behavior went into alarm.
    #[serde(rename = "in-alarm")]
    InAlarm,
    /// The behavior is normal again.
    #[serde(rename = "alarm-cleared")]
    AlarmCleared,
    /// The alarm no longer means anything (thing silent for 2 days, behavior or profile removed).
    #[serde(rename = "alarm-invalidated")]
    AlarmInvalidated,
}

impl ViolationEventType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InAlarm => "in-alarm",
            Self::AlarmCleared => "alarm-cleared",
            Self::AlarmInvalidated => "alarm-invalidated",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::InAlarm, Self::AlarmCleared, Self::AlarmInvalidated]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

/// `ViolationEventAdditionalInfo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ViolationEventAdditionalInfo {
    /// The confidence level of an ML violation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confidence_level: Option<ConfidenceLevel>,
}

/// The AWS `ActiveViolation` shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActiveViolation {
    /// Stable id of the violation.
    pub violation_id: String,
    /// The thing in violation.
    pub thing_name: String,
    /// The profile whose behavior is violated.
    pub security_profile_name: String,
    /// The behavior, as it was when the violation started.
    pub behavior: Behavior,
    /// The last violating value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_violation_value: Option<MetricValue>,
    /// ML confidence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub violation_event_additional_info: Option<ViolationEventAdditionalInfo>,
    /// What a person decided.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verification_state: Option<VerificationState>,
    /// Why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verification_state_description: Option<String>,
    /// When the last violating datapoint arrived.
    #[serde(
        with = "epoch_seconds_opt",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub last_violation_time: Option<EpochMillis>,
    /// When the alarm began.
    #[serde(with = "epoch_seconds")]
    pub violation_start_time: EpochMillis,
    /// thingward's extra for ML violations: why the last violating datapoint was anomalous
    /// (AWS clients ignore the field).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub ml_explanation: Option<MlExplanation>,
    /// thingward's extra: the device incident the violation belongs to (16 hex digits).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub incident_id: Option<String>,
    /// thingward's extra: the fleet event that explained the alarm (16 hex digits).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub fleet_event_id: Option<String>,
    /// thingward's extra: the maintenance window the alarm fell in.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub maintenance_window_id: Option<String>,
}

/// The AWS `ViolationEvent` shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ViolationEvent {
    /// The violation this event belongs to.
    pub violation_id: String,
    /// The thing.
    pub thing_name: String,
    /// The profile.
    pub security_profile_name: String,
    /// The behavior.
    pub behavior: Behavior,
    /// The value that caused the transition.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metric_value: Option<MetricValue>,
    /// ML confidence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub violation_event_additional_info: Option<ViolationEventAdditionalInfo>,
    /// The transition.
    pub violation_event_type: ViolationEventType,
    /// What a person decided.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verification_state: Option<VerificationState>,
    /// Why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verification_state_description: Option<String>,
    /// When the transition happened.
    #[serde(with = "epoch_seconds")]
    pub violation_event_time: EpochMillis,
    /// thingward's extra on the `in-alarm` event of an ML violation: why the datapoint that
    /// opened it was anomalous (AWS clients ignore the field).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub ml_explanation: Option<MlExplanation>,
    /// thingward's extra: the device incident the event belongs to (16 hex digits).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub incident_id: Option<String>,
    /// thingward's extra: the fleet event that explained (held) the change (16 hex digits).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub fleet_event_id: Option<String>,
    /// thingward's extra: the maintenance window the change fell in (held).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub maintenance_window_id: Option<String>,
}
