//! A fast hasher for the scorer's internal integer keys (interned thing and behavior ids).
//!
//! The ids are assigned by the scorer, not chosen by devices, so a multiply-rotate hash (the
//! rustc "Fx" scheme) is safe here and several times cheaper than SipHash. Maps keyed by
//! anything a device controls (thing names) keep std's randomly seeded SipHash.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Maps keyed by scorer-assigned ids.
pub(crate) type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

/// The multiply-rotate hasher behind [`IdMap`].
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct IdHasher {
    hash: u64,
}

impl IdHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for IdHasher {
    #[inline]
    fn finish(&self) -> u64 {
        // hashbrown takes its control bits from the top 7 bits; fold the high half down so
        // sequential ids spread over both.
        self.hash ^ (self.hash >> 29)
    }

    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
    }

    #[inline]
    fn write_u32(&mut self, n: u32) {
        self.add(u64::from(n));
    }

    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }
}

/// Packs a (thing id, behavior id) pair into one map key.
#[inline]
pub(crate) fn pair_key(thing: u32, behavior: u32) -> u64 {
    (u64::from(thing) << 32) | u64::from(behavior)
}

/// The thing id of a packed pair key.
#[inline]
pub(crate) fn key_thing(key: u64) -> u32 {
    (key >> 32) as u32
}

/// The behavior id of a packed pair key.
#[inline]
pub(crate) fn key_behavior(key: u64) -> u32 {
    key as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pair_keys_round_trip() {
        let k = pair_key(7, u32::MAX);
        assert_eq!((key_thing(k), key_behavior(k)), (7, u32::MAX));
    }

    #[test]
    fn sequential_ids_spread() {
        let hashes: std::collections::HashSet<u64> = (0u64..1000)
            .map(|i| {
                let mut h = IdHasher::default();
                h.write_u64(i);
                h.finish() >> 57
            })
            .collect();
        assert!(hashes.len() > 64, "top bits vary: {}", hashes.len());
    }
}
