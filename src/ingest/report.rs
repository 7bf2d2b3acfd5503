//! The Device Defender metrics report (aws-api.md §3): its topics, decoding (JSON or CBOR, long
//! or short key names), validation, conversion to datapoints and the accepted/rejected replies.
//!
//! Both encodings are first decoded into one internal tree ([`Node`]) which a single walker
//! validates, so JSON and CBOR reports follow exactly the same rules. The rules are written down
//! in `docs/specs/ingest.md`.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use serde::Serialize;
use thingward_models::time::EpochMillis;
use thingward_models::{CustomMetricType, Datapoint, Metric, NameError, ThingName, Value};

use super::{is_valid_string_list_entry, quoted};

/// The payload format of a report, from the last segment of its topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Format {
    /// `…/defender/metrics/json`
    Json,
    /// `…/defender/metrics/cbor`
    Cbor,
}

impl Format {
    /// The topic segment naming this format (lowercase, as every AWS SDK sends it).
    pub(crate) fn suffix(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Cbor => "cbor",
        }
    }

    /// Parses a topic segment; only the lowercase forms are Device Defender topics.
    pub(crate) fn from_suffix(s: &str) -> Option<Self> {
        [Self::Json, Self::Cbor]
            .into_iter()
            .find(|f| f.suffix() == s)
    }
}

// ---------------------------------------------------------------------------------------------
// Field names
// ---------------------------------------------------------------------------------------------

/// A report field name in its long and short spellings (aws-api.md §3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Key {
    /// The long name (`network_stats`); also the spelling used in error paths.
    pub(crate) long: &'static str,
    /// The short name (`ns`).
    pub(crate) short: &'static str,
}

impl Key {
    fn matches(self, name: &str) -> bool {
        name == self.long || name == self.short
    }
}

/// Declares the key constants and, for tests, the table of all of them.
macro_rules! report_keys {
    ($($id:ident = $long:literal / $short:literal;)*) => {
        $(
            #[doc = concat!("`", $long, "` / `", $short, "`")]
            const $id: Key = Key { long: $long, short: $short };
        )*
        /// Every report field name with its short form, in the order of aws-api.md §3.3.
        #[cfg(test)]
        pub(crate) const KEYS: &[Key] = &[$($id),*];
    };
}

report_keys! {
    HEADER = "header" / "hed";
    REPORT_ID = "report_id" / "rid";
    VERSION = "version" / "v";
    METRICS = "metrics" / "met";
    CUSTOM_METRICS = "custom_metrics" / "cmet";
    TCP_CONNECTIONS = "tcp_connections" / "tc";
    ESTABLISHED_CONNECTIONS = "established_connections" / "ec";
    CONNECTIONS = "connections" / "cs";
    REMOTE_ADDR = "remote_addr" / "rad";
    LOCAL_PORT = "local_port" / "lp";
    LOCAL_INTERFACE = "local_interface" / "li";
    TOTAL = "total" / "t";
    LISTENING_TCP_PORTS = "listening_tcp_ports" / "tp";
    LISTENING_UDP_PORTS = "listening_udp_ports" / "up";
    PORTS = "ports" / "pts";
    PORT = "port" / "pt";
    INTERFACE = "interface" / "if";
    NETWORK_STATS = "network_stats" / "ns";
    BYTES_IN = "bytes_in" / "bi";
    BYTES_OUT = "bytes_out" / "bo";
    PACKETS_IN = "packets_in" / "pi";
    PACKETS_OUT = "packets_out" / "po";
}

/// The value keys of a custom metric entry (§3.4; they have no short forms), with the custom
/// metric type each one carries.
const CUSTOM_VALUE_KEYS: [(&str, CustomMetricType); 4] = [
    ("number", CustomMetricType::Number),
    ("number_list", CustomMetricType::NumberList),
    ("string_list", CustomMetricType::StringList),
    ("ip_list", CustomMetricType::IpAddressList),
];

/// The report key that carries values of a custom metric type.
fn custom_value_key(t: CustomMetricType) -> &'static str {
    CUSTOM_VALUE_KEYS
        .iter()
        .find(|(_, kind)| *kind == t)
        .map_or("?", |(key, _)| key)
}

/// The only report major version thingward understands.
const SUPPORTED_MAJOR_VERSION: &str = "1";

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// What is wrong with one field of a report.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Problem {
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
pub(crate) enum ReportError {
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
    pub(crate) fn code(&self) -> &'static str {
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
    pub(crate) fn report_id(&self) -> Option<i64> {
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
    /// [`super::counters::ReportIds`]).
    pub(crate) fn duplicate(report_id: i64) -> Self {
        Self::DuplicateReportId { report_id }
    }

    /// The rejection of a report published under the thing segment `raw` that [`parse_topic`]
    /// refused. Should `raw` be a valid thing name after all (a caller mistake), the error still
    /// rejects, saying that the name was refused.
    pub(crate) fn invalid_thing_name(raw: &str) -> Self {
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

// ---------------------------------------------------------------------------------------------
// The decoded tree
// ---------------------------------------------------------------------------------------------

/// A decoded JSON or CBOR item: the one tree the validator walks.
#[derive(Debug, Clone, PartialEq)]
enum Node {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Text(String),
    Array(Vec<Node>),
    /// Entries in payload order. CBOR entries whose key is not a text string are left out:
    /// such keys cannot be report fields, and unknown keys are ignored.
    Map(Vec<(String, Node)>),
    /// An item with no JSON counterpart (a CBOR byte string…), named for messages.
    Other(&'static str),
}

impl Node {
    fn from_json(v: serde_json::Value) -> Self {
        use serde_json::Value as J;
        match v {
            J::Null => Self::Null,
            J::Bool(b) => Self::Bool(b),
            J::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Self::Int(i128::from(i))
                } else if let Some(u) = n.as_u64() {
                    Self::Int(i128::from(u))
                } else {
                    n.as_f64()
                        .map_or(Self::Other("a number out of range"), Self::Float)
                }
            }
            J::String(s) => Self::Text(s),
            J::Array(items) => Self::Array(items.into_iter().map(Self::from_json).collect()),
            J::Object(map) => Self::Map(
                map.into_iter()
                    .map(|(k, v)| (k, Self::from_json(v)))
                    .collect(),
            ),
        }
    }

    fn from_cbor(v: ciborium::Value) -> Self {
        use ciborium::Value as C;
        match v {
            C::Null => Self::Null,
            C::Bool(b) => Self::Bool(b),
            C::Integer(i) => Self::Int(i128::from(i)),
            C::Float(f) => Self::Float(f),
            C::Text(s) => Self::Text(s),
            C::Bytes(_) => Self::Other("a byte string"),
            // Tags (epoch time, self-describe…) annotate the item; the item is what counts.
            C::Tag(_, inner) => Self::from_cbor(*inner),
            C::Array(items) => Self::Array(items.into_iter().map(Self::from_cbor).collect()),
            C::Map(entries) => Self::Map(
                entries
                    .into_iter()
                    .filter_map(|(k, v)| match k {
                        C::Text(k) => Some((k, Self::from_cbor(v))),
                        _ => None,
                    })
                    .collect(),
            ),
            _ => Self::Other("an unsupported CBOR item"),
        }
    }

    /// A short description of the item for error messages.
    fn describe(&self) -> String {
        match self {
            Self::Null => "null".to_owned(),
            Self::Bool(b) => b.to_string(),
            Self::Int(i) => i.to_string(),
            Self::Float(x) => x.to_string(),
            Self::Text(s) => format!("\"{}\"", quoted(s)),
            Self::Array(_) => "an array".to_owned(),
            Self::Map(_) => "an object".to_owned(),
            Self::Other(what) => (*what).to_owned(),
        }
    }

    /// The item as an integer, also when it is a float with no fractional part (CBOR encoders
    /// sometimes write whole numbers as floats).
    fn integer(&self) -> Option<i128> {
        const LIMIT: f64 = 1.8e19; // beyond u64::MAX; keeps the cast exact for what we accept
        match self {
            Self::Int(i) => Some(*i),
            Self::Float(x) if x.is_finite() && x.fract() == 0.0 && x.abs() < LIMIT => {
                Some(*x as i128)
            }
            _ => None,
        }
    }

    /// The first entry of a map under either spelling of `key`.
    fn first(&self, key: Key) -> Option<&Node> {
        match self {
            Self::Map(entries) => entries.iter().find(|(k, _)| key.matches(k)).map(|(_, v)| v),
            _ => None,
        }
    }
}

fn decode(bytes: &[u8], format: Format) -> Result<Node, ReportError> {
    match format {
        Format::Json => serde_json::from_slice::<serde_json::Value>(bytes)
            .map(Node::from_json)
            .map_err(ReportError::InvalidJson),
        Format::Cbor => {
            let mut rest = bytes;
            let value: ciborium::Value =
                ciborium::from_reader(&mut rest).map_err(ReportError::InvalidCbor)?;
            if !rest.is_empty() {
                return Err(ReportError::TrailingCbor {
                    trailing: rest.len(),
                });
            }
            Ok(Node::from_cbor(value))
        }
    }
}

/// The report id, if the header holds a valid one, whatever else is wrong with the report.
fn peek_report_id(root: &Node) -> Option<i64> {
    let id = root.first(HEADER)?.first(REPORT_ID)?.integer()?;
    i64::try_from(id).ok().filter(|id| *id >= 0)
}

/// A position in the report, for error messages; written with long names
/// (`metrics.listening_tcp_ports.ports[1].port`). Built on the stack while walking.
#[derive(Debug, Clone, Copy)]
enum Path<'a> {
    Root,
    Field(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl<'a> Path<'a> {
    fn field(&'a self, name: &'a str) -> Path<'a> {
        Path::Field(self, name)
    }

    fn index(&'a self, index: usize) -> Path<'a> {
        Path::Index(self, index)
    }

    fn write(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Root => Ok(()),
            Self::Field(parent, name) => {
                if !matches!(parent, Self::Root) {
                    parent.write(f)?;
                    f.write_str(".")?;
                }
                f.write_str(name)
            }
            Self::Index(parent, index) => {
                parent.write(f)?;
                write!(f, "[{index}]")
            }
        }
    }
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Root => f.write_str("report"),
            _ => self.write(f),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The validated report
// ---------------------------------------------------------------------------------------------

/// A validated Device Defender report.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Report {
    /// `header.report_id` (≥ 0).
    pub(crate) report_id: i64,
    /// `header.version`, `"1.<minor>"`.
    pub(crate) version: String,
    /// `metrics`, when present.
    pub(crate) metrics: Option<DeviceMetrics>,
    /// `custom_metrics`, when present, sorted by name (so that JSON and CBOR give the same order
    /// whatever the map order of the payload).
    pub(crate) custom_metrics: Option<Vec<CustomMetric>>,
}

/// The `metrics` block.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct DeviceMetrics {
    /// `network_stats`.
    pub(crate) network_stats: Option<NetworkStats>,
    /// `listening_tcp_ports`.
    pub(crate) listening_tcp_ports: Option<ListeningPorts>,
    /// `listening_udp_ports`.
    pub(crate) listening_udp_ports: Option<ListeningPorts>,
    /// `tcp_connections.established_connections` (None when either level is absent).
    pub(crate) established_connections: Option<EstablishedConnections>,
}

/// `network_stats`: deltas since the previous report.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct NetworkStats {
    /// `bytes_in`.
    pub(crate) bytes_in: Option<u64>,
    /// `bytes_out`.
    pub(crate) bytes_out: Option<u64>,
    /// `packets_in`.
    pub(crate) packets_in: Option<u64>,
    /// `packets_out`.
    pub(crate) packets_out: Option<u64>,
}

