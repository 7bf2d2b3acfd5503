//! ML Detect scoring through the public API: levels, the drift test, unknown devices, alarm
//! controls, explanations and atomic, refusing model swaps.

use crate::util::{dp, profile, words};
use std::sync::Arc;
use thingward_models::codec;
use thingward_models::ml::{
    AnomalyTest, BaselineKind, BehaviorModel, CohortModel, DeviceModel, ExpectedRates,
    LevelTargets, Transform,
};
use thingward_models::{ConfidenceLevel, Metric, Value};
use thingward_scorer::{CompiledModel, Drift, LiveModels, ModelSet, Scorer};

/// A flat model of `aws:all-bytes-out` for profile `p` / behavior `ml`: device `known` expects
/// ln(1 + x) = 10 (x ≈ 22,025) with scale 0.5; the fleet expects 8 with scale 1.
fn model(version: u64) -> BehaviorModel {
    BehaviorModel {
        profile: "p".into(),
        behavior: "ml".into(),
        metric: "aws:all-bytes-out".into(),
        version,
        trained_at: 0,
        window_start: 0,
        window_end: 1,
        datapoints: 30_000,
        excluded_datapoints: 0,
        transform: Transform::Log1p,
        targets: LevelTargets::default(),
        drift_lambda: 0.5,
        residual_clip: 4.0,
        drift_fast_lambda: 0.0,
        budget: None,
        cohorts: vec![CohortModel {
            name: "fleet".into(),
            devices: 1,
            location: 8.0,
            scale: 1.0,
            seasonal: Vec::new(),
            point: [3.0, 4.0, 5.0],
            drift: [1.0, 1.5, 2.0],
            cohort_point: [3.5, 4.5, 5.5],
        }],
        devices: vec![DeviceModel {
            thing: "known".into(),
            cohort: 0,
            location: 10.0,
            scale: 0.5,
            seasonal: Vec::new(),
            datapoints: 4_032,
        }],
        expected: ExpectedRates::default(),
    }
}

/// The raw value whose standardised residual for `known` is `r`.
fn at(r: f64) -> f64 {
    (10.0 + 0.5 * r).exp_m1()
}

fn compiled(version: u64) -> CompiledModel {
    CompiledModel::new(model(version)).expect("valid model")
}

#[test]
fn each_datapoint_gets_the_highest_level_it_reaches() {
    let m = compiled(1);
    let mut drift = Drift::default();
    let levels: Vec<Option<ConfidenceLevel>> = [0.0, 3.5, 4.5, 6.0]
        .iter()
        .map(|&r| m.judge("known", 0, at(r), &mut drift).confidence_level())
        .collect();
    assert_eq!(
        levels,
        [
            None,
            Some(ConfidenceLevel::Low),
            Some(ConfidenceLevel::Medium),
            Some(ConfidenceLevel::High)
        ]
    );
    let j = m.judge("known", 0, at(4.5), &mut Drift::default());
    assert!(j.reaches(ConfidenceLevel::Low) && j.reaches(ConfidenceLevel::Medium));
    assert!(!j.reaches(ConfidenceLevel::High));
    assert_eq!(j.baseline, BaselineKind::Device);
}

#[test]
fn a_slow_shift_trips_the_drift_test_and_spikes_stay_out_of_it() {
    let m = compiled(1);
    let mut drift = Drift::default();
    // Residual 2.5: below every point threshold, but a sustained shift.
    let mut last = None;
    for _ in 0..20 {
        last = Some(m.judge("known", 0, at(2.5), &mut drift));
    }
    let j = last.unwrap();
    assert_eq!(j.test, AnomalyTest::Drift);
    assert_eq!(j.confidence_level(), Some(ConfidenceLevel::High));
    // A spike is a point anomaly and does not move the drift mean.
    let mut drift = Drift::default();
    for _ in 0..20 {
        let j = m.judge("known", 0, at(50.0), &mut drift);
        assert_eq!(j.test, AnomalyTest::Point);
    }
    assert_eq!(drift, Drift::default());
}

#[test]
fn an_unknown_device_is_judged_against_the_fleet() {
    let m = compiled(1);
    let fleet = |r: f64| (8.0 + r).exp_m1();
    let j = m.judge("new-device", 0, fleet(3.0), &mut Drift::default());
    assert_eq!(j.baseline, BaselineKind::Cohort);
    assert_eq!(j.level, None, "3.0 is under the fleet's LOW threshold 3.5");
    let j = m.judge("new-device", 0, fleet(6.0), &mut Drift::default());
    assert_eq!(j.confidence_level(), Some(ConfidenceLevel::High));
    let e = m.explain("new-device", 0, fleet(6.0), &j);
    assert_eq!(e.baseline_name, "fleet");
}

