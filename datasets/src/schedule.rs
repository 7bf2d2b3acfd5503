//! Schedules of the fleet-wide benign events that are more than a window of one effect:
//! roll-out waves, reconnects with back-off after a broker restart or a degraded regional link,
//! backlog uploads and daylight-saving changes.
//!
//! Each schedule draws from the event plan's RNG only, and returns the effects per device plus
//! where the label ends. Time inside a slot is kept in seconds from the scenario start, so a
//! reconnect that crosses a slot boundary is counted in the slot it happens in.

use crate::device::{Benign, Device, Effect};
use rand::RngExt;
use rand::rngs::StdRng;
use std::collections::BTreeMap;

/// Seconds per 5-minute slot.
const SLOT_S: f64 = 300.0;
/// At most this many slots of telemetry are buffered while a device has no session.
const BACKLOG_CAP_SLOTS: f64 = 288.0;

/// The effects of one event on its devices, and the end of its label (slot, exclusive).
#[derive(Debug, Default)]
pub(crate) struct Plan {
    /// (device index, effect), in no particular order.
    pub(crate) effects: Vec<(usize, Effect<Benign>)>,
    /// End of the labelled window (slot, exclusive).
    pub(crate) label_end: u32,
    /// The label's note.
    pub(crate) note: String,
}

impl Plan {
    fn add(&mut self, device: usize, start: u32, end: u32, what: Benign) {
        self.label_end = self.label_end.max(end);
        self.effects.push((device, Effect { start, end, what }));
    }

    /// A persistent effect: it runs to the end of the scenario and does not extend the label.
    fn add_persistent(&mut self, device: usize, start: u32, slots: u32, what: Benign) {
        self.effects.push((
            device,
            Effect {
                start,
                end: slots,
                what,
            },
        ));
    }
}

/// The slot a time (seconds from the scenario start) falls in.
fn slot_of(t: f64) -> u32 {
    (t / SLOT_S).floor().max(0.0) as u32
}

/// The delay before the `n`-th retry (0-based): exponential from `base_s`, capped at `cap_s`,
/// with jitter (half to full of the step, as device SDKs do to spread a reconnect storm).
fn backoff(rng: &mut StdRng, n: u32, base_s: f64, cap_s: f64) -> f64 {
    let step = (base_s * 2f64.powi(n.min(30) as i32)).min(cap_s);
    step * rng.random_range(0.5..=1.0)
}

/// Per-slot broker counts of one device: disconnects, attempts, authorization failures and
/// retained messages delivered.
#[derive(Debug, Default)]
struct Counts(BTreeMap<u32, [f64; 4]>);

impl Counts {
    fn add(&mut self, slot: u32, k: usize, x: f64) {
        self.0.entry(slot).or_insert([0.0; 4])[k] += x;
    }

    fn into_effects(self, plan: &mut Plan, device: usize, slots: u32) {
        for (slot, [d, c, f, r]) in self.0 {
            if slot < slots {
                plan.add(
                    device,
                    slot,
                    slot + 1,
                    Benign::Session {
                        disconnects: d,
                        attempts: c,
                        authorization_failures: f,
                        received: r,
                    },
                );
            }
        }
    }
}

