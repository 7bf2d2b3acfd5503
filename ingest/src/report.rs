//! The Device Defender metrics report (aws-api.md §3): [`parse_report`] decodes (JSON or CBOR,
//! long or short key names) and validates one, [`Report::datapoints`] turns it into datapoints.
//! The rules are written down in `docs/specs/ingest.md`.
//!
//! Each step has its module:
//! - `value`: both encodings decoded into one tree, so JSON and CBOR follow the same rules;
//! - `validate`: the walk over that tree that checks every rule and builds a [`Report`];
//! - `datapoints`: the mapping from a valid report to datapoints;
//! - `keys`: the field names in their long and short spellings;
//! - `error`: [`ReportError`], the reason and code of a rejection.
//!
//! MQTT topics and the `/accepted` / `/rejected` replies are the transport's, not this crate's.

use std::net::{IpAddr, SocketAddr};

use thingward_models::CustomMetricType;

mod datapoints;
mod error;
#[cfg(test)]
mod fixtures;
mod keys;
mod validate;
mod value;

pub use error::{Problem, ReportError};

/// The payload format of a report, from the last segment of its topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// `…/defender/metrics/json`
    Json,
    /// `…/defender/metrics/cbor`
    Cbor,
}

impl Format {
    /// The topic segment naming this format (lowercase, as every AWS SDK sends it).
    pub fn suffix(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Cbor => "cbor",
        }
    }

    /// Parses a topic segment; only the lowercase forms are Device Defender topics.
    pub fn from_suffix(s: &str) -> Option<Self> {
        [Self::Json, Self::Cbor]
            .into_iter()
            .find(|f| f.suffix() == s)
    }
}

/// A validated Device Defender report.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// `header.report_id` (≥ 0).
    pub report_id: i64,
    /// `header.version`, `"1.<minor>"`.
    pub version: String,
    /// `metrics`, when present.
    pub metrics: Option<DeviceMetrics>,
    /// `custom_metrics`, when present, sorted by name (so that JSON and CBOR give the same order
    /// whatever the map order of the payload).
    pub custom_metrics: Option<Vec<CustomMetric>>,
}

/// The `metrics` block.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeviceMetrics {
    /// `network_stats`.
    pub network_stats: Option<NetworkStats>,
    /// `listening_tcp_ports`.
    pub listening_tcp_ports: Option<ListeningPorts>,
    /// `listening_udp_ports`.
    pub listening_udp_ports: Option<ListeningPorts>,
    /// `tcp_connections.established_connections` (None when either level is absent).
    pub established_connections: Option<EstablishedConnections>,
}

/// `network_stats`: deltas since the previous report.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NetworkStats {
    /// `bytes_in`.
    pub bytes_in: Option<u64>,
    /// `bytes_out`.
    pub bytes_out: Option<u64>,
    /// `packets_in`.
    pub packets_in: Option<u64>,
    /// `packets_out`.
    pub packets_out: Option<u64>,
}

/// `listening_tcp_ports` or `listening_udp_ports`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListeningPorts {
    /// `ports[].port`, in report order; None when `ports` is absent.
    pub ports: Option<Vec<u16>>,
    /// `total`.
    pub total: Option<u64>,
}

/// `tcp_connections.established_connections`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EstablishedConnections {
    /// `connections[].remote_addr`, in report order; None when `connections` is absent.
    pub remote_addrs: Option<Vec<SocketAddr>>,
    /// `total`.
    pub total: Option<u64>,
}

/// One entry of `custom_metrics`.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomMetric {
    /// The metric name as sent (checked against the registry by [`Report::datapoints`]).
    pub name: String,
    /// The value.
    pub value: CustomValue,
}

/// The value of a custom metric entry: one of the four §3.4 keys.
#[derive(Debug, Clone, PartialEq)]
pub enum CustomValue {
    /// `number`
    Number(f64),
    /// `number_list`
    NumberList(Vec<f64>),
    /// `string_list`
    StringList(Vec<String>),
    /// `ip_list`
    IpList(Vec<IpAddr>),
}