/// `listening_tcp_ports` or `listening_udp_ports`.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ListeningPorts {
    /// `ports[].port`, in report order; None when `ports` is absent.
    pub(crate) ports: Option<Vec<u16>>,
    /// `total`.
    pub(crate) total: Option<u64>,
}

/// `tcp_connections.established_connections`.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct EstablishedConnections {
    /// `connections[].remote_addr`, in report order; None when `connections` is absent.
    pub(crate) remote_addrs: Option<Vec<SocketAddr>>,
    /// `total`.
    pub(crate) total: Option<u64>,
}

/// One entry of `custom_metrics`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CustomMetric {
    /// The metric name as sent (checked against the registry by [`Report::datapoints`]).
    pub(crate) name: String,
    /// The value.
    pub(crate) value: CustomValue,
}

/// The value of a custom metric entry: one of the four §3.4 keys.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum CustomValue {
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
    pub(crate) fn metric_type(&self) -> CustomMetricType {
        match self {
            Self::Number(_) => CustomMetricType::Number,
            Self::NumberList(_) => CustomMetricType::NumberList,
            Self::StringList(_) => CustomMetricType::StringList,
            Self::IpList(_) => CustomMetricType::IpAddressList,
        }
    }

    fn to_value(&self) -> Value {
        match self {
            Self::Number(x) => Value::Number(*x),
            Self::NumberList(v) => Value::Numbers(v.clone()),
            Self::StringList(v) => Value::Strings(v.clone()),
            Self::IpList(v) => Value::Ips(v.clone()),
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
pub(crate) fn parse_report(
    bytes: &[u8],
    format: Format,
    max_bytes: usize,
) -> Result<Report, ReportError> {
    if bytes.len() > max_bytes {
        return Err(ReportError::PayloadTooLarge {
            len: bytes.len(),
            max: max_bytes,
        });
    }
    let root = decode(bytes, format)?;
    Walker {
        report_id: peek_report_id(&root),
    }
    .report(&root)
}

type Entries = [(String, Node)];

/// Validates the tree; knows the report id (if any) so that every error can echo it.
struct Walker {
    report_id: Option<i64>,
}

impl Walker {
    fn error(&self, path: &Path<'_>, problem: Problem) -> ReportError {
        ReportError::InvalidPayload {
            report_id: self.report_id,
            path: path.to_string(),
            problem,
        }
    }

    fn invalid(&self, path: &Path<'_>, expected: &'static str, found: &Node) -> ReportError {
        self.error(
            path,
            Problem::Invalid {
                expected,
                found: found.describe(),
            },
        )
    }

    fn map<'n>(&self, node: &'n Node, path: &Path<'_>) -> Result<&'n Entries, ReportError> {
        match node {
            Node::Map(entries) => Ok(entries),
            other => Err(self.invalid(path, "an object", other)),
        }
    }

    fn array<'n>(&self, node: &'n Node, path: &Path<'_>) -> Result<&'n [Node], ReportError> {
        match node {
            Node::Array(items) => Ok(items),
            other => Err(self.invalid(path, "an array", other)),
        }
    }

    /// The value of `key` in `map` (under either name); an error when it is given twice.
    fn get<'n>(
        &self,
        map: &'n Entries,
        key: Key,
        parent: &Path<'_>,
    ) -> Result<Option<&'n Node>, ReportError> {
        let mut found = map.iter().filter(|(k, _)| key.matches(k)).map(|(_, v)| v);
        let first = found.next();
        if first.is_some() && found.next().is_some() {
            return Err(self.error(&parent.field(key.long), Problem::Duplicate));
        }
        Ok(first)
    }

    fn require<'n>(
        &self,
        map: &'n Entries,
        key: Key,
        parent: &Path<'_>,
    ) -> Result<&'n Node, ReportError> {
        self.get(map, key, parent)?
            .ok_or_else(|| self.error(&parent.field(key.long), Problem::Missing))
    }

    /// A non-negative integer (a count or a delta).
    fn count(&self, node: &Node, path: &Path<'_>) -> Result<u64, ReportError> {
        node.integer()
            .and_then(|i| u64::try_from(i).ok())
            .ok_or_else(|| self.invalid(path, "a non-negative integer", node))
    }

    fn optional_count(
        &self,
        map: &Entries,
        key: Key,
        parent: &Path<'_>,
    ) -> Result<Option<u64>, ReportError> {
        self.get(map, key, parent)?
            .map(|n| self.count(n, &parent.field(key.long)))
            .transpose()
    }

    fn port(&self, node: &Node, path: &Path<'_>, allow_zero: bool) -> Result<u16, ReportError> {
        let expected = if allow_zero {
            "an integer in 0..=65535"
        } else {
            "an integer in 1..=65535"
        };
        node.integer()
            .and_then(|i| u16::try_from(i).ok())
            .filter(|p| allow_zero || *p > 0)
            .ok_or_else(|| self.invalid(path, expected, node))
    }

    fn text<'n>(&self, node: &'n Node, path: &Path<'_>) -> Result<&'n str, ReportError> {
        match node {
            Node::Text(s) => Ok(s),
            other => Err(self.invalid(path, "a string", other)),
        }
    }

    fn number(&self, node: &Node, path: &Path<'_>) -> Result<f64, ReportError> {
        match node {
            Node::Int(i) => Ok(*i as f64),
            Node::Float(x) if x.is_finite() => Ok(*x),
            other => Err(self.invalid(path, "a finite number", other)),
        }
    }

    fn report(&self, root: &Node) -> Result<Report, ReportError> {
        let path = Path::Root;
        let map = self.map(root, &path)?;

        let header_path = path.field(HEADER.long);
        let header = self.map(self.require(map, HEADER, &path)?, &header_path)?;
        let id_node = self.require(header, REPORT_ID, &header_path)?;
        let report_id = match self.report_id {
            Some(id) => id,
            None => {
                return Err(self.invalid(
                    &header_path.field(REPORT_ID.long),
                    "a non-negative integer",
                    id_node,
                ));
            }
        };
        let version_path = header_path.field(VERSION.long);
        let version_node = self.require(header, VERSION, &header_path)?;
        let version = self.text(version_node, &version_path)?;
        if !is_supported_version(version) {
            return Err(self.invalid(&version_path, "a version \"1.<minor>\"", version_node));
        }

        let metrics = self
            .get(map, METRICS, &path)?
            .map(|n| self.metrics(n, &path.field(METRICS.long)))
            .transpose()?;
        let custom_metrics = self
            .get(map, CUSTOM_METRICS, &path)?
            .map(|n| self.custom_metrics(n, &path.field(CUSTOM_METRICS.long)))
            .transpose()?;
        if metrics.is_none() && custom_metrics.is_none() {
            return Err(self.error(&path, Problem::NoMetrics));
        }
        Ok(Report {
            report_id,
            version: version.to_owned(),
            metrics,
            custom_metrics,
        })
    }

    fn metrics(&self, node: &Node, path: &Path<'_>) -> Result<DeviceMetrics, ReportError> {
        let map = self.map(node, path)?;
        let network_stats = self
            .get(map, NETWORK_STATS, path)?
            .map(|n| self.network_stats(n, &path.field(NETWORK_STATS.long)))
            .transpose()?;
        let listening_tcp_ports = self
            .get(map, LISTENING_TCP_PORTS, path)?
            .map(|n| self.listening_ports(n, &path.field(LISTENING_TCP_PORTS.long)))
            .transpose()?;
        let listening_udp_ports = self
            .get(map, LISTENING_UDP_PORTS, path)?
            .map(|n| self.listening_ports(n, &path.field(LISTENING_UDP_PORTS.long)))
            .transpose()?;
        let established_connections = match self.get(map, TCP_CONNECTIONS, path)? {
            None => None,
            Some(tc) => {
                let tc_path = path.field(TCP_CONNECTIONS.long);
                let tc = self.map(tc, &tc_path)?;
                self.get(tc, ESTABLISHED_CONNECTIONS, &tc_path)?
                    .map(|n| self.established(n, &tc_path.field(ESTABLISHED_CONNECTIONS.long)))
                    .transpose()?
            }
        };
        Ok(DeviceMetrics {
            network_stats,
            listening_tcp_ports,
            listening_udp_ports,
            established_connections,
        })
    }

    fn network_stats(&self, node: &Node, path: &Path<'_>) -> Result<NetworkStats, ReportError> {
        let map = self.map(node, path)?;
        Ok(NetworkStats {
            bytes_in: self.optional_count(map, BYTES_IN, path)?,
            bytes_out: self.optional_count(map, BYTES_OUT, path)?,
            packets_in: self.optional_count(map, PACKETS_IN, path)?,
            packets_out: self.optional_count(map, PACKETS_OUT, path)?,
        })
    }

    fn listening_ports(&self, node: &Node, path: &Path<'_>) -> Result<ListeningPorts, ReportError> {
        let map = self.map(node, path)?;
        let ports = match self.get(map, PORTS, path)? {
            None => None,
            Some(list) => {
                let list_path = path.field(PORTS.long);
                let items = self.array(list, &list_path)?;
                let mut ports = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    let item_path = list_path.index(i);
                    let entry = self.map(item, &item_path)?;
                    let port = self.require(entry, PORT, &item_path)?;
                    ports.push(self.port(port, &item_path.field(PORT.long), false)?);
                    if let Some(interface) = self.get(entry, INTERFACE, &item_path)? {
                        self.text(interface, &item_path.field(INTERFACE.long))?;
                    }
                }
                Some(ports)
            }
        };
        Ok(ListeningPorts {
            ports,
            total: self.optional_count(map, TOTAL, path)?,
        })
    }

    fn established(
        &self,
        node: &Node,
        path: &Path<'_>,
    ) -> Result<EstablishedConnections, ReportError> {
        let map = self.map(node, path)?;
        let remote_addrs = match self.get(map, CONNECTIONS, path)? {
            None => None,
            Some(list) => {
                let list_path = path.field(CONNECTIONS.long);
                let items = self.array(list, &list_path)?;
                let mut addrs = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    let item_path = list_path.index(i);
                    let entry = self.map(item, &item_path)?;
                    let addr_path = item_path.field(REMOTE_ADDR.long);
                    let addr = self.require(entry, REMOTE_ADDR, &item_path)?;
                    addrs.push(parse_remote_addr(self.text(addr, &addr_path)?).ok_or_else(
                        || {
                            self.invalid(
                                &addr_path,
                                "\"ip:port\" or \"[ipv6]:port\" with a port in 1..=65535",
                                addr,
                            )
                        },
                    )?);
                    if let Some(port) = self.get(entry, LOCAL_PORT, &item_path)? {
                        self.port(port, &item_path.field(LOCAL_PORT.long), true)?;
                    }
                    if let Some(interface) = self.get(entry, LOCAL_INTERFACE, &item_path)? {
                        self.text(interface, &item_path.field(LOCAL_INTERFACE.long))?;
                    }
                }
                Some(addrs)
            }
        };
        Ok(EstablishedConnections {
            remote_addrs,
            total: self.optional_count(map, TOTAL, path)?,
        })
    }

    fn custom_metrics(
        &self,
        node: &Node,
        path: &Path<'_>,
    ) -> Result<Vec<CustomMetric>, ReportError> {
        let map = self.map(node, path)?;
        let mut out = map
            .iter()
            .map(|(name, value)| {
                let value = self.custom_value(value, &path.field(name))?;
                Ok(CustomMetric {
                    name: name.clone(),
                    value,
                })
            })
            .collect::<Result<Vec<_>, ReportError>>()?;
        // Sorted, duplicates (possible in CBOR) are neighbours: O(n log n) whatever the size.
        out.sort_by(|a, b| a.name.cmp(&b.name));
        let repeated = out.windows(2).find_map(|pair| match pair {
            [a, b] if a.name == b.name => Some(a),
            _ => None,
        });
        if let Some(metric) = repeated {
            return Err(self.error(&path.field(&metric.name), Problem::Duplicate));
        }
        Ok(out)
    }

    fn custom_value(&self, node: &Node, path: &Path<'_>) -> Result<CustomValue, ReportError> {
        const SHAPE: &str = "an array of one object with exactly one of number, number_list, \
                             string_list, ip_list";
        let entry = match node {
            Node::Array(items) => match items.as_slice() {
                [one] => Some(one),
                _ => None,
            },
            _ => None,
        }
        .ok_or_else(|| self.invalid(path, SHAPE, node))?;
        let entry_path = path.index(0);
        let map = self.map(entry, &entry_path)?;
        let mut values = map.iter().filter_map(|(k, v)| {
            CUSTOM_VALUE_KEYS
                .iter()
                .find(|(key, _)| key == k)
                .map(|(key, t)| (*key, *t, v))
        });
        let (key, kind, value) = match (values.next(), values.next()) {
            (Some(one), None) => one,
            _ => return Err(self.invalid(&entry_path, SHAPE, entry)),
        };
        let value_path = entry_path.field(key);
        let list = || self.array(value, &value_path);
        Ok(match kind {
            CustomMetricType::Number => CustomValue::Number(self.number(value, &value_path)?),
            CustomMetricType::NumberList => {
                let items = list()?;
                CustomValue::NumberList(
                    items
                        .iter()
                        .enumerate()
                        .map(|(i, n)| self.number(n, &value_path.index(i)))
                        .collect::<Result<_, _>>()?,
                )
            }
            CustomMetricType::StringList => {
                let items = list()?;
                let mut strings = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    let item_path = value_path.index(i);
                    let s = self.text(item, &item_path)?;
                    if !is_valid_string_list_entry(s) {
                        return Err(self.invalid(
                            &item_path,
                            "a non-empty string of letters, digits and : _ - / .",
                            item,
                        ));
                    }
                    strings.push(s.to_owned());
                }
                CustomValue::StringList(strings)
            }
            CustomMetricType::IpAddressList => {
                let items = list()?;
                let mut ips = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    let item_path = value_path.index(i);
                    let ip = self
                        .text(item, &item_path)?
                        .parse::<IpAddr>()
                        .map_err(|_| self.invalid(&item_path, "an IPv4 or IPv6 address", item))?;
                    ips.push(ip);
                }
                CustomValue::IpList(ips)
            }
        })
    }
}

