//! thingward's HTTP batch of cloud-side and custom metric datapoints, for brokers, gateways and
//! scripts that measure what the device report cannot (messages, connections, authorization
//! failures) or report custom metrics on a device's behalf. The body is specified in
//! `docs/specs/ingest.md`:
//!
//! ```json
//! {"datapoints":[{"thingName":"t1","metric":"aws:num-messages-sent","value":{"count":5},
//!   "timestamp":1700000000.5,"topic":"sensors/t1/temp","cumulative":false}]}
//! ```
//!
//! A batch is all or nothing: every datapoint is validated before anything (the cumulative
//! counter state included) changes.

use std::borrow::Cow;
use std::net::IpAddr;

use serde::Deserialize;
use thingward_models::metric::MetricParseError;
use thingward_models::registry::Registry;
use thingward_models::time::{EpochMillis, seconds_to_millis};
use thingward_models::{
    CustomMetricType, Datapoint, Metric, MetricValue, NameError, ThingName, Value, ValueKind,
};

use crate::counters::Counters;
use crate::{is_valid_string_list_entry, quoted};

/// The latest accepted timestamp, 9999-12-31T23:59:59Z in epoch seconds.
const MAX_TIMESTAMP_SECONDS: f64 = 253_402_300_799.0;
/// The longest MQTT topic name (MQTT 3.1.1 / 5 length prefix).
const MAX_TOPIC_BYTES: usize = 65_535;

/// The batch body, for naming the datapoint at fault: each datapoint is kept as a JSON value
/// and decoded on its own, so that a shape error can name its index.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBatch {
    datapoints: Vec<serde_json::Value>,
}

/// The batch body decoded in one pass (the fast path). Any decoding error sends the body
/// through [`RawBatch`] instead, which reports it exactly as before.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TypedBatch<'a> {
    #[serde(borrow)]
    datapoints: Vec<RawDatapoint<'a>>,
}

/// One datapoint as sent. Strings borrow from the body where they have no escapes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawDatapoint<'a> {
    #[serde(borrow)]
    thing_name: Cow<'a, str>,
    #[serde(borrow)]
    metric: Cow<'a, str>,
    value: MetricValue,
    #[serde(default)]
    timestamp: Option<f64>,
    #[serde(default, borrow)]
    topic: Option<Cow<'a, str>>,
    #[serde(default)]
    cumulative: Option<bool>,
}

/// Why a batch was refused.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// The body is not JSON, or not an object with just a `datapoints` array.
    #[error("the batch body is invalid: {0}")]
    Body(#[source] serde_json::Error),
    /// One datapoint is invalid; the whole batch is refused.
    #[error("datapoints[{index}]: {problem}")]
    Datapoint {
        /// The position of the datapoint in `datapoints`.
        index: usize,
        /// What is wrong with it.
        #[source]
        problem: DatapointProblem,
    },
}

impl BatchError {
    /// The index of the offending datapoint, when one is to blame.
    #[cfg(test)]
    pub fn index(&self) -> Option<usize> {
        match self {
            Self::Body(_) => None,
            Self::Datapoint { index, .. } => Some(*index),
        }
    }
}

