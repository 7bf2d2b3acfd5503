//! The metric catalog: the built-in Device Defender metrics and custom metrics, each with its
//! value kind, its side (broker or device) and what Detect may do with it.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// What a metric's values look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ValueKind {
    /// A single number (`count` for built-ins, `number` for custom metrics).
    Number,
    /// A list of numbers (custom `number-list`).
    NumberList,
    /// A list of strings (custom `string-list`).
    StringList,
    /// A list of IP addresses (`cidrs`).
    IpList,
    /// A list of ports (`ports`).
    PortList,
}

/// Where a metric is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricSide {
    /// Measured by the broker (cloud-side in AWS terms), reported through the batch endpoint.
    Cloud,
    /// Measured on the device and sent in its Device Defender report.
    Device,
    /// A custom metric, reported by the device.
    Custom,
}

/// The type of a custom metric (`CreateCustomMetric.metricType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CustomMetricType {
    /// `number`
    #[serde(rename = "number")]
    Number,
    /// `number-list`
    #[serde(rename = "number-list")]
    NumberList,
    /// `string-list`
    #[serde(rename = "string-list")]
    StringList,
    /// `ip-address-list`
    #[serde(rename = "ip-address-list")]
    IpAddressList,
}

impl CustomMetricType {
    /// The value kind of this custom metric type.
    pub fn value_kind(self) -> ValueKind {
        match self {
            Self::Number => ValueKind::Number,
            Self::NumberList => ValueKind::NumberList,
            Self::StringList => ValueKind::StringList,
            Self::IpAddressList => ValueKind::IpList,
        }
    }

    /// The AWS wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Number => "number",
            Self::NumberList => "number-list",
            Self::StringList => "string-list",
            Self::IpAddressList => "ip-address-list",
        }
    }

    /// Parses the AWS wire name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Number,
            Self::NumberList,
            Self::StringList,
            Self::IpAddressList,
        ]
        .into_iter()
        .find(|t| t.as_str() == s)
    }
}