#[test]
fn ml_behaviors_alarm_at_their_level_with_consecutive_datapoints_and_explanations() {
    let p = profile(
        "p",
        r#"[{"name":"ml","metric":"aws:all-bytes-out",
             "criteria":{"mlDetectionConfig":{"confidenceLevel":"MEDIUM"},
                         "consecutiveDatapointsToAlarm":2,"consecutiveDatapointsToClear":2},
             "suppressAlerts":true}]"#,
    );
    let mut models = ModelSet::default();
    models.insert(Arc::new(compiled(3)));
    let mut scorer = Scorer::new();
    let mut run = |r: f64, ts: i64| {
        let mut out = Vec::new();
        let d = dp("known", Metric::AllBytesOut, ts, Value::Number(at(r)));
        scorer.observe_ml(&p, &models, &d, &mut out);
        out
    };
    // LOW only (3.5) never violates a MEDIUM behavior; two MEDIUM datapoints in a row alarm.
    assert!(run(3.5, 1).is_empty());
    assert!(run(3.5, 2).is_empty());
    assert!(run(4.5, 3).is_empty());
    let t = run(4.5, 4);
    assert_eq!(words(&t), ["in"]);
    assert!(t[0].suppressed, "suppressAlerts is carried");
    let e = t[0].explanation.as_deref().expect("explained");
    assert_eq!(e.model_version, 3);
    assert_eq!(e.reached, Some(ConfidenceLevel::Medium));
    assert_eq!(e.baseline, BaselineKind::Device);
    assert!((e.observed - at(4.5)).abs() < 1e-6);
    assert!((e.expected - 10f64.exp_m1()).abs() < 1e-3);
    let uppers: Vec<f64> = e.expected_range.iter().map(|r| r.upper).collect();
    for (u, r) in uppers.iter().zip([3.0, 4.0, 5.0]) {
        assert!((u / at(r) - 1.0).abs() < 1e-4, "{u} vs {}", at(r));
    }
    assert_eq!(words(&run(6.0, 5)), ["still"]);
    assert!(
        run(0.0, 6).is_empty(),
        "one compliant datapoint does not clear"
    );
    let t = run(0.0, 7);
    assert_eq!(words(&t), ["cleared"]);
    assert!(t[0].explanation.is_none());
}

#[test]
fn without_a_model_an_ml_behavior_gives_no_verdict() {
    let p = profile(
        "p",
        r#"[{"name":"ml","metric":"aws:all-bytes-out","criteria":{"mlDetectionConfig":{"confidenceLevel":"LOW"}}}]"#,
    );
    let mut out = Vec::new();
    let d = dp("known", Metric::AllBytesOut, 1, Value::Number(1e12));
    Scorer::new().observe_ml(&p, &ModelSet::default(), &d, &mut out);
    assert!(out.is_empty());
    // And rules scoring ignores ML behaviors.
    Scorer::new().observe(&p, &d, &mut out);
    assert!(out.is_empty());
}

#[test]
fn a_corrupt_artifact_is_refused_and_the_previous_model_keeps_serving() {
    let live = LiveModels::new();
    let v1 = codec::encode(&model(1)).unwrap();
    live.install_artifact(&v1).unwrap();
    let held = live.snapshot();

    let mut corrupt = codec::encode(&model(2)).unwrap();
    let mid = corrupt.len() / 2;
    corrupt[mid] ^= 0xff;
    assert!(live.install_artifact(&corrupt).is_err());
    assert!(
        live.install_artifact(&corrupt[..corrupt.len() - 3])
            .is_err()
    );
    let mut invalid = model(2);
    invalid.devices[0].cohort = 9;
    assert!(
        live.install_artifact(&codec::encode(&invalid).unwrap())
            .is_err()
    );
    assert_eq!(live.snapshot().get("p", "ml").unwrap().version(), 1);

    // A good v2 replaces v1 atomically: a snapshot taken before still scores with v1.
    live.install_artifact(&codec::encode(&model(2)).unwrap())
        .unwrap();
    assert_eq!(live.snapshot().get("p", "ml").unwrap().version(), 2);
    assert_eq!(held.get("p", "ml").unwrap().version(), 1);
    assert_eq!(live.snapshot().len(), 1);
    live.retain_profile("p", &[]);
    assert!(live.snapshot().is_empty());
}

#[test]
fn models_that_cannot_serve_are_refused_with_a_reason() {
    let mut m = model(1);
    m.cohorts[0].point = [5.0, 4.0, 3.0];
    let err = CompiledModel::new(m).unwrap_err().to_string();
    assert!(err.contains("must not decrease"), "{err}");
    let mut m = model(1);
    m.devices[0].scale = 0.0;
    assert!(CompiledModel::new(m).is_err());
    let mut m = model(1);
    m.devices[0].seasonal = vec![0.0; 5];
    assert!(CompiledModel::new(m).is_err());
    let mut m = model(1);
    m.cohorts.clear();
    assert!(CompiledModel::new(m).is_err());
}

/// Issue 12, item 6: a one-hour shift the whole fleet shares (reconnects after an outage) must
/// not leave the drift test alarming for a day. The slow mean alone (format-1 models) stays
/// above its LOW threshold for hours; with the fast mean the drift test stops within ~2 hours.
#[test]
fn a_shift_that_is_over_stops_the_drift_test_within_hours() {
    let hours_in_drift = |fast: f32| {
        let mut m = model(1);
        m.drift_lambda = 1.0 / 144.0;
        m.drift_fast_lambda = fast;
        m.cohorts[0].point = [3.0, 4.0, 5.0];
        m.cohorts[0].drift = [0.15, 0.25, 0.35];
        let m = CompiledModel::new(m).expect("valid model");
        let mut drift = Drift::default();
        // A day of normal data, one hour at residual 2.9 (under the point threshold, so it
        // enters the drift means), then normal again.
        let rs = std::iter::repeat_n(0.0, 288)
            .chain(std::iter::repeat_n(2.9, 12))
            .chain(std::iter::repeat_n(0.0, 288));
        let flagged: Vec<bool> = rs
            .map(|r| {
                let j = m.judge("known", 0, at(r), &mut drift);
                j.test == AnomalyTest::Drift && j.level.is_some()
            })
            .collect();
        // Hours after the shift ended during which the drift test still fired.
        let after = flagged[300..].iter().rposition(|&f| f).map_or(0, |i| i + 1);
        after as f64 / 12.0
    };
    let slow_only = hours_in_drift(0.0);
    let with_fast = hours_in_drift(1.0 / 12.0);
    assert!(
        slow_only > 4.0,
        "the slow mean alone alarms {slow_only:.1} h after"
    );
    assert!(
        with_fast < 2.5,
        "with the fast mean it stops {with_fast:.1} h after"
    );
}