impl CustomValue {
    /// The custom metric type this value belongs to.
    pub fn metric_type(&self) -> CustomMetricType {
        match self {
            Self::Number(_) => CustomMetricType::Number,
            Self::NumberList(_) => CustomMetricType::NumberList,
            Self::StringList(_) => CustomMetricType::StringList,
            Self::IpList(_) => CustomMetricType::IpAddressList,
        }
    }
}

/// Decodes and validates a Device Defender report (aws-api.md §3; rules in
/// `docs/specs/ingest.md`).
///
/// # Errors
/// - [`ReportError::PayloadTooLarge`] when `bytes` is longer than `max_bytes` (checked first);
/// - [`ReportError::InvalidJson`] / [`ReportError::InvalidCbor`] /
///   [`ReportError::TrailingCbor`] when the payload does not decode;
/// - [`ReportError::InvalidPayload`] for the first rule the report breaks, carrying the report
///   id whenever `header.report_id` itself is valid.
pub fn parse_report(bytes: &[u8], format: Format, max_bytes: usize) -> Result<Report, ReportError> {
    if bytes.len() > max_bytes {
        return Err(ReportError::PayloadTooLarge {
            len: bytes.len(),
            max: max_bytes,
        });
    }
    let root = value::decode(bytes, format)?;
    validate::validate(&root)
}

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::keys::{CUSTOM_VALUE_KEYS, KEYS};
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn oversize_reports_are_refused_before_parsing() {
        let bytes = LONG_EXAMPLE.as_bytes();
        let e = parse_report(bytes, Format::Json, bytes.len() - 1).expect_err("too large");
        assert_eq!(e.code(), "PayloadTooLarge");
        assert_eq!(e.report_id(), None);
        assert_eq!(
            e.to_string(),
            format!(
                "report is {} bytes long; at most {} bytes are allowed",
                bytes.len(),
                bytes.len() - 1
            )
        );
        assert!(parse_report(bytes, Format::Json, bytes.len()).is_ok());
    }

    /// A number of any kind JSON and CBOR can carry, including the edge cases.
    fn any_number() -> impl Strategy<Value = serde_json::Value> {
        prop_oneof![
            any::<i64>().prop_map(serde_json::Value::from),
            any::<u64>().prop_map(serde_json::Value::from),
            (0u16..=65535).prop_map(serde_json::Value::from),
            any::<f64>().prop_map(|x| serde_json::Number::from_f64(x)
                .map_or(serde_json::Value::Null, serde_json::Value::Number)),
        ]
    }

    /// Trees built from report key names and report-like leaves, to reach deep into the walker.
    fn report_like_tree() -> impl Strategy<Value = serde_json::Value> {
        let names: Vec<&'static str> = KEYS
            .iter()
            .flat_map(|k| [k.long, k.short])
            .chain(CUSTOM_VALUE_KEYS.iter().map(|(k, _)| *k))
            .chain(["battery_pct", "peers", "x"])
            .collect();
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any_number(),
            prop_oneof![
                Just("1.0"),
                Just("10.0.0.7:443"),
                Just("[::1]:1"),
                Just("2001:db8::1"),
                Just("a")
            ]
            .prop_map(serde_json::Value::from),
            ".{0,8}".prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(6, 64, 6, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
                prop::collection::vec((prop::sample::select(names.clone()), inner), 0..6).prop_map(
                    |entries| serde_json::Value::Object(
                        entries
                            .into_iter()
                            .map(|(k, v)| (k.to_owned(), v))
                            .collect()
                    )
                ),
            ]
        })
    }

    fn check_no_panic(bytes: &[u8], format: Format) {
        let everything_is_a_number = |_: &str| Some(CustomMetricType::Number);
        if let Ok(report) = parse_report(bytes, format, MAX) {
            let _ = report.datapoints(&thing(), AT, &everything_is_a_number);
        }
    }

    proptest! {
        #[test]
        fn parse_report_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            check_no_panic(&bytes, Format::Json);
            check_no_panic(&bytes, Format::Cbor);
        }

        #[test]
        fn parse_report_never_panics_on_report_like_trees(tree in report_like_tree()) {
            check_no_panic(tree.to_string().as_bytes(), Format::Json);
            check_no_panic(&cbor(&tree), Format::Cbor);
        }
    }
}
