//! Security profiles (the AWS shape) and the targets they attach to.

use crate::behavior::{Behavior, MetricDimension};
use crate::metric::Metric;
use crate::time::{EpochMillis, epoch_seconds};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// A security profile as DescribeSecurityProfile returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecurityProfile {
    /// The profile's name.
    pub security_profile_name: String,
    /// Its ARN.
    pub security_profile_arn: String,
    /// Free text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub security_profile_description: Option<String>,
    /// What normal looks like.
    #[serde(default)]
    pub behaviors: Vec<Behavior>,
    /// Where alerts go, keyed by target type (`SNS` in AWS).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alert_targets: Option<BTreeMap<String, AlertTarget>>,
    /// Legacy list of extra metrics to retain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub additional_metrics_to_retain: Option<Vec<String>>,
    /// Extra metrics to retain for ListMetricValues.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub additional_metrics_to_retain_v2: Option<Vec<MetricToRetain>>,
    /// Starts at 1, grows by 1 per update.
    pub version: i64,
    /// When it was created.
    #[serde(with = "epoch_seconds")]
    pub creation_date: EpochMillis,
    /// When it last changed.
    #[serde(with = "epoch_seconds")]
    pub last_modified_date: EpochMillis,
    /// Metrics export destination.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_export_config: Option<MetricsExportConfig>,
}

impl SecurityProfile {
    /// Whether the profile retains `metric` for ListMetricValues: a behavior watches it or it
    /// is listed in `additionalMetricsToRetain(V2)`.
    pub fn retains(&self, metric: &Metric) -> bool {
        self.behaviors
            .iter()
            .any(|b| b.metric.as_ref() == Some(metric))
            || self
                .additional_metrics_to_retain_v2
                .iter()
                .flatten()
                .any(|m| &m.metric == metric)
            || self
                .additional_metrics_to_retain
                .iter()
                .flatten()
                .any(|m| m == metric.as_str())
    }
}

/// An alert target (`AlertTarget`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertTarget {
    /// The destination.
    pub alert_target_arn: String,
    /// The role used to deliver (kept for compatibility; required for `SNS`, optional for
    /// thingward's own target types, empty when absent).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub role_arn: String,
}

/// A metric kept for ListMetricValues beyond those behaviors watch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricToRetain {
    /// The metric.
    pub metric: Metric,
    /// An optional dimension.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metric_dimension: Option<MetricDimension>,
    /// Whether to export it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub export_metric: Option<bool>,
}

/// `MetricsExportConfig`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricsExportConfig {
    /// The MQTT topic to publish to.
    pub mqtt_topic: String,
    /// The role (kept for compatibility).
    pub role_arn: String,
}

/// What a security profile can be attached to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Target {
    /// `all/things`: every thing, registered or not.
    AllThings,
    /// `all/registered-things`.
    RegisteredThings,
    /// `all/unregistered-things`.
    UnregisteredThings,
    /// `thinggroup/{name}`.
    ThingGroup(String),
}

/// Why a target ARN was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "'{0}' is not a security profile target ARN (arn:aws:iot:REGION:ACCOUNT:all/things, all/registered-things, all/unregistered-things or thinggroup/NAME)"
)]
pub struct TargetParseError(pub String);

impl Target {
    /// Parses a target ARN, accepting any region and account.
    ///
    /// # Errors
    /// When the ARN is not one of the four target forms.
    pub fn parse_arn(arn: &str) -> Result<Self, TargetParseError> {
        let err = || TargetParseError(arn.chars().take(256).collect());
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        if parts.len() != 6 || parts[0] != "arn" || parts[2] != "iot" {
            return Err(err());
        }
        match parts[5] {
            "all/things" => Ok(Self::AllThings),
            "all/registered-things" => Ok(Self::RegisteredThings),
            "all/unregistered-things" => Ok(Self::UnregisteredThings),
            other => {
                let group = other.strip_prefix("thinggroup/").ok_or_else(err)?;
                crate::names::check_resource_name("thing group name", group).map_err(|_| err())?;
                Ok(Self::ThingGroup(group.to_owned()))
            }
        }
    }

    /// The resource part of the ARN (`all/things`, `thinggroup/g`).
    pub fn resource(&self) -> String {
        match self {
            Self::AllThings => "all/things".into(),
            Self::RegisteredThings => "all/registered-things".into(),
            Self::UnregisteredThings => "all/unregistered-things".into(),
            Self::ThingGroup(g) => format!("thinggroup/{g}"),
        }
    }

    /// The full ARN in `region` and `account`.
    pub fn arn(&self, region: &str, account: &str) -> String {
        format!("arn:aws:iot:{region}:{account}:{}", self.resource())
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.resource())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_arns_parse_and_print() {
        for (arn, t) in [
            (
                "arn:aws:iot:us-east-1:123456789012:all/things",
                Target::AllThings,
            ),
            (
                "arn:aws:iot:eu-west-1:1:all/registered-things",
                Target::RegisteredThings,
            ),
            (
                "arn:aws:iot:r:a:all/unregistered-things",
                Target::UnregisteredThings,
            ),
            (
                "arn:aws:iot:r:a:thinggroup/cams",
                Target::ThingGroup("cams".into()),
            ),
        ] {
            assert_eq!(Target::parse_arn(arn), Ok(t.clone()));
        }
        assert_eq!(
            Target::ThingGroup("g".into()).arn("us-east-1", "123456789012"),
            "arn:aws:iot:us-east-1:123456789012:thinggroup/g"
        );
        assert!(Target::parse_arn("arn:aws:iot:r:a:thing/x").is_err());
        assert!(Target::parse_arn("nonsense").is_err());
        assert!(Target::parse_arn("arn:aws:iot:r:a:thinggroup/bad name").is_err());
    }
}
