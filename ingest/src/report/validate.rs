//! The validation walk: checks the decoded tree against the report rules (`docs/specs/ingest.md`
//! §1.3, §1.4) and builds the typed [`Report`]. Every error names the field with its long-name
//! path (`metrics.listening_tcp_ports.ports[1].port`) and echoes the report id whenever the
//! header holds a valid one, whatever else is wrong.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use thingward_models::CustomMetricType;

use super::keys::*;
use super::value::Node;
use super::{
    CustomMetric, CustomValue, DeviceMetrics, EstablishedConnections, ListeningPorts, NetworkStats,
    Problem, Report, ReportError,
};
use crate::is_valid_string_list_entry;

/// Validates a decoded report.
///
/// # Errors
/// [`ReportError::InvalidPayload`] for the first rule the report breaks.
pub(super) fn validate(root: &Node) -> Result<Report, ReportError> {
    Walker {
        report_id: peek_report_id(root),
    }
    .report(root)
}

/// The only report major version thingward understands.
const SUPPORTED_MAJOR_VERSION: &str = "1";

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
#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use crate::report::{Format, parse_report};
    use serde_json::json;
    use thingward_models::Value;

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
}
