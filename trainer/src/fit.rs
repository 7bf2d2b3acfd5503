//! Fitting one (profile, behavior) model from its training window.
//!
//! For each device, in the transformed space `y = ln(1 + x)`:
//! 1. **location**: the median of `y`;
//! 2. **seasonal offsets**: an hour-of-day profile (median of `y − location` per UTC hour,
//!    168 points each over 14 days) plus an hour-of-week correction (median of what is left per
//!    hour of the week, 24 points each), both shrunk toward zero by `n / (n + κ)`; device-local
//!    time zones need no modelling because every device has its own profile;
//! 3. **scale**: 1.4826 × the MAD of the residuals, floored.
//!
//! Devices are clustered into cohorts of similar behaviour (linfa k-means on standardised
//! location, log scale and daily amplitude), so that gateways and sensors each get their own
//! tail thresholds and a device with little history is shrunk toward devices like it.
//!
//! **Calibration** uses held-out data: the window's days are split by parity (each half holds
//! one of every weekday), a baseline is fitted on each half and the other half's residuals are
//! pooled per cohort. The point thresholds are the residual quantiles at each level's target
//! (× `1 − drift_share`), the drift thresholds Gaussian tails of the residuals' exponentially
//! weighted mean (× `drift_share`), so the two tests together meet the target. What the
//! held-out data shows at those thresholds is recorded as [`ExpectedRates`].

use crate::calibrate::{
    MIN_TAIL_POINTS, Tail, empirical_threshold, exceedance, gaussian_probability,
    gaussian_threshold, tail_probability, upper_threshold,
};
use crate::{Error, TrainingData};
use linfa::prelude::*;
use linfa_clustering::KMeans;
use ndarray::Array2;
use thingward_models::ml::{
    AlarmBudget, BehaviorModel, CohortModel, DeviceModel, Drift, ExpectedRates, LevelTargets,
    Transform, WEEK_BUCKETS, hour_of_week,
};
use thingward_models::time::EpochMillis;

const DAY_MS: i64 = 86_400_000;
/// Smallest point thresholds (residual-scale units) per level: a constant metric (listening
/// ports) has held-out residuals of exactly zero, whose quantiles would flag float noise.
const POINT_FLOOR: [f32; 3] = [1.5, 2.0, 2.5];
/// Smallest drift thresholds (residual-scale units) per level: sustained shifts below these
/// are within what 14 days of baseline can resolve.
const DRIFT_FLOOR: [f32; 3] = [0.25, 0.35, 0.5];
/// Devices with fewer training datapoints are judged against their cohort.
const MIN_DEVICE_DATAPOINTS: usize = 24;

/// Unchecked fit parameters (see [`FitParams::check`]).
#[derive(Debug, Clone, PartialEq)]
pub struct FitParams {
    /// The false-alarm budget per level in alarm episodes per 1,000 device-days: the whole
    /// profile's, and this behavior's share of it ([`AlarmBudget::shared`]).
    pub budget: AlarmBudget,
    /// κ of the location and scale shrinkage toward the cohort, in datapoints.
    pub shrinkage: f64,
    /// κ of the seasonal offsets' shrinkage toward zero, in datapoints per bucket.
    pub seasonal_shrinkage: f64,
    /// Smallest residual scale (transformed units).
    pub min_scale: f64,
    /// Most cohorts.
    pub max_cohorts: usize,
    /// Fewest devices per cohort (fewer devices, fewer cohorts).
    pub min_cohort_devices: usize,
    /// Smoothing of the drift mean per datapoint (1/144: a half-day memory at 5 minutes).
    pub drift_lambda: f64,
    /// Smoothing of the drift test's fast mean (1/12: an hour at 5 minutes); the drift test
    /// needs both means high. 0 turns the fast mean off.
    pub drift_fast_lambda: f64,
    /// Residual clip before the drift mean.
    pub residual_clip: f64,
    /// Share of each level's target given to the drift test.
    pub drift_share: f64,
}

