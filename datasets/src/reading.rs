//! One device's values for one 5-minute slot, and their conversion to datapoints.

use std::net::IpAddr;
use thingward_models::time::EpochMillis;
use thingward_models::{Datapoint, Metric, MetricSide, ThingName, Value};

/// Every metric the generator emits, in wire-name order (the row order of a history part
/// file): the 13 ML metrics plus the listening-port sets and the destination addresses.
pub const METRICS: [Metric; 16] = [
    Metric::AllBytesIn,
    Metric::AllBytesOut,
    Metric::AllPacketsIn,
    Metric::AllPacketsOut,
    Metric::DestinationIpAddresses,
    Metric::ListeningTcpPorts,
    Metric::ListeningUdpPorts,
    Metric::MessageByteSize,
    Metric::NumAuthorizationFailures,
    Metric::NumConnectionAttempts,
    Metric::NumDisconnects,
    Metric::NumEstablishedTcpConnections,
    Metric::NumListeningTcpPorts,
    Metric::NumListeningUdpPorts,
    Metric::NumMessagesReceived,
    Metric::NumMessagesSent,
];

/// A borrowed datapoint value of a [`Reading`]: the kinds the generator emits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ValueRef<'a> {
    /// A number (`Value::Number`).
    Number(f64),
    /// A port set (`Value::Ports`), sorted.
    Ports(&'a [u16]),
    /// An address set (`Value::Ips`), sorted.
    Ips(&'a [IpAddr]),
}

impl ValueRef<'_> {
    /// The owned value.
    pub fn to_value(self) -> Value {
        match self {
            Self::Number(x) => Value::Number(x),
            Self::Ports(p) => Value::Ports(p.to_vec()),
            Self::Ips(ips) => Value::Ips(ips.to_vec()),
        }
    }
}

/// One device's values for one slot. Counts are whole numbers held as `f64`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reading {
    /// False while the device is offline (a regional outage): it reports nothing.
    pub online: bool,
    /// True while the device reaches the broker but holds no session long enough to send its
    /// metrics report (a degraded regional link): only the broker-side metrics
    /// ([`MetricSide::Cloud`]) are reported.
    pub cloud_only: bool,
    /// `aws:all-bytes-in`
    pub bytes_in: f64,
    /// `aws:all-bytes-out`
    pub bytes_out: f64,
    /// `aws:all-packets-in`
    pub packets_in: f64,
    /// `aws:all-packets-out`
    pub packets_out: f64,
    /// `aws:message-byte-size`: mean size of the messages sent in the slot; `None` when none
    /// were sent.
    pub message_byte_size: Option<f64>,
    /// `aws:num-authorization-failures`
    pub authorization_failures: f64,
    /// `aws:num-connection-attempts`
    pub connection_attempts: f64,
    /// `aws:num-disconnects`
    pub disconnects: f64,
    /// `aws:num-established-tcp-connections`
    pub established_tcp: f64,
    /// `aws:num-messages-received`
    pub messages_received: f64,
    /// `aws:num-messages-sent`
    pub messages_sent: f64,
    /// `aws:listening-tcp-ports` (sorted; its length is `aws:num-listening-tcp-ports`)
    pub tcp_ports: Vec<u16>,
    /// `aws:listening-udp-ports` (sorted; its length is `aws:num-listening-udp-ports`)
    pub udp_ports: Vec<u16>,
    /// `aws:destination-ip-addresses` (sorted)
    pub destination_ips: Vec<IpAddr>,
}

impl Reading {
    /// Copies `other` into `self`, reusing `self`'s buffers.
    pub fn copy_from(&mut self, other: &Reading) {
        self.online = other.online;
        self.cloud_only = other.cloud_only;
        self.bytes_in = other.bytes_in;
        self.bytes_out = other.bytes_out;
        self.packets_in = other.packets_in;
        self.packets_out = other.packets_out;
        self.message_byte_size = other.message_byte_size;
        self.authorization_failures = other.authorization_failures;
        self.connection_attempts = other.connection_attempts;
        self.disconnects = other.disconnects;
        self.established_tcp = other.established_tcp;
        self.messages_received = other.messages_received;
        self.messages_sent = other.messages_sent;
        self.tcp_ports.clone_from(&other.tcp_ports);
        self.udp_ports.clone_from(&other.udp_ports);
        self.destination_ips.clone_from(&other.destination_ips);
    }

