//! Integration tests of the synthetic fleet generator: determinism, label consistency against
//! the clean counterfactual, and statistical sanity.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use thingward_datasets::archetype::ARCHETYPES;
use thingward_datasets::{EventClass, EventKind, Fleet, METRICS, Reading, Scenario};
use thingward_models::{Datapoint, Metric, Value};

fn scenario(name: &str) -> Scenario {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(format!("{name}.toml"));
    Scenario::load(&path).expect("bundled scenario loads")
}

fn hash_datapoint(dp: &Datapoint, h: &mut DefaultHasher) {
    dp.thing.as_str().hash(h);
    dp.metric.as_str().hash(h);
    dp.timestamp.hash(h);
    match &dp.value {
        Value::Number(x) => x.to_bits().hash(h),
        Value::Ports(p) => p.hash(h),
        Value::Ips(ips) => ips.hash(h),
        other => format!("{other:?}").hash(h),
    }
}

fn slots_hash(fleet: &Fleet) -> (u64, usize) {
    let mut h = DefaultHasher::new();
    let mut n = 0;
    for slot in fleet.slots() {
        for dp in &slot.datapoints {
            hash_datapoint(dp, &mut h);
        }
        n += slot.datapoints.len();
    }
    (h.finish(), n)
}

mod determinism {
    use super::*;

    #[test]
    fn same_seed_same_datapoints_and_labels() {
        let s = scenario("tiny");
        let a = Fleet::new(&s).expect("fleet");
        let b = Fleet::new(&s).expect("fleet");
        assert_eq!(slots_hash(&a), slots_hash(&b));
        assert_eq!(a.labels(), b.labels());
        let c = Fleet::new(&s.clone().with_seed(12)).expect("fleet");
        assert_ne!(slots_hash(&a).0, slots_hash(&c).0);
    }

    #[test]
    fn batches_hold_the_same_datapoints_whatever_the_threads() {
        let s = scenario("tiny");
        let fleet = Fleet::new(&s).expect("fleet");
        let one: Vec<Datapoint> = fleet.batches(5, 1).flat_map(|b| b.datapoints).collect();
        let two: Vec<Datapoint> = fleet.batches(5, 2).flat_map(|b| b.datapoints).collect();
        assert_eq!(one, two);
        let batches: Vec<_> = fleet.batches(5, 3).collect();
        assert_eq!(batches.len(), 4 * 3, "4 device ranges × 3 days");
        for b in &batches {
            assert!(b.datapoints.is_sorted_by(|x, y| {
                (x.thing.as_str(), x.metric.as_str(), x.timestamp)
                    <= (y.thing.as_str(), y.metric.as_str(), y.timestamp)
            }));
        }
        let mut by_slot: Vec<Datapoint> = fleet.slots().flat_map(|s| s.datapoints).collect();
        let key = |d: &Datapoint| (d.thing.clone(), d.metric.as_str().to_owned(), d.timestamp);
        by_slot.sort_by_key(key);
        let mut by_batch = one;
        by_batch.sort_by_key(key);
        assert_eq!(by_slot, by_batch);
    }
}

mod labels {
    use super::*;

    /// Every labelled attack datapoint differs from the clean counterfactual, every attack
    /// changes at least one datapoint of every (device, metric) it lists, and nothing differs
    /// outside attacks.
    fn check(fleet: &Fleet) {
        let labels = fleet.labels();
        let mut changed = std::collections::HashSet::new();
        for i in 0..fleet.len() {
            let thing = fleet.thing(i).clone();
            for ds in fleet.device(i) {
                for m in &METRICS {
                    let attack = labels.attacked(&thing, m, ds.timestamp);
                    let differs = ds.observed.differs(&ds.clean, m);
                    match attack {
                        Some(e) => {
                            if ds.observed.online {
                                assert!(
                                    differs,
                                    "{thing} {m} slot {} in attack {} ({}) equals its clean value",
                                    ds.slot, e.id, e.kind
                                );
                                changed.insert((e.id, thing.clone(), m.clone()));
                            }
                        }
                        None => assert!(
                            !differs
                                || labels.events_of(&thing).any(
                                    |e| e.class == EventClass::Attack && e.covers(ds.timestamp)
                                ),
                            "{thing} {m} slot {} differs outside any attack",
                            ds.slot
                        ),
                    }
                }
            }
        }
        for e in labels.attacks() {
            for d in &e.devices {
                for m in &e.metrics {
                    assert!(
                        changed.contains(&(e.id, d.clone(), m.clone())),
                        "attack {} ({}) never changes {d} {m}",
                        e.id,
                        e.kind
                    );
                }
            }
        }
    }

    #[test]
    fn attacks_differ_from_the_counterfactual_on_tiny() {
        let fleet = Fleet::new(&scenario("tiny")).expect("fleet");
        let kinds: std::collections::HashSet<_> = fleet
            .labels()
            .events
            .iter()
            .map(|e| e.kind.clone())
            .collect();
        for k in EventKind::NAMED {
            assert!(kinds.contains(k), "tiny lacks {k}");
        }
        check(&fleet);
    }

