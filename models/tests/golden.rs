//! A committed model artifact (format version 1) must keep decoding to the same model: stored
//! models survive upgrades, or the format version moves and the codec says why it refuses them.
//!
//! To rewrite the file after a deliberate format change (and a new `FORMAT_VERSION`), run with
//! `THINGWARD_UPDATE_GOLDEN=1`.

use std::path::PathBuf;
use thingward_models::codec;
use thingward_models::ml::{
    BehaviorModel, CohortModel, DeviceModel, ExpectedRates, LevelTargets, Transform, WEEK_BUCKETS,
};

fn golden_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/behavior-model-v1.twm")
}

/// The model the golden file holds.
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
        },
    }
}

#[test]
fn the_committed_v1_artifact_still_decodes() {
    let path = golden_path();
    if std::env::var_os("THINGWARD_UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, codec::encode(&expected()).unwrap()).unwrap();
    }
    let bytes = std::fs::read(&path).expect("tests/golden/behavior-model-v1.twm is committed");
    assert_eq!(&bytes[..8], b"TWMODEL\0");
    assert_eq!(
        u16::from_le_bytes([bytes[8], bytes[9]]),
        1,
        "format version 1"
    );
    let model = codec::decode(&bytes).expect("the golden artifact decodes");
    assert_eq!(model, expected());
    // Encoding is deterministic: today's encoder writes the very same bytes.
    assert_eq!(codec::encode(&model).unwrap(), bytes);
}