    /// The number of a numeric metric (`None` offline, for device-side metrics while only
    /// the broker's are reported, for list metrics, and for the message size of a slot without
    /// messages).
    pub fn number(&self, metric: &Metric) -> Option<f64> {
        if !self.reports(metric) {
            return None;
        }
        Some(match metric {
            Metric::AllBytesIn => self.bytes_in,
            Metric::AllBytesOut => self.bytes_out,
            Metric::AllPacketsIn => self.packets_in,
            Metric::AllPacketsOut => self.packets_out,
            Metric::MessageByteSize => return self.message_byte_size,
            Metric::NumAuthorizationFailures => self.authorization_failures,
            Metric::NumConnectionAttempts => self.connection_attempts,
            Metric::NumDisconnects => self.disconnects,
            Metric::NumEstablishedTcpConnections => self.established_tcp,
            Metric::NumListeningTcpPorts => self.tcp_ports.len() as f64,
            Metric::NumListeningUdpPorts => self.udp_ports.len() as f64,
            Metric::NumMessagesReceived => self.messages_received,
            Metric::NumMessagesSent => self.messages_sent,
            _ => return None,
        })
    }

    /// The value of `metric`, or `None` when the device reports no datapoint for it.
    pub fn value(&self, metric: &Metric) -> Option<Value> {
        self.value_ref(metric).map(ValueRef::to_value)
    }

    /// The value of `metric` without copying its list, or `None` when the device reports no
    /// datapoint for it (for writers that store values column by column).
    pub fn value_ref(&self, metric: &Metric) -> Option<ValueRef<'_>> {
        if !self.reports(metric) {
            return None;
        }
        match metric {
            Metric::ListeningTcpPorts => Some(ValueRef::Ports(&self.tcp_ports)),
            Metric::ListeningUdpPorts => Some(ValueRef::Ports(&self.udp_ports)),
            Metric::DestinationIpAddresses => Some(ValueRef::Ips(&self.destination_ips)),
            m => self.number(m).map(ValueRef::Number),
        }
    }

    /// Whether the device reports `metric` in this slot at all: online, and either holding a
    /// session or `metric` measured by the broker.
    pub fn reports(&self, metric: &Metric) -> bool {
        self.online && (!self.cloud_only || metric.side() == MetricSide::Cloud)
    }

    /// Whether `metric`'s datapoint differs between two readings (present in one only, or
    /// with different values).
    pub fn differs(&self, other: &Reading, metric: &Metric) -> bool {
        self.value(metric) != other.value(metric)
    }

    /// The datapoint of `metric`, if the device reports one.
    pub fn datapoint(
        &self,
        metric: &Metric,
        thing: &ThingName,
        timestamp: EpochMillis,
    ) -> Option<Datapoint> {
        self.value(metric).map(|value| Datapoint {
            thing: thing.clone(),
            metric: metric.clone(),
            topic: None,
            timestamp,
            value,
        })
    }

    /// Appends the reading's datapoints, in [`METRICS`] order.
    pub fn push_datapoints(
        &self,
        thing: &ThingName,
        timestamp: EpochMillis,
        out: &mut Vec<Datapoint>,
    ) {
        if !self.online {
            return;
        }
        out.extend(
            METRICS
                .iter()
                .filter_map(|m| self.datapoint(m, thing, timestamp)),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_are_in_wire_name_order_and_cover_the_ml_metrics() {
        assert!(METRICS.windows(2).all(|w| w[0].as_str() < w[1].as_str()));
        let ml: Vec<&Metric> = Metric::BUILTIN.iter().filter(|m| m.ml_capable()).collect();
        assert_eq!(ml.len(), 13);
        assert!(ml.iter().all(|m| METRICS.contains(m)));
    }

    #[test]
    fn offline_readings_report_nothing() {
        let r = Reading::default();
        let thing = ThingName::try_from("t").expect("name");
        let mut out = Vec::new();
        r.push_datapoints(&thing, 0, &mut out);
        assert!(out.is_empty());
        let r = Reading {
            online: true,
            ..Reading::default()
        };
        r.push_datapoints(&thing, 0, &mut out);
        assert_eq!(out.len(), 15, "no message size without messages");
    }
}