impl Default for FitParams {
    fn default() -> Self {
        Self {
            budget: AlarmBudget::shared(AlarmBudget::DEFAULT_PROFILE, 1),
            shrinkage: 30.0,
            seasonal_shrinkage: 4.0,
            min_scale: 0.05,
            max_cohorts: 4,
            min_cohort_devices: 15,
            drift_lambda: 1.0 / 144.0,
            drift_fast_lambda: 1.0 / 12.0,
            residual_clip: 4.0,
            drift_share: 0.1,
        }
    }
}

/// Why fit parameters were refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FitParamsError {
    /// Budgets must be positive and not increase from LOW to HIGH.
    #[error(
        "alarm budgets must be positive and must not increase from LOW to HIGH, got {0:?} episodes per 1,000 device-days"
    )]
    Budget([f64; 3]),
    /// A parameter is out of its range.
    #[error("{name} must be in {range}, got {value}")]
    OutOfRange {
        /// The parameter.
        name: &'static str,
        /// Its range.
        range: &'static str,
        /// The value given.
        value: f64,
    },
}

/// Checked fit parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct FitValidParams(FitParams);

impl FitValidParams {
    /// The parameters.
    pub fn params(&self) -> &FitParams {
        &self.0
    }
}

impl FitParams {
    /// Checks the parameters.
    ///
    /// # Errors
    /// [`FitParamsError`] naming the first bad parameter.
    pub fn check(self) -> Result<FitValidParams, FitParamsError> {
        let b = self.budget.behavior;
        if !(b.iter().all(|&a| a.is_finite() && a > 0.0 && a <= 1e6)
            && b[0] >= b[1]
            && b[1] >= b[2])
        {
            return Err(FitParamsError::Budget(b));
        }
        let ranges: [(&'static str, &'static str, f64, bool); 8] = [
            (
                "drift_fast_lambda",
                "0 or [drift_lambda, 1]",
                self.drift_fast_lambda,
                self.drift_fast_lambda == 0.0
                    || (self.drift_fast_lambda >= self.drift_lambda
                        && self.drift_fast_lambda <= 1.0),
            ),
            (
                "shrinkage",
                "[0, 1e6]",
                self.shrinkage,
                (0.0..=1e6).contains(&self.shrinkage),
            ),
            (
                "seasonal_shrinkage",
                "[0, 1e6]",
                self.seasonal_shrinkage,
                (0.0..=1e6).contains(&self.seasonal_shrinkage),
            ),
            (
                "min_scale",
                "(0, 10]",
                self.min_scale,
                self.min_scale > 0.0 && self.min_scale <= 10.0,
            ),
            (
                "max_cohorts",
                "[1, 64]",
                self.max_cohorts as f64,
                (1..=64).contains(&self.max_cohorts),
            ),
            (
                "drift_lambda",
                "(0, 1]",
                self.drift_lambda,
                self.drift_lambda > 0.0 && self.drift_lambda <= 1.0,
            ),
            (
                "residual_clip",
                "(0, 100]",
                self.residual_clip,
                self.residual_clip > 0.0 && self.residual_clip <= 100.0,
            ),
            (
                "drift_share",
                "[0, 0.9]",
                self.drift_share,
                (0.0..=0.9).contains(&self.drift_share),
            ),
        ];
        for (name, range, value, ok) in ranges {
            if !ok {
                return Err(FitParamsError::OutOfRange { name, range, value });
            }
        }
        Ok(FitValidParams(self))
    }
}

/// Which model is being built.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelIdentity {
    /// The profile.
    pub profile: String,
    /// The behavior.
    pub behavior: String,
    /// The metric's wire name.
    pub metric: String,
    /// The version to give the model.
    pub version: u64,
    /// When it is trained.
    pub trained_at: EpochMillis,
}

/// A device's transformed training values and their buckets.
struct Prepared<'a> {
    thing: &'a str,
    y: Vec<f32>,
    week: Vec<u8>,
    /// Day parity within the window (0 or 1).
    half: Vec<u8>,
}

