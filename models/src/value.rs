//! Metric values: the AWS `MetricValue` wire shape and thingward's internal `Value`.

use crate::metric::{Metric, ValueKind};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// The AWS `MetricValue` shape: exactly one member is set, matching the metric's type.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricValue {
    /// Built-in numeric metrics (`long`, ≥ 0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<i64>,
    /// IP-list metrics: CIDRs or bare addresses.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cidrs: Option<Vec<String>>,
    /// Port-list metrics (0..=65535).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ports: Option<Vec<i64>>,
    /// Custom `number` metrics.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub number: Option<f64>,
    /// Custom `number-list` metrics.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub numbers: Option<Vec<f64>>,
    /// Custom `string-list` metrics.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strings: Option<Vec<String>>,
}

impl MetricValue {
    /// How many members are set (a valid criteria value has exactly one).
    pub fn members_set(&self) -> usize {
        usize::from(self.count.is_some())
            + usize::from(self.cidrs.is_some())
            + usize::from(self.ports.is_some())
            + usize::from(self.number.is_some())
            + usize::from(self.numbers.is_some())
            + usize::from(self.strings.is_some())
    }
}

/// A datapoint's value, typed by kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Value {
    /// A single number.
    Number(f64),
    /// A list of numbers.
    Numbers(Vec<f64>),
    /// A list of strings.
    Strings(Vec<String>),
    /// A list of IP addresses.
    Ips(Vec<IpAddr>),
    /// A list of ports.
    Ports(Vec<u16>),
}

impl Value {
    /// The kind of this value.
    pub fn kind(&self) -> ValueKind {
        match self {
            Self::Number(_) => ValueKind::Number,
            Self::Numbers(_) => ValueKind::NumberList,
            Self::Strings(_) => ValueKind::StringList,
            Self::Ips(_) => ValueKind::IpList,
            Self::Ports(_) => ValueKind::PortList,
        }
    }

    /// The number, for a numeric value.
    pub fn as_number(&self) -> Option<f64> {
        match self {
            Self::Number(x) => Some(*x),
            _ => None,
        }
    }

    /// The value in AWS's `MetricValue` shape: built-in numbers as `count`, custom numbers as
    /// `number`.
    pub fn to_metric_value(&self, metric: &Metric) -> MetricValue {
        let mut mv = MetricValue::default();
        match self {
            Self::Number(x) if matches!(metric, Metric::Custom(_)) => mv.number = Some(*x),
            Self::Number(x) => mv.count = Some(x.round().max(0.0) as i64),
            Self::Numbers(v) => mv.numbers = Some(v.clone()),
            Self::Strings(v) => mv.strings = Some(v.clone()),
            Self::Ips(v) => mv.cidrs = Some(v.iter().map(ToString::to_string).collect()),
            Self::Ports(v) => mv.ports = Some(v.iter().map(|&p| i64::from(p)).collect()),
        }
        mv
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_value_sets_one_member_in_aws_shape() {
        let v = Value::Number(42.4).to_metric_value(&Metric::AllBytesOut);
        assert_eq!(serde_json::to_string(&v).expect("json"), r#"{"count":42}"#);
        let v = Value::Number(1.5).to_metric_value(&Metric::Custom("t".into()));
        assert_eq!(
            serde_json::to_string(&v).expect("json"),
            r#"{"number":1.5}"#
        );
        let v = Value::Ports(vec![22, 443]).to_metric_value(&Metric::ListeningTcpPorts);
        assert_eq!(
            serde_json::to_string(&v).expect("json"),
            r#"{"ports":[22,443]}"#
        );
        assert_eq!(v.members_set(), 1);
    }
}