/// A firmware roll-out in waves over `[start, end)`: a canary wave of 1–2 % of `chosen`, then
/// waves each 2.5–4× the previous, at most six. The canary soaks twice as long as a later
/// wave; each wave's devices download within the first 60 % of its share of the window, then
/// install and reboot 1–3 slots later. From the reboot on, the new firmware sends
/// `1 + pct/100` times the messages, `pct` drawn once per archetype from `[lo, hi]`.
pub(crate) fn staged_rollout(
    rng: &mut StdRng,
    devices: &[Device],
    chosen: &[usize],
    (start, end): (u32, u32),
    (lo, hi): (f64, f64),
    slots: u32,
) -> Plan {
    let mut plan = Plan {
        label_end: start + 1,
        ..Plan::default()
    };
    let factors: Vec<f64> = (0..crate::archetype::ARCHETYPES.len())
        .map(|_| 1.0 + draw(rng, lo, hi, false) / 100.0)
        .collect();
    let n = chosen.len();
    let canary = ((n as f64 * rng.random_range(0.01..=0.02)).round() as usize).clamp(1, n);
    let mut sizes = vec![canary];
    let mut rest = n - canary;
    let mut next = canary as f64;
    while rest > 0 {
        next *= rng.random_range(2.5..4.0);
        let k = (next.round() as usize).clamp(1, rest);
        // A small remainder, or the sixth wave, takes everyone left.
        let k = if rest - k < k / 4 || sizes.len() == 5 {
            rest
        } else {
            k
        };
        sizes.push(k);
        rest -= k;
    }
    let mut order = chosen.to_vec();
    for i in (1..order.len()).rev() {
        order.swap(i, rng.random_range(0..=i));
    }
    // Window shares: the canary 2, every later wave 1.
    let weights: Vec<f64> = (0..sizes.len())
        .map(|w| if w == 0 { 2.0 } else { 1.0 })
        .collect();
    let total: f64 = weights.iter().sum();
    let span = f64::from(end - start);
    let mut from = 0.0;
    let mut taken = 0;
    for (w, &size) in sizes.iter().enumerate() {
        let seg = span * weights[w] / total;
        let wave_start = f64::from(start) + from;
        for &i in &order[taken..taken + size] {
            let at = (wave_start + rng.random::<f64>() * (seg * 0.6).max(1.0)).floor() as u32;
            let at = at.min(slots - 1);
            let bytes = devices[i].archetype.firmware_bytes;
            plan.add(i, at, at + 1, Benign::Download { bytes });
            let reboot = at + rng.random_range(1..=3);
            if reboot < slots {
                plan.add(i, reboot, reboot + 1, Benign::Reboot);
                plan.add_persistent(
                    i,
                    reboot,
                    slots,
                    Benign::RateShift {
                        factor: factors[devices[i].archetype_index],
                    },
                );
            }
        }
        taken += size;
        from += seg;
    }
    let pct = |f: f64| (f - 1.0) * 100.0;
    let (fmin, fmax) = factors
        .iter()
        .fold((f64::INFINITY, 0.0f64), |(a, b), &f| (a.min(f), b.max(f)));
    plan.label_end = plan.label_end.min(slots);
    plan.note = format!(
        "{} waves {sizes:?} (canary first); new firmware sends {:.0}–{:.0} % more messages \
         (per archetype) from each device's reboot on, persistently",
        sizes.len(),
        pct(fmin),
        pct(fmax)
    );
    plan
}

/// The broker restarts at a moment drawn in `[start, end)` and is down `downtime_s` seconds.
/// 85 % of the devices see the connection close at once, the rest at their keep-alive timeout
/// (up to 90 s); each retries with jittered back-off from 5 s (cap 120 s), and while the
/// broker is back but flooded 15 % of attempts are refused. 3 % of sessions had an expired
/// token: one authorization failure, then a reconnect 2–10 s later. Messages published while
/// disconnected are held and flushed at the reconnect (in a later slot when it crosses a slot
/// boundary); 0–2 retained messages arrive on resubscribe.
pub(crate) fn broker_restart(
    rng: &mut StdRng,
    chosen: &[usize],
    (start, end): (u32, u32),
    downtime_s: f64,
    slots: u32,
) -> Plan {
    let mut plan = Plan {
        label_end: start + 1,
        ..Plan::default()
    };
    let restart = (f64::from(start) + rng.random::<f64>() * f64::from(end - start)) * SLOT_S;
    let back = restart + downtime_s;
    let mut expired = 0;
    for &i in chosen {
        let mut counts = Counts::default();
        let delay = if rng.random::<f64>() < 0.85 {
            rng.random_range(0.0..3.0)
        } else {
            rng.random_range(0.0..90.0)
        };
        let down = restart + delay;
        counts.add(slot_of(down), 0, 1.0);
        let mut t = down;
        let mut n = 0;
        loop {
            t += backoff(rng, n, 5.0, 120.0);
            n += 1;
            counts.add(slot_of(t), 1, 1.0);
            if (t >= back && rng.random::<f64>() >= 0.15) || n >= 16 {
                break;
            }
        }
        if rng.random::<f64>() < 0.03 {
            expired += 1;
            counts.add(slot_of(t), 2, 1.0);
            t += rng.random_range(2.0..10.0);
            counts.add(slot_of(t), 1, 1.0);
        }
        let up = t;
        counts.add(slot_of(up), 3, f64::from(rng.random_range(0..=2u8)));
        hold_and_flush(&mut plan, i, down, up, slots);
        counts.into_effects(&mut plan, i, slots);
    }
    plan.label_end = plan.label_end.min(slots);
    plan.note = format!(
        "broker down {downtime_s:.0} s from +{:.0} s into slot {}; {expired} expired sessions",
        restart - f64::from(slot_of(restart)) * SLOT_S,
        slot_of(restart)
    );
    plan
}