/// A baseline fitted on (part of) one device's values.
#[derive(Debug, Clone)]
struct Baseline {
    location: f32,
    scale: f32,
    seasonal: Vec<f32>,
    n: usize,
}

fn median(v: &mut [f32]) -> f32 {
    if v.is_empty() {
        return 0.0;
    }
    let mid = v.len() / 2;
    let (_, m, _) = v.select_nth_unstable_by(mid, f32::total_cmp);
    *m
}

/// The interquartile mean of `v` (reordered): the mean of its middle half. As robust as the
/// median to outliers, but it moves smoothly on small-integer data, where the median jumps
/// between neighbouring counts.
fn iq_mean(v: &mut [f32]) -> f32 {
    let n = v.len();
    if n == 0 {
        return 0.0;
    }
    v.sort_unstable_by(f32::total_cmp);
    let cut = n / 4;
    let mid = &v[cut..n - cut];
    mid.iter().sum::<f32>() / mid.len() as f32
}

/// Centre and robust scale of `v` (reordered): the median, and the larger of 1.4826 × MAD and
/// 1.2533 × the mean absolute deviation (both σ for Gaussian data). The MAD collapses to 0 on
/// small-integer data whenever half the values tie; the mean absolute deviation does not.
fn median_scale(v: &mut [f32]) -> (f32, f32) {
    let m = median(v);
    let mut sum = 0.0f64;
    for x in v.iter_mut() {
        *x = (*x - m).abs();
        sum += f64::from(*x);
    }
    let mean_ad = if v.is_empty() {
        0.0
    } else {
        (sum / v.len() as f64) as f32
    };
    (m, (1.482_6 * median(v)).max(1.253_3 * mean_ad))
}

/// Groups `values` by `bucket` (< `buckets`) into one flat buffer; returns the buffer and
/// each bucket's range in it (a counting sort: no per-bucket allocation).
fn group(values: &[f32], bucket: &[u8], buckets: usize) -> (Vec<f32>, Vec<(usize, usize)>) {
    let mut counts = vec![0usize; buckets];
    for &b in bucket {
        counts[usize::from(b)] += 1;
    }
    let mut ranges = Vec::with_capacity(buckets);
    let mut at = 0;
    for &c in &counts {
        ranges.push((at, at + c));
        at += c;
    }
    let mut next: Vec<usize> = ranges.iter().map(|r| r.0).collect();
    let mut flat = vec![0.0f32; values.len()];
    for (&v, &b) in values.iter().zip(bucket) {
        let slot = &mut next[usize::from(b)];
        flat[*slot] = v;
        *slot += 1;
    }
    (flat, ranges)
}

/// Fits a baseline on the points of `p` that `keep` selects, unshrunk.
fn fit_raw(p: &Prepared<'_>, keep: impl Fn(usize) -> bool, kappa_s: f32) -> Baseline {
    let idx: Vec<usize> = (0..p.y.len()).filter(|&i| keep(i)).collect();
    let mut buf: Vec<f32> = idx.iter().map(|&i| p.y[i]).collect();
    let location = iq_mean(&mut buf);
    let week: Vec<u8> = idx.iter().map(|&i| p.week[i]).collect();
    // Hour of day (UTC), then hour of week on what is left.
    let centred: Vec<f32> = idx.iter().map(|&i| p.y[i] - location).collect();
    let hours: Vec<u8> = week.iter().map(|&w| w % 24).collect();
    let (mut flat, ranges) = group(&centred, &hours, 24);
    let hour: Vec<f32> = ranges
        .iter()
        .map(|&(a, b)| {
            let n = (b - a) as f32;
            iq_mean(&mut flat[a..b]) * n / (n + kappa_s)
        })
        .collect();
    let rest: Vec<f32> = centred
        .iter()
        .zip(&week)
        .map(|(&c, &w)| c - hour[usize::from(w) % 24])
        .collect();
    let (mut flat, ranges) = group(&rest, &week, WEEK_BUCKETS);
    let seasonal: Vec<f32> = ranges
        .iter()
        .enumerate()
        .map(|(b, &(lo, hi))| {
            let n = (hi - lo) as f32;
            hour[b % 24] + iq_mean(&mut flat[lo..hi]) * n / (n + kappa_s)
        })
        .collect();
    let mut res: Vec<f32> = centred
        .iter()
        .zip(&week)
        .map(|(&c, &w)| c - seasonal[usize::from(w)])
        .collect();
    let (_, scale) = median_scale(&mut res);
    Baseline {
        location,
        scale,
        seasonal,
        n: idx.len(),
    }
}

