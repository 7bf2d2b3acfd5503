//! One device: its fixed profile, its clean behaviour per slot (benign events included), and
//! the attack transforms applied on top of the clean reading.
//!
//! The clean stream draws only from the device's clean RNG and the attacks only from its attack
//! RNG, so the clean reading of a slot is the same whether or not the device is attacked: the
//! counterfactual is always available.

use crate::archetype::Archetype;
use crate::reading::Reading;
use rand::RngExt;
use rand::rngs::StdRng;
use rand_distr::{Distribution, Gamma, Poisson, StandardNormal};
use std::f64::consts::PI;
use std::net::IpAddr;
use thingward_models::ThingName;

/// Slots per hour.
const SLOTS_PER_HOUR: f64 = 12.0;
/// MQTT + TCP/IP overhead per message, bytes.
const MESSAGE_OVERHEAD: f64 = 60.0;
/// Bytes of the two keep-alive exchanges in each slot.
const KEEPALIVE_BYTES: f64 = 132.0;
/// Bytes per packet of a bulk download.
const BULK_PACKET: f64 = 1_400.0;

/// A benign effect on one device, part of its clean behaviour.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Benign {
    /// A firmware image arrives.
    Download { bytes: f64 },
    /// The device reboots during the slot.
    Reboot,
    /// The device is unreachable and reports nothing.
    Offline,
    /// First slot after an outage: reconnect and flush the backlog.
    Reconnect { offline_slots: u32 },
    /// New firmware runs: messages sent ×`factor` (persistent once started).
    RateShift { factor: f64 },
    /// The device's local clock moved (daylight saving): its daily and weekly cycles run
    /// `hours` earlier in UTC (persistent once started).
    ClockShift { hours: f64 },
    /// Session churn counted by the broker in this slot, on top of the clean counts.
    Session {
        disconnects: f64,
        attempts: f64,
        authorization_failures: f64,
        received: f64,
    },
    /// This share of the slot's messages is held back (no session) and sent later.
    Hold { share: f64 },
    /// Held messages go out: `slots` slots' worth of the current message rate, extra.
    Flush { slots: f64 },
    /// The device reaches the broker but holds no session: no metrics report, no messages,
    /// only the broker's counts of its attempts and disconnects.
    Unreachable { attempts: f64, disconnects: f64 },
}

/// An attack on one device, applied on top of its clean reading.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Attack {
    /// Bytes/packets out ×`factor`, extra connections, victim destinations.
    Ddos { factor: f64, victims: Vec<IpAddr> },
    /// New listening ports.
    Backdoor { tcp: Vec<u16>, udp: Vec<u16> },
    /// `low..=high` failed logins (and connection attempts) per slot.
    CredentialStuffing { low: f64, high: f64 },
    /// Messages ×`factor`, each `size_factor` of the usual size.
    MessageFlood { factor: f64, size_factor: f64 },
    /// Bytes out + `((1 + rate)^(days + 1) − 1)` × the device's mean.
    Exfiltration { rate: f64 },
    /// `low..=high` disconnects and reconnects per slot.
    ReconnectLoop { low: f64, high: f64 },
}

impl Attack {
    /// Whether the broker still sees this attack while the device holds no session: login
    /// attempts from elsewhere and connection churn do, traffic from the device does not.
    fn seen_without_session(&self) -> bool {
        matches!(
            self,
            Self::CredentialStuffing { .. } | Self::ReconnectLoop { .. }
        )
    }
}

/// Something happening to a device in slots `[start, end)`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Effect<T> {
    pub(crate) start: u32,
    pub(crate) end: u32,
    pub(crate) what: T,
}

impl<T> Effect<T> {
    fn active(&self, slot: u32) -> bool {
        (self.start..self.end).contains(&slot)
    }
}

