//! `durationSeconds`: the sliding-window sum of a cumulative metric.
//!
//! For a cumulative metric ([`thingward_models::Metric::is_cumulative`], the counters such as
//! `aws:num-messages-sent` or `aws:all-bytes-out`) with `durationSeconds = d`, the value a
//! behavior evaluates at a datapoint with timestamp `t` is the sum of that thing's datapoints
//! (the ones the behavior sees, i.e. after its dimension) with timestamps in `(t − d, t]`.
//! Other metrics evaluate the datapoint's own value.
//!
//! Memory is bounded: a [`Window`] keeps at most [`MAX_SAMPLES`] timestamped samples. When a
//! thing reports faster than `d / MAX_SAMPLES`, the two oldest samples are coalesced into one at
//! the later timestamp, so the sum stays exact for the total and only the moment the oldest
//! counts leave the window is delayed (it errs towards alarming, never towards missing counts).
//! Samples older than the newest timestamp minus `d` are dropped.
//!
//! Out-of-order datapoints are inserted in timestamp order and evaluated over their own window
//! `(t − d, t]`, counting the samples still held; a datapoint older than the window of the newest
//! one contributes to its own verdict and is then dropped. Non-finite values are not stored.

use std::collections::VecDeque;
use thingward_models::time::EpochMillis;

/// The most samples one window holds.
pub const MAX_SAMPLES: usize = 64;

/// The recent samples of one (thing, behavior).
#[derive(Debug, Clone, Default)]
pub struct Window {
    samples: VecDeque<(EpochMillis, f64)>,
}

impl Window {
    /// An empty window.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `x` measured at `t` and returns the sum over `(t − duration_ms, t]`.
    ///
    /// A non-finite `x` is returned as is and not stored.
    pub fn push(&mut self, t: EpochMillis, x: f64, duration_ms: i64) -> f64 {
        if !x.is_finite() {
            return x;
        }
        let at = self.samples.partition_point(|s| s.0 <= t);
        self.samples.insert(at, (t, x));
        if self.samples.len() > MAX_SAMPLES
            && let Some((_, oldest)) = self.samples.pop_front()
            && let Some(next) = self.samples.front_mut()
        {
            next.1 += oldest;
        }
        // i128 so that `t − d` cannot overflow at the extremes.
        let start = i128::from(t) - i128::from(duration_ms);
        let sum = self
            .samples
            .iter()
            .filter(|s| i128::from(s.0) > start && s.0 <= t)
            .map(|s| s.1)
            .sum();
        if let Some(&(newest, _)) = self.samples.back() {
            let horizon = i128::from(newest) - i128::from(duration_ms);
            while self
                .samples
                .front()
                .is_some_and(|s| i128::from(s.0) <= horizon)
            {
                self.samples.pop_front();
            }
        }
        sum
    }

    /// How many samples the window holds.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Whether the window holds no sample.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: i64 = 300_000;

    #[test]
    fn sums_over_the_half_open_window() {
        let mut w = Window::new();
        assert_eq!(w.push(0, 1.0, D), 1.0);
        assert_eq!(w.push(100_000, 2.0, D), 3.0);
        assert_eq!(w.push(200_000, 4.0, D), 7.0);
        // (0, 300000]: the sample at 0 has left.
        assert_eq!(w.push(300_000, 8.0, D), 14.0);
        assert_eq!(w.push(599_999, 16.0, D), 24.0);
        assert_eq!(w.push(900_000, 32.0, D), 32.0);
        assert_eq!(w.len(), 1);
    }

    #[test]
    fn equal_timestamps_both_count() {
        let mut w = Window::new();
        w.push(10, 1.0, D);
        assert_eq!(w.push(10, 1.0, D), 2.0);
    }

    #[test]
    fn out_of_order_samples_are_evaluated_over_their_own_window() {
        let mut w = Window::new();
        w.push(200_000, 1.0, D);
        w.push(400_000, 2.0, D);
        // At 150000 the window is (-150000, 150000]: nothing else held falls in it.
        assert_eq!(w.push(150_000, 4.0, D), 4.0);
        // At 450000: (150000, 450000] holds 200000 and 400000, not 150000.
        assert_eq!(w.push(450_000, 8.0, D), 11.0);
        // Far in the past: counted for itself, then dropped.
        assert_eq!(w.push(-10_000_000, 100.0, D), 100.0);
        assert!(w.len() <= 3);
    }

    #[test]
    fn memory_is_bounded_and_totals_kept() {
        let mut w = Window::new();
        let mut last = 0.0;
        for i in 0..1000 {
            last = w.push(i, 1.0, D);
        }
        assert_eq!(w.len(), MAX_SAMPLES);
        assert_eq!(last, 1000.0, "coalescing keeps the counts");
    }

    #[test]
    fn non_finite_values_are_not_stored() {
        let mut w = Window::new();
        w.push(0, 1.0, D);
        assert!(w.push(1, f64::NAN, D).is_nan());
        assert_eq!(w.push(2, f64::INFINITY, D), f64::INFINITY);
        assert_eq!(w.push(3, 1.0, D), 2.0);
        assert_eq!(w.push(i64::MIN, 1.0, D), 1.0, "no overflow at the extremes");
        assert_eq!(
            w.push(i64::MAX, 1.0, i64::MAX),
            2.0,
            "(0, MAX] holds 3 and MAX"
        );
    }
}
