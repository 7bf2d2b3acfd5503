//! The on-disk form of model artifacts: a fixed header, then a bincode payload.
//!
//! ```text
//! offset  size  field
//!      0     8  magic            b"TWMODEL\0"
//!      8     2  format version   u16 LE (FORMAT_VERSION)
//!     10     2  artifact kind    u16 LE (1 = BehaviorModel)
//!     12     8  payload length   u64 LE
//!     20     4  checksum         CRC-32/IEEE of the payload, u32 LE
//!     24     …  payload          bincode 2, `config::standard()`, serde encoding
//! ```
//!
//! Every decode checks all of it: a file that is not an artifact, from a newer format, of
//! another kind, truncated, padded or bit-flipped is refused with an [`Error`] saying which,
//! and never half-decoded. bincode (flagged unmaintained, RUSTSEC-2025-0141) is used only
//! here, so the payload encoding can change behind a new format version.

use crate::ml::BehaviorModel;

/// The first eight bytes of every artifact.
pub const MAGIC: [u8; 8] = *b"TWMODEL\0";
/// The payload format this build writes.
///
/// - 2: the alarm budget, the drift test's fast mean, expected episodes per 1,000
///   device-days;
/// - 1: still read (converted: no budget, no fast mean, so it judges exactly as before).
pub const FORMAT_VERSION: u16 = 2;
/// The oldest format this build still reads.
pub const OLDEST_READABLE: u16 = 1;
/// The kind tag of a [`BehaviorModel`].
pub const KIND_BEHAVIOR_MODEL: u16 = 1;
/// Header length in bytes.
pub const HEADER_BYTES: usize = 24;

