//! The report's field names: every key in its long and short spelling (aws-api.md §3.3), and
//! the value keys of a custom metric entry (§3.4).

use thingward_models::CustomMetricType;

/// A report field name in its long and short spellings (aws-api.md §3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Key {
    /// The long name (`network_stats`); also the spelling used in error paths.
    pub(super) long: &'static str,
    /// The short name (`ns`).
    pub(super) short: &'static str,
}

impl Key {
    pub(super) fn matches(self, name: &str) -> bool {
        name == self.long || name == self.short
    }
}

/// Declares the key constants and, for tests, the table of all of them.
macro_rules! report_keys {
    ($($id:ident = $long:literal / $short:literal;)*) => {
        $(
            #[doc = concat!("`", $long, "` / `", $short, "`")]
            pub(super) const $id: Key = Key { long: $long, short: $short };
        )*
        /// Every report field name with its short form, in the order of aws-api.md §3.3.
        #[cfg(test)]
        pub(super) const KEYS: &[Key] = &[$($id),*];
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
pub(super) const CUSTOM_VALUE_KEYS: [(&str, CustomMetricType); 4] = [
    ("number", CustomMetricType::Number),
    ("number_list", CustomMetricType::NumberList),
    ("string_list", CustomMetricType::StringList),
    ("ip_list", CustomMetricType::IpAddressList),
];

/// The report key that carries values of a custom metric type.
pub(super) fn custom_value_key(t: CustomMetricType) -> &'static str {
    CUSTOM_VALUE_KEYS
        .iter()
        .find(|(_, kind)| *kind == t)
        .map_or("?", |(key, _)| key)
}
#[cfg(test)]
mod tests {
    use super::*;

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
}