/// A device's fixed profile and schedule.
#[derive(Debug, Clone)]
pub(crate) struct Device {
    pub(crate) thing: ThingName,
    pub(crate) archetype: &'static Archetype,
    pub(crate) archetype_index: usize,
    pub(crate) region: usize,
    /// Lognormal rate multiplier.
    pub(crate) rate: f64,
    /// Local time minus UTC, hours (region offset plus a per-device jitter).
    pub(crate) utc_offset_hours: f64,
    pub(crate) tcp_ports: Vec<u16>,
    pub(crate) udp_ports: Vec<u16>,
    /// Destinations; the first (the broker) is contacted in every slot.
    pub(crate) endpoints: Vec<IpAddr>,
    /// Mean established TCP connections.
    pub(crate) established_tcp: f64,
    /// Mean bytes out per slot (for the exfiltration ramp).
    pub(crate) mean_bytes_out: f64,
    pub(crate) benign: Vec<Effect<Benign>>,
    pub(crate) attacks: Vec<Effect<Attack>>,
}

/// A standard normal draw.
fn normal(rng: &mut StdRng) -> f64 {
    StandardNormal.sample(rng)
}

/// A Poisson draw; `mean ≤ 0` gives 0.
fn poisson(rng: &mut StdRng, mean: f64) -> f64 {
    if mean <= 0.0 || !mean.is_finite() {
        return 0.0;
    }
    match Poisson::new(mean) {
        Ok(p) => p.sample(rng),
        Err(_) => mean.round(),
    }
}

/// A negative-binomial draw with this mean and shape `r` (variance `mean + mean²/r`), as a
/// gamma–Poisson mixture. Small means take a shortcut that is exact: draw zero with its
/// probability, otherwise resample until positive.
pub(crate) fn negative_binomial(rng: &mut StdRng, mean: f64, r: f64) -> f64 {
    if mean <= 0.0 || !mean.is_finite() {
        return 0.0;
    }
    let draw = |rng: &mut StdRng| match Gamma::new(r, mean / r) {
        Ok(g) => {
            let lambda: f64 = g.sample(rng);
            poisson(rng, lambda)
        }
        Err(_) => poisson(rng, mean),
    };
    if mean < 0.05 {
        let p_zero = (r / (r + mean)).powf(r);
        if rng.random::<f64>() < p_zero {
            return 0.0;
        }
        for _ in 0..64 {
            let x = draw(rng);
            if x > 0.0 {
                return x;
            }
        }
        return 1.0;
    }
    draw(rng)
}

/// Total bytes of `n` messages with lognormal sizes (median `median`, sigma `sigma`). Up to
/// eight sizes are drawn; larger counts scale the mean of eight draws, keeping the heavy tail
/// at a fixed cost.
fn message_bytes(rng: &mut StdRng, n: f64, median: f64, sigma: f64) -> f64 {
    if n <= 0.0 {
        return 0.0;
    }
    let k = n.min(8.0) as u32;
    let mut sum = 0.0;
    for _ in 0..k {
        sum += (median * (sigma * normal(rng)).exp()).max(16.0);
    }
    sum * n / f64::from(k)
}

impl Device {
    /// The activity multiplier (daily and weekly cycles in the device's local time) at `slot`
    /// of a scenario starting at `start_hours` (hours since the Unix epoch).
    pub(crate) fn activity(&self, start_hours: f64, slot: u32) -> f64 {
        let local = start_hours + f64::from(slot) / SLOTS_PER_HOUR + self.utc_offset_hours;
        self.activity_local(local)
    }

    /// The activity multiplier at local time `local` (hours since the Unix epoch, local).
    fn activity_local(&self, local: f64) -> f64 {
        let a = self.archetype;
        let hour = local.rem_euclid(24.0);
        // 1970-01-01 was a Thursday: day 0 → weekday 3 with Monday = 0.
        let weekday = ((local / 24.0).floor() as i64 + 3).rem_euclid(7);
        let daily = 1.0 + a.diurnal_amplitude * (2.0 * PI * (hour - a.peak_hour) / 24.0).cos();
        let weekly = if weekday >= 5 { a.weekend_factor } else { 1.0 };
        daily * weekly
    }