/// `"1.<minor>"` with a decimal minor.
fn is_supported_version(v: &str) -> bool {
    v.split_once('.').is_some_and(|(major, minor)| {
        major == SUPPORTED_MAJOR_VERSION
            && !minor.is_empty()
            && minor.bytes().all(|b| b.is_ascii_digit())
    })
}

/// `"10.0.0.7:443"` or `"[2001:db8::1]:443"`, with a port in 1..=65535.
fn parse_remote_addr(s: &str) -> Option<SocketAddr> {
    s.parse::<SocketAddr>().ok().filter(|a| a.port() > 0)
}

impl Report {
    /// The report's datapoints for `thing`, all stamped `at` (the receipt time):
    /// - `network_stats` → `aws:all-bytes-in/out`, `aws:all-packets-in/out`;
    /// - `listening_{tcp,udp}_ports` → `aws:listening-{tcp,udp}-ports` (when `ports` is given,
    ///   possibly empty) and `aws:num-listening-{tcp,udp}-ports` (`total`, or else the number
    ///   of ports);
    /// - `tcp_connections.established_connections` → `aws:destination-ip-addresses` (the remote
    ///   IPs, when `connections` is given) and `aws:num-established-tcp-connections` (`total`,
    ///   or else the number of connections);
    /// - each custom metric → its value, checked against the registry (`custom`).
    ///
    /// # Errors
    /// [`ReportError::UnknownMetric`] for a custom metric `custom` does not know (or whose name
    /// cannot be a custom metric name), [`ReportError::WrongMetricType`] for a value of another
    /// type than the metric's. AWS drops such values silently; thingward rejects the report so
    /// the device learns about it.
    pub(crate) fn datapoints(
        &self,
        thing: &ThingName,
        at: EpochMillis,
        custom: &dyn Fn(&str) -> Option<CustomMetricType>,
    ) -> Result<Vec<Datapoint>, ReportError> {
        let mut out = Vec::new();
        let mut push = |metric: Metric, value: Value| {
            out.push(Datapoint {
                thing: thing.clone(),
                metric,
                topic: None,
                timestamp: at,
                value,
            });
        };
        let count = |n: u64| Value::Number(n as f64);

        if let Some(m) = &self.metrics {
            if let Some(ns) = &m.network_stats {
                for (metric, v) in [
                    (Metric::AllBytesIn, ns.bytes_in),
                    (Metric::AllBytesOut, ns.bytes_out),
                    (Metric::AllPacketsIn, ns.packets_in),
                    (Metric::AllPacketsOut, ns.packets_out),
                ] {
                    if let Some(v) = v {
                        push(metric, count(v));
                    }
                }
            }
            for (ports, list_metric, num_metric) in [
                (
                    &m.listening_tcp_ports,
                    Metric::ListeningTcpPorts,
                    Metric::NumListeningTcpPorts,
                ),
                (
                    &m.listening_udp_ports,
                    Metric::ListeningUdpPorts,
                    Metric::NumListeningUdpPorts,
                ),
            ] {
                let Some(lp) = ports else { continue };
                if let Some(ports) = &lp.ports {
                    push(list_metric, Value::Ports(ports.clone()));
                }
                if let Some(n) = lp.total.or(lp.ports.as_ref().map(|p| p.len() as u64)) {
                    push(num_metric, count(n));
                }
            }
            if let Some(ec) = &m.established_connections {
                if let Some(addrs) = &ec.remote_addrs {
                    push(
                        Metric::DestinationIpAddresses,
                        Value::Ips(addrs.iter().map(SocketAddr::ip).collect()),
                    );
                }
                if let Some(n) = ec
                    .total
                    .or(ec.remote_addrs.as_ref().map(|a| a.len() as u64))
                {
                    push(Metric::NumEstablishedTcpConnections, count(n));
                }
            }
        }

        for cm in self.custom_metrics.iter().flatten() {
            let unknown = || ReportError::UnknownMetric {
                report_id: self.report_id,
                name: quoted(&cm.name),
            };
            let metric = match cm.name.parse::<Metric>() {
                Ok(metric @ Metric::Custom(_)) => metric,
                _ => return Err(unknown()),
            };
            let expected = custom(&cm.name).ok_or_else(unknown)?;
            let found = cm.value.metric_type();
            if expected != found {
                return Err(ReportError::WrongMetricType {
                    report_id: self.report_id,
                    name: quoted(&cm.name),
                    expected,
                    found,
                });
            }
            push(metric, cm.value.to_value());
        }
        Ok(out)
    }
}

