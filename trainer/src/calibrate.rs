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

/// The share of the sample the generalised Pareto tail is fitted to (at least 50 points):
/// 0.5 %. Budgets in device-days put thresholds 10–100× beyond the data; pooled devices'
/// residuals mix several tails, and the top 0.5 % describes the far one better than the top
/// 2 % (measured: at 2 % with a free shape the fit bends down and MEDIUM raised 2.6× its
/// budget on the default scenario).
pub const TAIL_SHARE: f64 = 0.005;

/// A sample reduced to what tail thresholds need, in O(n): its size, its largest values in
/// ascending order (the top [`Tail::TOP_SHARE`], at least [`Tail::MIN_TOP`]), its median and
/// a robust sigma. Thresholds for targets ≤ 1e-2 only ever read the top, so the millions of
/// pooled residuals of a fleet are never fully sorted.
#[derive(Debug, Clone, PartialEq)]
pub struct Tail {
    n: usize,
    top: Vec<f32>,
    median: f32,
    sigma: f64,
}

impl Tail {
    /// The share of the sample kept sorted.
    pub const TOP_SHARE: f64 = 0.03;
    /// Kept sorted at least (the whole sample when smaller).
    pub const MIN_TOP: usize = 2_000;

    /// Reduces `v` (finite values; NaNs sort last).
    pub fn new(mut v: Vec<f32>) -> Self {
        let n = v.len();
        if n == 0 {
            return Self {
                n,
                top: Vec::new(),
                median: 0.0,
                sigma: 0.0,
            };
        }
        let k = ((n as f64 * Self::TOP_SHARE).ceil() as usize)
            .max(Self::MIN_TOP)
            .min(n);
        let (_, &mut median, _) = v.select_nth_unstable_by(n / 2, f32::total_cmp);
        let mut top = if k == n {
            v.clone()
        } else {
            let (_, _, above) = v.select_nth_unstable_by(n - k, f32::total_cmp);
            let mut t = Vec::with_capacity(k);
            t.extend_from_slice(above);
            t
        };
        if k < n {
            // The pivot itself is the k-th largest.
            top.push(v[n - k]);
        }
        top.sort_unstable_by(f32::total_cmp);
        top.drain(..top.len() - k);
        let mut sum = 0.0f64;
        for x in v.iter_mut() {
            *x = (*x - median).abs();
            sum += f64::from(*x);
        }
        let (_, &mut mad, _) = v.select_nth_unstable_by(n / 2, f32::total_cmp);
        let sigma = (1.4826 * f64::from(mad)).max(1.2533 * sum / n as f64);
        Self {
            n,
            top,
            median,
            sigma,
        }
    }

    /// The sample size.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Whether the sample is empty.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Whether exceedance probability `p` is within the data: the sample holds at least
    /// [`MIN_TAIL_POINTS`] points beyond it, so its order statistics estimate it directly.
    pub fn within_data(&self, p: f64) -> bool {
        p * self.n as f64 >= MIN_TAIL_POINTS
    }

    /// The value of ascending rank `rank` (1-based); ranks below the kept top read its lowest.
    fn rank(&self, rank: usize) -> f32 {
        let below = self.n - self.top.len();
        self.top[rank.saturating_sub(below + 1).min(self.top.len() - 1)]
    }

    /// The nearest-rank `q`-quantile.
    fn order_statistic(&self, q: f64) -> f32 {
        let rank = ((q * self.n as f64).ceil() as usize).clamp(1, self.n);
        self.rank(rank)
    }

    fn max(&self) -> f32 {
        self.top[self.top.len() - 1]
    }

    /// How many values are ≥ `t` (exact while `t` is within the kept top).
    fn at_or_above(&self, t: f32) -> usize {
        self.top.len() - self.top.partition_point(|&x| x < t)
    }
}

/// The empirical threshold for exceedance probability `p`, only where the sample holds at
/// least [`MIN_TAIL_POINTS`] points beyond it; None otherwise (or for an empty sample).
pub fn empirical_threshold(tail: &Tail, p: f64) -> Option<f32> {
    (tail.within_data(p) && p < 1.0).then(|| tail.order_statistic(1.0 - p))
}