macro_rules! builtin_metrics {
    ($( $variant:ident => $name:literal, $kind:ident, $side:ident, ml: $ml:literal, dim: $dim:literal, cumulative: $cum:literal; )*) => {
        /// A metric: one of the built-in `aws:` metrics or a custom metric by name.
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Metric {
            $(
                #[doc = concat!("`", $name, "`")]
                $variant,
            )*
            /// A custom metric defined with CreateCustomMetric.
            Custom(String),
        }

        impl Metric {
            /// Every built-in metric.
            pub const BUILTIN: &'static [Metric] = &[$(Metric::$variant),*];

            /// The metric's wire name (`aws:…` or the custom name).
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $name,)*
                    Self::Custom(name) => name,
                }
            }

            /// The value kind of a built-in metric; `None` for a custom metric, whose type lives
            /// in the custom-metric registry.
            pub fn builtin_kind(&self) -> Option<ValueKind> {
                match self {
                    $(Self::$variant => Some(ValueKind::$kind),)*
                    Self::Custom(_) => None,
                }
            }

            /// Where the metric is measured.
            pub fn side(&self) -> MetricSide {
                match self {
                    $(Self::$variant => MetricSide::$side,)*
                    Self::Custom(_) => MetricSide::Custom,
                }
            }

            /// Whether ML Detect supports this built-in metric (custom `number` metrics are
            /// ML-capable too; that depends on the registry).
            pub fn ml_capable(&self) -> bool {
                match self {
                    $(Self::$variant => $ml,)*
                    Self::Custom(_) => false,
                }
            }

            /// Whether a `TOPIC_FILTER` dimension may qualify this metric in Rules Detect.
            pub fn supports_dimension(&self) -> bool {
                match self {
                    $(Self::$variant => $dim,)*
                    Self::Custom(_) => false,
                }
            }

            /// Whether the metric is a count over an interval, so that `durationSeconds`
            /// aggregates it (by summing) over the window.
            pub fn is_cumulative(&self) -> bool {
                match self {
                    $(Self::$variant => $cum,)*
                    Self::Custom(_) => false,
                }
            }

            fn builtin_from_str(s: &str) -> Option<Self> {
                match s {
                    $($name => Some(Self::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

builtin_metrics! {
    MessageByteSize => "aws:message-byte-size", Number, Cloud, ml: true, dim: true, cumulative: false;
    NumMessagesSent => "aws:num-messages-sent", Number, Cloud, ml: true, dim: true, cumulative: true;
    NumMessagesReceived => "aws:num-messages-received", Number, Cloud, ml: true, dim: true, cumulative: true;
    NumAuthorizationFailures => "aws:num-authorization-failures", Number, Cloud, ml: true, dim: true, cumulative: true;
    SourceIpAddress => "aws:source-ip-address", IpList, Cloud, ml: false, dim: true, cumulative: false;
    NumConnectionAttempts => "aws:num-connection-attempts", Number, Cloud, ml: true, dim: false, cumulative: true;
    NumDisconnects => "aws:num-disconnects", Number, Cloud, ml: true, dim: false, cumulative: true;
    DisconnectDuration => "aws:disconnect-duration", Number, Cloud, ml: false, dim: false, cumulative: false;
    AllBytesOut => "aws:all-bytes-out", Number, Device, ml: true, dim: false, cumulative: true;
    AllBytesIn => "aws:all-bytes-in", Number, Device, ml: true, dim: false, cumulative: true;
    AllPacketsOut => "aws:all-packets-out", Number, Device, ml: true, dim: false, cumulative: true;
    AllPacketsIn => "aws:all-packets-in", Number, Device, ml: true, dim: false, cumulative: true;
    NumListeningTcpPorts => "aws:num-listening-tcp-ports", Number, Device, ml: true, dim: false, cumulative: false;
    NumListeningUdpPorts => "aws:num-listening-udp-ports", Number, Device, ml: true, dim: false, cumulative: false;
    NumEstablishedTcpConnections => "aws:num-established-tcp-connections", Number, Device, ml: true, dim: false, cumulative: false;
    DestinationIpAddresses => "aws:destination-ip-addresses", IpList, Device, ml: false, dim: false, cumulative: false;
    ListeningTcpPorts => "aws:listening-tcp-ports", PortList, Device, ml: false, dim: false, cumulative: false;
    ListeningUdpPorts => "aws:listening-udp-ports", PortList, Device, ml: false, dim: false, cumulative: false;
}

/// Why a metric name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetricParseError {
    /// An `aws:` name that is not a built-in metric.
    #[error("unknown built-in metric '{0}'")]
    UnknownBuiltin(String),
    /// A custom metric name that breaks the name rules.
    #[error(transparent)]
    Name(#[from] crate::names::NameError),
}

impl FromStr for Metric {
    type Err = MetricParseError;

    fn from_str(s: &str) -> Result<Self, MetricParseError> {
        if let Some(m) = Self::builtin_from_str(s) {
            return Ok(m);
        }
        if s.starts_with("aws:") {
            return Err(MetricParseError::UnknownBuiltin(
                s.chars().take(128).collect(),
            ));
        }
        crate::names::check_resource_name("metric name", s)?;
        Ok(Self::Custom(s.to_owned()))
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Metric {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Metric {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thirteen_builtin_metrics_are_ml_capable() {
        assert_eq!(
            Metric::BUILTIN.iter().filter(|m| m.ml_capable()).count(),
            13
        );
    }

    #[test]
    fn names_round_trip() {
        for m in Metric::BUILTIN {
            assert_eq!(&m.as_str().parse::<Metric>().expect("parses"), m);
        }
        assert_eq!(
            "battery_pct".parse::<Metric>(),
            Ok(Metric::Custom("battery_pct".into()))
        );
        assert!(matches!(
            "aws:nope".parse::<Metric>(),
            Err(MetricParseError::UnknownBuiltin(_))
        ));
        assert!("bad name".parse::<Metric>().is_err());
    }

    #[test]
    fn metric_serializes_as_its_wire_name() {
        let json = serde_json::to_string(&Metric::AllBytesOut).expect("serializes");
        assert_eq!(json, "\"aws:all-bytes-out\"");
        let back: Metric = serde_json::from_str(&json).expect("deserializes");
        assert_eq!(back, Metric::AllBytesOut);
        assert!(serde_json::from_str::<Metric>("\"aws:bogus\"").is_err());
    }
}