// ---------------------------------------------------------------------------------------------
// Topics and replies
// ---------------------------------------------------------------------------------------------

const TOPIC_PREFIX: &str = "$aws/things/";
const TOPIC_METRICS: &str = "/defender/metrics/";
const ACCEPTED: &str = "accepted";
const REJECTED: &str = "rejected";

/// Recognises a report topic, `$aws/things/{thing}/defender/metrics/{json|cbor}`, and returns
/// its thing name and format.
///
/// `None` means "not a Device Defender report topic" (including the `/accepted` and `/rejected`
/// reply topics, uppercase `JSON`/`CBOR`, and a thing segment spanning several levels). A topic
/// of the right shape whose thing segment breaks the thing-name rules (empty, over 128 bytes,
/// control characters) is recognised with `Err(segment)`, the segment as in the topic: reply to
/// it with [`ReportError::invalid_thing_name`] so that the device gets a rejection.
pub(crate) fn parse_topic(topic: &str) -> Option<(Result<ThingName, String>, Format)> {
    let (segment, suffix) = topic
        .strip_prefix(TOPIC_PREFIX)?
        .split_once(TOPIC_METRICS)?;
    if segment.contains('/') {
        return None;
    }
    let format = Format::from_suffix(suffix)?;
    Some((
        ThingName::try_from(segment).map_err(|_| segment.to_owned()),
        format,
    ))
}

/// The topic a reply goes to: `$aws/things/{thing}/defender/metrics/{json|cbor}/{accepted|rejected}`.
pub(crate) fn reply_topic(thing: &str, format: Format, accepted: bool) -> String {
    let outcome = if accepted { ACCEPTED } else { REJECTED };
    format!(
        "{TOPIC_PREFIX}{thing}{TOPIC_METRICS}{}/{outcome}",
        format.suffix()
    )
}

/// The reply body (aws-api.md §3.1); field order as in the AWS examples.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Reply<'a> {
    thing_name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    report_id: Option<i64>,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    status_details: Option<StatusDetails>,
    timestamp: i64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct StatusDetails {
    error_code: &'static str,
    error_message: String,
}

