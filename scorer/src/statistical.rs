//! `statisticalThreshold`: comparing a device with a percentile of its peers.
//!
//! For each (profile, behavior) with a statistical threshold the scorer keeps a pool: every
//! device's latest evaluated value (its `durationSeconds` window sum for cumulative metrics,
//! its own value otherwise). The threshold is the behavior's statistic taken over the pool by
//! the **nearest-rank** method ([`nearest_rank`]: the value at rank `⌈q·n⌉`, 1-based, of the
//! sorted values; p0 is the minimum and p100 the maximum). The device's value is then compared
//! with the threshold by the behavior's operator, like a static value.
//!
//! - **Minimum pool.** No verdict (the datapoint is skipped, the alarm state untouched) until
//!   at least [`MIN_DEVICES`] devices have contributed a value.
//! - **Lazy recomputation.** A percentile costs O(n) (a selection, not a sort). While the pool
//!   is small (fewer than [`SMALL_POOL`] devices) it is recomputed for every datapoint, so
//!   small fleets and tests see exact thresholds. Beyond that it is recomputed at most once
//!   per [`RECOMPUTE_INTERVAL_MS`] of *datapoint* time (deterministic, unlike wall-clock
//!   time), or as soon as the pool has grown by a quarter since the last computation (so a
//!   fleet coming online converges quickly while the total cost stays amortised O(1) per
//!   datapoint). Between recomputations the cached threshold is used.
//! - The device's own new value enters the pool before the threshold is (re)computed.
//! - Devices leave the pool when their state is dropped (silence, leaving the profile's
//!   targets, the behavior being removed). Non-finite values never enter it.

use crate::hash::IdMap;
use thingward_models::time::EpochMillis;

/// The fewest contributing devices for a statistical verdict.
pub const MIN_DEVICES: usize = 3;
/// Below this many devices the threshold is recomputed for every datapoint.
pub const SMALL_POOL: usize = 1024;
/// Above [`SMALL_POOL`], the longest a threshold is reused, in datapoint time.
pub const RECOMPUTE_INTERVAL_MS: i64 = 60_000;

/// The nearest-rank percentile of `values` for quantile `q` in [0, 1]; None when `values` is
/// empty. Reorders `values` (it selects in place, O(n)).
pub fn nearest_rank(values: &mut [f64], q: f64) -> Option<f64> {
    let n = values.len();
    if n == 0 {
        return None;
    }
    // The epsilon keeps e.g. 0.9 × 10 at rank 9 despite binary rounding.
    let rank = (q.clamp(0.0, 1.0) * n as f64 - 1e-9).ceil().max(1.0) as usize;
    let index = rank.min(n) - 1;
    let (_, nth, _) = values.select_nth_unstable_by(index, f64::total_cmp);
    Some(*nth)
}

/// The devices' latest values for one statistical behavior, and the cached threshold.
#[derive(Debug, Clone, Default)]
pub(crate) struct Pool {
    values: Vec<f64>,
    owners: Vec<u32>,
    slots: IdMap<u32, u32>,
    threshold: Option<f64>,
    computed_at: EpochMillis,
    computed_len: usize,
    scratch: Vec<f64>,
}

impl Pool {
    /// Records `x` as the latest value of `thing` at `at` and returns the threshold to compare
    /// it with, or None while fewer than [`MIN_DEVICES`] devices contributed.
    pub(crate) fn update(&mut self, thing: u32, x: f64, at: EpochMillis, q: f64) -> Option<f64> {
        if x.is_finite() {
            match self.slots.get(&thing) {
                Some(&slot) => self.values[slot as usize] = x,
                None => {
                    self.slots.insert(thing, self.values.len() as u32);
                    self.values.push(x);
                    self.owners.push(thing);
                }
            }
        }
        let n = self.values.len();
        if n < MIN_DEVICES {
            return None;
        }
        let stale = self.threshold.is_none()
            || n < SMALL_POOL
            || at.abs_diff(self.computed_at) >= RECOMPUTE_INTERVAL_MS.unsigned_abs()
            || n >= self.computed_len + self.computed_len / 4;
        if stale {
            self.scratch.clear();
            self.scratch.extend_from_slice(&self.values);
            self.threshold = nearest_rank(&mut self.scratch, q);
            self.computed_at = at;
            self.computed_len = n;
        }
        self.threshold
    }

    /// Drops `thing`'s value.
    pub(crate) fn remove(&mut self, thing: u32) {
        let Some(slot) = self.slots.remove(&thing) else {
            return;
        };
        let slot = slot as usize;
        self.values.swap_remove(slot);
        self.owners.swap_remove(slot);
        if let Some(&moved) = self.owners.get(slot) {
            self.slots.insert(moved, slot as u32);
        }
        // Force a recomputation: the pool changed under the cached threshold.
        self.threshold = None;
    }

    /// How many devices contributed.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.values.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let base: Vec<f64> = (1..=10).map(f64::from).collect();
        for (q, want) in [
            (0.0, 1.0),
            (0.1, 1.0),
            (0.5, 5.0),
            (0.9, 9.0),
            (0.99, 10.0),
            (1.0, 10.0),
            (0.0001, 1.0),
        ] {
            let mut v = base.clone();
            v.reverse();
            assert_eq!(nearest_rank(&mut v, q), Some(want), "q={q}");
        }
        assert_eq!(nearest_rank(&mut [], 0.5), None);
        assert_eq!(nearest_rank(&mut [3.0], 0.9), Some(3.0));
        // 100 values: p99 is the 99th.
        let mut v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(nearest_rank(&mut v, 0.99), Some(99.0));
    }

    #[test]
    fn no_threshold_below_three_devices() {
        let mut p = Pool::default();
        assert_eq!(p.update(1, 5.0, 0, 0.5), None);
        assert_eq!(
            p.update(1, 6.0, 0, 0.5),
            None,
            "same device twice is one device"
        );
        assert_eq!(p.update(2, 7.0, 0, 0.5), None);
        assert_eq!(p.update(3, 8.0, 0, 0.5), Some(7.0));
        p.remove(2);
        assert_eq!(p.len(), 2);
        assert_eq!(p.update(3, 8.0, 0, 0.5), None);
        assert_eq!(p.update(4, 1.0, 0, 0.5), Some(6.0));
        assert_eq!(
            p.update(5, f64::NAN, 0, 0.5),
            Some(6.0),
            "NaN does not enter"
        );
    }

    #[test]
    fn large_pools_recompute_lazily() {
        let mut p = Pool::default();
        for id in 0..2000u32 {
            p.update(id, f64::from(id), 0, 1.0);
        }
        assert_eq!(p.update(0, 0.0, 60_000, 1.0), Some(1999.0));
        // A new maximum within the interval keeps the cached threshold…
        assert_eq!(p.update(1, 5000.0, 61_000, 1.0), Some(1999.0));
        // …until a minute of datapoint time has passed.
        assert_eq!(p.update(2, 2.0, 120_000, 1.0), Some(5000.0));
        // Growth by a quarter recomputes at once.
        for id in 2000..2600u32 {
            p.update(id, 10_000.0, 120_001, 1.0);
        }
        assert_eq!(p.update(3, 3.0, 120_002, 1.0), Some(10_000.0));
    }
}
