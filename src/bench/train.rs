//! `thingward bench train`: the trainer's cost per fleet size.
//!
//! For each fleet size, one behavior model per metric is fitted (`thingward_trainer::fit`, the
//! function the nightly job runs) on 14 days of 5-minute datapoints per device. The data is
//! synthetic and made per metric just before its fit (lognormal per-device rates spanning
//! three orders of magnitude, a daily cycle, a weekend dip, lognormal noise), so memory holds
//! one metric's window at a time, as the nightly job does. Reports seconds, datapoints per
//! second and the process's peak resident memory, and the cost per datapoint relative to the
//! smallest fleet (1.0 = linear).

use anyhow::Context;
use rand::rngs::StdRng;
use rand::{RngExt as _, SeedableRng};
use rand_distr::{Distribution, LogNormal};
use std::time::Instant;
use thingward_trainer::{DeviceSeries, FitParams, ModelIdentity, TrainingData};

/// Options of `thingward bench train`.
#[derive(Debug, clap::Args)]
pub(crate) struct TrainArgs {
    /// Fleet sizes to time, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
    devices: Vec<usize>,
    /// Metrics (behavior models) per fleet.
    #[arg(long, default_value_t = 13)]
    metrics: usize,
    /// Days in the training window.
    #[arg(long, default_value_t = 14)]
    days: u32,
}

const SLOT_MS: i64 = 300_000;
/// 2026-01-05T00:00:00Z, a Monday.
const START_MS: i64 = 1_767_571_200_000;

fn window(devices: usize, days: u32, seed: u64) -> anyhow::Result<TrainingData> {
    let mut rng = StdRng::seed_from_u64(seed);
    let rates = LogNormal::new(6.0, 1.2).context("rate distribution")?;
    let noise = LogNormal::new(0.0, 0.4).context("noise distribution")?;
    let slots = i64::from(days) * 288;
    let devices = (0..devices)
        .map(|d| {
            let rate: f64 = rates.sample(&mut rng);
            let phase = rng.random_range(0.0..24.0);
            let mut s = DeviceSeries {
                thing: format!("device-{d:06}"),
                timestamps: Vec::with_capacity(slots as usize),
                values: Vec::with_capacity(slots as usize),
            };
            for slot in 0..slots {
                let hour = (slot as f64 / 12.0 + phase) % 24.0;
                let weekend = if (slot / 288) % 7 >= 5 { 0.6 } else { 1.0 };
                let daily = 1.0 + 0.5 * (std::f64::consts::TAU * hour / 24.0).cos();
                s.timestamps.push(START_MS + slot * SLOT_MS);
                s.values
                    .push((rate * daily * weekend * noise.sample(&mut rng)).round());
            }
            s
        })
        .collect();
    Ok(TrainingData {
        window_start: START_MS,
        window_end: START_MS + slots * SLOT_MS,
        devices,
        excluded: 0,
    })
}

/// Peak resident memory of this process so far, in MiB (Linux), if readable.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Runs the training benchmark and prints its table.
///
/// # Errors
/// A fit that fails (a bug: the data is valid).
pub(crate) fn run(args: &TrainArgs) -> anyhow::Result<()> {
    let params = FitParams::default().check()?;
    println!(
        "Fitting {} behavior model(s) per fleet on {} days of 5-minute datapoints per device.\n",
        args.metrics, args.days
    );
    println!(
        "| devices | datapoints | seconds | datapoints/s | ns/datapoint (vs smallest) | peak RSS MiB |"
    );
    println!("| ---: | ---: | ---: | ---: | ---: | ---: |");
    let mut first_ns: Option<f64> = None;
    for &devices in &args.devices {
        let mut datapoints = 0u64;
        let mut fitting = std::time::Duration::ZERO;
        for m in 0..args.metrics {
            let data = window(devices, args.days, (devices * 131 + m) as u64)?;
            datapoints += data.datapoints();
            let identity = ModelIdentity {
                profile: "bench".into(),
                behavior: format!("metric-{m}"),
                metric: "aws:all-bytes-out".into(),
                version: 1,
                trained_at: data.window_end,
            };
            let started = Instant::now();
            let model = thingward_trainer::fit(&params, &identity, &data)?;
            fitting += started.elapsed();
            drop(std::hint::black_box(model));
        }
        let secs = fitting.as_secs_f64();
        let ns = secs * 1e9 / datapoints.max(1) as f64;
        let base = *first_ns.get_or_insert(ns);
        println!(
            "| {devices} | {datapoints} | {secs:.1} | {:.2}M | {ns:.0} ({:.2}) | {} |",
            datapoints as f64 / secs / 1e6,
            ns / base,
            peak_rss_mib().map_or_else(|| "–".into(), |m| format!("{m:.0}")),
        );
    }
    println!("\nSeconds count fitting only; the data is made before each fit, outside the clock.");
    Ok(())
}