/// The cohort prior a device's baseline is shrunk toward.
#[derive(Debug, Clone, Copy)]
struct Prior {
    location: f32,
    scale: f32,
}

/// Share of the log step of one unit that the residual scale is at least.
const RESOLUTION_SHARE: f32 = 0.5;

/// The smallest scale at transformed location `location` (`y = ln(1 + x)`): half the step one
/// more unit makes there, so that on small counts (disconnects, connection attempts of a
/// quiet device) one event more than usual is never more than two scale units — a single
/// reconnect is not a 14σ anomaly — while for volumes (thousands of bytes) it is negligible.
fn resolution(location: f32) -> f32 {
    let x = location.exp_m1().max(0.0);
    RESOLUTION_SHARE * ((2.0 + x) / (1.0 + x)).ln()
}

fn shrink(b: &Baseline, prior: Prior, kappa: f32, min_scale: f32) -> Baseline {
    let n = b.n as f32;
    let w = n / (n + kappa);
    let location = w * b.location + (1.0 - w) * prior.location;
    Baseline {
        location,
        scale: (w * b.scale + (1.0 - w) * prior.scale)
            .max(min_scale)
            .max(resolution(location)),
        seasonal: b.seasonal.clone(),
        n: b.n,
    }
}

#[inline]
fn residual(b: &Baseline, y: f32, week: u8) -> f32 {
    (y - b.location - b.seasonal.get(usize::from(week)).copied().unwrap_or(0.0)) / b.scale
}

/// Cohort labels for the devices' baselines (0-based), via k-means on standardised features.
fn cohorts(baselines: &[Baseline], params: &FitParams) -> Result<(usize, Vec<usize>), Error> {
    let n = baselines.len();
    let k = (n / params.min_cohort_devices.max(1)).clamp(1, params.max_cohorts);
    if k <= 1 {
        return Ok((1, vec![0; n]));
    }
    let mut features = Array2::<f64>::zeros((n, 3));
    for (i, b) in baselines.iter().enumerate() {
        let hours = &b.seasonal[..b.seasonal.len().min(24)];
        let mean = hours.iter().sum::<f32>() / hours.len().max(1) as f32;
        let amplitude = (hours.iter().map(|h| (h - mean).powi(2)).sum::<f32>()
            / hours.len().max(1) as f32)
            .sqrt();
        features[[i, 0]] = f64::from(b.location);
        features[[i, 1]] = f64::from(b.scale.max(1e-3)).ln();
        features[[i, 2]] = f64::from(amplitude);
    }
    for mut col in features.columns_mut() {
        let mean = col.mean().unwrap_or(0.0);
        let sd = col.std(0.0);
        col.mapv_inplace(|x| if sd > 1e-9 { (x - mean) / sd } else { 0.0 });
    }
    let data = DatasetBase::from(features.clone());
    let model = KMeans::params(k)
        .max_n_iterations(200)
        .tolerance(1e-6)
        .fit(&data)
        .map_err(Error::Cohorts)?;
    let labels = model.predict(&features);
    // Renumber by first appearance so labels are stable and dense.
    let mut map = vec![usize::MAX; k];
    let mut next = 0;
    let labels: Vec<usize> = labels
        .iter()
        .map(|&l| {
            if map[l] == usize::MAX {
                map[l] = next;
                next += 1;
            }
            map[l]
        })
        .collect();
    Ok((next, labels))
}