    /// The clean reading of `slot` (benign events included), drawing from `rng` only.
    pub(crate) fn clean(&self, rng: &mut StdRng, start_hours: f64, slot: u32, out: &mut Reading) {
        let a = self.archetype;
        out.tcp_ports.clone_from(&self.tcp_ports);
        out.udp_ports.clone_from(&self.udp_ports);
        out.destination_ips.clear();
        let mut reboot = false;
        let mut download = 0.0;
        let mut backlog_slots = None;
        // Effects of the newer benign kinds; `None` leaves the older kinds' arithmetic (and
        // draws) exactly as they were.
        let mut rate_shift: Option<f64> = None;
        let mut clock_shift: Option<f64> = None;
        let mut session: Option<[f64; 4]> = None;
        let mut hold: Option<f64> = None;
        let mut flush: Option<f64> = None;
        out.cloud_only = false;
        for e in self.benign.iter().filter(|e| e.active(slot)) {
            match e.what {
                Benign::Offline => {
                    out.online = false;
                    return;
                }
                Benign::Unreachable {
                    attempts,
                    disconnects,
                } => {
                    self.unreachable(attempts, disconnects, out);
                    return;
                }
                Benign::Reboot => reboot = true,
                Benign::Download { bytes } => download += bytes,
                Benign::Reconnect { offline_slots } => backlog_slots = Some(offline_slots),
                Benign::RateShift { factor } => {
                    rate_shift = Some(rate_shift.unwrap_or(1.0) * factor);
                }
                Benign::ClockShift { hours } => {
                    clock_shift = Some(clock_shift.unwrap_or(0.0) + hours);
                }
                Benign::Session {
                    disconnects,
                    attempts,
                    authorization_failures,
                    received,
                } => {
                    let s = session.get_or_insert([0.0; 4]);
                    s[0] += disconnects;
                    s[1] += attempts;
                    s[2] += authorization_failures;
                    s[3] += received;
                }
                Benign::Hold { share } => hold = Some((hold.unwrap_or(0.0) + share).min(1.0)),
                Benign::Flush { slots } => flush = Some(flush.unwrap_or(0.0) + slots),
            }
        }
        out.online = true;

        let act = match clock_shift {
            None => self.activity(start_hours, slot),
            Some(hours) => self.activity_local(
                start_hours + f64::from(slot) / SLOTS_PER_HOUR + self.utc_offset_hours + hours,
            ),
        };
        let sent_mean = a.messages_sent * self.rate * act;
        let sent_mean = rate_shift.map_or(sent_mean, |f| sent_mean * f);
        let mut sent = negative_binomial(rng, sent_mean, a.dispersion);
        let mut received = negative_binomial(
            rng,
            a.messages_received * self.rate.sqrt() * act,
            a.dispersion,
        );
        let mut mqtt_out = message_bytes(rng, sent, a.message_bytes, a.size_sigma);
        let mqtt_in = message_bytes(rng, received, a.received_message_bytes, a.size_sigma * 0.7);
        let background_out = a.background_bytes_out * self.rate * act * (0.4 * normal(rng)).exp();
        let background_in =
            a.background_bytes_in * self.rate.sqrt() * act * (0.4 * normal(rng)).exp();
        let jitter_out = (0.1 * normal(rng)).exp();
        let jitter_in = (0.1 * normal(rng)).exp();
        let mut authorization_failures = negative_binomial(rng, a.authorization_failures, 0.3);
        let mut connection_attempts = negative_binomial(rng, a.connection_attempts, 0.5);
        let mut disconnects = negative_binomial(rng, a.disconnects, 0.5);
        let mut established =
            negative_binomial(rng, self.established_tcp * (0.7 + 0.3 * act.min(2.0)), 6.0);
        let spontaneous_reboot = rng.random::<f64>() < a.reboots_per_day / 288.0;
        reboot |= spontaneous_reboot;
        for (i, ip) in self.endpoints.iter().enumerate() {
            if i == 0 || rng.random::<f64>() < 0.85 {
                out.destination_ips.push(*ip);
            }
        }

        if let Some(offline) = backlog_slots {
            // Reconnect with back-off retries, and flush the telemetry buffered while offline
            // (up to a day's worth).
            connection_attempts += 1.0 + negative_binomial(rng, 2.0, 1.0);
            disconnects += 1.0;
            let extra = (sent_mean * f64::from(offline.min(288)) * 0.5).round();
            mqtt_out += extra * a.message_bytes;
            sent += extra;
        }
        if let Some(share) = hold {
            // Published while the session was down: counted when flushed, not now.
            let kept = (sent * (1.0 - share)).floor();
            if sent > 0.0 {
                mqtt_out *= kept / sent;
            }
            sent = kept;
        }
        if let Some(slots) = flush {
            let extra = (sent_mean * slots).round();
            mqtt_out += extra * a.message_bytes;
            sent += extra;
        }
        received += if download > 0.0 { 2.0 } else { 0.0 };
        if let Some([_, _, _, retained]) = session {
            received += retained;
        }

        let mut bytes_out = mqtt_out + sent * MESSAGE_OVERHEAD + background_out + KEEPALIVE_BYTES;
        let mut bytes_in =
            mqtt_in + received * MESSAGE_OVERHEAD + background_in + KEEPALIVE_BYTES + download;
        let mut packets_out = background_out / a.packet_bytes_out * jitter_out + sent + 2.0;
        let mut packets_in =
            background_in / a.packet_bytes_in * jitter_in + received + 2.0 + download / BULK_PACKET;

        if reboot {
            // Counters restart: the slot only counts what happened since the restart.
            let since = rng.random::<f64>();
            sent = (sent * since).floor();
            received = (received * since).floor();
            mqtt_out *= since;
            bytes_out = (bytes_out - download) * since + download;
            bytes_in = (bytes_in - download) * since + download;
            packets_out *= since;
            packets_in *= since;
            authorization_failures = (authorization_failures * since).floor();
            established = (established * since).floor();
            connection_attempts += 1.0;
            disconnects += 1.0;
        }
        if let Some([d, c, f, _]) = session {
            disconnects += d;
            connection_attempts += c;
            authorization_failures += f;
        }

        out.messages_sent = sent;
        out.messages_received = received;
        out.message_byte_size = (sent > 0.0).then(|| (mqtt_out / sent).round().max(1.0));
        out.bytes_out = bytes_out.round();
        out.bytes_in = bytes_in.round();
        out.packets_out = packets_out.round();
        out.packets_in = packets_in.round();
        out.authorization_failures = authorization_failures;
        out.connection_attempts = connection_attempts;
        out.disconnects = disconnects;
        out.established_tcp = established;
    }

