//! Built-in device archetypes: what a sensor, a camera, a gateway, a smart plug and a vehicle
//! tracker send, receive and listen on, per 5-minute slot.
//!
//! Rates differ by orders of magnitude between archetypes (a plug sends ~1 message per slot, a
//! gateway ~400; a camera streams ~20 MB out). Each device draws its own rate multiplier from a
//! lognormal around its archetype, so archetypes overlap at the edges as real fleets do.

/// One device archetype. All rates are medians per 5-minute slot for a device with rate
/// multiplier 1 at the peak-free point of its daily cycle.
#[derive(Debug, Clone, PartialEq)]
pub struct Archetype {
    /// The name scenarios refer to (`sensor`, `camera`, …).
    pub name: &'static str,
    /// MQTT messages published.
    pub messages_sent: f64,
    /// MQTT messages delivered to the device.
    pub messages_received: f64,
    /// Median published message size in bytes (lognormal, see `size_sigma`).
    pub message_bytes: f64,
    /// Lognormal sigma of one message's size (heavy tail).
    pub size_sigma: f64,
    /// Median delivered message size in bytes.
    pub received_message_bytes: f64,
    /// Non-MQTT bytes out (video, bulk upload).
    pub background_bytes_out: f64,
    /// Non-MQTT bytes in.
    pub background_bytes_in: f64,
    /// Mean bytes per packet out.
    pub packet_bytes_out: f64,
    /// Mean bytes per packet in.
    pub packet_bytes_in: f64,
    /// Established TCP connections (mean).
    pub established_tcp: f64,
    /// Authorization failures (mean; mostly zero).
    pub authorization_failures: f64,
    /// Connection attempts outside reboots (mean).
    pub connection_attempts: f64,
    /// Disconnects outside reboots (mean).
    pub disconnects: f64,
    /// Negative-binomial shape of message counts (smaller = more over-dispersed).
    pub dispersion: f64,
    /// Lognormal sigma of the per-device rate multiplier.
    pub rate_sigma: f64,
    /// Relative amplitude of the daily cycle (0 = flat, < 1).
    pub diurnal_amplitude: f64,
    /// Local hour of the daily peak.
    pub peak_hour: f64,
    /// Activity on Saturdays and Sundays relative to weekdays.
    pub weekend_factor: f64,
    /// Listening TCP ports and the share of devices that open each.
    pub tcp_ports: &'static [(u16, f64)],
    /// Listening UDP ports and the share of devices that open each.
    pub udp_ports: &'static [(u16, f64)],
    /// How many distinct destinations a device talks to (the broker included).
    pub endpoints: usize,
    /// Size of a firmware image in bytes.
    pub firmware_bytes: f64,
    /// Spontaneous reboots per device per day (mean).
    pub reboots_per_day: f64,
}