/// `f` over `items` on all cores (the per-device work of a fit is independent), in order.
fn par_map<T: Sync, R: Send>(items: &[T], f: impl Fn(usize, &T) -> R + Sync) -> Vec<R> {
    let workers = std::thread::available_parallelism().map_or(1, usize::from);
    if workers <= 1 || items.len() < 64 {
        return items.iter().enumerate().map(|(i, x)| f(i, x)).collect();
    }
    let chunk = items.len().div_ceil(workers);
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .enumerate()
            .map(|(c, part)| {
                let f = &f;
                scope.spawn(move || {
                    part.iter()
                        .enumerate()
                        .map(|(i, x)| f(c * chunk + i, x))
                        .collect::<Vec<R>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    })
}

/// Episodes per exceeding datapoint of `sequences` (each in time order) above `t`: an
/// episode starts at an exceedance that follows a datapoint at or below `t`. 1 when nothing
/// exceeds.
fn episode_ratio<'a>(sequences: impl Iterator<Item = &'a [f32]>, t: f32) -> f64 {
    let (mut exceed, mut starts) = (0u64, 0u64);
    for seq in sequences {
        let mut before = false;
        for &x in seq {
            let above = x > t;
            exceed += u64::from(above);
            starts += u64::from(above && !before);
            before = above;
        }
    }
    if exceed == 0 {
        1.0
    } else {
        starts as f64 / exceed as f64
    }
}

fn monotone(mut t: [f32; 3]) -> [f32; 3] {
    t[1] = t[1].max(t[0]);
    t[2] = t[2].max(t[1]);
    t
}

fn thresholds(tail: &Tail, targets: [f64; 3], f: fn(&Tail, f64) -> Option<f32>) -> [f32; 3] {
    let t = targets.map(|p| f(tail, p).unwrap_or(f32::MAX));
    monotone(t)
}

/// Fits the model of one (profile, behavior) from its training window.
///
/// # Errors
/// [`Error::NoData`] when no device has a datapoint; [`Error::Cohorts`] when clustering fails.
pub fn fit(
    params: &FitValidParams,
    identity: &ModelIdentity,
    data: &TrainingData,
) -> Result<BehaviorModel, Error> {
    let params = params.params();
    let transform = Transform::Log1p;
    let kappa_s = params.seasonal_shrinkage as f32;
    let min_scale = params.min_scale as f32;
    let prepared: Vec<Prepared<'_>> = data
        .devices
        .iter()
        .filter(|d| d.values.len() >= MIN_DEVICE_DATAPOINTS)
        .map(|d| {
            let mut p = Prepared {
                thing: &d.thing,
                y: Vec::with_capacity(d.values.len()),
                week: Vec::with_capacity(d.values.len()),
                half: Vec::with_capacity(d.values.len()),
            };
            for (&ts, &x) in d.timestamps.iter().zip(&d.values) {
                if !x.is_finite() {
                    continue;
                }
                p.y.push(transform.apply(x) as f32);
                p.week.push(hour_of_week(ts) as u8);
                p.half
                    .push(((ts - data.window_start).div_euclid(DAY_MS) & 1) as u8);
            }
            p
        })
        .filter(|p| p.y.len() >= MIN_DEVICE_DATAPOINTS)
        .collect();
    if prepared.is_empty() {
        return Err(Error::NoData);
    }

    // 1. Unshrunk device baselines, and the cohorts they fall into.
    let raw: Vec<Baseline> = prepared
        .iter()
        .map(|p| fit_raw(p, |_| true, kappa_s))
        .collect();
    let (k, labels) = cohorts(&raw, params)?;
    let members = |c: usize| {
        labels
            .iter()
            .enumerate()
            .filter(move |(_, l)| **l == c)
            .map(|(i, _)| i)
    };
    let priors: Vec<Prior> = (0..k)
        .map(|c| {
            let mut locs: Vec<f32> = members(c).map(|i| raw[i].location).collect();
            let mut scales: Vec<f32> = members(c).map(|i| raw[i].scale).collect();
            Prior {
                location: median(&mut locs),
                scale: median(&mut scales).max(min_scale),
            }
        })
        .collect();
    let kappa = params.shrinkage as f32;
    let finals: Vec<Baseline> = raw
        .iter()
        .zip(&labels)
        .map(|(b, &c)| shrink(b, priors[c], kappa, min_scale))
        .collect();

    // 2. Held-out residuals: fit on one day parity, judge the other.
    let held_out: Vec<Vec<f32>> = par_map(&prepared, |i, p| {
        let (c, full) = (labels[i], &finals[i]);
        let halves: Vec<Option<Baseline>> = (0..2u8)
            .map(|h| {
                let count = p.half.iter().filter(|&&x| x == h).count();
                (count >= MIN_DEVICE_DATAPOINTS).then(|| {
                    let half = fit_raw(p, |i| p.half[i] == h, kappa_s);
                    shrink(&half, priors[c], kappa, min_scale)
                })
            })
            .collect();
        (0..p.y.len())
            .map(|i| {
                let other = usize::from(1 - p.half[i]);
                let b = halves[other].as_ref().unwrap_or(full);
                residual(b, p.y[i], p.week[i])
            })
            .collect()
    });
    // The budget is in alarm episodes per 1,000 device-days; a device sends `per_day`
    // datapoints a day. An episode starts at an exceedance that follows a normal datapoint, so
    // the point test may exceed with probability budget / (per_day × θ), θ = episodes per
    // exceeding datapoint (1 for isolated spikes, less when exceedances come in runs), and the
    // drift test — whose exceedances last `run` datapoints — with budget × run / per_day.
    let window_days = ((data.window_end - data.window_start) as f64 / DAY_MS as f64).max(1.0);
    let per_day = prepared.iter().map(|p| p.y.len()).sum::<usize>() as f64
        / (prepared.len() as f64 * window_days);
    let budget = params.budget.behavior.map(|b| b / 1000.0);
    // Held-out residuals come from baselines fitted on half the window, whose hour-of-week
    // offsets rest on half the points: their spread is wider than the final model's by the
    // offsets' estimation noise (variance ≈ 1.5 σ²/n per bucket for an interquartile mean).
    // Scale the thresholds back by the ratio of standard deviations.
    let per_bucket = prepared.iter().map(|p| p.y.len()).sum::<usize>() as f64
        / (prepared.len() * WEEK_BUCKETS) as f64;
    let half_window_correction = (((1.0 + 1.5 / per_bucket.max(1.0))
        / (1.0 + 1.5 / (per_bucket / 2.0).max(0.5)))
    .sqrt()) as f32;
    let mut point = vec![[f32::MAX; 3]; k];
    let mut point_tails = Vec::with_capacity(k);
    let mut thetas = vec![1.0f64; k];
    // The factor each point threshold was corrected by (1: not corrected).
    let mut corrections = vec![[1.0f32; 3]; k];
    for (c, t) in point.iter_mut().enumerate() {
        let pooled: Vec<f32> = members(c)
            .flat_map(|i| held_out[i].iter().copied())
            .collect();
        let pooled = Tail::new(pooled);
        // θ where the data still shows runs: at the empirical 1e-3 quantile (or the top 25).
        let probe = (MIN_TAIL_POINTS / pooled.len().max(1) as f64).clamp(1e-3, 0.5);
        let theta = empirical_threshold(&pooled, probe).map_or(1.0, |at| {
            episode_ratio(members(c).map(|i| held_out[i].as_slice()), at)
        });
        // Runs of exceedances shorten as the threshold rises: beyond the data every
        // exceedance is taken as its own episode (θ = 1, the conservative bound); the θ the
        // data shows is used only where the target is within the data.
        let theta_at = |p: f64| {
            if pooled.within_data(p) { theta } else { 1.0 }
        };
        thetas[c] = theta;
        let targets = budget.map(|b| {
            let p = (1.0 - params.drift_share) * b / per_day.max(1e-9);
            (p / theta_at(p / theta.max(1e-3)).max(1e-3)).clamp(1e-12, 0.25)
        });
        let q = thresholds(&pooled, targets, upper_threshold);
        *t = monotone([0, 1, 2].map(|l| {
            // Not across an atom: on small-integer metrics the threshold sits just below a
            // count (every device's "one event" residual), which has no estimation noise to
            // correct for, and moving it would flag the whole atom.
            // Nor beyond the data, where the Pareto tail's own uncertainty is larger than
            // the half-window noise it would correct for.
            let corrected = q[l] * half_window_correction;
            let within = pooled.within_data(targets[l]);
            let keep = within
                && exceedance(&pooled, corrected)
                    <= 2.0 * targets[l].max(exceedance(&pooled, q[l]));
            if keep {
                corrections[c][l] = half_window_correction;
            }
            (if keep { corrected } else { q[l] }).max(POINT_FLOOR[l])
        }));
        point_tails.push(pooled);
    }

    // 3. The drift means over the held-out residuals (skipping point anomalies, as the scorer
    //    does), after a warm-up of 1/λ datapoints.
    let lambda = params.drift_lambda as f32;
    let fast = params.drift_fast_lambda as f32;
    let clip = params.residual_clip as f32;
    let warmup = (1.0 / params.drift_lambda).ceil() as usize;
    // Per device, the drift statistic after each held-out datapoint, as the scorer runs it.
    let drift_stats: Vec<Vec<f32>> = held_out
        .iter()
        .zip(&labels)
        .map(|(res, &c)| {
            let mut d = Drift::default();
            res.iter()
                .map(|&r| {
                    if r <= point[c][0] {
                        d.update(r.clamp(-clip, clip), lambda, fast);
                    }
                    d.statistic(fast)
                })
                .collect()
        })
        .collect();
    let mut drift = vec![[f32::MAX; 3]; k];
    let mut drift_tails = Vec::with_capacity(k);
    let mut runs = vec![1.0f64; k];
    for (c, t) in drift.iter_mut().enumerate() {
        let pooled: Vec<f32> = members(c)
            .flat_map(|i| drift_stats[i].iter().skip(warmup).copied())
            .collect();
        let pooled = Tail::new(pooled);
        // How long a drift exceedance lasts, where the data shows some.
        let run = empirical_threshold(&pooled, 1e-2).map_or(1.0, |at| {
            1.0 / episode_ratio(
                members(c).map(|i| drift_stats[i].get(warmup..).unwrap_or(&[])),
                at,
            )
        });
        runs[c] = run;
        if params.drift_share > 0.0 {
            let targets =
                budget.map(|b| (params.drift_share * b * run / per_day).clamp(1e-12, 0.25));
            // The drift mean is near-Gaussian for busy metrics but has a point mass at 0 and a
            // long tail for sparse counts (one rare event moves it for hours): take the larger
            // of the Gaussian tail and the empirical quantile where the data reaches it (its
            // neighbours are too correlated for a Pareto fit), and never less than a shift the
            // baseline can resolve.
            let gaussian = thresholds(&pooled, targets, gaussian_threshold);
            let empirical =
                targets.map(|p| empirical_threshold(&pooled, p).unwrap_or(f32::NEG_INFINITY));
            *t = monotone([0, 1, 2].map(|l| gaussian[l].max(empirical[l]).max(DRIFT_FLOOR[l])));
        }
        drift_tails.push(pooled);
    }

    // 4. What calibration expects at these thresholds, tails included: per datapoint, and in
    //    episodes per 1,000 device-days. Held-out residuals are wider than the final model's
    //    by the correction, so a final threshold t reads the held-out tail at t / correction.
    let total: usize = prepared.iter().map(|p| p.y.len()).sum();
    let mut datapoint = [0.0f64; 3];
    let mut episodes = [0.0f64; 3];
    for c in 0..k {
        let weight =
            members(c).map(|i| prepared[i].y.len()).sum::<usize>() as f64 / total.max(1) as f64;
        for l in 0..3 {
            let p_point = tail_probability(&point_tails[c], point[c][l] / corrections[c][l]);
            let p_drift = if params.drift_share > 0.0 {
                gaussian_probability(&drift_tails[c], drift[c][l])
            } else {
                0.0
            };
            datapoint[l] += weight * (p_point + p_drift);
            let theta = if point_tails[c].within_data(p_point) {
                thetas[c]
            } else {
                1.0
            };
            episodes[l] += weight * per_day * (theta * p_point + p_drift / runs[c]) * 1000.0;
        }
    }
    let expected = ExpectedRates {
        datapoint,
        calibration_datapoints: total as u64,
        episodes_per_1000_device_days: Some(episodes),
        datapoints_per_device_day: per_day,
    };
    let per_datapoint_targets = LevelTargets(budget.map(|b| (b / per_day).clamp(1e-12, 0.25)));

    // 5. Cohort (and fleet) baselines for devices the model has not seen.
    let group_model = |name: String, idx: &[usize]| -> CohortModel {
        let mut locs: Vec<f32> = idx.iter().map(|&i| finals[i].location).collect();
        let location = median(&mut locs);
        let seasonal: Vec<f32> = (0..WEEK_BUCKETS)
            .map(|b| {
                let mut v: Vec<f32> = idx.iter().map(|&i| finals[i].seasonal[b]).collect();
                median(&mut v)
            })
            .collect();
        let mut res: Vec<f32> = idx
            .iter()
            .flat_map(|&i| {
                let p = &prepared[i];
                let seasonal = &seasonal;
                p.y.iter()
                    .zip(&p.week)
                    .map(move |(&y, &w)| y - location - seasonal[usize::from(w)])
            })
            .collect();
        let (centre, spread) = median_scale(&mut res.clone());
        let scale = spread.max(min_scale).max(resolution(location + centre));
        for r in res.iter_mut() {
            *r = (*r - centre) / scale;
        }
        let res = Tail::new(res);
        CohortModel {
            name,
            devices: idx.len() as u32,
            location: location + centre,
            scale,
            seasonal,
            point: [f32::MAX; 3],
            drift: [f32::MAX; 3],
            cohort_point: {
                let q = thresholds(&res, per_datapoint_targets.0, upper_threshold);
                monotone([0, 1, 2].map(|l| q[l].max(POINT_FLOOR[l])))
            },
        }
    };
    let all: Vec<usize> = (0..prepared.len()).collect();
    let mut fleet = group_model("fleet".into(), &all);
    let mut cohort_models = Vec::with_capacity(k + 1);
    if k == 1 {
        // One cohort: the fleet is it.
        fleet.point = point[0];
        fleet.drift = drift[0];
        cohort_models.push(fleet);
    } else {
        cohort_models.push(fleet);
        for c in 0..k {
            let idx: Vec<usize> = members(c).collect();
            let mut m = group_model(format!("cohort-{}", c + 1), &idx);
            m.point = point[c];
            m.drift = drift[c];
            cohort_models.push(m);
        }
    }
    let cohort_index = |c: usize| if k == 1 { 0u16 } else { (c + 1) as u16 };

    let mut devices: Vec<DeviceModel> = prepared
        .iter()
        .zip(&finals)
        .zip(&labels)
        .map(|((p, b), &c)| DeviceModel {
            thing: p.thing.to_owned(),
            cohort: cohort_index(c),
            location: b.location,
            scale: b.scale,
            seasonal: b.seasonal.clone(),
            datapoints: p.y.len() as u32,
        })
        .collect();
    devices.sort_by(|a, b| a.thing.cmp(&b.thing));
    devices.dedup_by(|a, b| a.thing == b.thing);

    Ok(BehaviorModel {
        profile: identity.profile.clone(),
        behavior: identity.behavior.clone(),
        metric: identity.metric.clone(),
        version: identity.version,
        trained_at: identity.trained_at,
        window_start: data.window_start,
        window_end: data.window_end,
        datapoints: data.datapoints(),
        excluded_datapoints: data.excluded,
        transform,
        targets: per_datapoint_targets,
        drift_lambda: lambda,
        residual_clip: clip,
        drift_fast_lambda: fast,
        budget: Some(params.budget),
        cohorts: cohort_models,
        devices,
        expected,
    })
}
