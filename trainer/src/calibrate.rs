//! Thresholds for a target false-positive rate: the value a held-out sample exceeds with
//! probability `p`.
//!
//! - [`upper_threshold`]: where the sample holds at least [`MIN_TAIL_POINTS`] points beyond the
//!   quantile, the empirical order statistic; beyond the data, a generalised Pareto tail fitted
//!   to the largest points (peaks over threshold, probability-weighted moments — Hosking &
//!   Wallis 1987), so that HIGH (1e-5) thresholds from 10⁵–10⁶ points are extrapolated rather
//!   than set at the sample maximum.
//! - [`gaussian_threshold`]: median + z(1 − p) × robust sigma, for statistics that are
//!   averages of many residuals (the drift mean), whose neighbours are too correlated for
//!   order statistics to reach small `p`.

use statrs::distribution::{ContinuousCDF, Normal};

/// Points beyond the quantile needed to trust the empirical order statistic.
pub const MIN_TAIL_POINTS: f64 = 25.0;

/// The nearest-rank `q`-quantile of a sorted, non-empty slice.
fn order_statistic(sorted: &[f32], q: f64) -> f32 {
    let n = sorted.len();
    let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
    sorted[rank - 1]
}

/// The empirical threshold for exceedance probability `p`, only where the sample holds at
/// least [`MIN_TAIL_POINTS`] points beyond it; None otherwise (or for an empty sample).
pub fn empirical_threshold(sorted: &[f32], p: f64) -> Option<f32> {
    let n = sorted.len() as f64;
    (n * p >= MIN_TAIL_POINTS && p < 1.0).then(|| order_statistic(sorted, 1.0 - p))
}

/// The threshold `t` such that a value of the population `sorted` (ascending, finite)
/// exceeds `t` with probability about `p`. None for an empty sample.
pub fn upper_threshold(sorted: &[f32], p: f64) -> Option<f32> {
    let n = sorted.len();
    if n == 0 || !(p > 0.0 && p < 1.0) {
        return None;
    }
    let nf = n as f64;
    if nf * p >= MIN_TAIL_POINTS {
        let q = order_statistic(sorted, 1.0 - p);
        // On small-integer metrics the quantile sits on an atom (every device's "one event"):
        // `> q` may flag far fewer than `p`, `≥ q` a few more. Take `≥ q` (a threshold just
        // below q) when that lands closer to `p` without passing 2p.
        let above = exceedance(sorted, q);
        let at_or_above = (n - sorted.partition_point(|&x| x < q)) as f64 / nf;
        let miss = |rate: f64| {
            if rate > 0.0 {
                (rate / p).ln().abs()
            } else {
                f64::INFINITY
            }
        };
        if at_or_above <= 2.0 * p && miss(at_or_above) < miss(above) {
            return Some(q.next_down());
        }
        return Some(q);
    }
    // Peaks over threshold: the top k points, k = 2 % of the sample (at least 50, at most half).
    let k = ((nf * 0.02) as usize).clamp(50.min(n / 2), n / 2);
    if k < 10 {
        return Some(sorted[n - 1]);
    }
    let u = sorted[n - k - 1];
    let excesses: Vec<f64> = sorted[n - k..]
        .iter()
        .map(|&x| f64::from(x) - f64::from(u))
        .collect();
    let top = f64::from(sorted[n - 1]);
    match gpd_pwm(&excesses) {
        Some((xi, sigma)) => {
            // P(X > u + y) = (k/n) · (1 + ξ y / σ)^(−1/ξ)
            let ratio = p * nf / k as f64;
            let y = if xi.abs() < 1e-6 {
                -sigma * ratio.ln()
            } else {
                sigma / xi * (ratio.powf(-xi) - 1.0)
            };
            let t = f64::from(u) + y;
            // Within the fitted tail, never absurdly far past the data.
            Some(t.clamp(f64::from(u), top + 50.0 * sigma.max(1e-6)) as f32)
        }
        // Ties (a discrete metric): nothing to extrapolate, the data's maximum is the edge.
        None => Some(sorted[n - 1]),
    }
}

/// Generalised Pareto shape ξ and scale σ of `excesses` (ascending, ≥ 0) by probability
/// weighted moments; None when the excesses are degenerate (mostly ties).
fn gpd_pwm(excesses: &[f64]) -> Option<(f64, f64)> {
    let k = excesses.len();
    if k < 10 {
        return None;
    }
    let zeros = excesses.iter().filter(|&&e| e <= 0.0).count();
    if zeros * 2 > k {
        return None;
    }
    let kf = k as f64;
    let a0 = excesses.iter().sum::<f64>() / kf;
    let a1 = excesses
        .iter()
        .enumerate()
        .map(|(i, &e)| (1.0 - (i as f64 + 0.65) / kf) * e)
        .sum::<f64>()
        / kf;
    let denom = a0 - 2.0 * a1;
    if !(denom > 0.0 && a0 > 0.0) {
        return None;
    }
    // Hosking's shape k = a0/(a0 − 2a1) − 2; ξ = −k.
    let xi = (2.0 - a0 / denom).clamp(-0.5, 0.9);
    let sigma = 2.0 * a0 * a1 / denom;
    (sigma > 0.0 && sigma.is_finite()).then_some((xi, sigma))
}