/// The built-in archetypes, in the order of increasing message rate.
pub static ARCHETYPES: &[Archetype] = &[
    Archetype {
        name: "plug",
        messages_sent: 1.0,
        messages_received: 0.5,
        message_bytes: 120.0,
        size_sigma: 0.3,
        received_message_bytes: 90.0,
        background_bytes_out: 300.0,
        background_bytes_in: 300.0,
        packet_bytes_out: 120.0,
        packet_bytes_in: 110.0,
        established_tcp: 1.0,
        authorization_failures: 0.001,
        connection_attempts: 0.002,
        disconnects: 0.002,
        dispersion: 2.0,
        rate_sigma: 0.5,
        diurnal_amplitude: 0.6,
        peak_hour: 20.0,
        weekend_factor: 1.3,
        tcp_ports: &[(80, 0.5)],
        udp_ports: &[(5353, 0.8), (6666, 0.3)],
        endpoints: 2,
        firmware_bytes: 1.0e6,
        reboots_per_day: 0.05,
    },
    Archetype {
        name: "sensor",
        messages_sent: 5.0,
        messages_received: 0.5,
        message_bytes: 180.0,
        size_sigma: 0.5,
        received_message_bytes: 120.0,
        background_bytes_out: 600.0,
        background_bytes_in: 400.0,
        packet_bytes_out: 160.0,
        packet_bytes_in: 120.0,
        established_tcp: 1.0,
        authorization_failures: 0.002,
        connection_attempts: 0.003,
        disconnects: 0.003,
        dispersion: 3.0,
        rate_sigma: 0.7,
        diurnal_amplitude: 0.2,
        peak_hour: 14.0,
        weekend_factor: 0.9,
        tcp_ports: &[(22, 0.3)],
        udp_ports: &[(68, 0.9), (5353, 0.5)],
        endpoints: 2,
        firmware_bytes: 2.0e6,
        reboots_per_day: 0.05,
    },
    Archetype {
        name: "tracker",
        messages_sent: 10.0,
        messages_received: 1.0,
        message_bytes: 300.0,
        size_sigma: 0.6,
        received_message_bytes: 150.0,
        background_bytes_out: 1_000.0,
        background_bytes_in: 800.0,
        packet_bytes_out: 250.0,
        packet_bytes_in: 200.0,
        established_tcp: 1.0,
        authorization_failures: 0.003,
        connection_attempts: 0.15,
        disconnects: 0.15,
        dispersion: 1.5,
        rate_sigma: 0.8,
        diurnal_amplitude: 0.9,
        peak_hour: 12.0,
        weekend_factor: 0.5,
        tcp_ports: &[],
        udp_ports: &[(68, 0.5)],
        endpoints: 3,
        firmware_bytes: 8.0e6,
        reboots_per_day: 0.1,
    },
    Archetype {
        name: "camera",
        messages_sent: 20.0,
        messages_received: 2.0,
        message_bytes: 400.0,
        size_sigma: 0.8,
        received_message_bytes: 200.0,
        background_bytes_out: 2.0e7,
        background_bytes_in: 2.0e5,
        packet_bytes_out: 1_200.0,
        packet_bytes_in: 150.0,
        established_tcp: 4.0,
        authorization_failures: 0.002,
        connection_attempts: 0.005,
        disconnects: 0.005,
        dispersion: 4.0,
        rate_sigma: 0.6,
        diurnal_amplitude: 0.5,
        peak_hour: 17.0,
        weekend_factor: 1.1,
        tcp_ports: &[(80, 0.9), (443, 0.7), (554, 0.95), (8000, 0.3)],
        udp_ports: &[(3702, 0.8), (5353, 0.6)],
        endpoints: 4,
        firmware_bytes: 5.0e7,
        reboots_per_day: 0.03,
    },
    Archetype {
        name: "gateway",
        messages_sent: 400.0,
        messages_received: 100.0,
        message_bytes: 600.0,
        size_sigma: 0.9,
        received_message_bytes: 300.0,
        background_bytes_out: 2.0e6,
        background_bytes_in: 1.0e6,
        packet_bytes_out: 700.0,
        packet_bytes_in: 500.0,
        established_tcp: 25.0,
        authorization_failures: 0.01,
        connection_attempts: 0.01,
        disconnects: 0.01,
        dispersion: 8.0,
        rate_sigma: 0.8,
        diurnal_amplitude: 0.35,
        peak_hour: 11.0,
        weekend_factor: 0.6,
        tcp_ports: &[
            (22, 0.9),
            (443, 1.0),
            (1883, 0.8),
            (8883, 0.9),
            (8080, 0.4),
            (502, 0.3),
        ],
        udp_ports: &[(53, 0.8), (67, 0.7), (123, 0.9), (5353, 0.5), (5683, 0.4)],
        endpoints: 8,
        firmware_bytes: 1.0e8,
        reboots_per_day: 0.02,
    },
];

/// The built-in archetype called `name`.
pub fn archetype(name: &str) -> Option<&'static Archetype> {
    ARCHETYPES.iter().find(|a| a.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archetypes_are_sane() {
        for a in ARCHETYPES {
            assert!((0.0..1.0).contains(&a.diurnal_amplitude), "{}", a.name);
            assert!(a.endpoints >= 1, "{}", a.name);
            assert!(a.dispersion > 0.0 && a.rate_sigma > 0.0, "{}", a.name);
            assert!(a.tcp_ports.iter().all(|&(_, p)| (0.0..=1.0).contains(&p)));
            assert!(a.udp_ports.iter().all(|&(_, p)| (0.0..=1.0).contains(&p)));
        }
        assert!(
            ARCHETYPES
                .windows(2)
                .all(|w| w[0].messages_sent < w[1].messages_sent)
        );
        assert_eq!(archetype("camera").map(|a| a.name), Some("camera"));
        assert!(archetype("toaster").is_none());
    }
}