/// Why an artifact could not be decoded (or encoded).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The bytes do not start with [`MAGIC`].
    #[error("not a thingward model artifact (bad magic bytes)")]
    BadMagic,
    /// Shorter than the header or than the payload length it declares.
    #[error("artifact truncated: {expected} bytes expected, {found} present")]
    Truncated {
        /// Bytes the header promises.
        expected: usize,
        /// Bytes present.
        found: usize,
    },
    /// Longer than the header declares.
    #[error("artifact has {extra} trailing bytes after its payload")]
    TrailingBytes {
        /// Bytes past the payload.
        extra: usize,
    },
    /// Written by a format this build does not read.
    #[error("artifact format version {found} is not supported (this build reads {supported})")]
    UnsupportedVersion {
        /// The artifact's version.
        found: u16,
        /// The version this build reads.
        supported: u16,
    },
    /// Another kind of artifact.
    #[error("artifact kind {found} is not a behavior model (kind {expected})")]
    WrongKind {
        /// The artifact's kind.
        found: u16,
        /// The kind asked for.
        expected: u16,
    },
    /// The payload's checksum does not match: the file is corrupt.
    #[error("artifact checksum mismatch (stored {stored:08x}, computed {computed:08x}): corrupt")]
    Checksum {
        /// The checksum in the header.
        stored: u32,
        /// The checksum of the payload read.
        computed: u32,
    },
    /// The payload does not decode as the artifact type.
    #[error("artifact payload does not decode: {0}")]
    Decode(#[source] bincode::error::DecodeError),
    /// The model could not be encoded.
    #[error("model does not encode: {0}")]
    Encode(#[source] bincode::error::EncodeError),
}

/// Encodes a behavior model as an artifact.
///
/// # Errors
/// [`Error::Encode`] when bincode refuses the value (it does not for these types).
pub fn encode(model: &BehaviorModel) -> Result<Vec<u8>, Error> {
    let payload =
        bincode::serde::encode_to_vec(model, bincode::config::standard()).map_err(Error::Encode)?;
    let mut out = Vec::with_capacity(HEADER_BYTES + payload.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&KIND_BEHAVIOR_MODEL.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
    Ok(out)
}

/// Decodes a behavior model artifact, checking its header and checksum.
///
/// # Errors
/// See [`Error`]: each way the bytes can fail to be a current behavior model.
pub fn decode(bytes: &[u8]) -> Result<BehaviorModel, Error> {
    if bytes.len() < MAGIC.len() || bytes[..MAGIC.len()] != MAGIC {
        return Err(if bytes.len() < MAGIC.len() && MAGIC.starts_with(bytes) {
            Error::Truncated {
                expected: HEADER_BYTES,
                found: bytes.len(),
            }
        } else {
            Error::BadMagic
        });
    }
    if bytes.len() < HEADER_BYTES {
        return Err(Error::Truncated {
            expected: HEADER_BYTES,
            found: bytes.len(),
        });
    }
    let u16_at = |at: usize| u16::from_le_bytes([bytes[at], bytes[at + 1]]);
    let version = u16_at(8);
    if !(OLDEST_READABLE..=FORMAT_VERSION).contains(&version) {
        return Err(Error::UnsupportedVersion {
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    let kind = u16_at(10);
    if kind != KIND_BEHAVIOR_MODEL {
        return Err(Error::WrongKind {
            found: kind,
            expected: KIND_BEHAVIOR_MODEL,
        });
    }
    let mut len = [0u8; 8];
    len.copy_from_slice(&bytes[12..20]);
    let len = usize::try_from(u64::from_le_bytes(len)).unwrap_or(usize::MAX);
    let mut stored = [0u8; 4];
    stored.copy_from_slice(&bytes[20..24]);
    let stored = u32::from_le_bytes(stored);
    let body = &bytes[HEADER_BYTES..];
    if body.len() < len {
        return Err(Error::Truncated {
            expected: HEADER_BYTES.saturating_add(len),
            found: bytes.len(),
        });
    }
    if body.len() > len {
        return Err(Error::TrailingBytes {
            extra: body.len() - len,
        });
    }
    let computed = crc32fast::hash(body);
    if computed != stored {
        return Err(Error::Checksum { stored, computed });
    }
    let (model, used): (BehaviorModel, usize) = if version == 1 {
        let (old, used): (v1::BehaviorModel, usize) =
            bincode::serde::decode_from_slice(body, bincode::config::standard())
                .map_err(Error::Decode)?;
        (old.into(), used)
    } else {
        bincode::serde::decode_from_slice(body, bincode::config::standard())
            .map_err(Error::Decode)?
    };
    if used != body.len() {
        return Err(Error::TrailingBytes {
            extra: body.len() - used,
        });
    }
    Ok(model)
}

/// Format 1's payload, read and converted.
mod v1 {
    use crate::ml::{CohortModel, DeviceModel, LevelTargets, Transform};
    use crate::time::EpochMillis;
    use serde::Deserialize;

    #[derive(Deserialize)]
    pub(super) struct ExpectedRates {
        datapoint: [f64; 3],
        calibration_datapoints: u64,
    }

    #[derive(Deserialize)]
    pub(super) struct BehaviorModel {
        profile: String,
        behavior: String,
        metric: String,
        version: u64,
        trained_at: EpochMillis,
        window_start: EpochMillis,
        window_end: EpochMillis,
        datapoints: u64,
        excluded_datapoints: u64,
        transform: Transform,
        targets: LevelTargets,
        drift_lambda: f32,
        residual_clip: f32,
        cohorts: Vec<CohortModel>,
        devices: Vec<DeviceModel>,
        expected: ExpectedRates,
    }

    impl From<BehaviorModel> for crate::ml::BehaviorModel {
        fn from(m: BehaviorModel) -> Self {
            Self {
                profile: m.profile,
                behavior: m.behavior,
                metric: m.metric,
                version: m.version,
                trained_at: m.trained_at,
                window_start: m.window_start,
                window_end: m.window_end,
                datapoints: m.datapoints,
                excluded_datapoints: m.excluded_datapoints,
                transform: m.transform,
                targets: m.targets,
                drift_lambda: m.drift_lambda,
                residual_clip: m.residual_clip,
                drift_fast_lambda: 0.0,
                budget: None,
                cohorts: m.cohorts,
                devices: m.devices,
                expected: crate::ml::ExpectedRates {
                    datapoint: m.expected.datapoint,
                    calibration_datapoints: m.expected.calibration_datapoints,
                    episodes_per_1000_device_days: None,
                    datapoints_per_device_day: 0.0,
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ml::{CohortModel, DeviceModel, ExpectedRates, LevelTargets, Transform};
    use proptest::prelude::*;

    fn model(devices: Vec<DeviceModel>, seasonal: Vec<f32>) -> BehaviorModel {
        BehaviorModel {
            profile: "p".into(),
            behavior: "b".into(),
            metric: "aws:all-bytes-out".into(),
            version: 3,
            trained_at: 1_000,
            window_start: 0,
            window_end: 1_000,
            datapoints: 25_000,
            excluded_datapoints: 12,
            transform: Transform::Log1p,
            targets: LevelTargets::default(),
            drift_lambda: 1.0 / 144.0,
            residual_clip: 4.0,
            drift_fast_lambda: 1.0 / 12.0,
            budget: Some(crate::ml::AlarmBudget::shared([20.0, 2.0, 0.2], 13)),
            cohorts: vec![CohortModel {
                name: "fleet".into(),
                devices: devices.len() as u32,
                location: 3.0,
                scale: 0.5,
                seasonal,
                point: [3.0, 4.0, 5.0],
                drift: [0.5, 0.7, 0.9],
                cohort_point: [4.0, 5.0, 6.0],
            }],
            devices,
            expected: ExpectedRates {
                datapoint: [1e-3, 1e-4, 1e-5],
                calibration_datapoints: 25_000,
                episodes_per_1000_device_days: Some([1.5, 0.15, 0.015]),
                datapoints_per_device_day: 288.0,
            },
        }
    }

    fn arb_device() -> impl Strategy<Value = DeviceModel> {
        (
            "[a-z0-9-]{1,20}",
            0u16..4,
            -1e6f32..1e6,
            0.0f32..1e3,
            prop::collection::vec(-10f32..10.0, 0..3),
            any::<u32>(),
        )
            .prop_map(|(thing, cohort, location, scale, seasonal, datapoints)| {
                DeviceModel {
                    thing,
                    cohort,
                    location,
                    scale,
                    seasonal,
                    datapoints,
                }
            })
    }

    proptest! {
        #[test]
        fn decode_inverts_encode(
            devices in prop::collection::vec(arb_device(), 0..20),
            seasonal in prop::collection::vec(-5f32..5.0, 0..170),
        ) {
            let m = model(devices, seasonal);
            let bytes = encode(&m).unwrap();
            prop_assert_eq!(decode(&bytes).unwrap(), m);
        }

        #[test]
        fn any_single_bit_flip_is_refused(bit in 0usize..4096) {
            let m = model(vec![DeviceModel {
                thing: "t".into(), cohort: 0, location: 1.0, scale: 1.0,
                seasonal: vec![0.5; 168], datapoints: 10,
            }], vec![0.0; 168]);
            let mut bytes = encode(&m).unwrap();
            let bit = bit % (bytes.len() * 8);
            bytes[bit / 8] ^= 1 << (bit % 8);
            prop_assert!(decode(&bytes).is_err());
        }

        #[test]
        fn every_truncation_is_refused(cut in 0usize..2000) {
            let m = model(vec![], vec![0.25; 168]);
            let bytes = encode(&m).unwrap();
            let cut = cut % bytes.len();
            let truncated = matches!(decode(&bytes[..cut]), Err(Error::Truncated { .. }));
            prop_assert!(truncated, "cut at {}", cut);
        }
    }

    #[test]
    fn header_errors_name_the_problem() {
        let bytes = encode(&model(vec![], vec![])).unwrap();
        assert!(matches!(
            decode(b"PK\x03\x04 zip file"),
            Err(Error::BadMagic)
        ));
        let mut newer = bytes.clone();
        newer[8] = 3;
        assert!(matches!(
            decode(&newer),
            Err(Error::UnsupportedVersion {
                found: 3,
                supported: 2
            })
        ));
        let mut other = bytes.clone();
        other[10] = 9;
        assert!(matches!(
            decode(&other),
            Err(Error::WrongKind { found: 9, .. })
        ));
        let mut padded = bytes.clone();
        padded.push(0);
        assert!(matches!(
            decode(&padded),
            Err(Error::TrailingBytes { extra: 1 })
        ));
        let mut flipped = bytes;
        let last = flipped.len() - 1;
        flipped[last] ^= 0x40;
        assert!(matches!(decode(&flipped), Err(Error::Checksum { .. })));
    }
}