/// The threshold a roughly Gaussian statistic exceeds with probability `p`: the median plus
/// z(1 − p) robust standard deviations (the larger of 1.4826 × MAD and 1.2533 × the mean
/// absolute deviation, so that a point mass at the median does not collapse it). None for an
/// empty sample.
pub fn gaussian_threshold(sorted: &[f32], p: f64) -> Option<f32> {
    if sorted.is_empty() || !(p > 0.0 && p < 1.0) {
        return None;
    }
    let median = order_statistic(sorted, 0.5);
    let mut dev: Vec<f32> = sorted.iter().map(|&x| (x - median).abs()).collect();
    let mean_ad = dev.iter().map(|&d| f64::from(d)).sum::<f64>() / dev.len() as f64;
    dev.sort_unstable_by(f32::total_cmp);
    let sigma = (1.4826 * f64::from(order_statistic(&dev, 0.5))).max(1.2533 * mean_ad);
    let z = Normal::standard().inverse_cdf(1.0 - p);
    Some((f64::from(median) + z * sigma.max(1e-4)) as f32)
}

/// The share of `sorted` strictly above `t`.
pub fn exceedance(sorted: &[f32], t: f32) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let above = sorted.len() - sorted.partition_point(|&x| x <= t);
    above as f64 / sorted.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use statrs::distribution::Exp;

    /// Exact quantiles of an Exp(1) sample: x_i = −ln(1 − (i + 0.5)/n).
    fn exponential(n: usize) -> Vec<f32> {
        let e = Exp::new(1.0).unwrap();
        (0..n)
            .map(|i| e.inverse_cdf((i as f64 + 0.5) / n as f64) as f32)
            .collect()
    }

    #[test]
    fn empirical_where_the_data_reaches() {
        let s = exponential(100_000);
        let t = upper_threshold(&s, 1e-3).unwrap();
        // −ln(1e-3) = 6.9078
        assert!((t - 6.9078).abs() < 0.01, "{t}");
        assert!((exceedance(&s, t) - 1e-3).abs() < 1e-4);
    }

    #[test]
    fn pareto_tail_beyond_the_data() {
        let s = exponential(100_000);
        // 1e-6 is ten times beyond the sample's own resolution: −ln(1e-6) = 13.8155.
        let t = upper_threshold(&s, 1e-6).unwrap();
        assert!((t - 13.8155).abs() < 0.7, "{t}");
        assert!(t > s[s.len() - 1], "extrapolates past the maximum");
    }

    #[test]
    fn an_atom_at_the_quantile_is_included_when_that_is_closer_to_the_target() {
        // 99.85 % zeros, 0.15 % ones: `> 1` flags nothing, `≥ 1` flags 1.5e-3 (target 1e-3).
        let mut s = vec![0.0f32; 100_000];
        for x in s.iter_mut().skip(99_850) {
            *x = 1.0;
        }
        let t = upper_threshold(&s, 1e-3).unwrap();
        assert!(t < 1.0 && t > 0.0, "{t}");
        assert!((exceedance(&s, t) - 1.5e-3).abs() < 1e-9);
        // 0.5 % ones: `≥ 1` would flag 5× the target, so the ones stay normal.
        for x in s.iter_mut().skip(99_500) {
            *x = 1.0;
        }
        assert_eq!(upper_threshold(&s, 1e-3), Some(1.0));
    }

    #[test]
    fn discrete_ties_fall_back_to_the_maximum() {
        let mut s = vec![0.0f32; 100_000];
        s[99_999] = 3.0;
        assert_eq!(upper_threshold(&s, 1e-6), Some(3.0));
        assert_eq!(upper_threshold(&s, 1e-3), Some(0.0));
        assert_eq!(upper_threshold(&[], 1e-3), None);
    }

    #[test]
    fn gaussian_tail_of_a_normal_sample() {
        let n = Normal::new(1.0, 2.0).unwrap();
        let s: Vec<f32> = (0..10_000)
            .map(|i| n.inverse_cdf((f64::from(i) + 0.5) / 10_000.0) as f32)
            .collect();
        let t = gaussian_threshold(&s, 1e-5).unwrap();
        // 1 + 2 × 4.2649
        assert!((t - 9.53).abs() < 0.1, "{t}");
    }
}