/// Messages published between `down` and `up` (seconds) are held and go out at `up`: each
/// slot before `up`'s loses the share it was disconnected, `up`'s slot gets them all. Within
/// one slot nothing changes.
fn hold_and_flush(plan: &mut Plan, device: usize, down: f64, up: f64, slots: u32) {
    let (first, last) = (slot_of(down), slot_of(up));
    if last == first {
        return;
    }
    let mut held = 0.0;
    for s in first..last.min(slots) {
        let from = down.max(f64::from(s) * SLOT_S);
        let share = ((f64::from(s + 1) * SLOT_S - from) / SLOT_S).clamp(0.0, 1.0);
        held += share;
        plan.add(device, s, s + 1, Benign::Hold { share });
    }
    if last < slots {
        plan.add(device, last, last + 1, Benign::Flush { slots: held });
    }
}

/// A region's link degrades over `[start, end)`: TCP reaches the broker but no session holds.
/// The broker times each session out (one disconnect) and sees about 70 % of the retries, which
/// back off exponentially from 1 s to 128 s with jitter (device SDK defaults): many in the first
/// slot, about three per slot later. When the link returns every device reconnects at its next
/// retry (20 % refused by the flooded broker), some with an expired token (5 % + 5 % per hour
/// offline), and uploads the telemetry it buffered (up to a day's worth) at `rate` slots'
/// worth per slot (±20 % per device), so the upload lasts in proportion to the outage.
pub(crate) fn outage_reconnect(
    rng: &mut StdRng,
    chosen: &[usize],
    (start, end): (u32, u32),
    rate: f64,
    slots: u32,
) -> Plan {
    let mut plan = Plan {
        label_end: start + 1,
        ..Plan::default()
    };
    let restored = f64::from(end) * SLOT_S;
    let hours = f64::from(end - start) / 12.0;
    let p_expired = (0.05 + 0.05 * hours).min(0.5);
    let mut longest_upload = 0;
    for &i in chosen {
        // Unreachable slots: (attempts, disconnects).
        let mut unreachable: BTreeMap<u32, (f64, f64)> =
            (start..end.min(slots)).map(|s| (s, (0.0, 0.0))).collect();
        let mut counts = Counts::default();
        let down = f64::from(start) * SLOT_S + rng.random_range(0.0..90.0);
        if let Some(u) = unreachable.get_mut(&slot_of(down)) {
            u.1 += 1.0;
        }
        let mut t = down;
        let mut n = 0;
        let up = loop {
            t += backoff(rng, n, 1.0, 128.0);
            n += 1;
            if t >= restored {
                if rng.random::<f64>() >= 0.2 || n >= 64 {
                    break t;
                }
                counts.add(slot_of(t), 1, 1.0);
            } else if rng.random::<f64>() < 0.7 {
                unreachable.entry(slot_of(t)).or_insert((0.0, 0.0)).0 += 1.0;
            }
        };
        let mut up_slot = slot_of(up);
        // Refused retries after the link is back but before the session: still unreachable.
        for s in end..up_slot {
            let c = counts.0.remove(&s).map_or(0.0, |c| c[1]);
            unreachable.entry(s).or_insert((0.0, 0.0)).0 += c;
        }
        counts.add(up_slot, 1, 1.0);
        if rng.random::<f64>() < p_expired {
            counts.add(up_slot, 2, 1.0);
            let again = up + rng.random_range(2.0..10.0);
            if slot_of(again) > up_slot {
                // The retry lands in the next slot: this one ends without a session too.
                let c = counts.0.remove(&up_slot).unwrap_or([0.0; 4]);
                unreachable.entry(up_slot).or_insert((0.0, 0.0)).0 += c[1];
                up_slot = slot_of(again);
                counts.add(up_slot, 2, c[2]);
            }
            counts.add(up_slot, 1, 1.0);
        }
        for (s, (attempts, disconnects)) in unreachable {
            if s < slots {
                plan.add(
                    i,
                    s,
                    s + 1,
                    Benign::Unreachable {
                        attempts,
                        disconnects,
                    },
                );
            }
        }
        counts.into_effects(&mut plan, i, slots);
        // The backlog: the offline time, drained at this device's upload rate.
        let mut backlog = ((up - down) / SLOT_S).min(BACKLOG_CAP_SLOTS);
        let per_slot = (rate * rng.random_range(0.8..=1.2)).max(0.5);
        let mut s = up_slot;
        while backlog > 0.0 && s < slots {
            let k = backlog.min(per_slot);
            plan.add(i, s, s + 1, Benign::Flush { slots: k });
            backlog -= k;
            s += 1;
        }
        longest_upload = longest_upload.max(s - up_slot);
    }
    plan.label_end = plan.label_end.min(slots);
    plan.note = format!(
        "link degraded {hours:.1} h: retries with back-off, then reconnects and a backlog \
         upload at {rate:.1} slots per slot (up to {longest_upload} slots)"
    );
    plan
}

