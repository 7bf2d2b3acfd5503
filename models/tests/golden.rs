//! Committed model artifacts must keep decoding to the same model: stored models survive
//! upgrades, or the format version moves and the codec says why it refuses them.
//!
//! - `behavior-model-v1.twm` (format 1, written before the alarm budget) still decodes,
//!   converted to a model without budget or fast drift mean, so it judges as it did;
//! - `behavior-model-v2.twm` (format 2) decodes and re-encodes to the same bytes.
//!
//! To write the current format's file after a deliberate format change (and a new
//! `FORMAT_VERSION`), run with `THINGWARD_UPDATE_GOLDEN=1`; older files are never rewritten.

use std::path::PathBuf;
use thingward_models::codec;
use thingward_models::ml::{
    AlarmBudget, BehaviorModel, CohortModel, DeviceModel, ExpectedRates, LevelTargets, Transform,
    WEEK_BUCKETS,
};

fn golden_path(version: u16) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(format!("tests/golden/behavior-model-v{version}.twm"))
}

/// The model the format-1 golden file holds, as this build reads it.
fn expected() -> BehaviorModel {
    let seasonal: Vec<f32> = (0..WEEK_BUCKETS)
        .map(|b| ((b % 24) as f32 - 11.5) / 24.0)
        .collect();
    BehaviorModel {
        profile: "cameras".into(),
        behavior: "bytes-out-ml".into(),
        metric: "aws:all-bytes-out".into(),
        version: 7,
        trained_at: 1_767_571_200_000 + 14 * 86_400_000,
        window_start: 1_767_571_200_000,
        window_end: 1_767_571_200_000 + 14 * 86_400_000,
        datapoints: 28_224,
        excluded_datapoints: 36,
        transform: Transform::Log1p,
        targets: LevelTargets::default(),
        drift_lambda: 1.0 / 144.0,
        residual_clip: 4.0,
        drift_fast_lambda: 0.0,
        budget: None,
        cohorts: vec![CohortModel {
            name: "fleet".into(),
            devices: 2,
            location: 16.5,
            scale: 0.75,
            seasonal: seasonal.clone(),
            point: [3.4, 4.1, 4.6],
            drift: [0.8, 0.9, 1.0],
            cohort_point: [4.0, 4.8, 5.5],
        }],
        devices: vec![
            DeviceModel {
                thing: "cam-1".into(),
                cohort: 0,
                location: 16.75,
                scale: 0.37,
                seasonal: seasonal.clone(),
                datapoints: 4_032,
            },
            DeviceModel {
                thing: "cam-2".into(),
                cohort: 0,
                location: 15.25,
                scale: 0.41,
                seasonal: Vec::new(),
                datapoints: 100,
            },
        ],
        expected: ExpectedRates {
            datapoint: [9.5e-4, 9.1e-5, 1.2e-5],
            calibration_datapoints: 28_224,
            episodes_per_1000_device_days: None,
            datapoints_per_device_day: 0.0,
        },
    }
}

/// The model the format-2 golden file holds: the same, calibrated to a budget.
fn expected_v2() -> BehaviorModel {
    let mut m = expected();
    m.drift_fast_lambda = 1.0 / 12.0;
    m.budget = Some(AlarmBudget::shared(AlarmBudget::DEFAULT_PROFILE, 13));
    m.expected.episodes_per_1000_device_days = Some([1.4, 0.16, 0.014]);
    m.expected.datapoints_per_device_day = 288.0;
    m
}

#[test]
fn the_committed_v1_artifact_still_decodes() {
    let bytes =
        std::fs::read(golden_path(1)).expect("tests/golden/behavior-model-v1.twm is committed");
    assert_eq!(&bytes[..8], b"TWMODEL\0");
    assert_eq!(
        u16::from_le_bytes([bytes[8], bytes[9]]),
        1,
        "format version 1"
    );
    let model = codec::decode(&bytes).expect("the format-1 artifact decodes");
    assert_eq!(model, expected());
    // Re-encoding writes the current format.
    let again = codec::encode(&model).unwrap();
    assert_eq!(
        u16::from_le_bytes([again[8], again[9]]),
        codec::FORMAT_VERSION
    );
    assert_eq!(codec::decode(&again).unwrap(), model);
}

#[test]
fn the_committed_v2_artifact_decodes_and_reencodes_identically() {
    let path = golden_path(2);
    if std::env::var_os("THINGWARD_UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, codec::encode(&expected_v2()).unwrap()).unwrap();
    }
    let bytes = std::fs::read(&path).expect("tests/golden/behavior-model-v2.twm is committed");
    assert_eq!(
        u16::from_le_bytes([bytes[8], bytes[9]]),
        2,
        "format version 2"
    );
    let model = codec::decode(&bytes).expect("the golden artifact decodes");
    assert_eq!(model, expected_v2());
    assert_eq!(codec::encode(&model).unwrap(), bytes);
}
