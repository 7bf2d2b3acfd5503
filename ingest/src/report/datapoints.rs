//! A valid report becomes datapoints (`docs/specs/ingest.md` §1.5, aws-api.md §2.2): which
//! report field feeds which Device Defender metric, and each custom metric checked against the
//! registry.

use std::net::SocketAddr;

use thingward_models::registry::Registry;
use thingward_models::time::EpochMillis;
use thingward_models::{Datapoint, Metric, ThingName, Value};

use super::{CustomValue, Report, ReportError};
use crate::quoted;

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
    pub fn datapoints(
        &self,
        thing: &ThingName,
        at: EpochMillis,
        custom: &dyn Registry,
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
            let expected = custom.custom_metric_type(&cm.name).ok_or_else(unknown)?;
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

impl CustomValue {
    fn to_value(&self) -> Value {
        match self {
            Self::Number(x) => Value::Number(*x),
            Self::NumberList(v) => Value::Numbers(v.clone()),
            Self::StringList(v) => Value::Strings(v.clone()),
            Self::IpList(v) => Value::Ips(v.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::super::keys::*;
    use super::*;
    use crate::report::{Format, parse_report};
    use proptest::prelude::*;
    use serde_json::json;
    use std::collections::BTreeMap;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

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
        fn valid_reports_give_the_expected_datapoints(spec in spec()) {
            let bytes = spec.encode();
            let report = parse_report(&bytes, spec.format, usize::MAX).expect("valid report");
            prop_assert_eq!(report.report_id, spec.report_id);
            let types: BTreeMap<String, thingward_models::CustomMetricType> = spec
                .custom
                .iter()
                .flatten()
                .map(|(name, v)| (name.clone(), v.metric_type()))
                .collect();
            let got = report.datapoints(&thing(), AT, &|name: &str| types.get(name).copied()).expect("known metrics");
            prop_assert_eq!(got, spec.expected());
        }
    }
}