    /// The reading of a slot without a session: the broker counts the attempts and
    /// disconnects, and nothing is published.
    fn unreachable(&self, attempts: f64, disconnects: f64, out: &mut Reading) {
        out.online = true;
        out.cloud_only = true;
        out.messages_sent = 0.0;
        out.messages_received = 0.0;
        out.message_byte_size = None;
        out.authorization_failures = 0.0;
        out.connection_attempts = attempts;
        out.disconnects = disconnects;
        // Device-side values are not reported; zero them so no stale value lingers.
        out.bytes_out = 0.0;
        out.bytes_in = 0.0;
        out.packets_out = 0.0;
        out.packets_in = 0.0;
        out.established_tcp = 0.0;
    }

    /// Applies the attacks active at `slot` to `out` (a copy of the clean reading), drawing
    /// from `rng` only. Every labelled metric of an active attack ends up different from the
    /// clean value.
    pub(crate) fn attack(&self, rng: &mut StdRng, slot: u32, out: &mut Reading) {
        if !out.online {
            return;
        }
        let cloud_only = out.cloud_only;
        for e in self
            .attacks
            .iter()
            .filter(|e| e.active(slot) && (!cloud_only || e.what.seen_without_session()))
        {
            match &e.what {
                Attack::Ddos { factor, victims } => {
                    let f = (factor * (0.2 * normal(rng)).exp()).max(2.0);
                    out.bytes_out = (out.bytes_out * f).round() + 1.0;
                    out.packets_out = (out.packets_out * f * 2.0).round() + 1.0;
                    out.established_tcp += (factor.ln() * 10.0 * rng.random_range(0.5..1.5))
                        .round()
                        .max(1.0);
                    for v in victims {
                        if !out.destination_ips.contains(v) {
                            out.destination_ips.push(*v);
                        }
                    }
                    out.destination_ips.sort_unstable();
                }
                Attack::Backdoor { tcp, udp } => {
                    add_ports(&mut out.tcp_ports, tcp);
                    add_ports(&mut out.udp_ports, udp);
                }
                Attack::CredentialStuffing { low, high } => {
                    let k = draw_count(rng, *low, *high);
                    out.authorization_failures += k;
                    out.connection_attempts += k;
                }
                Attack::MessageFlood {
                    factor,
                    size_factor,
                } => {
                    let clean_size = out
                        .message_byte_size
                        .unwrap_or(self.archetype.message_bytes);
                    let size = (clean_size * size_factor).round().max(1.0);
                    let extra = (out.messages_sent * (factor - 1.0))
                        .round()
                        .max(factor.round())
                        .max(1.0);
                    let total = out.messages_sent + extra;
                    let mean = (clean_size * out.messages_sent + size * extra) / total;
                    out.message_byte_size = Some(mean.round().max(1.0));
                    out.messages_sent = total;
                    out.bytes_out += extra * (size + MESSAGE_OVERHEAD);
                    out.packets_out += extra;
                }
                Attack::Exfiltration { rate } => {
                    let days = f64::from(slot - e.start) / 288.0;
                    let add = self.mean_bytes_out
                        * ((1.0 + rate).powf(days + 1.0) - 1.0)
                        * (0.2 * normal(rng)).exp();
                    out.bytes_out += add.round().max(1.0);
                    out.packets_out += (add / BULK_PACKET).round().max(1.0);
                }
                Attack::ReconnectLoop { low, high } => {
                    let k = draw_count(rng, *low, *high);
                    out.disconnects += k;
                    out.connection_attempts += k;
                }
            }
        }
    }
}

