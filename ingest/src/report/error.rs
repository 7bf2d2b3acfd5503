//! Why a report is rejected: [`ReportError`], whose `Display` text is the reason sent to the
//! device and whose [`ReportError::code`] is the error code of the rejection (MQTT and HTTP
//! alike), and [`Problem`], what is wrong with one field.

use std::fmt;

use thingward_models::{CustomMetricType, NameError, ThingName};

use super::keys::{CUSTOM_METRICS, METRICS, custom_value_key};
use crate::quoted;

/// What is wrong with one field of a report.
#[derive(Debug, Clone, PartialEq)]
pub enum Problem {
    /// A required field is absent.
    Missing,
    /// The field holds something else than allowed.
    Invalid {
        /// What is allowed, in words ("a non-negative integer").
        expected: &'static str,
        /// A short description of what was found.
        found: String,
    },
    /// The field appears more than once in its map (also: under its long and its short name).
    Duplicate,
    /// The report has neither `metrics` nor `custom_metrics`.
    NoMetrics,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing => f.write_str("is missing"),
            Self::Invalid { expected, found } => write!(f, "must be {expected}; got {found}"),
            Self::Duplicate => {
                f.write_str("is given more than once (a long and a short name count as one field)")
            }
            Self::NoMetrics => write!(
                f,
                "must contain {} ({}) or {} ({})",
                METRICS.long, METRICS.short, CUSTOM_METRICS.long, CUSTOM_METRICS.short
            ),
        }
    }
}

/// Why a report was rejected. The Display text is the reason sent to the device.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The payload is larger than the configured cap (not parsed, so no report id).
    #[error("report is {len} bytes long; at most {max} bytes are allowed")]
    PayloadTooLarge {
        /// The payload length in bytes.
        len: usize,
        /// The cap.
        max: usize,
    },
    /// The payload on a `json` topic is not JSON.
    #[error("report is not valid JSON: {0}")]
    InvalidJson(#[source] serde_json::Error),
    /// The payload on a `cbor` topic is not CBOR.
    #[error("report is not valid CBOR: {}", cbor_reason(.0))]
    InvalidCbor(#[source] ciborium::de::Error<std::io::Error>),
    /// The payload on a `cbor` topic holds more than one CBOR item.
    #[error("report is not valid CBOR: {trailing} bytes follow the report")]
    TrailingCbor {
        /// How many bytes follow the first item.
        trailing: usize,
    },
    /// The report decodes but breaks a rule of §3.
    #[error("{path} {problem}")]
    InvalidPayload {
        /// The report id, when the header holds a valid one.
        report_id: Option<i64>,
        /// Where in the report, with long names (`metrics.network_stats.bytes_in`).
        path: String,
        /// What is wrong there.
        problem: Problem,
    },
    /// A custom metric that is not defined (CreateCustomMetric).
    #[error(
        "custom metric '{name}' is not defined; create it with CreateCustomMetric before reporting it"
    )]
    UnknownMetric {
        /// The report id.
        report_id: i64,
        /// The metric name, quoted safely.
        name: String,
    },
    /// A custom metric value of another type than the metric is defined with.
    #[error(
        "custom metric '{name}' is defined as {}, so its value must be given as {}; the report gives {}",
        .expected.as_str(),
        custom_value_key(*.expected),
        custom_value_key(*.found)
    )]
    WrongMetricType {
        /// The report id.
        report_id: i64,
        /// The metric name.
        name: String,
        /// The type the metric is defined with.
        expected: CustomMetricType,
        /// The type of the value in the report.
        found: CustomMetricType,
    },
    /// The thing already sent a report with this id (AWS discards these, §3.2).
    #[error(
        "report id {report_id} was already received from this thing; report ids must be unique"
    )]
    DuplicateReportId {
        /// The repeated id.
        report_id: i64,
    },
    /// The thing name in the topic breaks the thing-name rules (§3.1).
    #[error("the thing name in the topic is invalid: {source}")]
    InvalidThingName {
        /// The rule the name breaks.
        source: NameError,
    },
}

fn cbor_reason(e: &ciborium::de::Error<std::io::Error>) -> String {
    use ciborium::de::Error;
    match e {
        Error::Io(_) => "unexpected end of input".to_owned(),
        Error::Syntax(offset) => format!("syntax error at byte {offset}"),
        Error::Semantic(Some(offset), msg) => format!("{msg} (item at byte {offset})"),
        Error::Semantic(None, msg) => msg.clone(),
        Error::RecursionLimitExceeded => "nested too deeply".to_owned(),
    }
}

impl ReportError {
    /// The error code sent in `statusDetails.ErrorCode` of a rejection.
    pub fn code(&self) -> &'static str {
        match self {
            Self::PayloadTooLarge { .. } => "PayloadTooLarge",
            Self::InvalidJson(_) => "InvalidJson",
            Self::InvalidCbor(_) | Self::TrailingCbor { .. } => "InvalidCbor",
            Self::InvalidPayload { .. } | Self::WrongMetricType { .. } => "InvalidPayload",
            Self::UnknownMetric { .. } => "UnknownMetric",
            Self::DuplicateReportId { .. } => "DuplicateReportId",
            Self::InvalidThingName { .. } => "InvalidThingName",
        }
    }

    /// The id of the rejected report, when known, to echo as `reportId`.
    pub fn report_id(&self) -> Option<i64> {
        match self {
            Self::PayloadTooLarge { .. }
            | Self::InvalidJson(_)
            | Self::InvalidCbor(_)
            | Self::TrailingCbor { .. }
            | Self::InvalidThingName { .. } => None,
            Self::InvalidPayload { report_id, .. } => *report_id,
            Self::UnknownMetric { report_id, .. }
            | Self::WrongMetricType { report_id, .. }
            | Self::DuplicateReportId { report_id } => Some(*report_id),
        }
    }

    /// The rejection of a report whose id the thing already used (see
    /// [`crate::counters::ReportIds`]).
    pub fn duplicate(report_id: i64) -> Self {
        Self::DuplicateReportId { report_id }
    }

    /// The rejection of a report published under the topic thing segment `raw` that the
    /// transport's topic parser refused as a thing name. Should `raw` be a valid thing name after all (a caller mistake), the error still
    /// rejects, saying that the name was refused.
    pub fn invalid_thing_name(raw: &str) -> Self {
        let source = match ThingName::try_from(raw) {
            Err(source) => source,
            Ok(_) => NameError::Pattern {
                kind: "thing name",
                name: quoted(raw),
                pattern: "a name accepted by the topic parser",
            },
        };
        Self::InvalidThingName { source }
    }
}