/// What is wrong with one datapoint of a batch.
#[derive(Debug, thiserror::Error)]
pub enum DatapointProblem {
    /// Not an object of the documented members (missing, unknown or mistyped member).
    #[error("{0}")]
    Shape(#[source] serde_json::Error),
    /// `thingName` breaks the thing-name rules.
    #[error("thingName: {0}")]
    ThingName(#[source] NameError),
    /// `metric` is an unknown `aws:` metric or not a valid metric name.
    #[error("metric: {0}")]
    Metric(#[source] MetricParseError),
    /// `metric` names a custom metric that is not defined.
    #[error("metric: custom metric '{0}' is not defined; create it with CreateCustomMetric first")]
    UndefinedCustomMetric(String),
    /// `value` sets no member or several.
    #[error(
        "value must set exactly one of count, number, numbers, strings, cidrs, ports; it sets {0}"
    )]
    ValueMembers(usize),
    /// `value` sets another member than the metric's kind takes.
    #[error("value: {metric} takes its value as `{expected}`")]
    WrongMember {
        /// The metric.
        metric: Metric,
        /// The member it takes.
        expected: &'static str,
    },
    /// A negative `count`.
    #[error("value.count must be ≥ 0; got {0}")]
    NegativeCount(i64),
    /// A non-finite number.
    #[error("value.{member} must hold finite numbers")]
    NotFinite {
        /// `number` or `numbers`.
        member: &'static str,
    },
    /// A port outside 0..=65535.
    #[error("value.ports[{index}] must be in 0..=65535; got {port}")]
    Port {
        /// Position in the list.
        index: usize,
        /// The value given.
        port: i64,
    },
    /// A `cidrs` entry that is not an IP address.
    #[error(
        "value.cidrs[{index}] must be an IPv4 or IPv6 address (a measured address, not a range); got '{value}'"
    )]
    Ip {
        /// Position in the list.
        index: usize,
        /// The value given, quoted safely.
        value: String,
    },
    /// A `strings` entry outside the allowed characters.
    #[error(
        "value.strings[{index}] must be a non-empty string of letters, digits and : _ - / .; got '{value}'"
    )]
    String {
        /// Position in the list.
        index: usize,
        /// The value given, quoted safely.
        value: String,
    },
    /// `timestamp` outside 0..=253402300799 epoch seconds.
    #[error("timestamp must be epoch seconds in 0..=253402300799; got {0}")]
    Timestamp(f64),
    /// `topic` on a metric that has no topic dimension.
    #[error("topic is only allowed on metrics that support a TOPIC_FILTER dimension; {0} does not")]
    TopicNotAllowed(Metric),
    /// `topic` is not an MQTT topic name.
    #[error("topic must be an MQTT topic name: 1..=65535 bytes without '+', '#' or NUL")]
    Topic,
    /// `cumulative: true` on a metric that is not a counter.
    #[error(
        "cumulative is only allowed on counter metrics (cumulative built-in counts and custom number metrics); {0} is not one"
    )]
    CumulativeNotAllowed(Metric),
    /// `cumulative: true` with a negative running total.
    #[error("the running total of a cumulative metric must be ≥ 0")]
    NegativeTotal,
}

/// A datapoint that passed validation.
#[derive(Debug)]
enum Checked {
    /// Recorded as is.
    Plain(Datapoint),
    /// A running total, recorded as the delta to the previous total of its series.
    Cumulative { datapoint: Datapoint, total: f64 },
}

/// A batch that passed validation, not yet applied to the cumulative counter state.
#[derive(Debug)]
pub struct CheckedBatch(Vec<Checked>);

/// Parses and validates a batch, then turns it into datapoints.
///
/// Datapoints without `timestamp` are stamped `now`. `custom` resolves custom metric names to
/// their type. Datapoints with `"cumulative": true` go through `counters`: the first total of a
/// series yields no datapoint (it becomes the baseline), later ones yield the delta. The output
/// keeps the batch order.
///
/// # Errors
/// [`BatchError::Body`] for a malformed body, [`BatchError::Datapoint`] naming the first invalid
/// datapoint. On error nothing is recorded and `counters` is unchanged.
#[cfg(test)]
pub fn parse_batch(
    bytes: &[u8],
    now: EpochMillis,
    custom: &dyn Registry,
    counters: &mut Counters,
) -> Result<Vec<Datapoint>, BatchError> {
    Ok(decode_batch(bytes, now, custom)?.into_datapoints(counters))
}

/// Parses and validates a batch without touching any state, so it can run outside the engine
/// lock; [`CheckedBatch::into_datapoints`] then applies the cumulative counters.
///
/// # Errors
/// As [`parse_batch`].
pub fn decode_batch(
    bytes: &[u8],
    now: EpochMillis,
    custom: &dyn Registry,
) -> Result<CheckedBatch, BatchError> {
    // Fast path: one pass, borrowing strings from the body.
    if let Ok(typed) = serde_json::from_slice::<TypedBatch<'_>>(bytes) {
        return check_all(typed.datapoints.into_iter().map(Ok), now, custom);
    }
    // Something does not decode: find and name it (or accept what the typed pass refused but
    // the per-datapoint decoding allows, such as a repeated key, where the last one wins).
    let raw: RawBatch = serde_json::from_slice(bytes).map_err(BatchError::Body)?;
    check_all(
        raw.datapoints.iter().map(RawDatapoint::deserialize),
        now,
        custom,
    )
}

