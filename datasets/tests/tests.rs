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

    /// Kinds the broker still sees while a device holds no session.
    fn seen_without_session(kind: &EventKind) -> bool {
        matches!(
            kind,
            EventKind::CredentialStuffing
                | EventKind::CredentialStuffingLowSlow
                | EventKind::ReconnectLoop
        )
    }

    /// Every reported labelled attack datapoint differs from the clean counterfactual, every
    /// attack changes at least one datapoint of every (device, metric) it lists, and nothing
    /// differs outside attacks.
    pub(super) fn check(fleet: &Fleet) {
        check_devices(fleet, &(0..fleet.len()).collect::<Vec<_>>());
    }

    /// [`check`] on some devices: the attack guarantees hold for every attack that lists only
    /// devices among them.
    pub(super) fn check_devices(fleet: &Fleet, devices: &[usize]) {
        let labels = fleet.labels();
        let mut changed = std::collections::HashSet::new();
        for &i in devices {
            let thing = fleet.thing(i).clone();
            for ds in fleet.device(i) {
                for m in &METRICS {
                    let attack = labels.attacked(&thing, m, ds.timestamp);
                    let differs = ds.observed.differs(&ds.clean, m);
                    match attack {
                        Some(e) => {
                            if ds.observed.reports(m)
                                && (!ds.observed.cloud_only || seen_without_session(&e.kind))
                            {
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
        let checked: std::collections::HashSet<_> =
            devices.iter().map(|&i| fleet.thing(i).clone()).collect();
        for e in labels
            .attacks()
            .filter(|e| e.devices.iter().all(|d| checked.contains(d)))
        {
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

    /// The benign kinds added with `industrial.toml`; `tiny.toml` and `default.toml` keep
    /// their output, so they do not have them (`tiny-benign.toml` and `industrial.toml` do).
    pub(super) const LATER_KINDS: [EventKind; 4] = [
        EventKind::StagedRollout,
        EventKind::BrokerRestart,
        EventKind::RegionalOutageReconnect,
        EventKind::DstShift,
    ];

    #[test]
    fn attacks_differ_from_the_counterfactual_on_tiny() {
        let mut kinds = std::collections::HashSet::new();
        for name in ["tiny", "tiny-benign"] {
            let fleet = Fleet::new(&scenario(name)).expect("fleet");
            kinds.extend(fleet.labels().events.iter().map(|e| e.kind.clone()));
            check(&fleet);
        }
        for k in EventKind::NAMED {
            assert!(kinds.contains(k), "tiny and tiny-benign lack {k}");
        }
    }

    #[test]
    fn default_scenario_has_every_kind_and_consistent_labels() {
        let s = scenario("default");
        let fleet = Fleet::new(&s).expect("fleet");
        let labels = fleet.labels();
        for k in EventKind::NAMED.iter().filter(|k| !LATER_KINDS.contains(k)) {
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
                        && ds.observed.reports(m)
                    {
                        assert!(ds.observed.differs(&ds.clean, m), "{thing} {m} {}", e.id);
                    }
                }
            }
        }
    }
}

/// The fleet-wide benign kinds: each generated alone on a small fleet, its effect checked on
/// the labelled devices' clean readings (benign events are part of the clean stream).
mod benign {
    use super::*;
    use thingward_datasets::Event;
    use thingward_models::time::EpochMillis;

    /// Each device's clean readings over the whole span.
    fn readings(fleet: &Fleet) -> Vec<Vec<Reading>> {
        (0..fleet.len())
            .map(|i| fleet.device(i).map(|ds| ds.clean).collect())
            .collect()
    }

    fn only_event(fleet: &Fleet, kind: EventKind) -> Event {
        let events = &fleet.labels().events;
        assert_eq!(events.len(), 1);
        let e = events[0].clone();
        assert_eq!((e.kind.clone(), e.class), (kind, EventClass::Benign));
        e
    }

    fn slot_of(fleet: &Fleet, t: EpochMillis) -> usize {
        ((t - fleet.scenario().start_ms()) / 300_000) as usize
    }

    fn labelled(fleet: &Fleet, e: &Event) -> Vec<bool> {
        (0..fleet.len())
            .map(|i| e.devices.contains(fleet.thing(i)))
            .collect()
    }

    fn messages(r: &[Reading], slots: std::ops::Range<usize>) -> f64 {
        r[slots].iter().map(|x| x.messages_sent).sum()
    }

    #[test]
    fn staged_rollout_goes_in_waves_and_leaves_the_fleet_sending_more() {
        // Starts on a Monday: day 1 and day 8 are both Tuesdays.
        let s = Scenario::parse(
            r#"
            name = "rollout"
            seed = 5
            devices = 200
            days = 9
            [[events]]
            kind = "staged-rollout"
            start_hours = 48
            duration_hours = 12
            fraction = 0.5
            magnitude = 20
            "#,
        )
        .expect("parses");
        let fleet = Fleet::new(&s).expect("fleet");
        let e = only_event(&fleet, EventKind::StagedRollout);
        let (start, end) = (slot_of(&fleet, e.start_ms), slot_of(&fleet, e.end_ms));
        assert_eq!(start, 48 * 12);
        assert!(
            end <= start + 12 * 12 + 4,
            "label ends with the last reboot"
        );
        assert_eq!(e.devices.len(), 100);
        assert!(e.touches(&Metric::NumMessagesSent) && e.touches(&Metric::AllBytesIn));
        assert!(
            e.note
                .as_deref()
                .is_some_and(|n| n.contains("persistently"))
        );
        let rs = readings(&fleet);
        let on = labelled(&fleet, &e);
        let mut downloads = Vec::new();
        let (mut before, mut after) = ([0.0; 2], [0.0; 2]);
        for (i, r) in rs.iter().enumerate() {
            let image = fleet.archetype(i).firmware_bytes;
            let got: Vec<usize> = (0..r.len())
                .filter(|&k| r[k].bytes_in >= 0.9 * image)
                .collect();
            if on[i] {
                assert_eq!(got.len(), 1, "{} downloads once", fleet.thing(i));
                let at = got[0];
                assert!((start..end).contains(&at));
                assert!(
                    (at + 1..=at + 3).any(|k| r[k].disconnects >= 1.0),
                    "{} reboots after its download",
                    fleet.thing(i)
                );
                downloads.push(at - start);
            } else {
                assert!(got.is_empty(), "{} is not in the roll-out", fleet.thing(i));
            }
            let k = usize::from(on[i]);
            before[k] += messages(r, 288..576);
            after[k] += messages(r, 8 * 288..9 * 288);
        }
        // Waves: a canary of 1–2 devices soaks (an hour or more without a download), then
        // growing waves take most devices in the second half.
        downloads.sort_unstable();
        assert!(
            (1..=2).any(|j| downloads[j] - downloads[j - 1] >= 12),
            "no canary soak in {downloads:?}"
        );
        let late = downloads.iter().filter(|&&d| d >= 12 * 12 / 2).count();
        assert!(late > downloads.len() / 2, "late waves {late}");
        // A persistent level shift: +20 % messages a week later on the updated devices only.
        let updated = after[1] / before[1];
        let others = after[0] / before[0];
        assert!((1.14..1.26).contains(&updated), "updated ×{updated:.3}");
        assert!((0.94..1.06).contains(&others), "others ×{others:.3}");
    }

    #[test]
    fn broker_restart_disconnects_nearly_every_device_in_one_slot() {
        let s = Scenario::parse(
            r#"
            name = "restart"
            seed = 6
            devices = 150
            days = 2
            [[events]]
            kind = "broker-restart"
            start_hours = 30
            magnitude = [30, 120]
            "#,
        )
        .expect("parses");
        let fleet = Fleet::new(&s).expect("fleet");
        let e = only_event(&fleet, EventKind::BrokerRestart);
        let (start, end) = (slot_of(&fleet, e.start_ms), slot_of(&fleet, e.end_ms));
        assert_eq!(start, 30 * 12);
        assert!(end > start && end <= start + 3, "window {start}..{end}");
        assert!(e.devices.len() >= 140, "{} devices", e.devices.len());
        let rs = readings(&fleet);
        let on = labelled(&fleet, &e);
        let n = e.devices.len();
        let in_slot = (0..fleet.len())
            .filter(|&i| on[i] && rs[i][start].disconnects >= 1.0)
            .count();
        assert!(
            in_slot * 100 >= n * 80,
            "{in_slot} of {n} in the restart slot"
        );
        let mut failures = 0;
        for (i, r) in rs.iter().enumerate() {
            let window = &r[start..end];
            let d: f64 = window.iter().map(|x| x.disconnects).sum();
            let c: f64 = window.iter().map(|x| x.connection_attempts).sum();
            if on[i] {
                assert!(d >= 1.0, "{} disconnects", fleet.thing(i));
                assert!((1.0..=20.0).contains(&c), "{} attempts {c}", fleet.thing(i));
                failures += usize::from(window.iter().any(|x| x.authorization_failures > 0.0));
            } else {
                assert!(d <= 1.0, "{} is not in the restart", fleet.thing(i));
            }
        }
        assert!(failures * 10 <= n, "{failures} expired sessions");
        // Elsewhere disconnects are rare: the restart stands out fleet-wide.
        for k in (0..rs[0].len()).filter(|k| !(start..end).contains(k)) {
            let d = rs.iter().filter(|r| r[k].disconnects >= 1.0).count();
            assert!(d * 10 < fleet.len(), "slot {k}: {d} devices disconnect");
        }
    }

    #[test]
    fn regional_outage_reconnect_retries_during_and_uploads_after() {
        let s = Scenario::parse(
            r#"
            name = "outage"
            seed = 8
            devices = 80
            days = 3
            [[regions]]
            name = "north"
            utc_offset_hours = 2
            weight = 1
            [[regions]]
            name = "south"
            utc_offset_hours = -3
            weight = 1
            [[events]]
            kind = "regional-outage-reconnect"
            region = "south"
            start_hours = 34
            duration_hours = 3
            magnitude = 4
            "#,
        )
        .expect("parses");
        let fleet = Fleet::new(&s).expect("fleet");
        let e = only_event(&fleet, EventKind::RegionalOutageReconnect);
        let start = slot_of(&fleet, e.start_ms);
        let (outage_end, label_end) = (start + 36, slot_of(&fleet, e.end_ms));
        assert_eq!(start, 34 * 12);
        // A backlog of ~36 slots at 4 (±20 %) slots per slot: 8–12 slots of upload.
        assert!(
            (outage_end + 7..=outage_end + 14).contains(&label_end),
            "label ends at {label_end}"
        );
        let rs = readings(&fleet);
        let on = labelled(&fleet, &e);
        for (i, &on) in on.iter().enumerate() {
            assert_eq!(on, fleet.region(i).name == "south");
        }
        let (mut first, mut later, mut later_slots) = (0.0, 0.0, 0.0);
        let (mut upload, mut day_before) = (0.0, 0.0);
        for (i, r) in rs.iter().enumerate() {
            if !on[i] {
                assert!(r.iter().all(|x| x.online && !x.cloud_only));
                continue;
            }
            for (k, x) in r.iter().enumerate().take(outage_end).skip(start) {
                assert!(x.cloud_only, "{} slot {k} has a session", fleet.thing(i));
                assert!(x.reports(&Metric::NumConnectionAttempts));
                assert!(!x.reports(&Metric::AllBytesOut));
                assert_eq!(x.messages_sent, 0.0);
            }
            assert_eq!(
                r[start].disconnects, 1.0,
                "the broker times the session out"
            );
            first += r[start].connection_attempts;
            for x in &r[start + 6..outage_end] {
                later += x.connection_attempts;
                later_slots += 1.0;
            }
            let reconnect = &r[outage_end..outage_end + 2];
            assert!(reconnect.iter().all(|x| !x.cloud_only) || r[outage_end].cloud_only);
            assert!(
                reconnect.iter().map(|x| x.connection_attempts).sum::<f64>() >= 1.0,
                "{} reconnects",
                fleet.thing(i)
            );
            upload += messages(r, outage_end..label_end);
            day_before += messages(r, outage_end - 288..label_end - 288);
        }
        let n = e.devices.len() as f64;
        // Back-off: many attempts while it is fresh, about two seen per slot later.
        assert!(first / n >= 3.0, "first slot {:.1} attempts", first / n);
        let steady = later / later_slots;
        assert!(
            (1.2..=3.5).contains(&steady),
            "{steady:.2} attempts per slot"
        );
        // The backlog: 3 h of telemetry on top of the usual in the slots after.
        assert!(upload > 3.0 * day_before, "upload {upload} vs {day_before}");
    }

    /// The hour (UTC, 0..24) of the first harmonic's peak of an hourly profile.
    fn peak_hour(profile: &[f64; 24]) -> f64 {
        let (mut c, mut s) = (0.0, 0.0);
        for (h, x) in profile.iter().enumerate() {
            let a = 2.0 * std::f64::consts::PI * h as f64 / 24.0;
            c += x * a.cos();
            s += x * a.sin();
        }
        (s.atan2(c) * 24.0 / (2.0 * std::f64::consts::PI)).rem_euclid(24.0)
    }

    #[test]
    fn dst_shift_moves_the_regions_daily_peak_by_an_hour() {
        let s = Scenario::parse(
            r#"
            name = "dst"
            seed = 9
            devices = 160
            days = 10
            [mix]
            tracker = 1
            plug = 1
            [[regions]]
            name = "north"
            utc_offset_hours = 1
            weight = 1
            [[regions]]
            name = "south"
            utc_offset_hours = 10.5
            weight = 1
            [[events]]
            kind = "dst-shift"
            region = "north"
            start_hours = 96
            fraction = 1.0
            magnitude = 1
            "#,
        )
        .expect("parses");
        let fleet = Fleet::new(&s).expect("fleet");
        let e = only_event(&fleet, EventKind::DstShift);
        let at = slot_of(&fleet, e.start_ms);
        // The change is at 02:00 north time (01:00 UTC) on day 4, and the label covers a day.
        assert_eq!(at, (4 * 24 + 1) * 12);
        assert_eq!(slot_of(&fleet, e.end_ms), at + 288);
        let rs = readings(&fleet);
        let on = labelled(&fleet, &e);
        // Weekday hourly profiles (UTC) before (days 0–3) and after (days 7–9) the change.
        let mut profiles = [[[0.0; 24]; 2]; 2];
        for (i, r) in rs.iter().enumerate() {
            assert_eq!(on[i], fleet.region(i).name == "north");
            for (k, x) in r.iter().enumerate() {
                let day = k / 288;
                let when = match day {
                    0..=3 => 0,
                    7..=9 => 1,
                    _ => continue,
                };
                profiles[usize::from(on[i])][when][(k % 288) / 12] += x.messages_sent;
            }
        }
        let moved = |p: &[[f64; 24]; 2]| {
            let d = peak_hour(&p[1]) - peak_hour(&p[0]);
            (d + 12.0).rem_euclid(24.0) - 12.0
        };
        let north = moved(&profiles[1]);
        let south = moved(&profiles[0]);
        assert!(
            (-1.3..=-0.7).contains(&north),
            "north peak moved {north:.2} h"
        );
        assert!(south.abs() <= 0.3, "south peak moved {south:.2} h");
    }

    /// The second bundled scenario: every kind, the benign ones of the evaluation week after
    /// the training span (one before it), and attacks starting inside benign events.
    #[test]
    fn industrial_scenario_hides_attacks_inside_benign_events() {
        let s = scenario("industrial");
        assert_eq!((s.devices(), s.days(), s.training_days()), (360, 21, 14));
        assert_eq!(s.regions().len(), 4);
        assert!(
            s.regions()
                .iter()
                .any(|r| r.utc_offset_hours.fract() != 0.0)
        );
        let fleet = Fleet::new(&s).expect("fleet");
        let labels = fleet.labels();
        for k in EventKind::NAMED.iter().filter(|k| {
            k.class() == Some(EventClass::Attack) || super::labels::LATER_KINDS.contains(k)
        }) {
            assert!(labels.events.iter().any(|e| &e.kind == k), "lacks {k}");
        }
        let benign: Vec<&Event> = labels
            .events
            .iter()
            .filter(|e| e.class == EventClass::Benign)
            .collect();
        let training = benign
            .iter()
            .filter(|e| e.start_ms < s.training_end_ms())
            .count();
        assert_eq!(training, 1, "one benign event in the training span");
        for k in super::labels::LATER_KINDS {
            assert!(
                benign
                    .iter()
                    .any(|e| e.kind == k && e.start_ms >= s.training_end_ms()),
                "{k} in the evaluation week"
            );
        }
        let inside = |attack: EventKind, host: EventKind| {
            let host = benign.iter().find(|e| e.kind == host).expect("host");
            let a = labels
                .attacks()
                .find(|a| a.kind == attack && host.covers(a.start_ms))
                .unwrap_or_else(|| panic!("no {attack} inside {}", host.kind));
            assert!(
                a.devices.iter().all(|d| host.devices.contains(d)),
                "{attack}'s devices take part in {}",
                host.kind
            );
        };
        inside(EventKind::ReconnectLoop, EventKind::RegionalOutageReconnect);
        let rollout = benign
            .iter()
            .find(|e| e.kind == EventKind::StagedRollout)
            .expect("roll-out");
        assert!(
            labels
                .attacks()
                .any(|a| a.kind == EventKind::Ddos && rollout.covers(a.start_ms))
        );
        let restart = benign
            .iter()
            .find(|e| e.kind == EventKind::BrokerRestart)
            .expect("restart");
        assert!(
            labels
                .attacks()
                .any(|a| { a.kind == EventKind::CredentialStuffing && restart.covers(a.start_ms) })
        );
        // The attack guarantees, on the attacked devices and a sample of the others.
        let devices: Vec<usize> = (0..fleet.len())
            .filter(|&i| labels.ever_attacked(fleet.thing(i)) || i % 15 == 0)
            .collect();
        super::labels::check_devices(&fleet, &devices);
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
