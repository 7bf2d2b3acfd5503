//! Fleet events and incidents through the public scorer API: a fleet-wide shift becomes one
//! event whose device alarms are recorded but not notified; a small synchronised attack
//! dissolves its pending event and every device alarm is released; maintenance windows and
//! TRUE_POSITIVE releases; incidents group one device's alarms.

use crate::util::{dp, profile};
use std::sync::Arc;
use thingward_models::ml::{
    BehaviorModel, CohortModel, DeviceModel, ExpectedRates, LevelTargets, Transform,
};
use thingward_models::{Metric, Value, ViolationEventType};
use thingward_scorer::{
    Cause, Change, CompiledModel, CompiledProfile, FleetChange, FleetPhase, ModelSet, Scorer,
    Transition,
};

const DEVICES: usize = 100;
const MIN5: i64 = 300_000;

fn thing(i: usize) -> String {
    format!("d{i:03}")
}

/// Every device expects ln(1 + x) = 10 with scale 0.5 on both metrics; LOW/MEDIUM/HIGH point
/// thresholds 3/4/5, LOW reached by a clean device at 1e-5 per datapoint.
fn model(behavior: &str, metric: &str) -> BehaviorModel {
    BehaviorModel {
        profile: "p".into(),
        behavior: behavior.into(),
        metric: metric.into(),
        version: 1,
        trained_at: 0,
        window_start: 0,
        window_end: 1,
        datapoints: 400_000,
        excluded_datapoints: 0,
        transform: Transform::Log1p,
        targets: LevelTargets::default(),
        drift_lambda: 1.0 / 144.0,
        residual_clip: 4.0,
        drift_fast_lambda: 1.0 / 12.0,
        budget: None,
        cohorts: vec![CohortModel {
            name: "fleet".into(),
            devices: DEVICES as u32,
            location: 10.0,
            scale: 0.5,
            seasonal: Vec::new(),
            point: [3.0, 4.0, 5.0],
            drift: [1.0, 1.5, 2.0],
            cohort_point: [3.0, 4.0, 5.0],
        }],
        devices: (0..DEVICES)
            .map(|i| DeviceModel {
                thing: thing(i),
                cohort: 0,
                location: 10.0,
                scale: 0.5,
                seasonal: Vec::new(),
                datapoints: 4_032,
            })
            .collect(),
        expected: ExpectedRates {
            datapoint: [1e-5, 1e-6, 1e-7],
            ..ExpectedRates::default()
        },
    }
}

fn setup() -> (CompiledProfile, ModelSet) {
    let p = profile(
        "p",
        r#"[{"name":"out","metric":"aws:all-bytes-out","criteria":{"mlDetectionConfig":{"confidenceLevel":"MEDIUM"}}},
            {"name":"in","metric":"aws:all-bytes-in","criteria":{"mlDetectionConfig":{"confidenceLevel":"MEDIUM"}}}]"#,
    );
    let mut models = ModelSet::default();
    models.insert(Arc::new(
        CompiledModel::new(model("out", "aws:all-bytes-out")).expect("valid model"),
    ));
    models.insert(Arc::new(
        CompiledModel::new(model("in", "aws:all-bytes-in")).expect("valid model"),
    ));
    (p, models)
}

/// The raw value with residual `r`.
fn at(r: f64) -> f64 {
    (10.0 + 0.5 * r).exp_m1()
}

struct Run {
    scorer: Scorer,
    profile: CompiledProfile,
    models: ModelSet,
    transitions: Vec<Transition>,
    changes: Vec<FleetChange>,
}

impl Run {
    fn new() -> Self {
        let (profile, models) = setup();
        Self {
            scorer: Scorer::new(),
            profile,
            models,
            transitions: Vec::new(),
            changes: Vec::new(),
        }
    }

    /// One slot: every device reports bytes out; `spiking(i)` devices at residual 6.
    fn slot(&mut self, n: i64, spiking: impl Fn(usize) -> bool, covered: bool) {
        for i in 0..DEVICES {
            let r = if spiking(i) { 6.0 } else { 0.0 };
            let d = dp(
                &thing(i),
                Metric::AllBytesOut,
                n * MIN5,
                Value::Number(at(r)),
            );
            self.scorer.observe_ml_covered(
                &self.profile,
                &self.models,
                &d,
                covered,
                &mut self.transitions,
            );
        }
        self.scorer.drain_fleet_changes(&mut self.changes);
    }

    fn alarms(&self) -> Vec<&Transition> {
        self.transitions
            .iter()
            .filter(|t| t.change == Change::Event(ViolationEventType::InAlarm))
            .collect()
    }
}