/// The threshold `t` such that a value of the sample's population exceeds `t` with
/// probability about `p`. None for an empty sample.
pub fn upper_threshold(tail: &Tail, p: f64) -> Option<f32> {
    let n = tail.n;
    if n == 0 || !(p > 0.0 && p < 1.0) {
        return None;
    }
    let nf = n as f64;
    if tail.within_data(p) {
        let q = tail.order_statistic(1.0 - p);
        // On small-integer metrics the quantile sits on an atom (every device's "one event"):
        // `> q` may flag far fewer than `p`, `≥ q` a few more. Take `≥ q` (a threshold just
        // below q) when that lands closer to `p` without passing 2p.
        let above = exceedance(tail, q);
        let at_or_above = tail.at_or_above(q) as f64 / nf;
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
    // Peaks over threshold: the top k points, k = TAIL_SHARE of the sample (at least 50, at most half).
    let k = ((nf * TAIL_SHARE) as usize).clamp(50.min(n / 2), n / 2);
    if k < 10 {
        return Some(tail.max());
    }
    let u = tail.rank(n - k);
    let excesses: Vec<f64> = (n - k + 1..=n)
        .map(|r| f64::from(tail.rank(r)) - f64::from(u))
        .collect();
    let top = f64::from(tail.max());
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
        None => Some(tail.max()),
    }
}

/// The probability that a value of the sample's population exceeds `t`: the share of the
/// sample above it where at least [`MIN_TAIL_POINTS`] lie beyond, else the generalised Pareto
/// tail [`upper_threshold`] extrapolates with (the inverse of that function, so a threshold
/// set for `p` reads back about `p`). 0 for an empty sample.
pub fn tail_probability(tail: &Tail, t: f32) -> f64 {
    let n = tail.n;
    if n == 0 {
        return 0.0;
    }
    let nf = n as f64;
    let empirical = exceedance(tail, t);
    if tail.within_data(empirical) {
        return empirical;
    }
    let k = ((nf * TAIL_SHARE) as usize).clamp(50.min(n / 2), n / 2);
    if k < 10 {
        return empirical;
    }
    let u = tail.rank(n - k);
    if t <= u {
        return empirical;
    }
    let excesses: Vec<f64> = (n - k + 1..=n)
        .map(|r| f64::from(tail.rank(r)) - f64::from(u))
        .collect();
    match gpd_pwm(&excesses) {
        Some((xi, sigma)) => {
            let y = f64::from(t) - f64::from(u);
            let base = k as f64 / nf;
            if xi.abs() < 1e-6 {
                base * (-y / sigma).exp()
            } else {
                let z = 1.0 + xi * y / sigma;
                if z <= 0.0 {
                    0.0
                } else {
                    base * z.powf(-1.0 / xi)
                }
            }
        }
        None => empirical,
    }
}

