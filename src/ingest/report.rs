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
        /// The report id, when the caller could read one from the payload.
        report_id: Option<i64>,
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
            | Self::TrailingCbor { .. } => None,
            Self::InvalidPayload { report_id, .. } | Self::InvalidThingName { report_id, .. } => {
                *report_id
            }
            Self::UnknownMetric { report_id, .. }
            | Self::WrongMetricType { report_id, .. }
            | Self::DuplicateReportId { report_id } => Some(*report_id),
        }
    }

    /// Attaches a report id found elsewhere (for example by parsing the payload of a report
    /// whose topic was refused) to an error that does not know it yet. Errors that already know
    /// their report id, or that by nature cannot have one, are returned unchanged.
    pub(crate) fn with_report_id(mut self, id: Option<i64>) -> Self {
        match &mut self {
            Self::InvalidPayload { report_id, .. } | Self::InvalidThingName { report_id, .. }
                if report_id.is_none() =>
            {
                *report_id = id;
            }
            _ => {}
        }
        self
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
        let mut out: Vec<CustomMetric> = Vec::with_capacity(map.len());
        for (name, value) in map {
            let metric_path = path.field(name);
            if out.iter().any(|m| m.name == *name) {
                return Err(self.error(&metric_path, Problem::Duplicate));
            }
            out.push(CustomMetric {
                name: name.clone(),
                value: self.custom_value(value, &metric_path)?,
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn custom_value(&self, node: &Node, path: &Path<'_>) -> Result<CustomValue, ReportError> {
        const SHAPE: &str = "an array of one object with exactly one of number, number_list, \
                             string_list, ip_list";
        let entry = match node {
            Node::Array(items) if items.len() == 1 => &items[0],
            other => return Err(self.invalid(path, SHAPE, other)),
        };
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

/// A report topic, `$aws/things/{thing}/defender/metrics/{json|cbor}`, taken apart.
#[derive(Debug)]
pub(crate) struct ReportTopic<'a> {
    /// The thing segment exactly as in the topic, for the reply topic and body even when it is
    /// not a valid thing name.
    pub(crate) thing_segment: &'a str,
    /// The thing name, or the [`ReportError::InvalidThingName`] to reply with (its report id is
    /// unknown; attach it with [`ReportError::with_report_id`] after parsing the payload).
    pub(crate) thing: Result<ThingName, ReportError>,
    /// The payload format.
    pub(crate) format: Format,
}

/// Recognises a report topic. `None` means "not a Device Defender report topic" (including
/// the `/accepted` and `/rejected` reply topics, and uppercase `JSON`/`CBOR`); a topic of the
/// right shape whose thing name breaks the rules (empty, over 128 bytes, control characters) is
/// recognised and carries the error, so that the device gets a rejection.
pub(crate) fn parse_topic(topic: &str) -> Option<ReportTopic<'_>> {
    let (thing_segment, suffix) = topic
        .strip_prefix(TOPIC_PREFIX)?
        .split_once(TOPIC_METRICS)?;
    if thing_segment.contains('/') {
        return None;
    }
    let format = Format::from_suffix(suffix)?;
    let thing =
        ThingName::try_from(thing_segment).map_err(|source| ReportError::InvalidThingName {
            report_id: None,
            source,
        });
    Some(ReportTopic {
        thing_segment,
        thing,
        format,
    })
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