#[test]
fn a_fleet_wide_shift_is_one_event_and_its_alarms_are_not_notified() {
    let mut run = Run::new();
    for n in 1..=3 {
        run.slot(n, |_| false, false);
    }
    // A roll-out: devices 0..40 spike over four slots, ten per slot.
    for (k, n) in (4..8).enumerate() {
        run.slot(n, |i| i >= 10 * k && i < 10 * (k + 1), false);
    }
    let alarms = run.alarms();
    assert_eq!(alarms.len(), 40);
    let notified = alarms.iter().filter(|t| t.cause.is_none()).count();
    assert_eq!(
        notified, 1,
        "only the first device alarms before the event pends"
    );
    let opened: Vec<_> = run
        .changes
        .iter()
        .filter(|c| matches!(c, FleetChange::Opened(_)))
        .collect();
    assert_eq!(opened.len(), 1);
    let ev = opened[0].event().clone();
    assert_eq!(ev.phase, FleetPhase::Open);
    assert_eq!(&*ev.profile, "p");
    assert_eq!(&*ev.behaviors[0].metric, "aws:all-bytes-out");
    assert!(ev.behaviors[0].share >= 0.1, "{:?}", ev.behaviors[0]);
    assert!(
        alarms
            .iter()
            .skip(1)
            .all(|t| t.cause == Some(Cause::FleetEvent(ev.id)))
    );
    // The clears of explained alarms are not notified either.
    let clears: Vec<_> = run
        .transitions
        .iter()
        .filter(|t| t.change == Change::Event(ViolationEventType::AlarmCleared))
        .collect();
    assert!(!clears.is_empty());
    assert!(
        clears
            .iter()
            .all(|t| t.thing.as_str() == "d000" || t.cause.is_some())
    );
    // The fleet quiets down: after the linger the event closes, nothing left to release.
    for n in 8..40 {
        run.slot(n, |_| false, false);
    }
    let closed = run.changes.iter().find_map(|c| match c {
        FleetChange::Closed { event, released } => Some((event, released)),
        _ => None,
    });
    let (event, released) = closed.expect("the event closes");
    assert_eq!(event.id, ev.id);
    assert!(released.is_empty());
    assert!(run.scorer.fleet_events().is_empty());
}

#[test]
fn one_device_stamped_next_year_does_not_move_the_fleet_clock() {
    let mut run = Run::new();
    for n in 1..=3 {
        run.slot(n, |_| false, false);
    }
    // A client with a wrong clock reports one device a year ahead.
    let year = 365 * 288;
    let d = dp(
        &thing(7),
        Metric::AllBytesOut,
        (4 + year) * MIN5,
        Value::Number(at(0.0)),
    );
    run.scorer
        .observe_ml_covered(&run.profile, &run.models, &d, false, &mut run.transitions);
    // A 3-device attack afterwards: its pending event must still dissolve on time (time has
    // to keep moving for the others) and release the held alarms.
    for n in 4..10 {
        run.slot(n, |i| i < 3, false);
    }
    let released = run
        .changes
        .iter()
        .find_map(|c| match c {
            FleetChange::Dissolved { released, .. } => Some(released.len()),
            _ => None,
        })
        .expect("the pending event dissolves");
    let at_once = run.alarms().iter().filter(|t| t.cause.is_none()).count();
    assert_eq!(at_once + released, 3);
}

#[test]
fn a_small_synchronised_attack_still_alarms_per_device() {
    let mut run = Run::new();
    for n in 1..=3 {
        run.slot(n, |_| false, false);
    }
    // Three devices (3 %) spike together for six slots: a DDoS.
    for n in 4..10 {
        run.slot(n, |i| i < 3, false);
    }
    assert!(
        !run.changes
            .iter()
            .any(|c| matches!(c, FleetChange::Opened(_))),
        "3 % never opens an event"
    );
    let released = run
        .changes
        .iter()
        .find_map(|c| match c {
            FleetChange::Dissolved { released, .. } => Some(released.clone()),
            _ => None,
        })
        .expect("the pending event dissolves");
    // The first alarm was notified at once, the other two are released.
    let notified_at_once = run.alarms().iter().filter(|t| t.cause.is_none()).count();
    assert_eq!(notified_at_once + released.len(), 3);
    assert!(released.iter().all(|r| r.in_alarm));
    // Their later changes are notified.
    let later: Vec<_> = run
        .transitions
        .iter()
        .filter(|t| t.change == Change::StillInAlarm)
        .rev()
        .take(3)
        .collect();
    assert!(later.iter().all(|t| t.cause.is_none()));
}

#[test]
fn a_maintenance_window_prevents_the_event_and_tags_its_alarms() {
    let mut run = Run::new();
    run.slot(1, |_| false, true);
    for n in 2..6 {
        run.slot(n, |i| i < 50, true);
    }
    assert!(run.changes.is_empty(), "{:?}", run.changes);
    let alarms = run.alarms();
    assert_eq!(alarms.len(), 50);
    assert!(alarms.iter().all(|t| t.cause == Some(Cause::Maintenance)));
}

#[test]
fn true_positive_releases_the_alarms_an_event_explained() {
    let mut run = Run::new();
    run.slot(1, |_| false, false);
    run.slot(2, |i| i < 30, false);
    let id = run
        .changes
        .iter()
        .find_map(|c| match c {
            FleetChange::Opened(e) => Some(e.id),
            _ => None,
        })
        .expect("30 % opens at once");
    let released = run.scorer.release_fleet_event(id).expect("known event");
    assert_eq!(released.len(), 29);
    // From now on its alarms notify.
    run.transitions.clear();
    run.slot(3, |i| i < 30, false);
    assert!(run.transitions.iter().all(|t| t.cause.is_none()));
    assert!(run.scorer.release_fleet_event(12345).is_none());
}

#[test]
fn one_device_alarming_on_two_behaviors_is_one_incident() {
    let (p, models) = setup();
    let mut s = Scorer::new();
    let mut out = Vec::new();
    for (metric, ts) in [(Metric::AllBytesOut, MIN5), (Metric::AllBytesIn, 2 * MIN5)] {
        s.observe_ml(
            &p,
            &models,
            &dp("d001", metric, ts, Value::Number(at(6.0))),
            &mut out,
        );
    }
    s.observe_ml(
        &p,
        &models,
        &dp(
            "d002",
            Metric::AllBytesOut,
            2 * MIN5,
            Value::Number(at(6.0)),
        ),
        &mut out,
    );
    assert_eq!(out.len(), 3);
    assert!(out[0].incident.is_some());
    assert_eq!(out[0].incident, out[1].incident);
    assert_ne!(out[0].incident, out[2].incident);
}