/// A whole number in `[low, high]`, at least 1.
fn draw_count(rng: &mut StdRng, low: f64, high: f64) -> f64 {
    if high > low {
        rng.random_range(low..=high).round().max(1.0)
    } else {
        low.round().max(1.0)
    }
}

fn add_ports(ports: &mut Vec<u16>, new: &[u16]) {
    if new.is_empty() {
        return;
    }
    ports.extend_from_slice(new);
    ports.sort_unstable();
    ports.dedup();
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn negative_binomial_has_its_mean_and_is_over_dispersed() {
        let mut rng = StdRng::seed_from_u64(1);
        for (mean, r) in [(0.01, 0.5), (3.0, 2.0), (50.0, 4.0)] {
            let n = 200_000;
            let xs: Vec<f64> = (0..n)
                .map(|_| negative_binomial(&mut rng, mean, r))
                .collect();
            let m = xs.iter().sum::<f64>() / f64::from(n);
            let v = xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / f64::from(n - 1);
            assert!((m - mean).abs() < 0.05 * mean + 0.002, "mean {m} vs {mean}");
            let want = mean + mean * mean / r;
            assert!((v - want).abs() < 0.1 * want, "var {v} vs {want}");
            assert!(xs.iter().all(|x| x.fract() == 0.0 && *x >= 0.0));
        }
    }
}