/// The probability a roughly Gaussian statistic exceeds `t` ([`gaussian_threshold`]'s
/// inverse), or the sample's own share above `t` where that is larger and well estimated.
pub fn gaussian_probability(tail: &Tail, t: f32) -> f64 {
    if tail.n == 0 {
        return 0.0;
    }
    let z = (f64::from(t) - f64::from(tail.median)) / tail.sigma.max(1e-4);
    let g = 1.0 - Normal::standard().cdf(z);
    let e = exceedance(tail, t);
    if tail.within_data(e) { g.max(e) } else { g }
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
pub fn gaussian_threshold(tail: &Tail, p: f64) -> Option<f32> {
    if tail.n == 0 || !(p > 0.0 && p < 1.0) {
        return None;
    }
    let z = Normal::standard().inverse_cdf(1.0 - p);
    Some((f64::from(tail.median) + z * tail.sigma.max(1e-4)) as f32)
}

/// The share of the sample strictly above `t` (exact while `t` is within the kept top).
pub fn exceedance(tail: &Tail, t: f32) -> f64 {
    if tail.n == 0 {
        return 0.0;
    }
    let above = tail.top.len() - tail.top.partition_point(|&x| x <= t);
    above as f64 / tail.n as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use statrs::distribution::Exp;

    /// Exact quantiles of an Exp(1) sample: x_i = −ln(1 − (i + 0.5)/n).
    fn exponential(n: usize) -> Tail {
        Tail::new(exponential_values(n))
    }

    fn exponential_values(n: usize) -> Vec<f32> {
        let e = Exp::new(1.0).unwrap();
        (0..n)
            .map(|i| e.inverse_cdf((i as f64 + 0.5) / n as f64) as f32)
            .collect()
    }

    #[test]
    fn the_tail_matches_a_full_sort() {
        // Shuffled deterministically: reversed halves interleaved.
        let mut v = exponential_values(50_000);
        v.reverse();
        let (a, b) = v.split_at(25_000);
        let mixed: Vec<f32> = a.iter().zip(b).flat_map(|(x, y)| [*x, *y]).collect();
        let tail = Tail::new(mixed);
        let sorted = exponential_values(50_000);
        assert_eq!(tail.len(), 50_000);
        for q in [0.97, 0.99, 0.999, 0.99998] {
            let rank = ((q * 50_000.0_f64).ceil() as usize).clamp(1, 50_000);
            assert_eq!(tail.order_statistic(q), sorted[rank - 1], "q = {q}");
        }
        assert_eq!(tail.max(), sorted[49_999]);
        assert_eq!(tail.median, sorted[25_000]);
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
        assert!(t > s.max(), "extrapolates past the maximum");
    }

    #[test]
    fn an_atom_at_the_quantile_is_included_when_that_is_closer_to_the_target() {
        // 99.85 % zeros, 0.15 % ones: `> 1` flags nothing, `≥ 1` flags 1.5e-3 (target 1e-3).
        let mut v = vec![0.0f32; 100_000];
        for x in v.iter_mut().skip(99_850) {
            *x = 1.0;
        }
        let s = Tail::new(v.clone());
        let t = upper_threshold(&s, 1e-3).unwrap();
        assert!(t < 1.0 && t > 0.0, "{t}");
        assert!((exceedance(&s, t) - 1.5e-3).abs() < 1e-9);
        // 0.5 % ones: `≥ 1` would flag 5× the target, so the ones stay normal.
        for x in v.iter_mut().skip(99_500) {
            *x = 1.0;
        }
        assert_eq!(upper_threshold(&Tail::new(v), 1e-3), Some(1.0));
    }

    #[test]
    fn discrete_ties_fall_back_to_the_maximum() {
        let mut v = vec![0.0f32; 100_000];
        v[99_999] = 3.0;
        let s = Tail::new(v);
        assert_eq!(upper_threshold(&s, 1e-6), Some(3.0));
        assert_eq!(upper_threshold(&s, 1e-3), Some(0.0));
        assert_eq!(upper_threshold(&Tail::new(Vec::new()), 1e-3), None);
    }

    #[test]
    fn tail_probability_inverts_the_threshold() {
        let s = exponential(100_000);
        for p in [1e-3, 1e-5, 1e-7] {
            let t = upper_threshold(&s, p).unwrap();
            let back = tail_probability(&s, t);
            assert!(
                (back / p).ln().abs() < 0.05,
                "p {p}: threshold {t} reads back {back}"
            );
        }
        let n = Normal::new(0.0, 1.0).unwrap();
        let g: Vec<f32> = (0..10_000)
            .map(|i| n.inverse_cdf((f64::from(i) + 0.5) / 10_000.0) as f32)
            .collect();
        let g = Tail::new(g);
        let t = gaussian_threshold(&g, 1e-6).unwrap();
        assert!((gaussian_probability(&g, t) / 1e-6 - 1.0).abs() < 0.1);
    }

    #[test]
    fn gaussian_tail_of_a_normal_sample() {
        let n = Normal::new(1.0, 2.0).unwrap();
        let s: Vec<f32> = (0..10_000)
            .map(|i| n.inverse_cdf((f64::from(i) + 0.5) / 10_000.0) as f32)
            .collect();
        let t = gaussian_threshold(&Tail::new(s), 1e-5).unwrap();
        // 1 + 2 × 4.2649
        assert!((t - 9.53).abs() < 0.1, "{t}");
    }
}