/// Checks every datapoint, naming the first bad one by its index.
fn check_all<'a>(
    raws: impl Iterator<Item = Result<RawDatapoint<'a>, serde_json::Error>>,
    now: EpochMillis,
    custom: &dyn Registry,
) -> Result<CheckedBatch, BatchError> {
    raws.enumerate()
        .map(|(index, raw)| {
            raw.map_err(DatapointProblem::Shape)
                .and_then(|raw| check(raw, now, custom))
                .map_err(|problem| BatchError::Datapoint { index, problem })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(CheckedBatch)
}

impl CheckedBatch {
    /// Applies the cumulative counters (the whole batch is valid: only now does their state
    /// change) and returns the datapoints to record, in batch order.
    pub fn into_datapoints(self, counters: &mut Counters) -> Vec<Datapoint> {
        let mut out = Vec::with_capacity(self.0.len());
        for c in self.0 {
            match c {
                Checked::Plain(dp) => out.push(dp),
                Checked::Cumulative {
                    mut datapoint,
                    total,
                } => {
                    let delta = counters.delta(
                        &datapoint.thing,
                        &datapoint.metric,
                        datapoint.topic.as_deref(),
                        total,
                    );
                    if let Some(delta) = delta {
                        datapoint.value = Value::Number(delta);
                        out.push(datapoint);
                    }
                }
            }
        }
        out
    }
}

fn check(
    raw: RawDatapoint<'_>,
    now: EpochMillis,
    custom: &dyn Registry,
) -> Result<Checked, DatapointProblem> {
    let thing =
        ThingName::try_from(raw.thing_name.into_owned()).map_err(DatapointProblem::ThingName)?;
    let metric = raw
        .metric
        .parse::<Metric>()
        .map_err(DatapointProblem::Metric)?;
    let (kind, custom_type) = match (&metric, metric.builtin_kind()) {
        (_, Some(kind)) => (kind, None),
        (Metric::Custom(name), None) => {
            let t = custom
                .custom_metric_type(name)
                .ok_or_else(|| DatapointProblem::UndefinedCustomMetric(quoted(name)))?;
            (t.value_kind(), Some(t))
        }
        // Every built-in metric has a kind; a non-custom metric without one cannot exist.
        (_, None) => {
            return Err(DatapointProblem::UndefinedCustomMetric(quoted(
                metric.as_str(),
            )));
        }
    };
    let value = convert_value(&metric, kind, custom_type.is_some(), raw.value)?;

    let timestamp = match raw.timestamp {
        None => now,
        Some(s) if s.is_finite() && (0.0..=MAX_TIMESTAMP_SECONDS).contains(&s) => {
            seconds_to_millis(s)
        }
        Some(s) => return Err(DatapointProblem::Timestamp(s)),
    };

    if let Some(topic) = &raw.topic {
        if !metric.supports_dimension() {
            return Err(DatapointProblem::TopicNotAllowed(metric));
        }
        if !is_valid_topic_name(topic) {
            return Err(DatapointProblem::Topic);
        }
    }

    let datapoint = Datapoint {
        thing,
        metric,
        topic: raw.topic.map(Cow::into_owned),
        timestamp,
        value,
    };
    if !raw.cumulative.unwrap_or(false) {
        return Ok(Checked::Plain(datapoint));
    }
    let counter = match custom_type {
        Some(t) => t == CustomMetricType::Number,
        None => datapoint.metric.is_cumulative(),
    };
    if !counter {
        return Err(DatapointProblem::CumulativeNotAllowed(datapoint.metric));
    }
    match datapoint.value.as_number() {
        Some(total) if total >= 0.0 => Ok(Checked::Cumulative { datapoint, total }),
        _ => Err(DatapointProblem::NegativeTotal),
    }
}

/// Checks that `value` sets the one member `metric`'s kind takes, with valid contents, and
/// converts it.
fn convert_value(
    metric: &Metric,
    kind: ValueKind,
    is_custom: bool,
    value: MetricValue,
) -> Result<Value, DatapointProblem> {
    let set = value.members_set();
    if set != 1 {
        return Err(DatapointProblem::ValueMembers(set));
    }
    let expected = match kind {
        ValueKind::Number if is_custom => "number",
        ValueKind::Number => "count",
        ValueKind::NumberList => "numbers",
        ValueKind::StringList => "strings",
        ValueKind::IpList => "cidrs",
        ValueKind::PortList => "ports",
    };
    let wrong = || DatapointProblem::WrongMember {
        metric: metric.clone(),
        expected,
    };
    Ok(match kind {
        ValueKind::Number if is_custom => {
            let x = value.number.ok_or_else(wrong)?;
            if !x.is_finite() {
                return Err(DatapointProblem::NotFinite { member: "number" });
            }
            Value::Number(x)
        }
        ValueKind::Number => {
            let n = value.count.ok_or_else(wrong)?;
            if n < 0 {
                return Err(DatapointProblem::NegativeCount(n));
            }
            Value::Number(n as f64)
        }
        ValueKind::NumberList => {
            let xs = value.numbers.ok_or_else(wrong)?;
            if !xs.iter().all(|x| x.is_finite()) {
                return Err(DatapointProblem::NotFinite { member: "numbers" });
            }
            Value::Numbers(xs)
        }
        ValueKind::StringList => {
            let strings = value.strings.ok_or_else(wrong)?;
            if let Some((index, s)) = strings
                .iter()
                .enumerate()
                .find(|(_, s)| !is_valid_string_list_entry(s))
            {
                return Err(DatapointProblem::String {
                    index,
                    value: quoted(s),
                });
            }
            Value::Strings(strings)
        }
        ValueKind::IpList => {
            let cidrs = value.cidrs.ok_or_else(wrong)?;
            let mut ips = Vec::with_capacity(cidrs.len());
            for (index, s) in cidrs.iter().enumerate() {
                let ip = s.parse::<IpAddr>().map_err(|_| DatapointProblem::Ip {
                    index,
                    value: quoted(s),
                })?;
                ips.push(ip);
            }
            Value::Ips(ips)
        }
        ValueKind::PortList => {
            let ports = value.ports.ok_or_else(wrong)?;
            let mut out = Vec::with_capacity(ports.len());
            for (index, &port) in ports.iter().enumerate() {
                out.push(u16::try_from(port).map_err(|_| DatapointProblem::Port { index, port })?);
            }
            Value::Ports(out)
        }
    })
}

/// An MQTT topic name: 1..=65535 bytes, no wildcards, no NUL.
fn is_valid_topic_name(topic: &str) -> bool {
    !topic.is_empty() && topic.len() <= MAX_TOPIC_BYTES && !topic.contains(['+', '#', '\0'])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: EpochMillis = 1_700_000_100_000;

    fn registry(name: &str) -> Option<CustomMetricType> {
        match name {
            "battery_pct" => Some(CustomMetricType::Number),
            "task_ids" => Some(CustomMetricType::NumberList),
            "fw_flags" => Some(CustomMetricType::StringList),
            "peers" => Some(CustomMetricType::IpAddressList),
            _ => None,
        }
    }

    fn thing(name: &str) -> ThingName {
        ThingName::try_from(name).expect("valid thing name")
    }

    fn parse(
        body: &serde_json::Value,
        counters: &mut Counters,
    ) -> Result<Vec<Datapoint>, BatchError> {
        parse_batch(body.to_string().as_bytes(), NOW, &registry, counters)
    }

    /// A one-datapoint batch; returns its error message.
    fn refusal(datapoint: serde_json::Value) -> String {
        let body = json!({"datapoints": [
            {"thingName": "ok", "metric": "aws:num-disconnects", "value": {"count": 1}},
            datapoint,
        ]});
        let e = parse(&body, &mut Counters::new()).expect_err("refused");
        assert_eq!(e.index(), Some(1), "{e}");
        e.to_string()
    }

    #[test]
    fn a_valid_batch_gives_datapoints_in_order() {
        let body = json!({"datapoints": [
            {"thingName": "t1", "metric": "aws:num-messages-sent", "value": {"count": 5},
             "timestamp": 1_700_000_000.5, "topic": "sensors/t1/temp", "cumulative": false},
            {"thingName": "t1", "metric": "aws:source-ip-address", "value": {"cidrs": ["192.0.2.1", "2001:db8::1"]}},
            {"thingName": "t2", "metric": "aws:listening-tcp-ports", "value": {"ports": [0, 22, 65535]}},
            {"thingName": "t2", "metric": "battery_pct", "value": {"number": -1.25}, "timestamp": 1_700_000_000},
            {"thingName": "t2", "metric": "task_ids", "value": {"numbers": [1, 2.5]}},
            {"thingName": "t2", "metric": "fw_flags", "value": {"strings": ["safe_mode"]}},
            {"thingName": "t2", "metric": "peers", "value": {"cidrs": ["10.0.0.1"]}},
        ]});
        let got = parse(&body, &mut Counters::new()).expect("accepted");
        let dp = |t: &str, metric: Metric, topic: Option<&str>, timestamp, value| Datapoint {
            thing: thing(t),
            metric,
            topic: topic.map(str::to_owned),
            timestamp,
            value,
        };
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        assert_eq!(
            got,
            vec![
                dp(
                    "t1",
                    Metric::NumMessagesSent,
                    Some("sensors/t1/temp"),
                    1_700_000_000_500,
                    Value::Number(5.0)
                ),
                dp(
                    "t1",
                    Metric::SourceIpAddress,
                    None,
                    NOW,
                    Value::Ips(vec![ip("192.0.2.1"), ip("2001:db8::1")])
                ),
                dp(
                    "t2",
                    Metric::ListeningTcpPorts,
                    None,
                    NOW,
                    Value::Ports(vec![0, 22, 65535])
                ),
                dp(
                    "t2",
                    Metric::Custom("battery_pct".into()),
                    None,
                    1_700_000_000_000,
                    Value::Number(-1.25)
                ),
                dp(
                    "t2",
                    Metric::Custom("task_ids".into()),
                    None,
                    NOW,
                    Value::Numbers(vec![1.0, 2.5])
                ),
                dp(
                    "t2",
                    Metric::Custom("fw_flags".into()),
                    None,
                    NOW,
                    Value::Strings(vec!["safe_mode".into()])
                ),
                dp(
                    "t2",
                    Metric::Custom("peers".into()),
                    None,
                    NOW,
                    Value::Ips(vec![ip("10.0.0.1")])
                ),
            ]
        );
        assert!(
            parse(&json!({"datapoints": []}), &mut Counters::new())
                .expect("empty")
                .is_empty()
        );
    }

    #[test]
    fn malformed_bodies_are_refused_without_an_index() {
        for body in [
            &b"not json"[..],
            b"{}",
            b"{\"datapoints\": {}}",
            b"{\"datapoints\": [], \"extra\": 1}",
            b"[]",
        ] {
            let e = parse_batch(body, NOW, &registry, &mut Counters::new()).expect_err("refused");
            assert!(matches!(e, BatchError::Body(_)), "{e}");
            assert_eq!(e.index(), None);
            assert!(
                e.to_string().starts_with("the batch body is invalid: "),
                "{e}"
            );
        }
    }

    #[test]
    fn datapoint_shape_errors_name_the_index() {
        let m =
            refusal(json!({"thing": "t1", "metric": "aws:num-disconnects", "value": {"count": 1}}));
        assert!(m.starts_with("datapoints[1]: unknown field `thing`"), "{m}");
        let m = refusal(json!({"metric": "aws:num-disconnects", "value": {"count": 1}}));
        assert_eq!(m, "datapoints[1]: missing field `thingName`");
        let m = refusal(
            json!({"thingName": "t", "metric": "aws:num-disconnects", "value": {"count": 1.5}}),
        );
        assert!(
            m.starts_with("datapoints[1]: invalid type: floating point `1.5`"),
            "{m}"
        );
        let m = refusal(json!(7));
        assert!(
            m.starts_with("datapoints[1]: invalid type: integer `7`"),
            "{m}"
        );
    }

    #[test]
    fn thing_names_follow_the_rules() {
        let m = refusal(
            json!({"thingName": "x".repeat(129), "metric": "aws:num-disconnects", "value": {"count": 1}}),
        );
        assert_eq!(
            m,
            "datapoints[1]: thingName: thing name is 129 bytes long; at most 128 are allowed"
        );
        let m = refusal(
            json!({"thingName": "a\u{1}b", "metric": "aws:num-disconnects", "value": {"count": 1}}),
        );
        assert!(m.starts_with("datapoints[1]: thingName: thing name"), "{m}");
    }

    #[test]
    fn metrics_must_be_known() {
        let m = refusal(json!({"thingName": "t", "metric": "aws:nope", "value": {"count": 1}}));
        assert_eq!(
            m,
            "datapoints[1]: metric: unknown built-in metric 'aws:nope'"
        );
        let m = refusal(json!({"thingName": "t", "metric": "cpu_temp", "value": {"number": 1}}));
        assert_eq!(
            m,
            "datapoints[1]: metric: custom metric 'cpu_temp' is not defined; create it with CreateCustomMetric first"
        );
        let m = refusal(json!({"thingName": "t", "metric": "bad name", "value": {"number": 1}}));
        assert!(
            m.starts_with("datapoints[1]: metric: metric name 'bad name' must match"),
            "{m}"
        );
    }

    #[test]
    fn values_must_match_the_metric_kind() {
        let cases = [
            (
                json!({}),
                "value must set exactly one of count, number, numbers, strings, cidrs, ports; it sets 0",
            ),
            (
                json!({"count": 1, "number": 1}),
                "value must set exactly one of count, number, numbers, strings, cidrs, ports; it sets 2",
            ),
            (
                json!({"number": 1}),
                "value: aws:num-messages-sent takes its value as `count`",
            ),
            (json!({"count": -1}), "value.count must be ≥ 0; got -1"),
        ];
        for (value, want) in cases {
            let m = refusal(
                json!({"thingName": "t", "metric": "aws:num-messages-sent", "value": value}),
            );
            assert_eq!(m, format!("datapoints[1]: {want}"));
        }
        let m = refusal(json!({"thingName": "t", "metric": "battery_pct", "value": {"count": 1}}));
        assert_eq!(
            m,
            "datapoints[1]: value: battery_pct takes its value as `number`"
        );
        let m = refusal(json!({"thingName": "t", "metric": "peers", "value": {"strings": ["a"]}}));
        assert_eq!(m, "datapoints[1]: value: peers takes its value as `cidrs`");
        let m = refusal(
            json!({"thingName": "t", "metric": "aws:listening-udp-ports", "value": {"ports": [53, 65536]}}),
        );
        assert_eq!(
            m,
            "datapoints[1]: value.ports[1] must be in 0..=65535; got 65536"
        );
        let m = refusal(
            json!({"thingName": "t", "metric": "aws:listening-udp-ports", "value": {"ports": [-1]}}),
        );
        assert_eq!(
            m,
            "datapoints[1]: value.ports[0] must be in 0..=65535; got -1"
        );
        for bad in ["10.0.0.0/8", "300.1.1.1", "localhost", ""] {
            let m = refusal(
                json!({"thingName": "t", "metric": "aws:source-ip-address", "value": {"cidrs": ["10.0.0.1", bad]}}),
            );
            assert!(
                m.starts_with("datapoints[1]: value.cidrs[1] must be an IPv4 or IPv6 address"),
                "{m}"
            );
        }
        let m =
            refusal(json!({"thingName": "t", "metric": "fw_flags", "value": {"strings": ["a b"]}}));
        assert!(
            m.starts_with("datapoints[1]: value.strings[0] must be a non-empty string"),
            "{m}"
        );
    }

    #[test]
    fn timestamps_are_epoch_seconds_in_range() {
        for bad in [-1.0, 1e12] {
            let m = refusal(
                json!({"thingName": "t", "metric": "aws:num-disconnects", "value": {"count": 1}, "timestamp": bad}),
            );
            assert!(
                m.starts_with("datapoints[1]: timestamp must be epoch seconds"),
                "{m}"
            );
        }
        let m = refusal(
            json!({"thingName": "t", "metric": "aws:num-disconnects", "value": {"count": 1}, "timestamp": "soon"}),
        );
        assert!(m.starts_with("datapoints[1]: invalid type: string"), "{m}");
    }

    #[test]
    fn topics_only_on_dimensioned_metrics_and_valid() {
        let m = refusal(
            json!({"thingName": "t", "metric": "aws:num-disconnects", "value": {"count": 1}, "topic": "a/b"}),
        );
        assert_eq!(
            m,
            "datapoints[1]: topic is only allowed on metrics that support a TOPIC_FILTER dimension; aws:num-disconnects does not"
        );
        for bad in ["", "a/+/b", "a/#", "a\0b"] {
            let m = refusal(
                json!({"thingName": "t", "metric": "aws:num-messages-received", "value": {"count": 1}, "topic": bad}),
            );
            assert!(
                m.starts_with("datapoints[1]: topic must be an MQTT topic name"),
                "{m}"
            );
        }
    }

    #[test]
    fn cumulative_totals_become_deltas() {
        let mut counters = Counters::new();
        let batch = |total: i64| {
            json!({"datapoints": [{"thingName": "t", "metric": "aws:num-messages-sent",
                "value": {"count": total}, "topic": "a/b", "cumulative": true}]})
        };
        // The first total is the baseline only.
        assert!(
            parse(&batch(100), &mut counters)
                .expect("accepted")
                .is_empty()
        );
        let got = parse(&batch(130), &mut counters).expect("accepted");
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].value, Value::Number(30.0));
        assert_eq!(got[0].topic.as_deref(), Some("a/b"));
        // A restarted counter: the new total is the delta.
        let got = parse(&batch(4), &mut counters).expect("accepted");
        assert_eq!(got[0].value, Value::Number(4.0));
        // Two totals of one series in one batch apply in order.
        let body = json!({"datapoints": [
            {"thingName": "t", "metric": "aws:num-messages-sent", "value": {"count": 10}, "topic": "a/b", "cumulative": true},
            {"thingName": "t", "metric": "aws:num-messages-sent", "value": {"count": 15}, "topic": "a/b", "cumulative": true},
        ]});
        let got = parse(&body, &mut counters).expect("accepted");
        assert_eq!(
            got.iter().map(|d| d.value.clone()).collect::<Vec<_>>(),
            vec![Value::Number(6.0), Value::Number(5.0)]
        );
        // Custom number metrics may be cumulative too.
        let custom = json!({"datapoints": [{"thingName": "t", "metric": "battery_pct", "value": {"number": 3.5}, "cumulative": true}]});
        assert!(parse(&custom, &mut counters).expect("accepted").is_empty());
        assert_eq!(counters.series(), 2);
    }

    #[test]
    fn cumulative_only_on_counters() {
        for (metric, value) in [
            ("aws:num-listening-tcp-ports", json!({"count": 1})),
            ("aws:message-byte-size", json!({"count": 1})),
            ("aws:source-ip-address", json!({"cidrs": []})),
            ("task_ids", json!({"numbers": [1]})),
        ] {
            let m = refusal(
                json!({"thingName": "t", "metric": metric, "value": value, "cumulative": true}),
            );
            assert!(
                m.starts_with("datapoints[1]: cumulative is only allowed on counter metrics"),
                "{m}"
            );
            assert!(m.ends_with(&format!("{metric} is not one")), "{m}");
        }
        let m = refusal(
            json!({"thingName": "t", "metric": "battery_pct", "value": {"number": -1}, "cumulative": true}),
        );
        assert_eq!(
            m,
            "datapoints[1]: the running total of a cumulative metric must be ≥ 0"
        );
    }

    #[test]
    fn a_refused_batch_changes_no_counter() {
        let mut counters = Counters::new();
        let valid = json!({"thingName": "t", "metric": "aws:num-disconnects", "value": {"count": 50}, "cumulative": true});
        let invalid = json!({"thingName": "t", "metric": "aws:nope", "value": {"count": 1}});
        let e = parse(
            &json!({"datapoints": [valid.clone(), invalid]}),
            &mut counters,
        )
        .expect_err("refused");
        assert_eq!(e.index(), Some(1));
        assert_eq!(counters.series(), 0);
        // So the same total is still a first total, not a delta of 0.
        assert!(
            parse(&json!({"datapoints": [valid]}), &mut counters)
                .expect("accepted")
                .is_empty()
        );
        assert_eq!(counters.series(), 1);
    }
}
