//! Test fixtures shared by the report modules' tests: the aws-api.md §3.5 examples, a custom
//! metric registry and shorthands for parsing and building datapoints.

use std::net::IpAddr;

use thingward_models::time::EpochMillis;
use thingward_models::{CustomMetricType, Datapoint, Metric, ThingName, Value};

use super::{Format, Report, ReportError, parse_report};

pub(super) const AT: EpochMillis = 1_717_171_717_000;
pub(super) const MAX: usize = 128 * 1024;

/// aws-api.md §3.5, long names.
pub(super) const LONG_EXAMPLE: &str = r#"{
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
pub(super) const SHORT_EXAMPLE: &str = r#"{"hed":{"rid":1717171717,"v":"1.0"},"met":{"ns":{"bi":5120,"bo":2048,"pi":40,"po":22},"tp":{"pts":[{"if":"eth0","pt":22},{"if":"eth0","pt":8883}],"t":2},"up":{"pts":[{"if":"eth0","pt":5353}],"t":1},"tc":{"ec":{"cs":[{"rad":"10.0.0.7:443","lp":50123,"li":"eth0"}],"t":1}}},"cmet":{"battery_pct":[{"number":87}]}}"#;

pub(super) fn thing() -> ThingName {
    ThingName::try_from("dev1").expect("valid thing name")
}

pub(super) fn registry(name: &str) -> Option<CustomMetricType> {
    match name {
        "battery_pct" => Some(CustomMetricType::Number),
        "task_ids" => Some(CustomMetricType::NumberList),
        "fw_flags" => Some(CustomMetricType::StringList),
        "peers" => Some(CustomMetricType::IpAddressList),
        _ => None,
    }
}

pub(super) fn dp(metric: Metric, value: Value) -> Datapoint {
    Datapoint {
        thing: thing(),
        metric,
        topic: None,
        timestamp: AT,
        value,
    }
}

pub(super) fn custom(name: &str) -> Metric {
    Metric::Custom(name.to_owned())
}

pub(super) fn cbor(tree: &serde_json::Value) -> Vec<u8> {
    let mut buf = Vec::new();
    ciborium::into_writer(tree, &mut buf).expect("encodes");
    buf
}

pub(super) fn json_tree(text: &str) -> serde_json::Value {
    serde_json::from_str(text).expect("test JSON")
}

pub(super) fn parse_json(tree: &serde_json::Value) -> Result<Report, ReportError> {
    parse_report(tree.to_string().as_bytes(), Format::Json, MAX)
}

pub(super) fn datapoints(bytes: &[u8], format: Format) -> Result<Vec<Datapoint>, ReportError> {
    parse_report(bytes, format, MAX)?.datapoints(&thing(), AT, &registry)
}

/// Parses, expecting a rejection; returns (code, message, report id).
pub(super) fn rejection(tree: &serde_json::Value) -> (&'static str, String, Option<i64>) {
    let e = parse_json(tree)
        .and_then(|r| r.datapoints(&thing(), AT, &registry).map(|_| r))
        .expect_err("rejected");
    (e.code(), e.to_string(), e.report_id())
}

pub(super) fn device_datapoints() -> Vec<Datapoint> {
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