/// The first slot at or after `from` at 02:00 local time of a region `utc_offset_hours` ahead
/// of UTC (before the change), for a scenario starting at `start_ms`.
pub(crate) fn local_two_am(start_ms: i64, from: u32, utc_offset_hours: f64, slots: u32) -> u32 {
    let offset_min = (utc_offset_hours * 60.0).round() as i64;
    let start_min = start_ms / 60_000;
    (from..slots.min(from + 288))
        .find(|&s| {
            let local = (start_min + i64::from(s) * 5 + offset_min).rem_euclid(1440);
            (120..125).contains(&local)
        })
        .unwrap_or(from)
}

/// A daylight-saving change at slot `at`: `chosen` devices' clocks move `hours` (their local
/// schedules stay, so their cycles move in UTC), persistently. The label covers `[at, end)`:
/// the first shifted day by default.
pub(crate) fn dst_shift(chosen: &[usize], at: u32, end: u32, hours: f64, slots: u32) -> Plan {
    let mut plan = Plan::default();
    for &i in chosen {
        plan.add_persistent(i, at, slots, Benign::ClockShift { hours });
    }
    plan.label_end = end.clamp(at + 1, slots);
    let (clocks, cycle) = if hours > 0.0 {
        ("forward", "earlier")
    } else {
        ("back", "later")
    };
    plan.note = format!(
        "clocks {clocks} {:.1} h: daily cycle {:.1} h {cycle} in UTC from then on, persistently",
        hours.abs(),
        hours.abs()
    );
    plan
}

/// Uniform in `[lo, hi]`, or log-uniform when `log` (for multipliers spanning decades).
pub(crate) fn draw(rng: &mut StdRng, lo: f64, hi: f64, log: bool) -> f64 {
    if hi <= lo {
        return lo;
    }
    if log && lo > 0.0 {
        (rng.random_range(lo.ln()..=hi.ln())).exp()
    } else {
        rng.random_range(lo..=hi)
    }
}
