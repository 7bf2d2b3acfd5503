//! Bulk-import throughput: one part file written from a `ColumnBatch` (the `thingward generate`
//! path) and from the same rows as `Datapoint`s (`Importer::write`, which converts them to a
//! batch first: the cost of materialising datapoints is not in it), including the zstd Parquet
//! encoding and the fsync, on the bench machine's file system.

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use thingward_history::{ColumnBatch, Importer};
use thingward_models::{Datapoint, Metric, ThingName, Value};

/// Input shapes: devices in the batch. A batch is one day of that many devices in part-file
/// order (device after device, metric-major, oldest first): 288 five-minute slots × 16 metrics
/// (13 numbers with few distinct values per device, two port lists and one address list), as
/// the synthetic fleets produce.
const SHAPES: &[usize] = &[100, 500];

const METRICS: [Metric; 16] = [
    Metric::AllBytesIn,
    Metric::AllBytesOut,
    Metric::AllPacketsIn,
    Metric::AllPacketsOut,
    Metric::DestinationIpAddresses,
    Metric::ListeningTcpPorts,
    Metric::ListeningUdpPorts,
    Metric::MessageByteSize,
    Metric::NumAuthorizationFailures,
    Metric::NumConnectionAttempts,
    Metric::NumDisconnects,
    Metric::NumEstablishedTcpConnections,
    Metric::NumListeningTcpPorts,
    Metric::NumListeningUdpPorts,
    Metric::NumMessagesReceived,
    Metric::NumMessagesSent,
];

const DAY_START: i64 = 1_767_571_200_000; // 2026-01-05T00:00:00Z
const SLOTS: i64 = 288;

/// A deterministic pseudo-random number in `[0, 1)` from a row's coordinates.
fn noise(device: usize, metric: usize, slot: i64) -> f64 {
    let mut z = (device as u64) << 32 ^ (metric as u64) << 16 ^ slot as u64;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z >> 11) as f64 / (1u64 << 53) as f64
}

fn datapoints(devices: usize) -> Vec<Datapoint> {
    let mut out = Vec::with_capacity(devices * METRICS.len() * SLOTS as usize);
    let ips = vec![
        IpAddr::V4(Ipv4Addr::new(203, 0, 113, 10)),
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, 45)),
    ];
    for d in 0..devices {
        let thing = ThingName::try_from(format!("thing-{d:06}")).expect("valid thing name");
        for (m, metric) in METRICS.iter().enumerate() {
            for slot in 0..SLOTS {
                let value = match metric {
                    Metric::ListeningTcpPorts => Value::Ports(vec![22, 443, 8883]),
                    Metric::ListeningUdpPorts => Value::Ports(vec![123]),
                    Metric::DestinationIpAddresses => Value::Ips(ips.clone()),
                    _ => Value::Number((noise(d, m, slot) * 40.0).round() * 60.0),
                };
                out.push(Datapoint {
                    thing: thing.clone(),
                    metric: metric.clone(),
                    topic: None,
                    timestamp: DAY_START + slot * 300_000,
                    value,
                });
            }
        }
    }
    out
}

fn import(c: &mut Criterion) {
    let mut group = c.benchmark_group("import/part_file");
    group.sample_size(10);
    for &devices in SHAPES {
        let rows = datapoints(devices);
        let batch = ColumnBatch::from_datapoints(&rows);
        group.throughput(Throughput::Elements(rows.len() as u64));
        group.bench_with_input(BenchmarkId::new("columns", devices), &batch, |b, batch| {
            b.iter_batched(
                || tempfile::tempdir().expect("tempdir"),
                |dir| {
                    let mut importer = Importer::open(dir.path()).expect("opens");
                    black_box(importer.write_batch(batch).expect("writes"));
                    dir
                },
                BatchSize::PerIteration,
            );
        });
        group.bench_with_input(BenchmarkId::new("datapoints", devices), &rows, |b, rows| {
            b.iter_batched(
                || tempfile::tempdir().expect("tempdir"),
                |dir| {
                    let mut importer = Importer::open(dir.path()).expect("opens");
                    black_box(importer.write(rows).expect("writes"));
                    dir
                },
                BatchSize::PerIteration,
            );
        });
    }
    group.finish();
}

criterion_group!(benches, import);
criterion_main!(benches);