    #[test]
    fn default_scenario_has_every_kind_and_consistent_labels() {
        let s = scenario("default");
        let fleet = Fleet::new(&s).expect("fleet");
        let labels = fleet.labels();
        for k in EventKind::NAMED {
            assert!(
                labels.events.iter().any(|e| &e.kind == k),
                "default lacks {k}"
            );
        }
        for e in labels.attacks() {
            assert!(e.start_ms < e.end_ms && e.end_ms <= s.end_ms());
            if e.kind != EventKind::ExfiltrationDrift {
                assert!(
                    e.start_ms >= s.training_end_ms(),
                    "{} {} in training",
                    e.id,
                    e.kind
                );
            }
        }
        // Label consistency on a sample of the fleet: the attacked devices plus a few others.
        let attacked: Vec<usize> = (0..fleet.len())
            .filter(|&i| labels.ever_attacked(fleet.thing(i)) || i % 50 == 0)
            .collect();
        assert!(attacked.len() > 10);
        let labels_json = serde_json::to_string(labels).expect("json");
        assert!(labels_json.contains("\"class\":\"attack\""));
        for i in attacked.iter().take(40) {
            let thing = fleet.thing(*i).clone();
            for ds in fleet.device(*i) {
                for m in &METRICS {
                    if let Some(e) = labels.attacked(&thing, m, ds.timestamp)
                        && ds.observed.online
                    {
                        assert!(ds.observed.differs(&ds.clean, m), "{thing} {m} {}", e.id);
                    }
                }
            }
        }
    }
}

/// Pinned fingerprints of bundled scenarios: a change to the generator that alters any
/// existing kind's output (or its RNG draw order) changes them. Update them only on purpose,
/// and say why in the commit.
mod fingerprint {
    use super::*;
    use std::net::IpAddr;
    use thingward_datasets::ValueRef;

    /// FNV-1a, 64 bit: stable across Rust releases (unlike `DefaultHasher`).
    struct Fnv(u64);

    impl Fnv {
        fn new() -> Self {
            Self(0xcbf2_9ce4_8422_2325)
        }
        fn bytes(&mut self, bytes: &[u8]) {
            for b in bytes {
                self.0 ^= u64::from(*b);
                self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
            }
        }
        fn reading(&mut self, r: &Reading) {
            self.bytes(&[u8::from(r.online)]);
            for m in &METRICS {
                match r.value_ref(m) {
                    None => self.bytes(&[0]),
                    Some(ValueRef::Number(x)) => self.bytes(&x.to_bits().to_le_bytes()),
                    Some(ValueRef::Ports(ports)) => {
                        self.bytes(&(ports.len() as u64).to_le_bytes());
                        for p in ports {
                            self.bytes(&p.to_le_bytes());
                        }
                    }
                    Some(ValueRef::Ips(ips)) => {
                        self.bytes(&(ips.len() as u64).to_le_bytes());
                        for ip in ips {
                            match ip {
                                IpAddr::V4(v4) => self.bytes(&v4.octets()),
                                IpAddr::V6(v6) => self.bytes(&v6.octets()),
                            }
                        }
                    }
                }
            }
        }
    }

    /// (labels JSON, clean and observed readings of every slot of the first `devices` devices).
    fn fingerprint(fleet: &Fleet, devices: usize) -> (u64, u64) {
        let mut labels = Fnv::new();
        labels.bytes(
            serde_json::to_string(fleet.labels())
                .expect("json")
                .as_bytes(),
        );
        let mut readings = Fnv::new();
        let mut clean = Reading::default();
        let mut observed = Reading::default();
        for i in 0..fleet.len().min(devices) {
            readings.bytes(fleet.thing(i).as_str().as_bytes());
            let mut stream = fleet.device(i);
            while stream.step(&mut clean, &mut observed).is_some() {
                readings.reading(&clean);
                readings.reading(&observed);
            }
        }
        (labels.0, readings.0)
    }

    #[test]
    fn bundled_scenarios_keep_their_output() {
        // The large fleet: its whole plan, and the readings of a few hundred devices.
        for (name, devices, want) in [
            (
                "tiny",
                usize::MAX,
                (0xf934_4db4_b723_0ec5, 0xa9f0_7d9b_f145_8236),
            ),
            (
                "default",
                usize::MAX,
                (0x86d3_f114_ddcc_9654, 0xd5fc_2a86_5a05_d2c9),
            ),
            ("large", 300, (0x35e5_eaf8_17fd_37a6, 0x3de0_1f0c_f0cb_6039)),
        ] {
            let got = fingerprint(&Fleet::new(&scenario(name)).expect("fleet"), devices);
            assert_eq!(
                got, want,
                "{name}: fingerprint {:#018x}, {:#018x}",
                got.0, got.1
            );
        }
    }
}

mod statistics {
    use super::*;