/// The payload of an accepted or rejected reply, encoded like the report (JSON on `json`
/// topics, the same tree as CBOR on `cbor` topics):
/// `{"thingName","reportId","status":"ACCEPTED"|"REJECTED","statusDetails"?:{"ErrorCode",
/// "ErrorMessage"},"timestamp"}`. `reportId` is left out when the report id is unknown
/// (undecodable or oversize payloads); `timestamp` is `now_ms`, epoch milliseconds.
pub(crate) fn reply(
    thing: &str,
    report_id: Option<i64>,
    outcome: Result<(), &ReportError>,
    format: Format,
    now_ms: i64,
) -> Vec<u8> {
    let (status, status_details) = match outcome {
        Ok(()) => ("ACCEPTED", None),
        Err(e) => (
            "REJECTED",
            Some(StatusDetails {
                error_code: e.code(),
                error_message: e.to_string(),
            }),
        ),
    };
    let body = Reply {
        thing_name: thing,
        report_id,
        status,
        status_details,
        timestamp: now_ms,
    };
    let encoded = match format {
        Format::Json => serde_json::to_vec(&body).map_err(|e| e.to_string()),
        Format::Cbor => {
            let mut buf = Vec::new();
            ciborium::into_writer(&body, &mut buf)
                .map(|()| buf)
                .map_err(|e| e.to_string())
        }
    };
    // Encoding a struct of strings and integers into memory cannot fail; should it ever, the
    // device gets an empty reply rather than the service a panic.
    encoded.unwrap_or_else(|error| {
        tracing::error!(%error, thing, "Could not encode a report reply");
        Vec::new()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;
    use std::collections::BTreeMap;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const AT: EpochMillis = 1_717_171_717_000;
    const MAX: usize = 128 * 1024;

    /// aws-api.md §3.5, long names.
    const LONG_EXAMPLE: &str = r#"{
      "header": {"report_id": 1717171717, "version": "1.0"},
      "metrics": {
        "network_stats": {"bytes_in": 5120, "bytes_out": 2048, "packets_in": 40, "packets_out": 22},
        "listening_tcp_ports": {"ports": [{"interface": "eth0", "port": 22}, {"interface": "eth0", "port": 8883}], "total": 2},
        "listening_udp_ports": {"ports": [{"interface": "eth0", "port": 5353}], "total": 1},
        "tcp_connections": {"established_connections": {
            "connections": [{"remote_addr": "10.0.0.7:443", "local_port": 50123, "local_interface": "eth0"}],
            "total": 1}}
      },
      "custom_metrics": {
        "battery_pct": [{"number": 87}],
        "task_ids":    [{"number_list": [1, 2, 3]}],
        "fw_flags":    [{"string_list": ["safe_mode", "ota/pending"]}],
        "peers":       [{"ip_list": ["192.0.2.10", "2001:db8::1"]}]
      }
    }"#;

    /// aws-api.md §3.5, short names (custom metrics cut down to one entry).
    const SHORT_EXAMPLE: &str = r#"{"hed":{"rid":1717171717,"v":"1.0"},"met":{"ns":{"bi":5120,"bo":2048,"pi":40,"po":22},"tp":{"pts":[{"if":"eth0","pt":22},{"if":"eth0","pt":8883}],"t":2},"up":{"pts":[{"if":"eth0","pt":5353}],"t":1},"tc":{"ec":{"cs":[{"rad":"10.0.0.7:443","lp":50123,"li":"eth0"}],"t":1}}},"cmet":{"battery_pct":[{"number":87}]}}"#;

    fn thing() -> ThingName {
        ThingName::try_from("dev1").expect("valid thing name")
    }

    fn registry(name: &str) -> Option<CustomMetricType> {
        match name {
            "battery_pct" => Some(CustomMetricType::Number),
            "task_ids" => Some(CustomMetricType::NumberList),
            "fw_flags" => Some(CustomMetricType::StringList),
            "peers" => Some(CustomMetricType::IpAddressList),
            _ => None,
        }
    }

    fn dp(metric: Metric, value: Value) -> Datapoint {
        Datapoint {
            thing: thing(),
            metric,
            topic: None,
            timestamp: AT,
            value,
        }
    }

    fn custom(name: &str) -> Metric {
        Metric::Custom(name.to_owned())
    }

    fn cbor(tree: &serde_json::Value) -> Vec<u8> {
        let mut buf = Vec::new();
        ciborium::into_writer(tree, &mut buf).expect("encodes");
        buf
    }

    fn json_tree(text: &str) -> serde_json::Value {
        serde_json::from_str(text).expect("test JSON")
    }

    fn parse_json(tree: &serde_json::Value) -> Result<Report, ReportError> {
        parse_report(tree.to_string().as_bytes(), Format::Json, MAX)
    }

    fn datapoints(bytes: &[u8], format: Format) -> Result<Vec<Datapoint>, ReportError> {
        parse_report(bytes, format, MAX)?.datapoints(&thing(), AT, &registry)
    }

    /// Parses, expecting a rejection; returns (code, message, report id).
    fn rejection(tree: &serde_json::Value) -> (&'static str, String, Option<i64>) {
        let e = parse_json(tree)
            .and_then(|r| r.datapoints(&thing(), AT, &registry).map(|_| r))
            .expect_err("rejected");
        (e.code(), e.to_string(), e.report_id())
    }

    fn device_datapoints() -> Vec<Datapoint> {
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        vec![
            dp(Metric::AllBytesIn, Value::Number(5120.0)),
            dp(Metric::AllBytesOut, Value::Number(2048.0)),
            dp(Metric::AllPacketsIn, Value::Number(40.0)),
            dp(Metric::AllPacketsOut, Value::Number(22.0)),
            dp(Metric::ListeningTcpPorts, Value::Ports(vec![22, 8883])),
            dp(Metric::NumListeningTcpPorts, Value::Number(2.0)),
            dp(Metric::ListeningUdpPorts, Value::Ports(vec![5353])),
            dp(Metric::NumListeningUdpPorts, Value::Number(1.0)),
            dp(
                Metric::DestinationIpAddresses,
                Value::Ips(vec![ip("10.0.0.7")]),
            ),
            dp(Metric::NumEstablishedTcpConnections, Value::Number(1.0)),
        ]
    }

    #[test]
    fn the_long_example_gives_every_device_and_custom_metric() {
        let got = datapoints(LONG_EXAMPLE.as_bytes(), Format::Json).expect("accepted");
        let mut want = device_datapoints();
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        // Custom metrics come sorted by name.
        want.extend([
            dp(custom("battery_pct"), Value::Number(87.0)),
            dp(
                custom("fw_flags"),
                Value::Strings(vec!["safe_mode".into(), "ota/pending".into()]),
            ),
            dp(
                custom("peers"),
                Value::Ips(vec![ip("192.0.2.10"), ip("2001:db8::1")]),
            ),
            dp(custom("task_ids"), Value::Numbers(vec![1.0, 2.0, 3.0])),
        ]);
        assert_eq!(got, want);
        let report = parse_report(LONG_EXAMPLE.as_bytes(), Format::Json, MAX).expect("parses");
        assert_eq!(report.report_id, 1_717_171_717);
        assert_eq!(report.version, "1.0");
    }

    #[test]
    fn long_and_short_names_give_the_same_report() {
        let mut long = json_tree(LONG_EXAMPLE);
        long["custom_metrics"] = json!({"battery_pct": [{"number": 87}]});
        let from_long = parse_json(&long).expect("long accepted");
        let from_short =
            parse_report(SHORT_EXAMPLE.as_bytes(), Format::Json, MAX).expect("short accepted");
        assert_eq!(from_long, from_short);
        let mut want = device_datapoints();
        want.push(dp(custom("battery_pct"), Value::Number(87.0)));
        assert_eq!(
            from_short
                .datapoints(&thing(), AT, &registry)
                .expect("known"),
            want
        );
    }

    #[test]
    fn long_and_short_names_may_be_mixed() {
        let mixed = json!({"hed": {"report_id": 5, "v": "1.2"}, "metrics": {"ns": {"bytes_in": 1, "bo": 2}}});
        let r = parse_json(&mixed).expect("accepted");
        assert_eq!(r.report_id, 5);
        let ns = r
            .metrics
            .and_then(|m| m.network_stats)
            .expect("network stats");
        assert_eq!(
            (ns.bytes_in, ns.bytes_out, ns.packets_in),
            (Some(1), Some(2), None)
        );
    }

    #[test]
    fn json_and_cbor_give_identical_results() {
        for text in [LONG_EXAMPLE, SHORT_EXAMPLE] {
            let tree = json_tree(text);
            let from_json = datapoints(tree.to_string().as_bytes(), Format::Json).expect("json");
            let from_cbor = datapoints(&cbor(&tree), Format::Cbor).expect("cbor");
            assert_eq!(from_json, from_cbor);
            assert_eq!(
                parse_json(&tree).expect("json"),
                parse_report(&cbor(&tree), Format::Cbor, MAX).expect("cbor")
            );
        }
    }

    #[test]
    fn cbor_whole_floats_count_as_integers_and_tags_are_transparent() {
        use ciborium::Value as C;
        let text = |s: &str| C::Text(s.to_owned());
        let tree = C::Map(vec![
            (
                text("hed"),
                C::Map(vec![
                    (text("rid"), C::Tag(1, Box::new(C::Integer(7.into())))),
                    (text("v"), text("1.0")),
                ]),
            ),
            (
                text("met"),
                C::Map(vec![(
                    text("ns"),
                    C::Map(vec![(text("bi"), C::Float(5120.0))]),
                )]),
            ),
            // Non-text keys are not report fields: ignored like unknown keys.
            (C::Integer(1.into()), C::Bool(true)),
        ]);
        let mut bytes = Vec::new();
        ciborium::into_writer(&tree, &mut bytes).expect("encodes");
        let got = datapoints(&bytes, Format::Cbor).expect("accepted");
        assert_eq!(got, vec![dp(Metric::AllBytesIn, Value::Number(5120.0))]);
    }

    #[test]
    fn ipv6_remote_addresses_use_brackets() {
        let tree = json!({"header": {"report_id": 1, "version": "1.0"}, "metrics": {"tcp_connections": {
        "established_connections": {"connections": [
            {"remote_addr": "[::1]:443"}, {"remote_addr": "[2001:db8::7]:8883"}, {"remote_addr": "192.0.2.1:1"}
        ]}}}});
        let got = datapoints(tree.to_string().as_bytes(), Format::Json).expect("accepted");
        assert_eq!(
            got,
            vec![
                dp(
                    Metric::DestinationIpAddresses,
                    Value::Ips(vec![
                        IpAddr::V6(Ipv6Addr::LOCALHOST),
                        "2001:db8::7".parse().expect("ip"),
                        IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
                    ])
                ),
                // No total: the number of connections.
                dp(Metric::NumEstablishedTcpConnections, Value::Number(3.0)),
            ]
        );
    }

    #[test]
    fn malformed_remote_addresses_are_rejected() {
        for bad in [
            "::1:443",
            "10.0.0.7",
            "10.0.0.7:0",
            "host:443",
            "[::1]",
            "10.0.0.7:65536",
            "",
        ] {
            let tree = json!({"hed": {"rid": 9, "v": "1.0"}, "met": {"tc": {"ec": {"cs": [
                {"rad": "10.0.0.1:22"}, {"rad": bad}]}}}});
            let (code, message, id) = rejection(&tree);
            assert_eq!(code, "InvalidPayload", "{bad}");
            assert!(
                message.starts_with(
                    "metrics.tcp_connections.established_connections.connections[1].remote_addr must be"
                ),
                "{message}"
            );
            assert_eq!(id, Some(9));
        }
        let tree =
            json!({"hed": {"rid": 9, "v": "1.0"}, "met": {"tc": {"ec": {"cs": [{"lp": 1}]}}}});
        assert_eq!(
            rejection(&tree).1,
            "metrics.tcp_connections.established_connections.connections[0].remote_addr is missing"
        );
    }

    #[test]
    fn a_missing_header_is_rejected_without_a_report_id() {
        let (code, message, id) = rejection(&json!({"metrics": {}}));
        assert_eq!(
            (code, message.as_str(), id),
            ("InvalidPayload", "header is missing", None)
        );
    }

    #[test]
    fn a_missing_report_id_is_named() {
        let (code, message, id) = rejection(&json!({"header": {"version": "1.0"}, "metrics": {}}));
        assert_eq!(
            (code, message.as_str(), id),
            ("InvalidPayload", "header.report_id is missing", None)
        );
        let (_, message, id) =
            rejection(&json!({"header": {"report_id": -4, "version": "1.0"}, "metrics": {}}));
        assert_eq!(
            message,
            "header.report_id must be a non-negative integer; got -4"
        );
        assert_eq!(id, None);
        let (_, message, _) =
            rejection(&json!({"header": {"report_id": "12", "version": "1.0"}, "metrics": {}}));
        assert_eq!(
            message,
            "header.report_id must be a non-negative integer; got \"12\""
        );
    }

    #[test]
    fn missing_metrics_are_rejected_with_the_report_id() {
        let (code, message, id) = rejection(&json!({"hed": {"rid": 1_700_000_000, "v": "1.0"}}));
        assert_eq!(code, "InvalidPayload");
        assert_eq!(
            message,
            "report must contain metrics (met) or custom_metrics (cmet)"
        );
        assert_eq!(id, Some(1_700_000_000));
    }

    #[test]
    fn the_version_must_be_major_1() {
        for bad in [
            json!("2.0"),
            json!("1"),
            json!("1."),
            json!("1.x"),
            json!(1.0),
        ] {
            let (code, message, id) =
                rejection(&json!({"header": {"report_id": 3, "version": bad}, "metrics": {}}));
            assert_eq!(code, "InvalidPayload");
            assert!(message.starts_with("header.version must be"), "{message}");
            assert_eq!(id, Some(3));
        }
        let (_, message, _) = rejection(&json!({"header": {"report_id": 3}, "metrics": {}}));
        assert_eq!(message, "header.version is missing");
        assert!(parse_json(&json!({"hed": {"rid": 3, "v": "1.17"}, "met": {}})).is_ok());
    }

    #[test]
    fn the_report_id_is_echoed_whatever_else_is_wrong() {
        let (_, message, id) = rejection(
            &json!({"hed": {"rid": 77, "v": "1.0"}, "met": {"tp": {"pts": [{"pt": 0}]}}}),
        );
        assert_eq!(
            message,
            "metrics.listening_tcp_ports.ports[0].port must be an integer in 1..=65535; got 0"
        );
        assert_eq!(id, Some(77));
    }

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

    #[test]
    fn undecodable_payloads_get_format_codes() {
        let e = parse_report(b"{\"header\":", Format::Json, MAX).expect_err("bad json");
        assert_eq!(e.code(), "InvalidJson");
        assert!(
            e.to_string().starts_with("report is not valid JSON: "),
            "{e}"
        );
        let e = parse_report(&[0xff, 0x00], Format::Cbor, MAX).expect_err("bad cbor");
        assert_eq!(e.code(), "InvalidCbor");
        // A CBOR report followed by more bytes.
        let mut bytes = cbor(&json_tree(SHORT_EXAMPLE));
        bytes.push(0x01);
        let e = parse_report(&bytes, Format::Cbor, MAX).expect_err("trailing bytes");
        assert_eq!(e.code(), "InvalidCbor");
        assert_eq!(
            e.to_string(),
            "report is not valid CBOR: 1 bytes follow the report"
        );
        // JSON sent on a cbor topic.
        assert_eq!(
            parse_report(SHORT_EXAMPLE.as_bytes(), Format::Cbor, MAX)
                .expect_err("json")
                .code(),
            "InvalidCbor"
        );
        let e = parse_report(b"[1, 2]", Format::Json, MAX).expect_err("not an object");
        assert_eq!(e.to_string(), "report must be an object; got an array");
    }

    #[test]
    fn unknown_keys_are_ignored() {
        let tree = json!({"hed": {"rid": 1, "v": "1.0", "extra": [1]}, "future": {"x": 1},
            "met": {"ns": {"bi": 1, "errors_in": -5}, "new_block": {},
                    "tc": {"ec": {"cs": [{"rad": "10.0.0.1:1", "rp": 1, "s": "ESTABLISHED"}]}}}});
        let got = datapoints(tree.to_string().as_bytes(), Format::Json).expect("accepted");
        assert_eq!(got.len(), 3);
    }

    #[test]
    fn a_field_given_under_both_names_is_rejected() {
        let (code, message, id) = rejection(
            &json!({"hed": {"rid": 1, "v": "1.0"}, "met": {"ns": {"bi": 1, "bytes_in": 2}}}),
        );
        assert_eq!(code, "InvalidPayload");
        assert!(message.starts_with("metrics.network_stats.bytes_in is given more than once"));
        assert_eq!(id, Some(1));
    }

    #[test]
    fn cbor_maps_with_repeated_keys_are_rejected() {
        use ciborium::Value as C;
        let text = |s: &str| C::Text(s.to_owned());
        let header = C::Map(vec![
            (text("rid"), C::Integer(8.into())),
            (text("v"), text("1.0")),
        ]);
        let number = |x: i64| C::Array(vec![C::Map(vec![(text("number"), C::Integer(x.into()))])]);
        let encode = |tree: &C| {
            let mut bytes = Vec::new();
            ciborium::into_writer(tree, &mut bytes).expect("encodes");
            bytes
        };
        let twice_header = C::Map(vec![
            (text("hed"), header.clone()),
            (text("hed"), header.clone()),
            (text("met"), C::Map(vec![])),
        ]);
        let e = parse_report(&encode(&twice_header), Format::Cbor, MAX).expect_err("dup");
        assert!(
            e.to_string().starts_with("header is given more than once"),
            "{e}"
        );
        assert_eq!(e.report_id(), Some(8));
        let twice_metric = C::Map(vec![
            (text("hed"), header),
            (
                text("cmet"),
                C::Map(vec![
                    (text("battery_pct"), number(1)),
                    (text("a"), number(2)),
                    (text("battery_pct"), number(3)),
                ]),
            ),
        ]);
        let e = parse_report(&encode(&twice_metric), Format::Cbor, MAX).expect_err("dup");
        assert!(
            e.to_string()
                .starts_with("custom_metrics.battery_pct is given more than once"),
            "{e}"
        );
    }

    #[test]
    fn negative_network_stats_are_rejected() {
        for key in ["bi", "bo", "pi", "po"] {
            let tree = json!({"hed": {"rid": 12, "v": "1.0"}, "met": {"ns": {key: -1}}});
            let (code, message, id) = rejection(&tree);
            assert_eq!(code, "InvalidPayload");
            assert!(
                message.starts_with("metrics.network_stats.")
                    && message.ends_with(" must be a non-negative integer; got -1"),
                "{message}"
            );
            assert_eq!(id, Some(12));
        }
        let tree = json!({"hed": {"rid": 12, "v": "1.0"}, "met": {"ns": {"bi": 1.5}}});
        assert_eq!(
            rejection(&tree).1,
            "metrics.network_stats.bytes_in must be a non-negative integer; got 1.5"
        );
        let tree = json!({"hed": {"rid": 12, "v": "1.0"}, "met": {"tp": {"t": -2}}});
        assert_eq!(
            rejection(&tree).1,
            "metrics.listening_tcp_ports.total must be a non-negative integer; got -2"
        );
    }

    #[test]
    fn ports_must_be_in_range() {
        for bad in [json!(0), json!(65536), json!(-1), json!("22"), json!(22.5)] {
            let tree =
                json!({"hed": {"rid": 1, "v": "1.0"}, "met": {"up": {"pts": [{"pt": bad}]}}});
            let (_, message, _) = rejection(&tree);
            assert!(
                message.starts_with(
                    "metrics.listening_udp_ports.ports[0].port must be an integer in 1..=65535"
                ),
                "{message}"
            );
        }
        let tree = json!({"hed": {"rid": 1, "v": "1.0"}, "met": {"up": {"pts": [{"pt": 65535}, {"pt": 1}]}}});
        assert!(parse_json(&tree).is_ok());
    }

    #[test]
    fn port_counts_fall_back_to_the_number_of_ports() {
        let tree = json!({"hed": {"rid": 1, "v": "1.0"}, "met": {
            "tp": {"pts": [{"pt": 22}, {"pt": 80}, {"pt": 443}]},
            "up": {"pts": []}}});
        let got = datapoints(tree.to_string().as_bytes(), Format::Json).expect("accepted");
        assert_eq!(
            got,
            vec![
                dp(Metric::ListeningTcpPorts, Value::Ports(vec![22, 80, 443])),
                dp(Metric::NumListeningTcpPorts, Value::Number(3.0)),
                // An empty list is reported (it clears port alarms).
                dp(Metric::ListeningUdpPorts, Value::Ports(vec![])),
                dp(Metric::NumListeningUdpPorts, Value::Number(0.0)),
            ]
        );
        // A total alone gives the count only.
        let tree = json!({"hed": {"rid": 1, "v": "1.0"}, "met": {"tp": {"t": 4}, "tc": {}}});
        let got = datapoints(tree.to_string().as_bytes(), Format::Json).expect("accepted");
        assert_eq!(
            got,
            vec![dp(Metric::NumListeningTcpPorts, Value::Number(4.0))]
        );
    }

    #[test]
    fn custom_metrics_of_every_type_are_accepted() {
        let tree = json!({"hed": {"rid": 1, "v": "1.0"}, "cmet": {
            "battery_pct": [{"number": -2.5}],
            "task_ids": [{"number_list": []}],
            "fw_flags": [{"string_list": ["a:b_c-d/e.f"]}],
            "peers": [{"ip_list": ["::ffff:192.0.2.1"]}]}});
        let got = datapoints(tree.to_string().as_bytes(), Format::Json).expect("accepted");
        assert_eq!(
            got,
            vec![
                dp(custom("battery_pct"), Value::Number(-2.5)),
                dp(
                    custom("fw_flags"),
                    Value::Strings(vec!["a:b_c-d/e.f".into()])
                ),
                dp(
                    custom("peers"),
                    Value::Ips(vec!["::ffff:192.0.2.1".parse().expect("ip")])
                ),
                dp(custom("task_ids"), Value::Numbers(vec![])),
            ]
        );
    }

    #[test]
    fn an_unknown_custom_metric_is_rejected_by_name() {
        let tree = json!({"hed": {"rid": 41, "v": "1.0"}, "cmet": {"battery_pct": [{"number": 1}], "cpu_temp": [{"number": 50}]}});
        let (code, message, id) = rejection(&tree);
        assert_eq!(code, "UnknownMetric");
        assert_eq!(
            message,
            "custom metric 'cpu_temp' is not defined; create it with CreateCustomMetric before reporting it"
        );
        assert_eq!(id, Some(41));
        // A name that cannot be a custom metric at all.
        let tree =
            json!({"hed": {"rid": 41, "v": "1.0"}, "cmet": {"aws:all-bytes-in": [{"number": 1}]}});
        assert_eq!(rejection(&tree).0, "UnknownMetric");
    }

    #[test]
    fn a_custom_value_of_the_wrong_type_is_rejected_by_name() {
        let tree = json!({"hed": {"rid": 42, "v": "1.0"}, "cmet": {"task_ids": [{"number": 1}]}});
        let (code, message, id) = rejection(&tree);
        assert_eq!(code, "InvalidPayload");
        assert_eq!(
            message,
            "custom metric 'task_ids' is defined as number-list, so its value must be given as number_list; the report gives number"
        );
        assert_eq!(id, Some(42));
    }

    #[test]
    fn custom_entries_must_have_the_documented_shape() {
        let shapes = [
            json!({"number": 1}),
            json!([]),
            json!([{"number": 1}, {"number": 2}]),
            json!([{"number": 1, "number_list": [1]}]),
            json!([{"other": 1}]),
        ];
        for shape in shapes {
            let tree = json!({"hed": {"rid": 1, "v": "1.0"}, "cmet": {"battery_pct": shape}});
            let (code, message, _) = rejection(&tree);
            assert_eq!(code, "InvalidPayload");
            assert!(
                message.contains("must be an array of one object with exactly one of"),
                "{message}"
            );
        }
        let values = [
            (
                json!([{"number": "1"}]),
                "custom_metrics.battery_pct[0].number must be a finite number",
            ),
            (
                json!([{"number_list": [1, "2"]}]),
                "custom_metrics.battery_pct[0].number_list[1] must be a finite number",
            ),
            (
                json!([{"string_list": ["has space"]}]),
                "custom_metrics.battery_pct[0].string_list[0] must be a non-empty string",
            ),
            (
                json!([{"string_list": [""]}]),
                "custom_metrics.battery_pct[0].string_list[0] must be a non-empty string",
            ),
            (
                json!([{"ip_list": ["10.0.0.0/8"]}]),
                "custom_metrics.battery_pct[0].ip_list[0] must be an IPv4 or IPv6 address",
            ),
        ];
        for (value, want) in values {
            let tree = json!({"hed": {"rid": 1, "v": "1.0"}, "cmet": {"battery_pct": value}});
            let (_, message, _) = rejection(&tree);
            assert!(message.starts_with(want), "{message}");
        }
    }

    #[test]
    fn key_names_are_all_distinct() {
        let mut names: Vec<&str> = KEYS.iter().flat_map(|k| [k.long, k.short]).collect();
        names.extend(CUSTOM_VALUE_KEYS.iter().map(|(k, _)| *k));
        let count = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), count);
        assert_eq!(KEYS.len(), 22);
    }

    #[test]
    fn accepted_replies_have_the_documented_shape() {
        let body = reply(
            "dev1",
            Some(1_700_000_000),
            Ok(()),
            Format::Json,
            1_700_000_000_123,
        );
        assert_eq!(
            String::from_utf8(body).expect("utf-8"),
            r#"{"thingName":"dev1","reportId":1700000000,"status":"ACCEPTED","timestamp":1700000000123}"#
        );
    }

    #[test]
    fn rejected_replies_carry_code_and_message() {
        let e = parse_json(&json!({"header": {"version": "1.0"}, "metrics": {}})).expect_err("bad");
        let body = reply(
            "dev1",
            Some(1_700_000_000),
            Err(&e),
            Format::Json,
            1_700_000_000_123,
        );
        assert_eq!(
            String::from_utf8(body).expect("utf-8"),
            r#"{"thingName":"dev1","reportId":1700000000,"status":"REJECTED","statusDetails":{"ErrorCode":"InvalidPayload","ErrorMessage":"header.report_id is missing"},"timestamp":1700000000123}"#
        );
        // No report id known: no reportId member.
        let body = reply("dev1", None, Err(&e), Format::Json, 5);
        let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
        assert!(v.get("reportId").is_none());
        assert_eq!(v["status"], "REJECTED");
    }

    #[test]
    fn cbor_replies_hold_the_same_tree() {
        let e = ReportError::duplicate(7);
        for outcome in [Ok(()), Err(&e)] {
            let json_body = reply("dev1", Some(7), outcome, Format::Json, 1_700_000_000_123);
            let cbor_body = reply("dev1", Some(7), outcome, Format::Cbor, 1_700_000_000_123);
            let from_cbor: serde_json::Value =
                ciborium::from_reader(cbor_body.as_slice()).expect("cbor");
            let from_json: serde_json::Value = serde_json::from_slice(&json_body).expect("json");
            assert_eq!(from_cbor, from_json);
            // Same member order too, and integers stay integers.
            let raw: ciborium::Value = ciborium::from_reader(cbor_body.as_slice()).expect("cbor");
            let ciborium::Value::Map(entries) = raw else {
                panic!("not a map")
            };
            let keys: Vec<_> = entries.iter().filter_map(|(k, _)| k.as_text()).collect();
            let mut want = vec!["thingName", "reportId", "status", "timestamp"];
            if outcome.is_err() {
                want.insert(3, "statusDetails");
            }
            assert_eq!(keys, want);
            assert!(entries.iter().any(|(k, v)| k.as_text() == Some("timestamp")
                && v.as_integer() == Some(1_700_000_000_123_i64.into())));
        }
        assert_eq!(e.code(), "DuplicateReportId");
    }

    #[test]
    fn report_topics_are_recognised() {
        let (thing, format) = parse_topic("$aws/things/dev1/defender/metrics/json").expect("topic");
        assert_eq!(
            (thing.expect("valid").as_str(), format),
            ("dev1", Format::Json)
        );
        let (thing, format) =
            parse_topic("$aws/things/dev-1:a_b/defender/metrics/cbor").expect("topic");
        assert_eq!(
            (thing.expect("valid").as_str(), format),
            ("dev-1:a_b", Format::Cbor)
        );
        let longest = "x".repeat(128);
        let (thing, _) =
            parse_topic(&format!("$aws/things/{longest}/defender/metrics/json")).expect("topic");
        assert!(thing.is_ok());
        for other in [
            "$aws/things/dev1/defender/metrics/json/accepted",
            "$aws/things/dev1/defender/metrics/cbor/rejected",
            "$aws/things/dev1/defender/metrics/JSON",
            "$aws/things/dev1/defender/metrics/xml",
            "$aws/things/a/b/defender/metrics/json",
            "$aws/things/dev1/shadow/update",
            "things/dev1/defender/metrics/json",
        ] {
            assert!(parse_topic(other).is_none(), "{other}");
        }
    }

    #[test]
    fn bad_thing_names_in_topics_are_rejections_not_ignored() {
        let long = "x".repeat(129);
        for bad in [long.as_str(), "bad\u{7}name", "tab\there", ""] {
            let topic = format!("$aws/things/{bad}/defender/metrics/json");
            let (thing, format) = parse_topic(&topic).expect("recognised");
            assert_eq!(format, Format::Json);
            let raw = thing.expect_err("invalid name");
            assert_eq!(raw, bad);
            let e = ReportError::invalid_thing_name(&raw);
            assert_eq!(e.code(), "InvalidThingName");
            assert_eq!(e.report_id(), None);
            assert!(
                e.to_string()
                    .starts_with("the thing name in the topic is invalid: thing name"),
                "{e}"
            );
        }
        let e = ReportError::invalid_thing_name(&long);
        assert_eq!(
            e.to_string(),
            "the thing name in the topic is invalid: thing name is 129 bytes long; at most 128 are allowed"
        );
    }

    #[test]
    fn reply_topics_follow_the_report_topic() {
        assert_eq!(
            reply_topic("dev1", Format::Json, true),
            "$aws/things/dev1/defender/metrics/json/accepted"
        );
        assert_eq!(
            reply_topic("dev1", Format::Cbor, false),
            "$aws/things/dev1/defender/metrics/cbor/rejected"
        );
    }

    // ---- properties -------------------------------------------------------------------------

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

    /// One generated report: the field values, how to spell and encode them.
    #[derive(Debug, Clone)]
    struct Spec {
        report_id: i64,
        minor: u32,
        network_stats: Option<[Option<u64>; 4]>,
        tcp: Option<(Option<Vec<u16>>, Option<u64>)>,
        udp: Option<(Option<Vec<u16>>, Option<u64>)>,
        connections: Option<(Option<Vec<SocketAddr>>, Option<u64>)>,
        metrics: bool,
        custom: Option<BTreeMap<String, CustomValue>>,
        short: bool,
        format: Format,
    }

    fn ports() -> impl Strategy<Value = (Option<Vec<u16>>, Option<u64>)> {
        (
            prop::option::of(prop::collection::vec(1u16..=65535, 0..5)),
            prop::option::of(any::<u64>()),
        )
    }

    fn custom_value() -> impl Strategy<Value = CustomValue> {
        // Multiples of 1/8 print and parse back exactly in both encodings.
        let number = (-1_000_000i32..1_000_000).prop_map(|n| f64::from(n) / 8.0);
        prop_oneof![
            number.clone().prop_map(CustomValue::Number),
            prop::collection::vec(number, 0..4).prop_map(CustomValue::NumberList),
            prop::collection::vec("[A-Za-z0-9:_/.-]{1,10}", 0..4).prop_map(CustomValue::StringList),
            prop::collection::vec(any::<IpAddr>(), 0..4).prop_map(CustomValue::IpList),
        ]
    }

    fn spec() -> impl Strategy<Value = Spec> {
        let addr = (any::<IpAddr>(), 1u16..=65535).prop_map(|(ip, port)| SocketAddr::new(ip, port));
        (
            (
                0..=i64::MAX,
                0u32..1000,
                prop::option::of(prop::array::uniform4(prop::option::of(any::<u64>()))),
            ),
            (prop::option::of(ports()), prop::option::of(ports())),
            prop::option::of((
                prop::option::of(prop::collection::vec(addr, 0..4)),
                prop::option::of(any::<u64>()),
            )),
            (
                any::<bool>(),
                prop::option::of(prop::collection::btree_map(
                    "[a-z][a-z0-9_]{0,12}",
                    custom_value(),
                    0..5,
                )),
            ),
            (
                any::<bool>(),
                prop_oneof![Just(Format::Json), Just(Format::Cbor)],
            ),
        )
            .prop_map(
                |(
                    (report_id, minor, network_stats),
                    (tcp, udp),
                    connections,
                    (metrics, custom),
                    (short, format),
                )| Spec {
                    report_id,
                    minor,
                    network_stats,
                    tcp,
                    udp,
                    connections,
                    // A report needs metrics or custom metrics.
                    metrics: metrics || custom.is_none(),
                    custom,
                    short,
                    format,
                },
            )
    }

    impl Spec {
        fn key(&self, key: Key) -> String {
            (if self.short { key.short } else { key.long }).to_owned()
        }

        fn encode(&self) -> Vec<u8> {
            let mut root = serde_json::Map::new();
            root.insert(
                self.key(HEADER),
                json!({self.key(REPORT_ID): self.report_id, self.key(VERSION): format!("1.{}", self.minor)}),
            );
            if self.metrics {
                let mut m = serde_json::Map::new();
                if let Some(stats) = self.network_stats {
                    let mut ns = serde_json::Map::new();
                    for (key, v) in [BYTES_IN, BYTES_OUT, PACKETS_IN, PACKETS_OUT]
                        .into_iter()
                        .zip(stats)
                    {
                        if let Some(v) = v {
                            ns.insert(self.key(key), json!(v));
                        }
                    }
                    m.insert(self.key(NETWORK_STATS), ns.into());
                }
                for (key, lp) in [
                    (LISTENING_TCP_PORTS, &self.tcp),
                    (LISTENING_UDP_PORTS, &self.udp),
                ] {
                    if let Some((ports, total)) = lp {
                        let mut obj = serde_json::Map::new();
                        if let Some(ports) = ports {
                            let list: Vec<_> = ports
                                .iter()
                                .map(|p| json!({self.key(PORT): p, self.key(INTERFACE): "eth0"}))
                                .collect();
                            obj.insert(self.key(PORTS), list.into());
                        }
                        if let Some(t) = total {
                            obj.insert(self.key(TOTAL), json!(t));
                        }
                        m.insert(self.key(key), obj.into());
                    }
                }
                if let Some((conns, total)) = &self.connections {
                    let mut ec = serde_json::Map::new();
                    if let Some(conns) = conns {
                        let list: Vec<_> = conns.iter().map(|a| json!({self.key(REMOTE_ADDR): a.to_string(), self.key(LOCAL_PORT): 1234})).collect();
                        ec.insert(self.key(CONNECTIONS), list.into());
                    }
                    if let Some(t) = total {
                        ec.insert(self.key(TOTAL), json!(t));
                    }
                    m.insert(
                        self.key(TCP_CONNECTIONS),
                        json!({self.key(ESTABLISHED_CONNECTIONS): ec}),
                    );
                }
                root.insert(self.key(METRICS), m.into());
            }
            if let Some(custom) = &self.custom {
                let cm: serde_json::Map<_, _> = custom
                    .iter()
                    .map(|(name, v)| {
                        let entry = match v {
                            CustomValue::Number(x) => json!({"number": x}),
                            CustomValue::NumberList(xs) => json!({"number_list": xs}),
                            CustomValue::StringList(s) => json!({"string_list": s}),
                            CustomValue::IpList(ips) => json!({"ip_list": ips.iter().map(ToString::to_string).collect::<Vec<_>>()}),
                        };
                        (name.clone(), json!([entry]))
                    })
                    .collect();
                root.insert(self.key(CUSTOM_METRICS), cm.into());
            }
            let tree = serde_json::Value::Object(root);
            match self.format {
                Format::Json => tree.to_string().into_bytes(),
                Format::Cbor => cbor(&tree),
            }
        }

        /// The datapoints the report must give, worked out from the spec (§2.2 mapping).
        fn expected(&self) -> Vec<Datapoint> {
            let mut out = Vec::new();
            if self.metrics {
                let metrics = [
                    Metric::AllBytesIn,
                    Metric::AllBytesOut,
                    Metric::AllPacketsIn,
                    Metric::AllPacketsOut,
                ];
                for (metric, v) in metrics
                    .into_iter()
                    .zip(self.network_stats.unwrap_or_default())
                {
                    if let Some(v) = v {
                        out.push(dp(metric, Value::Number(v as f64)));
                    }
                }
                for (lp, list, num) in [
                    (
                        &self.tcp,
                        Metric::ListeningTcpPorts,
                        Metric::NumListeningTcpPorts,
                    ),
                    (
                        &self.udp,
                        Metric::ListeningUdpPorts,
                        Metric::NumListeningUdpPorts,
                    ),
                ] {
                    if let Some((ports, total)) = lp {
                        if let Some(ports) = ports {
                            out.push(dp(list, Value::Ports(ports.clone())));
                        }
                        match (total, ports) {
                            (Some(t), _) => out.push(dp(num, Value::Number(*t as f64))),
                            (None, Some(p)) => out.push(dp(num, Value::Number(p.len() as f64))),
                            (None, None) => {}
                        }
                    }
                }
                if let Some((conns, total)) = &self.connections {
                    if let Some(conns) = conns {
                        out.push(dp(
                            Metric::DestinationIpAddresses,
                            Value::Ips(conns.iter().map(|a| a.ip()).collect()),
                        ));
                    }
                    let n = total.or(conns.as_ref().map(|c| c.len() as u64));
                    if let Some(n) = n {
                        out.push(dp(
                            Metric::NumEstablishedTcpConnections,
                            Value::Number(n as f64),
                        ));
                    }
                }
            }
            for (name, v) in self.custom.iter().flatten() {
                out.push(dp(custom(name), v.to_value()));
            }
            out
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

        #[test]
        fn valid_reports_give_the_expected_datapoints(spec in spec()) {
            let bytes = spec.encode();
            let report = parse_report(&bytes, spec.format, usize::MAX).expect("valid report");
            prop_assert_eq!(report.report_id, spec.report_id);
            let types: BTreeMap<String, CustomMetricType> = spec
                .custom
                .iter()
                .flatten()
                .map(|(name, v)| (name.clone(), v.metric_type()))
                .collect();
            let got = report.datapoints(&thing(), AT, &|name| types.get(name).copied()).expect("known metrics");
            prop_assert_eq!(got, spec.expected());
        }
    }
}
