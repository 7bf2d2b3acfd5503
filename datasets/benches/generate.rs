//! Generator throughput: datapoints per second for one day of a device range (the unit
//! `thingward generate` writes), single-threaded and on two threads, and the cost of planning.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use thingward_datasets::{Fleet, METRICS, SLOTS_PER_DAY, Scenario};

/// Input shapes: (fleet devices, devices per batch, generator threads). One batch = one day of
/// that many devices: devices × 288 slots × 16 metrics datapoints.
const SHAPES: &[(u32, usize, usize)] = &[(1_000, 100, 1), (1_000, 500, 1), (1_000, 500, 2)];

fn scenario(devices: u32) -> Scenario {
    let text = format!(
        "name = \"bench\"\nseed = 1\ndevices = {devices}\ndays = 21\n\
         [[events]]\nkind = \"ddos\"\n[[events]]\nkind = \"firmware-update\"\n"
    );
    Scenario::parse(&text).expect("bench scenario parses")
}

fn batches(c: &mut Criterion) {
    let mut group = c.benchmark_group("generate/day_batch");
    for &(devices, per_batch, threads) in SHAPES {
        let fleet = Fleet::new(&scenario(devices)).expect("fleet");
        let elements = (per_batch * SLOTS_PER_DAY as usize * METRICS.len()) as u64;
        group.throughput(Throughput::Elements(elements));
        group.sample_size(10);
        group.bench_with_input(
            BenchmarkId::from_parameter(format!("{per_batch}dev_x{threads}thr")),
            &(per_batch, threads),
            |b, &(per_batch, threads)| {
                // A fresh stream per iteration: the first batch is day 0 of the first devices.
                b.iter(|| {
                    let batch = fleet.batches(per_batch, threads).next().expect("a batch");
                    black_box(batch.datapoints.len())
                });
            },
        );
    }
    group.finish();
}

fn planning(c: &mut Criterion) {
    let mut group = c.benchmark_group("generate/plan");
    for devices in [1_000u32, 10_000] {
        let s = scenario(devices);
        group.throughput(Throughput::Elements(u64::from(devices)));
        group.sample_size(10);
        group.bench_with_input(BenchmarkId::from_parameter(devices), &s, |b, s| {
            b.iter(|| black_box(Fleet::new(s).expect("fleet").len()));
        });
    }
    group.finish();
}

criterion_group!(benches, batches, planning);
criterion_main!(benches);