    fn median(mut xs: Vec<f64>) -> f64 {
        xs.sort_by(f64::total_cmp);
        xs[xs.len() / 2]
    }

    #[test]
    fn a_thousand_devices_look_like_a_fleet() {
        let s = Scenario::parse("name = \"stats\"\nseed = 3\ndevices = 1000\ndays = 4\n")
            .expect("parses");
        let fleet = Fleet::new(&s).expect("fleet");
        let n_arch = ARCHETYPES.len();
        let mut per_arch_rates: Vec<Vec<f64>> = vec![Vec::new(); n_arch];
        let mut per_arch_bytes: Vec<Vec<f64>> = vec![Vec::new(); n_arch];
        let mut peak = vec![(0.0, 0usize); n_arch];
        let mut trough = vec![(0.0, 0usize); n_arch];
        let mut dispersion = Vec::new();
        for i in 0..fleet.len() {
            let a = ARCHETYPES
                .iter()
                .position(|x| x.name == fleet.archetype(i).name)
                .expect("built-in");
            let arch = &ARCHETYPES[a];
            let offset = fleet.region(i).utc_offset_hours;
            // Messages sent per UTC hour of weekdays, for the index of dispersion.
            let mut by_hour: Vec<Vec<f64>> = vec![Vec::new(); 24];
            let mut sent = Vec::new();
            let mut bytes = Vec::new();
            let mut clean = Reading::default();
            let mut observed = Reading::default();
            let mut stream = fleet.device(i);
            while let Some(slot) = stream.step(&mut clean, &mut observed) {
                let utc_h = f64::from(slot) / 12.0;
                let day = (utc_h / 24.0) as u32; // the scenario starts on a Monday
                let local = (utc_h + offset).rem_euclid(24.0);
                let from_peak =
                    ((local - arch.peak_hour).rem_euclid(24.0) + 12.0).rem_euclid(24.0) - 12.0;
                let x = clean.messages_sent;
                sent.push(x);
                bytes.push(clean.bytes_out);
                if day < 5 {
                    if from_peak.abs() < 2.0 {
                        peak[a].0 += x;
                        peak[a].1 += 1;
                    } else if from_peak.abs() > 10.0 {
                        trough[a].0 += x;
                        trough[a].1 += 1;
                    }
                    by_hour[(utc_h as usize) % 24].push(x);
                }
            }
            per_arch_rates[a].push(sent.iter().sum::<f64>() / sent.len() as f64);
            per_arch_bytes[a].push(bytes.iter().sum::<f64>() / bytes.len() as f64);
            if arch.name == "sensor" || arch.name == "camera" {
                let mut ratios = Vec::new();
                for xs in by_hour.iter().filter(|xs| xs.len() > 10) {
                    let m = xs.iter().sum::<f64>() / xs.len() as f64;
                    let v = xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (xs.len() - 1) as f64;
                    if m > 1.0 {
                        ratios.push(v / m);
                    }
                }
                if !ratios.is_empty() {
                    dispersion.push(ratios.iter().sum::<f64>() / ratios.len() as f64);
                }
            }
        }
        // Archetype message rates are ordered as configured (plug < sensor < … < gateway).
        let medians: Vec<f64> = per_arch_rates.iter().map(|r| median(r.clone())).collect();
        for (w, pair) in medians.windows(2).enumerate() {
            assert!(
                pair[0] < pair[1],
                "median messages/slot of {} ({}) ≥ {} ({})",
                ARCHETYPES[w].name,
                pair[0],
                ARCHETYPES[w + 1].name,
                pair[1]
            );
        }
        assert!(
            medians[n_arch - 1] / medians[0] > 100.0,
            "rates span orders of magnitude"
        );
        let bytes: Vec<f64> = per_arch_bytes.iter().map(|r| median(r.clone())).collect();
        let camera = ARCHETYPES
            .iter()
            .position(|a| a.name == "camera")
            .expect("camera");
        assert!(
            bytes.iter().all(|&b| b <= bytes[camera]),
            "cameras send the most bytes"
        );
        // A diurnal cycle: busier around the local peak hour than 10–14 h away from it.
        for (a, arch) in ARCHETYPES.iter().enumerate() {
            let ratio = (peak[a].0 / peak[a].1 as f64) / (trough[a].0 / trough[a].1 as f64);
            let expected =
                (1.0 + arch.diurnal_amplitude * 0.9) / (1.0 - arch.diurnal_amplitude * 0.9);
            assert!(
                ratio > 1.0 + (expected - 1.0) * 0.5,
                "{}: peak/trough {ratio:.2}, expected about {expected:.2}",
                arch.name
            );
        }
        // Over-dispersed counts: variance well above the mean within an hour of the week.
        let mean_dispersion = dispersion.iter().sum::<f64>() / dispersion.len() as f64;
        assert!(
            mean_dispersion > 1.5,
            "index of dispersion {mean_dispersion:.2}"
        );
        let ml = Metric::BUILTIN.iter().filter(|m| m.ml_capable()).count();
        assert_eq!(ml, 13);
    }
}
